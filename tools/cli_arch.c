/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_arch.c - the architecture string of `htnn train --layers`.  Kept
 * apart from the option handling so that the fuzz target
 * (tests/fuzz/fuzz_arch.c) calls exactly the parser the tool uses.
 */
#include "cli.h"

#include <string.h>

int cli_parse_layers(const char *text, size_t max_layers, int max_units,
                     size_t *widths, size_t *count)
{
    *count = 0;
    if (strcmp(text, "none") == 0)
        return 1;
    for (const char *s = text;; s++) {
        char piece[16];
        size_t len = strcspn(s, ",");
        int units = 0;
        if (len == 0 || len >= sizeof piece || *count == max_layers)
            return 0;
        memcpy(piece, s, len);
        piece[len] = '\0';
        if (piece[0] < '0' || piece[0] > '9' ||
            !cli_parse_int(piece, 1, max_units, &units))
            return 0;
        widths[(*count)++] = (size_t)units;
        s += len;
        if (*s == '\0')
            return 1;
    }
}

/* ---- htnn train --arch ------------------------------------------------- */

/* A bounded decimal at *s (1..max); advances *s.  0 on failure. */
static int take_number(const char **s, size_t max, size_t *out)
{
    size_t v = 0;
    if (**s < '0' || **s > '9')
        return 0;
    for (; **s >= '0' && **s <= '9'; (*s)++) {
        v = v * 10 + (size_t)(**s - '0');
        if (v > max)
            return 0;
    }
    *out = v;
    return v >= 1;
}

/* Consumes `word` at *s if it is there. */
static int take(const char **s, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(*s, word, n) != 0)
        return 0;
    *s += n;
    return 1;
}

/* Optional ":s<stride>" and (for conv) ":p<padding>" suffixes. */
static int take_suffixes(const char **s, cli_layer_spec *l, int padding_allowed)
{
    while (**s == ':') {
        size_t v = 0;
        if ((*s)[1] == 's') {
            *s += 2;
            if (!take_number(s, CLI_ARCH_MAX_WINDOW, &v))
                return 0;
            l->stride = v;
        } else if ((*s)[1] == 'p' && padding_allowed) {
            *s += 2;
            if (**s == '0') { /* padding may be 0 */
                (*s)++;
                l->pad = 0;
                continue;
            }
            if (!take_number(s, CLI_ARCH_MAX_WINDOW, &v))
                return 0;
            l->pad = v;
        } else {
            return 0;
        }
    }
    return 1;
}

/* conv<K>[x<K>]:<channels>[:s<S>][:p<P>] */
static int parse_conv(const char *s, cli_layer_spec *l)
{
    size_t kw;
    l->kind = HTNN_LAYER_CONV2D;
    if (!take_number(&s, CLI_ARCH_MAX_WINDOW, &l->kh))
        return 0;
    kw = l->kh;
    if (*s == 'x' && (s++, !take_number(&s, CLI_ARCH_MAX_WINDOW, &kw)))
        return 0;
    l->kw = kw;
    l->stride = 1;
    l->pad = ((l->kh < l->kw ? l->kh : l->kw) - 1) / 2; /* "same" for odd kernels */
    if (*s++ != ':' || !take_number(&s, CLI_ARCH_MAX_UNITS, &l->units))
        return 0;
    return take_suffixes(&s, l, 1) && *s == '\0';
}

/* pool<K>[:s<S>] */
static int parse_pool(const char *s, cli_layer_spec *l)
{
    l->kind = HTNN_LAYER_MAXPOOL2D;
    if (!take_number(&s, CLI_ARCH_MAX_WINDOW, &l->kh))
        return 0;
    l->kw = l->kh;
    l->stride = l->kh;
    return take_suffixes(&s, l, 0) && *s == '\0';
}

/* An activation name (qrelu may carry its bits: qrelu2), or -1. */
static int parse_activation(const char *s, int *bits)
{
    for (const cli_choice *c = cli_activations; c->name; c++) {
        size_t n = strlen(c->name);
        if (strncmp(s, c->name, n) != 0)
            continue;
        if (s[n] == '\0')
            return c->value;
        if (c->value == HTNN_ACT_QRELU && s[n] >= '1' && s[n] <= '8' && s[n + 1] == '\0') {
            *bits = s[n] - '0';
            return c->value;
        }
    }
    return -1;
}

static int parse_item(const char *s, cli_layer_spec *l)
{
    memset(l, 0, sizeof *l);
    l->activation = -1;
    l->qrelu_bits = 2;
    if (take(&s, "conv"))
        return parse_conv(s, l);
    if (take(&s, "pool"))
        return parse_pool(s, l);
    if (strcmp(s, "bn") == 0) {
        l->kind = HTNN_LAYER_BATCHNORM;
        return 1;
    }
    if (take(&s, "dense:")) {
        l->kind = HTNN_LAYER_DENSE;
        return take_number(&s, CLI_ARCH_MAX_UNITS, &l->units) && *s == '\0';
    }
    return 0;
}

int cli_parse_arch(const char *text, cli_layer_spec *layers, size_t max_layers,
                   size_t *count, char *why, size_t why_len)
{
    *count = 0;
    for (const char *s = text;; s++) {
        char piece[48];
        size_t len = strcspn(s, ",");
        int bits = 2, act;
        if (len == 0 || len >= sizeof piece) {
            snprintf(why, why_len, "empty or overlong item at '%.20s'", s);
            return 0;
        }
        memcpy(piece, s, len);
        piece[len] = '\0';
        if (strcmp(piece, "flatten") == 0) {
            /* NHWC rows are already flat: accepted for readability */
        } else if ((act = parse_activation(piece, &bits)) >= 0) {
            if (*count == 0 || layers[*count - 1].activation >= 0) {
                snprintf(why, why_len, "activation '%s' does not follow a layer without one",
                         piece);
                return 0;
            }
            layers[*count - 1].activation = act;
            layers[*count - 1].qrelu_bits = bits;
        } else if (*count == max_layers) {
            snprintf(why, why_len, "more than %zu layers", max_layers);
            return 0;
        } else if (!parse_item(piece, &layers[*count])) {
            snprintf(why, why_len, "cannot read '%s'", piece);
            return 0;
        } else {
            (*count)++;
        }
        s += len;
        if (*s == '\0')
            break;
    }
    if (*count == 0 || layers[*count - 1].kind != HTNN_LAYER_DENSE) {
        snprintf(why, why_len, "the last layer must be dense:<classes>");
        return 0;
    }
    return 1;
}
