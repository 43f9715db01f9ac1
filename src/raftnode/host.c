/*
 * host.c - the multi-raft host: start and stop, the group table, opening and closing
 * groups (recovery of the log, the STATE file and the live FSM directory), the address
 * book and peer channels, the snapshot thread pool, and the public calls, which only
 * validate and post to the group's worker.
 *
 * On disk (docs/raft-host.md): <data_dir>/walpool/ (raftlog's segment pool, formatted at
 * start), <data_dir>/groups/<group as 16 hex>/{log/, STATE, fsm.<gen>/, staging.<gen>/}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/internal.h"

void spl__rn_free_cb(void *ctx, void *data)
{
    (void)ctx;
    free(data);
}

/* ---- paths ---- */

void spl__rn_group_dir(const struct spl_raftnode_host *h, uint64_t group, char *buf, size_t len)
{
    snprintf(buf, len, "%s/groups/%016llx", h->data_dir, (unsigned long long)group);
}

static int mkdir_p(const char *path)
{
    char tmp[SPL__RN_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int spl__rn_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : (errno == ENOTDIR ? (unlink(path) ? -errno : 0) : -errno);
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[SPL__RN_PATH_MAX * 2];
        snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
        struct stat sb;
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
            rc = spl__rn_rmtree(child);
        else if (unlink(child) != 0)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(path) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int spl_raftnode_groups_on_disk(const char *data_dir, uint64_t *ids, uint32_t cap)
{
    char path[SPL__RN_PATH_MAX];
    snprintf(path, sizeof(path), "%s/groups", data_dir);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        char *end;
        if (strlen(de->d_name) != 16)
            continue;
        unsigned long long id = strtoull(de->d_name, &end, 16);
        if (*end != '\0' || id == 0)
            continue;
        if ((uint32_t)n < cap)
            ids[n] = id;
        n++;
    }
    closedir(d);
    return n;
}

/* ---- the group table ---- */

static uint32_t bucket_of(uint64_t id)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 40) % SPL__RN_BUCKETS;
}

static struct spl__rn_group *table_find(struct spl_raftnode_host *h, uint64_t id)
{
    for (struct spl__rn_group *g = h->table[bucket_of(id)]; g; g = g->hnext)
        if (g->id == id)
            return g;
    return NULL;
}

struct spl__rn_group *spl__rn_group_get(struct spl_raftnode_host *h, uint64_t id)
{
    pthread_rwlock_rdlock(&h->groups_mu);
    struct spl__rn_group *g = table_find(h, id);
    if (g)
        atomic_fetch_add(&g->refs, 1);
    pthread_rwlock_unlock(&h->groups_mu);
    return g;
}

static void group_free(struct spl__rn_group *g)
{
    spl__rn_state_reset(&g->state);
    pthread_mutex_destroy(&g->mu);
    free(g->done);
    free(g);
}

void spl__rn_group_put(struct spl__rn_group *g)
{
    int old = atomic_fetch_sub(&g->refs, 1);
    ASSERT(old > 0);
    if (old == 1)
        group_free(g);
}

/* ---- workers' inboxes ---- */

void spl__rn_post(struct spl__rn_worker *w, struct spl__rn_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = ev;
    else
        w->head = ev;
    w->tail = ev;
    if (w->sleeping)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void spl__rn_post_embedded(struct spl__rn_worker *w, struct spl__rn_event *ev)
{
    pthread_mutex_lock(&w->mu);
    if (!ev->queued) {
        ev->queued = true;
        ev->next = NULL;
        if (w->tail)
            w->tail->next = ev;
        else
            w->head = ev;
        w->tail = ev;
        if (w->sleeping)
            pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
}

/* ---- peers ---- */

int spl_raftnode_set_peer(spl_raftnode_host *h, uint64_t id, const char *address)
{
    if (id == 0 || !address || strlen(address) >= SPL_RAFTNODE_ADDR_MAX)
        return SPL_EINVAL_ARG;
    pthread_mutex_lock(&h->peers_mu);
    struct spl__rn_peer *p = NULL;
    for (uint32_t i = 0; i < h->peer_count; i++)
        if (h->peers[i].id == id)
            p = &h->peers[i];
    int rc = 0;
    if (!p) {
        if (h->peer_count == h->peer_cap) {
            uint32_t cap = h->peer_cap ? h->peer_cap * 2 : 8;
            struct spl__rn_peer *ps = cap <= SPL_RAFTNODE_NODES_MAX
                                          ? realloc(h->peers, cap * sizeof(*ps)) : NULL;
            if (!ps) {
                pthread_mutex_unlock(&h->peers_mu);
                return cap > SPL_RAFTNODE_NODES_MAX ? SPL_ETOOBIG : -ENOMEM;
            }
            h->peers = ps;
            h->peer_cap = cap;
        }
        p = &h->peers[h->peer_count++];
        memset(p, 0, sizeof(*p));
        p->id = id;
    }
    if (rc == 0 && strcmp(p->address, address) != 0) {
        /* A channel is never closed while the host runs (workers use it without the
         * lock); a changed address opens a new one and the old one idles until destroy. */
        if (p->ch && h->retired_count < SPL_RAFTNODE_NODES_MAX) {
            h->retired[h->retired_count++] = p->ch;
            p->ch = NULL; /* reopened at the next send */
            LOG_INFO(SPL__RN_TAG, "node %llu moved to %s", (unsigned long long)id, address);
        } else if (p->ch) {
            rc = SPL_ETOOBIG;
        }
        snprintf(p->address, sizeof(p->address), "%s", address);
    }
    pthread_mutex_unlock(&h->peers_mu);
    return rc;
}

int spl_raftnode_peer_address(spl_raftnode_host *h, uint64_t id, char *buf, size_t len)
{
    int rc = SPL_ERAFTNODE_NOPEER;
    pthread_mutex_lock(&h->peers_mu);
    for (uint32_t i = 0; i < h->peer_count; i++)
        if (h->peers[i].id == id) {
            snprintf(buf, len, "%s", h->peers[i].address);
            rc = 0;
        }
    pthread_mutex_unlock(&h->peers_mu);
    return rc;
}

void spl__rn_leader_address(struct spl_raftnode_host *h, uint64_t leader, char *buf, size_t len)
{
    if (spl_raftnode_peer_address(h, leader, buf, len) != 0)
        buf[0] = '\0';
}

spl_rpc_channel *spl__rn_peer_channel(struct spl_raftnode_host *h, uint64_t id)
{
    spl_rpc_channel *ch = NULL;
    pthread_mutex_lock(&h->peers_mu);
    for (uint32_t i = 0; i < h->peer_count && id != h->opts.node_id; i++) {
        struct spl__rn_peer *p = &h->peers[i];
        if (p->id != id)
            continue;
        if (!p->ch) {
            uint32_t election_ms = h->opts.tick_ms * h->opts.election_ticks;
            struct spl_rpc_channel_opts o = {
                .call_timeout_ms = election_ms * 2,
                .connect_timeout_ms = election_ms,
                .backoff_initial_ms = 20,
                .backoff_max_ms = h->opts.tick_ms * 2,
            };
            if (spl_rpc_channel_open(h->opts.rpc, p->address, &o, &p->ch) != 0)
                p->ch = NULL;
        }
        ch = p->ch;
    }
    pthread_mutex_unlock(&h->peers_mu);
    return ch;
}

/* ---- snapshot threads ---- */

void spl__rn_bg_submit(struct spl_raftnode_host *h, struct spl__rn_bgjob *job)
{
    job->next = NULL;
    pthread_mutex_lock(&h->bg_mu);
    if (h->bg_tail)
        h->bg_tail->next = job;
    else
        h->bg_head = job;
    h->bg_tail = job;
    pthread_cond_signal(&h->bg_cond);
    pthread_mutex_unlock(&h->bg_mu);
}

static void *bg_main(void *arg)
{
    struct spl_raftnode_host *h = arg;
    pthread_mutex_lock(&h->bg_mu);
    for (;;) {
        while (!h->bg_head && !h->bg_stop)
            pthread_cond_wait(&h->bg_cond, &h->bg_mu);
        if (!h->bg_head)
            break;
        struct spl__rn_bgjob *job = h->bg_head;
        h->bg_head = job->next;
        if (!h->bg_head)
            h->bg_tail = NULL;
        pthread_mutex_unlock(&h->bg_mu);
        job->run(job);
        pthread_mutex_lock(&h->bg_mu);
    }
    pthread_mutex_unlock(&h->bg_mu);
    return NULL;
}

/* ---- host life ---- */

static void metrics_init(struct spl_raftnode_host *h)
{
    struct spl_metrics *r = h->opts.metrics ? h->opts.metrics : spl_metrics_global();
    struct spl__rn_metrics *m = &h->m;
    m->groups = spl_gauge_new(r, "spline_raftnode_groups_open", "Raft groups this host runs");
    m->leaders = spl_gauge_new(r, "spline_raftnode_groups_leading", "Groups this host leads");
    m->msgs_sent = spl_counter_new(r, "spline_raftnode_msgs_sent_total", "Raft messages sent");
    m->msgs_received = spl_counter_new(r, "spline_raftnode_msgs_received_total",
                                       "Raft messages received and handed to their group");
    m->msgs_rejected = spl_counter_new(r, "spline_raftnode_msgs_rejected_total",
                                       "Raft messages dropped: unknown group, undecodable, "
                                       "or addressed to another node");
    m->rpcs_sent = spl_counter_new(r, "spline_raftnode_send_rpcs_total",
                                   "Send RPCs (message batches) started");
    m->rpcs_received = spl_counter_new(r, "spline_raftnode_received_rpcs_total",
                                       "Send RPCs (message batches) received");
    m->rpcs_failed = spl_counter_new(r, "spline_raftnode_failed_rpcs_total",
                                     "Send RPCs that failed (peer unreachable, timeout)");
    m->heartbeats_sent = spl_counter_new(r, "spline_raftnode_heartbeats_sent_total",
                                         "Heartbeats and heartbeat responses sent");
    m->proposals = spl_counter_new(r, "spline_raftnode_proposals_total", "Proposals submitted");
    m->proposals_failed = spl_counter_new(r, "spline_raftnode_proposals_failed_total",
                                          "Proposals that did not apply (any reason)");
    m->ticks = spl_counter_new(r, "spline_raftnode_worker_ticks_total", "Worker tick passes");
    m->snapshots = spl_counter_new(r, "spline_raftnode_snapshots_taken_total",
                                   "Snapshots taken (log compactions)");
    m->installs = spl_counter_new(r, "spline_raftnode_snapshots_installed_total",
                                  "Snapshots installed from another replica");
    m->install_bytes = spl_counter_new(r, "spline_raftnode_install_bytes_total",
                                       "Bytes pulled by snapshot installs");
    m->getfile_bytes = spl_counter_new(r, "spline_raftnode_getfile_bytes_total",
                                       "Snapshot file bytes served to installers");
    m->commit_latency = spl_histogram_new(r, "spline_raftnode_commit_duration_seconds",
                                          "Proposal to applied, on the leader",
                                          SPL_METRIC_UNIT_SECONDS);
    m->persist_latency = spl_histogram_new(r, "spline_raftnode_persist_duration_seconds",
                                           "Raft log append to durable, as the worker sees it",
                                           SPL_METRIC_UNIT_SECONDS);
    m->quorum_latency = spl_histogram_new(r, "spline_raftnode_quorum_duration_seconds",
                                          "Proposal to committed (quorum durable), on the leader",
                                          SPL_METRIC_UNIT_SECONDS);
}

static int opts_fill(struct spl_raftnode_opts *o)
{
    if (o->node_id == 0 || !o->data_dir || !o->rpc || !o->server)
        return SPL_EINVAL_ARG;
    if (strlen(o->data_dir) >= SPL__RN_DATA_DIR_MAX)
        return SPL_EINVAL_ARG;
#define DEF(f, v)                                                                          \
    do {                                                                                   \
        if (!o->f)                                                                         \
            o->f = v;                                                                      \
    } while (0)
    DEF(workers, 1);
    DEF(apply_threads, 2);
    DEF(snapshot_threads, 1);
    DEF(install_threads, 1);
    DEF(tick_ms, 100);
    DEF(election_ticks, 10);
    DEF(max_inflight_msgs, 32);
    DEF(proposal_timeout_ms, 10000);
    DEF(install_piece_bytes, 1u << 20);
    DEF(log_segment_size, 8u << 20);
    DEF(log_pool_files, 2 * o->groups_hint + 8);
    DEF(log_sync_threads, 2);
#undef DEF
    if (o->workers > SPL_RAFTNODE_WORKERS_MAX ||
        o->apply_threads > SPL_RAFTNODE_APPLY_THREADS_MAX || o->election_ticks < 3 ||
        o->install_piece_bytes > SPL_RAFTNODE_PIECE_MAX ||
        o->max_inflight_msgs > SPL_RAFT_INFLIGHT_MSGS_MAX || o->snapshot_threads > 64 ||
        o->install_threads > 64)
        return SPL_EINVAL_ARG;
    return 0;
}

static int env_open(struct spl_raftnode_host *h)
{
    char pool[SPL__RN_PATH_MAX];
    snprintf(pool, sizeof(pool), "%s/walpool", h->data_dir);
    int rc = spl_raftlog_pool_format(NULL, pool, h->opts.log_segment_size, h->opts.log_pool_files);
    if (rc != 0) {
        LOG_ERROR(SPL__RN_TAG, "formatting %s: %s", pool, spl_strerror(rc));
        return rc;
    }
    struct spl_raftlog_env_config cfg = {
        .pool_dir = pool,
        .segment_size = h->opts.log_segment_size,
        .sync_threads = h->opts.log_sync_threads,
        .sync_mode = h->opts.log_sync_syncfs ? SPL_RAFTLOG_SYNC_SYNCFS : SPL_RAFTLOG_SYNC_FDATASYNC,
        .pool_fallback_create = true,
    };
    return spl_raftlog_env_open(&cfg, &h->env);
}

static void threads_stop(struct spl_raftnode_host *h);

static int threads_start(struct spl_raftnode_host *h)
{
    h->workers = calloc(h->opts.workers, sizeof(*h->workers));
    h->lanes = calloc(h->opts.apply_threads, sizeof(*h->lanes));
    h->bg_threads = calloc(h->opts.snapshot_threads, sizeof(pthread_t));
    h->inst_threads = calloc(h->opts.install_threads, sizeof(pthread_t));
    if (!h->workers || !h->lanes || !h->bg_threads || !h->inst_threads)
        return -ENOMEM;
    for (uint32_t i = 0; i < h->opts.workers; i++) {
        struct spl__rn_worker *w = &h->workers[i];
        w->h = h;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &ca);
        pthread_condattr_destroy(&ca);
        w->log_entries = calloc(SPL_RAFTLOG_APPEND_ENTRIES_MAX, sizeof(*w->log_entries));
        if (!w->log_entries || pthread_create(&w->thread, NULL, spl__rn_worker_main, w) != 0)
            return -ENOMEM;
        pthread_setname_np(w->thread, "raft-worker");
        h->worker_count++;
    }
    for (uint32_t i = 0; i < h->opts.apply_threads; i++) {
        struct spl__rn_lane *l = &h->lanes[i];
        l->h = h;
        l->index = i;
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cond, NULL);
        if (pthread_create(&l->thread, NULL, spl__rn_lane_main, l) != 0)
            return -ENOMEM;
        pthread_setname_np(l->thread, "raft-apply");
        h->lane_count++;
    }
    for (uint32_t i = 0; i < h->opts.snapshot_threads; i++) {
        if (pthread_create(&h->bg_threads[i], NULL, bg_main, h) != 0)
            return -ENOMEM;
        pthread_setname_np(h->bg_threads[i], "raft-snap");
        h->bg_count++;
    }
    for (uint32_t i = 0; i < h->opts.install_threads; i++) {
        if (pthread_create(&h->inst_threads[i], NULL, spl__rn_install_main, h) != 0)
            return -ENOMEM;
        pthread_setname_np(h->inst_threads[i], "raft-install");
        h->inst_count++;
    }
    return 0;
}

int spl_raftnode_host_create(const struct spl_raftnode_opts *opts, spl_raftnode_host **out)
{
    struct spl_raftnode_host *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->opts = *opts;
    int rc = opts_fill(&h->opts);
    if (rc != 0) {
        free(h);
        return rc;
    }
    snprintf(h->data_dir, sizeof(h->data_dir), "%s", opts->data_dir);
    h->opts.data_dir = h->data_dir;
    pthread_rwlock_init(&h->groups_mu, NULL);
    pthread_mutex_init(&h->create_mu, NULL);
    pthread_mutex_init(&h->peers_mu, NULL);
    pthread_mutex_init(&h->bg_mu, NULL);
    pthread_cond_init(&h->bg_cond, NULL);
    pthread_mutex_init(&h->inst_mu, NULL);
    pthread_cond_init(&h->inst_cond, NULL);
    spl__rn_throttle_init(&h->throttle, h->opts.install_bytes_per_sec);
    metrics_init(h);
    char groups[SPL__RN_PATH_MAX];
    snprintf(groups, sizeof(groups), "%s/groups", h->data_dir);
    h->table = calloc(SPL__RN_BUCKETS, sizeof(*h->table));
    rc = h->table ? mkdir_p(groups) : -ENOMEM;
    if (rc == 0)
        rc = env_open(h);
    if (rc == 0)
        rc = threads_start(h);
    if (rc == 0)
        rc = spl_rpc_server_add_service(h->opts.server, &spl__rn_raft_service, h);
    if (rc != 0) {
        spl_raftnode_host_destroy(h);
        return rc;
    }
    LOG_INFO(SPL__RN_TAG, "node %llu: host up in %s (%u workers, %u apply threads, tick %u ms, "
             "election %u ticks)", (unsigned long long)h->opts.node_id, h->data_dir,
             h->opts.workers, h->opts.apply_threads, h->opts.tick_ms, h->opts.election_ticks);
    *out = h;
    return 0;
}

static void threads_stop(struct spl_raftnode_host *h)
{
    for (uint32_t i = 0; i < h->worker_count; i++) {
        struct spl__rn_worker *w = &h->workers[i];
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
    }
    for (uint32_t i = 0; i < h->worker_count; i++)
        pthread_join(h->workers[i].thread, NULL);
    for (uint32_t i = 0; i < h->lane_count; i++) {
        struct spl__rn_lane *l = &h->lanes[i];
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
    }
    for (uint32_t i = 0; i < h->lane_count; i++)
        pthread_join(h->lanes[i].thread, NULL);
    pthread_mutex_lock(&h->bg_mu);
    h->bg_stop = true;
    pthread_cond_broadcast(&h->bg_cond);
    pthread_mutex_unlock(&h->bg_mu);
    for (uint32_t i = 0; i < h->bg_count; i++)
        pthread_join(h->bg_threads[i], NULL);
    pthread_mutex_lock(&h->inst_mu);
    h->inst_stop = true;
    pthread_cond_broadcast(&h->inst_cond);
    pthread_mutex_unlock(&h->inst_mu);
    for (uint32_t i = 0; i < h->inst_count; i++)
        pthread_join(h->inst_threads[i], NULL);
}

void spl_raftnode_host_destroy(spl_raftnode_host *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    /* Downloads in progress give up (they may sit in a GetFile for a while). */
    pthread_rwlock_rdlock(&h->groups_mu);
    for (uint32_t b = 0; h->table && b < SPL__RN_BUCKETS; b++)
        for (struct spl__rn_group *g = h->table[b]; g; g = g->hnext)
            atomic_store(&g->install_stop, true);
    pthread_rwlock_unlock(&h->groups_mu);
    threads_stop(h);
    for (uint32_t b = 0; h->table && b < SPL__RN_BUCKETS; b++)
        while (h->table[b]) {
            struct spl__rn_group *g = h->table[b];
            h->table[b] = g->hnext;
            spl__rn_group_put(g);
        }
    for (uint32_t i = 0; i < h->peer_count; i++)
        spl_rpc_channel_close(h->peers[i].ch);
    for (uint32_t i = 0; i < h->retired_count; i++)
        spl_rpc_channel_close(h->retired[i]);
    for (uint32_t i = 0; i < h->worker_count; i++) {
        struct spl__rn_worker *w = &h->workers[i];
        for (uint32_t q = 0; q < w->outq_count; q++) {
            spl__rn_outq_reset(w->outqs[q]);
            free(w->outqs[q]);
        }
        free(w->outqs);
        free(w->groups);
        free(w->log_entries);
    }
    spl_raftlog_env_close(h->env);
    free(h->workers);
    free(h->lanes);
    free(h->bg_threads);
    free(h->inst_threads);
    free(h->peers);
    free(h->table);
    free(h);
}

/* ---- opening groups ---- */

static int cleanup_leftovers(const char *dir, uint64_t live_gen)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long gen;
        char junk;
        bool staging = sscanf(de->d_name, "staging.%llu%c", &gen, &junk) == 1;
        bool fsm = sscanf(de->d_name, "fsm.%llu%c", &gen, &junk) == 1;
        if (staging || (fsm && gen != live_gen)) {
            char path[SPL__RN_PATH_MAX * 2];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            LOG_INFO(SPL__RN_TAG, "removing leftover %s", path);
            spl__rn_rmtree(path);
        }
    }
    closedir(d);
    return 0;
}

static int state_open(struct spl__rn_group *g)
{
    int rc = spl__rn_state_load(g->dir, &g->state);
    if (rc == -ENOENT) {
        spl__rn_state_init(&g->state);
        g->state.group = g->id;
        g->state.live_gen = 1;
        char live[SPL__RN_PATH_MAX + 32];
        snprintf(live, sizeof(live), "%s/fsm.1", g->dir);
        if (mkdir(live, 0755) != 0 && errno != EEXIST)
            return -errno;
        rc = spl__rn_state_save(g->dir, &g->state);
    }
    if (rc == 0 && g->state.group != g->id)
        rc = SPL_ELOG_FOREIGN;
    if (rc == 0)
        rc = cleanup_leftovers(g->dir, g->state.live_gen);
    g->live_gen = g->state.live_gen;
    g->live_gen_pub = g->live_gen;
    return rc;
}

/* A crash between the STATE switch and the raft log's snapshot: finish it. */
static int redo_install(struct spl__rn_group *g)
{
    struct spl__rn_state *st = &g->state;
    if (st->install_index <= spl_raftlog_snapshot_index(g->log))
        return 0;
    struct spl__rn_desc desc;
    int rc = spl__rn_desc_decode(&st->install_desc, &desc);
    if (rc != 0)
        return rc;
    struct spl_raftlog_snapmeta m = {0};
    m.index = st->install_index;
    m.term = st->install_term;
    m.epoch = st->install_epoch;
    memcpy(&m.conf, &st->install_conf, sizeof(m.conf));
    m.file_count = desc.file_count;
    m.files = (const struct spl_raftlog_snapfile *)(const void *)desc.files;
    m.blob_len = desc.blob_len;
    m.blob = desc.blob;
    rc = spl_raftlog_install_snapshot(g->log, &m);
    LOG_INFO(SPL__RN_TAG, "group %llu: finished the install of snapshot %llu: %s",
             (unsigned long long)g->id, (unsigned long long)m.index, spl_strerror(rc));
    spl__rn_desc_free(&desc);
    return rc;
}

static int log_open(struct spl_raftnode_host *h, struct spl__rn_group *g,
                    const struct spl_raft_conf *initial)
{
    char why[256] = "";
    int rc = spl_raftlog_open(h->env, g->id, g->log_dir, SPL_RAFTLOG_CREATE, &g->log, why,
                              sizeof(why));
    if (rc != 0) {
        LOG_ERROR(SPL__RN_TAG, "group %llu: opening the log: %s %s", (unsigned long long)g->id,
                  spl_strerror(rc), why);
        return rc;
    }
    struct spl_raftlog_hardstate hs;
    spl_raftlog_hardstate(g->log, &hs);
    g->hs_term = hs.term;
    g->hs_vote = hs.vote;
    g->commit_seen = g->commit_noted = hs.commit;
    struct spl_raftlog_snapmeta cur;
    rc = spl_raftlog_snapmeta(g->log, &cur);
    if (rc != 0)
        return rc;
    bool fresh = spl_raftlog_last_index(g->log) == 0 && cur.index == 0 && hs.term == 0 &&
                 cur.conf.voter_count == 0 && g->state.install_index == 0;
    spl_raftlog_snapmeta_free(&cur);
    if (fresh && initial) {
        if (!spl_raft_conf_is_valid(initial) || !spl_raft_conf_is_voter(initial, h->opts.node_id))
            return SPL_EINVAL_ARG;
        struct spl_raftlog_snapmeta m = {0};
        memcpy(&m.conf, initial, sizeof(m.conf));
        rc = spl_raftlog_save_snapmeta(g->log, &m);
        LOG_INFO(SPL__RN_TAG, "group %llu: bootstrapped with %u voters", (unsigned long long)g->id,
                 initial->voter_count);
        if (rc != 0)
            return rc;
    }
    return redo_install(g);
}

static int fsm_open(struct spl__rn_group *g)
{
    struct spl_fsm_snapshot snap;
    int rc = spl__rn_log_fsm_snapshot(g->log, &snap);
    if (rc != 0)
        return rc;
    char live[SPL__RN_PATH_MAX + 32];
    snprintf(live, sizeof(live), "%s/fsm.%llu", g->dir, (unsigned long long)g->live_gen);
    rc = g->fsm.ops->load(g->fsm.ctx, live, &snap);
    g->snap_index = snap.index;
    g->conf = snap.conf;
    g->conf_epoch = snap.epoch;
    spl_fsm_snapshot_reset(&snap);
    return rc;
}

static int raft_open(struct spl_raftnode_host *h, struct spl__rn_group *g)
{
    spl_rand_seed_from_os(&g->rand);
    spl__rn_storage_init(&g->st, g->log);
    struct spl_raft_config cfg = {
        .id = h->opts.node_id,
        .group = g->id,
        .election_tick = h->opts.election_ticks,
        .heartbeat_tick = 1,
        .pre_vote = !h->opts.no_pre_vote,
        .check_quorum = true,
        .lease = !h->opts.no_lease,
        .max_inflight_msgs = h->opts.max_inflight_msgs,
        .max_uncommitted_bytes = 256ull << 20,
        .rand = &g->rand,
        .storage = &g->st.storage,
    };
    int rc = spl_raft_init(&cfg, &g->raft);
    if (rc != 0)
        return rc;
    g->applied = g->dispatched = g->snap_index;
    g->catchup_index = g->state.catchup_index;
    g->pub.applied = g->applied;
    g->pub.epoch = g->conf_epoch;
    g->pub.conf = g->conf;
    g->pub.caught_up = g->applied >= g->catchup_index;
    return 0;
}

static int group_open(struct spl_raftnode_host *h, struct spl__rn_group *g,
                      const struct spl_raftnode_group_opts *opts)
{
    spl__rn_group_dir(h, g->id, g->dir, sizeof(g->dir));
    snprintf(g->log_dir, sizeof(g->log_dir), "%s/log", g->dir);
    int rc = mkdir_p(g->dir);
    if (rc == 0)
        rc = state_open(g);
    if (rc == 0)
        rc = log_open(h, g, opts->initial_conf);
    if (rc == 0)
        rc = fsm_open(g);
    if (rc == 0)
        rc = raft_open(h, g);
    return rc;
}

static struct spl__rn_group *group_alloc(struct spl_raftnode_host *h,
                                         const struct spl_raftnode_group_opts *opts)
{
    struct spl__rn_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->done = calloc(SPL_RAFTNODE_APPLY_WINDOW, 1);
    if (!g->done) {
        free(g);
        return NULL;
    }
    g->id = opts->group;
    g->h = h;
    g->w = &h->workers[opts->group % h->worker_count];
    g->fsm = opts->fsm;
    pthread_mutex_init(&g->mu, NULL);
    spl__rn_state_init(&g->state);
    g->ev_persisted.kind = SPL__RN_EV_PERSISTED;
    g->ev_applied.kind = SPL__RN_EV_APPLIED;
    g->ev_installed.kind = SPL__RN_EV_INSTALLED;
    g->ev_snap_saved.kind = SPL__RN_EV_SNAP_SAVED;
    g->ev_persisted.g = g->ev_applied.g = g->ev_installed.g = g->ev_snap_saved.g = g;
    g->role = SPL_RAFT_FOLLOWER;
    return g;
}

int spl_raftnode_group_create(spl_raftnode_host *h, const struct spl_raftnode_group_opts *opts)
{
    const struct spl_fsm_ops *ops = opts->fsm.ops;
    if (opts->group == 0 || !ops || !ops->load || !ops->apply_key || !ops->apply ||
        !ops->save_snapshot) {
        if (ops && ops->close)
            ops->close(opts->fsm.ctx);
        return SPL_EINVAL_ARG;
    }
    pthread_mutex_lock(&h->create_mu);
    pthread_rwlock_rdlock(&h->groups_mu);
    int rc = atomic_load(&h->stopping)            ? SPL_ESHUTDOWN
             : table_find(h, opts->group)         ? SPL_ERAFT_GROUPEXISTS
             : h->group_count >= SPL_RAFT_GROUPS_MAX ? SPL_ETOOBIG
                                                  : 0;
    pthread_rwlock_unlock(&h->groups_mu);
    struct spl__rn_group *g = rc == 0 ? group_alloc(h, opts) : NULL;
    if (rc == 0 && !g)
        rc = -ENOMEM;
    if (rc == 0)
        rc = group_open(h, g, opts);
    if (rc != 0) {
        LOG_ERROR(SPL__RN_TAG, "group %llu: cannot open: %s", (unsigned long long)opts->group,
                  spl_strerror(rc));
        if (g) {
            spl_raft_destroy(g->raft);
            spl_raftlog_close(g->log);
            group_free(g);
        }
        pthread_mutex_unlock(&h->create_mu);
        if (ops->close)
            ops->close(opts->fsm.ctx);
        return rc;
    }
    atomic_store(&g->refs, 2); /* the table's and the worker's */
    pthread_rwlock_wrlock(&h->groups_mu);
    uint32_t b = bucket_of(g->id);
    g->hnext = h->table[b];
    h->table[b] = g;
    h->group_count++;
    pthread_rwlock_unlock(&h->groups_mu);
    pthread_mutex_unlock(&h->create_mu);
    spl_gauge_inc(h->m.groups);
    LOG_INFO(SPL__RN_TAG, "group %llu open: snapshot %llu, last index %llu, epoch %llu",
             (unsigned long long)g->id, (unsigned long long)g->snap_index,
             (unsigned long long)spl_raftlog_last_index(g->log), (unsigned long long)g->conf_epoch);
    struct spl__rn_event *ev = calloc(1, sizeof(*ev));
    ASSERT(ev != NULL);
    ev->kind = SPL__RN_EV_ADD;
    ev->g = g;
    spl__rn_post(g->w, ev); /* from here on, g is the worker's */
    return 0;
}

int spl_raftnode_group_destroy(spl_raftnode_host *h, uint64_t group, bool remove_data)
{
    pthread_mutex_lock(&h->create_mu);
    pthread_rwlock_wrlock(&h->groups_mu);
    struct spl__rn_group **pp = &h->table[bucket_of(group)];
    while (*pp && (*pp)->id != group)
        pp = &(*pp)->hnext;
    struct spl__rn_group *g = *pp;
    if (g) {
        *pp = g->hnext;
        h->group_count--;
    }
    pthread_rwlock_unlock(&h->groups_mu);
    if (!g) {
        pthread_mutex_unlock(&h->create_mu);
        return SPL_ERAFT_NOGROUP;
    }
    struct spl__rn_ctl_ev ctl = {0};
    pthread_mutex_init(&ctl.mu, NULL);
    pthread_cond_init(&ctl.cond, NULL);
    ctl.ev.kind = SPL__RN_EV_REMOVE;
    ctl.ev.g = g; /* carries the table's reference */
    ctl.remove_data = remove_data;
    atomic_store(&g->install_stop, true);
    spl__rn_post(g->w, &ctl.ev);
    pthread_mutex_lock(&ctl.mu);
    while (!ctl.done)
        pthread_cond_wait(&ctl.cond, &ctl.mu);
    pthread_mutex_unlock(&ctl.mu);
    pthread_mutex_unlock(&h->create_mu);
    pthread_mutex_destroy(&ctl.mu);
    pthread_cond_destroy(&ctl.cond);
    return ctl.status;
}

uint32_t spl_raftnode_group_ids(spl_raftnode_host *h, uint64_t *ids, uint32_t cap)
{
    uint32_t n = 0;
    pthread_rwlock_rdlock(&h->groups_mu);
    for (uint32_t b = 0; b < SPL__RN_BUCKETS; b++)
        for (struct spl__rn_group *g = h->table[b]; g; g = g->hnext) {
            if (n < cap)
                ids[n] = g->id;
            n++;
        }
    pthread_rwlock_unlock(&h->groups_mu);
    return n;
}

/* ---- calls ---- */

static int call_start(spl_raftnode_host *h, uint64_t group, uint8_t call, uint32_t timeout_ms,
                      spl_raftnode_done_cb done_cb, void *ctx, struct spl__rn_req **out)
{
    ASSERT(done_cb != NULL);
    if (atomic_load(&h->stopping))
        return SPL_ESHUTDOWN;
    struct spl__rn_group *g = spl__rn_group_get(h, group);
    if (!g)
        return SPL_ERAFT_NOGROUP;
    struct spl__rn_req *req = calloc(1, sizeof(*req));
    if (!req) {
        spl__rn_group_put(g);
        return -ENOMEM;
    }
    req->ev.kind = SPL__RN_EV_CALL;
    req->ev.g = g;
    req->call = call;
    req->done_cb = done_cb;
    req->ctx = ctx;
    req->start_ns = spl_mono_ns();
    req->deadline_ns =
        req->start_ns +
        (uint64_t)(timeout_ms ? timeout_ms : h->opts.proposal_timeout_ms) * SPL_NS_PER_MS;
    req->expected_epoch = SPL_RAFTNODE_ANY_EPOCH;
    spl_iobuf_init(&req->data);
    *out = req;
    return 0;
}

static void call_post(struct spl__rn_req *req)
{
    spl__rn_post(req->ev.g->w, &req->ev);
}

int spl_raftnode_propose(spl_raftnode_host *h, uint64_t group, struct spl_iobuf *data,
                         uint32_t timeout_ms, spl_raftnode_done_cb done_cb, void *ctx)
{
    if (spl_iobuf_len(data) > SPL_RAFT_ENTRY_MAX)
        return SPL_ETOOBIG;
    struct spl__rn_req *req;
    int rc = call_start(h, group, SPL__RN_CALL_PROPOSE, timeout_ms, done_cb, ctx, &req);
    if (rc != 0)
        return rc;
    spl_iobuf_move(&req->data, data);
    atomic_fetch_add_explicit(&h->st_proposals, 1, memory_order_relaxed);
    spl_counter_inc(h->m.proposals);
    call_post(req);
    return 0;
}

int spl_raftnode_read(spl_raftnode_host *h, uint64_t group, uint32_t timeout_ms,
                      spl_raftnode_done_cb done_cb, void *ctx)
{
    struct spl__rn_req *req;
    int rc = call_start(h, group, SPL__RN_CALL_READ, timeout_ms, done_cb, ctx, &req);
    if (rc == 0)
        call_post(req);
    return rc;
}

int spl_raftnode_change_peers(spl_raftnode_host *h, uint64_t group, enum spl_raft_conf_op op,
                              uint64_t node_id, uint64_t expected_epoch,
                              spl_raftnode_done_cb done_cb, void *ctx)
{
    if (op == SPL_RAFT_CONF_RESTATE || op < SPL_RAFT_CONF_ADD_VOTER || op > SPL_RAFT_CONF_REMOVE ||
        node_id == 0)
        return SPL_EINVAL_ARG;
    struct spl__rn_req *req;
    int rc = call_start(h, group, SPL__RN_CALL_CONF, 0, done_cb, ctx, &req);
    if (rc != 0)
        return rc;
    req->conf_op = (uint8_t)op;
    req->node = node_id;
    req->expected_epoch = expected_epoch;
    call_post(req);
    return 0;
}

int spl_raftnode_transfer_leader(spl_raftnode_host *h, uint64_t group, uint64_t to,
                                 uint64_t expected_epoch, spl_raftnode_done_cb done_cb, void *ctx)
{
    if (to == 0)
        return SPL_EINVAL_ARG;
    struct spl__rn_req *req;
    int rc = call_start(h, group, SPL__RN_CALL_TRANSFER, 0, done_cb, ctx, &req);
    if (rc != 0)
        return rc;
    req->node = to;
    req->expected_epoch = expected_epoch;
    call_post(req);
    return 0;
}

int spl_raftnode_snapshot(spl_raftnode_host *h, uint64_t group, spl_raftnode_done_cb done_cb,
                          void *ctx)
{
    struct spl__rn_req *req;
    int rc = call_start(h, group, SPL__RN_CALL_SNAPSHOT, 0, done_cb, ctx, &req);
    if (rc == 0)
        call_post(req);
    return rc;
}

/* ---- status ---- */

int spl_raftnode_leader(spl_raftnode_host *h, uint64_t group, struct spl_raftnode_leader_info *out)
{
    struct spl__rn_group *g = spl__rn_group_get(h, group);
    if (!g)
        return SPL_ERAFT_NOGROUP;
    pthread_mutex_lock(&g->mu);
    out->leader = g->pub.leader;
    out->term = g->pub.term;
    pthread_mutex_unlock(&g->mu);
    out->address[0] = '\0';
    if (out->leader)
        spl__rn_leader_address(h, out->leader, out->address, sizeof(out->address));
    spl__rn_group_put(g);
    return 0;
}

int spl_raftnode_group_status(spl_raftnode_host *h, uint64_t group,
                              struct spl_raftnode_group_status *out)
{
    struct spl__rn_group *g = spl__rn_group_get(h, group);
    if (!g)
        return SPL_ERAFT_NOGROUP;
    pthread_mutex_lock(&g->mu);
    *out = g->pub;
    out->group = g->id;
    out->applied = g->applied;
    out->caught_up = g->applied >= g->catchup_index;
    pthread_mutex_unlock(&g->mu);
    spl__rn_group_put(g);
    return 0;
}

void spl_raftnode_stats(spl_raftnode_host *h, struct spl_raftnode_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&h->groups_mu);
    out->groups = h->group_count;
    pthread_rwlock_unlock(&h->groups_mu);
    out->msgs_sent = atomic_load(&h->st_msgs_sent);
    out->msgs_received = atomic_load(&h->st_msgs_received);
    out->msgs_rejected = atomic_load(&h->st_msgs_rejected);
    out->rpcs_sent = atomic_load(&h->st_rpcs_sent);
    out->rpcs_received = atomic_load(&h->st_rpcs_received);
    out->heartbeats_sent = atomic_load(&h->st_heartbeats_sent);
    out->proposals = atomic_load(&h->st_proposals);
    out->ticks = atomic_load(&h->st_ticks);
    out->getfile_bytes_served = atomic_load(&h->st_getfile_bytes);
    struct spl_raftlog_env_stats es;
    spl_raftlog_env_stats(h->env, &es);
    out->log_appends = es.appends;
    out->log_syncs = es.syncs;
    out->log_sync_rounds = es.sync_rounds;
}

void spl_raftnode_commit_latency(spl_raftnode_host *h, struct spl_histogram_snapshot *out)
{
    spl_histogram_snapshot(h->m.commit_latency, out);
}

void spl_raftnode_latency(spl_raftnode_host *h, int which, struct spl_histogram_snapshot *out)
{
    spl_histogram_snapshot(which == 1   ? h->m.persist_latency
                           : which == 2 ? h->m.quorum_latency
                                        : h->m.commit_latency,
                           out);
}
