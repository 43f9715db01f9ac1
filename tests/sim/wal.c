/* wal.c - CRC'd records of hard state, entries and snapshots; replay with torn-tail cut. */
#include "wal.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"

#define WAL_HEADER 8u                /* u32 length (type + payload), u32 crc */
#define WAL_RECORD_MAX (64u << 20)   /* anything longer is garbage */

void sim_bytes_free(struct sim_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static void bytes_reserve(struct sim_bytes *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    b->data = realloc(b->data, cap);
    ASSERT(b->data != NULL);
    b->cap = cap;
}

static void put_raw(struct sim_bytes *b, const void *p, size_t n)
{
    bytes_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u8(struct sim_bytes *b, uint8_t v) { put_raw(b, &v, 1); }
static void put_u32(struct sim_bytes *b, uint32_t v) { put_raw(b, &v, 4); }
static void put_u64(struct sim_bytes *b, uint64_t v) { put_raw(b, &v, 8); }

static void put_iobuf(struct sim_bytes *b, const struct spl_iobuf *io)
{
    put_u32(b, (uint32_t)spl_iobuf_len(io));
    bytes_reserve(b, spl_iobuf_len(io));
    b->len += spl_iobuf_copy_out(io, 0, b->data + b->len, spl_iobuf_len(io));
}

/* Opens a record: returns the offset of its header, filled in by record_end(). */
static size_t record_begin(struct sim_bytes *b, uint8_t type)
{
    size_t at = b->len;
    put_u32(b, 0);
    put_u32(b, 0);
    put_u8(b, type);
    return at;
}

static void record_end(struct sim_bytes *b, size_t at)
{
    uint32_t len = (uint32_t)(b->len - at - WAL_HEADER);
    uint32_t crc = spl_crc32c(0, b->data + at + WAL_HEADER, len);
    memcpy(b->data + at, &len, 4);
    memcpy(b->data + at + 4, &crc, 4);
}

void sim_wal_put_hard_state(struct sim_bytes *out, const struct spl_raft_hard_state *hs)
{
    size_t at = record_begin(out, SIM_WAL_HARD_STATE);
    put_u64(out, hs->term);
    put_u64(out, hs->vote);
    put_u64(out, hs->commit);
    record_end(out, at);
}

void sim_wal_put_entry(struct sim_bytes *out, const struct spl_raft_entry *e)
{
    size_t at = record_begin(out, SIM_WAL_ENTRY);
    put_u64(out, e->index);
    put_u64(out, e->term);
    put_u8(out, e->type);
    put_iobuf(out, &e->data);
    record_end(out, at);
}

void sim_wal_put_snapshot(struct sim_bytes *out, const struct spl_raft_snapshot_meta *snap,
                          int type)
{
    ASSERT(type == SIM_WAL_SNAPSHOT || type == SIM_WAL_SNAP_LOCAL);
    size_t at = record_begin(out, (uint8_t)type);
    put_u64(out, snap->index);
    put_u64(out, snap->term);
    put_u64(out, snap->epoch);
    put_u32(out, snap->conf.voter_count);
    for (uint32_t i = 0; i < snap->conf.voter_count; i++)
        put_u64(out, snap->conf.voters[i]);
    put_u32(out, snap->conf.learner_count);
    for (uint32_t i = 0; i < snap->conf.learner_count; i++)
        put_u64(out, snap->conf.learners[i]);
    put_iobuf(out, &snap->data);
    record_end(out, at);
}

void sim_wal_put_batch(struct sim_bytes *out, const struct sim_bytes *inner)
{
    size_t at = record_begin(out, SIM_WAL_BATCH);
    put_raw(out, inner->data, inner->len);
    record_end(out, at);
}

void sim_wal_put_state(struct sim_bytes *out, struct spl_raft_memstorage *ms)
{
    sim_wal_put_snapshot(out, &ms->snap, SIM_WAL_SNAPSHOT);
    for (uint64_t i = 0; i < ms->entry_count; i++)
        if (ms->entries[i].index > ms->snap.index)
            sim_wal_put_entry(out, &ms->entries[i]);
    sim_wal_put_hard_state(out, &ms->hs);
}

/* ---- replay ---- */

struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static void get_raw(struct reader *r, void *dst, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
}

static uint8_t get_u8(struct reader *r) { uint8_t v; get_raw(r, &v, 1); return v; }
static uint32_t get_u32(struct reader *r) { uint32_t v; get_raw(r, &v, 4); return v; }
static uint64_t get_u64(struct reader *r) { uint64_t v; get_raw(r, &v, 8); return v; }

static void get_iobuf(struct reader *r, struct spl_iobuf *io)
{
    uint32_t n = get_u32(r);
    if (r->bad || r->left < n) {
        r->bad = true;
        return;
    }
    ASSERT(spl_iobuf_append(io, r->p, n) == 0);
    r->p += n;
    r->left -= n;
}

static bool replay_conf(struct reader *r, struct spl_raft_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->voter_count = get_u32(r);
    if (conf->voter_count > SPL_RAFT_PEERS_MAX)
        return false;
    for (uint32_t i = 0; i < conf->voter_count; i++)
        conf->voters[i] = get_u64(r);
    conf->learner_count = get_u32(r);
    if (conf->learner_count > SPL_RAFT_PEERS_MAX)
        return false;
    for (uint32_t i = 0; i < conf->learner_count; i++)
        conf->learners[i] = get_u64(r);
    return !r->bad;
}

/* Applies one checksum-valid record; false when the storage refuses it. */
static bool replay_record(struct reader *r, uint8_t type, struct spl_raft_memstorage *ms,
                          struct sim_wal_replay *out)
{
    bool ok = true;
    int rc = 0;
    if (type == SIM_WAL_HARD_STATE) {
        struct spl_raft_hard_state hs;
        hs.term = get_u64(r);
        hs.vote = get_u64(r);
        hs.commit = get_u64(r);
        if (!r->bad)
            spl_raft_memstorage_set_hard_state(ms, &hs);
    } else if (type == SIM_WAL_ENTRY) {
        struct spl_raft_entry e;
        memset(&e, 0, sizeof(e));
        spl_iobuf_init(&e.data);
        e.index = get_u64(r);
        e.term = get_u64(r);
        e.type = get_u8(r);
        get_iobuf(r, &e.data);
        rc = r->bad ? 0 : spl_raft_memstorage_append(ms, &e, 1);
        ok = !r->bad && rc == 0;
        out->error_index = e.index;
        spl_iobuf_reset(&e.data);
    } else if (type == SIM_WAL_SNAPSHOT || type == SIM_WAL_SNAP_LOCAL) {
        struct spl_raft_snapshot_meta s;
        memset(&s, 0, sizeof(s));
        spl_iobuf_init(&s.data);
        s.index = get_u64(r);
        s.term = get_u64(r);
        s.epoch = get_u64(r);
        ok = replay_conf(r, &s.conf);
        get_iobuf(r, &s.data);
        if (ok && !r->bad && type == SIM_WAL_SNAPSHOT) {
            rc = spl_raft_memstorage_apply_snapshot(ms, &s);
            ok = rc == 0 || rc == SPL_ERAFT_STALE;
        } else if (ok && !r->bad) {
            rc = spl_raft_memstorage_create_snapshot(ms, s.index, &s.conf, s.epoch, &s.data);
            if (rc == 0 && s.index > ms->base_index)
                rc = spl_raft_memstorage_compact(ms, s.index);
            ok = rc == 0 || rc == SPL_ERAFT_STALE;
        }
        out->error_index = s.index;
        spl_iobuf_reset(&s.data);
    } else {
        ok = false;
    }
    out->error = rc;
    return ok && !r->bad;
}

/* Replays whole records from data[0..len); returns the bytes consumed. A batch record
 * replays its inner records, which must all be valid. */
static size_t replay_records(const uint8_t *data, size_t len, struct spl_raft_memstorage *ms,
                             struct sim_wal_replay *out, int depth)
{
    size_t at = 0;
    while (len - at >= WAL_HEADER + 1 && !out->inconsistent) {
        uint32_t rec_len, crc;
        memcpy(&rec_len, data + at, 4);
        memcpy(&crc, data + at + 4, 4);
        if (rec_len == 0 || rec_len > WAL_RECORD_MAX || rec_len > len - at - WAL_HEADER)
            break;
        const uint8_t *body = data + at + WAL_HEADER;
        if (spl_crc32c(0, body, rec_len) != crc)
            break;
        if (body[0] == SIM_WAL_BATCH && depth == 0) {
            size_t inner = replay_records(body + 1, rec_len - 1, ms, out, 1);
            if (inner != rec_len - 1)
                out->inconsistent = true;
        } else {
            struct reader r = {.p = body + 1, .left = rec_len - 1};
            if (!replay_record(&r, body[0], ms, out) || r.left != 0)
                out->inconsistent = true;
        }
        if (out->inconsistent)
            break;
        at += WAL_HEADER + rec_len;
        out->records++;
    }
    return at;
}

void sim_wal_replay(const uint8_t *data, size_t len, struct spl_raft_memstorage *ms,
                    struct sim_wal_replay *out)
{
    memset(out, 0, sizeof(*out));
    out->valid_len = replay_records(data, len, ms, out, 0);
    out->torn = out->valid_len < len && !out->inconsistent;
}
