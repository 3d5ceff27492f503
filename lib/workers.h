/* Internal: a net's own worker threads, for the layer work OpenBLAS cannot
 * parallelise (im2col, col2im, max-pooling, the elementwise passes and the
 * optimizer of a dense step) and for sgemms too small to split well inside
 * BLAS.  With htnn_net_options.threads = T >= 2 a net keeps T - 1 helper
 * threads, created when its scratch arena is sized and joined by
 * htnn_net_free; between jobs they spin briefly, then sleep on a
 * condition variable.  Work is cut into `parts` fixed slices, slice p always on the same
 * thread, so results depend on the thread count but never on timing.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_WORKERS_H
#define HTNN_LIB_WORKERS_H

#include <stddef.h>

#include "htnn/common.h"

#define WORKERS_MAX 16

typedef struct workers workers;

/* One slice of a job: part p of `parts`. */
typedef void (*work_fn)(void *arg, size_t part, size_t parts);

/* Starts `parts - 1` helper threads (2 <= parts <= WORKERS_MAX) into
 * *out; HTNN_ENOMEM when memory or threads run out. */
htnn_status workers_create(size_t parts, workers **out);

/* Joins the helpers and frees; NULL is a no-op. */
void workers_free(workers *w);

/* Slices of w (1 for NULL). */
size_t workers_parts(const workers *w);

/* Runs fn(arg, p, parts) for every p, p = 0 on the calling thread, and
 * returns when all are done. */
void workers_run(workers *w, work_fn fn, void *arg);

#endif
