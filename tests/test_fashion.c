/* A short real run: a sign MLP trained with FTPROP-MB on 10,000
 * Fashion-MNIST images must beat chance (10 %) by a wide margin on the
 * 10,000 test images.  Skipped when the dataset package is missing.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include <htnn/htnn.h>
#include "conv_nets.h"

static htnn_data *load(const char *split)
{
    const char *dir = getenv("HTNN_FASHION_MNIST_DIR");
    char img[512], lab[512];
    dir = dir ? dir : "/usr/share/datasets/fashion-mnist";
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    htnn_data *d = NULL;
    return htnn_data_load_idx(img, lab, HTNN_SCALE_UNIT, &d) == HTNN_OK ? d : NULL;
}

static void test_sign_mlp_beats_chance(void **state)
{
    (void)state;
    htnn_data *train = load("train"), *test = load("t10k");
    if (train == NULL || test == NULL) {
        htnn_data_free(train);
        skip();
    }
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.threads = 1;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(784, &no, &net), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 256;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 10;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 2;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, NULL, htnn_data_features(train),
                                  htnn_data_labels(train), 10000, &fo, &res), HTNN_OK);
    double acc = 0.0;
    assert_int_equal(htnn_net_evaluate(net, htnn_data_features(test), htnn_data_labels(test),
                                       htnn_data_count(test), NULL, &acc), HTNN_OK);
    printf("fashion-mnist subset: train acc %.4f, test acc %.4f\n", res.accuracy, acc);
    assert_true(acc > 0.75);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_data_free(train);
    htnn_data_free(test);
}

/* A small sign convnet (conv 5x5 8 -> pool 2 -> batch norm -> sign ->
 * dense 10) trained on 3,000 images, shaped from the IDX file's own
 * 1 x 28 x 28, must reach 70 % on 2,000 test images (chance: 10 %). */
static void test_sign_convnet_learns(void **state)
{
    (void)state;
    htnn_data *train = load("train"), *test = load("t10k");
    if (train == NULL || test == NULL) {
        htnn_data_free(train);
        skip();
    }
    size_t c, h, w;
    assert_int_equal(htnn_data_shape(train, &c, &h, &w), HTNN_OK);
    assert_true(c == 1 && h == 28 && w == 28);
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.threads = 1;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(784, &no, &net), HTNN_OK);
    assert_int_equal(htnn_net_set_input_shape(net, c, h, w), HTNN_OK);
    htnn_conv2d_options co = HTNN_CONV2D_OPTIONS_INIT;
    co.channels = 8, co.kernel_h = co.kernel_w = 5, co.padding = 2;
    add_conv_block_and_output(net, &co, 10);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    assert_int_equal(htnn_net_fit(net, opt, NULL, htnn_data_features(train),
                                  htnn_data_labels(train), 3000, &fo, NULL), HTNN_OK);
    double acc = 0.0;
    assert_int_equal(htnn_net_evaluate(net, htnn_data_features(test), htnn_data_labels(test),
                                       2000, NULL, &acc), HTNN_OK);
    printf("fashion-mnist convnet subset: test acc %.4f\n", acc);
    assert_true(acc > 0.70);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_data_free(train);
    htnn_data_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_mlp_beats_chance),
        cmocka_unit_test(test_sign_convnet_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
