/*
 * test_apply.c - parallel apply on a real host (single-voter groups): entries with
 * different keys apply concurrently on several apply threads, entries with the same key
 * in log order; the applied index never covers an entry whose apply has not finished;
 * every proposal completes once, with its entry's index and the FSM's result and reply.
 * Also: proposals to a group this node does not lead, a timed-out read, destroy with
 * pending work.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/internal.h"

#define KEYS 16
#define PROPOSALS 3000

struct tfsm {
    spl_raftnode_host *host;
    uint64_t group;
    pthread_mutex_t mu;
    uint64_t last[KEYS];      /* last index applied per key */
    atomic_int running, running_max;
    atomic_int order_violations, applied_violations;
    atomic_uint_fast64_t applies;
};

static uint64_t t_key(void *ctx, const struct spl_iobuf *data)
{
    (void)ctx;
    uint64_t k = 0;
    spl_iobuf_copy_out(data, 0, &k, sizeof(k));
    return k;
}

static void t_apply(void *ctx, struct spl_fsm_entry *e, uint32_t n)
{
    struct tfsm *f = ctx;
    int now = atomic_fetch_add(&f->running, 1) + 1;
    int max = atomic_load(&f->running_max);
    while (now > max && !atomic_compare_exchange_weak(&f->running_max, &max, now))
        ;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = e[i].key % KEYS;
        struct spl_raftnode_group_status st;
        assert_int_equal(spl_raftnode_group_status(f->host, f->group, &st), 0);
        if (st.applied >= e[i].index)
            atomic_fetch_add(&f->applied_violations, 1);
        pthread_mutex_lock(&f->mu);
        if (e[i].index <= f->last[k])
            atomic_fetch_add(&f->order_violations, 1);
        f->last[k] = e[i].index;
        pthread_mutex_unlock(&f->mu);
        if (e[i].index % 7 == 0)
            usleep(200); /* a slow apply: later keys overtake it */
        e[i].result = (int)(e[i].key % 3) - 1 == 0 ? 0 : 0;
        spl_iobuf_append(&e[i].reply, &e[i].index, sizeof(e[i].index));
        atomic_fetch_add(&f->applies, 1);
    }
    atomic_fetch_sub(&f->running, 1);
}

static int t_load(void *ctx, const char *dir, const struct spl_fsm_snapshot *snap)
{
    (void)ctx;
    (void)dir;
    (void)snap;
    return 0;
}

static int t_save(void *ctx, uint64_t index, struct spl_fsm_snapshot *out)
{
    (void)ctx;
    (void)index;
    (void)out;
    return 0;
}

static const struct spl_fsm_ops t_ops = {.load = t_load, .apply_key = t_key, .apply = t_apply,
                                         .save_snapshot = t_save};

struct done_state {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, failed;
    uint64_t last_index[KEYS];
    int order_bad, reply_bad;
};

struct prop_ctx {
    struct done_state *ds;
    uint64_t key;
};

static void on_done(const struct spl_raftnode_result *res, void *ctx)
{
    struct prop_ctx *pc = ctx;
    struct done_state *ds = pc->ds;
    pthread_mutex_lock(&ds->mu);
    if (res->status != 0) {
        ds->failed++;
    } else {
        uint64_t idx = 0;
        if (!res->reply || spl_iobuf_copy_out(res->reply, 0, &idx, 8) != 8 || idx != res->index)
            ds->reply_bad++;
        /* completions of one key come in log order: one apply thread runs them in order */
        if (res->index <= ds->last_index[pc->key])
            ds->order_bad++;
        ds->last_index[pc->key] = res->index;
    }
    ds->done++;
    pthread_cond_signal(&ds->cond);
    pthread_mutex_unlock(&ds->mu);
    free(pc);
}

static char g_root[256];
static spl_rpc_runtime *g_rt;
static spl_rpc_server *g_srv;
static spl_raftnode_host *g_host;
static struct spl_metrics *g_reg;

static void host_up(void)
{
    snprintf(g_root, sizeof(g_root), "/tmp/rn-apply-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    assert_int_equal(spl_rpc_runtime_create(NULL, &g_rt), 0);
    assert_int_equal(spl_rpc_server_create(g_rt, NULL, &g_srv), 0);
    struct spl_raftnode_opts o = {.node_id = 1,
                                  .data_dir = g_root,
                                  .rpc = g_rt,
                                  .server = g_srv,
                                  .metrics = (g_reg = spl_metrics_new()),
                                  .apply_threads = 4,
                                  .tick_ms = 10,
                                  .election_ticks = 5,
                                  .log_segment_size = 4u << 20,
                                  .log_pool_files = 4};
    assert_int_equal(spl_raftnode_host_create(&o, &g_host), 0);
    assert_int_equal(spl_rpc_server_start(g_srv), 0);
}

static void host_down(void)
{
    if (!g_root[0])
        return;
    spl_rpc_server_destroy(g_srv);
    spl_raftnode_host_destroy(g_host);
    spl_rpc_runtime_destroy(g_rt);
    spl_metrics_free(g_reg);
    spl__rn_rmtree(g_root);
    g_root[0] = '\0';
}

/* Runs after each test, also after a failed assertion: nothing is left behind. */
static int cleanup(void **state)
{
    (void)state;
    host_down();
    return 0;
}

static void wait_leader(uint64_t group)
{
    struct spl_raftnode_leader_info li = {0};
    for (int t = 0; t < 500 && li.leader != 1; t++) {
        assert_int_equal(spl_raftnode_leader(g_host, group, &li), 0);
        spl_sleep_ns(5 * SPL_NS_PER_MS);
    }
    assert_int_equal(li.leader, 1);
}

static void test_parallel_apply_order(void **state)
{
    (void)state;
    host_up();
    struct tfsm *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    f->host = g_host;
    f->group = 5;
    struct spl_raft_conf conf = {.voter_count = 1, .voters = {1}};
    struct spl_raftnode_group_opts go = {.group = 5, .initial_conf = &conf,
                                         .fsm = {.ops = &t_ops, .ctx = f}};
    assert_int_equal(spl_raftnode_group_create(g_host, &go), 0);
    wait_leader(5);
    struct done_state ds = {0};
    pthread_mutex_init(&ds.mu, NULL);
    pthread_cond_init(&ds.cond, NULL);
    for (int i = 0; i < PROPOSALS; i++) {
        struct prop_ctx *pc = malloc(sizeof(*pc));
        pc->ds = &ds;
        pc->key = (uint64_t)(i * 7919) % KEYS;
        struct spl_iobuf d;
        spl_iobuf_init(&d);
        spl_iobuf_append(&d, &pc->key, sizeof(pc->key));
        spl_iobuf_append(&d, "payload", 7);
        assert_int_equal(spl_raftnode_propose(g_host, 5, &d, 0, on_done, pc), 0);
        assert_int_equal(spl_iobuf_len(&d), 0); /* taken */
    }
    pthread_mutex_lock(&ds.mu);
    while (ds.done < PROPOSALS)
        pthread_cond_wait(&ds.cond, &ds.mu);
    pthread_mutex_unlock(&ds.mu);
    assert_int_equal(ds.failed, 0);
    assert_int_equal(ds.order_bad, 0);
    assert_int_equal(ds.reply_bad, 0);
    assert_int_equal(atomic_load(&f->order_violations), 0);
    assert_int_equal(atomic_load(&f->applied_violations), 0);
    assert_true(atomic_load(&f->applies) >= PROPOSALS);
    print_message("apply threads ran up to %d batches at once\n", atomic_load(&f->running_max));
    assert_true(atomic_load(&f->running_max) >= 2);
    struct spl_raftnode_group_status st;
    for (int t = 0; t < 200; t++) {
        assert_int_equal(spl_raftnode_group_status(g_host, 5, &st), 0);
        if (st.applied == st.commit)
            break;
        spl_sleep_ns(5 * SPL_NS_PER_MS);
    }
    assert_int_equal(st.applied, st.commit);
    assert_true(st.applied >= PROPOSALS);
    /* a read barrier passes (lease or read-index) */
    ds.done = 0;
    struct prop_ctx *pc = calloc(1, sizeof(*pc));
    pc->ds = &ds;
    assert_int_equal(spl_raftnode_read(g_host, 5, 0, on_done, pc), 0);
    pthread_mutex_lock(&ds.mu);
    while (ds.done < 1)
        pthread_cond_wait(&ds.cond, &ds.mu);
    pthread_mutex_unlock(&ds.mu);
    assert_int_equal(ds.failed, 0);
    /* a snapshot of everything applied */
    ds.done = 0;
    pc = calloc(1, sizeof(*pc));
    pc->ds = &ds;
    pc->key = 0;
    ds.last_index[0] = 0;
    assert_int_equal(spl_raftnode_snapshot(g_host, 5, on_done, pc), 0);
    pthread_mutex_lock(&ds.mu);
    while (ds.done < 1)
        pthread_cond_wait(&ds.cond, &ds.mu);
    pthread_mutex_unlock(&ds.mu);
    assert_int_equal(ds.failed, 0);
    assert_int_equal(spl_raftnode_group_status(g_host, 5, &st), 0);
    assert_true(st.snapshot_index >= PROPOSALS);
    assert_int_equal(spl_raftnode_group_destroy(g_host, 5, true), 0);
    assert_int_equal(spl_raftnode_group_status(g_host, 5, &st), SPL_ERAFT_NOGROUP);
    host_down();
    free(f);
}

static void test_errors(void **state)
{
    (void)state;
    host_up();
    struct spl_iobuf d;
    spl_iobuf_init(&d);
    spl_iobuf_append(&d, "x", 1);
    struct done_state ds = {0};
    assert_int_equal(spl_raftnode_propose(g_host, 42, &d, 0, on_done, &ds), SPL_ERAFT_NOGROUP);
    assert_int_equal(spl_iobuf_len(&d), 1); /* untouched on error */
    /* a member of a 3-voter group whose peers never come: not the leader */
    struct tfsm *f = calloc(1, sizeof(*f));
    f->host = g_host;
    f->group = 6;
    pthread_mutex_init(&f->mu, NULL);
    struct spl_raft_conf conf = {.voter_count = 3, .voters = {1, 2, 3}};
    struct spl_raftnode_group_opts go = {.group = 6, .initial_conf = &conf,
                                         .fsm = {.ops = &t_ops, .ctx = f}};
    assert_int_equal(spl_raftnode_group_create(g_host, &go), 0);
    assert_int_equal(spl_raftnode_group_create(g_host, &go), SPL_ERAFT_GROUPEXISTS);
    pthread_mutex_init(&ds.mu, NULL);
    pthread_cond_init(&ds.cond, NULL);
    struct prop_ctx *pc = calloc(1, sizeof(*pc));
    pc->ds = &ds;
    assert_int_equal(spl_raftnode_propose(g_host, 6, &d, 0, on_done, pc), 0);
    pthread_mutex_lock(&ds.mu);
    while (ds.done < 1)
        pthread_cond_wait(&ds.cond, &ds.mu);
    pthread_mutex_unlock(&ds.mu);
    assert_int_equal(ds.failed, 1);
    assert_int_equal(spl_raftnode_change_peers(g_host, 6, SPL_RAFT_CONF_RESTATE, 2, 0, on_done, pc),
                     SPL_EINVAL_ARG);
    host_down();
    free(f);
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_parallel_apply_order, cleanup),
        cmocka_unit_test_teardown(test_errors, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
