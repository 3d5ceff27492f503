/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * common.h - export macro, status codes, error reporting, version queries and
 * the enumerations shared by every other public header.
 *
 * Conventions used throughout the public API:
 *  - Every fallible call returns an htnn_status (HTNN_OK == 0, errors < 0) and
 *    writes results through out-parameters.  On error the out-parameters and
 *    the caller's objects are left as they were.
 *  - After an error, htnn_last_error() returns a human-readable detail for the
 *    calling thread ("layer 2: input width 784 does not match 785").
 *  - Whoever creates an object frees it; every htnn_*_free(NULL) is a no-op.
 *  - Options structs start with a struct_size field and have an *_INIT macro;
 *    the library reads only the fields covered by struct_size, so programs
 *    compiled against an older header keep working.
 *  - The library never prints, exits or aborts.
 */
#ifndef HTNN_COMMON_H
#define HTNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a declaration as part of the exported ABI. */
#if defined(HTNN_BUILDING_LIBRARY) && defined(__GNUC__)
#define HTNN_API __attribute__((visibility("default")))
#else
#define HTNN_API
#endif

/** Compile-time version of the headers: major (changes on an ABI break). */
#define HTNN_VERSION_MAJOR 0
/** Minor version (new features, ABI-compatible). */
#define HTNN_VERSION_MINOR 4
/** Patch version (fixes only). */
#define HTNN_VERSION_PATCH 0
/** The version as text. */
#define HTNN_VERSION_STRING "0.4.0"
/** Version as one integer, major * 10000 + minor * 100 + patch. */
#define HTNN_VERSION_NUMBER \
    (HTNN_VERSION_MAJOR * 10000 + HTNN_VERSION_MINOR * 100 + HTNN_VERSION_PATCH)

/** Status codes.  HTNN_OK is 0, every error is negative.  Values are fixed
 *  forever; new codes are appended. */
typedef enum htnn_status {
    HTNN_OK = 0,
    HTNN_EINVAL = -1,       /**< invalid argument (NULL, zero size, bad enum) */
    HTNN_ENOMEM = -2,       /**< memory allocation failed */
    HTNN_EIO = -3,          /**< reading or writing a file failed */
    HTNN_EFORMAT = -4,      /**< file is not in the expected format or is corrupt */
    HTNN_EVERSION = -5,     /**< file format version not supported */
    HTNN_ESHAPE = -6,       /**< array or layer dimensions do not match */
    HTNN_ENUMERIC = -7,     /**< NaN or infinity in inputs, weights or loss */
    HTNN_ESTATE = -8,       /**< call not valid in the object's current state */
    HTNN_EUNSUPPORTED = -9, /**< combination not supported by this build */
    HTNN_ELIMIT = -10,      /**< a configured limit would be exceeded */
    HTNN_ECALLBACK = -11    /**< a caller-supplied callback reported failure */
} htnn_status;

/** Static English text for a status code; never NULL. */
HTNN_API const char *htnn_strerror(htnn_status status);

/** Detail of the last error on the calling thread, or "" if none.  The
 *  returned text is owned by the library and valid until the next failing
 *  call on this thread. */
HTNN_API const char *htnn_last_error(void);

/** Clears the calling thread's last-error text. */
HTNN_API void htnn_clear_error(void);

/** Runtime version as HTNN_VERSION_NUMBER of the library actually loaded. */
HTNN_API unsigned htnn_version(void);

/** Runtime version string of the library actually loaded, e.g. "0.1.0". */
HTNN_API const char *htnn_version_string(void);

/** Unit activations (see doc/guide.md and ALGORITHM.md).  Numbers are fixed. */
typedef enum htnn_activation {
    HTNN_ACT_IDENTITY = 0, /**< z, real-valued (usual output layer) */
    HTNN_ACT_SIGN = 1,     /**< +1 if z > 0 else -1 (sign(0) = -1) */
    HTNN_ACT_STEP = 2,     /**< 1 if z > 0 else 0 */
    HTNN_ACT_QRELU = 3,    /**< 2^bits levels in [0, 1], see qrelu_bits */
    HTNN_ACT_RELU = 4      /**< max(0, z), real-valued baseline */
} htnn_activation;

/** Per-layer losses L(z, t) used to train a hard-threshold layer towards its
 *  targets; dL/dz is the "surrogate derivative".  Numbers are fixed. */
typedef enum htnn_loss {
    HTNN_LOSS_SOFT_HINGE = 0,      /**< tanh(-zt) + 1 (default) */
    HTNN_LOSS_SATURATED_HINGE = 1, /**< min(2, max(0, 1 - zt)); gives SSTE */
    HTNN_LOSS_HINGE = 2,           /**< max(0, 1 - zt) */
    HTNN_LOSS_PERCEPTRON = 3,      /**< max(0, -zt) */
    HTNN_LOSS_LINEAR = 4           /**< -zt; gives the plain STE */
} htnn_loss;

/** How the last layer is scored. */
typedef enum htnn_output {
    /** Softmax cross-entropy over the last layer's pre-activations (default).
     *  The last layer should use HTNN_ACT_IDENTITY. */
    HTNN_OUTPUT_SOFTMAX = 0,
    /** Hard-threshold output: each output unit gets a +-1 one-vs-rest target
     *  (a single output unit encodes labels 0/1 as -1/+1) and is trained with
     *  its layer's per-layer loss.  Prediction is the arg-max of z (or z > 0
     *  for one output unit). */
    HTNN_OUTPUT_HARD_THRESHOLD = 1
} htnn_output;

#ifdef __cplusplus
}
#endif

#endif /* HTNN_COMMON_H */
