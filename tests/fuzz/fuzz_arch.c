/* libFuzzer target for the `htnn train --layers` architecture string: the
 * tool's own parser (tools/cli_arch.c) on arbitrary text.  What it accepts
 * must respect the limits, and printing the widths back must parse to the
 * same widths.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LAYERS 64
#define MAX_UNITS (1 << 24)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "none" or "w1,w2,...": the canonical form of parsed widths. */
static void render(const size_t *w, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (n == 0)
        snprintf(out, cap, "none");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%zu", i ? "," : "", w[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), again[MAX_LAYERS * 10 + 8];
    size_t w[MAX_LAYERS], w2[MAX_LAYERS], n = 0, n2 = 0;
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (cli_parse_layers(text, MAX_LAYERS, MAX_UNITS, w, &n)) {
        if (n > MAX_LAYERS)
            abort();
        for (size_t i = 0; i < n; i++)
            if (w[i] < 1 || w[i] > MAX_UNITS)
                abort();
        render(w, n, again, sizeof again);
        if (!cli_parse_layers(again, MAX_LAYERS, MAX_UNITS, w2, &n2) || n2 != n ||
            memcmp(w, w2, n * sizeof *w) != 0)
            abort();
    }
    free(text);
    return 0;
}
