/* Internal: unit activations, pure functions over arrays.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_ACTIVATIONS_H
#define HTNN_LIB_ACTIVATIONS_H

#include <stddef.h>

#include "htnn/common.h"

/* 1 if `act` (with `bits` for qrelu) is a valid activation. */
int activation_valid(int act, int bits);
/* 1 for the hard-threshold activations (sign, step, qrelu). */
int activation_is_hard(int act);
/* Output of one unit. */
float activation_apply(int act, int bits, float z);
/* Adds bias[j] to each row of z (m x n, may be NULL) and writes
 * h = g(z); z and h may not alias. */
void activation_forward(int act, int bits, float *z, const float *bias,
                        float *h, size_t m, size_t n);

#endif
