/*
 * test_raftlog_raft.c - the Raft core running on the durable log (raft_storage.h): a
 * single-voter group is bootstrapped, elects itself, commits proposals through
 * spl_raftlog_storage_persist(), survives restarts (term, vote, commit, epoch and the log
 * come back), snapshots and compacts; a follower-style ready with a snapshot resets the
 * log; commit-only hard states are noted lazily.
 */
#include <pthread.h>

#include "rl_test.h"

#include "raftlog/raft_storage.h"

#define SEG_SIZE (64u << 10)

struct node {
    char root[128], pool[192], dir[192];
    struct spl_raftlog_env *env;
    struct spl_raftlog *log;
    struct spl_raftlog_storage st;
    struct spl_raft *r;
    struct spl_rand rnd;
    uint64_t applied, applied_bytes, epoch;
    struct spl_raft_conf conf;
    /* the durability wait */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
};

static void on_durable(struct spl_raftlog_req *req, int status)
{
    struct node *n = req->data;
    pthread_mutex_lock(&n->mu);
    n->done = true;
    n->status = status;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void node_open_log(struct node *n)
{
    struct spl_raftlog_env_config cfg = {.pool_dir = n->pool, .segment_size = SEG_SIZE,
                                         .sync_threads = 2};
    assert_int_equal(spl_raftlog_env_open(&cfg, &n->env), 0);
    assert_int_equal(spl_raftlog_open(n->env, 9, n->dir, SPL_RAFTLOG_CREATE, &n->log, NULL, 0),
                     0);
    spl_raftlog_storage_init(&n->st, n->log);
}

static void node_start(struct node *n)
{
    struct spl_raft_config cfg = {.id = 1, .group = 9, .election_tick = 10, .heartbeat_tick = 1,
                                  .max_inflight_msgs = 4, .rand = &n->rnd,
                                  .storage = &n->st.storage, .applied = n->applied};
    assert_int_equal(spl_raft_init(&cfg, &n->r), 0);
}

static void node_stop(struct node *n)
{
    spl_raft_destroy(n->r);
    n->r = NULL;
    spl_raftlog_close(n->log);
    spl_raftlog_env_close(n->env);
}

/* Run every ready: persist (and wait), "apply", advance. */
static void node_drive(struct node *n)
{
    while (spl_raft_has_ready(n->r)) {
        struct spl_raft_ready rd;
        struct spl_raftlog_req req = {.data = n};
        spl_raft_ready(n->r, &rd);
        n->done = false;
        int rc = spl_raftlog_storage_persist(&n->st, &rd, &req, on_durable);
        if (rc == 0) {
            pthread_mutex_lock(&n->mu);
            while (!n->done)
                pthread_cond_wait(&n->cv, &n->mu);
            pthread_mutex_unlock(&n->mu);
            assert_int_equal(n->status, 0);
        } else {
            assert_int_equal(rc, 1);
        }
        for (uint32_t i = 0; i < rd.committed_count; i++) {
            assert_int_equal(rd.committed[i].index, n->applied + 1);
            n->applied = rd.committed[i].index;
            n->applied_bytes += spl_iobuf_len(&rd.committed[i].data);
        }
        n->epoch = rd.epoch;
        n->conf = rd.conf;
        spl_raft_advance(n->r, &rd);
    }
}

static void node_propose(struct node *n, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        struct spl_iobuf d;
        char buf[1500];
        memset(buf, (int)('a' + i % 26), sizeof(buf));
        spl_iobuf_init(&d);
        assert_int_equal(spl_iobuf_append(&d, buf, 100 + (i * 37) % 1400), 0);
        assert_int_equal(spl_raft_propose(n->r, &d, NULL, NULL), 0);
        if (i % 7 == 6)
            node_drive(n);
    }
    node_drive(n);
}

static int setup(void **state)
{
    struct node *n = calloc(1, sizeof(*n));
    rl_tmpdir(n->root, sizeof(n->root), "raft");
    snprintf(n->pool, sizeof(n->pool), "%s/walpool", n->root);
    snprintf(n->dir, sizeof(n->dir), "%s/copyset-9/log", n->root);
    char parent[256];
    snprintf(parent, sizeof(parent), "%s/copyset-9", n->root);
    assert_int_equal(mkdir(parent, 0755), 0);
    assert_int_equal(spl_raftlog_pool_format(NULL, n->pool, SEG_SIZE, 16), 0);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    spl_rand_seed(&n->rnd, 7);
    *state = n;
    return 0;
}

static int teardown(void **state)
{
    struct node *n = *state;
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    rl_rmtree(n->root);
    free(n);
    return 0;
}

static void test_single_voter_restarts(void **state)
{
    struct node *n = *state;
    node_open_log(n);
    struct spl_raft_conf c = {.voter_count = 1, .voters = {1}};
    assert_int_equal(spl_raftlog_storage_bootstrap(&n->st, &c), 0);
    node_start(n);
    for (int i = 0; i < 25; i++)
        spl_raft_tick(n->r);
    node_drive(n);
    struct spl_raft_status st;
    spl_raft_get_status(n->r, &st);
    assert_int_equal(st.role, SPL_RAFT_LEADER);
    node_propose(n, 200);
    spl_raft_get_status(n->r, &st);
    assert_int_equal(st.commit, 201); /* the re-statement + 200 proposals */
    assert_int_equal(n->applied, 201);
    assert_int_equal(n->epoch, 1);
    uint64_t term = st.term;
    node_stop(n);
    /* restart: the node comes back from the durable log alone */
    node_open_log(n);
    node_start(n);
    spl_raft_get_status(n->r, &st);
    assert_int_equal(st.term, term);
    assert_int_equal(st.vote, 1);
    assert_int_equal(st.last_index, 201);
    assert_int_equal(st.epoch, 1);
    assert_int_equal(st.commit, 201); /* the lazily noted commit was flushed at close */
    for (int i = 0; i < 25; i++)
        spl_raft_tick(n->r);
    node_drive(n);
    node_propose(n, 50);
    spl_raft_get_status(n->r, &st);
    assert_true(st.term > term);
    assert_int_equal(st.commit, 252);
    /* snapshot at applied, compact, restart: the log starts after the compaction point */
    struct spl_raftlog_snapmeta m = {.index = n->applied, .epoch = n->epoch};
    assert_int_equal(spl_raftlog_term(n->log, n->applied, &m.term), 0);
    m.conf.voter_count = n->conf.voter_count;
    memcpy(m.conf.voters, n->conf.voters, sizeof(m.conf.voters));
    assert_int_equal(spl_raftlog_save_snapmeta(n->log, &m), 0);
    assert_int_equal(spl_raftlog_compact_prefix(n->log, n->applied), 0);
    uint64_t first = spl_raftlog_first_index(n->log);
    assert_true(first > 1);
    node_stop(n);
    node_open_log(n);
    node_start(n);
    spl_raft_get_status(n->r, &st);
    assert_int_equal(st.first_index, first);
    assert_int_equal(st.snapshot_index, first - 1); /* the core's compaction point */
    assert_int_equal(spl_raftlog_snapshot_index(n->log), n->applied);
    assert_int_equal(st.epoch, n->epoch);
    for (int i = 0; i < 25; i++)
        spl_raft_tick(n->r);
    node_drive(n);
    node_propose(n, 10);
    spl_raft_get_status(n->r, &st);
    assert_int_equal(st.commit, n->applied);
    node_stop(n);
}

/* The storage methods on their own, and a ready carrying a snapshot (follower side). */
static void test_storage_methods_and_install(void **state)
{
    struct node *n = *state;
    node_open_log(n);
    struct spl_raft_conf c = {.voter_count = 3, .voters = {1, 2, 3}};
    assert_int_equal(spl_raftlog_storage_bootstrap(&n->st, &c), 0);
    assert_int_equal(spl_raftlog_storage_bootstrap(&n->st, &c), 0 /* still empty */);
    const struct spl_raft_storage_ops *ops = n->st.storage.ops;
    void *ctx = n->st.storage.ctx;
    struct spl_raft_hard_state hs;
    struct spl_raft_snapshot_meta sm;
    assert_int_equal(ops->initial_state(ctx, &hs, &sm), 0);
    assert_int_equal(sm.conf.voter_count, 3);
    assert_int_equal(sm.index, 0);
    uint64_t v;
    assert_int_equal(ops->first_index(ctx, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(ops->last_index(ctx, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ops->term(ctx, 0, &v), 0);
    assert_int_equal(v, 0);
    /* a follower's ready: entries 1..5 of term 2, hard state */
    struct spl_raft_entry e[5];
    for (int i = 0; i < 5; i++) {
        struct spl_raftlog_entry le;
        rl_make_entry(&le, (uint64_t)i + 1, 2, 4, 64);
        e[i] = (struct spl_raft_entry){.term = le.term, .index = le.index, .type = le.type};
        spl_iobuf_init(&e[i].data);
        spl_iobuf_move(&e[i].data, &le.data);
    }
    struct spl_raft_ready rd;
    memset(&rd, 0, sizeof(rd));
    rd.entries = e;
    rd.entry_count = 5;
    rd.has_hard_state = true;
    rd.hard_state = (struct spl_raft_hard_state){.term = 2, .vote = 3, .commit = 3};
    rd.must_sync = true;
    struct spl_raftlog_req req = {.data = n};
    n->done = false;
    assert_int_equal(spl_raftlog_storage_persist(&n->st, &rd, &req, on_durable), 0);
    pthread_mutex_lock(&n->mu);
    while (!n->done)
        pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    for (int i = 0; i < 5; i++)
        spl_iobuf_reset(&e[i].data);
    struct spl_raft_entry out[4];
    uint32_t cnt = 0;
    assert_int_equal(ops->entries(ctx, 2, 6, UINT64_MAX, out, 4, &cnt), 0);
    assert_int_equal(cnt, 4);
    assert_int_equal(out[0].index, 2);
    assert_int_equal(out[3].term, 2);
    for (uint32_t i = 0; i < cnt; i++)
        spl_iobuf_reset(&out[i].data);
    assert_int_equal(ops->entries(ctx, 0, 2, UINT64_MAX, out, 4, &cnt), SPL_ERAFT_COMPACTED);
    assert_int_equal(ops->term(ctx, 7, &v), SPL_ERAFT_UNAVAILABLE);
    /* commit only: noted lazily, no callback */
    memset(&rd, 0, sizeof(rd));
    rd.has_hard_state = true;
    rd.hard_state = (struct spl_raft_hard_state){.term = 2, .vote = 3, .commit = 5};
    assert_int_equal(spl_raftlog_storage_persist(&n->st, &rd, &req, on_durable), 1);
    /* a snapshot the log does not hold: the log restarts after it */
    struct spl_raft_snapshot_meta snap = {.index = 100, .term = 3, .epoch = 7, .conf = c};
    spl_iobuf_init(&snap.data);
    assert_int_equal(spl_iobuf_append(&snap.data, "chunks", 6), 0);
    memset(&rd, 0, sizeof(rd));
    rd.snapshot = &snap;
    rd.has_hard_state = true;
    rd.hard_state = (struct spl_raft_hard_state){.term = 3, .vote = 0, .commit = 100};
    rd.must_sync = true;
    n->done = false;
    assert_int_equal(spl_raftlog_storage_persist(&n->st, &rd, &req, on_durable), 0);
    pthread_mutex_lock(&n->mu);
    while (!n->done)
        pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    spl_iobuf_reset(&snap.data);
    assert_int_equal(ops->first_index(ctx, &v), 0);
    assert_int_equal(v, 101);
    assert_int_equal(ops->term(ctx, 100, &v), 0);
    assert_int_equal(v, 3);
    node_stop(n);
    node_open_log(n);
    assert_int_equal(ops->initial_state(ctx, &hs, &sm), 0);
    assert_int_equal(hs.term, 3);
    assert_int_equal(hs.commit, 100);
    assert_int_equal(sm.index, 100);
    assert_int_equal(sm.epoch, 7);
    struct spl_raft_snapshot_meta got;
    assert_int_equal(ops->snapshot(ctx, &got), 0);
    assert_int_equal(spl_iobuf_len(&got.data), 6);
    spl_iobuf_reset(&got.data);
    spl_raftlog_close(n->log);
    spl_raftlog_env_close(n->env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_voter_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_methods_and_install, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
