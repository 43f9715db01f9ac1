/* check.c - the invariants of RAFT-INVARIANTS.md §1 (and 22, 23), checked as the
 * simulation runs. Numbers in messages are the invariant numbers of that page. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "sim.h"

struct sim_committed {
    uint64_t term;
    uint64_t hash;
    uint64_t epoch_plus1; /* epoch after applying this index, + 1 (0 = not known yet) */
    uint64_t commit_term; /* the term of the first leader seen committing it (0 = unknown) */
    bool known;
};

/* (index, term) -> payload hash: one leader made each (index, term), so it is unique. */
struct sim_it_slot {
    uint64_t index, term, hash;
};

struct sim_check {
    /* 1: the leader of each term, and when it was elected */
    int *leader_of_term;
    uint64_t *elected_at_ns;
    uint64_t terms_cap, elected_cap;
    uint64_t max_leader_term;
    /* 2: the vote each node granted in each term (across restarts) */
    uint64_t *vote_of[SIM_NODES_MAX];
    uint64_t vote_cap[SIM_NODES_MAX];
    /* 7, 8, 11: what is known committed */
    struct sim_committed *committed;
    uint64_t committed_cap;
    uint64_t committed_max; /* highest index with a known committed entry */
    uint64_t commit_max;    /* highest commit index any node reported */
    /* 4 */
    struct sim_it_slot *it;
    uint64_t it_cap, it_count;
};

struct sim_check *sim_check_new(void)
{
    struct sim_check *c = calloc(1, sizeof(*c));
    ASSERT(c != NULL);
    return c;
}

void sim_check_free(struct sim_check *c)
{
    if (!c)
        return;
    free(c->leader_of_term);
    free(c->elected_at_ns);
    for (int i = 0; i < SIM_NODES_MAX; i++)
        free(c->vote_of[i]);
    free(c->committed);
    free(c->it);
    free(c);
}

void sim_fail(struct sim *s, int inv, const char *fmt, ...)
{
    if (s->stop || (inv >= 0 && inv < 64 && (s->opt.ignore_mask >> inv) & 1))
        return;
    s->stop = true;
    s->res->failed = true;
    s->res->invariant = inv;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->what, sizeof(s->res->what), fmt, ap);
    va_end(ap);
    SIM_TRACE(s, 0, "VIOLATION %d: %s", inv, s->res->what);
}

/* Grows a zeroed array so that index `need` is valid. */
static void *grow(void *p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need < *cap)
        return p;
    uint64_t n = *cap ? *cap : 256;
    while (n <= need)
        n *= 2;
    p = realloc(p, n * elem);
    ASSERT(p != NULL);
    memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
    return p;
}

static struct sim_committed *committed_at(struct sim_check *c, uint64_t index)
{
    c->committed = grow(c->committed, &c->committed_cap, index, sizeof(c->committed[0]));
    return &c->committed[index];
}

uint64_t sim_check_commit_max(struct sim *s)
{
    return s->chk->commit_max;
}

bool sim_check_leader_for_term(struct sim *s, uint64_t term, int *node)
{
    struct sim_check *c = s->chk;
    if (term >= c->terms_cap || c->leader_of_term[term] == 0)
        return false;
    *node = c->leader_of_term[term];
    return true;
}

/* 4: one payload per (index, term) over the whole run. */
static void check_index_term(struct sim *s, struct sim_node *n, uint64_t index, uint64_t term,
                             uint64_t hash)
{
    struct sim_check *c = s->chk;
    if ((c->it_count + 1) * 2 > c->it_cap) {
        uint64_t old_cap = c->it_cap;
        struct sim_it_slot *old = c->it;
        c->it_cap = old_cap ? old_cap * 2 : 4096;
        c->it = calloc(c->it_cap, sizeof(c->it[0]));
        ASSERT(c->it != NULL);
        for (uint64_t i = 0; i < old_cap; i++) {
            if (old[i].term == 0)
                continue;
            uint64_t h = (old[i].index * 0x9e3779b97f4a7c15ull) ^ old[i].term;
            uint64_t k = h & (c->it_cap - 1);
            while (c->it[k].term != 0)
                k = (k + 1) & (c->it_cap - 1);
            c->it[k] = old[i];
        }
        free(old);
    }
    uint64_t h = (index * 0x9e3779b97f4a7c15ull) ^ term;
    for (uint64_t k = h & (c->it_cap - 1);; k = (k + 1) & (c->it_cap - 1)) {
        struct sim_it_slot *e = &c->it[k];
        if (e->term == 0) {
            *e = (struct sim_it_slot){.index = index, .term = term, .hash = hash};
            c->it_count++;
            return;
        }
        if (e->index == index && e->term == term) {
            if (e->hash != hash)
                sim_fail(s, 4, "n%d: entry %" PRIu64 "/%" PRIu64 " has payload %016" PRIx64
                         " but another replica had %016" PRIx64, n->id, index, term, hash,
                         e->hash);
            return;
        }
    }
}

/* 4: where two logs hold the same (index, term), they agree up to it. */
static void check_log_matching(struct sim *s, struct sim_node *a, struct sim_node *b)
{
    const struct sim_logview *x = &a->mem, *y = &b->mem;
    uint64_t lo = (x->base > y->base ? x->base : y->base) + 1;
    uint64_t hi = sim_lv_last(x) < sim_lv_last(y) ? sim_lv_last(x) : sim_lv_last(y);
    uint64_t i = hi;
    while (i >= lo && sim_lv_at(x, i)->term != sim_lv_at(y, i)->term)
        i--;
    for (uint64_t j = i; j >= lo; j--) {
        const struct sim_lentry *p = sim_lv_at(x, j), *q = sim_lv_at(y, j);
        if (p->term != q->term || p->hash != q->hash) {
            sim_fail(s, 4, "n%d and n%d agree on entry %" PRIu64 " (term %" PRIu64
                     ") but differ at %" PRIu64 ": term %" PRIu64 " vs %" PRIu64, a->id,
                     b->id, i, sim_lv_at(x, i)->term, j, p->term, q->term);
            return;
        }
    }
}

static void check_matching_all(struct sim *s, struct sim_node *n)
{
    for (int id = 1; id <= s->node_count && !s->stop; id++)
        if (id != n->id && s->node[id].up)
            check_log_matching(s, n, &s->node[id]);
}

/* 7/8: record or compare a committed entry. */
static void note_committed(struct sim *s, struct sim_node *n, uint64_t index,
                           const struct sim_lentry *e, int inv, uint64_t commit_term)
{
    struct sim_check *c = s->chk;
    struct sim_committed *k = committed_at(c, index);
    if (k->known && (k->term != e->term || k->hash != e->hash)) {
        sim_fail(s, inv, "n%d: committed entry %" PRIu64 " is term %" PRIu64 " payload %016"
                 PRIx64 " here but term %" PRIu64 " payload %016" PRIx64 " elsewhere", n->id,
                 index, e->term, e->hash, k->term, k->hash);
        return;
    }
    k->known = true;
    k->term = e->term;
    k->hash = e->hash;
    if (commit_term && (k->commit_term == 0 || commit_term < k->commit_term))
        k->commit_term = commit_term;
    if (index > c->committed_max)
        c->committed_max = index;
}

/* 6: a new leader of term T holds every entry that a leader of a term < T committed
 * (a leader of an older term elected late, with delayed votes, need not). */
static void check_leader_completeness(struct sim *s, struct sim_node *n, uint64_t term)
{
    struct sim_check *c = s->chk;
    for (uint64_t i = c->committed_max; i > n->mem.base && !s->stop; i--) {
        const struct sim_committed *k = &c->committed[i];
        if (!k->known || k->commit_term == 0 || k->commit_term >= term)
            continue;
        const struct sim_lentry *e = sim_lv_at(&n->mem, i);
        if (!e)
            sim_fail(s, 6, "n%d became leader of term %" PRIu64 " with last index %" PRIu64
                     " but %" PRIu64 " was committed in term %" PRIu64, n->id, term,
                     sim_lv_last(&n->mem), i, k->commit_term);
        else if (e->term != k->term || e->hash != k->hash)
            sim_fail(s, 6, "n%d became leader of term %" PRIu64 " with entry %" PRIu64
                     " term %" PRIu64 " but the one committed in term %" PRIu64 " is term %"
                     PRIu64, n->id, term, i, e->term, k->commit_term, k->term);
    }
}

/* 1, 6 and the epoch/role bookkeeping when a ready reports a role change. */
static void check_soft_state(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd,
                             const struct spl_raft_status *st)
{
    struct sim_check *c = s->chk;
    if (!rd->has_soft_state)
        return;
    uint8_t was = n->role;
    n->role = rd->soft_state.role;
    if (n->role != SPL_RAFT_LEADER || was == SPL_RAFT_LEADER)
        return;
    uint64_t term = st->term;
    c->leader_of_term = grow(c->leader_of_term, &c->terms_cap, term, sizeof(int));
    c->elected_at_ns = grow(c->elected_at_ns, &c->elected_cap, term, sizeof(uint64_t));
    if (c->leader_of_term[term] != 0 && c->leader_of_term[term] != n->id) {
        sim_fail(s, 1, "two leaders in term %" PRIu64 ": n%d (elected at %" PRIu64
                 " ns) and n%d", term, c->leader_of_term[term], c->elected_at_ns[term], n->id);
        return;
    }
    c->leader_of_term[term] = n->id;
    c->elected_at_ns[term] = s->w.now_ns;
    if (term > c->max_leader_term)
        c->max_leader_term = term;
    s->res->elections++;
    SIM_TRACE(s, n->id, "LEADER of term %" PRIu64 " (last %" PRIu64 ", commit %" PRIu64 ")",
              term, sim_lv_last(&n->mem), st->commit);
    check_leader_completeness(s, n, term);
}

static void check_hard_state(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd)
{
    if (!rd->has_hard_state)
        return;
    const struct spl_raft_hard_state *hs = &rd->hard_state;
    if (hs->term < n->term)
        sim_fail(s, 3, "n%d: term went back from %" PRIu64 " to %" PRIu64, n->id, n->term,
                 hs->term);
    if (hs->commit < n->commit)
        sim_fail(s, 8, "n%d: commit went back from %" PRIu64 " to %" PRIu64, n->id, n->commit,
                 hs->commit);
    bool changed = hs->term != n->mem.hs.term || hs->vote != n->mem.hs.vote;
    if (changed && !rd->must_sync)
        sim_fail(s, 14, "n%d: term/vote changed to %" PRIu64 "/%" PRIu64 " without must_sync",
                 n->id, hs->term, hs->vote);
    n->mem.hs = *hs;
}

/* 5, 8, 4: new entries extend the in-memory log. */
static void check_entries(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd,
                          const struct spl_raft_status *st)
{
    struct sim_check *c = s->chk;
    if (rd->entry_count == 0)
        return;
    if (!rd->must_sync)
        sim_fail(s, 14, "n%d: a ready with %u entries does not ask for an fsync", n->id,
                 rd->entry_count);
    uint64_t first = rd->entries[0].index;
    uint64_t last = sim_lv_last(&n->mem);
    if (st->role == SPL_RAFT_LEADER && first <= last)
        sim_fail(s, 5, "leader n%d (term %" PRIu64 ") overwrites its entries %" PRIu64
                 "..%" PRIu64, n->id, st->term, first, last);
    for (uint64_t j = first; j <= last && !s->stop; j++) {
        const struct sim_lentry *old = sim_lv_at(&n->mem, j);
        if (j >= c->committed_cap || !old)
            break;
        const struct sim_committed *k = &c->committed[j];
        /* (A replica still below the commit term may lose an entry it never acknowledged
         * to a late leader of an older term; from the commit term on, never.) */
        if (k->known && k->term == old->term && k->hash == old->hash &&
            (k->commit_term == 0 || st->term >= k->commit_term) &&
            (j - first >= rd->entry_count || rd->entries[j - first].term != old->term))
            sim_fail(s, 8, "n%d: committed entry %" PRIu64 " (term %" PRIu64
                     ") is truncated by entries from %" PRIu64, n->id, j, old->term, first);
    }
    struct sim_lentry le[SPL_RAFT_BATCH_ENTRIES_MAX];
    uint32_t done = 0;
    while (done < rd->entry_count && !s->stop) {
        uint32_t m = 0;
        while (done + m < rd->entry_count && m < SPL_RAFT_BATCH_ENTRIES_MAX) {
            const struct spl_raft_entry *e = &rd->entries[done + m];
            if (e->index != first + done + m)
                sim_fail(s, 4, "n%d: ready entries not contiguous at %" PRIu64, n->id,
                         e->index);
            le[m] = sim_lentry_of(e);
            check_index_term(s, n, e->index, e->term, le[m].hash);
            if (st->role == SPL_RAFT_LEADER && e->term != st->term)
                sim_fail(s, 5, "leader n%d of term %" PRIu64 " appends entry %" PRIu64
                         " of term %" PRIu64, n->id, st->term, e->index, e->term);
            m++;
        }
        if (!sim_lv_append(&n->mem, first + done, le, m, NULL)) {
            sim_fail(s, 4, "n%d: ready entries from %" PRIu64 " leave a gap after %" PRIu64
                     " (base %" PRIu64 ")", n->id, first + done, sim_lv_last(&n->mem),
                     n->mem.base);
            return;
        }
        done += m;
    }
}

static uint32_t voter_mask(const struct spl_raft_conf *conf)
{
    uint32_t mask = 0;
    for (uint32_t i = 0; i < conf->voter_count; i++)
        if (conf->voters[i] < 32)
            mask |= 1u << conf->voters[i];
    return mask;
}

/* True when the entry at index with this term is known committed (by any node). */
static bool known_committed(const struct sim_check *c, uint64_t index, uint64_t term)
{
    return index < c->committed_cap && c->committed[index].known &&
           c->committed[index].term == term;
}

/* 11: on the leader, the configuration entries not yet committed carry at most one change
 * of the voter set (re-statements of the same set are not changes), each entry not yet
 * applied changes at most one voter, and a change starts only after the leader applied an
 * entry of its own term. (A leader elected after a restart with a stale commit hint may
 * hold several committed changes it has not applied yet: that is allowed, it counts votes
 * and commits with the latest configuration of its log.) */
static void check_leader_conf(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd,
                              const struct spl_raft_status *st)
{
    if (st->role != SPL_RAFT_LEADER)
        return;
    uint64_t applied = n->applied;
    if (rd->snapshot)
        applied = rd->snapshot->index;
    if (rd->committed_count)
        applied = rd->committed[rd->committed_count - 1].index;
    uint32_t changes = 0, prev = voter_mask(&n->conf);
    for (uint64_t i = applied + 1; i <= sim_lv_last(&n->mem); i++) {
        const struct sim_lentry *e = sim_lv_at(&n->mem, i);
        if (!e || e->type != SPL_RAFT_ENTRY_CONF || e->voters == prev)
            continue;
        changes += !known_committed(s->chk, i, e->term);
        if (__builtin_popcount(e->voters ^ prev) > 1)
            sim_fail(s, 11, "leader n%d: configuration entry %" PRIu64 " changes voters "
                     "%#x -> %#x at once", n->id, i, prev, e->voters);
        prev = e->voters;
    }
    if (changes > 1)
        sim_fail(s, 11, "leader n%d has %u uncommitted configuration changes after %" PRIu64,
                 n->id, changes, applied);
    for (uint32_t i = 0; i < rd->entry_count && !s->stop; i++) {
        const struct spl_raft_entry *e = &rd->entries[i];
        if (e->type != SPL_RAFT_ENTRY_CONF)
            continue;
        struct spl_raft_conf_change cc;
        if (spl_raft_conf_change_decode(&e->data, &cc) != 0) {
            sim_fail(s, 11, "n%d: conf entry %" PRIu64 " does not decode", n->id, e->index);
            return;
        }
        uint64_t t = 0;
        if (cc.op != SPL_RAFT_CONF_RESTATE &&
            (!sim_lv_term(&n->mem, applied, &t) || t != st->term))
            sim_fail(s, 11, "leader n%d of term %" PRIu64 " starts a %s of n%" PRIu64
                     " at %" PRIu64 " before applying an entry of its term (applied %" PRIu64
                     " is term %" PRIu64 ")", n->id, st->term, spl_raft_conf_op_name(cc.op),
                     cc.node_id, e->index, applied, t);
    }
}

/* 8, 9, 10: a commit advance. */
static void check_commit(struct sim *s, struct sim_node *n, uint64_t commit,
                         const struct spl_raft_status *st)
{
    struct sim_check *c = s->chk;
    if (commit > sim_lv_last(&n->mem)) {
        sim_fail(s, 10, "n%d: commit %" PRIu64 " > last index %" PRIu64, n->id, commit,
                 sim_lv_last(&n->mem));
        return;
    }
    if (commit <= n->commit)
        return;
    if (st->role == SPL_RAFT_LEADER) {
        uint64_t t = 0;
        if (sim_lv_term(&n->mem, commit, &t) && t != st->term) {
            sim_fail(s, 9, "leader n%d of term %" PRIu64 " advanced commit to %" PRIu64
                     " whose entry is term %" PRIu64, n->id, st->term, commit, t);
            return;
        }
        /* The configuration that counted: the applied one, one whose entry committed
         * on the way to `commit`, or the latest of the leader's log (Raft's rule: a
         * configuration counts from when its entry is appended). */
        uint32_t masks[9], mask_count = 0, latest = 0;
        masks[mask_count++] = voter_mask(&n->conf);
        for (uint64_t i = n->applied + 1; i <= sim_lv_last(&n->mem); i++) {
            const struct sim_lentry *e = sim_lv_at(&n->mem, i);
            if (!e || e->type != SPL_RAFT_ENTRY_CONF)
                continue;
            latest = e->voters;
            if (i < commit && mask_count < 8)
                masks[mask_count++] = e->voters;
        }
        if (latest != 0)
            masks[mask_count++] = latest;
        uint32_t durable_mask = 0;
        for (uint64_t id = 1; id < (uint64_t)SIM_NODES_MAX; id++) {
            const struct sim_logview *d = &s->node[id].dur;
            uint64_t dt = 0;
            if ((sim_lv_term(d, commit, &dt) && dt == t) ||
                (commit <= d->snap_index && d->snap_index > 0))
                durable_mask |= 1u << id;
        }
        bool quorum = false;
        for (uint32_t k = 0; k < mask_count; k++)
            quorum = quorum || __builtin_popcount(masks[k] & durable_mask) * 2 >
                                   __builtin_popcount(masks[k]);
        if (!quorum) {
            sim_fail(s, 8, "leader n%d commits %" PRIu64 " (term %" PRIu64 ") durable only on "
                     "nodes %#x, voters %#x", n->id, commit, t, durable_mask, masks[0]);
            return;
        }
        for (uint64_t i = n->commit + 1; i <= commit && !s->stop; i++) {
            const struct sim_lentry *e = sim_lv_at(&n->mem, i);
            if (e)
                note_committed(s, n, i, e, 8, st->term);
        }
    }
    if (commit > c->commit_max)
        c->commit_max = commit;
    n->commit = commit;
}

void sim_check_ready(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd)
{
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    check_soft_state(s, n, rd, &st);
    check_hard_state(s, n, rd);
    if (rd->snapshot) {
        if (st.role == SPL_RAFT_LEADER)
            sim_fail(s, 5, "leader n%d installs a snapshot at %" PRIu64, n->id,
                     rd->snapshot->index);
        sim_lv_apply_snapshot(&n->mem, rd->snapshot->index, rd->snapshot->term,
                              rd->snapshot->epoch);
    }
    check_entries(s, n, rd, &st);
    check_leader_conf(s, n, rd, &st);
    if (rd->has_hard_state)
        check_commit(s, n, rd->hard_state.commit, &st);
    if (rd->entry_count || rd->snapshot)
        check_matching_all(s, n);
}

void sim_check_send(struct sim *s, struct sim_node *n, const struct spl_raft_msg *m, bool early)
{
    struct sim_check *c = s->chk;
    const struct spl_raft_hard_state *d = &n->dur.hs;
    bool pre = m->type == SPL_RAFT_MSG_PREVOTE || m->type == SPL_RAFT_MSG_PREVOTE_RESP;
    if (early && m->type != SPL_RAFT_MSG_APPEND && m->type != SPL_RAFT_MSG_HEARTBEAT &&
        m->type != SPL_RAFT_MSG_SNAPSHOT && m->type != SPL_RAFT_MSG_TIMEOUT_NOW)
        sim_fail(s, 14, "n%d: %s in msgs_early", n->id, spl_raft_msg_type_name(m->type));
    if (!pre && m->term > d->term)
        sim_fail(s, 14, "n%d sends %s of term %" PRIu64 " to n%" PRIu64 " but its durable "
                 "term is %" PRIu64, n->id, spl_raft_msg_type_name(m->type), m->term, m->to,
                 d->term);
    /* A vote (request or grant) of term T depends on the durable vote in T; once a later
     * term is durable the node can never vote in T again, so a stale one may still go. */
    if (m->type == SPL_RAFT_MSG_VOTE && d->term == m->term && d->vote != (uint64_t)n->id)
        sim_fail(s, 14, "n%d asks votes for term %" PRIu64 " with durable vote %" PRIu64, n->id,
                 m->term, d->vote);
    if (m->type == SPL_RAFT_MSG_VOTE_RESP && !m->reject) {
        if (d->term < m->term || (d->term == m->term && d->vote != m->to))
            sim_fail(s, 14, "n%d grants n%" PRIu64 " its vote in term %" PRIu64 " but the "
                     "durable vote is %" PRIu64 " in term %" PRIu64, n->id, m->to, m->term,
                     d->vote, d->term);
        uint64_t *cap = &c->vote_cap[n->id];
        c->vote_of[n->id] = grow(c->vote_of[n->id], cap, m->term, sizeof(uint64_t));
        uint64_t *v = &c->vote_of[n->id][m->term];
        if (*v != 0 && *v != m->to)
            sim_fail(s, 2, "n%d voted for n%" PRIu64 " and for n%" PRIu64 " in term %" PRIu64,
                     n->id, *v, m->to, m->term);
        *v = m->to;
    }
    if (m->type == SPL_RAFT_MSG_APPEND_RESP && !m->reject && m->index > n->dur.base) {
        uint64_t dt = 0, mt = 0;
        bool has = sim_lv_term(&n->dur, m->index, &dt);
        bool known = sim_lv_term(&n->mem, m->index, &mt);
        if (!has || (known && dt != mt))
            sim_fail(s, 14, "n%d acknowledges index %" PRIu64 " (term %" PRIu64 ") but its "
                     "durable log %s", n->id, m->index, mt,
                     has ? "has another term there" : "ends before it");
    }
}

void sim_check_apply(struct sim *s, struct sim_node *n, const struct spl_raft_entry *e)
{
    struct sim_check *c = s->chk;
    if (e->index != n->applied + 1) {
        sim_fail(s, 7, "n%d applies %" PRIu64 " after %" PRIu64, n->id, e->index, n->applied);
        return;
    }
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    if (e->index > st.commit || e->index > n->commit) {
        sim_fail(s, 10, "n%d applies %" PRIu64 " beyond its commit %" PRIu64, n->id, e->index,
                 n->commit < st.commit ? n->commit : st.commit);
        return;
    }
    struct sim_lentry le = sim_lentry_of(e);
    note_committed(s, n, e->index, &le, 7, 0);
    if (e->type == SPL_RAFT_ENTRY_CONF) {
        struct spl_raft_conf_change cc;
        if (spl_raft_conf_change_decode(&e->data, &cc) != 0) {
            sim_fail(s, 11, "n%d: conf entry %" PRIu64 " does not decode", n->id, e->index);
            return;
        }
        uint32_t diff = 0;
        for (uint32_t i = 0; i < cc.conf.voter_count; i++)
            diff += !spl_raft_conf_is_voter(&n->conf, cc.conf.voters[i]);
        for (uint32_t i = 0; i < n->conf.voter_count; i++)
            diff += !spl_raft_conf_is_voter(&cc.conf, n->conf.voters[i]);
        bool first = n->conf.voter_count == 0 && n->conf.learner_count == 0;
        if (!first && (diff > 1 || (cc.op == SPL_RAFT_CONF_RESTATE && diff != 0)))
            sim_fail(s, 11, "n%d: %s at %" PRIu64 " changes %u voters at once (%u -> %u)",
                     n->id, spl_raft_conf_op_name(cc.op), e->index, diff, n->conf.voter_count,
                     cc.conf.voter_count);
        n->conf = cc.conf;
        n->epoch++;
        s->res->conf_changes += cc.op != SPL_RAFT_CONF_RESTATE;
    }
    struct sim_committed *k = committed_at(c, e->index);
    if (k->epoch_plus1 && k->epoch_plus1 != n->epoch + 1)
        sim_fail(s, 11, "n%d: epoch after %" PRIu64 " is %" PRIu64 " but %" PRIu64
                 " on another replica", n->id, e->index, n->epoch, k->epoch_plus1 - 1);
    k->epoch_plus1 = n->epoch + 1;
}

void sim_check_snapshot_install(struct sim *s, struct sim_node *n,
                                const struct spl_raft_snapshot_meta *snap)
{
    struct sim_check *c = s->chk;
    if (snap->index <= n->applied)
        sim_fail(s, 7, "n%d installs snapshot %" PRIu64 " with applied %" PRIu64, n->id,
                 snap->index, n->applied);
    if (snap->index > c->commit_max)
        sim_fail(s, 8, "n%d installs snapshot %" PRIu64 " beyond any commit (%" PRIu64 ")",
                 n->id, snap->index, c->commit_max);
    struct sim_committed *k = committed_at(c, snap->index);
    if (k->known && k->term != snap->term)
        sim_fail(s, 7, "n%d: snapshot %" PRIu64 " has term %" PRIu64 ", the committed entry %"
                 PRIu64, n->id, snap->index, snap->term, k->term);
    if (k->epoch_plus1 && k->epoch_plus1 != snap->epoch + 1)
        sim_fail(s, 11, "n%d: snapshot %" PRIu64 " has epoch %" PRIu64 ", replicas applied "
                 "epoch %" PRIu64 " there", n->id, snap->index, snap->epoch,
                 k->epoch_plus1 - 1);
}

void sim_check_after_ready(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd)
{
    if (s->stop)
        return;
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    if (rd->epoch != n->epoch)
        sim_fail(s, 11, "n%d: the ready says epoch %" PRIu64 ", %" PRIu64 " configuration "
                 "entries applied say %" PRIu64, n->id, rd->epoch, n->epoch, n->epoch);
    if (rd->conf_changed && memcmp(&rd->conf, &n->conf, sizeof(n->conf)) != 0)
        sim_fail(s, 11, "n%d: the ready's configuration differs from the applied entries'",
                 n->id);
    if (n->applied > st.commit || st.commit > st.last_index)
        sim_fail(s, 10, "n%d: applied %" PRIu64 " commit %" PRIu64 " last %" PRIu64, n->id,
                 n->applied, st.commit, st.last_index);
}

void sim_check_durable(struct sim *s, struct sim_node *n)
{
    if (n->dur.hs.term < n->dur_term_max)
        sim_fail(s, 3, "n%d: durable term went back from %" PRIu64 " to %" PRIu64, n->id,
                 n->dur_term_max, n->dur.hs.term);
    else
        n->dur_term_max = n->dur.hs.term;
    if (n->dur.hs.commit < n->dur_commit_max)
        sim_fail(s, 8, "n%d: durable commit went back from %" PRIu64 " to %" PRIu64, n->id,
                 n->dur_commit_max, n->dur.hs.commit);
    else
        n->dur_commit_max = n->dur.hs.commit;
}

static void describe_view(char *buf, size_t size, const struct sim_logview *v)
{
    snprintf(buf, size, "term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64 " snap %" PRIu64
             "/%" PRIu64 " epoch %" PRIu64 " log (%" PRIu64 ", %" PRIu64 "]",
             v->hs.term, v->hs.vote, v->hs.commit, v->snap_index, v->snap_term, v->snap_epoch,
             v->base, sim_lv_last(v));
}

void sim_check_recovered(struct sim *s, struct sim_node *n, const struct sim_logview *before,
                         const struct sim_effect *kept, uint32_t kept_count,
                         const struct sim_logview *recovered)
{
    struct sim_logview want;
    sim_lv_init(&want);
    sim_lv_copy(&want, before);
    for (uint32_t i = 0; i < kept_count; i++)
        sim_effect_apply(&want, &kept[i]);
    if (recovered->hs.term < before->hs.term)
        sim_fail(s, 3, "n%d restarts with term %" PRIu64 " < durable %" PRIu64, n->id,
                 recovered->hs.term, before->hs.term);
    else if (recovered->hs.term == before->hs.term && before->hs.vote != 0 &&
             recovered->hs.vote != before->hs.vote)
        sim_fail(s, 2, "n%d restarts with vote %" PRIu64 " in term %" PRIu64 ", durable %"
                 PRIu64, n->id, recovered->hs.vote, before->hs.term, before->hs.vote);
    else if (!sim_lv_equal(&want, recovered)) {
        char a[200], b[200];
        describe_view(a, sizeof(a), &want);
        describe_view(b, sizeof(b), recovered);
        sim_fail(s, 22, "n%d recovers [%s], expected [%s]", n->id, b, a);
    }
    /* Every committed entry the node held durably is still there. */
    struct sim_check *c = s->chk;
    for (uint64_t i = before->base + 1; i <= sim_lv_last(before) && !s->stop; i++) {
        if (i >= c->committed_cap || !c->committed[i].known || i <= recovered->base)
            continue;
        const struct sim_lentry *o = sim_lv_at(before, i), *r = sim_lv_at(recovered, i);
        if (o->term == c->committed[i].term && (!r || r->term != o->term))
            sim_fail(s, 22, "n%d lost committed entry %" PRIu64 " across a restart", n->id, i);
    }
    sim_lv_free(&want);
}

void sim_check_ack(struct sim *s, struct sim_node *n, uint64_t index, uint64_t term)
{
    struct sim_check *c = s->chk;
    if (index >= c->committed_cap || !c->committed[index].known ||
        c->committed[index].term != term)
        sim_fail(s, 25, "n%d acknowledges a client write at %" PRIu64 "/%" PRIu64 " that is not "
                 "known committed", n->id, index, term);
}

void sim_check_lease_read(struct sim *s, struct sim_node *n, const struct sim_read *r)
{
    struct sim_check *c = s->chk;
    if (c->max_leader_term > r->term) {
        uint64_t t = c->max_leader_term;
        sim_fail(s, 12, "n%d serves a lease read in term %" PRIu64 " at %" PRIu64 " ns but n%d "
                 "was elected leader of term %" PRIu64 " at %" PRIu64 " ns", n->id, r->term,
                 s->w.now_ns, c->leader_of_term[t], t, c->elected_at_ns[t]);
        return;
    }
    if (r->index < r->commit_seen)
        sim_fail(s, 12, "n%d: lease read at commit %" PRIu64 " but %" PRIu64 " was committed",
                 n->id, r->index, r->commit_seen);
}

void sim_check_read_index(struct sim *s, struct sim_node *n, const struct sim_read *r)
{
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    if (r->index < r->commit_seen) {
        sim_fail(s, 13, "n%d: read index %" PRIu64 " < %" PRIu64 ", committed when the read "
                 "arrived", n->id, r->index, r->commit_seen);
        return;
    }
    /* The read point is the commit index of a leader that had committed an entry of its
     * term, the term the read arrived in (the state may be handed out after the node
     * stepped down: a quorum confirmed it in that term, so it is still a safe point). */
    uint64_t t = 0;
    if (sim_lv_term(&n->mem, r->index, &t) && t != r->term)
        sim_fail(s, 13, "n%d: read index %" PRIu64 " of a read in term %" PRIu64 " is an entry "
                 "of term %" PRIu64 ": no entry of its term was committed", n->id, r->index,
                 r->term, t);
    if (st.term < r->term)
        sim_fail(s, 13, "n%d: read state of term %" PRIu64 " at term %" PRIu64, n->id, r->term,
                 st.term);
}
