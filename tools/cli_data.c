/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_data.c - data options shared by train, eval and predict, loading IDX
 * and CSV files (and the installed Fashion-MNIST), and checks of widths and
 * labels against a model.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FASHION_ENV "HTNN_FASHION_MNIST_DIR"
#define EVAL_CHUNK 1000

void cli_data_opts_init(cli_data_opts *d, cli_data_role role)
{
    const htnn_csv_options csv = HTNN_CSV_OPTIONS_INIT;
    memset(d, 0, sizeof *d);
    d->role = role;
    d->csv_opts = csv;
}

/* --label-column N | last | none */
static int label_column_value(cli_parser *p, int *out)
{
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (strcmp(text, "last") == 0)
        *out = -1;
    else if (strcmp(text, "none") == 0)
        *out = -2;
    else if (!cli_parse_int(text, 0, 1 << 20, out))
        return cli_bad_value(p, "a column number from 0, 'last' or 'none'");
    return CLI_OK;
}

/* --delimiter C, where C is one character, "tab" or "\t". */
static int delimiter_value(cli_parser *p, char *out)
{
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (strcmp(text, "tab") == 0 || strcmp(text, "\\t") == 0)
        *out = '\t';
    else if (text[0] != '\0' && text[1] == '\0' && text[0] != '\n' &&
             text[0] != '"')
        *out = text[0];
    else
        return cli_bad_value(p, "a single character (or 'tab')");
    return CLI_OK;
}

static int header_value(cli_parser *p, int *out)
{
    static const cli_choice headers[] = {
        {"yes", 1}, {"no", 0}, {"auto", -1}, {NULL, 0}};
    return cli_choice_value(p, headers, out);
}

/* The options every data role accepts: CSV details and --limit. */
static int common_option(cli_parser *p, cli_data_opts *d)
{
    if (cli_is(p, "--fashion-mnist")) {
        d->fashion = 1;
        return cli_flag(p);
    }
    if (cli_is(p, "--label-column"))
        return label_column_value(p, &d->csv_opts.label_column);
    if (cli_is(p, "--csv-header"))
        return header_value(p, &d->csv_opts.header);
    if (cli_is(p, "--delimiter"))
        return delimiter_value(p, &d->csv_opts.delimiter);
    if (cli_is(p, "--scale")) {
        d->csv_opts.scale = HTNN_SCALE_UNIT;
        return cli_flag(p);
    }
    if (cli_is(p, "--limit"))
        return cli_size_value(p, 1, SIZE_MAX, &d->limit);
    return CLI_NOT_MINE;
}

static int train_option(cli_parser *p, cli_data_opts *d)
{
    if (cli_is(p, "--train-images"))
        return cli_value(p, &d->images);
    if (cli_is(p, "--train-labels"))
        return cli_value(p, &d->labels);
    if (cli_is(p, "--train-csv"))
        return cli_value(p, &d->csv);
    if (cli_is(p, "--test-images"))
        return cli_value(p, &d->test_images);
    if (cli_is(p, "--test-labels"))
        return cli_value(p, &d->test_labels);
    if (cli_is(p, "--test-csv"))
        return cli_value(p, &d->test_csv);
    if (cli_is(p, "--test-limit"))
        return cli_size_value(p, 1, SIZE_MAX, &d->test_limit);
    return CLI_NOT_MINE;
}

static int use_option(cli_parser *p, cli_data_opts *d)
{
    if (cli_is(p, "--images"))
        return cli_value(p, &d->images);
    if (cli_is(p, "--labels") && d->role == CLI_DATA_EVAL)
        return cli_value(p, &d->labels);
    if (cli_is(p, "--csv"))
        return cli_value(p, &d->csv);
    return CLI_NOT_MINE;
}

int cli_data_option(cli_parser *p, cli_data_opts *d)
{
    int rc = common_option(p, d);
    if (rc != CLI_NOT_MINE)
        return rc;
    if (d->role == CLI_DATA_TRAIN)
        return train_option(p, d);
    return use_option(p, d);
}

int cli_data_check(const cli_data_opts *d, const char *command)
{
    int train = d->role == CLI_DATA_TRAIN;
    int sources = (d->fashion != 0) + (d->images != NULL) + (d->csv != NULL);
    int test_sources = (d->test_images != NULL) + (d->test_csv != NULL);
    const char *img = train ? "--train-images" : "--images";
    const char *lab = train ? "--train-labels" : "--labels";
    const char *csv = train ? "--train-csv" : "--csv";

    if (sources == 0)
        return cli_usage_error(command, "%s: no data: give --fashion-mnist, "
                               "%s%s or %s", command, img,
                               d->role == CLI_DATA_PREDICT ? "" : " and labels",
                               csv);
    if (sources > 1)
        return cli_usage_error(command, "%s: give only one of --fashion-mnist,"
                               " %s and %s", command, img, csv);
    if (d->labels != NULL && d->images == NULL)
        return cli_usage_error(command, "%s: %s needs %s", command, lab, img);
    if (d->images != NULL && d->labels == NULL && d->role != CLI_DATA_PREDICT)
        return cli_usage_error(command, "%s: %s needs %s", command, img, lab);
    if (test_sources > 1)
        return cli_usage_error(command, "%s: give only one of --test-images "
                               "and --test-csv", command);
    if (d->test_images != NULL && d->test_labels == NULL)
        return cli_usage_error(command, "%s: --test-images needs "
                               "--test-labels", command);
    if (d->test_labels != NULL && d->test_images == NULL)
        return cli_usage_error(command, "%s: --test-labels needs "
                               "--test-images", command);
    if (d->fashion && test_sources > 0)
        return cli_usage_error(command, "%s: --fashion-mnist brings its own "
                               "test set; drop --test-images/--test-csv",
                               command);
    if (d->test_csv != NULL && d->csv == NULL)
        return cli_usage_error(command, "%s: --test-csv goes with "
                               "--train-csv", command);
    if (d->test_images != NULL && d->images == NULL)
        return cli_usage_error(command, "%s: --test-images goes with "
                               "--train-images", command);
    return CLI_OK;
}

static const char *fashion_dir(void)
{
    const char *dir = getenv(FASHION_ENV);
    return dir != NULL && dir[0] != '\0' ? dir : FASHION_DEFAULT_DIR;
}

/* The IDX files of a data set: the user's, or a Fashion-MNIST split's. */
typedef struct idx_files {
    const char *images;
    const char *labels;      /* may be NULL */
    const char *split;       /* Fashion-MNIST's "train" or "t10k", else NULL */
    char paths[2][4096];     /* Fashion-MNIST's file names */
} idx_files;

/* Fashion-MNIST's split "train" or "t10k" in fashion_dir(). */
static int fashion_files(const char *split, idx_files *f)
{
    const char *dir = fashion_dir();
    int n1 = snprintf(f->paths[0], sizeof f->paths[0],
                      "%s/%s-images-idx3-ubyte.gz", dir, split);
    int n2 = snprintf(f->paths[1], sizeof f->paths[1],
                      "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof f->paths[0] ||
        (size_t)n2 >= sizeof f->paths[1]) {
        cli_error("%s is too long", FASHION_ENV);
        return CLI_FAIL;
    }
    f->images = f->paths[0];
    f->labels = f->paths[1];
    f->split = split;
    return CLI_OK;
}

static void user_files(const char *images, const char *labels, idx_files *f)
{
    f->images = images;
    f->labels = labels;
    f->split = NULL;
}

/* The main data's IDX files (train: the training set). */
static int main_files(const cli_data_opts *d, idx_files *f)
{
    if (d->fashion)
        return fashion_files(d->role == CLI_DATA_TRAIN ? "train" : "t10k", f);
    user_files(d->images, d->labels, f);
    return CLI_OK;
}

/* Reports a failed read of the files, naming the one at fault. */
static int idx_failed(htnn_status st, const idx_files *f)
{
    if (f->split != NULL)
        return cli_lib_error(st, "cannot load Fashion-MNIST '%s' from %s "
                             "(install dataset-fashion-mnist or set %s)",
                             f->split, fashion_dir(), FASHION_ENV);
    return cli_file_error(st, "cannot load IDX data",
                          f->labels != NULL &&
                                  strstr(htnn_last_error(), f->labels) != NULL
                              ? f->labels
                              : f->images);
}

/* Reads the files whole, or examples rows[0] .. rows[0] + rows[1]. */
static int read_idx(const idx_files *f, const size_t *rows, htnn_data **out)
{
    htnn_status st =
        rows != NULL ? htnn_data_load_idx_rows(f->images, f->labels, HTNN_SCALE_UNIT,
                                               rows[0], rows[1], out)
                     : htnn_data_load_idx(f->images, f->labels, HTNN_SCALE_UNIT, out);
    return st == HTNN_OK ? CLI_OK : idx_failed(st, f);
}

static int load_fashion(const char *split, htnn_data **out)
{
    idx_files f;
    int rc = fashion_files(split, &f);
    return rc == CLI_OK ? read_idx(&f, NULL, out) : rc;
}

static int load_idx(const char *images, const char *labels, htnn_data **out)
{
    idx_files f;
    user_files(images, labels, &f);
    return read_idx(&f, NULL, out);
}

static int load_csv(const char *path, const htnn_csv_options *opts,
                    htnn_data **out)
{
    htnn_status st = htnn_data_load_csv(path, opts, out);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot load CSV data", path);
    return CLI_OK;
}

/* Keeps the first `limit` examples of *data (no-op for 0 or more). */
static int apply_limit(htnn_data **data, size_t limit)
{
    htnn_data *subset = NULL;
    htnn_status st;
    if (limit == 0 || limit >= htnn_data_count(*data))
        return CLI_OK;
    st = htnn_data_subset(*data, 0, limit, &subset);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot take the first %zu examples", limit);
    htnn_data_free(*data);
    *data = subset;
    return CLI_OK;
}

static int load_checked(int rc, htnn_data **out, size_t limit)
{
    if (rc == CLI_OK)
        rc = apply_limit(out, limit);
    if (rc == CLI_OK && htnn_data_count(*out) == 0) {
        cli_error("the data set is empty");
        rc = CLI_FAIL;
    }
    if (rc != CLI_OK) {
        htnn_data_free(*out);
        *out = NULL;
    }
    return rc;
}

int cli_data_load(const cli_data_opts *d, htnn_data **out)
{
    int rc;
    *out = NULL;
    if (d->fashion)
        rc = load_fashion(d->role == CLI_DATA_TRAIN ? "train" : "t10k", out);
    else if (d->images != NULL)
        rc = load_idx(d->images, d->labels, out);
    else
        rc = load_csv(d->csv, &d->csv_opts, out);
    return load_checked(rc, out, d->limit);
}

int cli_data_is_idx(const cli_data_opts *d)
{
    return d->fashion || d->images != NULL;
}

int cli_data_count(const cli_data_opts *d, size_t *count)
{
    idx_files f;
    int rc = main_files(d, &f);
    htnn_status st;
    if (rc != CLI_OK)
        return rc;
    if ((st = htnn_data_idx_count(f.images, count)) != HTNN_OK)
        return idx_failed(st, &f);
    if (d->limit > 0 && d->limit < *count)
        *count = d->limit;
    return CLI_OK;
}

int cli_data_load_rows(const cli_data_opts *d, size_t first, size_t count,
                       htnn_data **out)
{
    idx_files f;
    const size_t rows[2] = {first, count};
    int rc = main_files(d, &f);
    *out = NULL;
    return rc == CLI_OK ? read_idx(&f, rows, out) : rc;
}

int cli_data_load_test(const cli_data_opts *d, htnn_data **out)
{
    int rc;
    *out = NULL;
    if (d->fashion)
        rc = load_fashion("t10k", out);
    else if (d->test_images != NULL)
        rc = load_idx(d->test_images, d->test_labels, out);
    else if (d->test_csv != NULL)
        rc = load_csv(d->test_csv, &d->csv_opts, out);
    else
        return CLI_OK;
    return load_checked(rc, out, d->test_limit);
}

const char *cli_data_name(const cli_data_opts *d, int test)
{
    if (d->fashion)
        return test || d->role != CLI_DATA_TRAIN ? "Fashion-MNIST t10k"
                                                 : "Fashion-MNIST train";
    if (test)
        return d->test_images != NULL ? d->test_images : d->test_csv;
    return d->images != NULL ? d->images : d->csv;
}

int cli_data_check_width(const htnn_data *data, const char *data_name,
                         size_t model_width, const char *model_name)
{
    size_t width = htnn_data_width(data);
    if (width == model_width)
        return CLI_OK;
    cli_error("width mismatch: model '%s' takes %zu inputs per example but "
              "'%s' has %zu features per example", model_name, model_width,
              data_name, width);
    return CLI_FAIL;
}

int cli_data_check_labels(const htnn_data *data, const char *data_name,
                          size_t classes)
{
    size_t have = htnn_data_class_count(data);
    if (have == 0) {
        cli_error("'%s' has no labels", data_name);
        return CLI_FAIL;
    }
    if (have > classes) {
        cli_error("'%s' has label %zu but the model has only %zu classes "
                  "(0..%zu)", data_name, have - 1, classes,
                  classes > 0 ? classes - 1 : 0);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_evaluate(htnn_net *net, htnn_data *data, double *loss,
                 double *accuracy)
{
    size_t count = htnn_data_count(data);
    size_t width = htnn_data_width(data);
    const float *x = htnn_data_features(data);
    const int32_t *labels = htnn_data_labels(data);
    double loss_sum = 0.0, correct = 0.0;
    size_t first;
    for (first = 0; first < count; first += EVAL_CHUNK) {
        size_t n = count - first < EVAL_CHUNK ? count - first : EVAL_CHUNK;
        double l = 0.0, a = 0.0;
        htnn_status st = htnn_net_evaluate(net, x + first * width,
                                           labels + first, n, &l, &a);
        if (st != HTNN_OK)
            return cli_lib_error(st, "evaluation failed");
        loss_sum += l * (double)n;
        correct += a * (double)n;
    }
    *loss = loss_sum / (double)count;
    *accuracy = correct / (double)count;
    return CLI_OK;
}
