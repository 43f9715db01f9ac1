/*
 * fsm.h - the state machine a raft host (raftnode.h) drives for one Raft group.
 *
 * What the FSM owns: its state (for a copyset: chunk files; for the test KV FSM: range
 * files), kept as plain files with flat names in ONE directory the host gives it (the
 * group's "live" directory), and how committed entries change that state. What the host
 * owns: the Raft node, the log, ordering and parallelism of applies, snapshot metadata,
 * moving snapshot files between replicas, and the atomic switch of the live directory
 * after an install (RAFT-INVARIANTS 19).
 *
 * Lightweight snapshots (DESIGN §4). A snapshot at index S is (metadata, a list of named
 * files in the live directory, an FSM blob); the files are NOT copied. A follower that
 * installs it pulls every file's *current* content from the source, then replays the log
 * from S + 1. That is correct only when every operation is idempotent under replay over
 * newer content (RAFT-INVARIANTS 21): the FSM must guarantee it for every entry it
 * applies. The pulled content reflects entries up to D (the source's commit index when
 * the last byte was read, RAFT-INVARIANTS 17), so a file may hold effects of (S, D] that
 * the replay applies again.
 *
 * Parallel apply. Each normal entry has an apply key (ops->apply_key). Entries with
 * equal keys are applied in log order, never concurrently; entries with different keys
 * may be applied concurrently on different apply threads and complete out of order. The
 * host advances the group's applied index only when every entry <= i completed.
 * Configuration entries are barriers: on_configuration_committed runs after every entry
 * before it completed and before any entry after it starts.
 *
 * Threads (per FSM instance):
 *  - load, on_leader_start, on_leader_stop, on_configuration_committed, close: the
 *    group's Raft worker thread (load at creation: the creating thread), never while an
 *    apply of this FSM runs, except on_leader_* which may overlap applies.
 *  - apply: the host's apply threads, concurrently for different keys (see above), or
 *    the group's worker for a lone entry when nothing else of the group is applying.
 *  - save_snapshot: a host snapshot thread, concurrently with applies of entries > index.
 *  - pin_files: any host thread, serialized by the host.
 * No callback may call back into the host for the same group synchronously (no
 * spl_raftnode_propose from apply), block on the network, or take locks the caller of a
 * host function may hold.
 */
#ifndef SPL_RAFTNODE_FSM_H
#define SPL_RAFTNODE_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "raft/raft.h"

/* One committed normal entry given to apply. The host fills the inputs; the FSM sets
 * `result` (0, or a negative code the proposer gets as the outcome of its proposal: the
 * entry is applied either way) and may append bytes for the proposer to `reply`. */
struct spl_fsm_entry {
    uint64_t index;
    uint64_t term;
    uint64_t key;                 /* ops->apply_key(data) */
    const struct spl_iobuf *data; /* the payload; valid during the apply call only */
    int result;                   /* out; 0 on entry */
    struct spl_iobuf reply;       /* out; empty on entry, owned by the host */
};

/* A file of a snapshot: a flat name in the live directory and its size when listed. */
struct spl_fsm_file {
    char *name; /* 1..SPL_RAFTLOG_SNAP_NAME_MAX bytes, no '/', not "." or ".." */
    uint64_t size;
};

/* A snapshot as the FSM sees it. On save_snapshot the host fills index, term, epoch and
 * conf and the FSM adds files (spl_fsm_snapshot_add_file) and its blob; on load the host
 * passes what was saved (or installed), or a zero snapshot (index 0, no files, empty
 * blob) for a group that has none. Memory is the host's. */
struct spl_fsm_snapshot {
    uint64_t index;
    uint64_t term;
    uint64_t epoch;
    struct spl_raft_conf conf;
    uint32_t file_count;
    uint32_t file_cap;
    struct spl_fsm_file *files;
    struct spl_iobuf blob; /* the FSM's own metadata, <= SPL_RAFTNODE_FSM_BLOB_MAX bytes */
};

/* spl_fsm_snapshot_add_file - list `name` (size `size`) in s. Names are copied.
 * 0; SPL_EINVAL_ARG (bad name); SPL_ETOOBIG (over SPL_RAFTLOG_SNAP_FILES_MAX); -ENOMEM. */
int spl_fsm_snapshot_add_file(struct spl_fsm_snapshot *s, const char *name, uint64_t size);

/* spl_fsm_snapshot_init / _reset - an empty snapshot / free its files and blob (the struct
 * is empty and reusable afterwards). */
void spl_fsm_snapshot_init(struct spl_fsm_snapshot *s);
void spl_fsm_snapshot_reset(struct spl_fsm_snapshot *s);

/* spl_fsm_name_is_valid - true when name is a valid snapshot file name (see above). */
bool spl_fsm_name_is_valid(const char *name);

struct spl_fsm_ops {
    /* Load the state found in `dir` as of snapshot `snap` and drop any previous in-memory
     * state. dir is the group's live directory: empty for a new group, the FSM's own
     * files after a restart, or the files pulled by an install (then they may reflect
     * entries after snap->index, up to D). The host then applies the log from
     * snap->index + 1. 0, or a negative code (the group fails to open / the install is
     * retried). Required. */
    int (*load)(void *ctx, const char *dir, const struct spl_fsm_snapshot *snap);

    /* The apply key of a normal entry's payload (deterministic: the same on every
     * replica). Entries whose payload the FSM cannot parse may return any key; apply
     * then reports the error. Required. */
    uint64_t (*apply_key)(void *ctx, const struct spl_iobuf *data);

    /* Apply entries[0..count), in array order (which is log order). All of them are
     * committed; the batch may mix keys (the host guarantees that no other thread applies
     * an entry with any of these keys meanwhile). Effects need not be durable on return
     * (save_snapshot makes them so). A failure to apply that leaves the state unknown
     * (EIO) must crash the process (ASSERT): Raft repairs a replica that restarts, never
     * one that goes on with a hole. Required. */
    void (*apply)(void *ctx, struct spl_fsm_entry *entries, uint32_t count);

    /* This replica became leader in `term` / stopped leading `term`. Optional. */
    void (*on_leader_start)(void *ctx, uint64_t term);
    void (*on_leader_stop)(void *ctx, uint64_t term);

    /* A configuration entry at `index` applied (or a snapshot with that configuration was
     * loaded): the group's membership is now conf and its epoch `epoch` (DESIGN §1).
     * Optional. */
    void (*on_configuration_committed)(void *ctx, const struct spl_raft_conf *conf,
                                       uint64_t epoch, uint64_t index);

    /* Take a lightweight snapshot at `index`: every entry <= index has been applied
     * (entries > index may be applying right now). Make the effects of entries <= index
     * durable (fsync the files they touched: RAFT-INVARIANTS 16), then list the files a
     * new replica needs (spl_fsm_snapshot_add_file) and set out->blob. No data copy.
     * 0, or a negative code (the snapshot is skipped and retried later). Required. */
    int (*save_snapshot)(void *ctx, uint64_t index, struct spl_fsm_snapshot *out);

    /* pinned == true: some replica is pulling files of a snapshot from this one; until
     * the matching false, do not delete or rename any listed file other than as a
     * replayable log operation would (deleting a chunk is fine, a background rewrite
     * is not). Optional. */
    void (*pin_files)(void *ctx, bool pinned);

    /* The host is done with the FSM (group destroyed or host stopping); no other callback
     * runs after or during it. Optional. */
    void (*close)(void *ctx);
};

/* An FSM instance: ops plus the FSM's context. */
struct spl_fsm {
    const struct spl_fsm_ops *ops;
    void *ctx;
};

#endif
