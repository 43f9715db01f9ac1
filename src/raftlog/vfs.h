/*
 * vfs.h - the disk as the raft log sees it: one small method table (STYLE 11).
 *
 * Every byte the raft log reads or writes, and every name it creates, renames or
 * removes, goes through a `struct spl_vfs`. Two implementations exist:
 *   spl_vfs_posix()  the real one: thin wrappers over open/pwritev/fdatasync/rename...
 *   vfs_mem.h        an in-memory disk that knows which bytes and names are durable, and
 *                    injects faults: fail the N-th write/sync/metadata call, crash at the
 *                    N-th mutating call (dropping unsynced data, keeping an in-order prefix
 *                    of it, or keeping it all and tearing the last write). Tests and the
 *                    deterministic simulator use it.
 *
 * Contract every implementation keeps (the log relies on nothing else):
 *  - Results are 0 or a negative errno; nothing sets errno for the caller.
 *  - pwritev writes every byte or fails; written bytes are visible to later preads at
 *    once, but survive a crash only after fdatasync of that file returned 0.
 *  - After fdatasync fails, the file's unsynced bytes may be lost even if a later
 *    fdatasync succeeds (Linux marks the pages clean): callers must treat a failed sync
 *    as fatal for the data it covered.
 *  - A name created, renamed or removed in directory D is durable only after sync_dir(D)
 *    returned 0. A rename from A to B needs sync_dir(A) and sync_dir(B).
 *  - syncfs makes every byte and name on the file system that holds `fd` durable.
 *  - Paths are absolute or relative to the process cwd; directory listings give plain
 *    names (no "." or ".."), in no particular order.
 * Handles are small non-negative ints owned by the implementation.
 *
 * Threads: every method may be called from any thread concurrently; the same fd may be
 * written by one thread while another syncs it.
 */
#ifndef SPL_RAFTLOG_VFS_H
#define SPL_RAFTLOG_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* open flags (combine with |) */
#define SPL_VFS_RDONLY 0x0   /* read only */
#define SPL_VFS_RDWR 0x1     /* read and write */
#define SPL_VFS_CREATE 0x2   /* create if missing (mode 0644) */
#define SPL_VFS_EXCL 0x4     /* with CREATE: fail with -EEXIST if present */
#define SPL_VFS_DIRECTORY 0x8 /* the path must be a directory (read only) */

/* Called once per directory entry; a non-zero return stops the listing and is returned
 * by list_dir. */
typedef int (*spl_vfs_list_fn)(void *arg, const char *name);

struct spl_vfs_ops {
    int (*open)(void *ctx, const char *path, int flags, int *fd_out);
    int (*close)(void *ctx, int fd);
    /* Reads up to len bytes at off; *got < len only at end of file. */
    int (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *got);
    int (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsize)(void *ctx, int fd, uint64_t *size_out);
    int (*ftruncate)(void *ctx, int fd, uint64_t size);
    /* Reserves [off, off + len) (extends the size; new bytes read as zero). */
    int (*fallocate)(void *ctx, int fd, uint64_t off, uint64_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path); /* -EEXIST when it exists */
    int (*rmdir)(void *ctx, const char *path); /* must be empty */
    int (*sync_dir)(void *ctx, const char *path);
    int (*list_dir)(void *ctx, const char *path, spl_vfs_list_fn fn, void *arg);
    int (*syncfs)(void *ctx, int fd);
};

struct spl_vfs {
    const struct spl_vfs_ops *ops;
    void *ctx;
};

/* The real file system (static; never freed). */
const struct spl_vfs *spl_vfs_posix(void);

/* Shorthands. */
static inline int spl_vfs_open(const struct spl_vfs *v, const char *path, int flags, int *fd)
{
    return v->ops->open(v->ctx, path, flags, fd);
}
static inline int spl_vfs_close(const struct spl_vfs *v, int fd)
{
    return v->ops->close(v->ctx, fd);
}
static inline int spl_vfs_pread(const struct spl_vfs *v, int fd, void *buf, size_t len,
                                uint64_t off, size_t *got)
{
    return v->ops->pread(v->ctx, fd, buf, len, off, got);
}
static inline int spl_vfs_pwritev(const struct spl_vfs *v, int fd, const struct iovec *iov,
                                  int iovcnt, uint64_t off)
{
    return v->ops->pwritev(v->ctx, fd, iov, iovcnt, off);
}
static inline int spl_vfs_pwrite(const struct spl_vfs *v, int fd, const void *buf, size_t len,
                                 uint64_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return v->ops->pwritev(v->ctx, fd, &iov, 1, off);
}
static inline int spl_vfs_fdatasync(const struct spl_vfs *v, int fd)
{
    return v->ops->fdatasync(v->ctx, fd);
}
static inline int spl_vfs_fsize(const struct spl_vfs *v, int fd, uint64_t *size)
{
    return v->ops->fsize(v->ctx, fd, size);
}
static inline int spl_vfs_ftruncate(const struct spl_vfs *v, int fd, uint64_t size)
{
    return v->ops->ftruncate(v->ctx, fd, size);
}
static inline int spl_vfs_fallocate(const struct spl_vfs *v, int fd, uint64_t off, uint64_t len)
{
    return v->ops->fallocate(v->ctx, fd, off, len);
}
static inline int spl_vfs_rename(const struct spl_vfs *v, const char *from, const char *to)
{
    return v->ops->rename(v->ctx, from, to);
}
static inline int spl_vfs_unlink(const struct spl_vfs *v, const char *path)
{
    return v->ops->unlink(v->ctx, path);
}
static inline int spl_vfs_mkdir(const struct spl_vfs *v, const char *path)
{
    return v->ops->mkdir(v->ctx, path);
}
static inline int spl_vfs_rmdir(const struct spl_vfs *v, const char *path)
{
    return v->ops->rmdir(v->ctx, path);
}
static inline int spl_vfs_sync_dir(const struct spl_vfs *v, const char *path)
{
    return v->ops->sync_dir(v->ctx, path);
}
static inline int spl_vfs_list_dir(const struct spl_vfs *v, const char *path,
                                   spl_vfs_list_fn fn, void *arg)
{
    return v->ops->list_dir(v->ctx, path, fn, arg);
}
static inline int spl_vfs_syncfs(const struct spl_vfs *v, int fd)
{
    return v->ops->syncfs(v->ctx, fd);
}

/* spl_vfs_pread_full - read exactly len bytes at off: 0, -errno, or SPL_ECORRUPT when the
 * file ends first (a short file is a format error to the log). */
int spl_vfs_pread_full(const struct spl_vfs *v, int fd, void *buf, size_t len, uint64_t off);

/* spl_vfs_write_zeros - write len zero bytes at off (in bounded chunks). 0 or -errno. */
int spl_vfs_write_zeros(const struct spl_vfs *v, int fd, uint64_t off, uint64_t len);

#endif
