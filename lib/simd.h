/* Internal: ISA variants of the hot elementwise loops.
 *
 * HTNN_CLONES makes the compiler build a function for baseline x86-64,
 * Haswell (AVX2 + FMA) and x86-64-v4 (AVX-512), and pick one once, when the
 * library is loaded, from the CPU's features (an ifunc resolver: no
 * mutable state of ours).  The code is compiled with -std=c11, so no
 * multiply-add is contracted into an FMA and every variant computes the
 * same bits.  Only static functions get clones: clang 14 cannot link
 * target_clones functions with external linkage under -fvisibility=hidden.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_SIMD_H
#define HTNN_LIB_SIMD_H

#include "htnn_config.h"

#if HTNN_HAVE_TARGET_CLONES
#define HTNN_CLONES \
    __attribute__((target_clones("default", "arch=haswell", "arch=x86-64-v4")))
#else
#define HTNN_CLONES
#endif

#endif
