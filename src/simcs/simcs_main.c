/*
 * simcs_main.c - spline-simcs: many simulated chunkservers in one process, speaking the
 * real protocols over the real RPC layer: RegisterChunkserver and Heartbeat to the MDS
 * (following leader redirects), the Copyset service (CreateCopysets, GetCopysetStatus) on
 * one listening port shared by all of them (requests name the chunkserver), and orders
 * executed on the shared copyset model (model.h).
 *
 * Layout: --count chunkservers spread over --zones zones, --cs_per_server per server;
 * --print_cluster_file prints the matching cluster description (all of them declared,
 * with --copysets_per_cs copysets per chunkserver in logical pool simlpool) and exits.
 * With --from_mds, the layout is taken from the MDS instead: --cs_per_server simulated
 * chunkservers on every server of its topology (for an existing cluster file).
 *
 * Control over HTTP (--http_port): /kill?cs=ID[,ID...] stops a chunkserver's heartbeats
 * and its part in elections, /revive?cs=ID brings it back, /status is JSON with the
 * model's figures and the last heartbeat round's latency.
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 start-up failure, 2 bad configuration.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/config.h"
#include "base/errors.h"
#include "base/log.h"
#include "copyset.pb-c.h"
#include "heartbeat.pb-c.h"
#include "mds.pb-c.h"
#include "mds/mds_client.h"
#include "metrics/http.h"
#include "simcs/model.h"

struct simcs_config {
    char mds[512];
    char listen[64];
    char port_file[256];
    char log_level[16];
    int64_t count, zones, cs_per_server, copysets_per_cs, http_port, io_threads, seed;
    uint64_t hb_interval_ms;
    bool print_cluster_file, from_mds;
};

#define F(x) offsetof(struct simcs_config, x)
#define S(x) sizeof(((struct simcs_config *)0)->x)
static const struct spl_config_key keys[] = {
    {.name = "mds", .type = SPL_CFG_STRING, .default_value = "127.0.0.1:6700", .offset = F(mds),
     .str_cap = S(mds), .doc = "MDS addresses, comma-separated"},
    {.name = "listen", .type = SPL_CFG_STRING, .default_value = "127.0.0.1:8200",
     .offset = F(listen), .str_cap = S(listen),
     .doc = "host:port of the Copyset service all simulated chunkservers share"},
    {.name = "port_file", .type = SPL_CFG_STRING, .default_value = "\"\"", .offset = F(port_file),
     .str_cap = S(port_file), .doc = "write the HTTP control port here (empty: no)"},
    {.name = "log_level", .type = SPL_CFG_STRING, .default_value = "info",
     .offset = F(log_level), .str_cap = S(log_level), .doc = "debug | info | warn | error"},
    {.name = "count", .type = SPL_CFG_INT, .default_value = "18", .min = 1, .max = 100000,
     .offset = F(count), .doc = "simulated chunkservers"},
    {.name = "zones", .type = SPL_CFG_INT, .default_value = "3", .min = 1, .max = 1000,
     .offset = F(zones), .doc = "zones they are spread over"},
    {.name = "cs_per_server", .type = SPL_CFG_INT, .default_value = "2", .min = 1, .max = 1000,
     .offset = F(cs_per_server), .doc = "chunkservers per server"},
    {.name = "copysets_per_cs", .type = SPL_CFG_INT, .default_value = "100", .min = 1,
     .max = 1024, .offset = F(copysets_per_cs),
     .doc = "copysets per chunkserver in the printed cluster file"},
    {.name = "http_port", .type = SPL_CFG_INT, .default_value = "0", .min = 0, .max = 65535,
     .offset = F(http_port), .doc = "HTTP control port (0: any)"},
    {.name = "io_threads", .type = SPL_CFG_INT, .default_value = "2", .min = 1, .max = 16,
     .offset = F(io_threads), .doc = "RPC IO threads"},
    {.name = "seed", .type = SPL_CFG_INT, .default_value = "1", .min = 0, .max = INT64_MAX,
     .offset = F(seed), .doc = "seed of the simulated elections"},
    {.name = "hb_interval", .type = SPL_CFG_DURATION, .default_value = "1s", .min = 10,
     .max = 600000, .offset = F(hb_interval_ms), .doc = "heartbeat period"},
    {.name = "print_cluster_file", .type = SPL_CFG_BOOL, .default_value = "off",
     .offset = F(print_cluster_file), .doc = "print the layout as a cluster file and exit"},
    {.name = "from_mds", .type = SPL_CFG_BOOL, .default_value = "off", .offset = F(from_mds),
     .doc = "take servers from the MDS topology (cs_per_server on each)"},
};
static const struct spl_config_table table = {"spline-simcs", keys, sizeof keys / sizeof keys[0],
                                              sizeof(struct simcs_config)};

struct simcs {
    struct simcs_config cfg;
    char host[64];
    uint16_t port;
    struct sim_model model;
    spl_rpc_runtime *rt;
    spl_rpc_server *srv;
    struct spl_mdsc *mdsc;
    struct spl_http_server *http;
    /* heartbeat target (leader following) */
    pthread_mutex_t target_lock;
    char addrs[SPL_MDSC_ADDRS_MAX][128];
    uint32_t addr_count, addr_current;
    char redirect[128];
    bool rotate;
    spl_rpc_channel *ch;
    atomic_uint outstanding;
    atomic_uint_least64_t round_start_ns, round_last_reply_ns;
    atomic_uint_least64_t rounds, hb_ok, hb_err;
    atomic_uint_least64_t last_round_ms;
    atomic_bool stop;
};

static struct simcs g;

/* ---- layout ---- */

static void layout(struct simcs *s)
{
    uint32_t n = (uint32_t)s->cfg.count, per = (uint32_t)s->cfg.cs_per_server;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t server = i / per, zone = server % (uint32_t)s->cfg.zones;
        struct sim_cs *c = &s->model.cs[i];
        c->zone = zone;
        snprintf(c->server, sizeof c->server, "sim-z%u-s%u", zone + 1, server + 1);
        snprintf(c->disk, sizeof c->disk, "/sim/cs%u", i + 1);
    }
}

static void print_cluster_file(struct simcs *s)
{
    uint32_t n = (uint32_t)s->cfg.count, per = (uint32_t)s->cfg.cs_per_server;
    uint32_t servers = (n + per - 1) / per;
    printf("# generated by spline-simcs --print_cluster_file (%u chunkservers)\n", n);
    printf("physical_pools:\n  - name: simpool\n    zones:\n");
    for (uint32_t z = 0; z < (uint32_t)s->cfg.zones; z++) {
        printf("      - name: simzone%u\n        servers:\n", z + 1);
        for (uint32_t sv = z; sv < servers; sv += (uint32_t)s->cfg.zones) {
            printf("          - name: sim-z%u-s%u\n            ip: %s\n"
                   "            chunkservers:\n", z + 1, sv + 1, s->host);
            for (uint32_t i = sv * per; i < (sv + 1) * per && i < n; i++)
                printf("              - port: %u\n                disk: /sim/cs%u\n"
                       "                capacity: 1T\n", s->port, i + 1);
        }
    }
    uint64_t copysets = (uint64_t)n * (uint64_t)s->cfg.copysets_per_cs / 3;
    printf("logical_pools:\n  - name: simlpool\n    physical_pool: simpool\n"
           "    replicas: 3\n    copysets: %" PRIu64 "\n", copysets ? copysets : 1);
}

/* layout_from_mds - cs_per_server chunkservers on every server of the MDS's topology. */
static int layout_from_mds(struct simcs *s)
{
    Spline__ListTopologyRequest req = SPLINE__LIST_TOPOLOGY_REQUEST__INIT;
    Spline__ListTopologyResponse *r = NULL;
    int rc;
    while ((rc = spl_mdsc_call(s->mdsc, &spl_mdsc_topology_service, SPL_TOPO_LIST_TOPOLOGY,
                               &req.base, (ProtobufCMessage **)&r, NULL)) < 0 ||
           r->n_servers == 0) {
        if (r)
            protobuf_c_message_free_unpacked(&r->base, NULL);
        r = NULL;
        if (atomic_load(&g.stop))
            return -ECANCELED;
        LOG_INFO("simcs", "waiting for a topology with servers (%s)", spl_errname(rc));
        sleep(1);
    }
    uint32_t per = (uint32_t)s->cfg.cs_per_server, n = (uint32_t)r->n_servers * per;
    sim_model_destroy(&s->model);
    if ((rc = sim_model_init(&s->model, n, (uint64_t)s->cfg.seed, s->host, s->port)) < 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        const Spline__ServerInfo *sv = r->servers[i / per];
        struct sim_cs *c = &s->model.cs[i];
        c->zone = sv->zone_id;
        snprintf(c->server, sizeof c->server, "%s", sv->name);
        snprintf(c->disk, sizeof c->disk, "/sim/%s/disk%u", sv->name, i % per + 1);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    LOG_INFO("simcs", "layout from the MDS: %u chunkservers", n);
    return 0;
}

/* ---- registration ---- */

static void register_pending(struct simcs *s)
{
    for (uint32_t i = 0; i < s->model.cs_count && !atomic_load(&s->stop); i++) {
        if (sim_model_id(&s->model, i))
            continue;
        Spline__RegisterChunkserverRequest req = SPLINE__REGISTER_CHUNKSERVER_REQUEST__INIT;
        req.server_name = s->model.cs[i].server;
        req.host = s->host;
        req.port = s->port;
        req.disk = s->model.cs[i].disk;
        req.capacity_bytes = 1ull << 40;
        Spline__RegisterChunkserverResponse *r = NULL;
        struct spl_rpc_error_info err;
        int rc = spl_mdsc_call(s->mdsc, &spl_mdsc_topology_service, SPL_TOPO_REGISTER_CS,
                               &req.base, (ProtobufCMessage **)&r, &err);
        if (rc < 0) {
            LOG_WARN("simcs", "register %s: %s (%s)", s->model.cs[i].disk, spl_errname(rc),
                     err.message);
            return; /* try the rest next round */
        }
        sim_model_set_id(&s->model, i, r->chunkserver_id, r->token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
}

/* ---- heartbeats ---- */

struct hb_ctx {
    uint32_t index;
};

static void hb_done(struct spl_rpc_result *r, void *arg)
{
    struct hb_ctx *c = arg;
    if (r->status == 0) {
        sim_model_apply(&g.model, c->index, (const Spline__HeartbeatResponse *)r->resp);
        atomic_fetch_add(&g.hb_ok, 1);
    } else {
        atomic_fetch_add(&g.hb_err, 1);
        pthread_mutex_lock(&g.target_lock);
        if (r->status == SPL_EMDS_NOTLEADER && r->leader_hint[0])
            snprintf(g.redirect, sizeof g.redirect, "%s", r->leader_hint);
        else if (r->status == SPL_ECS_UNKNOWN)
            sim_model_set_id(&g.model, c->index, 0, ""); /* forgotten: register again */
        else if (r->status != SPL_EMDS_BADREPORT)
            g.rotate = true;
        pthread_mutex_unlock(&g.target_lock);
    }
    atomic_store(&g.round_last_reply_ns, spl_mono_ns());
    atomic_fetch_sub(&g.outstanding, 1);
    free(c);
}

/* retarget - follow a redirect or move to the next MDS; reopen the channel. */
static void retarget(struct simcs *s)
{
    pthread_mutex_lock(&s->target_lock);
    bool change = s->ch == NULL || s->redirect[0] || s->rotate;
    if (s->redirect[0]) {
        uint32_t i = 0;
        while (i < s->addr_count && strcmp(s->addrs[i], s->redirect) != 0)
            i++;
        if (i == s->addr_count && s->addr_count < SPL_MDSC_ADDRS_MAX)
            snprintf(s->addrs[s->addr_count++], sizeof s->addrs[0], "%s", s->redirect);
        s->addr_current = i < s->addr_count ? i : s->addr_current;
    } else if (s->rotate && s->ch) {
        s->addr_current = (s->addr_current + 1) % s->addr_count;
    }
    s->redirect[0] = '\0';
    s->rotate = false;
    char addr[128];
    snprintf(addr, sizeof addr, "%s", s->addrs[s->addr_current]);
    pthread_mutex_unlock(&s->target_lock);
    if (!change || (s->ch && strcmp(spl_rpc_channel_address(s->ch), addr) == 0))
        return;
    spl_rpc_channel_close(s->ch);
    s->ch = NULL;
    struct spl_rpc_channel_opts o = {.call_timeout_ms = 5000, .backoff_max_ms = 500,
                                     .pending_max = 0};
    if (spl_rpc_channel_open(s->rt, addr, &o, &s->ch) < 0)
        s->ch = NULL;
    else
        LOG_INFO("simcs", "heartbeats go to %s", addr);
}

static void heartbeat_round(struct simcs *s)
{
    retarget(s);
    if (!s->ch)
        return;
    sim_model_tick(&s->model);
    atomic_store(&s->round_start_ns, spl_mono_ns());
    for (uint32_t i = 0; i < s->model.cs_count; i++) {
        Spline__HeartbeatRequest *req = sim_model_report(&s->model, i);
        if (!req)
            continue;
        struct hb_ctx *c = malloc(sizeof *c);
        c->index = i;
        atomic_fetch_add(&s->outstanding, 1);
        struct spl_rpc_call_opts o = {.timeout_ms = 5000};
        int rc = spl_rpc_call_async(s->ch, &spl_mdsc_heartbeat_service, SPL_HEARTBEAT_METHOD,
                                    &req->base, NULL, &o, NULL, hb_done, c);
        if (rc < 0) { /* not started (e.g. unreachable while reconnecting): move on */
            atomic_fetch_sub(&s->outstanding, 1);
            atomic_fetch_add(&s->hb_err, 1);
            free(c);
            pthread_mutex_lock(&s->target_lock);
            s->rotate = rc != -EAGAIN;
            pthread_mutex_unlock(&s->target_lock);
        }
        sim_model_report_free(req);
    }
    atomic_fetch_add(&s->rounds, 1);
}

static void *hb_main(void *arg)
{
    struct simcs *s = arg;
    while (!atomic_load(&s->stop)) {
        uint64_t start = spl_mono_ns();
        register_pending(s);
        heartbeat_round(s);
        /* wait for this round's replies (bounded by the interval) to measure latency */
        uint64_t until = start + s->cfg.hb_interval_ms * 1000000;
        while (!atomic_load(&s->stop) && spl_mono_ns() < until) {
            if (atomic_load(&s->outstanding) == 0 && atomic_load(&s->last_round_ms) == 0) {
                uint64_t last = atomic_load(&s->round_last_reply_ns);
                uint64_t first = atomic_load(&s->round_start_ns);
                atomic_store(&s->last_round_ms, last > first ? (last - first) / 1000000 + 1 : 1);
            }
            struct timespec ts = {0, 2 * 1000000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&s->outstanding) == 0) {
            uint64_t last = atomic_load(&s->round_last_reply_ns);
            uint64_t first = atomic_load(&s->round_start_ns);
            atomic_store(&s->last_round_ms, last > first ? (last - first) / 1000000 : 0);
        }
    }
    return NULL;
}

/* ---- Copyset service (server side) ---- */

static void h_create(spl_rpc_call *call, void *ctx)
{
    struct simcs *s = ctx;
    const Spline__CreateCopysetsRequest *req =
        (const Spline__CreateCopysetsRequest *)spl_rpc_call_request(call);
    int rc = req->chunkserver_id ? sim_model_create(&s->model, req->chunkserver_id, req)
                                 : SPL_EINVAL_ARG;
    if (rc < 0) {
        spl_rpc_reply_error(call, rc, NULL);
        return;
    }
    Spline__CreateCopysetsResponse resp = SPLINE__CREATE_COPYSETS_RESPONSE__INIT;
    spl_rpc_reply(call, &resp.base, NULL);
}

static void h_status(spl_rpc_call *call, void *ctx)
{
    spl_rpc_reply_error(call, SPL_ERPC_NOMETHOD, "spline-simcs: use the heartbeat reports");
}

static const struct spl_rpc_method copyset_methods[] = {
    {"CreateCopysets", &spline__create_copysets_request__descriptor,
     &spline__create_copysets_response__descriptor, h_create},
    {"GetCopysetStatus", &spline__copyset_status_request__descriptor,
     &spline__copyset_status_response__descriptor, h_status},
};
static const struct spl_rpc_service copyset_service = {SPL_RPC_SERVICE_COPYSET, "copyset",
                                                       copyset_methods, 2};

/* ---- HTTP control ---- */

static int control(struct spl_http_exchange *x, void *arg)
{
    bool alive = strcmp(spl_http_path(x), "/revive") == 0;
    const char *ids = spl_http_query_arg(x, "cs");
    if (!ids) {
        spl_http_set_status(x, 400);
        fprintf(spl_http_body(x), "give ?cs=ID[,ID...]\n");
        return 0;
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", ids);
    int done = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint32_t id = (uint32_t)strtoul(t, NULL, 10);
        if (sim_model_set_alive(&g.model, id, alive) == 0) {
            done++;
            LOG_INFO("simcs", "chunkserver %u %s", id, alive ? "revived" : "killed");
        }
    }
    fprintf(spl_http_body(x), "%d\n", done);
    if (!done)
        spl_http_set_status(x, 404);
    return 0;
}

static int status_cb(struct json_object *o, void *arg)
{
    struct sim_stats st;
    sim_model_stats(&g.model, &st);
#define ADD(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
    ADD("chunkservers", g.model.cs_count);
    ADD("registered", st.registered);
    ADD("alive", st.alive);
    ADD("groups", st.groups);
    ADD("groups_with_leader", st.groups_with_leader);
    ADD("zone_violations", st.zone_violations);
    ADD("replicas", st.replicas);
    ADD("stale_replicas", st.stale_replicas);
    ADD("leaders_min", st.leaders_min);
    ADD("leaders_max", st.leaders_max);
    ADD("orders_applied", st.orders_applied);
    ADD("orders_stale", st.orders_stale);
    ADD("elections", st.elections);
    ADD("replicas_removed", st.replicas_removed);
    ADD("rounds", atomic_load(&g.rounds));
    ADD("heartbeats_ok", atomic_load(&g.hb_ok));
    ADD("heartbeats_failed", atomic_load(&g.hb_err));
    ADD("last_round_ms", atomic_load(&g.last_round_ms));
#undef ADD
    return 0;
}

static int start_http(struct simcs *s)
{
    struct spl_http_options ho = {.port = (uint16_t)s->cfg.http_port, .component = "simcs"};
    int rc = spl_http_server_new(&ho, &s->http);
    if (rc < 0)
        return rc;
    spl_http_server_set_status_cb(s->http, status_cb, s);
    spl_http_server_handle(s->http, "/kill", control, s);
    spl_http_server_handle(s->http, "/revive", control, s);
    if ((rc = spl_http_server_start(s->http)) < 0)
        return rc;
    if (s->cfg.port_file[0]) {
        FILE *f = fopen(s->cfg.port_file, "w");
        if (f) {
            fprintf(f, "%u\n", spl_http_server_port(s->http));
            fclose(f);
        }
    }
    LOG_INFO("simcs", "control on http://127.0.0.1:%u (/kill?cs=ID /revive?cs=ID /status)",
             spl_http_server_port(s->http));
    return 0;
}

static int parse_listen(struct simcs *s)
{
    const char *colon = strrchr(s->cfg.listen, ':');
    if (!colon || colon == s->cfg.listen || (size_t)(colon - s->cfg.listen) >= sizeof s->host)
        return SPL_ECONFIG;
    memcpy(s->host, s->cfg.listen, (size_t)(colon - s->cfg.listen));
    s->host[colon - s->cfg.listen] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535)
        return SPL_ECONFIG;
    s->port = (uint16_t)port;
    return 0;
}

static int start(struct simcs *s)
{
    struct spl_rpc_runtime_opts ro = {.io_threads = (uint32_t)s->cfg.io_threads, .name = "simcs"};
    int rc = spl_rpc_runtime_create(&ro, &s->rt);
    if (rc < 0)
        return rc;
    if ((rc = spl_mdsc_open(s->rt, s->cfg.mds, 3000, 10000, &s->mdsc)) < 0)
        return rc;
    for (const char *p = s->cfg.mds; *p && s->addr_count < SPL_MDSC_ADDRS_MAX;) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof s->addrs[0]) {
            memcpy(s->addrs[s->addr_count], p, n);
            s->addrs[s->addr_count++][n] = '\0';
        }
        p += n + (p[n] == ',');
    }
    if (s->cfg.from_mds && (rc = layout_from_mds(s)) < 0)
        return rc;
    struct spl_rpc_server_opts so = {.host = s->host, .port = s->port};
    if ((rc = spl_rpc_server_create(s->rt, &so, &s->srv)) < 0 ||
        (rc = spl_rpc_server_add_service(s->srv, &copyset_service, s)) < 0 ||
        (rc = spl_rpc_server_start(s->srv)) < 0)
        return rc;
    return start_http(s);
}

int main(int argc, char **argv)
{
    struct spl_config_error err;
    int rc = spl_config_load_args(&table, &g.cfg, argc, argv, NULL, 0, NULL, &err);
    if (rc == 1)
        return 0;
    if (rc < 0 || parse_listen(&g) < 0) {
        char buf[700] = "spline-simcs: bad --listen (host:port, port > 0)";
        if (rc < 0)
            spl_config_format_error(&err, buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
        return 2;
    }
    if (sim_model_init(&g.model, (uint32_t)g.cfg.count, (uint64_t)g.cfg.seed, g.host,
                       g.port) < 0)
        return 1;
    layout(&g);
    if (g.cfg.print_cluster_file) {
        print_cluster_file(&g);
        return 0;
    }
    enum spl_log_level lvl;
    if (spl_log_parse_level(g.cfg.log_level, &lvl) == 0)
        spl_log_set_level(lvl);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&g.target_lock, NULL);
    if ((rc = start(&g)) < 0) {
        LOG_ERROR("simcs", "start-up failed: %s", spl_strerror(rc));
        return 1;
    }
    LOG_INFO("simcs", "%u simulated chunkservers on %s:%u", g.model.cs_count, g.host, g.port);
    pthread_t hb;
    pthread_create(&hb, NULL, hb_main, &g);
    int sig = 0;
    sigwait(&sigs, &sig);
    atomic_store(&g.stop, true);
    pthread_join(hb, NULL);
    spl_http_server_free(g.http);
    spl_rpc_server_destroy(g.srv);
    spl_rpc_channel_close(g.ch);
    spl_mdsc_close(g.mdsc);
    spl_rpc_runtime_destroy(g.rt);
    sim_model_destroy(&g.model);
    return 0;
}
