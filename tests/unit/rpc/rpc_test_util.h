/*
 * rpc_test_util.h - helpers shared by the RPC tests: an in-process echo server, a raw
 * socket client that builds frames by hand, small waiting primitives. Header-only
 * (static functions) so that each test binary stays one file plus this.
 */
#ifndef SPL_TESTS_RPC_TEST_UTIL_H
#define SPL_TESTS_RPC_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "rpc.pb-c.h"
#include "rpc/frame.h"
#include "rpc/rpc.h"

/* ---- a raw client ---- */

static inline int rt_raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static inline int rt_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes within timeout_ms. 1: done, 0: EOF/reset first, -1: timeout. */
static inline int rt_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    uint64_t deadline = spl_mono_ms() + (uint64_t)timeout_ms;
    while (len > 0) {
        int64_t left = (int64_t)(deadline - spl_mono_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr == 0)
            return -1;
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Build a frame: header fields as given (version, flags...), meta and attachment bytes,
 * a correct payload trailer when flags ask for it. Returns the malloc'd frame. */
static inline uint8_t *rt_build_frame(const struct spl_rpc_header *h, const void *meta,
                                      size_t meta_len, const void *att, size_t att_len,
                                      size_t *len_out)
{
    bool crc = (h->flags & SPL_RPC_FLAG_PAYLOAD_CRC) != 0;
    size_t len = SPL_RPC_HEADER_SIZE + meta_len + att_len + (crc ? 4 : 0);
    uint8_t *buf = malloc(len);
    struct spl_rpc_header hh = *h;
    hh.meta_len = (uint32_t)meta_len;
    hh.attach_len = (uint32_t)att_len;
    spl_rpc_header_encode(&hh, buf);
    if (meta_len)
        memcpy(buf + SPL_RPC_HEADER_SIZE, meta, meta_len);
    if (att_len)
        memcpy(buf + SPL_RPC_HEADER_SIZE + meta_len, att, att_len);
    if (crc) {
        struct spl_iobuf a;
        spl_iobuf_init(&a);
        if (att_len)
            spl_iobuf_append(&a, att, att_len);
        spl_rpc_put_le32(buf + len - 4, spl_rpc_payload_crc(meta, meta_len, &a));
        spl_iobuf_reset(&a);
    }
    *len_out = len;
    return buf;
}

/* Re-seal a header after a test changed its bytes (so that only the intended field is
 * wrong). */
static inline void rt_reseal(uint8_t *hdr)
{
    spl_rpc_put_le32(hdr + 28, spl_crc32c(0, hdr, 28));
}

/* An echo request frame (service echo, method 0). */
static inline uint8_t *rt_echo_frame(uint64_t id, const char *text, size_t att_len,
                                     size_t *len_out)
{
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    req.text = (char *)text;
    req.seq = id;
    uint8_t meta[256];
    size_t meta_len = protobuf_c_message_pack(&req.base, meta);
    uint8_t *att = att_len ? calloc(1, att_len) : NULL;
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .service_id = SPL_RPC_SERVICE_ECHO,
                               .method_index = SPL_RPC_ECHO_METHOD_ECHO, .request_id = id};
    uint8_t *f = rt_build_frame(&h, meta, meta_len, att, att_len, len_out);
    free(att);
    return f;
}

/* Read one whole frame: 1 and *h filled (meta copied to meta/meta_cap, attachment
 * skipped), 0 closed, -1 timeout, -2 malformed. */
static inline int rt_read_frame(int fd, int timeout_ms, struct spl_rpc_header *h, uint8_t *meta,
                                size_t meta_cap)
{
    uint8_t hdr[SPL_RPC_HEADER_SIZE];
    int rc = rt_read_exact(fd, hdr, sizeof(hdr), timeout_ms);
    if (rc != 1)
        return rc;
    if (spl_rpc_header_decode(hdr, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, h) != 0)
        return -2;
    if (h->meta_len > meta_cap)
        return -2;
    if (h->meta_len && (rc = rt_read_exact(fd, meta, h->meta_len, timeout_ms)) != 1)
        return rc;
    size_t skip = h->attach_len + ((h->flags & SPL_RPC_FLAG_PAYLOAD_CRC) ? 4 : 0);
    uint8_t junk[4096];
    while (skip > 0) {
        size_t n = skip < sizeof(junk) ? skip : sizeof(junk);
        if ((rc = rt_read_exact(fd, junk, n, timeout_ms)) != 1)
            return rc;
        skip -= n;
    }
    return 1;
}

/* Expect an error reply frame for `id` with wire code `code`: returns true when so. */
static inline bool rt_expect_error(int fd, uint64_t id, int code)
{
    struct spl_rpc_header h;
    uint8_t meta[4096];
    if (rt_read_frame(fd, 3000, &h, meta, sizeof(meta)) != 1)
        return false;
    if (!(h.flags & SPL_RPC_FLAG_RESPONSE) || !(h.flags & SPL_RPC_FLAG_ERROR) ||
        h.request_id != id)
        return false;
    Spline__RpcErrorMeta *em = spline__rpc_error_meta__unpack(NULL, h.meta_len, meta);
    if (em == NULL)
        return false;
    bool ok = spl_err_from_wire(em->code) == code && em->message[0] != '\0';
    spline__rpc_error_meta__free_unpacked(em, NULL);
    return ok;
}

/* True when the peer closes fd within timeout_ms (EOF or reset), skipping any frames. */
static inline bool rt_expect_close(int fd, int timeout_ms)
{
    uint64_t deadline = spl_mono_ms() + (uint64_t)timeout_ms;
    uint8_t buf[4096];
    while (spl_mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 50);
        if (pr <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return true;
    }
    return false;
}

/* ---- a countdown latch ---- */

struct rt_latch {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    long count;
};

static inline void rt_latch_init(struct rt_latch *l, long count)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->count = count;
}

static inline void rt_latch_down(struct rt_latch *l)
{
    pthread_mutex_lock(&l->mu);
    if (--l->count <= 0)
        pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

/* Wait until zero; false on timeout. */
static inline bool rt_latch_wait(struct rt_latch *l, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    while (l->count > 0 && rc == 0)
        rc = pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    bool done = l->count <= 0;
    pthread_mutex_unlock(&l->mu);
    return done;
}

static inline void rt_latch_destroy(struct rt_latch *l)
{
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
}

static inline void rt_address(char *buf, size_t len, uint16_t port)
{
    snprintf(buf, len, "127.0.0.1:%u", port);
}

#endif
