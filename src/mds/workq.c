/*
 * workq.c - a fixed pool of worker threads running queued functions in FIFO order.
 * The MDS's RPC handlers must not block their IO thread; etcd calls block, so requests
 * are queued here. The queue is a bounded ring (SPL_MDSD_QUEUE_MAX): a full queue is
 * reported to the caller (-EAGAIN), who answers the request with an overload error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/errors.h"
#include "mds/mdsd.h"

struct job {
    spl_workq_fn fn;
    void *arg;
};

struct spl_workq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *ring;
    size_t head, count;
    bool stopping;
    uint32_t thread_count;
    pthread_t threads[SPL_MDSD_WORKERS_MAX];
};

static void *worker_main(void *arg)
{
    struct spl_workq *wq = arg;
    pthread_mutex_lock(&wq->lock);
    for (;;) {
        while (wq->count == 0 && !wq->stopping)
            pthread_cond_wait(&wq->cond, &wq->lock);
        if (wq->count == 0)
            break; /* stopping and drained */
        struct job j = wq->ring[wq->head];
        wq->head = (wq->head + 1) % SPL_MDSD_QUEUE_MAX;
        wq->count--;
        pthread_mutex_unlock(&wq->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&wq->lock);
    }
    pthread_mutex_unlock(&wq->lock);
    return NULL;
}

int spl_workq_start(uint32_t threads, const char *name, struct spl_workq **out)
{
    ASSERT(threads >= 1 && threads <= SPL_MDSD_WORKERS_MAX && out);
    struct spl_workq *wq = calloc(1, sizeof *wq);
    if (!wq)
        return -ENOMEM;
    wq->ring = calloc(SPL_MDSD_QUEUE_MAX, sizeof *wq->ring);
    if (!wq->ring) {
        free(wq);
        return -ENOMEM;
    }
    pthread_mutex_init(&wq->lock, NULL);
    pthread_cond_init(&wq->cond, NULL);
    for (uint32_t i = 0; i < threads; i++) {
        int rc = pthread_create(&wq->threads[i], NULL, worker_main, wq);
        if (rc != 0) {
            wq->thread_count = i;
            spl_workq_stop(wq);
            return -rc;
        }
        char tn[16];
        snprintf(tn, sizeof tn, "%.10s-%u", name ? name : "wq", i % 1000u);
        pthread_setname_np(wq->threads[i], tn);
    }
    wq->thread_count = threads;
    *out = wq;
    return 0;
}

int spl_workq_push(struct spl_workq *wq, spl_workq_fn fn, void *arg)
{
    pthread_mutex_lock(&wq->lock);
    int rc = 0;
    if (wq->stopping)
        rc = SPL_ESHUTDOWN;
    else if (wq->count == SPL_MDSD_QUEUE_MAX)
        rc = -EAGAIN;
    else {
        wq->ring[(wq->head + wq->count) % SPL_MDSD_QUEUE_MAX] = (struct job){fn, arg};
        wq->count++;
        pthread_cond_signal(&wq->cond);
    }
    pthread_mutex_unlock(&wq->lock);
    return rc;
}

void spl_workq_stop(struct spl_workq *wq)
{
    if (!wq)
        return;
    pthread_mutex_lock(&wq->lock);
    wq->stopping = true;
    pthread_cond_broadcast(&wq->cond);
    pthread_mutex_unlock(&wq->lock);
    for (uint32_t i = 0; i < wq->thread_count; i++)
        pthread_join(wq->threads[i], NULL);
    pthread_cond_destroy(&wq->cond);
    pthread_mutex_destroy(&wq->lock);
    free(wq->ring);
    free(wq);
}
