/* test_concurrency.c - 4 writer threads x 1M updates give exact totals while a scraper
 * reads, and concurrent registration hands every thread the same child. Also run under
 * TSan (-DSPL_SANITIZE=thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "metrics/metrics.h"

#define THREADS 4
#define UPDATES 1000000

struct shared {
    struct spl_metrics *reg;
    struct spl_counter_family *counters;
    struct spl_gauge_family *gauges;
    struct spl_histogram_family *histograms;
    pthread_barrier_t start;
    atomic_bool writers_done;
    struct spl_counter *seen[THREADS]; /* what each thread got for the shared child */
    uint64_t scrapes;
};

struct writer {
    struct shared *sh;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct shared *sh = w->sh;
    char own[16];
    snprintf(own, sizeof(own), "t%d", w->id);
    pthread_barrier_wait(&sh->start);
    /* all threads race to create the same child, and each its own */
    struct spl_counter *c = spl_counter_get(sh->counters, "shared");
    struct spl_counter *mine = spl_counter_get(sh->counters, own);
    struct spl_gauge *g = spl_gauge_get(sh->gauges, "shared");
    struct spl_histogram *h = spl_histogram_get(sh->histograms, "shared");
    sh->seen[w->id] = c;
    for (uint64_t i = 0; i < UPDATES; i++) {
        spl_counter_inc(c);
        spl_gauge_inc(g);
        spl_histogram_record(h, i % 5000);
    }
    spl_counter_add(mine, (uint64_t)w->id + 1);
    return NULL;
}

/* Scrapes until the writers are done; returns the number of problems seen (cmocka's
 * asserts may only run on the test's own thread). */
static void *scraper_main(void *arg)
{
    struct shared *sh = arg;
    uint64_t last = 0, scrapes = 0;
    uintptr_t problems = 0;
    pthread_barrier_wait(&sh->start);
    struct spl_counter *c = spl_counter_get(sh->counters, "shared");
    while (!atomic_load(&sh->writers_done) || scrapes < 3) {
        char *text = NULL;
        size_t len = 0;
        if (spl_metrics_format(sh->reg, &text, &len) != 0 || strlen(text) != len)
            problems++;
        free(text);
        uint64_t now = spl_counter_value(c);
        if (now < last) /* a counter never goes back */
            problems++;
        last = now;
        scrapes++;
    }
    sh->scrapes = scrapes;
    return (void *)problems;
}

static void test_exact_totals_under_contention(void **state)
{
    struct shared sh = {.reg = spl_metrics_new()};
    sh.counters = spl_counter_family(sh.reg, "spline_test_ops_total", "Ops", "who");
    sh.gauges = spl_gauge_family(sh.reg, "spline_test_ops_inflight", "Ops", "who");
    sh.histograms = spl_histogram_family(sh.reg, "spline_test_op_duration_seconds", "Ops",
                                         SPL_METRIC_UNIT_SECONDS, "who");
    atomic_init(&sh.writers_done, false);
    assert_int_equal(pthread_barrier_init(&sh.start, NULL, THREADS + 1), 0);
    pthread_t writers[THREADS], scraper;
    struct writer args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct writer){&sh, i};
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &args[i]), 0);
    }
    assert_int_equal(pthread_create(&scraper, NULL, scraper_main, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(writers[i], NULL), 0);
    atomic_store(&sh.writers_done, true);
    void *problems = NULL;
    assert_int_equal(pthread_join(scraper, &problems), 0);
    assert_int_equal((uintptr_t)problems, 0);
    assert_true(sh.scrapes >= 3);

    struct spl_counter *c = spl_counter_get(sh.counters, "shared");
    for (int i = 0; i < THREADS; i++)
        assert_ptr_equal(sh.seen[i], c);
    assert_int_equal(spl_counter_value(c), (uint64_t)THREADS * UPDATES);
    assert_int_equal(spl_gauge_value(spl_gauge_get(sh.gauges, "shared")),
                     (int64_t)THREADS * UPDATES);
    for (int i = 0; i < THREADS; i++) {
        char own[16];
        snprintf(own, sizeof(own), "t%d", i);
        assert_int_equal(spl_counter_value(spl_counter_get(sh.counters, own)), i + 1);
    }
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    assert_non_null(snap);
    spl_histogram_snapshot(spl_histogram_get(sh.histograms, "shared"), snap);
    assert_int_equal(snap->count, (uint64_t)THREADS * UPDATES);
    uint64_t per_thread_sum = (UPDATES / 5000) * (4999ull * 5000 / 2);
    assert_int_equal(snap->sum, THREADS * per_thread_sum);
    for (uint64_t v = 0; v <= 16; v++) /* exact buckets: each value 200 times per thread */
        assert_int_equal(snap->buckets[v], THREADS * (UPDATES / 5000));
    free(snap);
    pthread_barrier_destroy(&sh.start);
    spl_metrics_free(sh.reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_totals_under_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
