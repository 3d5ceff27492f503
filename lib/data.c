/* Data sets: an owned count x width float32 feature array, int32 labels
 * (-1 when unlabelled) and the shape of one example.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "data_internal.h"
#include "error.h"

struct htnn_data {
    size_t count;       /* examples */
    size_t width;       /* features per example */
    size_t channels;    /* shape of one example: channels x rows x cols */
    size_t rows;
    size_t cols;
    size_t class_count; /* 1 + the largest label, 0 if unlabelled */
    float *features;    /* count x width, row-major */
    int32_t *labels;    /* count entries, -1 when unlabelled */
};

/* An empty shell: callers attach arrays, so failure paths free uniformly. */
static htnn_data *data_shell(size_t count, size_t width)
{
    htnn_data *d = mem_calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->count = count;
    d->width = width;
    d->channels = 1;
    d->rows = 1;
    d->cols = width;
    return d;
}

htnn_status data_alloc(size_t count, size_t width, htnn_data **out)
{
    htnn_data *d;
    /* Both size products are checked so the mallocs below cannot wrap. */
    if (count == 0 || width == 0 || count > SIZE_MAX / width ||
        count * width > SIZE_MAX / sizeof(float) ||
        count > SIZE_MAX / sizeof(int32_t))
        return error_set(HTNN_ENOMEM, "cannot allocate %zu x %zu features",
                         count, width);
    d = data_shell(count, width);
    if (d != NULL) {
        d->features = mem_malloc(count * width * sizeof(float));
        d->labels = mem_malloc(count * sizeof(int32_t));
    }
    if (d == NULL || d->features == NULL || d->labels == NULL) {
        htnn_data_free(d);
        return error_set(HTNN_ENOMEM, "out of memory for %zu x %zu features",
                         count, width);
    }
    for (size_t i = 0; i < count; i++)
        d->labels[i] = -1;
    *out = d;
    return HTNN_OK;
}

htnn_status data_adopt(float *features, int32_t *labels, size_t count,
                       size_t width, htnn_data **out)
{
    htnn_data *d = data_shell(count, width);
    if (d == NULL) {
        mem_free(features);
        mem_free(labels);
        return error_set(HTNN_ENOMEM, "out of memory for a data set");
    }
    d->features = features;
    d->labels = labels;
    data_update_class_count(d);
    *out = d;
    return HTNN_OK;
}

void data_set_shape(htnn_data *data, size_t channels, size_t rows,
                    size_t cols)
{
    data->channels = channels;
    data->rows = rows;
    data->cols = cols;
}

int32_t *data_labels_mut(htnn_data *data) { return data->labels; }

void data_update_class_count(htnn_data *data)
{
    int32_t max = -1;
    for (size_t i = 0; i < data->count; i++)
        if (data->labels[i] > max)
            max = data->labels[i];
    data->class_count = (size_t)((int64_t)max + 1);
}

/* The first non-finite feature, or SIZE_MAX: NaN/Inf would poison training. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return SIZE_MAX;
}

/* Caller labels must be class indices; unlabelled data passes NULL. */
static size_t first_negative(const int32_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0)
            return i;
    return SIZE_MAX;
}

/* Argument checks for htnn_data_create, before anything is allocated. */
static htnn_status check_create_args(const float *features,
                                     const int32_t *labels, size_t count,
                                     size_t width, htnn_data **out)
{
    size_t bad;
    if (features == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_data_create: %s is NULL",
                         features == NULL ? "features" : "out");
    if (count == 0 || width == 0)
        return error_set(HTNN_EINVAL,
                         "htnn_data_create: count %zu and width %zu must be > 0",
                         count, width);
    if (count > SIZE_MAX / width)
        return error_set(HTNN_EINVAL,
                         "htnn_data_create: %zu x %zu features overflow",
                         count, width);
    bad = first_non_finite(features, count * width);
    if (bad != SIZE_MAX)
        return error_set(HTNN_ENUMERIC,
                         "htnn_data_create: feature %zu of example %zu is NaN "
                         "or infinite", bad % width, bad / width);
    if (labels != NULL && (bad = first_negative(labels, count)) != SIZE_MAX)
        return error_set(HTNN_EINVAL,
                         "htnn_data_create: label %zu is %d; labels must be "
                         ">= 0", bad, (int)labels[bad]);
    return HTNN_OK;
}

htnn_status htnn_data_create(const float *features, const int32_t *labels,
                             size_t count, size_t width, htnn_data **out)
{
    htnn_data *d;
    htnn_status st = check_create_args(features, labels, count, width, out);
    if (st != HTNN_OK)
        return st;
    st = data_alloc(count, width, &d);
    if (st != HTNN_OK)
        return st;
    memcpy(d->features, features, count * width * sizeof(float));
    if (labels != NULL)
        memcpy(d->labels, labels, count * sizeof(int32_t));
    data_update_class_count(d);
    *out = d;
    return HTNN_OK;
}

htnn_status htnn_data_subset(const htnn_data *data, size_t first,
                             size_t count, htnn_data **out)
{
    htnn_data *d;
    htnn_status st;
    if (data == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_data_subset: %s is NULL",
                         data == NULL ? "data" : "out");
    if (count == 0 || first > data->count || count > data->count - first)
        return error_set(HTNN_EINVAL,
                         "htnn_data_subset: examples [%zu, %zu + %zu) are not "
                         "a non-empty part of the %zu examples",
                         first, first, count, data->count);
    st = data_alloc(count, data->width, &d);
    if (st != HTNN_OK)
        return st;
    memcpy(d->features, data->features + first * data->width,
           count * data->width * sizeof(float));
    memcpy(d->labels, data->labels + first, count * sizeof(int32_t));
    data_set_shape(d, data->channels, data->rows, data->cols);
    /* "1 + the largest label" of this subset, as data.h defines it. */
    data_update_class_count(d);
    *out = d;
    return HTNN_OK;
}

void htnn_data_free(htnn_data *data)
{
    if (data == NULL)
        return;
    mem_free(data->features);
    mem_free(data->labels);
    mem_free(data);
}

size_t htnn_data_count(const htnn_data *data)
{
    return data == NULL ? 0 : data->count;
}

size_t htnn_data_width(const htnn_data *data)
{
    return data == NULL ? 0 : data->width;
}

size_t htnn_data_class_count(const htnn_data *data)
{
    return data == NULL ? 0 : data->class_count;
}

float *htnn_data_features(htnn_data *data)
{
    return data == NULL ? NULL : data->features;
}

const int32_t *htnn_data_labels(const htnn_data *data)
{
    return data == NULL ? NULL : data->labels;
}

htnn_status htnn_data_shape(const htnn_data *data, size_t *channels,
                            size_t *rows, size_t *cols)
{
    if (data == NULL)
        return error_set(HTNN_EINVAL, "htnn_data_shape: data is NULL");
    if (channels != NULL)
        *channels = data->channels;
    if (rows != NULL)
        *rows = data->rows;
    if (cols != NULL)
        *cols = data->cols;
    return HTNN_OK;
}
