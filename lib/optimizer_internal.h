/* Internal: what the trainer asks of an optimizer.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_OPTIMIZER_INTERNAL_H
#define HTNN_LIB_OPTIMIZER_INTERNAL_H

#include "htnn/optimizer.h"
#include "net_internal.h"

/* Sizes the per-parameter state for `net` (once per net and layout). */
htnn_status optimizer_bind(htnn_optimizer *opt, const htnn_net *net);

/* Counts one step (Adam's bias correction uses the count). */
void optimizer_begin_step(htnn_optimizer *opt);

/* The moment buffers of the bound state: *count floats (0 for SGD
 * without momentum), per layer and slot (SGD: the momentum buffer; Adam:
 * m, then v) the layer's weights then its biases.  NULL before
 * optimizer_bind. */
float *optimizer_state(htnn_optimizer *opt, size_t *count);

/* The options the optimizer was created with. */
const htnn_optimizer_options *optimizer_options(const htnn_optimizer *opt);

/* Sets the step count and the current learning rate (restoring a saved
 * state; a fit's next htnn_optimizer_set_epoch recomputes the rate). */
void optimizer_set_progress(htnn_optimizer *opt, uint64_t steps, float lr);

/* Updates one layer's weights and bias from its gradients gw, gb. */
void optimizer_update_layer(htnn_optimizer *opt, htnn_layer *layer);

/* The same in parts, for a data-parallel fit that shards the step: the
 * weights [first, first + n) (their moments too), the bias, and, once all
 * weights are updated, the binary-weight clipping and re-binarising that
 * optimizer_update_layer ends with. */
void optimizer_update_weights(htnn_optimizer *opt, htnn_layer *layer, size_t first, size_t n);
void optimizer_update_bias(htnn_optimizer *opt, htnn_layer *layer);
void optimizer_finish_weights(htnn_layer *layer);

/* A dense layer's units [first, first + n): their rows of W, their biases,
 * and (binary weights) their clipping and re-binarising.  The trainer's
 * threads each update their own units (train_mt.c). */
void optimizer_update_rows(htnn_optimizer *opt, htnn_layer *layer, size_t first, size_t n);

/* The layer's per-weight moment arrays (SGD momentum; Adam m, v): their
 * count (0 to 2), and each one's first weight's slot in moments[k]. */
size_t optimizer_weight_moments(htnn_optimizer *opt, const htnn_layer *layer,
                                float *moments[2]);

#endif
