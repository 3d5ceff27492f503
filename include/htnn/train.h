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
} htnn_fit_options;

/** Default fit options: 10 epochs, batch 100, shuffled, no callback, no
 *  validation. */
#define HTNN_FIT_OPTIONS_INIT \
    { sizeof(htnn_fit_options), 10, 100, 1, NULL, NULL, NULL, NULL, 0 }

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
 *  is allocated per batch.  opts and result may be NULL. */
HTNN_API htnn_status htnn_net_fit(htnn_net *net, htnn_optimizer *opt,
                                  htnn_heuristic *heuristic, const float *x,
                                  const int32_t *labels, size_t count,
                                  const htnn_fit_options *opts,
                                  htnn_fit_result *result);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_TRAIN_H */
