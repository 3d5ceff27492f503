/* Internal: the net, its layers and the per-batch scratch arena.
 * The library's own files see these structs; callers see opaque handles.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_NET_INTERNAL_H
#define HTNN_LIB_NET_INTERNAL_H

#include "htnn/heuristic.h"
#include "htnn/net.h"
#include "htnn/reduce.h"
#include "rng.h"

/* A feature map's shape: channels x height x width, stored NHWC (channels
 * fastest).  A dense layer's output is units x 1 x 1. */
typedef struct map_shape {
    size_t c, h, w;
} map_shape;

struct htnn_layer {
    htnn_net *net;     /* owning net */
    size_t index;      /* position in the net */
    int kind;          /* htnn_layer_kind */
    size_t in, out;    /* widths n[d-1], n[d] (flattened feature maps) */
    map_shape shape_in, shape_out;
    size_t kh, kw, stride, pad;  /* conv kernel / pool window; 0 for others */
    int activation, qrelu_bits, loss, weight_targets, has_bias;
    /* Parameters as a matrix of wrows x wcols (dense: out x in; conv:
     * channels x kh*kw*in_channels; batch norm: gamma as 1 x channels;
     * pool: none).  n_w = wrows * wcols; n_b values of b (dense: out; conv
     * and batch norm: channels; pool: 0). */
    size_t wrows, wcols, n_w, n_b;
    float *w;          /* n_w weights, row-major */
    float *b;          /* n_b biases (zeros when has_bias == 0) */
    float *gw, *gb;    /* gradients of the last batch, same shapes */
    /* batch norm: running statistics, and the last training batch's mean
     * and 1/sqrt(var + eps), per channel */
    float bn_momentum, bn_eps;
    float *run_mean, *run_var, *bmean, *binvstd;
    /* binary weights (htnn_binary_weights), allocated with the layer and
     * refreshed from w by dense_binarize once per batch: */
    int binary_weights;
    float *wsign;      /* sign(w) as +-1 (out x in); used by the forward sgemm */
    float *wq;         /* sign(w) * alpha: the effective weights (input gradient) */
    float *alpha;      /* per-unit scale (out) */
    /* 1 when wsign/wq/alpha are known to match w (set by dense_binarize);
     * a training forward pass and dense_init clear it, because training
     * code may write w directly afterwards */
    int bin_fresh;
};

/* The weights the layer computes with: w, or wq for binary weights. */
static inline const float *layer_weights(const htnn_layer *layer)
{
    return layer->binary_weights ? layer->wq : layer->w;
}

/* Per-layer batch buffers, each rows x out of the layer, carved from one
 * allocation sized once for `rows` examples. */
typedef struct layer_scratch {
    float *z;   /* pre-activations Z[d] */
    float *h;   /* outputs H[d] */
    float *dz;  /* dL/dZ[d] */
    float *t;   /* targets T[d] (+1 / -1 / 0) */
    float *tw;  /* target weights as the heuristic set them */
    float *aux; /* batch norm: the normalised input X^ (rows x out) */
    int32_t *arg; /* max-pool: the arg-max input of each output (rows x out) */
} layer_scratch;

struct htnn_targets {
    const htnn_net *net;
    size_t batch;      /* examples of the last trained batch, 0 before */
};

struct htnn_net {
    size_t input_width;
    htnn_net_options opts;
    htnn_layer **layers;
    size_t n_layers, cap_layers;
    rng rng;
    uint64_t layout_id;      /* changes whenever the parameter layout does */

    /* scratch arena, sized for `rows` examples */
    size_t rows;
    float *arena;
    layer_scratch *scratch;  /* n_layers entries */
    float *grad_input;       /* G: rows x max input width */
    float *conv_ws;          /* im2col workspaces shared by conv layers, one per part */
    size_t conv_ws_size;     /* floats of each */
    float *gw_parts;         /* conv weight-gradient partials of parts 1.. */
    size_t gw_parts_size;    /* floats of each */
    struct workers *workers; /* helper threads (threads >= 2, conv nets), or NULL */
    int32_t *iarena;         /* max-pool arg-max indices */
    map_shape input_shape;   /* htnn_net_set_input_shape */
    htnn_targets targets;
    /* data-parallel training (htnn_net_set_reducer, lib/reduce.c):
     * allreduce_sum is NULL when the net trains alone */
    htnn_reducer reducer;
    size_t step_rows;        /* global rows of the batch train_step is on, else 0 */
    htnn_status reduce_status; /* first failed reduction of the step */
    int shard_step;          /* 1 inside htnn_net_fit: the step may be sharded */
    int moments_sharded;     /* 1: the optimizer's weight moments are current
                              * only in this rank's blocks (train.c) */
    float *factors;          /* during a sharded fit's own steps: every rank's rows
                              * of a dense layer's input and dZ (lib/factors.c),
                              * else NULL; owned by the fit */
    size_t factor_rows;      /* rows per rank it was sized for */
};

/* Makes the scratch arena hold at least `rows` examples; allocates only
 * when it grows (fit sizes it once before the first batch). */
htnn_status net_reserve(htnn_net *net, size_t rows);

/* 1 while train_step runs a batch with a reducer: layers then reduce
 * their batch statistics over the ranks. */
static inline int net_distributed_step(const htnn_net *net)
{
    return net->reducer.allreduce_sum != NULL && net->step_rows > 0;
}

/* Sums values over the ranks with the net's reducer (lib/reduce.c); a
 * failure is also kept in net->reduce_status for callers that return
 * void (the forward pass). */
htnn_status net_reduce_sum(htnn_net *net, float *values, size_t count);

/* Most 64-bit integers net_reduce_u64 sums in one call. */
#define NET_REDUCE_U64_MAX 8

/* Sums n <= NET_REDUCE_U64_MAX unsigned 64-bit integers over the ranks,
 * exactly (modulo 2^64), through the reducer's float sums (lib/reduce.c). */
htnn_status net_reduce_u64(htnn_net *net, uint64_t *values, size_t n);

/* This rank's block [*first, *first + *n) of an array of `count` values
 * (htnn_reducer.reduce_scatter_sum): floor(r*count/P) .. floor((r+1)*count/P). */
void net_block(const htnn_net *net, size_t count, size_t *first, size_t *n);

/* Applies the net's thread setting to the BLAS library. */
void net_apply_threads(const htnn_net *net);

/* While the net's own workers run single-threaded sgemms in parallel
 * (on = 1), BLAS runs on one thread; on = 0 restores the net's setting. */
void net_blas_alone(const htnn_net *net, int on);

/* The layer's parameter count: weights plus biases (if it has them). */
static inline size_t layer_param_count(const htnn_layer *layer)
{
    return layer->n_w + (layer->has_bias ? layer->n_b : 0);
}

/* Forward pass of `m` <= net->rows examples through every layer; the
 * outputs stay in the scratch arena.  Binary weights are re-binarised
 * (once per batch), since training changes w between batches. */
void net_forward(htnn_net *net, const float *x, size_t m);

/* The same for prediction: binary weights are re-binarised only when they
 * may have changed since the last time (bin_fresh == 0). */
void net_forward_inference(htnn_net *net, const float *x, size_t m);

/* 1 if every value is finite. */
int all_finite(const float *v, size_t n);

/* Checks x (count x input width) for NaN/Inf and, when not NULL, labels
 * for range, before training, evaluation or prediction. */
htnn_status net_check_batch(const htnn_net *net, const float *x,
                            const int32_t *labels, size_t count);

/* Output layer scoring: fills the output layer's dz (when dz_wanted), t and
 * tw for a batch, and returns the summed loss and correct count. */
double output_score(htnn_net *net, const int32_t *labels, size_t m,
                    int dz_wanted, size_t *correct);

/* Predicted class of one row of logits. */
int32_t output_class(const htnn_net *net, const float *logits);

#endif
