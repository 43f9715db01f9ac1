/*
 * conn.c - one TCP connection: outgoing frames, the send queue and its writers, reading
 * into iobuf blocks, parsing, pausing, closing. Shared by server connections and client
 * channels (their differences are in spl__rpc_conn_ops).
 *
 * Sending. Frames queue under send_mu. Exactly one thread at a time is the writer
 * (`writing`): it builds iovecs over header, meta, attachment slices and trailer of as
 * many queued frames as fit SPL__RPC_IOV_MAX, sends them with one sendmsg, and pops what
 * was written; others just append and leave. A thread that is not the IO thread becomes
 * the writer at once when the queue was idle (no thread hop on the fast path); on the IO
 * thread frames wait until the loop's check/prepare phase flushes the connection, which
 * batches every frame queued during one event loop iteration. A full socket hands the
 * queue to the IO thread, which watches POLLOUT.
 *
 * Receiving (IO thread): read into the tail block of rbuf until EAGAIN or a budget, then
 * cut whole frames out (meta and attachment share rbuf's blocks). Reading pauses while
 * the owner says so (server back-pressure); frames already buffered wait in rbuf.
 *
 * Lifetime: the "open" reference is dropped after close_cb; the fd is closed with the
 * last reference, so a writer on another thread never writes to a reused descriptor
 * (closing shuts the socket down first, which makes such a writer fail with EPIPE).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "rpc.pb-c.h"
#include "rpc/rpc_internal.h"

#define SPL__RPC_IOV_MAX 512              /* iovecs per sendmsg (kernel UIO_MAXIOV: 1024) */
#define SPL__RPC_FLUSH_EARLY_BYTES (256u << 10) /* queued bytes that are written before the
                                                 * rest of a read batch is handled */
#define SPL__RPC_READ_BUDGET (1u << 20)   /* bytes read per readable event (fairness) */
#define SPL__RPC_READ_MIN 2048            /* smallest tail space worth a read(2) */
#define SPL__RPC_WRITE_ROUNDS_FOREIGN 8   /* sendmsg rounds before handing to the IO thread */
#define SPL__RPC_WRITE_ROUNDS_LOOP 64

/* ---- outgoing frames ---- */

int spl__rpc_out_new(const ProtobufCMessage *msg, struct spl__rpc_out **out)
{
    size_t len = msg != NULL ? protobuf_c_message_get_packed_size(msg) : 0;
    if (len > SPL_RPC_META_MAX)
        return SPL_ETOOBIG;
    struct spl__rpc_loop *loop = spl__rpc_tls_loop;
    struct spl__rpc_out *o;
    if (loop != NULL && loop->free_outs != NULL) {
        o = loop->free_outs;
        loop->free_outs = o->next;
        loop->free_out_count--;
    } else if ((o = malloc(sizeof(*o))) == NULL) {
        return -ENOMEM;
    }
    o->next = NULL;
    o->meta = o->meta_inline;
    spl_iobuf_init(&o->attach);
    if (len > sizeof(o->meta_inline)) {
        o->meta = malloc(len);
        if (o->meta == NULL) {
            o->meta = o->meta_inline;
            spl__rpc_out_free(o);
            return -ENOMEM;
        }
    }
    if (len > 0)
        ASSERT(protobuf_c_message_pack(msg, o->meta) == len);
    o->meta_len = (uint32_t)len;
    o->kind = SPL__RPC_OUT_REQUEST;
    o->has_trailer = false;
    o->status = 0;
    o->stats = NULL;
    o->start_ns = 0;
    *out = o;
    return 0;
}

void spl__rpc_out_seal(struct spl__rpc_out *o, uint8_t flags, uint16_t service_id,
                       uint16_t method_index, uint64_t request_id)
{
    ASSERT(spl_iobuf_len(&o->attach) <= SPL_RPC_ATTACH_MAX);
    struct spl_rpc_header h = {
        .version = SPL_RPC_VERSION,
        .flags = flags,
        .service_id = service_id,
        .method_index = method_index,
        .meta_len = o->meta_len,
        .request_id = request_id,
        .attach_len = (uint32_t)spl_iobuf_len(&o->attach),
    };
    spl_rpc_header_encode(&h, o->hdr);
    o->has_trailer = (flags & SPL_RPC_FLAG_PAYLOAD_CRC) != 0;
    if (o->has_trailer)
        spl_rpc_put_le32(o->trailer, spl_rpc_payload_crc(o->meta, o->meta_len, &o->attach));
}

uint64_t spl__rpc_out_bytes(const struct spl__rpc_out *o)
{
    return SPL_RPC_HEADER_SIZE + o->meta_len + spl_iobuf_len(&o->attach) +
           (o->has_trailer ? SPL_RPC_TRAILER_SIZE : 0);
}

void spl__rpc_out_free(struct spl__rpc_out *o)
{
    if (o->meta != o->meta_inline)
        free(o->meta);
    spl__rpc_iobuf_clear(&o->attach);
    struct spl__rpc_loop *loop = spl__rpc_tls_loop;
    if (loop != NULL && loop->free_out_count < SPL__RPC_FREE_LIST_MAX) {
        o->next = loop->free_outs;
        loop->free_outs = o;
        loop->free_out_count++;
        return;
    }
    free(o);
}

int spl__rpc_out_error(int code, const char *message, const char *leader_hint,
                       uint16_t service_id, uint16_t method_index, uint64_t request_id,
                       struct spl__rpc_out **out)
{
    ASSERT(code < 0);
    char msg[SPL_RPC_ERROR_MESSAGE_MAX];
    char hint[SPL_RPC_LEADER_HINT_MAX];
    snprintf(msg, sizeof(msg), "%s", message != NULL ? message : spl_strerror(code));
    snprintf(hint, sizeof(hint), "%s", leader_hint != NULL ? leader_hint : "");
    Spline__RpcErrorMeta em = SPLINE__RPC_ERROR_META__INIT;
    em.code = spl_err_to_wire(code);
    em.message = msg;
    em.leader_hint = hint;
    int rc = spl__rpc_out_new(&em.base, out);
    if (rc != 0)
        return rc;
    spl__rpc_out_seal(*out, SPL_RPC_FLAG_RESPONSE | SPL_RPC_FLAG_ERROR, service_id,
                      method_index, request_id);
    (*out)->status = code;
    return 0;
}

/* ---- references ---- */

void spl__rpc_conn_ref(struct spl__rpc_conn *c)
{
    int old = atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    ASSERT(old > 0);
}

void spl__rpc_conn_unref(struct spl__rpc_conn *c)
{
    int old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    ASSERT(old > 0);
    if (old != 1)
        return;
    ASSERT(c->sq_head == NULL && !c->in_dirty);
    if (c->fd >= 0)
        close(c->fd);
    spl_iobuf_reset(&c->rbuf);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}

void spl__rpc_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, len, "?");
    }
}

static void spl_rpc_conn_kick_run(struct spl__rpc_task *task);

int spl__rpc_conn_new(struct spl__rpc_loop *loop, int fd, const struct spl__rpc_conn_ops *ops,
                      void *owner, struct spl__rpc_conn **out)
{
    struct spl__rpc_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->ops = ops;
    c->owner = owner;
    atomic_init(&c->refs, 1);
    c->fd = fd;
    c->poll_events = -1;
    c->reading = true;
    spl_iobuf_init(&c->rbuf);
    spl_rpc_parser_init(&c->parser, 0, 0);
    c->parser.flat_meta = true;
    c->kick.run_cb = spl_rpc_conn_kick_run;
    pthread_mutex_init(&c->send_mu, NULL);
    atomic_init(&c->inflight, 0);
    atomic_init(&c->read_paused, false);
    snprintf(c->peer, sizeof(c->peer), "?");
    *out = c;
    return 0;
}

/* ---- sending ---- */

/* Fill iov with the part of frame o from byte `off`; returns iovecs used and sets
 * *complete when the whole rest of the frame fit. */
static int spl_rpc_out_iov(const struct spl__rpc_out *o, uint64_t off, struct iovec *iov,
                           int iov_max, bool *complete)
{
    int n = 0;
    *complete = false;
    const uint64_t meta_end = SPL_RPC_HEADER_SIZE + o->meta_len;
    const uint64_t attach_len = spl_iobuf_len(&o->attach);
    const uint64_t attach_end = meta_end + attach_len;
    if (off < SPL_RPC_HEADER_SIZE) {
        if (n == iov_max)
            return n;
        iov[n].iov_base = (uint8_t *)o->hdr + off;
        iov[n++].iov_len = SPL_RPC_HEADER_SIZE - off;
        off = SPL_RPC_HEADER_SIZE;
    }
    if (off < meta_end) {
        if (n == iov_max)
            return n;
        iov[n].iov_base = o->meta + (off - SPL_RPC_HEADER_SIZE);
        iov[n++].iov_len = meta_end - off;
        off = meta_end;
    }
    if (off < attach_end) {
        if (n == iov_max)
            return n;
        uint64_t bytes = 0;
        n += spl_iobuf_to_iovec(&o->attach, off - meta_end, iov + n, iov_max - n, &bytes);
        if (off + bytes < attach_end)
            return n;
    }
    if (o->has_trailer) {
        uint64_t toff = off > attach_end ? off - attach_end : 0;
        if (n == iov_max)
            return n;
        iov[n].iov_base = (uint8_t *)o->trailer + toff;
        iov[n++].iov_len = SPL_RPC_TRAILER_SIZE - toff;
    }
    *complete = true;
    return n;
}

/* Under send_mu: iovecs for the queue from its head. */
static int spl_rpc_conn_build_iov(struct spl__rpc_conn *c, struct iovec *iov)
{
    int n = 0;
    uint64_t off = c->sq_head_off;
    for (struct spl__rpc_out *o = c->sq_head; o != NULL && n < SPL__RPC_IOV_MAX; o = o->next) {
        bool complete;
        n += spl_rpc_out_iov(o, off, iov + n, SPL__RPC_IOV_MAX - n, &complete);
        if (!complete)
            break;
        off = 0;
    }
    return n;
}

/* Under send_mu: pop `written` bytes off the queue; finished frames go to *done. */
static void spl_rpc_conn_advance(struct spl__rpc_conn *c, uint64_t written,
                                 struct spl__rpc_out **done)
{
    while (written > 0) {
        struct spl__rpc_out *o = c->sq_head;
        ASSERT(o != NULL);
        uint64_t rest = spl__rpc_out_bytes(o) - c->sq_head_off;
        if (written < rest) {
            c->sq_head_off += written;
            return;
        }
        written -= rest;
        atomic_fetch_sub_explicit(&c->sq_bytes, spl__rpc_out_bytes(o), memory_order_relaxed);
        c->sq_head = o->next;
        if (c->sq_head == NULL)
            c->sq_tail = NULL;
        c->sq_head_off = 0;
        o->next = *done;
        *done = o;
    }
}

/* Under send_mu: take the whole queue (closing). */
static struct spl__rpc_out *spl_rpc_conn_take_queue(struct spl__rpc_conn *c)
{
    struct spl__rpc_out *q = c->sq_head;
    c->sq_head = c->sq_tail = NULL;
    c->sq_head_off = 0;
    atomic_store_explicit(&c->sq_bytes, 0, memory_order_relaxed);
    return q;
}

static void spl_rpc_conn_finish(struct spl__rpc_conn *c, struct spl__rpc_out *list, bool written)
{
    uint64_t now_ns = list != NULL ? spl_mono_ns() : 0;
    while (list != NULL) {
        struct spl__rpc_out *o = list;
        list = o->next;
        c->ops->sent_cb(c, o, written, now_ns);
        spl__rpc_out_free(o);
    }
}

/* The writer: called with send_mu held and c->writing set by this thread (the caller
 * took the role under the same hold of the lock). Writes until the queue is empty, the
 * socket is full (then POLLOUT takes over) or the round budget is spent (then the IO
 * thread continues). Clears c->writing and releases send_mu. */
static void spl_rpc_conn_write(struct spl__rpc_conn *c, int rounds)
{
    struct iovec iov[SPL__RPC_IOV_MAX];
    struct spl__rpc_out *done = NULL;
    struct spl__rpc_out *dropped = NULL;
    bool need_kick = false;
    bool failed = false;
    ASSERT(c->writing);
    for (int round = 0;; round++) {
        if (c->send_closed) {
            dropped = spl_rpc_conn_take_queue(c);
            break;
        }
        if (c->sq_head == NULL)
            break;
        if (round == rounds) {
            c->kick_flush = true;
            need_kick = true;
            break;
        }
        int n = spl_rpc_conn_build_iov(c, iov);
        pthread_mutex_unlock(&c->send_mu);
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        int err = w < 0 ? errno : 0;
        pthread_mutex_lock(&c->send_mu);
        if (w >= 0) {
            spl_rpc_conn_advance(c, (uint64_t)w, &done);
            continue;
        }
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            atomic_store_explicit(&c->want_pollout, true, memory_order_relaxed);
            need_kick = true;
            break;
        }
        failed = true; /* the read side sees the reset too; close from the IO thread */
        need_kick = true;
        dropped = spl_rpc_conn_take_queue(c);
        c->send_closed = true;
        break;
    }
    c->writing = false;
    pthread_mutex_unlock(&c->send_mu);
    spl_rpc_conn_finish(c, done, true);
    spl_rpc_conn_finish(c, dropped, false);
    if (failed)
        LOG_DEBUG(SPL__RPC_TAG, "conn %s: send failed", c->peer);
    if (need_kick)
        spl__rpc_conn_kick(c);
}

static void spl_rpc_conn_mark_dirty(struct spl__rpc_conn *c)
{
    ASSERT(spl__rpc_on_loop(c->loop));
    if (c->in_dirty)
        return;
    spl__rpc_conn_ref(c);
    c->in_dirty = true;
    c->dirty_next = c->loop->dirty;
    c->loop->dirty = c;
}

int spl__rpc_conn_send(struct spl__rpc_conn *c, struct spl__rpc_out *o)
{
    ASSERT(o->next == NULL);
    bool on_loop = spl__rpc_on_loop(c->loop);
    pthread_mutex_lock(&c->send_mu);
    if (c->send_closed) {
        pthread_mutex_unlock(&c->send_mu);
        c->ops->sent_cb(c, o, false, spl__rpc_now());
        spl__rpc_out_free(o);
        return SPL_ERPC_CONNCLOSED;
    }
    bool idle = c->sq_head == NULL && !c->writing &&
                !atomic_load_explicit(&c->want_pollout, memory_order_relaxed) && !c->kick_flush;
    if (c->sq_tail != NULL)
        c->sq_tail->next = o;
    else
        c->sq_head = o;
    c->sq_tail = o;
    atomic_fetch_add_explicit(&c->sq_bytes, spl__rpc_out_bytes(o), memory_order_relaxed);
    if (!idle || on_loop) {
        pthread_mutex_unlock(&c->send_mu);
        if (on_loop)
            spl_rpc_conn_mark_dirty(c);
        return 0;
    }
    c->writing = true;
    spl_rpc_conn_write(c, SPL__RPC_WRITE_ROUNDS_FOREIGN); /* releases send_mu */
    return 0;
}

/* IO thread: become the writer unless someone is, or POLLOUT is awaited. */
static void spl_rpc_conn_flush(struct spl__rpc_conn *c)
{
    pthread_mutex_lock(&c->send_mu);
    c->kick_flush = false;
    if (c->writing || atomic_load_explicit(&c->want_pollout, memory_order_relaxed) ||
        c->sq_head == NULL || c->send_closed) {
        pthread_mutex_unlock(&c->send_mu);
        return;
    }
    c->writing = true;
    spl_rpc_conn_write(c, SPL__RPC_WRITE_ROUNDS_LOOP); /* releases send_mu */
}

void spl__rpc_conn_flush_now(struct spl__rpc_conn *c) { spl_rpc_conn_flush(c); }

void spl__rpc_loop_flush_dirty(struct spl__rpc_loop *loop)
{
    while (loop->dirty != NULL) {
        struct spl__rpc_conn *c = loop->dirty;
        loop->dirty = c->dirty_next;
        c->in_dirty = false;
        c->dirty_next = NULL;
        spl_rpc_conn_flush(c);
        spl__rpc_conn_unref(c);
    }
}

/* ---- polling ---- */

static void spl_rpc_conn_on_poll(uv_poll_t *h, int status, int events);

/* IO thread: watch what the connection needs now. */
static void spl_rpc_conn_update_poll(struct spl__rpc_conn *c)
{
    if (c->closing || c->poll_events < 0)
        return;
    bool pollout = atomic_load_explicit(&c->want_pollout, memory_order_relaxed);
    int events = 0;
    if (c->connecting)
        events = UV_WRITABLE;
    else
        events = (c->reading ? UV_READABLE : 0) | (pollout ? UV_WRITABLE : 0);
    if (events == c->poll_events)
        return;
    c->poll_events = events;
    int rc = events != 0 ? uv_poll_start(&c->poll, events, spl_rpc_conn_on_poll)
                         : uv_poll_stop(&c->poll);
    if (rc != 0) {
        LOG_WARN(SPL__RPC_TAG, "conn %s: poll: %s", c->peer, uv_strerror(rc));
        spl__rpc_conn_close(c, SPL_ERPC_CONNCLOSED);
    }
}

int spl__rpc_conn_start(struct spl__rpc_conn *c)
{
    ASSERT(spl__rpc_on_loop(c->loop));
    ASSERT(c->poll_events < 0);
    int rc = uv_poll_init_socket(&c->loop->uv, &c->poll, c->fd);
    if (rc != 0)
        return rc;
    c->poll.data = c;
    c->poll_events = 0;
    spl_rpc_conn_update_poll(c);
    return 0;
}

/* IO thread: parse and hand out every whole frame in rbuf while reading is on. */
static void spl_rpc_conn_parse(struct spl__rpc_conn *c)
{
    while (c->reading && !c->closing) {
        struct spl_rpc_frame f;
        spl_rpc_frame_init(&f);
        int rc = spl_rpc_parser_next(&c->parser, &c->rbuf, &f);
        if (rc == 0)
            return;
        if (rc == 1) {
            c->ops->frame_cb(c, &f);
            spl_rpc_frame_reset(&f);
            continue;
        }
        const struct spl_rpc_header *hdr = NULL;
        if (rc == SPL_ECORRUPT)
            hdr = &f.hdr;
        else if (c->parser.have_header)
            hdr = &c->parser.hdr;
        c->ops->error_cb(c, rc, hdr);
        if (rc != SPL_ECORRUPT) {
            LOG_WARN(SPL__RPC_TAG, "conn %s: %s: closing", c->peer, spl_strerror(rc));
            spl__rpc_conn_close(c, rc);
            return;
        }
    }
}

/* IO thread: one read(2) into the tail of rbuf. Returns the bytes read (> 0), 0 when
 * nothing was there, or the reason to close (SPL_ERPC_CONNCLOSED on EOF or error, -ENOMEM).
 * *drained: the socket had less than the space offered (no need to read again now). */
static int spl_rpc_conn_read_once(struct spl__rpc_conn *c, bool *drained)
{
    *drained = true;
    for (;;) {
        void *ptr;
        size_t avail;
        if (spl_iobuf_reserve(&c->rbuf, SPL__RPC_READ_MIN, &ptr, &avail) != 0)
            return -ENOMEM;
        ssize_t n = read(c->fd, ptr, avail);
        if (n > 0) {
            spl_iobuf_commit(&c->rbuf, (size_t)n);
            c->loop->traffic = true;
            *drained = (size_t)n < avail;
            return (int)n;
        }
        spl_iobuf_commit(&c->rbuf, 0);
        if (n == 0)
            return SPL_ERPC_CONNCLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return SPL_ERPC_CONNCLOSED;
    }
}

/* IO thread: read and hand out frames chunk by chunk, up to the budget. What the frames
 * produced (replies, follow-up calls) is written once per batch (check phase), or as soon
 * as SPL__RPC_FLUSH_EARLY_BYTES are queued so that the peer can start on a large batch.
 * Measured on the loaded 2-core machine, flushing after every chunk cost more system
 * calls than the overlap won (docs/rpc.md). */
static void spl_rpc_conn_read_all(struct spl__rpc_conn *c)
{
    size_t total = 0;
    while (c->reading && !c->closing) {
        bool drained;
        int rc = spl_rpc_conn_read_once(c, &drained);
        spl_rpc_conn_parse(c);
        if (c->in_dirty && atomic_load_explicit(&c->sq_bytes, memory_order_relaxed) >=
                               SPL__RPC_FLUSH_EARLY_BYTES)
            spl_rpc_conn_flush(c);
        if (rc < 0) {
            if (!c->closing)
                spl__rpc_conn_close(c, rc);
            return;
        }
        total += (size_t)rc;
        if (rc == 0 || drained || total >= SPL__RPC_READ_BUDGET)
            return;
    }
}

static void spl_rpc_conn_on_connected(struct spl__rpc_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        c->connecting = false;
        spl_rpc_conn_update_poll(c);
    }
    c->ops->connect_cb(c, -err);
}

static void spl_rpc_conn_on_poll(uv_poll_t *h, int status, int events)
{
    struct spl__rpc_conn *c = h->data;
    if (c->closing)
        return;
    c->loop->now_ns = spl_mono_ns();
    spl__rpc_conn_ref(c);
    if (c->connecting) {
        spl_rpc_conn_on_connected(c);
        goto out_unref;
    }
    if (status < 0) {
        /* POLLERR (e.g. a reset): libuv has already stopped this handle. Take what can
         * still be read, hand out whole frames, close. */
        c->poll_events = 0;
        bool drained;
        spl_rpc_conn_read_once(c, &drained);
        spl_rpc_conn_parse(c);
        if (!c->closing)
            spl__rpc_conn_close(c, SPL_ERPC_CONNCLOSED);
        goto out_unref;
    }
    if (events & UV_WRITABLE) {
        pthread_mutex_lock(&c->send_mu);
        atomic_store_explicit(&c->want_pollout, false, memory_order_relaxed);
        pthread_mutex_unlock(&c->send_mu);
        spl_rpc_conn_flush(c);
    }
    if ((events & UV_READABLE) && c->reading)
        spl_rpc_conn_read_all(c);
    spl_rpc_conn_update_poll(c);
out_unref:
    spl__rpc_conn_unref(c);
}

void spl__rpc_conn_set_reading(struct spl__rpc_conn *c, bool on)
{
    ASSERT(spl__rpc_on_loop(c->loop));
    if (c->reading == on || c->closing)
        return;
    c->reading = on;
    atomic_store_explicit(&c->read_paused, !on, memory_order_release);
    if (on)
        spl_rpc_conn_parse(c); /* frames that arrived before the pause */
    spl_rpc_conn_update_poll(c);
}

static void spl_rpc_conn_kick_run(struct spl__rpc_task *task)
{
    struct spl__rpc_conn *c = (struct spl__rpc_conn *)((char *)task -
                                                       __builtin_offsetof(struct spl__rpc_conn,
                                                                          kick));
    if (!c->closing && c->poll_events < 0) {
        int rc = spl__rpc_conn_start(c); /* accepted: first event on its IO thread */
        if (rc != 0) {
            LOG_WARN(SPL__RPC_TAG, "conn %s: poll: %s", c->peer, uv_strerror(rc));
            spl__rpc_conn_close(c, SPL_ERPC_CONNCLOSED);
        }
    }
    if (!c->closing) {
        pthread_mutex_lock(&c->send_mu);
        bool failed = c->send_closed;
        bool flush = c->kick_flush;
        pthread_mutex_unlock(&c->send_mu);
        if (failed) {
            spl__rpc_conn_close(c, SPL_ERPC_CONNCLOSED);
        } else {
            if (flush)
                spl_rpc_conn_mark_dirty(c);
            if (!c->reading && spl__rpc_server_conn_may_read(c))
                spl__rpc_conn_set_reading(c, true);
            spl_rpc_conn_update_poll(c);
        }
    }
    spl__rpc_conn_unref(c);
}

void spl__rpc_conn_kick(struct spl__rpc_conn *c)
{
    spl__rpc_conn_ref(c);
    if (!spl__rpc_loop_post(c->loop, &c->kick))
        spl__rpc_conn_unref(c);
}

/* ---- closing ---- */

static void spl_rpc_conn_on_closed(uv_handle_t *h)
{
    struct spl__rpc_conn *c = h->data;
    spl_iobuf_reset(&c->rbuf);
    c->ops->close_cb(c);
    spl__rpc_conn_unref(c); /* the open reference */
}

void spl__rpc_conn_close(struct spl__rpc_conn *c, int reason)
{
    ASSERT(spl__rpc_on_loop(c->loop));
    if (c->closing)
        return;
    c->closing = true;
    LOG_DEBUG(SPL__RPC_TAG, "conn %s: close (%s)", c->peer, spl_errname(reason));
    pthread_mutex_lock(&c->send_mu);
    c->send_closed = true;
    struct spl__rpc_out *dropped = c->writing ? NULL : spl_rpc_conn_take_queue(c);
    pthread_mutex_unlock(&c->send_mu);
    spl_rpc_conn_finish(c, dropped, false);
    shutdown(c->fd, SHUT_RDWR);
    if (c->poll_events >= 0) {
        uv_close((uv_handle_t *)&c->poll, spl_rpc_conn_on_closed);
    } else {
        /* never started: no handle to wait for */
        c->poll.data = c;
        spl_rpc_conn_on_closed((uv_handle_t *)&c->poll);
    }
}
