/* The state training changes, copied between nets (resuming a checkpoint)
 * and into two in-memory snapshots (the last good state of a fit, for
 * divergence).  A snapshot copies only what a batch can change: each
 * layer's trained arrays, the optimizer's moments, step count and rate,
 * the net's RNG, and the fit's position and example order.  Everything
 * else (scratch, gradients, binarised weights) is recomputed by the next
 * batch.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "optimizer_internal.h"
#include "snapshot.h"

/* The arrays of one layer that training changes.  A layer kind that adds
 * such state must add it here (and to its model-file record). */
typedef struct trained_array {
    float *p;
    size_t n;
} trained_array;

enum { MAX_TRAINED = 4 };

static size_t layer_trained(const htnn_layer *l, trained_array a[MAX_TRAINED])
{
    size_t k = 0;
    a[k++] = (trained_array){l->w, l->n_w};
    a[k++] = (trained_array){l->b, l->n_b};
    if (l->run_mean != NULL) { /* batch norm: one statistic per channel */
        a[k++] = (trained_array){l->run_mean, l->n_b};
        a[k++] = (trained_array){l->run_var, l->n_b};
    }
    return k;
}

size_t net_trained_count(const htnn_net *net)
{
    size_t total = 0;
    for (size_t d = 0; d < net->n_layers; d++) {
        trained_array a[MAX_TRAINED];
        size_t k = layer_trained(net->layers[d], a);
        for (size_t i = 0; i < k; i++)
            total += a[i].n;
    }
    return total;
}

/* Changed weights invalidate a binary layer's binarised copy. */
static void weights_changed(htnn_layer *l) { l->bin_fresh = 0; }

void net_trained_copy(htnn_net *dst, const htnn_net *src)
{
    for (size_t d = 0; d < dst->n_layers; d++) {
        trained_array to[MAX_TRAINED], from[MAX_TRAINED];
        size_t k = layer_trained(dst->layers[d], to);
        layer_trained(src->layers[d], from);
        for (size_t i = 0; i < k; i++)
            memcpy(to[i].p, from[i].p, to[i].n * sizeof(float));
        weights_changed(dst->layers[d]);
    }
}

/* Copies n floats; 0 if one of them is NaN or infinite (all-ones
 * exponent), tested on the bit patterns so that the loop vectorises. */
static int copy_finite(float *dst, const float *src, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        bad |= (bits & 0x7f800000u) == 0x7f800000u;
        dst[i] = src[i];
    }
    return bad == 0;
}

/* The net's trained arrays into v (net_trained_count floats); 0 if one of
 * them is not finite. */
static int net_save(const htnn_net *net, float *v)
{
    int ok = 1;
    for (size_t d = 0; d < net->n_layers; d++) {
        trained_array a[MAX_TRAINED];
        size_t k = layer_trained(net->layers[d], a);
        for (size_t i = 0; i < k; v += a[i].n, i++)
            ok &= copy_finite(v, a[i].p, a[i].n);
    }
    return ok;
}

static void net_load(htnn_net *net, const float *v)
{
    for (size_t d = 0; d < net->n_layers; d++) {
        trained_array a[MAX_TRAINED];
        size_t k = layer_trained(net->layers[d], a);
        for (size_t i = 0; i < k; v += a[i].n, i++)
            memcpy(a[i].p, v, a[i].n * sizeof *v);
        weights_changed(net->layers[d]);
    }
}

htnn_status guard_init(fit_guard *g, const htnn_net *net, htnn_optimizer *opt,
                       size_t n_order)
{
    memset(g, 0, sizeof *g);
    optimizer_state(opt, &g->n_opt);
    g->n_net = net_trained_count(net);
    g->n_order = n_order;
    g->good = 1; /* the first snapshot goes to slot 0 */
    size_t nv = g->n_net + g->n_opt;
    float *values = mem_malloc(2 * (nv ? nv : 1) * sizeof *values);
    size_t *orders = n_order ? mem_malloc(2 * n_order * sizeof *orders) : NULL;
    if (values == NULL || (n_order && orders == NULL)) {
        mem_free(values);
        mem_free(orders);
        return error_set(HTNN_ENOMEM, "htnn_net_fit: out of memory for two snapshots of "
                         "%zu values (divergence recovery)", nv);
    }
    for (int s = 0; s < 2; s++) {
        g->slot[s].values = values + (size_t)s * nv;
        g->slot[s].order = orders ? orders + (size_t)s * n_order : NULL;
    }
    return HTNN_OK;
}

void guard_free(fit_guard *g)
{
    mem_free(g->slot[0].values);
    mem_free(g->slot[0].order);
    memset(g, 0, sizeof *g);
}

static htnn_status not_finite(const fit_position *pos)
{
    return error_set(HTNN_ENUMERIC, "training diverged: a parameter or optimizer value "
                     "became NaN or infinite by epoch %zu, batch %zu", pos->epoch, pos->batch);
}

htnn_status guard_take(fit_guard *g, const htnn_net *net, htnn_optimizer *opt,
                       const fit_position *pos, const size_t *order)
{
    fit_snapshot *s = &g->slot[1 - g->good];
    size_t n_opt;
    const float *state = optimizer_state(opt, &n_opt);
    if (!net_save(net, s->values) || !copy_finite(s->values + g->n_net, state, g->n_opt))
        return not_finite(pos);
    if (g->n_order)
        memcpy(s->order, order, g->n_order * sizeof *order);
    s->rng = net->rng;
    s->steps = htnn_optimizer_steps(opt);
    s->lr = htnn_optimizer_learning_rate(opt);
    s->pos = *pos;
    g->pending = 1;
    return HTNN_OK;
}

htnn_status guard_check(const htnn_net *net, htnn_optimizer *opt, const fit_position *pos)
{
    int ok = 1;
    size_t n_opt;
    const float *state = optimizer_state(opt, &n_opt);
    for (size_t d = 0; d < net->n_layers; d++) {
        trained_array a[MAX_TRAINED];
        size_t k = layer_trained(net->layers[d], a);
        for (size_t i = 0; i < k; i++)
            ok &= all_finite(a[i].p, a[i].n);
    }
    return ok && all_finite(state, n_opt) ? HTNN_OK : not_finite(pos);
}

void guard_confirm(fit_guard *g)
{
    if (g->pending) {
        g->good = 1 - g->good;
        g->pending = 0;
        g->valid = 1;
    }
}

void guard_restore(const fit_guard *g, htnn_net *net, htnn_optimizer *opt,
                   fit_position *pos, size_t *order)
{
    const fit_snapshot *s = &g->slot[g->good];
    size_t n_opt;
    float *state = optimizer_state(opt, &n_opt);
    net_load(net, s->values);
    memcpy(state, s->values + g->n_net, g->n_opt * sizeof *state);
    if (g->n_order)
        memcpy(order, s->order, g->n_order * sizeof *order);
    net->rng = s->rng;
    optimizer_set_progress(opt, s->steps, s->lr);
    *pos = s->pos;
}
