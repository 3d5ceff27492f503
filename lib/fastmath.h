/* Internal: branch-free exp for the elementwise passes, so that compilers
 * vectorise them (libm's expf/tanhf are calls and stop vectorisation).
 * Relative error below 2e-7 on the range used.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_FASTMATH_H
#define HTNN_LIB_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x in [-87, 0]; smaller x is clamped (result ~1e-38). */
static inline float fast_exp_neg(float x)
{
    const float log2e = 1.44269504f;
    const float ln2_hi = 0.693145752f, ln2_lo = 1.42860677e-6f;
    x = x < -87.0f ? -87.0f : x;
    float kf = x * log2e - 0.5f;
    int32_t k = (int32_t)kf; /* truncation of a negative value: ceil */
    kf = (float)k;
    /* round to nearest: kf in {floor, ceil} of x*log2e, |r| <= ln2 */
    float r = x - kf * ln2_hi - kf * ln2_lo;
    /* Taylor polynomial of degree 7 on |r| < 0.7: error < 2e-7 relative */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f +
              r * (1.0f / 120.0f + r * (1.0f / 720.0f + r * (1.0f / 5040.0f)))))));
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* 1 - tanh(z)^2 = 4e / (1 + e)^2 with e = exp(-2|z|): no cancellation. */
static inline float sech2(float z)
{
    float a = z < 0.0f ? -z : z;
    float e = fast_exp_neg(-2.0f * a);
    float d = 1.0f + e;
    return 4.0f * e / (d * d);
}

/* tanh(z) = sign(z) (1 - e) / (1 + e) with e = exp(-2|z|). */
static inline float fast_tanh(float z)
{
    float a = z < 0.0f ? -z : z;
    float e = fast_exp_neg(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return z < 0.0f ? -t : t;
}

#endif
