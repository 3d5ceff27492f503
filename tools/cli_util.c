/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_util.c - error messages, the monotonic clock, JSON output and the
 * name tables of the library's enumerations.
 */
#include "cli.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

const cli_choice cli_activations[] = {
    {"sign", HTNN_ACT_SIGN},   {"step", HTNN_ACT_STEP},
    {"qrelu", HTNN_ACT_QRELU}, {"relu", HTNN_ACT_RELU},
    {"identity", HTNN_ACT_IDENTITY}, {NULL, 0}};

const cli_choice cli_losses[] = {
    {"soft-hinge", HTNN_LOSS_SOFT_HINGE},
    {"saturated-hinge", HTNN_LOSS_SATURATED_HINGE},
    {"hinge", HTNN_LOSS_HINGE},
    {"perceptron", HTNN_LOSS_PERCEPTRON},
    {"linear", HTNN_LOSS_LINEAR},
    {NULL, 0}};

const cli_choice cli_outputs[] = {{"softmax", HTNN_OUTPUT_SOFTMAX},
                                  {"hard", HTNN_OUTPUT_HARD_THRESHOLD},
                                  {NULL, 0}};

const char *cli_choice_name(const cli_choice *table, int value)
{
    for (; table->name != NULL; table++)
        if (table->value == value)
            return table->name;
    return "?";
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("htnn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fputs("htnn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (command != NULL)
        fprintf(stderr, "Try 'htnn %s --help' for more information.\n",
                command);
    else
        fputs("Try 'htnn --help' for more information.\n", stderr);
    return CLI_USAGE;
}

int cli_lib_error(htnn_status status, const char *fmt, ...)
{
    va_list ap;
    const char *detail = htnn_last_error();
    fputs("htnn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, ": %s (%s)\n", detail, htnn_strerror(status));
    else
        fprintf(stderr, ": %s\n", htnn_strerror(status));
    return CLI_FAIL;
}

int cli_file_error(htnn_status status, const char *what, const char *path)
{
    const char *detail = htnn_last_error();
    if (detail != NULL && strstr(detail, path) != NULL)
        cli_error("%s: %s (%s)", what, detail, htnn_strerror(status));
    else if (detail != NULL && detail[0] != '\0')
        cli_error("%s '%s': %s (%s)", what, path, detail,
                  htnn_strerror(status));
    else
        cli_error("%s '%s': %s", what, path, htnn_strerror(status));
    return CLI_FAIL;
}

double cli_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", (unsigned)c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}
