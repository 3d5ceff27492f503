/* Batch normalization over the channels of NHWC feature maps: the batch is
 * (m * h * w) rows of `channels` values, so every statistic is a column
 * reduction with contiguous inner loops.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <string.h>

#include "activations.h"
#include "dense.h"
#include "layers.h"
#include "simd.h"

/* Per-channel mean and biased variance of r rows x c, two passes. */
HTNN_CLONES
static void column_stats(const float *x, size_t r, size_t c, float *mean, float *var)
{
    memset(mean, 0, c * sizeof *mean);
    memset(var, 0, c * sizeof *var);
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++)
            mean[j] += x[i * c + j];
    for (size_t j = 0; j < c; j++)
        mean[j] /= (float)r;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            float d = x[i * c + j] - mean[j];
            var[j] += d * d;
        }
    for (size_t j = 0; j < c; j++)
        var[j] /= (float)r;
}

/* xhat = (x - mean) * invstd; z = gamma * xhat + beta (xhat may be NULL). */
HTNN_CLONES
static void normalise(const float *x, size_t r, size_t c, const float *mean,
                      const float *invstd, const float *gamma, const float *beta,
                      float *xhat, float *z)
{
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            float v = (x[i * c + j] - mean[j]) * invstd[j];
            if (xhat)
                xhat[i * c + j] = v;
            z[i * c + j] = gamma[j] * v + beta[j];
        }
}

static size_t bn_rows(const htnn_layer *l, size_t m) { return m * l->shape_in.h * l->shape_in.w; }

/* The rows the statistics are over: the global batch's when training
 * data-parallel (htnn_net_set_reducer), else the local m examples'. */
static size_t bn_stat_rows(const htnn_layer *l, size_t m)
{
    return bn_rows(l, net_distributed_step(l->net) ? l->net->step_rows : m);
}

/* column_stats over every rank's rows (R in total): the per-channel sums,
 * then the squared deviations from the global mean, are summed over the
 * ranks, so the two-pass formula stays as it is alone.  A failed reduction
 * is kept in the net's reduce_status (train_step checks it). */
static void column_stats_reduced(htnn_layer *l, const float *x, size_t r, size_t big_r,
                                 float *mean, float *var)
{
    size_t c = l->shape_in.c;
    memset(mean, 0, c * sizeof *mean);
    memset(var, 0, c * sizeof *var);
    dense_column_sums(x, r, c, mean);
    net_reduce_sum(l->net, mean, c);
    for (size_t j = 0; j < c; j++)
        mean[j] /= (float)big_r;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            float d = x[i * c + j] - mean[j];
            var[j] += d * d;
        }
    net_reduce_sum(l->net, var, c);
    for (size_t j = 0; j < c; j++)
        var[j] /= (float)big_r;
}

static void batchnorm_forward(htnn_layer *l, const float *x, size_t m, layer_scratch *s,
                              int training)
{
    size_t c = l->shape_in.c, r = bn_rows(l, m), big_r = bn_stat_rows(l, m);
    float *mean = l->bmean, *invstd = l->binvstd;
    if (training) {
        if (net_distributed_step(l->net))
            column_stats_reduced(l, x, r, big_r, mean, invstd);
        else
            column_stats(x, r, c, mean, invstd);
        float mom = l->bn_momentum;
        float unbias = big_r > 1 ? (float)big_r / (float)(big_r - 1) : 1.0f;
        for (size_t j = 0; j < c; j++) {
            l->run_mean[j] = (1.0f - mom) * l->run_mean[j] + mom * mean[j];
            l->run_var[j] = (1.0f - mom) * l->run_var[j] + mom * invstd[j] * unbias;
            invstd[j] = 1.0f / sqrtf(invstd[j] + l->bn_eps);
        }
        normalise(x, r, c, mean, invstd, l->w, l->b, s->aux, s->z);
    } else {
        /* inference: the running statistics, into the same per-channel
         * buffers (a later training batch recomputes them) */
        for (size_t j = 0; j < c; j++) {
            mean[j] = l->run_mean[j];
            invstd[j] = 1.0f / sqrtf(l->run_var[j] + l->bn_eps);
        }
        normalise(x, r, c, mean, invstd, l->w, l->b, NULL, s->z);
    }
    activation_forward(l->activation, l->qrelu_bits, s->z, NULL, s->h, m, l->out);
}

/* ggamma = sum dz * xhat, gbeta = sum dz, per channel. */
static void batchnorm_param_grads(htnn_layer *l, const float *x, const layer_scratch *s,
                                  size_t m)
{
    size_t c = l->shape_in.c, r = bn_rows(l, m);
    (void)x;
    memset(l->gw, 0, c * sizeof *l->gw);
    memset(l->gb, 0, c * sizeof *l->gb);
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++)
            l->gw[j] += s->dz[i * c + j] * s->aux[i * c + j];
    dense_column_sums(s->dz, r, c, l->gb);
}

/* dX = gamma * invstd / r * (r * dz - gbeta - xhat * ggamma); r is the
 * global batch's rows when training data-parallel (ggamma and gbeta are
 * then already summed over the ranks, train.c). */
static void batchnorm_input_grad(const htnn_layer *l, const layer_scratch *s, size_t m,
                                 float *g)
{
    size_t c = l->shape_in.c, r = bn_rows(l, m);
    float inv_r = 1.0f / (float)bn_stat_rows(l, m);
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            size_t k = i * c + j;
            float t = s->dz[k] - (l->gb[j] + s->aux[k] * l->gw[j]) * inv_r;
            g[k] = l->w[j] * l->binvstd[j] * t;
        }
}

const layer_ops batchnorm_ops = {batchnorm_forward, batchnorm_param_grads,
                                 batchnorm_input_grad};
