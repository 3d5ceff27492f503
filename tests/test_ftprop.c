/* Full-batch FTPROP through the public API: XOR, n-bit parity and random
 * teacher nets reach 100 % training accuracy with feasible targets; a
 * problem with no feasible targets is reported infeasible; the
 * separability decision; option and input validation.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

#include "htnn_config.h"

/* An all-sign net in -> hidden[0] -> ... -> 1 sign output (labels 0/1). */
static htnn_net *sign_net(size_t in, const size_t *hidden, size_t n_hidden, uint64_t seed)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL;
    no.seed = seed;
    no.output = HTNN_OUTPUT_HARD_THRESHOLD;
    assert_int_equal(htnn_net_create(in, &no, &net), HTNN_OK);
    for (size_t i = 0; i <= n_hidden; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = i < n_hidden ? hidden[i] : 1;
        d.loss = HTNN_LOSS_HINGE;
        assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    }
    return net;
}

/* All 2^n inputs in {-1, +1}^n with their parity (1 = odd number of +1). */
static void parity_data(size_t n, float *x, int32_t *y)
{
    for (size_t i = 0; i < ((size_t)1 << n); i++) {
        int ones = 0;
        for (size_t j = 0; j < n; j++) {
            int bit = (int)((i >> j) & 1u);
            x[i * n + j] = bit ? 1.0f : -1.0f;
            ones += bit;
        }
        y[i] = ones & 1;
    }
}

static double accuracy_of(htnn_net *net, const float *x, const int32_t *y, size_t count)
{
    double acc = -1.0;
    assert_int_equal(htnn_net_evaluate(net, x, y, count, NULL, &acc), HTNN_OK);
    return acc;
}

/* Every unit of hidden layer `layer`'s found targets is a linearly
 * separable function of the layer's inputs (Proposition 1). */
static void assert_targets_separable(htnn_net *net, size_t layer, const float *x, size_t count)
{
    const htnn_targets *t = htnn_net_targets(net);
    const float *values, *weights;
    size_t rows, cols, in = htnn_net_input_width(net);
    assert_non_null(t);
    assert_int_equal(htnn_targets_get(t, layer, &values, &weights, &rows, &cols), HTNN_OK);
    assert_int_equal(rows, count);
    assert_true(layer == 0); /* inputs of layer 0 are x */
    float *col = malloc(count * sizeof *col), *w = malloc(in * sizeof *w), b;
    for (size_t k = 0; k < cols; k++) {
        int sep = -1;
        for (size_t i = 0; i < count; i++)
            col[i] = weights[i * cols + k] != 0.0f ? values[i * cols + k] : 0.0f;
        assert_int_equal(htnn_separable(x, col, count, in, HTNN_SOLVER_AUTO, 1000, &sep, w, &b),
                         HTNN_OK);
        assert_int_equal(sep, HTNN_SEPARABILITY_SEPARABLE);
    }
    free(col);
    free(w);
}

static void test_xor_exhaustive(void **state)
{
    (void)state;
    float x[8];
    int32_t y[4];
    size_t hidden = 2;
    parity_data(2, x, y);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        htnn_net *net = sign_net(2, &hidden, 1, seed);
        htnn_heuristic *h = NULL;
        htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
        htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
        eo.reach_cost = 0.3f;
        assert_int_equal(htnn_heuristic_create_exhaustive(&eo, &h), HTNN_OK);
        assert_int_equal(htnn_net_ftprop(net, h, x, y, 4, NULL, &r), HTNN_OK);
        assert_int_equal(r.feasible, 1);
        assert_true(r.accuracy == 1.0);
        assert_true(accuracy_of(net, x, y, 4) == 1.0);
        assert_int_equal(r.separability[0], HTNN_SEPARABILITY_SEPARABLE);
        assert_int_equal(r.separability[1], HTNN_SEPARABILITY_SEPARABLE);
        assert_true(r.solver_calls >= 1);
        assert_targets_separable(net, 0, x, 4);
        htnn_heuristic_free(h);
        htnn_net_free(net);
    }
}

static void run_parity(size_t n, int solver, uint64_t seed)
{
    size_t count = (size_t)1 << n;
    float *x = malloc(count * n * sizeof *x);
    int32_t *y = malloc(count * sizeof *y);
    parity_data(n, x, y);
    htnn_net *net = sign_net(n, &n, 1, seed);
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
    o.solver = solver;
    o.restarts = 3000;
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, count, &o, &r), HTNN_OK);
    printf("parity n=%zu seed %d solver %d: feasible %d accuracy %.3f, %zu heuristic calls, "
           "%zu restarts, %.3f s\n", n, (int)seed, r.solver, r.feasible, r.accuracy,
           r.heuristic_calls, r.restarts, r.seconds);
    assert_int_equal(r.feasible, 1);
    assert_true(accuracy_of(net, x, y, count) == 1.0);
    htnn_net_free(net);
    free(x);
    free(y);
}

/* n-bit parity with n hidden sign units: every seed reaches 100 %. */
static void test_parity_3_and_4(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        run_parity(3, HTNN_SOLVER_AUTO, seed);
        run_parity(4, HTNN_SOLVER_AUTO, seed);
    }
}

/* Without the LP the perceptron proves separability when it gets there. */
static void test_parity_perceptron(void **state)
{
    (void)state;
    run_parity(3, HTNN_SOLVER_PERCEPTRON, 1);
}

/* Data labelled by a random n-k-1 sign "teacher" net on random +-1
 * inputs (resampled until both classes occur). */
static void teacher_data(size_t n, size_t k, size_t count, unsigned seed, float *x, int32_t *y)
{
    float *w1 = malloc(k * (n + 1) * sizeof *w1), w2[17];
    int both;
    srand(seed);
    do {
        for (size_t i = 0; i < k * (n + 1); i++)
            w1[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
        for (size_t j = 0; j <= k; j++)
            w2[j] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
        size_t ones = 0;
        for (size_t i = 0; i < count; i++) {
            float z2 = w2[k];
            for (size_t j = 0; j < n; j++)
                x[i * n + j] = rand() & 1 ? 1.0f : -1.0f;
            for (size_t h = 0; h < k; h++) {
                float z = w1[h * (n + 1) + n];
                for (size_t j = 0; j < n; j++)
                    z += w1[h * (n + 1) + j] * x[i * n + j];
                z2 += w2[h] * (z > 0.0f ? 1.0f : -1.0f);
            }
            y[i] = z2 > 0.0f;
            ones += (size_t)y[i];
        }
        both = ones > count / 10 && ones < count - count / 10;
    } while (!both);
    free(w1);
}

/* Returns 1 if FTPROP with `h` reached 100 % on the teacher's data. */
static int teacher_run(htnn_heuristic *h, unsigned seed, size_t restarts)
{
    enum { N = 5, K = 2, COUNT = 24 };
    float x[COUNT * N];
    int32_t y[COUNT];
    size_t hidden = K;
    teacher_data(N, K, COUNT, seed, x, y);
    htnn_net *net = sign_net(N, &hidden, 1, seed);
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
    o.restarts = restarts;
    assert_int_equal(htnn_net_ftprop(net, h, x, y, COUNT, &o, &r), HTNN_OK);
    int ok = r.feasible && accuracy_of(net, x, y, COUNT) == 1.0;
    assert_int_equal(r.feasible, r.accuracy == 1.0);
    htnn_net_free(net);
    return ok;
}

/* Random 8-3-1 teachers, 64 examples, 10 seeds: exhaustive FTPROP reaches
 * 100 % on every seed; hill climbing (same budgets) on at least 7 of 10. */
static void test_teacher_nets(void **state)
{
    (void)state;
    htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
    htnn_hill_options ho = HTNN_HILL_OPTIONS_INIT;
    htnn_heuristic *ex = NULL, *hill = NULL;
    eo.reach_cost = 0.3f;
    ho.reach_cost = 0.3f;
    assert_int_equal(htnn_heuristic_create_exhaustive(&eo, &ex), HTNN_OK);
    assert_int_equal(htnn_heuristic_create_hill(&ho, &hill), HTNN_OK);
    int ex_ok = 0, hill_ok = 0;
    for (unsigned seed = 1; seed <= 10; seed++) {
        ex_ok += teacher_run(ex, seed, 300);
        hill_ok += teacher_run(hill, seed, 300);
    }
    printf("teacher nets: exhaustive %d/10, hill climbing %d/10 at 100 %%\n", ex_ok, hill_ok);
    assert_int_equal(ex_ok, 10);
    assert_true(hill_ok >= 7);
    htnn_heuristic_free(ex);
    htnn_heuristic_free(hill);
}

/* XOR with no hidden layer has no feasible targets: reported, not
 * "trained"; the LP proves the output unit's problem not separable. */
static void test_xor_without_hidden_layer_is_infeasible(void **state)
{
    (void)state;
    float x[8];
    int32_t y[4];
    parity_data(2, x, y);
    htnn_net *net = sign_net(2, NULL, 0, 1);
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
    o.restarts = 3;
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, &o, &r), HTNN_OK);
    assert_int_equal(r.feasible, 0);
    assert_true(r.accuracy < 1.0);
    assert_int_equal(r.heuristic_calls, 0);
    assert_int_equal(r.separability[0], HTNN_HAVE_GLPK ? HTNN_SEPARABILITY_NOT_SEPARABLE
                                                       : HTNN_SEPARABILITY_UNDECIDED);
    o.solver = HTNN_SOLVER_PERCEPTRON;
    o.solver_epochs = 50;
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, &o, &r), HTNN_OK);
    assert_int_equal(r.feasible, 0);
    assert_int_equal(r.separability[0], HTNN_SEPARABILITY_UNDECIDED);
    htnn_net_free(net);
}

static void test_separable_decisions(void **state)
{
    (void)state;
    float x[8], w[2], b, and_t[4] = {-1, -1, -1, 1}, xor_t[4] = {-1, 1, 1, -1};
    int32_t y[4];
    int sep = -1;
    parity_data(2, x, y);
    assert_int_equal(htnn_separable(x, and_t, 4, 2, HTNN_SOLVER_AUTO, 100, &sep, w, &b), HTNN_OK);
    assert_int_equal(sep, HTNN_SEPARABILITY_SEPARABLE);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[0] * x[2 * i] + w[1] * x[2 * i + 1] + b > 0.0f, and_t[i] > 0.0f);
    assert_int_equal(htnn_separable(x, xor_t, 4, 2, HTNN_SOLVER_PERCEPTRON, 100, &sep, w, &b),
                     HTNN_OK);
    assert_int_equal(sep, HTNN_SEPARABILITY_UNDECIDED);
    assert_int_equal(htnn_separable(x, xor_t, 4, 2, HTNN_SOLVER_LP, 100, &sep, w, &b),
                     HTNN_HAVE_GLPK ? HTNN_OK : HTNN_EUNSUPPORTED);
    if (HTNN_HAVE_GLPK)
        assert_int_equal(sep, HTNN_SEPARABILITY_NOT_SEPARABLE);
    xor_t[0] = 0.5f;
    assert_int_equal(htnn_separable(x, xor_t, 4, 2, HTNN_SOLVER_AUTO, 100, &sep, w, &b),
                     HTNN_EINVAL);
}

static void test_ftprop_validation(void **state)
{
    (void)state;
    float x[8];
    int32_t y[4];
    size_t hidden = 2;
    parity_data(2, x, y);
    htnn_net *net = sign_net(2, &hidden, 1, 1);
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    assert_int_equal(htnn_net_ftprop(NULL, NULL, x, y, 4, NULL, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_ftprop(net, NULL, x, NULL, 4, NULL, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 0, NULL, NULL), HTNN_EINVAL);
    o.attempts = 0;
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, &o, NULL), HTNN_EINVAL);
    o.attempts = 4;
    o.search_loss = 99;
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, &o, NULL), HTNN_EINVAL);
    htnn_net_free(net);
    /* relu hidden units cannot be searched */
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    no.output = HTNN_OUTPUT_HARD_THRESHOLD;
    assert_int_equal(htnn_net_create(2, &no, &net), HTNN_OK);
    d.units = 2;
    d.activation = HTNN_ACT_RELU;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 1;
    d.activation = HTNN_ACT_SIGN;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, NULL, NULL), HTNN_EUNSUPPORTED);
    assert_non_null(strstr(htnn_last_error(), "sign or step"));
    htnn_net_free(net);
}

/* A softmax output (identity units) is searched one-vs-rest. */
static void test_softmax_output_xor(void **state)
{
    (void)state;
    float x[8];
    int32_t y[4];
    htnn_net *net = NULL;
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
    parity_data(2, x, y);
    assert_int_equal(htnn_net_create(2, &no, &net), HTNN_OK);
    d.units = 2;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    assert_int_equal(htnn_net_ftprop(net, NULL, x, y, 4, NULL, &r), HTNN_OK);
    assert_int_equal(r.feasible, 1);
    assert_true(accuracy_of(net, x, y, 4) == 1.0);
    htnn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor_exhaustive),
        cmocka_unit_test(test_parity_3_and_4),
        cmocka_unit_test(test_parity_perceptron),
        cmocka_unit_test(test_teacher_nets),
        cmocka_unit_test(test_xor_without_hidden_layer_is_infeasible),
        cmocka_unit_test(test_separable_decisions),
        cmocka_unit_test(test_ftprop_validation),
        cmocka_unit_test(test_softmax_output_xor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
