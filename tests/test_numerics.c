/* Unit tests of the numeric building blocks: activation tables, per-layer
 * losses against finite differences, the STE / SSTE / tanh identities of
 * the loss-driven heuristic (ALGORITHM.md), the fast exp, the RNG.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "activations.h"
#include "fastmath.h"
#include "losses.h"
#include "rng.h"

static void test_sign_step_tables(void **state)
{
    (void)state;
    const float z[] = {-2.0f, -1e-30f, 0.0f, -0.0f, 1e-30f, 3.0f};
    const float sign[] = {-1, -1, -1, -1, 1, 1}, step[] = {0, 0, 0, 0, 1, 1};
    for (size_t i = 0; i < 6; i++) {
        assert_true(activation_apply(HTNN_ACT_SIGN, 0, z[i]) == sign[i]);
        assert_true(activation_apply(HTNN_ACT_STEP, 0, z[i]) == step[i]);
    }
    assert_true(activation_apply(HTNN_ACT_RELU, 0, -1.0f) == 0.0f);
    assert_true(activation_apply(HTNN_ACT_RELU, 0, 2.5f) == 2.5f);
    assert_true(activation_apply(HTNN_ACT_IDENTITY, 0, -2.5f) == -2.5f);
}

/* bits = 2: thresholds 0, 0.5, 1 (strict), levels 0, 1/3, 2/3, 1. */
static void test_qrelu_table(void **state)
{
    (void)state;
    const float z[] = {-1.0f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.5f};
    const float lv[] = {0.0f, 0.0f, 1.0f / 3, 1.0f / 3, 2.0f / 3, 2.0f / 3, 1.0f};
    for (size_t i = 0; i < 7; i++)
        assert_float_equal(activation_apply(HTNN_ACT_QRELU, 2, z[i]), lv[i], 1e-7);
    /* bits = 1 is the step function; bits = 3 has 8 levels. */
    assert_true(activation_apply(HTNN_ACT_QRELU, 1, 0.0f) == 0.0f);
    assert_true(activation_apply(HTNN_ACT_QRELU, 1, 0.1f) == 1.0f);
    assert_float_equal(activation_apply(HTNN_ACT_QRELU, 3, 0.5f), 3.0f / 7, 1e-7);
    assert_float_equal(activation_apply(HTNN_ACT_QRELU, 3, 2.0f), 1.0f, 1e-7);
    assert_false(activation_valid(HTNN_ACT_QRELU, 0));
    assert_false(activation_valid(HTNN_ACT_QRELU, 9));
    assert_false(activation_valid(99, 2));
}

static void test_activation_forward_adds_bias(void **state)
{
    (void)state;
    float z[6] = {-1, 0, 1, 2, -3, 0.5f}, h[6];
    const float b[3] = {1, 0, -1};
    activation_forward(HTNN_ACT_SIGN, 0, z, b, h, 2, 3);
    const float zz[6] = {0, 0, 0, 3, -3, -0.5f}, hh[6] = {-1, -1, -1, 1, -1, -1};
    for (int i = 0; i < 6; i++) {
        assert_true(z[i] == zz[i]);
        assert_true(h[i] == hh[i]);
    }
}

/* Known values from the loss table of ALGORITHM.md. */
static void test_loss_values(void **state)
{
    (void)state;
    assert_float_equal(loss_value(HTNN_LOSS_SOFT_HINGE, 0.0f, 1.0f), 1.0f, 1e-6);
    assert_float_equal(loss_value(HTNN_LOSS_SOFT_HINGE, 0.5f, -1.0f), tanhf(0.5f) + 1, 1e-6);
    assert_float_equal(loss_value(HTNN_LOSS_SATURATED_HINGE, -5.0f, 1.0f), 2.0f, 0);
    assert_float_equal(loss_value(HTNN_LOSS_SATURATED_HINGE, 0.25f, 1.0f), 0.75f, 1e-7);
    assert_float_equal(loss_value(HTNN_LOSS_SATURATED_HINGE, 3.0f, 1.0f), 0.0f, 0);
    assert_float_equal(loss_value(HTNN_LOSS_HINGE, -5.0f, 1.0f), 6.0f, 0);
    assert_float_equal(loss_value(HTNN_LOSS_PERCEPTRON, -2.0f, 1.0f), 2.0f, 0);
    assert_float_equal(loss_value(HTNN_LOSS_PERCEPTRON, 2.0f, 1.0f), 0.0f, 0);
    assert_float_equal(loss_value(HTNN_LOSS_LINEAR, 2.0f, -1.0f), 2.0f, 0);
}

/* Central differences in double around points away from the kinks. */
static void test_loss_grads_finite_differences(void **state)
{
    (void)state;
    const float zs[] = {-2.3f, -0.7f, -0.2f, 0.3f, 0.8f, 1.7f};
    const float ts[] = {-1.0f, 1.0f};
    const float h = 1e-3f;
    for (int loss = HTNN_LOSS_SOFT_HINGE; loss <= HTNN_LOSS_LINEAR; loss++)
        for (size_t i = 0; i < 6; i++)
            for (size_t k = 0; k < 2; k++) {
                float z = zs[i], t = ts[k];
                double fd = ((double)loss_value(loss, z + h, t) -
                             (double)loss_value(loss, z - h, t)) / (2.0 * h);
                float g = loss_grad(loss, z, t);
                if (fabs(fd - g) > 2e-3)
                    fail_msg("loss %d z %g t %g: grad %g vs finite difference %g", loss,
                             (double)z, (double)t, (double)g, fd);
            }
}

/* Random G and Z; the loss-driven heuristic sets t = sign(-G), w = |G|. */
static void heuristic_targets(const float *g, float *t, float *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t[i] = g[i] < 0 ? 1.0f : (g[i] > 0 ? -1.0f : 0.0f);
        w[i] = fabsf(g[i]);
    }
}

static void random_fill(rng *r, float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (2.0f * rng_uniform(r) - 1.0f) * scale;
}

enum { N = 4096 };

/* soft hinge + |G| = G (1 - tanh(Z)^2); saturated hinge + |G| = G 1[|Z|<1]
 * (SSTE); linear + |G| = G (STE); unweighted soft hinge = -T (1 - tanh^2). */
static void test_heuristic_identities(void **state)
{
    (void)state;
    static float g[N], z[N], t[N], w[N], dz[N];
    rng r;
    rng_seed(&r, 42);
    random_fill(&r, g, N, 1.0f);
    random_fill(&r, z, N, 3.0f);
    g[0] = 0.0f; /* a zero gradient gives target 0 and weight 0 */
    heuristic_targets(g, t, w, N);
    assert_true(t[0] == 0.0f && w[0] == 0.0f);

    loss_grad_weighted(HTNN_LOSS_SOFT_HINGE, HTNN_ACT_SIGN, 0, z, t, w, dz, N);
    for (size_t i = 0; i < N; i++) {
        double th = tanh((double)z[i]);
        assert_float_equal(dz[i], g[i] * (1.0 - th * th), 1e-6);
    }
    loss_grad_weighted(HTNN_LOSS_SATURATED_HINGE, HTNN_ACT_SIGN, 0, z, t, w, dz, N);
    for (size_t i = 0; i < N; i++)
        assert_true(dz[i] == (fabsf(z[i]) < 1.0f ? g[i] : 0.0f));
    loss_grad_weighted(HTNN_LOSS_LINEAR, HTNN_ACT_SIGN, 0, z, t, w, dz, N);
    for (size_t i = 0; i < N; i++)
        assert_true(dz[i] == g[i]);
    loss_grad_weighted(HTNN_LOSS_SOFT_HINGE, HTNN_ACT_SIGN, 1, z, t, w, dz, N);
    for (size_t i = 1; i < N; i++) {
        double th = tanh((double)z[i]);
        assert_float_equal(dz[i], -t[i] * (1.0 - th * th), 1e-6);
    }
    assert_true(dz[0] == 0.0f);
}

/* qrelu is scored at 2z - 1: soft hinge gives -t (1 - tanh(2z - 1)^2) and
 * the saturated hinge's window is 0 < z < 1. */
static void test_qrelu_surrogate(void **state)
{
    (void)state;
    const float z[4] = {-0.2f, 0.3f, 0.7f, 1.4f}, t[4] = {1, -1, 1, -1}, w[4] = {1, 1, 1, 1};
    float dz[4];
    loss_grad_weighted(HTNN_LOSS_SOFT_HINGE, HTNN_ACT_QRELU, 0, z, t, w, dz, 4);
    for (int i = 0; i < 4; i++) {
        double th = tanh(2.0 * z[i] - 1.0);
        assert_float_equal(dz[i], -t[i] * (1.0 - th * th), 1e-6);
    }
    loss_grad_weighted(HTNN_LOSS_SATURATED_HINGE, HTNN_ACT_QRELU, 0, z, t, w, dz, 4);
    const float want[4] = {0, 1, -1, 0};
    for (int i = 0; i < 4; i++)
        assert_true(dz[i] == want[i]);
}

static void test_fast_exp_accuracy(void **state)
{
    (void)state;
    double worst = 0.0;
    for (float x = -87.0f; x <= 0.0f; x += 0.001f) {
        double ref = exp((double)x), got = fast_exp_neg(x);
        double rel = fabs(got - ref) / ref;
        worst = rel > worst ? rel : worst;
    }
    assert_true(worst < 5e-7);
    for (float z = -10.0f; z <= 10.0f; z += 0.01f) {
        double th = tanh((double)z);
        assert_float_equal(sech2(z), 1.0 - th * th, 2e-7);
    }
}

static void test_rng_deterministic_and_uniform(void **state)
{
    (void)state;
    rng a, b;
    rng_seed(&a, 7);
    rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        assert_true(rng_next(&a) == rng_next(&b));
    size_t counts[10] = {0};
    for (int i = 0; i < 100000; i++)
        counts[rng_below(&a, 10)]++;
    for (int k = 0; k < 10; k++)
        assert_in_range(counts[k], 9500, 10500);
    size_t idx[50], seen[50] = {0};
    for (size_t i = 0; i < 50; i++)
        idx[i] = i;
    rng_shuffle(&a, idx, 50);
    for (size_t i = 0; i < 50; i++)
        seen[idx[i]]++;
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_step_tables),
        cmocka_unit_test(test_qrelu_table),
        cmocka_unit_test(test_activation_forward_adds_bias),
        cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_loss_grads_finite_differences),
        cmocka_unit_test(test_heuristic_identities),
        cmocka_unit_test(test_qrelu_surrogate),
        cmocka_unit_test(test_fast_exp_accuracy),
        cmocka_unit_test(test_rng_deterministic_and_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
