/* test_crc32c.c - CRC-32C: published vectors, hardware == software, chaining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/crc32c.h"
#include "base/random.h"

struct crc_vector {
    uint8_t data[32];
    size_t len;
    uint32_t crc;
};

static void fill_vectors(struct crc_vector *v)
{
    memcpy(v[0].data, "123456789", 9);
    v[0].len = 9;
    v[0].crc = 0xE3069283u;
    memset(v[1].data, 0, 32);
    v[1].len = 32;
    v[1].crc = 0x8A9136AAu;
    memset(v[2].data, 0xff, 32);
    v[2].len = 32;
    v[2].crc = 0x62A8AB43u;
    for (int i = 0; i < 32; i++)
        v[3].data[i] = (uint8_t)i;
    v[3].len = 32;
    v[3].crc = 0x46DD794Eu;
    for (int i = 0; i < 32; i++)
        v[4].data[i] = (uint8_t)(31 - i);
    v[4].len = 32;
    v[4].crc = 0x113FDB5Cu; /* RFC 3720 B.4: 32 bytes descending */
}

static void test_vectors(void **state)
{
    (void)state;
    struct crc_vector v[5];
    fill_vectors(v);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(spl_crc32c(0, v[i].data, v[i].len), v[i].crc);
        assert_int_equal(spl__crc32c_sw(0, v[i].data, v[i].len), v[i].crc);
    }
}

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(spl_crc32c(0, NULL, 0), 0);
    assert_int_equal(spl_crc32c(0x12345678u, "x", 0), 0x12345678u);
    assert_int_equal(spl__crc32c_sw(0xdeadbeefu, NULL, 0), 0xdeadbeefu);
}

/* Byte-at-a-time reference straight from the definition; independent of the tables. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void test_hw_equals_sw_random(void **state)
{
    (void)state;
    enum { BUF = 8192 + 64 };
    static uint8_t buf[BUF];
    struct spl_rand r;
    spl_rand_seed(&r, 42);
    for (size_t i = 0; i < BUF; i++)
        buf[i] = (uint8_t)spl_rand_u64(&r);
    for (int iter = 0; iter < 2000; iter++) {
        size_t off = (size_t)spl_rand_below(&r, 64);
        size_t len = (size_t)spl_rand_below(&r, iter < 1000 ? 80 : 8192);
        uint32_t seed = iter % 3 == 0 ? 0 : (uint32_t)spl_rand_u64(&r);
        uint32_t ref = crc_bitwise(seed, buf + off, len);
        assert_int_equal(spl__crc32c_sw(seed, buf + off, len), ref);
        assert_int_equal(spl_crc32c(seed, buf + off, len), ref);
    }
}

static void test_chaining(void **state)
{
    (void)state;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = spl_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
        uint32_t a = spl_crc32c(0, buf, cut);
        assert_int_equal(spl_crc32c(a, buf + cut, sizeof(buf) - cut), whole);
        uint32_t s = spl__crc32c_sw(0, buf, cut);
        assert_int_equal(spl__crc32c_sw(s, buf + cut, sizeof(buf) - cut), whole);
    }
    /* byte-by-byte chaining */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        c = spl_crc32c(c, buf + i, 1);
    assert_int_equal(c, whole);
    /* a different byte gives a different crc */
    buf[500] ^= 1;
    assert_int_not_equal(spl_crc32c(0, buf, sizeof(buf)), whole);
}

static void test_hw_reported(void **state)
{
    (void)state;
    /* The answer is stable across calls; on x86-64 builds the CI machines have SSE4.2. */
    bool hw = spl_crc32c_hw_available();
    assert_true(hw == spl_crc32c_hw_available());
#if defined(__x86_64__)
    __builtin_cpu_init();
    assert_true(hw == (bool)__builtin_cpu_supports("sse4.2"));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_hw_equals_sw_random),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_hw_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
