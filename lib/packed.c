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
 *
 * With threads >= 2 (htnn_packed_set_threads) each call's examples are cut
 * into one contiguous slice of whole PACKED_BLOCKs per thread of the net's
 * own pool (lib/workers.c), each with its own scratch.
 * SPDX-License-Identifier: MIT */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dense.h"
#include "error.h"
#include "htnn_config.h"
#include "losses.h"
#include "net_internal.h"
#include "packed_internal.h"
#include "simd.h"

_Static_assert(PACKED_BLOCK % PACKED_U8_ROWS == 0, "u8_dot reads whole blocks of rows");
_Static_assert(PACKED_CHUNK % PACKED_BLOCK == 0, "chunks start on block boundaries");
_Static_assert(HTNN_PACKED_MAX_THREADS <= WORKERS_MAX, "one pool slice per thread");

#if HTNN_HAVE_OPENBLAS_THREADS
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
#endif

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

static void scratch_free(packed_scratch *s)
{
    mem_free(s->q);
    mem_free(s->bits[0]);
    mem_free(s->bits[1]);
    mem_free(s->fx);
    mem_free(s->fz);
    mem_free(s->acc);
    *s = (packed_scratch){0};
}

/* Scratch for PACKED_CHUNK rows of p's widest layers; on failure s is left
 * empty. */
static htnn_status scratch_alloc(const htnn_packed *p, packed_scratch *s)
{
    size_t max_in = 0, max_out = 0, max_words = 0;
    for (size_t d = 0; d < p->n_layers; d++) {
        const packed_layer *l = &p->layers[d];
        max_in = l->in > max_in ? l->in : max_in;
        max_out = l->out > max_out ? l->out : max_out;
        max_words = words_for(l->out) > max_words ? words_for(l->out) : max_words;
    }
    size_t c = PACKED_CHUNK, s8 = p->layers[0].stride8;
    s->q = s8 ? mem_calloc(c * s8, 1) : NULL;
    s->bits[0] = mem_calloc(c * max_words, sizeof(uint64_t));
    s->bits[1] = mem_calloc(c * max_words, sizeof(uint64_t));
    s->fx = mem_malloc(c * max_in * sizeof(float));
    s->fz = mem_malloc(c * max_out * sizeof(float));
    s->acc = mem_malloc(c * max_out * sizeof(int32_t));
    if ((s8 && s->q == NULL) || s->bits[0] == NULL || s->bits[1] == NULL || s->fx == NULL ||
        s->fz == NULL || s->acc == NULL) {
        scratch_free(s);
        return error_set(HTNN_ENOMEM, "packed net: out of memory for the scratch buffers");
    }
    return HTNN_OK;
}

void htnn_packed_free(htnn_packed *p)
{
    if (p == NULL)
        return;
    workers_free(p->pool);
    for (size_t i = 0; p->layers && i < p->n_layers; i++)
        layer_free_arrays(&p->layers[i]);
    mem_free(p->layers);
    for (size_t i = 0; i < HTNN_PACKED_MAX_THREADS; i++)
        scratch_free(&p->scratch[i]);
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
    p->threads = 1;
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
    for (size_t d = 0; st == HTNN_OK && d < p->n_layers; d++)
        st = derive_layer(&p->layers[d], d, d + 1 == p->n_layers);
    if (st != HTNN_OK || (st = scratch_alloc(p, &p->scratch[0])) != HTNN_OK)
        return st;
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

/* Allocates the scratch of the new threads and the new pool before freeing
 * anything, so that a failure leaves the previous setting whole. */
htnn_status htnn_packed_set_threads(htnn_packed *p, int threads)
{
    if (p == NULL || threads < 0)
        return error_set(HTNN_EINVAL, "htnn_packed_set_threads: packed net is NULL or "
                         "threads %d < 0", threads);
    size_t want = threads < 1 ? 1 : threads > HTNN_PACKED_MAX_THREADS
                                         ? HTNN_PACKED_MAX_THREADS : (size_t)threads;
    size_t have = (size_t)p->threads;
    workers *pool = NULL;
    htnn_status st = HTNN_OK;
    if (want == have)
        return HTNN_OK;
    for (size_t i = have; st == HTNN_OK && i < want; i++)
        st = scratch_alloc(p, &p->scratch[i]);
    if (st == HTNN_OK && want > 1)
        st = workers_create(want, &pool);
    if (st != HTNN_OK) {
        for (size_t i = have; i < want; i++)
            scratch_free(&p->scratch[i]);
        return st;
    }
    workers_free(p->pool);
    for (size_t i = want; i < have; i++)
        scratch_free(&p->scratch[i]);
    p->pool = pool;
    p->threads = (int)want;
    return HTNN_OK;
}

int htnn_packed_threads(const htnn_packed *p) { return p ? p->threads : -1; }

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

/* The float net's own product for m rows starting on a block boundary:
 * z = a W^T, one sgemm per PACKED_BLOCK rows (see there why), then scale
 * and bias as unit_z; hidden layers turn z into bits. */
static void float_layer(const packed_layer *l, const float *a, size_t m, float *z,
                        uint64_t *bits, size_t out_words)
{
    for (size_t r0 = 0; r0 < m; r0 += PACKED_BLOCK) {
        size_t mb = m - r0 < PACKED_BLOCK ? m - r0 : PACKED_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mb, (int)l->out,
                    (int)l->in, 1.0f, a + r0 * l->in, (int)l->in, l->w, (int)l->in, 0.0f,
                    z + r0 * l->out, (int)l->out);
    }
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

/* The 8-bit scale (256 or 255) of rows [r0, r0 + m) of the chunk x,
 * quantised into the chunk's q, or 0 when some input is neither p/256 nor
 * p/255 (or the layer has no u8 path, and q may be NULL). */
static float block_scale(const packed_layer *l, const float *x, uint8_t *q, size_t r0,
                         size_t m, int last)
{
    if (!l->binary || last || !l->stride8)
        return 0.0f;
    x += r0 * l->in;
    q += r0 * l->stride8;
    return quantize_rows(x, m, l->in, l->stride8, 256.0f, q)   ? 256.0f
           : quantize_rows(x, m, l->in, l->stride8, 255.0f, q) ? 255.0f
                                                                : 0.0f;
}

/* The first layer on m <= PACKED_CHUNK rows: per block, the u8 path when
 * every input of the block has the same 8-bit scale, else the float net's
 * sgemm.  Consecutive blocks of one scale share a u8_dot call: per block,
 * the first layer's int8 weights would be read from memory four times as
 * often (measured: 20 % slower on a 784-1024 layer). */
static void first_layer(const htnn_packed *p, packed_scratch *s, const float *x, size_t m,
                        uint64_t *bits, size_t ow, int last)
{
    const packed_layer *l = &p->layers[0];
    float scale[PACKED_CHUNK / PACKED_BLOCK];
    size_t nb = (m + PACKED_BLOCK - 1) / PACKED_BLOCK;
    for (size_t b = 0; b < nb; b++) {
        size_t r0 = b * PACKED_BLOCK, mb = m - r0 < PACKED_BLOCK ? m - r0 : PACKED_BLOCK;
        scale[b] = block_scale(l, x, s->q, r0, mb, last);
        if (scale[b] == 0.0f)
            float_layer(l, x + r0 * l->in, mb, s->fz + r0 * l->out,
                        bits ? bits + r0 * ow : NULL, ow);
    }
    for (size_t b = 0, e; b < nb; b = e) {
        for (e = b + 1; e < nb && scale[e] == scale[b];)
            e++;
        if (scale[b] == 0.0f)
            continue;
        size_t r0 = b * PACKED_BLOCK, n = (e * PACKED_BLOCK < m ? e * PACKED_BLOCK : m) - r0;
        const int32_t *thr = l->thr_q[scale[b] == 256.0f ? 0 : 1];
        int32_t *acc = s->acc + r0 * l->out;
        p->k->u8_dot(s->q + r0 * l->stride8, n, l->w8, l->stride8, l->out, acc);
        for (size_t r = 0; r < n; r++)
            p->k->compare_bits(acc + r * l->out, thr, l->out, 0, bits + (r0 + r) * ow);
    }
}

/* Forward pass of m <= PACKED_CHUNK rows starting on a block boundary,
 * on scratch s; the logits end in s->fz. */
static void forward_chunk(const htnn_packed *p, packed_scratch *s, const float *x, size_t m)
{
    const uint64_t *a = NULL; /* activation bits of the previous layer */
    for (size_t d = 0; d < p->n_layers; d++) {
        const packed_layer *l = &p->layers[d];
        int last = d + 1 == p->n_layers;
        size_t ow = words_for(l->out);
        uint64_t *bits = last ? NULL : s->bits[d & 1];
        if (d == 0) {
            first_layer(p, s, x, m, bits, ow, last);
        } else if (l->binary) {
            int64_t k = (int64_t)l->in;
            p->k->xor_popcount(a, m, l->wbits, l->words, l->out, s->acc);
            for (size_t r = 0; r < m; r++) {
                const int32_t *pc = s->acc + r * l->out;
                if (last) {
                    float *zr = s->fz + r * l->out;
                    for (size_t j = 0; j < l->out; j++)
                        zr[j] = unit_z(l, j, (float)(k - 2 * (int64_t)pc[j]));
                    continue;
                }
                p->k->compare_bits(pc, l->thr, l->out, 1, bits + r * ow);
            }
        } else {
            expand_bits(a, l->words, m, l->in, s->fx);
            float_layer(l, s->fx, m, s->fz, bits, ow);
        }
        a = bits;
    }
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
    if (!all_finite(x, count * p->input_width))
        return error_set(HTNN_ENUMERIC, "%s: inputs contain NaN or infinity", what);
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

/* One prediction call: logits or classes (the other is NULL). */
typedef struct predict_job {
    htnn_packed *p;
    const float *x;
    size_t count;
    float *logits;
    int32_t *classes;
} predict_job;

/* Slice `part` of `parts`: whole blocks, contiguous, on its own scratch,
 * in chunks of PACKED_CHUNK rows from the slice's first row. */
static void predict_part(void *arg, size_t part, size_t parts)
{
    const predict_job *j = arg;
    htnn_packed *p = j->p;
    const packed_layer *top = &p->layers[p->n_layers - 1];
    packed_scratch *s = &p->scratch[part];
    size_t blocks = (j->count + PACKED_BLOCK - 1) / PACKED_BLOCK;
    size_t first = blocks * part / parts * PACKED_BLOCK;
    size_t end = blocks * (part + 1) / parts * PACKED_BLOCK;
    end = end < j->count ? end : j->count;
    for (; first < end; first += PACKED_CHUNK) {
        size_t m = end - first < PACKED_CHUNK ? end - first : PACKED_CHUNK;
        forward_chunk(p, s, j->x + first * p->input_width, m);
        if (j->logits != NULL) {
            memcpy(j->logits + first * top->out, s->fz, m * top->out * sizeof *j->logits);
            continue;
        }
        for (size_t r = 0; r < m; r++)
            j->classes[first + r] = packed_class(top, s->fz + r * top->out);
    }
}

/* BLAS on one thread while the pool runs (as net_blas_alone does for the
 * net's workers): threads x BLAS threads would oversubscribe the cores.
 * Every packed net may call sgemm (its first layer does on inputs that are
 * not 8-bit).  Returns the count to restore, 0 when untouched. */
static int blas_alone(void)
{
#if HTNN_HAVE_OPENBLAS_THREADS
    int before = openblas_get_num_threads();
    if (before > 1) {
        openblas_set_num_threads(1);
        return before;
    }
#endif
    return 0;
}

static void blas_restore(int before)
{
#if HTNN_HAVE_OPENBLAS_THREADS
    if (before > 1)
        openblas_set_num_threads(before);
#else
    (void)before;
#endif
}

static htnn_status packed_run(htnn_packed *p, const float *x, size_t count, float *logits,
                              int32_t *classes, const char *what)
{
    const void *out = logits != NULL ? (const void *)logits : (const void *)classes;
    htnn_status st = check_predict(p, x, count, out, what);
    if (st != HTNN_OK)
        return st;
    predict_job j = {p, x, count, logits, classes};
    /* one block has nothing to share: waking the helpers would only cost */
    if (p->pool == NULL || count <= PACKED_BLOCK) {
        predict_part(&j, 0, 1);
        return HTNN_OK;
    }
    int blas = blas_alone();
    workers_run(p->pool, predict_part, &j);
    blas_restore(blas);
    return HTNN_OK;
}

htnn_status htnn_packed_predict_logits(htnn_packed *p, const float *x, size_t count,
                                       float *logits)
{
    return packed_run(p, x, count, logits, NULL, "htnn_packed_predict_logits");
}

htnn_status htnn_packed_predict(htnn_packed *p, const float *x, size_t count,
                                int32_t *classes)
{
    return packed_run(p, x, count, NULL, classes, "htnn_packed_predict");
}
