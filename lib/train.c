/* FTPROP-MB: one mini-batch at a time (htnn_net_train_batch) or epochs of
 * shuffled mini-batches (htnn_net_fit).  For each batch: forward; score the
 * output; then from the top layer down: parameter gradients, the input
 * gradient G, targets for the layer below from the heuristic, the
 * optimizer update, and the layer below's loss gradient.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "alloc.h"
#include "checkpoint.h"
#include "dense.h"
#include "error.h"
#include "factors.h"
#include "heuristic_internal.h"
#include "layers.h"
#include "htnn/train.h"
#include "losses.h"
#include "net_internal.h"
#include "optimizer_internal.h"
#include "options.h"
#include "snapshot.h"
#include "train_mt.h"
#include "workers.h"

static htnn_layer_view make_view(const htnn_net *net, size_t d, size_t m)
{
    const htnn_layer *layer = net->layers[d], *below = net->layers[d - 1];
    const layer_scratch *s = &net->scratch[d], *sb = &net->scratch[d - 1];
    /* weights and bias are the dense matrix W[d] the view documents; other
     * kinds of layer show none */
    int dense = layer->kind == HTNN_LAYER_DENSE;
    htnn_layer_view v = {sizeof v, d, m, layer->in, layer->out, sb->h, sb->z, s->z,
                         dense ? layer_weights(layer) : NULL, dense ? layer->b : NULL,
                         s->t, s->tw, s->dz, net->grad_input,
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

void below_loss_grad(const htnn_layer *below, const float *z, const float *t, const float *tw,
                     const float *g, float *dz, size_t n)
{
    if (activation_is_hard(below->activation)) {
        loss_grad_weighted(below->loss, below->activation, !below->weight_targets, z, t, tw,
                           dz, n);
        return;
    }
    if (below->activation == HTNN_ACT_RELU) {
        for (size_t i = 0; i < n; i++)
            dz[i] = z[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    memcpy(dz, g, n * sizeof *g);
}

static void below_grad(const htnn_layer *below, layer_scratch *sb, const float *g, size_t n)
{
    below_loss_grad(below, sb->z, sb->t, sb->tw, g, sb->dz, n);
}

static htnn_status set_targets_below(htnn_net *net, const htnn_heuristic *h, size_t d,
                                     size_t m)
{
    const htnn_layer *below = net->layers[d - 1];
    layer_scratch *sb = &net->scratch[d - 1];
    size_t n = m * below->out;
    if (!activation_is_hard(below->activation)) {
        /* real-valued units take no targets: plain back-propagation */
        below_grad(below, sb, net->grad_input, n);
        return HTNN_OK;
    }
    if (!h->writes_all)
        targets_from_outputs(below, sb->z, sb->t, sb->tw, n);
    htnn_layer_view view = make_view(net, d, m);
    htnn_status st = heuristic_run(h, &view, sb->t, sb->tw);
    if (st == HTNN_OK && !h->writes_all)
        st = heuristic_check_targets(h, d, sb->t, sb->tw, n);
    if (st != HTNN_OK)
        return st;
    below_grad(below, sb, net->grad_input, n);
    return HTNN_OK;
}

static int distributed(const htnn_net *net) { return net->reducer.allreduce_sum != NULL; }

/* How a step's gradient sums meet the other ranks' (see backward). */
enum { SUM_NOW, SUM_OVERLAP, SUM_SHARDED };

/* Sums deferred to the end of the sweep need the default targets before the
 * update and the built-in heuristic: a caller's heuristic may read W[d] in
 * its view, which then must be the updated one, as alone. */
static int sum_mode(const htnn_net *net, const htnn_heuristic *h)
{
    const htnn_reducer *r = &net->reducer;
    if (!distributed(net) || net->opts.targets_after_update || h != heuristic_builtin_loss())
        return SUM_NOW;
    if (net->shard_step && r->reduce_scatter_sum != NULL)
        return SUM_SHARDED;
    return r->start_sum != NULL ? SUM_OVERLAP : SUM_NOW;
}

/* Batch norm's input gradient needs its summed gradients, and a layer
 * without weights has nothing to shard: summed at once, updated whole. */
static int sum_whole(const htnn_layer *layer)
{
    return layer->kind == HTNN_LAYER_BATCHNORM || layer->n_w == 0;
}

/* Sums a layer's weight and bias gradients over the ranks: at once, or
 * started for wait_all (SUM_OVERLAP), or the weights only into this
 * rank's block (SUM_SHARDED). */
static htnn_status reduce_layer_grads(htnn_net *net, htnn_layer *layer, int mode)
{
    const htnn_reducer *r = &net->reducer;
    float *arrays[2] = {layer->gw, layer->gb};
    size_t counts[2] = {layer->n_w, layer->n_b};
    htnn_status st = HTNN_OK;
    if (sum_whole(layer))
        mode = SUM_NOW;
    for (int k = 0; k < 2 && st == HTNN_OK; k++) {
        if (counts[k] == 0)
            continue;
        if (mode == SUM_OVERLAP)
            st = r->start_sum(arrays[k], counts[k], r->user);
        else if (mode == SUM_SHARDED && k == 0)
            st = r->reduce_scatter_sum(arrays[k], counts[k], r->user);
        else
            st = net_reduce_sum(net, arrays[k], counts[k]);
    }
    return st;
}

/* SUM_SHARDED, after the sweep: this rank updates its block of each weight
 * matrix (and the whole bias), then every rank's blocks are gathered. */
static htnn_status sharded_updates(htnn_net *net, htnn_optimizer *opt)
{
    const htnn_reducer *r = &net->reducer;
    htnn_status st = HTNN_OK;
    for (size_t d = net->n_layers; st == HTNN_OK && d-- > 0;) {
        htnn_layer *layer = net->layers[d];
        size_t first, n;
        if (sum_whole(layer)) {
            optimizer_update_layer(opt, layer);
            continue;
        }
        net_block(net, layer->n_w, &first, &n);
        train_mt_update_weights(net, opt, layer, first, n);
        optimizer_update_bias(opt, layer);
        st = r->allgather(layer->w, layer->n_w, r->user);
        optimizer_finish_weights(layer);
    }
    net->moments_sharded = 1;
    return st;
}

/* Gathers the blocks of the optimizer's weight moments after sharded steps,
 * so that every rank's optimizer holds the whole state (snapshots,
 * checkpoints, and whatever the caller does with it after the fit). */
static htnn_status sync_moments(htnn_net *net, htnn_optimizer *opt)
{
    const htnn_reducer *r = &net->reducer;
    htnn_status st = HTNN_OK;
    if (!net->moments_sharded)
        return HTNN_OK;
    for (size_t d = 0; d < net->n_layers && st == HTNN_OK; d++) {
        htnn_layer *layer = net->layers[d];
        float *moments[2];
        size_t k = sum_whole(layer) ? 0 : optimizer_weight_moments(opt, layer, moments);
        while (k-- > 0 && st == HTNN_OK)
            st = r->allgather(moments[k], layer->n_w, r->user);
    }
    net->moments_sharded = 0;
    return st;
}

/* The summed loss and correct count of the whole batch: every rank must
 * see the same ones, so that the divergence check agrees everywhere. */
static htnn_status reduce_score(htnn_net *net, double *loss, size_t *correct)
{
    float v[2] = {(float)*loss, (float)*correct};
    if (!distributed(net))
        return HTNN_OK;
    if (net->reduce_status != HTNN_OK)   /* a forward-pass reduction failed */
        return net->reduce_status;
    htnn_status st = net_reduce_sum(net, v, 2);
    *loss = v[0];
    *correct = (size_t)v[1];
    return st;
}

/* gw, gb of layer d; a rank without rows of this batch adds zeros. */
static void layer_grads(htnn_layer *layer, const float *in, const layer_scratch *s, size_t m)
{
    if (m > 0) {
        layer_ops_of(layer)->param_grads(layer, in, s, m);
        return;
    }
    memset(layer->gw, 0, layer->n_w * sizeof *layer->gw);
    memset(layer->gb, 0, layer->n_b * sizeof *layer->gb);
}

/* G for layer d-1 and its targets (nothing to do without rows). */
static htnn_status targets_below(htnn_net *net, const htnn_heuristic *h, size_t d, size_t m)
{
    if (m == 0)
        return HTNN_OK;
    layer_ops_of(net->layers[d])->input_grad(net->layers[d], &net->scratch[d], m,
                                             net->grad_input);
    return set_targets_below(net, h, d, m);
}

/* One layer of the backward sweep.  Data-parallel, the gradients are
 * summed over the ranks (sum_mode); with deferred sums (SUM_OVERLAP,
 * SUM_SHARDED) the update waits for the end of the sweep. */
static htnn_status backward_layer(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                                  const float *x, size_t m, size_t d, int mode)
{
    htnn_layer *layer = net->layers[d];
    int after = net->opts.targets_after_update;
    const float *in = d ? net->scratch[d - 1].h : x;
    htnn_status st = HTNN_OK;
    if (mode == SUM_SHARDED && factors_used(net, layer)) {
        st = factors_grads(net, layer, in, m);
    } else {
        layer_grads(layer, in, &net->scratch[d], m);
        if (distributed(net))
            st = reduce_layer_grads(net, layer, mode);
    }
    if (st == HTNN_OK && d > 0 && !after)
        /* default: G and the heuristic's view use the pre-update W[d] */
        st = targets_below(net, h, d, m);
    if (st == HTNN_OK && mode == SUM_NOW)
        optimizer_update_layer(opt, layer);
    if (st == HTNN_OK && d > 0 && after)
        st = targets_below(net, h, d, m);
    return st;
}

/* After the sweep: the started sums are awaited, and the updates that
 * waited for them run; `threaded`: the net's threads ran the sweep, which
 * leaves every update for now, and they run them. */
static htnn_status end_sweep(htnn_net *net, htnn_optimizer *opt, int mode, int threaded,
                             htnn_status st)
{
    if (mode == SUM_OVERLAP) {
        htnn_status waited = net->reducer.wait_all(net->reducer.user);
        st = st != HTNN_OK ? st : waited;
    }
    if (st != HTNN_OK)
        return st;
    if (mode == SUM_SHARDED)
        return sharded_updates(net, opt);
    if (threaded)
        train_mt_update(net, opt);
    else if (mode == SUM_OVERLAP)
        for (size_t d = net->n_layers; d-- > 0;)
            optimizer_update_layer(opt, net->layers[d]);
    return HTNN_OK;
}

/* From the top layer down.  Data-parallel with the default
 * targets_after_update = 0, a layer's update cannot change the layers
 * below in this batch, so the updates can wait for the end of the sweep:
 * non-blocking sums then run while it goes on (SUM_OVERLAP), or each rank
 * updates only its block of the weights (SUM_SHARDED). */
static htnn_status backward(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                            const float *x, size_t m)
{
    int mode = sum_mode(net, h);
    htnn_status st = HTNN_OK;
    for (size_t d = net->n_layers; d-- > 0 && st == HTNN_OK;)
        st = backward_layer(net, opt, h, x, m, d, mode);
    return end_sweep(net, opt, mode, 0, st);
}

/* Data-parallel on the net's threads (train_mt.c): per layer from the top,
 * the threads' gradients and targets below, then the layer's sums; every
 * update after the sweep (targets are set before the update, so none of
 * them can change what the sweep computes). */
static htnn_status backward_threads(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                                    const float *x, size_t m)
{
    int mode = sum_mode(net, h);
    htnn_status st = HTNN_OK;
    for (size_t d = net->n_layers; d-- > 0 && st == HTNN_OK;) {
        train_mt_layer_grads(net, x, m, d);
        st = reduce_layer_grads(net, net->layers[d], mode);
    }
    return end_sweep(net, opt, mode, 1, st);
}

/* One FTPROP-MB batch on prepared state (inputs checked, scratch sized,
 * optimizer bound): m local rows of a global batch of `rows` (== m when
 * the net trains alone).  *loss is the summed output loss of the global
 * batch. */
static htnn_status train_step(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                              const float *x, const int32_t *labels, size_t m, size_t rows,
                              double *loss, size_t *correct)
{
    htnn_status st;
    int mt = train_mt_usable(net, h);
    net->step_rows = rows;
    net->reduce_status = HTNN_OK;
    if (mt)
        train_mt_forward(net, x, m);
    else
        net_forward(net, x, m);
    *loss = output_score(net, labels, m, 1, correct);
    if ((st = reduce_score(net, loss, correct)) == HTNN_OK && !isfinite(*loss))
        st = error_set(HTNN_ENUMERIC, "training loss became %g", *loss);
    if (st == HTNN_OK) {
        net->targets.batch = m;
        optimizer_begin_step(opt);
        if (mt && !distributed(net))
            train_mt_backward(net, opt, x, m);
        else if ((st = (mt ? backward_threads : backward)(net, opt, h, x, m)) != HTNN_OK)
            net->targets.batch = 0;
    }
    net->step_rows = 0;
    return st;
}

/* Lets a heuristic that keeps scratch (the built-in search ones) size it
 * for every dense layer now: running out of memory must stop a batch
 * before any layer is updated, not half-way down. */
static htnn_status reserve_heuristic(const htnn_net *net, const htnn_heuristic *h,
                                     size_t rows)
{
    htnn_status st = HTNN_OK;
    for (size_t d = 1; d < net->n_layers && st == HTNN_OK; d++) {
        const htnn_layer *layer = net->layers[d];
        if (layer->kind == HTNN_LAYER_DENSE)
            st = heuristic_reserve(h, rows, layer->in, layer->out);
        else if (h->reserve && activation_is_hard(net->layers[d - 1]->activation))
            /* the search heuristics need W[d]: refuse before any update */
            st = error_set(HTNN_EUNSUPPORTED, "the %s heuristic sets targets from a dense "
                           "layer's W[d], but layer %zu is not dense (use the loss-driven "
                           "heuristic on conv nets)", h->name, d);
    }
    return st;
}

static htnn_status prepare(htnn_net *net, htnn_optimizer *opt, const htnn_heuristic *h,
                           size_t rows)
{
    htnn_status st = net_reserve(net, rows);
    if (st == HTNN_OK)
        st = optimizer_bind(opt, net);
    if (st == HTNN_OK)
        st = reserve_heuristic(net, h, rows);
    net_apply_threads(net);
    return st;
}

static const htnn_heuristic *heuristic_or_default(const htnn_heuristic *h)
{
    return h ? h : heuristic_builtin_loss();
}

/* The rows of the global batch: this call's, summed over the ranks when
 * the net trains data-parallel (exact in a float up to 2^24 rows). */
static htnn_status global_rows(htnn_net *net, size_t count, size_t *rows)
{
    float v = (float)count;
    htnn_status st = HTNN_OK;
    net->reduce_status = HTNN_OK;
    if (distributed(net))
        st = net_reduce_sum(net, &v, 1);
    *rows = distributed(net) ? (size_t)v : count;
    return st;
}

htnn_status htnn_net_train_batch(htnn_net *net, htnn_optimizer *opt, htnn_heuristic *heuristic,
                                 const float *x, const int32_t *labels, size_t count,
                                 htnn_batch_result *result)
{
    htnn_status st;
    double loss;
    size_t correct, rows;
    if (net == NULL || opt == NULL || labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_train_batch: net, optimizer or labels is NULL");
    if (result && (result->struct_size < sizeof(size_t) || result->struct_size > sizeof *result))
        return error_set(HTNN_EINVAL, "htnn_net_train_batch: bad result struct_size");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK ||
        (st = prepare(net, opt, heuristic_or_default(heuristic), count)) != HTNN_OK ||
        (st = global_rows(net, count, &rows)) != HTNN_OK)
        return st;
    st = train_step(net, opt, heuristic_or_default(heuristic), x, labels, count, rows, &loss,
                    &correct);
    if (st == HTNN_OK && result) {
        htnn_batch_result r = {sizeof r, loss / (double)rows, correct};
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
    size_t *sel;     /* the batch's rows of x, in order */
    float *factors;  /* sufficient factors (factors.h), or NULL */
} fit_state;

/* Safe to call twice: a failed fit_state_init frees, and so does fit_end. */
static void fit_state_free(fit_state *fs)
{
    mem_free(fs->order);
    mem_free(fs->xb);
    mem_free(fs->yb);
    mem_free(fs->sel);
    mem_free(fs->factors);
    fs->factors = NULL;
    fs->order = NULL;
    fs->xb = NULL;
    fs->yb = NULL;
    fs->sel = NULL;
}

static htnn_status fit_state_init(fit_state *fs, size_t count, size_t rows, size_t width)
{
    fs->order = mem_malloc(count * sizeof *fs->order);
    fs->xb = mem_malloc(rows * width * sizeof *fs->xb);
    fs->yb = mem_malloc(rows * sizeof *fs->yb);
    fs->sel = mem_malloc(rows * sizeof *fs->sel);
    if (fs->order == NULL || fs->xb == NULL || fs->yb == NULL || fs->sel == NULL) {
        fit_state_free(fs);
        return error_set(HTNN_ENOMEM, "htnn_net_fit: out of memory");
    }
    for (size_t i = 0; i < count; i++)
        fs->order[i] = i;
    return HTNN_OK;
}

/* x holds examples [shard_first, shard_first + count) of shard_total; alone,
 * a net has no other rank to train the rest. */
static htnn_status check_shard(const htnn_net *net, size_t count, const htnn_fit_options *o)
{
    if (o->shard_total == 0 && o->shard_first == 0)
        return HTNN_OK;
    if (o->shard_first > o->shard_total || count > o->shard_total - o->shard_first)
        return error_set(HTNN_EINVAL, "htnn_net_fit: the shard [%zu, %zu + %zu) is not a "
                         "part of the %zu examples of shard_total", o->shard_first,
                         o->shard_first, count, o->shard_total);
    if (!distributed(net) && count != o->shard_total)
        return error_set(HTNN_EINVAL, "htnn_net_fit: a shard of %zu of the %zu examples "
                         "needs a reducer (htnn_net_set_reducer): alone, a net trains the "
                         "whole set", count, o->shard_total);
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
    if ((o->resume != 0 && o->resume != 1) || (o->resume && o->checkpoint_path == NULL) ||
        (o->checkpoint_path != NULL && o->checkpoint_path[0] == '\0'))
        return error_set(HTNN_EINVAL, "htnn_net_fit: resume must be 0 or 1 and needs a "
                         "checkpoint_path, which must not be empty");
    if ((st = net_check_batch(net, x, labels, count)) != HTNN_OK ||
        (st = check_shard(net, count, o)) != HTNN_OK)
        return st;
    if (o->val_count == 0)
        return HTNN_OK;
    if (o->val_labels == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_fit: validation labels are NULL");
    if ((st = net_check_batch(net, o->val_x, o->val_labels, o->val_count)) != HTNN_OK)
        return error_set(st, "validation data: %s", htnn_last_error());
    return HTNN_OK;
}

/* One htnn_net_fit call: its inputs, buffers, position, checkpoints and
 * the snapshots it returns to when training diverges. */
typedef struct fit_run {
    htnn_net *net;
    htnn_optimizer *opt;
    const htnn_heuristic *h;
    const float *x;        /* examples [shard_first, shard_first + shard_rows) */
    const int32_t *labels; /* of the training set's `count` (all of them unsharded) */
    size_t shard_first, shard_rows;
    size_t count, bs, batches;
    htnn_fit_options o;
    fit_state fs;
    fit_fingerprint fp;  /* set with a checkpoint path */
    fit_position pos;
    fit_guard guard;
} fit_run;

static int report(const fit_run *r, size_t batch)
{
    const fit_position *pos = &r->pos;
    if (r->o.progress == NULL)
        return 0;
    htnn_progress p = {sizeof p, pos->epoch, r->o.epochs, batch, r->batches,
                       pos->result.loss, pos->result.accuracy, batch + 1 == r->batches,
                       pos->result.val_loss, pos->result.val_accuracy,
                       htnn_optimizer_learning_rate(r->opt)};
    return r->o.progress(&p, r->o.progress_user);
}

/* The learning rate of the epoch and, unless the fit resumes inside it,
 * its shuffle. */
static void begin_epoch(fit_run *r)
{
    htnn_optimizer_set_epoch(r->opt, r->pos.epoch, r->o.epochs);
    if (r->pos.batch > 0)
        return;
    if (r->o.shuffle)
        rng_shuffle(&r->net->rng, r->fs.order, r->count);
    r->pos.result.val_loss = r->pos.result.val_accuracy = NAN;
}

static void end_epoch(fit_position *pos)
{
    pos->epoch++;
    pos->batch = 0;
    pos->loss_sum = 0.0;
    pos->correct = pos->seen = 0;
    pos->result.epochs_run++;
}

/* The rows [lo, hi) of a global batch of m rows this rank trains (all of
 * them alone): rank r of P takes [floor(r*m/P), floor((r+1)*m/P)). */
static void rank_slice(const htnn_reducer *red, size_t m, size_t *lo, size_t *hi)
{
    size_t ranks = red->allreduce_sum ? (size_t)red->ranks : 1;
    size_t rank = red->allreduce_sum ? (size_t)red->rank : 0;
    *lo = m * rank / ranks;
    *hi = m * (rank + 1) / ranks;
}

/* Copying a shuffled batch's rows waits on memory (each row is somewhere
 * else in a large array), so the net's threads share it. */
typedef struct gather_job {
    float *dst;
    const float *src;
    const size_t *sel;
    size_t rows, width;
} gather_job;

static void gather_part(void *arg, size_t part, size_t parts)
{
    const gather_job *g = arg;
    for (size_t i = g->rows * part / parts; i < g->rows * (part + 1) / parts; i++)
        memcpy(g->dst + i * g->width, g->src + g->sel[i] * g->width,
               g->width * sizeof *g->dst);
}

/* This rank's rows of the global batch at [first, first + m) of the
 * epoch's order, *rows of them: with the whole set on every rank, its
 * slice of the batch (rank_slice); with a shard, the batch's examples that
 * fall in it.  Shuffled, they are gathered; unshuffled, they are
 * consecutive examples, a slice of x. */
static const float *batch_inputs(const fit_run *r, size_t first, size_t m, size_t *rows,
                                 const int32_t **yb)
{
    size_t lo = 0, hi = m, w = r->net->input_width, end = r->shard_first + r->shard_rows;
    if (r->o.shard_total == 0)
        rank_slice(&r->net->reducer, m, &lo, &hi);
    if (!r->o.shuffle) {
        size_t a = first + lo > r->shard_first ? first + lo : r->shard_first;
        size_t b = first + hi < end ? first + hi : end;
        *rows = b > a ? b - a : 0;
        a = *rows ? a - r->shard_first : 0;
        *yb = r->labels + a;
        return r->x + a * w;
    }
    *rows = 0;
    for (size_t i = lo; i < hi; i++) {
        size_t k = r->fs.order[first + i] - r->shard_first;  /* wraps below the shard */
        if (k >= r->shard_rows)
            continue;
        r->fs.sel[*rows] = k;
        r->fs.yb[(*rows)++] = r->labels[k];
    }
    gather_job g = {r->fs.xb, r->x, r->fs.sel, *rows, w};
    workers_run(r->net->workers, gather_part, &g);
    *yb = r->fs.yb;
    return r->fs.xb;
}

/* Data-parallel with a progress callback: the fit stops after this batch
 * if the callback asked for it on any rank (a signal that reaches the
 * ranks at different times must not leave some of them training alone). */
static htnn_status agree_on_stop(htnn_net *net, int *stop)
{
    float v = *stop ? 1.0f : 0.0f;
    if (!distributed(net))
        return HTNN_OK;
    htnn_status st = net_reduce_sum(net, &v, 1);
    *stop = v > 0.0f;
    return st;
}

/* Trains batch b, validates after an epoch's last batch, reports. */
static htnn_status run_batch(fit_run *r, size_t b, int *stop)
{
    fit_position *pos = &r->pos;
    size_t first = b * r->bs, m = r->count - first < r->bs ? r->count - first : r->bs, right;
    size_t rows;
    const int32_t *yb;
    const float *xb = batch_inputs(r, first, m, &rows, &yb);
    double loss;
    /* the factors are for the fit's own batches, whose shares it knows,
     * not for a batch the progress callback trains on the same net */
    r->net->factors = r->fs.factors;
    htnn_status st = train_step(r->net, r->opt, r->h, xb, yb, rows, m, &loss, &right);
    r->net->factors = NULL;
    if (st != HTNN_OK)
        return st;
    guard_confirm(&r->guard);
    pos->loss_sum += loss;
    pos->correct += right;
    pos->seen += m;
    pos->batch = b + 1;
    pos->result.batches_run++;
    pos->result.loss = pos->loss_sum / (double)pos->seen;
    pos->result.accuracy = (double)pos->correct / (double)pos->seen;
    if (b + 1 == r->batches && r->o.val_count > 0 &&
        (st = htnn_net_evaluate(r->net, r->o.val_x, r->o.val_labels, r->o.val_count,
                                &pos->result.val_loss, &pos->result.val_accuracy)) != HTNN_OK)
        return st;
    *stop = report(r, b);
    return r->o.progress ? agree_on_stop(r->net, stop) : HTNN_OK;
}

/* Between batches: a snapshot at the end of each epoch and with each
 * checkpoint (only its check when no batch follows: it could never be
 * restored); a checkpoint when one is due, when the fit ends and when the
 * callback stopped it. */
static htnn_status after_batch(fit_run *r, int stop)
{
    const fit_position *pos = &r->pos;
    int end_of_epoch = pos->batch == 0, finished = pos->epoch == r->o.epochs;
    size_t every = r->o.checkpoint_every;
    int due = r->o.checkpoint_path != NULL &&
              (stop || finished ||
               (every ? pos->result.batches_run % every == 0 : end_of_epoch));
    htnn_status st = HTNN_OK;
    if (due || end_of_epoch)
        st = sync_moments(r->net, r->opt);
    if (st == HTNN_OK && (due || end_of_epoch))
        st = stop || finished ? guard_check(r->net, r->opt, pos)
                              : guard_take(&r->guard, r->net, r->opt, pos, r->fs.order);
    if (st == HTNN_OK && due)
        st = checkpoint_write(r->o.checkpoint_path, r->net, r->opt, &r->fp, pos, r->fs.order);
    return st;
}

static htnn_status run_epoch(fit_run *r)
{
    htnn_status st = HTNN_OK;
    int stop = 0;
    begin_epoch(r);
    for (size_t b = r->pos.batch; b < r->batches && st == HTNN_OK && !stop; b++) {
        if ((st = run_batch(r, b, &stop)) != HTNN_OK)
            break;
        if (b + 1 == r->batches)
            end_epoch(&r->pos);
        r->pos.result.stopped = stop;
        st = after_batch(r, stop);
    }
    return st;
}

/* Training diverged: back to the last good snapshot (and the checkpoint
 * file too, so that a resumed fit starts from a good state). */
static htnn_status diverged(fit_run *r)
{
    char why[256], failed[256] = "";
    snprintf(why, sizeof why, "%s", htnn_last_error());
    guard_restore(&r->guard, r->net, r->opt, &r->pos, r->fs.order);
    r->net->moments_sharded = 0;  /* the snapshot holds the whole state */
    if (r->o.checkpoint_path != NULL &&
        checkpoint_write(r->o.checkpoint_path, r->net, r->opt, &r->fp, &r->pos,
                         r->fs.order) != HTNN_OK)
        snprintf(failed, sizeof failed, "; rewriting the checkpoint failed: %s",
                 htnn_last_error());
    return error_set(HTNN_ENUMERIC, "%s; the net and the optimizer are back at their last "
                     "good state, epoch %zu batch %zu (%zu batches trained)%s", why,
                     r->pos.epoch, r->pos.batch, r->pos.result.batches_run, failed);
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

/* A sharded fit's optimizer leaves with its whole state on every rank
 * (unless a reduction failed: the ranks may no longer agree on anything). */
static htnn_status fit_finish(fit_run *r, htnn_status st)
{
    htnn_status synced = HTNN_OK;
    if (r->net->reduce_status == HTNN_OK)
        synced = sync_moments(r->net, r->opt);
    r->net->moments_sharded = 0;
    r->net->shard_step = 0;
    return st != HTNN_OK ? st : synced;
}

static void fit_end(fit_run *r)
{
    fit_state_free(&r->fs);
    guard_free(&r->guard);
}

/* first + (first + 1) + ... + (first + n - 1), modulo 2^64. */
static uint64_t index_sum(uint64_t first, uint64_t n)
{
    uint64_t pairs = n % 2 ? n * ((n - 1) / 2) : n / 2 * (n - 1);
    return n * first + pairs;
}

/* *all = 1 if ok holds on every rank: one small sum, so that all ranks
 * decide alike (a rank that fails alone would leave the others waiting in
 * a sum it never joins). */
static htnn_status all_ranks(htnn_net *net, int ok, int *all)
{
    float bad = ok ? 0.0f : 1.0f;
    htnn_status st = net_reduce_sum(net, &bad, 1);
    *all = st == HTNN_OK && bad == 0.0f;
    return st;
}

/* A data-parallel fit first checks that the ranks' data fit together:
 * every rank holds the whole set (the same count), or every rank a shard of
 * the same total and the shards add up to it (their sizes and the sums of
 * their example indices: shards that all start at 0 fail).  Otherwise the
 * ranks would train wrong batches silently, or some wait in a sum the others
 * never reach; two small sums make every rank fail alike.  The first also
 * adds up the shards' parts of the data fingerprint of a checkpoint. */
static htnn_status agree_on_data(fit_run *r)
{
    uint64_t ranks = (uint64_t)r->net->reducer.ranks, total = r->count;
    int sharded = r->o.shard_total != 0;
    uint64_t v[5] = {(uint64_t)sharded, r->shard_rows, total,
                     index_sum(r->shard_first, r->shard_rows), r->fp.data_hash};
    htnn_status st = net_reduce_u64(r->net, v, 5);
    if (st != HTNN_OK)
        return st;
    int ok = v[2] == ranks * total &&
             (sharded ? v[0] == ranks && v[1] == total && v[3] == index_sum(0, total)
                      : v[0] == 0), all;
    if ((st = all_ranks(r->net, ok, &all)) != HTNN_OK)
        return st;
    if (!all)
        return error_set(HTNN_EINVAL, "htnn_net_fit: the %d ranks' training data do not fit "
                         "together: every rank must pass the whole set (the same count), or "
                         "every rank a shard of the same shard_total, the shards tiling it "
                         "(this rank: examples [%zu, %zu + %zu) of %zu)",
                         r->net->reducer.ranks, r->shard_first, r->shard_first,
                         r->shard_rows, sharded ? r->count : 0);
    if (sharded)
        r->fp.data_hash = v[4];
    return HTNN_OK;
}

/* Resuming data-parallel, every rank must continue from the same point: a
 * rank without its checkpoint file starts afresh, and one that refused its
 * file stops, which would leave the others training other batches or
 * waiting.  st: this rank's resume. */
static htnn_status agree_on_resume(fit_run *r, htnn_status st)
{
    uint64_t ranks = (uint64_t)r->net->reducer.ranks, at = r->pos.result.batches_run;
    uint64_t sum = at;
    int all = 0;
    htnn_status red = net_reduce_u64(r->net, &sum, 1);
    if (red == HTNN_OK)
        red = all_ranks(r->net, st == HTNN_OK && sum == ranks * at, &all);
    if (st != HTNN_OK || red != HTNN_OK)
        return st != HTNN_OK ? st : red;
    if (!all)
        return error_set(HTNN_ESTATE, "htnn_net_fit: resuming, the %d ranks do not all "
                         "continue from the same point (this rank: after %zu batches; a rank "
                         "without its checkpoint file starts afresh): give every rank a copy "
                         "of the checkpoint", r->net->reducer.ranks,
                         r->pos.result.batches_run);
    return HTNN_OK;
}

/* Sharded steps of the single-threaded sweep on the whole set send dense
 * layers' gradients as factors where those are fewer values (factors.h);
 * rows: this rank's largest share of a batch.  (Each rank's share of a
 * batch from its own shard can be larger, and the threads' sweep computes
 * the gradients on the threads: both sum whole gradients.) */
static htnn_status factors_init(fit_run *r, size_t rows)
{
    htnn_net *net = r->net;
    size_t floats = factors_floats(net, rows);
    if (sum_mode(net, r->h) != SUM_SHARDED || r->o.shard_total != 0 ||
        train_mt_usable(net, r->h) || floats == 0)
        return HTNN_OK;
    if ((r->fs.factors = mem_malloc(floats * sizeof *r->fs.factors)) == NULL)
        return error_set(HTNN_ENOMEM, "htnn_net_fit: out of memory for the gradients' "
                         "factors (%zu values)", floats);
    net->factor_rows = rows;
    return HTNN_OK;
}

/* Buffers, the checkpoint to resume, and the first snapshot (the fit's
 * start is a good state by definition). */
static htnn_status fit_start(fit_run *r)
{
    const htnn_reducer *red = &r->net->reducer;
    size_t ranks = red->allreduce_sum ? (size_t)red->ranks : 1;
    /* the largest share of a batch: a shard may hold a whole batch */
    size_t rows = r->o.shard_total ? (r->bs < r->shard_rows ? r->bs : r->shard_rows)
                                   : (r->bs + ranks - 1) / ranks;
    htnn_status st = HTNN_OK;
    if (r->o.checkpoint_path != NULL)
        fit_fingerprint_init(&r->fp, r->x, r->labels, r->shard_rows, r->net->input_width,
                             &r->o);
    if (distributed(r->net))
        st = agree_on_data(r);
    if (st == HTNN_OK)
        st = prepare(r->net, r->opt, r->h, rows);
    if (st == HTNN_OK)
        st = fit_state_init(&r->fs, r->count, rows, r->net->input_width);
    if (st == HTNN_OK)
        st = factors_init(r, rows);
    if (st != HTNN_OK)
        return st;
    st = guard_init(&r->guard, r->net, r->opt, r->o.shuffle ? r->count : 0);
    if (st == HTNN_OK && r->o.resume)
        st = checkpoint_resume(r->o.checkpoint_path, r->net, r->opt, &r->fp, &r->pos,
                               r->fs.order);
    if (r->o.resume && distributed(r->net))
        st = agree_on_resume(r, st);
    if (st == HTNN_OK)
        st = guard_take(&r->guard, r->net, r->opt, &r->pos, r->fs.order);
    if (st == HTNN_OK)
        guard_confirm(&r->guard);
    return st;
}

htnn_status htnn_net_fit(htnn_net *net, htnn_optimizer *opt, htnn_heuristic *heuristic,
                         const float *x, const int32_t *labels, size_t count,
                         const htnn_fit_options *opts, htnn_fit_result *result)
{
    fit_run r = {0};
    htnn_fit_options defaults = HTNN_FIT_OPTIONS_INIT;
    htnn_status st;
    r.o = defaults;
    r.pos.result = (htnn_fit_result){sizeof r.pos.result, 0, 0, 0, NAN, NAN, NAN, NAN};
    if ((st = options_read(&r.o, sizeof r.o, opts, "fit options")) != HTNN_OK ||
        (st = copy_result(result, &r.pos.result)) != HTNN_OK ||
        (st = check_fit(net, opt, x, labels, count, &r.o)) != HTNN_OK)
        return st;
    r.net = net, r.opt = opt, r.h = heuristic_or_default(heuristic);
    r.x = x, r.labels = labels, r.shard_first = r.o.shard_first, r.shard_rows = count;
    r.count = r.o.shard_total ? r.o.shard_total : count;
    r.bs = r.o.batch_size < r.count ? r.o.batch_size : r.count;
    r.batches = (r.count + r.bs - 1) / r.bs;
    net->shard_step = 1;
    st = fit_start(&r);
    while (st == HTNN_OK && r.pos.epoch < r.o.epochs && !r.pos.result.stopped)
        st = run_epoch(&r);
    if (st == HTNN_ENUMERIC && r.guard.valid)
        st = diverged(&r);
    st = fit_finish(&r, st);
    copy_result(result, &r.pos.result);
    fit_end(&r);
    return st;
}
