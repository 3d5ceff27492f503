/* Internal: pieces of the model file code (model_io.c) that the packed
 * model files (packed_io.c) share: the CRC-32, the atomic writer and the
 * bounded whole-file reader.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_MODEL_IO_INTERNAL_H
#define HTNN_LIB_MODEL_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/common.h"

/* Largest model file read or written: 4 GiB (less with a 32-bit size_t). */
#if SIZE_MAX > 0xffffffffu
#define MODEL_FILE_MAX_BYTES ((size_t)1 << 32)
#else
#define MODEL_FILE_MAX_BYTES (SIZE_MAX / 2)
#endif

/* CRC-32 (IEEE 802.3 / zlib) of n bytes. */
uint32_t model_crc32(const unsigned char *p, size_t n);

/* Writes `size` bytes to `path` atomically (temporary file, fsync, rename). */
htnn_status model_write_file(const char *path, const void *data, size_t size);

/* Reads a whole file of at most MODEL_FILE_MAX_BYTES into a malloc()ed
 * buffer. */
htnn_status model_read_file(const char *path, unsigned char **data, size_t *size);

#endif
