/*
 * memstorage.h - an in-memory `struct spl_raft_storage` for tests and the simulator.
 *
 * It owns a hard state, the latest snapshot (metadata and application data) and the
 * entries after it, all in memory; nothing survives the process. The simulator models a
 * disk on top of it (what is "synced"); src/raftlog implements the same method table
 * durably. The caller drives it from readies: apply_snapshot(), append(), set_hard_state()
 * in that order, then spl_raft_advance(). Compaction and snapshot creation are the
 * application's decisions (create_snapshot(), compact()).
 * Threads: like the node that reads it, one thread at a time; no locking.
 */
#ifndef SPL_RAFT_MEMSTORAGE_H
#define SPL_RAFT_MEMSTORAGE_H

#include "raft/raft.h"

struct spl_raft_memstorage {
    struct spl_raft_storage storage; /* give &ms->storage to spl_raft_config.storage */
    struct spl_raft_hard_state hs;
    struct spl_raft_snapshot_meta snap; /* the latest snapshot; snap.index >= base_index */
    uint64_t base_index; /* the compaction point: entries[0] is at base_index + 1 */
    uint64_t base_term;  /* the term of entry base_index */
    struct spl_raft_entry *entries;
    uint64_t entry_count;
    uint64_t entry_cap;
};

/* spl_raft_memstorage_init - an empty storage (zero hard state, empty snapshot and conf):
 * what a brand-new member of an existing group starts with. */
void spl_raft_memstorage_init(struct spl_raft_memstorage *ms);

/* spl_raft_memstorage_destroy - drop every entry and reference. */
void spl_raft_memstorage_destroy(struct spl_raft_memstorage *ms);

/* spl_raft_memstorage_bootstrap - make ms a founding member of a new group: snapshot
 * {index 0, term 0, epoch 0, conf}. ms must be empty. 0; SPL_EINVAL_ARG (invalid conf). */
int spl_raft_memstorage_bootstrap(struct spl_raft_memstorage *ms,
                                  const struct spl_raft_conf *conf);

/* spl_raft_memstorage_set_hard_state - persist rd.hard_state. */
void spl_raft_memstorage_set_hard_state(struct spl_raft_memstorage *ms,
                                        const struct spl_raft_hard_state *hs);

/* spl_raft_memstorage_append - persist rd.entries: drop stored entries with index >=
 * entries[0].index, then append (taking references to the payloads). The first index
 * must be in [first_index, last_index + 1]. 0; -ENOMEM; SPL_EINVAL_ARG (a gap, or entries
 * before the snapshot). */
int spl_raft_memstorage_append(struct spl_raft_memstorage *ms,
                               const struct spl_raft_entry *entries, uint32_t count);

/* spl_raft_memstorage_apply_snapshot - persist rd.snapshot: replace the whole log by it
 * (the core only sends a snapshot its log does not already match). 0; -ENOMEM;
 * SPL_ERAFT_STALE (not newer than the current snapshot). */
int spl_raft_memstorage_apply_snapshot(struct spl_raft_memstorage *ms,
                                       const struct spl_raft_snapshot_meta *snap);

/* spl_raft_memstorage_create_snapshot - record that the application took a snapshot at
 * `index` (<= the applied index, which the caller guarantees) with the configuration
 * and epoch as of index (the ready's conf/epoch) and its own data (referenced). Entries
 * stay until compact(). 0; -ENOMEM; SPL_ERAFT_STALE (index <= current snapshot);
 * SPL_ERAFT_UNAVAILABLE (index > last_index). */
int spl_raft_memstorage_create_snapshot(struct spl_raft_memstorage *ms, uint64_t index,
                                        const struct spl_raft_conf *conf, uint64_t epoch,
                                        const struct spl_iobuf *data);

/* spl_raft_memstorage_compact - drop the entries up to and including `index`, which the
 * latest snapshot must cover (index <= snap.index). 0; SPL_ERAFT_COMPACTED (already
 * gone); SPL_EINVAL_ARG (not covered by the snapshot). */
int spl_raft_memstorage_compact(struct spl_raft_memstorage *ms, uint64_t index);

/* Convenience: first and last index (as the storage methods report them). */
uint64_t spl_raft_memstorage_first_index(const struct spl_raft_memstorage *ms);
uint64_t spl_raft_memstorage_last_index(const struct spl_raft_memstorage *ms);

#endif
