/*
 * mdsd_config.c - spline-mds's configuration table (base/config.h): flags, config file,
 * --help and conf/mds.example.conf all come from it.
 */
#include <stddef.h>

#include "base/config.h"
#include "mds/mdsd.h"

#define F(x) offsetof(struct spl_mdsd_config, x)
#define S(x) sizeof(((struct spl_mdsd_config *)0)->x)
#define DUR(n, def, lo, hi, field, d)                                                    \
    {.name = n, .type = SPL_CFG_DURATION, .default_value = def, .min = lo, .max = hi,     \
     .offset = F(field), .doc = d}
#define STR(n, def, field, d)                                                            \
    {.name = n, .type = SPL_CFG_STRING, .default_value = def, .offset = F(field),         \
     .str_cap = S(field), .doc = d}
#define INT(n, def, lo, hi, field, d)                                                    \
    {.name = n, .type = SPL_CFG_INT, .default_value = def, .min = lo, .max = hi,          \
     .offset = F(field), .doc = d}
#define BOOL(n, def, field, d)                                                           \
    {.name = n, .type = SPL_CFG_BOOL, .default_value = def, .offset = F(field), .doc = d}

static const struct spl_config_key keys[] = {
    STR("listen", "127.0.0.1:6700", listen, "RPC address to bind (host:port; port 0: any)"),
    STR("advertise", "\"\"", advertise,
        "address clients and other MDS reach this one at (empty: the bound listen address)"),
    STR("etcd", "http://127.0.0.1:2379", etcd, "etcd endpoints, comma-separated"),
    STR("name", "mds", name, "this MDS's name (logs, /status)"),
    STR("election", "/spline/mds/election", election, "etcd election name"),
    STR("port_file", "\"\"", port_file, "write the bound RPC port to this file (empty: no)"),
    STR("log_file", "\"\"", log_file, "log to this file as well as stderr (empty: stderr)"),
    STR("log_level", "info", log_level, "debug | info | warn | error"),
    INT("http_port", "0", -1, 65535, http_port,
        "HTTP port for /metrics /status /healthz (0: any free port, -1: none)"),
    INT("io_threads", "2", 1, 16, io_threads, "RPC IO threads"),
    INT("workers", "8", 1, SPL_MDSD_WORKERS_MAX, workers, "request worker threads"),
    DUR("lease_ttl", "4s", 2000, 60000, lease_ttl_ms,
        "election lease TTL: a dead leader is replaced after about this long"),
    DUR("fence_margin", "1s", 200, 30000, fence_margin_ms,
        "stop serving this long before the lease could expire (must be < lease_ttl)"),
    DUR("etcd_timeout", "3s", 100, 60000, etcd_timeout_ms, "per-request etcd timeout"),
    DUR("heartbeat_interval", "1s", 50, 60000, hb_interval_ms,
        "heartbeat period chunkservers are expected to use"),
    DUR("unstable_timeout", "3s", 100, 600000, hb_unstable_ms,
        "a chunkserver silent this long is unstable"),
    DUR("offline_timeout", "10s", 200, 3600000, hb_offline_ms,
        "a chunkserver silent this long is offline (its copysets get recovered)"),
    DUR("remove_grace", "30s", 0, 3600000, remove_grace_ms,
        "after taking leadership, wait this long before telling non-members to drop replicas"),
    DUR("sched_period", "500ms", 20, 60000, sched_period_ms, "scheduler round period"),
    DUR("recover_period", "1s", 20, 600000, recover_period_ms, "recover scheduler period"),
    DUR("copyset_balance_period", "10s", 20, 3600000, copyset_balance_period_ms,
        "copyset balance scheduler period"),
    DUR("leader_balance_period", "2s", 20, 3600000, leader_balance_period_ms,
        "leader balance scheduler period"),
    DUR("operator_timeout", "60s", 100, 3600000, op_timeout_ms,
        "an operator not finished by then fails (and may be retried)"),
    INT("operators_per_chunkserver", "4", 1, 1000, ops_per_cs_max,
        "operators touching one chunkserver at a time"),
    INT("operators_max", "1000", 1, SPL_MDSD_OPS_MAX, ops_max, "operators in flight"),
    DUR("place_settle", "3s", 0, 3600000, place_settle_ms,
        "place pending logical pools once no chunkserver registered for this long"),
    DUR("recycle_purge_age", "168h", 0, 315360000000, recycle_purge_age_ms,
        "purge recycle-bin volumes older than this"),
    BOOL("scheduler", "on", scheduler_enabled, "run the scheduler (recover, balance)"),
    BOOL("copyset_balance", "on", copyset_balance, "balance copysets across chunkservers"),
    BOOL("leader_balance", "on", leader_balance, "balance copyset leaders"),
    INT("seed", "0", 0, INT64_MAX, seed, "placement seed (0: from the OS)"),
};

const struct spl_config_table spl_mdsd_config_table = {
    .program = "spline-mds",
    .keys = keys,
    .key_count = sizeof keys / sizeof keys[0],
    .struct_size = sizeof(struct spl_mdsd_config),
};
