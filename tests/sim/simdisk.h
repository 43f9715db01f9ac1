/*
 * simdisk.h - one node's simulated disk: a few append-only files with a synced length.
 *
 * Owns: the bytes of each file, how many of them are synced (survive any crash), fsync
 * latency (normal range plus latency spikes), and what a crash does to the unsynced
 * rest: it is lost, or a random prefix of it survives (the page cache flushed some),
 * possibly with the last write torn (its tail replaced by garbage), never touching the
 * synced part. Renames are atomic and durable (as after a directory fsync). An fsync is
 * split in two: sim_disk_sync_begin() says which length it will make durable and when;
 * the driver schedules the completion and calls sim_disk_sync_end() then.
 *
 * Leaves to others: the record format inside the files (wal.h), scheduling (world.h).
 * Single-threaded.
 */
#ifndef SPL_SIM_SIMDISK_H
#define SPL_SIM_SIMDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world.h"

#define SIM_DISK_FILES 2 /* 0: the log, 1: the log being rewritten */

struct sim_file {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t synced; /* bytes [0, synced) survive a crash */
};

struct sim_disk_stats {
    uint64_t writes, syncs, crashes, lost_bytes, kept_unsynced_bytes, torn;
};

struct sim_disk {
    struct sim_file file[SIM_DISK_FILES];
    uint64_t sync_min_ns, sync_max_ns; /* normal fsync latency */
    uint64_t slow_until_ns;            /* true time until which fsyncs are slow */
    uint64_t slow_extra_ns;            /* up to this much more latency while slow */
    uint32_t keep_unsynced_pct;        /* crash keeps a prefix of unsynced bytes */
    uint32_t tear_pct;                 /* ...and tears its last write */
    uint64_t sync_busy_until_ns;       /* fsyncs complete in order */
    struct sim_disk_stats stats;
};

void sim_disk_init(struct sim_disk *d, uint64_t sync_min_ns, uint64_t sync_max_ns);
void sim_disk_free(struct sim_disk *d);
/* sim_disk_wipe - an empty disk (a replaced drive): every file empty. */
void sim_disk_wipe(struct sim_disk *d);

void sim_disk_append(struct sim_disk *d, int file, const void *bytes, size_t len);
/* sim_disk_truncate - cut file to len (<= its length) durably (recovery cutting a tail). */
void sim_disk_truncate(struct sim_disk *d, int file, size_t len);
static inline size_t sim_disk_len(const struct sim_disk *d, int file) { return d->file[file].len; }
static inline const uint8_t *sim_disk_data(const struct sim_disk *d, int file)
{
    return d->file[file].data;
}
static inline bool sim_disk_dirty(const struct sim_disk *d, int file)
{
    return d->file[file].synced < d->file[file].len;
}

/* sim_disk_sync_begin - start an fsync of file: *target_len is what it will make
 * durable, the return value the true time it completes (after earlier fsyncs). */
uint64_t sim_disk_sync_begin(struct sim_disk *d, struct sim_world *w, int file,
                             size_t *target_len);
/* sim_disk_sync_end - the fsync to target_len completed. */
void sim_disk_sync_end(struct sim_disk *d, int file, size_t target_len);
/* sim_disk_sync_now - an fsync that completes at once (startup, recovery). */
void sim_disk_sync_now(struct sim_disk *d, int file);

/* sim_disk_rename - atomically replace file `to` by file `from` (which becomes empty).
 * Both must be fully synced. */
void sim_disk_rename(struct sim_disk *d, int from, int to);

/* sim_disk_crash - power loss: unsynced bytes are lost, or partly kept and torn (see
 * above). Afterwards every file is its surviving bytes, all synced. */
void sim_disk_crash(struct sim_disk *d, struct sim_world *w);

#endif
