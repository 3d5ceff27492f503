/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * packed.h - bit-packed, inference-only nets (htnn_packed).
 *
 * htnn_net_pack() turns a trained net whose hidden layers all have sign
 * activations into a read-only form that predicts with bit operations:
 * +-1 activations and binary weights are stored 1 bit each in 64-bit words
 * (bit 1 = +1, bit 0 = -1; padding bits are 0), a hidden dot product is
 * K - 2 * popcount(a XOR w), and each unit's scale alpha, bias and sign are
 * folded into one integer threshold (the unit outputs +1 iff its integer
 * sum S >= T).  The last layer's logits are computed as the float net
 * computes them.  See doc/binary.md for the rules under
 * which predictions equal the float net's bit for bit.
 *
 * Kernels: portable C always; AVX2 and AVX-512 (VPOPCNTDQ + VNNI) chosen
 * when the object is built (htnn_net_pack, htnn_packed_load) from the CPU's
 * features.  The environment variable HTNN_FORCE_PORTABLE=1, read at that
 * moment, forces the portable kernels; htnn_packed_set_kernel() changes the
 * choice later.  The choice is stored in the object: there is no global
 * state.
 *
 * Threads: distinct packed nets may be used from different threads at once;
 * one packed net is not re-entrant (it owns scratch buffers for a chunk of
 * 256 examples, allocated when it is built: prediction allocates nothing).
 * htnn_packed_set_threads() gives one packed net helper threads of its own
 * that split each prediction call's examples between them; results do not
 * depend on the thread count.
 */
#ifndef HTNN_PACKED_H
#define HTNN_PACKED_H

#include "common.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A packed, inference-only net (opaque). */
typedef struct htnn_packed htnn_packed;

/** Kernel families of the packed engine.  Numbers are fixed. */
typedef enum htnn_packed_kernel {
    HTNN_KERNEL_AUTO = 0,     /**< the best the CPU runs (or portable if forced) */
    HTNN_KERNEL_PORTABLE = 1, /**< plain C, any CPU */
    HTNN_KERNEL_AVX2 = 2,     /**< x86-64 AVX2 + POPCNT */
    HTNN_KERNEL_AVX512 = 3    /**< x86-64 AVX-512 F/BW/VPOPCNTDQ/VNNI */
} htnn_packed_kernel;

/** Packs a net for inference.  Every layer but the last must have
 *  HTNN_ACT_SIGN (any weights: binary weights become bits, float weights
 *  stay float); the last layer gives the logits.  A softmax output needs
 *  >= 2 units.  The net is only read; the packed net does not refer to it.
 *  On success *out owns a new packed net (free with htnn_packed_free). */
HTNN_API htnn_status htnn_net_pack(const htnn_net *net, htnn_packed **out);

/** Frees a packed net; NULL is a no-op. */
HTNN_API void htnn_packed_free(htnn_packed *packed);

/** Chooses the kernels: HTNN_KERNEL_AUTO picks the best this CPU runs
 *  (ignoring HTNN_FORCE_PORTABLE); a specific kernel the CPU (or build)
 *  cannot run is HTNN_EUNSUPPORTED and leaves the choice unchanged. */
HTNN_API htnn_status htnn_packed_set_kernel(htnn_packed *packed, int kernel);

/** The kernel in use (never HTNN_KERNEL_AUTO), or -1 for NULL. */
HTNN_API int htnn_packed_kernel_in_use(const htnn_packed *packed);

/** Most threads a packed net runs (htnn_packed_set_threads clamps to it). */
#define HTNN_PACKED_MAX_THREADS 16

/** Sets the threads a prediction call runs on.  threads >= 2: the packed
 *  net keeps threads - 1 helper threads of its own (sleeping between
 *  calls) and scratch buffers for each, allocated here, so prediction
 *  still allocates nothing; each call splits its examples into contiguous
 *  slices of whole blocks of 64, one per thread, and runs on the caller's
 *  thread alone when it has 64 examples or fewer.  threads = 1 (and 0, the
 *  same) frees them: prediction runs on the caller's thread only (the
 *  default after htnn_net_pack and htnn_packed_load; the setting is not
 *  saved).  Values above HTNN_PACKED_MAX_THREADS are clamped to it
 *  (htnn_packed_threads() tells the value in use).  Negative or NULL:
 *  HTNN_EINVAL.  Logits and classes are bit-identical for every thread
 *  count: slices never cut a block, and every sgemm call (float-weight
 *  layers, a binary first layer on inputs that are not 8-bit) covers one
 *  block (doc/binary.md, section 6).  While the helpers run, OpenBLAS is
 *  set to one thread and its count restored afterwards (process-wide, as
 *  for htnn_net_options.threads).  Out of memory: HTNN_ENOMEM, and the
 *  previous setting stays.  Not to be called while the packed net predicts
 *  on another thread. */
HTNN_API htnn_status htnn_packed_set_threads(htnn_packed *packed, int threads);

/** Threads in use (1 .. HTNN_PACKED_MAX_THREADS), or -1 for NULL. */
HTNN_API int htnn_packed_threads(const htnn_packed *packed);

/** Static name of a kernel: "auto", "portable", "avx2", "avx512" or "?". */
HTNN_API const char *htnn_packed_kernel_name(int kernel);

/** Input width; 0 for NULL. */
HTNN_API size_t htnn_packed_input_width(const htnn_packed *packed);
/** Output width (logits per example); 0 for NULL. */
HTNN_API size_t htnn_packed_output_width(const htnn_packed *packed);
/** Number of layers; 0 for NULL. */
HTNN_API size_t htnn_packed_layer_count(const htnn_packed *packed);
/** Number of classes: output width, or 2 for a one-unit output. */
HTNN_API size_t htnn_packed_class_count(const htnn_packed *packed);

/** Logits (count x output width) for count inputs (count x input width). */
HTNN_API htnn_status htnn_packed_predict_logits(htnn_packed *packed, const float *x,
                                                size_t count, float *logits);

/** Predicted classes, with htnn_net_predict's rule (arg-max, ties to the
 *  lowest index; one unit: 1 if its logit > 0). */
HTNN_API htnn_status htnn_packed_predict(htnn_packed *packed, const float *x,
                                         size_t count, int32_t *classes);

/** Saves the packed net (doc/file-format.md, "Packed model files"),
 *  atomically like htnn_net_save. */
HTNN_API htnn_status htnn_packed_save(const htnn_packed *packed, const char *path);

/** Serialises the packed net into a malloc()ed buffer (free with
 *  htnn_free). */
HTNN_API htnn_status htnn_packed_save_buffer(const htnn_packed *packed, void **data,
                                             size_t *size);

/** Loads a packed model file; truncated or corrupt files fail with
 *  HTNN_EFORMAT (unknown versions HTNN_EVERSION) and never crash. */
HTNN_API htnn_status htnn_packed_load(const char *path, htnn_packed **out);

/** Loads a packed net from a memory buffer. */
HTNN_API htnn_status htnn_packed_load_buffer(const void *data, size_t size,
                                             htnn_packed **out);

/** Writes the packed net as self-contained C source: static tables, no
 *  malloc, no library, defining `int PREFIX_predict(const float *x, float
 *  *logits)` (returns the class; writes the logits when logits is not NULL).
 *  prefix (NULL: "htnn_model") must be a C identifier of at most 64
 *  characters.  The code follows the portable kernels: integer sums and
 *  thresholds are the library's; where the library calls sgemm (float
 *  weights, or a binary first layer on inputs that are not 8-bit) it sums
 *  in index order (doc/binary.md, section 8).  *text is NUL-terminated,
 *  *size excludes the NUL; free it with htnn_free. */
HTNN_API htnn_status htnn_packed_export_c(const htnn_packed *packed, const char *prefix,
                                          char **text, size_t *size);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_PACKED_H */
