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

typedef struct packed_kernels {
    int id;           /* htnn_packed_kernel */
    const char *name; /* "portable", "avx2", "avx512" */
    /* out[j] = popcount(a XOR w_j) over `words` 64-bit words, for `units`
     * weight rows w_j = w + j * words.  Padding bits must be 0 in both a
     * and w (the packers guarantee it), so they never count. */
    void (*xor_popcount)(const uint64_t *a, const uint64_t *w, size_t words,
                         size_t units, int32_t *out);
    /* out[j] = sum_i p[i] * s_j[i] with p in 0..255 and s_j = w + j * stride
     * in {-1, 0, +1} (0 only in the padding); stride is a multiple of
     * PACKED_U8_ALIGN and p is zero-padded to it. */
    void (*u8_dot)(const uint8_t *p, const int8_t *w, size_t stride, size_t units,
                   int32_t *out);
} packed_kernels;

/* The kernels with that htnn_packed_kernel id (PORTABLE, AVX2, AVX512), or
 * NULL when this build or this CPU cannot run them. */
const packed_kernels *packed_kernels_get(int id);

/* The best kernel id this CPU runs. */
int packed_kernels_best(void);

#endif
