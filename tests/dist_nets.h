/* Shared by the data-parallel tests (test_reduce.c: ranks as threads with
 * an in-memory reducer; test_mpi.c: ranks as MPI processes): the nets,
 * the synthetic data and reading a net's parameters.  Every function
 * returns 0 on success so that both a CMocka test and an MPI program can
 * check it.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_TESTS_DIST_NETS_H
#define HTNN_TESTS_DIST_NETS_H

#include <htnn/htnn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { DIST_MLP = 0, DIST_CONV_BN = 1, DIST_WIDE_MLP = 2 };

/* Examples and classes of the synthetic sets: 201 rows, so that with
 * batch 20 the last batch has one row and one of two ranks none. */
#define DIST_COUNT 201
#define DIST_BATCH 20
#define DIST_CLASSES 3

static size_t dist_width(int kind) { return kind == DIST_CONV_BN ? 64 : 20; }

/* Max |difference| allowed between the data-parallel and the single-process
 * weights after the 3-epoch dist_fit (33 Adam steps): float sums in
 * another order.  The narrow nets measured 1.5e-8 to 6e-8
 * (doc/distributed.md, section 5); a sign unit flipping on a near-zero
 * input, or Adam's first steps on a gradient that is 0 up to rounding,
 * could make it larger, hence the margin.  The wide
 * MLP's 512-term sums round differently when the rows (ranks) or the units
 * (threads) are split otherwise, and Adam's division by the gradient's
 * magnitude carries that further: 5e-6 to 1.3e-5 after its 33 steps
 * (27 November 2026, with 1 and 2 threads per rank), the losses within
 * 1e-6 and the accuracies equal. */
static double dist_tolerance(int kind) { return kind == DIST_WIDE_MLP ? 1e-4 : 1e-5; }

/* Deterministic inputs in [0, 1) and labels from a fixed linear rule, so
 * that training has something to learn. */
static void dist_data(int kind, float *x, int32_t *y)
{
    size_t w = dist_width(kind);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < DIST_COUNT; i++) {
        float score[DIST_CLASSES] = {0};
        for (size_t j = 0; j < w; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            float v = (float)(s >> 40) / (float)(1u << 24);
            x[i * w + j] = v;
            score[j % DIST_CLASSES] += v * (float)((j * 7) % 5);
        }
        int32_t best = 0;
        for (int32_t c = 1; c < DIST_CLASSES; c++)
            best = score[c] > score[best] ? c : best;
        y[i] = best;
    }
}

/* MLP 20-16-16-3 with sign hidden units, or conv 3x3x4 -> batch norm
 * (sign) -> max-pool 2 -> dense 3 on 1x8x8 inputs, or the MLP 20-512-512-3
 * (wide enough for a net's threads to split its layers: lib/train_mt.c). */
static int dist_net(int kind, int targets_after_update, htnn_net **out)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = 7;
    no.threads = 1;
    no.targets_after_update = targets_after_update;
    htnn_net *net;
    if (htnn_net_create(dist_width(kind), &no, &net) != HTNN_OK)
        return -1;
    int bad = 0;
    if (kind != DIST_CONV_BN) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = kind == DIST_WIDE_MLP ? 512 : 16;
        bad |= htnn_net_add_dense(net, &d, NULL) != HTNN_OK;
        bad |= htnn_net_add_dense(net, &d, NULL) != HTNN_OK;
    } else {
        htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
        htnn_batchnorm_options b = HTNN_BATCHNORM_OPTIONS_INIT;
        htnn_maxpool2d_options p = HTNN_MAXPOOL2D_OPTIONS_INIT;
        c.channels = 4;
        c.bias = 0;  /* redundant before batch norm: its gradient is 0 up to rounding */
        b.activation = HTNN_ACT_SIGN;
        bad |= htnn_net_set_input_shape(net, 1, 8, 8) != HTNN_OK;
        bad |= htnn_net_add_conv2d(net, &c, NULL) != HTNN_OK;
        bad |= htnn_net_add_batchnorm(net, &b, NULL) != HTNN_OK;
        bad |= htnn_net_add_maxpool2d(net, &p, NULL) != HTNN_OK;
    }
    htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
    o.units = DIST_CLASSES;
    o.activation = HTNN_ACT_IDENTITY;
    bad |= htnn_net_add_dense(net, &o, NULL) != HTNN_OK;
    if (bad) {
        htnn_net_free(net);
        return -1;
    }
    *out = net;
    return 0;
}

/* Every weight and bias of the net, layer by layer, into p (which holds
 * htnn_net_parameter_count floats). */
static int dist_params(htnn_net *net, float *p)
{
    for (size_t d = 0; d < htnn_net_layer_count(net); d++) {
        htnn_layer *l = htnn_net_layer(net, d);
        htnn_layer_info info = HTNN_LAYER_INFO_INIT;
        if (htnn_layer_get_info(l, &info) != HTNN_OK)
            return -1;
        if (info.weight_count) {
            if (htnn_layer_get_weights(l, p, info.weight_count) != HTNN_OK)
                return -1;
            p += info.weight_count;
        }
        if (info.bias && info.bias_count) {
            if (htnn_layer_get_bias(l, p, info.bias_count) != HTNN_OK)
                return -1;
            p += info.bias_count;
        }
    }
    return 0;
}

/* max |a - b| over n values. */
static double dist_max_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* The fit every distributed test runs: 3 epochs of DIST_BATCH, on the
 * shard [first, ...) of `total` examples (total 0: unsharded). */
static htnn_fit_options dist_fit_options(size_t first, size_t total)
{
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch_size = DIST_BATCH;
    fo.shard_first = first;
    fo.shard_total = total;
    return fo;
}

/* The fit every rank and the single-process reference run: 3 epochs of
 * batch DIST_BATCH, shuffled, Adam, on examples [first, first + n) of the
 * DIST_COUNT in x and y as the fit's shard (n == 0: the whole set,
 * unsharded); then, alone (without the reducer), one more batch of the
 * first 20 rows with the same optimizer, which depends on the whole
 * optimizer state being on every rank after the fit. */
static htnn_status dist_fit_shard(htnn_net *net, const float *x, const int32_t *y,
                                  size_t first, size_t n, htnn_fit_result *res)
{
    htnn_optimizer *opt;
    htnn_status st = htnn_optimizer_create(NULL, &opt);
    if (st != HTNN_OK)
        return st;
    htnn_fit_options fo = dist_fit_options(first, n ? DIST_COUNT : 0);
    size_t w = htnn_net_input_width(net);
    st = htnn_net_fit(net, opt, NULL, x + first * w, y + first, n ? n : DIST_COUNT, &fo, res);
    if (st == HTNN_OK)
        st = htnn_net_set_reducer(net, NULL);
    if (st == HTNN_OK)
        st = htnn_net_train_batch(net, opt, NULL, x, y, 20, NULL);
    htnn_optimizer_free(opt);
    return st;
}

/* dist_fit_shard on the whole set. */
static htnn_status dist_fit(htnn_net *net, const float *x, const int32_t *y,
                            htnn_fit_result *res)
{
    return dist_fit_shard(net, x, y, 0, 0, res);
}

#endif
