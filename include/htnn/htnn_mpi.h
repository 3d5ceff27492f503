/*
 * libhtnn-mpi - data-parallel training of libhtnn nets over MPI.
 * SPDX-License-Identifier: MIT
 *
 * htnn_mpi.h - the MPI reducer and the sharding helpers (since 0.2).
 *
 * A companion library (libhtnn-mpi.so.0, pkg-config `htnn-mpi`), built
 * when Meson finds MPI (-Dmpi=auto|enabled).  libhtnn itself never links
 * MPI: this library implements libhtnn's generic reduction hook
 * (htnn/reduce.h) with MPI_Allreduce / MPI_Iallreduce on a duplicate of
 * the caller's communicator, so it composes with programs that already use
 * MPI (their own messages never meet libhtnn's).
 *
 *     MPI_Init(&argc, &argv);
 *     htnn_reducer *red;
 *     htnn_mpi_reducer_create(MPI_COMM_WORLD, 0, &red); // collective
 *     htnn_net_set_reducer(net, red);
 *     htnn_net_fit(net, opt, NULL, x, labels, count, &fit, &result);
 *     // every rank: the same options, and the same whole training set
 *     // or its shard of it (htnn_mpi_shard, htnn_data_load_idx_rows,
 *     // fit.shard_first / shard_total); rank r trains its part of every
 *     // global batch of fit.batch_size
 *     if (rank == 0) htnn_net_save(net, "model.htnn");
 *     htnn_net_set_reducer(net, NULL);
 *     htnn_mpi_reducer_free(red);                        // collective
 *     MPI_Finalize();
 *
 * Thread level: the reducer calls MPI only from the thread that trains the
 * net; MPI_THREAD_FUNNELED (or plain MPI_Init) is enough when that is the
 * main thread, otherwise initialise with MPI_THREAD_SERIALIZED.
 * See doc/distributed.md.
 */
#ifndef HTNN_MPI_H
#define HTNN_MPI_H

#include <mpi.h>

#include "common.h"
#include "reduce.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Flags of htnn_mpi_reducer_create. */
enum {
    /** Also provide start_sum / wait_all with MPI_Iallreduce, so that a
     *  net overlaps its gradient sums with the rest of the backward pass
     *  (htnn/reduce.h).  Off by default: Open MPI progresses non-blocking
     *  collectives only inside MPI calls, and its MPI_Iallreduce of a
     *  2.7 MB gradient took 2.5x its MPI_Allreduce on one node
     *  (doc/distributed.md); worth trying on networks with asynchronous
     *  progress. */
    HTNN_MPI_NONBLOCKING = 1,
    /** Also provide reduce_scatter_sum / allgather (MPI_Reduce_scatter,
     *  MPI_Allgatherv): htnn_net_fit then shards the optimizer step, each
     *  rank updating 1/ranks of every weight matrix before the weights are
     *  gathered (htnn/reduce.h).  Same bytes on the wire as the all-reduce
     *  and 1/ranks of the optimizer's work, same results; fewer bytes where
     *  a dense layer's global batch is small next to it, whose gradient
     *  then travels as its factors (since 0.4: every rank's rows of the
     *  layer's input and dZ).  Off by default, to keep 0.2's behaviour; on
     *  one node of 2 ranks it measured 1.30x-1.53x one rank against
     *  1.20x-1.39x without it (doc/distributed.md, section 7.1). */
    HTNN_MPI_SHARDED_STEP = 2,
    /** When every rank of the communicator is on one node (since 0.4):
     *  sum through an MPI-3 shared-memory window (MPI_Win_allocate_shared)
     *  instead of MPI's collectives.  Each rank writes the parts the others
     *  need into its own segment and reads theirs in place, in rounds of
     *  up to 32 K values per rank, one barrier per round; all-reduces of
     *  more than 4,096 values become a reduce-scatter plus an all-gather.
     *  The window (512 KB per rank with 2 ranks) is allocated here and the
     *  sums allocate nothing.  Sums are blocking (HTNN_MPI_NONBLOCKING is
     *  ignored) and give the same bits on every rank.  On several nodes,
     *  or alone, the flag has no effect.  With HTNN_MPI_SHARDED_STEP this
     *  is the fastest setting measured on one node (doc/distributed.md,
     *  sections 4.1 and 7). */
    HTNN_MPI_SHARED_MEMORY = 4
};

/** Creates a reducer over the ranks of `comm` (collective over comm: every
 *  rank calls it).  The reducer works on MPI_Comm_dup(comm) and keeps
 *  reduction statistics (htnn_mpi_reducer_stats).  `flags`: 0 (blocking
 *  all-reduces, every rank runs the whole optimizer step) or an OR of
 *  HTNN_MPI_NONBLOCKING, HTNN_MPI_SHARDED_STEP and HTNN_MPI_SHARED_MEMORY
 *  (on one machine, HTNN_MPI_SHARDED_STEP | HTNN_MPI_SHARED_MEMORY is the
 *  fastest).  Free it with htnn_mpi_reducer_free after the nets that use
 *  it are done training.
 *  HTNN_EINVAL: out NULL, comm MPI_COMM_NULL, unknown flags or MPI not
 *  initialised; HTNN_EIO: an MPI call failed; HTNN_ENOMEM. */
HTNN_API htnn_status htnn_mpi_reducer_create(MPI_Comm comm, int flags, htnn_reducer **out);

/** Frees a reducer of htnn_mpi_reducer_create (collective: frees its
 *  communicator).  NULL is a no-op. */
HTNN_API void htnn_mpi_reducer_free(htnn_reducer *reducer);

/** Time and volume of the reductions since creation or the last reset. */
typedef struct htnn_mpi_stats {
    size_t struct_size;   /**< set by the caller to sizeof(htnn_mpi_stats) */
    double seconds;       /**< wall time inside reductions: blocking sums,
                               starting non-blocking ones and waiting for them */
    uint64_t calls;       /**< reductions (blocking and started) */
    uint64_t values;      /**< floats reduced, summed over the calls */
    /** Since 0.4: 1 if the sums go through shared memory
     *  (HTNN_MPI_SHARED_MEMORY took effect: every rank on one node), else
     *  0.  Not reset by htnn_mpi_reducer_reset_stats. */
    int shared_memory;
} htnn_mpi_stats;

/** An htnn_mpi_stats ready to be filled. */
#define HTNN_MPI_STATS_INIT { sizeof(htnn_mpi_stats), 0.0, 0, 0, 0 }

/** Reads the statistics (only the caller's struct_size bytes are written).
 *  HTNN_EINVAL: a reducer not made by htnn_mpi_reducer_create, out NULL
 *  or a bad struct_size. */
HTNN_API htnn_status htnn_mpi_reducer_stats(const htnn_reducer *reducer, htnn_mpi_stats *out);

/** Zeroes the statistics.  HTNN_EINVAL as htnn_mpi_reducer_stats. */
HTNN_API htnn_status htnn_mpi_reducer_reset_stats(htnn_reducer *reducer);

/** The contiguous block of `count` items rank `rank` of `ranks` owns:
 *  [*first, *first + *n) with *first = floor(rank*count/ranks), the same
 *  split htnn_net_fit uses for each global batch of the whole training set
 *  (block sizes differ by at most one).  Use it to split files (the rows
 *  of htnn_data_load_idx_rows for a sharded fit), validation sets or work
 *  lists.
 *  HTNN_EINVAL: NULL outputs, ranks < 1 or rank out of range. */
HTNN_API htnn_status htnn_mpi_shard(size_t count, int rank, int ranks, size_t *first,
                                    size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* HTNN_MPI_H */
