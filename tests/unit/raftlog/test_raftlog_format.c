/*
 * test_raftlog_format.c - the on-disk encoders and decoders: round trips, every checked
 * field rejected when damaged, slot selection by generation/sequence, names.
 */
#include "rl_test.h"

#include "base/crc32c.h"
#include "raftlog/format.h"

static void test_seg_header_roundtrip(void **state)
{
    (void)state;
    struct spl_raftlog_seg_header h = {.flags = SPL_RAFTLOG_SEG_SEALED, .group_id = 42,
                                       .seq = 7, .nonce = 0x1234567890abcdefull,
                                       .first_index = 100, .prev_term = 3,
                                       .seal_last_index = 150, .gen = 5,
                                       .segment_size = 1 << 20};
    uint8_t buf[SPL_RAFTLOG_SEG_SLOT_SIZE], out_buf[SPL_RAFTLOG_SEG_SLOT_SIZE];
    spl_raftlog_seg_header_encode(&h, buf);
    struct spl_raftlog_seg_header d;
    assert_int_equal(spl_raftlog_seg_header_decode(buf, sizeof(buf), &d), 0);
    assert_int_equal(d.flags, h.flags);
    assert_int_equal(d.group_id, h.group_id);
    assert_int_equal(d.seq, h.seq);
    assert_int_equal(d.nonce, h.nonce);
    assert_int_equal(d.first_index, h.first_index);
    assert_int_equal(d.prev_term, h.prev_term);
    assert_int_equal(d.seal_last_index, h.seal_last_index);
    assert_int_equal(d.gen, h.gen);
    assert_int_equal(d.segment_size, h.segment_size);
    spl_raftlog_seg_header_encode(&d, out_buf);
    assert_memory_equal(buf, out_buf, sizeof(buf));
    /* the fixed bytes: magic "SPLG", then the CRC of the rest */
    assert_memory_equal(buf, "SPLG", 4);
    /* every single-bit flip is detected */
    for (size_t i = 0; i < sizeof(buf) * 8; i++) {
        uint8_t bad[SPL_RAFTLOG_SEG_SLOT_SIZE];
        memcpy(bad, buf, sizeof(bad));
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(spl_raftlog_seg_header_decode(bad, sizeof(bad), &d), 0);
    }
    assert_int_equal(spl_raftlog_seg_header_decode(buf, sizeof(buf) - 1, &d), SPL_ECORRUPT);
}

static void test_seg_header_pick(void **state)
{
    (void)state;
    uint8_t region[1024];
    struct spl_raftlog_seg_header h = {.group_id = 1, .seq = 1, .nonce = 9, .first_index = 1,
                                       .gen = 0, .segment_size = 65536}, d;
    bool zero = false;
    int slot = -1;
    memset(region, 0, sizeof(region));
    assert_int_equal(spl_raftlog_seg_header_pick(region, sizeof(region), &d, &slot, &zero),
                     SPL_ECORRUPT);
    assert_true(zero);
    spl_raftlog_seg_header_encode(&h, region);
    assert_int_equal(spl_raftlog_seg_header_pick(region, sizeof(region), &d, &slot, &zero), 0);
    assert_int_equal(slot, 0);
    assert_false(zero);
    /* gen 1 goes to slot 1 and wins */
    h.gen = 1;
    h.flags = SPL_RAFTLOG_SEG_SEALED;
    h.seal_last_index = 10;
    spl_raftlog_seg_header_encode(&h, region + 512);
    assert_int_equal(spl_raftlog_seg_header_pick(region, sizeof(region), &d, &slot, NULL), 0);
    assert_int_equal(slot, 1);
    assert_int_equal(d.seal_last_index, 10);
    /* a torn slot 1 falls back to slot 0 */
    region[512 + 40] ^= 0xff;
    assert_int_equal(spl_raftlog_seg_header_pick(region, sizeof(region), &d, &slot, NULL), 0);
    assert_int_equal(slot, 0);
    assert_int_equal(d.gen, 0);
    /* a generation in the wrong slot is not trusted */
    h.gen = 2;
    spl_raftlog_seg_header_encode(&h, region + 512);
    assert_int_equal(spl_raftlog_seg_header_pick(region, sizeof(region), &d, &slot, NULL), 0);
    assert_int_equal(slot, 0);
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    uint8_t rec[SPL_RAFTLOG_REC_HEADER_SIZE + 13];
    const char *data = "hello, record";
    struct spl_raftlog_rec_header h = {.data_len = 13, .kind = SPL_RAFTLOG_REC_KIND_ENTRY,
                                       .entry_type = 1, .term = 5, .index = 77}, d;
    spl_raftlog_rec_header_encode(&h, rec);
    h.crc = spl_crc32c(spl_raftlog_rec_crc_head(99, rec), data, 13);
    spl_raftlog_rec_header_encode(&h, rec);
    memcpy(rec + SPL_RAFTLOG_REC_HEADER_SIZE, data, 13);
    assert_int_equal(spl_raftlog_rec_verify(rec, sizeof(rec), 99, 1 << 20, &d), 0);
    assert_int_equal(d.index, 77);
    assert_int_equal(d.term, 5);
    assert_int_equal(d.entry_type, 1);
    /* another segment incarnation (nonce) never verifies */
    assert_int_equal(spl_raftlog_rec_verify(rec, sizeof(rec), 98, 1 << 20, &d), SPL_ECORRUPT);
    /* truncated, oversized, flipped */
    assert_int_equal(spl_raftlog_rec_verify(rec, sizeof(rec) - 1, 99, 1 << 20, &d),
                     SPL_ECORRUPT);
    assert_int_equal(spl_raftlog_rec_verify(rec, sizeof(rec), 99, 12, &d), SPL_ECORRUPT);
    for (size_t i = 0; i < sizeof(rec) * 8; i++) {
        uint8_t bad[sizeof(rec)];
        memcpy(bad, rec, sizeof(bad));
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(spl_raftlog_rec_verify(bad, sizeof(bad), 99, 1 << 20, &d), 0);
    }
    assert_int_equal(spl_raftlog_rec_size(0), 32);
    assert_int_equal(spl_raftlog_rec_size(1), 40);
    assert_int_equal(spl_raftlog_rec_size(8), 40);
    assert_int_equal(spl_raftlog_rec_size(4096), 4128);
}

static void test_hardstate_slots(void **state)
{
    (void)state;
    uint8_t file[1024];
    memset(file, 0, sizeof(file));
    struct spl_raftlog_hs_slot s = {.group_id = 3, .seq = 0, .hs = {1, 2, 3}}, d;
    int slot;
    assert_int_equal(spl_raftlog_hs_pick(file, sizeof(file), &d, &slot), SPL_ECORRUPT);
    spl_raftlog_hs_encode(&s, file);
    s.seq = 1;
    s.hs.term = 9;
    spl_raftlog_hs_encode(&s, file + 512);
    assert_int_equal(spl_raftlog_hs_pick(file, sizeof(file), &d, &slot), 0);
    assert_int_equal(slot, 1);
    assert_int_equal(d.hs.term, 9);
    /* every torn prefix of the newer slot leaves the older one */
    uint8_t good[64];
    memcpy(good, file + 512, 64);
    for (size_t cut = 0; cut < 64; cut++) {
        memset(file + 512 + cut, 0xa5, 64 - cut); /* torn: old bytes remain */
        assert_int_equal(spl_raftlog_hs_pick(file, sizeof(file), &d, &slot), 0);
        assert_int_equal(slot, 0);
        assert_int_equal(d.hs.term, 1);
        memcpy(file + 512, good, 64);
    }
}

static void test_snapmeta_roundtrip(void **state)
{
    (void)state;
    struct spl_raftlog_snapfile files[3] = {{"chunk_1", 16 << 20}, {"chunk_22", 4096},
                                            {"x", 0}};
    const char blob[] = "application part";
    struct spl_raftlog_snapmeta m = {.index = 1000, .term = 7, .epoch = 12,
                                     .conf = {.voter_count = 3, .learner_count = 1,
                                              .voters = {1, 2, 3}, .learners = {9}},
                                     .file_count = 3, .files = files,
                                     .blob_len = sizeof(blob), .blob = blob};
    uint64_t size, gid = 0;
    assert_int_equal(spl_raftlog_snapmeta_size(&m, &size), 0);
    uint8_t *buf = malloc(size);
    assert_int_equal(spl_raftlog_snapmeta_encode(&m, 55, buf, size), 0);
    struct spl_raftlog_snapmeta d;
    assert_int_equal(spl_raftlog_snapmeta_decode(buf, size, &gid, &d), 0);
    assert_int_equal(gid, 55);
    assert_int_equal(d.index, 1000);
    assert_int_equal(d.term, 7);
    assert_int_equal(d.epoch, 12);
    assert_int_equal(d.conf.voter_count, 3);
    assert_int_equal(d.conf.voters[2], 3);
    assert_int_equal(d.conf.learners[0], 9);
    assert_int_equal(d.file_count, 3);
    assert_string_equal(d.files[1].name, "chunk_22");
    assert_int_equal(d.files[0].size, 16 << 20);
    assert_int_equal(d.blob_len, sizeof(blob));
    assert_memory_equal(d.blob, blob, sizeof(blob));
    spl_raftlog_snapmeta_free(&d);
    /* damage anywhere is caught; truncation too */
    for (uint64_t i = 0; i < size; i++) {
        buf[i] ^= 0x40;
        assert_int_not_equal(spl_raftlog_snapmeta_decode(buf, size, &gid, &d), 0);
        buf[i] ^= 0x40;
    }
    for (uint64_t n = 0; n < size; n++)
        assert_int_not_equal(spl_raftlog_snapmeta_decode(buf, n, &gid, &d), 0);
    free(buf);
    /* invalid names are refused before anything is written */
    struct spl_raftlog_snapfile bad[1] = {{"a/b", 1}};
    m.files = bad;
    m.file_count = 1;
    assert_int_equal(spl_raftlog_snapmeta_size(&m, &size), SPL_EINVAL_ARG);
    m.conf.voter_count = SPL_RAFT_PEERS_MAX + 1;
    assert_int_equal(spl_raftlog_snapmeta_size(&m, &size), SPL_ETOOBIG);
}

static void test_names(void **state)
{
    (void)state;
    char name[48];
    uint64_t seq, first;
    spl_raftlog_seg_name(0x1a, 12345, name);
    assert_string_equal(name, "000000000000001a_00000000000000012345.seg");
    assert_true(spl_raftlog_seg_name_parse(name, &seq, &first));
    assert_int_equal(seq, 0x1a);
    assert_int_equal(first, 12345);
    assert_false(spl_raftlog_seg_name_parse("hardstate", &seq, &first));
    assert_false(spl_raftlog_seg_name_parse("000000000000001a_00000000000000012345.tmp", &seq,
                                            &first));
    assert_false(spl_raftlog_seg_name_parse("000000000000001g_00000000000000012345.seg", &seq,
                                            &first));
    assert_false(spl_raftlog_seg_name_parse("000000000000001a_0000000000000001234a.seg", &seq,
                                            &first));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seg_header_roundtrip), cmocka_unit_test(test_seg_header_pick),
        cmocka_unit_test(test_record_roundtrip),     cmocka_unit_test(test_hardstate_slots),
        cmocka_unit_test(test_snapmeta_roundtrip),   cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
