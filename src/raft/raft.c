/*
 * raft.c - the node: lifecycle, roles and terms, elections, message dispatch, the
 * follower's side of replication, and the actions callers start (see raft.h).
 *
 * replicate.c holds the leader's side (progress, appends, commit, heartbeats, reads,
 * lease, transfer); ready.c turns output into readies. Every public entry point ends
 * with spl__raft_check_invariants() (STYLE 5).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

/* ---- logging ---- */

void spl__raft_log(const struct spl_raft *r, enum spl_log_level level, const char *fmt, ...)
{
    if (!r->cfg.log_fn && level < spl_log_get_level())
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (r->cfg.log_fn)
        r->cfg.log_fn(r->cfg.log_ctx, level, buf);
    else
        spl_log_write(level, "raft", "group %llu: %s", (unsigned long long)r->cfg.group, buf);
}

#define ULL(x) ((unsigned long long)(x))

const char *spl_raft_role_name(int role)
{
    static const char *const names[] = {"StateFollower", "StatePreCandidate", "StateCandidate",
                                        "StateLeader"};
    return role >= 0 && role < (int)SPL_ARRAY_SIZE(names) ? names[role] : "?";
}

const char *spl_raft_progress_state_name(int state)
{
    static const char *const names[] = {"StateProbe", "StateReplicate", "StateSnapshot"};
    return state >= 0 && state < (int)SPL_ARRAY_SIZE(names) ? names[state] : "?";
}

/* ---- roles ---- */

/* A voter of the voting configuration (the latest in its log) may campaign. */
static bool spl__promotable(const struct spl_raft *r)
{
    return spl_raft_conf_is_voter(&r->vconf, r->id);
}

/* With check_quorum this node promised the leader it heard within the last election
 * timeout (or, after a restart, may have) not to help elect anyone else: leases rely on
 * it. The promise is counted from the last message of a leader, whatever happened to the
 * term since (lease_elapsed is not reset by a term change); a leader keeps its own
 * check-quorum window. The same test guards (pre)votes for others and our own explicit
 * campaigns. */
static bool spl__in_lease(const struct spl_raft *r)
{
    if (!r->cfg.check_quorum)
        return false;
    if (r->role == SPL_RAFT_LEADER)
        return r->election_elapsed < r->cfg.election_tick;
    return r->lease_held && r->lease_elapsed < r->cfg.election_tick;
}

static void spl__reset_timeout(struct spl_raft *r)
{
    uint32_t e = r->cfg.election_tick;
    r->randomized_timeout = e + (uint32_t)spl_rand_below(r->cfg.rand, e);
}

/* Common part of every role change: new term (vote cleared) or same term. */
static void spl__reset(struct spl_raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = SPL_RAFT_NONE;
        r->transfer_tried = false;
    }
    r->lead = SPL_RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    spl__reset_timeout(r);
    r->lead_transferee = SPL_RAFT_NONE;
    r->vote_count = 0;
    r->pending_conf_index = 0;
    r->uncommitted_bytes = 0;
    r->pr_count = 0;
    spl__readq_clear(&r->reads);
}

void spl__raft_become_follower(struct spl_raft *r, uint64_t term, uint64_t lead)
{
    spl__reset(r, term);
    r->lead = lead;
    r->role = SPL_RAFT_FOLLOWER;
    spl__raft_log(r, SPL_LOG_INFO, "%llu became follower at term %llu", ULL(r->id), ULL(term));
}

static void spl__become_pre_candidate(struct spl_raft *r)
{
    ASSERT(r->role != SPL_RAFT_LEADER);
    /* No reset: a pre-candidate keeps its term and vote. */
    r->vote_count = 0;
    r->lead = SPL_RAFT_NONE;
    r->role = SPL_RAFT_PRE_CANDIDATE;
    spl__raft_log(r, SPL_LOG_INFO, "%llu became pre-candidate at term %llu", ULL(r->id),
                  ULL(r->term));
}

static void spl__become_candidate(struct spl_raft *r)
{
    ASSERT(r->role != SPL_RAFT_LEADER);
    spl__reset(r, r->term + 1);
    r->vote = r->id;
    r->role = SPL_RAFT_CANDIDATE;
    spl__raft_log(r, SPL_LOG_INFO, "%llu became candidate at term %llu", ULL(r->id),
                  ULL(r->term));
}

static void spl__become_leader(struct spl_raft *r)
{
    ASSERT(r->role == SPL_RAFT_CANDIDATE);
    spl__reset(r, r->term);
    r->lead = r->id;
    r->role = SPL_RAFT_LEADER;
    spl__leader_init(r);
    spl__raft_log(r, SPL_LOG_INFO, "%llu became leader at term %llu", ULL(r->id), ULL(r->term));
    spl__leader_append_restate(r);
}

/* ---- configuration ---- */

/* The applied or the voting configuration took a new value (a conf entry appended,
 * truncated or applied, or a snapshot restored). */
static void spl__conf_switched(struct spl_raft *r)
{
    if (r->role == SPL_RAFT_LEADER) {
        spl__leader_conf_switched(r);
        return;
    }
    if (r->role != SPL_RAFT_FOLLOWER && !spl__promotable(r))
        spl__raft_become_follower(r, r->term, SPL_RAFT_NONE);
}

static void spl__fmt_conf(const struct spl_raft_conf *c, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "voters=(");
    for (uint32_t i = 0; i < c->voter_count && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? " " : "", ULL(c->voters[i]));
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, ") learners=(");
    for (uint32_t i = 0; i < c->learner_count && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? " " : "", ULL(c->learners[i]));
    if (n < size)
        snprintf(buf + n, size - n, ")");
}

static void spl__log_conf(const struct spl_raft *r, const char *what, uint64_t index)
{
    char buf[256];
    spl__fmt_conf(&r->conf, buf, sizeof(buf));
    spl__raft_log(r, SPL_LOG_INFO, "%llu %s at index %llu: %s epoch %llu", ULL(r->id), what,
                  ULL(index), buf, ULL(r->epoch));
}

/* The latest decodable configuration entry in log (lo, hi]: 0 when there is none, else
 * its index with its configuration in *out. lo >= applying keeps it cheap (the entries
 * not applied yet). */
static uint64_t spl__scan_conf(const struct spl_raft *r, uint64_t lo, uint64_t hi,
                               struct spl_raft_conf *out)
{
    struct spl_raft_entry buf[32];
    uint64_t found = 0, first = spl__log_first_index(&r->log);
    for (uint64_t i = lo + 1 > first ? lo + 1 : first; i <= hi;) {
        uint32_t n = 0;
        int rc = spl__log_slice(&r->log, i, hi + 1, UINT64_MAX, buf, SPL_ARRAY_SIZE(buf), &n);
        ASSERTF(rc == 0, "reading configuration entries from %llu: %d", ULL(i), rc);
        for (uint32_t k = 0; k < n; k++) {
            struct spl_raft_conf_change cc;
            if (buf[k].type == SPL_RAFT_ENTRY_CONF &&
                spl_raft_conf_change_decode(&buf[k].data, &cc) == 0) {
                *out = cc.conf;
                found = buf[k].index;
            }
            spl_iobuf_reset(&buf[k].data);
        }
        i += n;
    }
    return found;
}

/* Set the voting configuration; tell the roles when its voters or learners changed. */
static void spl__set_vconf(struct spl_raft *r, const struct spl_raft_conf *conf, uint64_t index)
{
    bool changed = !spl__conf_equal(&r->vconf, conf);
    r->vconf = *conf;
    r->vconf_index = index;
    if (!changed)
        return;
    char buf[256];
    spl__fmt_conf(conf, buf, sizeof(buf));
    spl__raft_log(r, SPL_LOG_INFO, "%llu voting configuration %s from index %llu", ULL(r->id),
                  buf, ULL(index ? index : r->log.applying));
    spl__conf_switched(r);
}

/* Recompute the voting configuration from the unapplied part of the log. */
static void spl__rescan_vconf(struct spl_raft *r)
{
    struct spl_raft_conf conf;
    uint64_t index = spl__scan_conf(r, r->log.applying, spl__log_last_index(&r->log), &conf);
    spl__set_vconf(r, index ? &conf : &r->conf, index);
}

void spl__raft_append(struct spl_raft *r, const struct spl_raft_entry *ents, uint32_t n)
{
    if (n == 0)
        return;
    bool truncates = r->vconf_index != 0 && ents[0].index <= r->vconf_index;
    if (ents[0].index <= spl__log_last_index(&r->log))
        spl__box_drop_acks_from(r, ents[0].index);
    spl__log_append(&r->log, ents, n);
    if (truncates) {
        spl__rescan_vconf(r); /* back to the previous configuration entry */
        return;
    }
    for (uint32_t i = n; i-- > 0;) {
        struct spl_raft_conf_change cc;
        if (ents[i].type == SPL_RAFT_ENTRY_CONF &&
            spl_raft_conf_change_decode(&ents[i].data, &cc) == 0) {
            spl__set_vconf(r, &cc.conf, ents[i].index);
            return;
        }
    }
}

void spl__raft_apply_conf_entry(struct spl_raft *r, const struct spl_raft_entry *e)
{
    ASSERT(e->type == SPL_RAFT_ENTRY_CONF);
    struct spl_raft_conf_change cc;
    r->epoch++;
    r->conf_changed = true;
    int rc = spl_raft_conf_change_decode(&e->data, &cc);
    if (rc != 0) {
        spl__raft_log(r, SPL_LOG_ERROR, "%llu bad conf entry at index %llu (%s): unchanged",
                      ULL(r->id), ULL(e->index), spl_errname(rc));
        return;
    }
    bool changed = !spl__conf_equal(&cc.conf, &r->conf);
    r->conf = cc.conf;
    if (r->vconf_index <= e->index) {
        /* the voting configuration's entry applied: both are the same again */
        ASSERT(r->vconf_index != e->index || spl__conf_equal(&r->vconf, &r->conf));
        r->vconf = r->conf;
        r->vconf_index = 0;
    }
    char what[64];
    if (cc.node_id != SPL_RAFT_NONE)
        snprintf(what, sizeof(what), "applied conf %s %llu", spl_raft_conf_op_name(cc.op),
                 ULL(cc.node_id));
    else
        snprintf(what, sizeof(what), "applied conf %s", spl_raft_conf_op_name(cc.op));
    spl__log_conf(r, what, e->index);
    if (changed)
        spl__conf_switched(r);
}

void spl__raft_on_applied(struct spl_raft *r, const struct spl_raft_entry *e)
{
    if (r->role == SPL_RAFT_LEADER) {
        uint64_t len = spl_iobuf_len(&e->data);
        r->uncommitted_bytes -= len < r->uncommitted_bytes ? len : r->uncommitted_bytes;
    }
    if (e->type == SPL_RAFT_ENTRY_CONF)
        spl__raft_apply_conf_entry(r, e);
}

/* ---- elections ---- */

static void spl__send_vote_requests(struct spl_raft *r, uint8_t type, uint64_t term,
                                    bool transfer)
{
    uint64_t last = spl__log_last_index(&r->log), last_term = spl__log_last_term(&r->log);
    for (uint32_t i = 0; i < r->vconf.voter_count; i++) {
        uint64_t to = r->vconf.voters[i];
        if (to == r->id)
            continue;
        struct spl_raft_msg *m = spl__box_push(r, type, to);
        m->term = term;
        m->index = last;
        m->log_term = last_term;
        m->context = transfer ? SPL_RAFT_CTX_TRANSFER : 0;
        spl__raft_log(r, SPL_LOG_INFO,
                      "%llu [logterm: %llu, index: %llu] sent %s request to %llu at term %llu",
                      ULL(r->id), ULL(last_term), ULL(last), spl_raft_msg_type_name(type),
                      ULL(to), ULL(term));
    }
}

/* Record a vote answer and act on the tally. */
static void spl__poll(struct spl_raft *r, uint64_t from, bool granted);

enum spl__campaign_kind {
    SPL__CAMPAIGN_PRE = 0,      /* pre-vote first when enabled */
    SPL__CAMPAIGN_ELECTION = 1, /* a real election (pre-vote won or disabled) */
    SPL__CAMPAIGN_TRANSFER = 2, /* a real election that ignores leases (TimeoutNow) */
};

static void spl__campaign(struct spl_raft *r, enum spl__campaign_kind kind)
{
    bool transfer = kind == SPL__CAMPAIGN_TRANSFER;
    if (!spl__promotable(r)) {
        spl__raft_log(r, SPL_LOG_WARN, "%llu is unpromotable and can not campaign", ULL(r->id));
        return;
    }
    uint8_t type;
    uint64_t term;
    if (r->cfg.pre_vote && kind == SPL__CAMPAIGN_PRE) {
        spl__become_pre_candidate(r);
        type = SPL_RAFT_MSG_PREVOTE;
        term = r->term + 1;
    } else {
        spl__become_candidate(r);
        type = SPL_RAFT_MSG_VOTE;
        term = r->term;
    }
    spl__send_vote_requests(r, type, term, transfer);
    spl__poll(r, r->id, true);
}

static void spl__poll(struct spl_raft *r, uint64_t from, bool granted)
{
    uint32_t yes = 0, no = 0;
    bool seen = false;
    for (uint32_t i = 0; i < r->vote_count; i++)
        seen = seen || r->votes[i].id == from;
    if (!seen && spl_raft_conf_is_voter(&r->vconf, from)) {
        ASSERT_CMP(r->vote_count, <, SPL_RAFT_PEERS_MAX);
        r->votes[r->vote_count++] = (struct spl__vote){.id = from, .granted = granted};
    }
    for (uint32_t i = 0; i < r->vote_count; i++) {
        yes += r->votes[i].granted;
        no += !r->votes[i].granted;
    }
    enum spl__vote_result res = spl__quorum_vote(yes, no, r->vconf.voter_count);
    if (from != r->id)
        spl__raft_log(r, SPL_LOG_INFO, "%llu has received %u %s votes and %u vote rejections",
                      ULL(r->id), yes,
                      r->role == SPL_RAFT_PRE_CANDIDATE ? "PreVote" : "Vote", no);
    if (res == SPL__VOTE_WON && r->role == SPL_RAFT_PRE_CANDIDATE)
        spl__campaign(r, SPL__CAMPAIGN_ELECTION);
    else if (res == SPL__VOTE_WON)
        spl__become_leader(r);
    else if (res == SPL__VOTE_LOST)
        spl__raft_become_follower(r, r->term, SPL_RAFT_NONE);
}

static void spl__handle_vote(struct spl_raft *r, const struct spl_raft_msg *m)
{
    bool pre = m->type == SPL_RAFT_MSG_PREVOTE;
    /* a fresh grant keeps the lease promise even in a term this node learnt from a mere
     * response (its lease then counts from an older leader: FOUND-BUGS 11) */
    bool fresh = (r->vote == SPL_RAFT_NONE && r->lead == SPL_RAFT_NONE) ||
                 (pre && m->term > r->term);
    bool can_vote = r->vote == m->from ||
                    (fresh && (m->context == SPL_RAFT_CTX_TRANSFER || !spl__in_lease(r)));
    bool grant = can_vote && spl__log_up_to_date(&r->log, m->index, m->log_term);
    uint8_t type = pre ? SPL_RAFT_MSG_PREVOTE_RESP : SPL_RAFT_MSG_VOTE_RESP;
    spl__raft_log(r, SPL_LOG_INFO,
                  "%llu [logterm: %llu, index: %llu, vote: %llu] %s %s from %llu [logterm: %llu, "
                  "index: %llu] at term %llu",
                  ULL(r->id), ULL(spl__log_last_term(&r->log)),
                  ULL(spl__log_last_index(&r->log)), ULL(r->vote), grant ? "cast" : "rejected",
                  spl_raft_msg_type_name(m->type), ULL(m->from), ULL(m->log_term),
                  ULL(m->index), ULL(r->term));
    struct spl_raft_msg *resp = spl__box_push(r, type, m->from);
    resp->term = grant ? m->term : r->term;
    resp->reject = !grant;
    if (grant && !pre) {
        r->election_elapsed = 0;
        r->vote = m->from;
    }
}

static void spl__handle_vote_resp(struct spl_raft *r, const struct spl_raft_msg *m)
{
    bool pre = m->type == SPL_RAFT_MSG_PREVOTE_RESP;
    if ((pre && r->role != SPL_RAFT_PRE_CANDIDATE) || (!pre && r->role != SPL_RAFT_CANDIDATE))
        return;
    spl__poll(r, m->from, !m->reject);
}

/* ---- follower side of replication ---- */

static void spl__send_append_resp(struct spl_raft *r, uint64_t to, uint64_t index)
{
    struct spl_raft_msg *resp = spl__box_push(r, SPL_RAFT_MSG_APPEND_RESP, to);
    resp->index = index;
}

static void spl__handle_append(struct spl_raft *r, const struct spl_raft_msg *m)
{
    struct spl__log *l = &r->log;
    if (m->index < l->committed) {
        spl__send_append_resp(r, m->from, l->committed);
        return;
    }
    if (!spl__log_match_term(l, m->index, m->log_term)) {
        uint64_t hint = spl__log_find_conflict_by_term(l, m->index, m->log_term);
        struct spl_raft_msg *resp = spl__box_push(r, SPL_RAFT_MSG_APPEND_RESP, m->from);
        resp->index = m->index;
        resp->reject = true;
        resp->reject_hint = hint;
        resp->log_term = spl__log_term_or0(l, hint);
        spl__raft_log(r, SPL_LOG_DEBUG,
                      "%llu rejected App [logterm: %llu, index: %llu] from %llu: hint %llu",
                      ULL(r->id), ULL(m->log_term), ULL(m->index), ULL(m->from), ULL(hint));
        return;
    }
    uint64_t ci = spl__log_find_conflict(l, m->entries, m->entry_count);
    if (ci != 0) {
        /* m->index >= committed and the entry at m->index matches: a conflict can only be
         * above it, so committed entries are never rewritten. */
        ASSERT_CMP(ci, >, l->committed);
        uint64_t skip = ci - (m->index + 1);
        spl__raft_append(r, m->entries + skip, (uint32_t)(m->entry_count - skip));
    }
    uint64_t last_new = m->index + m->entry_count;
    spl__log_commit_to(l, m->commit < last_new ? m->commit : last_new);
    spl__send_append_resp(r, m->from, last_new);
}

static void spl__handle_heartbeat(struct spl_raft *r, const struct spl_raft_msg *m)
{
    uint64_t last = spl__log_last_index(&r->log);
    spl__log_commit_to(&r->log, m->commit < last ? m->commit : last);
    struct spl_raft_msg *resp = spl__box_push(r, SPL_RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp->context = m->context;
    resp->index = last;
}

/* Install a snapshot that is ahead of our log; false when it is not needed. */
static bool spl__restore(struct spl_raft *r, const struct spl_raft_snapshot_meta *s)
{
    struct spl__log *l = &r->log;
    if (s->index <= l->committed)
        return false;
    if (spl__log_match_term(l, s->index, s->term)) {
        spl__raft_log(r, SPL_LOG_INFO,
                      "%llu [commit: %llu] fast-forwarded commit to snapshot [index: %llu, term: "
                      "%llu]",
                      ULL(r->id), ULL(l->committed), ULL(s->index), ULL(s->term));
        spl__log_commit_to(l, s->index);
        return false;
    }
    spl__box_drop_acks_from(r, l->committed + 1); /* entries above may differ */
    spl__log_restore(l, s);
    /* the log is now the snapshot alone: both configurations are the snapshot's */
    bool changed = !spl__conf_equal(&r->conf, &s->conf) || !spl__conf_equal(&r->vconf, &s->conf);
    r->conf = s->conf;
    r->vconf = s->conf;
    r->vconf_index = 0;
    r->epoch = s->epoch;
    r->conf_changed = true;
    spl__raft_log(r, SPL_LOG_INFO, "%llu restored snapshot [index: %llu, term: %llu]",
                  ULL(r->id), ULL(s->index), ULL(s->term));
    spl__log_conf(r, "switched to snapshot conf", s->index);
    if (changed)
        spl__conf_switched(r);
    return true;
}

static void spl__handle_snapshot(struct spl_raft *r, const struct spl_raft_msg *m)
{
    if (spl__restore(r, &m->snapshot))
        spl__send_append_resp(r, m->from, spl__log_last_index(&r->log));
    else
        spl__send_append_resp(r, m->from, r->log.committed);
}

/* ---- step ---- */

static bool spl__entries_valid(const struct spl_raft_msg *m)
{
    uint64_t prev_term = m->log_term;
    if (m->entry_count > 0 && m->entries == NULL)
        return false;
    if (m->index > UINT64_MAX - m->entry_count - 1 || m->log_term > m->term)
        return false;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct spl_raft_entry *e = &m->entries[i];
        struct spl_raft_conf_change cc;
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term ||
            e->type > SPL_RAFT_ENTRY_CONF)
            return false;
        if (e->type == SPL_RAFT_ENTRY_CONF && spl_raft_conf_change_decode(&e->data, &cc) != 0)
            return false;
        prev_term = e->term;
    }
    return true;
}

static int spl__entries_size_ok(const struct spl_raft_msg *m)
{
    uint64_t bytes = 0;
    if (m->entry_count > SPL_RAFT_BATCH_ENTRIES_MAX)
        return SPL_ETOOBIG;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        uint64_t len = spl_iobuf_len(&m->entries[i].data);
        if (len > SPL_RAFT_ENTRY_MAX)
            return SPL_ETOOBIG;
        bytes += len;
    }
    if (m->entry_count > 1 && bytes > SPL_RAFT_BATCH_BYTES_MAX)
        return SPL_ETOOBIG;
    return 0;
}

static bool spl__snapshot_valid(const struct spl_raft_msg *m)
{
    const struct spl_raft_snapshot_meta *s = &m->snapshot;
    return s->index >= 1 && s->term >= 1 && s->term <= m->term && s->conf.voter_count >= 1 &&
           spl_raft_conf_is_valid(&s->conf) && spl_iobuf_len(&s->data) <= SPL_RAFT_SNAP_DATA_MAX;
}

/* Checks on the message alone: nothing changes when they fail. */
static int spl__validate(const struct spl_raft *r, const struct spl_raft_msg *m)
{
    if (m->group != r->cfg.group)
        return SPL_ERAFT_NOGROUP;
    if (m->to != r->id || m->from == SPL_RAFT_NONE || m->from == r->id || m->term == 0 ||
        spl_raft_msg_type_name(m->type)[0] == '?')
        return SPL_EINVAL_ARG;
    if (m->entry_count > 0 && m->type != SPL_RAFT_MSG_APPEND)
        return SPL_EINVAL_ARG;
    int rc = spl__entries_size_ok(m);
    if (rc != 0)
        return rc;
    if (m->type == SPL_RAFT_MSG_APPEND && !spl__entries_valid(m))
        return SPL_EINVAL_ARG;
    if (m->type == SPL_RAFT_MSG_SNAPSHOT && !spl__snapshot_valid(m))
        return SPL_EINVAL_ARG;
    if ((m->type == SPL_RAFT_MSG_VOTE || m->type == SPL_RAFT_MSG_PREVOTE) && m->log_term > m->term)
        return SPL_EINVAL_ARG;
    return 0;
}

/* Checks against our state for messages of a current or newer term: a legitimate peer
 * never sends these, so they are refused before anything changes. (An append below our
 * commit index needs no check: it is answered with the commit index and not applied.) */
static int spl__validate_against_state(const struct spl_raft *r, const struct spl_raft_msg *m)
{
    const struct spl__log *l = &r->log;
    if (m->term < r->term)
        return 0;
    bool from_leader = m->type == SPL_RAFT_MSG_APPEND || m->type == SPL_RAFT_MSG_HEARTBEAT ||
                       m->type == SPL_RAFT_MSG_SNAPSHOT || m->type == SPL_RAFT_MSG_TIMEOUT_NOW;
    if (from_leader && m->term == r->term && r->role == SPL_RAFT_LEADER) {
        spl__raft_log(r, SPL_LOG_ERROR, "%llu got %s from %llu, another leader of term %llu",
                      ULL(r->id), spl_raft_msg_type_name(m->type), ULL(m->from), ULL(m->term));
        return SPL_EINVAL_ARG;
    }
    if (m->type == SPL_RAFT_MSG_APPEND_RESP && m->term == r->term && !m->reject &&
        m->index > spl__log_last_index(l))
        return SPL_EINVAL_ARG; /* acknowledges entries we never had */
    return 0;
}

/* A message from an older term. Answered when that lets a deposed leader or a stuck
 * pre-candidate learn the current term; never changes our state. */
static int spl__step_stale(struct spl_raft *r, const struct spl_raft_msg *m)
{
    bool leader_msg = m->type == SPL_RAFT_MSG_APPEND || m->type == SPL_RAFT_MSG_HEARTBEAT;
    if ((r->cfg.check_quorum || r->cfg.pre_vote) && leader_msg) {
        spl__box_push(r, SPL_RAFT_MSG_APPEND_RESP, m->from);
    } else if (m->type == SPL_RAFT_MSG_PREVOTE) {
        struct spl_raft_msg *resp = spl__box_push(r, SPL_RAFT_MSG_PREVOTE_RESP, m->from);
        resp->reject = true;
    }
    spl__raft_log(r, SPL_LOG_DEBUG, "%llu [term: %llu] ignored %s from %llu [term: %llu]",
                  ULL(r->id), ULL(r->term), spl_raft_msg_type_name(m->type), ULL(m->from),
                  ULL(m->term));
    return SPL_ERAFT_STALE;
}

/* A message from a newer term. Returns false when it must be ignored (lease). */
static bool spl__step_newer(struct spl_raft *r, const struct spl_raft_msg *m)
{
    bool vote = m->type == SPL_RAFT_MSG_VOTE || m->type == SPL_RAFT_MSG_PREVOTE;
    if (vote && m->context != SPL_RAFT_CTX_TRANSFER && spl__in_lease(r)) {
        spl__raft_log(r, SPL_LOG_INFO,
                      "%llu [logterm: %llu, index: %llu, vote: %llu] ignored %s from %llu "
                      "[logterm: %llu, index: %llu] at term %llu: lease is not expired",
                      ULL(r->id), ULL(spl__log_last_term(&r->log)),
                      ULL(spl__log_last_index(&r->log)), ULL(r->vote),
                      spl_raft_msg_type_name(m->type), ULL(m->from), ULL(m->log_term),
                      ULL(m->index), ULL(r->term));
        return false;
    }
    if (m->type == SPL_RAFT_MSG_PREVOTE ||
        (m->type == SPL_RAFT_MSG_PREVOTE_RESP && !m->reject))
        return true; /* a pre-vote never moves terms */
    spl__raft_log(r, SPL_LOG_INFO, "%llu [term: %llu] received a %s message with higher term "
                  "from %llu [term: %llu]",
                  ULL(r->id), ULL(r->term), spl_raft_msg_type_name(m->type), ULL(m->from),
                  ULL(m->term));
    bool from_leader = m->type == SPL_RAFT_MSG_APPEND || m->type == SPL_RAFT_MSG_HEARTBEAT ||
                       m->type == SPL_RAFT_MSG_SNAPSHOT;
    spl__raft_become_follower(r, m->term, from_leader ? m->from : SPL_RAFT_NONE);
    return true;
}

static void spl__step_follower(struct spl_raft *r, const struct spl_raft_msg *m)
{
    switch (m->type) {
    case SPL_RAFT_MSG_APPEND:
    case SPL_RAFT_MSG_HEARTBEAT:
    case SPL_RAFT_MSG_SNAPSHOT:
        if (r->role != SPL_RAFT_FOLLOWER)
            spl__raft_become_follower(r, m->term, m->from);
        r->election_elapsed = 0;
        r->lead = m->from;
        r->lease_held = true;
        r->lease_elapsed = 0;
        if (m->type == SPL_RAFT_MSG_APPEND)
            spl__handle_append(r, m);
        else if (m->type == SPL_RAFT_MSG_HEARTBEAT)
            spl__handle_heartbeat(r, m);
        else
            spl__handle_snapshot(r, m);
        break;
    case SPL_RAFT_MSG_TIMEOUT_NOW:
        spl__raft_log(r, SPL_LOG_INFO,
                      "%llu [term %llu] received TimeoutNow from %llu and starts an election "
                      "to get leadership",
                      ULL(r->id), ULL(r->term), ULL(m->from));
        spl__campaign(r, SPL__CAMPAIGN_TRANSFER);
        break;
    case SPL_RAFT_MSG_PREVOTE_RESP:
    case SPL_RAFT_MSG_VOTE_RESP:
        spl__handle_vote_resp(r, m);
        break;
    default:
        break; /* responses meant for a leader we no longer are */
    }
}

int spl_raft_step(struct spl_raft *r, const struct spl_raft_msg *m)
{
    int rc = spl__validate(r, m);
    if (rc == 0)
        rc = spl__validate_against_state(r, m);
    if (rc != 0) {
        spl__raft_log(r, SPL_LOG_DEBUG, "%llu dropped %s from %llu: %s", ULL(r->id),
                      spl_raft_msg_type_name(m->type), ULL(m->from), spl_errname(rc));
        return rc;
    }
    if (m->term < r->term)
        rc = spl__step_stale(r, m);
    else if (m->term > r->term && !spl__step_newer(r, m))
        rc = 0;
    else if (m->type == SPL_RAFT_MSG_VOTE || m->type == SPL_RAFT_MSG_PREVOTE)
        spl__handle_vote(r, m);
    else if (r->role == SPL_RAFT_LEADER)
        spl__step_leader(r, m);
    else
        spl__step_follower(r, m);
    spl__raft_check_invariants(r);
    return rc;
}

/* ---- tick ---- */

static void spl__tick_election(struct spl_raft *r)
{
    r->election_elapsed++;
    if (spl__promotable(r) && r->election_elapsed >= r->randomized_timeout) {
        r->election_elapsed = 0;
        spl__campaign(r, SPL__CAMPAIGN_PRE);
    }
}

void spl_raft_tick(struct spl_raft *r)
{
    r->now_tick++;
    if (r->lease_held && ++r->lease_elapsed >= r->cfg.election_tick)
        r->lease_held = false;
    if (r->role == SPL_RAFT_LEADER)
        spl__tick_leader(r);
    else
        spl__tick_election(r);
    spl__raft_check_invariants(r);
}

int spl_raft_campaign(struct spl_raft *r)
{
    if (r->role == SPL_RAFT_LEADER)
        return 0;
    if (!spl__promotable(r))
        return SPL_EINVAL_ARG;
    if (spl__in_lease(r))
        return SPL_ERAFT_LEASE;
    spl__campaign(r, SPL__CAMPAIGN_PRE);
    spl__raft_check_invariants(r);
    return 0;
}

/* ---- lifecycle ---- */

static int spl__config_check(const struct spl_raft_config *c)
{
    const struct spl_raft_storage_ops *o = c->storage ? c->storage->ops : NULL;
    if (c->id == SPL_RAFT_NONE || !c->rand || !o || !o->initial_state || !o->first_index ||
        !o->last_index || !o->term || !o->entries || !o->snapshot)
        return SPL_ECONFIG;
    if (c->election_tick < 2 || c->heartbeat_tick == 0 || c->heartbeat_tick >= c->election_tick)
        return SPL_ECONFIG;
    if (c->election_tick > UINT32_MAX / 2)
        return SPL_ECONFIG;
    if (c->max_inflight_msgs == 0 || c->max_inflight_msgs > SPL_RAFT_INFLIGHT_MSGS_MAX)
        return SPL_ECONFIG;
    if (c->max_size_per_msg > SPL_RAFT_BATCH_BYTES_MAX || (c->lease && !c->check_quorum))
        return SPL_ECONFIG;
    return 0;
}

/* Recompute configuration and epoch as of `applied` from the snapshot and the conf
 * entries after it. */
static void spl__replay_conf(struct spl_raft *r, const struct spl_raft_snapshot_meta *snap,
                             uint64_t applied)
{
    struct spl_raft_entry buf[32];
    r->conf = snap->conf;
    r->vconf = snap->conf;
    r->vconf_index = 0;
    r->epoch = snap->epoch;
    uint64_t lo = snap->index + 1, hi = applied + 1;
    while (lo < hi) {
        uint32_t n = 0;
        int rc = spl__log_slice(&r->log, lo, hi, UINT64_MAX, buf, SPL_ARRAY_SIZE(buf), &n);
        ASSERTF(rc == 0, "replaying the configuration: %d", rc);
        for (uint32_t i = 0; i < n; i++) {
            if (buf[i].type == SPL_RAFT_ENTRY_CONF)
                spl__raft_apply_conf_entry(r, &buf[i]);
            spl_iobuf_reset(&buf[i].data);
        }
        lo += n;
    }
    r->conf_changed = false;
}

/* Read the persisted state; SPL_ECONFIG when it is inconsistent with cfg. */
static int spl__load(struct spl_raft *r)
{
    const struct spl_raft_storage *st = r->cfg.storage;
    struct spl_raft_hard_state hs = {0};
    struct spl_raft_snapshot_meta snap;
    memset(&snap, 0, sizeof(snap));
    spl_iobuf_init(&snap.data);
    int rc = st->ops->initial_state(st->ctx, &hs, &snap);
    spl_iobuf_reset(&snap.data);
    uint64_t first = 0, last = 0;
    if (rc == 0)
        rc = st->ops->first_index(st->ctx, &first);
    if (rc == 0)
        rc = st->ops->last_index(st->ctx, &last);
    if (rc != 0)
        return rc;
    uint64_t applied = r->cfg.applied ? r->cfg.applied : snap.index;
    uint64_t committed = hs.commit > applied ? hs.commit : applied;
    if (!spl_raft_conf_is_valid(&snap.conf) || first == 0 || snap.index + 1 < first ||
        applied < snap.index || applied > last || last + 1 < first)
        return SPL_ECONFIG;
    /* A crash between a ready's entries and its hard state (or a commit hint written
     * ahead of entries) leaves entries of a newer term or a commit beyond the log. Both
     * are safe to take: commit is a hint, and a newer entry term means the lost hard state
     * was (that term, no vote) - a vote is always durable before its answer leaves. */
    spl__log_init(&r->log, st, committed < last ? committed : last, applied);
    uint64_t last_term = spl__log_last_term(&r->log);
    r->term = last_term > hs.term ? last_term : hs.term;
    r->vote = last_term > hs.term ? SPL_RAFT_NONE : hs.vote;
    r->prev_hs = hs;
    spl__replay_conf(r, &snap, applied);
    /* Votes count with the latest configuration of the log, whatever the (lazily
     * persisted) commit hint says about the entries after `applied`. */
    uint64_t vi = spl__scan_conf(r, applied, last, &r->vconf);
    r->vconf_index = vi;
    if (vi == 0)
        r->vconf = r->conf;
    return 0;
}

int spl_raft_init(const struct spl_raft_config *cfg, struct spl_raft **out)
{
    int rc = spl__config_check(cfg);
    if (rc != 0)
        return rc;
    struct spl_raft *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cfg = *cfg;
    if (r->cfg.max_size_per_msg == 0)
        r->cfg.max_size_per_msg = SPL_RAFT_BATCH_BYTES_MAX;
    r->id = cfg->id;
    spl__readq_init(&r->reads);
    spl__box_init(&r->boxes[0]);
    spl__box_init(&r->boxes[1]);
    rc = spl__load(r);
    if (rc != 0) {
        spl_raft_destroy(r);
        return rc == SPL_ECONFIG ? rc : SPL_ECONFIG;
    }
    uint64_t vote = r->vote;
    spl__raft_become_follower(r, r->term, SPL_RAFT_NONE);
    r->vote = vote;
    /* Before the crash this node may have acknowledged a leader whose lease still runs:
     * refuse votes for one election timeout, as if it had just heard from it. A node that
     * never saw a term (a new group) has granted nothing. */
    r->lease_held = r->term > 0;
    r->lease_elapsed = 0;
    r->prev_ss = (struct spl_raft_soft_state){.leader = SPL_RAFT_NONE, .role = r->role};
    spl__raft_check_invariants(r);
    *out = r;
    return 0;
}

void spl_raft_destroy(struct spl_raft *r)
{
    if (!r)
        return;
    spl__log_destroy(&r->log);
    spl__readq_destroy(&r->reads);
    spl__box_destroy(&r->boxes[0]);
    spl__box_destroy(&r->boxes[1]);
    free(r);
}

/* ---- status and invariants ---- */

void spl__raft_hard_state(const struct spl_raft *r, struct spl_raft_hard_state *hs)
{
    hs->term = r->term;
    hs->vote = r->vote;
    hs->commit = r->log.committed;
}

void spl_raft_get_status(const struct spl_raft *r, struct spl_raft_status *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->group = r->cfg.group;
    out->term = r->term;
    out->vote = r->vote;
    out->leader = r->lead;
    out->role = r->role;
    out->learner = spl_raft_conf_is_learner(&r->conf, r->id);
    out->first_index = spl__log_first_index(&r->log);
    out->last_index = spl__log_last_index(&r->log);
    out->commit = r->log.committed;
    out->applied = r->log.applied;
    out->snapshot_index = out->first_index - 1;
    out->epoch = r->epoch;
    out->conf = r->conf;
    out->voting_conf = r->vconf;
    out->voting_conf_index = r->vconf_index;
    out->tick = r->now_tick;
    out->lead_transferee = r->lead_transferee;
    out->pending_conf_index = r->pending_conf_index;
    out->uncommitted_bytes = r->uncommitted_bytes;
    spl__leader_status(r, out);
}

/* The expensive form of the vconf invariant: it is the latest configuration in the log. */
static __attribute__((unused)) bool spl__vconf_is_latest(const struct spl_raft *r)
{
    struct spl_raft_conf conf;
    uint64_t index = spl__scan_conf(r, r->log.applying, spl__log_last_index(&r->log), &conf);
    if (index != r->vconf_index)
        return false;
    return spl__conf_equal(&r->vconf, index ? &conf : &r->conf);
}

void spl__raft_check_invariants(const struct spl_raft *r)
{
    spl__log_check(&r->log);
    ASSERT(spl_raft_conf_is_valid(&r->conf));
    ASSERT(spl_raft_conf_is_valid(&r->vconf));
    if (r->vconf_index == 0) {
        ASSERT(spl__conf_equal(&r->vconf, &r->conf));
    } else {
        ASSERT_CMP(r->vconf_index, >, r->log.applying);
        ASSERT_CMP(r->vconf_index, <=, spl__log_last_index(&r->log));
    }
    DASSERT(spl__vconf_is_latest(r));
    ASSERTF(spl__log_last_term(&r->log) <= r->term, "last log term %llu > term %llu",
            ULL(spl__log_last_term(&r->log)), ULL(r->term));
    ASSERT(r->pending_conf_index <= spl__log_last_index(&r->log));
    switch (r->role) {
    case SPL_RAFT_LEADER:
        ASSERT(r->lead == r->id && r->vote == r->id);
        /* a voter, or a voter about to leave by its own pending removal */
        ASSERT(spl__promotable(r) ||
               (r->vconf_index != 0 && spl_raft_conf_is_voter(&r->conf, r->id)));
        spl__leader_check(r);
        break;
    case SPL_RAFT_CANDIDATE:
        ASSERT(r->vote == r->id && r->lead == SPL_RAFT_NONE);
        break;
    case SPL_RAFT_PRE_CANDIDATE:
        ASSERT(r->lead == SPL_RAFT_NONE);
        break;
    default:
        ASSERT(r->role == SPL_RAFT_FOLLOWER);
        ASSERT(r->lead_transferee == SPL_RAFT_NONE && r->pr_count == 0);
    }
}
