/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * optimizer.h - SGD (momentum, Nesterov) and Adam with weight decay and a
 * learning-rate schedule.
 *
 * An optimizer owns its per-parameter state (momentum, Adam moments).  It
 * keeps state for one net at a time: the first training call with a net
 * sizes the state once; using it with another net (or after layers were
 * added) resets the state.  The caller owns the optimizer and frees it with
 * htnn_optimizer_free after the last training call that uses it.
 */
#ifndef HTNN_OPTIMIZER_H
#define HTNN_OPTIMIZER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An optimizer (opaque) with its per-parameter state. */
typedef struct htnn_optimizer htnn_optimizer;

/** Optimizer kinds.  Numbers are fixed. */
typedef enum htnn_optimizer_kind {
    HTNN_OPT_SGD = 0, /**< w -= lr * (g or momentum buffer) */
    HTNN_OPT_ADAM = 1 /**< Adam (Kingma & Ba) with bias correction */
} htnn_optimizer_kind;

/** Learning-rate schedules, applied per epoch.  Numbers are fixed. */
typedef enum htnn_schedule {
    HTNN_SCHEDULE_CONSTANT = 0, /**< lr */
    HTNN_SCHEDULE_STEP = 1,     /**< lr * gamma^floor(epoch / step_epochs) */
    /** min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2 */
    HTNN_SCHEDULE_COSINE = 2
} htnn_schedule;

/** Options for htnn_optimizer_create; initialise with
 *  HTNN_OPTIMIZER_OPTIONS_INIT (Adam, lr 1e-3, no decay, constant lr). */
typedef struct htnn_optimizer_options {
    size_t struct_size;      /**< sizeof(htnn_optimizer_options) */
    int kind;                /**< htnn_optimizer_kind */
    float learning_rate;     /**< > 0 */
    float momentum;          /**< SGD momentum in [0, 1) */
    int nesterov;            /**< SGD: Nesterov momentum (needs momentum > 0) */
    float beta1;             /**< Adam, in [0, 1) */
    float beta2;             /**< Adam, in [0, 1) */
    float epsilon;           /**< Adam, > 0 */
    /** L2 weight decay added to the gradient of weights (not biases), >= 0. */
    float weight_decay;
    int schedule;            /**< htnn_schedule */
    size_t step_epochs;      /**< STEP: epochs between decays (>= 1) */
    float step_gamma;        /**< STEP: decay factor in (0, 1] */
    /** COSINE: length of the cosine in epochs; 0 = the epochs of the
     *  htnn_net_fit call. */
    size_t cosine_epochs;
    float min_learning_rate; /**< COSINE: final learning rate, >= 0 */
} htnn_optimizer_options;

/** Default optimizer options: Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8. */
#define HTNN_OPTIMIZER_OPTIONS_INIT                                          \
    { sizeof(htnn_optimizer_options), HTNN_OPT_ADAM, 1e-3f, 0.0f, 0, 0.9f,   \
      0.999f, 1e-8f, 0.0f, HTNN_SCHEDULE_CONSTANT, 1, 0.1f, 0, 0.0f }

/** Creates an optimizer; opts may be NULL for the defaults. */
HTNN_API htnn_status htnn_optimizer_create(const htnn_optimizer_options *opts,
                                           htnn_optimizer **out);

/** Frees an optimizer and its state; NULL is a no-op. */
HTNN_API void htnn_optimizer_free(htnn_optimizer *opt);

/** Forgets all per-parameter state and the step count. */
HTNN_API htnn_status htnn_optimizer_reset(htnn_optimizer *opt);

/** Tells the schedule which epoch (0-based) of how many is running.
 *  htnn_net_fit calls this itself; callers of htnn_net_train_batch may. */
HTNN_API htnn_status htnn_optimizer_set_epoch(htnn_optimizer *opt,
                                              size_t epoch,
                                              size_t total_epochs);

/** Learning rate the next step will use; negative for NULL. */
HTNN_API float htnn_optimizer_learning_rate(const htnn_optimizer *opt);

/** Number of update steps taken since creation or reset. */
HTNN_API uint64_t htnn_optimizer_steps(const htnn_optimizer *opt);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_OPTIMIZER_H */
