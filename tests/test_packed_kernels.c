/* Each packed-inference kernel (portable, AVX2, AVX-512) against a plain
 * +-1 reference and against the portable kernel, on random shapes including
 * widths that are not multiples of 64, all-ones / all-minus-ones rows, and
 * garbage after the last word (masked tail loads must not read it).  A
 * kernel the CPU cannot run is reported and skipped.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htnn/packed.h"
#include "packed_kernels.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* mode 0 random, 1 all +1, 2 all -1 */
static void random_signs(int *v, size_t n, int mode)
{
    for (size_t i = 0; i < n; i++)
        v[i] = mode == 1 ? 1 : mode == 2 ? -1 : (next_u64() & 1) ? 1 : -1;
}

static void pack_signs(const int *v, size_t n, uint64_t *words)
{
    memset(words, 0, (n + 63) / 64 * sizeof *words);
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0)
            words[i / 64] |= (uint64_t)1 << (i % 64);
}

static const size_t widths[] = {1, 2, 63, 64, 65, 127, 128, 129, 200, 511, 512, 513, 784, 1000, 1024, 3000};
static const size_t unit_counts[] = {1, 2, 3, 4, 5, 7, 17};

static void check_xor_popcount(int id)
{
    const packed_kernels *k = packed_kernels_get(id), *ref = packed_kernels_get(HTNN_KERNEL_PORTABLE);
    if (k == NULL) {
        printf("kernel %s: not available on this CPU, skipped\n", htnn_packed_kernel_name(id));
        return;
    }
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t ui = 0; ui < sizeof unit_counts / sizeof *unit_counts; ui++)
            for (int mode = 0; mode < 3; mode++) {
                size_t n = widths[wi], units = unit_counts[ui], words = (n + 63) / 64;
                int *a = malloc(n * sizeof *a), *w = malloc(n * units * sizeof *w);
                /* 16 guard words of garbage after a and after the last row */
                uint64_t *pa = malloc((words + 16) * sizeof *pa);
                uint64_t *pw = malloc((words * units + 16) * sizeof *pw);
                int32_t *out = malloc(units * sizeof *out), *out_ref = malloc(units * sizeof *out);
                random_signs(a, n, mode == 0 ? 0 : 1);
                random_signs(w, n * units, mode);
                pack_signs(a, n, pa);
                for (size_t j = 0; j < units; j++)
                    pack_signs(w + j * n, n, pw + j * words);
                for (size_t g = 0; g < 16; g++) {
                    pa[words + g] = next_u64();
                    pw[words * units + g] = next_u64();
                }
                k->xor_popcount(pa, 1, pw, words, units, out);
                ref->xor_popcount(pa, 1, pw, words, units, out_ref);
                /* several rows: row r is a with its first r signs flipped */
                size_t rows = 1 + (size_t)(next_u64() % 5);
                uint64_t *pr = malloc((rows * words + 16) * sizeof *pr);
                int32_t *outr = malloc(rows * units * sizeof *outr);
                int *ar = malloc(n * sizeof *ar);
                for (size_t r = 0; r < rows; r++) {
                    for (size_t i = 0; i < n; i++)
                        ar[i] = i < r ? -a[i] : a[i];
                    pack_signs(ar, n, pr + r * words);
                }
                for (size_t g = 0; g < 16; g++)
                    pr[rows * words + g] = next_u64();
                k->xor_popcount(pr, rows, pw, words, units, outr);
                for (size_t r = 0; r < rows; r++)
                    for (size_t j = 0; j < units; j++) {
                        int32_t dot = 0;
                        for (size_t i = 0; i < n; i++)
                            dot += (i < r ? -a[i] : a[i]) * w[j * n + i];
                        assert_int_equal((int32_t)n - 2 * outr[r * units + j], dot);
                    }
                free(pr), free(outr), free(ar);
                for (size_t j = 0; j < units; j++) {
                    int32_t dot = 0;
                    for (size_t i = 0; i < n; i++)
                        dot += a[i] * w[j * n + i];
                    assert_int_equal(out[j], out_ref[j]);
                    assert_int_equal((int32_t)n - 2 * out[j], dot);
                    if (mode == 1)
                        assert_int_equal(dot, (int32_t)n);
                    if (mode == 2)
                        assert_int_equal(dot, -(int32_t)n);
                }
                free(a), free(w), free(pa), free(pw), free(out), free(out_ref);
            }
}

static void check_u8_dot(int id)
{
    const packed_kernels *k = packed_kernels_get(id), *ref = packed_kernels_get(HTNN_KERNEL_PORTABLE);
    if (k == NULL) {
        printf("kernel %s: not available on this CPU, skipped\n", htnn_packed_kernel_name(id));
        return;
    }
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t ui = 0; ui < sizeof unit_counts / sizeof *unit_counts; ui++)
            for (int mode = 0; mode < 3; mode++) {
                size_t n = widths[wi], units = unit_counts[ui];
                size_t stride = (n + PACKED_U8_ALIGN - 1) / PACKED_U8_ALIGN * PACKED_U8_ALIGN;
                size_t rows = 1 + (size_t)(next_u64() % 6);
                uint8_t *p = calloc(stride * (rows + PACKED_U8_ROWS), 1);
                int8_t *w = calloc(stride * units, 1);
                int *s = malloc(n * units * sizeof *s);
                int32_t *out = malloc(rows * units * sizeof *out);
                int32_t *out_ref = malloc(rows * units * sizeof *out);
                random_signs(s, n * units, mode);
                for (size_t r = 0; r < rows; r++)
                    for (size_t i = 0; i < n; i++)
                        p[r * stride + i] = mode ? 255 : (uint8_t)next_u64();
                for (size_t j = 0; j < units; j++)
                    for (size_t i = 0; i < n; i++)
                        w[j * stride + i] = (int8_t)s[j * n + i];
                k->u8_dot(p, rows, w, stride, units, out);
                ref->u8_dot(p, rows, w, stride, units, out_ref);
                for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < units; j++) {
                    int32_t dot = 0;
                    for (size_t i = 0; i < n; i++)
                        dot += (int32_t)p[r * stride + i] * s[j * n + i];
                    assert_int_equal(out[r * units + j], dot);
                    assert_int_equal(out_ref[r * units + j], dot);
                    if (mode == 1)
                        assert_int_equal(dot, 255 * (int32_t)n);
                    if (mode == 2)
                        assert_int_equal(dot, -255 * (int32_t)n);
                }
                free(p), free(w), free(s), free(out), free(out_ref);
            }
}

/* Thresholds to bits: every bit as the definition says, padding bits 0. */
static void check_compare_bits(int id)
{
    const packed_kernels *k = packed_kernels_get(id);
    if (k == NULL)
        return;
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (int le = 0; le <= 1; le++) {
            size_t n = widths[wi], words = (n + 63) / 64;
            int32_t *s = malloc(n * sizeof *s), *t = malloc(n * sizeof *t);
            uint64_t *bits = malloc((words + 1) * sizeof *bits);
            for (size_t i = 0; i < n; i++) {
                s[i] = (int32_t)(next_u64() % 2001) - 1000;
                /* equal values often, to test the boundary */
                t[i] = next_u64() % 3 == 0 ? s[i] : (int32_t)(next_u64() % 2001) - 1000;
            }
            bits[words] = 0x5a5a5a5a5a5a5a5au; /* must stay untouched */
            k->compare_bits(s, t, n, le, bits);
            for (size_t i = 0; i < words * 64; i++) {
                int bit = (int)((bits[i / 64] >> (i % 64)) & 1u);
                int want = i < n && (le ? s[i] <= t[i] : s[i] >= t[i]);
                assert_int_equal(bit, want);
            }
            assert_true(bits[words] == 0x5a5a5a5a5a5a5a5au);
            free(s), free(t), free(bits);
        }
}

static void test_portable(void **state)
{
    (void)state;
    check_xor_popcount(HTNN_KERNEL_PORTABLE);
    check_u8_dot(HTNN_KERNEL_PORTABLE);
    check_compare_bits(HTNN_KERNEL_PORTABLE);
}

static void test_avx2(void **state)
{
    (void)state;
    check_xor_popcount(HTNN_KERNEL_AVX2);
    check_u8_dot(HTNN_KERNEL_AVX2);
    check_compare_bits(HTNN_KERNEL_AVX2);
}

static void test_avx512(void **state)
{
    (void)state;
    check_xor_popcount(HTNN_KERNEL_AVX512);
    check_u8_dot(HTNN_KERNEL_AVX512);
    check_compare_bits(HTNN_KERNEL_AVX512);
}

static void test_table(void **state)
{
    (void)state;
    assert_non_null(packed_kernels_get(HTNN_KERNEL_PORTABLE));
    assert_null(packed_kernels_get(HTNN_KERNEL_AUTO));
    assert_null(packed_kernels_get(99));
    int best = packed_kernels_best();
    assert_non_null(packed_kernels_get(best));
    printf("best kernel on this CPU: %s\n", htnn_packed_kernel_name(best));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_portable),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
