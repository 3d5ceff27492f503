/* A fork-join pool: helpers wait for a new generation, run their slice,
 * and the last to finish signals `done`.  A training step forks a few
 * times per layer, milliseconds apart, so waiting first spins briefly
 * (tens of microseconds) before sleeping on a condition variable: a
 * sleeping thread takes longer to wake than the gap between two jobs,
 * while an idle net still costs nothing.
 * SPDX-License-Identifier: MIT */
#include "workers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "alloc.h"
#include "error.h"

typedef struct helper {
    workers *pool;
    size_t part;
    pthread_t tid;
} helper;

/* How long a waiting thread spins before it sleeps: longer than the
 * serial work between two jobs of a training step (batch gathering, the
 * output layer), shorter than anything a caller would notice. */
#define SPIN_NS 300000L
#define SPIN_PAUSE_NS 20000L

struct workers {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong generation;  /* bumped once per job (and to quit) */
    atomic_ulong pending;     /* helpers still running the current job */
    atomic_int quit;
    work_fn fn;
    void *arg;
    size_t parts, started;
    helper helpers[WORKERS_MAX];
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long elapsed_ns(const struct timespec *since)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L + (t.tv_nsec - since->tv_nsec);
}

/* Spins until (*value == x) == want (1) or SPIN_NS have passed (0).
 * After the first SPIN_PAUSE_NS it yields the core at each poll, so that a
 * thread with work (OpenBLAS's own, between a conv net's jobs) gets it. */
static int spin_until(atomic_ulong *value, unsigned long x, int want)
{
    struct timespec start;
    long spent = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned i = 1;; i++) {
        if ((atomic_load_explicit(value, memory_order_acquire) == x) == want)
            return 1;
        if (spent > SPIN_PAUSE_NS)
            sched_yield();
        else
            cpu_relax();
        if (i % 64 == 0 && (spent = elapsed_ns(&start)) > SPIN_NS)
            return 0;
    }
}

static void *helper_main(void *p)
{
    helper *h = p;
    workers *w = h->pool;
    /* generation 0 is the state at creation: a job started before this
     * thread first looks is still seen as new */
    unsigned long seen = 0;
    for (;;) {
        if (!spin_until(&w->generation, seen, 0)) {
            pthread_mutex_lock(&w->mu);
            while (atomic_load(&w->generation) == seen)
                pthread_cond_wait(&w->go, &w->mu);
            pthread_mutex_unlock(&w->mu);
        }
        if (atomic_load(&w->quit))
            break;
        seen = atomic_load(&w->generation);
        w->fn(w->arg, h->part, w->parts);
        if (atomic_fetch_sub(&w->pending, 1) == 1) {
            pthread_mutex_lock(&w->mu);
            pthread_cond_signal(&w->done);
            pthread_mutex_unlock(&w->mu);
        }
    }
    return NULL;
}

htnn_status workers_create(size_t parts, workers **out)
{
    workers *w = mem_calloc(1, sizeof *w);
    if (w == NULL)
        return error_set(HTNN_ENOMEM, "out of memory for %zu worker threads", parts - 1);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->go, NULL);
    pthread_cond_init(&w->done, NULL);
    w->parts = parts > WORKERS_MAX ? WORKERS_MAX : parts;
    for (size_t i = 1; i < w->parts; i++) {
        helper *h = &w->helpers[i];
        h->pool = w;
        h->part = i;
        if (pthread_create(&h->tid, NULL, helper_main, h) != 0) {
            workers_free(w);
            return error_set(HTNN_ENOMEM, "cannot start %zu worker threads (threads "
                             "setting %zu)", parts - 1, parts);
        }
        w->started++;
    }
    *out = w;
    return HTNN_OK;
}

void workers_free(workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->quit, 1);
    atomic_fetch_add(&w->generation, 1);
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 1; i <= w->started; i++)
        pthread_join(w->helpers[i].tid, NULL);
    pthread_cond_destroy(&w->go);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    mem_free(w);
}

size_t workers_parts(const workers *w) { return w ? w->parts : 1; }

void workers_run(workers *w, work_fn fn, void *arg)
{
    if (w == NULL) {
        fn(arg, 0, 1);
        return;
    }
    /* fn and arg are published by the generation's release */
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->arg = arg;
    atomic_store(&w->pending, w->parts - 1);
    atomic_fetch_add_explicit(&w->generation, 1, memory_order_release);
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    fn(arg, 0, w->parts);
    if (spin_until(&w->pending, 0, 1))
        return;
    pthread_mutex_lock(&w->mu);
    while (atomic_load(&w->pending) != 0)
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
}
