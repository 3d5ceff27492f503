/* annealing_heuristic: a user-defined combinatorial heuristic plugged in
 * through the vtable (htnn_heuristic_ops): simulated annealing over target
 * flips, scored with the library's own objective (htnn_layer_view_loss).
 * Per example row it proposes random single flips of the current outputs
 * and accepts a worse row with probability exp(-increase / temperature),
 * cooling geometrically, then keeps the best row seen.  It is trained here
 * with full-batch FTPROP on 3-bit parity (a 3-3-1 sign net), where the
 * randomness lets it leave the fixed points a deterministic heuristic can
 * get stuck in.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

typedef struct annealing {
    unsigned long long rng;  /* xorshift state: no global RNG */
    int steps;               /* proposals per example row */
    double t0, cooling;      /* start temperature and factor per step */
    float *row_t;            /* scratch: a one-row view's targets */
    size_t cap;
} annealing;

static double uniform01(annealing *a)
{
    a->rng ^= a->rng << 13, a->rng ^= a->rng >> 7, a->rng ^= a->rng << 17;
    return (double)(a->rng >> 11) / 9007199254740992.0;
}

/* J of one example row, through a one-row copy of the view. */
static double row_objective(const htnn_layer_view *v, size_t i, const float *row)
{
    htnn_layer_view r = *v;
    double loss = 0.0;
    r.batch = 1;
    r.input += i * v->in_width, r.input_z += i * v->in_width;
    r.z += i * v->out_width, r.targets += i * v->out_width;
    r.target_weights += i * v->out_width, r.grad_z += i * v->out_width;
    r.grad_input += i * v->in_width;
    return htnn_layer_view_loss(&r, row, 0.0f, &loss) == HTNN_OK ? loss : INFINITY;
}

static htnn_status anneal_set_targets(void *state, const htnn_layer_view *v, float *t, float *w)
{
    annealing *a = state;
    size_t n = v->in_width;
    if (a->cap < 2 * n) {
        float *p = realloc(a->row_t, 2 * n * sizeof *p); /* grows once */
        if (p == NULL)
            return HTNN_ENOMEM;
        a->row_t = p, a->cap = 2 * n;
    }
    float *cur = a->row_t, *best = a->row_t + n;
    for (size_t i = 0; i < v->batch; i++) {
        memcpy(cur, t + i * n, n * sizeof *cur); /* arrives as the current outputs */
        memcpy(best, cur, n * sizeof *cur);
        double j = row_objective(v, i, cur), jbest = j, temp = a->t0;
        for (int s = 0; s < a->steps; s++, temp *= a->cooling) {
            size_t k = (size_t)(uniform01(a) * (double)n) % n;
            cur[k] = -cur[k];
            double jn = row_objective(v, i, cur);
            if (jn <= j || uniform01(a) < exp((j - jn) / temp)) {
                j = jn;
                if (j < jbest)
                    jbest = j, memcpy(best, cur, n * sizeof *cur);
            } else {
                cur[k] = -cur[k];
            }
        }
        memcpy(t + i * n, best, n * sizeof *best);
        for (size_t k = 0; k < n; k++)
            w[i * n + k] = 1.0f;
    }
    return HTNN_OK;
}

static void anneal_destroy(void *state) { free(((annealing *)state)->row_t); }

int main(void)
{
    enum { N = 3, COUNT = 8 };
    float x[COUNT * N];
    int32_t y[COUNT];
    for (int i = 0; i < COUNT; i++) {
        int ones = 0;
        for (int j = 0; j < N; j++) {
            x[i * N + j] = (i >> j) & 1 ? 1.0f : -1.0f;
            ones += (i >> j) & 1;
        }
        y[i] = ones & 1;
    }
    annealing state = {88172645463325252ull, 40, 0.5, 0.9, NULL, 0};
    htnn_heuristic_ops ops = {sizeof ops, "annealing", anneal_set_targets, anneal_destroy};
    htnn_heuristic *h = NULL;
    htnn_net *net = NULL;
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    htnn_ftprop_result r = HTNN_FTPROP_RESULT_INIT;
    htnn_dense_options out = HTNN_DENSE_OPTIONS_INIT;
    no.output = HTNN_OUTPUT_HARD_THRESHOLD; /* one sign output unit: labels 0/1 */
    d.units = N;                            /* N hidden sign units */
    d.loss = HTNN_LOSS_HINGE;
    out.units = 1;
    out.loss = HTNN_LOSS_HINGE;
    if (htnn_heuristic_create(&ops, &state, &h) != HTNN_OK ||
        htnn_net_create(N, &no, &net) != HTNN_OK ||
        htnn_net_add_dense(net, &d, NULL) != HTNN_OK ||
        htnn_net_add_dense(net, &out, NULL) != HTNN_OK ||
        htnn_net_ftprop(net, h, x, y, COUNT, NULL, &r) != HTNN_OK) {
        fprintf(stderr, "annealing_heuristic: %s\n", htnn_last_error());
        return 1;
    }
    printf("heuristic '%s' on 3-bit parity: %s, training accuracy %.0f%%, %zu heuristic "
           "calls, %zu restarts, %.3f s\n", htnn_heuristic_name(h),
           r.feasible ? "feasible targets found" : "no feasible targets",
           100.0 * r.accuracy, r.heuristic_calls, r.restarts, r.seconds);
    htnn_net_free(net);
    htnn_heuristic_free(h); /* calls anneal_destroy */
    return r.feasible ? 0 : 1;
}
