/*
 * mds_client.c - client-side service tables and the leader-following caller; see
 * mds_client.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/errors.h"
#include "copyset.pb-c.h"
#include "heartbeat.pb-c.h"
#include "mds.pb-c.h"
#include "mds/mds_client.h"

#define M(name, req, resp) {name, &spline__##req##__descriptor, &spline__##resp##__descriptor, NULL}

static const struct spl_rpc_method mds_methods[] = {
    M("CreateVolume", create_volume_request, volume_response),
    M("OpenVolume", volume_name_request, volume_response),
    M("StatVolume", volume_name_request, volume_response),
    M("ListVolumes", list_volumes_request, list_volumes_response),
    M("ExtendVolume", extend_volume_request, volume_response),
    M("RenameVolume", rename_volume_request, volume_response),
    M("DeleteVolume", volume_name_request, volume_response),
    M("ListRecycle", list_volumes_request, list_volumes_response),
    M("RestoreVolume", restore_volume_request, volume_response),
    M("GetOrAllocateSegment", segment_request, segment_response),
    M("GetCopysets", get_copysets_request, get_copysets_response),
    M("ClusterStatus", cluster_status_request, cluster_status_response),
    M("CloseVolume", volume_name_request, volume_response),
};
const struct spl_rpc_service spl_mdsc_mds_service = {
    SPL_RPC_SERVICE_MDS, "mds", mds_methods, sizeof mds_methods / sizeof mds_methods[0]};

static const struct spl_rpc_method topo_methods[] = {
    M("ClusterInit", cluster_init_request, cluster_init_response),
    M("RegisterChunkserver", register_chunkserver_request, register_chunkserver_response),
    M("ListTopology", list_topology_request, list_topology_response),
    M("ListChunkservers", list_topology_request, list_chunkservers_response),
};
const struct spl_rpc_service spl_mdsc_topology_service = {
    SPL_RPC_SERVICE_TOPOLOGY, "topology", topo_methods,
    sizeof topo_methods / sizeof topo_methods[0]};

static const struct spl_rpc_method hb_methods[] = {
    M("Heartbeat", heartbeat_request, heartbeat_response),
};
const struct spl_rpc_service spl_mdsc_heartbeat_service = {SPL_RPC_SERVICE_HEARTBEAT,
                                                           "heartbeat", hb_methods, 1};

static const struct spl_rpc_method copyset_methods[] = {
    M("CreateCopysets", create_copysets_request, create_copysets_response),
    M("GetCopysetStatus", copyset_status_request, copyset_status_response),
};
const struct spl_rpc_service spl_copyset_client_service = {SPL_RPC_SERVICE_COPYSET, "copyset",
                                                           copyset_methods, 2};

struct spl_mdsc {
    spl_rpc_runtime *rt;
    pthread_mutex_t lock;
    uint32_t call_timeout_ms, deadline_ms;
    uint32_t count, current;
    char addrs[SPL_MDSC_ADDRS_MAX][SPL_RPC_LEADER_HINT_MAX];
    spl_rpc_channel *chans[SPL_MDSC_ADDRS_MAX];
    char leader[SPL_RPC_LEADER_HINT_MAX];
    bool no_follow;
    uint32_t attempts_max;
};

void spl_mdsc_set_limits(struct spl_mdsc *c, uint32_t call_timeout_ms, uint32_t deadline_ms,
                         uint32_t attempts_max)
{
    if (call_timeout_ms)
        c->call_timeout_ms = call_timeout_ms;
    if (deadline_ms)
        c->deadline_ms = deadline_ms;
    c->attempts_max = attempts_max ? attempts_max : SPL_MDSC_ATTEMPTS_MAX;
}

void spl_mdsc_set_follow(struct spl_mdsc *c, bool follow) { c->no_follow = !follow; }

int spl_mdsc_open(spl_rpc_runtime *rt, const char *addrs, uint32_t call_timeout_ms,
                  uint32_t deadline_ms, struct spl_mdsc **out)
{
    if (!addrs || !addrs[0])
        return -EINVAL;
    struct spl_mdsc *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->rt = rt;
    c->call_timeout_ms = call_timeout_ms ? call_timeout_ms : 5000;
    c->deadline_ms = deadline_ms ? deadline_ms : 15000;
    c->attempts_max = SPL_MDSC_ATTEMPTS_MAX;
    pthread_mutex_init(&c->lock, NULL);
    const char *p = addrs;
    while (*p && c->count < SPL_MDSC_ADDRS_MAX) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < SPL_RPC_LEADER_HINT_MAX) {
            memcpy(c->addrs[c->count], p, n);
            c->addrs[c->count++][n] = '\0';
        }
        p += n + (p[n] == ',');
    }
    if (c->count == 0) {
        spl_mdsc_close(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

void spl_mdsc_close(struct spl_mdsc *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->count; i++)
        spl_rpc_channel_close(c->chans[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *spl_mdsc_leader(struct spl_mdsc *c) { return c->leader; }

/* channel_at - the channel of address i (opened on first use); NULL on failure. */
static spl_rpc_channel *channel_at(struct spl_mdsc *c, uint32_t i)
{
    if (!c->chans[i]) {
        struct spl_rpc_channel_opts o = {.call_timeout_ms = c->call_timeout_ms,
                                         .connect_timeout_ms = 1000,
                                         .backoff_initial_ms = 50, .backoff_max_ms = 500};
        if (spl_rpc_channel_open(c->rt, c->addrs[i], &o, &c->chans[i]) < 0)
            c->chans[i] = NULL;
    }
    return c->chans[i];
}

/* follow_hint - the index of addr (added when new; the current one when full). */
static uint32_t follow_hint(struct spl_mdsc *c, const char *addr)
{
    for (uint32_t i = 0; i < c->count; i++)
        if (strcmp(c->addrs[i], addr) == 0)
            return i;
    if (c->count == SPL_MDSC_ADDRS_MAX)
        return c->current;
    snprintf(c->addrs[c->count], sizeof c->addrs[0], "%s", addr);
    return c->count++;
}

static bool retryable(int rc)
{
    return rc == SPL_EMDS_NOTLEADER || rc == SPL_EMDS_NOLEADER || rc == SPL_EMDS_NOTREADY ||
           rc == SPL_ERPC_UNREACHABLE || rc == SPL_ERPC_CONNCLOSED || rc == SPL_ERPC_TIMEDOUT ||
           rc == SPL_EETCD_UNAVAILABLE || rc == SPL_ESHUTDOWN || rc == SPL_ERPC_OVERLOAD ||
           rc == SPL_ERPC_CANCELED;
}

int spl_mdsc_call(struct spl_mdsc *c, const struct spl_rpc_service *svc, uint32_t method,
                  const ProtobufCMessage *req, ProtobufCMessage **resp,
                  struct spl_rpc_error_info *err)
{
    struct spl_rpc_error_info local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    uint64_t deadline = spl_mono_ns() + (uint64_t)c->deadline_ms * 1000000;
    int rc = SPL_ERPC_UNREACHABLE;
    uint32_t tries_in_turn = 0;
    for (uint32_t attempt = 1;; attempt++) {
        pthread_mutex_lock(&c->lock);
        uint32_t i = c->current;
        spl_rpc_channel *ch = channel_at(c, i);
        pthread_mutex_unlock(&c->lock);
        uint64_t t = spl_mono_ns();
        uint64_t left_ms = t < deadline ? (deadline - t) / 1000000 + 1 : 1;
        struct spl_rpc_call_opts o = {.timeout_ms = left_ms < c->call_timeout_ms
                                                        ? (uint32_t)left_ms
                                                        : c->call_timeout_ms,
                                      .wait_for_ready = false};
        rc = ch ? spl_rpc_call_sync(ch, svc, method, req, NULL, &o, resp, NULL, err)
                : SPL_ERPC_UNREACHABLE;
        if (rc == 0) {
            pthread_mutex_lock(&c->lock);
            snprintf(c->leader, sizeof c->leader, "%s", c->addrs[i]);
            pthread_mutex_unlock(&c->lock);
            return 0;
        }
        if (!retryable(rc) || c->no_follow || attempt >= c->attempts_max)
            return rc;
        uint64_t now = spl_mono_ns();
        if (now + 1000000 >= deadline) /* less than a millisecond left */
            return rc;
        pthread_mutex_lock(&c->lock);
        if (rc == SPL_EMDS_NOTLEADER && err->leader_hint[0]) {
            c->current = follow_hint(c, err->leader_hint);
        } else if (c->current == i) {
            c->current = (i + 1) % c->count;
        }
        bool pause = c->current == i || ++tries_in_turn >= c->count;
        if (pause)
            tries_in_turn = 0;
        pthread_mutex_unlock(&c->lock);
        if (pause || rc == SPL_EMDS_NOTREADY || rc == SPL_EMDS_NOLEADER) {
            uint64_t pause_ns = 100 * 1000000ull;
            if (deadline - now < pause_ns)
                pause_ns = deadline - now;
            struct timespec ts = {0, (long)pause_ns};
            nanosleep(&ts, NULL);
        }
    }
}
