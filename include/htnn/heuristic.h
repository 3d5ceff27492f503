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
 * per-layer loss.  Real-valued layers below (identity, relu) take no
 * targets: the heuristic is not called for them (since 0.2; their target
 * arrays keep whatever they held) and they receive the plain
 * back-propagated gradient G * g'(Z).
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
     *  default), after it with htnn_net_options.targets_after_update;
     *  NULL when layer d is not dense (conv2d, max-pool, batch norm), whose
     *  targets below can only come from grad_input */
    const float *weights;
    const float *bias;     /**< b[d], out_width (zeros if no bias), as weights; NULL as weights */
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

/** How the combinatorial heuristics (hill climbing, exhaustive) weight the
 *  targets they choose.  Numbers are fixed. */
typedef enum htnn_search_weighting {
    /** |change of layer d's loss if the entry were flipped| divided by the
     *  change of the unit's value (2 for sign units): the finite-difference
     *  analogue of |G|, so the scale matches the loss-driven heuristic's;
     *  entries whose flip would not change the loss get weight 0 (default) */
    HTNN_SEARCH_WEIGHT_FLIP = 0,
    HTNN_SEARCH_WEIGHT_UNIT = 1,    /**< every target weight 1 */
    HTNN_SEARCH_WEIGHT_GRADIENT = 2 /**< |G|, as the loss-driven heuristic */
} htnn_search_weighting;

/** Where hill climbing starts.  Numbers are fixed. */
typedef enum htnn_hill_start {
    HTNN_HILL_START_OUTPUTS = 0, /**< the current outputs of layer d-1 (default) */
    /** the loss-driven targets sign(-G) (the current output where G == 0) */
    HTNN_HILL_START_LOSS = 1
} htnn_hill_start;

/** Options of the hill-climbing heuristic; initialise with
 *  HTNN_HILL_OPTIONS_INIT.
 *
 *  The combinatorial heuristics search, per example (row) i, the target row
 *  T[d-1][i] that minimises layer d's loss with W[d] and b[d] fixed,
 *      J(row) = L[d](W[d] v(row) + b[d], T[d][i]) + reach_cost * R(row),
 *  where v(row) is the value each target stands for in the layer below
 *  (+-1 for sign units, 1 / 0 for step, qrelu and relu units) and
 *  R(row) = sum over entries differing from the unit's current output of
 *  |Z[d-1]| (the unit's margin, at 2z - 1 for qrelu): the cost of asking a
 *  unit to move away from what it produces now.  L[d] is layer d's
 *  per-layer loss towards T[d] weighted by the target weights, except for a
 *  softmax output layer (a real-valued layer whose target row is one-hot:
 *  +1 at the label, -1 elsewhere), which is scored by the softmax
 *  cross-entropy against the label, weighted by the label entry's weight.
 *  htnn_layer_view_loss evaluates J.  Flipping entry j of a row changes the
 *  row's Z[d] by (v(-t) - v(t)) W[d][:, j], O(n[d]) work per candidate.
 *
 *  Hill climbing: start from `start`; a sweep evaluates every single flip
 *  of the row (O(n[d-1] n[d])), then applies up to flips_per_sweep of the
 *  best, best first, each re-checked and applied only if it still lowers J;
 *  it stops after max_sweeps sweeps or when no flip lowers J.  J never
 *  increases, so L[d] of the result is at most that of the start when
 *  reach_cost is 0 or the start is the current outputs.
 *
 *  Memory: the handle keeps scratch (W[d] transposed, one Z[d] per example
 *  of the batch, a few rows) sized for the largest view it has seen; it
 *  grows during the first batch of a fit, so later batches allocate
 *  nothing.  A handle must not be used by two threads at once. */
typedef struct htnn_hill_options {
    size_t struct_size;     /**< sizeof(htnn_hill_options) */
    size_t max_sweeps;      /**< >= 1, default 16 */
    size_t flips_per_sweep; /**< >= 1, default 1 (steepest descent) */
    int start;              /**< htnn_hill_start, default outputs */
    float reach_cost;       /**< >= 0 and finite, default 0 */
    int weighting;          /**< htnn_search_weighting, default FLIP */
} htnn_hill_options;

/** Default hill-climbing options: 16 sweeps of 1 flip, from the current
 *  outputs, no reachability cost, flip-sensitivity weights. */
#define HTNN_HILL_OPTIONS_INIT                                              \
    { sizeof(htnn_hill_options), 16, 1, HTNN_HILL_START_OUTPUTS, 0.0f,      \
      HTNN_SEARCH_WEIGHT_FLIP }

/** The built-in hill-climbing heuristic (name "hill"); opts may be NULL
 *  for the defaults. */
HTNN_API htnn_status htnn_heuristic_create_hill(const htnn_hill_options *opts,
                                                htnn_heuristic **out);

/** Options of the exhaustive heuristic; initialise with
 *  HTNN_EXHAUSTIVE_OPTIONS_INIT. */
typedef struct htnn_exhaustive_options {
    size_t struct_size; /**< sizeof(htnn_exhaustive_options) */
    /** largest n[d-1] searched, 1..30, default 16: a wider layer fails the
     *  call with HTNN_ELIMIT (the message names the width and the limit) */
    size_t max_width;
    float reach_cost;   /**< >= 0 and finite, default 0 (see htnn_hill_options) */
    int weighting;      /**< htnn_search_weighting, default FLIP */
} htnn_exhaustive_options;

/** Default exhaustive options: width limit 16, no reachability cost,
 *  flip-sensitivity weights. */
#define HTNN_EXHAUSTIVE_OPTIONS_INIT \
    { sizeof(htnn_exhaustive_options), 16, 0.0f, HTNN_SEARCH_WEIGHT_FLIP }

/** The built-in exhaustive heuristic (name "exhaustive"): for every example
 *  all 2^n[d-1] target rows in Gray-code order (one O(n[d]) update per
 *  row), keeping the one with the lowest J (see htnn_hill_options); ties go
 *  to the row closest (Hamming) to the current outputs.  O(2^n[d-1] n[d])
 *  per example.  Memory as for hill climbing.  opts may be NULL. */
HTNN_API htnn_status htnn_heuristic_create_exhaustive(
    const htnn_exhaustive_options *opts, htnn_heuristic **out);

/** Search effort of a built-in combinatorial heuristic since its creation
 *  (all zero for other heuristics). */
typedef struct htnn_search_stats {
    size_t struct_size;   /**< set by the caller to sizeof(htnn_search_stats) */
    uint64_t calls;       /**< set_targets calls */
    uint64_t rows;        /**< example rows searched */
    uint64_t evaluations; /**< candidate target rows scored (O(n[d]) each) */
    uint64_t flips;       /**< targets changed from the starting row */
    uint64_t sweeps;      /**< hill-climbing sweeps over a row */
} htnn_search_stats;

/** An htnn_search_stats ready to be filled by htnn_heuristic_get_stats. */
#define HTNN_SEARCH_STATS_INIT { sizeof(htnn_search_stats), 0, 0, 0, 0, 0 }

/** Reads a heuristic's search effort; out->struct_size must be set. */
HTNN_API htnn_status htnn_heuristic_get_stats(const htnn_heuristic *heuristic,
                                              htnn_search_stats *out);

/** The combinatorial objective J of a target set for the layer below
 *  (view->batch x view->in_width entries of -1 / +1; 0 counts as -1),
 *  summed over the batch, with reach_cost as in htnn_hill_options: the
 *  quantity hill climbing lowers and the exhaustive heuristic minimises.
 *  Needs view->input_z, weights, bias, targets and target_weights. */
HTNN_API htnn_status htnn_layer_view_loss(const htnn_layer_view *view,
                                          const float *targets,
                                          float reach_cost, double *loss);

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
 *  layer width).  A real-valued layer takes no targets: its values and
 *  weights read 0.  Any out-pointer may be NULL. */
HTNN_API htnn_status htnn_targets_get(const htnn_targets *targets,
                                      size_t layer, const float **values,
                                      const float **weights, size_t *rows,
                                      size_t *cols);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_HEURISTIC_H */
