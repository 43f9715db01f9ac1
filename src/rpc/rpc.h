/*
 * rpc.h - request/response RPC over TCP: the transport of every write, of Raft and of
 * the control plane.
 *
 * What it owns: framing (docs/rpc-frame.md: fixed header, protobuf-c meta, raw
 * attachment carried as a `struct spl_iobuf`, never copied through protobuf), TCP
 * connections, the IO threads that drive them, servers with registered services, client
 * channels with request-id matching, timeouts, cancellation, reconnect with backoff,
 * back-pressure, and the per-method metrics spline_rpc_server_* / spline_rpc_client_*.
 * What it leaves to others: what a method means (services own their messages), retries
 * of failed calls (callers decide; the outcome of a call that failed with
 * SPL_ERPC_TIMEDOUT or SPL_ERPC_CONNCLOSED is unknown), leader discovery.
 *
 * Threading model:
 * - A runtime (spl_rpc_runtime) owns N IO threads, each running one libuv loop. Every
 *   connection belongs to exactly one IO thread for its whole life: a channel is pinned
 *   to one (round-robin at open), an accepted server connection is handed to one
 *   (round-robin at accept). Reads, frame parsing, timeouts and callbacks for a
 *   connection all happen on its IO thread.
 * - spl_rpc_call_async / spl_rpc_call_sync / spl_rpc_cancel may be called from any
 *   thread. A call made off the IO thread writes its frame directly to the socket when
 *   nothing is queued ahead of it (no thread hop), else queues it for the IO thread.
 * - Completion callbacks (spl_rpc_done_cb) and server handlers (spl_rpc_handler_fn) run
 *   on the connection's IO thread. They must not block: no spl_rpc_call_sync, no disk
 *   I/O, no long locks. A handler with slow work hands the call to its own thread and
 *   replies later from there: spl_rpc_reply* are callable from any thread.
 * - Replies and calls issued on an IO thread are queued and flushed with one sendmsg per
 *   connection when that thread finishes the current read chunk or event (several frames
 *   per system call under load, and the peer starts on them while this side reads on).
 *
 * Lifetimes (libuv rules): a call that failed to start (non-zero return of
 * spl_rpc_call_async) never runs its callback; one that started runs it exactly once:
 * reply, error reply, timeout, cancel, connection loss or channel close. A handler's
 * call object lives until spl_rpc_reply*(); every call must be replied to exactly once,
 * also when its connection is gone (the reply is then dropped), and before the runtime
 * is destroyed. Destroy order: channels and servers, then the runtime.
 */
#ifndef SPL_RPC_RPC_H
#define SPL_RPC_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/limits.h"

struct spl_metrics;

typedef struct spl_rpc_runtime spl_rpc_runtime;
typedef struct spl_rpc_server spl_rpc_server;
typedef struct spl_rpc_channel spl_rpc_channel;
typedef struct spl_rpc_call spl_rpc_call; /* one request being served (server side) */

/* ---- services -------------------------------------------------------------------- */

/* Service ids: one closed set for the whole system, so that one server can host any mix.
 * XX(NAME, id, "name"). Add at the end; never renumber. */
#define SPL_RPC_SERVICE_TABLE(XX)                                                        \
    XX(SPL_RPC_SERVICE_ECHO, 1, "echo")                                                  \
    XX(SPL_RPC_SERVICE_RAFT, 2, "raft")                                                  \
    XX(SPL_RPC_SERVICE_CHUNK, 3, "chunk")                                                \
    XX(SPL_RPC_SERVICE_MDS, 4, "mds")                                                    \
    XX(SPL_RPC_SERVICE_HEARTBEAT, 5, "heartbeat")                                        \
    XX(SPL_RPC_SERVICE_TOPOLOGY, 6, "topology")                                          \
    XX(SPL_RPC_SERVICE_CLI, 7, "cli")                                                    \
    XX(SPL_RPC_SERVICE_COPYSET, 8, "copyset")

enum spl_rpc_service_id {
#define SPL__RPC_SVC_ENUM(name, id, str) name = id,
    SPL_RPC_SERVICE_TABLE(SPL__RPC_SVC_ENUM)
#undef SPL__RPC_SVC_ENUM
};

/* A handler serves one request. It runs on the connection's IO thread; `service_ctx` is
 * the pointer given to spl_rpc_server_add_service. It must eventually call exactly one
 * of spl_rpc_reply / spl_rpc_reply_error / spl_rpc_reply_redirect, now or later, from
 * any thread. */
typedef void (*spl_rpc_handler_fn)(spl_rpc_call *call, void *service_ctx);

/* One method. `name` is "Echo", used in logs and metric labels ("echo.Echo").
 * `request` and `response` are protobuf-c descriptors
 * (e.g. &spline__rpc_echo_request__descriptor). `handler` is used by servers only;
 * client-side tables may leave it NULL (a server answers a method without handler with
 * SPL_ERPC_NOMETHOD). */
struct spl_rpc_method {
    const char *name;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    spl_rpc_handler_fn handler;
};

/* One service: its id (enum spl_rpc_service_id), name, and its methods; the method index
 * on the wire is the position in `methods`. The table must outlive every server and
 * channel that uses it (normally a static const). */
struct spl_rpc_service {
    uint16_t id;
    const char *name;
    const struct spl_rpc_method *methods;
    uint32_t method_count; /* <= SPL_RPC_METHODS_PER_SERVICE_MAX */
};

/* The built-in echo service (proto/rpc.proto RpcEchoRequest/RpcEchoResponse), method 0
 * "Echo": replies with the text, seq and the attachment it got; honours delay_ms (replies
 * from a timer thread) and fail_code/fail_hint. For health checks, tests and benchmarks. */
extern const struct spl_rpc_service spl_rpc_echo_service;
#define SPL_RPC_ECHO_METHOD_ECHO 0u

/* ---- runtime --------------------------------------------------------------------- */

struct spl_rpc_runtime_opts {
    uint32_t io_threads; /* 0: default (1); at most SPL_RPC_IO_THREADS_MAX */
    const char *name;    /* thread name prefix, e.g. "cs-rpc"; NULL: "rpc" */
    struct spl_metrics *metrics; /* where spline_rpc_* go; NULL: spl_metrics_global() */
    uint32_t busy_poll_us; /* after an event loop iteration that read data, keep polling
                            * (non-blocking) for this long before sleeping in epoll_wait,
                            * to catch the next request or reply without a wake-up; 0: off
                            * (the default: see docs/rpc.md for the measurement). At most
                            * SPL_RPC_BUSY_POLL_US_MAX. */
};
#define SPL_RPC_BUSY_POLL_US_MAX 1000

/* spl_rpc_runtime_create - start the IO threads. opts may be NULL (defaults).
 * Returns 0 and *out, -EINVAL on bad opts, -ENOMEM, or a negated errno from thread or
 * loop creation (nothing is left running on failure). */
int spl_rpc_runtime_create(const struct spl_rpc_runtime_opts *opts, spl_rpc_runtime **out);

/* spl_rpc_runtime_destroy - stop and join the IO threads and free the runtime. Every
 * server and channel created on it must have been destroyed/closed (ASSERTed); server
 * calls still held by handlers are waited for (with a warning each second) until they
 * are replied to. Not from an IO thread. rt may be NULL. */
void spl_rpc_runtime_destroy(spl_rpc_runtime *rt);

/* spl_rpc_on_io_thread - true when the calling thread is one of rt's IO threads. */
bool spl_rpc_on_io_thread(const spl_rpc_runtime *rt);

/* ---- server ---------------------------------------------------------------------- */

struct spl_rpc_server_opts {
    const char *host;          /* IPv4/IPv6 literal to bind; NULL: "127.0.0.1" */
    uint16_t port;             /* 0: an ephemeral port (see spl_rpc_server_port) */
    uint32_t inflight_per_conn; /* 0: SPL_RPC_INFLIGHT_PER_CONN_MAX; requests read and
                                  not yet answered per connection before reads pause */
    uint32_t conns_max;        /* 0: SPL_RPC_CONNS_MAX; more connections are refused */
};

/* spl_rpc_server_create - a server bound to nothing yet. opts may be NULL. Returns 0 and
 * *out, -EINVAL or -ENOMEM. */
int spl_rpc_server_create(spl_rpc_runtime *rt, const struct spl_rpc_server_opts *opts,
                          spl_rpc_server **out);

/* spl_rpc_server_add_service - serve `svc` (which must outlive the server); handlers get
 * `service_ctx`. Only before spl_rpc_server_start. Returns 0, -EEXIST when a service
 * with this id is registered, -EINVAL for a malformed table (method without request or
 * response descriptor, too many methods), -ENOSPC beyond SPL_RPC_SERVICES_MAX. */
int spl_rpc_server_add_service(spl_rpc_server *srv, const struct spl_rpc_service *svc,
                               void *service_ctx);

/* spl_rpc_server_start - bind, listen and start accepting. Returns 0, or a negated errno
 * (-EADDRINUSE, -EADDRNOTAVAIL, -EINVAL for an unparsable host). */
int spl_rpc_server_start(spl_rpc_server *srv);

/* spl_rpc_server_port - the bound port (after a successful start). */
uint16_t spl_rpc_server_port(const spl_rpc_server *srv);

/* spl_rpc_server_destroy - stop accepting, close every connection (requests being served
 * keep their call objects; their replies are dropped), wait until the IO threads let go,
 * free. Not from an IO thread. srv may be NULL. */
void spl_rpc_server_destroy(spl_rpc_server *srv);

/* ---- server calls ---------------------------------------------------------------- */

/* The decoded request (of the method's request descriptor). Valid until the reply. */
const ProtobufCMessage *spl_rpc_call_request(const spl_rpc_call *call);
/* The request attachment. The handler may take it (spl_iobuf_move) or leave it. */
struct spl_iobuf *spl_rpc_call_attachment(spl_rpc_call *call);
/* The peer as "ip:port" (static for the call's life). */
const char *spl_rpc_call_peer(const spl_rpc_call *call);
/* The method being served (its service's table entry) and the service. */
const struct spl_rpc_method *spl_rpc_call_method(const spl_rpc_call *call);
const struct spl_rpc_service *spl_rpc_call_service(const spl_rpc_call *call);

/* spl_rpc_reply - answer `call` with `resp` (of the method's response descriptor; packed
 * before return, so the caller keeps ownership) and an attachment whose contents are
 * taken (moved; `attachment` is empty afterwards; NULL: none). Any thread. Frees the
 * call. Returns 0 when the reply was queued, SPL_ERPC_CONNCLOSED when the connection is
 * gone (reply dropped; the call is freed either way), SPL_ETOOBIG when resp or the
 * attachment exceed SPL_RPC_META_MAX / SPL_RPC_ATTACH_MAX (an error reply is sent
 * instead). */
int spl_rpc_reply(spl_rpc_call *call, const ProtobufCMessage *resp, struct spl_iobuf *attachment);

/* spl_rpc_reply_error - answer with an error: `code` is a negative code of errors.h
 * (ASSERT code < 0), `message` is for a person (NULL: spl_strerror(code)); it is cut at
 * SPL_RPC_ERROR_MESSAGE_MAX bytes. Any thread. Frees the call. Returns as spl_rpc_reply. */
int spl_rpc_reply_error(spl_rpc_call *call, int code, const char *message);

/* spl_rpc_reply_redirect - like spl_rpc_reply_error, plus a leader hint "host:port" the
 * caller should retry at (e.g. SPL_ENOTLEADER / SPL_EMDS_NOTLEADER). */
int spl_rpc_reply_redirect(spl_rpc_call *call, int code, const char *message,
                           const char *leader_hint);

#define SPL_RPC_ERROR_MESSAGE_MAX 1024
#define SPL_RPC_LEADER_HINT_MAX 256

/* ---- client channels ------------------------------------------------------------- */

struct spl_rpc_channel_opts {
    uint32_t call_timeout_ms;    /* default per-call timeout; 0: 5000 */
    uint32_t connect_timeout_ms; /* 0: 3000 */
    uint32_t backoff_initial_ms; /* first reconnect delay after a failure; 0: 50 */
    uint32_t backoff_max_ms;     /* cap of the doubling delay (+-25% jitter); 0: 5000 */
    uint32_t pending_max;        /* calls outstanding; 0: SPL_RPC_PENDING_PER_CHANNEL_MAX */
};

/* spl_rpc_channel_open - a channel to "host:port" ("[v6]:port" too; a name is resolved
 * once, here, with a blocking getaddrinfo on the calling thread). Returns at once; the
 * connection is made in the background and re-made after a loss (at once when it had
 * been up for a second, else after the backoff), with exponential backoff and jitter
 * between failed attempts, for as long as the channel is open. opts may be NULL.
 * Returns 0 and *out, -EINVAL for an unparsable or unresolvable address, -ENOMEM. */
int spl_rpc_channel_open(spl_rpc_runtime *rt, const char *address,
                         const struct spl_rpc_channel_opts *opts, spl_rpc_channel **out);

/* spl_rpc_channel_close - complete every outstanding call with SPL_ERPC_CANCELED (their
 * callbacks run on the IO thread before this returns), close the connection, free the
 * channel. Any thread except rt's IO threads. ch may be NULL. Calls started after close
 * began fail to start with SPL_ESHUTDOWN. */
void spl_rpc_channel_close(spl_rpc_channel *ch);

/* spl_rpc_channel_connected - true while the channel has an established connection. */
bool spl_rpc_channel_connected(const spl_rpc_channel *ch);

/* spl_rpc_channel_address - the address given at open. */
const char *spl_rpc_channel_address(const spl_rpc_channel *ch);

/* Per-call options; pass NULL for the channel's defaults. */
struct spl_rpc_call_opts {
    uint32_t timeout_ms;  /* 0: the channel's call_timeout_ms */
    bool wait_for_ready;  /* false (fail fast): while the channel is in reconnect backoff
                           * the call fails to start with SPL_ERPC_UNREACHABLE, and a call
                           * waiting for a connect completes with it when the connect
                           * fails; true: it waits for a connection until its timeout */
    bool payload_crc;     /* protect meta and attachment with a CRC32C (both directions) */
};

/* What a call ended with, handed to the done callback. Everything in it belongs to the
 * channel and is freed when the callback returns, except what the callback takes:
 * set `resp` to NULL after taking it (free it later with
 * protobuf_c_message_free_unpacked(resp, NULL)), spl_iobuf_move the attachment out. */
struct spl_rpc_result {
    int status;                 /* 0, an error code from the server, or a local one:
                                 * SPL_ERPC_TIMEDOUT, SPL_ERPC_CANCELED,
                                 * SPL_ERPC_CONNCLOSED, SPL_ERPC_UNREACHABLE,
                                 * SPL_ERPC_BADMETA (undecodable reply), SPL_ECORRUPT */
    ProtobufCMessage *resp;     /* status 0: the decoded response; else NULL */
    struct spl_iobuf attachment; /* status 0: the response attachment */
    const char *error_message;  /* status != 0: the server's or a local message; never NULL */
    const char *leader_hint;    /* status != 0: a "host:port" to retry at, or "" */
    uint64_t call_id;           /* as returned by spl_rpc_call_async */
};

typedef void (*spl_rpc_done_cb)(struct spl_rpc_result *result, void *ctx);

/* spl_rpc_call_async - start calling method `method_index` of `svc` with `req` (of the
 * method's request descriptor; packed before return, so the caller keeps ownership) and
 * an attachment whose contents are taken (moved: empty after a successful start; left
 * untouched on failure; NULL: none). `done_cb(result, ctx)` runs exactly once on the
 * channel's IO thread. *call_id_out (may be NULL) names the call for spl_rpc_cancel.
 * Any thread. Returns 0 (started), -EINVAL (bad method index or descriptor mismatch),
 * SPL_ETOOBIG (meta or attachment over the limits), -EAGAIN (pending_max calls
 * outstanding), SPL_ERPC_UNREACHABLE (in reconnect backoff and not wait_for_ready),
 * SPL_ESHUTDOWN (channel closing), -ENOMEM. A call made on the channel's own IO thread
 * (from a callback) is written when that thread finishes its current batch. */
int spl_rpc_call_async(spl_rpc_channel *ch, const struct spl_rpc_service *svc,
                       uint32_t method_index, const ProtobufCMessage *req,
                       struct spl_iobuf *attachment, const struct spl_rpc_call_opts *opts,
                       uint64_t *call_id_out, spl_rpc_done_cb done_cb, void *ctx);

/* spl_rpc_cancel - complete call `call_id` with SPL_ERPC_CANCELED if it has not completed
 * yet; otherwise nothing happens. The callback runs on the IO thread (possibly before
 * this returns, possibly after). Any thread. Returns 0 when the call was still pending,
 * -ENOENT when it had already completed (or never existed). */
int spl_rpc_cancel(spl_rpc_channel *ch, uint64_t call_id);

/* Details of a failed sync call, for logs and redirects. */
struct spl_rpc_error_info {
    char message[SPL_RPC_ERROR_MESSAGE_MAX];
    char leader_hint[SPL_RPC_LEADER_HINT_MAX];
};

/* spl_rpc_call_sync - spl_rpc_call_async and wait. On 0, *resp_out is the decoded
 * response (caller frees it with protobuf_c_message_free_unpacked(*resp_out, NULL)) and
 * the response attachment is appended to resp_attachment (may be NULL: dropped). On
 * failure returns the call's status (or the start error) with *resp_out NULL and, when
 * err_out is not NULL, the message and leader hint copied into it. Not from an IO thread
 * of the channel's runtime (ASSERTed: it would deadlock). */
int spl_rpc_call_sync(spl_rpc_channel *ch, const struct spl_rpc_service *svc,
                      uint32_t method_index, const ProtobufCMessage *req,
                      struct spl_iobuf *req_attachment, const struct spl_rpc_call_opts *opts,
                      ProtobufCMessage **resp_out, struct spl_iobuf *resp_attachment,
                      struct spl_rpc_error_info *err_out);

#endif
