/* Internal: the FTPROP-MB step of a dense net on the net's own threads
 * (train_mt.c), and what it shares with the general step in train.c.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_TRAIN_MT_H
#define HTNN_LIB_TRAIN_MT_H

#include "heuristic_internal.h"
#include "net_internal.h"
#include "optimizer_internal.h"

/* dL/dZ of the layer below (n entries): its per-layer loss towards the
 * targets t, tw for a hard-threshold layer; plain back-propagation
 * G * g'(Z) for a real-valued one.  Elementwise (train.c). */
void below_loss_grad(const htnn_layer *below, const float *z, const float *t, const float *tw,
                     const float *g, float *dz, size_t n);

/* 1 when a step of this net with heuristic h can run on the net's own
 * threads: helper threads exist (threads >= 2), every layer is dense, the
 * heuristic is the loss-driven one and targets are set before the update
 * (the default).  Alone, train_mt_backward runs the sweep; data-parallel
 * (a reducer), train.c runs it with train_mt_layer_grads, its sums and
 * train_mt_update (or its sharded updates). */
int train_mt_usable(const htnn_net *net, const htnn_heuristic *h);

/* The training forward pass of m rows, each layer's units split between
 * the threads (one sgemm per thread on its block of W, then the block's
 * activation); binary weights are re-binarised by the thread that owns
 * the rows. */
void train_mt_forward(htnn_net *net, const float *x, size_t m);

/* The backward sweep after output_score: per layer, from the top, one job
 * in which each thread computes its units' rows of gW and gb, its columns
 * of G = dZ W with the loss-driven targets and loss gradient of the layer
 * below, and the optimizer update of its units of the layer above (whose
 * W nobody reads any more in this step).  The input layer's job also
 * updates its own units.  No reduction crosses threads, so the result is
 * the same for every thread count as long as sgemm's sums over the batch
 * do not depend on how its output is blocked. */
void train_mt_backward(htnn_net *net, htnn_optimizer *opt, const float *x, size_t m);

/* Layer d's part of that sweep without any update: each thread's rows of
 * gW and gb (zeros when m is 0), and for d > 0 its columns of G with the
 * targets and loss gradient of the layer below.  For a data-parallel step,
 * whose sums come between the gradients and the updates. */
void train_mt_layer_grads(htnn_net *net, const float *x, size_t m, size_t d);

/* The optimizer update of every layer, each thread its units. */
void train_mt_update(htnn_net *net, htnn_optimizer *opt);

/* optimizer_update_weights of weights [first, first + n) of a layer of any
 * kind, split between the net's threads when it has some and the range is
 * large (a sharded step's block). */
void train_mt_update_weights(htnn_net *net, htnn_optimizer *opt, htnn_layer *layer,
                             size_t first, size_t n);

#endif
