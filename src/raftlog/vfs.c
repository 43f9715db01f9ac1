/* vfs.c - helpers shared by every `struct spl_vfs` user; see vfs.h. */
#include "raftlog/vfs.h"

#include <errno.h>

#include "base/assert.h"
#include "base/errors.h"

int spl_vfs_pread_full(const struct spl_vfs *v, int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    int rc = spl_vfs_pread(v, fd, buf, len, off, &got);
    if (rc != 0)
        return rc;
    ASSERT(got <= len);
    return got == len ? 0 : SPL_ECORRUPT;
}

int spl_vfs_write_zeros(const struct spl_vfs *v, int fd, uint64_t off, uint64_t len)
{
    static const char zeros[64 << 10];
    struct iovec iov[16];
    while (len > 0) {
        int n = 0;
        uint64_t batch = 0;
        while (n < (int)SPL_ARRAY_SIZE(iov) && batch < len) {
            uint64_t part = len - batch < sizeof(zeros) ? len - batch : sizeof(zeros);
            iov[n].iov_base = (void *)zeros;
            iov[n].iov_len = (size_t)part;
            batch += part;
            n++;
        }
        int rc = spl_vfs_pwritev(v, fd, iov, n, off);
        if (rc != 0)
            return rc;
        off += batch;
        len -= batch;
    }
    return 0;
}
