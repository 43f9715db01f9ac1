/*
 * test_filecopy.c - the installer's file copy (filecopy.c) against a scripted source:
 * pieces, resume at the last good offset after failures, CRC rejection, source rotation,
 * giving up, missing files, the throttle, stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/internal.h"

#define FILES_MAX 4
#define LOG_MAX 4096

struct fake {
    uint32_t file_count;
    const char *names[FILES_MAX];
    uint8_t *data[FILES_MAX];
    uint64_t size[FILES_MAX];
    bool missing[FILES_MAX];
    int calls;
    int fail_every, corrupt_every;
    uint64_t bad_source; /* this source always fails */
    uint64_t commit;
    int log_count;
    struct {
        int file;
        uint64_t offset;
        uint64_t source;
        bool ok;
    } log[LOG_MAX];
};

static int fake_get(void *ctx, uint64_t source, uint64_t group, uint64_t snap_index,
                    uint64_t snap_term, const char *name, uint64_t offset, uint32_t length,
                    struct spl__rn_getfile_resp *resp, struct spl_iobuf *data)
{
    struct fake *f = ctx;
    f->calls++;
    int fi = -1;
    for (uint32_t i = 0; i < f->file_count; i++)
        if (strcmp(f->names[i], name) == 0)
            fi = (int)i;
    assert_true(fi >= 0);
    assert_int_equal(group, 7);
    assert_int_equal(snap_index, 100);
    assert_int_equal(snap_term, 3);
    int slot = f->log_count < LOG_MAX ? f->log_count++ : LOG_MAX - 1;
    f->log[slot].file = fi;
    f->log[slot].offset = offset;
    f->log[slot].source = source;
    f->log[slot].ok = false;
    if (source == f->bad_source || (f->fail_every && f->calls % f->fail_every == 0))
        return SPL_ERPC_TIMEDOUT;
    resp->commit_index = ++f->commit;
    if (f->missing[fi]) {
        resp->missing = true;
        resp->eof = true;
        f->log[slot].ok = true;
        return 0;
    }
    uint64_t n = offset < f->size[fi] ? f->size[fi] - offset : 0;
    if (n > length)
        n = length;
    resp->file_size = f->size[fi];
    resp->eof = offset + n >= f->size[fi];
    resp->crc32c = spl_crc32c(0, f->data[fi] + offset, n);
    if (n && f->corrupt_every && f->calls % f->corrupt_every == 0) {
        uint8_t *copy = malloc(n);
        memcpy(copy, f->data[fi] + offset, n);
        copy[n / 2] ^= 0x40; /* a bit flipped on the way */
        assert_int_equal(spl_iobuf_append(data, copy, n), 0);
        free(copy);
        return 0;
    }
    if (n)
        assert_int_equal(spl_iobuf_append(data, f->data[fi] + offset, n), 0);
    f->log[slot].ok = true;
    return 0;
}

static const struct spl__rn_fetch_ops fake_ops = {.get_file = fake_get};

static char g_dir[256];

static int setup(void **state)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/rn-filecopy-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    struct fake *f = calloc(1, sizeof(*f));
    static const char *names[] = {"empty", "small", "big", "gone"};
    static const uint64_t sizes[] = {0, 1000, (7u << 19) + 123, 500};
    f->file_count = 4;
    for (int i = 0; i < 4; i++) {
        f->names[i] = names[i];
        f->size[i] = sizes[i];
        f->data[i] = malloc(sizes[i] + 1);
        for (uint64_t b = 0; b < sizes[i]; b++)
            f->data[i][b] = (uint8_t)(b * 31 + (uint64_t)i * 7 + (b >> 9));
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fake *f = *state;
    for (int i = 0; i < 4; i++)
        free(f->data[i]);
    free(f);
    spl__rn_rmtree(g_dir);
    return 0;
}

static void copy_init(struct spl__rn_copy *c, struct fake *f, struct spl_fsm_file *files,
                      char *staging, size_t len, const char *sub)
{
    memset(c, 0, sizeof(*c));
    snprintf(staging, len, "%s/%s", g_dir, sub);
    for (uint32_t i = 0; i < f->file_count; i++) {
        files[i].name = (char *)f->names[i];
        files[i].size = f->size[i];
    }
    c->staging_dir = staging;
    c->group = 7;
    c->snap_index = 100;
    c->snap_term = 3;
    c->file_count = f->file_count;
    c->files = files;
    c->sources[0] = 1;
    c->sources[1] = 2;
    c->source_count = 2;
    c->piece_bytes = 1u << 20;
    c->retry_sleep_ms = 1;
    c->fetch = &fake_ops;
    c->fetch_ctx = f;
}

/* Every present file in staging equals its source; missing ones are absent. */
static void check_files(struct fake *f, const char *staging)
{
    for (uint32_t i = 0; i < f->file_count; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", staging, f->names[i]);
        int fd = open(path, O_RDONLY);
        if (f->missing[i]) {
            assert_true(fd < 0);
            continue;
        }
        assert_true(fd >= 0);
        struct stat sb;
        assert_int_equal(fstat(fd, &sb), 0);
        assert_int_equal((uint64_t)sb.st_size, f->size[i]);
        uint8_t *buf = malloc(f->size[i] + 1);
        assert_int_equal(pread(fd, buf, f->size[i], 0), (ssize_t)f->size[i]);
        assert_memory_equal(buf, f->data[i], f->size[i]);
        free(buf);
        close(fd);
    }
}

/* Per file, the offsets asked for never go back (a retry asks for the same offset). */
static void check_resumed(struct fake *f)
{
    uint64_t last[FILES_MAX] = {0};
    for (int i = 0; i < f->log_count; i++) {
        assert_true(f->log[i].offset >= last[f->log[i].file]);
        last[f->log[i].file] = f->log[i].offset;
    }
}

static void test_copy_clean(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    f->missing[3] = false;
    copy_init(&c, f, files, staging, sizeof(staging), "clean");
    assert_int_equal(spl__rn_copy_run(&c), 0);
    check_files(f, staging);
    assert_int_equal(c.bytes, f->size[0] + f->size[1] + f->size[2] + f->size[3]);
    assert_int_equal(c.retries, 0);
    assert_int_equal(c.catchup_index, f->commit); /* D = the last commit index read */
    /* 1 + 1 + 4 pieces (3.5 MiB in 1 MiB pieces) + 1 */
    assert_int_equal(f->calls, 7);
}

static void test_copy_resumes_and_rejects_bad_crc(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    f->fail_every = 3;
    f->corrupt_every = 4;
    copy_init(&c, f, files, staging, sizeof(staging), "faulty");
    c.piece_bytes = 256u << 10;
    assert_int_equal(spl__rn_copy_run(&c), 0);
    check_files(f, staging);
    check_resumed(f);
    assert_true(c.retries > 0);
    assert_true(c.crc_errors > 0);
    assert_true(c.refetched_bytes > 0);
    /* only the good pieces were written: exactly the files' bytes */
    assert_int_equal(c.bytes, f->size[0] + f->size[1] + f->size[2] + f->size[3]);
    assert_int_equal(c.catchup_index, f->commit);
}

static void test_copy_rotates_source(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    f->bad_source = 1;
    copy_init(&c, f, files, staging, sizeof(staging), "rotate");
    assert_int_equal(spl__rn_copy_run(&c), 0);
    check_files(f, staging);
    assert_int_equal(c.retries, 3); /* three failures in a row, then source 2 */
    for (int i = 3; i < f->log_count; i++)
        assert_int_equal(f->log[i].source, 2);
}

static void test_copy_gives_up(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    f->fail_every = 1;
    copy_init(&c, f, files, staging, sizeof(staging), "giveup");
    c.retry_max = 5;
    assert_int_equal(spl__rn_copy_run(&c), SPL_ERPC_TIMEDOUT);
    assert_int_equal(c.retries, 5);
}

static void test_copy_missing_file(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    f->missing[3] = true; /* deleted on the source after the snapshot */
    copy_init(&c, f, files, staging, sizeof(staging), "missing");
    assert_int_equal(spl__rn_copy_run(&c), 0);
    check_files(f, staging);
}

static void test_copy_stop(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    atomic_bool stop = true;
    copy_init(&c, f, files, staging, sizeof(staging), "stop");
    c.stop = &stop;
    assert_int_equal(spl__rn_copy_run(&c), SPL_ESHUTDOWN);
    assert_int_equal(f->calls, 0);
}

static void test_throttle(void **state)
{
    struct fake *f = *state;
    struct spl__rn_copy c;
    struct spl_fsm_file files[FILES_MAX];
    char staging[512];
    struct spl__rn_throttle t;
    spl__rn_throttle_init(&t, 8u << 20); /* 8 MiB/s */
    copy_init(&c, f, files, staging, sizeof(staging), "throttle");
    c.piece_bytes = 256u << 10;
    c.throttle = &t;
    uint64_t t0 = spl_mono_ns();
    assert_int_equal(spl__rn_copy_run(&c), 0);
    double secs = (double)(spl_mono_ns() - t0) / 1e9;
    check_files(f, staging);
    /* 17 pieces of 256 KiB are accounted (the throttle charges whole pieces): >= 16 pieces'
     * worth of time must pass at 8 MiB/s, i.e. 0.5 s */
    assert_true(secs >= 0.45);
    assert_true(secs < 5.0);
}

int main(void)
{
    spl_log_set_level(SPL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_resumes_and_rejects_bad_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_rotates_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
