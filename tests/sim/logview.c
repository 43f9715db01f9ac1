/* logview.c - term/type/hash model of a Raft log with storage-contract operations. */
#include "logview.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void sim_lv_init(struct sim_logview *v)
{
    memset(v, 0, sizeof(*v));
}

void sim_lv_free(struct sim_logview *v)
{
    free(v->e);
    memset(v, 0, sizeof(*v));
}

static void lv_reserve(struct sim_logview *v, uint64_t n)
{
    if (n <= v->cap)
        return;
    uint64_t cap = v->cap ? v->cap : 64;
    while (cap < n)
        cap *= 2;
    v->e = realloc(v->e, cap * sizeof(v->e[0]));
    ASSERT(v->e != NULL);
    v->cap = cap;
}

void sim_lv_copy(struct sim_logview *dst, const struct sim_logview *src)
{
    struct sim_lentry *e = dst->e;
    uint64_t cap = dst->cap;
    *dst = *src;
    dst->e = e;
    dst->cap = cap;
    lv_reserve(dst, src->count);
    if (src->count)
        memcpy(dst->e, src->e, src->count * sizeof(src->e[0]));
}

bool sim_lv_equal(const struct sim_logview *a, const struct sim_logview *b)
{
    if (a->hs.term != b->hs.term || a->hs.vote != b->hs.vote || a->hs.commit != b->hs.commit)
        return false;
    if (a->snap_index != b->snap_index || a->snap_term != b->snap_term ||
        a->snap_epoch != b->snap_epoch || a->base != b->base || a->base_term != b->base_term ||
        a->count != b->count)
        return false;
    for (uint64_t i = 0; i < a->count; i++)
        if (a->e[i].term != b->e[i].term || a->e[i].hash != b->e[i].hash ||
            a->e[i].type != b->e[i].type)
            return false;
    return true;
}

bool sim_lv_term(const struct sim_logview *v, uint64_t index, uint64_t *term)
{
    if (index == v->base) {
        *term = v->base_term;
        return true;
    }
    if (index < v->base || index > sim_lv_last(v))
        return false;
    *term = v->e[index - v->base - 1].term;
    return true;
}

const struct sim_lentry *sim_lv_at(const struct sim_logview *v, uint64_t index)
{
    if (index <= v->base || index > sim_lv_last(v))
        return NULL;
    return &v->e[index - v->base - 1];
}

bool sim_lv_apply_snapshot(struct sim_logview *v, uint64_t index, uint64_t term,
                           uint64_t epoch)
{
    if (index <= v->snap_index && v->snap_index != 0)
        return false;
    v->count = 0;
    v->base = index;
    v->base_term = term;
    v->snap_index = index;
    v->snap_term = term;
    v->snap_epoch = epoch;
    if (v->hs.commit < index)
        v->hs.commit = index;
    return true;
}

bool sim_lv_snapshot_local(struct sim_logview *v, uint64_t index, uint64_t epoch)
{
    uint64_t term;
    if (index <= v->snap_index || !sim_lv_term(v, index, &term))
        return false;
    v->snap_index = index;
    v->snap_term = term;
    v->snap_epoch = epoch;
    if (index > v->base)
        sim_lv_compact(v, index);
    return true;
}

bool sim_lv_append(struct sim_logview *v, uint64_t first, const struct sim_lentry *es,
                   uint64_t n, uint64_t *dropped_out)
{
    if (first <= v->base || first > sim_lv_last(v) + 1)
        return false;
    uint64_t keep = first - v->base - 1;
    if (dropped_out)
        *dropped_out = v->count - keep;
    v->count = keep;
    lv_reserve(v, keep + n);
    memcpy(v->e + keep, es, n * sizeof(es[0]));
    v->count = keep + n;
    return true;
}

void sim_lv_compact(struct sim_logview *v, uint64_t index)
{
    ASSERT(index > v->base && index <= sim_lv_last(v));
    uint64_t drop = index - v->base;
    v->base_term = v->e[drop - 1].term;
    memmove(v->e, v->e + drop, (v->count - drop) * sizeof(v->e[0]));
    v->count -= drop;
    v->base = index;
}

uint64_t sim_hash_iobuf(const struct spl_iobuf *b)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    for (uint32_t i = 0; i < b->slice_count; i++) {
        const uint8_t *p = spl_iobuf_slice_data(&s[i]);
        for (uint32_t k = 0; k < s[i].len; k++) {
            h ^= p[k];
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

struct sim_lentry sim_lentry_of(const struct spl_raft_entry *e)
{
    struct sim_lentry le = {.term = e->term, .hash = sim_hash_iobuf(&e->data),
                            .type = e->type};
    struct spl_raft_conf_change cc;
    if (e->type == SPL_RAFT_ENTRY_CONF && spl_raft_conf_change_decode(&e->data, &cc) == 0)
        for (uint32_t i = 0; i < cc.conf.voter_count; i++)
            if (cc.conf.voters[i] < 32)
                le.voters |= 1u << cc.conf.voters[i];
    return le;
}
