/*
 * test_scheduler.c - the MDS scheduler's decisions (scheduler.h's decision core) against
 * a cluster view built in memory (spl_hbstate_install): no etcd, no RPC, no clock. A
 * small fake plays the chunkservers: it executes the orders that the copysets' leaders
 * would receive in heartbeat replies (epoch + 1 per executed order, as Raft's
 * configuration changes and spline-simcs do) and moves the clock.
 *
 * Chunkserver ids are 1.., zone of id = (id - 1) / per_zone + 1, all in physical pool 1;
 * copysets are 1..n in logical pool 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/errors.h"
#include "base/log.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"
#include "mds/scheduler.h"

#define MS(x) ((uint64_t)(x) * 1000000ull)
#define CS_MAX 64
#define OPS_VIEW_MAX 4096
#define JOBS_MAX 256

struct fx {
    struct spl_mdsd d;
    struct spl_hbstate *hb;
    struct spl_sched *s;
    uint64_t now;
    uint32_t per_zone, cs_count;
    bool dead[CS_MAX + 1];
    struct spl_sched_create_job jobs[JOBS_MAX];
    uint32_t job_count;
    struct spl_sched_op_info ops[OPS_VIEW_MAX];
    uint32_t op_count;
};

static struct fx *fx_new(uint32_t zones, uint32_t per_zone)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    struct spl_mdsd_config *c = &f->d.cfg;
    c->hb_unstable_ms = 3000;
    c->hb_offline_ms = 10000;
    c->remove_grace_ms = 0;
    c->sched_period_ms = 100;
    c->recover_period_ms = 0; /* every plan call is a full round */
    c->copyset_balance_period_ms = 0;
    c->leader_balance_period_ms = 0;
    c->op_timeout_ms = 60000;
    c->ops_per_cs_max = 4;
    c->ops_max = 1000;
    c->scheduler_enabled = true;
    c->copyset_balance = true;
    c->leader_balance = true;
    assert_int_equal(spl_hbstate_new(&f->d, &f->hb), 0);
    assert_int_equal(spl_sched_new(&f->d, &f->s), 0);
    f->d.hb = f->hb;
    f->d.sched = f->s;
    f->now = MS(1000000);
    f->per_zone = per_zone;
    f->cs_count = zones * per_zone;
    assert_true(f->cs_count <= CS_MAX);
    return f;
}

static void fx_free(struct fx *f)
{
    spl_sched_free(f->s);
    spl_hbstate_free(f->hb);
    free(f);
}

static uint32_t zone_of(const struct fx *f, uint32_t cs) { return (cs - 1) / f->per_zone + 1; }

/* fx_view - install the view: members[i] (0-terminated, up to SPL_REPLICAS_MAX) and
 * leaders[i] of copyset i + 1, each at epoch 1; every chunkserver online. */
static void fx_view(struct fx *f, uint32_t (*members)[SPL_REPLICAS_MAX], const uint32_t *leaders,
                    uint32_t set_count, uint32_t replicas)
{
    struct hb_cs *css = calloc(f->cs_count, sizeof *css);
    struct hb_set *sets = calloc(set_count ? set_count : 1, sizeof *sets);
    assert_non_null(css);
    assert_non_null(sets);
    for (uint32_t i = 0; i < f->cs_count; i++) {
        css[i].id = i + 1;
        css[i].zone_id = zone_of(f, i + 1);
        css[i].pool_id = 1;
        snprintf(css[i].host, sizeof css[i].host, "127.0.0.1");
        css[i].port = (uint16_t)(9000 + i + 1);
        css[i].last_hb_ns = f->now;
    }
    for (uint32_t i = 0; i < set_count; i++) {
        sets[i].lpool_id = 1;
        sets[i].id = i + 1;
        for (uint32_t m = 0; m < SPL_REPLICAS_MAX && members[i][m]; m++)
            sets[i].members[sets[i].member_count++] = members[i][m];
        sets[i].epoch = 1;
        sets[i].leader = leaders[i];
        sets[i].replicas_wanted = replicas;
    }
    spl_hbstate_install(f->hb, css, f->cs_count, sets, set_count, false);
    f->hb->lead_start_ns = f->now;
}

static struct hb_set *set_of(struct fx *f, uint32_t id)
{
    struct hb_set *s = spl_hbstate_set_locked(f->hb, 1, id);
    assert_non_null(s);
    return s;
}

/* fx_tick - time passes; live chunkservers heartbeat, dead ones do not. */
static void fx_tick(struct fx *f, uint64_t ms)
{
    f->now += MS(ms);
    for (uint32_t i = 0; i < f->hb->cs_count; i++)
        if (!f->dead[f->hb->css[i].id])
            f->hb->css[i].last_hb_ns = f->now;
}

/* fx_kill - the chunkserver stops; once offline_timeout has passed it is offline. */
static void fx_kill(struct fx *f, uint32_t cs)
{
    f->dead[cs] = true;
    fx_tick(f, f->d.cfg.hb_offline_ms + 1);
}

static void fx_list(struct fx *f)
{
    f->op_count = spl_sched_list_ops(f->s, f->ops, OPS_VIEW_MAX);
}

static bool fx_live(struct fx *f, uint32_t cs)
{
    struct hb_cs *c = spl_hbstate_cs_locked(f->hb, cs);
    return c && spl_hbstate_live_locked(f->hb, c, f->now) == SPL_CS_LIVE_ONLINE;
}

/* check_ops - one operator per copyset; at most ops_per_cs_max touching a live
 * chunkserver (as target, source, or the leader a transfer moves away from); at most
 * ops_max in all. An offline source does no work and is not counted. */
static void check_ops(struct fx *f)
{
    fx_list(f);
    assert_true(f->op_count <= (uint32_t)f->d.cfg.ops_max);
    uint32_t load[CS_MAX + 1] = {0};
    for (uint32_t i = 0; i < f->op_count; i++) {
        const struct spl_sched_op_info *o = &f->ops[i];
        for (uint32_t j = i + 1; j < f->op_count; j++)
            assert_false(f->ops[j].lpool == o->lpool && f->ops[j].set == o->set);
        if (o->target)
            load[o->target]++;
        if (o->source)
            load[o->source]++;
        if (o->order == SPLINE__COPYSET_ORDER__TYPE__TRANSFER_LEADER)
            load[set_of(f, o->set)->leader]++;
    }
    for (uint32_t cs = 1; cs <= f->cs_count; cs++)
        if (fx_live(f, cs))
            assert_true(load[cs] <= (uint32_t)f->d.cfg.ops_per_cs_max);
}

/* fx_plan - one scheduler round; its jobs (CreateCopysets) are added to f->jobs. */
static uint32_t fx_plan(struct fx *f)
{
    pthread_mutex_lock(&f->hb->lock);
    f->job_count += spl_sched_plan_locked(f->s, f->hb, f->now, f->jobs + f->job_count,
                                          JOBS_MAX - f->job_count);
    pthread_mutex_unlock(&f->hb->lock);
    check_ops(f);
    return f->op_count;
}

/* fx_create - the targets answer the CreateCopysets sent so far with status. */
static void fx_create(struct fx *f, int status)
{
    for (uint32_t i = 0; i < f->job_count; i++)
        spl_sched_create_result(f->s, f->jobs[i].op_id, status);
    f->job_count = 0;
}

static void set_remove(struct hb_set *s, uint32_t cs)
{
    for (uint32_t m = 0; m < s->member_count; m++)
        if (s->members[m] == cs) {
            s->members[m] = s->members[--s->member_count];
            return;
        }
    fail_msg("chunkserver %u is not a member of copyset %u", cs, s->id);
}

/* fx_execute - every live chunkserver heartbeats once: the orders for the copysets it
 * leads are executed (what a Raft leader would do) and reported back (epoch + 1).
 * Checks each order is stamped with the copyset's current epoch and goes to its
 * leader only. Returns the orders executed. */
static uint32_t fx_execute(struct fx *f)
{
    uint32_t done = 0;
    Spline__CopysetOrder orders[SPL_MDSD_ORDERS_PER_HB_MAX];
    pthread_mutex_lock(&f->hb->lock);
    for (uint32_t cs = 1; cs <= f->cs_count; cs++) {
        if (f->dead[cs])
            continue;
        uint32_t n = spl_sched_orders_locked(f->s, f->hb, cs, orders,
                                             SPL_MDSD_ORDERS_PER_HB_MAX);
        for (uint32_t i = 0; i < n; i++) {
            const Spline__CopysetOrder *o = &orders[i];
            struct hb_set *s = set_of(f, o->id->copyset_id);
            assert_int_equal(s->leader, cs);
            assert_int_equal(o->epoch, s->epoch);
            uint32_t target = o->peer ? o->peer->chunkserver_id : 0;
            uint32_t old = o->old_peer ? o->old_peer->chunkserver_id : 0;
            switch (o->type) {
            case SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER:
                set_remove(s, old);
                s->members[s->member_count++] = target;
                break;
            case SPLINE__COPYSET_ORDER__TYPE__ADD_PEER:
                s->members[s->member_count++] = target;
                break;
            case SPLINE__COPYSET_ORDER__TYPE__REMOVE_PEER: /* the one in `peer` */
                assert_null(o->old_peer);
                set_remove(s, target);
                break;
            case SPLINE__COPYSET_ORDER__TYPE__TRANSFER_LEADER:
                assert_true(spl_hbstate_is_member(s, target));
                s->leader = target;
                break;
            default:
                fail_msg("unexpected order type %d", o->type);
            }
            s->epoch++;
            done++;
        }
    }
    f->hb->index_dirty = true; /* members and leaders changed behind the view's back */
    pthread_mutex_unlock(&f->hb->lock);
    return done;
}

static uint32_t count_sets(struct fx *f, uint32_t cs)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->hb->set_count; i++)
        n += spl_hbstate_is_member(&f->hb->sets[i], cs);
    return n;
}

static uint32_t count_leads(struct fx *f, uint32_t cs)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->hb->set_count; i++)
        n += f->hb->sets[i].leader == cs;
    return n;
}

/* check_zones - every copyset has its members in distinct zones. */
static void check_zones(struct fx *f)
{
    for (uint32_t i = 0; i < f->hb->set_count; i++) {
        const struct hb_set *s = &f->hb->sets[i];
        for (uint32_t a = 0; a < s->member_count; a++)
            for (uint32_t b = a + 1; b < s->member_count; b++)
                assert_int_not_equal(zone_of(f, s->members[a]), zone_of(f, s->members[b]));
    }
}

/* round_robin - n copysets over zones x per_zone chunkservers: copyset i takes member
 * (i + k) % per_zone of zone k + 1 (k < 3), led by the first member. */
static void round_robin(struct fx *f, uint32_t n, uint32_t (*members)[SPL_REPLICAS_MAX],
                        uint32_t *leaders)
{
    for (uint32_t i = 0; i < n; i++) {
        memset(members[i], 0, sizeof members[i]);
        for (uint32_t k = 0; k < 3; k++)
            members[i][k] = k * f->per_zone + (i + k) % f->per_zone + 1;
        leaders[i] = members[i][0];
    }
}

/* ---- recover ---- */

static void test_recover_target_in_unused_zone(void **state)
{
    (void)state;
    /* zones: 1 = {1,2}, 2 = {3,4}, 3 = {5,6}, 4 = {7,8}. Chunkservers 4 and 6 hold
     * nothing: a zone-blind choice would take them for copyset 1 */
    struct fx *f = fx_new(4, 2);
    f->d.cfg.copyset_balance = f->d.cfg.leader_balance = false;
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3, 5}, {2, 3, 7}, {2, 5, 8}, {1, 5, 7}, {2, 3, 8}};
    uint32_t l[] = {3, 2, 2, 5, 2};
    fx_view(f, m, l, 5, 3);
    assert_int_equal(fx_plan(f), 0); /* healthy and balanced enough: nothing to do */
    fx_kill(f, 1);
    fx_plan(f);
    assert_int_equal(f->op_count, 2); /* copysets 1 and 4 lost chunkserver 1 */
    for (uint32_t i = 0; i < f->op_count; i++) {
        const struct spl_sched_op_info *o = &f->ops[i];
        assert_int_equal(o->kind, SPL_SCHED_RECOVER);
        assert_int_equal(o->order, SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER);
        assert_int_equal(o->source, 1);
        assert_int_equal(o->epoch, 1);
        assert_false(o->ordered); /* CreateCopysets on the target comes first */
        const struct hb_set *s = set_of(f, o->set);
        for (uint32_t k = 0; k < s->member_count; k++)
            if (s->members[k] != 1)
                assert_int_not_equal(zone_of(f, o->target), zone_of(f, s->members[k]));
        if (o->set == 1) /* zones 1 or 4 are free: 2 holds 3, 7 and 8 hold 2 each */
            assert_true(o->target == 7 || o->target == 8);
        else /* copyset 4 {1,5,7}: zones 1 or 2 are free; 4 holds none */
            assert_int_equal(o->target, 4);
    }
    /* the jobs create each copyset on its target before any order is given */
    assert_int_equal(f->job_count, 2);
    assert_int_equal(fx_execute(f), 0);
    fx_create(f, 0);
    assert_int_equal(fx_execute(f), 2);
    fx_tick(f, 100);
    fx_plan(f);
    assert_int_equal(f->op_count, 0);
    struct spl_sched_counts c;
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.finished, 2);
    assert_int_equal(count_sets(f, 1), 0);
    check_zones(f);
    fx_free(f);
}

static void test_recover_never_breaks_zone_rule(void **state)
{
    (void)state;
    /* zones 1 = {1,2}, 2 = {3,4}, 3 = {5,6}; 2 is retired, so zone 1 has no candidate */
    struct fx *f = fx_new(3, 2);
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3, 5}};
    uint32_t l[] = {3};
    fx_view(f, m, l, 1, 3);
    spl_hbstate_cs_locked(f->hb, 2)->retired = true;
    fx_kill(f, 1);
    assert_int_equal(fx_plan(f), 0);
    spl_hbstate_cs_locked(f->hb, 2)->retired = false;
    f->dead[2] = true; /* unstable is not good enough for a target either */
    fx_tick(f, f->d.cfg.hb_unstable_ms + 1);
    assert_int_equal(fx_plan(f), 0);
    f->dead[2] = false;
    fx_tick(f, 10);
    assert_int_equal(fx_plan(f), 1);
    assert_int_equal(f->ops[0].target, 2);
    fx_free(f);
}

static void test_recover_needs_majority_and_leader(void **state)
{
    (void)state;
    struct fx *f = fx_new(4, 2);
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3, 5}, {2, 4, 6}};
    uint32_t l[] = {3, 0}; /* copyset 2 has no known leader */
    fx_view(f, m, l, 2, 3);
    f->dead[1] = f->dead[5] = true; /* copyset 1 lost its majority */
    f->dead[6] = true;              /* copyset 2: majority up, but nobody leads */
    fx_tick(f, f->d.cfg.hb_offline_ms + 1);
    assert_int_equal(fx_plan(f), 0);
    fx_free(f);
}

static void test_operators_bounded_per_chunkserver(void **state)
{
    (void)state;
    /* 3 zones x 3; 30 copysets; chunkserver 1 dies: its 10 copysets go to 2 and 3, at
     * most ops_per_cs_max = 2 at a time on each */
    struct fx *f = fx_new(3, 3);
    f->d.cfg.ops_per_cs_max = 2;
    uint32_t m[30][SPL_REPLICAS_MAX], l[30];
    round_robin(f, 30, m, l);
    for (uint32_t i = 0; i < 30; i++)
        if (l[i] == 1)
            l[i] = m[i][1]; /* leaders elsewhere so every copyset stays actionable */
    fx_view(f, m, l, 30, 3);
    fx_kill(f, 1);
    uint32_t lost = count_sets(f, 1);
    assert_int_equal(lost, 10);
    uint32_t rounds = 0, max_ops = 0;
    while (count_sets(f, 1) > 0 && rounds++ < 100) {
        fx_plan(f); /* check_ops: the bound and one operator per copyset */
        if (f->op_count > max_ops)
            max_ops = f->op_count;
        for (uint32_t i = 0; i < f->op_count; i++) {
            assert_int_equal(f->ops[i].kind, SPL_SCHED_RECOVER);
            assert_true(f->ops[i].target == 2 || f->ops[i].target == 3);
        }
        fx_plan(f); /* a second round before anything finished adds nothing */
        assert_true(f->op_count <= 4);
        fx_create(f, 0);
        fx_execute(f);
        fx_tick(f, 100);
    }
    assert_int_equal(count_sets(f, 1), 0);
    assert_int_equal(max_ops, 4); /* 2 targets x 2 */
    assert_true(rounds >= 3);     /* 10 copysets, 4 at a time */
    assert_int_equal(count_sets(f, 2), 15); /* the least loaded target first */
    assert_int_equal(count_sets(f, 3), 15);
    check_zones(f);
    fx_free(f);
}

static void test_operator_timeout_and_failures(void **state)
{
    (void)state;
    struct fx *f = fx_new(3, 2);
    f->d.cfg.op_timeout_ms = 5000;
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3, 5}};
    uint32_t l[] = {3};
    fx_view(f, m, l, 1, 3);
    fx_kill(f, 1);
    assert_int_equal(fx_plan(f), 1);
    uint64_t first = f->ops[0].id;
    fx_create(f, 0);
    fx_tick(f, 4000); /* the leader never executes it */
    assert_int_equal(fx_plan(f), 1);
    assert_int_equal(f->ops[0].id, first);
    fx_tick(f, 1001);
    fx_plan(f); /* times out, and the same round plans a fresh one */
    assert_int_equal(f->op_count, 1);
    assert_true(f->ops[0].id > first);
    struct spl_sched_counts c;
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.timed_out, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.recover, 1);
    /* a failed CreateCopysets fails the operator at once */
    uint64_t second = f->ops[0].id;
    fx_create(f, SPL_ERPC_UNREACHABLE);
    fx_list(f);
    assert_int_equal(f->op_count, 0);
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.failed, 2);
    /* the target going offline fails it too */
    assert_int_equal(fx_plan(f), 1);
    assert_true(f->ops[0].id > second);
    fx_create(f, 0);
    fx_kill(f, f->ops[0].target);
    fx_plan(f);
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.failed, 3);
    assert_int_equal(f->op_count, 0); /* zone 1 has no live chunkserver left */
    fx_free(f);
}

/* ---- replica count ---- */

static void test_replica_count_repair(void **state)
{
    (void)state;
    /* 4 zones x 2. Copyset 1 has 2 of 3 replicas; copyset 2 has 4 */
    struct fx *f = fx_new(4, 2);
    f->d.cfg.copyset_balance = f->d.cfg.leader_balance = false;
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3}, {2, 4, 6, 8}, {1, 3, 5}};
    uint32_t l[] = {1, 2, 1};
    fx_view(f, m, l, 3, 3);
    fx_plan(f);
    assert_int_equal(f->op_count, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const struct spl_sched_op_info *o = &f->ops[i];
        assert_int_equal(o->kind, SPL_SCHED_REPLICA);
        if (o->set == 1) {
            assert_int_equal(o->order, SPLINE__COPYSET_ORDER__TYPE__ADD_PEER);
            assert_int_not_equal(zone_of(f, o->target), 1);
            assert_int_not_equal(zone_of(f, o->target), 2);
            assert_int_equal(o->source, 0);
            assert_false(o->ordered);
        } else {
            assert_int_equal(o->set, 2);
            assert_int_equal(o->order, SPLINE__COPYSET_ORDER__TYPE__REMOVE_PEER);
            assert_int_not_equal(o->source, 2); /* never the leader */
            assert_int_equal(o->target, 0);
            assert_true(o->ordered); /* nothing to create */
        }
    }
    fx_create(f, 0);
    assert_int_equal(fx_execute(f), 2);
    fx_tick(f, 100);
    assert_int_equal(fx_plan(f), 0);
    assert_int_equal(set_of(f, 1)->member_count, 3);
    assert_int_equal(set_of(f, 2)->member_count, 3);
    check_zones(f);
    fx_free(f);
}

static void test_replica_count_drops_down_member_first(void **state)
{
    (void)state;
    struct fx *f = fx_new(4, 2);
    f->d.cfg.copyset_balance = f->d.cfg.leader_balance = false;
    uint32_t m[][SPL_REPLICAS_MAX] = {{2, 4, 6, 8}};
    uint32_t l[] = {2};
    fx_view(f, m, l, 1, 3);
    fx_kill(f, 6); /* one replica too many and one offline: drop it, do not replace it */
    assert_int_equal(fx_plan(f), 1);
    assert_int_equal(f->ops[0].kind, SPL_SCHED_REPLICA);
    assert_int_equal(f->ops[0].order, SPLINE__COPYSET_ORDER__TYPE__REMOVE_PEER);
    assert_int_equal(f->ops[0].source, 6);
    fx_free(f);
}

/* ---- copyset balance ---- */

static void test_copyset_balance(void **state)
{
    (void)state;
    /* 3 zones x 2; in zone 1 every copyset is on chunkserver 1, none on 2 */
    struct fx *f = fx_new(3, 2);
    f->d.cfg.leader_balance = false;
    uint32_t m[12][SPL_REPLICAS_MAX], l[12];
    for (uint32_t i = 0; i < 12; i++) {
        uint32_t row[SPL_REPLICAS_MAX] = {1, 3 + i % 2, 5 + (i / 2) % 2};
        memcpy(m[i], row, sizeof row);
        l[i] = m[i][1];
    }
    fx_view(f, m, l, 12, 3);
    /* nothing moves while a chunkserver is offline (recovery first) */
    fx_kill(f, 4);
    fx_plan(f);
    for (uint32_t i = 0; i < f->op_count; i++)
        assert_int_not_equal(f->ops[i].kind, SPL_SCHED_CBALANCE);
    fx_free(f);

    f = fx_new(3, 2);
    f->d.cfg.leader_balance = false;
    fx_view(f, m, l, 12, 3);
    uint32_t rounds = 0;
    for (; rounds < 50; rounds++) {
        fx_plan(f);
        if (f->op_count == 0)
            break;
        for (uint32_t i = 0; i < f->op_count; i++) {
            const struct spl_sched_op_info *o = &f->ops[i];
            assert_int_equal(o->kind, SPL_SCHED_CBALANCE);
            assert_int_equal(o->order, SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER);
            assert_int_equal(zone_of(f, o->target), zone_of(f, o->source));
        }
        fx_create(f, 0);
        fx_execute(f);
        fx_tick(f, 100);
    }
    assert_true(rounds < 50);
    int32_t d1 = (int32_t)count_sets(f, 1) - (int32_t)count_sets(f, 2);
    assert_true(d1 >= -1 && d1 <= 1);
    assert_int_equal(count_sets(f, 1) + count_sets(f, 2), 12);
    check_zones(f);
    fx_free(f);
}

/* ---- leader balance ---- */

static void leader_spread(struct fx *f, uint32_t *min, uint32_t *max)
{
    *min = UINT32_MAX;
    *max = 0;
    for (uint32_t cs = 1; cs <= f->cs_count; cs++) {
        if (f->dead[cs])
            continue;
        uint32_t n = count_leads(f, cs);
        *min = n < *min ? n : *min;
        *max = n > *max ? n : *max;
    }
}

static void test_leader_balance(void **state)
{
    (void)state;
    /* 3 zones x 3, 90 copysets, every leader in zone 1 */
    struct fx *f = fx_new(3, 3);
    f->d.cfg.copyset_balance = false;
    uint32_t m[90][SPL_REPLICAS_MAX], l[90];
    round_robin(f, 90, m, l); /* leaders: 30 on each of 1, 2, 3; none elsewhere */
    fx_view(f, m, l, 90, 3);
    uint32_t lo, hi;
    leader_spread(f, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 30);
    uint32_t rounds = 0;
    for (; rounds < 100; rounds++) {
        fx_plan(f);
        if (f->op_count == 0)
            break;
        for (uint32_t i = 0; i < f->op_count; i++) {
            assert_int_equal(f->ops[i].kind, SPL_SCHED_LBALANCE);
            assert_int_equal(f->ops[i].order, SPLINE__COPYSET_ORDER__TYPE__TRANSFER_LEADER);
            assert_true(f->ops[i].ordered);
        }
        assert_int_equal(f->job_count, 0);
        fx_execute(f);
        fx_tick(f, 100);
    }
    assert_true(rounds < 100);
    leader_spread(f, &lo, &hi);
    assert_true(hi - lo <= 1);
    assert_int_equal(lo, 10);
    struct spl_sched_counts c;
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.failed, 0);
    assert_true(c.finished >= 60);
    fx_free(f);
}

static void test_leader_transfer_finishes_without_epoch_change(void **state)
{
    (void)state;
    struct fx *f = fx_new(3, 1);
    f->d.cfg.copyset_balance = false;
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}};
    uint32_t l[] = {1, 1, 1};
    fx_view(f, m, l, 3, 3);
    fx_plan(f);
    assert_true(f->op_count >= 1);
    uint32_t set = f->ops[0].set, target = f->ops[0].target;
    /* the new leader reports the same epoch: only the leader changed */
    pthread_mutex_lock(&f->hb->lock);
    set_of(f, set)->leader = target;
    f->hb->index_dirty = true;
    pthread_mutex_unlock(&f->hb->lock);
    fx_plan(f);
    struct spl_sched_counts c;
    spl_sched_get_counts(f->s, &c);
    assert_true(c.finished >= 1);
    for (uint32_t i = 0; i < f->op_count; i++)
        assert_false(f->ops[i].set == set && f->ops[i].target == target);
    fx_free(f);
}

/* ---- stale epochs ---- */

static void test_stale_epoch_order_not_given(void **state)
{
    (void)state;
    struct fx *f = fx_new(3, 2);
    f->d.cfg.copyset_balance = f->d.cfg.leader_balance = false;
    uint32_t m[][SPL_REPLICAS_MAX] = {{1, 3, 5}};
    uint32_t l[] = {3};
    fx_view(f, m, l, 1, 3);
    fx_kill(f, 1);
    assert_int_equal(fx_plan(f), 1);
    fx_create(f, 0);
    Spline__CopysetOrder orders[SPL_MDSD_ORDERS_PER_HB_MAX];
    pthread_mutex_lock(&f->hb->lock);
    /* only the leader gets it, stamped with the epoch it was computed against */
    assert_int_equal(spl_sched_orders_locked(f->s, f->hb, 5, orders, 8), 0);
    assert_int_equal(spl_sched_orders_locked(f->s, f->hb, 3, orders, 8), 1);
    assert_int_equal(orders[0].epoch, 1);
    assert_int_equal(orders[0].type, SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER);
    assert_int_equal(orders[0].old_peer->chunkserver_id, 1);
    assert_int_equal(orders[0].peer->chunkserver_id, 2);
    /* the configuration moves on (a new leader re-commits it): epoch 2, leader 5 */
    struct hb_set *s = set_of(f, 1);
    s->epoch = 2;
    s->leader = 5;
    f->hb->index_dirty = true;
    assert_int_equal(spl_sched_orders_locked(f->s, f->hb, 5, orders, 8), 0);
    assert_int_equal(spl_sched_orders_locked(f->s, f->hb, 3, orders, 8), 0);
    pthread_mutex_unlock(&f->hb->lock);
    /* the next round sees the epoch moved without the change: the operator fails, and a
     * new one is computed against epoch 2 */
    fx_tick(f, 100);
    fx_plan(f);
    struct spl_sched_counts c;
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.failed, 1);
    assert_int_equal(f->op_count, 1);
    assert_int_equal(f->ops[0].epoch, 2);
    fx_create(f, 0);
    assert_int_equal(fx_execute(f), 1);
    fx_tick(f, 100);
    assert_int_equal(fx_plan(f), 0);
    spl_sched_get_counts(f->s, &c);
    assert_int_equal(c.finished, 1);
    assert_false(spl_hbstate_is_member(set_of(f, 1), 1));
    fx_free(f);
}

static void test_ops_max_and_disabled(void **state)
{
    (void)state;
    struct fx *f = fx_new(3, 3);
    f->d.cfg.ops_max = 3;
    uint32_t m[30][SPL_REPLICAS_MAX], l[30];
    round_robin(f, 30, m, l);
    for (uint32_t i = 0; i < 30; i++)
        if (l[i] == 1)
            l[i] = m[i][1];
    fx_view(f, m, l, 30, 3);
    f->d.cfg.scheduler_enabled = false;
    fx_kill(f, 1);
    assert_int_equal(fx_plan(f), 0);
    f->d.cfg.scheduler_enabled = true;
    assert_int_equal(fx_plan(f), 3);
    fx_free(f);
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recover_target_in_unused_zone),
        cmocka_unit_test(test_recover_never_breaks_zone_rule),
        cmocka_unit_test(test_recover_needs_majority_and_leader),
        cmocka_unit_test(test_operators_bounded_per_chunkserver),
        cmocka_unit_test(test_operator_timeout_and_failures),
        cmocka_unit_test(test_replica_count_repair),
        cmocka_unit_test(test_replica_count_drops_down_member_first),
        cmocka_unit_test(test_copyset_balance),
        cmocka_unit_test(test_leader_balance),
        cmocka_unit_test(test_leader_transfer_finishes_without_epoch_change),
        cmocka_unit_test(test_stale_epoch_order_not_given),
        cmocka_unit_test(test_ops_max_and_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
