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

/* Updates one layer's weights and bias from its gradients gw, gb. */
void optimizer_update_layer(htnn_optimizer *opt, htnn_layer *layer);

#endif
