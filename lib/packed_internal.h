/* Internal: the packed net shared by packed.c (building, predicting) and
 * packed_io.c (the packed file format).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_PACKED_INTERNAL_H
#define HTNN_LIB_PACKED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/packed.h"
#include "packed_kernels.h"
#include "workers.h"

/* Rows per forward chunk; the scratch buffers hold this many examples. */
#define PACKED_CHUNK 256
/* Rows per block: thread slices are whole blocks, and the first layer's
 * 8-bit test and every sgemm call cover one block, aligned to the start of
 * the call.  A row's result then never depends on the slicing: sgemm's
 * summation order depends on its row count with OpenBLAS (doc/binary.md,
 * section 3), and one non-8-bit row sends its whole block to the float
 * path. */
#define PACKED_BLOCK 64
/* Widest layer (same limit as the net's, so sgemm sizes fit an int). */
#define PACKED_MAX_WIDTH ((size_t)1 << 24)

typedef struct packed_layer {
    size_t in, out, words;  /* widths; words = 64-bit words per input row */
    int activation;         /* htnn_activation (sign for every hidden layer) */
    int binary;             /* htnn_binary_weights */
    int has_bias;
    /* parameters, as stored in a packed file */
    uint64_t *wbits;        /* binary: out x words, bit 1 = +1, padding 0 */
    float *alpha;           /* binary: out (1 for HTNN_BINARY_SIGN) */
    float *w;               /* float weights (out x in); for a binary first
                               layer the +-1 weights as floats (derived) */
    float *bias;            /* out (zeros without bias) */
    /* derived by packed_finish */
    int32_t *thr;           /* binary hidden layer on bits: S >= T folded to
                               popcount(a XOR w) <= thr = floor((K - T) / 2) */
    int8_t *w8;             /* binary first hidden layer: +-1 int8 rows */
    size_t stride8;         /* bytes per w8 row (multiple of PACKED_U8_ALIGN);
                               0: no u8 path (255 * in would overflow int32) */
    int32_t *thr_q[2];      /* +1 iff S >= thr_q for u8 inputs p/256, p/255 */
} packed_layer;

/* Scratch for PACKED_CHUNK rows: one per thread. */
typedef struct packed_scratch {
    uint8_t *q;             /* quantised inputs, chunk x stride8 of layer 0 */
    uint64_t *bits[2];      /* activations, chunk x max words */
    float *fx;              /* +-1 activations as floats, chunk x max in */
    float *fz;              /* pre-activations, chunk x max out */
    int32_t *acc;           /* integer sums, chunk x max out */
} packed_scratch;

struct htnn_packed {
    size_t input_width, n_layers;
    int output;             /* htnn_output */
    int kernel;             /* htnn_packed_kernel in use */
    const packed_kernels *k;
    packed_layer *layers;
    int threads;            /* 1 .. HTNN_PACKED_MAX_THREADS */
    workers *pool;          /* threads - 1 helpers; NULL for 1 thread */
    /* [0] allocated by packed_finish, [1, threads) by set_threads */
    packed_scratch scratch[HTNN_PACKED_MAX_THREADS];
};

/* A packed net with n_layers zeroed layers (no arrays yet). */
htnn_status packed_new(size_t input_width, int output, size_t n_layers, htnn_packed **out);

/* Allocates a layer's parameter arrays (wbits + alpha, or w; and bias)
 * after in, out, binary and has_bias are set. */
htnn_status packed_layer_alloc(packed_layer *layer);

/* Checks the architecture (hidden layers sign, softmax >= 2 units:
 * HTNN_EUNSUPPORTED), derives thresholds and expanded weights, allocates
 * the scratch and picks the kernels (HTNN_FORCE_PORTABLE=1 forces
 * portable).  On failure the caller frees p. */
htnn_status packed_finish(htnn_packed *p);

#endif
