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

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* A malloc'd copy of data whose last 4 bytes are the little-endian CRC-32
 * of the rest (inputs shorter than 4 bytes are copied as they are). */
static unsigned char *copy_with_crc(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, data, size);
    if (size >= 4) {
        uint32_t crc = crc32_ieee(buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf[size - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
    }
    return buf;
}

#endif
