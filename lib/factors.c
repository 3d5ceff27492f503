/* Sufficient factors for the sharded data-parallel step (factors.h).
 *
 * Layout: rank q's rows go to slab q of S = ceil(global rows / ranks)
 * rows, zero-padded, for X and then for dZ; with that layout
 * htnn_reducer.allgather's blocks (floor(q * count / P) ..) are exactly the
 * slabs, and the gathered rows are the global batch in order (rank q
 * trains rows floor(q*m/P) .. floor((q+1)*m/P)), so the product sums the
 * rows in the order one process would.  Padding rows are zero in X and
 * dZ: they add nothing.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dense.h"
#include "factors.h"

/* Values of one layer's factors for `rows` rows per rank. */
static size_t layer_floats(const htnn_net *net, const htnn_layer *layer, size_t rows)
{
    return (size_t)net->reducer.ranks * rows * (layer->in + layer->out);
}

/* Factors are worth it where they are fewer values than the matrix. */
static int cheaper(const htnn_net *net, const htnn_layer *layer, size_t rows)
{
    return layer->kind == HTNN_LAYER_DENSE && layer_floats(net, layer, rows) < layer->n_w;
}

size_t factors_floats(const htnn_net *net, size_t rows)
{
    size_t most = 0;
    for (size_t d = 0; d < net->n_layers; d++) {
        size_t n = layer_floats(net, net->layers[d], rows);
        if (cheaper(net, net->layers[d], rows) && n > most)
            most = n;
    }
    return most;
}

int factors_used(const htnn_net *net, const htnn_layer *layer)
{
    return net->factors != NULL && cheaper(net, layer, net->factor_rows);
}

/* m rows of `width` into a slab of s rows, the rest zero. */
static void put_rows(float *slab, const float *rows, size_t m, size_t s, size_t width)
{
    if (m > 0)
        memcpy(slab, rows, m * width * sizeof *slab);
    memset(slab + m * width, 0, (s - m) * width * sizeof *slab);
}

htnn_status factors_grads(htnn_net *net, htnn_layer *layer, const float *x, size_t m)
{
    const htnn_reducer *r = &net->reducer;
    size_t p = (size_t)r->ranks, me = (size_t)r->rank, in = layer->in, out = layer->out;
    size_t s = (net->step_rows + p - 1) / p, first, n;
    float *xs = net->factors, *dzs = net->factors + p * s * in;
    put_rows(xs + me * s * in, x, m, s, in);
    put_rows(dzs + me * s * out, net->scratch[layer->index].dz, m, s, out);
    htnn_status st = r->allgather(xs, p * s * in, r->user);
    if (st == HTNN_OK)
        st = r->allgather(dzs, p * s * out, r->user);
    if (st != HTNN_OK)
        return st;
    net_block(net, layer->n_w, &first, &n);
    /* the units whose weights hold [first, first + n) of W (out x in) */
    dense_unit_grads(layer, xs, dzs, p * s, first / in, (first + n + in - 1) / in);
    return HTNN_OK;
}
