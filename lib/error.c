/* Status texts and the thread-local last-error message.
 * SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One buffer per thread: errors on one thread never clobber another's. */
static _Thread_local char last_error[512];

htnn_status error_set(htnn_status status, const char *fmt, ...)
{
    /* formatted apart first: an argument may be the current message itself
     * (a caller adding context to htnn_last_error()) */
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof text);
    return status;
}

const char *htnn_last_error(void) { return last_error; }

void htnn_clear_error(void) { last_error[0] = '\0'; }

const char *htnn_strerror(htnn_status status)
{
    switch (status) {
    case HTNN_OK: return "success";
    case HTNN_EINVAL: return "invalid argument";
    case HTNN_ENOMEM: return "out of memory";
    case HTNN_EIO: return "input/output error";
    case HTNN_EFORMAT: return "bad file format";
    case HTNN_EVERSION: return "unsupported file format version";
    case HTNN_ESHAPE: return "dimension mismatch";
    case HTNN_ENUMERIC: return "NaN or infinity";
    case HTNN_ESTATE: return "invalid state for this call";
    case HTNN_EUNSUPPORTED: return "not supported";
    case HTNN_ELIMIT: return "limit exceeded";
    case HTNN_ECALLBACK: return "callback failed";
    }
    return "unknown status";
}

unsigned htnn_version(void) { return HTNN_VERSION_NUMBER; }

const char *htnn_version_string(void) { return HTNN_VERSION_STRING; }
