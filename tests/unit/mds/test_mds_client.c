/*
 * test_mds_client.c - spl_mdsc_call's bounds against in-process fake MDS (real RPC over
 * 127.0.0.1, no etcd): a silent MDS (a socket that never answers) costs one attempt's
 * timeout and the next address answers; each attempt is cut to the deadline; a loop of
 * "not leader" redirects ends at the attempt limit or the deadline with
 * SPL_EMDS_NOTLEADER; an error about the request is returned after one attempt; no
 * answer at all gives SPL_ERPC_TIMEDOUT / SPL_ERPC_UNREACHABLE.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "mds/mds_client.h"
#include "rpc.pb-c.h"

#define FAKES 3

/* A fake MDS: answers every call with `code` (0: success) and `hint`, counting calls. */
struct fake {
    spl_rpc_server *srv;
    char addr[64];
    int code;
    char hint[64];
    atomic_uint calls;
};

static void fake_handle(spl_rpc_call *call, void *ctx)
{
    struct fake *f = ctx;
    atomic_fetch_add(&f->calls, 1);
    if (f->code == 0) {
        Spline__RpcEchoResponse r = SPLINE__RPC_ECHO_RESPONSE__INIT;
        r.text = "leader";
        spl_rpc_reply(call, &r.base, NULL);
    } else if (f->hint[0]) {
        spl_rpc_reply_redirect(call, f->code, "not the leader", f->hint);
    } else {
        spl_rpc_reply_error(call, f->code, NULL);
    }
}

static const struct spl_rpc_method fake_methods[] = {
    {"Fake", &spline__rpc_echo_request__descriptor, &spline__rpc_echo_response__descriptor,
     fake_handle},
};
static const struct spl_rpc_service fake_service = {SPL_RPC_SERVICE_MDS, "mds", fake_methods, 1};
static const struct spl_rpc_method client_methods[] = {
    {"Fake", &spline__rpc_echo_request__descriptor, &spline__rpc_echo_response__descriptor,
     NULL},
};
static const struct spl_rpc_service client_service = {SPL_RPC_SERVICE_MDS, "mds",
                                                       client_methods, 1};

struct env {
    spl_rpc_runtime *srv_rt, *cli_rt;
    struct fake fakes[FAKES];
    int silent_fd; /* listens, never accepts: connections complete, nothing answers */
    char silent[64];
    char closed[64]; /* a port nobody listens on */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(spl_rpc_runtime_create(NULL, &e->srv_rt), 0);
    assert_int_equal(spl_rpc_runtime_create(NULL, &e->cli_rt), 0);
    for (int i = 0; i < FAKES; i++) {
        struct fake *f = &e->fakes[i];
        assert_int_equal(spl_rpc_server_create(e->srv_rt, NULL, &f->srv), 0);
        assert_int_equal(spl_rpc_server_add_service(f->srv, &fake_service, f), 0);
        assert_int_equal(spl_rpc_server_start(f->srv), 0);
        snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", spl_rpc_server_port(f->srv));
    }
    for (int k = 0; k < 2; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
        socklen_t len = sizeof a;
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        if (k == 0) {
            assert_int_equal(listen(fd, 16), 0);
            e->silent_fd = fd;
            snprintf(e->silent, sizeof e->silent, "127.0.0.1:%u", ntohs(a.sin_port));
        } else {
            close(fd); /* bound, then closed: connecting is refused */
            snprintf(e->closed, sizeof e->closed, "127.0.0.1:%u", ntohs(a.sin_port));
        }
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < FAKES; i++)
        spl_rpc_server_destroy(e->fakes[i].srv);
    close(e->silent_fd);
    spl_rpc_runtime_destroy(e->cli_rt);
    spl_rpc_runtime_destroy(e->srv_rt);
    free(e);
    return 0;
}

static void reset(struct env *e)
{
    for (int i = 0; i < FAKES; i++) {
        e->fakes[i].code = 0;
        e->fakes[i].hint[0] = '\0';
        atomic_store(&e->fakes[i].calls, 0);
    }
}

/* call - one spl_mdsc_call on a fresh client for addrs; *ms gets how long it took. */
static int call(struct env *e, const char *addrs, uint32_t attempt_ms, uint32_t deadline_ms,
                uint32_t attempts_max, uint64_t *ms, char *leader, size_t leader_len)
{
    struct spl_mdsc *c = NULL;
    assert_int_equal(spl_mdsc_open(e->cli_rt, addrs, attempt_ms, deadline_ms, &c), 0);
    spl_mdsc_set_limits(c, 0, 0, attempts_max);
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    struct spl_rpc_error_info err;
    uint64_t t0 = spl_mono_ns();
    int rc = spl_mdsc_call(c, &client_service, 0, &req.base, &resp, &err);
    *ms = (spl_mono_ns() - t0) / 1000000;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (leader)
        snprintf(leader, leader_len, "%s", spl_mdsc_leader(c));
    spl_mdsc_close(c);
    return rc;
}

static void test_silent_mds_then_leader(void **state)
{
    struct env *e = *state;
    reset(e);
    char addrs[256], leader[64];
    uint64_t ms;
    snprintf(addrs, sizeof addrs, "%s,%s", e->silent, e->fakes[0].addr);
    assert_int_equal(call(e, addrs, 300, 10000, 0, &ms, leader, sizeof leader), 0);
    assert_string_equal(leader, e->fakes[0].addr);
    assert_true(ms >= 250 && ms < 3000);
    assert_int_equal(atomic_load(&e->fakes[0].calls), 1);
}

static void test_attempt_cut_to_deadline(void **state)
{
    struct env *e = *state;
    uint64_t ms;
    /* attempts of 30 s, deadline 800 ms: the silent MDS costs 800 ms, not 30 s */
    int rc = call(e, e->silent, 30000, 800, 0, &ms, NULL, 0);
    assert_int_equal(rc, SPL_ERPC_TIMEDOUT);
    assert_true(ms >= 700 && ms < 2000);
    /* nothing listening: unreachable, within the deadline */
    rc = call(e, e->closed, 30000, 800, 0, &ms, NULL, 0);
    assert_true(rc == SPL_ERPC_UNREACHABLE || rc == SPL_ERPC_CONNCLOSED ||
                rc == SPL_ERPC_TIMEDOUT);
    assert_true(ms < 2000);
}

static void test_redirect_loop_bounded(void **state)
{
    struct env *e = *state;
    reset(e);
    /* 0 says "ask 1", 1 says "ask 0": stale hints chasing each other */
    e->fakes[0].code = e->fakes[1].code = SPL_EMDS_NOTLEADER;
    snprintf(e->fakes[0].hint, sizeof e->fakes[0].hint, "%s", e->fakes[1].addr);
    snprintf(e->fakes[1].hint, sizeof e->fakes[1].hint, "%s", e->fakes[0].addr);
    uint64_t ms;
    /* the attempt limit ends it long before the 60 s deadline */
    int rc = call(e, e->fakes[0].addr, 1000, 60000, 12, &ms, NULL, 0);
    assert_int_equal(rc, SPL_EMDS_NOTLEADER);
    assert_int_equal(atomic_load(&e->fakes[0].calls) + atomic_load(&e->fakes[1].calls), 12);
    assert_true(ms < 3000);
    /* the default limit: the deadline ends it */
    reset(e);
    e->fakes[0].code = e->fakes[1].code = SPL_EMDS_NOTLEADER;
    snprintf(e->fakes[0].hint, sizeof e->fakes[0].hint, "%s", e->fakes[1].addr);
    snprintf(e->fakes[1].hint, sizeof e->fakes[1].hint, "%s", e->fakes[0].addr);
    rc = call(e, e->fakes[0].addr, 1000, 1000, 0, &ms, NULL, 0);
    assert_int_equal(rc, SPL_EMDS_NOTLEADER);
    assert_true(ms >= 900 && ms < 2500);
    uint32_t n = atomic_load(&e->fakes[0].calls) + atomic_load(&e->fakes[1].calls);
    assert_true(n >= 2 && n <= SPL_MDSC_ATTEMPTS_MAX);
}

static void test_redirect_followed_to_leader(void **state)
{
    struct env *e = *state;
    reset(e);
    e->fakes[0].code = SPL_EMDS_NOTLEADER;
    snprintf(e->fakes[0].hint, sizeof e->fakes[0].hint, "%s", e->fakes[2].addr);
    e->fakes[1].code = SPL_EMDS_NOLEADER;
    char addrs[256], leader[64];
    uint64_t ms;
    snprintf(addrs, sizeof addrs, "%s,%s", e->fakes[1].addr, e->fakes[0].addr);
    assert_int_equal(call(e, addrs, 1000, 5000, 0, &ms, leader, sizeof leader), 0);
    assert_string_equal(leader, e->fakes[2].addr); /* learned from the hint */
    assert_int_equal(atomic_load(&e->fakes[2].calls), 1);
}

static void test_request_error_not_retried(void **state)
{
    struct env *e = *state;
    reset(e);
    e->fakes[0].code = SPL_EVOL_BADNAME;
    char addrs[256];
    uint64_t ms;
    snprintf(addrs, sizeof addrs, "%s,%s", e->fakes[0].addr, e->fakes[1].addr);
    assert_int_equal(call(e, addrs, 1000, 5000, 0, &ms, NULL, 0), SPL_EVOL_BADNAME);
    assert_int_equal(atomic_load(&e->fakes[0].calls), 1);
    assert_int_equal(atomic_load(&e->fakes[1].calls), 0);
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_mds_then_leader),
        cmocka_unit_test(test_attempt_cut_to_deadline),
        cmocka_unit_test(test_redirect_loop_bounded),
        cmocka_unit_test(test_redirect_followed_to_leader),
        cmocka_unit_test(test_request_error_not_retried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
