/*
 * bench_rpc.c - RPC cost against plain TCP, same machine, same run, same bytes.
 *
 * The RPC side: a server runtime (1 IO thread) with a "write-like" method that takes a
 * 4 KiB attachment and answers with a small meta (RpcEchoResponse{seq, attachment_len}),
 * and a client runtime (1 IO thread) with one channel, over 127.0.0.1.
 *   rpc qd1 sync    spl_rpc_call_sync from the main thread, one at a time
 *   rpc qd1 async   the completion callback issues the next call (one in flight)
 *   rpc qd64        64 calls in flight, each completion issues the next
 * The baseline: blocking sockets with TCP_NODELAY; the request is exactly as many bytes
 * as the RPC request frame, the reply as many as the RPC reply frame.
 *   raw qd1         write request, read reply, repeat (client thread + server thread)
 *   epoll qd1       the same through epoll_wait + non-blocking read (the reactor floor)
 *   raw qd64 msg    64 requests outstanding; each side reads whatever is there with one
 *                   read and answers every whole message with its own send (MSG_MORE on
 *                   all but the last of a burst): the per-message, no-batching reference
 *   raw qd64 bat    64 requests outstanding; the client reads what replies are there and
 *                   sends that many requests in one send; the server reads what requests
 *                   are there and answers them with one send (a strong, batched baseline)
 * Each round runs every mode once, interleaved, so that noise hits all of them alike;
 * the summary gives medians over rounds, the ratios of the medians and the CPU per op
 * (the whole process: client and server) of the QD64 modes, and the load average.
 *
 * Usage: bench_rpc [--rounds N] [--qd1-ops N] [--qd64-seconds S] [--qd D] [--busy-poll US]
 *                  [--only qd|sync|async|rawqd|rawmsg]   (one mode alone, for profiling)
 *                  [--qd64-calls N]   (with --only qd: a fixed number of calls, for
 *                                      callgrind instruction counts)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "bench_args.h"
#include "base/errors.h"
#include "base/log.h"
#include "rpc.pb-c.h"
#include "rpc/frame.h"
#include "rpc/rpc.h"

#define BENCH_PAYLOAD 4096
#define BENCH_ROUNDS_MAX 64

/* ---- the benchmark service: a 4 KiB write, a small answer ---- */

static void bench_write_handler(spl_rpc_call *call, void *ctx)
{
    const Spline__RpcEchoRequest *req = (const Spline__RpcEchoRequest *)spl_rpc_call_request(call);
    Spline__RpcEchoResponse resp = SPLINE__RPC_ECHO_RESPONSE__INIT;
    resp.seq = req->seq;
    resp.attachment_len = spl_iobuf_len(spl_rpc_call_attachment(call));
    spl_rpc_reply(call, &resp.base, NULL);
}

static const struct spl_rpc_method bench_methods[] = {
    {"Write", &spline__rpc_echo_request__descriptor, &spline__rpc_echo_response__descriptor,
     bench_write_handler},
};
static const struct spl_rpc_service bench_service = {
    .id = 63, .name = "bench", .methods = bench_methods, .method_count = 1};

/* ---- helpers ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_d(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct lat {
    double p50_us, p99_us;
};

static struct lat lat_of(uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(uint64_t), cmp_u64);
    return (struct lat){ns[n / 2] / 1e3, ns[(size_t)((double)n * 0.99)] / 1e3};
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int write_all_flags(int fd, const uint8_t *p, size_t len, int flags)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | flags);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    return write_all_flags(fd, p, len, 0);
}

static int read_exact(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- plain TCP baseline ---- */

struct raw {
    int listen_fd;
    uint16_t port;
    size_t req_len, rep_len;
    bool per_message; /* serve one request per read (the per-message baseline) */
    bool epoll;       /* serve through epoll_wait + non-blocking read (the reactor floor) */
    pthread_t thread;
};

/* One server connection: answer every whole request, batched per read. */
static void *raw_server_main(void *arg)
{
    struct raw *r = arg;
    for (;;) {
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        size_t cap = 1 << 20;
        uint8_t *in = malloc(cap);
        uint8_t *out = calloc(1, cap);
        size_t have = 0;
        for (;;) {
            ssize_t n = read(fd, in + have, cap - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            size_t k = have / r->req_len;
            if (k > 0) {
                if (write_all(fd, out, k * r->rep_len) != 0)
                    break;
                memmove(in, in + k * r->req_len, have - k * r->req_len);
                have -= k * r->req_len;
            }
        }
        free(in);
        free(out);
        close(fd);
    }
}

/* The per-message server: read whatever is there (one read into a large buffer), then
 * answer every whole request with its own send(2): one reply per system call, as a
 * server without write batching does. Reads never wait for a whole request, so neither
 * side ever blocks with both socket buffers full. All but the last send of a burst carry
 * MSG_MORE, so the kernel packs the burst into few TCP segments as the RPC's one
 * sendmsg does: without it 64 separate 4 KiB segments at QD64 run into delayed ACKs,
 * tail-loss probes and spurious retransmissions (nstat: TcpExtTCPLossProbes,
 * TcpExtTCPDSACKRecv) and the "baseline" measured TCP timers (~40k ops/s), not the
 * system calls. */
static void *raw_server_msg_main(void *arg)
{
    struct raw *r = arg;
    for (;;) {
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        size_t cap = 1 << 20, have = 0;
        uint8_t *in = malloc(cap);
        uint8_t *out = calloc(1, r->rep_len);
        bool open = true;
        while (open) {
            ssize_t n = read(fd, in + have, cap - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            size_t k = have / r->req_len;
            for (size_t i = 0; i < k && open; i++)
                open = write_all_flags(fd, out, r->rep_len, i + 1 < k ? MSG_MORE : 0) == 0;
            memmove(in, in + k * r->req_len, have - k * r->req_len);
            have -= k * r->req_len;
        }
        free(in);
        free(out);
        close(fd);
    }
}

/* The reactor server: epoll_wait, read what is there, answer each whole request. */
static void *raw_server_epoll_main(void *arg)
{
    struct raw *r = arg;
    for (;;) {
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
        int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        size_t cap = 1 << 20, have = 0;
        uint8_t *in = malloc(cap);
        uint8_t *out = calloc(1, cap);
        bool open = true;
        while (open) {
            struct epoll_event got;
            if (epoll_wait(ep, &got, 1, -1) < 1)
                continue;
            ssize_t n = read(fd, in + have, cap - have);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                open = false;
                break;
            }
            have += n > 0 ? (size_t)n : 0;
            size_t k = have / r->req_len;
            if (k > 0) {
                fcntl(fd, F_SETFL, 0); /* the reply is small: blocking write is fine */
                open = write_all(fd, out, k * r->rep_len) == 0;
                fcntl(fd, F_SETFL, O_NONBLOCK);
                memmove(in, in + k * r->req_len, have - k * r->req_len);
                have -= k * r->req_len;
            }
        }
        free(in);
        free(out);
        close(ep);
        close(fd);
    }
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static struct lat raw_qd1(struct raw *r, int ops, uint64_t *samples)
{
    int fd = raw_connect(r->port);
    uint8_t *req = calloc(1, r->req_len);
    uint8_t rep[4096];
    for (int i = 0; i < ops; i++) {
        uint64_t t0 = spl_mono_ns();
        if (write_all(fd, req, r->req_len) != 0 || read_exact(fd, rep, r->rep_len) != 0) {
            fprintf(stderr, "raw qd1: connection failed\n");
            exit(1);
        }
        samples[i] = spl_mono_ns() - t0;
    }
    close(fd);
    free(req);
    return lat_of(samples, (size_t)ops);
}

/* QD1 through epoll: send, epoll_wait, read the reply (what an event loop does). */
static struct lat raw_qd1_epoll(struct raw *r, int ops, uint64_t *samples)
{
    int fd = raw_connect(r->port);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    uint8_t *req = calloc(1, r->req_len);
    uint8_t rep[4096];
    for (int i = 0; i < ops; i++) {
        uint64_t t0 = spl_mono_ns();
        if (send(fd, req, r->req_len, MSG_NOSIGNAL) != (ssize_t)r->req_len) {
            fprintf(stderr, "raw epoll qd1: short send\n");
            exit(1);
        }
        size_t got = 0;
        while (got < r->rep_len) {
            struct epoll_event e;
            if (epoll_wait(ep, &e, 1, -1) < 1)
                continue;
            ssize_t n = read(fd, rep + got, r->rep_len - got);
            if (n == 0 || (n < 0 && errno != EAGAIN))
                exit(1);
            got += n > 0 ? (size_t)n : 0;
        }
        samples[i] = spl_mono_ns() - t0;
    }
    close(ep);
    close(fd);
    free(req);
    return lat_of(samples, (size_t)ops);
}

static double raw_qdn(struct raw *r, int qd, double seconds)
{
    int fd = raw_connect(r->port);
    uint8_t *reqs = calloc((size_t)qd, r->req_len);
    size_t cap = (size_t)qd * r->rep_len + 4096;
    uint8_t *in = malloc(cap);
    if (write_all(fd, reqs, (size_t)qd * r->req_len) != 0)
        exit(1);
    uint64_t done = 0, have = 0;
    int outstanding = qd;
    uint64_t t0 = spl_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    bool stopping = false;
    while (outstanding > 0) {
        ssize_t n = read(fd, in + have, cap - have);
        if (n <= 0)
            exit(1);
        have += (uint64_t)n;
        int k = (int)(have / r->rep_len);
        have -= (uint64_t)k * r->rep_len;
        memmove(in, in + (uint64_t)k * r->rep_len, have);
        done += (uint64_t)k;
        outstanding -= k;
        if (!stopping && spl_mono_ns() >= end)
            stopping = true;
        if (!stopping && k > 0) {
            if (write_all(fd, reqs, (size_t)k * r->req_len) != 0)
                exit(1);
            outstanding += k;
        }
    }
    double dt = (double)(spl_mono_ns() - t0) / 1e9;
    close(fd);
    free(reqs);
    free(in);
    return (double)done / dt;
}

/* Per message: keep qd requests outstanding; read the replies as they come (one read of
 * whatever is there) and send one new request per reply, each with its own send(2) (a
 * header + 4 KiB, the RPC's framing bytes). The fair "no batching" reference: the same
 * reads as the batched baseline, but one write system call per message on both sides
 * (MSG_MORE on all but the last of a burst, see raw_server_msg_main). */
static double raw_qdn_msg(struct raw *r, int qd, double seconds)
{
    int fd = raw_connect(r->port);
    uint8_t *req = calloc(1, r->req_len);
    size_t cap = (size_t)qd * r->rep_len + 4096;
    uint8_t *in = malloc(cap);
    for (int i = 0; i < qd; i++)
        if (write_all(fd, req, r->req_len) != 0)
            exit(1);
    uint64_t done = 0, have = 0;
    uint64_t t0 = spl_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    int outstanding = qd;
    bool stopping = false;
    while (outstanding > 0) {
        ssize_t n = read(fd, in + have, cap - have);
        if (n <= 0)
            exit(1);
        have += (uint64_t)n;
        int k = (int)(have / r->rep_len);
        have -= (uint64_t)k * r->rep_len;
        memmove(in, in + (uint64_t)k * r->rep_len, have);
        done += (uint64_t)k;
        outstanding -= k;
        if (!stopping && spl_mono_ns() >= end)
            stopping = true;
        for (int i = 0; i < k && !stopping; i++) {
            if (write_all_flags(fd, req, r->req_len, i + 1 < k ? MSG_MORE : 0) != 0)
                exit(1);
            outstanding++;
        }
    }
    double dt = (double)(spl_mono_ns() - t0) / 1e9;
    close(fd);
    free(req);
    free(in);
    return (double)done / dt;
}

static void raw_start(struct raw *r)
{
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(r->listen_fd, 16) != 0) {
        perror("raw listen");
        exit(1);
    }
    socklen_t len = sizeof(sa);
    getsockname(r->listen_fd, (struct sockaddr *)&sa, &len);
    r->port = ntohs(sa.sin_port);
    void *(*main_fn)(void *) = r->epoll         ? raw_server_epoll_main
                               : r->per_message ? raw_server_msg_main
                                                : raw_server_main;
    pthread_create(&r->thread, NULL, main_fn, r);
}

/* ---- RPC ---- */

struct rpc {
    spl_rpc_runtime *srt, *crt;
    spl_rpc_server *srv;
    spl_rpc_channel *ch;
    struct spl_iobuf payload; /* one 4 KiB block, shared by reference into every call */
};

static int rpc_call(struct rpc *b, uint64_t seq, spl_rpc_done_cb cb, void *ctx)
{
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.seq = seq;
    struct spl_iobuf att;
    spl_iobuf_init(&att);
    spl_iobuf_append_ref(&att, &b->payload, 0, BENCH_PAYLOAD);
    int rc = spl_rpc_call_async(b->ch, &bench_service, 0, &req.base, &att, NULL, NULL, cb, ctx);
    spl_iobuf_reset(&att);
    return rc;
}

static struct lat rpc_qd1_sync(struct rpc *b, int ops, uint64_t *samples)
{
    for (int i = 0; i < ops; i++) {
        Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
        req.seq = (uint64_t)i;
        struct spl_iobuf att;
        spl_iobuf_init(&att);
        uint64_t t0 = spl_mono_ns();
        spl_iobuf_append_ref(&att, &b->payload, 0, BENCH_PAYLOAD);
        ProtobufCMessage *resp;
        int rc = spl_rpc_call_sync(b->ch, &bench_service, 0, &req.base, &att, NULL, &resp, NULL,
                                   NULL);
        samples[i] = spl_mono_ns() - t0;
        if (rc != 0) {
            fprintf(stderr, "rpc qd1 sync: %s\n", spl_strerror(rc));
            exit(1);
        }
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return lat_of(samples, (size_t)ops);
}

struct chain {
    struct rpc *b;
    uint64_t *samples;
    int ops, next;
    uint64_t t0;
    sem_t done;
    /* qd-n mode */
    atomic_bool stop;
    atomic_int inflight;
    atomic_ullong completed;
    uint64_t limit; /* > 0: stop after this many completions (fixed work, for callgrind) */
};

static void chain_done(struct spl_rpc_result *r, void *ctx)
{
    struct chain *c = ctx;
    uint64_t now = spl_mono_ns();
    if (r->status != 0) {
        fprintf(stderr, "rpc call: %s\n", r->error_message);
        exit(1);
    }
    c->samples[c->next++] = now - c->t0;
    if (c->next == c->ops) {
        sem_post(&c->done);
        return;
    }
    c->t0 = spl_mono_ns();
    if (rpc_call(c->b, (uint64_t)c->next, chain_done, c) != 0)
        exit(1);
}

static struct lat rpc_qd1_async(struct rpc *b, int ops, uint64_t *samples)
{
    struct chain c = {.b = b, .samples = samples, .ops = ops};
    sem_init(&c.done, 0, 0);
    c.t0 = spl_mono_ns();
    if (rpc_call(b, 0, chain_done, &c) != 0)
        exit(1);
    while (sem_wait(&c.done) != 0)
        ;
    sem_destroy(&c.done);
    return lat_of(samples, (size_t)ops);
}

static void window_done(struct spl_rpc_result *r, void *ctx)
{
    struct chain *c = ctx;
    if (r->status != 0) {
        fprintf(stderr, "rpc call: %s\n", r->error_message);
        exit(1);
    }
    uint64_t n = atomic_fetch_add_explicit(&c->completed, 1, memory_order_relaxed) + 1;
    if (c->limit > 0 && n + (uint64_t)atomic_load(&c->inflight) > c->limit)
        atomic_store_explicit(&c->stop, true, memory_order_relaxed);
    if (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        if (rpc_call(c->b, 0, window_done, c) != 0)
            exit(1);
        return;
    }
    if (atomic_fetch_sub(&c->inflight, 1) == 1)
        sem_post(&c->done);
}

static uint64_t rpc_qdn_completed; /* calls completed by the last rpc_qdn */

static double rpc_qdn(struct rpc *b, int qd, double seconds, uint64_t limit)
{
    struct chain c = {.b = b, .limit = limit};
    sem_init(&c.done, 0, 0);
    atomic_store(&c.inflight, qd);
    uint64_t t0 = spl_mono_ns();
    for (int i = 0; i < qd; i++)
        if (rpc_call(b, (uint64_t)i, window_done, &c) != 0)
            exit(1);
    if (limit == 0) {
        spl_sleep_ns((uint64_t)(seconds * 1e9));
        atomic_store(&c.stop, true);
    }
    while (sem_wait(&c.done) != 0)
        ;
    double dt = (double)(spl_mono_ns() - t0) / 1e9;
    sem_destroy(&c.done);
    rpc_qdn_completed = atomic_load(&c.completed);
    return (double)rpc_qdn_completed / dt;
}

static uint32_t bench_busy_poll_us; /* --busy-poll US: spl_rpc_runtime_opts.busy_poll_us */

static void rpc_start(struct rpc *b)
{
    struct spl_rpc_runtime_opts so = {.io_threads = 1, .name = "bsrv",
                                      .busy_poll_us = bench_busy_poll_us};
    struct spl_rpc_runtime_opts co = {.io_threads = 1, .name = "bcli",
                                      .busy_poll_us = bench_busy_poll_us};
    if (spl_rpc_runtime_create(&so, &b->srt) || spl_rpc_runtime_create(&co, &b->crt) ||
        spl_rpc_server_create(b->srt, NULL, &b->srv) ||
        spl_rpc_server_add_service(b->srv, &bench_service, NULL) ||
        spl_rpc_server_start(b->srv)) {
        fprintf(stderr, "rpc setup failed\n");
        exit(1);
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", spl_rpc_server_port(b->srv));
    if (spl_rpc_channel_open(b->crt, addr, NULL, &b->ch) != 0)
        exit(1);
    spl_iobuf_init(&b->payload);
    uint8_t data[BENCH_PAYLOAD];
    memset(data, 0xab, sizeof(data));
    spl_iobuf_append(&b->payload, data, sizeof(data));
    uint64_t s[16];
    rpc_qd1_sync(b, 16, s); /* connect and warm up */
}

static void rpc_stop(struct rpc *b)
{
    spl_rpc_channel_close(b->ch);
    spl_rpc_server_destroy(b->srv);
    spl_rpc_runtime_destroy(b->crt);
    spl_rpc_runtime_destroy(b->srt);
    spl_iobuf_reset(&b->payload);
}

/* The frame sizes the RPC side puts on the wire, so the baseline moves the same bytes. */
static void frame_sizes(size_t *req_len, size_t *rep_len)
{
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.seq = 12345;
    Spline__RpcEchoResponse resp = SPLINE__RPC_ECHO_RESPONSE__INIT;
    resp.seq = 12345;
    resp.attachment_len = BENCH_PAYLOAD;
    *req_len = SPL_RPC_HEADER_SIZE + protobuf_c_message_get_packed_size(&req.base) + BENCH_PAYLOAD;
    *rep_len = SPL_RPC_HEADER_SIZE + protobuf_c_message_get_packed_size(&resp.base);
}

int main(int argc, char **argv)
{
    int rounds = 5, qd1_ops = 20000, qd = 64;
    const char *only = NULL; /* profiling: run one RPC mode alone ("qd", "sync", "async") */
    double qdn_seconds = 2.0;
    uint64_t qdn_calls = 0; /* --only qd: a fixed number of calls instead of a duration */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds"))
            rounds = (int)bench_arg_u64("--rounds", argv[i + 1], 1, 1000);
        else if (!strcmp(argv[i], "--qd1-ops"))
            qd1_ops = (int)bench_arg_u64("--qd1-ops", argv[i + 1], 1, 100000000);
        else if (!strcmp(argv[i], "--qd64-seconds"))
            qdn_seconds = bench_arg_double("--qd64-seconds", argv[i + 1], 0.01, 3600);
        else if (!strcmp(argv[i], "--qd"))
            qd = (int)bench_arg_u64("--qd", argv[i + 1], 1, 4096);
        else if (!strcmp(argv[i], "--busy-poll"))
            bench_busy_poll_us = (uint32_t)bench_arg_u64("--busy-poll", argv[i + 1], 0, 1000000);
        else if (!strcmp(argv[i], "--qd64-calls"))
            qdn_calls = bench_arg_u64("--qd64-calls", argv[i + 1], 1, UINT64_MAX);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
    }
    if (rounds < 1 || rounds > BENCH_ROUNDS_MAX || qd1_ops < 100 || qd < 1) {
        fprintf(stderr, "usage: bench_rpc [--rounds 1..64] [--qd1-ops N>=100] "
                        "[--qd64-seconds S] [--qd D]\n");
        return 2;
    }
    spl_log_set_level(SPL_LOG_WARN);
    struct raw raw = {0}, rawm = {.per_message = true}, rawe = {.epoll = true};
    frame_sizes(&raw.req_len, &raw.rep_len);
    rawm.req_len = rawe.req_len = raw.req_len;
    rawm.rep_len = rawe.rep_len = raw.rep_len;
    raw_start(&raw);
    raw_start(&rawm);
    raw_start(&rawe);
    struct rpc b;
    rpc_start(&b);
    uint64_t *samples = malloc(sizeof(uint64_t) * (size_t)qd1_ops);
    if (only != NULL) {
        for (int r = 0; r < rounds; r++) {
            if (!strcmp(only, "qd"))
            {
                double ops = rpc_qdn(&b, qd, qdn_seconds, qdn_calls);
                printf("rpc qd%d: %.0f ops/s, %llu calls\n", qd, ops,
                       (unsigned long long)rpc_qdn_completed);
            }
            else if (!strcmp(only, "sync"))
                printf("rpc qd1 sync: p50 %.1f us\n", rpc_qd1_sync(&b, qd1_ops, samples).p50_us);
            else if (!strcmp(only, "async"))
                printf("rpc qd1 async: p50 %.1f us\n", rpc_qd1_async(&b, qd1_ops, samples).p50_us);
            else if (!strcmp(only, "rawqd"))
                printf("raw qd%d: %.0f ops/s\n", qd, raw_qdn(&raw, qd, qdn_seconds));
            else if (!strcmp(only, "rawmsg"))
                printf("raw msg qd%d: %.0f ops/s\n", qd, raw_qdn_msg(&rawm, qd, qdn_seconds));
        }
        rpc_stop(&b);
        return 0;
    }

    double raw50[BENCH_ROUNDS_MAX], raw99[BENCH_ROUNDS_MAX], sync50[BENCH_ROUNDS_MAX],
        sync99[BENCH_ROUNDS_MAX], async50[BENCH_ROUNDS_MAX], async99[BENCH_ROUNDS_MAX],
        rawq[BENCH_ROUNDS_MAX], rpcq[BENCH_ROUNDS_MAX], rawcpu[BENCH_ROUNDS_MAX],
        rpccpu[BENCH_ROUNDS_MAX], rawmq[BENCH_ROUNDS_MAX], rawmcpu[BENCH_ROUNDS_MAX],
        ep50[BENCH_ROUNDS_MAX], ep99[BENCH_ROUNDS_MAX];
    double la[3] = {0};
    getloadavg(la, 3);
    printf("load average at start: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    printf("bench_rpc: request %zu B (4 KiB attachment), reply %zu B, 127.0.0.1, "
           "qd1 %d ops, qd%d %.1f s, %d rounds\n",
           raw.req_len, raw.rep_len, qd1_ops, qd, qdn_seconds, rounds);
    printf("%-5s %-17s %-17s %-17s %-17s %-11s %-11s %-11s %-9s %-9s\n", "round",
           "raw qd1 p50/p99", "epoll qd1 p50/99", "rpc sync p50/p99", "rpc async p50/99",
           "rawmsg qd/s", "rawbat qd/s", "rpc qd/s", "raw us/op", "rpc us/op");
    for (int r = 0; r < rounds; r++) {
        struct lat l = raw_qd1(&raw, qd1_ops, samples);
        raw50[r] = l.p50_us;
        raw99[r] = l.p99_us;
        l = raw_qd1_epoll(&rawe, qd1_ops, samples);
        ep50[r] = l.p50_us;
        ep99[r] = l.p99_us;
        l = rpc_qd1_sync(&b, qd1_ops, samples);
        sync50[r] = l.p50_us;
        sync99[r] = l.p99_us;
        l = rpc_qd1_async(&b, qd1_ops, samples);
        async50[r] = l.p50_us;
        async99[r] = l.p99_us;
        double cm = cpu_seconds();
        rawmq[r] = raw_qdn_msg(&rawm, qd, qdn_seconds);
        double c0 = cpu_seconds();
        rawmcpu[r] = (c0 - cm) * 1e6 / (rawmq[r] * qdn_seconds);
        rawq[r] = raw_qdn(&raw, qd, qdn_seconds);
        double c1 = cpu_seconds();
        rpcq[r] = rpc_qdn(&b, qd, qdn_seconds, 0);
        double c2 = cpu_seconds();
        rawcpu[r] = (c1 - c0) * 1e6 / (rawq[r] * qdn_seconds);
        rpccpu[r] = (c2 - c1) * 1e6 / (rpcq[r] * qdn_seconds);
        printf("%-5d %5.1f / %-9.1f %5.1f / %-9.1f %5.1f / %-9.1f %5.1f / %-9.1f %-11.0f %-11.0f "
               "%-11.0f %-9.2f %-9.2f\n",
               r + 1, raw50[r], raw99[r], ep50[r], ep99[r], sync50[r], sync99[r], async50[r],
               async99[r], rawmq[r], rawq[r], rpcq[r], rawcpu[r], rpccpu[r]);
        fflush(stdout);
    }
    double m_raw50 = median_d(raw50, rounds), m_raw99 = median_d(raw99, rounds);
    double m_sync50 = median_d(sync50, rounds), m_sync99 = median_d(sync99, rounds);
    double m_async50 = median_d(async50, rounds), m_async99 = median_d(async99, rounds);
    double m_rawq = median_d(rawq, rounds), m_rpcq = median_d(rpcq, rounds);
    double m_rawcpu = median_d(rawcpu, rounds), m_rpccpu = median_d(rpccpu, rounds);
    double m_rawmq = median_d(rawmq, rounds), m_rawmcpu = median_d(rawmcpu, rounds);
    double m_ep50 = median_d(ep50, rounds), m_ep99 = median_d(ep99, rounds);
    printf("\nmedians over %d rounds\n", rounds);
    printf("  raw  qd1   p50 %6.1f us  p99 %6.1f us\n", m_raw50, m_raw99);
    printf("  raw  qd1 epoll p50 %6.1f us  p99 %6.1f us   ratio p50 %.2fx  (reactor floor)\n",
           m_ep50, m_ep99, m_ep50 / m_raw50);
    printf("  rpc  qd1 sync  p50 %6.1f us  p99 %6.1f us   ratio p50 %.2fx  p99 %.2fx\n",
           m_sync50, m_sync99, m_sync50 / m_raw50, m_sync99 / m_raw99);
    printf("  rpc  qd1 async p50 %6.1f us  p99 %6.1f us   ratio p50 %.2fx  p99 %.2fx  "
           "(vs epoll floor %.2fx)\n",
           m_async50, m_async99, m_async50 / m_raw50, m_async99 / m_raw99, m_async50 / m_ep50);
    printf("  raw  qd%d per message  %9.0f ops/s  (%.2f us CPU/op)\n", qd, m_rawmq, m_rawmcpu);
    printf("  raw  qd%d batched      %9.0f ops/s  (%.2f us CPU/op)\n", qd, m_rawq, m_rawcpu);
    printf("  rpc  qd%d              %9.0f ops/s  (%.2f us CPU/op)   ratio vs per-message "
           "%.2fx, vs batched %.2fx\n",
           qd, m_rpcq, m_rpccpu, m_rpcq / m_rawmq, m_rpcq / m_rawq);
    getloadavg(la, 3);
    printf("load average at end: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    free(samples);
    rpc_stop(&b);
    struct raw *raws[] = {&raw, &rawm, &rawe};
    for (int i = 0; i < 3; i++) {
        shutdown(raws[i]->listen_fd, SHUT_RDWR);
        close(raws[i]->listen_fd);
        pthread_join(raws[i]->thread, NULL);
    }
    return 0;
}
