/*
 * internal.h - what the pieces of src/raftnode share: the host, its workers, groups,
 * events, call requests, apply tasks, the storage adapter, the group state file, the
 * snapshot descriptor and the file-copy engine. Not for use outside src/raftnode.
 *
 * Ownership and locks:
 *  - host->groups_mu (rwlock): the group table. Lookups take a reference (g->refs).
 *  - host->peers_mu: the address book and the peer channels.
 *  - w->mu: a worker's inbox. Everything else of a worker (its groups' Raft cores, raftlog
 *    handles, apply queues, outboxes) is touched by the worker thread only.
 *  - g->mu: a group's apply tracker, pending proposals and reads, holds, and the status
 *    the worker publishes. Taken by the worker, apply threads, snapshot threads and any
 *    caller (status). Never held while calling a callback of the API or the FSM.
 *  - lane->mu: an apply thread's queue.
 * Lock order: groups_mu, then g->mu, then w->mu / lane->mu / peers_mu (leaves).
 */
#ifndef SPL_RAFTNODE_INTERNAL_H
#define SPL_RAFTNODE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/random.h"
#include "metrics/metrics.h"
#include "raft/raft.h"
#include "raftlog/raftlog.h"
#include "raftnode/fsm.h"
#include "raftnode/raftnode.h"
#include "rpc/rpc.h"

#define SPL__RN_TAG "raftnode"
#define SPL__RN_PATH_MAX 512
#define SPL__RN_DATA_DIR_MAX 384 /* data_dir; group paths fit SPL__RN_PATH_MAX */
#define SPL__RN_SUBPATH_MAX (SPL__RN_PATH_MAX + 64) /* a path under a group dir */
#define SPL__RN_PROP_SLOTS 4096   /* proposal hash slots per group (index mod) */
#define SPL__RN_HOLDS_MAX 8       /* snapshot holds per group (one per installer) */
#define SPL__RN_HOLD_IDLE_NS (120ull * 1000000000ull) /* a hold without GetFile expires */
#define SPL__RN_APPLY_BATCH 64    /* entries per FSM apply call */
#define SPL__RN_UNKNOWN_REPORT_MAX 64
#define SPL__RN_BUCKETS                                                                            \
    8192 /* host group table chains */ /* unknown group ids listed in one Send reply */

struct spl__rn_group;
struct spl__rn_worker;
struct spl_raftnode_host;

/* ---- events: everything a worker is told ------------------------------------------- */

enum spl__rn_ev_kind {
    SPL__RN_EV_MSG = 1,         /* a decoded Raft message (struct spl__rn_msg_ev) */
    SPL__RN_EV_CALL,            /* an API call (struct spl__rn_req) */
    SPL__RN_EV_PERSISTED,       /* raftlog append completed (embedded in the group) */
    SPL__RN_EV_APPLIED,         /* applied advanced past what the worker waits for */
    SPL__RN_EV_INSTALLED,       /* a snapshot download ended (embedded in the group) */
    SPL__RN_EV_SNAP_SAVED,      /* FSM save_snapshot ended (embedded in the group) */
    SPL__RN_EV_UNREACHABLE,     /* a Send RPC failed (struct spl__rn_fail_ev) */
    SPL__RN_EV_SNAP_DONE,       /* an installer reported an install (struct spl__rn_fail_ev) */
    SPL__RN_EV_ADD,             /* start driving a new group (struct spl__rn_ctl_ev) */
    SPL__RN_EV_REMOVE,          /* stop a group (struct spl__rn_ctl_ev) */
};

struct spl__rn_event {
    struct spl__rn_event *next;
    uint8_t kind;
    bool queued;                /* embedded events: under w->mu */
    struct spl__rn_group *g;    /* holds a reference, except embedded events */
};

struct spl__rn_msg_ev {
    struct spl__rn_event ev;
    struct spl_raft_msg msg;
    struct spl_raft_entry entries[]; /* msg.entry_count of them */
};

struct spl__rn_fail_ev {
    struct spl__rn_event ev;
    uint64_t peer;
    uint8_t msg_type;           /* UNREACHABLE: the type that failed (APPEND / SNAPSHOT) */
    bool ok;                    /* SNAP_DONE */
    uint64_t snap_index, catchup_index;
};

struct spl__rn_ctl_ev {
    struct spl__rn_event ev;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    bool remove_data;
    int status;
};

/* ---- API calls --------------------------------------------------------------------- */

enum spl__rn_call_kind {
    SPL__RN_CALL_PROPOSE = 1,
    SPL__RN_CALL_READ,
    SPL__RN_CALL_CONF,
    SPL__RN_CALL_TRANSFER,
    SPL__RN_CALL_SNAPSHOT,
};

enum spl__rn_req_state {
    SPL__RN_REQ_NEW = 0,
    SPL__RN_REQ_PROPOSED,       /* in the proposal table, waiting for its entry */
    SPL__RN_REQ_READ_WAIT_INDEX, /* waiting for the read state of read_ctx */
    SPL__RN_REQ_READ_WAIT_APPLY, /* waiting for applied >= index */
    SPL__RN_REQ_WAIT_OTHER,     /* transfer / snapshot: the worker completes it */
};

struct spl__rn_req {
    struct spl__rn_event ev;    /* kind SPL__RN_EV_CALL */
    uint8_t call;               /* enum spl__rn_call_kind */
    uint8_t state;              /* enum spl__rn_req_state (g->mu once registered) */
    uint8_t conf_op;
    spl_raftnode_done_cb done_cb;
    void *ctx;
    uint64_t start_ns;
    uint64_t deadline_ns;
    uint64_t index, term;       /* the entry (proposals), the read index (reads) */
    uint64_t read_ctx;
    uint64_t node;              /* conf change / transfer target */
    uint64_t expected_epoch;
    struct spl_iobuf data;      /* proposal payload until proposed */
    struct spl__rn_req *slot_next; /* proposal table chain / read list */
    struct spl__rn_req *t_prev, *t_next; /* the group's deadline list (registration order) */
};

/* ---- apply ------------------------------------------------------------------------- */

struct spl__rn_task {
    struct spl__rn_task *next;
    struct spl__rn_group *g;
    uint64_t index, term, key;
    uint64_t commit_ns;         /* when the worker handed it to the apply path */
    uint8_t type;               /* enum spl_raft_entry_type */
    struct spl_iobuf data;
};

struct spl__rn_lane {
    struct spl_raftnode_host *h;
    uint32_t index;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct spl__rn_task *head, *tail;
    bool stop;
    bool sleeping;
};

/* ---- snapshot descriptor (the data of spl_raft_snapshot_meta) ----------------------- */

/* The application part of a snapshot as the Raft core and the wire carry it: the file
 * list and the FSM blob (wire form: descriptor.c). */
struct spl__rn_desc {
    uint32_t file_count;
    struct spl_fsm_file *files; /* names point into `owned` after decode */
    uint32_t blob_len;
    const uint8_t *blob;
    void *owned;
};

int spl__rn_desc_encode(uint32_t file_count, const struct spl_fsm_file *files,
                        const void *blob, uint32_t blob_len, struct spl_iobuf *out);
int spl__rn_desc_decode(const struct spl_iobuf *in, struct spl__rn_desc *out);
void spl__rn_desc_free(struct spl__rn_desc *d);

/* ---- group state file (state.c) ------------------------------------------------------ */

/* <group dir>/STATE: which directory is live, and the last install (RAFT-INVARIANTS 17,
 * 19). Replaced atomically (temporary, fsync, rename, fsync dir). */
struct spl__rn_state {
    uint64_t group;
    uint64_t live_gen;          /* the live FSM directory is fsm.<live_gen> */
    uint64_t install_index;     /* S of the last install (0: none) */
    uint64_t install_term;
    uint64_t install_epoch;
    uint64_t catchup_index;     /* D */
    struct spl_raft_conf install_conf;
    struct spl_iobuf install_desc; /* the installed snapshot's descriptor */
};

void spl__rn_state_init(struct spl__rn_state *s);
void spl__rn_state_reset(struct spl__rn_state *s);
/* 0; -ENOENT (no file); SPL_ECORRUPT; SPL_EVERSION; -errno. */
int spl__rn_state_load(const char *group_dir, struct spl__rn_state *out);
int spl__rn_state_save(const char *group_dir, const struct spl__rn_state *s);

/* ---- storage adapter (storage.c) ---------------------------------------------------- */

struct spl__rn_storage {
    struct spl_raft_storage storage;
    struct spl_raftlog *log;
};

void spl__rn_storage_init(struct spl__rn_storage *st, struct spl_raftlog *log);

/* The latest snapshot of log as the FSM sees it (files, blob, conf, epoch). */
int spl__rn_log_fsm_snapshot(struct spl_raftlog *log, struct spl_fsm_snapshot *out);

/* ---- file copy (filecopy.c) --------------------------------------------------------- */

/* How the file-copy engine reads a piece from a source; the real one is a GetFile RPC
 * (snapshot.c), unit tests plug in their own. Fills *resp (meta) and appends the bytes to
 * data. 0, or a negative code (retried at the same offset). */
struct spl__rn_getfile_resp {
    uint32_t crc32c;
    uint64_t file_size;
    bool eof;
    bool missing;
    uint64_t commit_index;
};

struct spl__rn_fetch_ops {
    int (*get_file)(void *ctx, uint64_t source, uint64_t group, uint64_t snap_index,
                    uint64_t snap_term, const char *name, uint64_t offset, uint32_t length,
                    struct spl__rn_getfile_resp *resp, struct spl_iobuf *data);
};

struct spl__rn_throttle {
    pthread_mutex_t mu;
    uint64_t bytes_per_sec;     /* 0: unlimited */
    uint64_t next_ns;           /* when the next byte may be fetched */
};

void spl__rn_throttle_init(struct spl__rn_throttle *t, uint64_t bytes_per_sec);
/* Account for n bytes; sleeps as needed to keep the rate. Returns the ns slept. */
uint64_t spl__rn_throttle_take(struct spl__rn_throttle *t, uint64_t n);

struct spl__rn_copy {
    /* in */
    const char *staging_dir;
    uint64_t group, snap_index, snap_term;
    uint32_t file_count;
    const struct spl_fsm_file *files;
    uint64_t sources[SPL_RAFT_PEERS_MAX]; /* tried in order, rotating after failures */
    uint32_t source_count;
    uint32_t piece_bytes;
    uint32_t retry_max;         /* failures in a row before giving up; 0: forever */
    uint32_t retry_sleep_ms;    /* after each failure (doubling up to 1 s) */
    const struct spl__rn_fetch_ops *fetch;
    void *fetch_ctx;
    struct spl__rn_throttle *throttle; /* may be NULL */
    atomic_bool *stop;          /* set: give up with SPL_ESHUTDOWN */
    /* out */
    uint64_t catchup_index;     /* D: the largest commit index any piece reported */
    uint64_t bytes;             /* bytes written to staging */
    uint64_t retries;           /* failed fetches (including CRC mismatches) */
    uint64_t crc_errors;
    uint64_t refetched_bytes;   /* bytes fetched again after a failure (must stay 0) */
};

/* spl__rn_copy_run - fetch every file into staging_dir (created; files written from
 * offset 0, each piece checked against its CRC32C before it is written; a failure
 * retries the same offset: resumable), fsync the files and the directory. 0;
 * SPL_ESHUTDOWN; the last fetch error after retry_max failures; -errno (local I/O). */
int spl__rn_copy_run(struct spl__rn_copy *c);

/* ---- transport (transport.c) -------------------------------------------------------- */

/* Messages queued for one peer by one worker. */
struct spl__rn_outq {
    uint64_t node;
    struct spl_iobuf att;
    uint32_t count;
    uint32_t lens[SPL_RAFTNODE_BATCH_MSGS_MAX];
    uint32_t track_count;       /* APPEND / SNAPSHOT messages: reported if the RPC fails */
    struct {
        uint64_t group;
        uint8_t type;
    } track[SPL_RAFTNODE_BATCH_MSGS_MAX];
};

/* spl__rn_outq_add - encode m at the end of q. 0; SPL_ETOOBIG (q is full: flush first, or
 * m alone is over the limit); -ENOMEM. */
int spl__rn_outq_add(struct spl__rn_outq *q, const struct spl_raft_msg *m);
/* spl__rn_outq_full_for - true when q cannot take a message of about `bytes` more. */
bool spl__rn_outq_full(const struct spl__rn_outq *q, uint64_t bytes);
void spl__rn_outq_reset(struct spl__rn_outq *q);

/* Decoding a batch: calls msg_cb for every message that decodes (the message holds
 * references into att; msg_cb owns them), counts the others. */
typedef void (*spl__rn_batch_msg_cb)(void *arg, struct spl_raft_msg *m);
int spl__rn_batch_decode(struct spl_iobuf *att, const uint32_t *lens, size_t count,
                         spl__rn_batch_msg_cb msg_cb, void *arg, uint32_t *bad_out);

void spl__rn_transport_flush(struct spl__rn_worker *w);
void spl__rn_send_now(struct spl_raftnode_host *h, const struct spl_raft_msg *msgs, uint32_t count);
void spl__rn_send(struct spl__rn_worker *w, const struct spl_raft_msg *m);
extern const struct spl_rpc_service spl__rn_raft_service;

/* ---- groups ------------------------------------------------------------------------ */

struct spl__rn_hold {
    uint64_t installer;         /* 0: free slot */
    uint64_t snap_index;        /* S: entries > S are kept */
    uint64_t catchup_index;     /* the last commit index GetFile told it (D so far) */
    uint64_t last_ns;           /* last activity */
};

struct spl__rn_install {
    struct spl__rn_group *g;
    struct spl__rn_copy copy;
    struct spl_raft_snapshot_meta meta; /* index, term, epoch, conf; data = descriptor */
    struct spl__rn_desc desc;
    char staging[SPL__RN_SUBPATH_MAX];
    uint64_t gen;
    uint64_t source;
    uint64_t start_ns;
    int status;
    struct spl__rn_install *next; /* install queue */
};

struct spl__rn_snapjob {
    struct spl__rn_group *g;
    uint64_t index, term, epoch;
    struct spl_raft_conf conf;
    struct spl_fsm_snapshot snap;
    int status;
    struct spl__rn_snapjob *next;
};

struct spl__rn_group {
    uint64_t id;
    struct spl_raftnode_host *h;
    struct spl__rn_worker *w;
    atomic_int refs;
    atomic_bool dying;
    struct spl__rn_group *hnext; /* host table chain (groups_mu) */

    /* worker-owned */
    struct spl_raft *raft;
    struct spl_raftlog *log;
    struct spl__rn_storage st;
    struct spl_fsm fsm;
    struct spl_rand rand;
    char dir[SPL__RN_PATH_MAX];
    char log_dir[SPL__RN_SUBPATH_MAX];
    uint64_t live_gen;
    struct spl__rn_state state;
    bool dirty;
    struct spl__rn_group *dirty_next;
    bool rd_pending;            /* between spl_raft_ready and spl_raft_advance */
    bool rd_persisting;         /* the ready's append is with raftlog */
    bool rd_msgs_sent;          /* the sync thread already sent rd.msgs (persist_cb) */
    struct spl_raft_ready rd;
    struct spl_raftlog_req log_req;
    struct spl__rn_event ev_persisted;
    int persist_status;         /* set by the raftlog callback */
    uint64_t persist_start_ns;
    struct spl__rn_event ev_applied;
    struct spl__rn_event ev_installed;
    struct spl__rn_event ev_snap_saved;
    uint8_t role;
    uint64_t term, leader;
    uint64_t hs_term, hs_vote;  /* what the log has durably (or in flight) */
    uint64_t commit_seen;       /* the latest commit of a ready: persisted lazily */
    uint64_t commit_noted;      /* the latest given to spl_raftlog_set_commit / append */
    uint64_t snap_from;         /* sender of the last SNAPSHOT message stepped */
    uint64_t read_batch_ctx;    /* reads of this pass share one read-index round */
    uint64_t read_seq;
    struct spl__rn_task *aq_head, *aq_tail; /* committed, not yet handed to apply threads */
    uint64_t conf_epoch;        /* epoch of the applied state (conf entries are barriers) */
    struct spl_raft_conf conf;
    uint64_t snap_index;        /* the log's latest snapshot */
    struct spl__rn_snapjob *snapjob; /* a save_snapshot in progress */
    struct spl__rn_install *install; /* a download in progress (rd.snapshot pending) */
    bool install_ready;         /* its download ended (SPL__RN_EV_INSTALLED seen) */
    atomic_bool install_stop;   /* the group is dying: abandon the download */
    uint64_t install_source;    /* where the last install came from (SnapshotDone) */
    uint64_t install_done_index; /* an install to report with SnapshotDone (0: none) */
    struct spl__rn_ctl_ev *remove_ctl; /* who waits for this group to close */
    struct spl__rn_req *snap_waiters;
    struct spl__rn_req *transfer;
    bool pinned;
    uint64_t hold_floor_logged;

    /* g->mu */
    pthread_mutex_t mu;
    uint64_t applied;           /* every entry <= applied completed */
    uint64_t dispatched;        /* highest index handed to the apply path */
    uint64_t inflight;          /* tasks with the apply threads */
    uint8_t *done;              /* SPL_RAFTNODE_APPLY_WINDOW flags, index mod window */
    uint64_t wake_applied;      /* post ev_applied once applied >= this (0: none) */
    struct spl__rn_req *prop_slots[SPL__RN_PROP_SLOTS];
    struct spl__rn_req *reads;  /* waiting reads (any order) */
    struct spl__rn_req *t_head, *t_tail; /* deadline list */
    uint32_t pending;           /* proposals + reads registered */
    struct spl__rn_hold holds[SPL__RN_HOLDS_MAX];
    uint64_t catchup_index;     /* D of the last install */
    uint64_t live_gen_pub;      /* live_gen, for GetFile on snapshot threads */
    uint64_t installs, install_bytes, install_ns;
    /* published by the worker */
    struct spl_raftnode_group_status pub;
};

/* ---- workers and the host ------------------------------------------------------------ */

struct spl__rn_worker {
    struct spl_raftnode_host *h;
    uint32_t index;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct spl__rn_event *head, *tail; /* inbox */
    bool sleeping;
    atomic_bool idle;           /* waiting with an empty inbox (read without w->mu) */
    bool stop;
    /* worker thread only */
    struct spl__rn_group **groups;
    uint32_t group_count, group_cap;
    struct spl__rn_group *dirty;
    struct spl__rn_outq **outqs;
    uint32_t outq_count;
    uint64_t next_tick_ns;
    struct spl_raftlog_entry *log_entries; /* scratch for appends */
};

struct spl__rn_peer {
    uint64_t id;
    char address[SPL_RAFTNODE_ADDR_MAX];
    spl_rpc_channel *ch;
};

struct spl__rn_metrics {
    struct spl_gauge *groups, *leaders;
    struct spl_counter *msgs_sent, *msgs_received, *msgs_rejected;
    struct spl_counter *rpcs_sent, *rpcs_received, *rpcs_failed, *heartbeats_sent;
    struct spl_counter *proposals, *proposals_failed, *ticks;
    struct spl_counter *snapshots, *installs, *install_bytes, *getfile_bytes;
    struct spl_histogram *commit_latency, *persist_latency, *quorum_latency;
};

struct spl_raftnode_host {
    struct spl_raftnode_opts opts;
    char data_dir[SPL__RN_DATA_DIR_MAX];
    struct spl_raftlog_env *env;
    struct spl__rn_metrics m;
    atomic_bool stopping;

    pthread_rwlock_t groups_mu;
    struct spl__rn_group **table; /* SPL__RN_BUCKETS chains by id */
    uint32_t group_count;
    pthread_mutex_t create_mu;  /* serializes group create / destroy */

    pthread_mutex_t peers_mu;
    struct spl__rn_peer *peers;
    uint32_t peer_count, peer_cap;
    spl_rpc_channel *retired[SPL_RAFTNODE_NODES_MAX]; /* replaced by set_peer; closed at the end */
    uint32_t retired_count;

    struct spl__rn_worker *workers;
    uint32_t worker_count;
    struct spl__rn_lane *lanes;
    uint32_t lane_count;

    /* snapshot threads (save_snapshot, GetFile) and install threads: simple job queues */
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
    struct spl__rn_bgjob *bg_head, *bg_tail;
    pthread_t *bg_threads;
    uint32_t bg_count;
    bool bg_stop;
    pthread_mutex_t inst_mu;
    pthread_cond_t inst_cond;
    struct spl__rn_install *inst_head, *inst_tail;
    pthread_t *inst_threads;
    uint32_t inst_count;
    bool inst_stop;
    atomic_bool inst_abort;
    struct spl__rn_throttle throttle;

    /* stats (relaxed atomics) */
    atomic_uint_fast64_t st_msgs_sent, st_msgs_received, st_msgs_rejected;
    atomic_uint_fast64_t st_rpcs_sent, st_rpcs_received, st_heartbeats_sent;
    atomic_uint_fast64_t st_proposals, st_proposals_failed, st_ticks, st_getfile_bytes;
};

/* A job for a snapshot thread. */
struct spl__rn_bgjob {
    struct spl__rn_bgjob *next;
    void (*run)(struct spl__rn_bgjob *job);
};

/* ---- cross-file helpers -------------------------------------------------------------- */

/* host.c */
struct spl__rn_group *spl__rn_group_get(struct spl_raftnode_host *h, uint64_t id);
void spl__rn_group_put(struct spl__rn_group *g);
void spl__rn_post(struct spl__rn_worker *w, struct spl__rn_event *ev);
/* Post an embedded event unless it is already queued. */
void spl__rn_post_embedded(struct spl__rn_worker *w, struct spl__rn_event *ev);
spl_rpc_channel *spl__rn_peer_channel(struct spl_raftnode_host *h, uint64_t id);
void spl__rn_bg_submit(struct spl_raftnode_host *h, struct spl__rn_bgjob *job);
void spl__rn_leader_address(struct spl_raftnode_host *h, uint64_t leader, char *buf, size_t len);

/* worker.c */
void *spl__rn_worker_main(void *arg);
void spl__rn_req_complete(struct spl__rn_group *g, struct spl__rn_req *req, int status);
void spl__rn_group_mark_dirty(struct spl__rn_group *g);

/* apply.c */
void *spl__rn_lane_main(void *arg);
void spl__rn_apply_enqueue(struct spl__rn_group *g, const struct spl_raft_entry *e);
void spl__rn_apply_dispatch(struct spl__rn_group *g);
bool spl__rn_apply_idle(struct spl__rn_group *g);
void spl__rn_apply_reset(struct spl__rn_group *g, uint64_t index);
/* Register / complete under g->mu (apply.c). */
void spl__rn_prop_register(struct spl__rn_group *g, struct spl__rn_req *req);
void spl__rn_read_register(struct spl__rn_group *g, struct spl__rn_req *req);
void spl__rn_deadline_add(struct spl__rn_group *g, struct spl__rn_req *req);
void spl__rn_deadline_remove(struct spl__rn_group *g, struct spl__rn_req *req);
/* Fail every registered request matching `pred` with status (worker). */
void spl__rn_fail_pending(struct spl__rn_group *g, bool reads, bool props_above_commit,
                          uint64_t commit, int status);
void spl__rn_expire(struct spl__rn_group *g, uint64_t now_ns);
void spl__rn_read_states(struct spl__rn_group *g, const struct spl_raft_read_state *rs,
                         uint32_t count);

/* snapshot.c */
void spl__rn_snapshot_maybe(struct spl__rn_group *g, bool forced);
void spl__rn_snapshot_saved(struct spl__rn_group *g);
void spl__rn_hold_add(struct spl__rn_group *g, uint64_t installer, uint64_t snap_index);
void spl__rn_hold_release(struct spl__rn_group *g, uint64_t installer);
void spl__rn_holds_tick(struct spl__rn_group *g, const struct spl_raft_status *st);
uint64_t spl__rn_hold_floor(struct spl__rn_group *g);
void spl__rn_getfile_handler(spl_rpc_call *call, void *ctx);
void spl__rn_snapdone_handler(spl_rpc_call *call, void *ctx);

/* install.c */
void spl__rn_install_start(struct spl__rn_group *g, const struct spl_raft_snapshot_meta *s);
int spl__rn_install_finish(struct spl__rn_group *g);
void *spl__rn_install_main(void *arg);

/* worker.c: step 1..3 of a ready parked for an install */
void spl__rn_ready_resume(struct spl__rn_group *g);

/* misc */
void spl__rn_free_cb(void *ctx, void *data);

/* paths */
void spl__rn_group_dir(const struct spl_raftnode_host *h, uint64_t group, char *buf, size_t len);
int spl__rn_fsync_dir(const char *path);
int spl__rn_rmtree(const char *path);

#endif
