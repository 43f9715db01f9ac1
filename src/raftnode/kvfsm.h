/*
 * kvfsm.h - a key-value state machine for tests and benchmarks (spline-raftd), built to
 * exercise what a copyset's chunk store needs: state in files written in place by
 * apply, lightweight snapshots (a file list, no copy), parallel apply by key, and
 * idempotent replay over newer content (RAFT-INVARIANTS 21).
 *
 * Keys hash into SPL_KVFSM_RANGES range files "rNN.kv" in the group's live directory.
 * A range file is a log of records {index, put|delete, key, value} with a CRC32C each;
 * apply appends one record per entry (no fsync; save_snapshot fdatasyncs every range);
 * an in-memory index maps each key to its latest record (the value stays on disk). Load
 * scans every range in file order (later records win) and cuts a file at its first
 * invalid record: everything before the last snapshot was fsynced, and everything after
 * it is replayed from the log, appended again after the cut, so the replayed record is
 * the last one for its key. Range files are never rewritten (no compaction: a test FSM).
 * Threads: apply from several threads for different keys (a lock per range); get and
 * digest from any thread; the rest as fsm.h says.
 */
#ifndef SPL_RAFTNODE_KVFSM_H
#define SPL_RAFTNODE_KVFSM_H

#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "raftnode/fsm.h"

#define SPL_KVFSM_KEY_MAX 1024
#define SPL_KVFSM_RANGES 16

enum spl_kvfsm_op {
    SPL_KVFSM_PUT = 1,
    SPL_KVFSM_DELETE = 2,
};

struct spl_kvfsm;

/* spl_kvfsm_create - an empty KV FSM (its state comes with fsm load). 0 or -ENOMEM. */
int spl_kvfsm_create(struct spl_kvfsm **out);

/* spl_kvfsm_fsm - the FSM to give to spl_raftnode_group_create; its close frees kv. */
struct spl_fsm spl_kvfsm_fsm(struct spl_kvfsm *kv);

/* spl_kvfsm_encode - the entry payload of a put (value moved out of *value, which may be
 * NULL for a delete) appended to out. 0; SPL_EINVAL_ARG (key length 0 or over
 * SPL_KVFSM_KEY_MAX, value over 1 GiB); -ENOMEM. */
int spl_kvfsm_encode(enum spl_kvfsm_op op, const void *key, size_t key_len,
                     struct spl_iobuf *value, struct spl_iobuf *out);

/* spl_kvfsm_get - the current value of key appended to value_out. 0; -ENOENT; -errno. */
int spl_kvfsm_get(struct spl_kvfsm *kv, const void *key, size_t key_len,
                  struct spl_iobuf *value_out);

/* spl_kvfsm_digest - an order-independent 64-bit digest of every (key, value) and the
 * number of keys; equal digests on two replicas that applied the same index mean equal
 * contents. Reads every value: for tests. */
uint64_t spl_kvfsm_digest(struct spl_kvfsm *kv, uint64_t *key_count_out);

/* spl_kvfsm_applied - the highest log index applied so far (any key). */
uint64_t spl_kvfsm_applied(struct spl_kvfsm *kv);

#endif
