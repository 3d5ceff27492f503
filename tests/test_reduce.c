/* The reduction hook (htnn/reduce.h) without MPI: ranks are threads, each
 * training its own net, and the reducer sums through shared memory in rank
 * order (so every rank gets the same bits).  Data-parallel training of a
 * global batch must give the single-process weights within a float
 * summation tolerance, the same bits on every rank, and with one rank the
 * single-process bits exactly.  Also the reducer's argument checks.
 * test_mpi.c checks the same with MPI processes when MPI is built.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_nets.h"

enum { MAX_RANKS = 4 };

/* The in-memory "communicator" of the rank threads. */
typedef struct shared_sum {
    int ranks;
    pthread_barrier_t barrier;
    float *values[MAX_RANKS];
    float *scratch[MAX_RANKS];
    size_t scratch_size[MAX_RANKS];
    int fail;                     /* 1: every sum returns HTNN_EIO */
    size_t largest_scatter[MAX_RANKS]; /* largest count each rank reduce-scattered */
} shared_sum;

typedef struct rank_ctx {
    shared_sum *shared;
    int rank;
} rank_ctx;

/* Rank r's shard of DIST_COUNT examples among `ranks`: [*first, *first + *n),
 * the split of htnn_mpi_shard (libhtnn-mpi, which this test does not link). */
static void dist_shard_of(int rank, int ranks, size_t *first, size_t *n)
{
    *first = DIST_COUNT * (size_t)rank / (size_t)ranks;
    *n = DIST_COUNT * (size_t)(rank + 1) / (size_t)ranks - *first;
}

/* Sums in rank order into this rank's scratch, then copies back once every
 * rank has read every other's values. */
static htnn_status thread_sum(float *values, size_t count, void *user)
{
    rank_ctx *c = user;
    shared_sum *s = c->shared;
    if (s->fail)
        return HTNN_EIO;
    if (s->scratch_size[c->rank] < count) {
        free(s->scratch[c->rank]);
        s->scratch[c->rank] = malloc(count * sizeof(float));
        s->scratch_size[c->rank] = count;
    }
    float *out = s->scratch[c->rank];
    s->values[c->rank] = values;
    pthread_barrier_wait(&s->barrier);
    for (size_t i = 0; i < count; i++) {
        float v = s->values[0][i];
        for (int r = 1; r < s->ranks; r++)
            v += s->values[r][i];
        out[i] = v;
    }
    pthread_barrier_wait(&s->barrier);
    memcpy(values, out, count * sizeof *values);
    return HTNN_OK;
}

/* start_sum as a blocking sum: exercises the deferred updates. */
static htnn_status thread_start(float *values, size_t count, void *user)
{
    return thread_sum(values, count, user);
}

static htnn_status thread_wait(void *user)
{
    (void)user;
    return HTNN_OK;
}

/* This rank's block of `count` values (htnn_reducer). */
static void block_of(int rank, int ranks, size_t count, size_t *lo, size_t *hi)
{
    *lo = count * (size_t)rank / (size_t)ranks;
    *hi = count * (size_t)(rank + 1) / (size_t)ranks;
}

/* The whole sum, then NaN outside this rank's block: the library must not
 * read what the contract leaves undefined. */
static htnn_status thread_scatter(float *values, size_t count, void *user)
{
    rank_ctx *c = user;
    size_t lo, hi;
    htnn_status st = thread_sum(values, count, user);
    size_t *largest = &c->shared->largest_scatter[c->rank];
    *largest = count > *largest ? count : *largest;
    block_of(c->rank, c->shared->ranks, count, &lo, &hi);
    for (size_t i = 0; i < count; i++)
        if (i < lo || i >= hi)
            values[i] = NAN;
    return st;
}

static htnn_status thread_gather(float *values, size_t count, void *user)
{
    rank_ctx *c = user;
    shared_sum *s = c->shared;
    s->values[c->rank] = values;
    pthread_barrier_wait(&s->barrier);
    for (int r = 0; r < s->ranks; r++) {
        size_t lo, hi;
        block_of(r, s->ranks, count, &lo, &hi);
        if (r != c->rank)
            memcpy(values + lo, s->values[r] + lo, (hi - lo) * sizeof *values);
    }
    pthread_barrier_wait(&s->barrier);
    return HTNN_OK;
}

static float data_x[DIST_COUNT * 64];
static int32_t data_y[DIST_COUNT];

typedef struct rank_job {
    rank_ctx ctx;
    int kind, after, mode;   /* mode: 1 non-blocking sums, 2 sharded step, 4 sharded data,
                                8 two threads per rank (the net's own: lib/train_mt.c) */
    float *params;
    void *model;
    size_t model_size;
    htnn_status status;
} rank_job;

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    htnn_net *net;
    htnn_reducer red = HTNN_REDUCER_INIT;
    red.ranks = j->ctx.shared->ranks;
    red.rank = j->ctx.rank;
    red.allreduce_sum = thread_sum;
    red.start_sum = j->mode & 1 ? thread_start : NULL;
    red.wait_all = j->mode & 1 ? thread_wait : NULL;
    red.reduce_scatter_sum = j->mode & 2 ? thread_scatter : NULL;
    red.allgather = j->mode & 2 ? thread_gather : NULL;
    red.user = &j->ctx;
    if (dist_net(j->kind, j->after, &net) != 0) {
        j->status = HTNN_ENOMEM;
        return NULL;
    }
    j->status = htnn_net_set_threads(net, j->mode & 8 ? 2 : 1);
    if (j->status == HTNN_OK)
        j->status = htnn_net_set_reducer(net, &red);
    size_t first = 0, n = 0;   /* the whole set */
    if (j->mode & 4)
        dist_shard_of(j->ctx.rank, red.ranks, &first, &n);
    if (j->status == HTNN_OK)
        j->status = dist_fit_shard(net, data_x, data_y, first, n, NULL);
    if (j->status == HTNN_OK && dist_params(net, j->params) != 0)
        j->status = HTNN_EINVAL;
    if (j->status == HTNN_OK)
        j->status = htnn_net_save_buffer(net, &j->model, &j->model_size);
    htnn_net_free(net);
    return NULL;
}

/* The single-process reference: the same fit without a reducer. */
static void reference(int kind, int after, int threads, float *params, size_t n)
{
    htnn_net *net;
    assert_int_equal(dist_net(kind, after, &net), 0);
    assert_int_equal(htnn_net_set_threads(net, threads), HTNN_OK);
    assert_int_equal(htnn_net_parameter_count(net), n);
    assert_int_equal(dist_fit(net, data_x, data_y, NULL), HTNN_OK);
    assert_int_equal(dist_params(net, params), 0);
    htnn_net_free(net);
}

/* Trains on `ranks` threads and compares with the reference; returns the
 * largest count rank 0 reduce-scattered. */
static size_t check_parallel(int kind, int ranks, int after, int mode)
{
    dist_data(kind, data_x, data_y);
    htnn_net *probe;
    assert_int_equal(dist_net(kind, after, &probe), 0);
    size_t n = htnn_net_parameter_count(probe);
    htnn_net_free(probe);
    float *ref = malloc(n * sizeof *ref);
    assert_non_null(ref);
    /* with threads per rank, against the same threads alone: one rank is
     * then bit-identical too */
    reference(kind, after, mode & 8 ? 2 : 1, ref, n);

    shared_sum s = {0};
    s.ranks = ranks;
    pthread_barrier_init(&s.barrier, NULL, (unsigned)ranks);
    rank_job jobs[MAX_RANKS];
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < ranks; r++) {
        jobs[r] = (rank_job){{&s, r}, kind, after, mode, malloc(n * sizeof(float)),
                             NULL, 0, HTNN_OK};
        assert_non_null(jobs[r].params);
        assert_int_equal(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < ranks; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < ranks; r++) {
        assert_int_equal(jobs[r].status, HTNN_OK);
        assert_int_equal(jobs[r].model_size, jobs[0].model_size);
        /* every rank holds the same net, bit for bit (running statistics
         * too); but not when the ranks' nets have threads of their own:
         * the ranks are threads of one process here, and OpenBLAS's thread
         * count is per process, so one rank's net setting it back for its
         * own BLAS calls reaches another rank's sgemm, which then blocks
         * (and rounds) differently.  test_mpi.c checks that case with
         * processes, bit for bit. */
        if (!(mode & 8))
            assert_memory_equal(jobs[r].model, jobs[0].model, jobs[0].model_size);
        else
            assert_true(dist_max_diff(jobs[r].params, jobs[0].params, n) <= dist_tolerance(kind));
    }
    double diff = dist_max_diff(ref, jobs[0].params, n);
    printf("kind %d, %d ranks, after %d, mode %d: max |w - w_single| = %.3g\n", kind,
           ranks, after, mode, diff);
    if (ranks == 1)
        assert_memory_equal(ref, jobs[0].params, n * sizeof *ref);
    else
        assert_true(diff <= dist_tolerance(kind));
    /* and training changed the weights (the comparison is not vacuous) */
    htnn_net *fresh;
    float *init = malloc(n * sizeof *init);
    assert_int_equal(dist_net(kind, after, &fresh), 0);
    assert_int_equal(dist_params(fresh, init), 0);
    assert_true(dist_max_diff(init, ref, n) > 1e-3);
    htnn_net_free(fresh);
    free(init);
    for (int r = 0; r < ranks; r++) {
        free(jobs[r].params);
        htnn_free(jobs[r].model);
        free(s.scratch[r]);
    }
    pthread_barrier_destroy(&s.barrier);
    free(ref);
    return s.largest_scatter[0];
}

static void mlp_one_rank_is_exact(void **state)
{
    (void)state;
    check_parallel(DIST_MLP, 1, 0, 1);
    check_parallel(DIST_MLP, 1, 0, 0);
    check_parallel(DIST_MLP, 1, 0, 2);
}

static void mlp_two_ranks(void **state)
{
    (void)state;
    check_parallel(DIST_MLP, 2, 0, 1);
    check_parallel(DIST_MLP, 2, 0, 0);
    check_parallel(DIST_MLP, 2, 1, 1);
    check_parallel(DIST_MLP, 2, 0, 2);
    check_parallel(DIST_MLP, 2, 0, 3);
    check_parallel(DIST_MLP, 2, 1, 2);
}

static void mlp_three_ranks(void **state)
{
    (void)state;
    check_parallel(DIST_MLP, 3, 0, 1);
    check_parallel(DIST_MLP, 3, 0, 2);
}

/* Ranks whose nets train on two threads of their own: every way of
 * summing, and sharded data. */
static void mlp_threads_per_rank(void **state)
{
    (void)state;
    check_parallel(DIST_MLP, 1, 0, 8);
    check_parallel(DIST_MLP, 1, 0, 8 | 2);
    check_parallel(DIST_MLP, 2, 0, 8);
    check_parallel(DIST_MLP, 2, 0, 8 | 1);
    check_parallel(DIST_MLP, 2, 0, 8 | 2);
    check_parallel(DIST_MLP, 3, 0, 8 | 2 | 4);
    check_parallel(DIST_MLP, 2, 1, 8);   /* targets after the update: the general step */
    /* layers wide enough that the threads split them */
    check_parallel(DIST_WIDE_MLP, 1, 0, 8 | 2);
    check_parallel(DIST_WIDE_MLP, 2, 0, 8);
    check_parallel(DIST_WIDE_MLP, 2, 0, 8 | 2 | 4);
}

/* A sharded step sends a dense layer's gradient as its factors (every
 * rank's rows of the layer's input and dZ, lib/factors.c) where those are
 * fewer values: the wide MLP's 512 x 512 layer with 10 (2 ranks) or 7 (3
 * ranks: padded slabs, blocks that split a unit's weights) rows per rank,
 * and with one row in the last batch (a rank without rows).  Its 20 x 512
 * and 512 x 3 layers are reduce-scattered whole.  The same weights as one
 * process, within the summation tolerance. */
static void wide_mlp_sharded_factors(void **state)
{
    (void)state;
    size_t whole = 512 * 512;
    assert_int_equal(check_parallel(DIST_WIDE_MLP, 2, 0, 2), 20 * 512);
    assert_int_equal(check_parallel(DIST_WIDE_MLP, 3, 0, 2), 20 * 512);
    /* on the net's threads, and from shards of the set, gradients go whole */
    assert_int_equal(check_parallel(DIST_WIDE_MLP, 2, 0, 8 | 2), whole);
    assert_int_equal(check_parallel(DIST_WIDE_MLP, 2, 0, 2 | 4), whole);
}

static void conv_bn_one_rank_is_exact(void **state)
{
    (void)state;
    check_parallel(DIST_CONV_BN, 1, 0, 1);
    check_parallel(DIST_CONV_BN, 1, 0, 2);
}

static void conv_bn_two_ranks(void **state)
{
    (void)state;
    check_parallel(DIST_CONV_BN, 2, 0, 1);
    check_parallel(DIST_CONV_BN, 2, 1, 0);
    check_parallel(DIST_CONV_BN, 2, 0, 2);
}

/* Each rank holds only its shard of the training set: the same global
 * batches, so the single-process weights within the tolerance again (and
 * its bits with one rank). */
static void mlp_sharded_data(void **state)
{
    (void)state;
    check_parallel(DIST_MLP, 1, 0, 4);
    check_parallel(DIST_MLP, 2, 0, 4);
    check_parallel(DIST_MLP, 2, 1, 4 | 1);
    check_parallel(DIST_MLP, 3, 0, 4 | 2);
}

static void conv_bn_sharded_data(void **state)
{
    (void)state;
    check_parallel(DIST_CONV_BN, 1, 0, 4);
    check_parallel(DIST_CONV_BN, 2, 0, 4);
    check_parallel(DIST_CONV_BN, 3, 0, 4 | 2);
}

/* A sharded fit of the MLP on one rank thread: its shard, checkpoint and
 * when rank 0's progress callback stops it. */
typedef struct shard_job {
    rank_ctx ctx;
    size_t first, n, total;  /* the shard; total 0: the whole set */
    char checkpoint[64];     /* "" for none */
    int resume;
    size_t stop_after;       /* rank 0 stops the fit after this many batches (0: never) */
    float params[20 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3];
    htnn_fit_result res;
    htnn_status status;
    char error[512];         /* htnn_last_error() of the rank's thread on failure */
} shard_job;

/* Rank r of `ranks` on its shard of the set, checkpointing to
 * dir/<name><r>. */
static void shard_job_init(shard_job *j, int r, int ranks, const char *dir, const char *name)
{
    memset(j, 0, sizeof *j);
    dist_shard_of(r, ranks, &j->first, &j->n);
    j->total = DIST_COUNT;
    snprintf(j->checkpoint, sizeof j->checkpoint, "%s/%s%d", dir, name, r);
}

static int stop_on_rank0(const htnn_progress *p, void *user)
{
    const shard_job *j = user;
    return j->ctx.rank == 0 && p->epoch * p->batches + p->batch + 1 == j->stop_after;
}

static htnn_status shard_fit(htnn_net *net, shard_job *j)
{
    htnn_optimizer *opt;
    htnn_status st = htnn_optimizer_create(NULL, &opt);
    if (st != HTNN_OK)
        return st;
    htnn_fit_options fo = dist_fit_options(j->first, j->total);
    fo.checkpoint_path = j->checkpoint[0] ? j->checkpoint : NULL;
    fo.resume = j->resume;
    fo.progress = j->stop_after ? stop_on_rank0 : NULL;
    fo.progress_user = j;
    j->res = (htnn_fit_result)HTNN_FIT_RESULT_INIT;
    st = htnn_net_fit(net, opt, NULL, data_x + j->first * 20, data_y + j->first, j->n, &fo,
                      &j->res);
    htnn_optimizer_free(opt);
    return st;
}

static void *shard_rank(void *arg)
{
    shard_job *j = arg;
    htnn_net *net;
    htnn_reducer red = HTNN_REDUCER_INIT;
    red.ranks = j->ctx.shared->ranks, red.rank = j->ctx.rank;
    red.allreduce_sum = thread_sum, red.user = &j->ctx;
    if (dist_net(DIST_MLP, 0, &net) != 0) {
        j->status = HTNN_ENOMEM;
        return NULL;
    }
    j->status = htnn_net_set_reducer(net, &red);
    if (j->status == HTNN_OK)
        j->status = shard_fit(net, j);
    if (j->status == HTNN_OK && dist_params(net, j->params) != 0)
        j->status = HTNN_EINVAL;
    snprintf(j->error, sizeof j->error, "%s", j->status == HTNN_OK ? "" : htnn_last_error());
    htnn_net_free(net);
    return NULL;
}

/* Runs jobs[0..ranks) as rank threads. */
static void run_shard_jobs(shard_job *jobs, int ranks)
{
    shared_sum s = {0};
    pthread_t th[MAX_RANKS];
    s.ranks = ranks;
    pthread_barrier_init(&s.barrier, NULL, (unsigned)ranks);
    for (int r = 0; r < ranks; r++) {
        jobs[r].ctx = (rank_ctx){&s, r};
        assert_int_equal(pthread_create(&th[r], NULL, shard_rank, &jobs[r]), 0);
    }
    for (int r = 0; r < ranks; r++) {
        pthread_join(th[r], NULL);
        free(s.scratch[r]);
    }
    pthread_barrier_destroy(&s.barrier);
}

/* Shards that do not tile the set, or ranks that disagree on sharding,
 * fail the fit on every rank alike (none is left waiting); alone, a net
 * accepts only the whole set as its shard. */
static void bad_shards(void **state)
{
    (void)state;
    dist_data(DIST_MLP, data_x, data_y);
    static shard_job jobs[2];
    const size_t cases[][2][3] = {
        {{0, 100, DIST_COUNT}, {0, 101, DIST_COUNT}},    /* both start at 0 */
        {{0, 100, DIST_COUNT}, {100, 100, DIST_COUNT}},  /* a gap */
        {{0, 100, DIST_COUNT}, {0, DIST_COUNT, 0}},      /* a shard and a whole set */
        {{0, 101, DIST_COUNT}, {101, 100, 202}},         /* other totals */
        {{0, DIST_COUNT, 0}, {0, 200, 0}},               /* whole sets of other sizes */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int r = 0; r < 2; r++) {
            memset(&jobs[r], 0, sizeof jobs[r]);
            jobs[r].first = cases[c][r][0];
            jobs[r].n = cases[c][r][1];
            jobs[r].total = cases[c][r][2];
        }
        run_shard_jobs(jobs, 2);
        for (int r = 0; r < 2; r++) {
            assert_int_equal(jobs[r].status, HTNN_EINVAL);
            assert_non_null(strstr(jobs[r].error, "do not fit together"));
        }
    }
    htnn_net *net;
    htnn_optimizer *opt;
    assert_int_equal(dist_net(DIST_MLP, 0, &net), 0);
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.shard_total = DIST_COUNT;
    fo.shard_first = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, data_x, data_y, 100, &fo, NULL),
                     HTNN_EINVAL);
    assert_non_null(strstr(htnn_last_error(), "needs a reducer"));
    fo.shard_first = 102;   /* [102, 202) of 201 */
    assert_int_equal(htnn_net_fit(net, opt, NULL, data_x, data_y, 100, &fo, NULL),
                     HTNN_EINVAL);
    assert_non_null(strstr(htnn_last_error(), "not a part of the 201"));
    fo.shard_first = 1, fo.shard_total = 0;   /* a first row without a total */
    assert_int_equal(htnn_net_fit(net, opt, NULL, data_x, data_y, 100, &fo, NULL),
                     HTNN_EINVAL);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
}

/* Checkpoints of a sharded fit: every rank writes the same file (the global
 * order, the whole set's fingerprint), and a sharded fit on another number
 * of ranks resumes from it.  An unsharded fit refuses it. */
static void sharded_checkpoints(void **state)
{
    (void)state;
    dist_data(DIST_MLP, data_x, data_y);
    static shard_job jobs[3], ref;
    char dir[] = "/tmp/htnn_test_reduce.XXXXXX";
    assert_non_null(mkdtemp(dir));
    /* the reference: one uninterrupted sharded fit alone (the whole set) */
    memset(&ref, 0, sizeof ref);
    ref.n = ref.total = DIST_COUNT;
    run_shard_jobs(&ref, 1);
    assert_int_equal(ref.status, HTNN_OK);
    /* 2 ranks, stopped after 15 of the 33 batches */
    for (int r = 0; r < 2; r++) {
        shard_job_init(&jobs[r], r, 2, dir, "ck");
        jobs[r].stop_after = 15;
    }
    run_shard_jobs(jobs, 2);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(jobs[r].status, HTNN_OK);
        assert_int_equal(jobs[r].res.stopped, 1);
        assert_int_equal(jobs[r].res.batches_run, 15);
    }
    size_t na, nb;
    FILE *f0 = fopen(jobs[0].checkpoint, "rb"), *f1 = fopen(jobs[1].checkpoint, "rb");
    assert_non_null(f0);
    assert_non_null(f1);
    static unsigned char c0[1 << 16], c1[1 << 16];
    na = fread(c0, 1, sizeof c0, f0), nb = fread(c1, 1, sizeof c1, f1);
    fclose(f0), fclose(f1);
    assert_int_equal(na, nb);
    assert_memory_equal(c0, c1, na);
    /* 3 ranks resume from copies of rank 0's file */
    for (int r = 0; r < 3; r++) {
        shard_job_init(&jobs[r], r, 3, dir, "resume");
        jobs[r].resume = 1;
        FILE *f = fopen(jobs[r].checkpoint, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(c0, 1, na, f), na);
        fclose(f);
    }
    /* without its copy, rank 2 would start afresh: every rank refuses */
    remove(jobs[2].checkpoint);
    run_shard_jobs(jobs, 3);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(jobs[r].status, HTNN_ESTATE);
        assert_non_null(strstr(jobs[r].error, "do not all continue from the same point"));
    }
    FILE *f = fopen(jobs[2].checkpoint, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(c0, 1, na, f), na);
    fclose(f);
    run_shard_jobs(jobs, 3);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(jobs[r].status, HTNN_OK);
        assert_int_equal(jobs[r].res.batches_run, 33);
        assert_memory_equal(jobs[r].params, jobs[0].params, sizeof jobs[0].params);
    }
    double diff = dist_max_diff(ref.params, jobs[0].params, sizeof ref.params / sizeof(float));
    printf("sharded, 2 ranks then 3 resumed: max |w - w_single| = %.3g\n", diff);
    assert_true(diff <= dist_tolerance(DIST_MLP));
    /* an unsharded fit does not take a sharded fit's checkpoint */
    memset(&ref, 0, sizeof ref);
    ref.n = DIST_COUNT;
    ref.resume = 1;
    snprintf(ref.checkpoint, sizeof ref.checkpoint, "%s/ck0", dir);
    run_shard_jobs(&ref, 1);
    assert_int_equal(ref.status, HTNN_ESTATE);
    assert_non_null(strstr(ref.error, "by a sharded fit"));
    for (int r = 0; r < 3; r++) {
        remove(jobs[r].checkpoint);
        snprintf(jobs[r].checkpoint, sizeof jobs[r].checkpoint, "%s/ck%d", dir, r);
        remove(jobs[r].checkpoint);
    }
    assert_int_equal(rmdir(dir), 0);
}

static htnn_status noop_sum(float *values, size_t count, void *user)
{
    (void)values, (void)count, (void)user;
    return HTNN_OK;
}

static void reducer_arguments(void **state)
{
    (void)state;
    htnn_net *net;
    assert_int_equal(dist_net(DIST_MLP, 0, &net), 0);
    htnn_reducer r = HTNN_REDUCER_INIT;
    r.allreduce_sum = noop_sum;
    assert_int_equal(htnn_net_set_reducer(NULL, &r), HTNN_EINVAL);
    assert_int_equal(htnn_net_set_reducer(net, &r), HTNN_OK);
    assert_int_equal(htnn_net_set_reducer(net, NULL), HTNN_OK);

    htnn_reducer bad = r;
    bad.struct_size = 0;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad.struct_size = offsetof(htnn_reducer, allreduce_sum);  /* no room for the function */
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad.struct_size = sizeof bad + 8;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EUNSUPPORTED);
    bad = r;
    bad.ranks = 0;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad = r;
    bad.ranks = 2, bad.rank = 2;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad.rank = -1;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad = r;
    bad.allreduce_sum = NULL;
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad = r;
    bad.start_sum = noop_sum;  /* without wait_all */
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    bad = r;
    bad.reduce_scatter_sum = noop_sum;  /* without allgather */
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_EINVAL);
    /* an older caller's struct that ends after allreduce_sum is accepted */
    bad = r;
    bad.struct_size = offsetof(htnn_reducer, start_sum);
    assert_int_equal(htnn_net_set_reducer(net, &bad), HTNN_OK);
    htnn_net_free(net);
}

/* A failing reduction fails the batch with the reducer's status before any
 * weight changes. */
static void reducer_failure(void **state)
{
    (void)state;
    dist_data(DIST_MLP, data_x, data_y);
    shared_sum s = {0};
    s.ranks = 1;
    s.fail = 1;
    pthread_barrier_init(&s.barrier, NULL, 1);
    rank_ctx ctx = {&s, 0};
    htnn_reducer r = HTNN_REDUCER_INIT;
    r.allreduce_sum = thread_sum;
    r.user = &ctx;
    htnn_net *net;
    htnn_optimizer *opt;
    assert_int_equal(dist_net(DIST_MLP, 0, &net), 0);
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    assert_int_equal(htnn_net_set_reducer(net, &r), HTNN_OK);
    size_t n = htnn_net_parameter_count(net);
    float *before = malloc(n * sizeof *before), *after = malloc(n * sizeof *after);
    assert_int_equal(dist_params(net, before), 0);
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, data_x, data_y, 10, NULL), HTNN_EIO);
    assert_int_equal(dist_params(net, after), 0);
    assert_memory_equal(before, after, n * sizeof *before);
    /* alone again, it trains */
    assert_int_equal(htnn_net_set_reducer(net, NULL), HTNN_OK);
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, data_x, data_y, 10, NULL), HTNN_OK);
    free(before);
    free(after);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    pthread_barrier_destroy(&s.barrier);
}

/* A sharded fit whose progress callback trains one batch of its own on
 * the same net, with unequal shares (18 and 2 rows): that batch is not one
 * of the fit's, so its dense layers' gradients must not go as the fit's
 * factors (whose buffer holds 10 rows per rank). */
typedef struct nested_job {
    rank_ctx ctx;
    htnn_net *net;
    htnn_optimizer *opt;
    htnn_status inner;
    int reports;
    void *model;
    size_t model_size;
    htnn_status status;
} nested_job;

static int nested_batch(const htnn_progress *p, void *user)
{
    nested_job *j = user;
    (void)p;
    if (j->reports++ == 0)
        j->inner = htnn_net_train_batch(j->net, j->opt, NULL, data_x, data_y,
                                        j->ctx.rank == 0 ? 18 : 2, NULL);
    return 0;
}

static void *nested_rank(void *arg)
{
    nested_job *j = arg;
    htnn_reducer red = HTNN_REDUCER_INIT;
    red.ranks = j->ctx.shared->ranks, red.rank = j->ctx.rank;
    red.allreduce_sum = thread_sum, red.reduce_scatter_sum = thread_scatter;
    red.allgather = thread_gather, red.user = &j->ctx;
    if (dist_net(DIST_WIDE_MLP, 0, &j->net) != 0 ||
        htnn_optimizer_create(NULL, &j->opt) != HTNN_OK) {
        j->status = HTNN_ENOMEM;
        return NULL;
    }
    htnn_fit_options fo = dist_fit_options(0, 0);
    fo.epochs = 1;
    fo.progress = nested_batch;
    fo.progress_user = j;
    j->status = htnn_net_set_reducer(j->net, &red);
    if (j->status == HTNN_OK)
        j->status = htnn_net_fit(j->net, j->opt, NULL, data_x, data_y, DIST_COUNT, &fo, NULL);
    if (j->status == HTNN_OK)
        j->status = htnn_net_save_buffer(j->net, &j->model, &j->model_size);
    htnn_optimizer_free(j->opt);
    htnn_net_free(j->net);
    return NULL;
}

static void train_batch_inside_sharded_fit(void **state)
{
    (void)state;
    dist_data(DIST_WIDE_MLP, data_x, data_y);
    shared_sum s = {0};
    s.ranks = 2;
    pthread_barrier_init(&s.barrier, NULL, 2);
    nested_job jobs[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        jobs[r] = (nested_job){{&s, r}, NULL, NULL, HTNN_EINVAL, 0, NULL, 0, HTNN_OK};
        assert_int_equal(pthread_create(&th[r], NULL, nested_rank, &jobs[r]), 0);
    }
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(jobs[r].status, HTNN_OK);
        assert_int_equal(jobs[r].inner, HTNN_OK);
        assert_int_equal(jobs[r].model_size, jobs[0].model_size);
        assert_memory_equal(jobs[r].model, jobs[0].model, jobs[0].model_size);
    }
    for (int r = 0; r < 2; r++) {
        htnn_free(jobs[r].model);
        free(s.scratch[r]);
    }
    pthread_barrier_destroy(&s.barrier);
}

/* htnn_net_train_batch with a reducer: each rank's rows of one global
 * batch; the global row count is reduced. */
typedef struct batch_job {
    rank_ctx ctx;
    size_t first, count;
    float params[20 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3];
    htnn_batch_result res;
    htnn_status status;
} batch_job;

static void *batch_rank(void *arg)
{
    batch_job *j = arg;
    htnn_net *net;
    htnn_optimizer *opt;
    htnn_reducer red = HTNN_REDUCER_INIT;
    red.ranks = j->ctx.shared->ranks, red.rank = j->ctx.rank;
    red.allreduce_sum = thread_sum, red.user = &j->ctx;
    if (dist_net(DIST_MLP, 0, &net) != 0 || htnn_optimizer_create(NULL, &opt) != HTNN_OK) {
        j->status = HTNN_ENOMEM;
        return NULL;
    }
    j->status = htnn_net_set_reducer(net, &red);
    for (int step = 0; step < 3 && j->status == HTNN_OK; step++)
        j->status = htnn_net_train_batch(net, opt, NULL, data_x + j->first * 20,
                                         data_y + j->first, j->count, &j->res);
    if (j->status == HTNN_OK && dist_params(net, j->params) != 0)
        j->status = HTNN_EINVAL;
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    return NULL;
}

static void train_batch_two_ranks(void **state)
{
    (void)state;
    dist_data(DIST_MLP, data_x, data_y);
    htnn_net *net;
    htnn_optimizer *opt;
    htnn_batch_result ref_res = HTNN_BATCH_RESULT_INIT;
    assert_int_equal(dist_net(DIST_MLP, 0, &net), 0);
    size_t n = htnn_net_parameter_count(net);
    assert_int_equal(n, sizeof ((batch_job *)0)->params / sizeof(float));
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    for (int step = 0; step < 3; step++)
        assert_int_equal(htnn_net_train_batch(net, opt, NULL, data_x, data_y, 30, &ref_res),
                         HTNN_OK);
    float *ref = malloc(n * sizeof *ref);
    assert_int_equal(dist_params(net, ref), 0);
    htnn_optimizer_free(opt);
    htnn_net_free(net);

    shared_sum s = {0};
    s.ranks = 2;
    pthread_barrier_init(&s.barrier, NULL, 2);
    static batch_job jobs[2];
    pthread_t th[2];
    /* unequal shares: 13 and 17 rows of the 30 */
    jobs[0] = (batch_job){{&s, 0}, 0, 13, {0}, HTNN_BATCH_RESULT_INIT, HTNN_OK};
    jobs[1] = (batch_job){{&s, 1}, 13, 17, {0}, HTNN_BATCH_RESULT_INIT, HTNN_OK};
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_create(&th[r], NULL, batch_rank, &jobs[r]), 0);
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(jobs[r].status, HTNN_OK);
        assert_memory_equal(jobs[r].params, jobs[0].params, sizeof jobs[0].params);
        /* the whole batch's loss and correct count on every rank */
        assert_int_equal(jobs[r].res.correct, ref_res.correct);
        assert_true(fabs(jobs[r].res.loss - ref_res.loss) < 1e-5);
    }
    assert_true(dist_max_diff(ref, jobs[0].params, n) <= dist_tolerance(DIST_MLP));
    free(s.scratch[0]);
    free(s.scratch[1]);
    pthread_barrier_destroy(&s.barrier);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reducer_arguments),
        cmocka_unit_test(reducer_failure),
        cmocka_unit_test(mlp_one_rank_is_exact),
        cmocka_unit_test(mlp_two_ranks),
        cmocka_unit_test(mlp_three_ranks),
        cmocka_unit_test(mlp_threads_per_rank),
        cmocka_unit_test(wide_mlp_sharded_factors),
        cmocka_unit_test(conv_bn_one_rank_is_exact),
        cmocka_unit_test(conv_bn_two_ranks),
        cmocka_unit_test(train_batch_two_ranks),
        cmocka_unit_test(train_batch_inside_sharded_fit),
        cmocka_unit_test(mlp_sharded_data),
        cmocka_unit_test(conv_bn_sharded_data),
        cmocka_unit_test(bad_shards),
        cmocka_unit_test(sharded_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
