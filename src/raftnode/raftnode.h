/*
 * raftnode.h - the multi-raft host: hundreds of Raft groups in one process, over the real
 * RPC layer (src/rpc) and the real log storage (src/raftlog).
 *
 * What it owns: for each group, a pure Raft core (src/raft), its durable log (one
 * raftlog group in <data_dir>/groups/<group>/log), the group's state file and live FSM
 * directory, and the driving of the ready/advance loop; for the process, the Raft worker
 * threads, the apply threads, the snapshot threads, the Raft RPC service (batched,
 * coalesced messages; snapshot file copy) and one RPC channel per peer process.
 * What it leaves to others: what entries mean (the FSM, fsm.h), who the members of a
 * group should be (the MDS orders changes through the calls below), the mapping of node
 * ids to addresses (spl_raftnode_set_peer), the RPC runtime and server (the caller's).
 *
 * Threading model (docs/raft-host.md has the picture):
 *  - W Raft workers (opts.workers). Group g belongs to worker (g mod W) for its whole
 *    life; only that thread touches its Raft core and its raftlog. A worker waits on its
 *    inbox (proposals, reads, admin calls, decoded messages, persistence and apply
 *    completions) with a timeout at its next tick. ONE tick timer per worker, not per
 *    group: at every tick it ticks all its groups. After each pass it runs the ready of
 *    every group that has one, then flushes its outgoing messages: one RPC per peer
 *    process carrying every message queued for that peer in the pass (all groups'
 *    heartbeats of a tick travel together). Appends are handed to raftlog, which returns
 *    at once; the raftlog sync threads fdatasync (group commit across groups), send the
 *    ready's msgs the moment they are durable (the ready contract of raft.h; msgs_early
 *    go out at once) and post the completion back to the worker, which then applies and
 *    advances.
 *  - A apply threads (opts.apply_threads), shared by all groups: committed entries go to
 *    thread hash(group, key) mod A, so one key keeps log order while different keys
 *    apply in parallel. A lone committed entry of a group with nothing in flight is
 *    applied by the worker itself (no hop at low load; opts.no_inline_apply turns this
 *    off). A group's applied index advances when every entry below it completed;
 *    proposals complete when their own entry applied; reads once applied reached their
 *    read index. Callbacks of this API run on an apply thread, a worker, or (errors) the
 *    calling thread: they must not block.
 *  - snapshot threads: FSM save_snapshot (fsyncs) and the source side of file copy (disk
 *    reads for GetFile); install threads: the installer side of file copy (blocking RPC
 *    calls, throttled writes into a staging directory).
 *  - RPC IO threads (the caller's runtime) only decode incoming batches and hand each
 *    message to its group's worker; messages for unknown groups are counted
 *    (spline_raftnode_msgs_rejected_total) and dropped.
 * Every function below may be called from any thread except where noted; none blocks
 * on the network. Callbacks (spl_raftnode_done_cb) run exactly once for a call that
 * returned 0, never for one that returned an error (libuv rule).
 *
 * Shutdown order: spl_rpc_server_destroy(server) (no more handlers), then
 * spl_raftnode_host_destroy(host) (groups closed, pending calls fail with
 * SPL_ESHUTDOWN), then spl_rpc_runtime_destroy(rt).
 */
#ifndef SPL_RAFTNODE_RAFTNODE_H
#define SPL_RAFTNODE_RAFTNODE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/limits.h"
#include "raft/raft.h"
#include "raftnode/fsm.h"
#include "rpc/rpc.h"

struct spl_metrics;

typedef struct spl_raftnode_host spl_raftnode_host;

/* ---- host ---------------------------------------------------------------------------- */

struct spl_raftnode_opts {
    uint64_t node_id;           /* this process's node id (!= 0), the same in every group */
    const char *data_dir;       /* groups/ and walpool/ live here (created if missing) */
    spl_rpc_runtime *rpc;       /* for the peer channels */
    spl_rpc_server *server;     /* the Raft service is added to it (before it starts) */
    struct spl_metrics *metrics; /* NULL: spl_metrics_global() */

    uint32_t workers;           /* Raft worker threads; 0: 1 */
    uint32_t apply_threads;     /* 0: 2 */
    uint32_t snapshot_threads;  /* save_snapshot + GetFile serving; 0: 1 */
    uint32_t install_threads;   /* snapshot downloads; 0: 1 */

    uint32_t tick_ms;           /* one tick; also the heartbeat period; 0: 100 */
    uint32_t election_ticks;    /* election timeout in ticks; 0: 10 */
    bool no_pre_vote;           /* pre-vote, check-quorum and lease are on unless ... */
    bool no_lease;
    bool no_inline_apply;       /* never apply on the worker (see the threading model) */
    uint32_t max_inflight_msgs; /* appends in flight per follower; 0: 32 */
    uint32_t proposal_timeout_ms; /* default for proposals, reads and admin; 0: 10000 */

    uint64_t snapshot_interval; /* take a snapshot every N applied entries; 0: never */
    uint64_t snapshot_keep;     /* log entries kept below a snapshot for slow followers */
    uint64_t install_bytes_per_sec; /* file-copy throttle (all installs together); 0: off */
    uint32_t install_piece_bytes;   /* bytes per GetFile; 0: 1 MiB */

    uint64_t log_segment_size;  /* 0: 8 MiB */
    uint32_t log_pool_files;    /* the pool is formatted up to this many files at start;
                                   0: 2 per group expected (opts.groups_hint) + 8 */
    uint32_t groups_hint;       /* groups the caller expects (pool sizing only) */
    uint32_t log_sync_threads;  /* 0: 2 */
    bool log_sync_syncfs;       /* one syncfs per round instead of per-group fdatasync */
};

/* spl_raftnode_host_create - start a host: open the log env (format the pool as needed),
 * start the threads, add the Raft service to opts->server. Groups are added with
 * spl_raftnode_group_create. 0 and *out; SPL_EINVAL_ARG (bad opts); -errno (data_dir);
 * raftlog and rpc errors; nothing is left running on failure. */
int spl_raftnode_host_create(const struct spl_raftnode_opts *opts, spl_raftnode_host **out);

/* spl_raftnode_host_destroy - close every group (their FSMs get close), fail pending
 * calls with SPL_ESHUTDOWN, stop the threads, close the peer channels, free. Call after
 * the RPC server is destroyed. Not from a host thread. NULL is fine. */
void spl_raftnode_host_destroy(spl_raftnode_host *h);

/* spl_raftnode_set_peer - node `id` is reachable at "host:port" (its RPC server). May be
 * called at any time (membership changes add nodes); a changed address re-opens the
 * channel (the old one stays open, idle, until the host is destroyed). This node's own
 * address may be set too (leader hints name it). 0; SPL_EINVAL_ARG (id 0, address too
 * long); SPL_ETOOBIG (over SPL_RAFTNODE_NODES_MAX nodes or address changes). */
int spl_raftnode_set_peer(spl_raftnode_host *h, uint64_t id, const char *address);

/* spl_raftnode_peer_address - copy node id's address into buf (len >= SPL_RAFTNODE_ADDR_MAX):
 * 0, or SPL_ERAFTNODE_NOPEER. */
int spl_raftnode_peer_address(spl_raftnode_host *h, uint64_t id, char *buf, size_t len);

/* ---- groups -------------------------------------------------------------------------- */

struct spl_raftnode_group_opts {
    uint64_t group;                   /* != 0 */
    /* A group with no data on disk yet: bootstrap it as a founding member of this voter
     * set, or, when NULL, create an empty member that waits for the group's leader to
     * send it the log or a snapshot (a node being added, or one re-added after its disk
     * was wiped: RAFT-INVARIANTS "disk replacement"). Ignored when data exists. */
    const struct spl_raft_conf *initial_conf;
    struct spl_fsm fsm;               /* owned by the host until fsm.ops->close */
};

/* spl_raftnode_group_create - open (or create) the group: recover its log and state file,
 * finish an install a crash interrupted, load the FSM (fsm.ops->load runs on this
 * thread), and start driving it. The FSM's close runs on failure too (after load or
 * not). 0; SPL_ERAFT_GROUPEXISTS; SPL_ETOOBIG (SPL_RAFT_GROUPS_MAX groups); SPL_ESHUTDOWN;
 * raftlog / -errno / FSM load errors. Not from a host thread. */
int spl_raftnode_group_create(spl_raftnode_host *h, const struct spl_raftnode_group_opts *opts);

/* spl_raftnode_group_destroy - stop the group (pending calls fail with SPL_ERAFT_NOGROUP),
 * wait until no thread uses it, close its FSM and log; with remove_data, delete its
 * directory. 0; SPL_ERAFT_NOGROUP. Not from a host thread. */
int spl_raftnode_group_destroy(spl_raftnode_host *h, uint64_t group, bool remove_data);

/* spl_raftnode_group_ids - up to cap group ids into ids[] (any order); returns how many
 * groups there are (may exceed cap). */
uint32_t spl_raftnode_group_ids(spl_raftnode_host *h, uint64_t *ids, uint32_t cap);

/* spl_raftnode_groups_on_disk - the group ids that have a directory under data_dir (for
 * a restart: create each with initial_conf NULL). Up to cap into ids[]; returns the
 * count found (may exceed cap), or -errno. No host needed. */
int spl_raftnode_groups_on_disk(const char *data_dir, uint64_t *ids, uint32_t cap);

/* ---- calls --------------------------------------------------------------------------- */

/* The outcome of a call, handed to its callback (valid during the callback only). */
struct spl_raftnode_result {
    int status;           /* 0, or: SPL_ENOTLEADER, SPL_ERAFT_DROPPED (leadership changed
                           * before the entry committed: outcome unknown),
                           * SPL_ERAFTNODE_TIMEDOUT (outcome unknown), SPL_ERAFT_NOGROUP,
                           * SPL_ESHUTDOWN, SPL_ERAFT_OVERLOAD, SPL_ERAFT_TRANSFERRING,
                           * SPL_ECOPYSET_EPOCH, SPL_ERAFTNODE_NOTCAUGHTUP, raft errors */
    uint64_t index;       /* status 0: the entry's index (reads: the read index) */
    uint64_t term;        /* status 0: the entry's term */
    uint64_t epoch;       /* the group's epoch when the call completed (conf changes: the
                           * epoch the change produced) */
    int fsm_result;       /* proposals: the FSM's apply result for the entry */
    struct spl_iobuf *reply; /* proposals: the FSM's reply bytes (may be moved out) */
    uint64_t leader;      /* SPL_ENOTLEADER: the leader this node knows, or 0 */
    const char *leader_address; /* its address, or "" */
};

typedef void (*spl_raftnode_done_cb)(const struct spl_raftnode_result *res, void *ctx);

/* spl_raftnode_propose - propose `data` as a normal entry of `group` (must lead it). Takes
 * data on success (it is empty afterwards; untouched on error). done_cb runs when the
 * entry applied (status 0: fsm_result and reply are the FSM's), or when it cannot: not
 * leader (with hint), dropped by a leader change, timed out (timeout_ms; 0: the host
 * default), group destroyed. 0; SPL_ERAFT_NOGROUP; SPL_ESHUTDOWN; SPL_ETOOBIG
 * (> SPL_RAFT_ENTRY_MAX); -ENOMEM. */
int spl_raftnode_propose(spl_raftnode_host *h, uint64_t group, struct spl_iobuf *data,
                         uint32_t timeout_ms, spl_raftnode_done_cb done_cb, void *ctx);

/* spl_raftnode_read - a linearizable read barrier: done_cb runs with status 0 once the
 * group's applied state includes every write acknowledged before this call; then read
 * the FSM. Uses the leader lease when it is valid, otherwise a read-index round.
 * Leader only (SPL_ENOTLEADER with hint); a replica still catching up after an install
 * answers SPL_ERAFTNODE_NOTCAUGHTUP (RAFT-INVARIANTS 17). Returns as propose. */
int spl_raftnode_read(spl_raftnode_host *h, uint64_t group, uint32_t timeout_ms,
                      spl_raftnode_done_cb done_cb, void *ctx);

/* Any epoch: for the `expected_epoch` argument of the calls below. */
#define SPL_RAFTNODE_ANY_EPOCH UINT64_MAX

/* spl_raftnode_change_peers - propose membership change `op` (ADD_VOTER, ADD_LEARNER,
 * PROMOTE, REMOVE) of node_id, only if the group's epoch == expected_epoch (else done_cb
 * gets SPL_ECOPYSET_EPOCH). done_cb runs when the configuration entry applied (index,
 * epoch) or failed (the raft.h codes of spl_raft_propose_conf_change, not leader, ...).
 * The node's address must be known (spl_raftnode_set_peer) to add it. Returns as
 * propose. */
int spl_raftnode_change_peers(spl_raftnode_host *h, uint64_t group, enum spl_raft_conf_op op,
                              uint64_t node_id, uint64_t expected_epoch,
                              spl_raftnode_done_cb done_cb, void *ctx);

/* spl_raftnode_transfer_leader - hand leadership of group to voter `to`, only if the
 * group's epoch == expected_epoch. done_cb: 0 once `to` is known to lead, else
 * SPL_ERAFTNODE_TIMEDOUT (an election timeout passed), SPL_ENOTLEADER, ... Returns as
 * propose. */
int spl_raftnode_transfer_leader(spl_raftnode_host *h, uint64_t group, uint64_t to,
                                 uint64_t expected_epoch, spl_raftnode_done_cb done_cb,
                                 void *ctx);

/* spl_raftnode_snapshot - take a snapshot of group now (at its applied index) and compact
 * its log. done_cb: index = the snapshot index; SPL_ERAFTNODE_BUSY (one is being taken),
 * SPL_ERAFTNODE_NOTCAUGHTUP. Returns as propose. */
int spl_raftnode_snapshot(spl_raftnode_host *h, uint64_t group, spl_raftnode_done_cb done_cb,
                          void *ctx);

/* ---- status -------------------------------------------------------------------------- */

struct spl_raftnode_leader_info {
    uint64_t leader;  /* 0 when unknown */
    uint64_t term;
    char address[SPL_RAFTNODE_ADDR_MAX]; /* "" when unknown (or this node: its own id) */
};

/* spl_raftnode_leader - the group's leader as this replica knows it (what the worker
 * published; never waits for the worker). 0; SPL_ERAFT_NOGROUP. */
int spl_raftnode_leader(spl_raftnode_host *h, uint64_t group, struct spl_raftnode_leader_info *out);

struct spl_raftnode_group_status {
    uint64_t group;
    uint64_t term, leader;
    uint8_t role;                 /* enum spl_raft_role */
    uint64_t epoch;
    uint64_t commit, applied;     /* applied: every entry <= it completed in the FSM */
    uint64_t first_index, last_index, snapshot_index;
    struct spl_raft_conf conf;
    bool caught_up;               /* applied >= catchup_index (RAFT-INVARIANTS 17) */
    uint64_t catchup_index;       /* D of the last install, 0 when none */
    bool installing;              /* a snapshot download is running */
    uint64_t installs, install_bytes; /* since the host started */
    uint64_t install_ns;          /* time spent in those installs */
};

/* spl_raftnode_group_status - what the group's worker last published (at most one tick
 * old, applied is current). 0; SPL_ERAFT_NOGROUP. */
int spl_raftnode_group_status(spl_raftnode_host *h, uint64_t group,
                              struct spl_raftnode_group_status *out);

/* Host-wide counters (also exported as spline_raftnode_* metrics). */
struct spl_raftnode_stats {
    uint32_t groups;
    uint64_t msgs_sent, msgs_received, msgs_rejected;
    uint64_t rpcs_sent, rpcs_received;  /* Send batches */
    uint64_t heartbeats_sent;           /* HEARTBEAT + HEARTBEAT_RESP messages */
    uint64_t proposals, proposals_failed;
    uint64_t ticks;                     /* worker tick passes */
    uint64_t getfile_bytes_served;
    uint64_t log_appends, log_syncs, log_sync_rounds; /* the raft log env's (group commit) */
};

void spl_raftnode_stats(spl_raftnode_host *h, struct spl_raftnode_stats *out);

/* spl_raftnode_commit_latency - a snapshot of the host's propose-to-applied latency
 * histogram (nanoseconds; leader side), for benchmarks. */
struct spl_histogram_snapshot;
void spl_raftnode_commit_latency(spl_raftnode_host *h, struct spl_histogram_snapshot *out);

/* spl_raftnode_latency - which 0: propose -> applied (as above); 1: raft log append ->
 * durable as the worker sees it; 2: propose -> committed (leader). Nanoseconds. */
void spl_raftnode_latency(spl_raftnode_host *h, int which, struct spl_histogram_snapshot *out);

#endif
