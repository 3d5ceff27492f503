/* The packed inference engine: building a packed net from a float net and
 * predicting with it in chunks of PACKED_CHUNK examples.
 *
 * Per layer (see doc/guide.md, "Binary inference"):
 *  - binary weights, +-1 inputs (hidden): S = K - 2 popcount(a XOR w) is
 *    the float net's sgemm sum exactly (integers < 2^24), and
 *    z = S * alpha + b > 0 is folded into S >= T with T found once by
 *    evaluating that float expression (monotone in S) by bisection;
 *  - binary weights on the real inputs (first hidden layer): 8-bit inputs
 *    p/256 or p/255 take the integer u8 x (+-1) path and a threshold per
 *    scale; other inputs take the float net's own sgemm on +-1 weights;
 *  - float weights, and the last layer unless it is binary on +-1 inputs:
 *    the activations are expanded to +-1 floats and the float net's own
 *    sgemm + bias add is applied, so the values are the float net's.
 * SPDX-License-Identifier: MIT */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dense.h"
#include "error.h"
#include "losses.h"
#include "net_internal.h"
#include "packed_internal.h"
#include "simd.h"

_Static_assert(PACKED_CHUNK % PACKED_U8_ROWS == 0, "u8_dot reads whole blocks of rows");

static size_t words_for(size_t bits) { return (bits + 63) / 64; }

static void layer_free_arrays(packed_layer *l)
{
    mem_free(l->wbits);
    mem_free(l->alpha);
    mem_free(l->w);
    mem_free(l->bias);
    mem_free(l->thr);
    mem_free(l->w8);
    mem_free(l->thr_q[0]);
    mem_free(l->thr_q[1]);
}

void htnn_packed_free(htnn_packed *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->layers && i < p->n_layers; i++)
        layer_free_arrays(&p->layers[i]);
    mem_free(p->layers);
    mem_free(p->q);
    mem_free(p->bits[0]);
    mem_free(p->bits[1]);
    mem_free(p->fx);
    mem_free(p->fz);
    mem_free(p->acc);
    mem_free(p);
}

htnn_status packed_new(size_t input_width, int output, size_t n_layers, htnn_packed **out)
{
    htnn_packed *p = mem_calloc(1, sizeof *p);
    if (p == NULL || (p->layers = mem_calloc(n_layers ? n_layers : 1, sizeof *p->layers)) == NULL) {
        mem_free(p);
        return error_set(HTNN_ENOMEM, "pack: out of memory");
    }
    p->input_width = input_width;
    p->output = output;
    p->n_layers = n_layers;
    *out = p;
    return HTNN_OK;
}

htnn_status packed_layer_alloc(packed_layer *l)
{
    l->words = words_for(l->in);
    if (l->binary) {
        l->wbits = mem_calloc(l->out * l->words, sizeof *l->wbits);
        l->alpha = mem_malloc(l->out * sizeof *l->alpha);
    } else {
        l->w = mem_malloc(l->in * l->out * sizeof *l->w);
    }
    l->bias = mem_calloc(l->out, sizeof *l->bias);
    if ((l->binary ? l->wbits == NULL || l->alpha == NULL : l->w == NULL) || l->bias == NULL)
        return error_set(HTNN_ENOMEM, "pack: out of memory for %zu x %zu weights", l->out,
                         l->in);
    return HTNN_OK;
}

/* z of unit j from its sum, exactly as the float net computes it:
 * dense_forward's scale_columns (z *= alpha) then activation_forward's
 * bias add (z += b).  The library is built with -ffp-contract=off. */
static float unit_z(const packed_layer *l, size_t j, float sum)
{
    float z = sum;
    if (l->binary == HTNN_BINARY_SCALED)
        z = z * l->alpha[j];
    if (l->has_bias)
        z = z + l->bias[j];
    return z;
}

/* The float value of an integer sum S: S itself, or S / c for u8 inputs
 * p / c. */
static float sum_value(int64_t s, float c) { return c > 0.0f ? (float)s / c : (float)s; }

/* Smallest S in [lo, hi] whose unit outputs +1 (z > 0), or hi + 1.  z is
 * non-decreasing in S (alpha >= 0, float rounding is monotone). */
static int64_t unit_threshold(const packed_layer *l, size_t j, int64_t lo, int64_t hi, float c)
{
    if (!(unit_z(l, j, sum_value(hi, c)) > 0.0f))
        return hi + 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (unit_z(l, j, sum_value(mid, c)) > 0.0f)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static htnn_status check_layout(const htnn_packed *p)
{
    if (p->n_layers == 0)
        return error_set(HTNN_ESTATE, "pack: the net has no layers");
    for (size_t d = 0; d + 1 < p->n_layers; d++)
        if (p->layers[d].activation != HTNN_ACT_SIGN)
            return error_set(HTNN_EUNSUPPORTED, "pack: hidden layer %zu has activation %d, "
                             "not sign (%d): a packed net needs +-1 activations on every "
                             "hidden layer", d, p->layers[d].activation, HTNN_ACT_SIGN);
    if (p->output == HTNN_OUTPUT_SOFTMAX && p->layers[p->n_layers - 1].out < 2)
        return error_set(HTNN_EUNSUPPORTED, "pack: a softmax output needs at least 2 units");
    return HTNN_OK;
}

/* Thresholds and the int8 / float copies of binary weights. */
static htnn_status derive_layer(packed_layer *l, size_t d, int last)
{
    if (!l->binary)
        return HTNN_OK;
    if (d == 0) {
        /* the float net's +-1 weights, for its own sgemm */
        l->w = mem_malloc(l->in * l->out * sizeof *l->w);
        if (l->w == NULL)
            return error_set(HTNN_ENOMEM, "pack: out of memory");
        for (size_t j = 0; j < l->out; j++)
            for (size_t i = 0; i < l->in; i++)
                l->w[j * l->in + i] =
                    (l->wbits[j * l->words + i / 64] >> (i % 64)) & 1u ? 1.0f : -1.0f;
    }
    if (last)
        return HTNN_OK;
    int64_t k = (int64_t)l->in;
    if (d > 0) {
        if ((l->thr = mem_malloc(l->out * sizeof *l->thr)) == NULL)
            return error_set(HTNN_ENOMEM, "pack: out of memory");
        for (size_t j = 0; j < l->out; j++) {
            /* S = K - 2 pc >= T  <=>  pc <= floor((K - T) / 2) */
            int64_t t = unit_threshold(l, j, -k, k, 0.0f), num = k - t;
            l->thr[j] = (int32_t)(num >= 0 ? num / 2 : -((-num + 1) / 2));
        }
        return HTNN_OK;
    }
    if (255 * k > INT32_MAX)
        return HTNN_OK; /* inputs this wide always take the float path */
    l->stride8 = (l->in + PACKED_U8_ALIGN - 1) / PACKED_U8_ALIGN * PACKED_U8_ALIGN;
    l->w8 = mem_calloc(l->out * l->stride8, 1);
    l->thr_q[0] = mem_malloc(l->out * sizeof(int32_t));
    l->thr_q[1] = mem_malloc(l->out * sizeof(int32_t));
    if (l->w8 == NULL || l->thr_q[0] == NULL || l->thr_q[1] == NULL)
        return error_set(HTNN_ENOMEM, "pack: out of memory");
    for (size_t j = 0; j < l->out; j++) {
        for (size_t i = 0; i < l->in; i++)
            l->w8[j * l->stride8 + i] = (int8_t)(l->w[j * l->in + i] > 0.0f ? 1 : -1);
        l->thr_q[0][j] = (int32_t)unit_threshold(l, j, -255 * k, 255 * k, 256.0f);
        l->thr_q[1][j] = (int32_t)unit_threshold(l, j, -255 * k, 255 * k, 255.0f);
    }
    return HTNN_OK;
}

static int env_forces_portable(void)
{
    const char *e = getenv("HTNN_FORCE_PORTABLE");
    return e != NULL && strcmp(e, "1") == 0;
}

htnn_status packed_finish(htnn_packed *p)
{
    htnn_status st = check_layout(p);
    size_t max_in = 0, max_out = 0, max_words = 0;
    for (size_t d = 0; st == HTNN_OK && d < p->n_layers; d++) {
        packed_layer *l = &p->layers[d];
        st = derive_layer(l, d, d + 1 == p->n_layers);
        max_in = l->in > max_in ? l->in : max_in;
        max_out = l->out > max_out ? l->out : max_out;
        max_words = words_for(l->out) > max_words ? words_for(l->out) : max_words;
    }
    if (st != HTNN_OK)
        return st;
    size_t c = PACKED_CHUNK, s8 = p->layers[0].stride8;
    p->q = s8 ? mem_calloc(c * s8, 1) : NULL;
    p->bits[0] = mem_calloc(c * max_words, sizeof(uint64_t));
    p->bits[1] = mem_calloc(c * max_words, sizeof(uint64_t));
    p->fx = mem_malloc(c * max_in * sizeof(float));
    p->fz = mem_malloc(c * max_out * sizeof(float));
    p->acc = mem_malloc(c * max_out * sizeof(int32_t));
    if ((s8 && p->q == NULL) || p->bits[0] == NULL || p->bits[1] == NULL || p->fx == NULL ||
        p->fz == NULL || p->acc == NULL)
        return error_set(HTNN_ENOMEM, "pack: out of memory for the scratch buffers");
    p->kernel = env_forces_portable() ? HTNN_KERNEL_PORTABLE : packed_kernels_best();
    p->k = packed_kernels_get(p->kernel);
    return HTNN_OK;
}

htnn_status htnn_net_pack(const htnn_net *net, htnn_packed **out)
{
    htnn_packed *p = NULL;
    htnn_status st;
    if (net == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_pack: net or out is NULL");
    if (net->n_layers == 0)
        return error_set(HTNN_ESTATE, "htnn_net_pack: the net has no layers");
    for (size_t d = 0; d < net->n_layers; d++)
        if (net->layers[d]->kind != HTNN_LAYER_DENSE)
            return error_set(HTNN_EUNSUPPORTED, "htnn_net_pack: layer %zu is not dense; "
                             "the packed engine runs dense layers only", d);
    if ((st = packed_new(net->input_width, net->opts.output, net->n_layers, &p)) != HTNN_OK)
        return st;
    for (size_t d = 0; st == HTNN_OK && d < net->n_layers; d++) {
        const htnn_layer *src = net->layers[d];
        packed_layer *l = &p->layers[d];
        l->in = src->in;
        l->out = src->out;
        l->activation = src->activation;
        l->binary = src->binary_weights;
        l->has_bias = src->has_bias;
        if ((st = packed_layer_alloc(l)) != HTNN_OK)
            break;
        if (src->has_bias)
            memcpy(l->bias, src->b, l->out * sizeof *l->bias);
        if (!l->binary) {
            memcpy(l->w, src->w, l->in * l->out * sizeof *l->w);
            continue;
        }
        /* the same scales and signs as dense_binarize: sign(0) = -1 */
        dense_binary_scales(l->binary, src->w, l->in, l->out, l->alpha);
        for (size_t j = 0; j < l->out; j++)
            for (size_t i = 0; i < l->in; i++)
                if (src->w[j * l->in + i] > 0.0f)
                    l->wbits[j * l->words + i / 64] |= (uint64_t)1 << (i % 64);
    }
    if (st == HTNN_OK)
        st = packed_finish(p);
    if (st != HTNN_OK) {
        htnn_packed_free(p);
        return st;
    }
    *out = p;
    return HTNN_OK;
}

htnn_status htnn_packed_set_kernel(htnn_packed *p, int kernel)
{
    if (p == NULL)
        return error_set(HTNN_EINVAL, "htnn_packed_set_kernel: packed net is NULL");
    if (kernel == HTNN_KERNEL_AUTO)
        kernel = packed_kernels_best();
    const packed_kernels *k = packed_kernels_get(kernel);
    if (k == NULL)
        return error_set(HTNN_EUNSUPPORTED, "htnn_packed_set_kernel: kernel %d (%s) is not "
                         "available on this CPU or in this build", kernel,
                         htnn_packed_kernel_name(kernel));
    p->kernel = kernel;
    p->k = k;
    return HTNN_OK;
}

int htnn_packed_kernel_in_use(const htnn_packed *p) { return p ? p->kernel : -1; }

const char *htnn_packed_kernel_name(int kernel)
{
    switch (kernel) {
    case HTNN_KERNEL_AUTO: return "auto";
    case HTNN_KERNEL_PORTABLE: return "portable";
    case HTNN_KERNEL_AVX2: return "avx2";
    case HTNN_KERNEL_AVX512: return "avx512";
    default: return "?";
    }
}

size_t htnn_packed_input_width(const htnn_packed *p) { return p ? p->input_width : 0; }
size_t htnn_packed_layer_count(const htnn_packed *p) { return p ? p->n_layers : 0; }

size_t htnn_packed_output_width(const htnn_packed *p)
{
    return p ? p->layers[p->n_layers - 1].out : 0;
}

size_t htnn_packed_class_count(const htnn_packed *p)
{
    size_t out = htnn_packed_output_width(p);
    return out == 1 ? 2 : out;
}

/* ------------------------------------------------------------------------
 * Forward pass of one chunk.
 */

/* Quantises m rows to u8 when every input is exactly fl(p / c) with p in
 * 0..255; returns 0 (and leaves garbage in q) otherwise. */
HTNN_CLONES
static int quantize_rows(const float *x, size_t m, size_t in, size_t stride, float c,
                         uint8_t *q)
{
    for (size_t r = 0; r < m; r++) {
        const float *row = x + r * in;
        uint8_t *qr = q + r * stride;
        int ok = 1;
        for (size_t i = 0; i < in; i++) {
            float v = row[i], t = v * c + 0.5f;
            int valid = v >= 0.0f && t < 256.0f;
            int pv = valid ? (int)t : 0;
            ok &= valid & ((float)pv / c == v);
            qr[i] = (uint8_t)pv;
        }
        if (!ok)
            return 0;
        for (size_t i = in; i < stride; i++)
            qr[i] = 0;
    }
    return 1;
}

/* Sets bit j of a zeroed row when `on`. */
static inline void set_bit(uint64_t *row, size_t j, int on)
{
    row[j / 64] |= (uint64_t)(on != 0) << (j % 64);
}

/* The float net's own product for m rows: z = a W^T (sgemm), then scale
 * and bias as unit_z; hidden layers turn z into bits. */
static void float_layer(const packed_layer *l, const float *a, size_t m, float *z,
                        uint64_t *bits, size_t out_words)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)l->out, (int)l->in,
                1.0f, a, (int)l->in, l->w, (int)l->in, 0.0f, z, (int)l->out);
    for (size_t r = 0; r < m; r++) {
        float *zr = z + r * l->out;
        for (size_t j = 0; j < l->out; j++)
            zr[j] = unit_z(l, j, zr[j]);
        if (bits == NULL)
            continue;
        uint64_t *br = bits + r * out_words;
        memset(br, 0, out_words * sizeof *br);
        for (size_t j = 0; j < l->out; j++)
            set_bit(br, j, zr[j] > 0.0f);
    }
}

/* +-1 floats from m rows of bits. */
static void expand_bits(const uint64_t *bits, size_t words, size_t m, size_t n, float *out)
{
    for (size_t r = 0; r < m; r++)
        for (size_t i = 0; i < n; i++)
            out[r * n + i] = (bits[r * words + i / 64] >> (i % 64)) & 1u ? 1.0f : -1.0f;
}

/* Forward pass of m <= PACKED_CHUNK rows; the logits end in p->fz. */
static void forward_chunk(htnn_packed *p, const float *x, size_t m)
{
    const uint64_t *a = NULL; /* activation bits of the previous layer */
    for (size_t d = 0; d < p->n_layers; d++) {
        const packed_layer *l = &p->layers[d];
        int last = d + 1 == p->n_layers;
        size_t ow = words_for(l->out);
        uint64_t *bits = last ? NULL : p->bits[d & 1];
        if (d == 0) {
            float c = 0.0f;
            if (l->binary && !last && l->stride8)
                c = quantize_rows(x, m, l->in, l->stride8, 256.0f, p->q)   ? 256.0f
                    : quantize_rows(x, m, l->in, l->stride8, 255.0f, p->q) ? 255.0f
                                                                            : 0.0f;
            if (c == 0.0f) {
                float_layer(l, x, m, p->fz, bits, ow);
            } else {
                const int32_t *thr = l->thr_q[c == 256.0f ? 0 : 1];
                p->k->u8_dot(p->q, m, l->w8, l->stride8, l->out, p->acc);
                for (size_t r = 0; r < m; r++)
                    p->k->compare_bits(p->acc + r * l->out, thr, l->out, 0, bits + r * ow);
            }
        } else if (l->binary) {
            int64_t k = (int64_t)l->in;
            p->k->xor_popcount(a, m, l->wbits, l->words, l->out, p->acc);
            for (size_t r = 0; r < m; r++) {
                const int32_t *pc = p->acc + r * l->out;
                if (last) {
                    float *zr = p->fz + r * l->out;
                    for (size_t j = 0; j < l->out; j++)
                        zr[j] = unit_z(l, j, (float)(k - 2 * (int64_t)pc[j]));
                    continue;
                }
                p->k->compare_bits(pc, l->thr, l->out, 1, bits + r * ow);
            }
        } else {
            expand_bits(a, l->words, m, l->in, p->fx);
            float_layer(l, p->fx, m, p->fz, bits, ow);
        }
        a = bits;
    }
}

/* 1 if every value is finite: an OR over the exponent bits, which
 * vectorises (all_finite's float sum does not). */
HTNN_CLONES
static int inputs_finite(const float *x, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

static htnn_status check_predict(const htnn_packed *p, const float *x, size_t count,
                                 const void *out, const char *what)
{
    if (p == NULL || x == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "%s: packed net, inputs or output array is NULL", what);
    if (count == 0)
        return error_set(HTNN_EINVAL, "%s: no examples (count is 0)", what);
    if (count > SIZE_MAX / p->input_width)
        return error_set(HTNN_EINVAL, "%s: %zu examples are too many", what, count);
    if (!inputs_finite(x, count * p->input_width))
        return error_set(HTNN_ENUMERIC, "%s: inputs contain NaN or infinity", what);
    return HTNN_OK;
}

htnn_status htnn_packed_predict_logits(htnn_packed *p, const float *x, size_t count,
                                       float *logits)
{
    htnn_status st = check_predict(p, x, count, logits, "htnn_packed_predict_logits");
    if (st != HTNN_OK)
        return st;
    size_t out = htnn_packed_output_width(p);
    for (size_t first = 0; first < count; first += PACKED_CHUNK) {
        size_t m = count - first < PACKED_CHUNK ? count - first : PACKED_CHUNK;
        forward_chunk(p, x + first * p->input_width, m);
        memcpy(logits + first * out, p->fz, m * out * sizeof *logits);
    }
    return HTNN_OK;
}

/* htnn_net_predict's rule (output_class in predict.c). */
static int32_t packed_class(const packed_layer *top, const float *z)
{
    if (top->out == 1)
        return loss_input(top->activation, z[0]) > 0.0f;
    int32_t best = 0;
    for (size_t j = 1; j < top->out; j++)
        if (z[j] > z[best])
            best = (int32_t)j;
    return best;
}

htnn_status htnn_packed_predict(htnn_packed *p, const float *x, size_t count,
                                int32_t *classes)
{
    htnn_status st = check_predict(p, x, count, classes, "htnn_packed_predict");
    if (st != HTNN_OK)
        return st;
    const packed_layer *top = &p->layers[p->n_layers - 1];
    for (size_t first = 0; first < count; first += PACKED_CHUNK) {
        size_t m = count - first < PACKED_CHUNK ? count - first : PACKED_CHUNK;
        forward_chunk(p, x + first * p->input_width, m);
        for (size_t r = 0; r < m; r++)
            classes[first + r] = packed_class(top, p->fz + r * top->out);
    }
    return HTNN_OK;
}
