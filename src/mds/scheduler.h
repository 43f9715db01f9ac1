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

enum spl_sched_kind {
    SPL_SCHED_RECOVER = 0,
    SPL_SCHED_REPLICA = 1,
    SPL_SCHED_CBALANCE = 2,
    SPL_SCHED_LBALANCE = 3,
};

/* One operator as spl_sched_list_ops shows it. */
struct spl_sched_op_info {
    uint64_t id;
    uint32_t lpool, set;
    enum spl_sched_kind kind;
    Spline__CopysetOrder__Type order;
    uint64_t epoch;          /* the configuration it was computed against */
    uint32_t target, source; /* chunkserver ids, 0: none */
    bool ordered;            /* false: CreateCopysets on the target not answered yet */
    uint64_t deadline_ns;
};

/* An operator that needs its copyset created on its target first. */
struct spl_sched_create_job {
    uint64_t op_id;
    uint32_t cs_id;   /* the target */
    uint32_t set_idx; /* index into hb->sets */
};

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

/* ---- the decision core: no I/O, no clock (tests/unit/mds/test_scheduler.c) ----
 * The scheduler thread's round is: spl_sched_plan_locked, then CreateCopysets for each
 * job it returns, whose answer reaches spl_sched_create_result. A unit test drives the
 * same three calls against a view built with spl_hbstate_install. */

/* spl_sched_plan_locked - one round at now_ns (monotonic): rebuild the view's indexes
 * if needed, note chunkservers gone offline, finish operators whose copyset shows a
 * higher epoch with the expected configuration (a leader transfer: the target leads),
 * fail those whose configuration changed otherwise or whose target went offline, time
 * out those past their deadline; then, when the periods of cfg say so and
 * cfg.scheduler_enabled, plan recover and replica-count operators, copyset balance
 * (nothing offline or recovering) and leader balance (nothing offline). Writes up to max
 * jobs for operators that need CreateCopysets on their target (they move to
 * "creating"); returns how many. Caller holds hb->lock (not the scheduler's). */
uint32_t spl_sched_plan_locked(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now_ns,
                               struct spl_sched_create_job *jobs, uint32_t max);
/* spl_sched_create_result - CreateCopysets for operator op_id answered status: 0 makes
 * the operator's order available to its copyset's leader, < 0 fails the operator. An
 * unknown or finished op_id is ignored. */
void spl_sched_create_result(struct spl_sched *s, uint64_t op_id, int status);
/* spl_sched_list_ops - copy up to max operators in flight to out; returns how many. */
uint32_t spl_sched_list_ops(struct spl_sched *s, struct spl_sched_op_info *out, uint32_t max);

#endif
