/*
 * bench_raft.c - the Raft host benchmark: three spline-raftd processes on 127.0.0.1, 4 KiB
 * proposals through the real log storage (raftlog, fdatasync'ed group commit), with the
 * same-run baselines they are judged against.
 *
 * Baselines (same disk, same run):
 *   fsync      a 4 KiB pwrite + fdatasync, appending into a pre-zeroed file (what the
 *              raft log does with its pooled segments); also into a growing file
 *   tcp        loopback TCP round trip: 4 KiB request, 64-byte reply, TCP_NODELAY
 * Raft, for 1 group and for 100 groups:
 *   QD1        one Put at a time (groups round-robin): client latency median and p99, and
 *              the leaders' propose->applied latency (their histograms over the phase)
 *   QD64       64 Puts in flight (groups round-robin) for --seconds: commits/s
 *   election   kill -9 the node leading the most groups: ms until every group has a
 *              leader again (election timeout 1000 ms, tick 100 ms)
 *   idle CPU   (100 groups, before any load) CPU% of each raftd and Send RPCs/s while idle
 *   install    (1 group) after QD64: snapshot, wipe a follower, re-add it empty: file-copy
 *              install throughput (no throttle)
 * Targets: QD1 latency <= 1.5 x (fsync + tcp); 100-group QD64 commits/s >= 3 x the
 * 1-group QD1 rate; new leader within 2 x the election timeout.
 *
 * Usage: bench_raft <spline-raftd> [--runs N] [--seconds S] [--qd1-ops N] [--dir D]
 *                   [--only 1|100]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_args.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "metrics/metrics.h"
#include "raftd_cluster.h"

#define PAYLOAD 4096
#define RUNS_MAX 16
#define QD 64
#define ELECTION_MS 1000
#define TICK_MS 100
#define KEYS_PER_GROUP 1024

static const char *g_raftd;
static const char *g_dir = NULL;
static int g_seconds = 5;
static int g_qd1_ops = 2000;
static int g_nodes = 3;
static const char *g_extra[9]; /* --raftd-arg X: passed to every raftd */

/* ---- small statistics ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static double median_d(double *v, int n)
{
    double t[RUNS_MAX];
    memcpy(t, v, (size_t)n * sizeof(double));
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---- baselines ---- */

static double loadavg(void)
{
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = 0;
        fclose(f);
    }
    return l;
}

struct fsync_res {
    double p50_us, p99_us, ops;
};

static struct fsync_res baseline_fsync(const char *dir, int n, bool prealloc)
{
    struct fsync_res r = {0};
    char path[600];
    snprintf(path, sizeof(path), "%s/fsync-baseline.bin", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return r;
    static char buf[PAYLOAD];
    memset(buf, 0x5a, sizeof(buf));
    if (prealloc) {
        char *z = calloc(1, 1 << 20);
        for (int i = 0; i < (n * PAYLOAD >> 20) + 1; i++)
            if (write(fd, z, 1 << 20) != 1 << 20)
                break;
        fdatasync(fd);
        free(z);
    }
    uint64_t *lat = calloc((size_t)n, sizeof(*lat));
    uint64_t t0 = spl_mono_ns();
    for (int i = 0; i < n; i++) {
        uint64_t a = spl_mono_ns();
        if (pwrite(fd, buf, PAYLOAD, (off_t)i * PAYLOAD) != PAYLOAD || fdatasync(fd) != 0)
            break;
        lat[i] = spl_mono_ns() - a;
    }
    double secs = (double)(spl_mono_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    r.ops = n / secs;
    r.p50_us = (double)pct(lat, (size_t)n, 0.5) / 1e3;
    r.p99_us = (double)pct(lat, (size_t)n, 0.99) / 1e3;
    free(lat);
    return r;
}

struct tcp_srv {
    int lfd;
    int n;
};

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *tcp_server(void *arg)
{
    struct tcp_srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[PAYLOAD], resp[64] = {0};
    for (int i = 0; i < s->n; i++) {
        if (read_full(fd, req, sizeof(req)) != 0 || write(fd, resp, sizeof(resp)) != sizeof(resp))
            break;
    }
    close(fd);
    return NULL;
}

static struct fsync_res baseline_tcp(int n)
{
    struct fsync_res r = {0};
    struct tcp_srv s = {.n = n};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(s.lfd, (struct sockaddr *)&a, sizeof(a));
    getsockname(s.lfd, (struct sockaddr *)&a, &len);
    listen(s.lfd, 1);
    pthread_t t;
    pthread_create(&t, NULL, tcp_server, &s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return r;
    char req[PAYLOAD] = {1}, resp[64];
    uint64_t *lat = calloc((size_t)n, sizeof(*lat));
    uint64_t t0 = spl_mono_ns();
    for (int i = 0; i < n; i++) {
        uint64_t b = spl_mono_ns();
        if (write(fd, req, sizeof(req)) != sizeof(req) || read_full(fd, resp, sizeof(resp)) != 0)
            break;
        lat[i] = spl_mono_ns() - b;
    }
    r.ops = n / ((double)(spl_mono_ns() - t0) / 1e9);
    close(fd);
    pthread_join(t, NULL);
    close(s.lfd);
    r.p50_us = (double)pct(lat, (size_t)n, 0.5) / 1e3;
    r.p99_us = (double)pct(lat, (size_t)n, 0.99) / 1e3;
    free(lat);
    return r;
}

/* A thread hop: one thread signals a condition variable, another wakes up (what each
 * hand-off between RPC, worker, sync and apply threads costs on this machine now). */
struct hop {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t sent_ns, seq, seen;
    uint64_t *lat;
    int n;
};

static void *hop_thread(void *arg)
{
    struct hop *h = arg;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n; i++) {
        while (h->seq == h->seen)
            pthread_cond_wait(&h->cond, &h->mu);
        h->seen = h->seq;
        h->lat[i] = spl_mono_ns() - h->sent_ns;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static double baseline_hop_us(int n)
{
    struct hop h = {.n = n};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cond, NULL);
    h.lat = calloc((size_t)n, sizeof(*h.lat));
    pthread_t t;
    pthread_create(&t, NULL, hop_thread, &h);
    for (int i = 0; i < n; i++) {
        usleep(200); /* the other thread is asleep when signalled, as in the host */
        pthread_mutex_lock(&h.mu);
        h.sent_ns = spl_mono_ns();
        h.seq++;
        pthread_cond_broadcast(&h.cond);
        while (h.seen != h.seq)
            pthread_cond_wait(&h.cond, &h.mu);
        pthread_mutex_unlock(&h.mu);
    }
    pthread_join(t, NULL);
    double p50 = (double)pct(h.lat, (size_t)n, 0.5) / 1e3;
    free(h.lat);
    return p50;
}

/* ---- cluster helpers ---- */

static struct rc_cluster C;
static int leaders[4097];

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_raft: %s: %s (logs: RC_KEEP=1 keeps %s)\n", what, spl_strerror(rc),
            C.root);
    rc_cluster_destroy(&C);
    exit(1);
}

/* Leaders of every group, from one status call per node. */
static int find_leaders(uint32_t groups, uint32_t timeout_ms, int dead)
{
    uint64_t end = rc_now_ms() + timeout_ms;
    for (;;) {
        uint32_t known = 0;
        memset(leaders, -1, sizeof(leaders));
        for (int i = 0; i < C.n; i++) {
            if (!C.nodes[i].pid || i == dead)
                continue;
            Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
            req.op = SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATUS;
            Spline__RaftAdminResponse *resp = NULL;
            if (rc_admin(&C, i, &req, &resp) != 0)
                continue;
            for (size_t k = 0; k < resp->n_groups; k++) {
                Spline__RaftGroupStatus *st = resp->groups[k];
                if (st->role == 3 && st->group <= groups && i != dead && leaders[st->group] < 0) {
                    leaders[st->group] = i;
                    known++;
                }
            }
            protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        if (known == groups)
            return 0;
        if (rc_now_ms() > end)
            return -ETIMEDOUT;
        usleep(2000);
    }
}

static int put_direct(uint64_t group, const char *key, struct spl_iobuf *val)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        Spline__RaftKvRequest req = SPLINE__RAFT_KV_REQUEST__INIT;
        req.group = group;
        req.op = SPLINE__RAFT_KV_OP__RAFT_KV_PUT;
        req.key.data = (uint8_t *)key;
        req.key.len = strlen(key);
        struct spl_iobuf a;
        spl_iobuf_init(&a);
        spl_iobuf_append_ref(&a, val, 0, spl_iobuf_len(val));
        ProtobufCMessage *r = NULL;
        int rc = spl_rpc_call_sync(rc_channel(&C, leaders[group]), &rc_service, 0, &req.base, &a,
                                   NULL, &r, NULL, NULL);
        spl_iobuf_reset(&a);
        if (rc == 0) {
            protobuf_c_message_free_unpacked(r, NULL);
            return 0;
        }
        find_leaders(C.groups, 5000, -1);
    }
    return -EIO;
}

/* Sum over the nodes of one of the latency histograms (0 commit, 1 persist, 2 quorum). */
static void stats_hist_which(int which, struct spl_histogram_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->unit = SPL_METRIC_UNIT_SECONDS;
    for (int i = 0; i < C.n; i++) {
        if (!C.nodes[i].pid)
            continue;
        Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
        req.op = SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATS;
        Spline__RaftAdminResponse *resp = NULL;
        if (rc_admin(&C, i, &req, &resp) != 0)
            continue;
        size_t n = which == 1 ? resp->n_persist_latency
                   : which == 2 ? resp->n_quorum_latency
                                : resp->n_commit_latency;
        const uint64_t *p = which == 1 ? resp->persist_latency
                            : which == 2 ? resp->quorum_latency
                                         : resp->commit_latency;
        for (size_t k = 0; k + 1 < n; k += 2) {
            out->buckets[p[k]] += p[k + 1];
            out->count += p[k + 1];
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}

static void stats_hist(struct spl_histogram_snapshot *out) { stats_hist_which(0, out); }

static uint64_t node_rpcs_sent(int i)
{
    Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
    req.op = SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATS;
    Spline__RaftAdminResponse *resp = NULL;
    if (rc_admin(&C, i, &req, &resp) != 0)
        return 0;
    uint64_t v = resp->rpcs_sent;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return v;
}

struct host_sums {
    uint64_t syncs, appends, rpcs, msgs;
};

static void host_sums(struct host_sums *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < C.n; i++) {
        if (!C.nodes[i].pid)
            continue;
        Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
        req.op = SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATS;
        Spline__RaftAdminResponse *resp = NULL;
        if (rc_admin(&C, i, &req, &resp) != 0)
            continue;
        out->syncs += resp->log_syncs;
        out->appends += resp->log_appends;
        out->rpcs += resp->rpcs_sent;
        out->msgs += resp->msgs_sent;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}

static uint64_t proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return utime + stime;
}

/* ---- phases ---- */

struct run_res {
    double fsync_p50_us, par3_p50_us; /* interleaved with the QD1 puts */
    double qd1_p50_us, qd1_p99_us, qd1_ops;
    double leader_p50_us, leader_p99_us;
    double qd64_ops;
    double election_ms;
    double idle_cpu_pct, idle_rpcs;
    double install_mibps, install_mib;
};

static void value_init(struct spl_iobuf *v, int seed)
{
    static char buf[PAYLOAD];
    memset(buf, 'a' + seed % 26, sizeof(buf));
    spl_iobuf_init(v);
    spl_iobuf_append(v, buf, sizeof(buf));
}

/* ---- interleaved disk baselines (measured in blocks between the Raft blocks) ---- */

struct disk_probe {
    int fd[3];
    uint64_t off;
};

static void probe_open(struct disk_probe *p)
{
    static char z[1 << 20];
    for (int i = 0; i < 3; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/probe%d.bin", C.root, i);
        p->fd[i] = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
        for (int k = 0; k < 64; k++) /* 64 MiB pre-zeroed: like a pool segment */
            if (write(p->fd[i], z, sizeof(z)) != (ssize_t)sizeof(z))
                break;
        fdatasync(p->fd[i]);
    }
    p->off = 0;
}

static void probe_close(struct disk_probe *p)
{
    for (int i = 0; i < 3; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/probe%d.bin", C.root, i);
        close(p->fd[i]);
        unlink(path);
    }
}

static uint64_t probe_one(int fd, uint64_t off)
{
    static _Thread_local char buf[PAYLOAD];
    memset(buf, 0x6b, sizeof(buf));
    uint64_t a = spl_mono_ns();
    if (pwrite(fd, buf, PAYLOAD, (off_t)(off % (64u << 20))) != PAYLOAD || fdatasync(fd) != 0)
        return 0;
    return spl_mono_ns() - a;
}

struct par3 {
    struct disk_probe *p;
    pthread_barrier_t start, end;
    int rounds;
    uint64_t dur[3];
};

struct par3_arg {
    struct par3 *x;
    int i;
};

static void *par3_thread(void *arg)
{
    struct par3_arg *a = arg;
    for (int r = 0; r < a->x->rounds; r++) {
        pthread_barrier_wait(&a->x->start);
        a->x->dur[a->i] = probe_one(a->x->p->fd[a->i], a->x->p->off + (uint64_t)r * PAYLOAD);
        pthread_barrier_wait(&a->x->end);
    }
    return NULL;
}

/* n rounds of three concurrent 4 KiB pwrite+fdatasync to three files (three replicas on
 * one disk): the time until the second finished (a quorum) into q2[]. */
static void par3_block(struct disk_probe *p, int n, uint64_t *q2)
{
    struct par3 x = {.p = p, .rounds = n};
    pthread_barrier_init(&x.start, NULL, 4);
    pthread_barrier_init(&x.end, NULL, 4);
    pthread_t t[3];
    struct par3_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i].x = &x;
        args[i].i = i;
        pthread_create(&t[i], NULL, par3_thread, &args[i]);
    }
    for (int r = 0; r < n; r++) {
        pthread_barrier_wait(&x.start);
        pthread_barrier_wait(&x.end);
        uint64_t d[3] = {x.dur[0], x.dur[1], x.dur[2]};
        qsort(d, 3, sizeof(d[0]), cmp_u64);
        q2[r] = d[1];
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    p->off += (uint64_t)n * PAYLOAD;
    pthread_barrier_destroy(&x.start);
    pthread_barrier_destroy(&x.end);
}

static void phase_qd1(uint32_t groups, struct run_res *r)
{
    uint64_t *lat = calloc((size_t)g_qd1_ops, sizeof(*lat));
    struct spl_iobuf v;
    value_init(&v, 1);
    char key[32];
    /* warm up */
    for (uint32_t i = 0; i < (groups > 100 ? groups : 100); i++) {
        snprintf(key, sizeof(key), "k%u", i % KEYS_PER_GROUP);
        if (put_direct(1 + i % groups, key, &v) != 0)
            die("warm-up put", -EIO);
    }
    struct spl_histogram_snapshot h0, h1, p0, p1, q0, q1;
    stats_hist_which(1, &p0);
    stats_hist_which(2, &q0);
    struct disk_probe probe;
    probe_open(&probe);
    uint64_t *lf = calloc((size_t)g_qd1_ops, sizeof(*lf));
    uint64_t *l3 = calloc((size_t)g_qd1_ops, sizeof(*l3));
    stats_hist(&h0);
    uint64_t raft_ns = 0;
    /* blocks of 100: fdatasync alone, three concurrent fdatasyncs, Raft puts */
    for (int b = 0; b < g_qd1_ops; b += 100) {
        int n = g_qd1_ops - b < 100 ? g_qd1_ops - b : 100;
        for (int i = 0; i < n; i++)
            lf[b + i] = probe_one(probe.fd[0], probe.off + (uint64_t)i * PAYLOAD);
        probe.off += (uint64_t)n * PAYLOAD;
        par3_block(&probe, n, l3 + b);
        uint64_t t0 = spl_mono_ns();
        for (int i = b; i < b + n; i++) {
            snprintf(key, sizeof(key), "k%d", i % KEYS_PER_GROUP);
            uint64_t a = spl_mono_ns();
            if (put_direct(1 + (uint64_t)i % groups, key, &v) != 0)
                die("put", -EIO);
            lat[i] = spl_mono_ns() - a;
        }
        raft_ns += spl_mono_ns() - t0;
    }
    probe_close(&probe);
    r->fsync_p50_us = (double)pct(lf, (size_t)g_qd1_ops, 0.5) / 1e3;
    r->par3_p50_us = (double)pct(l3, (size_t)g_qd1_ops, 0.5) / 1e3;
    free(lf);
    free(l3);
    r->qd1_ops = g_qd1_ops / ((double)raft_ns / 1e9);
    stats_hist(&h1);
    spl_histogram_snapshot_sub(&h1, &h0);
    stats_hist_which(1, &p1);
    stats_hist_which(2, &q1);
    spl_histogram_snapshot_sub(&p1, &p0);
    spl_histogram_snapshot_sub(&q1, &q0);
    printf("  qd1 %u group%s: raft log append->durable p50 %.1f us (all nodes), propose->committed "
           "p50 %.1f us, propose->applied p50 %.1f us (leaders)\n", groups, groups > 1 ? "s" : "",
           (double)spl_histogram_quantile(&p1, 0.5) / 1e3,
           (double)spl_histogram_quantile(&q1, 0.5) / 1e3,
           (double)spl_histogram_quantile(&h1, 0.5) / 1e3);
    r->leader_p50_us = (double)spl_histogram_quantile(&h1, 0.5) / 1e3;
    r->leader_p99_us = (double)spl_histogram_quantile(&h1, 0.99) / 1e3;
    r->qd1_p50_us = (double)pct(lat, (size_t)g_qd1_ops, 0.5) / 1e3;
    r->qd1_p99_us = (double)pct(lat, (size_t)g_qd1_ops, 0.99) / 1e3;
    spl_iobuf_reset(&v);
    free(lat);
}

struct qd_state {
    atomic_uint_fast64_t done, errors, next;
    atomic_int inflight;
    uint64_t deadline_ns;
    uint32_t groups;
    struct spl_iobuf val;
    pthread_mutex_t mu;
    pthread_cond_t cond;
};

static void qd_issue(struct qd_state *s);

static void qd_done(struct spl_rpc_result *res, void *ctx)
{
    struct qd_state *s = ctx;
    if (res->status == 0)
        atomic_fetch_add(&s->done, 1);
    else
        atomic_fetch_add(&s->errors, 1);
    if (spl_mono_ns() < s->deadline_ns) {
        qd_issue(s);
        return;
    }
    pthread_mutex_lock(&s->mu);
    atomic_fetch_sub(&s->inflight, 1);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void qd_issue(struct qd_state *s)
{
    uint64_t n = atomic_fetch_add(&s->next, 1);
    uint64_t group = 1 + n % s->groups;
    char key[32];
    snprintf(key, sizeof(key), "k%llu", (unsigned long long)((n / s->groups) % KEYS_PER_GROUP));
    Spline__RaftKvRequest req = SPLINE__RAFT_KV_REQUEST__INIT;
    req.group = group;
    req.op = SPLINE__RAFT_KV_OP__RAFT_KV_PUT;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    struct spl_iobuf a;
    spl_iobuf_init(&a);
    spl_iobuf_append_ref(&a, &s->val, 0, spl_iobuf_len(&s->val));
    int rc = spl_rpc_call_async(rc_channel(&C, leaders[group]), &rc_service, 0, &req.base, &a,
                                NULL, NULL, qd_done, s);
    spl_iobuf_reset(&a);
    if (rc != 0) {
        atomic_fetch_add(&s->errors, 1);
        pthread_mutex_lock(&s->mu);
        atomic_fetch_sub(&s->inflight, 1);
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
}

static void phase_qd64(uint32_t groups, struct run_res *r)
{
    static struct qd_state s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cond, NULL);
    value_init(&s.val, 2);
    s.groups = groups;
    struct host_sums h0, h1;
    host_sums(&h0);
    uint64_t cpu0 = 0, cpu1 = 0;
    for (int i = 0; i < C.n; i++)
        cpu0 += proc_cpu_ticks(C.nodes[i].pid);
    uint64_t t0 = spl_mono_ns();
    s.deadline_ns = t0 + (uint64_t)g_seconds * SPL_NS_PER_SEC;
    atomic_store(&s.inflight, QD);
    for (int i = 0; i < QD; i++)
        qd_issue(&s);
    pthread_mutex_lock(&s.mu);
    while (atomic_load(&s.inflight) > 0)
        pthread_cond_wait(&s.cond, &s.mu);
    pthread_mutex_unlock(&s.mu);
    double secs = (double)(spl_mono_ns() - t0) / 1e9;
    r->qd64_ops = (double)atomic_load(&s.done) / secs;
    host_sums(&h1);
    for (int i = 0; i < C.n; i++)
        cpu1 += proc_cpu_ticks(C.nodes[i].pid);
    double commits = (double)atomic_load(&s.done);
    printf("  qd64 %u groups: %.2f log appends, %.2f fdatasyncs, %.2f Send RPCs, %.1f msgs per "
           "commit (3 nodes); raftd CPU %.0f%% of one core per process\n", groups,
           (double)(h1.appends - h0.appends) / commits, (double)(h1.syncs - h0.syncs) / commits,
           (double)(h1.rpcs - h0.rpcs) / commits, (double)(h1.msgs - h0.msgs) / commits,
           (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) / secs * 100 / C.n);
    if (atomic_load(&s.errors))
        fprintf(stderr, "  qd64: %llu errors\n", (unsigned long long)atomic_load(&s.errors));
    spl_iobuf_reset(&s.val);
}

static void phase_election(uint32_t groups, struct run_res *r)
{
    if (find_leaders(groups, 20000, -1) != 0)
        die("leaders before the kill", -ETIMEDOUT);
    int count[RC_NODES_MAX] = {0}, victim = 0;
    for (uint32_t g = 1; g <= groups; g++)
        count[leaders[g]]++;
    for (int i = 1; i < C.n; i++)
        if (count[i] > count[victim])
            victim = i;
    uint64_t t0 = spl_mono_ns();
    kill(C.nodes[victim].pid, SIGKILL);
    if (find_leaders(groups, 30000, victim) != 0)
        die("leaders after the kill", -ETIMEDOUT);
    r->election_ms = (double)(spl_mono_ns() - t0) / 1e6;
    rc_node_kill(&C, victim, SIGKILL);
    if (rc_node_start(&C, victim, false) != 0)
        die("restart after the kill", -EIO);
}

static void phase_idle(uint32_t groups, struct run_res *r)
{
    sleep(2);
    uint64_t t0[RC_NODES_MAX], r0[RC_NODES_MAX];
    for (int i = 0; i < C.n; i++) {
        t0[i] = proc_cpu_ticks(C.nodes[i].pid);
        r0[i] = node_rpcs_sent(i);
    }
    uint64_t a = spl_mono_ns();
    sleep(10);
    double secs = (double)(spl_mono_ns() - a) / 1e9, cpu = 0, rpcs = 0;
    for (int i = 0; i < C.n; i++) {
        cpu += (double)(proc_cpu_ticks(C.nodes[i].pid) - t0[i]) / (double)sysconf(_SC_CLK_TCK);
        rpcs += (double)(node_rpcs_sent(i) - r0[i]);
    }
    r->idle_cpu_pct = cpu / secs * 100 / C.n; /* per process */
    r->idle_rpcs = rpcs / secs / C.n;          /* per process */
    (void)groups;
}

static Spline__RaftAdminResponse *admin(int node, Spline__RaftAdminOp op, uint64_t target)
{
    Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
    req.op = op;
    req.group = 1;
    req.node = target;
    Spline__RaftAdminResponse *resp = NULL;
    int rc = rc_admin(&C, node, &req, &resp);
    for (int t = 0; rc == SPL_ERAFT_CONFCHANGE_PENDING && t < 100; t++) {
        usleep(20000);
        rc = rc_admin(&C, node, &req, &resp);
    }
    if (rc != 0)
        die("admin", rc);
    return resp;
}

static void phase_install(struct run_res *r)
{
    for (int i = 0; i < C.n; i++)
        protobuf_c_message_free_unpacked(
            &admin(i, SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_SNAPSHOT, 0)->base, NULL);
    if (find_leaders(1, 10000, -1) != 0)
        die("leader", -ETIMEDOUT);
    int li = leaders[1], victim = (li + 1) % C.n;
    uint64_t vid = C.nodes[victim].id;
    rc_node_kill(&C, victim, SIGKILL);
    rc_node_wipe(&C, victim);
    protobuf_c_message_free_unpacked(
        &admin(li, SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_REMOVE, vid)->base, NULL);
    if (rc_node_start(&C, victim, true) != 0)
        die("restart of the wiped node", -EIO);
    protobuf_c_message_free_unpacked(
        &admin(li, SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_ADD_LEARNER, vid)->base, NULL);
    Spline__RaftGroupStatus st = {0};
    for (int t = 0; t < 12000; t++) {
        if (rc_status(&C, victim, 1, false, &st) == 0 && st.installs > 0)
            break;
        usleep(5000);
    }
    if (st.installs == 0)
        die("no install", -ETIMEDOUT);
    r->install_mib = (double)st.install_bytes / 1048576.0;
    r->install_mibps = r->install_mib / ((double)(st.install_ms ? st.install_ms : 1) / 1e3);
}

static void run_cluster(uint32_t groups, int run, struct run_res *r)
{
    memset(r, 0, sizeof(*r));
    int rc = rc_cluster_init(&C, g_raftd, g_nodes, groups, ELECTION_MS, TICK_MS);
    if (rc != 0)
        die("cluster init", rc);
    static char pool[64];
    snprintf(pool, sizeof(pool), "--log_pool_files=%u", groups + 16);
    C.extra[0] = pool;
    C.extra[1] = "--log_level=warn";
    for (int i = 0; g_extra[i] && i < 8; i++)
        C.extra[2 + i] = g_extra[i];
    if ((rc = rc_start_all(&C)) != 0)
        die("start", rc);
    if ((rc = find_leaders(groups, 30000, -1)) != 0)
        die("leaders", rc);
    if (groups > 1)
        phase_idle(groups, r);
    phase_qd1(groups, r);
    phase_qd64(groups, r);
    if (g_nodes > 1)
        phase_election(groups, r);
    if (groups == 1 && g_nodes > 1) {
        if (find_leaders(groups, 20000, -1) != 0)
            die("leaders after restart", -ETIMEDOUT);
        phase_install(r);
    }
    printf("run %d, %3u group%s: QD1 p50 %7.1f us p99 %7.1f us (leader p50 %7.1f p99 %7.1f) "
           "%6.0f ops/s [same blocks: fdatasync p50 %.1f us, 3 concurrent fdatasyncs 2nd done "
           "p50 %.1f us] | QD64 %7.0f commits/s | re-election %6.0f ms",
           run, groups, groups > 1 ? "s" : " ", r->qd1_p50_us, r->qd1_p99_us, r->leader_p50_us,
           r->leader_p99_us, r->qd1_ops, r->fsync_p50_us, r->par3_p50_us, r->qd64_ops,
           r->election_ms);
    if (groups > 1)
        printf(" | idle %.1f%% CPU, %.1f Send RPCs/s per process", r->idle_cpu_pct, r->idle_rpcs);
    if (groups == 1)
        printf(" | install %.1f MiB at %.1f MiB/s", r->install_mib, r->install_mibps);
    printf("\n");
    fflush(stdout);
    rc_cluster_destroy(&C);
}

int main(int argc, char **argv)
{
    int runs = 3, only = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s <spline-raftd> [--runs N] [--seconds S] [--qd1-ops N] "
                        "[--dir D] [--only 1|100]\n", argv[0]);
        return 2;
    }
    g_raftd = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--runs") == 0)
            runs = (int)bench_arg_u64("--runs", argv[i + 1], 1, 100);
        else if (strcmp(argv[i], "--seconds") == 0)
            g_seconds = (int)bench_arg_u64("--seconds", argv[i + 1], 1, 3600);
        else if (strcmp(argv[i], "--qd1-ops") == 0)
            g_qd1_ops = (int)bench_arg_u64("--qd1-ops", argv[i + 1], 1, 10000000);
        else if (strcmp(argv[i], "--dir") == 0)
            g_dir = argv[i + 1];
        else if (strcmp(argv[i], "--only") == 0)
            only = (int)bench_arg_u64("--only", argv[i + 1], 0, 100);
        else if (strcmp(argv[i], "--nodes") == 0)
            g_nodes = (int)bench_arg_u64("--nodes", argv[i + 1], 1, 5);
        else if (strcmp(argv[i], "--raftd-arg") == 0) {
            int k = 0;
            while (g_extra[k] && k < 7)
                k++;
            g_extra[k] = argv[i + 1];
        }
    }
    if (runs < 1 || runs > RUNS_MAX)
        runs = 3;
    if (g_dir)
        setenv("TMPDIR", g_dir, 1);
    spl_log_set_level(SPL_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    const char *dir = g_dir ? g_dir : "/tmp";

    double f_p50[RUNS_MAX], f_ops[RUNS_MAX], fg_p50[RUNS_MAX], t_p50[RUNS_MAX];
    double q1[2][RUNS_MAX], q1p99[2][RUNS_MAX], ld[2][RUNS_MAX], ld99[2][RUNS_MAX],
        q1ops[2][RUNS_MAX], q64[2][RUNS_MAX], el[2][RUNS_MAX], idle[RUNS_MAX], idle_rpcs[RUNS_MAX],
        inst[RUNS_MAX];
    double r_lat[RUNS_MAX], r_leader[RUNS_MAX], r_gc[RUNS_MAX], r_par3[RUNS_MAX];
    double fs_i[2][RUNS_MAX], p3_i[2][RUNS_MAX];
    const uint32_t gs[2] = {1, 100};
    for (int run = 0; run < runs; run++) {
        struct fsync_res fp = baseline_fsync(dir, 2000, true);
        struct fsync_res fg = baseline_fsync(dir, 1000, false);
        struct fsync_res tc = baseline_tcp(20000);
        double hop = baseline_hop_us(2000);
        f_p50[run] = fp.p50_us;
        f_ops[run] = fp.ops;
        fg_p50[run] = fg.p50_us;
        t_p50[run] = tc.p50_us;
        printf("run %d baselines: fdatasync 4 KiB (pre-zeroed file) p50 %.1f us p99 %.1f us "
               "%.0f ops/s; (growing file) p50 %.1f us; loopback TCP RTT p50 %.1f us p99 %.1f us; "
               "thread wake-up p50 %.1f us; load average %.1f\n",
               run, fp.p50_us, fp.p99_us, fp.ops, fg.p50_us, tc.p50_us, tc.p99_us, hop,
               loadavg());
        for (int k = 0; k < 2; k++) {
            struct run_res r = {0};
            if (only && (uint32_t)only != gs[k])
                continue;
            run_cluster(gs[k], run, &r);
            q1[k][run] = r.qd1_p50_us;
            fs_i[k][run] = r.fsync_p50_us;
            p3_i[k][run] = r.par3_p50_us;
            q1p99[k][run] = r.qd1_p99_us;
            ld[k][run] = r.leader_p50_us;
            ld99[k][run] = r.leader_p99_us;
            q1ops[k][run] = r.qd1_ops;
            q64[k][run] = r.qd64_ops;
            el[k][run] = r.election_ms;
            if (k == 1) {
                idle[run] = r.idle_cpu_pct;
                idle_rpcs[run] = r.idle_rpcs;
            } else {
                inst[run] = r.install_mibps;
            }
        }
        double floor = fs_i[0][run] + t_p50[run];
        r_lat[run] = q1[0][run] / floor;
        r_leader[run] = ld[0][run] / floor;
        r_par3[run] = q1[0][run] / (p3_i[0][run] + t_p50[run]);
        r_gc[run] = q64[1][run] / q1ops[0][run];
        printf("run %d ratios (1 group): QD1 client p50 / (fdatasync + RTT) = %.2f, leader p50 / "
               "(fdatasync + RTT) = %.2f, client p50 / (2nd of 3 concurrent fdatasyncs + RTT) = "
               "%.2f; 100-group QD64 / 1-group QD1 rate = %.1f\n",
               run, r_lat[run], r_leader[run], r_par3[run], r_gc[run]);
    }
    printf("\nmedians over %d runs\n", runs);
    printf("baseline fdatasync 4 KiB (pre-zeroed) p50 %.1f us, %.0f ops/s; growing file p50 "
           "%.1f us; TCP RTT p50 %.1f us\n", median_d(f_p50, runs), median_d(f_ops, runs),
           median_d(fg_p50, runs), median_d(t_p50, runs));
    for (int k = 0; k < 2; k++) {
        if (only && (uint32_t)only != gs[k])
            continue;
        printf("%3u group%s: QD1 p50 %.1f us p99 %.1f us, leader p50 %.1f us p99 %.1f us, "
               "%.0f ops/s (interleaved fdatasync p50 %.1f us, 2nd of 3 concurrent %.1f us); "
               "QD64 %.0f commits/s; re-election %.0f ms (timeout %d ms)\n", gs[k],
               k ? "s" : " ", median_d(q1[k], runs), median_d(q1p99[k], runs),
               median_d(ld[k], runs), median_d(ld99[k], runs), median_d(q1ops[k], runs),
               median_d(fs_i[k], runs), median_d(p3_i[k], runs), median_d(q64[k], runs),
               median_d(el[k], runs), ELECTION_MS);
    }
    if (!only || only == 100)
        printf("idle 3 x 100 groups: %.1f%% CPU per process, %.1f Send RPCs/s per process\n",
               median_d(idle, runs), median_d(idle_rpcs, runs));
    if (!only || only == 1)
        printf("snapshot install: %.1f MiB/s\n", median_d(inst, runs));
    if (!only)
        printf("ratios (median of per-run ratios): QD1 client / (fdatasync + RTT) = %.2f (target "
               "<= 1.5), leader-side = %.2f, client / (2nd of 3 concurrent fdatasyncs + RTT) = "
               "%.2f; 100-group QD64 / 1-group QD1 = %.1f (target >= 3); re-election / election "
               "timeout = %.2f (1 group), %.2f (100 groups) (target <= 2)\n",
               median_d(r_lat, runs), median_d(r_leader, runs), median_d(r_par3, runs),
               median_d(r_gc, runs), median_d(el[0], runs) / ELECTION_MS,
               median_d(el[1], runs) / ELECTION_MS);
    return 0;
}
