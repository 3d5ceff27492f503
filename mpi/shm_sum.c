/* Sums over the ranks of one node through an MPI-3 shared-memory window
 * (MPI_Win_allocate_shared).  Why: a 2-rank MPI_Allreduce of a layer's
 * gradient copies it through MPI's transport and sums all of it on every
 * rank; here each rank writes what the others need into its own segment
 * and reads theirs directly, so a reduce-scatter + all-gather (the sharded
 * optimizer step) moves each value once per direction.
 *
 * Rounds.  A large array goes in rounds of at most `slot` values of each
 * rank's block, so that what one rank writes and another reads next stays
 * in cache: on the project's machine a 2-rank reduce-scatter + all-gather of
 * 1 MB took 59 us in one round but 2.68 MB took 494 us (8x the time for
 * 2.7x the data); in rounds of 128 KB it scales with the bytes.  A round
 * is one phase: each rank writes its buffer, a barrier, each rank reads the
 * others'.  The window has a fixed size, so the sums allocate nothing.
 *
 * Each rank's segment holds two buffers used by alternate phases.  A rank
 * writes buffer j%2 again only in phase j+2, after the barrier of phase
 * j+1, which every rank enters only once it has finished reading phase j:
 * one barrier per phase is enough.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "../lib/simd.h"
#include "htnn/htnn_mpi.h"
#include "shm_sum.h"

/* Up to this many floats an all-reduce sums everything on every rank (one
 * phase); above, it is a reduce-scatter plus an all-gather (two phases at
 * least, but each rank reads 2 x count values instead of ranks x count). */
#define SUM_ALL_MAX 4096

/* The floats of all slots of a buffer: 32 K per rank with 2 ranks, and at
 * least SLOT_MIN per rank with many. */
#define BUFFER_FLOATS 65536
#define SLOT_MIN 4096

struct shm_sum {
    MPI_Comm comm;      /* the reducer's ranks, all on this node */
    MPI_Win win;
    int rank, ranks;
    size_t slot;        /* floats of one block per round */
    size_t cap;         /* floats per buffer: ranks x slot, >= SUM_ALL_MAX */
    char **seg;         /* per rank: its segment (2 x cap floats) */
    unsigned phase;     /* phases so far, mod 2 picks the buffer */
};

/* A window of `bytes` per rank, each rank's part on its own memory, with
 * every rank's base and one passive epoch for its life (loads and stores,
 * MPI_Win_sync around the barriers). */
static htnn_status window_create(shm_sum *s, size_t bytes)
{
    MPI_Info info;
    void *mine;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, s->comm, &mine, &s->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS)
        return HTNN_ENOMEM;
    for (int r = 0; r < s->ranks; r++) {
        MPI_Aint size;
        int unit;
        void *base;
        if (MPI_Win_shared_query(s->win, r, &size, &unit, &base) != MPI_SUCCESS) {
            MPI_Win_free(&s->win);
            return HTNN_EIO;
        }
        s->seg[r] = base;
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    return HTNN_OK;
}

/* The node's communicator, if it holds every rank of comm (on every rank:
 * all agree), else MPI_COMM_NULL. */
static htnn_status whole_node(MPI_Comm comm, MPI_Comm *node)
{
    int ranks, node_ranks;
    *node = MPI_COMM_NULL;
    if (MPI_Comm_size(comm, &ranks) != MPI_SUCCESS ||
        MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, node) != MPI_SUCCESS)
        return HTNN_EIO;
    MPI_Comm_size(*node, &node_ranks);
    int whole = node_ranks == ranks, all_whole = 0;
    if (MPI_Allreduce(&whole, &all_whole, 1, MPI_INT, MPI_LAND, comm) != MPI_SUCCESS) {
        MPI_Comm_free(node);
        return HTNN_EIO;
    }
    if (!all_whole || ranks < 2)
        MPI_Comm_free(node);   /* sets it to MPI_COMM_NULL */
    return HTNN_OK;
}

htnn_status shm_sum_create(MPI_Comm comm, shm_sum **out)
{
    MPI_Comm node;
    *out = NULL;
    htnn_status st = whole_node(comm, &node);
    if (st != HTNN_OK || node == MPI_COMM_NULL)
        return st;
    int ranks;
    MPI_Comm_size(node, &ranks);
    shm_sum *s = calloc(1, sizeof *s);
    char **seg = malloc((size_t)ranks * sizeof *seg);
    if (s == NULL || seg == NULL) {
        free(s);
        free(seg);
        MPI_Comm_free(&node);
        return HTNN_ENOMEM;
    }
    s->comm = node;
    s->seg = seg;
    s->ranks = ranks;
    MPI_Comm_rank(node, &s->rank);
    size_t p = (size_t)ranks;
    s->slot = BUFFER_FLOATS / p > SLOT_MIN ? BUFFER_FLOATS / p : SLOT_MIN;
    s->cap = p * s->slot > SUM_ALL_MAX ? p * s->slot : SUM_ALL_MAX;
    if ((st = window_create(s, 2 * s->cap * sizeof(float))) != HTNN_OK) {
        MPI_Comm_free(&s->comm);
        free(s->seg);
        free(s);
        return st;
    }
    *out = s;
    return HTNN_OK;
}

void shm_sum_free(shm_sum *s)
{
    if (s == NULL)
        return;
    MPI_Barrier(s->comm);   /* no rank may still read a segment */
    MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
    MPI_Comm_free(&s->comm);
    free(s->seg);
    free(s);
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

/* The rounds for count values: the longest block (ceil(count / ranks))
 * in slots; the same on every rank. */
static size_t rounds(const shm_sum *s, size_t count)
{
    size_t p = (size_t)s->ranks, longest = count / p + (count % p != 0);
    return (longest + s->slot - 1) / s->slot;
}

/* Round k's part of rank r's block: [*a, *b) (the blocks of htnn_reducer,
 * as htnn_mpi_shard splits them). */
static void part(const shm_sum *s, size_t count, size_t r, size_t k, size_t *a, size_t *b)
{
    size_t lo, n;
    htnn_mpi_shard(count, (int)r, s->ranks, &lo, &n);
    *a = k * s->slot < n ? lo + k * s->slot : lo + n;
    *b = *a + s->slot < lo + n ? *a + s->slot : lo + n;
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

/* Each round: this rank puts its part for rank r in slot r of its buffer,
 * then adds slot `me` of every other rank's buffer into its own part. */
htnn_status shm_sum_scatter(shm_sum *s, float *values, size_t count)
{
    size_t p = (size_t)s->ranks, me = (size_t)s->rank, a, b;
    for (size_t k = 0, n = rounds(s, count); k < n; k++) {
        float *mine = buffer(s, s->rank);
        for (size_t r = 0; r < p; r++) {
            part(s, count, r, k, &a, &b);
            if (r != me)
                memcpy(mine + r * s->slot, values + a, (b - a) * sizeof *values);
        }
        htnn_status st = publish(s);
        if (st != HTNN_OK)
            return st;
        part(s, count, me, k, &a, &b);
        for (size_t r = 0; r < p; r++)
            if (r != me)
                add(values + a, buffer(s, (int)r) + me * s->slot, b - a);
        s->phase++;
    }
    return HTNN_OK;
}

/* Each round: this rank puts its part in its buffer, then copies every
 * other rank's part from theirs. */
htnn_status shm_sum_gather(shm_sum *s, float *values, size_t count)
{
    size_t p = (size_t)s->ranks, me = (size_t)s->rank, a, b;
    for (size_t k = 0, n = rounds(s, count); k < n; k++) {
        part(s, count, me, k, &a, &b);
        memcpy(buffer(s, s->rank), values + a, (b - a) * sizeof *values);
        htnn_status st = publish(s);
        if (st != HTNN_OK)
            return st;
        for (size_t r = 0; r < p; r++) {
            part(s, count, r, k, &a, &b);
            if (r != me)
                memcpy(values + a, buffer(s, (int)r), (b - a) * sizeof *values);
        }
        s->phase++;
    }
    return HTNN_OK;
}

htnn_status shm_sum_all(shm_sum *s, float *values, size_t count)
{
    htnn_status st;
    if (count == 0)   /* the same on every rank: nothing to sync */
        return HTNN_OK;
    if (count <= SUM_ALL_MAX)
        return sum_everything(s, values, count);
    if ((st = shm_sum_scatter(s, values, count)) != HTNN_OK)
        return st;
    return shm_sum_gather(s, values, count);
}
