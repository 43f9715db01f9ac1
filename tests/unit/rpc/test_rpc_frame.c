/*
 * test_rpc_frame.c - the frame codec as a pure function: header layout and CRC, the
 * incremental parser fed in every possible split, each class of bad input, payload CRC,
 * meta decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rpc_test_util.h"

static void feed(struct spl_iobuf *in, const uint8_t *p, size_t n)
{
    assert_int_equal(spl_iobuf_append(in, p, n), 0);
}

static void test_header_layout(void **state)
{
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .flags = SPL_RPC_FLAG_RESPONSE,
                               .service_id = 0x1234, .method_index = 0x0506,
                               .meta_len = 0x0a0b0c0d, .request_id = 0x1122334455667788ull,
                               .attach_len = 0x00100000};
    h.meta_len = 1000; /* within limits for encode's asserts */
    uint8_t b[SPL_RPC_HEADER_SIZE];
    spl_rpc_header_encode(&h, b);
    /* little-endian, fixed offsets (docs/rpc-frame.md) */
    assert_memory_equal(b, "SPLR", 4);
    assert_int_equal(b[4], 1);
    assert_int_equal(b[5], SPL_RPC_FLAG_RESPONSE);
    assert_int_equal(b[6], 0x34);
    assert_int_equal(b[7], 0x12);
    assert_int_equal(b[8], 0x06);
    assert_int_equal(b[9], 0x05);
    assert_int_equal(b[10] | b[11], 0);
    assert_int_equal(spl_rpc_get_le32(b + 12), 1000);
    assert_int_equal(b[16], 0x88);
    assert_int_equal(b[23], 0x11);
    assert_int_equal(spl_rpc_get_le32(b + 24), 0x00100000);
    assert_int_equal(spl_rpc_get_le32(b + 28), spl_crc32c(0, b, 28));

    struct spl_rpc_header d;
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d), 0);
    assert_int_equal(d.flags, h.flags);
    assert_int_equal(d.service_id, h.service_id);
    assert_int_equal(d.method_index, h.method_index);
    assert_int_equal(d.meta_len, h.meta_len);
    assert_true(d.request_id == h.request_id);
    assert_int_equal(d.attach_len, h.attach_len);

    /* every single-bit flip of the header is caught */
    for (int i = 0; i < (int)SPL_RPC_HEADER_SIZE * 8; i++) {
        uint8_t c[SPL_RPC_HEADER_SIZE];
        memcpy(c, b, sizeof(c));
        c[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(spl_rpc_header_decode(c, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                             0);
    }
}

static void test_header_errors(void **state)
{
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .request_id = 7, .meta_len = 10,
                               .attach_len = 100};
    uint8_t b[SPL_RPC_HEADER_SIZE];
    struct spl_rpc_header d;

    spl_rpc_header_encode(&h, b);
    b[0] = 'X';
    assert_int_equal(spl_rpc_header_decode(b, 0xffffffff, 0xffffffff, &d), SPL_ERPC_BADFRAME);

    spl_rpc_header_encode(&h, b);
    b[4] = 2;
    rt_reseal(b);
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                     SPL_EVERSION);
    assert_int_equal(d.request_id, 7); /* authentic: names the request */

    spl_rpc_header_encode(&h, b);
    b[5] = 0x80;
    rt_reseal(b);
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                     SPL_ERPC_BADFRAME);

    spl_rpc_header_encode(&h, b);
    b[5] = SPL_RPC_FLAG_ERROR; /* error without response */
    rt_reseal(b);
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                     SPL_ERPC_BADFRAME);

    spl_rpc_header_encode(&h, b);
    b[10] = 1; /* reserved */
    rt_reseal(b);
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                     SPL_ERPC_BADFRAME);

    spl_rpc_header_encode(&h, b);
    assert_int_equal(spl_rpc_header_decode(b, 9, SPL_RPC_ATTACH_MAX, &d), SPL_ETOOBIG);
    assert_int_equal(spl_rpc_header_decode(b, 10, 99, &d), SPL_ETOOBIG);
    assert_int_equal(spl_rpc_header_decode(b, 10, 100, &d), 0);

    spl_rpc_put_le32(b + 12, SPL_RPC_META_MAX + 1);
    rt_reseal(b);
    assert_int_equal(spl_rpc_header_decode(b, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &d),
                     SPL_ETOOBIG);
}

/* A stream of three frames, fed in every split point of 1..n bytes. */
static void test_parser_incremental(void **state)
{
    uint8_t att[300];
    for (size_t i = 0; i < sizeof(att); i++)
        att[i] = (uint8_t)(i * 7);
    size_t l1, l2, l3;
    uint8_t *f1 = rt_echo_frame(1, "one", 0, &l1);
    struct spl_rpc_header h2 = {.version = SPL_RPC_VERSION, .flags = SPL_RPC_FLAG_PAYLOAD_CRC,
                                .service_id = 1, .request_id = 2};
    uint8_t *f2 = rt_build_frame(&h2, "\x0a\x01x", 3, att, sizeof(att), &l2);
    uint8_t *f3 = rt_echo_frame(3, "three", 17, &l3);
    size_t total = l1 + l2 + l3;
    uint8_t *stream = malloc(total);
    memcpy(stream, f1, l1);
    memcpy(stream + l1, f2, l2);
    memcpy(stream + l1 + l2, f3, l3);

    /* every piece size, with metas cut out of the buffer and copied flat */
    for (size_t step = 1, flat = 0; step <= total;
         flat ^= 1, step = flat ? step : (step < 40 ? step + 1 : step * 2)) {
        struct spl_rpc_parser p;
        spl_rpc_parser_init(&p, 0, 0);
        p.flat_meta = flat;
        struct spl_iobuf in;
        spl_iobuf_init(&in);
        uint64_t ids[3];
        int got = 0;
        for (size_t off = 0; off < total; off += step) {
            feed(&in, stream + off, off + step > total ? total - off : step);
            for (;;) {
                struct spl_rpc_frame f;
                spl_rpc_frame_init(&f);
                int rc = spl_rpc_parser_next(&p, &in, &f);
                assert_true(rc == 0 || rc == 1);
                if (rc == 0)
                    break;
                assert_true(got < 3);
                ids[got++] = f.hdr.request_id;
                if (f.hdr.request_id == 2) {
                    assert_int_equal(spl_iobuf_len(&f.attachment), sizeof(att));
                    uint8_t back[300];
                    spl_iobuf_copy_out(&f.attachment, 0, back, sizeof(back));
                    assert_memory_equal(back, att, sizeof(att));
                    assert_int_equal(f.meta_flat, flat);
                    if (flat) {
                        assert_int_equal(spl_iobuf_len(&f.meta), 0);
                        assert_memory_equal(f.meta_buf, "\x0a\x01x", 3);
                    } else {
                        assert_int_equal(spl_iobuf_len(&f.meta), 3);
                    }
                }
                if (f.hdr.request_id == 3) {
                    assert_int_equal(spl_iobuf_len(&f.attachment), 17);
                    ProtobufCMessage *msg;
                    assert_int_equal(spl_rpc_frame_meta_unpack(
                                         &spline__rpc_echo_request__descriptor, &f, NULL, &msg),
                                     0);
                    assert_string_equal(((Spline__RpcEchoRequest *)msg)->text, "three");
                    protobuf_c_message_free_unpacked(msg, NULL);
                }
                spl_rpc_frame_reset(&f);
            }
        }
        assert_int_equal(got, 3);
        assert_true(ids[0] == 1 && ids[1] == 2 && ids[2] == 3);
        assert_int_equal(spl_iobuf_len(&in), 0);
        spl_iobuf_reset(&in);
    }
    free(stream);
    free(f1);
    free(f2);
    free(f3);
}

static int parse_one(const uint8_t *buf, size_t len, struct spl_rpc_parser *p,
                     struct spl_rpc_frame *f)
{
    struct spl_iobuf in;
    spl_iobuf_init(&in);
    feed(&in, buf, len);
    spl_rpc_parser_init(p, 0, 0);
    spl_rpc_frame_init(f);
    int rc = spl_rpc_parser_next(p, &in, f);
    spl_iobuf_reset(&in);
    return rc;
}

static void test_parser_errors(void **state)
{
    struct spl_rpc_parser p;
    struct spl_rpc_frame f;
    size_t len;
    uint8_t *fr = rt_echo_frame(9, "x", 8, &len);

    /* wrong magic is detected from the first 4 bytes */
    uint8_t bad[4] = {'H', 'T', 'T', 'P'};
    assert_int_equal(parse_one(bad, 4, &p, &f), SPL_ERPC_BADFRAME);
    assert_false(p.have_header);
    /* and it sticks */
    struct spl_iobuf in;
    spl_iobuf_init(&in);
    assert_int_equal(spl_rpc_parser_next(&p, &in, &f), SPL_ERPC_BADFRAME);

    /* header CRC mismatch: unauthentic */
    fr[12] ^= 1;
    assert_int_equal(parse_one(fr, len, &p, &f), SPL_ERPC_BADFRAME);
    assert_false(p.have_header);
    fr[12] ^= 1;

    /* oversize attachment with a custom limit: authentic, names the request */
    feed(&in, fr, len);
    spl_rpc_parser_init(&p, 0, 4);
    assert_int_equal(spl_rpc_parser_next(&p, &in, &f), SPL_ETOOBIG);
    assert_true(p.have_header);
    assert_int_equal(p.hdr.request_id, 9);
    spl_iobuf_reset(&in);

    /* a truncated frame is just "more needed" */
    assert_int_equal(parse_one(fr, len - 1, &p, &f), 0);
    assert_int_equal(parse_one(fr, 10, &p, &f), 0);
    free(fr);

    /* payload CRC mismatch: reported, stream stays in sync */
    uint8_t att[64] = {1, 2, 3};
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .flags = SPL_RPC_FLAG_PAYLOAD_CRC,
                               .request_id = 5};
    uint8_t *c1 = rt_build_frame(&h, NULL, 0, att, sizeof(att), &len);
    c1[SPL_RPC_HEADER_SIZE + 10] ^= 0x40;
    size_t len2;
    uint8_t *c2 = rt_echo_frame(6, "after", 0, &len2);
    feed(&in, c1, len);
    feed(&in, c2, len2);
    spl_rpc_parser_init(&p, 0, 0);
    spl_rpc_frame_init(&f);
    assert_int_equal(spl_rpc_parser_next(&p, &in, &f), SPL_ECORRUPT);
    assert_int_equal(f.hdr.request_id, 5);
    assert_int_equal(spl_rpc_parser_next(&p, &in, &f), 1);
    assert_int_equal(f.hdr.request_id, 6);
    spl_rpc_frame_reset(&f);
    spl_iobuf_reset(&in);
    free(c1);
    free(c2);
}

static void test_meta_unpack(void **state)
{
    struct spl_iobuf meta;
    spl_iobuf_init(&meta);
    ProtobufCMessage *msg;
    /* empty meta: all defaults */
    assert_int_equal(spl_rpc_meta_unpack(&spline__rpc_echo_request__descriptor, &meta, NULL, &msg),
                     0);
    assert_string_equal(((Spline__RpcEchoRequest *)msg)->text, "");
    protobuf_c_message_free_unpacked(msg, NULL);
    /* garbage */
    feed(&meta, (const uint8_t *)"\xff\xff\xff\xff\xff", 5);
    assert_int_equal(spl_rpc_meta_unpack(&spline__rpc_echo_request__descriptor, &meta, NULL, &msg),
                     SPL_ERPC_BADMETA);
    assert_null(msg);
    spl_iobuf_reset(&meta);
    /* a meta straddling blocks, bigger than the stack scratch */
    Spline__RpcEchoRequest req = SPLINE__RPC_ECHO_REQUEST__INIT;
    char text[3000];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    req.text = text;
    uint8_t packed[3100];
    size_t n = protobuf_c_message_pack(&req.base, packed);
    feed(&meta, packed, 1000);
    struct spl_iobuf tail;
    spl_iobuf_init(&tail);
    feed(&tail, packed + 1000, n - 1000);
    assert_int_equal(spl_iobuf_append_ref(&meta, &tail, 0, n - 1000), 0);
    assert_int_equal(spl_rpc_meta_unpack(&spline__rpc_echo_request__descriptor, &meta, NULL, &msg),
                     0);
    assert_string_equal(((Spline__RpcEchoRequest *)msg)->text, text);
    protobuf_c_message_free_unpacked(msg, NULL);
    spl_iobuf_reset(&meta);
    spl_iobuf_reset(&tail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_parser_incremental),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_meta_unpack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
