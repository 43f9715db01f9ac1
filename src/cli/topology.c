/*
 * topology.c - `spline topology list` and `spline chunkserver list`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mds.pb-c.h"

static const char *online_name(Spline__ChunkserverOnline o)
{
    switch (o) {
    case SPLINE__CHUNKSERVER_ONLINE__CS_ONLINE: return "online";
    case SPLINE__CHUNKSERVER_ONLINE__CS_UNSTABLE: return "unstable";
    case SPLINE__CHUNKSERVER_ONLINE__CS_OFFLINE: return "offline";
    default: return "unknown";
    }
}

static void print_chunkservers(Spline__ChunkserverInfo **cs, size_t n)
{
    printf("%-6s %-6s %-6s %-22s %-24s %-9s %8s %8s\n", "ID", "SERVER", "ZONE", "ADDRESS",
           "DISK", "STATE", "COPYSETS", "LEADERS");
    for (size_t i = 0; i < n; i++) {
        char addr[96];
        snprintf(addr, sizeof addr, "%s:%u", cs[i]->host, cs[i]->port);
        printf("%-6u %-6u %-6u %-22s %-24s %-9s %8u %8u\n", cs[i]->id, cs[i]->server_id,
               cs[i]->zone_id, addr, cs[i]->disk,
               cs[i]->retired ? "retired" : online_name(cs[i]->online), cs[i]->copyset_count,
               cs[i]->leader_count);
    }
}

int cli_topology(struct cli *c, int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        return cli_usage_error("usage: spline topology list\n", "topology: expected 'list'");
    Spline__ListTopologyRequest req = SPLINE__LIST_TOPOLOGY_REQUEST__INIT;
    Spline__ListTopologyResponse *r = NULL;
    int rc = cli_call(c, "topology list", &spl_mdsc_topology_service, SPL_TOPO_LIST_TOPOLOGY,
                      &req.base, (ProtobufCMessage **)&r);
    if (rc)
        return rc;
    for (size_t p = 0; p < r->n_pools; p++) {
        printf("pool %s (id %u)\n", r->pools[p]->name, r->pools[p]->id);
        for (size_t z = 0; z < r->n_zones; z++) {
            if (r->zones[z]->pool_id != r->pools[p]->id)
                continue;
            printf("  zone %s (id %u)\n", r->zones[z]->name, r->zones[z]->id);
            for (size_t s = 0; s < r->n_servers; s++) {
                if (r->servers[s]->zone_id != r->zones[z]->id)
                    continue;
                printf("    server %s (id %u) %s\n", r->servers[s]->name, r->servers[s]->id,
                       r->servers[s]->ip);
                for (size_t k = 0; k < r->n_chunkservers; k++) {
                    const Spline__ChunkserverInfo *cs = r->chunkservers[k];
                    if (cs->server_id == r->servers[s]->id)
                        printf("      chunkserver %u %s:%u %s %s copysets=%u leaders=%u\n",
                               cs->id, cs->host, cs->port, cs->disk,
                               cs->retired ? "retired" : online_name(cs->online),
                               cs->copyset_count, cs->leader_count);
                }
            }
        }
    }
    for (size_t l = 0; l < r->n_logical_pools; l++) {
        const Spline__LogicalPoolInfo *lp = r->logical_pools[l];
        printf("logical pool %s (id %u) on pool %u: %u replicas, %u copysets, %s\n", lp->name,
               lp->id, lp->pool_id, lp->replicas, lp->copyset_count, lp->state);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}

int cli_chunkserver(struct cli *c, int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "list") != 0)
        return cli_usage_error("usage: spline chunkserver list\n", "chunkserver: expected 'list'");
    Spline__ListTopologyRequest req = SPLINE__LIST_TOPOLOGY_REQUEST__INIT;
    Spline__ListChunkserversResponse *r = NULL;
    int rc = cli_call(c, "chunkserver list", &spl_mdsc_topology_service,
                      SPL_TOPO_LIST_CHUNKSERVERS, &req.base, (ProtobufCMessage **)&r);
    if (rc)
        return rc;
    print_chunkservers(r->chunkservers, r->n_chunkservers);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}
