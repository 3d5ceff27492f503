/* Tests for the data API: htnn_data_create/subset/accessors, the IDX reader
 * (plain and gzip, whole files and row ranges) and the CSV reader, including
 * their error reports.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "htnn_config.h"
#if HTNN_HAVE_ZLIB
#include <zlib.h>
#endif

#include "htnn/data.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist/"

/* The temporary directory all test files go into (made by group setup). */
static char tmp_dir[64];

/* Room for tmp_dir, '/' and any directory entry name (readdir gives up to
 * 255 bytes). */
typedef struct path_buf {
    char s[sizeof tmp_dir + 1 + 256];
} path_buf;

static path_buf tmp_path(const char *name)
{
    path_buf p;
    int n = snprintf(p.s, sizeof p.s, "%s/%s", tmp_dir, name);
    assert_true(n > 0 && (size_t)n < sizeof p.s);
    return p;
}

static path_buf write_file(const char *name, const void *bytes, size_t n)
{
    path_buf p = tmp_path(name);
    FILE *fp = fopen(p.s, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    return p;
}

static path_buf write_text(const char *name, const char *text)
{
    return write_file(name, text, strlen(text));
}

#if HTNN_HAVE_ZLIB
static path_buf write_gz(const char *name, const void *bytes, size_t n)
{
    path_buf p = tmp_path(name);
    gzFile gz = gzopen(p.s, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, bytes, (unsigned)n), (int)n);
    assert_int_equal(gzclose(gz), Z_OK);
    return p;
}
#endif

/* Writes an IDX header (magic + big-endian dims) into b; returns its size. */
static size_t idx_header(unsigned char *b, int type, int ndims,
                         const uint32_t *dims)
{
    b[0] = 0;
    b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        b[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndims;
}

/* Two 2x3 images, pixels chosen so /255 gives exact floats, and labels. */
static const unsigned char pixels[12] = {0, 51, 102, 153, 204, 255,
                                         255, 0, 51, 0, 0, 102};
static const unsigned char label_bytes[2] = {3, 7};

static size_t images_file(unsigned char *b)
{
    const uint32_t dims[3] = {2, 2, 3};
    size_t n = idx_header(b, 0x08, 3, dims);
    memcpy(b + n, pixels, sizeof pixels);
    return n + sizeof pixels;
}

static size_t labels_file(unsigned char *b, uint32_t count)
{
    size_t n = idx_header(b, 0x08, 1, &count);
    memcpy(b + n, label_bytes, sizeof label_bytes);
    return n + (count < 2 ? count : 2);
}

/* The last error is non-empty and mentions `what`. */
static void assert_error_mentions(const char *what)
{
    const char *e = htnn_last_error();
    assert_non_null(e);
    assert_true(e[0] != '\0');
    if (strstr(e, what) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", e, what);
}

/* Loads IDX and checks it fails with `want`, leaves *out alone and reports
 * `what`. */
static void assert_idx_fails(const char *images, const char *labels,
                             htnn_status want, const char *what)
{
    htnn_data *sentinel = (htnn_data *)&tmp_dir, *d = sentinel;
    htnn_clear_error();
    assert_int_equal(htnn_data_load_idx(images, labels, HTNN_SCALE_UNIT, &d),
                     want);
    assert_ptr_equal(d, sentinel);
    assert_error_mentions(what);
}

static void assert_csv_fails(const char *path, const htnn_csv_options *o,
                             htnn_status want, const char *what)
{
    htnn_data *sentinel = (htnn_data *)&tmp_dir, *d = sentinel;
    htnn_clear_error();
    assert_int_equal(htnn_data_load_csv(path, o, &d), want);
    assert_ptr_equal(d, sentinel);
    assert_error_mentions(what);
}

static void assert_shape(const htnn_data *d, size_t c, size_t r, size_t w)
{
    size_t ch = 0, rows = 0, cols = 0;
    assert_int_equal(htnn_data_shape(d, &ch, &rows, &cols), HTNN_OK);
    assert_int_equal(ch, c);
    assert_int_equal(rows, r);
    assert_int_equal(cols, w);
}

static void assert_floats(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("value %zu: got %.9g, want %.9g", i, (double)got[i],
                     (double)want[i]);
}

/* ---- htnn_data_create, subset, accessors ------------------------------ */

static void test_create_copies(void **state)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t y[3] = {0, 4, 2};
    const float want[6] = {1, 2, 3, 4, 5, 6};
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_create(x, y, 3, 2, &d), HTNN_OK);
    x[0] = 99;
    y[0] = 9;
    assert_int_equal(htnn_data_count(d), 3);
    assert_int_equal(htnn_data_width(d), 2);
    assert_int_equal(htnn_data_class_count(d), 5);
    assert_floats(htnn_data_features(d), want, 6);
    assert_int_equal(htnn_data_labels(d)[0], 0);
    assert_int_equal(htnn_data_labels(d)[1], 4);
    assert_shape(d, 1, 1, 2);
    /* Out-pointers of shape may be NULL. */
    assert_int_equal(htnn_data_shape(d, NULL, NULL, NULL), HTNN_OK);
    htnn_data_free(d);
}

static void test_create_unlabelled(void **state)
{
    const float x[2] = {0.5f, -0.5f};
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_create(x, NULL, 2, 1, &d), HTNN_OK);
    assert_int_equal(htnn_data_class_count(d), 0);
    assert_int_equal(htnn_data_labels(d)[0], -1);
    assert_int_equal(htnn_data_labels(d)[1], -1);
    htnn_data_free(d);
}

static void test_create_errors(void **state)
{
    const float x[2] = {1, NAN};
    const float ok[2] = {1, 2};
    const int32_t neg[2] = {0, -3};
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_create(NULL, NULL, 1, 1, &d), HTNN_EINVAL);
    assert_error_mentions("features");
    assert_int_equal(htnn_data_create(ok, NULL, 1, 1, NULL), HTNN_EINVAL);
    assert_error_mentions("out");
    assert_int_equal(htnn_data_create(ok, NULL, 0, 1, &d), HTNN_EINVAL);
    assert_error_mentions("count 0");
    assert_int_equal(htnn_data_create(ok, NULL, 1, 0, &d), HTNN_EINVAL);
    assert_error_mentions("width 0");
    assert_int_equal(htnn_data_create(ok, NULL, SIZE_MAX, 2, &d), HTNN_EINVAL);
    assert_error_mentions("overflow");
    assert_int_equal(htnn_data_create(x, NULL, 1, 2, &d), HTNN_ENUMERIC);
    assert_error_mentions("feature 1 of example 0");
    assert_int_equal(htnn_data_create(ok, neg, 2, 1, &d), HTNN_EINVAL);
    assert_error_mentions("label 1 is -3");
    assert_null(d);
}

static void test_subset(void **state)
{
    const float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const int32_t y[4] = {0, 1, 5, 2};
    const float want[4] = {2, 3, 4, 5};
    htnn_data *d = NULL, *s = NULL;
    (void)state;
    assert_int_equal(htnn_data_create(x, y, 4, 2, &d), HTNN_OK);
    assert_int_equal(htnn_data_subset(d, 1, 2, &s), HTNN_OK);
    assert_int_equal(htnn_data_count(s), 2);
    assert_int_equal(htnn_data_width(s), 2);
    assert_floats(htnn_data_features(s), want, 4);
    assert_int_equal(htnn_data_labels(s)[0], 1);
    assert_int_equal(htnn_data_labels(s)[1], 5);
    assert_int_equal(htnn_data_class_count(s), 6);
    assert_shape(s, 1, 1, 2);
    /* A copy: writing the subset leaves the original alone. */
    htnn_data_features(s)[0] = 42;
    assert_true(htnn_data_features(d)[2] == 2.0f);
    htnn_data_free(s);
    s = NULL;
    assert_int_equal(htnn_data_subset(d, 3, 1, &s), HTNN_OK);
    assert_int_equal(htnn_data_class_count(s), 3);
    htnn_data_free(s);
    s = NULL;
    assert_int_equal(htnn_data_subset(d, 3, 2, &s), HTNN_EINVAL);
    assert_error_mentions("4 examples");
    assert_int_equal(htnn_data_subset(d, 0, 0, &s), HTNN_EINVAL);
    assert_int_equal(htnn_data_subset(d, SIZE_MAX, 2, &s), HTNN_EINVAL);
    assert_int_equal(htnn_data_subset(NULL, 0, 1, &s), HTNN_EINVAL);
    assert_error_mentions("data is NULL");
    assert_int_equal(htnn_data_subset(d, 0, 1, NULL), HTNN_EINVAL);
    assert_null(s);
    htnn_data_free(d);
}

static void test_null_accessors(void **state)
{
    size_t c = 7;
    (void)state;
    assert_int_equal(htnn_data_count(NULL), 0);
    assert_int_equal(htnn_data_width(NULL), 0);
    assert_int_equal(htnn_data_class_count(NULL), 0);
    assert_null(htnn_data_features(NULL));
    assert_null(htnn_data_labels(NULL));
    assert_int_equal(htnn_data_shape(NULL, &c, NULL, NULL), HTNN_EINVAL);
    assert_error_mentions("NULL");
    assert_int_equal(c, 7);
    htnn_data_free(NULL);
}

/* ---- IDX -------------------------------------------------------------- */

static void check_small_idx(htnn_data *d, int scaled)
{
    float want[12];
    for (size_t i = 0; i < 12; i++)
        want[i] = scaled ? (float)pixels[i] / 255.0f : (float)pixels[i];
    assert_int_equal(htnn_data_count(d), 2);
    assert_int_equal(htnn_data_width(d), 6);
    assert_shape(d, 1, 2, 3);
    assert_int_equal(htnn_data_class_count(d), 8);
    assert_int_equal(htnn_data_labels(d)[0], 3);
    assert_int_equal(htnn_data_labels(d)[1], 7);
    assert_floats(htnn_data_features(d), want, 12);
}

static void test_idx_plain(void **state)
{
    unsigned char b[64] = {0}, l[64] = {0};
    path_buf ip = write_file("img.idx", b, images_file(b));
    path_buf lp = write_file("lab.idx", l, labels_file(l, 2));
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_idx(ip.s, lp.s, HTNN_SCALE_UNIT, &d),
                     HTNN_OK);
    check_small_idx(d, 1);
    /* The exact values the scaling promises. */
    assert_true(htnn_data_features(d)[1] == 0.2f);
    assert_true(htnn_data_features(d)[5] == 1.0f);
    assert_true(htnn_data_features(d)[0] == 0.0f);
    htnn_data_free(d);
}

static void test_idx_gzip(void **state)
{
#if HTNN_HAVE_ZLIB
    unsigned char b[64] = {0}, l[64] = {0};
    path_buf ip = write_gz("img.idx.gz", b, images_file(b));
    path_buf lp = write_gz("lab.idx.gz", l, labels_file(l, 2));
    path_buf lplain = write_file("lab2.idx", l, labels_file(l, 2));
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_idx(ip.s, lp.s, HTNN_SCALE_NONE, &d),
                     HTNN_OK);
    check_small_idx(d, 0);
    assert_true(htnn_data_features(d)[5] == 255.0f);
    htnn_data_free(d);
    /* gzip images with plain labels. */
    d = NULL;
    assert_int_equal(htnn_data_load_idx(ip.s, lplain.s, HTNN_SCALE_UNIT, &d),
                     HTNN_OK);
    check_small_idx(d, 1);
    htnn_data_free(d);
#else
    (void)state;
    skip();
#endif
}

static void test_idx_unlabelled(void **state)
{
    unsigned char b[64] = {0};
    path_buf ip = write_file("img.idx", b, images_file(b));
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_idx(ip.s, NULL, HTNN_SCALE_UNIT, &d),
                     HTNN_OK);
    assert_int_equal(htnn_data_count(d), 2);
    assert_int_equal(htnn_data_class_count(d), 0);
    assert_int_equal(htnn_data_labels(d)[0], -1);
    assert_int_equal(htnn_data_labels(d)[1], -1);
    htnn_data_free(d);
}

/* Loads an all-zero ubyte IDX file of the given dims and checks the shape. */
static void check_idx_shape(int ndims, const uint32_t *dims, size_t c,
                            size_t r, size_t w)
{
    unsigned char b[128] = {0};
    size_t n = idx_header(b, 0x08, ndims, dims), width = 1;
    path_buf p;
    htnn_data *d = NULL;
    for (int i = 1; i < ndims; i++)
        width *= dims[i];
    p = write_file("shape.idx", b, n + dims[0] * width);
    assert_int_equal(htnn_data_load_idx(p.s, NULL, HTNN_SCALE_NONE, &d),
                     HTNN_OK);
    assert_int_equal(htnn_data_count(d), dims[0]);
    assert_int_equal(htnn_data_width(d), width);
    assert_shape(d, c, r, w);
    htnn_data_free(d);
}

static void test_idx_shapes(void **state)
{
    const uint32_t d1[1] = {5}, d2[2] = {3, 7}, d3[3] = {2, 4, 5},
                   d4[4] = {2, 3, 2, 4};
    (void)state;
    check_idx_shape(1, d1, 1, 1, 1);
    check_idx_shape(2, d2, 1, 1, 7);
    check_idx_shape(3, d3, 1, 4, 5);
    check_idx_shape(4, d4, 3, 2, 4);
}

/* Big-endian float32 bytes. */
static void put_float(unsigned char *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    b[0] = (unsigned char)(u >> 24);
    b[1] = (unsigned char)(u >> 16);
    b[2] = (unsigned char)(u >> 8);
    b[3] = (unsigned char)u;
}

static void test_idx_float32(void **state)
{
    const uint32_t dims[2] = {2, 2};
    const float want[4] = {1.5f, -2.25f, 300.0f, 0.1f};
    unsigned char b[64] = {0};
    size_t n = idx_header(b, 0x0D, 2, dims);
    path_buf p;
    htnn_data *d = NULL;
    (void)state;
    for (int i = 0; i < 4; i++)
        put_float(b + n + 4 * i, want[i]);
    p = write_file("f.idx", b, n + 16);
    /* float data are never rescaled */
    assert_int_equal(htnn_data_load_idx(p.s, NULL, HTNN_SCALE_UNIT, &d),
                     HTNN_OK);
    assert_floats(htnn_data_features(d), want, 4);
    assert_shape(d, 1, 1, 2);
    htnn_data_free(d);
    put_float(b + n + 12, INFINITY);
    p = write_file("f.idx", b, n + 16);
    assert_idx_fails(p.s, NULL, HTNN_ENUMERIC, "value 1 of example 1");
}

static void test_idx_bad_args(void **state)
{
    unsigned char b[64] = {0};
    path_buf ip = write_file("img.idx", b, images_file(b));
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_idx(NULL, NULL, 0, &d), HTNN_EINVAL);
    assert_error_mentions("images_path");
    assert_int_equal(htnn_data_load_idx(ip.s, NULL, 0, NULL), HTNN_EINVAL);
    assert_error_mentions("out");
    assert_int_equal(htnn_data_load_idx(ip.s, NULL, 7, &d), HTNN_EINVAL);
    assert_error_mentions("scale 7");
    assert_null(d);
}

static void test_idx_missing_file(void **state)
{
    unsigned char b[64] = {0};
    path_buf ip = write_file("img.idx", b, images_file(b));
    path_buf missing = tmp_path("no-such-file.idx");
    (void)state;
    assert_idx_fails(missing.s, NULL, HTNN_EIO, "no-such-file.idx");
    assert_error_mentions("No such file");
    assert_idx_fails(ip.s, missing.s, HTNN_EIO, "no-such-file.idx");
}

static void test_idx_truncated(void **state)
{
    unsigned char b[64] = {0}, l[64] = {0};
    size_t n = images_file(b);
    path_buf lp = write_file("lab.idx", l, labels_file(l, 2));
    path_buf p = write_file("trunc.idx", b, n - 1);
    (void)state;
    assert_idx_fails(p.s, lp.s, HTNN_EFORMAT, "truncated");
    assert_error_mentions("trunc.idx");
    p = write_file("trunc.idx", b, 10);
    assert_idx_fails(p.s, lp.s, HTNN_EFORMAT, "truncated header");
    p = write_file("trunc.idx", b, 2);
    assert_idx_fails(p.s, lp.s, HTNN_EFORMAT, "truncated header");
    p = write_file("empty.idx", b, 0);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "truncated header");
    /* Labels file one byte short. */
    p = write_file("img.idx", b, n);
    lp = write_file("lab.idx", l, labels_file(l, 2) - 1);
    assert_idx_fails(p.s, lp.s, HTNN_EFORMAT, "lab.idx: truncated");
    /* Trailing bytes: not the file the header describes. */
    b[n] = 9;
    p = write_file("long.idx", b, n + 1);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "1 more than the header");
}

static void test_idx_truncated_gzip(void **state)
{
#if HTNN_HAVE_ZLIB
    unsigned char b[64] = {0};
    size_t n = images_file(b);
    path_buf p = write_gz("trunc.idx.gz", b, n - 3);
    FILE *fp;
    long size;
    unsigned char raw[256];
    (void)state;
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "truncated data");
    assert_error_mentions("trunc.idx.gz");
    /* Trailing data inside the gzip stream. */
    b[n] = 1;
    p = write_gz("long.idx.gz", b, n + 1);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "continues after");
    /* A gzip stream cut short on disk. */
    p = write_gz("cut.idx.gz", b, n);
    fp = fopen(p.s, "rb");
    assert_non_null(fp);
    size = (long)fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    p = write_file("cut.idx.gz", raw, (size_t)size - 10);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "cut.idx.gz");
    /* Cut inside the CRC/size trailer: all data arrive, the check fails. */
    p = write_file("cut.idx.gz", raw, (size_t)size - 4);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "cut.idx.gz: corrupt gzip");
    /* Corrupt deflate data after a valid gzip header. */
    memset(raw + 10, 0xff, (size_t)size - 10);
    p = write_file("bad.idx.gz", raw, (size_t)size);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "bad.idx.gz");
#else
    (void)state;
    skip();
#endif
}

static void test_idx_bad_headers(void **state)
{
    unsigned char b[128] = {0};
    size_t n = images_file(b);
    const uint32_t zero_dims[3] = {2, 0, 3};
    const uint32_t huge_dims[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu,
                                   0xffffffffu};
    const uint32_t big_dims[3] = {60000, 28, 28};
    path_buf p, lp;
    (void)state;
    b[0] = 0x50; /* "PK": some other file */
    b[1] = 0x4b;
    p = write_file("magic.idx", b, n);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "not an IDX file");
    images_file(b);
    b[2] = 0x0B; /* signed short elements */
    p = write_file("type.idx", b, n);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "0x0b is not supported");
    images_file(b);
    b[3] = 5;
    p = write_file("ndims.idx", b, n);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "5 dimensions");
    p = write_file("zero.idx", b, idx_header(b, 0x08, 3, zero_dims));
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "dimension 2 is 0");
    p = write_file("huge.idx", b, idx_header(b, 0x08, 4, huge_dims) + 8);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "overflow");
    /* An absurd header in a tiny file is refused before allocating. */
    p = write_file("big.idx", b, idx_header(b, 0x08, 3, big_dims) + 100);
    assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "truncated: file has 116 bytes");
#if HTNN_HAVE_ZLIB
    {
        unsigned char zeros[1100] = {0};
        const uint32_t dims3[3] = {2000000000u, 28, 28};
        size_t hn = idx_header(zeros, 0x08, 3, dims3);
        p = write_gz("big.idx.gz", zeros, hn + 1000);
        assert_idx_fails(p.s, NULL, HTNN_EFORMAT, "gzip file can hold");
    }
#endif
    /* Labels that are not idx1 unsigned bytes. */
    n = images_file(b);
    p = write_file("img.idx", b, n);
    lp = write_file("lab.idx", b, n);
    assert_idx_fails(p.s, lp.s, HTNN_EFORMAT, "labels must be idx1");
}

static void test_idx_count_mismatch(void **state)
{
    unsigned char b[64] = {0}, l[64] = {0};
    path_buf ip = write_file("img.idx", b, images_file(b));
    path_buf lp = write_file("train-labels.idx", l, labels_file(l, 1));
    (void)state;
    assert_idx_fails(ip.s, lp.s, HTNN_EFORMAT,
                     "train-labels.idx: 1 labels but 2 images");
}

/* ---- IDX row ranges (htnn_data_load_idx_rows, htnn_data_idx_count) -------- */

#define RANGE_ROWS 7   /* examples of the row-range files, 2 x 3 bytes each */

/* RANGE_ROWS distinct images and labels 0..6, plain (or gzip'd when gz). */
static void write_range_files(int gz, path_buf *images, path_buf *labels)
{
    const uint32_t dims[3] = {RANGE_ROWS, 2, 3}, count = RANGE_ROWS;
    unsigned char b[16 + 6 * RANGE_ROWS], l[8 + RANGE_ROWS];
    size_t n = idx_header(b, 0x08, 3, dims), nl = idx_header(l, 0x08, 1, &count);
    for (size_t i = 0; i < 6 * RANGE_ROWS; i++)
        b[n + i] = (unsigned char)(7 * i + 1);
    for (size_t i = 0; i < RANGE_ROWS; i++)
        l[nl + i] = (unsigned char)i;
#if HTNN_HAVE_ZLIB
    if (gz) {
        *images = write_gz("range-img.idx.gz", b, n + 6 * RANGE_ROWS);
        *labels = write_gz("range-lab.idx.gz", l, nl + RANGE_ROWS);
        return;
    }
#endif
    (void)gz;
    *images = write_file("range-img.idx", b, n + 6 * RANGE_ROWS);
    *labels = write_file("range-lab.idx", l, nl + RANGE_ROWS);
}

/* Rows [first, first + count) equal the same rows of the whole load. */
static void check_rows(const char *images, const char *labels, size_t first,
                       size_t count)
{
    htnn_data *all = NULL, *part = NULL;
    assert_int_equal(htnn_data_load_idx(images, labels, HTNN_SCALE_UNIT, &all),
                     HTNN_OK);
    assert_int_equal(htnn_data_load_idx_rows(images, labels, HTNN_SCALE_UNIT,
                                             first, count, &part),
                     HTNN_OK);
    assert_int_equal(htnn_data_count(part), count);
    assert_int_equal(htnn_data_width(part), 6);
    assert_shape(part, 1, 2, 3);
    assert_floats(htnn_data_features(part), htnn_data_features(all) + 6 * first,
                  6 * count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(htnn_data_labels(part)[i], labels ? (int)(first + i) : -1);
    /* "1 + the largest label" of the rows read */
    assert_int_equal(htnn_data_class_count(part), labels ? first + count : 0);
    htnn_data_free(part);
    htnn_data_free(all);
}

static void check_all_ranges(int gz)
{
    path_buf ip, lp;
    write_range_files(gz, &ip, &lp);
    check_rows(ip.s, lp.s, 0, RANGE_ROWS);   /* the whole file */
    check_rows(ip.s, lp.s, 0, 1);            /* the first row */
    check_rows(ip.s, lp.s, RANGE_ROWS - 1, 1);  /* the last row */
    check_rows(ip.s, lp.s, 2, 3);            /* the middle */
    check_rows(ip.s, lp.s, 3, RANGE_ROWS - 3);  /* to the end */
    check_rows(ip.s, NULL, 4, 2);            /* unlabelled */
}

static void test_idx_rows(void **state)
{
    (void)state;
    check_all_ranges(0);
#if HTNN_HAVE_ZLIB
    check_all_ranges(1);
#endif
}

static void assert_rows_fail(const char *images, const char *labels, size_t first,
                             size_t count, htnn_status want, const char *what)
{
    htnn_data *sentinel = (htnn_data *)&tmp_dir, *d = sentinel;
    htnn_clear_error();
    assert_int_equal(htnn_data_load_idx_rows(images, labels, HTNN_SCALE_UNIT,
                                             first, count, &d),
                     want);
    assert_ptr_equal(d, sentinel);
    assert_error_mentions(what);
}

static void test_idx_rows_bad_ranges(void **state)
{
    path_buf ip, lp;
    htnn_data *d = NULL;
    (void)state;
    write_range_files(0, &ip, &lp);
    assert_rows_fail(ip.s, lp.s, 0, 0, HTNN_EINVAL, "[0, 0 + 0)");
    assert_rows_fail(ip.s, lp.s, RANGE_ROWS, 1, HTNN_EINVAL, "of the 7 examples");
    assert_rows_fail(ip.s, lp.s, 3, RANGE_ROWS - 2, HTNN_EINVAL, "range-img.idx");
    assert_rows_fail(ip.s, lp.s, RANGE_ROWS + 1, 0, HTNN_EINVAL, "not a non-empty");
    /* first + count wraps around */
    assert_rows_fail(ip.s, lp.s, SIZE_MAX, 2, HTNN_EINVAL, "not a non-empty");
    assert_rows_fail(ip.s, lp.s, 2, SIZE_MAX, HTNN_EINVAL, "not a non-empty");
    assert_rows_fail(NULL, lp.s, 0, 1, HTNN_EINVAL, "htnn_data_load_idx_rows: images_path");
    assert_int_equal(htnn_data_load_idx_rows(ip.s, lp.s, 0, 0, 1, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_data_load_idx_rows(ip.s, lp.s, 9, 0, 1, &d), HTNN_EINVAL);
    assert_error_mentions("scale 9");
    assert_null(d);
}

/* A truncated plain file is refused whatever the rows (its size is checked
 * against the header), so is a label file of another count. */
static void test_idx_rows_truncated(void **state)
{
    unsigned char b[64] = {0}, l[64] = {0};
    size_t n = images_file(b);
    path_buf lp = write_file("lab.idx", l, labels_file(l, 2));
    path_buf p = write_file("trunc.idx", b, n - 1);
    (void)state;
    assert_rows_fail(p.s, lp.s, 0, 1, HTNN_EFORMAT, "truncated");
    assert_rows_fail(p.s, NULL, 0, 1, HTNN_EFORMAT, "trunc.idx");
    p = write_file("img.idx", b, n);
    lp = write_file("lab1.idx", l, labels_file(l, 1));
    assert_rows_fail(p.s, lp.s, 0, 1, HTNN_EFORMAT, "1 labels but 2 images");
    lp = write_file("lab.idx", l, labels_file(l, 2) - 1);
    assert_rows_fail(p.s, lp.s, 0, 1, HTNN_EFORMAT, "lab.idx: truncated");
#if HTNN_HAVE_ZLIB
    /* gzip: rows reaching the cut fail; rows before it are read alone */
    p = write_gz("trunc.idx.gz", b, n - 3);
    assert_rows_fail(p.s, NULL, 1, 1, HTNN_EFORMAT, "truncated data");
    htnn_data *d = NULL;
    assert_int_equal(htnn_data_load_idx_rows(p.s, NULL, HTNN_SCALE_NONE, 0, 1, &d),
                     HTNN_OK);
    assert_int_equal(htnn_data_features(d)[5], pixels[5]);
    htnn_data_free(d);
#endif
}

/* The value's example number counts from the file's start. */
static void test_idx_rows_float32(void **state)
{
    const uint32_t dims[2] = {3, 2};
    unsigned char b[64] = {0};
    size_t n = idx_header(b, 0x0D, 2, dims);
    htnn_data *d = NULL;
    (void)state;
    for (int i = 0; i < 6; i++)
        put_float(b + n + 4 * i, (float)i - 2.5f);
    put_float(b + n + 4 * 5, NAN);
    path_buf p = write_file("f.idx", b, n + 24);
    assert_int_equal(htnn_data_load_idx_rows(p.s, NULL, HTNN_SCALE_UNIT, 1, 1, &d),
                     HTNN_OK);
    assert_true(htnn_data_features(d)[0] == -0.5f && htnn_data_features(d)[1] == 0.5f);
    htnn_data_free(d);
    assert_rows_fail(p.s, NULL, 1, 2, HTNN_ENUMERIC, "value 1 of example 2");
}

static void test_idx_count(void **state)
{
    path_buf ip, lp, missing = tmp_path("no-such-file.idx");
    unsigned char b[64] = {0};
    size_t count = 0;
    (void)state;
    for (int gz = 0; gz < 1 + HTNN_HAVE_ZLIB; gz++) {
        write_range_files(gz, &ip, &lp);
        count = 0;
        assert_int_equal(htnn_data_idx_count(ip.s, &count), HTNN_OK);
        assert_int_equal(count, RANGE_ROWS);
        count = 0;
        assert_int_equal(htnn_data_idx_count(lp.s, &count), HTNN_OK);
        assert_int_equal(count, RANGE_ROWS);
    }
    assert_int_equal(htnn_data_idx_count(NULL, &count), HTNN_EINVAL);
    assert_int_equal(htnn_data_idx_count(ip.s, NULL), HTNN_EINVAL);
    assert_int_equal(htnn_data_idx_count(missing.s, &count), HTNN_EIO);
    path_buf p = write_file("trunc.idx", b, images_file(b) - 1);
    assert_int_equal(htnn_data_idx_count(p.s, &count), HTNN_EFORMAT);
    assert_error_mentions("truncated");
    assert_int_equal(count, RANGE_ROWS);   /* untouched on failure */
}

#if !HTNN_HAVE_ZLIB
static void test_idx_gzip_without_zlib(void **state)
{
    const unsigned char gz[4] = {0x1f, 0x8b, 8, 0};
    path_buf p = write_file("x.gz", gz, sizeof gz);
    (void)state;
    assert_idx_fails(p.s, NULL, HTNN_EUNSUPPORTED, "without zlib");
}
#endif

static void test_idx_fashion_mnist(void **state)
{
    const char *images = FASHION_DIR "t10k-images-idx3-ubyte.gz";
    const char *labels = FASHION_DIR "t10k-labels-idx1-ubyte.gz";
    htnn_data *d = NULL;
    const float *x;
    size_t seen[10] = {0};
    (void)state;
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0 ||
        !HTNN_HAVE_ZLIB)
        skip();
    assert_int_equal(htnn_data_load_idx(images, labels, HTNN_SCALE_UNIT, &d),
                     HTNN_OK);
    assert_int_equal(htnn_data_count(d), 10000);
    assert_int_equal(htnn_data_width(d), 784);
    assert_int_equal(htnn_data_class_count(d), 10);
    assert_shape(d, 1, 28, 28);
    x = htnn_data_features(d);
    for (size_t i = 0; i < 10000 * 784; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            fail_msg("pixel %zu = %g", i, (double)x[i]);
    for (size_t i = 0; i < 10000; i++) {
        int32_t y = htnn_data_labels(d)[i];
        assert_in_range(y, 0, 9);
        seen[y]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(seen[c], 1000); /* the test set is balanced */
    htnn_data_free(d);
}

/* ---- CSV -------------------------------------------------------------- */

static void test_csv_header_auto(void **state)
{
    path_buf p = write_text("a.csv", "label,x,y\n1,0.5,2\n0,1.5,-3\n");
    const float want[4] = {0.5f, 2, 1.5f, -3};
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_csv(p.s, NULL, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), 2);
    assert_int_equal(htnn_data_width(d), 2);
    assert_int_equal(htnn_data_class_count(d), 2);
    assert_shape(d, 1, 1, 2);
    assert_floats(htnn_data_features(d), want, 4);
    assert_int_equal(htnn_data_labels(d)[0], 1);
    assert_int_equal(htnn_data_labels(d)[1], 0);
    htnn_data_free(d);
    /* No header: the first line is data. */
    p = write_text("b.csv", "1,0.5,2\n0,1.5,-3\n");
    d = NULL;
    assert_int_equal(htnn_data_load_csv(p.s, NULL, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), 2);
    htnn_data_free(d);
}

static void test_csv_header_forced(void **state)
{
    path_buf p = write_text("h.csv", "9,9,9\n2,3,4\n");
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    htnn_data *d = NULL;
    (void)state;
    o.header = 1;
    assert_int_equal(htnn_data_load_csv(p.s, &o, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), 1);
    assert_int_equal(htnn_data_labels(d)[0], 2);
    htnn_data_free(d);
    p = write_text("h0.csv", "a,b\n1,2\n");
    o.header = 0;
    assert_csv_fails(p.s, &o, HTNN_EFORMAT, "line 1, column 1: 'a' is not");
}

static void test_csv_last_column_semicolon_crlf(void **state)
{
    path_buf p = write_text("s.csv", "x;y;class\r\n1;2;0\r\n\r\n3;4e-1;5");
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    const float want[4] = {1, 2, 3, 0.4f};
    htnn_data *d = NULL;
    (void)state;
    o.label_column = -1;
    o.delimiter = ';';
    assert_int_equal(htnn_data_load_csv(p.s, &o, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), 2);
    assert_int_equal(htnn_data_width(d), 2);
    assert_floats(htnn_data_features(d), want, 4);
    assert_int_equal(htnn_data_labels(d)[0], 0);
    assert_int_equal(htnn_data_labels(d)[1], 5);
    assert_int_equal(htnn_data_class_count(d), 6);
    htnn_data_free(d);
}

static void test_csv_middle_label_no_label(void **state)
{
    path_buf p = write_text("m.csv", " 1 , 7 ,2\n3,8.0,\t4\n\n\n");
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    const float want[4] = {1, 2, 3, 4};
    const float all[6] = {1, 7, 2, 3, 8, 4};
    htnn_data *d = NULL;
    (void)state;
    o.label_column = 1;
    assert_int_equal(htnn_data_load_csv(p.s, &o, &d), HTNN_OK);
    assert_floats(htnn_data_features(d), want, 4);
    assert_int_equal(htnn_data_labels(d)[0], 7);
    assert_int_equal(htnn_data_labels(d)[1], 8);
    htnn_data_free(d);
    d = NULL;
    o.label_column = -2;
    assert_int_equal(htnn_data_load_csv(p.s, &o, &d), HTNN_OK);
    assert_int_equal(htnn_data_width(d), 3);
    assert_floats(htnn_data_features(d), all, 6);
    assert_int_equal(htnn_data_class_count(d), 0);
    assert_int_equal(htnn_data_labels(d)[1], -1);
    htnn_data_free(d);
}

static void test_csv_minmax(void **state)
{
    path_buf p = write_text("mm.csv", "0,2,7,-1\n1,4,7,3\n2,6,7,1\n");
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    const float want[9] = {0, 0, 0, 0.5f, 0, 1, 1, 0, 0.5f};
    htnn_data *d = NULL;
    (void)state;
    o.scale = HTNN_SCALE_UNIT;
    assert_int_equal(htnn_data_load_csv(p.s, &o, &d), HTNN_OK);
    assert_floats(htnn_data_features(d), want, 9);
    assert_int_equal(htnn_data_class_count(d), 3);
    htnn_data_free(d);
}

static void test_csv_bom_and_old_struct(void **state)
{
    path_buf p = write_text("bom.csv", "\xEF\xBB\xBF" "id,v\n4,0.25\n");
    /* A caller built against a header that had only label_column. */
    struct {
        size_t struct_size;
        int label_column;
    } old = {offsetof(htnn_csv_options, label_column) + sizeof(int), -2};
    const float want[2] = {4, 0.25f};
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(
        htnn_data_load_csv(p.s, (const htnn_csv_options *)(void *)&old, &d),
        HTNN_OK);
    assert_int_equal(htnn_data_width(d), 2);
    assert_floats(htnn_data_features(d), want, 2);
    htnn_data_free(d);
}

static void test_csv_long_line(void **state)
{
    enum { COLS = 50000 };
    char *text = malloc(COLS * 8 + 16);
    size_t n = 0;
    htnn_data *d = NULL;
    path_buf p;
    (void)state;
    assert_non_null(text);
    for (int row = 0; row < 2; row++) {
        n += (size_t)sprintf(text + n, "%d", row);
        for (int j = 1; j < COLS; j++)
            n += (size_t)sprintf(text + n, ",%d", j % 1000);
        text[n++] = '\n';
    }
    p = write_file("long.csv", text, n);
    free(text);
    assert_int_equal(htnn_data_load_csv(p.s, NULL, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), 2);
    assert_int_equal(htnn_data_width(d), COLS - 1);
    assert_true(htnn_data_features(d)[COLS - 2] == (float)((COLS - 1) % 1000));
    assert_true(htnn_data_features(d)[COLS - 1 + 998] == 999.0f);
    assert_int_equal(htnn_data_labels(d)[1], 1);
    htnn_data_free(d);
}

static void test_csv_many_rows(void **state)
{
    /* Enough rows to grow the row arrays and refill the line buffer. */
    enum { ROWS = 20000 };
    char *text = malloc(ROWS * 16);
    size_t n = 0;
    htnn_data *d = NULL;
    path_buf p;
    (void)state;
    assert_non_null(text);
    for (int i = 0; i < ROWS; i++)
        n += (size_t)sprintf(text + n, "%d,%d.5\r\n", i % 3, i);
    p = write_file("rows.csv", text, n);
    free(text);
    assert_int_equal(htnn_data_load_csv(p.s, NULL, &d), HTNN_OK);
    assert_int_equal(htnn_data_count(d), ROWS);
    assert_int_equal(htnn_data_class_count(d), 3);
    for (int i = 0; i < ROWS; i++)
        if (htnn_data_features(d)[i] != (float)i + 0.5f ||
            htnn_data_labels(d)[i] != i % 3)
            fail_msg("row %d", i);
    htnn_data_free(d);
}

static void test_csv_errors(void **state)
{
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    path_buf p;
    htnn_data *d = NULL;
    (void)state;
    assert_int_equal(htnn_data_load_csv(NULL, NULL, &d), HTNN_EINVAL);
    assert_error_mentions("path");
    p = write_text("ok.csv", "1,2\n");
    assert_int_equal(htnn_data_load_csv(p.s, NULL, NULL), HTNN_EINVAL);
    assert_error_mentions("out");
    p = tmp_path("missing.csv");
    assert_csv_fails(p.s, NULL, HTNN_EIO, "missing.csv: No such file");
    p = write_text("ragged.csv", "a,b,c\n1,2,3\n4,5\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT,
                     "line 3 has 2 fields, but line 2 has 3");
    p = write_text("text.csv", "1,2,3\n4,abc,6\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT,
                     "text.csv: line 2, column 2: 'abc' is not a number");
    p = write_text("trail.csv", "1,2,3\n4,5x,6\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "'5x' is not a number");
    p = write_text("empty_field.csv", "1,2,3\n4,,6\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "line 2, column 2: empty");
    p = write_text("nan.csv", "1,2,3\n4,5,nan\n");
    assert_csv_fails(p.s, NULL, HTNN_ENUMERIC, "line 2, column 3");
    assert_error_mentions("NaN");
    p = write_text("inf.csv", "1,-inf,3\n");
    assert_csv_fails(p.s, NULL, HTNN_ENUMERIC, "line 1, column 2");
    p = write_text("big.csv", "1,1e39\n");
    assert_csv_fails(p.s, NULL, HTNN_ENUMERIC, "float32 range");
    p = write_text("huge.csv", "1,1e999\n");
    assert_csv_fails(p.s, NULL, HTNN_ENUMERIC, "line 1, column 2");
    p = write_text("neg.csv", "x,y\n1,2\n-1,3\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "line 3, column 1: label '-1'");
    p = write_text("frac.csv", "1.5,2\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "label '1.5' is not an integer");
    p = write_text("nanlabel.csv", "nan,2\n");
    assert_csv_fails(p.s, NULL, HTNN_ENUMERIC, "column 1");
    p = write_text("empty.csv", "");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "no data lines");
    p = write_text("only_header.csv", "a,b\n\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "no data lines");
    p = write_text("onecol.csv", "1\n2\n");
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "no features");
    p = write_file("nul.csv", "1,2\n3,\0\n", 8);
    assert_csv_fails(p.s, NULL, HTNN_EFORMAT, "line 2 contains a NUL");
    o.label_column = 5;
    p = write_text("cols.csv", "1,2,3\n");
    assert_csv_fails(p.s, &o, HTNN_EFORMAT, "too few for label column 5");
    assert_null(d);
}

static void test_csv_bad_options(void **state)
{
    path_buf p = write_text("ok.csv", "1,2\n");
    htnn_csv_options o = HTNN_CSV_OPTIONS_INIT;
    (void)state;
    o.delimiter = '.';
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "delimiter");
    o = (htnn_csv_options)HTNN_CSV_OPTIONS_INIT;
    o.delimiter = '\0';
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "delimiter");
    o = (htnn_csv_options)HTNN_CSV_OPTIONS_INIT;
    o.label_column = -3;
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "label_column -3");
    o = (htnn_csv_options)HTNN_CSV_OPTIONS_INIT;
    o.header = 2;
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "header 2");
    o = (htnn_csv_options)HTNN_CSV_OPTIONS_INIT;
    o.scale = 9;
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "scale 9");
    o = (htnn_csv_options)HTNN_CSV_OPTIONS_INIT;
    o.struct_size = sizeof o + 8;
    assert_csv_fails(p.s, &o, HTNN_EUNSUPPORTED, "struct_size");
    o.struct_size = 0;
    assert_csv_fails(p.s, &o, HTNN_EINVAL, "struct_size");
}

/* ---- fixture ---------------------------------------------------------- */

static int make_tmp_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/htnn_test_data.XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int remove_tmp_dir(void **state)
{
    DIR *dir = opendir(tmp_dir);
    struct dirent *e;
    (void)state;
    if (dir == NULL)
        return -1;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            remove(tmp_path(e->d_name).s);
    closedir(dir);
    return rmdir(tmp_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_copies),
        cmocka_unit_test(test_create_unlabelled),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_null_accessors),
        cmocka_unit_test(test_idx_plain),
        cmocka_unit_test(test_idx_gzip),
        cmocka_unit_test(test_idx_unlabelled),
        cmocka_unit_test(test_idx_shapes),
        cmocka_unit_test(test_idx_float32),
        cmocka_unit_test(test_idx_bad_args),
        cmocka_unit_test(test_idx_missing_file),
        cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_truncated_gzip),
        cmocka_unit_test(test_idx_bad_headers),
        cmocka_unit_test(test_idx_count_mismatch),
        cmocka_unit_test(test_idx_rows),
        cmocka_unit_test(test_idx_rows_bad_ranges),
        cmocka_unit_test(test_idx_rows_truncated),
        cmocka_unit_test(test_idx_rows_float32),
        cmocka_unit_test(test_idx_count),
#if !HTNN_HAVE_ZLIB
        cmocka_unit_test(test_idx_gzip_without_zlib),
#endif
        cmocka_unit_test(test_idx_fashion_mnist),
        cmocka_unit_test(test_csv_header_auto),
        cmocka_unit_test(test_csv_header_forced),
        cmocka_unit_test(test_csv_last_column_semicolon_crlf),
        cmocka_unit_test(test_csv_middle_label_no_label),
        cmocka_unit_test(test_csv_minmax),
        cmocka_unit_test(test_csv_bom_and_old_struct),
        cmocka_unit_test(test_csv_long_line),
        cmocka_unit_test(test_csv_many_rows),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_csv_bad_options),
    };
    return cmocka_run_group_tests(tests, make_tmp_dir, remove_tmp_dir);
}
