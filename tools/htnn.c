/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * htnn.c - main: dispatches to the commands, --help and --version.
 * Exit status: 0 success, 1 runtime failure, 2 usage error, 130 training
 * interrupted by Ctrl-C (the model was still saved).
 */
#include "cli.h"

#include <string.h>

static const char main_help[] =
    "Usage: htnn COMMAND [OPTIONS]\n"
    "\n"
    "Trains and runs hard-threshold neural networks (libhtnn, FTPROP-MB).\n"
    "\n"
    "Commands:\n"
    "  train     train a net and save it:  htnn train --fashion-mnist "
    "--out m.htnn\n"
    "  eval      accuracy and loss of a saved net on labelled data\n"
    "  predict   predicted classes (or logits) of a saved net, one per line\n"
    "  info      describe a saved net (float or packed)\n"
    "  pack      pack a net for fast binary inference: htnn pack m.htnn "
    "m.htnnb\n"
    "  export-c  write a packed net as self-contained C source\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help ('htnn COMMAND --help' for a command)\n"
    "  --version      show the program and library versions\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error, 130 training\n"
    "interrupted (model saved).\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"train", cli_train},
    {"eval", cli_eval},
    {"predict", cli_predict},
    {"info", cli_info},
    {"pack", cli_pack},
    {"export-c", cli_export_c},
    {NULL, NULL}};

static void print_version(void)
{
    printf("htnn %s (libhtnn %s)\n", HTNN_VERSION_STRING,
           htnn_version_string());
}

int main(int argc, char **argv)
{
    const command *c;
    const char *name = argc > 1 ? argv[1] : NULL;
    if (name == NULL) {
        fputs(main_help, stderr);
        return CLI_USAGE;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        fputs(main_help, stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        print_version();
        return CLI_OK;
    }
    for (c = commands; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c->run(argc - 1, argv + 1);
    if (name[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", name);
    return cli_usage_error(NULL, "unknown command '%s'", name);
}
