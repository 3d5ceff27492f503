/* libhtnn-mpi: libhtnn's reduction hook (htnn/reduce.h) over MPI.  The
 * reducer sums in place with MPI_Allreduce, or starts MPI_Iallreduce and
 * waits for all of them at once; requests live in an array that grows only
 * when a batch starts more sums than any batch before (the first one).
 * With HTNN_MPI_SHARED_MEMORY on one node, the sums go through shm_sum.c.
 * SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "htnn/htnn_mpi.h"
#include "shm_sum.h"

#define MPI_REDUCER_MAGIC 0x4d50495245445543ULL /* "MPIREDUC" */

typedef struct mpi_reducer {
    htnn_reducer pub;        /* first: the pointer callers hold */
    uint64_t magic;          /* tells our reducers from a caller's own */
    MPI_Comm comm;           /* a duplicate of the caller's communicator */
    MPI_Request *reqs;       /* started sums */
    size_t n_reqs, cap_reqs;
    int *counts, *displs;    /* per rank: its block of the array at hand */
    shm_sum *shm;            /* HTNN_MPI_SHARED_MEMORY on one node, else NULL */
    double seconds;          /* statistics, see htnn_mpi_stats */
    uint64_t calls, values;
} mpi_reducer;

/* The reducer behind a public pointer, or NULL if it is not one of ours. */
static mpi_reducer *from_public(const htnn_reducer *r)
{
    mpi_reducer *m = (mpi_reducer *)r;
    if (r == NULL || r->user != (void *)r || m->magic != MPI_REDUCER_MAGIC)
        return NULL;
    return m;
}

static void account(mpi_reducer *m, double t0, size_t count)
{
    m->seconds += MPI_Wtime() - t0;
    m->calls++;
    m->values += count;
}

/* MPI counts are ints: larger arrays go in INT_MAX pieces. */
static htnn_status sum_blocking(float *values, size_t count, void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    for (size_t done = 0; done < count;) {
        size_t n = count - done < (size_t)INT_MAX ? count - done : (size_t)INT_MAX;
        if (MPI_Allreduce(MPI_IN_PLACE, values + done, (int)n, MPI_FLOAT, MPI_SUM, m->comm) !=
            MPI_SUCCESS) {
            htnn_clear_error();
            return HTNN_EIO;
        }
        done += n;
    }
    account(m, t0, count);
    return HTNN_OK;
}

/* One shared-memory sum (shm_sum.c), timed like the MPI ones. */
static htnn_status shm_timed(htnn_status (*sum)(shm_sum *, float *, size_t), float *values,
                             size_t count, void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    htnn_status st = sum(m->shm, values, count);
    if (st != HTNN_OK) {
        htnn_clear_error();
        return st;
    }
    account(m, t0, count);
    return HTNN_OK;
}

static htnn_status shm_all(float *values, size_t count, void *user)
{
    return shm_timed(shm_sum_all, values, count, user);
}

static htnn_status shm_scatter(float *values, size_t count, void *user)
{
    return shm_timed(shm_sum_scatter, values, count, user);
}

static htnn_status shm_gather(float *values, size_t count, void *user)
{
    return shm_timed(shm_sum_gather, values, count, user);
}

/* One more request slot; allocates only beyond every earlier batch's need. */
static htnn_status reserve_request(mpi_reducer *m)
{
    if (m->n_reqs < m->cap_reqs)
        return HTNN_OK;
    size_t cap = m->cap_reqs ? 2 * m->cap_reqs : 16;
    MPI_Request *reqs = realloc(m->reqs, cap * sizeof *reqs);
    if (reqs == NULL)
        return HTNN_ENOMEM;
    m->reqs = reqs;
    m->cap_reqs = cap;
    return HTNN_OK;
}

static htnn_status sum_start(float *values, size_t count, void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    htnn_status st;
    if (count > (size_t)INT_MAX)   /* rare: huge layers reduce at once */
        return sum_blocking(values, count, user);
    if ((st = reserve_request(m)) != HTNN_OK)
        return st;
    if (MPI_Iallreduce(MPI_IN_PLACE, values, (int)count, MPI_FLOAT, MPI_SUM, m->comm,
                       &m->reqs[m->n_reqs]) != MPI_SUCCESS) {
        htnn_clear_error();
        return HTNN_EIO;
    }
    m->n_reqs++;
    account(m, t0, count);
    return HTNN_OK;
}

/* The blocks of `count` values (htnn_reducer: floor(r*count/P) ...). */
static int set_blocks(mpi_reducer *m, size_t count)
{
    size_t p = (size_t)m->pub.ranks;
    if (count > (size_t)INT_MAX)
        return 0;
    for (size_t r = 0; r < p; r++) {
        size_t lo, n;
        htnn_mpi_shard(count, (int)r, (int)p, &lo, &n);
        m->displs[r] = (int)lo;
        m->counts[r] = (int)n;
    }
    return 1;
}

/* MPI_Reduce_scatter leaves this rank's summed block at the start of the
 * buffer; it belongs at the block's own place. */
static htnn_status sum_scatter(float *values, size_t count, void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    if (!set_blocks(m, count))
        return HTNN_ELIMIT;
    /* not MPI_Reduce_scatter_block: in place, Open MPI 4.1's was 5x slower
     * here (doc/distributed.md) */
    if (MPI_Reduce_scatter(MPI_IN_PLACE, values, m->counts, MPI_FLOAT, MPI_SUM, m->comm) !=
        MPI_SUCCESS) {
        htnn_clear_error();
        return HTNN_EIO;
    }
    int r = m->pub.rank;
    if (m->displs[r] > 0)
        memmove(values + m->displs[r], values, (size_t)m->counts[r] * sizeof *values);
    account(m, t0, count);
    return HTNN_OK;
}

static htnn_status gather_blocks(float *values, size_t count, void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    if (!set_blocks(m, count))
        return HTNN_ELIMIT;
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, values, m->counts, m->displs,
                       MPI_FLOAT, m->comm) != MPI_SUCCESS) {
        htnn_clear_error();
        return HTNN_EIO;
    }
    account(m, t0, count);
    return HTNN_OK;
}

static htnn_status sum_wait_all(void *user)
{
    mpi_reducer *m = user;
    double t0 = MPI_Wtime();
    int rc = m->n_reqs ? MPI_Waitall((int)m->n_reqs, m->reqs, MPI_STATUSES_IGNORE)
                       : MPI_SUCCESS;
    m->n_reqs = 0;
    m->seconds += MPI_Wtime() - t0;
    if (rc != MPI_SUCCESS) {
        htnn_clear_error();
        return HTNN_EIO;
    }
    return HTNN_OK;
}

htnn_status htnn_mpi_reducer_create(MPI_Comm comm, int flags, htnn_reducer **out)
{
    int initialised = 0, rank, ranks;
    if (out == NULL || comm == MPI_COMM_NULL ||
        (flags & ~(HTNN_MPI_NONBLOCKING | HTNN_MPI_SHARDED_STEP | HTNN_MPI_SHARED_MEMORY)) != 0)
        return HTNN_EINVAL;
    MPI_Initialized(&initialised);
    if (!initialised)
        return HTNN_EINVAL;
    mpi_reducer *m = calloc(1, sizeof *m);
    if (m == NULL)
        return HTNN_ENOMEM;
    if (MPI_Comm_dup(comm, &m->comm) != MPI_SUCCESS) {
        free(m);
        return HTNN_EIO;
    }
    MPI_Comm_rank(m->comm, &rank);
    MPI_Comm_size(m->comm, &ranks);
    m->counts = malloc((size_t)ranks * sizeof *m->counts);
    m->displs = malloc((size_t)ranks * sizeof *m->displs);
    htnn_status st = m->counts == NULL || m->displs == NULL ? HTNN_ENOMEM : HTNN_OK;
    if (st == HTNN_OK && (flags & HTNN_MPI_SHARED_MEMORY))
        st = shm_sum_create(m->comm, &m->shm);
    if (st != HTNN_OK) {
        MPI_Comm_free(&m->comm);
        free(m->counts);
        free(m->displs);
        free(m);
        return st;
    }
    int shm = m->shm != NULL;
    int nb = (flags & HTNN_MPI_NONBLOCKING) != 0 && !shm;
    int sharded = (flags & HTNN_MPI_SHARDED_STEP) != 0;
    htnn_reducer pub = {sizeof pub, ranks, rank, shm ? shm_all : sum_blocking,
                        nb ? sum_start : NULL, nb ? sum_wait_all : NULL, m,
                        sharded ? (shm ? shm_scatter : sum_scatter) : NULL,
                        sharded ? (shm ? shm_gather : gather_blocks) : NULL};
    m->pub = pub;
    m->magic = MPI_REDUCER_MAGIC;
    *out = &m->pub;
    return HTNN_OK;
}

void htnn_mpi_reducer_free(htnn_reducer *reducer)
{
    mpi_reducer *m = from_public(reducer);
    if (m == NULL)
        return;
    sum_wait_all(m);   /* nothing may stay in flight on a freed comm */
    shm_sum_free(m->shm);
    MPI_Comm_free(&m->comm);
    free(m->reqs);
    free(m->counts);
    free(m->displs);
    m->magic = 0;
    free(m);
}

htnn_status htnn_mpi_reducer_stats(const htnn_reducer *reducer, htnn_mpi_stats *out)
{
    const mpi_reducer *m = from_public(reducer);
    if (m == NULL || out == NULL || out->struct_size < sizeof(size_t) ||
        out->struct_size > sizeof *out)
        return HTNN_EINVAL;
    htnn_mpi_stats s = {sizeof s, m->seconds, m->calls, m->values, m->shm != NULL};
    memcpy((char *)out + sizeof(size_t), (char *)&s + sizeof(size_t),
           out->struct_size - sizeof(size_t));
    return HTNN_OK;
}

htnn_status htnn_mpi_reducer_reset_stats(htnn_reducer *reducer)
{
    mpi_reducer *m = from_public(reducer);
    if (m == NULL)
        return HTNN_EINVAL;
    m->seconds = 0.0;
    m->calls = m->values = 0;
    return HTNN_OK;
}

htnn_status htnn_mpi_shard(size_t count, int rank, int ranks, size_t *first, size_t *n)
{
    if (first == NULL || n == NULL || ranks < 1 || rank < 0 || rank >= ranks)
        return HTNN_EINVAL;
    /* floor(rank * count / ranks) without overflowing rank * count */
    size_t r = (size_t)rank, p = (size_t)ranks;
    size_t lo = count / p * r + count % p * r / p;
    size_t hi = count / p * (r + 1) + count % p * (r + 1) / p;
    *first = lo;
    *n = hi - lo;
    return HTNN_OK;
}
