/*
 * fence.h - conditions every MDS write on the writer still being the elected leader.
 *
 * A fence is the election key the leader's campaign returned (etcd.h
 * spl_etcd_leader_key): its key and create revision. Each write transaction of topology.c
 * and namespace.c gets the extra compare "create_revision(key) == rev", so an MDS that
 * lost its leadership (lease expired, resigned) can never write, even if it has not
 * noticed yet. A failed transaction is then told apart: fence gone -> SPL_EMDS_NOTLEADER,
 * otherwise the transaction's own compare failed. An unset fence (tests, `cluster init`
 * from the CLI) adds nothing. Not thread-safe by itself: set it before the owner serves.
 */
#ifndef SPL_MDS_FENCE_H
#define SPL_MDS_FENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "mds/etcd.h"

struct spl_mds_fence {
    bool set;
    char key[512];
    int64_t rev;
};

/* spl_mds_fence_from_leader - the fence of a campaign's result. */
void spl_mds_fence_from_leader(struct spl_mds_fence *f, const struct spl_etcd_leader_key *lk);

/* spl_mds_fence_guard - add the fence's compare to t (nothing when unset). */
void spl_mds_fence_guard(const struct spl_mds_fence *f, struct spl_etcd_txn *t);

/* spl_mds_fence_check - after a transaction failed with SPL_EETCD_TXNFAIL: returns
 * SPL_EMDS_NOTLEADER when the fence no longer holds, else rc unchanged. */
int spl_mds_fence_check(const struct spl_mds_fence *f, spl_etcd *e, int rc);

#endif
