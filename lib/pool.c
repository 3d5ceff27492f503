/* 2-d max-pool on NHWC feature maps.  The forward pass records the arg-max
 * input of every output, so the gradient (and with it the targets' loss)
 * reaches only the input that won its window.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "activations.h"
#include "layers.h"
#include "simd.h"
#include "workers.h"

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

/* A pool pass over m examples, split by examples across the net's
 * workers (the work is memory-bound and per example independent). */
typedef struct pool_job {
    const htnn_layer *l;
    const float *x;
    layer_scratch *s;
    float *g;
    size_t m;
} pool_job;

static void part_range(const pool_job *j, size_t part, size_t parts, size_t *a, size_t *b)
{
    *a = j->m * part / parts;
    *b = j->m * (part + 1) / parts;
}

static void forward_part(void *arg, size_t part, size_t parts)
{
    const pool_job *j = arg;
    const htnn_layer *l = j->l;
    size_t a, b;
    part_range(j, part, parts, &a, &b);
    for (size_t n = a; n < b; n++)
        pool_example(l, j->x + n * l->in, j->s->z + n * l->out, j->s->arg + n * l->out);
    activation_forward(l->activation, l->qrelu_bits, j->s->z + a * l->out, NULL,
                       j->s->h + a * l->out, b - a, l->out);
}

static void pool_forward(htnn_layer *l, const float *x, size_t m, layer_scratch *s,
                         int training)
{
    pool_job j = {l, x, s, NULL, m};
    (void)training;
    workers_run(l->net->workers, forward_part, &j);
}

static void pool_param_grads(htnn_layer *l, const float *x, const layer_scratch *s, size_t m)
{
    (void)l, (void)x, (void)s, (void)m; /* no parameters */
}

static void input_grad_part(void *arg, size_t part, size_t parts)
{
    const pool_job *j = arg;
    const htnn_layer *l = j->l;
    size_t a, b;
    part_range(j, part, parts, &a, &b);
    memset(j->g + a * l->in, 0, (b - a) * l->in * sizeof *j->g);
    for (size_t n = a; n < b; n++) {
        float *gn = j->g + n * l->in;
        const float *dz = j->s->dz + n * l->out;
        const int32_t *arg_n = j->s->arg + n * l->out;
        for (size_t k = 0; k < l->out; k++)
            gn[arg_n[k]] += dz[k];
    }
}

static void pool_input_grad(const htnn_layer *l, const layer_scratch *s, size_t m, float *g)
{
    pool_job j = {l, NULL, (layer_scratch *)s, g, m};
    workers_run(l->net->workers, input_grad_part, &j);
}

const layer_ops pool_ops = {pool_forward, pool_param_grads, pool_input_grad};
