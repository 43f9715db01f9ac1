/*
 * vfs_posix.c - the real file system behind `struct spl_vfs` (see vfs.h): each method is
 * one system call (pwritev and pread loop over short transfers and EINTR). Stateless;
 * the fds are the kernel's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "raftlog/vfs.h"

static int vp_open(void *ctx, const char *path, int flags, int *fd_out)
{
    int oflags = O_CLOEXEC;
    if (flags & SPL_VFS_DIRECTORY)
        oflags |= O_RDONLY | O_DIRECTORY;
    else
        oflags |= (flags & SPL_VFS_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & SPL_VFS_CREATE)
        oflags |= O_CREAT;
    if (flags & SPL_VFS_EXCL)
        oflags |= O_EXCL;
    int fd = open(path, oflags, 0644);
    if (fd < 0)
        return -errno;
    *fd_out = fd;
    return 0;
}

static int vp_close(void *ctx, int fd) { return close(fd) == 0 ? 0 : -errno; }

static int vp_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

static int vp_pwritev(void *ctx, int fd, const struct iovec *iov_in, int iovcnt, uint64_t off)
{
    struct iovec iov[IOV_MAX];
    ASSERT(iovcnt >= 0 && iovcnt <= IOV_MAX);
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)iovcnt);
    struct iovec *cur = iov;
    while (iovcnt > 0) {
        ssize_t n = pwritev(fd, cur, iovcnt, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        off += (uint64_t)n;
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= cur->iov_len) {
            left -= cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (char *)cur->iov_base + left;
            cur->iov_len -= left;
        }
    }
    return 0;
}

static int vp_fdatasync(void *ctx, int fd) { return fdatasync(fd) == 0 ? 0 : -errno; }

static int vp_fsize(void *ctx, int fd, uint64_t *size_out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

static int vp_ftruncate(void *ctx, int fd, uint64_t size)
{
    return ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
}

static int vp_fallocate(void *ctx, int fd, uint64_t off, uint64_t len)
{
    if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP)
        return -errno;
    int rc = posix_fallocate(fd, (off_t)off, (off_t)len); /* tmpfs and friends */
    return -rc;
}

static int vp_rename(void *ctx, const char *from, const char *to)
{
    return rename(from, to) == 0 ? 0 : -errno;
}

static int vp_unlink(void *ctx, const char *path) { return unlink(path) == 0 ? 0 : -errno; }
static int vp_mkdir(void *ctx, const char *path) { return mkdir(path, 0755) == 0 ? 0 : -errno; }
static int vp_rmdir(void *ctx, const char *path) { return rmdir(path) == 0 ? 0 : -errno; }

static int vp_sync_dir(void *ctx, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int vp_list_dir(void *ctx, const char *path, spl_vfs_list_fn fn, void *arg)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            rc = errno ? -errno : 0;
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fn(arg, de->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int vp_syncfs(void *ctx, int fd) { return syncfs(fd) == 0 ? 0 : -errno; }

static const struct spl_vfs_ops posix_ops = {
    .open = vp_open,
    .close = vp_close,
    .pread = vp_pread,
    .pwritev = vp_pwritev,
    .fdatasync = vp_fdatasync,
    .fsize = vp_fsize,
    .ftruncate = vp_ftruncate,
    .fallocate = vp_fallocate,
    .rename = vp_rename,
    .unlink = vp_unlink,
    .mkdir = vp_mkdir,
    .rmdir = vp_rmdir,
    .sync_dir = vp_sync_dir,
    .list_dir = vp_list_dir,
    .syncfs = vp_syncfs,
};

static const struct spl_vfs posix_vfs = {.ops = &posix_ops, .ctx = NULL};

const struct spl_vfs *spl_vfs_posix(void) { return &posix_vfs; }
