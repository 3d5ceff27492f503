/* libFuzzer target for the CSV reader alone: the first byte chooses the
 * options (label column, header, delimiter, scaling) and the rest is the
 * file, written to disk since the reader takes a path.  Whatever loads must
 * hold count x width finite features and labels that are class indices
 * (or -1 without a label column); unit scaling must land in [0, 1].
 * SPDX-License-Identifier: MIT */
#include <math.h>
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

static htnn_csv_options options_from(uint8_t b)
{
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    static const char delimiters[4] = {',', ';', '\t', ' '};
    o.label_column = (b & 3) == 3 ? -2 : (int)(b & 3) - 1; /* -1, 0, 1, none */
    o.header = (int)((b >> 2) & 3) - 1;                    /* -1, 0, 1 (and 2: bad) */
    o.delimiter = delimiters[(b >> 4) & 3];
    o.scale = (b >> 6) & 1;
    return o;
}

static void check(const htnn_data *d, const htnn_csv_options *o)
{
    size_t n = htnn_data_count(d), w = htnn_data_width(d);
    const float *x = htnn_data_features((htnn_data *)d);
    const int32_t *y = htnn_data_labels(d);
    if (n == 0 || w == 0 || x == NULL || y == NULL)
        abort();
    for (size_t i = 0; i < n * w; i++)
        if (!isfinite(x[i]) || (o->scale && (x[i] < 0.0f || x[i] > 1.0f)))
            abort();
    for (size_t i = 0; i < n; i++)
        if (o->label_column == -2 ? y[i] != -1 : y[i] < 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    if (size == 0)
        return 0;
    snprintf(path, sizeof path, "/tmp/htnn-fuzz-csv-%ld.csv", (long)getpid());
    if (write_file(path, data + 1, size - 1) != 0)
        return 0;
    htnn_csv_options o = options_from(data[0]);
    htnn_data *d = NULL;
    if (htnn_data_load_csv(path, &o, &d) == HTNN_OK) {
        check(d, &o);
        htnn_data_free(d);
    }
    unlink(path);
    return 0;
}
