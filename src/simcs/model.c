/*
 * model.c - the simulated copyset model of spline-simcs; see model.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "simcs/model.h"

/* ---- a small u64 -> u32 open-addressing map ---- */

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static int map_put(struct u64map *m, uint64_t key, uint32_t val);

static int map_grow(struct u64map *m)
{
    struct u64map n = {.cap = m->cap ? m->cap * 2 : 1024};
    n.keys = calloc(n.cap, sizeof *n.keys);
    n.vals = calloc(n.cap, sizeof *n.vals);
    if (!n.keys || !n.vals) {
        free(n.keys);
        free(n.vals);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            map_put(&n, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

static int map_put(struct u64map *m, uint64_t key, uint32_t val)
{
    if ((m->count + 1) * 2 > m->cap && map_grow(m) < 0)
        return -ENOMEM;
    for (uint32_t i = (uint32_t)mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key || m->keys[i] == 0) {
            m->count += m->keys[i] == 0;
            m->keys[i] = key;
            m->vals[i] = val;
            return 0;
        }
    }
}

static bool map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
    if (!m->cap)
        return false;
    for (uint32_t i = (uint32_t)mix(key) & (m->cap - 1); m->keys[i];
         i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return true;
        }
    return false;
}

static uint64_t gkey(uint32_t lpool, uint32_t id) { return (uint64_t)lpool << 32 | id; }

static uint64_t rnd(struct sim_model *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

/* ---- model ---- */

int sim_model_init(struct sim_model *m, uint32_t cs_count, uint64_t seed, const char *host,
                   uint16_t port)
{
    memset(m, 0, sizeof *m);
    m->cs = calloc(cs_count ? cs_count : 1, sizeof *m->cs);
    if (!m->cs)
        return -ENOMEM;
    m->cs_count = cs_count;
    m->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    m->host = host;
    m->port = port;
    for (uint32_t i = 0; i < cs_count; i++)
        m->cs[i].alive = true;
    pthread_mutex_init(&m->lock, NULL);
    return 0;
}

void sim_model_destroy(struct sim_model *m)
{
    for (uint32_t i = 0; i < m->cs_count; i++)
        free(m->cs[i].reps);
    free(m->cs);
    free(m->groups);
    free(m->cs_by_id.keys);
    free(m->cs_by_id.vals);
    free(m->group_by_key.keys);
    free(m->group_by_key.vals);
    pthread_mutex_destroy(&m->lock);
}

void sim_model_set_id(struct sim_model *m, uint32_t index, uint32_t id, const char *token)
{
    pthread_mutex_lock(&m->lock);
    m->cs[index].id = id;
    snprintf(m->cs[index].token, sizeof m->cs[index].token, "%s", token ? token : "");
    if (id)
        map_put(&m->cs_by_id, id, index);
    pthread_mutex_unlock(&m->lock);
}

uint32_t sim_model_id(struct sim_model *m, uint32_t index)
{
    pthread_mutex_lock(&m->lock);
    uint32_t id = m->cs[index].id;
    pthread_mutex_unlock(&m->lock);
    return id;
}

static int index_locked(struct sim_model *m, uint32_t id)
{
    uint32_t v;
    return id && map_get(&m->cs_by_id, id, &v) ? (int)v : -1;
}

int sim_model_index(struct sim_model *m, uint32_t id)
{
    pthread_mutex_lock(&m->lock);
    int r = index_locked(m, id);
    pthread_mutex_unlock(&m->lock);
    return r;
}

static bool is_member(const struct sim_group *g, uint32_t id)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->members[i] == id)
            return true;
    return false;
}

static struct sim_replica *find_rep(struct sim_cs *c, uint32_t gi)
{
    for (uint32_t i = 0; i < c->rep_count; i++)
        if (c->reps[i].group == gi)
            return &c->reps[i];
    return NULL;
}

static int add_rep(struct sim_cs *c, uint32_t gi)
{
    if (c->rep_count == c->rep_cap) {
        uint32_t cap = c->rep_cap ? c->rep_cap * 2 : 16;
        struct sim_replica *n = realloc(c->reps, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->reps = n;
        c->rep_cap = cap;
    }
    c->reps[c->rep_count++] = (struct sim_replica){.group = gi};
    return 0;
}

static void snapshot(struct sim_replica *r, const struct sim_group *g)
{
    r->stale = true;
    r->stale_epoch = g->epoch;
    r->stale_n = g->n;
    memcpy(r->stale_members, g->members, sizeof r->stale_members);
}

static int group_for(struct sim_model *m, const Spline__CopysetSpec *s, uint32_t *gi_out)
{
    uint64_t key = gkey(s->id->logical_pool_id, s->id->copyset_id);
    if (map_get(&m->group_by_key, key, gi_out))
        return 0;
    if (m->group_count == m->group_cap) {
        uint32_t cap = m->group_cap ? m->group_cap * 2 : 1024;
        struct sim_group *n = realloc(m->groups, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        m->groups = n;
        m->group_cap = cap;
    }
    struct sim_group *g = &m->groups[m->group_count];
    *g = (struct sim_group){.lpool = s->id->logical_pool_id, .id = s->id->copyset_id};
    for (size_t p = 0; p < s->n_peers && g->n < SIM_MEMBERS_MAX; p++)
        g->members[g->n++] = s->peers[p]->chunkserver_id;
    *gi_out = m->group_count++;
    return map_put(&m->group_by_key, key, *gi_out);
}

int sim_model_create(struct sim_model *m, uint32_t cs_id, const Spline__CreateCopysetsRequest *r)
{
    pthread_mutex_lock(&m->lock);
    int idx = index_locked(m, cs_id), rc = 0;
    if (idx < 0)
        rc = SPL_ECS_MISMATCH;
    for (size_t i = 0; rc == 0 && i < r->n_copysets; i++) {
        const Spline__CopysetSpec *s = r->copysets[i];
        if (!s->id || !s->id->logical_pool_id || !s->id->copyset_id || s->n_peers == 0) {
            rc = SPL_EINVAL_ARG;
            break;
        }
        uint32_t gi;
        if ((rc = group_for(m, s, &gi)) < 0)
            break;
        struct sim_cs *c = &m->cs[idx];
        if (find_rep(c, gi))
            continue;
        if ((rc = add_rep(c, gi)) < 0)
            break;
        if (!is_member(&m->groups[gi], cs_id)) /* a replica being added: not a voter yet */
            snapshot(&c->reps[c->rep_count - 1], &m->groups[gi]);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* holds - chunkserver id is alive and has a replica of group gi. */
static bool holds(struct sim_model *m, uint32_t id, uint32_t gi)
{
    int idx = index_locked(m, id);
    return idx >= 0 && m->cs[idx].alive && find_rep(&m->cs[idx], gi) != NULL;
}

void sim_model_tick(struct sim_model *m)
{
    pthread_mutex_lock(&m->lock);
    for (uint32_t gi = 0; gi < m->group_count; gi++) {
        struct sim_group *g = &m->groups[gi];
        if (g->leader && is_member(g, g->leader) && holds(m, g->leader, gi))
            continue;
        uint32_t cand[SIM_MEMBERS_MAX], n = 0;
        for (uint32_t i = 0; i < g->n; i++)
            if (holds(m, g->members[i], gi))
                cand[n++] = g->members[i];
        if (n < g->n / 2 + 1) {
            g->leader = 0;
            continue;
        }
        g->leader = cand[rnd(m) % n];
        g->term++;
        g->epoch++; /* a new leader re-commits the configuration */
        m->elections++;
    }
    pthread_mutex_unlock(&m->lock);
}

static Spline__PeerAddr *peer(struct sim_model *m, uint32_t id)
{
    Spline__PeerAddr *p = malloc(sizeof *p);
    spline__peer_addr__init(p);
    p->chunkserver_id = id;
    p->host = (char *)m->host;
    p->port = m->port;
    return p;
}

Spline__HeartbeatRequest *sim_model_report(struct sim_model *m, uint32_t i)
{
    pthread_mutex_lock(&m->lock);
    struct sim_cs *c = &m->cs[i];
    if (!c->id || !c->alive) {
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    Spline__HeartbeatRequest *r = calloc(1, sizeof *r);
    spline__heartbeat_request__init(r);
    r->chunkserver_id = c->id;
    r->token = strdup(c->token);
    r->host = strdup(m->host);
    r->port = m->port;
    r->copysets = calloc(c->rep_count + 1, sizeof *r->copysets);
    for (uint32_t k = 0; k < c->rep_count; k++) {
        const struct sim_replica *rep = &c->reps[k];
        const struct sim_group *g = &m->groups[rep->group];
        Spline__CopysetReport *cr = calloc(1, sizeof *cr);
        spline__copyset_report__init(cr);
        cr->id = calloc(1, sizeof *cr->id);
        spline__copyset_id__init(cr->id);
        cr->id->logical_pool_id = g->lpool;
        cr->id->copyset_id = g->id;
        bool member = !rep->stale && is_member(g, c->id);
        const uint32_t *mem = member ? g->members : rep->stale_members;
        uint32_t n = member ? g->n : rep->stale_n;
        cr->epoch = member ? g->epoch : rep->stale_epoch;
        cr->term = g->term;
        if (member && g->leader) {
            cr->leader = peer(m, g->leader);
            r->leader_count += g->leader == c->id;
        }
        cr->peers = calloc(n + 1, sizeof *cr->peers);
        for (uint32_t p = 0; p < n; p++)
            cr->peers[cr->n_peers++] = peer(m, mem[p]);
        cr->caught_up = true;
        r->copysets[r->n_copysets++] = cr;
    }
    r->copyset_count = (uint32_t)r->n_copysets;
    pthread_mutex_unlock(&m->lock);
    return r;
}

void sim_model_report_free(Spline__HeartbeatRequest *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->n_copysets; k++) {
        Spline__CopysetReport *cr = r->copysets[k];
        for (size_t p = 0; p < cr->n_peers; p++)
            free(cr->peers[p]);
        free(cr->peers);
        free(cr->leader);
        free(cr->id);
        free(cr);
    }
    free(r->copysets);
    free(r->token);
    free(r->host);
    free(r);
}

static void remove_member(struct sim_model *m, struct sim_group *g, uint32_t gi, uint32_t id)
{
    int idx = index_locked(m, id);
    struct sim_replica *rep = idx >= 0 ? find_rep(&m->cs[idx], gi) : NULL;
    if (rep)
        snapshot(rep, g); /* it keeps the configuration it last saw */
    for (uint32_t i = 0; i < g->n; i++)
        if (g->members[i] == id) {
            g->members[i] = g->members[--g->n];
            break;
        }
    if (g->leader == id)
        g->leader = 0; /* elected again at the next tick */
}

static void add_member(struct sim_model *m, struct sim_group *g, uint32_t gi, uint32_t id)
{
    if (is_member(g, id) || g->n == SIM_MEMBERS_MAX)
        return;
    g->members[g->n++] = id;
    int idx = index_locked(m, id);
    struct sim_replica *rep = idx >= 0 ? find_rep(&m->cs[idx], gi) : NULL;
    if (rep)
        rep->stale = false;
}

/* apply_one - execute one order at chunkserver c; true when it changed something. */
static bool apply_one(struct sim_model *m, struct sim_cs *c, const Spline__CopysetOrder *o)
{
    uint32_t gi;
    if (!o->id || !map_get(&m->group_by_key, gkey(o->id->logical_pool_id, o->id->copyset_id),
                           &gi))
        return false;
    struct sim_group *g = &m->groups[gi];
    uint32_t target = o->peer ? o->peer->chunkserver_id : 0;
    uint32_t old = o->old_peer ? o->old_peer->chunkserver_id : 0;
    if (o->type == SPLINE__COPYSET_ORDER__TYPE__REMOVE_REPLICA) {
        struct sim_replica *rep = find_rep(c, gi);
        if (!rep || is_member(g, c->id))
            return false;
        *rep = c->reps[--c->rep_count];
        m->replicas_removed++;
        return true;
    }
    if (g->leader != c->id || o->epoch != g->epoch)
        return false; /* not the leader, or computed against another configuration */
    switch (o->type) {
    case SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER:
        if (!target || !old || !holds(m, target, gi) || !is_member(g, old))
            return false;
        add_member(m, g, gi, target);
        remove_member(m, g, gi, old);
        break;
    case SPLINE__COPYSET_ORDER__TYPE__ADD_PEER:
        if (!target || !holds(m, target, gi))
            return false;
        add_member(m, g, gi, target);
        break;
    case SPLINE__COPYSET_ORDER__TYPE__REMOVE_PEER: /* proto: remove `peer` */
        if (!target || !is_member(g, target) || g->n <= 1)
            return false;
        remove_member(m, g, gi, target);
        break;
    case SPLINE__COPYSET_ORDER__TYPE__TRANSFER_LEADER:
        if (!target || !is_member(g, target) || !holds(m, target, gi))
            return false;
        g->leader = target;
        g->term++;
        break;
    default:
        return false;
    }
    g->epoch++;
    return true;
}

void sim_model_apply(struct sim_model *m, uint32_t i, const Spline__HeartbeatResponse *r)
{
    pthread_mutex_lock(&m->lock);
    struct sim_cs *c = &m->cs[i];
    for (size_t k = 0; k < r->n_orders && c->alive; k++) {
        if (apply_one(m, c, r->orders[k]))
            m->orders_applied++;
        else
            m->orders_stale++;
    }
    pthread_mutex_unlock(&m->lock);
}

int sim_model_set_alive(struct sim_model *m, uint32_t id, bool alive)
{
    pthread_mutex_lock(&m->lock);
    int idx = index_locked(m, id);
    if (idx >= 0)
        m->cs[idx].alive = alive;
    pthread_mutex_unlock(&m->lock);
    return idx >= 0 ? 0 : -ENOENT;
}

void sim_model_stats(struct sim_model *m, struct sim_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    uint32_t *leaders = calloc(m->cs_count + 1, sizeof *leaders);
    for (uint32_t i = 0; i < m->cs_count; i++) {
        out->registered += m->cs[i].id != 0;
        out->alive += m->cs[i].id != 0 && m->cs[i].alive;
        out->replicas += m->cs[i].rep_count;
        for (uint32_t k = 0; k < m->cs[i].rep_count; k++)
            out->stale_replicas += m->cs[i].reps[k].stale;
    }
    for (uint32_t gi = 0; gi < m->group_count; gi++) {
        const struct sim_group *g = &m->groups[gi];
        out->groups++;
        out->groups_with_leader += g->leader != 0;
        int li = index_locked(m, g->leader);
        if (leaders && li >= 0)
            leaders[li]++;
        for (uint32_t a = 0; a < g->n; a++)
            for (uint32_t b = a + 1; b < g->n; b++) {
                int ia = index_locked(m, g->members[a]), ib = index_locked(m, g->members[b]);
                if (ia >= 0 && ib >= 0 && m->cs[ia].zone == m->cs[ib].zone)
                    out->zone_violations++;
            }
    }
    out->leaders_min = UINT32_MAX;
    for (uint32_t i = 0; leaders && i < m->cs_count; i++) {
        if (!m->cs[i].id || !m->cs[i].alive)
            continue;
        if (leaders[i] < out->leaders_min)
            out->leaders_min = leaders[i];
        if (leaders[i] > out->leaders_max)
            out->leaders_max = leaders[i];
    }
    if (out->leaders_min == UINT32_MAX)
        out->leaders_min = 0;
    free(leaders);
    out->orders_applied = m->orders_applied;
    out->orders_stale = m->orders_stale;
    out->elections = m->elections;
    out->replicas_removed = m->replicas_removed;
    pthread_mutex_unlock(&m->lock);
}
