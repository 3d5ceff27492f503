/* Output scoring (softmax cross-entropy or hard-threshold one-vs-rest),
 * prediction and evaluation.
 * SPDX-License-Identifier: MIT */
#include <math.h>

#include "error.h"
#include "losses.h"
#include "net_internal.h"

int32_t output_class(const htnn_net *net, const float *logits)
{
    const htnn_layer *top = net->layers[net->n_layers - 1];
    if (top->out == 1)
        return loss_input(top->activation, logits[0]) > 0.0f;
    int32_t best = 0;
    for (size_t j = 1; j < top->out; j++)
        if (logits[j] > logits[best])
            best = (int32_t)j;
    return best;
}

/* One-vs-rest targets: +1 for the label's unit, -1 elsewhere; a single
 * unit encodes label 1 as +1 and label 0 as -1.  Weight 1/m (batch mean). */
static void output_targets(size_t out, int32_t label, float inv_m, float *t, float *tw)
{
    for (size_t j = 0; j < out; j++) {
        t[j] = (out == 1 ? label == 1 : (int32_t)j == label) ? 1.0f : -1.0f;
        tw[j] = inv_m;
    }
}

/* Softmax cross-entropy of one row; writes (p - onehot) * inv_m to dz. */
static double softmax_row(const float *z, size_t out, int32_t label, float inv_m, float *dz)
{
    float max = z[0];
    for (size_t j = 1; j < out; j++)
        max = z[j] > max ? z[j] : max;
    double sum = 0.0;
    for (size_t j = 0; j < out; j++)
        sum += exp((double)(z[j] - max));
    if (dz) {
        for (size_t j = 0; j < out; j++) {
            float p = (float)(exp((double)(z[j] - max)) / sum);
            dz[j] = (p - ((int32_t)j == label ? 1.0f : 0.0f)) * inv_m;
        }
    }
    return log(sum) - (double)(z[label] - max);
}

double output_score(htnn_net *net, const int32_t *labels, size_t m, int dz_wanted,
                    size_t *correct)
{
    const htnn_layer *top = net->layers[net->n_layers - 1];
    layer_scratch *s = &net->scratch[net->n_layers - 1];
    size_t out = top->out;
    float inv_m = 1.0f / (float)m;
    double loss = 0.0;
    size_t right = 0;
    for (size_t i = 0; i < m; i++) {
        const float *z = s->z + i * out;
        float *t = s->t + i * out, *tw = s->tw + i * out, *dz = s->dz + i * out;
        output_targets(out, labels[i], inv_m, t, tw);
        right += output_class(net, z) == labels[i];
        if (net->opts.output == HTNN_OUTPUT_SOFTMAX) {
            loss += softmax_row(z, out, labels[i], inv_m, dz_wanted ? dz : NULL);
            continue;
        }
        loss += loss_sum_weighted(top->loss, top->activation, 1, z, t, tw, out);
        if (dz_wanted)
            loss_grad_weighted(top->loss, top->activation, 0, z, t, tw, dz, out);
    }
    *correct = right;
    return loss;
}

/* Rows per forward pass: the arena's size if it has one (so validation
 * during fit allocates nothing), else up to 256. */
static htnn_status reserve_chunk(htnn_net *net, size_t count, size_t *chunk)
{
    size_t want = net->rows ? net->rows : (count < 256 ? count : 256);
    htnn_status st = net_reserve(net, want);
    *chunk = net->rows;
    return st;
}

static htnn_status check_predict(htnn_net *net, const float *x, size_t count, const void *out,
                                 const char *what)
{
    if (net == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "%s: net or output array is NULL", what);
    return net_check_batch(net, x, NULL, count);
}

htnn_status htnn_net_predict_logits(htnn_net *net, const float *x, size_t count,
                                    float *logits)
{
    htnn_status st = check_predict(net, x, count, logits, "htnn_net_predict_logits");
    size_t chunk, out = htnn_net_output_width(net);
    if (st != HTNN_OK || (st = reserve_chunk(net, count, &chunk)) != HTNN_OK)
        return st;
    net_apply_threads(net);
    const float *z = net->scratch[net->n_layers - 1].z;
    for (size_t first = 0; first < count; first += chunk) {
        size_t m = count - first < chunk ? count - first : chunk;
        net_forward(net, x + first * net->input_width, m);
        for (size_t i = 0; i < m * out; i++)
            logits[first * out + i] = z[i];
    }
    return HTNN_OK;
}

htnn_status htnn_net_predict(htnn_net *net, const float *x, size_t count, int32_t *classes)
{
    htnn_status st = check_predict(net, x, count, classes, "htnn_net_predict");
    size_t chunk, out = htnn_net_output_width(net);
    if (st != HTNN_OK || (st = reserve_chunk(net, count, &chunk)) != HTNN_OK)
        return st;
    net_apply_threads(net);
    const float *z = net->scratch[net->n_layers - 1].z;
    for (size_t first = 0; first < count; first += chunk) {
        size_t m = count - first < chunk ? count - first : chunk;
        net_forward(net, x + first * net->input_width, m);
        for (size_t i = 0; i < m; i++)
            classes[first + i] = output_class(net, z + i * out);
    }
    return HTNN_OK;
}

htnn_status htnn_net_evaluate(htnn_net *net, const float *x, const int32_t *labels,
                              size_t count, double *loss, double *accuracy)
{
    htnn_status st;
    size_t chunk, correct = 0;
    double total = 0.0;
    if (net == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_evaluate: net or labels is NULL");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK ||
        (st = reserve_chunk(net, count, &chunk)) != HTNN_OK)
        return st;
    net_apply_threads(net);
    for (size_t first = 0; first < count; first += chunk) {
        size_t m = count - first < chunk ? count - first : chunk, right;
        net_forward(net, x + first * net->input_width, m);
        total += output_score(net, labels + first, m, 0, &right);
        correct += right;
    }
    if (loss)
        *loss = total / (double)count;
    if (accuracy)
        *accuracy = (double)correct / (double)count;
    return HTNN_OK;
}
