/* bench/train_mpi: data-parallel training throughput of the reference MLP
 * (784-512-512-10, FTPROP-MB, soft hinge, Adam 1e-3, global batch 100) on
 * Fashion-MNIST with libhtnn-mpi, and MPI_Allreduce times for a cost model.
 * Run under mpiexec; bench/mpi_scaling.sh runs the comparisons.
 *
 *   train_mpi train [--epochs N] [--limit N] [--batch B] [--threads T]
 *                   [--seed S] [--blocking 0|1] [--sharded 0|1] [--reducer 0|1]
 *                   [--sgd 0|1] [--shard-data 0|1] [--shm 0|1]
 *       every rank loads the whole training set and trains its slice of
 *       every global batch of B (--shard-data 1: passes the fit only its
 *       shard of the examples, htnn_fit_options.shard_first, and trains the
 *       members of each global batch that fall in it); one rank alone trains without a reducer
 *       (the plain library) unless --reducer 1.  --blocking 0 uses the
 *       reducer's non-blocking sums (overlap); --sharded 1 shards the
 *       optimizer step over the ranks (HTNN_MPI_SHARDED_STEP); --shm 1
 *       sums through shared memory (HTNN_MPI_SHARED_MEMORY); --sgd 1
 *       trains with plain
 *       SGD (lr 0.01) instead of Adam, to see the optimizer's share.
 *   train_mpi allreduce [--reps N] [--blocking 0|1] [--shm 0|1]
 *       median MPI_Allreduce (in place, float sum) time per message size
 *       (--blocking 1, the default);
 *       --blocking 0: MPI_Iallreduce + MPI_Wait instead;
 *       --shm 1: the reducer's shared-memory reduce-scatter + all-gather.
 *
 * Rank 0 prints one JSON line per run.  Data: $HTNN_FASHION_MNIST_DIR or
 * /usr/share/datasets/fashion-mnist.
 * SPDX-License-Identifier: MIT */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>
#include <htnn/htnn_mpi.h>

#include "reference_mlp.h"

typedef struct args {
    const char *mode;
    size_t epochs, limit, batch, reps;
    int threads, blocking, reducer, sgd, sharded, shm;
    unsigned long long seed;
    int shard_data;
} args;

static int rank, ranks;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){argc > 1 ? argv[1] : "train", 1, 0, 100, 30, 1, 1, 0, 0, 0, 0, 1, 0};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--epochs")) a->epochs = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--limit")) a->limit = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--batch")) a->batch = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--reps")) a->reps = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--threads")) a->threads = atoi(v);
        else if (!strcmp(k, "--seed")) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--blocking")) a->blocking = atoi(v);
        else if (!strcmp(k, "--reducer")) a->reducer = atoi(v);
        else if (!strcmp(k, "--sgd")) a->sgd = atoi(v);
        else if (!strcmp(k, "--sharded")) a->sharded = atoi(v);
        else if (!strcmp(k, "--shard-data")) a->shard_data = atoi(v);
        else if (!strcmp(k, "--shm")) a->shm = atoi(v);
        else {
            if (rank == 0)
                fprintf(stderr, "train_mpi: unknown option %s\n", k);
            return 2;
        }
    }
    return 0;
}

/* The time of one fit and the reducer's share of it. */
static int run_train(const args *a)
{
    htnn_data *train = load_fashion_split("train", "train_mpi"),
              *test = load_fashion_split("t10k", "train_mpi");
    htnn_net *net = NULL;
    htnn_optimizer *opt = NULL;
    htnn_reducer *red = NULL;
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    if (a->sgd)
        oo.kind = HTNN_OPT_SGD, oo.learning_rate = 0.01f;
    if (!train || !test || build_reference_mlp(a->seed, a->threads, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE, &net) || htnn_optimizer_create(&oo, &opt)) {
        fprintf(stderr, "train_mpi: %s\n", htnn_last_error());
        return 1;
    }
    int use_reducer = ranks > 1 || a->reducer;
    if (use_reducer) {
        int flags = (a->blocking ? 0 : HTNN_MPI_NONBLOCKING) |
                    (a->sharded ? HTNN_MPI_SHARDED_STEP : 0) |
                    (a->shm ? HTNN_MPI_SHARED_MEMORY : 0);
        if (htnn_mpi_reducer_create(MPI_COMM_WORLD, flags, &red) != HTNN_OK)
            return 1;
        htnn_net_set_reducer(net, red);
    }
    size_t n = htnn_data_count(train);
    if (a->limit && a->limit < n)
        n = a->limit;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = a->epochs;
    fo.batch_size = a->batch;
    size_t first = 0, rows = n;
    if (a->shard_data && use_reducer) {
        htnn_mpi_shard(n, rank, ranks, &first, &rows);
        fo.shard_first = first;
        fo.shard_total = n;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    htnn_status st = htnn_net_fit(net, opt, NULL, htnn_data_features(train) + first * 784,
                                  htnn_data_labels(train) + first, rows, &fo, NULL);
    double secs = MPI_Wtime() - t0, acc = 0.0;
    htnn_mpi_stats stats = HTNN_MPI_STATS_INIT;
    if (red)
        htnn_mpi_reducer_stats(red, &stats);
    if (st == HTNN_OK)
        st = htnn_net_evaluate(net, htnn_data_features(test), htnn_data_labels(test),
                               htnn_data_count(test), NULL, &acc);
    if (st != HTNN_OK) {
        fprintf(stderr, "train_mpi: rank %d: %s\n", rank, htnn_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double slowest, comm_max, comm_min;
    MPI_Reduce(&secs, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&stats.seconds, &comm_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&stats.seconds, &comm_min, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("{\"name\":\"htnn-mlp-mpi\",\"ranks\":%d,\"threads\":%d,\"reducer\":%d,"
               "\"overlap\":%d,\"sharded\":%d,\"shm\":%d,\"shard_data\":%d,\"batch\":%zu,\"epochs\":%zu,\"train_samples\":%zu,"
               "\"seconds\":%.3f,\"samples_per_sec\":%.1f,\"comm_seconds_min\":%.3f,"
               "\"comm_seconds_max\":%.3f,\"comm_share_min\":%.3f,\"comm_share_max\":%.3f,"
               "\"reductions\":%llu,\"floats_reduced\":%llu,\"test_accuracy\":%.4f}\n",
               ranks, a->threads, use_reducer, use_reducer && !a->blocking,
               use_reducer && a->sharded, stats.shared_memory, use_reducer && a->shard_data,
               a->batch,
               a->epochs, n, slowest, (double)(n * a->epochs) / slowest, comm_min, comm_max,
               comm_min / slowest, comm_max / slowest, (unsigned long long)stats.calls,
               (unsigned long long)stats.values, acc);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_mpi_reducer_free(red);
    htnn_data_free(train);
    htnn_data_free(test);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One timed sum of count floats: MPI's all-reduce (blocking or not), or
 * with --shm 1 the shared-memory reducer's reduce-scatter + all-gather (the
 * pair the sharded step uses, the same bytes as an all-reduce). */
static void sum_once(const args *a, htnn_reducer *red, float *buf, size_t count)
{
    if (red != NULL) {
        red->reduce_scatter_sum(buf, count, red->user);
        red->allgather(buf, count, red->user);
    } else if (a->blocking) {
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else {
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    }
}

/* Median in-place sum time per size (1 K .. 4 M floats). */
static int run_allreduce(const args *a)
{
    size_t max = (size_t)1 << 22;
    float *buf = calloc(max, sizeof *buf);
    double *t = calloc(a->reps, sizeof *t);
    htnn_reducer *red = NULL;
    if (buf == NULL || t == NULL)
        return 1;
    if (a->shm && htnn_mpi_reducer_create(MPI_COMM_WORLD,
                                          HTNN_MPI_SHARED_MEMORY | HTNN_MPI_SHARDED_STEP,
                                          &red) != HTNN_OK)
        return 1;
    size_t sizes[] = {1024, 4096, 16384, 65536, 262144, 669706, 1048576, 4194304};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t count = sizes[k];
        for (size_t r = 0; r < a->reps + 3; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            sum_once(a, red, buf, count);
            double dt = MPI_Wtime() - t0, worst;
            MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= 3)
                t[r - 3] = worst;
        }
        qsort(t, a->reps, sizeof *t, cmp_double);
        if (rank == 0)
            printf("{\"name\":\"%s\",\"ranks\":%d,\"blocking\":%d,\"floats\":%zu,"
                   "\"bytes\":%zu,\"median_seconds\":%.6f}\n",
                   red ? "shm-scatter-gather" : "mpi-allreduce", ranks, a->blocking || red,
                   count, count * sizeof(float), t[a->reps / 2]);
    }
    htnn_mpi_reducer_free(red);
    free(buf);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    args a;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int rc = parse(argc, argv, &a);
    if (rc == 0)
        rc = !strcmp(a.mode, "allreduce") ? run_allreduce(&a) : run_train(&a);
    MPI_Finalize();
    return rc;
}
