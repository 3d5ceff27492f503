/* Internal: explicit little-endian fields for the model and packed-model
 * files: a writer into a buffer sized beforehand, and a bounds-checked
 * cursor whose reads fail (return 0) instead of running past the end.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_BYTES_H
#define HTNN_LIB_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct byte_writer {
    unsigned char *p;
    size_t pos;
} byte_writer;

static inline void put_u32(byte_writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[w->pos++] = (unsigned char)(v >> (8 * i));
}

static inline void put_u64(byte_writer *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[w->pos++] = (unsigned char)(v >> (8 * i));
}

/* Floats as their IEEE-754 bit patterns. */
static inline void put_floats(byte_writer *w, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        put_u32(w, bits);
    }
}

typedef struct byte_cursor {
    const unsigned char *p;
    size_t size, pos;
} byte_cursor;

static inline size_t cursor_left(const byte_cursor *c) { return c->size - c->pos; }

static inline uint32_t load_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline int cursor_u32(byte_cursor *c, uint32_t *v)
{
    if (cursor_left(c) < 4)
        return 0;
    *v = load_u32(c->p + c->pos);
    c->pos += 4;
    return 1;
}

static inline int cursor_u64(byte_cursor *c, uint64_t *v)
{
    if (cursor_left(c) < 8)
        return 0;
    *v = (uint64_t)load_u32(c->p + c->pos + 4) << 32 | load_u32(c->p + c->pos);
    c->pos += 8;
    return 1;
}

/* Decodes n little-endian floats; returns the index of the first NaN or
 * infinity (never stored), or n. */
static inline size_t decode_floats(const unsigned char *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = load_u32(src + 4 * i);
        if ((bits & 0x7f800000u) == 0x7f800000u)
            return i;
        memcpy(&dst[i], &bits, sizeof bits);
    }
    return n;
}

#endif
