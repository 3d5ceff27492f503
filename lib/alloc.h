/* Internal: every heap allocation of the library goes through these
 * wrappers, so that a test can count allocations and make one of them fail
 * (tests/test_faults.c).  Nothing here is exported: the functions are
 * hidden like every internal symbol and are not in libhtnn.map.
 *
 * The probe is test-only state, one per thread (_Thread_local, like the
 * last-error buffer): arming it on one thread never affects another.  While
 * it is off (always, outside the fault tests) each wrapper costs one
 * well-predicted branch on a thread-local flag before calling libc.
 * SPDX-License-Identifier: MIT */
#ifndef HTNN_LIB_ALLOC_H
#define HTNN_LIB_ALLOC_H

#include <stddef.h>

void *mem_malloc(size_t n);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);

/* Shrinks a block to n > 0 bytes; returns p itself when realloc cannot
 * (the bigger block stays valid).  It never fails, so it is not counted as
 * an allocation and the probe never fails it. */
void *mem_shrink(void *p, size_t n);

/* ---- test-only fault injection (per thread) -------------------------- */

/* Starts counting on this thread from zero: no failure armed, no live
 * blocks.  Only blocks allocated after this are tracked, so a test starts
 * the probe before it creates anything. */
void mem_probe_start(void);

/* Stops counting; the wrappers go back to plain libc calls. */
void mem_probe_stop(void);

/* Makes the allocation `k` calls from now fail (0: the next one), once;
 * MEM_PROBE_NEVER disarms. */
#define MEM_PROBE_NEVER ((size_t)-1)
void mem_probe_fail_after(size_t k);

/* Allocation calls (malloc, calloc, realloc) since mem_probe_start,
 * including the failed one. */
size_t mem_probe_calls(void);

/* Blocks allocated and not yet freed since mem_probe_start (a block freed
 * on another thread than the one that allocated it is not seen). */
long mem_probe_live(void);

/* 1 once the armed failure has been injected. */
int mem_probe_fired(void);

/* Bytes of the largest allocation requested since mem_probe_start (a
 * loader must never ask for more than its input can back). */
size_t mem_probe_largest(void);

#endif
