/*
 * metrics.h - counters, gauges and latency histograms, exported in Prometheus text format.
 *
 * Owns: a registry (`struct spl_metrics`) of metric families, each with a name, help,
 * type and label names, and the children of each family (one per tuple of label values,
 * e.g. method="Echo"). Children are the handles the I/O path updates.
 * Leaves to others: serving HTTP (metrics/http.h), choosing what to measure, and
 * windowing (Prometheus computes rates; spl_histogram_snapshot_sub gives windows
 * in-process).
 *
 * Cost model. Registration (`spl_*_family`, `spl_*_get`) takes the registry lock and may
 * allocate: do it once at start-up and keep the handle. Updates (`spl_counter_add`,
 * `spl_gauge_set`, `spl_histogram_record`...) take no lock and never allocate: counters
 * and histograms are split into shards, as many as the machine has CPUs (a power of two,
 * at most SPL_METRICS_SHARDS_MAX), each on its own cache lines and updated with relaxed
 * atomics; a thread is given the next shard round-robin on its first update and keeps
 * it, so threads do not bounce cache lines until there are more busy threads than
 * shards. Gauges are one relaxed atomic. A scrape takes the registry lock and sums the
 * shards, so it sees each child at some point between the start and end of the scrape
 * (not one global instant).
 *
 * Threads: every function is thread-safe. Handles stay valid until spl_metrics_free().
 * Read callbacks run on the scraping thread with the registry lock held: they must not
 * call back into the registry.
 *
 * Naming rules, enforced by ASSERT at registration (they are programmer errors):
 *   - `spline_<component>_<what>_<unit>`: lowercase [a-z0-9_], at least 4 words, no
 *     empty words; gauges may instead end in `_info` (e.g. spline_build_info);
 *   - counters end in `_total`, nothing else does;
 *   - base units only: `_seconds`, `_bytes` (never _ms, _us, _kb, _mb ...); histograms
 *     with SPL_METRIC_UNIT_SECONDS end in `_seconds`, with _BYTES in `_bytes`;
 *   - `_count`, `_sum`, `_bucket`, `_created` suffixes are reserved;
 *   - the standard process_* names (spl_metrics_register_process) are the only others.
 *   - label names: [a-z_][a-z0-9_]*, not `__`-prefixed, unique, not `le` or `quantile`,
 *     at most SPL_METRICS_LABELS_MAX of them.
 * Registering a family twice with the same name returns the existing family when type,
 * unit and label names match (several servers in one process share families) and
 * ASSERTs when they differ. Getting a child twice with the same label values returns the
 * same child.
 *
 * Histograms. Values are unsigned integers in the family's recorded unit: nanoseconds
 * for SPL_METRIC_UNIT_SECONDS, bytes for SPL_METRIC_UNIT_BYTES, plain numbers for
 * SPL_METRIC_UNIT_NONE. Buckets are fixed and log-linear: 0..16 exact, then each power of
 * two split into 16 equal sub-buckets (so a bucket is at most 1/16 = 6.25% of its
 * values wide), covering all of uint64_t: record() is O(1) (a clz and two relaxed atomic
 * adds). Bucket i holds (upper(i-1), upper(i)] - upper bounds are inclusive, as in
 * Prometheus. Quantiles interpolate linearly inside the bucket that holds the rank, so
 * the reported p50/p90/p99/p999 lies in the same bucket as the true sample quantile.
 *
 * Exposition (Prometheus text format 0.0.4, families sorted by name, children in
 * creation order, families without children omitted). A histogram family `X` is written
 * as
 *   - a Prometheus histogram `X` (X_bucket{le=...}, X_sum, X_count) with about twenty
 *     `le` bounds: for _SECONDS the internal bucket edges nearest to 1, 2.5, 5 x 10^k
 *     from 1 us to 10 s (edges, so counts are exact; labels therefore read e.g.
 *     le="0.001015808" rather than "0.001"), for _BYTES powers of two 512 B..64 MiB,
 *     for _NONE powers of two 1..65536; and
 *   - a Prometheus summary `<X without its unit>_quantiles<unit>` (e.g.
 *     spline_rpc_server_request_duration_quantiles_seconds) with quantile="0.5", "0.9",
 *     "0.99", "0.999" over the whole life of the process, plus its _sum and _count.
 *     For recent windows, use histogram_quantile(rate(X_bucket[5m])) in PromQL.
 * Values are converted to the base unit on output (ns -> seconds).
 */
#ifndef SPL_METRICS_METRICS_H
#define SPL_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/limits.h"

struct spl_metrics;              /* a registry (opaque) */
struct spl_counter_family;       /* opaque */
struct spl_gauge_family;         /* opaque */
struct spl_histogram_family;     /* opaque */
struct spl_counter;              /* one child of a counter family (opaque) */
struct spl_gauge;                /* one child of a gauge family (opaque) */
struct spl_histogram;            /* one child of a histogram family (opaque) */

enum spl_metric_type {
    SPL_METRIC_COUNTER = 0,
    SPL_METRIC_GAUGE = 1,
    SPL_METRIC_HISTOGRAM = 2,
};

enum spl_metric_unit {
    SPL_METRIC_UNIT_NONE = 0,    /* plain numbers (entries, requests per batch ...) */
    SPL_METRIC_UNIT_SECONDS = 1, /* record nanoseconds; exported in seconds */
    SPL_METRIC_UNIT_BYTES = 2,   /* record bytes */
};

/* A value computed at scrape time (process CPU, queue depth read from another
 * structure...). Runs with the registry lock held; must not touch the registry. */
typedef double (*spl_metric_read_cb)(void *arg);

/* ---- registry ---- */

/* spl_metrics_new - an empty registry. Returns NULL only on out of memory. */
struct spl_metrics *spl_metrics_new(void);

/* spl_metrics_free - free the registry with all its families and children. No other
 * thread may use it or any of its handles any more. NULL is a no-op. */
void spl_metrics_free(struct spl_metrics *reg);

/* spl_metrics_global - the process-wide registry, created on first use, never freed.
 * Daemons use it; components take a registry pointer so that the simulator can give
 * each simulated node its own. ASSERTs on out of memory. */
struct spl_metrics *spl_metrics_global(void);

/* ---- families ----
 * Each takes the label names as trailing string arguments (none for an unlabelled
 * family), e.g.
 *   fam = spl_counter_family(reg, "spline_rpc_server_requests_total",
 *                            "Requests served, by method and result", "method", "code");
 * name and help are copied. ASSERTs on a broken naming rule (see top), on more than
 * SPL_METRICS_FAMILIES_MAX families and on out of memory (start-up only). */
struct spl_counter_family *spl_counter_familyv(struct spl_metrics *reg, const char *name,
                                               const char *help, size_t label_count,
                                               const char *const *label_names);
struct spl_gauge_family *spl_gauge_familyv(struct spl_metrics *reg, const char *name,
                                           const char *help, size_t label_count,
                                           const char *const *label_names);
struct spl_histogram_family *spl_histogram_familyv(struct spl_metrics *reg, const char *name,
                                                   const char *help, enum spl_metric_unit unit,
                                                   size_t label_count,
                                                   const char *const *label_names);

/* Internal: turn trailing string arguments into (count, array). */
#define SPL__STRS(...) ((const char *const[]){NULL, ##__VA_ARGS__})
#define SPL__NSTRS(...) (sizeof(SPL__STRS(__VA_ARGS__)) / sizeof(const char *) - 1)

#define spl_counter_family(reg, name, help, ...)                                          \
    spl_counter_familyv((reg), (name), (help), SPL__NSTRS(__VA_ARGS__),                   \
                        SPL__STRS(__VA_ARGS__) + 1)
#define spl_gauge_family(reg, name, help, ...)                                            \
    spl_gauge_familyv((reg), (name), (help), SPL__NSTRS(__VA_ARGS__),                     \
                      SPL__STRS(__VA_ARGS__) + 1)
#define spl_histogram_family(reg, name, help, unit, ...)                                  \
    spl_histogram_familyv((reg), (name), (help), (unit), SPL__NSTRS(__VA_ARGS__),         \
                          SPL__STRS(__VA_ARGS__) + 1)

/* ---- children ----
 * spl_*_get(fam, values...) - the child for these label values, created (zero) on first
 * use; one value per label name, in the family's order, e.g.
 *   struct spl_counter *echo_ok = spl_counter_get(fam, "Echo", "OK");
 * Values are copied, may be any UTF-8 (escaped on output) of at most
 * SPL_METRICS_LABEL_VALUE_MAX bytes. Takes the registry lock: call at start-up (or when
 * a new object appears), never per request. ASSERTs on a wrong number of values, on more
 * than SPL_METRICS_CHILDREN_MAX children in a family and on out of memory. */
struct spl_counter *spl_counter_getv(struct spl_counter_family *fam, size_t value_count,
                                     const char *const *values);
struct spl_gauge *spl_gauge_getv(struct spl_gauge_family *fam, size_t value_count,
                                 const char *const *values);
struct spl_histogram *spl_histogram_getv(struct spl_histogram_family *fam, size_t value_count,
                                         const char *const *values);

#define spl_counter_get(fam, ...)                                                         \
    spl_counter_getv((fam), SPL__NSTRS(__VA_ARGS__), SPL__STRS(__VA_ARGS__) + 1)
#define spl_gauge_get(fam, ...)                                                           \
    spl_gauge_getv((fam), SPL__NSTRS(__VA_ARGS__), SPL__STRS(__VA_ARGS__) + 1)
#define spl_histogram_get(fam, ...)                                                       \
    spl_histogram_getv((fam), SPL__NSTRS(__VA_ARGS__), SPL__STRS(__VA_ARGS__) + 1)

/* Unlabelled shortcuts: family + its only child in one call. */
struct spl_counter *spl_counter_new(struct spl_metrics *reg, const char *name,
                                    const char *help);
struct spl_gauge *spl_gauge_new(struct spl_metrics *reg, const char *name, const char *help);
struct spl_histogram *spl_histogram_new(struct spl_metrics *reg, const char *name,
                                        const char *help, enum spl_metric_unit unit);

/* ---- counters (hot path: lock-free, no allocation) ---- */

/* spl_counter_add - add n (monotonic; a counter never goes down). */
void spl_counter_add(struct spl_counter *c, uint64_t n);
static inline void spl_counter_inc(struct spl_counter *c) { spl_counter_add(c, 1); }

/* spl_counter_value - the current total (sum of shards; exact once writers stopped). */
uint64_t spl_counter_value(const struct spl_counter *c);

/* spl_counter_attach_cb - from now on the exported value is read_cb(arg) (which must be
 * monotonic) instead of the added total; read_cb NULL detaches. Once this returns, no
 * scrape calls the previous callback: detach before freeing arg. */
void spl_counter_attach_cb(struct spl_counter *c, spl_metric_read_cb read_cb, void *arg);

/* ---- gauges (one relaxed atomic) ---- */

void spl_gauge_set(struct spl_gauge *g, int64_t value);
void spl_gauge_add(struct spl_gauge *g, int64_t delta);
static inline void spl_gauge_inc(struct spl_gauge *g) { spl_gauge_add(g, 1); }
static inline void spl_gauge_dec(struct spl_gauge *g) { spl_gauge_add(g, -1); }
int64_t spl_gauge_value(const struct spl_gauge *g);

/* spl_gauge_attach_cb - as spl_counter_attach_cb: the exported value becomes
 * read_cb(arg); NULL detaches (the stored value is exported again). */
void spl_gauge_attach_cb(struct spl_gauge *g, spl_metric_read_cb read_cb, void *arg);

/* ---- histograms ---- */

/* 0..16 exact, then 16 sub-buckets per power of two up to 2^64 (see top). */
#define SPL_HISTOGRAM_SUB_BITS 4
#define SPL_HISTOGRAM_BUCKETS (1 + (65 - SPL_HISTOGRAM_SUB_BITS) * (1 << SPL_HISTOGRAM_SUB_BITS))

/* spl_histogram_record - count one value (in the family's recorded unit). O(1). */
void spl_histogram_record(struct spl_histogram *h, uint64_t value);

/* spl_histogram_record_since - record spl_mono_ns() - start_ns (real clock; simulated
 * code computes the duration itself and calls spl_histogram_record). */
void spl_histogram_record_since(struct spl_histogram *h, uint64_t start_ns);

/* A point-in-time copy of one histogram, owned by the caller (about 8 KiB). */
struct spl_histogram_snapshot {
    enum spl_metric_unit unit;
    uint64_t count;                          /* == sum of buckets[] */
    uint64_t sum;                            /* of recorded values (wraps after 2^64) */
    uint64_t buckets[SPL_HISTOGRAM_BUCKETS];
};

/* spl_histogram_snapshot - copy h's current state into *out. Takes no lock. */
void spl_histogram_snapshot(const struct spl_histogram *h,
                            struct spl_histogram_snapshot *out);

/* spl_histogram_snapshot_sub - *a -= *b, for the values recorded between snapshot b and a
 * later snapshot a of the same histogram. */
void spl_histogram_snapshot_sub(struct spl_histogram_snapshot *a,
                                const struct spl_histogram_snapshot *b);

/* spl_histogram_quantile - the q-quantile (0 < q <= 1) of the snapshot in recorded units
 * (ns for seconds histograms), interpolated within its bucket; 0 when count == 0. */
uint64_t spl_histogram_quantile(const struct spl_histogram_snapshot *s, double q);

/* spl_histogram_bucket_index - the bucket that holds value.
 * spl_histogram_bucket_upper - bucket i's inclusive upper bound; UINT64_MAX for the last
 * bucket (its true bound, 2^64, does not fit). Pure; exposed for tests and tools. */
unsigned spl_histogram_bucket_index(uint64_t value);
uint64_t spl_histogram_bucket_upper(unsigned index);

/* ---- exposition ---- */

/* spl_metrics_write - write every family in Prometheus text format 0.0.4 to out.
 * Returns 0, -EIO when writing to out failed, or -ENOMEM (scratch space). */
int spl_metrics_write(struct spl_metrics *reg, FILE *out);

/* spl_metrics_format - the same text in a malloc'd NUL-terminated buffer (*text_out,
 * freed by the caller) of *len_out bytes. Returns 0 or -ENOMEM (nothing to free). */
int spl_metrics_format(struct spl_metrics *reg, char **text_out, size_t *len_out);

/* The Content-Type for that text. */
#define SPL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- standard families ---- */

/* spl_metrics_register_build_info - the gauge
 *   spline_build_info{component="<component>",version="<SPL_VERSION>",commit="<git>"} 1
 * (version from CMake, commit from `git describe` at configure time or "unknown"). */
void spl_metrics_register_build_info(struct spl_metrics *reg, const char *component);

/* spl_metrics_version / spl_metrics_commit - those two strings (static). */
const char *spl_metrics_version(void);
const char *spl_metrics_commit(void);

/* spl_metrics_register_process - process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, read from /proc at scrape time. Once per registry. */
void spl_metrics_register_process(struct spl_metrics *reg);

#endif
