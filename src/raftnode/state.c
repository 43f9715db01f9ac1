/*
 * state.c - a group's STATE file: which FSM directory is live and what the last snapshot
 * install was (docs/raft-host.md, "on disk").
 *
 * Layout (little-endian): u32 magic "SPLT", u16 version, u16 reserved, u64 group,
 * u64 live_gen, u64 install_index, u64 install_term, u64 install_epoch, u64
 * catchup_index, u32 voter_count, u32 learner_count, u64 voters[], u64 learners[],
 * u32 desc_len, desc bytes, u32 CRC32C of everything before it. Written to STATE.tmp,
 * fdatasync'ed, renamed over STATE, directory fsync'ed: a crash leaves the old or the new
 * file, never a mixture (RAFT-INVARIANTS 19: the rename is the install's switch point).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "raftnode/internal.h"

#define SPL__RN_STATE_MAGIC 0x544c5053u /* "SPLT" */
#define SPL__RN_STATE_VERSION 1
#define SPL__RN_STATE_FIXED (4 + 2 + 2 + 8 * 6 + 4 + 4)

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void spl__rn_state_init(struct spl__rn_state *s)
{
    memset(s, 0, sizeof(*s));
    spl_iobuf_init(&s->install_desc);
}

void spl__rn_state_reset(struct spl__rn_state *s)
{
    spl_iobuf_reset(&s->install_desc);
    spl__rn_state_init(s);
}

int spl__rn_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int spl__rn_state_save(const char *group_dir, const struct spl__rn_state *s)
{
    const struct spl_raft_conf *c = &s->install_conf;
    uint64_t desc_len = spl_iobuf_len(&s->install_desc);
    size_t len = SPL__RN_STATE_FIXED + 8 * (c->voter_count + c->learner_count) + 4 + desc_len + 4;
    uint8_t *buf = calloc(1, len);
    if (!buf)
        return -ENOMEM;
    size_t n = 0;
    put_u32(buf, SPL__RN_STATE_MAGIC);
    buf[4] = SPL__RN_STATE_VERSION;
    n = 8;
    const uint64_t fields[] = {s->group, s->live_gen, s->install_index, s->install_term,
                               s->install_epoch, s->catchup_index};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(fields); i++, n += 8)
        put_u64(buf + n, fields[i]);
    put_u32(buf + n, c->voter_count);
    put_u32(buf + n + 4, c->learner_count);
    n += 8;
    for (uint32_t i = 0; i < c->voter_count; i++, n += 8)
        put_u64(buf + n, c->voters[i]);
    for (uint32_t i = 0; i < c->learner_count; i++, n += 8)
        put_u64(buf + n, c->learners[i]);
    put_u32(buf + n, (uint32_t)desc_len);
    n += 4;
    spl_iobuf_copy_out(&s->install_desc, 0, buf + n, desc_len);
    n += desc_len;
    put_u32(buf + n, spl_crc32c(0, buf, n));
    n += 4;
    ASSERT(n == len);

    char tmp[SPL__RN_PATH_MAX + 16], final[SPL__RN_PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s/STATE.tmp", group_dir);
    snprintf(final, sizeof(final), "%s/STATE", group_dir);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out_free;
    }
    rc = write_all(fd, buf, len);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc == 0)
        rc = spl__rn_fsync_dir(group_dir);
out_free:
    free(buf);
    return rc;
}

static int state_parse(const uint8_t *buf, size_t len, struct spl__rn_state *out)
{
    if (len < SPL__RN_STATE_FIXED + 8 || get_u32(buf) != SPL__RN_STATE_MAGIC)
        return SPL_ECORRUPT;
    if (get_u32(buf + len - 4) != spl_crc32c(0, buf, len - 4))
        return SPL_ECORRUPT;
    if (buf[4] != SPL__RN_STATE_VERSION)
        return SPL_EVERSION;
    size_t n = 8;
    uint64_t *fields[] = {&out->group, &out->live_gen, &out->install_index, &out->install_term,
                          &out->install_epoch, &out->catchup_index};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(fields); i++, n += 8)
        *fields[i] = get_u64(buf + n);
    struct spl_raft_conf *c = &out->install_conf;
    c->voter_count = get_u32(buf + n);
    c->learner_count = get_u32(buf + n + 4);
    n += 8;
    if (c->voter_count + (uint64_t)c->learner_count > SPL_RAFT_PEERS_MAX ||
        n + 8 * (c->voter_count + c->learner_count) + 8 > len)
        return SPL_ECORRUPT;
    for (uint32_t i = 0; i < c->voter_count; i++, n += 8)
        c->voters[i] = get_u64(buf + n);
    for (uint32_t i = 0; i < c->learner_count; i++, n += 8)
        c->learners[i] = get_u64(buf + n);
    uint32_t desc_len = get_u32(buf + n);
    n += 4;
    if (desc_len != len - 4 - n)
        return SPL_ECORRUPT;
    if (c->voter_count + c->learner_count > 0 && !spl_raft_conf_is_valid(c))
        return SPL_ECORRUPT;
    return spl_iobuf_append(&out->install_desc, buf + n, desc_len);
}

int spl__rn_state_load(const char *group_dir, struct spl__rn_state *out)
{
    char path[SPL__RN_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/STATE", group_dir);
    spl__rn_state_init(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || size > (off_t)(SPL_RAFT_SNAP_DATA_MAX + 4096)) {
        close(fd);
        return size < 0 ? -errno : SPL_ECORRUPT;
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t got = pread(fd, buf, (size_t)size, 0);
    close(fd);
    if (got != size)
        rc = got < 0 ? -errno : SPL_ECORRUPT;
    else
        rc = state_parse(buf, (size_t)size, out);
    free(buf);
    if (rc != 0)
        spl__rn_state_reset(out);
    return rc;
}
