/* htnn_packed_export_c: a packed net as self-contained C source (static
 * tables, no malloc, no dependency beyond <stdint.h> and <string.h>), for
 * microcontrollers.  The generated code follows the packed engine's
 * portable path: integer popcount sums and the same integer thresholds,
 * the u8 path for 8-bit inputs (p/256 or p/255), and float sums in index
 * order where the library calls sgemm (doc/binary.md, section 8).
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "packed_internal.h"

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *grown = mem_realloc(b->p, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
}

static void put_floats(strbuf *b, const char *name, size_t d, const float *v, size_t n)
{
    put(b, "static const float %s_%zu[%zu] = {", name, d, n);
    for (size_t i = 0; i < n; i++)
        put(b, "%s%a", i == 0 ? "\n    " : i % 6 ? ", " : ",\n    ", (double)v[i]);
    put(b, "\n};\n");
}

static void put_i32s(strbuf *b, const char *name, size_t d, const int32_t *v, size_t n)
{
    put(b, "static const int32_t %s_%zu[%zu] = {", name, d, n);
    for (size_t i = 0; i < n; i++)
        put(b, "%s%ld", i == 0 ? "\n    " : i % 10 ? ", " : ",\n    ", (long)v[i]);
    put(b, "\n};\n");
}

static void put_words(strbuf *b, const char *name, size_t d, const uint64_t *v, size_t n)
{
    put(b, "static const uint64_t %s_%zu[%zu] = {", name, d, n);
    for (size_t i = 0; i < n; i++)
        put(b, "%s0x%016llxu", i == 0 ? "\n    " : i % 4 ? ", " : ",\n    ",
            (unsigned long long)v[i]);
    put(b, "\n};\n");
}

static int name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static const char runtime[] =
    "static int popcount64_(uint64_t v)\n"
    "{\n"
    "    v = v - ((v >> 1) & 0x5555555555555555u);\n"
    "    v = (v & 0x3333333333333333u) + ((v >> 2) & 0x3333333333333333u);\n"
    "    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fu;\n"
    "    return (int)((v * 0x0101010101010101u) >> 56);\n"
    "}\n\n"
    "/* 1 and p[] if every x[i] is fl(p[i] / c) with p[i] in 0..255 */\n"
    "static int quantize_(const float *x, int n, float c, uint8_t *p)\n"
    "{\n"
    "    for (int i = 0; i < n; i++) {\n"
    "        float v = x[i], t = v * c + 0.5f;\n"
    "        if (!(v >= 0.0f && t < 256.0f))\n"
    "            return 0;\n"
    "        p[i] = (uint8_t)(int)t;\n"
    "        if ((float)p[i] / c != v)\n"
    "            return 0;\n"
    "    }\n"
    "    return 1;\n"
    "}\n\n"
    "static int bit_(const uint64_t *v, int i) { return (int)((v[i / 64] >> (i % 64)) & 1u); }\n\n";

/* Tables of layer d. */
static void put_tables(strbuf *b, const packed_layer *l, size_t d, int last)
{
    /* a binary hidden layer on bits needs only its thresholds */
    int folded = l->binary && !last && d > 0;
    if (l->binary) {
        put_words(b, "w", d, l->wbits, l->out * l->words);
        if (l->binary == 1 && !folded)
            put_floats(b, "alpha", d, l->alpha, l->out);
    } else {
        put_floats(b, "w", d, l->w, l->in * l->out);
    }
    if (l->has_bias && !folded)
        put_floats(b, "b", d, l->bias, l->out);
    if (l->binary && !last && d > 0)
        put_i32s(b, "thr", d, l->thr, l->out);
    if (l->binary && !last && d == 0 && l->stride8) {
        put_i32s(b, "t256", d, l->thr_q[0], l->out);
        put_i32s(b, "t255", d, l->thr_q[1], l->out);
    }
}

/* s = s * alpha + b as the library computes it, then h bit or z. */
static void put_finish(strbuf *b, const packed_layer *l, size_t d, int last, const char *ind)
{
    if (l->binary == 1)
        put(b, "%ss = s * alpha_%zu[j];\n", ind, d);
    if (l->has_bias)
        put(b, "%ss = s + b_%zu[j];\n", ind, d);
    if (last)
        put(b, "%sz[j] = s;\n", ind);
    else
        put(b, "%sif (s > 0.0f)\n%s    h%zu[j / 64] |= (uint64_t)1 << (j %% 64);\n", ind, ind,
            d);
}

/* The code of layer d: from x (layer 0) or bits a<d-1>, to bits h<d> or z. */
static void put_layer(strbuf *b, const packed_layer *l, size_t d, int last)
{
    put(b, "    /* layer %zu: %zu -> %zu, %s weights */\n", d, l->in, l->out,
        l->binary ? "binary" : "float");
    if (!last)
        put(b, "    memset(h%zu, 0, sizeof h%zu);\n", d, d);
    if (d == 0 && l->binary && !last && l->stride8) {
        put(b, "    c = quantize_(x, %zu, 256.0f, q) ? 0 : quantize_(x, %zu, 255.0f, q) ? 1 : -1;\n",
            l->in, l->in);
        put(b, "    for (int j = 0; j < %zu; j++) {\n"
               "        if (c >= 0) {\n"
               "            int32_t s = 0;\n"
               "            for (int i = 0; i < %zu; i++)\n"
               "                s += bit_(w_0 + j * %zu, i) ? (int32_t)q[i] : -(int32_t)q[i];\n"
               "            if (s >= (c == 0 ? t256_0[j] : t255_0[j]))\n"
               "                h0[j / 64] |= (uint64_t)1 << (j %% 64);\n"
               "            continue;\n"
               "        }\n"
               "        float s = 0.0f;\n"
               "        for (int i = 0; i < %zu; i++)\n"
               "            s += bit_(w_0 + j * %zu, i) ? x[i] : -x[i];\n",
            l->out, l->in, l->words, l->in, l->words);
        put_finish(b, l, d, last, "        ");
        put(b, "    }\n");
        return;
    }
    put(b, "    for (int j = 0; j < %zu; j++) {\n", l->out);
    if (l->binary && d > 0) {
        put(b, "        int pc = 0;\n        for (int k = 0; k < %zu; k++)\n"
               "            pc += popcount64_(h%zu[k] ^ w_%zu[j * %zu + k]);\n",
            l->words, d - 1, d, l->words);
        if (!last) {
            put(b, "        if (pc <= thr_%zu[j])\n"
                   "            h%zu[j / 64] |= (uint64_t)1 << (j %% 64);\n    }\n", d, d);
            return;
        }
        put(b, "        float s = (float)(%zu - 2 * pc);\n", l->in);
    } else {
        char in[64];
        if (d == 0)
            snprintf(in, sizeof in, "x[i]");
        else
            snprintf(in, sizeof in, "(bit_(h%zu, i) ? 1.0f : -1.0f)", d - 1);
        put(b, "        float s = 0.0f;\n        for (int i = 0; i < %zu; i++)\n", l->in);
        if (l->binary)
            put(b, "            s += bit_(w_%zu + j * %zu, i) ? %s : -%s;\n", d, l->words, in,
                in);
        else
            put(b, "            s += %s * w_%zu[j * %zu + i];\n", in, d, l->in);
    }
    put_finish(b, l, d, last, "        ");
    put(b, "    }\n");
}

htnn_status htnn_packed_export_c(const htnn_packed *p, const char *prefix, char **text,
                                 size_t *size)
{
    if (p == NULL || text == NULL || size == NULL)
        return error_set(HTNN_EINVAL, "htnn_packed_export_c: packed net, text or size is "
                         "NULL");
    if (prefix == NULL)
        prefix = "htnn_model";
    if (!name_ok(prefix))
        return error_set(HTNN_EINVAL, "htnn_packed_export_c: prefix '%s' is not a C "
                         "identifier of at most 64 characters", prefix);
    strbuf b = {mem_malloc(1 << 16), 0, 1 << 16, 0};
    if (b.p == NULL)
        return error_set(HTNN_ENOMEM, "export-c: out of memory");
    const packed_layer *top = &p->layers[p->n_layers - 1];
    size_t n = p->n_layers;
    put(&b, "/* Generated by libhtnn %s (htnn_packed_export_c): %zu layers, %zu inputs, %zu "
            "outputs.\n * Self-contained C11: no malloc, static tables, no library.\n"
            " * int %s_predict(const float *x, float *logits) returns the predicted class\n"
            " * of x (%zu floats) and, when logits is not NULL, writes %zu logits.\n"
            " * Re-entrant: all state is on the stack. */\n"
            "#include <stdint.h>\n#include <string.h>\n\n",
        HTNN_VERSION_STRING, n, p->input_width, top->out, prefix, p->input_width, top->out);
    put(&b, "%s", runtime);
    for (size_t d = 0; d < n; d++)
        put_tables(&b, &p->layers[d], d, d + 1 == n);
    put(&b, "\nint %s_predict(const float *x, float *logits);\n\n"
            "int %s_predict(const float *x, float *logits)\n{\n", prefix, prefix);
    for (size_t d = 0; d + 1 < n; d++)
        put(&b, "    uint64_t h%zu[%zu];\n", d, (p->layers[d].out + 63) / 64);
    put(&b, "    float z[%zu];\n", top->out);
    if (p->layers[0].binary && n > 1 && p->layers[0].stride8)
        put(&b, "    uint8_t q[%zu];\n    int c;\n", p->input_width);
    for (size_t d = 0; d < n; d++)
        put_layer(&b, &p->layers[d], d, d + 1 == n);
    put(&b, "    if (logits)\n        memcpy(logits, z, sizeof z);\n");
    if (top->out == 1)
        put(&b, "    return %s > 0.0f;\n}\n",
            top->activation == HTNN_ACT_QRELU ? "2.0f * z[0] - 1.0f" : "z[0]");
    else
        put(&b, "    int best = 0;\n    for (int j = 1; j < %zu; j++)\n"
                "        if (z[j] > z[best])\n            best = j;\n    return best;\n}\n",
            top->out);
    if (b.failed) {
        mem_free(b.p);
        return error_set(HTNN_ENOMEM, "export-c: out of memory");
    }
    *text = b.p;
    *size = b.len;
    return HTNN_OK;
}
