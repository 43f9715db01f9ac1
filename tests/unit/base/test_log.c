/* test_log.c - log lines in a file: format, level filtering, parse_level, no interleaving
 * between threads, a bad path keeping the old target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

static char tmp_dir[64];
static char log_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/spl_test_log.XXXXXX");
    if (!mkdtemp(tmp_dir))
        return -1;
    snprintf(log_path, sizeof(log_path), "%s/test.log", tmp_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    spl_log_close();
    unlink(log_path);
    return rmdir(tmp_dir);
}

/* The whole log file as a string (caller frees); the file is then truncated. */
static char *read_log(void)
{
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        buf = strdup("");
    }
    assert_int_equal(truncate(log_path, 0), 0);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* "2026-11-22T03:49:02.123456Z W tag message" */
static bool line_well_formed(const char *line, size_t len, char level, const char *tag)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ ";
    size_t n = sizeof(shape) - 1;
    if (len < n + 2)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)line[i]) : line[i] != shape[i])
            return false;
    }
    if (line[n] != level || line[n + 1] != ' ')
        return false;
    return strncmp(line + n + 2, tag, strlen(tag)) == 0 && line[n + 2 + strlen(tag)] == ' ';
}

static void test_file_and_levels(void **state)
{
    (void)state;
    assert_int_equal(spl_log_open(log_path, false), 0);
    spl_log_set_level(SPL_LOG_WARN);
    assert_int_equal(spl_log_get_level(), SPL_LOG_WARN);
    LOG_DEBUG("t", "hidden debug");
    LOG_INFO("t", "hidden info");
    LOG_WARN("rpc", "conn %s: frame too large (len=%d)", "127.0.0.1:4000", 99);
    LOG_ERROR("raft", "error line");
    char *text = read_log();
    assert_int_equal(count_lines(text), 2);
    assert_null(strstr(text, "hidden"));
    const char *second = strchr(text, '\n') + 1;
    assert_true(line_well_formed(text, (size_t)(second - text), 'W', "rpc"));
    assert_non_null(strstr(text, " W rpc conn 127.0.0.1:4000: frame too large (len=99)\n"));
    assert_true(line_well_formed(second, strlen(second), 'E', "raft"));
    free(text);

    spl_log_set_level(SPL_LOG_DEBUG);
    LOG_DEBUG("t", "now visible");
    text = read_log();
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, " D t now visible\n"));
    free(text);
    spl_log_set_level(SPL_LOG_INFO);
}

static void test_long_line_truncated(void **state)
{
    (void)state;
    assert_int_equal(spl_log_open(log_path, false), 0);
    size_t n = 10000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    LOG_ERROR("big", "%s", big);
    LOG_ERROR("after", "short");
    char *text = read_log();
    assert_int_equal(count_lines(text), 2);
    const char *second = strchr(text, '\n') + 1;
    assert_true((size_t)(second - text) < n);
    assert_true(line_well_formed(second, strlen(second), 'E', "after"));
    free(text);
    free(big);
}

static void test_bad_path_keeps_old_target(void **state)
{
    (void)state;
    assert_int_equal(spl_log_open(log_path, false), 0);
    assert_int_equal(spl_log_open("/nonexistent-dir/x.log", false), -ENOENT);
    LOG_ERROR("keep", "still here");
    char *text = read_log();
    assert_non_null(strstr(text, " E keep still here\n"));
    free(text);
    spl_log_close();
    LOG_ERROR("closed", "to stderr only");
    text = read_log();
    assert_string_equal(text, "");
    free(text);
}

static void test_parse_level(void **state)
{
    (void)state;
    enum spl_log_level l = SPL_LOG_FATAL;
    assert_int_equal(spl_log_parse_level("debug", &l), 0);
    assert_int_equal(l, SPL_LOG_DEBUG);
    assert_int_equal(spl_log_parse_level("INFO", &l), 0);
    assert_int_equal(l, SPL_LOG_INFO);
    assert_int_equal(spl_log_parse_level("Warn", &l), 0);
    assert_int_equal(l, SPL_LOG_WARN);
    assert_int_equal(spl_log_parse_level("error", &l), 0);
    assert_int_equal(l, SPL_LOG_ERROR);
    l = SPL_LOG_INFO;
    assert_int_equal(spl_log_parse_level("fatal", &l), -EINVAL);
    assert_int_equal(spl_log_parse_level("", &l), -EINVAL);
    assert_int_equal(spl_log_parse_level("inf", &l), -EINVAL);
    assert_int_equal(spl_log_parse_level("warning", &l), -EINVAL);
    assert_int_equal(l, SPL_LOG_INFO); /* untouched on error */
}

#define THREADS 4
#define LINES_PER_THREAD 500

static void *writer_main(void *arg)
{
    long id = (long)arg;
    char filler[300];
    memset(filler, 'a' + (int)id, sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        LOG_WARN("thr", "id=%ld i=%d %s end", id, i, filler);
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    (void)state;
    assert_int_equal(spl_log_open(log_path, false), 0);
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    char *text = read_log();
    assert_int_equal(count_lines(text), THREADS * LINES_PER_THREAD);
    int per_thread[THREADS] = {0};
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_true(line_well_formed(line, (size_t)(nl - line), 'W', "thr"));
        long id = -1;
        int i = -1;
        char *body = strstr(line, "id=");
        assert_true(body && body < nl);
        assert_int_equal(sscanf(body, "id=%ld i=%d", &id, &i), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(i, per_thread[id]); /* each thread's lines in order */
        per_thread[id]++;
        assert_memory_equal(nl - 4, " end", 4);
        line = nl + 1;
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_levels),
        cmocka_unit_test(test_long_line_truncated),
        cmocka_unit_test(test_bad_path_keeps_old_target),
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_threads_do_not_interleave),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
