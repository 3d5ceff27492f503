/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_args.c - a small long-option parser ("--name value", "--name=value",
 * "--" ends the options) and strict number parsing.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_parser_init(cli_parser *p, const char *command, int argc,
                     char **argv, int first)
{
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->pos = first;
    p->command = command;
}

/* Splits "--name=value" into p->option and p->inline_value. */
static void set_option(cli_parser *p, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof p->option)
        len = sizeof p->option - 1; /* an over-long name is unknown anyway */
    memcpy(p->option, arg, len);
    p->option[len] = '\0';
    p->inline_value = eq != NULL ? eq + 1 : NULL;
}

int cli_parser_next(cli_parser *p)
{
    const char *arg;
    p->positional = NULL;
    p->option[0] = '\0';
    p->inline_value = NULL;
    if (p->pos >= p->argc)
        return 0;
    arg = p->argv[p->pos++];
    if (!p->options_done && strcmp(arg, "--") == 0) {
        p->options_done = 1;
        return cli_parser_next(p);
    }
    if (p->options_done || arg[0] != '-' || arg[1] == '\0')
        p->positional = arg;
    else
        set_option(p, arg);
    return 1;
}

int cli_is(const cli_parser *p, const char *name)
{
    return p->positional == NULL && strcmp(p->option, name) == 0;
}

int cli_is_help(const cli_parser *p)
{
    return cli_is(p, "--help") || cli_is(p, "-h");
}

int cli_value(cli_parser *p, const char **out)
{
    if (p->inline_value != NULL) {
        p->value = p->inline_value;
    } else if (p->pos < p->argc) {
        p->value = p->argv[p->pos++];
    } else {
        return cli_usage_error(p->command, "%s: option %s needs a value",
                               p->command, p->option);
    }
    *out = p->value;
    return CLI_OK;
}

int cli_flag(cli_parser *p)
{
    if (p->inline_value != NULL)
        return cli_usage_error(p->command, "%s: option %s takes no value",
                               p->command, p->option);
    return CLI_OK;
}

int cli_unknown(const cli_parser *p)
{
    return cli_usage_error(p->command, "%s: unknown option '%s'", p->command,
                           p->option);
}

int cli_extra_operand(const cli_parser *p)
{
    return cli_usage_error(p->command, "%s: unexpected argument '%s'",
                           p->command, p->positional);
}

int cli_bad_value(const cli_parser *p, const char *what)
{
    return cli_usage_error(p->command, "%s: %s '%s': expected %s", p->command,
                           p->option, p->value != NULL ? p->value : "", what);
}

/* Strict decimal parse: digits only, no sign, no blanks, no overflow. */
static int parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    if (!isdigit((unsigned char)text[0]))
        return 0;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return 0;
    if ((unsigned long long)(uint64_t)v != v)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

int cli_u64_value(cli_parser *p, uint64_t *out)
{
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (!parse_u64(text, out))
        return cli_bad_value(p, "a non-negative integer");
    return CLI_OK;
}

int cli_size_value(cli_parser *p, size_t min, size_t max, size_t *out)
{
    uint64_t v;
    char what[96];
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    snprintf(what, sizeof what, "an integer from %zu to %zu", min, max);
    if (!parse_u64(text, &v) || v < min || v > max)
        return cli_bad_value(p, what);
    *out = (size_t)v;
    return CLI_OK;
}

int cli_parse_int(const char *text, int min, int max, int *out)
{
    char *end = NULL;
    long v;
    if (text[0] == '\0' || isspace((unsigned char)text[0]))
        return 0;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return 0;
    *out = (int)v;
    return 1;
}

int cli_int_value(cli_parser *p, int min, int max, int *out)
{
    char what[96];
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    snprintf(what, sizeof what, "an integer from %d to %d", min, max);
    if (!cli_parse_int(text, min, max, out))
        return cli_bad_value(p, what);
    return CLI_OK;
}

int cli_double_value(cli_parser *p, double *out)
{
    char *end = NULL;
    double v;
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (text[0] == '\0' || isspace((unsigned char)text[0]))
        return cli_bad_value(p, "a number");
    errno = 0;
    v = strtod(text, &end);
    if (errno == ERANGE || end == text || *end != '\0' || !isfinite(v))
        return cli_bad_value(p, "a finite number");
    *out = v;
    return CLI_OK;
}

int cli_choice_value(cli_parser *p, const cli_choice *table, int *out)
{
    char what[160];
    size_t used = 0;
    const cli_choice *c;
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    for (c = table; c->name != NULL; c++) {
        if (strcmp(c->name, text) == 0) {
            *out = c->value;
            return CLI_OK;
        }
    }
    what[0] = '\0';
    for (c = table; c->name != NULL && used < sizeof what; c++) {
        int n = snprintf(what + used, sizeof what - used, "%s%s",
                         c == table ? "one of " : ", ", c->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return cli_bad_value(p, what);
}
