/* The net handle: creation, layers, queries, cloning and the scratch arena.
 * SPDX-License-Identifier: MIT */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "dense.h"
#include "error.h"
#include "htnn_config.h"
#include "losses.h"
#include "net_internal.h"
#include "options.h"

#if HTNN_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int num_threads);
#endif

/* Widths stay far below INT_MAX so every sgemm dimension fits an int. */
#define MAX_WIDTH ((size_t)1 << 24)

static htnn_status check_net_options(const htnn_net_options *o)
{
    if (o->output != HTNN_OUTPUT_SOFTMAX && o->output != HTNN_OUTPUT_HARD_THRESHOLD)
        return error_set(HTNN_EINVAL, "net options: unknown output kind %d", o->output);
    if (o->threads < 0)
        return error_set(HTNN_EINVAL, "net options: threads %d < 0", o->threads);
    if (o->targets_after_update != 0 && o->targets_after_update != 1)
        return error_set(HTNN_EINVAL, "net options: targets_after_update must be 0 or 1");
    return HTNN_OK;
}

htnn_status htnn_net_create(size_t input_width, const htnn_net_options *opts,
                            htnn_net **out)
{
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    htnn_status st;
    if (out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_create: out is NULL");
    if (input_width == 0 || input_width > MAX_WIDTH)
        return error_set(HTNN_EINVAL, "htnn_net_create: input width %zu not in 1..%zu",
                         input_width, MAX_WIDTH);
    if ((st = options_read(&o, sizeof o, opts, "net options")) != HTNN_OK ||
        (st = check_net_options(&o)) != HTNN_OK)
        return st;
    htnn_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return error_set(HTNN_ENOMEM, "htnn_net_create: out of memory");
    net->input_width = input_width;
    net->opts = o;
    net->targets.net = net;
    rng_seed(&net->rng, o.seed);
    *out = net;
    return HTNN_OK;
}

static void layer_free(htnn_layer *layer)
{
    if (layer == NULL)
        return;
    free(layer->w);
    free(layer);
}

static void scratch_free(htnn_net *net)
{
    free(net->arena);
    free(net->scratch);
    net->arena = NULL;
    net->scratch = NULL;
    net->grad_input = NULL;
    net->rows = 0;
    net->targets.batch = 0;
}

void htnn_net_free(htnn_net *net)
{
    if (net == NULL)
        return;
    for (size_t i = 0; i < net->n_layers; i++)
        layer_free(net->layers[i]);
    free(net->layers);
    scratch_free(net);
    free(net);
}

/* One allocation holds w, b, gw, gb of a layer, and for binary weights
 * wsign, wq and alpha. */
static htnn_layer *layer_alloc(size_t in, size_t out, int binary)
{
    htnn_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL)
        return NULL;
    size_t nw = in * out;
    size_t extra = binary ? 2 * nw + out : 0;
    layer->w = malloc((2 * nw + 2 * out + extra) * sizeof(float));
    if (layer->w == NULL) {
        free(layer);
        return NULL;
    }
    layer->gw = layer->w + nw;
    layer->b = layer->gw + nw;
    layer->gb = layer->b + out;
    memset(layer->gw, 0, nw * sizeof(float));
    memset(layer->b, 0, 2 * out * sizeof(float));
    if (binary) {
        layer->wsign = layer->gb + out;
        layer->wq = layer->wsign + nw;
        layer->alpha = layer->wq + nw;
        memset(layer->wsign, 0, extra * sizeof(float));
    }
    layer->binary_weights = binary;
    layer->in = in;
    layer->out = out;
    return layer;
}

static htnn_status check_dense_options(const htnn_net *net, const htnn_dense_options *o)
{
    size_t in = htnn_net_output_width(net);
    size_t d = net->n_layers;
    if (o->units == 0 || o->units > MAX_WIDTH)
        return error_set(HTNN_EINVAL, "layer %zu: units %zu not in 1..%zu", d, o->units,
                         MAX_WIDTH);
    if (in > SIZE_MAX / sizeof(float) / 8 / o->units || in * o->units > (size_t)INT_MAX)
        return error_set(HTNN_EINVAL, "layer %zu: %zu x %zu weights are too many", d, in,
                         o->units);
    if (!activation_valid(o->activation, o->qrelu_bits))
        return error_set(HTNN_EINVAL, "layer %zu: unknown activation %d or qrelu bits %d "
                         "(1..8)", d, o->activation, o->qrelu_bits);
    if (!loss_valid(o->loss))
        return error_set(HTNN_EINVAL, "layer %zu: unknown loss %d", d, o->loss);
    if ((o->weight_targets != 0 && o->weight_targets != 1) ||
        (o->bias != 0 && o->bias != 1))
        return error_set(HTNN_EINVAL, "layer %zu: weight_targets and bias must be 0 or 1", d);
    if (o->binary_weights < HTNN_BINARY_NONE || o->binary_weights > HTNN_BINARY_SIGN)
        return error_set(HTNN_EINVAL, "layer %zu: binary_weights %d is not 0 (float), 1 "
                         "(scaled sign) or 2 (sign)", d, o->binary_weights);
    return HTNN_OK;
}

static htnn_status append_layer(htnn_net *net, htnn_layer *layer)
{
    if (net->n_layers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 4;
        htnn_layer **grown = realloc(net->layers, cap * sizeof *grown);
        if (grown == NULL)
            return error_set(HTNN_ENOMEM, "add layer: out of memory");
        net->layers = grown;
        net->cap_layers = cap;
    }
    layer->net = net;
    layer->index = net->n_layers;
    net->layers[net->n_layers++] = layer;
    /* The parameter layout changed: scratch and optimizer state must be
     * re-sized before the next batch. */
    net->layout_id++;
    scratch_free(net);
    return HTNN_OK;
}

htnn_status htnn_net_add_dense(htnn_net *net, const htnn_dense_options *opts,
                               htnn_layer **layer_out)
{
    htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
    htnn_status st;
    if (net == NULL || opts == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_add_dense: net or options is NULL");
    if ((st = options_read(&o, sizeof o, opts, "dense options")) != HTNN_OK ||
        (st = check_dense_options(net, &o)) != HTNN_OK)
        return st;
    htnn_layer *layer = layer_alloc(htnn_net_output_width(net), o.units, o.binary_weights);
    if (layer == NULL)
        return error_set(HTNN_ENOMEM, "layer %zu: out of memory for %zu x %zu weights",
                         net->n_layers, htnn_net_output_width(net), o.units);
    layer->kind = HTNN_LAYER_DENSE;
    layer->activation = o.activation;
    layer->qrelu_bits = o.qrelu_bits;
    layer->loss = o.loss;
    layer->weight_targets = o.weight_targets;
    layer->has_bias = o.bias;
    dense_init(layer, &net->rng);
    dense_binarize(layer);
    if ((st = append_layer(net, layer)) != HTNN_OK) {
        layer_free(layer);
        return st;
    }
    if (layer_out)
        *layer_out = layer;
    return HTNN_OK;
}

static htnn_layer *layer_copy(const htnn_layer *src)
{
    htnn_layer *layer = layer_alloc(src->in, src->out, src->binary_weights);
    if (layer == NULL)
        return NULL;
    float *w = layer->w, *gw = layer->gw, *b = layer->b, *gb = layer->gb;
    float *ws = layer->wsign, *wq = layer->wq, *alpha = layer->alpha;
    *layer = *src;
    layer->w = w, layer->gw = gw, layer->b = b, layer->gb = gb;
    layer->wsign = ws, layer->wq = wq, layer->alpha = alpha;
    memcpy(w, src->w, src->in * src->out * sizeof *w);
    memcpy(b, src->b, src->out * sizeof *b);
    dense_binarize(layer);
    return layer;
}

htnn_status htnn_net_clone(const htnn_net *net, htnn_net **out)
{
    htnn_net *copy;
    htnn_status st;
    if (net == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_clone: net or out is NULL");
    if ((st = htnn_net_create(net->input_width, &net->opts, &copy)) != HTNN_OK)
        return st;
    copy->rng = net->rng;
    for (size_t i = 0; i < net->n_layers; i++) {
        htnn_layer *layer = layer_copy(net->layers[i]);
        if (layer == NULL || append_layer(copy, layer) != HTNN_OK) {
            layer_free(layer);
            htnn_net_free(copy);
            return error_set(HTNN_ENOMEM, "htnn_net_clone: out of memory");
        }
    }
    *out = copy;
    return HTNN_OK;
}

htnn_status htnn_net_seed(htnn_net *net, uint64_t seed)
{
    if (net == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_seed: net is NULL");
    net->opts.seed = seed;
    rng_seed(&net->rng, seed);
    return HTNN_OK;
}

htnn_status htnn_net_set_threads(htnn_net *net, int threads)
{
    if (net == NULL || threads < 0)
        return error_set(HTNN_EINVAL, "htnn_net_set_threads: NULL net or threads < 0");
    net->opts.threads = threads;
    return HTNN_OK;
}

void net_apply_threads(const htnn_net *net)
{
#if HTNN_HAVE_OPENBLAS_THREADS
    if (net->opts.threads > 0)
        openblas_set_num_threads(net->opts.threads);
#else
    (void)net;
#endif
}

htnn_status htnn_net_get_options(const htnn_net *net, htnn_net_options *out)
{
    if (net == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_get_options: net or out is NULL");
    size_t theirs = out->struct_size;
    if (theirs < sizeof(size_t) || theirs > sizeof *out)
        return error_set(HTNN_EINVAL, "htnn_net_get_options: bad struct_size %zu", theirs);
    memcpy((char *)out + sizeof(size_t), (const char *)&net->opts + sizeof(size_t),
           theirs - sizeof(size_t));
    return HTNN_OK;
}

size_t htnn_net_layer_count(const htnn_net *net) { return net ? net->n_layers : 0; }

size_t htnn_net_input_width(const htnn_net *net) { return net ? net->input_width : 0; }

size_t htnn_net_output_width(const htnn_net *net)
{
    if (net == NULL)
        return 0;
    return net->n_layers ? net->layers[net->n_layers - 1]->out : net->input_width;
}

size_t htnn_net_class_count(const htnn_net *net)
{
    size_t out = htnn_net_output_width(net);
    return out == 1 ? 2 : out;
}

size_t htnn_net_parameter_count(const htnn_net *net)
{
    size_t total = 0;
    for (size_t i = 0; net && i < net->n_layers; i++)
        total += net->layers[i]->out * (net->layers[i]->in + (size_t)net->layers[i]->has_bias);
    return total;
}

htnn_layer *htnn_net_layer(htnn_net *net, size_t index)
{
    if (net == NULL || index >= net->n_layers)
        return NULL;
    return net->layers[index];
}

htnn_status htnn_layer_get_info(const htnn_layer *layer, htnn_layer_info *out)
{
    if (layer == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_layer_get_info: layer or out is NULL");
    size_t theirs = out->struct_size;
    if (theirs < sizeof(size_t) || theirs > sizeof *out)
        return error_set(HTNN_EINVAL, "htnn_layer_get_info: bad struct_size %zu", theirs);
    htnn_layer_info info = {sizeof info, layer->kind, layer->index, layer->in, layer->out,
                            layer->activation, layer->qrelu_bits, layer->loss,
                            layer->weight_targets, layer->has_bias, layer->in * layer->out,
                            layer->binary_weights};
    memcpy((char *)out + sizeof(size_t), (char *)&info + sizeof(size_t),
           theirs - sizeof(size_t));
    return HTNN_OK;
}

int all_finite(const float *v, size_t n)
{
    /* x - x is 0 for finite x and NaN otherwise; summing keeps it branch-free. */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] - v[i];
    return acc == 0.0f;
}

static htnn_status check_copy(const htnn_layer *layer, const void *p, size_t count,
                              size_t expected, const char *what)
{
    if (layer == NULL || p == NULL)
        return error_set(HTNN_EINVAL, "%s: layer or array is NULL", what);
    if (count != expected)
        return error_set(HTNN_ESHAPE, "%s: layer %zu has %zu values, not %zu", what,
                         layer->index, expected, count);
    return HTNN_OK;
}

htnn_status htnn_layer_get_weights(const htnn_layer *layer, float *dst, size_t count)
{
    htnn_status st = check_copy(layer, dst, count, layer ? layer->in * layer->out : 0,
                                "htnn_layer_get_weights");
    if (st == HTNN_OK)
        memcpy(dst, layer->w, count * sizeof *dst);
    return st;
}

htnn_status htnn_layer_set_weights(htnn_layer *layer, const float *src, size_t count)
{
    htnn_status st = check_copy(layer, src, count, layer ? layer->in * layer->out : 0,
                                "htnn_layer_set_weights");
    if (st != HTNN_OK)
        return st;
    if (!all_finite(src, count))
        return error_set(HTNN_ENUMERIC, "htnn_layer_set_weights: layer %zu: NaN or "
                         "infinite weight", layer->index);
    memcpy(layer->w, src, count * sizeof *src);
    dense_binarize(layer);
    return HTNN_OK;
}

htnn_status htnn_layer_get_bias(const htnn_layer *layer, float *dst, size_t count)
{
    htnn_status st = check_copy(layer, dst, count, layer ? layer->out : 0,
                                "htnn_layer_get_bias");
    if (st == HTNN_OK)
        memcpy(dst, layer->b, count * sizeof *dst);
    return st;
}

htnn_status htnn_layer_set_bias(htnn_layer *layer, const float *src, size_t count)
{
    htnn_status st = check_copy(layer, src, count, layer ? layer->out : 0,
                                "htnn_layer_set_bias");
    if (st != HTNN_OK)
        return st;
    if (!layer->has_bias)
        return error_set(HTNN_ESTATE, "htnn_layer_set_bias: layer %zu has no bias",
                         layer->index);
    if (!all_finite(src, count))
        return error_set(HTNN_ENUMERIC, "htnn_layer_set_bias: layer %zu: NaN or "
                         "infinite bias", layer->index);
    memcpy(layer->b, src, count * sizeof *src);
    return HTNN_OK;
}

htnn_status htnn_layer_set_loss(htnn_layer *layer, int loss, int weight_targets)
{
    if (layer == NULL)
        return error_set(HTNN_EINVAL, "htnn_layer_set_loss: layer is NULL");
    if (!loss_valid(loss) || (weight_targets != 0 && weight_targets != 1))
        return error_set(HTNN_EINVAL, "htnn_layer_set_loss: unknown loss %d or "
                         "weight_targets %d", loss, weight_targets);
    layer->loss = loss;
    layer->weight_targets = weight_targets;
    return HTNN_OK;
}

/* Per layer: z, h, dz, t, tw (5 x rows x out); then G (rows x widest input). */
htnn_status net_reserve(htnn_net *net, size_t rows)
{
    if (rows <= net->rows)
        return HTNN_OK;
    size_t per_row = 0, max_in = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        per_row += 5 * net->layers[i]->out;
        if (net->layers[i]->in > max_in)
            max_in = net->layers[i]->in;
    }
    per_row += max_in;
    if (rows > SIZE_MAX / sizeof(float) / per_row)
        return error_set(HTNN_ENOMEM, "batch of %zu rows is too large", rows);
    float *arena = malloc(rows * per_row * sizeof *arena);
    layer_scratch *scratch = malloc((net->n_layers + 1) * sizeof *scratch);
    if (arena == NULL || scratch == NULL) {
        free(arena);
        free(scratch);
        return error_set(HTNN_ENOMEM, "out of memory for a batch of %zu rows", rows);
    }
    scratch_free(net);
    net->arena = arena;
    net->scratch = scratch;
    net->rows = rows;
    float *p = arena;
    for (size_t i = 0; i < net->n_layers; i++) {
        size_t n = rows * net->layers[i]->out;
        float **slots[5] = {&scratch[i].z, &scratch[i].h, &scratch[i].dz, &scratch[i].t,
                            &scratch[i].tw};
        for (int k = 0; k < 5; k++, p += n)
            *slots[k] = p;
    }
    net->grad_input = p;
    return HTNN_OK;
}

void net_forward(htnn_net *net, const float *x, size_t m)
{
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer_scratch *s = &net->scratch[i];
        dense_binarize(net->layers[i]); /* once per batch; no-op for float weights */
        net->layers[i]->bin_fresh = 0;
        dense_forward(net->layers[i], in, m, s->z, s->h);
        in = s->h;
    }
}

void net_forward_inference(htnn_net *net, const float *x, size_t m)
{
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer_scratch *s = &net->scratch[i];
        if (!net->layers[i]->bin_fresh)
            dense_binarize(net->layers[i]);
        dense_forward(net->layers[i], in, m, s->z, s->h);
        in = s->h;
    }
}

htnn_status net_check_batch(const htnn_net *net, const float *x, const int32_t *labels,
                            size_t count)
{
    if (net->n_layers == 0)
        return error_set(HTNN_ESTATE, "the net has no layers");
    if (x == NULL)
        return error_set(HTNN_EINVAL, "inputs are NULL");
    if (net->opts.output == HTNN_OUTPUT_SOFTMAX && htnn_net_output_width(net) < 2)
        return error_set(HTNN_ESTATE, "a softmax output needs at least 2 units (use "
                         "HTNN_OUTPUT_HARD_THRESHOLD for one unit)");
    if (count == 0)
        return error_set(HTNN_EINVAL, "no examples (count is 0)");
    if (count > SIZE_MAX / net->input_width)
        return error_set(HTNN_EINVAL, "%zu examples are too many", count);
    if (!all_finite(x, count * net->input_width))
        return error_set(HTNN_ENUMERIC, "inputs contain NaN or infinity");
    size_t classes = htnn_net_class_count(net);
    for (size_t i = 0; labels && i < count; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= classes)
            return error_set(HTNN_EINVAL, "label %ld of example %zu is not in 0..%zu",
                             (long)labels[i], i, classes - 1);
    return HTNN_OK;
}
