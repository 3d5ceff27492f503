/* Internal: checkpoint files of htnn_net_fit (doc/file-format.md, section
 * "Checkpoints"): a model file plus two optional sections, the optimizer's
 * state and the fit's position.  Also the fit's position itself, which the
 * fit loop (train.c), the checkpoints and the divergence snapshots
 * (snapshot.c) share.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_CHECKPOINT_H
#define HTNN_LIB_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/train.h"

/* Where a fit stands between two batches. */
typedef struct fit_position {
    size_t epoch;          /* epoch of the next batch (== epochs: finished) */
    size_t batch;          /* next batch in it; 0: the epoch has not started
                              (its learning rate and shuffle are still due) */
    double loss_sum;       /* summed loss of the epoch's batches so far */
    size_t correct, seen;  /* their correct predictions and examples */
    htnn_fit_result result; /* what htnn_net_fit reports so far */
} fit_position;

/* What a checkpoint must have been written by to be resumed. */
typedef struct fit_fingerprint {
    uint64_t count, width, batch_size, epochs;
    uint32_t shuffle;
    uint64_t data_hash;    /* of x's bit patterns and the labels */
} fit_fingerprint;

/* The fingerprint of a fit (hashing x and labels: one pass over them).
 * count: the examples x holds.  A sharded fit (o->shard_total > 0) records
 * shard_total examples and only this shard's part of the data hash: the
 * fit sums the parts over the ranks (net_reduce_u64) into data_hash. */
void fit_fingerprint_init(fit_fingerprint *fp, const float *x, const int32_t *labels,
                          size_t count, size_t width, const htnn_fit_options *o);

/* Batches per epoch of the fit. */
size_t fit_batches(const fit_fingerprint *fp);

/* Writes a checkpoint of the net, the optimizer (bound to the net) and the
 * fit at `pos` to path, atomically.  order: the epoch's example order
 * (fp->count entries; ignored without shuffling). */
htnn_status checkpoint_write(const char *path, const htnn_net *net, htnn_optimizer *opt,
                             const fit_fingerprint *fp, const fit_position *pos,
                             const size_t *order);

/* If path exists, checks it against the net, the optimizer (bound to the
 * net) and the fingerprint, then loads its parameters, optimizer state,
 * RNG state, position and example order into net, opt, *pos and order
 * (fp->count entries).  A missing file changes nothing (a fresh fit);
 * neither does a failure. */
htnn_status checkpoint_resume(const char *path, htnn_net *net, htnn_optimizer *opt,
                              const fit_fingerprint *fp, fit_position *pos, size_t *order);

#endif
