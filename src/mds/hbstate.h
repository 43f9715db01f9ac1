/*
 * hbstate.h - the leader's live view of the cluster: which chunkservers are alive, what
 * each copyset's configuration, epoch and leader are, fed by heartbeats.
 *
 * Owns: chunkserver liveness (online / unstable / offline from the time of the last
 * heartbeat, by the monotonic clock), the copyset view (members and epoch as stored in
 * etcd through topology.h, leader and term as last reported), membership indexes, the
 * per-chunkserver offline bookkeeping behind recovery progress, and the rules for a
 * copyset report: a leader's report with a higher epoch replaces the stored
 * configuration (written to etcd first, expecting the old epoch), an equal epoch only
 * refreshes the leader, a lower one is stale and ignored. Replicas on chunkservers that
 * are not members are told to go (REMOVE_REPLICA) once the grace period after taking
 * leadership has passed. Leaves deciding configuration changes to scheduler.c.
 *
 * Threads: every function takes the view's mutex (hb->lock) itself, except those named
 * *_locked, which expect the caller (the scheduler) to hold it. Etcd writes happen with
 * the lock released.
 */
#ifndef SPL_MDS_HBSTATE_H
#define SPL_MDS_HBSTATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "heartbeat.pb-c.h"
#include "mds/mdsd.h"
#include "mds/topology.h"

enum spl_cs_live {
    SPL_CS_LIVE_ONLINE = 0,
    SPL_CS_LIVE_UNSTABLE = 1,
    SPL_CS_LIVE_OFFLINE = 2,
    SPL_CS_LIVE_UNKNOWN = 3, /* no heartbeat since we lead, offline timeout not reached */
};

struct hb_cs {
    uint32_t id;
    uint32_t zone_id;
    uint32_t pool_id;
    char host[SPL_TOPO_HOST_MAX];
    uint16_t port;
    bool retired;
    uint64_t capacity_bytes;
    uint64_t last_hb_ns;       /* 0: none since we lead */
    uint32_t reported_leaders; /* from its last heartbeat */
    uint32_t reported_copysets;
    uint64_t offline_since_ns; /* 0: not offline */
    uint32_t copysets_at_offline;
    uint64_t create_sent_ns;   /* last CreateCopysets for missing replicas */
    /* index: copysets listing it as a member (indexes into hb->sets) */
    uint32_t *sets;
    uint32_t set_count, set_cap;
    uint32_t leader_count;     /* copysets whose known leader it is */
    /* scheduler scratch (valid during a round, under both locks) */
    uint32_t op_load;          /* operators touching it */
    int32_t plan_sets;         /* copysets it will hold after planned operators */
    int32_t plan_leaders;      /* copysets it will lead after planned transfers */
    int32_t bfs_parent;        /* leader balance search: index into hb->css, -1 none */
    uint32_t bfs_set;          /* the copyset (index) whose transfer reaches it */
};

struct hb_set {
    uint32_t lpool_id;
    uint32_t id;
    uint32_t member_count;
    uint32_t members[SPL_REPLICAS_MAX];
    uint64_t epoch;
    uint32_t leader;           /* reported leader (chunkserver id), 0: unknown */
    uint64_t term;
    uint64_t leader_report_ns; /* mono time of the leader's last report */
    uint64_t scratch;          /* heartbeat stamp (hbstate.c internal) */
    uint32_t replicas_wanted;  /* of its logical pool */
    bool has_op;               /* scheduler scratch: an operator works on it */
    /* a newer configuration reported by its leader, waiting to be written to etcd */
    bool queued;
    uint64_t pending_epoch;
    uint32_t pending_members[SPL_REPLICAS_MAX];
    uint32_t pending_n;
    uint32_t pending_leader;
};

struct spl_hbstate {
    pthread_mutex_t lock;
    struct spl_mdsd *d;
    uint64_t lead_start_ns;    /* when the current leadership loaded the view */
    struct hb_cs *css;         /* sorted by id */
    uint32_t cs_count, cs_cap;
    struct hb_set *sets;       /* sorted by (lpool, id) */
    uint32_t set_count;
    bool index_dirty;
    uint64_t stamp;
    uint64_t hb_count;         /* heartbeats handled */
    uint64_t hb_ns_total;      /* time spent handling them */
    uint64_t epoch_updates;
    uint64_t last_register_ns; /* for the placement settle delay */
    /* epoch updates waiting for the writer thread (indexes into sets) */
    uint32_t *queue;
    uint32_t queue_count, queue_cap;
    pthread_cond_t queue_cond;
    pthread_t writer;
    bool writer_running, writer_stop;
};

int spl_hbstate_new(struct spl_mdsd *d, struct spl_hbstate **out);
void spl_hbstate_free(struct spl_hbstate *hb);
/* spl_hbstate_start - the writer thread: stores newer copyset configurations reported in
 * heartbeats in etcd (one copyset at a time, oldest first), then in the view. Heartbeats
 * only queue them, so a slow etcd never holds a heartbeat reply. */
int spl_hbstate_start(struct spl_hbstate *hb);
/* spl_hbstate_pending - configurations queued for etcd. */
uint32_t spl_hbstate_pending(struct spl_hbstate *hb);

/* spl_hbstate_load - rebuild the view from the topology model (at leadership start and
 * after placement); keeps the liveness of chunkservers already known when keep_live. */
int spl_hbstate_load(struct spl_hbstate *hb, spl_topo *t, bool keep_live);

/* spl_hbstate_install - replace the view by css[n] and sets[set_count] (malloc'd; the
 * view takes both; any order: they are sorted here; css[i].sets must be NULL: the
 * membership indexes are rebuilt). Without keep_live every chunkserver is unknown and
 * the leadership starts now (lead_start_ns); with it, liveness and reported leaders of
 * chunkservers and copysets (same epoch) already in the view carry over. Queued epoch
 * updates are dropped. spl_hbstate_load builds the arrays from the model and calls this;
 * unit tests call it with a view of their own. */
void spl_hbstate_install(struct spl_hbstate *hb, struct hb_cs *css, uint32_t n,
                         struct hb_set *sets, uint32_t set_count, bool keep_live);

/* spl_hbstate_token - the registration token of a chunkserver identity (hex, 17 bytes). */
void spl_hbstate_token(uint32_t id, const char *host, uint32_t port, const char *disk,
                       char out[17]);

/* spl_hbstate_heartbeat - handle one heartbeat; fills resp->orders (malloc'd: free with
 * spl_hbstate_free_orders). 0, SPL_ECS_UNKNOWN, SPL_EMDS_BADTOKEN, SPL_EMDS_BADREPORT,
 * SPL_EMDS_BADHOST/BADPORT. */
int spl_hbstate_heartbeat(struct spl_hbstate *hb, const Spline__HeartbeatRequest *req,
                          Spline__HeartbeatResponse *resp);
void spl_hbstate_free_orders(Spline__HeartbeatResponse *resp);

/* ---- for the scheduler and status (caller holds hb->lock) ---- */
enum spl_cs_live spl_hbstate_live_locked(const struct spl_hbstate *hb, const struct hb_cs *c,
                                         uint64_t now_ns);
struct hb_cs *spl_hbstate_cs_locked(struct spl_hbstate *hb, uint32_t id);
struct hb_set *spl_hbstate_set_locked(struct spl_hbstate *hb, uint32_t lpool, uint32_t id);
void spl_hbstate_reindex_locked(struct spl_hbstate *hb);
/* spl_hbstate_track_offline_locked - note chunkservers that went offline / came back. */
void spl_hbstate_track_offline_locked(struct spl_hbstate *hb, uint64_t now_ns);
bool spl_hbstate_is_member(const struct hb_set *s, uint32_t cs_id);

#endif
