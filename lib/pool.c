/* 2-d max-pool on NHWC feature maps.  The forward pass records the arg-max
 * input of every output, so the gradient (and with it the targets' loss)
 * reaches only the input that won its window.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "activations.h"
#include "layers.h"
#include "simd.h"

/* Folds one window position (c channels at x[at..]) into the running
 * maxima; branch-free so it vectorises.  Strict '>': ties keep the first. */
HTNN_CLONES
static void fold_max(const float *x, size_t at, size_t c, float *zo, int32_t *ao)
{
    for (size_t ch = 0; ch < c; ch++) {
        float v = x[at + ch];
        int gt = v > zo[ch];
        zo[ch] = gt ? v : zo[ch];
        ao[ch] = gt ? (int32_t)(at + ch) : ao[ch];
    }
}

/* One example: z (out) = window maxima of x (in), arg = their positions. */
static void pool_example(const htnn_layer *l, const float *x, float *z, int32_t *arg)
{
    size_t c = l->shape_in.c, W = l->shape_in.w;
    size_t oh = l->shape_out.h, ow = l->shape_out.w;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
            float *zo = z + (oy * ow + ox) * c;
            int32_t *ao = arg + (oy * ow + ox) * c;
            size_t first = (oy * l->stride * W + ox * l->stride) * c;
            memcpy(zo, x + first, c * sizeof *zo);
            for (size_t ch = 0; ch < c; ch++)
                ao[ch] = (int32_t)(first + ch);
            for (size_t ky = 0; ky < l->kh; ky++)
                for (size_t kx = 0; kx < l->kw; kx++)
                    fold_max(x, ((oy * l->stride + ky) * W + ox * l->stride + kx) * c, c, zo,
                             ao);
        }
}

static void pool_forward(htnn_layer *l, const float *x, size_t m, layer_scratch *s,
                         int training)
{
    (void)training;
    for (size_t n = 0; n < m; n++)
        pool_example(l, x + n * l->in, s->z + n * l->out, s->arg + n * l->out);
    activation_forward(l->activation, l->qrelu_bits, s->z, NULL, s->h, m, l->out);
}

static void pool_param_grads(htnn_layer *l, const float *x, const layer_scratch *s, size_t m)
{
    (void)l, (void)x, (void)s, (void)m; /* no parameters */
}

static void pool_input_grad(const htnn_layer *l, const layer_scratch *s, size_t m, float *g)
{
    memset(g, 0, m * l->in * sizeof *g);
    for (size_t n = 0; n < m; n++) {
        float *gn = g + n * l->in;
        const float *dz = s->dz + n * l->out;
        const int32_t *arg = s->arg + n * l->out;
        for (size_t j = 0; j < l->out; j++)
            gn[arg[j]] += dz[j];
    }
}

const layer_ops pool_ops = {pool_forward, pool_param_grads, pool_input_grad};
