/*
 * memstorage.c - the in-memory storage of memstorage.h.
 *
 * Layout: a compaction point (base_index, base_term), the entries after it in one array
 * (entries[i].index == base_index + 1 + i), the latest snapshot (snap.index >=
 * base_index) and the hard state. Entries hold references to the payloads they were
 * given, so "persisting" a ready copies no payload byte.
 */
#include "raft/memstorage.h"

#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

static uint64_t spl__ms_last(const struct spl_raft_memstorage *ms)
{
    return ms->base_index + ms->entry_count;
}

uint64_t spl_raft_memstorage_first_index(const struct spl_raft_memstorage *ms)
{
    return ms->base_index + 1;
}

uint64_t spl_raft_memstorage_last_index(const struct spl_raft_memstorage *ms)
{
    return spl__ms_last(ms);
}

static int spl__ms_initial_state(void *ctx, struct spl_raft_hard_state *hs,
                                 struct spl_raft_snapshot_meta *snap)
{
    const struct spl_raft_memstorage *ms = ctx;
    *hs = ms->hs;
    snap->index = ms->snap.index;
    snap->term = ms->snap.term;
    snap->epoch = ms->snap.epoch;
    snap->conf = ms->snap.conf;
    return 0;
}

static int spl__ms_first_index(void *ctx, uint64_t *out)
{
    *out = spl_raft_memstorage_first_index(ctx);
    return 0;
}

static int spl__ms_last_index(void *ctx, uint64_t *out)
{
    *out = spl__ms_last(ctx);
    return 0;
}

static int spl__ms_term(void *ctx, uint64_t index, uint64_t *term_out)
{
    const struct spl_raft_memstorage *ms = ctx;
    if (index < ms->base_index)
        return SPL_ERAFT_COMPACTED;
    if (index > spl__ms_last(ms))
        return SPL_ERAFT_UNAVAILABLE;
    *term_out = index == ms->base_index ? ms->base_term
                                        : ms->entries[index - ms->base_index - 1].term;
    return 0;
}

static int spl__ms_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                           struct spl_raft_entry *out, uint32_t out_cap, uint32_t *count_out)
{
    const struct spl_raft_memstorage *ms = ctx;
    *count_out = 0;
    if (lo <= ms->base_index)
        return SPL_ERAFT_COMPACTED;
    if (hi > spl__ms_last(ms) + 1 || lo >= hi)
        return SPL_ERAFT_UNAVAILABLE;
    uint64_t bytes = 0;
    uint32_t n = 0;
    for (uint64_t i = lo; i < hi && n < out_cap; i++) {
        const struct spl_raft_entry *e = &ms->entries[i - ms->base_index - 1];
        uint64_t size = spl_iobuf_len(&e->data);
        if (n > 0 && bytes + size > max_bytes)
            break;
        out[n] = (struct spl_raft_entry){.term = e->term, .index = e->index, .type = e->type};
        spl_iobuf_init(&out[n].data);
        if (spl_iobuf_append_ref(&out[n].data, &e->data, 0, size) != 0) {
            for (uint32_t j = 0; j <= n; j++)
                spl_iobuf_reset(&out[j].data);
            return -ENOMEM;
        }
        bytes += size;
        n++;
    }
    *count_out = n;
    return 0;
}

static int spl__ms_snapshot(void *ctx, struct spl_raft_snapshot_meta *out)
{
    const struct spl_raft_memstorage *ms = ctx;
    out->index = ms->snap.index;
    out->term = ms->snap.term;
    out->epoch = ms->snap.epoch;
    out->conf = ms->snap.conf;
    spl_iobuf_init(&out->data);
    return spl_iobuf_append_ref(&out->data, &ms->snap.data, 0, spl_iobuf_len(&ms->snap.data));
}

static const struct spl_raft_storage_ops spl__ms_ops = {
    .initial_state = spl__ms_initial_state,
    .first_index = spl__ms_first_index,
    .last_index = spl__ms_last_index,
    .term = spl__ms_term,
    .entries = spl__ms_entries,
    .snapshot = spl__ms_snapshot,
};

void spl_raft_memstorage_init(struct spl_raft_memstorage *ms)
{
    memset(ms, 0, sizeof(*ms));
    spl_iobuf_init(&ms->snap.data);
    ms->storage.ops = &spl__ms_ops;
    ms->storage.ctx = ms;
}

/* Drop entries from array position pos on. */
static void spl__ms_truncate(struct spl_raft_memstorage *ms, uint64_t pos)
{
    for (uint64_t i = pos; i < ms->entry_count; i++)
        spl_iobuf_reset(&ms->entries[i].data);
    if (pos < ms->entry_count)
        ms->entry_count = pos;
}

void spl_raft_memstorage_destroy(struct spl_raft_memstorage *ms)
{
    spl__ms_truncate(ms, 0);
    free(ms->entries);
    spl_iobuf_reset(&ms->snap.data);
    memset(ms, 0, sizeof(*ms));
}

int spl_raft_memstorage_bootstrap(struct spl_raft_memstorage *ms,
                                  const struct spl_raft_conf *conf)
{
    ASSERT(ms->entry_count == 0 && ms->snap.index == 0);
    if (!spl_raft_conf_is_valid(conf) || conf->voter_count == 0)
        return SPL_EINVAL_ARG;
    ms->snap.conf = *conf;
    return 0;
}

void spl_raft_memstorage_set_hard_state(struct spl_raft_memstorage *ms,
                                        const struct spl_raft_hard_state *hs)
{
    ms->hs = *hs;
}

int spl_raft_memstorage_append(struct spl_raft_memstorage *ms,
                               const struct spl_raft_entry *entries, uint32_t count)
{
    if (count == 0)
        return 0;
    uint64_t first = entries[0].index;
    if (first <= ms->base_index || first > spl__ms_last(ms) + 1)
        return SPL_EINVAL_ARG;
    uint64_t pos = first - ms->base_index - 1;
    if (pos + count > ms->entry_cap) {
        uint64_t cap = ms->entry_cap ? ms->entry_cap : 64;
        while (cap < pos + count)
            cap *= 2;
        struct spl_raft_entry *e = realloc(ms->entries, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        ms->entries = e;
        ms->entry_cap = cap;
    }
    spl__ms_truncate(ms, pos);
    for (uint32_t i = 0; i < count; i++) {
        struct spl_raft_entry *e = &ms->entries[pos + i];
        ASSERT_CMP(entries[i].index, ==, first + i);
        *e = (struct spl_raft_entry){.term = entries[i].term, .index = entries[i].index,
                                     .type = entries[i].type};
        spl_iobuf_init(&e->data);
        int rc = spl_iobuf_append_ref(&e->data, &entries[i].data, 0,
                                      spl_iobuf_len(&entries[i].data));
        ASSERTF(rc == 0, "memstorage: out of memory");
        ms->entry_count = pos + i + 1;
    }
    return 0;
}

static int spl__ms_set_snap(struct spl_raft_memstorage *ms, uint64_t index, uint64_t term,
                            uint64_t epoch, const struct spl_raft_conf *conf,
                            const struct spl_iobuf *data)
{
    struct spl_iobuf copy;
    spl_iobuf_init(&copy);
    int rc = spl_iobuf_append_ref(&copy, data, 0, spl_iobuf_len(data));
    if (rc != 0)
        return rc;
    spl_iobuf_reset(&ms->snap.data);
    ms->snap.index = index;
    ms->snap.term = term;
    ms->snap.epoch = epoch;
    ms->snap.conf = *conf;
    spl_iobuf_move(&ms->snap.data, &copy);
    return 0;
}

int spl_raft_memstorage_apply_snapshot(struct spl_raft_memstorage *ms,
                                       const struct spl_raft_snapshot_meta *snap)
{
    if (snap->index <= ms->snap.index && ms->snap.index != 0)
        return SPL_ERAFT_STALE;
    int rc = spl__ms_set_snap(ms, snap->index, snap->term, snap->epoch, &snap->conf,
                              &snap->data);
    if (rc != 0)
        return rc;
    spl__ms_truncate(ms, 0);
    ms->base_index = snap->index;
    ms->base_term = snap->term;
    if (ms->hs.commit < snap->index)
        ms->hs.commit = snap->index;
    return 0;
}

int spl_raft_memstorage_create_snapshot(struct spl_raft_memstorage *ms, uint64_t index,
                                        const struct spl_raft_conf *conf, uint64_t epoch,
                                        const struct spl_iobuf *data)
{
    uint64_t term = 0;
    if (index <= ms->snap.index)
        return SPL_ERAFT_STALE;
    int rc = spl__ms_term(ms, index, &term);
    if (rc != 0)
        return rc;
    return spl__ms_set_snap(ms, index, term, epoch, conf, data);
}

int spl_raft_memstorage_compact(struct spl_raft_memstorage *ms, uint64_t index)
{
    if (index <= ms->base_index)
        return SPL_ERAFT_COMPACTED;
    if (index > ms->snap.index || index > spl__ms_last(ms))
        return SPL_EINVAL_ARG;
    uint64_t n = index - ms->base_index;
    ms->base_term = ms->entries[n - 1].term;
    for (uint64_t i = 0; i < n; i++)
        spl_iobuf_reset(&ms->entries[i].data);
    memmove(ms->entries, ms->entries + n, (ms->entry_count - n) * sizeof(*ms->entries));
    ms->entry_count -= n;
    ms->base_index = index;
    return 0;
}
