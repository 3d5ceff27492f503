/* The MPI reducer's sums on any number of ranks (meson runs this with 2 and
 * with 3): all-reduce, reduce-scatter and all-gather, through MPI's
 * collectives and through the node's shared memory
 * (HTNN_MPI_SHARED_MEMORY), for counts around the block and window-size
 * boundaries and for back-to-back sums of different arrays (the shared
 * buffers alternate between phases).  Integer data must sum exactly; float
 * data must sum to the same bits on every rank and within rounding of the
 * exact sum.
 * Also on sub-communicators (halves of the world, ranks reversed).
 * Not CMocka, as test_mpi.c: a failed check stops every rank (MPI_Abort).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn_mpi.h>

static int my_rank, n_ranks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s\n", my_rank, __FILE__,  \
                    __LINE__, #cond);                                                \
            MPI_Abort(MPI_COMM_WORLD, 1);                                            \
        }                                                                            \
    } while (0)

/* Rank r's integer-valued input at i: sums stay exact in float. */
static float int_value(size_t i, int r) { return (float)((i * 7 + 3) % 1000) * (float)(r + 1); }

static float int_sum(size_t i)
{
    return (float)((i * 7 + 3) % 1000) * (float)(n_ranks * (n_ranks + 1) / 2);
}

/* Rank r's fractional input at i (rounds when summed). */
static float frac_value(size_t i, int r) { return sinf(0.37f * (float)i + (float)r) / 3.0f; }

/* This rank's block of count values: [lo, hi). */
static void my_block(size_t count, size_t *lo, size_t *hi)
{
    size_t n;
    CHECK(htnn_mpi_shard(count, my_rank, n_ranks, lo, &n) == HTNN_OK);
    *hi = *lo + n;
}

/* The communicator of the reducer under test (my_rank, n_ranks are ours in it). */
static MPI_Comm test_comm;

static void check_same_bits_everywhere(const float *v, size_t count)
{
    float *first = malloc((count ? count : 1) * sizeof *first);
    CHECK(first != NULL);
    memcpy(first, v, count * sizeof *v);
    for (size_t done = 0; done < count; done += 1u << 20) {
        int n = (int)(count - done < (1u << 20) ? count - done : (1u << 20));
        MPI_Bcast(first + done, n, MPI_FLOAT, 0, test_comm);
    }
    CHECK(memcmp(first, v, count * sizeof *v) == 0);
    free(first);
}

static void check_allreduce(htnn_reducer *red, float *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        v[i] = int_value(i, my_rank);
    CHECK(red->allreduce_sum(v, count, red->user) == HTNN_OK);
    for (size_t i = 0; i < count; i++)
        CHECK(v[i] == int_sum(i));
    for (size_t i = 0; i < count; i++)
        v[i] = frac_value(i, my_rank);
    CHECK(red->allreduce_sum(v, count, red->user) == HTNN_OK);
    check_same_bits_everywhere(v, count);
    for (size_t i = 0; i < count; i++) {
        double exact = 0.0;
        for (int r = 0; r < n_ranks; r++)
            exact += frac_value(i, r);
        CHECK(fabs(v[i] - exact) <= 1e-6);
    }
}

/* Reduce-scatter, then all-gather with the others' blocks spoilt. */
static void check_scatter_gather(htnn_reducer *red, float *v, size_t count)
{
    size_t lo, hi;
    my_block(count, &lo, &hi);
    for (size_t i = 0; i < count; i++)
        v[i] = int_value(i, my_rank);
    CHECK(red->reduce_scatter_sum(v, count, red->user) == HTNN_OK);
    for (size_t i = lo; i < hi; i++)
        CHECK(v[i] == int_sum(i));
    for (size_t i = 0; i < count; i++)
        if (i < lo || i >= hi)
            v[i] = -1.0f;
    CHECK(red->allgather(v, count, red->user) == HTNN_OK);
    for (size_t i = 0; i < count; i++)
        CHECK(v[i] == int_sum(i));
}

/* Back-to-back sums of two arrays whose contents change every round: a
 * rank that overwrote a buffer another rank still reads would show. */
static void check_back_to_back(htnn_reducer *red)
{
    enum { N = 5003, ROUNDS = 40 };
    static float a[N], b[N];
    for (int k = 0; k < ROUNDS; k++) {
        float *v = k % 2 ? a : b;
        size_t count = k % 3 ? N : 17;   /* large (scatter + gather) and small */
        for (size_t i = 0; i < count; i++)
            v[i] = int_value(i + (size_t)k, my_rank);
        CHECK(red->allreduce_sum(v, count, red->user) == HTNN_OK);
        for (size_t i = 0; i < count; i++)
            CHECK(v[i] == int_sum(i + (size_t)k));
    }
}

/* Every way of summing over the ranks of comm. */
static void check_reducers(MPI_Comm comm, float *v)
{
    static const size_t counts[] = {0, 1, 2, 3, 5, 4095, 4096, 4097, 65536, 65537, 300001};
    static const int flag_sets[] = {0, HTNN_MPI_SHARDED_STEP, HTNN_MPI_SHARED_MEMORY,
                                    HTNN_MPI_SHARED_MEMORY | HTNN_MPI_SHARDED_STEP,
                                    HTNN_MPI_SHARED_MEMORY | HTNN_MPI_NONBLOCKING};
    test_comm = comm;
    MPI_Comm_rank(comm, &my_rank);
    MPI_Comm_size(comm, &n_ranks);
    for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
        int flags = flag_sets[f];
        htnn_reducer *red = NULL;
        CHECK(htnn_mpi_reducer_create(comm, flags, &red) == HTNN_OK);
        CHECK(red->ranks == n_ranks && red->rank == my_rank);
        /* one node here: with 2 ranks or more shared memory takes effect,
         * and its sums block */
        if ((flags & HTNN_MPI_SHARED_MEMORY) && n_ranks > 1)
            CHECK(red->start_sum == NULL);
        CHECK((red->reduce_scatter_sum != NULL) == ((flags & HTNN_MPI_SHARDED_STEP) != 0));
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            check_allreduce(red, v, counts[c]);
            if (red->reduce_scatter_sum != NULL)
                check_scatter_gather(red, v, counts[c]);
        }
        check_back_to_back(red);
        htnn_mpi_stats st = HTNN_MPI_STATS_INIT;
        CHECK(htnn_mpi_reducer_stats(red, &st) == HTNN_OK && st.calls > 0);
        CHECK(st.shared_memory == ((flags & HTNN_MPI_SHARED_MEMORY) && n_ranks > 1));
        /* a caller built against 0.3 headers: the shorter struct */
        htnn_mpi_stats old = HTNN_MPI_STATS_INIT;
        old.struct_size = offsetof(htnn_mpi_stats, shared_memory);
        old.shared_memory = -7;
        CHECK(htnn_mpi_reducer_stats(red, &old) == HTNN_OK && old.shared_memory == -7 &&
              old.calls > 0);
        htnn_mpi_reducer_free(red);
    }
}

int main(int argc, char **argv)
{
    int world_rank;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    float *v = malloc(300001 * sizeof *v);
    CHECK(v != NULL);
    check_reducers(MPI_COMM_WORLD, v);
    /* halves of the world (3 ranks: 2 + 1), in reverse rank order: a
     * reducer on a sub-communicator sums over its ranks only, with their
     * ranks in it (a lone rank keeps MPI's collectives) */
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, -world_rank, &half);
    check_reducers(half, v);
    MPI_Comm_free(&half);
    my_rank = world_rank;
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    free(v);
    MPI_Finalize();
    if (my_rank == 0)
        printf("test_mpi_sums: all checks passed on %d ranks\n", n_ranks);
    return 0;
}
