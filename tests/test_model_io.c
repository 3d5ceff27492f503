/* Model files: round trips (buffer and file), atomic saving, and rejection
 * of every truncation, byte flip and inconsistent field.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "htnn/htnn.h"
#include "crc_reference.h"

/* Offsets of doc/file-format.md. */
#define OFF_VERSION 8
#define OFF_OUTPUT 12
#define OFF_LAYER_COUNT 36
#define HEADER_BYTES 44
#define L0_KIND 44
#define L0_ACTIVATION 56
#define L0_WEIGHTS 92

static htnn_net *const SENTINEL = (htnn_net *)&SENTINEL;

/* ---- little helpers ---------------------------------------------------- */

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p + 4) << 32 | get_le32(p);
}

static void fix_crc(unsigned char *buf, size_t size)
{
    put_le32(buf + size - 4, crc32_reference(buf, size - 4));
}

static unsigned char *dup_bytes(const void *p, size_t n)
{
    unsigned char *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n)
        memcpy(q, p, n);
    return q;
}

static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static float lcg_float(uint64_t *s)
{
    return (float)((double)lcg_next(s) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Known, non-trivial weights (exact binary fractions and odd bit patterns). */
static void set_known_params(htnn_net *net)
{
    uint64_t s = 12345;
    for (size_t d = 0; d < htnn_net_layer_count(net); d++) {
        htnn_layer *layer = htnn_net_layer(net, d);
        htnn_layer_info info = {.struct_size = sizeof info};
        assert_int_equal(htnn_layer_get_info(layer, &info), HTNN_OK);
        float *w = malloc(info.weight_count * sizeof *w);
        float *b = malloc(info.out_width * sizeof *b);
        assert_non_null(w);
        assert_non_null(b);
        for (size_t i = 0; i < info.weight_count; i++)
            w[i] = lcg_float(&s) * (float)(d + 1);
        w[0] = -0.0f;                  /* sign of zero must survive */
        if (info.weight_count > 1)
            w[1] = 1.17549435e-38f;    /* smallest normal */
        if (info.weight_count > 2)
            w[2] = 1e-45f;             /* a subnormal */
        for (size_t i = 0; i < info.out_width; i++)
            b[i] = lcg_float(&s) * 0.5f;
        assert_int_equal(htnn_layer_set_weights(layer, w, info.weight_count), HTNN_OK);
        if (info.bias)
            assert_int_equal(htnn_layer_set_bias(layer, b, info.out_width), HTNN_OK);
        free(w);
        free(b);
    }
}

static void add_layer(htnn_net *net, size_t units, int act, int bits, int loss,
                      int weight_targets, int bias)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = units;
    d.activation = act;
    d.qrelu_bits = bits;
    d.loss = loss;
    d.weight_targets = weight_targets;
    d.bias = bias;
    assert_int_equal(htnn_net_add_dense(net, &d, NULL), HTNN_OK);
}

/* 6-5-4-3: sign hidden layers, identity output, softmax scoring. */
static htnn_net *make_net_a(void)
{
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL;
    o.seed = 42;
    assert_int_equal(htnn_net_create(6, &o, &net), HTNN_OK);
    add_layer(net, 5, HTNN_ACT_SIGN, 2, HTNN_LOSS_SOFT_HINGE, 1, 1);
    add_layer(net, 4, HTNN_ACT_SIGN, 2, HTNN_LOSS_SOFT_HINGE, 1, 1);
    add_layer(net, 3, HTNN_ACT_IDENTITY, 2, HTNN_LOSS_SOFT_HINGE, 1, 1);
    set_known_params(net);
    return net;
}

/* Hard-threshold output, targets after update, qrelu 3 bits, a layer
 * without bias, non-default losses and target weighting. */
static htnn_net *make_net_b(void)
{
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL;
    o.seed = 0xdeadbeefcafebabeull;
    o.output = HTNN_OUTPUT_HARD_THRESHOLD;
    o.targets_after_update = 1;
    o.threads = 1;
    assert_int_equal(htnn_net_create(7, &o, &net), HTNN_OK);
    add_layer(net, 6, HTNN_ACT_QRELU, 3, HTNN_LOSS_HINGE, 1, 1);
    add_layer(net, 5, HTNN_ACT_STEP, 2, HTNN_LOSS_SATURATED_HINGE, 1, 0);
    add_layer(net, 4, HTNN_ACT_RELU, 2, HTNN_LOSS_PERCEPTRON, 0, 1);
    add_layer(net, 2, HTNN_ACT_IDENTITY, 2, HTNN_LOSS_LINEAR, 0, 1);
    set_known_params(net);
    return net;
}

static void save_buf(const htnn_net *net, unsigned char **buf, size_t *size)
{
    void *data = NULL;
    assert_int_equal(htnn_net_save_buffer(net, &data, size), HTNN_OK);
    assert_non_null(data);
    *buf = data;
}

static void assert_params_equal(htnn_layer *a, htnn_layer *b, const htnn_layer_info *ia)
{
    size_t nw = ia->weight_count, nb = ia->out_width;
    float *wa = malloc(nw * sizeof *wa), *wb = malloc(nw * sizeof *wb);
    float *ba = malloc(nb * sizeof *ba), *bb = malloc(nb * sizeof *bb);
    assert_true(wa && wb && ba && bb);
    assert_int_equal(htnn_layer_get_weights(a, wa, nw), HTNN_OK);
    assert_int_equal(htnn_layer_get_weights(b, wb, nw), HTNN_OK);
    assert_int_equal(htnn_layer_get_bias(a, ba, nb), HTNN_OK);
    assert_int_equal(htnn_layer_get_bias(b, bb, nb), HTNN_OK);
    assert_memory_equal(wa, wb, nw * sizeof *wa);
    assert_memory_equal(ba, bb, nb * sizeof *ba);
    free(wa);
    free(wb);
    free(ba);
    free(bb);
}

static void assert_layers_equal(htnn_net *a, htnn_net *b, size_t d)
{
    htnn_layer *la = htnn_net_layer(a, d), *lb = htnn_net_layer(b, d);
    htnn_layer_info ia = {.struct_size = sizeof ia}, ib = {.struct_size = sizeof ib};
    assert_int_equal(htnn_layer_get_info(la, &ia), HTNN_OK);
    assert_int_equal(htnn_layer_get_info(lb, &ib), HTNN_OK);
    assert_int_equal(ia.kind, ib.kind);
    assert_int_equal(ia.index, ib.index);
    assert_int_equal(ia.in_width, ib.in_width);
    assert_int_equal(ia.out_width, ib.out_width);
    assert_int_equal(ia.activation, ib.activation);
    assert_int_equal(ia.qrelu_bits, ib.qrelu_bits);
    assert_int_equal(ia.loss, ib.loss);
    assert_int_equal(ia.weight_targets, ib.weight_targets);
    assert_int_equal(ia.bias, ib.bias);
    assert_int_equal(ia.weight_count, ib.weight_count);
    assert_params_equal(la, lb, &ia);
}

static void assert_predictions_equal(htnn_net *a, htnn_net *b)
{
    enum { COUNT = 23 };
    size_t in = htnn_net_input_width(a), out = htnn_net_output_width(a);
    float *x = malloc(COUNT * in * sizeof *x);
    float *ya = malloc(COUNT * out * sizeof *ya), *yb = malloc(COUNT * out * sizeof *yb);
    int32_t ca[COUNT], cb[COUNT];
    uint64_t s = 987654321;
    assert_true(x && ya && yb);
    for (size_t i = 0; i < COUNT * in; i++)
        x[i] = lcg_float(&s) * 3.0f;
    assert_int_equal(htnn_net_predict_logits(a, x, COUNT, ya), HTNN_OK);
    assert_int_equal(htnn_net_predict_logits(b, x, COUNT, yb), HTNN_OK);
    assert_memory_equal(ya, yb, COUNT * out * sizeof *ya);
    assert_int_equal(htnn_net_predict(a, x, COUNT, ca), HTNN_OK);
    assert_int_equal(htnn_net_predict(b, x, COUNT, cb), HTNN_OK);
    assert_memory_equal(ca, cb, sizeof ca);
    free(x);
    free(ya);
    free(yb);
}

/* Everything the format stores is equal; predictions are bit-identical. */
static void assert_nets_equal(htnn_net *a, htnn_net *b)
{
    htnn_net_options oa = {.struct_size = sizeof oa}, ob = {.struct_size = sizeof ob};
    assert_int_equal(htnn_net_get_options(a, &oa), HTNN_OK);
    assert_int_equal(htnn_net_get_options(b, &ob), HTNN_OK);
    assert_true(oa.seed == ob.seed);
    assert_int_equal(oa.output, ob.output);
    assert_int_equal(oa.targets_after_update, ob.targets_after_update);
    assert_int_equal(ob.threads, 0); /* not stored */
    assert_int_equal(htnn_net_input_width(a), htnn_net_input_width(b));
    assert_int_equal(htnn_net_layer_count(a), htnn_net_layer_count(b));
    assert_int_equal(htnn_net_output_width(a), htnn_net_output_width(b));
    for (size_t d = 0; d < htnn_net_layer_count(a); d++)
        assert_layers_equal(a, b, d);
    if (htnn_net_layer_count(a) > 0)
        assert_predictions_equal(a, b);
}

/* Loading must fail with `want`, leave *out alone and explain itself. */
static void expect_load_error(const unsigned char *buf, size_t size, htnn_status want,
                              const char *needle)
{
    htnn_net *out = SENTINEL;
    htnn_clear_error();
    htnn_status st = htnn_net_load_buffer(buf, size, &out);
    if (st != want)
        fail_msg("size %zu: status %d (%s), wanted %d", size, st, htnn_last_error(), want);
    assert_ptr_equal(out, SENTINEL);
    assert_true(htnn_last_error()[0] != '\0');
    if (needle != NULL && strstr(htnn_last_error(), needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", htnn_last_error(), needle);
}

static void roundtrip_buffer(htnn_net *net)
{
    unsigned char *buf;
    size_t size;
    htnn_net *loaded = NULL;
    save_buf(net, &buf, &size);
    assert_int_equal(htnn_net_load_buffer(buf, size, &loaded), HTNN_OK);
    assert_nets_equal(net, loaded);
    htnn_net_free(loaded);
    htnn_free(buf);
}

/* ---- temporary directory ------------------------------------------------ */

static int setup_dir(void **state)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);
    if (dir == NULL)
        return -1;
    snprintf(dir, 4096, "%s/htnn-model-io-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char child[4096];
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown_dir(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *size = fread(buf, 1, 1 << 20, f);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void assert_file_bytes(const char *path, const void *data, size_t size)
{
    size_t n;
    unsigned char *got = read_all(path, &n);
    assert_int_equal(n, size);
    assert_memory_equal(got, data, size);
    free(got);
}

/* ---- round trips ------------------------------------------------------- */

static void test_roundtrip_sign_mlp(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    roundtrip_buffer(net);
    htnn_net_free(net);
}

static void test_roundtrip_varied_layers(void **state)
{
    (void)state;
    htnn_net *net = make_net_b();
    roundtrip_buffer(net);
    htnn_net_free(net);
}

static void test_roundtrip_zero_layers(void **state)
{
    (void)state;
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL, *loaded = NULL;
    unsigned char *buf;
    size_t size;
    o.seed = 7;
    o.output = HTNN_OUTPUT_HARD_THRESHOLD;
    assert_int_equal(htnn_net_create(11, &o, &net), HTNN_OK);
    save_buf(net, &buf, &size);
    assert_int_equal(size, HEADER_BYTES + 12 + 4);
    assert_int_equal(htnn_net_load_buffer(buf, size, &loaded), HTNN_OK);
    assert_nets_equal(net, loaded);
    assert_int_equal(htnn_net_layer_count(loaded), 0);
    assert_int_equal(htnn_net_input_width(loaded), 11);
    htnn_net_free(loaded);
    htnn_net_free(net);
    htnn_free(buf);
}

/* Saving is deterministic and a loaded net saves to the same bytes. */
static void test_save_is_canonical(void **state)
{
    (void)state;
    htnn_net *net = make_net_b(), *loaded = NULL;
    unsigned char *a, *b, *c;
    size_t na, nb, nc;
    save_buf(net, &a, &na);
    save_buf(net, &b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_int_equal(htnn_net_load_buffer(a, na, &loaded), HTNN_OK);
    save_buf(loaded, &c, &nc);
    assert_int_equal(na, nc);
    assert_memory_equal(a, c, na);
    htnn_free(a);
    htnn_free(b);
    htnn_free(c);
    htnn_net_free(loaded);
    htnn_net_free(net);
}

/* The documented layout: magic, little-endian fields, CRC-32 trailer. */
static void test_layout_matches_doc(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    assert_int_equal(crc32_reference((const unsigned char *)"123456789", 9), 0xcbf43926u);
    save_buf(net, &buf, &size);
    /* header + 3 dense records + END + CRC */
    size_t want = HEADER_BYTES + (12 + 36 + 4 * (30 + 5)) + (12 + 36 + 4 * (20 + 4)) +
                  (12 + 36 + 4 * (12 + 3)) + 12 + 4;
    assert_int_equal(size, want);
    assert_memory_equal(buf, "HTNNMODL", 8);
    assert_int_equal(get_le32(buf + OFF_VERSION), 1);
    assert_int_equal(get_le32(buf + OFF_OUTPUT), HTNN_OUTPUT_SOFTMAX);
    assert_true(get_le64(buf + 16) == 42);                  /* seed */
    assert_int_equal(get_le32(buf + 24), 0);                /* targets_after_update */
    assert_true(get_le64(buf + 28) == 6);                   /* input width */
    assert_true(get_le64(buf + OFF_LAYER_COUNT) == 3);
    assert_int_equal(get_le32(buf + L0_KIND), HTNN_LAYER_DENSE);
    assert_true(get_le64(buf + 48) == 36 + 4 * (30 + 5));   /* record length */
    assert_int_equal(get_le32(buf + L0_ACTIVATION), HTNN_ACT_SIGN);
    assert_int_equal(get_le32(buf + 72), 1);                /* bias flag */
    assert_true(get_le64(buf + 76) == 6 && get_le64(buf + 84) == 5);
    assert_int_equal(get_le32(buf + L0_WEIGHTS), 0x80000000u); /* -0.0f */
    assert_int_equal(get_le32(buf + size - 16), 0);         /* END tag */
    assert_true(get_le64(buf + size - 12) == 0);            /* END length */
    assert_int_equal(get_le32(buf + size - 4), crc32_reference(buf, size - 4));
    htnn_free(buf);
    htnn_net_free(net);
}

/* The loaded net's RNG restarts from the stored seed: nets loaded from the
 * same bytes grow identical layers. */
static void test_loaded_rng_is_reseeded(void **state)
{
    (void)state;
    htnn_net *net = make_net_a(), *x = NULL, *y = NULL;
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    assert_int_equal(htnn_net_load_buffer(buf, size, &x), HTNN_OK);
    assert_int_equal(htnn_net_load_buffer(buf, size, &y), HTNN_OK);
    add_layer(x, 2, HTNN_ACT_IDENTITY, 2, 0, 1, 1);
    add_layer(y, 2, HTNN_ACT_IDENTITY, 2, 0, 1, 1);
    assert_layers_equal(x, y, 3);
    htnn_net_free(x);
    htnn_net_free(y);
    htnn_net_free(net);
    htnn_free(buf);
}

/* ---- files and atomic saving ------------------------------------------- */

static void test_file_roundtrip(void **state)
{
    const char *dir = *state;
    char *path = path_in(dir, "model.htnn");
    htnn_net *net = make_net_b(), *loaded = NULL;
    unsigned char *buf;
    size_t size;
    assert_int_equal(htnn_net_save(net, path), HTNN_OK);
    assert_int_equal(count_entries(dir), 1); /* no temporary left behind */
    save_buf(net, &buf, &size);
    assert_file_bytes(path, buf, size);
    assert_int_equal(htnn_net_load(path, &loaded), HTNN_OK);
    assert_nets_equal(net, loaded);
    htnn_net_free(loaded);
    htnn_net_free(net);
    htnn_free(buf);
    free(path);
}

static void test_save_replaces_existing_file(void **state)
{
    const char *dir = *state;
    char *path = path_in(dir, "model.htnn");
    htnn_net *a = make_net_a(), *b = make_net_b(), *loaded = NULL;
    write_all(path, "old contents, not a model", 25);
    assert_int_equal(htnn_net_save(a, path), HTNN_OK);
    assert_int_equal(htnn_net_save(b, path), HTNN_OK);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(htnn_net_load(path, &loaded), HTNN_OK);
    assert_nets_equal(b, loaded);
    htnn_net_free(loaded);
    htnn_net_free(a);
    htnn_net_free(b);
    free(path);
}

static void test_save_into_missing_directory(void **state)
{
    const char *dir = *state;
    char *path = path_in(dir, "no-such-dir/model.htnn");
    htnn_net *net = make_net_a();
    htnn_clear_error();
    assert_int_equal(htnn_net_save(net, path), HTNN_EIO);
    assert_non_null(strstr(htnn_last_error(), path));
    assert_int_equal(count_entries(dir), 0);
    htnn_net_free(net);
    free(path);
}

/* The parent "directory" is a regular file: creating the temporary file
 * fails; the file is left as it was. */
static void test_save_parent_is_a_file(void **state)
{
    const char *dir = *state;
    char *old = path_in(dir, "old.htnn");
    char *path = path_in(dir, "old.htnn/model.htnn");
    htnn_net *a = make_net_a(), *b = make_net_b();
    unsigned char *buf;
    size_t size;
    assert_int_equal(htnn_net_save(a, old), HTNN_OK);
    save_buf(a, &buf, &size);
    htnn_clear_error();
    assert_int_equal(htnn_net_save(b, path), HTNN_EIO);
    assert_true(htnn_last_error()[0] != '\0');
    assert_file_bytes(old, buf, size);
    assert_int_equal(count_entries(dir), 1);
    htnn_free(buf);
    htnn_net_free(a);
    htnn_net_free(b);
    free(old);
    free(path);
}

/* The target is a directory: refused before any temporary file is
 * written, and the directory is untouched. */
static void test_save_rename_fails(void **state)
{
    const char *dir = *state;
    char *target = path_in(dir, "model.htnn");
    char *inside = path_in(dir, "model.htnn/keep");
    htnn_net *net = make_net_a();
    assert_int_equal(mkdir(target, 0755), 0);
    write_all(inside, "keep", 4);
    htnn_clear_error();
    assert_int_equal(htnn_net_save(net, target), HTNN_EIO);
    assert_non_null(strstr(htnn_last_error(), "not a regular file"));
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(count_entries(target), 1);
    assert_file_bytes(inside, "keep", 4);
    htnn_net_free(net);
    free(target);
    free(inside);
}

/* Writing the temporary file fails part-way (file size limit; works as
 * root): the old model stays intact and no temporary file is left. */
/* A FIFO (like a device) is never replaced by the rename. */
static void test_save_refuses_special_files(void **state)
{
    const char *dir = *state;
    char *fifo = path_in(dir, "pipe");
    htnn_net *net = make_net_a();
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(htnn_net_save(net, fifo), HTNN_EIO);
    assert_non_null(strstr(htnn_last_error(), "not a regular file"));
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(count_entries(dir), 1);
    unlink(fifo);
    htnn_net_free(net);
    free(fifo);
}

/* Saving through a symbolic link replaces the file it points to and keeps
 * the link. */
static void test_save_through_symlink(void **state)
{
    const char *dir = *state;
    char *real = path_in(dir, "real.htnn"), *link = path_in(dir, "link.htnn");
    htnn_net *net = make_net_a(), *back = NULL;
    write_all(real, "old", 3);
    assert_int_equal(symlink(real, link), 0);
    assert_int_equal(htnn_net_save(net, link), HTNN_OK);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(htnn_net_load(real, &back), HTNN_OK);
    assert_int_equal(htnn_net_layer_count(back), htnn_net_layer_count(net));
    assert_int_equal(count_entries(dir), 2);
    unlink(link);
    unlink(real);
    htnn_net_free(net);
    htnn_net_free(back);
    free(real);
    free(link);
}

static void test_save_write_fails_keeps_old(void **state)
{
    const char *dir = *state;
    char *path = path_in(dir, "model.htnn");
    htnn_net *a = make_net_a(), *b = make_net_b();
    unsigned char *buf;
    size_t size;
    struct rlimit saved, small;
    assert_int_equal(htnn_net_save(a, path), HTNN_OK);
    save_buf(a, &buf, &size);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 64;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    htnn_clear_error();
    htnn_status st = htnn_net_save(b, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st, HTNN_EIO);
    assert_true(htnn_last_error()[0] != '\0');
    assert_file_bytes(path, buf, size);
    assert_int_equal(count_entries(dir), 1);
    htnn_free(buf);
    htnn_net_free(a);
    htnn_net_free(b);
    free(path);
}

static void test_load_file_errors(void **state)
{
    const char *dir = *state;
    char *missing = path_in(dir, "missing.htnn");
    char *empty = path_in(dir, "empty.htnn");
    htnn_net *out = SENTINEL;
    htnn_clear_error();
    assert_int_equal(htnn_net_load(missing, &out), HTNN_EIO);
    assert_non_null(strstr(htnn_last_error(), missing));
    assert_int_equal(htnn_net_load(dir, &out), HTNN_EIO);
    assert_true(htnn_last_error()[0] != '\0');
    write_all(empty, "", 0);
    htnn_clear_error();
    assert_int_equal(htnn_net_load(empty, &out), HTNN_EFORMAT);
    assert_non_null(strstr(htnn_last_error(), "truncated"));
    assert_ptr_equal(out, SENTINEL);
    free(missing);
    free(empty);
}

static void test_null_arguments(void **state)
{
    (void)state;
    htnn_net *net = make_net_a(), *out = SENTINEL;
    void *data = NULL;
    size_t size = 0;
    unsigned char byte = 0;
    assert_int_equal(htnn_net_save(NULL, "x.htnn"), HTNN_EINVAL);
    assert_int_equal(htnn_net_save(net, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_save_buffer(NULL, &data, &size), HTNN_EINVAL);
    assert_int_equal(htnn_net_save_buffer(net, NULL, &size), HTNN_EINVAL);
    assert_int_equal(htnn_net_save_buffer(net, &data, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_load(NULL, &out), HTNN_EINVAL);
    assert_int_equal(htnn_net_load("x.htnn", NULL), HTNN_EINVAL);
    assert_int_equal(htnn_net_load_buffer(NULL, 10, &out), HTNN_EINVAL);
    htnn_clear_error();
    assert_int_equal(htnn_net_load_buffer(&byte, 1, NULL), HTNN_EINVAL);
    assert_true(htnn_last_error()[0] != '\0');
    assert_ptr_equal(out, SENTINEL);
    assert_null(data);
    htnn_free(NULL);
    htnn_net_free(net);
}

/* ---- corruption -------------------------------------------------------- */

static void test_every_truncation_fails(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    for (size_t n = 0; n < size; n++) {
        /* a fresh copy of exactly n bytes, so valgrind sees any overread */
        unsigned char *part = dup_bytes(buf, n);
        expect_load_error(part, n, HTNN_EFORMAT, NULL);
        free(part);
    }
    /* layer 1 starts after the header and layer 0 (188 bytes) */
    size_t l1_weights = HEADER_BYTES + 188 + 48;
    expect_load_error(buf, l1_weights + 1, HTNN_EFORMAT, "truncated in layer 1 weights");
    expect_load_error(buf, HEADER_BYTES + 188 + 5, HTNN_EFORMAT,
                      "truncated in layer 1 header");
    expect_load_error(buf, 20, HTNN_EFORMAT, "truncated in header");
    expect_load_error(buf, size - 1, HTNN_EFORMAT, "truncated in checksum");
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_every_byte_flip_fails(void **state)
{
    (void)state;
    static const unsigned char masks[] = {0x01, 0x10, 0x80, 0xff};
    htnn_net *net = make_net_b();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    for (size_t i = 0; i < size; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            int in_version = i >= OFF_VERSION && i < OFF_VERSION + 4;
            buf[i] ^= masks[m];
            expect_load_error(buf, size, in_version ? HTNN_EVERSION : HTNN_EFORMAT, NULL);
            buf[i] ^= masks[m];
        }
    }
    /* an interior flip is caught by the checksum */
    buf[L0_WEIGHTS + 5] ^= 0x04;
    expect_load_error(buf, size, HTNN_EFORMAT, "checksum mismatch");
    buf[L0_WEIGHTS + 5] ^= 0x04;
    htnn_free(buf);
    htnn_net_free(net);
}

/* Flips with a recomputed checksum reach the value checks: each load either
 * succeeds or fails cleanly with a format error. */
static void test_flips_with_valid_checksum(void **state)
{
    (void)state;
    static const unsigned char masks[] = {0x01, 0x02, 0x40, 0x80, 0xff};
    htnn_net *net = make_net_b();
    unsigned char *buf;
    size_t size, loaded_ok = 0;
    save_buf(net, &buf, &size);
    for (size_t i = 0; i + 4 < size; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            unsigned char *copy = dup_bytes(buf, size);
            htnn_net *out = SENTINEL;
            copy[i] ^= masks[m];
            fix_crc(copy, size);
            htnn_clear_error();
            htnn_status st = htnn_net_load_buffer(copy, size, &out);
            if (st == HTNN_OK) {
                loaded_ok++;
                htnn_net_free(out);
            } else {
                if (st != HTNN_EFORMAT && st != HTNN_EVERSION)
                    fail_msg("offset %zu mask 0x%02x: status %d (%s)", i, masks[m], st,
                             htnn_last_error());
                assert_ptr_equal(out, SENTINEL);
                assert_true(htnn_last_error()[0] != '\0');
            }
            free(copy);
        }
    }
    assert_true(loaded_ok > 0); /* e.g. flipped weight bits still load */
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_unknown_version(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    put_le32(buf + OFF_VERSION, 3);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EVERSION, "version 3");
    put_le32(buf + OFF_VERSION, 0);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EVERSION, "version 0");
    /* the version is checked before anything after it, even truncation */
    expect_load_error(buf, 12, HTNN_EVERSION, NULL);
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_bad_magic(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    buf[0] = 'X';
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "magic");
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_huge_layer_count(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    put_le64(buf + OFF_LAYER_COUNT, 0xffffffffull);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer count");
    put_le64(buf + OFF_LAYER_COUNT, UINT64_MAX);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer count");
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_huge_widths(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    put_le64(buf + 84, UINT64_MAX); /* layer 0 out_width */
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer 0");
    put_le64(buf + 84, (uint64_t)1 << 40);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer 0");
    put_le64(buf + 84, 5);
    put_le64(buf + 48, UINT64_MAX); /* record length */
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "record length");
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_unknown_layer_kind(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    put_le32(buf + HEADER_BYTES + 188, 7); /* layer 1's kind */
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer 1: unknown layer kind 7");
    put_le32(buf + OFF_VERSION, 2); /* the newest version knows no kind 7 either */
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer 1: unknown layer kind 7");
    put_le32(buf + HEADER_BYTES + 188, HTNN_LAYER_CONV2D); /* conv2d needs version 2 */
    put_le32(buf + OFF_VERSION, 1);
    fix_crc(buf, size);
    expect_load_error(buf, size, HTNN_EFORMAT, "layer kind 2 in a version 1 file");
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_non_finite_parameters(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    unsigned char *nan = dup_bytes(buf, size), *inf = dup_bytes(buf, size);
    put_le32(nan + L0_WEIGHTS + 4 * 3, 0x7fc00000u); /* weight 3 = NaN */
    fix_crc(nan, size);
    expect_load_error(nan, size, HTNN_EFORMAT, "layer 0: weight 3 is NaN");
    put_le32(inf + L0_WEIGHTS + 4 * 30 + 4, 0xff800000u); /* bias 1 = -Inf */
    fix_crc(inf, size);
    expect_load_error(inf, size, HTNN_EFORMAT, "layer 0: bias 1");
    free(nan);
    free(inf);
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_bad_enums(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    unsigned char *c = dup_bytes(buf, size);
    put_le32(c + OFF_OUTPUT, 2);
    fix_crc(c, size);
    expect_load_error(c, size, HTNN_EFORMAT, "output kind 2");
    memcpy(c, buf, size);
    put_le32(c + L0_ACTIVATION, 9);
    fix_crc(c, size);
    expect_load_error(c, size, HTNN_EFORMAT, "unknown activation 9");
    memcpy(c, buf, size);
    put_le32(c + L0_ACTIVATION, HTNN_ACT_QRELU);
    put_le32(c + L0_ACTIVATION + 4, 9); /* qrelu bits */
    fix_crc(c, size);
    expect_load_error(c, size, HTNN_EFORMAT, "qrelu bits 9");
    memcpy(c, buf, size);
    put_le32(c + L0_ACTIVATION + 8, 5); /* loss */
    fix_crc(c, size);
    expect_load_error(c, size, HTNN_EFORMAT, "unknown loss 5");
    memcpy(c, buf, size);
    put_le32(c + L0_ACTIVATION + 16, 2); /* bias flag */
    fix_crc(c, size);
    expect_load_error(c, size, HTNN_EFORMAT, "layer 0");
    free(c);
    htnn_free(buf);
    htnn_net_free(net);
}

/* A well-formed record whose input width does not chain: the header and
 * layer 0 of a 6-5 net followed by the layer of a 4-3 net. */
static void test_inconsistent_widths(void **state)
{
    (void)state;
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    htnn_net *p = NULL, *q = NULL;
    unsigned char *bp, *bq;
    size_t np, nq;
    assert_int_equal(htnn_net_create(6, &o, &p), HTNN_OK);
    assert_int_equal(htnn_net_create(4, &o, &q), HTNN_OK);
    add_layer(p, 5, HTNN_ACT_SIGN, 2, 0, 1, 1);
    add_layer(q, 3, HTNN_ACT_IDENTITY, 2, 0, 1, 1);
    save_buf(p, &bp, &np);
    save_buf(q, &bq, &nq);
    size_t rec_q = nq - HEADER_BYTES - 16;
    size_t n = np + rec_q;
    unsigned char *m = malloc(n);
    assert_non_null(m);
    memcpy(m, bp, np - 16);                         /* header + layer 0 */
    memcpy(m + np - 16, bq + HEADER_BYTES, rec_q);  /* q's layer */
    memcpy(m + n - 16, bp + np - 16, 16);           /* END + CRC */
    put_le64(m + OFF_LAYER_COUNT, 2);
    fix_crc(m, n);
    expect_load_error(m, n, HTNN_EFORMAT, "layer 1: input width 4 does not match");
    free(m);
    htnn_free(bp);
    htnn_free(bq);
    htnn_net_free(p);
    htnn_net_free(q);
}

/* Inserts a section (tag, payload) before END and fixes the checksum. */
static unsigned char *with_section(const unsigned char *buf, size_t size, uint32_t tag,
                                   const char *payload, size_t len, size_t *out_size)
{
    size_t n = size + 12 + len;
    unsigned char *m = malloc(n);
    assert_non_null(m);
    memcpy(m, buf, size - 16);
    put_le32(m + size - 16, tag);
    put_le64(m + size - 12, len);
    memcpy(m + size - 4, payload, len);
    memcpy(m + n - 16, buf + size - 16, 16);
    fix_crc(m, n);
    *out_size = n;
    return m;
}

static void test_sections(void **state)
{
    (void)state;
    htnn_net *net = make_net_a(), *loaded = NULL;
    unsigned char *buf, *m;
    size_t size, n;
    save_buf(net, &buf, &size);
    /* an optional section this reader does not know is skipped */
    m = with_section(buf, size, 0x00000042u, "abc", 3, &n);
    assert_int_equal(htnn_net_load_buffer(m, n, &loaded), HTNN_OK);
    assert_nets_equal(net, loaded);
    htnn_net_free(loaded);
    free(m);
    /* a required one it does not know is refused */
    m = with_section(buf, size, 0x80000042u, "abc", 3, &n);
    expect_load_error(m, n, HTNN_EVERSION, "0x80000042");
    free(m);
    /* a section running past the end */
    m = with_section(buf, size, 0x00000042u, "abc", 3, &n);
    put_le64(m + size - 12, 1000);
    fix_crc(m, n);
    expect_load_error(m, n, HTNN_EFORMAT, "truncated in section 0");
    free(m);
    /* END with a length */
    m = dup_bytes(buf, size);
    put_le64(m + size - 12, 1);
    fix_crc(m, size);
    expect_load_error(m, size, HTNN_EFORMAT, "END");
    free(m);
    htnn_free(buf);
    htnn_net_free(net);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    htnn_net *net = make_net_a();
    unsigned char *buf;
    size_t size;
    save_buf(net, &buf, &size);
    unsigned char *m = malloc(size + 3);
    assert_non_null(m);
    memcpy(m, buf, size - 4);
    memset(m + size - 4, 0, 3);
    fix_crc(m, size + 3);
    expect_load_error(m, size + 3, HTNN_EFORMAT, "3 unexpected bytes");
    free(m);
    htnn_free(buf);
    htnn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sign_mlp),
        cmocka_unit_test(test_roundtrip_varied_layers),
        cmocka_unit_test(test_roundtrip_zero_layers),
        cmocka_unit_test(test_save_is_canonical),
        cmocka_unit_test(test_layout_matches_doc),
        cmocka_unit_test(test_loaded_rng_is_reseeded),
        cmocka_unit_test_setup_teardown(test_file_roundtrip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_replaces_existing_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_into_missing_directory, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_parent_is_a_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_rename_fails, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_refuses_special_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_through_symlink, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_write_fails_keeps_old, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_load_file_errors, setup_dir, teardown_dir),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_every_byte_flip_fails),
        cmocka_unit_test(test_flips_with_valid_checksum),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_huge_layer_count),
        cmocka_unit_test(test_huge_widths),
        cmocka_unit_test(test_unknown_layer_kind),
        cmocka_unit_test(test_non_finite_parameters),
        cmocka_unit_test(test_bad_enums),
        cmocka_unit_test(test_inconsistent_widths),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_trailing_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
