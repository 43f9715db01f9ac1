/*
 * apply.c - committed entries to the FSM: parallel by key, ordered per key, with an
 * applied index that moves only over completed prefixes; and the tables of requests
 * waiting for an entry (proposals) or an applied index (reads).
 *
 * The worker queues each committed entry as a task (spl__rn_apply_enqueue) and
 * dispatches tasks in log order (spl__rn_apply_dispatch): a normal entry goes to apply
 * thread hash(group, key) mod A; a configuration entry is a barrier the worker applies
 * itself once every earlier entry completed. At most SPL_RAFTNODE_APPLY_WINDOW entries of
 * a group are in flight. Apply threads call the FSM with runs of tasks of one group and
 * mark each entry done (mark_done): a ring of flags over (applied, applied + window]
 * moves `applied` over completed prefixes, completes the entry's proposal and the reads
 * now satisfied, and wakes the worker when it waits for `applied` (barrier, window,
 * install, teardown).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/internal.h"

#define W SPL_RAFTNODE_APPLY_WINDOW

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- request tables (g->mu held) ---- */

void spl__rn_deadline_add(struct spl__rn_group *g, struct spl__rn_req *req)
{
    req->t_next = NULL;
    req->t_prev = g->t_tail;
    if (g->t_tail)
        g->t_tail->t_next = req;
    else
        g->t_head = req;
    g->t_tail = req;
    g->pending++;
}

void spl__rn_deadline_remove(struct spl__rn_group *g, struct spl__rn_req *req)
{
    if (req->t_prev)
        req->t_prev->t_next = req->t_next;
    else
        g->t_head = req->t_next;
    if (req->t_next)
        req->t_next->t_prev = req->t_prev;
    else
        g->t_tail = req->t_prev;
    req->t_prev = req->t_next = NULL;
    ASSERT(g->pending > 0);
    g->pending--;
}

void spl__rn_prop_register(struct spl__rn_group *g, struct spl__rn_req *req)
{
    struct spl__rn_req **slot = &g->prop_slots[req->index % SPL__RN_PROP_SLOTS];
    req->state = SPL__RN_REQ_PROPOSED;
    req->slot_next = *slot;
    *slot = req;
    spl__rn_deadline_add(g, req);
}

/* Unlink req from its proposal slot or the read list. */
static void req_unlink(struct spl__rn_group *g, struct spl__rn_req *req)
{
    struct spl__rn_req **pp = req->state == SPL__RN_REQ_PROPOSED
                                  ? &g->prop_slots[req->index % SPL__RN_PROP_SLOTS]
                                  : &g->reads;
    while (*pp && *pp != req)
        pp = &(*pp)->slot_next;
    ASSERT(*pp == req);
    *pp = req->slot_next;
    req->slot_next = NULL;
    spl__rn_deadline_remove(g, req);
}

void spl__rn_read_register(struct spl__rn_group *g, struct spl__rn_req *req)
{
    req->slot_next = g->reads;
    g->reads = req;
    spl__rn_deadline_add(g, req);
}

/* Move the reads satisfied by applied to *done (g->mu held). */
static void reads_ready(struct spl__rn_group *g, struct spl__rn_req **done)
{
    struct spl__rn_req **pp = &g->reads;
    while (*pp) {
        struct spl__rn_req *r = *pp;
        if (r->state == SPL__RN_REQ_READ_WAIT_APPLY && r->index <= g->applied) {
            *pp = r->slot_next;
            spl__rn_deadline_remove(g, r);
            r->slot_next = *done;
            *done = r;
        } else {
            pp = &r->slot_next;
        }
    }
}

static void complete_list(struct spl__rn_group *g, struct spl__rn_req *list, int status)
{
    while (list) {
        struct spl__rn_req *next = list->slot_next;
        spl__rn_req_complete(g, list, status);
        list = next;
    }
}

void spl__rn_read_states(struct spl__rn_group *g, const struct spl_raft_read_state *rs,
                         uint32_t count)
{
    struct spl__rn_req *done = NULL;
    pthread_mutex_lock(&g->mu);
    for (struct spl__rn_req *r = g->reads; r; r = r->slot_next)
        for (uint32_t i = 0; i < count; i++)
            if (r->state == SPL__RN_REQ_READ_WAIT_INDEX && r->read_ctx == rs[i].context) {
                r->state = SPL__RN_REQ_READ_WAIT_APPLY;
                r->index = rs[i].index;
            }
    reads_ready(g, &done);
    pthread_mutex_unlock(&g->mu);
    complete_list(g, done, 0);
}

void spl__rn_fail_pending(struct spl__rn_group *g, bool reads, bool props_above_commit,
                          uint64_t commit, int status)
{
    struct spl__rn_req *done = NULL;
    pthread_mutex_lock(&g->mu);
    if (reads) {
        while (g->reads) {
            struct spl__rn_req *r = g->reads;
            req_unlink(g, r);
            r->slot_next = done;
            done = r;
        }
    }
    if (props_above_commit) {
        for (size_t s = 0; s < SPL__RN_PROP_SLOTS; s++) {
            struct spl__rn_req **pp = &g->prop_slots[s];
            while (*pp) {
                struct spl__rn_req *r = *pp;
                if (r->index > commit) {
                    *pp = r->slot_next;
                    spl__rn_deadline_remove(g, r);
                    r->slot_next = done;
                    done = r;
                } else {
                    pp = &r->slot_next;
                }
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    complete_list(g, done, status);
}

void spl__rn_expire(struct spl__rn_group *g, uint64_t now_ns)
{
    struct spl__rn_req *done = NULL;
    pthread_mutex_lock(&g->mu);
    while (g->t_head && g->t_head->deadline_ns <= now_ns) {
        struct spl__rn_req *r = g->t_head;
        req_unlink(g, r);
        r->slot_next = done;
        done = r;
    }
    pthread_mutex_unlock(&g->mu);
    complete_list(g, done, SPL_ERAFTNODE_TIMEDOUT);
}

/* ---- completion of entries ---- */

/* Entry `index` (term `term`) completed with the FSM's result; any thread. Takes the
 * reply's contents. */
static void mark_done(struct spl__rn_group *g, uint64_t index, uint64_t term, bool counted,
                      int result, struct spl_iobuf *reply, uint64_t commit_ns)
{
    struct spl__rn_req *prop = NULL, *reads = NULL;
    bool wake = false;
    pthread_mutex_lock(&g->mu);
    ASSERT(index > g->applied && index <= g->dispatched);
    g->done[index % W] = 1;
    uint64_t old = g->applied;
    while (g->applied < g->dispatched && g->done[(g->applied + 1) % W]) {
        g->done[(g->applied + 1) % W] = 0;
        g->applied++;
    }
    if (counted) {
        ASSERT(g->inflight > 0);
        g->inflight--;
    }
    struct spl__rn_req **pp = &g->prop_slots[index % SPL__RN_PROP_SLOTS];
    while (*pp) {
        struct spl__rn_req *r = *pp;
        if (r->index == index) {
            *pp = r->slot_next;
            spl__rn_deadline_remove(g, r);
            r->slot_next = prop;
            prop = r;
        } else {
            pp = &r->slot_next;
        }
    }
    if (g->applied != old) {
        g->pub.applied = g->applied;
        g->pub.caught_up = g->applied >= g->catchup_index;
        reads_ready(g, &reads);
    }
    if (g->wake_applied && g->applied >= g->wake_applied) {
        g->wake_applied = 0;
        wake = true;
    }
    pthread_mutex_unlock(&g->mu);
    if (wake)
        spl__rn_post_embedded(g->w, &g->ev_applied);
    while (prop) {
        struct spl__rn_req *next = prop->slot_next;
        bool same = prop->term == term;
        struct spl_raftnode_result res = {0};
        res.status = same ? 0 : SPL_ERAFT_DROPPED;
        res.index = index;
        res.term = term;
        res.fsm_result = same ? result : 0;
        res.reply = same ? reply : NULL;
        pthread_mutex_lock(&g->mu);
        res.epoch = g->pub.epoch;
        pthread_mutex_unlock(&g->mu);
        if (same) {
            spl_histogram_record_since(g->h->m.commit_latency, prop->start_ns);
            if (commit_ns > prop->start_ns)
                spl_histogram_record(g->h->m.quorum_latency, commit_ns - prop->start_ns);
        }
        else
            spl_counter_inc(g->h->m.proposals_failed);
        prop->done_cb(&res, prop->ctx);
        spl_iobuf_reset(&prop->data);
        free(prop);
        prop = next;
    }
    complete_list(g, reads, 0);
}

/* ---- worker side ---- */

void spl__rn_apply_enqueue(struct spl__rn_group *g, const struct spl_raft_entry *e)
{
    struct spl__rn_task *t = calloc(1, sizeof(*t));
    ASSERT(t != NULL);
    t->g = g;
    t->index = e->index;
    t->term = e->term;
    t->type = e->type;
    t->commit_ns = spl_mono_ns();
    spl_iobuf_init(&t->data);
    int rc = spl_iobuf_append_ref(&t->data, &e->data, 0, spl_iobuf_len(&e->data));
    ASSERT(rc == 0);
    if (g->aq_tail)
        g->aq_tail->next = t;
    else
        g->aq_head = t;
    g->aq_tail = t;
}

static void task_free(struct spl__rn_task *t)
{
    spl_iobuf_reset(&t->data);
    free(t);
}

/* A configuration entry, applied by the worker once everything before it completed. */
static void apply_conf(struct spl__rn_group *g, struct spl__rn_task *t)
{
    struct spl_raft_conf_change cc;
    int rc = spl_raft_conf_change_decode(&t->data, &cc);
    ASSERTF(rc == 0, "group %llu: committed conf entry %llu does not decode: %d",
            (unsigned long long)g->id, (unsigned long long)t->index, rc);
    g->conf = cc.conf;
    g->conf_epoch++;
    pthread_mutex_lock(&g->mu);
    g->pub.epoch = g->conf_epoch;
    g->pub.conf = g->conf;
    pthread_mutex_unlock(&g->mu);
    LOG_INFO(SPL__RN_TAG, "group %llu: %s %llu at %llu: epoch %llu, %u voters, %u learners",
             (unsigned long long)g->id, spl_raft_conf_op_name(cc.op),
             (unsigned long long)cc.node_id, (unsigned long long)t->index,
             (unsigned long long)g->conf_epoch, cc.conf.voter_count, cc.conf.learner_count);
    if (g->fsm.ops->on_configuration_committed)
        g->fsm.ops->on_configuration_committed(g->fsm.ctx, &g->conf, g->conf_epoch, t->index);
}

static void lane_push(struct spl_raftnode_host *h, struct spl__rn_task *t)
{
    struct spl__rn_lane *l = &h->lanes[mix64(t->g->id * 0x9e3779b97f4a7c15ull ^ t->key) %
                                       h->lane_count];
    t->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    if (l->sleeping)
        pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

void spl__rn_apply_dispatch(struct spl__rn_group *g)
{
    struct spl__rn_task *t;
    while ((t = g->aq_head) != NULL) {
        bool barrier = t->type == SPL_RAFT_ENTRY_CONF;
        bool empty = !barrier && spl_iobuf_len(&t->data) == 0;
        pthread_mutex_lock(&g->mu);
        if (t->index <= g->applied) { /* covered by an installed snapshot */
            pthread_mutex_unlock(&g->mu);
            g->aq_head = t->next;
            if (!g->aq_head)
                g->aq_tail = NULL;
            task_free(t);
            continue;
        }
        ASSERT_CMP(t->index, ==, g->dispatched + 1);
        uint64_t need = barrier ? t->index - 1 : (t->index > W ? t->index - W : 0);
        if (g->applied < need) {
            g->wake_applied = need;
            pthread_mutex_unlock(&g->mu);
            return;
        }
        /* a lone entry with nothing of its group in flight is applied right here: no
         * thread hop at low load; anything more goes to the apply threads */
        bool lone = !barrier && !empty && !g->h->opts.no_inline_apply && g->inflight == 0 &&
                    t->next == NULL;
        g->dispatched = t->index;
        if (!barrier && !empty && !lone)
            g->inflight++;
        pthread_mutex_unlock(&g->mu);
        g->aq_head = t->next;
        if (!g->aq_head)
            g->aq_tail = NULL;
        if (barrier || empty) {
            if (barrier)
                apply_conf(g, t);
            mark_done(g, t->index, t->term, false, 0, NULL, t->commit_ns);
            task_free(t);
        } else if (lone) {
            struct spl_fsm_entry e = {.index = t->index, .term = t->term, .data = &t->data};
            e.key = g->fsm.ops->apply_key(g->fsm.ctx, &t->data);
            spl_iobuf_init(&e.reply);
            g->fsm.ops->apply(g->fsm.ctx, &e, 1);
            mark_done(g, e.index, e.term, false, e.result, &e.reply, t->commit_ns);
            spl_iobuf_reset(&e.reply);
            task_free(t);
        } else {
            t->key = g->fsm.ops->apply_key(g->fsm.ctx, &t->data);
            lane_push(g->h, t);
        }
    }
}

bool spl__rn_apply_idle(struct spl__rn_group *g)
{
    pthread_mutex_lock(&g->mu);
    bool idle = g->inflight == 0 && g->aq_head == NULL;
    if (!idle && g->inflight > 0)
        g->wake_applied = g->dispatched;
    pthread_mutex_unlock(&g->mu);
    return idle;
}

void spl__rn_apply_reset(struct spl__rn_group *g, uint64_t index)
{
    while (g->aq_head) {
        struct spl__rn_task *t = g->aq_head;
        g->aq_head = t->next;
        task_free(t);
    }
    g->aq_tail = NULL;
    pthread_mutex_lock(&g->mu);
    ASSERT(g->inflight == 0);
    memset(g->done, 0, W);
    if (index > g->applied) {
        g->applied = index;
        g->dispatched = index;
    }
    g->pub.applied = g->applied;
    g->pub.caught_up = g->applied >= g->catchup_index;
    pthread_mutex_unlock(&g->mu);
}

/* ---- apply threads ---- */

static void lane_run(struct spl__rn_task *list)
{
    struct spl_fsm_entry ents[SPL__RN_APPLY_BATCH];
    struct spl__rn_task *run[SPL__RN_APPLY_BATCH];
    while (list) {
        struct spl__rn_group *g = list->g;
        uint32_t n = 0;
        while (list && list->g == g && n < SPL__RN_APPLY_BATCH) {
            struct spl__rn_task *t = list;
            list = t->next;
            run[n] = t;
            memset(&ents[n], 0, sizeof(ents[n]));
            ents[n].index = t->index;
            ents[n].term = t->term;
            ents[n].key = t->key;
            ents[n].data = &t->data;
            spl_iobuf_init(&ents[n].reply);
            n++;
        }
        g->fsm.ops->apply(g->fsm.ctx, ents, n);
        for (uint32_t i = 0; i < n; i++) {
            mark_done(g, ents[i].index, ents[i].term, true, ents[i].result, &ents[i].reply,
                      run[i]->commit_ns);
            spl_iobuf_reset(&ents[i].reply);
            task_free(run[i]);
        }
    }
}

void *spl__rn_lane_main(void *arg)
{
    struct spl__rn_lane *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->head && !l->stop) {
            l->sleeping = true;
            pthread_cond_wait(&l->cond, &l->mu);
            l->sleeping = false;
        }
        if (!l->head && l->stop)
            break;
        struct spl__rn_task *list = l->head;
        l->head = l->tail = NULL;
        pthread_mutex_unlock(&l->mu);
        lane_run(list);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}
