/*
 * raft_int.h - the Raft core's internal parts, shared by the files of src/raft only.
 *
 * progress.c  per-follower replication progress and its in-flight window
 * quorum.c    majority arithmetic (commit index, vote tally, lease and read-index acks)
 * confchange.c configuration validation, changes and their entry payload
 * log.c       the log as the core sees it: durable storage plus the unstable tail
 * readindex.c pending read-index requests
 * msg.c       message wire form
 * raft.c      the protocol state machine; ready.c the ready/advance batches
 * Everything here runs on the node's thread (see raft.h).
 */
#ifndef SPL_RAFT_RAFT_INT_H
#define SPL_RAFT_RAFT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"
#include "raft/raft.h"

/* ---- allocation: the core treats running out of memory as fatal (see README) ---- */
void *spl__raft_xrealloc(void *p, size_t n, size_t size);

/* ---- varints (LEB128), shared by msg.c and confchange.c ---- */
#define SPL__VARINT_MAX 10
/* Write v at p (at least SPL__VARINT_MAX bytes); returns the bytes written. */
size_t spl__varint_put(uint8_t *p, uint64_t v);
/* Read a varint from p[*pos..len); false (pos unchanged) when truncated or over-long. */
bool spl__varint_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *out);

/* ---- in-flight window (progress.c) ---- */
struct spl__inflights {
    uint32_t start;     /* ring position of the oldest append */
    uint32_t count;
    uint32_t cap;       /* <= SPL_RAFT_INFLIGHT_MSGS_MAX */
    uint64_t bytes;
    uint64_t bytes_max; /* 0 = unlimited */
    uint64_t index[SPL_RAFT_INFLIGHT_MSGS_MAX]; /* last index of each append */
    uint64_t size[SPL_RAFT_INFLIGHT_MSGS_MAX];  /* payload bytes of each append */
};

void spl__inflights_init(struct spl__inflights *f, uint32_t cap, uint64_t bytes_max);
void spl__inflights_reset(struct spl__inflights *f);
bool spl__inflights_full(const struct spl__inflights *f);
/* Record an append whose last entry is index (indexes increase). Not when full. */
void spl__inflights_add(struct spl__inflights *f, uint64_t index, uint64_t bytes);
/* Forget every append whose last index is <= index (the follower acknowledged it). */
void spl__inflights_free_le(struct spl__inflights *f, uint64_t index);

/* ---- progress (progress.c) ---- */
struct spl__progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint64_t pending_snapshot;
    uint64_t lease_ack;    /* 1 + the send tick of the newest heartbeat it acked; 0 none */
    uint64_t acked_round;  /* the newest heartbeat round it acked */
    uint64_t commit_sent;  /* the commit index of the last append it was sent */
    uint64_t append_round; /* the heartbeat round current when the last append went out */
    uint64_t snapshot_tick; /* when the pending snapshot was sent (SNAPSHOT state) */
    uint64_t snap_retry_tick; /* no snapshot attempt before this tick (storage had none) */
    uint8_t state;         /* enum spl_raft_progress_state */
    bool learner;
    bool recent_active;
    bool probe_sent;       /* probe state: an append is out, wait for its answer */
    struct spl__inflights inflights;
};

void spl__progress_init(struct spl__progress *pr, uint64_t id, uint64_t next, bool learner,
                        uint32_t inflight_cap, uint64_t inflight_bytes_max);
void spl__progress_become_probe(struct spl__progress *pr);
void spl__progress_become_replicate(struct spl__progress *pr);
/* Replicating, but the acknowledgements stopped: probe at next (not match + 1), so the
 * next answer re-establishes match without resending what the follower already has. */
void spl__progress_probe_at_next(struct spl__progress *pr);
void spl__progress_become_snapshot(struct spl__progress *pr, uint64_t snap_index);
/* The follower acknowledged up to index: true when match moved forward. */
bool spl__progress_maybe_update(struct spl__progress *pr, uint64_t index);
/* The follower rejected the probe at `rejected` hinting `hint`: true when next moved
 * (false: a stale rejection, ignore it). */
bool spl__progress_maybe_decr(struct spl__progress *pr, uint64_t rejected, uint64_t hint);
/* An append with entries up to last (bytes of payload) went out. */
void spl__progress_sent(struct spl__progress *pr, uint64_t last, uint64_t bytes);
/* True when no more appends may be sent now. */
bool spl__progress_is_paused(const struct spl__progress *pr);

/* ---- quorum (quorum.c) ---- */
enum spl__vote_result { SPL__VOTE_PENDING = 0, SPL__VOTE_WON = 1, SPL__VOTE_LOST = 2 };
/* The largest v such that a majority of the n values are >= v (sorts vals in place).
 * n == 0: UINT64_MAX (an empty configuration never limits). */
uint64_t spl__quorum_index(uint64_t *vals, uint32_t n);
enum spl__vote_result spl__quorum_vote(uint32_t granted, uint32_t rejected, uint32_t voters);

/* ---- configuration (confchange.c) ---- */
/* Apply op(node) to cur into out. 0; SPL_EINVAL_ARG; SPL_ETOOBIG. */
int spl__conf_apply_op(const struct spl_raft_conf *cur, enum spl_raft_conf_op op, uint64_t node,
                       struct spl_raft_conf *out);
bool spl__conf_equal(const struct spl_raft_conf *a, const struct spl_raft_conf *b);
/* Wire form of a configuration inside a buffer (conf changes and snapshots). */
size_t spl__conf_put(uint8_t *p, const struct spl_raft_conf *conf);
bool spl__conf_get(const uint8_t *p, size_t len, size_t *pos, struct spl_raft_conf *out);
#define SPL__CONF_WIRE_MAX (2 * SPL__VARINT_MAX * (SPL_RAFT_PEERS_MAX + 1))

/* ---- log (log.c) ---- */
struct spl__log {
    const struct spl_raft_storage *st;
    bool has_snap;                      /* a received snapshot not yet durable */
    struct spl_raft_snapshot_meta snap;
    struct spl_raft_entry *ents;        /* the unstable tail: ents[i].index == offset + i */
    uint64_t count;
    uint64_t cap;
    uint64_t offset;
    uint64_t committed;
    uint64_t applying; /* highest index handed out to apply */
    uint64_t applied;  /* highest index the caller acknowledged as applied */
};

void spl__log_init(struct spl__log *l, const struct spl_raft_storage *st, uint64_t committed,
                   uint64_t applied);
void spl__log_destroy(struct spl__log *l);
uint64_t spl__log_first_index(const struct spl__log *l);
uint64_t spl__log_last_index(const struct spl__log *l);
/* 0; SPL_ERAFT_COMPACTED; SPL_ERAFT_UNAVAILABLE. */
int spl__log_term(const struct spl__log *l, uint64_t index, uint64_t *term_out);
/* The term of index, or 0 when it is compacted or beyond the log. */
uint64_t spl__log_term_or0(const struct spl__log *l, uint64_t index);
uint64_t spl__log_last_term(const struct spl__log *l);
bool spl__log_match_term(const struct spl__log *l, uint64_t index, uint64_t term);
/* True when (index, term) is at least as up to date as our last entry (Raft §5.4.1). */
bool spl__log_up_to_date(const struct spl__log *l, uint64_t index, uint64_t term);
/* The first entry of ents[0..n) that conflicts with or extends our log; 0 if none. */
uint64_t spl__log_find_conflict(const struct spl__log *l, const struct spl_raft_entry *ents,
                                uint32_t n);
/* The largest i <= index with term(i) <= term (first_index - 1 at worst). */
uint64_t spl__log_find_conflict_by_term(const struct spl__log *l, uint64_t index, uint64_t term);
/* Append ents (index ents[0].index may truncate the unstable or durable tail; never at or
 * below committed). Takes references. */
void spl__log_append(struct spl__log *l, const struct spl_raft_entry *ents, uint32_t n);
/* Entries [lo, hi) as references into out (at least one when lo < hi and room).
 * 0; SPL_ERAFT_COMPACTED. */
int spl__log_slice(const struct spl__log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct spl_raft_entry *out, uint32_t cap, uint32_t *count_out);
void spl__log_commit_to(struct spl__log *l, uint64_t index);
void spl__log_restore(struct spl__log *l, const struct spl_raft_snapshot_meta *snap);
void spl__log_stable_to(struct spl__log *l, uint64_t index, uint64_t term);
/* The batch ents[0..n) (one ready's entries) is durable: mark stable its longest prefix
 * that the unstable tail still holds unchanged. */
void spl__log_stable_prefix(struct spl__log *l, const struct spl_raft_entry *ents, uint32_t n);
/* References to every unstable entry into out[0..count). */
void spl__log_copy_unstable(const struct spl__log *l, struct spl_raft_entry *out);
void spl__log_stable_snap_to(struct spl__log *l, uint64_t index);
/* Durable last index (what the node may count for its own quorum). */
uint64_t spl__log_stable_last(const struct spl__log *l);
void spl__log_check(const struct spl__log *l);

/* ---- read index (readindex.c) ---- */
struct spl__read_req {
    uint64_t context;
    uint64_t index; /* commit at request time; 0 while waiting for a commit in term */
    uint64_t round; /* heartbeat round that must be acknowledged by a quorum */
};
struct spl__readq {
    struct spl__read_req *v;
    uint32_t head;
    uint32_t count;
    uint32_t cap;
};
void spl__readq_init(struct spl__readq *q);
void spl__readq_destroy(struct spl__readq *q);
void spl__readq_clear(struct spl__readq *q);
/* 0; SPL_ERAFT_OVERLOAD (SPL_RAFT_READS_MAX pending). */
int spl__readq_push(struct spl__readq *q, const struct spl__read_req *req);
struct spl__read_req *spl__readq_at(struct spl__readq *q, uint32_t i);
void spl__readq_pop(struct spl__readq *q);

/* ---- outbox and ready buffers (ready.c) ---- */
struct spl__box {
    struct spl_raft_msg *msgs;
    bool *early;
    uint32_t *ent_off;
    uint32_t msg_count;
    uint32_t msg_cap;
    struct spl_raft_entry *ents; /* entries of messages (ent_off[i] into this) */
    uint32_t ent_count;
    uint32_t ent_cap;
    struct spl_raft_read_state *reads;
    uint32_t read_count;
    uint32_t read_cap;
    /* filled when handed out */
    struct spl_raft_msg *sorted; /* early ones first; msg_cap of them */
    struct spl_raft_entry *persist;
    uint32_t persist_count;
    uint32_t persist_cap;
    struct spl_raft_entry *committed;
    uint32_t committed_count;
    uint32_t committed_cap;
    bool has_snap;
    struct spl_raft_snapshot_meta snap;
};

/* ---- the node ---- */
struct spl__vote {
    uint64_t id;
    bool granted;
};

struct spl_raft {
    struct spl_raft_config cfg;
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t lead;
    uint8_t role;
    struct spl__log log;
    /* Two configurations (see raft.h, "Membership"): `conf` is the applied one (what the
     * state machine sees, with the epoch); `vconf` is the voting one, produced by the
     * latest configuration entry in the log, committed or not. Every quorum (votes,
     * pre-votes, commit, check-quorum, lease and read-index acknowledgements) counts the
     * voters of vconf. vconf_index is the index of that entry while it is not applied
     * (> log.applying); 0 when vconf == conf. */
    struct spl_raft_conf conf;
    struct spl_raft_conf vconf;
    uint64_t vconf_index;
    uint64_t epoch;
    bool conf_changed;
    struct spl__progress prs[SPL_RAFT_PEERS_MAX]; /* leader: members, self included */
    uint32_t pr_count;
    struct spl__vote votes[SPL_RAFT_PEERS_MAX];   /* (pre-)candidate: answers so far */
    uint32_t vote_count;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t randomized_timeout;
    uint64_t now_tick;
    uint64_t lead_transferee;
    bool transfer_tried;       /* a transfer started in this term: no more lease */
    /* The promise behind leader leases (check_quorum): ticks since this node last heard
     * from a leader, kept across term changes (a newer term learnt from a response, not
     * from a leader, must not free it to vote: FOUND-BUGS 11) and set at a restart. */
    bool lease_held;
    uint32_t lease_elapsed;
    uint64_t pending_conf_index;
    uint64_t uncommitted_bytes;
    uint64_t hb_round;
    uint64_t hb_tick[SPL_RAFT_HB_ROUNDS]; /* send tick of round r at r % ROUNDS */
    struct spl__readq reads;
    struct spl__box boxes[2];
    uint32_t box;              /* boxes[box] collects output; the other is handed out */
    bool ready_out;            /* a ready is handed out, advance() pending */
    struct spl_raft_hard_state prev_hs;
    struct spl_raft_soft_state prev_ss;
};

/* raft.c internals */
void spl__raft_become_follower(struct spl_raft *r, uint64_t term, uint64_t lead);
/* Append ents to the log (spl__log_append's rules) and keep the voting configuration
 * in step: a configuration entry among ents takes effect at once; a truncated one is
 * rolled back to the previous configuration entry of the log (or the applied
 * configuration). Every append of the core goes through here. */
void spl__raft_append(struct spl_raft *r, const struct spl_raft_entry *ents, uint32_t n);

/* replicate.c: the leader's side */
void spl__leader_init(struct spl_raft *r);
void spl__leader_append_restate(struct spl_raft *r);
void spl__leader_conf_switched(struct spl_raft *r);
void spl__step_leader(struct spl_raft *r, const struct spl_raft_msg *m);
void spl__tick_leader(struct spl_raft *r);
void spl__leader_status(const struct spl_raft *r, struct spl_raft_status *out);
void spl__leader_check(const struct spl_raft *r);
/* True when spl__raft_bcast_append() would send something: entries (or a snapshot) a
 * follower lacks, or a commit index it was not yet told, to every follower not paused. */
bool spl__leader_wants_send(const struct spl_raft *r);
/* After the node's own entries up to its stable index became durable. */
void spl__leader_stable(struct spl_raft *r);

/* raft.c internals used by ready.c */
void spl__raft_log(const struct spl_raft *r, enum spl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct spl__progress *spl__raft_progress(struct spl_raft *r, uint64_t id);
void spl__raft_bcast_append(struct spl_raft *r);
bool spl__raft_maybe_commit(struct spl_raft *r);
void spl__raft_apply_conf_entry(struct spl_raft *r, const struct spl_raft_entry *e);
void spl__raft_check_invariants(const struct spl_raft *r);
void spl__raft_hard_state(const struct spl_raft *r, struct spl_raft_hard_state *hs);
void spl__raft_on_applied(struct spl_raft *r, const struct spl_raft_entry *e);

/* ready.c: the outbox */
void spl__box_init(struct spl__box *b);
void spl__box_destroy(struct spl__box *b);
void spl__box_release(struct spl__box *b);
/* A new message in the collecting box with room for up to ent_cap entries; the caller
 * fills it (and the entries via spl__box_msg_entries, then spl__box_set_entries). */
struct spl_raft_msg *spl__box_push(struct spl_raft *r, uint8_t type, uint64_t to);
struct spl_raft_entry *spl__box_reserve_entries(struct spl_raft *r, uint32_t n);
void spl__box_commit_entries(struct spl_raft *r, struct spl_raft_msg *m, uint32_t n);
void spl__box_push_read(struct spl_raft *r, uint64_t context, uint64_t index);
/* Drop the collecting box's accepting APPEND_RESPs for index or above: the entries they
 * acknowledge are being replaced (a conflicting append, a snapshot), and they would go
 * out only after the replacement is durable, claiming entries the log no longer holds
 * (FOUND-BUGS 10). Answers already handed out left with their own, earlier ready. */
void spl__box_drop_acks_from(struct spl_raft *r, uint64_t index);

#endif
