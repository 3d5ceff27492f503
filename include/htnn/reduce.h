/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * reduce.h - data-parallel training: a generic reduction hook (since 0.2).
 *
 * The core library knows no communication library.  A caller who trains
 * one net on several processes (ranks) gives each rank's net a reducer: a
 * small table of functions that sum float arrays over all ranks (an
 * all-reduce).  libhtnn-mpi (htnn_mpi.h) provides one built on MPI; any
 * other transport can provide its own.
 *
 * With a reducer, every rank runs the same training calls on its own rows
 * of each global batch, and one step of FTPROP-MB becomes:
 *   - forward pass on the local rows; a batch-norm layer in training mode
 *     sums its per-channel sums and squared deviations over all ranks, so it
 *     normalises with the global batch's mean and variance;
 *   - the output loss gradient is scaled by 1 / (global rows), so each
 *     rank's parameter gradients are its share of the global batch mean;
 *   - the summed output loss and correct count are reduced (progress, and
 *     the divergence check, which must agree on every rank);
 *   - per layer, from the top, the weight and bias gradients are summed over
 *     all ranks before the optimizer step, so every rank applies the same
 *     update and the nets stay identical.  Targets are not reduced: each rank
 *     sets the hidden targets of its own rows.
 *   - with reduce_scatter_sum and allgather, htnn_net_fit shards the
 *     optimizer step instead: each rank receives the summed weight gradient
 *     of its block of every weight matrix only, updates that block (and its
 *     optimizer moments), and the updated weights are all-gathered.  The
 *     same bytes travel as with an all-reduce, but each rank does 1/ranks of
 *     the optimizer's work.  The moments are all-gathered too (so every
 *     rank's optimizer holds the whole state) whenever the fit takes a
 *     snapshot or writes a checkpoint, and when it returns.
 *     In such a sharded fit (every rank with the whole set, single-threaded
 *     nets), a dense layer whose global batch is small next to it --
 *     P x ceil(B/P) x (inputs + units) < its weights -- sends its gradient
 *     as the factors it is a sum of instead: every rank's rows of the
 *     layer's input and dZ are all-gathered (allgather on P x ceil(B/P)
 *     rows, zero-padded), and each rank multiplies out the summed gradient
 *     of the units holding its block.  The same sum, fewer values moved.
 * The global batch is then trained exactly as one process would train it,
 * up to the order of floating-point summation (see doc/distributed.md for
 * the measured differences).
 *
 * Every rank must make the same sequence of training calls (the reductions
 * are collective).  A heuristic of the caller's that fails on some ranks and
 * not on others leaves the other ranks waiting in a reduction: with a
 * reducer, make a failing heuristic fail everywhere (or abort the job).
 */
#ifndef HTNN_REDUCE_H
#define HTNN_REDUCE_H

#include "common.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Sums arrays over all ranks.  Versioned by struct_size (fields are only
 *  appended); initialise with HTNN_REDUCER_INIT.  The library copies the
 *  struct; `user` must stay valid while the net uses the reducer. */
typedef struct htnn_reducer {
    size_t struct_size;  /**< sizeof(htnn_reducer) */
    int ranks;           /**< number of ranks, >= 1 */
    int rank;            /**< this rank, 0 .. ranks-1 */
    /** Required: replaces values[0..count) by their element-wise sum over
     *  all ranks, the same result on every rank (bit for bit: the ranks'
     *  nets stay identical only if they apply identical gradients).
     *  Blocking; returns HTNN_OK or an error status (training then fails
     *  with it). */
    htnn_status (*allreduce_sum)(float *values, size_t count, void *user);
    /** Optional (NULL: allreduce_sum is used): starts the same sum without
     *  waiting for it; `values` must not be touched until wait_all returns.
     *  The library starts at most a few sums per layer and batch, each on a
     *  distinct array, and then calls wait_all once. */
    htnn_status (*start_sum)(float *values, size_t count, void *user);
    /** Required with start_sum: waits for every sum started since the last
     *  wait_all. */
    htnn_status (*wait_all)(void *user);
    void *user;          /**< passed to the functions */
    /** Optional, with allgather (NULL: every rank updates every
     *  parameter).  The blocks of an array of `count` values: rank r owns
     *  [floor(r*count/ranks), floor((r+1)*count/ranks)).  reduce_scatter_sum
     *  sums values[0..count) over the ranks like allreduce_sum, but only
     *  this rank's block need hold the sum afterwards (the rest may hold
     *  anything). */
    htnn_status (*reduce_scatter_sum)(float *values, size_t count, void *user);
    /** Optional, with reduce_scatter_sum: copies every rank's block of
     *  values[0..count) into the same place on every other rank. */
    htnn_status (*allgather)(float *values, size_t count, void *user);
} htnn_reducer;

/** A single-process reducer shape with no functions (fill them in). */
#define HTNN_REDUCER_INIT { sizeof(htnn_reducer), 1, 0, NULL, NULL, NULL, NULL, NULL, NULL }

/** Makes `net` train data-parallel with `reducer` (copied), or alone again
 *  with NULL.  Affects htnn_net_train_batch and htnn_net_fit; prediction,
 *  evaluation and htnn_net_ftprop stay local.
 *
 *  htnn_net_train_batch: `count` is this rank's rows (>= 1 on every
 *  rank); the global row count is reduced first (one more small sum).
 *  htnn_net_fit: every rank passes the *whole* training set (the same
 *  arrays, or copies of the same data) and the same options; all ranks
 *  shuffle identically (same seed), and rank r trains rows
 *  [floor(r*B/P), floor((r+1)*B/P)) of every global batch of B rows
 *  (P = ranks), so the batches are those of a single-process fit with
 *  batch size B.  Or (since 0.3) every rank passes only its shard of the
 *  training set (htnn_fit_options.shard_first, shard_total) and trains
 *  the examples of every global batch that fall in it: the same batches.
 *  A rank whose share of a batch is empty still takes part in the
 *  reductions.  Give each rank its own checkpoint_path
 *  (they hold the same state).  htnn_net_clone does not copy the reducer.
 *
 *  HTNN_EINVAL: net NULL, struct_size too small, ranks < 1, rank out of
 *  range, allreduce_sum NULL, or start_sum without wait_all;
 *  HTNN_EUNSUPPORTED: struct_size larger than this library's. */
HTNN_API htnn_status htnn_net_set_reducer(htnn_net *net, const htnn_reducer *reducer);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_REDUCE_H */
