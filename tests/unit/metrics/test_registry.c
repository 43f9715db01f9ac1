/* test_registry.c - counters, gauges, callbacks, naming rules, standard families. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "metrics/metrics_internal.h"

static char *scrape(struct spl_metrics *reg)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(spl_metrics_format(reg, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* The value on the line that starts with `series ` in text; fails when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    }
    fail_msg("no sample %s in:\n%s", series, text);
    return 0;
}

static void test_counter(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_counter_family *fam =
        spl_counter_family(reg, "spline_test_requests_total", "Requests", "method", "code");
    struct spl_counter *echo_ok = spl_counter_get(fam, "Echo", "OK");
    struct spl_counter *echo_err = spl_counter_get(fam, "Echo", "EIO");
    assert_ptr_not_equal(echo_ok, echo_err);
    assert_ptr_equal(spl_counter_get(fam, "Echo", "OK"), echo_ok);
    assert_int_equal(spl_counter_value(echo_ok), 0);
    spl_counter_inc(echo_ok);
    spl_counter_add(echo_ok, 41);
    spl_counter_add(echo_err, 7);
    assert_int_equal(spl_counter_value(echo_ok), 42);
    assert_int_equal(spl_counter_value(echo_err), 7);
    /* the same family again, from another component */
    struct spl_counter_family *again =
        spl_counter_family(reg, "spline_test_requests_total", "Requests", "method", "code");
    assert_ptr_equal(again, fam);
    assert_ptr_equal(spl_counter_get(again, "Echo", "EIO"), echo_err);

    char *text = scrape(reg);
    assert_true(sample(text, "spline_test_requests_total{method=\"Echo\",code=\"OK\"}") == 42);
    assert_true(sample(text, "spline_test_requests_total{method=\"Echo\",code=\"EIO\"}") == 7);
    free(text);
    spl_metrics_free(reg);
}

static void test_gauge(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_gauge *g = spl_gauge_new(reg, "spline_test_queue_depth", "Queued");
    assert_int_equal(spl_gauge_value(g), 0);
    spl_gauge_set(g, 10);
    spl_gauge_inc(g);
    spl_gauge_dec(g);
    spl_gauge_dec(g);
    spl_gauge_add(g, -20);
    assert_int_equal(spl_gauge_value(g), -11);
    spl_gauge_set(g, INT64_MIN);
    char *text = scrape(reg);
    assert_non_null(strstr(text, "\nspline_test_queue_depth -9223372036854775808\n"));
    free(text);
    spl_metrics_free(reg);
}

static double read_half(void *arg) { return *(double *)arg / 2; }

static void test_callbacks(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    double source = 5;
    struct spl_gauge *g = spl_gauge_new(reg, "spline_test_ratio_value", "Half of source");
    struct spl_counter *c = spl_counter_new(reg, "spline_test_derived_total", "Derived");
    spl_gauge_set(g, 3);
    spl_counter_add(c, 9);
    spl_gauge_attach_cb(g, read_half, &source);
    spl_counter_attach_cb(c, read_half, &source);
    char *text = scrape(reg);
    assert_true(sample(text, "spline_test_ratio_value") == 2.5);
    assert_true(sample(text, "spline_test_derived_total") == 2.5);
    free(text);
    source = 7;
    text = scrape(reg);
    assert_true(sample(text, "spline_test_ratio_value") == 3.5);
    free(text);
    /* detached: the stored values come back */
    spl_gauge_attach_cb(g, NULL, NULL);
    spl_counter_attach_cb(c, NULL, NULL);
    text = scrape(reg);
    assert_true(sample(text, "spline_test_ratio_value") == 3);
    assert_true(sample(text, "spline_test_derived_total") == 9);
    free(text);
    spl_metrics_free(reg);
}

static void test_name_rules(void **state)
{
    static const struct {
        const char *name;
        enum spl_metric_type type;
        enum spl_metric_unit unit;
        bool valid;
    } cases[] = {
        {"spline_rpc_requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, true},
        {"spline_rpc_received_bytes_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, true},
        {"spline_rpc_connections_open", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, true},
        {"spline_raft_log_size_bytes", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, true},
        {"spline_build_info", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, true},
        {"spline_rpc_latency_seconds", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_SECONDS, true},
        {"spline_rpc_request_bytes", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_BYTES, true},
        {"spline_raft_batch_entries", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_NONE, true},
        {"process_open_fds", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, true},
        {"process_cpu_seconds_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, true},
        /* broken rules */
        {"process_open_fds", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"process_threads", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"rpc_requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_requests", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_requests_total", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_Requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc:requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc__requests_total", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_requests_total_", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_latency_ms", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_latency_milliseconds", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_us_latency", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_disk_free_kilobytes", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_disk_free_mb", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_uptime_hours", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_requests_counter", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_gauge_depth", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_requests_count", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_latency_sum", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_latency_bucket", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_latency_bytes", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_SECONDS, false},
        {"spline_rpc_size_seconds", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_BYTES, false},
        {"spline_rpc_size_seconds", SPL_METRIC_HISTOGRAM, SPL_METRIC_UNIT_NONE, false},
        {"spline_rpc_info", SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, false},
        {"", SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, false},
    };
    for (size_t i = 0; i < SPL_ARRAY_SIZE(cases); i++) {
        const char *why = "unset";
        bool valid = spl__metric_name_valid(cases[i].name, cases[i].type, cases[i].unit, &why);
        if (valid != cases[i].valid)
            fail_msg("\"%s\" (type %d): expected %s, got %s (%s)", cases[i].name,
                     (int)cases[i].type, cases[i].valid ? "valid" : "invalid",
                     valid ? "valid" : "invalid", why ? why : "-");
        assert_true(valid ? why == NULL : why != NULL);
    }
    char longname[SPL_METRICS_NAME_MAX + 8] = "spline_rpc_";
    memset(longname + 11, 'a', SPL_METRICS_NAME_MAX - 6 - 11);
    memcpy(longname + SPL_METRICS_NAME_MAX - 6, "_total", sizeof("_total"));
    assert_false(spl__metric_name_valid(longname, SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, NULL));

    assert_true(spl__label_name_valid("method"));
    assert_true(spl__label_name_valid("_private"));
    assert_true(spl__label_name_valid("copyset_id2"));
    assert_false(spl__label_name_valid(""));
    assert_false(spl__label_name_valid("le"));
    assert_false(spl__label_name_valid("quantile"));
    assert_false(spl__label_name_valid("__name__"));
    assert_false(spl__label_name_valid("2fast"));
    assert_false(spl__label_name_valid("camelCase"));
    assert_false(spl__label_name_valid("dash-ed"));
}

/* Programmer errors crash: run fn in a child and expect SIGABRT. */
static void expect_abort(void (*fn)(struct spl_metrics *reg))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        struct spl_metrics *reg = spl_metrics_new();
        fn(reg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void bad_name(struct spl_metrics *reg) { spl_counter_new(reg, "spline_rpc_ms", "x"); }
static void redefined(struct spl_metrics *reg)
{
    spl_counter_family(reg, "spline_rpc_requests_total", "x", "method");
    spl_counter_family(reg, "spline_rpc_requests_total", "x", "code");
}
static void retyped(struct spl_metrics *reg)
{
    spl_histogram_new(reg, "spline_rpc_latency_seconds", "x", SPL_METRIC_UNIT_SECONDS);
    spl_gauge_new(reg, "spline_rpc_latency_quantiles_seconds", "x");
}
static void wrong_value_count(struct spl_metrics *reg)
{
    spl_counter_get(spl_counter_family(reg, "spline_rpc_requests_total", "x", "method"), "a",
                    "b");
}
static void reserved_label(struct spl_metrics *reg)
{
    spl_histogram_family(reg, "spline_rpc_latency_seconds", "x", SPL_METRIC_UNIT_SECONDS, "le");
}
static void duplicate_label(struct spl_metrics *reg)
{
    spl_counter_family(reg, "spline_rpc_requests_total", "x", "method", "method");
}
static void long_value(struct spl_metrics *reg)
{
    char value[SPL_METRICS_LABEL_VALUE_MAX + 2];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    spl_gauge_get(spl_gauge_family(reg, "spline_rpc_queue_depth", "x", "peer"), value);
}
static void no_help(struct spl_metrics *reg) { spl_gauge_new(reg, "spline_rpc_queue_depth", ""); }

static void test_programmer_errors_abort(void **state)
{
    expect_abort(bad_name);
    expect_abort(redefined);
    expect_abort(retyped);
    expect_abort(wrong_value_count);
    expect_abort(reserved_label);
    expect_abort(duplicate_label);
    expect_abort(long_value);
    expect_abort(no_help);
}

static void test_empty_family_not_exported(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    spl_counter_family(reg, "spline_test_unused_total", "Never used", "method");
    char *text = scrape(reg);
    assert_string_equal(text, "");
    free(text);
    spl_metrics_free(reg);
}

static void test_build_info(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    spl_metrics_register_build_info(reg, "mds");
    assert_true(strlen(spl_metrics_version()) > 0);
    assert_true(strlen(spl_metrics_commit()) > 0);
    char series[256];
    snprintf(series, sizeof(series),
             "spline_build_info{component=\"mds\",version=\"%s\",commit=\"%s\"}",
             spl_metrics_version(), spl_metrics_commit());
    char *text = scrape(reg);
    assert_true(sample(text, series) == 1);
    free(text);
    spl_metrics_free(reg);
}

static void test_process_metrics(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    spl_metrics_register_process(reg);
    spl_metrics_register_process(reg); /* once per registry; the second is a no-op */
    volatile uint64_t spin = 0;
    for (uint64_t i = 0; i < 20000000; i++)
        spin += i;
    assert_true(spin > 0); /* burn CPU so that process_cpu_seconds_total is above 0 */
    int extra_fd = open("/dev/null", O_RDONLY);
    assert_true(extra_fd >= 0);
    char *text = scrape(reg);
    double now = (double)time(NULL);
    assert_true(sample(text, "process_cpu_seconds_total") > 0);
    assert_true(sample(text, "process_resident_memory_bytes") > 100 * 1024);
    assert_true(sample(text, "process_virtual_memory_bytes") >=
                sample(text, "process_resident_memory_bytes"));
    double fds = sample(text, "process_open_fds");
    assert_true(fds >= 4); /* stdin, stdout, stderr, extra_fd */
    assert_true(sample(text, "process_max_fds") >= fds);
    double start = sample(text, "process_start_time_seconds");
    assert_true(start > now - 3600 && start <= now + 1);
    free(text);
    close(extra_fd);
    text = scrape(reg);
    assert_true(sample(text, "process_open_fds") == fds - 1);
    free(text);
    spl_metrics_free(reg);
}

static void test_global_registry(void **state)
{
    struct spl_metrics *a = spl_metrics_global();
    assert_non_null(a);
    assert_ptr_equal(spl_metrics_global(), a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_gauge),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_name_rules),
        cmocka_unit_test(test_programmer_errors_abort),
        cmocka_unit_test(test_empty_family_not_exported),
        cmocka_unit_test(test_build_info),
        cmocka_unit_test(test_process_metrics),
        cmocka_unit_test(test_global_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
