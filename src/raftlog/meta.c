/*
 * meta.c - the two small per-group metadata files.
 *
 * hardstate: a 4096-byte file with two 64-byte slots (offsets 0 and 512), each with a
 * CRC and a sequence number; slot seq % 2 holds seq, and the valid slot with the higher
 * seq wins. A new state is always written to the slot that does not hold the last
 * fdatasync'ed one (the sequence number skips one when parity asks for it), so one slot
 * always holds the last durable state: a torn write destroys only the state being
 * written. A term or vote change is written and fdatasync'ed in one step by the sync
 * worker (one group at a time) before anything that depends on it is released; a
 * commit-only change is written without a sync, after the log it points into was synced
 * (a lost commit is only a stale hint; recovery syncs the slot it read before writing the
 * other). This costs one pwrite (+ one fdatasync of a preallocated file for a vote),
 * where temp + fdatasync + rename + fsync(dir) costs a journal commit of the directory
 * too.
 *
 * snapmeta: variable length and rare, so it is replaced the classic way: write
 * "snapmeta.tmp", fdatasync, rename over "snapmeta", fsync the directory.
 * Threads: no state of its own; callers serialize per group.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog_internal.h"

#define PATH_BUF (SPL_RAFTLOG_PATH_MAX + 64)

static void set_why(char *why, size_t why_len, const char *fmt, const char *path)
{
    if (why && why_len)
        snprintf(why, why_len, fmt, path);
}

int spl__raftlog_hs_create(const struct spl_vfs *vfs, const char *dir, uint64_t group_id)
{
    char tmp[PATH_BUF], path[PATH_BUF];
    uint8_t buf[SPL_RAFTLOG_HS_FILE_SIZE];
    int fd;
    spl__raftlog_path(tmp, sizeof(tmp), dir, SPL__RAFTLOG_HS_NAME ".tmp");
    spl__raftlog_path(path, sizeof(path), dir, SPL__RAFTLOG_HS_NAME);
    memset(buf, 0, sizeof(buf));
    struct spl_raftlog_hs_slot slot = {.group_id = group_id, .seq = 0};
    spl_raftlog_hs_encode(&slot, buf);
    (void)spl_vfs_unlink(vfs, tmp);
    int rc = spl_vfs_open(vfs, tmp, SPL_VFS_RDWR | SPL_VFS_CREATE | SPL_VFS_EXCL, &fd);
    if (rc != 0)
        return rc;
    rc = spl_vfs_pwrite(vfs, fd, buf, sizeof(buf), 0);
    if (rc == 0)
        rc = spl_vfs_fdatasync(vfs, fd);
    spl_vfs_close(vfs, fd);
    if (rc == 0)
        rc = spl_vfs_rename(vfs, tmp, path);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, dir);
    return rc;
}

int spl__raftlog_hs_load(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                         int *fd_out, struct spl_raftlog_hs_slot *out, char *why,
                         size_t why_len)
{
    char path[PATH_BUF];
    uint8_t buf[2 * SPL_RAFTLOG_HS_SLOT_STRIDE];
    int fd;
    spl__raftlog_path(path, sizeof(path), dir, SPL__RAFTLOG_HS_NAME);
    int rc = spl_vfs_open(vfs, path, SPL_VFS_RDWR, &fd);
    if (rc != 0)
        return rc;
    rc = spl_vfs_pread_full(vfs, fd, buf, sizeof(buf), 0);
    if (rc == 0) {
        rc = spl_raftlog_hs_pick(buf, sizeof(buf), out, NULL);
        if (rc == SPL_ECORRUPT)
            rc = SPL_ELOG_CORRUPT;
    } else if (rc == SPL_ECORRUPT) {
        rc = SPL_ELOG_CORRUPT; /* short file */
    }
    if (rc == 0 && out->group_id != group_id)
        rc = SPL_ELOG_FOREIGN;
    if (rc != 0) {
        set_why(why, why_len,
                rc == SPL_ELOG_FOREIGN ? "%s: hard state of another group"
                                       : "%s offset 0: no valid hard state slot",
                path);
        LOG_ERROR("raftlog", "%s: hard state unreadable: %s", path, spl_strerror(rc));
        spl_vfs_close(vfs, fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int spl__raftlog_hs_write(const struct spl_vfs *vfs, int fd, uint64_t group_id, uint64_t seq,
                          const struct spl_raftlog_hardstate *hs)
{
    uint8_t buf[SPL_RAFTLOG_HS_SLOT_SIZE];
    struct spl_raftlog_hs_slot slot = {.group_id = group_id, .seq = seq, .hs = *hs};
    spl_raftlog_hs_encode(&slot, buf);
    return spl_vfs_pwrite(vfs, fd, buf, sizeof(buf), (seq % 2) * SPL_RAFTLOG_HS_SLOT_STRIDE);
}

int spl__raftlog_snap_store(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                            const struct spl_raftlog_snapmeta *m)
{
    char tmp[PATH_BUF], path[PATH_BUF];
    uint64_t size;
    int fd;
    int rc = spl_raftlog_snapmeta_size(m, &size);
    if (rc != 0)
        return rc;
    uint8_t *buf = malloc((size_t)size);
    if (!buf)
        return -ENOMEM;
    rc = spl_raftlog_snapmeta_encode(m, group_id, buf, (size_t)size);
    ASSERT(rc == 0);
    spl__raftlog_path(tmp, sizeof(tmp), dir, SPL__RAFTLOG_SNAP_NAME ".tmp");
    spl__raftlog_path(path, sizeof(path), dir, SPL__RAFTLOG_SNAP_NAME);
    (void)spl_vfs_unlink(vfs, tmp);
    rc = spl_vfs_open(vfs, tmp, SPL_VFS_RDWR | SPL_VFS_CREATE | SPL_VFS_EXCL, &fd);
    if (rc != 0)
        goto out_free;
    rc = spl_vfs_pwrite(vfs, fd, buf, (size_t)size, 0);
    if (rc == 0)
        rc = spl_vfs_fdatasync(vfs, fd);
    spl_vfs_close(vfs, fd);
    if (rc == 0)
        rc = spl_vfs_rename(vfs, tmp, path);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, dir);
out_free:
    free(buf);
    return rc;
}

int spl__raftlog_snap_load(const struct spl_vfs *vfs, const char *dir, uint64_t group_id,
                           struct spl_raftlog_snapmeta *out, char *why, size_t why_len)
{
    char path[PATH_BUF];
    uint64_t size = 0, gid = 0;
    int fd;
    memset(out, 0, sizeof(*out));
    spl__raftlog_path(path, sizeof(path), dir, SPL__RAFTLOG_SNAP_NAME);
    int rc = spl_vfs_open(vfs, path, SPL_VFS_RDONLY, &fd);
    if (rc != 0)
        return rc;
    rc = spl_vfs_fsize(vfs, fd, &size);
    if (rc == 0 && (size > SPL_RAFTLOG_SNAP_META_MAX || size < SPL_RAFTLOG_SNAP_HEADER_SIZE))
        rc = SPL_ECORRUPT;
    uint8_t *buf = rc == 0 ? malloc((size_t)size) : NULL;
    if (rc == 0 && !buf)
        rc = -ENOMEM;
    if (rc == 0)
        rc = spl_vfs_pread_full(vfs, fd, buf, (size_t)size, 0);
    if (rc == 0)
        rc = spl_raftlog_snapmeta_decode(buf, (size_t)size, &gid, out);
    if (rc == 0 && gid != group_id) {
        spl_raftlog_snapmeta_free(out);
        rc = SPL_ELOG_FOREIGN;
    }
    free(buf);
    spl_vfs_close(vfs, fd);
    if (rc == SPL_ECORRUPT)
        rc = SPL_ELOG_SNAPSHOT;
    if (rc != 0) {
        set_why(why, why_len, "%s: snapshot meta invalid", path);
        LOG_ERROR("raftlog", "%s: snapshot meta unreadable: %s", path, spl_strerror(rc));
    }
    return rc;
}

int spl__raftlog_snap_copy(struct spl_raftlog_snapmeta *dst,
                           const struct spl_raftlog_snapmeta *src)
{
    size_t bytes = sizeof(struct spl_raftlog_snapfile) * src->file_count + src->blob_len + 1;
    for (uint32_t i = 0; i < src->file_count; i++)
        bytes += strlen(src->files[i].name) + 1;
    uint8_t *owned = malloc(bytes);
    if (!owned)
        return -ENOMEM;
    *dst = *src;
    struct spl_raftlog_snapfile *files = (struct spl_raftlog_snapfile *)owned;
    char *p = (char *)owned + sizeof(struct spl_raftlog_snapfile) * src->file_count;
    for (uint32_t i = 0; i < src->file_count; i++) {
        size_t n = strlen(src->files[i].name) + 1;
        memcpy(p, src->files[i].name, n);
        files[i].name = p;
        files[i].size = src->files[i].size;
        p += n;
    }
    if (src->blob_len)
        memcpy(p, src->blob, src->blob_len);
    dst->files = src->file_count ? files : NULL;
    dst->blob = src->blob_len ? p : NULL;
    dst->priv_owned = owned;
    return 0;
}
