/* bench/train_mlp: training throughput and accuracy of the reference
 * workload (BENCH.md), and the sgemm-only roofline of the same shapes.
 *
 *   train_mlp train [--epochs N] [--threads T] [--limit N] [--seed S]
 *                   [--loss soft-hinge|sste|relu] [--schedule constant|cosine]
 *   train_mlp sgemm [--threads T] [--batches N]
 *
 * Prints one JSON line per run.  Data: Fashion-MNIST from
 * $HTNN_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist.
 * SPDX-License-Identifier: MIT */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <htnn/htnn.h>

#include "htnn_config.h"
#include "reference_mlp.h"

#if HTNN_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int num_threads);
#endif

typedef struct args {
    const char *mode, *loss, *schedule;
    size_t epochs, limit, batches, batch;
    int threads;
    uint64_t seed;
} args;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}


static int parse(int argc, char **argv, args *a)
{
    *a = (args){argc > 1 ? argv[1] : "train", "soft-hinge", "constant", 10, 0, 2000, 100, 1, 1};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--epochs")) a->epochs = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--threads")) a->threads = atoi(v);
        else if (!strcmp(k, "--limit")) a->limit = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--batches")) a->batches = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--batch")) a->batch = strtoul(v, NULL, 10);
        else if (!strcmp(k, "--seed")) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--loss")) a->loss = v;
        else if (!strcmp(k, "--schedule")) a->schedule = v;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    return 0;
}

/* The same products one FTPROP-MB step makes: forward, grad W for every
 * layer, grad input for every layer but the first. */
static int run_sgemm(const args *a)
{
    size_t m = a->batch, total = 0;
    float *buf[4], *dz[4], *w[4], *gw[4];
    for (int l = 0; l < 4; l++) {
        buf[l] = calloc(m * reference_widths[l], sizeof(float));
        dz[l] = calloc(m * reference_widths[l], sizeof(float));
        total += reference_widths[l];
    }
    for (int l = 1; l < 4; l++) {
        w[l] = calloc(reference_widths[l] * reference_widths[l - 1], sizeof(float));
        gw[l] = calloc(reference_widths[l] * reference_widths[l - 1], sizeof(float));
    }
#if HTNN_HAVE_OPENBLAS_THREADS
    openblas_set_num_threads(a->threads);
#endif
    double t0 = 0.0;
    for (size_t it = 0; it < a->batches + 10; it++) {
        if (it == 10)
            t0 = now();
        for (int l = 1; l < 4; l++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)reference_widths[l],
                        (int)reference_widths[l - 1], 1.0f, buf[l - 1], (int)reference_widths[l - 1], w[l],
                        (int)reference_widths[l - 1], 0.0f, buf[l], (int)reference_widths[l]);
        for (int l = 3; l >= 1; l--) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)reference_widths[l],
                        (int)reference_widths[l - 1], (int)m, 1.0f, dz[l], (int)reference_widths[l], buf[l - 1],
                        (int)reference_widths[l - 1], 0.0f, gw[l], (int)reference_widths[l - 1]);
            if (l > 1)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m,
                            (int)reference_widths[l - 1], (int)reference_widths[l], 1.0f, dz[l], (int)reference_widths[l],
                            w[l], (int)reference_widths[l - 1], 0.0f, dz[l - 1], (int)reference_widths[l - 1]);
        }
    }
    double secs = now() - t0;
    printf("{\"name\":\"htnn-sgemm-roofline\",\"threads\":%d,\"batch\":%zu,\"batches\":%zu,"
           "\"seconds\":%.4f,\"samples_per_sec\":%.1f}\n",
           a->threads, m, a->batches, secs, (double)(a->batches * m) / secs);
    (void)total;
    return 0;
}

static int build_net(const args *a, htnn_net **net)
{
    int relu = !strcmp(a->loss, "relu");
    int loss = !strcmp(a->loss, "sste") ? HTNN_LOSS_SATURATED_HINGE : HTNN_LOSS_SOFT_HINGE;
    return build_reference_mlp(a->seed, a->threads, relu ? HTNN_ACT_RELU : HTNN_ACT_SIGN, loss,
                               net);
}

static int run_train(const args *a)
{
    htnn_data *train = load_fashion_split("train", "train_mlp"),
              *test = load_fashion_split("t10k", "train_mlp");
    htnn_net *net = NULL;
    htnn_optimizer *opt = NULL;
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    oo.schedule = !strcmp(a->schedule, "cosine") ? HTNN_SCHEDULE_COSINE : HTNN_SCHEDULE_CONSTANT;
    if (!train || !test || build_net(a, &net) || htnn_optimizer_create(&oo, &opt)) {
        fprintf(stderr, "train_mlp: %s\n", htnn_last_error());
        return 1;
    }
    size_t n = htnn_data_count(train);
    if (a->limit && a->limit < n)
        n = a->limit;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = a->epochs;
    fo.batch_size = a->batch;
    double t0 = now();
    htnn_status st = htnn_net_fit(net, opt, NULL, htnn_data_features(train),
                                  htnn_data_labels(train), n, &fo, NULL);
    double secs = now() - t0, acc = 0.0;
    if (st == HTNN_OK)
        st = htnn_net_evaluate(net, htnn_data_features(test), htnn_data_labels(test),
                               htnn_data_count(test), NULL, &acc);
    if (st != HTNN_OK) {
        fprintf(stderr, "train_mlp: %s\n", htnn_last_error());
        return 1;
    }
    printf("{\"name\":\"htnn-mlp\",\"loss\":\"%s\",\"schedule\":\"%s\",\"seed\":%llu,\"threads\":%d,\"batch\":%zu,\"epochs\":%zu,"
           "\"train_samples\":%zu,\"seconds\":%.3f,\"samples_per_sec\":%.1f,"
           "\"test_accuracy\":%.4f,\"peak_rss_mb\":%.1f}\n",
           a->loss, a->schedule, (unsigned long long)a->seed, a->threads, a->batch, a->epochs, n, secs,
           (double)(n * a->epochs) / secs, acc, peak_rss_mb());
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_data_free(train);
    htnn_data_free(test);
    return 0;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse(argc, argv, &a);
    if (rc)
        return rc;
    if (!strcmp(a.mode, "sgemm"))
        return run_sgemm(&a);
    return run_train(&a);
}
