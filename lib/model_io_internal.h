/* Internal: pieces of the model file code (model_io.c) that the packed
 * model files (packed_io.c) share: the CRC-32, the atomic writer and the
 * bounded whole-file reader.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_MODEL_IO_INTERNAL_H
#define HTNN_LIB_MODEL_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "htnn/common.h"
#include "htnn/net.h"

/* Largest model file read or written: 4 GiB (less with a 32-bit size_t). */
#if SIZE_MAX > 0xffffffffu
#define MODEL_FILE_MAX_BYTES ((size_t)1 << 32)
#else
#define MODEL_FILE_MAX_BYTES (SIZE_MAX / 2)
/* Reports a refusal by the net API while a model is rebuilt: allocation
 * failures and limits keep their status, anything else becomes
 * HTNN_EFORMAT (the file is unusable), with the library's message. */
htnn_status model_library_refused(htnn_status st, const char *name, const char *what);

#endif

/* CRC-32 (IEEE 802.3 / zlib) of n bytes. */
uint32_t model_crc32(const unsigned char *p, size_t n);

/* Writes `size` bytes to `path` atomically (temporary file, fsync, rename);
 * refuses to replace anything but a regular file, and writes through a
 * symbolic link to the file it points to. */
htnn_status model_write_file(const char *path, const void *data, size_t size);

/* Reads a whole file of at most MODEL_FILE_MAX_BYTES into a mem_malloc()ed
 * buffer. */
htnn_status model_read_file(const char *path, unsigned char **data, size_t *size);

/* Reports a refusal by the net API while a model is rebuilt: allocation
 * failures and limits keep their status, anything else becomes
 * HTNN_EFORMAT (the file is unusable), with the library's message. */
htnn_status model_library_refused(htnn_status st, const char *name, const char *what);

/* Serialises `net` as htnn_net_save_buffer does, leaving `extra` bytes at
 * *extra_at, just before the END section, for the caller's own optional
 * sections; model_seal then writes the checksum.  *data is mem_malloc'ed. */
htnn_status model_serialize(const htnn_net *net, size_t extra, unsigned char **data,
                            size_t *size, size_t *extra_at);

/* Writes the checksum of a serialised model (its last 4 bytes). */
void model_seal(unsigned char *data, size_t size);

/* htnn_net_load_buffer with `name` (a path) in the error messages. */
htnn_status model_load_named(const unsigned char *data, size_t size, const char *name,
                             htnn_net **out);

/* Finds the first section with `tag` in a model the loader accepted: 1 with
 * its payload's offset and length, 0 if there is none. */
int model_find_section(const unsigned char *data, size_t size, uint32_t tag, size_t *at,
                       size_t *length);

#endif
