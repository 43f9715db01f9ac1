/*
 * test_rpc.c - servers and channels end to end over 127.0.0.1: echo sync and async,
 * 10k calls pipelined on one connection, attachments 0..16 MiB, timeout, cancel,
 * reconnect after a server restart, replies from other threads, error replies with a
 * leader hint, back-pressure, close with calls pending, many calling threads, metrics,
 * and no leaked iobuf blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/log.h"
#include "metrics/metrics.h"
#include "rpc_test_util.h"

struct env {
    struct spl_metrics *metrics;
    spl_rpc_runtime *srv_rt; /* server and client on separate IO threads */
    spl_rpc_runtime *cli_rt;
    spl_rpc_server *srv;
    spl_rpc_channel *ch;
    uint16_t port;
    uint64_t blocks_live_before;
};

static void env_server_start(struct env *e, uint16_t port)
{
    struct spl_rpc_server_opts so = {.port = port};
    assert_int_equal(spl_rpc_server_create(e->srv_rt, &so, &e->srv), 0);
    assert_int_equal(spl_rpc_server_add_service(e->srv, &spl_rpc_echo_service, NULL), 0);
    assert_int_equal(spl_rpc_server_start(e->srv), 0);
    e->port = spl_rpc_server_port(e->srv);
}

static uint32_t setup_busy_poll_us; /* runtimes of the next setup busy-poll this long */

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct spl_iobuf_stats st;
    spl_iobuf_stats(&st);
    e->blocks_live_before = st.blocks_live;
    e->metrics = spl_metrics_new();
    struct spl_rpc_runtime_opts ro = {.io_threads = 2, .name = "srv", .metrics = e->metrics,
                                      .busy_poll_us = setup_busy_poll_us};
    assert_int_equal(spl_rpc_runtime_create(&ro, &e->srv_rt), 0);
    ro.io_threads = 1;
    ro.name = "cli";
    assert_int_equal(spl_rpc_runtime_create(&ro, &e->cli_rt), 0);
    env_server_start(e, 0);
    char addr[64];
    rt_address(addr, sizeof(addr), e->port);
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, addr, NULL, &e->ch), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    spl_rpc_channel_close(e->ch);
    spl_rpc_server_destroy(e->srv);
    spl_rpc_runtime_destroy(e->cli_rt);
    spl_rpc_runtime_destroy(e->srv_rt);
    spl_metrics_free(e->metrics);
    struct spl_iobuf_stats st;
    spl_iobuf_stats(&st);
    assert_int_equal(st.blocks_live, e->blocks_live_before); /* no leaked blocks */
    free(e);
    return 0;
}

static void fill_pattern(struct spl_iobuf *b, size_t len, uint32_t seed)
{
    uint8_t chunk[4096];
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (uint8_t)((off + i) * 31 + seed);
        assert_int_equal(spl_iobuf_append(b, chunk, n), 0);
        off += n;
    }
}

static int echo_sync(spl_rpc_channel *ch, const char *text, uint64_t seq, uint32_t delay_ms,
                     struct spl_iobuf *att, struct spl_iobuf *resp_att,
                     const struct spl_rpc_call_opts *opts, Spline__RpcEchoResponse **resp_out,
                     struct spl_rpc_error_info *err)
{
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.text = (char *)text;
    req.seq = seq;
    req.delay_ms = delay_ms;
    ProtobufCMessage *resp = NULL;
    int rc = spl_rpc_call_sync(ch, &spl_rpc_echo_service, SPL_RPC_ECHO_METHOD_ECHO, &req.base,
                               att, opts, &resp, resp_att, err);
    if (resp_out != NULL)
        *resp_out = (Spline__RpcEchoResponse *)resp;
    else if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

static void test_echo_sync(void **state)
{
    struct env *e = *state;
    Spline__RpcEchoResponse *resp;
    assert_int_equal(echo_sync(e->ch, "hello", 42, 0, NULL, NULL, NULL, &resp, NULL), 0);
    assert_string_equal(resp->text, "hello");
    assert_int_equal(resp->seq, 42);
    assert_int_equal(resp->attachment_len, 0);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    assert_true(spl_rpc_channel_connected(e->ch));
}

struct async_ctx {
    struct rt_latch latch;
    atomic_int ok, bad;
    atomic_int calls; /* callback invocations */
    uint8_t *seen;    /* per seq: how many completions */
    size_t seen_len;
};

static void async_done(struct spl_rpc_result *r, void *ctx)
{
    struct async_ctx *a = ctx;
    atomic_fetch_add(&a->calls, 1);
    if (r->status == 0) {
        const Spline__RpcEchoResponse *resp = (const Spline__RpcEchoResponse *)r->resp;
        if (a->seen != NULL && resp->seq < a->seen_len)
            a->seen[resp->seq]++;
        atomic_fetch_add(&a->ok, 1);
    } else {
        atomic_fetch_add(&a->bad, 1);
    }
    rt_latch_down(&a->latch);
}

static int echo_async(spl_rpc_channel *ch, uint64_t seq, uint32_t delay_ms,
                      const struct spl_rpc_call_opts *opts, struct async_ctx *a, uint64_t *id)
{
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.text = "async";
    req.seq = seq;
    req.delay_ms = delay_ms;
    return spl_rpc_call_async(ch, &spl_rpc_echo_service, SPL_RPC_ECHO_METHOD_ECHO, &req.base,
                              NULL, opts, id, async_done, a);
}

static void test_echo_async(void **state)
{
    struct env *e = *state;
    struct async_ctx a = {0};
    uint8_t seen[100] = {0};
    a.seen = seen;
    a.seen_len = 100;
    rt_latch_init(&a.latch, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(echo_async(e->ch, (uint64_t)i, 0, NULL, &a, NULL), 0);
    assert_true(rt_latch_wait(&a.latch, 10000));
    assert_int_equal(atomic_load(&a.ok), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    rt_latch_destroy(&a.latch);
}

/* 10 000 calls issued back to back from one thread, all in flight on one connection. */
static int setup_busy(void **state)
{
    setup_busy_poll_us = 200;
    int rc = setup(state);
    setup_busy_poll_us = 0;
    return rc;
}

/* Busy-polling loops: pipelined and sync calls complete, a timeout still fires while the
 * loop spins, the loops stop at destroy; out-of-range options are refused. */
static void test_busy_poll(void **state)
{
    struct env *e = *state;
    enum { N = 2000 };
    struct async_ctx a = {0};
    a.seen = calloc(N, 1);
    a.seen_len = N;
    rt_latch_init(&a.latch, N);
    struct spl_rpc_call_opts opts = {.timeout_ms = 30000};
    for (int i = 0; i < N; i++)
        assert_int_equal(echo_async(e->ch, (uint64_t)i, 0, &opts, &a, NULL), 0);
    assert_true(rt_latch_wait(&a.latch, 30000));
    assert_int_equal(atomic_load(&a.ok), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(a.seen[i], 1);
    free(a.seen);
    rt_latch_destroy(&a.latch);
    for (int i = 0; i < 100; i++)
        assert_int_equal(echo_sync(e->ch, "bp", (uint64_t)i, 0, NULL, NULL, NULL, NULL, NULL), 0);
    struct spl_rpc_call_opts short_opts = {.timeout_ms = 50};
    assert_int_equal(echo_sync(e->ch, "slow", 1, 300, NULL, NULL, &short_opts, NULL, NULL),
                     SPL_ERPC_TIMEDOUT);
    struct spl_rpc_runtime_opts bad = {.busy_poll_us = SPL_RPC_BUSY_POLL_US_MAX + 1};
    spl_rpc_runtime *rt = NULL;
    assert_int_equal(spl_rpc_runtime_create(&bad, &rt), -EINVAL);
    assert_null(rt);
}

static void test_pipeline_10k(void **state)
{
    struct env *e = *state;
    enum { N = 10000 };
    struct async_ctx a = {0};
    a.seen = calloc(N, 1);
    a.seen_len = N;
    rt_latch_init(&a.latch, N);
    struct spl_rpc_call_opts opts = {.timeout_ms = 30000};
    uint64_t t0 = spl_mono_ns();
    for (int i = 0; i < N; i++)
        assert_int_equal(echo_async(e->ch, (uint64_t)i, 0, &opts, &a, NULL), 0);
    assert_true(rt_latch_wait(&a.latch, 30000));
    uint64_t dt = spl_mono_ns() - t0;
    assert_int_equal(atomic_load(&a.ok), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(a.seen[i], 1);
    print_message("10k pipelined echo calls: %.1f ms\n", (double)dt / 1e6);
    free(a.seen);
    rt_latch_destroy(&a.latch);
}

static void test_attachment_sizes(void **state)
{
    struct env *e = *state;
    const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20,
                            (16u << 20) - 1, 16u << 20};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(sizes); i++) {
        struct spl_iobuf att, expect, back;
        spl_iobuf_init(&att);
        spl_iobuf_init(&expect);
        spl_iobuf_init(&back);
        fill_pattern(&att, sizes[i], (uint32_t)i);
        assert_int_equal(spl_iobuf_append_ref(&expect, &att, 0, sizes[i]), 0);
        struct spl_rpc_call_opts opts = {.timeout_ms = 30000, .payload_crc = (i % 2) == 1};
        Spline__RpcEchoResponse *resp;
        assert_int_equal(echo_sync(e->ch, "att", i, 0, &att, &back, &opts, &resp, NULL), 0);
        assert_int_equal(spl_iobuf_len(&att), 0); /* taken by the call */
        assert_int_equal(resp->attachment_len, sizes[i]);
        assert_int_equal(spl_iobuf_len(&back), sizes[i]);
        assert_true(spl_iobuf_equal(&back, &expect));
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        spl_iobuf_reset(&expect);
        spl_iobuf_reset(&back);
    }
    /* over the limit: fails to start, attachment untouched */
    struct spl_iobuf big;
    spl_iobuf_init(&big);
    fill_pattern(&big, SPL_RPC_ATTACH_MAX + 1, 0);
    assert_int_equal(echo_sync(e->ch, "big", 0, 0, &big, NULL, NULL, NULL, NULL), SPL_ETOOBIG);
    assert_int_equal(spl_iobuf_len(&big), SPL_RPC_ATTACH_MAX + 1);
    spl_iobuf_reset(&big);
}

static void test_timeout(void **state)
{
    struct env *e = *state;
    struct spl_rpc_call_opts opts = {.timeout_ms = 100};
    uint64_t t0 = spl_mono_ms();
    struct spl_rpc_error_info err;
    assert_int_equal(echo_sync(e->ch, "slow", 1, 600, NULL, NULL, &opts, NULL, &err),
                     SPL_ERPC_TIMEDOUT);
    uint64_t dt = spl_mono_ms() - t0;
    assert_true(dt >= 95 && dt < 500);
    assert_true(strlen(err.message) > 0);
    /* the channel is fine, and the late reply (in ~500 ms) is dropped quietly */
    assert_int_equal(echo_sync(e->ch, "fast", 2, 0, NULL, NULL, NULL, NULL, NULL), 0);
    spl_sleep_ns(600 * SPL_NS_PER_MS);
    assert_int_equal(echo_sync(e->ch, "fast", 3, 0, NULL, NULL, NULL, NULL, NULL), 0);
}

static void test_cancel(void **state)
{
    struct env *e = *state;
    struct async_ctx a = {0};
    rt_latch_init(&a.latch, 1);
    uint64_t id;
    assert_int_equal(echo_async(e->ch, 1, 300, NULL, &a, &id), 0);
    assert_int_equal(spl_rpc_cancel(e->ch, id), 0);
    assert_true(rt_latch_wait(&a.latch, 2000));
    assert_int_equal(atomic_load(&a.bad), 1);
    assert_int_equal(spl_rpc_cancel(e->ch, id), -ENOENT); /* already completed */
    assert_int_equal(spl_rpc_cancel(e->ch, 12345), -ENOENT);
    spl_sleep_ns(400 * SPL_NS_PER_MS); /* the reply arrives and is ignored */
    assert_int_equal(atomic_load(&a.calls), 1);
    rt_latch_destroy(&a.latch);
}

struct status_ctx {
    struct rt_latch latch;
    int status;
    atomic_int calls;
};

static void status_done(struct spl_rpc_result *r, void *ctx)
{
    struct status_ctx *s = ctx;
    s->status = r->status;
    atomic_fetch_add(&s->calls, 1);
    rt_latch_down(&s->latch);
}

static void test_cancel_status(void **state)
{
    struct env *e = *state;
    struct status_ctx s = {0};
    rt_latch_init(&s.latch, 1);
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.delay_ms = 200;
    uint64_t id;
    assert_int_equal(spl_rpc_call_async(e->ch, &spl_rpc_echo_service, 0, &req.base, NULL, NULL,
                                        &id, status_done, &s),
                     0);
    assert_int_equal(spl_rpc_cancel(e->ch, id), 0);
    assert_true(rt_latch_wait(&s.latch, 2000));
    assert_int_equal(s.status, SPL_ERPC_CANCELED);
    rt_latch_destroy(&s.latch);
}

static void test_server_restart_reconnect(void **state)
{
    struct env *e = *state;
    assert_int_equal(echo_sync(e->ch, "before", 1, 0, NULL, NULL, NULL, NULL, NULL), 0);
    uint16_t port = e->port;
    spl_rpc_server_destroy(e->srv);
    e->srv = NULL;
    /* while the server is away calls fail; they never hang */
    int rc = echo_sync(e->ch, "down", 2, 0, NULL, NULL, NULL, NULL, NULL);
    assert_true(rc == SPL_ERPC_CONNCLOSED || rc == SPL_ERPC_UNREACHABLE);
    spl_sleep_ns(200 * SPL_NS_PER_MS);
    rc = echo_sync(e->ch, "down", 3, 0, NULL, NULL, NULL, NULL, NULL);
    assert_true(rc == SPL_ERPC_CONNCLOSED || rc == SPL_ERPC_UNREACHABLE);
    assert_false(spl_rpc_channel_connected(e->ch));
    env_server_start(e, port);
    /* wait_for_ready: the call waits through the backoff for the new connection */
    struct spl_rpc_call_opts opts = {.timeout_ms = 10000, .wait_for_ready = true};
    assert_int_equal(echo_sync(e->ch, "after", 4, 0, NULL, NULL, &opts, NULL, NULL), 0);
    assert_true(spl_rpc_channel_connected(e->ch));
    assert_int_equal(echo_sync(e->ch, "after", 5, 0, NULL, NULL, NULL, NULL, NULL), 0);
}

/* A service whose handler hands every call to a worker thread, which replies. */
struct worker {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    spl_rpc_call *queue[64];
    int head, tail, count;
    bool stop;
    pthread_t thread;
    atomic_int replied;
    atomic_int inflight, inflight_peak;
    bool hold; /* do not reply until released */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && (w->count == 0 || w->hold))
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->count == 0 && w->stop)
            break;
        spl_rpc_call *call = w->queue[w->head];
        w->head = (w->head + 1) % 64;
        w->count--;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        const Spline__RpcEchoRequest *req =
            (const Spline__RpcEchoRequest *)spl_rpc_call_request(call);
        Spline__RpcEchoResponse resp = SPLINE__RPC_ECHO_RESPONSE__INIT;
        resp.text = req->text;
        resp.seq = req->seq;
        atomic_fetch_sub(&w->inflight, 1);
        if (spl_rpc_reply(call, &resp.base, spl_rpc_call_attachment(call)) == 0)
            atomic_fetch_add(&w->replied, 1); /* no cmocka asserts off the test thread */
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void worker_handler(spl_rpc_call *call, void *ctx)
{
    struct worker *w = ctx;
    int now = atomic_fetch_add(&w->inflight, 1) + 1;
    int peak = atomic_load(&w->inflight_peak);
    while (now > peak && !atomic_compare_exchange_weak(&w->inflight_peak, &peak, now))
        ;
    pthread_mutex_lock(&w->mu);
    if (w->count == 64) { /* the test's queue bound: never reached with inflight <= 16 */
        pthread_mutex_unlock(&w->mu);
        spl_rpc_reply_error(call, SPL_ERPC_OVERLOAD, "worker queue full");
        atomic_fetch_sub(&w->inflight, 1);
        return;
    }
    w->queue[w->tail] = call;
    w->tail = (w->tail + 1) % 64;
    w->count++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static const struct spl_rpc_method worker_methods[] = {
    {"Echo", &spline__rpc_echo_request__descriptor, &spline__rpc_echo_response__descriptor,
     worker_handler},
};
static const struct spl_rpc_service worker_service = {
    .id = 60, .name = "worker", .methods = worker_methods, .method_count = 1};

static void worker_start(struct worker *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    assert_int_equal(pthread_create(&w->thread, NULL, worker_main, w), 0);
}

static void worker_stop(struct worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    w->hold = false;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}

/* Replies from another thread, and back-pressure: a connection limited to 8 requests in
 * flight never has more than 8 at the handler, yet all 500 calls complete. */
static void test_reply_other_thread_backpressure(void **state)
{
    struct env *e = *state;
    struct worker w;
    worker_start(&w);
    struct spl_rpc_server *srv;
    struct spl_rpc_server_opts so = {.inflight_per_conn = 8};
    assert_int_equal(spl_rpc_server_create(e->srv_rt, &so, &srv), 0);
    assert_int_equal(spl_rpc_server_add_service(srv, &worker_service, &w), 0);
    assert_int_equal(spl_rpc_server_start(srv), 0);
    char addr[64];
    rt_address(addr, sizeof(addr), spl_rpc_server_port(srv));
    spl_rpc_channel *ch;
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, addr, NULL, &ch), 0);

    enum { N = 500 };
    struct async_ctx a = {0};
    a.seen = calloc(N, 1);
    a.seen_len = N;
    rt_latch_init(&a.latch, N);
    pthread_mutex_lock(&w.mu);
    w.hold = true; /* let requests pile up first */
    pthread_mutex_unlock(&w.mu);
    for (int i = 0; i < N; i++) {
        Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
        req.text = "w";
        req.seq = (uint64_t)i;
        struct spl_rpc_call_opts opts = {.timeout_ms = 20000};
        assert_int_equal(spl_rpc_call_async(ch, &worker_service, 0, &req.base, NULL, &opts, NULL,
                                            async_done, &a),
                         0);
    }
    /* reads pause at the limit: the handler sees exactly 8 and no more */
    uint64_t t_fill = spl_mono_ns();
    for (int i = 0; i < 500 && atomic_load(&w.inflight) < 8; i++)
        spl_sleep_ns(1 * SPL_NS_PER_MS);
    if (getenv("RPC_TEST_VERBOSE"))
        print_message("8 in flight after %.1f ms\n", (double)(spl_mono_ns() - t_fill) / 1e6);
    spl_sleep_ns(100 * SPL_NS_PER_MS);
    int held = atomic_load(&w.inflight);
    if (held != 8)
        print_message("held %d (peak %d)\n", held, atomic_load(&w.inflight_peak));
    pthread_mutex_lock(&w.mu);
    w.hold = false;
    pthread_cond_broadcast(&w.cond);
    pthread_mutex_unlock(&w.mu);
    bool all = rt_latch_wait(&a.latch, 20000);
    spl_rpc_channel_close(ch); /* no cmocka assert may leave w behind while in use */
    spl_rpc_server_destroy(srv);
    worker_stop(&w);
    assert_int_equal(held, 8);
    assert_true(all);
    assert_int_equal(atomic_load(&a.ok), N);
    assert_true(atomic_load(&w.inflight_peak) <= 8);
    assert_int_equal(atomic_load(&w.replied), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(a.seen[i], 1);
    free(a.seen);
    rt_latch_destroy(&a.latch);
}

static void test_error_reply_with_hint(void **state)
{
    struct env *e = *state;
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.fail_code = spl_err_to_wire(SPL_EMDS_NOTLEADER);
    req.fail_hint = "10.0.0.7:6700";
    ProtobufCMessage *resp = (ProtobufCMessage *)1;
    struct spl_rpc_error_info err;
    int rc = spl_rpc_call_sync(e->ch, &spl_rpc_echo_service, 0, &req.base, NULL, NULL, &resp, NULL,
                               &err);
    assert_int_equal(rc, SPL_EMDS_NOTLEADER);
    assert_null(resp);
    assert_string_equal(err.leader_hint, "10.0.0.7:6700");
    assert_true(strlen(err.message) > 0);
    /* a code the client does not know becomes SPL_EINTERNAL */
    req.fail_code = 999999;
    req.fail_hint = "";
    rc = spl_rpc_call_sync(e->ch, &spl_rpc_echo_service, 0, &req.base, NULL, NULL, &resp, NULL,
                           &err);
    assert_int_equal(rc, SPL_EINTERNAL);
    assert_string_equal(err.leader_hint, "");
}

static void test_unknown_method(void **state)
{
    struct env *e = *state;
    static const struct spl_rpc_method methods[] = {
        {"Echo", &spline__rpc_echo_request__descriptor, &spline__rpc_echo_response__descriptor,
         NULL},
        {"Missing", &spline__rpc_echo_request__descriptor,
         &spline__rpc_echo_response__descriptor, NULL},
    };
    static const struct spl_rpc_service bigger_echo = {
        .id = SPL_RPC_SERVICE_ECHO, .name = "echo", .methods = methods, .method_count = 2};
    static const struct spl_rpc_service nosuch = {
        .id = 61, .name = "nosuch", .methods = methods, .method_count = 1};
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    ProtobufCMessage *resp;
    assert_int_equal(spl_rpc_call_sync(e->ch, &bigger_echo, 1, &req.base, NULL, NULL, &resp, NULL,
                                       NULL),
                     SPL_ERPC_NOMETHOD);
    assert_int_equal(spl_rpc_call_sync(e->ch, &nosuch, 0, &req.base, NULL, NULL, &resp, NULL,
                                       NULL),
                     SPL_ERPC_NOMETHOD);
    /* bad arguments fail to start */
    assert_int_equal(spl_rpc_call_sync(e->ch, &nosuch, 5, &req.base, NULL, NULL, &resp, NULL,
                                       NULL),
                     -EINVAL);
    Spline__RpcEchoResponse wrong = SPLINE__RPC_ECHO_RESPONSE__INIT;
    assert_int_equal(spl_rpc_call_sync(e->ch, &nosuch, 0, &wrong.base, NULL, NULL, &resp, NULL,
                                       NULL),
                     -EINVAL);
    /* the connection is still good */
    assert_int_equal(echo_sync(e->ch, "ok", 1, 0, NULL, NULL, NULL, NULL, NULL), 0);
}

static void test_unreachable(void **state)
{
    struct env *e = *state;
    /* a port that was just free: bind, note, close */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    char addr[64];
    rt_address(addr, sizeof(addr), ntohs(sa.sin_port));
    spl_rpc_channel *ch;
    struct spl_rpc_channel_opts co = {.backoff_initial_ms = 20, .backoff_max_ms = 100};
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, addr, &co, &ch), 0);
    uint64_t t0 = spl_mono_ms();
    int rc = echo_sync(ch, "x", 1, 0, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(rc, SPL_ERPC_UNREACHABLE);
    assert_true(spl_mono_ms() - t0 < 1000); /* fails fast */
    /* wait_for_ready waits until its own timeout */
    struct spl_rpc_call_opts opts = {.timeout_ms = 300, .wait_for_ready = true};
    t0 = spl_mono_ms();
    assert_int_equal(echo_sync(ch, "x", 2, 0, NULL, NULL, &opts, NULL, NULL), SPL_ERPC_TIMEDOUT);
    assert_true(spl_mono_ms() - t0 >= 290);
    spl_rpc_channel_close(ch);
    /* bad addresses */
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, "nocolon", NULL, &ch), -EINVAL);
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, "127.0.0.1:0", NULL, &ch), -EINVAL);
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, "127.0.0.1:99999", NULL, &ch), -EINVAL);
}

static void test_close_with_pending(void **state)
{
    struct env *e = *state;
    char addr[64];
    rt_address(addr, sizeof(addr), e->port);
    spl_rpc_channel *ch;
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, addr, NULL, &ch), 0);
    assert_int_equal(echo_sync(ch, "warm", 0, 0, NULL, NULL, NULL, NULL, NULL), 0);
    struct async_ctx a = {0};
    rt_latch_init(&a.latch, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(echo_async(ch, (uint64_t)i, 300, NULL, &a, NULL), 0);
    spl_rpc_channel_close(ch); /* every callback has run when this returns */
    assert_int_equal(atomic_load(&a.calls), 20);
    assert_int_equal(atomic_load(&a.bad), 20);
    rt_latch_destroy(&a.latch);
    spl_sleep_ns(400 * SPL_NS_PER_MS); /* the delayed replies find the connection gone */
}

struct thread_arg {
    spl_rpc_channel *ch;
    int n;
    atomic_int *failures;
    int index;
};

static void *caller_main(void *arg)
{
    struct thread_arg *t = arg;
    for (int i = 0; i < t->n; i++) {
        char text[32];
        snprintf(text, sizeof(text), "t%d-%d", t->index, i);
        Spline__RpcEchoResponse *resp = NULL;
        struct spl_iobuf att;
        spl_iobuf_init(&att);
        uint8_t data[512];
        memset(data, t->index, sizeof(data));
        spl_iobuf_append(&att, data, (size_t)(i % 3) * 200);
        int rc = echo_sync(t->ch, text, (uint64_t)i, 0, &att, NULL, NULL, &resp, NULL);
        if (rc != 0 || strcmp(resp->text, text) != 0 || resp->seq != (uint64_t)i ||
            resp->attachment_len != (uint64_t)(i % 3) * 200)
            atomic_fetch_add(t->failures, 1);
        if (resp != NULL)
            protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    return NULL;
}

static void test_many_threads(void **state)
{
    struct env *e = *state;
    enum { T = 6, N = 500 };
    pthread_t th[T];
    struct thread_arg args[T];
    atomic_int failures = 0;
    for (int i = 0; i < T; i++) {
        args[i] = (struct thread_arg){e->ch, N, &failures, i};
        pthread_create(&th[i], NULL, caller_main, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
}

static void test_metrics(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(echo_sync(e->ch, "m", 1, 0, NULL, NULL, NULL, NULL, NULL), 0);
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.fail_code = spl_err_to_wire(SPL_ENOTLEADER);
    ProtobufCMessage *resp;
    assert_int_equal(spl_rpc_call_sync(e->ch, &spl_rpc_echo_service, 0, &req.base, NULL, NULL,
                                       &resp, NULL, NULL),
                     SPL_ENOTLEADER);
    spl_sleep_ns(50 * SPL_NS_PER_MS); /* server-side counters move when the reply is written */
    char *text;
    size_t len;
    assert_int_equal(spl_metrics_format(e->metrics, &text, &len), 0);
    assert_non_null(strstr(text, "spline_rpc_server_requests_total{method=\"echo.Echo\"} 6"));
    assert_non_null(strstr(text, "spline_rpc_client_requests_total{method=\"echo.Echo\"} 6"));
    assert_non_null(strstr(text, "spline_rpc_server_errors_total{method=\"echo.Echo\","
                                 "code=\"SPL_ENOTLEADER\"} 1"));
    assert_non_null(strstr(text, "spline_rpc_client_errors_total{method=\"echo.Echo\","
                                 "code=\"SPL_ENOTLEADER\"} 1"));
    assert_non_null(strstr(text, "spline_rpc_server_received_bytes_total{method=\"echo.Echo\"}"));
    assert_non_null(strstr(text, "spline_rpc_client_sent_bytes_total{method=\"echo.Echo\"}"));
    assert_non_null(strstr(text, "spline_rpc_server_request_duration_seconds_count{method="
                                 "\"echo.Echo\"} 6"));
    free(text);
}

static void test_server_api_errors(void **state)
{
    struct env *e = *state;
    spl_rpc_server *srv;
    assert_int_equal(spl_rpc_server_create(e->srv_rt, NULL, &srv), 0);
    assert_int_equal(spl_rpc_server_add_service(srv, &spl_rpc_echo_service, NULL), 0);
    assert_int_equal(spl_rpc_server_add_service(srv, &spl_rpc_echo_service, NULL), -EEXIST);
    static const struct spl_rpc_method bad_methods[] = {{"Bad", NULL, NULL, NULL}};
    static const struct spl_rpc_service bad = {.id = 62, .name = "bad", .methods = bad_methods,
                                               .method_count = 1};
    assert_int_equal(spl_rpc_server_add_service(srv, &bad, NULL), -EINVAL);
    spl_rpc_server_destroy(srv); /* never started */
    /* the port is taken */
    struct spl_rpc_server_opts so = {.port = e->port};
    assert_int_equal(spl_rpc_server_create(e->srv_rt, &so, &srv), 0);
    assert_int_equal(spl_rpc_server_start(srv), -EADDRINUSE);
    spl_rpc_server_destroy(srv);
    so.host = "not-an-ip";
    so.port = 0;
    assert_int_equal(spl_rpc_server_create(e->srv_rt, &so, &srv), 0);
    assert_int_equal(spl_rpc_server_start(srv), -EINVAL);
    spl_rpc_server_destroy(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_10k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attachment_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_restart_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_other_thread_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_reply_with_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_api_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_poll, setup_busy, teardown),
    };
    if (getenv("RPC_TEST_DEBUG") != NULL)
        spl_log_set_level(SPL_LOG_DEBUG);
    if (getenv("RPC_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
