/* Distinct nets may be used from different threads at once (API.md):
 * four threads each build, train and evaluate their own net on shared
 * read-only data (MLPs, and conv nets with pooling and batch norm that
 * share the conv workspace design), and every net ends bit-identical to the
 * same net trained alone.  Run under ThreadSanitizer in CI.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

enum { N = 400, W = 16, THREADS = 4, HIDDEN = 24 };

static float data_x[N * W];
static int32_t data_y[N];

typedef struct job {
    uint64_t seed;
    float weights[W * HIDDEN];
    double accuracy;
    htnn_status status;
} job;

/* The input as a 1 x 4 x 4 map: conv 3x3 (8 channels), max-pool 2, batch
 * norm with sign units. */
static htnn_status add_conv_block(htnn_net *net)
{
    htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
    htnn_maxpool2d_options p = HTNN_MAXPOOL2D_OPTIONS_INIT;
    htnn_batchnorm_options b = HTNN_BATCHNORM_OPTIONS_INIT;
    c.channels = 8;
    b.activation = HTNN_ACT_SIGN;
    htnn_status st = htnn_net_set_input_shape(net, 1, 4, 4);
    if (st == HTNN_OK)
        st = htnn_net_add_conv2d(net, &c, NULL);
    if (st == HTNN_OK)
        st = htnn_net_add_maxpool2d(net, &p, NULL);
    if (st == HTNN_OK)
        st = htnn_net_add_batchnorm(net, &b, NULL);
    return st;
}

static htnn_status train_one(job *j)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = j->seed;
    htnn_net *net = NULL;
    htnn_optimizer *opt = NULL;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 20;
    fo.batch_size = 50;
    htnn_status st = htnn_net_create(W, &no, &net);
    d.units = HIDDEN;
    if (st == HTNN_OK && j->seed % 2 == 0)
        st = add_conv_block(net);
    else if (st == HTNN_OK)
        st = htnn_net_add_dense(net, &d, NULL);
    d.units = 3;
    d.activation = HTNN_ACT_IDENTITY;
    if (st == HTNN_OK)
        st = htnn_net_add_dense(net, &d, NULL);
    if (st == HTNN_OK)
        st = htnn_optimizer_create(NULL, &opt);
    if (st == HTNN_OK)
        st = htnn_net_fit(net, opt, NULL, data_x, data_y, N, &fo, NULL);
    if (st == HTNN_OK)
        st = htnn_net_evaluate(net, data_x, data_y, N, NULL, &j->accuracy);
    htnn_layer_info info = HTNN_LAYER_INFO_INIT;
    if (st == HTNN_OK)
        st = htnn_layer_get_info(htnn_net_layer(net, 0), &info);
    if (st == HTNN_OK)
        st = htnn_layer_get_weights(htnn_net_layer(net, 0), j->weights, info.weight_count);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    return st;
}

static void *thread_main(void *arg)
{
    job *j = arg;
    j->status = train_one(j);
    return NULL;
}

static void test_nets_train_concurrently(void **state)
{
    (void)state;
    srand(9);
    for (int i = 0; i < N * W; i++)
        data_x[i] = (float)rand() / (float)RAND_MAX;
    for (int i = 0; i < N; i++)
        data_y[i] = data_x[i * W] + data_x[i * W + 1] > 1.0f ? 2 : (data_x[i * W + 2] > 0.5f);
    static job alone[THREADS], together[THREADS];
    for (int t = 0; t < THREADS; t++) {
        alone[t].seed = together[t].seed = (uint64_t)t + 1;
        assert_int_equal(train_one(&alone[t]), HTNN_OK);
    }
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, thread_main, &together[t]), 0);
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(tid[t], NULL), 0);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(together[t].status, HTNN_OK);
        assert_memory_equal(together[t].weights, alone[t].weights, sizeof alone[t].weights);
        assert_true(together[t].accuracy == alone[t].accuracy);
        assert_true(alone[t].accuracy > 0.6); /* it learned something */
    }
}

/* htnn_last_error is per thread: an error on one thread does not show on
 * another. */
static void *fail_on_thread(void *arg)
{
    htnn_net *net = NULL;
    (void)arg;
    htnn_net_create(0, NULL, &net);
    return NULL;
}

static void test_last_error_is_thread_local(void **state)
{
    (void)state;
    htnn_clear_error();
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, fail_on_thread, NULL), 0);
    assert_int_equal(pthread_join(tid, NULL), 0);
    assert_string_equal(htnn_last_error(), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nets_train_concurrently),
        cmocka_unit_test(test_last_error_is_thread_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
