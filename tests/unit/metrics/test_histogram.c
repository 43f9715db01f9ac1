/* test_histogram.c - bucket arithmetic, count/sum, quantiles against a sorted reference. */
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

#define SAMPLES 200000

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};

/* Bucket i holds (upper(i-1), upper(i)]; check that for one value. */
static void check_value_in_its_bucket(uint64_t v)
{
    unsigned i = spl_histogram_bucket_index(v);
    assert_true(i < SPL_HISTOGRAM_BUCKETS);
    assert_true(v <= spl_histogram_bucket_upper(i));
    if (i > 0)
        assert_true(v > spl_histogram_bucket_upper(i - 1));
    else
        assert_int_equal(v, 0);
}

static void test_bucket_layout(void **state)
{
    for (uint64_t v = 0; v <= 16; v++) {
        assert_int_equal(spl_histogram_bucket_index(v), v); /* exact */
        assert_int_equal(spl_histogram_bucket_upper((unsigned)v), v);
    }
    for (uint64_t v = 0; v < 1000000; v++)
        check_value_in_its_bucket(v);
    struct spl_rand r;
    spl_rand_seed(&r, 1);
    for (int i = 0; i < 1000000; i++) {
        uint64_t v = spl_rand_u64(&r) >> spl_rand_below(&r, 64);
        check_value_in_its_bucket(v);
    }
    for (int e = 0; e < 64; e++) { /* edges around every power of two */
        uint64_t p = 1ull << e;
        check_value_in_its_bucket(p - 1);
        check_value_in_its_bucket(p);
        check_value_in_its_bucket(p + 1);
    }
    assert_int_equal(spl_histogram_bucket_index(UINT64_MAX), SPL_HISTOGRAM_BUCKETS - 1);
    assert_true(spl_histogram_bucket_upper(SPL_HISTOGRAM_BUCKETS - 1) == UINT64_MAX);
    /* ascending, and no bucket wider than 1/16 of its lower bound */
    for (unsigned i = 1; i < SPL_HISTOGRAM_BUCKETS; i++) {
        uint64_t lo = spl_histogram_bucket_upper(i - 1), hi = spl_histogram_bucket_upper(i);
        assert_true(hi > lo);
        if (i > 16)
            assert_true((hi - lo) * 16 <= lo);
    }
    /* powers of two are upper bounds: le="4096" holds a 4096-byte write */
    for (int e = 0; e < 64; e++) {
        unsigned i = spl_histogram_bucket_index(1ull << e);
        assert_true(spl_histogram_bucket_upper(i) == 1ull << e);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile as the histogram defines it: the ceil(q*n)-th smallest sample. */
static uint64_t reference_quantile(const uint64_t *sorted, size_t n, double q)
{
    double want = ceil(q * (double)n);
    size_t rank = want < 1 ? 1 : want > (double)n ? n : (size_t)want;
    return sorted[rank - 1];
}

typedef uint64_t (*draw_fn)(struct spl_rand *r);

static uint64_t draw_uniform(struct spl_rand *r) { return spl_rand_range(r, 1, 1000000); }
static uint64_t draw_small(struct spl_rand *r) { return spl_rand_below(r, 17); }
static uint64_t draw_constant(struct spl_rand *r) { return 250000; }
static uint64_t draw_huge(struct spl_rand *r) { return UINT64_MAX - spl_rand_below(r, 1000); }

/* Latency-like: log-uniform from 1 us to 10 s, with a 1% tail 100x slower. */
static uint64_t draw_latency(struct spl_rand *r)
{
    double u = (double)spl_rand_below(r, 1u << 30) / (double)(1u << 30);
    double ns = 1000.0 * pow(10.0, 4.0 * u);
    if (spl_rand_below(r, 100) == 0)
        ns *= 100;
    return (uint64_t)ns;
}

static void check_distribution(draw_fn draw, uint64_t seed, bool exact)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_histogram *h = spl_histogram_new(reg, "spline_test_latency_seconds", "Latency",
                                                SPL_METRIC_UNIT_SECONDS);
    uint64_t *values = malloc(SAMPLES * sizeof(*values));
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    assert_non_null(values);
    assert_non_null(snap);
    struct spl_rand r;
    spl_rand_seed(&r, seed);
    uint64_t sum = 0;
    for (size_t i = 0; i < SAMPLES; i++) {
        values[i] = draw(&r);
        sum += values[i];
        spl_histogram_record(h, values[i]);
    }
    qsort(values, SAMPLES, sizeof(*values), cmp_u64);
    spl_histogram_snapshot(h, snap);
    assert_int_equal(snap->count, SAMPLES);
    assert_true(snap->sum == sum);
    assert_int_equal(snap->unit, SPL_METRIC_UNIT_SECONDS);
    for (size_t i = 0; i < SPL_ARRAY_SIZE(quantiles); i++) {
        uint64_t ref = reference_quantile(values, SAMPLES, quantiles[i]);
        uint64_t est = spl_histogram_quantile(snap, quantiles[i]);
        if (exact) {
            assert_true(est == ref);
            continue;
        }
        /* same bucket as the true sample quantile, hence within 1/16 of it */
        if (spl_histogram_bucket_index(est) != spl_histogram_bucket_index(ref))
            fail_msg("q=%g: estimate %llu and reference %llu in different buckets",
                     quantiles[i], (unsigned long long)est, (unsigned long long)ref);
        double err = fabs((double)est - (double)ref);
        assert_true(err <= (double)ref / 16.0 + 1.0);
    }
    assert_int_equal(spl_histogram_quantile(snap, 1.0),
                     spl_histogram_bucket_upper(spl_histogram_bucket_index(values[SAMPLES - 1])));
    free(snap);
    free(values);
    spl_metrics_free(reg);
}

static void test_quantiles_uniform(void **state) { check_distribution(draw_uniform, 11, false); }
static void test_quantiles_latency(void **state) { check_distribution(draw_latency, 12, false); }
static void test_quantiles_small_exact(void **state) { check_distribution(draw_small, 13, true); }
static void test_quantiles_constant(void **state) { check_distribution(draw_constant, 14, false); }
static void test_quantiles_huge(void **state) { check_distribution(draw_huge, 15, false); }

static void test_empty_and_single(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_histogram *h = spl_histogram_new(reg, "spline_test_write_bytes", "Sizes",
                                                SPL_METRIC_UNIT_BYTES);
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    assert_non_null(snap);
    spl_histogram_snapshot(h, snap);
    assert_int_equal(snap->count, 0);
    assert_int_equal(snap->sum, 0);
    assert_int_equal(spl_histogram_quantile(snap, 0.5), 0);
    spl_histogram_record(h, 4096);
    spl_histogram_snapshot(h, snap);
    for (size_t i = 0; i < SPL_ARRAY_SIZE(quantiles); i++)
        assert_int_equal(spl_histogram_quantile(snap, quantiles[i]), 4096);
    spl_histogram_record(h, 0);
    spl_histogram_snapshot(h, snap);
    assert_int_equal(spl_histogram_quantile(snap, 0.5), 0);
    assert_int_equal(snap->sum, 4096);
    free(snap);
    spl_metrics_free(reg);
}

static void test_snapshot_window(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_histogram *h = spl_histogram_new(reg, "spline_test_latency_seconds", "Latency",
                                                SPL_METRIC_UNIT_SECONDS);
    struct spl_histogram_snapshot *before = malloc(sizeof(*before));
    struct spl_histogram_snapshot *after = malloc(sizeof(*after));
    assert_non_null(before);
    assert_non_null(after);
    for (int i = 0; i < 1000; i++)
        spl_histogram_record(h, 1000000); /* 1 ms, before the window */
    spl_histogram_snapshot(h, before);
    for (int i = 0; i < 100; i++)
        spl_histogram_record(h, 5); /* 5 ns, inside it */
    spl_histogram_snapshot(h, after);
    assert_int_equal(after->count, 1100);
    spl_histogram_snapshot_sub(after, before);
    assert_int_equal(after->count, 100);
    assert_int_equal(after->sum, 500);
    assert_int_equal(spl_histogram_quantile(after, 0.99), 5);
    free(before);
    free(after);
    spl_metrics_free(reg);
}

static void test_record_since(void **state)
{
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_histogram *h = spl_histogram_new(reg, "spline_test_sleep_seconds", "Sleeps",
                                                SPL_METRIC_UNIT_SECONDS);
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    assert_non_null(snap);
    uint64_t start = spl_mono_ns();
    spl_sleep_ns(2 * SPL_NS_PER_MS);
    spl_histogram_record_since(h, start);
    spl_histogram_record_since(h, spl_mono_ns() + SPL_NS_PER_SEC); /* future start: 0 */
    spl_histogram_snapshot(h, snap);
    assert_int_equal(snap->count, 2);
    assert_true(snap->sum >= 2 * SPL_NS_PER_MS && snap->sum < 2 * SPL_NS_PER_SEC);
    assert_int_equal(snap->buckets[0], 1);
    free(snap);
    spl_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_quantiles_uniform),
        cmocka_unit_test(test_quantiles_latency),
        cmocka_unit_test(test_quantiles_small_exact),
        cmocka_unit_test(test_quantiles_constant),
        cmocka_unit_test(test_quantiles_huge),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_snapshot_window),
        cmocka_unit_test(test_record_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
