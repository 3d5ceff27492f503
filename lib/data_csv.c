/* CSV reader: one example per line, numeric fields, an optional integer
 * label column, an optional header line.
 *
 * Lines are read through a growing buffer (no line-length limit), CRLF and a
 * missing final newline are accepted and blank lines are skipped.  Numbers
 * are parsed with strtod, so they use the C locale's '.' decimal point unless
 * the program called setlocale (the library never does).  Errors name the
 * file, the line (counting every physical line from 1) and the column
 * (from 1, counting the label column).
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "data_internal.h"
#include "error.h"
#include "options.h"

enum { CSV_FIRST_BUFFER = 65536, CSV_NO_LABEL = -2 };

/* Buffered line splitter over a FILE: unread bytes are buf[start, end). */
typedef struct line_reader {
    FILE *fp;
    const char *path;
    char *buf;
    size_t cap, start, end;
    size_t scanned; /* bytes after start already known to hold no '\n' */
    int eof;
} line_reader;

/* Growing arrays for the values, filled row by row. */
typedef struct csv_rows {
    float *features;
    int32_t *labels;
    size_t count, cap; /* rows stored and allocated */
} csv_rows;

/* Everything one load needs while it walks the file. */
typedef struct csv_reader {
    const char *path;
    htnn_csv_options opt;
    line_reader lines;
    size_t line;       /* physical line number of the current line */
    size_t first_line; /* line that fixed the number of fields, 0 before */
    size_t ncols;      /* fields per line */
    size_t label_col;  /* column index of the label, or SIZE_MAX for none */
    size_t width;      /* feature columns */
    csv_rows rows;
} csv_reader;

/* Makes room for more bytes: slides unread data to the front, and doubles
 * the buffer only when a single line fills it. */
static htnn_status line_fill(line_reader *lr)
{
    size_t n;
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
    }
    if (lr->end + 1 >= lr->cap) {
        char *grown = lr->cap > SIZE_MAX / 2 ? NULL
                                             : mem_realloc(lr->buf, lr->cap * 2);
        if (grown == NULL)
            return error_set(HTNN_ENOMEM, "%s: out of memory for a line of "
                             "%zu bytes", lr->path, lr->end);
        lr->buf = grown;
        lr->cap *= 2;
    }
    /* One byte stays free so the last line can be NUL-terminated. */
    n = fread(lr->buf + lr->end, 1, lr->cap - lr->end - 1, lr->fp);
    if (ferror(lr->fp))
        return error_set(HTNN_EIO, "%s: %s", lr->path, strerror(errno));
    lr->end += n;
    if (n == 0)
        lr->eof = 1;
    return HTNN_OK;
}

/* Cuts off the line at buf[start, start + len) and NUL-terminates it. */
static char *line_take(line_reader *lr, size_t len, size_t skip)
{
    char *line = lr->buf + lr->start;
    line[len] = '\0';
    lr->start += len + skip;
    lr->scanned = 0;
    return line;
}

/* The next line without its '\n', or *line = NULL at the end of the file. */
static htnn_status line_next(line_reader *lr, char **line, size_t *len)
{
    for (;;) {
        size_t avail = lr->end - lr->start;
        char *nl = memchr(lr->buf + lr->start + lr->scanned, '\n',
                          avail - lr->scanned);
        htnn_status st;
        if (nl != NULL) {
            *len = (size_t)(nl - (lr->buf + lr->start));
            *line = line_take(lr, *len, 1);
            return HTNN_OK;
        }
        lr->scanned = avail;
        if (lr->eof) {
            *len = avail;
            *line = avail == 0 ? NULL : line_take(lr, avail, 0);
            return HTNN_OK;
        }
        st = line_fill(lr);
        if (st != HTNN_OK)
            return st;
    }
}

/* A field that is empty apart from spaces (and tabs unless they delimit). */
static int is_blank(const char *s, char delim)
{
    for (; *s != '\0'; s++)
        if (*s != ' ' && (*s != '\t' || delim == '\t'))
            return 0;
    return 1;
}

/* Cuts the next field off *cursor in place; *cursor is NULL after the last. */
static char *next_field(char **cursor, char delim)
{
    char *field = *cursor;
    char *end = strchr(field, delim);
    if (end == NULL) {
        *cursor = NULL;
    } else {
        *end = '\0';
        *cursor = end + 1;
    }
    return field;
}

static size_t count_fields(const char *line, char delim)
{
    size_t n = 1;
    for (; *line != '\0'; line++)
        n += *line == delim;
    return n;
}

/* Parses a whole field as a number, allowing surrounding spaces; returns 0
 * on success, -1 for an empty field, -2 for anything else. */
static int parse_number(const char *field, double *value)
{
    char *end;
    while (*field == ' ' || *field == '\t')
        field++;
    if (*field == '\0')
        return -1;
    *value = strtod(field, &end);
    if (end == field)
        return -2;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == '\0' ? 0 : -2;
}

/* Parses one field for the value at (line, col) and reports what is wrong. */
static htnn_status field_value(const csv_reader *r, const char *field,
                               size_t col, double *value)
{
    int rc = parse_number(field, value);
    if (rc == -1)
        return error_set(HTNN_EFORMAT, "%s: line %zu, column %zu: empty field",
                         r->path, r->line, col + 1);
    if (rc != 0)
        return error_set(HTNN_EFORMAT, "%s: line %zu, column %zu: '%.40s' is "
                         "not a number", r->path, r->line, col + 1, field);
    if (!isfinite(*value))
        return error_set(HTNN_ENUMERIC, "%s: line %zu, column %zu: '%.40s' is "
                         "NaN or infinite", r->path, r->line, col + 1, field);
    return HTNN_OK;
}

/* Labels are class indices: integers in [0, INT32_MAX]. */
static htnn_status label_value(const csv_reader *r, const char *field,
                               size_t col, int32_t *label)
{
    double v;
    htnn_status st = field_value(r, field, col, &v);
    if (st != HTNN_OK)
        return st;
    if (v < 0 || v > INT32_MAX || v != floor(v))
        return error_set(HTNN_EFORMAT, "%s: line %zu, column %zu: label "
                         "'%.40s' is not an integer >= 0", r->path, r->line,
                         col + 1, field);
    *label = (int32_t)v;
    return HTNN_OK;
}

/* A feature must also fit in a float. */
static htnn_status feature_value(const csv_reader *r, const char *field,
                                 size_t col, float *out)
{
    double v;
    htnn_status st = field_value(r, field, col, &v);
    if (st != HTNN_OK)
        return st;
    if (fabs(v) > (double)FLT_MAX)
        return error_set(HTNN_ENUMERIC, "%s: line %zu, column %zu: %.40s is "
                         "out of float32 range", r->path, r->line, col + 1,
                         field);
    *out = (float)v;
    return HTNN_OK;
}

/* Header auto-detection: a line is a header if a field holds text that is
 * not a number.  Empty fields do not count, so a data line with a missing
 * value is reported as an error instead of being skipped as a header. */
static int looks_like_header(char *line, char delim)
{
    char *cursor = line;
    while (cursor != NULL) {
        double v;
        if (parse_number(next_field(&cursor, delim), &v) == -2)
            return 1;
    }
    return 0;
}

/* Doubles the row capacity when full, so appending stays amortised O(1). */
static htnn_status rows_reserve(csv_reader *r)
{
    csv_rows *rows = &r->rows;
    size_t cap = rows->cap == 0 ? 64 : rows->cap * 2;
    float *f;
    int32_t *l;
    if (rows->count < rows->cap)
        return HTNN_OK;
    if (cap < rows->cap || cap > SIZE_MAX / sizeof(float) / r->width)
        return error_set(HTNN_ENOMEM, "%s: too many rows", r->path);
    f = mem_realloc(rows->features, cap * r->width * sizeof(float));
    if (f != NULL)
        rows->features = f;
    l = f == NULL ? NULL : mem_realloc(rows->labels, cap * sizeof(int32_t));
    if (l != NULL)
        rows->labels = l;
    if (f == NULL || l == NULL)
        return error_set(HTNN_ENOMEM, "%s: out of memory at line %zu",
                         r->path, r->line);
    rows->cap = cap;
    return HTNN_OK;
}

/* The first data line fixes the number of fields and the label column. */
static htnn_status set_columns(csv_reader *r, size_t ncols)
{
    int lc = r->opt.label_column;
    r->ncols = ncols;
    r->first_line = r->line;
    r->label_col = lc == CSV_NO_LABEL ? SIZE_MAX
                   : lc == -1         ? ncols - 1
                                      : (size_t)lc;
    if (r->label_col != SIZE_MAX && r->label_col >= ncols)
        return error_set(HTNN_EFORMAT, "%s: line %zu has %zu fields, too few "
                         "for label column %d", r->path, r->line, ncols, lc);
    r->width = ncols - (r->label_col != SIZE_MAX);
    if (r->width == 0)
        return error_set(HTNN_EFORMAT, "%s: line %zu has only the label "
                         "column, no features", r->path, r->line);
    return HTNN_OK;
}

/* Parses one data line into the next row. */
static htnn_status parse_row(csv_reader *r, char *line)
{
    size_t n = count_fields(line, r->opt.delimiter);
    char *cursor = line;
    float *dst;
    int32_t label = -1;
    htnn_status st = r->first_line == 0 ? set_columns(r, n) : HTNN_OK;
    if (st == HTNN_OK && n != r->ncols)
        st = error_set(HTNN_EFORMAT, "%s: line %zu has %zu fields, but line "
                       "%zu has %zu", r->path, r->line, n, r->first_line,
                       r->ncols);
    if (st == HTNN_OK)
        st = rows_reserve(r);
    if (st != HTNN_OK)
        return st;
    dst = r->rows.features + r->rows.count * r->width;
    for (size_t col = 0; col < n && st == HTNN_OK; col++) {
        const char *field = next_field(&cursor, r->opt.delimiter);
        if (col == r->label_col)
            st = label_value(r, field, col, &label);
        else
            st = feature_value(r, field, col, dst++);
    }
    if (st == HTNN_OK)
        r->rows.labels[r->rows.count++] = label;
    return st;
}

/* Handles one physical line: blank, header or data. */
static htnn_status take_line(csv_reader *r, char *line, size_t len,
                             int *header_pending)
{
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (memchr(line, '\0', len) != NULL)
        return error_set(HTNN_EFORMAT, "%s: line %zu contains a NUL byte (not "
                         "a text file?)", r->path, r->line);
    if (r->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* UTF-8 byte-order mark, as spreadsheets write it */
        len -= 3;
    }
    if (is_blank(line, r->opt.delimiter))
        return HTNN_OK;
    if (*header_pending) {
        *header_pending = 0;
        if (r->opt.header == 1 || looks_like_header(line, r->opt.delimiter))
            return HTNN_OK;
        /* looks_like_header cut the line at the delimiters: put them back. */
        for (char *p = line; p < line + len; p++)
            if (*p == '\0')
                *p = r->opt.delimiter;
    }
    return parse_row(r, line);
}

/* Reads every line of the open file into r->rows. */
static htnn_status read_lines(csv_reader *r)
{
    int header_pending = r->opt.header != 0;
    for (;;) {
        char *line;
        size_t len;
        htnn_status st = line_next(&r->lines, &line, &len);
        if (st != HTNN_OK || line == NULL)
            return st;
        r->line++;
        st = take_line(r, line, len, &header_pending);
        if (st != HTNN_OK)
            return st;
    }
}

/* Per column (v - min) / (max - min), 0 for a constant column. */
static void scale_columns(float *x, size_t count, size_t width)
{
    for (size_t j = 0; j < width; j++) {
        float lo = x[j], hi = x[j];
        for (size_t i = 1; i < count; i++) {
            float v = x[i * width + j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        double span = (double)hi - (double)lo;
        for (size_t i = 0; i < count; i++) {
            float *v = &x[i * width + j];
            *v = span > 0 ? (float)(((double)*v - (double)lo) / span) : 0.0f;
        }
    }
}

/* Reads the options over the defaults and checks them. */
static htnn_status read_options(const htnn_csv_options *opts,
                                htnn_csv_options *opt)
{
    const htnn_csv_options defaults = HTNN_CSV_OPTIONS_INIT;
    const char *bad = "+-.0123456789\r\n\"";
    htnn_status st;
    *opt = defaults;
    st = options_read(opt, sizeof *opt, opts, "csv options");
    if (st != HTNN_OK)
        return st;
    if (opt->label_column < CSV_NO_LABEL)
        return error_set(HTNN_EINVAL, "csv options: label_column %d (>= 0, -1 "
                         "for the last or -2 for none)", opt->label_column);
    if (opt->header < -1 || opt->header > 1)
        return error_set(HTNN_EINVAL, "csv options: header %d (1, 0 or -1)",
                         opt->header);
    if (opt->delimiter == '\0' || strchr(bad, opt->delimiter) != NULL)
        return error_set(HTNN_EINVAL, "csv options: delimiter 0x%02x cannot "
                         "separate numbers", (unsigned char)opt->delimiter);
    if (opt->scale != HTNN_SCALE_NONE && opt->scale != HTNN_SCALE_UNIT)
        return error_set(HTNN_EINVAL, "csv options: scale %d is not an "
                         "htnn_scale", opt->scale);
    return HTNN_OK;
}

/* Opens the file and the line buffer. */
static htnn_status reader_open(csv_reader *r, const char *path)
{
    r->path = path;
    r->lines.path = path;
    r->lines.fp = fopen(path, "rb");
    if (r->lines.fp == NULL)
        return error_set(HTNN_EIO, "%s: %s", path, strerror(errno));
    r->lines.buf = mem_malloc(CSV_FIRST_BUFFER);
    if (r->lines.buf == NULL)
        return error_set(HTNN_ENOMEM, "%s: out of memory", path);
    r->lines.cap = CSV_FIRST_BUFFER;
    return HTNN_OK;
}

/* Frees the line buffer, closes the file, and frees the rows (unless they
 * were handed over to a data set). */
static void reader_close(csv_reader *r)
{
    if (r->lines.fp != NULL)
        fclose(r->lines.fp);
    mem_free(r->lines.buf);
    mem_free(r->rows.features);
    mem_free(r->rows.labels);
}

/* Shrinks the arrays to size and hands them to a new data set. */
static htnn_status finish(csv_reader *r, htnn_data **out)
{
    csv_rows rows = r->rows;
    float *f;
    int32_t *l;
    htnn_status st;
    if (rows.count == 0)
        return error_set(HTNN_EFORMAT, "%s: no data lines", r->path);
    if (r->opt.scale == HTNN_SCALE_UNIT)
        scale_columns(rows.features, rows.count, r->width);
    /* Shrinking cannot fail: if realloc does, the bigger block is kept. */
    f = mem_shrink(rows.features, rows.count * r->width * sizeof(float));
    l = mem_shrink(rows.labels, rows.count * sizeof(int32_t));
    r->rows = (csv_rows){0}; /* data_adopt owns the arrays, even on failure */
    st = data_adopt(f, l, rows.count, r->width, out);
    if (st == HTNN_OK)
        data_set_shape(*out, 1, 1, r->width);
    return st;
}

htnn_status htnn_data_load_csv(const char *path, const htnn_csv_options *opts,
                               htnn_data **out)
{
    csv_reader r = {0};
    htnn_data *d = NULL;
    htnn_status st;
    if (path == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_data_load_csv: %s is NULL",
                         path == NULL ? "path" : "out");
    st = read_options(opts, &r.opt);
    if (st == HTNN_OK)
        st = reader_open(&r, path);
    if (st == HTNN_OK)
        st = read_lines(&r);
    if (st == HTNN_OK)
        st = finish(&r, &d);
    reader_close(&r);
    if (st == HTNN_OK)
        *out = d;
    return st;
}
