/* Internal: the deterministic RNG each net owns (xoshiro256**, seeded by
 * splitmix64).  Same seed -> same stream on every platform.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_RNG_H
#define HTNN_LIB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
size_t rng_below(rng *r, size_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(rng *r, size_t *idx, size_t n);

#endif
