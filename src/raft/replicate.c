/*
 * replicate.c - the leader's side of Raft: per-member progress, batched and pipelined
 * appends with flow control, snapshots for followers behind the compacted log, the
 * commit rule (count only entries of the current term), heartbeat rounds (which carry
 * both read-index confirmation and the lease), check-quorum, leadership transfer, and
 * the leader-only actions of raft.h (propose, conf change, read index, lease, reports).
 *
 * Appends are not sent when a proposal is made: proposals only mark the node, and
 * spl__raft_bcast_append() (called by spl_raft_ready()) sends each follower everything
 * new in as few messages as max_size_per_msg and its in-flight window allow.
 */
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

#define ULL(x) ((unsigned long long)(x))

struct spl__progress *spl__raft_progress(struct spl_raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->pr_count; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static bool spl__committed_in_term(const struct spl_raft *r)
{
    return spl__log_term_or0(&r->log, r->log.committed) == r->term;
}

/* ---- quorum views of the progress ---- */

enum spl__pr_field { SPL__PR_MATCH, SPL__PR_ROUND, SPL__PR_LEASE, SPL__PR_ACTIVE };

static uint64_t spl__pr_value(const struct spl_raft *r, const struct spl__progress *pr,
                              enum spl__pr_field f)
{
    bool self = pr->id == r->id;
    switch (f) {
    case SPL__PR_MATCH:
        return pr->match;
    case SPL__PR_ROUND:
        return self ? r->hb_round : pr->acked_round;
    case SPL__PR_LEASE:
        return self ? r->now_tick + 1 : pr->lease_ack;
    default:
        return self || pr->recent_active;
    }
}

/* The value a majority of the voting configuration's voters reached (UINT64_MAX without
 * voters). Members of the progress set that do not vote in it are learners there. */
static uint64_t spl__quorum_of(const struct spl_raft *r, enum spl__pr_field f)
{
    uint64_t vals[SPL_RAFT_PEERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->pr_count; i++)
        if (!r->prs[i].learner)
            vals[n++] = spl__pr_value(r, &r->prs[i], f);
    return spl__quorum_index(vals, n);
}

/* ---- progress set ---- */

/* Insert id into the sorted set ids[0..*n) when it is not there and there is room. */
static void spl__ids_add(uint64_t *ids, uint32_t *n, uint64_t id)
{
    uint32_t i = *n;
    for (uint32_t k = 0; k < *n; k++)
        if (ids[k] == id)
            return;
    if (*n == SPL_RAFT_PEERS_MAX)
        return;
    while (i > 0 && ids[i - 1] > id) {
        ids[i] = ids[i - 1];
        i--;
    }
    ids[i] = id;
    (*n)++;
}

/* The progress set, sorted: every member of the voting configuration, and of the applied
 * one as far as SPL_RAFT_PEERS_MAX allows (a member whose removal is not applied yet still
 * gets the log; it counts for nothing). A leader removing itself is in the applied one. */
static void spl__member_ids(const struct spl_raft *r, uint64_t *ids, uint32_t *n)
{
    const struct spl_raft_conf *confs[2] = {&r->vconf, &r->conf};
    *n = 0;
    for (uint32_t c = 0; c < 2; c++) {
        for (uint32_t i = 0; i < confs[c]->voter_count; i++)
            spl__ids_add(ids, n, confs[c]->voters[i]);
        for (uint32_t i = 0; i < confs[c]->learner_count; i++)
            spl__ids_add(ids, n, confs[c]->learners[i]);
    }
}

/* Rebuild the progress set (spl__member_ids), keeping what we know of remaining members. */
static void spl__rebuild_progress(struct spl_raft *r)
{
    struct spl__progress old[SPL_RAFT_PEERS_MAX];
    uint32_t old_count = r->pr_count;
    memcpy(old, r->prs, sizeof(old[0]) * old_count);
    uint64_t ids[SPL_RAFT_PEERS_MAX];
    uint32_t n;
    spl__member_ids(r, ids, &n);
    uint64_t next = spl__log_last_index(&r->log) + 1;
    for (uint32_t i = 0; i < n; i++) {
        struct spl__progress *pr = &r->prs[i];
        bool found = false;
        for (uint32_t j = 0; j < old_count && !found; j++)
            if ((found = old[j].id == ids[i]))
                *pr = old[j];
        if (!found)
            spl__progress_init(pr, ids[i], next, false, r->cfg.max_inflight_msgs,
                               r->cfg.max_inflight_bytes);
        pr->learner = !spl_raft_conf_is_voter(&r->vconf, ids[i]); /* does not count */
    }
    r->pr_count = n;
}

void spl__leader_init(struct spl_raft *r)
{
    r->pr_count = 0;
    spl__rebuild_progress(r);
    struct spl__progress *self = spl__raft_progress(r, r->id);
    ASSERT(self != NULL);
    uint64_t stable = spl__log_stable_last(&r->log), last = spl__log_last_index(&r->log);
    self->match = stable < last ? stable : last;
    spl__progress_become_replicate(self);
    self->next = last + 1;
    r->hb_round = 0;
    memset(r->hb_tick, 0, sizeof(r->hb_tick));
}

/* ---- appending ---- */

/* Append one entry of this term, taking data's payload; returns its index. */
static uint64_t spl__append_entry(struct spl_raft *r, uint8_t type, struct spl_iobuf *data)
{
    struct spl_raft_entry e = {.term = r->term, .index = spl__log_last_index(&r->log) + 1,
                               .type = type};
    spl_iobuf_init(&e.data);
    spl_iobuf_move(&e.data, data);
    r->uncommitted_bytes += spl_iobuf_len(&e.data);
    spl__raft_append(r, &e, 1); /* a conf entry switches the voting configuration now */
    spl_iobuf_reset(&e.data);
    return e.index;
}

void spl__leader_append_restate(struct spl_raft *r)
{
    /* the latest configuration of the log (a new leader may hold unapplied ones) */
    struct spl_raft_conf_change cc = {.op = SPL_RAFT_CONF_RESTATE, .node_id = SPL_RAFT_NONE,
                                      .conf = r->vconf};
    struct spl_iobuf data;
    spl_iobuf_init(&data);
    int rc = spl_raft_conf_change_encode(&cc, &data);
    ASSERTF(rc == 0, "raft: out of memory encoding a conf change");
    r->pending_conf_index = spl__append_entry(r, SPL_RAFT_ENTRY_CONF, &data);
    spl_iobuf_reset(&data);
}

/* ---- reads ---- */

static void spl__bcast_heartbeat(struct spl_raft *r)
{
    r->hb_round++;
    r->hb_tick[r->hb_round % SPL_RAFT_HB_ROUNDS] = r->now_tick;
    for (uint32_t i = 0; i < r->pr_count; i++) {
        struct spl__progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        struct spl_raft_msg *m = spl__box_push(r, SPL_RAFT_MSG_HEARTBEAT, pr->id);
        m->commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        m->context = r->hb_round;
    }
}

/* Release every read a quorum confirmed. */
static void spl__confirm_reads(struct spl_raft *r)
{
    uint64_t round = spl__quorum_of(r, SPL__PR_ROUND);
    while (r->reads.count > 0) {
        struct spl__read_req *req = spl__readq_at(&r->reads, 0);
        if (req->index == 0 || req->round > round)
            break;
        spl__box_push_read(r, req->context, req->index);
        spl__readq_pop(&r->reads);
    }
}

/* The leader just committed in its term: give waiting reads their index and round. */
static void spl__release_waiting_reads(struct spl_raft *r)
{
    bool any = false;
    for (uint32_t i = 0; i < r->reads.count; i++) {
        struct spl__read_req *req = spl__readq_at(&r->reads, i);
        if (req->index == 0) {
            req->index = r->log.committed;
            req->round = r->hb_round + 1;
            any = true;
        }
    }
    if (any) {
        spl__bcast_heartbeat(r);
        spl__confirm_reads(r);
    }
}

int spl_raft_read_index(struct spl_raft *r, uint64_t context)
{
    if (r->role != SPL_RAFT_LEADER)
        return SPL_ENOTLEADER;
    if (r->lead_transferee != SPL_RAFT_NONE)
        return SPL_ERAFT_TRANSFERRING;
    struct spl__read_req req = {.context = context};
    if (spl__committed_in_term(r)) {
        req.index = r->log.committed;
        req.round = r->hb_round + 1;
    }
    int rc = spl__readq_push(&r->reads, &req);
    if (rc == 0 && req.index != 0) {
        spl__bcast_heartbeat(r);
        spl__confirm_reads(r);
    }
    spl__raft_check_invariants(r);
    return rc;
}

bool spl_raft_lease_valid(const struct spl_raft *r)
{
    if (r->role != SPL_RAFT_LEADER || !r->cfg.lease || r->transfer_tried ||
        r->lead_transferee != SPL_RAFT_NONE || !spl__committed_in_term(r))
        return false;
    uint32_t e = r->cfg.election_tick;
    uint64_t lease_ticks = e - (e / 5 > 1 ? e / 5 : 1);
    uint64_t acked = spl__quorum_of(r, SPL__PR_LEASE); /* 1 + send tick, 0 = none */
    return acked != 0 && acked - 1 + lease_ticks > r->now_tick;
}

/* ---- commit ---- */

bool spl__raft_maybe_commit(struct spl_raft *r)
{
    uint64_t q = spl__quorum_of(r, SPL__PR_MATCH);
    if (q == UINT64_MAX || q <= r->log.committed)
        return false;
    if (spl__log_term_or0(&r->log, q) != r->term)
        return false; /* Raft §5.4.2: only entries of our term commit by counting */
    bool first_in_term = !spl__committed_in_term(r);
    spl__log_commit_to(&r->log, q);
    if (first_in_term)
        spl__release_waiting_reads(r);
    return true;
}

void spl__leader_stable(struct spl_raft *r)
{
    if (r->role != SPL_RAFT_LEADER)
        return;
    struct spl__progress *self = spl__raft_progress(r, r->id);
    uint64_t stable = spl__log_stable_last(&r->log), last = spl__log_last_index(&r->log);
    spl__progress_maybe_update(self, stable < last ? stable : last);
    spl__raft_maybe_commit(r);
}

/* ---- sending ---- */

static bool spl__send_snapshot(struct spl_raft *r, struct spl__progress *pr)
{
    const struct spl_raft_storage *st = r->cfg.storage;
    if (!pr->recent_active) {
        spl__raft_log(r, SPL_LOG_DEBUG, "%llu ignored sending snapshot to %llu: not active",
                      ULL(r->id), ULL(pr->id));
        return false;
    }
    struct spl_raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    spl_iobuf_init(&meta.data);
    int rc = st->ops->snapshot(st->ctx, &meta);
    ASSERTF(rc == 0 || rc == SPL_ERAFT_UNAVAILABLE, "raft storage snapshot failed: %d", rc);
    if (rc != 0 || meta.index == 0) {
        spl__raft_log(r, SPL_LOG_INFO, "%llu failed to send snapshot to %llu: unavailable",
                      ULL(r->id), ULL(pr->id));
        spl_iobuf_reset(&meta.data);
        pr->snap_retry_tick = r->now_tick + 1; /* ask storage again next tick */
        return false;
    }
    struct spl_raft_msg *m = spl__box_push(r, SPL_RAFT_MSG_SNAPSHOT, pr->id);
    m->snapshot.index = meta.index;
    m->snapshot.term = meta.term;
    m->snapshot.epoch = meta.epoch;
    m->snapshot.conf = meta.conf;
    spl_iobuf_move(&m->snapshot.data, &meta.data);
    spl__raft_log(r, SPL_LOG_INFO,
                  "%llu [firstindex: %llu, commit: %llu] sent snapshot[index: %llu, term: %llu] "
                  "to %llu",
                  ULL(r->id), ULL(spl__log_first_index(&r->log)), ULL(r->log.committed),
                  ULL(meta.index), ULL(meta.term), ULL(pr->id));
    spl__progress_become_snapshot(pr, meta.index);
    pr->snapshot_tick = r->now_tick;
    return true;
}

/* Send pr one append (entries from pr->next, or empty when allow_empty); false when
 * nothing was sent. Falls back to a snapshot when the entries are compacted. */
static bool spl__send_append(struct spl_raft *r, struct spl__progress *pr, bool allow_empty)
{
    if (spl__progress_is_paused(pr))
        return false;
    uint64_t last = spl__log_last_index(&r->log), prev = pr->next - 1, prev_term = 0;
    int rc = spl__log_term(&r->log, prev, &prev_term);
    if (rc == SPL_ERAFT_COMPACTED)
        return spl__send_snapshot(r, pr);
    ASSERTF(rc == 0, "term of %llu (last %llu): %d", ULL(prev), ULL(last), rc);
    if (pr->next > last && !allow_empty)
        return false;
    struct spl_raft_entry *ents = spl__box_reserve_entries(r, SPL_RAFT_BATCH_ENTRIES_MAX);
    uint32_t n = 0;
    if (pr->next <= last) {
        rc = spl__log_slice(&r->log, pr->next, last + 1, r->cfg.max_size_per_msg, ents,
                            SPL_RAFT_BATCH_ENTRIES_MAX, &n);
        if (rc == SPL_ERAFT_COMPACTED)
            return spl__send_snapshot(r, pr);
    }
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += spl_iobuf_len(&ents[i].data);
    struct spl_raft_msg *m = spl__box_push(r, SPL_RAFT_MSG_APPEND, pr->id);
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->log.committed;
    pr->commit_sent = r->log.committed;
    pr->append_round = r->hb_round;
    spl__box_commit_entries(r, m, n);
    spl__progress_sent(pr, n > 0 ? prev + n : prev, bytes);
    return true;
}

/* What pr needs now: entries (or a snapshot) it lacks, the commit index, or (probing) a
 * new probe because an answer or a heartbeat unpaused it while it may lack entries. */
static bool spl__needs_send(const struct spl_raft *r, const struct spl__progress *pr,
                            uint64_t last)
{
    if (pr->id == r->id || spl__progress_is_paused(pr))
        return false;
    bool wants = pr->next <= last || pr->commit_sent < r->log.committed ||
                 (pr->state == SPL_RAFT_PROBE && pr->match < last);
    if (wants && pr->next < spl__log_first_index(&r->log)) /* it needs a snapshot */
        return pr->recent_active && r->now_tick >= pr->snap_retry_tick;
    return wants;
}

bool spl__leader_wants_send(const struct spl_raft *r)
{
    if (r->role != SPL_RAFT_LEADER)
        return false;
    uint64_t last = spl__log_last_index(&r->log);
    for (uint32_t i = 0; i < r->pr_count; i++)
        if (spl__needs_send(r, &r->prs[i], last))
            return true;
    return false;
}

void spl__raft_bcast_append(struct spl_raft *r)
{
    if (r->role != SPL_RAFT_LEADER)
        return;
    uint64_t last = spl__log_last_index(&r->log);
    for (uint32_t i = 0; i < r->pr_count; i++) {
        struct spl__progress *pr = &r->prs[i];
        while (spl__needs_send(r, pr, last) && spl__send_append(r, pr, true)) {
            if (pr->state != SPL_RAFT_REPLICATE)
                break;
        }
    }
}

static void spl__send_timeout_now(struct spl_raft *r, uint64_t to)
{
    spl__raft_log(r, SPL_LOG_INFO, "%llu sends TimeoutNow to %llu immediately as %llu already "
                  "has up-to-date log", ULL(r->id), ULL(to), ULL(to));
    spl__box_push(r, SPL_RAFT_MSG_TIMEOUT_NOW, to);
}

/* ---- receiving ---- */

static void spl__handle_append_resp(struct spl_raft *r, struct spl__progress *pr,
                                    const struct spl_raft_msg *m)
{
    pr->recent_active = true;
    if (m->reject) {
        uint64_t hint = m->reject_hint;
        if (m->log_term > 0)
            hint = spl__log_find_conflict_by_term(&r->log, hint, m->log_term);
        if (spl__progress_maybe_decr(pr, m->index, hint)) {
            spl__raft_log(r, SPL_LOG_DEBUG, "%llu decreased progress of %llu to next %llu",
                          ULL(r->id), ULL(pr->id), ULL(pr->next));
            if (pr->state == SPL_RAFT_REPLICATE)
                spl__progress_become_probe(pr);
        }
        return;
    }
    if (spl__progress_maybe_update(pr, m->index)) {
        if (pr->state == SPL_RAFT_PROBE ||
            (pr->state == SPL_RAFT_SNAPSHOT && pr->match >= pr->pending_snapshot))
            spl__progress_become_replicate(pr);
        else if (pr->state == SPL_RAFT_REPLICATE)
            spl__inflights_free_le(&pr->inflights, m->index);
        spl__raft_maybe_commit(r);
    }
    if (pr->id == r->lead_transferee && pr->match == spl__log_last_index(&r->log)) {
        spl__raft_log(r, SPL_LOG_INFO, "%llu sent TimeoutNow to %llu after it caught up",
                      ULL(r->id), ULL(pr->id));
        spl__box_push(r, SPL_RAFT_MSG_TIMEOUT_NOW, pr->id);
    }
}

/* A heartbeat answer (round, follower's last index) shows appends or a snapshot (or the
 * answer to one) lost in flight: go back to probing instead of waiting forever. */
static void spl__detect_lost(struct spl_raft *r, struct spl__progress *pr, uint64_t round,
                             uint64_t last)
{
    if (pr->state == SPL_RAFT_REPLICATE && round > pr->append_round &&
        pr->inflights.count > 0) {
        /* sent after our last append, and appends are still unacknowledged: either they
         * were lost (the follower's log ends before them) or their answers were */
        spl__raft_log(r, SPL_LOG_DEBUG, "%llu lost appends or answers with %llu (last %llu, "
                      "next %llu)", ULL(r->id), ULL(pr->id), ULL(last), ULL(pr->next));
        if (last + 1 < pr->next)
            spl__progress_become_probe(pr);
        else
            spl__progress_probe_at_next(pr);
        return;
    }
    if (pr->state == SPL_RAFT_SNAPSHOT && last >= pr->pending_snapshot) {
        /* it has the snapshot (its answer may have been lost): probe right after it */
        spl__progress_become_probe(pr);
        return;
    }
    bool known = round != 0 && round <= r->hb_round && r->hb_round - round < SPL_RAFT_HB_ROUNDS;
    if (pr->state == SPL_RAFT_SNAPSHOT && known && last < pr->pending_snapshot &&
        r->hb_tick[round % SPL_RAFT_HB_ROUNDS] >= pr->snapshot_tick + r->cfg.election_tick) {
        /* an election timeout after sending it, the follower still has not got it */
        spl__raft_log(r, SPL_LOG_INFO, "%llu snapshot to %llu presumed lost: probing again",
                      ULL(r->id), ULL(pr->id));
        pr->pending_snapshot = 0;
        spl__progress_become_probe(pr);
    }
}

static void spl__handle_heartbeat_resp(struct spl_raft *r, struct spl__progress *pr,
                                       const struct spl_raft_msg *m)
{
    pr->recent_active = true;
    pr->probe_sent = false;
    uint64_t round = m->context;
    spl__detect_lost(r, pr, round, m->index);
    if (round != 0 && round <= r->hb_round && round > pr->acked_round) {
        pr->acked_round = round;
        if (r->hb_round - round < SPL_RAFT_HB_ROUNDS) {
            uint64_t ack = r->hb_tick[round % SPL_RAFT_HB_ROUNDS] + 1;
            pr->lease_ack = ack > pr->lease_ack ? ack : pr->lease_ack;
        }
    }
    spl__confirm_reads(r);
}

void spl__step_leader(struct spl_raft *r, const struct spl_raft_msg *m)
{
    struct spl__progress *pr = spl__raft_progress(r, m->from);
    if (!pr) {
        spl__raft_log(r, SPL_LOG_DEBUG, "%llu no progress available for %llu", ULL(r->id),
                      ULL(m->from));
        return;
    }
    if (m->type == SPL_RAFT_MSG_APPEND_RESP)
        spl__handle_append_resp(r, pr, m);
    else if (m->type == SPL_RAFT_MSG_HEARTBEAT_RESP)
        spl__handle_heartbeat_resp(r, pr, m);
}

/* ---- tick ---- */

static void spl__abort_transfer(struct spl_raft *r, const char *why)
{
    if (r->lead_transferee == SPL_RAFT_NONE)
        return;
    spl__raft_log(r, SPL_LOG_INFO, "%llu aborted leadership transfer to %llu: %s", ULL(r->id),
                  ULL(r->lead_transferee), why);
    r->lead_transferee = SPL_RAFT_NONE;
}

/* Check-quorum: false (and stepped down) when no quorum was heard from recently. */
static bool spl__check_quorum(struct spl_raft *r)
{
    bool ok = spl__quorum_of(r, SPL__PR_ACTIVE) == 1;
    for (uint32_t i = 0; i < r->pr_count; i++)
        if (r->prs[i].id != r->id)
            r->prs[i].recent_active = false;
    if (!ok) {
        spl__raft_log(r, SPL_LOG_WARN, "%llu stepped down to follower since quorum is not active",
                      ULL(r->id));
        spl__raft_become_follower(r, r->term, SPL_RAFT_NONE);
    }
    return ok;
}

void spl__tick_leader(struct spl_raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_tick) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum && !spl__check_quorum(r))
            return;
        spl__abort_transfer(r, "timed out");
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        spl__bcast_heartbeat(r);
    }
}

/* ---- configuration ---- */

void spl__leader_conf_switched(struct spl_raft *r)
{
    /* A leader that removed itself keeps leading (without counting itself) until the
     * removal applies. */
    if (!spl_raft_conf_is_voter(&r->vconf, r->id) && r->vconf_index == 0) {
        spl__raft_log(r, SPL_LOG_INFO, "%llu is no longer a voter: stepping down", ULL(r->id));
        spl__raft_become_follower(r, r->term, SPL_RAFT_NONE);
        return;
    }
    spl__rebuild_progress(r);
    if (r->lead_transferee != SPL_RAFT_NONE &&
        !spl_raft_conf_is_voter(&r->vconf, r->lead_transferee))
        spl__abort_transfer(r, "target left the configuration");
    spl__raft_maybe_commit(r);
    spl__confirm_reads(r);
}

/* ---- actions ---- */

static int spl__can_propose(const struct spl_raft *r, uint64_t len)
{
    if (r->role != SPL_RAFT_LEADER)
        return SPL_ENOTLEADER;
    if (r->lead_transferee != SPL_RAFT_NONE)
        return SPL_ERAFT_TRANSFERRING;
    if (len > SPL_RAFT_ENTRY_MAX)
        return SPL_ETOOBIG;
    if (spl__log_last_index(&r->log) - r->log.committed >= SPL_RAFT_PROPOSALS_MAX)
        return SPL_ERAFT_OVERLOAD;
    uint64_t max = r->cfg.max_uncommitted_bytes;
    if (max != 0 && r->uncommitted_bytes > 0 && r->uncommitted_bytes + len > max)
        return SPL_ERAFT_OVERLOAD;
    return 0;
}

static void spl__out(const struct spl_raft *r, uint64_t index, uint64_t *index_out,
                     uint64_t *term_out)
{
    if (index_out)
        *index_out = index;
    if (term_out)
        *term_out = r->term;
}

int spl_raft_propose(struct spl_raft *r, struct spl_iobuf *data, uint64_t *index_out,
                     uint64_t *term_out)
{
    int rc = spl__can_propose(r, spl_iobuf_len(data));
    if (rc != 0)
        return rc;
    uint64_t index = spl__append_entry(r, SPL_RAFT_ENTRY_NORMAL, data);
    spl__out(r, index, index_out, term_out);
    spl__raft_check_invariants(r);
    return 0;
}

int spl_raft_propose_conf_change(struct spl_raft *r, enum spl_raft_conf_op op,
                                 uint64_t node_id, uint64_t *index_out, uint64_t *term_out)
{
    int rc = spl__can_propose(r, 0);
    if (rc != 0)
        return rc;
    if (op == SPL_RAFT_CONF_RESTATE)
        return SPL_EINVAL_ARG;
    if (r->pending_conf_index > r->log.applying)
        return SPL_ERAFT_CONFCHANGE_PENDING;
    /* every configuration entry of the leader's log is applied: vconf == conf */
    ASSERT(r->vconf_index == 0);
    struct spl_raft_conf_change cc = {.op = (uint8_t)op, .node_id = node_id};
    rc = spl__conf_apply_op(&r->vconf, op, node_id, &cc.conf);
    if (rc != 0)
        return rc;
    struct spl__progress *pr = spl__raft_progress(r, node_id);
    uint64_t last = spl__log_last_index(&r->log);
    if (op == SPL_RAFT_CONF_PROMOTE &&
        (!pr || pr->state != SPL_RAFT_REPLICATE || pr->match + SPL_RAFT_CATCHUP_LAG_MAX < last))
        return SPL_ERAFT_NOTCAUGHTUP;
    struct spl_iobuf data;
    spl_iobuf_init(&data);
    rc = spl_raft_conf_change_encode(&cc, &data);
    if (rc == 0) {
        r->pending_conf_index = spl__append_entry(r, SPL_RAFT_ENTRY_CONF, &data);
        spl__out(r, r->pending_conf_index, index_out, term_out);
    }
    spl_iobuf_reset(&data);
    spl__raft_check_invariants(r);
    return rc;
}

int spl_raft_transfer_leader(struct spl_raft *r, uint64_t to)
{
    if (r->role != SPL_RAFT_LEADER)
        return SPL_ENOTLEADER;
    if (to == r->id || to == r->lead_transferee)
        return 0;
    if (!spl_raft_conf_is_voter(&r->vconf, to))
        return SPL_EINVAL_ARG;
    spl__abort_transfer(r, "replaced by a new transfer");
    struct spl__progress *pr = spl__raft_progress(r, to);
    ASSERT(pr != NULL);
    spl__raft_log(r, SPL_LOG_INFO, "%llu [term %llu] starts to transfer leadership to %llu",
                  ULL(r->id), ULL(r->term), ULL(to));
    r->lead_transferee = to;
    r->transfer_tried = true;
    r->election_elapsed = 0;
    if (pr->match == spl__log_last_index(&r->log))
        spl__send_timeout_now(r, to); /* else: it catches up; see handle_append_resp */
    spl__raft_check_invariants(r);
    return 0;
}

void spl_raft_report_unreachable(struct spl_raft *r, uint64_t to)
{
    struct spl__progress *pr = r->role == SPL_RAFT_LEADER ? spl__raft_progress(r, to) : NULL;
    if (!pr || pr->state != SPL_RAFT_REPLICATE)
        return;
    spl__raft_log(r, SPL_LOG_DEBUG, "%llu failed to send to %llu: probing", ULL(r->id), ULL(to));
    spl__progress_become_probe(pr);
    spl__raft_check_invariants(r);
}

void spl_raft_report_snapshot(struct spl_raft *r, uint64_t to, bool ok)
{
    struct spl__progress *pr = r->role == SPL_RAFT_LEADER ? spl__raft_progress(r, to) : NULL;
    if (!pr || pr->state != SPL_RAFT_SNAPSHOT)
        return;
    spl__raft_log(r, SPL_LOG_INFO, "%llu snapshot to %llu %s: probing from %llu", ULL(r->id),
                  ULL(to), ok ? "succeeded" : "failed",
                  ULL(ok ? pr->pending_snapshot + 1 : pr->match + 1));
    if (!ok)
        pr->pending_snapshot = 0;
    spl__progress_become_probe(pr);
    pr->probe_sent = true; /* wait for the answer or the next heartbeat */
    spl__raft_check_invariants(r);
}

/* ---- status and invariants ---- */

void spl__leader_status(const struct spl_raft *r, struct spl_raft_status *out)
{
    if (r->role != SPL_RAFT_LEADER)
        return;
    out->peer_count = r->pr_count;
    for (uint32_t i = 0; i < r->pr_count; i++) {
        const struct spl__progress *pr = &r->prs[i];
        out->peers[i] = (struct spl_raft_peer_status){
            .id = pr->id, .match = pr->match, .next = pr->next, .state = pr->state,
            .learner = pr->learner, .recent_active = pr->recent_active,
            .inflight = pr->inflights.count, .pending_snapshot = pr->pending_snapshot};
    }
}

void spl__leader_check(const struct spl_raft *r)
{
    uint64_t last = spl__log_last_index(&r->log);
    uint64_t ids[SPL_RAFT_PEERS_MAX];
    uint32_t n;
    spl__member_ids(r, ids, &n);
    ASSERT_CMP(r->pr_count, ==, n);
    for (uint32_t i = 0; i < r->pr_count; i++) {
        const struct spl__progress *pr = &r->prs[i];
        ASSERT_CMP(pr->id, ==, ids[i]);
        ASSERT(pr->learner == !spl_raft_conf_is_voter(&r->vconf, pr->id));
        ASSERTF(pr->match < pr->next && pr->next <= last + 1,
                "progress of %llu: match %llu next %llu last %llu", ULL(pr->id), ULL(pr->match),
                ULL(pr->next), ULL(last));
        ASSERT(pr->state == SPL_RAFT_REPLICATE || pr->inflights.count == 0);
        ASSERT(pr->state == SPL_RAFT_PROBE || !pr->probe_sent);
    }
    ASSERT(spl__raft_progress((struct spl_raft *)r, r->id)->match <=
           spl__log_stable_last(&r->log));
    ASSERT(r->lead_transferee == SPL_RAFT_NONE ||
           spl_raft_conf_is_voter(&r->vconf, r->lead_transferee));
}
