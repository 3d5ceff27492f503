/* A reference training run through the C API, for the Python tests to
 * reproduce bit for bit:
 *   c_reference MODE X.f32 Y.i32 COUNT WIDTH CLASSES OUT.htnn
 * X.f32 holds COUNT x WIDTH float32, Y.i32 COUNT int32 (native order).
 * The net is WIDTH-16(sign)-12(sign)-CLASSES(identity), seed 7, 1 thread;
 * Adam lr 0.01; 3 epochs of batch 32, shuffled.  MODE "loss" uses the
 * built-in heuristic; "cautious" the cautious heuristic of doc/guide.md
 * section 16 with threshold 1e-4 (tests/test_heuristic.py has the Python
 * twin).  Prints "flips dropped" for "cautious".
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

typedef struct cautious {
    float threshold;
    size_t flips, dropped;
} cautious;

static htnn_status cautious_set_targets(void *state, const htnn_layer_view *v, float *t,
                                        float *w)
{
    cautious *s = state;
    size_t n = v->batch * v->in_width;
    for (size_t i = 0; i < n; i++) {
        float g = v->grad_input[i];
        float want = g < 0.0f ? 1.0f : -1.0f;
        float mag = g < 0.0f ? -g : g;
        if (g == 0.0f) {
            t[i] = 0.0f;
            w[i] = 0.0f;
        } else if (want == t[i] || mag >= s->threshold) {
            s->flips += want != t[i];
            t[i] = want;
            w[i] = mag;
        } else {
            w[i] = 0.0f;
            s->dropped++;
        }
    }
    return HTNN_OK;
}

static int fail(const char *what, htnn_status st)
{
    fprintf(stderr, "c_reference: %s: %s: %s\n", what, htnn_strerror(st), htnn_last_error());
    return 1;
}

static void *read_file(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    void *p = malloc(bytes ? bytes : 1);
    if (f == NULL || p == NULL || fread(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "c_reference: cannot read %zu bytes from %s\n", bytes, path);
        exit(1);
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: c_reference loss|cautious X Y COUNT WIDTH CLASSES OUT\n");
        return 2;
    }
    int use_cautious = strcmp(argv[1], "cautious") == 0;
    size_t count = strtoul(argv[4], NULL, 10), width = strtoul(argv[5], NULL, 10);
    size_t classes = strtoul(argv[6], NULL, 10);
    float *x = read_file(argv[2], count * width * sizeof *x);
    int32_t *y = read_file(argv[3], count * sizeof *y);

    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = 7;
    no.threads = 1;
    htnn_net *net = NULL;
    htnn_status st = htnn_net_create(width, &no, &net);
    if (st != HTNN_OK)
        return fail("htnn_net_create", st);
    size_t units[3] = {16, 12, classes};
    for (int i = 0; i < 3 && st == HTNN_OK; i++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = units[i];
        if (i == 2)
            d.activation = HTNN_ACT_IDENTITY;
        st = htnn_net_add_dense(net, &d, NULL);
    }
    if (st != HTNN_OK)
        return fail("htnn_net_add_dense", st);
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    oo.learning_rate = 0.01f;
    htnn_optimizer *opt = NULL;
    if ((st = htnn_optimizer_create(&oo, &opt)) != HTNN_OK)
        return fail("htnn_optimizer_create", st);

    cautious state = {1e-4f, 0, 0};
    htnn_heuristic_ops ops = {sizeof ops, "cautious", cautious_set_targets, NULL};
    htnn_heuristic *h = NULL;
    if (use_cautious && (st = htnn_heuristic_create(&ops, &state, &h)) != HTNN_OK)
        return fail("htnn_heuristic_create", st);

    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    fo.batch_size = 32;
    if ((st = htnn_net_fit(net, opt, h, x, y, count, &fo, NULL)) != HTNN_OK)
        return fail("htnn_net_fit", st);
    if ((st = htnn_net_save(net, argv[7])) != HTNN_OK)
        return fail("htnn_net_save", st);
    if (use_cautious)
        printf("%zu %zu\n", state.flips, state.dropped);
    htnn_heuristic_free(h);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    free(x);
    free(y);
    return 0;
}
