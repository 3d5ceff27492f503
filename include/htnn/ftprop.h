/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * ftprop.h - full-batch FTPROP: the recursive search for *feasible* targets
 * (Friesen & Domingos, ICLR 2018, Algorithm 1) on small data sets.
 *
 * A target set is feasible when every layer's problem - inputs T[d-1] (X
 * for the first layer), each unit's outputs T[d][:, j] - is linearly
 * separable; then each layer fitted to its targets gives a net that
 * classifies the training data perfectly (Proposition 1).  The search, for
 * layer d from the output down:
 *
 *     ftprop(d): fit every unit of layer d to (H[d-1], T[d]) with the
 *                convex solver; success if sign(Z[d]) meets T[d]
 *                (for the output layer: every example classified right);
 *                else, unless d is the first layer, up to `attempts` times:
 *                  T[d-1] = heuristic(view of layer d)
 *                  ftprop(d-1)
 *                  refit layer d on the new outputs H[d-1]; success if met
 *                stopping early when the heuristic proposes the same
 *                targets as in the previous attempt (a fixed point);
 *     and, if the search from the output layer fails, re-draw all weights
 *     and search again (`restarts`).
 *
 * Layer d is refitted after every attempt, not only after a successful one:
 * after a failure the outputs H[d-1] have changed (layer d-1 was fitted as
 * well as it could be), and the refitted W[d] makes the next heuristic call
 * see a different problem, so a deterministic heuristic does not propose
 * the same targets again.
 *
 * The convex solver fits each unit separately: with GLPK (meson option
 * glpk, HTNN_SOLVER_LP) a linear programme min sum(xi) subject to
 * t_i (w.x_i + b) + xi_i >= 1, xi >= 0, which decides separability exactly
 * (optimum 0: separable, with margin 1; otherwise not) and otherwise gives
 * the hinge-optimal unit; without GLPK a margin perceptron with a pocket
 * (the weights with fewest errors are kept): reaching zero errors proves
 * separability, running out of epochs proves nothing ("undecided").
 *
 * The heuristic sees every layer as a layer of perceptrons: the view's
 * loss is opts->search_loss (hinge by default) for every layer, and the
 * output layer is shown with a sign activation and one-vs-rest targets (+1
 * for the label's unit, -1 elsewhere; one output unit: label 1 is +1), so
 * a real-valued softmax output is fitted one-vs-rest too, a sufficient
 * condition for the arg-max to be right.  With the hinge, every target row
 * that puts an example beyond the margin costs 0, so the exhaustive
 * heuristic's tie-break (towards the current outputs) keeps the targets
 * close to what the layer below already produces.
 *
 * Supported nets: dense layers, hidden activations sign or step, output
 * activation sign, step or identity, at most HTNN_FTPROP_MAX_LAYERS layers.
 * Memory: the net's scratch arena is sized for the whole data set (count
 * rows), as htnn_net_train_batch would for one batch of that size.
 */
#ifndef HTNN_FTPROP_H
#define HTNN_FTPROP_H

#include "common.h"
#include "heuristic.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most layers htnn_net_ftprop accepts (and reports separability for). */
#define HTNN_FTPROP_MAX_LAYERS 16

/** Linear separability of one layer's problem.  Numbers are fixed. */
typedef enum htnn_separability {
    /** not decided: a perceptron ran out of epochs, or the layer was not
     *  fitted */
    HTNN_SEPARABILITY_UNDECIDED = 0,
    HTNN_SEPARABILITY_SEPARABLE = 1,    /**< every unit's problem separable */
    HTNN_SEPARABILITY_NOT_SEPARABLE = 2 /**< some unit's problem proven not separable */
} htnn_separability;

/** The convex per-unit solver.  Numbers are fixed. */
typedef enum htnn_ftprop_solver {
    HTNN_SOLVER_AUTO = 0,       /**< LP when built with GLPK, else perceptron */
    HTNN_SOLVER_PERCEPTRON = 1, /**< margin perceptron with a pocket */
    HTNN_SOLVER_LP = 2          /**< GLPK linear programme (HTNN_EUNSUPPORTED without it) */
} htnn_ftprop_solver;

/** Options of htnn_net_ftprop; initialise with HTNN_FTPROP_OPTIONS_INIT. */
typedef struct htnn_ftprop_options {
    size_t struct_size;   /**< sizeof(htnn_ftprop_options) */
    /** heuristic calls per layer and recursion level, >= 1, default 16 */
    size_t attempts;
    /** after a failed search, re-draw all weights (with the net's RNG, as
     *  htnn_net_add_dense does) and search again, up to this many times;
     *  default 100 (a restart is cheap: the attempts at a level stop as
     *  soon as the heuristic proposes the targets it proposed last time) */
    size_t restarts;
    /** total heuristic calls over the whole call, 0 = no limit (default
     *  100000) */
    size_t max_heuristic_calls;
    /** perceptron epochs per unit fit, >= 1, default 1000 */
    size_t solver_epochs;
    /** wall-clock budget in seconds, 0 = none (default) */
    double time_limit;
    int solver;           /**< htnn_ftprop_solver, default AUTO */
    /** htnn_loss the heuristic's view shows for every layer (default
     *  HTNN_LOSS_HINGE) */
    int search_loss;
} htnn_ftprop_options;

/** Default FTPROP options: 16 attempts per level, 100 restarts, 100000
 *  heuristic calls, 1000 perceptron epochs, no time limit, automatic
 *  solver, hinge search loss. */
#define HTNN_FTPROP_OPTIONS_INIT                                             \
    { sizeof(htnn_ftprop_options), 16, 100, 100000, 1000, 0.0,                 \
      HTNN_SOLVER_AUTO, HTNN_LOSS_HINGE }

/** Outcome of htnn_net_ftprop; set struct_size before the call (only the
 *  bytes it covers are written). */
typedef struct htnn_ftprop_result {
    size_t struct_size;     /**< sizeof(htnn_ftprop_result) */
    /** 1: feasible targets were found and the net classifies every training
     *  example correctly; 0: the search failed within its budgets */
    int feasible;
    double accuracy;        /**< training accuracy of the net after the call */
    /** htnn_separability of each layer's last fitted problem (entries past
     *  the layer count are UNDECIDED) */
    int separability[HTNN_FTPROP_MAX_LAYERS];
    int solver;             /**< the htnn_ftprop_solver actually used */
    size_t heuristic_calls; /**< heuristic calls made */
    size_t solver_calls;    /**< per-unit fits */
    /** perceptron epochs or simplex iterations, summed over the fits */
    uint64_t solver_iterations;
    size_t restarts;        /**< weight re-draws used */
    int budget_exhausted;   /**< 1 if a heuristic-call or time budget ran out */
    double seconds;         /**< wall-clock time of the call */
} htnn_ftprop_result;

/** An htnn_ftprop_result ready to be filled by htnn_net_ftprop. */
#define HTNN_FTPROP_RESULT_INIT                                              \
    { sizeof(htnn_ftprop_result), 0, 0.0, {0}, 0, 0, 0, 0, 0, 0, 0.0 }

/** Searches for feasible targets on the whole data set (count examples)
 *  and fits the net to them.  heuristic NULL means the built-in exhaustive
 *  heuristic with reach_cost 0.3 (other options default: it refuses layers
 *  wider than 16).
 *  Returns HTNN_OK when the search ran, feasible or not: read
 *  result->feasible.  The net's weights are changed either way (those of
 *  the last fits).  HTNN_EUNSUPPORTED for activations the search cannot
 *  use, HTNN_ELIMIT for more than HTNN_FTPROP_MAX_LAYERS layers.  Heuristic
 *  failures (e.g. the exhaustive width limit) stop the search and are
 *  returned.  opts and result may be NULL. */
HTNN_API htnn_status htnn_net_ftprop(htnn_net *net, htnn_heuristic *heuristic,
                                     const float *x, const int32_t *labels,
                                     size_t count,
                                     const htnn_ftprop_options *opts,
                                     htnn_ftprop_result *result);

/** Decides whether the points x (count x width, row-major) with labels
 *  t (+1 / -1; 0 = ignore) are linearly separable by z = w.x + b (strictly:
 *  z > 0 for +1, z <= 0 for -1), with the given solver and perceptron
 *  epoch budget.  *separability receives an htnn_separability; w (width)
 *  and b (may be NULL) receive the fitted unit.  For tests and for checking
 *  targets found by other means. */
HTNN_API htnn_status htnn_separable(const float *x, const float *t,
                                    size_t count, size_t width, int solver,
                                    size_t epochs, int *separability,
                                    float *w, float *b);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_FTPROP_H */
