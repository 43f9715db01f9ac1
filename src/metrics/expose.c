/*
 * expose.c - the Prometheus text exposition format, version 0.0.4.
 *
 * Per family: `# HELP name text`, `# TYPE name type`, then one line per sample,
 * `name{label="value",...} number`. Help escapes \ and newline; label values also
 * escape ". Numbers: integers in full, other floats as the shortest text that reads back
 * exactly, +Inf, -Inf, NaN.
 * Families are written sorted by exported name (a histogram's companion summary sorts
 * under its own name), children in creation order.
 */
#include "metrics/metrics_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

/* Quantiles of the companion summary, with their label text. */
static const struct {
    double q;
    const char *label;
} summary_quantiles[] = {{0.5, "0.5"}, {0.9, "0.9"}, {0.99, "0.99"}, {0.999, "0.999"}};

const char *spl__format_double(double v, char *buf, size_t size)
{
    ASSERT(size >= 32);
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v); /* integers (below 2^53) in full, not 2e+04 */
    } else {
        /* A double has 15.95 significant digits: if a shorter text reads back exactly,
         * %.15g prints it (with its zeros stripped), so start there. */
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(buf, size, "%.*g", precision, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    return buf;
}

static void write_escaped(FILE *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

void spl__write_label_value(FILE *out, const char *s) { write_escaped(out, s, true); }
void spl__write_help(FILE *out, const char *s) { write_escaped(out, s, false); }

/* `name{a="x",b="y",extra="v"}` - the braces only when there is a label. */
static void write_series(FILE *out, const char *name, const char *suffix,
                         const struct spl__child *c, const char *extra_name,
                         const char *extra_value)
{
    const struct spl__family *f = c->family;
    fputs(name, out);
    fputs(suffix, out);
    if (f->label_count == 0 && !extra_name)
        return;
    fputc('{', out);
    for (size_t i = 0; i < f->label_count; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        spl__write_label_value(out, c->values[i]);
        fputc('"', out);
    }
    if (extra_name) {
        fprintf(out, "%s%s=\"", f->label_count ? "," : "", extra_name);
        spl__write_label_value(out, extra_value);
        fputc('"', out);
    }
    fputc('}', out);
}

static void write_header(FILE *out, const char *name, const char *help, const char *help_tail,
                         const char *type)
{
    fprintf(out, "# HELP %s ", name);
    spl__write_help(out, help);
    fprintf(out, "%s\n# TYPE %s %s\n", help_tail, name, type);
}

static void write_scalar_family(FILE *out, const struct spl__family *f)
{
    char num[32];
    bool counter = f->type == SPL_METRIC_COUNTER;
    write_header(out, f->name, f->help, "", counter ? "counter" : "gauge");
    for (size_t i = 0; i < f->child_count; i++) {
        const struct spl__child *c = f->children[i];
        write_series(out, f->name, "", c, NULL, NULL);
        if (c->read_cb)
            fprintf(out, " %s\n", spl__format_double(c->read_cb(c->read_arg), num, sizeof(num)));
        else if (counter)
            fprintf(out, " %" PRIu64 "\n", spl_counter_value(f->children[i]));
        else
            fprintf(out, " %" PRId64 "\n", spl_gauge_value(f->children[i]));
    }
}

static void write_histogram_family(FILE *out, const struct spl__family *f,
                                   struct spl_histogram_snapshot *snap)
{
    char num[32];
    const struct spl__export_bounds *bounds = spl__hist_export_bounds(f->unit);
    write_header(out, f->name, f->help, "", "histogram");
    for (size_t i = 0; i < f->child_count; i++) {
        const struct spl__child *c = f->children[i];
        spl_histogram_snapshot(f->children[i], snap);
        uint64_t cumulative = 0;
        unsigned next = 0;
        for (size_t b = 0; b < bounds->count; b++) {
            for (; next <= bounds->index[b]; next++)
                cumulative += snap->buckets[next];
            write_series(out, f->name, "_bucket", c, "le", bounds->le[b]);
            fprintf(out, " %" PRIu64 "\n", cumulative);
        }
        write_series(out, f->name, "_bucket", c, "le", "+Inf");
        fprintf(out, " %" PRIu64 "\n", snap->count);
        write_series(out, f->name, "_sum", c, NULL, NULL);
        fprintf(out, " %s\n",
                spl__format_double(spl__histogram_export_value(f->unit, (double)snap->sum), num,
                                   sizeof(num)));
        write_series(out, f->name, "_count", c, NULL, NULL);
        fprintf(out, " %" PRIu64 "\n", snap->count);
    }
}

static void write_summary_family(FILE *out, const struct spl__family *f,
                                 struct spl_histogram_snapshot *snap)
{
    char num[32];
    const char *name = f->quantiles_name;
    write_header(out, name, f->help, " (quantiles over the life of the process)", "summary");
    for (size_t i = 0; i < f->child_count; i++) {
        const struct spl__child *c = f->children[i];
        spl_histogram_snapshot(f->children[i], snap);
        for (size_t q = 0; q < SPL_ARRAY_SIZE(summary_quantiles); q++) {
            double v = snap->count ? (double)spl_histogram_quantile(snap, summary_quantiles[q].q)
                                   : NAN;
            write_series(out, name, "", c, "quantile", summary_quantiles[q].label);
            fprintf(out, " %s\n",
                    spl__format_double(spl__histogram_export_value(f->unit, v), num,
                                       sizeof(num)));
        }
        write_series(out, name, "_sum", c, NULL, NULL);
        fprintf(out, " %s\n",
                spl__format_double(spl__histogram_export_value(f->unit, (double)snap->sum), num,
                                   sizeof(num)));
        write_series(out, name, "_count", c, NULL, NULL);
        fprintf(out, " %" PRIu64 "\n", snap->count);
    }
}

/* One exported family: a registered family, or a histogram's companion summary. */
struct entry {
    const char *name;
    const struct spl__family *family;
    bool summary;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

int spl_metrics_write(struct spl_metrics *reg, FILE *out)
{
    ASSERT(reg && out);
    struct spl_histogram_snapshot *snap = malloc(sizeof(*snap));
    struct entry *entries = malloc(2 * SPL_METRICS_FAMILIES_MAX * sizeof(*entries));
    int rc = -ENOMEM;
    if (!snap || !entries)
        goto out_free;

    pthread_mutex_lock(&reg->lock);
    size_t n = 0;
    for (size_t i = 0; i < reg->family_count; i++) {
        const struct spl__family *f = reg->families[i];
        if (f->child_count == 0)
            continue;
        entries[n++] = (struct entry){f->name, f, false};
        if (f->quantiles_name)
            entries[n++] = (struct entry){f->quantiles_name, f, true};
    }
    qsort(entries, n, sizeof(*entries), entry_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct spl__family *f = entries[i].family;
        if (entries[i].summary)
            write_summary_family(out, f, snap);
        else if (f->type == SPL_METRIC_HISTOGRAM)
            write_histogram_family(out, f, snap);
        else
            write_scalar_family(out, f);
    }
    pthread_mutex_unlock(&reg->lock);
    rc = fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
out_free:
    free(entries);
    free(snap);
    return rc;
}

int spl_metrics_format(struct spl_metrics *reg, char **text_out, size_t *len_out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return -ENOMEM;
    int rc = spl_metrics_write(reg, out);
    if (fclose(out) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc != 0) {
        free(text);
        return rc == -EIO ? -ENOMEM : rc;
    }
    *text_out = text;
    *len_out = len;
    return 0;
}
