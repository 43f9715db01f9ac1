/*
 * ready.c - the node's output: the outbox that collects messages and read states, and
 * the ready/advance batches that hand them (with entries, hard state, committed entries
 * and a snapshot) to the caller (the contract is in raft.h).
 *
 * Two boxes alternate: one collects output while the other is handed out in a ready, so
 * the caller may keep stepping the node between ready() and advance() without moving
 * memory the ready points into. Every array is reused from ready to ready: in steady
 * state nothing is allocated here. Message entries live in the box's entry arena and
 * are attached to their message by offset until the box is handed out.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/raft_int.h"

#define SPL__READY_APPLY_BYTES_MAX (4ull * SPL_RAFT_BATCH_BYTES_MAX)
#define SPL__NO_ENTRIES UINT32_MAX

void spl__box_init(struct spl__box *b)
{
    memset(b, 0, sizeof(*b));
    spl_iobuf_init(&b->snap.data);
}

static void spl__entries_reset(struct spl_raft_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_reset(&e[i].data);
}

void spl__box_release(struct spl__box *b)
{
    for (uint32_t i = 0; i < b->msg_count; i++)
        spl_iobuf_reset(&b->msgs[i].snapshot.data);
    spl__entries_reset(b->ents, b->ent_count);
    spl__entries_reset(b->persist, b->persist_count);
    spl__entries_reset(b->committed, b->committed_count);
    spl_iobuf_reset(&b->snap.data);
    b->msg_count = 0;
    b->ent_count = 0;
    b->read_count = 0;
    b->persist_count = 0;
    b->committed_count = 0;
    b->has_snap = false;
}

void spl__box_destroy(struct spl__box *b)
{
    spl__box_release(b);
    free(b->msgs);
    free(b->early);
    free(b->ent_off);
    free(b->ents);
    free(b->reads);
    free(b->sorted);
    free(b->persist);
    free(b->committed);
    memset(b, 0, sizeof(*b));
}

/* Grow *arr (of *cap elements of size) to hold need. */
static void spl__grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return;
    uint32_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    *arr = spl__raft_xrealloc(*arr, c, size);
    *cap = c;
}

static bool spl__msg_early(const struct spl_raft *r, uint8_t type)
{
    return r->role == SPL_RAFT_LEADER &&
           (type == SPL_RAFT_MSG_APPEND || type == SPL_RAFT_MSG_HEARTBEAT ||
            type == SPL_RAFT_MSG_SNAPSHOT || type == SPL_RAFT_MSG_TIMEOUT_NOW);
}

struct spl_raft_msg *spl__box_push(struct spl_raft *r, uint8_t type, uint64_t to)
{
    struct spl__box *b = &r->boxes[r->box];
    ASSERT(to != r->id && to != SPL_RAFT_NONE);
    if (b->msg_count == b->msg_cap) {
        uint32_t cap = b->msg_cap;
        spl__grow((void **)&b->msgs, &cap, b->msg_count + 1, sizeof(*b->msgs));
        b->early = spl__raft_xrealloc(b->early, cap, sizeof(*b->early));
        b->ent_off = spl__raft_xrealloc(b->ent_off, cap, sizeof(*b->ent_off));
        b->sorted = spl__raft_xrealloc(b->sorted, cap, sizeof(*b->sorted));
        b->msg_cap = cap;
    }
    uint32_t i = b->msg_count++;
    struct spl_raft_msg *m = &b->msgs[i];
    spl_raft_msg_init(m);
    m->type = type;
    m->group = r->cfg.group;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    b->early[i] = spl__msg_early(r, type);
    b->ent_off[i] = SPL__NO_ENTRIES;
    return m;
}

struct spl_raft_entry *spl__box_reserve_entries(struct spl_raft *r, uint32_t n)
{
    struct spl__box *b = &r->boxes[r->box];
    spl__grow((void **)&b->ents, &b->ent_cap, b->ent_count + n, sizeof(*b->ents));
    return &b->ents[b->ent_count];
}

void spl__box_commit_entries(struct spl_raft *r, struct spl_raft_msg *m, uint32_t n)
{
    struct spl__box *b = &r->boxes[r->box];
    uint32_t i = (uint32_t)(m - b->msgs);
    ASSERT(i < b->msg_count);
    ASSERT_CMP(b->ent_count + n, <=, b->ent_cap);
    m->entry_count = n;
    if (n > 0)
        b->ent_off[i] = b->ent_count;
    b->ent_count += n;
}

void spl__box_drop_acks_from(struct spl_raft *r, uint64_t index)
{
    struct spl__box *b = &r->boxes[r->box];
    uint32_t w = 0;
    for (uint32_t i = 0; i < b->msg_count; i++) {
        const struct spl_raft_msg *m = &b->msgs[i];
        if (m->type == SPL_RAFT_MSG_APPEND_RESP && !m->reject && m->index >= index) {
            ASSERT(m->entry_count == 0);
            spl__raft_log(r, SPL_LOG_DEBUG,
                          "%llu dropped unsent ack of index %llu to %llu: log truncated at %llu",
                          (unsigned long long)r->id, (unsigned long long)m->index,
                          (unsigned long long)m->to, (unsigned long long)index);
            spl_iobuf_reset(&b->msgs[i].snapshot.data);
            continue;
        }
        if (w != i) {
            b->msgs[w] = b->msgs[i];
            b->early[w] = b->early[i];
            b->ent_off[w] = b->ent_off[i];
        }
        w++;
    }
    b->msg_count = w;
}

void spl__box_push_read(struct spl_raft *r, uint64_t context, uint64_t index)
{
    struct spl__box *b = &r->boxes[r->box];
    spl__grow((void **)&b->reads, &b->read_cap, b->read_count + 1, sizeof(*b->reads));
    b->reads[b->read_count++] = (struct spl_raft_read_state){.context = context, .index = index};
}

/* ---- ready ---- */

static bool spl__hs_equal(const struct spl_raft_hard_state *a,
                          const struct spl_raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool spl_raft_has_ready(const struct spl_raft *r)
{
    const struct spl__box *b = &r->boxes[r->box];
    struct spl_raft_hard_state hs;
    if (r->ready_out)
        return false;
    spl__raft_hard_state(r, &hs);
    return b->msg_count > 0 || b->read_count > 0 || !spl__hs_equal(&hs, &r->prev_hs) ||
           r->lead != r->prev_ss.leader || r->role != r->prev_ss.role || r->log.count > 0 ||
           r->log.has_snap || r->log.committed > r->log.applying || r->conf_changed ||
           spl__leader_wants_send(r);
}

/* Copy the unstable snapshot and entries (references) into the box. */
static void spl__ready_persist(struct spl_raft *r, struct spl__box *b, struct spl_raft_ready *rd)
{
    const struct spl__log *l = &r->log;
    if (l->has_snap) {
        b->has_snap = true;
        b->snap = l->snap;
        spl_iobuf_init(&b->snap.data);
        int rc = spl_iobuf_append_ref(&b->snap.data, &l->snap.data, 0,
                                      spl_iobuf_len(&l->snap.data));
        ASSERTF(rc == 0, "raft: out of memory referencing a snapshot");
        rd->snapshot = &b->snap;
    }
    ASSERT_CMP(l->count, <, UINT32_MAX);
    spl__grow((void **)&b->persist, &b->persist_cap, (uint32_t)l->count, sizeof(*b->persist));
    uint32_t n = (uint32_t)l->count;
    spl__log_copy_unstable(l, b->persist); /* from memory: storage may be compacted */
    if (n > 0) {
        rd->priv_stable_index = b->persist[n - 1].index;
        rd->priv_stable_term = b->persist[n - 1].term;
    }
    b->persist_count = n;
    rd->entries = b->persist;
    rd->entry_count = n;
}

/* Hand out the committed entries not yet handed out, applying conf entries as they go. */
static void spl__ready_committed(struct spl_raft *r, struct spl__box *b,
                                 struct spl_raft_ready *rd)
{
    struct spl__log *l = &r->log;
    if (l->has_snap)
        l->applying = l->snap.index; /* the caller installs it before applying */
    uint64_t lo = l->applying + 1, hi = l->committed + 1;
    uint32_t n = 0;
    if (lo < hi) {
        uint64_t want = hi - lo < SPL_RAFT_PROPOSALS_MAX ? hi - lo : SPL_RAFT_PROPOSALS_MAX;
        spl__grow((void **)&b->committed, &b->committed_cap, (uint32_t)want,
                  sizeof(*b->committed));
        int rc = spl__log_slice(l, lo, hi, SPL__READY_APPLY_BYTES_MAX, b->committed,
                                (uint32_t)want, &n);
        ASSERTF(rc == 0, "committed entries from %llu: %d", (unsigned long long)lo, rc);
    }
    b->committed_count = n;
    rd->committed = b->committed;
    rd->committed_count = n;
    for (uint32_t i = 0; i < n; i++)
        spl__raft_on_applied(r, &b->committed[i]);
    if (n > 0)
        l->applying = b->committed[n - 1].index;
    rd->priv_applied = l->applying;
}

/* Order the messages: those allowed before persistence first. */
static void spl__ready_msgs(struct spl__box *b, struct spl_raft_ready *rd, bool all_late)
{
    uint32_t e = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < b->msg_count; i++) {
            bool early = b->early[i] && !all_late;
            if (early != (pass == 0))
                continue;
            struct spl_raft_msg *m = &b->msgs[i];
            m->entries = b->ent_off[i] == SPL__NO_ENTRIES ? NULL : &b->ents[b->ent_off[i]];
            b->sorted[e++] = *m;
        }
        if (pass == 0)
            rd->msg_early_count = e;
    }
    rd->msgs_early = b->sorted;
    rd->msgs = b->sorted + rd->msg_early_count;
    rd->msg_count = e - rd->msg_early_count;
}

void spl_raft_ready(struct spl_raft *r, struct spl_raft_ready *rd)
{
    ASSERTF(!r->ready_out, "spl_raft_ready() twice without spl_raft_advance()");
    memset(rd, 0, sizeof(*rd));
    spl__raft_bcast_append(r); /* first: a leader about to remove itself still tells all */
    struct spl__box *b = &r->boxes[r->box];
    spl__ready_committed(r, b, rd);
    spl__raft_bcast_append(r); /* conf changes may have added members */
    spl__ready_persist(r, b, rd);
    struct spl_raft_hard_state hs;
    spl__raft_hard_state(r, &hs);
    bool term_vote = hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote;
    rd->has_hard_state = !spl__hs_equal(&hs, &r->prev_hs);
    rd->hard_state = hs;
    r->prev_hs = hs;
    rd->must_sync = term_vote || rd->entry_count > 0 || rd->snapshot != NULL;
    spl__ready_msgs(b, rd, term_vote);
    rd->read_states = b->reads;
    rd->read_state_count = b->read_count;
    struct spl_raft_soft_state ss = {.leader = r->lead, .role = r->role};
    rd->has_soft_state = ss.leader != r->prev_ss.leader || ss.role != r->prev_ss.role;
    rd->soft_state = ss;
    r->prev_ss = ss;
    rd->conf_changed = r->conf_changed;
    r->conf_changed = false;
    rd->conf = r->conf;
    rd->epoch = r->epoch;
    r->box ^= 1;
    ASSERT(r->boxes[r->box].msg_count == 0 && r->boxes[r->box].read_count == 0);
    r->ready_out = true;
    spl__raft_check_invariants(r);
}

void spl_raft_advance(struct spl_raft *r, struct spl_raft_ready *rd)
{
    ASSERTF(r->ready_out, "spl_raft_advance() without spl_raft_ready()");
    struct spl__box *b = &r->boxes[r->box ^ 1];
    ASSERT(rd->entries == b->persist);
    if (rd->snapshot)
        spl__log_stable_snap_to(&r->log, rd->snapshot->index);
    spl__log_stable_prefix(&r->log, b->persist, b->persist_count);
    ASSERT_CMP(rd->priv_applied, <=, r->log.applying);
    if (rd->priv_applied > r->log.applied)
        r->log.applied = rd->priv_applied;
    spl__box_release(b);
    r->ready_out = false;
    spl__leader_stable(r);
    memset(rd, 0, sizeof(*rd));
    spl__raft_check_invariants(r);
}
