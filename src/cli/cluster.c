/*
 * cluster.c - `spline cluster init FILE` and `spline cluster status`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/errors.h"
#include "cli/cli.h"
#include "mds.pb-c.h"

#define CLUSTER_FILE_MAX (4u << 20)

static const char usage[] = "usage: spline cluster init FILE\n"
                            "       spline cluster status [--details]\n";

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(CLUSTER_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CLUSTER_FILE_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (err || n > CLUSTER_FILE_MAX) {
        free(buf);
        return err ? -EIO : -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int cluster_init(struct cli *c, const char *path)
{
    char *text = NULL;
    int rc = read_file(path, &text);
    if (rc < 0) {
        fprintf(stderr, "spline: cannot read %s: %s\n", path, spl_strerror(rc));
        return CLI_EFAIL;
    }
    Spline__ClusterInitRequest req = SPLINE__CLUSTER_INIT_REQUEST__INIT;
    req.cluster_file = text;
    Spline__ClusterInitResponse *r = NULL;
    /* placing a big cluster may take a while: one attempt may use the whole --timeout */
    spl_mdsc_set_limits(c->mdsc, c->timeout_ms, 0, 0);
    rc = cli_call(c, "cluster init", &spl_mdsc_topology_service, SPL_TOPO_CLUSTER_INIT,
                  &req.base, (ProtobufCMessage **)&r);
    free(text);
    if (rc)
        return rc;
    printf("cluster init: created %u pools, %u zones, %u servers, %u chunkservers, "
           "%u logical pools\n",
           r->pools_created, r->zones_created, r->servers_created, r->chunkservers_created,
           r->logical_pools_created);
    printf("logical pools placed: %u, waiting for chunkservers: %u\n", r->logical_pools_placed,
           r->logical_pools_pending);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}

static const char *health_name(Spline__ClusterHealth h)
{
    return h == SPLINE__CLUSTER_HEALTH__HEALTH_OK     ? "HEALTH_OK"
           : h == SPLINE__CLUSTER_HEALTH__HEALTH_WARN ? "HEALTH_WARN"
                                                      : "HEALTH_ERR";
}

static void print_status_json(const Spline__ClusterStatusResponse *r)
{
    printf("{\"health\":\"%s\",\"leader\":\"%s\",\"chunkservers_total\":%u,"
           "\"chunkservers_online\":%u,\"chunkservers_unstable\":%u,"
           "\"chunkservers_offline\":%u,\"copysets_total\":%u,\"copysets_healthy\":%u,"
           "\"copysets_degraded\":%u,\"copysets_unavailable\":%u,\"operators_recover\":%u,"
           "\"operators_replica_count\":%u,\"operators_copyset_balance\":%u,"
           "\"operators_leader_balance\":%u,\"operators_finished\":%llu,"
           "\"operators_failed\":%llu,\"leaders_min\":%u,\"leaders_max\":%u,"
           "\"copysets_per_cs_min\":%u,\"copysets_per_cs_max\":%u,"
           "\"logical_pools\":%u,\"logical_pools_pending\":%u,\"recovery\":[",
           health_name(r->health), r->leader, r->chunkservers_total, r->chunkservers_online,
           r->chunkservers_unstable, r->chunkservers_offline, r->copysets_total,
           r->copysets_healthy, r->copysets_degraded, r->copysets_unavailable,
           r->operators ? r->operators->recover : 0,
           r->operators ? r->operators->replica_count : 0,
           r->operators ? r->operators->copyset_balance : 0,
           r->operators ? r->operators->leader_balance : 0,
           (unsigned long long)r->operators_finished, (unsigned long long)r->operators_failed,
           r->leaders_min, r->leaders_max, r->copysets_per_cs_min, r->copysets_per_cs_max,
           r->logical_pools, r->logical_pools_pending);
    for (size_t i = 0; i < r->n_recovery; i++)
        printf("%s{\"chunkserver\":%u,\"copysets_at_offline\":%u,\"copysets_left\":%u}",
               i ? "," : "", r->recovery[i]->chunkserver_id, r->recovery[i]->copysets_at_offline,
               r->recovery[i]->copysets_left);
    printf("]}\n");
}

static int cluster_status(struct cli *c, bool details)
{
    Spline__ClusterStatusRequest req = SPLINE__CLUSTER_STATUS_REQUEST__INIT;
    req.details = details;
    Spline__ClusterStatusResponse *r = NULL;
    int rc = cli_call(c, "cluster status", &spl_mdsc_mds_service, SPL_MDS_CLUSTER_STATUS,
                      &req.base, (ProtobufCMessage **)&r);
    if (rc)
        return rc;
    if (c->json) {
        print_status_json(r);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return CLI_OK;
    }
    const Spline__OperatorCounts *o = r->operators;
    printf("health:        %s\n", health_name(r->health));
    printf("mds leader:    %s\n", r->leader);
    printf("chunkservers:  %u total, %u online, %u unstable, %u offline\n",
           r->chunkservers_total, r->chunkservers_online, r->chunkservers_unstable,
           r->chunkservers_offline);
    printf("copysets:      %u total, %u healthy, %u degraded, %u unavailable\n",
           r->copysets_total, r->copysets_healthy, r->copysets_degraded,
           r->copysets_unavailable);
    printf("logical pools: %u (%u waiting for placement)\n", r->logical_pools,
           r->logical_pools_pending);
    printf("operators:     %u recover, %u replica count, %u copyset balance, %u leader "
           "balance (%llu finished, %llu failed)\n",
           o ? o->recover : 0, o ? o->replica_count : 0, o ? o->copyset_balance : 0,
           o ? o->leader_balance : 0, (unsigned long long)r->operators_finished,
           (unsigned long long)r->operators_failed);
    printf("balance:       leaders per chunkserver %u..%u, copysets per chunkserver %u..%u\n",
           r->leaders_min, r->leaders_max, r->copysets_per_cs_min, r->copysets_per_cs_max);
    for (size_t i = 0; i < r->n_recovery; i++) {
        const Spline__RecoveryProgress *p = r->recovery[i];
        uint32_t done = p->copysets_at_offline - (p->copysets_left < p->copysets_at_offline
                                                      ? p->copysets_left
                                                      : p->copysets_at_offline);
        printf("recovery:      chunkserver %u offline: %u/%u copysets moved (%u%%)\n",
               p->chunkserver_id, done, p->copysets_at_offline,
               p->copysets_at_offline ? done * 100 / p->copysets_at_offline : 100);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}

int cli_cluster(struct cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_usage_error(usage, "cluster: missing subcommand");
    if (strcmp(argv[0], "init") == 0) {
        if (argc != 2)
            return cli_usage_error(usage, "cluster init: give exactly one FILE");
        return cluster_init(c, argv[1]);
    }
    if (strcmp(argv[0], "status") == 0) {
        bool details = false;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--details") == 0)
                details = true;
            else
                return cli_usage_error(usage, "cluster status: unknown argument '%s'", argv[i]);
        }
        return cluster_status(c, details);
    }
    return cli_usage_error(usage, "cluster: unknown subcommand '%s'", argv[0]);
}
