/*
 * install.c - installing a lightweight snapshot on a follower (RAFT-INVARIANTS 17-19).
 *
 * When a ready carries a snapshot S, the worker parks the ready and queues a download on
 * an install thread: every file of the snapshot is pulled with GetFile from the replica
 * that sent it (then the leader, then other members) into <group>/staging.<gen>, with
 * per-piece CRC checks, resume at the last good offset and the host's throttle
 * (filecopy.c). D is the source's commit index after the last byte read. Back on the
 * worker, once no apply is in flight and no save_snapshot runs:
 *   1. rename staging.<gen> to fsm.<gen>, fsync the group directory;
 *   2. write STATE {live fsm.<gen>, install S/term/epoch/conf/descriptor, D}: the switch
 *      point: a crash before it leaves the old state live (the leftovers are deleted at
 *      the next open), a crash after it is finished at the next open (step 3 redone);
 *   3. replace the raft log by S (spl_raftlog_install_snapshot);
 *   4. FSM load(fsm.<gen>, S); delete the old directory;
 *   5. resume the ready (persist its entries and hard state, send, advance) and tell
 *      the source with SnapshotDone. The group reports "not caught up" (no reads, no
 *      snapshots taken or served) until applied >= D, across restarts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raft.pb-c.h"
#include "raftnode/internal.h"

/* ---- GetFile over RPC ---- */

static int rpc_get_file(void *ctx, uint64_t source, uint64_t group, uint64_t snap_index,
                        uint64_t snap_term, const char *name, uint64_t offset, uint32_t length,
                        struct spl__rn_getfile_resp *out, struct spl_iobuf *data)
{
    struct spl_raftnode_host *h = ctx;
    spl_rpc_channel *ch = spl__rn_peer_channel(h, source);
    if (!ch)
        return SPL_ERAFTNODE_NOPEER;
    Spline__RaftGetFileRequest req = SPLINE__RAFT_GET_FILE_REQUEST__INIT;
    req.group = group;
    req.snapshot_index = snap_index;
    req.snapshot_term = snap_term;
    req.name = (char *)name;
    req.offset = offset;
    req.length = length;
    req.installer = h->opts.node_id;
    struct spl_rpc_call_opts opts = {.timeout_ms = 10000};
    ProtobufCMessage *resp = NULL;
    int rc = spl_rpc_call_sync(ch, &spl__rn_raft_service, 1, &req.base, NULL, &opts, &resp, data,
                               NULL);
    if (rc != 0)
        return rc;
    const Spline__RaftGetFileResponse *r = (const Spline__RaftGetFileResponse *)resp;
    out->crc32c = r->crc32c;
    out->file_size = r->file_size;
    out->eof = r->eof;
    out->missing = r->missing;
    out->commit_index = r->commit_index;
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static const struct spl__rn_fetch_ops spl__rn_rpc_fetch = {.get_file = rpc_get_file};

/* ---- starting ---- */

static void add_source(struct spl__rn_copy *c, uint64_t id, uint64_t self)
{
    if (id == 0 || id == self || c->source_count >= SPL_RAFT_PEERS_MAX)
        return;
    for (uint32_t i = 0; i < c->source_count; i++)
        if (c->sources[i] == id)
            return;
    c->sources[c->source_count++] = id;
}

static void install_enqueue(struct spl_raftnode_host *h, struct spl__rn_install *inst)
{
    inst->next = NULL;
    pthread_mutex_lock(&h->inst_mu);
    if (h->inst_tail)
        h->inst_tail->next = inst;
    else
        h->inst_head = inst;
    h->inst_tail = inst;
    pthread_cond_signal(&h->inst_cond);
    pthread_mutex_unlock(&h->inst_mu);
}

void spl__rn_install_start(struct spl__rn_group *g, const struct spl_raft_snapshot_meta *s)
{
    struct spl_raftnode_host *h = g->h;
    ASSERT(g->install == NULL);
    struct spl__rn_install *inst = calloc(1, sizeof(*inst));
    ASSERT(inst != NULL);
    inst->g = g;
    inst->meta.index = s->index;
    inst->meta.term = s->term;
    inst->meta.epoch = s->epoch;
    inst->meta.conf = s->conf;
    spl_iobuf_init(&inst->meta.data);
    int rc = spl_iobuf_append_ref(&inst->meta.data, &s->data, 0, spl_iobuf_len(&s->data));
    ASSERT(rc == 0);
    rc = spl__rn_desc_decode(&s->data, &inst->desc);
    ASSERTF(rc == 0, "group %llu: snapshot %llu has a bad descriptor: %s",
            (unsigned long long)g->id, (unsigned long long)s->index, spl_strerror(rc));
    inst->gen = g->live_gen + 1;
    snprintf(inst->staging, sizeof(inst->staging), "%s/staging.%llu", g->dir,
             (unsigned long long)inst->gen);
    spl__rn_rmtree(inst->staging);
    struct spl__rn_copy *c = &inst->copy;
    c->staging_dir = inst->staging;
    c->group = g->id;
    c->snap_index = s->index;
    c->snap_term = s->term;
    c->file_count = inst->desc.file_count;
    c->files = inst->desc.files;
    add_source(c, g->snap_from, h->opts.node_id);
    add_source(c, g->leader, h->opts.node_id);
    for (uint32_t i = 0; i < s->conf.voter_count; i++)
        add_source(c, s->conf.voters[i], h->opts.node_id);
    ASSERT(c->source_count > 0);
    c->piece_bytes = h->opts.install_piece_bytes;
    c->retry_max = 0;
    c->retry_sleep_ms = 20;
    c->fetch = &spl__rn_rpc_fetch;
    c->fetch_ctx = h;
    c->throttle = &h->throttle;
    c->stop = &g->install_stop;
    inst->source = c->sources[0];
    inst->start_ns = spl_mono_ns();
    g->install = inst;
    g->install_ready = false;
    LOG_INFO(SPL__RN_TAG,
             "group %llu: installing snapshot %llu (term %llu, %u files) from node %llu",
             (unsigned long long)g->id, (unsigned long long)s->index, (unsigned long long)s->term,
             c->file_count, (unsigned long long)inst->source);
    pthread_mutex_lock(&g->mu);
    g->pub.installing = true;
    pthread_mutex_unlock(&g->mu);
    install_enqueue(h, inst);
}

void *spl__rn_install_main(void *arg)
{
    struct spl_raftnode_host *h = arg;
    pthread_mutex_lock(&h->inst_mu);
    for (;;) {
        while (!h->inst_head && !h->inst_stop)
            pthread_cond_wait(&h->inst_cond, &h->inst_mu);
        if (!h->inst_head)
            break;
        struct spl__rn_install *inst = h->inst_head;
        h->inst_head = inst->next;
        if (!h->inst_head)
            h->inst_tail = NULL;
        pthread_mutex_unlock(&h->inst_mu);
        inst->status = spl__rn_copy_run(&inst->copy);
        spl__rn_post_embedded(inst->g->w, &inst->g->ev_installed);
        pthread_mutex_lock(&h->inst_mu);
    }
    pthread_mutex_unlock(&h->inst_mu);
    return NULL;
}

/* ---- finishing ---- */

static void install_free(struct spl__rn_install *inst)
{
    spl_iobuf_reset(&inst->meta.data);
    spl__rn_desc_free(&inst->desc);
    free(inst);
}

static void fsm_snapshot_of(const struct spl__rn_install *inst, struct spl_fsm_snapshot *fs)
{
    spl_fsm_snapshot_init(fs);
    fs->index = inst->meta.index;
    fs->term = inst->meta.term;
    fs->epoch = inst->meta.epoch;
    fs->conf = inst->meta.conf;
    for (uint32_t i = 0; i < inst->desc.file_count; i++)
        ASSERT(spl_fsm_snapshot_add_file(fs, inst->desc.files[i].name,
                                         inst->desc.files[i].size) == 0);
    if (inst->desc.blob_len)
        ASSERT(spl_iobuf_append(&fs->blob, inst->desc.blob, inst->desc.blob_len) == 0);
}

/* Steps 1-4 of the top comment. I/O failures here crash the process: the restart either
 * sees the old state or finishes the switch. */
static void install_switch(struct spl__rn_group *g, struct spl__rn_install *inst)
{
    char live[SPL__RN_PATH_MAX + 32], old[SPL__RN_PATH_MAX + 32];
    snprintf(live, sizeof(live), "%s/fsm.%llu", g->dir, (unsigned long long)inst->gen);
    snprintf(old, sizeof(old), "%s/fsm.%llu", g->dir, (unsigned long long)g->live_gen);
    spl__rn_rmtree(live);
    int rc = rename(inst->staging, live) == 0 ? spl__rn_fsync_dir(g->dir) : -errno;
    ASSERTF(rc == 0, "group %llu: staging rename: %s", (unsigned long long)g->id, spl_strerror(rc));

    struct spl__rn_state *st = &g->state;
    st->live_gen = inst->gen;
    st->install_index = inst->meta.index;
    st->install_term = inst->meta.term;
    st->install_epoch = inst->meta.epoch;
    st->install_conf = inst->meta.conf;
    st->catchup_index = inst->copy.catchup_index;
    spl_iobuf_reset(&st->install_desc);
    ASSERT(spl_iobuf_append_ref(&st->install_desc, &inst->meta.data, 0,
                                spl_iobuf_len(&inst->meta.data)) == 0);
    rc = spl__rn_state_save(g->dir, st);
    ASSERTF(rc == 0, "group %llu: STATE: %s", (unsigned long long)g->id, spl_strerror(rc));

    struct spl_raftlog_snapmeta m = {0};
    m.index = inst->meta.index;
    m.term = inst->meta.term;
    m.epoch = inst->meta.epoch;
    memcpy(&m.conf, &inst->meta.conf, sizeof(m.conf));
    m.file_count = inst->desc.file_count;
    m.files = (const struct spl_raftlog_snapfile *)(const void *)inst->desc.files;
    m.blob_len = inst->desc.blob_len;
    m.blob = inst->desc.blob;
    rc = spl_raftlog_install_snapshot(g->log, &m);
    ASSERTF(rc == 0, "group %llu: raft log install: %s", (unsigned long long)g->id,
            spl_strerror(rc));

    struct spl_fsm_snapshot fs;
    fsm_snapshot_of(inst, &fs);
    rc = g->fsm.ops->load(g->fsm.ctx, live, &fs);
    spl_fsm_snapshot_reset(&fs);
    ASSERTF(rc == 0, "group %llu: FSM load of snapshot %llu: %s", (unsigned long long)g->id,
            (unsigned long long)inst->meta.index, spl_strerror(rc));
    spl__rn_rmtree(old);
}

int spl__rn_install_finish(struct spl__rn_group *g)
{
    struct spl__rn_install *inst = g->install;
    ASSERT(inst != NULL && g->install_ready);
    if (atomic_load(&g->dying) || inst->status != 0) {
        if (!atomic_load(&g->dying)) { /* local I/O trouble: try again */
            LOG_ERROR(SPL__RN_TAG, "group %llu: snapshot %llu download failed: %s; retrying",
                      (unsigned long long)g->id, (unsigned long long)inst->meta.index,
                      spl_strerror(inst->status));
            g->install_ready = false;
            spl_sleep_ns(100 * SPL_NS_PER_MS);
            install_enqueue(g->h, inst);
            return inst->status;
        }
        spl__rn_rmtree(inst->staging);
        g->install = NULL;
        install_free(inst);
        return SPL_ESHUTDOWN;
    }
    if (g->snapjob || !spl__rn_apply_idle(g))
        return SPL_ERAFTNODE_BUSY; /* resumed by SNAP_SAVED / APPLIED */
    install_switch(g, inst);

    uint64_t index = inst->meta.index;
    g->live_gen = inst->gen;
    pthread_mutex_lock(&g->mu);
    g->live_gen_pub = inst->gen;
    g->catchup_index = inst->copy.catchup_index;
    g->installs++;
    g->install_bytes += inst->copy.bytes;
    g->install_ns += spl_mono_ns() - inst->start_ns;
    g->pub.installs = g->installs;
    g->pub.install_bytes = g->install_bytes;
    g->pub.install_ns = g->install_ns;
    g->pub.installing = false;
    g->pub.snapshot_index = index;
    pthread_mutex_unlock(&g->mu);
    spl__rn_apply_reset(g, index);
    g->snap_index = index;
    g->conf = inst->meta.conf;
    g->conf_epoch = inst->meta.epoch;
    pthread_mutex_lock(&g->mu);
    g->pub.epoch = g->conf_epoch;
    g->pub.conf = g->conf;
    pthread_mutex_unlock(&g->mu);
    if (g->fsm.ops->on_configuration_committed)
        g->fsm.ops->on_configuration_committed(g->fsm.ctx, &g->conf, g->conf_epoch, index);
    spl_counter_inc(g->h->m.installs);
    spl_counter_add(g->h->m.install_bytes, inst->copy.bytes);
    LOG_INFO(SPL__RN_TAG,
             "group %llu: installed snapshot %llu: %llu bytes in %.3f s, %llu retries, "
             "caught up at %llu",
             (unsigned long long)g->id, (unsigned long long)index,
             (unsigned long long)inst->copy.bytes, (double)(spl_mono_ns() - inst->start_ns) / 1e9,
             (unsigned long long)inst->copy.retries, (unsigned long long)inst->copy.catchup_index);
    g->install_source = inst->source;
    g->install_done_index = index;
    g->install = NULL;
    g->install_ready = false;
    install_free(inst);
    spl__rn_ready_resume(g);
    return 0;
}
