/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_pack.c - `htnn pack MODEL.htnn OUT.htnnb` and the packed-model side
 * of `htnn predict` and `htnn info` (a packed file is recognised by its
 * magic, "HTNNPACK").
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PACKED_PREDICT_CHUNK 1000

static const char pack_help[] =
    "Usage: htnn pack MODEL OUT [--json]\n"
    "\n"
    "Packs a saved net for fast inference: binary weights and +-1\n"
    "activations 1 bit each (see 'htnn info OUT').  Every hidden layer must\n"
    "have sign activations.  'htnn predict OUT DATA' then uses the packed\n"
    "engine; its predictions equal the float net's.\n"
    "\n"
    "Options:\n"
    "  --json                   print one JSON line instead of text\n"
    "\n"
    "Environment:\n"
    "  HTNN_FORCE_PORTABLE=1    use the portable C kernels, not AVX2/AVX-512\n";

int cli_is_packed(const char *path)
{
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    size_t got = 0;
    if (f != NULL) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    return got == sizeof head && memcmp(head, "HTNNPACK", 8) == 0;
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int cli_pack(int argc, char **argv)
{
    cli_parser p;
    const char *in = NULL, *out = NULL;
    int json = 0, rc;
    cli_parser_init(&p, argv[0], argc, argv, 1);
    while (cli_parser_next(&p)) {
        if (p.positional != NULL) {
            if (in == NULL)
                in = p.positional;
            else if (out == NULL)
                out = p.positional;
            else
                return cli_extra_operand(&p);
            continue;
        }
        if (cli_is_help(&p)) {
            fputs(pack_help, stdout);
            return CLI_OK;
        }
        if (cli_is(&p, "--json")) {
            json = 1;
            if ((rc = cli_flag(&p)) != CLI_OK)
                return rc;
            continue;
        }
        return cli_unknown(&p);
    }
    if (in == NULL || out == NULL)
        return cli_usage_error("pack", "pack: needs MODEL and OUT");
    htnn_net *net = NULL;
    htnn_packed *packed = NULL;
    htnn_status st = htnn_net_load(in, &net);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot load model", in);
    st = htnn_net_pack(net, &packed);
    htnn_net_free(net);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot pack '%s'", in);
    st = htnn_packed_save(packed, out);
    if (st != HTNN_OK) {
        htnn_packed_free(packed);
        return cli_file_error(st, "cannot save packed model", out);
    }
    long long a = file_size(in), b = file_size(out);
    double ratio = b > 0 ? (double)a / (double)b : 0.0;
    if (json) {
        fputs("{\"command\":\"pack\",\"model\":", stdout);
        cli_json_string(stdout, in);
        fputs(",\"packed\":", stdout);
        cli_json_string(stdout, out);
        printf(",\"model_bytes\":%lld,\"packed_bytes\":%lld,\"ratio\":%.2f,"
               "\"kernel\":\"%s\"}\n", a, b, ratio,
               htnn_packed_kernel_name(htnn_packed_kernel_in_use(packed)));
    } else {
        printf("packed %s (%lld bytes) -> %s (%lld bytes), %.1fx smaller; kernel %s\n",
               in, a, out, b, ratio,
               htnn_packed_kernel_name(htnn_packed_kernel_in_use(packed)));
    }
    htnn_packed_free(packed);
    return CLI_OK;
}

/* ---- predict with a packed model --------------------------------------- */

static int packed_predict_to(FILE *f, htnn_packed *p, htnn_data *data, int logits)
{
    size_t count = htnn_data_count(data), width = htnn_data_width(data);
    size_t out = htnn_packed_output_width(p);
    const float *x = htnn_data_features(data);
    int32_t *classes = malloc(PACKED_PREDICT_CHUNK * sizeof *classes);
    float *z = malloc(PACKED_PREDICT_CHUNK * out * sizeof *z);
    int rc = CLI_OK;
    if (classes == NULL || z == NULL) {
        cli_error("out of memory");
        rc = CLI_FAIL;
    }
    for (size_t first = 0; rc == CLI_OK && first < count; first += PACKED_PREDICT_CHUNK) {
        size_t n = count - first < PACKED_PREDICT_CHUNK ? count - first : PACKED_PREDICT_CHUNK;
        htnn_status st = logits ? htnn_packed_predict_logits(p, x + first * width, n, z)
                                : htnn_packed_predict(p, x + first * width, n, classes);
        if (st != HTNN_OK) {
            rc = cli_lib_error(st, "prediction failed");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (!logits) {
                fprintf(f, "%ld\n", (long)classes[i]);
                continue;
            }
            for (size_t j = 0; j < out; j++)
                fprintf(f, "%.9g%c", (double)z[i * out + j], j + 1 < out ? ',' : '\n');
        }
    }
    free(classes);
    free(z);
    return rc;
}

int cli_packed_predict(const char *model, const cli_data_opts *data_opts, const char *output,
                       int logits, int threads)
{
    htnn_packed *p = NULL;
    htnn_data *data = NULL;
    htnn_status st = htnn_packed_load(model, &p);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot load packed model", model);
    if ((st = htnn_packed_set_threads(p, threads)) != HTNN_OK) {
        htnn_packed_free(p);
        return cli_lib_error(st, "cannot set %d threads", threads);
    }
    int rc = cli_data_load(data_opts, &data);
    if (rc == CLI_OK)
        rc = cli_data_check_width(data, cli_data_name(data_opts, 0),
                                  htnn_packed_input_width(p), model);
    if (rc == CLI_OK) {
        FILE *f = output ? fopen(output, "w") : stdout;
        if (f == NULL) {
            cli_error("cannot open '%s' for writing: %s", output, strerror(errno));
            rc = CLI_FAIL;
        } else {
            rc = packed_predict_to(f, p, data, logits);
            if ((ferror(f) || (output && fclose(f) != 0) || (!output && fflush(f) != 0)) &&
                rc == CLI_OK) {
                cli_error("cannot write the predictions");
                rc = CLI_FAIL;
            }
        }
    }
    htnn_data_free(data);
    htnn_packed_free(p);
    return rc;
}

/* ---- info on a packed model --------------------------------------------- */

int cli_packed_info(const char *model, int json)
{
    htnn_packed *p = NULL;
    htnn_status st = htnn_packed_load(model, &p);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot load packed model", model);
    long long size = file_size(model);
    const char *kernel = htnn_packed_kernel_name(htnn_packed_kernel_in_use(p));
    if (json) {
        fputs("{\"command\":\"info\",\"model\":", stdout);
        cli_json_string(stdout, model);
        printf(",\"format\":\"packed\",\"file_size\":%lld,\"input_width\":%zu,"
               "\"output_width\":%zu,\"classes\":%zu,\"layers\":%zu,\"kernel\":\"%s\"}\n",
               size, htnn_packed_input_width(p), htnn_packed_output_width(p),
               htnn_packed_class_count(p), htnn_packed_layer_count(p), kernel);
    } else {
        printf("model:       %s (%lld bytes)\n", model, size);
        printf("format:      libhtnn packed model (inference only), version 1\n");
        printf("input width: %zu\n", htnn_packed_input_width(p));
        printf("output:      %zu units, %zu classes\n", htnn_packed_output_width(p),
               htnn_packed_class_count(p));
        printf("layers:      %zu\n", htnn_packed_layer_count(p));
        printf("kernel:      %s (on this CPU)\n", kernel);
    }
    htnn_packed_free(p);
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

/* The size a float net would take packed, for `htnn info` on a float
 * model; 0 when the net cannot be packed. */
size_t cli_packed_size(const htnn_net *net)
{
    htnn_packed *p = NULL;
    void *buf = NULL;
    size_t size = 0;
    if (htnn_net_pack(net, &p) != HTNN_OK)
        return 0;
    if (htnn_packed_save_buffer(p, &buf, &size) != HTNN_OK)
        size = 0;
    htnn_free(buf);
    htnn_packed_free(p);
    return size;
}

/* ---- export-c ------------------------------------------------------------ */

static const char export_help[] =
    "Usage: htnn export-c MODEL [--name PREFIX] [--output FILE]\n"
    "\n"
    "Writes a packed model (or a saved net, packed on the fly) as one\n"
    "self-contained C file: static tables, no malloc, no library, defining\n"
    "  int PREFIX_predict(const float *x, float *logits);\n"
    "which returns the predicted class (logits may be NULL).\n"
    "\n"
    "Options:\n"
    "  --name PREFIX            function prefix (default htnn_model)\n"
    "  --output FILE            write FILE instead of standard output\n";

int cli_export_c(int argc, char **argv)
{
    cli_parser p;
    const char *model = NULL, *name = "htnn_model", *output = NULL;
    int rc;
    cli_parser_init(&p, argv[0], argc, argv, 1);
    while (cli_parser_next(&p)) {
        if (p.positional != NULL) {
            if (model != NULL)
                return cli_extra_operand(&p);
            model = p.positional;
            continue;
        }
        if (cli_is_help(&p)) {
            fputs(export_help, stdout);
            return CLI_OK;
        }
        if (cli_is(&p, "--name")) {
            if ((rc = cli_value(&p, &name)) != CLI_OK)
                return rc;
            continue;
        }
        if (cli_is(&p, "--output")) {
            if ((rc = cli_value(&p, &output)) != CLI_OK)
                return rc;
            continue;
        }
        return cli_unknown(&p);
    }
    if (model == NULL)
        return cli_usage_error("export-c", "export-c: no model file given");
    htnn_packed *packed = NULL;
    htnn_status st;
    if (cli_is_packed(model)) {
        if ((st = htnn_packed_load(model, &packed)) != HTNN_OK)
            return cli_file_error(st, "cannot load packed model", model);
    } else {
        htnn_net *net = NULL;
        if ((st = htnn_net_load(model, &net)) != HTNN_OK)
            return cli_file_error(st, "cannot load model", model);
        st = htnn_net_pack(net, &packed);
        htnn_net_free(net);
        if (st != HTNN_OK)
            return cli_lib_error(st, "cannot pack '%s'", model);
    }
    char *text = NULL;
    size_t size = 0;
    st = htnn_packed_export_c(packed, name, &text, &size);
    htnn_packed_free(packed);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot export '%s'", model);
    FILE *f = output ? fopen(output, "w") : stdout;
    rc = CLI_OK;
    if (f == NULL) {
        cli_error("cannot open '%s' for writing: %s", output, strerror(errno));
        rc = CLI_FAIL;
    } else if (fwrite(text, 1, size, f) != size || (output ? fclose(f) : fflush(f)) != 0) {
        cli_error("cannot write the C source");
        rc = CLI_FAIL;
    }
    htnn_free(text);
    return rc;
}
