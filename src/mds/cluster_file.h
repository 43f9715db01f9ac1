/*
 * cluster_file.h - the cluster description file of `spline cluster init` (YAML).
 *
 * Owns parsing and validating the file into plain structs; the format is defined in
 * docs/cluster-file.md (example: conf/cluster.example.yaml). Applying it to etcd is
 * topology.h's job. Checks: known keys only, required keys present, names 1..63 bytes of
 * [A-Za-z0-9_.-] and unique per kind, ips non-empty, ports 1..65535, replicas
 * 1..SPL_REPLICAS_MAX, copysets >= 1, each (ip, port, disk) declared once. Whether a
 * logical pool's physical pool exists (in the file or in etcd) is checked by topology.c.
 * Pure (no globals): any thread may call it.
 */
#ifndef SPL_MDS_CLUSTER_FILE_H
#define SPL_MDS_CLUSTER_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"

#define SPL_CLUSTER_NAME_MAX 64

struct spl_cluster_cs {
    uint16_t port;
    char disk[256];
    uint64_t capacity_bytes; /* 0: unknown until the chunkserver registers */
};

struct spl_cluster_server {
    char name[SPL_CLUSTER_NAME_MAX];
    char ip[64];
    struct spl_cluster_cs *chunkservers;
    size_t chunkserver_count;
};

struct spl_cluster_zone {
    char name[SPL_CLUSTER_NAME_MAX];
    struct spl_cluster_server *servers;
    size_t server_count;
};

struct spl_cluster_pool {
    char name[SPL_CLUSTER_NAME_MAX];
    struct spl_cluster_zone *zones;
    size_t zone_count;
};

struct spl_cluster_lpool {
    char name[SPL_CLUSTER_NAME_MAX];
    char pool[SPL_CLUSTER_NAME_MAX];
    uint32_t replicas; /* default 3 */
    uint32_t copysets;
};

struct spl_cluster_desc {
    struct spl_cluster_pool *pools;
    size_t pool_count;
    struct spl_cluster_lpool *lpools;
    size_t lpool_count;
};

/* spl_cluster_parse - parse text[0..len) into *out (freed by spl_cluster_desc_free, also
 * after a failure). 0, or SPL_ETOPO_INVALID with why ("line 7: zone needs a name"). */
int spl_cluster_parse(const char *text, size_t len, struct spl_cluster_desc *out, char *why,
                      size_t why_len);

/* spl_cluster_parse_file - the same for a file: -errno when unreadable, SPL_ETOOBIG past
 * SPL_CLUSTER_FILE_MAX. */
int spl_cluster_parse_file(const char *path, struct spl_cluster_desc *out, char *why,
                           size_t why_len);

void spl_cluster_desc_free(struct spl_cluster_desc *d);

/* spl_cluster_name_valid - 1..SPL_CLUSTER_NAME_MAX-1 bytes of [A-Za-z0-9_.-], starting
 * with a letter or digit. */
bool spl_cluster_name_valid(const char *name);

#endif
