/*
 * histogram.c - log-linear histogram buckets: record, snapshot, quantiles, export bounds.
 *
 * Layout (SUB_BITS = 4, so 16 sub-buckets): bucket 0 holds the value 0; for v >= 1,
 * bucket 1 + base(v - 1), where base(x) = x for x < 16 and otherwise
 * (e - 3) * 16 + (x >> (e - 4)) - 16 with e = floor(log2 x). Bucket i then holds
 * (upper(i-1), upper(i)] with upper(i) = i for i <= 16 and (16 + i % 16) << (i / 16 - 1)
 * above, so every bucket is at most 1/16 of its lower bound wide and the last one ends
 * at 2^64. Shifting by one (v - 1) makes the upper bounds inclusive, as Prometheus `le`
 * bounds are, so a 4096-byte write lands in le="4096".
 */
#include "metrics/metrics_internal.h"

#include <math.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"

SPL_STATIC_ASSERT(SPL_HISTOGRAM_SUB_BITS == 4, "bucket arithmetic below assumes 16 subs");
SPL_STATIC_ASSERT(SPL_HISTOGRAM_BUCKETS == 977, "0, then 61 groups of 16 up to 2^64");

static inline unsigned base_index(uint64_t x)
{
    if (x < SPL__HIST_SUB_COUNT)
        return (unsigned)x;
    unsigned e = 63u - (unsigned)__builtin_clzll(x);
    return (e - 3u) * SPL__HIST_SUB_COUNT +
           (unsigned)(x >> (e - SPL_HISTOGRAM_SUB_BITS)) - SPL__HIST_SUB_COUNT;
}

unsigned spl_histogram_bucket_index(uint64_t value)
{
    return value == 0 ? 0 : 1u + base_index(value - 1);
}

uint64_t spl_histogram_bucket_upper(unsigned index)
{
    ASSERT_CMP(index, <, SPL_HISTOGRAM_BUCKETS);
    if (index <= SPL__HIST_SUB_COUNT)
        return index;
    unsigned group = index / SPL__HIST_SUB_COUNT, sub = index % SPL__HIST_SUB_COUNT;
    if (group - 1 + SPL_HISTOGRAM_SUB_BITS >= 64 && sub == 0)
        return UINT64_MAX; /* 16 << 60 == 2^64 */
    return (uint64_t)(SPL__HIST_SUB_COUNT + sub) << (group - 1);
}

void spl_histogram_record(struct spl_histogram *h, uint64_t value)
{
    struct spl__hist_shard *s = &h->shards[spl__shard_index(h->shard_mask)];
    atomic_fetch_add_explicit(&s->buckets[spl_histogram_bucket_index(value)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum, value, memory_order_relaxed);
}

void spl_histogram_record_since(struct spl_histogram *h, uint64_t start_ns)
{
    uint64_t now_ns = spl_mono_ns();
    spl_histogram_record(h, now_ns > start_ns ? now_ns - start_ns : 0);
}

void spl_histogram_snapshot(const struct spl_histogram *h, struct spl_histogram_snapshot *out)
{
    ASSERT(h && out);
    memset(out, 0, sizeof(*out));
    out->unit = h->base.family->unit;
    for (unsigned s = 0; s <= h->shard_mask; s++) {
        struct spl__hist_shard *shard = &h->shards[s];
        out->sum += atomic_load_explicit(&shard->sum, memory_order_relaxed);
        for (unsigned i = 0; i < SPL_HISTOGRAM_BUCKETS; i++)
            out->buckets[i] += atomic_load_explicit(&shard->buckets[i], memory_order_relaxed);
    }
    for (unsigned i = 0; i < SPL_HISTOGRAM_BUCKETS; i++)
        out->count += out->buckets[i];
}

void spl_histogram_snapshot_sub(struct spl_histogram_snapshot *a,
                                const struct spl_histogram_snapshot *b)
{
    ASSERT(a->unit == b->unit);
    ASSERT_CMP(a->count, >=, b->count);
    a->count = 0;
    for (unsigned i = 0; i < SPL_HISTOGRAM_BUCKETS; i++) {
        ASSERTF(a->buckets[i] >= b->buckets[i], "snapshot b is later than a (bucket %u)", i);
        a->buckets[i] -= b->buckets[i];
        a->count += a->buckets[i];
    }
    a->sum -= b->sum;
}

uint64_t spl_histogram_quantile(const struct spl_histogram_snapshot *s, double q)
{
    ASSERTF(q > 0.0 && q <= 1.0, "quantile %g", q);
    if (s->count == 0)
        return 0;
    double want = ceil(q * (double)s->count);
    uint64_t rank = want < 1.0 ? 1 : want > (double)s->count ? s->count : (uint64_t)want;
    uint64_t below = 0;
    for (unsigned i = 0; i < SPL_HISTOGRAM_BUCKETS; i++) {
        uint64_t n = s->buckets[i];
        if (below + n < rank) {
            below += n;
            continue;
        }
        if (i == 0)
            return 0;
        /* The (rank - below)-th of n values spread evenly over (lo, hi]. */
        uint64_t lo = spl_histogram_bucket_upper(i - 1), hi = spl_histogram_bucket_upper(i);
        double step = ceil((double)(hi - lo) * (double)(rank - below) / (double)n);
        uint64_t offset = step < 1.0 ? 1 : step >= (double)(hi - lo) ? hi - lo : (uint64_t)step;
        return lo + offset;
    }
    PANIC("count %llu exceeds the buckets' sum", (unsigned long long)s->count);
}

/* ---- exposition bounds ---- */

static struct spl__export_bounds bounds_seconds, bounds_bytes, bounds_none;
static pthread_once_t bounds_once = PTHREAD_ONCE_INIT;

static void bounds_add(struct spl__export_bounds *b, enum spl_metric_unit unit,
                       unsigned index)
{
    if (b->count > 0 && b->index[b->count - 1] >= index)
        return; /* nearest edges of close targets coincide */
    ASSERT_CMP(b->count, <, SPL__EXPORT_BOUNDS_MAX);
    double le = spl__histogram_export_value(unit, (double)spl_histogram_bucket_upper(index));
    spl__format_double(le, b->le[b->count], sizeof(b->le[b->count]));
    b->index[b->count++] = index;
}

/* The bucket whose upper bound is nearest to target. */
static unsigned nearest_edge(uint64_t target)
{
    unsigned i = spl_histogram_bucket_index(target);
    if (i == 0 || spl_histogram_bucket_upper(i) == target)
        return i;
    uint64_t above = spl_histogram_bucket_upper(i) - target;
    uint64_t below = target - spl_histogram_bucket_upper(i - 1);
    return below <= above ? i - 1 : i;
}

static void bounds_init(void)
{
    static const uint64_t steps_x10[] = {10, 25, 50};
    const enum spl_metric_unit seconds = SPL_METRIC_UNIT_SECONDS;
    for (uint64_t decade_ns = 1000; decade_ns <= SPL_NS_PER_SEC; decade_ns *= 10) {
        for (size_t s = 0; s < SPL_ARRAY_SIZE(steps_x10); s++)
            bounds_add(&bounds_seconds, seconds, nearest_edge(decade_ns * steps_x10[s] / 10));
    }
    bounds_add(&bounds_seconds, seconds, nearest_edge(10 * SPL_NS_PER_SEC));
    for (uint64_t bytes = 512; bytes <= (64u << 20); bytes *= 2)
        bounds_add(&bounds_bytes, SPL_METRIC_UNIT_BYTES, spl_histogram_bucket_index(bytes));
    for (uint64_t v = 1; v <= 65536; v *= 2)
        bounds_add(&bounds_none, SPL_METRIC_UNIT_NONE, spl_histogram_bucket_index(v));
}

const struct spl__export_bounds *spl__hist_export_bounds(enum spl_metric_unit unit)
{
    pthread_once(&bounds_once, bounds_init);
    return unit == SPL_METRIC_UNIT_SECONDS ? &bounds_seconds
           : unit == SPL_METRIC_UNIT_BYTES ? &bounds_bytes
                                           : &bounds_none;
}

double spl__histogram_export_value(enum spl_metric_unit unit, double value)
{
    return unit == SPL_METRIC_UNIT_SECONDS ? value / (double)SPL_NS_PER_SEC : value;
}
