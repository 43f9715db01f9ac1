/*
 * test_transport.c - the Raft transport: batching of messages into one Send per peer,
 * decoding with per-message checks, heartbeat coalescing between three in-process hosts
 * with many idle groups, and rejection (counted, harmless) of messages for unknown groups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raft.pb-c.h"
#include "raftnode/internal.h"
#include "raftnode/kvfsm.h"

/* ---- batches (no threads) ---- */

static void heartbeat(struct spl_raft_msg *m, uint64_t group)
{
    spl_raft_msg_init(m);
    m->type = SPL_RAFT_MSG_HEARTBEAT;
    m->group = group;
    m->from = 1;
    m->to = 2;
    m->term = 5;
    m->commit = 10 + group;
    m->context = 77;
}

struct seen {
    int count;
    uint64_t groups[256];
};

static void on_msg(void *arg, struct spl_raft_msg *m)
{
    struct seen *s = arg;
    assert_int_equal(m->type, SPL_RAFT_MSG_HEARTBEAT);
    assert_int_equal(m->commit, 10 + m->group);
    s->groups[s->count++] = m->group;
    spl_raft_msg_release(m);
}

static void test_batch_roundtrip(void **state)
{
    (void)state;
    struct spl__rn_outq *q = calloc(1, sizeof(*q));
    spl_iobuf_init(&q->att);
    for (uint64_t g = 1; g <= 100; g++) {
        struct spl_raft_msg m;
        heartbeat(&m, g);
        assert_false(spl__rn_outq_full(q, 64));
        assert_int_equal(spl__rn_outq_add(q, &m), 0);
    }
    assert_int_equal(q->count, 100); /* one batch: one RPC */
    assert_int_equal(q->track_count, 0); /* heartbeats are not reported on failure */
    struct seen s = {0};
    uint32_t bad;
    struct spl_iobuf att;
    spl_iobuf_init(&att);
    spl_iobuf_append_ref(&att, &q->att, 0, spl_iobuf_len(&q->att));
    assert_int_equal(spl__rn_batch_decode(&att, q->lens, q->count, on_msg, &s, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(s.count, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(s.groups[i], (uint64_t)i + 1);
    spl_iobuf_reset(&att);

    /* a flipped byte inside message 50: that one is dropped, the others arrive */
    uint64_t off = 0;
    for (int i = 0; i < 49; i++)
        off += q->lens[i];
    uint8_t *flat = malloc(spl_iobuf_len(&q->att));
    spl_iobuf_copy_out(&q->att, 0, flat, spl_iobuf_len(&q->att));
    flat[off + q->lens[49] / 2] ^= 0x10;
    spl_iobuf_append(&att, flat, spl_iobuf_len(&q->att));
    memset(&s, 0, sizeof(s));
    assert_int_equal(spl__rn_batch_decode(&att, q->lens, q->count, on_msg, &s, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(s.count, 99);
    spl_iobuf_reset(&att);

    /* lengths that do not add up: the whole batch is refused */
    spl_iobuf_append(&att, flat, spl_iobuf_len(&q->att) - 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(spl__rn_batch_decode(&att, q->lens, q->count, on_msg, &s, &bad), SPL_ECORRUPT);
    assert_int_equal(bad, 100);
    assert_int_equal(s.count, 0);
    spl_iobuf_reset(&att);
    free(flat);
    spl__rn_outq_reset(q);
    assert_int_equal(q->count, 0);
    free(q);
}

static void test_batch_limits(void **state)
{
    (void)state;
    struct spl__rn_outq *q = calloc(1, sizeof(*q));
    spl_iobuf_init(&q->att);
    struct spl_raft_msg m;
    for (uint32_t i = 0; i < SPL_RAFTNODE_BATCH_MSGS_MAX; i++) {
        heartbeat(&m, 1 + i % 200);
        assert_int_equal(spl__rn_outq_add(q, &m), 0);
    }
    assert_true(spl__rn_outq_full(q, 1));
    heartbeat(&m, 1);
    assert_int_equal(spl__rn_outq_add(q, &m), SPL_ETOOBIG);
    spl__rn_outq_reset(q);
    /* bytes: an append of 1 MiB entries fills the batch before 16 */
    static uint8_t big[1u << 20];
    struct spl_raft_entry e = {.term = 5, .index = 11, .type = SPL_RAFT_ENTRY_NORMAL};
    spl_iobuf_init(&e.data);
    spl_iobuf_append(&e.data, big, sizeof(big));
    int added = 0;
    for (int i = 0; i < 64; i++) {
        spl_raft_msg_init(&m);
        m.type = SPL_RAFT_MSG_APPEND;
        m.group = 9;
        m.from = 1;
        m.to = 2;
        m.term = 5;
        m.index = 10;
        m.log_term = 5;
        m.entry_count = 1;
        m.entries = &e;
        if (spl__rn_outq_full(q, sizeof(big) + 128))
            break;
        assert_int_equal(spl__rn_outq_add(q, &m), 0);
        added++;
    }
    assert_true(added >= 8 && added < 64);
    assert_int_equal(q->track_count, (uint32_t)added); /* appends are reported if lost */
    assert_true(spl_iobuf_len(&q->att) <= SPL_RAFTNODE_BATCH_BYTES_MAX);
    spl_iobuf_reset(&e.data);
    spl__rn_outq_reset(q);
    free(q);
}

/* ---- three hosts in this process ---- */

#define HOSTS 3
#define GROUPS 40

struct node {
    spl_rpc_runtime *rt;
    spl_rpc_server *srv;
    spl_raftnode_host *host;
    struct spl_metrics *reg;
    char addr[64];
};

static struct node N[HOSTS];
static char g_root[256];

static void hosts_start(uint32_t groups)
{
    snprintf(g_root, sizeof(g_root), "/tmp/rn-transport-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    for (int i = 0; i < HOSTS; i++) {
        struct node *n = &N[i];
        assert_int_equal(spl_rpc_runtime_create(NULL, &n->rt), 0);
        assert_int_equal(spl_rpc_server_create(n->rt, NULL, &n->srv), 0);
        n->reg = spl_metrics_new();
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/n%d", g_root, i + 1);
        struct spl_raftnode_opts o = {.node_id = (uint64_t)i + 1, .data_dir = dir, .rpc = n->rt,
                                      .server = n->srv, .metrics = n->reg, .tick_ms = 20,
                                      .election_ticks = 10, .log_segment_size = 1u << 20,
                                      .log_pool_files = 4, .log_sync_threads = 2};
        assert_int_equal(spl_raftnode_host_create(&o, &n->host), 0);
        assert_int_equal(spl_rpc_server_start(n->srv), 0);
        snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%u", spl_rpc_server_port(n->srv));
    }
    struct spl_raft_conf conf = {.voter_count = HOSTS};
    for (int i = 0; i < HOSTS; i++) {
        conf.voters[i] = (uint64_t)i + 1;
        for (int j = 0; j < HOSTS; j++)
            assert_int_equal(spl_raftnode_set_peer(N[i].host, (uint64_t)j + 1, N[j].addr), 0);
    }
    for (int i = 0; i < HOSTS; i++)
        for (uint64_t g = 1; g <= groups; g++) {
            struct spl_kvfsm *kv;
            assert_int_equal(spl_kvfsm_create(&kv), 0);
            struct spl_raftnode_group_opts go = {.group = g, .initial_conf = &conf,
                                                 .fsm = spl_kvfsm_fsm(kv)};
            assert_int_equal(spl_raftnode_group_create(N[i].host, &go), 0);
        }
}

static void hosts_stop(void)
{
    if (!g_root[0])
        return;
    for (int i = 0; i < HOSTS; i++) {
        spl_rpc_server_destroy(N[i].srv);
        spl_raftnode_host_destroy(N[i].host);
        spl_rpc_runtime_destroy(N[i].rt);
        spl_metrics_free(N[i].reg);
    }
    spl__rn_rmtree(g_root);
    g_root[0] = '\0';
    memset(N, 0, sizeof(N));
}

/* Runs after each test, also after a failed assertion: nothing is left behind. */
static int cleanup(void **state)
{
    (void)state;
    hosts_stop();
    return 0;
}

static bool all_led(uint32_t groups)
{
    for (uint64_t g = 1; g <= groups; g++) {
        struct spl_raftnode_leader_info li;
        assert_int_equal(spl_raftnode_leader(N[0].host, g, &li), 0);
        if (li.leader == 0)
            return false;
    }
    return true;
}

static void test_idle_heartbeats_coalesce(void **state)
{
    (void)state;
    hosts_start(GROUPS);
    for (int t = 0; t < 500 && !all_led(GROUPS); t++)
        spl_sleep_ns(10 * SPL_NS_PER_MS);
    assert_true(all_led(GROUPS));
    spl_sleep_ns(300 * SPL_NS_PER_MS); /* settle: elections, first commits */
    struct spl_raftnode_stats a[HOSTS], b[HOSTS];
    for (int i = 0; i < HOSTS; i++)
        spl_raftnode_stats(N[i].host, &a[i]);
    spl_sleep_ns(1000 * SPL_NS_PER_MS);
    uint64_t rpcs = 0, hbs = 0, ticks = 0;
    for (int i = 0; i < HOSTS; i++) {
        spl_raftnode_stats(N[i].host, &b[i]);
        rpcs += b[i].rpcs_sent - a[i].rpcs_sent;
        hbs += b[i].heartbeats_sent - a[i].heartbeats_sent;
        ticks += b[i].ticks - a[i].ticks;
        assert_int_equal(b[i].msgs_rejected, a[i].msgs_rejected); /* none once all exist */
    }
    print_message("idle %d groups x %d hosts, 1 s: %llu ticks, %llu heartbeat msgs in %llu RPCs\n",
                  GROUPS, HOSTS, (unsigned long long)ticks, (unsigned long long)hbs,
                  (unsigned long long)rpcs);
    /* every group heartbeats every tick (and is answered) ... */
    assert_true(hbs >= ticks * GROUPS * 2 / HOSTS);
    /* ... but a host sends at most a few RPCs per peer per tick, whatever the group count:
     * the heartbeats of a tick travel together, their answers too */
    assert_true(rpcs <= ticks * (HOSTS - 1) * 3);
    assert_true(hbs >= rpcs * 8);
    hosts_stop();
}

static const struct spl_rpc_method client_methods[] = {
    {"Send", &spline__raft_send_request__descriptor, &spline__raft_send_response__descriptor,
     NULL},
};
static const struct spl_rpc_service client_svc = {SPL_RPC_SERVICE_RAFT, "raft", client_methods, 1};

static void test_unknown_group_rejected(void **state)
{
    (void)state;
    hosts_start(1);
    struct spl__rn_outq *q = calloc(1, sizeof(*q));
    spl_iobuf_init(&q->att);
    struct spl_raft_msg m;
    for (uint64_t g = 998; g <= 1000; g++) {
        heartbeat(&m, g);
        m.from = 2;
        m.to = 1;
        assert_int_equal(spl__rn_outq_add(q, &m), 0);
    }
    heartbeat(&m, 999); /* twice: listed once */
    m.from = 2;
    m.to = 1;
    assert_int_equal(spl__rn_outq_add(q, &m), 0);
    spl_rpc_channel *ch;
    assert_int_equal(spl_rpc_channel_open(N[1].rt, N[0].addr, NULL, &ch), 0);
    Spline__RaftSendRequest req = SPLINE__RAFT_SEND_REQUEST__INIT;
    req.from_node = 2;
    req.to_node = 1;
    req.n_msg_len = q->count;
    req.msg_len = q->lens;
    struct spl_rpc_call_opts co = {.timeout_ms = 5000, .wait_for_ready = true};
    ProtobufCMessage *resp = NULL;
    assert_int_equal(
        spl_rpc_call_sync(ch, &client_svc, 0, &req.base, &q->att, &co, &resp, NULL, NULL), 0);
    const Spline__RaftSendResponse *r = (const Spline__RaftSendResponse *)resp;
    assert_int_equal(r->accepted, 0);
    assert_int_equal(r->rejected, 4);
    assert_int_equal(r->n_unknown_groups, 3);
    protobuf_c_message_free_unpacked(resp, NULL);
    /* addressed to another node: refused as a whole */
    spl__rn_outq_reset(q);
    heartbeat(&m, 1);
    m.from = 2;
    m.to = 1;
    assert_int_equal(spl__rn_outq_add(q, &m), 0);
    req.to_node = 3;
    req.n_msg_len = q->count;
    assert_int_equal(
        spl_rpc_call_sync(ch, &client_svc, 0, &req.base, &q->att, &co, &resp, NULL, NULL), 0);
    r = (const Spline__RaftSendResponse *)resp;
    assert_int_equal(r->rejected, 1);
    protobuf_c_message_free_unpacked(resp, NULL);
    struct spl_raftnode_stats st;
    spl_raftnode_stats(N[0].host, &st);
    assert_true(st.msgs_rejected >= 5);
    spl_rpc_channel_close(ch);
    spl__rn_outq_reset(q);
    free(q);
    /* the host still works: the group elects a leader */
    for (int t = 0; t < 500 && !all_led(1); t++)
        spl_sleep_ns(10 * SPL_NS_PER_MS);
    assert_true(all_led(1));
    hosts_stop();
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_roundtrip),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test_teardown(test_idle_heartbeats_coalesce, cleanup),
        cmocka_unit_test_teardown(test_unknown_group_rejected, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
