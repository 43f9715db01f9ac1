/*
 * service.c - the MDS RPC front: the leadership gate every request passes, the hand-off
 * to workers, and the Topology, Heartbeat and GetCopysets methods. Volume methods are in
 * service_volume.c, ClusterStatus in status.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "copyset.pb-c.h"
#include "heartbeat.pb-c.h"
#include "mds.pb-c.h"
#include "mds/cluster_file.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"

/* ---- gate and dispatch ---- */

bool spl_mdsd_gate(struct spl_mdsd *d, spl_rpc_call *call)
{
    if (atomic_load(&d->stopping)) {
        spl_rpc_reply_error(call, SPL_ESHUTDOWN, NULL);
        return false;
    }
    enum spl_mdsd_role role = spl_ha_role(d->ha);
    if (role == SPL_MDSD_LEADER)
        return true;
    if (role == SPL_MDSD_LOADING) {
        spl_rpc_reply_error(call, SPL_EMDS_NOTREADY, NULL);
        return false;
    }
    char leader[SPL_MDSD_ADDR_MAX];
    spl_ha_leader_addr(d->ha, leader, sizeof leader);
    if (leader[0]) {
        char msg[2 * SPL_MDSD_ADDR_MAX + 64];
        snprintf(msg, sizeof msg, "MDS %s is not the leader; the leader is %s", d->advertise,
                 leader);
        spl_rpc_reply_redirect(call, SPL_EMDS_NOTLEADER, msg, leader);
    } else if (!spl_ha_etcd_ok(d->ha)) {
        spl_rpc_reply_error(call, SPL_EETCD_UNAVAILABLE,
                            "this MDS cannot reach etcd, so no leader can be elected");
    } else {
        spl_rpc_reply_error(call, SPL_EMDS_NOLEADER, NULL);
    }
    return false;
}

struct dispatch_job {
    struct spl_mdsd *d;
    spl_rpc_call *call;
    void (*fn)(struct spl_mdsd *d, spl_rpc_call *call);
};

static void dispatch_run(void *arg)
{
    struct dispatch_job *j = arg;
    if (spl_mdsd_gate(j->d, j->call)) /* leadership may have ended while queued */
        j->fn(j->d, j->call);
    free(j);
}

void spl_mdsd_dispatch(struct spl_mdsd *d, spl_rpc_call *call,
                       void (*fn)(struct spl_mdsd *d, spl_rpc_call *call))
{
    if (!spl_mdsd_gate(d, call))
        return;
    struct dispatch_job *j = malloc(sizeof *j);
    if (!j) {
        spl_rpc_reply_error(call, -ENOMEM, NULL);
        return;
    }
    *j = (struct dispatch_job){d, call, fn};
    int rc = spl_workq_push(d->wq, dispatch_run, j);
    if (rc < 0) {
        free(j);
        spl_rpc_reply_error(call, rc == -EAGAIN ? SPL_ERPC_OVERLOAD : rc, NULL);
    }
}

void spl_mdsd_reply_err(spl_rpc_call *call, int rc, const char *msg)
{
    ASSERT(rc < 0);
    if (rc == SPL_EINTERNAL || rc == -ENOMEM || rc == SPL_EETCD_PROTO)
        LOG_ERROR("mds", "%s: %s (%s)", spl_rpc_call_method(call)->name, spl_errname(rc),
                  msg ? msg : spl_etcd_errmsg());
    if (!msg && (rc == SPL_EETCD_UNAVAILABLE || rc == SPL_EETCD_PROTO) && spl_etcd_errmsg()[0])
        msg = spl_etcd_errmsg();
    spl_rpc_reply_error(call, rc, msg);
}

#define REQ(type, call) ((const type *)spl_rpc_call_request(call))

/* ---- Topology service ---- */

static void do_cluster_init(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__ClusterInitRequest *req = REQ(Spline__ClusterInitRequest, call);
    size_t len = req->cluster_file ? strlen(req->cluster_file) : 0;
    if (len == 0) {
        spl_mdsd_reply_err(call, SPL_EMDS_EMPTYFILE, NULL);
        return;
    }
    if (len > SPL_CLUSTER_FILE_MAX) {
        spl_mdsd_reply_err(call, SPL_ETOOBIG, "cluster file larger than 4 MiB");
        return;
    }
    struct spl_cluster_desc desc = {0};
    char why[512] = "";
    int rc = spl_cluster_parse(req->cluster_file, len, &desc, why, sizeof why);
    struct spl_topo_init_report rep = {0};
    if (rc == 0)
        rc = spl_topo_apply_cluster(d->topo, &desc, &rep, why, sizeof why);
    spl_cluster_desc_free(&desc);
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, why[0] ? why : NULL);
        return;
    }
    (void)spl_hbstate_load(d->hb, d->topo, true);
    LOG_INFO("mds", "cluster init: created %zu pools %zu zones %zu servers %zu chunkservers "
             "%zu lpools %zu copysets; %zu placed, %zu pending", rep.created.pools,
             rep.created.zones, rep.created.servers, rep.created.chunkservers,
             rep.created.lpools, rep.created.copysets, rep.lpools_placed, rep.lpools_pending);
    Spline__ClusterInitResponse resp = SPLINE__CLUSTER_INIT_RESPONSE__INIT;
    resp.pools_created = (uint32_t)rep.created.pools;
    resp.zones_created = (uint32_t)rep.created.zones;
    resp.servers_created = (uint32_t)rep.created.servers;
    resp.chunkservers_created = (uint32_t)rep.created.chunkservers;
    resp.logical_pools_created = (uint32_t)rep.created.lpools;
    resp.copysets_created = (uint32_t)rep.created.copysets;
    resp.logical_pools_placed = (uint32_t)rep.lpools_placed;
    resp.logical_pools_pending = (uint32_t)rep.lpools_pending;
    spl_rpc_reply(call, &resp.base, NULL);
}

static void do_register(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__RegisterChunkserverRequest *req = REQ(Spline__RegisterChunkserverRequest, call);
    struct spl_topo_cs_registration reg = {0};
    int rc = 0;
    if (!req->host || !req->host[0] || strlen(req->host) >= sizeof reg.host)
        rc = SPL_EMDS_BADHOST;
    else if (req->port == 0 || req->port > 65535)
        rc = SPL_EMDS_BADPORT;
    else if (!req->disk || !req->disk[0] || strlen(req->disk) >= sizeof reg.disk)
        rc = SPL_EMDS_BADDISK;
    else if (req->server_name && req->server_name[0] &&
             !spl_cluster_name_valid(req->server_name))
        rc = SPL_ETOPO_INVALID;
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, NULL);
        return;
    }
    snprintf(reg.server_name, sizeof reg.server_name, "%s",
             req->server_name ? req->server_name : "");
    snprintf(reg.host, sizeof reg.host, "%s", req->host);
    reg.port = (uint16_t)req->port;
    snprintf(reg.disk, sizeof reg.disk, "%s", req->disk);
    reg.capacity_bytes = req->capacity_bytes;
    uint32_t id = 0;
    rc = spl_topo_register_chunkserver(d->topo, &reg, &id);
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, NULL);
        return;
    }
    pthread_mutex_lock(&d->hb->lock);
    d->hb->last_register_ns = spl_mono_ns();
    pthread_mutex_unlock(&d->hb->lock);
    char token[17];
    spl_hbstate_token(id, reg.host, reg.port, reg.disk, token);
    Spline__RegisterChunkserverResponse resp = SPLINE__REGISTER_CHUNKSERVER_RESPONSE__INIT;
    resp.chunkserver_id = id;
    resp.token = token;
    spl_rpc_reply(call, &resp.base, NULL);
}

static const char *lpool_state_name(enum spl_lpool_state s)
{
    return s == SPL_LPOOL_READY ? "ready" : s == SPL_LPOOL_PLACING ? "placing" : "pending";
}

/* cs_infos - every chunkserver with its liveness (malloc'd; strings point into tcs). */
static Spline__ChunkserverInfo *cs_infos(struct spl_mdsd *d, struct spl_topo_chunkserver *tcs,
                                         size_t n)
{
    Spline__ChunkserverInfo *ci = calloc(n ? n : 1, sizeof *ci);
    if (!ci)
        return NULL;
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&d->hb->lock);
    for (size_t i = 0; i < n; i++) {
        spline__chunkserver_info__init(&ci[i]);
        ci[i].id = tcs[i].id;
        ci[i].server_id = tcs[i].server_id;
        ci[i].zone_id = tcs[i].zone_id;
        ci[i].host = tcs[i].host;
        ci[i].port = tcs[i].port;
        ci[i].disk = tcs[i].disk;
        ci[i].capacity_bytes = tcs[i].capacity_bytes;
        ci[i].retired = tcs[i].state == SPL_CS_RETIRED;
        ci[i].online = SPLINE__CHUNKSERVER_ONLINE__CS_UNKNOWN;
        const struct hb_cs *c = spl_hbstate_cs_locked(d->hb, tcs[i].id);
        if (!c)
            continue;
        ci[i].online = (Spline__ChunkserverOnline)spl_hbstate_live_locked(d->hb, c, now);
        ci[i].copyset_count = c->set_count;
        ci[i].leader_count = c->leader_count;
        ci[i].last_heartbeat_ms_ago = c->last_hb_ns ? (now - c->last_hb_ns) / 1000000 : 0;
    }
    pthread_mutex_unlock(&d->hb->lock);
    return ci;
}

static void do_list_chunkservers(struct spl_mdsd *d, spl_rpc_call *call)
{
    struct spl_topo_chunkserver *tcs = NULL;
    size_t n = 0;
    int rc = spl_topo_list_chunkservers(d->topo, &tcs, &n);
    Spline__ChunkserverInfo *ci = rc == 0 ? cs_infos(d, tcs, n) : NULL;
    Spline__ChunkserverInfo **cp = ci ? calloc(n ? n : 1, sizeof *cp) : NULL;
    if (!cp) {
        spl_mdsd_reply_err(call, rc < 0 ? rc : -ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        cp[i] = &ci[i];
    Spline__ListChunkserversResponse resp = SPLINE__LIST_CHUNKSERVERS_RESPONSE__INIT;
    resp.chunkservers = cp;
    resp.n_chunkservers = n;
    spl_rpc_reply(call, &resp.base, NULL);
out:
    free(cp);
    free(ci);
    free(tcs);
}

static void do_list_topology(struct spl_mdsd *d, spl_rpc_call *call)
{
    struct spl_topo_pool *tp = NULL;
    struct spl_topo_zone *tz = NULL;
    struct spl_topo_server *ts = NULL;
    struct spl_topo_chunkserver *tcs = NULL;
    struct spl_topo_lpool *tl = NULL;
    size_t np = 0, nz = 0, ns = 0, ncs = 0, nl = 0;
    int rc = spl_topo_list_pools(d->topo, &tp, &np);
    if (rc == 0)
        rc = spl_topo_list_zones(d->topo, &tz, &nz);
    if (rc == 0)
        rc = spl_topo_list_servers(d->topo, &ts, &ns);
    if (rc == 0)
        rc = spl_topo_list_chunkservers(d->topo, &tcs, &ncs);
    if (rc == 0)
        rc = spl_topo_list_lpools(d->topo, &tl, &nl);
    Spline__PoolInfo *pi = calloc(np + 1, sizeof *pi);
    Spline__ZoneInfo *zi = calloc(nz + 1, sizeof *zi);
    Spline__ServerInfo *si = calloc(ns + 1, sizeof *si);
    Spline__LogicalPoolInfo *li = calloc(nl + 1, sizeof *li);
    void **ptrs = calloc(np + nz + ns + nl + ncs + 5, sizeof *ptrs);
    Spline__ChunkserverInfo *ci = rc == 0 ? cs_infos(d, tcs, ncs) : NULL;
    if (rc < 0 || !pi || !zi || !si || !li || !ptrs || !ci) {
        spl_mdsd_reply_err(call, rc < 0 ? rc : -ENOMEM, NULL);
        goto out;
    }
    Spline__ListTopologyResponse resp = SPLINE__LIST_TOPOLOGY_RESPONSE__INIT;
    void **p = ptrs;
    resp.pools = (Spline__PoolInfo **)p;
    for (size_t i = 0; i < np; i++, p++) {
        spline__pool_info__init(&pi[i]);
        pi[i].id = tp[i].id;
        pi[i].name = tp[i].name;
        *p = &pi[i];
    }
    resp.n_pools = np;
    resp.zones = (Spline__ZoneInfo **)p;
    for (size_t i = 0; i < nz; i++, p++) {
        spline__zone_info__init(&zi[i]);
        zi[i].id = tz[i].id;
        zi[i].pool_id = tz[i].pool_id;
        zi[i].name = tz[i].name;
        *p = &zi[i];
    }
    resp.n_zones = nz;
    resp.servers = (Spline__ServerInfo **)p;
    for (size_t i = 0; i < ns; i++, p++) {
        spline__server_info__init(&si[i]);
        si[i].id = ts[i].id;
        si[i].zone_id = ts[i].zone_id;
        si[i].name = ts[i].name;
        si[i].ip = ts[i].ip;
        *p = &si[i];
    }
    resp.n_servers = ns;
    resp.chunkservers = (Spline__ChunkserverInfo **)p;
    for (size_t i = 0; i < ncs; i++, p++)
        *p = &ci[i];
    resp.n_chunkservers = ncs;
    resp.logical_pools = (Spline__LogicalPoolInfo **)p;
    for (size_t i = 0; i < nl; i++, p++) {
        spline__logical_pool_info__init(&li[i]);
        li[i].id = tl[i].id;
        li[i].pool_id = tl[i].pool_id;
        li[i].name = tl[i].name;
        li[i].replicas = tl[i].replicas;
        li[i].copyset_count = tl[i].copyset_count;
        li[i].state = (char *)lpool_state_name(tl[i].state);
        *p = &li[i];
    }
    resp.n_logical_pools = nl;
    spl_rpc_reply(call, &resp.base, NULL);
out:
    free(tp); free(tz); free(ts); free(pi); free(zi); free(si); free(li); free(ptrs);
    free(ci); free(tcs); free(tl);
}

#define HANDLER(name, fn)                                                                \
    static void name(spl_rpc_call *call, void *ctx) { spl_mdsd_dispatch(ctx, call, fn); }

HANDLER(h_cluster_init, do_cluster_init)
HANDLER(h_register, do_register)
HANDLER(h_list_topology, do_list_topology)
HANDLER(h_list_chunkservers, do_list_chunkservers)

static const struct spl_rpc_method topology_methods[] = {
    {"ClusterInit", &spline__cluster_init_request__descriptor,
     &spline__cluster_init_response__descriptor, h_cluster_init},
    {"RegisterChunkserver", &spline__register_chunkserver_request__descriptor,
     &spline__register_chunkserver_response__descriptor, h_register},
    {"ListTopology", &spline__list_topology_request__descriptor,
     &spline__list_topology_response__descriptor, h_list_topology},
    {"ListChunkservers", &spline__list_topology_request__descriptor,
     &spline__list_chunkservers_response__descriptor, h_list_chunkservers},
};

const struct spl_rpc_service spl_mdsd_topology_service = {
    .id = SPL_RPC_SERVICE_TOPOLOGY, .name = "topology", .methods = topology_methods,
    .method_count = sizeof topology_methods / sizeof topology_methods[0]};

/* ---- GetCopysets (Mds service method 10) ---- */

void spl_mdsd_do_get_copysets(struct spl_mdsd *d, spl_rpc_call *call);
void spl_mdsd_do_get_copysets(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__GetCopysetsRequest *req = REQ(Spline__GetCopysetsRequest, call);
    if (req->n_ids == 0 && req->chunkserver_id == 0) {
        spl_mdsd_reply_err(call, SPL_EMDS_NOARG, "give copyset ids or a chunkserver id");
        return;
    }
    if (req->n_ids > SPL_MDS_COPYSETS_PER_CS_MAX) {
        spl_mdsd_reply_err(call, SPL_EMDS_TOOMANY, NULL);
        return;
    }
    for (size_t i = 0; i < req->n_ids; i++)
        if (!req->ids[i] || !req->ids[i]->logical_pool_id || !req->ids[i]->copyset_id) {
            spl_mdsd_reply_err(call, SPL_EMDS_BADCOPYSET, NULL);
            return;
        }
    struct spl_hbstate *hb = d->hb;
    pthread_mutex_lock(&hb->lock);
    uint32_t idx_count = 0, *idx = NULL;
    int rc = 0;
    if (req->n_ids) {
        idx = calloc(req->n_ids, sizeof *idx);
        for (size_t i = 0; idx && i < req->n_ids && rc == 0; i++) {
            const struct hb_set *s = spl_hbstate_set_locked(hb, req->ids[i]->logical_pool_id,
                                                            req->ids[i]->copyset_id);
            if (!s)
                rc = SPL_ECOPYSET_NOTFOUND;
            else
                idx[idx_count++] = (uint32_t)(s - hb->sets);
        }
    } else {
        const struct hb_cs *c = spl_hbstate_cs_locked(hb, req->chunkserver_id);
        if (!c)
            rc = SPL_ECS_UNKNOWN;
        else if ((idx = calloc(c->set_count + 1, sizeof *idx)) != NULL) {
            if (c->set_count)
                memcpy(idx, c->sets, c->set_count * sizeof *idx);
            idx_count = c->set_count;
        }
    }
    if (!idx && rc == 0)
        rc = -ENOMEM;
    Spline__CopysetInfo *ci = calloc(idx_count + 1, sizeof *ci);
    Spline__CopysetInfo **cp = calloc(idx_count + 1, sizeof *cp);
    Spline__CopysetId *ids = calloc(idx_count + 1, sizeof *ids);
    Spline__PeerAddr *peers = calloc((size_t)(idx_count + 1) * (SPL_REPLICAS_MAX + 1),
                                     sizeof *peers);
    Spline__PeerAddr **pp = calloc((size_t)(idx_count + 1) * SPL_REPLICAS_MAX, sizeof *pp);
    if (rc == 0 && (!ci || !cp || !ids || !peers || !pp))
        rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < idx_count; i++) {
        const struct hb_set *s = &hb->sets[idx[i]];
        Spline__CopysetInfo *x = &ci[i];
        spline__copyset_info__init(x);
        spline__copyset_id__init(&ids[i]);
        ids[i].logical_pool_id = s->lpool_id;
        ids[i].copyset_id = s->id;
        x->id = &ids[i];
        x->epoch = s->epoch;
        x->peers = &pp[(size_t)i * SPL_REPLICAS_MAX];
        Spline__PeerAddr *pa = &peers[(size_t)i * (SPL_REPLICAS_MAX + 1)];
        for (uint32_t m = 0; m <= s->member_count; m++) {
            uint32_t id = m < s->member_count ? s->members[m] : s->leader;
            spline__peer_addr__init(&pa[m]);
            pa[m].chunkserver_id = id;
            const struct hb_cs *c = id ? spl_hbstate_cs_locked(hb, id) : NULL;
            if (c) {
                pa[m].host = (char *)c->host;
                pa[m].port = c->port;
            }
            if (m < s->member_count)
                x->peers[x->n_peers++] = &pa[m];
            else if (id)
                x->leader = &pa[m];
        }
        cp[i] = x;
    }
    if (rc == 0) {
        Spline__GetCopysetsResponse resp = SPLINE__GET_COPYSETS_RESPONSE__INIT;
        resp.copysets = cp;
        resp.n_copysets = idx_count;
        spl_rpc_reply(call, &resp.base, NULL); /* packed before return: lock still held */
    }
    pthread_mutex_unlock(&hb->lock);
    if (rc < 0)
        spl_mdsd_reply_err(call, rc, NULL);
    free(idx); free(ci); free(cp); free(ids); free(peers); free(pp);
}

/* ---- Heartbeat service ---- */

static void do_heartbeat(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__HeartbeatRequest *req = REQ(Spline__HeartbeatRequest, call);
    Spline__HeartbeatResponse resp = SPLINE__HEARTBEAT_RESPONSE__INIT;
    int rc = spl_hbstate_heartbeat(d->hb, req, &resp);
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, NULL);
        return;
    }
    spl_rpc_reply(call, &resp.base, NULL);
    spl_hbstate_free_orders(&resp);
}

HANDLER(h_heartbeat, do_heartbeat)

static const struct spl_rpc_method heartbeat_methods[] = {
    {"Heartbeat", &spline__heartbeat_request__descriptor,
     &spline__heartbeat_response__descriptor, h_heartbeat},
};

const struct spl_rpc_service spl_mdsd_heartbeat_service = {
    .id = SPL_RPC_SERVICE_HEARTBEAT, .name = "heartbeat", .methods = heartbeat_methods,
    .method_count = 1};
