/* The net API: construction, queries, weights access, prediction, errors
 * and options-struct versioning; every bad input returns the right status
 * and leaves the caller's objects as they were.
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

static htnn_net *mlp(void)
{
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(3, NULL, &net), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 4;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 2;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    return net;
}

static void test_version_and_errors(void **state)
{
    (void)state;
    assert_int_equal(htnn_version(), HTNN_VERSION_NUMBER);
    assert_string_equal(htnn_version_string(), HTNN_VERSION_STRING);
    for (int s = 0; s >= -11; s--)
        assert_true(strlen(htnn_strerror((htnn_status)s)) > 0);
    assert_string_equal(htnn_strerror((htnn_status)-99), "unknown status");
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(0, NULL, &net), HTNN_EINVAL);
    assert_null(net);
    assert_non_null(strstr(htnn_last_error(), "input width 0"));
    htnn_clear_error();
    assert_string_equal(htnn_last_error(), "");
}

static void test_shape_queries(void **state)
{
    (void)state;
    htnn_net *net = mlp();
    assert_int_equal(htnn_net_layer_count(net), 2);
    assert_int_equal(htnn_net_input_width(net), 3);
    assert_int_equal(htnn_net_output_width(net), 2);
    assert_int_equal(htnn_net_class_count(net), 2);
    assert_int_equal(htnn_net_parameter_count(net), 3 * 4 + 4 + 4 * 2 + 2);
    assert_null(htnn_net_layer(net, 2));
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(htnn_net_layer(net, 1), &info), HTNN_OK);
    assert_int_equal(info.kind, HTNN_LAYER_DENSE);
    assert_int_equal(info.index, 1);
    assert_int_equal(info.in_width, 4);
    assert_int_equal(info.out_width, 2);
    assert_int_equal(info.activation, HTNN_ACT_IDENTITY);
    assert_int_equal(info.loss, HTNN_LOSS_SOFT_HINGE);
    assert_int_equal(info.weight_targets, 1);
    assert_int_equal(info.bias, 1);
    assert_int_equal(info.weight_count, 8);
    /* initial weights and biases lie in +-1/sqrt(in) and are not all equal */
    float w[12], b[4];
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(net, 0), w, 12), HTNN_OK);
    assert_int_equal(htnn_layer_get_bias(htnn_net_layer(net, 0), b, 4), HTNN_OK);
    for (int i = 0; i < 12; i++)
        assert_true(fabsf(w[i]) <= 1.0f / sqrtf(3.0f));
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(b[i]) <= 1.0f / sqrtf(3.0f));
    assert_true(w[0] != w[1] && b[0] != b[1]);
    htnn_net_free(net);
    assert_int_equal(htnn_net_layer_count(NULL), 0);
    htnn_net_free(NULL);
}

/* Known weights give known logits: z = W x + b, computed by hand. */
static void test_predict_known_answer(void **state)
{
    (void)state;
    htnn_net *net = mlp();
    const float w1[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    const float b1[4] = {0, 0, 0, -2.5f};
    const float w2[8] = {1, 1, 0, 0, 0, 0, 1, 1};
    const float b2[2] = {0.5f, 0};
    assert_int_equal(htnn_layer_set_weights(htnn_net_layer(net, 0), w1, 12), HTNN_OK);
    assert_int_equal(htnn_layer_set_bias(htnn_net_layer(net, 0), b1, 4), HTNN_OK);
    assert_int_equal(htnn_layer_set_weights(htnn_net_layer(net, 1), w2, 8), HTNN_OK);
    assert_int_equal(htnn_layer_set_bias(htnn_net_layer(net, 1), b2, 2), HTNN_OK);
    /* x = (1, -1, 2): z1 = (1, -1, 2, -0.5) -> h1 = (1, -1, 1, -1);
     * z2 = (1 - 1 + 0.5, 1 - 1) = (0.5, 0) -> class 0.
     * x = (-1, -1, 1): h1 = (-1, -1, 1, -1); z2 = (-1.5, 0) -> class 1. */
    const float x[6] = {1, -1, 2, -1, -1, 1};
    float logits[4];
    int32_t cls[2];
    assert_int_equal(htnn_net_predict_logits(net, x, 2, logits), HTNN_OK);
    assert_true(logits[0] == 0.5f && logits[1] == 0.0f);
    assert_true(logits[2] == -1.5f && logits[3] == 0.0f);
    assert_int_equal(htnn_net_predict(net, x, 2, cls), HTNN_OK);
    assert_int_equal(cls[0], 0);
    assert_int_equal(cls[1], 1);
    const int32_t y[2] = {0, 0};
    double loss, acc;
    assert_int_equal(htnn_net_evaluate(net, x, y, 2, &loss, &acc), HTNN_OK);
    assert_float_equal(acc, 0.5, 1e-12);
    double want = (log(1 + exp(-0.5)) + log(1 + exp(1.5))) / 2;
    assert_float_equal(loss, want, 1e-6);
    htnn_net_free(net);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    htnn_net *net = mlp();
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    float x[6] = {0, 1, 2, 3, 4, 5}, w[12];
    int32_t y[2] = {0, 1}, cls[2];
    htnn_layer *l0 = htnn_net_layer(net, 0);
    assert_int_equal(htnn_layer_get_weights(l0, w, 12), HTNN_OK);

    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_EINVAL); /* units 0 */
    d.units = 3;
    d.activation = 42;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_EINVAL);
    d.activation = HTNN_ACT_QRELU;
    d.qrelu_bits = 9;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_EINVAL);
    d.qrelu_bits = 2;
    d.loss = 17;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_add_dense(NULL, &d, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_add_dense(net, NULL, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_layer_count(net), 2);

    assert_int_equal(htnn_layer_set_weights(l0, w, 11), HTNN_ESHAPE);
    assert_non_null(strstr(htnn_last_error(), "12"));
    float bad[12];
    memcpy(bad, w, sizeof bad);
    bad[5] = NAN;
    assert_int_equal(htnn_layer_set_weights(l0, bad, 12), HTNN_ENUMERIC);
    bad[5] = INFINITY;
    assert_int_equal(htnn_layer_set_weights(l0, bad, 12), HTNN_ENUMERIC);
    float now[12];
    htnn_layer_get_weights(l0, now, 12);
    assert_memory_equal(now, w, sizeof w); /* unchanged */
    assert_int_equal(htnn_layer_set_loss(l0, 9, 1), HTNN_EINVAL);
    assert_int_equal(htnn_layer_set_loss(l0, HTNN_LOSS_HINGE, 2), HTNN_EINVAL);

    assert_int_equal(htnn_net_predict(net, NULL, 2, cls), HTNN_EINVAL);
    assert_int_equal(htnn_net_predict(net, x, 2, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_predict(net, x, 0, cls), HTNN_EINVAL);
    x[4] = NAN;
    assert_int_equal(htnn_net_predict(net, x, 2, cls), HTNN_ENUMERIC);
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, x, y, 2, NULL), HTNN_ENUMERIC);
    x[4] = 4;
    y[1] = 2; /* only classes 0..1 */
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, x, y, 2, NULL), HTNN_EINVAL);
    assert_non_null(strstr(htnn_last_error(), "label 2"));
    y[1] = -1;
    assert_int_equal(htnn_net_evaluate(net, x, y, 2, NULL, NULL), HTNN_EINVAL);
    y[1] = 1;
    assert_int_equal(htnn_net_train_batch(net, NULL, NULL, x, y, 2, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, 2, NULL, NULL), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 0;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, 2, &fo, NULL), HTNN_EINVAL);
    fo.epochs = 1;
    fo.val_count = 2;
    fo.val_x = x;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, 2, &fo, NULL), HTNN_EINVAL);

    htnn_net *empty = NULL;
    assert_int_equal(htnn_net_create(3, NULL, &empty), HTNN_OK);
    assert_int_equal(htnn_net_predict(empty, x, 2, cls), HTNN_ESTATE);
    htnn_net_free(empty);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

static void test_options_versioning(void **state)
{
    (void)state;
    htnn_net *net = NULL;
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    o.output = 7;
    assert_int_equal(htnn_net_create(3, &o, &net), HTNN_EINVAL);
    /* an older caller whose struct ends after `seed`: later fields default */
    o.struct_size = offsetof(htnn_net_options, output);
    o.seed = 77;
    assert_int_equal(htnn_net_create(3, &o, &net), HTNN_OK);
    htnn_net_options got = HTNN_NET_OPTIONS_INIT;
    assert_int_equal(htnn_net_get_options(net, &got), HTNN_OK);
    assert_int_equal(got.seed, 77);
    assert_int_equal(got.output, HTNN_OUTPUT_SOFTMAX);
    htnn_net_free(net);
    net = NULL;
    /* a caller built against a newer, larger struct is refused */
    o.struct_size = sizeof o + 8;
    assert_int_equal(htnn_net_create(3, &o, &net), HTNN_EUNSUPPORTED);
    o.struct_size = 2;
    assert_int_equal(htnn_net_create(3, &o, &net), HTNN_EINVAL);
    assert_null(net);

    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    htnn_optimizer *opt = NULL;
    oo.learning_rate = -1.0f;
    assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_EINVAL);
    oo.learning_rate = 0.1f;
    oo.nesterov = 1; /* needs momentum */
    assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_EINVAL);
    assert_null(opt);
}

static void test_softmax_needs_two_units(void **state)
{
    (void)state;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(2, NULL, &net), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 1;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    const float x[2] = {1, 2};
    int32_t cls;
    assert_int_equal(htnn_net_predict(net, x, 1, &cls), HTNN_ESTATE);
    htnn_net_free(net);
}

static void test_clone_is_deep(void **state)
{
    (void)state;
    htnn_net *net = mlp(), *copy = NULL;
    assert_int_equal(htnn_net_clone(net, &copy), HTNN_OK);
    float w[12], wc[12];
    htnn_layer_get_weights(htnn_net_layer(net, 0), w, 12);
    htnn_layer_get_weights(htnn_net_layer(copy, 0), wc, 12);
    assert_memory_equal(w, wc, sizeof w);
    wc[0] += 1.0f;
    htnn_layer_set_weights(htnn_net_layer(copy, 0), wc, 12);
    htnn_layer_get_weights(htnn_net_layer(net, 0), wc, 12);
    assert_memory_equal(w, wc, sizeof w);
    htnn_net_free(net);
    htnn_net_free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_errors),
        cmocka_unit_test(test_shape_queries),
        cmocka_unit_test(test_predict_known_answer),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_options_versioning),
        cmocka_unit_test(test_softmax_needs_two_units),
        cmocka_unit_test(test_clone_is_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
