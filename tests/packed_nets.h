/* Shared by the packed-engine tests (test_packed.c, test_packed_threads.c):
 * a deterministic RNG, 8-bit and real inputs, and random sign MLPs.
 * CMocka's headers must come first.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_TESTS_PACKED_NETS_H
#define HTNN_TESTS_PACKED_NETS_H

#include <htnn/htnn.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 12345;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static float uniform(void) { return (float)(next_u64() >> 40) / (float)(1u << 24); }

/* Inputs: kind 0 = p/256, 1 = p/255 (8-bit pixels), 2 = arbitrary floats. */
static float *make_inputs(size_t count, size_t width, int kind)
{
    float *x = malloc(count * width * sizeof *x);
    for (size_t i = 0; i < count * width; i++) {
        unsigned p = (unsigned)(next_u64() % 256);
        x[i] = kind == 0 ? (float)p / 256.0f : kind == 1 ? (float)p / 255.0f
                                                          : 4.0f * uniform() - 2.0f;
    }
    return x;
}

/* A net widths[0] -> ... -> widths[n]; hidden layers sign, last identity
 * (softmax) or sign (hard threshold); binary[d] per layer. */
static htnn_net *make_net(const size_t *widths, size_t n, const int *binary, int hard,
                          int bias, uint64_t seed)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = seed;
    no.output = hard ? HTNN_OUTPUT_HARD_THRESHOLD : HTNN_OUTPUT_SOFTMAX;
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(widths[0], &no, &net), HTNN_OK);
    for (size_t d = 0; d < n; d++) {
        htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
        o.units = widths[d + 1];
        o.activation = d + 1 < n || hard ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY;
        o.binary_weights = binary[d];
        o.bias = bias;
        assert_int_equal(htnn_net_add_dense(net, &o, NULL), HTNN_OK);
    }
    return net;
}

#endif
