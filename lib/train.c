/* FTPROP-MB: one mini-batch at a time (htnn_net_train_batch) or epochs of
 * shuffled mini-batches (htnn_net_fit).  For each batch: forward; score the
 * output; then from the top layer down: parameter gradients, the input
 * gradient G, targets for the layer below from the heuristic, the
 * optimizer update, and the layer below's loss gradient.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "dense.h"
#include "error.h"
#include "heuristic_internal.h"
#include "htnn/train.h"
#include "losses.h"
#include "net_internal.h"
#include "optimizer_internal.h"
#include "options.h"

static htnn_layer_view make_view(const htnn_net *net, size_t d, size_t m)
{
    const htnn_layer *layer = net->layers[d], *below = net->layers[d - 1];
    const layer_scratch *s = &net->scratch[d], *sb = &net->scratch[d - 1];
    htnn_layer_view v = {sizeof v, d, m, layer->in, layer->out, sb->h, sb->z, s->z,
                         layer_weights(layer), layer->b, s->t, s->tw, s->dz, net->grad_input,
                         layer->activation, layer->loss, below->activation,
                         below->qrelu_bits};
    return v;
}

/* FTPROP-MB step 1: hidden targets start at the current outputs. */
static void targets_from_outputs(const htnn_layer *below, const float *z, float *t, float *w,
                                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t[i] = loss_input(below->activation, z[i]) > 0.0f ? 1.0f : -1.0f;
        w[i] = 1.0f;
    }
}

/* dL/dZ of the layer below: its per-layer loss towards the targets for a
 * hard-threshold layer; plain back-propagation G * g'(Z) for a real one. */
static void below_loss_grad(const htnn_layer *below, layer_scratch *sb, const float *g,
                            size_t n)
{
    if (activation_is_hard(below->activation)) {
        loss_grad_weighted(below->loss, below->activation, !below->weight_targets, sb->z,
                           sb->t, sb->tw, sb->dz, n);
        return;
    }
    if (below->activation == HTNN_ACT_RELU) {
        for (size_t i = 0; i < n; i++)
            sb->dz[i] = sb->z[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    memcpy(sb->dz, g, n * sizeof *g);
}

static htnn_status set_targets_below(htnn_net *net, const htnn_heuristic *h, size_t d,
                                     size_t m)
{
    const htnn_layer *below = net->layers[d - 1];
    layer_scratch *sb = &net->scratch[d - 1];
    size_t n = m * below->out;
    if (!h->writes_all)
        targets_from_outputs(below, sb->z, sb->t, sb->tw, n);
    htnn_layer_view view = make_view(net, d, m);
    htnn_status st = heuristic_run(h, &view, sb->t, sb->tw);
    if (st == HTNN_OK && !h->writes_all)
        st = heuristic_check_targets(h, d, sb->t, sb->tw, n);
    if (st != HTNN_OK)
        return st;
    below_loss_grad(below, sb, net->grad_input, n);
    return HTNN_OK;
}

/* One FTPROP-MB batch on prepared state (inputs checked, scratch sized,
 * optimizer bound).  *loss is the summed output loss. */
static htnn_status train_step(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                              const float *x, const int32_t *labels, size_t m, double *loss,
                              size_t *correct)
{
    net_forward(net, x, m);
    *loss = output_score(net, labels, m, 1, correct);
    if (!isfinite(*loss))
        return error_set(HTNN_ENUMERIC, "training loss became %g", *loss);
    net->targets.batch = m;
    optimizer_begin_step(opt);
    int after = net->opts.targets_after_update;
    for (size_t d = net->n_layers; d-- > 0;) {
        htnn_layer *layer = net->layers[d];
        const float *in = d ? net->scratch[d - 1].h : x;
        htnn_status st = HTNN_OK;
        dense_param_grads(layer, in, net->scratch[d].dz, m);
        if (d > 0 && !after) {
            /* default: G and the heuristic's view use the pre-update W[d] */
            dense_input_grad(layer, net->scratch[d].dz, m, net->grad_input);
            st = set_targets_below(net, h, d, m);
        }
        if (st == HTNN_OK)
            optimizer_update_layer(opt, layer);
        if (st == HTNN_OK && d > 0 && after) {
            dense_input_grad(layer, net->scratch[d].dz, m, net->grad_input);
            st = set_targets_below(net, h, d, m);
        }
        if (st != HTNN_OK) {
            net->targets.batch = 0;
            return st;
        }
    }
    return HTNN_OK;
}

static htnn_status prepare(htnn_net *net, htnn_optimizer *opt, size_t rows)
{
    htnn_status st = net_reserve(net, rows);
    if (st == HTNN_OK)
        st = optimizer_bind(opt, net);
    net_apply_threads(net);
    return st;
}

static const htnn_heuristic *heuristic_or_default(const htnn_heuristic *h)
{
    return h ? h : heuristic_builtin_loss();
}

htnn_status htnn_net_train_batch(htnn_net *net, htnn_optimizer *opt, htnn_heuristic *heuristic,
                                 const float *x, const int32_t *labels, size_t count,
                                 htnn_batch_result *result)
{
    htnn_status st;
    double loss;
    size_t correct;
    if (net == NULL || opt == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_train_batch: net, optimizer or labels is NULL");
    if (result && (result->struct_size < sizeof(size_t) || result->struct_size > sizeof *result))
        return error_set(HTNN_EINVAL, "htnn_net_train_batch: bad result struct_size");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK ||
        (st = prepare(net, opt, count)) != HTNN_OK)
        return st;
    st = train_step(net, opt, heuristic_or_default(heuristic), x, labels, count, &loss, &correct);
    if (st == HTNN_OK && result) {
        htnn_batch_result r = {sizeof r, loss / (double)count, correct};
        memcpy((char *)result + sizeof(size_t), (char *)&r + sizeof(size_t),
               result->struct_size - sizeof(size_t));
    }
    return st;
}

/* Everything an epoch loop needs, allocated once before the first batch. */
typedef struct fit_state {
    size_t *order;   /* example order of the current epoch */
    float *xb;       /* gathered batch inputs */
    int32_t *yb;     /* gathered batch labels */
} fit_state;

static void fit_state_free(fit_state *fs)
{
    free(fs->order);
    free(fs->xb);
    free(fs->yb);
}

static htnn_status fit_state_init(fit_state *fs, size_t count, size_t rows, size_t width)
{
    fs->order = malloc(count * sizeof *fs->order);
    fs->xb = malloc(rows * width * sizeof *fs->xb);
    fs->yb = malloc(rows * sizeof *fs->yb);
    if (fs->order == NULL || fs->xb == NULL || fs->yb == NULL) {
        fit_state_free(fs);
        return error_set(HTNN_ENOMEM, "htnn_net_fit: out of memory");
    }
    for (size_t i = 0; i < count; i++)
        fs->order[i] = i;
    return HTNN_OK;
}

static htnn_status check_fit(htnn_net *net, htnn_optimizer *opt, const float *x,
                             const int32_t *labels, size_t count, const htnn_fit_options *o)
{
    htnn_status st;
    if (net == NULL || opt == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_fit: net, optimizer or labels is NULL");
    if (o->epochs == 0 || o->batch_size == 0 || (o->shuffle != 0 && o->shuffle != 1))
        return error_set(HTNN_EINVAL, "htnn_net_fit: epochs %zu and batch size %zu must be "
                         ">= 1, shuffle 0 or 1", o->epochs, o->batch_size);
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK)
        return st;
    if (o->val_count == 0)
        return HTNN_OK;
    if (o->val_labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_fit: validation labels are NULL");
    if ((st = net_check_batch(net, o->val_x, o->val_labels, o->val_count)) != HTNN_OK)
        return error_set(st, "validation data: %s", htnn_last_error());
    return HTNN_OK;
}

/* The batch's inputs: a slice of x when unshuffled, else gathered rows. */
static const float *batch_inputs(const fit_state *fs, const float *x, const int32_t *labels,
                                 size_t width, size_t first, size_t m, int shuffle,
                                 const int32_t **yb)
{
    if (!shuffle) {
        *yb = labels + first;
        return x + first * width;
    }
    for (size_t i = 0; i < m; i++) {
        size_t k = fs->order[first + i];
        memcpy(fs->xb + i * width, x + k * width, width * sizeof *x);
        fs->yb[i] = labels[k];
    }
    *yb = fs->yb;
    return fs->xb;
}

typedef struct epoch_totals {
    double loss;
    size_t correct, seen;
} epoch_totals;

static int report(const htnn_fit_options *o, const htnn_optimizer *opt, size_t epoch,
                  size_t batch, size_t batches, const epoch_totals *tot, double vl, double va)
{
    if (o->progress == NULL)
        return 0;
    htnn_progress p = {sizeof p, epoch, o->epochs, batch, batches,
                       tot->loss / (double)tot->seen, (double)tot->correct / (double)tot->seen,
                       batch + 1 == batches, vl, va, htnn_optimizer_learning_rate(opt)};
    return o->progress(&p, o->progress_user);
}

static htnn_status run_epoch(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                             const fit_state *fs, const float *x, const int32_t *labels,
                             size_t count, const htnn_fit_options *o, size_t epoch,
                             htnn_fit_result *res)
{
    size_t bs = o->batch_size < count ? o->batch_size : count;
    size_t batches = (count + bs - 1) / bs, width = net->input_width;
    epoch_totals tot = {0.0, 0, 0};
    double vl = NAN, va = NAN;
    for (size_t b = 0; b < batches; b++) {
        size_t first = b * bs, m = count - first < bs ? count - first : bs, right;
        const int32_t *yb;
        const float *xb = batch_inputs(fs, x, labels, width, first, m, o->shuffle, &yb);
        double loss;
        htnn_status st = train_step(net, opt, h, xb, yb, m, &loss, &right);
        if (st != HTNN_OK)
            return st;
        tot.loss += loss;
        tot.correct += right;
        tot.seen += m;
        res->batches_run++;
        if (b + 1 == batches && o->val_count > 0 &&
            (st = htnn_net_evaluate(net, o->val_x, o->val_labels, o->val_count, &vl, &va)) !=
                HTNN_OK)
            return st;
        if (report(o, opt, epoch, b, batches, &tot, vl, va)) {
            res->stopped = 1;
            break;
        }
    }
    res->loss = tot.loss / (double)tot.seen;
    res->accuracy = (double)tot.correct / (double)tot.seen;
    res->val_loss = vl;
    res->val_accuracy = va;
    return HTNN_OK;
}

static htnn_status copy_result(htnn_fit_result *out, const htnn_fit_result *r)
{
    if (out == NULL)
        return HTNN_OK;
    if (out->struct_size < sizeof(size_t) || out->struct_size > sizeof *out)
        return error_set(HTNN_EINVAL, "htnn_net_fit: bad result struct_size %zu",
                         out->struct_size);
    memcpy((char *)out + sizeof(size_t), (const char *)r + sizeof(size_t),
           out->struct_size - sizeof(size_t));
    return HTNN_OK;
}

htnn_status htnn_net_fit(htnn_net *net, htnn_optimizer *opt, htnn_heuristic *heuristic,
                         const float *x, const int32_t *labels, size_t count,
                         const htnn_fit_options *opts, htnn_fit_result *result)
{
    htnn_fit_options o = HTNN_FIT_OPTIONS_INIT;
    htnn_fit_result res = {sizeof res, 0, 0, 0, NAN, NAN, NAN, NAN};
    fit_state fs;
    htnn_status st;
    if ((st = options_read(&o, sizeof o, opts, "fit options")) != HTNN_OK ||
        (st = copy_result(result, &res)) != HTNN_OK ||
        (st = check_fit(net, opt, x, labels, count, &o)) != HTNN_OK)
        return st;
    size_t rows = o.batch_size < count ? o.batch_size : count;
    if ((st = prepare(net, opt, rows)) != HTNN_OK ||
        (st = fit_state_init(&fs, count, rows, net->input_width)) != HTNN_OK)
        return st;
    const htnn_heuristic *h = heuristic_or_default(heuristic);
    for (size_t epoch = 0; epoch < o.epochs && !res.stopped && st == HTNN_OK; epoch++) {
        htnn_optimizer_set_epoch(opt, epoch, o.epochs);
        if (o.shuffle)
            rng_shuffle(&net->rng, fs.order, count);
        st = run_epoch(net, opt, h, &fs, x, labels, count, &o, epoch, &res);
        res.epochs_run += st == HTNN_OK && !res.stopped;
    }
    fit_state_free(&fs);
    copy_result(result, &res);
    return st;
}
