/* test_raft_msg.c - the Raft message wire form: round trips of every type, zero-copy
 * payloads, and refusal of truncated, corrupted, oversized and unversioned input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/crc32c.h"
#include "base/errors.h"
#include "base/random.h"
#include "raft/raft.h"

static struct spl_raft_entry ents_buf[SPL_RAFT_BATCH_ENTRIES_MAX];

static void fill_msg(struct spl_raft_msg *m, uint8_t type, struct spl_raft_entry *src,
                     uint32_t n)
{
    spl_raft_msg_init(m);
    m->type = type;
    m->group = 0x1234567890ull;
    m->from = 1;
    m->to = 300;
    m->term = 77;
    m->log_term = 76;
    m->index = 1000;
    m->commit = 999;
    m->reject = type == SPL_RAFT_MSG_APPEND_RESP;
    m->reject_hint = 998;
    m->context = UINT64_MAX;
    m->entries = src;
    m->entry_count = n;
    for (uint32_t i = 0; i < n; i++) {
        src[i] = (struct spl_raft_entry){.term = 70 + i, .index = m->index + 1 + i};
        spl_iobuf_init(&src[i].data);
        char data[64];
        int len = snprintf(data, sizeof(data), "payload-%u", i);
        assert_int_equal(spl_iobuf_append(&src[i].data, data, (size_t)len * i), 0);
    }
    if (type == SPL_RAFT_MSG_SNAPSHOT) {
        m->snapshot.index = 5000;
        m->snapshot.term = 60;
        m->snapshot.epoch = 12;
        m->snapshot.conf = (struct spl_raft_conf){.voter_count = 3, .voters = {1, 2, 3},
                                                  .learner_count = 1, .learners = {9}};
        assert_int_equal(spl_iobuf_append(&m->snapshot.data, "chunks:1,2,3", 12), 0);
    }
}

static void assert_msg_equal(const struct spl_raft_msg *a, const struct spl_raft_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->log_term, b->log_term);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->reject_hint, b->reject_hint);
    assert_int_equal(a->context, b->context);
    assert_int_equal(a->entry_count, b->entry_count);
    for (uint32_t i = 0; i < a->entry_count; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_true(spl_iobuf_equal(&a->entries[i].data, &b->entries[i].data));
    }
    assert_int_equal(a->snapshot.index, b->snapshot.index);
    assert_int_equal(a->snapshot.term, b->snapshot.term);
    assert_int_equal(a->snapshot.epoch, b->snapshot.epoch);
    assert_memory_equal(&a->snapshot.conf, &b->snapshot.conf, sizeof(a->snapshot.conf));
    assert_true(spl_iobuf_equal(&a->snapshot.data, &b->snapshot.data));
}

static void release_src(struct spl_raft_msg *m)
{
    spl_raft_msg_release(m);
}

static void test_roundtrip_all_types(void **state)
{
    (void)state;
    for (uint8_t type = SPL_RAFT_MSG_PREVOTE; type <= SPL_RAFT_MSG_TIMEOUT_NOW; type++) {
        struct spl_raft_entry src[5];
        struct spl_raft_msg m, d;
        fill_msg(&m, type, src, type == SPL_RAFT_MSG_APPEND ? 5 : 0);
        struct spl_iobuf wire;
        spl_iobuf_init(&wire);
        assert_int_equal(spl_raft_msg_encode(&m, &wire), 0);
        assert_int_equal(spl_raft_msg_decode(&wire, &d, ents_buf, SPL_ARRAY_SIZE(ents_buf)), 0);
        assert_msg_equal(&m, &d);
        assert_string_not_equal(spl_raft_msg_type_name(type), "?");
        spl_raft_msg_release(&d);
        spl_iobuf_reset(&wire);
        release_src(&m);
    }
    assert_string_equal(spl_raft_msg_type_name(99), "?");
}

/* Payloads are referenced, not copied, both ways: a 64 KiB entry costs no new block. */
static void test_zero_copy(void **state)
{
    (void)state;
    struct spl_raft_entry src[1];
    struct spl_raft_msg m, d;
    fill_msg(&m, SPL_RAFT_MSG_APPEND, src, 0);
    m.entries = src;
    m.entry_count = 1;
    src[0] = (struct spl_raft_entry){.term = 70, .index = m.index + 1};
    spl_iobuf_init(&src[0].data);
    char *big = malloc(SPL_IOBUF_BLOCK_SIZE);
    assert_non_null(big);
    memset(big, 'z', SPL_IOBUF_BLOCK_SIZE);
    assert_int_equal(spl_iobuf_append(&src[0].data, big, SPL_IOBUF_BLOCK_SIZE), 0);
    struct spl_iobuf_stats before, after;
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    spl_iobuf_stats(&before);
    assert_int_equal(spl_raft_msg_encode(&m, &wire), 0);
    assert_int_equal(spl_raft_msg_decode(&wire, &d, ents_buf, 4), 0);
    spl_iobuf_stats(&after);
    /* the header needs at most a block or two; the 64 KiB payload none */
    assert_true(after.blocks_live - before.blocks_live <= 2);
    assert_true(spl_iobuf_equal(&d.entries[0].data, &src[0].data));
    spl_raft_msg_release(&d);
    spl_iobuf_reset(&wire);
    release_src(&m);
    free(big);
}

static size_t encode_flat(const struct spl_raft_msg *m, uint8_t *out, size_t cap)
{
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    assert_int_equal(spl_raft_msg_encode(m, &wire), 0);
    size_t len = spl_iobuf_copy_out(&wire, 0, out, cap);
    assert_int_equal(len, spl_iobuf_len(&wire));
    spl_iobuf_reset(&wire);
    return len;
}

/* Every strict prefix and every single-bit flip is refused (CRC, lengths). */
static void test_truncation_and_bitflips(void **state)
{
    (void)state;
    static uint8_t buf[4096], copy[4096];
    for (uint8_t type = SPL_RAFT_MSG_PREVOTE; type <= SPL_RAFT_MSG_TIMEOUT_NOW; type++) {
        struct spl_raft_entry src[3];
        struct spl_raft_msg m, d;
        fill_msg(&m, type, src, type == SPL_RAFT_MSG_APPEND ? 3 : 0);
        size_t len = encode_flat(&m, buf, sizeof(buf));
        for (size_t cut = 0; cut < len; cut++)
            assert_int_not_equal(
                spl_raft_msg_decode_bytes(buf, cut, &d, ents_buf, SPL_ARRAY_SIZE(ents_buf)), 0);
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                memcpy(copy, buf, len);
                copy[i] ^= (uint8_t)(1u << bit);
                int rc = spl_raft_msg_decode_bytes(copy, len, &d, ents_buf,
                                                   SPL_ARRAY_SIZE(ents_buf));
                assert_int_not_equal(rc, 0);
                assert_true(rc == SPL_ECORRUPT || rc == SPL_EVERSION || rc == SPL_ETOOBIG);
            }
        /* trailing garbage */
        buf[len] = 0;
        assert_int_equal(spl_raft_msg_decode_bytes(buf, len + 1, &d, ents_buf, 3), SPL_ECORRUPT);
        release_src(&m);
    }
}

/* A message with a valid checksum but a field out of bounds is still refused. */
static void test_semantic_refusals(void **state)
{
    (void)state;
    struct spl_raft_msg m, d;
    struct spl_raft_entry src[4];
    uint8_t buf[4096];
    /* version */
    fill_msg(&m, SPL_RAFT_MSG_HEARTBEAT, src, 0);
    size_t len = encode_flat(&m, buf, sizeof(buf));
    buf[0] = 2;
    uint32_t crc = spl_crc32c(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4); /* little endian host */
    assert_int_equal(spl_raft_msg_decode_bytes(buf, len, &d, ents_buf, 4), SPL_EVERSION);
    assert_int_equal(spl_raft_msg_decode_bytes(buf, 0, &d, ents_buf, 4), SPL_ECORRUPT);
    release_src(&m);
    /* more entries than the caller has room for */
    fill_msg(&m, SPL_RAFT_MSG_APPEND, src, 4);
    len = encode_flat(&m, buf, sizeof(buf));
    assert_int_equal(spl_raft_msg_decode_bytes(buf, len, &d, ents_buf, 3), SPL_ETOOBIG);
    assert_int_equal(spl_raft_msg_decode_bytes(buf, len, &d, ents_buf, 4), 0);
    spl_raft_msg_release(&d);
    /* entries on a type that has none: encode refuses to produce it */
    m.type = SPL_RAFT_MSG_HEARTBEAT;
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    assert_int_not_equal(spl_raft_msg_encode(&m, &wire), 0);
    assert_int_equal(spl_iobuf_len(&wire), 0);
    /* index arithmetic that would overflow */
    m.type = SPL_RAFT_MSG_APPEND;
    m.index = UINT64_MAX - 1;
    src[0].index = UINT64_MAX; /* the last index a message may never reach */
    m.entry_count = 1;
    assert_int_not_equal(spl_raft_msg_encode(&m, &wire), 0);
    release_src(&m);
    /* a conf entry whose payload is not a configuration change */
    fill_msg(&m, SPL_RAFT_MSG_APPEND, src, 2);
    src[1].type = SPL_RAFT_ENTRY_CONF;
    len = encode_flat(&m, buf, sizeof(buf));
    assert_int_equal(spl_raft_msg_decode_bytes(buf, len, &d, ents_buf, 4), SPL_ECORRUPT);
    release_src(&m);
    spl_iobuf_reset(&wire);
}

/* Bytes of the right shape (small varints, plausible counts) with random perturbations
 * and a valid checksum appended: never a crash, and whatever decodes survives a
 * re-encode/decode round trip unchanged. */
static size_t random_shaped(struct spl_rand *rnd, uint8_t *buf)
{
    size_t n = 0;
    uint8_t type = (uint8_t)spl_rand_range(rnd, 1, 10);
    buf[n++] = 1;
    buf[n++] = type;
    buf[n++] = (uint8_t)spl_rand_below(rnd, 2);
    for (int i = 0; i < 9; i++)
        buf[n++] = (uint8_t)spl_rand_below(rnd, 128);
    uint8_t count = type == SPL_RAFT_MSG_APPEND ? (uint8_t)spl_rand_below(rnd, 4) : 0;
    buf[n++] = count;
    uint8_t lens[4], total = 0;
    for (uint8_t i = 0; i < count; i++) {
        buf[n++] = 0; /* normal entry */
        buf[n++] = (uint8_t)spl_rand_below(rnd, 128);
        lens[i] = (uint8_t)spl_rand_below(rnd, 8);
        buf[n++] = lens[i];
        total += lens[i];
    }
    uint8_t snap_len = 0;
    if (type == SPL_RAFT_MSG_SNAPSHOT) {
        for (int i = 0; i < 3; i++)
            buf[n++] = (uint8_t)spl_rand_below(rnd, 128);
        buf[n++] = 1; /* one voter */
        buf[n++] = (uint8_t)spl_rand_range(rnd, 1, 127);
        buf[n++] = 0; /* no learner */
        snap_len = (uint8_t)spl_rand_below(rnd, 8);
        buf[n++] = snap_len;
    }
    size_t hdr = n;
    n += 4 + total + snap_len;
    for (size_t i = hdr + 4; i < n; i++)
        buf[i] = (uint8_t)spl_rand_u64(rnd);
    int flips = (int)spl_rand_below(rnd, 3);
    for (int i = 0; i < flips; i++)
        buf[spl_rand_below(rnd, hdr)] = (uint8_t)spl_rand_u64(rnd);
    uint32_t crc = spl_crc32c(0, buf, hdr);
    crc = spl_crc32c(crc, buf + hdr + 4, n - hdr - 4);
    memcpy(buf + hdr, &crc, 4);
    return n;
}

static void test_random_with_checksum(void **state)
{
    (void)state;
    struct spl_rand rnd;
    spl_rand_seed(&rnd, 7);
    uint8_t buf[512], again[1024];
    int decoded = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = random_shaped(&rnd, buf);
        struct spl_raft_msg d;
        if (spl_raft_msg_decode_bytes(buf, len, &d, ents_buf, SPL_ARRAY_SIZE(ents_buf)) != 0)
            continue;
        decoded++;
        size_t n = encode_flat(&d, again, sizeof(again));
        struct spl_raft_msg d2;
        static struct spl_raft_entry ents2[SPL_RAFT_BATCH_ENTRIES_MAX];
        assert_int_equal(spl_raft_msg_decode_bytes(again, n, &d2, ents2, SPL_ARRAY_SIZE(ents2)),
                         0);
        assert_msg_equal(&d, &d2);
        spl_raft_msg_release(&d2);
        spl_raft_msg_release(&d);
    }
    assert_true(decoded > 10000); /* the generator does reach the decoder's success path */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_truncation_and_bitflips),
        cmocka_unit_test(test_semantic_refusals),
        cmocka_unit_test(test_random_with_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
