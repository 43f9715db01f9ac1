/*
 * descriptor.c - the application part of a snapshot as the Raft core carries it
 * (spl_raft_snapshot_meta.data): the list of files and the FSM blob.
 *
 * Wire form (version 1): u32 magic "SPLD", u8 version, varint file_count, then per file
 * varint name_len, name bytes, varint size; varint blob_len, blob bytes; u32 CRC32C (LE)
 * of everything before it. Decoding checks every length against its limit and the
 * buffer, the names (fsm.h rules) and the checksum.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "raftnode/internal.h"

#define SPL__RN_DESC_MAGIC 0x444c5053u /* "SPLD" */
#define SPL__RN_DESC_VERSION 1

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static bool varint_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = p[(*pos)++];
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int spl__rn_desc_encode(uint32_t file_count, const struct spl_fsm_file *files,
                        const void *blob, uint32_t blob_len, struct spl_iobuf *out)
{
    if (file_count > SPL_RAFTLOG_SNAP_FILES_MAX || blob_len > SPL_RAFTNODE_FSM_BLOB_MAX)
        return SPL_ETOOBIG;
    uint64_t size = 4 + 1 + 10 + 10 + blob_len + 4;
    for (uint32_t i = 0; i < file_count; i++) {
        if (!spl_fsm_name_is_valid(files[i].name))
            return SPL_EINVAL_ARG;
        size += 20 + strlen(files[i].name);
    }
    if (size > SPL_RAFT_SNAP_DATA_MAX)
        return SPL_ETOOBIG;
    uint8_t *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    size_t n = 0;
    put_u32(buf, SPL__RN_DESC_MAGIC);
    n = 4;
    buf[n++] = SPL__RN_DESC_VERSION;
    n += varint_put(buf + n, file_count);
    for (uint32_t i = 0; i < file_count; i++) {
        size_t len = strlen(files[i].name);
        n += varint_put(buf + n, len);
        memcpy(buf + n, files[i].name, len);
        n += len;
        n += varint_put(buf + n, files[i].size);
    }
    n += varint_put(buf + n, blob_len);
    if (blob_len)
        memcpy(buf + n, blob, blob_len);
    n += blob_len;
    put_u32(buf + n, spl_crc32c(0, buf, n));
    n += 4;
    ASSERT(n <= size);
    int rc = spl_iobuf_append(out, buf, n);
    free(buf);
    return rc;
}

void spl__rn_desc_free(struct spl__rn_desc *d)
{
    free(d->owned);
    memset(d, 0, sizeof(*d));
}

/* Parse buf[0..len) (checksum verified) into d, whose owned block has room for the
 * file table and names. */
static int desc_parse(const uint8_t *buf, size_t len, struct spl__rn_desc *d)
{
    size_t pos = 5;
    uint64_t count, v;
    if (!varint_get(buf, len, &pos, &count) || count > SPL_RAFTLOG_SNAP_FILES_MAX ||
        count > len)
        return SPL_ECORRUPT;
    size_t names_room = len;
    d->owned = malloc(count * sizeof(struct spl_fsm_file) + names_room + 1);
    if (!d->owned)
        return -ENOMEM;
    d->files = d->owned;
    char *names = (char *)d->owned + count * sizeof(struct spl_fsm_file);
    for (uint64_t i = 0; i < count; i++) {
        if (!varint_get(buf, len, &pos, &v) || v == 0 || v > SPL_RAFTLOG_SNAP_NAME_MAX ||
            v > len - pos)
            return SPL_ECORRUPT;
        memcpy(names, buf + pos, v);
        names[v] = '\0';
        pos += v;
        d->files[i].name = names;
        if (strlen(names) != v || !spl_fsm_name_is_valid(names))
            return SPL_ECORRUPT;
        names += v + 1;
        if (!varint_get(buf, len, &pos, &d->files[i].size))
            return SPL_ECORRUPT;
        d->file_count = (uint32_t)i + 1;
    }
    if (!varint_get(buf, len, &pos, &v) || v > SPL_RAFTNODE_FSM_BLOB_MAX || v != len - pos)
        return SPL_ECORRUPT;
    d->blob_len = (uint32_t)v;
    d->blob = v ? (const uint8_t *)names : NULL;
    memcpy(names, buf + pos, v);
    return 0;
}

int spl__rn_desc_decode(const struct spl_iobuf *in, struct spl__rn_desc *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t len = spl_iobuf_len(in);
    if (len < 4 + 1 + 1 + 1 + 4)
        return SPL_ECORRUPT;
    if (len > SPL_RAFT_SNAP_DATA_MAX)
        return SPL_ETOOBIG;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    spl_iobuf_copy_out(in, 0, buf, len);
    int rc = SPL_ECORRUPT;
    if (get_u32(buf) != SPL__RN_DESC_MAGIC || get_u32(buf + len - 4) != spl_crc32c(0, buf, len - 4))
        goto out;
    rc = SPL_EVERSION;
    if (buf[4] != SPL__RN_DESC_VERSION)
        goto out;
    rc = desc_parse(buf, len - 4, out);
out:
    free(buf);
    if (rc != 0)
        spl__rn_desc_free(out);
    return rc;
}
