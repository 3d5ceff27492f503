/* Internal: recording the thread-local last-error text.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_ERROR_H
#define HTNN_LIB_ERROR_H

#include "htnn/common.h"

/* Records a printf-style detail for htnn_last_error() on this thread and
 * returns `status`, so callers can write `return error_set(...)`. */
htnn_status error_set(htnn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
