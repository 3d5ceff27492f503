/* Per-layer losses: soft hinge, saturated hinge, hinge, perceptron, linear.
 * SPDX-License-Identifier: MIT */
#include "losses.h"

#include <math.h>

#include "fastmath.h"
#include "simd.h"

int loss_valid(int loss)
{
    return loss >= HTNN_LOSS_SOFT_HINGE && loss <= HTNN_LOSS_LINEAR;
}

float loss_value(int loss, float z, float t)
{
    float u = z * t;
    switch (loss) {
    case HTNN_LOSS_SOFT_HINGE: return tanhf(-u) + 1.0f;
    case HTNN_LOSS_SATURATED_HINGE: return fminf(2.0f, fmaxf(0.0f, 1.0f - u));
    case HTNN_LOSS_HINGE: return fmaxf(0.0f, 1.0f - u);
    case HTNN_LOSS_PERCEPTRON: return fmaxf(0.0f, -u);
    case HTNN_LOSS_LINEAR: return -u;
    }
    return 0.0f;
}

/* Branch-free forms (selects, not jumps) so the array loops vectorise. */
HTNN_INLINE float grad_soft_hinge(float z, float t) { return -t * sech2(z); }
HTNN_INLINE float grad_saturated(float z, float t)
{
    float u = z * t;
    return (u > -1.0f && u < 1.0f) ? -t : 0.0f;
}
HTNN_INLINE float grad_hinge(float z, float t) { return z * t < 1.0f ? -t : 0.0f; }
HTNN_INLINE float grad_perceptron(float z, float t) { return z * t <= 0.0f ? -t : 0.0f; }

float loss_grad(int loss, float z, float t)
{
    switch (loss) {
    case HTNN_LOSS_SOFT_HINGE: return grad_soft_hinge(z, t);
    case HTNN_LOSS_SATURATED_HINGE: return grad_saturated(z, t);
    case HTNN_LOSS_HINGE: return grad_hinge(z, t);
    case HTNN_LOSS_PERCEPTRON: return grad_perceptron(z, t);
    case HTNN_LOSS_LINEAR: return -t;
    }
    return 0.0f;
}

float loss_input(int act, float z)
{
    return act == HTNN_ACT_QRELU ? 2.0f * z - 1.0f : z;
}

/* One loop per loss: the switch stays outside so each body vectorises.
 * The weight is keep * w + add where w != 0 (w itself, or 1 for unit
 * weights) and 0 elsewhere: arithmetic, not a branch on unit_weights,
 * which would stop GCC's vectoriser. */
#define LOSS_GRAD_LOOP(expr)                                                 \
    for (size_t i = 0; i < n; i++) {                                         \
        float zi = a * z[i] + c, ti = t[i];                                  \
        float wi = w[i] != 0.0f ? keep * w[i] + add : 0.0f;                  \
        (void)zi;                                                            \
        dz[i] = wi * (expr);                                                 \
    }

/* Clones stay static: clang 14 cannot link target_clones functions with
 * external linkage under -fvisibility=hidden. */
HTNN_CLONES
static void grad_weighted(int loss, int act, int unit_weights, const float *z,
                          const float *t, const float *w, float *dz, size_t n)
{
    float a = act == HTNN_ACT_QRELU ? 2.0f : 1.0f;
    float c = act == HTNN_ACT_QRELU ? -1.0f : 0.0f;
    float keep = unit_weights ? 0.0f : 1.0f, add = unit_weights ? 1.0f : 0.0f;
    switch (loss) {
    case HTNN_LOSS_SOFT_HINGE: LOSS_GRAD_LOOP(grad_soft_hinge(zi, ti)); break;
    case HTNN_LOSS_SATURATED_HINGE: LOSS_GRAD_LOOP(grad_saturated(zi, ti)); break;
    case HTNN_LOSS_HINGE: LOSS_GRAD_LOOP(grad_hinge(zi, ti)); break;
    case HTNN_LOSS_PERCEPTRON: LOSS_GRAD_LOOP(grad_perceptron(zi, ti)); break;
    default: LOSS_GRAD_LOOP(-ti); break;
    }
}

void loss_grad_weighted(int loss, int act, int unit_weights, const float *z,
                        const float *t, const float *w, float *dz, size_t n)
{
    grad_weighted(loss, act, unit_weights, z, t, w, dz, n);
}

double loss_sum_weighted(int loss, int act, int unit_weights, const float *z,
                         const float *t, const float *w, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float wi = unit_weights ? (w[i] != 0.0f ? 1.0f : 0.0f) : w[i];
        if (wi != 0.0f)
            sum += (double)wi * loss_value(loss, loss_input(act, z[i]), t[i]);
    }
    return sum;
}
