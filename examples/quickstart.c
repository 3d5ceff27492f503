/* quickstart: build a sign-activation net, train it with FTPROP-MB, save,
 * load and predict.  The data is made up here (points inside / outside a
 * circle, a problem no linear classifier solves), so it runs anywhere.
 *
 *   cc quickstart.c $(pkg-config --cflags --libs htnn) -o quickstart
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

#include <htnn/htnn.h>

#define CHECK(call)                                                              \
    do {                                                                         \
        htnn_status st_ = (call);                                                \
        if (st_ != HTNN_OK) {                                                    \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, htnn_strerror(st_),   \
                    htnn_last_error());                                          \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

enum { N = 2000 };

static void make_data(float *x, int32_t *y)
{
    srand(1);
    for (int i = 0; i < N; i++) {
        float a = (float)rand() / (float)RAND_MAX * 2 - 1;
        float b = (float)rand() / (float)RAND_MAX * 2 - 1;
        x[2 * i] = a;
        x[2 * i + 1] = b;
        y[i] = a * a + b * b < 0.5f; /* 1 inside the circle */
    }
}

int main(void)
{
    static float x[2 * N];
    static int32_t y[N];
    make_data(x, y);

    /* 2 -> 32 sign units -> 2 logits scored by softmax cross-entropy */
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = 42;
    htnn_net *net;
    CHECK(htnn_net_create(2, &no, &net));
    htnn_dense_options hidden = HTNN_DENSE_OPTIONS_INIT; /* sign, soft hinge */
    hidden.units = 32;
    CHECK(htnn_net_add_dense(net, &hidden, NULL));
    htnn_dense_options out = HTNN_DENSE_OPTIONS_INIT;
    out.units = 2;
    out.activation = HTNN_ACT_IDENTITY;
    CHECK(htnn_net_add_dense(net, &out, NULL));

    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT; /* Adam */
    oo.learning_rate = 0.01f;
    htnn_optimizer *opt;
    CHECK(htnn_optimizer_create(&oo, &opt));

    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 30;
    fo.batch_size = 50;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    /* NULL heuristic: the built-in loss-driven one */
    CHECK(htnn_net_fit(net, opt, NULL, x, y, N, &fo, &res));
    printf("trained %zu epochs: loss %.4f, training accuracy %.2f%%\n", res.epochs_run,
           res.loss, 100 * res.accuracy);

    CHECK(htnn_net_save(net, "quickstart.htnn"));
    htnn_net *loaded;
    CHECK(htnn_net_load("quickstart.htnn", &loaded));
    const float probe[4] = {0.0f, 0.1f, 0.9f, 0.9f};
    int32_t cls[2];
    CHECK(htnn_net_predict(loaded, probe, 2, cls));
    printf("(0, 0.1) -> %s, (0.9, 0.9) -> %s\n", cls[0] ? "inside" : "outside",
           cls[1] ? "inside" : "outside");
    remove("quickstart.htnn");

    htnn_net_free(loaded);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    return res.accuracy > 0.9 && cls[0] == 1 && cls[1] == 0 ? 0 : 1;
}
