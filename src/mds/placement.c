/* placement.c - greedy copyset placement; see placement.h. */
#include "mds/placement.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/limits.h"

/* Counts of copysets shared by pairs of chunkservers (by index), open addressing. */
struct pairs {
    uint64_t *keys; /* (lo << 32 | hi) + 1; 0 = empty */
    uint32_t *counts;
    size_t cap; /* power of two */
};

static int pairs_init(struct pairs *p, size_t expected)
{
    p->cap = 64;
    while (p->cap < expected * 2)
        p->cap *= 2;
    p->keys = calloc(p->cap, sizeof *p->keys);
    p->counts = calloc(p->cap, sizeof *p->counts);
    if (!p->keys || !p->counts) {
        free(p->keys);
        free(p->counts);
        return -ENOMEM;
    }
    return 0;
}

static void pairs_free(struct pairs *p)
{
    free(p->keys);
    free(p->counts);
}

/* The slot of pair (a, b): where it is, else a reusable slot (a pair whose count dropped
 * to zero, or an empty one). The table never fills: it holds at most the distinct pairs
 * alive at once, which is at most copysets x replicas^2 / 2 (sized for twice that). */
static size_t pairs_slot(const struct pairs *p, uint32_t a, uint32_t b)
{
    uint64_t key = ((uint64_t)(a < b ? a : b) << 32 | (a < b ? b : a)) + 1;
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (p->cap - 1), reuse = p->cap;
    for (size_t probes = 0; probes < p->cap; probes++, i = (i + 1) & (p->cap - 1)) {
        if (p->keys[i] == key)
            return i;
        if (p->keys[i] == 0)
            return reuse < p->cap ? reuse : i;
        if (p->counts[i] == 0 && reuse == p->cap)
            reuse = i;
    }
    ASSERT(reuse < p->cap);
    return reuse;
}

static uint32_t pairs_get(const struct pairs *p, uint32_t a, uint32_t b)
{
    uint64_t key = ((uint64_t)(a < b ? a : b) << 32 | (a < b ? b : a)) + 1;
    size_t i = pairs_slot(p, a, b);
    return p->keys[i] == key ? p->counts[i] : 0;
}

static void pairs_add(struct pairs *p, uint32_t a, uint32_t b)
{
    uint64_t key = ((uint64_t)(a < b ? a : b) << 32 | (a < b ? b : a)) + 1;
    size_t i = pairs_slot(p, a, b);
    if (p->keys[i] != key) {
        p->keys[i] = key;
        p->counts[i] = 0;
    }
    p->counts[i]++;
}

static void pairs_dec(struct pairs *p, uint32_t a, uint32_t b)
{
    size_t i = pairs_slot(p, a, b);
    ASSERT(p->keys[i] != 0 && p->counts[i] > 0);
    p->counts[i]--;
}

static size_t distinct_zones(const struct spl_place_cs *cs, size_t n)
{
    size_t zones = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = cs[j].zone_id == cs[i].zone_id;
        zones += !seen;
    }
    return zones;
}

/* The best next member for a copyset whose first `chosen` members are picked[]. */
static size_t pick_member(const struct spl_place_cs *cs, size_t n, const uint32_t *count,
                          const struct pairs *pairs, const size_t *picked, uint32_t chosen,
                          struct spl_rand *rng)
{
    size_t best = n;
    uint64_t best_key = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        bool zone_used = false;
        uint64_t shared = 0;
        for (uint32_t r = 0; r < chosen; r++) {
            zone_used |= cs[picked[r]].zone_id == cs[i].zone_id;
            shared += pairs_get(pairs, (uint32_t)i, (uint32_t)picked[r]);
        }
        if (zone_used)
            continue;
        uint64_t key = (uint64_t)count[i] << 40 | (shared < 0xfffff ? shared : 0xfffff) << 20 |
                       spl_rand_below(rng, 1u << 20);
        if (key < best_key) {
            best_key = key;
            best = i;
        }
    }
    return best;
}

/* The change of sum(pair count^2) when `out` leaves copyset row (skipping slot) and `in`
 * takes its place: each pair count c becomes c-1 (cost 1-2c) or c+1 (cost 2c+1). */
static int64_t swap_cost(const struct pairs *p, const size_t *row, uint32_t replicas,
                         uint32_t slot, size_t out, size_t in)
{
    int64_t d = 0;
    for (uint32_t r = 0; r < replicas; r++) {
        if (r == slot)
            continue;
        d += 1 - 2 * (int64_t)pairs_get(p, (uint32_t)out, (uint32_t)row[r]);
        d += 2 * (int64_t)pairs_get(p, (uint32_t)in, (uint32_t)row[r]) + 1;
    }
    return d;
}

static void swap_apply(struct pairs *p, size_t *row, uint32_t replicas, uint32_t slot,
                       size_t in)
{
    for (uint32_t r = 0; r < replicas; r++) {
        if (r == slot)
            continue;
        pairs_dec(p, (uint32_t)row[slot], (uint32_t)row[r]);
        pairs_add(p, (uint32_t)in, (uint32_t)row[r]);
    }
    row[slot] = in;
}

static bool row_has(const size_t *row, uint32_t replicas, size_t x)
{
    for (uint32_t r = 0; r < replicas; r++)
        if (row[r] == x)
            return true;
    return false;
}

static int row_zone_slot(const struct spl_place_cs *cs, const size_t *row, uint32_t replicas,
                         uint32_t zone)
{
    for (uint32_t r = 0; r < replicas; r++)
        if (cs[row[r]].zone_id == zone)
            return (int)r;
    return -1;
}

/* Local search after the greedy pass: exchange two same-zone members of two copysets when
 * that lowers sum(pair count^2), i.e. spreads shared copysets over more distinct pairs.
 * Counts per chunkserver and the zone rule are unchanged by such an exchange. */
static void refine(const struct spl_place_cs *cs, struct pairs *pairs, size_t *rows,
                   uint32_t replicas, uint32_t copyset_count, struct spl_rand *rng)
{
    uint64_t rounds = (uint64_t)copyset_count * 64;
    for (uint64_t i = 0; i < rounds; i++) {
        uint32_t c1 = (uint32_t)spl_rand_below(rng, copyset_count);
        uint32_t c2 = (uint32_t)spl_rand_below(rng, copyset_count);
        uint32_t s1 = (uint32_t)spl_rand_below(rng, replicas);
        size_t *r1 = &rows[(size_t)c1 * replicas], *r2 = &rows[(size_t)c2 * replicas];
        int s2 = row_zone_slot(cs, r2, replicas, cs[r1[s1]].zone_id);
        if (c1 == c2 || s2 < 0)
            continue;
        size_t a = r1[s1], b = r2[s2];
        if (a == b || row_has(r1, replicas, b) || row_has(r2, replicas, a))
            continue;
        int64_t d = swap_cost(pairs, r1, replicas, s1, a, b);
        /* apply the first half to price the second half against the updated counts */
        swap_apply(pairs, r1, replicas, s1, b);
        d += swap_cost(pairs, r2, replicas, (uint32_t)s2, b, a);
        if (d < 0 || (d == 0 && spl_rand_below(rng, 4) == 0))
            swap_apply(pairs, r2, replicas, (uint32_t)s2, a);
        else
            swap_apply(pairs, r1, replicas, s1, a); /* undo */
    }
}

int spl_placement_compute(const struct spl_place_cs *cs, size_t cs_count, uint32_t replicas,
                          uint32_t copyset_count, struct spl_rand *rng, uint32_t *members)
{
    ASSERT(cs && rng && members);
    if (replicas == 0 || replicas > SPL_REPLICAS_MAX || copyset_count == 0)
        return SPL_EINVAL_ARG;
    if (distinct_zones(cs, cs_count) < replicas)
        return SPL_EPLACEMENT;
    if ((uint64_t)copyset_count * replicas > (uint64_t)cs_count * SPL_MDS_COPYSETS_PER_CS_MAX)
        return SPL_EPLACEMENT;
    uint32_t *count = calloc(cs_count, sizeof *count);
    struct pairs pairs;
    if (!count || pairs_init(&pairs, (size_t)copyset_count * replicas * replicas / 2 + 1) < 0) {
        free(count);
        return -ENOMEM;
    }
    size_t *rows = calloc((size_t)copyset_count * replicas, sizeof *rows);
    if (!rows) {
        pairs_free(&pairs);
        free(count);
        return -ENOMEM;
    }
    for (uint32_t c = 0; c < copyset_count; c++) {
        size_t *picked = &rows[(size_t)c * replicas];
        for (uint32_t r = 0; r < replicas; r++) {
            picked[r] = pick_member(cs, cs_count, count, &pairs, picked, r, rng);
            ASSERT(picked[r] < cs_count); /* enough zones was checked above */
        }
        for (uint32_t r = 0; r < replicas; r++) {
            count[picked[r]]++;
            for (uint32_t q = r + 1; q < replicas; q++)
                pairs_add(&pairs, (uint32_t)picked[r], (uint32_t)picked[q]);
        }
    }
    refine(cs, &pairs, rows, replicas, copyset_count, rng);
    for (size_t i = 0; i < (size_t)copyset_count * replicas; i++)
        members[i] = cs[rows[i]].id;
    free(rows);
    pairs_free(&pairs);
    free(count);
    return 0;
}

static size_t index_of(const struct spl_place_cs *cs, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (cs[i].id == id)
            return i;
    return n;
}

int spl_placement_stats(const struct spl_place_cs *cs, size_t cs_count, uint32_t replicas,
                        uint32_t copyset_count, const uint32_t *members,
                        struct spl_placement_stats *out)
{
    ASSERT(cs && members && out && cs_count > 0);
    memset(out, 0, sizeof *out);
    uint32_t *count = calloc(cs_count, sizeof *count);
    uint8_t *peer = calloc(cs_count * cs_count, 1);
    if (!count || !peer) {
        free(count);
        free(peer);
        return -ENOMEM;
    }
    for (uint32_t c = 0; c < copyset_count; c++) {
        size_t idx[SPL_REPLICAS_MAX];
        for (uint32_t r = 0; r < replicas; r++) {
            idx[r] = index_of(cs, cs_count, members[(size_t)c * replicas + r]);
            ASSERT(idx[r] < cs_count);
            count[idx[r]]++;
        }
        bool bad_zone = false;
        for (uint32_t r = 0; r < replicas; r++)
            for (uint32_t q = 0; q < replicas; q++) {
                if (q == r)
                    continue;
                bad_zone |= cs[idx[r]].zone_id == cs[idx[q]].zone_id;
                peer[idx[r] * cs_count + idx[q]] = 1;
            }
        out->zone_violations += bad_zone;
    }
    out->min = UINT32_MAX;
    out->scatter_min = UINT32_MAX;
    double scatter_sum = 0;
    for (size_t i = 0; i < cs_count; i++) {
        uint32_t s = 0;
        for (size_t j = 0; j < cs_count; j++)
            s += peer[i * cs_count + j];
        out->min = count[i] < out->min ? count[i] : out->min;
        out->max = count[i] > out->max ? count[i] : out->max;
        out->scatter_min = s < out->scatter_min ? s : out->scatter_min;
        scatter_sum += s;
    }
    out->mean = (double)copyset_count * replicas / (double)cs_count;
    out->scatter_mean = scatter_sum / (double)cs_count;
    free(count);
    free(peer);
    return 0;
}
