/* Binary weights (htnn_dense_options.binary_weights) and the packed
 * inference engine (htnn/packed.h): predictions and logits of packed nets
 * equal the float net's on random nets with every kernel, on a trained
 * Fashion-MNIST subset net; packed files round trip, are >= 25x smaller
 * than float files for binary-weight nets, and bad inputs are refused.
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

#include "packed_nets.h"
#include "crc_reference.h"

/* Rounds float weights to multiples of 2^-4 (first layer) or 2^-8 (the
 * others) and biases to 2^-8, so every sum of the float net is exact in
 * float whatever sgemm's order (the rule of doc/guide.md): packed and float
 * logits are then equal bit for bit. */
static void make_dyadic(htnn_net *net)
{
    for (size_t d = 0; d < htnn_net_layer_count(net); d++) {
        htnn_layer *l = htnn_net_layer(net, d);
        htnn_layer_info info = HTNN_LAYER_INFO_INIT;
        assert_int_equal(htnn_layer_get_info(l, &info), HTNN_OK);
        float *w = malloc(info.weight_count * sizeof *w), b[2048];
        float q = d == 0 ? 16.0f : 256.0f;
        assert_int_equal(htnn_layer_get_weights(l, w, info.weight_count), HTNN_OK);
        for (size_t i = 0; i < info.weight_count && !info.binary_weights; i++)
            w[i] = roundf(w[i] * q) / q;
        assert_int_equal(htnn_layer_set_weights(l, w, info.weight_count), HTNN_OK);
        assert_int_equal(htnn_layer_get_bias(l, b, info.out_width), HTNN_OK);
        for (size_t j = 0; j < info.out_width; j++)
            b[j] = roundf(b[j] * 256.0f) / 256.0f;
        if (info.bias)
            assert_int_equal(htnn_layer_set_bias(l, b, info.out_width), HTNN_OK);
        free(w);
    }
}

static const int kernels[] = {HTNN_KERNEL_PORTABLE, HTNN_KERNEL_AVX2, HTNN_KERNEL_AVX512};

/* 1 if some first-layer sum of input row x lies within float rounding of
 * the sign threshold (computed here in double; B = sign(W), sign(0) = -1,
 * times alpha, as net.h defines binary weights).  The later layers' sums
 * are exact (make_dyadic), so only there can the float net's class depend
 * on the order sgemm sums in, which is the CPU's BLAS kernels' choice. */
static int first_layer_near_threshold(htnn_net *net, const float *x)
{
    htnn_layer *l = htnn_net_layer(net, 0);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(l, &info), HTNN_OK);
    size_t in = info.in_width, out = info.out_width;
    float *w = malloc(in * out * sizeof *w), *b = calloc(out, sizeof *b);
    assert_int_equal(htnn_layer_get_weights(l, w, in * out), HTNN_OK);
    if (info.bias)
        assert_int_equal(htnn_layer_get_bias(l, b, out), HTNN_OK);
    int near = 0;
    for (size_t j = 0; j < out && !near; j++) {
        double sum = 0.0, mag = 0.0, alpha = 0.0;
        for (size_t i = 0; i < in; i++) {
            double wi = w[j * in + i];
            alpha += fabs(wi) / (double)in;
            if (info.binary_weights)
                wi = wi > 0.0 ? 1.0 : -1.0;
            sum += x[i] * wi;
            mag += fabs(x[i] * wi);
        }
        if (info.binary_weights != HTNN_BINARY_SCALED)
            alpha = 1.0;
        double z = sum * alpha + b[j];
        /* a float sum of n terms is within n * 2^-24 of their magnitude;
         * twice that, since both paths may round (and the scale and bias) */
        near = fabs(z) <= (double)(in + 2) * 0x1p-23 * (mag * alpha + fabs(b[j]));
    }
    free(w), free(b);
    return near;
}

/* Packed and float classes are equal, except on rows whose first-layer
 * sums are within rounding of a threshold: the float net rounds them in
 * sgemm's order, the packed engine's u8 path is exact (with OpenBLAS's
 * Haswell kernels no row of this test differs; with its AVX-512 ones,
 * three, each such a row). */
static void assert_same_classes(htnn_net *net, htnn_packed *p, const float *x, size_t count)
{
    int32_t *cf = malloc(count * sizeof *cf), *cp = malloc(count * sizeof *cp);
    size_t in = htnn_net_input_width(net);
    assert_int_equal(htnn_net_predict(net, x, count, cf), HTNN_OK);
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
        if (htnn_packed_set_kernel(p, kernels[k]) != HTNN_OK)
            continue;
        assert_int_equal(htnn_packed_predict(p, x, count, cp), HTNN_OK);
        for (size_t i = 0; i < count; i++)
            if (cf[i] != cp[i])
                assert_true(first_layer_near_threshold(net, x + i * in));
    }
    free(cf), free(cp);
}

/* Packed logits and classes equal the float net's, bit for bit, for every
 * kernel the CPU runs. */
static void assert_same(htnn_net *net, htnn_packed *p, const float *x, size_t count)
{
    size_t out = htnn_net_output_width(net);
    float *zf = malloc(count * out * sizeof *zf), *zp = malloc(count * out * sizeof *zp);
    int32_t *cf = malloc(count * sizeof *cf), *cp = malloc(count * sizeof *cp);
    assert_int_equal(htnn_net_predict_logits(net, x, count, zf), HTNN_OK);
    assert_int_equal(htnn_net_predict(net, x, count, cf), HTNN_OK);
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
        if (htnn_packed_set_kernel(p, kernels[k]) != HTNN_OK)
            continue;
        assert_int_equal(htnn_packed_kernel_in_use(p), kernels[k]);
        assert_int_equal(htnn_packed_predict_logits(p, x, count, zp), HTNN_OK);
        assert_int_equal(htnn_packed_predict(p, x, count, cp), HTNN_OK);
        assert_memory_equal(cf, cp, count * sizeof *cf);
        assert_memory_equal(zf, zp, count * out * sizeof *zf);
    }
    free(zf), free(zp), free(cf), free(cp);
}

static void test_random_nets_match(void **state)
{
    (void)state;
    static const size_t shapes[][5] = {
        {100, 70, 130, 10, 0}, {64, 64, 64, 3, 0}, {65, 1, 129, 2, 0}, {784, 200, 10, 0, 0},
        {17, 300, 1, 0, 0}};
    static const size_t depth[] = {3, 3, 3, 2, 2};
    for (size_t s = 0; s < sizeof depth / sizeof *depth; s++)
        for (int mode = 0; mode < 8; mode++) {
            int binary[3];
            for (int d = 0; d < 3; d++)
                binary[d] = (int)((mode + d) % 3);
            if (mode == 7)
                binary[0] = binary[1] = binary[2] = HTNN_BINARY_SCALED;
            int hard = shapes[s][depth[s]] == 1 || mode == 5;
            htnn_net *net = make_net(shapes[s], depth[s], binary, hard, mode != 3, 100 + mode);
            make_dyadic(net);
            htnn_packed *p = NULL;
            assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
            assert_int_equal(htnn_packed_input_width(p), shapes[s][0]);
            assert_int_equal(htnn_packed_output_width(p), htnn_net_output_width(net));
            assert_int_equal(htnn_packed_class_count(p), htnn_net_class_count(net));
            assert_int_equal(htnn_packed_layer_count(p), depth[s]);
            for (int kind = 0; kind < 3; kind++) {
                size_t counts[] = {1, 5, 300};
                for (size_t c = 0; c < 3; c++) {
                    float *x = make_inputs(counts[c], shapes[s][0], kind);
                    /* kind 0 (p/256): every sum exact, logits bit for bit;
                     * p/255 or arbitrary inputs: sums rounded (by sgemm in a
                     * batch-size dependent order): the classes agree */
                    if (kind == 0)
                        assert_same(net, p, x, counts[c]);
                    else
                        assert_same_classes(net, p, x, counts[c]);
                    free(x);
                }
            }
            htnn_packed_free(p);
            htnn_net_free(net);
        }
}

/* Edge cases: every unit's threshold at the extremes (bias beyond +-K) and
 * zero weights (sign(0) = -1, alpha = 0). */
static void test_extreme_thresholds(void **state)
{
    (void)state;
    size_t widths[] = {70, 65, 33, 4};
    int binary[] = {HTNN_BINARY_SCALED, HTNN_BINARY_SIGN, HTNN_BINARY_SCALED};
    htnn_net *net = make_net(widths, 3, binary, 0, 1, 7);
    make_dyadic(net);
    for (size_t d = 0; d < 3; d++) {
        htnn_layer *l = htnn_net_layer(net, d);
        float b[70];
        for (size_t j = 0; j < widths[d + 1]; j++)
            b[j] = j % 3 == 0 ? 1000.0f : j % 3 == 1 ? -1000.0f : 0.0f;
        assert_int_equal(htnn_layer_set_bias(l, b, widths[d + 1]), HTNN_OK);
    }
    float *w = calloc(65 * 33, sizeof *w);
    assert_int_equal(htnn_layer_set_weights(htnn_net_layer(net, 1), w, 65 * 33), HTNN_OK);
    free(w);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    for (int kind = 0; kind < 3; kind++) {
        float *x = make_inputs(40, 70, kind);
        if (kind == 0)
            assert_same(net, p, x, 40);
        else
            assert_same_classes(net, p, x, 40);
        free(x);
    }
    htnn_packed_free(p);
    htnn_net_free(net);
}

static void test_pack_refuses(void **state)
{
    (void)state;
    htnn_packed *p = NULL;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_pack(NULL, &p), HTNN_EINVAL);
    assert_int_equal(htnn_net_create(5, NULL, &net), HTNN_OK);
    assert_int_equal(htnn_net_pack(net, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_ESTATE);
    htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
    o.units = 4;
    o.activation = HTNN_ACT_RELU;
    assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_OK);
    o.activation = HTNN_ACT_IDENTITY;
    o.units = 3;
    assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_OK);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_EUNSUPPORTED);
    assert_non_null(strstr(htnn_last_error(), "hidden layer 0"));
    assert_null(p);
    htnn_net_free(net);
    /* softmax with one unit */
    size_t widths[] = {5, 1};
    int binary[] = {1};
    net = make_net(widths, 1, binary, 0, 1, 1);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_EUNSUPPORTED);
    htnn_net_free(net);
}

static void test_predict_refuses(void **state)
{
    (void)state;
    size_t widths[] = {6, 5, 3};
    int binary[] = {1, 1};
    htnn_net *net = make_net(widths, 2, binary, 0, 1, 1);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    float x[12] = {0}, z[6];
    int32_t c[2];
    assert_int_equal(htnn_packed_predict(NULL, x, 2, c), HTNN_EINVAL);
    assert_int_equal(htnn_packed_predict(p, NULL, 2, c), HTNN_EINVAL);
    assert_int_equal(htnn_packed_predict(p, x, 2, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_packed_predict(p, x, 0, c), HTNN_EINVAL);
    assert_int_equal(htnn_packed_predict_logits(p, x, 0, z), HTNN_EINVAL);
    x[7] = NAN;
    assert_int_equal(htnn_packed_predict(p, x, 2, c), HTNN_ENUMERIC);
    x[7] = INFINITY;
    assert_int_equal(htnn_packed_predict_logits(p, x, 2, z), HTNN_ENUMERIC);
    assert_int_equal(htnn_packed_set_kernel(NULL, 1), HTNN_EINVAL);
    int before = htnn_packed_kernel_in_use(p);
    assert_int_equal(htnn_packed_set_kernel(p, 42), HTNN_EUNSUPPORTED);
    assert_int_equal(htnn_packed_kernel_in_use(p), before);
    assert_int_equal(htnn_packed_set_kernel(p, HTNN_KERNEL_AUTO), HTNN_OK);
    assert_int_equal(htnn_packed_kernel_in_use(NULL), -1);
    assert_string_equal(htnn_packed_kernel_name(HTNN_KERNEL_PORTABLE), "portable");
    assert_string_equal(htnn_packed_kernel_name(77), "?");
    assert_int_equal(htnn_packed_input_width(NULL), 0);
    htnn_packed_free(NULL);
    htnn_packed_free(p);
    htnn_net_free(net);
}

static void test_force_portable_env(void **state)
{
    (void)state;
    size_t widths[] = {6, 5, 3};
    int binary[] = {1, 1};
    htnn_net *net = make_net(widths, 2, binary, 0, 1, 1);
    htnn_packed *p = NULL;
    setenv("HTNN_FORCE_PORTABLE", "1", 1);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    unsetenv("HTNN_FORCE_PORTABLE");
    assert_int_equal(htnn_packed_kernel_in_use(p), HTNN_KERNEL_PORTABLE);
    htnn_packed_free(p);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    printf("auto kernel: %s\n", htnn_packed_kernel_name(htnn_packed_kernel_in_use(p)));
    htnn_packed_free(p);
    htnn_net_free(net);
}

static void test_file_round_trip_and_size(void **state)
{
    (void)state;
    size_t widths[] = {784, 1024, 1024, 10};
    int binary[] = {1, 1, 1};
    htnn_net *net = make_net(widths, 3, binary, 0, 1, 3);
    htnn_packed *p = NULL, *q = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    void *fbuf = NULL, *pbuf = NULL, *pbuf2 = NULL;
    size_t fsize = 0, psize = 0, psize2 = 0;
    assert_int_equal(htnn_net_save_buffer(net, &fbuf, &fsize), HTNN_OK);
    assert_int_equal(htnn_packed_save_buffer(p, &pbuf, &psize), HTNN_OK);
    printf("784-1024-1024-10 binary: float file %zu bytes, packed %zu bytes, ratio %.1fx\n",
           fsize, psize, (double)fsize / (double)psize);
    assert_true((double)fsize / (double)psize >= 25.0);
    assert_int_equal(htnn_packed_load_buffer(pbuf, psize, &q), HTNN_OK);
    assert_int_equal(htnn_packed_save_buffer(q, &pbuf2, &psize2), HTNN_OK);
    assert_int_equal(psize, psize2);
    assert_memory_equal(pbuf, pbuf2, psize);
    float *x = make_inputs(50, 784, 0);
    assert_same(net, q, x, 50);
    htnn_packed_free(q);
    q = NULL;
    /* files */
    char path[] = "/tmp/htnn_test_packed_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(htnn_packed_save(p, path), HTNN_OK);
    assert_int_equal(htnn_packed_load(path, &q), HTNN_OK);
    assert_same(net, q, x, 50);
    htnn_packed_free(q);
    q = NULL;
    /* a float model file is not a packed file, and vice versa */
    assert_int_equal(htnn_packed_load_buffer(fbuf, fsize, &q), HTNN_EFORMAT);
    htnn_net *n2 = NULL;
    assert_int_equal(htnn_net_load_buffer(pbuf, psize, &n2), HTNN_EFORMAT);
    remove(path);
    free(x);
    htnn_free(fbuf), htnn_free(pbuf), htnn_free(pbuf2);
    htnn_packed_free(p);
    htnn_net_free(net);
}

static void test_corrupt_packed_files(void **state)
{
    (void)state;
    size_t widths[] = {70, 9, 3};
    int binary[] = {1, 0};
    htnn_net *net = make_net(widths, 2, binary, 0, 1, 5);
    htnn_packed *p = NULL, *q = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    unsigned char *buf = NULL;
    size_t size = 0;
    assert_int_equal(htnn_packed_save_buffer(p, (void **)&buf, &size), HTNN_OK);
    /* every truncation */
    for (size_t n = 0; n < size; n++) {
        htnn_status st = htnn_packed_load_buffer(buf, n, &q);
        assert_true(st == HTNN_EFORMAT);
        assert_null(q);
    }
    /* every single-byte corruption */
    for (size_t i = 0; i < size; i++) {
        buf[i] ^= 0x5a;
        htnn_status st = htnn_packed_load_buffer(buf, size, &q);
        assert_true(st == HTNN_EFORMAT || st == HTNN_EVERSION);
        assert_null(q);
        buf[i] ^= 0x5a;
    }
    /* a newer version */
    buf[8] = 2;
    assert_int_equal(htnn_packed_load_buffer(buf, size, &q), HTNN_EVERSION);
    buf[8] = 1;
    assert_int_equal(htnn_packed_load_buffer(NULL, size, &q), HTNN_EINVAL);
    assert_int_equal(htnn_packed_load("/nonexistent/x.htnnb", &q), HTNN_EIO);
    assert_int_equal(htnn_packed_load_buffer(buf, size, &q), HTNN_OK);
    htnn_packed_free(q);
    htnn_free(buf);
    htnn_packed_free(p);
    htnn_net_free(net);
}

/* ---- binary weights in the float net ----------------------------------- */

static void test_binary_option_and_info(void **state)
{
    (void)state;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(4, NULL, &net), HTNN_OK);
    htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
    assert_int_equal(o.binary_weights, HTNN_BINARY_NONE);
    o.units = 3;
    o.binary_weights = 3;
    assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_EINVAL);
    o.binary_weights = -1;
    assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_EINVAL);
    o.binary_weights = HTNN_BINARY_SCALED;
    htnn_layer *l = NULL;
    assert_int_equal(htnn_net_add_dense(net, &o, &l), HTNN_OK);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(l, &info), HTNN_OK);
    assert_int_equal(info.binary_weights, HTNN_BINARY_SCALED);
    /* an older caller's dense options (without binary_weights) get float weights */
    htnn_dense_options old = HTNN_DENSE_OPTIONS_INIT;
    old.struct_size = offsetof(htnn_dense_options, binary_weights);
    old.units = 2;
    old.binary_weights = 2; /* not covered by struct_size: ignored */
    assert_int_equal(htnn_net_add_dense(net, &old, &l), HTNN_OK);
    assert_int_equal(htnn_layer_get_info(l, &info), HTNN_OK);
    assert_int_equal(info.binary_weights, HTNN_BINARY_NONE);
    htnn_net_free(net);
}

/* The forward pass is Z = (X sign(W)^T) * alpha + b with alpha = mean |W|. */
static void test_binary_forward_formula(void **state)
{
    (void)state;
    for (int mode = 1; mode <= 2; mode++) {
        htnn_net_options no = HTNN_NET_OPTIONS_INIT;
        no.output = HTNN_OUTPUT_HARD_THRESHOLD;
        htnn_net *net = NULL;
        assert_int_equal(htnn_net_create(3, &no, &net), HTNN_OK);
        htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
        o.units = 2;
        o.activation = HTNN_ACT_IDENTITY;
        o.binary_weights = mode;
        htnn_layer *l = NULL;
        assert_int_equal(htnn_net_add_dense(net, &o, &l), HTNN_OK);
        const float w[6] = {0.5f, -0.25f, 0.0f, -1.0f, 0.75f, 0.25f};
        const float b[2] = {0.125f, -0.5f};
        assert_int_equal(htnn_layer_set_weights(l, w, 6), HTNN_OK);
        assert_int_equal(htnn_layer_set_bias(l, b, 2), HTNN_OK);
        const float x[3] = {1.0f, 2.0f, 4.0f};
        float z[2];
        assert_int_equal(htnn_net_predict_logits(net, x, 1, z), HTNN_OK);
        /* signs (sign(0) = -1): row 0 = + - -, row 1 = - + + */
        float a0 = mode == 1 ? 0.25f : 1.0f, a1 = mode == 1 ? 2.0f / 3.0f : 1.0f;
        assert_true(z[0] == (1.0f - 2.0f - 4.0f) * a0 + 0.125f);
        assert_true(z[1] == (-1.0f + 2.0f + 4.0f) * a1 - 0.5f);
        float got[6];
        assert_int_equal(htnn_layer_get_weights(l, got, 6), HTNN_OK);
        assert_memory_equal(got, w, sizeof w); /* latent weights are kept */
        htnn_net_free(net);
    }
}

/* Training keeps the latent weights in [-1, 1] and learns a simple task. */
static void test_binary_training(void **state)
{
    (void)state;
    size_t n = 400, width = 20;
    float *x = malloc(n * width * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (size_t k = 0; k < width; k++) {
            x[i * width + k] = uniform() * 2.0f - 1.0f;
            s += k < 10 ? x[i * width + k] : 0.0f;
        }
        y[i] = s > 0.0f;
    }
    size_t widths[] = {20, 64, 2};
    for (int mode = 1; mode <= 2; mode++) {
        int binary[] = {mode, mode};
        htnn_net *net = make_net(widths, 2, binary, 0, 1, 9);
        htnn_layer *l0 = htnn_net_layer(net, 0);
        float w[20 * 64];
        for (size_t i = 0; i < 20 * 64; i++)
            w[i] = i % 2 ? 5.0f : -3.0f * uniform();
        assert_int_equal(htnn_layer_set_weights(l0, w, 20 * 64), HTNN_OK);
        htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
        oo.learning_rate = 0.01f;
        htnn_optimizer *opt = NULL;
        assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_OK);
        htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
        fo.epochs = 30;
        fo.batch_size = 50;
        htnn_fit_result res = HTNN_FIT_RESULT_INIT;
        assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, n, &fo, &res), HTNN_OK);
        assert_int_equal(htnn_layer_get_weights(l0, w, 20 * 64), HTNN_OK);
        for (size_t i = 0; i < 20 * 64; i++)
            assert_true(w[i] >= -1.0f && w[i] <= 1.0f);
        double acc = 0.0;
        assert_int_equal(htnn_net_evaluate(net, x, y, n, NULL, &acc), HTNN_OK);
        printf("binary weights mode %d: train accuracy %.3f\n", mode, acc);
        assert_true(acc > 0.8);
        /* the trained net packs and predicts the same */
        htnn_packed *p = NULL;
        assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
        assert_same_classes(net, p, x, n);
        /* model file round trip keeps the mode and the predictions */
        void *buf = NULL;
        size_t size = 0;
        htnn_net *back = NULL;
        assert_int_equal(htnn_net_save_buffer(net, &buf, &size), HTNN_OK);
        assert_int_equal(htnn_net_load_buffer(buf, size, &back), HTNN_OK);
        htnn_layer_info info = HTNN_LAYER_INFO_INIT;
        assert_int_equal(htnn_layer_get_info(htnn_net_layer(back, 1), &info), HTNN_OK);
        assert_int_equal(info.binary_weights, mode);
        float za[800], zb[800];
        assert_int_equal(htnn_net_predict_logits(net, x, n, za), HTNN_OK);
        assert_int_equal(htnn_net_predict_logits(back, x, n, zb), HTNN_OK);
        assert_memory_equal(za, zb, sizeof za);
        htnn_free(buf);
        htnn_net_free(back);
        htnn_packed_free(p);
        htnn_optimizer_free(opt);
        htnn_net_free(net);
    }
    free(x);
    free(y);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The binary-weights section: written only when needed (files of float
 * nets keep the version 1 layout), bad lengths and modes are refused. */
static void test_model_file_binary_section(void **state)
{
    (void)state;
    size_t widths[] = {5, 4, 3};
    int none[] = {0, 0}, some[] = {0, 2};
    htnn_net *a = make_net(widths, 2, none, 0, 1, 1), *b = make_net(widths, 2, some, 0, 1, 1);
    unsigned char *fa = NULL, *fb = NULL;
    size_t sa = 0, sb = 0;
    assert_int_equal(htnn_net_save_buffer(a, (void **)&fa, &sa), HTNN_OK);
    assert_int_equal(htnn_net_save_buffer(b, (void **)&fb, &sb), HTNN_OK);
    assert_int_equal(sb, sa + 12 + 8); /* one section: head + 2 x u32 */
    assert_memory_equal(fa, fb, sa - 16); /* same up to END */
    /* the section: tag 0x80000001 at sa - 16 */
    size_t at = sa - 16;
    assert_int_equal(fb[at + 3], 0x80);
    assert_int_equal(fb[at], 0x01);
    htnn_net *back = NULL;
    /* mode 3 is unknown */
    put32(fb + at + 12 + 4, 3);
    put32(fb + sb - 4, crc32_reference(fb, sb - 4));
    assert_int_equal(htnn_net_load_buffer(fb, sb, &back), HTNN_EFORMAT);
    assert_non_null(strstr(htnn_last_error(), "binary"));
    /* wrong length (claims 4 bytes for 2 layers) */
    put32(fb + at + 12 + 4, 2);
    put32(fb + at + 4, 4);
    put32(fb + sb - 4, crc32_reference(fb, sb - 4));
    assert_int_equal(htnn_net_load_buffer(fb, sb, &back), HTNN_EFORMAT);
    put32(fb + at + 4, 8);
    put32(fb + sb - 4, crc32_reference(fb, sb - 4));
    assert_int_equal(htnn_net_load_buffer(fb, sb, &back), HTNN_OK);
    htnn_net_free(back);
    /* every truncation of a file with the section fails cleanly */
    for (size_t n = 0; n < sb; n++) {
        back = NULL;
        assert_int_not_equal(htnn_net_load_buffer(fb, n, &back), HTNN_OK);
        assert_null(back);
    }
    htnn_free(fa), htnn_free(fb);
    htnn_net_free(a), htnn_net_free(b);
}

/* Version 1 files (float nets, written before binary weights existed) load
 * with float weights: a hand-made file from doc/file-format.md's example. */
static void test_loads_version1_file(void **state)
{
    (void)state;
    size_t widths[] = {6, 5};
    int none[] = {0};
    htnn_net *a = make_net(widths, 1, none, 0, 1, 1);
    unsigned char *f = NULL;
    size_t s = 0;
    assert_int_equal(htnn_net_save_buffer(a, (void **)&f, &s), HTNN_OK);
    assert_int_equal(s, 44 + 12 + 176 + 12 + 4); /* the documented v1 layout */
    assert_int_equal(f[8], 1);
    htnn_net *back = NULL;
    assert_int_equal(htnn_net_load_buffer(f, s, &back), HTNN_OK);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(htnn_net_layer(back, 0), &info), HTNN_OK);
    assert_int_equal(info.binary_weights, HTNN_BINARY_NONE);
    htnn_net_free(back);
    htnn_free(f);
    htnn_net_free(a);
}

/* ---- a trained Fashion-MNIST net ----------------------------------------- */

static htnn_data *load_fashion(const char *split)
{
    const char *dir = getenv("HTNN_FASHION_MNIST_DIR");
    char img[512], lab[512];
    dir = dir ? dir : "/usr/share/datasets/fashion-mnist";
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    htnn_data *d = NULL;
    return htnn_data_load_idx(img, lab, HTNN_SCALE_UNIT, &d) == HTNN_OK ? d : NULL;
}

static void test_fashion_packed_equals_float(void **state)
{
    (void)state;
    htnn_data *train = load_fashion("train"), *test = load_fashion("t10k");
    if (train == NULL || test == NULL) {
        htnn_data_free(train);
        skip();
    }
    size_t widths[] = {784, 256, 256, 10};
    int binary[] = {HTNN_BINARY_SCALED, HTNN_BINARY_SCALED, HTNN_BINARY_NONE};
    htnn_net *net = make_net(widths, 3, binary, 0, 1, 1);
    assert_int_equal(htnn_net_set_threads(net, 1), HTNN_OK);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 1;
    assert_int_equal(htnn_net_fit(net, opt, NULL, htnn_data_features(train),
                                  htnn_data_labels(train), 6000, &fo, NULL), HTNN_OK);
    size_t n = htnn_data_count(test);
    const float *x = htnn_data_features(test);
    int32_t *cf = malloc(n * sizeof *cf), *cp = malloc(n * sizeof *cp);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    assert_int_equal(htnn_net_predict(net, x, n, cf), HTNN_OK);
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
        if (htnn_packed_set_kernel(p, kernels[k]) != HTNN_OK)
            continue;
        assert_int_equal(htnn_packed_predict(p, x, n, cp), HTNN_OK);
        size_t same = 0, right = 0;
        for (size_t i = 0; i < n; i++) {
            same += cf[i] == cp[i];
            right += cp[i] == htnn_data_labels(test)[i];
        }
        printf("fashion 784-256b-256b-10: %s kernel: %zu / %zu predictions equal, packed "
               "accuracy %.4f\n", htnn_packed_kernel_name(kernels[k]), same, n,
               (double)right / (double)n);
        assert_int_equal(same, n);
    }
    free(cf), free(cp);
    htnn_packed_free(p);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    htnn_data_free(train);
    htnn_data_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_option_and_info),
        cmocka_unit_test(test_binary_forward_formula),
        cmocka_unit_test(test_binary_training),
        cmocka_unit_test(test_model_file_binary_section),
        cmocka_unit_test(test_loads_version1_file),
        cmocka_unit_test(test_random_nets_match),
        cmocka_unit_test(test_extreme_thresholds),
        cmocka_unit_test(test_pack_refuses),
        cmocka_unit_test(test_predict_refuses),
        cmocka_unit_test(test_force_portable_env),
        cmocka_unit_test(test_file_round_trip_and_size),
        cmocka_unit_test(test_corrupt_packed_files),
        cmocka_unit_test(test_fashion_packed_equals_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
