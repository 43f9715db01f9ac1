/*
 * raftlog_internal.h - the structures shared by the files of src/raftlog (not an API).
 *
 *   env.c      the env: config, groups' sync queue, sync workers, stats
 *   pool.c     the walpool: format, take (rename in), give back (rename out + reset)
 *   meta.c     the hard state file (two slots) and the snapshot meta file (rename)
 *   raftlog.c  one group: segments, index, append, read, truncate, compact, recovery
 *
 * Locking: a group's segment array and index are touched only by its owner thread.
 * `mu` guards the sync hand-off fields (marked below); `io_mu` is held by a sync worker
 * for the whole of its fdatasync of the group and by the owner for structural changes
 * (roll, truncate, compact, reset, close), so that no fd is closed or replaced while a
 * worker syncs it. Lock order: io_mu, then mu, then env->qmu.
 */
#ifndef SPL_RAFTLOG_INTERNAL_H
#define SPL_RAFTLOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/random.h"
#include "raftlog/raftlog.h"

#define SPL__RAFTLOG_IOV_MAX 1024    /* iovecs per pwritev (Linux IOV_MAX) */
#define SPL__RAFTLOG_BATCH_RECS 256  /* records per pwritev */
#define SPL__RAFTLOG_POOL_CREATE UINT64_MAX /* reserved "id": make a file (fallback) */

/* ---- pool ---- */

struct spl__raftlog_pool {
    const struct spl_vfs *vfs;
    char dir[SPL_RAFTLOG_PATH_MAX];
    uint64_t segment_size;
    bool fallback_create;
    pthread_mutex_t mu;
    uint64_t *free_ids; /* file numbers of free files (LIFO: reuse warm files) */
    uint32_t free_count, free_cap;
    uint64_t next_id;   /* the name a returned file gets */
};

int spl__raftlog_pool_open(struct spl__raftlog_pool *p, const struct spl_vfs *vfs,
                           const char *dir, uint64_t segment_size, bool fallback_create);
void spl__raftlog_pool_close(struct spl__raftlog_pool *p);
uint32_t spl__raftlog_pool_free_count(struct spl__raftlog_pool *p);

/* Reserve count files for later takes (ids_out[i] may be SPL__RAFTLOG_POOL_CREATE when
 * the pool is short and fallback_create is on). 0 or SPL_ELOG_POOLEMPTY (nothing
 * reserved). */
int spl__raftlog_pool_reserve(struct spl__raftlog_pool *p, uint32_t count, uint64_t *ids_out);
/* Put back reserved ids that were not taken. */
void spl__raftlog_pool_unreserve(struct spl__raftlog_pool *p, const uint64_t *ids,
                                 uint32_t count);

/* Take reserved file `id` for `target` (a path in a group directory): header[0..
 * header_len) is written at offset 0 and fdatasync'ed while the file is still in the
 * pool, then it is renamed to target and the pool directory, then the group directory,
 * are synced. *fd_out is open read-write on it. On error the id is consumed: the file is
 * back in the free list when nothing happened to it, or left where it is. 0 or -errno. */
int spl__raftlog_pool_take(struct spl__raftlog_pool *p, uint64_t id, const char *target,
                           const uint8_t *header, size_t header_len, int *fd_out);

/* Give the file at `path` (open as fd, which stays the caller's to close) back: rename
 * into the pool, sync the group directory then the pool's, reset its header region.
 * 0 or -errno (the file may then be leaked from the pool, never handed out twice). */
int spl__raftlog_pool_give(struct spl__raftlog_pool *p, const char *path, int fd);

/* ---- env ---- */

struct spl_raftlog_env {
    struct spl_raftlog_env_config cfg;
    const struct spl_vfs *vfs;
    struct spl__raftlog_pool pool;
    int pool_dir_fd; /* for syncfs */
    /* the queue of groups waiting for a sync */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct spl_raftlog *q_head, *q_tail;
    uint32_t q_len;
    bool stopping;
    uint32_t group_count;
    pthread_t threads[SPL_RAFTLOG_SYNC_THREADS_MAX];
    uint32_t thread_count;
    /* statistics */
    _Atomic uint64_t st_appends, st_entries, st_bytes, st_syncs, st_rounds, st_hs_writes;
    _Atomic uint64_t st_taken, st_returned, st_created;
};

/* Queue g for a sync (its state is QUEUED; caller holds g->mu). */
void spl__raftlog_env_enqueue(struct spl_raftlog_env *env, struct spl_raftlog *g);

/* ---- group ---- */

struct spl__raftlog_loc {
    uint64_t term;
    uint32_t off; /* record offset in the segment */
    uint32_t len; /* data bytes */
};

struct spl__raftlog_seg {
    int fd;
    char name[48];
    struct spl_raftlog_seg_header hdr; /* current header (gen, seal) */
    uint64_t end_off;                  /* where the next record goes */
    uint64_t count;                    /* live records: [first, first + count) */
    uint64_t cap;
    struct spl__raftlog_loc *locs;
};

enum spl__raftlog_sync_state { SYNC_IDLE = 0, SYNC_QUEUED = 1, SYNC_SYNCING = 2 };

struct spl_raftlog {
    struct spl_raftlog_env *env;
    uint64_t group_id;
    char dir[SPL_RAFTLOG_PATH_MAX];
    /* owner thread only */
    struct spl__raftlog_seg **segs;
    uint32_t seg_count, seg_cap;
    uint64_t first_index, last_index;
    uint64_t prev_term; /* term of entry first_index - 1 */
    uint64_t next_seq;  /* seq of the next segment */
    struct spl_raftlog_snapmeta snap; /* owned (priv_owned) */
    struct spl_raftlog_hardstate hs;  /* last given */
    uint64_t data_max;                /* largest entry data */
    struct spl_rand rand;             /* segment nonces */
    struct iovec *iov;                /* append scratch: SPL__RAFTLOG_IOV_MAX */
    uint8_t *hdrs;                    /* SPL__RAFTLOG_BATCH_RECS record headers */
    struct spl__raftlog_loc *batch_locs; /* records of the batch being written */
    uint64_t *roll_ids;               /* pool files reserved for this append's rolls */
    pthread_mutex_t io_mu;
    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum spl__raftlog_sync_state state;
    uint64_t written_seq;    /* requests registered */
    uint64_t durable_seq;    /* requests covered by a completed sync */
    uint64_t data_seq;       /* appends that wrote bytes */
    uint64_t synced_data_seq;
    int tail_fd;             /* -1: no segment */
    bool hs_dirty;           /* hs_pending must be durable for a waiter */
    bool hs_lazy;            /* hs_pending has a newer commit nobody waits for */
    struct spl_raftlog_hardstate hs_pending;
    int err;                 /* sticky: the log failed */
    struct spl_raftlog_req *wait_head, *wait_tail;
    struct spl_raftlog *q_next; /* env queue link (env->qmu) */
    /* the hard state file: touched by the worker that holds the group SYNCING */
    int hs_fd;
    uint64_t hs_seq;         /* the newest slot written */
    uint64_t hs_durable_seq; /* the newest slot fdatasync'ed: never overwritten */
};

/* ASSERT the group's structural invariants (O(segments); owner thread). */
void spl__raftlog_check_invariants(const struct spl_raftlog *g);

/* The sync work for one group (FDATASYNC mode): called by a worker that dequeued g. */
void spl__raftlog_sync_group(struct spl_raftlog *g);

/* SYNCFS mode, split in phases around one syncfs() for a batch of groups. */
bool spl__raftlog_sync_begin(struct spl_raftlog *g, struct spl_raftlog_hardstate *hs_out,
                             bool *has_hs, uint64_t *target);
void spl__raftlog_sync_end(struct spl_raftlog *g, uint64_t target, int rc);

/* ---- meta.c: hard state and snapshot meta files ---- */

#define SPL__RAFTLOG_HS_NAME "hardstate"
#define SPL__RAFTLOG_SNAP_NAME "snapmeta"

/* Create the hard state file (zero state, seq 0) atomically in dir. 0 or -errno. */
int spl__raftlog_hs_create(const struct spl_vfs *vfs, const char *dir, uint64_t group_id);
/* Open and read it: *fd_out stays open read-write; out gets the current slot. 0;
 * -ENOENT; SPL_ELOG_CORRUPT (no valid slot); SPL_ELOG_FOREIGN; -errno. */
int spl__raftlog_hs_load(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                         int *fd_out, struct spl_raftlog_hs_slot *out, char *why,
                         size_t why_len);
/* Write slot seq % 2 with (group, seq, hs). No sync. 0 or -errno. */
int spl__raftlog_hs_write(const struct spl_vfs *vfs, int fd, uint64_t group_id, uint64_t seq,
                          const struct spl_raftlog_hardstate *hs);

/* Snapshot meta: replace atomically / load (-ENOENT when there is none). */
int spl__raftlog_snap_store(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                            const struct spl_raftlog_snapmeta *m);
int spl__raftlog_snap_load(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                           struct spl_raftlog_snapmeta *out, char *why, size_t why_len);
/* Deep copy src into dst (one allocation in dst->priv_owned). 0 or -ENOMEM. */
int spl__raftlog_snap_copy(struct spl_raftlog_snapmeta *dst,
                           const struct spl_raftlog_snapmeta *src);

/* path helpers: dir + "/" + name into out (ASSERT on overflow) */
void spl__raftlog_path(char *out, size_t out_len, const char *dir, const char *name);

#endif
