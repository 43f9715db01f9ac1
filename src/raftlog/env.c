/*
 * env.c - one env per disk: the segment pool, the queue of groups waiting for a sync, and
 * the sync workers that make group commit happen.
 *
 * An append writes its records at once (owner thread) and queues its group; a worker
 * takes the group, notes how far it was written (written_seq), fdatasyncs its tail
 * segment and then writes + fdatasyncs its hard state, and completes every request up to
 * that point. While one sync runs, more appends of the same group pile up and are all
 * covered by its next sync; different groups are synced by different workers in
 * parallel, so the device sees many cache flushes at once and merges them. In SYNCFS
 * mode one worker instead takes every queued group, writes their hard states, issues one
 * syncfs() for all of them and completes them all.
 *
 * Threads: workers are started at open and joined at close; with sync_threads == 0 the
 * caller's thread does the same work in spl_raftlog_env_poll(). Callbacks run there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog_internal.h"

#define STAT_ADD(env, field, n) atomic_fetch_add_explicit(&(env)->field, (n), memory_order_relaxed)

void spl__raftlog_env_enqueue(struct spl_raftlog_env *env, struct spl_raftlog *g)
{
    pthread_mutex_lock(&env->qmu);
    ASSERT(g->q_next == NULL && env->q_tail != g);
    if (env->q_tail)
        env->q_tail->q_next = g;
    else
        env->q_head = g;
    env->q_tail = g;
    env->q_len++;
    pthread_cond_signal(&env->qcv);
    pthread_mutex_unlock(&env->qmu);
}

/* Pop up to max queued groups (caller holds qmu). */
static uint32_t env_pop(struct spl_raftlog_env *env, struct spl_raftlog **out, uint32_t max)
{
    uint32_t n = 0;
    while (env->q_head && n < max) {
        struct spl_raftlog *g = env->q_head;
        env->q_head = g->q_next;
        if (!env->q_head)
            env->q_tail = NULL;
        g->q_next = NULL;
        env->q_len--;
        out[n++] = g;
    }
    return n;
}

/* ---- one group's sync ---- */

struct sync_snap {
    uint64_t target;   /* written_seq covered */
    uint64_t data_seq; /* data appends covered */
    int fd;            /* tail segment */
    bool need_data;
    bool has_hs;
    bool hs_sync; /* term or vote changed (or a caller waits): write and fdatasync */
    struct spl_raftlog_hardstate hs;
    int err;
};

static void sync_take(struct spl_raftlog *g, struct sync_snap *s)
{
    pthread_mutex_lock(&g->mu);
    ASSERT(g->state == SYNC_QUEUED);
    g->state = SYNC_SYNCING;
    s->target = g->written_seq;
    s->data_seq = g->data_seq;
    s->fd = g->tail_fd;
    s->need_data = g->data_seq != g->synced_data_seq && g->tail_fd >= 0;
    s->has_hs = g->hs_dirty || g->hs_lazy;
    s->hs_sync = g->hs_dirty;
    s->hs = g->hs_pending;
    g->hs_dirty = g->hs_lazy = false;
    s->err = g->err;
    pthread_mutex_unlock(&g->mu);
}

/* Record the outcome and detach the completed requests into *done. The group stays
 * SYNCING (no other worker takes it) until sync_settle(), so callbacks of one group run
 * one batch at a time, in order. */
static void sync_finish(struct spl_raftlog *g, const struct sync_snap *s, int rc,
                        struct spl_raftlog_req **done)
{
    pthread_mutex_lock(&g->mu);
    ASSERT(g->state == SYNC_SYNCING);
    *done = NULL;
    struct spl_raftlog_req **tail = done;
    if (rc != 0 && g->err == 0) {
        g->err = rc;
        LOG_ERROR("raftlog", "group %lu (%s): sync failed, log stopped: %s",
                  (unsigned long)g->group_id, g->dir, spl_strerror(rc));
    }
    if (g->err == 0) {
        g->synced_data_seq = s->data_seq;
        g->durable_seq = s->target;
    }
    while (g->wait_head && (g->err != 0 || g->wait_head->priv_seq <= g->durable_seq)) {
        struct spl_raftlog_req *r = g->wait_head;
        g->wait_head = r->priv_next;
        r->priv_status = g->err;
        *tail = r;
        tail = &r->priv_next;
    }
    *tail = NULL;
    if (!g->wait_head)
        g->wait_tail = NULL;
    pthread_mutex_unlock(&g->mu);
}

/* Run the callbacks (no lock held), then requeue the group if more arrived meanwhile or
 * let it go idle. After this the caller must not touch g. */
static void sync_settle(struct spl_raftlog *g, struct spl_raftlog_req *done)
{
    while (done) {
        struct spl_raftlog_req *r = done;
        done = r->priv_next;
        spl_raftlog_cb cb = r->priv_cb;
        r->priv_next = NULL;
        r->priv_cb = NULL;
        cb(r, r->priv_status);
    }
    pthread_mutex_lock(&g->mu);
    ASSERT(g->state == SYNC_SYNCING);
    bool again = g->err == 0 ? g->written_seq > g->durable_seq || g->hs_dirty
                             : g->wait_head != NULL;
    g->state = again ? SYNC_QUEUED : SYNC_IDLE;
    if (again)
        spl__raftlog_env_enqueue(g->env, g);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Write hs into the slot that does not hold the last durable state (meta.c); no sync.
 * The sequence number skips one when the slot's parity asks for it. */
static int sync_write_hs(struct spl_raftlog *g, const struct spl_raftlog_hardstate *hs)
{
    uint64_t seq = g->hs_seq + 1;
    if (seq % 2 == g->hs_durable_seq % 2)
        seq++;
    int rc = spl__raftlog_hs_write(g->env->vfs, g->hs_fd, g->group_id, seq, hs);
    if (rc == 0)
        g->hs_seq = seq;
    STAT_ADD(g->env, st_hs_writes, 1);
    return rc;
}

void spl__raftlog_sync_group(struct spl_raftlog *g)
{
    struct spl_raftlog_env *env = g->env;
    struct sync_snap s;
    struct spl_raftlog_req *done;
    pthread_mutex_lock(&g->io_mu);
    sync_take(g, &s);
    int rc = s.err;
    if (rc == 0 && s.need_data) {
        rc = spl_vfs_fdatasync(env->vfs, s.fd);
        STAT_ADD(env, st_syncs, 1);
    }
    /* the log first, then the hard state: a commit that reaches the disk never points
     * past the durable log. A commit-only change is written but not synced (losing it
     * loses only a hint); a term or vote change is synced before anyone hears of it. */
    if (rc == 0 && s.has_hs) {
        rc = sync_write_hs(g, &s.hs);
        if (rc == 0 && s.hs_sync) {
            rc = spl_vfs_fdatasync(env->vfs, g->hs_fd);
            STAT_ADD(env, st_syncs, 1);
            if (rc == 0)
                g->hs_durable_seq = g->hs_seq;
        }
    }
    pthread_mutex_unlock(&g->io_mu);
    STAT_ADD(env, st_rounds, 1);
    sync_finish(g, &s, rc, &done);
    sync_settle(g, done);
}

/* SYNCFS mode: one syncfs() for a batch of groups. No io_mu: nothing here touches a
 * segment fd (the syncfs goes through the pool directory's fd), and the hard state fd
 * lives as long as the group. */
struct batch_scratch {
    struct sync_snap *s;
    struct spl_raftlog_req **done;
};

static void sync_batch(struct spl_raftlog_env *env, struct spl_raftlog **gs, uint32_t n,
                       struct batch_scratch *b)
{
    struct sync_snap *s = b->s;
    struct spl_raftlog_req **done = b->done;
    for (uint32_t i = 0; i < n; i++) {
        sync_take(gs[i], &s[i]);
        if (s[i].err == 0 && s[i].has_hs)
            s[i].err = sync_write_hs(gs[i], &s[i].hs);
    }
    int rc = spl_vfs_syncfs(env->vfs, env->pool_dir_fd);
    STAT_ADD(env, st_syncs, 1);
    STAT_ADD(env, st_rounds, 1);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (s[i].err == 0 && s[i].has_hs)
            gs[i]->hs_durable_seq = gs[i]->hs_seq;
    for (uint32_t i = 0; i < n; i++)
        sync_finish(gs[i], &s[i], s[i].err ? s[i].err : rc, &done[i]);
    for (uint32_t i = 0; i < n; i++)
        sync_settle(gs[i], done[i]);
}

/* Scratch for batches of up to max groups, allocated once per worker (not per round). */
static void batch_scratch_init(struct batch_scratch *b, uint32_t max)
{
    b->s = calloc(max ? max : 1, sizeof(*b->s));
    b->done = calloc(max ? max : 1, sizeof(*b->done));
    ASSERT(b->s && b->done);
}

static void batch_scratch_free(struct batch_scratch *b)
{
    free(b->s);
    free(b->done);
}

/* ---- workers ---- */

static void *env_worker(void *arg)
{
    struct spl_raftlog_env *env = arg;
    bool batch = env->cfg.sync_mode == SPL_RAFTLOG_SYNC_SYNCFS;
    uint32_t max = batch ? SPL_RAFTLOG_GROUPS_MAX : 1;
    struct spl_raftlog **gs = calloc(max, sizeof(*gs));
    struct batch_scratch scratch;
    ASSERT(gs != NULL);
    batch_scratch_init(&scratch, batch ? max : 0);
    pthread_mutex_lock(&env->qmu);
    for (;;) {
        while (!env->q_head && !env->stopping)
            pthread_cond_wait(&env->qcv, &env->qmu);
        if (!env->q_head)
            break;
        uint32_t n = env_pop(env, gs, max);
        pthread_mutex_unlock(&env->qmu);
        if (batch)
            sync_batch(env, gs, n, &scratch);
        else
            spl__raftlog_sync_group(gs[0]);
        pthread_mutex_lock(&env->qmu);
    }
    pthread_mutex_unlock(&env->qmu);
    batch_scratch_free(&scratch);
    free(gs);
    return NULL;
}

int spl_raftlog_env_poll(struct spl_raftlog_env *env)
{
    ASSERT(env->thread_count == 0);
    pthread_mutex_lock(&env->qmu);
    uint32_t n = env->q_len;
    struct spl_raftlog **gs = n ? calloc(n, sizeof(*gs)) : NULL;
    ASSERT(n == 0 || gs != NULL);
    n = env_pop(env, gs, n);
    pthread_mutex_unlock(&env->qmu);
    if (n && env->cfg.sync_mode == SPL_RAFTLOG_SYNC_SYNCFS) {
        struct batch_scratch scratch;
        batch_scratch_init(&scratch, n);
        sync_batch(env, gs, n, &scratch);
        batch_scratch_free(&scratch);
    } else {
        for (uint32_t i = 0; i < n; i++)
            spl__raftlog_sync_group(gs[i]);
    }
    free(gs);
    return (int)n;
}

/* ---- open / close ---- */

static int env_check_config(const struct spl_raftlog_env_config *cfg)
{
    if (!cfg->pool_dir || strlen(cfg->pool_dir) >= SPL_RAFTLOG_PATH_MAX)
        return SPL_EINVAL_ARG;
    if (cfg->segment_size < SPL_RAFTLOG_SEGMENT_SIZE_MIN ||
        cfg->segment_size > SPL_RAFTLOG_SEGMENT_SIZE_MAX || cfg->segment_size % SPL_BLOCK_SIZE)
        return SPL_EINVAL_ARG;
    if (cfg->sync_threads > SPL_RAFTLOG_SYNC_THREADS_MAX)
        return SPL_EINVAL_ARG;
    if (cfg->sync_mode != SPL_RAFTLOG_SYNC_FDATASYNC && cfg->sync_mode != SPL_RAFTLOG_SYNC_SYNCFS)
        return SPL_EINVAL_ARG;
    return 0;
}

int spl_raftlog_env_open(const struct spl_raftlog_env_config *cfg_in,
                         struct spl_raftlog_env **out)
{
    struct spl_raftlog_env_config cfg = *cfg_in;
    if (!cfg.vfs)
        cfg.vfs = spl_vfs_posix();
    if (cfg.segment_size == 0)
        cfg.segment_size = SPL_RAFTLOG_SEGMENT_SIZE_DEFAULT;
    int rc = env_check_config(&cfg);
    if (rc != 0)
        return rc;
    struct spl_raftlog_env *env = calloc(1, sizeof(*env));
    if (!env)
        return -ENOMEM;
    env->cfg = cfg;
    env->vfs = cfg.vfs;
    rc = spl__raftlog_pool_open(&env->pool, env->vfs, cfg.pool_dir, cfg.segment_size,
                                cfg.pool_fallback_create);
    if (rc != 0)
        goto out_free;
    env->cfg.pool_dir = env->pool.dir; /* the caller's string need not outlive open */
    rc = spl_vfs_open(env->vfs, cfg.pool_dir, SPL_VFS_DIRECTORY, &env->pool_dir_fd);
    if (rc != 0)
        goto out_pool;
    pthread_mutex_init(&env->qmu, NULL);
    pthread_cond_init(&env->qcv, NULL);
    uint32_t want = cfg.sync_threads;
    if (cfg.sync_mode == SPL_RAFTLOG_SYNC_SYNCFS && want > 1)
        want = 1; /* one syncfs at a time covers everything */
    for (; env->thread_count < want; env->thread_count++) {
        rc = -pthread_create(&env->threads[env->thread_count], NULL, env_worker, env);
        if (rc != 0) {
            spl_raftlog_env_close(env);
            return rc;
        }
    }
    *out = env;
    return 0;
out_pool:
    spl__raftlog_pool_close(&env->pool);
out_free:
    free(env);
    return rc;
}

void spl_raftlog_env_close(struct spl_raftlog_env *env)
{
    if (!env)
        return;
    ASSERTF(env->group_count == 0, "%u raft logs still open", env->group_count);
    pthread_mutex_lock(&env->qmu);
    env->stopping = true;
    pthread_cond_broadcast(&env->qcv);
    pthread_mutex_unlock(&env->qmu);
    for (uint32_t i = 0; i < env->thread_count; i++)
        pthread_join(env->threads[i], NULL);
    ASSERT(env->q_head == NULL);
    spl_vfs_close(env->vfs, env->pool_dir_fd);
    spl__raftlog_pool_close(&env->pool);
    pthread_cond_destroy(&env->qcv);
    pthread_mutex_destroy(&env->qmu);
    free(env);
}

void spl_raftlog_env_stats(struct spl_raftlog_env *env, struct spl_raftlog_env_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->appends = atomic_load(&env->st_appends);
    out->entries = atomic_load(&env->st_entries);
    out->bytes = atomic_load(&env->st_bytes);
    out->syncs = atomic_load(&env->st_syncs);
    out->sync_rounds = atomic_load(&env->st_rounds);
    out->hs_writes = atomic_load(&env->st_hs_writes);
    out->segments_taken = atomic_load(&env->st_taken);
    out->segments_returned = atomic_load(&env->st_returned);
    out->segments_created = atomic_load(&env->st_created);
    out->pool_free = spl__raftlog_pool_free_count(&env->pool);
}

uint64_t spl_raftlog_entry_data_max(const struct spl_raftlog_env *env)
{
    uint64_t cap = env->cfg.segment_size - SPL_RAFTLOG_SEGMENT_HEADER_SIZE -
                   SPL_RAFTLOG_REC_HEADER_SIZE;
    cap &= ~(uint64_t)(SPL_RAFTLOG_REC_ALIGN - 1);
    return cap < SPL_RAFT_ENTRY_MAX ? cap : SPL_RAFT_ENTRY_MAX;
}
