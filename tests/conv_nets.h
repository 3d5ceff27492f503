/* The small conv net several tests train: conv (as `co` says) -> max-pool
 * 2 -> batch norm -> sign -> dense output of `classes` logits.  Include
 * after <cmocka.h> and the htnn headers.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_TESTS_CONV_NETS_H
#define HTNN_TESTS_CONV_NETS_H

static void add_conv_block_and_output(htnn_net *net, const htnn_conv2d_options *co,
                                      size_t classes)
{
    assert_int_equal(htnn_net_add_conv2d(net, co, NULL), HTNN_OK);
    htnn_maxpool2d_options po = HTNN_MAXPOOL2D_OPTIONS_INIT;
    assert_int_equal(htnn_net_add_maxpool2d(net, &po, NULL), HTNN_OK);
    htnn_batchnorm_options bo = HTNN_BATCHNORM_OPTIONS_INIT;
    bo.activation = HTNN_ACT_SIGN;
    assert_int_equal(htnn_net_add_batchnorm(net, &bo, NULL), HTNN_OK);
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = classes, d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
}

#endif
