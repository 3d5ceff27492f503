/* Bit-packed inference kernels: XOR + popcount over 64-bit words (hidden
 * layers with +-1 activations and binary weights) and u8 x (+-1) dot
 * products (the first layer on 8-bit inputs).  Three variants: portable C
 * (always), AVX2 (scalar POPCNT + VPMADDUBSW) and AVX-512 (VPOPCNTQ +
 * VPDPBUSD).  The ISA variants are static functions compiled with target
 * attributes and reached only through the table packed_kernels_get()
 * returns after checking the CPU, so nothing is chosen globally.
 * SPDX-License-Identifier: MIT */
#include "packed_kernels.h"

#include "htnn/packed.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#else
#define HAVE_X86_KERNELS 0
#endif

/* ---- portable C ------------------------------------------------------- */

/* SWAR popcount: no compiler builtin, no ISA assumption. */
static inline int popcount64(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555u);
    v = (v & 0x3333333333333333u) + ((v >> 2) & 0x3333333333333333u);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int)((v * 0x0101010101010101u) >> 56);
}

static void xor_popcount_portable(const uint64_t *a, const uint64_t *w, size_t words,
                                  size_t units, int32_t *out)
{
    for (size_t j = 0; j < units; j++) {
        const uint64_t *row = w + j * words;
        int32_t c = 0;
        for (size_t k = 0; k < words; k++)
            c += popcount64(a[k] ^ row[k]);
        out[j] = c;
    }
}

static void u8_dot_portable(const uint8_t *p, const int8_t *w, size_t stride, size_t units,
                            int32_t *out)
{
    for (size_t j = 0; j < units; j++) {
        const int8_t *row = w + j * stride;
        int32_t s = 0;
        for (size_t i = 0; i < stride; i++)
            s += (int32_t)p[i] * (int32_t)row[i];
        out[j] = s;
    }
}

static const packed_kernels portable = {HTNN_KERNEL_PORTABLE, "portable",
                                        xor_popcount_portable, u8_dot_portable};

#if HAVE_X86_KERNELS

/* ---- AVX2 ------------------------------------------------------------- */

__attribute__((target("avx2,popcnt")))
static void xor_popcount_avx2(const uint64_t *a, const uint64_t *w, size_t words,
                              size_t units, int32_t *out)
{
    for (size_t j = 0; j < units; j++) {
        const uint64_t *row = w + j * words;
        long long c0 = 0, c1 = 0;
        size_t k = 0;
        for (; k + 2 <= words; k += 2) {
            c0 += _mm_popcnt_u64(a[k] ^ row[k]);
            c1 += _mm_popcnt_u64(a[k + 1] ^ row[k + 1]);
        }
        if (k < words)
            c0 += _mm_popcnt_u64(a[k] ^ row[k]);
        out[j] = (int32_t)(c0 + c1);
    }
}

__attribute__((target("avx2")))
static inline int32_t hsum256_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* u8 x s8 pairs summed to int16 (at most 2 * 255, no saturation with +-1
 * weights), then to int32. */
__attribute__((target("avx2")))
static void u8_dot_avx2(const uint8_t *p, const int8_t *w, size_t stride, size_t units,
                        int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t j = 0; j < units; j++) {
        const int8_t *row = w + j * stride;
        __m256i acc = _mm256_setzero_si256();
        for (size_t i = 0; i < stride; i += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
            __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(row + i));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones));
        }
        out[j] = hsum256_epi32(acc);
    }
}

static const packed_kernels avx2 = {HTNN_KERNEL_AVX2, "avx2", xor_popcount_avx2,
                                    u8_dot_avx2};

/* ---- AVX-512 (F, BW, VPOPCNTDQ, VNNI) ----------------------------------- */

#define AVX512_TARGET "avx512f,avx512bw,avx512vpopcntdq,avx512vnni"

__attribute__((target(AVX512_TARGET)))
static void xor_popcount_avx512(const uint64_t *a, const uint64_t *w, size_t words,
                                size_t units, int32_t *out)
{
    size_t full = words / 8, rest = words % 8;
    __mmask8 tail = (__mmask8)((1u << rest) - 1u);
    size_t j = 0;
    /* two units at a time share the loads of a */
    for (; j + 2 <= units; j += 2) {
        const uint64_t *r0 = w + j * words, *r1 = r0 + words;
        __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
        for (size_t k = 0; k < full; k++) {
            __m512i x = _mm512_loadu_si512((const void *)(a + 8 * k));
            c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          x, _mm512_loadu_si512((const void *)(r0 + 8 * k)))));
            c1 = _mm512_add_epi64(c1, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          x, _mm512_loadu_si512((const void *)(r1 + 8 * k)))));
        }
        if (rest) {
            __m512i x = _mm512_maskz_loadu_epi64(tail, a + 8 * full);
            c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          x, _mm512_maskz_loadu_epi64(tail, r0 + 8 * full))));
            c1 = _mm512_add_epi64(c1, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          x, _mm512_maskz_loadu_epi64(tail, r1 + 8 * full))));
        }
        out[j] = (int32_t)_mm512_reduce_add_epi64(c0);
        out[j + 1] = (int32_t)_mm512_reduce_add_epi64(c1);
    }
    for (; j < units; j++) {
        const uint64_t *r0 = w + j * words;
        __m512i c0 = _mm512_setzero_si512();
        for (size_t k = 0; k < full; k++)
            c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          _mm512_loadu_si512((const void *)(a + 8 * k)),
                                          _mm512_loadu_si512((const void *)(r0 + 8 * k)))));
        if (rest)
            c0 = _mm512_add_epi64(c0, _mm512_popcnt_epi64(_mm512_xor_si512(
                                          _mm512_maskz_loadu_epi64(tail, a + 8 * full),
                                          _mm512_maskz_loadu_epi64(tail, r0 + 8 * full))));
        out[j] = (int32_t)_mm512_reduce_add_epi64(c0);
    }
}

/* VPDPBUSD: u8 x s8, groups of four summed into int32 lanes, no saturation. */
__attribute__((target(AVX512_TARGET)))
static void u8_dot_avx512(const uint8_t *p, const int8_t *w, size_t stride, size_t units,
                          int32_t *out)
{
    size_t j = 0;
    for (; j + 4 <= units; j += 4) {
        const int8_t *r = w + j * stride;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < stride; i += 64) {
            __m512i x = _mm512_loadu_si512((const void *)(p + i));
            a0 = _mm512_dpbusd_epi32(a0, x, _mm512_loadu_si512((const void *)(r + i)));
            a1 = _mm512_dpbusd_epi32(a1, x, _mm512_loadu_si512((const void *)(r + stride + i)));
            a2 = _mm512_dpbusd_epi32(a2, x,
                                     _mm512_loadu_si512((const void *)(r + 2 * stride + i)));
            a3 = _mm512_dpbusd_epi32(a3, x,
                                     _mm512_loadu_si512((const void *)(r + 3 * stride + i)));
        }
        out[j] = _mm512_reduce_add_epi32(a0);
        out[j + 1] = _mm512_reduce_add_epi32(a1);
        out[j + 2] = _mm512_reduce_add_epi32(a2);
        out[j + 3] = _mm512_reduce_add_epi32(a3);
    }
    for (; j < units; j++) {
        const int8_t *r = w + j * stride;
        __m512i a0 = _mm512_setzero_si512();
        for (size_t i = 0; i < stride; i += 64)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512((const void *)(p + i)),
                                     _mm512_loadu_si512((const void *)(r + i)));
        out[j] = _mm512_reduce_add_epi32(a0);
    }
}

static const packed_kernels avx512 = {HTNN_KERNEL_AVX512, "avx512", xor_popcount_avx512,
                                      u8_dot_avx512};

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}

static int cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vnni");
}

#endif /* HAVE_X86_KERNELS */

const packed_kernels *packed_kernels_get(int id)
{
    switch (id) {
    case HTNN_KERNEL_PORTABLE: return &portable;
#if HAVE_X86_KERNELS
    case HTNN_KERNEL_AVX2: return cpu_has_avx2() ? &avx2 : NULL;
    case HTNN_KERNEL_AVX512: return cpu_has_avx512() ? &avx512 : NULL;
#endif
    default: return NULL;
    }
}

int packed_kernels_best(void)
{
    if (packed_kernels_get(HTNN_KERNEL_AVX512))
        return HTNN_KERNEL_AVX512;
    if (packed_kernels_get(HTNN_KERNEL_AVX2))
        return HTNN_KERNEL_AVX2;
    return HTNN_KERNEL_PORTABLE;
}
