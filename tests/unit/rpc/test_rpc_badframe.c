/*
 * test_rpc_badframe.c - fault injection: a raw socket client sends each kind of bad frame
 * to an in-process server and checks the answer (an error reply naming the request, or
 * the connection closed), while a healthy channel keeps calling the same server from
 * another thread and must never see a failure or a stall.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/random.h"
#include "rpc_test_util.h"

struct env {
    spl_rpc_runtime *srv_rt, *cli_rt;
    spl_rpc_server *srv;
    spl_rpc_channel *ch;
    uint16_t port;
    pthread_t healthy;
    atomic_bool stop;
    atomic_long ok, failed;
    atomic_ullong worst_ns;
    uint64_t blocks_live_before;
};

/* The healthy client: echo calls with a 4 KiB attachment, back to back. */
static void *healthy_main(void *arg)
{
    struct env *e = arg;
    uint8_t data[4096];
    memset(data, 0x5a, sizeof(data));
    while (!atomic_load(&e->stop)) {
        Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
        req.text = "healthy";
        struct spl_iobuf att;
        spl_iobuf_init(&att);
        spl_iobuf_append(&att, data, sizeof(data));
        ProtobufCMessage *resp = NULL;
        uint64_t t0 = spl_mono_ns();
        struct spl_rpc_call_opts opts = {.timeout_ms = 2000};
        int rc = spl_rpc_call_sync(e->ch, &spl_rpc_echo_service, 0, &req.base, &att, &opts,
                                   &resp, NULL, NULL);
        uint64_t dt = spl_mono_ns() - t0;
        if (rc == 0 && ((Spline__RpcEchoResponse *)resp)->attachment_len == sizeof(data))
            atomic_fetch_add(&e->ok, 1);
        else
            atomic_fetch_add(&e->failed, 1);
        if (resp != NULL)
            protobuf_c_message_free_unpacked(resp, NULL);
        unsigned long long worst = atomic_load(&e->worst_ns);
        while (dt > worst && !atomic_compare_exchange_weak(&e->worst_ns, &worst, dt))
            ;
    }
    return NULL;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct spl_iobuf_stats st;
    spl_iobuf_stats(&st);
    e->blocks_live_before = st.blocks_live;
    struct spl_rpc_runtime_opts ro = {.io_threads = 2, .name = "srv"};
    assert_int_equal(spl_rpc_runtime_create(&ro, &e->srv_rt), 0);
    ro.io_threads = 1;
    ro.name = "cli";
    assert_int_equal(spl_rpc_runtime_create(&ro, &e->cli_rt), 0);
    struct spl_rpc_server_opts so = {.inflight_per_conn = 64};
    assert_int_equal(spl_rpc_server_create(e->srv_rt, &so, &e->srv), 0);
    assert_int_equal(spl_rpc_server_add_service(e->srv, &spl_rpc_echo_service, NULL), 0);
    assert_int_equal(spl_rpc_server_start(e->srv), 0);
    e->port = spl_rpc_server_port(e->srv);
    char addr[64];
    rt_address(addr, sizeof(addr), e->port);
    assert_int_equal(spl_rpc_channel_open(e->cli_rt, addr, NULL, &e->ch), 0);
    assert_int_equal(pthread_create(&e->healthy, NULL, healthy_main, e), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    spl_sleep_ns(50 * SPL_NS_PER_MS); /* healthy traffic after the last bad frame too */
    atomic_store(&e->stop, true);
    pthread_join(e->healthy, NULL);
    long ok = atomic_load(&e->ok), failed = atomic_load(&e->failed);
    double worst_ms = (double)atomic_load(&e->worst_ns) / 1e6;
    spl_rpc_channel_close(e->ch);
    spl_rpc_server_destroy(e->srv);
    spl_rpc_runtime_destroy(e->cli_rt);
    spl_rpc_runtime_destroy(e->srv_rt);
    struct spl_iobuf_stats st;
    spl_iobuf_stats(&st);
    uint64_t live = st.blocks_live;
    uint64_t before = e->blocks_live_before;
    free(e);
    print_message("healthy calls: %ld ok, %ld failed, worst %.1f ms\n", ok, failed, worst_ms);
    assert_int_equal(failed, 0);
    assert_true(ok > 0);
    assert_true(worst_ms < 1000.0); /* never stalled behind a bad connection */
    assert_int_equal(live, before);
    return 0;
}

static int connect_raw(struct env *e)
{
    int fd = rt_raw_connect(e->port);
    assert_true(fd >= 0);
    return fd;
}

/* Send frame bytes, expect an error reply with `code` for `id`, then a close. */
static void expect_error_then_close(struct env *e, uint8_t *frame, size_t len, uint64_t id,
                                    int code)
{
    int fd = connect_raw(e);
    assert_int_equal(rt_write_all(fd, frame, len), 0);
    assert_true(rt_expect_error(fd, id, code));
    assert_true(rt_expect_close(fd, 3000));
    close(fd);
}

static void expect_close_only(struct env *e, const void *bytes, size_t len)
{
    int fd = connect_raw(e);
    assert_int_equal(rt_write_all(fd, bytes, len), 0);
    struct spl_rpc_header h;
    uint8_t meta[256];
    int rc = rt_read_frame(fd, 3000, &h, meta, sizeof(meta));
    assert_int_equal(rc, 0); /* closed, no reply at all */
    close(fd);
}

/* A valid echo on fd after an error: the connection is still in sync. */
static void expect_echo_works(int fd, uint64_t id)
{
    size_t len;
    uint8_t *f = rt_echo_frame(id, "still here", 100, &len);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    free(f);
    struct spl_rpc_header h;
    uint8_t meta[256];
    assert_int_equal(rt_read_frame(fd, 3000, &h, meta, sizeof(meta)), 1);
    assert_int_equal(h.request_id, id);
    assert_int_equal(h.flags & SPL_RPC_FLAG_ERROR, 0);
    assert_int_equal(h.attach_len, 100);
}

static void test_bad_magic(void **state)
{
    struct env *e = *state;
    const char http[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_close_only(e, http, sizeof(http) - 1);
    /* even 4 bytes are enough to be refused */
    expect_close_only(e, "\x00\x00\x00\x00", 4);
}

static void test_header_crc_mismatch(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(1, "x", 0, &len);
    f[17] ^= 0x01; /* request id byte, CRC not updated */
    expect_close_only(e, f, len);
    free(f);
}

static void test_bad_version(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(77, "x", 0, &len);
    f[4] = 9;
    rt_reseal(f);
    expect_error_then_close(e, f, len, 77, SPL_EVERSION);
    free(f);
}

static void test_oversize_lengths(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(78, "x", 0, &len);
    spl_rpc_put_le32(f + 12, SPL_RPC_META_MAX + 1);
    rt_reseal(f);
    expect_error_then_close(e, f, SPL_RPC_HEADER_SIZE, 78, SPL_ETOOBIG);
    free(f);
    f = rt_echo_frame(79, "x", 0, &len);
    spl_rpc_put_le32(f + 24, 0xffffffffu);
    rt_reseal(f);
    expect_error_then_close(e, f, SPL_RPC_HEADER_SIZE, 79, SPL_ETOOBIG);
    free(f);
}

static void test_bad_flags(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(80, "x", 0, &len);
    f[5] = 0x40;
    rt_reseal(f);
    expect_error_then_close(e, f, len, 80, SPL_ERPC_BADFRAME);
    free(f);
    /* a response sent to a server: closed */
    f = rt_echo_frame(81, "x", 0, &len);
    f[5] = SPL_RPC_FLAG_RESPONSE;
    rt_reseal(f);
    expect_close_only(e, f, len);
    free(f);
}

static void test_unknown_method_keeps_conn(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    size_t len;
    uint8_t *f = rt_echo_frame(90, "x", 0, &len);
    spl_rpc_put_le16(f + 6, 999); /* service */
    rt_reseal(f);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    assert_true(rt_expect_error(fd, 90, SPL_ERPC_NOMETHOD));
    free(f);
    f = rt_echo_frame(91, "x", 10, &len);
    spl_rpc_put_le16(f + 8, 7); /* method index beyond the echo service */
    rt_reseal(f);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    assert_true(rt_expect_error(fd, 91, SPL_ERPC_NOMETHOD));
    free(f);
    expect_echo_works(fd, 92);
    close(fd);
}

static void test_bad_meta_keeps_conn(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .service_id = SPL_RPC_SERVICE_ECHO,
                               .request_id = 100};
    size_t len;
    uint8_t *f = rt_build_frame(&h, "\xff\xff\xff\xff\xff\xff", 6, "abc", 3, &len);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    assert_true(rt_expect_error(fd, 100, SPL_ERPC_BADMETA));
    free(f);
    /* a field of the wrong wire type */
    h.request_id = 101;
    f = rt_build_frame(&h, "\x0d\x01\x02\x03\x04", 5, NULL, 0, &len);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    assert_true(rt_expect_error(fd, 101, SPL_ERPC_BADMETA));
    free(f);
    expect_echo_works(fd, 102);
    close(fd);
}

static void test_payload_crc_mismatch_keeps_conn(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .flags = SPL_RPC_FLAG_PAYLOAD_CRC,
                               .service_id = SPL_RPC_SERVICE_ECHO, .request_id = 110};
    uint8_t att[4096] = {0};
    size_t len;
    uint8_t *f = rt_build_frame(&h, NULL, 0, att, sizeof(att), &len);
    f[SPL_RPC_HEADER_SIZE + 1000] ^= 0x10; /* flip a payload bit */
    assert_int_equal(rt_write_all(fd, f, len), 0);
    assert_true(rt_expect_error(fd, 110, SPL_ECORRUPT));
    free(f);
    /* with a correct CRC the reply carries one too */
    h.request_id = 111;
    f = rt_build_frame(&h, NULL, 0, att, sizeof(att), &len);
    assert_int_equal(rt_write_all(fd, f, len), 0);
    free(f);
    struct spl_rpc_header r;
    uint8_t meta[256];
    assert_int_equal(rt_read_frame(fd, 3000, &r, meta, sizeof(meta)), 1);
    assert_int_equal(r.request_id, 111);
    assert_true(r.flags & SPL_RPC_FLAG_PAYLOAD_CRC);
    assert_int_equal(r.attach_len, sizeof(att));
    close(fd);
}

static void test_pipelined_with_bad_one(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    size_t l1, l2, l3, l4;
    uint8_t *f1 = rt_echo_frame(200, "a", 10, &l1);
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .service_id = SPL_RPC_SERVICE_ECHO,
                               .request_id = 201};
    uint8_t *f2 = rt_build_frame(&h, "\xff", 1, NULL, 0, &l2);
    uint8_t *f3 = rt_echo_frame(202, "c", 0, &l3);
    uint8_t *f4 = rt_echo_frame(203, "d", 5000, &l4);
    uint8_t *all = malloc(l1 + l2 + l3 + l4);
    memcpy(all, f1, l1);
    memcpy(all + l1, f2, l2);
    memcpy(all + l1 + l2, f3, l3);
    memcpy(all + l1 + l2 + l3, f4, l4);
    assert_int_equal(rt_write_all(fd, all, l1 + l2 + l3 + l4), 0);
    int errors = 0, oks = 0;
    for (int i = 0; i < 4; i++) {
        struct spl_rpc_header r;
        uint8_t meta[256];
        assert_int_equal(rt_read_frame(fd, 3000, &r, meta, sizeof(meta)), 1);
        if (r.flags & SPL_RPC_FLAG_ERROR) {
            assert_int_equal(r.request_id, 201);
            errors++;
        } else {
            oks++;
        }
    }
    assert_int_equal(errors, 1);
    assert_int_equal(oks, 3);
    free(f1);
    free(f2);
    free(f3);
    free(f4);
    free(all);
    close(fd);
}

static void test_truncated_then_dropped(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(300, "x", 100000, &len);
    /* several drop points: inside the header, the meta, the attachment */
    const size_t cuts[] = {3, 20, SPL_RPC_HEADER_SIZE + 2, len / 2, len - 1};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(cuts); i++) {
        int fd = connect_raw(e);
        assert_int_equal(rt_write_all(fd, f, cuts[i]), 0);
        spl_sleep_ns(5 * SPL_NS_PER_MS);
        close(fd);
    }
    /* an abortive close (RST) mid-frame */
    int fd = connect_raw(e);
    assert_int_equal(rt_write_all(fd, f, len / 3), 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    free(f);
}

static void test_truncated_stall(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(310, "x", 50000, &len);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = connect_raw(e);
        assert_int_equal(rt_write_all(fds[i], f, len - 100), 0); /* and then nothing */
    }
    long before = atomic_load(&e->ok);
    spl_sleep_ns(300 * SPL_NS_PER_MS);
    assert_true(atomic_load(&e->ok) > before); /* others are served meanwhile */
    /* finishing the frame late still gets the answer */
    assert_int_equal(rt_write_all(fds[0], f + len - 100, 100), 0);
    struct spl_rpc_header r;
    uint8_t meta[256];
    assert_int_equal(rt_read_frame(fds[0], 3000, &r, meta, sizeof(meta)), 1);
    assert_int_equal(r.request_id, 310);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    free(f);
}

static void test_random_garbage(void **state)
{
    struct env *e = *state;
    struct spl_rand rnd;
    spl_rand_seed(&rnd, 12345);
    uint8_t buf[8192];
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + spl_rand_below(&rnd, sizeof(buf));
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)spl_rand_u64(&rnd);
        buf[0] = 'X'; /* certainly not the magic */
        expect_close_only(e, buf, n);
    }
    /* garbage after a valid header prefix: magic right, CRC wrong */
    size_t len;
    uint8_t *f = rt_echo_frame(1, "x", 0, &len);
    memcpy(buf, f, 8);
    for (int i = 8; i < 64; i++)
        buf[i] = (uint8_t)spl_rand_u64(&rnd);
    expect_close_only(e, buf, 64);
    free(f);
}

static void test_byte_at_a_time(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    size_t len;
    uint8_t *f = rt_echo_frame(400, "slow", 50, &len);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(rt_write_all(fd, f + i, 1), 0);
        if (i % 16 == 0)
            spl_sleep_ns(200 * SPL_NS_PER_US);
    }
    struct spl_rpc_header r;
    uint8_t meta[256];
    assert_int_equal(rt_read_frame(fd, 3000, &r, meta, sizeof(meta)), 1);
    assert_int_equal(r.request_id, 400);
    assert_int_equal(r.attach_len, 50);
    free(f);
    close(fd);
}

/* A client that sends and never reads: the server pauses that connection (back-pressure)
 * instead of buffering without bound or slowing the others. */
static void test_client_never_reads(void **state)
{
    struct env *e = *state;
    int fd = connect_raw(e);
    int flags = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &flags, sizeof(flags)); /* tiny: fills at once */
    size_t len;
    uint8_t *f = rt_echo_frame(500, "flood", 4096, &len);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t sent = 0;
    for (int i = 0; i < 20000; i++) {
        ssize_t n = send(fd, f, len, MSG_NOSIGNAL);
        if (n < 0)
            break; /* the server stopped reading: our send buffer is full */
        sent += (size_t)n;
    }
    assert_true(sent < 20000 * len); /* the server did stop reading */
    long before = atomic_load(&e->ok);
    spl_sleep_ns(300 * SPL_NS_PER_MS);
    assert_true(atomic_load(&e->ok) > before);
    free(f);
    close(fd);
}

static void test_connection_churn(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *f = rt_echo_frame(600, "x", 1000, &len);
    for (int i = 0; i < 100; i++) {
        int fd = connect_raw(e);
        if (i % 3 == 0)
            rt_write_all(fd, f, len); /* a request whose reply nobody reads */
        close(fd);
    }
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_crc_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_keeps_conn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_meta_keeps_conn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_crc_mismatch_keeps_conn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_with_bad_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_then_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_never_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_churn, setup, teardown),
    };
    if (getenv("RPC_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("RPC_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
