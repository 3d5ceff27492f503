/* Packed model files (doc/file-format.md, "Packed model files"): binary
 * weights 1 bit each, little-endian, CRC-32 at the end.  The reader checks
 * the magic and version, then the checksum over the whole file, then every
 * count against the bytes left before it allocates anything.
 * SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bytes.h"
#include "error.h"
#include "model_io_internal.h"
#include "packed_internal.h"

#define PMAGIC "HTNNPACK"
#define PMAGIC_BYTES 8
#define PFORMAT_VERSION 1u
#define PHEADER_BYTES 32     /* magic, version, output, input width, layer count */
#define PRECORD_HEAD 12      /* kind u32 + length u64 */
#define PLAYER_FIELDS 28     /* activation, binary, bias, in, out */
#define PEND_BYTES 12
#define PCRC_BYTES 4

_Static_assert(sizeof(float) == sizeof(uint32_t), "float must be IEEE-754 binary32");

/* Bytes of a layer's payload after its fields; 0 if it cannot fit a file. */
static uint64_t layer_data_bytes(uint64_t in, uint64_t out, uint32_t binary, uint32_t bias)
{
    const uint64_t limit = MODEL_FILE_MAX_BYTES;
    if (in == 0 || out == 0 || in > PACKED_MAX_WIDTH || out > PACKED_MAX_WIDTH)
        return 0;
    uint64_t words = (in + 63) / 64;
    uint64_t n = binary ? out * words * 8 + (binary == 1 ? 4 * out : 0) : out * in * 4;
    n += bias ? 4 * out : 0;
    return n <= limit ? n : 0;
}

/* ---- writer ----------------------------------------------------------- */

htnn_status htnn_packed_save_buffer(const htnn_packed *p, void **data, size_t *size)
{
    if (p == NULL || data == NULL || size == NULL)
        return error_set(HTNN_EINVAL, "htnn_packed_save_buffer: packed net, data or size "
                         "is NULL");
    uint64_t total = PHEADER_BYTES + PEND_BYTES + PCRC_BYTES;
    for (size_t d = 0; d < p->n_layers; d++) {
        const packed_layer *l = &p->layers[d];
        total += PRECORD_HEAD + PLAYER_FIELDS +
                 layer_data_bytes(l->in, l->out, (uint32_t)l->binary, (uint32_t)l->has_bias);
        if (total > MODEL_FILE_MAX_BYTES)
            return error_set(HTNN_ELIMIT, "save: the packed net is larger than the file "
                             "limit");
    }
    unsigned char *buf = mem_malloc((size_t)total);
    if (buf == NULL)
        return error_set(HTNN_ENOMEM, "save: out of memory for %zu bytes", (size_t)total);
    byte_writer w = {buf, 0};
    memcpy(buf, PMAGIC, PMAGIC_BYTES);
    w.pos = PMAGIC_BYTES;
    put_u32(&w, PFORMAT_VERSION);
    put_u32(&w, (uint32_t)p->output);
    put_u64(&w, p->input_width);
    put_u64(&w, p->n_layers);
    for (size_t d = 0; d < p->n_layers; d++) {
        const packed_layer *l = &p->layers[d];
        put_u32(&w, 1u); /* HTNN_LAYER_DENSE */
        put_u64(&w, PLAYER_FIELDS + layer_data_bytes(l->in, l->out, (uint32_t)l->binary,
                                                     (uint32_t)l->has_bias));
        put_u32(&w, (uint32_t)l->activation);
        put_u32(&w, (uint32_t)l->binary);
        put_u32(&w, (uint32_t)l->has_bias);
        put_u64(&w, l->in);
        put_u64(&w, l->out);
        if (l->binary) {
            for (size_t i = 0; i < l->out * l->words; i++)
                put_u64(&w, l->wbits[i]);
            if (l->binary == HTNN_BINARY_SCALED)
                put_floats(&w, l->alpha, l->out);
        } else {
            put_floats(&w, l->w, l->in * l->out);
        }
        if (l->has_bias)
            put_floats(&w, l->bias, l->out);
    }
    put_u32(&w, 0u); /* END */
    put_u64(&w, 0u);
    put_u32(&w, model_crc32(buf, w.pos));
    *data = buf;
    *size = w.pos;
    return HTNN_OK;
}

htnn_status htnn_packed_save(const htnn_packed *p, const char *path)
{
    if (p == NULL || path == NULL || path[0] == '\0')
        return error_set(HTNN_EINVAL, "htnn_packed_save: packed net or path is NULL or "
                         "empty");
    void *data;
    size_t size;
    htnn_status st = htnn_packed_save_buffer(p, &data, &size);
    if (st != HTNN_OK)
        return st;
    st = model_write_file(path, data, size);
    mem_free(data);
    return st;
}

/* ---- reader ----------------------------------------------------------- */

/* n finite floats; returns 0 on a NaN or infinity. */
static int get_f32s(byte_cursor *c, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = load_u32(c->p + c->pos + 4 * i);
        if ((bits & 0x7f800000u) == 0x7f800000u)
            return 0;
        memcpy(&dst[i], &bits, sizeof bits);
    }
    c->pos += 4 * n;
    return 1;
}

static htnn_status bad(const char *name, size_t d, const char *what)
{
    return error_set(HTNN_EFORMAT, "%s: layer %zu: %s", name, d, what);
}

static htnn_status read_layer(byte_cursor *c, const char *name, size_t d, uint64_t width,
                              packed_layer *l)
{
    uint32_t kind, act, binary, bias;
    uint64_t length, in, out;
    if (!cursor_u32(c, &kind) || !cursor_u64(c, &length) || !cursor_u32(c, &act) ||
        !cursor_u32(c, &binary) || !cursor_u32(c, &bias) || !cursor_u64(c, &in) || !cursor_u64(c, &out))
        return bad(name, d, "truncated header");
    if (kind != 1u)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: unknown layer kind %" PRIu32, name, d,
                         kind);
    if (act > HTNN_ACT_RELU || binary > HTNN_BINARY_SIGN || bias > 1)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: activation %" PRIu32 ", binary %"
                         PRIu32 " or bias %" PRIu32 " out of range", name, d, act, binary,
                         bias);
    if (in != width)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: input width %" PRIu64 " does not "
                         "match the previous width %" PRIu64, name, d, in, width);
    uint64_t data = layer_data_bytes(in, out, binary, bias);
    if (data == 0)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: widths %" PRIu64 " x %" PRIu64
                         " out of range", name, d, out, in);
    if (length != PLAYER_FIELDS + data)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: record length %" PRIu64 " does not "
                         "match its widths", name, d, length);
    if (data > cursor_left(c))
        return bad(name, d, "truncated weights");
    l->in = (size_t)in;
    l->out = (size_t)out;
    l->activation = (int)act;
    l->binary = (int)binary;
    l->has_bias = (int)bias;
    htnn_status st = packed_layer_alloc(l);
    if (st != HTNN_OK)
        return st;
    if (binary) {
        size_t pad = l->words * 64 - l->in;
        uint64_t mask = pad ? ~(uint64_t)0 << (64 - pad) : 0;
        for (size_t j = 0; j < l->out; j++)
            for (size_t k = 0; k < l->words; k++) {
                uint64_t v = 0;
                cursor_u64(c, &v);
                if (k + 1 == l->words && (v & mask) != 0)
                    return bad(name, d, "padding bits of a weight row are not 0");
                l->wbits[j * l->words + k] = v;
            }
        if (binary == HTNN_BINARY_SCALED) {
            if (!get_f32s(c, l->alpha, l->out))
                return bad(name, d, "NaN or infinite scale");
            for (size_t j = 0; j < l->out; j++)
                if (!(l->alpha[j] >= 0.0f))
                    return bad(name, d, "negative scale");
        } else {
            for (size_t j = 0; j < l->out; j++)
                l->alpha[j] = 1.0f;
        }
    } else if (!get_f32s(c, l->w, l->in * l->out)) {
        return bad(name, d, "NaN or infinite weight");
    }
    if (bias && !get_f32s(c, l->bias, l->out))
        return bad(name, d, "NaN or infinite bias");
    return HTNN_OK;
}

static htnn_status parse(const unsigned char *data, size_t size, const char *name,
                         htnn_packed **out)
{
    byte_cursor c = {data, size, 0};
    uint32_t version, output, tag;
    uint64_t input_width, layers, end_len;
    if (size >= PMAGIC_BYTES && memcmp(data, PMAGIC, PMAGIC_BYTES) != 0)
        return error_set(HTNN_EFORMAT, "%s: not a packed libhtnn model (bad magic)", name);
    c.pos = PMAGIC_BYTES;
    if (size < PMAGIC_BYTES || !cursor_u32(&c, &version))
        return error_set(HTNN_EFORMAT, "%s: truncated in the header", name);
    if (version != PFORMAT_VERSION)
        return error_set(HTNN_EVERSION, "%s: packed format version %" PRIu32 " is not "
                         "supported (this libhtnn reads version %u)", name, version,
                         PFORMAT_VERSION);
    if (size < PHEADER_BYTES + PEND_BYTES + PCRC_BYTES)
        return error_set(HTNN_EFORMAT, "%s: truncated (%zu bytes)", name, size);
    uint32_t stored = load_u32(data + size - PCRC_BYTES);
    uint32_t computed = model_crc32(data, size - PCRC_BYTES);
    if (stored != computed)
        return error_set(HTNN_EFORMAT, "%s: checksum mismatch (stored 0x%08" PRIx32
                         ", computed 0x%08" PRIx32 "): the file is truncated or corrupt",
                         name, stored, computed);
    c.size = size - PCRC_BYTES;
    cursor_u32(&c, &output);
    cursor_u64(&c, &input_width);
    cursor_u64(&c, &layers);
    if (output > HTNN_OUTPUT_HARD_THRESHOLD)
        return error_set(HTNN_EFORMAT, "%s: unknown output kind %" PRIu32, name, output);
    if (input_width == 0 || input_width > PACKED_MAX_WIDTH)
        return error_set(HTNN_EFORMAT, "%s: input width %" PRIu64 " out of range", name,
                         input_width);
    if (layers == 0 || layers > cursor_left(&c) / (PRECORD_HEAD + PLAYER_FIELDS))
        return error_set(HTNN_EFORMAT, "%s: layer count %" PRIu64 " does not fit the file",
                         name, layers);
    htnn_packed *p = NULL;
    htnn_status st = packed_new((size_t)input_width, (int)output, (size_t)layers, &p);
    if (st != HTNN_OK)
        return st;
    uint64_t width = input_width;
    for (size_t d = 0; st == HTNN_OK && d < p->n_layers; d++) {
        st = read_layer(&c, name, d, width, &p->layers[d]);
        width = p->layers[d].out;
    }
    if (st == HTNN_OK && (!cursor_u32(&c, &tag) || !cursor_u64(&c, &end_len) || tag != 0 ||
                          end_len != 0 || cursor_left(&c) != 0))
        st = error_set(HTNN_EFORMAT, "%s: missing END or unexpected bytes after the "
                       "layers", name);
    if (st == HTNN_OK && (st = packed_finish(p)) != HTNN_OK && st != HTNN_ENOMEM) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", htnn_last_error());
        st = error_set(HTNN_EFORMAT, "%s: %s", name, detail);
    }
    if (st != HTNN_OK) {
        htnn_packed_free(p);
        return st;
    }
    *out = p;
    return HTNN_OK;
}

htnn_status htnn_packed_load_buffer(const void *data, size_t size, htnn_packed **out)
{
    if (data == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_packed_load_buffer: data or out is NULL");
    return parse(data, size, "packed buffer", out);
}

htnn_status htnn_packed_load(const char *path, htnn_packed **out)
{
    if (path == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_packed_load: path or out is NULL");
    unsigned char *data = NULL;
    size_t size = 0;
    htnn_status st = model_read_file(path, &data, &size);
    if (st != HTNN_OK)
        return st;
    st = parse(data, size, path, out);
    mem_free(data);
    return st;
}
