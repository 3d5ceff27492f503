/* IDX reader (the MNIST file format), plain or gzip'd.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of dimensions),
 * that many big-endian u32 dimensions, then the elements in row-major order.
 * Both headers are read and every size is checked against the other file and
 * against the file size before the feature array is allocated, so a corrupt
 * or hostile header fails cleanly instead of asking for gigabytes.  A part
 * of the examples (htnn_data_load_idx_rows, for one rank of a data-parallel
 * fit) is found by seeking in a plain file; a gzip stream is decompressed up
 * to the part's end.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htnn_config.h"
#if HTNN_HAVE_ZLIB
#include <zlib.h>
#endif

#include "data_internal.h"
#include "error.h"

enum {
    IDX_UBYTE = 0x08,  /* unsigned byte elements */
    IDX_FLOAT = 0x0D,  /* big-endian IEEE float32 elements */
    IDX_MAX_DIMS = 4,  /* n x channels x rows x cols */
    IDX_CHUNK = 16384, /* bytes converted per read */
    /* deflate cannot compress better than about 1032:1, which bounds what a
     * gzip file of known size can decompress to. */
    GZIP_MAX_RATIO = 1032
};

/* One open input file, plain (stdio) or gzip'd (zlib). */
typedef struct idx_file {
    const char *path;
    FILE *fp; /* plain files */
#if HTNN_HAVE_ZLIB
    gzFile gz; /* gzip'd files */
#endif
    long long disk_size;   /* bytes on disk, -1 if unknown (a pipe) */
    unsigned char peek[2]; /* first bytes, read to sniff the gzip magic */
    size_t npeek, peek_pos;
    size_t pos;    /* decompressed bytes consumed so far */
    size_t expect; /* header + payload bytes, once the header is known */
} idx_file;

/* A parsed header; sizes already checked for overflow. */
typedef struct idx_header {
    int type;  /* IDX_UBYTE or IDX_FLOAT */
    int ndims; /* 1 .. IDX_MAX_DIMS */
    uint32_t dims[IDX_MAX_DIMS];
    size_t count;        /* dims[0] */
    size_t width;        /* product of dims[1..] (1 for idx1) */
    size_t elem_bytes;   /* 1 or 4 */
    size_t header_bytes; /* 4 + 4 * ndims */
    size_t payload;      /* count * width * elem_bytes */
} idx_header;

/* Size of a seekable file, -1 for pipes and the like. */
static long long file_size(FILE *fp)
{
    long end;
    if (fseek(fp, 0, SEEK_END) != 0) {
        clearerr(fp);
        return -1;
    }
    end = ftell(fp);
    if (end < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        clearerr(fp);
        return -1;
    }
    return (long long)end;
}

/* Switches a file that starts with the gzip magic over to zlib. */
static htnn_status open_gzip(idx_file *f)
{
#if HTNN_HAVE_ZLIB
    fclose(f->fp);
    f->fp = NULL;
    f->npeek = 0;
    errno = 0;
    f->gz = gzopen(f->path, "rb");
    if (f->gz == NULL)
        return errno != 0 ? error_set(HTNN_EIO, "%s: %s", f->path,
                                      strerror(errno))
                          : error_set(HTNN_ENOMEM, "%s: out of memory opening "
                                      "gzip stream", f->path);
    gzbuffer(f->gz, 1u << 16);
    return HTNN_OK;
#else
    return error_set(HTNN_EUNSUPPORTED,
                     "%s: gzip-compressed, but libhtnn was built without "
                     "zlib (gunzip the file first)", f->path);
#endif
}

/* Opens `path`; idx_close must be called afterwards whatever this returns. */
static htnn_status idx_open(idx_file *f, const char *path)
{
    *f = (idx_file){.path = path, .disk_size = -1};
    f->fp = fopen(path, "rb");
    if (f->fp == NULL)
        return error_set(HTNN_EIO, "%s: %s", path, strerror(errno));
    f->disk_size = file_size(f->fp);
    f->npeek = fread(f->peek, 1, sizeof f->peek, f->fp);
    if (ferror(f->fp))
        return error_set(HTNN_EIO, "%s: %s", path, strerror(errno));
    if (f->npeek == 2 && f->peek[0] == 0x1f && f->peek[1] == 0x8b)
        return open_gzip(f);
    return HTNN_OK;
}

static void idx_close(idx_file *f)
{
    if (f->fp != NULL)
        fclose(f->fp);
#if HTNN_HAVE_ZLIB
    if (f->gz != NULL)
        gzclose(f->gz);
#endif
    *f = (idx_file){.disk_size = -1};
}

#if HTNN_HAVE_ZLIB
/* zlib prefixes its messages with the path; we add our own. */
static const char *gz_message(const idx_file *f, const char *msg)
{
    size_t n = strlen(f->path);
    if (strncmp(msg, f->path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/* Maps a failed gzread to a status: I/O, memory or corrupt data. */
static htnn_status gz_failure(const idx_file *f)
{
    int errnum = Z_OK;
    const char *msg = gzerror(f->gz, &errnum);
    if (errnum == Z_ERRNO)
        return error_set(HTNN_EIO, "%s: %s", f->path, strerror(errno));
    if (errnum == Z_MEM_ERROR)
        return error_set(HTNN_ENOMEM, "%s: out of memory decompressing",
                         f->path);
    return error_set(HTNN_EFORMAT, "%s: corrupt gzip data (%s)", f->path,
                     gz_message(f, msg));
}

/* gzread takes an unsigned count and returns an int: read in pieces. */
static htnn_status gz_read_all(idx_file *f, unsigned char *p, size_t n,
                               size_t *got)
{
    while (n > 0) {
        unsigned piece = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(f->gz, p, piece);
        if (r < 0)
            return gz_failure(f);
        if (r == 0)
            break;
        *got += (size_t)r;
        p += r;
        n -= (size_t)r;
    }
    return HTNN_OK;
}
#endif

/* Reads up to n bytes; *got < n only at the end of the file. */
static htnn_status idx_read(idx_file *f, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    htnn_status st = HTNN_OK;
    *got = 0;
    while (f->peek_pos < f->npeek && *got < n)
        p[(*got)++] = f->peek[f->peek_pos++];
#if HTNN_HAVE_ZLIB
    if (f->gz != NULL)
        st = gz_read_all(f, p + *got, n - *got, got);
    else
#endif
    {
        *got += fread(p + *got, 1, n - *got, f->fp);
        if (ferror(f->fp))
            st = error_set(HTNN_EIO, "%s: %s", f->path, strerror(errno));
    }
    f->pos += *got;
    return st;
}

/* Reads exactly n bytes of `what`; a short read means a truncated file. */
static htnn_status read_exact(idx_file *f, void *buf, size_t n,
                              const char *what)
{
    size_t got;
    htnn_status st = idx_read(f, buf, n, &got);
    if (st != HTNN_OK || got == n)
        return st;
    if (f->expect > 0)
        return error_set(HTNN_EFORMAT,
                         "%s: truncated %s: file ends after %zu bytes, the "
                         "header declares %zu", f->path, what, f->pos,
                         f->expect);
    return error_set(HTNN_EFORMAT, "%s: truncated %s: file ends after %zu "
                     "bytes", f->path, what, f->pos);
}

/* Nothing may follow the declared data: trailing bytes mean a wrong file. */
static htnn_status check_end(idx_file *f)
{
    unsigned char extra;
    size_t got;
    htnn_status st = idx_read(f, &extra, 1, &got);
    if (st != HTNN_OK)
        return st;
    if (got != 0)
        return error_set(HTNN_EFORMAT, "%s: data continues after the %zu "
                         "bytes the header declares", f->path, f->expect);
#if HTNN_HAVE_ZLIB
    /* A stream cut inside its trailer still delivers all the data. */
    if (f->gz != NULL) {
        int errnum = Z_OK;
        gzerror(f->gz, &errnum);
        if (errnum != Z_OK)
            return gz_failure(f);
    }
#endif
    return HTNN_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
           (uint32_t)b[3];
}

/* Checks the magic: two zero bytes, a supported type, 1..4 dimensions. */
static htnn_status parse_magic(const idx_file *f, const unsigned char *m,
                               idx_header *h)
{
    if (m[0] != 0 || m[1] != 0)
        return error_set(HTNN_EFORMAT, "%s: not an IDX file (magic %02x %02x "
                         "%02x %02x, expected 00 00 type ndims)", f->path,
                         m[0], m[1], m[2], m[3]);
    if (m[2] != IDX_UBYTE && m[2] != IDX_FLOAT)
        return error_set(HTNN_EFORMAT, "%s: IDX element type 0x%02x is not "
                         "supported (only 0x08 unsigned byte and 0x0d float32)",
                         f->path, m[2]);
    if (m[3] < 1 || m[3] > IDX_MAX_DIMS)
        return error_set(HTNN_EFORMAT, "%s: IDX file with %d dimensions (1 to "
                         "%d supported)", f->path, m[3], IDX_MAX_DIMS);
    h->type = m[2];
    h->ndims = m[3];
    h->elem_bytes = h->type == IDX_UBYTE ? 1 : 4;
    h->header_bytes = 4 + 4 * (size_t)h->ndims;
    return HTNN_OK;
}

/* Computes count, width and payload from the dimensions, refusing zero
 * dimensions and products that do not fit in size_t. */
static htnn_status parse_sizes(const idx_file *f, idx_header *h)
{
    size_t width = 1;
    for (int i = 0; i < h->ndims; i++)
        if (h->dims[i] == 0)
            return error_set(HTNN_EFORMAT, "%s: dimension %d is 0", f->path,
                             i + 1);
    for (int i = 1; i < h->ndims; i++) {
        if (width > SIZE_MAX / h->dims[i])
            return error_set(HTNN_EFORMAT, "%s: dimensions overflow", f->path);
        width *= h->dims[i];
    }
    h->count = h->dims[0];
    h->width = width;
    if (h->count > SIZE_MAX / width ||
        h->count * width > (SIZE_MAX - h->header_bytes) / h->elem_bytes)
        return error_set(HTNN_EFORMAT, "%s: %zu examples of %zu values "
                         "overflow", f->path, h->count, width);
    h->payload = h->count * width * h->elem_bytes;
    return HTNN_OK;
}

/* Compares the declared size with the file size, where that is known. */
static htnn_status check_file_size(const idx_file *f, const idx_header *h)
{
    unsigned long long want = (unsigned long long)f->expect;
    unsigned long long have = (unsigned long long)f->disk_size;
    if (f->disk_size < 0)
        return HTNN_OK;
#if HTNN_HAVE_ZLIB
    if (f->gz != NULL) {
        if (h->payload / GZIP_MAX_RATIO > have)
            return error_set(HTNN_EFORMAT, "%s: header declares %zu bytes of "
                             "data, more than a %llu-byte gzip file can hold",
                             f->path, h->payload, have);
        return HTNN_OK;
    }
#endif
    if (have < want)
        return error_set(HTNN_EFORMAT, "%s: truncated: file has %llu bytes, "
                         "the header declares %zu examples of %zu values "
                         "(%llu bytes)", f->path, have, h->count, h->width,
                         want);
    if (have > want)
        return error_set(HTNN_EFORMAT, "%s: file has %llu bytes, %llu more "
                         "than the header declares", f->path, have,
                         have - want);
    return HTNN_OK;
}

/* Reads and validates a header; sets f->expect. */
static htnn_status read_header(idx_file *f, idx_header *h)
{
    unsigned char b[4 * (1 + IDX_MAX_DIMS)];
    htnn_status st;
    *h = (idx_header){0};
    st = read_exact(f, b, 4, "header");
    if (st == HTNN_OK)
        st = parse_magic(f, b, h);
    if (st == HTNN_OK)
        st = read_exact(f, b + 4, 4 * (size_t)h->ndims, "header");
    if (st != HTNN_OK)
        return st;
    for (int i = 0; i < h->ndims; i++)
        h->dims[i] = be32(b + 4 + 4 * i);
    st = parse_sizes(f, h);
    if (st != HTNN_OK)
        return st;
    f->expect = h->header_bytes + h->payload;
    return check_file_size(f, h);
}

/* Opens a label file and checks it is idx1 unsigned bytes, one per image. */
static htnn_status open_labels(idx_file *f, const char *path, size_t images,
                               idx_header *h)
{
    htnn_status st = idx_open(f, path);
    if (st == HTNN_OK)
        st = read_header(f, h);
    if (st != HTNN_OK)
        return st;
    if (h->type != IDX_UBYTE || h->ndims != 1)
        return error_set(HTNN_EFORMAT, "%s: labels must be idx1 unsigned bytes "
                         "(type 0x08, 1 dimension), found type 0x%02x with %d "
                         "dimensions", path, h->type, h->ndims);
    if (h->count != images)
        return error_set(HTNN_EFORMAT, "%s: %zu labels but %zu images", path,
                         h->count, images);
    return HTNN_OK;
}

static void convert_ubyte(const unsigned char *b, size_t n, int scale,
                          float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = scale == HTNN_SCALE_UNIT ? (float)b[i] / 255.0f : (float)b[i];
}

/* Decodes big-endian float32; returns the index of a NaN/Inf or SIZE_MAX. */
static size_t convert_float(const unsigned char *b, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = be32(b + 4 * i);
        memcpy(&dst[i], &u, sizeof u);
        if (!isfinite(dst[i]))
            return i;
    }
    return SIZE_MAX;
}

/* Moves n bytes on: a seek in a plain file (its size was checked against
 * the header, so the target exists); gzip streams and pipes cannot seek and
 * are read through. */
static htnn_status idx_skip(idx_file *f, size_t n, const char *what)
{
    unsigned char buf[IDX_CHUNK];
    if (n == 0)
        return HTNN_OK;
    if (f->fp != NULL && f->disk_size >= 0 && f->peek_pos == f->npeek &&
        n <= (size_t)LONG_MAX && fseek(f->fp, (long)n, SEEK_CUR) == 0) {
        f->pos += n;
        return HTNN_OK;
    }
    if (f->fp != NULL)
        clearerr(f->fp);   /* a failed seek must not read as a read error */
    for (size_t done = 0; done < n;) {
        size_t k = n - done < IDX_CHUNK ? n - done : IDX_CHUNK;
        htnn_status st = read_exact(f, buf, k, what);
        if (st != HTNN_OK)
            return st;
        done += k;
    }
    return HTNN_OK;
}

/* The examples [first, first + count) of a file's n_total. */
typedef struct idx_rows {
    size_t first, count;
} idx_rows;

/* Checks what follows the rows when they end the file: a part that stops
 * earlier leaves the rest unread (and unchecked, in a gzip stream). */
static htnn_status end_of_rows(idx_file *f, const idx_rows *rows, size_t n_total)
{
    return rows->first + rows->count == n_total ? check_end(f) : HTNN_OK;
}

/* Reads the rows' values chunk by chunk, converting straight into dst. */
static htnn_status read_features(idx_file *f, const idx_header *h, int scale,
                                 const idx_rows *rows, float *dst)
{
    unsigned char buf[IDX_CHUNK];
    size_t total = rows->count * h->width, per = IDX_CHUNK / h->elem_bytes;
    htnn_status st = idx_skip(f, rows->first * h->width * h->elem_bytes, "data");
    for (size_t done = 0; done < total && st == HTNN_OK;) {
        size_t n = total - done < per ? total - done : per, bad;
        if ((st = read_exact(f, buf, n * h->elem_bytes, "data")) != HTNN_OK)
            return st;
        if (h->type == IDX_UBYTE) {
            convert_ubyte(buf, n, scale, dst + done);
        } else if ((bad = convert_float(buf, n, dst + done)) != SIZE_MAX) {
            bad += done;
            return error_set(HTNN_ENUMERIC, "%s: value %zu of example %zu is "
                             "NaN or infinite", f->path, bad % h->width,
                             rows->first + bad / h->width);
        }
        done += n;
    }
    return st == HTNN_OK ? end_of_rows(f, rows, h->count) : st;
}

/* Reads one unsigned-byte label per example of the rows. */
static htnn_status read_labels(idx_file *f, const idx_rows *rows, size_t n_total,
                               int32_t *dst)
{
    unsigned char buf[IDX_CHUNK];
    htnn_status st = idx_skip(f, rows->first, "labels");
    for (size_t done = 0; done < rows->count && st == HTNN_OK;) {
        size_t n = rows->count - done < IDX_CHUNK ? rows->count - done : IDX_CHUNK;
        if ((st = read_exact(f, buf, n, "labels")) != HTNN_OK)
            return st;
        for (size_t i = 0; i < n; i++)
            dst[done + i] = buf[i];
        done += n;
    }
    return st == HTNN_OK ? end_of_rows(f, rows, n_total) : st;
}

static htnn_status check_load_args(const char *fn, const char *images_path,
                                   int scale, htnn_data **out)
{
    if (images_path == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "%s: %s is NULL", fn,
                         images_path == NULL ? "images_path" : "out");
    if (scale != HTNN_SCALE_NONE && scale != HTNN_SCALE_UNIT)
        return error_set(HTNN_EINVAL, "%s: scale %d is not an htnn_scale", fn,
                         scale);
    return HTNN_OK;
}

/* idx1 (n) -> 1 x 1 x 1, idx2 (n, w) -> 1 x 1 x w, idx3 (n, r, c) ->
 * 1 x r x c, idx4 (n, c, h, w) -> c x h x w. */
static void set_shape(htnn_data *d, const idx_header *h)
{
    size_t dims[3] = {1, 1, 1};
    for (int i = 1; i < h->ndims; i++)
        dims[3 - h->ndims + i] = h->dims[i];
    data_set_shape(d, dims[0], dims[1], dims[2]);
}

/* A part of the file's examples: rows NULL means all of them; an explicit
 * range must be a non-empty part of the n the header declares. */
static htnn_status choose_rows(const idx_file *f, const idx_header *h,
                               const idx_rows *want, idx_rows *rows)
{
    if (want == NULL) {
        *rows = (idx_rows){0, h->count};
        return HTNN_OK;
    }
    if (want->count == 0 || want->first > h->count ||
        want->count > h->count - want->first)
        return error_set(HTNN_EINVAL, "htnn_data_load_idx_rows: examples [%zu, "
                         "%zu + %zu) are not a non-empty part of the %zu "
                         "examples of %s", want->first, want->first,
                         want->count, h->count, f->path);
    *rows = *want;
    return HTNN_OK;
}

/* Both loaders: headers checked (each file against its size, the labels
 * against the images), then only the wanted rows allocated and read. */
static htnn_status load_idx(const char *fn, const char *images_path,
                            const char *labels_path, int scale,
                            const idx_rows *want, htnn_data **out)
{
    idx_file img = {.disk_size = -1}, lab = {.disk_size = -1};
    idx_header ih, lh;
    idx_rows rows = {0, 0};
    htnn_data *d = NULL;
    htnn_status st = check_load_args(fn, images_path, scale, out);
    if (st != HTNN_OK)
        return st;
    st = idx_open(&img, images_path);
    if (st == HTNN_OK)
        st = read_header(&img, &ih);
    if (st == HTNN_OK && labels_path != NULL)
        st = open_labels(&lab, labels_path, ih.count, &lh);
    if (st == HTNN_OK)
        st = choose_rows(&img, &ih, want, &rows);
    if (st == HTNN_OK)
        st = data_alloc(rows.count, ih.width, &d);
    if (st == HTNN_OK)
        st = read_features(&img, &ih, scale, &rows, htnn_data_features(d));
    if (st == HTNN_OK && labels_path != NULL)
        st = read_labels(&lab, &rows, ih.count, data_labels_mut(d));
    idx_close(&img);
    idx_close(&lab);
    if (st != HTNN_OK) {
        htnn_data_free(d);
        return st;
    }
    set_shape(d, &ih);
    data_update_class_count(d);
    *out = d;
    return HTNN_OK;
}

htnn_status htnn_data_load_idx(const char *images_path,
                               const char *labels_path, int scale,
                               htnn_data **out)
{
    return load_idx("htnn_data_load_idx", images_path, labels_path, scale, NULL,
                    out);
}

htnn_status htnn_data_load_idx_rows(const char *images_path,
                                    const char *labels_path, int scale,
                                    size_t first, size_t count, htnn_data **out)
{
    idx_rows want = {first, count};
    return load_idx("htnn_data_load_idx_rows", images_path, labels_path, scale,
                    &want, out);
}

htnn_status htnn_data_idx_count(const char *path, size_t *count)
{
    idx_file f;
    idx_header h;
    htnn_status st;
    if (path == NULL || count == NULL)
        return error_set(HTNN_EINVAL, "htnn_data_idx_count: %s is NULL",
                         path == NULL ? "path" : "count");
    st = idx_open(&f, path);
    if (st == HTNN_OK)
        st = read_header(&f, &h);
    idx_close(&f);
    if (st == HTNN_OK)
        *count = h.count;
    return st;
}
