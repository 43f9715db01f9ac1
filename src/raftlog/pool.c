/*
 * pool.c - the walpool: pre-allocated, zero-filled segment files shared by every group of
 * an env (one disk).
 *
 * A pool file is "pool-<id as 16 hex>" in the pool directory; every file there is free
 * (a file's content is never trusted: records carry the nonce of the segment header that
 * wrote them). Taking a file: write the new segment header while it is still in the
 * pool, fdatasync, rename it into the group directory, sync the pool directory and then
 * the group directory. Giving it back: rename into the pool under a fresh id, sync the
 * group directory and then the pool directory, zero its header region. With that order a
 * crash can leak a file (in neither directory under strict per-directory durability) but
 * never leaves one file in both places. Leftover "*.tmp" files of an interrupted format
 * are removed at open.
 * Threads: take and give may run concurrently from any thread (one mutex for the free
 * list; the I/O runs outside it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog_internal.h"

#define POOL_PREFIX "pool-"
#define POOL_NAME_LEN 21 /* "pool-" + 16 hex */

void spl__raftlog_path(char *out, size_t out_len, const char *dir, const char *name)
{
    int n = snprintf(out, out_len, "%s/%s", dir, name);
    ASSERTF(n > 0 && (size_t)n < out_len, "path too long: %s/%s", dir, name);
}

static void pool_file_path(const struct spl__raftlog_pool *p, uint64_t id, char *out,
                           size_t out_len, bool tmp)
{
    char name[40];
    snprintf(name, sizeof(name), POOL_PREFIX "%016" PRIx64 "%s", id, tmp ? ".tmp" : "");
    spl__raftlog_path(out, out_len, p->dir, name);
}

static bool pool_name_parse(const char *name, uint64_t *id)
{
    if (strlen(name) != POOL_NAME_LEN || strncmp(name, POOL_PREFIX, 5) != 0)
        return false;
    for (int i = 5; i < POOL_NAME_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    *id = strtoull(name + 5, NULL, 16);
    return true;
}

static void pool_push(struct spl__raftlog_pool *p, uint64_t id)
{
    if (p->free_count == p->free_cap) {
        uint32_t cap = p->free_cap ? p->free_cap * 2 : 64;
        uint64_t *ids = realloc(p->free_ids, sizeof(ids[0]) * cap);
        ASSERT(ids != NULL);
        p->free_ids = ids;
        p->free_cap = cap;
    }
    p->free_ids[p->free_count++] = id;
    if (id >= p->next_id)
        p->next_id = id + 1;
}

struct pool_scan {
    struct spl__raftlog_pool *p;
    char tmp[8][64]; /* leftover temporaries to remove (bounded; more wait for next open) */
    uint32_t tmp_count;
    int rc;
};

static int pool_scan_one(void *arg, const char *name)
{
    struct pool_scan *s = arg;
    uint64_t id;
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".tmp") == 0 && strncmp(name, POOL_PREFIX, 5) == 0) {
        if (s->tmp_count < SPL_ARRAY_SIZE(s->tmp) && n < sizeof(s->tmp[0]))
            memcpy(s->tmp[s->tmp_count++], name, n + 1);
        return 0;
    }
    if (!pool_name_parse(name, &id)) {
        LOG_WARN("raftlog", "pool %s: ignoring unknown file %s", s->p->dir, name);
        return 0;
    }
    if (s->p->free_count >= SPL_RAFTLOG_POOL_FILES_MAX)
        return SPL_ETOOBIG;
    pool_push(s->p, id);
    return 0;
}

/* Check that every pool file has the pool's size (a changed segment_size is refused). */
static int pool_check_sizes(struct spl__raftlog_pool *p)
{
    char path[SPL_RAFTLOG_PATH_MAX + 64];
    for (uint32_t i = 0; i < p->free_count; i++) {
        int fd;
        uint64_t size = 0;
        pool_file_path(p, p->free_ids[i], path, sizeof(path), false);
        int rc = spl_vfs_open(p->vfs, path, SPL_VFS_RDONLY, &fd);
        if (rc != 0)
            return rc;
        rc = spl_vfs_fsize(p->vfs, fd, &size);
        spl_vfs_close(p->vfs, fd);
        if (rc != 0)
            return rc;
        if (size != p->segment_size) {
            LOG_ERROR("raftlog", "pool file %s has %" PRIu64 " bytes, segments have %" PRIu64,
                      path, size, p->segment_size);
            return SPL_ELOG_FOREIGN;
        }
    }
    return 0;
}

int spl__raftlog_pool_open(struct spl__raftlog_pool *p, const struct spl_vfs *vfs,
                           const char *dir, uint64_t segment_size, bool fallback_create)
{
    memset(p, 0, sizeof(*p));
    if (strlen(dir) >= sizeof(p->dir))
        return SPL_EINVAL_ARG;
    p->vfs = vfs;
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    p->segment_size = segment_size;
    p->fallback_create = fallback_create;
    pthread_mutex_init(&p->mu, NULL);
    struct pool_scan s = {.p = p};
    int rc = spl_vfs_list_dir(vfs, dir, pool_scan_one, &s);
    if (rc == 0)
        rc = pool_check_sizes(p);
    for (uint32_t i = 0; rc == 0 && i < s.tmp_count; i++) {
        char path[SPL_RAFTLOG_PATH_MAX + 64];
        spl__raftlog_path(path, sizeof(path), dir, s.tmp[i]);
        rc = spl_vfs_unlink(vfs, path);
    }
    if (rc != 0) {
        spl__raftlog_pool_close(p);
        return rc;
    }
    return 0;
}

void spl__raftlog_pool_close(struct spl__raftlog_pool *p)
{
    free(p->free_ids);
    p->free_ids = NULL;
    p->free_count = p->free_cap = 0;
    pthread_mutex_destroy(&p->mu);
}

uint32_t spl__raftlog_pool_free_count(struct spl__raftlog_pool *p)
{
    pthread_mutex_lock(&p->mu);
    uint32_t n = p->free_count;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void parent_dir(const char *path, char *out, size_t out_len)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (slash == path)
        n = 1; /* "/x" -> "/" */
    if (!slash) {
        snprintf(out, out_len, ".");
        return;
    }
    ASSERT(n < out_len);
    memcpy(out, path, n);
    out[n] = '\0';
}

/* The fallback: a new file made in the group directory (not zero-filled: appends to it
 * allocate extents, which is slower but correct). */
static int pool_create_file(struct spl__raftlog_pool *p, const char *target,
                            const uint8_t *header, size_t header_len, int *fd_out)
{
    char tmp[SPL_RAFTLOG_PATH_MAX + 64], dir[SPL_RAFTLOG_PATH_MAX + 64];
    int fd;
    snprintf(tmp, sizeof(tmp), "%s.tmp", target);
    parent_dir(target, dir, sizeof(dir));
    (void)spl_vfs_unlink(p->vfs, tmp);
    int rc = spl_vfs_open(p->vfs, tmp, SPL_VFS_RDWR | SPL_VFS_CREATE | SPL_VFS_EXCL, &fd);
    if (rc != 0)
        return rc;
    rc = spl_vfs_fallocate(p->vfs, fd, 0, p->segment_size);
    if (rc == 0)
        rc = spl_vfs_pwrite(p->vfs, fd, header, header_len, 0);
    if (rc == 0)
        rc = spl_vfs_fdatasync(p->vfs, fd);
    if (rc == 0)
        rc = spl_vfs_rename(p->vfs, tmp, target);
    if (rc == 0)
        rc = spl_vfs_sync_dir(p->vfs, dir);
    if (rc != 0) {
        spl_vfs_close(p->vfs, fd);
        (void)spl_vfs_unlink(p->vfs, tmp);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int spl__raftlog_pool_reserve(struct spl__raftlog_pool *p, uint32_t count, uint64_t *ids_out)
{
    pthread_mutex_lock(&p->mu);
    if (p->free_count < count && !p->fallback_create) {
        pthread_mutex_unlock(&p->mu);
        return SPL_ELOG_POOLEMPTY;
    }
    for (uint32_t i = 0; i < count; i++)
        ids_out[i] = p->free_count ? p->free_ids[--p->free_count] : SPL__RAFTLOG_POOL_CREATE;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void spl__raftlog_pool_unreserve(struct spl__raftlog_pool *p, const uint64_t *ids,
                                 uint32_t count)
{
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = count; i-- > 0;)
        if (ids[i] != SPL__RAFTLOG_POOL_CREATE)
            pool_push(p, ids[i]);
    pthread_mutex_unlock(&p->mu);
}

int spl__raftlog_pool_take(struct spl__raftlog_pool *p, uint64_t id, const char *target,
                           const uint8_t *header, size_t header_len, int *fd_out)
{
    char path[SPL_RAFTLOG_PATH_MAX + 64], dir[SPL_RAFTLOG_PATH_MAX + 64];
    if (id == SPL__RAFTLOG_POOL_CREATE)
        return pool_create_file(p, target, header, header_len, fd_out);
    int fd;
    pool_file_path(p, id, path, sizeof(path), false);
    parent_dir(target, dir, sizeof(dir));
    int rc = spl_vfs_open(p->vfs, path, SPL_VFS_RDWR, &fd);
    if (rc != 0)
        goto out_put_back;
    rc = spl_vfs_pwrite(p->vfs, fd, header, header_len, 0);
    if (rc == 0)
        rc = spl_vfs_fdatasync(p->vfs, fd);
    if (rc != 0)
        goto out_close;
    rc = spl_vfs_rename(p->vfs, path, target);
    if (rc != 0)
        goto out_close;
    /* from here on the file is the group's: errors leave it there (recovery sees an
     * empty segment) and it is never handed out again */
    rc = spl_vfs_sync_dir(p->vfs, p->dir);
    if (rc == 0)
        rc = spl_vfs_sync_dir(p->vfs, dir);
    if (rc != 0) {
        spl_vfs_close(p->vfs, fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
out_close:
    spl_vfs_close(p->vfs, fd);
out_put_back:
    pthread_mutex_lock(&p->mu);
    pool_push(p, id);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int spl__raftlog_pool_give(struct spl__raftlog_pool *p, const char *path, int fd)
{
    char target[SPL_RAFTLOG_PATH_MAX + 64], dir[SPL_RAFTLOG_PATH_MAX + 64];
    pthread_mutex_lock(&p->mu);
    uint64_t id = p->next_id++;
    pthread_mutex_unlock(&p->mu);
    pool_file_path(p, id, target, sizeof(target), false);
    parent_dir(path, dir, sizeof(dir));
    int rc = spl_vfs_rename(p->vfs, path, target);
    if (rc == 0)
        rc = spl_vfs_sync_dir(p->vfs, dir);
    if (rc == 0)
        rc = spl_vfs_sync_dir(p->vfs, p->dir);
    if (rc == 0) /* hygiene only: pool content is never trusted */
        rc = spl_vfs_write_zeros(p->vfs, fd, 0, SPL_RAFTLOG_SEGMENT_HEADER_SIZE);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&p->mu);
    pool_push(p, id);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* ---- format ---- */

struct pool_count {
    uint64_t max_id;
    uint32_t count;
    bool any;
};

static int pool_count_one(void *arg, const char *name)
{
    struct pool_count *c = arg;
    uint64_t id;
    if (!pool_name_parse(name, &id))
        return 0;
    c->count++;
    if (!c->any || id > c->max_id)
        c->max_id = id;
    c->any = true;
    return 0;
}

static int pool_format_one(const struct spl_vfs *vfs, struct spl__raftlog_pool *p, uint64_t id)
{
    char tmp[SPL_RAFTLOG_PATH_MAX + 64], path[SPL_RAFTLOG_PATH_MAX + 64];
    int fd;
    pool_file_path(p, id, tmp, sizeof(tmp), true);
    pool_file_path(p, id, path, sizeof(path), false);
    (void)spl_vfs_unlink(vfs, tmp);
    int rc = spl_vfs_open(vfs, tmp, SPL_VFS_RDWR | SPL_VFS_CREATE | SPL_VFS_EXCL, &fd);
    if (rc != 0)
        return rc;
    rc = spl_vfs_fallocate(vfs, fd, 0, p->segment_size);
    if (rc == 0)
        rc = spl_vfs_write_zeros(vfs, fd, 0, p->segment_size);
    if (rc == 0)
        rc = spl_vfs_fdatasync(vfs, fd);
    spl_vfs_close(vfs, fd);
    if (rc == 0)
        rc = spl_vfs_rename(vfs, tmp, path);
    return rc;
}

int spl_raftlog_pool_format(const struct spl_vfs *vfs, const char *pool_dir,
                            uint64_t segment_size, uint32_t file_count)
{
    if (!vfs)
        vfs = spl_vfs_posix();
    if (segment_size < SPL_RAFTLOG_SEGMENT_SIZE_MIN ||
        segment_size > SPL_RAFTLOG_SEGMENT_SIZE_MAX || segment_size % SPL_BLOCK_SIZE != 0 ||
        file_count > SPL_RAFTLOG_POOL_FILES_MAX)
        return SPL_EINVAL_ARG;
    char parent[SPL_RAFTLOG_PATH_MAX + 64];
    parent_dir(pool_dir, parent, sizeof(parent));
    int rc = spl_vfs_mkdir(vfs, pool_dir);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, parent);
    if (rc != 0 && rc != -EEXIST)
        return rc;
    struct spl__raftlog_pool p;
    rc = spl__raftlog_pool_open(&p, vfs, pool_dir, segment_size, false);
    if (rc != 0)
        return rc;
    struct pool_count c = {0};
    rc = spl_vfs_list_dir(vfs, pool_dir, pool_count_one, &c);
    uint64_t id = c.any ? c.max_id + 1 : 1;
    for (uint32_t n = c.count; rc == 0 && n < file_count; n++, id++)
        rc = pool_format_one(vfs, &p, id);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, pool_dir);
    spl__raftlog_pool_close(&p);
    return rc;
}
