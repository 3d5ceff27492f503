/* No allocation inside the training loop: this program interposes malloc,
 * calloc and realloc (the library's calls resolve to these definitions)
 * and counts them between the first and the last batch of a fit with
 * validation data, across repeated htnn_net_train_batch calls, and across
 * packed predictions on 2 threads.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>

#include <htnn/htnn.h>

/* AddressSanitizer owns malloc: the counting hooks are left out there and
 * the tests skip (the plain builds run them). */
#if defined(__SANITIZE_ADDRESS__)
#define HOOKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOKS 0
#endif
#endif
#ifndef HOOKS
#define HOOKS 1
#endif

#if HOOKS
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static size_t allocations;

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);

void *malloc(size_t n)
{
    allocations++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    allocations++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    allocations++;
    return __libc_realloc(p, n);
}
#else
static size_t allocations;
#endif

typedef struct window {
    size_t at_first, at_last;
} window;

static int watch(const htnn_progress *p, void *user)
{
    window *w = user;
    if (p->epoch == 0 && p->batch == 0)
        w->at_first = allocations;
    w->at_last = allocations;
    return 0;
}

enum { N = 600, W = 20 };

static void make_data(float *x, int32_t *y)
{
    srand(2);
    for (int i = 0; i < N * W; i++)
        x[i] = (float)rand() / (float)RAND_MAX;
    for (int i = 0; i < N; i++)
        y[i] = (int32_t)(i % 4);
}

/* threads >= 2 and wide layers: the step runs split on the net's own
 * threads (lib/train_mt.c). */
static htnn_net *make_net_on(int threads, size_t units)
{
    htnn_net *net = NULL;
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.threads = threads;
    assert_int_equal(htnn_net_create(W, &no, &net), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = units;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 4;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    return net;
}

static htnn_net *make_net(void) { return make_net_on(0, 32); }

/* val: validate each epoch too.  Not with BLAS threads: OpenBLAS's
 * multi-threaded sgemm mallocs its own buffers on every call, and the
 * hooks count the whole process. */
static void fit_allocates_nothing_per_batch(htnn_net *net, int val)
{
    static float x[N * W];
    static int32_t y[N];
    make_data(x, y);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    window win = {0, 0};
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch_size = 64; /* the last batch of an epoch is smaller */
    fo.progress = watch;
    fo.progress_user = &win;
    fo.val_x = x;
    fo.val_labels = y;
    fo.val_count = val ? 300 : 0;
    assert_int_equal(htnn_net_fit(net, opt, NULL, x, y, N, &fo, NULL), HTNN_OK);
    assert_true(win.at_last > 0);
    assert_int_equal(win.at_last - win.at_first, 0);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

static void test_fit_allocates_nothing_per_batch(void **state)
{
    (void)state;
    if (!HOOKS)
        skip();
    fit_allocates_nothing_per_batch(make_net(), 1);
}

static void test_threaded_fit_allocates_nothing_per_batch(void **state)
{
    (void)state;
    if (!HOOKS)
        skip();
    fit_allocates_nothing_per_batch(make_net_on(2, 256), 0);
}

static void test_train_batch_allocates_once(void **state)
{
    (void)state;
    if (!HOOKS)
        skip();
    static float x[N * W];
    static int32_t y[N];
    make_data(x, y);
    size_t at_start = allocations;
    htnn_net *net = make_net();
    assert_true(allocations > at_start); /* the library's calls are counted */
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    assert_int_equal(htnn_net_train_batch(net, opt, NULL, x, y, 100, NULL), HTNN_OK);
    size_t before = allocations;
    for (int b = 0; b < 5; b++)
        assert_int_equal(htnn_net_train_batch(net, opt, NULL, x + b * 100 * W, y + b * 100,
                                              100, NULL), HTNN_OK);
    int32_t cls[100];
    assert_int_equal(htnn_net_predict(net, x, 100, cls), HTNN_OK);
    assert_int_equal(allocations - before, 0);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
}

/* Packed prediction on 2 threads (helpers, per-thread scratch and an
 * sgemm last layer) allocates nothing: htnn_packed_set_threads did. */
static void test_packed_threads_predict_allocates_nothing(void **state)
{
    (void)state;
    if (!HOOKS)
        skip();
    static float x[N * W];
    static int32_t y[N];
    static float z[N * 4];
    make_data(x, y);
    htnn_net *net = make_net();
    htnn_packed *p = NULL;
    assert_int_equal(htnn_net_pack(net, &p), HTNN_OK);
    assert_int_equal(htnn_packed_set_threads(p, 2), HTNN_OK);
    assert_int_equal(htnn_packed_predict(p, x, N, y), HTNN_OK); /* BLAS warms up */
    size_t before = allocations;
    for (int r = 0; r < 3; r++) {
        assert_int_equal(htnn_packed_predict(p, x, N, y), HTNN_OK);
        assert_int_equal(htnn_packed_predict_logits(p, x, N, z), HTNN_OK);
        assert_int_equal(htnn_packed_predict(p, x, 1, y), HTNN_OK);
    }
    assert_int_equal(allocations - before, 0);
    htnn_packed_free(p);
    htnn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_allocates_nothing_per_batch),
        cmocka_unit_test(test_train_batch_allocates_once),
        cmocka_unit_test(test_threaded_fit_allocates_nothing_per_batch),
        cmocka_unit_test(test_packed_threads_predict_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
