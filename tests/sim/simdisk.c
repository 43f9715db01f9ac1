/* simdisk.c - append-only files with synced lengths, fsync latency, crash semantics. */
#include "simdisk.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void sim_disk_init(struct sim_disk *d, uint64_t sync_min_ns, uint64_t sync_max_ns)
{
    memset(d, 0, sizeof(*d));
    ASSERT(sync_min_ns <= sync_max_ns);
    d->sync_min_ns = sync_min_ns;
    d->sync_max_ns = sync_max_ns;
    d->keep_unsynced_pct = 50;
    d->tear_pct = 50;
}

void sim_disk_free(struct sim_disk *d)
{
    for (int i = 0; i < SIM_DISK_FILES; i++)
        free(d->file[i].data);
    memset(d->file, 0, sizeof(d->file));
}

void sim_disk_wipe(struct sim_disk *d)
{
    for (int i = 0; i < SIM_DISK_FILES; i++)
        d->file[i].len = d->file[i].synced = 0;
}

static struct sim_file *file_of(struct sim_disk *d, int file)
{
    ASSERT(file >= 0 && file < SIM_DISK_FILES);
    return &d->file[file];
}

void sim_disk_append(struct sim_disk *d, int file, const void *bytes, size_t len)
{
    struct sim_file *f = file_of(d, file);
    if (f->len + len > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + len)
            cap *= 2;
        f->data = realloc(f->data, cap);
        ASSERT(f->data != NULL);
        f->cap = cap;
    }
    memcpy(f->data + f->len, bytes, len);
    f->len += len;
    d->stats.writes++;
}

void sim_disk_truncate(struct sim_disk *d, int file, size_t len)
{
    struct sim_file *f = file_of(d, file);
    ASSERT(len <= f->len);
    f->len = len;
    f->synced = len;
}

uint64_t sim_disk_sync_begin(struct sim_disk *d, struct sim_world *w, int file,
                             size_t *target_len)
{
    struct sim_file *f = file_of(d, file);
    *target_len = f->len;
    uint64_t latency = sim_rand_range(w, d->sync_min_ns, d->sync_max_ns);
    if (w->now_ns < d->slow_until_ns && d->slow_extra_ns)
        latency += sim_rand_below(w, d->slow_extra_ns);
    uint64_t start = d->sync_busy_until_ns > w->now_ns ? d->sync_busy_until_ns : w->now_ns;
    d->sync_busy_until_ns = start + latency;
    d->stats.syncs++;
    return d->sync_busy_until_ns;
}

void sim_disk_sync_end(struct sim_disk *d, int file, size_t target_len)
{
    struct sim_file *f = file_of(d, file);
    if (target_len > f->len) /* the file was truncated or renamed meanwhile */
        target_len = f->len;
    if (target_len > f->synced)
        f->synced = target_len;
}

void sim_disk_sync_now(struct sim_disk *d, int file)
{
    struct sim_file *f = file_of(d, file);
    f->synced = f->len;
}

void sim_disk_rename(struct sim_disk *d, int from, int to)
{
    struct sim_file *a = file_of(d, from), *b = file_of(d, to);
    ASSERT(a->synced == a->len);
    struct sim_file t = *b;
    *b = *a;
    *a = t;
    a->len = a->synced = 0;
}

void sim_disk_crash(struct sim_disk *d, struct sim_world *w)
{
    d->stats.crashes++;
    d->sync_busy_until_ns = 0;
    for (int i = 0; i < SIM_DISK_FILES; i++) {
        struct sim_file *f = &d->file[i];
        size_t unsynced = f->len - f->synced;
        size_t keep = 0;
        if (unsynced > 0 && sim_chance(w, d->keep_unsynced_pct, 100))
            keep = sim_rand_below(w, unsynced + 1);
        if (keep > 0 && sim_chance(w, d->tear_pct, 100)) {
            /* A torn write: the last few surviving bytes are garbage. */
            size_t torn = 1 + sim_rand_below(w, keep < 64 ? keep : 64);
            for (size_t k = 0; k < torn; k++)
                f->data[f->synced + keep - 1 - k] = (uint8_t)sim_rand_below(w, 256);
            d->stats.torn++;
        }
        d->stats.lost_bytes += unsynced - keep;
        d->stats.kept_unsynced_bytes += keep;
        f->len = f->synced + keep;
        f->synced = f->len;
    }
}
