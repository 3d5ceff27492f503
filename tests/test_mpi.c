/* Data-parallel training over MPI (libhtnn-mpi), run by meson as
 * `mpiexec -n 2 test_mpi`: every rank trains the same net on its slice of
 * every global batch, holding the whole training set or only its shard of
 * it; rank 0 then trains the same fit alone and checks that the weights
 * agree within the stated tolerance, and that every rank holds the same
 * model (and a sharded fit's checkpoint) bit for bit.  Also the library's
 * argument checks.
 * Not CMocka: a failed check must stop every rank at once (MPI_Abort),
 * where a test runner that carries on would leave the other rank waiting
 * in a collective.
 * SPDX-License-Identifier: MIT */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htnn/htnn_mpi.h>

#include "dist_nets.h"

static int my_rank;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s (%s)\n", my_rank,      \
                    __FILE__, __LINE__, #cond, htnn_last_error());                   \
            MPI_Abort(MPI_COMM_WORLD, 1);                                            \
        }                                                                            \
    } while (0)

/* Threads of each rank's net (and of the reference): 2 runs the dense
 * step on the net's own threads (lib/train_mt.c), on every rank. */
static int net_threads = 1;

static void make_net(int kind, int after, htnn_net **net)
{
    CHECK(dist_net(kind, after, net) == 0);
    CHECK(htnn_net_set_threads(*net, net_threads) == HTNN_OK);
}

static float data_x[DIST_COUNT * 64];
static int32_t data_y[DIST_COUNT];

/* These bytes equal rank 0's. */
static void check_same_bytes_everywhere(const void *buf, size_t size)
{
    unsigned long long n = size, n0 = size;
    MPI_Bcast(&n0, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    CHECK(n == n0);
    unsigned char *first = malloc(size);
    CHECK(first != NULL);
    memcpy(first, buf, size);
    MPI_Bcast(first, (int)size, MPI_UNSIGNED_CHAR, 0, MPI_COMM_WORLD);
    CHECK(memcmp(first, buf, size) == 0);
    free(first);
}

/* Rank r's model file equals rank 0's, byte for byte. */
static void check_same_model_everywhere(const htnn_net *net)
{
    void *buf;
    size_t size;
    CHECK(htnn_net_save_buffer(net, &buf, &size) == HTNN_OK);
    check_same_bytes_everywhere(buf, size);
    htnn_free(buf);
}

/* The data-parallel fit into par: every rank with the whole set, or
 * (sharded) with only its shard of it. */
static void distributed_fit(htnn_reducer *red, int kind, int after, int sharded, float *par,
                            htnn_fit_result *res)
{
    htnn_net *net;
    size_t first = 0, n = 0;
    if (sharded)
        CHECK(htnn_mpi_shard(DIST_COUNT, my_rank, red->ranks, &first, &n) == HTNN_OK);
    make_net(kind, after, &net);
    CHECK(htnn_net_set_reducer(net, red) == HTNN_OK);
    CHECK(dist_fit_shard(net, data_x, data_y, first, n, res) == HTNN_OK);
    CHECK(res->batches_run == 3 * ((DIST_COUNT + DIST_BATCH - 1) / DIST_BATCH));
    CHECK(dist_params(net, par) == 0);
    check_same_model_everywhere(net);
    htnn_net_free(net);
}

/* The data-parallel fit on the whole set and on shards (within the
 * tolerance of each other), then (rank 0) the same fit alone. */
static void check_fit(htnn_reducer *red, int kind, int after)
{
    htnn_net *net;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT, ref_res = HTNN_FIT_RESULT_INIT;
    htnn_fit_result shard_res = HTNN_FIT_RESULT_INIT;
    dist_data(kind, data_x, data_y);
    CHECK(dist_net(kind, after, &net) == 0);
    size_t n = htnn_net_parameter_count(net);
    htnn_net_free(net);
    float *par = malloc(n * sizeof *par), *ref = malloc(n * sizeof *ref);
    float *shard_par = malloc(n * sizeof *shard_par);
    CHECK(par != NULL && ref != NULL && shard_par != NULL);
    distributed_fit(red, kind, after, 0, par, &res);
    distributed_fit(red, kind, after, 1, shard_par, &shard_res);
    CHECK(dist_max_diff(par, shard_par, n) <= dist_tolerance(kind));
    if (my_rank != 0)
        goto done;
    make_net(kind, after, &net);
    CHECK(dist_fit(net, data_x, data_y, &ref_res) == HTNN_OK);
    CHECK(dist_params(net, ref) == 0);
    htnn_net_free(net);
    double diff = dist_max_diff(par, ref, n), shard_diff = dist_max_diff(shard_par, ref, n);
    printf("%s, %d threads, targets_after_update %d: max |w(2 ranks) - w(1 process)| = "
           "%.3g, sharded %.3g; epoch loss %.6f (sharded %.6f) vs %.6f, accuracy %.4f vs "
           "%.4f\n", kind == DIST_MLP ? "MLP" : kind == DIST_WIDE_MLP ? "wide MLP" : "conv+BN",
           net_threads, after, diff, shard_diff, res.loss,
           shard_res.loss, ref_res.loss, res.accuracy, ref_res.accuracy);
    CHECK(diff <= dist_tolerance(kind) && shard_diff <= dist_tolerance(kind));
    /* the reported loss and accuracy are the whole batches' */
    CHECK(fabs(res.loss - ref_res.loss) < 1e-4 && fabs(shard_res.loss - ref_res.loss) < 1e-4);
    CHECK(fabs(res.accuracy - ref_res.accuracy) < 1e-9 &&
          fabs(shard_res.accuracy - ref_res.accuracy) < 1e-9);
done:
    free(par);
    free(ref);
    free(shard_par);
}

/* A sharded fit's checkpoint (written by each rank to a file of its own) is
 * the same file on every rank: the global example order and the whole
 * set's fingerprint. */
static void check_sharded_checkpoint(htnn_reducer *red)
{
    char dir[] = "/tmp/htnn_test_mpi.XXXXXX", path[64];
    static unsigned char bytes[1 << 16];
    size_t first, n;
    htnn_net *net;
    htnn_optimizer *opt;
    dist_data(DIST_MLP, data_x, data_y);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/ck", dir);
    CHECK(htnn_mpi_shard(DIST_COUNT, my_rank, red->ranks, &first, &n) == HTNN_OK);
    CHECK(dist_net(DIST_MLP, 0, &net) == 0);
    CHECK(htnn_optimizer_create(NULL, &opt) == HTNN_OK);
    CHECK(htnn_net_set_reducer(net, red) == HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 2;
    fo.batch_size = DIST_BATCH;
    fo.shard_first = first;
    fo.shard_total = DIST_COUNT;
    fo.checkpoint_path = path;
    CHECK(htnn_net_fit(net, opt, NULL, data_x + first * 20, data_y + first, n, &fo, NULL) ==
          HTNN_OK);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t size = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    CHECK(size > 0 && size < sizeof bytes);
    check_same_bytes_everywhere(bytes, size);
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    CHECK(htnn_checkpoint_get_info(path, &info) == HTNN_OK && info.count == DIST_COUNT);
    remove(path);
    rmdir(dir);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
}

static void check_arguments(htnn_reducer *red)
{
    htnn_reducer *none = NULL;
    htnn_mpi_stats st = HTNN_MPI_STATS_INIT;
    CHECK(htnn_mpi_reducer_create(MPI_COMM_WORLD, 0, NULL) == HTNN_EINVAL);
    CHECK(htnn_mpi_reducer_create(MPI_COMM_NULL, 0, &none) == HTNN_EINVAL && none == NULL);
    CHECK(htnn_mpi_reducer_create(MPI_COMM_WORLD, 8, &none) == HTNN_EINVAL && none == NULL);
    htnn_mpi_reducer_free(NULL);
    /* a caller's own reducer is not one of ours */
    htnn_reducer own = HTNN_REDUCER_INIT;
    own.user = &own;
    CHECK(htnn_mpi_reducer_stats(&own, &st) == HTNN_EINVAL);
    CHECK(htnn_mpi_reducer_stats(NULL, &st) == HTNN_EINVAL);
    CHECK(htnn_mpi_reducer_stats(red, NULL) == HTNN_EINVAL);
    st.struct_size = sizeof st + 1;
    CHECK(htnn_mpi_reducer_stats(red, &st) == HTNN_EINVAL);
    CHECK(htnn_mpi_reducer_reset_stats(NULL) == HTNN_EINVAL);
    CHECK(red->ranks == 2 && red->rank == my_rank && red->allreduce_sum != NULL);
    size_t first, n;
    CHECK(htnn_mpi_shard(10, 0, 0, &first, &n) == HTNN_EINVAL);
    CHECK(htnn_mpi_shard(10, 2, 2, &first, &n) == HTNN_EINVAL);
    CHECK(htnn_mpi_shard(10, 0, 2, NULL, &n) == HTNN_EINVAL);
    CHECK(htnn_mpi_shard(11, 0, 2, &first, &n) == HTNN_OK && first == 0 && n == 5);
    CHECK(htnn_mpi_shard(11, 1, 2, &first, &n) == HTNN_OK && first == 5 && n == 6);
    CHECK(htnn_mpi_shard(2, 2, 3, &first, &n) == HTNN_OK && first == 1 && n == 1);
    CHECK(htnn_mpi_shard((size_t)-1, 1, 2, &first, &n) == HTNN_OK &&
          first == (size_t)-1 / 2 && n == (size_t)-1 - (size_t)-1 / 2);
    /* the sums themselves */
    float v[3] = {1.0f + (float)my_rank, 2.0f, -1.0f};
    CHECK(red->allreduce_sum(v, 3, red->user) == HTNN_OK);
    CHECK(v[0] == 3.0f && v[1] == 4.0f && v[2] == -2.0f);
    float w[2] = {0.5f, (float)my_rank};
    CHECK(red->start_sum(w, 2, red->user) == HTNN_OK);
    CHECK(red->wait_all(red->user) == HTNN_OK);
    CHECK(w[0] == 1.0f && w[1] == 1.0f);
    /* blocks of 5 values: rank 0 owns [0, 2), rank 1 [2, 5) */
    float b[5];
    for (int i = 0; i < 5; i++)
        b[i] = (float)(i + 10 * my_rank);
    CHECK(red->reduce_scatter_sum(b, 5, red->user) == HTNN_OK);
    for (int i = my_rank ? 2 : 0; i < (my_rank ? 5 : 2); i++)
        CHECK(b[i] == (float)(2 * i + 10));
    for (int i = 0; i < 5; i++)   /* what the other rank's block will be */
        if ((i < 2) != (my_rank == 0))
            b[i] = -1.0f;
    CHECK(red->allgather(b, 5, red->user) == HTNN_OK);
    for (int i = 0; i < 5; i++)
        CHECK(b[i] == (float)(2 * i + 10));
}

int main(int argc, char **argv)
{
    int ranks;
    htnn_reducer *red;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    CHECK(ranks == 2);
    /* every way of summing: sharded or replicated optimizer step, blocking
     * or non-blocking (overlapped) sums, MPI's collectives or the node's
     * shared memory (both ranks run here: it takes effect, and the sums
     * are blocking) */
    int all = HTNN_MPI_NONBLOCKING | HTNN_MPI_SHARDED_STEP | HTNN_MPI_SHARED_MEMORY;
    for (int flags = 0; flags <= all; flags++) {
        int shm = (flags & HTNN_MPI_SHARED_MEMORY) != 0;
        if (my_rank == 0)
            printf("flags %d\n", flags);
        CHECK(htnn_mpi_reducer_create(MPI_COMM_WORLD, flags, &red) == HTNN_OK);
        CHECK((red->start_sum != NULL) == ((flags & HTNN_MPI_NONBLOCKING) != 0 && !shm));
        CHECK((red->allgather != NULL) == ((flags & HTNN_MPI_SHARDED_STEP) != 0));
        if (flags == (HTNN_MPI_NONBLOCKING | HTNN_MPI_SHARDED_STEP))
            check_arguments(red);
        CHECK(htnn_mpi_reducer_reset_stats(red) == HTNN_OK);
        check_fit(red, DIST_MLP, 0);
        htnn_mpi_stats st = HTNN_MPI_STATS_INIT;
        CHECK(htnn_mpi_reducer_stats(red, &st) == HTNN_OK);
        CHECK(st.calls > 0 && st.values > 0 && st.seconds >= 0.0);
        check_fit(red, DIST_MLP, 1);
        check_fit(red, DIST_CONV_BN, 0);
        check_fit(red, DIST_CONV_BN, 1);
        if (!(flags & HTNN_MPI_NONBLOCKING)) {
            /* ranks of 2 threads each (oversubscribed here): every way of
             * summing, with the layers split between each net's threads */
            net_threads = 2;
            check_fit(red, DIST_WIDE_MLP, 0);
            net_threads = 1;
        }
        if (flags & HTNN_MPI_SHARDED_STEP)
            /* one thread per rank: the 512 x 512 layer's gradient goes as
             * its factors (lib/factors.c) */
            check_fit(red, DIST_WIDE_MLP, 0);
        if (flags & HTNN_MPI_SHARDED_STEP)
            check_sharded_checkpoint(red);
        htnn_mpi_reducer_free(red);
    }
    MPI_Finalize();
    if (my_rank == 0)
        printf("test_mpi: all checks passed on %d ranks\n", ranks);
    return 0;
}
