/*
 * test_raftlog_basic.c - the log on the real file system (temp dirs under /tmp): append,
 * read, restart; truncation and compaction across segments; the pool; hard state;
 * snapshot meta and install; argument checks; removal.
 */
#include "rl_test.h"

#define SEG_SIZE (64u << 10) /* small segments: a few dozen entries each */

struct fixture {
    char root[128];
    char pool[192];
    char dir[192];
    struct spl_raftlog_env *env;
    struct spl_raftlog *log;
};

static void open_env(struct fixture *f, uint32_t threads, bool fallback)
{
    struct spl_raftlog_env_config cfg = {.pool_dir = f->pool, .segment_size = SEG_SIZE,
                                         .sync_threads = threads,
                                         .pool_fallback_create = fallback};
    assert_int_equal(spl_raftlog_env_open(&cfg, &f->env), 0);
}

static void open_log(struct fixture *f)
{
    char why[256];
    int rc = spl_raftlog_open(f->env, 7, f->dir, SPL_RAFTLOG_CREATE, &f->log, why, sizeof(why));
    if (rc != 0)
        fail_msg("open: %s: %s", spl_strerror(rc), why);
}

static void reopen(struct fixture *f)
{
    spl_raftlog_close(f->log);
    spl_raftlog_env_close(f->env);
    open_env(f, 2, false);
    open_log(f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    rl_tmpdir(f->root, sizeof(f->root), "basic");
    snprintf(f->pool, sizeof(f->pool), "%s/walpool", f->root);
    snprintf(f->dir, sizeof(f->dir), "%s/log", f->root);
    assert_int_equal(spl_raftlog_pool_format(NULL, f->pool, SEG_SIZE, 16), 0);
    open_env(f, 2, false);
    open_log(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    spl_raftlog_close(f->log);
    spl_raftlog_env_close(f->env);
    rl_rmtree(f->root);
    free(f);
    return 0;
}

/* expectations: entries made with term = index / 100 + 1, salt = 1, len = index % 500 */
static void expect_default(uint64_t index, uint64_t *term, uint64_t *salt, size_t *len,
                           void *arg)
{
    (void)arg;
    *term = 1;
    *salt = 1;
    *len = 24 + (index * 37) % 1500;
}

static void append_default(struct fixture *f, uint64_t first, uint64_t last)
{
    for (uint64_t i = first; i <= last; i++) {
        uint64_t term, salt;
        size_t len;
        expect_default(i, &term, &salt, &len, NULL);
        assert_int_equal(rl_append(f->log, i, 1, term, salt, len, NULL), 0);
    }
}

static void test_append_read_restart(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(spl_raftlog_first_index(f->log), 1);
    assert_int_equal(spl_raftlog_last_index(f->log), 0);
    uint64_t term = 99;
    assert_int_equal(spl_raftlog_term(f->log, 0, &term), 0);
    assert_int_equal(term, 0);
    append_default(f, 1, 300); /* ~220 KiB: several segments */
    assert_int_equal(spl_raftlog_last_index(f->log), 300);
    assert_true(spl_raftlog_segment_count(f->log) >= 3);
    rl_check_range(f->log, 1, 301, expect_default, NULL);
    reopen(f);
    assert_int_equal(spl_raftlog_first_index(f->log), 1);
    assert_int_equal(spl_raftlog_last_index(f->log), 300);
    rl_check_range(f->log, 1, 301, expect_default, NULL);
    assert_int_equal(spl_raftlog_term(f->log, 300, &term), 0);
    assert_int_equal(term, 1);
    assert_int_equal(spl_raftlog_term(f->log, 301, &term), SPL_ERAFT_UNAVAILABLE);
    /* appending continues where it stopped */
    append_default(f, 301, 320);
    rl_check_range(f->log, 290, 321, expect_default, NULL);
}

static void test_entries_limits(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 50);
    struct spl_raftlog_entry out[8];
    uint32_t n = 0;
    rl_init_entries(out, 8);
    /* out_cap bounds the count */
    assert_int_equal(spl_raftlog_entries(f->log, 1, 51, UINT64_MAX, out, 8, &n), 0);
    assert_int_equal(n, 8);
    rl_free_entries(out, n);
    /* max_bytes: at least one entry, then stop before going over */
    assert_int_equal(spl_raftlog_entries(f->log, 10, 51, 1, out, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].index, 10);
    rl_free_entries(out, n);
    uint64_t two = 24 + (10 * 37) % 1500 + 24 + (11 * 37) % 1500;
    assert_int_equal(spl_raftlog_entries(f->log, 10, 51, two, out, 8, &n), 0);
    assert_int_equal(n, 2);
    rl_free_entries(out, n);
    assert_int_equal(spl_raftlog_entries(f->log, 0, 5, UINT64_MAX, out, 8, &n),
                     SPL_ERAFT_COMPACTED);
    assert_int_equal(spl_raftlog_entries(f->log, 45, 52, UINT64_MAX, out, 8, &n),
                     SPL_ERAFT_UNAVAILABLE);
    assert_int_equal(spl_raftlog_entries(f->log, 5, 5, UINT64_MAX, out, 8, &n), SPL_EINVAL_ARG);
    assert_int_equal(n, 0);
}

static void test_append_checks(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 10);
    /* a gap */
    assert_int_equal(rl_append(f->log, 12, 1, 1, 1, 30, NULL), SPL_ELOG_BADINDEX);
    /* a term below the previous entry's */
    struct spl_raftlog_hardstate hs = {.term = 3, .vote = 2, .commit = 0};
    assert_int_equal(rl_append(f->log, 11, 1, 3, 1, 30, &hs), 0);
    assert_int_equal(rl_append(f->log, 12, 1, 2, 1, 30, NULL), SPL_ELOG_BADINDEX);
    /* too big for a segment */
    assert_int_equal(rl_append(f->log, 12, 1, 3, 1, SEG_SIZE, NULL), SPL_ETOOBIG);
    assert_int_equal(spl_raftlog_last_index(f->log), 11);
    /* an entry of exactly the record capacity fits (in a segment of its own) */
    uint64_t max = spl_raftlog_entry_data_max(f->env);
    assert_int_equal(rl_append(f->log, 12, 1, 3, 1, max, NULL), 0);
    assert_int_equal(rl_append(f->log, 13, 1, 3, 1, 100, NULL), 0);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), 13);
    struct spl_raftlog_entry e[1];
    uint32_t n;
    rl_init_entries(e, 1);
    assert_int_equal(spl_raftlog_entries(f->log, 12, 13, UINT64_MAX, e, 1, &n), 0);
    assert_true(rl_entry_ok(&e[0], 12, 3, 1, max));
    rl_free_entries(e, n);
}

/* entries after truncation: terms 1 below `cut`, term 2 from it */
struct trunc_arg {
    uint64_t cut;
};

static void expect_trunc(uint64_t index, uint64_t *term, uint64_t *salt, size_t *len, void *arg)
{
    struct trunc_arg *a = arg;
    expect_default(index, term, salt, len, NULL);
    if (index >= a->cut) {
        *term = 2;
        *salt = 2;
        *len = 100;
    }
}

static void test_truncate_across_segments(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 300);
    uint32_t before = spl_raftlog_segment_count(f->log);
    struct spl_raftlog_env_stats st;
    spl_raftlog_env_stats(f->env, &st);
    uint64_t free_before = st.pool_free;
    /* cut in the middle of an early segment: later segments go back to the pool */
    assert_int_equal(spl_raftlog_truncate_suffix(f->log, 70), 0);
    assert_int_equal(spl_raftlog_last_index(f->log), 69);
    assert_true(spl_raftlog_segment_count(f->log) < before);
    spl_raftlog_env_stats(f->env, &st);
    assert_true(st.pool_free > free_before);
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(f->log, spl_raftlog_segment_count(f->log) - 1, &info);
    assert_true(info.sealed);
    assert_int_equal(info.last_index, 69);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), 69);
    rl_check_range(f->log, 1, 70, expect_default, NULL);
    /* new entries of a later term continue the log in a new segment */
    struct spl_raftlog_hardstate hs = {.term = 2};
    for (uint64_t i = 70; i < 120; i++)
        assert_int_equal(rl_append(f->log, i, 1, 2, 2, 100, i == 70 ? &hs : NULL), 0);
    struct trunc_arg a = {.cut = 70};
    rl_check_range(f->log, 1, 120, expect_trunc, &a);
    reopen(f);
    rl_check_range(f->log, 1, 120, expect_trunc, &a);
    /* truncating at an index past the end is a no-op, below first is refused */
    assert_int_equal(spl_raftlog_truncate_suffix(f->log, 500), 0);
    assert_int_equal(spl_raftlog_truncate_suffix(f->log, 0), SPL_ELOG_BADINDEX);
    /* truncate again, into the sealed segment: it is sealed lower */
    assert_int_equal(spl_raftlog_truncate_suffix(f->log, 40), 0);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), 39);
    rl_check_range(f->log, 1, 40, expect_default, NULL);
}

static void test_implicit_truncation(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 120);
    /* an append that starts inside the log replaces the suffix (Raft conflict) */
    struct spl_raftlog_hardstate hs = {.term = 2};
    assert_int_equal(rl_append(f->log, 100, 5, 2, 2, 100, &hs), 0);
    assert_int_equal(spl_raftlog_last_index(f->log), 104);
    struct trunc_arg a = {.cut = 100};
    rl_check_range(f->log, 1, 105, expect_trunc, &a);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), 104);
    rl_check_range(f->log, 1, 105, expect_trunc, &a);
    /* an append at exactly the first index of a segment */
    uint32_t nseg = spl_raftlog_segment_count(f->log);
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(f->log, nseg - 1, &info);
    uint64_t cut = info.first_index;
    assert_int_equal(rl_append(f->log, cut, 1, 2, 2, 100, NULL), 0);
    assert_int_equal(spl_raftlog_last_index(f->log), cut);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), cut);
}

static void test_compact_and_snapshot(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 300);
    uint32_t before = spl_raftlog_segment_count(f->log);
    /* no snapshot: the log refuses to drop anything */
    assert_int_equal(spl_raftlog_compact_prefix(f->log, 100), SPL_EINVAL_ARG);
    struct spl_raftlog_snapfile files[2] = {{"chunk_1", 4096}, {"chunk_2", 8192}};
    struct spl_raftlog_snapmeta m = {.index = 200, .term = 1, .epoch = 4,
                                     .conf = {.voter_count = 3, .voters = {1, 2, 3}},
                                     .file_count = 2, .files = files, .blob_len = 3,
                                     .blob = "abc"};
    /* a term that does not match the log is refused */
    m.term = 5;
    assert_int_equal(spl_raftlog_save_snapmeta(f->log, &m), SPL_EINVAL_ARG);
    m.term = 1;
    assert_int_equal(spl_raftlog_save_snapmeta(f->log, &m), 0);
    assert_int_equal(spl_raftlog_snapshot_index(f->log), 200);
    assert_int_equal(spl_raftlog_compact_prefix(f->log, 201), SPL_EINVAL_ARG);
    assert_int_equal(spl_raftlog_compact_prefix(f->log, 200), 0);
    uint64_t first = spl_raftlog_first_index(f->log);
    assert_true(first > 1 && first <= 201);
    assert_true(spl_raftlog_segment_count(f->log) < before);
    uint64_t term = 0;
    assert_int_equal(spl_raftlog_term(f->log, first - 1, &term), 0);
    assert_int_equal(term, 1);
    assert_int_equal(spl_raftlog_term(f->log, first - 2, &term), SPL_ERAFT_COMPACTED);
    rl_check_range(f->log, first, 301, expect_default, NULL);
    reopen(f);
    assert_int_equal(spl_raftlog_first_index(f->log), first);
    assert_int_equal(spl_raftlog_last_index(f->log), 300);
    rl_check_range(f->log, first, 301, expect_default, NULL);
    struct spl_raftlog_snapmeta d;
    assert_int_equal(spl_raftlog_snapmeta(f->log, &d), 0);
    assert_int_equal(d.index, 200);
    assert_int_equal(d.epoch, 4);
    assert_int_equal(d.file_count, 2);
    assert_string_equal(d.files[1].name, "chunk_2");
    assert_int_equal(d.files[1].size, 8192);
    assert_memory_equal(d.blob, "abc", 3);
    spl_raftlog_snapmeta_free(&d);
    /* an older snapshot is stale; compacting everything keeps the last segment */
    m.index = 150;
    assert_int_equal(spl_raftlog_save_snapmeta(f->log, &m), SPL_ERAFT_STALE);
    m.index = 300;
    assert_int_equal(spl_raftlog_save_snapmeta(f->log, &m), 0);
    assert_int_equal(spl_raftlog_compact_prefix(f->log, 300), 0);
    assert_int_equal(spl_raftlog_segment_count(f->log), 1);
    /* truncating at or below the snapshot is refused */
    assert_int_equal(spl_raftlog_truncate_suffix(f->log, 300), SPL_ELOG_BADINDEX);
}

static void test_install_snapshot(void **state)
{
    struct fixture *f = *state;
    append_default(f, 1, 100);
    /* the log holds entry 50 with the snapshot's term: entries after it stay */
    struct spl_raftlog_snapmeta m = {.index = 50, .term = 1, .epoch = 1,
                                     .conf = {.voter_count = 1, .voters = {7}}};
    assert_int_equal(spl_raftlog_install_snapshot(f->log, &m), 0);
    assert_int_equal(spl_raftlog_last_index(f->log), 100);
    /* a snapshot the log does not match: the log restarts after it */
    m.index = 500;
    m.term = 4;
    assert_int_equal(spl_raftlog_install_snapshot(f->log, &m), 0);
    assert_int_equal(spl_raftlog_first_index(f->log), 501);
    assert_int_equal(spl_raftlog_last_index(f->log), 500);
    assert_int_equal(spl_raftlog_segment_count(f->log), 0);
    uint64_t term = 0;
    assert_int_equal(spl_raftlog_term(f->log, 500, &term), 0);
    assert_int_equal(term, 4);
    struct spl_raftlog_hardstate hs = {.term = 4, .vote = 0, .commit = 500};
    assert_int_equal(rl_append(f->log, 499, 1, 4, 3, 50, &hs), SPL_ELOG_BADINDEX);
    assert_int_equal(rl_append(f->log, 501, 10, 4, 3, 50, &hs), 0);
    reopen(f);
    assert_int_equal(spl_raftlog_first_index(f->log), 501);
    assert_int_equal(spl_raftlog_last_index(f->log), 510);
    assert_int_equal(spl_raftlog_snapshot_index(f->log), 500);
    struct spl_raftlog_hardstate got;
    spl_raftlog_hardstate(f->log, &got);
    assert_int_equal(got.term, 4);
    assert_int_equal(got.commit, 500);
}

static void test_hardstate_persists(void **state)
{
    struct fixture *f = *state;
    struct spl_raftlog_hardstate hs = {.term = 5, .vote = 3, .commit = 0}, got;
    assert_int_equal(spl_raftlog_append_wait(f->log, NULL, 0, &hs), 0);
    for (uint64_t t = 6; t < 20; t++) {
        hs.term = t;
        hs.vote = t % 3;
        assert_int_equal(spl_raftlog_append_wait(f->log, NULL, 0, &hs), 0);
    }
    append_default(f, 1, 10);
    hs.commit = 10;
    spl_raftlog_set_commit(f->log, 8); /* lazy; close makes it durable */
    reopen(f);
    spl_raftlog_hardstate(f->log, &got);
    assert_int_equal(got.term, 19);
    assert_int_equal(got.vote, 19 % 3);
    assert_int_equal(got.commit, 8);
    hs.commit = 10;
    assert_int_equal(spl_raftlog_append_wait(f->log, NULL, 0, &hs), 0);
    reopen(f);
    spl_raftlog_hardstate(f->log, &got);
    assert_int_equal(got.commit, 10);
}

static void test_pool_take_return(void **state)
{
    struct fixture *f = *state;
    struct spl_raftlog_env_stats st0, st;
    spl_raftlog_env_stats(f->env, &st0);
    assert_int_equal(st0.pool_free, 16);
    /* formatting again with another size is refused; the same size is idempotent */
    assert_int_equal(spl_raftlog_pool_format(NULL, f->pool, SEG_SIZE * 2, 20), SPL_ELOG_FOREIGN);
    assert_int_equal(spl_raftlog_pool_format(NULL, f->pool, SEG_SIZE, 16), 0);
    append_default(f, 1, 60);
    spl_raftlog_env_stats(f->env, &st);
    uint32_t segs = spl_raftlog_segment_count(f->log);
    assert_int_equal(st.pool_free, 16 - segs);
    assert_int_equal(st.segments_taken, segs);
    /* the segment files really moved: the pool directory holds the rest */
    spl_raftlog_close(f->log);
    f->log = NULL;
    assert_int_equal(spl_raftlog_remove(f->env, f->dir), 0);
    spl_raftlog_env_stats(f->env, &st);
    assert_int_equal(st.pool_free, 16);
    assert_int_equal(access(f->dir, F_OK), -1);
    /* exhaustion: SPL_ELOG_POOLEMPTY and nothing written */
    open_log(f);
    int rc = 0;
    uint64_t i = 1;
    while (rc == 0 && i < 100000)
        rc = rl_append(f->log, i++, 1, 1, 1, 8000, NULL);
    assert_int_equal(rc, SPL_ELOG_POOLEMPTY);
    assert_int_equal(spl_raftlog_last_index(f->log), i - 2);
    /* the log still works once a file is back */
    struct spl_raftlog_snapmeta m = {.index = 20, .term = 1};
    assert_int_equal(spl_raftlog_save_snapmeta(f->log, &m), 0);
    assert_int_equal(spl_raftlog_compact_prefix(f->log, 20), 0);
    assert_int_equal(rl_append(f->log, i - 1, 1, 1, 1, 8000, NULL), 0);
    assert_int_equal(spl_raftlog_last_index(f->log), i - 1);
}

static void test_pool_fallback_create(void **state)
{
    struct fixture *f = *state;
    spl_raftlog_close(f->log);
    spl_raftlog_env_close(f->env);
    rl_rmtree(f->pool);
    rl_rmtree(f->dir);
    assert_int_equal(spl_raftlog_pool_format(NULL, f->pool, SEG_SIZE, 1), 0);
    open_env(f, 1, true);
    open_log(f);
    append_default(f, 1, 200);
    struct spl_raftlog_env_stats st;
    spl_raftlog_env_stats(f->env, &st);
    assert_int_equal(st.segments_taken, 1);
    assert_true(st.segments_created >= 2);
    reopen(f);
    rl_check_range(f->log, 1, 201, expect_default, NULL);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char dir[256], why[256];
    struct spl_raftlog *log = NULL;
    snprintf(dir, sizeof(dir), "%s/nothing", f->root);
    assert_int_equal(spl_raftlog_open(f->env, 7, dir, 0, &log, why, sizeof(why)), -ENOENT);
    /* another group's directory */
    append_default(f, 1, 5);
    spl_raftlog_close(f->log);
    f->log = NULL;
    assert_int_equal(spl_raftlog_open(f->env, 8, f->dir, 0, &log, why, sizeof(why)),
                     SPL_ELOG_FOREIGN);
    open_log(f);
}

static void free_nothing(void *ctx, void *data)
{
    (void)ctx;
    (void)data;
}

/* One append of thousands of entries (many pwritev batches and several rolls), and an
 * entry made of more slices than one pwritev takes (a record split over writes). */
static void test_big_batches(void **state)
{
    struct fixture *f = *state;
    uint32_t n = 5000;
    struct spl_raftlog_entry *e = calloc(n, sizeof(*e));
    for (uint32_t i = 0; i < n; i++)
        rl_make_entry(&e[i], i + 1, 1, 9, 30);
    assert_int_equal(spl_raftlog_append_wait(f->log, e, n, NULL), 0);
    rl_free_entries(e, n);
    free(e);
    assert_true(spl_raftlog_segment_count(f->log) >= 4);
    static uint8_t bytes[3000 * 8];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 7);
    struct spl_raftlog_entry big = {.term = 1, .index = n + 1, .type = 0};
    spl_iobuf_init(&big.data);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(spl_iobuf_append_external(&big.data, bytes + i * 8, 8, free_nothing,
                                                   NULL), 0);
    assert_true(spl_iobuf_slices(&big.data) != NULL);
    assert_int_equal(spl_raftlog_append_wait(f->log, &big, 1, NULL), 0);
    spl_iobuf_reset(&big.data);
    reopen(f);
    assert_int_equal(spl_raftlog_last_index(f->log), n + 1);
    struct spl_raftlog_entry out[1];
    uint32_t got = 0;
    rl_init_entries(out, 1);
    assert_int_equal(spl_raftlog_entries(f->log, n + 1, n + 2, UINT64_MAX, out, 1, &got), 0);
    assert_int_equal(spl_iobuf_len(&out[0].data), sizeof(bytes));
    uint8_t *copy = malloc(sizeof(bytes));
    spl_iobuf_copy_out(&out[0].data, 0, copy, sizeof(bytes));
    assert_memory_equal(copy, bytes, sizeof(bytes));
    free(copy);
    rl_free_entries(out, 1);
    struct spl_raftlog_entry some[8];
    rl_init_entries(some, 8);
    assert_int_equal(spl_raftlog_entries(f->log, 2500, 2508, UINT64_MAX, some, 8, &got), 0);
    assert_int_equal(got, 8);
    for (uint32_t i = 0; i < got; i++)
        assert_true(rl_entry_ok(&some[i], 2500 + i, 1, 9, 30));
    rl_free_entries(some, got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_implicit_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_and_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardstate_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_take_return, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_fallback_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_batches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
