/*
 * log.c - the log as the core sees it: the caller's durable storage, plus the unstable
 * tail the core appended (or received) that the caller has not yet made durable, plus a
 * received snapshot not yet durable.
 *
 * Invariants (spl__log_check): applied <= applying <= committed <= last index; the
 * unstable entries are contiguous from `offset`; offset <= the storage's last + 1 (a
 * lower offset means the unstable tail replaces part of the durable one); with a pending
 * snapshot, offset == snap.index + 1 and the storage is not read for entries.
 */
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

static int spl__st_call_checked(int rc, const char *what)
{
    ASSERTF(rc == 0 || rc == SPL_ERAFT_COMPACTED || rc == SPL_ERAFT_UNAVAILABLE,
            "raft storage %s failed: %d", what, rc);
    return rc;
}

static uint64_t spl__st_first(const struct spl__log *l)
{
    uint64_t v = 0;
    int rc = l->st->ops->first_index(l->st->ctx, &v);
    ASSERTF(rc == 0, "raft storage first_index failed: %d", rc);
    return v;
}

static uint64_t spl__st_last(const struct spl__log *l)
{
    uint64_t v = 0;
    int rc = l->st->ops->last_index(l->st->ctx, &v);
    ASSERTF(rc == 0, "raft storage last_index failed: %d", rc);
    return v;
}

static void spl__entry_ref(struct spl_raft_entry *dst, const struct spl_raft_entry *src)
{
    dst->term = src->term;
    dst->index = src->index;
    dst->type = src->type;
    spl_iobuf_init(&dst->data);
    int rc = spl_iobuf_append_ref(&dst->data, &src->data, 0, spl_iobuf_len(&src->data));
    ASSERTF(rc == 0, "raft: out of memory referencing an entry");
}

void spl__log_init(struct spl__log *l, const struct spl_raft_storage *st, uint64_t committed,
                   uint64_t applied)
{
    memset(l, 0, sizeof(*l));
    spl_iobuf_init(&l->snap.data);
    l->st = st;
    l->offset = spl__st_last(l) + 1;
    l->committed = committed;
    l->applying = applied;
    l->applied = applied;
    spl__log_check(l);
}

static void spl__log_drop_unstable(struct spl__log *l, uint64_t from_pos)
{
    for (uint64_t i = from_pos; i < l->count; i++)
        spl_iobuf_reset(&l->ents[i].data);
    l->count = from_pos;
}

void spl__log_destroy(struct spl__log *l)
{
    spl__log_drop_unstable(l, 0);
    free(l->ents);
    spl_iobuf_reset(&l->snap.data);
    memset(l, 0, sizeof(*l));
}

uint64_t spl__log_first_index(const struct spl__log *l)
{
    if (l->has_snap)
        return l->snap.index + 1;
    return spl__st_first(l);
}

uint64_t spl__log_last_index(const struct spl__log *l)
{
    if (l->count > 0)
        return l->offset + l->count - 1;
    if (l->has_snap)
        return l->snap.index;
    return spl__st_last(l);
}

uint64_t spl__log_stable_last(const struct spl__log *l)
{
    return l->offset - 1;
}

int spl__log_term(const struct spl__log *l, uint64_t index, uint64_t *term_out)
{
    uint64_t dummy = spl__log_first_index(l) - 1;
    if (index < dummy)
        return SPL_ERAFT_COMPACTED;
    if (index > spl__log_last_index(l))
        return SPL_ERAFT_UNAVAILABLE;
    if (l->count > 0 && index >= l->offset) {
        *term_out = l->ents[index - l->offset].term;
        return 0;
    }
    if (l->has_snap) {
        ASSERT_CMP(index, ==, l->snap.index);
        *term_out = l->snap.term;
        return 0;
    }
    return spl__st_call_checked(l->st->ops->term(l->st->ctx, index, term_out), "term");
}

uint64_t spl__log_term_or0(const struct spl__log *l, uint64_t index)
{
    uint64_t t = 0;
    if (spl__log_term(l, index, &t) != 0)
        return 0;
    return t;
}

uint64_t spl__log_last_term(const struct spl__log *l)
{
    uint64_t t = 0;
    int rc = spl__log_term(l, spl__log_last_index(l), &t);
    ASSERTF(rc == 0, "term of the last entry: %d", rc);
    return t;
}

bool spl__log_match_term(const struct spl__log *l, uint64_t index, uint64_t term)
{
    uint64_t t = 0;
    return spl__log_term(l, index, &t) == 0 && t == term;
}

bool spl__log_up_to_date(const struct spl__log *l, uint64_t index, uint64_t term)
{
    uint64_t last_term = spl__log_last_term(l);
    return term > last_term || (term == last_term && index >= spl__log_last_index(l));
}

uint64_t spl__log_find_conflict(const struct spl__log *l, const struct spl_raft_entry *ents,
                                uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!spl__log_match_term(l, ents[i].index, ents[i].term))
            return ents[i].index;
    return 0;
}

uint64_t spl__log_find_conflict_by_term(const struct spl__log *l, uint64_t index, uint64_t term)
{
    uint64_t last = spl__log_last_index(l);
    if (index > last)
        index = last;
    for (;;) {
        uint64_t t = 0;
        if (spl__log_term(l, index, &t) != 0 || t <= term || index == 0)
            return index;
        index--;
    }
}

static void spl__log_reserve(struct spl__log *l, uint64_t n)
{
    if (n <= l->cap)
        return;
    uint64_t cap = l->cap ? l->cap * 2 : 16;
    while (cap < n)
        cap *= 2;
    l->ents = spl__raft_xrealloc(l->ents, cap, sizeof(*l->ents));
    l->cap = cap;
}

void spl__log_append(struct spl__log *l, const struct spl_raft_entry *ents, uint32_t n)
{
    if (n == 0)
        return;
    uint64_t after = ents[0].index;
    ASSERTF(after > l->committed, "append at %llu would overwrite committed %llu",
            (unsigned long long)after, (unsigned long long)l->committed);
    ASSERT_CMP(after, <=, spl__log_last_index(l) + 1);
    if (after <= l->offset) {
        spl__log_drop_unstable(l, 0); /* replaces part of the durable tail */
        l->offset = after;
    } else if (after < l->offset + l->count) {
        spl__log_drop_unstable(l, after - l->offset);
    }
    ASSERT_CMP(after, ==, l->offset + l->count);
    spl__log_reserve(l, l->count + n);
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_CMP(ents[i].index, ==, after + i);
        spl__entry_ref(&l->ents[l->count++], &ents[i]);
    }
}

/* The durable part of a slice: [lo, hi) from storage, into out; returns the count. */
static int spl__log_slice_storage(const struct spl__log *l, uint64_t lo, uint64_t hi,
                                  uint64_t max_bytes, struct spl_raft_entry *out, uint32_t cap,
                                  uint32_t *n)
{
    *n = 0;
    if (lo >= hi || cap == 0)
        return 0;
    int rc = l->st->ops->entries(l->st->ctx, lo, hi, max_bytes, out, cap, n);
    if (spl__st_call_checked(rc, "entries") != 0)
        return rc;
    ASSERT(*n >= 1 && *n <= cap && *n <= hi - lo);
    for (uint32_t i = 0; i < *n; i++)
        ASSERTF(out[i].index == lo + i, "storage returned index %llu for %llu",
                (unsigned long long)out[i].index, (unsigned long long)(lo + i));
    return 0;
}

int spl__log_slice(const struct spl__log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct spl_raft_entry *out, uint32_t cap, uint32_t *count_out)
{
    ASSERT(lo <= hi);
    ASSERT_CMP(hi, <=, spl__log_last_index(l) + 1);
    *count_out = 0;
    if (lo < spl__log_first_index(l))
        return SPL_ERAFT_COMPACTED;
    uint64_t st_hi = hi < l->offset ? hi : l->offset;
    uint32_t n = 0;
    int rc = spl__log_slice_storage(l, lo, st_hi, max_bytes, out, cap, &n);
    if (rc != 0)
        return rc;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += spl_iobuf_len(&out[i].data);
    uint64_t next = lo + n;
    if (next < st_hi) { /* storage stopped early (size): keep it contiguous */
        *count_out = n;
        return 0;
    }
    for (; next < hi && n < cap; next++) {
        const struct spl_raft_entry *e = &l->ents[next - l->offset];
        uint64_t size = spl_iobuf_len(&e->data);
        if (n > 0 && (bytes + size > max_bytes || bytes + size < bytes))
            break;
        spl__entry_ref(&out[n++], e);
        bytes += size;
    }
    *count_out = n;
    return 0;
}

void spl__log_commit_to(struct spl__log *l, uint64_t index)
{
    if (index <= l->committed)
        return;
    ASSERTF(index <= spl__log_last_index(l), "commit %llu beyond last %llu",
            (unsigned long long)index, (unsigned long long)spl__log_last_index(l));
    l->committed = index;
}

void spl__log_restore(struct spl__log *l, const struct spl_raft_snapshot_meta *snap)
{
    ASSERT(snap->index > l->committed);
    spl__log_drop_unstable(l, 0);
    spl_iobuf_reset(&l->snap.data);
    l->snap.index = snap->index;
    l->snap.term = snap->term;
    l->snap.epoch = snap->epoch;
    l->snap.conf = snap->conf;
    int rc = spl_iobuf_append_ref(&l->snap.data, &snap->data, 0, spl_iobuf_len(&snap->data));
    ASSERTF(rc == 0, "raft: out of memory referencing a snapshot");
    l->has_snap = true;
    l->offset = snap->index + 1;
    l->committed = snap->index;
}

void spl__log_stable_to(struct spl__log *l, uint64_t index, uint64_t term)
{
    if (l->count == 0 || index < l->offset || index >= l->offset + l->count)
        return;
    if (l->ents[index - l->offset].term != term)
        return; /* replaced since the ready: the new entries are still to persist */
    uint64_t n = index - l->offset + 1;
    for (uint64_t i = 0; i < n; i++)
        spl_iobuf_reset(&l->ents[i].data);
    memmove(l->ents, l->ents + n, (l->count - n) * sizeof(*l->ents));
    l->count -= n;
    l->offset = index + 1;
}

void spl__log_stable_prefix(struct spl__log *l, const struct spl_raft_entry *ents, uint32_t n)
{
    /* Only when the unstable tail still starts where the persisted batch started: if a
     * later append truncated below it, the entries before the batch are not durable. */
    if (n == 0 || l->count == 0 || l->offset != ents[0].index)
        return;
    uint64_t k = 0;
    while (k < n && k < l->count && l->ents[k].term == ents[k].term)
        k++;
    if (k > 0)
        spl__log_stable_to(l, ents[k - 1].index, ents[k - 1].term);
}

void spl__log_copy_unstable(const struct spl__log *l, struct spl_raft_entry *out)
{
    for (uint64_t i = 0; i < l->count; i++)
        spl__entry_ref(&out[i], &l->ents[i]);
}

void spl__log_stable_snap_to(struct spl__log *l, uint64_t index)
{
    if (!l->has_snap || l->snap.index != index)
        return;
    spl_iobuf_reset(&l->snap.data);
    l->has_snap = false;
}

void spl__log_check(const struct spl__log *l)
{
    uint64_t last = spl__log_last_index(l);
    ASSERT_CMP(l->applied, <=, l->applying);
    ASSERT_CMP(l->applying, <=, l->committed);
    ASSERTF(l->committed <= last, "committed %llu > last %llu",
            (unsigned long long)l->committed, (unsigned long long)last);
    ASSERT_CMP(l->count, <=, l->cap);
    ASSERT(l->offset >= 1);
    if (l->count > 0) {
        ASSERT_CMP(l->ents[0].index, ==, l->offset);
        ASSERT_CMP(l->ents[l->count - 1].index, ==, last);
    }
    if (l->has_snap)
        ASSERT_CMP(l->offset, ==, l->snap.index + 1);
    else
        ASSERT_CMP(l->offset, <=, spl__st_last(l) + 1);
}
