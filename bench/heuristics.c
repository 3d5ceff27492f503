/* heuristics: scaling of the combinatorial heuristics (BENCH.md
 * "Heuristics").  Prints one JSON line per configuration:
 *   exhaustive: one set_targets call on a synthetic layer (width n below,
 *     out units above, m examples) for n = 6..max: time should double per
 *     added unit (2^n rows per example);
 *   hill: one sweep (max_sweeps 1, flips_per_sweep 1) for m x n target
 *     entries over a 16x range: time should grow linearly.
 * Then the fitted slopes.  Usage: heuristics [--quick] [--reps N]
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <htnn/htnn.h>

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct layer {
    size_t m, in, out;
    float *zb, *hb, *z, *w, *b, *t, *tw, *g, *to, *wo;
    htnn_layer_view view;
} layer;

static float uniform(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static float *fill(size_t n, int sign)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = sign ? (rand() & 1 ? 1.0f : -1.0f) : uniform();
    return p;
}

static void layer_init(layer *l, size_t m, size_t in, size_t out)
{
    l->m = m, l->in = in, l->out = out;
    l->zb = fill(m * in, 0);
    l->hb = fill(m * in, 1);
    l->z = fill(m * out, 0);
    l->w = fill(out * in, 0);
    l->b = fill(out, 0);
    l->t = fill(m * out, 1);
    l->tw = fill(m * out, 0);
    l->g = fill(m * in, 0);
    l->to = malloc(m * in * sizeof(float));
    l->wo = malloc(m * in * sizeof(float));
    for (size_t i = 0; i < m * out; i++)
        l->tw[i] = 1.0f / (float)m;
    htnn_layer_view v = {sizeof v, 1, m, in, out, l->hb, l->zb, l->z, l->w, l->b, l->t, l->tw,
                         l->z, l->g, HTNN_ACT_SIGN, HTNN_LOSS_SOFT_HINGE, HTNN_ACT_SIGN, 2};
    l->view = v;
}

static void layer_free(layer *l)
{
    float *p[] = {l->zb, l->hb, l->z, l->w, l->b, l->t, l->tw, l->g, l->to, l->wo};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        free(p[i]);
}

/* Median seconds of `reps` calls (the first, which sizes scratch, is
 * not timed). */
static double time_calls(htnn_heuristic *h, layer *l, int reps)
{
    double t[64];
    if (htnn_heuristic_set_targets(h, &l->view, l->to, l->wo) != HTNN_OK) {
        fprintf(stderr, "heuristics: %s\n", htnn_last_error());
        exit(1);
    }
    for (int r = 0; r < reps; r++) {
        double s = now();
        htnn_heuristic_set_targets(h, &l->view, l->to, l->wo);
        t[r] = now() - s;
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[reps / 2];
}

/* Least-squares slope of y against x. */
static double slope(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++)
        mx += x[i] / n, my += y[i] / n;
    for (int i = 0; i < n; i++)
        sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    return sxy / sxx;
}

int main(int argc, char **argv)
{
    int quick = 0, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (reps < 1 || reps > 64)
        reps = 7;
    srand(1);
    /* exhaustive: widths 6..max, 10 units above, 32 examples */
    htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
    htnn_heuristic *ex = NULL;
    eo.max_width = 20;
    htnn_heuristic_create_exhaustive(&eo, &ex);
    double xs[16], ys[16];
    int k = 0;
    for (size_t n = 6; n <= (quick ? 9u : 16u); n++, k++) {
        layer l;
        layer_init(&l, 32, n, 10);
        double s = time_calls(ex, &l, quick ? 1 : reps);
        printf("{\"bench\":\"exhaustive\",\"threads\":1,\"width\":%zu,\"out\":10,\"batch\":32,"
               "\"seconds\":%.6g,\"rows_per_sec\":%.4g}\n", n, s, 32.0 * (double)(1u << n) / s);
        xs[k] = (double)n;
        ys[k] = log2(s);
        layer_free(&l);
    }
    printf("{\"bench\":\"exhaustive_fit\",\"widths\":%d,\"slope_log2_time_per_unit\":%.3f}\n", k,
           slope(xs, ys, k));
    htnn_heuristic_free(ex);
    /* hill: one sweep; entries m x n from 64x16 to 64x256 (16x) and m too */
    htnn_hill_options ho = HTNN_HILL_OPTIONS_INIT;
    htnn_heuristic *hill = NULL;
    ho.max_sweeps = 1;
    htnn_heuristic_create_hill(&ho, &hill);
    const size_t shapes[][2] = {{64, 16}, {64, 32}, {64, 64}, {128, 64}, {128, 128}, {256, 128}};
    k = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++, k++) {
        layer l;
        size_t m = shapes[c][0], n = shapes[c][1];
        layer_init(&l, m, n, 64);
        double s = time_calls(hill, &l, quick ? 1 : reps);
        printf("{\"bench\":\"hill_sweep\",\"threads\":1,\"batch\":%zu,\"width\":%zu,\"out\":64,"
               "\"entries\":%zu,\"seconds\":%.6g,\"ns_per_entry\":%.4g}\n", m, n, m * n, s,
               1e9 * s / (double)(m * n));
        xs[k] = log((double)(m * n));
        ys[k] = log(s);
        layer_free(&l);
    }
    printf("{\"bench\":\"hill_fit\",\"range\":%g,\"loglog_slope\":%.3f}\n",
           (double)(256 * 128) / (64 * 16), slope(xs, ys, k));
    htnn_heuristic_free(hill);
    return 0;
}
