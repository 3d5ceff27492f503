/* Model-file records of conv2d, max-pool and batch-norm layers.  Every
 * record starts with the four unit fields (activation, qrelu bits, loss,
 * weight_targets) and the input feature map; the reader rebuilds the layer
 * through the public API, so every check the API makes applies to files
 * too.
 * SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <math.h>

#include "error.h"
#include "model_io_internal.h"
#include "model_records.h"

#define HEAD_BYTES 12u   /* kind u32 + length u64 */
#define UNIT_BYTES 16u   /* activation, qrelu bits, loss, weight_targets */
#define SHAPE_BYTES 24u  /* in channels, height, width */
#define CONV_FIELDS (UNIT_BYTES + 4u + SHAPE_BYTES + 40u) /* + bias, out_c, kernel.. */
#define POOL_FIELDS (UNIT_BYTES + SHAPE_BYTES + 16u)      /* + size, stride */
#define BN_FIELDS (UNIT_BYTES + SHAPE_BYTES + 8u)         /* + momentum, epsilon */

static uint64_t payload_bytes(const htnn_layer *l)
{
    switch (l->kind) {
    case HTNN_LAYER_CONV2D:
        return CONV_FIELDS + 4u * ((uint64_t)l->n_w + (l->has_bias ? l->n_b : 0));
    case HTNN_LAYER_MAXPOOL2D:
        return POOL_FIELDS;
    case HTNN_LAYER_BATCHNORM:
        return BN_FIELDS + 16u * (uint64_t)l->n_b;
    default:
        return 0;
    }
}

uint64_t record_bytes(const htnn_layer *layer)
{
    uint64_t n = payload_bytes(layer);
    return n ? HEAD_BYTES + n : 0;
}

static void put_f32(byte_writer *w, float v) { put_floats(w, &v, 1); }

static void write_units_shape(byte_writer *w, const htnn_layer *l)
{
    put_u32(w, (uint32_t)l->activation);
    put_u32(w, (uint32_t)l->qrelu_bits);
    put_u32(w, (uint32_t)l->loss);
    put_u32(w, (uint32_t)l->weight_targets);
    put_u64(w, l->shape_in.c);
    put_u64(w, l->shape_in.h);
    put_u64(w, l->shape_in.w);
}

void record_write(byte_writer *w, const htnn_layer *l)
{
    put_u32(w, (uint32_t)l->kind);
    put_u64(w, payload_bytes(l));
    write_units_shape(w, l);
    if (l->kind == HTNN_LAYER_CONV2D) {
        put_u32(w, (uint32_t)l->has_bias);
        put_u64(w, l->shape_out.c);
        put_u64(w, l->kh);
        put_u64(w, l->kw);
        put_u64(w, l->stride);
        put_u64(w, l->pad);
        put_floats(w, l->w, l->n_w);
        if (l->has_bias)
            put_floats(w, l->b, l->n_b);
    } else if (l->kind == HTNN_LAYER_MAXPOOL2D) {
        put_u64(w, l->kh);
        put_u64(w, l->stride);
    } else {
        put_f32(w, l->bn_momentum);
        put_f32(w, l->bn_eps);
        put_floats(w, l->w, l->n_b);
        put_floats(w, l->b, l->n_b);
        put_floats(w, l->run_mean, l->n_b);
        put_floats(w, l->run_var, l->n_b);
    }
}

/* ---- reading ------------------------------------------------------------ */

typedef struct record_in {
    byte_cursor c;
    const char *name;
    size_t index;
    uint32_t act, bits, loss, wt;
    uint64_t in_c, in_h, in_w;
} record_in;

static htnn_status bad(const record_in *r, const char *what)
{
    return error_set(HTNN_EFORMAT, "%s: layer %zu: %s", r->name, r->index, what);
}

/* Every size the net API accepts stays below 2^24 (its MAX_WIDTH). */
static int fits(uint64_t v) { return v <= ((uint64_t)1 << 24); }

static htnn_status read_units_shape(record_in *r)
{
    if (!cursor_u32(&r->c, &r->act) || !cursor_u32(&r->c, &r->bits) ||
        !cursor_u32(&r->c, &r->loss) || !cursor_u32(&r->c, &r->wt) ||
        !cursor_u64(&r->c, &r->in_c) || !cursor_u64(&r->c, &r->in_h) ||
        !cursor_u64(&r->c, &r->in_w))
        return bad(r, "truncated record fields");
    if (!fits(r->in_c) || !fits(r->in_h) || !fits(r->in_w) || !fits(r->in_h * r->in_w))
        return bad(r, "input shape out of range");
    return HTNN_OK;
}

/* Before the first layer the net's input takes the record's shape; later
 * the record must agree with the previous layer's output. */
static htnn_status place_input(htnn_net *net, const record_in *r)
{
    if (net->n_layers == 0 && r->in_c * r->in_h * r->in_w == net->input_width &&
        htnn_net_set_input_shape(net, (size_t)r->in_c, (size_t)r->in_h, (size_t)r->in_w) ==
            HTNN_OK)
        return HTNN_OK;
    const htnn_layer *last = net->n_layers ? net->layers[net->n_layers - 1] : NULL;
    map_shape have = last ? last->shape_out : net->input_shape;
    if (have.c != r->in_c || have.h != r->in_h || have.w != r->in_w)
        return bad(r, "input shape does not match the previous layer's output");
    return HTNN_OK;
}

/* Decodes n floats from the cursor into dst (no NaN or infinity). */
static htnn_status read_floats(record_in *r, float *dst, size_t n, const char *what)
{
    if (cursor_left(&r->c) / 4 < n)
        return bad(r, "truncated parameters");
    if (decode_floats(r->c.p + r->c.pos, n, dst) != n)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: a %s is NaN or infinite", r->name,
                         r->index, what);
    r->c.pos += 4 * n;
    return HTNN_OK;
}

static htnn_status added(htnn_status st, const record_in *r)
{
    return st == HTNN_OK ? HTNN_OK : model_library_refused(st, r->name, "layer");
}

/* 1 if f[0] x ... x f[n-1] floats, plus `extra`, fit in the record's
 * remaining bytes.  Checked before the layer is allocated: a corrupt count
 * must not make the reader allocate more than the file holds. */
static int floats_fit(const record_in *r, const uint64_t *f, size_t n, uint64_t extra)
{
    uint64_t cap = cursor_left(&r->c) / 4, count = 1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != 0 && count > cap / f[i])
            return 0;
        count *= f[i];
    }
    return count <= cap && extra <= cap - count;
}

static htnn_status add_conv(htnn_net *net, record_in *r, uint32_t binary)
{
    htnn_conv2d_options o = HTNN_CONV2D_OPTIONS_INIT;
    uint32_t bias;
    uint64_t v[5];
    htnn_layer *layer;
    if (!cursor_u32(&r->c, &bias) || !cursor_u64(&r->c, &v[0]) || !cursor_u64(&r->c, &v[1]) ||
        !cursor_u64(&r->c, &v[2]) || !cursor_u64(&r->c, &v[3]) || !cursor_u64(&r->c, &v[4]))
        return bad(r, "truncated conv2d fields");
    if (!fits(v[0]) || !fits(v[1]) || !fits(v[2]) || !fits(v[3]) || !fits(v[4]))
        return bad(r, "conv2d field out of range");
    const uint64_t weights[4] = {v[0], r->in_c, v[1], v[2]};
    if (!floats_fit(r, weights, 4, bias == 1 ? v[0] : 0))
        return bad(r, "truncated parameters");
    o.channels = (size_t)v[0], o.kernel_h = (size_t)v[1], o.kernel_w = (size_t)v[2];
    o.stride = (size_t)v[3], o.padding = (size_t)v[4];
    o.activation = (int)r->act, o.qrelu_bits = (int)(int32_t)r->bits, o.loss = (int)r->loss;
    o.weight_targets = (int)r->wt, o.bias = bias > 1 ? -1 : (int)bias;
    o.binary_weights = binary > HTNN_BINARY_SIGN ? -1 : (int)binary;
    htnn_status st = added(htnn_net_add_conv2d(net, &o, &layer), r);
    if (st != HTNN_OK)
        return st;
    layer->bin_fresh = 0; /* the weights change below */
    st = read_floats(r, layer->w, layer->n_w, "weight");
    if (st == HTNN_OK && layer->has_bias)
        st = read_floats(r, layer->b, layer->n_b, "bias");
    return st;
}

static htnn_status add_pool(htnn_net *net, record_in *r)
{
    htnn_maxpool2d_options o = HTNN_MAXPOOL2D_OPTIONS_INIT;
    uint64_t size, stride;
    if (!cursor_u64(&r->c, &size) || !cursor_u64(&r->c, &stride))
        return bad(r, "truncated max-pool fields");
    if (!fits(size) || !fits(stride) || stride == 0)
        return bad(r, "max-pool window or stride out of range");
    o.size = (size_t)size, o.stride = (size_t)stride;
    o.activation = (int)r->act, o.qrelu_bits = (int)(int32_t)r->bits, o.loss = (int)r->loss;
    o.weight_targets = (int)r->wt;
    return added(htnn_net_add_maxpool2d(net, &o, NULL), r);
}

static htnn_status add_batchnorm(htnn_net *net, record_in *r)
{
    htnn_batchnorm_options o = HTNN_BATCHNORM_OPTIONS_INIT;
    float mom_eps[2];
    htnn_layer *layer;
    htnn_status st = read_floats(r, mom_eps, 2, "momentum or epsilon");
    if (st != HTNN_OK)
        return st;
    o.momentum = mom_eps[0], o.epsilon = mom_eps[1];
    o.activation = (int)r->act, o.qrelu_bits = (int)(int32_t)r->bits, o.loss = (int)r->loss;
    o.weight_targets = (int)r->wt;
    if ((st = added(htnn_net_add_batchnorm(net, &o, &layer), r)) != HTNN_OK)
        return st;
    float *arrays[4] = {layer->w, layer->b, layer->run_mean, layer->run_var};
    for (int k = 0; k < 4 && st == HTNN_OK; k++)
        st = read_floats(r, arrays[k], layer->n_b, "batch-norm parameter");
    for (size_t j = 0; st == HTNN_OK && j < layer->n_b; j++)
        if (!(layer->run_var[j] >= 0.0f))
            st = bad(r, "negative running variance");
    return st;
}

htnn_status record_add(htnn_net *net, uint32_t kind, const unsigned char *payload,
                       uint64_t length, const char *name, size_t index, uint32_t binary)
{
    record_in r = {{payload, (size_t)length, 0}, name, index, 0, 0, 0, 0, 0, 0, 0};
    if (kind < HTNN_LAYER_CONV2D || kind > HTNN_LAYER_BATCHNORM)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: unknown layer kind %" PRIu32
                         " (written by a newer libhtnn?)", name, index, kind);
    htnn_status st = read_units_shape(&r);
    if (st == HTNN_OK)
        st = place_input(net, &r);
    if (st != HTNN_OK)
        return st;
    if (kind != HTNN_LAYER_CONV2D && binary != 0)
        return bad(&r, "binary weights on a layer without weights");
    if (kind == HTNN_LAYER_CONV2D)
        st = add_conv(net, &r, binary);
    else if (kind == HTNN_LAYER_MAXPOOL2D)
        st = add_pool(net, &r);
    else
        st = add_batchnorm(net, &r);
    if (st == HTNN_OK && cursor_left(&r.c) != 0)
        return bad(&r, "record length does not match its contents");
    return st;
}
