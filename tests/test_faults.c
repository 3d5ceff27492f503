/* Allocation-failure injection (doc/robustness.md).  Every heap allocation
 * of the library goes through lib/alloc.h; this test links the library's
 * object files to reach the probe there.  For each walked call it counts
 * the N allocations of a successful call, then for every k in 0..N-1 makes
 * the k-th fail and checks that the call returns HTNN_ENOMEM with an "out
 * of memory" message, that nothing leaks (blocks allocated minus blocks
 * freed is back to zero once the fixture is freed), and that the objects
 * the call worked on are unchanged and still usable.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "fuzz/fuzz_crc.h"
#include "htnn/htnn.h"
#include "htnn_config.h"

#define WIDTH 8
#define CLASSES 3
#define EXAMPLES 48
#define BIG_WIDTH 256   /* the big net's file is > 64 KiB, its C export > 64 KiB */
#define BIG_HIDDEN 128
#define CSV_LONG_FIELD 70000 /* longer than the CSV reader's first 64 KiB buffer */
#define CSV_ROWS 150    /* more than the 64 rows the CSV reader first reserves */

static const char OLD_BYTES[] = "the previous file";

/* ---- data and nets ------------------------------------------------------ */

/* Inputs for both nets: the small one reads the first EXAMPLES x WIDTH. */
static float g_x[EXAMPLES * BIG_WIDTH];
static int32_t g_y[EXAMPLES];

static void make_data(void)
{
    uint64_t s = 12345;
    for (size_t i = 0; i < EXAMPLES * BIG_WIDTH; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        g_x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    for (size_t i = 0; i < EXAMPLES; i++)
        g_y[i] = (int32_t)(i % CLASSES);
}

static void add(htnn_net *net, size_t units, int act, int binary)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = units;
    d.activation = act;
    d.binary_weights = binary;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
}

/* WIDTH-16-16-12-CLASSES, sign hidden units: scaled and sign binary weights
 * in the first two layers, so packing takes every path (u8 thresholds,
 * popcount thresholds, float layers), and four layers, so a fifth one grows
 * the layer array. */
static htnn_net *small_net(void)
{
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(WIDTH, NULL, &net), HTNN_OK);
    add(net, 16, HTNN_ACT_SIGN, HTNN_BINARY_SCALED);
    add(net, 16, HTNN_ACT_SIGN, HTNN_BINARY_SIGN);
    add(net, 12, HTNN_ACT_SIGN, HTNN_BINARY_NONE);
    add(net, CLASSES, HTNN_ACT_IDENTITY, HTNN_BINARY_NONE);
    return net;
}

/* BIG_WIDTH-BIG_HIDDEN-CLASSES with float weights. */
static htnn_net *big_net(void)
{
    htnn_net *net = NULL;
    assert_int_equal(htnn_net_create(BIG_WIDTH, NULL, &net), HTNN_OK);
    add(net, BIG_HIDDEN, HTNN_ACT_SIGN, HTNN_BINARY_NONE);
    add(net, CLASSES, HTNN_ACT_IDENTITY, HTNN_BINARY_NONE);
    return net;
}

/* 1x6x6 inputs: conv 4x3x3 -> max-pool 2 -> batch norm + sign -> dense
 * CLASSES: every layer kind. */
#define CONV_SIDE 6
static htnn_net *conv_net(void)
{
    htnn_net *net = NULL;
    htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
    htnn_maxpool2d_options m = HTNN_MAXPOOL2D_OPTIONS_INIT;
    htnn_batchnorm_options bn = HTNN_BATCHNORM_OPTIONS_INIT;
    assert_int_equal(htnn_net_create(CONV_SIDE * CONV_SIDE, NULL, &net), HTNN_OK);
    assert_int_equal(htnn_net_set_input_shape(net, 1, CONV_SIDE, CONV_SIDE), HTNN_OK);
    c.channels = 4;
    assert_int_equal(htnn_net_add_conv2d(net, &c, NULL), HTNN_OK);
    assert_int_equal(htnn_net_add_maxpool2d(net, &m, NULL), HTNN_OK);
    bn.activation = HTNN_ACT_SIGN;
    assert_int_equal(htnn_net_add_batchnorm(net, &bn, NULL), HTNN_OK);
    add(net, CLASSES, HTNN_ACT_IDENTITY, HTNN_BINARY_NONE);
    return net;
}

/* ---- the fixture: what a walked call works on -------------------------- */

typedef struct fixture {
    char dir[64];            /* scratch directory, "" when unused */
    char path[128];          /* dir/model */
    char link[128];          /* dir/link -> path */
    htnn_net *net;           /* the pre-existing objects */
    htnn_optimizer *opt;
    htnn_heuristic *heuristic;
    htnn_packed *packed;
    void *bytes;             /* a saved model the load cases read */
    size_t size;
    void *snapshot;          /* the net's bytes before the call */
    size_t snapshot_size;
    pid_t writer;            /* FIFO writer process, 0 when none */
    /* what the calls produce */
    htnn_net *net_out;
    htnn_packed *packed_out;
    htnn_data *data_out;
    htnn_optimizer *opt_out;
    htnn_heuristic *heuristic_out;
    void *buf_out;
    char *text_out;
    size_t size_out;
} fixture;

static void make_dir(fixture *f)
{
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/htnn-faults-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/model", f->dir);
    snprintf(f->link, sizeof f->link, "%s/link", f->dir);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    assert_int_equal(fclose(fp), 0);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char child[600];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", dir, e->d_name);
        unlink(child);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

static void stop_writer(fixture *f)
{
    if (f->writer <= 0)
        return;
    kill(f->writer, SIGKILL);
    waitpid(f->writer, NULL, 0);
    f->writer = 0;
}

static void fixture_free(fixture *f)
{
    stop_writer(f);
    htnn_net_free(f->net);
    htnn_optimizer_free(f->opt);
    htnn_heuristic_free(f->heuristic);
    htnn_packed_free(f->packed);
    htnn_free(f->bytes);
    htnn_free(f->snapshot);
    htnn_net_free(f->net_out);
    htnn_packed_free(f->packed_out);
    htnn_data_free(f->data_out);
    htnn_optimizer_free(f->opt_out);
    htnn_heuristic_free(f->heuristic_out);
    htnn_free(f->buf_out);
    htnn_free(f->text_out);
    if (f->dir[0] != '\0')
        remove_dir(f->dir);
    memset(f, 0, sizeof *f);
}

/* The net's bytes now, to compare after a failed call. */
static void take_snapshot(fixture *f)
{
    assert_int_equal(htnn_net_save_buffer(f->net, &f->snapshot, &f->snapshot_size), HTNN_OK);
}

static void assert_net_unchanged(fixture *f)
{
    void *now = NULL;
    size_t size = 0;
    assert_int_equal(htnn_net_save_buffer(f->net, &now, &size), HTNN_OK);
    assert_int_equal(size, f->snapshot_size);
    assert_memory_equal(now, f->snapshot, size);
    htnn_free(now);
}

static void assert_net_predicts(htnn_net *net)
{
    int32_t classes[EXAMPLES];
    assert_int_equal(htnn_net_predict(net, g_x, EXAMPLES, classes), HTNN_OK);
    for (size_t i = 0; i < EXAMPLES; i++)
        assert_true(classes[i] >= 0 && classes[i] < CLASSES);
}

static void assert_file_is_old(const fixture *f, const char *path, size_t entries)
{
    char got[sizeof OLD_BYTES + 1];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(got, 1, sizeof got, fp);
    fclose(fp);
    assert_int_equal(n, sizeof OLD_BYTES);
    assert_memory_equal(got, OLD_BYTES, sizeof OLD_BYTES);
    assert_int_equal(count_entries(f->dir), entries); /* no temporary file left */
}

/* ---- the walker --------------------------------------------------------- */

typedef struct fault_case {
    const char *name;
    void (*setup)(fixture *f);                /* builds the pre-existing objects */
    htnn_status (*run)(fixture *f);           /* the walked call */
    void (*after_failure)(fixture *f);        /* they are unchanged and usable */
} fault_case;

/* Sets up, runs the call with the k-th allocation failing (MEM_PROBE_NEVER:
 * none), checks, frees; returns the allocations the call made. */
static size_t run_once(const fault_case *c, size_t k)
{
    fixture f;
    memset(&f, 0, sizeof f);
    c->setup(&f);
    size_t before = mem_probe_calls();
    mem_probe_fail_after(k);
    htnn_clear_error();
    htnn_status st = c->run(&f);
    size_t calls = mem_probe_calls() - before;
    if (k == MEM_PROBE_NEVER) {
        if (st != HTNN_OK)
            fail_msg("%s: %s", c->name, htnn_last_error());
    } else {
        if (!mem_probe_fired())
            fail_msg("%s: allocation %zu of %zu was never reached", c->name, k, calls);
        if (st != HTNN_ENOMEM || strstr(htnn_last_error(), "out of memory") == NULL)
            fail_msg("%s: allocation %zu failed: status %d, \"%s\"", c->name, k, (int)st,
                     htnn_last_error());
        c->after_failure(&f);
    }
    fixture_free(&f);
    if (mem_probe_live() != 0)
        fail_msg("%s: %ld blocks leaked (allocation %zu failed)", c->name, mem_probe_live(),
                 k);
    return calls;
}

static size_t walk(const fault_case *c)
{
    mem_probe_start();
    size_t n = run_once(c, MEM_PROBE_NEVER), reached = 0;
    assert_true(n > 0);
    for (size_t k = 0; k < n; k++) {
        run_once(c, k);
        reached++;
    }
    mem_probe_stop();
    assert_int_equal(reached, n); /* every allocation site of the call failed once */
    print_message("%-32s %3zu of %3zu allocations failed in turn\n", c->name, reached, n);
    return n;
}

/* ---- cases: nets -------------------------------------------------------- */

static void setup_nothing(fixture *f) { (void)f; }

static void setup_net(fixture *f)
{
    f->net = small_net();
    take_snapshot(f);
}

static void check_no_net_out(fixture *f) { assert_null(f->net_out); }

static void check_net_untouched(fixture *f)
{
    assert_net_unchanged(f);
    assert_net_predicts(f->net);
    assert_null(f->net_out);
    assert_null(f->packed_out);
}

static htnn_status run_create(fixture *f) { return htnn_net_create(WIDTH, NULL, &f->net_out); }

static htnn_status run_add_dense(fixture *f)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = 5;
    d.binary_weights = HTNN_BINARY_SCALED;
    return htnn_net_add_dense(f->net, &d, NULL);
}

static void check_add_dense(fixture *f)
{
    assert_int_equal(htnn_net_layer_count(f->net), 4);
    check_net_untouched(f);
    assert_int_equal(run_add_dense(f), HTNN_OK);
    assert_int_equal(htnn_net_layer_count(f->net), 5);
}

static htnn_status run_clone(fixture *f) { return htnn_net_clone(f->net, &f->net_out); }

/* ---- cases: training ---------------------------------------------------- */

static void setup_adam(fixture *f)
{
    setup_net(f);
    assert_int_equal(htnn_optimizer_create(NULL, &f->opt), HTNN_OK);
}

static void setup_sgd(fixture *f)
{
    htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
    o.kind = HTNN_OPT_SGD;
    o.momentum = 0.9f;
    setup_net(f);
    assert_int_equal(htnn_optimizer_create(&o, &f->opt), HTNN_OK);
}

static void setup_hill(fixture *f)
{
    setup_adam(f);
    assert_int_equal(htnn_heuristic_create_hill(NULL, &f->heuristic), HTNN_OK);
}

static htnn_status run_fit(fixture *f)
{
    htnn_fit_options o = HTNN_FIT_OPTIONS_INIT;
    o.epochs = 2;
    o.batch_size = 16;
    o.val_x = g_x;
    o.val_labels = g_y;
    o.val_count = 16;
    return htnn_net_fit(f->net, f->opt, f->heuristic, g_x, g_y, EXAMPLES, &o, NULL);
}

static htnn_status run_train_batch(fixture *f)
{
    return htnn_net_train_batch(f->net, f->opt, f->heuristic, g_x, g_y, 32, NULL);
}

/* Nothing was trained; the same call succeeds now. */
static void check_fit(fixture *f)
{
    check_net_untouched(f);
    assert_int_equal(htnn_optimizer_steps(f->opt), 0);
    assert_int_equal(run_fit(f), HTNN_OK);
    assert_net_predicts(f->net);
}

static void check_train_batch(fixture *f)
{
    check_net_untouched(f);
    assert_int_equal(htnn_optimizer_steps(f->opt), 0);
    assert_int_equal(run_train_batch(f), HTNN_OK);
    assert_int_equal(htnn_optimizer_steps(f->opt), 1);
}

/* XOR on a 2-2-1 sign net. */
static const float xor_x[8] = {-1, -1, -1, 1, 1, -1, 1, 1};
static const int32_t xor_y[4] = {0, 1, 1, 0};

static void setup_xor(fixture *f)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.output = HTNN_OUTPUT_HARD_THRESHOLD;
    assert_int_equal(htnn_net_create(2, &no, &f->net), HTNN_OK);
    add(f->net, 2, HTNN_ACT_SIGN, HTNN_BINARY_NONE);
    add(f->net, 1, HTNN_ACT_SIGN, HTNN_BINARY_NONE);
}

static htnn_status run_ftprop(fixture *f)
{
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    o.solver = HTNN_SOLVER_PERCEPTRON;
    o.restarts = 2;
    return htnn_net_ftprop(f->net, NULL, xor_x, xor_y, 4, &o, NULL);
}

/* The full-batch search changes weights as it goes (documented); the net
 * must still work and the search run again. */
static void check_ftprop_again(fixture *f, htnn_status (*again)(fixture *))
{
    int32_t classes[4];
    assert_int_equal(htnn_net_predict(f->net, xor_x, 4, classes), HTNN_OK);
    assert_int_equal(again(f), HTNN_OK);
}

static void check_ftprop(fixture *f) { check_ftprop_again(f, run_ftprop); }

#if HTNN_HAVE_GLPK
/* The LP solver: GLPK's own allocations are out of reach (its allocator
 * aborts on failure), the library's around them are not. */
static htnn_status run_ftprop_lp(fixture *f)
{
    htnn_ftprop_options o = HTNN_FTPROP_OPTIONS_INIT;
    o.solver = HTNN_SOLVER_LP;
    o.restarts = 2;
    return htnn_net_ftprop(f->net, NULL, xor_x, xor_y, 4, &o, NULL);
}

static void check_ftprop_lp(fixture *f) { check_ftprop_again(f, run_ftprop_lp); }
#endif

/* ---- cases: layer kinds ------------------------------------------------- */

/* An empty 1x6x6 net for the add_* calls (the first layer grows the layer
 * array). */
static void setup_shaped(fixture *f)
{
    assert_int_equal(htnn_net_create(CONV_SIDE * CONV_SIDE, NULL, &f->net), HTNN_OK);
    assert_int_equal(htnn_net_set_input_shape(f->net, 1, CONV_SIDE, CONV_SIDE), HTNN_OK);
    take_snapshot(f);
}

static htnn_status run_add_conv(fixture *f)
{
    htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
    c.channels = 3;
    c.binary_weights = HTNN_BINARY_SCALED;
    return htnn_net_add_conv2d(f->net, &c, NULL);
}

static htnn_status run_add_pool(fixture *f)
{
    htnn_maxpool2d_options m = HTNN_MAXPOOL2D_OPTIONS_INIT;
    return htnn_net_add_maxpool2d(f->net, &m, NULL);
}

static htnn_status run_add_batchnorm(fixture *f)
{
    htnn_batchnorm_options bn = HTNN_BATCHNORM_OPTIONS_INIT;
    return htnn_net_add_batchnorm(f->net, &bn, NULL);
}

/* The empty net is unchanged (saves to the same bytes) and still takes a
 * layer. */
static void check_no_layer(fixture *f)
{
    assert_int_equal(htnn_net_layer_count(f->net), 0);
    assert_net_unchanged(f);
    assert_int_equal(run_add_pool(f), HTNN_OK);
}

static void setup_conv_adam(fixture *f)
{
    f->net = conv_net();
    take_snapshot(f);
    assert_int_equal(htnn_optimizer_create(NULL, &f->opt), HTNN_OK);
}

static void setup_conv_bytes(fixture *f)
{
    htnn_net *net = conv_net();
    assert_int_equal(htnn_net_save_buffer(net, &f->bytes, &f->size), HTNN_OK);
    htnn_net_free(net);
}

/* ---- cases: checkpoints ------------------------------------------------- */

/* Stops a fit at the end of its first epoch. */
static int stop_after_epoch(const htnn_progress *p, void *user)
{
    (void)user;
    return p->end_of_epoch;
}

static htnn_status fit_with_checkpoint(fixture *f, htnn_progress_fn progress, int resume)
{
    htnn_fit_options o = HTNN_FIT_OPTIONS_INIT;
    o.epochs = 2;
    o.batch_size = 16;
    o.progress = progress;
    o.checkpoint_path = f->path;
    o.checkpoint_every = 2;
    o.resume = resume;
    return htnn_net_fit(f->net, f->opt, NULL, g_x, g_y, EXAMPLES, &o, NULL);
}

static void setup_checkpoint(fixture *f)
{
    setup_adam(f);
    make_dir(f);
}

static htnn_status run_fit_checkpoint(fixture *f) { return fit_with_checkpoint(f, NULL, 0); }

/* A failure before the first batch (steps still 0) leaves the net as it
 * was; a later one (writing a checkpoint) leaves it trained.  Either way
 * the net predicts, the checkpoint on disk, if any, is whole, no temporary
 * file is left, and the same fit succeeds now. */
static void check_checkpointed_fit(fixture *f, htnn_status (*again)(fixture *))
{
    htnn_net *back = NULL;
    if (htnn_optimizer_steps(f->opt) == 0)
        assert_net_unchanged(f);
    assert_net_predicts(f->net);
    assert_true(count_entries(f->dir) <= 1);
    if (count_entries(f->dir) == 1) {
        assert_int_equal(htnn_net_load(f->path, &back), HTNN_OK);
        htnn_net_free(back);
    }
    assert_int_equal(again(f), HTNN_OK);
}

static void check_fit_checkpoint(fixture *f)
{
    check_checkpointed_fit(f, run_fit_checkpoint);
}

/* A checkpoint after one epoch of two, to resume from. */
static void setup_resume(fixture *f)
{
    setup_checkpoint(f);
    assert_int_equal(fit_with_checkpoint(f, stop_after_epoch, 0), HTNN_OK);
    htnn_net_free(f->net);
    htnn_optimizer_free(f->opt);
    htnn_free(f->snapshot);
    setup_adam(f);
}

static htnn_status run_fit_resume(fixture *f) { return fit_with_checkpoint(f, NULL, 1); }

static void check_fit_resume(fixture *f) { check_checkpointed_fit(f, run_fit_resume); }

/* ---- cases: model files ------------------------------------------------- */

static void setup_save(fixture *f)
{
    setup_net(f);
    make_dir(f);
    write_file(f->path, OLD_BYTES, sizeof OLD_BYTES);
}

static void setup_save_link(fixture *f)
{
    setup_save(f);
    assert_int_equal(symlink(f->path, f->link), 0);
}

static htnn_status run_save(fixture *f) { return htnn_net_save(f->net, f->path); }
static htnn_status run_save_link(fixture *f) { return htnn_net_save(f->net, f->link); }

static void check_save(fixture *f)
{
    check_net_untouched(f);
    assert_file_is_old(f, f->path, 1);
}

static void check_save_link(fixture *f)
{
    check_net_untouched(f);
    assert_file_is_old(f, f->path, 2);
}

static htnn_status run_save_buffer(fixture *f)
{
    return htnn_net_save_buffer(f->net, &f->buf_out, &f->size_out);
}

static void check_save_buffer(fixture *f)
{
    check_net_untouched(f);
    assert_null(f->buf_out);
}

static void setup_bytes(fixture *f)
{
    htnn_net *net = small_net();
    assert_int_equal(htnn_net_save_buffer(net, &f->bytes, &f->size), HTNN_OK);
    htnn_net_free(net);
}

static void setup_load(fixture *f)
{
    setup_bytes(f);
    make_dir(f);
    write_file(f->path, f->bytes, f->size);
}

/* A FIFO has no size to size the buffer by: the reader grows it from 64
 * KiB, so the big net's file walks the growth too.  A child writes it. */
static void setup_load_fifo(fixture *f)
{
    htnn_net *net = big_net();
    assert_int_equal(htnn_net_save_buffer(net, &f->bytes, &f->size), HTNN_OK);
    htnn_net_free(net);
    assert_true(f->size > 2 * 65536);
    make_dir(f);
    assert_int_equal(mkfifo(f->path, 0600), 0);
    f->writer = fork();
    assert_true(f->writer >= 0);
    if (f->writer == 0) {
        signal(SIGPIPE, SIG_DFL);
        int fd = open(f->path, O_WRONLY);
        const char *p = f->bytes;
        size_t left = f->size;
        while (fd >= 0 && left > 0) {
            ssize_t n = write(fd, p, left);
            if (n <= 0)
                _exit(1);
            p += n;
            left -= (size_t)n;
        }
        _exit(0);
    }
}

static htnn_status run_load(fixture *f) { return htnn_net_load(f->path, &f->net_out); }

static htnn_status run_load_buffer(fixture *f)
{
    return htnn_net_load_buffer(f->bytes, f->size, &f->net_out);
}

/* ---- cases: packed nets ------------------------------------------------- */

static htnn_status run_pack(fixture *f) { return htnn_net_pack(f->net, &f->packed_out); }

static void setup_packed(fixture *f)
{
    setup_net(f);
    assert_int_equal(htnn_net_pack(f->net, &f->packed), HTNN_OK);
}

static void setup_packed_save(fixture *f)
{
    setup_packed(f);
    make_dir(f);
    write_file(f->path, OLD_BYTES, sizeof OLD_BYTES);
}

static void assert_packed_predicts(htnn_packed *p)
{
    int32_t classes[EXAMPLES];
    assert_int_equal(htnn_packed_predict(p, g_x, EXAMPLES, classes), HTNN_OK);
}

static htnn_status run_packed_save(fixture *f) { return htnn_packed_save(f->packed, f->path); }

static void check_packed_save(fixture *f)
{
    assert_packed_predicts(f->packed);
    assert_file_is_old(f, f->path, 1);
}

static htnn_status run_packed_save_buffer(fixture *f)
{
    return htnn_packed_save_buffer(f->packed, &f->buf_out, &f->size_out);
}

static void check_packed_untouched(fixture *f)
{
    assert_packed_predicts(f->packed);
    assert_null(f->buf_out);
    assert_null(f->text_out);
}

static void setup_packed_bytes(fixture *f)
{
    setup_packed(f);
    assert_int_equal(htnn_packed_save_buffer(f->packed, &f->bytes, &f->size), HTNN_OK);
    make_dir(f);
    write_file(f->path, f->bytes, f->size);
}

static htnn_status run_packed_load(fixture *f)
{
    return htnn_packed_load(f->path, &f->packed_out);
}

static htnn_status run_packed_load_buffer(fixture *f)
{
    return htnn_packed_load_buffer(f->bytes, f->size, &f->packed_out);
}

static void check_no_packed_out(fixture *f) { assert_null(f->packed_out); }

/* From 1 thread, and from 2 (a pool and a second scratch to keep). */
static htnn_status run_packed_threads(fixture *f) { return htnn_packed_set_threads(f->packed, 4); }

static void setup_packed_two_threads(fixture *f)
{
    setup_packed(f);
    assert_int_equal(htnn_packed_set_threads(f->packed, 2), HTNN_OK);
}

/* The setting is unchanged and works: g_x read as 8-wide rows is more
 * than one block (64 rows), so 2 threads use their pool. */
static void assert_threads_kept(fixture *f, int threads)
{
    enum { ROWS = EXAMPLES * BIG_WIDTH / WIDTH };
    static int32_t classes[ROWS];
    assert_int_equal(htnn_packed_threads(f->packed), threads);
    assert_int_equal(htnn_packed_predict(f->packed, g_x, ROWS, classes), HTNN_OK);
}

static void check_one_thread(fixture *f) { assert_threads_kept(f, 1); }
static void check_two_threads(fixture *f) { assert_threads_kept(f, 2); }

/* The big net's float first layer prints > 64 KiB of C: the text grows. */
static void setup_big_packed(fixture *f)
{
    f->net = big_net();
    assert_int_equal(htnn_net_pack(f->net, &f->packed), HTNN_OK);
}

static htnn_status run_export_c(fixture *f)
{
    return htnn_packed_export_c(f->packed, "m", &f->text_out, &f->size_out);
}

/* ---- cases: data sets --------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

/* 10 images of 2 x 3 bytes and their labels, as dir/model and dir/labels. */
static void setup_idx(fixture *f)
{
    unsigned char images[16 + 60], labels[8 + 10];
    put_be32(images, 0x803);
    put_be32(images + 4, 10);
    put_be32(images + 8, 2);
    put_be32(images + 12, 3);
    put_be32(labels, 0x801);
    put_be32(labels + 4, 10);
    for (int i = 0; i < 60; i++)
        images[16 + i] = (unsigned char)(i * 4);
    for (int i = 0; i < 10; i++)
        labels[8 + i] = (unsigned char)(i % 3);
    make_dir(f);
    write_file(f->path, images, sizeof images);
    snprintf(f->link, sizeof f->link, "%s/labels", f->dir);
    write_file(f->link, labels, sizeof labels);
}

static htnn_status run_idx(fixture *f)
{
    return htnn_data_load_idx(f->path, f->link, HTNN_SCALE_UNIT, &f->data_out);
}

/* A part in the middle: seeks past rows in both files. */
static htnn_status run_idx_rows(fixture *f)
{
    return htnn_data_load_idx_rows(f->path, f->link, HTNN_SCALE_UNIT, 3, 4, &f->data_out);
}

/* A header, one line longer than the first buffer (a number with many
 * leading zeros) and more rows than first reserved. */
static void setup_csv(fixture *f)
{
    make_dir(f);
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fprintf(fp, "label,a,b\n1,");
    for (int i = 0; i < CSV_LONG_FIELD; i++)
        fputc('0', fp);
    fprintf(fp, "5,2\n");
    for (int i = 1; i < CSV_ROWS; i++)
        fprintf(fp, "%d,%d.5,%d\n", i % 3, i, -i);
    assert_int_equal(fclose(fp), 0);
}

static htnn_status run_csv(fixture *f)
{
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    o.scale = HTNN_SCALE_UNIT;
    return htnn_data_load_csv(f->path, &o, &f->data_out);
}

static void check_no_data_out(fixture *f) { assert_null(f->data_out); }

static htnn_status run_data_create(fixture *f)
{
    return htnn_data_create(g_x, g_y, EXAMPLES, WIDTH, &f->data_out);
}

/* ---- cases: optimizers and heuristics ----------------------------------- */

static htnn_status run_optimizer_create(fixture *f)
{
    return htnn_optimizer_create(NULL, &f->opt_out);
}

static void check_no_optimizer_out(fixture *f) { assert_null(f->opt_out); }

static htnn_status user_targets(void *state, const htnn_layer_view *view, float *t, float *w)
{
    (void)state, (void)view, (void)t, (void)w;
    return HTNN_OK;
}

static int destroyed;
static void user_destroy(void *state) { destroyed += state == &destroyed; }

/* The caller keeps its state when creation fails (destroy is not called). */
static htnn_status run_heuristic_create(fixture *f)
{
    htnn_heuristic_ops ops = {sizeof ops, "user", user_targets, user_destroy};
    destroyed = 0;
    return htnn_heuristic_create(&ops, &destroyed, &f->heuristic_out);
}

static void check_user_heuristic(fixture *f)
{
    assert_null(f->heuristic_out);
    assert_int_equal(destroyed, 0);
}

static htnn_status run_loss_create(fixture *f)
{
    return htnn_heuristic_create_loss(&f->heuristic_out);
}

static htnn_status run_hill_create(fixture *f)
{
    return htnn_heuristic_create_hill(NULL, &f->heuristic_out);
}

static htnn_status run_exhaustive_create(fixture *f)
{
    return htnn_heuristic_create_exhaustive(NULL, &f->heuristic_out);
}

static void check_no_heuristic_out(fixture *f) { assert_null(f->heuristic_out); }

/* ---- the table ---------------------------------------------------------- */

static const fault_case cases[] = {
    {"htnn_net_create", setup_nothing, run_create, check_no_net_out},
    {"htnn_net_add_dense", setup_net, run_add_dense, check_add_dense},
    {"htnn_net_clone", setup_net, run_clone, check_net_untouched},
    {"htnn_net_fit (validation)", setup_adam, run_fit, check_fit},
    {"htnn_net_fit (hill climbing)", setup_hill, run_fit, check_fit},
    {"htnn_net_train_batch", setup_sgd, run_train_batch, check_train_batch},
    {"htnn_net_add_conv2d", setup_shaped, run_add_conv, check_no_layer},
    {"htnn_net_add_maxpool2d", setup_shaped, run_add_pool, check_no_layer},
    {"htnn_net_add_batchnorm", setup_shaped, run_add_batchnorm, check_no_layer},
    {"htnn_net_fit (conv net)", setup_conv_adam, run_fit, check_fit},
    {"htnn_net_fit (checkpoints)", setup_checkpoint, run_fit_checkpoint, check_fit_checkpoint},
    {"htnn_net_fit (resume)", setup_resume, run_fit_resume, check_fit_resume},
    {"htnn_net_ftprop", setup_xor, run_ftprop, check_ftprop},
#if HTNN_HAVE_GLPK
    {"htnn_net_ftprop (LP solver)", setup_xor, run_ftprop_lp, check_ftprop_lp},
#endif
    {"htnn_net_save", setup_save, run_save, check_save},
    {"htnn_net_save (symlink)", setup_save_link, run_save_link, check_save_link},
    {"htnn_net_save_buffer", setup_net, run_save_buffer, check_save_buffer},
    {"htnn_net_load", setup_load, run_load, check_no_net_out},
    {"htnn_net_load (FIFO)", setup_load_fifo, run_load, check_no_net_out},
    {"htnn_net_load_buffer", setup_bytes, run_load_buffer, check_no_net_out},
    {"htnn_net_load_buffer (conv net)", setup_conv_bytes, run_load_buffer, check_no_net_out},
    {"htnn_net_pack", setup_net, run_pack, check_net_untouched},
    {"htnn_packed_save", setup_packed_save, run_packed_save, check_packed_save},
    {"htnn_packed_save_buffer", setup_packed, run_packed_save_buffer, check_packed_untouched},
    {"htnn_packed_load", setup_packed_bytes, run_packed_load, check_no_packed_out},
    {"htnn_packed_load_buffer", setup_packed_bytes, run_packed_load_buffer,
     check_no_packed_out},
    {"htnn_packed_export_c", setup_big_packed, run_export_c, check_packed_untouched},
    {"htnn_packed_set_threads", setup_packed, run_packed_threads, check_one_thread},
    {"htnn_packed_set_threads (from 2)", setup_packed_two_threads, run_packed_threads,
     check_two_threads},
    {"htnn_data_load_idx", setup_idx, run_idx, check_no_data_out},
    {"htnn_data_load_idx_rows", setup_idx, run_idx_rows, check_no_data_out},
    {"htnn_data_load_csv", setup_csv, run_csv, check_no_data_out},
    {"htnn_data_create", setup_nothing, run_data_create, check_no_data_out},
    {"htnn_optimizer_create", setup_nothing, run_optimizer_create, check_no_optimizer_out},
    {"htnn_heuristic_create", setup_nothing, run_heuristic_create, check_user_heuristic},
    {"htnn_heuristic_create_loss", setup_nothing, run_loss_create, check_no_heuristic_out},
    {"htnn_heuristic_create_hill", setup_nothing, run_hill_create, check_no_heuristic_out},
    {"htnn_heuristic_create_exhaustive", setup_nothing, run_exhaustive_create,
     check_no_heuristic_out},
};

static void test_walk(void **state) { walk(*state); }

/* ---- loaders allocate what their input can back ------------------------ */

/* Every model file of the fuzz corpus (tests/fuzz/corpus/model, including
 * regression inputs), as it is and with its CRC recomputed: loading never
 * asks for more than a small multiple of the file's size (a layer holds its
 * weights, gradients and binarised copies: at most 4 floats per stored
 * one), however corrupt the counts in it. */
#define LOAD_BYTES_PER_BYTE 8
#define LOAD_SLACK 65536

static void check_load_allocations(const unsigned char *data, size_t size, const char *name)
{
    htnn_net *net = NULL;
    mem_probe_start();
    htnn_status st = htnn_net_load_buffer(data, size, &net);
    size_t largest = mem_probe_largest();
    htnn_net_free(net);
    long live = mem_probe_live();
    mem_probe_stop();
    if (largest > LOAD_BYTES_PER_BYTE * size + LOAD_SLACK || live != 0)
        fail_msg("%s (%zu bytes, status %d): largest allocation %zu bytes, %ld blocks "
                 "leaked", name, size, (int)st, largest, live);
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *size = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void test_model_loads_allocate_within_input(void **state)
{
    (void)state;
    const char *root = getenv("HTNN_SOURCE_ROOT");
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/model", root ? root : ".");
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t files = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        size_t size;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unsigned char *raw = read_whole(path, &size);
        unsigned char *fixed = copy_with_crc(raw, size);
        assert_non_null(fixed);
        check_load_allocations(raw, size, e->d_name);
        check_load_allocations(fixed, size, e->d_name);
        free(raw);
        free(fixed);
        files++;
    }
    closedir(d);
    assert_true(files > 0);
    print_message("%zu model files loaded within %d x their size + %d bytes\n", files,
                  LOAD_BYTES_PER_BYTE, LOAD_SLACK);
}

/* The probe itself: counts, fails once, tracks live blocks. */
static void test_probe(void **state)
{
    (void)state;
    mem_probe_start();
    void *a = mem_malloc(8);
    assert_non_null(a);
    mem_probe_fail_after(1);
    void *b = mem_calloc(2, 4);
    assert_non_null(b);
    assert_null(mem_realloc(b, 64)); /* the second call from arming fails */
    assert_true(mem_probe_fired());
    b = mem_realloc(b, 64);           /* once only */
    assert_non_null(b);
    assert_int_equal(mem_probe_calls(), 4);
    assert_int_equal(mem_probe_live(), 2);
    b = mem_shrink(b, 8);
    mem_free(a);
    mem_free(b);
    mem_free(NULL);
    assert_int_equal(mem_probe_live(), 0);
    assert_int_equal(mem_probe_calls(), 4);
    assert_int_equal(mem_probe_largest(), 64);
    mem_probe_stop();
}

int main(void)
{
    enum { N = sizeof cases / sizeof cases[0], FIXED = 2 };
    struct CMUnitTest tests[N + FIXED];
    make_data();
    signal(SIGPIPE, SIG_IGN); /* a failed FIFO load closes before the writer is done */
    tests[0] = (struct CMUnitTest){"probe", test_probe, NULL, NULL, NULL};
    tests[1] = (struct CMUnitTest){"model loads allocate within their input",
                                   test_model_loads_allocate_within_input, NULL, NULL, NULL};
    for (size_t i = 0; i < N; i++)
        tests[i + FIXED] = (struct CMUnitTest){cases[i].name, test_walk, NULL, NULL,
                                               (void *)&cases[i]};
    return _cmocka_run_group_tests("faults", tests, N + FIXED, NULL, NULL);
}
