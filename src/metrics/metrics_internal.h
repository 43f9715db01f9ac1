/*
 * metrics_internal.h - the registry's data structures, shared by the files of
 * src/metrics (registry, histogram, exposition, standard families). Not for other
 * components: they use metrics.h.
 *
 * Locking: reg->lock guards the family list, every family's child list and every
 * child's read callback. Shard contents are atomics touched without the lock.
 */
#ifndef SPL_METRICS_INTERNAL_H
#define SPL_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "metrics/metrics.h"

#define SPL__CACHE_LINE 64

/* Values 0..16 are exact, then 16 sub-buckets per power of two. */
#define SPL__HIST_SUB_COUNT (1u << SPL_HISTOGRAM_SUB_BITS)

struct spl__family {
    struct spl_metrics *reg;
    enum spl_metric_type type;
    enum spl_metric_unit unit;
    char *name;
    char *quantiles_name;   /* histograms: the companion summary's name; else NULL */
    char *help;
    size_t label_count;
    char *label_names[SPL_METRICS_LABELS_MAX];
    void **children;        /* struct spl_counter/gauge/histogram *, creation order */
    size_t child_count;
    size_t child_cap;
};

/* What all three child types start with. */
struct spl__child {
    struct spl__family *family;
    char *values[SPL_METRICS_LABELS_MAX];
    spl_metric_read_cb read_cb; /* counters and gauges; under reg->lock */
    void *read_arg;
};

struct spl__counter_shard {
    _Alignas(SPL__CACHE_LINE) _Atomic uint64_t value;
};

struct spl__hist_shard {
    _Alignas(SPL__CACHE_LINE) _Atomic uint64_t sum;
    _Atomic uint64_t buckets[SPL_HISTOGRAM_BUCKETS];
};

struct spl_counter {
    struct spl__child base;
    unsigned shard_mask;
    struct spl__counter_shard *shards; /* shard_mask + 1, cache-line aligned */
};

struct spl_gauge {
    struct spl__child base;
    _Atomic int64_t value;
};

struct spl_histogram {
    struct spl__child base;
    unsigned shard_mask;
    struct spl__hist_shard *shards; /* shard_mask + 1, cache-line aligned */
};

struct spl_counter_family {
    struct spl__family base;
};
struct spl_gauge_family {
    struct spl__family base;
};
struct spl_histogram_family {
    struct spl__family base;
};

struct spl_metrics {
    pthread_mutex_t lock;
    unsigned shard_count;          /* power of two <= SPL_METRICS_SHARDS_MAX */
    struct spl__family **families; /* registration order */
    size_t family_count;
    size_t family_cap;
    bool process_registered;
};

/* spl__metric_name_valid - whether name obeys the naming rules (metrics.h) for a family
 * of this type and unit; when not, *reason_out says which rule. Pure. */
bool spl__metric_name_valid(const char *name, enum spl_metric_type type,
                            enum spl_metric_unit unit, const char **reason_out);

/* spl__label_name_valid - whether name may be a label name. Pure. */
bool spl__label_name_valid(const char *name);

/* The calling thread's shard number plus one (0: not assigned yet). */
extern __thread unsigned spl__thread_shard;
unsigned spl__thread_shard_assign(void);

/* spl__shard_index - the calling thread's shard under mask. Threads are numbered
 * round-robin on their first update, so up to shard_count threads never share a shard;
 * this costs a TLS read, where sched_getcpu() costs 2-5 ns without rseq. */
static inline unsigned spl__shard_index(unsigned mask)
{
    unsigned shard = spl__thread_shard;
    if (__builtin_expect(shard == 0, 0))
        shard = spl__thread_shard_assign();
    return (shard - 1) & mask;
}

/* spl__format_double - v in the exposition's number syntax (integers in full, else the
 * shortest round-trip text; +Inf, -Inf, NaN) into buf (>= 32 bytes). Returns buf. */
const char *spl__format_double(double v, char *buf, size_t size);

/* spl__write_label_value / spl__write_help - write s with the format's escapes
 * (\\, \n, and \" in label values) to out. */
void spl__write_label_value(FILE *out, const char *s);
void spl__write_help(FILE *out, const char *s);

/* The exposition bounds of a histogram unit: bucket indexes, ascending, with their `le`
 * label text (formatted once, not per scrape). */
#define SPL__EXPORT_BOUNDS_MAX 32
struct spl__export_bounds {
    size_t count;
    unsigned index[SPL__EXPORT_BOUNDS_MAX];
    char le[SPL__EXPORT_BOUNDS_MAX][32];
};
const struct spl__export_bounds *spl__hist_export_bounds(enum spl_metric_unit unit);

/* spl__histogram_export_value - recorded units -> exported base units. */
double spl__histogram_export_value(enum spl_metric_unit unit, double value);

#endif
