/*
 * raft_storage.c - the Raft core's storage methods over a raftlog; see raft_storage.h.
 * Entries cross without copies: `struct spl_raft_entry` and `struct spl_raftlog_entry`
 * have the same layout (pinned below), so the core's arrays are handed to the log as is.
 */
#include "raftlog/raft_storage.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

#define SAME_FIELD(f)                                                                    \
    (offsetof(struct spl_raft_entry, f) == offsetof(struct spl_raftlog_entry, f) &&        \
     sizeof(((struct spl_raft_entry *)0)->f) == sizeof(((struct spl_raftlog_entry *)0)->f))
SPL_STATIC_ASSERT(sizeof(struct spl_raft_entry) == sizeof(struct spl_raftlog_entry),
                  "raft and raftlog entries have one layout");
SPL_STATIC_ASSERT(SAME_FIELD(term) && SAME_FIELD(index) && SAME_FIELD(type) && SAME_FIELD(data),
                  "raft and raftlog entries have one layout");
SPL_STATIC_ASSERT(sizeof(struct spl_raft_conf) == sizeof(struct spl_raftlog_membership),
                  "one configuration shape");

static void conf_to_raft(struct spl_raft_conf *out, const struct spl_raftlog_membership *in)
{
    memset(out, 0, sizeof(*out));
    out->voter_count = in->voter_count;
    out->learner_count = in->learner_count;
    memcpy(out->voters, in->voters, sizeof(out->voters));
    memcpy(out->learners, in->learners, sizeof(out->learners));
}

static void conf_from_raft(struct spl_raftlog_membership *out, const struct spl_raft_conf *in)
{
    memset(out, 0, sizeof(*out));
    out->voter_count = in->voter_count;
    out->learner_count = in->learner_count;
    memcpy(out->voters, in->voters, sizeof(out->voters));
    memcpy(out->learners, in->learners, sizeof(out->learners));
}

static int rs_initial_state(void *ctx, struct spl_raft_hard_state *hs,
                            struct spl_raft_snapshot_meta *snap)
{
    struct spl_raftlog_storage *s = ctx;
    struct spl_raftlog_hardstate h;
    struct spl_raftlog_snapmeta m;
    spl_raftlog_hardstate(s->log, &h);
    int rc = spl_raftlog_snapmeta(s->log, &m);
    if (rc != 0)
        return rc;
    *hs = (struct spl_raft_hard_state){.term = h.term, .vote = h.vote, .commit = h.commit};
    snap->index = m.index;
    snap->term = m.term;
    snap->epoch = m.epoch;
    conf_to_raft(&snap->conf, &m.conf);
    spl_raftlog_snapmeta_free(&m);
    return 0;
}

static int rs_first_index(void *ctx, uint64_t *index_out)
{
    struct spl_raftlog_storage *s = ctx;
    *index_out = spl_raftlog_first_index(s->log);
    return 0;
}

static int rs_last_index(void *ctx, uint64_t *index_out)
{
    struct spl_raftlog_storage *s = ctx;
    *index_out = spl_raftlog_last_index(s->log);
    return 0;
}

static int rs_term(void *ctx, uint64_t index, uint64_t *term_out)
{
    struct spl_raftlog_storage *s = ctx;
    return spl_raftlog_term(s->log, index, term_out);
}

static int rs_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct spl_raft_entry *out, uint32_t out_cap, uint32_t *count_out)
{
    struct spl_raftlog_storage *s = ctx;
    for (uint32_t i = 0; i < out_cap; i++)
        spl_iobuf_init(&out[i].data);
    return spl_raftlog_entries(s->log, lo, hi, max_bytes, (struct spl_raftlog_entry *)out,
                               out_cap, count_out);
}

static int rs_snapshot(void *ctx, struct spl_raft_snapshot_meta *out)
{
    struct spl_raftlog_storage *s = ctx;
    struct spl_raftlog_snapmeta m;
    int rc = spl_raftlog_snapmeta(s->log, &m);
    if (rc != 0)
        return rc;
    out->index = m.index;
    out->term = m.term;
    out->epoch = m.epoch;
    conf_to_raft(&out->conf, &m.conf);
    spl_iobuf_init(&out->data);
    if (m.blob_len)
        rc = spl_iobuf_append(&out->data, m.blob, m.blob_len);
    spl_raftlog_snapmeta_free(&m);
    return rc;
}

static const struct spl_raft_storage_ops rs_ops = {
    .initial_state = rs_initial_state,
    .first_index = rs_first_index,
    .last_index = rs_last_index,
    .term = rs_term,
    .entries = rs_entries,
    .snapshot = rs_snapshot,
};

void spl_raftlog_storage_init(struct spl_raftlog_storage *s, struct spl_raftlog *log)
{
    s->storage.ops = &rs_ops;
    s->storage.ctx = s;
    s->log = log;
}

int spl_raftlog_storage_bootstrap(struct spl_raftlog_storage *s, const struct spl_raft_conf *conf)
{
    if (!spl_raft_conf_is_valid(conf) || conf->voter_count == 0)
        return SPL_EINVAL_ARG;
    if (spl_raftlog_last_index(s->log) != 0 || spl_raftlog_snapshot_index(s->log) != 0)
        return SPL_EINVAL_ARG;
    struct spl_raftlog_snapmeta m = {.index = 0, .term = 0, .epoch = 0};
    conf_from_raft(&m.conf, conf);
    return spl_raftlog_save_snapmeta(s->log, &m);
}

static int install(struct spl_raftlog_storage *s, const struct spl_raft_snapshot_meta *snap)
{
    uint64_t len = spl_iobuf_len(&snap->data);
    if (len > SPL_RAFTLOG_SNAP_BLOB_MAX)
        return SPL_ETOOBIG;
    void *blob = len ? malloc((size_t)len) : NULL; /* rare: a snapshot install */
    if (len && !blob)
        return -ENOMEM;
    spl_iobuf_copy_out(&snap->data, 0, blob, (size_t)len);
    struct spl_raftlog_snapmeta m = {.index = snap->index, .term = snap->term,
                                     .epoch = snap->epoch, .blob_len = (uint32_t)len,
                                     .blob = blob};
    conf_from_raft(&m.conf, &snap->conf);
    int rc = spl_raftlog_install_snapshot(s->log, &m);
    free(blob);
    return rc;
}

int spl_raftlog_storage_persist(struct spl_raftlog_storage *s, const struct spl_raft_ready *rd,
                                struct spl_raftlog_req *req, spl_raftlog_cb cb)
{
    int rc;
    if (rd->snapshot && (rc = install(s, rd->snapshot)) != 0)
        return rc;
    struct spl_raftlog_hardstate hs = {rd->hard_state.term, rd->hard_state.vote,
                                       rd->hard_state.commit};
    if (!rd->must_sync && rd->entry_count == 0 && !rd->snapshot) {
        if (rd->has_hard_state)
            spl_raftlog_set_commit(s->log, hs.commit);
        return 1;
    }
    return spl_raftlog_append(s->log, (const struct spl_raftlog_entry *)rd->entries,
                              rd->entry_count, rd->has_hard_state ? &hs : NULL, req, cb);
}
