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
#include "simd.h"

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

/* Examples per chunk for a workspace of ws floats (at least 1). */
static size_t chunk_rows(const htnn_layer *l, size_t ws)
{
    size_t per = positions(l) * l->wcols, s = ws / per;
    return s ? s : 1;
}

size_t conv_workspace(const htnn_layer *l, size_t rows)
{
    if (l->kind != HTNN_LAYER_CONV2D)
        return 0;
    size_t per = positions(l) * l->wcols, s = CONV_WS_MAX / per;
    s = s < 1 ? 1 : (s > rows ? rows : s);
    return s * per;
}

/* One example's im2col rows: for each output position, the kernel window
 * as kh runs of kw * in_c floats (zeros where it overhangs the input). */
static void im2col(const htnn_layer *l, const float *x, float *col)
{
    size_t c = l->shape_in.c, H = l->shape_in.h, W = l->shape_in.w;
    size_t oh = l->shape_out.h, ow = l->shape_out.w, kw = l->kw, run = kw * c;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
            float *row = col + (oy * ow + ox) * l->wcols;
            long ix0 = (long)(ox * l->stride) - (long)l->pad;
            long lo = ix0 < 0 ? -ix0 : 0;
            long hi = ix0 + (long)kw > (long)W ? (long)W - ix0 : (long)kw;
            for (size_t ky = 0; ky < l->kh; ky++, row += run) {
                long iy = (long)(oy * l->stride + ky) - (long)l->pad;
                if (iy < 0 || iy >= (long)H || hi <= lo) {
                    memset(row, 0, run * sizeof *row);
                    continue;
                }
                memset(row, 0, (size_t)lo * c * sizeof *row);
                memcpy(row + (size_t)lo * c, x + ((size_t)iy * W + (size_t)(ix0 + lo)) * c,
                       (size_t)(hi - lo) * c * sizeof *row);
                memset(row + (size_t)hi * c, 0, (kw - (size_t)hi) * c * sizeof *row);
            }
        }
}

/* The adjoint of im2col: adds each window row back into g (one example). */
static void col2im(const htnn_layer *l, const float *col, float *g)
{
    size_t c = l->shape_in.c, H = l->shape_in.h, W = l->shape_in.w;
    size_t oh = l->shape_out.h, ow = l->shape_out.w, kw = l->kw, run = kw * c;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
            const float *row = col + (oy * ow + ox) * l->wcols;
            long ix0 = (long)(ox * l->stride) - (long)l->pad;
            long lo = ix0 < 0 ? -ix0 : 0;
            long hi = ix0 + (long)kw > (long)W ? (long)W - ix0 : (long)kw;
            for (size_t ky = 0; ky < l->kh; ky++, row += run) {
                long iy = (long)(oy * l->stride + ky) - (long)l->pad;
                if (iy < 0 || iy >= (long)H || hi <= lo)
                    continue;
                float *dst = g + ((size_t)iy * W + (size_t)(ix0 + lo)) * c;
                const float *src = row + (size_t)lo * c;
                for (size_t i = 0; i < (size_t)(hi - lo) * c; i++)
                    dst[i] += src[i];
            }
        }
}

/* im2col of examples [n0, n0 + s) into the workspace. */
static float *chunk_cols(const htnn_layer *l, const float *x, size_t n0, size_t s)
{
    float *ws = l->net->conv_ws;
    for (size_t i = 0; i < s; i++)
        im2col(l, x + (n0 + i) * l->in, ws + i * positions(l) * l->wcols);
    return ws;
}

static void conv_forward(htnn_layer *l, const float *x, size_t m, layer_scratch *s,
                         int training)
{
    size_t S = chunk_rows(l, l->net->conv_ws_size), P = positions(l), oc = l->wrows;
    (void)training;
    for (size_t n0 = 0; n0 < m; n0 += S) {
        size_t k = m - n0 < S ? m - n0 : S;
        const float *col = chunk_cols(l, x, n0, k);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(k * P), (int)oc,
                    (int)l->wcols, 1.0f, col, (int)l->wcols,
                    l->binary_weights ? l->wsign : l->w, (int)l->wcols, 0.0f,
                    s->z + n0 * l->out, (int)oc);
    }
    if (l->binary_weights == HTNN_BINARY_SCALED)
        dense_scale_columns(s->z, l->alpha, m * P, oc);
    activation_forward(l->activation, l->qrelu_bits, s->z, l->has_bias ? l->b : NULL, s->h,
                       m * P, oc);
}

static void conv_param_grads(htnn_layer *l, const float *x, const layer_scratch *s, size_t m)
{
    size_t S = chunk_rows(l, l->net->conv_ws_size), P = positions(l), oc = l->wrows;
    for (size_t n0 = 0; n0 < m; n0 += S) {
        size_t k = m - n0 < S ? m - n0 : S;
        const float *col = chunk_cols(l, x, n0, k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)oc, (int)l->wcols,
                    (int)(k * P), 1.0f, s->dz + n0 * l->out, (int)oc, col, (int)l->wcols,
                    n0 ? 1.0f : 0.0f, l->gw, (int)l->wcols);
    }
    memset(l->gb, 0, oc * sizeof *l->gb);
    if (l->has_bias)
        dense_column_sums(s->dz, m * P, oc, l->gb);
}

static void conv_input_grad(const htnn_layer *l, const layer_scratch *s, size_t m, float *g)
{
    size_t S = chunk_rows(l, l->net->conv_ws_size), P = positions(l), oc = l->wrows;
    float *ws = l->net->conv_ws;
    memset(g, 0, m * l->in * sizeof *g);
    for (size_t n0 = 0; n0 < m; n0 += S) {
        size_t k = m - n0 < S ? m - n0 : S;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(k * P), (int)l->wcols,
                    (int)oc, 1.0f, s->dz + n0 * l->out, (int)oc, layer_weights(l),
                    (int)l->wcols, 0.0f, ws, (int)l->wcols);
        for (size_t i = 0; i < k; i++)
            col2im(l, ws + i * P * l->wcols, g + (n0 + i) * l->in);
    }
}

const layer_ops conv_ops = {conv_forward, conv_param_grads, conv_input_grad};
