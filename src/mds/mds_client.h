/*
 * mds_client.h - calling the MDS from the CLI, simulated chunkservers, tests and
 * benchmarks: the client-side service tables of proto/mds.proto, heartbeat.proto and
 * copyset.proto, and a caller that finds the leader among several MDS addresses.
 *
 * Owns one RPC channel per MDS address and the choice of which to call: the last one
 * that answered; a "not leader" answer with a hint moves to the hint (learned as a new
 * address if it is one), an unreachable or silent MDS or one without a known leader moves
 * to the next address, with a short pause after each full turn. Retries are bounded
 * twice: by the call's deadline (each attempt's timeout is cut to what is left of it) and
 * by a number of attempts (SPL_MDSC_ATTEMPTS_MAX unless set), so a loop of stale
 * redirects ends too.
 * Leaves to callers: deciding whether a failed non-idempotent call is safe to repeat.
 *
 * Threads: a client may be used from any thread except the runtime's IO threads
 * (calls are synchronous); calls on one client are serialized by its mutex only while
 * choosing the address, so several threads may call at once.
 */
#ifndef SPL_MDS_MDS_CLIENT_H
#define SPL_MDS_MDS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc/rpc.h"

#define SPL_MDSC_ADDRS_MAX 16
#define SPL_MDSC_ATTEMPTS_MAX 256 /* attempts in one spl_mdsc_call (the deadline comes first
                                  * normally: 100 ms pause after each full turn) */

/* Method indexes (the position in the service tables; proto/mds.proto). */
enum spl_mds_method {
    SPL_MDS_CREATE_VOLUME = 0,
    SPL_MDS_OPEN_VOLUME = 1,
    SPL_MDS_STAT_VOLUME = 2,
    SPL_MDS_LIST_VOLUMES = 3,
    SPL_MDS_EXTEND_VOLUME = 4,
    SPL_MDS_RENAME_VOLUME = 5,
    SPL_MDS_DELETE_VOLUME = 6,
    SPL_MDS_LIST_RECYCLE = 7,
    SPL_MDS_RESTORE_VOLUME = 8,
    SPL_MDS_GET_OR_ALLOC_SEGMENT = 9,
    SPL_MDS_GET_COPYSETS = 10,
    SPL_MDS_CLUSTER_STATUS = 11,
    SPL_MDS_CLOSE_VOLUME = 12,
};
enum spl_topo_method {
    SPL_TOPO_CLUSTER_INIT = 0,
    SPL_TOPO_REGISTER_CS = 1,
    SPL_TOPO_LIST_TOPOLOGY = 2,
    SPL_TOPO_LIST_CHUNKSERVERS = 3,
};
#define SPL_HEARTBEAT_METHOD 0u
#define SPL_COPYSET_CREATE 0u
#define SPL_COPYSET_STATUS 1u

extern const struct spl_rpc_service spl_mdsc_mds_service;
extern const struct spl_rpc_service spl_mdsc_topology_service;
extern const struct spl_rpc_service spl_mdsc_heartbeat_service;
extern const struct spl_rpc_service spl_copyset_client_service;

struct spl_mdsc;

/* spl_mdsc_open - a client for "host:port,host:port,..." on runtime rt. call_timeout_ms
 * bounds one attempt, deadline_ms a whole spl_mdsc_call (0: 5000 / 15000).
 * -EINVAL for an empty or malformed list, -ENOMEM. */
int spl_mdsc_open(spl_rpc_runtime *rt, const char *addrs, uint32_t call_timeout_ms,
                  uint32_t deadline_ms, struct spl_mdsc **out);
void spl_mdsc_close(struct spl_mdsc *c);

/* spl_mdsc_call - call the leader. Returns 0 with *resp (free with
 * protobuf_c_message_free_unpacked(*resp, NULL)), or the last error with err (may be
 * NULL) filled. Errors that name a bad request (anything but leadership, reachability
 * and SPL_EETCD_UNAVAILABLE) are returned at once; the others are retried (following
 * hints) until the deadline or the attempt limit, and the last one is returned:
 * SPL_ERPC_UNREACHABLE / SPL_ERPC_TIMEDOUT / SPL_ERPC_CONNCLOSED when no MDS answered,
 * SPL_EMDS_NOTLEADER / SPL_EMDS_NOLEADER / SPL_EMDS_NOTREADY / SPL_EETCD_UNAVAILABLE when
 * MDS answered but none served. */
int spl_mdsc_call(struct spl_mdsc *c, const struct spl_rpc_service *svc, uint32_t method,
                  const ProtobufCMessage *req, ProtobufCMessage **resp,
                  struct spl_rpc_error_info *err);

/* spl_mdsc_set_limits - change the bounds of later calls: call_timeout_ms per attempt,
 * deadline_ms per call (0: keep), attempts_max per call (0: SPL_MDSC_ATTEMPTS_MAX).
 * Not while calls are running. */
void spl_mdsc_set_limits(struct spl_mdsc *c, uint32_t call_timeout_ms, uint32_t deadline_ms,
                         uint32_t attempts_max);

/* spl_mdsc_set_follow - false: return the first answer, redirects included (tools that
 * want to see what one MDS says). Default true. */
void spl_mdsc_set_follow(struct spl_mdsc *c, bool follow);

/* spl_mdsc_leader - the address the last successful call went to ("" before). */
const char *spl_mdsc_leader(struct spl_mdsc *c);

#endif
