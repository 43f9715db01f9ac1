/*
 * raft_storage.h - one group's raft log (raftlog.h) as the Raft core's storage.
 *
 * What it owns: nothing but the glue. `struct spl_raftlog_storage` fills the core's
 * `struct spl_raft_storage` method table (raft.h) from a `struct spl_raftlog`, and
 * spl_raftlog_storage_persist() does step 1 of the ready/advance contract: install the
 * ready's snapshot (synchronously), then append its entries and hard state, with a
 * callback once they are durable. The caller sends rd.msgs and calls spl_raft_advance()
 * only after that callback (RAFT-INVARIANTS 2, 14).
 * Threads: the group's owner thread, like the node and the log; the callback runs where
 * raftlog callbacks run (a sync worker).
 */
#ifndef SPL_RAFTLOG_RAFT_STORAGE_H
#define SPL_RAFTLOG_RAFT_STORAGE_H

#include "raft/raft.h"
#include "raftlog/raftlog.h"

struct spl_raftlog_storage {
    struct spl_raft_storage storage; /* give &s->storage to spl_raft_config.storage */
    struct spl_raftlog *log;
};

/* spl_raftlog_storage_init - wrap log (which must outlive s and the node). */
void spl_raftlog_storage_init(struct spl_raftlog_storage *s, struct spl_raftlog *log);

/* spl_raftlog_storage_bootstrap - make an empty log a founding member of a new group:
 * snapshot {index 0, term 0, epoch 0, conf}, durably. 0; SPL_EINVAL_ARG (invalid conf or
 * the log is not empty); -errno. */
int spl_raftlog_storage_bootstrap(struct spl_raftlog_storage *s, const struct spl_raft_conf *conf);

/* spl_raftlog_storage_persist - step 1 of a ready: rd->snapshot (if any) is installed and
 * durable on return; then rd->entries and rd->hard_state are appended and cb(req, status)
 * runs once they are durable. Returns 0 when cb will run; 1 when nothing needed a sync
 * (no snapshot, no entries, hard state with only a new commit: noted lazily) and cb will
 * not run; or a negative code from spl_raftlog_install_snapshot()/append() (cb will not
 * run; the group must stop: RAFT-INVARIANTS 24). */
int spl_raftlog_storage_persist(struct spl_raftlog_storage *s, const struct spl_raft_ready *rd,
                                struct spl_raftlog_req *req, spl_raftlog_cb cb);

#endif
