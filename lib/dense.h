/* Internal: the dense layer's numerics (CBLAS sgemm, batch-major).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_DENSE_H
#define HTNN_LIB_DENSE_H

#include "net_internal.h"

/* Draws W, then b, from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = wcols
 * (dense and conv layers). */
void dense_init(htnn_layer *layer, rng *r);

/* Per-unit scales of binary weights: alpha[j] = mean |w[j][:]| (summed in
 * index order in float) for HTNN_BINARY_SCALED, 1 for HTNN_BINARY_SIGN.
 * Shared with the packed engine, which must reproduce them bit for bit. */
void dense_binary_scales(int mode, const float *w, size_t in, size_t out,
                         float *alpha);

/* Refreshes wsign, wq and alpha of a binary-weight layer from w (a no-op
 * for float weights). */
void dense_binarize(htnn_layer *layer);

/* The same for rows [first, first + n) of W only (the trainer's threads
 * each refresh their own rows); leaves bin_fresh alone. */
void dense_binarize_rows(htnn_layer *layer, size_t first, size_t n);

/* Clips the latent weights of a binary-weight layer to [-1, 1]. */
void dense_clip_latent(htnn_layer *layer);

/* The same for rows [first, first + n) of W. */
void dense_clip_latent_rows(htnn_layer *layer, size_t first, size_t n);

/* z[i][j] *= alpha[j] for m rows of n (the per-unit scales of binary
 * weights). */
void dense_scale_columns(float *z, const float *alpha, size_t m, size_t n);

/* sums[j] += column sums of a (m x n). */
void dense_column_sums(const float *a, size_t m, size_t n, float *sums);

/* Z = X W^T + b and H = g(Z) for m rows of input x (m x in).  With binary
 * weights Z = (X sign(W)^T) * alpha + b: the sgemm runs on +-1 weights, so
 * with +-1 inputs its sums are exact integers. */
void dense_forward(const htnn_layer *layer, const float *x, size_t m, float *z,
                   float *h);

/* From dZ (m x out) and the layer's input x (m x in): the parameter
 * gradients gw = dZ^T X and gb = column sums of dZ. */
void dense_param_grads(htnn_layer *layer, const float *x, const float *dz,
                       size_t m);

/* The same for the weights of units [first, end) only (the rows of gw
 * there; the rest of gw is left as it was), and gb whole. */
void dense_unit_grads(htnn_layer *layer, const float *x, const float *dz, size_t m,
                      size_t first, size_t end);

/* G = dZ W (m x in; W is the effective sign(W) * alpha for binary weights): the gradient of the layer's loss w.r.t. its input. */
void dense_input_grad(const htnn_layer *layer, const float *dz, size_t m,
                      float *g);

#endif
