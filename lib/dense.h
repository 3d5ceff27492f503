/* Internal: the dense layer's numerics (CBLAS sgemm, batch-major).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_DENSE_H
#define HTNN_LIB_DENSE_H

#include "net_internal.h"

/* Draws W, then b, from U(-1/sqrt(in), 1/sqrt(in)). */
void dense_init(htnn_layer *layer, rng *r);

/* Z = X W^T + b and H = g(Z) for m rows of input x (m x in). */
void dense_forward(const htnn_layer *layer, const float *x, size_t m, float *z,
                   float *h);

/* From dZ (m x out) and the layer's input x (m x in): the parameter
 * gradients gw = dZ^T X and gb = column sums of dZ. */
void dense_param_grads(htnn_layer *layer, const float *x, const float *dz,
                       size_t m);

/* G = dZ W (m x in): the gradient of the layer's loss w.r.t. its input. */
void dense_input_grad(const htnn_layer *layer, const float *dz, size_t m,
                      float *g);

#endif
