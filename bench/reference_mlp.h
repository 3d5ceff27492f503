/* What bench/train_mlp.c and bench/train_mpi.c share: the Fashion-MNIST
 * split (from $HTNN_FASHION_MNIST_DIR or Debian's dataset-fashion-mnist)
 * and the reference 784-512-512-10 MLP of ../shared/spec/BENCH.md.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_BENCH_REFERENCE_MLP_H
#define HTNN_BENCH_REFERENCE_MLP_H

#include <stdio.h>
#include <stdlib.h>

#include <htnn/htnn.h>

static const size_t reference_widths[] = {784, 512, 512, 10};

/* The "train" or "t10k" split scaled to [0, 1]; NULL (reported on stderr
 * with the program's name) if it cannot be read. */
static htnn_data *load_fashion_split(const char *split, const char *program)
{
    const char *dir = getenv("HTNN_FASHION_MNIST_DIR");
    char img[512], lab[512];
    htnn_data *d = NULL;
    dir = dir ? dir : "/usr/share/datasets/fashion-mnist";
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (htnn_data_load_idx(img, lab, HTNN_SCALE_UNIT, &d) != HTNN_OK)
        fprintf(stderr, "%s: %s\n", program, htnn_last_error());
    return d;
}

/* The reference MLP: `hidden` units (sign or relu) with per-layer `loss`,
 * identity output for softmax.  Non-zero on failure. */
static int build_reference_mlp(uint64_t seed, int threads, int hidden, int loss,
                               htnn_net **net)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    no.seed = seed;
    no.threads = threads;
    if (htnn_net_create(reference_widths[0], &no, net) != HTNN_OK)
        return 1;
    for (int l = 1; l < 4; l++) {
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        d.units = reference_widths[l];
        d.activation = l == 3 ? HTNN_ACT_IDENTITY : hidden;
        d.loss = loss;
        if (htnn_net_add_dense(*net, &d, NULL) != HTNN_OK)
            return 1;
    }
    return 0;
}

#endif
