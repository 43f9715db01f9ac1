/* faults.c - the seeded fault schedule (RAFT-INVARIANTS §5) and the liveness window (15). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "sim.h"

#define SIM_FAULTS(XX)                                                                   \
    XX(PARTITION, 6)                                                                     \
    XX(ISOLATE_LEADER, 4)                                                                \
    XX(ONE_WAY, 4)                                                                       \
    XX(CUT_PAIR, 3)                                                                      \
    XX(CUT_AND_BOUNCE, 3)                                                                \
    XX(BRIDGE, 2)                                                                        \
    XX(FLAP, 2)                                                                          \
    XX(CLOG, 2)                                                                          \
    XX(HEAL, 8)                                                                          \
    XX(LOSS_BURST, 2)                                                                    \
    XX(CRASH, 5)                                                                         \
    XX(CRASH_LEADER, 3)                                                                  \
    XX(CRASH_AT_POINT, 5)                                                                \
    XX(CRASH_ALL, 1)                                                                     \
    XX(PAUSE, 4)                                                                         \
    XX(CLOCK_DRIFT, 3)                                                                   \
    XX(CLOCK_STALL, 1)                                                                   \
    XX(WALL_JUMP, 1)                                                                     \
    XX(DISK_SLOW, 3)                                                                     \
    XX(MEMBERSHIP, 4)                                                                    \
    XX(TRANSFER, 4)                                                                      \
    XX(CAMPAIGN, 2)                                                                      \
    XX(QUIET, 3)                                                                         \
    XX(COMPACT, 3)

enum sim_fault {
#define XX(name, weight) SIM_F_##name,
    SIM_FAULTS(XX)
#undef XX
    SIM_F_COUNT
};

static const uint32_t fault_weight[] = {
#define XX(name, weight) weight,
    SIM_FAULTS(XX)
#undef XX
};

static const char *const fault_name[] = {
#define XX(name, weight) #name,
    SIM_FAULTS(XX)
#undef XX
};

/* Swarm testing: each seed leaves out a random subset of fault kinds, so that the
 * remaining ones combine more densely than a uniform mix would let them. */
static uint32_t swarm_weight(struct sim *s, int f)
{
    return (s->fault_mask >> f) & 1 ? fault_weight[f] : 0;
}

static int pick_fault(struct sim *s)
{
    uint32_t total = 0;
    for (int i = 0; i < SIM_F_COUNT; i++)
        total += swarm_weight(s, i);
    if (total == 0)
        return SIM_F_HEAL;
    uint32_t r = (uint32_t)sim_rand_below(&s->w, total);
    for (int i = 0; i < SIM_F_COUNT; i++) {
        if (r < swarm_weight(s, i))
            return i;
        r -= swarm_weight(s, i);
    }
    return SIM_F_HEAL;
}

/* A crashed process comes back after a restart delay: often at once (a supervisor),
 * otherwise after up to 2 s. */
uint64_t sim_restart_delay(struct sim *s)
{
    if (sim_chance(&s->w, 2, 5))
        return sim_rand_range(&s->w, 1, 60) * SPL_SIM_MS;
    return sim_rand_range(&s->w, 1, 2000) * SPL_SIM_MS;
}

/* A random node that exists (up or not when any_state), 0 if none. */
static int pick_node(struct sim *s, bool up_only)
{
    int ids[SIM_NODES_MAX], count = 0;
    for (int id = 1; id <= s->node_count; id++)
        if (s->node[id].exists && (!up_only || s->node[id].up))
            ids[count++] = id;
    return count ? ids[sim_rand_below(&s->w, (uint64_t)count)] : 0;
}

static uint32_t existing_mask(struct sim *s)
{
    uint32_t mask = 0;
    for (int id = 1; id <= s->node_count; id++)
        if (s->node[id].exists)
            mask |= 1u << id;
    return mask;
}

static void heal_later(struct sim *s, uint64_t lo_ms, uint64_t hi_ms)
{
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, lo_ms, hi_ms) * SPL_SIM_MS,
                 SIM_EV_HEAL, 0, 0, NULL);
}

static uint64_t election_ns(struct sim *s)
{
    return s->election_tick * SIM_TICK_NS;
}

static void fault_network(struct sim *s, int f)
{
    struct sim_net *net = &s->net;
    char desc[128];
    if (f == SIM_F_PARTITION) {
        uint32_t side = (uint32_t)sim_rand_below(&s->w, 1u << SIM_NODES_MAX) & existing_mask(s);
        sim_net_partition(net, side);
        heal_later(s, 50, 3000);
    } else if (f == SIM_F_ISOLATE_LEADER) {
        int l = sim_leader(s);
        if (l)
            sim_net_isolate(net, l);
        heal_later(s, 50, 3000);
    } else if (f == SIM_F_CUT_PAIR) { /* the leader and one follower lose each other */
        int a = sim_leader(s), b = pick_node(s, false);
        if (a && b && a != b) {
            sim_net_set_link(net, a, b, false);
            sim_net_set_link(net, b, a, false);
        }
        heal_later(s, 50, 2000);
    } else if (f == SIM_F_CUT_AND_BOUNCE) {
        /* The classic attack on leases. The leader loses one follower c (which, after an
         * election timeout, no longer knows a leader); later the leader is cut off right
         * after its last acknowledgement round, another follower a is killed and
         * restarted at once, and c campaigns just after. The restarted voter must not
         * help elect c while the old leader's lease still counts a's acknowledgement from
         * before the crash. */
        int l = sim_leader(s), c = pick_node(s, true), a = pick_node(s, true);
        if (sim_chance(&s->w, 1, 2)) /* an idle group: no writes meanwhile */
            s->quiet_until_ns = s->w.now_ns + 3 * SPL_SIM_SEC;
        if (l && c && a && l != c && l != a && a != c) {
            sim_net_set_link(net, l, c, false);
            sim_net_set_link(net, c, l, false);
            uint64_t later = sim_rand_range(&s->w, 2 * election_ns(s), 3 * election_ns(s));
            sim_schedule(&s->w, s->w.now_ns + later, SIM_EV_BOUNCE, a,
                         (uint64_t)c | ((uint64_t)l << 8), NULL);
        }
        heal_later(s, 500, 2000);
    } else if (f == SIM_F_ONE_WAY) {
        int a = pick_node(s, false), b = pick_node(s, false);
        if (sim_chance(&s->w, 1, 2) && sim_leader(s))
            a = sim_leader(s);
        if (a && b && a != b)
            sim_net_set_link(net, a, b, false);
    } else if (f == SIM_F_BRIDGE) {
        uint32_t side = (uint32_t)sim_rand_below(&s->w, 1u << SIM_NODES_MAX) & existing_mask(s);
        int bridge = pick_node(s, false);
        sim_net_partition(net, side);
        for (int id = 1; id <= s->node_count && bridge; id++) {
            sim_net_set_link(net, bridge, id, true);
            sim_net_set_link(net, id, bridge, true);
        }
        heal_later(s, 100, 3000);
    } else if (f == SIM_F_FLAP) {
        for (int a = 1; a <= s->node_count; a++)
            for (int b = 1; b <= s->node_count; b++)
                if (a != b)
                    sim_net_set_link(net, a, b, sim_chance(&s->w, 2, 3));
        heal_later(s, 10, 300);
    } else if (f == SIM_F_CLOG) {
        int n = pick_node(s, true);
        if (n)
            sim_net_clog(net, n, s->w.now_ns + sim_rand_range(&s->w, 10, 500) * SPL_SIM_MS);
    } else if (f == SIM_F_HEAL) {
        sim_net_heal(net);
    } else if (f == SIM_F_LOSS_BURST) {
        net->params.drop_ppm = (uint32_t)sim_rand_below(&s->w, 500000);
    }
    sim_net_describe(net, s->node_count, desc, sizeof(desc));
    SIM_TRACE(s, 0, "fault %s: links down: %s, drop %u ppm", fault_name[f], desc,
              net->params.drop_ppm);
}

static void fault_process(struct sim *s, int f)
{
    if (f == SIM_F_CRASH || f == SIM_F_CRASH_LEADER) {
        int id = f == SIM_F_CRASH_LEADER ? sim_leader(s) : pick_node(s, true);
        if (!id)
            return;
        sim_node_crash(s, &s->node[id], fault_name[f]);
        s->res->restarts++;
        sim_schedule_restart(s, &s->node[id], sim_restart_delay(s));
    } else if (f == SIM_F_CRASH_AT_POINT) {
        int id = sim_chance(&s->w, 1, 2) ? sim_leader(s) : pick_node(s, true);
        if (id) {
            s->node[id].crash_at_point = (int)sim_rand_range(&s->w, 1, 9);
            SIM_TRACE(s, id, "fault CRASH_AT_POINT: armed point %d", s->node[id].crash_at_point);
        }
    } else if (f == SIM_F_CRASH_ALL) {
        uint64_t delay = sim_rand_range(&s->w, 1, 500) * SPL_SIM_MS;
        for (int id = 1; id <= s->node_count; id++) {
            if (!s->node[id].up)
                continue;
            sim_node_crash(s, &s->node[id], "CRASH_ALL");
            s->res->restarts++;
            sim_schedule_restart(s, &s->node[id], delay);
        }
    } else if (f == SIM_F_PAUSE) {
        int id = sim_chance(&s->w, 3, 5) ? sim_leader(s) : pick_node(s, true);
        if (!id)
            return;
        uint64_t d = sim_rand_range(&s->w, election_ns(s) / 2, 5 * election_ns(s));
        s->node[id].paused_until_ns = s->w.now_ns + d;
        SIM_TRACE(s, id, "fault PAUSE for %" PRIu64 " ms", d / SPL_SIM_MS);
    }
}

static void fault_clock_disk(struct sim *s, int f)
{
    int id = pick_node(s, false);
    if (!id)
        return;
    if (f == SIM_F_CLOCK_DRIFT) {
        int64_t max = s->drift_ppm_max;
        int64_t rate = (int64_t)sim_rand_below(&s->w, (uint64_t)(2 * max + 1)) - max;
        sim_clock_set_rate(&s->w, id, rate);
        SIM_TRACE(s, id, "fault CLOCK_DRIFT: %" PRId64 " ppm", rate);
    } else if (f == SIM_F_CLOCK_STALL) {
        uint64_t d = sim_rand_range(&s->w, 100, 2000) * SPL_SIM_US;
        sim_clock_stall(&s->w, id, s->w.now_ns + d);
        SIM_TRACE(s, id, "fault CLOCK_STALL: monotonic clock stands still %" PRIu64 " us",
                  d / SPL_SIM_US);
    } else if (f == SIM_F_WALL_JUMP) {
        int64_t d = (int64_t)sim_rand_range(&s->w, 1, 7200) * (int64_t)SPL_SIM_SEC;
        sim_clock_jump_wall(&s->w, id, sim_chance(&s->w, 1, 2) ? d : -d);
        SIM_TRACE(s, id, "fault WALL_JUMP by %" PRId64 " s", d / (int64_t)SPL_SIM_SEC);
    } else if (f == SIM_F_DISK_SLOW) {
        struct sim_disk *d = &s->node[id].disk;
        d->slow_until_ns = s->w.now_ns + sim_rand_range(&s->w, 100, 3000) * SPL_SIM_MS;
        d->slow_extra_ns = sim_rand_range(&s->w, 100, 1500) * SPL_SIM_MS;
        SIM_TRACE(s, id, "fault DISK_SLOW: fsyncs up to %" PRIu64 " ms slower",
                  d->slow_extra_ns / SPL_SIM_MS);
    }
}

/* ---- membership: add a learner, promote it, maybe remove a voter (replace) ---- */

static int fresh_id(struct sim *s)
{
    for (int id = 1; id <= s->node_count; id++)
        if (!s->node[id].exists && s->node[id].incarnation == 0)
            return id;
    return 0;
}

static void conf_propose(struct sim *s, int leader, enum spl_raft_conf_op op, int id)
{
    uint64_t index = 0, term = 0;
    int rc = spl_raft_propose_conf_change(s->node[leader].raft, op, (uint64_t)id, &index,
                                          &term);
    SIM_TRACE(s, leader, "propose %s n%d: %s at %" PRIu64 "/%" PRIu64,
              spl_raft_conf_op_name(op), id, spl_errname(rc), index, term);
    if (rc == 0 && sim_chance(&s->w, 1, 4)) {
        /* A concurrent second change must be refused while the first is pending (the
         * checker's invariant 11 catches a second pending change if it is not). */
        struct spl_raft_status st;
        spl_raft_get_status(s->node[leader].raft, &st);
        uint64_t other = st.conf.voters[sim_rand_below(&s->w, st.conf.voter_count)];
        int rc2 = spl_raft_propose_conf_change(s->node[leader].raft, SPL_RAFT_CONF_REMOVE,
                                               other, NULL, NULL);
        SIM_TRACE(s, leader, "concurrent remove n%" PRIu64 ": %s", other, spl_errname(rc2));
        if (rc2 == 0 && st.conf.voter_count > 3 && s->conf_victim == 0)
            s->conf_victim = (int)other; /* accepted: follow it through */
    }
    if (rc == 0)
        sim_node_pump(s, &s->node[leader]);
}

static void fault_membership(struct sim *s)
{
    int l = sim_leader(s);
    if (!l || s->conf_target || s->conf_victim)
        return;
    struct spl_raft_status st;
    spl_raft_get_status(s->node[l].raft, &st);
    uint32_t voters = st.conf.voter_count;
    int fresh = fresh_id(s);
    int victim = (int)st.conf.voters[sim_rand_below(&s->w, voters)];
    int kind = (int)sim_rand_below(&s->w, 3); /* 0 add, 1 remove, 2 replace */
    if (kind == 1 && voters <= 3)
        kind = 2;
    if (kind != 1 && !fresh)
        kind = voters > 3 ? 1 : -1;
    if (kind < 0)
        return;
    s->conf_tries = 0;
    if (kind == 0 || kind == 2) {
        s->conf_target = fresh;
        s->conf_victim = kind == 2 || voters >= 5 ? victim : 0;
        sim_node_add(s, fresh);
        conf_propose(s, l, SPL_RAFT_CONF_ADD_LEARNER, fresh);
    } else {
        s->conf_victim = victim;
        conf_propose(s, l, SPL_RAFT_CONF_REMOVE, victim);
    }
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 20, 200) * SPL_SIM_MS,
                 SIM_EV_CONF_STEP, 0, 0, NULL);
}

/* Stops the process of a node that left the configuration and forgets its disk. */
static void retire(struct sim *s, int id)
{
    struct sim_node *n = &s->node[id];
    SIM_TRACE(s, id, "retired: removed from the configuration");
    sim_node_crash(s, n, "removed");
    sim_disk_free(&n->disk);
    n->exists = false;
}

void sim_conf_step(struct sim *s)
{
    if (!s->faults_on || (!s->conf_target && !s->conf_victim))
        return;
    if (++s->conf_tries > 60) { /* give up; whatever committed stays */
        SIM_TRACE(s, 0, "membership change abandoned (target n%d victim n%d)", s->conf_target,
                  s->conf_victim);
        s->conf_target = s->conf_victim = 0;
        return;
    }
    int l = sim_leader(s);
    if (l) {
        struct spl_raft_status st;
        spl_raft_get_status(s->node[l].raft, &st);
        int t = s->conf_target, v = s->conf_victim;
        if (t && !spl_raft_conf_is_voter(&st.conf, (uint64_t)t)) {
            conf_propose(s, l, spl_raft_conf_is_learner(&st.conf, (uint64_t)t)
                                   ? SPL_RAFT_CONF_PROMOTE : SPL_RAFT_CONF_ADD_LEARNER, t);
        } else if (t) {
            s->conf_target = 0;
        } else if (v && (spl_raft_conf_is_voter(&st.conf, (uint64_t)v) ||
                         spl_raft_conf_is_learner(&st.conf, (uint64_t)v))) {
            if (st.conf.voter_count > 3 || !spl_raft_conf_is_voter(&st.conf, (uint64_t)v))
                conf_propose(s, l, SPL_RAFT_CONF_REMOVE, v);
            else
                s->conf_victim = 0;
        } else if (v && st.commit >= st.pending_conf_index) {
            retire(s, v);
            s->conf_victim = 0;
        }
    }
    if (s->conf_target || s->conf_victim)
        sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 20, 200) * SPL_SIM_MS,
                     SIM_EV_CONF_STEP, 0, 0, NULL);
}

static void fault_raft(struct sim *s, int f)
{
    int l = sim_leader(s);
    if (!l)
        return;
    struct sim_node *n = &s->node[l];
    if (f == SIM_F_MEMBERSHIP) {
        fault_membership(s);
    } else if (f == SIM_F_TRANSFER) {
        struct spl_raft_status st;
        spl_raft_get_status(n->raft, &st);
        uint64_t to = st.conf.voters[sim_rand_below(&s->w, st.conf.voter_count)];
        int rc = spl_raft_transfer_leader(n->raft, to);
        SIM_TRACE(s, l, "fault TRANSFER to n%" PRIu64 ": %s", to, spl_errname(rc));
        s->res->transfers += rc == 0;
        sim_node_pump(s, n);
    } else if (f == SIM_F_QUIET) {
        s->quiet_until_ns = s->w.now_ns + sim_rand_range(&s->w, 300, 3000) * SPL_SIM_MS;
        SIM_TRACE(s, 0, "fault QUIET: clients only read for %" PRIu64 " ms",
                  (s->quiet_until_ns - s->w.now_ns) / SPL_SIM_MS);
    } else if (f == SIM_F_CAMPAIGN) {
        int id = pick_node(s, true);
        if (id && id != l)
            sim_fault_campaign(s, id);
    } else if (f == SIM_F_COMPACT) {
        n->snap_every = sim_rand_range(&s->w, 1, 4);
        SIM_TRACE(s, l, "fault COMPACT: snapshot every %" PRIu64 " entries", n->snap_every);
    }
}

void sim_fault_bounce(struct sim *s, int id, uint64_t arg)
{
    struct sim_node *n = &s->node[id];
    int campaigner = (int)(arg & 0xff), isolate = (int)(arg >> 8);
    if (!s->faults_on || !n->up)
        return;
    if (isolate)
        sim_net_isolate(&s->net, isolate);
    if (s->opt.rude_campaign) { /* a, which acknowledged the leader just now, campaigns */
        int rc = spl_raft_campaign(n->raft);
        SIM_TRACE(s, id, "fault rude CAMPAIGN of a follower under lease: %s", spl_errname(rc));
        sim_node_pump(s, n);
        return;
    }
    sim_node_crash(s, n, "BOUNCE");
    s->res->restarts++;
    uint64_t back = sim_rand_range(&s->w, 1, 15) * SPL_SIM_MS;
    sim_schedule_restart(s, n, back);
    /* ...and the cut-off follower campaigns just after the restart (0 = don't). */
    if (campaigner)
        sim_schedule(&s->w, s->w.now_ns + back + sim_rand_range(&s->w, 1, 10) * SPL_SIM_MS,
                     SIM_EV_CAMPAIGN, campaigner, 0, NULL);
}

/* A node calls spl_raft_campaign(). Only when it knows no leader (as a host would after
 * losing it): a campaign by a follower that acknowledged a leader within its lease
 * defeats the lease by construction (FOUND-BUGS 8); --rude-campaign does it anyway. */
void sim_fault_campaign(struct sim *s, int id)
{
    struct sim_node *n = &s->node[id];
    if (!s->faults_on || !n->up || n->paused_until_ns > s->w.now_ns)
        return;
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    int l = sim_leader(s);
    if (st.leader != SPL_RAFT_NONE && !s->opt.rude_campaign) {
        SIM_TRACE(s, id, "fault CAMPAIGN skipped: n%d knows leader n%" PRIu64, id, st.leader);
        return;
    }
    int rc = spl_raft_campaign(n->raft);
    SIM_TRACE(s, id, "fault CAMPAIGN now: %s (leader n%d lease %d)", spl_errname(rc), l,
              l ? spl_raft_lease_valid(s->node[l].raft) : 0);
    sim_node_pump(s, n);
}

void sim_faults_start(struct sim *s)
{
    s->fault_mask = 0;
    for (int f = 0; f < SIM_F_COUNT; f++)
        if (sim_chance(&s->w, 7, 10))
            s->fault_mask |= 1u << f;
    char kinds[512] = "";
    size_t used = 0;
    for (int f = 0; f < SIM_F_COUNT && used < sizeof(kinds); f++)
        if ((s->fault_mask >> f) & 1) {
            int w = snprintf(kinds + used, sizeof(kinds) - used, " %s", fault_name[f]);
            used += w > 0 ? (size_t)w : 0;
        }
    SIM_TRACE(s, 0, "faults of this seed:%s", kinds);
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 50, 300) * SPL_SIM_MS,
                 SIM_EV_FAULT, 0, 0, NULL);
}

void sim_fault_fire(struct sim *s)
{
    if (!s->faults_on)
        return;
    int f = pick_fault(s);
    SPL_STATIC_ASSERT(SIM_F_COUNT <= 32, "fault_mask has 32 bits");
    if (f <= SIM_F_LOSS_BURST)
        fault_network(s, f);
    else if (f <= SIM_F_PAUSE)
        fault_process(s, f);
    else if (f <= SIM_F_DISK_SLOW)
        fault_clock_disk(s, f);
    else
        fault_raft(s, f);
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 10, 400) * SPL_SIM_MS,
                 SIM_EV_FAULT, 0, 0, NULL);
}

void sim_faults_stop(struct sim *s)
{
    s->faults_on = false;
    sim_net_heal(&s->net);
    s->net.params.drop_ppm = s->net.params.dup_ppm = 0;
    s->net.params.late_ppm = s->net.params.flip_ppm = 0;
    s->conf_target = s->conf_victim = 0;
    s->quiet_until_ns = 0;
    for (int id = 1; id <= s->node_count; id++) {
        struct sim_node *n = &s->node[id];
        if (!n->exists)
            continue;
        n->crash_at_point = 0;
        if (n->paused_until_ns > s->w.now_ns)
            n->paused_until_ns = s->w.now_ns;
        sim_clock_set_rate(&s->w, id, 0);
        n->disk.slow_until_ns = 0;
        if (!n->up)
            sim_node_start(s, n);
    }
    SIM_TRACE(s, 0, "faults stop: healed, all nodes up; liveness window begins");
}

/* ---- liveness (15) ---- */

void sim_liveness_describe(struct sim *s, char *buf, size_t size)
{
    int l = sim_leader(s);
    size_t used = 0;
    buf[0] = 0;
    if (!l) {
        snprintf(buf, size, "no leader");
        return;
    }
    struct spl_raft_status st;
    spl_raft_get_status(s->node[l].raft, &st);
    int w = snprintf(buf, size, "leader n%d term %" PRIu64 " last %" PRIu64 " commit %" PRIu64
                     " marker %" PRIu64 ";", l, st.term, st.last_index, st.commit,
                     s->live_index);
    used = w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < st.peer_count && used < size; i++) {
        const struct spl_raft_peer_status *p = &st.peers[i];
        const struct sim_node *n = p->id < (uint64_t)SIM_NODES_MAX ? &s->node[p->id] : NULL;
        w = snprintf(buf + used, size - used, " n%" PRIu64 "%s: %s match %" PRIu64 " next %"
                     PRIu64 " inflight %u snap %" PRIu64 " active %d applied %" PRIu64 "%s;",
                     p->id, p->learner ? "(learner)" : "", spl_raft_progress_state_name(p->state),
                     p->match, p->next, p->inflight, p->pending_snapshot, p->recent_active,
                     n ? n->applied : 0, n && n->up ? "" : " DOWN");
        used += w > 0 ? (size_t)w : 0;
    }
}

static bool member_caught_up(struct sim *s, const struct spl_raft_status *st, uint64_t id)
{
    if (id >= (uint64_t)SIM_NODES_MAX || !s->node[id].up)
        return false;
    if (s->node[id].applied < s->live_index)
        return false;
    for (uint32_t i = 0; i < st->peer_count; i++) {
        const struct spl_raft_peer_status *p = &st->peers[i];
        if (p->id == id && id != st->id &&
            (p->state != SPL_RAFT_REPLICATE || p->match != st->last_index))
            return false;
    }
    return true;
}

bool sim_liveness_done(struct sim *s)
{
    int l = sim_leader(s);
    if (!l)
        return false;
    struct spl_raft_status st;
    spl_raft_get_status(s->node[l].raft, &st);
    if (s->live_node != l || s->live_term != st.term) {
        uint64_t index = 0, term = 0;
        if (sim_propose_marker(s, l, &index, &term) == 0) {
            s->live_node = l;
            s->live_index = index;
            s->live_term = term;
        }
        return false;
    }
    for (uint32_t i = 0; i < st.conf.voter_count; i++)
        if (!member_caught_up(s, &st, st.conf.voters[i]))
            return false;
    for (uint32_t i = 0; i < st.conf.learner_count; i++)
        if (!member_caught_up(s, &st, st.conf.learners[i]))
            return false;
    SIM_TRACE(s, l, "liveness: marker %" PRIu64 "/%" PRIu64 " applied by every member",
              s->live_index, s->live_term);
    return true;
}
