/*
 * status.c - the cluster's health as the leader sees it: ClusterStatus (Mds service
 * method 11) and the daemon's /status JSON and /healthz.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errors.h"
#include "mds.pb-c.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"
#include "mds/scheduler.h"
#include "mds/status.h"

void spl_mdsd_cluster_summary(struct spl_mdsd *d, struct spl_mdsd_summary *out,
                              struct spl_mdsd_recovery *rec, uint32_t rec_max)
{
    memset(out, 0, sizeof *out);
    struct spl_hbstate *hb = d->hb;
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&hb->lock);
    if (hb->index_dirty)
        spl_hbstate_reindex_locked(hb);
    spl_hbstate_track_offline_locked(hb, now);
    out->leaders_min = out->sets_min = UINT32_MAX;
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        const struct hb_cs *c = &hb->css[i];
        enum spl_cs_live l = spl_hbstate_live_locked(hb, c, now);
        out->cs_total++;
        if (l == SPL_CS_LIVE_ONLINE || l == SPL_CS_LIVE_UNSTABLE) {
            if (l == SPL_CS_LIVE_ONLINE)
                out->cs_online++;
            else
                out->cs_unstable++;
            if (c->leader_count < out->leaders_min)
                out->leaders_min = c->leader_count;
            if (c->leader_count > out->leaders_max)
                out->leaders_max = c->leader_count;
            if (c->set_count < out->sets_min)
                out->sets_min = c->set_count;
            if (c->set_count > out->sets_max)
                out->sets_max = c->set_count;
        } else if (l == SPL_CS_LIVE_OFFLINE) {
            out->cs_offline++;
        } else {
            out->cs_unknown++;
        }
        if (c->offline_since_ns && c->copysets_at_offline) {
            if (rec && out->recovery_count < rec_max)
                rec[out->recovery_count] = (struct spl_mdsd_recovery){
                    c->id, c->copysets_at_offline, c->set_count};
            out->recovery_count++;
            out->recovery_left += c->set_count;
            out->recovery_total += c->copysets_at_offline;
        }
    }
    if (out->leaders_min == UINT32_MAX)
        out->leaders_min = out->sets_min = 0;
    for (uint32_t i = 0; i < hb->set_count; i++) {
        const struct hb_set *s = &hb->sets[i];
        uint32_t up = 0;
        for (uint32_t m = 0; m < s->member_count; m++) {
            const struct hb_cs *c = spl_hbstate_cs_locked(hb, s->members[m]);
            enum spl_cs_live l = c ? spl_hbstate_live_locked(hb, c, now) : SPL_CS_LIVE_OFFLINE;
            up += l == SPL_CS_LIVE_ONLINE || l == SPL_CS_LIVE_UNSTABLE;
        }
        out->sets_total++;
        if (up < s->member_count / 2 + 1)
            out->sets_unavailable++;
        else if (up < s->member_count || s->member_count < s->replicas_wanted)
            out->sets_degraded++;
        else
            out->sets_healthy++;
        out->sets_leader_known += s->leader != 0;
    }
    out->hb_count = hb->hb_count;
    out->hb_ns_total = hb->hb_ns_total;
    out->epoch_updates = hb->epoch_updates;
    pthread_mutex_unlock(&hb->lock);
    spl_sched_get_counts(d->sched, &out->ops);
    out->health = out->sets_unavailable ? 2
                  : out->sets_degraded || out->cs_offline || out->cs_unstable ||
                          out->ops.recover || out->ops.replica_count
                      ? 1
                      : 0;
    snprintf(out->summary, sizeof out->summary,
             "%s: %u/%u chunkservers online, %u/%u copysets healthy (%u degraded, "
             "%u unavailable), %u operators",
             out->health == 0 ? "HEALTH_OK" : out->health == 1 ? "HEALTH_WARN" : "HEALTH_ERR",
             out->cs_online, out->cs_total, out->sets_healthy, out->sets_total,
             out->sets_degraded, out->sets_unavailable,
             out->ops.recover + out->ops.replica_count + out->ops.copyset_balance +
                 out->ops.leader_balance);
}

#define RECOVERY_REPORT_MAX 1024

void spl_mdsd_do_cluster_status(struct spl_mdsd *d, spl_rpc_call *call);
void spl_mdsd_do_cluster_status(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__ClusterStatusRequest *req =
        (const Spline__ClusterStatusRequest *)spl_rpc_call_request(call);
    struct spl_mdsd_summary s;
    struct spl_mdsd_recovery *rec = calloc(RECOVERY_REPORT_MAX, sizeof *rec);
    Spline__RecoveryProgress *rp = calloc(RECOVERY_REPORT_MAX, sizeof *rp);
    Spline__RecoveryProgress **rpp = calloc(RECOVERY_REPORT_MAX, sizeof *rpp);
    if (!rec || !rp || !rpp) {
        free(rec);
        free(rp);
        free(rpp);
        spl_mdsd_reply_err(call, -ENOMEM, NULL);
        return;
    }
    spl_mdsd_cluster_summary(d, &s, rec, RECOVERY_REPORT_MAX);
    Spline__ClusterStatusResponse r = SPLINE__CLUSTER_STATUS_RESPONSE__INIT;
    Spline__OperatorCounts oc = SPLINE__OPERATOR_COUNTS__INIT;
    r.health = (Spline__ClusterHealth)s.health;
    r.summary = s.summary;
    r.leader = d->advertise;
    r.chunkservers_total = s.cs_total;
    r.chunkservers_online = s.cs_online;
    r.chunkservers_unstable = s.cs_unstable;
    r.chunkservers_offline = s.cs_offline;
    r.copysets_total = s.sets_total;
    r.copysets_healthy = s.sets_healthy;
    r.copysets_degraded = s.sets_degraded;
    r.copysets_unavailable = s.sets_unavailable;
    oc.recover = s.ops.recover;
    oc.replica_count = s.ops.replica_count;
    oc.copyset_balance = s.ops.copyset_balance;
    oc.leader_balance = s.ops.leader_balance;
    r.operators = &oc;
    r.operators_finished = s.ops.finished;
    r.operators_failed = s.ops.failed;
    r.leader_since_unix_ms = spl_ha_leader_since_ms(d->ha);
    r.leaders_min = s.leaders_min;
    r.leaders_max = s.leaders_max;
    r.copysets_per_cs_min = s.sets_min;
    r.copysets_per_cs_max = s.sets_max;
    uint32_t nrec = s.recovery_count < RECOVERY_REPORT_MAX ? s.recovery_count
                                                           : RECOVERY_REPORT_MAX;
    for (uint32_t i = 0; i < nrec; i++) {
        spline__recovery_progress__init(&rp[i]);
        rp[i].chunkserver_id = rec[i].cs_id;
        rp[i].copysets_at_offline = rec[i].at_offline;
        rp[i].copysets_left = rec[i].left;
        rpp[i] = &rp[i];
    }
    r.recovery = rpp;
    r.n_recovery = req->details || nrec <= 64 ? nrec : 64;
    struct spl_topo_lpool *lp = NULL;
    size_t nl = 0;
    if (spl_topo_list_lpools(d->topo, &lp, &nl) == 0) {
        r.logical_pools = (uint32_t)nl;
        for (size_t i = 0; i < nl; i++)
            r.logical_pools_pending += lp[i].state != SPL_LPOOL_READY;
        free(lp);
    }
    spl_rpc_reply(call, &r.base, NULL);
    free(rec);
    free(rp);
    free(rpp);
}

/* ---- /status and /healthz ---- */

static const char *role_name(enum spl_mdsd_role r)
{
    return r == SPL_MDSD_LEADER ? "leader" : r == SPL_MDSD_LOADING ? "loading" : "standby";
}

int spl_mdsd_status_json(struct json_object *o, void *arg)
{
    struct spl_mdsd *d = arg;
    enum spl_mdsd_role role = spl_ha_role(d->ha);
    char leader[SPL_MDSD_ADDR_MAX];
    spl_ha_leader_addr(d->ha, leader, sizeof leader);
    json_object_object_add(o, "name", json_object_new_string(d->cfg.name));
    json_object_object_add(o, "address", json_object_new_string(d->advertise));
    json_object_object_add(o, "role", json_object_new_string(role_name(role)));
    json_object_object_add(o, "leader", json_object_new_string(role == SPL_MDSD_LEADER
                                                                   ? d->advertise : leader));
    json_object_object_add(o, "etcd_ok", json_object_new_boolean(spl_ha_etcd_ok(d->ha)));
    json_object_object_add(o, "leader_since_unix_ms",
                           json_object_new_int64((int64_t)spl_ha_leader_since_ms(d->ha)));
    if (role != SPL_MDSD_LEADER || !d->hb)
        return 0;
    struct spl_mdsd_summary s;
    spl_mdsd_cluster_summary(d, &s, NULL, 0);
    struct json_object *c = json_object_new_object();
    json_object_object_add(c, "summary", json_object_new_string(s.summary));
    json_object_object_add(c, "health", json_object_new_int(s.health));
    json_object_object_add(c, "chunkservers_total", json_object_new_int64(s.cs_total));
    json_object_object_add(c, "chunkservers_online", json_object_new_int64(s.cs_online));
    json_object_object_add(c, "chunkservers_unstable", json_object_new_int64(s.cs_unstable));
    json_object_object_add(c, "chunkservers_offline", json_object_new_int64(s.cs_offline));
    json_object_object_add(c, "copysets_total", json_object_new_int64(s.sets_total));
    json_object_object_add(c, "copysets_healthy", json_object_new_int64(s.sets_healthy));
    json_object_object_add(c, "copysets_degraded", json_object_new_int64(s.sets_degraded));
    json_object_object_add(c, "copysets_unavailable",
                           json_object_new_int64(s.sets_unavailable));
    json_object_object_add(c, "copysets_leader_known",
                           json_object_new_int64(s.sets_leader_known));
    json_object_object_add(c, "operators_recover", json_object_new_int64(s.ops.recover));
    json_object_object_add(c, "operators_leader_balance",
                           json_object_new_int64(s.ops.leader_balance));
    json_object_object_add(c, "operators_copyset_balance",
                           json_object_new_int64(s.ops.copyset_balance));
    json_object_object_add(c, "operators_finished", json_object_new_int64((int64_t)s.ops.finished));
    json_object_object_add(c, "operators_failed", json_object_new_int64((int64_t)s.ops.failed));
    json_object_object_add(c, "recovery_left", json_object_new_int64(s.recovery_left));
    json_object_object_add(c, "recovery_total", json_object_new_int64(s.recovery_total));
    json_object_object_add(c, "leaders_min", json_object_new_int64(s.leaders_min));
    json_object_object_add(c, "leaders_max", json_object_new_int64(s.leaders_max));
    json_object_object_add(c, "copysets_per_cs_min", json_object_new_int64(s.sets_min));
    json_object_object_add(c, "copysets_per_cs_max", json_object_new_int64(s.sets_max));
    json_object_object_add(c, "heartbeats", json_object_new_int64((int64_t)s.hb_count));
    json_object_object_add(c, "heartbeat_ns_total", json_object_new_int64((int64_t)s.hb_ns_total));
    json_object_object_add(c, "epoch_updates", json_object_new_int64((int64_t)s.epoch_updates));
    json_object_object_add(c, "epoch_updates_pending",
                           json_object_new_int64(spl_hbstate_pending(d->hb)));
    json_object_object_add(o, "cluster", c);
    return 0;
}

bool spl_mdsd_health(char *reason, size_t reason_size, void *arg)
{
    struct spl_mdsd *d = arg;
    if (!spl_ha_etcd_ok(d->ha)) {
        snprintf(reason, reason_size, "etcd unreachable");
        return false;
    }
    return true; /* a healthy standby is healthy */
}
