/*
 * raftlog.c - one group's log: segments, the in-memory index, append, reads, truncation,
 * compaction, snapshot meta and recovery. See raftlog.h for the contract and
 * docs/format-raftlog.md for the bytes.
 *
 * Segments are kept in seq order in g->segs; each holds the locations of its live
 * records (term, offset, length), so the entries [first_index, last_index] are found by a
 * binary search over the segments. Only the last segment (the tail) is ever written; it
 * is replaced ("roll") when the next record does not fit or after a truncation sealed it.
 * A roll fdatasyncs the old tail first, so the sync workers only ever need to sync the
 * current tail. Every structural change (roll, truncate, compact, reset) happens under
 * g->io_mu, which a worker holds while it syncs the group.
 *
 * Crash-safety rules that recovery relies on:
 *  - records are only written past the last valid record of the tail (or into a fresh
 *    segment), never over a record that may be durable;
 *  - truncating inside a segment seals it: the header's seal_last_index says where its
 *    valid records end, so stale records after it are never read again; new entries go
 *    to a new segment;
 *  - segments are removed newest-first by truncation and oldest-first by compaction, so
 *    a crash leaves a contiguous run of segments.
 */
#include "raftlog/raftlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog_internal.h"

#define PATH_BUF (SPL_RAFTLOG_PATH_MAX + 64)
#define SCAN_WINDOW (1u << 20) /* recovery reads segments in windows of this size */
#define HEADER_WRITE_LEN (2 * SPL_RAFTLOG_SEG_SLOT_STRIDE) /* both slots */

#define STAT_ADD(env, field, n) atomic_fetch_add_explicit(&(env)->field, (n), memory_order_relaxed)

static const uint8_t zero_pad[SPL_RAFTLOG_REC_ALIGN];

/* ---- small helpers ---- */

static uint64_t seg_last(const struct spl__raftlog_seg *s)
{
    return s->hdr.first_index + s->count - 1;
}

static struct spl__raftlog_seg *tail_seg(const struct spl_raftlog *g)
{
    return g->seg_count ? g->segs[g->seg_count - 1] : NULL;
}

static void seg_path(const struct spl_raftlog *g, const struct spl__raftlog_seg *s, char *out,
                     size_t len)
{
    spl__raftlog_path(out, len, g->dir, s->name);
}

/* The segment holding index (first_index <= index <= last_index). */
static struct spl__raftlog_seg *seg_find(const struct spl_raftlog *g, uint64_t index)
{
    ASSERT(index >= g->first_index && index <= g->last_index);
    uint32_t lo = 0, hi = g->seg_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->segs[mid]->hdr.first_index <= index)
            lo = mid;
        else
            hi = mid;
    }
    struct spl__raftlog_seg *s = g->segs[lo];
    ASSERT(index >= s->hdr.first_index && index <= seg_last(s));
    return s;
}

static void seg_push_loc(struct spl__raftlog_seg *s, uint64_t term, uint64_t off, uint64_t len)
{
    if (s->count == s->cap) {
        uint64_t cap = s->cap ? s->cap * 2 : 256;
        struct spl__raftlog_loc *locs = realloc(s->locs, sizeof(locs[0]) * cap);
        ASSERT(locs != NULL);
        s->locs = locs;
        s->cap = cap;
    }
    ASSERT(off <= UINT32_MAX && len <= UINT32_MAX);
    s->locs[s->count++] = (struct spl__raftlog_loc){.term = term, .off = (uint32_t)off,
                                                     .len = (uint32_t)len};
}

static void seg_free(const struct spl_vfs *vfs, struct spl__raftlog_seg *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        spl_vfs_close(vfs, s->fd);
    free(s->locs);
    free(s);
}

static int segs_push(struct spl_raftlog *g, struct spl__raftlog_seg *s)
{
    if (g->seg_count == SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX)
        return SPL_ETOOBIG;
    if (g->seg_count == g->seg_cap) {
        uint32_t cap = g->seg_cap ? g->seg_cap * 2 : 16;
        struct spl__raftlog_seg **segs = realloc(g->segs, sizeof(segs[0]) * cap);
        if (!segs)
            return -ENOMEM;
        g->segs = segs;
        g->seg_cap = cap;
    }
    g->segs[g->seg_count++] = s;
    return 0;
}

static void why_set(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    LOG_ERROR("raftlog", "%s", buf);
    if (why && why_len)
        snprintf(why, why_len, "%s", buf);
}

/* The group's structural invariants, O(segments): contiguous segments that agree with
 * first/last/prev_term, records inside their segment, terms not going down at segment
 * boundaries; only the tail may be written (sealed segments end at their seal). */
void spl__raftlog_check_invariants(const struct spl_raftlog *g)
{
    ASSERT_CMP(g->last_index + 1, >=, g->first_index);
    if (g->seg_count == 0) {
        ASSERT_CMP(g->last_index + 1, ==, g->first_index);
        return;
    }
    ASSERT_CMP(g->segs[0]->hdr.first_index, ==, g->first_index);
    ASSERT_CMP(g->segs[0]->hdr.prev_term, ==, g->prev_term);
    ASSERT_CMP(seg_last(g->segs[g->seg_count - 1]), ==, g->last_index);
    uint64_t term = g->prev_term;
    for (uint32_t k = 0; k < g->seg_count; k++) {
        const struct spl__raftlog_seg *s = g->segs[k];
        ASSERT(s->fd >= 0 && s->count <= s->cap);
        ASSERT_CMP(s->end_off, <=, g->env->cfg.segment_size);
        ASSERT_CMP(s->hdr.prev_term, ==, term);
        if (k > 0)
            ASSERT_CMP(s->hdr.first_index, ==, seg_last(g->segs[k - 1]) + 1);
        if (s->hdr.flags & SPL_RAFTLOG_SEG_SEALED)
            ASSERT_CMP(s->hdr.seal_last_index, ==, seg_last(s));
        if (s->count) {
            ASSERT_CMP(s->locs[0].term, >=, term);
            ASSERT_CMP(s->locs[0].off, ==, SPL_RAFTLOG_SEGMENT_HEADER_SIZE);
            const struct spl__raftlog_loc *l = &s->locs[s->count - 1];
            ASSERT_CMP(l->off + spl_raftlog_rec_size(l->len), <=, s->end_off);
            term = l->term;
        }
    }
}

/* Stop the log after an I/O error: every later call fails, pending callbacks get rc. */
static int group_fail(struct spl_raftlog *g, int rc)
{
    ASSERT(rc < 0);
    pthread_mutex_lock(&g->mu);
    if (g->err == 0) {
        g->err = rc;
        LOG_ERROR("raftlog", "group %" PRIu64 " (%s): I/O failed, log stopped: %s",
                  g->group_id, g->dir, spl_strerror(rc));
        if (g->state == SYNC_IDLE && g->wait_head) {
            g->state = SYNC_QUEUED; /* a worker completes the waiters with the error */
            spl__raftlog_env_enqueue(g->env, g);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static int group_check(struct spl_raftlog *g)
{
    pthread_mutex_lock(&g->mu);
    int err = g->err;
    pthread_mutex_unlock(&g->mu);
    return err ? SPL_ELOG_FAILED : 0;
}

static void set_tail_fd(struct spl_raftlog *g)
{
    struct spl__raftlog_seg *t = tail_seg(g);
    pthread_mutex_lock(&g->mu);
    g->tail_fd = t ? t->fd : -1;
    pthread_mutex_unlock(&g->mu);
}

/* ---- reading ---- */

uint64_t spl_raftlog_first_index(const struct spl_raftlog *g) { return g->first_index; }
uint64_t spl_raftlog_last_index(const struct spl_raftlog *g) { return g->last_index; }

int spl_raftlog_term(const struct spl_raftlog *g, uint64_t index, uint64_t *term_out)
{
    if (index + 1 < g->first_index)
        return SPL_ERAFT_COMPACTED;
    if (index > g->last_index)
        return SPL_ERAFT_UNAVAILABLE;
    if (index + 1 == g->first_index) {
        *term_out = g->prev_term;
        return 0;
    }
    const struct spl__raftlog_seg *s = seg_find(g, index);
    *term_out = s->locs[index - s->hdr.first_index].term;
    return 0;
}

static void free_block(void *ctx, void *data) { free(data); }

/* Read records [lo, lo + n) of segment s (contiguous on disk) into one buffer chain. */
static int read_run(struct spl_raftlog *g, struct spl__raftlog_seg *s, uint64_t lo, uint64_t n,
                    struct spl_iobuf *buf, uint64_t *base_out)
{
    const struct spl__raftlog_loc *a = &s->locs[lo - s->hdr.first_index];
    const struct spl__raftlog_loc *b = a + n - 1;
    uint64_t base = a->off, len = b->off + spl_raftlog_rec_size(b->len) - base;
    void *ptr;
    int rc;
    if (len <= SPL_IOBUF_BLOCK_SIZE) {
        size_t avail;
        rc = spl_iobuf_reserve(buf, (size_t)len, &ptr, &avail);
        if (rc != 0)
            return rc;
        rc = spl_vfs_pread_full(g->env->vfs, s->fd, ptr, (size_t)len, base);
        if (rc == 0)
            spl_iobuf_commit(buf, (size_t)len);
    } else {
        ptr = malloc((size_t)len);
        if (!ptr)
            return -ENOMEM;
        rc = spl_vfs_pread_full(g->env->vfs, s->fd, ptr, (size_t)len, base);
        if (rc == 0)
            rc = spl_iobuf_append_external(buf, ptr, (size_t)len, free_block, NULL);
        if (rc != 0)
            free(ptr);
    }
    if (rc == SPL_ECORRUPT)
        rc = SPL_ELOG_CORRUPT; /* the file is shorter than the index says */
    *base_out = base;
    return rc;
}

/* Check record `index` inside buf (at file offset loc->off) and hand out its data. */
static int take_record(struct spl_raftlog *g, struct spl__raftlog_seg *s, uint64_t index,
                       const struct spl_iobuf *buf, uint64_t base,
                       struct spl_raftlog_entry *out)
{
    const struct spl__raftlog_loc *loc = &s->locs[index - s->hdr.first_index];
    uint8_t scratch[SPL_RAFTLOG_REC_HEADER_SIZE];
    uint64_t at = loc->off - base;
    const uint8_t *h = spl_iobuf_peek(buf, at, sizeof(scratch), scratch);
    struct spl_raftlog_rec_header rh;
    int rc = h ? spl_raftlog_rec_header_decode(h, sizeof(scratch), g->data_max, &rh)
               : SPL_ECORRUPT;
    if (rc == 0 && (rh.index != index || rh.term != loc->term || rh.data_len != loc->len))
        rc = SPL_ECORRUPT;
    if (rc == 0) {
        uint32_t crc = spl_raftlog_rec_crc_head(s->hdr.nonce, h);
        crc = spl_iobuf_crc32c(buf, crc, at + SPL_RAFTLOG_REC_HEADER_SIZE, loc->len);
        rc = crc == rh.crc ? 0 : SPL_ECORRUPT;
    }
    if (rc != 0) {
        char path[PATH_BUF];
        seg_path(g, s, path, sizeof(path));
        why_set(NULL, 0, "%s offset %" PRIu32 ": record %" PRIu64 " failed its check on read",
                path, loc->off, index);
        return SPL_ELOG_CORRUPT;
    }
    out->term = rh.term;
    out->index = rh.index;
    out->type = rh.entry_type;
    return spl_iobuf_append_ref(&out->data, buf, at + SPL_RAFTLOG_REC_HEADER_SIZE, loc->len);
}

int spl_raftlog_entries(struct spl_raftlog *g, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                        struct spl_raftlog_entry *out, uint32_t out_cap, uint32_t *count_out)
{
    *count_out = 0;
    if (lo >= hi || out_cap == 0)
        return SPL_EINVAL_ARG;
    if (lo < g->first_index)
        return SPL_ERAFT_COMPACTED;
    if (hi > g->last_index + 1)
        return SPL_ERAFT_UNAVAILABLE;
    uint32_t n = 0;
    uint64_t bytes = 0;
    int rc = 0;
    if (max_bytes > SPL_RAFTLOG_READ_BYTES_MAX)
        max_bytes = SPL_RAFTLOG_READ_BYTES_MAX;
    while (lo < hi && n < out_cap && rc == 0) {
        struct spl__raftlog_seg *s = seg_find(g, lo);
        uint64_t end = lo; /* run [lo, end) inside s within the limits */
        while (end < hi && end <= seg_last(s) && n + (end - lo) < out_cap) {
            uint64_t len = s->locs[end - s->hdr.first_index].len;
            if (bytes + len > max_bytes && (n > 0 || end > lo))
                break;
            bytes += len;
            end++;
        }
        if (end == lo)
            break; /* the byte limit is reached */
        struct spl_iobuf buf;
        uint64_t base = 0;
        spl_iobuf_init(&buf);
        rc = read_run(g, s, lo, end - lo, &buf, &base);
        for (uint64_t i = lo; rc == 0 && i < end; i++, n++) {
            ASSERT(spl_iobuf_len(&out[n].data) == 0);
            rc = take_record(g, s, i, &buf, base, &out[n]);
        }
        spl_iobuf_reset(&buf);
        lo = end;
    }
    if (rc != 0) {
        for (uint32_t i = 0; i <= n && i < out_cap; i++)
            spl_iobuf_reset(&out[i].data);
        return rc;
    }
    *count_out = n;
    return 0;
}

void spl_raftlog_hardstate(const struct spl_raftlog *g, struct spl_raftlog_hardstate *out)
{
    *out = g->hs;
}

uint64_t spl_raftlog_snapshot_index(const struct spl_raftlog *g) { return g->snap.index; }
uint64_t spl_raftlog_snapshot_term(const struct spl_raftlog *g) { return g->snap.term; }

int spl_raftlog_snapmeta(const struct spl_raftlog *g, struct spl_raftlog_snapmeta *out)
{
    return spl__raftlog_snap_copy(out, &g->snap);
}

uint32_t spl_raftlog_segment_count(const struct spl_raftlog *g) { return g->seg_count; }

void spl_raftlog_segment_info(const struct spl_raftlog *g, uint32_t i,
                              struct spl_raftlog_seg_info *out)
{
    ASSERT(i < g->seg_count);
    const struct spl__raftlog_seg *s = g->segs[i];
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", s->name);
    out->seq = s->hdr.seq;
    out->first_index = s->hdr.first_index;
    out->last_index = seg_last(s);
    out->bytes_used = s->end_off;
    out->sealed = (s->hdr.flags & SPL_RAFTLOG_SEG_SEALED) != 0;
}

/* ---- segment lifecycle (owner, under io_mu) ---- */

/* Rewrite s's header into the slot of its next generation and fdatasync it. */
static int seg_write_header(struct spl_raftlog *g, struct spl__raftlog_seg *s,
                            const struct spl_raftlog_seg_header *h)
{
    uint8_t slot[SPL_RAFTLOG_SEG_SLOT_SIZE];
    spl_raftlog_seg_header_encode(h, slot);
    uint64_t off = (h->gen % 2) * SPL_RAFTLOG_SEG_SLOT_STRIDE;
    int rc = spl_vfs_pwrite(g->env->vfs, s->fd, slot, sizeof(slot), off);
    if (rc == 0)
        rc = spl_vfs_fdatasync(g->env->vfs, s->fd);
    STAT_ADD(g->env, st_syncs, 1);
    if (rc == 0)
        s->hdr = *h;
    return rc;
}

/* Seal s so that its last valid index is last (s keeps entries [first, last]). */
static int seg_seal(struct spl_raftlog *g, struct spl__raftlog_seg *s, uint64_t last)
{
    struct spl_raftlog_seg_header h = s->hdr;
    ASSERT(last + 1 >= h.first_index && last <= seg_last(s));
    h.flags |= SPL_RAFTLOG_SEG_SEALED;
    h.seal_last_index = last;
    h.gen++;
    int rc = seg_write_header(g, s, &h);
    if (rc == 0)
        s->count = last + 1 - h.first_index;
    return rc;
}

/* Give segment i (the first or the last) back to the pool. */
static int seg_release(struct spl_raftlog *g, uint32_t i)
{
    ASSERT(i == 0 || i + 1 == g->seg_count);
    struct spl__raftlog_seg *s = g->segs[i];
    char path[PATH_BUF];
    seg_path(g, s, path, sizeof(path));
    memmove(&g->segs[i], &g->segs[i + 1], sizeof(g->segs[0]) * (g->seg_count - i - 1));
    g->seg_count--;
    set_tail_fd(g);
    int rc = spl__raftlog_pool_give(&g->env->pool, path, s->fd);
    STAT_ADD(g->env, st_returned, 1);
    seg_free(g->env->vfs, s);
    return rc;
}

/* A fresh nonce: random (OS-seeded), mixed with what distinguishes this take even when the
 * generator is deterministic (nonce_seed): seq, first index and the pool file. */
static uint64_t seg_nonce(struct spl_raftlog *g, uint64_t id)
{
    uint64_t x = spl_rand_u64(&g->rand) ^ (g->next_seq * 0x9e3779b97f4a7c15ull) ^
                 ((g->last_index + 1) * 0xbf58476d1ce4e5b9ull) ^ (id * 0x94d049bb133111ebull);
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x | 1;
}

/* Start a new tail segment from reserved pool file id. */
static int seg_roll(struct spl_raftlog *g, uint64_t id)
{
    struct spl__raftlog_seg *t = tail_seg(g);
    int rc = 0;
    if (t && !(t->hdr.flags & SPL_RAFTLOG_SEG_SEALED)) {
        rc = spl_vfs_fdatasync(g->env->vfs, t->fd); /* workers only sync the tail */
        STAT_ADD(g->env, st_syncs, 1);
    }
    if (rc != 0) {
        spl__raftlog_pool_unreserve(&g->env->pool, &id, 1);
        return rc;
    }
    struct spl__raftlog_seg *s = calloc(1, sizeof(*s));
    ASSERT(s != NULL);
    s->fd = -1;
    s->hdr = (struct spl_raftlog_seg_header){
        .group_id = g->group_id,
        .seq = g->next_seq,
        .nonce = seg_nonce(g, id),
        .first_index = g->last_index + 1,
        .gen = 0,
        .segment_size = g->env->cfg.segment_size,
    };
    rc = spl_raftlog_term(g, g->last_index, &s->hdr.prev_term);
    ASSERT(rc == 0);
    s->end_off = SPL_RAFTLOG_SEGMENT_HEADER_SIZE;
    spl_raftlog_seg_name(s->hdr.seq, s->hdr.first_index, s->name);
    uint8_t region[HEADER_WRITE_LEN];
    memset(region, 0, sizeof(region));
    spl_raftlog_seg_header_encode(&s->hdr, region);
    char path[PATH_BUF];
    seg_path(g, s, path, sizeof(path));
    rc = spl__raftlog_pool_take(&g->env->pool, id, path, region, sizeof(region), &s->fd);
    if (id == SPL__RAFTLOG_POOL_CREATE)
        STAT_ADD(g->env, st_created, 1);
    else
        STAT_ADD(g->env, st_taken, 1);
    if (rc == 0)
        rc = segs_push(g, s);
    if (rc != 0) {
        seg_free(g->env->vfs, s);
        return rc;
    }
    g->next_seq++;
    set_tail_fd(g);
    return 0;
}

/* Delete entries >= index (first_index <= index <= last_index), durably. */
static int truncate_locked(struct spl_raftlog *g, uint64_t index)
{
    ASSERT(index >= g->first_index && index <= g->last_index);
    ASSERTF(index > g->hs.commit, "truncating committed entries: %" PRIu64 " <= commit %" PRIu64,
            index, g->hs.commit);
    int rc = 0;
    while (rc == 0 && g->seg_count > 0 && tail_seg(g)->hdr.first_index >= index)
        rc = seg_release(g, g->seg_count - 1);
    struct spl__raftlog_seg *t = tail_seg(g);
    if (rc == 0 && t && seg_last(t) >= index)
        rc = seg_seal(g, t, index - 1);
    if (rc != 0)
        return rc;
    g->last_index = index - 1;
    return 0;
}

/* Empty the log so that it continues at next (after a snapshot at next - 1). */
static int reset_locked(struct spl_raftlog *g, uint64_t next, uint64_t prev_term)
{
    int rc = 0;
    while (rc == 0 && g->seg_count > 0)
        rc = seg_release(g, g->seg_count - 1);
    if (rc != 0)
        return rc;
    g->first_index = next;
    g->last_index = next - 1;
    g->prev_term = prev_term;
    return 0;
}

/* ---- append ---- */

/* How many new segments appending ents needs, as the tail will be after truncating at
 * ents[0].index. */
static uint32_t plan_rolls(const struct spl_raftlog *g, const struct spl_raftlog_entry *ents,
                           uint32_t count)
{
    uint64_t seg_size = g->env->cfg.segment_size;
    uint64_t used = seg_size; /* no usable tail: the first record rolls */
    const struct spl__raftlog_seg *t = tail_seg(g);
    uint64_t first = ents[0].index;
    if (first <= g->last_index && first > g->first_index) {
        const struct spl__raftlog_seg *s = seg_find(g, first - 1);
        if (seg_last(s) == first - 1 && !(s->hdr.flags & SPL_RAFTLOG_SEG_SEALED))
            used = s->end_off; /* truncation releases later segments, s stays unsealed */
    } else if (first > g->last_index && t && !(t->hdr.flags & SPL_RAFTLOG_SEG_SEALED)) {
        used = t->end_off;
    }
    uint32_t rolls = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t size = spl_raftlog_rec_size(spl_iobuf_len(&ents[i].data));
        if (used + size > seg_size) {
            rolls++;
            used = SPL_RAFTLOG_SEGMENT_HEADER_SIZE;
        }
        used += size;
    }
    return rolls;
}

static int check_entries(const struct spl_raftlog *g, const struct spl_raftlog_entry *ents,
                         uint32_t count)
{
    uint64_t first = ents[0].index, prev_term;
    if (first < g->first_index || first > g->last_index + 1 || first <= g->snap.index)
        return SPL_ELOG_BADINDEX;
    if (spl_raftlog_term(g, first - 1, &prev_term) != 0)
        return SPL_ELOG_BADINDEX;
    for (uint32_t i = 0; i < count; i++) {
        if (ents[i].index != first + i || ents[i].term < prev_term || ents[i].term == 0)
            return SPL_ELOG_BADINDEX;
        if (spl_iobuf_len(&ents[i].data) > g->data_max)
            return SPL_ETOOBIG;
        prev_term = ents[i].term;
    }
    return 0;
}

struct wbatch {
    uint64_t off;   /* file offset of the first byte of the batch */
    uint64_t bytes; /* bytes in iov */
    int iov_count;
    uint32_t rec_count; /* complete records in the batch (their locs in g->batch_locs) */
    uint64_t first_index;
};

static int batch_flush(struct spl_raftlog *g, struct wbatch *b)
{
    struct spl__raftlog_seg *t = tail_seg(g);
    if (b->iov_count == 0 && b->rec_count == 0)
        return 0;
    if (b->iov_count > 0) {
        int rc = spl_vfs_pwritev(g->env->vfs, t->fd, g->iov, b->iov_count, b->off);
        if (rc != 0)
            return rc;
        STAT_ADD(g->env, st_bytes, b->bytes);
    }
    for (uint32_t i = 0; i < b->rec_count; i++) {
        const struct spl__raftlog_loc *l = &g->batch_locs[i];
        ASSERT(seg_last(t) + 1 == b->first_index + i);
        seg_push_loc(t, l->term, l->off, l->len);
    }
    g->last_index += b->rec_count;
    STAT_ADD(g->env, st_entries, b->rec_count);
    b->off += b->bytes;
    t->end_off = b->off;
    b->bytes = 0;
    b->iov_count = 0;
    b->first_index += b->rec_count;
    b->rec_count = 0;
    return 0;
}

static void batch_add(struct spl_raftlog *g, struct wbatch *b, const void *p, size_t len)
{
    ASSERT(b->iov_count < SPL__RAFTLOG_IOV_MAX);
    g->iov[b->iov_count].iov_base = (void *)p;
    g->iov[b->iov_count].iov_len = len;
    b->iov_count++;
    b->bytes += len;
}

/* Queue one record into the batch (flushing as needed). */
static int batch_record(struct spl_raftlog *g, struct wbatch *b, const struct spl_raftlog_entry *e)
{
    struct spl__raftlog_seg *t = tail_seg(g);
    uint64_t len = spl_iobuf_len(&e->data), rec_off = b->off + b->bytes;
    int rc = 0;
    if (b->rec_count == SPL__RAFTLOG_BATCH_RECS || b->iov_count + 2 > SPL__RAFTLOG_IOV_MAX) {
        rc = batch_flush(g, b);
        if (rc != 0)
            return rc;
    }
    uint8_t *h = g->hdrs + (size_t)b->rec_count * SPL_RAFTLOG_REC_HEADER_SIZE;
    struct spl_raftlog_rec_header rh = {.data_len = (uint32_t)len,
                                        .kind = SPL_RAFTLOG_REC_KIND_ENTRY,
                                        .entry_type = e->type,
                                        .nonce_tag = spl_raftlog_nonce_tag(t->hdr.nonce),
                                        .term = e->term,
                                        .index = e->index};
    spl_raftlog_rec_header_encode(&rh, h);
    rh.crc = spl_iobuf_crc32c(&e->data, spl_raftlog_rec_crc_head(t->hdr.nonce, h), 0, len);
    spl_raftlog_rec_header_encode(&rh, h);
    batch_add(g, b, h, SPL_RAFTLOG_REC_HEADER_SIZE);
    uint64_t done = 0;
    while (done < len) {
        uint64_t got = 0;
        int n = spl_iobuf_to_iovec(&e->data, done, g->iov + b->iov_count,
                                   SPL__RAFTLOG_IOV_MAX - b->iov_count, &got);
        b->iov_count += n;
        b->bytes += got;
        done += got;
        if (done < len && (rc = batch_flush(g, b)) != 0) /* a record split over writes */
            return rc;
    }
    uint64_t pad = spl_raftlog_rec_size(len) - SPL_RAFTLOG_REC_HEADER_SIZE - len;
    if (pad && b->iov_count == SPL__RAFTLOG_IOV_MAX && (rc = batch_flush(g, b)) != 0)
        return rc;
    if (pad)
        batch_add(g, b, zero_pad, (size_t)pad);
    g->batch_locs[b->rec_count++] = (struct spl__raftlog_loc){
        .term = e->term, .off = (uint32_t)rec_off, .len = (uint32_t)len};
    return 0;
}

static int write_entries(struct spl_raftlog *g, const struct spl_raftlog_entry *ents,
                         uint32_t count, uint32_t rolls)
{
    uint64_t seg_size = g->env->cfg.segment_size;
    uint32_t used_rolls = 0;
    struct wbatch b = {0};
    int rc = 0;
    struct spl__raftlog_seg *t = tail_seg(g);
    b.off = t ? t->end_off : 0;
    b.first_index = g->last_index + 1;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        uint64_t size = spl_raftlog_rec_size(spl_iobuf_len(&ents[i].data));
        t = tail_seg(g);
        bool sealed = t && (t->hdr.flags & SPL_RAFTLOG_SEG_SEALED);
        if (!t || sealed || b.off + b.bytes + size > seg_size) {
            rc = batch_flush(g, &b);
            if (rc == 0) {
                ASSERT(used_rolls < rolls);
                pthread_mutex_lock(&g->io_mu);
                rc = seg_roll(g, g->roll_ids[used_rolls++]);
                pthread_mutex_unlock(&g->io_mu);
                b.off = SPL_RAFTLOG_SEGMENT_HEADER_SIZE;
            }
        }
        if (rc == 0)
            rc = batch_record(g, &b, &ents[i]);
    }
    if (rc == 0)
        rc = batch_flush(g, &b);
    if (used_rolls < rolls)
        spl__raftlog_pool_unreserve(&g->env->pool, g->roll_ids + used_rolls, rolls - used_rolls);
    return rc;
}

static void check_hardstate(const struct spl_raftlog *g, const struct spl_raftlog_hardstate *hs)
{
    ASSERTF(hs->term >= g->hs.term, "term goes back: %" PRIu64 " < %" PRIu64, hs->term,
            g->hs.term);
    ASSERTF(hs->term > g->hs.term || g->hs.vote == 0 || hs->vote == g->hs.vote,
            "second vote in term %" PRIu64 ": %" PRIu64 " then %" PRIu64, hs->term, g->hs.vote,
            hs->vote);
    ASSERTF(hs->commit >= g->hs.commit, "commit goes back: %" PRIu64 " < %" PRIu64,
            hs->commit, g->hs.commit);
}

/* Queue req behind everything written so far. */
static int register_req(struct spl_raftlog *g, bool wrote, const struct spl_raftlog_hardstate *hs,
                        struct spl_raftlog_req *req, spl_raftlog_cb cb)
{
    pthread_mutex_lock(&g->mu);
    if (g->err != 0) {
        pthread_mutex_unlock(&g->mu);
        return SPL_ELOG_FAILED;
    }
    if (hs) {
        g->hs_pending = *hs;
        g->hs_dirty = true;
        g->hs_lazy = false;
    }
    if (wrote)
        g->data_seq++;
    req->priv_next = NULL;
    req->priv_cb = cb;
    req->priv_status = 0;
    req->priv_seq = ++g->written_seq;
    if (g->wait_tail)
        g->wait_tail->priv_next = req;
    else
        g->wait_head = req;
    g->wait_tail = req;
    if (g->state == SYNC_IDLE) {
        g->state = SYNC_QUEUED;
        spl__raftlog_env_enqueue(g->env, g);
    }
    pthread_mutex_unlock(&g->mu);
    return 0;
}

int spl_raftlog_append(struct spl_raftlog *g, const struct spl_raftlog_entry *ents,
                       uint32_t count, const struct spl_raftlog_hardstate *hs,
                       struct spl_raftlog_req *req, spl_raftlog_cb cb)
{
    ASSERT(req != NULL && cb != NULL);
    ASSERT(count == 0 || ents != NULL);
    if (count > SPL_RAFTLOG_APPEND_ENTRIES_MAX)
        return SPL_ETOOBIG;
    int rc = group_check(g);
    if (rc == 0 && count)
        rc = check_entries(g, ents, count);
    if (rc != 0)
        return rc;
    if (hs)
        check_hardstate(g, hs);
    uint32_t rolls = count ? plan_rolls(g, ents, count) : 0;
    if (g->seg_count + rolls > SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX)
        return SPL_ETOOBIG; /* also bounds roll_ids[] */
    if (rolls && (rc = spl__raftlog_pool_reserve(&g->env->pool, rolls, g->roll_ids)) != 0)
        return rc; /* POOLEMPTY: nothing changed */
    if (count && ents[0].index <= g->last_index) {
        pthread_mutex_lock(&g->io_mu);
        rc = truncate_locked(g, ents[0].index);
        pthread_mutex_unlock(&g->io_mu);
        if (rc != 0) {
            spl__raftlog_pool_unreserve(&g->env->pool, g->roll_ids, rolls);
            return group_fail(g, rc);
        }
    }
    if (count && (rc = write_entries(g, ents, count, rolls)) != 0)
        return group_fail(g, rc);
    if (hs)
        g->hs = *hs;
    rc = register_req(g, count > 0, hs, req, cb);
    if (rc == 0)
        STAT_ADD(g->env, st_appends, 1);
    DASSERT((spl__raftlog_check_invariants(g), true));
    return rc;
}

struct append_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
};

static void append_wait_cb(struct spl_raftlog_req *req, int status)
{
    struct append_waiter *w = req->data;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int spl_raftlog_append_wait(struct spl_raftlog *g, const struct spl_raftlog_entry *ents,
                            uint32_t count, const struct spl_raftlog_hardstate *hs)
{
    struct append_waiter w = {.done = false};
    struct spl_raftlog_req req = {.data = &w};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = spl_raftlog_append(g, ents, count, hs, &req, append_wait_cb);
    if (rc == 0 && g->env->thread_count == 0) {
        for (uint32_t rounds = 0; !w.done; rounds++) {
            int n = spl_raftlog_env_poll(g->env);
            ASSERTF(n > 0 || w.done, "append_wait: nothing to poll after %u rounds", rounds);
        }
    }
    pthread_mutex_lock(&w.mu);
    while (rc == 0 && !w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc != 0 ? rc : w.status;
}

void spl_raftlog_set_commit(struct spl_raftlog *g, uint64_t commit)
{
    ASSERTF(commit >= g->hs.commit, "commit goes back: %" PRIu64 " < %" PRIu64, commit,
            g->hs.commit);
    if (commit == g->hs.commit)
        return;
    g->hs.commit = commit;
    pthread_mutex_lock(&g->mu);
    g->hs_pending = g->hs;
    g->hs_lazy = true;
    pthread_mutex_unlock(&g->mu);
}

/* ---- truncate, compact, snapshots ---- */

int spl_raftlog_truncate_suffix(struct spl_raftlog *g, uint64_t index)
{
    int rc = group_check(g);
    if (rc != 0)
        return rc;
    if (index < g->first_index || index <= g->snap.index)
        return SPL_ELOG_BADINDEX;
    if (index > g->last_index)
        return 0;
    pthread_mutex_lock(&g->io_mu);
    rc = truncate_locked(g, index);
    pthread_mutex_unlock(&g->io_mu);
    if (rc != 0)
        return group_fail(g, rc);
    DASSERT((spl__raftlog_check_invariants(g), true));
    return 0;
}

int spl_raftlog_compact_prefix(struct spl_raftlog *g, uint64_t index)
{
    int rc = group_check(g);
    if (rc != 0)
        return rc;
    if (index > g->snap.index)
        return SPL_EINVAL_ARG;
    pthread_mutex_lock(&g->io_mu);
    while (rc == 0 && g->seg_count > 1 && seg_last(g->segs[0]) <= index) {
        rc = seg_release(g, 0);
        g->first_index = g->segs[0]->hdr.first_index;
        g->prev_term = g->segs[0]->hdr.prev_term;
    }
    pthread_mutex_unlock(&g->io_mu);
    if (rc != 0)
        return group_fail(g, rc);
    DASSERT((spl__raftlog_check_invariants(g), true));
    return 0;
}

static int snap_replace(struct spl_raftlog *g, const struct spl_raftlog_snapmeta *m)
{
    struct spl_raftlog_snapmeta copy;
    int rc = spl__raftlog_snap_copy(&copy, m);
    if (rc != 0)
        return rc;
    rc = spl__raftlog_snap_store(g->env->vfs, g->dir, g->group_id, m);
    if (rc != 0) {
        spl_raftlog_snapmeta_free(&copy);
        return rc;
    }
    spl_raftlog_snapmeta_free(&g->snap);
    g->snap = copy;
    return 0;
}

static bool snap_invalid(const struct spl_raftlog_snapmeta *m, int *rc)
{
    uint64_t size;
    *rc = spl_raftlog_snapmeta_size(m, &size);
    return *rc != 0;
}

int spl_raftlog_save_snapmeta(struct spl_raftlog *g, const struct spl_raftlog_snapmeta *m)
{
    uint64_t term;
    int rc = group_check(g);
    if (rc != 0 || snap_invalid(m, &rc))
        return rc;
    if (m->index < g->snap.index)
        return SPL_ERAFT_STALE;
    if (spl_raftlog_term(g, m->index, &term) != 0 || term != m->term)
        return SPL_EINVAL_ARG;
    rc = snap_replace(g, m);
    return rc == -ENOMEM || rc == 0 ? rc : group_fail(g, rc);
}

int spl_raftlog_install_snapshot(struct spl_raftlog *g, const struct spl_raftlog_snapmeta *m)
{
    uint64_t term = 0;
    int rc = group_check(g);
    if (rc != 0 || snap_invalid(m, &rc))
        return rc;
    if (m->index < g->snap.index)
        return SPL_ERAFT_STALE;
    if (m->index == 0 || m->term == 0)
        return SPL_EINVAL_ARG;
    rc = snap_replace(g, m);
    if (rc != 0)
        return rc == -ENOMEM ? rc : group_fail(g, rc);
    bool keep = spl_raftlog_term(g, m->index, &term) == 0 && term == m->term;
    if (!keep) {
        pthread_mutex_lock(&g->io_mu);
        rc = reset_locked(g, m->index + 1, m->term);
        pthread_mutex_unlock(&g->io_mu);
    }
    if (g->hs.commit < m->index)
        g->hs.commit = m->index; /* noted with the next hard state write */
    if (rc != 0)
        return group_fail(g, rc);
    DASSERT((spl__raftlog_check_invariants(g), true));
    return 0;
}
