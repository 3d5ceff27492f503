/* The library's allocation wrappers and the test-only failure probe
 * (alloc.h).
 * SPDX-License-Identifier: MIT */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct mem_probe {
    int on;          /* counting at all (only in the fault tests) */
    int fired;       /* the armed failure happened */
    size_t calls;    /* allocation calls since mem_probe_start */
    size_t fail_at;  /* value of `calls` whose call fails, or MEM_PROBE_NEVER */
    long live;       /* blocks allocated minus blocks freed */
    size_t largest;  /* bytes of the largest request */
} mem_probe;

static _Thread_local mem_probe probe;

/* Counts one allocation call of `bytes`; 1 when it is the one that must
 * fail. */
static int probe_fails(size_t bytes)
{
    if (!probe.on)
        return 0;
    probe.largest = bytes > probe.largest ? bytes : probe.largest;
    if (probe.calls++ != probe.fail_at)
        return 0;
    probe.fired = 1;
    probe.fail_at = MEM_PROBE_NEVER;
    return 1;
}

/* Counts a new block. */
static void *track(void *p)
{
    if (probe.on && p != NULL)
        probe.live++;
    return p;
}

void *mem_malloc(size_t n) { return probe_fails(n) ? NULL : track(malloc(n)); }

void *mem_calloc(size_t count, size_t size)
{
    size_t bytes = size && count > SIZE_MAX / size ? SIZE_MAX : count * size;
    return probe_fails(bytes) ? NULL : track(calloc(count, size));
}

/* Growing a block keeps the count; realloc(NULL, n) makes a new one. */
void *mem_realloc(void *p, size_t n)
{
    if (probe_fails(n))
        return NULL;
    void *q = realloc(p, n);
    return p == NULL ? track(q) : q;
}

void mem_free(void *p)
{
    if (probe.on && p != NULL)
        probe.live--;
    free(p);
}

void *mem_shrink(void *p, size_t n)
{
    void *q = realloc(p, n);
    return q != NULL ? q : p;
}

void mem_probe_start(void)
{
    mem_probe fresh = {1, 0, 0, MEM_PROBE_NEVER, 0, 0};
    probe = fresh;
}

void mem_probe_stop(void) { probe.on = 0; }

void mem_probe_fail_after(size_t k)
{
    probe.fired = 0;
    probe.fail_at = k == MEM_PROBE_NEVER ? k : probe.calls + k;
}

size_t mem_probe_calls(void) { return probe.calls; }

long mem_probe_live(void) { return probe.live; }

int mem_probe_fired(void) { return probe.fired; }

size_t mem_probe_largest(void) { return probe.largest; }
