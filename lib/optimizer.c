/* SGD (momentum, Nesterov) and Adam with L2 weight decay and a per-epoch
 * learning-rate schedule.  Each update streams a layer's parameter,
 * gradient and state arrays once.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dense.h"
#include "error.h"
#include "optimizer_internal.h"
#include "options.h"
#include "simd.h"

struct htnn_optimizer {
    htnn_optimizer_options o;
    float lr;                 /* learning rate of the current epoch */
    uint64_t steps;
    const htnn_net *net;      /* net the state belongs to */
    uint64_t layout_id;
    float *state;             /* one allocation for every layer */
    float **layer_state;      /* per layer: [m_w | m_b | v_w | v_b] */
    size_t n_layers;
    size_t n_state;           /* floats in state (0 for plain SGD) */
};

static htnn_status check_options(const htnn_optimizer_options *o)
{
    int ok = (o->kind == HTNN_OPT_SGD || o->kind == HTNN_OPT_ADAM) &&
             o->learning_rate > 0.0f && isfinite(o->learning_rate) &&
             o->momentum >= 0.0f && o->momentum < 1.0f &&
             (o->nesterov == 0 || (o->nesterov == 1 && o->momentum > 0.0f)) &&
             o->beta1 >= 0.0f && o->beta1 < 1.0f && o->beta2 >= 0.0f && o->beta2 < 1.0f &&
             o->epsilon > 0.0f && o->weight_decay >= 0.0f && isfinite(o->weight_decay) &&
             o->schedule >= HTNN_SCHEDULE_CONSTANT && o->schedule <= HTNN_SCHEDULE_COSINE &&
             o->step_epochs >= 1 && o->step_gamma > 0.0f && o->step_gamma <= 1.0f &&
             o->min_learning_rate >= 0.0f && o->min_learning_rate <= o->learning_rate;
    if (!ok)
        return error_set(HTNN_EINVAL,
                         "optimizer options out of range (kind %d, lr %g, momentum %g, "
                         "nesterov %d, betas %g/%g, eps %g, decay %g, schedule %d, "
                         "step %zu x %g, min lr %g)",
                         o->kind, (double)o->learning_rate, (double)o->momentum, o->nesterov,
                         (double)o->beta1, (double)o->beta2, (double)o->epsilon,
                         (double)o->weight_decay, o->schedule, o->step_epochs,
                         (double)o->step_gamma, (double)o->min_learning_rate);
    return HTNN_OK;
}

htnn_status htnn_optimizer_create(const htnn_optimizer_options *opts, htnn_optimizer **out)
{
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    htnn_status st;
    if (out == NULL)
        return error_set(HTNN_EINVAL, "htnn_optimizer_create: out is NULL");
    if ((st = options_read(&o, sizeof o, opts, "optimizer options")) != HTNN_OK ||
        (st = check_options(&o)) != HTNN_OK)
        return st;
    htnn_optimizer *opt = mem_calloc(1, sizeof *opt);
    if (opt == NULL)
        return error_set(HTNN_ENOMEM, "htnn_optimizer_create: out of memory");
    opt->o = o;
    opt->lr = o.learning_rate;
    *out = opt;
    return HTNN_OK;
}

static void state_free(htnn_optimizer *opt)
{
    mem_free(opt->state);
    mem_free(opt->layer_state);
    opt->state = NULL;
    opt->layer_state = NULL;
    opt->net = NULL;
    opt->n_layers = 0;
    opt->n_state = 0;
}

void htnn_optimizer_free(htnn_optimizer *opt)
{
    if (opt == NULL)
        return;
    state_free(opt);
    mem_free(opt);
}

htnn_status htnn_optimizer_reset(htnn_optimizer *opt)
{
    if (opt == NULL)
        return error_set(HTNN_EINVAL, "htnn_optimizer_reset: optimizer is NULL");
    state_free(opt);
    opt->steps = 0;
    return HTNN_OK;
}

static float scheduled_rate(const htnn_optimizer_options *o, size_t epoch, size_t total)
{
    const double pi = 3.14159265358979323846;
    switch (o->schedule) {
    case HTNN_SCHEDULE_STEP:
        return o->learning_rate * powf(o->step_gamma, (float)(epoch / o->step_epochs));
    case HTNN_SCHEDULE_COSINE: {
        size_t len = o->cosine_epochs ? o->cosine_epochs : total;
        double frac = len ? (double)(epoch < len ? epoch : len) / (double)len : 0.0;
        return (float)(o->min_learning_rate + (o->learning_rate - o->min_learning_rate) *
                                                  0.5 * (1.0 + cos(pi * frac)));
    }
    default: return o->learning_rate;
    }
}

htnn_status htnn_optimizer_set_epoch(htnn_optimizer *opt, size_t epoch, size_t total_epochs)
{
    if (opt == NULL)
        return error_set(HTNN_EINVAL, "htnn_optimizer_set_epoch: optimizer is NULL");
    opt->lr = scheduled_rate(&opt->o, epoch, total_epochs);
    return HTNN_OK;
}

float htnn_optimizer_learning_rate(const htnn_optimizer *opt) { return opt ? opt->lr : -1.0f; }

uint64_t htnn_optimizer_steps(const htnn_optimizer *opt) { return opt ? opt->steps : 0; }

/* SGD without momentum needs no state; everything else keeps two slots
 * (momentum; or Adam's first and second moments) per parameter. */
static size_t slots_per_param(const htnn_optimizer_options *o)
{
    if (o->kind == HTNN_OPT_ADAM)
        return 2;
    return o->momentum > 0.0f ? 1 : 0;
}

htnn_status optimizer_bind(htnn_optimizer *opt, const htnn_net *net)
{
    if (opt->net == net && opt->layout_id == net->layout_id && opt->layer_state)
        return HTNN_OK;
    size_t slots = slots_per_param(&opt->o), total = 0;
    for (size_t i = 0; i < net->n_layers; i++)
        total += slots * (net->layers[i]->n_w + net->layers[i]->n_b);
    float *state = mem_calloc(total ? total : 1, sizeof *state);
    float **layer_state = mem_malloc(net->n_layers * sizeof *layer_state);
    if (state == NULL || layer_state == NULL) {
        mem_free(state);
        mem_free(layer_state);
        return error_set(HTNN_ENOMEM, "optimizer: out of memory for %zu state values", total);
    }
    state_free(opt);
    float *p = state;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer_state[i] = p;
        p += slots * (net->layers[i]->n_w + net->layers[i]->n_b);
    }
    opt->state = state;
    opt->layer_state = layer_state;
    opt->n_layers = net->n_layers;
    opt->n_state = total;
    opt->net = net;
    opt->layout_id = net->layout_id;
    opt->steps = 0;
    return HTNN_OK;
}

void optimizer_begin_step(htnn_optimizer *opt) { opt->steps++; }

HTNN_CLONES
static void sgd_plain(float *w, const float *g, size_t n, float lr, float decay)
{
    for (size_t i = 0; i < n; i++)
        w[i] -= lr * (g[i] + decay * w[i]);
}

HTNN_CLONES
static void sgd_momentum(float *w, const float *g, float *buf, size_t n, float lr, float mu,
                         int nesterov, float decay)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + decay * w[i];
        float b = mu * buf[i] + gi;
        buf[i] = b;
        w[i] -= lr * (nesterov ? gi + mu * b : b);
    }
}

/* PyTorch's formulation: w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). */
HTNN_CLONES
static void adam(float *w, const float *g, float *m, float *v, size_t n,
                 const htnn_optimizer *opt, float decay)
{
    float b1 = opt->o.beta1, b2 = opt->o.beta2;
    double t = (double)opt->steps;
    float step = (float)(opt->lr / (1.0 - pow(b1, t)));
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(b2, t)));
    float eps = opt->o.epsilon;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + decay * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

static void update_array(htnn_optimizer *opt, float *w, const float *g, float *state,
                         size_t n, size_t stride, float decay)
{
    if (opt->o.kind == HTNN_OPT_ADAM)
        adam(w, g, state, state + stride, n, opt, decay);
    else if (opt->o.momentum > 0.0f)
        sgd_momentum(w, g, state, n, opt->lr, opt->o.momentum, opt->o.nesterov, decay);
    else
        sgd_plain(w, g, n, opt->lr, decay);
}

void optimizer_update_layer(htnn_optimizer *opt, htnn_layer *layer)
{
    size_t nw = layer->n_w, nb = layer->n_b, total = nw + nb;
    float *state = opt->layer_state[layer->index];
    update_array(opt, layer->w, layer->gw, state, nw, total, opt->o.weight_decay);
    if (layer->has_bias)
        update_array(opt, layer->b, layer->gb, state + nw, nb, total, 0.0f);
    if (layer->binary_weights) {
        /* straight-through: the step went to the latent weights; keep them in
         * [-1, 1] and refresh the binarised copy for the input gradient */
        dense_clip_latent(layer);
        dense_binarize(layer);
    }
}

/* Data-parallel fits with a sharded step (train.c): weights [first, first
 * + n) only, from their summed gradients; binary weights are clipped and
 * re-binarised by optimizer_finish_weights once every block is back. */
void optimizer_update_weights(htnn_optimizer *opt, htnn_layer *layer, size_t first, size_t n)
{
    size_t total = layer->n_w + layer->n_b;
    float *state = opt->layer_state[layer->index] + first;
    update_array(opt, layer->w + first, layer->gw + first, state, n, total,
                 opt->o.weight_decay);
}

static void update_bias_range(htnn_optimizer *opt, htnn_layer *layer, size_t first, size_t n)
{
    size_t nw = layer->n_w, total = nw + layer->n_b;
    if (layer->has_bias)
        update_array(opt, layer->b + first, layer->gb + first,
                     opt->layer_state[layer->index] + nw + first, n, total, 0.0f);
}

void optimizer_update_bias(htnn_optimizer *opt, htnn_layer *layer)
{
    update_bias_range(opt, layer, 0, layer->n_b);
}

void optimizer_update_rows(htnn_optimizer *opt, htnn_layer *layer, size_t first, size_t n)
{
    size_t in = layer->wcols;
    optimizer_update_weights(opt, layer, first * in, n * in);
    update_bias_range(opt, layer, first, n);
    dense_clip_latent_rows(layer, first, n);
    dense_binarize_rows(layer, first, n);
}

void optimizer_finish_weights(htnn_layer *layer)
{
    if (layer->binary_weights) {
        dense_clip_latent(layer);
        dense_binarize(layer);
    }
}

size_t optimizer_weight_moments(htnn_optimizer *opt, const htnn_layer *layer, float *moments[2])
{
    size_t slots = slots_per_param(&opt->o), total = layer->n_w + layer->n_b;
    for (size_t k = 0; k < slots; k++)
        moments[k] = opt->layer_state[layer->index] + k * total;
    return slots;
}

/* ------------------------------------------------------------------------
 * The state checkpoints and divergence snapshots save (checkpoint.c,
 * snapshot.c).
 */

float *optimizer_state(htnn_optimizer *opt, size_t *count)
{
    *count = opt->n_state;
    return opt->state;
}

const htnn_optimizer_options *optimizer_options(const htnn_optimizer *opt) { return &opt->o; }

void optimizer_set_progress(htnn_optimizer *opt, uint64_t steps, float lr)
{
    opt->steps = steps;
    opt->lr = lr;
}
