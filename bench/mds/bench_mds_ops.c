/*
 * bench_mds_ops.c - MDS namespace throughput against a running MDS (and its real etcd):
 * volume creates, volume stats and segment allocations per second with T client threads,
 * plus a same-run baseline: GetCopysets of one copyset, an MDS round trip without etcd.
 *
 * Usage: bench_mds_ops MDS_ADDRS [THREADS [OPS_PER_THREAD]]   (defaults 8, 200)
 * Prints one line per operation: ops/s, mean and p99 latency.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errors.h"
#include "mds.pb-c.h"
#include "mds/mds_client.h"

enum op { OP_BASE, OP_CREATE, OP_STAT, OP_SEGMENT };
static const char *op_name[] = {"get copyset (no etcd; baseline)", "volume create",
                                "volume stat", "segment allocate"};

static struct spl_mdsc *mdsc;
static uint32_t ops_per_thread;
static char run_id[32];

struct worker {
    pthread_t th;
    int index;
    enum op op;
    uint64_t *lat_ns;
    int errors;
};

static int one(enum op op, int t, uint32_t i)
{
    char name[128];
    ProtobufCMessage *resp = NULL;
    int rc;
    if (op == OP_BASE) {
        Spline__GetCopysetsRequest r = SPLINE__GET_COPYSETS_REQUEST__INIT;
        Spline__CopysetId id = SPLINE__COPYSET_ID__INIT, *ids[1] = {&id};
        id.logical_pool_id = 1;
        id.copyset_id = 1 + i % 3;
        r.ids = ids;
        r.n_ids = 1;
        rc = spl_mdsc_call(mdsc, &spl_mdsc_mds_service, SPL_MDS_GET_COPYSETS, &r.base, &resp,
                           NULL);
    } else if (op == OP_CREATE) {
        snprintf(name, sizeof name, "b%s-%d-%u", run_id, t, i);
        Spline__CreateVolumeRequest r = SPLINE__CREATE_VOLUME_REQUEST__INIT;
        r.name = name;
        r.size_bytes = 64ull << 30;
        rc = spl_mdsc_call(mdsc, &spl_mdsc_mds_service, SPL_MDS_CREATE_VOLUME, &r.base, &resp,
                           NULL);
    } else if (op == OP_STAT) {
        snprintf(name, sizeof name, "b%s-%d-%u", run_id, t, i);
        Spline__VolumeNameRequest r = SPLINE__VOLUME_NAME_REQUEST__INIT;
        r.name = name;
        rc = spl_mdsc_call(mdsc, &spl_mdsc_mds_service, SPL_MDS_STAT_VOLUME, &r.base, &resp,
                           NULL);
    } else {
        /* each thread fills its own volume: segment i of volume (t, i / 64) */
        snprintf(name, sizeof name, "b%s-%d-%u", run_id, t, i / 64);
        Spline__SegmentRequest r = SPLINE__SEGMENT_REQUEST__INIT;
        r.volume = name;
        r.offset = (uint64_t)(i % 64) << 30;
        r.allocate = true;
        rc = spl_mdsc_call(mdsc, &spl_mdsc_mds_service, SPL_MDS_GET_OR_ALLOC_SEGMENT, &r.base,
                           &resp, NULL);
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (uint32_t i = 0; i < ops_per_thread; i++) {
        uint64_t t0 = spl_mono_ns();
        int rc = one(w->op, w->index, i);
        w->lat_ns[i] = spl_mono_ns() - t0;
        if (rc < 0 && w->errors++ == 0)
            fprintf(stderr, "%s: %s\n", op_name[w->op], spl_errname(rc));
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run(enum op op, int threads)
{
    struct worker *w = calloc((size_t)threads, sizeof *w);
    uint64_t *all = calloc((size_t)threads * ops_per_thread, sizeof *all);
    uint64_t t0 = spl_mono_ns();
    for (int t = 0; t < threads; t++) {
        w[t] = (struct worker){.index = t, .op = op, .lat_ns = all + (size_t)t * ops_per_thread};
        pthread_create(&w[t].th, NULL, worker_main, &w[t]);
    }
    int errors = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(w[t].th, NULL);
        errors += w[t].errors;
    }
    double secs = (double)(spl_mono_ns() - t0) / 1e9;
    size_t n = (size_t)threads * ops_per_thread;
    qsort(all, n, sizeof *all, cmp_u64);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += all[i];
    printf("%-36s %8.0f ops/s  mean %7.2f ms  p99 %7.2f ms  (%zu ops, %d threads, %d errors)\n",
           op_name[op], (double)n / secs, (double)sum / (double)n / 1e6,
           (double)all[n * 99 / 100] / 1e6, n, threads, errors);
    free(all);
    free(w);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_mds_ops MDS_ADDRS [THREADS [OPS_PER_THREAD]]\n");
        return 2;
    }
    int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 8;
    ops_per_thread = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 200;
    if (threads < 1 || threads > 256 || ops_per_thread < 1)
        return 2;
    snprintf(run_id, sizeof run_id, "%" PRIx64, spl_wall_ns() / 1000000 % 0xffffff);
    spl_rpc_runtime *rt = NULL;
    struct spl_rpc_runtime_opts ro = {.io_threads = 2, .name = "bench"};
    if (spl_rpc_runtime_create(&ro, &rt) < 0 || spl_mdsc_open(rt, argv[1], 10000, 30000, &mdsc) < 0)
        return 1;
    run(OP_BASE, threads);
    run(OP_CREATE, threads);
    run(OP_STAT, threads);
    run(OP_SEGMENT, threads);
    run(OP_BASE, threads);
    spl_mdsc_close(mdsc);
    spl_rpc_runtime_destroy(rt);
    return 0;
}
