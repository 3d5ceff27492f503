/* A dense net's training step on the net's own threads (lib/train_mt.c)
 * against the same step on one thread.  Every thread owns whole units and
 * nothing is summed across threads, but sgemm's micro-kernels round a
 * block of columns differently from the whole matrix, so thread counts
 * agree to float rounding (compared after a few steps), while the same
 * thread count must repeat itself bit for bit, whatever the layer options.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

#define IN 300
#define ROWS 64
#define CLASSES 5

typedef struct layer_spec {
    size_t units;
    int activation, binary, bias, weight_targets;
} layer_spec;

typedef struct run_spec {
    const layer_spec *layers;
    size_t n_layers;
    int optimizer, user_heuristic;
    float momentum, decay;
} run_spec;

static htnn_net *make_net(const run_spec *r, int threads)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = 7;
    no.threads = threads;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(IN, &no, &net), HTNN_OK);
    for (size_t i = 0; i < r->n_layers; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = r->layers[i].units;
        d.activation = r->layers[i].activation;
        d.binary_weights = r->layers[i].binary;
        d.bias = r->layers[i].bias;
        d.weight_targets = r->layers[i].weight_targets;
        assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    }
    return net;
}

static htnn_optimizer *make_optimizer(const run_spec *r)
{
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    o.kind = r->optimizer;
    o.learning_rate = r->optimizer == HTNN_OPT_ADAM ? 1e-3f : 0.05f;
    o.momentum = r->momentum;
    o.weight_decay = r->decay;
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    return opt;
}

static void make_batch(float *x, int32_t *y, unsigned step)
{
    srand(1000u + step);
    for (size_t i = 0; i < ROWS * IN; i++)
        x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    for (size_t i = 0; i < ROWS; i++)
        y[i] = (int32_t)((size_t)rand() % CLASSES);
}

/* Runs 5 batches; returns the summed batch losses (as doubles: compared
 * for exact equality). */
static double train(htnn_net *net, const run_spec *r)
{
    htnn_optimizer *opt = make_optimizer(r);
    htnn_heuristic *h = NULL;
    if (r->user_heuristic)
        assert_int_equal(htnn_heuristic_create_loss(&h), HTNN_OK);
    static float x[ROWS * IN];
    int32_t y[ROWS];
    double losses = 0.0;
    for (unsigned step = 0; step < 5; step++) {
        htnn_batch_result res = {sizeof res, 0.0, 0};
        make_batch(x, y, step);
        assert_int_equal(htnn_net_train_batch(net, opt, h, x, y, ROWS, &res), HTNN_OK);
        losses += res.loss;
    }
    htnn_heuristic_free(h);
    htnn_optimizer_free(opt);
    return losses;
}

/* exact = 0: equal to float rounding grown over a few steps. */
static void assert_same_arrays(const float *a, const float *b, size_t n, int exact)
{
    if (exact) {
        assert_memory_equal(a, b, n * sizeof *a);
        return;
    }
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(a[i] - b[i]) <= 1e-5f + 1e-4f * fabsf(a[i]));
}

static void assert_same_params(htnn_net *a, htnn_net *b, int exact)
{
    for (size_t d = 0; d < htnn_net_layer_count(a); d++) {
        htnn_layer_info info = HTNN_LAYER_INFO_INIT;
        assert_int_equal(htnn_layer_get_info(htnn_net_layer(a, d), &info), HTNN_OK);
        size_t nw = info.weight_count, nb = info.out_width;
        float *wa = malloc(2 * (nw + nb) * sizeof *wa), *wb = wa + nw, *ba = wb + nw,
              *bb = ba + nb;
        assert_non_null(wa);
        assert_int_equal(htnn_layer_get_weights(htnn_net_layer(a, d), wa, nw), HTNN_OK);
        assert_int_equal(htnn_layer_get_weights(htnn_net_layer(b, d), wb, nw), HTNN_OK);
        assert_int_equal(htnn_layer_get_bias(htnn_net_layer(a, d), ba, nb), HTNN_OK);
        assert_int_equal(htnn_layer_get_bias(htnn_net_layer(b, d), bb, nb), HTNN_OK);
        assert_same_arrays(wa, wb, nw, exact);
        assert_same_arrays(ba, bb, nb, exact);
        free(wa);
    }
}

/* Identical targets, or (exact = 0) at most 1 in 1000 flipped by a
 * rounding difference at a unit's threshold. */
static void assert_same_targets(const htnn_net *a, const htnn_net *b, int exact)
{
    const htnn_targets *ta = htnn_net_targets(a), *tb = htnn_net_targets(b);
    assert_non_null(ta);
    assert_non_null(tb);
    for (size_t d = 0; d < htnn_targets_layer_count(ta); d++) {
        const float *va, *vb, *wa, *wb;
        size_t rows, cols;
        assert_int_equal(htnn_targets_get(ta, d, &va, &wa, &rows, &cols), HTNN_OK);
        assert_int_equal(htnn_targets_get(tb, d, &vb, &wb, NULL, NULL), HTNN_OK);
        assert_int_equal(rows, ROWS);
        size_t differ = 0;
        for (size_t i = 0; i < rows * cols; i++)
            differ += va[i] != vb[i];
        assert_true(exact ? differ == 0 : differ * 1000 <= rows * cols);
        if (exact)
            assert_same_arrays(wa, wb, rows * cols, 1);
    }
}

/* The nets must also have learned something: the weights moved. */
static void assert_trained(htnn_net *trained, const run_spec *r)
{
    htnn_net *fresh = make_net(r, 1);
    size_t n = r->layers[0].units * IN;
    float *w0 = malloc(2 * n * sizeof *w0), *w1 = w0 + n;
    assert_non_null(w0);
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(fresh, 0), w0, n), HTNN_OK);
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(trained, 0), w1, n), HTNN_OK);
    assert_true(memcmp(w0, w1, n * sizeof *w0) != 0);
    free(w0);
    htnn_net_free(fresh);
}

static void check_thread_counts(const run_spec *r)
{
    htnn_net *one = make_net(r, 1);
    double loss_one = train(one, r);
    assert_trained(one, r);
    for (int threads = 2; threads <= 4; threads++) {
        htnn_net *many = make_net(r, threads), *again = make_net(r, threads);
        double loss_many = train(many, r);
        assert_true(fabs(loss_one - loss_many) <= 1e-4 * fabs(loss_one));
        assert_same_params(one, many, 0);
        assert_same_targets(one, many, 0);
        assert_true(train(again, r) == loss_many);
        assert_same_params(many, again, 1);
        assert_same_targets(many, again, 1);
        htnn_net_free(many);
        htnn_net_free(again);
    }
    htnn_net_free(one);
}

/* Widths that are not multiples of the 16-unit blocks, and a layer big
 * enough to be split (300 x 200 weights x 64 rows) next to one small
 * enough to run on the calling thread. */
static const layer_spec sign_mlp[] = {
    {200, HTNN_ACT_SIGN, 0, 1, 1},
    {70, HTNN_ACT_SIGN, 0, 1, 1},
    {37, HTNN_ACT_SIGN, 0, 1, 1},
    {CLASSES, HTNN_ACT_IDENTITY, 0, 1, 1},
};

static void test_adam_sign_mlp(void **state)
{
    (void)state;
    run_spec r = {sign_mlp, 4, HTNN_OPT_ADAM, 0, 0.0f, 0.0f};
    check_thread_counts(&r);
}

static void test_sgd_momentum_decay(void **state)
{
    (void)state;
    run_spec r = {sign_mlp, 4, HTNN_OPT_SGD, 0, 0.9f, 1e-3f};
    check_thread_counts(&r);
}

/* The loss-driven heuristic made by htnn_heuristic_create_loss takes the
 * threaded path as the built-in one does. */
static void test_created_loss_heuristic(void **state)
{
    (void)state;
    run_spec r = {sign_mlp, 4, HTNN_OPT_ADAM, 1, 0.0f, 0.0f};
    check_thread_counts(&r);
}

static void test_binary_weights_and_mixed_layers(void **state)
{
    (void)state;
    static const layer_spec mixed[] = {
        {180, HTNN_ACT_SIGN, HTNN_BINARY_SCALED, 1, 1},
        {150, HTNN_ACT_RELU, 0, 0, 1},
        {97, HTNN_ACT_STEP, HTNN_BINARY_SIGN, 1, 0},
        {90, HTNN_ACT_QRELU, 0, 1, 1},
        {CLASSES, HTNN_ACT_IDENTITY, HTNN_BINARY_SCALED, 1, 1},
    };
    run_spec r = {mixed, 5, HTNN_OPT_ADAM, 0, 0.0f, 0.0f};
    check_thread_counts(&r);
}

/* Changing the thread setting between batches keeps training going on
 * the same numbers. */
static void test_threads_changed_between_batches(void **state)
{
    (void)state;
    run_spec r = {sign_mlp, 4, HTNN_OPT_ADAM, 0, 0.0f, 0.0f};
    htnn_net *a = make_net(&r, 1), *b = make_net(&r, 2);
    train(a, &r);
    train(b, &r);
    assert_int_equal(htnn_net_set_threads(b, 1), HTNN_OK);
    train(a, &r);
    train(b, &r);
    assert_int_equal(htnn_net_set_threads(b, 3), HTNN_OK);
    train(a, &r);
    train(b, &r);
    assert_same_params(a, b, 0);
    htnn_net_free(a);
    htnn_net_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_sign_mlp),
        cmocka_unit_test(test_sgd_momentum_decay),
        cmocka_unit_test(test_created_loss_heuristic),
        cmocka_unit_test(test_binary_weights_and_mixed_layers),
        cmocka_unit_test(test_threads_changed_between_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
