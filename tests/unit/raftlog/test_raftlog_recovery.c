/*
 * test_raftlog_recovery.c - recovery on the in-memory disk (vfs_mem): a torn last record
 * is cut at every byte offset; corruption before the tail is refused with the file and
 * offset; hard state writes are atomic under crashes at every point and tear length;
 * corruption found on read is reported, never served.
 */
#include "rl_test.h"

#include "base/log.h"
#include "raftlog/format.h"

#define SEG_SIZE (64u << 10)
#define POOL "/pool"
#define DIR "/g"

struct mfix {
    struct spl_vfs_mem *m;
    struct spl_raftlog_env *env;
    struct spl_raftlog *log;
    char why[512];
};

static void m_env(struct mfix *f)
{
    struct spl_raftlog_env_config cfg = {.vfs = spl_vfs_mem_vfs(f->m), .pool_dir = POOL,
                                         .segment_size = SEG_SIZE, .sync_threads = 0,
                                         .nonce_seed = 1};
    assert_int_equal(spl_raftlog_env_open(&cfg, &f->env), 0);
}

static int m_open_log(struct mfix *f)
{
    f->why[0] = '\0';
    return spl_raftlog_open(f->env, 1, DIR, SPL_RAFTLOG_CREATE, &f->log, f->why,
                            sizeof(f->why));
}

static void m_start(struct mfix *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(spl_vfs_mem_create(&f->m), 0);
    assert_int_equal(spl_raftlog_pool_format(spl_vfs_mem_vfs(f->m), POOL, SEG_SIZE, 6), 0);
    m_env(f);
    assert_int_equal(m_open_log(f), 0);
}

/* Close everything (after a crash too) and decide what survived. */
static void m_crash(struct mfix *f, enum spl_vfs_reboot_mode mode, uint64_t keep)
{
    spl_raftlog_close(f->log);
    f->log = NULL;
    spl_raftlog_env_close(f->env);
    f->env = NULL;
    spl_vfs_mem_reboot(f->m, mode, keep);
    assert_int_equal(spl_vfs_mem_open_fds(f->m), 0);
    m_env(f);
}

static void m_stop(struct mfix *f)
{
    spl_raftlog_close(f->log);
    spl_raftlog_env_close(f->env);
    assert_int_equal(spl_vfs_mem_open_fds(f->m), 0);
    spl_vfs_mem_destroy(f->m);
}

static void expect_fixed(uint64_t index, uint64_t *term, uint64_t *salt, size_t *len, void *arg)
{
    *term = 1;
    *salt = 5;
    *len = *(size_t *)arg;
}

static uint64_t rec_off(uint64_t index, size_t len)
{
    return SPL_RAFTLOG_SEGMENT_HEADER_SIZE + (index - 1) * spl_raftlog_rec_size(len);
}

static void first_seg_path(struct mfix *f, char *out, size_t n)
{
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(f->log, 0, &info);
    snprintf(out, n, DIR "/%s", info.name);
}

/* A crash while writing the last record, for every number of its bytes that reached the
 * disk: recovery keeps entries 1..5 and entry 6 exactly when all its data made it. */
static void torn_tail_case(size_t len)
{
    uint64_t rec = spl_raftlog_rec_size(len < 24 ? 24 : len);
    size_t real_len = len < 24 ? 24 : len;
    for (uint64_t cut = 0; cut <= rec; cut++) {
        struct mfix f;
        m_start(&f);
        assert_int_equal(rl_append(f.log, 1, 5, 1, 5, len, NULL), 0);
        spl_vfs_mem_crash_at(f.m, 1, cut); /* the next mutation is entry 6's write */
        assert_int_not_equal(rl_append(f.log, 6, 1, 1, 5, len, NULL), 0);
        assert_true(spl_vfs_mem_crashed(f.m));
        m_crash(&f, SPL_VFS_REBOOT_KEEP, 0);
        int rc = m_open_log(&f);
        if (rc != 0)
            fail_msg("cut %" PRIu64 ": %s: %s", cut, spl_strerror(rc), f.why);
        uint64_t want = cut >= SPL_RAFTLOG_REC_HEADER_SIZE + real_len ? 6 : 5;
        assert_int_equal(spl_raftlog_last_index(f.log), want);
        rl_check_range(f.log, 1, want + 1, expect_fixed, &real_len);
        /* the log goes on: a different entry 6 (or 7) is written over the torn bytes */
        assert_int_equal(rl_append(f.log, want + 1, 2, 2, 5, 77, NULL), 0);
        m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
        assert_int_equal(m_open_log(&f), 0);
        assert_int_equal(spl_raftlog_last_index(f.log), want + 2);
        uint64_t term = 0;
        assert_int_equal(spl_raftlog_term(f.log, want + 2, &term), 0);
        assert_int_equal(term, 2);
        m_stop(&f);
    }
}

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    spl_log_set_level(SPL_LOG_FATAL);
    torn_tail_case(100);
    torn_tail_case(4096);
    spl_log_set_level(SPL_LOG_INFO);
}

/* Without a sync, a power loss drops the unsynced tail; acknowledged entries stay. */
static void test_power_loss_drops_unsynced(void **state)
{
    (void)state;
    struct mfix f;
    m_start(&f);
    assert_int_equal(rl_append(f.log, 1, 10, 1, 5, 300, NULL), 0);
    /* write entries 11..20 but crash at the sync */
    spl_vfs_mem_crash_at(f.m, 2, UINT64_MAX);
    assert_int_not_equal(rl_append(f.log, 11, 10, 1, 5, 300, NULL), 0);
    m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
    assert_int_equal(m_open_log(&f), 0);
    assert_int_equal(spl_raftlog_last_index(f.log), 10);
    size_t len = 300;
    rl_check_range(f.log, 1, 11, expect_fixed, &len);
    m_stop(&f);
}

/* Flip every bit of one byte (twice restores it). */
static void m_flip(struct mfix *f, const char *path, uint64_t off)
{
    const struct spl_vfs *vfs = spl_vfs_mem_vfs(f->m);
    int fd;
    uint8_t b;
    assert_int_equal(spl_vfs_open(vfs, path, SPL_VFS_RDONLY, &fd), 0);
    assert_int_equal(spl_vfs_pread_full(vfs, fd, &b, 1, off), 0);
    spl_vfs_close(vfs, fd);
    b ^= 0xff;
    assert_int_equal(spl_vfs_mem_poke(f->m, path, off, &b, 1), 0);
}

static void expect_corrupt(struct mfix *f, const char *file, uint64_t off)
{
    char want[64];
    int rc = m_open_log(f);
    assert_int_equal(rc, SPL_ELOG_CORRUPT);
    snprintf(want, sizeof(want), "offset %" PRIu64 ":", off);
    if (!strstr(f->why, file) || !strstr(f->why, want))
        fail_msg("message '%s' does not name %s and %s", f->why, file, want);
}

static void test_middle_corruption_refused(void **state)
{
    (void)state;
    size_t len = 500;
    char path[128];
    /* a flipped data byte in entry 10 of 20 */
    struct mfix f;
    m_start(&f);
    assert_int_equal(rl_append(f.log, 1, 20, 1, 5, len, NULL), 0);
    first_seg_path(&f, path, sizeof(path));
    m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
    m_flip(&f, path, rec_off(10, len) + 100);
    expect_corrupt(&f, path, rec_off(10, len));
    /* a header field (the index) */
    m_flip(&f, path, rec_off(10, len) + 100);
    m_flip(&f, path, rec_off(15, len) + 24);
    expect_corrupt(&f, path, rec_off(15, len));
    m_flip(&f, path, rec_off(15, len) + 24);
    assert_int_equal(m_open_log(&f), 0);
    spl_raftlog_close(f.log);
    f.log = NULL;
    /* a torn-looking (zeroed) record in the middle is refused too */
    uint8_t zeros[64] = {0};
    assert_int_equal(spl_vfs_mem_poke(f.m, path, rec_off(12, len), zeros, sizeof(zeros)), 0);
    expect_corrupt(&f, path, rec_off(12, len));
    m_stop(&f);
}

static void test_corruption_in_older_segment(void **state)
{
    (void)state;
    size_t len = 4000;
    char path[128];
    struct mfix f;
    m_start(&f);
    assert_int_equal(rl_append(f.log, 1, 40, 1, 5, len, NULL), 0); /* 3 segments */
    assert_true(spl_raftlog_segment_count(f.log) >= 3);
    first_seg_path(&f, path, sizeof(path));
    m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
    /* the first segment's last record is damaged: the next segment proves it is not a tail */
    uint64_t per_seg = (SEG_SIZE - SPL_RAFTLOG_SEGMENT_HEADER_SIZE) / spl_raftlog_rec_size(len);
    m_flip(&f, path, rec_off(per_seg, len) + 40);
    expect_corrupt(&f, path, rec_off(per_seg, len));
    /* both header slots gone (slot 1 was never written) */
    m_flip(&f, path, 0);
    int rc = m_open_log(&f);
    assert_int_equal(rc, SPL_ELOG_CORRUPT);
    assert_non_null(strstr(f.why, "no valid segment header"));
    m_stop(&f);
}

static void test_missing_segment_is_a_gap(void **state)
{
    (void)state;
    struct mfix f;
    m_start(&f);
    assert_int_equal(rl_append(f.log, 1, 40, 1, 5, 4000, NULL), 0);
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(f.log, 1, &info);
    char path[128];
    snprintf(path, sizeof(path), DIR "/%s", info.name);
    m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
    assert_int_equal(spl_vfs_unlink(spl_vfs_mem_vfs(f.m), path), 0);
    assert_int_equal(m_open_log(&f), SPL_ELOG_CORRUPT);
    assert_non_null(strstr(f.why, "missing"));
    m_stop(&f);
}

static void test_corruption_found_on_read(void **state)
{
    (void)state;
    size_t len = 500;
    char path[128];
    struct mfix f;
    m_start(&f);
    assert_int_equal(rl_append(f.log, 1, 20, 1, 5, len, NULL), 0);
    first_seg_path(&f, path, sizeof(path));
    m_flip(&f, path, rec_off(7, len) + 200);
    struct spl_raftlog_entry out[20];
    uint32_t n = 99;
    rl_init_entries(out, 20);
    assert_int_equal(spl_raftlog_entries(f.log, 1, 21, UINT64_MAX, out, 20, &n),
                     SPL_ELOG_CORRUPT);
    assert_int_equal(n, 0);
    assert_int_equal(spl_raftlog_entries(f.log, 1, 7, UINT64_MAX, out, 20, &n), 0);
    assert_int_equal(n, 6);
    rl_free_entries(out, n);
    m_stop(&f);
}

/* Hard state: crash at every mutation of an update, with every tear length; after
 * recovery the state is the old one or the new one, and the new one once acknowledged. */
static void test_hardstate_atomic_under_crash(void **state)
{
    (void)state;
    uint32_t runs = 0;
    spl_log_set_level(SPL_LOG_FATAL); /* every run logs its injected failure */
    for (uint64_t n = 1; n <= 3; n++) {
        for (uint64_t tear = 0; tear <= SPL_RAFTLOG_HS_SLOT_SIZE; tear++) {
            for (int mode = 0; mode < 2; mode++) {
                struct mfix f;
                struct spl_raftlog_hardstate a = {.term = 7, .vote = 2, .commit = 0};
                struct spl_raftlog_hardstate b = {.term = 8, .vote = 3, .commit = 0}, got;
                m_start(&f);
                assert_int_equal(spl_raftlog_append_wait(f.log, NULL, 0, &a), 0);
                /* two more updates so that both slots have been used */
                a.term = 9;
                a.vote = 1;
                assert_int_equal(spl_raftlog_append_wait(f.log, NULL, 0, &a), 0);
                b.term = 10;
                spl_vfs_mem_crash_at(f.m, n, tear);
                int rc = spl_raftlog_append_wait(f.log, NULL, 0, &b);
                bool crashed = spl_vfs_mem_crashed(f.m);
                m_crash(&f, mode ? SPL_VFS_REBOOT_KEEP : SPL_VFS_REBOOT_DROP, 0);
                assert_int_equal(m_open_log(&f), 0);
                spl_raftlog_hardstate(f.log, &got);
                bool is_a = got.term == a.term && got.vote == a.vote;
                bool is_b = got.term == b.term && got.vote == b.vote;
                assert_true(is_a || is_b);
                if (rc == 0)
                    assert_true(is_b);
                if (!crashed)
                    assert_int_equal(rc, 0);
                m_stop(&f);
                runs++;
            }
        }
    }
    assert_true(runs > 300);
    spl_log_set_level(SPL_LOG_INFO);
}

/* A pool file reused by another group (same indexes at the same offsets): the records
 * left by the first user never count for the second (nonce), before or after restarts. */
static void test_reused_pool_file_leftovers(void **state)
{
    (void)state;
    struct mfix f;
    size_t len = 300;
    memset(&f, 0, sizeof(f));
    assert_int_equal(spl_vfs_mem_create(&f.m), 0);
    assert_int_equal(spl_raftlog_pool_format(spl_vfs_mem_vfs(f.m), POOL, SEG_SIZE, 1), 0);
    m_env(&f);
    struct spl_raftlog *a = NULL, *b = NULL;
    assert_int_equal(spl_raftlog_open(f.env, 1, "/a", SPL_RAFTLOG_CREATE, &a, NULL, 0), 0);
    assert_int_equal(rl_append(a, 1, 20, 1, 5, len, NULL), 0);
    spl_raftlog_close(a);
    assert_int_equal(spl_raftlog_remove(f.env, "/a"), 0);
    assert_int_equal(spl_raftlog_open(f.env, 2, "/b", SPL_RAFTLOG_CREATE, &b, NULL, 0), 0);
    assert_int_equal(rl_append(b, 1, 5, 1, 5, len, NULL), 0); /* the same file, same layout */
    spl_raftlog_close(b);
    m_crash(&f, SPL_VFS_REBOOT_DROP, 0);
    assert_int_equal(spl_raftlog_open(f.env, 2, "/b", 0, &b, f.why, sizeof(f.why)), 0);
    assert_int_equal(spl_raftlog_last_index(b), 5);
    rl_check_range(b, 1, 6, expect_fixed, &len);
    f.log = b;
    m_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_power_loss_drops_unsynced),
        cmocka_unit_test(test_middle_corruption_refused),
        cmocka_unit_test(test_corruption_in_older_segment),
        cmocka_unit_test(test_missing_segment_is_a_gap),
        cmocka_unit_test(test_corruption_found_on_read),
        cmocka_unit_test(test_hardstate_atomic_under_crash),
        cmocka_unit_test(test_reused_pool_file_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
