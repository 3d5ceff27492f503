/* Full-batch FTPROP: the recursive search for feasible targets
 * (include/htnn/ftprop.h).  Layers are fitted unit by unit with the convex
 * solver of separability.c; the heuristic chooses the targets below a
 * layer that its targets cannot be met from.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "dense.h"
#include "error.h"
#include "heuristic_internal.h"
#include "htnn/ftprop.h"
#include "losses.h"
#include "net_internal.h"
#include "options.h"
#include "separability.h"

typedef struct ftprop_run {
    htnn_net *net;
    const htnn_heuristic *h;
    const float *x;
    const int32_t *labels;
    size_t m;
    htnn_ftprop_options o;
    htnn_ftprop_result res;
    double start;
    /* per hidden layer k (m x width, one after another): the targets last
     * chosen for it */
    float *previous;
} ftprop_run;

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int out_of_budget(ftprop_run *run)
{
    const htnn_ftprop_options *o = &run->o;
    if ((o->max_heuristic_calls > 0 && run->res.heuristic_calls >= o->max_heuristic_calls) ||
        (o->time_limit > 0.0 && now_seconds() - run->start > o->time_limit))
        run->res.budget_exhausted = 1;
    return run->res.budget_exhausted;
}

static int combine(int a, int b)
{
    if (a == HTNN_SEPARABILITY_NOT_SEPARABLE || b == HTNN_SEPARABILITY_NOT_SEPARABLE)
        return HTNN_SEPARABILITY_NOT_SEPARABLE;
    if (a == HTNN_SEPARABILITY_UNDECIDED || b == HTNN_SEPARABILITY_UNDECIDED)
        return HTNN_SEPARABILITY_UNDECIDED;
    return HTNN_SEPARABILITY_SEPARABLE;
}

/* Fits every unit of layer d to its targets from the layer's current
 * inputs (X or H[d-1] of the last forward pass). */
static htnn_status fit_layer(ftprop_run *run, size_t d)
{
    htnn_net *net = run->net;
    htnn_layer *layer = net->layers[d];
    const layer_scratch *s = &net->scratch[d];
    const float *in = d ? net->scratch[d - 1].h : run->x;
    int sep = HTNN_SEPARABILITY_SEPARABLE;
    for (size_t k = 0; k < layer->out; k++) {
        unit_problem p = {in, run->m, layer->in, s->t + k, s->tw + k, layer->out,
                          layer->has_bias};
        unit_outcome u;
        htnn_status st = unit_fit(&p, run->res.solver, run->o.solver_epochs,
                                  layer->w + k * layer->in, layer->has_bias ? layer->b + k : NULL,
                                  &u);
        if (st != HTNN_OK)
            return st;
        if (!all_finite(layer->w + k * layer->in, layer->in) || !all_finite(layer->b + k, 1))
            return error_set(HTNN_ENUMERIC, "ftprop: the solver gave layer %zu unit %zu a "
                             "NaN or infinite weight", d, k);
        sep = combine(sep, u.separability);
        run->res.solver_calls++;
        run->res.solver_iterations += u.iterations;
    }
    run->res.separability[d] = sep;
    return HTNN_OK;
}

/* Forward pass; the output layer's one-vs-rest targets; returns the
 * number of correctly classified examples. */
static size_t forward(ftprop_run *run)
{
    size_t correct;
    net_forward(run->net, run->x, run->m);
    output_score(run->net, run->labels, run->m, 0, &correct);
    return correct;
}

/* Layer d meets its targets: every example right for the output layer,
 * sign(Z) == T on every entry with a target and a weight below it. */
static int layer_met(ftprop_run *run, size_t d, size_t correct)
{
    const htnn_net *net = run->net;
    if (d + 1 == net->n_layers)
        return correct == run->m;
    const layer_scratch *s = &net->scratch[d];
    size_t n = run->m * net->layers[d]->out;
    for (size_t i = 0; i < n; i++)
        if (s->t[i] != 0.0f && s->tw[i] != 0.0f && (s->z[i] > 0.0f) != (s->t[i] > 0.0f))
            return 0;
    return 1;
}

/* The activation the heuristic is shown: every layer is a layer of
 * perceptrons, so a real-valued output layer appears as sign units. */
static int view_activation(const htnn_layer *layer)
{
    return layer->activation == HTNN_ACT_IDENTITY ? HTNN_ACT_SIGN : layer->activation;
}

/* T[d-1] from the heuristic, on the state of the last forward pass. */
static htnn_status choose_targets_below(ftprop_run *run, size_t d)
{
    htnn_net *net = run->net;
    htnn_layer *layer = net->layers[d], *below = net->layers[d - 1];
    layer_scratch *s = &net->scratch[d], *sb = &net->scratch[d - 1];
    size_t m = run->m, n = m * below->out;
    int act = view_activation(layer);
    loss_grad_weighted(run->o.search_loss, act, 0, s->z, s->t, s->tw, s->dz, m * layer->out);
    dense_input_grad(layer, s->dz, m, net->grad_input);
    htnn_layer_view view = {sizeof view, d, m, layer->in, layer->out, sb->h, sb->z, s->z,
                            layer_weights(layer), layer->b, s->t, s->tw, s->dz,
                            net->grad_input, act, run->o.search_loss, below->activation,
                            below->qrelu_bits};
    if (!run->h->writes_all)
        for (size_t i = 0; i < n; i++) {
            sb->t[i] = sb->z[i] > 0.0f ? 1.0f : -1.0f;
            sb->tw[i] = 1.0f;
        }
    run->res.heuristic_calls++;
    htnn_status st = heuristic_run(run->h, &view, sb->t, sb->tw);
    if (st == HTNN_OK && !run->h->writes_all)
        st = heuristic_check_targets(run->h, d, sb->t, sb->tw, n);
    return st;
}

/* The targets just chosen for layer d-1 equal those of the previous
 * attempt at this level (the state came back to where it was). */
static float *previous_of(const ftprop_run *run, size_t k)
{
    size_t offset = 0;
    for (size_t i = 0; i < k; i++)
        offset += run->m * run->net->layers[i]->out;
    return run->previous + offset;
}

static int same_as_previous(const ftprop_run *run, size_t d)
{
    size_t n = run->m * run->net->layers[d - 1]->out;
    return memcmp(previous_of(run, d - 1), run->net->scratch[d - 1].t, n * sizeof(float)) == 0;
}

static void remember_targets(ftprop_run *run, size_t d)
{
    size_t n = run->m * run->net->layers[d - 1]->out;
    memcpy(previous_of(run, d - 1), run->net->scratch[d - 1].t, n * sizeof(float));
}

/* ftprop(d): fit layer d; if its targets are not met, search targets for
 * the layer below, recurse, and refit, up to `attempts` times. */
static htnn_status search(ftprop_run *run, size_t d, int *met)
{
    htnn_status st = fit_layer(run, d);
    *met = 0;
    if (st != HTNN_OK)
        return st;
    if ((*met = layer_met(run, d, forward(run))) || d == 0)
        return HTNN_OK;
    for (size_t a = 0; a < run->o.attempts && !out_of_budget(run); a++) {
        int below_met;
        if ((st = choose_targets_below(run, d)) != HTNN_OK)
            return st;
        if (a > 0 && same_as_previous(run, d))
            break; /* a fixed point: more attempts would repeat this one */
        remember_targets(run, d);
        if ((st = search(run, d - 1, &below_met)) != HTNN_OK)
            return st;
        forward(run);
        if ((st = fit_layer(run, d)) != HTNN_OK)
            return st;
        if ((*met = layer_met(run, d, forward(run))))
            return HTNN_OK;
    }
    return HTNN_OK;
}

static htnn_status check_ftprop(const htnn_net *net, const float *x, const int32_t *labels,
                                size_t count, const htnn_ftprop_options *o)
{
    htnn_status st;
    if (net == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_ftprop: net or labels is NULL");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK)
        return st;
    if (net->n_layers > HTNN_FTPROP_MAX_LAYERS)
        return error_set(HTNN_ELIMIT, "htnn_net_ftprop: %zu layers, at most %d", net->n_layers,
                         HTNN_FTPROP_MAX_LAYERS);
    for (size_t d = 0; d < net->n_layers; d++) {
        int act = net->layers[d]->activation, top = d + 1 == net->n_layers;
        if (net->layers[d]->kind != HTNN_LAYER_DENSE)
            return error_set(HTNN_EUNSUPPORTED, "htnn_net_ftprop: layer %zu is not dense; "
                             "full-batch FTPROP trains dense layers only", d);
        if (act != HTNN_ACT_SIGN && act != HTNN_ACT_STEP && !(top && act == HTNN_ACT_IDENTITY))
            return error_set(HTNN_EUNSUPPORTED, "htnn_net_ftprop: layer %zu has activation %d; "
                             "full-batch FTPROP needs sign or step units (identity allowed in "
                             "the output layer)", d, act);
    }
    if (o->attempts == 0 || o->solver_epochs == 0 || !(o->time_limit >= 0.0) ||
        o->time_limit == INFINITY)
        return error_set(HTNN_EINVAL, "ftprop options: attempts and solver_epochs must be >= 1 "
                         "and time_limit finite and >= 0");
    if (o->solver < HTNN_SOLVER_AUTO || o->solver > HTNN_SOLVER_LP || !loss_valid(o->search_loss))
        return error_set(HTNN_EINVAL, "ftprop options: unknown solver %d or search loss %d",
                         o->solver, o->search_loss);
    if (o->solver == HTNN_SOLVER_LP && !separability_have_lp())
        return error_set(HTNN_EUNSUPPORTED, "ftprop options: the LP solver needs GLPK; this "
                         "library was built without it (meson option glpk)");
    return HTNN_OK;
}

/* On success the net's own hidden outputs are feasible targets (each
 * layer produces them from its inputs, so every unit's problem is
 * separable): they become the recorded target set, which also covers
 * layers the last search never had to reach. */
static void record_feasible_targets(ftprop_run *run)
{
    htnn_net *net = run->net;
    for (size_t d = 0; d < net->n_layers; d++) {
        run->res.separability[d] = HTNN_SEPARABILITY_SEPARABLE;
        if (d + 1 == net->n_layers)
            break;
        layer_scratch *s = &net->scratch[d];
        for (size_t i = 0; i < run->m * net->layers[d]->out; i++) {
            s->t[i] = s->z[i] > 0.0f ? 1.0f : -1.0f;
            s->tw[i] = 1.0f;
        }
    }
}

/* Runs the search from the top layer, with restarts from new weights. */
static htnn_status run_search(ftprop_run *run)
{
    htnn_net *net = run->net;
    htnn_status st = HTNN_OK;
    int met = 0;
    for (size_t r = 0; r <= run->o.restarts && st == HTNN_OK; r++) {
        if (r > 0) {
            for (size_t d = 0; d < net->n_layers; d++)
                dense_init(net->layers[d], &net->rng);
            run->res.restarts++;
        }
        forward(run);
        for (size_t d = 0; d < HTNN_FTPROP_MAX_LAYERS; d++)
            run->res.separability[d] = HTNN_SEPARABILITY_UNDECIDED;
        st = search(run, net->n_layers - 1, &met);
        if (met || run->res.budget_exhausted)
            break;
    }
    size_t correct = forward(run);
    run->res.accuracy = (double)correct / (double)run->m;
    run->res.feasible = st == HTNN_OK && met && correct == run->m;
    if (run->res.feasible)
        record_feasible_targets(run);
    return st;
}

static void copy_ftprop_result(htnn_ftprop_result *out, const htnn_ftprop_result *r)
{
    if (out)
        memcpy((char *)out + sizeof(size_t), (const char *)r + sizeof(size_t),
               out->struct_size - sizeof(size_t));
}

htnn_status htnn_net_ftprop(htnn_net *net, htnn_heuristic *heuristic, const float *x,
                            const int32_t *labels, size_t count,
                            const htnn_ftprop_options *opts, htnn_ftprop_result *result)
{
    ftprop_run run = {net, heuristic, x, labels, count, HTNN_FTPROP_OPTIONS_INIT,
                      HTNN_FTPROP_RESULT_INIT, now_seconds(), NULL};
    htnn_heuristic *own = NULL;
    htnn_status st;
    if (result && (result->struct_size < sizeof(size_t) || result->struct_size > sizeof *result))
        return error_set(HTNN_EINVAL, "htnn_net_ftprop: bad result struct_size");
    if ((st = options_read(&run.o, sizeof run.o, opts, "ftprop options")) != HTNN_OK ||
        (st = check_ftprop(net, x, labels, count, &run.o)) != HTNN_OK)
        return st;
    if (heuristic == NULL) {
        htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
        eo.reach_cost = 0.3f;
        if ((st = htnn_heuristic_create_exhaustive(&eo, &own)) != HTNN_OK)
            return st;
    }
    run.h = heuristic ? heuristic : own;
    run.res.solver = separability_solver(run.o.solver);
    size_t hidden = 0;
    for (size_t d = 0; d + 1 < net->n_layers; d++)
        hidden += net->layers[d]->out;
    run.previous = mem_malloc((hidden ? hidden : 1) * count * sizeof *run.previous);
    if (run.previous == NULL)
        st = error_set(HTNN_ENOMEM, "htnn_net_ftprop: out of memory");
    if (st == HTNN_OK && (st = net_reserve(net, count)) == HTNN_OK) {
        net_apply_threads(net);
        st = run_search(&run);
        net->targets.batch = count;
    }
    htnn_heuristic_free(own);
    mem_free(run.previous);
    run.res.seconds = now_seconds() - run.start;
    copy_ftprop_result(result, &run.res);
    return st;
}
