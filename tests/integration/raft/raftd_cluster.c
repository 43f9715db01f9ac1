/*
 * raftd_cluster.c - see raftd_cluster.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "raftd_cluster.h"

static const struct spl_rpc_method rc_methods[] = {
    {"Kv", &spline__raft_kv_request__descriptor, &spline__raft_kv_response__descriptor, NULL},
    {"Admin", &spline__raft_admin_request__descriptor, &spline__raft_admin_response__descriptor,
     NULL},
};
const struct spl_rpc_service rc_service = {SPL_RPC_SERVICE_CLI, "raftd", rc_methods, 2};

/* every pid started, for the exit handler */
static pid_t rc_pids[64];
static int rc_pid_count;

static void rc_kill_all(void)
{
    for (int i = 0; i < rc_pid_count; i++)
        if (rc_pids[i] > 0) {
            kill(rc_pids[i], SIGKILL);
            waitpid(rc_pids[i], NULL, 0);
            rc_pids[i] = 0;
        }
}

static void rc_pid_add(pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(rc_kill_all);
        registered = true;
    }
    for (int i = 0; i < rc_pid_count; i++)
        if (rc_pids[i] == 0) {
            rc_pids[i] = pid;
            return;
        }
    if (rc_pid_count < 64)
        rc_pids[rc_pid_count++] = pid;
}

static void rc_pid_del(pid_t pid)
{
    for (int i = 0; i < rc_pid_count; i++)
        if (rc_pids[i] == pid)
            rc_pids[i] = 0;
}

uint64_t rc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int free_port(uint16_t *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        rc = -errno;
    close(fd);
    *out = ntohs(a.sin_port);
    return rc;
}

int rc_cluster_init(struct rc_cluster *c, const char *raftd, int n, uint32_t groups,
                    uint32_t election_ms, uint32_t tick_ms)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->raftd, sizeof(c->raftd), "%s", raftd);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(c->root, sizeof(c->root), "%s/raftd-XXXXXX", tmp);
    if (!mkdtemp(c->root))
        return -errno;
    c->n = n;
    c->groups = groups;
    c->election_ms = election_ms;
    c->tick_ms = tick_ms;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        struct rc_node *nd = &c->nodes[i];
        nd->id = (uint64_t)i + 1;
        int rc = free_port(&nd->port);
        if (rc != 0)
            return rc;
        snprintf(nd->addr, sizeof(nd->addr), "127.0.0.1:%u", nd->port);
        snprintf(nd->dir, sizeof(nd->dir), "%s/n%d", c->root, i + 1);
        off += (size_t)snprintf(c->peers + off, sizeof(c->peers) - off, "%s%llu=%s",
                                i ? "," : "", (unsigned long long)nd->id, nd->addr);
    }
    struct spl_rpc_runtime_opts ro = {.io_threads = 1, .name = "rc"};
    return spl_rpc_runtime_create(&ro, &c->rt);
}

static void rmtree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "rc: %s failed\n", cmd);
}

void rc_cluster_destroy(struct rc_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid)
            rc_node_kill(c, i, SIGKILL);
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].ch)
            spl_rpc_channel_close(c->nodes[i].ch);
    spl_rpc_runtime_destroy(c->rt);
    if (c->root[0] && !getenv("RC_KEEP"))
        rmtree(c->root);
    memset(c, 0, sizeof(*c));
}

spl_rpc_channel *rc_channel(struct rc_cluster *c, int i)
{
    struct rc_node *nd = &c->nodes[i];
    if (!nd->ch) {
        struct spl_rpc_channel_opts o = {.call_timeout_ms = 5000, .connect_timeout_ms = 1000,
                                         .backoff_initial_ms = 10, .backoff_max_ms = 100};
        if (spl_rpc_channel_open(c->rt, nd->addr, &o, &nd->ch) != 0)
            return NULL;
    }
    return nd->ch;
}

int rc_node_start(struct rc_cluster *c, int i, bool join)
{
    struct rc_node *nd = &c->nodes[i];
    char a_id[32], a_listen[96], a_peers[1100], a_groups[32], a_dir[600], a_el[48], a_tick[48],
        a_pf[640], pf[620], logf[620];
    snprintf(pf, sizeof(pf), "%s.port", nd->dir);
    snprintf(logf, sizeof(logf), "%s.log", nd->dir);
    unlink(pf);
    snprintf(a_id, sizeof(a_id), "--id=%llu", (unsigned long long)nd->id);
    snprintf(a_listen, sizeof(a_listen), "--listen=%s", nd->addr);
    snprintf(a_peers, sizeof(a_peers), "--peers=%s", c->peers);
    snprintf(a_groups, sizeof(a_groups), "--groups=%u", c->groups);
    snprintf(a_dir, sizeof(a_dir), "--data_dir=%s", nd->dir);
    snprintf(a_el, sizeof(a_el), "--election_ms=%u", c->election_ms);
    snprintf(a_tick, sizeof(a_tick), "--tick_ms=%u", c->tick_ms);
    snprintf(a_pf, sizeof(a_pf), "--port_file=%s", pf);
    const char *argv[64] = {c->raftd, a_id, a_listen, a_peers, a_groups, a_dir, a_el, a_tick,
                            a_pf, "--http_port=0"};
    int argc = 10;
    if (join)
        argv[argc++] = "--join";
    for (int k = 0; c->extra[k] && argc < 60; k++)
        argv[argc++] = c->extra[k];
    for (int k = 0; nd->extra[k] && argc < 62; k++)
        argv[argc++] = nd->extra[k];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(c->raftd, (char *const *)argv);
        _exit(127);
    }
    nd->pid = pid;
    rc_pid_add(pid);
    for (int t = 0; t < 12000; t++) { /* 120 s: pool formatting on a loaded disk */
        if (access(pf, F_OK) == 0)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rc_pid_del(pid);
            nd->pid = 0;
            fprintf(stderr, "rc: node %llu exited at start (status %d), see %s\n",
                    (unsigned long long)nd->id, st, logf);
            return -ECHILD;
        }
        sleep_ms(10);
    }
    return -ETIMEDOUT;
}

int rc_start_all(struct rc_cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        int rc = rc_node_start(c, i, false);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void rc_node_kill(struct rc_cluster *c, int i, int sig)
{
    struct rc_node *nd = &c->nodes[i];
    if (!nd->pid)
        return;
    kill(nd->pid, sig);
    for (int t = 0; t < 1000; t++) {
        if (waitpid(nd->pid, NULL, WNOHANG) == nd->pid) {
            rc_pid_del(nd->pid);
            nd->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(nd->pid, SIGKILL);
    waitpid(nd->pid, NULL, 0);
    rc_pid_del(nd->pid);
    nd->pid = 0;
}

void rc_node_wipe(struct rc_cluster *c, int i) { rmtree(c->nodes[i].dir); }

int rc_node_index(const struct rc_cluster *c, uint64_t id)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].id == id)
            return i;
    return -1;
}

int rc_admin(struct rc_cluster *c, int i, const Spline__RaftAdminRequest *req,
             Spline__RaftAdminResponse **resp)
{
    spl_rpc_channel *ch = rc_channel(c, i);
    if (!ch)
        return -ENOMEM;
    struct spl_rpc_call_opts o = {.timeout_ms = 10000, .wait_for_ready = true};
    ProtobufCMessage *r = NULL;
    int rc = spl_rpc_call_sync(ch, &rc_service, 1, &req->base, NULL, &o, &r, NULL, NULL);
    *resp = (Spline__RaftAdminResponse *)r;
    return rc;
}

int rc_status(struct rc_cluster *c, int i, uint64_t group, bool digest,
              Spline__RaftGroupStatus *out)
{
    Spline__RaftAdminRequest req = SPLINE__RAFT_ADMIN_REQUEST__INIT;
    req.op = SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATUS;
    req.group = group;
    req.digest = digest;
    Spline__RaftAdminResponse *resp = NULL;
    if (!c->nodes[i].pid)
        return SPL_ERPC_UNREACHABLE;
    int rc = rc_admin(c, i, &req, &resp);
    if (rc != 0)
        return rc;
    if (resp->n_groups != 1) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return SPL_ERAFT_NOGROUP;
    }
    *out = *resp->groups[0];
    out->voters = NULL;
    out->learners = NULL;
    out->n_voters = resp->groups[0]->n_voters;
    out->n_learners = resp->groups[0]->n_learners;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

int rc_leader(struct rc_cluster *c, uint64_t group, uint32_t timeout_ms)
{
    uint64_t end = rc_now_ms() + timeout_ms;
    do {
        uint64_t leader = 0, term = 0;
        bool agree = true;
        int live = 0;
        for (int i = 0; i < c->n; i++) {
            Spline__RaftGroupStatus st;
            if (!c->nodes[i].pid || rc_status(c, i, group, false, &st) != 0)
                continue;
            live++;
            if (st.leader == 0 || (leader && (st.leader != leader || st.term != term)))
                agree = false;
            leader = st.leader ? st.leader : leader;
            term = st.term;
        }
        int li = leader ? rc_node_index(c, leader) : -1;
        if (agree && live > 0 && li >= 0 && c->nodes[li].pid) {
            Spline__RaftGroupStatus st;
            if (rc_status(c, li, group, false, &st) == 0 && st.role == 3)
                return li;
        }
        sleep_ms(5);
    } while (rc_now_ms() < end);
    return -ETIMEDOUT;
}

static int addr_index(struct rc_cluster *c, const char *addr)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->nodes[i].addr, addr) == 0)
            return i;
    return -1;
}

/* One Kv call with leader discovery and retries. */
static int kv_call(struct rc_cluster *c, const Spline__RaftKvRequest *req,
                   struct spl_iobuf *att, Spline__RaftKvResponse **resp_out,
                   struct spl_iobuf *resp_att, uint32_t timeout_ms)
{
    static int hint = 0;
    uint64_t end = rc_now_ms() + timeout_ms;
    int rc = -ETIMEDOUT;
    while (rc_now_ms() < end) {
        if (hint < 0 || hint >= c->n || !c->nodes[hint].pid)
            hint = rc_leader(c, req->group, (uint32_t)(end - rc_now_ms()));
        if (hint < 0)
            return -ETIMEDOUT;
        struct spl_iobuf a;
        spl_iobuf_init(&a);
        if (att)
            spl_iobuf_append_ref(&a, att, 0, spl_iobuf_len(att));
        struct spl_rpc_error_info err;
        struct spl_rpc_call_opts o = {.timeout_ms = 5000};
        ProtobufCMessage *r = NULL;
        spl_rpc_channel *ch = rc_channel(c, hint);
        rc = ch ? spl_rpc_call_sync(ch, &rc_service, 0, &req->base, &a, &o, &r, resp_att, &err)
                : -ENOMEM;
        spl_iobuf_reset(&a);
        if (rc == 0) {
            *resp_out = (Spline__RaftKvResponse *)r;
            return 0;
        }
        if (rc == SPL_ENOTLEADER && err.leader_hint[0] && addr_index(c, err.leader_hint) >= 0)
            hint = addr_index(c, err.leader_hint);
        else if (rc == SPL_ENOTLEADER || rc == SPL_ERPC_UNREACHABLE ||
                 rc == SPL_ERPC_CONNCLOSED || rc == SPL_ERPC_TIMEDOUT || rc == SPL_ERAFT_DROPPED ||
                 rc == SPL_ERAFTNODE_TIMEDOUT || rc == SPL_ERAFT_TRANSFERRING)
            hint = -1;
        else
            return rc;
        sleep_ms(10);
    }
    return rc;
}

int rc_put(struct rc_cluster *c, uint64_t group, const char *key, const void *value,
           size_t len, uint32_t timeout_ms, uint64_t *index_out)
{
    Spline__RaftKvRequest req = SPLINE__RAFT_KV_REQUEST__INIT;
    req.group = group;
    req.op = SPLINE__RAFT_KV_OP__RAFT_KV_PUT;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    struct spl_iobuf att;
    spl_iobuf_init(&att);
    spl_iobuf_append(&att, value, len);
    Spline__RaftKvResponse *resp = NULL;
    int rc = kv_call(c, &req, &att, &resp, NULL, timeout_ms);
    spl_iobuf_reset(&att);
    if (rc == 0) {
        if (index_out)
            *index_out = resp->index;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    return rc;
}

int rc_get(struct rc_cluster *c, uint64_t group, const char *key, void *buf, size_t cap,
           size_t *len_out, bool *found_out, uint32_t timeout_ms)
{
    Spline__RaftKvRequest req = SPLINE__RAFT_KV_REQUEST__INIT;
    req.group = group;
    req.op = SPLINE__RAFT_KV_OP__RAFT_KV_GET;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    struct spl_iobuf val;
    spl_iobuf_init(&val);
    Spline__RaftKvResponse *resp = NULL;
    int rc = kv_call(c, &req, NULL, &resp, &val, timeout_ms);
    if (rc == 0) {
        *found_out = resp->found;
        *len_out = spl_iobuf_copy_out(&val, 0, buf, cap);
        if (spl_iobuf_len(&val) > cap)
            *len_out = spl_iobuf_len(&val);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    spl_iobuf_reset(&val);
    return rc;
}

int rc_wait_applied(struct rc_cluster *c, uint64_t group, uint64_t index, uint32_t timeout_ms)
{
    uint64_t end = rc_now_ms() + timeout_ms;
    do {
        bool all = true;
        for (int i = 0; i < c->n && all; i++) {
            Spline__RaftGroupStatus st;
            if (!c->nodes[i].pid)
                continue;
            if (rc_status(c, i, group, false, &st) != 0 || st.applied < index)
                all = false;
        }
        if (all)
            return 0;
        sleep_ms(10);
    } while (rc_now_ms() < end);
    return -ETIMEDOUT;
}
