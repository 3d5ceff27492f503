/* The exhaustive heuristic: per example, every one of the 2^n[d-1] target
 * rows in Gray-code order (one flip, O(n[d]), per step), keeping the row
 * with the lowest objective J; ties go to the row closest to the current
 * outputs.  Refuses layers wider than a configurable limit.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "heuristic_search.h"
#include "losses.h"
#include "options.h"

/* 2^30 rows per example is already hours of work. */
#define EXHAUSTIVE_MAX_WIDTH 30

static htnn_status check_exhaustive_options(const htnn_exhaustive_options *o)
{
    if (o->max_width == 0 || o->max_width > EXHAUSTIVE_MAX_WIDTH)
        return error_set(HTNN_EINVAL, "exhaustive options: max_width %zu not in 1..%d",
                         o->max_width, EXHAUSTIVE_MAX_WIDTH);
    if (!(o->reach_cost >= 0.0f) || o->reach_cost == INFINITY)
        return error_set(HTNN_EINVAL, "exhaustive options: reach_cost %g must be finite and "
                         ">= 0", (double)o->reach_cost);
    if (o->weighting < HTNN_SEARCH_WEIGHT_FLIP || o->weighting > HTNN_SEARCH_WEIGHT_GRADIENT)
        return error_set(HTNN_EINVAL, "exhaustive options: unknown weighting %d",
                         o->weighting);
    return HTNN_OK;
}

/* Index of the lowest set bit of k > 0: the entry step k of a Gray code
 * flips. */
static unsigned lowest_bit(uint32_t k)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctz(k);
#else
    unsigned b = 0;
    while (!(k & 1u)) {
        k >>= 1;
        b++;
    }
    return b;
#endif
}

/* The best candidate so far: flips relative to the current row. */
typedef struct best_row {
    uint32_t mask;
    double objective;
    unsigned distance;
} best_row;

static int better(double objective, unsigned distance, const best_row *best)
{
    double tol = 1e-6 * fabs(best->objective) + 1e-30;
    if (objective < best->objective - tol)
        return 1;
    return objective <= best->objective + tol && distance < best->distance;
}

/* Walks all rows of example i starting at the current row (in `row`,
 * with Z[d] row z) and returns the best as a flip mask. */
static best_row search_row(const search_layer *sl, search_state *state, size_t i,
                           const float *row, const float *z)
{
    search_scratch *s = &state->scratch;
    size_t out = sl->out;
    uint32_t mask = 0, steps = (uint32_t)1 << sl->in;
    unsigned distance = 0;
    double reach = 0.0;
    best_row best = {0, search_row_loss(sl, i, z), 0};
    for (size_t k = 0; k < out; k++)
        s->zd[k] = z[k];
    for (uint32_t g = 1; g < steps; g++) {
        unsigned bit = lowest_bit(g);
        uint32_t flag = (uint32_t)1 << bit;
        float t = (mask & flag) ? -row[bit] : row[bit]; /* value before this flip */
        double delta = search_delta(sl, t);
        const float *wtj = sl->wt + (size_t)bit * out;
        for (size_t k = 0; k < out; k++) {
            s->zd[k] += delta * wtj[k];
            s->cand[k] = (float)s->zd[k];
        }
        reach += search_reach_change(sl, i, bit, t);
        mask ^= flag;
        distance += (mask & flag) ? 1u : (unsigned)-1;
        double objective = search_row_loss(sl, i, s->cand) + reach;
        if (better(objective, distance, &best))
            best = (best_row){mask, objective, distance};
    }
    state->stats.evaluations += steps;
    return best;
}

/* Applies the chosen flips to the row and its Z[d] row. */
static void apply_mask(const search_layer *sl, uint32_t mask, float *row, float *z)
{
    for (size_t j = 0; j < sl->in; j++) {
        if (!(mask & ((uint32_t)1 << j)))
            continue;
        search_candidate(z, sl->wt + j * sl->out, search_delta(sl, row[j]), z, sl->out);
        row[j] = -row[j];
    }
}

static htnn_status exhaustive_set_targets(void *p, const htnn_layer_view *v, float *t, float *w)
{
    search_state *state = p;
    search_layer sl;
    htnn_status st = search_check_view(v, "exhaustive heuristic");
    if (st != HTNN_OK)
        return st;
    if (v->in_width > state->exhaustive.max_width)
        return error_set(HTNN_ELIMIT, "exhaustive heuristic: layer %zu has width %zu (target "
                         "units per example), above the width limit %zu: 2^%zu target rows "
                         "per example; raise htnn_exhaustive_options.max_width (at most %d) or "
                         "use hill climbing", v->layer - 1, v->in_width,
                         state->exhaustive.max_width, v->in_width, EXHAUSTIVE_MAX_WIDTH);
    if (v->grad_input == NULL && state->exhaustive.weighting == HTNN_SEARCH_WEIGHT_GRADIENT)
        return error_set(HTNN_EINVAL, "exhaustive heuristic: the view has no grad_input");
    size_t n = v->batch * v->in_width;
    for (size_t i = 0; i < n; i++)
        t[i] = loss_input(v->below_activation, v->input_z[i]) > 0.0f ? 1.0f : -1.0f;
    if ((st = search_prepare(&state->scratch, v, state->exhaustive.reach_cost, t, &sl)) !=
        HTNN_OK)
        return st;
    for (size_t i = 0; i < sl.m; i++) {
        float *row = t + i * sl.in, *z = state->scratch.zs + i * sl.out;
        best_row best = search_row(&sl, state, i, row, z);
        apply_mask(&sl, best.mask, row, z);
        state->stats.flips += best.distance;
        search_row_weights(&sl, &state->scratch, i, row, z, state->exhaustive.weighting,
                           w + i * sl.in);
    }
    state->stats.calls++;
    state->stats.rows += sl.m;
    return HTNN_OK;
}

htnn_status htnn_heuristic_create_exhaustive(const htnn_exhaustive_options *opts,
                                             htnn_heuristic **out)
{
    htnn_exhaustive_options o = HTNN_EXHAUSTIVE_OPTIONS_INIT;
    htnn_status st;
    if (out == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_create_exhaustive: out is NULL");
    if ((st = options_read(&o, sizeof o, opts, "exhaustive options")) != HTNN_OK ||
        (st = check_exhaustive_options(&o)) != HTNN_OK)
        return st;
    search_state *state = mem_calloc(1, sizeof *state);
    if (state == NULL)
        return error_set(HTNN_ENOMEM, "htnn_heuristic_create_exhaustive: out of memory");
    state->kind = 1;
    state->exhaustive = o;
    return search_handle_create(state, "exhaustive", exhaustive_set_targets, out);
}
