/*
 * sim.h - the deterministic Raft cluster simulation: one run from one seed.
 *
 * Owns: a cluster of spl_raft nodes (3 to 5 voters, ids 1..SIM_NODES_MAX-1) in one
 * thread, each over an in-memory storage made durable only through its simulated disk
 * (a write-ahead log, wal.h) and driven by the ready/advance contract of raft.h; a
 * key/value state machine applying committed entries, with snapshots and compaction;
 * clients issuing puts and gets (read-index and lease reads) with timeouts; a seeded
 * fault schedule (network, crashes at persist points, pauses, clocks, disks, membership,
 * transfers, snapshots) followed by a fault-free window for liveness; and the invariant
 * checker of ../shared/RAFT-INVARIANTS.md, run after every step. A failing run stops at
 * the first violation and reports it (see docs/simulation.md).
 *
 * Files: cluster.c (nodes, ready loop, state machine, clients), check.c (invariants),
 * faults.c (the schedule), sim_raft.c (the command line). Single-threaded.
 */
#ifndef SPL_SIM_SIM_H
#define SPL_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lincheck.h"
#include "logview.h"
#include "raft/memstorage.h"
#include "raft/raft.h"
#include "simdisk.h"
#include "simnet.h"
#include "wal.h"
#include "world.h"

/* Bugs the simulator can plant from the outside (the core has no test-only switches). */
#define SIM_PLANTS(XX)                                                                   \
    XX(NONE, "none", "no planted bug")                                                   \
    XX(FORGET_VOTE, "forget-vote", "the log never persists the vote")                    \
    XX(EARLY_SEND, "early-send", "ready messages leave before the fsync completes")     \
    XX(APPLY_UNCOMMITTED, "apply-uncommitted", "entries are applied when appended")     \
    XX(FOLLOWER_READ, "follower-read", "any node serves gets from its local state")     \
    XX(DROP_EPOCH, "drop-epoch", "snapshots persist epoch 0")                            \
    XX(STALE_LEASE, "stale-lease", "lease reads do not catch up missed ticks first")    \
    XX(NO_TRUNCATE, "no-truncate", "appends never drop the conflicting suffix on disk")

enum sim_plant {
#define XX(name, str, desc) SIM_PLANT_##name,
    SIM_PLANTS(XX)
#undef XX
    SIM_PLANT_COUNT
};

const char *sim_plant_name(int plant);
int sim_plant_parse(const char *name); /* -1 when unknown */

struct sim_options {
    uint64_t seed;
    uint64_t steps;       /* events in the fault phase */
    enum sim_plant plant;
    bool verbose;         /* print every trace line as it happens */
    bool trace;           /* keep the trace ring (automatic on re-run after a failure) */
    size_t trace_lines;   /* lines printed with a failure report */
    int pre_vote;         /* -1: chosen by the seed; 0 off; 1 on */
    int atomic_ready;     /* -1: chosen by the seed; 1: each ready is one atomic record;
                             0: one record per entry / hard state / snapshot */
    uint64_t ignore_mask; /* invariants not enforced (bit n = invariant n), to show that a
                             planted bug is also caught by its consequences */
    bool allow_empty_ready; /* stop pumping on an empty ready instead of failing */
    bool rude_campaign;   /* CAMPAIGN faults also hit followers that know a leader */
    bool silent_loss;     /* lost packets are not reported to the sender (default: the
                             transport reports them, as a TCP connection reset would) */
    FILE *out;
};

struct sim_result {
    bool failed;
    int invariant;        /* RAFT-INVARIANTS number of the violation (0 = harness) */
    char what[1024];      /* the violation with its values */
    uint64_t steps;       /* events processed */
    uint64_t sim_ns;      /* simulated time at the end */
    uint64_t ops_ok, ops_unknown, ops_failed, reads_lease, reads_index;
    uint64_t elections, restarts, snapshots_sent, conf_changes, transfers;
    uint64_t torn_tails, lin_ops;
};

/* sim_run - one simulation from opt->seed. Returns true when no invariant broke; on
 * failure *res says which, and (when opt->trace) the trace was printed to opt->out. */
bool sim_run(const struct sim_options *opt, struct sim_result *res);

/* sim_crash_report - from a SIGABRT/SIGSEGV handler: print the running seed (and the
 * trace when it is kept) so that a crash of the code under test is a bug report too. */
void sim_crash_report(FILE *out);

/* ---- internals shared by cluster.c, check.c and faults.c ---- */

#define SIM_KEYS 5             /* client keys (small, for contention) */
#define SIM_CLIENTS_MAX 4
#define SIM_READS_MAX 64       /* pending reads per node */
#define SIM_PROPOSALS_MAX 256  /* remembered proposals per node */
#define SIM_EFFECTS_MAX 4096   /* WAL records written but not yet synced, per node */
#define SIM_TICK_NS (10 * SPL_SIM_MS)

enum sim_event_kind {
    SIM_EV_TICK = 1,
    SIM_EV_DELIVER,
    SIM_EV_SYNC_DONE,
    SIM_EV_CLIENT_NEXT,
    SIM_EV_CLIENT_ARRIVE,
    SIM_EV_CLIENT_REPLY,
    SIM_EV_CLIENT_TIMEOUT,
    SIM_EV_FAULT,
    SIM_EV_RESTART,
    SIM_EV_HEAL,
    SIM_EV_CONF_STEP,
    SIM_EV_BOUNCE,        /* kill a node and restart it at once; arg: who campaigns then */
    SIM_EV_CAMPAIGN,      /* a node starts an election now (spl_raft_campaign) */
    SIM_EV_REPORT,        /* transport report to a node: ptr = peer | 0x100 for snapshot */
};

/* A WAL record written and not yet known durable: applied to the node's durable view
 * once an fsync covers `end`. */
struct sim_effect {
    size_t end;
    uint8_t kind; /* enum sim_wal_type */
    uint64_t index, term, epoch;
    struct sim_lentry entry;
    struct spl_raft_hard_state hs;
};

enum sim_read_kind { SIM_READ_INDEX = 1, SIM_READ_LEASE = 2 };

struct sim_read {
    uint64_t ctx;          /* read-index context (unique) */
    int client;
    uint64_t op;           /* the client's op number */
    uint64_t key;
    uint8_t kind;          /* enum sim_read_kind */
    bool have_index;       /* read state arrived (or lease: commit noted) */
    uint64_t index;        /* serve once applied >= index */
    uint64_t term;         /* the node's term when the read arrived */
    uint64_t commit_seen;  /* the highest commit any node knew when the read arrived */
};

struct sim_proposal {
    uint64_t index, term;
    int client;
    uint64_t op;
};

struct sim_node {
    int id;
    bool exists;            /* has a disk: a member, or being added */
    bool up;                /* its process runs */
    uint64_t incarnation;   /* bumped at each start and crash; stale events are ignored */
    uint64_t paused_until_ns;
    int crash_at_point;     /* armed persist point (0 = none), see cluster.c */
    struct spl_raft *raft;
    struct spl_raft_memstorage ms;
    struct spl_rand rand;
    struct sim_disk disk;
    /* the ready in flight (between spl_raft_ready and spl_raft_advance) */
    bool in_ready;
    struct spl_raft_ready rd;
    struct spl_raft_ready last_rd; /* a copy of the last ready's counts (pointers stale) */
    size_t sync_target;
    /* clock */
    uint64_t next_tick_mono_ns;
    /* state machine */
    uint64_t kv[SIM_KEYS];
    uint64_t applied;
    uint64_t epoch;
    struct spl_raft_conf conf;
    uint64_t snap_every;    /* take a snapshot after this many applies */
    /* role as the readies told it */
    uint8_t role;
    uint64_t term;
    uint64_t commit;
    /* work in progress */
    struct sim_read reads[SIM_READS_MAX];
    uint32_t read_count;
    struct sim_proposal props[SIM_PROPOSALS_MAX];
    uint32_t prop_count;
    /* checker views */
    struct sim_logview mem;     /* storage + unstable, as readies reveal it */
    struct sim_logview dur;     /* what synced bytes hold */
    struct sim_effect *effects; /* written, not yet synced (SIM_EFFECTS_MAX) */
    uint32_t effect_count;
    uint64_t dur_term_max;      /* highest durable term ever (across restarts) */
    uint64_t dur_commit_max;    /* highest durable commit ever (across restarts) */
};

enum sim_client_state { SIM_CLIENT_IDLE = 0, SIM_CLIENT_WAITING };

struct sim_client {
    int id;
    uint8_t state;
    uint64_t op;          /* current op number */
    uint8_t kind;         /* enum spl_lin_kind */
    uint64_t key, value;
    uint64_t call_ns;
    int target;           /* the node it asked */
    int leader_guess;
};

/* A client request in flight to a node, or a reply in flight back. */
struct sim_msg_client {
    int client;
    uint64_t op;
    uint8_t kind;
    uint64_t key, value;
    int status;           /* reply: 0 ok, else a negative code */
    int leader_hint;
};

struct sim {
    struct sim_options opt;
    struct sim_result *res;
    struct sim_world w;
    struct sim_net net;
    struct sim_node node[SIM_NODES_MAX];
    int node_count;            /* ids 1..node_count are usable */
    struct sim_client client[SIM_CLIENTS_MAX];
    int client_count;
    struct spl_lin_history hist;
    uint64_t next_value, next_read_ctx;
    bool faults_on;            /* the fault phase is running */
    uint32_t fault_mask;       /* fault kinds this seed uses (swarm testing), faults.c */
    bool stop;                 /* a violation was found */
    struct spl_raft_entry *decode_buf;
    /* raft configuration of this seed */
    uint32_t election_tick, heartbeat_tick, max_inflight;
    uint64_t max_msg_bytes;
    bool pre_vote;
    bool atomic_ready;         /* the log writes each ready as one atomic batch record */
    int64_t drift_ppm_max;
    uint64_t client_timeout_ns;
    uint32_t write_pct;        /* share of client ops that are puts */
    uint64_t quiet_until_ns;   /* clients only read until then (an idle group) */
    /* the ongoing membership change driven by the schedule */
    int conf_target;           /* node being added / replaced in; 0 = none */
    int conf_victim;           /* node to remove after the target is promoted */
    uint32_t conf_tries;       /* schedule steps spent on the current change */
    /* the liveness probe of the fault-free window */
    int live_node;
    uint64_t live_index, live_term;
    /* checker state (check.c) */
    struct sim_check *chk;
};

/* cluster.c */
void sim_effect_apply(struct sim_logview *v, const struct sim_effect *e);
void sim_node_crash(struct sim *s, struct sim_node *n, const char *why);
void sim_node_start(struct sim *s, struct sim_node *n);
void sim_schedule_restart(struct sim *s, struct sim_node *n, uint64_t delay_ns);
void sim_node_pump(struct sim *s, struct sim_node *n);
void sim_node_add(struct sim *s, int id); /* a new, empty node (not yet a member) */
int sim_leader(struct sim *s);          /* an up node that believes it leads (highest term) */
uint32_t sim_voter_count(const struct spl_raft_conf *conf);
/* sim_propose_marker - propose a no-op marker entry at node id (liveness probe). */
int sim_propose_marker(struct sim *s, int id, uint64_t *index, uint64_t *term);

/* check.c */
struct sim_check;
struct sim_check *sim_check_new(void);
void sim_check_free(struct sim_check *c);
/* sim_fail - record a violation of invariant inv (first one wins) and stop the run. */
void sim_fail(struct sim *s, int inv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sim_check_ready(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd);
void sim_check_send(struct sim *s, struct sim_node *n, const struct spl_raft_msg *m, bool early);
void sim_check_apply(struct sim *s, struct sim_node *n, const struct spl_raft_entry *e);
void sim_check_snapshot_install(struct sim *s, struct sim_node *n,
                                const struct spl_raft_snapshot_meta *snap);
void sim_check_after_ready(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd);
void sim_check_durable(struct sim *s, struct sim_node *n);
void sim_check_recovered(struct sim *s, struct sim_node *n, const struct sim_logview *before,
                         const struct sim_effect *lost, uint32_t lost_count,
                         const struct sim_logview *recovered);
/* 25: a client is told "done" only for an entry known committed. */
void sim_check_ack(struct sim *s, struct sim_node *n, uint64_t index, uint64_t term);
void sim_check_lease_read(struct sim *s, struct sim_node *n, const struct sim_read *r);
void sim_check_read_index(struct sim *s, struct sim_node *n, const struct sim_read *r);
uint64_t sim_check_commit_max(struct sim *s);
bool sim_check_leader_for_term(struct sim *s, uint64_t term, int *node);

/* faults.c */
void sim_faults_start(struct sim *s);
uint64_t sim_restart_delay(struct sim *s); /* how long a crashed process stays down */
void sim_fault_fire(struct sim *s);
void sim_fault_bounce(struct sim *s, int id, uint64_t arg); /* arg: campaigner | isolate << 8 */
void sim_fault_campaign(struct sim *s, int id);
void sim_conf_step(struct sim *s);
void sim_faults_stop(struct sim *s);
/* sim_liveness_done - in the fault-free window: true once a leader committed a marker
 * that every live member applied and every follower replicates normally. */
bool sim_liveness_done(struct sim *s);
void sim_liveness_describe(struct sim *s, char *buf, size_t size);

#define SIM_TRACE(s, node, ...)                                                          \
    do {                                                                                 \
        if ((s)->opt.trace)                                                              \
            sim_trace(&(s)->w, (node), __VA_ARGS__);                                     \
    } while (0)

#endif
