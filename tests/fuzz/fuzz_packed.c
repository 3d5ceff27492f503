/* libFuzzer target: the packed-model loader must reject any bad buffer
 * cleanly, and whatever it accepts must save back identically, predict and
 * export C without faults.  The input's last 4 bytes are replaced by the
 * CRC-32 of the rest first, so mutations reach the parser behind the
 * checksum instead of all failing there.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

#include "fuzz_crc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = copy_with_crc(data, size);
    if (buf == NULL)
        return 0;
    htnn_packed *p = NULL;
    if (htnn_packed_load_buffer(buf, size, &p) != HTNN_OK) {
        free(buf);
        return 0;
    }
    void *again = NULL;
    size_t again_size = 0;
    if (htnn_packed_save_buffer(p, &again, &again_size) != HTNN_OK || again_size != size ||
        memcmp(again, buf, size) != 0)
        abort(); /* what the loader accepts must save back to the same bytes */
    htnn_free(again);
    size_t width = htnn_packed_input_width(p);
    if (width <= 4096) {
        float *x = calloc(width, sizeof *x);
        int32_t cls;
        if (x)
            htnn_packed_predict(p, x, 1, &cls);
        free(x);
    }
    char *text = NULL;
    size_t text_size = 0;
    if (htnn_packed_export_c(p, "fuzz", &text, &text_size) == HTNN_OK)
        htnn_free(text);
    htnn_packed_free(p);
    free(buf);
    return 0;
}
