/* libFuzzer target: the model loader must reject any bad buffer cleanly,
 * and whatever it accepts must save back and predict without faults.  Each
 * input is tried as it is (the checksum must catch corruption) and with its
 * last 4 bytes replaced by the CRC-32 of the rest, so that mutations also
 * reach the second pass behind the checksum (values, building the net).
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>

#include <htnn/htnn.h>

#include "fuzz_crc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const void *data, size_t size)
{
    htnn_net *net = NULL;
    if (htnn_net_load_buffer(data, size, &net) != HTNN_OK)
        return;
    void *again = NULL;
    size_t again_size = 0;
    if (htnn_net_save_buffer(net, &again, &again_size) != HTNN_OK)
        abort(); /* a net the loader accepted must save */
    htnn_free(again);
    size_t width = htnn_net_input_width(net);
    if (width <= 4096 && htnn_net_layer_count(net) > 0) {
        float *x = calloc(width, sizeof *x);
        int32_t cls;
        if (x)
            htnn_net_predict(net, x, 1, &cls);
        free(x);
    }
    htnn_net_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    unsigned char *fixed = copy_with_crc(data, size);
    if (fixed != NULL)
        exercise(fixed, size);
    free(fixed);
    return 0;
}
