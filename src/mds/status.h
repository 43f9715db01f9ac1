/*
 * status.h - the leader's cluster summary (status.c): counts of chunkservers by
 * liveness, copysets by health, operators, recovery progress. Used by ClusterStatus, the
 * /status JSON and /healthz. Any thread (takes the view's and the scheduler's locks).
 */
#ifndef SPL_MDS_STATUS_H
#define SPL_MDS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mds/mdsd.h"
#include "mds/scheduler.h"

struct json_object;

struct spl_mdsd_recovery {
    uint32_t cs_id, at_offline, left;
};

struct spl_mdsd_summary {
    int health; /* 0 ok, 1 warn, 2 err */
    char summary[256];
    uint32_t cs_total, cs_online, cs_unstable, cs_offline, cs_unknown;
    uint32_t sets_total, sets_healthy, sets_degraded, sets_unavailable, sets_leader_known;
    uint32_t leaders_min, leaders_max, sets_min, sets_max;
    uint32_t recovery_count, recovery_left, recovery_total;
    uint64_t hb_count, hb_ns_total, epoch_updates;
    struct spl_sched_counts ops;
};

void spl_mdsd_cluster_summary(struct spl_mdsd *d, struct spl_mdsd_summary *out,
                              struct spl_mdsd_recovery *rec, uint32_t rec_max);
int spl_mdsd_status_json(struct json_object *o, void *arg);
bool spl_mdsd_health(char *reason, size_t reason_size, void *arg);

#endif
