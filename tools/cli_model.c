/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_model.c - the commands that use a saved model: `htnn eval`,
 * `htnn predict` and `htnn info`.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREDICT_CHUNK 1000

static const char eval_help[] =
    "Usage: htnn eval MODEL DATA [--json] [--threads N]\n"
    "\n"
    "Prints the accuracy and mean loss of MODEL on labelled data.\n"
    "\n"
    "Data:\n"
    "  --fashion-mnist          the Fashion-MNIST test set (t10k)\n"
    "  --images F --labels F    IDX images (bytes / 255) and labels\n"
    "  --csv F                  CSV data, one example per line\n"
    "  --label-column N|last|none   label column of CSV (default 0)\n"
    "  --csv-header yes|no|auto     CSV header line (default auto)\n"
    "  --delimiter C            CSV field separator (default ',', or 'tab')\n"
    "  --scale                  scale each CSV column to [0, 1] (per file)\n"
    "  --limit N                use the first N examples\n"
    "\n"
    "Options:\n"
    "  --json                   print one JSON line instead of text\n"
    "  --threads N              BLAS/kernel threads (default 1)\n";

static const char predict_help[] =
    "Usage: htnn predict MODEL DATA [--output FILE] [--logits]\n"
    "\n"
    "Prints the predicted class of every example, one per line.\n"
    "\n"
    "Data:\n"
    "  --fashion-mnist          the Fashion-MNIST test set (t10k)\n"
    "  --images F               IDX images (bytes / 255)\n"
    "  --csv F                  CSV data, one example per line\n"
    "  --label-column N|last|none   label column of CSV, skipped (default 0;\n"
    "                           'none' for CSV without labels)\n"
    "  --csv-header yes|no|auto     CSV header line (default auto)\n"
    "  --delimiter C            CSV field separator (default ',', or 'tab')\n"
    "  --scale                  scale each CSV column to [0, 1] (per file)\n"
    "  --limit N                use the first N examples\n"
    "\n"
    "Options:\n"
    "  --output FILE            write to FILE instead of standard output\n"
    "  --logits                 print the logits, comma-separated, instead\n"
    "  --threads N              BLAS/kernel threads (default 1; a packed model:\n"
    "                           its own threads, at most 16)\n";

static const char info_help[] =
    "Usage: htnn info MODEL [--json]\n"
    "\n"
    "Describes a saved model: versions, input width, layers, parameters.\n"
    "\n"
    "Options:\n"
    "  --json                   print one JSON object instead of text\n";

typedef struct use_opts {
    cli_data_opts data;
    const char *model;
    const char *output;
    int logits;
    int json;
    int threads;
} use_opts;

/* ---- shared ------------------------------------------------------------ */

static int flag_into(cli_parser *p, int *dst)
{
    *dst = 1;
    return cli_flag(p);
}

/* Options beyond the data options; which are accepted depends on the
 * command. */
static int use_option(cli_parser *p, use_opts *o)
{
    int eval = strcmp(p->command, "eval") == 0;
    int predict = strcmp(p->command, "predict") == 0;
    if (cli_is(p, "--json") && !predict)
        return flag_into(p, &o->json);
    if (cli_is(p, "--threads") && (eval || predict))
        return cli_int_value(p, 0, 1024, &o->threads);
    if (cli_is(p, "--output") && predict)
        return cli_value(p, &o->output);
    if (cli_is(p, "--logits") && predict)
        return flag_into(p, &o->logits);
    return CLI_NOT_MINE;
}

/* Parses `htnn COMMAND MODEL [options]`; data options unless role < 0. */
static int parse_use(int argc, char **argv, const char *help, int role,
                     use_opts *o)
{
    cli_parser p;
    memset(o, 0, sizeof *o);
    o->threads = 1;
    cli_data_opts_init(&o->data, role < 0 ? CLI_DATA_EVAL
                                          : (cli_data_role)role);
    cli_parser_init(&p, argv[0], argc, argv, 1);
    while (cli_parser_next(&p)) {
        int rc = CLI_NOT_MINE;
        if (p.positional != NULL) {
            if (o->model != NULL)
                return cli_extra_operand(&p);
            o->model = p.positional;
            continue;
        }
        if (cli_is_help(&p)) {
            fputs(help, stdout);
            return CLI_HELP;
        }
        if (role >= 0)
            rc = cli_data_option(&p, &o->data);
        if (rc == CLI_NOT_MINE)
            rc = use_option(&p, o);
        if (rc == CLI_NOT_MINE)
            return cli_unknown(&p);
        if (rc != CLI_OK)
            return rc;
    }
    if (o->model == NULL)
        return cli_usage_error(argv[0], "%s: no model file given", argv[0]);
    return role >= 0 ? cli_data_check(&o->data, argv[0]) : CLI_OK;
}

static int load_model(const char *path, htnn_net **out)
{
    htnn_status st = htnn_net_load(path, out);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot load model", path);
    return CLI_OK;
}

static int set_threads(htnn_net *net, int threads)
{
    htnn_status st = htnn_net_set_threads(net, threads);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot set %d threads", threads);
    return CLI_OK;
}

/* Loads the model and the data and checks that they fit together. */
static int load_model_and_data(const use_opts *o, htnn_net **net,
                               htnn_data **data)
{
    int rc = load_model(o->model, net);
    if (rc == CLI_OK)
        rc = set_threads(*net, o->threads);
    if (rc == CLI_OK)
        rc = cli_data_load(&o->data, data);
    if (rc == CLI_OK)
        rc = cli_data_check_width(*data, cli_data_name(&o->data, 0),
                                  htnn_net_input_width(*net), o->model);
    return rc;
}

static int finish_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- eval -------------------------------------------------------------- */

static void print_eval(const use_opts *o, size_t count, double loss,
                       double accuracy, double seconds)
{
    if (!o->json) {
        printf("accuracy: %.2f%% (%zu examples)\nloss: %.4f\n",
               100.0 * accuracy, count, loss);
        return;
    }
    fputs("{\"command\":\"eval\",\"model\":", stdout);
    cli_json_string(stdout, o->model);
    fputs(",\"data\":", stdout);
    cli_json_string(stdout, cli_data_name(&o->data, 0));
    printf(",\"examples\":%zu,\"accuracy\":", count);
    cli_json_number(stdout, accuracy);
    fputs(",\"loss\":", stdout);
    cli_json_number(stdout, loss);
    fputs(",\"seconds\":", stdout);
    cli_json_number(stdout, seconds);
    fputs("}\n", stdout);
}

int cli_eval(int argc, char **argv)
{
    use_opts o;
    htnn_net *net = NULL;
    htnn_data *data = NULL;
    double loss = 0.0, accuracy = 0.0, start;
    int rc = parse_use(argc, argv, eval_help, CLI_DATA_EVAL, &o);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    rc = load_model_and_data(&o, &net, &data);
    if (rc == CLI_OK)
        rc = cli_data_check_labels(data, cli_data_name(&o.data, 0),
                                   htnn_net_class_count(net));
    start = cli_now();
    if (rc == CLI_OK)
        rc = cli_evaluate(net, data, &loss, &accuracy);
    if (rc == CLI_OK) {
        print_eval(&o, htnn_data_count(data), loss, accuracy,
                   cli_now() - start);
        rc = finish_stdout();
    }
    htnn_data_free(data);
    htnn_net_free(net);
    return rc;
}

/* ---- predict ----------------------------------------------------------- */

static int write_classes(FILE *f, htnn_net *net, const float *x, size_t n,
                         int32_t *classes)
{
    size_t i;
    htnn_status st = htnn_net_predict(net, x, n, classes);
    if (st != HTNN_OK)
        return cli_lib_error(st, "prediction failed");
    for (i = 0; i < n; i++)
        fprintf(f, "%ld\n", (long)classes[i]);
    return CLI_OK;
}

static int write_logits(FILE *f, htnn_net *net, const float *x, size_t n,
                        float *logits)
{
    size_t width = htnn_net_output_width(net);
    size_t i, j;
    htnn_status st = htnn_net_predict_logits(net, x, n, logits);
    if (st != HTNN_OK)
        return cli_lib_error(st, "prediction failed");
    for (i = 0; i < n; i++)
        for (j = 0; j < width; j++)
            fprintf(f, "%.9g%c", (double)logits[i * width + j],
                    j + 1 < width ? ',' : '\n');
    return CLI_OK;
}

static int predict_to(FILE *f, const use_opts *o, htnn_net *net,
                      htnn_data *data)
{
    size_t count = htnn_data_count(data);
    size_t width = htnn_data_width(data);
    size_t out_width = htnn_net_output_width(net);
    const float *x = htnn_data_features(data);
    int32_t *classes = malloc(PREDICT_CHUNK * sizeof *classes);
    float *logits = malloc(PREDICT_CHUNK * out_width * sizeof *logits);
    size_t first;
    int rc = CLI_OK;
    if (classes == NULL || logits == NULL) {
        cli_error("out of memory");
        rc = CLI_FAIL;
    }
    for (first = 0; rc == CLI_OK && first < count; first += PREDICT_CHUNK) {
        size_t n = count - first < PREDICT_CHUNK ? count - first
                                                 : PREDICT_CHUNK;
        if (o->logits)
            rc = write_logits(f, net, x + first * width, n, logits);
        else
            rc = write_classes(f, net, x + first * width, n, classes);
    }
    free(classes);
    free(logits);
    return rc;
}

static int predict_to_file(const use_opts *o, htnn_net *net, htnn_data *data)
{
    FILE *f = fopen(o->output, "w");
    int rc;
    if (f == NULL) {
        cli_error("cannot open '%s' for writing: %s", o->output,
                  strerror(errno));
        return CLI_FAIL;
    }
    rc = predict_to(f, o, net, data);
    if (ferror(f) && rc == CLI_OK) {
        cli_error("cannot write '%s'", o->output);
        rc = CLI_FAIL;
    }
    if (fclose(f) != 0 && rc == CLI_OK) {
        cli_error("cannot write '%s': %s", o->output, strerror(errno));
        rc = CLI_FAIL;
    }
    return rc;
}

int cli_predict(int argc, char **argv)
{
    use_opts o;
    htnn_net *net = NULL;
    htnn_data *data = NULL;
    int rc = parse_use(argc, argv, predict_help, CLI_DATA_PREDICT, &o);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (cli_is_packed(o.model))
        return cli_packed_predict(o.model, &o.data, o.output, o.logits, o.threads);
    rc = load_model_and_data(&o, &net, &data);
    if (rc == CLI_OK && o.output != NULL)
        rc = predict_to_file(&o, net, data);
    else if (rc == CLI_OK) {
        rc = predict_to(stdout, &o, net, data);
        if (rc == CLI_OK)
            rc = finish_stdout();
    }
    htnn_data_free(data);
    htnn_net_free(net);
    return rc;
}

/* ---- info -------------------------------------------------------------- */

/* The format version from the header of a model file (doc/file-format.md:
 * the 8-byte magic "HTNNMODL", then a little-endian u32); 0 if unreadable.
 * The public API has no query for it. */
static unsigned long format_version(const char *path)
{
    unsigned char head[12];
    FILE *f = fopen(path, "rb");
    size_t got = 0;
    if (f != NULL) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    if (got != sizeof head || memcmp(head, "HTNNMODL", 8) != 0)
        return 0;
    return (unsigned long)head[8] | (unsigned long)head[9] << 8 |
           (unsigned long)head[10] << 16 | (unsigned long)head[11] << 24;
}

static const char *kind_name(int kind)
{
    static const char *const names[] = {"?", "dense", "conv2d", "maxpool2d", "batchnorm"};
    return kind >= 1 && kind <= HTNN_LAYER_BATCHNORM ? names[kind] : "?";
}

/* "dense 784 -> 256", or the --arch item and the feature-map shapes
 * (channels x height x width) of the other kinds. */
static void describe_layer(const htnn_layer_info *li, char *buf, size_t n)
{
    char item[64];
    if (li->kind == HTNN_LAYER_DENSE) {
        snprintf(buf, n, "dense %zu -> %zu", li->in_width, li->out_width);
        return;
    }
    if (li->kind == HTNN_LAYER_CONV2D)
        snprintf(item, sizeof item, "conv%zux%zu:%zu:s%zu:p%zu", li->kernel_h, li->kernel_w,
                 li->out_channels, li->stride, li->padding);
    else if (li->kind == HTNN_LAYER_MAXPOOL2D)
        snprintf(item, sizeof item, "pool%zu:s%zu", li->kernel_h, li->stride);
    else
        snprintf(item, sizeof item, "%s", li->kind == HTNN_LAYER_BATCHNORM ? "bn" : "?");
    snprintf(buf, n, "%s %zux%zux%zu -> %zux%zux%zu", item, li->in_channels, li->in_height,
             li->in_columns, li->out_channels, li->out_height, li->out_columns);
}

static int layer_info(htnn_net *net, size_t i, htnn_layer_info *info)
{
    const htnn_layer_info init = HTNN_LAYER_INFO_INIT;
    htnn_status st;
    *info = init;
    st = htnn_layer_get_info(htnn_net_layer(net, i), info);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot describe layer %zu", i);
    return CLI_OK;
}

static void print_layer_text(const htnn_layer_info *li)
{
    char act[32];
    if (li->activation == HTNN_ACT_QRELU)
        snprintf(act, sizeof act, "qrelu(%d bits)", li->qrelu_bits);
    else
        snprintf(act, sizeof act, "%s",
                 cli_choice_name(cli_activations, li->activation));
    char what[160];
    describe_layer(li, what, sizeof what);
    printf("  %zu  %s  %-9s loss %s%s%s%s\n", li->index, what, act,
           cli_choice_name(cli_losses, li->loss),
           li->weight_targets ? ", weighted targets" : ", unweighted targets",
           li->bias ? ", bias" : ", no bias",
           li->binary_weights == HTNN_BINARY_SCALED ? ", binary weights (scaled)"
           : li->binary_weights == HTNN_BINARY_SIGN ? ", binary weights (sign)" : "");
}

static void print_layer_json(const htnn_layer_info *li)
{
    printf("{\"index\":%zu,\"kind\":\"%s\",\"in\":%zu,\"out\":%zu,"
           "\"activation\":\"%s\",\"qrelu_bits\":%d,\"loss\":\"%s\","
           "\"weight_targets\":%s,\"bias\":%s,\"weights\":%zu,"
           "\"binary_weights\":%d}",
           li->index, kind_name(li->kind), li->in_width, li->out_width,
           cli_choice_name(cli_activations, li->activation), li->qrelu_bits,
           cli_choice_name(cli_losses, li->loss),
           li->weight_targets ? "true" : "false",
           li->bias ? "true" : "false", li->weight_count, li->binary_weights);
}

static int print_layers(htnn_net *net, int json)
{
    size_t i, n = htnn_net_layer_count(net);
    for (i = 0; i < n; i++) {
        htnn_layer_info li;
        int rc = layer_info(net, i, &li);
        if (rc != CLI_OK)
            return rc;
        if (json) {
            if (i > 0)
                putchar(',');
            print_layer_json(&li);
        } else {
            print_layer_text(&li);
        }
    }
    return CLI_OK;
}

static int print_info_text(const char *path, long long size, htnn_net *net,
                           int output)
{
    printf("model:       %s (%lld bytes)\n", path, size);
    printf("format:      libhtnn model format version %lu\n",
           format_version(path));
    printf("library:     libhtnn %s (htnn tool built with %s)\n",
           htnn_version_string(), HTNN_VERSION_STRING);
    printf("input width: %zu\n", htnn_net_input_width(net));
    printf("output:      %s, %zu units, %zu classes\n",
           cli_choice_name(cli_outputs, output), htnn_net_output_width(net),
           htnn_net_class_count(net));
    printf("parameters:  %zu\n", htnn_net_parameter_count(net));
    size_t packed = cli_packed_size(net);
    if (packed > 0)
        printf("packed size: %zu bytes (%.1fx smaller; 'htnn pack')\n", packed,
               (double)size / (double)packed);
    else
        printf("packed size: - (hidden layers are not all sign)\n");
    printf("layers:      %zu\n", htnn_net_layer_count(net));
    return print_layers(net, 0);
}

static int print_info_json(const char *path, long long size, htnn_net *net,
                           int output)
{
    int rc;
    fputs("{\"command\":\"info\",\"model\":", stdout);
    cli_json_string(stdout, path);
    printf(",\"file_size\":%lld,\"format_version\":%lu,"
           "\"library_version\":", size, format_version(path));
    cli_json_string(stdout, htnn_version_string());
    printf(",\"input_width\":%zu,\"output\":\"%s\",\"output_width\":%zu,"
           "\"classes\":%zu,\"parameters\":%zu,\"packed_size\":%zu,\"layers\":[",
           htnn_net_input_width(net), cli_choice_name(cli_outputs, output),
           htnn_net_output_width(net), htnn_net_class_count(net),
           htnn_net_parameter_count(net), cli_packed_size(net));
    rc = print_layers(net, 1);
    fputs("]}\n", stdout);
    return rc;
}

int cli_info(int argc, char **argv)
{
    use_opts o;
    htnn_net *net = NULL;
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    struct stat sb;
    htnn_status st;
    int rc = parse_use(argc, argv, info_help, -1, &o);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (cli_is_packed(o.model))
        return cli_packed_info(o.model, o.json);
    rc = load_model(o.model, &net);
    if (rc != CLI_OK)
        return rc;
    st = htnn_net_get_options(net, &no);
    if (st != HTNN_OK)
        rc = cli_lib_error(st, "cannot read the model's options");
    if (rc == CLI_OK && stat(o.model, &sb) != 0) {
        cli_error("cannot stat '%s': %s", o.model, strerror(errno));
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK)
        rc = o.json ? print_info_json(o.model, (long long)sb.st_size, net,
                                      no.output)
                    : print_info_text(o.model, (long long)sb.st_size, net,
                                      no.output);
    if (rc == CLI_OK)
        rc = finish_stdout();
    htnn_net_free(net);
    return rc;
}
