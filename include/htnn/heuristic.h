/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * heuristic.h - target heuristics behind a versioned vtable, and the target
 * set (htnn_targets) they fill.
 *
 * During FTPROP-MB, for each layer d from the top down, the heuristic sees
 * layer d through a read-only htnn_layer_view and chooses the targets
 * T[d-1] of the layer below, one value per unit and example, each with a
 * non-negative weight:
 *   +1  the unit should be on (sign: +1, step: 1, qrelu: high)
 *   -1  the unit should be off (sign: -1, step: 0, qrelu: low)
 *    0  no target (its weight must be 0)
 * Layer d-1 is then trained on sum(weight * L(Z[d-1], T[d-1])) with its own
 * per-layer loss.  Real-valued layers below (identity, relu) ignore targets
 * and receive the plain back-propagated gradient G * g'(Z).
 *
 * Ownership: the caller owns a heuristic it creates and frees it with
 * htnn_heuristic_free, after the last training call that uses it.  A
 * user-defined heuristic's state pointer stays the caller's; ops->destroy
 * (if not NULL) is called with it by htnn_heuristic_free.
 */
#ifndef HTNN_HEURISTIC_H
#define HTNN_HEURISTIC_H

#include "common.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A target heuristic (opaque): built-in or caller-defined ops + state. */
typedef struct htnn_heuristic htnn_heuristic;
/** The target set of a net's last training batch (opaque, borrowed). */
typedef struct htnn_targets htnn_targets;

/** What a heuristic sees of layer d (all arrays batch-major, row-major).
 *  Every pointer is valid only during the set_targets call. */
typedef struct htnn_layer_view {
    size_t struct_size;    /**< sizeof(htnn_layer_view) of the library */
    size_t layer;          /**< index d of the layer above the targets (>= 1) */
    size_t batch;          /**< m, examples in the batch */
    size_t in_width;       /**< n[d-1]: width of the targets to set */
    size_t out_width;      /**< n[d] */
    const float *input;    /**< H[d-1], m x in_width: current outputs below */
    const float *input_z;  /**< Z[d-1], m x in_width: pre-activations below */
    const float *z;        /**< Z[d], m x out_width */
    /** W[d], out_width x in_width: before this batch's update (the
     *  default), after it with htnn_net_options.targets_after_update */
    const float *weights;
    const float *bias;     /**< b[d], out_width (zeros if no bias), as weights */
    const float *targets;  /**< T[d], m x out_width (+1 / -1 / 0) */
    /** weights of T[d] as set by the heuristic from the layer above (layer
     *  d's weight_targets option is applied on top of them), m x out_width;
     *  for the output layer 1/m (the batch mean) */
    const float *target_weights;
    const float *grad_z;     /**< dL[d]/dZ[d], m x out_width */
    const float *grad_input; /**< G = dL[d]/dH[d-1], m x in_width */
    int activation;          /**< htnn_activation of layer d */
    int loss;                /**< htnn_loss of layer d */
    int below_activation;    /**< htnn_activation of layer d-1 */
    int below_qrelu_bits;    /**< qrelu bits of layer d-1 */
} htnn_layer_view;

/** A heuristic's operations.  Callers defining their own heuristic fill
 *  this with struct_size = sizeof(htnn_heuristic_ops); the library copies it
 *  at htnn_heuristic_create. */
typedef struct htnn_heuristic_ops {
    size_t struct_size; /**< sizeof(htnn_heuristic_ops) */
    const char *name;   /**< short name for messages; copied */
    /** Writes view->batch x view->in_width targets (+1, -1 or 0) and
     *  weights (>= 0, finite) for the layer below.  The arrays arrive
     *  holding the current outputs as +-1 targets with weight 1.  Return
     *  HTNN_OK, or an error status to stop training (reported as
     *  HTNN_ECALLBACK unless it is one of the library's codes).  Targets
     *  other than -1, 0, +1 or weights that are negative or not finite
     *  stop training with HTNN_ECALLBACK. */
    htnn_status (*set_targets)(void *state, const htnn_layer_view *view,
                               float *targets, float *weights);
    /** Releases `state`; called once by htnn_heuristic_free.  May be NULL. */
    void (*destroy)(void *state);
} htnn_heuristic_ops;

/** Wraps caller-defined ops and state in a heuristic handle. */
HTNN_API htnn_status htnn_heuristic_create(const htnn_heuristic_ops *ops,
                                           void *state,
                                           htnn_heuristic **out);

/** The built-in loss-driven heuristic: T[d-1] = sign(-G), weight = |G|
 *  (entries with G == 0 get target 0 and weight 0). */
HTNN_API htnn_status htnn_heuristic_create_loss(htnn_heuristic **out);

/** Frees a heuristic (calling ops->destroy for user heuristics); NULL is a
 *  no-op. */
HTNN_API void htnn_heuristic_free(htnn_heuristic *heuristic);

/** The heuristic's name ("loss" for the built-in); "" for NULL. */
HTNN_API const char *htnn_heuristic_name(const htnn_heuristic *heuristic);

/** Runs a heuristic on a view, as the trainer does (for tests and for
 *  heuristics that delegate to another one). */
HTNN_API htnn_status htnn_heuristic_set_targets(htnn_heuristic *heuristic,
                                                const htnn_layer_view *view,
                                                float *targets,
                                                float *weights);

/** The target set of the net's last training batch (borrowed; valid until
 *  the next training call on the net or htnn_net_free), or NULL before the
 *  first batch. */
HTNN_API const htnn_targets *htnn_net_targets(const htnn_net *net);

/** Number of hidden target layers (layer count - 1). */
HTNN_API size_t htnn_targets_layer_count(const htnn_targets *targets);

/** Examples in the batch the targets belong to. */
HTNN_API size_t htnn_targets_batch(const htnn_targets *targets);

/** Targets and weights (as the heuristic set them) of hidden layer `layer`
 *  (0-based: the output of net layer `layer`), each rows x cols (batch x
 *  layer width).  Any out-pointer may be NULL. */
HTNN_API htnn_status htnn_targets_get(const htnn_targets *targets,
                                      size_t layer, const float **values,
                                      const float **weights, size_t *rows,
                                      size_t *cols);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_HEURISTIC_H */
