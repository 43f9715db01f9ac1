/*
 * rpc_internal.h - what the pieces of src/rpc share: IO loops and their task queues,
 * connections (socket I/O, send queue, receive buffer), outgoing frames, and the
 * per-method metrics. Not for use outside src/rpc.
 *
 * Locking order: channel->mu, then conn->send_mu, then loop->task_mu. No callback into
 * user code (done callbacks, handlers) runs with any of them held.
 */
#ifndef SPL_RPC_INTERNAL_H
#define SPL_RPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "metrics/metrics.h"
#include "rpc/frame.h"
#include "rpc/rpc.h"

/* ---- loops ---- */

/* A unit of work posted to an IO thread. Embedded in the object it serves; posting an
 * already queued task is a no-op, so a task is never queued twice. */
struct spl__rpc_task {
    void (*run_cb)(struct spl__rpc_task *task);
    struct spl__rpc_task *next;
    bool queued; /* under the loop's task_mu */
};

struct spl__rpc_conn;

struct spl__rpc_loop {
    spl_rpc_runtime *rt;
    uint32_t index;
    uv_loop_t uv;
    uv_async_t wake;
    uv_check_t check;     /* flush dirty connections right after I/O callbacks */
    uv_prepare_t prepare; /* ... and after timers, before the loop blocks */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t task_mu;
    struct spl__rpc_task *task_head, *task_tail;
    struct spl__rpc_conn *dirty; /* IO thread only: connections with frames to flush */
    /* IO thread only: */
    uint64_t now_ns;             /* monotonic time at the start of the current event */
    bool traffic;                /* a read returned data since the flag was cleared */
    uint64_t spin_ns;            /* adaptive busy poll: the current window (runtime.c) */
    uint32_t spin_skip;          /* blocking iterations left before the next probe */
    struct spl__rpc_out *free_outs;  /* recycled outgoing frames */
    uint32_t free_out_count;
    void *free_calls;                /* recycled server call objects (singly linked) */
    uint32_t free_call_count;
};

/* The loop of the calling IO thread, or NULL off the IO threads. */
extern __thread struct spl__rpc_loop *spl__rpc_tls_loop;

/* spl__rpc_now - the current event's time on an IO thread (one clock read per event
 * batch), the clock otherwise. */
uint64_t spl__rpc_now(void);

#define SPL__RPC_FREE_LIST_MAX 1024 /* recycled objects kept per loop and kind */

struct spl__rpc_method_stats;

struct spl_rpc_runtime {
    uint32_t loop_count;
    atomic_uint next_loop;
    struct spl_metrics *metrics;
    struct spl__rpc_stats_table *stats;
    atomic_long objects;      /* servers and channels alive */
    atomic_long server_calls; /* server calls not yet replied */
    uint64_t busy_poll_ns;    /* spl_rpc_runtime_opts.busy_poll_us */
    char name[16];
    struct spl__rpc_loop loops[];
};

/* spl__rpc_loop_post - queue task on loop (any thread). Returns true when it was queued
 * now, false when it already was. */
bool spl__rpc_loop_post(struct spl__rpc_loop *loop, struct spl__rpc_task *task);
/* spl__rpc_loop_run_sync - run fn(arg) on loop's thread and wait for it (inline when
 * called on that thread). */
void spl__rpc_loop_run_sync(struct spl__rpc_loop *loop, void (*fn)(void *arg), void *arg);
/* spl__rpc_on_loop - true on loop's IO thread. */
bool spl__rpc_on_loop(const struct spl__rpc_loop *loop);
/* spl__rpc_runtime_pick - the next loop, round-robin. */
struct spl__rpc_loop *spl__rpc_runtime_pick(spl_rpc_runtime *rt);
/* spl__rpc_runtime_call_started / _done - count server calls (destroy waits for 0). */
void spl__rpc_runtime_call_started(spl_rpc_runtime *rt);
void spl__rpc_runtime_call_done(spl_rpc_runtime *rt);

/* ---- outgoing frames ---- */

#define SPL__RPC_OUT_META_INLINE 128

enum spl__rpc_out_kind {
    SPL__RPC_OUT_REQUEST = 0, /* client request */
    SPL__RPC_OUT_REPLY = 1,   /* server reply that counts against the in-flight limit */
};

/* One frame in a send queue: header, packed meta, attachment slices, optional trailer. */
struct spl__rpc_out {
    struct spl__rpc_out *next;
    uint8_t *meta;        /* meta_inline or malloc'd */
    uint32_t meta_len;
    uint8_t kind;
    bool has_trailer;
    int status;           /* replies: 0 or the error code sent (for metrics) */
    struct spl__rpc_method_stats *stats; /* may be NULL */
    uint64_t start_ns;    /* replies: when the request arrived */
    struct spl_iobuf attach;
    uint8_t hdr[SPL_RPC_HEADER_SIZE];
    uint8_t trailer[SPL_RPC_TRAILER_SIZE];
    uint8_t meta_inline[SPL__RPC_OUT_META_INLINE];
};

/* spl__rpc_out_new - a frame with `msg` packed as meta (NULL: empty meta) and an empty
 * attachment. Returns SPL_ETOOBIG when the packed meta exceeds SPL_RPC_META_MAX, -ENOMEM. */
int spl__rpc_out_new(const ProtobufCMessage *msg, struct spl__rpc_out **out);
/* spl__rpc_out_seal - write the header (lengths from the frame itself) and, when
 * payload_crc, the trailer. The attachment must be in place. */
void spl__rpc_out_seal(struct spl__rpc_out *o, uint8_t flags, uint16_t service_id,
                       uint16_t method_index, uint64_t request_id);
uint64_t spl__rpc_out_bytes(const struct spl__rpc_out *o);
void spl__rpc_out_free(struct spl__rpc_out *o);
/* spl__rpc_out_error - an error response frame (RpcErrorMeta) for request `request_id`. */
int spl__rpc_out_error(int code, const char *message, const char *leader_hint,
                       uint16_t service_id, uint16_t method_index, uint64_t request_id,
                       struct spl__rpc_out **out);

/* ---- connections ---- */

struct spl__rpc_conn_ops {
    /* IO thread: a whole frame; the callee owns f's iobufs (must reset or move them). */
    void (*frame_cb)(struct spl__rpc_conn *c, struct spl_rpc_frame *f);
    /* IO thread: a parse error. hdr is the authentic header or NULL. For SPL_ECORRUPT
     * the stream goes on; for any other error the connection closes after the call. */
    void (*error_cb)(struct spl__rpc_conn *c, int err, const struct spl_rpc_header *hdr);
    /* Any thread: a frame left the queue, written (true) or dropped (false), at now_ns.
     * Must not use the owner (it may be gone): only the conn, the frame and the runtime. */
    void (*sent_cb)(struct spl__rpc_conn *c, struct spl__rpc_out *o, bool written,
                    uint64_t now_ns);
    /* IO thread: an outgoing connect finished: 0 or a negated errno. */
    void (*connect_cb)(struct spl__rpc_conn *c, int status);
    /* IO thread: the connection is closed and its handle released; last event. */
    void (*close_cb)(struct spl__rpc_conn *c);
};

struct spl__rpc_conn {
    struct spl__rpc_loop *loop;
    const struct spl__rpc_conn_ops *ops;
    void *owner;            /* server or channel; cleared by the owner in close_cb */
    atomic_int refs;        /* one "open" reference until close_cb, plus holders */
    int fd;                 /* closed when the last reference goes */
    char peer[64];          /* "ip:port" */

    /* IO thread only */
    uv_poll_t poll;
    int poll_events;        /* events the poll handle watches now; -1: not started */
    bool connecting;        /* outgoing connect in progress */
    bool reading;           /* false while paused (back-pressure) */
    bool closing;
    bool in_dirty;
    struct spl__rpc_conn *dirty_next;
    struct spl_iobuf rbuf;
    struct spl_rpc_parser parser;
    struct spl__rpc_task kick; /* recompute poll events, resume, flush */

    /* send side: send_mu */
    pthread_mutex_t send_mu;
    struct spl__rpc_out *sq_head, *sq_tail;
    uint64_t sq_head_off;   /* bytes of sq_head already written */
    atomic_ullong sq_bytes; /* bytes queued (written under send_mu, read anywhere) */
    bool writing;           /* a thread is writing; only it pops the queue */
    atomic_bool want_pollout; /* the socket was full: the IO thread waits for POLLOUT
                               * (written under send_mu; the IO thread may read it
                               * without: whoever sets it kicks the IO thread after) */
    bool send_closed;       /* closing: queued frames are dropped, new ones refused */
    bool kick_flush;        /* a flush was handed to the IO thread */

    /* server connections */
    atomic_uint inflight;   /* requests read and not yet answered (reply not written) */
    uint32_t inflight_max;
    atomic_bool read_paused;
    struct spl__rpc_conn *list_prev, *list_next; /* owner's list (owner's lock) */
};

/* spl__rpc_conn_new - wrap a connected (or connecting) non-blocking socket; one "open"
 * reference. Nothing happens until spl__rpc_conn_start on the loop. */
int spl__rpc_conn_new(struct spl__rpc_loop *loop, int fd, const struct spl__rpc_conn_ops *ops,
                      void *owner, struct spl__rpc_conn **out);
/* spl__rpc_conn_start - IO thread: start polling (readable, or writable while
 * connecting). Returns 0 or a libuv error; on error the caller closes. */
int spl__rpc_conn_start(struct spl__rpc_conn *c);
/* spl__rpc_conn_send - any thread: queue o (taken in every case). Writes directly when
 * called off the IO thread and nothing is queued; on the IO thread the frame is flushed
 * at the end of the current batch. Returns 0 or SPL_ERPC_CONNCLOSED (o dropped, sent_cb
 * called with written=false). */
int spl__rpc_conn_send(struct spl__rpc_conn *c, struct spl__rpc_out *o);
/* spl__rpc_conn_flush_now - IO thread: write what is queued now (best effort). */
void spl__rpc_conn_flush_now(struct spl__rpc_conn *c);
/* spl__rpc_conn_close - IO thread: close (idempotent); close_cb follows. */
void spl__rpc_conn_close(struct spl__rpc_conn *c, int reason);
/* spl__rpc_conn_set_reading - IO thread: pause or resume reading (resume also parses
 * frames already buffered). */
void spl__rpc_conn_set_reading(struct spl__rpc_conn *c, bool on);
/* spl__rpc_conn_kick - any thread: have the IO thread re-evaluate the connection (resume
 * reading if the owner allows it, watch POLLOUT, flush). */
void spl__rpc_conn_kick(struct spl__rpc_conn *c);
void spl__rpc_conn_ref(struct spl__rpc_conn *c);
void spl__rpc_conn_unref(struct spl__rpc_conn *c);
/* spl__rpc_loop_flush_dirty - IO thread: flush every connection marked dirty. */
void spl__rpc_loop_flush_dirty(struct spl__rpc_loop *loop);
/* Server-side hook: true when c may read again (in-flight below its resume mark). */
bool spl__rpc_server_conn_may_read(const struct spl__rpc_conn *c);

/* spl__rpc_format_addr - "ip:port" ("[ip6]:port") of a socket address. */
void spl__rpc_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* ---- metrics ---- */

struct spl__rpc_method_stats {
    struct spl_counter *requests;
    struct spl_counter *bytes_in;
    struct spl_counter *bytes_out;
    struct spl_histogram *latency;
    struct spl_counter_family *errors_family;
    pthread_mutex_t errors_mu;
    uint32_t error_count;
    struct {
        int code;
        struct spl_counter *counter;
    } errors[16];
    struct spl_counter *errors_other; /* past 16 distinct codes */
    char label[80];                   /* "service.Method" */
};

/* spl__rpc_stats_get - the stats of (side, service, method), created on first use.
 * svc NULL: the "unknown" method bucket (frame errors, unknown methods). Thread-safe;
 * cheap after the first call for service ids below 64. */
struct spl__rpc_method_stats *spl__rpc_stats_get(spl_rpc_runtime *rt, bool server,
                                                 const struct spl_rpc_service *svc,
                                                 uint32_t method_index);
/* spl__rpc_stats_error - count one error with `code` (a negative code). */
void spl__rpc_stats_error(struct spl__rpc_method_stats *s, int code);
int spl__rpc_stats_init(spl_rpc_runtime *rt);
void spl__rpc_stats_free(spl_rpc_runtime *rt);

#define SPL__RPC_TAG "rpc"

/* spl__rpc_iobuf_clear - spl_iobuf_reset when b holds anything: on the call path most
 * iobufs are already empty (moved out), and a reset costs a call and a debug check. */
static inline void spl__rpc_iobuf_clear(struct spl_iobuf *b)
{
    if (b->slice_count != 0 || b->heap != NULL)
        spl_iobuf_reset(b);
}

#endif
