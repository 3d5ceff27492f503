/* The hill-climbing and exhaustive heuristics through the public API: hill
 * climbing never increases layer d's objective; exhaustive finds one no
 * higher than hill climbing on the same state and is the true minimum on
 * small layers; the width-limit error; options validation; statistics;
 * hill climbing inside FTPROP-MB on a Fashion-MNIST subset.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htnn/htnn.h>

/* A synthetic view of a layer d (out x in) over m examples. */
typedef struct fake_layer {
    size_t m, in, out;
    float *below_z, *below_h, *z, *w, *b, *t, *tw, *dz, *g;
    htnn_layer_view view;
} fake_layer;

static float uniform(void) { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

static void fake_init(fake_layer *f, size_t m, size_t in, size_t out, int act, int loss,
                      unsigned seed)
{
    srand(seed);
    f->m = m, f->in = in, f->out = out;
    f->below_z = malloc(m * in * sizeof(float));
    f->below_h = malloc(m * in * sizeof(float));
    f->z = malloc(m * out * sizeof(float));
    f->w = malloc(out * in * sizeof(float));
    f->b = malloc(out * sizeof(float));
    f->t = malloc(m * out * sizeof(float));
    f->tw = malloc(m * out * sizeof(float));
    f->dz = malloc(m * out * sizeof(float));
    f->g = malloc(m * in * sizeof(float));
    for (size_t i = 0; i < m * in; i++) {
        f->below_z[i] = uniform();
        f->below_h[i] = f->below_z[i] > 0.0f ? 1.0f : -1.0f;
        f->g[i] = uniform();
    }
    for (size_t i = 0; i < out * in; i++)
        f->w[i] = uniform();
    for (size_t k = 0; k < out; k++)
        f->b[k] = uniform();
    for (size_t i = 0; i < m; i++) {
        size_t label = (size_t)rand() % out;
        for (size_t k = 0; k < out; k++) {
            float zz = f->b[k];
            for (size_t j = 0; j < in; j++)
                zz += f->w[k * in + j] * f->below_h[i * in + j];
            f->z[i * out + k] = zz;
            f->t[i * out + k] = act == HTNN_ACT_IDENTITY ? (k == label ? 1.0f : -1.0f)
                                                         : (rand() & 1 ? 1.0f : -1.0f);
            f->tw[i * out + k] = 1.0f / (float)m;
            f->dz[i * out + k] = 0.0f;
        }
    }
    htnn_layer_view v = {sizeof v, 1, m, in, out, f->below_h, f->below_z, f->z, f->w, f->b,
                         f->t, f->tw, f->dz, f->g, act, loss, HTNN_ACT_SIGN, 2};
    f->view = v;
}

static void fake_free(fake_layer *f)
{
    free(f->below_z), free(f->below_h), free(f->z), free(f->w), free(f->b), free(f->t);
    free(f->tw), free(f->dz), free(f->g);
}

static double objective(const fake_layer *f, const float *targets, float reach)
{
    double loss = -1.0;
    assert_int_equal(htnn_layer_view_loss(&f->view, targets, reach, &loss), HTNN_OK);
    return loss;
}

static void check_targets_and_weights(const fake_layer *f, const float *t, const float *w)
{
    for (size_t i = 0; i < f->m * f->in; i++) {
        assert_true(t[i] == 1.0f || t[i] == -1.0f);
        assert_true(w[i] >= 0.0f && isfinite(w[i]));
    }
}

/* Hill climbing from the current outputs never increases layer d's loss
 * (or the objective with a reachability cost), for every loss and for a
 * softmax output layer. */
static void test_hill_never_increases_loss(void **state)
{
    (void)state;
    const int acts[] = {HTNN_ACT_SIGN, HTNN_ACT_SIGN, HTNN_ACT_SIGN, HTNN_ACT_STEP,
                        HTNN_ACT_IDENTITY};
    const int losses[] = {HTNN_LOSS_SOFT_HINGE, HTNN_LOSS_HINGE, HTNN_LOSS_PERCEPTRON,
                          HTNN_LOSS_SATURATED_HINGE, HTNN_LOSS_SOFT_HINGE};
    const float reaches[] = {0.0f, 0.5f};
    for (size_t c = 0; c < 5; c++)
        for (size_t r = 0; r < 2; r++)
            for (unsigned seed = 1; seed <= 5; seed++) {
                fake_layer f;
                fake_init(&f, 20, 12, c == 4 ? 5 : 7, acts[c], losses[c], seed);
                htnn_hill_options o = HTNN_HILL_OPTIONS_INIT;
                o.reach_cost = reaches[r];
                o.flips_per_sweep = seed;
                htnn_heuristic *h = NULL;
                assert_int_equal(htnn_heuristic_create_hill(&o, &h), HTNN_OK);
                assert_string_equal(htnn_heuristic_name(h), "hill");
                float *t = malloc(f.m * f.in * sizeof *t), *w = malloc(f.m * f.in * sizeof *w);
                double before = objective(&f, f.below_h, 0.0f);
                assert_int_equal(htnn_heuristic_set_targets(h, &f.view, t, w), HTNN_OK);
                check_targets_and_weights(&f, t, w);
                double after = objective(&f, t, 0.0f), after_j = objective(&f, t, reaches[r]);
                assert_true(after <= before + 1e-6 * fabs(before) + 1e-9);
                assert_true(after_j <= before + 1e-6 * fabs(before) + 1e-9);
                if (r == 0 && c < 3)
                    assert_true(after < before); /* random states always have a better flip */
                htnn_search_stats s = HTNN_SEARCH_STATS_INIT;
                assert_int_equal(htnn_heuristic_get_stats(h, &s), HTNN_OK);
                assert_int_equal(s.calls, 1);
                assert_int_equal(s.rows, f.m);
                assert_true(s.evaluations >= f.m * f.in);
                free(t), free(w);
                htnn_heuristic_free(h);
                fake_free(&f);
            }
}

/* Exhaustive search finds an objective no higher than hill climbing's on
 * the same state, and no higher than any of a set of random target rows. */
static void test_exhaustive_at_most_hill(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 8; seed++) {
        fake_layer f;
        float reach = seed % 2 ? 0.0f : 0.3f;
        fake_init(&f, 16, 9, 4, seed % 3 ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY,
                  seed % 4 ? HTNN_LOSS_SOFT_HINGE : HTNN_LOSS_HINGE, seed);
        htnn_hill_options ho = HTNN_HILL_OPTIONS_INIT;
        htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
        ho.reach_cost = eo.reach_cost = reach;
        ho.start = seed % 2 ? HTNN_HILL_START_LOSS : HTNN_HILL_START_OUTPUTS;
        htnn_heuristic *hill = NULL, *ex = NULL;
        assert_int_equal(htnn_heuristic_create_hill(&ho, &hill), HTNN_OK);
        assert_int_equal(htnn_heuristic_create_exhaustive(&eo, &ex), HTNN_OK);
        size_t n = f.m * f.in;
        float *th = malloc(n * sizeof(float)), *te = malloc(n * sizeof(float));
        float *w = malloc(n * sizeof(float)), *tr = malloc(n * sizeof(float));
        assert_int_equal(htnn_heuristic_set_targets(hill, &f.view, th, w), HTNN_OK);
        assert_int_equal(htnn_heuristic_set_targets(ex, &f.view, te, w), HTNN_OK);
        check_targets_and_weights(&f, te, w);
        double jh = objective(&f, th, reach), je = objective(&f, te, reach);
        assert_true(je <= jh + 1e-5 * fabs(jh) + 1e-9);
        for (int trial = 0; trial < 50; trial++) {
            for (size_t i = 0; i < n; i++)
                tr[i] = rand() & 1 ? 1.0f : -1.0f;
            assert_true(je <= objective(&f, tr, reach) + 1e-5 * fabs(je) + 1e-9);
        }
        htnn_search_stats s = HTNN_SEARCH_STATS_INIT;
        assert_int_equal(htnn_heuristic_get_stats(ex, &s), HTNN_OK);
        assert_int_equal(s.evaluations, f.m << f.in);
        free(th), free(te), free(w), free(tr);
        htnn_heuristic_free(hill);
        htnn_heuristic_free(ex);
        fake_free(&f);
    }
}

/* On a tie the exhaustive heuristic keeps the current output: with zero
 * weights every row costs the same, so the targets are the outputs. */
static void test_exhaustive_ties_keep_outputs(void **state)
{
    (void)state;
    fake_layer f;
    fake_init(&f, 6, 5, 3, HTNN_ACT_SIGN, HTNN_LOSS_HINGE, 3);
    memset(f.w, 0, f.out * f.in * sizeof(float));
    htnn_heuristic *ex = NULL;
    assert_int_equal(htnn_heuristic_create_exhaustive(NULL, &ex), HTNN_OK);
    float t[30], w[30];
    assert_int_equal(htnn_heuristic_set_targets(ex, &f.view, t, w), HTNN_OK);
    for (size_t i = 0; i < 30; i++) {
        assert_true(t[i] == f.below_h[i]);
        assert_true(w[i] == 0.0f); /* no flip changes the loss */
    }
    htnn_heuristic_free(ex);
    fake_free(&f);
}

static void test_width_limit_error(void **state)
{
    (void)state;
    fake_layer f;
    fake_init(&f, 2, 12, 2, HTNN_ACT_SIGN, HTNN_LOSS_HINGE, 1);
    htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
    eo.max_width = 10;
    htnn_heuristic *ex = NULL;
    assert_int_equal(htnn_heuristic_create_exhaustive(&eo, &ex), HTNN_OK);
    float t[24], w[24];
    assert_int_equal(htnn_heuristic_set_targets(ex, &f.view, t, w), HTNN_ELIMIT);
    const char *msg = htnn_last_error();
    assert_non_null(strstr(msg, "width 12"));
    assert_non_null(strstr(msg, "limit 10"));
    htnn_heuristic_free(ex);
    fake_free(&f);
    /* and through training: a 20-wide hidden layer is refused, not run */
    htnn_net *net = NULL;
    htnn_optimizer *opt = NULL;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    float x[8] = {0};
    int32_t y[2] = {0, 1};
    assert_int_equal(htnn_net_create(4, NULL, &net), HTNN_OK);
    d.units = 20;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 2;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    assert_int_equal(htnn_heuristic_create_exhaustive(NULL, &ex), HTNN_OK);
    assert_int_equal(htnn_net_train_batch(net, opt, ex, x, y, 2, NULL), HTNN_ELIMIT);
    assert_non_null(strstr(htnn_last_error(), "width 20"));
    assert_non_null(strstr(htnn_last_error(), "limit 16"));
    htnn_heuristic_free(ex);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
}

static void test_options_validation(void **state)
{
    (void)state;
    htnn_heuristic *h = NULL;
    htnn_hill_options ho = HTNN_HILL_OPTIONS_INIT;
    htnn_exhaustive_options eo = HTNN_EXHAUSTIVE_OPTIONS_INIT;
    assert_int_equal(htnn_heuristic_create_hill(NULL, NULL), HTNN_EINVAL);
    ho.max_sweeps = 0;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_EINVAL);
    ho.max_sweeps = 1;
    ho.reach_cost = -1.0f;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_EINVAL);
    ho.reach_cost = NAN;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_EINVAL);
    ho.reach_cost = 0.0f;
    ho.weighting = 7;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_EINVAL);
    ho.struct_size = sizeof ho + 8;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_EUNSUPPORTED);
    eo.max_width = 31;
    assert_int_equal(htnn_heuristic_create_exhaustive(&eo, &h), HTNN_EINVAL);
    assert_null(h);
    htnn_search_stats s = HTNN_SEARCH_STATS_INIT;
    assert_int_equal(htnn_heuristic_create_loss(&h), HTNN_OK);
    assert_int_equal(htnn_heuristic_get_stats(h, &s), HTNN_OK);
    assert_int_equal(s.calls, 0);
    htnn_heuristic_free(h);
    assert_int_equal(htnn_layer_view_loss(NULL, NULL, 0.0f, NULL), HTNN_EINVAL);
}

/* Hill climbing as the heuristic of FTPROP-MB on a Fashion-MNIST subset
 * (784-64-10, softmax): it trains, and beats chance by far. */
static void test_hill_in_ftprop_mb_fashion(void **state)
{
    (void)state;
    const char *dir = getenv("HTNN_FASHION_MNIST_DIR");
    char images[512], labels[512];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz",
             dir ? dir : "/usr/share/datasets/fashion-mnist");
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz",
             dir ? dir : "/usr/share/datasets/fashion-mnist");
    htnn_data *all = NULL, *train = NULL, *test = NULL;
    if (htnn_data_load_idx(images, labels, HTNN_SCALE_UNIT, &all) != HTNN_OK) {
        printf("Fashion-MNIST not found (%s): skipped\n", images);
        skip();
    }
    assert_int_equal(htnn_data_subset(all, 0, 3000, &train), HTNN_OK);
    assert_int_equal(htnn_data_subset(all, 50000, 1000, &test), HTNN_OK);
    htnn_net *net = NULL;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    assert_int_equal(htnn_net_create(784, NULL, &net), HTNN_OK);
    d.units = 64;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    d.units = 10;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
    htnn_optimizer *opt = NULL;
    assert_int_equal(htnn_optimizer_create(NULL, &opt), HTNN_OK);
    htnn_hill_options ho = HTNN_HILL_OPTIONS_INIT;
    ho.max_sweeps = 4;
    ho.flips_per_sweep = 8;
    htnn_heuristic *h = NULL;
    assert_int_equal(htnn_heuristic_create_hill(&ho, &h), HTNN_OK);
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    fo.epochs = 3;
    htnn_fit_result fr = HTNN_FIT_RESULT_INIT;
    assert_int_equal(htnn_net_fit(net, opt, h, htnn_data_features(train), htnn_data_labels(train),
                                  htnn_data_count(train), &fo, &fr), HTNN_OK);
    double acc = 0.0;
    assert_int_equal(htnn_net_evaluate(net, htnn_data_features(test), htnn_data_labels(test),
                                       htnn_data_count(test), NULL, &acc), HTNN_OK);
    htnn_search_stats s = HTNN_SEARCH_STATS_INIT;
    assert_int_equal(htnn_heuristic_get_stats(h, &s), HTNN_OK);
    printf("hill climbing in FTPROP-MB, 3000 Fashion-MNIST images, 3 epochs: held-out "
           "accuracy %.1f %%, %llu flips in %llu rows\n", 100.0 * acc,
           (unsigned long long)s.flips, (unsigned long long)s.rows);
    assert_true(acc > 0.6);
    assert_true(s.flips > 0);
    htnn_heuristic_free(h);
    htnn_optimizer_free(opt);
    htnn_net_free(net);
    htnn_data_free(train);
    htnn_data_free(test);
    htnn_data_free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hill_never_increases_loss),
        cmocka_unit_test(test_exhaustive_at_most_hill),
        cmocka_unit_test(test_exhaustive_ties_keep_outputs),
        cmocka_unit_test(test_width_limit_error),
        cmocka_unit_test(test_options_validation),
        cmocka_unit_test(test_hill_in_ftprop_mb_fashion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
