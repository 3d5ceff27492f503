/* Internal: the bit-packed inference kernels (portable C, AVX2, AVX-512
 * VPOPCNTDQ + VNNI), chosen per packed net, never globally.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_PACKED_KERNELS_H
#define HTNN_LIB_PACKED_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes per row of the first layer's int8 weights: inputs are padded with
 * zeros to a multiple of this. */
#define PACKED_U8_ALIGN 64
/* Rows per block of u8_dot: p is readable for a multiple of this. */
#define PACKED_U8_ROWS 4

typedef struct packed_kernels {
    int id;           /* htnn_packed_kernel */
    const char *name; /* "portable", "avx2", "avx512" */
    /* out[r * units + j] = popcount(a_r XOR w_j) over `words` 64-bit words,
     * for `rows` activation rows a_r = a + r * words and `units` weight rows
     * w_j = w + j * words.  Padding bits must be 0 in both a and w (the
     * packers guarantee it), so they never count. */
    void (*xor_popcount)(const uint64_t *a, size_t rows, const uint64_t *w, size_t words,
                         size_t units, int32_t *out);
    /* For each of `rows` input rows p_r = p + r * stride (u8, zero-padded
     * to stride) and unit j: out[r * units + j] = sum_i p_r[i] * s_j[i],
     * s_j = w + j * stride in {-1, 0, +1} (0 only in the padding); stride
     * is a multiple of PACKED_U8_ALIGN.  p must be readable for rows
     * rounded up to a multiple of PACKED_U8_ROWS (the kernels work on
     * blocks of rows; sums of the extra rows are not stored). */
    void (*u8_dot)(const uint8_t *p, size_t rows, const int8_t *w, size_t stride,
                   size_t units, int32_t *out);
    /* bits (ceil(n / 64) words, padding 0) of s[j] >= t[j] (le = 0) or
     * s[j] <= t[j] (le = 1), j < n */
    void (*compare_bits)(const int32_t *s, const int32_t *t, size_t n, int le,
                         uint64_t *bits);
} packed_kernels;

/* The kernels with that htnn_packed_kernel id (PORTABLE, AVX2, AVX512), or
 * NULL when this build or this CPU cannot run them. */
const packed_kernels *packed_kernels_get(int id);

/* The best kernel id this CPU runs. */
int packed_kernels_best(void);

#endif
