/*
 * service_volume.c - the Mds service: volumes, recycle bin, segments (namespace.h), plus
 * the table that also routes GetCopysets (service.c) and ClusterStatus (status.c).
 * Every request's fields are checked here with distinct codes before the namespace runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/limits.h"
#include "base/log.h"
#include "mds.pb-c.h"
#include "mds/mdsd.h"
#include "mds/namespace.h"

#define LIST_LIMIT_DEFAULT 1000u
#define LIST_LIMIT_MAX 10000u

void spl_mdsd_do_get_copysets(struct spl_mdsd *d, spl_rpc_call *call);
void spl_mdsd_do_cluster_status(struct spl_mdsd *d, spl_rpc_call *call);

#define REQ(type, call) ((const type *)spl_rpc_call_request(call))

static void vol_info(const struct spl_volume *v, Spline__VolumeInfo *vi)
{
    spline__volume_info__init(vi);
    vi->id = v->id;
    vi->name = (char *)v->name;
    vi->size_bytes = v->size_bytes;
    vi->segment_size = SPL_SEGMENT_SIZE;
    vi->chunk_size = SPL_CHUNK_SIZE;
    vi->owner = (char *)v->owner;
    vi->status = v->status == SPL_VOLUME_RECYCLED ? SPLINE__VOLUME_STATUS__VOLUME_DELETING
                                                  : SPLINE__VOLUME_STATUS__VOLUME_CREATED;
    vi->ctime_unix_s = v->ctime_ms / 1000;
    vi->dtime_unix_s = v->dtime_ms / 1000;
    vi->logical_pool_id = v->lpool_id;
    if (v->status == SPL_VOLUME_RECYCLED)
        vi->original_name = (char *)v->name;
}

static void reply_volume(spl_rpc_call *call, int rc, const struct spl_volume *v)
{
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, NULL);
        return;
    }
    Spline__VolumeInfo vi;
    vol_info(v, &vi);
    Spline__VolumeResponse resp = SPLINE__VOLUME_RESPONSE__INIT;
    resp.volume = &vi;
    spl_rpc_reply(call, &resp.base, NULL);
}

/* check_name - SPL_EMDS_NOARG when missing, SPL_EVOL_BADNAME when malformed. */
static int check_name(const char *name)
{
    if (!name || !name[0])
        return SPL_EMDS_NOARG;
    return spl_volume_name_valid(name) ? 0 : SPL_EVOL_BADNAME;
}

static int check_owner(const char *owner)
{
    if (!owner)
        return 0;
    size_t n = strlen(owner);
    if (n >= SPL_VOLUME_OWNER_MAX)
        return SPL_EVOL_BADOWNER;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)owner[i] < 0x20 || owner[i] == '/')
            return SPL_EVOL_BADOWNER;
    return 0;
}

static int check_size(uint64_t size)
{
    if (size == 0 || size % SPL_SEGMENT_SIZE != 0 || size > SPL_VOLUME_SIZE_MAX)
        return SPL_EVOL_BADSIZE;
    return 0;
}

static void do_create(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__CreateVolumeRequest *req = REQ(Spline__CreateVolumeRequest, call);
    int rc = check_name(req->name);
    if (rc == 0)
        rc = check_size(req->size_bytes);
    if (rc == 0)
        rc = check_owner(req->owner);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_create(d->ns, req->name, req->size_bytes, req->owner ? req->owner : "",
                           req->logical_pool, &v);
    reply_volume(call, rc, &v);
}

static void do_open(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__VolumeNameRequest *req = REQ(Spline__VolumeNameRequest, call);
    int rc = check_name(req->name);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_open_volume(d->ns, req->name, &v);
    reply_volume(call, rc, &v);
}

static void do_stat(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__VolumeNameRequest *req = REQ(Spline__VolumeNameRequest, call);
    int rc = check_name(req->name);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_stat(d->ns, req->name, &v);
    reply_volume(call, rc, &v);
}

static int cmp_vol_name(const void *a, const void *b)
{
    return strcmp(((const struct spl_volume *)a)->name, ((const struct spl_volume *)b)->name);
}

static void reply_list(spl_rpc_call *call, const Spline__ListVolumesRequest *req,
                       struct spl_volume *v, size_t n)
{
    uint32_t limit = req->limit ? req->limit : LIST_LIMIT_DEFAULT;
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_vol_name);
    size_t first = 0;
    if (req->start_after && req->start_after[0])
        while (first < n && strcmp(v[first].name, req->start_after) <= 0)
            first++;
    size_t count = n - first < limit ? n - first : limit;
    Spline__VolumeInfo *vi = calloc(count + 1, sizeof *vi);
    Spline__VolumeInfo **vp = calloc(count + 1, sizeof *vp);
    if (!vi || !vp) {
        free(vi);
        free(vp);
        spl_mdsd_reply_err(call, -ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        vol_info(&v[first + i], &vi[i]);
        vp[i] = &vi[i];
    }
    Spline__ListVolumesResponse resp = SPLINE__LIST_VOLUMES_RESPONSE__INIT;
    resp.volumes = vp;
    resp.n_volumes = count;
    resp.more = first + count < n;
    spl_rpc_reply(call, &resp.base, NULL);
    free(vi);
    free(vp);
}

static void do_list_common(struct spl_mdsd *d, spl_rpc_call *call, bool recycle)
{
    const Spline__ListVolumesRequest *req = REQ(Spline__ListVolumesRequest, call);
    if (req->limit > LIST_LIMIT_MAX) {
        spl_mdsd_reply_err(call, SPL_EMDS_BADLIMIT, NULL);
        return;
    }
    struct spl_volume *v = NULL;
    size_t n = 0;
    int rc = recycle ? spl_ns_recycle_list(d->ns, &v, &n) : spl_ns_list(d->ns, &v, &n);
    if (rc < 0)
        spl_mdsd_reply_err(call, rc, NULL);
    else
        reply_list(call, req, v, n);
    free(v);
}

static void do_list(struct spl_mdsd *d, spl_rpc_call *call) { do_list_common(d, call, false); }
static void do_recycle_list(struct spl_mdsd *d, spl_rpc_call *call)
{
    do_list_common(d, call, true);
}

static void do_extend(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__ExtendVolumeRequest *req = REQ(Spline__ExtendVolumeRequest, call);
    int rc = check_name(req->name);
    if (rc == 0)
        rc = check_size(req->new_size_bytes);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_stat(d->ns, req->name, &v);
    if (rc == 0 && req->new_size_bytes <= v.size_bytes)
        rc = SPL_EVOL_SHRINK;
    if (rc == 0)
        rc = spl_ns_extend(d->ns, req->name, req->new_size_bytes, &v);
    reply_volume(call, rc, &v);
}

static void do_rename(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__RenameVolumeRequest *req = REQ(Spline__RenameVolumeRequest, call);
    int rc = check_name(req->name);
    if (rc == 0)
        rc = check_name(req->new_name);
    if (rc == 0)
        rc = spl_ns_rename(d->ns, req->name, req->new_name);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_stat(d->ns, req->new_name, &v);
    reply_volume(call, rc, &v);
}

static void do_delete(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__VolumeNameRequest *req = REQ(Spline__VolumeNameRequest, call);
    int rc = check_name(req->name);
    uint64_t id = 0;
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_delete(d->ns, req->name, &id);
    if (rc == 0)
        rc = spl_ns_stat_id(d->ns, id, &v);
    reply_volume(call, rc, &v);
}

static void do_restore(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__RestoreVolumeRequest *req = REQ(Spline__RestoreVolumeRequest, call);
    int rc = req->id == 0 ? SPL_EMDS_NOARG : 0;
    if (rc == 0 && req->new_name && req->new_name[0])
        rc = check_name(req->new_name);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_restore(d->ns, req->id, req->new_name, &v);
    reply_volume(call, rc, &v);
}

static void do_close(struct spl_mdsd *d, spl_rpc_call *call)
{
    do_stat(d, call); /* no sessions yet: closing is checking the volume exists */
}

static void do_segment(struct spl_mdsd *d, spl_rpc_call *call)
{
    const Spline__SegmentRequest *req = REQ(Spline__SegmentRequest, call);
    int rc = check_name(req->volume);
    struct spl_volume v = {0};
    if (rc == 0)
        rc = spl_ns_stat(d->ns, req->volume, &v);
    if (rc == 0 && req->volume_id && req->volume_id != v.id)
        rc = SPL_EVOL_IDMISMATCH;
    if (rc == 0 && req->offset >= v.size_bytes)
        rc = SPL_ESEG_OUTOFRANGE;
    struct spl_segment seg;
    bool allocated = false;
    uint32_t index = (uint32_t)(req->offset / SPL_SEGMENT_SIZE);
    if (rc == 0 && req->allocate)
        rc = spl_ns_get_or_alloc_segment(d->ns, v.id, index, &seg, &allocated);
    else if (rc == 0) {
        rc = spl_ns_get_segment(d->ns, v.id, index, &seg);
        if (rc == -ENOENT)
            rc = SPL_ESEG_NOTALLOCATED;
    }
    if (rc < 0) {
        spl_mdsd_reply_err(call, rc, NULL);
        return;
    }
    Spline__ChunkInfo ci[SPL_CHUNKS_PER_SEGMENT], *cp[SPL_CHUNKS_PER_SEGMENT];
    for (uint32_t i = 0; i < SPL_CHUNKS_PER_SEGMENT; i++) {
        spline__chunk_info__init(&ci[i]);
        ci[i].chunk_id = seg.chunks[i].chunk_id;
        ci[i].copyset_id = seg.chunks[i].copyset_id;
        cp[i] = &ci[i];
    }
    Spline__SegmentResponse resp = SPLINE__SEGMENT_RESPONSE__INIT;
    resp.volume_id = seg.volume_id;
    resp.segment_index = seg.index;
    resp.segment_offset = (uint64_t)seg.index * SPL_SEGMENT_SIZE;
    resp.logical_pool_id = seg.lpool_id;
    resp.chunks = cp;
    resp.n_chunks = SPL_CHUNKS_PER_SEGMENT;
    resp.allocated_now = allocated;
    spl_rpc_reply(call, &resp.base, NULL);
}

#define HANDLER(name, fn)                                                                \
    static void name(spl_rpc_call *call, void *ctx) { spl_mdsd_dispatch(ctx, call, fn); }

HANDLER(h_create, do_create)
HANDLER(h_open, do_open)
HANDLER(h_stat, do_stat)
HANDLER(h_list, do_list)
HANDLER(h_extend, do_extend)
HANDLER(h_rename, do_rename)
HANDLER(h_delete, do_delete)
HANDLER(h_recycle_list, do_recycle_list)
HANDLER(h_restore, do_restore)
HANDLER(h_segment, do_segment)
HANDLER(h_get_copysets, spl_mdsd_do_get_copysets)
HANDLER(h_status, spl_mdsd_do_cluster_status)
HANDLER(h_close, do_close)

#define M(name, req, resp, h)                                                            \
    {name, &spline__##req##__descriptor, &spline__##resp##__descriptor, h}

static const struct spl_rpc_method mds_methods[] = {
    M("CreateVolume", create_volume_request, volume_response, h_create),
    M("OpenVolume", volume_name_request, volume_response, h_open),
    M("StatVolume", volume_name_request, volume_response, h_stat),
    M("ListVolumes", list_volumes_request, list_volumes_response, h_list),
    M("ExtendVolume", extend_volume_request, volume_response, h_extend),
    M("RenameVolume", rename_volume_request, volume_response, h_rename),
    M("DeleteVolume", volume_name_request, volume_response, h_delete),
    M("ListRecycle", list_volumes_request, list_volumes_response, h_recycle_list),
    M("RestoreVolume", restore_volume_request, volume_response, h_restore),
    M("GetOrAllocateSegment", segment_request, segment_response, h_segment),
    M("GetCopysets", get_copysets_request, get_copysets_response, h_get_copysets),
    M("ClusterStatus", cluster_status_request, cluster_status_response, h_status),
    M("CloseVolume", volume_name_request, volume_response, h_close),
};

const struct spl_rpc_service spl_mdsd_mds_service = {
    .id = SPL_RPC_SERVICE_MDS, .name = "mds", .methods = mds_methods,
    .method_count = sizeof mds_methods / sizeof mds_methods[0]};
