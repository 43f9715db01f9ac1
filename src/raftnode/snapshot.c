/*
 * snapshot.c - lightweight snapshots on the source side: taking them (FSM save_snapshot
 * on a snapshot thread, then the raftlog meta and log compaction on the worker), the
 * holds that keep log entries (S, D] for an installer (RAFT-INVARIANTS 18), and the
 * GetFile and SnapshotDone handlers.
 *
 * Holds: sending a SNAPSHOT message to F, or serving F a GetFile, creates or refreshes
 * F's hold {S, D so far}. While a hold exists the log is not compacted above its S and
 * the FSM's files are pinned (fsm.h pin_files). A hold ends when F reports the install
 * abandoned, when F's match index reached the D it was told (the leader sees that in its
 * progress), or after SPL__RN_HOLD_IDLE_NS without GetFile.
 * GetFile is read on a snapshot thread (never on the IO thread): the file's current
 * bytes, their CRC32C, and the commit index read after the bytes, raised to the highest
 * index handed to the apply threads, so that D covers every effect the bytes may hold.
 */
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
#include "raft.pb-c.h"
#include "raftnode/internal.h"

/* ---- holds ---- */

void spl__rn_hold_add(struct spl__rn_group *g, uint64_t installer, uint64_t snap_index)
{
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&g->mu);
    struct spl__rn_hold *slot = NULL, *oldest = &g->holds[0];
    for (int i = 0; i < SPL__RN_HOLDS_MAX; i++) {
        struct spl__rn_hold *hd = &g->holds[i];
        if (hd->installer == installer) {
            slot = hd;
            break;
        }
        if (!slot && hd->installer == 0)
            slot = hd;
        if (hd->last_ns < oldest->last_ns)
            oldest = hd;
    }
    if (!slot)
        slot = oldest;
    if (slot->installer != installer || slot->snap_index != snap_index) {
        slot->installer = installer;
        slot->snap_index = snap_index;
        slot->catchup_index = 0;
    }
    slot->last_ns = now;
    pthread_mutex_unlock(&g->mu);
}

void spl__rn_hold_release(struct spl__rn_group *g, uint64_t installer)
{
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < SPL__RN_HOLDS_MAX; i++)
        if (g->holds[i].installer == installer)
            memset(&g->holds[i], 0, sizeof(g->holds[i]));
    pthread_mutex_unlock(&g->mu);
}

uint64_t spl__rn_hold_floor(struct spl__rn_group *g)
{
    uint64_t floor = UINT64_MAX;
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < SPL__RN_HOLDS_MAX; i++)
        if (g->holds[i].installer && g->holds[i].snap_index < floor)
            floor = g->holds[i].snap_index;
    pthread_mutex_unlock(&g->mu);
    return floor;
}

void spl__rn_holds_tick(struct spl__rn_group *g, const struct spl_raft_status *st)
{
    uint64_t now = spl_mono_ns();
    bool any = false;
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < SPL__RN_HOLDS_MAX; i++) {
        struct spl__rn_hold *hd = &g->holds[i];
        if (!hd->installer)
            continue;
        bool done = now - hd->last_ns > SPL__RN_HOLD_IDLE_NS;
        for (uint32_t p = 0; p < st->peer_count && !done; p++)
            if (st->peers[p].id == hd->installer && hd->catchup_index &&
                st->peers[p].match >= hd->catchup_index)
                done = true;
        if (done)
            memset(hd, 0, sizeof(*hd));
        else
            any = true;
    }
    pthread_mutex_unlock(&g->mu);
    if (any != g->pinned) {
        g->pinned = any;
        if (g->fsm.ops->pin_files)
            g->fsm.ops->pin_files(g->fsm.ctx, any);
    }
}

/* ---- taking snapshots ---- */

struct snap_bg {
    struct spl__rn_bgjob bg;
    struct spl__rn_snapjob *job;
};

static void snap_run(struct spl__rn_bgjob *bg)
{
    struct snap_bg *sb = (struct snap_bg *)bg;
    struct spl__rn_snapjob *job = sb->job;
    struct spl__rn_group *g = job->g;
    free(sb);
    job->status = g->fsm.ops->save_snapshot(g->fsm.ctx, job->index, &job->snap);
    spl__rn_post_embedded(g->w, &g->ev_snap_saved);
}

void spl__rn_snapshot_maybe(struct spl__rn_group *g, bool forced)
{
    struct spl_raftnode_host *h = g->h;
    if (g->snapjob || g->install || atomic_load(&g->dying))
        return;
    pthread_mutex_lock(&g->mu);
    uint64_t applied = g->applied;
    bool caught_up = applied >= g->catchup_index;
    pthread_mutex_unlock(&g->mu);
    if (!caught_up || applied <= g->snap_index)
        return;
    if (!forced && (h->opts.snapshot_interval == 0 ||
                    applied - g->snap_index < h->opts.snapshot_interval))
        return;
    uint64_t term;
    if (spl_raftlog_term(g->log, applied, &term) != 0)
        return;
    struct spl__rn_snapjob *job = calloc(1, sizeof(*job));
    struct snap_bg *sb = calloc(1, sizeof(*sb));
    ASSERT(job && sb);
    job->g = g;
    job->index = applied;
    job->term = term;
    job->epoch = g->conf_epoch;
    job->conf = g->conf;
    spl_fsm_snapshot_init(&job->snap);
    job->snap.index = applied;
    job->snap.term = term;
    job->snap.epoch = g->conf_epoch;
    job->snap.conf = g->conf;
    g->snapjob = job;
    sb->bg.run = snap_run;
    sb->job = job;
    spl__rn_bg_submit(h, &sb->bg);
}

static int snap_record(struct spl__rn_group *g, struct spl__rn_snapjob *job)
{
    struct spl_raftnode_host *h = g->h;
    uint64_t blob_len = spl_iobuf_len(&job->snap.blob);
    if (blob_len > SPL_RAFTNODE_FSM_BLOB_MAX)
        return SPL_ETOOBIG;
    void *blob = blob_len ? malloc(blob_len) : NULL;
    if (blob_len && !blob)
        return -ENOMEM;
    spl_iobuf_copy_out(&job->snap.blob, 0, blob, blob_len);
    struct spl_raftlog_snapmeta m = {0};
    m.index = job->index;
    m.term = job->term;
    m.epoch = job->epoch;
    memcpy(&m.conf, &job->conf, sizeof(m.conf));
    m.file_count = job->snap.file_count;
    m.files = (const struct spl_raftlog_snapfile *)(const void *)job->snap.files;
    m.blob_len = (uint32_t)blob_len;
    m.blob = blob;
    int rc = spl_raftlog_save_snapmeta(g->log, &m);
    free(blob);
    if (rc != 0)
        return rc;
    g->snap_index = job->index;
    pthread_mutex_lock(&g->mu);
    g->pub.snapshot_index = job->index;
    pthread_mutex_unlock(&g->mu);
    uint64_t floor = job->index > h->opts.snapshot_keep ? job->index - h->opts.snapshot_keep : 0;
    uint64_t hold = spl__rn_hold_floor(g);
    if (hold < floor)
        floor = hold;
    if (floor > 0)
        rc = spl_raftlog_compact_prefix(g->log, floor);
    /* publish the new log start now: status readers must not wait for the next ready */
    pthread_mutex_lock(&g->mu);
    g->pub.first_index = spl_raftlog_first_index(g->log);
    pthread_mutex_unlock(&g->mu);
    spl_counter_inc(h->m.snapshots);
    LOG_INFO(SPL__RN_TAG, "group %llu: snapshot at %llu (term %llu, epoch %llu, %u files), "
             "log compacted to %llu", (unsigned long long)g->id, (unsigned long long)job->index,
             (unsigned long long)job->term, (unsigned long long)job->epoch, job->snap.file_count,
             (unsigned long long)floor);
    return rc;
}

void spl__rn_snapshot_saved(struct spl__rn_group *g)
{
    struct spl__rn_snapjob *job = g->snapjob;
    ASSERT(job != NULL);
    g->snapjob = NULL;
    int rc = job->status;
    if (rc == 0 && !atomic_load(&g->dying) && job->index > g->snap_index)
        rc = snap_record(g, job);
    if (rc != 0)
        LOG_WARN(SPL__RN_TAG, "group %llu: snapshot at %llu failed: %s", (unsigned long long)g->id,
                 (unsigned long long)job->index, spl_strerror(rc));
    while (g->snap_waiters) {
        struct spl__rn_req *r = g->snap_waiters;
        g->snap_waiters = r->slot_next;
        r->index = g->snap_index;
        spl__rn_req_complete(g, r, rc);
    }
    spl_fsm_snapshot_reset(&job->snap);
    free(job);
    if (g->install && g->install_ready)
        spl__rn_install_finish(g);
}

/* ---- GetFile (source side) ---- */

struct getfile_job {
    struct spl__rn_bgjob bg;
    spl_rpc_call *call;
    struct spl__rn_group *g;
};

static int read_piece(const char *path, uint64_t offset, uint32_t length, struct spl_iobuf *out,
                      uint64_t *size_out, bool *missing)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *missing = errno == ENOENT;
        return *missing ? 0 : -errno;
    }
    struct stat sb;
    int rc = fstat(fd, &sb) == 0 ? 0 : -errno;
    uint64_t size = rc == 0 ? (uint64_t)sb.st_size : 0;
    uint64_t n = offset < size ? size - offset : 0;
    if (n > length)
        n = length;
    void *buf = n ? malloc(n) : NULL;
    if (n && !buf)
        rc = -ENOMEM;
    uint64_t got = 0;
    while (rc == 0 && got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        got += (uint64_t)r;
    }
    close(fd);
    if (rc == 0 && n)
        rc = spl_iobuf_append_external(out, buf, n, spl__rn_free_cb, NULL);
    if (rc != 0)
        free(buf);
    *size_out = size;
    return rc;
}

static void getfile_run(struct spl__rn_bgjob *bg)
{
    struct getfile_job *job = (struct getfile_job *)bg;
    struct spl__rn_group *g = job->g;
    const Spline__RaftGetFileRequest *req =
        (const Spline__RaftGetFileRequest *)spl_rpc_call_request(job->call);
    pthread_mutex_lock(&g->mu);
    uint64_t applied = g->applied, gen = g->live_gen_pub;
    bool caught_up = applied >= g->catchup_index;
    pthread_mutex_unlock(&g->mu);
    int rc = atomic_load(&g->dying) ? SPL_ERAFT_NOGROUP
             : !caught_up            ? SPL_ERAFTNODE_NOTCAUGHTUP
             : applied < req->snapshot_index ? SPL_ERAFT_STALE
                                             : 0;
    struct spl_iobuf data;
    spl_iobuf_init(&data);
    uint64_t size = 0;
    bool missing = false;
    if (rc == 0) {
        char path[SPL__RN_PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/fsm.%llu/%s", g->dir, (unsigned long long)gen, req->name);
        uint32_t len = req->length > SPL_RAFTNODE_PIECE_MAX ? SPL_RAFTNODE_PIECE_MAX : req->length;
        rc = read_piece(path, req->offset, len, &data, &size, &missing);
    }
    if (rc != 0) {
        spl_rpc_reply_error(job->call, rc, NULL);
        goto out;
    }
    uint64_t n = spl_iobuf_len(&data);
    Spline__RaftGetFileResponse resp = SPLINE__RAFT_GET_FILE_RESPONSE__INIT;
    resp.crc32c = spl_iobuf_crc32c(&data, 0, 0, n);
    resp.file_size = size;
    resp.eof = missing || req->offset + n >= size;
    resp.missing = missing;
    pthread_mutex_lock(&g->mu);
    resp.commit_index = g->pub.commit > g->dispatched ? g->pub.commit : g->dispatched;
    pthread_mutex_unlock(&g->mu);
    if (req->installer) {
        spl__rn_hold_add(g, req->installer, req->snapshot_index);
        pthread_mutex_lock(&g->mu);
        for (int i = 0; i < SPL__RN_HOLDS_MAX; i++)
            if (g->holds[i].installer == req->installer)
                g->holds[i].catchup_index = resp.commit_index;
        pthread_mutex_unlock(&g->mu);
    }
    atomic_fetch_add_explicit(&g->h->st_getfile_bytes, n, memory_order_relaxed);
    spl_counter_add(g->h->m.getfile_bytes, n);
    spl_rpc_reply(job->call, &resp.base, &data);
out:
    spl_iobuf_reset(&data);
    spl__rn_group_put(g);
    free(job);
}

void spl__rn_getfile_handler(spl_rpc_call *call, void *ctx)
{
    struct spl_raftnode_host *h = ctx;
    const Spline__RaftGetFileRequest *req =
        (const Spline__RaftGetFileRequest *)spl_rpc_call_request(call);
    if (!spl_fsm_name_is_valid(req->name)) {
        spl_rpc_reply_error(call, SPL_EINVAL_ARG, "bad snapshot file name");
        return;
    }
    struct spl__rn_group *g = spl__rn_group_get(h, req->group);
    if (!g) {
        spl_rpc_reply_error(call, SPL_ERAFT_NOGROUP, NULL);
        return;
    }
    struct getfile_job *job = calloc(1, sizeof(*job));
    ASSERT(job != NULL);
    job->bg.run = getfile_run;
    job->call = call;
    job->g = g;
    spl__rn_bg_submit(h, &job->bg);
}

/* ---- SnapshotDone ---- */

void spl__rn_snapdone_handler(spl_rpc_call *call, void *ctx)
{
    struct spl_raftnode_host *h = ctx;
    const Spline__RaftSnapshotDoneRequest *req =
        (const Spline__RaftSnapshotDoneRequest *)spl_rpc_call_request(call);
    struct spl__rn_group *g = spl__rn_group_get(h, req->group);
    if (g) {
        struct spl__rn_fail_ev *ev = calloc(1, sizeof(*ev));
        ASSERT(ev != NULL);
        ev->ev.kind = SPL__RN_EV_SNAP_DONE;
        ev->ev.g = g;
        ev->peer = req->installer;
        ev->ok = req->ok;
        ev->snap_index = req->snapshot_index;
        ev->catchup_index = req->caught_up_index;
        spl__rn_post(g->w, &ev->ev);
    }
    Spline__RaftSnapshotDoneResponse resp = SPLINE__RAFT_SNAPSHOT_DONE_RESPONSE__INIT;
    spl_rpc_reply(call, &resp.base, NULL);
}
