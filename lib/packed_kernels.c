/* Bit-packed inference kernels: XOR + popcount over 64-bit words (hidden
 * layers with +-1 activations and binary weights), u8 x (+-1) dot products
 * (the first layer on 8-bit inputs) and integer thresholds to bits.  Three
 * variants: portable C (always), AVX2 (scalar POPCNT + VPMADDUBSW) and
 * AVX-512 (VPOPCNTQ + VPDPBUSD).  The ISA variants are static functions
 * compiled with target attributes and reached only through the table
 * packed_kernels_get() returns after checking the CPU, so nothing is chosen
 * globally.
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

static void xor_popcount_portable(const uint64_t *a, size_t rows, const uint64_t *w,
                                  size_t words, size_t units, int32_t *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < units; j++) {
            const uint64_t *row = w + j * words, *ar = a + r * words;
            int32_t c = 0;
            for (size_t k = 0; k < words; k++)
                c += popcount64(ar[k] ^ row[k]);
            out[r * units + j] = c;
        }
}

static void u8_dot_portable(const uint8_t *p, size_t rows, const int8_t *w, size_t stride,
                            size_t units, int32_t *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < units; j++) {
            const int8_t *row = w + j * stride;
            const uint8_t *pr = p + r * stride;
            int32_t s = 0;
            for (size_t i = 0; i < stride; i++)
                s += (int32_t)pr[i] * (int32_t)row[i];
            out[r * units + j] = s;
        }
}

static void compare_bits_portable(const int32_t *s, const int32_t *t, size_t n, int le,
                                  uint64_t *bits)
{
    for (size_t w = 0; w * 64 < n; w++) {
        size_t base = w * 64, cnt = n - base < 64 ? n - base : 64;
        uint64_t word = 0;
        if (le) {
            for (size_t b = 0; b < cnt; b++)
                word |= (uint64_t)(s[base + b] <= t[base + b]) << b;
        } else {
            for (size_t b = 0; b < cnt; b++)
                word |= (uint64_t)(s[base + b] >= t[base + b]) << b;
        }
        bits[w] = word;
    }
}

static const packed_kernels portable = {HTNN_KERNEL_PORTABLE, "portable",
                                        xor_popcount_portable, u8_dot_portable,
                                        compare_bits_portable};

#if HAVE_X86_KERNELS

/* ---- AVX2 ------------------------------------------------------------- */

__attribute__((target("avx2,popcnt")))
static void xor_popcount_avx2_row(const uint64_t *a, const uint64_t *w, size_t words,
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

__attribute__((target("avx2,popcnt")))
static void xor_popcount_avx2(const uint64_t *a, size_t rows, const uint64_t *w, size_t words,
                              size_t units, int32_t *out)
{
    for (size_t r = 0; r < rows; r++)
        xor_popcount_avx2_row(a + r * words, w, words, units, out + r * units);
}

__attribute__((target("avx2")))
static inline int32_t hsum256_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* u8 x s8 pairs summed to int16 (|pair| <= 2 * 255 with +-1 weights, no
 * saturation), accumulated in int16 for up to 64 steps (64 * 510 < 32768),
 * then widened to int32 once; two rows share each weight load. */
#define AVX2_U8_STEPS 64

__attribute__((target("avx2")))
static void u8_dot_avx2(const uint8_t *p, size_t rows, const int8_t *w, size_t stride,
                        size_t units, int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t r = 0; r < rows; r += 2) {
        int two = r + 1 < rows;
        const uint8_t *p0 = p + r * stride, *p1 = two ? p0 + stride : p0;
        for (size_t j = 0; j < units; j++) {
            const int8_t *row = w + j * stride;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            for (size_t i = 0; i < stride;) {
                size_t end = i + 32 * AVX2_U8_STEPS < stride ? i + 32 * AVX2_U8_STEPS : stride;
                __m256i s0 = _mm256_setzero_si256(), s1 = s0;
                for (; i < end; i += 32) {
                    __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(row + i));
                    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(p0 + i));
                    __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(p1 + i));
                    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(x0, y));
                    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(x1, y));
                }
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
            }
            out[r * units + j] = hsum256_epi32(a0);
            if (two)
                out[(r + 1) * units + j] = hsum256_epi32(a1);
        }
    }
}

__attribute__((target("avx2")))
static void compare_bits_avx2(const int32_t *s, const int32_t *t, size_t n, int le,
                              uint64_t *bits)
{
    size_t w = 0;
    for (; (w + 1) * 64 <= n; w++) {
        uint64_t word = 0;
        for (size_t k = 0; k < 8; k++) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + 64 * w + 8 * k));
            __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(t + 64 * w + 8 * k));
            /* ge: !(t > s); le: !(s > t) */
            __m256i gt = le ? _mm256_cmpgt_epi32(a, b) : _mm256_cmpgt_epi32(b, a);
            unsigned m = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(gt)) ^ 0xffu;
            word |= (uint64_t)m << (8 * k);
        }
        bits[w] = word;
    }
    if (w * 64 < n)
        compare_bits_portable(s + 64 * w, t + 64 * w, n - 64 * w, le, bits + w);
}

static const packed_kernels avx2 = {HTNN_KERNEL_AVX2, "avx2", xor_popcount_avx2,
                                    u8_dot_avx2, compare_bits_avx2};

/* ---- AVX-512 (F, BW, VPOPCNTDQ, VNNI) ----------------------------------- */

#define AVX512_TARGET "avx512f,avx512bw,avx512vpopcntdq,avx512vnni"

/* popcount(x XOR y) summed into acc (8 x int64) */
#define XPOP(acc, x, y) \
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)))

/* Totals of four 8 x int64 accumulators, as 4 int32 in out[0..3]. */
__attribute__((target(AVX512_TARGET)))
static inline void reduce4_epi64(__m512i c0, __m512i c1, __m512i c2, __m512i c3, int32_t *out)
{
    __m512i t01 = _mm512_add_epi64(_mm512_unpacklo_epi64(c0, c1), _mm512_unpackhi_epi64(c0, c1));
    __m512i t23 = _mm512_add_epi64(_mm512_unpacklo_epi64(c2, c3), _mm512_unpackhi_epi64(c2, c3));
    /* quarters: [t01.q0 + t01.q2, t01.q1 + t01.q3, t23.q0 + t23.q2, t23.q1 + t23.q3] */
    __m512i z = _mm512_add_epi64(_mm512_shuffle_i64x2(t01, t23, 0x44),
                                 _mm512_shuffle_i64x2(t01, t23, 0xee));
    /* quarter 0 = (c0, c1), quarter 2 = (c2, c3) */
    __m512i f = _mm512_add_epi64(z, _mm512_shuffle_i64x2(z, z, 0xb1));
    __m512i g = _mm512_permutexvar_epi64(_mm512_set_epi64(7, 6, 3, 2, 5, 4, 1, 0), f);
    _mm_storeu_si128((__m128i *)(void *)out,
                     _mm256_castsi256_si128(_mm512_cvtepi64_epi32(g)));
}

/* Blocks of 2 rows x 4 units: 8 accumulators, each weight load serves two
 * rows, and one transposing reduction gives four totals. */
__attribute__((target(AVX512_TARGET)))
static void xor_popcount_avx512(const uint64_t *a, size_t rows, const uint64_t *w, size_t words,
                                size_t units, int32_t *out)
{
    size_t full = words / 8, rest = words % 8;
    __mmask8 tail = (__mmask8)((1u << rest) - 1u);
    size_t r = 0;
    for (; r < rows; r += 2) {
        int two = r + 1 < rows;
        const uint64_t *a0 = a + r * words, *a1 = two ? a0 + words : a0;
        size_t j = 0;
        for (; j + 4 <= units; j += 4) {
            const uint64_t *w0 = w + j * words, *w1 = w0 + words, *w2 = w1 + words,
                           *w3 = w2 + words;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
            __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            for (size_t k = 0; k < full; k++) {
                __m512i y0 = _mm512_loadu_si512((const void *)(w0 + 8 * k));
                __m512i y1 = _mm512_loadu_si512((const void *)(w1 + 8 * k));
                __m512i y2 = _mm512_loadu_si512((const void *)(w2 + 8 * k));
                __m512i y3 = _mm512_loadu_si512((const void *)(w3 + 8 * k));
                __m512i x = _mm512_loadu_si512((const void *)(a0 + 8 * k));
                XPOP(c00, x, y0);
                XPOP(c01, x, y1);
                XPOP(c02, x, y2);
                XPOP(c03, x, y3);
                x = _mm512_loadu_si512((const void *)(a1 + 8 * k));
                XPOP(c10, x, y0);
                XPOP(c11, x, y1);
                XPOP(c12, x, y2);
                XPOP(c13, x, y3);
            }
            if (rest) {
                __m512i y0 = _mm512_maskz_loadu_epi64(tail, w0 + 8 * full);
                __m512i y1 = _mm512_maskz_loadu_epi64(tail, w1 + 8 * full);
                __m512i y2 = _mm512_maskz_loadu_epi64(tail, w2 + 8 * full);
                __m512i y3 = _mm512_maskz_loadu_epi64(tail, w3 + 8 * full);
                __m512i x = _mm512_maskz_loadu_epi64(tail, a0 + 8 * full);
                XPOP(c00, x, y0);
                XPOP(c01, x, y1);
                XPOP(c02, x, y2);
                XPOP(c03, x, y3);
                x = _mm512_maskz_loadu_epi64(tail, a1 + 8 * full);
                XPOP(c10, x, y0);
                XPOP(c11, x, y1);
                XPOP(c12, x, y2);
                XPOP(c13, x, y3);
            }
            reduce4_epi64(c00, c01, c02, c03, out + r * units + j);
            if (two)
                reduce4_epi64(c10, c11, c12, c13, out + (r + 1) * units + j);
        }
        for (; j < units; j++) {
            const uint64_t *w0 = w + j * words;
            for (int t = 0; t <= two; t++) {
                const uint64_t *ar = t ? a1 : a0;
                __m512i c = _mm512_setzero_si512();
                for (size_t k = 0; k < full; k++)
                    XPOP(c, _mm512_loadu_si512((const void *)(ar + 8 * k)),
                         _mm512_loadu_si512((const void *)(w0 + 8 * k)));
                if (rest)
                    XPOP(c, _mm512_maskz_loadu_epi64(tail, ar + 8 * full),
                         _mm512_maskz_loadu_epi64(tail, w0 + 8 * full));
                out[(r + (size_t)t) * units + j] = (int32_t)_mm512_reduce_add_epi64(c);
            }
        }
    }
}

/* acc += u8 x s8 (VPDPBUSD) through inline assembly: with the intrinsic,
 * GCC 12 copies every accumulator twice per step (measured: 32 extra
 * register moves per 16 VPDPBUSD), which halved the kernel's speed. */
#define DPBUSD(acc, x, y) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "vm"(y))

/* VPDPBUSD: u8 x s8, groups of four summed into int32 lanes, no saturation.
 * Blocks of 4 rows x 4 units (16 accumulators) so that each weight load
 * serves four rows: the first layer's int8 weights (in x out bytes) are
 * then read from cache once per 4 examples instead of once per example. */
__attribute__((target(AVX512_TARGET)))
static void u8_dot_avx512_block(const uint8_t *p, size_t nr, const int8_t *w, size_t stride,
                                size_t units, int32_t *out, size_t out_stride)
{
    size_t j = 0;
    for (; j + 4 <= units; j += 4) {
        const int8_t *r = w + j * stride;
        /* named accumulators: an array made GCC shuffle registers */
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
        __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        const uint8_t *p0 = p, *p1 = p + stride, *p2 = p + 2 * stride, *p3 = p + 3 * stride;
        /* rows past nr exist (see packed_kernels.h); their sums are dropped */
        for (size_t i = 0; i < stride; i += 64) {
            __m512i y0 = _mm512_loadu_si512((const void *)(r + i));
            __m512i y1 = _mm512_loadu_si512((const void *)(r + stride + i));
            __m512i y2 = _mm512_loadu_si512((const void *)(r + 2 * stride + i));
            __m512i y3 = _mm512_loadu_si512((const void *)(r + 3 * stride + i));
            __m512i x = _mm512_loadu_si512((const void *)(p0 + i));
            DPBUSD(a00, x, y0);
            DPBUSD(a01, x, y1);
            DPBUSD(a02, x, y2);
            DPBUSD(a03, x, y3);
            x = _mm512_loadu_si512((const void *)(p1 + i));
            DPBUSD(a10, x, y0);
            DPBUSD(a11, x, y1);
            DPBUSD(a12, x, y2);
            DPBUSD(a13, x, y3);
            x = _mm512_loadu_si512((const void *)(p2 + i));
            DPBUSD(a20, x, y0);
            DPBUSD(a21, x, y1);
            DPBUSD(a22, x, y2);
            DPBUSD(a23, x, y3);
            x = _mm512_loadu_si512((const void *)(p3 + i));
            DPBUSD(a30, x, y0);
            DPBUSD(a31, x, y1);
            DPBUSD(a32, x, y2);
            DPBUSD(a33, x, y3);
        }
        __m512i acc[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13},
                             {a20, a21, a22, a23}, {a30, a31, a32, a33}};
        /* 16 horizontal sums at once: per row a, fold its 4 accumulators
         * into one vector whose 128-bit quarter b holds 4 partial sums of
         * unit j + b; then transpose-add the 4 rows' vectors so that
         * quarter b, lane a is the total of (row a, unit j + b) */
        __m512i v[4];
        for (size_t a = 0; a < 4; a++) {
            __m512i z1 = _mm512_add_epi32(_mm512_shuffle_i32x4(acc[a][0], acc[a][1], 0x44),
                                          _mm512_shuffle_i32x4(acc[a][0], acc[a][1], 0xee));
            __m512i z2 = _mm512_add_epi32(_mm512_shuffle_i32x4(acc[a][2], acc[a][3], 0x44),
                                          _mm512_shuffle_i32x4(acc[a][2], acc[a][3], 0xee));
            v[a] = _mm512_add_epi32(_mm512_shuffle_i32x4(z1, z2, 0x88),
                                    _mm512_shuffle_i32x4(z1, z2, 0xdd));
        }
        __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]),
                                       _mm512_unpackhi_epi32(v[0], v[1]));
        __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]),
                                       _mm512_unpackhi_epi32(v[2], v[3]));
        __m512i f = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23),
                                     _mm512_unpackhi_epi64(s01, s23));
        /* f[4b + a] -> row a, unit j + b: transpose the 4 x 4 */
        const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8,
                                             4, 0);
        __m512i g = _mm512_permutexvar_epi32(idx, f);
        int32_t tmp[16];
        _mm512_storeu_si512((void *)tmp, g);
        for (size_t a = 0; a < nr; a++)
            for (size_t b = 0; b < 4; b++)
                out[a * out_stride + j + b] = tmp[4 * a + b];
    }
    for (; j < units; j++) {
        const int8_t *r = w + j * stride;
        for (size_t a = 0; a < nr; a++) {
            __m512i acc = _mm512_setzero_si512();
            /* one unit: plain reduction */
            for (size_t i = 0; i < stride; i += 64)
                acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512((const void *)(p + a * stride + i)),
                                          _mm512_loadu_si512((const void *)(r + i)));
            out[a * out_stride + j] = _mm512_reduce_add_epi32(acc);
        }
    }
}

__attribute__((target(AVX512_TARGET)))
static void u8_dot_avx512(const uint8_t *p, size_t rows, const int8_t *w, size_t stride,
                          size_t units, int32_t *out)
{
    /* cache blocking: 32 units' weights (32 x stride bytes) stay in L1
     * while every row of the chunk passes by */
    for (size_t j = 0; j < units; j += 32)
        for (size_t r = 0; r < rows; r += 4)
            u8_dot_avx512_block(p + r * stride, rows - r < 4 ? rows - r : 4, w + j * stride,
                                stride, units - j < 32 ? units - j : 32, out + r * units + j,
                                units);
}

__attribute__((target(AVX512_TARGET)))
static void compare_bits_avx512(const int32_t *s, const int32_t *t, size_t n, int le,
                                uint64_t *bits)
{
    for (size_t w = 0; w * 64 < n; w++) {
        uint64_t word = 0;
        for (size_t k = 0; k < 4; k++) {
            size_t base = 64 * w + 16 * k;
            if (base >= n)
                break;
            size_t cnt = n - base < 16 ? n - base : 16;
            __mmask16 valid = (__mmask16)(cnt == 16 ? 0xffffu : (1u << cnt) - 1u);
            __m512i a = _mm512_maskz_loadu_epi32(valid, s + base);
            __m512i b = _mm512_maskz_loadu_epi32(valid, t + base);
            __mmask16 m = le ? _mm512_mask_cmple_epi32_mask(valid, a, b)
                             : _mm512_mask_cmpge_epi32_mask(valid, a, b);
            word |= (uint64_t)m << (16 * k);
        }
        bits[w] = word;
    }
}

static const packed_kernels avx512 = {HTNN_KERNEL_AVX512, "avx512", xor_popcount_avx512,
                                      u8_dot_avx512, compare_bits_avx512};

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
