/* Sums over the ranks of one node through an MPI-3 shared-memory window
 * (MPI_Win_allocate_shared).  Why: a 2-rank MPI_Allreduce of a layer's
 * gradient copies it through MPI's transport and sums all of it on every
 * rank; here each rank writes what the others need into its own segment
 * and reads theirs directly, so a reduce-scatter + all-gather (the sharded
 * optimizer step) moves each value once per direction and syncs with one
 * barrier per phase.
 *
 * Each rank's segment holds two buffers of `cap` floats, used by alternate
 * phases (a phase: write own buffer, barrier, read the others').  A rank
 * writes buffer j%2 again only in phase j+2, after the barrier of phase
 * j+1, which every rank enters only once it has finished reading phase j:
 * one barrier per phase is enough.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/simd.h"
#include "shm_sum.h"

/* Below this many floats an all-reduce sums everything on every rank (one
 * phase); above, it is a reduce-scatter plus an all-gather (two phases, but
 * each rank reads 2 x count values instead of ranks x count). */
#define SUM_ALL_MAX 4096

struct shm_sum {
    MPI_Comm comm;      /* the ranks of the node (a duplicate) */
    MPI_Win win;        /* MPI_WIN_NULL until the first sum */
    int rank, ranks;
    size_t cap;         /* floats per buffer */
    char **seg;         /* per rank: its segment (2 x cap floats) */
    unsigned phase;     /* phases so far, mod 2 picks the buffer */
};

static size_t block_lo(size_t count, size_t r, size_t p)
{
    return count / p * r + count % p * r / p;
}

htnn_status shm_sum_create(MPI_Comm comm, shm_sum **out)
{
    MPI_Comm node;
    int ranks, node_ranks;
    *out = NULL;
    if (MPI_Comm_size(comm, &ranks) != MPI_SUCCESS ||
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return HTNN_EIO;
    MPI_Comm_size(node, &node_ranks);
    /* every rank learns whether every rank's node holds the whole comm */
    int whole = node_ranks == ranks, all_whole = 0;
    if (MPI_Allreduce(&whole, &all_whole, 1, MPI_INT, MPI_LAND, comm) != MPI_SUCCESS) {
        MPI_Comm_free(&node);
        return HTNN_EIO;
    }
    if (!all_whole || ranks < 2) {
        MPI_Comm_free(&node);
        return HTNN_OK;
    }
    shm_sum *s = calloc(1, sizeof *s);
    char **seg = malloc((size_t)ranks * sizeof *seg);
    if (s == NULL || seg == NULL) {
        free(s);
        free(seg);
        MPI_Comm_free(&node);
        return HTNN_ENOMEM;
    }
    s->comm = node;
    s->win = MPI_WIN_NULL;
    s->seg = seg;
    s->ranks = ranks;
    MPI_Comm_rank(node, &s->rank);
    *out = s;
    return HTNN_OK;
}

static void release_window(shm_sum *s)
{
    if (s->win == MPI_WIN_NULL)
        return;
    MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
    s->cap = 0;
}

void shm_sum_free(shm_sum *s)
{
    if (s == NULL)
        return;
    MPI_Barrier(s->comm);   /* no rank may still read a segment */
    release_window(s);

    MPI_Comm_free(&s->comm);
    free(s->seg);
    free(s);
}

/* A window of `bytes` per rank, each rank's part on its own memory, with
 * every rank's base and one passive epoch for its life (loads and stores,
 * MPI_Win_sync around the barriers). */
static htnn_status window_create(shm_sum *s, size_t bytes, MPI_Win *win, char **bases)
{
    MPI_Info info;
    void *mine;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, s->comm, &mine, win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS)
        return HTNN_ENOMEM;
    for (int r = 0; r < s->ranks; r++) {
        MPI_Aint size;
        int unit;
        void *base;
        if (MPI_Win_shared_query(*win, r, &size, &unit, &base) != MPI_SUCCESS) {
            MPI_Win_free(win);
            return HTNN_EIO;
        }
        bases[r] = base;
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    return HTNN_OK;
}

/* Collective: every rank asks for the same count, so every rank grows. */
static htnn_status reserve(shm_sum *s, size_t count)
{
    if (count <= s->cap)
        return HTNN_OK;
    if (count > (size_t)PTRDIFF_MAX / (4 * sizeof(float)))
        return HTNN_ELIMIT;
    /* geometric growth: few collective reallocations in the first batch */
    size_t want = count > 2 * s->cap ? count : 2 * s->cap;
    count = want > 65536 ? want : 65536;
    MPI_Barrier(s->comm);   /* the old segments are no longer read */
    release_window(s);
    htnn_status st = window_create(s, 2 * count * sizeof(float), &s->win, s->seg);
    if (st != HTNN_OK) {
        s->win = MPI_WIN_NULL;
        return st;
    }
    s->cap = count;
    return HTNN_OK;
}

/* Ends a phase's writes and starts its reads. */
static htnn_status publish(shm_sum *s)
{
    MPI_Win_sync(s->win);
    if (MPI_Barrier(s->comm) != MPI_SUCCESS)
        return HTNN_EIO;
    MPI_Win_sync(s->win);
    return HTNN_OK;
}

/* Rank r's buffer of the current phase. */
static float *buffer(const shm_sum *s, int r)
{
    return (float *)(void *)s->seg[r] + (s->phase & 1u) * s->cap;
}

HTNN_CLONES static void add(float *restrict acc, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += x[i];
}

static htnn_status sum_everything(shm_sum *s, float *values, size_t count)
{
    memcpy(buffer(s, s->rank), values, count * sizeof *values);
    htnn_status st = publish(s);
    if (st != HTNN_OK)
        return st;
    /* the same order on every rank, so the same bits */
    memcpy(values, buffer(s, 0), count * sizeof *values);
    for (int r = 1; r < s->ranks; r++)
        add(values, buffer(s, r), count);
    s->phase++;
    return HTNN_OK;
}

htnn_status shm_sum_scatter(shm_sum *s, float *values, size_t count)
{
    size_t p = (size_t)s->ranks, me = (size_t)s->rank;
    if (count == 0)   /* the same on every rank: nothing to sync */
        return HTNN_OK;
    htnn_status st = reserve(s, count);
    if (st != HTNN_OK)
        return st;
    float *mine = buffer(s, s->rank);
    for (size_t r = 0; r < p; r++) {
        size_t lo = block_lo(count, r, p), hi = block_lo(count, r + 1, p);
        if (r != me)
            memcpy(mine + lo, values + lo, (hi - lo) * sizeof *values);
    }
    if ((st = publish(s)) != HTNN_OK)
        return st;
    /* only this rank's block changes now, and the others read only theirs */
    size_t lo = block_lo(count, me, p), hi = block_lo(count, me + 1, p);
    for (size_t r = 0; r < p; r++)
        if (r != me)
            add(values + lo, buffer(s, (int)r) + lo, hi - lo);
    s->phase++;
    return HTNN_OK;
}

htnn_status shm_sum_gather(shm_sum *s, float *values, size_t count)
{
    size_t p = (size_t)s->ranks, me = (size_t)s->rank;
    if (count == 0)   /* the same on every rank: nothing to sync */
        return HTNN_OK;
    htnn_status st = reserve(s, count);
    if (st != HTNN_OK)
        return st;
    size_t lo = block_lo(count, me, p), hi = block_lo(count, me + 1, p);
    memcpy(buffer(s, s->rank) + lo, values + lo, (hi - lo) * sizeof *values);
    if ((st = publish(s)) != HTNN_OK)
        return st;
    /* this rank writes the others' blocks, they read only its own */
    for (size_t r = 0; r < p; r++) {
        size_t a = block_lo(count, r, p), b = block_lo(count, r + 1, p);
        if (r != me)
            memcpy(values + a, buffer(s, (int)r) + a, (b - a) * sizeof *values);
    }
    s->phase++;
    return HTNN_OK;
}

htnn_status shm_sum_all(shm_sum *s, float *values, size_t count)
{
    if (count == 0)   /* the same on every rank: nothing to sync */
        return HTNN_OK;
    htnn_status st = reserve(s, count);
    if (st != HTNN_OK)
        return st;
    if (count <= SUM_ALL_MAX)
        return sum_everything(s, values, count);
    if ((st = shm_sum_scatter(s, values, count)) != HTNN_OK)
        return st;
    return shm_sum_gather(s, values, count);
}
