/*
 * format.c - encoders and decoders of the raft log's on-disk formats; see format.h and
 * docs/format-raftlog.md. Every field is written at the offsetof() of its disk struct in
 * little-endian byte order, so the bytes do not depend on the host.
 */
#include "raftlog/format.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"

#define OFF(type, field) offsetof(struct spl__raftlog_##type##_disk, field)

/* ---- layout pins (an incompatible change fails the build) ---- */
SPL_STATIC_ASSERT(sizeof(struct spl__raftlog_seg_disk) == SPL_RAFTLOG_SEG_SLOT_SIZE, "seg");
SPL_STATIC_ASSERT(OFF(seg, crc) == 4 && OFF(seg, version) == 8 && OFF(seg, flags) == 12, "seg");
SPL_STATIC_ASSERT(OFF(seg, group_id) == 16 && OFF(seg, nonce) == 32, "seg header layout");
SPL_STATIC_ASSERT(OFF(seg, first_index) == 40 && OFF(seg, gen) == 64, "seg header layout");
SPL_STATIC_ASSERT(OFF(seg, segment_size) == 72, "seg header layout");
SPL_STATIC_ASSERT(2 * SPL_RAFTLOG_SEG_SLOT_STRIDE <= SPL_RAFTLOG_SEGMENT_HEADER_SIZE,
                  "both header slots fit before the first record");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SEG_SLOT_SIZE <= SPL_RAFTLOG_SEG_SLOT_STRIDE, "slot in a sector");
SPL_STATIC_ASSERT(sizeof(struct spl__raftlog_rec_disk) == SPL_RAFTLOG_REC_HEADER_SIZE, "rec");
SPL_STATIC_ASSERT(OFF(rec, data_len) == 8 && OFF(rec, kind) == 12, "record header layout");
SPL_STATIC_ASSERT(OFF(rec, entry_type) == 13 && OFF(rec, nonce_tag) == 14, "record layout");
SPL_STATIC_ASSERT(OFF(rec, term) == 16, "record header layout");
SPL_STATIC_ASSERT(OFF(rec, index) == 24, "record header layout");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SEGMENT_HEADER_SIZE % SPL_RAFTLOG_REC_ALIGN == 0, "aligned");
SPL_STATIC_ASSERT(sizeof(struct spl__raftlog_hs_disk) == SPL_RAFTLOG_HS_SLOT_SIZE, "hs");
SPL_STATIC_ASSERT(OFF(hs, seq) == 24 && OFF(hs, term) == 32 && OFF(hs, commit) == 48, "hs");
SPL_STATIC_ASSERT(2 * SPL_RAFTLOG_HS_SLOT_STRIDE <= SPL_RAFTLOG_HS_FILE_SIZE, "hs slots fit");
SPL_STATIC_ASSERT(sizeof(struct spl__raftlog_snap_disk) == SPL_RAFTLOG_SNAP_HEADER_SIZE, "snap");
SPL_STATIC_ASSERT(OFF(snap, total_len) == 16 && OFF(snap, index) == 32, "snap header layout");
SPL_STATIC_ASSERT(OFF(snap, voter_count) == 56 && OFF(snap, blob_len) == 68, "snap layout");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SNAP_NAME_MAX <= UINT16_MAX, "name_len is a u16");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SNAP_BLOB_MAX <= UINT32_MAX, "blob_len is a u32");
SPL_STATIC_ASSERT(SPL_RAFTLOG_SEGMENT_SIZE_MAX <= UINT32_MAX, "data_len is a u32");

/* ---- little-endian helpers ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

bool spl_raftlog_is_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            return false;
    return true;
}

/* ---- segment header ---- */

void spl_raftlog_seg_header_encode(const struct spl_raftlog_seg_header *h, uint8_t *out)
{
    memset(out, 0, SPL_RAFTLOG_SEG_SLOT_SIZE);
    put32(out + OFF(seg, magic), SPL_RAFTLOG_SEG_MAGIC);
    put16(out + OFF(seg, version), SPL_RAFTLOG_FORMAT_VERSION);
    put16(out + OFF(seg, slot_size), SPL_RAFTLOG_SEG_SLOT_SIZE);
    put32(out + OFF(seg, flags), h->flags);
    put64(out + OFF(seg, group_id), h->group_id);
    put64(out + OFF(seg, seq), h->seq);
    put64(out + OFF(seg, nonce), h->nonce);
    put64(out + OFF(seg, first_index), h->first_index);
    put64(out + OFF(seg, prev_term), h->prev_term);
    put64(out + OFF(seg, seal_last_index), h->seal_last_index);
    put64(out + OFF(seg, gen), h->gen);
    put64(out + OFF(seg, segment_size), h->segment_size);
    put32(out + OFF(seg, crc), spl_crc32c(0, out + 8, SPL_RAFTLOG_SEG_SLOT_SIZE - 8));
}

int spl_raftlog_seg_header_decode(const uint8_t *buf, size_t len,
                                  struct spl_raftlog_seg_header *out)
{
    if (len < SPL_RAFTLOG_SEG_SLOT_SIZE || get32(buf) != SPL_RAFTLOG_SEG_MAGIC)
        return SPL_ECORRUPT;
    if (get16(buf + OFF(seg, slot_size)) != SPL_RAFTLOG_SEG_SLOT_SIZE)
        return SPL_ECORRUPT;
    if (get32(buf + OFF(seg, crc)) != spl_crc32c(0, buf + 8, SPL_RAFTLOG_SEG_SLOT_SIZE - 8))
        return SPL_ECORRUPT;
    if (get16(buf + OFF(seg, version)) != SPL_RAFTLOG_FORMAT_VERSION)
        return SPL_EVERSION;
    out->flags = get32(buf + OFF(seg, flags));
    out->group_id = get64(buf + OFF(seg, group_id));
    out->seq = get64(buf + OFF(seg, seq));
    out->nonce = get64(buf + OFF(seg, nonce));
    out->first_index = get64(buf + OFF(seg, first_index));
    out->prev_term = get64(buf + OFF(seg, prev_term));
    out->seal_last_index = get64(buf + OFF(seg, seal_last_index));
    out->gen = get64(buf + OFF(seg, gen));
    out->segment_size = get64(buf + OFF(seg, segment_size));
    if (out->flags & ~SPL_RAFTLOG_SEG_SEALED)
        return SPL_ECORRUPT;
    if (out->first_index == 0)
        return SPL_ECORRUPT;
    if ((out->flags & SPL_RAFTLOG_SEG_SEALED) && out->seal_last_index + 1 < out->first_index)
        return SPL_ECORRUPT;
    return 0;
}

int spl_raftlog_seg_header_pick(const uint8_t *buf, size_t len,
                                struct spl_raftlog_seg_header *out, int *slot_out,
                                bool *all_zero_out)
{
    struct spl_raftlog_seg_header h[2];
    int rc[2];
    bool zero = true;
    for (int i = 0; i < 2; i++) {
        size_t at = (size_t)i * SPL_RAFTLOG_SEG_SLOT_STRIDE;
        size_t avail = len > at ? len - at : 0;
        rc[i] = spl_raftlog_seg_header_decode(buf + (avail ? at : 0), avail, &h[i]);
        if (rc[i] == 0 && h[i].gen % 2 != (uint64_t)i)
            rc[i] = SPL_ECORRUPT; /* a slot holds only its own parity of generations */
        if (avail >= SPL_RAFTLOG_SEG_SLOT_SIZE)
            zero = zero && spl_raftlog_is_zero(buf + at, SPL_RAFTLOG_SEG_SLOT_SIZE);
    }
    if (all_zero_out)
        *all_zero_out = zero;
    int pick = -1;
    if (rc[0] == 0 && rc[1] == 0)
        pick = h[1].gen > h[0].gen ? 1 : 0;
    else if (rc[0] == 0 || rc[1] == 0)
        pick = rc[0] == 0 ? 0 : 1;
    if (pick < 0)
        return rc[0] == SPL_EVERSION || rc[1] == SPL_EVERSION ? SPL_EVERSION : SPL_ECORRUPT;
    *out = h[pick];
    if (slot_out)
        *slot_out = pick;
    return 0;
}

/* ---- record ---- */

void spl_raftlog_rec_header_encode(const struct spl_raftlog_rec_header *h, uint8_t *out)
{
    put32(out + OFF(rec, magic), SPL_RAFTLOG_REC_MAGIC);
    put32(out + OFF(rec, crc), h->crc);
    put32(out + OFF(rec, data_len), h->data_len);
    out[OFF(rec, kind)] = h->kind;
    out[OFF(rec, entry_type)] = h->entry_type;
    put16(out + OFF(rec, nonce_tag), h->nonce_tag);
    put64(out + OFF(rec, term), h->term);
    put64(out + OFF(rec, index), h->index);
}

uint32_t spl_raftlog_rec_crc_head(uint64_t nonce, const uint8_t *hdr)
{
    uint8_t seed[8];
    put64(seed, nonce);
    uint32_t crc = spl_crc32c(0, seed, sizeof(seed));
    return spl_crc32c(crc, hdr + 8, SPL_RAFTLOG_REC_HEADER_SIZE - 8);
}

int spl_raftlog_rec_header_decode(const uint8_t *buf, size_t len, uint64_t data_len_max,
                                  struct spl_raftlog_rec_header *out)
{
    if (len < SPL_RAFTLOG_REC_HEADER_SIZE || get32(buf) != SPL_RAFTLOG_REC_MAGIC)
        return SPL_ECORRUPT;
    out->crc = get32(buf + OFF(rec, crc));
    out->data_len = get32(buf + OFF(rec, data_len));
    out->kind = buf[OFF(rec, kind)];
    out->entry_type = buf[OFF(rec, entry_type)];
    out->nonce_tag = get16(buf + OFF(rec, nonce_tag));
    out->term = get64(buf + OFF(rec, term));
    out->index = get64(buf + OFF(rec, index));
    if (out->kind != SPL_RAFTLOG_REC_KIND_ENTRY)
        return SPL_ECORRUPT;
    if (out->data_len > data_len_max || out->index == 0)
        return SPL_ECORRUPT;
    return 0;
}

int spl_raftlog_rec_verify(const uint8_t *buf, size_t len, uint64_t nonce,
                           uint64_t data_len_max, struct spl_raftlog_rec_header *out)
{
    int rc = spl_raftlog_rec_header_decode(buf, len, data_len_max, out);
    if (rc != 0)
        return rc;
    if (len - SPL_RAFTLOG_REC_HEADER_SIZE < out->data_len)
        return SPL_ECORRUPT;
    if (out->nonce_tag != spl_raftlog_nonce_tag(nonce))
        return SPL_ECORRUPT;
    uint32_t crc = spl_raftlog_rec_crc_head(nonce, buf);
    crc = spl_crc32c(crc, buf + SPL_RAFTLOG_REC_HEADER_SIZE, out->data_len);
    return crc == out->crc ? 0 : SPL_ECORRUPT;
}

/* ---- hard state ---- */

void spl_raftlog_hs_encode(const struct spl_raftlog_hs_slot *s, uint8_t *out)
{
    memset(out, 0, SPL_RAFTLOG_HS_SLOT_SIZE);
    put32(out + OFF(hs, magic), SPL_RAFTLOG_HS_MAGIC);
    put16(out + OFF(hs, version), SPL_RAFTLOG_FORMAT_VERSION);
    put16(out + OFF(hs, slot_size), SPL_RAFTLOG_HS_SLOT_SIZE);
    put64(out + OFF(hs, group_id), s->group_id);
    put64(out + OFF(hs, seq), s->seq);
    put64(out + OFF(hs, term), s->hs.term);
    put64(out + OFF(hs, vote), s->hs.vote);
    put64(out + OFF(hs, commit), s->hs.commit);
    put32(out + OFF(hs, crc), spl_crc32c(0, out + 8, SPL_RAFTLOG_HS_SLOT_SIZE - 8));
}

int spl_raftlog_hs_decode(const uint8_t *buf, size_t len, struct spl_raftlog_hs_slot *out)
{
    if (len < SPL_RAFTLOG_HS_SLOT_SIZE || get32(buf) != SPL_RAFTLOG_HS_MAGIC)
        return SPL_ECORRUPT;
    if (get16(buf + OFF(hs, slot_size)) != SPL_RAFTLOG_HS_SLOT_SIZE)
        return SPL_ECORRUPT;
    if (get32(buf + OFF(hs, crc)) != spl_crc32c(0, buf + 8, SPL_RAFTLOG_HS_SLOT_SIZE - 8))
        return SPL_ECORRUPT;
    if (get16(buf + OFF(hs, version)) != SPL_RAFTLOG_FORMAT_VERSION)
        return SPL_EVERSION;
    if (get32(buf + OFF(hs, reserved)) != 0 || get64(buf + OFF(hs, reserved2)) != 0)
        return SPL_ECORRUPT;
    out->group_id = get64(buf + OFF(hs, group_id));
    out->seq = get64(buf + OFF(hs, seq));
    out->hs.term = get64(buf + OFF(hs, term));
    out->hs.vote = get64(buf + OFF(hs, vote));
    out->hs.commit = get64(buf + OFF(hs, commit));
    return 0;
}

int spl_raftlog_hs_pick(const uint8_t *buf, size_t len, struct spl_raftlog_hs_slot *out,
                        int *slot_out)
{
    struct spl_raftlog_hs_slot s[2];
    int rc[2];
    for (int i = 0; i < 2; i++) {
        size_t at = (size_t)i * SPL_RAFTLOG_HS_SLOT_STRIDE;
        size_t avail = len > at ? len - at : 0;
        rc[i] = spl_raftlog_hs_decode(buf + (avail ? at : 0), avail, &s[i]);
        if (rc[i] == 0 && s[i].seq % 2 != (uint64_t)i)
            rc[i] = SPL_ECORRUPT;
    }
    int pick = -1;
    if (rc[0] == 0 && rc[1] == 0)
        pick = s[1].seq > s[0].seq ? 1 : 0;
    else if (rc[0] == 0 || rc[1] == 0)
        pick = rc[0] == 0 ? 0 : 1;
    if (pick < 0)
        return rc[0] == SPL_EVERSION || rc[1] == SPL_EVERSION ? SPL_EVERSION : SPL_ECORRUPT;
    *out = s[pick];
    if (slot_out)
        *slot_out = pick;
    return 0;
}

/* ---- snapshot metadata ---- */

static int snap_check_name(const char *name, size_t *len_out)
{
    size_t n = strnlen(name, SPL_RAFTLOG_SNAP_NAME_MAX + 1);
    if (n > SPL_RAFTLOG_SNAP_NAME_MAX)
        return SPL_ETOOBIG;
    if (n == 0 || memchr(name, '/', n))
        return SPL_EINVAL_ARG;
    *len_out = n;
    return 0;
}

int spl_raftlog_snapmeta_size(const struct spl_raftlog_snapmeta *m, uint64_t *size_out)
{
    if (m->conf.voter_count > SPL_RAFT_PEERS_MAX || m->conf.learner_count > SPL_RAFT_PEERS_MAX)
        return SPL_ETOOBIG;
    if (m->file_count > SPL_RAFTLOG_SNAP_FILES_MAX || m->blob_len > SPL_RAFTLOG_SNAP_BLOB_MAX)
        return SPL_ETOOBIG;
    if ((m->file_count && !m->files) || (m->blob_len && !m->blob))
        return SPL_EINVAL_ARG;
    uint64_t size = SPL_RAFTLOG_SNAP_HEADER_SIZE;
    size += 8ull * (m->conf.voter_count + m->conf.learner_count);
    for (uint32_t i = 0; i < m->file_count; i++) {
        size_t n;
        int rc = snap_check_name(m->files[i].name, &n);
        if (rc != 0)
            return rc;
        size += 10 + n;
    }
    size += m->blob_len;
    ASSERT(size <= SPL_RAFTLOG_SNAP_META_MAX);
    *size_out = size;
    return 0;
}

int spl_raftlog_snapmeta_encode(const struct spl_raftlog_snapmeta *m, uint64_t group_id,
                                uint8_t *out, size_t len)
{
    uint64_t size;
    int rc = spl_raftlog_snapmeta_size(m, &size);
    if (rc != 0)
        return rc;
    ASSERT_CMP(size, ==, len);
    memset(out, 0, SPL_RAFTLOG_SNAP_HEADER_SIZE);
    put32(out + OFF(snap, magic), SPL_RAFTLOG_SNAP_MAGIC);
    put16(out + OFF(snap, version), SPL_RAFTLOG_FORMAT_VERSION);
    put16(out + OFF(snap, header_size), SPL_RAFTLOG_SNAP_HEADER_SIZE);
    put64(out + OFF(snap, total_len), size);
    put64(out + OFF(snap, group_id), group_id);
    put64(out + OFF(snap, index), m->index);
    put64(out + OFF(snap, term), m->term);
    put64(out + OFF(snap, epoch), m->epoch);
    put32(out + OFF(snap, voter_count), m->conf.voter_count);
    put32(out + OFF(snap, learner_count), m->conf.learner_count);
    put32(out + OFF(snap, file_count), m->file_count);
    put32(out + OFF(snap, blob_len), m->blob_len);
    uint8_t *p = out + SPL_RAFTLOG_SNAP_HEADER_SIZE;
    for (uint32_t i = 0; i < m->conf.voter_count; i++, p += 8)
        put64(p, m->conf.voters[i]);
    for (uint32_t i = 0; i < m->conf.learner_count; i++, p += 8)
        put64(p, m->conf.learners[i]);
    for (uint32_t i = 0; i < m->file_count; i++) {
        size_t n = strlen(m->files[i].name);
        put64(p, m->files[i].size);
        put16(p + 8, (uint16_t)n);
        memcpy(p + 10, m->files[i].name, n);
        p += 10 + n;
    }
    if (m->blob_len)
        memcpy(p, m->blob, m->blob_len);
    p += m->blob_len;
    ASSERT(p == out + len);
    put32(out + OFF(snap, crc), spl_crc32c(0, out + 8, len - 8));
    return 0;
}

/* Check the header of an encoded snapshot meta; fills the counts. */
static int snap_check_header(const uint8_t *buf, size_t len, struct spl_raftlog_snapmeta *m)
{
    if (len < SPL_RAFTLOG_SNAP_HEADER_SIZE || get32(buf) != SPL_RAFTLOG_SNAP_MAGIC)
        return SPL_ECORRUPT;
    if (get16(buf + OFF(snap, header_size)) != SPL_RAFTLOG_SNAP_HEADER_SIZE)
        return SPL_ECORRUPT;
    if (get64(buf + OFF(snap, total_len)) != len)
        return SPL_ECORRUPT;
    if (get32(buf + OFF(snap, crc)) != spl_crc32c(0, buf + 8, len - 8))
        return SPL_ECORRUPT;
    if (get16(buf + OFF(snap, version)) != SPL_RAFTLOG_FORMAT_VERSION)
        return SPL_EVERSION;
    if (get32(buf + OFF(snap, reserved)) != 0 || get64(buf + OFF(snap, reserved2)) != 0)
        return SPL_ECORRUPT;
    m->index = get64(buf + OFF(snap, index));
    m->term = get64(buf + OFF(snap, term));
    m->epoch = get64(buf + OFF(snap, epoch));
    m->conf.voter_count = get32(buf + OFF(snap, voter_count));
    m->conf.learner_count = get32(buf + OFF(snap, learner_count));
    m->file_count = get32(buf + OFF(snap, file_count));
    m->blob_len = get32(buf + OFF(snap, blob_len));
    if (m->conf.voter_count > SPL_RAFT_PEERS_MAX || m->conf.learner_count > SPL_RAFT_PEERS_MAX)
        return SPL_ETOOBIG;
    if (m->file_count > SPL_RAFTLOG_SNAP_FILES_MAX || m->blob_len > SPL_RAFTLOG_SNAP_BLOB_MAX)
        return SPL_ETOOBIG;
    return 0;
}

int spl_raftlog_snapmeta_decode(const uint8_t *buf, size_t len, uint64_t *group_id_out,
                                struct spl_raftlog_snapmeta *out)
{
    struct spl_raftlog_snapmeta m;
    memset(&m, 0, sizeof(m));
    memset(out, 0, sizeof(*out));
    int rc = snap_check_header(buf, len, &m);
    if (rc != 0)
        return rc;
    const uint8_t *p = buf + SPL_RAFTLOG_SNAP_HEADER_SIZE, *end = buf + len;
    uint64_t ids = 8ull * (m.conf.voter_count + m.conf.learner_count);
    if ((uint64_t)(end - p) < ids)
        return SPL_ECORRUPT;
    for (uint32_t i = 0; i < m.conf.voter_count; i++, p += 8)
        m.conf.voters[i] = get64(p);
    for (uint32_t i = 0; i < m.conf.learner_count; i++, p += 8)
        m.conf.learners[i] = get64(p);
    /* names and the blob are copied into one allocation: files[], names, blob */
    size_t files_bytes = sizeof(struct spl_raftlog_snapfile) * m.file_count;
    size_t rest = (size_t)(end - p);
    uint8_t *owned = malloc(files_bytes + rest + m.file_count + 1);
    if (!owned)
        return -ENOMEM;
    struct spl_raftlog_snapfile *files = (struct spl_raftlog_snapfile *)owned;
    char *names = (char *)owned + files_bytes;
    for (uint32_t i = 0; i < m.file_count; i++) {
        if (end - p < 10)
            goto corrupt;
        uint64_t size = get64(p);
        uint16_t n = get16(p + 8);
        p += 10;
        if (n == 0 || n > SPL_RAFTLOG_SNAP_NAME_MAX || end - p < n)
            goto corrupt;
        if (memchr(p, '/', n) || memchr(p, '\0', n))
            goto corrupt;
        memcpy(names, p, n);
        names[n] = '\0';
        files[i].name = names;
        files[i].size = size;
        names += n + 1;
        p += n;
    }
    if ((uint64_t)(end - p) != m.blob_len)
        goto corrupt;
    memcpy(names, p, m.blob_len);
    m.blob = m.blob_len ? names : NULL;
    m.files = m.file_count ? files : NULL;
    m.priv_owned = owned;
    *out = m;
    *group_id_out = get64(buf + OFF(snap, group_id));
    return 0;
corrupt:
    free(owned);
    return SPL_ECORRUPT;
}

void spl_raftlog_snapmeta_free(struct spl_raftlog_snapmeta *m)
{
    free(m->priv_owned);
    memset(m, 0, sizeof(*m));
}

/* ---- names ---- */

void spl_raftlog_seg_name(uint64_t seq, uint64_t first_index, char out[48])
{
    snprintf(out, 48, "%016" PRIx64 "_%020" PRIu64 ".seg", seq, first_index);
}

bool spl_raftlog_seg_name_parse(const char *name, uint64_t *seq, uint64_t *first_index)
{
    if (strlen(name) != SPL_RAFTLOG_SEG_NAME_LEN || strcmp(name + 37, ".seg") != 0 ||
        name[16] != '_')
        return false;
    for (int i = 0; i < 37; i++) {
        if (i == 16)
            continue;
        char c = name[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!hex || (i > 16 && c > '9'))
            return false;
    }
    *seq = strtoull(name, NULL, 16);
    *first_index = strtoull(name + 17, NULL, 10);
    return true;
}
