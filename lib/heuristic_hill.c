/* The hill-climbing heuristic: per example, start from the current outputs
 * (or the loss-driven targets) of the layer below and flip the target
 * entries that lower layer d's objective J most, re-checking each flip, for
 * a budget of sweeps (see htnn_hill_options in heuristic.h).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "heuristic_search.h"
#include "losses.h"
#include "options.h"

static htnn_status check_hill_options(const htnn_hill_options *o)
{
    if (o->max_sweeps == 0 || o->flips_per_sweep == 0)
        return error_set(HTNN_EINVAL, "hill options: max_sweeps %zu and flips_per_sweep %zu "
                         "must be >= 1", o->max_sweeps, o->flips_per_sweep);
    if (o->start != HTNN_HILL_START_OUTPUTS && o->start != HTNN_HILL_START_LOSS)
        return error_set(HTNN_EINVAL, "hill options: unknown start %d", o->start);
    if (!(o->reach_cost >= 0.0f) || o->reach_cost == INFINITY)
        return error_set(HTNN_EINVAL, "hill options: reach_cost %g must be finite and >= 0",
                         (double)o->reach_cost);
    if (o->weighting < HTNN_SEARCH_WEIGHT_FLIP || o->weighting > HTNN_SEARCH_WEIGHT_GRADIENT)
        return error_set(HTNN_EINVAL, "hill options: unknown weighting %d", o->weighting);
    return HTNN_OK;
}

/* The starting targets of every row, written into t (m x in). */
static void start_rows(const htnn_layer_view *v, int start, float *t)
{
    size_t n = v->batch * v->in_width;
    for (size_t i = 0; i < n; i++) {
        float current = loss_input(v->below_activation, v->input_z[i]) > 0.0f ? 1.0f : -1.0f;
        float g = start == HTNN_HILL_START_LOSS ? v->grad_input[i] : 0.0f;
        t[i] = g < 0.0f ? 1.0f : (g > 0.0f ? -1.0f : current);
    }
}

/* Change of J when entry j of the row flips, with the candidate Z[d] row
 * left in s->cand; *loss receives the candidate's loss. */
static double flip_gain(const search_layer *sl, search_scratch *s, size_t i, const float *row,
                        const float *z, size_t j, double current, double *loss)
{
    search_candidate(z, sl->wt + j * sl->out, search_delta(sl, row[j]), s->cand, sl->out);
    *loss = search_row_loss(sl, i, s->cand);
    return *loss - current + (double)search_reach_change(sl, i, j, row[j]);
}

/* Up to k entries with gain below -tol, best first, into order; returns
 * how many.  O(in k): k is small in practice. */
static size_t best_flips(const float *gain, size_t in, size_t k, float tol, size_t *order)
{
    size_t count = 0;
    for (size_t j = 0; j < in; j++) {
        if (!(gain[j] < -tol) || (count == k && !(gain[j] < gain[order[k - 1]])))
            continue;
        size_t pos = count < k ? count++ : k - 1; /* a full list drops its worst */
        while (pos > 0 && gain[order[pos - 1]] > gain[j]) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = j;
    }
    return count;
}

static float tolerance(double loss) { return (float)(4e-7 * fabs(loss)) + 1e-30f; }

/* One sweep over row i: score every flip, then apply the best ones that
 * still lower J.  Returns the number of flips applied. */
static size_t sweep(const search_layer *sl, search_state *state, size_t i, float *row, float *z,
                    double *current)
{
    search_scratch *s = &state->scratch;
    double loss;
    for (size_t j = 0; j < sl->in; j++)
        s->gain[j] = (float)flip_gain(sl, s, i, row, z, j, *current, &loss);
    state->stats.evaluations += sl->in;
    state->stats.sweeps++;
    size_t count = best_flips(s->gain, sl->in, state->hill.flips_per_sweep,
                              tolerance(*current), s->order);
    size_t applied = 0;
    for (size_t c = 0; c < count; c++) {
        size_t j = s->order[c];
        double gain = flip_gain(sl, s, i, row, z, j, *current, &loss);
        state->stats.evaluations += c > 0;
        if (!(gain < -(double)tolerance(*current)))
            continue;
        memcpy(z, s->cand, sl->out * sizeof *z);
        *current = loss;
        row[j] = -row[j];
        applied++;
    }
    return applied;
}

static void climb_row(const search_layer *sl, search_state *state, size_t i, float *row,
                      float *w)
{
    float *z = state->scratch.zs + i * sl->out;
    double current = search_row_loss(sl, i, z);
    for (size_t k = 0; k < state->hill.max_sweeps; k++) {
        size_t applied = sweep(sl, state, i, row, z, &current);
        state->stats.flips += applied;
        if (applied == 0)
            break;
    }
    search_row_weights(sl, &state->scratch, i, row, z, state->hill.weighting, w);
}

static htnn_status hill_set_targets(void *p, const htnn_layer_view *v, float *t, float *w)
{
    search_state *state = p;
    search_layer sl;
    htnn_status st = search_check_view(v, "hill heuristic");
    if (st != HTNN_OK)
        return st;
    if (v->grad_input == NULL && (state->hill.start == HTNN_HILL_START_LOSS ||
                                  state->hill.weighting == HTNN_SEARCH_WEIGHT_GRADIENT))
        return error_set(HTNN_EINVAL, "hill heuristic: the view has no grad_input");
    start_rows(v, state->hill.start, t);
    if ((st = search_prepare(&state->scratch, v, state->hill.reach_cost, t, &sl)) != HTNN_OK)
        return st;
    for (size_t i = 0; i < sl.m; i++)
        climb_row(&sl, state, i, t + i * sl.in, w + i * sl.in);
    state->stats.calls++;
    state->stats.rows += sl.m;
    return HTNN_OK;
}

htnn_status htnn_heuristic_create_hill(const htnn_hill_options *opts, htnn_heuristic **out)
{
    htnn_hill_options o = HTNN_HILL_OPTIONS_INIT;
    htnn_status st;
    if (out == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_create_hill: out is NULL");
    if ((st = options_read(&o, sizeof o, opts, "hill options")) != HTNN_OK ||
        (st = check_hill_options(&o)) != HTNN_OK)
        return st;
    search_state *state = mem_calloc(1, sizeof *state);
    if (state == NULL)
        return error_set(HTNN_ENOMEM, "htnn_heuristic_create_hill: out of memory");
    state->kind = 0;
    state->hill = o;
    return search_handle_create(state, "hill", hill_set_targets, out);
}
