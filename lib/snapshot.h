/* Internal: the state training changes (every layer's trained arrays, the
 * optimizer's state, the net's RNG), copied between nets and kept in
 * memory so that htnn_net_fit can return to its last good state when
 * training diverges (train.h, doc/robustness.md).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_SNAPSHOT_H
#define HTNN_LIB_SNAPSHOT_H

#include "checkpoint.h"
#include "net_internal.h"

/* Floats of every layer's trained arrays: weights, biases and batch
 * norm's running statistics. */
size_t net_trained_count(const htnn_net *net);

/* Copies the trained arrays of src into dst, which has the same
 * architecture. */
void net_trained_copy(htnn_net *dst, const htnn_net *src);

/* A copy of the training state at one point of a fit. */
typedef struct fit_snapshot {
    float *values;      /* the net's trained arrays, then the optimizer's state */
    size_t *order;      /* the example order (n_order entries) */
    rng rng;
    uint64_t steps;
    float lr;
    fit_position pos;
} fit_snapshot;

/* Two snapshots: the last good one, and one taken since and not yet
 * followed by a batch that trained with a finite loss. */
typedef struct fit_guard {
    fit_snapshot slot[2];
    size_t n_net, n_opt, n_order;
    int good;           /* slot of the last good snapshot (if valid) */
    int valid;          /* a good snapshot exists */
    int pending;        /* the other slot holds a snapshot not yet confirmed */
} fit_guard;

/* Allocates both snapshots for the net and its bound optimizer; n_order:
 * entries of the example order to keep (0 without shuffling). */
htnn_status guard_init(fit_guard *g, const htnn_net *net, htnn_optimizer *opt,
                       size_t n_order);

void guard_free(fit_guard *g);

/* Takes a snapshot (pending until guard_confirm).  HTNN_ENUMERIC, without
 * taking it, if a parameter or optimizer value is NaN or infinite. */
htnn_status guard_take(fit_guard *g, const htnn_net *net, htnn_optimizer *opt,
                       const fit_position *pos, const size_t *order);

/* guard_take's check without the snapshot, where no batch follows (the
 * fit's end) and the snapshot could never be restored. */
htnn_status guard_check(const htnn_net *net, htnn_optimizer *opt, const fit_position *pos);

/* A batch trained with a finite loss since the last guard_take: that
 * snapshot becomes the last good one. */
void guard_confirm(fit_guard *g);

/* Restores the last good snapshot into net, opt, *pos and order. */
void guard_restore(const fit_guard *g, htnn_net *net, htnn_optimizer *opt,
                   fit_position *pos, size_t *order);

#endif
