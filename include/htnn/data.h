/*
 * libhtnn - hard-threshold neural networks.
 * SPDX-License-Identifier: MIT
 *
 * data.h - labelled data sets: IDX (MNIST format, plain or gzip) and CSV
 * readers into caller-visible float32 arrays and int32 labels.
 *
 * A data set owns its arrays; pointers returned by htnn_data_features and
 * htnn_data_labels stay valid until htnn_data_free.  Features are
 * count x width, row-major.
 */
#ifndef HTNN_DATA_H
#define HTNN_DATA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A labelled data set (opaque) owning its feature and label arrays. */
typedef struct htnn_data htnn_data;

/** Scaling applied while reading.  Numbers are fixed. */
typedef enum htnn_scale {
    HTNN_SCALE_NONE = 0,   /**< values as read */
    /** IDX unsigned-byte data: v / 255.  CSV: per column
     *  (v - min) / (max - min), 0 for constant columns. */
    HTNN_SCALE_UNIT = 1
} htnn_scale;

/** Reads an IDX image file (idx3 or idx1..idx4 of unsigned bytes or
 *  float32; gzip'd or plain) and an idx1 unsigned-byte label file with the
 *  same count.  labels_path may be NULL for unlabelled data (labels are then
 *  -1).  Unsigned bytes are scaled to [0, 1] when scale is HTNN_SCALE_UNIT. */
HTNN_API htnn_status htnn_data_load_idx(const char *images_path,
                                        const char *labels_path, int scale,
                                        htnn_data **out);

/** Since 0.3: reads only examples [first, first + count) of an IDX image
 *  file and its label file (labels_path may be NULL), as
 *  htnn_data_load_idx would return them: the same values, labels, scale
 *  and shape; the class count is that of the rows read.  Meant for
 *  data-parallel training, where each rank holds its shard of the
 *  training set (htnn_fit_options.shard_first, doc/distributed.md).
 *  Both headers are checked as by htnn_data_load_idx (and a plain file's
 *  size against its header, so a truncated file is refused whatever the
 *  rows); a plain file is read from the first row by seeking, a gzip'd one
 *  is decompressed from its start up to the last row (gzip cannot seek),
 *  and nothing after the last row is read, so damage there goes unnoticed
 *  in a gzip stream unless the rows reach the end.
 *  HTNN_EINVAL: NULL images_path or out, bad scale, count 0, or rows
 *  beyond the file's examples (first + count overflowing included);
 *  HTNN_EFORMAT, HTNN_EIO, HTNN_ENUMERIC, HTNN_ENOMEM as
 *  htnn_data_load_idx. */
HTNN_API htnn_status htnn_data_load_idx_rows(const char *images_path,
                                             const char *labels_path, int scale,
                                             size_t first, size_t count,
                                             htnn_data **out);

/** Since 0.3: the number of examples an IDX file (images or labels)
 *  declares, from its header alone (checked as htnn_data_load_idx checks
 *  it; a plain file's size too).  With htnn_mpi_shard it tells each rank
 *  which rows to load with htnn_data_load_idx_rows.
 *  HTNN_EINVAL: NULL argument; HTNN_EIO, HTNN_EFORMAT. */
HTNN_API htnn_status htnn_data_idx_count(const char *path, size_t *count);

/** Options for htnn_data_load_csv; initialise with HTNN_CSV_OPTIONS_INIT. */
typedef struct htnn_csv_options {
    size_t struct_size;  /**< sizeof(htnn_csv_options) */
    /** Column holding the integer class label: >= 0 from the left, -1 for
     *  the last column, or -2 for none (labels are then -1). Default 0. */
    int label_column;
    /** 1: the first line is a header and is skipped; 0: no header; -1
     *  (default): skip the first line if any of its fields is not a number. */
    int header;
    char delimiter;      /**< field separator, default ',' */
    int scale;           /**< htnn_scale, default HTNN_SCALE_NONE */
} htnn_csv_options;

/** Default CSV options: label in column 0, header auto-detected, ',', no
 *  scaling. */
#define HTNN_CSV_OPTIONS_INIT \
    { sizeof(htnn_csv_options), 0, -1, ',', HTNN_SCALE_NONE }

/** Reads a CSV file of numbers: one example per line, every line with the
 *  same number of fields; labels must be integers >= 0.  Errors name the
 *  line and column. */
HTNN_API htnn_status htnn_data_load_csv(const char *path,
                                        const htnn_csv_options *opts,
                                        htnn_data **out);

/** Creates a data set by copying caller arrays (labels may be NULL). */
HTNN_API htnn_status htnn_data_create(const float *features,
                                      const int32_t *labels, size_t count,
                                      size_t width, htnn_data **out);

/** New data set holding examples [first, first + count) of `data`. */
HTNN_API htnn_status htnn_data_subset(const htnn_data *data, size_t first,
                                      size_t count, htnn_data **out);

/** Frees a data set; NULL is a no-op. */
HTNN_API void htnn_data_free(htnn_data *data);

/** Number of examples; 0 for NULL. */
HTNN_API size_t htnn_data_count(const htnn_data *data);
/** Features per example; 0 for NULL. */
HTNN_API size_t htnn_data_width(const htnn_data *data);
/** Number of classes: 1 + the largest label (0 if unlabelled or NULL). */
HTNN_API size_t htnn_data_class_count(const htnn_data *data);
/** Feature array, count x width (owned by the data set). */
HTNN_API float *htnn_data_features(htnn_data *data);
/** Label array, count entries (owned by the data set). */
HTNN_API const int32_t *htnn_data_labels(const htnn_data *data);
/** Shape of one example as the file gave it (IDX: e.g. 1 x 28 x 28; CSV:
 *  1 x 1 x width).  Any out-pointer may be NULL. */
HTNN_API htnn_status htnn_data_shape(const htnn_data *data, size_t *channels,
                                     size_t *rows, size_t *cols);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_DATA_H */
