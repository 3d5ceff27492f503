/* libFuzzer target for the `htnn train` architecture strings: the tool's
 * own parsers (tools/cli_arch.c) for --layers and --arch on arbitrary
 * text.  What they accept must respect the limits, and printing it back in
 * canonical form must parse to the same layers; a refusal must say why.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LAYERS 64
#define MAX_UNITS (1 << 24)
#define TEXT_CAP (MAX_LAYERS * 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends to a bounded text; the caps are large enough never to cut. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static size_t append(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + len, TEXT_CAP - len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= TEXT_CAP - len)
        abort();
    return len + (size_t)n;
}

/* --layers: "none" or "w1,w2,..." */
static void check_layers(const char *text)
{
    size_t w[MAX_LAYERS], w2[MAX_LAYERS], n = 0, n2 = 0, len = 0;
    char again[TEXT_CAP];
    if (!cli_parse_layers(text, MAX_LAYERS, MAX_UNITS, w, &n))
        return;
    if (n > MAX_LAYERS)
        abort();
    snprintf(again, sizeof again, "none");
    for (size_t i = 0; i < n; i++) {
        if (w[i] < 1 || w[i] > MAX_UNITS)
            abort();
        len = append(again, len, "%s%zu", i ? "," : "", w[i]);
    }
    if (!cli_parse_layers(again, MAX_LAYERS, MAX_UNITS, w2, &n2) || n2 != n ||
        memcmp(w, w2, n * sizeof *w) != 0)
        abort();
}

static int spec_ok(const cli_layer_spec *l)
{
    int window = l->kh >= 1 && l->kh <= CLI_ARCH_MAX_WINDOW && l->kw >= 1 &&
                 l->kw <= CLI_ARCH_MAX_WINDOW && l->stride >= 1 &&
                 l->stride <= CLI_ARCH_MAX_WINDOW;
    int units = l->units >= 1 && l->units <= CLI_ARCH_MAX_UNITS;
    switch (l->kind) {
    case HTNN_LAYER_CONV2D: return window && units && l->pad <= CLI_ARCH_MAX_WINDOW;
    case HTNN_LAYER_MAXPOOL2D: return window && l->kh == l->kw;
    case HTNN_LAYER_BATCHNORM: return 1;
    case HTNN_LAYER_DENSE: return units;
    default: return 0;
    }
}

/* One item in canonical form, then its activation. */
static size_t render_spec(char *out, size_t len, const cli_layer_spec *l)
{
    if (l->kind == HTNN_LAYER_CONV2D)
        len = append(out, len, "conv%zux%zu:%zu:s%zu:p%zu", l->kh, l->kw, l->units,
                     l->stride, l->pad);
    if (l->kind == HTNN_LAYER_MAXPOOL2D)
        len = append(out, len, "pool%zu:s%zu", l->kh, l->stride);
    if (l->kind == HTNN_LAYER_BATCHNORM)
        len = append(out, len, "bn");
    if (l->kind == HTNN_LAYER_DENSE)
        len = append(out, len, "dense:%zu", l->units);
    if (l->activation >= 0) {
        len = append(out, len, ",%s", cli_choice_name(cli_activations, l->activation));
        if (l->activation == HTNN_ACT_QRELU)
            len = append(out, len, "%d", l->qrelu_bits);
    }
    return len;
}

/* --arch: "conv3:8,sign,pool2,...,dense:10" */
static void check_arch(const char *text)
{
    cli_layer_spec l[MAX_LAYERS], l2[MAX_LAYERS];
    size_t n = 0, n2 = 0, len = 0;
    char why[128] = "", again[TEXT_CAP] = "";
    if (!cli_parse_arch(text, l, MAX_LAYERS, &n, why, sizeof why)) {
        if (why[0] == '\0' || memchr(why, '\0', sizeof why) == NULL)
            abort();
        return;
    }
    if (n == 0 || n > MAX_LAYERS || l[n - 1].kind != HTNN_LAYER_DENSE)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!spec_ok(&l[i]))
            abort();
        len = append(again, len, "%s", i ? "," : "");
        len = render_spec(again, len, &l[i]);
    }
    if (!cli_parse_arch(again, l2, MAX_LAYERS, &n2, why, sizeof why) || n2 != n ||
        memcmp(l, l2, n * sizeof *l) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_layers(text);
    check_arch(text);
    free(text);
    return 0;
}
