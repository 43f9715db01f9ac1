/*
 * mds_main.c - spline-mds: wires etcd, the topology and namespace models, HA, the RPC
 * services, heartbeat handling, the scheduler and the HTTP endpoints together.
 *
 * `spline-mds example-config` prints the commented example config (conf/mds.example.conf).
 * Exit codes: 0 after SIGTERM/SIGINT, 1 when start-up failed, 2 for bad configuration.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/config.h"
#include "base/errors.h"
#include "base/log.h"
#include "metrics/http.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"
#include "mds/namespace.h"
#include "mds/scheduler.h"
#include "mds/status.h"

static int on_lead(struct spl_mdsd *d)
{
    struct spl_mds_fence fence;
    spl_ha_fence(d->ha, &fence);
    int rc = d->topo ? spl_topo_reload(d->topo)
                     : spl_topo_open(d->etcd, (uint64_t)d->cfg.seed, &d->topo);
    if (rc < 0)
        return rc;
    spl_topo_set_fence(d->topo, &fence);
    if (!d->ns) {
        struct spl_ns_options o = {.recycle_ttl_ms = d->cfg.recycle_purge_age_ms,
                                   .seed = (uint64_t)d->cfg.seed};
        if ((rc = spl_ns_open(d->etcd, d->topo, &o, &d->ns)) < 0)
            return rc;
    }
    spl_ns_set_fence(d->ns, &fence);
    if ((rc = spl_hbstate_load(d->hb, d->topo, false)) < 0)
        return rc;
    spl_sched_reset(d->sched);
    struct spl_topo_counts c;
    spl_topo_get_counts(d->topo, &c);
    LOG_INFO("mds", "loaded: %zu pools, %zu zones, %zu servers, %zu chunkservers, %zu "
             "logical pools, %zu copysets", c.pools, c.zones, c.servers, c.chunkservers,
             c.lpools, c.copysets);
    return 0;
}

static void on_step_down(struct spl_mdsd *d)
{
    /* the stale fence stays on the models: a write still in flight fails in etcd */
    spl_sched_reset(d->sched);
}

static int split_addr(const char *addr, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= host_len)
        return SPL_ECONFIG;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return SPL_ECONFIG;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static int start_rpc(struct spl_mdsd *d)
{
    char host[64];
    uint16_t port;
    if (split_addr(d->cfg.listen, host, sizeof host, &port) < 0) {
        LOG_ERROR("mds", "bad listen address '%s'", d->cfg.listen);
        return SPL_ECONFIG;
    }
    struct spl_rpc_runtime_opts ro = {.io_threads = (uint32_t)d->cfg.io_threads,
                                      .name = "mds-rpc"};
    int rc = spl_rpc_runtime_create(&ro, &d->rt);
    if (rc < 0)
        return rc;
    struct spl_rpc_server_opts so = {.host = host, .port = port};
    if ((rc = spl_rpc_server_create(d->rt, &so, &d->srv)) < 0)
        return rc;
    spl_rpc_server_add_service(d->srv, &spl_mdsd_mds_service, d);
    spl_rpc_server_add_service(d->srv, &spl_mdsd_topology_service, d);
    spl_rpc_server_add_service(d->srv, &spl_mdsd_heartbeat_service, d);
    if ((rc = spl_rpc_server_start(d->srv)) < 0) {
        LOG_ERROR("mds", "cannot listen on %s: %s", d->cfg.listen, spl_strerror(rc));
        return rc;
    }
    if (d->cfg.advertise[0])
        snprintf(d->advertise, sizeof d->advertise, "%s", d->cfg.advertise);
    else
        snprintf(d->advertise, sizeof d->advertise, "%s:%u", host,
                 spl_rpc_server_port(d->srv));
    if (d->cfg.port_file[0]) {
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp", d->cfg.port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", spl_rpc_server_port(d->srv)) < 0 || fclose(f) != 0 ||
            rename(tmp, d->cfg.port_file) != 0) {
            LOG_ERROR("mds", "cannot write port file %s", d->cfg.port_file);
            return -EIO;
        }
    }
    LOG_INFO("mds", "%s listening on %s", d->cfg.name, d->advertise);
    return 0;
}

static int start_http(struct spl_mdsd *d)
{
    if (d->cfg.http_port < 0)
        return 0;
    struct spl_http_options ho = {.port = (uint16_t)d->cfg.http_port, .component = "mds"};
    int rc = spl_http_server_new(&ho, &d->http);
    if (rc < 0)
        return rc;
    spl_http_server_set_status_cb(d->http, spl_mdsd_status_json, d);
    spl_http_server_set_health_cb(d->http, spl_mdsd_health, d);
    if ((rc = spl_http_server_start(d->http)) < 0)
        return rc;
    LOG_INFO("mds", "HTTP on 127.0.0.1:%u (/metrics /status /healthz)",
             spl_http_server_port(d->http));
    return 0;
}

static int open_etcd(struct spl_mdsd *d)
{
    struct spl_etcd_config ec = {.endpoints = d->cfg.etcd,
                                 .timeout_ms = (uint32_t)d->cfg.etcd_timeout_ms,
                                 .connect_timeout_ms = 1000};
    int rc = spl_etcd_open(&ec, &d->etcd);
    if (rc < 0)
        return rc;
    /* election traffic: a renewal must not hang longer than a quarter of the TTL */
    uint64_t t = d->cfg.lease_ttl_ms / 4;
    ec.timeout_ms = (uint32_t)(t < 300 ? 300 : t);
    ec.connect_timeout_ms = ec.timeout_ms;
    return spl_etcd_open(&ec, &d->etcd_ha);
}

/* serve - wait for a signal; purge the recycle bin now and then while leading. */
static void serve(struct spl_mdsd *d, sigset_t *sigs)
{
    uint64_t last_purge = spl_mono_ns();
    for (;;) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (spl_ha_role(d->ha) == SPL_MDSD_LEADER &&
            spl_mono_ns() - last_purge > 60ull * 1000000000ull) {
            last_purge = spl_mono_ns();
            size_t purged = 0;
            if (spl_ns_purge_expired(d->ns, &purged) == 0 && purged)
                LOG_INFO("mds", "purged %zu expired volumes from the recycle bin", purged);
        }
    }
}

int main(int argc, char **argv)
{
    static struct spl_mdsd d;
    struct spl_config_error err;
    const char *pos[1] = {NULL};
    int npos = 0;
    int rc = spl_config_load_args(&spl_mdsd_config_table, &d.cfg, argc, argv, pos, 1, &npos,
                                  &err);
    if (rc == 1)
        return 0;
    if (rc == 0 && npos == 1 && strcmp(pos[0], "example-config") == 0) {
        spl_config_write_example(&spl_mdsd_config_table, stdout);
        return 0;
    }
    if (rc == 0 && npos > 0) {
        fprintf(stderr, "spline-mds: unexpected argument '%s' (only: example-config)\n", pos[0]);
        return 2;
    }
    if (rc < 0) {
        char buf[700];
        spl_config_format_error(&err, buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
        return 2;
    }
    if (d.cfg.fence_margin_ms >= d.cfg.lease_ttl_ms || d.cfg.hb_unstable_ms > d.cfg.hb_offline_ms) {
        fprintf(stderr, "spline-mds: fence_margin must be < lease_ttl and unstable_timeout "
                        "<= offline_timeout\n");
        return 2;
    }
    spl_log_open(d.cfg.log_file[0] ? d.cfg.log_file : NULL, true);
    enum spl_log_level lvl;
    if (spl_log_parse_level(d.cfg.log_level, &lvl) == 0)
        spl_log_set_level(lvl);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit: only main takes them */
    signal(SIGPIPE, SIG_IGN);
    spl_etcd_global_init();
    d.start_unix_ms = spl_wall_ns() / 1000000;

    if ((rc = open_etcd(&d)) < 0 ||
        (rc = spl_workq_start((uint32_t)d.cfg.workers, "mds-wk", &d.wq)) < 0 ||
        (rc = spl_hbstate_new(&d, &d.hb)) < 0 || (rc = spl_sched_new(&d, &d.sched)) < 0 ||
        (rc = spl_hbstate_start(d.hb)) < 0 ||
        (rc = spl_ha_new(&d, on_lead, on_step_down, &d.ha)) < 0 || (rc = start_rpc(&d)) < 0 ||
        (rc = start_http(&d)) < 0 || (rc = spl_sched_start(d.sched)) < 0 ||
        (rc = spl_ha_run(d.ha)) < 0) {
        LOG_ERROR("mds", "start-up failed: %s (%s)", spl_errname(rc), spl_strerror(rc));
        return 1;
    }
    serve(&d, &sigs);

    LOG_INFO("mds", "stopping");
    atomic_store(&d.stopping, true);
    spl_rpc_server_destroy(d.srv);
    spl_workq_stop(d.wq);
    spl_sched_stop(d.sched);
    spl_http_server_free(d.http);
    spl_hbstate_free(d.hb); /* joins the etcd writer, which asks d.ha */
    spl_ha_stop(d.ha);      /* resigns: a standby takes over at once */
    spl_sched_free(d.sched); /* closes its channels */
    spl_rpc_runtime_destroy(d.rt);
    spl_ns_close(d.ns);
    spl_topo_close(d.topo);
    spl_etcd_close(d.etcd_ha);
    spl_etcd_close(d.etcd);
    return 0;
}
