/*
 * mdsd.h - the spline-mds daemon: its configuration, the leadership state (ha.c), the
 * worker pool that runs requests off the RPC IO threads (workq.c), the live cluster view
 * fed by heartbeats (hbstate.c), the scheduler (scheduler.c), the RPC services
 * (service.c, service_volume.c, heartbeat.c) and the status report (status.c).
 *
 * Owns everything that makes the topology and namespace models (topology.h,
 * namespace.h, owned by the model) a highly available network service: who leads, what
 * a standby answers, which chunkservers are alive, which copysets are healthy, which
 * configuration changes are ordered. It leaves the etcd records and their formats to the
 * models: every write goes through them, fenced by the leader key (fence.h).
 *
 * Threads: RPC handlers run on the RPC IO threads and only decode and queue; workers
 * (workq) run the requests; ha.c runs the election, lease keeper, leadership monitor and
 * observer threads; the scheduler runs its own thread; HTTP callbacks run on the HTTP
 * thread. Shared state is the leadership word (atomics), the cluster view (its own mutex)
 * and the scheduler's operator table (its own mutex).
 */
#ifndef SPL_MDS_MDSD_H
#define SPL_MDS_MDSD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "mds/etcd.h"
#include "mds/fence.h"
#include "mds/topology.h"
#include "rpc/rpc.h"

#define SPL_MDSD_ADDR_MAX 128       /* "host:port" */
#define SPL_MDSD_WORKERS_MAX 64
#define SPL_MDSD_QUEUE_MAX 65536    /* requests queued for the workers */
#define SPL_MDSD_OPS_MAX 100000     /* operators in flight */
#define SPL_MDSD_ORDERS_PER_HB_MAX 64 /* orders in one heartbeat reply */

/* ---- configuration (mdsd_config.c) ---- */

struct spl_mdsd_config {
    char listen[SPL_MDSD_ADDR_MAX];    /* host:port to bind (port 0: any) */
    char advertise[SPL_MDSD_ADDR_MAX]; /* address others reach us at ("": listen) */
    char etcd[512];                    /* etcd endpoints */
    char name[64];                     /* this MDS's name (logs, /status) */
    char election[128];                /* election name in etcd */
    char port_file[256];               /* write the bound RPC port here ("": no) */
    char log_file[256];
    char log_level[16];
    int64_t http_port;                 /* -1: no HTTP; 0: any */
    int64_t io_threads;
    int64_t workers;
    uint64_t lease_ttl_ms;             /* election lease TTL */
    uint64_t fence_margin_ms;          /* stop serving this long before the lease ends */
    uint64_t etcd_timeout_ms;          /* data requests */
    uint64_t hb_interval_ms;           /* what chunkservers are expected to use */
    uint64_t hb_unstable_ms;           /* no heartbeat for this long: unstable */
    uint64_t hb_offline_ms;            /* ... for this long: offline */
    uint64_t remove_grace_ms;          /* no REMOVE_REPLICA this soon after leading */
    uint64_t sched_period_ms;          /* scheduler round */
    uint64_t recover_period_ms;
    uint64_t copyset_balance_period_ms;
    uint64_t leader_balance_period_ms;
    uint64_t op_timeout_ms;            /* an operator not finished by then fails */
    int64_t ops_per_cs_max;            /* operators touching one chunkserver */
    int64_t ops_max;                   /* operators in flight */
    uint64_t place_settle_ms;          /* place a pending pool when no cs registered this long */
    uint64_t recycle_purge_age_ms;     /* recycle bin entries older than this are purged */
    bool scheduler_enabled;
    bool copyset_balance;
    bool leader_balance;
    int64_t seed;
};

extern const struct spl_config_table spl_mdsd_config_table;

/* ---- the daemon ---- */

enum spl_mdsd_role {
    SPL_MDSD_STANDBY = 0, /* not leading: redirect */
    SPL_MDSD_LOADING = 1, /* elected, loading state from etcd: retry shortly */
    SPL_MDSD_LEADER = 2,  /* serving */
};

struct spl_ha;
struct spl_workq;
struct spl_hbstate;
struct spl_sched;
struct spl_ns;

struct spl_mdsd {
    struct spl_mdsd_config cfg;
    char advertise[SPL_MDSD_ADDR_MAX];
    spl_etcd *etcd;         /* data: topology, namespace */
    spl_etcd *etcd_ha;      /* election, lease keeper (short timeouts) */
    spl_topo *topo;         /* NULL until first led */
    struct spl_ns *ns;      /* NULL until first led (service_volume.c) */
    struct spl_ha *ha;
    struct spl_workq *wq;
    struct spl_hbstate *hb;
    struct spl_sched *sched;
    spl_rpc_runtime *rt;
    spl_rpc_server *srv;
    struct spl_http_server *http;
    atomic_bool stopping;
    uint64_t start_unix_ms;
};

/* ---- HA (ha.c) ---- */

/* spl_ha_new - the HA state, not running yet (standby). on_lead runs on the HA thread
 * once elected (load state; return 0 to serve, <0 to give leadership up and retry);
 * on_step_down runs there when leadership ends (serving has already stopped). */
int spl_ha_new(struct spl_mdsd *d, int (*on_lead)(struct spl_mdsd *d),
               void (*on_step_down)(struct spl_mdsd *d), struct spl_ha **out);
/* spl_ha_run - start observing and campaigning (d->advertise must be final). */
int spl_ha_run(struct spl_ha *ha);
/* spl_ha_stop - resign (when leading), stop every HA thread, free. */
void spl_ha_stop(struct spl_ha *ha);
/* spl_ha_role - the role right now; LEADER only while the lease is surely valid
 * (renewed less than TTL - fence margin ago, by the monotonic clock). Any thread. */
enum spl_mdsd_role spl_ha_role(struct spl_ha *ha);
/* spl_ha_leader_addr - the leader's advertised address as last observed ("" unknown). */
void spl_ha_leader_addr(struct spl_ha *ha, char *buf, size_t len);
/* spl_ha_fence - the fence of the current leadership (unset when not leading). */
void spl_ha_fence(struct spl_ha *ha, struct spl_mds_fence *out);
/* spl_ha_etcd_ok - false when the last etcd contact of the HA threads failed. */
bool spl_ha_etcd_ok(struct spl_ha *ha);
/* spl_ha_leader_since_ms - wall ms when this leadership started (0: not leading). */
uint64_t spl_ha_leader_since_ms(struct spl_ha *ha);
/* spl_ha_term - increments at every leadership won (lets workers notice a change). */
uint64_t spl_ha_term(struct spl_ha *ha);

/* ---- worker pool (workq.c) ---- */

typedef void (*spl_workq_fn)(void *arg);
int spl_workq_start(uint32_t threads, const char *name, struct spl_workq **out);
/* spl_workq_push - run fn(arg) on a worker. -EAGAIN when SPL_MDSD_QUEUE_MAX are queued,
 * SPL_ESHUTDOWN once stopping. Any thread. */
int spl_workq_push(struct spl_workq *wq, spl_workq_fn fn, void *arg);
/* spl_workq_stop - run what is queued, join, free. */
void spl_workq_stop(struct spl_workq *wq);

/* ---- RPC front (service.c) ---- */

/* spl_mdsd_gate - called by every handler first: true when this MDS serves (leader);
 * otherwise it has already replied (redirect, loading, etcd down) and freed the call. */
bool spl_mdsd_gate(struct spl_mdsd *d, spl_rpc_call *call);
/* spl_mdsd_dispatch - gate the call, then run fn(d, call) on a worker. */
void spl_mdsd_dispatch(struct spl_mdsd *d, spl_rpc_call *call,
                       void (*fn)(struct spl_mdsd *d, spl_rpc_call *call));
/* spl_mdsd_reply_err - reply_error, logging unexpected codes. */
void spl_mdsd_reply_err(spl_rpc_call *call, int rc, const char *msg);

extern const struct spl_rpc_service spl_mdsd_mds_service;
extern const struct spl_rpc_service spl_mdsd_topology_service;
extern const struct spl_rpc_service spl_mdsd_heartbeat_service;

#endif
