/* test_parse.c - strict number parsing (base/parse.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/parse.h"

static void test_u64_accepts(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(spl_parse_u64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(spl_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(spl_parse_u64("042", 0, 100, &v), 0);
    assert_int_equal(v, 42);
}

static void test_u64_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {"", " 1", "-1", "+1", "1x", "0x10", "1 ", "1.5", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 99;
        assert_int_equal(spl_parse_u64(bad[i], 0, UINT64_MAX, &v), -EINVAL);
        assert_int_equal(v, 99); /* untouched on error */
    }
    uint64_t v = 99;
    assert_int_equal(spl_parse_u64(NULL, 0, 1, &v), -EINVAL);
    assert_int_equal(spl_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(spl_parse_u64("11", 0, 10, &v), -ERANGE);
    assert_int_equal(spl_parse_u64("4", 5, 10, &v), -ERANGE);
    assert_int_equal(v, 99);
}

static void test_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(spl_parse_double("2.5", 0, 10, &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(spl_parse_double(".5", 0, 1, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(spl_parse_double("-1", -2, 0, &d), 0);
    assert_true(d == -1.0);
    d = 3;
    assert_int_equal(spl_parse_double("2.5s", 0, 10, &d), -EINVAL);
    assert_int_equal(spl_parse_double("", 0, 10, &d), -EINVAL);
    assert_int_equal(spl_parse_double("inf", 0, 1e300, &d), -EINVAL);
    assert_int_equal(spl_parse_double("1e400", 0, 1e300, &d), -ERANGE);
    assert_int_equal(spl_parse_double("11", 0, 10, &d), -ERANGE);
    assert_true(d == 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_accepts),
        cmocka_unit_test(test_u64_refuses),
        cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
