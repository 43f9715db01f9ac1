/*
 * server.c - listening, accepting, dispatching requests to handlers, replies from any
 * thread, per-connection back-pressure.
 *
 * The listener lives on IO thread 0; accepted connections go round-robin to the IO
 * threads. A request frame is dispatched on its connection's IO thread: look up the
 * method, decode the meta (into an arena inside the call object, so small requests cost
 * no allocation in protobuf-c), run the handler. Errors that are not the handler's
 * (unknown method, undecodable meta, payload CRC mismatch) are answered right there.
 *
 * Back-pressure: a connection counts requests from dispatch until their reply has been
 * written (or dropped). At inflight_per_conn it stops reading; it resumes once half of
 * them are answered. Nothing is dropped: the client's frames wait in the socket buffers.
 *
 * Fatal frame errors: an unauthentic header (wrong magic, CRC mismatch) closes the
 * connection at once; an authentic one that cannot be served (version, oversize, bad
 * flags) gets an error reply naming its request, then the connection closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "rpc/rpc_internal.h"

#define SPL__RPC_CALL_ARENA 512   /* bytes for protobuf-c's decode of one request */
#define SPL__RPC_ACCEPT_BATCH 64  /* accepts per readable event */
#define SPL__RPC_LISTEN_BACKLOG 1024

struct spl_rpc_server_svc {
    const struct spl_rpc_service *svc;
    void *ctx;
    struct spl__rpc_method_stats *stats[SPL_RPC_METHODS_PER_SERVICE_MAX];
};

struct spl_rpc_server {
    spl_rpc_runtime *rt;
    char host[64];
    uint16_t port;
    uint32_t inflight_max;
    uint32_t conns_max;
    struct spl_rpc_server_svc svcs[SPL_RPC_SERVICES_MAX];
    uint32_t svc_count;
    struct spl__rpc_method_stats *unknown_stats;
    bool started;
    int listen_fd;
    struct spl__rpc_loop *accept_loop;
    uv_poll_t listen_poll;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool listening;               /* listen_poll open (mu) */
    bool stopping;                /* (mu) */
    struct spl__rpc_conn *conns;  /* (mu) */
    uint32_t conn_count;          /* (mu) */
};

struct spl_rpc_call {
    struct spl__rpc_conn *conn;
    spl_rpc_runtime *rt;
    const struct spl_rpc_service *svc;
    const struct spl_rpc_method *method;
    struct spl__rpc_method_stats *stats;
    ProtobufCMessage *req;
    struct spl_iobuf attachment;
    uint64_t request_id;
    uint64_t start_ns;
    uint8_t reply_flags; /* PAYLOAD_CRC when the request had it */
    ProtobufCAllocator alloc;
    size_t arena_used;
    _Alignas(16) uint8_t arena[SPL__RPC_CALL_ARENA];
};

/* ---- the call arena (protobuf-c allocator) ---- */

static void *spl_rpc_arena_alloc(void *data, size_t size)
{
    struct spl_rpc_call *call = data;
    size_t need = (size + 15) & ~(size_t)15;
    if (need <= sizeof(call->arena) - call->arena_used) {
        void *p = call->arena + call->arena_used;
        call->arena_used += need;
        return p;
    }
    return malloc(size);
}

static void spl_rpc_arena_free(void *data, void *ptr)
{
    struct spl_rpc_call *call = data;
    uint8_t *p = ptr;
    if (p >= call->arena && p < call->arena + sizeof(call->arena))
        return;
    free(ptr);
}

/* ---- calls ---- */

const ProtobufCMessage *spl_rpc_call_request(const spl_rpc_call *call) { return call->req; }
struct spl_iobuf *spl_rpc_call_attachment(spl_rpc_call *call) { return &call->attachment; }
const char *spl_rpc_call_peer(const spl_rpc_call *call) { return call->conn->peer; }
const struct spl_rpc_method *spl_rpc_call_method(const spl_rpc_call *call)
{
    return call->method;
}
const struct spl_rpc_service *spl_rpc_call_service(const spl_rpc_call *call)
{
    return call->svc;
}

static struct spl_rpc_call *spl_rpc_call_alloc(void)
{
    struct spl__rpc_loop *loop = spl__rpc_tls_loop;
    if (loop != NULL && loop->free_calls != NULL) {
        struct spl_rpc_call *call = loop->free_calls;
        loop->free_calls = *(void **)call;
        loop->free_call_count--;
        return call;
    }
    return malloc(sizeof(struct spl_rpc_call));
}

static void spl_rpc_call_release(struct spl_rpc_call *call)
{
    struct spl__rpc_loop *loop = spl__rpc_tls_loop;
    if (loop != NULL && loop->free_call_count < SPL__RPC_FREE_LIST_MAX) {
        *(void **)call = loop->free_calls;
        loop->free_calls = call;
        loop->free_call_count++;
        return;
    }
    free(call);
}

static void spl_rpc_call_free(struct spl_rpc_call *call)
{
    if (call->req != NULL)
        protobuf_c_message_free_unpacked(call->req, &call->alloc);
    spl__rpc_iobuf_clear(&call->attachment);
    spl_rpc_runtime *rt = call->rt;
    spl__rpc_conn_unref(call->conn);
    spl_rpc_call_release(call);
    spl__rpc_runtime_call_done(rt);
}

static int spl_rpc_call_send(struct spl_rpc_call *call, struct spl__rpc_out *o)
{
    o->kind = SPL__RPC_OUT_REPLY;
    o->stats = call->stats;
    o->start_ns = call->start_ns;
    int rc = spl__rpc_conn_send(call->conn, o);
    spl_rpc_call_free(call);
    return rc;
}

/* A reply could not even be built: account for the request as if its reply was lost. */
static void spl_rpc_call_abandon(struct spl_rpc_call *call, int err)
{
    LOG_ERROR(SPL__RPC_TAG, "%s.%s from %s: reply lost: %s", call->svc->name, call->method->name,
              call->conn->peer, spl_strerror(err));
    atomic_fetch_sub(&call->conn->inflight, 1);
    spl__rpc_stats_error(call->stats, err);
    spl__rpc_conn_kick(call->conn);
    spl_rpc_call_free(call);
}

int spl_rpc_reply_redirect(spl_rpc_call *call, int code, const char *message,
                           const char *leader_hint)
{
    ASSERT(call != NULL);
    ASSERTF(code < 0, "code %d", code);
    struct spl__rpc_out *o;
    int rc = spl__rpc_out_error(code, message, leader_hint, call->svc->id,
                                (uint16_t)(call->method - call->svc->methods), call->request_id,
                                &o);
    if (rc != 0) {
        spl_rpc_call_abandon(call, rc);
        return rc;
    }
    return spl_rpc_call_send(call, o);
}

int spl_rpc_reply_error(spl_rpc_call *call, int code, const char *message)
{
    return spl_rpc_reply_redirect(call, code, message, NULL);
}

int spl_rpc_reply(spl_rpc_call *call, const ProtobufCMessage *resp, struct spl_iobuf *attachment)
{
    ASSERT(call != NULL);
    ASSERTF(resp == NULL || resp->descriptor == call->method->response,
            "%s.%s: reply of type %s", call->svc->name, call->method->name,
            resp->descriptor->name);
    if (attachment != NULL && spl_iobuf_len(attachment) > SPL_RPC_ATTACH_MAX) {
        spl_rpc_reply_error(call, SPL_ETOOBIG, "reply attachment exceeds SPL_RPC_ATTACH_MAX");
        return SPL_ETOOBIG;
    }
    struct spl__rpc_out *o;
    int rc = spl__rpc_out_new(resp, &o);
    if (rc == SPL_ETOOBIG) {
        spl_rpc_reply_error(call, SPL_ETOOBIG, "reply meta exceeds SPL_RPC_META_MAX");
        return rc;
    }
    if (rc != 0) {
        spl_rpc_call_abandon(call, rc);
        return rc;
    }
    if (attachment != NULL)
        spl_iobuf_move(&o->attach, attachment);
    spl__rpc_out_seal(o, SPL_RPC_FLAG_RESPONSE | call->reply_flags, call->svc->id,
                      (uint16_t)(call->method - call->svc->methods), call->request_id);
    return spl_rpc_call_send(call, o);
}

/* ---- dispatch (IO thread) ---- */

bool spl__rpc_server_conn_may_read(const struct spl__rpc_conn *c)
{
    return atomic_load(&c->inflight) <= c->inflight_max / 2;
}

static void spl_rpc_server_inflight_check(struct spl__rpc_conn *c)
{
    if (atomic_load(&c->inflight) < c->inflight_max || !c->reading)
        return;
    spl__rpc_conn_set_reading(c, false);
    /* Replies that finished between the count and the pause saw no pause: look again. */
    if (spl__rpc_server_conn_may_read(c))
        spl__rpc_conn_kick(c);
}

/* Answer request `h` with an error without a call object. Counts as in flight. */
static void spl_rpc_server_error_reply(struct spl__rpc_conn *c, const struct spl_rpc_header *h,
                                       struct spl__rpc_method_stats *stats, int code,
                                       const char *message)
{
    struct spl__rpc_out *o;
    atomic_fetch_add(&c->inflight, 1);
    if (spl__rpc_out_error(code, message, NULL, h->service_id, h->method_index, h->request_id,
                           &o) != 0) {
        atomic_fetch_sub(&c->inflight, 1);
        spl__rpc_stats_error(stats, code);
        return;
    }
    o->kind = SPL__RPC_OUT_REPLY;
    o->stats = stats;
    o->start_ns = spl__rpc_now();
    spl__rpc_conn_send(c, o);
}

static const struct spl_rpc_server_svc *spl_rpc_server_find(const struct spl_rpc_server *srv,
                                                            uint16_t service_id)
{
    for (uint32_t i = 0; i < srv->svc_count; i++)
        if (srv->svcs[i].svc->id == service_id)
            return &srv->svcs[i];
    return NULL;
}

static void spl_rpc_server_on_frame(struct spl__rpc_conn *c, struct spl_rpc_frame *f)
{
    struct spl_rpc_server *srv = c->owner;
    const struct spl_rpc_header *h = &f->hdr;
    uint64_t bytes = SPL_RPC_HEADER_SIZE + (uint64_t)h->meta_len + h->attach_len +
                     ((h->flags & SPL_RPC_FLAG_PAYLOAD_CRC) ? SPL_RPC_TRAILER_SIZE : 0);
    if (h->flags & SPL_RPC_FLAG_RESPONSE) {
        LOG_WARN(SPL__RPC_TAG, "conn %s: a response sent to a server: closing", c->peer);
        spl__rpc_stats_error(srv->unknown_stats, SPL_ERPC_BADFRAME);
        spl__rpc_conn_close(c, SPL_ERPC_BADFRAME);
        return;
    }
    const struct spl_rpc_server_svc *ss = spl_rpc_server_find(srv, h->service_id);
    const struct spl_rpc_method *m = NULL;
    if (ss != NULL && h->method_index < ss->svc->method_count)
        m = &ss->svc->methods[h->method_index];
    struct spl__rpc_method_stats *stats = m != NULL ? ss->stats[h->method_index]
                                                    : srv->unknown_stats;
    spl_counter_add(stats->bytes_in, bytes);
    if (m == NULL || m->handler == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "no method %u of service %u", h->method_index,
                 h->service_id);
        spl_rpc_server_error_reply(c, h, stats, SPL_ERPC_NOMETHOD, msg);
        goto out_check;
    }
    struct spl_rpc_call *call = spl_rpc_call_alloc();
    if (call == NULL) {
        spl_rpc_server_error_reply(c, h, stats, SPL_ERPC_OVERLOAD, "out of memory");
        goto out_check;
    }
    call->conn = c;
    call->rt = c->loop->rt;
    call->svc = ss->svc;
    call->method = m;
    call->stats = stats;
    call->req = NULL;
    call->request_id = h->request_id;
    call->start_ns = spl__rpc_now();
    call->reply_flags = h->flags & SPL_RPC_FLAG_PAYLOAD_CRC;
    call->alloc = (ProtobufCAllocator){spl_rpc_arena_alloc, spl_rpc_arena_free, call};
    call->arena_used = 0;
    spl_iobuf_init(&call->attachment);
    int rc = spl_rpc_frame_meta_unpack(m->request, f, &call->alloc, &call->req);
    if (rc != 0) {
        spl_rpc_call_release(call);
        char msg[160];
        snprintf(msg, sizeof(msg), "cannot decode %s.%s request (%u bytes)", ss->svc->name,
                 m->name, h->meta_len);
        spl_rpc_server_error_reply(c, h, stats, SPL_ERPC_BADMETA, msg);
        goto out_check;
    }
    spl_iobuf_move(&call->attachment, &f->attachment);
    spl__rpc_conn_ref(c);
    spl__rpc_runtime_call_started(call->rt);
    atomic_fetch_add(&c->inflight, 1);
    m->handler(call, ss->ctx);
out_check:
    spl_rpc_server_inflight_check(c);
}

static void spl_rpc_server_on_error(struct spl__rpc_conn *c, int err,
                                    const struct spl_rpc_header *h)
{
    struct spl_rpc_server *srv = c->owner;
    if (h == NULL) {
        spl__rpc_stats_error(srv->unknown_stats, err);
        return; /* unauthentic: the connection closes */
    }
    const char *why = err == SPL_ECORRUPT  ? "payload CRC mismatch"
                      : err == SPL_EVERSION ? "unsupported frame version"
                      : err == SPL_ETOOBIG  ? "frame exceeds the meta or attachment limit"
                                            : "malformed frame header";
    spl_rpc_server_error_reply(c, h, srv->unknown_stats, err, why);
    if (err != SPL_ECORRUPT)
        spl__rpc_conn_flush_now(c); /* best effort before the close that follows */
}

static void spl_rpc_server_on_sent(struct spl__rpc_conn *c, struct spl__rpc_out *o, bool written,
                                   uint64_t now_ns)
{
    if (o->kind != SPL__RPC_OUT_REPLY)
        return;
    unsigned left = atomic_fetch_sub(&c->inflight, 1) - 1;
    struct spl__rpc_method_stats *s = o->stats;
    if (s != NULL) {
        spl_counter_inc(s->requests);
        if (written)
            spl_counter_add(s->bytes_out, spl__rpc_out_bytes(o));
        spl_histogram_record(s->latency, now_ns > o->start_ns ? now_ns - o->start_ns : 0);
        if (o->status != 0)
            spl__rpc_stats_error(s, o->status);
        else if (!written)
            spl__rpc_stats_error(s, SPL_ERPC_CONNCLOSED);
    }
    if (written && atomic_load(&c->read_paused) && left <= c->inflight_max / 2)
        spl__rpc_conn_kick(c);
}

static void spl_rpc_server_on_connect(struct spl__rpc_conn *c, int status)
{
    ASSERTF(false, "server connections do not connect");
}

static void spl_rpc_server_on_close(struct spl__rpc_conn *c)
{
    struct spl_rpc_server *srv = c->owner;
    ASSERT(srv != NULL);
    pthread_mutex_lock(&srv->mu);
    if (c->list_prev != NULL)
        c->list_prev->list_next = c->list_next;
    else
        srv->conns = c->list_next;
    if (c->list_next != NULL)
        c->list_next->list_prev = c->list_prev;
    c->list_prev = c->list_next = NULL;
    c->owner = NULL;
    srv->conn_count--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
}

static const struct spl__rpc_conn_ops spl_rpc_server_conn_ops = {
    .frame_cb = spl_rpc_server_on_frame,
    .error_cb = spl_rpc_server_on_error,
    .sent_cb = spl_rpc_server_on_sent,
    .connect_cb = spl_rpc_server_on_connect,
    .close_cb = spl_rpc_server_on_close,
};

/* ---- accepting (IO thread 0) ---- */

static void spl_rpc_server_adopt(struct spl_rpc_server *srv, int fd,
                                 const struct sockaddr_storage *ss)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct spl__rpc_conn *c;
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping || srv->conn_count >= srv->conns_max) {
        pthread_mutex_unlock(&srv->mu);
        LOG_WARN(SPL__RPC_TAG, "server :%u: connection refused (%u open)", srv->port,
                 srv->conn_count);
        close(fd);
        return;
    }
    if (spl__rpc_conn_new(spl__rpc_runtime_pick(srv->rt), fd, &spl_rpc_server_conn_ops, srv,
                          &c) != 0) {
        pthread_mutex_unlock(&srv->mu);
        close(fd);
        return;
    }
    spl__rpc_format_addr((const struct sockaddr *)ss, c->peer, sizeof(c->peer));
    c->inflight_max = srv->inflight_max;
    c->list_next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->list_prev = c;
    srv->conns = c;
    srv->conn_count++;
    pthread_mutex_unlock(&srv->mu);
    LOG_DEBUG(SPL__RPC_TAG, "server :%u: accepted %s", srv->port, c->peer);
    spl__rpc_conn_kick(c); /* starts it on its IO thread */
}

static void spl_rpc_server_on_accept(uv_poll_t *h, int status, int events)
{
    struct spl_rpc_server *srv = h->data;
    for (int i = 0; i < SPL__RPC_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            spl_rpc_server_adopt(srv, fd, &ss);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            LOG_WARN(SPL__RPC_TAG, "server :%u: accept: %s", srv->port, spl_strerror(-errno));
        return;
    }
}

/* ---- life cycle ---- */

int spl_rpc_server_create(spl_rpc_runtime *rt, const struct spl_rpc_server_opts *opts,
                          spl_rpc_server **out)
{
    ASSERT(rt != NULL && out != NULL);
    struct spl_rpc_server_opts o = {0};
    if (opts != NULL)
        o = *opts;
    if (o.inflight_per_conn > SPL_RPC_INFLIGHT_PER_CONN_MAX || o.conns_max > SPL_RPC_CONNS_MAX)
        return -EINVAL;
    struct spl_rpc_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return -ENOMEM;
    srv->rt = rt;
    snprintf(srv->host, sizeof(srv->host), "%s", o.host != NULL ? o.host : "127.0.0.1");
    srv->port = o.port;
    srv->inflight_max = o.inflight_per_conn ? o.inflight_per_conn : SPL_RPC_INFLIGHT_PER_CONN_MAX;
    srv->conns_max = o.conns_max ? o.conns_max : SPL_RPC_CONNS_MAX;
    srv->listen_fd = -1;
    srv->unknown_stats = spl__rpc_stats_get(rt, true, NULL, 0);
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cond, NULL);
    atomic_fetch_add(&rt->objects, 1);
    *out = srv;
    return 0;
}

int spl_rpc_server_add_service(spl_rpc_server *srv, const struct spl_rpc_service *svc,
                               void *service_ctx)
{
    ASSERT(srv != NULL && svc != NULL);
    ASSERT(!srv->started);
    if (svc->name == NULL || svc->method_count > SPL_RPC_METHODS_PER_SERVICE_MAX ||
        (svc->method_count > 0 && svc->methods == NULL))
        return -EINVAL;
    for (uint32_t i = 0; i < svc->method_count; i++) {
        const struct spl_rpc_method *m = &svc->methods[i];
        if (m->name == NULL || m->request == NULL || m->response == NULL)
            return -EINVAL;
    }
    if (spl_rpc_server_find(srv, svc->id) != NULL)
        return -EEXIST;
    if (srv->svc_count == SPL_RPC_SERVICES_MAX)
        return -ENOSPC;
    struct spl_rpc_server_svc *ss = &srv->svcs[srv->svc_count++];
    ss->svc = svc;
    ss->ctx = service_ctx;
    for (uint32_t i = 0; i < svc->method_count; i++)
        ss->stats[i] = spl__rpc_stats_get(srv->rt, true, svc, i);
    return 0;
}

static int spl_rpc_server_bind(struct spl_rpc_server *srv)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(srv->port);
        len = sizeof(*in);
    } else if (inet_pton(AF_INET6, srv->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(srv->port);
        len = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SPL__RPC_LISTEN_BACKLOG) != 0)
        goto out_close;
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        goto out_close;
    srv->port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
    srv->listen_fd = fd;
    return 0;

out_close:;
    int err = -errno;
    close(fd);
    return err;
}

static void spl_rpc_server_listen_on_loop(void *arg)
{
    struct spl_rpc_server *srv = arg;
    ASSERT(uv_poll_init_socket(&srv->accept_loop->uv, &srv->listen_poll, srv->listen_fd) == 0);
    srv->listen_poll.data = srv;
    ASSERT(uv_poll_start(&srv->listen_poll, UV_READABLE, spl_rpc_server_on_accept) == 0);
    srv->listening = true;
}

int spl_rpc_server_start(spl_rpc_server *srv)
{
    ASSERT(srv != NULL && !srv->started);
    int rc = spl_rpc_server_bind(srv);
    if (rc != 0)
        return rc;
    srv->accept_loop = &srv->rt->loops[0];
    srv->started = true;
    spl__rpc_loop_run_sync(srv->accept_loop, spl_rpc_server_listen_on_loop, srv);
    LOG_INFO(SPL__RPC_TAG, "server listening on %s:%u", srv->host, srv->port);
    return 0;
}

uint16_t spl_rpc_server_port(const spl_rpc_server *srv) { return srv->port; }

static void spl_rpc_server_on_listen_closed(uv_handle_t *h)
{
    struct spl_rpc_server *srv = h->data;
    close(srv->listen_fd);
    pthread_mutex_lock(&srv->mu);
    srv->listen_fd = -1;
    srv->listening = false;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
}

static void spl_rpc_server_unlisten_on_loop(void *arg)
{
    struct spl_rpc_server *srv = arg;
    uv_close((uv_handle_t *)&srv->listen_poll, spl_rpc_server_on_listen_closed);
}

struct spl_rpc_server_closer {
    struct spl_rpc_server *srv;
    struct spl__rpc_loop *loop;
};

static void spl_rpc_server_close_conns_on_loop(void *arg)
{
    struct spl_rpc_server_closer *cl = arg;
    struct spl_rpc_server *srv = cl->srv;
    for (;;) {
        struct spl__rpc_conn *victim = NULL;
        pthread_mutex_lock(&srv->mu);
        for (struct spl__rpc_conn *c = srv->conns; c != NULL; c = c->list_next) {
            if (c->loop == cl->loop && !c->closing) {
                victim = c;
                spl__rpc_conn_ref(c);
                break;
            }
        }
        pthread_mutex_unlock(&srv->mu);
        if (victim == NULL)
            return;
        spl__rpc_conn_close(victim, SPL_ESHUTDOWN);
        spl__rpc_conn_unref(victim);
    }
}

void spl_rpc_server_destroy(spl_rpc_server *srv)
{
    if (srv == NULL)
        return;
    ASSERT(!spl_rpc_on_io_thread(srv->rt));
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->mu);
    if (srv->started) {
        spl__rpc_loop_run_sync(srv->accept_loop, spl_rpc_server_unlisten_on_loop, srv);
        pthread_mutex_lock(&srv->mu);
        while (srv->listening)
            pthread_cond_wait(&srv->cond, &srv->mu);
        pthread_mutex_unlock(&srv->mu);
    }
    for (uint32_t i = 0; i < srv->rt->loop_count; i++) {
        struct spl_rpc_server_closer cl = {srv, &srv->rt->loops[i]};
        spl__rpc_loop_run_sync(cl.loop, spl_rpc_server_close_conns_on_loop, &cl);
    }
    pthread_mutex_lock(&srv->mu);
    while (srv->conn_count > 0)
        pthread_cond_wait(&srv->cond, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    atomic_fetch_sub(&srv->rt->objects, 1);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
