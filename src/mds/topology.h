/*
 * topology.h - the MDS's model of the cluster: physical pools, zones, servers,
 * chunkservers, logical pools and their copysets, kept in etcd and served from memory.
 *
 * Owns: the topology records under /spline/topology/ (one key per object, JSON values,
 * layout in docs/mds-keys.md), the id counters /spline/ids/{pool,zone,server,chunkserver,
 * lpool}, applying a cluster description (`spline cluster init`), chunkserver
 * self-registration, and copyset placement when a logical pool is placed. spl_topo_open
 * loads everything into memory; every change is written through to etcd first (one
 * transaction, guarded by the leader fence when one is set) and applied to memory only
 * when etcd accepted it, so memory never runs ahead of etcd and an MDS restarted at any
 * moment rebuilds the same model from etcd.
 * Leaves to others: parsing the cluster file (cluster_file.h), the placement algorithm
 * (placement.h), online/offline state of chunkservers and copyset health (heartbeat),
 * deciding configuration changes (scheduler) - those call spl_topo_update_copyset.
 *
 * Threads: thread-safe. Reads take a read lock and copy records out (no pointer into the
 * model ever escapes); writes are serialized by a writer mutex held across the etcd call
 * and take the write lock only to apply the result. Only the leader MDS should write;
 * standbys may open a model to read it.
 */
#ifndef SPL_MDS_TOPOLOGY_H
#define SPL_MDS_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "mds/cluster_file.h"
#include "mds/etcd.h"
#include "mds/fence.h"

#define SPL_TOPO_NAME_MAX 64  /* bytes in a pool/zone/server/lpool name, with the NUL */
#define SPL_TOPO_HOST_MAX 64  /* bytes in an ip or host name, with the NUL */
#define SPL_TOPO_DISK_MAX 256 /* bytes in a chunkserver's disk path, with the NUL */
/* copyset updates in one etcd transaction: one compare each plus the leader fence's */
#define SPL_TOPO_TXN_UPDATES                                                             \
    (SPL_ETCD_TXN_CMP_MAX - 1 < SPL_ETCD_TXN_OPS_MAX ? SPL_ETCD_TXN_CMP_MAX - 1            \
                                                     : SPL_ETCD_TXN_OPS_MAX)

/* Every record carries mod_revision: the etcd revision it was last written at. */
struct spl_topo_pool {
    uint32_t id;
    char name[SPL_TOPO_NAME_MAX];
    int64_t mod_revision;
};

struct spl_topo_zone {
    uint32_t id;
    uint32_t pool_id;
    char name[SPL_TOPO_NAME_MAX];
    int64_t mod_revision;
};

struct spl_topo_server {
    uint32_t id;
    uint32_t zone_id;
    char name[SPL_TOPO_NAME_MAX];
    char ip[SPL_TOPO_HOST_MAX];
    int64_t mod_revision;
};

enum spl_cs_state {
    SPL_CS_ACTIVE = 0,  /* takes part in placement and recovery */
    SPL_CS_RETIRED = 1, /* being or been drained: never chosen for new replicas */
};

struct spl_topo_chunkserver {
    uint32_t id;
    uint32_t server_id;
    uint32_t zone_id; /* derived from the server, for convenience */
    char host[SPL_TOPO_HOST_MAX];
    uint16_t port;
    char disk[SPL_TOPO_DISK_MAX];
    uint64_t capacity_bytes;
    enum spl_cs_state state;
    int64_t mod_revision;
};

enum spl_lpool_state {
    SPL_LPOOL_PENDING = 0, /* declared; copysets not placed yet (too few chunkservers) */
    SPL_LPOOL_PLACING = 1, /* placement being written (a crash leaves this: re-place) */
    SPL_LPOOL_READY = 2,   /* copysets placed; volumes may use it */
};

struct spl_topo_lpool {
    uint32_t id;
    uint32_t pool_id;
    char name[SPL_TOPO_NAME_MAX];
    uint32_t replicas;
    uint32_t copyset_count;
    enum spl_lpool_state state;
    int64_t mod_revision;
};

struct spl_topo_copyset {
    uint32_t lpool_id;
    uint32_t id; /* 1..copyset_count within the logical pool */
    uint32_t member_count;
    uint32_t members[SPL_REPLICAS_MAX]; /* chunkserver ids */
    uint64_t epoch;                     /* configuration version (DESIGN §1) */
    uint32_t leader_hint;               /* last known leader's chunkserver id, 0: unknown */
    int64_t mod_revision;
};

struct spl_topo_counts {
    size_t pools, zones, servers, chunkservers, lpools, copysets;
};

/* What spl_topo_apply_cluster did. */
struct spl_topo_init_report {
    struct spl_topo_counts created;
    size_t lpools_placed;  /* placed by this call */
    size_t lpools_pending; /* declared but still waiting for chunkservers */
};

/* A chunkserver introducing itself. server_name may be "" to find the server by ip
 * (host); it must be given when several servers share an ip (a playground). */
struct spl_topo_cs_registration {
    char server_name[SPL_TOPO_NAME_MAX];
    char host[SPL_TOPO_HOST_MAX];
    uint16_t port;
    char disk[SPL_TOPO_DISK_MAX];
    uint64_t capacity_bytes;
};

typedef struct spl_topo spl_topo;

/* spl_topo_open - load the whole topology from etcd (e stays owned by the caller and must
 * outlive the model). seed drives placement (0: from the OS). Etcd errors, SPL_EETCD_PROTO
 * for a record that does not parse (named in spl_etcd_errmsg), -ENOMEM. */
int spl_topo_open(spl_etcd *e, uint64_t seed, spl_topo **out);
void spl_topo_close(spl_topo *t);

/* spl_topo_reload - drop the in-memory model and load it again (a new leader does this
 * before it serves, in case the previous leader wrote after this model was loaded). */
int spl_topo_reload(spl_topo *t);

/* spl_topo_set_fence - guard every later write with f (copied); NULL clears it. */
void spl_topo_set_fence(spl_topo *t, const struct spl_mds_fence *f);

/* spl_topo_apply_cluster - make etcd hold everything d describes. Objects that already
 * exist with the same attributes are left alone (re-applying a file changes nothing);
 * an object that exists with different attributes refuses the whole file before anything
 * is written: SPL_ETOPO_EXISTS, with why naming the object. SPL_ETOPO_INVALID for a file
 * that is inconsistent in itself or with etcd (unknown pool, duplicate names). Logical
 * pools are placed as soon as their physical pool has chunkservers in enough zones, else
 * left PENDING (see spl_topo_place_lpool). rep and why may be NULL. Etcd errors may leave
 * a prefix of the objects created; applying the file again completes it. */
int spl_topo_apply_cluster(spl_topo *t, const struct spl_cluster_desc *d,
                           struct spl_topo_init_report *rep, char *why, size_t why_len);

/* spl_topo_register_chunkserver - the chunkserver's id. Idempotent by (host, port, disk):
 * a known identity returns its id (and records a changed capacity). A new identity is
 * created on the server named (or found by ip). SPL_ETOPO_NOTFOUND when no server matches,
 * SPL_ETOPO_INVALID when the ip is ambiguous or fields are empty/invalid. */
int spl_topo_register_chunkserver(spl_topo *t, const struct spl_topo_cs_registration *reg,
                                  uint32_t *id_out);

/* spl_topo_place_lpool - place the copysets of a PENDING or PLACING logical pool on the
 * active chunkservers of its physical pool, then mark it READY. A READY pool is left
 * alone (0). SPL_EPLACEMENT when there are too few zones/chunkservers, ETOPO_NOTFOUND. */
int spl_topo_place_lpool(spl_topo *t, uint32_t lpool_id);

/* spl_topo_set_chunkserver_state - change a chunkserver's administrative state. */
int spl_topo_set_chunkserver_state(spl_topo *t, uint32_t cs_id, enum spl_cs_state state);

/* spl_topo_update_copyset - replace a copyset's members/epoch/leader hint with cs's, only if
 * its stored epoch is still expect_epoch (else SPL_EETCD_TXNFAIL: re-read and decide again).
 * Members must be known chunkservers in distinct zones (SPL_ETOPO_INVALID). */
int spl_topo_update_copyset(spl_topo *t, const struct spl_topo_copyset *cs,
                            uint64_t expect_epoch);

/* One update of a batch: rec's (lpool_id, id) name the copyset; rec's members, epoch and
 * leader hint replace the stored ones if the stored epoch is still expect_epoch. */
struct spl_topo_copyset_update {
    struct spl_topo_copyset rec;
    uint64_t expect_epoch;
};

/* spl_topo_update_copysets - spl_topo_update_copyset for n updates, written with as few
 * etcd transactions as possible: each transaction carries up to SPL_TOPO_TXN_UPDATES
 * updates, each guarded by its own record's mod_revision compare. Updates the model
 * refuses (stale epoch, unknown copyset, bad members) get their code without being sent;
 * when a transaction's compares fail (a record changed behind the model), its updates are
 * written one by one so each gets its own outcome. A copyset named twice is written in
 * order (the second update sees the first). results[i] gets update i's code, exactly as
 * spl_topo_update_copyset would return it; after an etcd error or SPL_EMDS_NOTLEADER the
 * updates not yet written get that code. Returns 0 when every update was applied, else the
 * first failed update's code. */
int spl_topo_update_copysets(spl_topo *t, const struct spl_topo_copyset_update *ups, size_t n,
                             int *results);

/* ---- reads (copies; every one returns 0 or the *_NOTFOUND code) ---- */

void spl_topo_get_counts(spl_topo *t, struct spl_topo_counts *out);
int spl_topo_get_pool(spl_topo *t, uint32_t id, struct spl_topo_pool *out);
int spl_topo_get_zone(spl_topo *t, uint32_t id, struct spl_topo_zone *out);
int spl_topo_get_server(spl_topo *t, uint32_t id, struct spl_topo_server *out);
int spl_topo_get_chunkserver(spl_topo *t, uint32_t id, struct spl_topo_chunkserver *out);
int spl_topo_get_lpool(spl_topo *t, uint32_t id, struct spl_topo_lpool *out);
int spl_topo_find_lpool(spl_topo *t, const char *name, struct spl_topo_lpool *out);
int spl_topo_get_copyset(spl_topo *t, uint32_t lpool_id, uint32_t copyset_id,
                         struct spl_topo_copyset *out); /* SPL_ECOPYSET_NOTFOUND */

/* Lists: a malloc'd array the caller frees (NULL with count 0 when empty); -ENOMEM. */
int spl_topo_list_pools(spl_topo *t, struct spl_topo_pool **out, size_t *count);
int spl_topo_list_zones(spl_topo *t, struct spl_topo_zone **out, size_t *count);
int spl_topo_list_servers(spl_topo *t, struct spl_topo_server **out, size_t *count);
int spl_topo_list_chunkservers(spl_topo *t, struct spl_topo_chunkserver **out, size_t *count);
int spl_topo_list_lpools(spl_topo *t, struct spl_topo_lpool **out, size_t *count);
/* copysets of one logical pool (0: of every pool), by (lpool, id) */
int spl_topo_list_copysets(spl_topo *t, uint32_t lpool_id, struct spl_topo_copyset **out,
                           size_t *count);
/* copysets having chunkserver cs_id as a member (what a heartbeat is checked against) */
int spl_topo_list_copysets_of(spl_topo *t, uint32_t cs_id, struct spl_topo_copyset **out,
                              size_t *count);

#endif
