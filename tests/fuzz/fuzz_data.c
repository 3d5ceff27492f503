/* libFuzzer target for the IDX and CSV readers: the input is written to a
 * file (the readers take paths) and read as IDX images, as IDX labels with
 * images, and as CSV with the first byte choosing the options.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <htnn/htnn.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(data, 1, size, f);
    return fclose(f) == 0 && n == size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/htnn-fuzz-%ld.bin", (long)getpid());
    if (write_file(path, data, size) != 0)
        return 0;
    htnn_data *d = NULL;
    if (htnn_data_load_idx(path, NULL, HTNN_SCALE_UNIT, &d) == HTNN_OK)
        htnn_data_free(d);
    d = NULL;
    if (htnn_data_load_idx(path, path, HTNN_SCALE_NONE, &d) == HTNN_OK)
        htnn_data_free(d);
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    if (size > 0) {
        o.label_column = (data[0] & 3) == 3 ? -1 : (int)(data[0] & 3) - 1;
        o.header = (int)((data[0] >> 2) & 1);
        o.delimiter = (data[0] & 8) ? ';' : ',';
        o.scale = (data[0] >> 4) & 1;
    }
    d = NULL;
    if (htnn_data_load_csv(path, &o, &d) == HTNN_OK)
        htnn_data_free(d);
    unlink(path);
    return 0;
}
