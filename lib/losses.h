/* Internal: per-layer losses L(z, t) of a hard-threshold unit towards a
 * target t in {-1, 0, +1} and their derivatives (ALGORITHM.md).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_LOSSES_H
#define HTNN_LIB_LOSSES_H

#include <stddef.h>

#include "htnn/common.h"

int loss_valid(int loss);

/* L(z, t) and dL/dz for a sign unit (u = z t). */
float loss_value(int loss, float z, float t);
float loss_grad(int loss, float z, float t);

/* qrelu units are scored at 2z - 1 (one hinge centred mid-range); every
 * other activation at z.  Returns the unit's loss input. */
float loss_input(int act, float z);

/* dz[i] = w_i * dL/dz(loss_input(z[i]), t[i]) over n entries, where w_i is
 * w[i], or 1 where w[i] != 0 when unit_weights is set. */
void loss_grad_weighted(int loss, int act, int unit_weights, const float *z,
                        const float *t, const float *w, float *dz, size_t n);

/* sum_i w_i * L(loss_input(z[i]), t[i]) with w_i as above. */
double loss_sum_weighted(int loss, int act, int unit_weights, const float *z,
                         const float *t, const float *w, size_t n);

#endif
