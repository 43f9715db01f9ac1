/*
 * runtime.c - the IO threads: one libuv loop each, a task queue to reach a loop from any
 * thread (uv_async), and the dirty-connection flush that batches writes.
 *
 * A loop iteration runs timers, then (prepare) flushes connections that got frames from
 * timer callbacks, blocks in epoll, runs I/O callbacks (reads, async tasks) and finally
 * (check) flushes connections that got frames from those callbacks: every frame queued
 * on an IO thread leaves within the same iteration, with one writev per connection.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "rpc/rpc_internal.h"

__thread struct spl__rpc_loop *spl__rpc_tls_loop;

bool spl__rpc_on_loop(const struct spl__rpc_loop *loop) { return spl__rpc_tls_loop == loop; }

uint64_t spl__rpc_now(void)
{
    struct spl__rpc_loop *loop = spl__rpc_tls_loop;
    return loop != NULL && loop->now_ns != 0 ? loop->now_ns : spl_mono_ns();
}

bool spl_rpc_on_io_thread(const spl_rpc_runtime *rt)
{
    return spl__rpc_tls_loop != NULL && spl__rpc_tls_loop->rt == rt;
}

struct spl__rpc_loop *spl__rpc_runtime_pick(spl_rpc_runtime *rt)
{
    unsigned n = atomic_fetch_add_explicit(&rt->next_loop, 1, memory_order_relaxed);
    return &rt->loops[n % rt->loop_count];
}

bool spl__rpc_loop_post(struct spl__rpc_loop *loop, struct spl__rpc_task *task)
{
    ASSERT(task->run_cb != NULL);
    pthread_mutex_lock(&loop->task_mu);
    bool fresh = !task->queued;
    if (fresh) {
        task->queued = true;
        task->next = NULL;
        if (loop->task_tail != NULL)
            loop->task_tail->next = task;
        else
            loop->task_head = task;
        loop->task_tail = task;
    }
    pthread_mutex_unlock(&loop->task_mu);
    if (fresh)
        uv_async_send(&loop->wake);
    return fresh;
}

static void spl_rpc_loop_on_wake(uv_async_t *h)
{
    struct spl__rpc_loop *loop = h->data;
    loop->now_ns = spl_mono_ns();
    pthread_mutex_lock(&loop->task_mu);
    struct spl__rpc_task *list = loop->task_head;
    loop->task_head = loop->task_tail = NULL;
    pthread_mutex_unlock(&loop->task_mu);
    /* While a task is still marked queued nobody else touches its `next`; it is unmarked
     * (under the lock) just before it runs, so that it may be posted again from then on. */
    while (list != NULL) {
        struct spl__rpc_task *t = list;
        list = t->next;
        pthread_mutex_lock(&loop->task_mu);
        t->queued = false;
        pthread_mutex_unlock(&loop->task_mu);
        t->run_cb(t);
    }
}

struct spl_rpc_sync_task {
    struct spl__rpc_task task;
    void (*fn)(void *arg);
    void *arg;
    sem_t done;
};

static void spl_rpc_sync_task_run(struct spl__rpc_task *task)
{
    struct spl_rpc_sync_task *st = (struct spl_rpc_sync_task *)task;
    st->fn(st->arg);
    sem_post(&st->done);
}

void spl__rpc_loop_run_sync(struct spl__rpc_loop *loop, void (*fn)(void *arg), void *arg)
{
    if (spl__rpc_on_loop(loop)) {
        fn(arg);
        return;
    }
    struct spl_rpc_sync_task st = {.task = {.run_cb = spl_rpc_sync_task_run}, .fn = fn,
                                   .arg = arg};
    ASSERT(sem_init(&st.done, 0, 0) == 0);
    spl__rpc_loop_post(loop, &st.task);
    while (sem_wait(&st.done) != 0)
        ASSERT(errno == EINTR);
    sem_destroy(&st.done);
}

static void spl_rpc_loop_on_check(uv_check_t *h) { spl__rpc_loop_flush_dirty(h->data); }
static void spl_rpc_loop_on_prepare(uv_prepare_t *h) { spl__rpc_loop_flush_dirty(h->data); }

/* Run the loop. With busy polling, an iteration that read data is followed by
 * non-blocking iterations (epoll_wait with timeout 0) for up to a window after the last
 * data, so that a request or reply arriving meanwhile is taken without the sleep and
 * wake-up of a blocking epoll_wait; without traffic the loop blocks as usual.
 *
 * The window adapts, because spinning only pays when the other side answers while we
 * spin and hurts when the spinner takes the CPU the other side needs (2 cores, both
 * processes on one machine, other work): a spin that caught data doubles the window (up
 * to busy_poll_us); one that expired, or saw the thread descheduled for longer than
 * SPIN_PREEMPT_NS between two polls (the CPU is contended), halves it; below
 * SPIN_MIN_NS spinning stops and is probed again at full window after SPIN_PROBE_EVERY
 * blocking iterations. */
#define SPIN_MIN_NS 2000u
#define SPIN_PREEMPT_NS 30000u
#define SPIN_PROBE_EVERY 256u

static bool spl_rpc_loop_spin(struct spl__rpc_loop *loop, bool *alive)
{
    uint64_t now = spl_mono_ns(), until = now + loop->spin_ns;
    bool caught = false;
    for (;;) {
        loop->traffic = false;
        if (uv_run(&loop->uv, UV_RUN_NOWAIT) == 0) {
            *alive = false;
            return caught;
        }
        uint64_t t = spl_mono_ns();
        if (t - now > SPIN_PREEMPT_NS && !loop->traffic)
            return false; /* descheduled while polling: the CPU is wanted elsewhere */
        now = t;
        if (loop->traffic) {
            caught = true;
            until = now + loop->spin_ns;
        } else if (now >= until) {
            return caught;
        }
    }
}

static void spl_rpc_loop_run(struct spl__rpc_loop *loop)
{
    uint64_t max_ns = loop->rt->busy_poll_ns;
    if (max_ns == 0) {
        uv_run(&loop->uv, UV_RUN_DEFAULT);
        return;
    }
    loop->spin_ns = max_ns;
    for (bool alive = true; alive;) {
        loop->traffic = false;
        if (uv_run(&loop->uv, UV_RUN_ONCE) == 0)
            return;
        if (!loop->traffic)
            continue;
        if (loop->spin_ns < SPIN_MIN_NS) {
            if (loop->spin_skip > 0 && --loop->spin_skip > 0)
                continue;
            loop->spin_ns = max_ns; /* probe again */
        }
        bool caught = spl_rpc_loop_spin(loop, &alive);
        if (caught)
            loop->spin_ns = loop->spin_ns * 2 < max_ns ? loop->spin_ns * 2 : max_ns;
        else
            loop->spin_ns /= 2;
        if (loop->spin_ns < SPIN_MIN_NS)
            loop->spin_skip = SPIN_PROBE_EVERY;
    }
}

static void spl_rpc_loop_main(void *arg)
{
    struct spl__rpc_loop *loop = arg;
    char name[16];
    snprintf(name, sizeof(name), "%.10s-%u", loop->rt->name, loop->index);
    pthread_setname_np(pthread_self(), name);
    spl__rpc_tls_loop = loop;
    spl_rpc_loop_run(loop);
    spl__rpc_tls_loop = NULL;
}

static void *spl_rpc_loop_thread(void *arg)
{
    spl_rpc_loop_main(arg);
    return NULL;
}

static void spl_rpc_loop_close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void spl_rpc_loop_stop(void *arg)
{
    struct spl__rpc_loop *loop = arg;
    ASSERT(loop->dirty == NULL);
    /* Only the loop's own handles remain (servers and channels are gone): closing them
     * lets uv_run return. */
    uv_walk(&loop->uv, spl_rpc_loop_close_handle, NULL);
}

static int spl_rpc_loop_init(spl_rpc_runtime *rt, uint32_t index)
{
    struct spl__rpc_loop *loop = &rt->loops[index];
    loop->rt = rt;
    loop->index = index;
    int rc = uv_loop_init(&loop->uv);
    if (rc != 0)
        return rc;
    pthread_mutex_init(&loop->task_mu, NULL);
    ASSERT(uv_async_init(&loop->uv, &loop->wake, spl_rpc_loop_on_wake) == 0);
    ASSERT(uv_check_init(&loop->uv, &loop->check) == 0);
    ASSERT(uv_prepare_init(&loop->uv, &loop->prepare) == 0);
    loop->wake.data = loop->check.data = loop->prepare.data = loop;
    ASSERT(uv_check_start(&loop->check, spl_rpc_loop_on_check) == 0);
    ASSERT(uv_prepare_start(&loop->prepare, spl_rpc_loop_on_prepare) == 0);
    rc = pthread_create(&loop->thread, NULL, spl_rpc_loop_thread, loop);
    if (rc != 0) {
        uv_walk(&loop->uv, spl_rpc_loop_close_handle, NULL);
        uv_run(&loop->uv, UV_RUN_DEFAULT);
        uv_loop_close(&loop->uv);
        pthread_mutex_destroy(&loop->task_mu);
        return -rc;
    }
    loop->thread_started = true;
    return 0;
}

static void spl_rpc_loop_fini(struct spl__rpc_loop *loop)
{
    if (!loop->thread_started)
        return;
    spl__rpc_loop_run_sync(loop, spl_rpc_loop_stop, loop);
    pthread_join(loop->thread, NULL);
    while (loop->free_outs != NULL) {
        struct spl__rpc_out *o = loop->free_outs;
        loop->free_outs = o->next;
        free(o);
    }
    while (loop->free_calls != NULL) {
        void *c = loop->free_calls;
        loop->free_calls = *(void **)c;
        free(c);
    }
    int rc = uv_loop_close(&loop->uv);
    ASSERTF(rc == 0, "uv_loop_close: %s", uv_strerror(rc));
    pthread_mutex_destroy(&loop->task_mu);
    loop->thread_started = false;
}

int spl_rpc_runtime_create(const struct spl_rpc_runtime_opts *opts, spl_rpc_runtime **out)
{
    struct spl_rpc_runtime_opts o = {0};
    if (opts != NULL)
        o = *opts;
    if (o.io_threads == 0)
        o.io_threads = 1;
    if (o.io_threads > SPL_RPC_IO_THREADS_MAX || o.busy_poll_us > SPL_RPC_BUSY_POLL_US_MAX)
        return -EINVAL;
    spl_rpc_runtime *rt = calloc(1, sizeof(*rt) + o.io_threads * sizeof(rt->loops[0]));
    if (rt == NULL)
        return -ENOMEM;
    snprintf(rt->name, sizeof(rt->name), "%s", o.name != NULL ? o.name : "rpc");
    rt->metrics = o.metrics != NULL ? o.metrics : spl_metrics_global();
    rt->busy_poll_ns = (uint64_t)o.busy_poll_us * 1000;
    int rc = spl__rpc_stats_init(rt);
    if (rc != 0)
        goto out_free;
    for (uint32_t i = 0; i < o.io_threads; i++) {
        rc = spl_rpc_loop_init(rt, i);
        if (rc != 0)
            goto out_stop;
        rt->loop_count = i + 1;
    }
    *out = rt;
    return 0;

out_stop:
    for (uint32_t i = 0; i < rt->loop_count; i++)
        spl_rpc_loop_fini(&rt->loops[i]);
    spl__rpc_stats_free(rt);
out_free:
    free(rt);
    return rc;
}

void spl__rpc_runtime_call_started(spl_rpc_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->server_calls, 1, memory_order_relaxed);
}

void spl__rpc_runtime_call_done(spl_rpc_runtime *rt)
{
    long old = atomic_fetch_sub_explicit(&rt->server_calls, 1, memory_order_release);
    ASSERT(old > 0);
}

void spl_rpc_runtime_destroy(spl_rpc_runtime *rt)
{
    if (rt == NULL)
        return;
    ASSERT(!spl_rpc_on_io_thread(rt));
    ASSERTF(atomic_load(&rt->objects) == 0, "%ld servers/channels still open",
            atomic_load(&rt->objects));
    /* Handlers still holding calls must reply first (their replies are dropped). */
    for (unsigned waited_ms = 0; atomic_load_explicit(&rt->server_calls, memory_order_acquire) > 0;
         waited_ms++) {
        if (waited_ms % 1000 == 0)
            LOG_WARN(SPL__RPC_TAG, "runtime destroy waits for %ld unanswered calls",
                     atomic_load(&rt->server_calls));
        spl_sleep_ns(SPL_NS_PER_MS);
    }
    for (uint32_t i = 0; i < rt->loop_count; i++)
        spl_rpc_loop_fini(&rt->loops[i]);
    spl__rpc_stats_free(rt);
    free(rt);
}
