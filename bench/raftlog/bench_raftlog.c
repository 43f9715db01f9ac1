/*
 * bench_raftlog.c - group commit: durable appends/s for 1 group against many groups, on
 * this machine's disk, in one run (the 1-group figure is the baseline).
 *
 * Each group keeps `inflight` appends of one `size`-byte entry outstanding (1 = what the
 * Raft ready/advance loop does: persist, then advance, then the next ready), issued by
 * `drivers` owner threads; a callback (on a sync worker) hands the completion back to the
 * group's driver, which issues the next append. Every 8th append also carries a hard state.
 * Groups snapshot + compact once they hold 3 segments, so segments cycle through the pool.
 * Also measured: the raw floor, pwrite(4 KiB) + fdatasync in a loop on one preallocated
 * file (what one group could ever reach without group commit).
 *
 * Usage: bench_raftlog [--dir D] [--seconds S] [--size B] [--groups 1,10,100]
 *                      [--sync-threads K] [--mode fdatasync|syncfs|both] [--inflight Q]
 *                      [--drivers T] [--segment-mb M]
 * Prints one line per (mode, groups): appends/s, MiB/s, syncs/s, appends per sync, p50/p99
 * latency; then each figure as a ratio to the 1-group figure of its mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog.h"

#define GROUPS_MAX 1024
#define DRIVERS_MAX 16
#define INFLIGHT_MAX 16
#define LAT_SAMPLES (1u << 20)

struct opts {
    const char *dir;
    double seconds;
    uint32_t size;
    uint32_t groups[8];
    uint32_t group_sets;
    uint32_t sync_threads;
    int mode; /* 0 fdatasync, 1 syncfs, 2 both */
    uint32_t inflight;
    uint32_t drivers;
    uint64_t segment_size;
};

struct bgroup;

struct breq {
    struct spl_raftlog_req req;
    struct bgroup *g;
    uint64_t start_ns;
};

struct driver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct breq **done; /* completions handed back by callbacks */
    uint32_t done_count, done_cap;
    struct bgroup **groups;
    uint32_t group_count;
    pthread_t thread;
    struct run *run;
};

struct bgroup {
    struct spl_raftlog *log;
    struct driver *drv;
    uint64_t next_index;
    uint64_t appends;
    struct breq reqs[INFLIGHT_MAX];
};

struct run {
    const struct opts *o;
    struct spl_raftlog_env *env;
    struct bgroup *groups;
    uint32_t group_count;
    struct driver drivers[DRIVERS_MAX];
    uint32_t driver_count;
    _Atomic bool stop;
    _Atomic uint64_t completed;
    _Atomic int errors;
    uint64_t *lat_ns; /* samples, written by drivers under their own index */
    _Atomic uint64_t lat_count;
    struct spl_iobuf payload;
};

static void on_durable(struct spl_raftlog_req *req, int status)
{
    struct breq *r = (struct breq *)req;
    struct driver *d = r->g->drv;
    if (status != 0)
        atomic_fetch_add(&d->run->errors, 1);
    pthread_mutex_lock(&d->mu);
    d->done[d->done_count++] = r;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static int issue(struct run *run, struct bgroup *g, struct breq *r)
{
    struct spl_raftlog_entry e = {.term = 1, .index = g->next_index, .type = 0};
    spl_iobuf_init(&e.data);
    int rc = spl_iobuf_append_ref(&e.data, &run->payload, 0, spl_iobuf_len(&run->payload));
    if (rc != 0)
        return rc;
    struct spl_raftlog_hardstate hs = {.term = 1, .vote = 1, .commit = 0};
    r->start_ns = spl_mono_ns();
    rc = spl_raftlog_append(g->log, &e, 1, g->appends % 8 == 0 ? &hs : NULL, &r->req,
                            on_durable);
    spl_iobuf_reset(&e.data);
    if (rc == 0) {
        g->next_index++;
        g->appends++;
    }
    return rc;
}

/* Keep at most 3 segments: snapshot at the end of the second oldest, compact. */
static int maybe_compact(struct bgroup *g)
{
    if (spl_raftlog_segment_count(g->log) < 3)
        return 0;
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(g->log, 1, &info);
    struct spl_raftlog_snapmeta m = {.index = info.last_index, .term = 1,
                                     .conf = {.voter_count = 1, .voters = {1}}};
    int rc = spl_raftlog_save_snapmeta(g->log, &m);
    return rc ? rc : spl_raftlog_compact_prefix(g->log, info.last_index);
}

static void *driver_main(void *arg)
{
    struct driver *d = arg;
    struct run *run = d->run;
    uint32_t inflight = run->o->inflight;
    for (uint32_t i = 0; i < d->group_count; i++)
        for (uint32_t k = 0; k < inflight; k++)
            if (issue(run, d->groups[i], &d->groups[i]->reqs[k]) != 0)
                atomic_fetch_add(&run->errors, 1);
    struct breq **batch = calloc(d->done_cap, sizeof(*batch));
    uint32_t outstanding = d->group_count * inflight;
    while (outstanding > 0) {
        pthread_mutex_lock(&d->mu);
        while (d->done_count == 0)
            pthread_cond_wait(&d->cv, &d->mu);
        uint32_t n = d->done_count;
        memcpy(batch, d->done, sizeof(*batch) * n);
        d->done_count = 0;
        pthread_mutex_unlock(&d->mu);
        uint64_t now = spl_mono_ns();
        bool stop = atomic_load(&run->stop);
        for (uint32_t i = 0; i < n; i++) {
            struct breq *r = batch[i];
            uint64_t slot = atomic_fetch_add(&run->lat_count, 1);
            if (slot < LAT_SAMPLES)
                run->lat_ns[slot] = now - r->start_ns;
            atomic_fetch_add(&run->completed, 1);
            if (stop) {
                outstanding--;
                continue;
            }
            if (maybe_compact(r->g) != 0 || issue(run, r->g, r) != 0) {
                atomic_fetch_add(&run->errors, 1);
                outstanding--;
            }
        }
    }
    free(batch);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct result {
    double appends_s, mib_s, syncs_s, per_sync, p50_us, p99_us;
};

static int run_one(const struct opts *o, uint32_t groups, int mode, struct result *res)
{
    char pool[512], dir[512];
    snprintf(pool, sizeof(pool), "%s/walpool", o->dir);
    struct run *run = calloc(1, sizeof(*run));
    run->o = o;
    run->group_count = groups;
    run->groups = calloc(groups, sizeof(*run->groups));
    run->lat_ns = calloc(LAT_SAMPLES, sizeof(uint64_t));
    spl_iobuf_init(&run->payload);
    char *bytes = malloc(o->size);
    memset(bytes, 0xab, o->size);
    spl_iobuf_append(&run->payload, bytes, o->size);
    free(bytes);
    struct spl_raftlog_env_config cfg = {.pool_dir = pool, .segment_size = o->segment_size,
                                         .sync_threads = o->sync_threads,
                                         .sync_mode = mode ? SPL_RAFTLOG_SYNC_SYNCFS
                                                           : SPL_RAFTLOG_SYNC_FDATASYNC};
    int rc = spl_raftlog_env_open(&cfg, &run->env);
    if (rc != 0) {
        fprintf(stderr, "env open: %s\n", spl_strerror(rc));
        return rc;
    }
    for (uint32_t i = 0; i < groups; i++) {
        snprintf(dir, sizeof(dir), "%s/g%u", o->dir, i);
        rc = spl_raftlog_open(run->env, i + 1, dir, SPL_RAFTLOG_CREATE, &run->groups[i].log,
                              NULL, 0);
        if (rc != 0) {
            fprintf(stderr, "open %s: %s\n", dir, spl_strerror(rc));
            return rc;
        }
        run->groups[i].next_index = spl_raftlog_last_index(run->groups[i].log) + 1;
        for (uint32_t k = 0; k < INFLIGHT_MAX; k++)
            run->groups[i].reqs[k].g = &run->groups[i];
    }
    run->driver_count = o->drivers < groups ? o->drivers : groups;
    for (uint32_t t = 0; t < run->driver_count; t++) {
        struct driver *d = &run->drivers[t];
        pthread_mutex_init(&d->mu, NULL);
        pthread_cond_init(&d->cv, NULL);
        d->run = run;
        d->groups = calloc(groups, sizeof(*d->groups));
        d->done_cap = groups * INFLIGHT_MAX;
        d->done = calloc(d->done_cap, sizeof(*d->done));
    }
    for (uint32_t i = 0; i < groups; i++) {
        struct driver *d = &run->drivers[i % run->driver_count];
        run->groups[i].drv = d;
        d->groups[d->group_count++] = &run->groups[i];
    }
    struct spl_raftlog_env_stats st0, st1;
    spl_raftlog_env_stats(run->env, &st0);
    uint64_t t0 = spl_mono_ns();
    for (uint32_t t = 0; t < run->driver_count; t++)
        pthread_create(&run->drivers[t].thread, NULL, driver_main, &run->drivers[t]);
    spl_sleep_ns((uint64_t)(o->seconds * 1e9));
    atomic_store(&run->stop, true);
    uint64_t completed = atomic_load(&run->completed);
    uint64_t t1 = spl_mono_ns();
    spl_raftlog_env_stats(run->env, &st1);
    for (uint32_t t = 0; t < run->driver_count; t++)
        pthread_join(run->drivers[t].thread, NULL);
    double secs = (double)(t1 - t0) / 1e9;
    uint64_t nlat = atomic_load(&run->lat_count);
    nlat = nlat < LAT_SAMPLES ? nlat : LAT_SAMPLES;
    qsort(run->lat_ns, nlat, sizeof(uint64_t), cmp_u64);
    uint64_t syncs = st1.syncs - st0.syncs;
    res->appends_s = (double)completed / secs;
    res->mib_s = res->appends_s * o->size / (1024.0 * 1024.0);
    res->syncs_s = (double)syncs / secs;
    res->per_sync = syncs ? (double)completed / (double)syncs : 0;
    res->p50_us = nlat ? (double)run->lat_ns[nlat / 2] / 1e3 : 0;
    res->p99_us = nlat ? (double)run->lat_ns[nlat * 99 / 100] / 1e3 : 0;
    int errors = atomic_load(&run->errors);
    for (uint32_t i = 0; i < groups; i++)
        spl_raftlog_close(run->groups[i].log);
    spl_raftlog_env_close(run->env);
    for (uint32_t t = 0; t < run->driver_count; t++) {
        free(run->drivers[t].groups);
        free(run->drivers[t].done);
        pthread_mutex_destroy(&run->drivers[t].mu);
        pthread_cond_destroy(&run->drivers[t].cv);
    }
    spl_iobuf_reset(&run->payload);
    free(run->lat_ns);
    free(run->groups);
    free(run);
    if (errors) {
        fprintf(stderr, "%d append errors\n", errors);
        return SPL_EINTERNAL;
    }
    return 0;
}

/* The floor for one group: pwrite + fdatasync of one preallocated, zeroed file. */
static double raw_fdatasync(const struct opts *o, double *per_op_us)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/raw.dat", o->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    uint64_t len = 64u << 20;
    char *buf = calloc(1, 1 << 20);
    for (uint64_t off = 0; off < len; off += 1 << 20)
        if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20)
            return 0;
    fdatasync(fd);
    memset(buf, 0xcd, o->size);
    uint64_t n = 0, t0 = spl_mono_ns(), end = t0 + (uint64_t)(o->seconds * 1e9);
    while (spl_mono_ns() < end) {
        if (pwrite(fd, buf, o->size, (off_t)((n * o->size) % len)) != (ssize_t)o->size ||
            fdatasync(fd) != 0)
            return 0;
        n++;
    }
    double secs = (double)(spl_mono_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    free(buf);
    *per_op_us = secs * 1e6 / (double)n;
    return (double)n / secs;
}

static void parse_groups(struct opts *o, const char *s)
{
    o->group_sets = 0;
    while (*s && o->group_sets < 8) {
        o->groups[o->group_sets++] = (uint32_t)strtoul(s, (char **)&s, 10);
        if (*s == ',')
            s++;
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.dir = NULL, .seconds = 5, .size = 4096, .sync_threads = 16, .mode = 2,
                     .inflight = 1, .drivers = 4, .segment_size = 8u << 20};
    parse_groups(&o, "1,10,100");
    char tmpl[] = "/tmp/spl-raftlog-bench-XXXXXX";
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--dir"))
            o.dir = v;
        else if (!strcmp(a, "--seconds"))
            o.seconds = bench_arg_double(a, v, 0.01, 3600);
        else if (!strcmp(a, "--size"))
            o.size = (uint32_t)bench_arg_u64(a, v, 1, SPL_RAFT_ENTRY_MAX);
        else if (!strcmp(a, "--groups"))
            parse_groups(&o, v);
        else if (!strcmp(a, "--sync-threads"))
            o.sync_threads = (uint32_t)bench_arg_u64(a, v, 0, 1024);
        else if (!strcmp(a, "--mode"))
            o.mode = !strcmp(v, "fdatasync") ? 0 : !strcmp(v, "syncfs") ? 1 : 2;
        else if (!strcmp(a, "--inflight"))
            o.inflight = (uint32_t)bench_arg_u64(a, v, 1, 4096);
        else if (!strcmp(a, "--drivers"))
            o.drivers = (uint32_t)bench_arg_u64(a, v, 1, 1024);
        else if (!strcmp(a, "--segment-mb"))
            o.segment_size = bench_arg_u64(a, v, 1, 4096) << 20;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (o.inflight < 1 || o.inflight > INFLIGHT_MAX || o.drivers < 1 || o.drivers > DRIVERS_MAX)
        return 2;
    bool own_dir = o.dir == NULL;
    if (own_dir && !(o.dir = mkdtemp(tmpl)))
        return 2;
    spl_log_set_level(SPL_LOG_WARN);
    uint32_t gmax = 0;
    for (uint32_t i = 0; i < o.group_sets; i++)
        gmax = o.groups[i] > gmax ? o.groups[i] : gmax;
    char pool[512];
    snprintf(pool, sizeof(pool), "%s/walpool", o.dir);
    uint64_t t0 = spl_mono_ns();
    int rc = spl_raftlog_pool_format(NULL, pool, o.segment_size, gmax * 4 + 8);
    if (rc != 0) {
        fprintf(stderr, "format: %s\n", spl_strerror(rc));
        return 1;
    }
    printf("raftlog group commit: %u-byte entries, %" PRIu64 " MiB segments, %u in flight per "
           "group, %u drivers, %u sync threads, %.1f s per run (pool formatted in %.1f s)\n",
           o.size, o.segment_size >> 20, o.inflight, o.drivers, o.sync_threads, o.seconds,
           (double)(spl_mono_ns() - t0) / 1e9);
    double raw_us = 0, raw = raw_fdatasync(&o, &raw_us);
    printf("%-10s %7s %11s %9s %10s %10s %9s %9s\n", "mode", "groups", "appends/s", "MiB/s",
           "syncs/s", "per sync", "p50 us", "p99 us");
    printf("%-10s %7d %11.0f %9.1f %10.0f %10.2f %9.0f %9s\n", "raw-fsync", 1, raw,
           raw * o.size / 1048576.0, raw, 1.0, raw_us, "-");
    for (int mode = 0; mode < 2; mode++) {
        if (o.mode != 2 && o.mode != mode)
            continue;
        struct result base = {0};
        for (uint32_t i = 0; i < o.group_sets; i++) {
            struct result r;
            rc = run_one(&o, o.groups[i], mode, &r);
            if (rc != 0)
                return 1;
            if (i == 0)
                base = r;
            printf("%-10s %7u %11.0f %9.1f %10.0f %10.2f %9.0f %9.0f   x%.1f\n",
                   mode ? "syncfs" : "fdatasync", o.groups[i], r.appends_s, r.mib_s, r.syncs_s,
                   r.per_sync, r.p50_us, r.p99_us,
                   base.appends_s > 0 ? r.appends_s / base.appends_s : 0);
            fflush(stdout);
        }
    }
    if (own_dir) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", o.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", o.dir);
    }
    return 0;
}
