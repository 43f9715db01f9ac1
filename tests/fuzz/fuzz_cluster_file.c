/* fuzz_cluster_file.c - arbitrary bytes as a cluster description (spl_cluster_parse).
 *
 * Oracles beyond "no crash, no sanitizer report, no leak": a refused file says why; an
 * accepted one satisfies every rule the parser promises (valid unique names, ports and
 * replica counts in range, non-empty ips and disks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/limits.h"
#include "mds/cluster_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct spl_cluster_desc *d)
{
    for (size_t i = 0; i < d->pool_count; i++) {
        const struct spl_cluster_pool *p = &d->pools[i];
        if (!spl_cluster_name_valid(p->name))
            abort();
        for (size_t z = 0; z < p->zone_count; z++) {
            const struct spl_cluster_zone *zone = &p->zones[z];
            if (!spl_cluster_name_valid(zone->name))
                abort();
            for (size_t s = 0; s < zone->server_count; s++) {
                const struct spl_cluster_server *srv = &zone->servers[s];
                if (!spl_cluster_name_valid(srv->name) || !srv->ip[0])
                    abort();
                for (size_t c = 0; c < srv->chunkserver_count; c++)
                    if (srv->chunkservers[c].port == 0 || !srv->chunkservers[c].disk[0])
                        abort();
            }
        }
    }
    for (size_t i = 0; i < d->lpool_count; i++) {
        const struct spl_cluster_lpool *l = &d->lpools[i];
        if (!spl_cluster_name_valid(l->name) || !spl_cluster_name_valid(l->pool) ||
            l->replicas < 1 || l->replicas > SPL_REPLICAS_MAX || l->copysets < 1)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->name, d->lpools[j].name) == 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spl_cluster_desc d;
    char why[256] = "";
    int rc = spl_cluster_parse((const char *)data, size, &d, why, sizeof why);
    if (rc == 0)
        check_accepted(&d);
    else if (rc == SPL_ETOPO_INVALID && why[0] == '\0')
        abort();
    spl_cluster_desc_free(&d);
    return 0;
}
