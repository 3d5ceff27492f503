/* Dense layer: Z = X W^T + b.  Every matrix product is one cblas_sgemm on
 * batch-major, row-major arrays.
 * SPDX-License-Identifier: MIT */
#include "dense.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "activations.h"
#include "layers.h"
#include "simd.h"

void dense_init(htnn_layer *layer, rng *r)
{
    float bound = 1.0f / sqrtf((float)layer->wcols);
    for (size_t i = 0; i < layer->n_w; i++)
        layer->w[i] = (2.0f * rng_uniform(r) - 1.0f) * bound;
    for (size_t j = 0; j < layer->n_b; j++)
        layer->b[j] = (2.0f * rng_uniform(r) - 1.0f) * bound;
    layer->bin_fresh = 0;
}

void dense_binary_scales(int mode, const float *w, size_t in, size_t out,
                         float *alpha)
{
    for (size_t j = 0; j < out; j++) {
        if (mode != HTNN_BINARY_SCALED) {
            alpha[j] = 1.0f;
            continue;
        }
        const float *row = w + j * in;
        float sum = 0.0f;
        for (size_t i = 0; i < in; i++)
            sum += fabsf(row[i]);
        alpha[j] = sum / (float)in;
    }
}

void dense_binarize_rows(htnn_layer *layer, size_t first, size_t n)
{
    if (!layer->binary_weights)
        return;
    size_t in = layer->wcols;
    dense_binary_scales(layer->binary_weights, layer->w + first * in, in, n,
                        layer->alpha + first);
    for (size_t j = first; j < first + n; j++) {
        const float *w = layer->w + j * in;
        float *s = layer->wsign + j * in, *q = layer->wq + j * in, a = layer->alpha[j];
        for (size_t i = 0; i < in; i++) {
            s[i] = w[i] > 0.0f ? 1.0f : -1.0f;
            q[i] = w[i] > 0.0f ? a : -a;
        }
    }
}

void dense_binarize(htnn_layer *layer)
{
    layer->bin_fresh = 1;
    dense_binarize_rows(layer, 0, layer->wrows);
}

void dense_clip_latent_rows(htnn_layer *layer, size_t first, size_t n)
{
    size_t in = layer->wcols;
    float *w = layer->w + first * in;
    if (!layer->binary_weights)
        return;
    for (size_t i = 0; i < n * in; i++)
        w[i] = w[i] > 1.0f ? 1.0f : (w[i] < -1.0f ? -1.0f : w[i]);
}

void dense_clip_latent(htnn_layer *layer)
{
    dense_clip_latent_rows(layer, 0, layer->wrows);
}

/* z[i][j] *= alpha[j]. */
HTNN_CLONES
static void scale_columns(float *z, const float *alpha, size_t m, size_t n)
{
    for (size_t i = 0; i < m; i++) {
        float *row = z + i * n;
        for (size_t j = 0; j < n; j++)
            row[j] *= alpha[j];
    }
}

void dense_scale_columns(float *z, const float *alpha, size_t m, size_t n)
{
    scale_columns(z, alpha, m, n);
}

void dense_forward(const htnn_layer *layer, const float *x, size_t m, float *z,
                   float *h)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m,
                (int)layer->out, (int)layer->in, 1.0f, x, (int)layer->in,
                layer->binary_weights ? layer->wsign : layer->w, (int)layer->in,
                0.0f, z, (int)layer->out);
    if (layer->binary_weights == HTNN_BINARY_SCALED)
        scale_columns(z, layer->alpha, m, layer->out);
    activation_forward(layer->activation, layer->qrelu_bits, z,
                       layer->has_bias ? layer->b : NULL, h, m, layer->out);
}

/* sums[j] += sum over rows of a[i][j]; row-wise accumulation keeps the
 * inner loop contiguous, so it vectorises. */
HTNN_CLONES
static void column_sums(const float *a, size_t m, size_t n, float *sums)
{
    for (size_t i = 0; i < m; i++) {
        const float *row = a + i * n;
        for (size_t j = 0; j < n; j++)
            sums[j] += row[j];
    }
}

void dense_column_sums(const float *a, size_t m, size_t n, float *sums)
{
    column_sums(a, m, n, sums);
}

void dense_unit_grads(htnn_layer *layer, const float *x, const float *dz, size_t m,
                      size_t first, size_t end)
{
    size_t out = layer->out, in = layer->in;
    if (end > first)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(end - first), (int)in,
                    (int)m, 1.0f, dz + first, (int)out, x, (int)in, 0.0f,
                    layer->gw + first * in, (int)in);
    memset(layer->gb, 0, out * sizeof *layer->gb);
    if (layer->has_bias)
        column_sums(dz, m, out, layer->gb);
}

void dense_param_grads(htnn_layer *layer, const float *x, const float *dz,
                       size_t m)
{
    dense_unit_grads(layer, x, dz, m, 0, layer->out);
}

void dense_input_grad(const htnn_layer *layer, const float *dz, size_t m,
                      float *g)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m,
                (int)layer->in, (int)layer->out, 1.0f, dz, (int)layer->out,
                layer_weights(layer), (int)layer->in, 0.0f, g, (int)layer->in);
}

static void dense_ops_forward(htnn_layer *layer, const float *x, size_t m, layer_scratch *s,
                              int training)
{
    (void)training;
    dense_forward(layer, x, m, s->z, s->h);
}

static void dense_ops_param_grads(htnn_layer *layer, const float *x, const layer_scratch *s,
                                  size_t m)
{
    dense_param_grads(layer, x, s->dz, m);
}

static void dense_ops_input_grad(const htnn_layer *layer, const layer_scratch *s, size_t m,
                                 float *g)
{
    dense_input_grad(layer, s->dz, m, g);
}

const layer_ops dense_ops = {dense_ops_forward, dense_ops_param_grads, dense_ops_input_grad};
