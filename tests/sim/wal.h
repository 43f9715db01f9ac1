/*
 * wal.h - the simulated node's durable Raft state: a write-ahead log of CRC'd records.
 *
 * Owns: the record format (u32 length, u32 CRC32C of type and payload, u8 type,
 * payload) for hard states, entries (one record each) and snapshots (metadata plus the
 * state machine's data), and replay: read records from the start, stop at the first
 * short, torn or checksum-failing record (the torn tail, RAFT-INVARIANTS 23) and rebuild
 * a memstorage from the valid prefix. A rewrite (spl compaction of the file itself)
 * writes the current state as a fresh record sequence.
 *
 * Leaves to others: the bytes' home (simdisk.h), when to sync (the cluster driver
 * follows the ready/advance contract). Single-threaded.
 */
#ifndef SPL_SIM_WAL_H
#define SPL_SIM_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/memstorage.h"
#include "raft/raft.h"

enum sim_wal_type {
    SIM_WAL_HARD_STATE = 1,
    SIM_WAL_ENTRY = 2,
    SIM_WAL_SNAPSHOT = 3,   /* installed from the leader: replaces the log */
    SIM_WAL_SNAP_LOCAL = 4, /* taken of the local state machine: compacts up to it */
    SIM_WAL_BATCH = 5,      /* whole records inside one record: atomic as a group */
};

/* A growable byte buffer that records are encoded into before one disk append. */
struct sim_bytes {
    uint8_t *data;
    size_t len, cap;
};
void sim_bytes_free(struct sim_bytes *b);

void sim_wal_put_hard_state(struct sim_bytes *out, const struct spl_raft_hard_state *hs);
void sim_wal_put_entry(struct sim_bytes *out, const struct spl_raft_entry *e);
/* type: SIM_WAL_SNAPSHOT or SIM_WAL_SNAP_LOCAL */
void sim_wal_put_snapshot(struct sim_bytes *out, const struct spl_raft_snapshot_meta *snap,
                          int type);

struct sim_wal_replay {
    size_t valid_len;     /* bytes of whole, valid records */
    uint64_t records;     /* records applied */
    bool torn;            /* bytes after valid_len were cut (short or bad CRC) */
    bool inconsistent;    /* a valid record the storage refused (a bug) */
    int error;            /* ...with this code */
    uint64_t error_index; /* ...for this index */
};

/* sim_wal_replay - apply the records in data[0..len) to ms (an empty memstorage) in
 * order: installed snapshots (replace the log; stale ones ignored), local snapshots
 * (create + compact), entries (each truncating what follows), hard states. Stops at the
 * first invalid record; *out says where and why. */
void sim_wal_replay(const uint8_t *data, size_t len, struct spl_raft_memstorage *ms,
                    struct sim_wal_replay *out);

/* sim_wal_put_batch - append to out one batch record holding the records in inner. */
void sim_wal_put_batch(struct sim_bytes *out, const struct sim_bytes *inner);

/* sim_wal_put_state - the whole of ms (snapshot with data, entries after it, hard state)
 * as a fresh record sequence (for rewriting the file). */
void sim_wal_put_state(struct sim_bytes *out, struct spl_raft_memstorage *ms);

#endif
