/*
 * raftd_cluster.h - start, kill, restart and wipe spline-raftd processes on 127.0.0.1
 * free ports, and talk to them (Kv, Admin), for the Raft integration tests and the Raft
 * benchmark.
 *
 * Every process started is killed when the cluster is destroyed, at exit, and (through
 * PR_SET_PDEATHSIG) when the test process dies; the cluster's temporary directory is
 * removed by rc_cluster_destroy. Calls go through one RPC runtime owned by the cluster.
 * Threads: one test thread drives a cluster; rc_put_async may complete on IO threads.
 */
#ifndef SPL_TEST_RAFTD_CLUSTER_H
#define SPL_TEST_RAFTD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "raft.pb-c.h"
#include "rpc/rpc.h"

#define RC_NODES_MAX 5
#define RC_ARGS_MAX 24

struct rc_node {
    uint64_t id;
    uint16_t port;
    pid_t pid;          /* 0: not running */
    char dir[512];      /* its data_dir */
    char addr[64];
    spl_rpc_channel *ch;
    const char *extra[RC_ARGS_MAX]; /* per-node extra flags (NULL-terminated) */
};

struct rc_cluster {
    char raftd[512];
    char root[256];
    int n;
    uint32_t groups;
    uint32_t election_ms, tick_ms;
    const char *extra[RC_ARGS_MAX]; /* extra flags for every node */
    char peers[1024];
    spl_rpc_runtime *rt;
    struct rc_node nodes[RC_NODES_MAX];
};

/* rc_cluster_init - n nodes (ids 1..n) on free ports under a new temporary directory;
 * nothing started yet. 0 or -errno. */
int rc_cluster_init(struct rc_cluster *c, const char *raftd, int n, uint32_t groups,
                    uint32_t election_ms, uint32_t tick_ms);
/* Kill every process, close channels, remove the directory. */
void rc_cluster_destroy(struct rc_cluster *c);

/* rc_node_start - start node i (0-based) and wait until it serves (port file). join:
 * --join. 0; -ETIMEDOUT; -errno. */
int rc_node_start(struct rc_cluster *c, int i, bool join);
/* rc_node_kill - send sig (SIGKILL, SIGTERM) and reap it (SIGKILL after 10 s). */
void rc_node_kill(struct rc_cluster *c, int i, int sig);
/* rc_node_wipe - delete node i's data directory (node must be stopped). */
void rc_node_wipe(struct rc_cluster *c, int i);
int rc_start_all(struct rc_cluster *c);

/* Admin to node i; *resp freed by the caller (protobuf_c_message_free_unpacked). */
int rc_admin(struct rc_cluster *c, int i, const Spline__RaftAdminRequest *req,
             Spline__RaftAdminResponse **resp);
/* Status of group on node i. */
int rc_status(struct rc_cluster *c, int i, uint64_t group, bool digest,
              Spline__RaftGroupStatus *out);
/* rc_leader - wait until the live nodes agree on a leader of group in the same term; its
 * index (0-based) or -ETIMEDOUT. */
int rc_leader(struct rc_cluster *c, uint64_t group, uint32_t timeout_ms);
/* rc_node_index - the 0-based index of node id, or -1. */
int rc_node_index(const struct rc_cluster *c, uint64_t id);

/* rc_put / rc_get / rc_del - through the leader (following redirects and retrying until
 * timeout_ms). 0 or the last error. */
int rc_put(struct rc_cluster *c, uint64_t group, const char *key, const void *value,
           size_t len, uint32_t timeout_ms, uint64_t *index_out);
int rc_get(struct rc_cluster *c, uint64_t group, const char *key, void *buf, size_t cap,
           size_t *len_out, bool *found_out, uint32_t timeout_ms);

/* rc_wait_applied - wait until every live node applied >= index in group. */
int rc_wait_applied(struct rc_cluster *c, uint64_t group, uint64_t index, uint32_t timeout_ms);

/* The raftd client service table (Kv = method 0, Admin = method 1) and node i's channel,
 * for callers that issue their own (async) calls. */
extern const struct spl_rpc_service rc_service;
spl_rpc_channel *rc_channel(struct rc_cluster *c, int i);

/* Monotonic milliseconds. */
uint64_t rc_now_ms(void);

#endif
