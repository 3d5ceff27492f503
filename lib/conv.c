/* 2-d convolution on NHWC feature maps: im2col, then one cblas_sgemm per
 * chunk of examples.  The im2col matrix of a chunk is (S*P) x K with
 * P = out_h * out_w output positions per example and K = kh * kw * in_c;
 * in NHWC the output of the chunk, (S*P) x out_c, is exactly the chunk's
 * rows of Z, so no transposes are needed in either direction.
 * SPDX-License-Identifier: MIT */
#include <cblas.h>
#include <string.h>

#include "activations.h"
#include "dense.h"
#include "layers.h"
#include "workers.h"

/* Upper bound of the shared workspace: big enough for a wide sgemm, small
 * enough to stay near the caches. */
#define CONV_WS_MAX ((size_t)1 << 21)

size_t window_out(size_t in, size_t window, size_t stride, size_t pad)
{
    if (window == 0 || stride == 0 || in + 2 * pad < window)
        return 0;
    return (in + 2 * pad - window) / stride + 1;
}

static size_t positions(const htnn_layer *l) { return l->shape_out.h * l->shape_out.w; }

size_t conv_workspace(const htnn_layer *l, size_t rows)
{
    if (l->kind != HTNN_LAYER_CONV2D)
        return 0;
    size_t per = positions(l) * l->wcols, s = CONV_WS_MAX / per;
    s = s < 1 ? 1 : (s > rows ? rows : s);
    return s * per;
}

/* Kernel row ky of output position (oy, ox): of its kw * in_c floats in
 * the im2col row, `len` from offset `first` on lie inside the input, at
 * input offset `at`; the rest is zero padding (len 0: all of it). */
typedef struct window_row {
    size_t first, len, at;
} window_row;

static window_row window_row_at(const htnn_layer *l, size_t oy, size_t ox, size_t ky)
{
    size_t c = l->shape_in.c, H = l->shape_in.h, W = l->shape_in.w;
    long iy = (long)(oy * l->stride + ky) - (long)l->pad;
    long ix0 = (long)(ox * l->stride) - (long)l->pad;
    long lo = ix0 < 0 ? -ix0 : 0;
    long hi = ix0 + (long)l->kw > (long)W ? (long)W - ix0 : (long)l->kw;
    window_row r = {0, 0, 0};
    if (iy < 0 || iy >= (long)H || hi <= lo)
        return r;
    r.first = (size_t)lo * c;
    r.len = (size_t)(hi - lo) * c;
    r.at = ((size_t)iy * W + (size_t)(ix0 + lo)) * c;
    return r;
}

/* One example's im2col rows: for each output position, the kernel window
 * as kh runs of kw * in_c floats (zeros where it overhangs the input). */
static void im2col(const htnn_layer *l, const float *x, float *col)
{
    size_t run = l->kw * l->shape_in.c, ow = l->shape_out.w;
    for (size_t oy = 0; oy < l->shape_out.h; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
            float *row = col + (oy * ow + ox) * l->wcols;
            for (size_t ky = 0; ky < l->kh; ky++, row += run) {
                window_row r = window_row_at(l, oy, ox, ky);
                memset(row, 0, r.first * sizeof *row);
                memcpy(row + r.first, x + r.at, r.len * sizeof *row);
                memset(row + r.first + r.len, 0, (run - r.first - r.len) * sizeof *row);
            }
        }
}

/* The adjoint of im2col: adds each window row back into g (one example). */
static void col2im(const htnn_layer *l, const float *col, float *g)
{
    size_t run = l->kw * l->shape_in.c, ow = l->shape_out.w;
    for (size_t oy = 0; oy < l->shape_out.h; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
            const float *row = col + (oy * ow + ox) * l->wcols;
            for (size_t ky = 0; ky < l->kh; ky++, row += run) {
                window_row r = window_row_at(l, oy, ox, ky);
                for (size_t i = 0; i < r.len; i++)
                    g[r.at + i] += row[r.first + i];
            }
        }
}

/* A conv pass over m examples, cut into chunks of S examples; chunk c
 * runs on part c % parts, each part with its own workspace.  There are at
 * least `parts` chunks whenever m allows, so every thread gets work. */
typedef struct conv_job {
    htnn_layer *l;
    const float *x;          /* input rows (forward, weight gradients) */
    const layer_scratch *s;
    float *out;              /* g for the input gradient */
    size_t m, S;
} conv_job;

static void job_init(conv_job *j, htnn_layer *l, const float *x, const layer_scratch *s,
                     float *out, size_t m)
{
    size_t per = positions(l) * l->wcols, cap = l->net->conv_ws_size / per;
    size_t parts = workers_parts(l->net->workers), even = (m + parts - 1) / parts;
    *j = (conv_job){l, x, s, out, m, cap < even ? cap : even};
    j->S = j->S ? j->S : 1;
}

static float *part_ws(const conv_job *j, size_t part)
{
    return j->l->net->conv_ws + part * j->l->net->conv_ws_size;
}

/* im2col of examples [n0, n0 + k) into `ws`. */
static void chunk_cols(const htnn_layer *l, const float *x, size_t n0, size_t k, float *ws)
{
    for (size_t i = 0; i < k; i++)
        im2col(l, x + (n0 + i) * l->in, ws + i * positions(l) * l->wcols);
}

static void forward_part(void *arg, size_t part, size_t parts)
{
    const conv_job *j = arg;
    htnn_layer *l = j->l;
    size_t P = positions(l), oc = l->wrows;
    float *ws = part_ws(j, part), *z = j->s->z, *h = j->s->h;
    for (size_t n0 = part * j->S; n0 < j->m; n0 += parts * j->S) {
        size_t k = j->m - n0 < j->S ? j->m - n0 : j->S;
        chunk_cols(l, j->x, n0, k, ws);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(k * P), (int)oc,
                    (int)l->wcols, 1.0f, ws, (int)l->wcols,
                    l->binary_weights ? l->wsign : l->w, (int)l->wcols, 0.0f,
                    z + n0 * l->out, (int)oc);
        if (l->binary_weights == HTNN_BINARY_SCALED)
            dense_scale_columns(z + n0 * l->out, l->alpha, k * P, oc);
        activation_forward(l->activation, l->qrelu_bits, z + n0 * l->out,
                           l->has_bias ? l->b : NULL, h + n0 * l->out, k * P, oc);
    }
}

/* The part's weight-gradient sum: gw itself for part 0, a partial else. */
static float *part_gw(const conv_job *j, size_t part)
{
    const htnn_net *net = j->l->net;
    return part == 0 ? j->l->gw : net->gw_parts + (part - 1) * net->gw_parts_size;
}

static void grads_part(void *arg, size_t part, size_t parts)
{
    const conv_job *j = arg;
    const htnn_layer *l = j->l;
    size_t P = positions(l), oc = l->wrows;
    float *ws = part_ws(j, part), *gw = part_gw(j, part);
    if (part * j->S >= j->m)
        memset(gw, 0, l->n_w * sizeof *gw);
    for (size_t n0 = part * j->S; n0 < j->m; n0 += parts * j->S) {
        size_t k = j->m - n0 < j->S ? j->m - n0 : j->S;
        chunk_cols(l, j->x, n0, k, ws);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)oc, (int)l->wcols,
                    (int)(k * P), 1.0f, j->s->dz + n0 * l->out, (int)oc, ws, (int)l->wcols,
                    n0 == part * j->S ? 0.0f : 1.0f, gw, (int)l->wcols);
    }
}

static void input_grad_part(void *arg, size_t part, size_t parts)
{
    const conv_job *j = arg;
    const htnn_layer *l = j->l;
    size_t P = positions(l), oc = l->wrows;
    float *ws = part_ws(j, part);
    for (size_t n0 = part * j->S; n0 < j->m; n0 += parts * j->S) {
        size_t k = j->m - n0 < j->S ? j->m - n0 : j->S;
        memset(j->out + n0 * l->in, 0, k * l->in * sizeof *j->out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(k * P), (int)l->wcols,
                    (int)oc, 1.0f, j->s->dz + n0 * l->out, (int)oc, layer_weights(l),
                    (int)l->wcols, 0.0f, ws, (int)l->wcols);
        for (size_t i = 0; i < k; i++)
            col2im(l, ws + i * P * l->wcols, j->out + (n0 + i) * l->in);
    }
}

/* Runs one pass on the net's workers, BLAS single-threaded meanwhile. */
static void run_parts(const htnn_layer *l, work_fn fn, conv_job *j)
{
    net_blas_alone(l->net, 1);
    workers_run(l->net->workers, fn, j);
    net_blas_alone(l->net, 0);
}

static void conv_forward(htnn_layer *l, const float *x, size_t m, layer_scratch *s,
                         int training)
{
    conv_job j;
    (void)training;
    job_init(&j, l, x, s, NULL, m);
    run_parts(l, forward_part, &j);
}

static void conv_param_grads(htnn_layer *l, const float *x, const layer_scratch *s, size_t m)
{
    conv_job j;
    size_t parts = workers_parts(l->net->workers);
    job_init(&j, l, x, s, NULL, m);
    run_parts(l, grads_part, &j);
    for (size_t p = 1; p < parts; p++) { /* fixed order: deterministic */
        const float *partial = part_gw(&j, p);
        for (size_t i = 0; i < l->n_w; i++)
            l->gw[i] += partial[i];
    }
    memset(l->gb, 0, l->wrows * sizeof *l->gb);
    if (l->has_bias)
        dense_column_sums(s->dz, m * positions(l), l->wrows, l->gb);
}

static void conv_input_grad(const htnn_layer *l, const layer_scratch *s, size_t m, float *g)
{
    conv_job j;
    job_init(&j, (htnn_layer *)l, NULL, s, g, m);
    run_parts(l, input_grad_part, &j);
}

const layer_ops conv_ops = {conv_forward, conv_param_grads, conv_input_grad};
