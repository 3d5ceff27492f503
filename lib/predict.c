/* Output scoring (softmax cross-entropy or hard-threshold one-vs-rest),
 * prediction and evaluation.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <string.h>

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

/* Outputs up to this wide keep their exponentials for the gradient
 * instead of computing them twice (the same values either way). */
#define SOFTMAX_KEEP 64

/* Softmax cross-entropy of one row; writes (p - onehot) * inv_m to dz. */
static double softmax_row(const float *z, size_t out, int32_t label, float inv_m, float *dz)
{
    double e[SOFTMAX_KEEP];
    int keep = out <= SOFTMAX_KEEP;
    float max = z[0];
    for (size_t j = 1; j < out; j++)
        max = z[j] > max ? z[j] : max;
    double sum = 0.0;
    for (size_t j = 0; j < out; j++) {
        double ej = exp((double)(z[j] - max));
        if (keep)
            e[j] = ej;
        sum += ej;
    }
    if (dz) {
        for (size_t j = 0; j < out; j++) {
            float p = (float)((keep ? e[j] : exp((double)(z[j] - max))) / sum);
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
    /* data-parallel: each rank's share of the global batch mean */
    float inv_m = 1.0f / (float)(net->step_rows ? net->step_rows : m);
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

/* What to do with the logits of examples [first, first + m), in `z`. */
typedef void (*chunk_fn)(htnn_net *net, const float *z, size_t first, size_t m, void *user);

/* Forward passes over `count` inputs in chunks the scratch arena holds. */
static htnn_status forward_chunks(htnn_net *net, const float *x, size_t count, chunk_fn emit,
                                  void *user)
{
    size_t chunk;
    htnn_status st = reserve_chunk(net, count, &chunk);
    if (st != HTNN_OK)
        return st;
    net_apply_threads(net);
    const float *z = net->scratch[net->n_layers - 1].z;
    for (size_t first = 0; first < count; first += chunk) {
        size_t m = count - first < chunk ? count - first : chunk;
        net_forward_inference(net, x + first * net->input_width, m);
        emit(net, z, first, m, user);
    }
    return HTNN_OK;
}

static void copy_logits(htnn_net *net, const float *z, size_t first, size_t m, void *user)
{
    size_t out = htnn_net_output_width(net);
    memcpy((float *)user + first * out, z, m * out * sizeof *z);
}

static void store_classes(htnn_net *net, const float *z, size_t first, size_t m, void *user)
{
    size_t out = htnn_net_output_width(net);
    for (size_t i = 0; i < m; i++)
        ((int32_t *)user)[first + i] = output_class(net, z + i * out);
}

typedef struct score_sums {
    const int32_t *labels;
    double loss;
    size_t correct;
} score_sums;

static void add_scores(htnn_net *net, const float *z, size_t first, size_t m, void *user)
{
    score_sums *sums = user;
    size_t right;
    (void)z;
    sums->loss += output_score(net, sums->labels + first, m, 0, &right);
    sums->correct += right;
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
    return st != HTNN_OK ? st : forward_chunks(net, x, count, copy_logits, logits);
}

htnn_status htnn_net_predict(htnn_net *net, const float *x, size_t count, int32_t *classes)
{
    htnn_status st = check_predict(net, x, count, classes, "htnn_net_predict");
    return st != HTNN_OK ? st : forward_chunks(net, x, count, store_classes, classes);
}

htnn_status htnn_net_evaluate(htnn_net *net, const float *x, const int32_t *labels,
                              size_t count, double *loss, double *accuracy)
{
    htnn_status st;
    score_sums sums = {labels, 0.0, 0};
    if (net == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_evaluate: net or labels is NULL");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK ||
        (st = forward_chunks(net, x, count, add_scores, &sums)) != HTNN_OK)
        return st;
    if (loss)
        *loss = sums.loss / (double)count;
    if (accuracy)
        *accuracy = (double)sums.correct / (double)count;
    return HTNN_OK;
}
