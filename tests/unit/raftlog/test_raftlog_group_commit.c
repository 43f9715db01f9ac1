/*
 * test_raftlog_group_commit.c - many groups appending from several threads through the
 * shared sync workers (run under TSan too): every callback arrives once, in order per
 * group, with status 0, and everything acknowledged is there after a restart; fewer
 * syncs than appends (group commit); the poll mode (no threads) and SYNCFS mode; an I/O
 * error completes every waiter with the error.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "rl_test.h"

#include "base/log.h"

#define SEG_SIZE (256u << 10)
#define GROUPS 24
#define DRIVERS 4
#define INFLIGHT 4
#define ROUNDS 60

struct driver;

struct group_state {
    struct spl_raftlog *log;
    struct driver *drv;
    uint64_t id;
    uint64_t next_index;  /* owner thread */
    uint32_t issued;      /* owner thread */
    _Atomic uint32_t done;
    _Atomic uint64_t last_seq_done; /* callbacks arrive in issue order */
    _Atomic int bad_status;
    struct spl_raftlog_req reqs[INFLIGHT];
    uint64_t req_seq[INFLIGHT];
};

struct driver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct group_state *groups[GROUPS];
    uint32_t count;
    pthread_t thread;
};

struct gc_fixture {
    char root[128], pool[192];
    struct spl_raftlog_env *env;
    struct group_state g[GROUPS];
    struct driver d[DRIVERS];
};

static void on_durable(struct spl_raftlog_req *req, int status)
{
    struct group_state *g = req->data;
    uint32_t slot = (uint32_t)(req - g->reqs);
    uint64_t seq = g->req_seq[slot];
    if (status != 0)
        atomic_store(&g->bad_status, status);
    if (atomic_load(&g->last_seq_done) + 1 != seq)
        atomic_store(&g->bad_status, SPL_EINTERNAL); /* out of order */
    atomic_store(&g->last_seq_done, seq);
    pthread_mutex_lock(&g->drv->mu);
    atomic_fetch_add(&g->done, 1);
    pthread_cond_signal(&g->drv->cv);
    pthread_mutex_unlock(&g->drv->mu);
}

static uint32_t entry_count(uint32_t round) { return 1 + round % 3; }
static size_t entry_len(uint64_t index) { return 100 + (index * 211) % 5000; }

static void gc_expect(uint64_t index, uint64_t *term, uint64_t *salt, size_t *len, void *arg)
{
    *term = 1;
    *salt = (uint64_t)(uintptr_t)arg;
    *len = entry_len(index);
}

/* Issue the next append of g into a free request slot (owner thread). */
static void issue(struct group_state *g)
{
    uint32_t n = entry_count(g->issued);
    uint32_t slot = g->issued % INFLIGHT;
    struct spl_raftlog_entry e[3];
    for (uint32_t i = 0; i < n; i++)
        rl_make_entry(&e[i], g->next_index + i, 1, g->id, entry_len(g->next_index + i));
    struct spl_raftlog_hardstate hs = {.term = 1, .vote = 1, .commit = 0};
    g->reqs[slot].data = g;
    g->req_seq[slot] = g->issued + 1;
    int rc = spl_raftlog_append(g->log, e, n, g->issued % 5 == 0 ? &hs : NULL, &g->reqs[slot],
                                on_durable);
    assert_int_equal(rc, 0);
    rl_free_entries(e, n);
    g->next_index += n;
    g->issued++;
}

static void *driver_main(void *arg)
{
    struct driver *d = arg;
    for (;;) {
        bool all_done = true, progress = false;
        for (uint32_t i = 0; i < d->count; i++) {
            struct group_state *g = d->groups[i];
            uint32_t done = atomic_load(&g->done);
            if (done < ROUNDS)
                all_done = false;
            if (g->issued < ROUNDS && g->issued - done < INFLIGHT) {
                issue(g);
                progress = true;
            }
        }
        if (all_done)
            break;
        if (progress)
            continue;
        pthread_mutex_lock(&d->mu);
        bool can = false;
        for (uint32_t i = 0; i < d->count && !can; i++) {
            struct group_state *g = d->groups[i];
            uint32_t done = atomic_load(&g->done);
            can = (g->issued < ROUNDS && g->issued - done < INFLIGHT) ||
                  (g->issued == ROUNDS && done == ROUNDS);
        }
        if (!can)
            pthread_cond_wait(&d->cv, &d->mu);
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

static void gc_open_env(struct gc_fixture *f, uint32_t threads, enum spl_raftlog_sync_mode mode)
{
    struct spl_raftlog_env_config cfg = {.pool_dir = f->pool, .segment_size = SEG_SIZE,
                                         .sync_threads = threads, .sync_mode = mode};
    assert_int_equal(spl_raftlog_env_open(&cfg, &f->env), 0);
}

static void gc_open_groups(struct gc_fixture *f)
{
    for (uint32_t i = 0; i < GROUPS; i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/g%u", f->root, i);
        f->g[i].id = i + 1;
        assert_int_equal(spl_raftlog_open(f->env, i + 1, dir, SPL_RAFTLOG_CREATE, &f->g[i].log,
                                          NULL, 0),
                         0);
    }
}

static void run_groups(enum spl_raftlog_sync_mode mode)
{
    struct gc_fixture *f = calloc(1, sizeof(*f));
    rl_tmpdir(f->root, sizeof(f->root), "gc");
    snprintf(f->pool, sizeof(f->pool), "%s/walpool", f->root);
    assert_int_equal(spl_raftlog_pool_format(NULL, f->pool, SEG_SIZE, GROUPS * 3), 0);
    gc_open_env(f, 4, mode);
    gc_open_groups(f);
    for (uint32_t t = 0; t < DRIVERS; t++) {
        pthread_mutex_init(&f->d[t].mu, NULL);
        pthread_cond_init(&f->d[t].cv, NULL);
    }
    for (uint32_t i = 0; i < GROUPS; i++) {
        struct driver *d = &f->d[i % DRIVERS];
        f->g[i].drv = d;
        f->g[i].next_index = 1;
        d->groups[d->count++] = &f->g[i];
    }
    for (uint32_t t = 0; t < DRIVERS; t++)
        assert_int_equal(pthread_create(&f->d[t].thread, NULL, driver_main, &f->d[t]), 0);
    for (uint32_t t = 0; t < DRIVERS; t++)
        pthread_join(f->d[t].thread, NULL);
    struct spl_raftlog_env_stats st;
    spl_raftlog_env_stats(f->env, &st);
    assert_int_equal(st.appends, GROUPS * ROUNDS);
    assert_true(st.sync_rounds <= st.appends);
    printf("%s: %" PRIu64 " appends, %" PRIu64 " sync rounds, %" PRIu64 " syncs\n",
           mode == SPL_RAFTLOG_SYNC_SYNCFS ? "syncfs" : "fdatasync", st.appends,
           st.sync_rounds, st.syncs);
    for (uint32_t i = 0; i < GROUPS; i++) {
        assert_int_equal(atomic_load(&f->g[i].bad_status), 0);
        assert_int_equal(atomic_load(&f->g[i].done), ROUNDS);
        spl_raftlog_close(f->g[i].log);
    }
    spl_raftlog_env_close(f->env);
    /* everything acknowledged is there after a restart */
    gc_open_env(f, 1, SPL_RAFTLOG_SYNC_FDATASYNC);
    gc_open_groups(f);
    for (uint32_t i = 0; i < GROUPS; i++) {
        assert_int_equal(spl_raftlog_last_index(f->g[i].log), f->g[i].next_index - 1);
        rl_check_range(f->g[i].log, 1, f->g[i].next_index, gc_expect,
                       (void *)(uintptr_t)f->g[i].id);
        struct spl_raftlog_hardstate hs;
        spl_raftlog_hardstate(f->g[i].log, &hs);
        assert_int_equal(hs.term, 1);
        spl_raftlog_close(f->g[i].log);
    }
    spl_raftlog_env_close(f->env);
    for (uint32_t t = 0; t < DRIVERS; t++) {
        pthread_mutex_destroy(&f->d[t].mu);
        pthread_cond_destroy(&f->d[t].cv);
    }
    rl_rmtree(f->root);
    free(f);
}

static void test_many_groups_fdatasync(void **state)
{
    (void)state;
    run_groups(SPL_RAFTLOG_SYNC_FDATASYNC);
}

static void test_many_groups_syncfs(void **state)
{
    (void)state;
    run_groups(SPL_RAFTLOG_SYNC_SYNCFS);
}

/* ---- poll mode and errors, on the in-memory disk ---- */

struct count_cb {
    int calls;
    int status;
};

static void count_cb(struct spl_raftlog_req *req, int status)
{
    struct count_cb *c = req->data;
    c->calls++;
    c->status = status;
}

static void mem_env(struct spl_vfs_mem **m, struct spl_raftlog_env **env, uint32_t groups,
                    struct spl_raftlog **logs)
{
    assert_int_equal(spl_vfs_mem_create(m), 0);
    assert_int_equal(spl_raftlog_pool_format(spl_vfs_mem_vfs(*m), "/pool", 64 << 10, 8), 0);
    struct spl_raftlog_env_config cfg = {.vfs = spl_vfs_mem_vfs(*m), .pool_dir = "/pool",
                                         .segment_size = 64 << 10, .sync_threads = 0};
    assert_int_equal(spl_raftlog_env_open(&cfg, env), 0);
    for (uint32_t i = 0; i < groups; i++) {
        char dir[32];
        snprintf(dir, sizeof(dir), "/g%u", i);
        assert_int_equal(spl_raftlog_open(*env, i + 1, dir, SPL_RAFTLOG_CREATE, &logs[i], NULL,
                                          0),
                         0);
    }
}

static void test_poll_mode_batches(void **state)
{
    (void)state;
    struct spl_vfs_mem *m;
    struct spl_raftlog_env *env;
    struct spl_raftlog *logs[3];
    struct spl_raftlog_req reqs[3][5];
    struct count_cb cbs[3][5];
    mem_env(&m, &env, 3, logs);
    for (uint32_t g = 0; g < 3; g++) /* the first append takes a segment (and syncs) */
        assert_int_equal(rl_append(logs[g], 1, 1, 1, g, 200, NULL), 0);
    uint64_t syncs_before = spl_vfs_mem_count(m, SPL_VFS_FAULT_SYNC);
    for (uint32_t r = 0; r < 5; r++) {
        for (uint32_t g = 0; g < 3; g++) {
            struct spl_raftlog_entry e[1];
            rl_make_entry(&e[0], r + 2, 1, g, 200);
            cbs[g][r] = (struct count_cb){0, 1};
            reqs[g][r].data = &cbs[g][r];
            assert_int_equal(spl_raftlog_append(logs[g], e, 1, NULL, &reqs[g][r], count_cb), 0);
            rl_free_entries(e, 1);
        }
    }
    /* nothing runs until polled: then one fdatasync per group covers its 5 appends */
    assert_int_equal(cbs[0][0].calls, 0);
    assert_int_equal(spl_raftlog_env_poll(env), 3);
    assert_int_equal(spl_vfs_mem_count(m, SPL_VFS_FAULT_SYNC) - syncs_before, 3);
    for (uint32_t g = 0; g < 3; g++)
        for (uint32_t r = 0; r < 5; r++) {
            assert_int_equal(cbs[g][r].calls, 1);
            assert_int_equal(cbs[g][r].status, 0);
        }
    assert_int_equal(spl_raftlog_env_poll(env), 0);
    for (uint32_t g = 0; g < 3; g++)
        spl_raftlog_close(logs[g]);
    spl_raftlog_env_close(env);
    spl_vfs_mem_destroy(m);
}

static void test_sync_error_fails_waiters(void **state)
{
    (void)state;
    struct spl_vfs_mem *m;
    struct spl_raftlog_env *env;
    struct spl_raftlog *logs[1];
    struct spl_raftlog_req reqs[4];
    struct count_cb cbs[4];
    spl_log_set_level(SPL_LOG_FATAL);
    mem_env(&m, &env, 1, logs);
    for (uint32_t r = 0; r < 4; r++) {
        struct spl_raftlog_entry e[1];
        rl_make_entry(&e[0], r + 1, 1, 0, 200);
        cbs[r] = (struct count_cb){0, 0};
        reqs[r].data = &cbs[r];
        assert_int_equal(spl_raftlog_append(logs[0], e, 1, NULL, &reqs[r], count_cb), 0);
        rl_free_entries(e, 1);
    }
    spl_vfs_mem_fail(m, SPL_VFS_FAULT_SYNC, 1, -EIO, false);
    assert_int_equal(spl_raftlog_env_poll(env), 1);
    for (uint32_t r = 0; r < 4; r++) {
        assert_int_equal(cbs[r].calls, 1);
        assert_int_equal(cbs[r].status, -EIO);
    }
    /* the log stays stopped: a later sync that would succeed must not be trusted */
    assert_int_equal(rl_append(logs[0], 5, 1, 1, 0, 200, NULL), SPL_ELOG_FAILED);
    assert_int_equal(spl_raftlog_truncate_suffix(logs[0], 2), SPL_ELOG_FAILED);
    spl_raftlog_close(logs[0]);
    /* reopening recovers what was durable: nothing of the four */
    assert_int_equal(spl_raftlog_open(env, 1, "/g0", 0, &logs[0], NULL, 0), 0);
    assert_int_equal(spl_raftlog_last_index(logs[0]), 0);
    assert_int_equal(rl_append(logs[0], 1, 1, 1, 0, 200, NULL), 0);
    spl_raftlog_close(logs[0]);
    spl_raftlog_env_close(env);
    spl_vfs_mem_destroy(m);
    spl_log_set_level(SPL_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_groups_fdatasync),
        cmocka_unit_test(test_many_groups_syncfs),
        cmocka_unit_test(test_poll_mode_batches),
        cmocka_unit_test(test_sync_error_fails_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
