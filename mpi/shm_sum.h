/* libhtnn-mpi internal: sums over ranks that share one node, through an
 * MPI-3 shared-memory window instead of MPI's collectives (see shm_sum.c).
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_MPI_SHM_SUM_H
#define HTNN_MPI_SHM_SUM_H

#include <mpi.h>
#include <stddef.h>

#include "htnn/common.h"

typedef struct shm_sum shm_sum;

/* Collective over comm.  *out is NULL (and HTNN_OK returned) when the ranks
 * of comm are not all on one node: the caller then keeps MPI's collectives.
 * Allocates the window (a few hundred KB per rank).
 * HTNN_EIO: an MPI call failed; HTNN_ENOMEM. */
htnn_status shm_sum_create(MPI_Comm comm, shm_sum **out);

/* Collective.  NULL is a no-op. */
void shm_sum_free(shm_sum *s);

/* The three sums of htnn_reducer, collective and with the same count on
 * every rank: all-reduce, reduce-scatter (this rank's block holds the sum)
 * and all-gather of the blocks.  They allocate nothing.  HTNN_EIO. */
htnn_status shm_sum_all(shm_sum *s, float *values, size_t count);
htnn_status shm_sum_scatter(shm_sum *s, float *values, size_t count);
htnn_status shm_sum_gather(shm_sum *s, float *values, size_t count);

#endif /* HTNN_MPI_SHM_SUM_H */
