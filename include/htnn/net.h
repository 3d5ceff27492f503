/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * net.h - the network handle (htnn_net) and its layers (htnn_layer).
 *
 * A net is an ordered stack of layers applied to batch-major float32 inputs
 * (count x input_width, row-major).  A dense layer d computes
 *     Z[d] = H[d-1] W[d]^T + b[d],   H[d] = g[d](Z[d])
 * with W[d] stored row-major as out_width x in_width.  Conv2d, max-pool and
 * batch-norm layers (since 0.2) compute Z[d] from the previous layer's
 * output feature map (NHWC, see htnn_conv2d_options) and apply their
 * activation the same way; every layer's output is its flattened map.
 *
 * Ownership: the caller owns the net (htnn_net_create / htnn_net_load /
 * htnn_net_clone, then htnn_net_free).  htnn_layer pointers are borrowed from
 * their net and stay valid until the net is freed.  Pointers into a net's
 * buffers (targets, views) stay valid until the next call that trains or
 * predicts with that net, or until it is freed.
 *
 * Threads: distinct nets may be used from different threads at once; one net
 * must not be used by two threads at the same time (it owns scratch buffers).
 */
#ifndef HTNN_NET_H
#define HTNN_NET_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A network (opaque): layers, output scoring, RNG, scratch buffers. */
typedef struct htnn_net htnn_net;
/** One layer of a net (opaque, borrowed from its net). */
typedef struct htnn_layer htnn_layer;

/** Options for htnn_net_create.  Initialise with HTNN_NET_OPTIONS_INIT. */
typedef struct htnn_net_options {
    size_t struct_size;  /**< sizeof(htnn_net_options) */
    uint64_t seed;       /**< seed of the net's RNG (initial weights, shuffling) */
    int output;          /**< htnn_output: how the last layer is scored */
    /** Threads for BLAS and the library's kernels; 0 leaves the BLAS
     *  library's own setting alone.  With OpenBLAS the thread count is
     *  process-wide: the net sets it at the start of each training or
     *  prediction call when this is > 0.  With threads >= 2 the net also
     *  keeps threads - 1 helper threads of its own (doc/guide.md, section
     *  12), freed with the net: conv2d and max-pool layers run on them, and
     *  so does the whole training step of a net of dense layers with the
     *  loss-driven heuristic (since 0.3; BLAS then runs single-threaded
     *  inside each thread's share).  Results are deterministic for a given
     *  thread count; different counts agree to float rounding. */
    int threads;
    /** 0 (default): targets for layer d-1 are computed from W[d] before its
     *  update (equal to one backward pass); 1: after the update. */
    int targets_after_update;
} htnn_net_options;

/** Default net options: seed 1, softmax output, BLAS threads untouched. */
#define HTNN_NET_OPTIONS_INIT \
    { sizeof(htnn_net_options), 1u, HTNN_OUTPUT_SOFTMAX, 0, 0 }

/** Kinds of layer.  Numbers are fixed. */
typedef enum htnn_layer_kind {
    HTNN_LAYER_DENSE = 1,     /**< htnn_net_add_dense */
    HTNN_LAYER_CONV2D = 2,    /**< htnn_net_add_conv2d (since 0.2) */
    HTNN_LAYER_MAXPOOL2D = 3, /**< htnn_net_add_maxpool2d (since 0.2) */
    HTNN_LAYER_BATCHNORM = 4  /**< htnn_net_add_batchnorm (since 0.2) */
} htnn_layer_kind;

/** Binary weights of a dense layer (htnn_dense_options.binary_weights).
 *  The forward pass and the input gradient use B = sign(W) (sign(0) = -1),
 *  scaled per output unit: Z = (X B^T) * alpha + b.  Numbers are fixed. */
typedef enum htnn_binary_weights {
    HTNN_BINARY_NONE = 0,   /**< float weights */
    HTNN_BINARY_SCALED = 1, /**< alpha_j = mean |W[j][:]| (XNOR-Net style) */
    HTNN_BINARY_SIGN = 2    /**< alpha_j = 1: plain +-1 weights */
} htnn_binary_weights;

/** Options for htnn_net_add_dense.  Initialise with HTNN_DENSE_OPTIONS_INIT. */
typedef struct htnn_dense_options {
    size_t struct_size; /**< sizeof(htnn_dense_options) */
    size_t units;       /**< output width, >= 1 (no default: must be set) */
    int activation;     /**< htnn_activation, default HTNN_ACT_SIGN */
    int qrelu_bits;     /**< bits of HTNN_ACT_QRELU, 1..8, default 2 */
    int loss;           /**< htnn_loss towards this layer's targets, default soft hinge */
    /** 1 (default): each target's loss is weighted by the weight the
     *  heuristic gave it (|G| for the loss-driven heuristic); 0: every target
     *  with a non-zero weight counts 1. */
    int weight_targets;
    int bias;           /**< 1 (default): the layer has a bias vector */
    /** htnn_binary_weights: 0 (default) float weights; 1 forward with
     *  sign(W) * alpha_j, alpha_j = mean |W[j][:]| per output unit; 2 with
     *  sign(W) unscaled.  The latent float weights are trained as usual
     *  (straight-through) and clipped to [-1, 1] after each update. */
    int binary_weights;
} htnn_dense_options;

/** Default dense options: sign units, qrelu 2 bits, soft hinge, weighted
 *  targets, bias; `units` must still be set. */
#define HTNN_DENSE_OPTIONS_INIT                                              \
    { sizeof(htnn_dense_options), 0, HTNN_ACT_SIGN, 2, HTNN_LOSS_SOFT_HINGE, \
      1, 1, HTNN_BINARY_NONE }

/** Options for htnn_net_add_conv2d.  Initialise with HTNN_CONV2D_OPTIONS_INIT.
 *
 *  Feature maps are NHWC: one example is height x width x channels floats,
 *  channels fastest (so a whole batch of positions is one matrix whose
 *  rows are positions and columns channels, and the convolution of a batch
 *  is one sgemm with no transposes).  A dense layer after a convolution
 *  reads the map flattened in that order.  Output size per axis:
 *  (in + 2 * padding - kernel) / stride + 1; padding adds zeros.  Weights
 *  are channels x kernel_h x kernel_w x in_channels, row-major. */
typedef struct htnn_conv2d_options {
    size_t struct_size; /**< sizeof(htnn_conv2d_options) */
    size_t channels;    /**< output channels, >= 1 (no default: must be set) */
    size_t kernel_h;    /**< kernel height, default 3 */
    size_t kernel_w;    /**< kernel width, default 3 */
    size_t stride;      /**< both axes, >= 1, default 1 */
    size_t padding;     /**< zeros on every side, default 1 ("same" for 3x3) */
    /** htnn_activation, default HTNN_ACT_IDENTITY: a hard-threshold block is
     *  usually conv -> pool -> (batch norm) -> sign, with the threshold on
     *  the last of them */
    int activation;
    int qrelu_bits;     /**< bits of HTNN_ACT_QRELU, default 2 */
    int loss;           /**< htnn_loss towards targets, default soft hinge */
    int weight_targets; /**< as htnn_dense_options.weight_targets, default 1 */
    int bias;           /**< 1 (default): one bias per output channel */
    /** htnn_binary_weights, default 0; the scale alpha is per output
     *  channel (mean |W| over its in_channels x kernel_h x kernel_w) */
    int binary_weights;
} htnn_conv2d_options;

/** Default conv2d options: 3x3, stride 1, padding 1, identity, bias;
 *  `channels` must still be set. */
#define HTNN_CONV2D_OPTIONS_INIT                                             \
    { sizeof(htnn_conv2d_options), 0, 3, 3, 1, 1, HTNN_ACT_IDENTITY, 2,      \
      HTNN_LOSS_SOFT_HINGE, 1, 1, HTNN_BINARY_NONE }

/** Options for htnn_net_add_maxpool2d.  Initialise with
 *  HTNN_MAXPOOL2D_OPTIONS_INIT.  Windows never overhang the input (no
 *  padding): out = (in - size) / stride + 1.  Ties in a window go to the
 *  first maximum in row-major order; the gradient of an output reaches only
 *  that arg-max input. */
typedef struct htnn_maxpool2d_options {
    size_t struct_size; /**< sizeof(htnn_maxpool2d_options) */
    size_t size;        /**< window height and width, >= 1, default 2 */
    size_t stride;      /**< 0 (default): equal to size */
    int activation;     /**< htnn_activation, default HTNN_ACT_IDENTITY */
    int qrelu_bits;     /**< bits of HTNN_ACT_QRELU, default 2 */
    int loss;           /**< htnn_loss towards targets, default soft hinge */
    int weight_targets; /**< default 1 */
} htnn_maxpool2d_options;

/** Default max-pool options: 2x2 windows, stride 2, identity. */
#define HTNN_MAXPOOL2D_OPTIONS_INIT                                          \
    { sizeof(htnn_maxpool2d_options), 2, 0, HTNN_ACT_IDENTITY, 2,            \
      HTNN_LOSS_SOFT_HINGE, 1 }

/** Options for htnn_net_add_batchnorm.  Initialise with
 *  HTNN_BATCHNORM_OPTIONS_INIT.
 *
 *  Per channel c (a feature map's channel, or each unit after a dense
 *  layer): Z = gamma_c (X - mean_c) / sqrt(var_c + epsilon) + beta_c.
 *  Training uses the batch's mean and (biased) variance over examples and
 *  positions and updates the running statistics
 *  r <- (1 - momentum) r + momentum * batch (the running variance takes the
 *  unbiased batch variance, as PyTorch does); prediction and evaluation
 *  use the running statistics, which the model file stores.  gamma and beta
 *  are the layer's weights and bias (htnn_layer_get_weights / _bias). */
typedef struct htnn_batchnorm_options {
    size_t struct_size; /**< sizeof(htnn_batchnorm_options) */
    float momentum;     /**< in (0, 1], default 0.1 */
    float epsilon;      /**< > 0, default 1e-5 */
    int activation;     /**< htnn_activation, default HTNN_ACT_IDENTITY */
    int qrelu_bits;     /**< bits of HTNN_ACT_QRELU, default 2 */
    int loss;           /**< htnn_loss towards targets, default soft hinge */
    int weight_targets; /**< default 1 */
} htnn_batchnorm_options;

/** Default batch-norm options: momentum 0.1, epsilon 1e-5, identity. */
#define HTNN_BATCHNORM_OPTIONS_INIT                                          \
    { sizeof(htnn_batchnorm_options), 0.1f, 1e-5f, HTNN_ACT_IDENTITY, 2,     \
      HTNN_LOSS_SOFT_HINGE, 1 }

/** What a layer is; filled by htnn_layer_get_info. */
typedef struct htnn_layer_info {
    size_t struct_size; /**< set by the caller to sizeof(htnn_layer_info) */
    int kind;           /**< htnn_layer_kind */
    size_t index;       /**< position in the net, 0-based */
    size_t in_width;    /**< n[d-1] */
    size_t out_width;   /**< n[d] */
    int activation;     /**< htnn_activation */
    int qrelu_bits;     /**< bits of a qrelu activation */
    int loss;           /**< htnn_loss */
    int weight_targets; /**< 1 if targets are weighted (htnn_dense_options) */
    int bias;           /**< 1 if the layer has a bias */
    size_t weight_count; /**< weights (out_width * in_width for dense) */
    int binary_weights; /**< htnn_binary_weights of the layer */
    /* Since 0.2: feature-map shapes (channels x height x width; a dense
     * layer's output is units x 1 x 1) and the window of conv / pool
     * layers (0 for other kinds). */
    size_t in_channels;  /**< channels of the input feature map */
    size_t in_height;    /**< height of the input feature map */
    size_t in_columns;   /**< width of the input feature map */
    size_t out_channels; /**< channels of the output feature map */
    size_t out_height;   /**< height of the output feature map */
    size_t out_columns;  /**< width of the output feature map */
    size_t kernel_h;     /**< conv kernel or pool window height */
    size_t kernel_w;     /**< conv kernel or pool window width */
    size_t stride;       /**< conv or pool stride */
    size_t padding;      /**< conv padding */
    size_t bias_count;   /**< values of htnn_layer_get_bias */
} htnn_layer_info;

/** An htnn_layer_info ready to be filled by htnn_layer_get_info. */
#define HTNN_LAYER_INFO_INIT                                                 \
    { sizeof(htnn_layer_info), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,              \
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/** Creates an empty net taking inputs input_width wide.  opts may be NULL
 *  for the defaults.  On success *out owns a new net. */
HTNN_API htnn_status htnn_net_create(size_t input_width,
                                     const htnn_net_options *opts,
                                     htnn_net **out);

/** Frees a net and everything it owns; NULL is a no-op. */
HTNN_API void htnn_net_free(htnn_net *net);

/** Deep copy of a net (architecture, weights, RNG state); scratch buffers
 *  and the last targets are not copied. */
HTNN_API htnn_status htnn_net_clone(const htnn_net *net, htnn_net **out);

/** Appends a dense layer whose input is the previous layer's output (or the
 *  net's input).  Weights and biases are drawn from U(-1/sqrt(in),
 *  1/sqrt(in)) with the net's RNG (the usual default of nn.Linear), weights
 *  first.  *layer_out (may be NULL) receives the borrowed layer. */
HTNN_API htnn_status htnn_net_add_dense(htnn_net *net,
                                        const htnn_dense_options *opts,
                                        htnn_layer **layer_out);

/** Declares the net's input as a feature map of channels x height x width
 *  (NHWC rows; channels * height * width must equal the input width, else
 *  HTNN_ESHAPE).  Needed before a first conv2d or max-pool layer; only
 *  allowed while the net has no layers (HTNN_ESTATE).  Without it the input
 *  is input_width x 1 x 1.  Since 0.2. */
HTNN_API htnn_status htnn_net_set_input_shape(htnn_net *net, size_t channels,
                                              size_t height, size_t width);

/** The net's input shape: as htnn_net_set_input_shape declared it, else
 *  input_width x 1 x 1.  Any out-pointer may be NULL.  Saved in the model
 *  file (an optional section) and restored by htnn_net_load.  Since 0.2. */
HTNN_API htnn_status htnn_net_get_input_shape(const htnn_net *net, size_t *channels,
                                              size_t *height, size_t *width);

/** Appends a 2-d convolution over the previous layer's output feature map
 *  (im2col + sgemm).  Weights and biases are drawn from
 *  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * kernel_h *
 *  kernel_w, as nn.Conv2d does.  Rejected with HTNN_ESHAPE when the kernel
 *  is larger than the input map (padding aside: a flat input of width x
 *  1 x 1, i.e. no htnn_net_set_input_shape, fits only 1x1 kernels).
 *  Since 0.2. */
HTNN_API htnn_status htnn_net_add_conv2d(htnn_net *net,
                                         const htnn_conv2d_options *opts,
                                         htnn_layer **layer_out);

/** Appends a 2-d max-pool over the previous layer's output feature map.
 *  Rejected with HTNN_ESHAPE when the window is larger than the input.
 *  Since 0.2. */
HTNN_API htnn_status htnn_net_add_maxpool2d(htnn_net *net,
                                            const htnn_maxpool2d_options *opts,
                                            htnn_layer **layer_out);

/** Appends batch normalization over the channels of the previous layer's
 *  output (gamma = 1, beta = 0, running mean 0 and variance 1).  Since 0.2. */
HTNN_API htnn_status htnn_net_add_batchnorm(htnn_net *net,
                                            const htnn_batchnorm_options *opts,
                                            htnn_layer **layer_out);

/** Re-seeds the net's RNG (affects later shuffling and added layers). */
HTNN_API htnn_status htnn_net_seed(htnn_net *net, uint64_t seed);

/** Changes the thread setting (see htnn_net_options.threads). */
HTNN_API htnn_status htnn_net_set_threads(htnn_net *net, int threads);

/** Reads the options the net was created with (struct_size set by caller). */
HTNN_API htnn_status htnn_net_get_options(const htnn_net *net,
                                          htnn_net_options *out);

/** Number of layers; 0 for NULL. */
HTNN_API size_t htnn_net_layer_count(const htnn_net *net);
/** Input width; 0 for NULL. */
HTNN_API size_t htnn_net_input_width(const htnn_net *net);
/** Output width (the last layer's units, or the input width without
 *  layers); 0 for NULL. */
HTNN_API size_t htnn_net_output_width(const htnn_net *net);
/** Total number of trainable parameters (weights and biases). */
HTNN_API size_t htnn_net_parameter_count(const htnn_net *net);

/** Borrowed pointer to layer `index` (0-based), or NULL if out of range. */
HTNN_API htnn_layer *htnn_net_layer(htnn_net *net, size_t index);

/** Describes a layer.  out->struct_size must be set by the caller. */
HTNN_API htnn_status htnn_layer_get_info(const htnn_layer *layer,
                                         htnn_layer_info *out);

/** Copies the layer's weights to dst, which holds `count` floats; count
 *  must equal weight_count.  Dense: out_width x in_width; conv2d: channels
 *  x kernel_h x kernel_w x in_channels; batch norm: gamma (channels);
 *  max-pool: none (count 0, which copies nothing). */
HTNN_API htnn_status htnn_layer_get_weights(const htnn_layer *layer,
                                            float *dst, size_t count);
/** Replaces the layer's weights; rejects NaN/Inf (HTNN_ENUMERIC). */
HTNN_API htnn_status htnn_layer_set_weights(htnn_layer *layer,
                                            const float *src, size_t count);
/** Copies the bias (bias_count floats of htnn_layer_info: out_width for
 *  dense layers, one per channel for conv2d and batch norm (beta); zeros
 *  if the layer has none). */
HTNN_API htnn_status htnn_layer_get_bias(const htnn_layer *layer, float *dst,
                                         size_t count);
/** Replaces the bias; HTNN_ESTATE if the layer has no bias. */
HTNN_API htnn_status htnn_layer_set_bias(htnn_layer *layer, const float *src,
                                         size_t count);
/** Changes the per-layer loss and target weighting of a layer. */
HTNN_API htnn_status htnn_layer_set_loss(htnn_layer *layer, int loss,
                                         int weight_targets);

/** Copies a batch-norm layer's running mean and variance (`count` =
 *  channels = bias_count values each; either array may be NULL).
 *  HTNN_ESTATE for other kinds of layer.  Since 0.2. */
HTNN_API htnn_status htnn_layer_get_running_stats(const htnn_layer *layer,
                                                  float *mean, float *variance,
                                                  size_t count);

/** Replaces a batch-norm layer's running statistics (to import a model
 *  trained elsewhere); variances must be finite and >= 0, means finite
 *  (HTNN_ENUMERIC).  Since 0.2. */
HTNN_API htnn_status htnn_layer_set_running_stats(htnn_layer *layer,
                                                  const float *mean,
                                                  const float *variance,
                                                  size_t count);

/** Logits (pre-activations of the last layer) for `count` inputs:
 *  x is count x input_width, logits is count x output_width. */
HTNN_API htnn_status htnn_net_predict_logits(htnn_net *net, const float *x,
                                             size_t count, float *logits);

/** Predicted class per input: arg-max of the logits (ties: lowest index);
 *  for a one-unit output, 1 if its logit > 0 else 0. */
HTNN_API htnn_status htnn_net_predict(htnn_net *net, const float *x,
                                      size_t count, int32_t *classes);

/** Mean loss (softmax cross-entropy, or the per-layer loss of a
 *  hard-threshold output) and accuracy in [0, 1] over `count` labelled
 *  inputs.  Either out-pointer may be NULL. */
HTNN_API htnn_status htnn_net_evaluate(htnn_net *net, const float *x,
                                       const int32_t *labels, size_t count,
                                       double *loss, double *accuracy);

/** Number of classes the net distinguishes: output_width, or 2 for a
 *  one-unit output. */
HTNN_API size_t htnn_net_class_count(const htnn_net *net);

/** Saves the net to `path` atomically (temporary file, fsync, rename): on
 *  failure an existing file at `path` is left untouched.  See
 *  doc/file-format.md. */
HTNN_API htnn_status htnn_net_save(const htnn_net *net, const char *path);

/** Loads a net saved by htnn_net_save.  Unknown versions, truncated or
 *  corrupt files fail with HTNN_EVERSION / HTNN_EFORMAT and never crash. */
HTNN_API htnn_status htnn_net_load(const char *path, htnn_net **out);

/** Serialises the net into a buffer allocated with malloc(); the caller
 *  frees *data with htnn_free(). */
HTNN_API htnn_status htnn_net_save_buffer(const htnn_net *net, void **data,
                                          size_t *size);

/** Loads a net from a memory buffer in the model file format. */
HTNN_API htnn_status htnn_net_load_buffer(const void *data, size_t size,
                                          htnn_net **out);

/** Frees memory the library allocated for the caller (buffers from
 *  htnn_net_save_buffer); NULL is a no-op. */
HTNN_API void htnn_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_NET_H */
