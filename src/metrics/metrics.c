/*
 * metrics.c - the registry: families, children, naming rules, counters and gauges.
 *
 * Histograms' bucket arithmetic lives in histogram.c, the text format in expose.c, the
 * standard families in build_info.c and process.c.
 */
#include "metrics/metrics_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "base/assert.h"

/* ---- naming rules ---- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* The standard process_* names (client libraries everywhere export these). */
static const struct {
    const char *name;
    enum spl_metric_type type;
} standard_names[] = {
    {"process_cpu_seconds_total", SPL_METRIC_COUNTER},
    {"process_resident_memory_bytes", SPL_METRIC_GAUGE},
    {"process_virtual_memory_bytes", SPL_METRIC_GAUGE},
    {"process_open_fds", SPL_METRIC_GAUGE},
    {"process_max_fds", SPL_METRIC_GAUGE},
    {"process_start_time_seconds", SPL_METRIC_GAUGE},
};

/* Words that must not appear: abbreviated units, non-base units, type names. */
static const char *const banned_words[] = {
    "s",       "ms",      "us",    "ns",   "sec",   "secs",    "msec",  "usec",
    "nsec",    "b",       "kb",    "mb",   "gb",    "tb",      "pb",    "kib",
    "mib",     "gib",     "m",     "h",    "d",     "minutes", "hours", "days",
    "weeks",   "bits",    "counter", "gauge", "histogram", "summary", "untyped",
};

static const char *check_words(const char *name, size_t *word_count_out)
{
    const char *p = name;
    size_t words = 0;
    while (*p) {
        const char *end = strchr(p, '_');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return "empty word (leading, trailing or double '_')";
        for (size_t i = 0; i < SPL_ARRAY_SIZE(banned_words); i++) {
            if (strlen(banned_words[i]) == len && memcmp(p, banned_words[i], len) == 0)
                return "abbreviated or non-base unit, or a type name, used as a word";
        }
        /* milliseconds, kilobytes ...: a prefixed base unit */
        if ((len > 7 && memcmp(p + len - 7, "seconds", 7) == 0) ||
            (len > 5 && memcmp(p + len - 5, "bytes", 5) == 0))
            return "use the base unit (seconds, bytes), not a prefixed one";
        words++;
        if (!end)
            break;
        p = end + 1;
        if (*p == '\0')
            return "empty word (leading, trailing or double '_')";
    }
    *word_count_out = words;
    return NULL;
}

static const char *check_name(const char *name, enum spl_metric_type type,
                              enum spl_metric_unit unit)
{
    size_t len = strlen(name), words = 0;
    if (len == 0 || len >= SPL_METRICS_NAME_MAX)
        return "empty or longer than SPL_METRICS_NAME_MAX";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return "only lowercase letters, digits and '_'";
    }
    for (size_t i = 0; i < SPL_ARRAY_SIZE(standard_names); i++) {
        if (strcmp(name, standard_names[i].name) == 0)
            return type == standard_names[i].type ? NULL : "standard name with the wrong type";
    }
    if (strncmp(name, "spline_", 7) != 0)
        return "must start with spline_";
    const char *why = check_words(name, &words);
    if (why)
        return why;
    bool info = type == SPL_METRIC_GAUGE && has_suffix(name, "_info");
    if (words < (info ? 3u : 4u))
        return "must be spline_<component>_<what>_<unit> (or spline_<what>_info)";
    if ((type == SPL_METRIC_COUNTER) != has_suffix(name, "_total"))
        return "counters, and only counters, end in _total";
    if (has_suffix(name, "_count") || has_suffix(name, "_sum") ||
        has_suffix(name, "_bucket") || has_suffix(name, "_created"))
        return "suffixes _count, _sum, _bucket and _created are reserved";
    if (type == SPL_METRIC_HISTOGRAM) {
        if (unit == SPL_METRIC_UNIT_SECONDS && !has_suffix(name, "_seconds"))
            return "a SECONDS histogram ends in _seconds";
        if (unit == SPL_METRIC_UNIT_BYTES && !has_suffix(name, "_bytes"))
            return "a BYTES histogram ends in _bytes";
        if (unit == SPL_METRIC_UNIT_NONE &&
            (has_suffix(name, "_seconds") || has_suffix(name, "_bytes")))
            return "a histogram named in seconds or bytes needs that unit";
    }
    return NULL;
}

bool spl__metric_name_valid(const char *name, enum spl_metric_type type,
                            enum spl_metric_unit unit, const char **reason_out)
{
    const char *why = check_name(name, type, unit);
    if (reason_out)
        *reason_out = why;
    return why == NULL;
}

bool spl__label_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= SPL_METRICS_NAME_MAX)
        return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    if (strncmp(name, "__", 2) == 0)
        return false;
    return strcmp(name, "le") != 0 && strcmp(name, "quantile") != 0;
}

/* ---- registry ---- */

static unsigned shard_count_for_machine(void)
{
    int cpus = get_nprocs_conf();
    unsigned n = 1;
    while (n < (unsigned)(cpus > 0 ? cpus : 1) && n < SPL_METRICS_SHARDS_MAX)
        n <<= 1;
    return n;
}

__thread unsigned spl__thread_shard;
static _Atomic unsigned thread_shard_next;

unsigned spl__thread_shard_assign(void)
{
    unsigned shard = atomic_fetch_add_explicit(&thread_shard_next, 1, memory_order_relaxed);
    spl__thread_shard = shard % SPL_METRICS_SHARDS_MAX + 1;
    return spl__thread_shard;
}

struct spl_metrics *spl_metrics_new(void)
{
    struct spl_metrics *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    reg->shard_count = shard_count_for_machine();
    ASSERT(reg->shard_count >= 1 && (reg->shard_count & (reg->shard_count - 1)) == 0);
    return reg;
}

static void child_free(struct spl__family *f, void *child)
{
    struct spl__child *c = child;
    for (size_t i = 0; i < f->label_count; i++)
        free(c->values[i]);
    if (f->type == SPL_METRIC_COUNTER)
        free(((struct spl_counter *)child)->shards);
    else if (f->type == SPL_METRIC_HISTOGRAM)
        free(((struct spl_histogram *)child)->shards);
    free(child);
}

static void family_free(struct spl__family *f)
{
    for (size_t i = 0; i < f->child_count; i++)
        child_free(f, f->children[i]);
    for (size_t i = 0; i < f->label_count; i++)
        free(f->label_names[i]);
    free(f->children);
    free(f->name);
    free(f->quantiles_name);
    free(f->help);
    free(f);
}

void spl_metrics_free(struct spl_metrics *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->family_count; i++)
        family_free(reg->families[i]);
    free(reg->families);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static struct spl_metrics *global_registry;

static void global_init(void)
{
    global_registry = spl_metrics_new();
    ASSERTF(global_registry, "out of memory creating the metrics registry");
}

struct spl_metrics *spl_metrics_global(void)
{
    pthread_once(&global_once, global_init);
    return global_registry;
}

/* ---- families ---- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    ASSERTF(d, "out of memory registering metrics");
    return d;
}

/* The summary that goes with histogram `name`: its unit suffix moves after _quantiles. */
static char *quantiles_name_for(const char *name, enum spl_metric_unit unit)
{
    const char *suffix = unit == SPL_METRIC_UNIT_SECONDS ? "_seconds"
                         : unit == SPL_METRIC_UNIT_BYTES ? "_bytes"
                                                         : "";
    size_t stem = strlen(name) - strlen(suffix);
    size_t size = stem + strlen("_quantiles") + strlen(suffix) + 1;
    char *q = malloc(size);
    ASSERTF(q, "out of memory registering metrics");
    snprintf(q, size, "%.*s_quantiles%s", (int)stem, name, suffix);
    return q;
}

static bool family_matches(const struct spl__family *f, enum spl_metric_type type,
                           enum spl_metric_unit unit, size_t label_count,
                           const char *const *label_names)
{
    if (f->type != type || f->unit != unit || f->label_count != label_count)
        return false;
    for (size_t i = 0; i < label_count; i++) {
        if (strcmp(f->label_names[i], label_names[i]) != 0)
            return false;
    }
    return true;
}

/* The family that owns this exported name (its own or its summary's), or NULL. */
static struct spl__family *family_find(struct spl_metrics *reg, const char *name)
{
    for (size_t i = 0; i < reg->family_count; i++) {
        struct spl__family *f = reg->families[i];
        if (strcmp(f->name, name) == 0 ||
            (f->quantiles_name && strcmp(f->quantiles_name, name) == 0))
            return f;
    }
    return NULL;
}

static void check_labels(size_t label_count, const char *const *label_names)
{
    ASSERT_CMP(label_count, <=, SPL_METRICS_LABELS_MAX);
    for (size_t i = 0; i < label_count; i++) {
        ASSERTF(label_names[i] && spl__label_name_valid(label_names[i]),
                "bad label name \"%s\"", label_names[i] ? label_names[i] : "(null)");
        for (size_t j = 0; j < i; j++)
            ASSERTF(strcmp(label_names[i], label_names[j]) != 0, "label \"%s\" twice",
                    label_names[i]);
    }
}

static struct spl__family *family_register(struct spl_metrics *reg, enum spl_metric_type type,
                                           enum spl_metric_unit unit, const char *name,
                                           const char *help, size_t label_count,
                                           const char *const *label_names)
{
    const char *why = NULL;
    ASSERT(reg && name && help);
    ASSERTF(spl__metric_name_valid(name, type, unit, &why), "metric \"%s\": %s", name, why);
    ASSERTF(strlen(help) > 0 && strlen(help) < SPL_METRICS_HELP_MAX, "metric \"%s\": help",
            name);
    check_labels(label_count, label_names);

    char *qname = type == SPL_METRIC_HISTOGRAM ? quantiles_name_for(name, unit) : NULL;
    pthread_mutex_lock(&reg->lock);
    struct spl__family *f = family_find(reg, name);
    if (!f && qname)
        f = family_find(reg, qname);
    if (f) {
        ASSERTF(strcmp(f->name, name) == 0 &&
                    family_matches(f, type, unit, label_count, label_names),
                "metric \"%s\" registered twice with a different type, unit or labels", name);
        pthread_mutex_unlock(&reg->lock);
        free(qname);
        return f;
    }
    ASSERT_CMP(reg->family_count, <, SPL_METRICS_FAMILIES_MAX);
    if (reg->family_count == reg->family_cap) {
        size_t cap = reg->family_cap ? reg->family_cap * 2 : 16;
        void *grown = realloc(reg->families, cap * sizeof(*reg->families));
        ASSERTF(grown, "out of memory registering metrics");
        reg->families = grown;
        reg->family_cap = cap;
    }
    f = calloc(1, sizeof(*f));
    ASSERTF(f, "out of memory registering metrics");
    f->reg = reg;
    f->type = type;
    f->unit = unit;
    f->name = xstrdup(name);
    f->quantiles_name = qname;
    f->help = xstrdup(help);
    f->label_count = label_count;
    for (size_t i = 0; i < label_count; i++)
        f->label_names[i] = xstrdup(label_names[i]);
    reg->families[reg->family_count++] = f;
    pthread_mutex_unlock(&reg->lock);
    return f;
}

struct spl_counter_family *spl_counter_familyv(struct spl_metrics *reg, const char *name,
                                               const char *help, size_t label_count,
                                               const char *const *label_names)
{
    return (struct spl_counter_family *)family_register(
        reg, SPL_METRIC_COUNTER, SPL_METRIC_UNIT_NONE, name, help, label_count, label_names);
}

struct spl_gauge_family *spl_gauge_familyv(struct spl_metrics *reg, const char *name,
                                           const char *help, size_t label_count,
                                           const char *const *label_names)
{
    return (struct spl_gauge_family *)family_register(
        reg, SPL_METRIC_GAUGE, SPL_METRIC_UNIT_NONE, name, help, label_count, label_names);
}

struct spl_histogram_family *spl_histogram_familyv(struct spl_metrics *reg, const char *name,
                                                   const char *help, enum spl_metric_unit unit,
                                                   size_t label_count,
                                                   const char *const *label_names)
{
    ASSERT(unit == SPL_METRIC_UNIT_NONE || unit == SPL_METRIC_UNIT_SECONDS ||
           unit == SPL_METRIC_UNIT_BYTES);
    return (struct spl_histogram_family *)family_register(
        reg, SPL_METRIC_HISTOGRAM, unit, name, help, label_count, label_names);
}

/* ---- children ---- */

static void *aligned_zalloc(size_t size)
{
    size_t rounded = (size + SPL__CACHE_LINE - 1) / SPL__CACHE_LINE * SPL__CACHE_LINE;
    void *p = aligned_alloc(SPL__CACHE_LINE, rounded);
    ASSERTF(p, "out of memory creating a metric");
    memset(p, 0, rounded);
    return p;
}

static void *child_new(struct spl__family *f, unsigned shard_count)
{
    void *child;
    switch (f->type) {
    case SPL_METRIC_COUNTER: {
        struct spl_counter *c = calloc(1, sizeof(*c));
        ASSERTF(c, "out of memory creating a metric");
        c->shard_mask = shard_count - 1;
        c->shards = aligned_zalloc(shard_count * sizeof(*c->shards));
        child = c;
        break;
    }
    case SPL_METRIC_GAUGE:
        child = calloc(1, sizeof(struct spl_gauge));
        ASSERTF(child, "out of memory creating a metric");
        break;
    case SPL_METRIC_HISTOGRAM: {
        struct spl_histogram *h = calloc(1, sizeof(*h));
        ASSERTF(h, "out of memory creating a metric");
        h->shard_mask = shard_count - 1;
        h->shards = aligned_zalloc(shard_count * sizeof(*h->shards));
        child = h;
        break;
    }
    default:
        ASSERTF(false, "metric type %d", (int)f->type);
    }
    ((struct spl__child *)child)->family = f;
    return child;
}

static bool child_has_values(const struct spl__family *f, const struct spl__child *c,
                             const char *const *values)
{
    for (size_t i = 0; i < f->label_count; i++) {
        if (strcmp(c->values[i], values[i]) != 0)
            return false;
    }
    return true;
}

static void *child_get(struct spl__family *f, size_t value_count, const char *const *values)
{
    struct spl_metrics *reg = f->reg;
    ASSERTF(value_count == f->label_count, "metric \"%s\": %zu label values for %zu labels",
            f->name, value_count, f->label_count);
    for (size_t i = 0; i < value_count; i++) {
        ASSERT(values[i]);
        ASSERT_CMP(strlen(values[i]), <=, SPL_METRICS_LABEL_VALUE_MAX);
    }
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < f->child_count; i++) {
        if (child_has_values(f, f->children[i], values)) {
            void *found = f->children[i];
            pthread_mutex_unlock(&reg->lock);
            return found;
        }
    }
    ASSERTF(f->child_count < SPL_METRICS_CHILDREN_MAX, "metric \"%s\": too many children",
            f->name);
    if (f->child_count == f->child_cap) {
        size_t cap = f->child_cap ? f->child_cap * 2 : 4;
        void *grown = realloc(f->children, cap * sizeof(*f->children));
        ASSERTF(grown, "out of memory creating a metric");
        f->children = grown;
        f->child_cap = cap;
    }
    struct spl__child *c = child_new(f, reg->shard_count);
    for (size_t i = 0; i < value_count; i++)
        c->values[i] = xstrdup(values[i]);
    f->children[f->child_count++] = c;
    pthread_mutex_unlock(&reg->lock);
    return c;
}

struct spl_counter *spl_counter_getv(struct spl_counter_family *fam, size_t value_count,
                                     const char *const *values)
{
    ASSERT(fam && fam->base.type == SPL_METRIC_COUNTER);
    return child_get(&fam->base, value_count, values);
}

struct spl_gauge *spl_gauge_getv(struct spl_gauge_family *fam, size_t value_count,
                                 const char *const *values)
{
    ASSERT(fam && fam->base.type == SPL_METRIC_GAUGE);
    return child_get(&fam->base, value_count, values);
}

struct spl_histogram *spl_histogram_getv(struct spl_histogram_family *fam, size_t value_count,
                                         const char *const *values)
{
    ASSERT(fam && fam->base.type == SPL_METRIC_HISTOGRAM);
    return child_get(&fam->base, value_count, values);
}

struct spl_counter *spl_counter_new(struct spl_metrics *reg, const char *name,
                                    const char *help)
{
    return spl_counter_get(spl_counter_family(reg, name, help));
}

struct spl_gauge *spl_gauge_new(struct spl_metrics *reg, const char *name, const char *help)
{
    return spl_gauge_get(spl_gauge_family(reg, name, help));
}

struct spl_histogram *spl_histogram_new(struct spl_metrics *reg, const char *name,
                                        const char *help, enum spl_metric_unit unit)
{
    return spl_histogram_get(spl_histogram_family(reg, name, help, unit));
}

/* ---- counters and gauges ---- */

void spl_counter_add(struct spl_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->shards[spl__shard_index(c->shard_mask)].value, n,
                              memory_order_relaxed);
}

uint64_t spl_counter_value(const struct spl_counter *c)
{
    uint64_t total = 0;
    for (unsigned i = 0; i <= c->shard_mask; i++)
        total += atomic_load_explicit(&c->shards[i].value, memory_order_relaxed);
    return total;
}

static void attach_cb(struct spl__child *c, spl_metric_read_cb read_cb, void *arg)
{
    struct spl_metrics *reg = c->family->reg;
    pthread_mutex_lock(&reg->lock);
    c->read_cb = read_cb;
    c->read_arg = read_cb ? arg : NULL;
    pthread_mutex_unlock(&reg->lock);
}

void spl_counter_attach_cb(struct spl_counter *c, spl_metric_read_cb read_cb, void *arg)
{
    ASSERT(c);
    attach_cb(&c->base, read_cb, arg);
}

void spl_gauge_set(struct spl_gauge *g, int64_t value)
{
    atomic_store_explicit(&g->value, value, memory_order_relaxed);
}

void spl_gauge_add(struct spl_gauge *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

int64_t spl_gauge_value(const struct spl_gauge *g)
{
    return atomic_load_explicit(&g->value, memory_order_relaxed);
}

void spl_gauge_attach_cb(struct spl_gauge *g, spl_metric_read_cb read_cb, void *arg)
{
    ASSERT(g);
    attach_cb(&g->base, read_cb, arg);
}
