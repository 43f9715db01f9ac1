/*
 * test_raftlog_fault.c - SQLite-style fault loops over a scripted workload on the
 * in-memory disk: crash at the N-th mutating call (dropping unsynced data, keeping an
 * in-order prefix of it, or keeping all of it with the crashing write torn), and fail the
 * N-th write, sync or metadata call; N rises until the workload completes untouched.
 * After every fault the log is reopened and checked against a model of the workload:
 * every acknowledged entry, hard state and snapshot is there, nothing torn or stale is,
 * and the log is usable (RAFT-INVARIANTS 22, 23).
 */
#include "rl_test.h"

#include "base/log.h"
#include "base/random.h"

#define SEG_SIZE (64u << 10)
#define POOL "/pool"
#define DIR "/g"
#define IDX_MAX 2048
#define OPS_MAX 40

struct mentry {
    uint64_t term, salt;
    uint32_t len;
};

struct model {
    uint64_t first, last;
    struct mentry e[IDX_MAX];
    struct spl_raftlog_hardstate hs;
    uint64_t snap_index, snap_term;
};

enum op_kind { OP_APPEND, OP_TRUNCATE, OP_SNAP_COMPACT, OP_INSTALL, OP_COMMIT_SYNC };

struct op {
    enum op_kind kind;
    uint64_t index;
    uint32_t count;
    uint64_t term;
    uint32_t len;
    bool hs;
    uint64_t vote, commit;
};

/* The workload: appends that cross segments, hard state, lazy commit, explicit and
 * implicit truncation, snapshot + compaction, a snapshot install that resets the log. */
static const struct op scripted[] = {
    {.kind = OP_APPEND, .index = 1, .count = 8, .term = 1, .len = 700, .hs = true, .vote = 1},
    {.kind = OP_APPEND, .index = 9, .count = 40, .term = 1, .len = 1500},
    {.kind = OP_COMMIT_SYNC, .commit = 20},
    {.kind = OP_APPEND, .index = 49, .count = 20, .term = 1, .len = 3000},
    {.kind = OP_TRUNCATE, .index = 60},
    {.kind = OP_APPEND, .index = 55, .count = 10, .term = 2, .len = 900, .hs = true,
     .vote = 2, .commit = 20},
    {.kind = OP_SNAP_COMPACT, .index = 40, .term = 1},
    {.kind = OP_APPEND, .index = 65, .count = 30, .term = 2, .len = 2000},
    {.kind = OP_COMMIT_SYNC, .commit = 50},
    {.kind = OP_INSTALL, .index = 200, .term = 3},
    {.kind = OP_APPEND, .index = 201, .count = 10, .term = 3, .len = 500, .hs = true,
     .vote = 0, .commit = 200},
    {.kind = OP_APPEND, .index = 205, .count = 3, .term = 4, .len = 64, .hs = true,
     .vote = 4, .commit = 200},
};

/* The workload under test: the script above, or one generated from a seed. */
static struct op ops[OPS_MAX];
static int OP_COUNT;
static struct model states[OPS_MAX + 1]; /* states[k]: after the first k ops */
static uint64_t firsts[OPS_MAX];         /* first index after op k (reference run) */

static void model_apply(struct model *m, int k)
{
    const struct op *o = &ops[k];
    switch (o->kind) {
    case OP_APPEND:
        m->last = o->index + o->count - 1;
        for (uint32_t i = 0; i < o->count; i++)
            m->e[o->index + i] = (struct mentry){o->term, (uint64_t)k + 1, o->len};
        if (o->hs)
            m->hs = (struct spl_raftlog_hardstate){o->term, o->vote, o->commit};
        break;
    case OP_TRUNCATE:
        m->last = o->index - 1;
        break;
    case OP_SNAP_COMPACT:
        m->snap_index = o->index;
        m->snap_term = o->term;
        m->first = firsts[k];
        break;
    case OP_INSTALL:
        m->snap_index = o->index;
        m->snap_term = o->term;
        m->first = o->index + 1;
        m->last = o->index;
        break;
    case OP_COMMIT_SYNC:
        m->hs.commit = o->commit;
        break;
    }
}

static int do_op(struct spl_raftlog *log, int k)
{
    const struct op *o = &ops[k];
    struct spl_raftlog_hardstate hs = {o->term, o->vote, o->commit};
    struct spl_raftlog_snapmeta m = {.index = o->index, .term = o->term, .epoch = 1,
                                     .conf = {.voter_count = 1, .voters = {1}}};
    int rc;
    switch (o->kind) {
    case OP_APPEND:
        return rl_append(log, o->index, o->count, o->term, (uint64_t)k + 1, o->len,
                         o->hs ? &hs : NULL);
    case OP_TRUNCATE:
        return spl_raftlog_truncate_suffix(log, o->index);
    case OP_SNAP_COMPACT:
        rc = spl_raftlog_save_snapmeta(log, &m);
        return rc ? rc : spl_raftlog_compact_prefix(log, o->index);
    case OP_INSTALL:
        return spl_raftlog_install_snapshot(log, &m);
    case OP_COMMIT_SYNC:
        spl_raftlog_set_commit(log, o->commit);
        return spl_raftlog_append_wait(log, NULL, 0, NULL);
    }
    return SPL_EINTERNAL;
}

static struct spl_raftlog_env *env_open(struct spl_vfs_mem *m)
{
    struct spl_raftlog_env *env = NULL;
    struct spl_raftlog_env_config cfg = {.vfs = spl_vfs_mem_vfs(m), .pool_dir = POOL,
                                         .segment_size = SEG_SIZE, .sync_threads = 0,
                                         .nonce_seed = 3};
    assert_int_equal(spl_raftlog_env_open(&cfg, &env), 0);
    return env;
}

/* Run the workload; -1 when it completed, 0 when opening failed, k + 1 when op k did. */
static int run_workload(struct spl_vfs_mem *m, bool reference)
{
    struct spl_raftlog_env *env = env_open(m);
    struct spl_raftlog *log = NULL;
    int failed = -1;
    if (spl_raftlog_open(env, 1, DIR, SPL_RAFTLOG_CREATE, &log, NULL, 0) != 0) {
        failed = 0;
        goto out;
    }
    for (int k = 0; k < OP_COUNT; k++) {
        int rc = do_op(log, k);
        if (reference) {
            assert_int_equal(rc, 0);
            firsts[k] = spl_raftlog_first_index(log);
        }
        if (rc != 0) {
            failed = k + 1;
            break;
        }
    }
out:
    spl_raftlog_close(log);
    spl_raftlog_env_close(env);
    return failed;
}

static struct spl_vfs_mem *fresh_disk(void)
{
    struct spl_vfs_mem *m;
    assert_int_equal(spl_vfs_mem_create(&m), 0);
    assert_int_equal(spl_raftlog_pool_format(spl_vfs_mem_vfs(m), POOL, SEG_SIZE, 10), 0);
    assert_int_equal(spl_vfs_mem_unsynced(m), 0);
    return m;
}

static bool model_has(const struct model *m, uint64_t i)
{
    return i >= m->first && i <= m->last;
}

static bool model_same(const struct model *a, const struct model *b, uint64_t i)
{
    return a->e[i].term == b->e[i].term && a->e[i].salt == b->e[i].salt &&
           a->e[i].len == b->e[i].len;
}

static bool entry_matches(const struct model *m, const struct spl_raftlog_entry *e)
{
    uint64_t i = e->index;
    return model_has(m, i) && rl_entry_ok(e, i, m->e[i].term, m->e[i].salt, m->e[i].len);
}

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fail_msg("%s: check failed: %s (first %" PRIu64 " last %" PRIu64 ")", ctx,  \
                     #cond, first, last);                                                \
    } while (0)

/* The recovered log lies between states prev and cur (see the top). */
static void check_between(struct spl_raftlog *log, const struct model *prev,
                          const struct model *cur, const char *ctx)
{
    uint64_t first = spl_raftlog_first_index(log), last = spl_raftlog_last_index(log);
    uint64_t lo_first = prev->first < cur->first ? prev->first : cur->first;
    uint64_t hi_first = prev->first > cur->first ? prev->first : cur->first;
    CHECK(first >= lo_first && first <= hi_first);
    uint64_t si = spl_raftlog_snapshot_index(log), st = spl_raftlog_snapshot_term(log);
    CHECK((si == prev->snap_index && st == prev->snap_term) ||
          (si == cur->snap_index && st == cur->snap_term));
    struct spl_raftlog_hardstate hs;
    spl_raftlog_hardstate(log, &hs);
    CHECK((hs.term == prev->hs.term && hs.vote == prev->hs.vote) ||
          (hs.term == cur->hs.term && hs.vote == cur->hs.vote));
    CHECK(hs.commit <= (prev->hs.commit > cur->hs.commit ? prev->hs.commit : cur->hs.commit));
    /* d: the first index where the two states differ */
    uint64_t d = (prev->last < cur->last ? prev->last : cur->last) + 1;
    for (uint64_t i = hi_first; i < d; i++)
        if (!model_same(prev, cur, i))
            d = i;
    CHECK(last + 1 >= (d < prev->last + 1 ? d : prev->last + 1)); /* nothing durable lost */
    bool switched = false;
    for (uint64_t i = first; i <= last; i++) {
        struct spl_raftlog_entry e[1];
        uint32_t n = 0;
        rl_init_entries(e, 1);
        CHECK(spl_raftlog_entries(log, i, i + 1, UINT64_MAX, e, 1, &n) == 0 && n == 1);
        bool mp = entry_matches(prev, &e[0]), mc = entry_matches(cur, &e[0]);
        rl_free_entries(e, 1);
        CHECK(mp || mc);
        if (i >= d && !mp)
            switched = true;
        CHECK(!switched || mc); /* the new entries form one prefix after d */
    }
}

/* Reopen after a fault, check, and prove the log still takes writes. */
static void reopen_and_check(struct spl_vfs_mem *m, int failed, const char *ctx)
{
    const struct model *prev, *cur;
    if (failed <= 0) {
        prev = cur = &states[failed < 0 ? OP_COUNT : 0];
    } else {
        prev = &states[failed - 1];
        cur = &states[failed];
    }
    struct spl_raftlog_env *env = env_open(m);
    struct spl_raftlog *log = NULL;
    char why[512] = "";
    int rc = spl_raftlog_open(env, 1, DIR, SPL_RAFTLOG_CREATE, &log, why, sizeof(why));
    if (rc != 0)
        fail_msg("%s: reopen failed: %s: %s", ctx, spl_strerror(rc), why);
    check_between(log, prev, cur, ctx);
    uint64_t last = spl_raftlog_last_index(log), term = 0;
    assert_int_equal(spl_raftlog_term(log, last, &term), 0);
    assert_int_equal(rl_append(log, last + 1, 2, term ? term : 1, 99, 300, NULL), 0);
    spl_raftlog_close(log);
    spl_raftlog_env_close(env);
    assert_int_equal(spl_vfs_mem_open_fds(m), 0);
}

/* A random but valid workload: every op respects what the log allows at that point
 * (indexes above the commit and the snapshot, non-decreasing terms and hard state). */
static void generate(uint64_t seed)
{
    struct spl_rand r;
    struct model m;
    spl_rand_seed(&r, seed);
    memset(&m, 0, sizeof(m));
    m.first = 1;
    uint64_t hs_term = 0;
    OP_COUNT = 0;
    while (OP_COUNT < 25) {
        struct op o = {0};
        uint64_t floor = (m.hs.commit > m.snap_index ? m.hs.commit : m.snap_index) + 1;
        uint64_t last_term = m.last >= m.first ? m.e[m.last].term
                             : m.last == m.snap_index ? m.snap_term : 0;
        uint64_t pick = spl_rand_below(&r, 100);
        if (pick < 55 || m.last + 1 < m.first || m.last < 5) {
            o.kind = OP_APPEND;
            o.index = m.last + 1;
            if (pick % 4 == 0 && floor <= m.last && floor >= m.first)
                o.index = spl_rand_range(&r, floor, m.last); /* a conflict */
            o.count = (uint32_t)spl_rand_range(&r, 1, 20);
            o.len = (uint32_t)spl_rand_range(&r, 24, 3000);
            uint64_t prev = o.index - 1 >= m.first ? m.e[o.index - 1].term
                            : o.index - 1 == m.snap_index ? m.snap_term : 0;
            o.term = (prev > hs_term ? prev : hs_term) + (o.index <= m.last || pick % 5 == 0);
            if (o.term == 0)
                o.term = 1;
            o.hs = o.term != hs_term || pick % 3 == 0;
            o.vote = 1;
            o.commit = m.hs.commit;
            if (o.hs && o.index > m.hs.commit + 1 && pick % 2)
                o.commit = spl_rand_range(&r, m.hs.commit, o.index - 1);
        } else if (pick < 68 && floor <= m.last) {
            o.kind = OP_TRUNCATE;
            o.index = spl_rand_range(&r, floor, m.last);
        } else if (pick < 80 && m.hs.commit >= m.first && m.hs.commit > m.snap_index) {
            uint64_t lo = m.snap_index > m.first ? m.snap_index : m.first;
            o.kind = OP_SNAP_COMPACT;
            o.index = spl_rand_range(&r, lo, m.hs.commit);
            o.term = m.e[o.index].term;
        } else if (pick < 92 && m.last > m.hs.commit) {
            o.kind = OP_COMMIT_SYNC;
            o.commit = spl_rand_range(&r, m.hs.commit + 1, m.last);
        } else if (m.last + 60 < IDX_MAX - 100) {
            o.kind = OP_INSTALL;
            o.index = m.last + spl_rand_range(&r, 1, 50);
            o.term = (last_term > hs_term ? last_term : hs_term) + 1;
        } else {
            continue;
        }
        if (o.kind == OP_APPEND && o.index + o.count >= IDX_MAX)
            continue;
        ops[OP_COUNT] = o;
        firsts[OP_COUNT] = m.first; /* compaction is fixed up by the reference run */
        model_apply(&m, OP_COUNT);
        if (o.kind == OP_APPEND && o.hs)
            hs_term = o.term;
        if (o.kind == OP_INSTALL)
            m.hs.commit = o.index; /* what the log notes for the next hard state */
        OP_COUNT++;
    }
}

/* Run the workload once without faults: record where compaction leaves the first index,
 * build the states, and check the result against the last one. */
static void prepare(void)
{
    memset(states, 0, sizeof(states));
    states[0].first = 1;
    struct spl_vfs_mem *m = fresh_disk();
    assert_int_equal(run_workload(m, true), -1);
    for (int k = 0; k < OP_COUNT; k++) {
        states[k + 1] = states[k];
        model_apply(&states[k + 1], k);
    }
    spl_vfs_mem_reboot(m, SPL_VFS_REBOOT_DROP, 0);
    reopen_and_check(m, -1, "reference");
    spl_vfs_mem_destroy(m);
}

static void use_script(void)
{
    OP_COUNT = (int)SPL_ARRAY_SIZE(scripted);
    memcpy(ops, scripted, sizeof(scripted));
    prepare();
}

static int setup(void **state)
{
    (void)state;
    spl_log_set_level(SPL_LOG_FATAL); /* every run logs its injected failure */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    spl_log_set_level(SPL_LOG_INFO);
    return 0;
}

/* Crash at every mutation of the current workload, in three reboot modes. */
static void crash_loop(uint64_t *runs_out, uint64_t *crashes_out)
{
    uint64_t runs = 0, crashes = 0;
    bool done = false;
    for (uint64_t n = 1; !done; n++) {
        for (int mode = 0; mode < 3; mode++) {
            char ctx[96];
            struct spl_vfs_mem *m = fresh_disk();
            uint64_t tear = (n * 131 + (uint64_t)mode * 17) % 4200;
            spl_vfs_mem_crash_at(m, n, tear);
            int failed = run_workload(m, false);
            bool crashed = spl_vfs_mem_crashed(m);
            if (!crashed)
                done = true;
            crashes += crashed;
            uint64_t keep = (n * 7) % (spl_vfs_mem_unsynced(m) + 1);
            enum spl_vfs_reboot_mode rm = mode == 0   ? SPL_VFS_REBOOT_DROP
                                          : mode == 1 ? SPL_VFS_REBOOT_KEEP
                                                      : SPL_VFS_REBOOT_PREFIX;
            spl_vfs_mem_reboot(m, rm, keep);
            snprintf(ctx, sizeof(ctx), "crash at mutation %" PRIu64 " mode %d (op %d)", n, mode,
                     failed);
            reopen_and_check(m, failed, ctx);
            spl_vfs_mem_destroy(m);
            runs++;
        }
    }
    *runs_out += runs;
    *crashes_out += crashes;
}

static void test_crash_loop(void **state)
{
    (void)state;
    uint64_t runs = 0, crashes = 0;
    use_script();
    crash_loop(&runs, &crashes);
    printf("crash loop (scripted workload): %" PRIu64 " runs, %" PRIu64 " crashes\n", runs,
           crashes);
    assert_true(crashes > 100);
}

static void test_crash_loop_random(void **state)
{
    (void)state;
    uint64_t runs = 0, crashes = 0, kinds[5] = {0}, conflicts = 0;
    const char *env = getenv("SPL_RAFTLOG_FAULT_SEEDS"); /* longer soaks: export it */
    uint64_t seeds = env ? strtoull(env, NULL, 10) : 12;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        generate(seed);
        for (int k = 0; k < OP_COUNT; k++)
            kinds[ops[k].kind]++;
        prepare();
        for (int k = 0; k < OP_COUNT; k++)
            conflicts += ops[k].kind == OP_APPEND && ops[k].index <= states[k].last;
        crash_loop(&runs, &crashes);
    }
    printf("crash loop (%" PRIu64 " random workloads: %" PRIu64 " appends, %" PRIu64
           " conflicting, %" PRIu64 " truncates, %" PRIu64 " snapshot+compacts, %" PRIu64
           " installs, %" PRIu64 " commits): %" PRIu64 " runs, %" PRIu64 " crashes\n", seeds,
           kinds[OP_APPEND], conflicts, kinds[OP_TRUNCATE], kinds[OP_SNAP_COMPACT],
           kinds[OP_INSTALL], kinds[OP_COMMIT_SYNC], runs, crashes);
    assert_true(crashes > 100 * seeds);
}

/* Fail the N-th call of a class (once) for N = 1, 2, ... over the current workload. */
static void fail_loop_one(enum spl_vfs_fault_class cls, int err, bool persist,
                          const char *name, uint64_t *runs, uint64_t *failures)
{
    for (uint64_t n = 1;; n++) {
        char ctx[96];
        struct spl_vfs_mem *m = fresh_disk();
        uint64_t base = spl_vfs_mem_count(m, cls);
        spl_vfs_mem_fail(m, cls, n, err, persist);
        int failed = run_workload(m, false);
        bool hit = spl_vfs_mem_count(m, cls) - base >= n;
        *failures += failed >= 0;
        /* a process restart after the error, or a power loss after it */
        spl_vfs_mem_reboot(m, n % 2 ? SPL_VFS_REBOOT_KEEP : SPL_VFS_REBOOT_DROP, 0);
        snprintf(ctx, sizeof(ctx), "%s fault at call %" PRIu64 " (op %d)", name, n, failed);
        reopen_and_check(m, failed, ctx);
        spl_vfs_mem_destroy(m);
        (*runs)++;
        if (!hit)
            break;
    }
}

static void fail_loop(enum spl_vfs_fault_class cls, int err, const char *name)
{
    uint64_t runs = 0, failures = 0;
    for (int persist = 0; persist < 2; persist++) {
        use_script();
        fail_loop_one(cls, err, persist, name, &runs, &failures);
        for (uint64_t seed = 100; seed < 106; seed++) {
            generate(seed);
            prepare();
            fail_loop_one(cls, err, persist, name, &runs, &failures);
        }
    }
    printf("%s fault loop (scripted + 6 random workloads, transient and persistent): %" PRIu64
           " runs, %" PRIu64 " failed workloads\n", name, runs, failures);
    assert_true(failures > 0);
}

static void test_fail_writes(void **state)
{
    (void)state;
    fail_loop(SPL_VFS_FAULT_WRITE, -ENOSPC, "write");
}

static void test_fail_syncs(void **state)
{
    (void)state;
    fail_loop(SPL_VFS_FAULT_SYNC, -EIO, "sync");
}

static void test_fail_metadata(void **state)
{
    (void)state;
    fail_loop(SPL_VFS_FAULT_META, -EIO, "metadata");
}

/* One vote, then commit-only hard state changes, which are written without a sync: a
 * power loss where writeback reordered the unsynced writes and tore one of them (any
 * one) must still find the vote, and a commit no higher than the one written last. */
#define HS_ROUNDS 6

static uint64_t hs_workload(struct spl_vfs_mem *m, struct spl_raftlog_env_stats *st)
{
    struct spl_raftlog_env *env = env_open(m);
    struct spl_raftlog *log = NULL;
    assert_int_equal(spl_raftlog_open(env, 1, DIR, SPL_RAFTLOG_CREATE, &log, NULL, 0), 0);
    struct spl_raftlog_hardstate hs = {.term = 2, .vote = 3, .commit = 0};
    assert_int_equal(rl_append(log, 1, 4, 2, 1, 100, &hs), 0);
    spl_raftlog_env_stats(env, &st[0]);
    for (uint64_t i = 0; i < HS_ROUNDS; i++) {
        spl_raftlog_set_commit(log, i + 1);
        assert_int_equal(rl_append(log, 5 + i, 1, 2, 1, 100, NULL), 0);
    }
    spl_raftlog_env_stats(env, &st[1]);
    uint64_t unsynced = spl_vfs_mem_unsynced(m);
    spl_vfs_mem_crash_now(m);
    spl_raftlog_close(log);
    spl_raftlog_env_close(env);
    return unsynced;
}

static void test_hardstate_reordered_writeback(void **state)
{
    (void)state;
    uint64_t unsynced = 0, checked = 0;
    for (uint64_t k = 0; k == 0 || k < unsynced; k++) {
        struct spl_raftlog_env_stats st[2];
        struct spl_vfs_mem *m = fresh_disk();
        unsynced = hs_workload(m, st);
        /* every round wrote its commit; only the data was synced, one fdatasync each */
        assert_int_equal(st[1].hs_writes - st[0].hs_writes, HS_ROUNDS);
        assert_int_equal(st[1].syncs - st[0].syncs, HS_ROUNDS);
        spl_vfs_mem_reboot(m, SPL_VFS_REBOOT_TORN_ONE, k);
        struct spl_raftlog_env *env = env_open(m);
        struct spl_raftlog *log = NULL;
        char why[512] = "";
        int rc = spl_raftlog_open(env, 1, DIR, 0, &log, why, sizeof(why));
        if (rc != 0)
            fail_msg("torn unsynced call %" PRIu64 ": reopen failed: %s: %s", k,
                     spl_strerror(rc), why);
        struct spl_raftlog_hardstate hs;
        spl_raftlog_hardstate(log, &hs);
        assert_int_equal(hs.term, 2);
        assert_int_equal(hs.vote, 3);
        assert_true(hs.commit <= HS_ROUNDS);
        assert_true(spl_raftlog_last_index(log) >= 4 + HS_ROUNDS);
        spl_raftlog_close(log);
        spl_raftlog_env_close(env);
        spl_vfs_mem_destroy(m);
        checked++;
    }
    printf("hard state under reordered, torn writeback: %" PRIu64 " unsynced calls, each torn\n",
           checked);
    assert_true(unsynced >= HS_ROUNDS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_loop),
        cmocka_unit_test(test_crash_loop_random),
        cmocka_unit_test(test_fail_writes),
        cmocka_unit_test(test_fail_syncs),
        cmocka_unit_test(test_fail_metadata),
        cmocka_unit_test(test_hardstate_reordered_writeback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
