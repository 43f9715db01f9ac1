/*
 * raftd_main.c - spline-raftd: a raft host daemon running N groups of the test KV FSM,
 * for integration tests and the Raft benchmark (docs/raft-host.md).
 *
 * It serves the Raft service (peers), a small client service on SPL_RPC_SERVICE_CLI
 * (raft.proto: Kv = put/get/delete, Admin = status, membership, transfer, snapshot,
 * create/destroy group, stats) and HTTP /metrics /status /healthz. Groups 1..groups are
 * created at start: founding members of every node in --peers, or empty members waiting
 * for the leader with --join (a node re-added after its disk was wiped must use --join:
 * a founding member with an empty disk could vote twice in a term it forgot). Groups
 * found on disk are reopened as they were. SIGTERM / SIGINT stop it cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/assert.h"
#include "base/config.h"
#include "base/errors.h"
#include "base/log.h"
#include "metrics/http.h"
#include "metrics/metrics.h"
#include "raft.pb-c.h"
#include "raftnode/kvfsm.h"
#include "raftnode/raftnode.h"
#include "rpc/rpc.h"

#define TAG "raftd"
#define RAFTD_GROUPS_MAX 4096

struct raftd_config {
    int64_t id;
    char listen[128];
    char peers[8192];
    int64_t groups;
    char data_dir[300];
    uint64_t election_ms;
    uint64_t tick_ms;
    bool join;
    int64_t workers;
    int64_t apply_threads;
    int64_t io_threads;
    uint64_t log_segment_size;
    int64_t log_pool_files;
    int64_t log_sync_threads;
    bool log_syncfs;
    int64_t snapshot_interval;
    int64_t snapshot_keep;
    uint64_t install_rate;
    uint64_t install_piece;
    int64_t http_port;
    char log_level[16];
    char log_file[300];
    char port_file[300];
    int fsm;
};

static const char *const fsm_choices[] = {"kv", "null", NULL};

#define F(x) offsetof(struct raftd_config, x)
#define S(x) sizeof(((struct raftd_config *)0)->x)
#define DUR(n, def, lo, hi, field, d)                                                    \
    {.name = n, .type = SPL_CFG_DURATION, .default_value = def, .min = lo, .max = hi,     \
     .offset = F(field), .doc = d}
#define SIZE(n, def, lo, hi, field, d)                                                   \
    {.name = n, .type = SPL_CFG_SIZE, .default_value = def, .min = lo, .max = hi,         \
     .offset = F(field), .doc = d}
#define STR(n, def, field, d)                                                            \
    {.name = n, .type = SPL_CFG_STRING, .default_value = def, .offset = F(field),         \
     .str_cap = S(field), .doc = d}
#define INT(n, def, lo, hi, field, d)                                                    \
    {.name = n, .type = SPL_CFG_INT, .default_value = def, .min = lo, .max = hi,          \
     .offset = F(field), .doc = d}
#define BOOL(n, def, field, d)                                                           \
    {.name = n, .type = SPL_CFG_BOOL, .default_value = def, .offset = F(field), .doc = d}

static const struct spl_config_key raftd_keys[] = {
    INT("id", NULL, 1, INT64_MAX, id, "this node's id (the same in every group)"),
    STR("listen", "127.0.0.1:0", listen, "RPC address to bind (host:port; port 0: any)"),
    STR("peers", NULL, peers, "every node of the groups: id=host:port,id=host:port,..."),
    INT("groups", "1", 0, RAFTD_GROUPS_MAX, groups, "groups 1..N to run"),
    STR("data_dir", NULL, data_dir, "where groups/ and walpool/ live"),
    DUR("election_ms", "1s", 30, 600000, election_ms, "election timeout"),
    DUR("tick_ms", "100ms", 5, 60000, tick_ms, "tick and heartbeat period"),
    BOOL("join", "off", join, "create missing groups empty (wait for the leader) instead of "
                              "bootstrapping them with every peer as a voter"),
    INT("workers", "1", 1, SPL_RAFTNODE_WORKERS_MAX, workers, "Raft worker threads"),
    INT("apply_threads", "2", 1, SPL_RAFTNODE_APPLY_THREADS_MAX, apply_threads,
        "apply threads"),
    INT("io_threads", "1", 1, SPL_RPC_IO_THREADS_MAX, io_threads, "RPC IO threads"),
    SIZE("log_segment_size", "8M", SPL_RAFTLOG_SEGMENT_SIZE_MIN, SPL_RAFTLOG_SEGMENT_SIZE_MAX,
         log_segment_size, "raft log segment (pool file) size"),
    INT("log_pool_files", "0", 0, 1 << 20, log_pool_files,
        "segment files formatted in walpool/ at start (0: 2 per group + 8)"),
    INT("log_sync_threads", "8", 1, SPL_RAFTLOG_SYNC_THREADS_MAX, log_sync_threads,
        "raft log sync threads"),
    BOOL("log_syncfs", "off", log_syncfs, "sync the log with one syncfs per round"),
    INT("snapshot_interval", "0", 0, INT64_MAX, snapshot_interval,
        "snapshot a group every N applied entries (0: only when asked)"),
    INT("snapshot_keep", "0", 0, INT64_MAX, snapshot_keep,
        "log entries kept below a snapshot for slow followers"),
    SIZE("install_rate", "0", 0, INT64_MAX, install_rate,
         "snapshot file-copy throttle in bytes/s (0: unlimited)"),
    SIZE("install_piece", "1M", 4096, SPL_RAFTNODE_PIECE_MAX, install_piece,
         "bytes per GetFile"),
    INT("http_port", "0", -1, 65535, http_port,
        "HTTP port for /metrics /status /healthz (0: any free port, -1: none)"),
    STR("log_level", "info", log_level, "debug | info | warn | error"),
    STR("log_file", "\"\"", log_file, "log to this file as well as stderr (empty: stderr)"),
    {.name = "fsm", .type = SPL_CFG_ENUM, .default_value = "kv", .offset = F(fsm),
     .choices = fsm_choices,
     .doc = "kv: the KV FSM on range files; null: apply stores nothing (Raft cost alone)"},
    STR("port_file", "\"\"", port_file,
        "write \"<rpc port> <http port>\" to this file once serving (empty: no)"),
};

static const struct spl_config_table raftd_table = {
    .program = "spline-raftd",
    .keys = raftd_keys,
    .key_count = sizeof raftd_keys / sizeof raftd_keys[0],
    .struct_size = sizeof(struct raftd_config),
};

/* ---- the daemon ---- */

struct raftd {
    struct raftd_config cfg;
    spl_rpc_runtime *rt;
    spl_rpc_server *srv;
    spl_raftnode_host *host;
    struct spl_http_server *http;
    struct spl_raft_conf voters;
    pthread_mutex_t kv_mu;
    struct {
        uint64_t group;
        struct spl_kvfsm *kv;
    } kvs[RAFTD_GROUPS_MAX];
    uint32_t kv_count;
};

static struct spl_kvfsm *kv_of(struct raftd *d, uint64_t group)
{
    struct spl_kvfsm *kv = NULL;
    pthread_mutex_lock(&d->kv_mu);
    for (uint32_t i = 0; i < d->kv_count && !kv; i++)
        if (d->kvs[i].group == group)
            kv = d->kvs[i].kv;
    pthread_mutex_unlock(&d->kv_mu);
    return kv;
}

static bool group_known(struct raftd *d, uint64_t group)
{
    bool known = false;
    pthread_mutex_lock(&d->kv_mu);
    for (uint32_t i = 0; i < d->kv_count && !known; i++)
        known = d->kvs[i].group == group;
    pthread_mutex_unlock(&d->kv_mu);
    return known;
}

static void kv_forget(struct raftd *d, uint64_t group)
{
    pthread_mutex_lock(&d->kv_mu);
    for (uint32_t i = 0; i < d->kv_count; i++)
        if (d->kvs[i].group == group)
            d->kvs[i] = d->kvs[--d->kv_count];
    pthread_mutex_unlock(&d->kv_mu);
}

/* The null FSM: applies nothing, snapshots nothing (benchmarks of Raft alone). */
static int null_load(void *ctx, const char *dir, const struct spl_fsm_snapshot *snap)
{
    (void)ctx, (void)dir, (void)snap;
    return 0;
}
static uint64_t null_key(void *ctx, const struct spl_iobuf *data)
{
    (void)ctx;
    return spl_iobuf_len(data);
}
static void null_apply(void *ctx, struct spl_fsm_entry *e, uint32_t n)
{
    (void)ctx, (void)e, (void)n;
}
static int null_save(void *ctx, uint64_t index, struct spl_fsm_snapshot *out)
{
    (void)ctx, (void)index, (void)out;
    return 0;
}
static const struct spl_fsm_ops null_ops = {.load = null_load, .apply_key = null_key,
                                            .apply = null_apply, .save_snapshot = null_save};

static int group_open(struct raftd *d, uint64_t group, const struct spl_raft_conf *initial)
{
    if (d->cfg.fsm == 1) {
        struct spl_raftnode_group_opts o = {.group = group, .initial_conf = initial,
                                            .fsm = {.ops = &null_ops, .ctx = NULL}};
        int rc = spl_raftnode_group_create(d->host, &o);
        if (rc == 0) {
            pthread_mutex_lock(&d->kv_mu);
            d->kvs[d->kv_count].group = group;
            d->kvs[d->kv_count].kv = NULL;
            d->kv_count++;
            pthread_mutex_unlock(&d->kv_mu);
        }
        return rc;
    }
    struct spl_kvfsm *kv;
    if (d->kv_count >= RAFTD_GROUPS_MAX)
        return SPL_ETOOBIG;
    int rc = spl_kvfsm_create(&kv);
    if (rc != 0)
        return rc;
    struct spl_raftnode_group_opts o = {.group = group, .initial_conf = initial,
                                        .fsm = spl_kvfsm_fsm(kv)};
    rc = spl_raftnode_group_create(d->host, &o);
    if (rc == 0) {
        pthread_mutex_lock(&d->kv_mu);
        d->kvs[d->kv_count].group = group;
        d->kvs[d->kv_count].kv = kv;
        d->kv_count++;
        pthread_mutex_unlock(&d->kv_mu);
    }
    return rc;
}

/* "1=127.0.0.1:7001,2=..." into the host's address book and d->voters. */
static int parse_peers(struct raftd *d)
{
    char buf[sizeof(d->cfg.peers)];
    snprintf(buf, sizeof(buf), "%s", d->cfg.peers);
    uint64_t ids[SPL_RAFT_PEERS_MAX];
    uint32_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return SPL_ECONFIG;
        *eq = '\0';
        uint64_t id = strtoull(tok, NULL, 10);
        int rc = id ? spl_raftnode_set_peer(d->host, id, eq + 1) : SPL_ECONFIG;
        if (rc != 0)
            return rc;
        if (n >= SPL_RAFT_PEERS_MAX)
            return SPL_ETOOBIG;
        ids[n++] = id;
    }
    /* sorted, unique */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    memset(&d->voters, 0, sizeof(d->voters));
    for (uint32_t i = 0; i < n; i++)
        if (i == 0 || ids[i] != ids[i - 1])
            d->voters.voters[d->voters.voter_count++] = ids[i];
    return spl_raft_conf_is_valid(&d->voters) ? 0 : SPL_ECONFIG;
}

/* ---- Kv ---- */

struct kv_call {
    struct raftd *d;
    spl_rpc_call *call;
    uint64_t group;
    size_t key_len;
    uint8_t key[SPL_KVFSM_KEY_MAX];
};

static void reply_failure(spl_rpc_call *call, const struct spl_raftnode_result *res)
{
    if (res->status == SPL_ENOTLEADER && res->leader_address && res->leader_address[0])
        spl_rpc_reply_redirect(call, res->status, NULL, res->leader_address);
    else
        spl_rpc_reply_error(call, res->status, NULL);
}

static void put_done(const struct spl_raftnode_result *res, void *ctx)
{
    spl_rpc_call *call = ctx;
    if (res->status != 0) {
        reply_failure(call, res);
        return;
    }
    if (res->fsm_result != 0) {
        spl_rpc_reply_error(call, res->fsm_result, NULL);
        return;
    }
    Spline__RaftKvResponse resp = SPLINE__RAFT_KV_RESPONSE__INIT;
    resp.index = res->index;
    spl_rpc_reply(call, &resp.base, NULL);
}

static void get_done(const struct spl_raftnode_result *res, void *ctx)
{
    struct kv_call *kc = ctx;
    if (res->status != 0) {
        reply_failure(kc->call, res);
        free(kc);
        return;
    }
    struct spl_kvfsm *kv = kv_of(kc->d, kc->group);
    struct spl_iobuf value;
    spl_iobuf_init(&value);
    int rc = kv ? spl_kvfsm_get(kv, kc->key, kc->key_len, &value) : -ENOENT; /* null FSM */
    if (rc != 0 && rc != -ENOENT) {
        spl_rpc_reply_error(kc->call, rc, NULL);
    } else {
        Spline__RaftKvResponse resp = SPLINE__RAFT_KV_RESPONSE__INIT;
        resp.index = res->index;
        resp.found = rc == 0;
        spl_rpc_reply(kc->call, &resp.base, &value);
    }
    spl_iobuf_reset(&value);
    free(kc);
}

static void on_kv(spl_rpc_call *call, void *ctx)
{
    struct raftd *d = ctx;
    const Spline__RaftKvRequest *req = (const Spline__RaftKvRequest *)spl_rpc_call_request(call);
    if (req->key.len == 0 || req->key.len > SPL_KVFSM_KEY_MAX) {
        spl_rpc_reply_error(call, SPL_EINVAL_ARG, "key length");
        return;
    }
    int rc;
    if (req->op == SPLINE__RAFT_KV_OP__RAFT_KV_GET) {
        struct kv_call *kc = calloc(1, sizeof(*kc));
        ASSERT(kc != NULL);
        kc->d = d;
        kc->call = call;
        kc->group = req->group;
        kc->key_len = req->key.len;
        memcpy(kc->key, req->key.data, req->key.len);
        rc = spl_raftnode_read(d->host, req->group, req->timeout_ms, get_done, kc);
        if (rc != 0)
            free(kc);
    } else if (req->op == SPLINE__RAFT_KV_OP__RAFT_KV_PUT ||
               req->op == SPLINE__RAFT_KV_OP__RAFT_KV_DELETE) {
        struct spl_iobuf payload;
        spl_iobuf_init(&payload);
        bool put = req->op == SPLINE__RAFT_KV_OP__RAFT_KV_PUT;
        rc = spl_kvfsm_encode(put ? SPL_KVFSM_PUT : SPL_KVFSM_DELETE, req->key.data, req->key.len,
                              put ? spl_rpc_call_attachment(call) : NULL, &payload);
        if (rc == 0)
            rc = spl_raftnode_propose(d->host, req->group, &payload, req->timeout_ms, put_done,
                                      call);
        spl_iobuf_reset(&payload);
    } else {
        rc = SPL_EINVAL_ARG;
    }
    if (rc != 0)
        spl_rpc_reply_error(call, rc, NULL);
}

/* ---- Admin ---- */

static void admin_done(const struct spl_raftnode_result *res, void *ctx)
{
    spl_rpc_call *call = ctx;
    if (res->status != 0) {
        reply_failure(call, res);
        return;
    }
    Spline__RaftAdminResponse resp = SPLINE__RAFT_ADMIN_RESPONSE__INIT;
    resp.index = res->index;
    resp.epoch = res->epoch;
    spl_rpc_reply(call, &resp.base, NULL);
}

static void fill_status(struct raftd *d, const struct spl_raftnode_group_status *st, bool digest,
                        Spline__RaftGroupStatus *out)
{
    spline__raft_group_status__init(out);
    out->group = st->group;
    out->node = (uint64_t)d->cfg.id;
    out->term = st->term;
    out->leader = st->leader;
    out->role = st->role;
    out->epoch = st->epoch;
    out->commit = st->commit;
    out->applied = st->applied;
    out->first_index = st->first_index;
    out->last_index = st->last_index;
    out->snapshot_index = st->snapshot_index;
    out->n_voters = st->conf.voter_count;
    out->voters = (uint64_t *)st->conf.voters;
    out->n_learners = st->conf.learner_count;
    out->learners = (uint64_t *)st->conf.learners;
    out->caught_up = st->caught_up;
    out->catchup_index = st->catchup_index;
    out->installs = st->installs;
    out->install_bytes = st->install_bytes;
    out->install_ms = st->install_ns / 1000000;
    if (digest) {
        struct spl_kvfsm *kv = kv_of(d, st->group);
        out->digest = kv ? spl_kvfsm_digest(kv, NULL) : 0;
    }
}

static void admin_status(struct raftd *d, spl_rpc_call *call, const Spline__RaftAdminRequest *req)
{
    static _Thread_local uint64_t ids[RAFTD_GROUPS_MAX];
    uint32_t n = 1;
    if (req->group)
        ids[0] = req->group;
    else
        n = spl_raftnode_group_ids(d->host, ids, RAFTD_GROUPS_MAX);
    if (n > RAFTD_GROUPS_MAX)
        n = RAFTD_GROUPS_MAX;
    struct spl_raftnode_group_status *sts = calloc(n, sizeof(*sts));
    Spline__RaftGroupStatus *gs = calloc(n, sizeof(*gs));
    Spline__RaftGroupStatus **gp = calloc(n, sizeof(*gp));
    ASSERT(sts && gs && gp);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (spl_raftnode_group_status(d->host, ids[i], &sts[k]) != 0)
            continue;
        fill_status(d, &sts[k], req->digest, &gs[k]);
        gp[k] = &gs[k];
        k++;
    }
    if (req->group && k == 0) {
        spl_rpc_reply_error(call, SPL_ERAFT_NOGROUP, NULL);
    } else {
        Spline__RaftAdminResponse resp = SPLINE__RAFT_ADMIN_RESPONSE__INIT;
        resp.n_groups = k;
        resp.groups = gp;
        spl_rpc_reply(call, &resp.base, NULL);
    }
    free(sts);
    free(gs);
    free(gp);
}

static size_t hist_pairs(struct raftd *d, int which, uint64_t *pairs)
{
    static _Thread_local struct spl_histogram_snapshot snap;
    spl_raftnode_latency(d->host, which, &snap);
    size_t n = 0;
    for (unsigned i = 0; i < SPL_HISTOGRAM_BUCKETS; i++)
        if (snap.buckets[i]) {
            pairs[n++] = i;
            pairs[n++] = snap.buckets[i];
        }
    return n;
}

static void admin_stats(struct raftd *d, spl_rpc_call *call)
{
    static _Thread_local uint64_t pairs[3][2 * SPL_HISTOGRAM_BUCKETS];
    size_t n = hist_pairs(d, 0, pairs[0]);
    struct spl_raftnode_stats st;
    spl_raftnode_stats(d->host, &st);
    Spline__RaftAdminResponse resp = SPLINE__RAFT_ADMIN_RESPONSE__INIT;
    resp.n_commit_latency = n;
    resp.commit_latency = pairs[0];
    resp.n_persist_latency = hist_pairs(d, 1, pairs[1]);
    resp.persist_latency = pairs[1];
    resp.n_quorum_latency = hist_pairs(d, 2, pairs[2]);
    resp.quorum_latency = pairs[2];
    resp.msgs_sent = st.msgs_sent;
    resp.msgs_received = st.msgs_received;
    resp.msgs_rejected = st.msgs_rejected;
    resp.rpcs_sent = st.rpcs_sent;
    resp.heartbeats_sent = st.heartbeats_sent;
    resp.ticks = st.ticks;
    resp.proposals = st.proposals;
    resp.log_syncs = st.log_syncs;
    resp.log_sync_rounds = st.log_sync_rounds;
    resp.log_appends = st.log_appends;
    spl_rpc_reply(call, &resp.base, NULL);
}

/* Create and destroy block (disk, waiting for the worker): done on their own thread, not
 * on the RPC IO thread. */
struct admin_job {
    struct raftd *d;
    spl_rpc_call *call;
};

static void *admin_slow(void *arg)
{
    struct admin_job *job = arg;
    struct raftd *d = job->d;
    const Spline__RaftAdminRequest *req =
        (const Spline__RaftAdminRequest *)spl_rpc_call_request(job->call);
    int rc;
    if (req->op == SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_CREATE_GROUP) {
        struct spl_raft_conf conf = {0};
        for (size_t i = 0; i < req->n_voters && i < SPL_RAFT_PEERS_MAX; i++)
            conf.voters[conf.voter_count++] = req->voters[i];
        rc = group_open(d, req->group, req->join ? NULL : &conf);
    } else {
        kv_forget(d, req->group);
        rc = spl_raftnode_group_destroy(d->host, req->group, true);
    }
    if (rc != 0) {
        spl_rpc_reply_error(job->call, rc, NULL);
    } else {
        Spline__RaftAdminResponse resp = SPLINE__RAFT_ADMIN_RESPONSE__INIT;
        spl_rpc_reply(job->call, &resp.base, NULL);
    }
    free(job);
    return NULL;
}

static void on_admin(spl_rpc_call *call, void *ctx)
{
    struct raftd *d = ctx;
    const Spline__RaftAdminRequest *req =
        (const Spline__RaftAdminRequest *)spl_rpc_call_request(call);
    uint64_t epoch = req->check_epoch ? req->epoch : SPL_RAFTNODE_ANY_EPOCH;
    int rc = 0;
    switch (req->op) {
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATUS:
        admin_status(d, call, req);
        return;
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_STATS:
        admin_stats(d, call);
        return;
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_ADD_VOTER:
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_ADD_LEARNER:
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_PROMOTE:
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_REMOVE: {
        static const enum spl_raft_conf_op ops[] = {
            [SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_ADD_VOTER] = SPL_RAFT_CONF_ADD_VOTER,
            [SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_ADD_LEARNER] = SPL_RAFT_CONF_ADD_LEARNER,
            [SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_PROMOTE] = SPL_RAFT_CONF_PROMOTE,
            [SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_REMOVE] = SPL_RAFT_CONF_REMOVE,
        };
        rc = spl_raftnode_change_peers(d->host, req->group, ops[req->op], req->node, epoch,
                                       admin_done, call);
        break;
    }
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_TRANSFER:
        rc = spl_raftnode_transfer_leader(d->host, req->group, req->node, epoch, admin_done, call);
        break;
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_SNAPSHOT:
        rc = spl_raftnode_snapshot(d->host, req->group, admin_done, call);
        break;
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_CREATE_GROUP:
    case SPLINE__RAFT_ADMIN_OP__RAFT_ADMIN_DESTROY_GROUP: {
        struct admin_job *job = calloc(1, sizeof(*job));
        pthread_t t;
        ASSERT(job != NULL);
        job->d = d;
        job->call = call;
        if (pthread_create(&t, NULL, admin_slow, job) != 0) {
            free(job);
            rc = -EAGAIN;
            break;
        }
        pthread_detach(t);
        return;
    }
    default:
        rc = SPL_EINVAL_ARG;
    }
    if (rc != 0)
        spl_rpc_reply_error(call, rc, NULL);
}

static const struct spl_rpc_method raftd_methods[] = {
    {"Kv", &spline__raft_kv_request__descriptor, &spline__raft_kv_response__descriptor, on_kv},
    {"Admin", &spline__raft_admin_request__descriptor, &spline__raft_admin_response__descriptor,
     on_admin},
};

static const struct spl_rpc_service raftd_service = {
    .id = SPL_RPC_SERVICE_CLI,
    .name = "raftd",
    .methods = raftd_methods,
    .method_count = sizeof raftd_methods / sizeof raftd_methods[0],
};

/* ---- start and stop ---- */

static int status_cb(struct json_object *status, void *arg)
{
    struct raftd *d = arg;
    struct spl_raftnode_stats st;
    spl_raftnode_stats(d->host, &st);
    json_object_object_add(status, "node", json_object_new_int64(d->cfg.id));
    json_object_object_add(status, "groups", json_object_new_int64(st.groups));
    json_object_object_add(status, "proposals", json_object_new_int64((int64_t)st.proposals));
    return 0;
}

static int split_listen(const char *listen, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= host_len)
        return SPL_ECONFIG;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    long p = strtol(colon + 1, NULL, 10);
    if (p < 0 || p > 65535)
        return SPL_ECONFIG;
    *port = (uint16_t)p;
    return 0;
}

static int start_rpc(struct raftd *d)
{
    char host[128];
    uint16_t port;
    int rc = split_listen(d->cfg.listen, host, sizeof(host), &port);
    if (rc != 0)
        return rc;
    struct spl_rpc_runtime_opts ro = {.io_threads = (uint32_t)d->cfg.io_threads, .name = "raftd"};
    rc = spl_rpc_runtime_create(&ro, &d->rt);
    if (rc != 0)
        return rc;
    struct spl_rpc_server_opts so = {.host = host, .port = port};
    rc = spl_rpc_server_create(d->rt, &so, &d->srv);
    if (rc == 0)
        rc = spl_rpc_server_add_service(d->srv, &raftd_service, d);
    return rc;
}

static int start_host(struct raftd *d)
{
    uint64_t tick = d->cfg.tick_ms;
    struct spl_raftnode_opts o = {
        .node_id = (uint64_t)d->cfg.id,
        .data_dir = d->cfg.data_dir,
        .rpc = d->rt,
        .server = d->srv,
        .workers = (uint32_t)d->cfg.workers,
        .apply_threads = (uint32_t)d->cfg.apply_threads,
        .tick_ms = (uint32_t)tick,
        .election_ticks = (uint32_t)((d->cfg.election_ms + tick - 1) / tick),
        .snapshot_interval = (uint64_t)d->cfg.snapshot_interval,
        .snapshot_keep = (uint64_t)d->cfg.snapshot_keep,
        .install_bytes_per_sec = d->cfg.install_rate,
        .install_piece_bytes = (uint32_t)d->cfg.install_piece,
        .log_segment_size = d->cfg.log_segment_size,
        .log_pool_files = (uint32_t)d->cfg.log_pool_files,
        .groups_hint = (uint32_t)d->cfg.groups,
        .log_sync_threads = (uint32_t)d->cfg.log_sync_threads,
        .log_sync_syncfs = d->cfg.log_syncfs,
    };
    int rc = spl_raftnode_host_create(&o, &d->host);
    if (rc == 0)
        rc = parse_peers(d);
    return rc;
}

static int open_groups(struct raftd *d)
{
    static uint64_t ids[RAFTD_GROUPS_MAX];
    int n = spl_raftnode_groups_on_disk(d->cfg.data_dir, ids, RAFTD_GROUPS_MAX);
    if (n < 0)
        return n;
    if (n > RAFTD_GROUPS_MAX)
        return SPL_ETOOBIG;
    for (int i = 0; i < n; i++) {
        int rc = group_open(d, ids[i], d->cfg.join ? NULL : &d->voters);
        if (rc != 0)
            return rc;
    }
    for (uint64_t g = 1; g <= (uint64_t)d->cfg.groups; g++) {
        if (group_known(d, g))
            continue;
        int rc = group_open(d, g, d->cfg.join ? NULL : &d->voters);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int start_http(struct raftd *d)
{
    if (d->cfg.http_port < 0)
        return 0;
    struct spl_http_options ho = {.port = (uint16_t)d->cfg.http_port, .component = "raftd"};
    int rc = spl_http_server_new(&ho, &d->http);
    if (rc != 0)
        return rc;
    spl_http_server_set_status_cb(d->http, status_cb, d);
    return spl_http_server_start(d->http);
}

static int write_port_file(struct raftd *d)
{
    if (!d->cfg.port_file[0])
        return 0;
    char tmp[sizeof(d->cfg.port_file) + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->cfg.port_file);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%u %u\n", spl_rpc_server_port(d->srv),
            d->http ? spl_http_server_port(d->http) : 0);
    if (fclose(f) != 0 || rename(tmp, d->cfg.port_file) != 0)
        return -errno;
    return 0;
}

static void stop(struct raftd *d)
{
    spl_rpc_server_destroy(d->srv);
    spl_raftnode_host_destroy(d->host);
    spl_http_server_free(d->http);
    spl_rpc_runtime_destroy(d->rt);
}

int main(int argc, char **argv)
{
    static struct raftd d;
    struct spl_config_error err;
    int rc = spl_config_load_args(&raftd_table, &d.cfg, argc, argv, NULL, 0, NULL, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        char msg[1024];
        spl_config_format_error(&err, msg, sizeof(msg));
        fprintf(stderr, "%s\n", msg);
        return 2;
    }
    enum spl_log_level level;
    if (spl_log_parse_level(d.cfg.log_level, &level) == 0)
        spl_log_set_level(level);
    if (d.cfg.log_file[0])
        spl_log_open(d.cfg.log_file, true);
    pthread_mutex_init(&d.kv_mu, NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = start_rpc(&d);
    if (rc == 0)
        rc = start_host(&d);
    if (rc == 0)
        rc = open_groups(&d);
    if (rc == 0)
        rc = spl_rpc_server_start(d.srv);
    if (rc == 0)
        rc = start_http(&d);
    if (rc == 0)
        rc = write_port_file(&d);
    if (rc != 0) {
        LOG_ERROR(TAG, "node %lld: start failed: %s", (long long)d.cfg.id, spl_strerror(rc));
        stop(&d);
        return 1;
    }
    LOG_INFO(TAG, "node %lld serving on port %u with %u groups", (long long)d.cfg.id,
             spl_rpc_server_port(d.srv), d.kv_count);
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO(TAG, "node %lld: signal %d, stopping", (long long)d.cfg.id, sig);
    stop(&d);
    return 0;
}
