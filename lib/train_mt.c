/* The FTPROP-MB step of a dense net on the net's own threads.
 *
 * Why not leave the threads to BLAS: between a step's eight sgemms come
 * the activations, the targets, the loss gradients and the optimizer,
 * which BLAS cannot run in parallel, and its idle threads spin meanwhile.
 * Here every thread owns a fixed block of units of each layer for the
 * whole step: it computes them with single-threaded sgemms on its block
 * of W (forward, gW) or of G (input gradient), and then the elementwise
 * work of the same block.  Nothing is summed across threads, so no
 * partial buffers and no reduction; a step costs one fork-join per large
 * layer going up and one coming down (small layers run on the caller).
 * SPDX-License-Identifier: MIT */
#include "train_mt.h"

#include <cblas.h>
#include <string.h>

#include "activations.h"
#include "dense.h"
#include "workers.h"

/* Units are split in blocks of 16 (a 64-byte line of floats), so two
 * threads share at most one cache line per row at their boundary. */
#define UNIT_BLOCK 16

/* Below this many multiply-adds a layer's job runs on the calling thread:
 * split, it was slower on the reference MLP (the 512 x 10 output layer's
 * backward job: about 1.2 million). */
#define PARALLEL_MIN_WORK ((size_t)1 << 21)

typedef struct mt_job {
    htnn_net *net;
    htnn_optimizer *opt;
    const float *x;        /* the batch's inputs */
    size_t m, d;           /* rows, layer */
    htnn_layer *update;    /* the layer above, updated in this job, or NULL */
} mt_job;

/* Part p's units [*first, *first + *n) of `count`, in whole blocks. */
static void part_units(size_t count, size_t part, size_t parts, size_t *first, size_t *n)
{
    size_t blocks = (count + UNIT_BLOCK - 1) / UNIT_BLOCK;
    size_t lo = blocks * part / parts * UNIT_BLOCK, hi = blocks * (part + 1) / parts * UNIT_BLOCK;
    lo = lo < count ? lo : count;
    hi = hi < count ? hi : count;
    *first = lo;
    *n = hi - lo;
}

static const float *layer_input(const mt_job *j)
{
    return j->d ? j->net->scratch[j->d - 1].h : j->x;
}

static void run_job(mt_job *j, work_fn fn, size_t work)
{
    if (work >= PARALLEL_MIN_WORK)
        workers_run(j->net->workers, fn, j);
    else
        fn(j, 0, 1);
}

int train_mt_usable(const htnn_net *net, const htnn_heuristic *h)
{
    if (net->workers == NULL || net->opts.targets_after_update || !heuristic_is_loss(h))
        return 0;
    for (size_t d = 0; d < net->n_layers; d++)
        if (net->layers[d]->kind != HTNN_LAYER_DENSE)
            return 0;
    return 1;
}

/* Z[:, block] = X W[block]^T, then the block's scale, bias and activation. */
static void forward_part(void *arg, size_t part, size_t parts)
{
    const mt_job *j = arg;
    htnn_layer *l = j->net->layers[j->d];
    layer_scratch *s = &j->net->scratch[j->d];
    size_t first, n, in = l->in, out = l->out;
    part_units(out, part, parts, &first, &n);
    if (n == 0)
        return;
    dense_binarize_rows(l, first, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->m, (int)n, (int)in, 1.0f,
                layer_input(j), (int)in, (l->binary_weights ? l->wsign : l->w) + first * in,
                (int)in, 0.0f, s->z + first, (int)out);
    for (size_t i = 0; i < j->m; i++) {
        float *z = s->z + i * out + first;
        if (l->binary_weights == HTNN_BINARY_SCALED)
            dense_scale_columns(z, l->alpha + first, 1, n);
        activation_forward(l->activation, l->qrelu_bits, z, l->has_bias ? l->b + first : NULL,
                           s->h + i * out + first, 1, n);
    }
}

void train_mt_forward(htnn_net *net, const float *x, size_t m)
{
    mt_job j = {net, NULL, x, m, 0, NULL};
    net_blas_alone(net, 1);
    for (j.d = 0; j.d < net->n_layers; j.d++) {
        run_job(&j, forward_part, net->layers[j.d]->n_w * m);
        net->layers[j.d]->bin_fresh = 0; /* as net_forward leaves it */
    }
    net_blas_alone(net, 0);
}

/* Rows of gW = dZ^T X and entries of gb of the part's units. */
static void param_grads_part(const mt_job *j, size_t part, size_t parts)
{
    htnn_layer *l = j->net->layers[j->d];
    const float *dz = j->net->scratch[j->d].dz;
    size_t first, n, in = l->in, out = l->out;
    part_units(out, part, parts, &first, &n);
    if (n == 0)
        return;
    if (j->m == 0) {   /* a rank without rows of this batch adds zeros */
        memset(l->gw + first * in, 0, n * in * sizeof *l->gw);
        memset(l->gb + first, 0, n * sizeof *l->gb);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)in, (int)j->m, 1.0f,
                dz + first, (int)out, layer_input(j), (int)in, 0.0f, l->gw + first * in,
                (int)in);
    memset(l->gb + first, 0, n * sizeof *l->gb);
    for (size_t i = 0; l->has_bias && i < j->m; i++)
        dense_column_sums(dz + i * out + first, 1, n, l->gb + first);
}

/* Columns of G = dZ W of the part's units of the layer below, then their
 * loss-driven targets and loss gradient. */
static void targets_below_part(const mt_job *j, size_t part, size_t parts)
{
    const htnn_layer *l = j->net->layers[j->d], *below = j->net->layers[j->d - 1];
    layer_scratch *sb = &j->net->scratch[j->d - 1];
    float *g = j->net->grad_input;
    size_t first, n, in = l->in, out = l->out;
    part_units(in, part, parts, &first, &n);
    if (n == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->m, (int)n, (int)out, 1.0f,
                j->net->scratch[j->d].dz, (int)out, layer_weights(l) + first, (int)in, 0.0f,
                g + first, (int)in);
    for (size_t i = 0; i < j->m; i++) {
        size_t o = i * in + first;
        if (activation_is_hard(below->activation))
            heuristic_loss_targets(g + o, sb->t + o, sb->tw + o, n);
        below_loss_grad(below, sb->z + o, sb->t + o, sb->tw + o, g + o, sb->dz + o, n);
    }
}

static void update_part(htnn_optimizer *opt, htnn_layer *l, size_t part, size_t parts)
{
    size_t first, n;
    part_units(l->out, part, parts, &first, &n);
    if (n > 0)
        optimizer_update_rows(opt, l, first, n);
}

/* The order inside a part matters only for the input layer, whose own
 * update must follow its gradient (same part, same units). */
static void backward_part(void *arg, size_t part, size_t parts)
{
    const mt_job *j = arg;
    param_grads_part(j, part, parts);
    if (j->d > 0)
        targets_below_part(j, part, parts);
    else
        update_part(j->opt, j->net->layers[0], part, parts);
    if (j->update != NULL)
        update_part(j->opt, j->update, part, parts);
}

/* A backward job's work: the multiply-adds of gW and G, plus the
 * elementwise passes (targets and loss gradient below, an update) at the
 * price of a few multiply-adds per entry. */
static size_t backward_work(const mt_job *j, const htnn_layer *update)
{
    const htnn_layer *l = j->net->layers[j->d];
    return l->n_w * j->m * (j->d > 0 ? 2 : 1) + (j->d > 0 ? j->m * l->in * 4 : 0) +
           (update ? update->n_w * 8 : 0);
}

void train_mt_backward(htnn_net *net, htnn_optimizer *opt, const float *x, size_t m)
{
    mt_job j = {net, opt, x, m, net->n_layers, NULL};
    net_blas_alone(net, 1);
    while (j.d-- > 0) {
        run_job(&j, backward_part, backward_work(&j, j.update));
        j.update = net->layers[j.d];
    }
    net_blas_alone(net, 0);
}

static void grads_part(void *arg, size_t part, size_t parts)
{
    const mt_job *j = arg;
    param_grads_part(j, part, parts);
    if (j->d > 0)
        targets_below_part(j, part, parts);
}

void train_mt_layer_grads(htnn_net *net, const float *x, size_t m, size_t d)
{
    mt_job j = {net, NULL, x, m, d, NULL};
    /* split or not as train_mt_backward's job for this layer, which also
     * updates the layer above: the same sgemm blocks, so the same bits
     * (sgemm rounds a block of units differently from the whole) */
    const htnn_layer *above = d + 1 < net->n_layers ? net->layers[d + 1] : NULL;
    net_blas_alone(net, 1);
    run_job(&j, grads_part, backward_work(&j, above));
    net_blas_alone(net, 0);
}

static void update_job(void *arg, size_t part, size_t parts)
{
    const mt_job *j = arg;
    update_part(j->opt, j->update, part, parts);
}

typedef struct range_job {
    htnn_optimizer *opt;
    htnn_layer *layer;
    size_t first, n;
} range_job;

static void update_range_part(void *arg, size_t part, size_t parts)
{
    const range_job *r = arg;
    size_t lo = r->n * part / parts, hi = r->n * (part + 1) / parts;
    if (hi > lo)
        optimizer_update_weights(r->opt, r->layer, r->first + lo, hi - lo);
}

void train_mt_update_weights(htnn_net *net, htnn_optimizer *opt, htnn_layer *layer,
                             size_t first, size_t n)
{
    range_job r = {opt, layer, first, n};
    /* elementwise: any split gives the same bits */
    if (net->workers != NULL && n * 8 >= PARALLEL_MIN_WORK)
        workers_run(net->workers, update_range_part, &r);
    else
        update_range_part(&r, 0, 1);
}

void train_mt_update(htnn_net *net, htnn_optimizer *opt)
{
    mt_job j = {net, opt, NULL, 0, 0, NULL};
    for (size_t d = 0; d < net->n_layers; d++) {
        j.update = net->layers[d];
        run_job(&j, update_job, j.update->n_w * 8);
    }
}
