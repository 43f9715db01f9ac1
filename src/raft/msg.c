/*
 * msg.c - the wire form of `struct spl_raft_msg` (see raft.h for the layout).
 *
 * All fixed fields and per-entry headers come first, in one contiguous header, ending in
 * a CRC32C that covers the header and every payload byte; the payloads follow, in
 * order, by reference. So encoding a batch appends one small buffer plus references
 * (no payload copy), and decoding references the input's blocks. The decoder trusts
 * nothing: it never reads past the input, checks the version, every count and size
 * against limits.h, index arithmetic, entry types, conf-entry payloads and the checksum.
 */
#include <string.h>

#include "base/crc32c.h"
#include "base/errors.h"
#include "raft/raft_int.h"

#define SPL__MSG_VERSION 1
#define SPL__MSG_FIXED_MAX (3 + 10 * SPL__VARINT_MAX)
#define SPL__MSG_ENTRY_HDR_MAX (1 + 2 * SPL__VARINT_MAX)
#define SPL__MSG_SNAP_HDR_MAX (4 * SPL__VARINT_MAX + SPL__CONF_WIRE_MAX)
#define SPL__MSG_HDR_MAX                                                                 \
    (SPL__MSG_FIXED_MAX + SPL_RAFT_BATCH_ENTRIES_MAX * SPL__MSG_ENTRY_HDR_MAX +          \
     SPL__MSG_SNAP_HDR_MAX + 4)

void spl_raft_msg_init(struct spl_raft_msg *m)
{
    memset(m, 0, sizeof(*m));
    spl_iobuf_init(&m->snapshot.data);
}

void spl_raft_msg_release(struct spl_raft_msg *m)
{
    for (uint32_t i = 0; i < m->entry_count; i++)
        spl_iobuf_reset(&m->entries[i].data);
    spl_iobuf_reset(&m->snapshot.data);
}

const char *spl_raft_msg_type_name(int type)
{
    switch (type) {
#define XX(name, code, str)                                                              \
    case code:                                                                           \
        return str;
        SPL_RAFT_MSG_TYPES(XX)
#undef XX
    default:
        return "?";
    }
}

static bool spl__msg_type_known(uint64_t type)
{
    switch (type) {
#define XX(name, code, str) case code:
        SPL_RAFT_MSG_TYPES(XX)
#undef XX
        return true;
    default:
        return false;
    }
}

/* Limits every valid message obeys: entry count, payload sizes, index arithmetic. */
static int spl__msg_check_limits(uint8_t type, uint64_t index, uint64_t count,
                                 uint64_t total_bytes, uint64_t max_entry_bytes)
{
    if (count > SPL_RAFT_BATCH_ENTRIES_MAX)
        return SPL_ETOOBIG;
    if (count > 0 && type != SPL_RAFT_MSG_APPEND)
        return SPL_ECORRUPT;
    if (max_entry_bytes > SPL_RAFT_ENTRY_MAX)
        return SPL_ETOOBIG;
    if (count > 1 && total_bytes > SPL_RAFT_BATCH_BYTES_MAX)
        return SPL_ETOOBIG;
    if (index > UINT64_MAX - count - 1)
        return SPL_ECORRUPT;
    return 0;
}

static size_t spl__msg_put_header(const struct spl_raft_msg *m, uint8_t *p)
{
    size_t n = 0;
    p[n++] = SPL__MSG_VERSION;
    p[n++] = m->type;
    p[n++] = m->reject ? 1 : 0;
    const uint64_t fields[] = {m->group,  m->from,   m->to,          m->term,
                               m->log_term, m->index, m->commit, m->reject_hint,
                               m->context, m->entry_count};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(fields); i++)
        n += spl__varint_put(p + n, fields[i]);
    for (uint32_t i = 0; i < m->entry_count; i++) {
        p[n++] = m->entries[i].type;
        n += spl__varint_put(p + n, m->entries[i].term);
        n += spl__varint_put(p + n, spl_iobuf_len(&m->entries[i].data));
    }
    if (m->type == SPL_RAFT_MSG_SNAPSHOT) {
        n += spl__varint_put(p + n, m->snapshot.index);
        n += spl__varint_put(p + n, m->snapshot.term);
        n += spl__varint_put(p + n, m->snapshot.epoch);
        n += spl__conf_put(p + n, &m->snapshot.conf);
        n += spl__varint_put(p + n, spl_iobuf_len(&m->snapshot.data));
    }
    return n;
}

int spl_raft_msg_encode(const struct spl_raft_msg *m, struct spl_iobuf *out)
{
    uint64_t total = 0, biggest = 0;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        uint64_t len = spl_iobuf_len(&m->entries[i].data);
        total += len;
        biggest = len > biggest ? len : biggest;
        ASSERT_CMP(m->entries[i].index, ==, m->index + 1 + i);
    }
    int rc = spl__msg_check_limits(m->type, m->index, m->entry_count, total, biggest);
    if (rc != 0 || spl_iobuf_len(&m->snapshot.data) > SPL_RAFT_SNAP_DATA_MAX)
        return rc == SPL_ECORRUPT ? SPL_EINVAL_ARG : SPL_ETOOBIG;
    uint8_t hdr[SPL__MSG_HDR_MAX];
    size_t n = spl__msg_put_header(m, hdr);
    uint32_t crc = spl_crc32c(0, hdr, n);
    for (uint32_t i = 0; i < m->entry_count; i++)
        crc = spl_iobuf_crc32c(&m->entries[i].data, crc, 0, spl_iobuf_len(&m->entries[i].data));
    crc = spl_iobuf_crc32c(&m->snapshot.data, crc, 0, spl_iobuf_len(&m->snapshot.data));
    for (int i = 0; i < 4; i++)
        hdr[n++] = (uint8_t)(crc >> (8 * i));
    uint64_t old_len = spl_iobuf_len(out);
    struct spl_iobuf tmp;
    spl_iobuf_init(&tmp);
    rc = spl_iobuf_append(&tmp, hdr, n);
    for (uint32_t i = 0; rc == 0 && i < m->entry_count; i++)
        rc = spl_iobuf_append_ref(&tmp, &m->entries[i].data, 0,
                                  spl_iobuf_len(&m->entries[i].data));
    if (rc == 0)
        rc = spl_iobuf_append_ref(&tmp, &m->snapshot.data, 0, spl_iobuf_len(&m->snapshot.data));
    if (rc == 0)
        rc = spl_iobuf_append_ref(out, &tmp, 0, spl_iobuf_len(&tmp));
    spl_iobuf_reset(&tmp);
    ASSERT(rc != 0 || spl_iobuf_len(out) > old_len);
    return rc;
}

/* ---- decoding ---- */

struct spl__dec {
    const uint8_t *p;
    size_t len;
    size_t pos;
    bool ok;
};

static uint64_t spl__dec_u64(struct spl__dec *d)
{
    uint64_t v = 0;
    if (d->ok && !spl__varint_get(d->p, d->len, &d->pos, &v))
        d->ok = false;
    return d->ok ? v : 0;
}

static uint8_t spl__dec_u8(struct spl__dec *d)
{
    if (!d->ok || d->pos >= d->len) {
        d->ok = false;
        return 0;
    }
    return d->p[d->pos++];
}

/* Parse the fixed fields; 0 or an error code. */
static int spl__dec_fixed(struct spl__dec *d, struct spl_raft_msg *out, uint64_t *count)
{
    uint8_t version = spl__dec_u8(d);
    if (d->ok && version != SPL__MSG_VERSION)
        return SPL_EVERSION;
    uint8_t type = spl__dec_u8(d);
    uint8_t flags = spl__dec_u8(d);
    uint64_t *fields[] = {&out->group,  &out->from,  &out->to,          &out->term,
                          &out->log_term, &out->index, &out->commit, &out->reject_hint,
                          &out->context,  count};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(fields); i++)
        *fields[i] = spl__dec_u64(d);
    if (!d->ok || !spl__msg_type_known(type) || flags > 1)
        return SPL_ECORRUPT;
    out->type = type;
    out->reject = flags & 1;
    return 0;
}

/* Parse the entry headers into out->entries (lengths in lens); 0 or an error code. */
static int spl__dec_entries(struct spl__dec *d, struct spl_raft_msg *out, uint64_t count,
                            uint64_t *lens, uint64_t *total)
{
    uint64_t biggest = 0;
    *total = 0;
    for (uint64_t i = 0; i < count; i++) {
        struct spl_raft_entry *e = &out->entries[i];
        e->type = spl__dec_u8(d);
        e->term = spl__dec_u64(d);
        e->index = out->index + 1 + i;
        lens[i] = spl__dec_u64(d);
        if (!d->ok || e->type > SPL_RAFT_ENTRY_CONF)
            return SPL_ECORRUPT;
        if (lens[i] > SPL_RAFT_ENTRY_MAX)
            return SPL_ETOOBIG;
        biggest = lens[i] > biggest ? lens[i] : biggest;
        *total += lens[i];
    }
    return spl__msg_check_limits(out->type, out->index, count, *total, biggest);
}

static int spl__dec_snapshot(struct spl__dec *d, struct spl_raft_msg *out, uint64_t *snap_len)
{
    *snap_len = 0;
    if (out->type != SPL_RAFT_MSG_SNAPSHOT)
        return 0;
    out->snapshot.index = spl__dec_u64(d);
    out->snapshot.term = spl__dec_u64(d);
    out->snapshot.epoch = spl__dec_u64(d);
    if (!d->ok || !spl__conf_get(d->p, d->len, &d->pos, &out->snapshot.conf))
        return SPL_ECORRUPT;
    *snap_len = spl__dec_u64(d);
    if (!d->ok)
        return SPL_ECORRUPT;
    return *snap_len > SPL_RAFT_SNAP_DATA_MAX ? SPL_ETOOBIG : 0;
}

/* Reference the payloads (entries, then snapshot data) that start at offset `at`. */
static int spl__dec_payloads(const struct spl_iobuf *in, uint64_t at, struct spl_raft_msg *out,
                             const uint64_t *lens, uint64_t snap_len)
{
    for (uint32_t i = 0; i < out->entry_count; i++) {
        int rc = spl_iobuf_append_ref(&out->entries[i].data, in, at, lens[i]);
        if (rc != 0)
            return rc;
        at += lens[i];
    }
    return spl_iobuf_append_ref(&out->snapshot.data, in, at, snap_len);
}

static int spl__dec_conf_entries(const struct spl_raft_msg *m)
{
    for (uint32_t i = 0; i < m->entry_count; i++) {
        struct spl_raft_conf_change cc;
        if (m->entries[i].type == SPL_RAFT_ENTRY_CONF &&
            spl_raft_conf_change_decode(&m->entries[i].data, &cc) != 0)
            return SPL_ECORRUPT;
    }
    return 0;
}

static int spl__dec_all(const struct spl_iobuf *in, struct spl__dec *d, struct spl_raft_msg *out,
                        uint32_t entries_cap, uint64_t *lens)
{
    uint64_t count = 0, total = 0, snap_len = 0;
    int rc = spl__dec_fixed(d, out, &count);
    if (rc != 0)
        return rc;
    if (count > entries_cap || count > SPL_RAFT_BATCH_ENTRIES_MAX)
        return SPL_ETOOBIG;
    if ((rc = spl__dec_entries(d, out, count, lens, &total)) != 0)
        return rc;
    if ((rc = spl__dec_snapshot(d, out, &snap_len)) != 0)
        return rc;
    size_t hdr_len = d->pos;
    uint32_t crc_wire = 0;
    for (int i = 0; i < 4; i++)
        crc_wire |= (uint32_t)spl__dec_u8(d) << (8 * i);
    if (!d->ok || spl_iobuf_len(in) != d->pos + total + snap_len)
        return SPL_ECORRUPT;
    uint32_t crc = spl_crc32c(0, d->p, hdr_len);
    crc = spl_iobuf_crc32c(in, crc, d->pos, total + snap_len);
    if (crc != crc_wire)
        return SPL_ECORRUPT;
    out->entry_count = (uint32_t)count;
    if ((rc = spl__dec_payloads(in, d->pos, out, lens, snap_len)) != 0)
        return rc;
    return spl__dec_conf_entries(out);
}

int spl_raft_msg_decode(const struct spl_iobuf *in, struct spl_raft_msg *out,
                        struct spl_raft_entry *entries_buf, uint32_t entries_cap)
{
    static _Thread_local uint8_t hdr[SPL__MSG_HDR_MAX];
    static _Thread_local uint64_t lens[SPL_RAFT_BATCH_ENTRIES_MAX];
    ASSERT(entries_buf != NULL || entries_cap == 0);
    spl_raft_msg_init(out);
    out->entries = entries_buf;
    uint32_t n = entries_cap < SPL_RAFT_BATCH_ENTRIES_MAX ? entries_cap
                                                          : SPL_RAFT_BATCH_ENTRIES_MAX;
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_init(&entries_buf[i].data);
    uint64_t len = spl_iobuf_len(in);
    struct spl__dec d = {.p = hdr, .len = len < sizeof(hdr) ? (size_t)len : sizeof(hdr),
                         .ok = true};
    spl_iobuf_copy_out(in, 0, hdr, d.len);
    int rc = spl__dec_all(in, &d, out, entries_cap, lens);
    if (rc != 0) {
        spl_raft_msg_release(out);
        out->entry_count = 0;
    }
    return rc;
}

int spl_raft_msg_decode_bytes(const void *data, size_t len, struct spl_raft_msg *out,
                              struct spl_raft_entry *entries_buf, uint32_t entries_cap)
{
    struct spl_iobuf in;
    spl_iobuf_init(&in);
    int rc = spl_iobuf_append(&in, data, len);
    if (rc == 0)
        rc = spl_raft_msg_decode(&in, out, entries_buf, entries_cap);
    else
        spl_raft_msg_init(out);
    spl_iobuf_reset(&in);
    return rc;
}
