/* FTPROP-MB through the public API: gradients against a hand-written
 * reference and finite differences, XOR, determinism, targets, the
 * heuristic vtable, the progress callback and learning-rate schedules.
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

static htnn_net *make_net(size_t in, const size_t *units, size_t n, int hidden_act, int loss,
                          int output, uint64_t seed)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = seed;
    no.output = output;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(in, &no, &net), HTNN_OK);
    for (size_t i = 0; i < n; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = units[i];
        d.activation = i + 1 < n ? hidden_act
                                 : (output == HTNN_OUTPUT_SOFTMAX ? HTNN_ACT_IDENTITY : HTNN_ACT_SIGN);
        d.loss = loss;
        assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    }
    return net;
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

static void random_inputs(float *x, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
}

static float *weights_of(htnn_net *net, size_t layer, size_t *count)
{
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(htnn_net_layer(net, layer), &info), HTNN_OK);
    float *w = malloc(info.weight_count * sizeof *w);
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(net, layer), w, info.weight_count),
                     HTNN_OK);
    *count = info.weight_count;
    return w;
}

/* With plain SGD at lr 1, one step moves each weight by minus its gradient. */
static float *sgd_gradient(htnn_net *net, size_t layer, const float *x, const int32_t *y,
                           size_t m)
{
    htnn_net *copy = NULL;
    htnn_optimizer *opt = make_sgd(1.0f);
    size_t n;
    assert_int_equal(htnn_net_clone(net, &copy), HTNN_OK);
    float *before = weights_of(copy, layer, &n);
    assert_int_equal(htnn_net_train_batch(copy, opt, NULL, x, y, m, NULL), HTNN_OK);
    float *after = weights_of(copy, layer, &n);
    for (size_t i = 0; i < n; i++)
        before[i] -= after[i];
    free(after);
    htnn_net_free(copy);
    htnn_optimizer_free(opt);
    return before;
}

/* Identity hidden layers make the net smooth: every weight's gradient must
 * match a central difference of the mean cross-entropy. */
static void test_gradient_matches_finite_differences(void **state)
{
    (void)state;
    const size_t units[] = {4, 3}, m = 6;
    float x[6 * 5];
    const int32_t y[6] = {0, 1, 2, 1, 0, 2};
    random_inputs(x, sizeof x / sizeof *x, 3);
    for (int act = HTNN_ACT_IDENTITY; act <= HTNN_ACT_RELU; act += HTNN_ACT_RELU) {
        htnn_net *net = make_net(5, units, 2, act, HTNN_LOSS_SOFT_HINGE, HTNN_OUTPUT_SOFTMAX, 11);
        /* keeps every relu pre-activation of this data > 1e-2 away from the
         * kink at 0, where finite differences are meaningless */
        const float b1[4] = {0.05f, 0.05f, 0.05f, 0.05f};
        htnn_layer_set_bias(htnn_net_layer(net, 0), b1, 4);
        for (size_t layer = 0; layer < 2; layer++) {
            size_t n;
            float *g = sgd_gradient(net, layer, x, y, m);
            float *w = weights_of(net, layer, &n);
            htnn_layer *l = htnn_net_layer(net, layer);
            for (size_t i = 0; i < n; i++) {
                const float h = 1e-3f, orig = w[i];
                double lp, lm;
                w[i] = orig + h;
                htnn_layer_set_weights(l, w, n);
                htnn_net_evaluate(net, x, y, m, &lp, NULL);
                w[i] = orig - h;
                htnn_layer_set_weights(l, w, n);
                htnn_net_evaluate(net, x, y, m, &lm, NULL);
                w[i] = orig;
                htnn_layer_set_weights(l, w, n);
                double fd = (lp - lm) / (2.0 * h);
                if (fabs(fd - g[i]) > 2e-3 + 1e-2 * fabs(fd))
                    fail_msg("act %d layer %zu weight %zu: grad %g vs fd %g", act, layer, i,
                             (double)g[i], fd);
            }
            free(g);
            free(w);
        }
        htnn_net_free(net);
    }
}

/* Reference FTPROP-MB step for a 3-2-2 net (sign hidden, soft hinge,
 * softmax output) written out in double: the hidden layer's gradient is
 * G (1 - tanh(Z1)^2) with G = dZ2 W2 (ALGORITHM.md's first identity). */
static void test_sign_layer_gradient_reference(void **state)
{
    (void)state;
    const size_t units[] = {2, 2}, m = 4;
    const float w1[6] = {0.5f, -0.3f, 0.8f, -0.6f, 0.2f, 0.1f}, b1[2] = {0.05f, -0.1f};
    const float w2[4] = {0.7f, -0.4f, -0.2f, 0.9f}, b2[2] = {0.0f, 0.1f};
    const float x[12] = {1, 0.5f, -1, -0.5f, 0.2f, 0.3f, 0.9f, -0.8f, 0.1f, 0, 1, 1};
    const int32_t y[4] = {0, 1, 1, 0};
    htnn_net *net = make_net(3, units, 2, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                             HTNN_OUTPUT_SOFTMAX, 1);
    htnn_layer_set_weights(htnn_net_layer(net, 0), w1, 6);
    htnn_layer_set_bias(htnn_net_layer(net, 0), b1, 2);
    htnn_layer_set_weights(htnn_net_layer(net, 1), w2, 4);
    htnn_layer_set_bias(htnn_net_layer(net, 1), b2, 2);
    double gw1[6] = {0}, gw2[4] = {0};
    for (size_t i = 0; i < m; i++) {
        double z1[2], h1[2], z2[2], p[2], dz2[2], dz1[2];
        for (int j = 0; j < 2; j++) {
            z1[j] = b1[j];
            for (int k = 0; k < 3; k++)
                z1[j] += (double)w1[j * 3 + k] * x[i * 3 + k];
            h1[j] = z1[j] > 0 ? 1 : -1;
        }
        for (int j = 0; j < 2; j++)
            z2[j] = b2[j] + w2[j * 2] * h1[0] + w2[j * 2 + 1] * h1[1];
        double mx = fmax(z2[0], z2[1]), s = exp(z2[0] - mx) + exp(z2[1] - mx);
        for (int j = 0; j < 2; j++) {
            p[j] = exp(z2[j] - mx) / s;
            dz2[j] = (p[j] - (j == y[i])) / (double)m;
            for (int k = 0; k < 2; k++)
                gw2[j * 2 + k] += dz2[j] * h1[k];
        }
        for (int k = 0; k < 2; k++) {
            double g = dz2[0] * w2[k] + dz2[1] * w2[2 + k], th = tanh(z1[k]);
            dz1[k] = g * (1 - th * th);
            for (int c = 0; c < 3; c++)
                gw1[k * 3 + c] += dz1[k] * x[i * 3 + c];
        }
    }
    float *g1 = sgd_gradient(net, 0, x, y, m), *g2 = sgd_gradient(net, 1, x, y, m);
    for (int i = 0; i < 6; i++)
        assert_float_equal(g1[i], gw1[i], 1e-6);
    for (int i = 0; i < 4; i++)
        assert_float_equal(g2[i], gw2[i], 1e-6);
    free(g1);
    free(g2);
    htnn_net_free(net);
}

static const float xor_x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const int32_t xor_y[4] = {0, 1, 1, 0};

static double train_xor(int output, uint64_t seed)
{
    const size_t units[] = {8, output == HTNN_OUTPUT_SOFTMAX ? 2u : 1u};
    htnn_net *net = make_net(2, units, 2, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE, output, seed);
    /* A hard-threshold output is a perceptron: train it with a convex loss
     * (the saturating soft hinge ignores badly misclassified examples). */
    htnn_layer_set_loss(htnn_net_layer(net, 1), HTNN_LOSS_HINGE, 1);
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    oo.learning_rate = 0.05f;
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 500;
    fo.batch_size = 4;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, xor_x, xor_y, 4, &fo, &res), HTNN_OK);
    assert_int_equal(res.epochs_run, 500);
    double acc;
    assert_int_equal(htnn_net_evaluate(net, xor_x, xor_y, 4, NULL, &acc), HTNN_OK);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    return acc;
}

/* XOR is not linearly separable: getting 4/4 needs the sign hidden layer.
 * Both output kinds, every one of 10 seeds. */
static void test_xor_learned_exactly(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        assert_true(train_xor(HTNN_OUTPUT_SOFTMAX, seed) == 1.0);
        assert_true(train_xor(HTNN_OUTPUT_HARD_THRESHOLD, seed) == 1.0);
    }
}

static void fit_random(htnn_net *net, uint64_t epochs)
{
    enum { M = 200, W = 10 };
    static float x[M * W];
    static int32_t y[M];
    random_inputs(x, M * W, 5);
    for (int i = 0; i < M; i++)
        y[i] = x[i * W] + x[i * W + 1] > 0 ? 1 : (x[i * W + 2] > 0 ? 2 : 0);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = epochs;
    fo.batch_size = 32;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, M, &fo, NULL), HTNN_OK);
    htnn_optimizer_free(opt);
}

static int same_weights(htnn_net *a, htnn_net *b)
{
    int same = 1;
    for (size_t l = 0; l < htnn_net_layer_count(a); l++) {
        size_t n;
        float *wa = weights_of(a, l, &n), *wb = weights_of(b, l, &n);
        same &= memcmp(wa, wb, n * sizeof *wa) == 0;
        free(wa);
        free(wb);
    }
    return same;
}

static void test_same_seed_bit_identical(void **state)
{
    (void)state;
    const size_t units[] = {16, 16, 3};
    htnn_net *a = make_net(10, units, 3, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                           HTNN_OUTPUT_SOFTMAX, 99);
    htnn_net *b = make_net(10, units, 3, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                           HTNN_OUTPUT_SOFTMAX, 99);
    htnn_net *c = make_net(10, units, 3, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                           HTNN_OUTPUT_SOFTMAX, 100);
    fit_random(a, 3);
    fit_random(b, 3);
    fit_random(c, 3);
    assert_true(same_weights(a, b));
    assert_false(same_weights(a, c));
    htnn_net_free(a);
    htnn_net_free(b);
    htnn_net_free(c);
}

/* A heuristic that records what it saw and delegates to the built-in. */
typedef struct recorder {
    htnn_heuristic *inner;
    size_t calls, last_layer, batch, in_width;
    float grad[64 * 16];
} recorder;

static htnn_status recorder_set(void *state, const htnn_layer_view *v, float *t, float *w)
{
    recorder *r = state;
    r->calls++;
    r->last_layer = v->layer;
    r->batch = v->batch;
    r->in_width = v->in_width;
    if (v->layer == 1)
        memcpy(r->grad, v->grad_input, v->batch * v->in_width * sizeof(float));
    /* targets arrive as the current outputs with weight 1 */
    for (size_t i = 0; i < v->batch * v->in_width; i++)
        if (t[i] != (v->input[i] > 0 ? 1.0f : -1.0f) || w[i] != 1.0f)
            return HTNN_EINVAL;
    return htnn_heuristic_set_targets(r->inner, v, t, w);
}

static void test_user_heuristic_and_targets(void **state)
{
    (void)state;
    const size_t units[] = {16, 12, 3}, m = 64;
    static float x[64 * 10];
    int32_t y[64];
    random_inputs(x, 640, 8);
    for (size_t i = 0; i < m; i++)
        y[i] = (int32_t)(i % 3);
    recorder rec = {0};
    assert_int_equal(htnn_heuristic_create_loss(&rec.inner), HTNN_OK);
    assert_string_equal(htnn_heuristic_name(rec.inner), "loss");
    htnn_heuristic_ops ops = {sizeof ops, "recorder", recorder_set, NULL};
    htnn_heuristic *h = NULL;
    assert_int_equal(htnn_heuristic_create(&ops, &rec, &h), HTNN_OK);
    assert_string_equal(htnn_heuristic_name(h), "recorder");
    htnn_net *net = make_net(10, units, 3, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                             HTNN_OUTPUT_SOFTMAX, 4);
    assert_null(htnn_net_targets(net));
    htnn_optimizer *opt = make_sgd(0.1f);
    assert_int_equal(htnn_net_train_batch(net, opt, h, x, y, m, NULL), HTNN_OK);
    assert_int_equal(rec.calls, 2); /* layers 2 and 1 set targets below */
    assert_int_equal(rec.last_layer, 1);
    assert_int_equal(rec.batch, m);
    assert_int_equal(rec.in_width, 16);

    const htnn_targets *tg = htnn_net_targets(net);
    assert_non_null(tg);
    assert_int_equal(htnn_targets_layer_count(tg), 2);
    assert_int_equal(htnn_targets_batch(tg), m);
    const float *t, *w;
    size_t rows, cols;
    assert_int_equal(htnn_targets_get(tg, 0, &t, &w, &rows, &cols), HTNN_OK);
    assert_int_equal(rows, m);
    assert_int_equal(cols, 16);
    for (size_t i = 0; i < rows * cols; i++) {
        float g = rec.grad[i];
        assert_true(t[i] == (g < 0 ? 1.0f : (g > 0 ? -1.0f : 0.0f)));
        assert_true(w[i] == fabsf(g));
    }
    assert_int_equal(htnn_targets_get(tg, 2, &t, &w, &rows, &cols), HTNN_EINVAL);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_heuristic_free(h);
    htnn_heuristic_free(rec.inner);
}

static htnn_status failing_set(void *state, const htnn_layer_view *v, float *t, float *w)
{
    (void)v, (void)t, (void)w;
    return *(htnn_status *)state;
}

/* Writes a target of 0.5 or a NaN weight, which the trainer must refuse. */
static htnn_status invalid_set(void *state, const htnn_layer_view *v, float *t, float *w)
{
    (void)v;
    if (*(int *)state)
        t[3] = 0.5f;
    else
        w[3] = NAN;
    return HTNN_OK;
}

static void test_invalid_heuristic_output_is_refused(void **state)
{
    (void)state;
    const size_t units[] = {4, 2};
    for (int kind = 0; kind < 2; kind++) {
        htnn_heuristic_ops ops = {sizeof ops, "invalid", invalid_set, NULL};
        htnn_heuristic *h = NULL;
        assert_int_equal(htnn_heuristic_create(&ops, &kind, &h), HTNN_OK);
        htnn_net *net = make_net(2, units, 2, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                                 HTNN_OUTPUT_SOFTMAX, 4);
        htnn_optimizer *opt = make_sgd(0.1f);
        assert_int_equal(htnn_net_train_batch(net, opt, h, xor_x, xor_y, 4, NULL),
                         HTNN_ECALLBACK);
        assert_non_null(strstr(htnn_last_error(), "entry 3"));
        assert_null(htnn_net_targets(net));
        htnn_net_free(net);
        htnn_optimizer_free(opt);
        htnn_heuristic_free(h);
    }
}

static void test_heuristic_failure_is_reported(void **state)
{
    (void)state;
    const size_t units[] = {4, 2};
    htnn_status code = (htnn_status)12345;
    htnn_heuristic_ops ops = {sizeof ops, "failing", failing_set, NULL};
    htnn_heuristic *h = NULL;
    assert_int_equal(htnn_heuristic_create(&ops, &code, &h), HTNN_OK);
    htnn_net *net = make_net(2, units, 2, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                             HTNN_OUTPUT_SOFTMAX, 4);
    htnn_optimizer *opt = make_sgd(0.1f);
    assert_int_equal(htnn_net_train_batch(net, opt, h, xor_x, xor_y, 4, NULL), HTNN_ECALLBACK);
    assert_non_null(strstr(htnn_last_error(), "failing"));
    code = HTNN_ELIMIT;
    assert_int_equal(htnn_net_train_batch(net, opt, h, xor_x, xor_y, 4, NULL), HTNN_ELIMIT);
    ops.set_targets = NULL;
    htnn_heuristic *bad = NULL;
    assert_int_equal(htnn_heuristic_create(&ops, NULL, &bad), HTNN_EINVAL);
    assert_null(bad);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_heuristic_free(h);
}

static int stop_at_three(const htnn_progress *p, void *user)
{
    size_t *calls = user;
    (*calls)++;
    assert_true(p->loss >= 0 && p->accuracy >= 0 && p->accuracy <= 1);
    return p->batch == 3;
}

static void test_progress_callback_stops(void **state)
{
    (void)state;
    const size_t units[] = {8, 2};
    static float x[100 * 2];
    int32_t y[100];
    random_inputs(x, 200, 1);
    for (int i = 0; i < 100; i++)
        y[i] = x[2 * i] > 0;
    htnn_net *net = make_net(2, units, 2, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                             HTNN_OUTPUT_SOFTMAX, 4);
    htnn_optimizer *opt = make_sgd(0.1f);
    size_t calls = 0;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.batch_size = 10;
    fo.progress = stop_at_three;
    fo.progress_user = &calls;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, 100, &fo, &res), HTNN_OK);
    assert_int_equal(res.stopped, 1);
    assert_int_equal(res.batches_run, 4);
    assert_int_equal(res.epochs_run, 0);
    assert_int_equal(calls, 4);
    assert_int_equal(htnn_optimizer_steps(opt), 4);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

static void test_schedules(void **state)
{
    (void)state;
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    htnn_optimizer *opt = NULL;
    o.learning_rate = 0.1f;
    o.schedule = HTNN_SCHEDULE_STEP;
    o.step_epochs = 2;
    o.step_gamma = 0.5f;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    const float step_want[6] = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f, 0.025f};
    for (size_t e = 0; e < 6; e++) {
        htnn_optimizer_set_epoch(opt, e, 6);
        assert_float_equal(htnn_optimizer_learning_rate(opt), step_want[e], 1e-7);
    }
    htnn_optimizer_free(opt);
    o.schedule = HTNN_SCHEDULE_COSINE;
    o.min_learning_rate = 0.01f;
    assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
    htnn_optimizer_set_epoch(opt, 0, 10);
    assert_float_equal(htnn_optimizer_learning_rate(opt), 0.1f, 1e-7);
    htnn_optimizer_set_epoch(opt, 5, 10);
    assert_float_equal(htnn_optimizer_learning_rate(opt), 0.055f, 1e-7);
    htnn_optimizer_set_epoch(opt, 10, 10);
    assert_float_equal(htnn_optimizer_learning_rate(opt), 0.01f, 1e-7);
    htnn_optimizer_free(opt);
}

/* One weight, hand-computed: SGD momentum and Nesterov, and Adam's first
 * step, which moves every weight by lr * sign(gradient). */
static void test_optimizer_rules(void **state)
{
    (void)state;
    const size_t units[] = {2};
    const float x[2] = {1.0f, 0.0f};
    const int32_t y[1] = {0};
    const float w0[2] = {0.0f, 0.0f};
    /* z = (0, 0): softmax gradient dZ = (0.5 - 1, 0.5) = (-0.5, 0.5); gw = dZ^T x */
    for (int kind = 0; kind < 3; kind++) {
        htnn_net *net = make_net(1, units, 1, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE,
                                 HTNN_OUTPUT_SOFTMAX, 1);
        htnn_layer_set_weights(htnn_net_layer(net, 0), w0, 2);
        htnn_layer_set_bias(htnn_net_layer(net, 0), w0, 2);
        htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
        o.kind = kind == 2 ? HTNN_OPT_ADAM : HTNN_OPT_SGD;
        o.learning_rate = 0.1f;
        o.momentum = kind == 2 ? 0.0f : 0.9f;
        o.nesterov = kind == 1;
        htnn_optimizer *opt = NULL;
        assert_int_equal(htnn_optimizer_create(&o, &opt), HTNN_OK);
        assert_int_equal(htnn_net_train_batch(net, opt, NULL, x, y, 1, NULL), HTNN_OK);
        float w[2];
        htnn_layer_get_weights(htnn_net_layer(net, 0), w, 2);
        /* momentum: buf = g; w -= lr*buf -> 0.05; nesterov: w -= lr*(g + mu*g) -> 0.095 */
        const float want[3] = {0.05f, 0.095f, 0.1f};
        assert_float_equal(w[0], want[kind], 1e-6);
        assert_float_equal(w[1], -want[kind], 1e-6);
        htnn_net_free(net);
        htnn_optimizer_free(opt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_sign_layer_gradient_reference),
        cmocka_unit_test(test_xor_learned_exactly),
        cmocka_unit_test(test_same_seed_bit_identical),
        cmocka_unit_test(test_user_heuristic_and_targets),
        cmocka_unit_test(test_heuristic_failure_is_reported),
        cmocka_unit_test(test_invalid_heuristic_output_is_refused),
        cmocka_unit_test(test_progress_callback_stops),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_optimizer_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
