/*
 * echo.c - the built-in echo service (proto/rpc.proto): replies with the request's text,
 * seq and attachment. For health checks, tests and benchmarks.
 *
 * delay_ms > 0 replies from a short-lived thread after the delay (at most
 * SPL__RPC_ECHO_DELAYED_MAX at a time, else SPL_ERPC_OVERLOAD; delay capped at
 * SPL__RPC_ECHO_DELAY_MS_MAX), which exercises replies from another thread.
 * fail_code != 0 replies with that error (and fail_hint as the leader hint).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "rpc.pb-c.h"
#include "rpc/rpc.h"

#define SPL__RPC_ECHO_DELAYED_MAX 64
#define SPL__RPC_ECHO_DELAY_MS_MAX 60000u

static atomic_int spl_rpc_echo_delayed;

static void spl_rpc_echo_answer(spl_rpc_call *call)
{
    const Spline__RpcEchoRequest *req = (const Spline__RpcEchoRequest *)spl_rpc_call_request(call);
    if (req->fail_code != 0) {
        spl_rpc_reply_redirect(call, spl_err_from_wire(req->fail_code), "echo: failure requested",
                               req->fail_hint[0] != '\0' ? req->fail_hint : NULL);
        return;
    }
    struct spl_iobuf *att = spl_rpc_call_attachment(call);
    Spline__RpcEchoResponse resp = SPLINE__RPC_ECHO_RESPONSE__INIT;
    resp.text = req->text;
    resp.seq = req->seq;
    resp.attachment_len = spl_iobuf_len(att);
    spl_rpc_reply(call, &resp.base, att);
}

static void *spl_rpc_echo_later(void *arg)
{
    spl_rpc_call *call = arg;
    const Spline__RpcEchoRequest *req = (const Spline__RpcEchoRequest *)spl_rpc_call_request(call);
    uint32_t delay_ms = req->delay_ms;
    if (delay_ms > SPL__RPC_ECHO_DELAY_MS_MAX)
        delay_ms = SPL__RPC_ECHO_DELAY_MS_MAX;
    spl_sleep_ns(delay_ms * SPL_NS_PER_MS);
    spl_rpc_echo_answer(call);
    atomic_fetch_sub(&spl_rpc_echo_delayed, 1);
    return NULL;
}

static void spl_rpc_echo_handler(spl_rpc_call *call, void *service_ctx)
{
    const Spline__RpcEchoRequest *req = (const Spline__RpcEchoRequest *)spl_rpc_call_request(call);
    if (req->delay_ms == 0) {
        spl_rpc_echo_answer(call);
        return;
    }
    if (atomic_fetch_add(&spl_rpc_echo_delayed, 1) >= SPL__RPC_ECHO_DELAYED_MAX) {
        atomic_fetch_sub(&spl_rpc_echo_delayed, 1);
        spl_rpc_reply_error(call, SPL_ERPC_OVERLOAD, "echo: too many delayed replies");
        return;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, spl_rpc_echo_later, call);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&spl_rpc_echo_delayed, 1);
        spl_rpc_reply_error(call, SPL_ERPC_OVERLOAD, "echo: cannot start a reply thread");
    }
}

static const struct spl_rpc_method spl_rpc_echo_methods[] = {
    [SPL_RPC_ECHO_METHOD_ECHO] = {
        .name = "Echo",
        .request = &spline__rpc_echo_request__descriptor,
        .response = &spline__rpc_echo_response__descriptor,
        .handler = spl_rpc_echo_handler,
    },
};

const struct spl_rpc_service spl_rpc_echo_service = {
    .id = SPL_RPC_SERVICE_ECHO,
    .name = "echo",
    .methods = spl_rpc_echo_methods,
    .method_count = SPL_ARRAY_SIZE(spl_rpc_echo_methods),
};
