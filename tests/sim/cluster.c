/* cluster.c - simulated nodes: ready/advance loop over a WAL on a simulated disk, the
 * key/value state machine, clients, and the main event loop of one seed. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "sim.h"

/* Persist points where the schedule may kill a node (RAFT-INVARIANTS 22, §5). */
enum sim_point {
    SIM_P_WRITTEN = 1,     /* ready written to the log, fsync not started */
    SIM_P_SYNCING,         /* fsync in flight */
    SIM_P_SYNCED,          /* fsync done, messages not sent */
    SIM_P_SENT,            /* messages sent, nothing applied */
    SIM_P_APPLIED,         /* applied, not advanced */
    SIM_P_SNAP_WRITTEN,    /* snapshot record written, not synced */
    SIM_P_REWRITE_WRITTEN, /* log rewrite: new file written, not synced */
    SIM_P_REWRITE_SYNCED,  /* log rewrite: new file synced, not renamed */
    SIM_P_REWRITE_DONE,    /* log rewrite: renamed */
    SIM_P_COUNT
};

#define SIM_ENTRY_PUT 1
#define SIM_ENTRY_MARKER 2
#define SIM_ENTRY_LEN 29 /* u8 kind, u32 client, u64 op, u64 key, u64 value */
#define SIM_SNAP_LEN (8 + 8 * SIM_KEYS)
#define SIM_GROUP 1
#define SIM_REWRITE_BYTES (64u << 10)
#define SIM_LIVENESS_STEPS_MAX 1000000 /* events allowed in the fault-free window */

static const char *const plant_names[] = {
#define XX(name, str, desc) str,
    SIM_PLANTS(XX)
#undef XX
};

const char *sim_plant_name(int plant)
{
    return plant >= 0 && plant < SIM_PLANT_COUNT ? plant_names[plant] : "?";
}

int sim_plant_parse(const char *name)
{
    for (int i = 0; i < SIM_PLANT_COUNT; i++)
        if (strcmp(name, plant_names[i]) == 0)
            return i;
    return -1;
}

/* ---- small helpers ---- */

uint32_t sim_voter_count(const struct spl_raft_conf *conf)
{
    return conf->voter_count;
}

static bool node_paused(struct sim *s, struct sim_node *n)
{
    return n->paused_until_ns > s->w.now_ns;
}

/* Kills n when the schedule armed persist point p; true when it did (the caller must
 * stop touching the node). */
static bool persist_point(struct sim *s, struct sim_node *n, int p)
{
    if (n->crash_at_point != p)
        return false;
    n->crash_at_point = 0;
    char why[48];
    snprintf(why, sizeof(why), "killed at persist point %d", p);
    sim_node_crash(s, n, why);
    sim_schedule_restart(s, n, sim_restart_delay(s));
    return true;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void encode_op(uint8_t *buf, uint8_t kind, int client, uint64_t op, uint64_t key,
                      uint64_t value)
{
    buf[0] = kind;
    put_le(buf + 1, (uint32_t)client, 4);
    put_le(buf + 5, op, 8);
    put_le(buf + 13, key, 8);
    put_le(buf + 21, value, 8);
}

static void kv_encode(const struct sim_node *n, struct spl_iobuf *out)
{
    uint8_t buf[SIM_SNAP_LEN];
    put_le(buf, n->applied, 8);
    for (int k = 0; k < SIM_KEYS; k++)
        put_le(buf + 8 + 8 * k, n->kv[k], 8);
    ASSERT(spl_iobuf_append(out, buf, sizeof(buf)) == 0);
}

static bool kv_decode(struct sim_node *n, const struct spl_iobuf *data, uint64_t index)
{
    uint8_t buf[SIM_SNAP_LEN];
    memset(n->kv, 0, sizeof(n->kv));
    if (spl_iobuf_len(data) == 0)
        return index == 0;
    if (spl_iobuf_len(data) != SIM_SNAP_LEN)
        return false;
    spl_iobuf_copy_out(data, 0, buf, sizeof(buf));
    for (int k = 0; k < SIM_KEYS; k++)
        n->kv[k] = get_le(buf + 8 + 8 * k, 8);
    return get_le(buf, 8) == index;
}

/* ---- durable view bookkeeping ---- */

static void effect_push(struct sim_node *n, const struct sim_effect *e)
{
    ASSERT(n->effect_count < SIM_EFFECTS_MAX);
    n->effects[n->effect_count++] = *e;
}

void sim_effect_apply(struct sim_logview *v, const struct sim_effect *e)
{
    if (e->kind == SIM_WAL_HARD_STATE)
        v->hs = e->hs;
    else if (e->kind == SIM_WAL_SNAPSHOT)
        sim_lv_apply_snapshot(v, e->index, e->term, e->epoch);
    else if (e->kind == SIM_WAL_SNAP_LOCAL)
        sim_lv_snapshot_local(v, e->index, e->epoch);
    else
        sim_lv_append(v, e->index, &e->entry, 1, NULL);
}

/* The fsync covered `synced` bytes: move the effects it covers into the durable view. */
static void effects_synced(struct sim *s, struct sim_node *n, size_t synced)
{
    uint32_t i = 0;
    while (i < n->effect_count && n->effects[i].end <= synced)
        sim_effect_apply(&n->dur, &n->effects[i++]);
    memmove(n->effects, n->effects + i, (n->effect_count - i) * sizeof(n->effects[0]));
    n->effect_count -= i;
    sim_check_durable(s, n);
}

static void lv_from_ms(struct sim_logview *v, const struct spl_raft_memstorage *ms)
{
    v->hs = ms->hs;
    v->snap_index = ms->snap.index;
    v->snap_term = ms->snap.term;
    v->snap_epoch = ms->snap.epoch;
    v->base = ms->base_index;
    v->base_term = ms->base_term;
    v->count = 0;
    for (uint64_t i = 0; i < ms->entry_count; i++) {
        struct sim_lentry le = sim_lentry_of(&ms->entries[i]);
        ASSERT(sim_lv_append(v, ms->entries[i].index, &le, 1, NULL));
    }
}

/* ---- writing the log ---- */

/* Records are encoded into b with effect ends relative to the current file end; then
 * wal_commit() appends b in one write, as one atomic batch record when the seed chose
 * that log format (all of a ready's records survive a crash together, or none). */
static void wal_commit(struct sim *s, struct sim_node *n, struct sim_bytes *b,
                       uint32_t first_effect)
{
    if (b->len == 0)
        return;
    if (s->atomic_ready) {
        struct sim_bytes batch = {0};
        sim_wal_put_batch(&batch, b);
        sim_disk_append(&n->disk, 0, batch.data, batch.len);
        sim_bytes_free(&batch);
        for (uint32_t i = first_effect; i < n->effect_count; i++)
            n->effects[i].end = sim_disk_len(&n->disk, 0);
    } else {
        sim_disk_append(&n->disk, 0, b->data, b->len);
    }
    b->len = 0;
}

static void persist_snapshot(struct sim *s, struct sim_node *n,
                             const struct spl_raft_snapshot_meta *snap, int type,
                             struct sim_bytes *b)
{
    struct spl_raft_snapshot_meta written = *snap;
    if (s->opt.plant == SIM_PLANT_DROP_EPOCH)
        written.epoch = 0;
    sim_wal_put_snapshot(b, &written, type);
    size_t end = sim_disk_len(&n->disk, 0) + b->len;
    effect_push(n, &(struct sim_effect){.end = end, .kind = (uint8_t)type,
                                        .index = snap->index, .term = snap->term,
                                        .epoch = written.epoch});
}

static void persist_entries(struct sim *s, struct sim_node *n, const struct spl_raft_entry *es,
                            uint32_t count, struct sim_bytes *b)
{
    uint32_t skip = 0;
    uint64_t last = spl_raft_memstorage_last_index(&n->ms);
    if (s->opt.plant == SIM_PLANT_NO_TRUNCATE)
        while (skip < count && es[skip].index <= last)
            skip++;
    for (uint32_t i = skip; i < count; i++) {
        sim_wal_put_entry(b, &es[i]);
        size_t end = sim_disk_len(&n->disk, 0) + b->len;
        effect_push(n, &(struct sim_effect){.end = end, .kind = SIM_WAL_ENTRY,
                                            .index = es[i].index,
                                            .entry = sim_lentry_of(&es[i])});
    }
    if (skip < count) {
        int rc = spl_raft_memstorage_append(&n->ms, es + skip, count - skip);
        if (rc != 0)
            sim_fail(s, 0, "n%d: memstorage_append(%" PRIu64 "..) = %s", n->id,
                     es[skip].index, spl_errname(rc));
    }
}

static void persist_hard_state(struct sim *s, struct sim_node *n,
                               const struct spl_raft_hard_state *hs, struct sim_bytes *b)
{
    struct spl_raft_hard_state written = *hs;
    if (s->opt.plant == SIM_PLANT_FORGET_VOTE)
        written.vote = SPL_RAFT_NONE;
    sim_wal_put_hard_state(b, &written);
    size_t end = sim_disk_len(&n->disk, 0) + b->len;
    effect_push(n, &(struct sim_effect){.end = end, .kind = SIM_WAL_HARD_STATE,
                                        .hs = written});
    spl_raft_memstorage_set_hard_state(&n->ms, hs);
}

/* ---- messages ---- */

/* A packet from `from` to `to` was lost: the transport tells both ends (a TCP transport
 * sees the connection reset on both sides) a little later, unless the seed runs with
 * silent loss. Snapshot sends are always reported to the sender (the transport knows
 * whether a snapshot stream finished). */
static void report_lost(struct sim *s, int from, int to, uint64_t from_incarnation, int type)
{
    uint64_t at = s->w.now_ns + sim_rand_range(&s->w, SPL_SIM_MS, 50 * SPL_SIM_MS);
    struct sim_node *b = to > 0 && to < SIM_NODES_MAX ? &s->node[to] : NULL;
    if (type == SPL_RAFT_MSG_SNAPSHOT || !s->opt.silent_loss)
        sim_schedule(&s->w, at, SIM_EV_REPORT, from, from_incarnation,
                     (void *)(uintptr_t)(to | (type == SPL_RAFT_MSG_SNAPSHOT ? 0x100 : 0)));
    if (b && b->up && !s->opt.silent_loss)
        sim_schedule(&s->w, at, SIM_EV_REPORT, to, b->incarnation, (void *)(uintptr_t)from);
}

static void on_report(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->node[ev->node];
    uintptr_t what = (uintptr_t)ev->ptr;
    if (!n->up || n->incarnation != ev->arg)
        return;
    if (node_paused(s, n)) {
        sim_schedule(&s->w, n->paused_until_ns, ev->kind, ev->node, ev->arg, ev->ptr);
        return;
    }
    if (what & 0x100)
        spl_raft_report_snapshot(n->raft, (uint64_t)(what & 0xff), false);
    else
        spl_raft_report_unreachable(n->raft, (uint64_t)(what & 0xff));
    sim_node_pump(s, n);
}

static void send_msg(struct sim *s, struct sim_node *n, const struct spl_raft_msg *m, bool early)
{
    sim_check_send(s, n, m, early);
    struct spl_iobuf buf;
    spl_iobuf_init(&buf);
    int rc = spl_raft_msg_encode(m, &buf);
    if (rc != 0) {
        sim_fail(s, 0, "n%d: encode %s to %" PRIu64 ": %s", n->id,
                 spl_raft_msg_type_name(m->type), m->to, spl_errname(rc));
        spl_iobuf_reset(&buf);
        return;
    }
    size_t len = (size_t)spl_iobuf_len(&buf);
    uint8_t *flat = malloc(len ? len : 1);
    ASSERT(flat != NULL);
    spl_iobuf_copy_out(&buf, 0, flat, len);
    spl_iobuf_reset(&buf);
    SIM_TRACE(s, n->id, "send %s ->%" PRIu64 " t%" PRIu64 " i%" PRIu64 " lt%" PRIu64
              " n%u c%" PRIu64 "%s%s",
              spl_raft_msg_type_name(m->type), m->to, m->term, m->index, m->log_term,
              m->entry_count, m->commit, m->reject ? " reject" : "", early ? " early" : "");
    bool sent = m->to < (uint64_t)SIM_NODES_MAX &&
                sim_net_send(&s->net, n->id, (int)m->to, n->incarnation, m->type, flat, len);
    free(flat);
    if (!sent)
        report_lost(s, n->id, (int)m->to, n->incarnation, m->type);
    if (m->type == SPL_RAFT_MSG_SNAPSHOT)
        s->res->snapshots_sent++;
}

/* ---- client replies ---- */

static void client_reply(struct sim *s, int client, uint64_t op, int status, uint64_t value,
                         int hint)
{
    struct sim_msg_client *r = calloc(1, sizeof(*r));
    ASSERT(r != NULL);
    r->client = client;
    r->op = op;
    r->status = status;
    r->value = value;
    r->leader_hint = hint;
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 100 * SPL_SIM_US, 2 * SPL_SIM_MS),
                 SIM_EV_CLIENT_REPLY, 0, (uint64_t)client, r);
}

static void serve_reads(struct sim *s, struct sim_node *n)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n->read_count; i++) {
        struct sim_read *r = &n->reads[i];
        if (r->have_index && n->applied >= r->index) {
            SIM_TRACE(s, n->id, "serve %s read c%d op%" PRIu64 " k%" PRIu64 " = %" PRIu64
                      " (index %" PRIu64 ", applied %" PRIu64 ")",
                      r->kind == SIM_READ_LEASE ? "lease" : "index", r->client, r->op, r->key,
                      n->kv[r->key], r->index, n->applied);
            if (r->kind == SIM_READ_LEASE)
                s->res->reads_lease++;
            else
                s->res->reads_index++;
            client_reply(s, r->client, r->op, 0, n->kv[r->key], n->id);
            continue;
        }
        n->reads[kept++] = *r;
    }
    n->read_count = kept;
}

static void read_states(struct sim *s, struct sim_node *n, const struct spl_raft_ready *rd)
{
    for (uint32_t i = 0; i < rd->read_state_count; i++) {
        const struct spl_raft_read_state *rs = &rd->read_states[i];
        for (uint32_t k = 0; k < n->read_count; k++) {
            struct sim_read *r = &n->reads[k];
            if (r->kind != SIM_READ_INDEX || r->ctx != rs->context || r->have_index)
                continue;
            r->have_index = true;
            r->index = rs->index;
            sim_check_read_index(s, n, r);
        }
    }
}

/* ---- the state machine ---- */

/* The state machine's effect of a put entry (others have none). */
static void kv_apply_put(struct sim_node *n, const struct spl_raft_entry *e)
{
    uint8_t buf[SIM_ENTRY_LEN];
    if (e->type != SPL_RAFT_ENTRY_NORMAL || spl_iobuf_len(&e->data) != SIM_ENTRY_LEN)
        return;
    spl_iobuf_copy_out(&e->data, 0, buf, sizeof(buf));
    if (buf[0] == SIM_ENTRY_PUT) {
        uint64_t key = get_le(buf + 13, 8);
        ASSERT(key < SIM_KEYS);
        n->kv[key] = get_le(buf + 21, 8);
    }
}

static void apply_entry(struct sim *s, struct sim_node *n, const struct spl_raft_entry *e)
{
    sim_check_apply(s, n, e); /* also follows conf and epoch */
    n->applied = e->index;
    kv_apply_put(n, e);
    for (uint32_t i = 0; i < n->prop_count; i++) {
        struct sim_proposal *p = &n->props[i];
        if (p->index != e->index)
            continue;
        if (p->term == e->term)
            sim_check_ack(s, n, e->index, e->term);
        if (p->client >= 0)
            client_reply(s, p->client, p->op, p->term == e->term ? 0 : SPL_ERAFT_DROPPED, 0,
                         n->id);
        n->props[i] = n->props[--n->prop_count];
        break;
    }
}

static void install_snapshot(struct sim *s, struct sim_node *n,
                             const struct spl_raft_snapshot_meta *snap)
{
    sim_check_snapshot_install(s, n, snap);
    if (!kv_decode(n, &snap->data, snap->index))
        sim_fail(s, 0, "n%d: snapshot %" PRIu64 " has bad state machine data", n->id,
                 snap->index);
    n->applied = snap->index;
    n->epoch = snap->epoch;
    n->conf = snap->conf;
    n->prop_count = 0;
}

/* Take a snapshot of the state machine and compact the log (memstorage + WAL record). */
static bool maybe_snapshot(struct sim *s, struct sim_node *n)
{
    if (n->applied < n->ms.snap.index + n->snap_every || n->applied == 0)
        return false;
    struct spl_iobuf data;
    spl_iobuf_init(&data);
    kv_encode(n, &data);
    int rc = spl_raft_memstorage_create_snapshot(&n->ms, n->applied, &n->conf, n->epoch, &data);
    spl_iobuf_reset(&data);
    if (rc != 0) {
        sim_fail(s, 0, "n%d: create_snapshot(%" PRIu64 ") = %s", n->id, n->applied,
                 spl_errname(rc));
        return true;
    }
    struct sim_bytes b = {0};
    uint32_t first_effect = n->effect_count;
    persist_snapshot(s, n, &n->ms.snap, SIM_WAL_SNAP_LOCAL, &b);
    wal_commit(s, n, &b, first_effect);
    sim_bytes_free(&b);
    SIM_TRACE(s, n->id, "snapshot at %" PRIu64 " epoch %" PRIu64, n->applied, n->epoch);
    if (persist_point(s, n, SIM_P_SNAP_WRITTEN))
        return true;
    uint64_t keep = sim_rand_below(&s->w, 8);
    uint64_t to = n->applied > keep ? n->applied - keep : 0;
    if (to > n->ms.base_index && to <= spl_raft_memstorage_last_index(&n->ms)) {
        rc = spl_raft_memstorage_compact(&n->ms, to);
        if (rc != 0)
            sim_fail(s, 0, "n%d: compact(%" PRIu64 ") = %s", n->id, to, spl_errname(rc));
        else if (to > n->mem.base && to <= sim_lv_last(&n->mem))
            sim_lv_compact(&n->mem, to);
    }
    return false;
}

/* Rewrite the log file from memstorage once it grew (synchronous, atomic rename). */
static bool maybe_rewrite(struct sim *s, struct sim_node *n)
{
    if (n->in_ready || sim_disk_len(&n->disk, 0) < SIM_REWRITE_BYTES)
        return false;
    struct sim_bytes b = {0};
    sim_wal_put_state(&b, &n->ms);
    sim_disk_truncate(&n->disk, 1, 0);
    sim_disk_append(&n->disk, 1, b.data, b.len);
    sim_bytes_free(&b);
    if (persist_point(s, n, SIM_P_REWRITE_WRITTEN))
        return true;
    sim_disk_sync_now(&n->disk, 1);
    if (persist_point(s, n, SIM_P_REWRITE_SYNCED))
        return true;
    sim_disk_rename(&n->disk, 1, 0);
    /* Everything written before is now durable in the new file. */
    struct spl_raft_memstorage check;
    spl_raft_memstorage_init(&check);
    struct sim_wal_replay rep;
    sim_wal_replay(sim_disk_data(&n->disk, 0), sim_disk_len(&n->disk, 0), &check, &rep);
    if (rep.inconsistent || rep.torn)
        sim_fail(s, 22, "n%d: rewritten log does not replay (valid %zu of %zu bytes)", n->id,
                 rep.valid_len, sim_disk_len(&n->disk, 0));
    lv_from_ms(&n->dur, &check);
    spl_raft_memstorage_destroy(&check);
    n->effect_count = 0;
    sim_check_durable(s, n);
    SIM_TRACE(s, n->id, "log rewritten: %zu bytes", sim_disk_len(&n->disk, 0));
    return persist_point(s, n, SIM_P_REWRITE_DONE);
}

/* ---- the ready loop ---- */

static void finish_ready(struct sim *s, struct sim_node *n)
{
    struct spl_raft_ready *rd = &n->rd;
    if (!(s->opt.plant == SIM_PLANT_EARLY_SEND && rd->must_sync))
        for (uint32_t i = 0; i < rd->msg_count && n->up; i++)
            send_msg(s, n, &rd->msgs[i], false);
    if (persist_point(s, n, SIM_P_SENT))
        return;
    if (rd->snapshot)
        install_snapshot(s, n, rd->snapshot);
    for (uint32_t i = 0; i < rd->committed_count; i++)
        apply_entry(s, n, &rd->committed[i]);
    read_states(s, n, rd);
    serve_reads(s, n);
    if (persist_point(s, n, SIM_P_APPLIED))
        return;
    sim_check_after_ready(s, n, rd);
    spl_raft_advance(n->raft, rd);
    n->in_ready = false;
    if (maybe_snapshot(s, n))
        return;
    maybe_rewrite(s, n);
}

static void process_ready(struct sim *s, struct sim_node *n)
{
    struct spl_raft_ready *rd = &n->rd;
    spl_raft_ready(n->raft, rd);
    n->last_rd = *rd;
    n->in_ready = true;
    SIM_TRACE(s, n->id, "ready hs%s t%" PRIu64 " v%" PRIu64 " c%" PRIu64 " ents %" PRIu64
              "+%u snap %" PRIu64 " commit %" PRIu64 "+%u msgs %u+%u reads %u sync %d%s",
              rd->has_hard_state ? "" : "-", rd->hard_state.term, rd->hard_state.vote,
              rd->hard_state.commit, rd->entry_count ? rd->entries[0].index : 0,
              rd->entry_count, rd->snapshot ? rd->snapshot->index : 0,
              rd->committed_count ? rd->committed[0].index : 0, rd->committed_count,
              rd->msg_early_count, rd->msg_count, rd->read_state_count, rd->must_sync,
              rd->has_soft_state ? (rd->soft_state.role == SPL_RAFT_LEADER ? " LEADER" : " role")
                                 : "");
    sim_check_ready(s, n, rd);
    for (uint32_t i = 0; i < rd->msg_early_count && n->up; i++)
        send_msg(s, n, &rd->msgs_early[i], true);
    struct sim_bytes b = {0};
    uint32_t first_effect = n->effect_count;
    if (rd->snapshot) {
        persist_snapshot(s, n, rd->snapshot, SIM_WAL_SNAPSHOT, &b);
        int rc = spl_raft_memstorage_apply_snapshot(&n->ms, rd->snapshot);
        if (rc != 0)
            sim_fail(s, 0, "n%d: apply_snapshot(%" PRIu64 ") = %s", n->id, rd->snapshot->index,
                     spl_errname(rc));
    }
    if (rd->entry_count)
        persist_entries(s, n, rd->entries, rd->entry_count, &b);
    if (rd->has_hard_state)
        persist_hard_state(s, n, &rd->hard_state, &b);
    wal_commit(s, n, &b, first_effect);
    sim_bytes_free(&b);
    if (s->opt.plant == SIM_PLANT_APPLY_UNCOMMITTED) /* writes reach the map on append */
        for (uint32_t i = 0; i < rd->entry_count; i++)
            kv_apply_put(n, &rd->entries[i]);
    if (persist_point(s, n, SIM_P_WRITTEN))
        return;
    if (!rd->must_sync) {
        finish_ready(s, n);
        return;
    }
    if (s->opt.plant == SIM_PLANT_EARLY_SEND)
        for (uint32_t i = 0; i < rd->msg_count && n->up; i++)
            send_msg(s, n, &rd->msgs[i], false);
    uint64_t at = sim_disk_sync_begin(&n->disk, &s->w, 0, &n->sync_target);
    sim_schedule(&s->w, at, SIM_EV_SYNC_DONE, n->id, n->incarnation, NULL);
    persist_point(s, n, SIM_P_SYNCING);
}

static bool ready_is_empty(const struct spl_raft_ready *rd)
{
    return !rd->has_hard_state && !rd->snapshot && rd->entry_count == 0 &&
           rd->msg_early_count == 0 && rd->msg_count == 0 && rd->committed_count == 0 &&
           rd->read_state_count == 0 && !rd->has_soft_state && !rd->conf_changed;
}

void sim_node_pump(struct sim *s, struct sim_node *n)
{
    for (int guard = 0; guard < 1000; guard++) {
        if (!n->up || n->in_ready || s->stop || !spl_raft_has_ready(n->raft))
            return;
        uint64_t inc = n->incarnation;
        process_ready(s, n);
        /* --allow-empty-ready: a core whose has_ready() may stay true over empty readies
         * (FOUND-BUGS 2) is not spun on; the next event pumps again. */
        if (s->opt.allow_empty_ready && n->up && n->incarnation == inc && !n->in_ready &&
            ready_is_empty(&n->last_rd))
            return;
    }
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    char peers[256] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < st.peer_count && used < sizeof(peers); i++) {
        int w = snprintf(peers + used, sizeof(peers) - used, " n%" PRIu64 ":%s/%" PRIu64 "/%"
                         PRIu64 "/if%u", st.peers[i].id,
                         spl_raft_progress_state_name(st.peers[i].state), st.peers[i].match,
                         st.peers[i].next, st.peers[i].inflight);
        used += w > 0 ? (size_t)w : 0;
    }
    sim_fail(s, 0, "n%d: spl_raft_has_ready() stays true over 1000 readies (%s term %" PRIu64
             " commit %" PRIu64 " applied %" PRIu64 " first %" PRIu64 " last %" PRIu64
             " snap %" PRIu64 ";%s)", n->id, spl_raft_role_name(st.role), st.term, st.commit,
             st.applied, st.first_index, st.last_index, st.snapshot_index, peers);
}

static void on_sync_done(struct sim *s, struct sim_node *n)
{
    ASSERT(n->in_ready);
    sim_disk_sync_end(&n->disk, 0, n->sync_target);
    effects_synced(s, n, n->disk.file[0].synced);
    if (persist_point(s, n, SIM_P_SYNCED))
        return;
    finish_ready(s, n);
}

/* ---- ticks ---- */

static void catch_up_ticks(struct sim *s, struct sim_node *n)
{
    uint64_t mono = sim_mono_ns(&s->w, n->id);
    int k = 0;
    while (n->next_tick_mono_ns <= mono && k < 10000) {
        spl_raft_tick(n->raft);
        n->next_tick_mono_ns += SIM_TICK_NS;
        k++;
    }
    if (k == 10000)
        n->next_tick_mono_ns = mono + SIM_TICK_NS;
}

static void schedule_tick(struct sim *s, struct sim_node *n)
{
    uint64_t at = sim_true_after(&s->w, n->id, n->next_tick_mono_ns);
    sim_schedule(&s->w, at, SIM_EV_TICK, n->id, n->incarnation, NULL);
}

/* ---- node lifecycle ---- */

static struct sim *g_trace_sim; /* the run whose trace receives the core's log lines */
static struct sim *g_current;   /* the run in progress, for sim_crash_report() */

void sim_crash_report(FILE *out)
{
    struct sim *s = g_current;
    if (!s)
        return;
    if (s->opt.trace)
        sim_trace_dump(&s->w, s->opt.trace_lines);
    fprintf(out, "CRASH (an assertion or signal in the code under test, see above) in seed %"
            PRIu64 " at step %" PRIu64 ", simulated time %" PRIu64 " ns\n", s->opt.seed,
            s->w.steps, s->w.now_ns);
    fflush(out);
}

static void raft_log(void *ctx, enum spl_log_level level, const char *msg)
{
    struct sim_node *n = ctx;
    if (g_trace_sim && level >= SPL_LOG_INFO)
        sim_trace(&g_trace_sim->w, n->id, "  raft: %s", msg);
}

void sim_node_crash(struct sim *s, struct sim_node *n, const char *why)
{
    if (!n->up)
        return;
    SIM_TRACE(s, n->id, "CRASH (%s)", why);
    spl_raft_destroy(n->raft);
    n->raft = NULL;
    spl_raft_memstorage_destroy(&n->ms);
    n->up = false;
    n->in_ready = false;
    n->incarnation++;
    n->paused_until_ns = 0;
    n->read_count = 0;
    n->prop_count = 0;
    sim_disk_crash(&n->disk, &s->w);
}

void sim_schedule_restart(struct sim *s, struct sim_node *n, uint64_t delay_ns)
{
    if (n->exists && !n->up)
        sim_schedule(&s->w, s->w.now_ns + delay_ns, SIM_EV_RESTART, n->id, n->incarnation,
                     NULL);
}

/* Replays the disk into n->ms and checks what came back (RAFT-INVARIANTS 22, 23). */
static bool recover(struct sim *s, struct sim_node *n)
{
    sim_disk_truncate(&n->disk, 1, 0); /* an unfinished rewrite is abandoned */
    spl_raft_memstorage_init(&n->ms);
    struct sim_wal_replay rep;
    sim_wal_replay(sim_disk_data(&n->disk, 0), sim_disk_len(&n->disk, 0), &n->ms, &rep);
    if (rep.inconsistent) {
        sim_fail(s, 23, "n%d: log record %" PRIu64 " at byte %zu (index %" PRIu64 ") is valid "
                 "but the storage refuses it: %s (first %" PRIu64 " last %" PRIu64 " snap %"
                 PRIu64 ")", n->id, rep.records, rep.valid_len, rep.error_index,
                 spl_errname(rep.error), spl_raft_memstorage_first_index(&n->ms),
                 spl_raft_memstorage_last_index(&n->ms), n->ms.snap.index);
        return false;
    }
    if (rep.torn) {
        s->res->torn_tails++;
        SIM_TRACE(s, n->id, "recovery cut a torn tail: %zu of %zu bytes valid", rep.valid_len,
                  sim_disk_len(&n->disk, 0));
        sim_disk_truncate(&n->disk, 0, rep.valid_len);
    }
    struct sim_logview got;
    sim_lv_init(&got);
    lv_from_ms(&got, &n->ms);
    uint32_t lost = 0;
    while (lost < n->effect_count && n->effects[lost].end <= rep.valid_len)
        lost++;
    sim_check_recovered(s, n, &n->dur, n->effects, lost, &got);
    sim_lv_copy(&n->dur, &got);
    sim_lv_copy(&n->mem, &got);
    sim_lv_free(&got);
    n->effect_count = 0;
    sim_check_durable(s, n);
    return !s->stop;
}

void sim_node_start(struct sim *s, struct sim_node *n)
{
    ASSERT(n->exists && !n->up);
    n->incarnation++;
    if (!recover(s, n))
        return;
    memset(n->kv, 0, sizeof(n->kv));
    if (!kv_decode(n, &n->ms.snap.data, n->ms.snap.index))
        sim_fail(s, 0, "n%d: bad snapshot data at restart", n->id);
    n->applied = n->ms.snap.index;
    n->epoch = n->ms.snap.epoch;
    n->conf = n->ms.snap.conf;
    n->commit = n->ms.hs.commit;
    n->term = n->ms.hs.term;
    n->role = SPL_RAFT_FOLLOWER;
    spl_rand_seed(&n->rand, sim_rand_below(&s->w, UINT64_MAX));
    struct spl_raft_config cfg = {
        .id = (uint64_t)n->id,
        .group = SIM_GROUP,
        .election_tick = s->election_tick,
        .heartbeat_tick = s->heartbeat_tick,
        .pre_vote = s->pre_vote,
        .check_quorum = true,
        .lease = true,
        .max_inflight_msgs = s->max_inflight,
        .max_size_per_msg = s->max_msg_bytes,
        .rand = &n->rand,
        .storage = &n->ms.storage,
        .log_fn = raft_log,
        .log_ctx = n,
    };
    int rc = spl_raft_init(&cfg, &n->raft);
    if (rc != 0) {
        sim_fail(s, 0, "n%d: spl_raft_init after restart = %s (storage: term %" PRIu64
                 " vote %" PRIu64 " commit %" PRIu64 ", snapshot %" PRIu64 "/%" PRIu64
                 ", entries %" PRIu64 "..%" PRIu64 ")", n->id, spl_errname(rc), n->ms.hs.term,
                 n->ms.hs.vote, n->ms.hs.commit, n->ms.snap.index, n->ms.snap.term,
                 spl_raft_memstorage_first_index(&n->ms),
                 spl_raft_memstorage_last_index(&n->ms));
        spl_raft_memstorage_destroy(&n->ms);
        return;
    }
    n->up = true;
    n->in_ready = false;
    n->read_count = n->prop_count = 0;
    n->next_tick_mono_ns = sim_mono_ns(&s->w, n->id) + SIM_TICK_NS;
    SIM_TRACE(s, n->id, "START inc %" PRIu64 ": term %" PRIu64 " vote %" PRIu64
              " commit %" PRIu64 " snap %" PRIu64 " last %" PRIu64,
              n->incarnation, n->ms.hs.term, n->ms.hs.vote, n->ms.hs.commit, n->ms.snap.index,
              spl_raft_memstorage_last_index(&n->ms));
    schedule_tick(s, n);
    sim_node_pump(s, n);
}

/* A node with a fresh disk; founding members get the bootstrap snapshot, durable. */
static void node_create(struct sim *s, int id, const struct spl_raft_conf *founding)
{
    struct sim_node *n = &s->node[id];
    ASSERT(!n->exists);
    n->id = id;
    n->exists = true;
    sim_disk_init(&n->disk, 50 * SPL_SIM_US, 2 * SPL_SIM_MS);
    if (!n->effects) {
        n->effects = calloc(SIM_EFFECTS_MAX, sizeof(n->effects[0]));
        ASSERT(n->effects != NULL);
    }
    n->snap_every = sim_rand_range(&s->w, 5, 60);
    sim_lv_init(&n->mem);
    sim_lv_init(&n->dur);
    if (founding) {
        struct spl_raft_snapshot_meta snap;
        memset(&snap, 0, sizeof(snap));
        spl_iobuf_init(&snap.data);
        snap.conf = *founding;
        struct sim_bytes b = {0};
        sim_wal_put_snapshot(&b, &snap, SIM_WAL_SNAPSHOT);
        sim_disk_append(&n->disk, 0, b.data, b.len);
        sim_disk_sync_now(&n->disk, 0);
        sim_bytes_free(&b);
        sim_lv_apply_snapshot(&n->dur, 0, 0, 0);
    }
    sim_node_start(s, n);
}

void sim_node_add(struct sim *s, int id)
{
    node_create(s, id, NULL);
}

int sim_leader(struct sim *s)
{
    int best = 0;
    uint64_t best_term = 0;
    for (int id = 1; id <= s->node_count; id++) {
        struct sim_node *n = &s->node[id];
        if (!n->up || node_paused(s, n))
            continue;
        struct spl_raft_status st;
        spl_raft_get_status(n->raft, &st);
        if (st.role == SPL_RAFT_LEADER && st.term >= best_term) {
            best = id;
            best_term = st.term;
        }
    }
    return best;
}

int sim_propose_marker(struct sim *s, int id, uint64_t *index, uint64_t *term)
{
    struct sim_node *n = &s->node[id];
    uint8_t buf[SIM_ENTRY_LEN];
    encode_op(buf, SIM_ENTRY_MARKER, 0, ++s->next_value, 0, 0);
    struct spl_iobuf data;
    spl_iobuf_init(&data);
    ASSERT(spl_iobuf_append(&data, buf, sizeof(buf)) == 0);
    int rc = spl_raft_propose(n->raft, &data, index, term);
    spl_iobuf_reset(&data);
    SIM_TRACE(s, id, "liveness marker: %s at %" PRIu64 "/%" PRIu64, spl_errname(rc), *index,
              *term);
    if (rc == 0)
        sim_node_pump(s, n);
    return rc;
}

/* ---- events ---- */

static void on_deliver(struct sim *s, struct sim_event *ev)
{
    struct sim_packet *p = ev->ptr;
    struct sim_node *n = &s->node[p->to];
    if (n->up && node_paused(s, n)) { /* a paused process reads it when it resumes */
        sim_schedule(&s->w, n->paused_until_ns, SIM_EV_DELIVER, p->to, 0, p);
        return;
    }
    struct sim_node *from = &s->node[p->from];
    bool arrives = sim_net_arrives(&s->net, p) && n->up;
    if (!arrives) {
        report_lost(s, p->from, p->to, p->sender_incarnation, p->tag);
        sim_packet_free(p);
        return;
    }
    catch_up_ticks(s, n);
    struct spl_raft_msg m;
    spl_raft_msg_init(&m);
    int rc = spl_raft_msg_decode_bytes(p->bytes, p->len, &m, s->decode_buf,
                                       SPL_RAFT_BATCH_ENTRIES_MAX);
    if (rc != 0 || p->flipped) {
        if (rc == 0)
            sim_fail(s, 0, "n%d: a packet with a flipped bit from n%d decoded as %s: the "
                     "wire checksum was not verified", n->id, p->from,
                     spl_raft_msg_type_name(m.type));
        else if (!p->flipped)
            sim_fail(s, 0, "n%d: a valid packet from n%d does not decode: %s", n->id, p->from,
                     spl_errname(rc));
        if (rc == 0)
            spl_raft_msg_release(&m);
        SIM_TRACE(s, n->id, "dropped a corrupted packet from n%d: %s", p->from, spl_errname(rc));
        report_lost(s, p->from, p->to, p->sender_incarnation, p->tag); /* a reset */
        sim_packet_free(p);
        return;
    }
    SIM_TRACE(s, n->id, "recv %s <-%" PRIu64 " t%" PRIu64 " i%" PRIu64 " lt%" PRIu64
              " n%u c%" PRIu64 " ctx%" PRIu64 "%s",
              spl_raft_msg_type_name(m.type), m.from, m.term, m.index, m.log_term,
              m.entry_count, m.commit, m.context, m.reject ? " reject" : "");
    rc = spl_raft_step(n->raft, &m);
    if (rc != 0)
        SIM_TRACE(s, n->id, "  step: %s", spl_errname(rc));
    if (m.type == SPL_RAFT_MSG_SNAPSHOT && from->up &&
        from->incarnation == p->sender_incarnation) {
        spl_raft_report_snapshot(from->raft, (uint64_t)p->to, true);
        sim_node_pump(s, from);
    }
    spl_raft_msg_release(&m);
    sim_packet_free(p);
    sim_node_pump(s, n);
}

static void client_arrive(struct sim *s, struct sim_node *n, struct sim_msg_client *req)
{
    if (s->opt.plant != SIM_PLANT_STALE_LEASE)
        catch_up_ticks(s, n);
    struct spl_raft_status st;
    spl_raft_get_status(n->raft, &st);
    int hint = (int)(st.leader < (uint64_t)SIM_NODES_MAX ? st.leader : 0);
    if (req->kind == SPL_LIN_PUT) {
        uint8_t buf[SIM_ENTRY_LEN];
        encode_op(buf, SIM_ENTRY_PUT, req->client, req->op, req->key, req->value);
        struct spl_iobuf data;
        spl_iobuf_init(&data);
        ASSERT(spl_iobuf_append(&data, buf, sizeof(buf)) == 0);
        uint64_t index = 0, term = 0;
        int rc = spl_raft_propose(n->raft, &data, &index, &term);
        spl_iobuf_reset(&data);
        SIM_TRACE(s, n->id, "client c%d op%" PRIu64 " put k%" PRIu64 "=%" PRIu64 ": %s at %"
                  PRIu64 "/%" PRIu64, req->client, req->op, req->key, req->value,
                  spl_errname(rc), index, term);
        if (rc != 0) {
            client_reply(s, req->client, req->op, rc, 0, hint);
            return;
        }
        if (n->prop_count < SIM_PROPOSALS_MAX)
            n->props[n->prop_count++] = (struct sim_proposal){
                .index = index, .term = term, .client = req->client, .op = req->op};
        sim_node_pump(s, n);
        return;
    }
    if (s->opt.plant == SIM_PLANT_FOLLOWER_READ) {
        client_reply(s, req->client, req->op, 0, n->kv[req->key], n->id);
        return;
    }
    if (st.role != SPL_RAFT_LEADER || n->read_count == SIM_READS_MAX) {
        client_reply(s, req->client, req->op, SPL_ENOTLEADER, 0, hint);
        return;
    }
    struct sim_read r = {.client = req->client, .op = req->op, .key = req->key,
                         .term = st.term, .commit_seen = sim_check_commit_max(s)};
    if (sim_chance(&s->w, 1, 2) && spl_raft_lease_valid(n->raft)) {
        r.kind = SIM_READ_LEASE;
        r.have_index = true;
        r.index = st.commit;
        SIM_TRACE(s, n->id, "client c%d op%" PRIu64 " get k%" PRIu64 ": lease read at %" PRIu64,
                  req->client, req->op, req->key, r.index);
        sim_check_lease_read(s, n, &r);
        n->reads[n->read_count++] = r;
        serve_reads(s, n);
        return;
    }
    r.kind = SIM_READ_INDEX;
    r.ctx = ++s->next_read_ctx;
    int rc = spl_raft_read_index(n->raft, r.ctx);
    SIM_TRACE(s, n->id, "client c%d op%" PRIu64 " get k%" PRIu64 ": read_index ctx %" PRIu64
              ": %s", req->client, req->op, req->key, r.ctx, spl_errname(rc));
    if (rc != 0) {
        client_reply(s, req->client, req->op, rc, 0, hint);
        return;
    }
    n->reads[n->read_count++] = r;
    sim_node_pump(s, n);
}

static void on_client_arrive(struct sim *s, struct sim_event *ev)
{
    struct sim_msg_client *req = ev->ptr;
    struct sim_node *n = &s->node[ev->node];
    if (n->up && node_paused(s, n)) {
        sim_schedule(&s->w, n->paused_until_ns, SIM_EV_CLIENT_ARRIVE, ev->node, 0, req);
        return;
    }
    if (n->up)
        client_arrive(s, n, req);
    free(req);
}

static void client_next(struct sim *s, struct sim_client *c)
{
    if (c->state != SIM_CLIENT_IDLE)
        return;
    c->op++;
    c->state = SIM_CLIENT_WAITING;
    c->kind = sim_chance(&s->w, s->write_pct, 100) && s->w.now_ns >= s->quiet_until_ns
                  ? SPL_LIN_PUT : SPL_LIN_GET;
    c->key = sim_rand_below(&s->w, SIM_KEYS);
    c->value = c->kind == SPL_LIN_PUT ? ++s->next_value : 0;
    c->call_ns = s->w.now_ns;
    int target = c->leader_guess;
    if (target <= 0 || target > s->node_count || !s->node[target].exists ||
        sim_chance(&s->w, 1, 10))
        target = 1 + (int)sim_rand_below(&s->w, (uint64_t)s->node_count);
    c->target = target;
    struct sim_msg_client *req = calloc(1, sizeof(*req));
    ASSERT(req != NULL);
    req->client = c->id;
    req->op = c->op;
    req->kind = c->kind;
    req->key = c->key;
    req->value = c->value;
    sim_schedule(&s->w, s->w.now_ns + sim_rand_range(&s->w, 100 * SPL_SIM_US, 2 * SPL_SIM_MS),
                 SIM_EV_CLIENT_ARRIVE, target, 0, req);
    sim_schedule(&s->w, s->w.now_ns + s->client_timeout_ns, SIM_EV_CLIENT_TIMEOUT, 0,
                 (uint64_t)c->id | (c->op << 8), NULL);
}

static void client_done(struct sim *s, struct sim_client *c)
{
    c->state = SIM_CLIENT_IDLE;
    /* Mostly back-to-back; sometimes a quiet spell, so that logs stay equal for a while
     * (elections then depend on timing alone). */
    uint64_t think = sim_chance(&s->w, 1, 30) ? sim_rand_range(&s->w, 100, 2000) * SPL_SIM_MS
                                               : sim_rand_below(&s->w, 5 * SPL_SIM_MS);
    sim_schedule(&s->w, s->w.now_ns + think, SIM_EV_CLIENT_NEXT, 0, (uint64_t)c->id, NULL);
}

/* The outcome of an op whose reply never came: a put may have happened (pending). */
static void client_record_unknown(struct sim *s, struct sim_client *c)
{
    spl_lin_invoke(&s->hist, (uint32_t)c->id, c->kind, c->key, c->value, c->call_ns);
    s->res->ops_unknown++;
}

static void on_client_reply(struct sim *s, struct sim_event *ev)
{
    struct sim_msg_client *r = ev->ptr;
    struct sim_client *c = &s->client[r->client];
    if (c->state == SIM_CLIENT_WAITING && c->op == r->op) {
        if (r->status == 0) {
            size_t i = spl_lin_invoke(&s->hist, (uint32_t)c->id, c->kind, c->key, c->value,
                                      c->call_ns);
            spl_lin_complete(&s->hist, i, r->value, s->w.now_ns);
            s->res->ops_ok++;
        } else {
            s->res->ops_failed++; /* a definite "not done": no effect, not recorded */
        }
        c->leader_guess = r->leader_hint;
        client_done(s, c);
    }
    free(r);
}

static void on_client_timeout(struct sim *s, struct sim_event *ev)
{
    struct sim_client *c = &s->client[ev->arg & 0xff];
    if (c->state != SIM_CLIENT_WAITING || c->op != ev->arg >> 8)
        return;
    SIM_TRACE(s, 0, "client c%d op%" PRIu64 " timed out (unknown)", c->id, c->op);
    client_record_unknown(s, c);
    c->leader_guess = 0;
    client_done(s, c);
}

static void on_node_event(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = &s->node[ev->node];
    if (!n->up || ev->arg != n->incarnation)
        return;
    if (node_paused(s, n)) {
        sim_schedule(&s->w, n->paused_until_ns + (ev->kind == SIM_EV_TICK ? SPL_SIM_MS : 0),
                     ev->kind, ev->node, ev->arg, NULL);
        return;
    }
    catch_up_ticks(s, n);
    if (ev->kind == SIM_EV_SYNC_DONE)
        on_sync_done(s, n);
    if (n->up && ev->kind == SIM_EV_TICK)
        schedule_tick(s, n);
    if (n->up)
        sim_node_pump(s, n);
}

static void free_payload(struct sim_event *ev)
{
    if (ev->kind == SIM_EV_DELIVER)
        sim_packet_free(ev->ptr);
    else if (ev->kind != SIM_EV_REPORT)
        free(ev->ptr);
}

static void dispatch(struct sim *s, struct sim_event *ev)
{
    switch (ev->kind) {
    case SIM_EV_TICK:
    case SIM_EV_SYNC_DONE:
        on_node_event(s, ev);
        break;
    case SIM_EV_DELIVER:
        on_deliver(s, ev);
        break;
    case SIM_EV_CLIENT_NEXT:
        client_next(s, &s->client[ev->arg]);
        break;
    case SIM_EV_CLIENT_ARRIVE:
        on_client_arrive(s, ev);
        break;
    case SIM_EV_CLIENT_REPLY:
        on_client_reply(s, ev);
        break;
    case SIM_EV_CLIENT_TIMEOUT:
        on_client_timeout(s, ev);
        break;
    case SIM_EV_FAULT:
        sim_fault_fire(s);
        break;
    case SIM_EV_RESTART: {
        struct sim_node *n = &s->node[ev->node];
        if (n->exists && !n->up && n->incarnation == ev->arg)
            sim_node_start(s, n);
        break;
    }
    case SIM_EV_CONF_STEP:
        sim_conf_step(s);
        break;
    case SIM_EV_REPORT:
        on_report(s, ev);
        break;
    case SIM_EV_BOUNCE:
        sim_fault_bounce(s, ev->node, ev->arg);
        break;
    case SIM_EV_CAMPAIGN:
        sim_fault_campaign(s, ev->node);
        break;
    case SIM_EV_HEAL:
        sim_net_heal(&s->net);
        SIM_TRACE(s, 0, "network healed");
        break;
    default:
        ASSERT(!"unknown event kind");
    }
}

/* ---- one run ---- */

static void setup(struct sim *s)
{
    struct sim_world *w = &s->w;
    int voters = sim_chance(w, 1, 3) ? 5 : 3;
    s->node_count = SIM_NODES_MAX - 1;
    s->election_tick = (uint32_t)sim_rand_range(w, 8, 15);
    s->heartbeat_tick = (uint32_t)sim_rand_range(w, 1, 3);
    s->atomic_ready = s->opt.atomic_ready >= 0 ? s->opt.atomic_ready != 0 : sim_chance(w, 1, 2);
    s->pre_vote = sim_chance(w, 4, 5);
    if (s->opt.pre_vote >= 0)
        s->pre_vote = s->opt.pre_vote != 0;
    s->max_inflight = (uint32_t)sim_rand_range(w, 1, 16);
    s->max_msg_bytes = sim_chance(w, 1, 2) ? 64 : 4096;
    s->drift_ppm_max = 20000;
    s->client_timeout_ns = sim_rand_range(w, 100, 1000) * SPL_SIM_MS;
    s->write_pct = (uint32_t)sim_rand_range(w, 10, 70);
    struct sim_net_params np = {
        .drop_ppm = (uint32_t)sim_rand_below(w, 50000),
        .dup_ppm = (uint32_t)sim_rand_below(w, 20000),
        .late_ppm = (uint32_t)sim_rand_below(w, 5000),
        .flip_ppm = (uint32_t)sim_rand_below(w, 2000),
        .delay_min_ns = 50 * SPL_SIM_US,
        .delay_max_ns = sim_rand_range(w, 1, 8) * SPL_SIM_MS,
        .late_max_ns = 2 * SPL_SIM_SEC,
    };
    sim_net_init(&s->net, w, SIM_EV_DELIVER, &np);
    struct spl_raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (int id = 1; id <= voters; id++)
        conf.voters[conf.voter_count++] = (uint64_t)id;
    SIM_TRACE(s, 0, "seed 0x%016" PRIx64 ": %d voters, election %u hb %u prevote %d atomic %d "
              "writes %u%% inflight %u msg %" PRIu64 " B, drop %u dup %u late %u flip %u ppm, "
              "delay <= %" PRIu64 " ms", s->opt.seed, voters, s->election_tick,
              s->heartbeat_tick, s->pre_vote, s->atomic_ready, s->write_pct,
              s->max_inflight, s->max_msg_bytes, np.drop_ppm, np.dup_ppm, np.late_ppm,
              np.flip_ppm, np.delay_max_ns / SPL_SIM_MS);
    for (int id = 1; id <= voters; id++)
        node_create(s, id, &conf);
    s->client_count = (int)sim_rand_range(w, 2, SIM_CLIENTS_MAX);
    for (int c = 0; c < s->client_count; c++) {
        s->client[c].id = c;
        sim_schedule(w, sim_rand_below(w, 50 * SPL_SIM_MS), SIM_EV_CLIENT_NEXT, 0,
                     (uint64_t)c, NULL);
    }
    s->faults_on = true;
    sim_faults_start(s);
}

static void teardown(struct sim *s)
{
    sim_world_free(&s->w, free_payload);
    for (int id = 0; id < SIM_NODES_MAX; id++) {
        struct sim_node *n = &s->node[id];
        if (n->up) {
            spl_raft_destroy(n->raft);
            spl_raft_memstorage_destroy(&n->ms);
        }
        if (n->exists)
            sim_disk_free(&n->disk);
        sim_lv_free(&n->mem);
        sim_lv_free(&n->dur);
        free(n->effects);
    }
    spl_lin_history_free(&s->hist);
    free(s->decode_buf);
    sim_check_free(s->chk);
}

static void final_lincheck(struct sim *s)
{
    for (int c = 0; c < s->client_count; c++)
        if (s->client[c].state == SIM_CLIENT_WAITING)
            client_record_unknown(s, &s->client[c]);
    struct spl_lin_report rep;
    enum spl_lin_result r = spl_lin_check(s->hist.ops, s->hist.count, 20000000, &rep);
    s->res->lin_ops = s->hist.count;
    if (r == SPL_LIN_VIOLATION) {
        if (s->opt.trace) {
            fprintf(s->opt.out, "--- history of key %" PRIu64 " (value, [invoke, return] ns)\n",
                    rep.key);
            spl_lin_print_key(s->opt.out, s->hist.ops, s->hist.count, rep.key);
        }
        sim_fail(s, 25, "client history is not linearizable on key %" PRIu64 " (%zu ops)",
                 rep.key, rep.key_ops);
    } else if (r == SPL_LIN_GAVE_UP) {
        sim_fail(s, 25, "linearizability search gave up on key %" PRIu64 " (%zu ops)", rep.key,
                 rep.key_ops);
    }
}

bool sim_run(const struct sim_options *opt, struct sim_result *res)
{
    struct sim *s = calloc(1, sizeof(*s));
    ASSERT(s != NULL);
    memset(res, 0, sizeof(*res));
    s->opt = *opt;
    s->res = res;
    sim_world_init(&s->w, opt->seed, opt->verbose, opt->out);
    g_trace_sim = opt->trace ? s : NULL;
    g_current = s;
    spl_lin_history_init(&s->hist);
    s->chk = sim_check_new();
    s->decode_buf = calloc(SPL_RAFT_BATCH_ENTRIES_MAX, sizeof(s->decode_buf[0]));
    ASSERT(s->decode_buf != NULL);
    setup(s);
    uint64_t deadline_ns = UINT64_MAX;
    struct sim_event ev;
    while (!s->stop) {
        if (s->faults_on && s->w.steps >= opt->steps) {
            sim_faults_stop(s);
            deadline_ns = s->w.now_ns + 30 * SPL_SIM_SEC;
        }
        if (!s->faults_on && sim_liveness_done(s))
            break;
        if (s->w.steps > opt->steps + SIM_LIVENESS_STEPS_MAX || s->w.now_ns > deadline_ns) {
            char what[768];
            sim_liveness_describe(s, what, sizeof(what));
            sim_fail(s, 15, "no progress %s after faults stopped: %s",
                     s->w.now_ns > deadline_ns ? "within 30 s" : "in 1e6 events", what);
            break;
        }
        if (!sim_next(&s->w, &ev)) {
            sim_fail(s, 0, "the event queue ran dry");
            break;
        }
        dispatch(s, &ev);
    }
    if (!s->stop)
        final_lincheck(s);
    res->steps = s->w.steps;
    res->sim_ns = s->w.now_ns;
    if (s->stop && opt->trace) {
        sim_trace_dump(&s->w, opt->trace_lines);
        fprintf(opt->out, "VIOLATION of invariant %d (seed 0x%016" PRIx64 "): %s\n",
                res->invariant, opt->seed, res->what);
    }
    g_trace_sim = NULL;
    g_current = NULL;
    teardown(s);
    free(s);
    return !res->failed;
}
