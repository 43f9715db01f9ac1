/* test_expose.c - the Prometheus text format: a golden scrape, escaping, numbers, and
 * the seconds histogram's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "base/clock.h"
#include "base/random.h"
#include "metrics/metrics.h"
#include "metrics/metrics_internal.h"

static char *scrape(struct spl_metrics *reg)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(spl_metrics_format(reg, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static double quarter(void *arg) { return 0.25; }
static double infinite(void *arg) { return INFINITY; }
static double not_a_number(void *arg) { return NAN; }

/* Every line checked by hand once; a change here is a change of the wire format. */
static const char golden[] =
    "# HELP spline_test_connections_open Open connections\n"
    "# TYPE spline_test_connections_open gauge\n"
    "spline_test_connections_open -2\n"
    "# HELP spline_test_fill_ratio Fill, computed at scrape time\n"
    "# TYPE spline_test_fill_ratio gauge\n"
    "spline_test_fill_ratio{disk=\"a\"} 0.25\n"
    "spline_test_fill_ratio{disk=\"b\"} +Inf\n"
    "spline_test_fill_ratio{disk=\"c\"} NaN\n"
    "# HELP spline_test_requests_total Requests served, by method \\\\ result\\nsecond line\n"
    "# TYPE spline_test_requests_total counter\n"
    "spline_test_requests_total{method=\"Echo\",code=\"OK\"} 3\n"
    "spline_test_requests_total{method=\"we\\\"ird\\\\\\nname\",code=\"EIO\"} 1\n"
    "# HELP spline_test_write_size_bytes Write sizes\n"
    "# TYPE spline_test_write_size_bytes histogram\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"512\"} 1\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"1024\"} 1\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"2048\"} 1\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"4096\"} 2\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"8192\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"16384\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"32768\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"65536\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"131072\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"262144\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"524288\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"1048576\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"2097152\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"4194304\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"8388608\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"16777216\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"33554432\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"67108864\"} 3\n"
    "spline_test_write_size_bytes_bucket{op=\"write\",le=\"+Inf\"} 4\n"
    "spline_test_write_size_bytes_sum{op=\"write\"} 100008193\n"
    "spline_test_write_size_bytes_count{op=\"write\"} 4\n"
    "# HELP spline_test_write_size_quantiles_bytes Write sizes (quantiles over the life of "
    "the process)\n"
    "# TYPE spline_test_write_size_quantiles_bytes summary\n"
    "spline_test_write_size_quantiles_bytes{op=\"write\",quantile=\"0.5\"} 4096\n"
    "spline_test_write_size_quantiles_bytes{op=\"write\",quantile=\"0.9\"} 100663296\n"
    "spline_test_write_size_quantiles_bytes{op=\"write\",quantile=\"0.99\"} 100663296\n"
    "spline_test_write_size_quantiles_bytes{op=\"write\",quantile=\"0.999\"} 100663296\n"
    "spline_test_write_size_quantiles_bytes_sum{op=\"write\"} 100008193\n"
    "spline_test_write_size_quantiles_bytes_count{op=\"write\"} 4\n";

static void test_golden(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    /* registered out of order: the output is sorted by name */
    struct spl_histogram_family *sizes = spl_histogram_family(
        reg, "spline_test_write_size_bytes", "Write sizes", SPL_METRIC_UNIT_BYTES, "op");
    struct spl_counter_family *requests = spl_counter_family(
        reg, "spline_test_requests_total",
        "Requests served, by method \\ result\nsecond line", "method", "code");
    spl_gauge_set(spl_gauge_new(reg, "spline_test_connections_open", "Open connections"), -2);
    spl_counter_family(reg, "spline_test_unused_total", "No children: not written", "x");
    struct spl_gauge_family *fill =
        spl_gauge_family(reg, "spline_test_fill_ratio", "Fill, computed at scrape time", "disk");
    spl_gauge_attach_cb(spl_gauge_get(fill, "a"), quarter, NULL);
    spl_gauge_attach_cb(spl_gauge_get(fill, "b"), infinite, NULL);
    spl_gauge_attach_cb(spl_gauge_get(fill, "c"), not_a_number, NULL);
    spl_counter_add(spl_counter_get(requests, "Echo", "OK"), 3);
    spl_counter_inc(spl_counter_get(requests, "we\"ird\\\nname", "EIO"));
    struct spl_histogram *w = spl_histogram_get(sizes, "write");
    spl_histogram_record(w, 0);
    spl_histogram_record(w, 4096);      /* le="4096": bounds are inclusive */
    spl_histogram_record(w, 4097);
    spl_histogram_record(w, 100000000); /* above the last bound: only +Inf */

    char *text = scrape(reg);
    if (strcmp(text, golden) != 0)
        fail_msg("scrape differs from the golden text; got:\n%s", text);
    free(text);
    spl_metrics_free(reg);
}

static void test_label_escaping(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_gauge_family *fam =
        spl_gauge_family(reg, "spline_test_volume_size", "Size", "volume");
    spl_gauge_set(spl_gauge_get(fam, "a\\b\"c\nd"), 1);
    spl_gauge_set(spl_gauge_get(fam, ""), 2);
    spl_gauge_set(spl_gauge_get(fam, "ünïcødé {}=,"), 3);
    char *text = scrape(reg);
    assert_non_null(strstr(text, "\nspline_test_volume_size{volume=\"a\\\\b\\\"c\\nd\"} 1\n"));
    assert_non_null(strstr(text, "\nspline_test_volume_size{volume=\"\"} 2\n"));
    assert_non_null(strstr(text, "\nspline_test_volume_size{volume=\"ünïcødé {}=,\"} 3\n"));
    free(text);
    spl_metrics_free(reg);
}

static void test_number_format(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-3, "-3"},
        {20000, "20000"},
        {1795320106, "1795320106"},
        {0.1, "0.1"},
        {0.25, "0.25"},
        {1e-9, "1e-09"},
        {2.56e-06, "2.56e-06"},
        {0.001015808, "0.001015808"},
        {1.0 / 3.0, "0.3333333333333333"},
        {1e300, "1e+300"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    char buf[32];
    for (size_t i = 0; i < SPL_ARRAY_SIZE(cases); i++)
        assert_string_equal(spl__format_double(cases[i].v, buf, sizeof(buf)), cases[i].text);
    /* whatever it prints reads back exactly, and nothing shorter would */
    struct spl_rand r;
    spl_rand_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        double v = (double)spl_rand_u64(&r) / 1e6 * pow(10, (double)spl_rand_below(&r, 40) - 20);
        if (i % 2)
            v = (double)spl_rand_below(&r, 100000) / 1000; /* short decimals: 12.345 */
        spl__format_double(v, buf, sizeof(buf));
        assert_true(strtod(buf, NULL) == v);
        char shortest[32];
        for (int precision = 1; precision <= 17; precision++) {
            snprintf(shortest, sizeof(shortest), "%.*g", precision, v);
            if (strtod(shortest, NULL) == v)
                break;
        }
        if (v != trunc(v) && strcmp(buf, shortest) != 0)
            fail_msg("%s is not the shortest text for %.17g (%s)", buf, v, shortest);
    }
}

/* The seconds histogram: bounds near 1-2.5-5 steps, ascending, cumulative, consistent. */
static void test_seconds_histogram(void **state)
{
    static const double targets[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                     5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,
                                     0.25, 0.5, 1, 2.5, 5, 10};
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_histogram *h = spl_histogram_new(reg, "spline_test_op_duration_seconds", "Ops",
                                                SPL_METRIC_UNIT_SECONDS);
    for (uint64_t ns = 1; ns < 20 * SPL_NS_PER_SEC; ns = ns * 3 / 2 + 1)
        spl_histogram_record(h, ns);
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    assert_non_null(snap);
    spl_histogram_snapshot(h, snap);
    char *text = scrape(reg);

    const char *prefix = "spline_test_op_duration_seconds_bucket{le=\"";
    size_t bounds = 0;
    double last_le = 0, last_count = 0;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        const char *le_text = p + strlen(prefix);
        double count = strtod(strchr(le_text, ' ') + 1, NULL);
        assert_true(count >= last_count);
        last_count = count;
        if (strncmp(le_text, "+Inf\"", 5) == 0) {
            assert_true(count == (double)snap->count);
            continue;
        }
        double le = strtod(le_text, NULL);
        assert_true(bounds < SPL_ARRAY_SIZE(targets));
        assert_true(le > last_le);
        assert_true(fabs(le - targets[bounds]) <= targets[bounds] / 16);
        /* the count is exact: every recorded value <= le */
        uint64_t expect = 0;
        for (uint64_t ns = 1; ns < 20 * SPL_NS_PER_SEC; ns = ns * 3 / 2 + 1)
            expect += (double)ns / 1e9 <= le * (1 + 1e-12);
        assert_true(count == (double)expect);
        last_le = le;
        bounds++;
    }
    assert_int_equal(bounds, SPL_ARRAY_SIZE(targets));
    char series[128];
    snprintf(series, sizeof(series), "\nspline_test_op_duration_seconds_count %llu\n",
             (unsigned long long)snap->count);
    assert_non_null(strstr(text, series));
    assert_non_null(
        strstr(text, "\nspline_test_op_duration_quantiles_seconds{quantile=\"0.999\"} "));
    free(text);
    free(snap);
    spl_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_seconds_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
