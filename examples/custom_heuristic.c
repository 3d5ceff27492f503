/* custom_heuristic: plugging your own target heuristic into FTPROP-MB
 * through the public vtable (htnn_heuristic_ops).
 *
 * This one is "damped": it starts from the loss-driven targets
 * (sign(-G), weight |G|) and keeps a target only where it disagrees with
 * the unit's current output by a clear margin, or agrees with it, so units
 * whose gradient is tiny are left alone (weight 0).  It also counts how
 * often the targets asked a unit to flip, which shows how a heuristic can
 * keep its own state.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <htnn/htnn.h>

typedef struct damped {
    htnn_heuristic *loss; /* the built-in we start from */
    float min_weight;     /* targets with |G| below this get weight 0 */
    size_t flips, entries;
} damped;

static htnn_status damped_set_targets(void *state, const htnn_layer_view *view, float *t,
                                      float *w)
{
    damped *d = state;
    htnn_status st = htnn_heuristic_set_targets(d->loss, view, t, w);
    if (st != HTNN_OK)
        return st;
    size_t n = view->batch * view->in_width;
    for (size_t i = 0; i < n; i++) {
        float current = view->input[i] > 0 ? 1.0f : -1.0f;
        if (t[i] != current && w[i] < d->min_weight)
            w[i] = 0.0f; /* not worth flipping */
        d->flips += t[i] != current && w[i] > 0.0f;
    }
    d->entries += n;
    return HTNN_OK;
}

static void damped_destroy(void *state)
{
    damped *d = state;
    htnn_heuristic_free(d->loss);
}

int main(void)
{
    enum { N = 1000 };
    static float x[2 * N];
    static int32_t y[N];
    srand(3);
    for (int i = 0; i < N; i++) { /* XOR of the signs of two coordinates */
        x[2 * i] = (float)rand() / (float)RAND_MAX * 2 - 1;
        x[2 * i + 1] = (float)rand() / (float)RAND_MAX * 2 - 1;
        y[i] = (x[2 * i] > 0) != (x[2 * i + 1] > 0);
    }
    damped state = {NULL, 1e-4f, 0, 0};
    htnn_heuristic_ops ops = {sizeof ops, "damped", damped_set_targets, damped_destroy};
    htnn_heuristic *heuristic = NULL;
    htnn_net *net = NULL;
    htnn_optimizer *opt = NULL;
    htnn_dense_options hidden = HTNN_DENSE_OPTIONS_INIT, out = HTNN_DENSE_OPTIONS_INIT;
    hidden.units = 32;
    out.units = 2;
    out.activation = HTNN_ACT_IDENTITY;
    htnn_optimizer_options oo = HTNN_OPTIMIZER_OPTIONS_INIT;
    oo.learning_rate = 0.01f;
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 60;
    fo.batch_size = 50;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    if (htnn_heuristic_create_loss(&state.loss) != HTNN_OK ||
        htnn_heuristic_create(&ops, &state, &heuristic) != HTNN_OK ||
        htnn_net_create(2, NULL, &net) != HTNN_OK ||
        htnn_net_add_dense(net, &hidden, NULL) != HTNN_OK ||
        htnn_net_add_dense(net, &out, NULL) != HTNN_OK ||
        htnn_optimizer_create(&oo, &opt) != HTNN_OK ||
        htnn_net_fit(net, opt, heuristic, x, y, N, &fo, &res) != HTNN_OK) {
        fprintf(stderr, "custom_heuristic: %s\n", htnn_last_error());
        return 1;
    }
    printf("heuristic '%s': training accuracy %.2f%%, %.2f%% of targets asked for a flip\n",
           htnn_heuristic_name(heuristic), 100 * res.accuracy,
           100.0 * (double)state.flips / (double)state.entries);
    htnn_net_free(net);
    htnn_optimizer_free(opt);
    htnn_heuristic_free(heuristic); /* calls damped_destroy */
    return res.accuracy > 0.85 ? 0 : 1;
}
