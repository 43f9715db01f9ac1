/*
 * filecopy.c - the installer side of snapshot file copy: pull every file of a snapshot
 * from a source replica, piece by piece, into a staging directory.
 *
 * Each piece is checked against the CRC32C its reply carries before a byte of it is
 * written; a failed or corrupt piece is fetched again from the same offset (the copy
 * resumes, it never restarts a file), after a short doubling sleep, rotating to the next
 * source every third failure in a row. A throttle shared by all installs of the host
 * bounds the bytes per second. D (RAFT-INVARIANTS 17) is the largest commit index any
 * piece reported: each reply carries the source's commit index read after its bytes.
 * Threads: an install thread (blocking calls); the throttle is shared (locked).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/internal.h"

void spl__rn_throttle_init(struct spl__rn_throttle *t, uint64_t bytes_per_sec)
{
    pthread_mutex_init(&t->mu, NULL);
    t->bytes_per_sec = bytes_per_sec;
    t->next_ns = 0;
}

uint64_t spl__rn_throttle_take(struct spl__rn_throttle *t, uint64_t n)
{
    if (!t || t->bytes_per_sec == 0 || n == 0)
        return 0;
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&t->mu);
    if (t->next_ns < now)
        t->next_ns = now;
    uint64_t start = t->next_ns;
    t->next_ns += (uint64_t)((double)n * 1e9 / (double)t->bytes_per_sec);
    pthread_mutex_unlock(&t->mu);
    if (start <= now)
        return 0;
    spl_sleep_ns(start - now);
    return start - now;
}

static int write_piece(int fd, const struct spl_iobuf *data, uint64_t offset)
{
    uint64_t done = 0, len = spl_iobuf_len(data);
    while (done < len) {
        struct iovec iov[64];
        uint64_t bytes;
        int n = spl_iobuf_to_iovec(data, done, iov, 64, &bytes);
        ssize_t w = pwritev(fd, iov, n, (off_t)(offset + done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (uint64_t)w;
    }
    return 0;
}

/* One failed fetch: count it, maybe rotate the source, sleep. Returns rc when the copy
 * must give up, 0 to retry. */
static int copy_failed(struct spl__rn_copy *c, int rc, uint32_t *fails, uint32_t *src,
                       uint32_t *sleep_ms, const char *name, uint64_t offset)
{
    c->retries++;
    (*fails)++;
    LOG_WARN(SPL__RN_TAG, "group %llu: snapshot %llu file %s at %llu from node %llu: %s (try %u)",
             (unsigned long long)c->group, (unsigned long long)c->snap_index, name,
             (unsigned long long)offset, (unsigned long long)c->sources[*src], spl_strerror(rc),
             *fails);
    if (c->retry_max && *fails >= c->retry_max)
        return rc;
    if (*fails % 3 == 0 && c->source_count > 1)
        *src = (*src + 1) % c->source_count;
    spl_sleep_ns((uint64_t)*sleep_ms * SPL_NS_PER_MS);
    *sleep_ms = *sleep_ms * 2 > 1000 ? 1000 : *sleep_ms * 2;
    return 0;
}

/* Copy one file; *src is the source index to use (kept across files). */
static int copy_file(struct spl__rn_copy *c, const struct spl_fsm_file *f, uint32_t *src)
{
    char path[SPL__RN_PATH_MAX + SPL_RAFTLOG_SNAP_NAME_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", c->staging_dir, f->name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    uint64_t offset = 0;
    uint32_t fails = 0, sleep_ms = c->retry_sleep_ms ? c->retry_sleep_ms : 20;
    int rc = 0;
    for (;;) {
        if (c->stop && atomic_load(c->stop)) {
            rc = SPL_ESHUTDOWN;
            break;
        }
        spl__rn_throttle_take(c->throttle, c->piece_bytes);
        struct spl__rn_getfile_resp resp = {0};
        struct spl_iobuf data;
        spl_iobuf_init(&data);
        rc = c->fetch->get_file(c->fetch_ctx, c->sources[*src], c->group, c->snap_index,
                                c->snap_term, f->name, offset, c->piece_bytes, &resp, &data);
        uint64_t len = spl_iobuf_len(&data);
        if (rc == 0 && !resp.missing &&
            (len > c->piece_bytes || spl_iobuf_crc32c(&data, 0, 0, len) != resp.crc32c)) {
            c->crc_errors++;
            c->refetched_bytes += len;
            rc = SPL_ECORRUPT;
        }
        if (rc == 0 && !resp.missing)
            rc = write_piece(fd, &data, offset);
        spl_iobuf_reset(&data);
        if (rc == -EIO || rc == -ENOSPC)
            break; /* local disk: give up */
        if (rc != 0) {
            rc = copy_failed(c, rc, &fails, src, &sleep_ms, f->name, offset);
            if (rc != 0)
                break;
            continue;
        }
        fails = 0;
        sleep_ms = c->retry_sleep_ms ? c->retry_sleep_ms : 20;
        if (resp.commit_index > c->catchup_index)
            c->catchup_index = resp.commit_index;
        if (resp.missing) {
            close(fd);
            unlink(path);
            return 0;
        }
        offset += len;
        c->bytes += len;
        if (resp.eof || len == 0)
            break;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

int spl__rn_copy_run(struct spl__rn_copy *c)
{
    ASSERT(c->source_count > 0 && c->fetch && c->piece_bytes > 0);
    if (mkdir(c->staging_dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    uint32_t src = 0;
    for (uint32_t i = 0; i < c->file_count; i++) {
        int rc = copy_file(c, &c->files[i], &src);
        if (rc != 0)
            return rc;
    }
    return spl__rn_fsync_dir(c->staging_dir);
}
