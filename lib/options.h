/* Internal: reading caller options structs that start with struct_size.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_OPTIONS_H
#define HTNN_LIB_OPTIONS_H

#include <stddef.h>
#include <string.h>

#include "error.h"

/* Copies the part of a caller's options struct its struct_size covers over
 * `defaults` (already in dst).  A size larger than ours means the caller was
 * built against a newer header whose fields we cannot honour. */
static inline htnn_status options_read(void *dst, size_t ours, const void *src,
                                       const char *what)
{
    size_t theirs;
    if (src == NULL)
        return HTNN_OK;
    memcpy(&theirs, src, sizeof theirs);
    if (theirs < sizeof(size_t))
        return error_set(HTNN_EINVAL, "%s: struct_size %zu is too small", what,
                         theirs);
    if (theirs > ours)
        return error_set(HTNN_EUNSUPPORTED,
                         "%s: struct_size %zu is larger than this library's %zu "
                         "(built against a newer header)",
                         what, theirs, ours);
    memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
           theirs - sizeof(size_t));
    return HTNN_OK;
}

#endif
