/* Internal: constructing data sets, shared by the IDX and CSV readers.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_DATA_INTERNAL_H
#define HTNN_LIB_DATA_INTERNAL_H

#include "htnn/data.h"

/* Allocates a data set of count x width features (uninitialised) and count
 * labels set to -1, with shape 1 x 1 x width.  count and width must be > 0.
 * Returns HTNN_ENOMEM (with an error text) when the arrays do not fit. */
htnn_status data_alloc(size_t count, size_t width, htnn_data **out);

/* Wraps mem_malloc'd arrays (alloc.h) of count x width features and count
 * labels in a new data set that owns them; the arrays are freed even when
 * this fails, so the caller never has to.  Shape 1 x 1 x width; class count computed. */
htnn_status data_adopt(float *features, int32_t *labels, size_t count,
                       size_t width, htnn_data **out);

/* Records the shape of one example; channels * rows * cols must be width. */
void data_set_shape(htnn_data *data, size_t channels, size_t rows,
                    size_t cols);

/* Writable labels for the readers that fill them in place. */
int32_t *data_labels_mut(htnn_data *data);

/* Recomputes the class count after the labels were written. */
void data_update_class_count(htnn_data *data);

#endif
