/*
 * volume.c - `spline volume create|stat|list|extend|rename|delete|recycle|restore|segment`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "mds.pb-c.h"

static const char usage[] =
    "usage: spline volume create NAME --size=SIZE [--owner=OWNER] [--pool=LPOOL]\n"
    "       spline volume stat NAME\n"
    "       spline volume list\n"
    "       spline volume extend NAME --size=SIZE\n"
    "       spline volume rename NAME NEW_NAME\n"
    "       spline volume delete NAME          (moves it to the recycle bin)\n"
    "       spline volume recycle              (lists the recycle bin)\n"
    "       spline volume restore ID [--name=NEW_NAME]\n"
    "       spline volume segment NAME OFFSET [--allocate]\n"
    "SIZE: bytes or K/M/G/T/P (powers of 1024); a multiple of 1 GiB.\n";

static void print_volume(const Spline__VolumeInfo *v)
{
    char size[32], when[32] = "-";
    cli_format_size(v->size_bytes, size, sizeof size);
    time_t t = (time_t)v->ctime_unix_s;
    struct tm tm;
    if (t && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("name:          %s\n", v->name);
    printf("id:            %" PRIu64 "\n", v->id);
    printf("size:          %s (%" PRIu64 " bytes)\n", size, v->size_bytes);
    printf("owner:         %s\n", v->owner[0] ? v->owner : "-");
    printf("status:        %s\n",
           v->status == SPLINE__VOLUME_STATUS__VOLUME_DELETING ? "in recycle bin" : "active");
    printf("logical pool:  %u\n", v->logical_pool_id);
    printf("created:       %s\n", when);
}

static int call_volume(struct cli *c, const char *what, uint32_t method,
                       const ProtobufCMessage *req)
{
    Spline__VolumeResponse *r = NULL;
    int rc = cli_call(c, what, &spl_mdsc_mds_service, method, req, (ProtobufCMessage **)&r);
    if (rc)
        return rc;
    if (r->volume)
        print_volume(r->volume);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}

static int list(struct cli *c, bool recycle)
{
    Spline__ListVolumesRequest req = SPLINE__LIST_VOLUMES_REQUEST__INIT;
    char after[256] = "";
    printf(recycle ? "%-20s %-32s %12s  %s\n" : "%-20s %-32s %12s  %s\n", "ID", "NAME", "SIZE",
           recycle ? "DELETED" : "OWNER");
    for (int page = 0; page < 100000; page++) {
        req.start_after = after;
        req.limit = 1000;
        Spline__ListVolumesResponse *r = NULL;
        int rc = cli_call(c, recycle ? "volume recycle" : "volume list", &spl_mdsc_mds_service,
                          recycle ? SPL_MDS_LIST_RECYCLE : SPL_MDS_LIST_VOLUMES, &req.base,
                          (ProtobufCMessage **)&r);
        if (rc)
            return rc;
        for (size_t i = 0; i < r->n_volumes; i++) {
            const Spline__VolumeInfo *v = r->volumes[i];
            char size[32], when[32] = "-";
            cli_format_size(v->size_bytes, size, sizeof size);
            time_t t = (time_t)v->dtime_unix_s;
            struct tm tm;
            if (t && gmtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("%-20" PRIu64 " %-32s %12s  %s\n", v->id, v->name, size,
                   recycle ? when : (v->owner[0] ? v->owner : "-"));
        }
        bool more = r->more && r->n_volumes > 0;
        if (more)
            snprintf(after, sizeof after, "%s", r->volumes[r->n_volumes - 1]->name);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (!more)
            break;
    }
    return CLI_OK;
}

static int segment(struct cli *c, const char *name, const char *offset_text, bool allocate)
{
    Spline__SegmentRequest req = SPLINE__SEGMENT_REQUEST__INIT;
    uint64_t off;
    if (cli_parse_size(offset_text, &off) < 0)
        return cli_usage_error(usage, "volume segment: bad OFFSET '%s'", offset_text);
    req.volume = (char *)name;
    req.offset = off;
    req.allocate = allocate;
    Spline__SegmentResponse *r = NULL;
    int rc = cli_call(c, "volume segment", &spl_mdsc_mds_service, SPL_MDS_GET_OR_ALLOC_SEGMENT,
                      &req.base, (ProtobufCMessage **)&r);
    if (rc)
        return rc;
    printf("volume %" PRIu64 " segment %" PRIu64 " logical pool %u%s\n", r->volume_id,
           r->segment_index, r->logical_pool_id, r->allocated_now ? " (allocated now)" : "");
    for (size_t i = 0; i < r->n_chunks; i++)
        printf("chunk %zu id %" PRIu64 " copyset %u\n", i, r->chunks[i]->chunk_id,
               r->chunks[i]->copyset_id);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return CLI_OK;
}

/* split_args - positional arguments into pos[], --key=value options checked against
 * allowed (space-separated names); returns the positional count or -1 (usage printed). */
static int split_args(int argc, char **argv, const char **pos, int pos_max,
                      const char *allowed, const char **vals, bool *flag_allocate)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (n == pos_max)
                return cli_usage_error(usage, "too many arguments at '%s'", argv[i]), -1;
            pos[n++] = argv[i];
            continue;
        }
        if (flag_allocate && strcmp(argv[i], "--allocate") == 0) {
            *flag_allocate = true;
            continue;
        }
        const char *eq = strchr(argv[i], '=');
        size_t klen = eq ? (size_t)(eq - argv[i] - 2) : 0;
        const char *p = allowed;
        int idx = 0;
        bool ok = false;
        while (eq && *p) {
            size_t w = strcspn(p, " ");
            if (w == klen && strncmp(p, argv[i] + 2, w) == 0) {
                vals[idx] = eq + 1;
                ok = true;
                break;
            }
            p += w + (p[w] == ' ');
            idx++;
        }
        if (!ok)
            return cli_usage_error(usage, "unknown option '%s'", argv[i]), -1;
    }
    return n;
}

int cli_volume(struct cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_usage_error(usage, "volume: missing subcommand");
    const char *sub = argv[0];
    const char *pos[3] = {0}, *vals[4] = {0}; /* size owner pool name */
    bool allocate = false;
    int n = split_args(argc - 1, argv + 1, pos, 3, "size owner pool name", vals,
                       strcmp(sub, "segment") == 0 ? &allocate : NULL);
    if (n < 0)
        return CLI_EUSAGE;
    uint64_t size = 0;
    if (vals[0] && cli_parse_size(vals[0], &size) < 0)
        return cli_usage_error(usage, "bad --size '%s'", vals[0]);
    if (strcmp(sub, "create") == 0) {
        if (n != 1 || !vals[0])
            return cli_usage_error(usage, "volume create: give NAME and --size");
        Spline__CreateVolumeRequest req = SPLINE__CREATE_VOLUME_REQUEST__INIT;
        req.name = (char *)pos[0];
        req.size_bytes = size;
        req.owner = (char *)(vals[1] ? vals[1] : "");
        req.logical_pool = (char *)(vals[2] ? vals[2] : "");
        return call_volume(c, "volume create", SPL_MDS_CREATE_VOLUME, &req.base);
    }
    if (strcmp(sub, "stat") == 0 || strcmp(sub, "delete") == 0) {
        if (n != 1 || vals[0] || vals[1] || vals[2] || vals[3])
            return cli_usage_error(usage, "volume %s: give exactly NAME", sub);
        Spline__VolumeNameRequest req = SPLINE__VOLUME_NAME_REQUEST__INIT;
        req.name = (char *)pos[0];
        bool del = sub[0] == 'd';
        return call_volume(c, del ? "volume delete" : "volume stat",
                           del ? SPL_MDS_DELETE_VOLUME : SPL_MDS_STAT_VOLUME, &req.base);
    }
    if (strcmp(sub, "list") == 0 || strcmp(sub, "recycle") == 0) {
        if (n != 0)
            return cli_usage_error(usage, "volume %s takes no arguments", sub);
        return list(c, sub[0] == 'r');
    }
    if (strcmp(sub, "extend") == 0) {
        if (n != 1 || !vals[0])
            return cli_usage_error(usage, "volume extend: give NAME and --size");
        Spline__ExtendVolumeRequest req = SPLINE__EXTEND_VOLUME_REQUEST__INIT;
        req.name = (char *)pos[0];
        req.new_size_bytes = size;
        return call_volume(c, "volume extend", SPL_MDS_EXTEND_VOLUME, &req.base);
    }
    if (strcmp(sub, "rename") == 0) {
        if (n != 2)
            return cli_usage_error(usage, "volume rename: give NAME and NEW_NAME");
        Spline__RenameVolumeRequest req = SPLINE__RENAME_VOLUME_REQUEST__INIT;
        req.name = (char *)pos[0];
        req.new_name = (char *)pos[1];
        return call_volume(c, "volume rename", SPL_MDS_RENAME_VOLUME, &req.base);
    }
    if (strcmp(sub, "restore") == 0) {
        char *end;
        unsigned long long id = n == 1 ? strtoull(pos[0], &end, 10) : 0;
        if (n != 1 || *end || id == 0)
            return cli_usage_error(usage, "volume restore: give the volume ID (volume recycle)");
        Spline__RestoreVolumeRequest req = SPLINE__RESTORE_VOLUME_REQUEST__INIT;
        req.id = id;
        req.new_name = (char *)(vals[3] ? vals[3] : "");
        return call_volume(c, "volume restore", SPL_MDS_RESTORE_VOLUME, &req.base);
    }
    if (strcmp(sub, "segment") == 0) {
        if (n != 2)
            return cli_usage_error(usage, "volume segment: give NAME and OFFSET");
        return segment(c, pos[0], pos[1], allocate);
    }
    return cli_usage_error(usage, "volume: unknown subcommand '%s'", sub);
}
