/* The CRC-32 (IEEE, as in zlib) that closes the model and packed-model
 * files: the fuzz targets recompute it so that mutated inputs get past the
 * checksum to the parsers behind it.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_FUZZ_CRC_H
#define HTNN_FUZZ_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../crc_reference.h"

/* A malloc'd copy of data whose last 4 bytes are the little-endian CRC-32
 * of the rest (inputs shorter than 4 bytes are copied as they are). */
static unsigned char *copy_with_crc(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, data, size);
    if (size >= 4) {
        uint32_t crc = crc32_reference(buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf[size - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
    }
    return buf;
}

#endif
