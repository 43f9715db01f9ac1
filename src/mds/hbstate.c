/*
 * hbstate.c - the leader's live cluster view and heartbeat handling; see hbstate.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "mds/hbstate.h"
#include "mds/scheduler.h"

#define HB_WRITE_BATCH 256     /* updates the writer takes per turn of its loop */
#define HB_CREATE_RESEND_NS (5ull * 1000000000ull)

int spl_hbstate_new(struct spl_mdsd *d, struct spl_hbstate **out)
{
    struct spl_hbstate *hb = calloc(1, sizeof *hb);
    if (!hb)
        return -ENOMEM;
    hb->d = d;
    pthread_mutex_init(&hb->lock, NULL);
    pthread_cond_init(&hb->queue_cond, NULL);
    *out = hb;
    return 0;
}

static void *writer_main(void *arg);

int spl_hbstate_start(struct spl_hbstate *hb)
{
    int rc = pthread_create(&hb->writer, NULL, writer_main, hb);
    if (rc != 0)
        return -rc;
    hb->writer_running = true;
    return 0;
}

uint32_t spl_hbstate_pending(struct spl_hbstate *hb)
{
    pthread_mutex_lock(&hb->lock);
    uint32_t n = hb->queue_count;
    pthread_mutex_unlock(&hb->lock);
    return n;
}

static void free_css(struct hb_cs *css, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(css[i].sets);
    free(css);
}

void spl_hbstate_free(struct spl_hbstate *hb)
{
    if (!hb)
        return;
    if (hb->writer_running) {
        pthread_mutex_lock(&hb->lock);
        hb->writer_stop = true;
        pthread_cond_broadcast(&hb->queue_cond);
        pthread_mutex_unlock(&hb->lock);
        pthread_join(hb->writer, NULL);
    }
    free_css(hb->css, hb->cs_count);
    free(hb->sets);
    free(hb->queue);
    pthread_cond_destroy(&hb->queue_cond);
    pthread_mutex_destroy(&hb->lock);
    free(hb);
}

void spl_hbstate_token(uint32_t id, const char *host, uint32_t port, const char *disk,
                       char out[17])
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the identity */
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%u|%s|%u|%s|spline", id, host, port, disk);
    for (int i = 0; i < n && i < (int)sizeof buf; i++) {
        h ^= (uint8_t)buf[i];
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

static int cmp_cs(const void *a, const void *b)
{
    uint32_t x = ((const struct hb_cs *)a)->id, y = ((const struct hb_cs *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_set(const void *a, const void *b)
{
    const struct hb_set *x = a, *y = b;
    if (x->lpool_id != y->lpool_id)
        return x->lpool_id < y->lpool_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

struct hb_cs *spl_hbstate_cs_locked(struct spl_hbstate *hb, uint32_t id)
{
    struct hb_cs key = {.id = id};
    return bsearch(&key, hb->css, hb->cs_count, sizeof key, cmp_cs);
}

struct hb_set *spl_hbstate_set_locked(struct spl_hbstate *hb, uint32_t lpool, uint32_t id)
{
    struct hb_set key = {.lpool_id = lpool, .id = id};
    return bsearch(&key, hb->sets, hb->set_count, sizeof key, cmp_set);
}

bool spl_hbstate_is_member(const struct hb_set *s, uint32_t cs_id)
{
    for (uint32_t i = 0; i < s->member_count; i++)
        if (s->members[i] == cs_id)
            return true;
    return false;
}

enum spl_cs_live spl_hbstate_live_locked(const struct spl_hbstate *hb, const struct hb_cs *c,
                                         uint64_t now_ns)
{
    const struct spl_mdsd_config *cfg = &hb->d->cfg;
    if (c->last_hb_ns == 0)
        return now_ns - hb->lead_start_ns >= cfg->hb_offline_ms * 1000000 ? SPL_CS_LIVE_OFFLINE
                                                                          : SPL_CS_LIVE_UNKNOWN;
    uint64_t age = now_ns - c->last_hb_ns;
    if (age < cfg->hb_unstable_ms * 1000000)
        return SPL_CS_LIVE_ONLINE;
    if (age < cfg->hb_offline_ms * 1000000)
        return SPL_CS_LIVE_UNSTABLE;
    return SPL_CS_LIVE_OFFLINE;
}

static int cs_index_add(struct hb_cs *c, uint32_t set_idx)
{
    if (c->set_count == c->set_cap) {
        uint32_t cap = c->set_cap ? c->set_cap * 2 : 64;
        uint32_t *n = realloc(c->sets, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->sets = n;
        c->set_cap = cap;
    }
    c->sets[c->set_count++] = set_idx;
    return 0;
}

void spl_hbstate_reindex_locked(struct spl_hbstate *hb)
{
    for (uint32_t i = 0; i < hb->cs_count; i++)
        hb->css[i].set_count = hb->css[i].leader_count = 0;
    for (uint32_t s = 0; s < hb->set_count; s++) {
        const struct hb_set *set = &hb->sets[s];
        for (uint32_t m = 0; m < set->member_count; m++) {
            struct hb_cs *c = spl_hbstate_cs_locked(hb, set->members[m]);
            if (c)
                (void)cs_index_add(c, s); /* ENOMEM: the index is short, counts too */
        }
        struct hb_cs *l = set->leader ? spl_hbstate_cs_locked(hb, set->leader) : NULL;
        if (l && spl_hbstate_is_member(set, set->leader))
            l->leader_count++;
    }
    hb->index_dirty = false;
}

static void fill_cs(struct spl_hbstate *hb, struct hb_cs *c, const struct spl_topo_chunkserver *t,
                    spl_topo *topo)
{
    c->id = t->id;
    c->zone_id = t->zone_id;
    snprintf(c->host, sizeof c->host, "%s", t->host);
    c->port = t->port;
    c->retired = t->state == SPL_CS_RETIRED;
    c->capacity_bytes = t->capacity_bytes;
    struct spl_topo_zone z;
    c->pool_id = spl_topo_get_zone(topo, t->zone_id, &z) == 0 ? z.pool_id : 0;
}

/* load_sets - the copysets of the model, merged with what the old view knew. */
static int load_sets(struct spl_hbstate *hb, spl_topo *t, struct hb_set **out, uint32_t *count)
{
    struct spl_topo_copyset *cs = NULL;
    size_t n = 0;
    int rc = spl_topo_list_copysets(t, 0, &cs, &n);
    if (rc < 0)
        return rc;
    struct hb_set *sets = calloc(n ? n : 1, sizeof *sets);
    if (!sets) {
        free(cs);
        return -ENOMEM;
    }
    struct spl_topo_lpool lp = {0};
    for (size_t i = 0; i < n; i++) {
        struct hb_set *s = &sets[i];
        s->lpool_id = cs[i].lpool_id;
        s->id = cs[i].id;
        s->member_count = cs[i].member_count;
        memcpy(s->members, cs[i].members, sizeof s->members);
        s->epoch = cs[i].epoch;
        s->leader = cs[i].leader_hint;
        if (lp.id != s->lpool_id && spl_topo_get_lpool(t, s->lpool_id, &lp) < 0)
            lp = (struct spl_topo_lpool){.id = s->lpool_id, .replicas = s->member_count};
        s->replicas_wanted = lp.replicas;
    }
    free(cs);
    *out = sets;
    *count = (uint32_t)n;
    return 0;
}

int spl_hbstate_load(struct spl_hbstate *hb, spl_topo *t, bool keep_live)
{
    struct spl_topo_chunkserver *tcs = NULL;
    size_t n = 0;
    int rc = spl_topo_list_chunkservers(t, &tcs, &n);
    if (rc < 0)
        return rc;
    struct hb_cs *css = calloc(n ? n : 1, sizeof *css);
    struct hb_set *sets = NULL;
    uint32_t set_count = 0;
    if (!css || (rc = load_sets(hb, t, &sets, &set_count)) < 0) {
        free(tcs);
        free(css);
        return rc < 0 ? rc : -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        fill_cs(hb, &css[i], &tcs[i], t);
    free(tcs);
    spl_hbstate_install(hb, css, (uint32_t)n, sets, set_count, keep_live);
    return 0;
}

void spl_hbstate_install(struct spl_hbstate *hb, struct hb_cs *css, uint32_t n,
                         struct hb_set *sets, uint32_t set_count, bool keep_live)
{
    ASSERT(css && sets);
    for (uint32_t i = 0; i < n; i++)
        ASSERT(css[i].sets == NULL && css[i].set_count == 0);
    qsort(css, n, sizeof *css, cmp_cs);
    qsort(sets, set_count, sizeof *sets, cmp_set);
    pthread_mutex_lock(&hb->lock);
    if (keep_live) {
        for (uint32_t i = 0; i < n; i++) {
            const struct hb_cs *old = spl_hbstate_cs_locked(hb, css[i].id);
            if (old) {
                css[i].last_hb_ns = old->last_hb_ns;
                css[i].offline_since_ns = old->offline_since_ns;
                css[i].copysets_at_offline = old->copysets_at_offline;
                css[i].reported_leaders = old->reported_leaders;
                css[i].reported_copysets = old->reported_copysets;
            }
        }
        for (uint32_t i = 0; i < set_count; i++) {
            const struct hb_set *old = spl_hbstate_set_locked(hb, sets[i].lpool_id, sets[i].id);
            if (old && old->epoch == sets[i].epoch) {
                sets[i].leader = old->leader;
                sets[i].term = old->term;
                sets[i].leader_report_ns = old->leader_report_ns;
            }
        }
    } else {
        hb->lead_start_ns = spl_mono_ns();
        hb->last_register_ns = 0;
    }
    free_css(hb->css, hb->cs_count);
    free(hb->sets);
    hb->queue_count = 0; /* indexes of the old array; what matters is reported again */
    hb->css = css;
    hb->cs_count = hb->cs_cap = n;
    hb->sets = sets;
    hb->set_count = set_count;
    spl_hbstate_reindex_locked(hb);
    pthread_mutex_unlock(&hb->lock);
}

void spl_hbstate_track_offline_locked(struct spl_hbstate *hb, uint64_t now_ns)
{
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        struct hb_cs *c = &hb->css[i];
        bool off = spl_hbstate_live_locked(hb, c, now_ns) == SPL_CS_LIVE_OFFLINE;
        if (off && c->offline_since_ns == 0) {
            c->offline_since_ns = now_ns;
            c->copysets_at_offline = c->set_count;
            LOG_WARN("mds.hb", "chunkserver %u (%s:%u) is offline; %u copysets", c->id, c->host,
                     c->port, c->set_count);
        } else if (!off && c->offline_since_ns != 0) {
            c->offline_since_ns = 0;
            c->copysets_at_offline = 0;
            LOG_INFO("mds.hb", "chunkserver %u is back", c->id);
        }
    }
}

/* ---- heartbeats ---- */

struct order_mem {
    Spline__CopysetOrder o;
    Spline__CopysetId id;
    Spline__PeerAddr peer, old_peer;
};

static int check_report(const Spline__CopysetReport *r)
{
    if (!r->id || r->id->logical_pool_id == 0 || r->id->copyset_id == 0)
        return SPL_EMDS_BADREPORT;
    if (r->n_peers > SPL_REPLICAS_MAX + 1)
        return SPL_EMDS_BADREPORT;
    for (size_t i = 0; i < r->n_peers; i++)
        if (!r->peers[i] || r->peers[i]->chunkserver_id == 0)
            return SPL_EMDS_BADREPORT;
    return 0;
}

static void peer_fill(struct spl_hbstate *hb, Spline__PeerAddr *p, uint32_t cs_id)
{
    spline__peer_addr__init(p);
    p->chunkserver_id = cs_id;
    const struct hb_cs *c = spl_hbstate_cs_locked(hb, cs_id);
    if (c) {
        p->host = (char *)c->host; /* packed before the lock is released? no: see below */
        p->port = c->port;
    }
}

static int queue_push(struct spl_hbstate *hb, uint32_t set_idx)
{
    if (hb->queue_count == hb->queue_cap) {
        uint32_t cap = hb->queue_cap ? hb->queue_cap * 2 : 1024;
        uint32_t *n = realloc(hb->queue, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        hb->queue = n;
        hb->queue_cap = cap;
    }
    hb->queue[hb->queue_count++] = set_idx;
    pthread_cond_signal(&hb->queue_cond);
    return 0;
}

/* move_leader - the known leader of s becomes new_leader; leader counts follow. */
static void move_leader(struct spl_hbstate *hb, struct hb_set *s, uint32_t new_leader)
{
    struct hb_cs *o = s->leader && spl_hbstate_is_member(s, s->leader)
                          ? spl_hbstate_cs_locked(hb, s->leader) : NULL;
    struct hb_cs *n = new_leader && spl_hbstate_is_member(s, new_leader)
                          ? spl_hbstate_cs_locked(hb, new_leader) : NULL;
    if (o && o->leader_count)
        o->leader_count--;
    if (n)
        n->leader_count++;
    s->leader = new_leader;
}

static void cs_index_remove(struct hb_cs *c, uint32_t set_idx)
{
    for (uint32_t i = 0; i < c->set_count; i++)
        if (c->sets[i] == set_idx) {
            c->sets[i] = c->sets[--c->set_count];
            return;
        }
}

/* change_members - s's members become r's; the per-chunkserver indexes follow (the
 * leader is dropped first: the caller sets the new one). */
static void change_members(struct spl_hbstate *hb, struct hb_set *s,
                           const struct spl_topo_copyset *r)
{
    uint32_t idx = (uint32_t)(s - hb->sets);
    move_leader(hb, s, 0);
    for (uint32_t i = 0; i < s->member_count; i++) {
        bool stays = false;
        for (uint32_t j = 0; j < r->member_count; j++)
            stays |= r->members[j] == s->members[i];
        struct hb_cs *c = stays ? NULL : spl_hbstate_cs_locked(hb, s->members[i]);
        if (c)
            cs_index_remove(c, idx);
    }
    for (uint32_t j = 0; j < r->member_count; j++) {
        struct hb_cs *c = spl_hbstate_is_member(s, r->members[j])
                              ? NULL : spl_hbstate_cs_locked(hb, r->members[j]);
        if (c && cs_index_add(c, idx) < 0)
            hb->index_dirty = true; /* rebuild later */
    }
    s->member_count = r->member_count;
    memcpy(s->members, r->members, sizeof s->members);
}

static bool same_members(const struct hb_set *s, const struct spl_topo_copyset *r)
{
    if (s->member_count != r->member_count)
        return false;
    for (uint32_t i = 0; i < r->member_count; i++)
        if (!spl_hbstate_is_member(s, r->members[i]))
            return false;
    return true;
}

/* apply_report_locked - one copyset report; may queue an epoch update or an order. */
static void apply_report_locked(struct spl_hbstate *hb, struct hb_cs *c,
                                const Spline__CopysetReport *r, uint64_t now,
                                struct order_mem *orders, uint32_t *order_count)
{
    struct hb_set *s = spl_hbstate_set_locked(hb, r->id->logical_pool_id, r->id->copyset_id);
    bool grace = now - hb->lead_start_ns < hb->d->cfg.remove_grace_ms * 1000000;
    if (s)
        s->scratch = hb->stamp;
    bool is_leader = r->leader && r->leader->chunkserver_id == c->id;
    if (s && is_leader && r->epoch > s->epoch && r->n_peers <= SPL_REPLICAS_MAX) {
        if (r->epoch > s->pending_epoch) { /* the newest configuration wins */
            s->pending_epoch = r->epoch;
            s->pending_n = (uint32_t)r->n_peers;
            for (size_t i = 0; i < r->n_peers; i++)
                s->pending_members[i] = r->peers[i]->chunkserver_id;
            s->pending_leader = c->id;
            if (!s->queued && queue_push(hb, (uint32_t)(s - hb->sets)) == 0)
                s->queued = true;
        }
        s->term = r->term;
        return;
    }
    if (s && is_leader && r->epoch == s->epoch) {
        if (s->leader != c->id)
            move_leader(hb, s, c->id);
        s->term = r->term;
        s->leader_report_ns = now;
        return;
    }
    if (s && spl_hbstate_is_member(s, c->id))
        return; /* a follower's report, or a stale one */
    if (s && r->epoch > s->epoch)
        return; /* a configuration we do not know yet: wait for its leader's report */
    if (grace || *order_count >= SPL_MDSD_ORDERS_PER_HB_MAX)
        return;
    if (s && spl_sched_is_target_locked(hb->d->sched, s->lpool_id, s->id, c->id))
        return; /* being added by an operator */
    struct order_mem *om = &orders[(*order_count)++];
    spline__copyset_order__init(&om->o);
    spline__copyset_id__init(&om->id);
    om->id.logical_pool_id = r->id->logical_pool_id;
    om->id.copyset_id = r->id->copyset_id;
    om->o.id = &om->id;
    om->o.type = SPLINE__COPYSET_ORDER__TYPE__REMOVE_REPLICA;
    om->o.epoch = s ? s->epoch : r->epoch;
    LOG_INFO("mds.hb", "chunkserver %u holds copyset %u.%u but is not a member: remove", c->id,
             r->id->logical_pool_id, r->id->copyset_id);
}

/* write_updates - write the epoch updates to etcd (lock released), then into the view. */
static void write_updates(struct spl_hbstate *hb, struct spl_topo_copyset_update *ups,
                          uint32_t n)
{
    spl_topo *t = hb->d->topo;
    int results[HB_WRITE_BATCH];
    ASSERT(n <= HB_WRITE_BATCH);
    spl_topo_update_copysets(t, ups, n, results); /* batched; each update's code in results */
    for (uint32_t i = 0; i < n; i++) {
        struct spl_topo_copyset_update *u = &ups[i];
        int rc = results[i];
        struct spl_topo_copyset cur;
        if (rc == SPL_EETCD_TXNFAIL && spl_topo_get_copyset(t, u->rec.lpool_id, u->rec.id,
                                                            &cur) == 0) {
            /* the model moved on (another report won): take its view */
            u->rec = cur;
            rc = 0;
        } else if (rc < 0) {
            LOG_WARN("mds.hb", "copyset %u.%u epoch %" PRIu64 " -> %" PRIu64 " not stored: %s",
                     u->rec.lpool_id, u->rec.id, u->expect_epoch, u->rec.epoch,
                     spl_errname(rc));
            continue;
        }
        pthread_mutex_lock(&hb->lock);
        struct hb_set *s = spl_hbstate_set_locked(hb, u->rec.lpool_id, u->rec.id);
        if (s && u->rec.epoch > s->epoch) {
            s->epoch = u->rec.epoch;
            if (!same_members(s, &u->rec))
                change_members(hb, s, &u->rec);
            move_leader(hb, s, u->rec.leader_hint);
            s->leader_report_ns = spl_mono_ns();
            hb->epoch_updates++;
        }
        pthread_mutex_unlock(&hb->lock);
    }
}

/* add_cs - a chunkserver registered after the view was loaded: take it from the model. */
static int add_cs(struct spl_hbstate *hb, uint32_t id)
{
    struct spl_topo_chunkserver tc;
    if (!hb->d->topo)
        return SPL_ETOPO_NOTFOUND; /* no model (a view installed by a unit test) */
    int rc = spl_topo_get_chunkserver(hb->d->topo, id, &tc);
    if (rc < 0)
        return rc;
    struct hb_cs nc = {0};
    fill_cs(hb, &nc, &tc, hb->d->topo);
    pthread_mutex_lock(&hb->lock);
    if (!spl_hbstate_cs_locked(hb, id)) {
        if (hb->cs_count == hb->cs_cap) {
            uint32_t cap = hb->cs_cap ? hb->cs_cap * 2 : 64;
            struct hb_cs *n = realloc(hb->css, cap * sizeof *n);
            if (!n) {
                pthread_mutex_unlock(&hb->lock);
                return -ENOMEM;
            }
            hb->css = n;
            hb->cs_cap = cap;
        }
        hb->css[hb->cs_count++] = nc;
        qsort(hb->css, hb->cs_count, sizeof *hb->css, cmp_cs);
        spl_hbstate_reindex_locked(hb);
    }
    pthread_mutex_unlock(&hb->lock);
    return 0;
}

/* The writer: take queued configurations (with the epoch they replace), write them. */
static void *writer_main(void *arg)
{
    struct spl_hbstate *hb = arg;
    struct spl_topo_copyset_update *ups = malloc(HB_WRITE_BATCH * sizeof *ups);
    pthread_mutex_lock(&hb->lock);
    while (ups && !hb->writer_stop) {
        if (hb->queue_count == 0) {
            pthread_cond_wait(&hb->queue_cond, &hb->lock);
            continue;
        }
        uint32_t n = 0, take = hb->queue_count < HB_WRITE_BATCH ? hb->queue_count : HB_WRITE_BATCH;
        for (uint32_t i = 0; i < take; i++) {
            struct hb_set *s = &hb->sets[hb->queue[i]];
            s->queued = false;
            if (s->pending_epoch <= s->epoch)
                continue;
            struct spl_topo_copyset_update *u = &ups[n++];
            u->expect_epoch = s->epoch;
            u->rec = (struct spl_topo_copyset){.lpool_id = s->lpool_id, .id = s->id,
                                               .member_count = s->pending_n,
                                               .epoch = s->pending_epoch,
                                               .leader_hint = s->pending_leader};
            memcpy(u->rec.members, s->pending_members, sizeof u->rec.members);
            s->pending_epoch = 0;
        }
        memmove(hb->queue, hb->queue + take, (hb->queue_count - take) * sizeof *hb->queue);
        hb->queue_count -= take;
        pthread_mutex_unlock(&hb->lock);
        if (n && spl_ha_role(hb->d->ha) == SPL_MDSD_LEADER)
            write_updates(hb, ups, n);
        pthread_mutex_lock(&hb->lock);
    }
    pthread_mutex_unlock(&hb->lock);
    free(ups);
    return NULL;
}

static int check_request(const Spline__HeartbeatRequest *req)
{
    if (req->chunkserver_id == 0)
        return SPL_ECS_UNKNOWN;
    if (!req->host || !req->host[0] || strlen(req->host) >= SPL_TOPO_HOST_MAX)
        return SPL_EMDS_BADHOST;
    if (req->port == 0 || req->port > 65535)
        return SPL_EMDS_BADPORT;
    if (req->n_copysets > SPL_MDS_COPYSETS_PER_CS_MAX)
        return SPL_EMDS_TOOMANY;
    for (size_t i = 0; i < req->n_copysets; i++)
        if (check_report(req->copysets[i]) < 0)
            return SPL_EMDS_BADREPORT;
    return 0;
}

/* find_missing_locked - member copysets this chunkserver did not report; create them. */
static void find_missing_locked(struct spl_hbstate *hb, struct hb_cs *c, uint64_t now)
{
    if (now - c->create_sent_ns < HB_CREATE_RESEND_NS)
        return;
    uint32_t *missing = malloc((c->set_count ? c->set_count : 1) * sizeof *missing);
    uint32_t n = 0;
    for (uint32_t i = 0; missing && i < c->set_count; i++)
        if (hb->sets[c->sets[i]].scratch != hb->stamp)
            missing[n++] = c->sets[i];
    if (n > 0) {
        c->create_sent_ns = now;
        LOG_INFO("mds.hb", "chunkserver %u lacks %u of its copysets: CreateCopysets", c->id, n);
        spl_sched_create_missing_locked(hb->d->sched, hb, c, missing, n);
    }
    free(missing);
}

int spl_hbstate_heartbeat(struct spl_hbstate *hb, const Spline__HeartbeatRequest *req,
                          Spline__HeartbeatResponse *resp)
{
    int rc = check_request(req);
    if (rc < 0)
        return rc;
    uint64_t t0 = spl_mono_ns();
    struct order_mem *om = calloc(SPL_MDSD_ORDERS_PER_HB_MAX, sizeof *om);
    if (!om)
        return -ENOMEM;
    uint32_t order_count = 0;
    pthread_mutex_lock(&hb->lock);
    struct hb_cs *c = spl_hbstate_cs_locked(hb, req->chunkserver_id);
    if (!c) {
        pthread_mutex_unlock(&hb->lock);
        rc = add_cs(hb, req->chunkserver_id);
        pthread_mutex_lock(&hb->lock);
        c = rc == 0 ? spl_hbstate_cs_locked(hb, req->chunkserver_id) : NULL;
        if (!c) {
            rc = rc < 0 && rc != SPL_ETOPO_NOTFOUND ? rc : SPL_ECS_UNKNOWN;
            goto out_unlock;
        }
    }
    if (req->token && req->token[0]) {
        /* the token binds the id to an identity; the disk is not in the heartbeat, so
         * the check is done at registration; here only host and port must agree */
        if (strcmp(req->host, c->host) != 0 || req->port != c->port) {
            rc = SPL_EMDS_BADTOKEN;
            goto out_unlock;
        }
    }
    uint64_t now = spl_mono_ns();
    c->last_hb_ns = now;
    c->reported_leaders = req->leader_count;
    c->reported_copysets = (uint32_t)req->n_copysets;
    hb->stamp++;
    for (size_t i = 0; i < req->n_copysets; i++)
        apply_report_locked(hb, c, req->copysets[i], now, om, &order_count);
    if (hb->index_dirty)
        spl_hbstate_reindex_locked(hb);
    find_missing_locked(hb, c, now);
    if (hb->index_dirty)
        spl_hbstate_reindex_locked(hb);
    Spline__CopysetOrder sched_orders[SPL_MDSD_ORDERS_PER_HB_MAX];
    uint32_t extra = spl_sched_orders_locked(hb->d->sched, hb, req->chunkserver_id, sched_orders,
                                             SPL_MDSD_ORDERS_PER_HB_MAX - order_count);
    for (uint32_t i = 0; i < extra; i++) {
        struct order_mem *m = &om[order_count++];
        m->o = sched_orders[i];
        m->id = *sched_orders[i].id;
        m->o.id = &m->id;
        if (sched_orders[i].peer) {
            peer_fill(hb, &m->peer, sched_orders[i].peer->chunkserver_id);
            m->o.peer = &m->peer;
        }
        if (sched_orders[i].old_peer) {
            peer_fill(hb, &m->old_peer, sched_orders[i].old_peer->chunkserver_id);
            m->o.old_peer = &m->old_peer;
        }
    }
    /* hosts point into the view: copy them before the lock goes */
    for (uint32_t i = 0; i < order_count; i++) {
        if (om[i].o.peer && om[i].peer.host)
            om[i].peer.host = strdup(om[i].peer.host);
        if (om[i].o.old_peer && om[i].old_peer.host)
            om[i].old_peer.host = strdup(om[i].old_peer.host);
    }
    hb->hb_count++;
    hb->hb_ns_total += spl_mono_ns() - t0;
    pthread_mutex_unlock(&hb->lock);
    if (order_count == 0) {
        free(om);
        return 0;
    }
    resp->orders = malloc(order_count * sizeof *resp->orders);
    if (!resp->orders) {
        free(om);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < order_count; i++)
        resp->orders[i] = &om[i].o;
    resp->n_orders = order_count;
    return 0;

out_unlock:
    pthread_mutex_unlock(&hb->lock);
    free(om);
    return rc;
}

void spl_hbstate_free_orders(Spline__HeartbeatResponse *resp)
{
    if (!resp->orders)
        return;
    struct order_mem *om = (struct order_mem *)resp->orders[0]; /* o is the first member */
    for (size_t i = 0; i < resp->n_orders; i++) {
        if (om[i].o.peer)
            free(om[i].peer.host);
        if (om[i].o.old_peer)
            free(om[i].old_peer.host);
    }
    free(om);
    free(resp->orders);
    resp->orders = NULL;
    resp->n_orders = 0;
}
