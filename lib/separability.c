/* Fitting one threshold unit to +-1 targets: a GLPK linear programme that
 * decides linear separability exactly, or a margin perceptron with a
 * pocket whose zero-error solutions prove it.
 * SPDX-License-Identifier: MIT */
#include "separability.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "htnn_config.h"

#if HTNN_HAVE_GLPK
#include <glpk.h>
#endif

int separability_have_lp(void) { return HTNN_HAVE_GLPK; }

int separability_solver(int solver)
{
    if (solver != HTNN_SOLVER_AUTO)
        return solver;
    return separability_have_lp() ? HTNN_SOLVER_LP : HTNN_SOLVER_PERCEPTRON;
}

static int active(const unit_problem *p, size_t i)
{
    float t = p->t[i * p->stride];
    return t != 0.0f && (p->tw == NULL || p->tw[i * p->stride] != 0.0f);
}

static double unit_z(const unit_problem *p, size_t i, const float *w, float b)
{
    const float *xi = p->x + i * p->n;
    double z = b;
    for (size_t j = 0; j < p->n; j++)
        z += (double)w[j] * xi[j];
    return z;
}

/* Examples on the wrong side (z > 0 is +1, z <= 0 is -1). */
static size_t unit_errors(const unit_problem *p, const float *w, float b)
{
    size_t errors = 0;
    for (size_t i = 0; i < p->m; i++)
        if (active(p, i) && (unit_z(p, i, w, b) > 0.0) != (p->t[i * p->stride] > 0.0f))
            errors++;
    return errors;
}

/* One epoch of the margin perceptron: every example with margin below 1
 * moves the unit towards it.  Returns the number of updates. */
static size_t perceptron_epoch(const unit_problem *p, float *w, float *b)
{
    size_t updates = 0;
    for (size_t i = 0; i < p->m; i++) {
        if (!active(p, i))
            continue;
        float t = p->t[i * p->stride] > 0.0f ? 1.0f : -1.0f;
        if ((double)t * unit_z(p, i, w, b ? *b : 0.0f) >= 1.0)
            continue;
        const float *xi = p->x + i * p->n;
        for (size_t j = 0; j < p->n; j++)
            w[j] += t * xi[j];
        if (b)
            *b += t;
        updates++;
    }
    return updates;
}

/* Margin perceptron with a pocket: keeps the weights with the fewest
 * errors; stops once every margin is >= 1, or a few epochs after the first
 * zero-error epoch, or after `epochs`. */
static htnn_status perceptron_fit(const unit_problem *p, size_t epochs, float *w, float *b,
                                  unit_outcome *out)
{
    float *cur = mem_malloc((p->n + 1) * sizeof *cur);
    if (cur == NULL)
        return error_set(HTNN_ENOMEM, "perceptron: out of memory for %zu weights", p->n);
    memcpy(cur, w, p->n * sizeof *w);
    float cb = b ? *b : 0.0f;
    /* The pocket holds the best unit the perceptron visits, not the
     * starting one: after a failed attempt the search needs the units to
     * move (the starting unit is kept only when it already separates). */
    size_t start = unit_errors(p, w, cb), best = SIZE_MAX, epoch;
    size_t zero_since = start == 0 ? 0 : SIZE_MAX;
    if (start == 0)
        best = 0;
    for (epoch = 0; epoch < epochs && (zero_since == SIZE_MAX || epoch < zero_since + 8);
         epoch++) {
        size_t updates = perceptron_epoch(p, cur, b ? &cb : NULL);
        size_t errors = unit_errors(p, cur, cb);
        if (errors < best || errors == 0) { /* later zero-error units have wider margins */
            best = errors;
            memcpy(w, cur, p->n * sizeof *w);
            if (b)
                *b = cb;
        }
        if (errors == 0 && zero_since == SIZE_MAX)
            zero_since = epoch;
        if (updates == 0)
            break;
    }
    mem_free(cur);
    out->iterations = epoch;
    out->separability = best == 0 ? HTNN_SEPARABILITY_SEPARABLE : HTNN_SEPARABILITY_UNDECIDED;
    (void)start;
    return HTNN_OK;
}

#if HTNN_HAVE_GLPK
/* min sum(xi) s.t. t_i (w.x_i + b) + xi_i >= 1, xi >= 0; w, b free.  The
 * optimum is 0 exactly when the examples are separable (with margin 1). */
static htnn_status lp_build(const unit_problem *p, glp_prob *lp, size_t rows)
{
    size_t nb = p->n + (size_t)(p->has_bias != 0), cols = nb + rows;
    size_t cap = rows * (nb + 1) + 1, ne = 0;
    int *ia = mem_malloc(cap * sizeof *ia), *ja = mem_malloc(cap * sizeof *ja);
    double *ar = mem_malloc(cap * sizeof *ar);
    if (ia == NULL || ja == NULL || ar == NULL) {
        mem_free(ia), mem_free(ja), mem_free(ar);
        return error_set(HTNN_ENOMEM, "LP: out of memory for %zu x %zu", rows, cols);
    }
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_rows(lp, (int)rows);
    glp_add_cols(lp, (int)cols);
    for (size_t c = 1; c <= cols; c++) {
        glp_set_col_bnds(lp, (int)c, c <= nb ? GLP_FR : GLP_LO, 0.0, 0.0);
        glp_set_obj_coef(lp, (int)c, c <= nb ? 0.0 : 1.0);
    }
    size_t r = 0;
    for (size_t i = 0; i < p->m; i++) {
        if (!active(p, i))
            continue;
        double t = p->t[i * p->stride] > 0.0f ? 1.0 : -1.0;
        const float *xi = p->x + i * p->n;
        r++;
        glp_set_row_bnds(lp, (int)r, GLP_LO, 1.0, 0.0);
        for (size_t j = 0; j < p->n; j++)
            if (xi[j] != 0.0f)
                ne++, ia[ne] = (int)r, ja[ne] = (int)j + 1, ar[ne] = t * xi[j];
        if (p->has_bias)
            ne++, ia[ne] = (int)r, ja[ne] = (int)nb, ar[ne] = t;
        ne++, ia[ne] = (int)r, ja[ne] = (int)(nb + r), ar[ne] = 1.0;
    }
    glp_load_matrix(lp, (int)ne, ia, ja, ar);
    mem_free(ia), mem_free(ja), mem_free(ar);
    return HTNN_OK;
}

static htnn_status lp_fit(const unit_problem *p, float *w, float *b, unit_outcome *out)
{
    size_t rows = 0;
    for (size_t i = 0; i < p->m; i++)
        rows += (size_t)active(p, i);
    if (rows == 0) {
        out->separability = HTNN_SEPARABILITY_SEPARABLE;
        return HTNN_OK;
    }
    glp_prob *lp = glp_create_prob();
    htnn_status st = lp_build(p, lp, rows);
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    if (st == HTNN_OK && (glp_simplex(lp, &parm) != 0 || glp_get_status(lp) != GLP_OPT))
        st = error_set(HTNN_ENUMERIC, "LP: the simplex did not reach an optimum on %zu "
                       "examples of width %zu", rows, p->n);
    if (st == HTNN_OK) {
        double objective = glp_get_obj_val(lp);
        for (size_t j = 0; j < p->n; j++)
            w[j] = (float)glp_get_col_prim(lp, (int)j + 1);
        if (b)
            *b = p->has_bias ? (float)glp_get_col_prim(lp, (int)p->n + 1) : 0.0f;
        size_t errors = unit_errors(p, w, b ? *b : 0.0f);
        out->separability = objective > 1e-6 ? HTNN_SEPARABILITY_NOT_SEPARABLE
                            : errors == 0    ? HTNN_SEPARABILITY_SEPARABLE
                                             : HTNN_SEPARABILITY_UNDECIDED;
        out->iterations = (uint64_t)glp_get_it_cnt(lp);
    }
    glp_delete_prob(lp);
    return st;
}

/* The LP decides separability; a separable unit takes the LP's weights
 * (margin 1).  A unit that is not separable takes the pocket perceptron's
 * weights, warm-started from its old ones, instead of the hinge-optimal
 * LP point, which is often degenerate (w = 0: every input scores the
 * same, and a heuristic reading the unit sees only ties). */
static htnn_status lp_then_pocket(const unit_problem *p, size_t epochs, float *w, float *b,
                                  unit_outcome *out)
{
    float *old = mem_malloc((p->n + 1) * sizeof *old);
    if (old == NULL)
        return error_set(HTNN_ENOMEM, "LP: out of memory for %zu weights", p->n);
    memcpy(old, w, p->n * sizeof *w);
    old[p->n] = b ? *b : 0.0f;
    htnn_status st = lp_fit(p, w, b, out);
    if (st == HTNN_OK && out->separability == HTNN_SEPARABILITY_NOT_SEPARABLE) {
        unit_outcome pocket;
        memcpy(w, old, p->n * sizeof *w);
        if (b)
            *b = old[p->n];
        st = perceptron_fit(p, epochs < 64 ? epochs : 64, w, b, &pocket);
        out->iterations += pocket.iterations;
    }
    mem_free(old);
    return st;
}
#endif

htnn_status unit_fit(const unit_problem *p, int solver, size_t epochs, float *w, float *b,
                     unit_outcome *out)
{
    out->separability = HTNN_SEPARABILITY_UNDECIDED;
    out->iterations = 0;
#if HTNN_HAVE_GLPK
    if (solver == HTNN_SOLVER_LP)
        return lp_then_pocket(p, epochs, w, b, out);
#endif
    if (solver == HTNN_SOLVER_LP)
        return error_set(HTNN_EUNSUPPORTED, "the LP solver needs GLPK (meson option glpk)");
    return perceptron_fit(p, epochs, w, b, out);
}

htnn_status htnn_separable(const float *x, const float *t, size_t count, size_t width,
                           int solver, size_t epochs, int *separability, float *w, float *b)
{
    if (x == NULL || t == NULL || separability == NULL || w == NULL)
        return error_set(HTNN_EINVAL, "htnn_separable: x, t, separability or w is NULL");
    if (count == 0 || width == 0 || epochs == 0)
        return error_set(HTNN_EINVAL, "htnn_separable: count, width and epochs must be >= 1");
    if (solver < HTNN_SOLVER_AUTO || solver > HTNN_SOLVER_LP)
        return error_set(HTNN_EINVAL, "htnn_separable: unknown solver %d", solver);
    for (size_t i = 0; i < count; i++)
        if (t[i] != 1.0f && t[i] != -1.0f && t[i] != 0.0f)
            return error_set(HTNN_EINVAL, "htnn_separable: target %g of example %zu is not "
                             "-1, 0 or +1", (double)t[i], i);
    for (size_t i = 0; i < count * width; i++)
        if (!isfinite(x[i]))
            return error_set(HTNN_ENUMERIC, "htnn_separable: NaN or infinite input");
    unit_problem p = {x, count, width, t, NULL, 1, b != NULL};
    unit_outcome res;
    float bias = 0.0f;
    memset(w, 0, width * sizeof *w);
    htnn_status st = unit_fit(&p, separability_solver(solver), epochs, w, b ? &bias : NULL,
                              &res);
    if (st != HTNN_OK)
        return st;
    if (b)
        *b = bias;
    *separability = res.separability;
    return HTNN_OK;
}
