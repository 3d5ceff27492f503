/* What the combinatorial heuristics share: the objective of one target row
 * for the layer below, the rank-one effect of a flip, scratch, statistics
 * and the weights of the chosen targets.
 * SPDX-License-Identifier: MIT */
#include "heuristic_search.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "alloc.h"
#include "error.h"
#include "heuristic_internal.h"
#include "losses.h"
#include "options.h"
#include "simd.h"

htnn_status search_check_view(const htnn_layer_view *v, const char *who)
{
    if (v == NULL)
        return error_set(HTNN_EINVAL, "%s: view is NULL", who);
    if (v->struct_size < sizeof *v || v->batch == 0 || v->in_width == 0 ||
        v->out_width == 0)
        return error_set(HTNN_EINVAL, "%s: incomplete view (struct_size %zu, batch %zu, "
                         "widths %zu x %zu)", who, v->struct_size, v->batch, v->in_width,
                         v->out_width);
    if (v->weights == NULL && v->input_z != NULL)
        return error_set(HTNN_EUNSUPPORTED, "%s: layer %zu is not dense (conv2d, max-pool or "
                         "batch norm); the search needs a dense W[d] (use the loss-driven "
                         "heuristic for the targets below it)", who, v->layer);
    if (v->input_z == NULL || v->weights == NULL || v->bias == NULL || v->targets == NULL ||
        v->target_weights == NULL)
        return error_set(HTNN_EINVAL, "%s: the view lacks input_z, weights, bias, targets or "
                         "target_weights", who);
    if (!loss_valid(v->loss) || !activation_valid(v->activation, 2) ||
        !activation_valid(v->below_activation, 2))
        return error_set(HTNN_EINVAL, "%s: view has unknown loss %d or activations %d / %d",
                         who, v->loss, v->activation, v->below_activation);
    return HTNN_OK;
}

/* Grows one buffer to hold n elements of `size` bytes. */
static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 1;
    void *q = mem_realloc(*p, n * size);
    if (q == NULL)
        return 0;
    *p = q;
    *cap = n;
    return 1;
}

static htnn_status reserve(search_scratch *s, size_t m, size_t in, size_t out)
{
    int ok = 1;
    if (in > SIZE_MAX / sizeof(double) / out || m > SIZE_MAX / sizeof(float) / out ||
        m > SIZE_MAX / sizeof(float) / in)
        return error_set(HTNN_ENOMEM, "heuristic scratch: %zu x %zu x %zu is too large", m,
                         in, out);
    ok &= grow((void **)&s->wt, &s->cap_wt, in * out, sizeof(float));
    ok &= grow((void **)&s->zs, &s->cap_zs, m * out, sizeof(float));
    ok &= grow((void **)&s->vals, &s->cap_vals, m * in, sizeof(float));
    ok &= grow((void **)&s->row, &s->cap_row, in, sizeof(float));
    ok &= grow((void **)&s->gain, &s->cap_gain, in, sizeof(float));
    ok &= grow((void **)&s->order, &s->cap_order, in, sizeof(size_t));
    ok &= grow((void **)&s->cand, &s->cap_cand, out, sizeof(float));
    ok &= grow((void **)&s->zd, &s->cap_zd, out, sizeof(double));
    if (!ok)
        return error_set(HTNN_ENOMEM, "heuristic scratch: out of memory for a %zu x %zu "
                         "layer and %zu examples", out, in, m);
    return HTNN_OK;
}

void search_scratch_free(search_scratch *s)
{
    mem_free(s->wt);
    mem_free(s->zs);
    mem_free(s->vals);
    mem_free(s->row);
    mem_free(s->gain);
    mem_free(s->cand);
    mem_free(s->zd);
    mem_free(s->order);
    memset(s, 0, sizeof *s);
}

/* Sign, identity: -1 / +1; step, qrelu, relu: 0 / 1. */
static void target_values(int below_act, float *lo, float *hi)
{
    int zero_one = below_act == HTNN_ACT_STEP || below_act == HTNN_ACT_QRELU ||
                   below_act == HTNN_ACT_RELU;
    *lo = zero_one ? 0.0f : -1.0f;
    *hi = 1.0f;
}

static void transpose(const float *w, size_t out, size_t in, float *wt)
{
    for (size_t k = 0; k < out; k++)
        for (size_t j = 0; j < in; j++)
            wt[j * out + k] = w[k * in + j];
}

htnn_status search_prepare(search_scratch *s, const htnn_layer_view *v, float reach_cost,
                           const float *start, search_layer *out)
{
    size_t m = v->batch, in = v->in_width, n = v->out_width;
    htnn_status st = reserve(s, m, in, n);
    if (st != HTNN_OK)
        return st;
    search_layer sl = {v, m, in, n, 0.0f, 1.0f, v->activation, v->loss, reach_cost, s->wt,
                       s->zs};
    target_values(v->below_activation, &sl.lo, &sl.hi);
    transpose(v->weights, n, in, s->wt);
    for (size_t i = 0; i < m * in; i++)
        s->vals[i] = start[i] > 0.0f ? sl.hi : sl.lo;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)in, 1.0f,
                s->vals, (int)in, v->weights, (int)in, 0.0f, s->zs, (int)n);
    for (size_t i = 0; i < m; i++)
        for (size_t k = 0; k < n; k++)
            s->zs[i * n + k] += v->bias[k];
    *out = sl;
    return HTNN_OK;
}

float search_current(const search_layer *sl, size_t i, size_t j)
{
    return loss_input(sl->v->below_activation, sl->v->input_z[i * sl->in + j]) > 0.0f ? 1.0f
                                                                                       : -1.0f;
}

float search_delta(const search_layer *sl, float t)
{
    return t > 0.0f ? sl->lo - sl->hi : sl->hi - sl->lo;
}

float search_reach_change(const search_layer *sl, size_t i, size_t j, float t)
{
    if (sl->reach_cost == 0.0f)
        return 0.0f;
    float margin = fabsf(loss_input(sl->v->below_activation, sl->v->input_z[i * sl->in + j]));
    return t == search_current(sl, i, j) ? sl->reach_cost * margin : -sl->reach_cost * margin;
}

double search_reach_row(const search_layer *sl, size_t i, const float *row)
{
    double cost = 0.0;
    if (sl->reach_cost == 0.0f)
        return 0.0;
    for (size_t j = 0; j < sl->in; j++)
        if ((row[j] > 0.0f ? 1.0f : -1.0f) != search_current(sl, i, j))
            cost += (double)sl->reach_cost *
                    fabs((double)loss_input(sl->v->below_activation,
                                            sl->v->input_z[i * sl->in + j]));
    return cost;
}

/* The label of a softmax output row: the one +1 of a one-hot row of a
 * real-valued layer, or -1 when the row is scored by the per-layer loss. */
static long softmax_label(const search_layer *sl, const float *t)
{
    long label = -1;
    if (activation_is_hard(sl->act) || sl->out < 2)
        return -1;
    for (size_t k = 0; k < sl->out; k++) {
        if (t[k] == 1.0f) {
            if (label >= 0)
                return -1;
            label = (long)k;
        } else if (t[k] != -1.0f) {
            return -1;
        }
    }
    return label;
}

static double softmax_ce(const float *z, size_t out, size_t label)
{
    float max = z[0];
    for (size_t k = 1; k < out; k++)
        max = z[k] > max ? z[k] : max;
    double sum = 0.0;
    for (size_t k = 0; k < out; k++)
        sum += exp((double)(z[k] - max));
    return log(sum) - (double)(z[label] - max);
}

double search_row_loss(const search_layer *sl, size_t i, const float *z)
{
    const float *t = sl->v->targets + i * sl->out, *w = sl->v->target_weights + i * sl->out;
    long label = softmax_label(sl, t);
    if (label >= 0)
        return (double)w[label] * softmax_ce(z, sl->out, (size_t)label);
    double sum = 0.0;
    for (size_t k = 0; k < sl->out; k++)
        if (w[k] != 0.0f && t[k] != 0.0f)
            sum += (double)w[k] * loss_value(sl->loss, loss_input(sl->act, z[k]), t[k]);
    return sum;
}

HTNN_CLONES
static void candidate(const float *z, const float *wtj, float delta, float *cand, size_t out)
{
    for (size_t k = 0; k < out; k++)
        cand[k] = z[k] + delta * wtj[k];
}

void search_candidate(const float *z, const float *wtj, float delta, float *cand, size_t out)
{
    candidate(z, wtj, delta, cand, out);
}

void search_row_weights(const search_layer *sl, search_scratch *s, size_t i, const float *row,
                        const float *z, int weighting, float *w)
{
    if (weighting == HTNN_SEARCH_WEIGHT_UNIT) {
        for (size_t j = 0; j < sl->in; j++)
            w[j] = 1.0f;
        return;
    }
    if (weighting == HTNN_SEARCH_WEIGHT_GRADIENT) {
        const float *g = sl->v->grad_input + i * sl->in;
        for (size_t j = 0; j < sl->in; j++)
            w[j] = fabsf(g[j]);
        return;
    }
    double base = search_row_loss(sl, i, z);
    for (size_t j = 0; j < sl->in; j++) {
        float delta = search_delta(sl, row[j]);
        search_candidate(z, sl->wt + j * sl->out, delta, s->cand, sl->out);
        double change = fabs(search_row_loss(sl, i, s->cand) - base) / fabs((double)delta);
        w[j] = isfinite(change) ? (float)change : 0.0f;
    }
}

static htnn_status search_reserve(void *p, size_t rows, size_t in, size_t out)
{
    return reserve(&((search_state *)p)->scratch, rows, in, out);
}

static void search_state_destroy(void *p)
{
    search_state *state = p;
    if (state == NULL)
        return;
    search_scratch_free(&state->scratch);
    mem_free(state);
}

htnn_status search_handle_create(search_state *state, const char *name,
                                 htnn_status (*set)(void *, const htnn_layer_view *, float *,
                                                    float *),
                                 htnn_heuristic **out)
{
    htnn_heuristic_ops ops = {sizeof ops, name, set, search_state_destroy};
    htnn_status st = htnn_heuristic_create(&ops, state, out);
    if (st != HTNN_OK) {
        search_state_destroy(state);
        return st;
    }
    (*out)->writes_all = 1;
    (*out)->reserve = search_reserve;
    state->stats.struct_size = sizeof state->stats;
    return HTNN_OK;
}

htnn_status htnn_heuristic_get_stats(const htnn_heuristic *heuristic, htnn_search_stats *out)
{
    htnn_search_stats zero = HTNN_SEARCH_STATS_INIT;
    const htnn_search_stats *src = &zero;
    if (heuristic == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_get_stats: heuristic or out is NULL");
    if (out->struct_size < sizeof(size_t) || out->struct_size > sizeof *out)
        return error_set(HTNN_EINVAL, "htnn_heuristic_get_stats: bad struct_size %zu",
                         out->struct_size);
    if (heuristic->ops.destroy == search_state_destroy)
        src = &((const search_state *)heuristic->state)->stats;
    memcpy((char *)out + sizeof(size_t), (const char *)src + sizeof(size_t),
           out->struct_size - sizeof(size_t));
    return HTNN_OK;
}

htnn_status htnn_layer_view_loss(const htnn_layer_view *view, const float *targets,
                                 float reach_cost, double *loss)
{
    search_scratch s;
    search_layer sl;
    htnn_status st = search_check_view(view, "htnn_layer_view_loss");
    if (st != HTNN_OK)
        return st;
    if (targets == NULL || loss == NULL)
        return error_set(HTNN_EINVAL, "htnn_layer_view_loss: targets or loss is NULL");
    if (!(reach_cost >= 0.0f) || reach_cost == INFINITY)
        return error_set(HTNN_EINVAL, "htnn_layer_view_loss: reach_cost %g must be finite "
                         "and >= 0", (double)reach_cost);
    memset(&s, 0, sizeof s);
    if ((st = search_prepare(&s, view, reach_cost, targets, &sl)) == HTNN_OK) {
        double sum = 0.0;
        for (size_t i = 0; i < sl.m; i++)
            sum += search_row_loss(&sl, i, sl.zs + i * sl.out) +
                   search_reach_row(&sl, i, targets + i * sl.in);
        *loss = sum;
    }
    search_scratch_free(&s);
    return st;
}
