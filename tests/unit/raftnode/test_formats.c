/*
 * test_formats.c - the snapshot descriptor (the data a SNAPSHOT message carries) and the
 * group STATE file: round trips, and every single-byte corruption is refused.
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
#include <unistd.h>

#include "base/errors.h"
#include "raftnode/internal.h"

static void test_descriptor(void **state)
{
    (void)state;
    struct spl_fsm_file files[3] = {{"r00.kv", 10}, {"chunk_123", 16u << 20}, {"x", 0}};
    struct spl_iobuf buf;
    spl_iobuf_init(&buf);
    assert_int_equal(spl__rn_desc_encode(3, files, "blob!", 5, &buf), 0);
    struct spl__rn_desc d;
    assert_int_equal(spl__rn_desc_decode(&buf, &d), 0);
    assert_int_equal(d.file_count, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(d.files[i].name, files[i].name);
        assert_int_equal(d.files[i].size, files[i].size);
    }
    assert_int_equal(d.blob_len, 5);
    assert_memory_equal(d.blob, "blob!", 5);
    spl__rn_desc_free(&d);
    uint64_t len = spl_iobuf_len(&buf);
    uint8_t *flat = malloc(len);
    spl_iobuf_copy_out(&buf, 0, flat, len);
    for (uint64_t i = 0; i < len; i++) {
        struct spl_iobuf bad;
        spl_iobuf_init(&bad);
        flat[i] ^= 0x01;
        spl_iobuf_append(&bad, flat, len);
        assert_int_not_equal(spl__rn_desc_decode(&bad, &d), 0);
        flat[i] ^= 0x01;
        spl_iobuf_reset(&bad);
        spl_iobuf_append(&bad, flat, i); /* every truncation too */
        assert_int_not_equal(spl__rn_desc_decode(&bad, &d), 0);
        spl_iobuf_reset(&bad);
    }
    free(flat);
    spl_iobuf_reset(&buf);
    struct spl_fsm_file bad_name = {"a/b", 1};
    assert_int_equal(spl__rn_desc_encode(1, &bad_name, NULL, 0, &buf), SPL_EINVAL_ARG);
    spl_iobuf_reset(&buf);
}

static void test_state_file(void **state)
{
    (void)state;
    char dir[64] = "/tmp/rn-state-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct spl__rn_state s, t;
    spl__rn_state_init(&s);
    assert_int_equal(spl__rn_state_load(dir, &t), -ENOENT);
    s.group = 77;
    s.live_gen = 3;
    s.install_index = 1000;
    s.install_term = 4;
    s.install_epoch = 9;
    s.catchup_index = 1042;
    s.install_conf.voter_count = 3;
    s.install_conf.voters[0] = 1;
    s.install_conf.voters[1] = 2;
    s.install_conf.voters[2] = 5;
    s.install_conf.learner_count = 1;
    s.install_conf.learners[0] = 7;
    spl_iobuf_append(&s.install_desc, "descriptor", 10);
    assert_int_equal(spl__rn_state_save(dir, &s), 0);
    assert_int_equal(spl__rn_state_load(dir, &t), 0);
    assert_int_equal(t.group, 77);
    assert_int_equal(t.live_gen, 3);
    assert_int_equal(t.install_index, 1000);
    assert_int_equal(t.install_term, 4);
    assert_int_equal(t.install_epoch, 9);
    assert_int_equal(t.catchup_index, 1042);
    assert_memory_equal(&t.install_conf, &s.install_conf, sizeof(s.install_conf));
    assert_true(spl_iobuf_equal(&t.install_desc, &s.install_desc));
    spl__rn_state_reset(&t);
    /* corrupt each byte of the file: refused (never a wrong state) */
    char path[128];
    snprintf(path, sizeof(path), "%s/STATE", dir);
    int fd = open(path, O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    for (off_t i = 0; i < size; i++) {
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, i), 1);
        b ^= 0x80;
        assert_int_equal(pwrite(fd, &b, 1, i), 1);
        assert_int_not_equal(spl__rn_state_load(dir, &t), 0);
        b ^= 0x80;
        assert_int_equal(pwrite(fd, &b, 1, i), 1);
    }
    close(fd);
    assert_int_equal(spl__rn_state_load(dir, &t), 0);
    spl__rn_state_reset(&t);
    spl__rn_state_reset(&s);
    spl__rn_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_state_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
