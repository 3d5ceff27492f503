/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * train.h - FTPROP-MB training: one batch at a time or fit over epochs.
 *
 * For each mini-batch: forward pass; hidden targets start at the hidden
 * outputs; then for d = L down to 1 the layer's loss gradient is computed on
 * (Z[d], T[d]), the heuristic sets T[d-1] from layer d, and the optimizer
 * updates W[d].  See doc/guide.md.
 *
 * Inputs are count x input_width float32 arrays (row-major) and int32 labels
 * in [0, class_count).  NaN/Inf inputs and out-of-range labels are rejected
 * with HTNN_ENUMERIC / HTNN_EINVAL before any weight changes.  If the loss
 * becomes NaN/Inf the call fails with HTNN_ENUMERIC before the batch
 * changes any weight.  If a heuristic fails in the middle of a batch, the
 * layers above the failing one have already been updated for that batch.
 *
 * Divergence.  htnn_net_train_batch checks the batch's loss before it
 * updates anything; it does not re-check the parameters after the update
 * (a pass over every parameter per batch), so an update that overflows
 * (a huge learning rate) leaves NaN/Inf or huge values in the net, which
 * a later call reports as HTNN_ENUMERIC when they reach the loss.  A
 * caller that wants to roll back keeps a copy (htnn_net_clone).
 * htnn_net_fit does this for you: see htnn_net_fit.
 *
 * Checkpoints.  htnn_net_fit can write its whole training state to a file
 * (htnn_fit_options.checkpoint_path) and continue from it later (resume),
 * with bit-identical results; see htnn_fit_options and doc/guide.md.
 */
#ifndef HTNN_TRAIN_H
#define HTNN_TRAIN_H

#include "common.h"
#include "heuristic.h"
#include "net.h"
#include "optimizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Progress report passed to the fit callback after every batch. */
typedef struct htnn_progress {
    size_t struct_size;     /**< sizeof(htnn_progress) of the library */
    size_t epoch;           /**< 0-based epoch */
    size_t epochs;          /**< total epochs of this fit */
    size_t batch;           /**< 0-based batch within the epoch */
    size_t batches;         /**< batches per epoch */
    double loss;            /**< mean training loss over the epoch so far */
    double accuracy;        /**< training accuracy over the epoch so far */
    int end_of_epoch;       /**< 1 on the last batch of an epoch */
    /** validation loss and accuracy at the end of an epoch when validation
     *  data was given, else NaN */
    double val_loss;
    double val_accuracy;    /**< see val_loss */
    double learning_rate;   /**< learning rate used in this epoch */
} htnn_progress;

/** Fit callback: return 0 to continue, non-zero to stop after this batch
 *  (htnn_net_fit then returns HTNN_OK with result->stopped = 1). */
typedef int (*htnn_progress_fn)(const htnn_progress *progress, void *user);

/** Options for htnn_net_fit; initialise with HTNN_FIT_OPTIONS_INIT. */
typedef struct htnn_fit_options {
    size_t struct_size;   /**< sizeof(htnn_fit_options) */
    size_t epochs;        /**< >= 1, default 10 */
    size_t batch_size;    /**< >= 1, default 100 */
    int shuffle;          /**< 1 (default): reshuffle with the net's RNG each epoch */
    htnn_progress_fn progress; /**< may be NULL */
    void *progress_user;  /**< passed to progress */
    const float *val_x;   /**< optional validation inputs (val_count x input_width) */
    const int32_t *val_labels; /**< optional validation labels */
    size_t val_count;     /**< 0: no validation */
    /** Since 0.2: file to write checkpoints to, NULL (default) for none.
     *  A checkpoint is a model file (htnn_net_load and `htnn eval` read it
     *  as the net it holds) with two optional sections: the optimizer's
     *  state (step count, moment buffers) and the fit's position (epoch,
     *  next batch, the epoch's example order and running totals, the net's
     *  RNG state, and a fingerprint of this fit: example count, input
     *  width, batch size, epochs, shuffle and a hash of x and labels).  It
     *  is written atomically, like htnn_net_save: a crash while writing
     *  leaves the previous checkpoint intact.  Writing one allocates (the
     *  serialised file); nothing else per batch does. */
    const char *checkpoint_path;
    /** Since 0.2: with checkpoint_path, write a checkpoint after every
     *  checkpoint_every batches of the fit (counted over all epochs); 0
     *  (default): after the last batch of every epoch.  Either way a
     *  checkpoint is also written when the fit ends, and when the progress
     *  callback stops it. Checkpoints are written after the progress
     *  callback returns, so they include any change the callback made. */
    size_t checkpoint_every;
    /** Since 0.2: 1 to continue from checkpoint_path if that file exists
     *  (a missing file starts a fresh fit; 0, the default, always starts
     *  fresh and overwrites it).  Create the net with the same architecture
     *  and the optimizer with the same kind as the interrupted fit, and
     *  pass the same data, heuristic and options: the fit then loads the
     *  checkpoint's parameters, optimizer state, RNG state and position
     *  into them and trains the remaining batches, giving bit-identical
     *  weights to an uninterrupted fit (same thread count; see
     *  doc/design.md on determinism).  The progress reports and the result
     *  continue the interrupted fit's (result->batches_run counts all of
     *  its batches).  Everything is checked before anything changes: a
     *  checkpoint of another architecture, output or optimizer kind, or of
     *  a fit with another fingerprint, is refused with HTNN_ESTATE, a
     *  corrupt one with HTNN_EFORMAT (a plain model file, without the
     *  sections, too).  The optimizer's hyper-parameters are the caller's
     *  (resuming with a lower learning rate after a divergence is allowed;
     *  the result then differs from the uninterrupted fit).  Not captured:
     *  a caller's own heuristic's state (the built-in heuristics keep none
     *  that affects training) and anything the progress callback keeps. */
    int resume;
    /** Since 0.3: sharded training data, for data-parallel fits
     *  (htnn_net_set_reducer) whose ranks each hold a part of the training
     *  set (htnn_data_load_idx_rows).  shard_total 0 (default): x and
     *  labels are the whole training set.  Otherwise the training set has
     *  shard_total examples and x and labels hold its `count` examples
     *  [shard_first, shard_first + count).  All ranks shuffle the
     *  shard_total examples identically (same seed) and cut the same global
     *  batches of batch_size, exactly as one process with the whole set
     *  would; each rank trains the examples of every batch that fall in its
     *  shard (so the ranks' shares vary from batch to batch; a share may be
     *  empty).  The results match a single-process fit as the unsharded
     *  data-parallel fit does (up to the order of float sums).  The ranks'
     *  shards must tile [0, shard_total) and every rank must pass shards
     *  (or every rank the whole set with shard_total 0): the fit checks
     *  this with two small sums at its start and fails on every rank with
     *  HTNN_EINVAL otherwise.  Without a reducer a shard must be the whole
     *  set.  Checkpoints of a sharded fit hold the global example order and
     *  a fingerprint of the whole training set (combined over the ranks),
     *  so every rank writes the same file, and a sharded fit resumes from
     *  it with any number of ranks (not an unsharded fit, nor the reverse:
     *  their data fingerprints differ).  A data-parallel fit with resume
     *  (sharded or not) fails on every rank with HTNN_ESTATE unless all
     *  ranks continue from the same point (each needs its copy of the
     *  checkpoint). */
    size_t shard_first;
    size_t shard_total;   /**< see shard_first */
} htnn_fit_options;

/** Default fit options: 10 epochs, batch 100, shuffled, no callback, no
 *  validation, no checkpoints, the whole training set. */
#define HTNN_FIT_OPTIONS_INIT \
    { sizeof(htnn_fit_options), 10, 100, 1, NULL, NULL, NULL, NULL, 0, NULL, 0, 0, 0, 0 }

/** Outcome of htnn_net_fit; set struct_size before the call. */
typedef struct htnn_fit_result {
    size_t struct_size;   /**< sizeof(htnn_fit_result) */
    size_t epochs_run;    /**< completed epochs */
    size_t batches_run;   /**< batches trained in total */
    int stopped;          /**< 1 if the progress callback stopped training */
    double loss;          /**< mean training loss of the last epoch */
    double accuracy;      /**< training accuracy of the last epoch */
    double val_loss;      /**< last validation loss, NaN without validation */
    double val_accuracy;  /**< last validation accuracy, NaN without validation */
} htnn_fit_result;

/** An htnn_fit_result ready to be filled by htnn_net_fit. */
#define HTNN_FIT_RESULT_INIT { sizeof(htnn_fit_result), 0, 0, 0, 0.0, 0.0, 0.0, 0.0 }

/** Outcome of one batch. */
typedef struct htnn_batch_result {
    size_t struct_size;   /**< sizeof(htnn_batch_result) */
    double loss;          /**< mean output loss over the batch (before the update) */
    size_t correct;       /**< correctly classified examples (before the update) */
} htnn_batch_result;

/** An htnn_batch_result ready to be filled by htnn_net_train_batch. */
#define HTNN_BATCH_RESULT_INIT { sizeof(htnn_batch_result), 0.0, 0 }

/** Trains one mini-batch of `count` examples with FTPROP-MB.  heuristic
 *  NULL means the built-in loss-driven heuristic.  result may be NULL. */
HTNN_API htnn_status htnn_net_train_batch(htnn_net *net, htnn_optimizer *opt,
                                          htnn_heuristic *heuristic,
                                          const float *x,
                                          const int32_t *labels, size_t count,
                                          htnn_batch_result *result);

/** Trains over epochs of mini-batches (the last batch of an epoch may be
 *  smaller).  Scratch memory is sized once before the first batch; nothing
 *  is allocated per batch.  opts and result may be NULL.
 *
 *  Divergence: if training diverges the fit stops with HTNN_ENUMERIC and
 *  restores the net's parameters (weights, biases, batch-norm running
 *  statistics), the optimizer's state (moments, step count, learning
 *  rate) and the net's RNG to the *last good state*: the latest snapshot
 *  point after which at least one batch trained with a finite loss, or
 *  the fit's start.  Snapshot points are the start of the fit, the end of
 *  every epoch and every checkpoint.  Divergence is a NaN/Inf training
 *  loss on any batch (checked before the batch updates anything), or a
 *  NaN/Inf parameter or optimizer value at a snapshot point (NaN weights
 *  of a hidden sign layer need not show in the loss at once).  result
 *  then describes the restored state (batches_run, epochs_run, loss of
 *  the last epoch completed before it), and with checkpoint_path the
 *  checkpoint file is rewritten to hold the restored state, so a fit
 *  with resume = 1 (with a lower learning rate, say) continues from it.
 *  The snapshots cost two copies of the parameters and optimizer state
 *  (plus the example order), taken at the snapshot points only.
 *
 *  A completed epoch counts in result->epochs_run even when the progress
 *  callback stops the fit on its last batch. */
HTNN_API htnn_status htnn_net_fit(htnn_net *net, htnn_optimizer *opt,
                                  htnn_heuristic *heuristic, const float *x,
                                  const int32_t *labels, size_t count,
                                  const htnn_fit_options *opts,
                                  htnn_fit_result *result);

/** Where a checkpoint stands; filled by htnn_checkpoint_get_info.  Since
 *  0.2. */
typedef struct htnn_checkpoint_info {
    size_t struct_size;   /**< set by the caller to sizeof(htnn_checkpoint_info) */
    size_t epoch;         /**< 0-based epoch a resumed fit continues in
                               (== epochs when the fit had finished) */
    size_t batch;         /**< next batch within that epoch (0: its start) */
    size_t batches;       /**< batches per epoch */
    size_t epochs;        /**< epochs of the fit */
    size_t batches_run;   /**< batches trained before the checkpoint */
    size_t count;         /**< training examples of the fit */
    size_t input_width;   /**< their width */
    size_t batch_size;    /**< batch size of the fit */
    int shuffle;          /**< shuffle option of the fit */
    int optimizer_kind;   /**< htnn_optimizer_kind */
    uint64_t optimizer_steps; /**< optimizer steps taken */
} htnn_checkpoint_info;

/** An htnn_checkpoint_info ready to be filled by htnn_checkpoint_get_info. */
#define HTNN_CHECKPOINT_INFO_INIT \
    { sizeof(htnn_checkpoint_info), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/** Reads the position of the checkpoint file at path (written by
 *  htnn_net_fit with checkpoint_path) after checking it as resuming would
 *  (HTNN_EIO, HTNN_EFORMAT for a corrupt file or a model file without
 *  checkpoint sections).  Since 0.2. */
HTNN_API htnn_status htnn_checkpoint_get_info(const char *path,
                                              htnn_checkpoint_info *out);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_TRAIN_H */
