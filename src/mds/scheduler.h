/*
 * scheduler.h - configuration changes the MDS leader orders: operators.
 *
 * Owns the operators in flight (memory only: a new leader starts with none, and an order
 * whose epoch no longer matches is ignored by its chunkserver), at most one per copyset,
 * at most ops_per_cs_max touching one chunkserver, each with a deadline. Periodic rounds
 * on the scheduler thread: finish or time out operators by the copyset view; recover
 * (replace a replica on an offline chunkserver by one on a healthy chunkserver in a zone
 * the copyset does not use yet: CreateCopysets on the target first, then CHANGE_PEER to
 * the leader); replica count (ADD_PEER / REMOVE_PEER); copyset balance (CHANGE_PEER from
 * the most to the least loaded chunkserver of a zone-compatible pair); leader balance
 * (TRANSFER_LEADER until max - min <= 1 leaders per online chunkserver); placing pending
 * logical pools once registrations settle. Orders ride heartbeat replies
 * (spl_sched_orders_locked), stamped with the epoch they were computed against.
 *
 * Threads: the scheduler thread; heartbeat workers call spl_sched_orders_locked and
 * spl_sched_is_target_locked with the view's lock held (lock order: view, then
 * scheduler); RPC callbacks of CreateCopysets run on RPC IO threads.
 */
#ifndef SPL_MDS_SCHEDULER_H
#define SPL_MDS_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "heartbeat.pb-c.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"

struct spl_sched_counts {
    uint32_t recover, replica_count, copyset_balance, leader_balance;
    uint64_t finished, failed, timed_out;
};

int spl_sched_new(struct spl_mdsd *d, struct spl_sched **out);
void spl_sched_free(struct spl_sched *s);
/* spl_sched_start / stop - the round thread (runs only while this MDS leads). */
int spl_sched_start(struct spl_sched *s);
void spl_sched_stop(struct spl_sched *s);
/* spl_sched_reset - forget every operator (leadership gained or lost). */
void spl_sched_reset(struct spl_sched *s);

/* spl_sched_orders_locked - append the orders for copysets cs_id leads to orders[]
 * (up to max); returns how many. Caller holds hb->lock. */
uint32_t spl_sched_orders_locked(struct spl_sched *s, struct spl_hbstate *hb, uint32_t cs_id,
                                 Spline__CopysetOrder *orders, uint32_t max);
/* spl_sched_is_target_locked - an operator is adding cs_id to this copyset. */
bool spl_sched_is_target_locked(struct spl_sched *s, uint32_t lpool, uint32_t id,
                                uint32_t cs_id);
/* spl_sched_create_missing - CreateCopysets on chunkserver c for sets[] (indexes into
 * hb->sets; caller holds hb->lock; the RPC is sent asynchronously). */
void spl_sched_create_missing_locked(struct spl_sched *s, struct spl_hbstate *hb,
                                     const struct hb_cs *c, const uint32_t *sets,
                                     uint32_t count);
void spl_sched_get_counts(struct spl_sched *s, struct spl_sched_counts *out);

#endif
