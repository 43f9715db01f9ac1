/*
 * worker.c - a Raft worker thread: drives the groups it owns through tick / step /
 * propose / ready / advance (raft.h's contract), with raftlog's asynchronous, group-
 * committed appends in the middle of each ready.
 *
 * One pass: take the inbox; handle every event (messages are stepped, calls become
 * proposals, reads and admin actions, completions resume readies); at a tick, tick every
 * group and expire what timed out; then run the ready of every group marked dirty; then
 * flush the outgoing message queues (one RPC per peer). A ready whose entries or hard
 * state must be synced is handed to spl_raftlog_append and parked: the group gets no new
 * ready until the append's callback posts SPL__RN_EV_PERSISTED; only then are rd.msgs
 * sent, committed entries queued for apply, and the ready advanced. A ready with a
 * snapshot parks until the snapshot's files are installed (install.c).
 * Groups being destroyed (or all groups at host shutdown) are "dying": they get no more
 * readies, their pending calls fail, and they are closed and freed once nothing is in
 * flight for them (append, apply, install, save_snapshot).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raft.pb-c.h"
#include "raftnode/internal.h"

/* ---- completing calls ---- */

void spl__rn_req_complete(struct spl__rn_group *g, struct spl__rn_req *req, int status)
{
    struct spl_raftnode_result res = {0};
    char addr[SPL_RAFTNODE_ADDR_MAX] = "";
    res.status = status;
    res.index = req->index;
    res.term = req->term;
    pthread_mutex_lock(&g->mu);
    res.epoch = g->pub.epoch;
    res.leader = g->pub.leader;
    pthread_mutex_unlock(&g->mu);
    if (status == SPL_ENOTLEADER && res.leader && res.leader != g->h->opts.node_id)
        spl__rn_leader_address(g->h, res.leader, addr, sizeof(addr));
    else if (status == SPL_ENOTLEADER)
        res.leader = 0;
    res.leader_address = addr;
    if (status != 0 && req->call == SPL__RN_CALL_PROPOSE)
        spl_counter_inc(g->h->m.proposals_failed);
    req->done_cb(&res, req->ctx);
    spl_iobuf_reset(&req->data);
    free(req);
}

void spl__rn_group_mark_dirty(struct spl__rn_group *g)
{
    if (g->dirty)
        return;
    g->dirty = true;
    g->dirty_next = g->w->dirty;
    g->w->dirty = g;
}

/* ---- status ---- */

static void publish(struct spl__rn_group *g)
{
    struct spl_raft_status st;
    spl_raft_get_status(g->raft, &st);
    pthread_mutex_lock(&g->mu);
    struct spl_raftnode_group_status *p = &g->pub;
    p->group = g->id;
    p->term = st.term;
    p->leader = st.leader;
    p->role = st.role;
    p->epoch = g->conf_epoch;
    p->commit = st.commit;
    p->first_index = st.first_index;
    p->last_index = st.last_index;
    p->snapshot_index = g->snap_index;
    p->conf = g->conf;
    p->catchup_index = g->catchup_index;
    p->caught_up = g->applied >= g->catchup_index;
    p->installing = g->install != NULL;
    pthread_mutex_unlock(&g->mu);
}

/* ---- leadership changes ---- */

static void soft_state(struct spl__rn_group *g, const struct spl_raft_ready *rd)
{
    if (!rd->has_soft_state)
        return;
    uint8_t old_role = g->role;
    uint64_t old_term = g->term;
    struct spl_raft_status st;
    spl_raft_get_status(g->raft, &st);
    g->role = rd->soft_state.role;
    g->leader = rd->soft_state.leader;
    g->term = st.term;
    if (old_role == SPL_RAFT_LEADER && g->role != SPL_RAFT_LEADER) {
        spl_gauge_dec(g->h->m.leaders);
        pthread_mutex_lock(&g->mu);
        g->pub.role = g->role;
        g->pub.leader = g->leader;
        pthread_mutex_unlock(&g->mu);
        spl__rn_fail_pending(g, true, true, st.commit, SPL_ERAFT_DROPPED);
        if (g->fsm.ops->on_leader_stop)
            g->fsm.ops->on_leader_stop(g->fsm.ctx, old_term);
    }
    if (g->role == SPL_RAFT_LEADER && old_role != SPL_RAFT_LEADER) {
        spl_gauge_inc(g->h->m.leaders);
        LOG_INFO(SPL__RN_TAG, "group %llu: node %llu leads term %llu", (unsigned long long)g->id,
                 (unsigned long long)g->h->opts.node_id, (unsigned long long)g->term);
        if (g->fsm.ops->on_leader_start)
            g->fsm.ops->on_leader_start(g->fsm.ctx, g->term);
    }
    if (g->transfer && g->leader == g->transfer->node) {
        struct spl__rn_req *t = g->transfer;
        g->transfer = NULL;
        publish(g);
        spl__rn_req_complete(g, t, 0);
    }
}

/* ---- readies ---- */

/* On a raftlog sync thread, once the ready's entries and term/vote are durable: when the
 * worker is idle, send rd.msgs right here (they depend on nothing else, and the worker
 * does not touch the ready until it sees PERSISTED), saving a thread hop on a follower's
 * answer at low load; a busy worker sends them itself, batched with its other groups'.
 * Then hand the rest of the ready back to the worker. */
static void persist_cb(struct spl_raftlog_req *req, int status)
{
    struct spl__rn_group *g = req->data;
    g->persist_status = status;
    g->rd_msgs_sent = false;
    if (status == 0 && g->rd.msg_count > 0 && !atomic_load(&g->dying) &&
        atomic_load_explicit(&g->w->idle, memory_order_relaxed)) {
        for (uint32_t i = 0; i < g->rd.msg_count; i++)
            if (g->rd.msgs[i].type == SPL_RAFT_MSG_SNAPSHOT)
                spl__rn_hold_add(g, g->rd.msgs[i].to, g->rd.msgs[i].snapshot.index);
        spl__rn_send_now(g->h, g->rd.msgs, g->rd.msg_count);
        g->rd_msgs_sent = true;
    }
    spl__rn_post_embedded(g->w, &g->ev_persisted);
}

/* Step 1 of the ready. Returns true when it is done (nothing to sync), false when an
 * append is in flight (the group resumes on SPL__RN_EV_PERSISTED). Term and vote go with
 * the append (durable before any message that depends on them); the commit index is a
 * hint (raft.h) noted lazily, once per slow tick (note_commit), so that a sync of entries
 * does not also sync the hard state file each time. */
static bool ready_persist(struct spl__rn_worker *w, struct spl__rn_group *g)
{
    const struct spl_raft_ready *rd = &g->rd;
    const struct spl_raft_hard_state *hs = rd->has_hard_state ? &rd->hard_state : NULL;
    bool vote = hs && (hs->term != g->hs_term || hs->vote != g->hs_vote);
    if (hs && hs->commit > g->commit_seen)
        g->commit_seen = hs->commit;
    if (rd->entry_count == 0 && !vote)
        return true;
    ASSERT(rd->entry_count <= SPL_RAFTLOG_APPEND_ENTRIES_MAX);
    for (uint32_t i = 0; i < rd->entry_count; i++) {
        w->log_entries[i].term = rd->entries[i].term;
        w->log_entries[i].index = rd->entries[i].index;
        w->log_entries[i].type = rd->entries[i].type;
        w->log_entries[i].data = rd->entries[i].data; /* shallow: append copies the bytes */
    }
    struct spl_raftlog_hardstate lhs = {0};
    if (vote) {
        spl_raftlog_hardstate(g->log, &lhs); /* its commit never goes back (installs raise it) */
        lhs.term = hs->term;
        lhs.vote = hs->vote;
        if (lhs.commit < g->commit_noted)
            lhs.commit = g->commit_noted;
        g->commit_noted = lhs.commit;
        g->hs_term = hs->term;
        g->hs_vote = hs->vote;
    }
    g->log_req.data = g;
    g->persist_start_ns = spl_mono_ns();
    int rc = spl_raftlog_append(g->log, w->log_entries, rd->entry_count, vote ? &lhs : NULL,
                                &g->log_req, persist_cb);
    /* A log that cannot persist must not ack anything (RAFT-INVARIANTS 24): stop here;
     * a restart recovers what was durable. */
    ASSERTF(rc == 0, "group %llu: raft log append failed: %s", (unsigned long long)g->id,
            spl_strerror(rc));
    g->rd_persisting = true;
    return false;
}

/* Hand the latest commit index to the log, to be written with its next sync. Never above
 * the last entry the log holds (a durable commit must not point past the durable log). */
static void note_commit(struct spl__rn_group *g)
{
    uint64_t c = g->commit_seen, last = spl_raftlog_last_index(g->log);
    struct spl_raftlog_hardstate cur;
    spl_raftlog_hardstate(g->log, &cur);
    if (cur.commit > g->commit_noted)
        g->commit_noted = cur.commit; /* an install raised it */
    if (c > last)
        c = last;
    if (c > g->commit_noted && !g->rd_persisting) {
        spl_raftlog_set_commit(g->log, c);
        g->commit_noted = c;
    }
}

static void send_msgs(struct spl__rn_worker *w, struct spl__rn_group *g,
                      const struct spl_raft_msg *msgs, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        if (msgs[i].type == SPL_RAFT_MSG_SNAPSHOT)
            spl__rn_hold_add(g, msgs[i].to, msgs[i].snapshot.index);
        spl__rn_send(w, &msgs[i]);
    }
}

static void snapdone_cb(struct spl_rpc_result *res, void *ctx)
{
    (void)res;
    (void)ctx;
}

/* Tell the replica we installed a snapshot from that we are done (it reports the
 * snapshot to its core and keeps our log hold until we caught up). */
static void send_snapshot_done(struct spl__rn_group *g)
{
    spl_rpc_channel *ch = spl__rn_peer_channel(g->h, g->install_source);
    if (!ch)
        return;
    Spline__RaftSnapshotDoneRequest req = SPLINE__RAFT_SNAPSHOT_DONE_REQUEST__INIT;
    req.group = g->id;
    req.installer = g->h->opts.node_id;
    req.snapshot_index = g->install_done_index;
    req.caught_up_index = g->catchup_index;
    req.ok = true;
    spl_rpc_call_async(ch, &spl__rn_raft_service, 2, &req.base, NULL, NULL, NULL, snapdone_cb,
                       NULL);
}

/* Steps 2 and 3 of the ready, then advance. */
static void ready_finish(struct spl__rn_worker *w, struct spl__rn_group *g)
{
    struct spl_raft_ready *rd = &g->rd;
    if (!g->rd_msgs_sent)
        send_msgs(w, g, rd->msgs, rd->msg_count);
    g->rd_msgs_sent = false;
    for (uint32_t i = 0; i < rd->committed_count; i++)
        spl__rn_apply_enqueue(g, &rd->committed[i]);
    if (rd->read_state_count)
        spl__rn_read_states(g, rd->read_states, rd->read_state_count);
    spl_raft_advance(g->raft, rd);
    g->rd_pending = false;
    spl__rn_apply_dispatch(g);
    publish(g);
    if (g->install_done_index) {
        send_snapshot_done(g);
        g->install_done_index = 0;
    }
}

void spl__rn_ready_resume(struct spl__rn_group *g)
{
    if (ready_persist(g->w, g))
        ready_finish(g->w, g);
    spl__rn_group_mark_dirty(g);
}

static void group_run(struct spl__rn_worker *w, struct spl__rn_group *g)
{
    g->read_batch_ctx = 0;
    while (!atomic_load(&g->dying) && !g->rd_pending && spl_raft_has_ready(g->raft)) {
        spl_raft_ready(g->raft, &g->rd);
        g->rd_pending = true;
        soft_state(g, &g->rd);
        send_msgs(w, g, g->rd.msgs_early, g->rd.msg_early_count);
        if (g->rd.snapshot) {
            spl__rn_install_start(g, g->rd.snapshot);
            return;
        }
        if (!ready_persist(w, g))
            return;
        ready_finish(w, g);
    }
}

/* ---- calls ---- */

static bool epoch_ok(struct spl__rn_group *g, struct spl__rn_req *req)
{
    if (req->expected_epoch == SPL_RAFTNODE_ANY_EPOCH)
        return true;
    return req->expected_epoch == g->conf_epoch;
}

static void call_propose(struct spl__rn_group *g, struct spl__rn_req *req)
{
    uint64_t index, term;
    if (g->role != SPL_RAFT_LEADER) {
        spl__rn_req_complete(g, req, SPL_ENOTLEADER);
        return;
    }
    pthread_mutex_lock(&g->mu);
    bool full = g->pending >= SPL_RAFTNODE_PENDING_MAX;
    pthread_mutex_unlock(&g->mu);
    int rc = full ? SPL_ERAFT_OVERLOAD : spl_raft_propose(g->raft, &req->data, &index, &term);
    if (rc != 0) {
        spl__rn_req_complete(g, req, rc);
        return;
    }
    req->index = index;
    req->term = term;
    pthread_mutex_lock(&g->mu);
    spl__rn_prop_register(g, req);
    pthread_mutex_unlock(&g->mu);
    spl__rn_group_mark_dirty(g);
}

static void call_read(struct spl__rn_group *g, struct spl__rn_req *req)
{
    struct spl_raft_status st;
    pthread_mutex_lock(&g->mu);
    bool caught_up = g->applied >= g->catchup_index;
    bool full = g->pending >= SPL_RAFTNODE_PENDING_MAX;
    pthread_mutex_unlock(&g->mu);
    int rc = g->role != SPL_RAFT_LEADER ? SPL_ENOTLEADER
             : !caught_up              ? SPL_ERAFTNODE_NOTCAUGHTUP
             : full                    ? SPL_ERAFT_OVERLOAD
                                       : 0;
    if (rc == 0 && spl_raft_lease_valid(g->raft)) {
        spl_raft_get_status(g->raft, &st);
        req->index = st.commit;
        req->state = SPL__RN_REQ_READ_WAIT_APPLY;
    } else if (rc == 0) {
        if (!g->read_batch_ctx) {
            uint64_t ctx = ++g->read_seq;
            rc = spl_raft_read_index(g->raft, ctx);
            if (rc == 0)
                g->read_batch_ctx = ctx;
        }
        req->read_ctx = g->read_batch_ctx;
        req->state = SPL__RN_REQ_READ_WAIT_INDEX;
    }
    if (rc != 0) {
        spl__rn_req_complete(g, req, rc);
        return;
    }
    pthread_mutex_lock(&g->mu);
    bool now = req->state == SPL__RN_REQ_READ_WAIT_APPLY && g->applied >= req->index;
    if (!now)
        spl__rn_read_register(g, req);
    pthread_mutex_unlock(&g->mu);
    if (now)
        spl__rn_req_complete(g, req, 0);
    spl__rn_group_mark_dirty(g);
}

static void call_conf(struct spl__rn_group *g, struct spl__rn_req *req)
{
    uint64_t index, term;
    int rc = g->role != SPL_RAFT_LEADER ? SPL_ENOTLEADER
             : !epoch_ok(g, req)        ? SPL_ECOPYSET_EPOCH
                                        : 0;
    if (rc == 0)
        rc = spl_raft_propose_conf_change(g->raft, req->conf_op, req->node, &index, &term);
    if (rc != 0) {
        spl__rn_req_complete(g, req, rc);
        return;
    }
    req->index = index;
    req->term = term;
    pthread_mutex_lock(&g->mu);
    spl__rn_prop_register(g, req);
    pthread_mutex_unlock(&g->mu);
    spl__rn_group_mark_dirty(g);
}

static void call_transfer(struct spl__rn_group *g, struct spl__rn_req *req)
{
    int rc = g->role != SPL_RAFT_LEADER ? SPL_ENOTLEADER
             : !epoch_ok(g, req)        ? SPL_ECOPYSET_EPOCH
                                        : 0;
    if (rc == 0)
        rc = spl_raft_transfer_leader(g->raft, req->node);
    if (rc != 0 || req->node == g->h->opts.node_id) {
        spl__rn_req_complete(g, req, rc);
        return;
    }
    if (g->transfer)
        spl__rn_req_complete(g, g->transfer, SPL_ERAFT_DROPPED);
    uint64_t limit = 2ull * g->h->opts.election_ticks * g->h->opts.tick_ms * SPL_NS_PER_MS;
    if (req->deadline_ns > spl_mono_ns() + limit)
        req->deadline_ns = spl_mono_ns() + limit;
    req->state = SPL__RN_REQ_WAIT_OTHER;
    g->transfer = req;
    spl__rn_group_mark_dirty(g);
}

static void call_snapshot(struct spl__rn_group *g, struct spl__rn_req *req)
{
    pthread_mutex_lock(&g->mu);
    bool caught_up = g->applied >= g->catchup_index;
    pthread_mutex_unlock(&g->mu);
    if (!caught_up || g->install) {
        spl__rn_req_complete(g, req, caught_up ? SPL_ERAFTNODE_BUSY : SPL_ERAFTNODE_NOTCAUGHTUP);
        return;
    }
    req->state = SPL__RN_REQ_WAIT_OTHER;
    req->slot_next = g->snap_waiters;
    g->snap_waiters = req;
    if (!g->snapjob)
        spl__rn_snapshot_maybe(g, true);
    if (!g->snapjob) { /* nothing new to snapshot */
        while (g->snap_waiters) {
            struct spl__rn_req *r = g->snap_waiters;
            g->snap_waiters = r->slot_next;
            r->index = g->snap_index;
            spl__rn_req_complete(g, r, 0);
        }
    }
}

static void handle_call(struct spl__rn_group *g, struct spl__rn_req *req)
{
    if (atomic_load(&g->dying)) {
        spl__rn_req_complete(g, req, SPL_ERAFT_NOGROUP);
        return;
    }
    switch (req->call) {
    case SPL__RN_CALL_PROPOSE: call_propose(g, req); break;
    case SPL__RN_CALL_READ: call_read(g, req); break;
    case SPL__RN_CALL_CONF: call_conf(g, req); break;
    case SPL__RN_CALL_TRANSFER: call_transfer(g, req); break;
    case SPL__RN_CALL_SNAPSHOT: call_snapshot(g, req); break;
    default: ASSERTF(false, "call kind %u", req->call);
    }
}

/* ---- group life ---- */

static void group_add(struct spl__rn_worker *w, struct spl__rn_group *g)
{
    if (w->group_count == w->group_cap) {
        uint32_t cap = w->group_cap ? w->group_cap * 2 : 64;
        struct spl__rn_group **gs = realloc(w->groups, cap * sizeof(*gs));
        ASSERT(gs != NULL);
        w->groups = gs;
        w->group_cap = cap;
    }
    w->groups[w->group_count++] = g;
    publish(g);
    spl__rn_group_mark_dirty(g);
}

static void group_start_dying(struct spl__rn_group *g, int status)
{
    if (atomic_exchange(&g->dying, true))
        return;
    spl__rn_fail_pending(g, true, true, 0, status);
    if (g->transfer) {
        spl__rn_req_complete(g, g->transfer, status);
        g->transfer = NULL;
    }
    while (g->snap_waiters) {
        struct spl__rn_req *r = g->snap_waiters;
        g->snap_waiters = r->slot_next;
        spl__rn_req_complete(g, r, status);
    }
    if (g->install)
        atomic_store(&g->install_stop, true);
    if (g->role == SPL_RAFT_LEADER)
        spl_gauge_dec(g->h->m.leaders);
}

/* Everything in flight for a dying group has come back. */
static bool group_quiet(struct spl__rn_group *g)
{
    if (g->rd_persisting || g->install || g->snapjob)
        return false;
    while (g->aq_head) { /* never dispatched: drop */
        struct spl__rn_task *t = g->aq_head;
        g->aq_head = t->next;
        spl_iobuf_reset(&t->data);
        free(t);
    }
    g->aq_tail = NULL;
    return spl__rn_apply_idle(g);
}

static void group_finalize(struct spl__rn_worker *w, uint32_t pos)
{
    struct spl__rn_group *g = w->groups[pos];
    w->groups[pos] = w->groups[--w->group_count];
    if (g->pinned && g->fsm.ops->pin_files)
        g->fsm.ops->pin_files(g->fsm.ctx, false);
    spl_raft_destroy(g->raft);
    g->raft = NULL;
    spl_raftlog_close(g->log);
    g->log = NULL;
    if (g->fsm.ops->close)
        g->fsm.ops->close(g->fsm.ctx);
    spl_gauge_dec(g->h->m.groups);
    struct spl__rn_ctl_ev *ctl = g->remove_ctl;
    if (ctl && ctl->remove_data) {
        int rc = spl_raftlog_remove(g->h->env, g->log_dir);
        if (rc != 0 && rc != -ENOENT)
            LOG_WARN(SPL__RN_TAG, "group %llu: removing log: %s", (unsigned long long)g->id,
                     spl_strerror(rc));
        ctl->status = spl__rn_rmtree(g->dir);
    }
    LOG_INFO(SPL__RN_TAG, "group %llu closed", (unsigned long long)g->id);
    spl__rn_group_put(g); /* the worker's reference */
    if (ctl) {
        pthread_mutex_lock(&ctl->mu);
        ctl->done = true;
        pthread_cond_signal(&ctl->cond);
        pthread_mutex_unlock(&ctl->mu);
    }
}

static void reap(struct spl__rn_worker *w)
{
    for (uint32_t i = 0; i < w->group_count;) {
        struct spl__rn_group *g = w->groups[i];
        if (atomic_load(&g->dying) && group_quiet(g))
            group_finalize(w, i);
        else
            i++;
    }
}

/* ---- events ---- */

static void handle_msg(struct spl__rn_group *g, struct spl__rn_msg_ev *ev)
{
    if (!atomic_load(&g->dying)) {
        if (ev->msg.type == SPL_RAFT_MSG_SNAPSHOT)
            g->snap_from = ev->msg.from;
        int rc = spl_raft_step(g->raft, &ev->msg);
        if (rc != 0 && rc != SPL_ERAFT_STALE)
            LOG_DEBUG(SPL__RN_TAG, "group %llu: step %s from %llu: %s", (unsigned long long)g->id,
                      spl_raft_msg_type_name(ev->msg.type), (unsigned long long)ev->msg.from,
                      spl_strerror(rc));
        spl__rn_group_mark_dirty(g);
    }
    spl_raft_msg_release(&ev->msg);
}

static void handle_fail(struct spl__rn_group *g, struct spl__rn_fail_ev *ev)
{
    if (atomic_load(&g->dying))
        return;
    if (ev->ev.kind == SPL__RN_EV_UNREACHABLE) {
        if (ev->msg_type == SPL_RAFT_MSG_SNAPSHOT)
            spl_raft_report_snapshot(g->raft, ev->peer, false);
        else
            spl_raft_report_unreachable(g->raft, ev->peer);
    } else {
        LOG_INFO(SPL__RN_TAG, "group %llu: node %llu %s snapshot %llu (caught up at %llu)",
                 (unsigned long long)g->id, (unsigned long long)ev->peer,
                 ev->ok ? "installed" : "abandoned", (unsigned long long)ev->snap_index,
                 (unsigned long long)ev->catchup_index);
        if (!ev->ok)
            spl__rn_hold_release(g, ev->peer);
        spl_raft_report_snapshot(g->raft, ev->peer, ev->ok);
    }
    spl__rn_group_mark_dirty(g);
}

static void handle_event(struct spl__rn_worker *w, struct spl__rn_event *ev)
{
    struct spl__rn_group *g = ev->g;
    switch (ev->kind) {
    case SPL__RN_EV_MSG:
        handle_msg(g, (struct spl__rn_msg_ev *)ev);
        free(ev);
        spl__rn_group_put(g);
        return;
    case SPL__RN_EV_CALL:
        handle_call(g, (struct spl__rn_req *)ev);
        spl__rn_group_put(g);
        return;
    case SPL__RN_EV_UNREACHABLE:
    case SPL__RN_EV_SNAP_DONE:
        handle_fail(g, (struct spl__rn_fail_ev *)ev);
        free(ev);
        spl__rn_group_put(g);
        return;
    case SPL__RN_EV_PERSISTED:
        ASSERTF(g->persist_status == 0, "group %llu: raft log sync failed: %s",
                (unsigned long long)g->id, spl_strerror(g->persist_status));
        g->rd_persisting = false;
        spl_histogram_record_since(g->h->m.persist_latency, g->persist_start_ns);
        if (!atomic_load(&g->dying))
            ready_finish(w, g);
        spl__rn_group_mark_dirty(g);
        return;
    case SPL__RN_EV_APPLIED:
        if (!atomic_load(&g->dying)) {
            spl__rn_apply_dispatch(g);
            if (g->install && g->install_ready)
                spl__rn_install_finish(g);
        }
        spl__rn_group_mark_dirty(g);
        return;
    case SPL__RN_EV_INSTALLED:
        g->install_ready = true;
        spl__rn_install_finish(g);
        spl__rn_group_mark_dirty(g);
        return;
    case SPL__RN_EV_SNAP_SAVED:
        spl__rn_snapshot_saved(g);
        spl__rn_group_mark_dirty(g);
        return;
    case SPL__RN_EV_ADD:
        group_add(w, g);
        free(ev);
        return;
    case SPL__RN_EV_REMOVE: {
        struct spl__rn_ctl_ev *ctl = (struct spl__rn_ctl_ev *)ev;
        g->remove_ctl = ctl;
        group_start_dying(g, SPL_ERAFT_NOGROUP);
        spl__rn_group_put(g);
        return;
    }
    default:
        ASSERTF(false, "event kind %u", ev->kind);
    }
}

static bool is_embedded(uint8_t kind)
{
    return kind == SPL__RN_EV_PERSISTED || kind == SPL__RN_EV_APPLIED ||
           kind == SPL__RN_EV_INSTALLED || kind == SPL__RN_EV_SNAP_SAVED;
}

static void handle_events(struct spl__rn_worker *w, struct spl__rn_event *ev)
{
    while (ev) {
        struct spl__rn_event *next = ev->next;
        if (is_embedded(ev->kind)) {
            pthread_mutex_lock(&w->mu);
            ev->queued = false;
            pthread_mutex_unlock(&w->mu);
        }
        handle_event(w, ev);
        ev = next;
    }
}

/* ---- ticks ---- */

static void tick_group(struct spl__rn_group *g, uint64_t now, bool slow)
{
    spl_raft_tick(g->raft);
    spl__rn_expire(g, now);
    if (g->transfer && g->transfer->deadline_ns <= now) {
        struct spl__rn_req *t = g->transfer;
        g->transfer = NULL;
        spl__rn_req_complete(g, t, SPL_ERAFTNODE_TIMEDOUT);
    }
    if (slow) {
        note_commit(g);
        struct spl_raft_status st;
        spl_raft_get_status(g->raft, &st);
        spl__rn_holds_tick(g, &st);
        spl__rn_snapshot_maybe(g, false);
        publish(g);
    }
    if (spl_raft_has_ready(g->raft))
        spl__rn_group_mark_dirty(g);
}

static void tick_all(struct spl__rn_worker *w, uint64_t now)
{
    static _Thread_local uint64_t n;
    bool slow = (++n % 10) == 0;
    for (uint32_t i = 0; i < w->group_count; i++)
        if (!atomic_load(&w->groups[i]->dying))
            tick_group(w->groups[i], now, slow);
    atomic_fetch_add_explicit(&w->h->st_ticks, 1, memory_order_relaxed);
    spl_counter_inc(w->h->m.ticks);
}

static void run_dirty(struct spl__rn_worker *w)
{
    while (w->dirty) {
        struct spl__rn_group *g = w->dirty;
        w->dirty = g->dirty_next;
        g->dirty = false;
        group_run(w, g);
    }
}

void *spl__rn_worker_main(void *arg)
{
    struct spl__rn_worker *w = arg;
    struct spl_raftnode_host *h = w->h;
    uint64_t tick_ns = (uint64_t)h->opts.tick_ms * SPL_NS_PER_MS;
    bool stopping = false;
    w->next_tick_ns = spl_mono_ns() + tick_ns;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        uint64_t now = spl_mono_ns();
        while (!w->head && now < w->next_tick_ns && !(w->stop && !stopping)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = w->next_tick_ns - now;
            ts.tv_sec += (time_t)(wait / SPL_NS_PER_SEC);
            ts.tv_nsec += (long)(wait % SPL_NS_PER_SEC);
            if (ts.tv_nsec >= (long)SPL_NS_PER_SEC) {
                ts.tv_sec++;
                ts.tv_nsec -= (long)SPL_NS_PER_SEC;
            }
            w->sleeping = true;
            atomic_store_explicit(&w->idle, true, memory_order_relaxed);
            pthread_cond_timedwait(&w->cond, &w->mu, &ts);
            atomic_store_explicit(&w->idle, false, memory_order_relaxed);
            w->sleeping = false;
            now = spl_mono_ns();
        }
        bool stop_now = w->stop && !stopping;
        struct spl__rn_event *evs = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        if (stop_now) {
            stopping = true;
            for (uint32_t i = 0; i < w->group_count; i++)
                group_start_dying(w->groups[i], SPL_ESHUTDOWN);
        }
        handle_events(w, evs);
        if (now >= w->next_tick_ns) {
            tick_all(w, now);
            w->next_tick_ns += tick_ns;
            if (w->next_tick_ns <= now)
                w->next_tick_ns = now + tick_ns;
        }
        run_dirty(w);
        spl__rn_transport_flush(w);
        reap(w);
        pthread_mutex_lock(&w->mu);
        if (stopping && w->group_count == 0 && !w->head)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}
