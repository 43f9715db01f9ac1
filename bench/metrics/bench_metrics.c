/*
 * bench_metrics.c - what an update costs on the I/O path.
 *
 * Prints ns per counter increment and per histogram record, on one thread and on two
 * threads hammering the same child, next to same-run baselines: one plain relaxed
 * atomic add on a single shared word (what a counter would cost without shards), and
 * two threads recording into two different histograms (the floor for sharing nothing).
 * Also the cost of a /metrics scrape of a registry of typical size.
 *
 * Usage: bench_metrics [million-ops-per-thread]   (default 20, at most 1000)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/clock.h"
#include "metrics/metrics.h"

#define THREADS_MAX 2
#define MILLIONS_MAX 1000

enum op { OP_BASELINE_ATOMIC, OP_COUNTER, OP_HISTOGRAM, OP_HISTOGRAM_OWN };

struct run {
    enum op op;
    uint64_t ops;
    unsigned threads;
    struct spl_counter *counter;
    struct spl_histogram *histogram;
    struct spl_histogram *own[THREADS_MAX]; /* OP_HISTOGRAM_OWN: one per thread */
    _Atomic uint64_t shared_word;
    pthread_barrier_t start;
};

struct worker {
    struct run *run;
    unsigned id;
};

static void record_loop(struct spl_histogram *h, uint64_t ops)
{
    /* latencies from 1 us to ~1 ms: the buckets a real RPC path touches */
    for (uint64_t i = 0; i < ops; i++)
        spl_histogram_record(h, 1000 + (i * 7919) % 1000000);
}

static void *bench_thread(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    pthread_barrier_wait(&r->start);
    switch (r->op) {
    case OP_BASELINE_ATOMIC:
        for (uint64_t i = 0; i < r->ops; i++)
            atomic_fetch_add_explicit(&r->shared_word, 1, memory_order_relaxed);
        break;
    case OP_COUNTER:
        for (uint64_t i = 0; i < r->ops; i++)
            spl_counter_inc(r->counter);
        break;
    case OP_HISTOGRAM:
        record_loop(r->histogram, r->ops);
        break;
    case OP_HISTOGRAM_OWN:
        record_loop(r->own[w->id], r->ops);
        break;
    }
    return NULL;
}

/* ns per operation as each thread sees it (wall time / ops per thread). */
static double measure(struct run *r, unsigned threads)
{
    pthread_t tids[THREADS_MAX];
    struct worker workers[THREADS_MAX];
    r->threads = threads;
    ASSERT(pthread_barrier_init(&r->start, NULL, threads + 1) == 0);
    for (unsigned t = 0; t < threads; t++) {
        workers[t] = (struct worker){r, t};
        ASSERT(pthread_create(&tids[t], NULL, bench_thread, &workers[t]) == 0);
    }
    uint64_t start_ns = spl_mono_ns();
    pthread_barrier_wait(&r->start);
    for (unsigned t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    uint64_t elapsed_ns = spl_mono_ns() - start_ns;
    pthread_barrier_destroy(&r->start);
    return (double)elapsed_ns / (double)r->ops;
}

int main(int argc, char **argv)
{
    unsigned long millions = argc > 1 ? strtoul(argv[1], NULL, 10) : 20;
    if (millions == 0 || millions > MILLIONS_MAX) {
        fprintf(stderr, "usage: %s [million-ops-per-thread, 1..%d]\n", argv[0], MILLIONS_MAX);
        return 2;
    }
    struct spl_metrics *reg = spl_metrics_new();
    struct spl_counter *counter =
        spl_counter_new(reg, "spline_bench_ops_total", "Benchmark operations");
    struct spl_histogram *histogram = spl_histogram_new(
        reg, "spline_bench_op_duration_seconds", "Benchmark latencies", SPL_METRIC_UNIT_SECONDS);
    static struct run r;
    r.ops = millions * 1000000ull;
    r.counter = counter;
    r.histogram = histogram;
    struct spl_histogram_family *own = spl_histogram_family(
        reg, "spline_bench_own_duration_seconds", "Per-thread latencies", SPL_METRIC_UNIT_SECONDS,
        "thread");
    r.own[0] = spl_histogram_get(own, "0");
    r.own[1] = spl_histogram_get(own, "1");

    static const struct {
        enum op op;
        const char *name;
    } ops[] = {
        {OP_BASELINE_ATOMIC, "baseline: one shared relaxed atomic add"},
        {OP_COUNTER, "spl_counter_inc (shared child)"},
        {OP_HISTOGRAM, "spl_histogram_record (shared child)"},
        {OP_HISTOGRAM_OWN, "baseline: record, one child per thread"},
    };
    printf("%lu M ops per thread; ns per op as each thread sees it (lower is better)\n",
           millions);
    printf("%-42s %10s %10s\n", "operation", "1 thread", "2 threads");
    SPL_STATIC_ASSERT(THREADS_MAX == 2, "the table has a 1-thread and a 2-thread column");
    for (size_t i = 0; i < SPL_ARRAY_SIZE(ops); i++) {
        r.op = ops[i].op;
        double one = measure(&r, 1);
        double two = measure(&r, 2);
        printf("%-42s %10.2f %10.2f\n", ops[i].name, one, two);
    }
    ASSERT(spl_counter_value(counter) == 3 * r.ops); /* nothing lost */
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    ASSERT(snap);
    spl_histogram_snapshot(histogram, snap);
    ASSERT(snap->count == 3 * r.ops);
    printf("p50 %.1f us, p99 %.1f us of the recorded synthetic latencies\n",
           (double)spl_histogram_quantile(snap, 0.5) / 1000,
           (double)spl_histogram_quantile(snap, 0.99) / 1000);
    free(snap);

    /* a scrape of a daemon-sized registry: 64 methods x (counter, histogram) */
    struct spl_counter_family *calls =
        spl_counter_family(reg, "spline_bench_calls_total", "Calls", "method");
    struct spl_histogram_family *lat = spl_histogram_family(
        reg, "spline_bench_call_duration_seconds", "Latency", SPL_METRIC_UNIT_SECONDS, "method");
    for (int m = 0; m < 64; m++) {
        char name[16];
        snprintf(name, sizeof(name), "M%d", m);
        spl_counter_inc(spl_counter_get(calls, name));
        spl_histogram_record(spl_histogram_get(lat, name), 1000u * (unsigned)m);
    }
    uint64_t start_ns = spl_mono_ns();
    size_t bytes = 0;
    const int scrapes = 20;
    for (int i = 0; i < scrapes; i++) {
        char *text = NULL;
        ASSERT(spl_metrics_format(reg, &text, &bytes) == 0);
        free(text);
    }
    printf("scrape of 130 children (64 histograms): %.2f ms, %zu bytes\n",
           (double)(spl_mono_ns() - start_ns) / scrapes / 1e6, bytes);
    spl_metrics_free(reg);
    return 0;
}
