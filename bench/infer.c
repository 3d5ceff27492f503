/* bench/infer: float (sgemm) forward vs the bit-packed engine on a
 * sign-activation, binary-weight MLP (default 784-1024-1024-10), with the
 * portable, AVX2 and AVX-512 kernels, at batch 1, 256 and 4096.  Float and
 * packed runs alternate (A B A B ...) and the medians are compared, so the
 * ratio is measured side by side in one run.  One JSON line per
 * configuration on stdout.
 *
 *   infer [--hidden N] [--reps R] [--samples N] [--threads T] [--smoke]
 *
 * --threads T is the float net's thread setting (BLAS) and the packed
 * net's own threads (htnn_packed_set_threads; "packed_threads" in the
 * JSON is the value in use), so both engines get the same cores.
 *
 * Inputs are Fashion-MNIST test images (HTNN_FASHION_MNIST_DIR or
 * /usr/share/datasets/fashion-mnist) scaled to [0, 1], or random 8-bit
 * pixels p/255 when the data set is missing.  The net is randomly
 * initialised (speed does not depend on training); --model FILE uses a
 * trained .htnn instead.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <htnn/htnn.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(htnn_status st, const char *what)
{
    fprintf(stderr, "infer: %s: %s (%s)\n", what, htnn_last_error(), htnn_strerror(st));
    exit(1);
}

/* Seconds to classify `total` examples in calls of `batch`. */
static double run_float(htnn_net *net, const float *x, size_t width, size_t total,
                        size_t batch, int32_t *out)
{
    double t0 = now();
    for (size_t i = 0; i < total; i += batch) {
        size_t m = total - i < batch ? total - i : batch;
        htnn_status st = htnn_net_predict(net, x + i * width, m, out + i);
        if (st != HTNN_OK)
            die(st, "float predict");
    }
    return now() - t0;
}

static double run_packed(htnn_packed *p, const float *x, size_t width, size_t total,
                         size_t batch, int32_t *out)
{
    double t0 = now();
    for (size_t i = 0; i < total; i += batch) {
        size_t m = total - i < batch ? total - i : batch;
        htnn_status st = htnn_packed_predict(p, x + i * width, m, out + i);
        if (st != HTNN_OK)
            die(st, "packed predict");
    }
    return now() - t0;
}

static float *load_inputs(size_t *count)
{
    const char *dir = getenv("HTNN_FASHION_MNIST_DIR");
    char img[512], lab[512];
    dir = dir ? dir : "/usr/share/datasets/fashion-mnist";
    snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", dir);
    htnn_data *d = NULL;
    size_t n = 8192;
    float *x = malloc(n * 784 * sizeof *x);
    if (x == NULL)
        exit(1);
    if (htnn_data_load_idx(img, lab, HTNN_SCALE_UNIT, &d) == HTNN_OK) {
        size_t have = htnn_data_count(d);
        for (size_t i = 0; i < n; i++)
            memcpy(x + i * 784, htnn_data_features(d) + (i % have) * 784, 784 * sizeof *x);
        htnn_data_free(d);
        fprintf(stderr, "infer: inputs: Fashion-MNIST test images\n");
    } else {
        uint64_t s = 1;
        for (size_t i = 0; i < n * 784; i++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            x[i] = (float)(unsigned)(s >> 56) / 255.0f;
        }
        fprintf(stderr, "infer: inputs: random 8-bit pixels (Fashion-MNIST not found)\n");
    }
    *count = n;
    return x;
}

int main(int argc, char **argv)
{
    size_t hidden = 1024, reps = 7, samples = 4096;
    int threads = 1, smoke = 0;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hidden") == 0 && i + 1 < argc)
            hidden = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            samples = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--smoke") == 0)
            smoke = 1;
        else {
            fprintf(stderr, "usage: infer [--hidden N] [--reps R] [--samples N] "
                            "[--threads T] [--model FILE] [--smoke]\n");
            return 2;
        }
    }
    if (smoke) {
        hidden = 64;
        reps = 1;
        samples = 300;
    }
    if (samples > 8192)
        samples = 8192;
    size_t n_inputs;
    float *x = load_inputs(&n_inputs);
    htnn_net *net = NULL;
    htnn_status st;
    if (model) {
        if ((st = htnn_net_load(model, &net)) != HTNN_OK)
            die(st, model);
    } else {
        if ((st = htnn_net_create(784, NULL, &net)) != HTNN_OK)
            die(st, "create");
        size_t widths[3] = {hidden, hidden, 10};
        for (int d = 0; d < 3; d++) {
            htnn_dense_options o = HTNN_DENSE_OPTIONS_INIT;
            o.units = widths[d];
            o.activation = d < 2 ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY;
            o.binary_weights = HTNN_BINARY_SCALED;
            if ((st = htnn_net_add_dense(net, &o, NULL)) != HTNN_OK)
                die(st, "add layer");
        }
    }
    htnn_net_set_threads(net, threads);
    htnn_packed *p = NULL;
    if ((st = htnn_net_pack(net, &p)) != HTNN_OK)
        die(st, "pack");
    if ((st = htnn_packed_set_threads(p, threads)) != HTNN_OK)
        die(st, "packed threads");
    int32_t *cf = malloc(8192 * sizeof *cf), *cp = malloc(8192 * sizeof *cp);
    double *tf = malloc(reps * sizeof *tf), *tp = malloc(reps * sizeof *tp);
    static const size_t batches[] = {1, 256, 4096};
    static const int kernels[] = {HTNN_KERNEL_PORTABLE, HTNN_KERNEL_AVX2, HTNN_KERNEL_AVX512};
    for (size_t bi = 0; bi < 3; bi++) {
        size_t batch = batches[bi];
        /* batch 1 is slow in float: fewer examples */
        size_t total = batch == 1 ? (samples < 512 ? samples : 512) : samples;
        if (total < batch)
            total = batch > 8192 ? 8192 : batch;
        /* a fresh float net per batch size: its scratch arena is sized by
         * its first call (min(batch, 256) rows), as in a program that
         * always predicts in batches of this size */
        htnn_net *fnet = NULL;
        if ((st = htnn_net_clone(net, &fnet)) != HTNN_OK)
            die(st, "clone");
        htnn_net_set_threads(fnet, threads);
        for (size_t ki = 0; ki < 3; ki++) {
            if (htnn_packed_set_kernel(p, kernels[ki]) != HTNN_OK) {
                printf("{\"bench\":\"infer\",\"kernel\":\"%s\",\"batch\":%zu,"
                       "\"skipped\":\"not supported by this CPU\"}\n",
                       htnn_packed_kernel_name(kernels[ki]), batch);
                continue;
            }
            run_float(fnet, x, 784, total, batch, cf); /* warm-up */
            run_packed(p, x, 784, total, batch, cp);
            for (size_t r = 0; r < reps; r++) {
                tf[r] = run_float(fnet, x, 784, total, batch, cf);
                tp[r] = run_packed(p, x, 784, total, batch, cp);
            }
            size_t same = 0;
            for (size_t i = 0; i < total; i++)
                same += cf[i] == cp[i];
            double sf = (double)total / median(tf, reps), sp = (double)total / median(tp, reps);
            printf("{\"bench\":\"infer\",\"net\":\"784-%zu-%zu-10\",\"weights\":\"%s\","
                   "\"threads\":%d,\"packed_threads\":%d,\"batch\":%zu,\"samples\":%zu,"
                   "\"kernel\":\"%s\","
                   "\"float_samples_per_s\":%.1f,\"packed_samples_per_s\":%.1f,"
                   "\"ratio\":%.2f,\"identical_predictions\":%s,\"reps\":%zu}\n",
                   hidden, hidden, model ? model : "binary-scaled", threads,
                   htnn_packed_threads(p), batch, total,
                   htnn_packed_kernel_name(kernels[ki]), sf, sp, sp / sf,
                   same == total ? "true" : "false", reps);
            fflush(stdout);
        }
        htnn_net_free(fnet);
    }
    free(cf), free(cp), free(tf), free(tp), free(x);
    htnn_packed_free(p);
    htnn_net_free(net);
    return 0;
}
