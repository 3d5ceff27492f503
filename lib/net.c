/* The net handle: creation, layers, queries, cloning and the scratch arena.
 * SPDX-License-Identifier: MIT */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "activations.h"
#include "alloc.h"
#include "dense.h"
#include "layers.h"
#include "error.h"
#include "htnn_config.h"
#include "losses.h"
#include "net_internal.h"
#include "options.h"
#include "simd.h"
#include "workers.h"

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
    htnn_net *net = mem_calloc(1, sizeof *net);
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
    mem_free(layer->w);
    mem_free(layer);
}

static void scratch_free(htnn_net *net)
{
    mem_free(net->arena);
    mem_free(net->iarena);
    mem_free(net->scratch);
    net->arena = NULL;
    net->iarena = NULL;
    net->scratch = NULL;
    net->conv_ws = NULL;
    net->conv_ws_size = 0;
    net->gw_parts = NULL;
    net->gw_parts_size = 0;
    workers_free(net->workers);
    net->workers = NULL;
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
    mem_free(net->layers);
    scratch_free(net);
    mem_free(net);
}

/* The sizes of a layer's parameter block; see layer_alloc. */
typedef struct layer_dims {
    size_t wrows, wcols, n_b, bn_channels;
    int binary;
} layer_dims;

/* One allocation holds w, gw, b, gb of a layer; for binary weights also
 * wsign, wq and alpha; for batch norm the four per-channel statistics. */
static htnn_layer *layer_alloc(const layer_dims *dims)
{
    htnn_layer *layer = mem_calloc(1, sizeof *layer);
    if (layer == NULL)
        return NULL;
    size_t nw = dims->wrows * dims->wcols, nb = dims->n_b;
    size_t extra = dims->binary ? 2 * nw + dims->wrows : 0, stats = 4 * dims->bn_channels;
    size_t total = 2 * nw + 2 * nb + extra + stats;
    layer->w = mem_calloc(total ? total : 1, sizeof(float));
    if (layer->w == NULL) {
        mem_free(layer);
        return NULL;
    }
    layer->gw = layer->w + nw;
    layer->b = layer->gw + nw;
    layer->gb = layer->b + nb;
    float *p = layer->gb + nb;
    if (dims->binary) {
        layer->wsign = p;
        layer->wq = p + nw;
        layer->alpha = p + 2 * nw;
        p += extra;
    }
    if (stats) {
        layer->run_mean = p;
        layer->run_var = p + dims->bn_channels;
        layer->bmean = p + 2 * dims->bn_channels;
        layer->binvstd = p + 3 * dims->bn_channels;
    }
    layer->binary_weights = dims->binary;
    layer->wrows = dims->wrows;
    layer->wcols = dims->wcols;
    layer->n_w = nw;
    layer->n_b = nb;
    return layer;
}

/* The shape of the net's current output (the next layer's input). */
static map_shape net_output_shape(const htnn_net *net)
{
    if (net->n_layers)
        return net->layers[net->n_layers - 1]->shape_out;
    if (net->input_shape.c)
        return net->input_shape;
    map_shape flat = {net->input_width, 1, 1};
    return flat;
}

/* The options every kind of layer shares. */
typedef struct unit_options {
    int activation, qrelu_bits, loss, weight_targets;
} unit_options;

static htnn_status check_units(const htnn_net *net, const unit_options *u)
{
    size_t d = net->n_layers;
    if (!activation_valid(u->activation, u->qrelu_bits))
        return error_set(HTNN_EINVAL, "layer %zu: unknown activation %d or qrelu bits %d "
                         "(1..8)", d, u->activation, u->qrelu_bits);
    if (!loss_valid(u->loss))
        return error_set(HTNN_EINVAL, "layer %zu: unknown loss %d", d, u->loss);
    if (u->weight_targets != 0 && u->weight_targets != 1)
        return error_set(HTNN_EINVAL, "layer %zu: weight_targets must be 0 or 1", d);
    return HTNN_OK;
}

static void set_units(htnn_layer *layer, const unit_options *u)
{
    layer->activation = u->activation;
    layer->qrelu_bits = u->qrelu_bits;
    layer->loss = u->loss;
    layer->weight_targets = u->weight_targets;
}

static htnn_status check_binary(const htnn_net *net, int binary, int bias)
{
    if (bias != 0 && bias != 1)
        return error_set(HTNN_EINVAL, "layer %zu: bias must be 0 or 1", net->n_layers);
    if (binary < HTNN_BINARY_NONE || binary > HTNN_BINARY_SIGN)
        return error_set(HTNN_EINVAL, "layer %zu: binary_weights %d is not 0 (float), 1 "
                         "(scaled sign) or 2 (sign)", net->n_layers, binary);
    return HTNN_OK;
}

/* Weights of rows x cols must stay addressable and fit an sgemm's int. */
static htnn_status check_weight_count(const htnn_net *net, size_t rows, size_t cols)
{
    if (cols > SIZE_MAX / sizeof(float) / 8 / rows || rows * cols > (size_t)INT_MAX)
        return error_set(HTNN_EINVAL, "layer %zu: %zu x %zu weights are too many",
                         net->n_layers, rows, cols);
    return HTNN_OK;
}

static htnn_status check_dense_options(const htnn_net *net, const htnn_dense_options *o)
{
    size_t in = htnn_net_output_width(net);
    unit_options u = {o->activation, o->qrelu_bits, o->loss, o->weight_targets};
    htnn_status st;
    if (o->units == 0 || o->units > MAX_WIDTH)
        return error_set(HTNN_EINVAL, "layer %zu: units %zu not in 1..%zu", net->n_layers,
                         o->units, MAX_WIDTH);
    if ((st = check_weight_count(net, o->units, in)) != HTNN_OK ||
        (st = check_units(net, &u)) != HTNN_OK)
        return st;
    return check_binary(net, o->binary_weights, o->bias);
}

static htnn_status append_layer(htnn_net *net, htnn_layer *layer)
{
    if (net->n_layers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 4;
        htnn_layer **grown = mem_realloc(net->layers, cap * sizeof *grown);
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

/* Draws a dense or conv layer's initial weights and biases (the biases
 * are drawn even without a bias, so the RNG stream does not depend on it,
 * and then zeroed, as htnn_layer_get_bias reports them). */
static void init_weights(htnn_layer *layer, rng *r)
{
    dense_init(layer, r);
    if (!layer->has_bias)
        memset(layer->b, 0, layer->n_b * sizeof *layer->b);
    dense_binarize(layer);
}

/* Appends a freshly built layer, or frees it on failure. */
static htnn_status add_built(htnn_net *net, htnn_layer *layer, htnn_layer **layer_out)
{
    htnn_status st = append_layer(net, layer);
    if (st != HTNN_OK) {
        layer_free(layer);
        return st;
    }
    if (layer_out)
        *layer_out = layer;
    return HTNN_OK;
}

static htnn_status layer_oom(const htnn_net *net, const char *kind)
{
    return error_set(HTNN_ENOMEM, "layer %zu: out of memory for a %s layer", net->n_layers,
                     kind);
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
    size_t in = htnn_net_output_width(net);
    layer_dims dims = {o.units, in, o.units, 0, o.binary_weights};
    htnn_layer *layer = layer_alloc(&dims);
    if (layer == NULL)
        return error_set(HTNN_ENOMEM, "layer %zu: out of memory for %zu x %zu weights",
                         net->n_layers, in, o.units);
    unit_options u = {o.activation, o.qrelu_bits, o.loss, o.weight_targets};
    layer->kind = HTNN_LAYER_DENSE;
    layer->in = in;
    layer->out = o.units;
    layer->shape_in = net_output_shape(net);
    layer->shape_out = (map_shape){o.units, 1, 1};
    set_units(layer, &u);
    layer->has_bias = o.bias;
    init_weights(layer, &net->rng);
    return add_built(net, layer, layer_out);
}

htnn_status htnn_net_set_input_shape(htnn_net *net, size_t channels, size_t height,
                                     size_t width)
{
    if (net == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_set_input_shape: net is NULL");
    if (net->n_layers)
        return error_set(HTNN_ESTATE, "htnn_net_set_input_shape: the net already has "
                         "layers");
    if (channels == 0 || height == 0 || width == 0 ||
        channels > net->input_width / height / width ||
        channels * height * width != net->input_width)
        return error_set(HTNN_ESHAPE, "htnn_net_set_input_shape: %zu x %zu x %zu is not "
                         "the input width %zu", channels, height, width, net->input_width);
    net->input_shape = (map_shape){channels, height, width};
    return HTNN_OK;
}

htnn_status htnn_net_get_input_shape(const htnn_net *net, size_t *channels, size_t *height,
                                     size_t *width)
{
    if (net == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_get_input_shape: net is NULL");
    map_shape in = net->input_shape;
    if (in.c == 0)
        in = (map_shape){net->input_width, 1, 1};
    if (channels)
        *channels = in.c;
    if (height)
        *height = in.h;
    if (width)
        *width = in.w;
    return HTNN_OK;
}

/* The output feature map of a kernel / window over `in`, or an error. */
static htnn_status window_shape(const htnn_net *net, map_shape in, size_t kh, size_t kw,
                                size_t stride, size_t pad, size_t channels, map_shape *out)
{
    if (kh == 0 || kw == 0 || stride == 0)
        return error_set(HTNN_EINVAL, "layer %zu: kernel %zux%zu and stride %zu must be "
                         ">= 1", net->n_layers, kh, kw, stride);
    if (pad >= kh || pad >= kw)
        return error_set(HTNN_EINVAL, "layer %zu: padding %zu must be smaller than the "
                         "kernel %zux%zu", net->n_layers, pad, kh, kw);
    /* padding only widens the output; a window larger than the map itself
     * is a mistake (most often a missing htnn_net_set_input_shape) */
    if (kh > in.h || kw > in.w)
        return error_set(HTNN_ESHAPE, "layer %zu: window %zux%zu is larger than its "
                         "%zux%zu input (set the input shape with htnn_net_set_input_shape)",
                         net->n_layers, kh, kw, in.h, in.w);
    size_t oh = window_out(in.h, kh, stride, pad), ow = window_out(in.w, kw, stride, pad);
    if (channels == 0 || channels > MAX_WIDTH || oh * ow > MAX_WIDTH / channels)
        return error_set(HTNN_EINVAL, "layer %zu: %zu channels of %zux%zu are not in 1..%zu "
                         "values", net->n_layers, channels, oh, ow, MAX_WIDTH);
    *out = (map_shape){channels, oh, ow};
    return HTNN_OK;
}

htnn_status htnn_net_add_conv2d(htnn_net *net, const htnn_conv2d_options *opts,
                                htnn_layer **layer_out)
{
    htnn_conv2d_options o = HTNN_CONV2D_OPTIONS_INIT;
    htnn_status st;
    map_shape out;
    if (net == NULL || opts == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_add_conv2d: net or options is NULL");
    if ((st = options_read(&o, sizeof o, opts, "conv2d options")) != HTNN_OK)
        return st;
    map_shape in = net_output_shape(net);
    unit_options u = {o.activation, o.qrelu_bits, o.loss, o.weight_targets};
    if (o.channels == 0)
        return error_set(HTNN_EINVAL, "layer %zu: conv2d with 0 channels", net->n_layers);
    if ((st = window_shape(net, in, o.kernel_h, o.kernel_w, o.stride, o.padding, o.channels,
                           &out)) != HTNN_OK ||
        (st = check_weight_count(net, o.channels, o.kernel_h * o.kernel_w * in.c)) !=
            HTNN_OK ||
        (st = check_units(net, &u)) != HTNN_OK ||
        (st = check_binary(net, o.binary_weights, o.bias)) != HTNN_OK)
        return st;
    layer_dims dims = {o.channels, o.kernel_h * o.kernel_w * in.c, o.channels, 0,
                       o.binary_weights};
    htnn_layer *layer = layer_alloc(&dims);
    if (layer == NULL)
        return layer_oom(net, "conv2d");
    layer->kind = HTNN_LAYER_CONV2D;
    layer->shape_in = in;
    layer->shape_out = out;
    layer->in = in.c * in.h * in.w;
    layer->out = out.c * out.h * out.w;
    layer->kh = o.kernel_h, layer->kw = o.kernel_w;
    layer->stride = o.stride, layer->pad = o.padding;
    set_units(layer, &u);
    layer->has_bias = o.bias;
    init_weights(layer, &net->rng);
    return add_built(net, layer, layer_out);
}

htnn_status htnn_net_add_maxpool2d(htnn_net *net, const htnn_maxpool2d_options *opts,
                                   htnn_layer **layer_out)
{
    htnn_maxpool2d_options o = HTNN_MAXPOOL2D_OPTIONS_INIT;
    htnn_status st;
    map_shape out;
    if (net == NULL || opts == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_add_maxpool2d: net or options is NULL");
    if ((st = options_read(&o, sizeof o, opts, "maxpool2d options")) != HTNN_OK)
        return st;
    map_shape in = net_output_shape(net);
    size_t stride = o.stride ? o.stride : o.size;
    unit_options u = {o.activation, o.qrelu_bits, o.loss, o.weight_targets};
    if ((st = window_shape(net, in, o.size, o.size, stride, 0, in.c, &out)) != HTNN_OK ||
        (st = check_units(net, &u)) != HTNN_OK)
        return st;
    layer_dims dims = {0, 0, 0, 0, 0};
    htnn_layer *layer = layer_alloc(&dims);
    if (layer == NULL)
        return layer_oom(net, "max-pool");
    layer->kind = HTNN_LAYER_MAXPOOL2D;
    layer->shape_in = in;
    layer->shape_out = out;
    layer->in = in.c * in.h * in.w;
    layer->out = out.c * out.h * out.w;
    layer->kh = layer->kw = o.size;
    layer->stride = stride;
    set_units(layer, &u);
    return add_built(net, layer, layer_out);
}

htnn_status htnn_net_add_batchnorm(htnn_net *net, const htnn_batchnorm_options *opts,
                                   htnn_layer **layer_out)
{
    htnn_batchnorm_options o = HTNN_BATCHNORM_OPTIONS_INIT;
    htnn_status st;
    if (net == NULL || opts == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_add_batchnorm: net or options is NULL");
    if ((st = options_read(&o, sizeof o, opts, "batchnorm options")) != HTNN_OK)
        return st;
    unit_options u = {o.activation, o.qrelu_bits, o.loss, o.weight_targets};
    if (!(o.momentum > 0.0f && o.momentum <= 1.0f) || !(o.epsilon > 0.0f) ||
        !isfinite(o.epsilon))
        return error_set(HTNN_EINVAL, "layer %zu: batch-norm momentum %g not in (0, 1] or "
                         "epsilon %g not > 0", net->n_layers, (double)o.momentum,
                         (double)o.epsilon);
    if ((st = check_units(net, &u)) != HTNN_OK)
        return st;
    map_shape in = net_output_shape(net);
    layer_dims dims = {1, in.c, in.c, in.c, 0};
    htnn_layer *layer = layer_alloc(&dims);
    if (layer == NULL)
        return layer_oom(net, "batch-norm");
    layer->kind = HTNN_LAYER_BATCHNORM;
    layer->shape_in = layer->shape_out = in;
    layer->in = layer->out = in.c * in.h * in.w;
    set_units(layer, &u);
    layer->has_bias = 1;
    layer->bn_momentum = o.momentum;
    layer->bn_eps = o.epsilon;
    for (size_t j = 0; j < in.c; j++)
        layer->w[j] = layer->run_var[j] = 1.0f;
    return add_built(net, layer, layer_out);
}

const layer_ops *layer_ops_of(const htnn_layer *layer)
{
    switch (layer->kind) {
    case HTNN_LAYER_CONV2D: return &conv_ops;
    case HTNN_LAYER_MAXPOOL2D: return &pool_ops;
    case HTNN_LAYER_BATCHNORM: return &batchnorm_ops;
    default: return &dense_ops;
    }
}

static htnn_layer *layer_copy(const htnn_layer *src)
{
    size_t stats = src->run_mean ? src->n_b : 0;
    layer_dims dims = {src->wrows, src->wcols, src->n_b, stats, src->binary_weights};
    htnn_layer *layer = layer_alloc(&dims);
    if (layer == NULL)
        return NULL;
    htnn_layer fresh = *layer;
    size_t total = 2 * src->n_w + 2 * src->n_b + 4 * stats +
                   (src->binary_weights ? 2 * src->n_w + src->wrows : 0);
    memcpy(fresh.w, src->w, total * sizeof *fresh.w);
    *layer = *src;
    layer->w = fresh.w, layer->gw = fresh.gw, layer->b = fresh.b, layer->gb = fresh.gb;
    layer->wsign = fresh.wsign, layer->wq = fresh.wq, layer->alpha = fresh.alpha;
    layer->run_mean = fresh.run_mean, layer->run_var = fresh.run_var;
    layer->bmean = fresh.bmean, layer->binvstd = fresh.binvstd;
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
    copy->input_shape = net->input_shape;
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

void net_blas_alone(const htnn_net *net, int on)
{
#if HTNN_HAVE_OPENBLAS_THREADS
    if (net->workers != NULL)
        openblas_set_num_threads(on ? 1 : net->opts.threads);
#else
    (void)net, (void)on;
#endif
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
        total += layer_param_count(net->layers[i]);
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
    const map_shape *i = &layer->shape_in, *o = &layer->shape_out;
    htnn_layer_info info;
    /* field by field over zeros: callers may compare whole structs, and an
     * initialiser leaves the padding bytes indeterminate */
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.kind = layer->kind, info.index = layer->index;
    info.in_width = layer->in, info.out_width = layer->out;
    info.activation = layer->activation, info.qrelu_bits = layer->qrelu_bits;
    info.loss = layer->loss, info.weight_targets = layer->weight_targets;
    info.bias = layer->has_bias, info.weight_count = layer->n_w;
    info.binary_weights = layer->binary_weights;
    info.in_channels = i->c, info.in_height = i->h, info.in_columns = i->w;
    info.out_channels = o->c, info.out_height = o->h, info.out_columns = o->w;
    info.kernel_h = layer->kh, info.kernel_w = layer->kw;
    info.stride = layer->stride, info.padding = layer->pad, info.bias_count = layer->n_b;
    memcpy((char *)out + sizeof(size_t), (char *)&info + sizeof(size_t),
           theirs - sizeof(size_t));
    return HTNN_OK;
}

/* An OR over the exponent bits (all ones: NaN or infinity), which
 * vectorises: a float sum of x - x would be one long dependency chain, and
 * a fit checks its whole training set with this. */
HTNN_CLONES
static int finite_bits(const float *v, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], sizeof b);
        bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

int all_finite(const float *v, size_t n) { return finite_bits(v, n); }

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
    htnn_status st = check_copy(layer, dst, count, layer ? layer->n_w : 0,
                                "htnn_layer_get_weights");
    if (st == HTNN_OK)
        memcpy(dst, layer->w, count * sizeof *dst);
    return st;
}

htnn_status htnn_layer_set_weights(htnn_layer *layer, const float *src, size_t count)
{
    htnn_status st = check_copy(layer, src, count, layer ? layer->n_w : 0,
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
    htnn_status st = check_copy(layer, dst, count, layer ? layer->n_b : 0,
                                "htnn_layer_get_bias");
    if (st == HTNN_OK)
        memcpy(dst, layer->b, count * sizeof *dst);
    return st;
}

htnn_status htnn_layer_set_bias(htnn_layer *layer, const float *src, size_t count)
{
    htnn_status st = check_copy(layer, src, count, layer ? layer->n_b : 0,
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

/* A batch-norm layer and `count` = its channels, or an error. */
static htnn_status check_running_stats(const htnn_layer *layer, size_t count, const char *what)
{
    if (layer == NULL)
        return error_set(HTNN_EINVAL, "%s: layer is NULL", what);
    if (layer->kind != HTNN_LAYER_BATCHNORM)
        return error_set(HTNN_ESTATE, "%s: layer %zu is not a batch-norm layer", what,
                         layer->index);
    if (count != layer->n_b)
        return error_set(HTNN_ESHAPE, "%s: layer %zu has %zu channels, not %zu", what,
                         layer->index, layer->n_b, count);
    return HTNN_OK;
}

htnn_status htnn_layer_get_running_stats(const htnn_layer *layer, float *mean,
                                         float *variance, size_t count)
{
    htnn_status st = check_running_stats(layer, count, "htnn_layer_get_running_stats");
    if (st != HTNN_OK)
        return st;
    if (mean)
        memcpy(mean, layer->run_mean, count * sizeof *mean);
    if (variance)
        memcpy(variance, layer->run_var, count * sizeof *variance);
    return HTNN_OK;
}

htnn_status htnn_layer_set_running_stats(htnn_layer *layer, const float *mean,
                                         const float *variance, size_t count)
{
    htnn_status st = check_running_stats(layer, count, "htnn_layer_set_running_stats");
    if (st != HTNN_OK)
        return st;
    if (mean == NULL || variance == NULL)
        return error_set(HTNN_EINVAL, "htnn_layer_set_running_stats: mean or variance is "
                         "NULL");
    int ok = all_finite(mean, count) && all_finite(variance, count);
    for (size_t j = 0; ok && j < count; j++)
        ok = variance[j] >= 0.0f;
    if (!ok)
        return error_set(HTNN_ENUMERIC, "htnn_layer_set_running_stats: layer %zu: a mean "
                         "is not finite or a variance not finite and >= 0", layer->index);
    memcpy(layer->run_mean, mean, count * sizeof *mean);
    memcpy(layer->run_var, variance, count * sizeof *variance);
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

/* Floats per example of a layer's scratch: z, h, dz, t, tw, and X^ for
 * batch norm. */
static size_t scratch_width(const htnn_layer *layer)
{
    return (layer->kind == HTNN_LAYER_BATCHNORM ? 6 : 5) * layer->out;
}

/* The arena's layout for `rows` examples: per layer its scratch, then G
 * (rows x widest input), then the conv workspace; max-pool indices apart. */
typedef struct arena_plan {
    size_t floats, ints, max_in, conv_ws, conv_nw, parts;
} arena_plan;

/* Slices of the layer work: the thread setting (conv and pool layers run
 * their im2col and pooling on the net's own workers, and dense nets their
 * whole training step, train_mt.c). */
static size_t wanted_parts(const htnn_net *net)
{
    size_t t = net->opts.threads > 1 ? (size_t)net->opts.threads : 1;
    return t < WORKERS_MAX ? t : WORKERS_MAX;
}

static htnn_status plan_arena(const htnn_net *net, size_t rows, arena_plan *plan)
{
    size_t per_row = 0, ints = 0;
    *plan = (arena_plan){0, 0, 0, 0, 0, wanted_parts(net)};
    for (size_t i = 0; i < net->n_layers; i++) {
        const htnn_layer *layer = net->layers[i];
        size_t ws = conv_workspace(layer, rows);
        per_row += scratch_width(layer);
        ints += layer->kind == HTNN_LAYER_MAXPOOL2D ? layer->out : 0;
        plan->max_in = layer->in > plan->max_in ? layer->in : plan->max_in;
        plan->conv_ws = ws > plan->conv_ws ? ws : plan->conv_ws;
        if (ws && layer->n_w > plan->conv_nw)
            plan->conv_nw = layer->n_w;
    }
    per_row += plan->max_in;
    /* per part: a workspace; parts 1.. also a weight-gradient partial */
    size_t fixed = plan->parts * plan->conv_ws + (plan->parts - 1) * plan->conv_nw;
    if (rows > (SIZE_MAX / sizeof(float) - fixed) / per_row ||
        (ints && rows > SIZE_MAX / sizeof(int32_t) / ints))
        return error_set(HTNN_ENOMEM, "batch of %zu rows is too large", rows);
    plan->floats = rows * per_row + fixed;
    plan->ints = rows * ints;
    return HTNN_OK;
}

static void carve_arena(htnn_net *net, size_t rows, const arena_plan *plan)
{
    float *p = net->arena;
    int32_t *q = net->iarena;
    for (size_t i = 0; i < net->n_layers; i++) {
        const htnn_layer *layer = net->layers[i];
        size_t n = rows * layer->out;
        layer_scratch *s = &net->scratch[i];
        float **slots[6] = {&s->z, &s->h, &s->dz, &s->t, &s->tw, &s->aux};
        s->aux = NULL;
        s->arg = NULL;
        for (size_t k = 0; k < scratch_width(layer) / layer->out; k++, p += n)
            *slots[k] = p;
        if (layer->kind == HTNN_LAYER_MAXPOOL2D) {
            s->arg = q;
            q += n;
        }
    }
    net->grad_input = p;
    net->conv_ws = p + rows * plan->max_in;
    net->conv_ws_size = plan->conv_ws;
    net->gw_parts = net->conv_ws + plan->parts * plan->conv_ws;
    net->gw_parts_size = plan->conv_nw;
}

htnn_status net_reserve(htnn_net *net, size_t rows)
{
    arena_plan plan;
    htnn_status st;
    workers *pool = NULL;
    if (rows <= net->rows && wanted_parts(net) == workers_parts(net->workers))
        return HTNN_OK;
    rows = rows > net->rows ? rows : net->rows;
    if ((st = plan_arena(net, rows, &plan)) != HTNN_OK)
        return st;
    if (plan.parts > 1 && (st = workers_create(plan.parts, &pool)) != HTNN_OK)
        return st;
    /* zeroed: the targets of real-valued layers, which nobody sets, read
     * as "no target, weight 0" (htnn_targets_get) */
    float *arena = mem_calloc(plan.floats, sizeof *arena);
    int32_t *iarena = plan.ints ? mem_malloc(plan.ints * sizeof *iarena) : NULL;
    layer_scratch *scratch = mem_malloc((net->n_layers + 1) * sizeof *scratch);
    if (arena == NULL || scratch == NULL || (plan.ints && iarena == NULL)) {
        mem_free(arena);
        mem_free(iarena);
        mem_free(scratch);
        workers_free(pool);
        return error_set(HTNN_ENOMEM, "out of memory for a batch of %zu rows", rows);
    }
    scratch_free(net);
    net->workers = pool;
    net->arena = arena;
    net->iarena = iarena;
    net->scratch = scratch;
    net->rows = rows;
    carve_arena(net, rows, &plan);
    return HTNN_OK;
}

/* Binary weights are re-binarised once per training batch (training
 * changes w between batches), and for prediction only when they may have
 * changed (bin_fresh == 0). */
static void forward_pass(htnn_net *net, const float *x, size_t m, int training)
{
    const float *in = x;
    for (size_t i = 0; i < net->n_layers; i++) {
        htnn_layer *layer = net->layers[i];
        layer_scratch *s = &net->scratch[i];
        if (training || !layer->bin_fresh)
            dense_binarize(layer); /* a no-op for float weights */
        if (training)
            layer->bin_fresh = 0;
        layer_ops_of(layer)->forward(layer, in, m, s, training);
        in = s->h;
    }
}

void net_forward(htnn_net *net, const float *x, size_t m) { forward_pass(net, x, m, 1); }

void net_forward_inference(htnn_net *net, const float *x, size_t m)
{
    forward_pass(net, x, m, 0);
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
