/*
 * storage.c - `struct spl_raft_storage` over one raftlog group (raftlog.h).
 *
 * The raftlog keeps a snapshot's files and FSM blob as separate fields; the Raft core and
 * the wire carry them as one opaque `data` buffer, the snapshot descriptor
 * (descriptor.c). The raftlog's entry struct has the core's layout (pinned below), so
 * entries are read straight into the core's array.
 * Threads: the group's worker (the log's owner thread).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "raftnode/internal.h"

SPL_STATIC_ASSERT(sizeof(struct spl_raft_entry) == sizeof(struct spl_raftlog_entry),
                  "raft and raftlog entries share a layout");
SPL_STATIC_ASSERT(offsetof(struct spl_raft_entry, term) == offsetof(struct spl_raftlog_entry, term),
                  "term");
SPL_STATIC_ASSERT(offsetof(struct spl_raft_entry, index) ==
                      offsetof(struct spl_raftlog_entry, index), "index");
SPL_STATIC_ASSERT(offsetof(struct spl_raft_entry, type) == offsetof(struct spl_raftlog_entry, type),
                  "type");
SPL_STATIC_ASSERT(offsetof(struct spl_raft_entry, data) == offsetof(struct spl_raftlog_entry, data),
                  "data");
SPL_STATIC_ASSERT(sizeof(struct spl_raft_conf) == sizeof(struct spl_raftlog_membership),
                  "conf layouts");
SPL_STATIC_ASSERT(sizeof(struct spl_fsm_file) == sizeof(struct spl_raftlog_snapfile),
                  "file layouts");

static struct spl_raftlog *st_log(void *ctx) { return ((struct spl__rn_storage *)ctx)->log; }

static void conf_from_log(struct spl_raft_conf *c, const struct spl_raftlog_membership *m)
{
    memset(c, 0, sizeof(*c));
    c->voter_count = m->voter_count;
    c->learner_count = m->learner_count;
    memcpy(c->voters, m->voters, sizeof(c->voters));
    memcpy(c->learners, m->learners, sizeof(c->learners));
}

static int st_initial_state(void *ctx, struct spl_raft_hard_state *hs,
                            struct spl_raft_snapshot_meta *snap)
{
    struct spl_raftlog *log = st_log(ctx);
    struct spl_raftlog_hardstate lhs;
    struct spl_raftlog_snapmeta m;
    spl_raftlog_hardstate(log, &lhs);
    hs->term = lhs.term;
    hs->vote = lhs.vote;
    hs->commit = lhs.commit;
    int rc = spl_raftlog_snapmeta(log, &m);
    if (rc != 0)
        return rc;
    snap->index = m.index;
    snap->term = m.term;
    snap->epoch = m.epoch;
    conf_from_log(&snap->conf, &m.conf);
    spl_raftlog_snapmeta_free(&m);
    return 0;
}

static int st_first_index(void *ctx, uint64_t *out)
{
    *out = spl_raftlog_first_index(st_log(ctx));
    return 0;
}

static int st_last_index(void *ctx, uint64_t *out)
{
    *out = spl_raftlog_last_index(st_log(ctx));
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *out)
{
    return spl_raftlog_term(st_log(ctx), index, out);
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct spl_raft_entry *out, uint32_t out_cap, uint32_t *count_out)
{
    /* raftlog wants empty iobufs; the core hands out its scratch array */
    uint64_t n = hi - lo < out_cap ? hi - lo : out_cap;
    for (uint64_t i = 0; i < n; i++)
        spl_iobuf_init(&out[i].data);
    return spl_raftlog_entries(st_log(ctx), lo, hi, max_bytes,
                               (struct spl_raftlog_entry *)(void *)out, out_cap, count_out);
}

static int st_snapshot(void *ctx, struct spl_raft_snapshot_meta *out)
{
    struct spl_raftlog_snapmeta m;
    int rc = spl_raftlog_snapmeta(st_log(ctx), &m);
    if (rc != 0)
        return rc;
    out->index = m.index;
    out->term = m.term;
    out->epoch = m.epoch;
    conf_from_log(&out->conf, &m.conf);
    rc = spl__rn_desc_encode(m.file_count, (const struct spl_fsm_file *)(const void *)m.files,
                             m.blob, m.blob_len, &out->data);
    spl_raftlog_snapmeta_free(&m);
    return rc;
}

static const struct spl_raft_storage_ops spl__rn_storage_ops = {
    .initial_state = st_initial_state,
    .first_index = st_first_index,
    .last_index = st_last_index,
    .term = st_term,
    .entries = st_entries,
    .snapshot = st_snapshot,
};

void spl__rn_storage_init(struct spl__rn_storage *st, struct spl_raftlog *log)
{
    st->storage.ops = &spl__rn_storage_ops;
    st->storage.ctx = st;
    st->log = log;
}

int spl__rn_log_fsm_snapshot(struct spl_raftlog *log, struct spl_fsm_snapshot *out)
{
    struct spl_raftlog_snapmeta m;
    spl_fsm_snapshot_init(out);
    int rc = spl_raftlog_snapmeta(log, &m);
    if (rc != 0)
        return rc;
    out->index = m.index;
    out->term = m.term;
    out->epoch = m.epoch;
    conf_from_log(&out->conf, &m.conf);
    for (uint32_t i = 0; i < m.file_count && rc == 0; i++)
        rc = spl_fsm_snapshot_add_file(out, m.files[i].name, m.files[i].size);
    if (rc == 0 && m.blob_len)
        rc = spl_iobuf_append(&out->blob, m.blob, m.blob_len);
    spl_raftlog_snapmeta_free(&m);
    if (rc != 0)
        spl_fsm_snapshot_reset(out);
    return rc;
}
