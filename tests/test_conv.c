/* Conv2d, max-pool and batch norm: forward against direct formulas,
 * gradients against finite differences, arg-max routing, batch-norm train
 * vs eval statistics, model-file round trips and bad shapes.  Links the
 * library's objects so it can drive a layer's operations directly.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "htnn/htnn.h"
#include "layers.h"
#include "net_internal.h"
#include "conv_nets.h"

static uint64_t seed_state = 12345;

/* Deterministic uniform values in [-1, 1). */
static float urand(void)
{
    seed_state = seed_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((seed_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = urand() * scale;
}

typedef struct conv_case {
    size_t c, h, w, oc, kh, kw, stride, pad;
} conv_case;

static htnn_net *image_net(size_t c, size_t h, size_t w)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL;
    no.threads = 1;
    assert_int_equal(htnn_net_create(c * h * w, &no, &net), HTNN_OK);
    assert_int_equal(htnn_net_set_input_shape(net, c, h, w), HTNN_OK);
    return net;
}

/* Direct NHWC convolution with OHWI weights, one example. */
static void direct_conv(const conv_case *k, const float *x, const float *wt, const float *b,
                        size_t oh, size_t ow, float *z)
{
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t o = 0; o < k->oc; o++) {
                double sum = b[o];
                for (size_t ky = 0; ky < k->kh; ky++)
                    for (size_t kx = 0; kx < k->kw; kx++) {
                        long iy = (long)(oy * k->stride + ky) - (long)k->pad;
                        long ix = (long)(ox * k->stride + kx) - (long)k->pad;
                        if (iy < 0 || ix < 0 || iy >= (long)k->h || ix >= (long)k->w)
                            continue;
                        for (size_t c = 0; c < k->c; c++)
                            sum += (double)x[((size_t)iy * k->w + (size_t)ix) * k->c + c] *
                                   wt[((o * k->kh + ky) * k->kw + kx) * k->c + c];
                    }
                z[(oy * ow + ox) * k->oc + o] = (float)sum;
            }
}

static void check_conv_case(const conv_case *k)
{
    const size_t m = 3;
    htnn_net *net = image_net(k->c, k->h, k->w);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    htnn_layer *layer;
    co.channels = k->oc, co.kernel_h = k->kh, co.kernel_w = k->kw;
    co.stride = k->stride, co.padding = k->pad;
    assert_int_equal(htnn_net_add_conv2d(net, &co, &layer), HTNN_OK);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(layer, &info), HTNN_OK);
    size_t oh = (k->h + 2 * k->pad - k->kh) / k->stride + 1;
    size_t ow = (k->w + 2 * k->pad - k->kw) / k->stride + 1;
    assert_int_equal(info.out_height, oh);
    assert_int_equal(info.out_columns, ow);
    assert_int_equal(info.out_channels, k->oc);
    assert_int_equal(info.weight_count, k->oc * k->kh * k->kw * k->c);
    size_t in = k->c * k->h * k->w, out = oh * ow * k->oc;
    float *x = malloc(m * in * sizeof *x), *wt = malloc(info.weight_count * sizeof *wt);
    float *b = malloc(k->oc * sizeof *b), *z = malloc(m * out * sizeof *z);
    float *want = malloc(out * sizeof *want);
    fill(x, m * in, 1.0f);
    fill(wt, info.weight_count, 0.5f);
    fill(b, k->oc, 0.5f);
    assert_int_equal(htnn_layer_set_weights(layer, wt, info.weight_count), HTNN_OK);
    assert_int_equal(htnn_layer_set_bias(layer, b, k->oc), HTNN_OK);
    assert_int_equal(htnn_net_predict_logits(net, x, m, z), HTNN_OK);
    for (size_t n = 0; n < m; n++) {
        direct_conv(k, x + n * in, wt, b, oh, ow, want);
        for (size_t i = 0; i < out; i++)
            if (fabsf(z[n * out + i] - want[i]) > 1e-4f * (1.0f + fabsf(want[i])))
                fail_msg("case %zux%zux%zu k%zux%zu s%zu p%zu: example %zu value %zu: %g "
                         "vs direct %g", k->c, k->h, k->w, k->kh, k->kw, k->stride, k->pad, n,
                         i, (double)z[n * out + i], (double)want[i]);
    }
    free(x), free(wt), free(b), free(z), free(want);
    htnn_net_free(net);
}

static void test_conv_forward_matches_direct(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {1, 5, 5, 2, 3, 3, 1, 1},  {3, 7, 6, 4, 3, 3, 2, 1}, {2, 9, 9, 3, 5, 5, 1, 2},
        {2, 7, 5, 3, 3, 2, 1, 0},  {2, 8, 8, 3, 1, 1, 1, 0}, {3, 10, 11, 5, 4, 4, 3, 1},
        {1, 28, 28, 4, 5, 5, 1, 2}, {4, 6, 9, 2, 3, 5, 2, 2}, {1, 3, 3, 2, 3, 3, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv_case(&cases[i]);
}

/* Mean softmax loss of the net on (x, y). */
static double mean_loss(htnn_net *net, const float *x, const int32_t *y, size_t m)
{
    double loss;
    assert_int_equal(htnn_net_evaluate(net, x, y, m, &loss, NULL), HTNN_OK);
    return loss;
}

/* With SGD at learning rate 1 and no momentum, one batch moves every
 * parameter by exactly minus its gradient; compare that with central
 * differences of the evaluated loss, for every parameter of `layer`. */
static void check_layer_gradient(htnn_net *net, size_t index, const float *x, const int32_t *y,
                                 size_t m)
{
    htnn_layer *layer = htnn_net_layer(net, index);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    assert_int_equal(htnn_layer_get_info(layer, &info), HTNN_OK);
    size_t nw = info.weight_count, nb = info.bias_count, n = nw + nb;
    float *p0 = malloc(n * sizeof *p0), *p1 = malloc(n * sizeof *p1), *p = malloc(n * sizeof *p);
    htnn_net *copy;
    assert_int_equal(htnn_layer_get_weights(layer, p0, nw), HTNN_OK);
    assert_int_equal(htnn_layer_get_bias(layer, p0 + nw, nb), HTNN_OK);
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    htnn_optimizer *opt;
    oo.kind = HTNN_OPT_SGD, oo.learning_rate = 1.0f, oo.momentum = 0.0f;
    assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_OK);
    assert_int_equal(htnn_net_clone(net, &copy), HTNN_OK);
    assert_int_equal(htnn_net_train_batch(copy, opt, NULL, x, y, m, NULL), HTNN_OK);
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(copy, index), p1, nw), HTNN_OK);
    assert_int_equal(htnn_layer_get_bias(htnn_net_layer(copy, index), p1 + nw, nb), HTNN_OK);
    const float h = 1e-3f;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, p0, n * sizeof *p);
        p[i] = p0[i] + h;
        htnn_layer_set_weights(layer, p, nw);
        htnn_layer_set_bias(layer, p + nw, nb);
        double up = mean_loss(net, x, y, m);
        p[i] = p0[i] - h;
        htnn_layer_set_weights(layer, p, nw);
        htnn_layer_set_bias(layer, p + nw, nb);
        double down = mean_loss(net, x, y, m);
        double fd = (up - down) / (2.0 * h), g = (double)p0[i] - (double)p1[i];
        if (fabs(fd - g) > 2e-3 + 2e-2 * fabs(fd))
            fail_msg("layer %zu parameter %zu: gradient %g, finite difference %g", index, i,
                     g, fd);
    }
    htnn_layer_set_weights(layer, p0, nw);
    htnn_layer_set_bias(layer, p0 + nw, nb);
    htnn_net_free(copy);
    htnn_optimizer_free(opt);
    free(p0), free(p1), free(p);
}

static void test_conv_pool_gradients(void **state)
{
    (void)state;
    const size_t m = 5, c = 2, h = 7, w = 6;
    htnn_net *net = image_net(c, h, w);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 3;
    assert_int_equal(htnn_net_add_conv2d(net, &co, NULL), HTNN_OK);
    htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
    assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
    co.channels = 2, co.kernel_h = 2, co.kernel_w = 3, co.stride = 2;
    assert_int_equal(htnn_net_add_conv2d(net, &co, NULL), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 4, d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    float x[5 * 2 * 7 * 6];
    int32_t y[5] = {0, 1, 2, 3, 1};
    fill(x, m * c * h * w, 1.0f);
    for (size_t d_ = 0; d_ < htnn_net_layer_count(net); d_++)
        if (d_ != 1)
            check_layer_gradient(net, d_, x, y, m);
    htnn_net_free(net);
}

/* Max-pool routes each output's gradient to the first maximum of its
 * window, and a hard layer below gets loss-driven targets only there. */
static void test_maxpool_routing(void **state)
{
    (void)state;
    htnn_net *net = image_net(1, 4, 4);
    htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
    assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
    const float x[16] = {1, 5, 2, 2,  /* window (0,0): 5 at 1; (0,1): tie 2,2 -> 2 */
                         3, 0, 2, 1,
                         -1, -2, 7, 7, /* (1,0): -1 at 8; (1,1): tie 7,7 -> 10 */
                         -3, -4, 7, 0};
    assert_int_equal(net_reserve(net, 1), HTNN_OK);
    net_forward_inference(net, x, 1);
    layer_scratch *s = &net->scratch[0];
    const float want_z[4] = {5, 2, -1, 7};
    const int32_t want_arg[4] = {1, 2, 8, 10};
    for (int j = 0; j < 4; j++) {
        assert_true(s->z[j] == want_z[j]);
        assert_int_equal(s->arg[j], want_arg[j]);
        s->dz[j] = (float)(j + 1);
    }
    float g[16];
    layer_ops_of(net->layers[0])->input_grad(net->layers[0], s, 1, g);
    for (int i = 0; i < 16; i++) {
        float want = 0.0f;
        for (int j = 0; j < 4; j++)
            want += want_arg[j] == i ? (float)(j + 1) : 0.0f;
        assert_true(g[i] == want);
    }
    /* overlapping windows (size 2, stride 1) add up at a shared arg-max */
    htnn_net_free(net);
    net = image_net(1, 3, 3);
    po.stride = 1;
    assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
    const float x2[9] = {0, 0, 0, 0, 9, 0, 0, 0, 0};
    assert_int_equal(net_reserve(net, 1), HTNN_OK);
    net_forward_inference(net, x2, 1);
    s = &net->scratch[0];
    for (int j = 0; j < 4; j++)
        s->dz[j] = 1.0f;
    layer_ops_of(net->layers[0])->input_grad(net->layers[0], s, 1, g);
    for (int i = 0; i < 9; i++)
        assert_true(g[i] == (i == 4 ? 4.0f : 0.0f));
    htnn_net_free(net);
}

/* Training mode normalises with the batch's statistics and moves the
 * running ones by `momentum`; prediction uses the running ones. */
static void test_batchnorm_train_vs_eval(void **state)
{
    (void)state;
    const size_t m = 6, c = 3, hw = 4, in = c * hw;
    htnn_net *net = image_net(c, 2, 2);
    htnn_batchnorm_options bo = HTNN_BATCHNORM_OPTIONS_INIT;
    htnn_layer *bn;
    assert_int_equal(htnn_net_add_batchnorm(net, &bo, &bn), HTNN_OK);
    float x[6 * 12];
    fill(x, m * in, 2.0f);
    for (size_t i = 0; i < m * in; i++)
        x[i] += (float)(i % c); /* per-channel offsets */
    assert_int_equal(net_reserve(net, m), HTNN_OK);
    net_forward(net, x, m);
    const float *z = net->scratch[0].z;
    for (size_t ch = 0; ch < c; ch++) {
        double mean = 0, var = 0, zm = 0, zv = 0, r = (double)(m * hw);
        for (size_t i = ch; i < m * in; i += c)
            mean += x[i], zm += z[i];
        mean /= r, zm /= r;
        for (size_t i = ch; i < m * in; i += c)
            var += (x[i] - mean) * (x[i] - mean), zv += (z[i] - zm) * (z[i] - zm);
        var /= r, zv /= r;
        assert_true(fabs(zm) < 1e-5);                        /* beta = 0 */
        assert_true(fabs(zv - var / (var + 1e-5)) < 1e-4);   /* gamma = 1 */
        assert_true(fabs(bn->run_mean[ch] - 0.1 * mean) < 1e-5);
        assert_true(fabs(bn->run_var[ch] - (0.9 + 0.1 * var * r / (r - 1))) < 1e-5);
    }
    /* the running statistics through the API, and their checks */
    float rm[3], rv[3];
    assert_int_equal(htnn_layer_get_running_stats(bn, rm, rv, 3), HTNN_OK);
    assert_memory_equal(rm, bn->run_mean, sizeof rm);
    assert_memory_equal(rv, bn->run_var, sizeof rv);
    assert_int_equal(htnn_layer_get_running_stats(bn, rm, rv, 2), HTNN_ESHAPE);
    rv[1] = -1.0f;
    assert_int_equal(htnn_layer_set_running_stats(bn, rm, rv, 3), HTNN_ENUMERIC);
    rv[1] = bn->run_var[1];
    assert_int_equal(htnn_layer_set_running_stats(bn, rm, rv, 3), HTNN_OK);
    /* eval: (x - running mean) / sqrt(running var + eps) * gamma + beta */
    float gamma[3] = {0.5f, 2.0f, -1.0f}, beta[3] = {0.1f, -0.2f, 0.3f}, out[6 * 12];
    assert_int_equal(htnn_layer_set_weights(bn, gamma, 3), HTNN_OK);
    assert_int_equal(htnn_layer_set_bias(bn, beta, 3), HTNN_OK);
    assert_int_equal(htnn_net_predict_logits(net, x, m, out), HTNN_OK);
    for (size_t i = 0; i < m * in; i++) {
        size_t ch = i % c;
        double want = (x[i] - bn->run_mean[ch]) / sqrt(bn->run_var[ch] + 1e-5) * gamma[ch] +
                      beta[ch];
        assert_true(fabs(out[i] - want) < 1e-5 * (1 + fabs(want)));
    }
    htnn_net_free(net);
}

/* Training-mode loss sum(coef * Z) of a lone batch-norm layer. */
static double bn_loss(htnn_net *net, const float *x, size_t m, const float *coef)
{
    net_forward(net, x, m);
    double sum = 0;
    for (size_t i = 0; i < m * net->layers[0]->out; i++)
        sum += (double)coef[i] * net->scratch[0].z[i];
    return sum;
}

static void test_batchnorm_gradients(void **state)
{
    (void)state;
    const size_t m = 4, c = 2, in = c * 3;
    htnn_net *net = image_net(c, 1, 3);
    htnn_batchnorm_options bo = HTNN_BATCHNORM_OPTIONS_INIT;
    htnn_layer *bn;
    assert_int_equal(htnn_net_add_batchnorm(net, &bo, &bn), HTNN_OK);
    float x[4 * 6], coef[4 * 6], g[4 * 6];
    fill(x, m * in, 1.5f);
    fill(coef, m * in, 1.0f);
    bn->w[0] = 1.3f, bn->w[1] = -0.7f, bn->b[0] = 0.2f, bn->b[1] = -0.4f;
    assert_int_equal(net_reserve(net, m), HTNN_OK);
    bn_loss(net, x, m, coef);
    layer_scratch *s = &net->scratch[0];
    memcpy(s->dz, coef, sizeof coef);
    layer_ops_of(bn)->param_grads(bn, x, s, m);
    layer_ops_of(bn)->input_grad(bn, s, m, g);
    float gw[2] = {bn->gw[0], bn->gw[1]}, gb[2] = {bn->gb[0], bn->gb[1]};
    const float h = 1e-2f;
    for (size_t i = 0; i < m * in; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double up = bn_loss(net, x, m, coef);
        x[i] = keep - h;
        double down = bn_loss(net, x, m, coef);
        x[i] = keep;
        double fd = (up - down) / (2 * h);
        if (fabs(fd - g[i]) > 2e-3 + 1e-2 * fabs(fd))
            fail_msg("dX[%zu]: %g vs finite difference %g", i, (double)g[i], fd);
    }
    for (size_t j = 0; j < c; j++) {
        float *params[2] = {&bn->w[j], &bn->b[j]}, grads[2] = {gw[j], gb[j]};
        for (int k = 0; k < 2; k++) {
            float keep = *params[k];
            *params[k] = keep + h;
            double up = bn_loss(net, x, m, coef);
            *params[k] = keep - h;
            double down = bn_loss(net, x, m, coef);
            *params[k] = keep;
            double fd = (up - down) / (2 * h);
            assert_true(fabs(fd - grads[k]) < 2e-3 + 1e-2 * fabs(fd));
        }
    }
    htnn_net_free(net);
}

/* A conv net with every new kind, binary conv weights and trained
 * running statistics survives save + load with identical logits. */
static htnn_net *small_convnet(int binary)
{
    htnn_net *net = image_net(1, 8, 8);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 4, co.binary_weights = binary;
    add_conv_block_and_output(net, &co, 3);
    return net;
}

static void train_some(htnn_net *net, const float *x, const int32_t *y, size_t m)
{
    htnn_optimizer *opt;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(htnn_net_train_batch(net, opt, NULL, x, y, m, NULL), HTNN_OK);
    htnn_optimizer_free(opt);
}

static void test_convnet_save_load(void **state)
{
    (void)state;
    const size_t m = 10;
    float x[10 * 64], a[10 * 3], b[10 * 3];
    int32_t y[10];
    fill(x, sizeof x / sizeof x[0], 1.0f);
    for (size_t i = 0; i < m; i++)
        y[i] = (int32_t)(i % 3);
    for (int binary = 0; binary <= 1; binary++) {
        htnn_net *net = small_convnet(binary), *loaded = NULL;
        train_some(net, x, y, m);
        void *buf;
        size_t size;
        assert_int_equal(htnn_net_save_buffer(net, &buf, &size), HTNN_OK);
        assert_int_equal(((unsigned char *)buf)[8], 2); /* format version 2 */
        assert_int_equal(htnn_net_load_buffer(buf, size, &loaded), HTNN_OK);
        assert_int_equal(htnn_net_layer_count(loaded), 4);
        for (size_t d = 0; d < 4; d++) {
            htnn_layer_info i1 = HTNN_LAYER_INFO_INIT, i2 = HTNN_LAYER_INFO_INIT;
            assert_int_equal(htnn_layer_get_info(htnn_net_layer(net, d), &i1), HTNN_OK);
            assert_int_equal(htnn_layer_get_info(htnn_net_layer(loaded, d), &i2), HTNN_OK);
            assert_memory_equal(&i1, &i2, sizeof i1);
        }
        const htnn_layer *bn1 = net->layers[2], *bn2 = loaded->layers[2];
        assert_memory_equal(bn1->run_mean, bn2->run_mean, 4 * sizeof(float));
        assert_memory_equal(bn1->run_var, bn2->run_var, 4 * sizeof(float));
        assert_int_equal(htnn_net_predict_logits(net, x, m, a), HTNN_OK);
        assert_int_equal(htnn_net_predict_logits(loaded, x, m, b), HTNN_OK);
        assert_memory_equal(a, b, sizeof a);
        /* a truncated file is refused, whatever the cut */
        for (size_t cut = 0; cut < size; cut += 7) {
            htnn_net *bad = NULL;
            assert_int_not_equal(htnn_net_load_buffer(buf, cut, &bad), HTNN_OK);
            assert_null(bad);
        }
        htnn_free(buf);
        htnn_net_free(net);
        htnn_net_free(loaded);
    }
}

/* A net of dense layers only still writes format version 1. */
static void test_dense_files_stay_version_1(void **state)
{
    (void)state;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(5, NULL, &net), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 2;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    void *buf;
    size_t size;
    assert_int_equal(htnn_net_save_buffer(net, &buf, &size), HTNN_OK);
    assert_int_equal(((unsigned char *)buf)[8], 1);
    htnn_free(buf);
    htnn_net_free(net);
}

/* A declared input shape survives save + load even when the first layer
 * is dense (the conv records carry theirs anyway); undeclared, the input
 * reads as width x 1 x 1. */
static void test_input_shape_saved(void **state)
{
    (void)state;
    htnn_net *net = image_net(3, 2, 4), *loaded = NULL;
    size_t c, h, w;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 2;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    void *buf;
    size_t size;
    assert_int_equal(htnn_net_save_buffer(net, &buf, &size), HTNN_OK);
    assert_int_equal(htnn_net_load_buffer(buf, size, &loaded), HTNN_OK);
    assert_int_equal(htnn_net_get_input_shape(loaded, &c, &h, &w), HTNN_OK);
    assert_true(c == 3 && h == 2 && w == 4);
    htnn_free(buf);
    htnn_net_free(loaded);
    htnn_net_free(net);
    assert_int_equal(htnn_net_create(24, NULL, &net), HTNN_OK);
    assert_int_equal(htnn_net_get_input_shape(net, &c, NULL, &w), HTNN_OK);
    assert_true(c == 24 && w == 1);
    assert_int_equal(htnn_net_get_input_shape(NULL, &c, &h, &w), HTNN_EINVAL);
    htnn_net_free(net);
}

static void expect_error(htnn_status got, htnn_status want, const char *needle)
{
    if (got != want)
        fail_msg("status %d (%s), wanted %d", got, htnn_last_error(), want);
    if (strstr(htnn_last_error(), needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", htnn_last_error(), needle);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(48, NULL, &net), HTNN_OK);
    expect_error(htnn_net_set_input_shape(net, 3, 4, 5), HTNN_ESHAPE, "input width 48");
    expect_error(htnn_net_set_input_shape(net, 0, 4, 4), HTNN_ESHAPE, "input width");
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 2;
    /* without a shape the input is 48 x 1 x 1: a 3x3 kernel cannot fit */
    co.padding = 0;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_ESHAPE, "larger than");
    assert_int_equal(htnn_net_set_input_shape(net, 3, 4, 4), HTNN_OK);
    co.kernel_h = co.kernel_w = 5;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_ESHAPE, "larger than its 4x4");
    co.kernel_h = co.kernel_w = 3, co.channels = 0;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_EINVAL, "0 channels");
    co.channels = 2, co.padding = 3;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_EINVAL, "padding");
    co.padding = 1, co.stride = 0;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_EINVAL, "stride");
    co.stride = 1, co.activation = 99;
    expect_error(htnn_net_add_conv2d(net, &co, NULL), HTNN_EINVAL, "activation");
    co.activation = HTNN_ACT_SIGN;
    expect_error(htnn_net_add_conv2d(NULL, &co, NULL), HTNN_EINVAL, "NULL");
    htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
    po.size = 5;
    expect_error(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_ESHAPE, "larger than");
    htnn_batchnorm_options bo = HTNN_BATCHNORM_OPTIONS_INIT;
    bo.momentum = 0.0f;
    expect_error(htnn_net_add_batchnorm(net, &bo, NULL), HTNN_EINVAL, "momentum");
    assert_int_equal(htnn_net_layer_count(net), 0); /* nothing half-added */
    assert_int_equal(htnn_net_add_conv2d(net, &co, NULL), HTNN_OK);
    expect_error(htnn_net_set_input_shape(net, 3, 4, 4), HTNN_ESTATE, "already has layers");
    /* weights of the wrong count (a flatten width that does not match) */
    float w[10];
    expect_error(htnn_layer_set_weights(htnn_net_layer(net, 0), w, 10), HTNN_ESHAPE,
                 "has 54 values");
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 2;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    htnn_packed *p = NULL;
    expect_error(htnn_net_pack(net, &p), HTNN_EUNSUPPORTED, "not dense");
    float stats[2];
    expect_error(htnn_layer_get_running_stats(htnn_net_layer(net, 0), stats, stats, 2),
                 HTNN_ESTATE, "not a batch-norm layer");
    htnn_net_free(net);
}

/* 8x8 images: a vertical bar is class 1, a horizontal one class 0. */
static void make_bars(float *x, int32_t *y, size_t n)
{
    memset(x, 0, n * 64 * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        size_t pos = (i / 2) % 6 + 1;
        y[i] = (int32_t)(i % 2);
        for (size_t k = 1; k < 7; k++)
            x[i * 64 + (y[i] ? k * 8 + pos : pos * 8 + k)] = 0.5f + 0.5f * (float)((i * 7) % 5) / 4;
    }
}

/* Adds a 2-unit linear output to `net`, trains it on the bars (Adam 0.01,
 * 15 epochs of batches of 20) and returns its accuracy on them. */
static double fit_bars(htnn_net *net, const float *x, const int32_t *y, size_t n)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 2, d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    oo.learning_rate = 0.01f;
    htnn_optimizer *opt;
    assert_int_equal(htnn_optimizer_create(&oo, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 15, fo.batch_size = 20;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, n, &fo, NULL), HTNN_OK);
    double acc;
    assert_int_equal(htnn_net_evaluate(net, x, y, n, NULL, &acc), HTNN_OK);
    htnn_optimizer_free(opt);
    return acc;
}

/* Every activation on conv, pool and batch-norm layers trains with the
 * loss-driven heuristic (targets on whichever of them are hard): conv(act)
 * -> pool, conv -> pool(act), conv -> pool -> bn(act), then a dense output.
 * (Batch norm right after +-1 units is left out on purpose: a channel that
 * is almost constant gets a huge 1/std, so tiny batches of this toy problem
 * teach the net batch-specific statistics; batch norm belongs before the
 * threshold, as in the benchmarked convnet.) */
static void test_every_activation_learns(void **state)
{
    (void)state;
    static const int acts[] = {HTNN_ACT_SIGN, HTNN_ACT_STEP, HTNN_ACT_QRELU, HTNN_ACT_RELU,
                               HTNN_ACT_IDENTITY};
    enum { N = 120 };
    static float x[N * 64];
    int32_t y[N];
    int bad = 0;
    make_bars(x, y, N);
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (int where = 0; where < 3; where++) { /* the act on conv, on pool, on bn */
            htnn_net *net = image_net(1, 8, 8);
            htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
            htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
            htnn_batchnorm_options bo = HTNN_BATCHNORM_OPTIONS_INIT;
            co.channels = 4;
            co.activation = where == 0 ? acts[a] : HTNN_ACT_IDENTITY;
            po.activation = where == 1 ? acts[a] : HTNN_ACT_IDENTITY;
            bo.activation = where == 2 ? acts[a] : HTNN_ACT_IDENTITY;
            assert_int_equal(htnn_net_add_conv2d(net, &co, NULL), HTNN_OK);
            assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
            if (where == 2)
                assert_int_equal(htnn_net_add_batchnorm(net, &bo, NULL), HTNN_OK);
            double acc = fit_bars(net, x, y, N);
            if (acc < 0.9) {
                print_error("activation %d on layer %d: accuracy %.3f\n", acts[a], where, acc);
                bad++;
            }
            htnn_net_free(net);
        }
    assert_int_equal(bad, 0);
}

/* With threads = 2 the conv and pool work runs on the net's own worker
 * thread: the same training twice gives the same bits, it learns, and its
 * conv weights stay close to the single-threaded run's (the weight
 * gradient is summed in two partials, so not bit for bit). */
static void train_threads(int threads, float *w, size_t nw, double *acc)
{
    enum { N = 120 };
    static float x[N * 64];
    int32_t y[N];
    make_bars(x, y, N);
    htnn_net *net = image_net(1, 8, 8);
    assert_int_equal(htnn_net_set_threads(net, threads), HTNN_OK);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 4;
    assert_int_equal(htnn_net_add_conv2d(net, &co, NULL), HTNN_OK);
    htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
    po.activation = HTNN_ACT_SIGN;
    assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
    *acc = fit_bars(net, x, y, N);
    assert_int_equal(htnn_layer_get_weights(htnn_net_layer(net, 0), w, nw), HTNN_OK);
    assert_true((net->workers != NULL) == (threads > 1));
    htnn_net_free(net);
}

static void test_worker_threads(void **state)
{
    (void)state;
    float w1[36], w2a[36], w2b[36];
    double a1, a2a, a2b;
    train_threads(1, w1, 36, &a1);
    train_threads(2, w2a, 36, &a2a);
    train_threads(2, w2b, 36, &a2b);
    assert_memory_equal(w2a, w2b, sizeof w2a);
    print_message("accuracy: 1 thread %.3f, 2 threads %.3f\n", a1, a2a);
    assert_true(a2a == a2b && a2a > 0.9 && a1 > 0.9);
    for (size_t i = 0; i < 36; i++)
        assert_true(fabsf(w1[i] - w2a[i]) < 0.05f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_matches_direct),
        cmocka_unit_test(test_conv_pool_gradients),
        cmocka_unit_test(test_maxpool_routing),
        cmocka_unit_test(test_batchnorm_train_vs_eval),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_convnet_save_load),
        cmocka_unit_test(test_dense_files_stay_version_1),
        cmocka_unit_test(test_input_shape_saved),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_every_activation_learns),
        cmocka_unit_test(test_worker_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
