/*
 * recover.c - opening a group's log (recovery), closing it, and removing it.
 *
 * Recovery: read the hard state and the snapshot meta, list the segments, sort them by
 * seq, read each header (the valid slot with the larger generation), then scan every
 * record of every segment, checking magic, length, CRC (seeded with the segment nonce),
 * index continuity and non-decreasing terms. Where a segment's valid records must end is
 * known for every segment but the last: at its seal (when sealed) or just before the next
 * segment's first index. In the last, unsealed segment the first bad record ends the log
 * if nothing valid follows it (a torn tail: cut, and logged); if a valid record of this
 * segment follows it, the damage is in the middle and the log is refused
 * (SPL_ELOG_CORRUPT, naming the file and offset): no acknowledged entry is dropped
 * silently. Finally the log is reconciled with the snapshot (a crash inside
 * install_snapshot is finished here).
 * Threads: open/close run on the group's owner thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/raftlog_internal.h"

#define PATH_BUF (SPL_RAFTLOG_PATH_MAX + 64)
#define SCAN_WINDOW (1u << 20)
#define LIST_TMP_MAX 16

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

static uint64_t seg_last(const struct spl__raftlog_seg *s)
{
    return s->hdr.first_index + s->count - 1;
}

/* ---- listing ---- */

struct seg_name {
    uint64_t seq, first;
    char name[48];
};

struct listing {
    struct seg_name *v;
    uint32_t count, cap;
    char tmp[LIST_TMP_MAX][64];
    uint32_t tmp_count;
    const char *dir;
};

static int list_one(void *arg, const char *name)
{
    struct listing *l = arg;
    uint64_t seq, first;
    size_t n = strlen(name);
    if (spl_raftlog_seg_name_parse(name, &seq, &first)) {
        if (l->count == SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX)
            return SPL_ETOOBIG;
        if (l->count == l->cap) {
            uint32_t cap = l->cap ? l->cap * 2 : 16;
            struct seg_name *v = realloc(l->v, sizeof(v[0]) * cap);
            if (!v)
                return -ENOMEM;
            l->v = v;
            l->cap = cap;
        }
        struct seg_name *e = &l->v[l->count++];
        e->seq = seq;
        e->first = first;
        snprintf(e->name, sizeof(e->name), "%s", name);
    } else if (n > 4 && strcmp(name + n - 4, ".tmp") == 0 && n < sizeof(l->tmp[0])) {
        if (l->tmp_count < LIST_TMP_MAX)
            memcpy(l->tmp[l->tmp_count++], name, n + 1);
    } else if (strcmp(name, SPL__RAFTLOG_HS_NAME) != 0 && strcmp(name, SPL__RAFTLOG_SNAP_NAME)) {
        LOG_WARN("raftlog", "%s: ignoring unknown file %s", l->dir, name);
    }
    return 0;
}

static int seg_name_cmp(const void *a, const void *b)
{
    const struct seg_name *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- buffered segment reader ---- */

struct reader {
    const struct spl_vfs *vfs;
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t base;
    size_t len;
};

/* Make [off, off + n) readable: *out points at it, or is NULL past the end of file. */
static int rd_get(struct reader *r, uint64_t off, uint64_t n, const uint8_t **out)
{
    *out = NULL;
    if (off > r->size || n > r->size - off)
        return 0;
    if (off >= r->base && off + n <= r->base + r->len) {
        *out = r->buf + (off - r->base);
        return 0;
    }
    uint64_t want = n > SCAN_WINDOW ? n : SCAN_WINDOW;
    if (want > r->size - off)
        want = r->size - off;
    if (want > r->cap) {
        uint8_t *buf = realloc(r->buf, (size_t)want);
        if (!buf)
            return -ENOMEM;
        r->buf = buf;
        r->cap = (size_t)want;
    }
    r->len = 0;
    int rc = spl_vfs_pread_full(r->vfs, r->fd, r->buf, (size_t)want, off);
    if (rc != 0)
        return rc == SPL_ECORRUPT ? -EIO : rc; /* the file shrank under us */
    r->base = off;
    r->len = (size_t)want;
    *out = r->buf;
    return 0;
}

/* Is there a complete, valid record of this segment at off? */
static int rd_record(struct reader *r, uint64_t off, uint64_t nonce, uint64_t data_max,
                     struct spl_raftlog_rec_header *h, bool *ok)
{
    const uint8_t *p;
    *ok = false;
    int rc = rd_get(r, off, SPL_RAFTLOG_REC_HEADER_SIZE, &p);
    if (rc != 0 || !p)
        return rc;
    uint64_t room = r->size - off - SPL_RAFTLOG_REC_HEADER_SIZE;
    if (spl_raftlog_rec_header_decode(p, SPL_RAFTLOG_REC_HEADER_SIZE,
                                      data_max < room ? data_max : room, h) != 0)
        return 0;
    rc = rd_get(r, off, SPL_RAFTLOG_REC_HEADER_SIZE + h->data_len, &p);
    if (rc != 0 || !p)
        return rc;
    *ok = spl_raftlog_rec_verify(p, SPL_RAFTLOG_REC_HEADER_SIZE + h->data_len, nonce, data_max,
                                 h) == 0;
    return 0;
}

/* ---- scanning ---- */

struct scan {
    uint64_t last, last_term, end_off;
    bool bad;
    char bad_why[96];
};

static int scan_records(struct spl_raftlog *g, struct spl__raftlog_seg *s, struct reader *r,
                        uint64_t limit, struct scan *out)
{
    uint64_t off = SPL_RAFTLOG_SEGMENT_HEADER_SIZE, expect = s->hdr.first_index;
    uint64_t term = s->hdr.prev_term;
    struct spl_raftlog_rec_header h;
    memset(out, 0, sizeof(*out));
    while (expect <= limit) {
        bool ok;
        int rc = rd_record(r, off, s->hdr.nonce, g->data_max, &h, &ok);
        if (rc != 0)
            return rc;
        if (!ok || h.index != expect || h.term < term) {
            out->bad = true;
            snprintf(out->bad_why, sizeof(out->bad_why),
                     !ok                  ? "no valid record (torn, zero or CRC mismatch)"
                     : h.index != expect ? "record has the wrong index"
                                         : "record term goes down");
            break;
        }
        if (s->count == s->cap) {
            uint64_t cap = s->cap ? s->cap * 2 : 256;
            struct spl__raftlog_loc *locs = realloc(s->locs, sizeof(locs[0]) * cap);
            if (!locs)
                return -ENOMEM;
            s->locs = locs;
            s->cap = cap;
        }
        s->locs[s->count++] = (struct spl__raftlog_loc){
            .term = h.term, .off = (uint32_t)off, .len = h.data_len};
        off += spl_raftlog_rec_size(h.data_len);
        expect++;
        term = h.term;
    }
    out->last = expect - 1;
    out->last_term = term;
    out->end_off = off;
    return 0;
}

/* After a bad record at off in the last segment: does any valid record follow it? */
static int scan_valid_after(struct spl_raftlog *g, struct spl__raftlog_seg *s, struct reader *r,
                            uint64_t off, bool *found, uint64_t *found_off)
{
    *found = false;
    for (uint64_t p = off + SPL_RAFTLOG_REC_ALIGN; p + SPL_RAFTLOG_REC_HEADER_SIZE <= r->size;
         p += SPL_RAFTLOG_REC_ALIGN) {
        const uint8_t *b;
        int rc = rd_get(r, p, 4, &b);
        if (rc != 0)
            return rc;
        if (!b || b[0] != 'S' || b[1] != 'P' || b[2] != 'L' || b[3] != 'R')
            continue;
        struct spl_raftlog_rec_header h;
        bool ok;
        rc = rd_record(r, p, s->hdr.nonce, g->data_max, &h, &ok);
        if (rc != 0)
            return rc;
        if (ok) {
            *found = true;
            *found_off = p;
            return 0;
        }
    }
    return 0;
}

/* ---- opening ---- */

static int open_segment(struct spl_raftlog *g, const struct seg_name *e,
                        struct spl__raftlog_seg **out, char *why, size_t why_len)
{
    const struct spl_vfs *vfs = g->env->vfs;
    char path[PATH_BUF];
    uint8_t region[2 * SPL_RAFTLOG_SEG_SLOT_STRIDE];
    uint64_t size = 0;
    spl__raftlog_path(path, sizeof(path), g->dir, e->name);
    struct spl__raftlog_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    snprintf(s->name, sizeof(s->name), "%s", e->name);
    int rc = spl_vfs_open(vfs, path, SPL_VFS_RDWR, &s->fd);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    rc = spl_vfs_fsize(vfs, s->fd, &size);
    if (rc == 0 && size != g->env->cfg.segment_size) {
        why_set(why, why_len, "%s: %" PRIu64 " bytes, segments have %" PRIu64, path, size,
                g->env->cfg.segment_size);
        return SPL_ELOG_FOREIGN;
    }
    if (rc == 0)
        rc = spl_vfs_pread_full(vfs, s->fd, region, sizeof(region), 0);
    if (rc != 0)
        return rc == SPL_ECORRUPT ? SPL_ELOG_CORRUPT : rc;
    rc = spl_raftlog_seg_header_pick(region, sizeof(region), &s->hdr, NULL, NULL);
    if (rc != 0) {
        why_set(why, why_len, "%s offset 0: no valid segment header", path);
        return rc == SPL_EVERSION ? rc : SPL_ELOG_CORRUPT;
    }
    if (s->hdr.group_id != g->group_id || s->hdr.segment_size != size) {
        why_set(why, why_len, "%s: segment of group %" PRIu64 " (size %" PRIu64 ")", path,
                s->hdr.group_id, s->hdr.segment_size);
        return SPL_ELOG_FOREIGN;
    }
    if (s->hdr.seq != e->seq || s->hdr.first_index != e->first) {
        why_set(why, why_len, "%s offset 0: header (seq %" PRIu64 ", first %" PRIu64
                ") does not match the name", path, s->hdr.seq, s->hdr.first_index);
        return SPL_ELOG_CORRUPT;
    }
    return 0;
}

/* Scan segment k of n; check that it continues segment k - 1. */
static int recover_segment(struct spl_raftlog *g, uint32_t k, struct reader *r, char *why,
                           size_t why_len)
{
    struct spl__raftlog_seg *s = g->segs[k];
    bool sealed = (s->hdr.flags & SPL_RAFTLOG_SEG_SEALED) != 0;
    bool last_seg = k + 1 == g->seg_count;
    char path[PATH_BUF];
    struct scan sc;
    spl__raftlog_path(path, sizeof(path), g->dir, s->name);
    if (k > 0) {
        const struct spl__raftlog_seg *p = g->segs[k - 1];
        uint64_t p_term = p->count ? p->locs[p->count - 1].term : p->hdr.prev_term;
        if (s->hdr.first_index != seg_last(p) + 1 || s->hdr.prev_term != p_term) {
            why_set(why, why_len, "%s offset 0: starts at %" PRIu64 " (prev term %" PRIu64
                    ") but the previous segment ends at %" PRIu64 " (term %" PRIu64 ")",
                    path, s->hdr.first_index, s->hdr.prev_term, seg_last(p), p_term);
            return SPL_ELOG_CORRUPT;
        }
    }
    uint64_t limit = sealed ? s->hdr.seal_last_index
                     : last_seg ? UINT64_MAX
                                : g->segs[k + 1]->hdr.first_index - 1;
    r->fd = s->fd;
    r->base = r->len = 0;
    int rc = scan_records(g, s, r, limit, &sc);
    if (rc != 0)
        return rc;
    s->end_off = sc.end_off;
    if (sealed || !last_seg) {
        if (sc.last != limit) {
            why_set(why, why_len, "%s offset %" PRIu64 ": %s; entries %" PRIu64 "..%" PRIu64
                    " missing", path, sc.end_off, sc.bad_why, sc.last + 1, limit);
            return SPL_ELOG_CORRUPT;
        }
        return 0;
    }
    if (!sc.bad)
        return 0;
    bool found = false;
    uint64_t found_off = 0;
    rc = scan_valid_after(g, s, r, sc.end_off, &found, &found_off);
    if (rc != 0)
        return rc;
    if (found) {
        why_set(why, why_len, "%s offset %" PRIu64 ": %s, but a valid record follows at "
                "offset %" PRIu64 ": corruption before the tail", path, sc.end_off,
                sc.bad_why, found_off);
        return SPL_ELOG_CORRUPT;
    }
    /* a record header of this segment (nonce tag) with the next index: the cut drops a
     * torn write; anything else is where this segment's records simply end */
    const uint8_t *p;
    struct spl_raftlog_rec_header h;
    rc = rd_get(r, sc.end_off, SPL_RAFTLOG_REC_HEADER_SIZE, &p);
    if (rc == 0 && p &&
        spl_raftlog_rec_header_decode(p, SPL_RAFTLOG_REC_HEADER_SIZE, UINT64_MAX, &h) == 0 &&
        h.index == sc.last + 1 && h.nonce_tag == spl_raftlog_nonce_tag(s->hdr.nonce))
        LOG_WARN("raftlog", "%s: torn tail cut at offset %" PRIu64 " after entry %" PRIu64,
                 path, sc.end_off, sc.last);
    return rc;
}

static int load_segments(struct spl_raftlog *g, struct listing *l, char *why, size_t why_len)
{
    if (l->count)
        qsort(l->v, l->count, sizeof(l->v[0]), seg_name_cmp);
    for (uint32_t i = 0; i < l->count; i++) {
        if (i > 0 && l->v[i].seq == l->v[i - 1].seq) {
            why_set(why, why_len, "%s/%s: two segments with seq %" PRIu64, g->dir, l->v[i].name,
                    l->v[i].seq);
            return SPL_ELOG_CORRUPT;
        }
        struct spl__raftlog_seg *s = NULL;
        int rc = open_segment(g, &l->v[i], &s, why, why_len);
        if (s) {
            g->segs[g->seg_count++] = s;
            if (s->hdr.seq >= g->next_seq)
                g->next_seq = s->hdr.seq + 1;
        }
        if (rc != 0)
            return rc;
    }
    struct reader r = {.vfs = g->env->vfs, .size = g->env->cfg.segment_size};
    int rc = 0;
    for (uint32_t k = 0; k < g->seg_count && rc == 0; k++)
        rc = recover_segment(g, k, &r, why, why_len);
    free(r.buf);
    return rc;
}

/* Make the log agree with the snapshot (finish an interrupted install_snapshot). */
static int reconcile_snapshot(struct spl_raftlog *g, char *why, size_t why_len)
{
    const struct spl_raftlog_snapmeta *m = &g->snap;
    if (g->seg_count) {
        g->first_index = g->segs[0]->hdr.first_index;
        g->prev_term = g->segs[0]->hdr.prev_term;
        g->last_index = seg_last(g->segs[g->seg_count - 1]);
    } else {
        g->first_index = m->index + 1;
        g->prev_term = m->term;
        g->last_index = m->index;
    }
    if (m->index == 0)
        return 0;
    if (g->first_index > m->index + 1) {
        why_set(why, why_len, "%s: log starts at %" PRIu64 ", after the snapshot at %" PRIu64,
                g->dir, g->first_index, m->index);
        return SPL_ELOG_CORRUPT;
    }
    uint64_t term = 0;
    if (spl_raftlog_term(g, m->index, &term) == 0 && term == m->term)
        return 0;
    LOG_WARN("raftlog", "%s: log (%" PRIu64 "..%" PRIu64 ") does not hold the snapshot's "
             "entry %" PRIu64 "/%" PRIu64 ": reset to the snapshot", g->dir, g->first_index,
             g->last_index, m->index, m->term);
    while (g->seg_count > 0) {
        struct spl__raftlog_seg *s = g->segs[--g->seg_count];
        char path[PATH_BUF];
        spl__raftlog_path(path, sizeof(path), g->dir, s->name);
        int rc = spl__raftlog_pool_give(&g->env->pool, path, s->fd);
        spl_vfs_close(g->env->vfs, s->fd);
        free(s->locs);
        free(s);
        if (rc != 0)
            return rc;
    }
    g->first_index = m->index + 1;
    g->prev_term = m->term;
    g->last_index = m->index;
    return 0;
}

static int create_log(struct spl_raftlog *g, char *why, size_t why_len)
{
    const struct spl_vfs *vfs = g->env->vfs;
    char parent[PATH_BUF];
    snprintf(parent, sizeof(parent), "%s", g->dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), slash ? "/" : ".");
    int rc = spl_vfs_mkdir(vfs, g->dir);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, parent);
    if (rc != 0 && rc != -EEXIST)
        return rc;
    struct listing l = {.dir = g->dir};
    rc = spl_vfs_list_dir(vfs, g->dir, list_one, &l);
    free(l.v);
    if (rc == 0 && l.count > 0) {
        why_set(why, why_len, "%s: segments but no hard state (a removal was interrupted?)",
                g->dir);
        return SPL_ELOG_CORRUPT;
    }
    return rc ? rc : spl__raftlog_hs_create(vfs, g->dir, g->group_id);
}

static void group_free(struct spl_raftlog *g)
{
    for (uint32_t i = 0; i < g->seg_count; i++) {
        if (g->segs[i]->fd >= 0)
            spl_vfs_close(g->env->vfs, g->segs[i]->fd);
        free(g->segs[i]->locs);
        free(g->segs[i]);
    }
    if (g->hs_fd >= 0)
        spl_vfs_close(g->env->vfs, g->hs_fd);
    free(g->segs);
    spl_raftlog_snapmeta_free(&g->snap);
    free(g->iov);
    free(g->hdrs);
    free(g->batch_locs);
    free(g->roll_ids);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    pthread_mutex_destroy(&g->io_mu);
    free(g);
}

static struct spl_raftlog *group_new(struct spl_raftlog_env *env, uint64_t group_id,
                                     const char *dir)
{
    struct spl_raftlog *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->env = env;
    g->group_id = group_id;
    snprintf(g->dir, sizeof(g->dir), "%s", dir);
    g->hs_fd = g->tail_fd = -1;
    g->next_seq = 1;
    g->data_max = spl_raftlog_entry_data_max(env);
    pthread_mutex_init(&g->io_mu, NULL);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (env->cfg.nonce_seed)
        spl_rand_seed(&g->rand, env->cfg.nonce_seed ^ (group_id * 0x9e3779b97f4a7c15ull));
    else
        spl_rand_seed_from_os(&g->rand);
    g->iov = calloc(SPL__RAFTLOG_IOV_MAX, sizeof(*g->iov));
    g->hdrs = calloc(SPL__RAFTLOG_BATCH_RECS, SPL_RAFTLOG_REC_HEADER_SIZE);
    g->batch_locs = calloc(SPL__RAFTLOG_BATCH_RECS, sizeof(*g->batch_locs));
    g->roll_ids = calloc(SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX, sizeof(*g->roll_ids));
    g->segs = calloc(SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX, sizeof(*g->segs));
    g->seg_cap = SPL_RAFTLOG_SEGMENTS_PER_GROUP_MAX;
    if (!g->iov || !g->hdrs || !g->batch_locs || !g->roll_ids || !g->segs) {
        group_free(g);
        return NULL;
    }
    return g;
}

static void remove_tmp(struct spl_raftlog *g, const struct listing *l)
{
    for (uint32_t i = 0; i < l->tmp_count; i++) {
        char path[PATH_BUF];
        spl__raftlog_path(path, sizeof(path), g->dir, l->tmp[i]);
        int rc = spl_vfs_unlink(g->env->vfs, path);
        if (rc != 0 && rc != -ENOENT)
            LOG_WARN("raftlog", "%s: cannot remove: %s", path, spl_strerror(rc));
    }
}

static int recover(struct spl_raftlog *g, int flags, char *why, size_t why_len)
{
    const struct spl_vfs *vfs = g->env->vfs;
    struct spl_raftlog_hs_slot slot;
    int rc = spl__raftlog_hs_load(vfs, g->dir, g->group_id, &g->hs_fd, &slot, why, why_len);
    if (rc == -ENOENT && (flags & SPL_RAFTLOG_CREATE)) {
        rc = create_log(g, why, why_len);
        if (rc == 0)
            rc = spl__raftlog_hs_load(vfs, g->dir, g->group_id, &g->hs_fd, &slot, why,
                                      why_len);
    }
    if (rc != 0)
        return rc;
    g->hs = g->hs_pending = slot.hs;
    g->hs_seq = g->hs_durable_seq = slot.seq;
    /* the slot read may be a commit-only write still in the page cache (a process crash
     * keeps it there): make it durable before the next write may overwrite the other */
    rc = spl_vfs_fdatasync(vfs, g->hs_fd);
    if (rc != 0) {
        why_set(why, why_len, "%s: cannot sync the hard state: %s", g->dir, spl_strerror(rc));
        return rc;
    }
    rc = spl__raftlog_snap_load(vfs, g->dir, g->group_id, &g->snap, why, why_len);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    struct listing l = {.dir = g->dir};
    rc = spl_vfs_list_dir(vfs, g->dir, list_one, &l);
    if (rc == 0) {
        remove_tmp(g, &l);
        rc = load_segments(g, &l, why, why_len);
    }
    free(l.v);
    if (rc == 0)
        rc = reconcile_snapshot(g, why, why_len);
    if (rc != 0)
        return rc;
    if (g->hs.commit > g->last_index) {
        LOG_WARN("raftlog", "%s: hard state commit %" PRIu64 " is past the log's end %" PRIu64
                 ": lowered", g->dir, g->hs.commit, g->last_index);
        g->hs.commit = g->hs_pending.commit = g->last_index;
    }
    g->tail_fd = g->seg_count ? g->segs[g->seg_count - 1]->fd : -1;
    spl__raftlog_check_invariants(g);
    return 0;
}

int spl_raftlog_open(struct spl_raftlog_env *env, uint64_t group_id, const char *dir,
                     int flags, struct spl_raftlog **out, char *why, size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    if (!dir || strlen(dir) >= SPL_RAFTLOG_PATH_MAX || group_id == 0)
        return SPL_EINVAL_ARG;
    pthread_mutex_lock(&env->qmu);
    bool full = env->group_count >= SPL_RAFTLOG_GROUPS_MAX;
    if (!full)
        env->group_count++;
    pthread_mutex_unlock(&env->qmu);
    if (full)
        return SPL_ETOOBIG;
    struct spl_raftlog *g = group_new(env, group_id, dir);
    int rc = g ? recover(g, flags, why, why_len) : -ENOMEM;
    if (rc != 0) {
        if (g)
            group_free(g);
        pthread_mutex_lock(&env->qmu);
        env->group_count--;
        pthread_mutex_unlock(&env->qmu);
        return rc;
    }
    *out = g;
    return 0;
}

void spl_raftlog_close(struct spl_raftlog *g)
{
    if (!g)
        return;
    struct spl_raftlog_env *env = g->env;
    pthread_mutex_lock(&g->mu);
    bool lazy = g->hs_lazy && g->err == 0;
    pthread_mutex_unlock(&g->mu);
    if (lazy)
        (void)spl_raftlog_append_wait(g, NULL, 0, NULL);
    pthread_mutex_lock(&g->mu);
    while (g->state != SYNC_IDLE || g->wait_head) {
        if (env->thread_count == 0) {
            pthread_mutex_unlock(&g->mu);
            spl_raftlog_env_poll(env);
            pthread_mutex_lock(&g->mu);
            continue;
        }
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    if (g->err == 0 && g->hs_seq != g->hs_durable_seq &&
        spl_vfs_fdatasync(env->vfs, g->hs_fd) == 0) /* a clean close keeps the commit */
        g->hs_durable_seq = g->hs_seq;
    group_free(g);
    pthread_mutex_lock(&env->qmu);
    env->group_count--;
    pthread_mutex_unlock(&env->qmu);
}

int spl_raftlog_remove(struct spl_raftlog_env *env, const char *dir)
{
    const struct spl_vfs *vfs = env->vfs;
    char path[PATH_BUF], parent[PATH_BUF];
    struct listing l = {.dir = dir};
    spl__raftlog_path(path, sizeof(path), dir, SPL__RAFTLOG_HS_NAME);
    /* first the hard state: from then on the directory is no log any more */
    int rc = spl_vfs_unlink(vfs, path);
    if (rc == 0)
        rc = spl_vfs_sync_dir(vfs, dir);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    rc = spl_vfs_list_dir(vfs, dir, list_one, &l);
    for (uint32_t i = 0; rc == 0 && i < l.count; i++) {
        int fd;
        spl__raftlog_path(path, sizeof(path), dir, l.v[i].name);
        rc = spl_vfs_open(vfs, path, SPL_VFS_RDWR, &fd);
        if (rc == 0) {
            rc = spl__raftlog_pool_give(&env->pool, path, fd);
            spl_vfs_close(vfs, fd);
        }
    }
    free(l.v);
    for (uint32_t i = 0; rc == 0 && i <= l.tmp_count; i++) {
        spl__raftlog_path(path, sizeof(path), dir,
                          i < l.tmp_count ? l.tmp[i] : SPL__RAFTLOG_SNAP_NAME);
        rc = spl_vfs_unlink(vfs, path);
        rc = rc == -ENOENT ? 0 : rc;
    }
    if (rc != 0)
        return rc;
    rc = spl_vfs_rmdir(vfs, dir);
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), slash ? "/" : ".");
    return rc ? rc : spl_vfs_sync_dir(vfs, parent);
}
