/* Internal: the heuristic handle.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_HEURISTIC_INTERNAL_H
#define HTNN_LIB_HEURISTIC_INTERNAL_H

#include "htnn/heuristic.h"

struct htnn_heuristic {
    htnn_heuristic_ops ops;
    void *state;
    char name[32];
    /* 1 when set_targets overwrites every entry, so the trainer can skip
     * pre-filling the arrays with the current outputs. */
    int writes_all;
    /* Optional (the built-in search heuristics): sizes the heuristic's
     * scratch for `rows` examples on a dense layer of in x out before a
     * batch starts, so that it cannot run out of memory half-way. */
    htnn_status (*reserve)(void *state, size_t rows, size_t in, size_t out);
};

/* The built-in loss-driven heuristic, used when the caller passes NULL. */
const htnn_heuristic *heuristic_builtin_loss(void);

/* 1 for the loss-driven heuristic (built in, or from
 * htnn_heuristic_create_loss): its targets are elementwise in G, so the
 * trainer may compute them in slices on its own threads. */
int heuristic_is_loss(const htnn_heuristic *h);

/* The loss-driven targets of n entries of G: t = -sign(g), w = |g|. */
void heuristic_loss_targets(const float *g, float *t, float *w, size_t n);

/* h->reserve, when the heuristic has one. */
htnn_status heuristic_reserve(const htnn_heuristic *h, size_t rows, size_t in, size_t out);

/* Runs h->ops.set_targets and maps a foreign status to HTNN_ECALLBACK. */
htnn_status heuristic_run(const htnn_heuristic *h, const htnn_layer_view *view,
                          float *targets, float *weights);

/* A caller's heuristic must give targets in {-1, 0, +1} with finite,
 * non-negative weights (n entries for layer d-1), or the layer below would
 * be trained on garbage: HTNN_ECALLBACK naming the first bad entry. */
htnn_status heuristic_check_targets(const htnn_heuristic *h, size_t d, const float *t,
                                    const float *w, size_t n);

#endif
