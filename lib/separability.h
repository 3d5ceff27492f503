/* Internal: fitting one threshold unit to +-1 targets with a convex solver
 * (GLPK linear programme or a margin perceptron with a pocket), which also
 * decides (LP) or proves (perceptron at zero errors) linear separability.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_SEPARABILITY_H
#define HTNN_LIB_SEPARABILITY_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/ftprop.h"

/* One unit's problem: inputs x (m x n, row-major) and targets t[i * stride]
 * (+1 / -1; entries with target 0 or weight tw[i * stride] == 0 are
 * ignored; tw may be NULL). */
typedef struct unit_problem {
    const float *x;
    size_t m, n;
    const float *t;
    const float *tw;
    size_t stride;
    int has_bias;
} unit_problem;

typedef struct unit_outcome {
    int separability;     /* htnn_separability */
    uint64_t iterations;  /* perceptron epochs or simplex iterations */
} unit_outcome;

/* 1 when the library was built with GLPK. */
int separability_have_lp(void);

/* The solver AUTO resolves to. */
int separability_solver(int solver);

/* Fits w (n) and *b (NULL: no bias, kept 0) to the problem, starting from
 * their values (the perceptron warm-starts).  solver is PERCEPTRON or LP. */
htnn_status unit_fit(const unit_problem *p, int solver, size_t epochs, float *w,
                     float *b, unit_outcome *out);

#endif
