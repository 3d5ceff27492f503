/* Internal: model-file records of the layer kinds added in format version 2
 * (conv2d, max-pool, batch norm); model_io.c keeps the header, the dense
 * record and the sections.  doc/file-format.md describes the bytes.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_MODEL_RECORDS_H
#define HTNN_LIB_MODEL_RECORDS_H

#include <stdint.h>

#include "bytes.h"
#include "net_internal.h"

/* Bytes of the layer's whole record (12-byte head + payload); 0 for a
 * dense layer, which model_io.c writes itself. */
uint64_t record_bytes(const htnn_layer *layer);

/* Writes the record of a non-dense layer (record_bytes(layer) bytes). */
void record_write(byte_writer *w, const htnn_layer *layer);

/* Appends the layer a non-dense record describes to `net`, with its
 * parameters, after checking every field; `payload` holds `length` bytes.
 * `binary` is the layer's entry of the binary-weights section (0 without
 * one).  Errors are HTNN_EFORMAT with the file's `name` and the layer
 * `index`, or HTNN_ENOMEM. */
htnn_status record_add(htnn_net *net, uint32_t kind, const unsigned char *payload,
                       uint64_t length, const char *name, size_t index, uint32_t binary);

#endif
