/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli.h - declarations shared by the tool's source files (not installed).
 * The tool uses only the public API in <htnn/htnn.h>.
 */
#ifndef HTNN_CLI_H
#define HTNN_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <htnn/htnn.h>

#if defined(__GNUC__)
#define CLI_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CLI_PRINTF(fmt, args)
#endif

/* Exit statuses, and the pseudo-statuses the option parsers use. */
enum {
    CLI_OK = 0,          /* success */
    CLI_FAIL = 1,        /* runtime failure (I/O, library error, bad data) */
    CLI_USAGE = 2,       /* bad command line */
    CLI_INTERRUPTED = 130, /* training stopped by SIGINT (model saved) */
    CLI_HELP = -1,       /* --help was printed: exit 0 */
    CLI_NOT_MINE = -2    /* option not handled by this parser */
};

/* ---- messages, time, JSON (cli_util.c) -------------------------------- */

/* Prints "htnn: <message>" on stderr. */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* Prints "htnn: <message>" and a hint to run `htnn <command> --help`;
 * returns CLI_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    CLI_PRINTF(2, 3);
/* Prints "htnn: <message>: <htnn_last_error()> (<htnn_strerror(status)>)";
 * returns CLI_FAIL. */
int cli_lib_error(htnn_status status, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Like cli_lib_error for a failure about the file `path`: "htnn: <what>
 * '<path>': <detail>", without repeating the path when the library's
 * detail already names it; returns CLI_FAIL. */
int cli_file_error(htnn_status status, const char *what, const char *path);
/* Seconds on the monotonic clock. */
double cli_now(void);
/* Writes a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
/* Writes a JSON number, or null when v is not finite. */
void cli_json_number(FILE *f, double v);

/* A name <-> enum value table, terminated by a NULL name. */
typedef struct cli_choice {
    const char *name;
    int value;
} cli_choice;

extern const cli_choice cli_activations[];
extern const cli_choice cli_losses[];
extern const cli_choice cli_outputs[];
/* The name of `value` in `table`, or "?" when it is not listed. */
const char *cli_choice_name(const cli_choice *table, int value);

/* ---- command-line parsing (cli_args.c) -------------------------------- */

typedef struct cli_parser {
    int argc;
    char **argv;
    int pos;                  /* next argv index */
    int options_done;         /* "--" seen: everything after is positional */
    const char *command;      /* for messages, e.g. "train" */
    const char *positional;   /* current argument when it is not an option */
    char option[48];          /* current option name, e.g. "--lr" */
    const char *inline_value; /* text after '=' in "--lr=0.1", or NULL */
    const char *value;        /* the value last taken by cli_value() */
} cli_parser;

void cli_parser_init(cli_parser *p, const char *command, int argc,
                     char **argv, int first);
/* Moves to the next argument: returns 0 at the end, else 1 with either
 * p->positional set (an operand) or p->option set (and p->positional NULL). */
int cli_parser_next(cli_parser *p);
/* 1 if the current option is `name`. */
int cli_is(const cli_parser *p, const char *name);
/* 1 if the current option is --help or -h. */
int cli_is_help(const cli_parser *p);
/* The current option's value (inline or the next argument). */
int cli_value(cli_parser *p, const char **out);
/* Checks that a flag option was not given a value ("--quiet=1"). */
int cli_flag(cli_parser *p);
/* Reports the current option as unknown; returns CLI_USAGE. */
int cli_unknown(const cli_parser *p);
/* Reports an unexpected operand; returns CLI_USAGE. */
int cli_extra_operand(const cli_parser *p);
/* Reports that the value just taken must be `what`; returns CLI_USAGE. */
int cli_bad_value(const cli_parser *p, const char *what);
/* Takes the value and parses it strictly as a non-negative decimal integer
 * in [min, max]. */
int cli_size_value(cli_parser *p, size_t min, size_t max, size_t *out);
int cli_int_value(cli_parser *p, int min, int max, int *out);
/* Strict parse of a decimal int in [min, max]: 1 on success, else 0. */
int cli_parse_int(const char *text, int min, int max, int *out);

/* ---- the architecture string (cli_arch.c) ------------------------------ */

/* `htnn train --layers`: "none" or comma-separated hidden widths, each in
 * 1..max_units, at most max_layers of them, into widths[0..*count).
 * Returns 1, or 0 for a malformed string. */
int cli_parse_layers(const char *text, size_t max_layers, int max_units,
                     size_t *widths, size_t *count);

/* `htnn train --arch`: the whole net as comma-separated items (doc/htnn.1):
 *   conv<K>[x<K>]:<channels>[:s<stride>][:p<padding>]   (padding default
 *       (K-1)/2, stride 1), pool<K>[:s<stride>] (stride default K), bn,
 *   dense:<units>, flatten (no-op), and activation names (sign, step, relu,
 *   identity, qrelu[<bits>]) that set the activation of the item before
 *   them; a layer without one is linear.  The last layer must be dense. */
#define CLI_ARCH_MAX_WINDOW 64
#define CLI_ARCH_MAX_UNITS 1000000
typedef struct cli_layer_spec {
    int kind;         /* htnn_layer_kind */
    size_t units;     /* dense units or conv channels */
    size_t kh, kw, stride, pad;
    int activation;   /* htnn_activation, -1 when not given */
    int qrelu_bits;
} cli_layer_spec;

/* Fills layers[0..*count) (at most max_layers); returns 1, or 0 with a
 * reason in `why`. */
int cli_parse_arch(const char *text, cli_layer_spec *layers, size_t max_layers,
                   size_t *count, char *why, size_t why_len);
int cli_u64_value(cli_parser *p, uint64_t *out);
/* Takes the value and parses it strictly as a finite number; range checks
 * are the caller's (with cli_bad_value). */
int cli_double_value(cli_parser *p, double *out);
/* Takes the value and looks it up in `table`. */
int cli_choice_value(cli_parser *p, const cli_choice *table, int *out);

/* ---- data sets (cli_data.c) ------------------------------------------- */

typedef enum cli_data_role {
    CLI_DATA_TRAIN,   /* --train-* and --test-* options */
    CLI_DATA_EVAL,    /* --images/--labels/--csv, labels required */
    CLI_DATA_PREDICT  /* --images/--csv, labels not needed */
} cli_data_role;

typedef struct cli_data_opts {
    cli_data_role role;
    int fashion;             /* --fashion-mnist */
    const char *images;      /* --train-images or --images */
    const char *labels;      /* --train-labels or --labels */
    const char *csv;         /* --train-csv or --csv */
    const char *test_images; /* train only */
    const char *test_labels;
    const char *test_csv;
    htnn_csv_options csv_opts;
    size_t limit;            /* --limit, 0 = all */
    size_t test_limit;       /* --test-limit, 0 = all */
} cli_data_opts;

void cli_data_opts_init(cli_data_opts *d, cli_data_role role);
/* Handles the current option if it is a data option: CLI_OK, CLI_USAGE, or
 * CLI_NOT_MINE. */
int cli_data_option(cli_parser *p, cli_data_opts *d);
/* Checks the combination of data options once parsing is done. */
int cli_data_check(const cli_data_opts *d, const char *command);
/* Loads the main data set (training data for train) with --limit applied. */
int cli_data_load(const cli_data_opts *d, htnn_data **out);
/* 1 if the main data comes from IDX files (--fashion-mnist, --images or
 * --train-images), which can be read in parts. */
int cli_data_is_idx(const cli_data_opts *d);
/* IDX main data: its example count from the header, --limit applied. */
int cli_data_count(const cli_data_opts *d, size_t *count);
/* IDX main data: only examples [first, first + count) (htnn train --mpi:
 * each rank reads its shard). */
int cli_data_load_rows(const cli_data_opts *d, size_t first, size_t count,
                       htnn_data **out);
/* Loads the test data of train (*out = NULL when there is none). */
int cli_data_load_test(const cli_data_opts *d, htnn_data **out);
/* A short description of the main or test data source for messages. */
const char *cli_data_name(const cli_data_opts *d, int test);
/* Fails (CLI_FAIL, with a message naming both widths) unless the data's
 * width equals the model's input width. */
int cli_data_check_width(const htnn_data *data, const char *data_name,
                         size_t model_width, const char *model_name);
/* Fails unless every label is < classes (and the data is labelled). */
int cli_data_check_labels(const htnn_data *data, const char *data_name,
                          size_t classes);
/* Mean loss and accuracy of `net` on labelled `data`, in chunks. */
int cli_evaluate(htnn_net *net, htnn_data *data, double *loss,
                 double *accuracy);

/* ---- training progress (cli_progress.c) ------------------------------ */

/* What the progress callback keeps between batches. */
typedef struct cli_progress {
    int tty;
    int quiet;
    int has_val;
    const char *val_name; /* "val" (default), or "test" for --test-each-epoch */
    int bar_visible;
    size_t batch_size;
    size_t train_count;
    double last_time;      /* time of the previous callback */
    double last_draw;      /* time the bar was last drawn */
    double epoch_seconds;  /* training time of the current epoch so far */
    double train_seconds;  /* training time of the whole fit so far */
    size_t samples_done;   /* examples trained so far (by this process) */
    size_t resumed_samples; /* examples a resumed fit had trained before */
    size_t last_epoch;     /* 0-based epoch and batch of the last callback */
    size_t last_batch;
    size_t last_batches;
    struct sigaction old_sigint;
} cli_progress;

void cli_progress_init(cli_progress *ps, int quiet, int has_val,
                       size_t batch_size, size_t train_count);
/* Installs the SIGINT handler and starts the clock, just before the fit. */
void cli_progress_start(cli_progress *ps);
/* Restores SIGINT and ends an unfinished progress line. */
void cli_progress_finish(cli_progress *ps);
/* The htnn_progress_fn: draws progress, accounts training time (excluding
 * validation passes) and returns 1 once SIGINT was received. */
int cli_progress_callback(const htnn_progress *pr, void *user);
/* Samples per second of training time so far. */
double cli_progress_rate(const cli_progress *ps);

/* ---- commands ---------------------------------------------------------- */

int cli_train(int argc, char **argv);   /* cli_train.c */
int cli_eval(int argc, char **argv);    /* cli_model.c */
int cli_predict(int argc, char **argv); /* cli_model.c */
int cli_info(int argc, char **argv);    /* cli_model.c */
int cli_pack(int argc, char **argv);    /* cli_pack.c */
int cli_export_c(int argc, char **argv); /* cli_pack.c */

/* ---- packed models (cli_pack.c) ---------------------------------------- */

/* 1 if `path` starts with the packed model magic "HTNNPACK". */
int cli_is_packed(const char *path);
/* `htnn predict` on a packed model, on `threads` threads (0 or 1: one). */
int cli_packed_predict(const char *model, const cli_data_opts *data_opts,
                       const char *output, int logits, int threads);
/* `htnn info` on a packed model. */
int cli_packed_info(const char *model, int json);
/* Bytes of the packed form of a net, or 0 if it cannot be packed. */
size_t cli_packed_size(const htnn_net *net);

#endif /* HTNN_CLI_H */
