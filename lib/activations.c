/* Unit activations: sign, step, qrelu(bits), relu, identity (ALGORITHM.md).
 * SPDX-License-Identifier: MIT */
#include "activations.h"
#include "simd.h"

int activation_valid(int act, int bits)
{
    switch (act) {
    case HTNN_ACT_IDENTITY:
    case HTNN_ACT_SIGN:
    case HTNN_ACT_STEP:
    case HTNN_ACT_RELU: return 1;
    case HTNN_ACT_QRELU: return bits >= 1 && bits <= 8;
    }
    return 0;
}

int activation_is_hard(int act)
{
    return act == HTNN_ACT_SIGN || act == HTNN_ACT_STEP || act == HTNN_ACT_QRELU;
}

/* k = 2^bits levels: count thresholds j/(k-2), j = 0..k-2, strictly
 * exceeded, divided by k-1.  With one bit (k = 2) the single threshold is
 * 0 and qrelu is the step function. */
static float qrelu(int bits, float z)
{
    int k = 1 << bits;
    if (k == 2)
        return z > 0.0f ? 1.0f : 0.0f;
    int count = 0;
    for (int j = 0; j <= k - 2; j++)
        count += z > (float)j / (float)(k - 2);
    return (float)count / (float)(k - 1);
}

float activation_apply(int act, int bits, float z)
{
    switch (act) {
    case HTNN_ACT_SIGN: return z > 0.0f ? 1.0f : -1.0f;
    case HTNN_ACT_STEP: return z > 0.0f ? 1.0f : 0.0f;
    case HTNN_ACT_QRELU: return qrelu(bits, z);
    case HTNN_ACT_RELU: return z > 0.0f ? z : 0.0f;
    default: return z;
    }
}

HTNN_CLONES
static void add_bias(float *z, const float *bias, size_t m, size_t n)
{
    for (size_t i = 0; i < m; i++) {
        float *row = z + i * n;
        for (size_t j = 0; j < n; j++)
            row[j] += bias[j];
    }
}

HTNN_CLONES
static void forward(int act, int bits, float *z, const float *bias, float *h, size_t m,
                    size_t n)
{
    size_t total = m * n;
    if (bias)
        add_bias(z, bias, m, n);
    /* Specialised loops for the common cases so they vectorise. */
    switch (act) {
    case HTNN_ACT_SIGN:
        for (size_t i = 0; i < total; i++)
            h[i] = z[i] > 0.0f ? 1.0f : -1.0f;
        return;
    case HTNN_ACT_STEP:
        for (size_t i = 0; i < total; i++)
            h[i] = z[i] > 0.0f ? 1.0f : 0.0f;
        return;
    case HTNN_ACT_RELU:
        for (size_t i = 0; i < total; i++)
            h[i] = z[i] > 0.0f ? z[i] : 0.0f;
        return;
    default:
        for (size_t i = 0; i < total; i++)
            h[i] = activation_apply(act, bits, z[i]);
    }
}

void activation_forward(int act, int bits, float *z, const float *bias,
                        float *h, size_t m, size_t n)
{
    forward(act, bits, z, bias, h, m, n);
}

