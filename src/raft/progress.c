/*
 * progress.c - what the leader knows about one follower's log, and how fast it may send.
 *
 * Three states (etcd's model): PROBE sends one append at a time until an answer shows
 * where the logs match; REPLICATE streams appends optimistically (next moves ahead of
 * match), bounded by an in-flight window counted in messages and bytes; SNAPSHOT sends
 * nothing until the snapshot is reported done or failed. Invariants: match < next;
 * replicate state never has probe_sent; the window holds increasing indexes > match.
 */
#include <string.h>

#include "raft/raft_int.h"

void spl__inflights_init(struct spl__inflights *f, uint32_t cap, uint64_t bytes_max)
{
    ASSERT(cap >= 1 && cap <= SPL_RAFT_INFLIGHT_MSGS_MAX);
    memset(f, 0, sizeof(*f));
    f->cap = cap;
    f->bytes_max = bytes_max;
}

void spl__inflights_reset(struct spl__inflights *f)
{
    f->start = 0;
    f->count = 0;
    f->bytes = 0;
}

bool spl__inflights_full(const struct spl__inflights *f)
{
    return f->count == f->cap || (f->bytes_max != 0 && f->bytes >= f->bytes_max);
}

void spl__inflights_add(struct spl__inflights *f, uint64_t index, uint64_t bytes)
{
    ASSERTF(!spl__inflights_full(f), "inflights full: %u/%u", f->count, f->cap);
    if (f->count > 0) {
        uint32_t last = (f->start + f->count - 1) % f->cap;
        ASSERT_CMP(index, >, f->index[last]);
    }
    uint32_t pos = (f->start + f->count) % f->cap;
    f->index[pos] = index;
    f->size[pos] = bytes;
    f->count++;
    f->bytes += bytes;
}

void spl__inflights_free_le(struct spl__inflights *f, uint64_t index)
{
    while (f->count > 0 && f->index[f->start] <= index) {
        f->bytes -= f->size[f->start];
        f->start = (f->start + 1) % f->cap;
        f->count--;
    }
    if (f->count == 0)
        f->start = 0;
    ASSERT(f->count > 0 || f->bytes == 0);
}

void spl__progress_init(struct spl__progress *pr, uint64_t id, uint64_t next, bool learner,
                        uint32_t inflight_cap, uint64_t inflight_bytes_max)
{
    ASSERT(id != SPL_RAFT_NONE);
    ASSERT(next >= 1);
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->next = next;
    pr->learner = learner;
    pr->state = SPL_RAFT_PROBE;
    pr->recent_active = true; /* a new member gets one election timeout of grace */
    spl__inflights_init(&pr->inflights, inflight_cap, inflight_bytes_max);
}

static void spl__progress_reset_state(struct spl__progress *pr, uint8_t state)
{
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->state = state;
    spl__inflights_reset(&pr->inflights);
}

void spl__progress_become_probe(struct spl__progress *pr)
{
    uint64_t next = pr->match + 1;
    if (pr->state == SPL_RAFT_SNAPSHOT && pr->pending_snapshot + 1 > next)
        next = pr->pending_snapshot + 1;
    spl__progress_reset_state(pr, SPL_RAFT_PROBE);
    pr->next = next;
}

void spl__progress_probe_at_next(struct spl__progress *pr)
{
    ASSERT(pr->state == SPL_RAFT_REPLICATE);
    spl__progress_reset_state(pr, SPL_RAFT_PROBE);
}

void spl__progress_become_replicate(struct spl__progress *pr)
{
    spl__progress_reset_state(pr, SPL_RAFT_REPLICATE);
    pr->next = pr->match + 1;
}

void spl__progress_become_snapshot(struct spl__progress *pr, uint64_t snap_index)
{
    ASSERT(snap_index >= pr->match);
    spl__progress_reset_state(pr, SPL_RAFT_SNAPSHOT);
    pr->pending_snapshot = snap_index;
}

bool spl__progress_maybe_update(struct spl__progress *pr, uint64_t index)
{
    bool updated = false;
    if (index > pr->match) {
        pr->match = index;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < index + 1)
        pr->next = index + 1;
    return updated;
}

bool spl__progress_maybe_decr(struct spl__progress *pr, uint64_t rejected, uint64_t hint)
{
    if (pr->state == SPL_RAFT_REPLICATE) {
        if (rejected <= pr->match) /* stale: we already know a later match */
            return false;
        pr->next = pr->match + 1;
        return true;
    }
    if (pr->next == 0 || pr->next - 1 != rejected) /* not the probe we sent last */
        return false;
    uint64_t next = rejected < hint + 1 ? rejected : hint + 1;
    if (next < pr->match + 1)
        next = pr->match + 1;
    pr->next = next;
    pr->probe_sent = false;
    return true;
}

void spl__progress_sent(struct spl__progress *pr, uint64_t last, uint64_t bytes)
{
    switch (pr->state) {
    case SPL_RAFT_REPLICATE:
        if (last >= pr->next) {
            pr->next = last + 1;
            spl__inflights_add(&pr->inflights, last, bytes);
        }
        break;
    case SPL_RAFT_PROBE:
        pr->probe_sent = true;
        break;
    default:
        ASSERTF(false, "append sent in state %d", pr->state);
    }
}

bool spl__progress_is_paused(const struct spl__progress *pr)
{
    switch (pr->state) {
    case SPL_RAFT_PROBE:
        return pr->probe_sent;
    case SPL_RAFT_REPLICATE:
        return spl__inflights_full(&pr->inflights);
    default:
        return true;
    }
}
