/*
 * scheduler.c - operators: recover, replica count, copyset balance, leader balance;
 * see scheduler.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "copyset.pb-c.h"
#include "mds/mds_client.h"
#include "mds/scheduler.h"

#define SCHED_CHANNELS_MAX 4096
#define SCHED_CREATE_BATCH_MAX 1024 /* copysets in one CreateCopysets request */
#define SCHED_LB_CHAINS_MAX 64      /* leader-balance transfer chains planned per round */
#define SCHED_CB_PER_ROUND_MAX 8    /* copyset-balance moves planned per round */
#define SCHED_CREATE_JOBS_MAX 256   /* CreateCopysets sent per round (the rest: next) */
#define NS_PER_MS 1000000ull

#define ORD_CHANGE SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER
#define ORD_ADD SPLINE__COPYSET_ORDER__TYPE__ADD_PEER
#define ORD_REMOVE SPLINE__COPYSET_ORDER__TYPE__REMOVE_PEER
#define ORD_TRANSFER SPLINE__COPYSET_ORDER__TYPE__TRANSFER_LEADER

enum op_stage { ST_CREATE, ST_CREATING, ST_ORDERED };

struct op {
    uint64_t id;
    uint32_t lpool, set;
    enum spl_sched_kind kind;
    enum op_stage stage;
    Spline__CopysetOrder__Type order;
    uint64_t epoch;
    uint32_t target, source;
    uint64_t start_ns, deadline_ns;
};

struct chan {
    char addr[SPL_MDSD_ADDR_MAX];
    spl_rpc_channel *ch;
};

struct spl_sched {
    struct spl_mdsd *d;
    pthread_mutex_t lock;
    struct op *ops;
    uint32_t op_count;
    uint64_t next_op_id;
    struct spl_sched_counts counts;
    uint64_t last_recover_ns, last_cbal_ns, last_lbal_ns;

    pthread_t thread;
    bool running;
    atomic_bool stop;

    pthread_mutex_t chan_lock;
    struct chan *chans;
    uint32_t chan_count;
};

static const char *kind_name[] = {"recover", "replica", "copyset-balance", "leader-balance"};

int spl_sched_new(struct spl_mdsd *d, struct spl_sched **out)
{
    struct spl_sched *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ops = calloc(SPL_MDSD_OPS_MAX, sizeof *s->ops);
    s->chans = calloc(SCHED_CHANNELS_MAX, sizeof *s->chans);
    if (!s->ops || !s->chans) {
        free(s->ops);
        free(s->chans);
        free(s);
        return -ENOMEM;
    }
    s->d = d;
    s->next_op_id = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->chan_lock, NULL);
    *out = s;
    return 0;
}

void spl_sched_free(struct spl_sched *s)
{
    if (!s)
        return;
    spl_sched_stop(s);
    for (uint32_t i = 0; i < s->chan_count; i++)
        spl_rpc_channel_close(s->chans[i].ch);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->chan_lock);
    free(s->chans);
    free(s->ops);
    free(s);
}

void spl_sched_reset(struct spl_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->op_count = 0;
    pthread_mutex_unlock(&s->lock);
}

void spl_sched_get_counts(struct spl_sched *s, struct spl_sched_counts *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->counts;
    out->recover = out->replica_count = out->copyset_balance = out->leader_balance = 0;
    for (uint32_t i = 0; i < s->op_count; i++) {
        switch (s->ops[i].kind) {
        case SPL_SCHED_RECOVER: out->recover++; break;
        case SPL_SCHED_REPLICA: out->replica_count++; break;
        case SPL_SCHED_CBALANCE: out->copyset_balance++; break;
        case SPL_SCHED_LBALANCE: out->leader_balance++; break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static struct op *find_op_locked(struct spl_sched *s, uint32_t lpool, uint32_t set)
{
    for (uint32_t i = 0; i < s->op_count; i++)
        if (s->ops[i].lpool == lpool && s->ops[i].set == set)
            return &s->ops[i];
    return NULL;
}

bool spl_sched_is_target_locked(struct spl_sched *s, uint32_t lpool, uint32_t id, uint32_t cs_id)
{
    pthread_mutex_lock(&s->lock);
    const struct op *o = find_op_locked(s, lpool, id);
    bool r = o && o->target == cs_id;
    pthread_mutex_unlock(&s->lock);
    return r;
}

uint32_t spl_sched_orders_locked(struct spl_sched *s, struct spl_hbstate *hb, uint32_t cs_id,
                                 Spline__CopysetOrder *orders, uint32_t max)
{
    static Spline__CopysetId ids[SPL_MDSD_ORDERS_PER_HB_MAX]; /* copied by the caller */
    static Spline__PeerAddr peers[SPL_MDSD_ORDERS_PER_HB_MAX][2];
    uint32_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < s->op_count && n < max; i++) {
        const struct op *o = &s->ops[i];
        if (o->stage != ST_ORDERED)
            continue;
        const struct hb_set *set = spl_hbstate_set_locked(hb, o->lpool, o->set);
        if (!set || set->leader != cs_id || set->epoch != o->epoch)
            continue;
        Spline__CopysetOrder *ord = &orders[n];
        spline__copyset_order__init(ord);
        spline__copyset_id__init(&ids[n]);
        ids[n].logical_pool_id = o->lpool;
        ids[n].copyset_id = o->set;
        ord->id = &ids[n];
        ord->type = o->order;
        ord->epoch = o->epoch;
        ord->operator_id = o->id;
        /* proto/heartbeat.proto: REMOVE_PEER names the one to remove in `peer` */
        uint32_t peer = o->order == ORD_REMOVE ? o->source : o->target;
        if (peer) {
            spline__peer_addr__init(&peers[n][0]);
            peers[n][0].chunkserver_id = peer;
            ord->peer = &peers[n][0];
        }
        if (o->source && o->order != ORD_REMOVE) {
            spline__peer_addr__init(&peers[n][1]);
            peers[n][1].chunkserver_id = o->source;
            ord->old_peer = &peers[n][1];
        }
        n++;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- CreateCopysets to chunkservers ---- */

static spl_rpc_channel *channel_for(struct spl_sched *s, const char *host, uint16_t port)
{
    char addr[SPL_MDSD_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s:%u", host, port);
    pthread_mutex_lock(&s->chan_lock);
    spl_rpc_channel *ch = NULL;
    for (uint32_t i = 0; i < s->chan_count && !ch; i++)
        if (strcmp(s->chans[i].addr, addr) == 0)
            ch = s->chans[i].ch;
    if (!ch && s->chan_count < SCHED_CHANNELS_MAX && s->d->rt) {
        struct spl_rpc_channel_opts o = {.call_timeout_ms = 5000, .backoff_max_ms = 1000};
        if (spl_rpc_channel_open(s->d->rt, addr, &o, &ch) == 0) {
            snprintf(s->chans[s->chan_count].addr, sizeof s->chans[0].addr, "%s", addr);
            s->chans[s->chan_count++].ch = ch;
        }
    }
    pthread_mutex_unlock(&s->chan_lock);
    return ch;
}

struct create_ctx {
    struct spl_sched *s;
    uint64_t op_id; /* 0: not for an operator */
    uint32_t cs_id;
};

static void op_remove_locked(struct spl_sched *s, struct op *o, bool ok, const char *why)
{
    if (ok)
        s->counts.finished++;
    else
        s->counts.failed++;
    LOG_INFO("mds.sched", "operator %" PRIu64 " %s copyset %u.%u (+%u -%u) %s%s%s", o->id,
             kind_name[o->kind], o->lpool, o->set, o->target, o->source,
             ok ? "finished" : "failed", why ? ": " : "", why ? why : "");
    *o = s->ops[--s->op_count];
}

void spl_sched_create_result(struct spl_sched *s, uint64_t op_id, int status)
{
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < s->op_count; i++) {
        struct op *o = &s->ops[i];
        if (o->id != op_id || o->stage != ST_CREATING)
            continue;
        if (status == 0)
            o->stage = ST_ORDERED;
        else
            op_remove_locked(s, o, false, "CreateCopysets failed");
        break;
    }
    pthread_mutex_unlock(&s->lock);
}

static void create_done(struct spl_rpc_result *r, void *arg)
{
    struct create_ctx *c = arg;
    if (r->status != 0)
        LOG_WARN("mds.sched", "CreateCopysets on chunkserver %u: %s (%s)", c->cs_id,
                 spl_errname(r->status), r->error_message);
    if (c->op_id)
        spl_sched_create_result(c->s, c->op_id, r->status);
    free(c);
}

/* send_create - CreateCopysets(cs, sets[]) with each copyset's current members. */
static void send_create(struct spl_sched *s, struct spl_hbstate *hb, const struct hb_cs *cs,
                        const uint32_t *sets, uint32_t count, uint64_t op_id)
{
    spl_rpc_channel *ch = channel_for(s, cs->host, cs->port);
    if (!ch)
        return;
    if (count > SCHED_CREATE_BATCH_MAX)
        count = SCHED_CREATE_BATCH_MAX;
    Spline__CreateCopysetsRequest req = SPLINE__CREATE_COPYSETS_REQUEST__INIT;
    Spline__CopysetSpec *specs = calloc(count, sizeof *specs);
    Spline__CopysetSpec **sp = calloc(count, sizeof *sp);
    Spline__CopysetId *ids = calloc(count, sizeof *ids);
    Spline__PeerAddr *peers = calloc((size_t)count * SPL_REPLICAS_MAX, sizeof *peers);
    Spline__PeerAddr **pp = calloc((size_t)count * SPL_REPLICAS_MAX, sizeof *pp);
    struct create_ctx *ctx = malloc(sizeof *ctx);
    if (!specs || !sp || !ids || !peers || !pp || !ctx)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        const struct hb_set *set = &hb->sets[sets[i]];
        spline__copyset_spec__init(&specs[i]);
        spline__copyset_id__init(&ids[i]);
        ids[i].logical_pool_id = set->lpool_id;
        ids[i].copyset_id = set->id;
        specs[i].id = &ids[i];
        specs[i].peers = &pp[(size_t)i * SPL_REPLICAS_MAX];
        for (uint32_t m = 0; m < set->member_count; m++) {
            Spline__PeerAddr *p = &peers[(size_t)i * SPL_REPLICAS_MAX + m];
            spline__peer_addr__init(p);
            p->chunkserver_id = set->members[m];
            const struct hb_cs *mc = spl_hbstate_cs_locked(hb, set->members[m]);
            if (mc) {
                p->host = (char *)mc->host;
                p->port = mc->port;
            }
            specs[i].peers[specs[i].n_peers++] = p;
        }
        sp[i] = &specs[i];
    }
    req.copysets = sp;
    req.n_copysets = count;
    req.chunkserver_id = cs->id;
    *ctx = (struct create_ctx){.s = s, .op_id = op_id, .cs_id = cs->id};
    if (spl_rpc_call_async(ch, &spl_copyset_client_service, 0, &req.base, NULL, NULL, NULL,
                           create_done, ctx) == 0)
        ctx = NULL;
out:
    if (ctx && op_id) { /* not started: the operator fails */
        pthread_mutex_lock(&s->lock);
        for (uint32_t i = 0; i < s->op_count; i++)
            if (s->ops[i].id == op_id) {
                op_remove_locked(s, &s->ops[i], false, "CreateCopysets not sent");
                break;
            }
        pthread_mutex_unlock(&s->lock);
    }
    free(ctx);
    free(specs);
    free(sp);
    free(ids);
    free(peers);
    free(pp);
}

void spl_sched_create_missing_locked(struct spl_sched *s, struct spl_hbstate *hb,
                                     const struct hb_cs *c, const uint32_t *sets,
                                     uint32_t count)
{
    send_create(s, hb, c, sets, count, 0);
}

/* ---- operator bookkeeping ---- */

static bool op_done(const struct op *o, const struct hb_set *set, bool *ok)
{
    bool has_t = o->target && spl_hbstate_is_member(set, o->target);
    bool has_s = o->source && spl_hbstate_is_member(set, o->source);
    switch (o->order) {
    case ORD_CHANGE:
        if (has_t && has_s)
            return false; /* added, removal still to come (two configuration entries) */
        *ok = has_t && !has_s;
        return true;
    case ORD_ADD:
        *ok = has_t;
        return true;
    case ORD_REMOVE:
        *ok = !has_s;
        return true;
    case ORD_TRANSFER:
        *ok = set->leader == o->target;
        return true;
    default:
        *ok = false;
        return true;
    }
}

static void check_ops_locked(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    for (uint32_t i = 0; i < s->op_count;) {
        struct op *o = &s->ops[i];
        const struct hb_set *set = spl_hbstate_set_locked(hb, o->lpool, o->set);
        bool ok = false;
        if (!set) {
            op_remove_locked(s, o, false, "copyset gone");
            continue;
        }
        bool moved = set->epoch > o->epoch ||
                     (o->order == ORD_TRANSFER &&
                      set->leader == o->target);
        if (moved && op_done(o, set, &ok)) {
            op_remove_locked(s, o, ok, ok ? NULL : "configuration changed otherwise");
            continue;
        }
        struct hb_cs *t = o->target ? spl_hbstate_cs_locked(hb, o->target) : NULL;
        if (t && spl_hbstate_live_locked(hb, t, now) == SPL_CS_LIVE_OFFLINE) {
            op_remove_locked(s, o, false, "target went offline");
            continue;
        }
        if (now > o->deadline_ns) {
            s->counts.timed_out++;
            op_remove_locked(s, o, false, "timed out");
            continue;
        }
        i++;
    }
}

static struct op *add_op_locked(struct spl_sched *s, struct hb_set *set, enum spl_sched_kind kind,
                                Spline__CopysetOrder__Type order, uint32_t target,
                                uint32_t source, uint64_t now)
{
    if (s->op_count >= (uint32_t)s->d->cfg.ops_max || s->op_count >= SPL_MDSD_OPS_MAX)
        return NULL;
    struct op *o = &s->ops[s->op_count++];
    bool needs_create = order == ORD_CHANGE ||
                        order == ORD_ADD;
    *o = (struct op){.id = s->next_op_id++, .lpool = set->lpool_id, .set = set->id,
                     .kind = kind, .stage = needs_create ? ST_CREATE : ST_ORDERED,
                     .order = order, .epoch = set->epoch, .target = target, .source = source,
                     .start_ns = now, .deadline_ns = now + s->d->cfg.op_timeout_ms * NS_PER_MS};
    set->has_op = true;
    LOG_INFO("mds.sched", "operator %" PRIu64 " %s copyset %u.%u epoch %" PRIu64
             ": +%u -%u", o->id, kind_name[kind], set->lpool_id, set->id, set->epoch, target,
             source);
    return o;
}

static bool live_ok(struct spl_hbstate *hb, uint32_t cs_id, uint64_t now)
{
    struct hb_cs *c = spl_hbstate_cs_locked(hb, cs_id);
    if (!c)
        return false;
    enum spl_cs_live l = spl_hbstate_live_locked(hb, c, now);
    return l == SPL_CS_LIVE_ONLINE || l == SPL_CS_LIVE_UNSTABLE;
}

static void op_load_add(struct spl_hbstate *hb, uint32_t cs_id, int delta_sets)
{
    struct hb_cs *c = spl_hbstate_cs_locked(hb, cs_id);
    if (c) {
        c->op_load++;
        c->plan_sets += delta_sets;
    }
}

/* prepare_round - recompute the scratch fields from the view and the operators. */
static void prepare_round(struct spl_sched *s, struct spl_hbstate *hb)
{
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        struct hb_cs *c = &hb->css[i];
        c->op_load = 0;
        c->plan_sets = (int32_t)c->set_count;
        c->plan_leaders = (int32_t)c->leader_count;
    }
    for (uint32_t i = 0; i < hb->set_count; i++)
        hb->sets[i].has_op = false;
    for (uint32_t i = 0; i < s->op_count; i++) {
        const struct op *o = &s->ops[i];
        struct hb_set *set = spl_hbstate_set_locked(hb, o->lpool, o->set);
        if (set)
            set->has_op = true;
        bool transfer = o->order == ORD_TRANSFER;
        if (o->target)
            op_load_add(hb, o->target, transfer ? 0 : 1);
        if (o->source)
            op_load_add(hb, o->source, -1);
        struct hb_cs *from = set && transfer ? spl_hbstate_cs_locked(hb, set->leader) : NULL;
        struct hb_cs *to = transfer ? spl_hbstate_cs_locked(hb, o->target) : NULL;
        if (from && to) { /* count the transfer as done: plan on top of it */
            from->plan_leaders--;
            from->op_load++;
            to->plan_leaders++;
        }
    }
}

/* choose_target - the healthy chunkserver with the fewest copysets (planned) in the
 * copyset's physical pool, in a zone no other member (except `source`) uses. */
static struct hb_cs *choose_target(struct spl_sched *s, struct spl_hbstate *hb,
                                   const struct hb_set *set, uint32_t source, uint64_t now)
{
    uint32_t zones[SPL_REPLICAS_MAX], zone_count = 0, pool = 0;
    for (uint32_t m = 0; m < set->member_count; m++) {
        const struct hb_cs *c = spl_hbstate_cs_locked(hb, set->members[m]);
        if (!c)
            continue;
        pool = c->pool_id;
        if (set->members[m] != source)
            zones[zone_count++] = c->zone_id;
    }
    struct hb_cs *best = NULL;
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        struct hb_cs *c = &hb->css[i];
        if (c->retired || c->pool_id != pool || spl_hbstate_is_member(set, c->id) ||
            c->op_load >= (uint32_t)s->d->cfg.ops_per_cs_max ||
            spl_hbstate_live_locked(hb, c, now) != SPL_CS_LIVE_ONLINE)
            continue;
        bool zone_used = false;
        for (uint32_t z = 0; z < zone_count; z++)
            zone_used |= zones[z] == c->zone_id;
        if (zone_used)
            continue;
        if (!best || c->plan_sets < best->plan_sets)
            best = c;
    }
    return best;
}

/* set_actionable - a majority is up and the leader is known and up. */
static bool set_actionable(struct spl_hbstate *hb, const struct hb_set *set, uint64_t now)
{
    uint32_t up = 0;
    for (uint32_t m = 0; m < set->member_count; m++)
        up += live_ok(hb, set->members[m], now);
    return up >= set->member_count / 2 + 1 && set->leader &&
           spl_hbstate_is_member(set, set->leader) && live_ok(hb, set->leader, now);
}

/* capacity - operators the online chunkservers can still take this round. */
static uint64_t capacity(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    uint64_t cap = 0;
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        const struct hb_cs *c = &hb->css[i];
        if (!c->retired && spl_hbstate_live_locked(hb, c, now) == SPL_CS_LIVE_ONLINE &&
            c->op_load < (uint32_t)s->d->cfg.ops_per_cs_max)
            cap += (uint32_t)s->d->cfg.ops_per_cs_max - c->op_load;
    }
    return cap;
}

static void schedule_recover(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    uint64_t cap = capacity(s, hb, now);
    for (uint32_t i = 0; i < hb->set_count && cap > 0; i++) {
        struct hb_set *set = &hb->sets[i];
        if (set->has_op || (set->replicas_wanted && set->member_count > set->replicas_wanted))
            continue; /* one too many: replica count drops the down member */
        uint32_t dead = 0;
        for (uint32_t m = 0; m < set->member_count && !dead; m++) {
            struct hb_cs *c = spl_hbstate_cs_locked(hb, set->members[m]);
            if (!c || spl_hbstate_live_locked(hb, c, now) == SPL_CS_LIVE_OFFLINE)
                dead = set->members[m];
        }
        if (!dead || !set_actionable(hb, set, now))
            continue;
        struct hb_cs *t = choose_target(s, hb, set, dead, now);
        if (!t)
            continue;
        if (!add_op_locked(s, set, SPL_SCHED_RECOVER, ORD_CHANGE, t->id,
                           dead, now))
            return;
        t->op_load++;
        t->plan_sets++;
        cap--;
    }
}

static void schedule_replica_count(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    for (uint32_t i = 0; i < hb->set_count; i++) {
        struct hb_set *set = &hb->sets[i];
        if (set->has_op || set->member_count == set->replicas_wanted || !set->replicas_wanted ||
            !set_actionable(hb, set, now))
            continue;
        if (set->member_count < set->replicas_wanted) {
            struct hb_cs *t = choose_target(s, hb, set, 0, now);
            if (t && add_op_locked(s, set, SPL_SCHED_REPLICA, ORD_ADD,
                                   t->id, 0, now)) {
                t->op_load++;
                t->plan_sets++;
            }
            continue;
        }
        /* too many: drop a down member, else the busiest non-leader */
        struct hb_cs *victim = NULL;
        for (uint32_t m = 0; m < set->member_count; m++) {
            struct hb_cs *c = spl_hbstate_cs_locked(hb, set->members[m]);
            if (!c || c->id == set->leader)
                continue;
            if (!live_ok(hb, c->id, now)) {
                victim = c;
                break;
            }
            if (!victim || c->plan_sets > victim->plan_sets)
                victim = c;
        }
        if (victim && add_op_locked(s, set, SPL_SCHED_REPLICA, ORD_REMOVE,
                                    0, victim->id, now))
            victim->plan_sets--;
    }
}

/* schedule_copyset_balance - within each zone, move a copyset from the chunkserver with
 * the most to the one with the fewest when they differ by more than one. */
static void schedule_copyset_balance(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    uint32_t planned = 0;
    for (uint32_t i = 0; i < hb->cs_count && planned < SCHED_CB_PER_ROUND_MAX; i++) {
        struct hb_cs *hi = &hb->css[i];
        if (!live_ok(hb, hi->id, now) || hi->op_load >= (uint32_t)s->d->cfg.ops_per_cs_max)
            continue;
        struct hb_cs *lo = NULL;
        for (uint32_t j = 0; j < hb->cs_count; j++) {
            struct hb_cs *c = &hb->css[j];
            if (c->zone_id != hi->zone_id || c->retired ||
                spl_hbstate_live_locked(hb, c, now) != SPL_CS_LIVE_ONLINE ||
                c->op_load >= (uint32_t)s->d->cfg.ops_per_cs_max)
                continue;
            if (!lo || c->plan_sets < lo->plan_sets)
                lo = c;
        }
        if (!lo || hi->plan_sets - lo->plan_sets <= 1)
            continue;
        for (uint32_t k = 0; k < hi->set_count; k++) {
            struct hb_set *set = &hb->sets[hi->sets[k]];
            if (set->has_op || spl_hbstate_is_member(set, lo->id) ||
                !set_actionable(hb, set, now))
                continue;
            bool all_up = true;
            for (uint32_t m = 0; m < set->member_count; m++)
                all_up &= live_ok(hb, set->members[m], now);
            if (!all_up)
                continue;
            if (add_op_locked(s, set, SPL_SCHED_CBALANCE, ORD_CHANGE,
                              lo->id, hi->id, now)) {
                lo->op_load++;
                lo->plan_sets++;
                hi->op_load++;
                hi->plan_sets--;
                planned++;
            }
            break;
        }
    }
}

/* leader balance: breadth-first search from a chunkserver with the most leaders along
 * "u leads a copyset v is a member of" to one with at least two fewer; transferring
 * along the path moves one leadership from the top to the bottom. */
static bool lb_eligible(struct spl_hbstate *hb, const struct hb_set *set, uint64_t now)
{
    if (set->has_op || !set_actionable(hb, set, now))
        return false;
    for (uint32_t m = 0; m < set->member_count; m++)
        if (!live_ok(hb, set->members[m], now))
            return false;
    return true;
}

static bool lb_one_chain(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now,
                         int32_t *queue)
{
    int32_t top = -1, lo_count = INT32_MAX;
    for (uint32_t i = 0; i < hb->cs_count; i++) {
        struct hb_cs *c = &hb->css[i];
        c->bfs_parent = -2; /* unvisited */
        if (!live_ok(hb, c->id, now) || c->plan_leaders < 0)
            continue;
        if (top < 0 || c->plan_leaders > hb->css[top].plan_leaders)
            top = (int32_t)i;
        if (c->plan_leaders < lo_count)
            lo_count = c->plan_leaders;
    }
    if (top < 0 || hb->css[top].plan_leaders - lo_count <= 1)
        return false;
    int32_t want_max = hb->css[top].plan_leaders - 2, qh = 0, qt = 0, found = -1;
    hb->css[top].bfs_parent = -1;
    queue[qt++] = top;
    uint32_t load_max = (uint32_t)s->d->cfg.ops_per_cs_max;
    while (qh < qt && found < 0) {
        int32_t ui = queue[qh++];
        struct hb_cs *u = &hb->css[ui];
        if (u->op_load + (ui == top ? 1 : 2) > load_max)
            continue; /* the top only gives a leadership; a link receives one and gives one */
        for (uint32_t k = 0; k < u->set_count && found < 0; k++) {
            struct hb_set *set = &hb->sets[u->sets[k]];
            if (set->leader != u->id || !lb_eligible(hb, set, now))
                continue;
            for (uint32_t m = 0; m < set->member_count; m++) {
                struct hb_cs *v = spl_hbstate_cs_locked(hb, set->members[m]);
                if (!v || v->bfs_parent != -2 || !live_ok(hb, v->id, now) || v->retired ||
                    v->op_load >= load_max)
                    continue;
                int32_t vi = (int32_t)(v - hb->css);
                v->bfs_parent = (int32_t)(u - hb->css);
                v->bfs_set = u->sets[k];
                if (v->plan_leaders <= want_max) {
                    found = vi;
                    break;
                }
                queue[qt++] = vi;
            }
        }
    }
    if (found < 0) {
        hb->css[top].plan_leaders = -1000000; /* cannot shed: skip it this round */
        return true;
    }
    for (int32_t v = found; hb->css[v].bfs_parent >= 0; v = hb->css[v].bfs_parent) {
        struct hb_cs *vc = &hb->css[v], *uc = &hb->css[vc->bfs_parent];
        struct hb_set *set = &hb->sets[vc->bfs_set];
        if (!add_op_locked(s, set, SPL_SCHED_LBALANCE, ORD_TRANSFER,
                           vc->id, 0, now))
            return false;
        vc->plan_leaders++;
        uc->plan_leaders--;
        vc->op_load++;
        uc->op_load++;
    }
    return true;
}

static void schedule_leader_balance(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    int32_t *queue = malloc((hb->cs_count ? hb->cs_count : 1) * sizeof *queue);
    if (!queue)
        return;
    for (int i = 0; i < SCHED_LB_CHAINS_MAX && lb_one_chain(s, hb, now, queue); i++) {
    }
    free(queue);
}

/* ---- the round ---- */

static void round_locked(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now)
{
    const struct spl_mdsd_config *cfg = &s->d->cfg;
    check_ops_locked(s, hb, now);
    prepare_round(s, hb);
    if (!cfg->scheduler_enabled)
        return;
    bool offline = false;
    for (uint32_t i = 0; i < hb->cs_count; i++)
        offline |= hb->css[i].offline_since_ns != 0 && hb->css[i].set_count > 0;
    if (now - s->last_recover_ns >= cfg->recover_period_ms * NS_PER_MS) {
        s->last_recover_ns = now;
        schedule_recover(s, hb, now);
        schedule_replica_count(s, hb, now);
    }
    bool busy = offline; /* recovering: leave the replicas where recovery puts them */
    for (uint32_t i = 0; i < s->op_count && !busy; i++)
        busy = s->ops[i].kind == SPL_SCHED_RECOVER || s->ops[i].kind == SPL_SCHED_REPLICA;
    if (cfg->copyset_balance && !busy &&
        now - s->last_cbal_ns >= cfg->copyset_balance_period_ms * NS_PER_MS) {
        s->last_cbal_ns = now;
        schedule_copyset_balance(s, hb, now);
    }
    if (cfg->leader_balance && !offline &&
        now - s->last_lbal_ns >= cfg->leader_balance_period_ms * NS_PER_MS) {
        s->last_lbal_ns = now;
        schedule_leader_balance(s, hb, now);
    }
}

uint32_t spl_sched_plan_locked(struct spl_sched *s, struct spl_hbstate *hb, uint64_t now_ns,
                               struct spl_sched_create_job *jobs, uint32_t max)
{
    if (hb->index_dirty)
        spl_hbstate_reindex_locked(hb);
    spl_hbstate_track_offline_locked(hb, now_ns);
    pthread_mutex_lock(&s->lock);
    round_locked(s, hb, now_ns);
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->op_count && n < max; i++) {
        struct op *o = &s->ops[i];
        if (o->stage != ST_CREATE)
            continue;
        struct hb_set *set = spl_hbstate_set_locked(hb, o->lpool, o->set);
        if (!set)
            continue;
        o->stage = ST_CREATING;
        jobs[n++] = (struct spl_sched_create_job){.op_id = o->id, .cs_id = o->target,
                                                  .set_idx = (uint32_t)(set - hb->sets)};
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint32_t spl_sched_list_ops(struct spl_sched *s, struct spl_sched_op_info *out, uint32_t max)
{
    pthread_mutex_lock(&s->lock);
    uint32_t n = 0;
    for (; n < s->op_count && n < max; n++) {
        const struct op *o = &s->ops[n];
        out[n] = (struct spl_sched_op_info){.id = o->id, .lpool = o->lpool, .set = o->set,
                                            .kind = o->kind, .order = o->order,
                                            .epoch = o->epoch, .target = o->target,
                                            .source = o->source,
                                            .ordered = o->stage == ST_ORDERED,
                                            .deadline_ns = o->deadline_ns};
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* place_pending - place logical pools waiting for chunkservers once registrations have
 * been quiet for place_settle_ms. Returns true when the view must be reloaded. */
static bool place_pending(struct spl_sched *s, uint64_t now)
{
    struct spl_mdsd *d = s->d;
    struct spl_topo_lpool *lp = NULL;
    size_t n = 0;
    bool placed = false;
    pthread_mutex_lock(&d->hb->lock);
    uint64_t last_reg = d->hb->last_register_ns ? d->hb->last_register_ns : d->hb->lead_start_ns;
    pthread_mutex_unlock(&d->hb->lock);
    if (now - last_reg < d->cfg.place_settle_ms * NS_PER_MS)
        return false;
    if (spl_topo_list_lpools(d->topo, &lp, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lp[i].state == SPL_LPOOL_READY)
            continue;
        int rc = spl_topo_place_lpool(d->topo, lp[i].id);
        if (rc == 0) {
            LOG_INFO("mds.sched", "logical pool %s placed (%u copysets)", lp[i].name,
                     lp[i].copyset_count);
            placed = true;
        } else if (rc != SPL_EPLACEMENT) {
            LOG_WARN("mds.sched", "placing logical pool %s: %s", lp[i].name, spl_errname(rc));
        }
    }
    free(lp);
    return placed;
}

static void sched_round(struct spl_sched *s)
{
    struct spl_mdsd *d = s->d;
    struct spl_hbstate *hb = d->hb;
    uint64_t now = spl_mono_ns();
    if (place_pending(s, now))
        (void)spl_hbstate_load(hb, d->topo, true);
    pthread_mutex_lock(&hb->lock);
    /* CreateCopysets for operators that need them; sent with the view locked (the
     * request is built from it) but the operator table unlocked */
    struct spl_sched_create_job jobs[SCHED_CREATE_JOBS_MAX];
    uint32_t job_count = spl_sched_plan_locked(s, hb, now, jobs, SCHED_CREATE_JOBS_MAX);
    for (uint32_t i = 0; i < job_count; i++) {
        const struct hb_cs *t = spl_hbstate_cs_locked(hb, jobs[i].cs_id);
        if (t)
            send_create(s, hb, t, &jobs[i].set_idx, 1, jobs[i].op_id);
        else
            spl_sched_create_result(s, jobs[i].op_id, SPL_ECS_UNKNOWN);
    }
    pthread_mutex_unlock(&hb->lock);
}

static void *sched_main(void *arg)
{
    struct spl_sched *s = arg;
    while (!atomic_load(&s->stop)) {
        if (spl_ha_role(s->d->ha) == SPL_MDSD_LEADER && s->d->topo)
            sched_round(s);
        uint64_t until = spl_mono_ns() + s->d->cfg.sched_period_ms * NS_PER_MS;
        while (!atomic_load(&s->stop) && spl_mono_ns() < until) {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int spl_sched_start(struct spl_sched *s)
{
    if (s->running)
        return 0;
    atomic_store(&s->stop, false);
    int rc = pthread_create(&s->thread, NULL, sched_main, s);
    if (rc != 0)
        return -rc;
    s->running = true;
    return 0;
}

void spl_sched_stop(struct spl_sched *s)
{
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    s->running = false;
}
