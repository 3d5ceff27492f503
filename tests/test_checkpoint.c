/* Resumable training and numerical faults (issue 7, parts 4 and 5):
 * checkpoint files of htnn_net_fit, resuming them bit-identically, refusing
 * ones that do not belong to the fit or are corrupt, the checkpoint cadence,
 * and the return to the last good state when training diverges.
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <htnn/htnn.h>
#include "crc_reference.h"
#include "conv_nets.h"

enum { N = 150, W = 6, CLASSES = 3, VAL = 40 };

static float xs[N * W], val_x[VAL * W];
static int32_t ys[N], val_y[VAL];
static char dir[64];

static void make_data(void)
{
    srand(7);
    for (size_t i = 0; i < N * W; i++)
        xs[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    for (size_t i = 0; i < N; i++)
        ys[i] = (xs[i * W] + xs[i * W + 1] > 0.3f) ? 2 : (xs[i * W + 2] > 0.0f ? 1 : 0);
    memcpy(val_x, xs, sizeof val_x);
    memcpy(val_y, ys, sizeof val_y);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/htnn-ckpt-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    make_data();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* ---- nets, optimizers, parameters ------------------------------------- */

typedef struct config {
    int binary;        /* binary weights on the second hidden layer */
    int sgd;           /* SGD with Nesterov momentum instead of Adam */
    int shuffle;
    size_t batch, epochs;
} config;

static htnn_net *make_net(const config *c, uint64_t seed, size_t hidden)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = seed;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(W, &no, &net), HTNN_OK);
    const size_t units[] = {hidden, 8, CLASSES};
    for (int i = 0; i < 3; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = units[i];
        d.activation = i < 2 ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY;
        d.binary_weights = i == 1 && c->binary ? HTNN_BINARY_SCALED : HTNN_BINARY_NONE;
        assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    }
    return net;
}

static htnn_optimizer *make_opt(const config *c)
{
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    if (c->sgd) {
        o.kind = HTNN_OPT_SGD;
        o.learning_rate = 0.05f;
        o.momentum = 0.9f;
        o.nesterov = 1;
        o.schedule = HTNN_SCHEDULE_STEP;
        o.step_epochs = 2;
        o.step_gamma = 0.5f;
    } else {
        o.learning_rate = 0.01f;
        o.schedule = HTNN_SCHEDULE_COSINE;
        o.min_learning_rate = 0.001f;
    }
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    return opt;
}

static htnn_optimizer *make_sgd(float lr)
{
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    o.kind = HTNN_OPT_SGD;
    o.learning_rate = lr;
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    return opt;
}

/* Every weight and bias of the net, concatenated; *n values. */
static float *params(const htnn_net *net, size_t *n)
{
    size_t total = 0, layers = htnn_net_layer_count(net);
    float *all = NULL;
    for (size_t d = 0; d < layers; d++) {
        htnn_layer *l = htnn_net_layer((htnn_net *)net, d);
        htnn_layer_info info = HTNN_LAYER_INFO_INIT;
        assert_int_equal(htnn_layer_get_info(l, &info), HTNN_OK);
        all = realloc(all, (total + info.weight_count + info.out_width) * sizeof *all);
        assert_non_null(all);
        assert_int_equal(htnn_layer_get_weights(l, all + total, info.weight_count), HTNN_OK);
        total += info.weight_count;
        assert_int_equal(htnn_layer_get_bias(l, all + total, info.out_width), HTNN_OK);
        total += info.out_width;
    }
    *n = total;
    return all;
}

static void assert_same_params(const htnn_net *a, const htnn_net *b)
{
    size_t na, nb;
    float *pa = params(a, &na), *pb = params(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof *pa);
    free(pa);
    free(pb);
}

static void assert_params_equal(const htnn_net *net, const float *expected, size_t n)
{
    size_t k;
    float *p = params(net, &k);
    assert_int_equal(k, n);
    assert_memory_equal(p, expected, n * sizeof *p);
    for (size_t i = 0; i < k; i++)
        assert_true(isfinite(p[i]));
    free(p);
}

/* The net predicts like a copy of it that was saved and loaded (which
 * binarises its weights afresh). */
static void assert_predicts_like_reloaded(htnn_net *net)
{
    void *data = NULL;
    size_t size = 0;
    htnn_net *copy = NULL;
    float a[20 * CLASSES], b[20 * CLASSES];
    assert_int_equal(htnn_net_save_buffer(net, &data, &size), HTNN_OK);
    assert_int_equal(htnn_net_load_buffer(data, size, &copy), HTNN_OK);
    assert_int_equal(htnn_net_predict_logits(net, xs, 20, a), HTNN_OK);
    assert_int_equal(htnn_net_predict_logits(copy, xs, 20, b), HTNN_OK);
    assert_memory_equal(a, b, sizeof a);
    htnn_free(data);
    htnn_net_free(copy);
}

/* ---- progress recording and stopping ---------------------------------- */

enum { MAX_REPORTS = 256 };

typedef struct recorder {
    htnn_progress reports[MAX_REPORTS];
    size_t n;
    size_t stop_at;        /* stop after this many reports of this fit (0: never) */
    const char *ckpt;      /* copy this file when ... */
    const char *copy_to;   /* ... the copy_after-th report arrives */
    size_t copy_after;
} recorder;

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static int record(const htnn_progress *p, void *user)
{
    recorder *r = user;
    assert_true(r->n < MAX_REPORTS);
    r->reports[r->n++] = *p;
    if (r->copy_to != NULL && r->n == r->copy_after)
        copy_file(r->ckpt, r->copy_to);
    return r->stop_at != 0 && r->n == r->stop_at;
}

static htnn_fit_options fit_options(const config *c, recorder *rec)
{
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = c->epochs;
    fo.batch_size = c->batch;
    fo.shuffle = c->shuffle;
    fo.progress = record;
    fo.progress_user = rec;
    fo.val_x = val_x;
    fo.val_labels = val_y;
    fo.val_count = VAL;
    return fo;
}

static void assert_same_report(const htnn_progress *a, const htnn_progress *b)
{
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->batch, b->batch);
    assert_int_equal(a->batches, b->batches);
    assert_memory_equal(&a->loss, &b->loss, sizeof a->loss);
    assert_memory_equal(&a->accuracy, &b->accuracy, sizeof a->accuracy);
    assert_int_equal(a->end_of_epoch, b->end_of_epoch);
    assert_memory_equal(&a->val_loss, &b->val_loss, sizeof a->val_loss);
    assert_memory_equal(&a->learning_rate, &b->learning_rate, sizeof a->learning_rate);
}

static void assert_same_result(const htnn_fit_result *a, const htnn_fit_result *b)
{
    assert_int_equal(a->epochs_run, b->epochs_run);
    assert_int_equal(a->batches_run, b->batches_run);
    assert_int_equal(a->stopped, b->stopped);
    assert_memory_equal(&a->loss, &b->loss, sizeof a->loss);
    assert_memory_equal(&a->accuracy, &b->accuracy, sizeof a->accuracy);
    assert_memory_equal(&a->val_loss, &b->val_loss, sizeof a->val_loss);
    assert_memory_equal(&a->val_accuracy, &b->val_accuracy, sizeof a->val_accuracy);
}

/* An uninterrupted fit: the reference. */
typedef struct reference {
    htnn_net *net;
    uint64_t steps;
    htnn_fit_result res;
    recorder rec;
} reference;

static void run_reference(const config *c, reference *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->net = make_net(c, 11, 12);
    htnn_optimizer *opt = make_opt(c);
    htnn_fit_options fo = fit_options(c, &ref->rec);
    ref->res = (htnn_fit_result)HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(ref->net, opt, NULL, xs, ys, N, &fo, &ref->res), HTNN_OK);
    ref->steps = htnn_optimizer_steps(opt);
    for (size_t i = 0; i < ref->rec.n; i++) /* validation only at epoch ends */
        assert_true(ref->rec.reports[i].end_of_epoch || isnan(ref->rec.reports[i].val_loss));
    htnn_optimizer_free(opt);
}

/* Resumes from `ckpt` with a fresh net of another seed and a fresh
 * optimizer, and checks everything against the reference. */
static void resume_and_compare(const config *c, const reference *ref, const char *ckpt)
{
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    assert_int_equal(htnn_checkpoint_get_info(ckpt, &info), HTNN_OK);
    size_t first = info.batches_run;
    htnn_net *net = make_net(c, 99, 12);
    htnn_optimizer *opt = make_opt(c);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(c, &rec);
    fo.checkpoint_path = ckpt;
    fo.resume = 1;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_OK);
    assert_same_params(net, ref->net);
    assert_int_equal(htnn_optimizer_steps(opt), ref->steps);
    assert_same_result(&res, &ref->res);
    assert_int_equal(first + rec.n, ref->rec.n);
    for (size_t i = 0; i < rec.n; i++)
        assert_same_report(&rec.reports[i], &ref->rec.reports[first + i]);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* Stops at report `stop` with checkpoints every `every` batches, keeps a
 * copy of the checkpoint file as it was at report `kill` (a process killed
 * between two checkpoints), then resumes both the stopped fit's checkpoint
 * and the copy. */
static void check_resume(const config *c, size_t every, size_t stop, size_t kill)
{
    reference ref;
    run_reference(c, &ref);
    const char *ckpt = path_of("stop.ckpt"), *killed = path_of("kill.ckpt");
    unlink(ckpt);
    htnn_net *net = make_net(c, 11, 12);
    htnn_optimizer *opt = make_opt(c);
    recorder rec = {0};
    rec.stop_at = stop;
    rec.ckpt = ckpt;
    rec.copy_to = killed;
    rec.copy_after = kill;
    htnn_fit_options fo = fit_options(c, &rec);
    fo.checkpoint_path = ckpt;
    fo.checkpoint_every = every;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_OK);
    assert_int_equal(res.stopped, 1);
    assert_int_equal(res.batches_run, stop);
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    assert_int_equal(htnn_checkpoint_get_info(ckpt, &info), HTNN_OK);
    assert_int_equal(info.batches_run, stop); /* a stop writes a checkpoint */
    assert_int_equal(info.optimizer_steps, stop);
    size_t step = every ? every : (N + c->batch - 1) / c->batch;
    assert_int_equal(htnn_checkpoint_get_info(killed, &info), HTNN_OK);
    assert_int_equal(info.batches_run, (kill - 1) / step * step);
    resume_and_compare(c, &ref, ckpt);
    resume_and_compare(c, &ref, killed);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_net_free(ref.net);
}

static void test_resume_adam_shuffled(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 16, 4}; /* 10 batches per epoch, the last of 6 */
    check_resume(&c, 3, 17, 15);       /* stop in epoch 1, kill copy from batch 12 */
    check_resume(&c, 5, 20, 18);       /* stop on an epoch's last batch */
}

static void test_resume_sgd_binary_unshuffled(void **state)
{
    (void)state;
    const config c = {1, 1, 0, 32, 5}; /* 5 batches per epoch */
    check_resume(&c, 4, 13, 11);
}

static void test_resume_at_epoch_cadence(void **state)
{
    (void)state;
    const config c = {1, 0, 1, 50, 4}; /* 3 batches per epoch */
    check_resume(&c, 0, 8, 8);         /* the copy holds the end of epoch 1 (batch 6) */
}

/* A conv net with batch norm, whose running statistics are training state
 * too: 96 images of 2 x 4 x 4 (the first 32 values of xs's rows, reused). */
static htnn_net *make_conv_net(void)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = 21;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(32, &no, &net), HTNN_OK);
    assert_int_equal(htnn_net_set_input_shape(net, 2, 4, 4), HTNN_OK);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 4;
    add_conv_block_and_output(net, &co, CLASSES);
    return net;
}

static void assert_same_model_bytes(const htnn_net *a, const htnn_net *b)
{
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(htnn_net_save_buffer(a, &da, &na), HTNN_OK);
    assert_int_equal(htnn_net_save_buffer(b, &db, &nb), HTNN_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    htnn_free(da);
    htnn_free(db);
}

static void test_resume_conv_batchnorm(void **state)
{
    (void)state;
    enum { M = 96 };
    static float img[M * 32];
    for (size_t i = 0; i < M; i++)
        memcpy(img + i * 32, xs + (i % (N * W / 32)) * 32, 32 * sizeof *img);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch_size = 16; /* 6 batches per epoch */
    htnn_net *ref = make_conv_net();
    htnn_optimizer *opt = make_opt(&(config){0, 0, 1, 16, 3});
    assert_int_equal(htnn_net_fit(ref, opt, NULL, img, ys, M, &fo, NULL), HTNN_OK);
    htnn_optimizer_free(opt);
    /* stopped after 8 batches, checkpoints every 5 */
    recorder rec = {0};
    rec.stop_at = 8;
    fo.progress = record;
    fo.progress_user = &rec;
    fo.checkpoint_path = path_of("conv.ckpt");
    fo.checkpoint_every = 5;
    htnn_net *net = make_conv_net();
    opt = make_opt(&(config){0, 0, 1, 16, 3});
    assert_int_equal(htnn_net_fit(net, opt, NULL, img, ys, M, &fo, NULL), HTNN_OK);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    /* a fresh net resumes; weights and running statistics end identical */
    net = make_conv_net();
    opt = make_opt(&(config){0, 0, 1, 16, 3});
    fo.progress = NULL;
    fo.resume = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, img, ys, M, &fo, NULL), HTNN_OK);
    assert_same_model_bytes(net, ref);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    htnn_net_free(ref);
}

/* ---- what a checkpoint is -------------------------------------------- */

static void test_checkpoint_is_a_model_file(void **state)
{
    (void)state;
    const config c = {1, 0, 1, 20, 2};
    const char *ckpt = path_of("model.ckpt");
    htnn_net *net = make_net(&c, 3, 12);
    htnn_optimizer *opt = make_opt(&c);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(&c, &rec);
    fo.checkpoint_path = ckpt;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
    /* the final checkpoint holds the finished fit */
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    assert_int_equal(htnn_checkpoint_get_info(ckpt, &info), HTNN_OK);
    assert_int_equal(info.epoch, 2);
    assert_int_equal(info.batch, 0);
    assert_int_equal(info.batches, 8);
    assert_int_equal(info.epochs, 2);
    assert_int_equal(info.batches_run, 16);
    assert_int_equal(info.count, N);
    assert_int_equal(info.input_width, W);
    assert_int_equal(info.batch_size, 20);
    assert_int_equal(info.shuffle, 1);
    assert_int_equal(info.optimizer_kind, HTNN_OPT_ADAM);
    assert_int_equal(info.optimizer_steps, 16);
    /* htnn_net_load reads it as the net, skipping the training state */
    htnn_net *loaded = NULL;
    assert_int_equal(htnn_net_load(ckpt, &loaded), HTNN_OK);
    assert_same_params(loaded, net);
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(htnn_net_save_buffer(loaded, &a, &na), HTNN_OK);
    assert_int_equal(htnn_net_save_buffer(net, &b, &nb), HTNN_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    FILE *f = fopen(ckpt, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_true((size_t)size > na + 8 * N); /* + the order and the Adam moments */
    /* a plain model is not a checkpoint */
    const char *plain = path_of("plain.htnn");
    assert_int_equal(htnn_net_save(net, plain), HTNN_OK);
    assert_int_equal(htnn_checkpoint_get_info(plain, &info), HTNN_EFORMAT);
    assert_non_null(strstr(htnn_last_error(), "not a checkpoint"));
    /* resuming a finished fit changes nothing and reports its result */
    uint64_t steps = htnn_optimizer_steps(opt);
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    fo.resume = 1;
    rec.n = 0;
    assert_int_equal(htnn_net_fit(loaded, opt, NULL, xs, ys, N, &fo, &res), HTNN_OK);
    assert_int_equal(res.batches_run, 16);
    assert_int_equal(res.epochs_run, 2);
    assert_true(isfinite(res.val_accuracy));
    assert_int_equal(rec.n, 0);
    assert_int_equal(htnn_optimizer_steps(opt), steps);
    assert_same_params(loaded, net);
    /* into a net that has predicted (binarised) with its own weights */
    htnn_net *fresh = make_net(&c, 77, 12);
    float logits[CLASSES];
    assert_int_equal(htnn_net_predict_logits(fresh, xs, 1, logits), HTNN_OK);
    assert_int_equal(htnn_net_fit(fresh, opt, NULL, xs, ys, N, &fo, &res), HTNN_OK);
    assert_same_params(fresh, net);
    assert_predicts_like_reloaded(fresh);
    htnn_net_free(fresh);
    htnn_free(a);
    htnn_free(b);
    htnn_net_free(loaded);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

static void test_resume_missing_file_starts_fresh(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 25, 2};
    reference ref;
    run_reference(&c, &ref);
    const char *ckpt = path_of("missing.ckpt");
    unlink(ckpt);
    htnn_net *net = make_net(&c, 11, 12);
    htnn_optimizer *opt = make_opt(&c);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(&c, &rec);
    fo.checkpoint_path = ckpt;
    fo.resume = 1;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_OK);
    assert_same_params(net, ref.net);
    assert_same_result(&res, &ref.res);
    assert_int_equal(access(ckpt, F_OK), 0);
    htnn_net_free(net);
    htnn_net_free(ref.net);
    htnn_optimizer_free(opt);
}

/* ---- refusals ---------------------------------------------------------- */

/* A checkpoint of `c` stopped after 5 batches. */
static const char *stopped_checkpoint(const config *c, const char *name)
{
    const char *ckpt = path_of(name);
    htnn_net *net = make_net(c, 5, 12);
    htnn_optimizer *opt = make_opt(c);
    recorder rec = {0};
    rec.stop_at = 5;
    htnn_fit_options fo = fit_options(c, &rec);
    fo.checkpoint_path = ckpt;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    return ckpt;
}

/* Resuming fails with `expected` and changes neither the net nor the
 * optimizer. */
static void assert_resume_fails(htnn_net *net, htnn_optimizer *opt, const float *x,
                                size_t count, htnn_fit_options fo, htnn_status expected,
                                const char *message)
{
    size_t n;
    float *before = params(net, &n);
    uint64_t steps = htnn_optimizer_steps(opt);
    fo.resume = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, ys, count, &fo, NULL), expected);
    if (message && strstr(htnn_last_error(), message) == NULL)
        fail_msg("'%s' does not mention '%s'", htnn_last_error(), message);
    assert_params_equal(net, before, n);
    assert_int_equal(htnn_optimizer_steps(opt), steps);
    free(before);
}

static void test_mismatched_resume_refused(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 16, 3};
    const char *ckpt = stopped_checkpoint(&c, "mismatch.ckpt");
    htnn_net *net = make_net(&c, 5, 12);
    htnn_optimizer *opt = make_opt(&c);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(&c, &rec);
    fo.checkpoint_path = ckpt;
    htnn_fit_options other = fo;
    other.batch_size = 15;
    assert_resume_fails(net, opt, xs, N, other, HTNN_ESTATE, "batch size 16");
    other = fo;
    other.epochs = 4;
    assert_resume_fails(net, opt, xs, N, other, HTNN_ESTATE, "epochs 3");
    other = fo;
    other.shuffle = 0;
    assert_resume_fails(net, opt, xs, N, other, HTNN_ESTATE, "shuffle");
    assert_resume_fails(net, opt, xs, N - 1, fo, HTNN_ESTATE, "example count");
    static float changed[N * W];
    memcpy(changed, xs, sizeof changed);
    changed[N * W - 1] += 0.5f;
    assert_resume_fails(net, opt, changed, N, fo, HTNN_ESTATE, "other training data");
    /* another architecture, another optimizer kind, other optimizer state */
    htnn_net *wider = make_net(&c, 5, 13);
    assert_resume_fails(wider, opt, xs, N, fo, HTNN_ESTATE, "layer 0");
    htnn_optimizer *sgd = make_sgd(0.1f);
    assert_resume_fails(net, sgd, xs, N, fo, HTNN_ESTATE, "optimizer kind");
    /* the same fit resumes */
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
    htnn_net_free(wider);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_optimizer_free(sgd);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(*size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

static void write_all(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

/* The offset of section `tag`'s payload (walking the 12-byte heads). */
static size_t section_at(const unsigned char *d, size_t size, uint32_t tag)
{
    uint64_t layers = 0, len = 0;
    size_t pos = 44;
    memcpy(&layers, d + 36, 8); /* little-endian hosts only; the CI's */
    for (uint64_t i = 0; i < layers; i++) {
        memcpy(&len, d + pos + 4, 8);
        pos += 12 + (size_t)len;
    }
    for (;;) {
        uint32_t t;
        assert_true(pos + 12 <= size);
        memcpy(&t, d + pos, 4);
        memcpy(&len, d + pos + 4, 8);
        if (t == tag)
            return pos + 12;
        assert_int_not_equal(t, 0);
        pos += 12 + (size_t)len;
    }
}

/* Writes a copy of `from` with 8 bytes at `at` replaced by v and the
 * checksum fixed, so that the reader's value checks see it. */
static void patch_u64(const unsigned char *from, size_t size, size_t at, uint64_t v,
                      const char *to)
{
    unsigned char *d = malloc(size);
    assert_non_null(d);
    memcpy(d, from, size);
    memcpy(d + at, &v, 8);
    uint32_t crc = crc32_reference(d, size - 4);
    memcpy(d + size - 4, &crc, 4);
    write_all(to, d, size);
    free(d);
}

static void test_corrupt_checkpoint_refused(void **state)
{
    (void)state;
    const uint32_t one = 1;
    unsigned char little;
    memcpy(&little, &one, 1);
    if (!little)
        skip();
    const config c = {0, 0, 1, 16, 3};
    const char *ckpt = stopped_checkpoint(&c, "good.ckpt"), *bad = path_of("bad.ckpt");
    size_t size;
    unsigned char *data = read_all(ckpt, &size);
    htnn_net *net = make_net(&c, 5, 12);
    htnn_optimizer *opt = make_opt(&c);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(&c, &rec);
    fo.checkpoint_path = bad;
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    /* flipped bytes: in the weights, in each section, in the checksum */
    size_t fit = section_at(data, size, 2), optim = section_at(data, size, 1);
    const size_t flips[] = {100, optim + 90, fit + 50, fit + 160, size - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        data[flips[i]] ^= 0x10;
        write_all(bad, data, size);
        data[flips[i]] ^= 0x10;
        assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "checksum");
        assert_int_equal(htnn_checkpoint_get_info(bad, &info), HTNN_EFORMAT);
    }
    /* truncated */
    write_all(bad, data, size / 2);
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, bad);
    write_all(bad, data, 0);
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, bad);
    /* consistent checksums, impossible values */
    patch_u64(data, size, fit + 44, 7, bad); /* epoch 7 of 3 */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "impossible position");
    patch_u64(data, size, fit + 52, 10, bad); /* batch 10 of 10 */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "impossible position");
    uint64_t second;
    memcpy(&second, data + fit + 156, 8);
    patch_u64(data, size, fit + 148, second, bad); /* order[0] = order[1] */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "permutation");
    patch_u64(data, size, fit + 140, N - 1, bad); /* order length */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "length");
    patch_u64(data, size, optim + 72, 3, bad); /* optimizer state length */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "length");
    patch_u64(data, size, optim + 80, 0x7fc000007fc00000ull, bad); /* NaN moments */
    assert_resume_fails(net, opt, xs, N, fo, HTNN_EFORMAT, "NaN");
    /* the intact file resumes */
    write_all(bad, data, size);
    fo.resume = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
    free(data);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

static void test_option_checks(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 16, 1};
    htnn_net *net = make_net(&c, 5, 12);
    htnn_optimizer *opt = make_opt(&c);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.resume = 1; /* without a path */
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_EINVAL);
    fo.checkpoint_path = "";
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_EINVAL);
    fo.checkpoint_path = path_of("x.ckpt");
    fo.resume = 2;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_optimizer_steps(opt), 0);
    /* a caller built against 0.1 headers: no checkpoint fields read */
    fo.struct_size = offsetof(htnn_fit_options, checkpoint_path);
    fo.epochs = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
    assert_int_equal(access(fo.checkpoint_path, F_OK), -1);
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    assert_int_equal(htnn_checkpoint_get_info(NULL, &info), HTNN_EINVAL);
    assert_int_equal(htnn_checkpoint_get_info(fo.checkpoint_path, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_checkpoint_get_info(fo.checkpoint_path, &info), HTNN_EIO);
    info.struct_size = sizeof info + 8;
    assert_int_equal(htnn_checkpoint_get_info(fo.checkpoint_path, &info), HTNN_EINVAL);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* ---- cadence ------------------------------------------------------------ */

typedef struct cadence {
    const char *ckpt;
    size_t every, per_epoch, reports;
} cadence;

/* At report g (1-based), the file holds the last checkpoint written after
 * an earlier report. */
static int check_cadence(const htnn_progress *p, void *user)
{
    cadence *cd = user;
    size_t g = ++cd->reports, step = cd->every ? cd->every : cd->per_epoch;
    size_t expected = (g - 1) / step * step;
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    (void)p;
    if (expected == 0) {
        assert_int_equal(htnn_checkpoint_get_info(cd->ckpt, &info), HTNN_EIO);
        return 0;
    }
    assert_int_equal(htnn_checkpoint_get_info(cd->ckpt, &info), HTNN_OK);
    assert_int_equal(info.batches_run, expected);
    assert_int_equal(info.epoch * info.batches + info.batch, expected);
    assert_int_equal(info.optimizer_steps, expected);
    return 0;
}

static void test_checkpoint_cadence(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 30, 3}; /* 5 batches per epoch, 15 in all */
    for (size_t every = 0; every <= 7; every += 7) {
        cadence cd = {path_of("cadence.ckpt"), every, 5, 0};
        unlink(cd.ckpt);
        htnn_net *net = make_net(&c, 5, 12);
        htnn_optimizer *opt = make_opt(&c);
        htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
        fo.epochs = c.epochs;
        fo.batch_size = c.batch;
        fo.checkpoint_path = cd.ckpt;
        fo.checkpoint_every = every;
        fo.progress = check_cadence;
        fo.progress_user = &cd;
        assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_OK);
        assert_int_equal(cd.reports, 15);
        htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
        assert_int_equal(htnn_checkpoint_get_info(cd.ckpt, &info), HTNN_OK);
        assert_int_equal(info.batches_run, 15); /* and one at the end */
        htnn_net_free(net);
        htnn_optimizer_free(opt);
    }
}

/* ---- numerical faults ---------------------------------------------------- */

static void test_nan_inputs_rejected_before_training(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 16, 2};
    htnn_net *net = make_net(&c, 5, 12);
    htnn_optimizer *opt = make_opt(&c);
    size_t n;
    float *before = params(net, &n);
    static float bad[N * W];
    memcpy(bad, xs, sizeof bad);
    bad[N * W / 2] = NAN;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.checkpoint_path = path_of("nan.ckpt");
    assert_int_equal(htnn_net_fit(net, opt, NULL, bad, ys, N, &fo, NULL), HTNN_ENUMERIC);
    bad[N * W / 2] = INFINITY;
    assert_int_equal(htnn_net_fit(net, opt, NULL, bad, ys, N, &fo, NULL), HTNN_ENUMERIC);
    fo.val_x = bad;
    fo.val_labels = ys;
    fo.val_count = N;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, NULL), HTNN_ENUMERIC);
    assert_non_null(strstr(htnn_last_error(), "validation"));
    assert_params_equal(net, before, n);
    assert_int_equal(htnn_optimizer_steps(opt), 0);
    assert_int_equal(access(fo.checkpoint_path, F_OK), -1);
    free(before);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* 6 - 12 relu - 8 relu - 3. */
static htnn_net *make_relu_net(void)
{
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(W, NULL, &net), HTNN_OK);
    const size_t units[] = {12, 8, CLASSES};
    for (int i = 0; i < 3; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = units[i];
        d.activation = i < 2 ? HTNN_ACT_RELU : HTNN_ACT_IDENTITY;
        assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    }
    return net;
}

/* A huge learning rate on a relu net: the first update makes the next
 * batch's activations overflow; the net and the optimizer go back to the
 * fit's start. */
static void test_divergence_restores_start(void **state)
{
    (void)state;
    htnn_net *net = make_relu_net();
    htnn_optimizer *opt = make_sgd(1e30f);
    size_t n;
    float *before = params(net, &n);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.batch_size = 16;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_ENUMERIC);
    assert_non_null(strstr(htnn_last_error(), "last good state"));
    assert_params_equal(net, before, n);
    assert_int_equal(htnn_optimizer_steps(opt), 0);
    assert_int_equal(res.batches_run, 0);
    assert_int_equal(res.epochs_run, 0);
    free(before);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* Pokes a huge (finite) output weight from the progress callback at report
 * `poke_at`; keeps the parameters seen at the end of every epoch. */
typedef struct poker {
    htnn_net *net;
    size_t reports, poke_at;
    float *epoch_end[8];
    size_t n;
} poker;

/* Sets every weight of the output layer to 3e38: the logits overflow. */
static void poison_output(htnn_net *net)
{
    htnn_layer *out = htnn_net_layer(net, 2);
    float w[8 * CLASSES];
    for (int i = 0; i < 8 * CLASSES; i++)
        w[i] = 3e38f;
    assert_int_equal(htnn_layer_set_weights(out, w, 8 * CLASSES), HTNN_OK);
}

static int poke(const htnn_progress *p, void *user)
{
    poker *pk = user;
    if (p->end_of_epoch)
        pk->epoch_end[p->epoch] = params(pk->net, &pk->n);
    if (++pk->reports == pk->poke_at)
        poison_output(pk->net);
    return 0;
}

static void check_poke(size_t poke_at, size_t restored_epochs, const char *ckpt)
{
    const config c = {0, 0, 1, 30, 4}; /* 5 batches per epoch */
    htnn_net *net = make_net(&c, 11, 12);
    htnn_optimizer *opt = make_opt(&c);
    poker pk = {net, 0, poke_at, {NULL}, 0};
    recorder unused = {0};
    htnn_fit_options fo = fit_options(&c, &unused);
    fo.progress = poke;
    fo.progress_user = &pk;
    fo.checkpoint_path = ckpt;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_ENUMERIC);
    assert_params_equal(net, pk.epoch_end[restored_epochs - 1], pk.n);
    assert_int_equal(htnn_optimizer_steps(opt), 5 * restored_epochs);
    assert_int_equal(res.batches_run, 5 * restored_epochs);
    assert_int_equal(res.epochs_run, restored_epochs);
    assert_int_equal(res.stopped, 0);
    assert_true(isfinite(res.loss) && isfinite(res.val_loss));
    if (ckpt != NULL) {
        /* the checkpoint holds the restored state: resuming it (without the
         * poke) continues exactly as a fit that was never poked */
        htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
        assert_int_equal(htnn_checkpoint_get_info(ckpt, &info), HTNN_OK);
        assert_int_equal(info.batches_run, 5 * restored_epochs);
        reference ref;
        run_reference(&c, &ref);
        resume_and_compare(&c, &ref, ckpt);
        htnn_net_free(ref.net);
    }
    for (int e = 0; e < 8; e++)
        free(pk.epoch_end[e]);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* Non-finite weights of a hidden sign layer do not reach the loss (sign of
 * NaN is -1): the end-of-epoch snapshot finds them.  SGD with lr 1.5 and
 * weight decay 2 multiplies the weights by -2 per step, so a 3e38 weight
 * overflows at the first update. */
static void check_parameters_diverge(size_t epochs)
{
    const config c = {1, 0, 1, 30, epochs}; /* layer 1 binary */
    htnn_net *net = make_net(&c, 5, 12);
    htnn_layer *first = htnn_net_layer(net, 0);
    float w[12 * W];
    assert_int_equal(htnn_layer_get_weights(first, w, 12 * W), HTNN_OK);
    w[0] = 3e38f;
    assert_int_equal(htnn_layer_set_weights(first, w, 12 * W), HTNN_OK);
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    o.kind = HTNN_OPT_SGD;
    o.learning_rate = 1.5f;
    o.weight_decay = 2.0f;
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    size_t n;
    float *before = params(net, &n);
    recorder rec = {0};
    htnn_fit_options fo = fit_options(&c, &rec);
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xs, ys, N, &fo, &res), HTNN_ENUMERIC);
    assert_int_equal(rec.n, 5); /* every batch of epoch 0 trained with a finite loss */
    assert_non_null(strstr(htnn_last_error(), "NaN or infinite"));
    assert_params_equal(net, before, n);
    assert_predicts_like_reloaded(net);
    assert_int_equal(htnn_optimizer_steps(opt), 0);
    assert_int_equal(res.batches_run, 0);
    free(before);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* At the end of the first of 3 epochs (a snapshot is taken), and at the
 * end of a 1-epoch fit (no batch follows, so only the snapshot's check
 * runs): either way the start state comes back. */
static void test_divergence_in_parameters_detected(void **state)
{
    (void)state;
    check_parameters_diverge(3);
    check_parameters_diverge(1);
}

static void test_divergence_restores_last_good_state(void **state)
{
    (void)state;
    check_poke(8, 1, NULL);  /* poked mid epoch 1: back to the end of epoch 0 */
    /* poked on epoch 2's last batch, after which a snapshot is taken and
     * the next batch diverges: that snapshot was never confirmed, so back
     * to the end of epoch 1 */
    check_poke(15, 2, NULL);
    check_poke(15, 2, path_of("diverged.ckpt"));
}

/* htnn_net_train_batch: a batch whose loss is not finite changes nothing. */
static void test_train_batch_nan_loss_changes_nothing(void **state)
{
    (void)state;
    const config c = {0, 0, 1, 16, 1};
    htnn_net *net = make_net(&c, 5, 12);
    htnn_optimizer *opt = make_opt(&c);
    poison_output(net);
    size_t n;
    float *before = params(net, &n);
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, xs, ys, 16, NULL), HTNN_ENUMERIC);
    assert_non_null(strstr(htnn_last_error(), "loss"));
    assert_params_equal(net, before, n);
    assert_int_equal(htnn_optimizer_steps(opt), 0);
    free(before);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_adam_shuffled),
        cmocka_unit_test(test_resume_sgd_binary_unshuffled),
        cmocka_unit_test(test_resume_at_epoch_cadence),
        cmocka_unit_test(test_resume_conv_batchnorm),
        cmocka_unit_test(test_checkpoint_is_a_model_file),
        cmocka_unit_test(test_resume_missing_file_starts_fresh),
        cmocka_unit_test(test_mismatched_resume_refused),
        cmocka_unit_test(test_corrupt_checkpoint_refused),
        cmocka_unit_test(test_option_checks),
        cmocka_unit_test(test_checkpoint_cadence),
        cmocka_unit_test(test_nan_inputs_rejected_before_training),
        cmocka_unit_test(test_divergence_restores_start),
        cmocka_unit_test(test_divergence_in_parameters_detected),
        cmocka_unit_test(test_divergence_restores_last_good_state),
        cmocka_unit_test(test_train_batch_nan_loss_changes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
