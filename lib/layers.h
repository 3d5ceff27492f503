/* Internal: what every kind of layer does during a batch, behind one small
 * table so the training loop and prediction never switch on the kind.
 * dense.c, conv.c, pool.c and batchnorm.c each provide one table.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_LAYERS_H
#define HTNN_LIB_LAYERS_H

#include "net_internal.h"

typedef struct layer_ops {
    /* Z and H = g(Z) of m rows of input x into s->z, s->h (and the kind's
     * own scratch); `training` selects batch statistics for batch norm. */
    void (*forward)(htnn_layer *layer, const float *x, size_t m, layer_scratch *s,
                    int training);
    /* gw, gb from dZ (s->dz) and the layer's input x. */
    void (*param_grads)(htnn_layer *layer, const float *x, const layer_scratch *s,
                        size_t m);
    /* G = dL/dX (m x in) from s->dz; runs after param_grads of the batch. */
    void (*input_grad)(const htnn_layer *layer, const layer_scratch *s, size_t m,
                       float *g);
} layer_ops;

extern const layer_ops dense_ops, conv_ops, pool_ops, batchnorm_ops;

/* The table of the layer's kind. */
const layer_ops *layer_ops_of(const htnn_layer *layer);

/* Floats of the shared conv workspace a conv layer wants for `rows`
 * examples (0 for other kinds). */
size_t conv_workspace(const htnn_layer *layer, size_t rows);

/* Conv or pool output size along one axis, 0 if the window does not fit. */
size_t window_out(size_t in, size_t window, size_t stride, size_t pad);

#endif
