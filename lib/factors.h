/* Internal: a dense layer's weight gradient sent as its sufficient
 * factors in a sharded data-parallel step (lib/factors.c).
 *
 * Over a batch, a dense layer's weight gradient dZ^T X is a sum of one
 * outer product per row: the rows of X (m x in) and dZ (m x out) are its
 * factors.  When the global batch is small next to the layer
 * (rows x (in + out) < out x in values), the ranks all-gather every rank's
 * rows of X and dZ instead of reduce-scattering their whole gradient
 * matrices, and each multiplies out only the units of its block of W: the
 * same summed gradient from fewer bytes (Xie et al., "Distributed Machine
 * Learning via Sufficient Factor Broadcasting", 2016).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_FACTORS_H
#define HTNN_LIB_FACTORS_H

#include "net_internal.h"

/* Floats of the buffer a sharded fit needs for `rows` rows per rank (the
 * largest share of a global batch), 0 if no layer of the net would send
 * factors. */
size_t factors_floats(const htnn_net *net, size_t rows);

/* 1 if the layer's gradient goes as factors in this fit (net->factors set
 * for net->factor_rows rows per rank; the same answer on every rank). */
int factors_used(const htnn_net *net, const htnn_layer *layer);

/* From this rank's m rows of the layer's input x and of its dZ: the weight
 * gradient summed over all ranks' rows, in the units that cover this
 * rank's block of W (net_block), and the summed bias gradient, whole. */
htnn_status factors_grads(htnn_net *net, htnn_layer *layer, const float *x, size_t m);

#endif
