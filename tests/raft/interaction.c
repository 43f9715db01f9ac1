/*
 * interaction.c - data-driven golden tests of the Raft core (etcd's datadriven style).
 *
 * Usage: interaction FILE...   (SPL_REWRITE=1 rewrites each FILE with the actual output)
 *
 * A file is a list of cases: command lines up to "----", then the expected output up to
 * the first blank line. Commands drive an in-process cluster of spl_raft nodes on
 * memstorage; the output (readies, messages, log lines of the core, status) is compared
 * verbatim. Every message sent goes through spl_raft_msg_encode/decode on its way, and
 * after every ready the harness checks applied entries are contiguous and agree across
 * nodes (RAFT-INVARIANTS 7). Commands (ids are node ids):
 *
 *   add-nodes N [voters=1,2,3] [learners=4] [pre-vote=B] [check-quorum=B] [lease=B]
 *               [election=N] [heartbeat=N] [inflight=N] [inflight-bytes=N] [max-size=N]
 *               [max-uncommitted=N]      new nodes; the first add bootstraps all of them
 *                                        as voters unless voters=/learners= say otherwise;
 *                                        later adds start empty (new members)
 *   campaign ID | propose ID DATA [count=N] | read-index ID CTX | lease ID
 *   propose-conf-change ID add-voter=N|add-learner=N|promote=N|remove=N
 *   transfer-leadership from=A to=B
 *   tick ID [N] | tick-heartbeat ID | tick-election ID
 *   stabilize [ID...] | process-ready ID... | deliver-msgs ID... | drop-msgs ID...
 *   partition A,B C,D,E | isolate ID | heal
 *   status ID | raft-log ID | raft-state | check-applied
 *   compact ID              snapshot the state machine at its applied index, drop the log
 *   report-snapshot ID TO ok|fail | report-unreachable ID TO | restart ID [applied=N]
 *                           applied=N: the node also lost its state machine after N and
 *                           the commit hint after N (commit is persisted lazily)
 *   crash-after-persist ID  persist the next ready, then crash (no send, no apply) and
 *                           restart from storage
 *   step ID type=T from=F [term= index= log-term= commit= reject= hint= context= group=
 *           to= entries=TERM/INDEX,... entry-count=N snap=INDEX/TERM]   a hand-made
 *                                message (entry-count: N empty entries of its term)
 *   garbage ID seed=N count=N    random bytes and random messages into the node
 *   log-level debug|info|warn|error|none
 *   quiet [on|off]               discard the output of the following commands (setup)
 *   chaos seed=N steps=N         a seeded random schedule (ticks, readies, reordered,
 *                                dropped and duplicated deliveries, proposals, partitions,
 *                                restarts, compactions, conf changes, transfers, reads)
 *                                checking election safety, commit monotonicity and
 *                                applied-entry agreement throughout, then convergence
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/memstorage.h"
#include "raft/raft.h"

#define NODES_MAX 16
#define ARGS_MAX 32
#define APPLIED_MAX 100000
#define STABILIZE_ROUNDS_MAX 20000

/* ---- output buffer ---- */

static char *out_buf;
static size_t out_len, out_cap;
static int log_level = SPL_LOG_INFO; /* SPL_LOG_FATAL + 1: none */

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(out_buf + out_len, out_cap - out_len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < out_cap - out_len) {
            out_len += (size_t)n;
            return;
        }
        out_cap = out_cap ? out_cap * 2 + (size_t)n : 4096 + (size_t)n;
        out_buf = realloc(out_buf, out_cap);
        if (!out_buf)
            abort();
    }
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "interaction: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n--- output so far ---\n%.*s\n", (int)out_len, out_buf ? out_buf : "");
    va_end(ap);
    exit(1);
}

/* ---- the cluster ---- */

struct inbox {
    struct spl_raft_msg *v;
    uint32_t count;
    uint32_t cap;
};

struct node {
    uint64_t id;
    struct spl_raft *r;
    struct spl_raft_memstorage ms;
    struct spl_rand rand;
    struct spl_raft_config cfg;
    struct inbox inbox;
    char **applied; /* applied[i] = data of normal entry applied at index i+1, or NULL */
    uint64_t applied_index;
    struct spl_raft_conf conf; /* as of applied_index */
    uint64_t epoch;
    int group; /* partition group; 0 = none */
};

static struct node *nodes[NODES_MAX];
static uint32_t node_count;
static uint64_t group_id = 1;

static struct node *node_get(uint64_t id)
{
    for (uint32_t i = 0; i < node_count; i++)
        if (nodes[i]->id == id)
            return nodes[i];
    return NULL;
}

static struct node *node_must(uint64_t id)
{
    struct node *n = node_get(id);
    if (!n)
        fail("no node %llu", (unsigned long long)id);
    return n;
}

static void log_cb(void *ctx, enum spl_log_level level, const char *msg)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    (void)ctx;
    if ((int)level >= log_level)
        outf("%s %s\n", names[level], msg);
}

/* ---- formatting ---- */

static void fmt_ids(const uint64_t *ids, uint32_t n)
{
    outf("(");
    for (uint32_t i = 0; i < n; i++)
        outf("%s%llu", i ? " " : "", (unsigned long long)ids[i]);
    outf(")");
}

static void fmt_conf(const struct spl_raft_conf *c)
{
    outf("voters=");
    fmt_ids(c->voters, c->voter_count);
    if (c->learner_count) {
        outf(" learners=");
        fmt_ids(c->learners, c->learner_count);
    }
}

static char *iobuf_str(const struct spl_iobuf *b)
{
    size_t len = (size_t)spl_iobuf_len(b);
    char *s = malloc(len + 1);
    if (!s)
        abort();
    spl_iobuf_copy_out(b, 0, s, len);
    s[len] = 0;
    return s;
}

static void fmt_data(const struct spl_iobuf *b)
{
    char *s = iobuf_str(b);
    size_t len = (size_t)spl_iobuf_len(b);
    outf("\"");
    for (size_t i = 0; i < len && i < 40; i++)
        outf(isprint((unsigned char)s[i]) && s[i] != '"' ? "%c" : "\\x%02x", (unsigned char)s[i]);
    outf(len > 40 ? "...\"" : "\"");
    free(s);
}

static void fmt_entry(const struct spl_raft_entry *e)
{
    outf("%llu/%llu ", (unsigned long long)e->term, (unsigned long long)e->index);
    if (e->type == SPL_RAFT_ENTRY_CONF) {
        struct spl_raft_conf_change cc;
        int rc = spl_raft_conf_change_decode(&e->data, &cc);
        if (rc != 0) {
            outf("EntryConf <%s>", spl_errname(rc));
            return;
        }
        outf("EntryConf %s", spl_raft_conf_op_name(cc.op));
        if (cc.node_id)
            outf(" %llu", (unsigned long long)cc.node_id);
        outf(" ");
        fmt_conf(&cc.conf);
        return;
    }
    outf("EntryNormal ");
    fmt_data(&e->data);
}

static void fmt_msg(const struct spl_raft_msg *m)
{
    outf("%llu->%llu Msg%s Term:%llu Log:%llu/%llu", (unsigned long long)m->from,
         (unsigned long long)m->to, spl_raft_msg_type_name(m->type), (unsigned long long)m->term,
         (unsigned long long)m->log_term, (unsigned long long)m->index);
    if (m->type == SPL_RAFT_MSG_APPEND || m->type == SPL_RAFT_MSG_HEARTBEAT)
        outf(" Commit:%llu", (unsigned long long)m->commit);
    if (m->reject)
        outf(" Rejected (Hint: %llu)", (unsigned long long)m->reject_hint);
    if (m->context)
        outf(" Context:%llu", (unsigned long long)m->context);
    if (m->entry_count) {
        outf(" Entries:[");
        for (uint32_t i = 0; i < m->entry_count; i++) {
            outf(i ? ", " : "");
            fmt_entry(&m->entries[i]);
        }
        outf("]");
    }
    if (m->type == SPL_RAFT_MSG_SNAPSHOT) {
        outf(" Snapshot: Index:%llu Term:%llu Epoch:%llu ",
             (unsigned long long)m->snapshot.index, (unsigned long long)m->snapshot.term,
             (unsigned long long)m->snapshot.epoch);
        fmt_conf(&m->snapshot.conf);
    }
    outf("\n");
}

/* ---- mailboxes ---- */

/* Encode, decode and queue m at its recipient (a deep copy with references). */
static void mail(const struct spl_raft_msg *m)
{
    struct node *to = node_get(m->to);
    if (!to)
        return;
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    int rc = spl_raft_msg_encode(m, &wire);
    if (rc != 0)
        fail("encode: %s", spl_errname(rc));
    uint32_t cap = m->entry_count ? m->entry_count : 1;
    struct spl_raft_entry *ents = calloc(cap, sizeof(*ents));
    struct inbox *in = &to->inbox;
    if (in->count == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 16;
        in->v = realloc(in->v, in->cap * sizeof(*in->v));
    }
    if (!ents || !in->v)
        abort();
    rc = spl_raft_msg_decode(&wire, &in->v[in->count], ents, cap);
    if (rc != 0)
        fail("decode of an encoded message: %s", spl_errname(rc));
    in->count++;
    spl_iobuf_reset(&wire);
}

static void msg_free(struct spl_raft_msg *m)
{
    spl_raft_msg_release(m);
    free(m->entries);
}

static void inbox_clear(struct node *n)
{
    for (uint32_t i = 0; i < n->inbox.count; i++)
        msg_free(&n->inbox.v[i]);
    n->inbox.count = 0;
}

static bool partitioned(uint64_t a, uint64_t b)
{
    struct node *x = node_get(a), *y = node_get(b);
    return x && y && x->group != y->group;
}

/* ---- nodes ---- */

static void node_start(struct node *n)
{
    n->cfg.storage = &n->ms.storage;
    n->cfg.rand = &n->rand;
    n->cfg.applied = n->applied_index;
    int rc = spl_raft_init(&n->cfg, &n->r);
    if (rc != 0)
        fail("spl_raft_init(%llu): %s", (unsigned long long)n->id, spl_errname(rc));
}

static void node_stop(struct node *n)
{
    spl_raft_destroy(n->r);
    n->r = NULL;
}

/* Restore the harness state machine from snapshot data "a,b,c" (one item per index). */
static void sm_restore(struct node *n, const struct spl_raft_snapshot_meta *s)
{
    for (uint64_t i = 0; i < n->applied_index; i++)
        free(n->applied[i]);
    char *data = iobuf_str(&s->data);
    char *save = NULL, *tok = strtok_r(data, ",", &save);
    for (uint64_t i = 0; i < s->index; i++) {
        n->applied[i] = tok && strcmp(tok, "-") != 0 ? strdup(tok) : NULL;
        tok = tok ? strtok_r(NULL, ",", &save) : NULL;
    }
    free(data);
    n->applied_index = s->index;
    n->conf = s->conf;
    n->epoch = s->epoch;
}

/* A crash lost what n applied after `applied` and the commit hint after it. */
static void forget_after(struct node *n, uint64_t applied)
{
    if (applied < n->ms.snap.index || applied > n->applied_index)
        fail("restart applied=%llu: outside [snapshot %llu, applied %llu]",
             (unsigned long long)applied, (unsigned long long)n->ms.snap.index,
             (unsigned long long)n->applied_index);
    for (uint64_t i = applied; i < n->applied_index; i++) {
        free(n->applied[i]);
        n->applied[i] = NULL;
    }
    n->applied_index = applied;
    if (n->ms.hs.commit > applied)
        n->ms.hs.commit = applied;
}

static void sm_apply(struct node *n, const struct spl_raft_entry *e)
{
    if (e->index != n->applied_index + 1)
        fail("node %llu applied %llu after %llu (RAFT-INVARIANTS 7)",
             (unsigned long long)n->id, (unsigned long long)e->index,
             (unsigned long long)n->applied_index);
    if (e->index > APPLIED_MAX)
        fail("too many entries for the harness");
    n->applied[e->index - 1] = e->type == SPL_RAFT_ENTRY_NORMAL ? iobuf_str(&e->data) : NULL;
    n->applied_index = e->index;
}

/* Forged messages (garbage) can legitimately make replicas disagree: a message from the
 * "leader" of the current term is indistinguishable from the real one. */
static bool agreement_off;

/* Index-by-index agreement of every pair of state machines (RAFT-INVARIANTS 7). */
static void check_agreement(void)
{
    if (agreement_off)
        return;
    for (uint32_t a = 0; a < node_count; a++)
        for (uint32_t b = a + 1; b < node_count; b++) {
            struct node *x = nodes[a], *y = nodes[b];
            uint64_t n = x->applied_index < y->applied_index ? x->applied_index
                                                             : y->applied_index;
            for (uint64_t i = 0; i < n; i++) {
                const char *p = x->applied[i], *q = y->applied[i];
                if ((p == NULL) != (q == NULL) || (p && strcmp(p, q) != 0))
                    fail("nodes %llu and %llu applied different entries at %llu",
                         (unsigned long long)x->id, (unsigned long long)y->id,
                         (unsigned long long)(i + 1));
            }
        }
}

static void print_ready(const struct spl_raft_ready *rd)
{
    outf("Ready MustSync=%s:\n", rd->must_sync ? "true" : "false");
    if (rd->has_soft_state)
        outf("Lead:%llu State:%s\n", (unsigned long long)rd->soft_state.leader,
             spl_raft_role_name(rd->soft_state.role));
    if (rd->has_hard_state)
        outf("HardState Term:%llu Vote:%llu Commit:%llu\n",
             (unsigned long long)rd->hard_state.term, (unsigned long long)rd->hard_state.vote,
             (unsigned long long)rd->hard_state.commit);
    if (rd->snapshot) {
        outf("Snapshot Index:%llu Term:%llu Epoch:%llu ", (unsigned long long)rd->snapshot->index,
             (unsigned long long)rd->snapshot->term, (unsigned long long)rd->snapshot->epoch);
        fmt_conf(&rd->snapshot->conf);
        outf("\n");
    }
    if (rd->entry_count)
        outf("Entries:\n");
    for (uint32_t i = 0; i < rd->entry_count; i++) {
        fmt_entry(&rd->entries[i]);
        outf("\n");
    }
    if (rd->msg_early_count)
        outf("Messages (before persist):\n");
    for (uint32_t i = 0; i < rd->msg_early_count; i++)
        fmt_msg(&rd->msgs_early[i]);
    if (rd->msg_count)
        outf("Messages:\n");
    for (uint32_t i = 0; i < rd->msg_count; i++)
        fmt_msg(&rd->msgs[i]);
    if (rd->committed_count)
        outf("CommittedEntries:\n");
    for (uint32_t i = 0; i < rd->committed_count; i++) {
        fmt_entry(&rd->committed[i]);
        outf("\n");
    }
    for (uint32_t i = 0; i < rd->read_state_count; i++)
        outf("ReadState ctx=%llu index=%llu\n", (unsigned long long)rd->read_states[i].context,
             (unsigned long long)rd->read_states[i].index);
    if (rd->conf_changed) {
        outf("Conf ");
        fmt_conf(&rd->conf);
        outf(" Epoch:%llu\n", (unsigned long long)rd->epoch);
    }
}

/* Persist one ready of n, then crash: nothing is sent or applied, the node restarts
 * from its storage (with the harness state machine's applied index). */
static void crash_after_persist(struct node *n)
{
    struct spl_raft_ready rd;
    if (!spl_raft_has_ready(n->r))
        fail("crash-after-persist: no ready");
    outf("> %llu persisting a Ready, then crashing\n", (unsigned long long)n->id);
    spl_raft_ready(n->r, &rd);
    print_ready(&rd);
    if (rd.snapshot && spl_raft_memstorage_apply_snapshot(&n->ms, rd.snapshot) != 0)
        fail("apply_snapshot");
    if (spl_raft_memstorage_append(&n->ms, rd.entries, rd.entry_count) != 0)
        fail("append");
    if (rd.has_hard_state)
        spl_raft_memstorage_set_hard_state(&n->ms, &rd.hard_state);
    spl_raft_advance(n->r, &rd); /* releases the ready's memory; the node is dropped next */
    node_stop(n);
    inbox_clear(n);
    node_start(n);
}

/* Run one ready of n through the contract: persist, send, apply, advance. */
static bool process_ready(struct node *n)
{
    if (!spl_raft_has_ready(n->r))
        return false;
    struct spl_raft_ready rd;
    outf("> %llu handling Ready\n", (unsigned long long)n->id);
    spl_raft_ready(n->r, &rd);
    print_ready(&rd);
    if (rd.snapshot && spl_raft_memstorage_apply_snapshot(&n->ms, rd.snapshot) != 0)
        fail("apply_snapshot");
    if (spl_raft_memstorage_append(&n->ms, rd.entries, rd.entry_count) != 0)
        fail("append");
    if (rd.has_hard_state)
        spl_raft_memstorage_set_hard_state(&n->ms, &rd.hard_state);
    for (uint32_t i = 0; i < rd.msg_early_count; i++)
        mail(&rd.msgs_early[i]);
    for (uint32_t i = 0; i < rd.msg_count; i++)
        mail(&rd.msgs[i]);
    if (rd.snapshot)
        sm_restore(n, rd.snapshot);
    for (uint32_t i = 0; i < rd.committed_count; i++)
        sm_apply(n, &rd.committed[i]);
    n->conf = rd.conf;
    n->epoch = rd.epoch;
    spl_raft_advance(n->r, &rd);
    check_agreement();
    return true;
}

static bool deliver(struct node *n)
{
    if (n->inbox.count == 0)
        return false;
    outf("> %llu receiving messages\n", (unsigned long long)n->id);
    struct inbox in = n->inbox;
    memset(&n->inbox, 0, sizeof(n->inbox));
    for (uint32_t i = 0; i < in.count; i++) {
        struct spl_raft_msg *m = &in.v[i];
        fmt_msg(m);
        if (partitioned(m->from, m->to)) {
            outf("  dropped (partition)\n");
        } else {
            int rc = spl_raft_step(n->r, m);
            if (rc != 0 && rc != SPL_ERAFT_STALE)
                outf("  step: %s\n", spl_errname(rc));
        }
        msg_free(m);
    }
    free(in.v);
    return true;
}

/* ---- argument parsing ---- */

struct args {
    int count;
    char *pos[ARGS_MAX]; /* positional (after the command) */
    int pos_count;
    char *key[ARGS_MAX];
    char *val[ARGS_MAX];
    int kv_count;
};

static void parse_args(char *line, char **cmd, struct args *a)
{
    memset(a, 0, sizeof(*a));
    char *save = NULL;
    *cmd = strtok_r(line, " \t", &save);
    for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(t, '=');
        if (a->kv_count >= ARGS_MAX || a->pos_count >= ARGS_MAX)
            fail("too many arguments");
        if (eq) {
            *eq = 0;
            a->key[a->kv_count] = t;
            a->val[a->kv_count++] = eq + 1;
        } else {
            a->pos[a->pos_count++] = t;
        }
    }
}

static const char *kv(const struct args *a, const char *key)
{
    for (int i = 0; i < a->kv_count; i++)
        if (strcmp(a->key[i], key) == 0)
            return a->val[i];
    return NULL;
}

static uint64_t num(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s)
        fail("not a number: '%s'", s);
    return v;
}

static uint64_t kv_num(const struct args *a, const char *key, uint64_t dflt)
{
    const char *v = kv(a, key);
    return v ? num(v) : dflt;
}

static bool kv_bool(const struct args *a, const char *key, bool dflt)
{
    const char *v = kv(a, key);
    return v ? strcmp(v, "true") == 0 : dflt;
}

static uint64_t pos_num(const struct args *a, int i)
{
    if (i >= a->pos_count)
        fail("missing argument %d", i + 1);
    return num(a->pos[i]);
}

static void parse_ids(const char *s, uint64_t *ids, uint32_t *n)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= SPL_RAFT_PEERS_MAX)
            fail("too many ids");
        ids[(*n)++] = num(t);
    }
}

/* ---- commands ---- */

static void cmd_add_nodes(const struct args *a)
{
    uint64_t count = pos_num(a, 0);
    struct spl_raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    bool boot = node_count == 0 || kv(a, "voters");
    if (kv(a, "voters"))
        parse_ids(kv(a, "voters"), conf.voters, &conf.voter_count);
    if (kv(a, "learners"))
        parse_ids(kv(a, "learners"), conf.learners, &conf.learner_count);
    uint64_t first_id = node_count + 1;
    if (node_count == 0 && !kv(a, "voters"))
        for (uint64_t i = 0; i < count; i++)
            conf.voters[conf.voter_count++] = first_id + i;
    for (uint64_t i = 0; i < count; i++) {
        if (node_count == NODES_MAX)
            fail("too many nodes");
        struct node *n = calloc(1, sizeof(*n));
        n->applied = calloc(APPLIED_MAX, sizeof(char *));
        if (!n || !n->applied)
            abort();
        n->id = first_id + i;
        spl_rand_seed(&n->rand, n->id);
        spl_raft_memstorage_init(&n->ms);
        if (boot && spl_raft_memstorage_bootstrap(&n->ms, &conf) != 0)
            fail("bad bootstrap configuration");
        n->conf = n->ms.snap.conf;
        n->cfg = (struct spl_raft_config){
            .id = n->id, .group = group_id,
            .election_tick = (uint32_t)kv_num(a, "election", 10),
            .heartbeat_tick = (uint32_t)kv_num(a, "heartbeat", 1),
            .pre_vote = kv_bool(a, "pre-vote", false),
            .check_quorum = kv_bool(a, "check-quorum", false),
            .lease = kv_bool(a, "lease", false),
            .max_inflight_msgs = (uint32_t)kv_num(a, "inflight", 256 > SPL_RAFT_INFLIGHT_MSGS_MAX
                                                                     ? SPL_RAFT_INFLIGHT_MSGS_MAX
                                                                     : 256),
            .max_inflight_bytes = kv_num(a, "inflight-bytes", 0),
            .max_size_per_msg = kv_num(a, "max-size", 0),
            .max_uncommitted_bytes = kv_num(a, "max-uncommitted", 0),
            .log_fn = log_cb};
        nodes[node_count++] = n;
        outf("INFO %llu added: ", (unsigned long long)n->id);
        fmt_conf(&n->conf);
        outf("\n");
        node_start(n);
    }
}

static void print_rc(const char *what, int rc)
{
    if (rc != 0)
        outf("%s: %s\n", what, spl_errname(rc));
}

static void cmd_propose(const struct args *a)
{
    struct node *n = node_must(pos_num(a, 0));
    if (a->pos_count < 2)
        fail("propose ID DATA");
    uint64_t count = kv_num(a, "count", 1);
    for (uint64_t i = 0; i < count; i++) {
        char data[256];
        if (count > 1)
            snprintf(data, sizeof(data), "%s%llu", a->pos[1], (unsigned long long)i);
        else
            snprintf(data, sizeof(data), "%s", a->pos[1]);
        struct spl_iobuf b;
        spl_iobuf_init(&b);
        if (spl_iobuf_append(&b, data, strlen(data)) != 0)
            abort();
        int rc = spl_raft_propose(n->r, &b, NULL, NULL);
        print_rc("propose", rc);
        spl_iobuf_reset(&b);
    }
}

static void cmd_conf_change(const struct args *a)
{
    struct node *n = node_must(pos_num(a, 0));
    if (a->kv_count != 1)
        fail("propose-conf-change ID op=NODE");
    int op = 0;
#define XX(name, code, str)                                                              \
    if (strcmp(a->key[0], str) == 0)                                                     \
        op = code;
    SPL_RAFT_CONF_OPS(XX)
#undef XX
    uint64_t index = 0;
    int rc = spl_raft_propose_conf_change(n->r, (enum spl_raft_conf_op)op, num(a->val[0]), &index,
                                          NULL);
    print_rc("propose-conf-change", rc);
}

static bool conf_same(const struct spl_raft_conf *a, const struct spl_raft_conf *b)
{
    return a->voter_count == b->voter_count && a->learner_count == b->learner_count &&
           memcmp(a->voters, b->voters, a->voter_count * sizeof(a->voters[0])) == 0 &&
           memcmp(a->learners, b->learners, a->learner_count * sizeof(a->learners[0])) == 0;
}

static void print_status(struct node *n)
{
    struct spl_raft_status s;
    spl_raft_get_status(n->r, &s);
    outf("%llu: %s term=%llu vote=%llu lead=%llu commit=%llu applied=%llu log=[%llu,%llu] "
         "epoch=%llu ",
         (unsigned long long)s.id, spl_raft_role_name(s.role), (unsigned long long)s.term,
         (unsigned long long)s.vote, (unsigned long long)s.leader, (unsigned long long)s.commit,
         (unsigned long long)s.applied, (unsigned long long)s.first_index,
         (unsigned long long)s.last_index, (unsigned long long)s.epoch);
    fmt_conf(&s.conf);
    if (s.voting_conf_index && !conf_same(&s.conf, &s.voting_conf)) {
        outf(" voting@%llu: ", (unsigned long long)s.voting_conf_index);
        fmt_conf(&s.voting_conf);
    }
    if (s.lead_transferee)
        outf(" transferee=%llu", (unsigned long long)s.lead_transferee);
    outf("\n");
    for (uint32_t i = 0; i < s.peer_count; i++) {
        const struct spl_raft_peer_status *p = &s.peers[i];
        outf("  %llu: %s match=%llu next=%llu%s%s", (unsigned long long)p->id,
             spl_raft_progress_state_name(p->state), (unsigned long long)p->match,
             (unsigned long long)p->next, p->learner ? " learner" : "",
             p->recent_active ? "" : " inactive");
        if (p->inflight)
            outf(" inflight=%u", p->inflight);
        if (p->pending_snapshot)
            outf(" pending-snap=%llu", (unsigned long long)p->pending_snapshot);
        outf("\n");
    }
}

static void cmd_raft_log(struct node *n)
{
    struct spl_raft_memstorage *ms = &n->ms;
    if (ms->entry_count == 0)
        outf("log is empty: first index=%llu, last index=%llu\n",
             (unsigned long long)spl_raft_memstorage_first_index(ms),
             (unsigned long long)spl_raft_memstorage_last_index(ms));
    for (uint64_t i = 0; i < ms->entry_count; i++) {
        fmt_entry(&ms->entries[i]);
        outf("\n");
    }
}

static void cmd_compact(struct node *n)
{
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (uint64_t i = 0; i < n->applied_index; i++) {
        const char *item = n->applied[i] ? n->applied[i] : "-";
        size_t l = strlen(item);
        if (len + l + 2 > cap) {
            cap = (len + l + 2) * 2;
            data = realloc(data, cap);
        }
        memcpy(data + len, item, l);
        len += l;
        data[len++] = ',';
    }
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    if (len && spl_iobuf_append(&b, data, len) != 0)
        abort();
    free(data);
    int rc = spl_raft_memstorage_create_snapshot(&n->ms, n->applied_index, &n->conf, n->epoch, &b);
    spl_iobuf_reset(&b);
    if (rc == 0)
        rc = spl_raft_memstorage_compact(&n->ms, n->applied_index);
    print_rc("compact", rc);
    if (rc == 0)
        outf("%llu compacted to %llu (epoch %llu)\n", (unsigned long long)n->id,
             (unsigned long long)n->applied_index, (unsigned long long)n->epoch);
}

static void cmd_partition(const struct args *a)
{
    for (uint32_t i = 0; i < node_count; i++)
        nodes[i]->group = 0;
    for (int g = 0; g < a->pos_count; g++) {
        uint64_t ids[SPL_RAFT_PEERS_MAX];
        uint32_t n;
        parse_ids(a->pos[g], ids, &n);
        for (uint32_t i = 0; i < n; i++)
            node_must(ids[i])->group = g + 1;
    }
}

static void build_entries(const char *spec, struct spl_raft_msg *m)
{
    static struct spl_raft_entry ents[SPL_RAFT_BATCH_ENTRIES_MAX];
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    m->entries = ents;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *slash = strchr(t, '/');
        if (!slash)
            fail("entries=TERM/INDEX,...");
        *slash = 0;
        struct spl_raft_entry *e = &ents[m->entry_count++];
        *e = (struct spl_raft_entry){.term = num(t), .index = num(slash + 1)};
        spl_iobuf_init(&e->data);
    }
}

static void cmd_step(struct node *n, const struct args *a)
{
    struct spl_raft_msg m;
    spl_raft_msg_init(&m);
    const char *type = kv(a, "type");
    for (int t = 1; type && t <= 16; t++)
        if (strcmp(spl_raft_msg_type_name(t), type) == 0)
            m.type = (uint8_t)t;
    if (type && strcmp(type, "bogus") == 0)
        m.type = 77;
    m.group = kv_num(a, "group", group_id);
    m.from = kv_num(a, "from", 0);
    m.to = kv_num(a, "to", n->id);
    m.term = kv_num(a, "term", 0);
    m.index = kv_num(a, "index", 0);
    m.log_term = kv_num(a, "log-term", 0);
    m.commit = kv_num(a, "commit", 0);
    m.reject = kv_bool(a, "reject", false);
    m.reject_hint = kv_num(a, "hint", 0);
    m.context = kv_num(a, "context", 0);
    if (kv(a, "entries"))
        build_entries(kv(a, "entries"), &m);
    if (kv(a, "entry-count")) { /* that many entries of term log-term after index */
        static struct spl_raft_entry many[SPL_RAFT_BATCH_ENTRIES_MAX + 8];
        m.entry_count = (uint32_t)kv_num(a, "entry-count", 0);
        if (m.entry_count > SPL_ARRAY_SIZE(many))
            fail("entry-count too large");
        m.entries = many;
        for (uint32_t i = 0; i < m.entry_count; i++) {
            many[i] = (struct spl_raft_entry){.term = m.term, .index = m.index + 1 + i};
            spl_iobuf_init(&many[i].data);
        }
    }
    if (kv(a, "snap")) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", kv(a, "snap"));
        char *slash = strchr(buf, '/');
        if (!slash)
            fail("snap=INDEX/TERM");
        *slash = 0;
        m.snapshot.index = num(buf);
        m.snapshot.term = num(slash + 1);
        m.snapshot.conf = n->conf;
    }
    int rc = spl_raft_step(n->r, &m);
    outf("step: %s\n", spl_errname(rc));
}

/* Random bytes, truncated and bit-flipped encodings of plausible messages, all stepped
 * into node n (that decode to something). Prints only the tallies. */
static void cmd_garbage(struct node *n, const struct args *a)
{
    struct spl_rand rnd;
    spl_rand_seed(&rnd, kv_num(a, "seed", 1));
    agreement_off = true;
    uint64_t count = kv_num(a, "count", 100), decoded = 0, stepped_ok = 0;
    static struct spl_raft_entry ents[SPL_RAFT_BATCH_ENTRIES_MAX];
    for (uint64_t i = 0; i < count; i++) {
        struct spl_raft_msg m;
        spl_raft_msg_init(&m);
        m.type = (uint8_t)spl_rand_range(&rnd, 1, 10);
        m.group = spl_rand_chance(&rnd, 9, 10) ? group_id : spl_rand_u64(&rnd);
        m.from = spl_rand_range(&rnd, 0, node_count + 1);
        m.to = spl_rand_chance(&rnd, 9, 10) ? n->id : spl_rand_range(&rnd, 0, 9);
        m.term = spl_rand_range(&rnd, 0, 8);
        m.index = spl_rand_range(&rnd, 0, 30);
        m.log_term = spl_rand_range(&rnd, 0, 8);
        m.commit = spl_rand_range(&rnd, 0, 40);
        m.reject = spl_rand_chance(&rnd, 1, 4);
        m.reject_hint = spl_rand_range(&rnd, 0, 30);
        m.context = spl_rand_range(&rnd, 0, 5);
        struct spl_raft_entry src[4];
        if (m.type == SPL_RAFT_MSG_APPEND) {
            m.entry_count = (uint32_t)spl_rand_range(&rnd, 0, 4);
            m.entries = src;
            for (uint32_t j = 0; j < m.entry_count; j++) {
                src[j] = (struct spl_raft_entry){.term = m.log_term + spl_rand_below(&rnd, 2),
                                                 .index = m.index + 1 + j};
                spl_iobuf_init(&src[j].data);
            }
        }
        if (m.type == SPL_RAFT_MSG_SNAPSHOT) {
            m.snapshot.index = spl_rand_range(&rnd, 0, 30);
            m.snapshot.term = spl_rand_range(&rnd, 0, 8);
            m.snapshot.conf = n->conf;
        }
        struct spl_iobuf wire;
        spl_iobuf_init(&wire);
        if (spl_raft_msg_encode(&m, &wire) != 0)
            continue;
        uint8_t bytes[4096];
        size_t len = spl_iobuf_copy_out(&wire, 0, bytes, sizeof(bytes));
        spl_iobuf_reset(&wire);
        if (spl_rand_chance(&rnd, 1, 3) && len > 0)
            bytes[spl_rand_below(&rnd, len)] ^= (uint8_t)(1u << spl_rand_below(&rnd, 8));
        if (spl_rand_chance(&rnd, 1, 4))
            len = spl_rand_below(&rnd, len + 1);
        struct spl_raft_msg d;
        if (spl_raft_msg_decode_bytes(bytes, len, &d, ents, SPL_ARRAY_SIZE(ents)) != 0)
            continue;
        decoded++;
        int saved = log_level;
        log_level = SPL_LOG_FATAL + 1;
        stepped_ok += spl_raft_step(n->r, &d) == 0;
        log_level = saved;
        spl_raft_msg_release(&d);
    }
    outf("garbage: %llu sent, %llu decoded, %llu accepted\n", (unsigned long long)count,
         (unsigned long long)decoded, (unsigned long long)stepped_ok);
}

static void stabilize(const struct args *a)
{
    uint64_t only[NODES_MAX];
    uint32_t only_count = 0;
    for (int i = 0; i < a->pos_count && only_count < NODES_MAX; i++)
        only[only_count++] = num(a->pos[i]);
    for (int round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
        bool progress = false;
        for (int phase = 0; phase < 2; phase++)
            for (uint32_t i = 0; i < node_count; i++) {
                bool sel = only_count == 0;
                for (uint32_t j = 0; j < only_count; j++)
                    sel = sel || only[j] == nodes[i]->id;
                if (sel)
                    progress |= phase == 0 ? process_ready(nodes[i]) : deliver(nodes[i]);
            }
        if (!progress)
            return;
    }
    fail("stabilize did not converge in %d rounds", STABILIZE_ROUNDS_MAX);
}

static void print_status(struct node *n);

/* ---- chaos: a seeded random schedule with invariant checks ---- */

#define CHAOS_TERMS_MAX 100000

struct chaos_stats {
    uint64_t steps, delivered, dropped, duplicated, readies, proposals, conf_changes;
    uint64_t restarts, compactions, transfers, partitions, leaders;
};

static uint64_t chaos_leader_of_term[CHAOS_TERMS_MAX];
static uint64_t chaos_commit[NODES_MAX];

/* Election safety (RAFT-INVARIANTS 1) and commit monotonicity (8) over all nodes. */
static void chaos_check(struct chaos_stats *st)
{
    for (uint32_t i = 0; i < node_count; i++) {
        struct spl_raft_status s;
        spl_raft_get_status(nodes[i]->r, &s);
        if (s.commit < chaos_commit[i])
            fail("node %llu commit went back %llu -> %llu", (unsigned long long)s.id,
                 (unsigned long long)chaos_commit[i], (unsigned long long)s.commit);
        chaos_commit[i] = s.commit;
        if (s.role != SPL_RAFT_LEADER)
            continue;
        if (s.term >= CHAOS_TERMS_MAX)
            fail("term too large for the checker");
        uint64_t *l = &chaos_leader_of_term[s.term];
        if (*l == 0) {
            *l = s.id;
            st->leaders++;
        } else if (*l != s.id) {
            fail("two leaders in term %llu: %llu and %llu", (unsigned long long)s.term,
                 (unsigned long long)*l, (unsigned long long)s.id);
        }
    }
}

static struct node *chaos_leader(void)
{
    struct node *best = NULL;
    uint64_t best_term = 0;
    for (uint32_t i = 0; i < node_count; i++) {
        struct spl_raft_status s;
        spl_raft_get_status(nodes[i]->r, &s);
        if (s.role == SPL_RAFT_LEADER && s.term >= best_term) {
            best = nodes[i];
            best_term = s.term;
        }
    }
    return best;
}

/* Deliver one message of n's inbox (any position: reordering), maybe dropped or twice. */
static void chaos_deliver_one(struct node *n, struct spl_rand *rnd, struct chaos_stats *st)
{
    uint32_t i = (uint32_t)spl_rand_below(rnd, n->inbox.count);
    struct spl_raft_msg m = n->inbox.v[i];
    memmove(&n->inbox.v[i], &n->inbox.v[i + 1], (n->inbox.count - i - 1) * sizeof(m));
    n->inbox.count--;
    if (partitioned(m.from, m.to) || spl_rand_chance(rnd, 1, 20)) {
        st->dropped++;
    } else {
        int reps = spl_rand_chance(rnd, 1, 20) ? 2 : 1;
        st->duplicated += (uint64_t)reps - 1;
        for (int k = 0; k < reps; k++)
            spl_raft_step(n->r, &m);
        st->delivered++;
    }
    msg_free(&m);
}

static void chaos_partition(struct spl_rand *rnd, struct chaos_stats *st)
{
    st->partitions++;
    bool heal = spl_rand_chance(rnd, 1, 2);
    for (uint32_t i = 0; i < node_count; i++)
        nodes[i]->group = heal ? 0 : (int)spl_rand_below(rnd, 2);
}

/* A valid single-member change for a random node: add a non-member (mostly as a
 * learner), promote a learner, remove a member (keeping at least two voters). */
static void chaos_conf_change(struct spl_rand *rnd, struct chaos_stats *st)
{
    struct node *l = chaos_leader();
    if (!l)
        return;
    uint64_t id = spl_rand_range(rnd, 1, node_count);
    struct spl_raft_status s;
    spl_raft_get_status(l->r, &s);
    enum spl_raft_conf_op op;
    if (spl_raft_conf_is_learner(&s.conf, id))
        op = spl_rand_chance(rnd, 2, 3) ? SPL_RAFT_CONF_PROMOTE : SPL_RAFT_CONF_REMOVE;
    else if (spl_raft_conf_is_voter(&s.conf, id))
        op = SPL_RAFT_CONF_REMOVE;
    else
        op = spl_rand_chance(rnd, 4, 5) ? SPL_RAFT_CONF_ADD_LEARNER : SPL_RAFT_CONF_ADD_VOTER;
    if (op == SPL_RAFT_CONF_REMOVE && s.conf.voter_count <= 2 &&
        spl_raft_conf_is_voter(&s.conf, id))
        return; /* keep a group that can still make progress */
    st->conf_changes += spl_raft_propose_conf_change(l->r, op, id, NULL, NULL) == 0;
}

static void chaos_action(struct spl_rand *rnd, struct chaos_stats *st)
{
    struct node *n = nodes[spl_rand_below(rnd, node_count)];
    uint64_t dice = spl_rand_below(rnd, 1000);
    struct node *l;
    if (dice < 300) {
        spl_raft_tick(n->r);
    } else if (dice < 550) {
        st->readies += process_ready(n);
    } else if (dice < 850) {
        if (n->inbox.count > 0)
            chaos_deliver_one(n, rnd, st);
    } else if (dice < 930) {
        if ((l = chaos_leader()) != NULL) {
            char data[32];
            snprintf(data, sizeof(data), "p%llu", (unsigned long long)st->steps);
            struct spl_iobuf b;
            spl_iobuf_init(&b);
            if (spl_iobuf_append(&b, data, strlen(data)) != 0)
                abort();
            st->proposals += spl_raft_propose(l->r, &b, NULL, NULL) == 0;
            spl_iobuf_reset(&b);
        }
    } else if (dice < 945) {
        chaos_partition(rnd, st);
    } else if (dice < 955) {
        node_stop(n);
        inbox_clear(n);
        node_start(n);
        st->restarts++;
        /* commit is persisted lazily: a restart may forget the newest commit index */
        struct spl_raft_status s;
        spl_raft_get_status(n->r, &s);
        for (uint32_t i = 0; i < node_count; i++)
            if (nodes[i] == n)
                chaos_commit[i] = s.commit;
    } else if (dice < 965) {
        cmd_compact(n);
        st->compactions++;
    } else if (dice < 980) {
        chaos_conf_change(rnd, st);
    } else if (dice < 990) {
        if ((l = chaos_leader()) != NULL)
            st->transfers +=
                spl_raft_transfer_leader(l->r, spl_rand_range(rnd, 1, node_count)) == 0;
    } else {
        if ((l = chaos_leader()) != NULL)
            spl_raft_read_index(l->r, st->steps);
    }
}


/* After the faults stop: heal, then tick and stabilize until one leader's commit of its
 * term is applied everywhere in its configuration (RAFT-INVARIANTS 15). */
static uint64_t chaos_converge(struct chaos_stats *st)
{
    cmd_partition(&(struct args){0});
    for (uint64_t round = 0; round < 2000; round++) {
        for (uint32_t i = 0; i < node_count; i++)
            spl_raft_tick(nodes[i]->r);
        stabilize(&(struct args){0});
        chaos_check(st);
        struct node *l = chaos_leader();
        if (!l)
            continue;
        struct spl_raft_status s;
        spl_raft_get_status(l->r, &s);
        bool done = s.commit == s.last_index && s.applied == s.commit &&
                    spl_raft_conf_is_voter(&s.conf, s.id);
        for (uint32_t i = 0; i < s.peer_count && done; i++)
            done = node_must(s.peers[i].id)->applied_index == s.commit;
        if (done)
            return round;
    }
    out_len = 0;
    for (uint32_t i = 0; i < node_count; i++)
        print_status(nodes[i]);
    fail("chaos: no convergence after the faults stopped");
}

static void cmd_chaos(const struct args *a)
{
    struct spl_rand rnd;
    struct chaos_stats st;
    memset(&st, 0, sizeof(st));
    memset(chaos_leader_of_term, 0, sizeof(chaos_leader_of_term));
    memset(chaos_commit, 0, sizeof(chaos_commit));
    spl_rand_seed(&rnd, kv_num(a, "seed", 1));
    uint64_t steps = kv_num(a, "steps", 10000);
    size_t before = out_len;
    int saved = log_level;
    log_level = SPL_LOG_FATAL + 1;
    for (st.steps = 0; st.steps < steps; st.steps++) {
        chaos_action(&rnd, &st);
        out_len = before;
        chaos_check(&st);
    }
    uint64_t rounds = chaos_converge(&st);
    out_len = before;
    log_level = saved;
    struct spl_raft_status s;
    spl_raft_get_status(chaos_leader()->r, &s);
    outf("chaos: %llu steps, %llu readies, %llu delivered, %llu dropped, %llu duplicated\n",
         (unsigned long long)st.steps, (unsigned long long)st.readies,
         (unsigned long long)st.delivered, (unsigned long long)st.dropped,
         (unsigned long long)st.duplicated);
    outf("chaos: %llu leaders, %llu proposals, %llu conf changes, %llu transfers, "
         "%llu restarts, %llu compactions, %llu partitions\n",
         (unsigned long long)st.leaders, (unsigned long long)st.proposals,
         (unsigned long long)st.conf_changes, (unsigned long long)st.transfers,
         (unsigned long long)st.restarts, (unsigned long long)st.compactions,
         (unsigned long long)st.partitions);
    outf("chaos: converged in %llu rounds: leader %llu term %llu commit %llu epoch %llu ",
         (unsigned long long)rounds, (unsigned long long)s.id, (unsigned long long)s.term,
         (unsigned long long)s.commit, (unsigned long long)s.epoch);
    fmt_conf(&s.conf);
    outf("\n");
}


static void for_each_pos(const struct args *a, bool (*fn)(struct node *))
{
    for (int i = 0; i < a->pos_count; i++)
        fn(node_must(num(a->pos[i])));
}

static void tick_n(struct node *n, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++)
        spl_raft_tick(n->r);
}

static bool drop_msgs(struct node *n)
{
    inbox_clear(n);
    return true;
}

static void run_cmd_nodes(const char *cmd, const struct args *a);

static bool quiet;

static void run_cmd_top(char *cmd, const struct args *a);

static void run_cmd(char *line)
{
    char *cmd;
    struct args a;
    size_t before = out_len;
    parse_args(line, &cmd, &a);
    if (!cmd)
        return;
    if (strcmp(cmd, "quiet") == 0) {
        quiet = a.pos_count == 0 || strcmp(a.pos[0], "off") != 0;
        return;
    }
    run_cmd_top(cmd, &a);
    if (quiet)
        out_len = before;
}

static void run_cmd_top(char *cmd, const struct args *ap)
{
    const struct args a = *ap;
    if (strcmp(cmd, "add-nodes") == 0)
        cmd_add_nodes(&a);
    else if (strcmp(cmd, "propose") == 0)
        cmd_propose(&a);
    else if (strcmp(cmd, "propose-conf-change") == 0)
        cmd_conf_change(&a);
    else if (strcmp(cmd, "stabilize") == 0)
        stabilize(&a);
    else if (strcmp(cmd, "process-ready") == 0)
        for_each_pos(&a, process_ready);
    else if (strcmp(cmd, "deliver-msgs") == 0)
        for_each_pos(&a, deliver);
    else if (strcmp(cmd, "drop-msgs") == 0)
        for_each_pos(&a, drop_msgs);
    else if (strcmp(cmd, "partition") == 0)
        cmd_partition(&a);
    else if (strcmp(cmd, "heal") == 0)
        cmd_partition(&(struct args){0});
    else if (strcmp(cmd, "raft-state") == 0)
        for (uint32_t i = 0; i < node_count; i++)
            print_status(nodes[i]);
    else if (strcmp(cmd, "check-applied") == 0) {
        check_agreement();
        for (uint32_t i = 0; i < node_count; i++)
            outf("%llu: applied=%llu epoch=%llu\n", (unsigned long long)nodes[i]->id,
                 (unsigned long long)nodes[i]->applied_index, (unsigned long long)nodes[i]->epoch);
    } else if (strcmp(cmd, "chaos") == 0) {
        cmd_chaos(&a);
    } else if (strcmp(cmd, "log-level") == 0) {
        const char *l = a.pos_count ? a.pos[0] : "info";
        enum spl_log_level lv;
        log_level = strcmp(l, "none") == 0 ? SPL_LOG_FATAL + 1
                    : spl_log_parse_level(l, &lv) == 0 ? (int)lv
                                                       : (fail("bad level %s", l), 0);
    } else if (strcmp(cmd, "transfer-leadership") == 0) {
        struct node *n = node_must(kv_num(&a, "from", 0));
        print_rc("transfer-leadership", spl_raft_transfer_leader(n->r, kv_num(&a, "to", 0)));
    } else {
        run_cmd_nodes(cmd, &a);
    }
}

/* Commands whose first argument is a node id. */
static void run_cmd_nodes(const char *cmd, const struct args *a)
{
    struct node *n = node_must(pos_num(a, 0));
    if (strcmp(cmd, "campaign") == 0)
        print_rc("campaign", spl_raft_campaign(n->r));
    else if (strcmp(cmd, "tick") == 0)
        tick_n(n, a->pos_count > 1 ? pos_num(a, 1) : 1);
    else if (strcmp(cmd, "tick-heartbeat") == 0)
        tick_n(n, n->cfg.heartbeat_tick);
    else if (strcmp(cmd, "tick-election") == 0)
        tick_n(n, n->cfg.election_tick);
    else if (strcmp(cmd, "isolate") == 0) {
        for (uint32_t i = 0; i < node_count; i++)
            nodes[i]->group = nodes[i] == n ? 2 : 1;
    } else if (strcmp(cmd, "status") == 0)
        print_status(n);
    else if (strcmp(cmd, "raft-log") == 0)
        cmd_raft_log(n);
    else if (strcmp(cmd, "compact") == 0)
        cmd_compact(n);
    else if (strcmp(cmd, "read-index") == 0)
        print_rc("read-index", spl_raft_read_index(n->r, pos_num(a, 1)));
    else if (strcmp(cmd, "lease") == 0)
        outf("lease %s\n", spl_raft_lease_valid(n->r) ? "valid" : "invalid");
    else if (strcmp(cmd, "report-snapshot") == 0)
        spl_raft_report_snapshot(n->r, pos_num(a, 1),
                                 a->pos_count > 2 && strcmp(a->pos[2], "ok") == 0);
    else if (strcmp(cmd, "report-unreachable") == 0)
        spl_raft_report_unreachable(n->r, pos_num(a, 1));
    else if (strcmp(cmd, "restart") == 0) {
        node_stop(n);
        inbox_clear(n);
        if (kv(a, "applied"))
            forget_after(n, num(kv(a, "applied")));
        node_start(n);
        if (kv(a, "applied")) {
            struct spl_raft_status s;
            spl_raft_get_status(n->r, &s);
            n->conf = s.conf;
            n->epoch = s.epoch;
        }
    } else if (strcmp(cmd, "step") == 0)
        cmd_step(n, a);
    else if (strcmp(cmd, "crash-after-persist") == 0)
        crash_after_persist(n);
    else if (strcmp(cmd, "garbage") == 0)
        cmd_garbage(n, a);
    else
        fail("unknown command '%s'", cmd);
}

static void reset_cluster(void)
{
    for (uint32_t i = 0; i < node_count; i++) {
        struct node *n = nodes[i];
        node_stop(n);
        inbox_clear(n);
        free(n->inbox.v);
        spl_raft_memstorage_destroy(&n->ms);
        for (uint64_t j = 0; j < n->applied_index; j++)
            free(n->applied[j]);
        free(n->applied);
        free(n);
    }
    node_count = 0;
    log_level = SPL_LOG_INFO;
    quiet = false;
    agreement_off = false;
}

/* ---- the file driver ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail("open %s: %s", path, spl_strerror(-errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (!s || fread(s, 1, (size_t)len, f) != (size_t)len)
        fail("read %s", path);
    s[len] = 0;
    fclose(f);
    return s;
}

/* Run one file; returns the number of failing cases (0 in rewrite mode). */
static int run_file(const char *path, bool rewrite, int *cases)
{
    char *text = read_file(path), *p = text;
    char *expected_all = NULL;
    size_t rw_len = 0, rw_cap = 0;
    char *rw = NULL;
    int failures = 0, line_no = 1;
#define RW_APPEND(s, n)                                                                  \
    do {                                                                                 \
        if (rw_len + (n) + 1 > rw_cap) {                                                 \
            rw_cap = (rw_len + (n) + 1) * 2;                                             \
            rw = realloc(rw, rw_cap);                                                    \
        }                                                                                \
        memcpy(rw + rw_len, (s), (n));                                                   \
        rw_len += (n);                                                                   \
    } while (0)
    while (*p) {
        /* comments and blank lines before a case are kept as they are */
        char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l == 0 || p[0] == '#') {
            RW_APPEND(p, l + (eol ? 1 : 0));
            p += l + (eol ? 1 : 0);
            line_no++;
            continue;
        }
        int case_line = line_no;
        out_len = 0;
        /* commands */
        while (*p && strncmp(p, "----\n", 5) != 0) {
            eol = strchr(p, '\n');
            l = eol ? (size_t)(eol - p) : strlen(p);
            RW_APPEND(p, l + 1);
            rw[rw_len - 1] = '\n';
            char cmdline[1024];
            snprintf(cmdline, sizeof(cmdline), "%.*s", (int)l, p);
            run_cmd(cmdline);
            p += l + (eol ? 1 : 0);
            line_no++;
        }
        if (!*p)
            fail("%s:%d: missing ----", path, case_line);
        p += 5;
        line_no++;
        RW_APPEND("----\n", 5);
        /* expected output: up to a blank line or the end */
        char *exp_start = p;
        while (*p && *p != '\n') {
            eol = strchr(p, '\n');
            p = eol ? eol + 1 : p + strlen(p);
            line_no++;
        }
        size_t exp_len = (size_t)(p - exp_start);
        if (out_len == 0)
            outf("ok\n");
        (*cases)++;
        if (exp_len != out_len || memcmp(exp_start, out_buf, out_len) != 0) {
            if (!rewrite) {
                failures++;
                fprintf(stderr, "%s:%d: output differs\n--- expected ---\n%.*s"
                        "--- actual ---\n%.*s\n",
                        path, case_line, (int)exp_len, exp_start, (int)out_len, out_buf);
            }
        }
        RW_APPEND(out_buf, out_len);
    }
    if (rewrite) {
        FILE *f = fopen(path, "w");
        if (!f || fwrite(rw, 1, rw_len, f) != rw_len || fclose(f) != 0)
            fail("rewrite %s", path);
    }
    free(rw);
    free(text);
    free(expected_all);
    reset_cluster();
    return failures;
}

int main(int argc, char **argv)
{
    bool rewrite = getenv("SPL_REWRITE") && strcmp(getenv("SPL_REWRITE"), "1") == 0;
    int failures = 0, cases = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int c = 0;
        int f = run_file(argv[i], rewrite, &c);
        printf("%s: %d cases, %d failed%s\n", argv[i], c, f, rewrite ? " (rewritten)" : "");
        failures += f;
        cases += c;
    }
    printf("total: %d cases, %d failed\n", cases, failures);
    free(out_buf);
    return failures ? 1 : 0;
}
