/* test_errors.c - the error table: names, messages, wire round trip, unknown codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base/errors.h"

static void test_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(spl_errname(0), "OK");
    assert_string_equal(spl_strerror(0), "success");
    assert_string_equal(spl_errname(-ENOENT), "ENOENT");
    assert_string_equal(spl_strerror(-ENOENT), "No such file or directory");
    assert_string_equal(spl_errname(SPL_EINTERNAL), "SPL_EINTERNAL");
    assert_string_equal(spl_errname(SPL_ECONFIG), "SPL_ECONFIG");
    assert_string_equal(spl_strerror(SPL_ECONFIG), "invalid configuration");
    assert_int_equal(SPL_ECONFIG, -1001);
    assert_int_equal(SPL_ECONFIG_WIRE, 1001);
    assert_string_equal(spl_errname(SPL_ENOTLEADER), "SPL_ENOTLEADER");
    /* unknown codes: never NULL */
    assert_string_equal(spl_errname(-999), "UNKNOWN");
    assert_string_equal(spl_errname(-123456), "UNKNOWN");
    assert_string_equal(spl_strerror(-123456), "unknown error");
    assert_string_equal(spl_errname(5), "UNKNOWN");
    assert_false(spl_err_is_known(-123456));
    assert_false(spl_err_is_known(5));
    assert_true(spl_err_is_known(0));
    assert_true(spl_err_is_known(-EIO));
    assert_true(spl_err_is_known(SPL_ECORRUPT));
}

static void test_wire_roundtrip(void **state)
{
    (void)state;
    assert_int_equal(spl_err_to_wire(0), 0);
    assert_int_equal(spl_err_from_wire(0), 0);
    assert_int_equal(spl_err_to_wire(-EIO), EIO);
    assert_int_equal(spl_err_from_wire(EIO), -EIO);
    assert_int_equal(spl_err_to_wire(SPL_ENOTLEADER), SPL_ENOTLEADER_WIRE);
    for (int i = 0; i < spl_err_count(); i++) {
        int code = spl_err_at(i);
        assert_int_equal(spl_err_from_wire(spl_err_to_wire(code)), code);
    }
    for (int e = 1; e < 134; e++) /* every errno Linux defines */
        if (spl_err_is_known(-e))
            assert_int_equal(spl_err_from_wire(spl_err_to_wire(-e)), -e);
}

static void test_unknown_wire_is_internal(void **state)
{
    (void)state;
    assert_int_equal(spl_err_from_wire(999), SPL_EINTERNAL);   /* not an errno */
    assert_int_equal(spl_err_from_wire(1099), SPL_EINTERNAL);  /* gap in the base range */
    assert_int_equal(spl_err_from_wire(54321), SPL_EINTERNAL);
    assert_int_equal(spl_err_from_wire(UINT32_MAX), SPL_EINTERNAL);
    assert_int_equal(spl_err_from_wire((uint32_t)INT32_MAX + 1), SPL_EINTERNAL);
}

static void test_table_rows_unique(void **state)
{
    (void)state;
    int n = spl_err_count();
    assert_true(n >= 7);
    for (int i = 0; i < n; i++) {
        int code = spl_err_at(i);
        const char *name = spl_errname(code);
        assert_true(code <= -SPL_ERROR_BASE);
        assert_true(strncmp(name, "SPL_E", 5) == 0);
        assert_true(strcmp(spl_strerror(code), "unknown error") != 0);
        assert_true(strlen(spl_strerror(code)) > 5);
        assert_true(spl_err_is_known(code));
        for (int j = 0; j < i; j++) {
            assert_int_not_equal(spl_err_at(j), code);
            assert_string_not_equal(spl_errname(spl_err_at(j)), name);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_wire_roundtrip),
        cmocka_unit_test(test_unknown_wire_is_internal),
        cmocka_unit_test(test_table_rows_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
