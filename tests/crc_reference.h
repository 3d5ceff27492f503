/* The CRC-32 of the model and packed-model files (IEEE, as in zlib),
 * bit by bit: an independent reference for the library's table-driven one,
 * and what tests and fuzz targets use to re-seal edited files.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_TESTS_CRC_REFERENCE_H
#define HTNN_TESTS_CRC_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

static uint32_t crc32_reference(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

#endif
