/*
 * vfs_mem.c - the in-memory disk with durability and fault injection; see vfs_mem.h.
 *
 * Model: every inode has its current bytes (`cur`) and its durable bytes (`dur`); the
 * namespace has a current and a durable table of names. Every mutation that is not yet
 * durable is also recorded, in issue order, in one log of `struct mem_op` (writes carry a
 * copy of their bytes). A sync moves the matching ops' effect to the durable side and
 * drops them from the log; a reboot replays a prefix of the log over the durable side
 * (PREFIX), all of it (KEEP) or none (DROP). Invariant: applying every op of the log to
 * the durable side gives the current side (mem_check() verifies it for file sizes).
 * One mutex guards everything; the structures are linear arrays (tests hold hundreds of
 * files, not millions).
 */
#include "raftlog/vfs_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

struct mem_inode {
    bool is_dir;
    uint32_t open_count;
    uint8_t *cur;
    uint64_t cur_size, cur_cap;
    uint8_t *dur;
    uint64_t dur_size, dur_cap;
};

struct mem_dent {
    char *path;
    struct mem_inode *ino;
};

struct mem_ns {
    struct mem_dent *ents;
    uint32_t count, cap;
};

enum mem_op_kind { OP_WRITE, OP_RESIZE, OP_LINK, OP_UNLINK };

struct mem_op {
    enum mem_op_kind kind;
    struct mem_inode *ino; /* WRITE, RESIZE, LINK */
    uint64_t off, len;     /* WRITE: where; RESIZE: len is the new size */
    uint8_t *bytes;        /* WRITE */
    char *path;            /* LINK, UNLINK */
    char *dir;             /* LINK, UNLINK: the directory whose sync makes it durable */
};

struct mem_fd {
    struct mem_inode *ino; /* NULL: free slot */
    bool writable;
};

struct spl_vfs_mem {
    pthread_mutex_t mu;
    struct spl_vfs vfs;
    struct mem_inode **inodes;
    uint32_t inode_count, inode_cap;
    struct mem_ns cur_ns, dur_ns;
    struct mem_op *ops;
    uint64_t op_count, op_cap;
    struct mem_fd *fds;
    uint32_t fd_cap;
    /* faults */
    uint64_t count[SPL_VFS_FAULT_CLASSES];
    uint64_t fail_at[SPL_VFS_FAULT_CLASSES];
    int fail_err[SPL_VFS_FAULT_CLASSES];
    bool fail_persist[SPL_VFS_FAULT_CLASSES];
    uint64_t mutations;
    uint64_t crash_at;
    uint64_t tear_bytes;
    bool crashed;
};

#define MEM_CRASH 1 /* mem_enter: this very call is the crash point */
#define SPL_VFS_MEM_PATH_MAX 1024

static void *mem_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    ASSERTF(q != NULL, "vfs_mem: out of memory (%zu bytes)", size);
    return q;
}

static char *mem_xstrdup(const char *s)
{
    char *d = strdup(s);
    ASSERT(d != NULL);
    return d;
}

/* ---- bytes ---- */

static void mem_bytes_resize(uint8_t **buf, uint64_t *size, uint64_t *cap, uint64_t new_size)
{
    if (new_size > *cap) {
        uint64_t c = *cap ? *cap : 4096;
        while (c < new_size)
            c *= 2;
        *buf = mem_xrealloc(*buf, (size_t)c);
        *cap = c;
    }
    if (new_size > *size)
        memset(*buf + *size, 0, (size_t)(new_size - *size));
    *size = new_size;
}

static void mem_bytes_write(uint8_t **buf, uint64_t *size, uint64_t *cap, uint64_t off,
                            const uint8_t *src, uint64_t len)
{
    if (off + len > *size)
        mem_bytes_resize(buf, size, cap, off + len);
    if (len)
        memcpy(*buf + off, src, (size_t)len);
}

static void mem_inode_make_durable(struct mem_inode *ino)
{
    ino->dur_size = 0;
    mem_bytes_write(&ino->dur, &ino->dur_size, &ino->dur_cap, 0, ino->cur, ino->cur_size);
}

static void mem_inode_revert(struct mem_inode *ino)
{
    ino->cur_size = 0;
    mem_bytes_write(&ino->cur, &ino->cur_size, &ino->cur_cap, 0, ino->dur, ino->dur_size);
}

/* ---- namespace ---- */

static struct mem_dent *mem_ns_find(struct mem_ns *ns, const char *path)
{
    for (uint32_t i = 0; i < ns->count; i++)
        if (strcmp(ns->ents[i].path, path) == 0)
            return &ns->ents[i];
    return NULL;
}

static void mem_ns_set(struct mem_ns *ns, const char *path, struct mem_inode *ino)
{
    struct mem_dent *d = mem_ns_find(ns, path);
    if (d) {
        if (ino) {
            d->ino = ino;
        } else {
            free(d->path);
            *d = ns->ents[--ns->count];
        }
        return;
    }
    if (!ino)
        return;
    if (ns->count == ns->cap) {
        ns->cap = ns->cap ? ns->cap * 2 : 64;
        ns->ents = mem_xrealloc(ns->ents, sizeof(ns->ents[0]) * ns->cap);
    }
    ns->ents[ns->count++] = (struct mem_dent){.path = mem_xstrdup(path), .ino = ino};
}

static void mem_ns_clear(struct mem_ns *ns)
{
    for (uint32_t i = 0; i < ns->count; i++)
        free(ns->ents[i].path);
    ns->count = 0;
}

static void mem_ns_copy(struct mem_ns *dst, const struct mem_ns *src)
{
    mem_ns_clear(dst);
    for (uint32_t i = 0; i < src->count; i++)
        mem_ns_set(dst, src->ents[i].path, src->ents[i].ino);
}

/* The parent directory of path into out ("/" for "/x"). */
static void mem_parent(const char *path, char *out, size_t out_len)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0) {
        snprintf(out, out_len, "/");
        return;
    }
    ASSERT(n < out_len);
    memcpy(out, path, n);
    out[n] = '\0';
}

static bool mem_dir_exists(struct spl_vfs_mem *m, const char *dir)
{
    if (strcmp(dir, "/") == 0)
        return true;
    struct mem_dent *d = mem_ns_find(&m->cur_ns, dir);
    return d && d->ino->is_dir;
}

/* ---- inodes, ops, gc ---- */

static struct mem_inode *mem_inode_new(struct spl_vfs_mem *m, bool is_dir)
{
    struct mem_inode *ino = calloc(1, sizeof(*ino));
    ASSERT(ino != NULL);
    ino->is_dir = is_dir;
    if (m->inode_count == m->inode_cap) {
        m->inode_cap = m->inode_cap ? m->inode_cap * 2 : 64;
        m->inodes = mem_xrealloc(m->inodes, sizeof(m->inodes[0]) * m->inode_cap);
    }
    m->inodes[m->inode_count++] = ino;
    return ino;
}

static bool mem_inode_referenced(struct spl_vfs_mem *m, struct mem_inode *ino)
{
    if (ino->open_count)
        return true;
    for (uint32_t i = 0; i < m->cur_ns.count; i++)
        if (m->cur_ns.ents[i].ino == ino)
            return true;
    for (uint32_t i = 0; i < m->dur_ns.count; i++)
        if (m->dur_ns.ents[i].ino == ino)
            return true;
    for (uint64_t i = 0; i < m->op_count; i++)
        if (m->ops[i].ino == ino)
            return true;
    return false;
}

/* Free every inode nothing refers to any more. */
static void mem_gc(struct spl_vfs_mem *m)
{
    for (uint32_t i = 0; i < m->inode_count;) {
        struct mem_inode *ino = m->inodes[i];
        if (mem_inode_referenced(m, ino)) {
            i++;
            continue;
        }
        free(ino->cur);
        free(ino->dur);
        free(ino);
        m->inodes[i] = m->inodes[--m->inode_count];
    }
}

static struct mem_op *mem_op_push(struct spl_vfs_mem *m, enum mem_op_kind kind)
{
    if (m->op_count == m->op_cap) {
        m->op_cap = m->op_cap ? m->op_cap * 2 : 256;
        m->ops = mem_xrealloc(m->ops, sizeof(m->ops[0]) * m->op_cap);
    }
    struct mem_op *op = &m->ops[m->op_count++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

static void mem_op_free(struct mem_op *op)
{
    free(op->bytes);
    free(op->path);
    free(op->dir);
}

/* Record a name change (ino NULL: removal) in the current table and the op log. */
static void mem_name_change(struct spl_vfs_mem *m, const char *path, struct mem_inode *ino)
{
    char dir[SPL_VFS_MEM_PATH_MAX];
    mem_parent(path, dir, sizeof(dir));
    mem_ns_set(&m->cur_ns, path, ino);
    struct mem_op *op = mem_op_push(m, ino ? OP_LINK : OP_UNLINK);
    op->ino = ino;
    op->path = mem_xstrdup(path);
    op->dir = mem_xstrdup(dir);
}

/* Make one logged op's effect durable. */
static void mem_apply_op(struct spl_vfs_mem *m, struct mem_op *op)
{
    switch (op->kind) {
    case OP_WRITE:
        mem_bytes_write(&op->ino->dur, &op->ino->dur_size, &op->ino->dur_cap, op->off,
                        op->bytes, op->len);
        break;
    case OP_RESIZE:
        if (op->len < op->ino->dur_size)
            op->ino->dur_size = op->len;
        else
            mem_bytes_resize(&op->ino->dur, &op->ino->dur_size, &op->ino->dur_cap, op->len);
        break;
    case OP_LINK:
    case OP_UNLINK:
        mem_ns_set(&m->dur_ns, op->path, op->ino);
        break;
    }
}

static bool mem_op_is_file(const struct mem_op *op, const struct mem_inode *ino)
{
    return (op->kind == OP_WRITE || op->kind == OP_RESIZE) && op->ino == ino;
}

static bool mem_op_is_dir(const struct mem_op *op, const char *dir)
{
    return (op->kind == OP_LINK || op->kind == OP_UNLINK) && strcmp(op->dir, dir) == 0;
}

/* Remove the ops of one file (sync: their effect is in `dur` already) or of one
 * directory (applied to the durable namespace in order). */
static void mem_ops_remove(struct spl_vfs_mem *m, const struct mem_inode *ino, const char *dir)
{
    uint64_t w = 0;
    for (uint64_t i = 0; i < m->op_count; i++) {
        struct mem_op *op = &m->ops[i];
        bool match = ino ? mem_op_is_file(op, ino) : mem_op_is_dir(op, dir);
        if (!match) {
            m->ops[w++] = *op;
            continue;
        }
        if (dir)
            mem_apply_op(m, op);
        mem_op_free(op);
    }
    m->op_count = w;
}

/* ---- faults ---- */

/* Count the call; 0 to go on, MEM_CRASH when this call is the crash point, or the
 * injected error. */
static int mem_enter(struct spl_vfs_mem *m, enum spl_vfs_fault_class cls)
{
    m->count[cls]++;
    if (m->crashed)
        return -EIO;
    if (cls != SPL_VFS_FAULT_READ) {
        m->mutations++;
        if (m->crash_at && m->mutations == m->crash_at) {
            m->crashed = true;
            return MEM_CRASH;
        }
    }
    uint64_t at = m->fail_at[cls];
    if (at && (m->count[cls] == at || (m->fail_persist[cls] && m->count[cls] > at)))
        return m->fail_err[cls];
    return 0;
}

static struct mem_inode *mem_fd_get(struct spl_vfs_mem *m, int fd)
{
    if (fd < 0 || (uint32_t)fd >= m->fd_cap)
        return NULL;
    return m->fds[fd].ino;
}

/* ---- the methods ---- */

static int mem_open(void *ctx, const char *path, int flags, int *fd_out)
{
    struct spl_vfs_mem *m = ctx;
    char dir[SPL_VFS_MEM_PATH_MAX];
    if (strlen(path) >= sizeof(dir) || path[0] != '/')
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    int rc = m->crashed ? -EIO : 0;
    if (rc != 0)
        goto out;
    struct mem_dent *d = mem_ns_find(&m->cur_ns, path);
    struct mem_inode *ino = d ? d->ino : NULL;
    if (!ino && strcmp(path, "/") != 0 && !(flags & SPL_VFS_CREATE)) {
        rc = -ENOENT;
        goto out;
    }
    if (ino && (flags & SPL_VFS_CREATE) && (flags & SPL_VFS_EXCL)) {
        rc = -EEXIST;
        goto out;
    }
    if (ino && ino->is_dir != !!(flags & SPL_VFS_DIRECTORY)) {
        rc = ino->is_dir ? -EISDIR : -ENOTDIR;
        goto out;
    }
    if (!ino && strcmp(path, "/") == 0) {
        rc = -EISDIR; /* the root has no inode; nothing needs to open it */
        goto out;
    }
    if (!ino) {
        mem_parent(path, dir, sizeof(dir));
        if (!mem_dir_exists(m, dir)) {
            rc = -ENOENT;
            goto out;
        }
        rc = mem_enter(m, SPL_VFS_FAULT_META);
        if (rc != 0) {
            rc = rc == MEM_CRASH ? -EIO : rc;
            goto out;
        }
        ino = mem_inode_new(m, false);
        mem_name_change(m, path, ino);
    }
    uint32_t slot = 0;
    while (slot < m->fd_cap && m->fds[slot].ino)
        slot++;
    if (slot == m->fd_cap) {
        uint32_t cap = m->fd_cap ? m->fd_cap * 2 : 64;
        m->fds = mem_xrealloc(m->fds, sizeof(m->fds[0]) * cap);
        memset(m->fds + m->fd_cap, 0, sizeof(m->fds[0]) * (cap - m->fd_cap));
        m->fd_cap = cap;
    }
    m->fds[slot].ino = ino;
    m->fds[slot].writable = (flags & SPL_VFS_RDWR) != 0;
    ino->open_count++;
    *fd_out = (int)slot;
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_close(void *ctx, int fd)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    if (ino) {
        ino->open_count--;
        m->fds[fd].ino = NULL;
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return ino ? 0 : -EBADF;
}

static int mem_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = ino ? mem_enter(m, SPL_VFS_FAULT_READ) : -EBADF;
    if (rc == 0) {
        uint64_t n = off < ino->cur_size ? ino->cur_size - off : 0;
        if (n > len)
            n = len;
        if (n)
            memcpy(buf, ino->cur + off, (size_t)n);
        *got = (size_t)n;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Apply [0, limit) bytes of the iovec to the current bytes and log them. */
static void mem_do_write(struct spl_vfs_mem *m, struct mem_inode *ino, const struct iovec *iov,
                         int iovcnt, uint64_t off, uint64_t limit)
{
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (limit > total)
        limit = total;
    if (limit == 0)
        return;
    uint8_t *bytes = malloc((size_t)limit);
    ASSERT(bytes != NULL);
    uint64_t at = 0;
    for (int i = 0; i < iovcnt && at < limit; i++) {
        uint64_t n = iov[i].iov_len < limit - at ? iov[i].iov_len : limit - at;
        memcpy(bytes + at, iov[i].iov_base, (size_t)n);
        at += n;
    }
    mem_bytes_write(&ino->cur, &ino->cur_size, &ino->cur_cap, off, bytes, limit);
    struct mem_op *op = mem_op_push(m, OP_WRITE);
    op->ino = ino;
    op->off = off;
    op->len = limit;
    op->bytes = bytes;
}

static int mem_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = !ino ? -EBADF : !m->fds[fd].writable ? -EBADF : mem_enter(m, SPL_VFS_FAULT_WRITE);
    if (rc == MEM_CRASH) {
        mem_do_write(m, ino, iov, iovcnt, off, m->tear_bytes);
        rc = -EIO;
    } else if (rc == 0) {
        mem_do_write(m, ino, iov, iovcnt, off, UINT64_MAX);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_fdatasync(void *ctx, int fd)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = ino ? mem_enter(m, SPL_VFS_FAULT_SYNC) : -EBADF;
    if (rc == MEM_CRASH) {
        rc = -EIO;
    } else if (rc == 0) {
        mem_inode_make_durable(ino);
        mem_ops_remove(m, ino, NULL);
    } else if (ino && !m->crashed) {
        /* writeback error: the unsynced writes are gone for good */
        mem_inode_revert(ino);
        mem_ops_remove(m, ino, NULL);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_fsize(void *ctx, int fd, uint64_t *size_out)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = !ino ? -EBADF : m->crashed ? -EIO : 0;
    if (rc == 0)
        *size_out = ino->cur_size;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void mem_resize(struct spl_vfs_mem *m, struct mem_inode *ino, uint64_t size)
{
    if (size < ino->cur_size)
        ino->cur_size = size;
    else
        mem_bytes_resize(&ino->cur, &ino->cur_size, &ino->cur_cap, size);
    struct mem_op *op = mem_op_push(m, OP_RESIZE);
    op->ino = ino;
    op->len = size;
}

static int mem_ftruncate(void *ctx, int fd, uint64_t size)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = ino && m->fds[fd].writable ? mem_enter(m, SPL_VFS_FAULT_META) : -EBADF;
    if (rc == 0)
        mem_resize(m, ino, size);
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_fallocate(void *ctx, int fd, uint64_t off, uint64_t len)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_inode *ino = mem_fd_get(m, fd);
    int rc = ino && m->fds[fd].writable ? mem_enter(m, SPL_VFS_FAULT_META) : -EBADF;
    if (rc == 0 && off + len > ino->cur_size)
        mem_resize(m, ino, off + len);
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_rename(void *ctx, const char *from, const char *to)
{
    struct spl_vfs_mem *m = ctx;
    char dir[SPL_VFS_MEM_PATH_MAX];
    if (strlen(to) >= sizeof(dir) || strlen(from) >= sizeof(dir))
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    struct mem_dent *d = mem_ns_find(&m->cur_ns, from);
    struct mem_dent *t = mem_ns_find(&m->cur_ns, to);
    mem_parent(to, dir, sizeof(dir));
    int rc = !d ? -ENOENT : !mem_dir_exists(m, dir) ? -ENOENT : 0;
    if (rc == 0 && d->ino->is_dir)
        rc = -EISDIR; /* the log never renames directories */
    if (rc == 0 && t && t->ino->is_dir)
        rc = -EISDIR;
    if (rc == 0)
        rc = mem_enter(m, SPL_VFS_FAULT_META);
    if (rc == 0 && strcmp(from, to) != 0) {
        struct mem_inode *ino = d->ino;
        mem_name_change(m, to, ino);
        mem_name_change(m, from, NULL);
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_unlink(void *ctx, const char *path)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_dent *d = mem_ns_find(&m->cur_ns, path);
    int rc = !d ? -ENOENT : d->ino->is_dir ? -EISDIR : mem_enter(m, SPL_VFS_FAULT_META);
    if (rc == 0) {
        mem_name_change(m, path, NULL);
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_mkdir(void *ctx, const char *path)
{
    struct spl_vfs_mem *m = ctx;
    char dir[SPL_VFS_MEM_PATH_MAX];
    if (strlen(path) >= sizeof(dir) || path[0] != '/')
        return -EINVAL;
    pthread_mutex_lock(&m->mu);
    mem_parent(path, dir, sizeof(dir));
    int rc = strcmp(path, "/") == 0 || mem_ns_find(&m->cur_ns, path) ? -EEXIST
             : !mem_dir_exists(m, dir)                               ? -ENOENT
                                                                     : 0;
    if (rc == 0)
        rc = mem_enter(m, SPL_VFS_FAULT_META);
    if (rc == 0)
        mem_name_change(m, path, mem_inode_new(m, true));
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static bool mem_dir_empty(struct spl_vfs_mem *m, const char *path)
{
    char dir[SPL_VFS_MEM_PATH_MAX];
    for (uint32_t i = 0; i < m->cur_ns.count; i++) {
        mem_parent(m->cur_ns.ents[i].path, dir, sizeof(dir));
        if (strcmp(dir, path) == 0)
            return false;
    }
    return true;
}

static int mem_rmdir(void *ctx, const char *path)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    struct mem_dent *d = mem_ns_find(&m->cur_ns, path);
    int rc = !d                  ? -ENOENT
             : !d->ino->is_dir   ? -ENOTDIR
             : !mem_dir_empty(m, path) ? -ENOTEMPTY
                                       : mem_enter(m, SPL_VFS_FAULT_META);
    if (rc == 0) {
        mem_name_change(m, path, NULL);
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_sync_dir(void *ctx, const char *path)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    int rc = mem_dir_exists(m, path) ? mem_enter(m, SPL_VFS_FAULT_SYNC) : -ENOENT;
    if (rc == 0) {
        mem_ops_remove(m, NULL, path);
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static int mem_list_dir(void *ctx, const char *path, spl_vfs_list_fn fn, void *arg)
{
    struct spl_vfs_mem *m = ctx;
    char dir[SPL_VFS_MEM_PATH_MAX];
    pthread_mutex_lock(&m->mu);
    int rc = m->crashed ? -EIO : mem_dir_exists(m, path) ? 0 : -ENOENT;
    char **names = NULL;
    uint32_t n = 0;
    if (rc == 0) {
        names = calloc(m->cur_ns.count + 1, sizeof(char *));
        ASSERT(names != NULL);
        for (uint32_t i = 0; i < m->cur_ns.count; i++) {
            mem_parent(m->cur_ns.ents[i].path, dir, sizeof(dir));
            if (strcmp(dir, path) != 0)
                continue;
            const char *base = strrchr(m->cur_ns.ents[i].path, '/') + 1;
            names[n++] = mem_xstrdup(base);
        }
    }
    pthread_mutex_unlock(&m->mu);
    /* the callback runs unlocked: it may call back into the vfs */
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = fn(arg, names[i]);
    for (uint32_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int mem_syncfs(void *ctx, int fd)
{
    struct spl_vfs_mem *m = ctx;
    pthread_mutex_lock(&m->mu);
    int rc = mem_fd_get(m, fd) ? mem_enter(m, SPL_VFS_FAULT_SYNC) : -EBADF;
    if (rc == 0) {
        for (uint32_t i = 0; i < m->inode_count; i++)
            mem_inode_make_durable(m->inodes[i]);
        for (uint64_t i = 0; i < m->op_count; i++) {
            if (m->ops[i].kind == OP_LINK || m->ops[i].kind == OP_UNLINK)
                mem_apply_op(m, &m->ops[i]);
            mem_op_free(&m->ops[i]);
        }
        m->op_count = 0;
        mem_gc(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc == MEM_CRASH ? -EIO : rc;
}

static const struct spl_vfs_ops mem_ops = {
    .open = mem_open,
    .close = mem_close,
    .pread = mem_pread,
    .pwritev = mem_pwritev,
    .fdatasync = mem_fdatasync,
    .fsize = mem_fsize,
    .ftruncate = mem_ftruncate,
    .fallocate = mem_fallocate,
    .rename = mem_rename,
    .unlink = mem_unlink,
    .mkdir = mem_mkdir,
    .rmdir = mem_rmdir,
    .sync_dir = mem_sync_dir,
    .list_dir = mem_list_dir,
    .syncfs = mem_syncfs,
};

/* ---- control ---- */

int spl_vfs_mem_create(struct spl_vfs_mem **out)
{
    struct spl_vfs_mem *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->vfs.ops = &mem_ops;
    m->vfs.ctx = m;
    *out = m;
    return 0;
}

void spl_vfs_mem_destroy(struct spl_vfs_mem *m)
{
    if (!m)
        return;
    for (uint64_t i = 0; i < m->op_count; i++)
        mem_op_free(&m->ops[i]);
    free(m->ops);
    mem_ns_clear(&m->cur_ns);
    mem_ns_clear(&m->dur_ns);
    free(m->cur_ns.ents);
    free(m->dur_ns.ents);
    for (uint32_t i = 0; i < m->inode_count; i++) {
        free(m->inodes[i]->cur);
        free(m->inodes[i]->dur);
        free(m->inodes[i]);
    }
    free(m->inodes);
    free(m->fds);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const struct spl_vfs *spl_vfs_mem_vfs(struct spl_vfs_mem *m) { return &m->vfs; }

uint64_t spl_vfs_mem_count(struct spl_vfs_mem *m, enum spl_vfs_fault_class cls)
{
    ASSERT(cls < SPL_VFS_FAULT_CLASSES);
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->count[cls];
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t spl_vfs_mem_mutations(struct spl_vfs_mem *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->mutations;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void spl_vfs_mem_fail(struct spl_vfs_mem *m, enum spl_vfs_fault_class cls, uint64_t nth,
                      int err, bool persist)
{
    ASSERT(cls < SPL_VFS_FAULT_CLASSES);
    ASSERT(nth == 0 || err < 0);
    pthread_mutex_lock(&m->mu);
    m->fail_at[cls] = nth ? m->count[cls] + nth : 0;
    m->fail_err[cls] = err;
    m->fail_persist[cls] = persist;
    pthread_mutex_unlock(&m->mu);
}

void spl_vfs_mem_crash_at(struct spl_vfs_mem *m, uint64_t nth, uint64_t tear_bytes)
{
    pthread_mutex_lock(&m->mu);
    m->crash_at = nth ? m->mutations + nth : 0;
    m->tear_bytes = tear_bytes;
    pthread_mutex_unlock(&m->mu);
}

void spl_vfs_mem_crash_now(struct spl_vfs_mem *m)
{
    pthread_mutex_lock(&m->mu);
    m->crashed = true;
    pthread_mutex_unlock(&m->mu);
}

bool spl_vfs_mem_crashed(struct spl_vfs_mem *m)
{
    pthread_mutex_lock(&m->mu);
    bool c = m->crashed;
    pthread_mutex_unlock(&m->mu);
    return c;
}

uint64_t spl_vfs_mem_unsynced(struct spl_vfs_mem *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->op_count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void spl_vfs_mem_reboot(struct spl_vfs_mem *m, enum spl_vfs_reboot_mode mode, uint64_t keep)
{
    pthread_mutex_lock(&m->mu);
    if (mode == SPL_VFS_REBOOT_DROP)
        keep = 0;
    if (mode == SPL_VFS_REBOOT_KEEP)
        keep = UINT64_MAX;
    for (uint64_t i = 0; i < m->op_count; i++) {
        if (mode == SPL_VFS_REBOOT_TORN_ONE) {
            if (i == keep && m->ops[i].kind == OP_WRITE)
                m->ops[i].len /= 2;
            if (i == keep)
                mem_apply_op(m, &m->ops[i]);
        } else if (i < keep) {
            mem_apply_op(m, &m->ops[i]);
        }
        mem_op_free(&m->ops[i]);
    }
    m->op_count = 0;
    for (uint32_t i = 0; i < m->fd_cap; i++) {
        if (m->fds[i].ino)
            m->fds[i].ino->open_count--;
        m->fds[i].ino = NULL;
    }
    mem_ns_copy(&m->cur_ns, &m->dur_ns);
    for (uint32_t i = 0; i < m->inode_count; i++)
        mem_inode_revert(m->inodes[i]);
    mem_gc(m);
    memset(m->fail_at, 0, sizeof(m->fail_at));
    m->crash_at = 0;
    m->crashed = false;
    pthread_mutex_unlock(&m->mu);
}

int spl_vfs_mem_poke(struct spl_vfs_mem *m, const char *path, uint64_t off, const void *buf,
                     size_t len)
{
    pthread_mutex_lock(&m->mu);
    struct mem_dent *d = mem_ns_find(&m->cur_ns, path);
    int rc = !d ? -ENOENT : off + len > d->ino->cur_size ? -EINVAL : 0;
    if (rc == 0) {
        memcpy(d->ino->cur + off, buf, len);
        if (off + len <= d->ino->dur_size)
            memcpy(d->ino->dur + off, buf, len);
        for (uint64_t i = 0; i < m->op_count; i++) {
            struct mem_op *op = &m->ops[i];
            if (op->kind != OP_WRITE || op->ino != d->ino)
                continue;
            uint64_t lo = off > op->off ? off : op->off;
            uint64_t hi = off + len < op->off + op->len ? off + len : op->off + op->len;
            if (lo < hi)
                memcpy(op->bytes + (lo - op->off), (const uint8_t *)buf + (lo - off),
                       (size_t)(hi - lo));
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

uint32_t spl_vfs_mem_open_fds(struct spl_vfs_mem *m)
{
    pthread_mutex_lock(&m->mu);
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->fd_cap; i++)
        n += m->fds[i].ino != NULL;
    pthread_mutex_unlock(&m->mu);
    return n;
}
