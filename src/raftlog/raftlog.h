/*
 * raftlog.h - durable Raft log storage for many groups per process (copysets).
 *
 * What it owns, per group (one directory, e.g. copysets/<id>/log): the log entries in
 * segment files taken from a pre-allocated pool (walpool/), an in-memory index
 * (index -> segment, offset, term), the hard state (term, vote, commit) and the latest
 * snapshot's metadata. Per disk (one `struct spl_raftlog_env`): the segment pool and the
 * sync workers that batch fdatasyncs of every dirty group ("group commit").
 * What it leaves to others: what entries mean, when to snapshot and compact (the
 * copyset), the chunk files a snapshot lists, and every decision of the Raft core; the
 * adapter to `struct spl_raft_storage` is raft_storage.h. The on-disk formats are in
 * docs/format-raftlog.md; all I/O goes through `struct spl_vfs` (vfs.h).
 *
 * Durability contract: spl_raftlog_append() writes the entries (and records the hard
 * state) at once, so reads see them immediately, and runs its callback only once every
 * entry and the hard state it carried are durable (fdatasync'ed). A caller must not send
 * a message that depends on them before that callback (RAFT-INVARIANTS 2, 14). Every
 * other mutating call (truncate, compact, snapshot meta) is synchronous and durable on
 * return. After an I/O error the group stops (SPL_ELOG_FAILED from then on; pending
 * callbacks get the error): reopening it recovers exactly what was durable.
 *
 * Threads:
 *  - env open/close/stats: any one thread, with no group calls running.
 *  - everything taking a `struct spl_raftlog *`: one thread at a time per group (its
 *    owner; different groups may be driven from different threads concurrently).
 *  - callbacks run on a sync worker thread of the env (or, with sync_threads == 0, in
 *    the thread that calls spl_raftlog_env_poll()); they must be short and must not call
 *    any spl_raftlog function (post the completion to the owner instead).
 */
#ifndef SPL_RAFTLOG_RAFTLOG_H
#define SPL_RAFTLOG_RAFTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "base/limits.h"
#include "raftlog/format.h"
#include "raftlog/vfs.h"

struct spl_raftlog_env;
struct spl_raftlog;

/* ---- the env: one per disk ---- */

enum spl_raftlog_sync_mode {
    /* each dirty group's segment (then hard state) gets its own fdatasync; sync_threads
     * workers issue them in parallel so the device merges the cache flushes */
    SPL_RAFTLOG_SYNC_FDATASYNC = 0,
    /* one syncfs() per round covers every dirty group at once (one worker); also flushes
     * whatever else is dirty on that file system */
    SPL_RAFTLOG_SYNC_SYNCFS = 1,
};

struct spl_raftlog_env_config {
    const struct spl_vfs *vfs;  /* NULL: spl_vfs_posix() */
    const char *pool_dir;       /* walpool/, formatted by spl_raftlog_pool_format() */
    uint64_t segment_size;      /* 0: SPL_RAFTLOG_SEGMENT_SIZE_DEFAULT; must match the pool */
    uint32_t sync_threads;      /* 0: no threads, the caller runs spl_raftlog_env_poll() */
    enum spl_raftlog_sync_mode sync_mode;
    bool pool_fallback_create;  /* pool empty: create + fallocate a file instead of failing */
    uint64_t nonce_seed;        /* 0: segment nonces from the OS; else deterministic (sim) */
};

struct spl_raftlog_env_stats {
    uint64_t appends;        /* append calls accepted */
    uint64_t entries;        /* entries written */
    uint64_t bytes;          /* record bytes written */
    uint64_t syncs;          /* fdatasync + syncfs calls (segments, hard state, rolls) */
    uint64_t sync_rounds;    /* worker passes: one group (FDATASYNC) or one batch (SYNCFS) */
    uint64_t hs_writes;      /* hard state slots written */
    uint64_t pool_free;      /* files in the pool now */
    uint64_t segments_taken; /* from the pool */
    uint64_t segments_returned;
    uint64_t segments_created; /* by pool_fallback_create */
};

/* spl_raftlog_pool_format - create or grow the pool in pool_dir (created if missing) to
 * file_count files of segment_size bytes each: each new file is fallocate'd, filled with
 * zeros (so later appends overwrite allocated, written extents and need no metadata) and
 * fdatasync'ed before it gets its final name. Existing files are kept. 0; -errno;
 * SPL_ELOG_FOREIGN (existing files of another size); SPL_EINVAL_ARG (size out of
 * bounds or not a multiple of SPL_BLOCK_SIZE, count over SPL_RAFTLOG_POOL_FILES_MAX). */
int spl_raftlog_pool_format(const struct spl_vfs *vfs, const char *pool_dir,
                            uint64_t segment_size, uint32_t file_count);

/* spl_raftlog_env_open - load the pool and start the sync workers. 0; -errno;
 * SPL_EINVAL_ARG (config out of bounds); SPL_ELOG_FOREIGN (pool files of another size). */
int spl_raftlog_env_open(const struct spl_raftlog_env_config *cfg,
                         struct spl_raftlog_env **out);

/* spl_raftlog_env_close - stop the workers and free the env. Every group must be closed. */
void spl_raftlog_env_close(struct spl_raftlog_env *env);

/* spl_raftlog_env_poll - with sync_threads == 0: run every pending sync and callback in
 * this thread. Returns the number of groups synced (0: nothing was pending). */
int spl_raftlog_env_poll(struct spl_raftlog_env *env);

void spl_raftlog_env_stats(struct spl_raftlog_env *env, struct spl_raftlog_env_stats *out);

/* ---- opening a group ---- */

#define SPL_RAFTLOG_CREATE 0x1 /* create the directory and an empty log if there is none */

/* spl_raftlog_open - open (recover) the log of group_id in dir. Recovery verifies every
 * record's CRC; a torn or partial record at the end of the last segment is cut (and
 * logged); a bad record followed by valid data, a gap or any other inconsistency is
 * refused with SPL_ELOG_CORRUPT and a message naming the file and offset (in why, when
 * given, and in the log). If the snapshot meta is ahead of the log (a crash inside
 * spl_raftlog_install_snapshot), the log is reset to the snapshot as that call would.
 * 0; -ENOENT (no log in dir and no CREATE); SPL_ELOG_CORRUPT; SPL_ELOG_FOREIGN (files of
 * another group); SPL_EVERSION; -errno; SPL_ELOG_POOLEMPTY is never returned here. */
int spl_raftlog_open(struct spl_raftlog_env *env, uint64_t group_id, const char *dir,
                     int flags, struct spl_raftlog **out, char *why, size_t why_len);

/* spl_raftlog_close - wait for pending syncs (their callbacks run), make a lazily noted
 * commit durable, close the files and free the log. Never fails; NULL is fine. */
void spl_raftlog_close(struct spl_raftlog *log);

/* spl_raftlog_remove - delete the (closed) log in dir: its segments go back to the pool,
 * its other files and the directory are removed. 0; -errno; -ENOENT. */
int spl_raftlog_remove(struct spl_raftlog_env *env, const char *dir);

/* ---- reading (owner thread) ---- */

struct spl_raftlog_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* opaque to the log: the Raft entry type */
    struct spl_iobuf data;
};

/* The first stored entry's index, and the last's (first - 1 when the log is empty). */
uint64_t spl_raftlog_first_index(const struct spl_raftlog *log);
uint64_t spl_raftlog_last_index(const struct spl_raftlog *log);

/* spl_raftlog_term - the term of entry index, for first - 1 <= index <= last (first - 1
 * is the compaction point: the term comes from the segment header or the snapshot).
 * 0; SPL_ERAFT_COMPACTED (below); SPL_ERAFT_UNAVAILABLE (above). */
int spl_raftlog_term(const struct spl_raftlog *log, uint64_t index, uint64_t *term_out);

/* spl_raftlog_entries - read entries [lo, hi) into out[0..*count_out): stops at out_cap
 * entries, or before the entry that would take the data total over max_bytes (at least
 * one entry is always returned). Each record's CRC is checked again. The caller owns the
 * references in out[i].data (spl_iobuf_reset them); out[i].data must be empty on entry.
 * 0; SPL_ERAFT_COMPACTED (lo < first); SPL_ERAFT_UNAVAILABLE (hi > last + 1);
 * SPL_EINVAL_ARG (lo >= hi, out_cap 0); SPL_ELOG_CORRUPT; -errno; -ENOMEM. On error
 * *count_out is 0 and out holds no references. */
int spl_raftlog_entries(struct spl_raftlog *log, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                        struct spl_raftlog_entry *out, uint32_t out_cap, uint32_t *count_out);

/* The hard state as last given to append/set_commit (durable or not yet). */
void spl_raftlog_hardstate(const struct spl_raftlog *log, struct spl_raftlog_hardstate *out);

/* The latest snapshot's index and term (0, 0 when there is none). */
uint64_t spl_raftlog_snapshot_index(const struct spl_raftlog *log);
uint64_t spl_raftlog_snapshot_term(const struct spl_raftlog *log);

/* spl_raftlog_snapmeta - a copy of the latest snapshot meta (files and blob included) into
 * out; free it with spl_raftlog_snapmeta_free(). A log without a snapshot gives a zero
 * meta. 0 or -ENOMEM. */
int spl_raftlog_snapmeta(const struct spl_raftlog *log, struct spl_raftlog_snapmeta *out);

/* ---- writing (owner thread) ---- */

struct spl_raftlog_req;
typedef void (*spl_raftlog_cb)(struct spl_raftlog_req *req, int status);

/* One in-flight append, owned by the caller (embed it, pool it) until its callback. */
struct spl_raftlog_req {
    void *data; /* the caller's */
    /* private */
    struct spl_raftlog_req *priv_next;
    uint64_t priv_seq;
    spl_raftlog_cb priv_cb;
    int priv_status;
};

/* spl_raftlog_append - append entries[0..count) and/or set the hard state, then run
 * cb(req, status) once all of it is durable (status 0) or the log failed (status < 0).
 * entries[0].index may be <= last: the stored entries from there on are deleted first
 * (durably, before the new ones are written; it must be > the snapshot index and above
 * the commit index). Entries must have consecutive indexes, non-decreasing terms not
 * below the term of entries[0].index - 1, and data of at most the segment's record
 * capacity. count 0 and hs NULL is a sync barrier. The data is copied into the segment:
 * the caller keeps its iobufs. A call that returns an error never runs cb.
 * 0; SPL_ELOG_BADINDEX (a gap, an index at or below the snapshot, non-contiguous or
 * decreasing terms); SPL_ETOOBIG (an entry over the record capacity, count over
 * SPL_RAFTLOG_APPEND_ENTRIES_MAX); SPL_ELOG_POOLEMPTY (no segment for a roll; nothing
 * written in that case is lost, the group stays usable once the pool has files);
 * SPL_ELOG_FAILED (an earlier I/O error); -errno (this call's I/O failed: the log fails). */
int spl_raftlog_append(struct spl_raftlog *log, const struct spl_raftlog_entry *entries,
                       uint32_t count, const struct spl_raftlog_hardstate *hs,
                       struct spl_raftlog_req *req, spl_raftlog_cb cb);

/* spl_raftlog_append_wait - append() and block until durable (tests, tools). With
 * sync_threads == 0 it runs spl_raftlog_env_poll() itself. Returns as append() or the
 * callback's status. */
int spl_raftlog_append_wait(struct spl_raftlog *log, const struct spl_raftlog_entry *entries,
                            uint32_t count, const struct spl_raftlog_hardstate *hs);

/* spl_raftlog_set_commit - note a new commit index without asking for a sync: it is
 * written with the next sync that happens anyway (or at close). Raft's commit is a hint
 * that may be persisted lazily (raft.h); term and vote go through append(). commit must
 * not decrease. */
void spl_raftlog_set_commit(struct spl_raftlog *log, uint64_t commit);

/* spl_raftlog_truncate_suffix - delete entries >= index, durably. index must be above the
 * snapshot index and the commit index (ASSERT: deleting committed entries is a Raft
 * bug). index > last is a no-op. 0; SPL_ELOG_BADINDEX (index < first or <= snapshot);
 * SPL_ELOG_FAILED; -errno. */
int spl_raftlog_truncate_suffix(struct spl_raftlog *log, uint64_t index);

/* spl_raftlog_compact_prefix - give back to the pool every segment whose entries are all
 * <= index (never the last segment); index must be <= the snapshot index: the log never
 * deletes entries the snapshot does not cover. Entries <= index may remain readable.
 * 0; SPL_EINVAL_ARG (index > snapshot index); SPL_ELOG_FAILED; -errno. */
int spl_raftlog_compact_prefix(struct spl_raftlog *log, uint64_t index);

/* spl_raftlog_save_snapmeta - atomically replace the snapshot meta by m (a snapshot this
 * replica took: first - 1 <= m->index <= last, term(m->index) == m->term). Write to a
 * temporary, fdatasync, rename, fsync the directory. The pointers in m stay the caller's.
 * 0; SPL_ERAFT_STALE (m->index < current); SPL_EINVAL_ARG (index/term not in the log, bad
 * names); SPL_ETOOBIG; SPL_ELOG_FAILED; -errno. */
int spl_raftlog_save_snapmeta(struct spl_raftlog *log, const struct spl_raftlog_snapmeta *m);

/* spl_raftlog_install_snapshot - a snapshot received from the leader: save m as above
 * (any index above the current snapshot's), then if the log holds entry m->index with
 * m->term keep the entries after it, else empty the log so that it continues at
 * m->index + 1. 0; SPL_ERAFT_STALE; SPL_ETOOBIG; SPL_EINVAL_ARG; SPL_ELOG_FAILED; -errno. */
int spl_raftlog_install_snapshot(struct spl_raftlog *log, const struct spl_raftlog_snapmeta *m);

/* ---- inspection (owner thread) ---- */

struct spl_raftlog_seg_info {
    char name[48];
    uint64_t seq;
    uint64_t first_index;
    uint64_t last_index; /* first - 1 when empty */
    uint64_t bytes_used; /* header region + records */
    bool sealed;
};

/* Number of live segments, and the i-th one (0 = oldest). */
uint32_t spl_raftlog_segment_count(const struct spl_raftlog *log);
void spl_raftlog_segment_info(const struct spl_raftlog *log, uint32_t i,
                              struct spl_raftlog_seg_info *out);

/* The most data one entry may carry with this env's segment size. */
uint64_t spl_raftlog_entry_data_max(const struct spl_raftlog_env *env);

#endif
