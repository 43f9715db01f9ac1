/*
 * model.h - the simulated chunkservers' shared copyset model (spline-simcs).
 *
 * Owns an in-memory stand-in for multi-raft: copyset groups (members, epoch, term,
 * leader) and the replicas each simulated chunkserver holds. Raft is simulated just
 * enough for the MDS's heartbeat and scheduler loops to converge: a group whose leader is
 * gone elects a random live member when a majority of members are alive and hold a
 * replica (term and epoch + 1); configuration changes ordered by the MDS are applied by
 * the leader when the order's epoch matches (epoch + 1 each); a replica whose chunkserver
 * left the configuration keeps reporting the configuration it last saw (stale) until the
 * MDS orders REMOVE_REPLICA. Every simulated chunkserver of a cluster must live in one
 * process (the model is one shared truth).
 *
 * Threads: every function takes the model's mutex; callers never hold it.
 */
#ifndef SPL_SIMCS_MODEL_H
#define SPL_SIMCS_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/limits.h"
#include "copyset.pb-c.h"
#include "heartbeat.pb-c.h"

#define SIM_MEMBERS_MAX (SPL_REPLICAS_MAX + 1)

struct sim_group {
    uint32_t lpool, id;
    uint32_t members[SIM_MEMBERS_MAX];
    uint32_t n;
    uint64_t epoch, term;
    uint32_t leader; /* chunkserver id, 0: none */
};

struct sim_replica {
    uint32_t group;  /* index into model groups */
    bool stale;      /* not a member: reports the snapshot below */
    uint64_t stale_epoch;
    uint32_t stale_members[SIM_MEMBERS_MAX];
    uint32_t stale_n;
};

struct sim_cs {
    uint32_t id;     /* 0 until registered */
    uint32_t zone;   /* zone index (layout) or zone id (from the MDS) */
    char server[64];
    char disk[96];
    char token[32];
    bool alive;
    struct sim_replica *reps;
    uint32_t rep_count, rep_cap;
};

struct u64map {
    uint64_t *keys; /* 0: empty slot (keys are never 0) */
    uint32_t *vals;
    uint32_t cap, count;
};

struct sim_model {
    pthread_mutex_t lock;
    struct sim_cs *cs;
    uint32_t cs_count;
    struct u64map cs_by_id;
    struct sim_group *groups;
    uint32_t group_count, group_cap;
    struct u64map group_by_key;
    uint64_t rng;
    uint64_t orders_applied, orders_stale, elections, replicas_removed;
    const char *host;
    uint16_t port;
};

int sim_model_init(struct sim_model *m, uint32_t cs_count, uint64_t seed, const char *host,
                   uint16_t port);
void sim_model_destroy(struct sim_model *m);
void sim_model_set_id(struct sim_model *m, uint32_t index, uint32_t id, const char *token);
/* sim_model_id - the id of chunkserver index i (0: not registered). */
uint32_t sim_model_id(struct sim_model *m, uint32_t index);
/* sim_model_index - the index of chunkserver id, or -1. */
int sim_model_index(struct sim_model *m, uint32_t id);

/* sim_model_create - CreateCopysets on chunkserver id. SPL_ECS_MISMATCH when not hosted. */
int sim_model_create(struct sim_model *m, uint32_t cs_id, const Spline__CreateCopysetsRequest *r);
/* sim_model_tick - elections where a leader is missing. */
void sim_model_tick(struct sim_model *m);
/* sim_model_report - the heartbeat of chunkserver index i (NULL when not registered or
 * dead); free with sim_model_report_free. */
Spline__HeartbeatRequest *sim_model_report(struct sim_model *m, uint32_t i);
void sim_model_report_free(Spline__HeartbeatRequest *r);
/* sim_model_apply - the orders of a heartbeat reply to chunkserver index i. */
void sim_model_apply(struct sim_model *m, uint32_t i, const Spline__HeartbeatResponse *r);
/* sim_model_set_alive - kill or revive chunkserver id; -ENOENT if not hosted. */
int sim_model_set_alive(struct sim_model *m, uint32_t id, bool alive);

struct sim_stats {
    uint32_t registered, alive, groups, groups_with_leader, zone_violations;
    uint32_t replicas, stale_replicas, leaders_min, leaders_max;
    uint64_t orders_applied, orders_stale, elections, replicas_removed;
};
void sim_model_stats(struct sim_model *m, struct sim_stats *out);

#endif
