/*
 * config.c - the declarative config table: parsing, flags, get/set, help and example
 * file; see config.h.
 *
 * Every loading path works on a private copy of the daemon's struct (defaults, file and
 * flags all land in the copy) and copies it back only when everything succeeded, so an
 * error leaves the caller's struct untouched. Values are read by one function per type
 * (spl_cfg_parse_*), each taking a NUL-terminated text and returning 0 or -1 with a reason;
 * file lines are first split into key and decoded value by spl_cfg_line_split.
 */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/config_internal.h"
#include "base/errors.h"
#include "base/limits.h"

SPL_STATIC_ASSERT(SPL_CONFIG_FILE_MAX >= SPL_CONFIG_LINE_MAX, "a file holds a full line");
SPL_STATIC_ASSERT(SPL_CONFIG_KEYS_MAX <= 65536, "key indexes stay small");

#define SPL_CFG_WHY_MAX 200 /* a reason; fits spl_config_error.reason with room to spare */

/* Why a value was rejected: the text could not be read (or was out of bounds), or the
 * key's validator refused it. */
enum { SPL_CFG_BAD_VALUE = -1, SPL_CFG_BAD_VALIDATE = -2 };

/* Where each key got its value while loading (load_args and file parsing). */
struct spl_cfg_origin {
    uint32_t file_line[SPL_CONFIG_KEYS_MAX]; /* 0: not in the file */
    bool flag[SPL_CONFIG_KEYS_MAX];
};

static const char *const spl_cfg_type_names[] = {
    [SPL_CFG_BOOL] = "bool",         [SPL_CFG_INT] = "int",
    [SPL_CFG_SIZE] = "size",         [SPL_CFG_DURATION] = "duration",
    [SPL_CFG_STRING] = "string",     [SPL_CFG_ENUM] = "enum",
};

/* ---- errors ---- */

/* Copy at most n bytes of s into dst (cap bytes), replacing unprintable bytes by '?'. */
static void spl_cfg_copy_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < cap && s[i]; i++)
        dst[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    dst[i] = '\0';
}

__attribute__((format(printf, 6, 7))) static int
spl_cfg_fail(const struct spl_config_table *t, struct spl_config_error *err, const char *key,
             size_t key_len, const char *source, const char *fmt, ...)
{
    if (!err)
        return SPL_ECONFIG;
    memset(err, 0, sizeof(*err));
    spl_cfg_copy_printable(err->program, sizeof(err->program), t->program ? t->program : "",
                           SIZE_MAX);
    if (key)
        spl_cfg_copy_printable(err->key, sizeof(err->key), key, key_len);
    spl_cfg_copy_printable(err->source, sizeof(err->source), source ? source : "", SIZE_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return SPL_ECONFIG;
}

void spl_config_format_error(const struct spl_config_error *err, char *buf, size_t len)
{
    ASSERT(buf != NULL && len > 0);
    int n = snprintf(buf, len, "%s%sconfig:", err->program, err->program[0] ? ": " : "");
    size_t used = n < 0 ? 0 : (size_t)n;
    if (err->key[0] && used < len)
        used += (size_t)snprintf(buf + used, len - used, " key '%s'", err->key);
    if (err->source[0] && used < len)
        used += (size_t)snprintf(buf + used, len - used, " at %s", err->source);
    if (used < len)
        snprintf(buf + used, len - used, ": %s", err->reason[0] ? err->reason : "error");
}

/* ---- the table ---- */

static size_t spl_cfg_field_size(const struct spl_config_key *k)
{
    switch (k->type) {
    case SPL_CFG_BOOL:
        return sizeof(bool);
    case SPL_CFG_INT:
        return sizeof(int64_t);
    case SPL_CFG_SIZE:
    case SPL_CFG_DURATION:
        return sizeof(uint64_t);
    case SPL_CFG_STRING:
        return k->str_cap;
    case SPL_CFG_ENUM:
        return sizeof(int);
    }
    ASSERTF(false, "config key %s: bad type %d", k->name, (int)k->type);
    return 0;
}

static bool spl_cfg_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((struct spl_config_error *)0)->key))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* The table is code: anything wrong with it is a programmer error. */
static void spl_cfg_table_check(const struct spl_config_table *t)
{
    ASSERT(t != NULL && (t->keys != NULL || t->key_count == 0));
    ASSERT_CMP(t->key_count, <=, SPL_CONFIG_KEYS_MAX);
    ASSERT(t->struct_size > 0);
    for (size_t i = 0; i < t->key_count; i++) {
        const struct spl_config_key *k = &t->keys[i];
        ASSERTF(k->name && spl_cfg_name_ok(k->name), "config key %zu: bad name", i);
        ASSERTF(k->type >= SPL_CFG_BOOL && k->type <= SPL_CFG_ENUM, "config key %s: type",
                k->name);
        ASSERTF(k->doc != NULL && !strchr(k->doc, '\n'), "config key %s: doc", k->name);
        ASSERTF(!k->default_value || !strchr(k->default_value, '\n'),
                "config key %s: newline in the default", k->name);
        size_t size = spl_cfg_field_size(k);
        ASSERTF(size > 0 && k->offset <= t->struct_size && size <= t->struct_size - k->offset,
                "config key %s: field outside the struct", k->name);
        if (k->type == SPL_CFG_INT || k->type == SPL_CFG_SIZE || k->type == SPL_CFG_DURATION)
            ASSERTF(k->min < k->max && (k->type == SPL_CFG_INT || k->min >= 0),
                    "config key %s: needs bounds min < max (min >= 0 for sizes)", k->name);
        if (k->type == SPL_CFG_ENUM)
            ASSERTF(k->choices && k->choices[0], "config key %s: no choices", k->name);
        for (size_t j = 0; j < i; j++)
            ASSERTF(strcmp(t->keys[j].name, k->name) != 0, "config key %s: declared twice",
                    k->name);
    }
}

static int spl_cfg_find(const struct spl_config_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->key_count; i++)
        if (strncmp(t->keys[i].name, name, len) == 0 && t->keys[i].name[len] == '\0')
            return (int)i;
    return -1;
}

/* ---- reading values ---- */

/* Decimal digits at *s into *out, advancing *s. */
static int spl_cfg_digits(const char **s, uint64_t *out, char *why, size_t why_len)
{
    const char *p = *s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p)) {
        snprintf(why, why_len, "expected a number");
        return SPL_CFG_BAD_VALUE;
    }
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            snprintf(why, why_len, "number too large");
            return SPL_CFG_BAD_VALUE;
        }
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

static void spl_cfg_fmt_size(uint64_t v, char *buf, size_t len)
{
    static const char suffix[] = "TGMK";
    static const int shift[] = {40, 30, 20, 10};
    for (int i = 0; i < 4 && v != 0; i++) {
        if ((v & ((1ull << shift[i]) - 1)) == 0) {
            snprintf(buf, len, "%" PRIu64 "%c", v >> shift[i], suffix[i]);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64, v);
}

static void spl_cfg_fmt_duration(uint64_t ms, char *buf, size_t len)
{
    static const char *const unit[] = {"h", "m", "s"};
    static const uint64_t unit_ms[] = {3600000, 60000, 1000};
    for (int i = 0; i < 3 && ms != 0; i++) {
        if (ms % unit_ms[i] == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", ms / unit_ms[i], unit[i]);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 "ms", ms);
}

static int spl_cfg_parse_bool(const char *text, bool *out, char *why, size_t why_len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    snprintf(why, why_len, "not a bool (true/false/yes/no/on/off/1/0)");
    return SPL_CFG_BAD_VALUE;
}

static int spl_cfg_parse_int(const struct spl_config_key *k, const char *text, int64_t *out,
                             char *why, size_t why_len)
{
    const char *p = text;
    bool neg = *p == '-';
    uint64_t u;
    p += neg;
    if (spl_cfg_digits(&p, &u, why, why_len) < 0)
        return SPL_CFG_BAD_VALUE;
    if (*p != '\0') {
        snprintf(why, why_len, "not an integer: trailing characters");
        return SPL_CFG_BAD_VALUE;
    }
    if (u > (uint64_t)INT64_MAX + neg) {
        snprintf(why, why_len, "number too large");
        return SPL_CFG_BAD_VALUE;
    }
    int64_t v = neg ? (int64_t)(0 - u) : (int64_t)u;
    if (v < k->min || v > k->max) {
        snprintf(why, why_len, "out of bounds [%" PRId64 ", %" PRId64 "]", k->min, k->max);
        return SPL_CFG_BAD_VALUE;
    }
    *out = v;
    return 0;
}

/* SIZE and DURATION: digits, a unit, bounds. */
static int spl_cfg_parse_unit(const struct spl_config_key *k, const char *text, uint64_t *out,
                              char *why, size_t why_len)
{
    static const char *const size_units[] = {"", "K", "M", "G", "T", "k", "m", "g", "t"};
    static const uint64_t size_mult[] = {1, 1ull << 10, 1ull << 20, 1ull << 30, 1ull << 40,
                                         1ull << 10, 1ull << 20, 1ull << 30, 1ull << 40};
    static const char *const dur_units[] = {"", "ms", "s", "m", "h"};
    static const uint64_t dur_mult[] = {1, 1, 1000, 60000, 3600000};
    bool is_size = k->type == SPL_CFG_SIZE;
    const char *const *units = is_size ? size_units : dur_units;
    const uint64_t *mult = is_size ? size_mult : dur_mult;
    size_t unit_count = is_size ? SPL_ARRAY_SIZE(size_units) : SPL_ARRAY_SIZE(dur_units);
    const char *p = text;
    uint64_t v;
    if (spl_cfg_digits(&p, &v, why, why_len) < 0)
        return SPL_CFG_BAD_VALUE;
    size_t u = 0;
    while (u < unit_count && strcmp(p, units[u]) != 0)
        u++;
    if (u == unit_count) {
        snprintf(why, why_len, is_size ? "bad size unit (use K, M, G or T)"
                                       : "bad duration unit (use ms, s, m or h)");
        return SPL_CFG_BAD_VALUE;
    }
    if (v > UINT64_MAX / mult[u]) {
        snprintf(why, why_len, "number too large");
        return SPL_CFG_BAD_VALUE;
    }
    v *= mult[u];
    if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
        char lo[32], hi[32];
        (is_size ? spl_cfg_fmt_size : spl_cfg_fmt_duration)((uint64_t)k->min, lo, sizeof(lo));
        (is_size ? spl_cfg_fmt_size : spl_cfg_fmt_duration)((uint64_t)k->max, hi, sizeof(hi));
        snprintf(why, why_len, "out of bounds [%s, %s]", lo, hi);
        return SPL_CFG_BAD_VALUE;
    }
    *out = v;
    return 0;
}

static int spl_cfg_parse_enum(const struct spl_config_key *k, const char *text, int *out,
                              char *why, size_t why_len)
{
    for (int i = 0; k->choices[i]; i++) {
        if (strcmp(text, k->choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    size_t used = (size_t)snprintf(why, why_len, "must be one of:");
    for (int i = 0; k->choices[i] && used < why_len; i++)
        used += (size_t)snprintf(why + used, why_len - used, " %s", k->choices[i]);
    return SPL_CFG_BAD_VALUE;
}

/* Parse text (NUL-terminated) as k's type into dst (the field; scratch on failure), then
 * run k's validator when validate is set. 0, SPL_CFG_BAD_VALUE or SPL_CFG_BAD_VALIDATE. */
static int spl_cfg_value_parse(const struct spl_config_key *k, const char *text, void *dst,
                               bool validate, char *why, size_t why_len)
{
    int rc = 0;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        int e;
    } v;
    size_t n;
    switch (k->type) {
    case SPL_CFG_BOOL:
        rc = spl_cfg_parse_bool(text, &v.b, why, why_len);
        break;
    case SPL_CFG_INT:
        rc = spl_cfg_parse_int(k, text, &v.i, why, why_len);
        break;
    case SPL_CFG_SIZE:
    case SPL_CFG_DURATION:
        rc = spl_cfg_parse_unit(k, text, &v.u, why, why_len);
        break;
    case SPL_CFG_ENUM:
        rc = spl_cfg_parse_enum(k, text, &v.e, why, why_len);
        break;
    case SPL_CFG_STRING:
        n = strlen(text);
        if (n >= k->str_cap) {
            snprintf(why, why_len, "longer than %zu bytes", k->str_cap - 1);
            return SPL_CFG_BAD_VALUE;
        }
        memset(dst, 0, k->str_cap);
        memcpy(dst, text, n);
        break;
    }
    if (rc < 0)
        return rc;
    if (k->type != SPL_CFG_STRING)
        memcpy(dst, &v, spl_cfg_field_size(k));
    if (validate && k->validate) {
        why[0] = '\0';
        if (k->validate(dst, why, why_len) != 0) {
            if (!why[0])
                snprintf(why, why_len, "rejected by the key's check");
            return SPL_CFG_BAD_VALIDATE;
        }
    }
    return 0;
}

/* The text form of a field (what get prints and set accepts). Returns snprintf's count. */
static int spl_cfg_value_format(const struct spl_config_key *k, const void *field, char *buf,
                                size_t len)
{
    bool b;
    int64_t i;
    uint64_t u;
    int e;
    char tmp[32];
    switch (k->type) {
    case SPL_CFG_BOOL:
        memcpy(&b, field, sizeof(b));
        return snprintf(buf, len, "%s", b ? "true" : "false");
    case SPL_CFG_INT:
        memcpy(&i, field, sizeof(i));
        return snprintf(buf, len, "%" PRId64, i);
    case SPL_CFG_SIZE:
    case SPL_CFG_DURATION:
        memcpy(&u, field, sizeof(u));
        (k->type == SPL_CFG_SIZE ? spl_cfg_fmt_size : spl_cfg_fmt_duration)(u, tmp,
                                                                              sizeof(tmp));
        return snprintf(buf, len, "%s", tmp);
    case SPL_CFG_ENUM:
        memcpy(&e, field, sizeof(e));
        ASSERT(e >= 0);
        return snprintf(buf, len, "%s", k->choices[e]);
    case SPL_CFG_STRING:
        return snprintf(buf, len, "%.*s", (int)strnlen(field, k->str_cap), (const char *)field);
    }
    return 0;
}

/* ---- file syntax ---- */

static bool spl_cfg_is_space(char c) { return c == ' ' || c == '\t'; }

/* Decode the value text [p, end) of a file line (or a table default) into out
 * (out_cap > end - p): a "quoted" value with \" and \\ escapes followed only by space or
 * a comment, or a bare value up to '#' with surrounding space trimmed. */
static int spl_cfg_value_decode(const char *p, const char *end, char *out, size_t out_cap,
                                char *why, size_t why_len)
{
    size_t o = 0;
    ASSERT_CMP(out_cap, >, (size_t)(end - p));
    while (p < end && spl_cfg_is_space(*p))
        p++;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\') {
                if (++p == end)
                    break;
                if (*p != '"' && *p != '\\') {
                    snprintf(why, why_len, "unknown escape in quoted value (use \\\" or \\\\)");
                    return SPL_CFG_BAD_VALUE;
                }
            }
            out[o++] = *p;
        }
        if (p >= end) {
            snprintf(why, why_len, "quoted value has no closing quote");
            return SPL_CFG_BAD_VALUE;
        }
        for (p++; p < end && spl_cfg_is_space(*p); p++) {
        }
        if (p < end && *p != '#') {
            snprintf(why, why_len, "unexpected characters after the closing quote");
            return SPL_CFG_BAD_VALUE;
        }
    } else {
        const char *e = p;
        while (e < end && *e != '#')
            e++;
        while (e > p && spl_cfg_is_space(e[-1]))
            e--;
        o = (size_t)(e - p);
        memcpy(out, p, o);
    }
    out[o] = '\0';
    return 0;
}

/* Split one line (no newline) into its key and decoded value. 1: a setting; 0: blank or
 * comment; SPL_CFG_BAD_VALUE with why (and *key_len 0 if the key is not known yet). */
static int spl_cfg_line_split(const char *line, const char *end, const char **key,
                              size_t *key_len, char *value, size_t value_cap, char *why,
                              size_t why_len)
{
    const char *p = line;
    *key_len = 0;
    while (p < end && spl_cfg_is_space(*p))
        p++;
    if (p == end || *p == '#')
        return 0;
    const char *k = p;
    while (p < end && !spl_cfg_is_space(*p) && *p != '=')
        p++;
    *key = k;
    *key_len = (size_t)(p - k);
    while (p < end && spl_cfg_is_space(*p))
        p++;
    if (p == end || *p != '=') {
        snprintf(why, why_len, "expected 'key = value'");
        return SPL_CFG_BAD_VALUE;
    }
    return spl_cfg_value_decode(p + 1, end, value, value_cap, why, why_len) < 0
               ? SPL_CFG_BAD_VALUE
               : 1;
}

/* Apply one line to cfg. 0 or SPL_ECONFIG with err filled. */
static int spl_cfg_apply_line(const struct spl_config_table *t, void *cfg, const char *line,
                              const char *end, const char *source, uint32_t line_no,
                              struct spl_cfg_origin *origin, struct spl_config_error *err)
{
    char value[SPL_CONFIG_LINE_MAX + 1];
    char why[SPL_CFG_WHY_MAX];
    char where[256];
    const char *key = NULL;
    size_t key_len;
    snprintf(where, sizeof(where), "%s:%" PRIu32, source, line_no);
    if ((size_t)(end - line) > SPL_CONFIG_LINE_MAX)
        return spl_cfg_fail(t, err, NULL, 0, where, "line longer than %d bytes",
                            SPL_CONFIG_LINE_MAX);
    if (memchr(line, '\0', (size_t)(end - line)))
        return spl_cfg_fail(t, err, NULL, 0, where, "NUL byte in the line");
    int rc = spl_cfg_line_split(line, end, &key, &key_len, value, sizeof(value), why,
                                sizeof(why));
    if (rc <= 0)
        return rc == 0 ? 0 : spl_cfg_fail(t, err, key, key_len, where, "%s", why);
    int idx = spl_cfg_find(t, key, key_len);
    if (idx < 0)
        return spl_cfg_fail(t, err, key, key_len, where, "unknown key");
    if (origin->file_line[idx])
        return spl_cfg_fail(t, err, key, key_len, where, "duplicate key (first set at line %u)",
                            (unsigned)origin->file_line[idx]);
    origin->file_line[idx] = line_no;
    const struct spl_config_key *k = &t->keys[idx];
    if (spl_cfg_value_parse(k, value, (char *)cfg + k->offset, true, why, sizeof(why)) < 0)
        return spl_cfg_fail(t, err, key, key_len, where, "%s", why);
    return 0;
}

/* Apply a whole file's text to cfg (a scratch copy), recording each key's line. */
static int spl_cfg_apply_buffer(const struct spl_config_table *t, void *cfg, const char *data,
                                size_t len, const char *source, struct spl_cfg_origin *origin,
                                struct spl_config_error *err)
{
    const char *p = data, *end = data + len;
    uint32_t line_no = 0;
    if (len > SPL_CONFIG_FILE_MAX)
        return spl_cfg_fail(t, err, NULL, 0, source, "file larger than %u bytes",
                            SPL_CONFIG_FILE_MAX);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *e = line_end;
        if (e > p && e[-1] == '\r')
            e--;
        line_no++;
        int rc = spl_cfg_apply_line(t, cfg, p, e, source, line_no, origin, err);
        if (rc < 0)
            return rc;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int spl__config_parse_buffer(const struct spl_config_table *t, void *cfg, const char *data,
                             size_t len, const char *source_name, struct spl_config_error *err)
{
    spl_cfg_table_check(t);
    ASSERT(cfg != NULL && (data != NULL || len == 0));
    void *tmp = malloc(t->struct_size);
    struct spl_cfg_origin *origin = calloc(1, sizeof(*origin));
    int rc = -ENOMEM;
    if (!tmp || !origin)
        goto out_free;
    memcpy(tmp, cfg, t->struct_size);
    rc = spl_cfg_apply_buffer(t, tmp, data, len, source_name ? source_name : "", origin, err);
    if (rc == 0)
        memcpy(cfg, tmp, t->struct_size);
out_free:
    free(origin);
    free(tmp);
    return rc;
}

/* Read a whole config file into a malloc'd buffer. 0, -errno, or SPL_ECONFIG when the
 * file is too large; err filled on failure. */
static int spl_cfg_read_file(const struct spl_config_table *t, const char *path, char **data,
                             size_t *len, struct spl_config_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        spl_cfg_fail(t, err, NULL, 0, path, "cannot open: %s", spl_strerror(rc));
        return rc;
    }
    char *buf = malloc(SPL_CONFIG_FILE_MAX + 1);
    size_t got = 0;
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0 && got <= SPL_CONFIG_FILE_MAX) {
        ssize_t n = read(fd, buf + got, SPL_CONFIG_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (rc == 0 && got > SPL_CONFIG_FILE_MAX)
        rc = spl_cfg_fail(t, err, NULL, 0, path, "file larger than %u bytes",
                          SPL_CONFIG_FILE_MAX);
    else if (rc < 0)
        spl_cfg_fail(t, err, NULL, 0, path, "cannot read: %s", spl_strerror(rc));
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}

int spl_config_parse_file(const struct spl_config_table *t, void *cfg, const char *path,
                          struct spl_config_error *err)
{
    spl_cfg_table_check(t);
    ASSERT(path != NULL);
    char *data;
    size_t len;
    int rc = spl_cfg_read_file(t, path, &data, &len, err);
    if (rc < 0)
        return rc;
    rc = spl__config_parse_buffer(t, cfg, data, len, path, err);
    free(data);
    return rc;
}

/* ---- defaults ---- */

/* Zero cfg and apply every default. Keys without one are skipped (load_args checks them
 * later) unless strict. Validators run only when validate is set. */
static int spl_cfg_apply_defaults(const struct spl_config_table *t, void *cfg, bool strict,
                                  bool validate, struct spl_config_error *err)
{
    char value[SPL_CONFIG_LINE_MAX + 1];
    char why[SPL_CFG_WHY_MAX];
    memset(cfg, 0, t->struct_size);
    for (size_t i = 0; i < t->key_count; i++) {
        const struct spl_config_key *k = &t->keys[i];
        if (!k->default_value) {
            if (strict)
                return spl_cfg_fail(t, err, k->name, SIZE_MAX, "default",
                                    "required key: set it in the config file or with --%s=",
                                    k->name);
            continue;
        }
        size_t n = strlen(k->default_value);
        ASSERTF(n <= SPL_CONFIG_LINE_MAX, "config key %s: default too long", k->name);
        int rc = spl_cfg_value_decode(k->default_value, k->default_value + n, value,
                                      sizeof(value), why, sizeof(why));
        if (rc == 0)
            rc = spl_cfg_value_parse(k, value, (char *)cfg + k->offset, validate, why,
                                     sizeof(why));
        ASSERTF(rc != SPL_CFG_BAD_VALUE, "config key %s: bad default '%s': %s", k->name,
                k->default_value, why);
        if (rc < 0)
            return spl_cfg_fail(t, err, k->name, SIZE_MAX, "default", "%s", why);
    }
    return 0;
}

int spl_config_defaults(const struct spl_config_table *t, void *cfg,
                        struct spl_config_error *err)
{
    spl_cfg_table_check(t);
    ASSERT(cfg != NULL);
    void *tmp = malloc(t->struct_size);
    if (!tmp)
        return -ENOMEM;
    int rc = spl_cfg_apply_defaults(t, tmp, true, true, err);
    if (rc == 0)
        memcpy(cfg, tmp, t->struct_size);
    free(tmp);
    return rc;
}

/* ---- flags ---- */

static bool spl_cfg_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Find --config=FILE among the flags. 0 (path NULL when absent) or SPL_ECONFIG. */
static int spl_cfg_find_config_flag(const struct spl_config_table *t, int argc, char **argv,
                                    const char **path, struct spl_config_error *err)
{
    *path = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--config") == 0)
            return spl_cfg_fail(t, err, NULL, 0, "--config", "needs a file: --config=FILE");
        if (strncmp(argv[i], "--config=", 9) != 0)
            continue;
        if (*path)
            return spl_cfg_fail(t, err, NULL, 0, "--config", "given twice");
        *path = argv[i] + 9;
        if (!**path)
            return spl_cfg_fail(t, err, NULL, 0, "--config", "needs a file: --config=FILE");
    }
    return 0;
}

/* Apply one --key[=value] flag to cfg (a scratch copy). */
static int spl_cfg_apply_flag(const struct spl_config_table *t, void *cfg, const char *arg,
                              struct spl_cfg_origin *origin, struct spl_config_error *err)
{
    char why[SPL_CFG_WHY_MAX];
    char flag[128];
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    snprintf(flag, sizeof(flag), "--%.*s", (int)(name_len < 100 ? name_len : 100), name);
    int idx = spl_cfg_find(t, name, name_len);
    if (idx < 0)
        return spl_cfg_fail(t, err, name, name_len, flag, "unknown key");
    const struct spl_config_key *k = &t->keys[idx];
    if (!eq && k->type != SPL_CFG_BOOL)
        return spl_cfg_fail(t, err, name, name_len, flag, "needs a value: %s=VALUE", flag);
    if (origin->flag[idx])
        return spl_cfg_fail(t, err, name, name_len, flag, "given twice");
    origin->flag[idx] = true;
    if (spl_cfg_value_parse(k, eq ? eq + 1 : "true", (char *)cfg + k->offset, true, why,
                            sizeof(why)) < 0)
        return spl_cfg_fail(t, err, name, name_len, flag, "%s", why);
    return 0;
}

/* Walk argv after the config file: flags into cfg, the rest into positional[]. */
static int spl_cfg_apply_argv(const struct spl_config_table *t, void *cfg, int argc,
                              char **argv, const char **positional, int positional_max,
                              int *count, struct spl_cfg_origin *origin,
                              struct spl_config_error *err)
{
    bool flags_done = false;
    *count = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        ASSERT(arg != NULL);
        if (!flags_done && strcmp(arg, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (!flags_done && strncmp(arg, "--config=", 9) == 0)
            continue;
        if (!flags_done && arg[0] == '-' && arg[1] == '-') {
            int rc = spl_cfg_apply_flag(t, cfg, arg, origin, err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!flags_done && arg[0] == '-' && arg[1] != '\0')
            return spl_cfg_fail(t, err, NULL, 0, arg, "unknown option (flags are --key=value)");
        if (*count >= positional_max)
            return spl_cfg_fail(t, err, NULL, 0, arg, "too many arguments (at most %d)",
                                positional_max);
        positional[(*count)++] = arg;
    }
    return 0;
}

/* After all sources: required keys must be set, and defaults nothing overrode must
 * pass their validators. */
static int spl_cfg_check_final(const struct spl_config_table *t, void *cfg,
                               const struct spl_cfg_origin *origin,
                               struct spl_config_error *err)
{
    char why[SPL_CFG_WHY_MAX];
    for (size_t i = 0; i < t->key_count; i++) {
        const struct spl_config_key *k = &t->keys[i];
        if (origin->file_line[i] || origin->flag[i])
            continue;
        if (!k->default_value)
            return spl_cfg_fail(t, err, k->name, SIZE_MAX, "",
                                "required key not set: give it in the config file or as "
                                "--%s=VALUE",
                                k->name);
        why[0] = '\0';
        if (k->validate && k->validate((char *)cfg + k->offset, why, sizeof(why)) != 0)
            return spl_cfg_fail(t, err, k->name, SIZE_MAX, "default", "%s",
                                why[0] ? why : "rejected by the key's check");
    }
    return 0;
}

int spl_config_load_args(const struct spl_config_table *t, void *cfg, int argc,
                         char **argv, const char **positional, int positional_max,
                         int *positional_count, struct spl_config_error *err)
{
    spl_cfg_table_check(t);
    ASSERT(cfg != NULL && argc >= 0 && (argc == 0 || argv != NULL));
    ASSERT(positional_max >= 0 && (positional_max == 0 || positional != NULL));
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (spl_cfg_is_help(argv[i])) {
            spl_config_print_help(t, stdout);
            fflush(stdout);
            return 1;
        }
    }
    const char *path;
    int count = 0;
    int rc = spl_cfg_find_config_flag(t, argc, argv, &path, err);
    if (rc < 0)
        return rc;
    char *data = NULL;
    size_t len = 0;
    if (path && (rc = spl_cfg_read_file(t, path, &data, &len, err)) < 0)
        return rc;
    void *tmp = malloc(t->struct_size);
    struct spl_cfg_origin *origin = calloc(1, sizeof(*origin));
    rc = -ENOMEM;
    if (!tmp || !origin)
        goto out_free;
    rc = spl_cfg_apply_defaults(t, tmp, false, false, err);
    if (rc == 0 && path)
        rc = spl_cfg_apply_buffer(t, tmp, data, len, path, origin, err);
    if (rc == 0)
        rc = spl_cfg_apply_argv(t, tmp, argc, argv, positional, positional_max, &count,
                                origin, err);
    if (rc == 0)
        rc = spl_cfg_check_final(t, tmp, origin, err);
    if (rc == 0) {
        memcpy(cfg, tmp, t->struct_size);
        if (positional_count)
            *positional_count = count;
    }
out_free:
    free(origin);
    free(tmp);
    free(data);
    return rc;
}

/* ---- runtime get/set ---- */

int spl_config_set(const struct spl_config_table *t, void *cfg, const char *key,
                   const char *value, bool running, struct spl_config_error *err)
{
    ASSERT(t != NULL && cfg != NULL && key != NULL && value != NULL);
    char why[SPL_CFG_WHY_MAX];
    const char *source = running ? "runtime set" : "set";
    int idx = spl_cfg_find(t, key, strlen(key));
    if (idx < 0)
        return spl_cfg_fail(t, err, key, SIZE_MAX, source, "unknown key");
    const struct spl_config_key *k = &t->keys[idx];
    if (running && !k->runtime)
        return spl_cfg_fail(t, err, key, SIZE_MAX, source,
                            "cannot change while running: restart with the new value");
    size_t size = spl_cfg_field_size(k);
    void *tmp = malloc(size);
    if (!tmp)
        return -ENOMEM;
    int rc = spl_cfg_value_parse(k, value, tmp, true, why, sizeof(why));
    if (rc == 0)
        memcpy((char *)cfg + k->offset, tmp, size);
    else
        rc = spl_cfg_fail(t, err, key, SIZE_MAX, source, "%s", why);
    free(tmp);
    return rc;
}

int spl_config_get(const struct spl_config_table *t, const void *cfg, const char *key,
                   char *buf, size_t buf_len)
{
    ASSERT(t != NULL && cfg != NULL && key != NULL && (buf != NULL || buf_len == 0));
    int idx = spl_cfg_find(t, key, strlen(key));
    if (idx < 0)
        return SPL_ECONFIG;
    const struct spl_config_key *k = &t->keys[idx];
    int n = spl_cfg_value_format(k, (const char *)cfg + k->offset, buf, buf_len);
    ASSERT(n >= 0);
    return (size_t)n < buf_len ? 0 : -ENOSPC;
}

/* ---- help and example file ---- */

/* "range [1, 65535]" / "one of: a, b" / "" for a key, into buf. */
static void spl_cfg_describe_bounds(const struct spl_config_key *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    size_t used;
    buf[0] = '\0';
    switch (k->type) {
    case SPL_CFG_INT:
        snprintf(buf, len, "range [%" PRId64 ", %" PRId64 "]", k->min, k->max);
        break;
    case SPL_CFG_SIZE:
    case SPL_CFG_DURATION:
        (k->type == SPL_CFG_SIZE ? spl_cfg_fmt_size : spl_cfg_fmt_duration)((uint64_t)k->min,
                                                                             lo, sizeof(lo));
        (k->type == SPL_CFG_SIZE ? spl_cfg_fmt_size : spl_cfg_fmt_duration)((uint64_t)k->max,
                                                                             hi, sizeof(hi));
        snprintf(buf, len, "range [%s, %s]", lo, hi);
        break;
    case SPL_CFG_ENUM:
        used = (size_t)snprintf(buf, len, "one of:");
        for (int i = 0; k->choices[i] && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "",
                                     k->choices[i]);
        break;
    case SPL_CFG_STRING:
        snprintf(buf, len, "at most %zu bytes", k->str_cap - 1);
        break;
    case SPL_CFG_BOOL:
        break;
    }
}

void spl_config_print_help(const struct spl_config_table *t, FILE *out)
{
    spl_cfg_table_check(t);
    char bounds[256];
    const char *prog = t->program ? t->program : "program";
    fprintf(out, "Usage: %s [--config=FILE] [--key=value ...]\n\n", prog);
    fprintf(out, "Every key may also be set as `key = value` in the config file; flags\n"
                 "override the file, which overrides the defaults.\n\n");
    fprintf(out, "  --config=FILE\n      read settings from FILE\n");
    fprintf(out, "  --help\n      print this help and exit\n");
    for (size_t i = 0; i < t->key_count; i++) {
        const struct spl_config_key *k = &t->keys[i];
        spl_cfg_describe_bounds(k, bounds, sizeof(bounds));
        fprintf(out, "  --%s=<%s>\n      %s\n      ", k->name, spl_cfg_type_names[k->type],
                k->doc);
        if (k->default_value)
            fprintf(out, "default: %s", k->default_value[0] ? k->default_value : "\"\"");
        else
            fprintf(out, "required");
        fprintf(out, "%s%s%s\n", bounds[0] ? "; " : "", bounds,
                k->runtime ? "; changeable at runtime" : "");
    }
}

void spl_config_write_example(const struct spl_config_table *t, FILE *out)
{
    spl_cfg_table_check(t);
    char bounds[256];
    fprintf(out, "# Example configuration for %s, generated from its config table.\n"
                 "# Every key is shown at its default; required keys are commented out.\n"
                 "# Flags (--key=value) override this file.\n",
            t->program ? t->program : "(unnamed)");
    for (size_t i = 0; i < t->key_count; i++) {
        const struct spl_config_key *k = &t->keys[i];
        spl_cfg_describe_bounds(k, bounds, sizeof(bounds));
        fprintf(out, "\n# %s\n# %s%s%s%s\n", k->doc, spl_cfg_type_names[k->type],
                bounds[0] ? ", " : "", bounds, k->runtime ? "; changeable at runtime" : "");
        if (k->default_value)
            fprintf(out, "%s = %s\n", k->name, k->default_value);
        else
            fprintf(out, "# required:\n# %s =\n", k->name);
    }
}
