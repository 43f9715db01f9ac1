/*
 * test_raftlog_inspect.c - raftlog-inspect on a real log: it lists the hard state, the
 * snapshot meta and every record, exits 0 on a healthy log, and reports (exit 1) a
 * record damaged before the tail.
 */
#include "rl_test.h"

#ifndef RAFTLOG_INSPECT
#error "RAFTLOG_INSPECT must name the raftlog-inspect binary"
#endif

/* Run the tool; returns its exit status and its output in out. */
static int run_tool(const char *args, char *out, size_t out_len)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", RAFTLOG_INSPECT, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_inspect(void **state)
{
    (void)state;
    char root[128], pool[192], dir[192], path[512];
    static char out[1 << 16];
    rl_tmpdir(root, sizeof(root), "inspect");
    snprintf(pool, sizeof(pool), "%s/walpool", root);
    snprintf(dir, sizeof(dir), "%s/log", root);
    assert_int_equal(spl_raftlog_pool_format(NULL, pool, 64 << 10, 4), 0);
    struct spl_raftlog_env *env;
    struct spl_raftlog *log;
    struct spl_raftlog_env_config cfg = {.pool_dir = pool, .segment_size = 64 << 10,
                                         .sync_threads = 1};
    assert_int_equal(spl_raftlog_env_open(&cfg, &env), 0);
    assert_int_equal(spl_raftlog_open(env, 3, dir, SPL_RAFTLOG_CREATE, &log, NULL, 0), 0);
    struct spl_raftlog_hardstate hs = {.term = 2, .vote = 1, .commit = 0};
    assert_int_equal(rl_append(log, 1, 10, 2, 1, 500, &hs), 0);
    struct spl_raftlog_snapfile files[1] = {{"chunk_7", 4096}};
    struct spl_raftlog_snapmeta m = {.index = 4, .term = 2, .epoch = 3,
                                     .conf = {.voter_count = 2, .voters = {1, 2}},
                                     .file_count = 1, .files = files};
    assert_int_equal(spl_raftlog_save_snapmeta(log, &m), 0);
    struct spl_raftlog_seg_info info;
    spl_raftlog_segment_info(log, 0, &info);
    snprintf(path, sizeof(path), "%s/%s", dir, info.name);
    spl_raftlog_close(log);
    spl_raftlog_env_close(env);

    assert_int_equal(run_tool(dir, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "term 2 vote 1"));
    assert_non_null(strstr(out, "index 4 term 2 epoch 3"));
    assert_non_null(strstr(out, "file chunk_7 4096 bytes"));
    assert_non_null(strstr(out, "index 7 term 2 type 1 len 500 offset"));
    assert_non_null(strstr(out, "records: 10 (1..10)"));
    assert_non_null(strstr(out, "\nok\n"));
    char args[512];
    snprintf(args, sizeof(args), "--pool %s", pool);
    assert_int_equal(run_tool(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "3 free segment files"));

    /* damage record 3: the tool stops there and reports the valid records after it */
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    uint64_t off = 4096 + 2 * spl_raftlog_rec_size(500) + 100;
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    fputc(c ^ 0xff, f);
    fclose(f);
    assert_int_equal(run_tool(dir, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "records: 2 (1..2)"));
    assert_non_null(strstr(out, "CORRUPT: valid record 4"));
    assert_non_null(strstr(out, "PROBLEMS FOUND"));
    rl_rmtree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_inspect)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
