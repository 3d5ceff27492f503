/* A fork-join pool: helpers wait on `go` for a new generation, run their
 * slice, and the last to finish signals `done`.  Plain pthread condition
 * variables: no spinning, so an idle net costs nothing and a busy machine
 * is not made busier.
 * SPDX-License-Identifier: MIT */
#include "workers.h"

#include <pthread.h>

#include "alloc.h"
#include "error.h"

typedef struct helper {
    workers *pool;
    size_t part;
    pthread_t tid;
} helper;

struct workers {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation; /* bumped once per job */
    size_t pending;           /* helpers still running the current job */
    int quit;
    work_fn fn;
    void *arg;
    size_t parts, started;
    helper helpers[WORKERS_MAX];
};

static void *helper_main(void *p)
{
    helper *h = p;
    workers *w = h->pool;
    /* generation 0 is the state at creation: a job started before this
     * thread first takes the lock is still seen as new */
    unsigned long seen = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->generation == seen && !w->quit)
            pthread_cond_wait(&w->go, &w->mu);
        if (w->quit)
            break;
        seen = w->generation;
        work_fn fn = w->fn;
        void *arg = w->arg;
        pthread_mutex_unlock(&w->mu);
        fn(arg, h->part, w->parts);
        pthread_mutex_lock(&w->mu);
        if (--w->pending == 0)
            pthread_cond_signal(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
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
    w->quit = 1;
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
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->arg = arg;
    w->pending = w->parts - 1;
    w->generation++;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    fn(arg, 0, w->parts);
    pthread_mutex_lock(&w->mu);
    while (w->pending != 0)
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
}
