/* Read access to the target set of a net's last training batch.
 * SPDX-License-Identifier: MIT */
#include "error.h"
#include "net_internal.h"

const htnn_targets *htnn_net_targets(const htnn_net *net)
{
    if (net == NULL || net->targets.batch == 0)
        return NULL;
    return &net->targets;
}

size_t htnn_targets_layer_count(const htnn_targets *targets)
{
    return targets && targets->net->n_layers ? targets->net->n_layers - 1 : 0;
}

size_t htnn_targets_batch(const htnn_targets *targets) { return targets ? targets->batch : 0; }

htnn_status htnn_targets_get(const htnn_targets *targets, size_t layer, const float **values,
                             const float **weights, size_t *rows, size_t *cols)
{
    if (targets == NULL)
        return error_set(HTNN_EINVAL, "htnn_targets_get: targets is NULL");
    if (layer >= htnn_targets_layer_count(targets))
        return error_set(HTNN_EINVAL, "htnn_targets_get: hidden layer %zu of %zu", layer,
                         htnn_targets_layer_count(targets));
    const htnn_net *net = targets->net;
    if (values)
        *values = net->scratch[layer].t;
    if (weights)
        *weights = net->scratch[layer].tw;
    if (rows)
        *rows = targets->batch;
    if (cols)
        *cols = net->layers[layer]->out;
    return HTNN_OK;
}
