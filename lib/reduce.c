/* Data-parallel training: installing a caller's reducer on a net and the
 * one call the rest of the library reduces through.  The training loop's
 * use of it is in train.c (gradients, loss) and batchnorm.c (statistics).
 * SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "htnn/reduce.h"
#include "net_internal.h"
#include "options.h"

/* Everything a reducer must satisfy before a net relies on it. */
static htnn_status check_reducer(const htnn_reducer *r)
{
    if (r->ranks < 1 || r->rank < 0 || r->rank >= r->ranks)
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: rank %d of %d ranks", r->rank,
                         r->ranks);
    if (r->allreduce_sum == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: allreduce_sum is NULL");
    if (r->start_sum != NULL && r->wait_all == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: start_sum without wait_all");
    if ((r->reduce_scatter_sum == NULL) != (r->allgather == NULL))
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: reduce_scatter_sum and "
                         "allgather go together");
    return HTNN_OK;
}

htnn_status htnn_net_set_reducer(htnn_net *net, const htnn_reducer *reducer)
{
    htnn_reducer r = {sizeof r, 1, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    htnn_status st;
    if (net == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: net is NULL");
    if (reducer == NULL) {
        net->reducer = r;
        return HTNN_OK;
    }
    /* the functions are required: a caller's struct must cover them */
    if (reducer->struct_size >= sizeof(size_t) &&
        reducer->struct_size < offsetof(htnn_reducer, allreduce_sum) + sizeof r.allreduce_sum)
        return error_set(HTNN_EINVAL, "htnn_net_set_reducer: struct_size %zu is too small",
                         reducer->struct_size);
    if ((st = options_read(&r, sizeof r, reducer, "reducer")) != HTNN_OK ||
        (st = check_reducer(&r)) != HTNN_OK)
        return st;
    r.struct_size = sizeof r;
    net->reducer = r;
    return HTNN_OK;
}

htnn_status net_reduce_sum(htnn_net *net, float *values, size_t count)
{
    htnn_status st = net->reducer.allreduce_sum(values, count, net->reducer.user);
    if (st != HTNN_OK && net->reduce_status == HTNN_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", htnn_last_error());
        net->reduce_status = error_set(st, "reducing %zu values over %d ranks failed: %s",
                                       count, net->reducer.ranks, why);
    }
    return st == HTNN_OK ? HTNN_OK : net->reduce_status;
}

/* A float holds integers exactly up to 2^24: a byte summed over at most
 * 65,793 ranks stays below it. */
#define BYTE_SUM_MAX_RANKS 65536

htnn_status net_reduce_u64(htnn_net *net, uint64_t *values, size_t n)
{
    float bytes[8 * NET_REDUCE_U64_MAX];
    if (n > NET_REDUCE_U64_MAX || net->reducer.ranks > BYTE_SUM_MAX_RANKS)
        return error_set(HTNN_ELIMIT, "summing %zu integers over %d ranks: at most %d "
                         "integers and %d ranks", n, net->reducer.ranks,
                         NET_REDUCE_U64_MAX, BYTE_SUM_MAX_RANKS);
    /* the reducer sums floats: each integer travels as its 8 bytes, whose
     * sums are exact, and the carries between them are added back here */
    for (size_t i = 0; i < 8 * n; i++)
        bytes[i] = (float)(values[i / 8] >> (8 * (i % 8)) & 0xffu);
    htnn_status st = net_reduce_sum(net, bytes, 8 * n);
    if (st != HTNN_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        values[i] = 0;
    for (size_t i = 0; i < 8 * n; i++)  /* wraps modulo 2^64 like the sum it is */
        values[i / 8] += (uint64_t)bytes[i] << (8 * (i % 8));
    return HTNN_OK;
}

void net_block(const htnn_net *net, size_t count, size_t *first, size_t *n)
{
    size_t p = (size_t)net->reducer.ranks, r = (size_t)net->reducer.rank;
    size_t lo = count / p * r + count % p * r / p;
    size_t hi = count / p * (r + 1) + count % p * (r + 1) / p;
    *first = lo;
    *n = hi - lo;
}
