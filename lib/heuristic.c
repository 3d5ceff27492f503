/* The heuristic vtable handle and the built-in loss-driven heuristic
 * (T[d-1] = sign(-G), weight |G|).
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "heuristic_internal.h"
#include "options.h"
#include "simd.h"

static htnn_status heuristic_new(const htnn_heuristic_ops *ops, void *state,
                                 htnn_heuristic **out)
{
    htnn_heuristic *h = mem_calloc(1, sizeof *h);
    if (h == NULL)
        return error_set(HTNN_ENOMEM, "heuristic: out of memory");
    h->ops = *ops;
    h->state = state;
    strncpy(h->name, ops->name ? ops->name : "user", sizeof h->name - 1);
    *out = h;
    return HTNN_OK;
}

htnn_status htnn_heuristic_create(const htnn_heuristic_ops *ops, void *state,
                                  htnn_heuristic **out)
{
    htnn_heuristic_ops o = {sizeof o, NULL, NULL, NULL};
    htnn_status st;
    if (ops == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_create: ops or out is NULL");
    if ((st = options_read(&o, sizeof o, ops, "heuristic ops")) != HTNN_OK)
        return st;
    if (o.set_targets == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_create: ops->set_targets is NULL");
    return heuristic_new(&o, state, out);
}

/* G == 0 gives target 0 with weight 0: the unit's input did not matter. */
HTNN_CLONES
static void loss_targets(const float *g, float *t, float *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        t[i] = gi < 0.0f ? 1.0f : (gi > 0.0f ? -1.0f : 0.0f);
        w[i] = gi < 0.0f ? -gi : gi;
    }
}

void heuristic_loss_targets(const float *g, float *t, float *w, size_t n)
{
    loss_targets(g, t, w, n);
}

static htnn_status loss_set_targets(void *state, const htnn_layer_view *view, float *t,
                                    float *w)
{
    (void)state;
    loss_targets(view->grad_input, t, w, view->batch * view->in_width);
    return HTNN_OK;
}

int heuristic_is_loss(const htnn_heuristic *h)
{
    return h->ops.set_targets == loss_set_targets;
}

/* Immutable, so sharing one instance between nets and threads is safe. */
static const htnn_heuristic builtin_loss = {
    {sizeof(htnn_heuristic_ops), "loss", loss_set_targets, NULL}, NULL, "loss", 1, NULL};

const htnn_heuristic *heuristic_builtin_loss(void) { return &builtin_loss; }

htnn_status htnn_heuristic_create_loss(htnn_heuristic **out)
{
    if (out == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_create_loss: out is NULL");
    htnn_status st = heuristic_new(&builtin_loss.ops, NULL, out);
    if (st == HTNN_OK)
        (*out)->writes_all = 1;
    return st;
}

void htnn_heuristic_free(htnn_heuristic *heuristic)
{
    if (heuristic == NULL)
        return;
    if (heuristic->ops.destroy)
        heuristic->ops.destroy(heuristic->state);
    mem_free(heuristic);
}

const char *htnn_heuristic_name(const htnn_heuristic *heuristic)
{
    return heuristic ? heuristic->name : "";
}

/* Library codes pass through; anything else a callback returns is
 * reported as HTNN_ECALLBACK. */
static htnn_status callback_status(const htnn_heuristic *h, htnn_status st)
{
    if (st == HTNN_OK)
        return st;
    if (st < HTNN_OK && st >= HTNN_ECALLBACK)
        return st;
    return error_set(HTNN_ECALLBACK, "heuristic '%s' failed with status %d", h->name,
                     (int)st);
}

htnn_status heuristic_check_targets(const htnn_heuristic *h, size_t d, const float *t,
                                    const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((t[i] != 1.0f && t[i] != -1.0f && t[i] != 0.0f) || !(w[i] >= 0.0f) ||
            w[i] == INFINITY)
            return error_set(HTNN_ECALLBACK, "heuristic '%s' gave layer %zu target %g with "
                             "weight %g at entry %zu (targets must be -1, 0 or +1, weights "
                             "finite and >= 0)", h->name, d - 1, (double)t[i], (double)w[i], i);
    return HTNN_OK;
}

htnn_status heuristic_reserve(const htnn_heuristic *h, size_t rows, size_t in, size_t out)
{
    return h->reserve ? h->reserve(h->state, rows, in, out) : HTNN_OK;
}

htnn_status heuristic_run(const htnn_heuristic *h, const htnn_layer_view *view,
                          float *targets, float *weights)
{
    return callback_status(h, h->ops.set_targets(h->state, view, targets, weights));
}

htnn_status htnn_heuristic_set_targets(htnn_heuristic *heuristic, const htnn_layer_view *view,
                                       float *targets, float *weights)
{
    if (heuristic == NULL || view == NULL || targets == NULL || weights == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_set_targets: NULL argument");
    if (view->struct_size < sizeof *view || view->grad_input == NULL)
        return error_set(HTNN_EINVAL, "htnn_heuristic_set_targets: incomplete view");
    return heuristic_run(heuristic, view, targets, weights);
}
