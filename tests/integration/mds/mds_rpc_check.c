/*
 * mds_rpc_check.c - sends malformed or impossible requests to a running MDS (a cluster
 * with a ready logical pool) and checks each is refused with its own stable code.
 * Usage: mds_rpc_check MDS_ADDRS. Prints one line per case; exit 0 when all match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "heartbeat.pb-c.h"
#include "mds.pb-c.h"
#include "mds/mds_client.h"

static struct spl_mdsc *mdsc;
static int failures, cases;

static int call(const struct spl_rpc_service *svc, uint32_t m, const ProtobufCMessage *req,
                ProtobufCMessage **resp)
{
    ProtobufCMessage *r = NULL;
    int rc = spl_mdsc_call(mdsc, svc, m, req, &r, NULL);
    if (resp)
        *resp = r;
    else if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    return rc;
}

static void expect(const char *what, int got, int want)
{
    cases++;
    bool ok = got == want;
    failures += !ok;
    printf("%s %-48s %s%s%s\n", ok ? "ok  " : "FAIL", what, spl_errname(got),
           ok ? "" : " want ", ok ? "" : spl_errname(want));
}

static int reg(const char *server, const char *host, uint32_t port, const char *disk)
{
    Spline__RegisterChunkserverRequest r = SPLINE__REGISTER_CHUNKSERVER_REQUEST__INIT;
    r.server_name = (char *)server;
    r.host = (char *)host;
    r.port = port;
    r.disk = (char *)disk;
    return call(&spl_mdsc_topology_service, SPL_TOPO_REGISTER_CS, &r.base, NULL);
}

static int hb(uint32_t id, const char *host, uint32_t port, uint32_t lpool, uint32_t cset)
{
    Spline__HeartbeatRequest r = SPLINE__HEARTBEAT_REQUEST__INIT;
    Spline__CopysetReport rep = SPLINE__COPYSET_REPORT__INIT, *reps[1] = {&rep};
    Spline__CopysetId cid = SPLINE__COPYSET_ID__INIT;
    r.chunkserver_id = id;
    r.host = (char *)host;
    r.port = port;
    if (lpool || cset) {
        cid.logical_pool_id = lpool;
        cid.copyset_id = cset;
        rep.id = &cid;
        r.copysets = reps;
        r.n_copysets = 1;
    }
    return call(&spl_mdsc_heartbeat_service, SPL_HEARTBEAT_METHOD, &r.base, NULL);
}

static int create(const char *name, uint64_t size, const char *owner, const char *pool)
{
    Spline__CreateVolumeRequest r = SPLINE__CREATE_VOLUME_REQUEST__INIT;
    r.name = (char *)name;
    r.size_bytes = size;
    r.owner = (char *)owner;
    r.logical_pool = (char *)pool;
    return call(&spl_mdsc_mds_service, SPL_MDS_CREATE_VOLUME, &r.base, NULL);
}

static int segment(const char *vol, uint64_t vol_id, uint64_t off, bool alloc)
{
    Spline__SegmentRequest r = SPLINE__SEGMENT_REQUEST__INIT;
    r.volume = (char *)vol;
    r.volume_id = vol_id;
    r.offset = off;
    r.allocate = alloc;
    return call(&spl_mdsc_mds_service, SPL_MDS_GET_OR_ALLOC_SEGMENT, &r.base, NULL);
}

static int copysets(uint32_t lpool, uint32_t id, uint32_t cs)
{
    Spline__GetCopysetsRequest r = SPLINE__GET_COPYSETS_REQUEST__INIT;
    Spline__CopysetId cid = SPLINE__COPYSET_ID__INIT, *ids[1] = {&cid};
    if (lpool || id) {
        cid.logical_pool_id = lpool;
        cid.copyset_id = id;
        r.ids = ids;
        r.n_ids = 1;
    }
    r.chunkserver_id = cs;
    return call(&spl_mdsc_mds_service, SPL_MDS_GET_COPYSETS, &r.base, NULL);
}

static void topology_cases(void)
{
    expect("register: empty host", reg("", "", 9000, "/d"), SPL_EMDS_BADHOST);
    expect("register: port 0", reg("", "127.0.0.1", 0, "/d"), SPL_EMDS_BADPORT);
    expect("register: port 70000", reg("", "127.0.0.1", 70000, "/d"), SPL_EMDS_BADPORT);
    expect("register: empty disk", reg("", "127.0.0.1", 9000, ""), SPL_EMDS_BADDISK);
    expect("register: bad server name", reg("bad name!", "127.0.0.1", 9000, "/d"),
           SPL_ETOPO_INVALID);
    expect("register: unknown server", reg("no-such-server", "127.0.0.1", 9000, "/d"),
           SPL_ETOPO_NOTFOUND);
    Spline__ClusterInitRequest ci = SPLINE__CLUSTER_INIT_REQUEST__INIT;
    ci.cluster_file = "";
    expect("cluster init: empty file",
           call(&spl_mdsc_topology_service, SPL_TOPO_CLUSTER_INIT, &ci.base, NULL),
           SPL_EMDS_EMPTYFILE);
    ci.cluster_file = "physical_pools: [ {name: x, zones: 7} ]\nbogus: 1\n";
    expect("cluster init: invalid file",
           call(&spl_mdsc_topology_service, SPL_TOPO_CLUSTER_INIT, &ci.base, NULL),
           SPL_ETOPO_INVALID);
}

static void heartbeat_cases(void)
{
    expect("heartbeat: chunkserver 0", hb(0, "127.0.0.1", 9000, 0, 0), SPL_ECS_UNKNOWN);
    expect("heartbeat: unknown chunkserver", hb(999999, "127.0.0.1", 9000, 0, 0),
           SPL_ECS_UNKNOWN);
    expect("heartbeat: empty host", hb(1, "", 9000, 0, 0), SPL_EMDS_BADHOST);
    expect("heartbeat: port 0", hb(1, "127.0.0.1", 0, 0, 0), SPL_EMDS_BADPORT);
    expect("heartbeat: copyset id 0", hb(1, "127.0.0.1", 9000, 1, 0), SPL_EMDS_BADREPORT);
    expect("get copysets: no ids, no chunkserver", copysets(0, 0, 0), SPL_EMDS_NOARG);
    expect("get copysets: copyset 0", copysets(1, 0, 0), SPL_EMDS_BADCOPYSET);
    expect("get copysets: unknown copyset", copysets(1, 999999, 0), SPL_ECOPYSET_NOTFOUND);
    expect("get copysets: unknown chunkserver", copysets(0, 0, 999999), SPL_ECS_UNKNOWN);
}

static void volume_cases(void)
{
    const uint64_t G = 1ull << 30;
    expect("create: no name", create("", G, "", ""), SPL_EMDS_NOARG);
    expect("create: bad name", create("bad/name", G, "", ""), SPL_EVOL_BADNAME);
    expect("create: size 0", create("rpccheck", 0, "", ""), SPL_EVOL_BADSIZE);
    expect("create: size not a segment multiple", create("rpccheck", G + 4096, "", ""),
           SPL_EVOL_BADSIZE);
    expect("create: bad owner", create("rpccheck", G, "a/b", ""), SPL_EVOL_BADOWNER);
    expect("create: unknown logical pool", create("rpccheck", G, "", "no-such-pool"),
           SPL_ETOPO_NOTFOUND);
    expect("create: valid", create("rpccheck", G, "me", ""), 0);
    expect("create: again", create("rpccheck", G, "me", ""), SPL_EVOL_EXISTS);
    Spline__VolumeNameRequest vn = SPLINE__VOLUME_NAME_REQUEST__INIT;
    vn.name = "no-such-volume";
    expect("stat: missing volume",
           call(&spl_mdsc_mds_service, SPL_MDS_STAT_VOLUME, &vn.base, NULL), SPL_EVOL_NOTFOUND);
    Spline__ExtendVolumeRequest ex = SPLINE__EXTEND_VOLUME_REQUEST__INIT;
    ex.name = "rpccheck";
    ex.new_size_bytes = G;
    expect("extend: not larger", call(&spl_mdsc_mds_service, SPL_MDS_EXTEND_VOLUME, &ex.base,
                                      NULL), SPL_EVOL_SHRINK);
    Spline__ListVolumesRequest lv = SPLINE__LIST_VOLUMES_REQUEST__INIT;
    lv.limit = 20000;
    expect("list: limit 20000", call(&spl_mdsc_mds_service, SPL_MDS_LIST_VOLUMES, &lv.base, NULL),
           SPL_EMDS_BADLIMIT);
    Spline__RestoreVolumeRequest rs = SPLINE__RESTORE_VOLUME_REQUEST__INIT;
    expect("restore: id 0", call(&spl_mdsc_mds_service, SPL_MDS_RESTORE_VOLUME, &rs.base, NULL),
           SPL_EMDS_NOARG);
    rs.id = 999999999;
    expect("restore: unknown id", call(&spl_mdsc_mds_service, SPL_MDS_RESTORE_VOLUME, &rs.base,
                                       NULL), SPL_ERECYCLE_NOTFOUND);
    expect("segment: missing volume", segment("no-such-volume", 0, 0, true), SPL_EVOL_NOTFOUND);
    expect("segment: beyond the end", segment("rpccheck", 0, 2 * G, true), SPL_ESEG_OUTOFRANGE);
    expect("segment: lookup before allocation", segment("rpccheck", 0, 0, false),
           SPL_ESEG_NOTALLOCATED);
    expect("segment: wrong volume id", segment("rpccheck", 987654321, 0, true),
           SPL_EVOL_IDMISMATCH);
    expect("segment: allocate", segment("rpccheck", 0, 4096, true), 0);
    expect("segment: lookup after allocation", segment("rpccheck", 0, 0, false), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mds_rpc_check MDS_ADDRS\n");
        return 2;
    }
    spl_rpc_runtime *rt = NULL;
    if (spl_rpc_runtime_create(NULL, &rt) < 0 || spl_mdsc_open(rt, argv[1], 3000, 10000, &mdsc) < 0)
        return 2;
    topology_cases();
    heartbeat_cases();
    volume_cases();
    spl_mdsc_close(mdsc);
    spl_rpc_runtime_destroy(rt);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
