/*
 * transport.c - Raft messages between hosts: one RPC channel per peer process, messages
 * of every group batched into Send RPCs (raft.proto), decoded on the RPC IO thread and
 * handed to the owning worker.
 *
 * Sending (worker thread): spl__rn_send() encodes a message at the end of the worker's
 * queue for its destination (spl_raft_msg_encode shares entry payloads, nothing is
 * copied); spl__rn_transport_flush() at the end of each worker pass sends every non-empty
 * queue as ONE RPC. Because a worker ticks all its groups in one pass, the heartbeats of
 * all idle groups (and, on the other side, their responses) travel in one RPC per peer
 * per tick. A failed RPC reports the groups whose appends or snapshots it carried as
 * unreachable (spl_raft_report_unreachable / report_snapshot(false)).
 * Receiving (IO thread): the batch is cut into messages (shared blocks), each decoded and
 * checked (CRC, limits) by spl_raft_msg_decode; messages for groups this host does not
 * run are counted and dropped; the rest go to their workers, one wake-up per worker.
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

/* ---- batch queues (pure; unit-tested) ---- */

void spl__rn_outq_reset(struct spl__rn_outq *q)
{
    spl_iobuf_reset(&q->att);
    q->count = 0;
    q->track_count = 0;
}

static uint64_t msg_size_estimate(const struct spl_raft_msg *m)
{
    uint64_t n = 128 + (uint64_t)m->entry_count * 24;
    for (uint32_t i = 0; i < m->entry_count; i++)
        n += spl_iobuf_len(&m->entries[i].data);
    if (m->type == SPL_RAFT_MSG_SNAPSHOT)
        n += spl_iobuf_len(&m->snapshot.data) + 16 * SPL_RAFT_PEERS_MAX;
    return n;
}

bool spl__rn_outq_full(const struct spl__rn_outq *q, uint64_t bytes)
{
    if (q->count == 0)
        return false;
    return q->count >= SPL_RAFTNODE_BATCH_MSGS_MAX ||
           spl_iobuf_len(&q->att) + bytes > SPL_RAFTNODE_BATCH_BYTES_MAX;
}

int spl__rn_outq_add(struct spl__rn_outq *q, const struct spl_raft_msg *m)
{
    if (q->count >= SPL_RAFTNODE_BATCH_MSGS_MAX)
        return SPL_ETOOBIG;
    uint64_t before = spl_iobuf_len(&q->att);
    int rc = spl_raft_msg_encode(m, &q->att);
    if (rc != 0)
        return rc;
    uint64_t len = spl_iobuf_len(&q->att) - before;
    ASSERT(len > 0 && len <= UINT32_MAX);
    q->lens[q->count++] = (uint32_t)len;
    if (m->type == SPL_RAFT_MSG_APPEND || m->type == SPL_RAFT_MSG_SNAPSHOT) {
        q->track[q->track_count].group = m->group;
        q->track[q->track_count].type = m->type;
        q->track_count++;
    }
    return 0;
}

static _Thread_local struct spl_raft_entry spl__rn_scratch[SPL_RAFT_BATCH_ENTRIES_MAX];

int spl__rn_batch_decode(struct spl_iobuf *att, const uint32_t *lens, size_t count,
                         spl__rn_batch_msg_cb msg_cb, void *arg, uint32_t *bad_out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += lens[i];
    *bad_out = 0;
    if (total != spl_iobuf_len(att)) {
        *bad_out = (uint32_t)count;
        return SPL_ECORRUPT;
    }
    for (size_t i = 0; i < count; i++) {
        struct spl_iobuf piece;
        spl_iobuf_init(&piece);
        if (spl_iobuf_cut(att, lens[i], &piece) != 0) {
            spl_iobuf_consume(att, lens[i]);
            (*bad_out)++;
            continue;
        }
        struct spl_raft_msg m;
        int rc = spl_raft_msg_decode(&piece, &m, spl__rn_scratch, SPL_RAFT_BATCH_ENTRIES_MAX);
        spl_iobuf_reset(&piece);
        if (rc != 0) {
            (*bad_out)++;
            continue;
        }
        msg_cb(arg, &m);
    }
    return 0;
}

/* ---- sending (worker thread) ---- */

struct send_ctx {
    struct spl_raftnode_host *h;
    uint64_t peer;
    uint32_t track_count;
    struct {
        uint64_t group;
        uint8_t type;
    } track[];
};

static struct spl__rn_outq *outq_for(struct spl__rn_worker *w, uint64_t node)
{
    for (uint32_t i = 0; i < w->outq_count; i++)
        if (w->outqs[i]->node == node)
            return w->outqs[i];
    if (w->outq_count >= SPL_RAFTNODE_NODES_MAX)
        return NULL;
    struct spl__rn_outq **qs = realloc(w->outqs, (w->outq_count + 1) * sizeof(*qs));
    if (!qs)
        return NULL;
    w->outqs = qs;
    struct spl__rn_outq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    spl_iobuf_init(&q->att);
    q->node = node;
    w->outqs[w->outq_count++] = q;
    return q;
}

static void report_failed(struct spl_raftnode_host *h, uint64_t peer, uint64_t group, uint8_t type)
{
    struct spl__rn_group *g = spl__rn_group_get(h, group);
    if (!g)
        return;
    struct spl__rn_fail_ev *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        spl__rn_group_put(g);
        return;
    }
    ev->ev.kind = SPL__RN_EV_UNREACHABLE;
    ev->ev.g = g; /* the reference moves to the event */
    ev->peer = peer;
    ev->msg_type = type;
    spl__rn_post(g->w, &ev->ev);
}

static void report_all(struct send_ctx *c)
{
    /* one report per (group, type) */
    for (uint32_t i = 0; i < c->track_count; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = c->track[j].group == c->track[i].group && c->track[j].type == c->track[i].type;
        if (!seen)
            report_failed(c->h, c->peer, c->track[i].group, c->track[i].type);
    }
}

static void send_done(struct spl_rpc_result *res, void *arg)
{
    struct send_ctx *c = arg;
    if (res->status != 0) {
        spl_counter_inc(c->h->m.rpcs_failed);
        report_all(c);
    } else if (res->resp) {
        const Spline__RaftSendResponse *r = (const Spline__RaftSendResponse *)res->resp;
        if (r->rejected > 0)
            LOG_DEBUG(SPL__RN_TAG, "node %llu rejected %u messages (%zu unknown groups)",
                      (unsigned long long)c->peer, r->rejected, r->n_unknown_groups);
    }
    free(c);
}

static void flush_one(struct spl__rn_worker *w, struct spl__rn_outq *q)
{
    struct spl_raftnode_host *h = w->h;
    struct send_ctx *c = malloc(sizeof(*c) + q->track_count * sizeof(c->track[0]));
    ASSERT(c != NULL);
    c->h = h;
    c->peer = q->node;
    c->track_count = q->track_count;
    memcpy(c->track, q->track, q->track_count * sizeof(c->track[0]));

    Spline__RaftSendRequest req = SPLINE__RAFT_SEND_REQUEST__INIT;
    req.from_node = h->opts.node_id;
    req.to_node = q->node;
    req.n_msg_len = q->count;
    req.msg_len = q->lens;
    struct spl_rpc_call_opts opts = {.timeout_ms = h->opts.tick_ms * h->opts.election_ticks * 2};
    spl_rpc_channel *ch = spl__rn_peer_channel(h, q->node);
    int rc = ch ? spl_rpc_call_async(ch, &spl__rn_raft_service, 0, &req.base, &q->att, &opts,
                                     NULL, send_done, c)
                : SPL_ERAFTNODE_NOPEER;
    atomic_fetch_add_explicit(&h->st_msgs_sent, q->count, memory_order_relaxed);
    spl_counter_add(h->m.msgs_sent, q->count);
    if (rc != 0) {
        spl_counter_inc(h->m.rpcs_failed);
        report_all(c);
        free(c);
    } else {
        atomic_fetch_add_explicit(&h->st_rpcs_sent, 1, memory_order_relaxed);
        spl_counter_inc(h->m.rpcs_sent);
    }
    spl__rn_outq_reset(q);
}

void spl__rn_send(struct spl__rn_worker *w, const struct spl_raft_msg *m)
{
    struct spl_raftnode_host *h = w->h;
    struct spl__rn_outq *q = outq_for(w, m->to);
    if (!q)
        return; /* out of memory or peers: Raft retries */
    if (spl__rn_outq_full(q, msg_size_estimate(m)))
        flush_one(w, q);
    int rc = spl__rn_outq_add(q, m);
    if (rc != 0) {
        LOG_WARN(SPL__RN_TAG, "group %llu: cannot send %s to %llu: %s",
                 (unsigned long long)m->group, spl_raft_msg_type_name(m->type),
                 (unsigned long long)m->to, spl_strerror(rc));
        return;
    }
    if (m->type == SPL_RAFT_MSG_HEARTBEAT || m->type == SPL_RAFT_MSG_HEARTBEAT_RESP) {
        atomic_fetch_add_explicit(&h->st_heartbeats_sent, 1, memory_order_relaxed);
        spl_counter_inc(h->m.heartbeats_sent);
    }
}

/* One RPC per destination for msgs[0..count), from any thread (the raftlog sync thread
 * sends a ready's msgs the moment they are durable, without waking the worker first). */
void spl__rn_send_now(struct spl_raftnode_host *h, const struct spl_raft_msg *msgs, uint32_t count)
{
    bool done[count ? count : 1];
    memset(done, 0, sizeof(done));
    for (uint32_t i = 0; i < count; i++) {
        if (done[i])
            continue;
        uint64_t to = msgs[i].to;
        uint32_t n = 0, tracked = 0;
        for (uint32_t j = i; j < count; j++)
            if (msgs[j].to == to)
                n++;
        uint32_t *lens = malloc(n * sizeof(*lens));
        struct send_ctx *c = malloc(sizeof(*c) + n * sizeof(c->track[0]));
        ASSERT(lens && c);
        struct spl_iobuf att;
        spl_iobuf_init(&att);
        uint32_t k = 0;
        for (uint32_t j = i; j < count; j++) {
            if (msgs[j].to != to)
                continue;
            done[j] = true;
            uint64_t before = spl_iobuf_len(&att);
            if (spl_raft_msg_encode(&msgs[j], &att) != 0)
                continue;
            lens[k++] = (uint32_t)(spl_iobuf_len(&att) - before);
            if (msgs[j].type == SPL_RAFT_MSG_APPEND || msgs[j].type == SPL_RAFT_MSG_SNAPSHOT) {
                c->track[tracked].group = msgs[j].group;
                c->track[tracked].type = msgs[j].type;
                tracked++;
            }
            if (msgs[j].type == SPL_RAFT_MSG_HEARTBEAT ||
                msgs[j].type == SPL_RAFT_MSG_HEARTBEAT_RESP) {
                atomic_fetch_add_explicit(&h->st_heartbeats_sent, 1, memory_order_relaxed);
                spl_counter_inc(h->m.heartbeats_sent);
            }
        }
        c->h = h;
        c->peer = to;
        c->track_count = tracked;
        Spline__RaftSendRequest req = SPLINE__RAFT_SEND_REQUEST__INIT;
        req.from_node = h->opts.node_id;
        req.to_node = to;
        req.n_msg_len = k;
        req.msg_len = lens;
        struct spl_rpc_call_opts opts = {.timeout_ms =
                                             h->opts.tick_ms * h->opts.election_ticks * 2};
        spl_rpc_channel *ch = spl__rn_peer_channel(h, to);
        int rc = ch && k ? spl_rpc_call_async(ch, &spl__rn_raft_service, 0, &req.base, &att, &opts,
                                              NULL, send_done, c)
                         : SPL_ERAFTNODE_NOPEER;
        atomic_fetch_add_explicit(&h->st_msgs_sent, k, memory_order_relaxed);
        spl_counter_add(h->m.msgs_sent, k);
        if (rc != 0) {
            spl_counter_inc(h->m.rpcs_failed);
            report_all(c);
            free(c);
        } else {
            atomic_fetch_add_explicit(&h->st_rpcs_sent, 1, memory_order_relaxed);
            spl_counter_inc(h->m.rpcs_sent);
        }
        spl_iobuf_reset(&att);
        free(lens);
    }
}

void spl__rn_transport_flush(struct spl__rn_worker *w)
{
    for (uint32_t i = 0; i < w->outq_count; i++)
        if (w->outqs[i]->count > 0)
            flush_one(w, w->outqs[i]);
}

/* ---- receiving (IO thread) ---- */

struct recv_ctx {
    struct spl_raftnode_host *h;
    uint32_t accepted, rejected;
    uint64_t unknown[SPL__RN_UNKNOWN_REPORT_MAX];
    size_t unknown_count;
    struct spl__rn_event *heads[SPL_RAFTNODE_WORKERS_MAX], *tails[SPL_RAFTNODE_WORKERS_MAX];
};

static void note_unknown(struct recv_ctx *rc, uint64_t group)
{
    for (size_t i = 0; i < rc->unknown_count; i++)
        if (rc->unknown[i] == group)
            return;
    if (rc->unknown_count < SPL__RN_UNKNOWN_REPORT_MAX)
        rc->unknown[rc->unknown_count++] = group;
}

static void recv_msg(void *arg, struct spl_raft_msg *m)
{
    struct recv_ctx *rc = arg;
    struct spl__rn_group *g = m->to == rc->h->opts.node_id ? spl__rn_group_get(rc->h, m->group)
                                                           : NULL;
    if (!g) {
        rc->rejected++;
        note_unknown(rc, m->group);
        spl_raft_msg_release(m);
        return;
    }
    struct spl__rn_msg_ev *ev = malloc(sizeof(*ev) + m->entry_count * sizeof(ev->entries[0]));
    ASSERT(ev != NULL);
    memset(&ev->ev, 0, sizeof(ev->ev));
    ev->ev.kind = SPL__RN_EV_MSG;
    ev->ev.g = g;
    ev->msg = *m; /* moves the references (snapshot data, entries' data) */
    for (uint32_t i = 0; i < m->entry_count; i++)
        ev->entries[i] = m->entries[i];
    ev->msg.entries = m->entry_count ? ev->entries : NULL;
    uint32_t wi = g->w->index;
    if (rc->tails[wi])
        rc->tails[wi]->next = &ev->ev;
    else
        rc->heads[wi] = &ev->ev;
    rc->tails[wi] = &ev->ev;
    rc->accepted++;
}

/* Hand a list of events to a worker with one lock and at most one wake-up. */
static void post_list(struct spl__rn_worker *w, struct spl__rn_event *head,
                      struct spl__rn_event *tail)
{
    tail->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = head;
    else
        w->head = head;
    w->tail = tail;
    if (w->sleeping)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void on_send(spl_rpc_call *call, void *ctx)
{
    struct spl_raftnode_host *h = ctx;
    const Spline__RaftSendRequest *req =
        (const Spline__RaftSendRequest *)spl_rpc_call_request(call);
    if (atomic_load(&h->stopping)) {
        spl_rpc_reply_error(call, SPL_ESHUTDOWN, NULL);
        return;
    }
    struct recv_ctx *rc = calloc(1, sizeof(*rc));
    ASSERT(rc != NULL);
    rc->h = h;
    struct spl_iobuf att;
    spl_iobuf_init(&att);
    spl_iobuf_move(&att, spl_rpc_call_attachment(call));
    uint32_t bad = 0;
    if (req->to_node != h->opts.node_id || req->n_msg_len > SPL_RAFTNODE_BATCH_MSGS_MAX)
        bad = (uint32_t)req->n_msg_len;
    else
        spl__rn_batch_decode(&att, req->msg_len, req->n_msg_len, recv_msg, rc, &bad);
    spl_iobuf_reset(&att);
    rc->rejected += bad;
    for (uint32_t i = 0; i < h->worker_count; i++)
        if (rc->heads[i])
            post_list(&h->workers[i], rc->heads[i], rc->tails[i]);
    atomic_fetch_add_explicit(&h->st_rpcs_received, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->st_msgs_received, rc->accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->st_msgs_rejected, rc->rejected, memory_order_relaxed);
    spl_counter_inc(h->m.rpcs_received);
    spl_counter_add(h->m.msgs_received, rc->accepted);
    if (rc->rejected)
        spl_counter_add(h->m.msgs_rejected, rc->rejected);

    Spline__RaftSendResponse resp = SPLINE__RAFT_SEND_RESPONSE__INIT;
    resp.accepted = rc->accepted;
    resp.rejected = rc->rejected;
    resp.n_unknown_groups = rc->unknown_count;
    resp.unknown_groups = rc->unknown;
    spl_rpc_reply(call, &resp.base, NULL);
    free(rc);
}

static const struct spl_rpc_method spl__rn_raft_methods[] = {
    {"Send", &spline__raft_send_request__descriptor, &spline__raft_send_response__descriptor,
     on_send},
    {"GetFile", &spline__raft_get_file_request__descriptor,
     &spline__raft_get_file_response__descriptor, spl__rn_getfile_handler},
    {"SnapshotDone", &spline__raft_snapshot_done_request__descriptor,
     &spline__raft_snapshot_done_response__descriptor, spl__rn_snapdone_handler},
};

const struct spl_rpc_service spl__rn_raft_service = {
    .id = SPL_RPC_SERVICE_RAFT,
    .name = "raft",
    .methods = spl__rn_raft_methods,
    .method_count = SPL_ARRAY_SIZE(spl__rn_raft_methods),
};
