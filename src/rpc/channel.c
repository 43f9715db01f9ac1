/*
 * channel.c - the client side: one TCP connection to one address, many calls in flight
 * on it, matched by request id; timeouts, cancellation, reconnect with backoff.
 *
 * State (IO thread decides, ch->mu guards): CONNECTING -> CONNECTED -> (loss) ->
 * CONNECTING (at once when the connection had lived a while, else BACKOFF) ...;
 * a failed connect goes to BACKOFF for backoff_ms (doubling up to backoff_max_ms, +-25%
 * jitter), then CONNECTING again. CLOSING is final.
 *
 * Calls: a call is a slot in `slots` (request id = sequence << 24 | slot, so a reply finds
 * its call in O(1) and a late reply for a reused slot does not match) and an entry in a
 * min-heap of deadlines. A call made while CONNECTED is sent at once (by the calling
 * thread); one made while CONNECTING is parked with its frame and sent when the
 * connection is up (or failed with SPL_ERPC_UNREACHABLE when the connect fails, unless it
 * waits for ready). One made in BACKOFF fails to start with SPL_ERPC_UNREACHABLE unless
 * it waits for ready. Each call remembers the connection generation it was sent on;
 * losing that connection completes it with SPL_ERPC_CONNCLOSED.
 *
 * Timeouts: one uv timer per channel, always armed: at the earliest deadline, or a second
 * from now when nothing is pending. A new call wakes the IO thread only when its deadline
 * is earlier than the armed one (never, with equal timeouts), so the common call path
 * costs no thread hop at all.
 *
 * Every completion runs on the IO thread, outside ch->mu, exactly once: whoever removes
 * the call from `slots` (reply, timer, cancel, connection loss, close) completes it.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/random.h"
#include "rpc.pb-c.h"
#include "rpc/rpc_internal.h"

#define SPL__RPC_SLOT_BITS 24
#define SPL__RPC_SLOT_MASK ((1u << SPL__RPC_SLOT_BITS) - 1)
#define SPL__RPC_IDLE_TICK_NS (1000 * SPL_NS_PER_MS)
#define SPL__RPC_STABLE_CONN_NS (1000 * SPL_NS_PER_MS) /* a connection this old was "up" */
#define SPL__RPC_CALL_POOL_MAX 1024
SPL_STATIC_ASSERT(SPL_RPC_PENDING_PER_CHANNEL_MAX <= (1u << SPL__RPC_SLOT_BITS),
                  "slot index fits the request id");

enum spl_rpc_ch_state {
    SPL_RPC_CH_CONNECTING = 0,
    SPL_RPC_CH_CONNECTED = 1,
    SPL_RPC_CH_BACKOFF = 2,
    SPL_RPC_CH_CLOSING = 3,
};

struct spl_rpc_ccall {
    uint64_t id;
    uint64_t deadline_ns;
    uint64_t start_ns;
    uint64_t conn_gen;            /* connection it was sent on; 0: parked */
    uint32_t heap_index;
    bool wait_for_ready;
    int status;                   /* for the done list */
    const struct spl_rpc_service *svc;
    uint32_t method_index;
    struct spl__rpc_method_stats *stats;
    spl_rpc_done_cb done_cb;
    void *ctx;
    struct spl__rpc_out *parked_out;
    struct spl_rpc_ccall *next, *prev; /* parked list, done list, pool */
};

struct spl_rpc_channel {
    spl_rpc_runtime *rt;
    struct spl__rpc_loop *loop;
    char address[128];
    struct sockaddr_storage sa;
    socklen_t sa_len;
    uint32_t call_timeout_ms, connect_timeout_ms, backoff_initial_ms, backoff_max_ms;
    uint32_t pending_max;

    pthread_mutex_t mu;
    enum spl_rpc_ch_state state;
    struct spl__rpc_conn *conn;   /* connecting or connected */
    uint64_t conn_gen;
    uint64_t connected_ns;
    struct spl_rpc_ccall **slots;
    uint32_t *free_slots;
    uint32_t slot_cap, free_count, pending;
    uint64_t seq;
    struct spl_rpc_ccall **heap;
    uint32_t heap_len;
    struct spl_rpc_ccall *parked_head, *parked_tail;
    struct spl_rpc_ccall *done_head, *done_tail;
    uint64_t timer_due_ns;
    struct spl_rpc_ccall *pool;
    uint32_t pool_count;

    /* IO thread */
    struct spl_rpc_ccall *io_pool, *io_pool_tail; /* finished calls, handed to `pool` the
                                                   * next time the IO thread holds mu */
    uint32_t io_pool_count;
    uv_timer_t deadline_timer;
    uv_timer_t retry_timer;       /* connect timeout (CONNECTING), backoff (BACKOFF) */
    struct spl__rpc_task kick;
    uint32_t backoff_ms;
    uint32_t failures;            /* connect failures in a row (log once) */
    struct spl_rand rand;
    int handles_open;             /* while closing */
    sem_t closed;
};

/* ---- slots, heap, parked list (ch->mu) ---- */

static struct spl_rpc_ccall *spl_rpc_ch_lookup(struct spl_rpc_channel *ch, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & SPL__RPC_SLOT_MASK);
    if (slot >= ch->slot_cap || ch->slots[slot] == NULL || ch->slots[slot]->id != id)
        return NULL;
    return ch->slots[slot];
}

static bool spl_rpc_heap_less(const struct spl_rpc_ccall *a, const struct spl_rpc_ccall *b)
{
    return a->deadline_ns < b->deadline_ns;
}

static void spl_rpc_heap_set(struct spl_rpc_channel *ch, uint32_t i, struct spl_rpc_ccall *c)
{
    ch->heap[i] = c;
    c->heap_index = i;
}

static void spl_rpc_heap_up(struct spl_rpc_channel *ch, uint32_t i)
{
    struct spl_rpc_ccall *c = ch->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!spl_rpc_heap_less(c, ch->heap[parent]))
            break;
        spl_rpc_heap_set(ch, i, ch->heap[parent]);
        i = parent;
    }
    spl_rpc_heap_set(ch, i, c);
}

static void spl_rpc_heap_down(struct spl_rpc_channel *ch, uint32_t i)
{
    struct spl_rpc_ccall *c = ch->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const struct spl_rpc_ccall *best = c;
        if (l < ch->heap_len && spl_rpc_heap_less(ch->heap[l], best))
            m = l, best = ch->heap[l];
        if (r < ch->heap_len && spl_rpc_heap_less(ch->heap[r], best))
            m = r;
        if (m == i)
            break;
        spl_rpc_heap_set(ch, i, ch->heap[m]);
        i = m;
    }
    spl_rpc_heap_set(ch, i, c);
}

static void spl_rpc_heap_remove(struct spl_rpc_channel *ch, struct spl_rpc_ccall *c)
{
    uint32_t i = c->heap_index;
    ASSERT(i < ch->heap_len && ch->heap[i] == c);
    struct spl_rpc_ccall *last = ch->heap[--ch->heap_len];
    if (last == c)
        return;
    spl_rpc_heap_set(ch, i, last);
    spl_rpc_heap_down(ch, i);
    spl_rpc_heap_up(ch, last->heap_index);
}

static int spl_rpc_ch_grow(struct spl_rpc_channel *ch)
{
    uint32_t cap = ch->slot_cap ? ch->slot_cap * 2 : 64;
    if (cap > ch->pending_max)
        cap = ch->pending_max;
    ASSERT(cap > ch->slot_cap);
    struct spl_rpc_ccall **slots = realloc(ch->slots, cap * sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    ch->slots = slots;
    struct spl_rpc_ccall **heap = realloc(ch->heap, cap * sizeof(*heap));
    if (heap == NULL)
        return -ENOMEM;
    ch->heap = heap;
    uint32_t *free_slots = realloc(ch->free_slots, cap * sizeof(*free_slots));
    if (free_slots == NULL)
        return -ENOMEM;
    ch->free_slots = free_slots;
    for (uint32_t s = cap; s-- > ch->slot_cap;) {
        ch->slots[s] = NULL;
        ch->free_slots[ch->free_count++] = s;
    }
    ch->slot_cap = cap;
    return 0;
}

static void spl_rpc_parked_unlink(struct spl_rpc_channel *ch, struct spl_rpc_ccall *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ch->parked_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        ch->parked_tail = c->prev;
    c->next = c->prev = NULL;
}

/* Forget call c: after this, nobody else can complete it. */
static void spl_rpc_ch_remove(struct spl_rpc_channel *ch, struct spl_rpc_ccall *c)
{
    uint32_t slot = (uint32_t)(c->id & SPL__RPC_SLOT_MASK);
    ASSERT(ch->slots[slot] == c);
    ch->slots[slot] = NULL;
    ch->free_slots[ch->free_count++] = slot;
    spl_rpc_heap_remove(ch, c);
    if (c->parked_out != NULL)
        spl_rpc_parked_unlink(ch, c);
    ch->pending--;
}

static void spl_rpc_list_push(struct spl_rpc_ccall **head, struct spl_rpc_ccall **tail,
                              struct spl_rpc_ccall *c)
{
    c->next = NULL;
    c->prev = *tail;
    if (*tail != NULL)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
}

/* ---- completion (IO thread, no lock) ---- */

/* IO thread: keep c for reuse without taking mu; spl_rpc_ch_splice_pool hands the batch
 * to `pool` under the lock the IO thread takes anyway for the next reply. */
static void spl_rpc_ch_recycle(struct spl_rpc_channel *ch, struct spl_rpc_ccall *c)
{
    if (ch->io_pool_count >= SPL__RPC_CALL_POOL_MAX) {
        free(c);
        return;
    }
    c->next = ch->io_pool;
    ch->io_pool = c;
    if (ch->io_pool_tail == NULL)
        ch->io_pool_tail = c;
    ch->io_pool_count++;
}

/* IO thread, under ch->mu: move the recycled calls to `pool` (where callers allocate). */
static void spl_rpc_ch_splice_pool(struct spl_rpc_channel *ch)
{
    if (ch->io_pool == NULL || ch->pool_count >= SPL__RPC_CALL_POOL_MAX)
        return;
    ch->io_pool_tail->next = ch->pool;
    ch->pool = ch->io_pool;
    ch->pool_count += ch->io_pool_count;
    ch->io_pool = ch->io_pool_tail = NULL;
    ch->io_pool_count = 0;
}

static void spl_rpc_ch_complete(struct spl_rpc_channel *ch, struct spl_rpc_ccall *c, int status,
                                ProtobufCMessage *resp, struct spl_iobuf *attachment,
                                const char *message, const char *hint)
{
    struct spl_rpc_result r = {
        .status = status,
        .resp = resp,
        .error_message = status == 0 ? "" : (message != NULL ? message : spl_strerror(status)),
        .leader_hint = hint != NULL ? hint : "",
        .call_id = c->id,
    };
    spl_iobuf_init(&r.attachment);
    if (attachment != NULL && attachment->slice_count != 0)
        spl_iobuf_move(&r.attachment, attachment);
    if (c->parked_out != NULL) {
        spl__rpc_out_free(c->parked_out);
        c->parked_out = NULL;
    }
    spl_counter_inc(c->stats->requests);
    uint64_t now_ns = spl__rpc_now();
    spl_histogram_record(c->stats->latency, now_ns > c->start_ns ? now_ns - c->start_ns : 0);
    if (status != 0)
        spl__rpc_stats_error(c->stats, status);
    c->done_cb(&r, c->ctx);
    if (r.resp != NULL)
        protobuf_c_message_free_unpacked(r.resp, NULL);
    spl__rpc_iobuf_clear(&r.attachment);
    spl_rpc_ch_recycle(ch, c);
}

static void spl_rpc_ch_complete_list(struct spl_rpc_channel *ch, struct spl_rpc_ccall *list,
                                     int status)
{
    while (list != NULL) {
        struct spl_rpc_ccall *c = list;
        list = c->next;
        c->next = c->prev = NULL;
        spl_rpc_ch_complete(ch, c, status != 0 ? status : c->status, NULL, NULL, NULL, NULL);
    }
}

/* ---- timers (IO thread) ---- */

static void spl_rpc_ch_on_deadline(uv_timer_t *t);

/* Under ch->mu: when the deadline timer must fire next. */
static uint64_t spl_rpc_ch_due(struct spl_rpc_channel *ch, uint64_t now)
{
    uint64_t due = ch->heap_len > 0 ? ch->heap[0]->deadline_ns : now + SPL__RPC_IDLE_TICK_NS;
    ch->timer_due_ns = due;
    return due;
}

static void spl_rpc_ch_arm(struct spl_rpc_channel *ch, uint64_t due, uint64_t now)
{
    uint64_t ms = due > now ? (due - now + SPL_NS_PER_MS - 1) / SPL_NS_PER_MS : 0;
    uv_update_time(&ch->loop->uv);
    uv_timer_start(&ch->deadline_timer, spl_rpc_ch_on_deadline, ms, 0);
}

static void spl_rpc_ch_on_deadline(uv_timer_t *t)
{
    struct spl_rpc_channel *ch = t->data;
    uint64_t now = spl_mono_ns();
    struct spl_rpc_ccall *head = NULL, *tail = NULL;
    pthread_mutex_lock(&ch->mu);
    if (ch->state == SPL_RPC_CH_CLOSING) {
        pthread_mutex_unlock(&ch->mu);
        return;
    }
    while (ch->heap_len > 0 && ch->heap[0]->deadline_ns <= now + SPL_NS_PER_MS / 2) {
        struct spl_rpc_ccall *c = ch->heap[0];
        spl_rpc_ch_remove(ch, c);
        spl_rpc_list_push(&head, &tail, c);
    }
    uint64_t due = spl_rpc_ch_due(ch, now);
    pthread_mutex_unlock(&ch->mu);
    spl_rpc_ch_arm(ch, due, now);
    spl_rpc_ch_complete_list(ch, head, SPL_ERPC_TIMEDOUT);
}

static void spl_rpc_ch_kick_run(struct spl__rpc_task *task)
{
    struct spl_rpc_channel *ch =
        (struct spl_rpc_channel *)((char *)task - __builtin_offsetof(struct spl_rpc_channel, kick));
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&ch->mu);
    struct spl_rpc_ccall *done = ch->done_head;
    ch->done_head = ch->done_tail = NULL;
    bool closing = ch->state == SPL_RPC_CH_CLOSING;
    uint64_t due = spl_rpc_ch_due(ch, now);
    pthread_mutex_unlock(&ch->mu);
    if (!closing)
        spl_rpc_ch_arm(ch, due, now);
    spl_rpc_ch_complete_list(ch, done, 0);
}

/* Under ch->mu: wake the IO thread (never once CLOSING: the channel may be gone). */
static void spl_rpc_ch_kick_locked(struct spl_rpc_channel *ch)
{
    ASSERT(ch->state != SPL_RPC_CH_CLOSING);
    spl__rpc_loop_post(ch->loop, &ch->kick);
}

/* ---- connecting (IO thread) ---- */

static const struct spl__rpc_conn_ops spl_rpc_client_conn_ops;
static void spl_rpc_ch_on_retry(uv_timer_t *t);
static void spl_rpc_ch_on_connect(struct spl__rpc_conn *c, int status);

static void spl_rpc_ch_backoff(struct spl_rpc_channel *ch, int err)
{
    uint32_t base = ch->backoff_ms;
    uint32_t jitter = (uint32_t)spl_rand_below(&ch->rand, base / 2 + 1); /* +-25% */
    uint32_t delay = base - base / 4 + jitter;
    if (ch->failures++ == 0)
        LOG_WARN(SPL__RPC_TAG, "channel %s: cannot connect (%s); retrying with backoff",
                 ch->address, spl_strerror(err));
    else
        LOG_DEBUG(SPL__RPC_TAG, "channel %s: connect failed (%s); retry in %u ms", ch->address,
                  spl_strerror(err), delay);
    ch->backoff_ms = base >= ch->backoff_max_ms / 2 ? ch->backoff_max_ms : base * 2;
    uv_timer_start(&ch->retry_timer, spl_rpc_ch_on_retry, delay, 0);
}

/* Fail the parked calls that do not wait for ready (connect failed). Under ch->mu. */
static struct spl_rpc_ccall *spl_rpc_ch_take_unready(struct spl_rpc_channel *ch)
{
    struct spl_rpc_ccall *head = NULL, *tail = NULL;
    struct spl_rpc_ccall *c = ch->parked_head;
    while (c != NULL) {
        struct spl_rpc_ccall *next = c->next;
        if (!c->wait_for_ready) {
            spl_rpc_ch_remove(ch, c);
            spl_rpc_list_push(&head, &tail, c);
        }
        c = next;
    }
    return head;
}

static void spl_rpc_ch_connect_failed(struct spl_rpc_channel *ch, int err)
{
    pthread_mutex_lock(&ch->mu);
    if (ch->state == SPL_RPC_CH_CLOSING) {
        pthread_mutex_unlock(&ch->mu); /* the close cancels whatever is parked */
        return;
    }
    ch->state = SPL_RPC_CH_BACKOFF;
    struct spl_rpc_ccall *failed = spl_rpc_ch_take_unready(ch);
    pthread_mutex_unlock(&ch->mu);
    spl_rpc_ch_backoff(ch, err);
    spl_rpc_ch_complete_list(ch, failed, SPL_ERPC_UNREACHABLE);
}

static void spl_rpc_ch_connect(struct spl_rpc_channel *ch)
{
    int fd = socket(ch->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        spl_rpc_ch_connect_failed(ch, -errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = connect(fd, (struct sockaddr *)&ch->sa, ch->sa_len);
    if (rc != 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        spl_rpc_ch_connect_failed(ch, err);
        return;
    }
    struct spl__rpc_conn *c;
    if (spl__rpc_conn_new(ch->loop, fd, &spl_rpc_client_conn_ops, ch, &c) != 0) {
        close(fd);
        spl_rpc_ch_connect_failed(ch, -ENOMEM);
        return;
    }
    snprintf(c->peer, sizeof(c->peer), "%.63s", ch->address);
    c->connecting = rc != 0;
    pthread_mutex_lock(&ch->mu);
    /* Registered even when a close began meanwhile: the close (queued behind us on this
     * thread) then finds and closes it. */
    if (ch->state != SPL_RPC_CH_CLOSING)
        ch->state = SPL_RPC_CH_CONNECTING;
    ch->conn = c;
    ch->conn_gen++;
    pthread_mutex_unlock(&ch->mu);
    uv_timer_start(&ch->retry_timer, spl_rpc_ch_on_retry, ch->connect_timeout_ms, 0);
    if (spl__rpc_conn_start(c) != 0) {
        spl__rpc_conn_close(c, SPL_ERPC_UNREACHABLE); /* close_cb moves to BACKOFF */
        return;
    }
    if (rc == 0)
        spl_rpc_ch_on_connect(c, 0);
}

static void spl_rpc_ch_on_retry(uv_timer_t *t)
{
    struct spl_rpc_channel *ch = t->data;
    pthread_mutex_lock(&ch->mu);
    enum spl_rpc_ch_state state = ch->state;
    struct spl__rpc_conn *c = ch->conn;
    pthread_mutex_unlock(&ch->mu);
    if (state == SPL_RPC_CH_CONNECTING && c != NULL)
        spl__rpc_conn_close(c, SPL_ERPC_TIMEDOUT); /* connect timeout */
    else if (state == SPL_RPC_CH_BACKOFF)
        spl_rpc_ch_connect(ch);
}

static void spl_rpc_ch_on_connect(struct spl__rpc_conn *c, int status)
{
    struct spl_rpc_channel *ch = c->owner;
    if (status != 0) {
        spl__rpc_conn_close(c, status); /* close_cb moves to BACKOFF */
        return;
    }
    pthread_mutex_lock(&ch->mu);
    if (ch->state == SPL_RPC_CH_CLOSING) {
        pthread_mutex_unlock(&ch->mu); /* the close queued behind us closes c */
        return;
    }
    ch->state = SPL_RPC_CH_CONNECTED;
    ch->connected_ns = spl_mono_ns();
    /* Send the parked calls in their order, under mu so that none overtakes them. */
    while (ch->parked_head != NULL) {
        struct spl_rpc_ccall *call = ch->parked_head;
        spl_rpc_parked_unlink(ch, call);
        struct spl__rpc_out *o = call->parked_out;
        call->parked_out = NULL;
        call->conn_gen = ch->conn_gen;
        spl__rpc_conn_send(c, o); /* on the IO thread: queued, flushed after this event */
    }
    pthread_mutex_unlock(&ch->mu);
    uv_timer_stop(&ch->retry_timer);
    if (ch->failures > 0)
        LOG_INFO(SPL__RPC_TAG, "channel %s: connected after %u failed attempts", ch->address,
                 ch->failures);
    ch->failures = 0;
}

/* ---- connection events (IO thread) ---- */

static void spl_rpc_ch_handle_closed(struct spl_rpc_channel *ch)
{
    ASSERT(ch->handles_open > 0);
    if (--ch->handles_open == 0)
        sem_post(&ch->closed);
}

static void spl_rpc_ch_on_close(struct spl__rpc_conn *c)
{
    struct spl_rpc_channel *ch = c->owner;
    struct spl_rpc_ccall *head = NULL, *tail = NULL;
    pthread_mutex_lock(&ch->mu);
    if (ch->state == SPL_RPC_CH_CLOSING) {
        /* Counted by the close when it took the connection, else not at all. */
        bool counted = ch->conn != c;
        if (!counted)
            ch->conn = NULL;
        pthread_mutex_unlock(&ch->mu);
        if (counted)
            spl_rpc_ch_handle_closed(ch);
        return;
    }
    ASSERT(ch->conn == c);
    ch->conn = NULL;
    enum spl_rpc_ch_state was = ch->state;
    uint64_t gen = ch->conn_gen;
    for (uint32_t s = 0; s < ch->slot_cap; s++) {
        struct spl_rpc_ccall *call = ch->slots[s];
        if (call != NULL && call->conn_gen == gen) {
            spl_rpc_ch_remove(ch, call);
            spl_rpc_list_push(&head, &tail, call);
        }
    }
    bool stable = was == SPL_RPC_CH_CONNECTED &&
                  spl_mono_ns() - ch->connected_ns >= SPL__RPC_STABLE_CONN_NS;
    /* No connection from here on: new calls park (reconnecting now) or fail fast. */
    ch->state = stable ? SPL_RPC_CH_CONNECTING : SPL_RPC_CH_BACKOFF;
    pthread_mutex_unlock(&ch->mu);
    spl_rpc_ch_complete_list(ch, head, SPL_ERPC_CONNCLOSED);
    if (was == SPL_RPC_CH_CONNECTED)
        LOG_WARN(SPL__RPC_TAG, "channel %s: connection lost; reconnecting", ch->address);
    if (stable) {
        ch->backoff_ms = ch->backoff_initial_ms;
        spl_rpc_ch_connect(ch);
    } else {
        spl_rpc_ch_connect_failed(ch, was == SPL_RPC_CH_CONNECTED ? -ECONNRESET : -ECONNREFUSED);
    }
}

static void spl_rpc_ch_on_frame(struct spl__rpc_conn *c, struct spl_rpc_frame *f)
{
    struct spl_rpc_channel *ch = c->owner;
    const struct spl_rpc_header *h = &f->hdr;
    if (!(h->flags & SPL_RPC_FLAG_RESPONSE)) {
        LOG_WARN(SPL__RPC_TAG, "channel %s: the server sent a request: closing", ch->address);
        spl__rpc_conn_close(c, SPL_ERPC_BADFRAME);
        return;
    }
    pthread_mutex_lock(&ch->mu);
    spl_rpc_ch_splice_pool(ch);
    struct spl_rpc_ccall *call = spl_rpc_ch_lookup(ch, h->request_id);
    if (call != NULL)
        spl_rpc_ch_remove(ch, call);
    pthread_mutex_unlock(&ch->mu);
    if (call == NULL)
        return; /* timed out or canceled before the reply came */
    spl_counter_add(call->stats->bytes_in, SPL_RPC_HEADER_SIZE + (uint64_t)h->meta_len +
                                              h->attach_len);
    ProtobufCMessage *msg = NULL;
    if (h->flags & SPL_RPC_FLAG_ERROR) {
        int status = SPL_ERPC_BADMETA;
        const char *text = "undecodable error reply";
        const char *hint = NULL;
        if (spl_rpc_frame_meta_unpack(&spline__rpc_error_meta__descriptor, f, NULL, &msg) == 0) {
            const Spline__RpcErrorMeta *em = (const Spline__RpcErrorMeta *)msg;
            status = em->code != 0 ? spl_err_from_wire(em->code) : SPL_EINTERNAL;
            text = em->message;
            hint = em->leader_hint;
        }
        spl_rpc_ch_complete(ch, call, status, NULL, NULL, text, hint);
        if (msg != NULL)
            protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    const struct spl_rpc_method *m = &call->svc->methods[call->method_index];
    if (spl_rpc_frame_meta_unpack(m->response, f, NULL, &msg) != 0) {
        spl_rpc_ch_complete(ch, call, SPL_ERPC_BADMETA, NULL, NULL, "undecodable reply", NULL);
        return;
    }
    spl_rpc_ch_complete(ch, call, 0, msg, &f->attachment, NULL, NULL);
}

static void spl_rpc_ch_on_error(struct spl__rpc_conn *c, int err, const struct spl_rpc_header *h)
{
    struct spl_rpc_channel *ch = c->owner;
    if (err != SPL_ECORRUPT || h == NULL)
        return; /* fatal: the connection closes and its calls fail with CONNCLOSED */
    pthread_mutex_lock(&ch->mu);
    struct spl_rpc_ccall *call = spl_rpc_ch_lookup(ch, h->request_id);
    if (call != NULL)
        spl_rpc_ch_remove(ch, call);
    pthread_mutex_unlock(&ch->mu);
    if (call != NULL)
        spl_rpc_ch_complete(ch, call, SPL_ECORRUPT, NULL, NULL, "reply failed its payload CRC",
                            NULL);
}

static void spl_rpc_ch_on_sent(struct spl__rpc_conn *c, struct spl__rpc_out *o, bool written,
                               uint64_t now_ns)
{
    if (written && o->stats != NULL)
        spl_counter_add(o->stats->bytes_out, spl__rpc_out_bytes(o));
}

static const struct spl__rpc_conn_ops spl_rpc_client_conn_ops = {
    .frame_cb = spl_rpc_ch_on_frame,
    .error_cb = spl_rpc_ch_on_error,
    .sent_cb = spl_rpc_ch_on_sent,
    .connect_cb = spl_rpc_ch_on_connect,
    .close_cb = spl_rpc_ch_on_close,
};

/* ---- open / close ---- */

static int spl_rpc_ch_resolve(struct spl_rpc_channel *ch, const char *address)
{
    char host[128];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0')
        return -EINVAL;
    size_t hlen = (size_t)(colon - address);
    if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
        address++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535)
        return -EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -EINVAL;
    memcpy(&ch->sa, ai->ai_addr, ai->ai_addrlen);
    ch->sa_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void spl_rpc_ch_open_on_loop(void *arg)
{
    struct spl_rpc_channel *ch = arg;
    ASSERT(uv_timer_init(&ch->loop->uv, &ch->deadline_timer) == 0);
    ASSERT(uv_timer_init(&ch->loop->uv, &ch->retry_timer) == 0);
    ch->deadline_timer.data = ch->retry_timer.data = ch;
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&ch->mu);
    uint64_t due = spl_rpc_ch_due(ch, now);
    pthread_mutex_unlock(&ch->mu);
    spl_rpc_ch_arm(ch, due, now);
    spl_rpc_ch_connect(ch);
}

int spl_rpc_channel_open(spl_rpc_runtime *rt, const char *address,
                         const struct spl_rpc_channel_opts *opts, spl_rpc_channel **out)
{
    ASSERT(rt != NULL && address != NULL && out != NULL);
    struct spl_rpc_channel_opts o = {0};
    if (opts != NULL)
        o = *opts;
    if (o.pending_max > SPL_RPC_PENDING_PER_CHANNEL_MAX || strlen(address) >= 128)
        return -EINVAL;
    struct spl_rpc_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return -ENOMEM;
    int rc = spl_rpc_ch_resolve(ch, address);
    if (rc != 0) {
        free(ch);
        return rc;
    }
    snprintf(ch->address, sizeof(ch->address), "%s", address);
    ch->rt = rt;
    ch->loop = spl__rpc_runtime_pick(rt);
    ch->call_timeout_ms = o.call_timeout_ms ? o.call_timeout_ms : 5000;
    ch->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 3000;
    ch->backoff_initial_ms = o.backoff_initial_ms ? o.backoff_initial_ms : 50;
    ch->backoff_max_ms = o.backoff_max_ms ? o.backoff_max_ms : 5000;
    if (ch->backoff_max_ms < ch->backoff_initial_ms)
        ch->backoff_max_ms = ch->backoff_initial_ms;
    ch->backoff_ms = ch->backoff_initial_ms;
    ch->pending_max = o.pending_max ? o.pending_max : SPL_RPC_PENDING_PER_CHANNEL_MAX;
    ch->state = SPL_RPC_CH_CONNECTING;
    ch->kick.run_cb = spl_rpc_ch_kick_run;
    spl_rand_seed_from_os(&ch->rand);
    pthread_mutex_init(&ch->mu, NULL);
    ASSERT(sem_init(&ch->closed, 0, 0) == 0);
    atomic_fetch_add(&rt->objects, 1);
    spl__rpc_loop_run_sync(ch->loop, spl_rpc_ch_open_on_loop, ch);
    *out = ch;
    return 0;
}

static void spl_rpc_ch_timer_closed(uv_handle_t *h) { spl_rpc_ch_handle_closed(h->data); }

static void spl_rpc_ch_close_on_loop(void *arg)
{
    struct spl_rpc_channel *ch = arg;
    struct spl_rpc_ccall *head = NULL, *tail = NULL;
    pthread_mutex_lock(&ch->mu);
    ASSERT(ch->state == SPL_RPC_CH_CLOSING);
    struct spl__rpc_conn *c = ch->conn;
    ch->conn = NULL;
    for (uint32_t s = 0; s < ch->slot_cap; s++) {
        struct spl_rpc_ccall *call = ch->slots[s];
        if (call != NULL) {
            spl_rpc_ch_remove(ch, call);
            spl_rpc_list_push(&head, &tail, call);
        }
    }
    struct spl_rpc_ccall *done = ch->done_head;
    ch->done_head = ch->done_tail = NULL;
    pthread_mutex_unlock(&ch->mu);
    ch->handles_open = 2 + (c != NULL);
    uv_close((uv_handle_t *)&ch->deadline_timer, spl_rpc_ch_timer_closed);
    uv_close((uv_handle_t *)&ch->retry_timer, spl_rpc_ch_timer_closed);
    if (c != NULL)
        spl__rpc_conn_close(c, SPL_ESHUTDOWN);
    spl_rpc_ch_complete_list(ch, done, 0);
    spl_rpc_ch_complete_list(ch, head, SPL_ERPC_CANCELED);
}

void spl_rpc_channel_close(spl_rpc_channel *ch)
{
    if (ch == NULL)
        return;
    ASSERT(!spl_rpc_on_io_thread(ch->rt));
    pthread_mutex_lock(&ch->mu);
    ch->state = SPL_RPC_CH_CLOSING;
    pthread_mutex_unlock(&ch->mu);
    spl__rpc_loop_run_sync(ch->loop, spl_rpc_ch_close_on_loop, ch);
    while (sem_wait(&ch->closed) != 0)
        ASSERT(errno == EINTR);
    ASSERT(ch->pending == 0 && ch->heap_len == 0);
    while (ch->pool != NULL) {
        struct spl_rpc_ccall *c = ch->pool;
        ch->pool = c->next;
        free(c);
    }
    while (ch->io_pool != NULL) {
        struct spl_rpc_ccall *c = ch->io_pool;
        ch->io_pool = c->next;
        free(c);
    }
    free(ch->slots);
    free(ch->heap);
    free(ch->free_slots);
    sem_destroy(&ch->closed);
    pthread_mutex_destroy(&ch->mu);
    atomic_fetch_sub(&ch->rt->objects, 1);
    free(ch);
}

bool spl_rpc_channel_connected(const spl_rpc_channel *ch)
{
    struct spl_rpc_channel *m = (struct spl_rpc_channel *)ch;
    pthread_mutex_lock(&m->mu);
    bool up = m->state == SPL_RPC_CH_CONNECTED;
    pthread_mutex_unlock(&m->mu);
    return up;
}

const char *spl_rpc_channel_address(const spl_rpc_channel *ch) { return ch->address; }

/* ---- calls ---- */

/* Under ch->mu: a call object and a slot for it, or NULL. */
static struct spl_rpc_ccall *spl_rpc_ch_alloc(struct spl_rpc_channel *ch)
{
    if (ch->free_count == 0 && spl_rpc_ch_grow(ch) != 0)
        return NULL;
    struct spl_rpc_ccall *c = ch->pool;
    if (c != NULL) {
        ch->pool = c->next;
        ch->pool_count--;
    } else {
        c = malloc(sizeof(*c));
        if (c == NULL)
            return NULL;
    }
    uint32_t slot = ch->free_slots[--ch->free_count];
    c->id = (++ch->seq << SPL__RPC_SLOT_BITS) | slot;
    ch->slots[slot] = c;
    ch->pending++;
    return c;
}

int spl_rpc_call_async(spl_rpc_channel *ch, const struct spl_rpc_service *svc,
                       uint32_t method_index, const ProtobufCMessage *req,
                       struct spl_iobuf *attachment, const struct spl_rpc_call_opts *opts,
                       uint64_t *call_id_out, spl_rpc_done_cb done_cb, void *ctx)
{
    ASSERT(ch != NULL && svc != NULL && done_cb != NULL);
    if (method_index >= svc->method_count)
        return -EINVAL;
    const struct spl_rpc_method *m = &svc->methods[method_index];
    if (req != NULL && req->descriptor != m->request)
        return -EINVAL;
    if (attachment != NULL && spl_iobuf_len(attachment) > SPL_RPC_ATTACH_MAX)
        return SPL_ETOOBIG;
    struct spl__rpc_out *o;
    int rc = spl__rpc_out_new(req, &o);
    if (rc != 0)
        return rc;
    o->stats = spl__rpc_stats_get(ch->rt, false, svc, method_index);
    bool wait_for_ready = opts != NULL && opts->wait_for_ready;
    uint8_t flags = (opts != NULL && opts->payload_crc) ? SPL_RPC_FLAG_PAYLOAD_CRC : 0;
    uint32_t timeout_ms = (opts != NULL && opts->timeout_ms) ? opts->timeout_ms
                                                              : ch->call_timeout_ms;
    uint64_t now = spl__rpc_now();
    struct spl__rpc_conn *conn = NULL;
    struct spl_rpc_ccall *c = NULL;

    pthread_mutex_lock(&ch->mu);
    if (ch->state == SPL_RPC_CH_CLOSING)
        rc = SPL_ESHUTDOWN;
    else if (ch->pending >= ch->pending_max)
        rc = -EAGAIN;
    else if (ch->state == SPL_RPC_CH_BACKOFF && !wait_for_ready)
        rc = SPL_ERPC_UNREACHABLE;
    else if ((c = spl_rpc_ch_alloc(ch)) == NULL)
        rc = -ENOMEM;
    if (rc != 0) {
        pthread_mutex_unlock(&ch->mu);
        spl__rpc_out_free(o);
        return rc;
    }
    c->deadline_ns = now + (uint64_t)timeout_ms * SPL_NS_PER_MS;
    c->start_ns = now;
    c->wait_for_ready = wait_for_ready;
    c->status = 0;
    c->svc = svc;
    c->method_index = method_index;
    c->stats = o->stats;
    c->done_cb = done_cb;
    c->ctx = ctx;
    c->parked_out = NULL;
    c->next = c->prev = NULL;
    if (attachment != NULL)
        spl_iobuf_move(&o->attach, attachment);
    spl__rpc_out_seal(o, flags, svc->id, (uint16_t)method_index, c->id);
    ch->heap[ch->heap_len] = c;
    c->heap_index = ch->heap_len++;
    spl_rpc_heap_up(ch, c->heap_index);
    if (ch->state == SPL_RPC_CH_CONNECTED) {
        conn = ch->conn;
        spl__rpc_conn_ref(conn);
        c->conn_gen = ch->conn_gen;
    } else {
        c->conn_gen = 0;
        c->parked_out = o;
        spl_rpc_list_push(&ch->parked_head, &ch->parked_tail, c);
    }
    if (c->deadline_ns < ch->timer_due_ns)
        spl_rpc_ch_kick_locked(ch);
    if (call_id_out != NULL)
        *call_id_out = c->id;
    pthread_mutex_unlock(&ch->mu);

    if (conn != NULL) {
        spl__rpc_conn_send(conn, o); /* a loss is reported through the call's conn_gen */
        spl__rpc_conn_unref(conn);
    }
    return 0;
}

int spl_rpc_cancel(spl_rpc_channel *ch, uint64_t call_id)
{
    ASSERT(ch != NULL);
    pthread_mutex_lock(&ch->mu);
    struct spl_rpc_ccall *c = spl_rpc_ch_lookup(ch, call_id);
    if (c == NULL) {
        pthread_mutex_unlock(&ch->mu);
        return -ENOENT;
    }
    if (ch->state == SPL_RPC_CH_CLOSING) {
        pthread_mutex_unlock(&ch->mu); /* the close cancels it */
        return 0;
    }
    spl_rpc_ch_remove(ch, c);
    c->status = SPL_ERPC_CANCELED;
    if (spl__rpc_on_loop(ch->loop)) {
        pthread_mutex_unlock(&ch->mu);
        spl_rpc_ch_complete(ch, c, SPL_ERPC_CANCELED, NULL, NULL, NULL, NULL);
        return 0;
    }
    spl_rpc_list_push(&ch->done_head, &ch->done_tail, c);
    spl_rpc_ch_kick_locked(ch);
    pthread_mutex_unlock(&ch->mu);
    return 0;
}

/* ---- sync calls ---- */

enum { SPL_RPC_SYNC_WAITING = 0, SPL_RPC_SYNC_DONE = 1, SPL_RPC_SYNC_SLEEPING = 2 };

struct spl_rpc_sync {
    sem_t done;
    atomic_int state;
    int status;
    ProtobufCMessage *resp;
    struct spl_iobuf *resp_attachment;
    struct spl_rpc_error_info *err;
};

static void spl_rpc_sync_done(struct spl_rpc_result *r, void *ctx)
{
    struct spl_rpc_sync *s = ctx;
    s->status = r->status;
    if (r->status == 0) {
        s->resp = r->resp;
        r->resp = NULL;
        if (s->resp_attachment != NULL) {
            if (spl_iobuf_len(s->resp_attachment) == 0)
                spl_iobuf_move(s->resp_attachment, &r->attachment);
            else if (spl_iobuf_append_ref(s->resp_attachment, &r->attachment, 0,
                                          spl_iobuf_len(&r->attachment)) != 0)
                s->status = -ENOMEM;
        }
    } else if (s->err != NULL) {
        snprintf(s->err->message, sizeof(s->err->message), "%s", r->error_message);
        snprintf(s->err->leader_hint, sizeof(s->err->leader_hint), "%s", r->leader_hint);
    }
    if (atomic_exchange_explicit(&s->state, SPL_RPC_SYNC_DONE, memory_order_acq_rel) ==
        SPL_RPC_SYNC_SLEEPING)
        sem_post(&s->done);
}

/* Wait for spl_rpc_sync_done. No spinning: measured on the 2-core machine, a spinning
 * caller takes the CPU the IO threads need and makes the median 2x and p99 40x worse under
 * load (docs/rpc.md). */
static void spl_rpc_sync_wait(struct spl_rpc_sync *s)
{
    int expected = SPL_RPC_SYNC_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&s->state, &expected, SPL_RPC_SYNC_SLEEPING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return; /* completed already */
    while (sem_wait(&s->done) != 0)
        ASSERT(errno == EINTR);
}

int spl_rpc_call_sync(spl_rpc_channel *ch, const struct spl_rpc_service *svc,
                      uint32_t method_index, const ProtobufCMessage *req,
                      struct spl_iobuf *req_attachment, const struct spl_rpc_call_opts *opts,
                      ProtobufCMessage **resp_out, struct spl_iobuf *resp_attachment,
                      struct spl_rpc_error_info *err_out)
{
    ASSERT(ch != NULL && resp_out != NULL);
    ASSERTF(!spl_rpc_on_io_thread(ch->rt), "spl_rpc_call_sync on an IO thread deadlocks");
    *resp_out = NULL;
    struct spl_rpc_sync s = {.resp_attachment = resp_attachment, .err = err_out};
    atomic_init(&s.state, SPL_RPC_SYNC_WAITING);
    ASSERT(sem_init(&s.done, 0, 0) == 0);
    int rc = spl_rpc_call_async(ch, svc, method_index, req, req_attachment, opts, NULL,
                                spl_rpc_sync_done, &s);
    if (rc != 0) {
        sem_destroy(&s.done);
        if (err_out != NULL) {
            snprintf(err_out->message, sizeof(err_out->message), "%s", spl_strerror(rc));
            err_out->leader_hint[0] = '\0';
        }
        return rc;
    }
    spl_rpc_sync_wait(&s);
    sem_destroy(&s.done);
    if (s.status != 0 && s.resp != NULL) {
        protobuf_c_message_free_unpacked(s.resp, NULL);
        s.resp = NULL;
    }
    *resp_out = s.resp;
    return s.status;
}
