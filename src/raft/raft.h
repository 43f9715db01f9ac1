/*
 * raft.h - the pure Raft core: one replica of one Raft group as a state machine.
 *
 * What it owns: the protocol state of one replica (term, vote, role, the in-memory tail
 * of the log that is not yet durable, commit and applied indexes, the membership and its
 * epoch, per-follower replication progress, pending read-index requests, the lease).
 * What it leaves to its caller: all I/O, time and threads. Input comes through
 * spl_raft_tick() (the core's only clock: one call = one tick), spl_raft_step() (a
 * message from a peer), spl_raft_propose*() and the other actions; output is a "ready"
 * batch (entries and hard state to persist, messages to send, committed entries to
 * apply, a snapshot to install, read states) that the caller executes and acknowledges
 * with spl_raft_advance(). Durable log storage is read through `struct spl_raft_storage`
 * (src/raftlog implements it; memstorage.h is an in-memory one for tests); the transport
 * carries `struct spl_raft_msg` (spl_raft_msg_encode/decode give its wire form).
 *
 * Threads: a node is single-threaded and owned by its caller; no function here blocks,
 * sleeps, or calls back into the caller except the storage methods and the optional log
 * callback, both synchronously from the calling thread. Different nodes are independent.
 * Randomness comes only from the caller's `struct spl_rand`, so a seeded caller gets a
 * fully deterministic node.
 *
 * The caller's loop (the "ready/advance contract"):
 *
 *     spl_raft_tick(r) every tick;  spl_raft_step(r, &msg) for every message received;
 *     if (spl_raft_has_ready(r)) {
 *         struct spl_raft_ready rd;
 *         spl_raft_ready(r, &rd);
 *         send rd.msgs_early[]                        (may go before step 1 finishes)
 *         1. persist: rd.snapshot (if any), then rd.entries (drop every stored entry with
 *            index >= rd.entries[0].index first), then rd.hard_state (if has_hard_state);
 *            fsync once when rd.must_sync. (A crash between these writes is tolerated:
 *            spl_raft_init() accepts entries newer than the hard state's term.)
 *         2. send rd.msgs[]                           (only after step 1 is durable)
 *         3. install rd.snapshot into the state machine (if any), then apply
 *            rd.committed[] in order; serve rd.read_states[] once applied >= their index.
 *         spl_raft_advance(r, &rd);
 *     }
 *
 * Between spl_raft_ready() and spl_raft_advance() the caller may keep calling tick, step
 * and the actions (the ready's content does not change; new output goes to the next
 * ready), but must not call spl_raft_ready() again. Every message in rd.msgs depends on
 * state of the same ready (a vote on the persisted vote, an append response on the
 * persisted entries): sending it earlier breaks Raft (RAFT-INVARIANTS 2, 14).
 * rd.msgs_early holds the leader's replication messages (append, heartbeat, snapshot,
 * timeout-now), which depend on nothing local being durable: the leader counts itself
 * towards a quorum only for entries it persisted, so sending them in parallel with its
 * own fsync is safe (Raft thesis 10.2.1). When the ready changes term or vote, every
 * message is in rd.msgs.
 *
 * Epoch (DESIGN §1): the group's configuration version. It increases by exactly one for
 * each configuration entry that is applied, so epoch(i) = snapshot.epoch + the number of
 * configuration entries in (snapshot.index, i] and is the same for the same index on
 * every replica. Every new leader's first entry is a configuration entry that re-states
 * the latest configuration of its log (SPL_RAFT_CONF_RESTATE) instead of a bare no-op:
 * it commits the leader's term (the read-index and one-change-at-a-time rules need that)
 * and makes every leader change that commits bump the epoch too. The epoch is part of
 * applied state: reported in the ready and status, and persisted with snapshots.
 *
 * Membership: voters and learners (learners receive the log but do not vote or count).
 * A change is one entry that carries the complete resulting configuration (one member
 * added, promoted or removed, so the majorities of consecutive configurations overlap).
 * A replica has two configurations:
 *  - the voting configuration is the one of the latest configuration entry in its log,
 *    committed or not (Raft dissertation §4.1). It takes effect when the entry is
 *    appended, and is rolled back to the previous configuration entry of the log (or the
 *    applied configuration) when a conflicting append truncates that entry. Every quorum
 *    counts its voters: votes and pre-votes (who campaigns, who is asked, who counts),
 *    commit, check-quorum, lease and read-index acknowledgements; the leader replicates to
 *    its members (and to members of the applied configuration not yet removed there).
 *  - the applied configuration (status.conf, rd.conf) and the epoch change when the
 *    entry is applied (handed out in a ready): the state machine's view.
 * The voting configuration needs nothing persisted: it is recomputed from the log after
 * a restart, so a stale commit hint (commit is persisted lazily) cannot make a replica
 * count votes with a configuration older than its log, whose majorities could be disjoint
 * from the group's real one (FOUND-BUGS 9). A leader accepts a change only when every
 * configuration entry of its log is applied, its own re-statement included (so the
 * previous change is committed and the leader committed an entry of its term); a leader
 * that removes itself keeps leading without counting itself until the removal applies.
 */
#ifndef SPL_RAFT_RAFT_H
#define SPL_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/random.h"

/* Node and group ids are u64; 0 is "none" (no vote, no known leader). Terms and log
 * indexes are u64; index 0 / term 0 is the empty log's sentinel. */
#define SPL_RAFT_NONE 0ull

/* ------------------------------------------------------------------------------------ */
/* Log entries                                                                           */

enum spl_raft_entry_type {
    SPL_RAFT_ENTRY_NORMAL = 0, /* the application's payload (may be empty) */
    SPL_RAFT_ENTRY_CONF = 1,   /* a membership change: data is an encoded conf change */
};

/* One log entry. `data` holds references to the payload's blocks: copying the struct
 * copies nothing, but whoever holds a `struct spl_raft_entry` owns the references in
 * `data` and must spl_iobuf_reset() it (or take more with spl_iobuf_append_ref()). */
struct spl_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum spl_raft_entry_type */
    struct spl_iobuf data;
};

/* ------------------------------------------------------------------------------------ */
/* Membership                                                                            */

/* A configuration: voters and learners, disjoint, each list sorted ascending, ids != 0,
 * voter_count + learner_count <= SPL_RAFT_PEERS_MAX. An empty configuration (no voters)
 * is the state of a replica that has not yet received its group's log or snapshot. */
struct spl_raft_conf {
    uint32_t voter_count;
    uint32_t learner_count;
    uint64_t voters[SPL_RAFT_PEERS_MAX];
    uint64_t learners[SPL_RAFT_PEERS_MAX];
};

#define SPL_RAFT_CONF_OPS(XX)                                                            \
    XX(ADD_VOTER, 1, "add-voter")         /* add a new voter directly (no catch-up) */   \
    XX(ADD_LEARNER, 2, "add-learner")     /* add a new learner */                        \
    XX(PROMOTE, 3, "promote")             /* learner -> voter, once it caught up */      \
    XX(REMOVE, 4, "remove")               /* remove a voter or learner */                \
    XX(RESTATE, 5, "restate")             /* no change: a new leader's first entry */

enum spl_raft_conf_op {
#define XX(name, code, str) SPL_RAFT_CONF_##name = code,
    SPL_RAFT_CONF_OPS(XX)
#undef XX
};

/* The payload of an SPL_RAFT_ENTRY_CONF entry: the change and the whole configuration
 * that results from it (so a replica replaying the log from index 1 needs nothing else). */
struct spl_raft_conf_change {
    uint8_t op;       /* enum spl_raft_conf_op */
    uint64_t node_id; /* the node changed; SPL_RAFT_NONE for RESTATE */
    struct spl_raft_conf conf; /* the configuration after the change */
};

/* spl_raft_conf_is_valid - true when conf satisfies the rules above (sorted, disjoint,
 * no zero id, within SPL_RAFT_PEERS_MAX). */
bool spl_raft_conf_is_valid(const struct spl_raft_conf *conf);
bool spl_raft_conf_is_voter(const struct spl_raft_conf *conf, uint64_t id);
bool spl_raft_conf_is_learner(const struct spl_raft_conf *conf, uint64_t id);

/* spl_raft_conf_change_encode - append cc's wire form to out. 0, or -ENOMEM. */
int spl_raft_conf_change_encode(const struct spl_raft_conf_change *cc, struct spl_iobuf *out);
/* spl_raft_conf_change_decode - parse and validate a conf entry's payload.
 * 0; SPL_ECORRUPT (malformed, invalid configuration, trailing bytes); SPL_EVERSION. */
int spl_raft_conf_change_decode(const struct spl_iobuf *data, struct spl_raft_conf_change *out);

/* ------------------------------------------------------------------------------------ */
/* Snapshots and hard state                                                              */

/* What a snapshot is: the applied state as of (index, term), with the configuration and
 * epoch at that index, plus an opaque application part (for a copyset, its lightweight
 * snapshot: the chunk list; DESIGN §4). `data` holds references (see spl_raft_entry). */
struct spl_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    uint64_t epoch;
    struct spl_raft_conf conf;
    struct spl_iobuf data; /* <= SPL_RAFT_SNAP_DATA_MAX bytes */
};

/* The state that must be durable before any message of the same ready is sent. */
struct spl_raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* whom this node voted for in `term`; SPL_RAFT_NONE */
    uint64_t commit; /* a hint: commit may be persisted lazily; it never decreases */
};

/* ------------------------------------------------------------------------------------ */
/* Storage: what the core reads of the durable log                                       */

/*
 * The caller's durable log as the core sees it (like etcd's Storage). The core keeps the
 * not-yet-durable tail itself and hands it out in readies; the caller appends those to
 * storage, so that after advance() storage holds them. Storage holds a prefix-compacted
 * log: entries [first_index, last_index], the term of entry first_index - 1 (the
 * compaction point), and the latest snapshot, which covers at least the compacted prefix
 * (snapshot index >= first_index - 1; keeping entries the snapshot covers is fine, e.g.
 * for slow followers). All methods are called synchronously from the node's thread, must
 * not call back into the node, and return 0 or:
 *   SPL_ERAFT_COMPACTED   the index is below first_index - 1 (it is in the snapshot)
 *   SPL_ERAFT_UNAVAILABLE the index is above last_index, or (snapshot()) a snapshot is
 *                         being made and the core should ask again later
 * Any other failure (EIO on the log device) is not survivable by the core, which
 * asserts: a storage that cannot read its log must stop the process (RAFT-INVARIANTS 24).
 */
struct spl_raft_storage_ops {
    /* The persisted hard state and the latest snapshot's metadata; snap->data is left
     * empty (the core never needs the application part at start). A brand-new member of
     * an existing group returns a zero hard state and a zero snapshot (empty conf). A
     * founding member of a new group returns snapshot {index 0, term 0, epoch 0, conf =
     * the initial voters} (see spl_raft_memstorage_bootstrap()). */
    int (*initial_state)(void *ctx, struct spl_raft_hard_state *hs,
                         struct spl_raft_snapshot_meta *snap);
    /* The index of the first entry still stored (compaction point + 1). */
    int (*first_index)(void *ctx, uint64_t *index_out);
    /* The index of the last entry stored (first_index - 1 when none is). */
    int (*last_index)(void *ctx, uint64_t *index_out);
    /* The term of entry `index`, for first_index - 1 <= index <= last_index. */
    int (*term)(void *ctx, uint64_t index, uint64_t *term_out);
    /* Entries [lo, hi) with first_index <= lo < hi <= last_index + 1: fill out[0..n) with
     * n <= out_cap, stopping before the entry that would take the payload total over
     * max_bytes, but always at least one. The caller owns the references in out[i].data. */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct spl_raft_entry *out, uint32_t out_cap, uint32_t *count_out);
    /* The latest snapshot, data included (by reference: the caller resets out->data). */
    int (*snapshot)(void *ctx, struct spl_raft_snapshot_meta *out);
};

struct spl_raft_storage {
    const struct spl_raft_storage_ops *ops;
    void *ctx;
};

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                              */

/* Message types (wire codes are stable). Fields of spl_raft_msg by type:
 *  PREVOTE/VOTE         term (for a pre-vote: the term the sender would campaign at),
 *                       index/log_term = the candidate's last entry, context =
 *                       SPL_RAFT_CTX_TRANSFER when campaigning for a leadership transfer
 *  PREVOTE_RESP/VOTE_RESP  term, reject
 *  APPEND               index/log_term = the entry before `entries` (the probe point),
 *                       entries (index+1, index+2, ...), commit
 *  APPEND_RESP          accept: index = the last index now known to match; reject:
 *                       index = the rejected probe index, reject_hint/log_term = the
 *                       follower's best guess (hint index and its term) for fast backtracking
 *  HEARTBEAT            commit (min of leader commit and the follower's match), context =
 *                       the leader's heartbeat round (read-index and lease acks)
 *  HEARTBEAT_RESP       context echoed, index = the follower's last index (a leader that
 *                       sees appends lost in flight goes back to probing)
 *  SNAPSHOT             snapshot (meta + application data)
 *  TIMEOUT_NOW          leader -> transfer target: campaign now, ignoring leases
 */
#define SPL_RAFT_MSG_TYPES(XX)                                                           \
    XX(PREVOTE, 1, "PreVote")                                                            \
    XX(PREVOTE_RESP, 2, "PreVoteResp")                                                   \
    XX(VOTE, 3, "Vote")                                                                  \
    XX(VOTE_RESP, 4, "VoteResp")                                                         \
    XX(APPEND, 5, "App")                                                                 \
    XX(APPEND_RESP, 6, "AppResp")                                                        \
    XX(HEARTBEAT, 7, "Heartbeat")                                                        \
    XX(HEARTBEAT_RESP, 8, "HeartbeatResp")                                               \
    XX(SNAPSHOT, 9, "Snap")                                                              \
    XX(TIMEOUT_NOW, 10, "TimeoutNow")

enum spl_raft_msg_type {
#define XX(name, code, str) SPL_RAFT_MSG_##name = code,
    SPL_RAFT_MSG_TYPES(XX)
#undef XX
};

/* context of a (PRE)VOTE sent because of TIMEOUT_NOW: voters grant it even while they
 * still hear from the old leader. */
#define SPL_RAFT_CTX_TRANSFER 1ull

/*
 * One Raft message of one group. Plain data: the transport may copy the struct.
 * Ownership: messages in a ready belong to the node until advance() (the transport
 * encodes or copies what it needs before that); a message given to spl_raft_step()
 * stays the caller's (the node takes its own references to entry payloads it keeps).
 */
struct spl_raft_msg {
    uint8_t type; /* enum spl_raft_msg_type */
    bool reject;
    uint32_t entry_count; /* <= SPL_RAFT_BATCH_ENTRIES_MAX */
    uint64_t group;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t reject_hint;
    uint64_t context;
    struct spl_raft_entry *entries;         /* entry_count of them (APPEND only) */
    struct spl_raft_snapshot_meta snapshot; /* SNAPSHOT only */
};

/* spl_raft_msg_init - zero m (entries NULL, snapshot data empty). */
void spl_raft_msg_init(struct spl_raft_msg *m);
/* spl_raft_msg_release - drop the payload references a decoded message holds (entries'
 * data and snapshot data); the entries array itself stays the caller's. */
void spl_raft_msg_release(struct spl_raft_msg *m);

/*
 * Wire form (version 1): u8 version, u8 type, u8 flags (bit 0: reject), then LEB128
 * varints group, from, to, term, log_term, index, commit, reject_hint, context,
 * entry_count; each entry: u8 type, varint term, varint length, bytes (its index is
 * index + 1 + i, so contiguity holds by construction); for SNAPSHOT: varints index,
 * term, epoch, voter_count, voters, learner_count, learners, data length, bytes; then a
 * CRC32C (u32 little endian) of everything before it.
 */

/* spl_raft_msg_encode - append m's wire form to out. Payloads are shared, not copied.
 * 0; -ENOMEM (out unchanged); SPL_ETOOBIG when m breaks a limit decode enforces. */
int spl_raft_msg_encode(const struct spl_raft_msg *m, struct spl_iobuf *out);

/* spl_raft_msg_decode - parse exactly one encoded message from `in` into out, using
 * entries_buf[0..entries_cap) for the entries (entries_cap >= SPL_RAFT_BATCH_ENTRIES_MAX
 * accepts every valid message). Entry and snapshot payloads reference `in`'s blocks (no
 * copy); release them with spl_raft_msg_release(). Validates everything: lengths,
 * version, checksum, type, counts and sizes against limits, index arithmetic (no
 * overflow), entry types, conf-entry payloads, snapshot configuration; never reads past
 * the input. On error out holds no references.
 * 0; SPL_ECORRUPT (malformed or checksum mismatch); SPL_EVERSION; SPL_ETOOBIG (a count
 * or size over a limit or over entries_cap); -ENOMEM. */
int spl_raft_msg_decode(const struct spl_iobuf *in, struct spl_raft_msg *out,
                        struct spl_raft_entry *entries_buf, uint32_t entries_cap);

/* spl_raft_msg_decode_bytes - spl_raft_msg_decode() of a flat buffer (copied once). */
int spl_raft_msg_decode_bytes(const void *data, size_t len, struct spl_raft_msg *out,
                              struct spl_raft_entry *entries_buf, uint32_t entries_cap);

/* Names for logs and tests ("App", "add-voter", "StateLeader"); "?" for unknown values. */
const char *spl_raft_msg_type_name(int type);
const char *spl_raft_conf_op_name(int op);

/* ------------------------------------------------------------------------------------ */
/* Node                                                                                  */

enum spl_raft_role {
    SPL_RAFT_FOLLOWER = 0, /* learners are followers too (status.is_learner) */
    SPL_RAFT_PRE_CANDIDATE = 1,
    SPL_RAFT_CANDIDATE = 2,
    SPL_RAFT_LEADER = 3,
};
const char *spl_raft_role_name(int role);

/* Optional log sink (tests capture the core's lines; NULL logs through base/log.h with
 * tag "raft"). Called synchronously; msg has no trailing newline. */
typedef void (*spl_raft_log_fn)(void *ctx, enum spl_log_level level, const char *msg);

struct spl_raft_config {
    uint64_t id;    /* this replica's node id, != 0 */
    uint64_t group; /* the group id every message must carry */
    /* Ticks without hearing from a leader before a follower campaigns; the actual timeout
     * is drawn uniformly from [election_tick, 2 * election_tick) each time. A leader that
     * cannot reach a quorum for election_tick ticks steps down (check_quorum). */
    uint32_t election_tick;
    uint32_t heartbeat_tick;  /* leader heartbeat period, < election_tick */
    bool pre_vote;            /* run a pre-vote before disrupting the group with a term */
    bool check_quorum;        /* leader steps down without a quorum; followers that hear a
                                 leader ignore (pre)votes for an election timeout */
    bool lease;               /* leader lease reads (needs check_quorum), see lease_valid */
    uint32_t max_inflight_msgs;  /* appends in flight per follower, 1..INFLIGHT_MSGS_MAX */
    uint64_t max_inflight_bytes; /* payload bytes in flight per follower; 0 = unlimited */
    uint64_t max_size_per_msg;   /* payload bytes per append (one entry always fits);
                                    0 = SPL_RAFT_BATCH_BYTES_MAX */
    uint64_t max_uncommitted_bytes; /* leader refuses proposals over this; 0 = unlimited */
    uint64_t applied;         /* on restart: the index the state machine has applied
                                 (>= the snapshot index, <= the persisted commit); 0 = the
                                 snapshot index */
    struct spl_rand *rand;    /* the caller's generator (randomized election timeouts) */
    const struct spl_raft_storage *storage; /* read-only view of the durable log */
    spl_raft_log_fn log_fn;   /* optional, see above */
    void *log_ctx;
};

/* The opaque node. */
struct spl_raft;

/* spl_raft_init - create a node from cfg and the state in cfg->storage. The node starts
 * as a follower of cfg->storage's persisted term, with the configuration and epoch as of
 * `applied` (recomputed from the snapshot and the configuration entries after it).
 * cfg->rand and cfg->storage must outlive the node. 0; SPL_ECONFIG (cfg breaks a rule
 * above, or storage's state is inconsistent with applied); -ENOMEM. */
int spl_raft_init(const struct spl_raft_config *cfg, struct spl_raft **out);

/* spl_raft_destroy - free the node and every reference it holds (NULL is fine). */
void spl_raft_destroy(struct spl_raft *r);

/* spl_raft_tick - advance the node's clock by one tick: election timeouts, heartbeats,
 * check-quorum, leadership-transfer timeout, lease expiry. */
void spl_raft_tick(struct spl_raft *r);

/* spl_raft_step - feed one message from a peer. 0 when the message was processed (that
 * includes messages Raft answers or ignores, such as a duplicate append). Rejected
 * without any state change: SPL_ERAFT_NOGROUP (another group), SPL_EINVAL_ARG (to is not
 * this node, from is 0 or this node, unknown type, non-contiguous or overflowing
 * indexes, invalid snapshot configuration or conf entry), SPL_ETOOBIG (over a batch
 * limit), SPL_ERAFT_STALE (a term older than ours: it may still be answered so that a
 * deposed leader learns the new term). */
int spl_raft_step(struct spl_raft *r, const struct spl_raft_msg *m);

/* spl_raft_campaign - start an election now (a pre-vote first when pre_vote is set).
 * 0; SPL_EINVAL_ARG when this node is not a voter of its voting configuration (the
 * latest configuration entry of its log, see "Membership"); 0 and nothing
 * happens when it already leads; SPL_ERAFT_LEASE with check_quorum while this node heard
 * a leader within the last election timeout (or restarted less than one ago): it promised
 * that leader not to help elect another, and leases depend on it (move leadership with
 * spl_raft_transfer_leader() on the leader instead). */
int spl_raft_campaign(struct spl_raft *r);

/* spl_raft_propose - append `data` as a normal entry (leader only). Takes the payload:
 * on success data is left empty (its blocks now belong to the log); on failure data is
 * untouched. *index_out and *term_out (either may be NULL) identify the entry: the proposal
 * succeeded iff an entry with that index and term is applied; a different term at that
 * index means it was dropped. 0; SPL_ENOTLEADER (status().leader may name the leader);
 * SPL_ERAFT_TRANSFERRING; SPL_ERAFT_OVERLOAD (max_uncommitted_bytes or
 * SPL_RAFT_PROPOSALS_MAX uncommitted entries); SPL_ETOOBIG (> SPL_RAFT_ENTRY_MAX). */
int spl_raft_propose(struct spl_raft *r, struct spl_iobuf *data, uint64_t *index_out,
                     uint64_t *term_out);

/* spl_raft_propose_conf_change - append a configuration entry applying `op` to node_id
 * (leader only; op is not RESTATE). Returns as propose(), plus:
 * SPL_ERAFT_CONFCHANGE_PENDING (a configuration entry, including this leader's
 * re-statement, is not applied yet); SPL_ERAFT_NOTCAUGHTUP (PROMOTE of a learner that
 * is not replicating within SPL_RAFT_CATCHUP_LAG_MAX entries of the leader's log);
 * SPL_EINVAL_ARG (op invalid for node_id: adding a member, promoting a non-learner,
 * removing a non-member or the last voter, node_id 0); SPL_ETOOBIG (over PEERS_MAX).
 * Removing the leader itself is allowed: once that entry applies, it steps down to a
 * follower outside the configuration and the others elect a leader (transfer leadership
 * first to avoid the gap). */
int spl_raft_propose_conf_change(struct spl_raft *r, enum spl_raft_conf_op op,
                                 uint64_t node_id, uint64_t *index_out, uint64_t *term_out);

/* spl_raft_transfer_leader - hand leadership to voter `to` (leader only): proposals are
 * refused with SPL_ERAFT_TRANSFERRING while the target catches up; once its log matches,
 * it is sent TIMEOUT_NOW and campaigns at once. The transfer is abandoned after an
 * election timeout, or when `to` leaves the configuration. Starting another transfer
 * replaces a pending one. 0 (also when to == self: nothing to do); SPL_ENOTLEADER;
 * SPL_EINVAL_ARG (to is not a voter). */
int spl_raft_transfer_leader(struct spl_raft *r, uint64_t to);

/* spl_raft_read_index - ask for a linearizable read point (leader only). Once a quorum
 * confirmed this node still leads (a heartbeat round that began after the call), a
 * ready carries read state {context, index}: the read may be served when the state
 * machine applied >= index. Requests made before this leader committed an entry of its
 * term wait for that commit. Pending requests are dropped if leadership changes (the
 * caller times them out). A single-voter group answers at once. 0; SPL_ENOTLEADER;
 * SPL_ERAFT_TRANSFERRING; SPL_ERAFT_OVERLOAD (SPL_RAFT_READS_MAX pending). */
int spl_raft_read_index(struct spl_raft *r, uint64_t context);

/* spl_raft_lease_valid - true when this node may serve a read from its applied state
 * without a read-index round: it leads, lease is on, it committed an entry of its term,
 * it never tried to transfer leadership in this term, and a quorum acknowledged
 * heartbeats *sent* within the last lease_ticks = election_tick - max(1,
 * election_tick / 5) ticks (the margin absorbs tick-rate drift between nodes; with
 * check_quorum no voter that acknowledged will vote for another leader for election_tick
 * of its own ticks; a voter that restarts refuses votes for its first election timeout
 * too, since it may have acknowledged before the crash). The read must still wait until
 * applied >= status().commit as of the moment the read arrived. */
bool spl_raft_lease_valid(const struct spl_raft *r);

/* spl_raft_report_unreachable - the transport could not deliver to `to`: a follower in
 * pipelined replication falls back to probing. No-op unless leader. */
void spl_raft_report_unreachable(struct spl_raft *r, uint64_t to);

/* spl_raft_report_snapshot - the transport finished (ok) or gave up (!ok) sending the
 * snapshot to `to`; the follower leaves snapshot state and is probed again. */
void spl_raft_report_snapshot(struct spl_raft *r, uint64_t to, bool ok);

/* ------------------------------------------------------------------------------------ */
/* Ready / advance                                                                       */

struct spl_raft_read_state {
    uint64_t context; /* as given to spl_raft_read_index() */
    uint64_t index;   /* serve the read once applied >= index */
};

struct spl_raft_soft_state {
    uint64_t leader; /* SPL_RAFT_NONE when unknown */
    uint8_t role;    /* enum spl_raft_role */
};

/* One batch of work; see the contract at the top. Every pointer is owned by the node and
 * valid until spl_raft_advance() (or spl_raft_destroy()). */
struct spl_raft_ready {
    /* 1. persist */
    bool has_hard_state;
    struct spl_raft_hard_state hard_state;
    const struct spl_raft_snapshot_meta *snapshot; /* NULL, or replace the log with it */
    const struct spl_raft_entry *entries;          /* to append (see the contract) */
    uint32_t entry_count;
    bool must_sync; /* term, vote or entries changed: fsync before step 2 */
    /* 2. send */
    const struct spl_raft_msg *msgs_early; /* may be sent before step 1 completes */
    uint32_t msg_early_count;
    const struct spl_raft_msg *msgs;       /* send only after step 1 is durable */
    uint32_t msg_count;
    /* 3. apply */
    const struct spl_raft_entry *committed; /* contiguous, in order, after the snapshot */
    uint32_t committed_count;
    const struct spl_raft_read_state *read_states;
    uint32_t read_state_count;
    /* information */
    bool has_soft_state; /* leader or role changed since the previous ready */
    struct spl_raft_soft_state soft_state;
    bool conf_changed;   /* a snapshot or a configuration entry in `committed` applied */
    struct spl_raft_conf conf; /* the configuration after applying this ready */
    uint64_t epoch;            /* the epoch after applying this ready */
    /* private to the node */
    uint64_t priv_stable_index, priv_stable_term, priv_applied;
};

/* spl_raft_has_ready - true when spl_raft_ready() would produce work. */
bool spl_raft_has_ready(const struct spl_raft *r);

/* spl_raft_ready - fill *rd with the pending work (it may be empty). Batches: every
 * proposal since the last ready goes to each replicating follower in as few appends as
 * max_size_per_msg allows. Must be followed by exactly one spl_raft_advance(r, rd). */
void spl_raft_ready(struct spl_raft *r, struct spl_raft_ready *rd);

/* spl_raft_advance - the caller persisted, sent and applied `rd` (per the contract):
 * the node marks the entries durable, counts them for its own commit quorum, moves
 * applied forward, frees the ready's memory. rd must be the last ready of this node. */
void spl_raft_advance(struct spl_raft *r, struct spl_raft_ready *rd);

/* ------------------------------------------------------------------------------------ */
/* Status                                                                                */

enum spl_raft_progress_state {
    SPL_RAFT_PROBE = 0,     /* one append at a time until the match point is found */
    SPL_RAFT_REPLICATE = 1, /* pipelined appends, bounded by the inflight window */
    SPL_RAFT_SNAPSHOT = 2,  /* a snapshot is being sent; appends paused */
};
const char *spl_raft_progress_state_name(int state);

struct spl_raft_peer_status {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint8_t state;        /* enum spl_raft_progress_state */
    bool learner;         /* not a voter of the voting configuration: counts for nothing */
    bool recent_active;
    uint32_t inflight;    /* appends in flight */
    uint64_t pending_snapshot; /* the snapshot index being sent (SNAPSHOT state) */
};

struct spl_raft_status {
    uint64_t id, group;
    uint64_t term, vote, leader;
    uint8_t role;         /* enum spl_raft_role */
    bool learner;         /* this node is a learner of its configuration */
    uint64_t first_index, last_index; /* of the whole log (storage + unstable) */
    uint64_t commit, applied;
    uint64_t snapshot_index;
    uint64_t epoch;
    struct spl_raft_conf conf;        /* applied (with epoch) */
    struct spl_raft_conf voting_conf; /* of the latest conf entry of the log: quorums */
    uint64_t voting_conf_index;       /* its entry while not applied; 0: equal to conf */
    uint64_t tick;             /* ticks since init */
    uint64_t lead_transferee;  /* SPL_RAFT_NONE when not transferring */
    uint64_t pending_conf_index; /* index of the last conf entry in the log (leader) */
    uint64_t uncommitted_bytes;  /* leader */
    uint32_t peer_count; /* leader: progress of every member of the voting and applied confs */
    struct spl_raft_peer_status peers[SPL_RAFT_PEERS_MAX];
};

/* spl_raft_status - a copy of the node's state (for heartbeats to the MDS, metrics and
 * tests). */
void spl_raft_get_status(const struct spl_raft *r, struct spl_raft_status *out);

#endif
