/*
 * logview.h - a compact model of one replica's Raft log for the invariant checker.
 *
 * Owns: for each entry after the compaction point only its term, type and a 64-bit hash
 * of its payload; the compaction point (base index and term), the latest snapshot's
 * index, term and epoch, and a hard state. The operations mirror the storage contract of
 * raft.h and memstorage.h (apply a snapshot, append with truncation, compact, set the
 * hard state), so the checker can keep three views per node: the in-memory log
 * (storage + unstable tail, as readies reveal it), the durable log (what synced bytes
 * hold), and the log rebuilt from disk after a crash, and compare them.
 *
 * Leaves to others: payload bytes (only hashes are kept). Single-threaded.
 */
#ifndef SPL_SIM_LOGVIEW_H
#define SPL_SIM_LOGVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct sim_lentry {
    uint64_t term;
    uint64_t hash;
    uint8_t type;
    uint32_t voters; /* configuration entries: bit i set when node i is a voter after it */
};

struct sim_logview {
    struct spl_raft_hard_state hs;
    uint64_t snap_index, snap_term, snap_epoch;
    uint64_t base, base_term; /* e[0] is entry base + 1; base_term is entry base's term */
    struct sim_lentry *e;
    uint64_t count, cap;
};

void sim_lv_init(struct sim_logview *v);
void sim_lv_free(struct sim_logview *v);
void sim_lv_copy(struct sim_logview *dst, const struct sim_logview *src);
/* sim_lv_equal - same hard state, snapshot, base and entries. */
bool sim_lv_equal(const struct sim_logview *a, const struct sim_logview *b);

static inline uint64_t sim_lv_last(const struct sim_logview *v) { return v->base + v->count; }
/* sim_lv_term - the term of entry index when the view knows it (base..last). */
bool sim_lv_term(const struct sim_logview *v, uint64_t index, uint64_t *term);
/* sim_lv_at - the entry at index (base < index <= last), else NULL. */
const struct sim_lentry *sim_lv_at(const struct sim_logview *v, uint64_t index);

/* sim_lv_apply_snapshot - an installed snapshot, with memstorage's semantics: ignored
 * (false) when not newer than the current one (unless that is the empty index 0); else
 * the log is replaced by it and the hard state's commit raised to its index. */
bool sim_lv_apply_snapshot(struct sim_logview *v, uint64_t index, uint64_t term,
                           uint64_t epoch);
/* sim_lv_snapshot_local - a snapshot the node took of its own applied state at index (an
 * entry of the view): recorded, then the log compacted up to it. False when stale or
 * the view does not hold index. */
bool sim_lv_snapshot_local(struct sim_logview *v, uint64_t index, uint64_t epoch);
/* sim_lv_append - drop entries >= first, then append. first must be in
 * [base + 1, last + 1] (false otherwise, view unchanged). *dropped_out (may be NULL)
 * gets how many existing entries were dropped. */
bool sim_lv_append(struct sim_logview *v, uint64_t first, const struct sim_lentry *es,
                   uint64_t n, uint64_t *dropped_out);
/* sim_lv_compact - drop entries <= index (base < index <= last). */
void sim_lv_compact(struct sim_logview *v, uint64_t index);

/* sim_hash_iobuf - FNV-1a 64 of a payload. */
uint64_t sim_hash_iobuf(const struct spl_iobuf *b);
/* sim_lentry_of - the view's form of a core entry. */
struct sim_lentry sim_lentry_of(const struct spl_raft_entry *e);

#endif
