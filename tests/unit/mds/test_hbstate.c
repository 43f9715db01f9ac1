/*
 * test_hbstate.c - the heartbeat rules of the MDS's cluster view (hbstate.h) on a view
 * installed in memory (no etcd, no RPC, no writer thread): an unknown chunkserver is
 * refused; a leader's report with a higher epoch queues the new configuration for etcd;
 * an equal epoch refreshes only the leader; a lower epoch, or a follower's report, changes
 * nothing; a replica on a chunkserver that is not a member is told to go, but not during
 * the grace period after taking leadership and not while an operator is adding it;
 * liveness (online / unstable / offline / unknown) follows the configured timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "mds/hbstate.h"
#include "mds/mdsd.h"
#include "mds/scheduler.h"

#define MS(x) ((uint64_t)(x) * 1000000ull)

struct fx {
    struct spl_mdsd d;
    struct spl_hbstate *hb;
    struct spl_sched *s;
};

/* fx_new - chunkservers 1..6 (zone (id + 1) / 2), copyset 1.1 = {1, 3, 5} led by 1 and
 * copyset 1.2 = {2, 4, 6} led by 2, both at epoch 5. */
static struct fx *fx_new(uint64_t remove_grace_ms)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->d.cfg.hb_unstable_ms = 3000;
    f->d.cfg.hb_offline_ms = 10000;
    f->d.cfg.remove_grace_ms = remove_grace_ms;
    f->d.cfg.op_timeout_ms = 60000;
    f->d.cfg.ops_per_cs_max = 4;
    f->d.cfg.ops_max = 100;
    f->d.cfg.scheduler_enabled = true;
    assert_int_equal(spl_hbstate_new(&f->d, &f->hb), 0);
    assert_int_equal(spl_sched_new(&f->d, &f->s), 0);
    f->d.hb = f->hb;
    f->d.sched = f->s;
    struct hb_cs *css = calloc(6, sizeof *css);
    struct hb_set *sets = calloc(2, sizeof *sets);
    assert_non_null(css);
    assert_non_null(sets);
    for (uint32_t i = 0; i < 6; i++) {
        css[i].id = i + 1;
        css[i].zone_id = (i + 2) / 2;
        css[i].pool_id = 1;
        snprintf(css[i].host, sizeof css[i].host, "127.0.0.1");
        css[i].port = (uint16_t)(9001 + i);
    }
    for (uint32_t i = 0; i < 2; i++) {
        sets[i] = (struct hb_set){.lpool_id = 1, .id = i + 1, .member_count = 3, .epoch = 5,
                                  .leader = i + 1, .replicas_wanted = 3};
        for (uint32_t m = 0; m < 3; m++)
            sets[i].members[m] = i + 1 + 2 * m;
    }
    spl_hbstate_install(f->hb, css, 6, sets, 2, false);
    return f;
}

static void fx_free(struct fx *f)
{
    spl_sched_free(f->s);
    spl_hbstate_free(f->hb);
    free(f);
}

/* A heartbeat with one copyset report. */
struct hb_msg {
    Spline__HeartbeatRequest req;
    Spline__CopysetReport rep, *reps[1];
    Spline__CopysetId id;
    Spline__PeerAddr leader, peers[SPL_REPLICAS_MAX], *peer_ptrs[SPL_REPLICAS_MAX];
};

/* msg - chunkserver cs reports copyset 1.set at epoch, led by leader (0: none known),
 * with members[0..n). */
static void msg(struct hb_msg *m, uint32_t cs, uint32_t set, uint64_t epoch, uint32_t leader,
                const uint32_t *members, uint32_t n)
{
    memset(m, 0, sizeof *m);
    spline__heartbeat_request__init(&m->req);
    spline__copyset_report__init(&m->rep);
    spline__copyset_id__init(&m->id);
    m->req.chunkserver_id = cs;
    m->req.host = "127.0.0.1";
    m->req.port = 9000 + cs;
    m->id.logical_pool_id = 1;
    m->id.copyset_id = set;
    m->rep.id = &m->id;
    m->rep.epoch = epoch;
    m->rep.term = epoch * 10;
    if (leader) {
        spline__peer_addr__init(&m->leader);
        m->leader.chunkserver_id = leader;
        m->rep.leader = &m->leader;
    }
    for (uint32_t i = 0; i < n; i++) {
        spline__peer_addr__init(&m->peers[i]);
        m->peers[i].chunkserver_id = members[i];
        m->peer_ptrs[i] = &m->peers[i];
    }
    m->rep.peers = m->peer_ptrs;
    m->rep.n_peers = n;
    if (set) {
        m->reps[0] = &m->rep;
        m->req.copysets = m->reps;
        m->req.n_copysets = 1;
    }
}

/* beat - send m; returns the code, the orders in *resp (free with
 * spl_hbstate_free_orders). */
static int beat(struct fx *f, struct hb_msg *m, Spline__HeartbeatResponse *resp)
{
    spline__heartbeat_response__init(resp);
    return spl_hbstate_heartbeat(f->hb, &m->req, resp);
}

static struct hb_set *set_of(struct fx *f, uint32_t id)
{
    struct hb_set *s = spl_hbstate_set_locked(f->hb, 1, id);
    assert_non_null(s);
    return s;
}

static void assert_members(struct fx *f, uint32_t set, uint32_t a, uint32_t b, uint32_t c)
{
    const struct hb_set *s = set_of(f, set);
    assert_int_equal(s->member_count, 3);
    assert_true(spl_hbstate_is_member(s, a));
    assert_true(spl_hbstate_is_member(s, b));
    assert_true(spl_hbstate_is_member(s, c));
}

static void test_unknown_chunkserver_refused(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    msg(&m, 77, 0, 0, 0, NULL, 0);
    assert_int_equal(beat(f, &m, &resp), SPL_ECS_UNKNOWN);
    assert_int_equal(resp.n_orders, 0);
    msg(&m, 0, 0, 0, 0, NULL, 0);
    assert_int_equal(beat(f, &m, &resp), SPL_ECS_UNKNOWN);
    assert_int_equal(f->hb->hb_count, 0);
    /* a known chunkserver is accepted and becomes online */
    msg(&m, 3, 0, 0, 0, NULL, 0);
    assert_int_equal(beat(f, &m, &resp), 0);
    spl_hbstate_free_orders(&resp);
    assert_int_equal(f->hb->hb_count, 1);
    const struct hb_cs *c = spl_hbstate_cs_locked(f->hb, 3);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, spl_mono_ns()), SPL_CS_LIVE_ONLINE);
    /* its claimed address must be the registered one when it shows its token */
    msg(&m, 3, 0, 0, 0, NULL, 0);
    m.req.token = "0123456789abcdef";
    m.req.port = 9999;
    assert_int_equal(beat(f, &m, &resp), SPL_EMDS_BADTOKEN);
    fx_free(f);
}

static void test_higher_epoch_from_leader_queued(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    const uint32_t newm[] = {1, 3, 6};
    /* a follower's report of a newer configuration is not trusted */
    msg(&m, 3, 1, 6, 1, newm, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    spl_hbstate_free_orders(&resp);
    assert_int_equal(f->hb->queue_count, 0);
    assert_int_equal(set_of(f, 1)->pending_epoch, 0);
    /* the leader's is queued for etcd; the view changes only once it is stored */
    msg(&m, 1, 1, 6, 1, newm, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    spl_hbstate_free_orders(&resp);
    assert_int_equal(spl_hbstate_pending(f->hb), 1);
    const struct hb_set *s = set_of(f, 1);
    assert_int_equal(s->pending_epoch, 6);
    assert_int_equal(s->pending_n, 3);
    assert_int_equal(s->pending_members[2], 6);
    assert_int_equal(s->epoch, 5);
    assert_members(f, 1, 1, 3, 5);
    fx_free(f);
}

static void test_equal_epoch_updates_leader_only(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    /* chunkserver 3 now leads copyset 1 at the same epoch, and reports other members
     * (impossible at the same epoch: they must be ignored) */
    const uint32_t other[] = {3, 4, 6};
    msg(&m, 3, 1, 5, 3, other, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    spl_hbstate_free_orders(&resp);
    const struct hb_set *s = set_of(f, 1);
    assert_int_equal(s->leader, 3);
    assert_int_equal(s->term, 50);
    assert_int_equal(s->epoch, 5);
    assert_members(f, 1, 1, 3, 5);
    assert_int_equal(f->hb->queue_count, 0);
    assert_int_equal(s->pending_epoch, 0);
    assert_int_equal(spl_hbstate_cs_locked(f->hb, 3)->leader_count, 1);
    assert_int_equal(spl_hbstate_cs_locked(f->hb, 1)->leader_count, 0);
    fx_free(f);
}

static void test_lower_epoch_ignored(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    /* member 5 claims to lead copyset 1 at an older epoch with another configuration */
    const uint32_t old[] = {5, 2, 4};
    msg(&m, 5, 1, 4, 5, old, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    assert_int_equal(resp.n_orders, 0); /* a member: not told to remove its replica */
    spl_hbstate_free_orders(&resp);
    const struct hb_set *s = set_of(f, 1);
    assert_int_equal(s->leader, 1);
    assert_int_equal(s->term, 0);
    assert_int_equal(s->epoch, 5);
    assert_members(f, 1, 1, 3, 5);
    assert_int_equal(f->hb->queue_count, 0);
    assert_int_equal(s->pending_epoch, 0);
    assert_int_equal(spl_hbstate_cs_locked(f->hb, 5)->leader_count, 0);
    fx_free(f);
}

static void test_non_member_told_to_remove_after_grace(void **state)
{
    (void)state;
    struct fx *f = fx_new(60000);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    /* chunkserver 2 still holds copyset 1 (it left at epoch 4) */
    const uint32_t old[] = {1, 2, 3};
    msg(&m, 2, 1, 4, 1, old, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    assert_int_equal(resp.n_orders, 0); /* within the grace period */
    spl_hbstate_free_orders(&resp);
    f->hb->lead_start_ns -= MS(60001);
    assert_int_equal(beat(f, &m, &resp), 0);
    assert_int_equal(resp.n_orders, 1);
    assert_int_equal(resp.orders[0]->type, SPLINE__COPYSET_ORDER__TYPE__REMOVE_REPLICA);
    assert_int_equal(resp.orders[0]->id->copyset_id, 1);
    assert_int_equal(resp.orders[0]->epoch, 5);
    spl_hbstate_free_orders(&resp);
    /* a newer configuration than ours: maybe it is a member now; wait for the leader */
    msg(&m, 2, 1, 7, 1, old, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    assert_int_equal(resp.n_orders, 0);
    spl_hbstate_free_orders(&resp);
    assert_int_equal(set_of(f, 1)->epoch, 5);
    fx_free(f);
}

static void test_operator_target_not_removed(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    f->d.cfg.copyset_balance = f->d.cfg.leader_balance = false;
    /* chunkserver 5 goes offline; recovery moves copyset 1 to 6 (zone 3's other one) */
    uint64_t now = spl_mono_ns();
    pthread_mutex_lock(&f->hb->lock);
    for (uint32_t i = 0; i < f->hb->cs_count; i++)
        f->hb->css[i].last_hb_ns = f->hb->css[i].id == 5 ? now - MS(20000) : now;
    struct spl_sched_create_job jobs[4];
    uint32_t n = spl_sched_plan_locked(f->s, f->hb, now, jobs, 4);
    pthread_mutex_unlock(&f->hb->lock);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].cs_id, 6);
    /* the created replica on 6 reports before the change: no REMOVE_REPLICA for it */
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    const uint32_t cur[] = {1, 3, 5};
    msg(&m, 6, 1, 5, 0, cur, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    for (size_t i = 0; i < resp.n_orders; i++)
        assert_false(resp.orders[i]->id->copyset_id == 1 &&
                     resp.orders[i]->type == SPLINE__COPYSET_ORDER__TYPE__REMOVE_REPLICA);
    spl_hbstate_free_orders(&resp);
    /* once created, the leader's heartbeat carries the CHANGE_PEER at epoch 5 */
    spl_sched_create_result(f->s, jobs[0].op_id, 0);
    msg(&m, 1, 1, 5, 1, cur, 3);
    assert_int_equal(beat(f, &m, &resp), 0);
    assert_int_equal(resp.n_orders, 1);
    assert_int_equal(resp.orders[0]->type, SPLINE__COPYSET_ORDER__TYPE__CHANGE_PEER);
    assert_int_equal(resp.orders[0]->epoch, 5);
    assert_int_equal(resp.orders[0]->peer->chunkserver_id, 6);
    assert_int_equal(resp.orders[0]->peer->port, 9006);
    assert_string_equal(resp.orders[0]->peer->host, "127.0.0.1");
    assert_int_equal(resp.orders[0]->old_peer->chunkserver_id, 5);
    spl_hbstate_free_orders(&resp);
    fx_free(f);
}

static void test_bad_reports_refused(void **state)
{
    (void)state;
    struct fx *f = fx_new(0);
    struct hb_msg m;
    Spline__HeartbeatResponse resp;
    msg(&m, 1, 1, 5, 1, NULL, 0);
    m.id.copyset_id = 0;
    assert_int_equal(beat(f, &m, &resp), SPL_EMDS_BADREPORT);
    const uint32_t zero[] = {1, 0, 3};
    msg(&m, 1, 1, 5, 1, zero, 3);
    assert_int_equal(beat(f, &m, &resp), SPL_EMDS_BADREPORT);
    msg(&m, 1, 0, 0, 0, NULL, 0);
    m.req.host = "";
    assert_int_equal(beat(f, &m, &resp), SPL_EMDS_BADHOST);
    msg(&m, 1, 0, 0, 0, NULL, 0);
    m.req.port = 0;
    assert_int_equal(beat(f, &m, &resp), SPL_EMDS_BADPORT);
    assert_int_equal(f->hb->hb_count, 0);
    fx_free(f);
}

static void test_liveness_from_timeouts(void **state)
{
    (void)state;
    struct fx *f = fx_new(0); /* unstable after 3 s, offline after 10 s */
    uint64_t now = f->hb->lead_start_ns + MS(5000);
    struct hb_cs *c = spl_hbstate_cs_locked(f->hb, 1);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_UNKNOWN);
    c->last_hb_ns = now - MS(2999);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_ONLINE);
    c->last_hb_ns = now - MS(3000);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_UNSTABLE);
    c->last_hb_ns = now - MS(9999);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_UNSTABLE);
    c->last_hb_ns = now - MS(10000);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_OFFLINE);
    /* never heard of since taking over: unknown until offline_timeout, then offline */
    struct hb_cs *d = spl_hbstate_cs_locked(f->hb, 2);
    now = f->hb->lead_start_ns + MS(10000);
    assert_int_equal(spl_hbstate_live_locked(f->hb, d, now), SPL_CS_LIVE_OFFLINE);
    /* the offline bookkeeping behind recovery progress */
    pthread_mutex_lock(&f->hb->lock);
    c->last_hb_ns = now - MS(10000);
    spl_hbstate_track_offline_locked(f->hb, now);
    assert_int_equal(c->offline_since_ns, now);
    assert_int_equal(c->copysets_at_offline, 1);
    c->last_hb_ns = now;
    spl_hbstate_track_offline_locked(f->hb, now);
    assert_int_equal(c->offline_since_ns, 0);
    pthread_mutex_unlock(&f->hb->lock);
    /* configurable: the same age is online under longer timeouts */
    f->d.cfg.hb_unstable_ms = 20000;
    f->d.cfg.hb_offline_ms = 40000;
    c->last_hb_ns = now - MS(15000);
    assert_int_equal(spl_hbstate_live_locked(f->hb, c, now), SPL_CS_LIVE_ONLINE);
    fx_free(f);
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_chunkserver_refused),
        cmocka_unit_test(test_higher_epoch_from_leader_queued),
        cmocka_unit_test(test_equal_epoch_updates_leader_only),
        cmocka_unit_test(test_lower_epoch_ignored),
        cmocka_unit_test(test_non_member_told_to_remove_after_grace),
        cmocka_unit_test(test_operator_target_not_removed),
        cmocka_unit_test(test_bad_reports_refused),
        cmocka_unit_test(test_liveness_from_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
