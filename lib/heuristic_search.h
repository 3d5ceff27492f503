/* Internal: what the combinatorial heuristics (hill climbing, exhaustive)
 * share: the objective J of one target row for the layer below (layer d's
 * loss through W[d] plus the reachability cost), the rank-one effect of a
 * flip, the per-handle scratch and search statistics, and the target
 * weights written at the end.  See htnn_hill_options in heuristic.h.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_HEURISTIC_SEARCH_H
#define HTNN_LIB_HEURISTIC_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/heuristic.h"

/* Buffers a handle keeps between calls; they only grow. */
typedef struct search_scratch {
    float *wt;      /* in x out: W[d] transposed, so column j is contiguous */
    float *zs;      /* m x out: Z[d] of each row's starting targets */
    float *vals;    /* m x in: values of the starting targets */
    float *row;     /* in: the row being searched (+1 / -1) */
    float *gain;    /* in: change of J per single flip */
    float *cand;    /* out: a candidate row of Z[d] */
    double *zd;     /* out: Z[d] row accumulated in double (exhaustive) */
    size_t *order;  /* in: flip candidates, best first */
    size_t cap_wt, cap_zs, cap_vals, cap_row, cap_gain, cap_cand, cap_zd, cap_order;
} search_scratch;

/* A view prepared for searching. */
typedef struct search_layer {
    const htnn_layer_view *v;
    size_t m, in, out;
    float lo, hi;       /* value of target -1 / +1 in the layer below */
    int act;            /* layer d's activation (its loss input) */
    int loss;           /* layer d's per-layer loss */
    float reach_cost;
    const float *wt;    /* in x out */
    const float *zs;    /* m x out */
} search_layer;

/* State of a built-in combinatorial heuristic. */
typedef struct search_state {
    int kind;            /* 0 hill, 1 exhaustive */
    htnn_hill_options hill;
    htnn_exhaustive_options exhaustive;
    search_scratch scratch;
    htnn_search_stats stats;
} search_state;

/* Checks that a view has what the combinatorial heuristics read. */
htnn_status search_check_view(const htnn_layer_view *v, const char *who);

/* Sizes the scratch for the view (allocating only when it grows), fills
 * W^T and Z[d] of the starting rows `start` (m x in, +1 / -1). */
htnn_status search_prepare(search_scratch *s, const htnn_layer_view *v,
                           float reach_cost, const float *start,
                           search_layer *out);

/* The current output of entry (i, j) of the layer below as +1 / -1. */
float search_current(const search_layer *sl, size_t i, size_t j);

/* v(-t) - v(t): the change of the unit's value when target t flips. */
float search_delta(const search_layer *sl, float t);

/* Change of the reachability cost when entry (i, j) flips away from t. */
float search_reach_change(const search_layer *sl, size_t i, size_t j,
                          float t);

/* Reachability cost of a whole row. */
double search_reach_row(const search_layer *sl, size_t i, const float *row);

/* Layer d's loss of example i for a Z[d] row z. */
double search_row_loss(const search_layer *sl, size_t i, const float *z);

/* cand = z + delta * wtj over out entries. */
void search_candidate(const float *z, const float *wtj, float delta,
                      float *cand, size_t out);

/* Writes the weights of row i's chosen targets `row` (with its Z[d] row z)
 * into w, as `weighting` says.  Uses s->cand. */
void search_row_weights(const search_layer *sl, search_scratch *s, size_t i,
                        const float *row, const float *z, int weighting,
                        float *w);

void search_scratch_free(search_scratch *s);

/* Creates a handle for a built-in combinatorial heuristic owning `state`
 * (freed by htnn_heuristic_free, or here on failure). */
htnn_status search_handle_create(search_state *state, const char *name,
                                 htnn_status (*set)(void *,
                                                    const htnn_layer_view *,
                                                    float *, float *),
                                 htnn_heuristic **out);

#endif
