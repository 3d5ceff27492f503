/* htnn_packed_set_threads: logits and classes of packed nets are bit for
 * bit the same on 1, 2, 3 and 16 threads, for binary and float-weight
 * layers (sgemm), 8-bit, real and mixed inputs, and counts around the
 * block (64) and chunk (256) sizes; the setting is clamped, refused when
 * negative, changed back and forth, freed without a prediction, and not
 * carried by saved files; OpenBLAS's thread count is restored after a
 * parallel call.  Also run under ThreadSanitizer (.ci/run).
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

#include "packed_nets.h"

#define MAX_COUNT 1000
#define WIDTH 100
#define CLASSES 10

static const size_t counts[] = {1, 7, 63, 64, 65, 129, 255, 256, 257, 1000};
static const int thread_counts[] = {2, 3, HTNN_PACKED_MAX_THREADS};

/* Inputs whose kind changes every 50 rows (p/256, p/255, real), so that
 * blocks of 64 rows mix them: a block takes the 8-bit path only when all
 * its rows allow it, whatever the slicing. */
static float *mixed_inputs(size_t count, size_t width)
{
    float *x = malloc(count * width * sizeof *x);
    assert_non_null(x);
    for (size_t r = 0; r < count; r += 50) {
        size_t n = count - r < 50 ? count - r : 50;
        float *part = make_inputs(n, width, (int)(r / 50 % 3));
        memcpy(x + r * width, part, n * width * sizeof *x);
        free(part);
    }
    return x;
}

typedef struct result {
    float *logits;
    int32_t *classes;
} result;

static result predict(htnn_packed *p, const float *x, size_t count)
{
    size_t out = htnn_packed_output_width(p);
    result r = {malloc(count * out * sizeof(float)), malloc(count * sizeof(int32_t))};
    assert_non_null(r.logits);
    assert_non_null(r.classes);
    assert_int_equal(htnn_packed_predict_logits(p, x, count, r.logits), HTNN_OK);
    assert_int_equal(htnn_packed_predict(p, x, count, r.classes), HTNN_OK);
    return r;
}

static void assert_same_result(result a, result b, size_t count, size_t out)
{
    assert_memory_equal(a.classes, b.classes, count * sizeof(int32_t));
    assert_memory_equal(a.logits, b.logits, count * out * sizeof(float));
}

static void result_free(result r)
{
    free(r.logits);
    free(r.classes);
}

/* Every count and thread count against 1 thread, with the kernel in use. */
static void assert_threads_agree(htnn_packed *p, const float *x)
{
    size_t out = htnn_packed_output_width(p);
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        assert_int_equal(htnn_packed_set_threads(p, 1), HTNN_OK);
        result ref = predict(p, x, counts[c]);
        for (size_t t = 0; t < sizeof thread_counts / sizeof *thread_counts; t++) {
            assert_int_equal(htnn_packed_set_threads(p, thread_counts[t]), HTNN_OK);
            result got = predict(p, x, counts[c]);
            assert_same_result(ref, got, counts[c], out);
            result_free(got);
        }
        result_free(ref);
    }
}

/* Binary and float layers in every position: the integer paths, the u8
 * first layer, and sgemm on real inputs, on +-1 activations and in the
 * last layer; a one-unit hard-threshold output. */
static void test_threads_give_identical_results(void **state)
{
    (void)state;
    static const size_t widths[] = {WIDTH, 70, 130, CLASSES};
    static const int modes[][3] = {
        {HTNN_BINARY_SCALED, HTNN_BINARY_SCALED, HTNN_BINARY_SCALED},
        {HTNN_BINARY_SCALED, HTNN_BINARY_SIGN, HTNN_BINARY_NONE},
        {HTNN_BINARY_NONE, HTNN_BINARY_SCALED, HTNN_BINARY_NONE},
        {HTNN_BINARY_NONE, HTNN_BINARY_NONE, HTNN_BINARY_NONE}};
    float *x[4] = {make_inputs(MAX_COUNT, WIDTH, 0), make_inputs(MAX_COUNT, WIDTH, 1),
                   make_inputs(MAX_COUNT, WIDTH, 2), mixed_inputs(MAX_COUNT, WIDTH)};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        htnn_net *net = make_net(widths, 3, modes[m], 0, 1, 40 + m);
        htnn_packed *p = NULL;
        assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
        for (size_t k = 0; k < 4; k++)
            assert_threads_agree(p, x[k]);
        /* the portable kernels take the same slices */
        assert_int_equal(htnn_packed_set_kernel(p, HTNN_KERNEL_PORTABLE), HTNN_OK);
        assert_threads_agree(p, x[3]);
        htnn_packed_free(p);
        htnn_net_free(net);
    }
    static const size_t hard_widths[] = {WIDTH, 65, 1};
    static const int hard_modes[] = {HTNN_BINARY_SCALED, HTNN_BINARY_NONE};
    htnn_net *net = make_net(hard_widths, 2, hard_modes, 1, 1, 9);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    assert_threads_agree(p, x[2]);
    htnn_packed_free(p);
    htnn_net_free(net);
    for (size_t k = 0; k < 4; k++)
        free(x[k]);
}

/* What the threads rely on: a call cut at a multiple of 64 rows gives the
 * rows the whole call gives, float layers included (sgemm per block). */
static void test_block_aligned_calls_agree(void **state)
{
    (void)state;
    static const size_t widths[] = {WIDTH, 90, CLASSES};
    static const int modes[] = {HTNN_BINARY_NONE, HTNN_BINARY_NONE};
    htnn_net *net = make_net(widths, 2, modes, 0, 1, 3);
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    float *x = mixed_inputs(MAX_COUNT, WIDTH);
    result whole = predict(p, x, MAX_COUNT);
    for (size_t cut = 64; cut < MAX_COUNT; cut += 192) {
        result a = predict(p, x, cut), b = predict(p, x + cut * WIDTH, MAX_COUNT - cut);
        assert_memory_equal(whole.classes, a.classes, cut * sizeof(int32_t));
        assert_memory_equal(whole.logits, a.logits, cut * CLASSES * sizeof(float));
        assert_memory_equal(whole.classes + cut, b.classes, (MAX_COUNT - cut) * sizeof(int32_t));
        assert_memory_equal(whole.logits + cut * CLASSES, b.logits,
                            (MAX_COUNT - cut) * CLASSES * sizeof(float));
        result_free(a);
        result_free(b);
    }
    result_free(whole);
    free(x);
    htnn_packed_free(p);
    htnn_net_free(net);
}

static htnn_packed *small_packed(htnn_net **net)
{
    static const size_t widths[] = {WIDTH, 33, CLASSES};
    static const int modes[] = {HTNN_BINARY_SCALED, HTNN_BINARY_NONE};
    htnn_packed *p = NULL;
    *net = make_net(widths, 2, modes, 0, 1, 5);
    assert_int_equal(htnn_net_pack(*net, &p), HTNN_OK);
    return p;
}

static void test_bad_settings(void **state)
{
    (void)state;
    htnn_net *net;
    htnn_packed *p = small_packed(&net);
    assert_int_equal(htnn_packed_threads(NULL), -1);
    assert_int_equal(htnn_packed_set_threads(NULL, 2), HTNN_EINVAL);
    assert_int_equal(htnn_packed_threads(p), 1);
    assert_int_equal(htnn_packed_set_threads(p, 3), HTNN_OK);
    assert_int_equal(htnn_packed_set_threads(p, -1), HTNN_EINVAL);
    assert_non_null(strstr(htnn_last_error(), "htnn_packed_set_threads"));
    assert_int_equal(htnn_packed_threads(p), 3); /* unchanged */
    assert_int_equal(htnn_packed_set_threads(p, 0), HTNN_OK);
    assert_int_equal(htnn_packed_threads(p), 1);
    assert_int_equal(htnn_packed_set_threads(p, 1000), HTNN_OK);
    assert_int_equal(htnn_packed_threads(p), HTNN_PACKED_MAX_THREADS);
    /* the prediction checks come first, whatever the threads */
    float x[3 * WIDTH] = {0};
    int32_t c[3];
    assert_int_equal(htnn_packed_predict(p, x, 0, c), HTNN_EINVAL);
    assert_int_equal(htnn_packed_predict(p, x, 3, NULL), HTNN_EINVAL);
    x[WIDTH + 1] = NAN;
    assert_int_equal(htnn_packed_predict(p, x, 3, c), HTNN_ENUMERIC);
    htnn_packed_free(p);
    htnn_net_free(net);
}

/* Threads set and freed without a prediction; back and forth with
 * predictions in between; packing and loading start at 1 thread. */
static void test_lifecycle(void **state)
{
    (void)state;
    htnn_net *net;
    htnn_packed *p = small_packed(&net);
    assert_int_equal(htnn_packed_set_threads(p, 4), HTNN_OK);
    htnn_packed_free(p);
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    assert_int_equal(htnn_packed_threads(p), 1);
    float *x = mixed_inputs(300, WIDTH);
    result ref = predict(p, x, 300);
    static const int steps[] = {2, 5, 1, 3, 2, 2, 16, 4, 1, 2};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        assert_int_equal(htnn_packed_set_threads(p, steps[i]), HTNN_OK);
        assert_int_equal(htnn_packed_threads(p), steps[i]);
        result got = predict(p, x, 300);
        assert_same_result(ref, got, 300, CLASSES);
        result_free(got);
    }
    void *buf = NULL;
    size_t size = 0;
    htnn_packed *copy = NULL;
    assert_int_equal(htnn_packed_save_buffer(p, &buf, &size), HTNN_OK);
    assert_int_equal(htnn_packed_load_buffer(buf, size, &copy), HTNN_OK);
    assert_int_equal(htnn_packed_threads(copy), 1);
    htnn_free(buf);
    htnn_packed_free(copy);
    result_free(ref);
    free(x);
    htnn_packed_free(p);
    htnn_net_free(net);
}

/* A function of the BLAS the library loaded, or NULL (memcpy: ISO C has no
 * conversion from void * to a function pointer). */
static void lookup(const char *name, void *fn, size_t size)
{
    void *sym = dlsym(RTLD_DEFAULT, name);
    memset(fn, 0, size);
    if (sym != NULL)
        memcpy(fn, &sym, size);
}

/* The helpers run sgemm with OpenBLAS on one thread; the caller's setting
 * is back afterwards (skipped without OpenBLAS). */
static void test_blas_threads_restored(void **state)
{
    (void)state;
    int (*get)(void);
    void (*set)(int);
    lookup("openblas_get_num_threads", &get, sizeof get);
    lookup("openblas_set_num_threads", &set, sizeof set);
    if (get == NULL || set == NULL)
        skip();
    int before = get();
    set(2);
    htnn_net *net;
    htnn_packed *p = small_packed(&net);
    assert_int_equal(htnn_packed_set_threads(p, 2), HTNN_OK);
    float *x = make_inputs(500, WIDTH, 2);
    result r = predict(p, x, 500);
    assert_int_equal(get(), 2);
    result_free(r);
    free(x);
    htnn_packed_free(p);
    htnn_net_free(net);
    set(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_give_identical_results),
        cmocka_unit_test(test_block_aligned_calls_agree),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_blas_threads_restored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
