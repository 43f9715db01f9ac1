/* etcd.c - etcd v3 client over the JSON gateway; see etcd.h and docs/etcd-client.md. */
#include "mds/etcd.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"

#define ETCD_STREAM_LINE_MAX (64u << 20) /* bytes of one streamed answer */
#define ETCD_URL_MAX 512
#define ETCD_STREAM_BACKOFF_MS_MAX 2000

/* ---- errors ---- */

static _Thread_local char etcd_errmsg[512];

const char *spl_etcd_errmsg(void) { return etcd_errmsg; }

__attribute__((format(printf, 2, 3))) static int etcd_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(etcd_errmsg, sizeof etcd_errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- base64 (RFC 4648, with padding) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes text into a fresh NUL-terminated buffer; NULL on bad input or no memory. */
static char *b64_decode(const char *text, size_t *len_out)
{
    size_t n = strlen(text);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '=')
            break;
        int v = b64_value(text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *len_out = o;
    return out;
}

/* ---- JSON helpers ---- */

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    ASSERT(d != NULL);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}


static void json_add_bytes(json_object *o, const char *name, const void *data, size_t len)
{
    char *b = b64_encode(data, len);
    ASSERT(b != NULL);
    json_object_object_add(o, name, json_object_new_string(b));
    free(b);
}

static void json_add_str(json_object *o, const char *name, const char *s)
{
    json_add_bytes(o, name, s, strlen(s));
}

static void json_add_i64(json_object *o, const char *name, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    json_object_object_add(o, name, json_object_new_string(buf));
}

static void json_add_range_end(json_object *o, const char *range_end)
{
    /* "" means "to the end of the key space", which etcd spells as the single byte 0 */
    json_add_bytes(o, "range_end", range_end[0] ? range_end : "\0",
                   range_end[0] ? strlen(range_end) : 1);
}

/* A 64-bit integer field (string or number); 0 when absent (proto3 omits zeros). */
static int64_t json_i64(json_object *o, const char *name)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, name, &v))
        return 0;
    if (json_object_is_type(v, json_type_string))
        return strtoll(json_object_get_string(v), NULL, 10);
    return json_object_get_int64(v);
}

static bool json_flag(json_object *o, const char *name)
{
    json_object *v;
    return o && json_object_object_get_ex(o, name, &v) && json_object_get_boolean(v);
}

static json_object *json_get(json_object *o, const char *name)
{
    json_object *v;
    return o && json_object_object_get_ex(o, name, &v) ? v : NULL;
}

static int parse_kv(json_object *o, struct spl_etcd_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    json_object *k = json_get(o, "key"), *v = json_get(o, "value");
    kv->key = b64_decode(k ? json_object_get_string(k) : "", &kv->key_len);
    kv->value = b64_decode(v ? json_object_get_string(v) : "", &kv->value_len);
    if (!kv->key || !kv->value) {
        spl_etcd_kv_free(kv);
        return etcd_fail(SPL_EETCD_PROTO, "etcd: bad base64 in a key-value");
    }
    kv->create_revision = json_i64(o, "create_revision");
    kv->mod_revision = json_i64(o, "mod_revision");
    kv->version = json_i64(o, "version");
    kv->lease = json_i64(o, "lease");
    return 0;
}

/* Parses a RangeResponse object into out (freed by the caller on any return). */
static int parse_range(json_object *o, struct spl_etcd_kvs *out)
{
    memset(out, 0, sizeof *out);
    out->revision = json_i64(json_get(o, "header"), "revision");
    out->more = json_flag(o, "more");
    out->total = json_i64(o, "count");
    json_object *arr = json_get(o, "kvs");
    if (!arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return etcd_fail(SPL_EETCD_PROTO, "etcd: kvs is not an array");
    size_t n = json_object_array_length(arr);
    out->kvs = calloc(n ? n : 1, sizeof *out->kvs);
    if (!out->kvs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_kv(json_object_array_get_idx(arr, i), &out->kvs[i]);
        if (rc < 0)
            return rc;
        out->count++;
    }
    return 0;
}

void spl_etcd_kv_free(struct spl_etcd_kv *kv)
{
    if (!kv)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void spl_etcd_kvs_free(struct spl_etcd_kvs *kvs)
{
    if (!kvs)
        return;
    for (size_t i = 0; i < kvs->count; i++)
        spl_etcd_kv_free(&kvs->kvs[i]);
    free(kvs->kvs);
    memset(kvs, 0, sizeof *kvs);
}

int spl_etcd_prefix_end(const char *prefix, char *buf, size_t cap)
{
    size_t n = strlen(prefix);
    if (n + 1 > cap)
        return SPL_ETOOBIG;
    memcpy(buf, prefix, n + 1);
    while (n > 0) {
        unsigned char c = (unsigned char)buf[n - 1];
        if (c < 0xff) {
            buf[n - 1] = (char)(c + 1);
            buf[n] = '\0';
            return 0;
        }
        n--;
    }
    buf[0] = '\0'; /* all 0xff: to the end of the key space */
    return 0;
}

/* ---- the client ---- */

struct spl_etcd {
    char endpoints[SPL_ETCD_ENDPOINTS_MAX][128];
    int endpoint_count;
    atomic_int current;
    uint32_t timeout_ms;
    uint32_t connect_timeout_ms;
    pthread_mutex_t lock; /* guards the handle pool */
    CURL *handles[SPL_ETCD_HANDLES_MAX];
    int handle_count;
};

void spl_etcd_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int spl_etcd_open(const struct spl_etcd_config *cfg, spl_etcd **out)
{
    ASSERT(cfg && cfg->endpoints && out);
    spl_etcd *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    const char *p = cfg->endpoints;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof e->endpoints[0] - 8 ||
            e->endpoint_count == SPL_ETCD_ENDPOINTS_MAX) {
            free(e);
            return etcd_fail(SPL_ECONFIG, "etcd: bad endpoint list '%s'", cfg->endpoints);
        }
        char *dst = e->endpoints[e->endpoint_count++];
        bool scheme = strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0;
        snprintf(dst, sizeof e->endpoints[0], "%s%.*s", scheme ? "" : "http://", (int)n, p);
        size_t l = strlen(dst);
        if (l > 0 && dst[l - 1] == '/')
            dst[l - 1] = '\0';
        p += n;
        if (*p == ',')
            p++;
    }
    if (e->endpoint_count == 0) {
        free(e);
        return etcd_fail(SPL_ECONFIG, "etcd: empty endpoint list");
    }
    e->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    e->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
    pthread_mutex_init(&e->lock, NULL);
    *out = e;
    return 0;
}

void spl_etcd_close(spl_etcd *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->handle_count; i++)
        curl_easy_cleanup(e->handles[i]);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const char *spl_etcd_endpoint(spl_etcd *e)
{
    return e->endpoints[atomic_load(&e->current) % e->endpoint_count];
}

static CURL *handle_get(spl_etcd *e)
{
    CURL *h = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->handle_count > 0)
        h = e->handles[--e->handle_count];
    pthread_mutex_unlock(&e->lock);
    return h ? h : curl_easy_init();
}

static void handle_put(spl_etcd *e, CURL *h)
{
    pthread_mutex_lock(&e->lock);
    if (e->handle_count < SPL_ETCD_HANDLES_MAX) {
        e->handles[e->handle_count++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (h)
        curl_easy_cleanup(h);
}

struct buf {
    char *data;
    size_t len, cap, max;
};

static size_t buf_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->max)
        return 0; /* abort: CURLE_WRITE_ERROR */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Maps a gateway error object {"error","code","message"} to our codes. */
static int map_gateway_error(json_object *o, long http, const char *path)
{
    int64_t code = json_i64(o, "code");
    json_object *m = json_get(o, "message");
    if (!m)
        m = json_get(o, "error");
    const char *msg = m ? json_object_get_string(m) : "";
    int rc;
    if (code == 14 || code == 4 || code == 8 || http == 503)
        rc = SPL_EETCD_UNAVAILABLE;
    else if (strstr(msg, "lease not found"))
        rc = SPL_EETCD_NOLEASE;
    else if (strstr(msg, "election: no leader") || strstr(msg, "election: not leader") ||
             strstr(msg, "session expired"))
        rc = SPL_EETCD_NOLEADER;
    else if (strstr(msg, "compacted"))
        rc = SPL_EETCD_COMPACTED;
    else if (strstr(msg, "too large"))
        rc = SPL_ETOOBIG;
    else if (code == 5)
        rc = -ENOENT;
    else if (code == 3 || code == 11 || code == 9 || code == 2)
        rc = SPL_EETCD_REJECTED;
    else
        rc = SPL_EETCD_PROTO;
    return etcd_fail(rc, "etcd %s: %s (grpc code %lld, http %ld)", path, msg, (long long)code,
                     http);
}

static bool transport_may_retry(CURLcode cc, bool idempotent)
{
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return true; /* the request was never delivered */
    return idempotent;
}

/* One POST of body to path, with failover. Returns 0 and *resp (a parsed JSON object the
 * caller puts) or an error with the message set. */
static int etcd_call(spl_etcd *e, const char *path, json_object *body, bool idempotent,
                     json_object **resp)
{
    const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    CURL *h = handle_get(e);
    if (!h)
        return -ENOMEM;
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    int rc = SPL_EETCD_UNAVAILABLE;
    int start = atomic_load(&e->current);
    for (int attempt = 0; attempt < e->endpoint_count; attempt++) {
        int idx = (start + attempt) % e->endpoint_count;
        char url[ETCD_URL_MAX];
        snprintf(url, sizeof url, "%s%s", e->endpoints[idx], path);
        struct buf b = {.max = SPL_ETCD_RESPONSE_MAX};
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        CURLcode cc = curl_easy_perform(h);
        long http = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
        if (cc != CURLE_OK) {
            free(b.data);
            rc = etcd_fail(SPL_EETCD_UNAVAILABLE, "etcd %s%s: %s", e->endpoints[idx], path,
                           curl_easy_strerror(cc));
            LOG_WARN("etcd", "%s", etcd_errmsg);
            if (!transport_may_retry(cc, idempotent))
                break;
            atomic_store(&e->current, (idx + 1) % e->endpoint_count);
            continue;
        }
        json_object *o = b.data ? json_tokener_parse(b.data) : NULL;
        free(b.data);
        if (!o || !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            rc = etcd_fail(SPL_EETCD_PROTO, "etcd %s: http %ld with a non-JSON body", path,
                           http);
            break;
        }
        if (http != 200 || json_get(o, "error")) {
            rc = map_gateway_error(o, http, path);
            json_object_put(o);
            if (rc == SPL_EETCD_UNAVAILABLE && idempotent) {
                atomic_store(&e->current, (idx + 1) % e->endpoint_count);
                continue;
            }
            break;
        }
        /* Streaming endpoints called as unary calls wrap their answer in "result". */
        json_object *res = json_get(o, "result");
        if (res && strstr(path, "keepalive")) {
            json_object_get(res);
            json_object_put(o);
            o = res;
        }
        *resp = o;
        rc = 0;
        break;
    }
    curl_slist_free_all(hdr);
    handle_put(e, h);
    return rc;
}

/* ---- key-value ---- */

/* A range whose start key is key[0..key_len) (it may end in a NUL: see foreach). */
static int range_raw(spl_etcd *e, const char *key, size_t key_len, const char *range_end,
                     int64_t limit, int64_t revision, struct spl_etcd_kvs *out)
{
    memset(out, 0, sizeof *out);
    json_object *req = json_object_new_object(), *resp;
    json_add_bytes(req, "key", key, key_len);
    if (range_end)
        json_add_range_end(req, range_end);
    if (limit > 0)
        json_add_i64(req, "limit", limit);
    if (revision > 0)
        json_add_i64(req, "revision", revision);
    int rc = etcd_call(e, "/v3/kv/range", req, true, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    rc = parse_range(resp, out);
    json_object_put(resp);
    if (rc < 0)
        spl_etcd_kvs_free(out);
    return rc;
}

int spl_etcd_range(spl_etcd *e, const char *key, const char *range_end, int64_t limit,
                   int64_t revision, struct spl_etcd_kvs *out)
{
    ASSERT(e && key && out);
    return range_raw(e, key, strlen(key), range_end, limit, revision, out);
}

int spl_etcd_get(spl_etcd *e, const char *key, struct spl_etcd_kv *out)
{
    struct spl_etcd_kvs r;
    int rc = spl_etcd_range(e, key, NULL, 0, 0, &r);
    if (rc < 0)
        return rc;
    if (r.count == 0) {
        spl_etcd_kvs_free(&r);
        return etcd_fail(-ENOENT, "etcd: no key '%s'", key);
    }
    *out = r.kvs[0];
    memset(&r.kvs[0], 0, sizeof r.kvs[0]);
    spl_etcd_kvs_free(&r);
    return 0;
}

int spl_etcd_put(spl_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
                 int64_t *revision_out)
{
    ASSERT(e && key && (value || len == 0));
    json_object *req = json_object_new_object(), *resp;
    json_add_str(req, "key", key);
    json_add_bytes(req, "value", value ? value : "", len);
    if (lease)
        json_add_i64(req, "lease", lease);
    int rc = etcd_call(e, "/v3/kv/put", req, false, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    if (revision_out)
        *revision_out = json_i64(json_get(resp, "header"), "revision");
    json_object_put(resp);
    return 0;
}

int spl_etcd_delete(spl_etcd *e, const char *key, bool prefix, int64_t *deleted_out)
{
    ASSERT(e && key);
    char end[SPL_ETCD_KEY_MAX];
    json_object *req = json_object_new_object(), *resp;
    json_add_str(req, "key", key);
    if (prefix) {
        if (spl_etcd_prefix_end(key, end, sizeof end) < 0) {
            json_object_put(req);
            return etcd_fail(SPL_ETOOBIG, "etcd: key too long");
        }
        json_add_range_end(req, end);
    }
    int rc = etcd_call(e, "/v3/kv/deleterange", req, false, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    if (deleted_out)
        *deleted_out = json_i64(resp, "deleted");
    json_object_put(resp);
    return 0;
}

int spl_etcd_foreach(spl_etcd *e, const char *prefix, int64_t page_limit,
                     int64_t *revision_out, spl_etcd_foreach_cb cb, void *arg)
{
    ASSERT(e && prefix && cb);
    char end[SPL_ETCD_KEY_MAX];
    if (spl_etcd_prefix_end(prefix, end, sizeof end) < 0)
        return etcd_fail(SPL_ETOOBIG, "etcd: prefix too long");
    if (page_limit <= 0 || page_limit > SPL_ETCD_RANGE_LIMIT_MAX)
        page_limit = 1000;
    size_t from_len = strlen(prefix);
    char *from = dup_bytes(prefix, from_len);
    int64_t revision = 0;
    int rc = 0;
    for (;;) {
        struct spl_etcd_kvs page;
        rc = range_raw(e, from, from_len, end, page_limit, revision, &page);
        if (rc < 0)
            break;
        if (revision == 0)
            revision = page.revision;
        for (size_t i = 0; i < page.count && rc == 0; i++)
            rc = cb(arg, &page.kvs[i]);
        bool more = rc == 0 && page.more && page.count > 0;
        if (more) { /* continue just after the last key: last key + "\0" */
            const struct spl_etcd_kv *last = &page.kvs[page.count - 1];
            free(from);
            from = dup_bytes(last->key, last->key_len + 1);
            from_len = last->key_len + 1;
        }
        spl_etcd_kvs_free(&page);
        if (!more)
            break;
    }
    free(from);
    if (revision_out)
        *revision_out = revision;
    return rc;
}

/* ---- transactions ---- */

void spl_etcd_txn_init(struct spl_etcd_txn *t)
{
    memset(t, 0, sizeof *t);
    for (int b = 0; b < 2; b++) {
        t->ops[b] = calloc(SPL_ETCD_TXN_OPS_MAX, sizeof(struct spl_etcd_op));
        ASSERT(t->ops[b] != NULL);
    }
}

void spl_etcd_txn_reset(struct spl_etcd_txn *t)
{
    for (int i = 0; i < t->cmp_count; i++) {
        free(t->cmp[i].key);
        free(t->cmp[i].value);
    }
    t->cmp_count = 0;
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < t->op_count[b]; i++) {
            free(t->ops[b][i].key);
            free(t->ops[b][i].range_end);
            free(t->ops[b][i].value);
        }
        t->op_count[b] = 0;
    }
}

void spl_etcd_txn_free(struct spl_etcd_txn *t)
{
    spl_etcd_txn_reset(t);
    free(t->ops[0]);
    free(t->ops[1]);
    t->ops[0] = t->ops[1] = NULL;
}

void spl_etcd_txn_cmp(struct spl_etcd_txn *t, const char *key, enum spl_etcd_cmp_target target,
                      enum spl_etcd_cmp_op op, int64_t number)
{
    ASSERT_CMP(t->cmp_count, <, SPL_ETCD_TXN_CMP_MAX);
    ASSERT(target != SPL_ETCD_CMP_VALUE);
    struct spl_etcd_cmp *c = &t->cmp[t->cmp_count++];
    *c = (struct spl_etcd_cmp){.key = dup_bytes(key, strlen(key)), .target = target,
                               .op = op, .number = number};
}

void spl_etcd_txn_cmp_value(struct spl_etcd_txn *t, const char *key, enum spl_etcd_cmp_op op,
                            const void *value, size_t len)
{
    ASSERT_CMP(t->cmp_count, <, SPL_ETCD_TXN_CMP_MAX);
    struct spl_etcd_cmp *c = &t->cmp[t->cmp_count++];
    *c = (struct spl_etcd_cmp){.key = dup_bytes(key, strlen(key)), .target = SPL_ETCD_CMP_VALUE,
                               .op = op, .value = dup_bytes(value, len), .value_len = len};
}

static struct spl_etcd_op *txn_add(struct spl_etcd_txn *t, enum spl_etcd_branch b,
                                   enum spl_etcd_op_type type, const char *key)
{
    ASSERT(t->ops[b] != NULL);
    ASSERT_CMP(t->op_count[b], <, SPL_ETCD_TXN_OPS_MAX);
    struct spl_etcd_op *op = &t->ops[b][t->op_count[b]++];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->key = dup_bytes(key, strlen(key));
    return op;
}

void spl_etcd_txn_put(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                      const void *value, size_t len, int64_t lease)
{
    struct spl_etcd_op *op = txn_add(t, b, SPL_ETCD_OP_PUT, key);
    op->value = dup_bytes(value, len);
    op->value_len = len;
    op->lease = lease;
}

void spl_etcd_txn_delete(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                         const char *range_end)
{
    struct spl_etcd_op *op = txn_add(t, b, SPL_ETCD_OP_DELETE, key);
    op->range_end = range_end ? dup_bytes(range_end, strlen(range_end)) : NULL;
}

void spl_etcd_txn_range(struct spl_etcd_txn *t, enum spl_etcd_branch b, const char *key,
                        const char *range_end)
{
    struct spl_etcd_op *op = txn_add(t, b, SPL_ETCD_OP_RANGE, key);
    op->range_end = range_end ? dup_bytes(range_end, strlen(range_end)) : NULL;
}

int spl_etcd_txn_ops_left(const struct spl_etcd_txn *t, enum spl_etcd_branch b)
{
    return SPL_ETCD_TXN_OPS_MAX - t->op_count[b];
}

void spl_etcd_txn_result_free(struct spl_etcd_txn_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->op_count; i++)
        spl_etcd_kvs_free(&r->ranges[i]);
    r->op_count = 0;
}

static const char *const cmp_target_names[] = {"VALUE", "VERSION", "CREATE", "MOD", "LEASE"};
static const char *const cmp_target_fields[] = {"value", "version", "create_revision",
                                                "mod_revision", "lease"};
static const char *const cmp_op_names[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};

static json_object *txn_op_json(const struct spl_etcd_op *op)
{
    json_object *w = json_object_new_object(), *r = json_object_new_object();
    json_add_str(r, "key", op->key);
    if (op->range_end)
        json_add_range_end(r, op->range_end);
    switch (op->type) {
    case SPL_ETCD_OP_PUT:
        json_add_bytes(r, "value", op->value, op->value_len);
        if (op->lease)
            json_add_i64(r, "lease", op->lease);
        json_object_object_add(w, "request_put", r);
        break;
    case SPL_ETCD_OP_DELETE:
        json_object_object_add(w, "request_delete_range", r);
        break;
    case SPL_ETCD_OP_RANGE:
        json_object_object_add(w, "request_range", r);
        break;
    }
    return w;
}

static json_object *txn_json(const struct spl_etcd_txn *t)
{
    json_object *req = json_object_new_object(), *cmps = json_object_new_array();
    for (int i = 0; i < t->cmp_count; i++) {
        const struct spl_etcd_cmp *c = &t->cmp[i];
        json_object *o = json_object_new_object();
        json_add_str(o, "key", c->key);
        json_object_object_add(o, "target",
                               json_object_new_string(cmp_target_names[c->target]));
        json_object_object_add(o, "result", json_object_new_string(cmp_op_names[c->op]));
        if (c->target == SPL_ETCD_CMP_VALUE)
            json_add_bytes(o, "value", c->value, c->value_len);
        else
            json_add_i64(o, cmp_target_fields[c->target], c->number);
        json_object_array_add(cmps, o);
    }
    json_object_object_add(req, "compare", cmps);
    const char *names[2] = {"success", "failure"};
    for (int b = 0; b < 2; b++) {
        json_object *arr = json_object_new_array();
        for (int i = 0; i < t->op_count[b]; i++)
            json_object_array_add(arr, txn_op_json(&t->ops[b][i]));
        json_object_object_add(req, names[b], arr);
    }
    return req;
}

static int txn_parse(json_object *resp, struct spl_etcd_txn_result *res)
{
    memset(res, 0, sizeof *res);
    res->succeeded = json_flag(resp, "succeeded");
    res->revision = json_i64(json_get(resp, "header"), "revision");
    json_object *arr = json_get(resp, "responses");
    size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr)
                                                                 : 0;
    if (n > SPL_ETCD_TXN_OPS_MAX)
        return etcd_fail(SPL_EETCD_PROTO, "etcd txn: %zu responses", n);
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_get(json_object_array_get_idx(arr, i), "response_range");
        res->op_count++;
        if (r) {
            int rc = parse_range(r, &res->ranges[i]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int spl_etcd_txn(spl_etcd *e, const struct spl_etcd_txn *t, struct spl_etcd_txn_result *res)
{
    ASSERT(e && t);
    json_object *req = txn_json(t), *resp;
    int rc = etcd_call(e, "/v3/kv/txn", req, false, &resp);
    json_object_put(req);
    if (rc < 0) {
        if (res)
            memset(res, 0, sizeof *res);
        return rc;
    }
    bool ok = json_flag(resp, "succeeded");
    if (res) {
        rc = txn_parse(resp, res);
        if (rc < 0)
            spl_etcd_txn_result_free(res);
    }
    json_object_put(resp);
    if (rc < 0)
        return rc;
    return ok ? 0 : etcd_fail(SPL_EETCD_TXNFAIL, "etcd txn: compare failed");
}

/* ---- leases ---- */

int spl_etcd_lease_grant(spl_etcd *e, int64_t ttl_s, int64_t *id_out, int64_t *ttl_out)
{
    ASSERT(e && ttl_s > 0 && id_out);
    json_object *req = json_object_new_object(), *resp;
    json_add_i64(req, "TTL", ttl_s);
    int rc = etcd_call(e, "/v3/lease/grant", req, false, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    *id_out = json_i64(resp, "ID");
    if (ttl_out)
        *ttl_out = json_i64(resp, "TTL");
    json_object *err = json_get(resp, "error");
    json_object_put(resp);
    if (*id_out == 0 || err)
        return etcd_fail(SPL_EETCD_PROTO, "etcd lease grant: no lease id");
    return 0;
}

int spl_etcd_lease_keepalive(spl_etcd *e, int64_t id, int64_t *ttl_out)
{
    json_object *req = json_object_new_object(), *resp;
    json_add_i64(req, "ID", id);
    int rc = etcd_call(e, "/v3/lease/keepalive", req, true, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    int64_t ttl = json_i64(resp, "TTL");
    json_object_put(resp);
    if (ttl <= 0) /* etcd answers a dead lease with TTL 0 */
        return etcd_fail(SPL_EETCD_NOLEASE, "etcd: lease %llx expired", (unsigned long long)id);
    if (ttl_out)
        *ttl_out = ttl;
    return 0;
}

int spl_etcd_lease_ttl(spl_etcd *e, int64_t id, int64_t *ttl_out)
{
    json_object *req = json_object_new_object(), *resp;
    json_add_i64(req, "ID", id);
    int rc = etcd_call(e, "/v3/kv/lease/timetolive", req, true, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    int64_t ttl = json_i64(resp, "TTL");
    json_object_put(resp);
    if (ttl < 0)
        return etcd_fail(SPL_EETCD_NOLEASE, "etcd: lease %llx expired", (unsigned long long)id);
    if (ttl_out)
        *ttl_out = ttl;
    return 0;
}

int spl_etcd_lease_revoke(spl_etcd *e, int64_t id)
{
    json_object *req = json_object_new_object(), *resp;
    json_add_i64(req, "ID", id);
    int rc = etcd_call(e, "/v3/lease/revoke", req, false, &resp);
    json_object_put(req);
    if (rc == 0)
        json_object_put(resp);
    return rc == -ENOENT ? SPL_EETCD_NOLEASE : rc;
}

/* ---- the lease keeper ---- */

struct spl_etcd_keeper {
    spl_etcd *e;
    int64_t lease;
    int64_t ttl_s;
    spl_etcd_lease_lost_cb lost_cb;
    void *arg;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t valid_until_ns; /* monotonic; 0 once lost */
};

static void *keeper_main(void *p)
{
    spl_etcd_keeper *k = p;
    uint64_t interval_ns = (uint64_t)k->ttl_s * SPL_NS_PER_SEC / 3;
    uint64_t next_ns = spl_mono_ns() + interval_ns;
    while (!atomic_load(&k->stop)) {
        uint64_t now = spl_mono_ns();
        if (now < next_ns) {
            uint64_t step = next_ns - now;
            spl_sleep_ns(step < 100 * SPL_NS_PER_MS ? step : 100 * SPL_NS_PER_MS);
            continue;
        }
        uint64_t sent_ns = spl_mono_ns();
        int64_t ttl = 0;
        int rc = spl_etcd_lease_keepalive(k->e, k->lease, &ttl);
        if (rc == 0) {
            atomic_store(&k->valid_until_ns, sent_ns + (uint64_t)ttl * SPL_NS_PER_SEC);
            next_ns = sent_ns + (uint64_t)ttl * SPL_NS_PER_SEC / 3;
            continue;
        }
        bool lost = rc == SPL_EETCD_NOLEASE || spl_mono_ns() >= atomic_load(&k->valid_until_ns);
        if (lost) {
            LOG_WARN("etcd", "lease %llx lost: %s", (unsigned long long)k->lease,
                     spl_etcd_errmsg());
            atomic_store(&k->valid_until_ns, 0);
            if (k->lost_cb)
                k->lost_cb(k->arg, k->lease, rc == SPL_EETCD_NOLEASE ? rc : -ETIMEDOUT);
            break;
        }
        next_ns = spl_mono_ns() + 200 * SPL_NS_PER_MS; /* retry soon */
    }
    return NULL;
}

int spl_etcd_keeper_start(spl_etcd *e, int64_t lease, int64_t ttl_s,
                          spl_etcd_lease_lost_cb lost_cb, void *arg, spl_etcd_keeper **out)
{
    ASSERT(e && lease && ttl_s > 0 && out);
    spl_etcd_keeper *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    *k = (spl_etcd_keeper){.e = e, .lease = lease, .ttl_s = ttl_s, .lost_cb = lost_cb,
                           .arg = arg};
    /* conservative: the lease was granted before now, so it is valid for less than ttl */
    atomic_store(&k->valid_until_ns, spl_mono_ns() + (uint64_t)ttl_s * SPL_NS_PER_SEC / 2);
    int rc = pthread_create(&k->thread, NULL, keeper_main, k);
    if (rc != 0) {
        free(k);
        return -rc;
    }
    *out = k;
    return 0;
}

bool spl_etcd_keeper_valid(spl_etcd_keeper *k)
{
    return spl_mono_ns() < atomic_load(&k->valid_until_ns);
}

void spl_etcd_keeper_stop(spl_etcd_keeper *k)
{
    if (!k)
        return;
    atomic_store(&k->stop, true);
    pthread_join(k->thread, NULL);
    free(k);
}

/* ---- streams (watch, observe) and blocking calls ---- */

/* A long POST whose answer is a sequence of newline-separated JSON objects. line_cb gets
 * each parsed object; a non-zero return ends the transfer. */
struct stream {
    spl_etcd *e;
    CURL *h;
    struct buf line;
    int (*line_cb)(void *arg, json_object *o);
    void *arg;
    const atomic_bool *cancel;
    uint64_t deadline_ns; /* 0: none */
    int cb_rc;
};

static size_t stream_write_cb(char *ptr, size_t size, size_t nmemb, void *p)
{
    struct stream *s = p;
    size_t n = size * nmemb;
    if (buf_write_cb(ptr, 1, n, &s->line) != n)
        return 0;
    for (;;) {
        char *nl = memchr(s->line.data, '\n', s->line.len);
        if (!nl)
            break;
        *nl = '\0';
        json_object *o = json_tokener_parse(s->line.data);
        size_t used = (size_t)(nl - s->line.data) + 1;
        memmove(s->line.data, nl + 1, s->line.len - used);
        s->line.len -= used;
        s->line.data[s->line.len] = '\0';
        if (!o)
            continue;
        int rc = s->line_cb(s->arg, o);
        json_object_put(o);
        if (rc != 0) {
            s->cb_rc = rc;
            return 0;
        }
    }
    return n;
}

static int stream_progress_cb(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                              curl_off_t un)
{
    struct stream *s = p;
    if (s->cancel && atomic_load(s->cancel))
        return 1;
    if (s->deadline_ns && spl_mono_ns() >= s->deadline_ns)
        return 1;
    return 0;
}

/* Runs one streaming POST on endpoint idx. Returns the CURLcode. */
static CURLcode stream_run(struct stream *s, int idx, const char *path, const char *body)
{
    spl_etcd *e = s->e;
    char url[ETCD_URL_MAX];
    snprintf(url, sizeof url, "%s%s", e->endpoints[idx], path);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    s->line.len = 0;
    s->line.max = ETCD_STREAM_LINE_MAX;
    s->cb_rc = 0;
    curl_easy_reset(s->h);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_write_cb);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s->h, CURLOPT_XFERINFOFUNCTION, stream_progress_cb);
    curl_easy_setopt(s->h, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->connect_timeout_ms);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* a silent etcd is detected by TCP keepalive; the stream itself may idle forever */
    curl_easy_setopt(s->h, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(s->h, CURLOPT_TCP_KEEPINTVL, 2L);
    CURLcode cc = curl_easy_perform(s->h);
    curl_slist_free_all(hdr);
    return cc;
}

/* A background stream: reconnects with backoff until stopped. */
struct bg_stream {
    struct stream s;
    pthread_t thread;
    atomic_bool stop;
    char path[64];
    char *(*make_body)(void *owner); /* fresh request body for each (re)connection */
    void *owner;
    bool ended; /* the line callback asked to end for good */
};

static void *bg_stream_main(void *p)
{
    struct bg_stream *b = p;
    uint64_t backoff_ms = 100;
    int idx = atomic_load(&b->s.e->current) % b->s.e->endpoint_count;
    while (!atomic_load(&b->stop) && !b->ended) {
        char *body = b->make_body(b->owner);
        CURLcode cc = stream_run(&b->s, idx, b->path, body);
        free(body);
        if (atomic_load(&b->stop) || b->s.cb_rc > 0)
            break;
        if (cc != CURLE_OK)
            LOG_DEBUG("etcd", "stream %s on %s ended: %s", b->path, b->s.e->endpoints[idx],
                      curl_easy_strerror(cc));
        idx = (idx + 1) % b->s.e->endpoint_count;
        for (uint64_t t = 0; t < backoff_ms && !atomic_load(&b->stop); t += 50)
            spl_sleep_ns(50 * SPL_NS_PER_MS);
        backoff_ms = backoff_ms * 2 > ETCD_STREAM_BACKOFF_MS_MAX ? ETCD_STREAM_BACKOFF_MS_MAX
                                                                : backoff_ms * 2;
    }
    return NULL;
}

static int bg_stream_start(struct bg_stream *b, spl_etcd *e, const char *path)
{
    b->s.e = e;
    b->s.cancel = &b->stop;
    b->s.h = curl_easy_init();
    if (!b->s.h)
        return -ENOMEM;
    snprintf(b->path, sizeof b->path, "%s", path);
    int rc = pthread_create(&b->thread, NULL, bg_stream_main, b);
    if (rc != 0) {
        curl_easy_cleanup(b->s.h);
        return -rc;
    }
    return 0;
}

static void bg_stream_stop(struct bg_stream *b)
{
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    curl_easy_cleanup(b->s.h);
    free(b->s.line.data);
}

/* ---- watch ---- */

struct spl_etcd_watch {
    struct bg_stream bg;
    char *key;
    char *range_end; /* NULL: one key */
    bool prev_kv;
    int64_t next_revision; /* where a reconnection resumes (0: from now) */
    spl_etcd_watch_cb cb;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int created; /* 0 waiting, 1 created, <0 error */
};

static char *watch_body(void *owner)
{
    spl_etcd_watch *w = owner;
    json_object *req = json_object_new_object(), *c = json_object_new_object();
    json_add_str(c, "key", w->key);
    if (w->range_end)
        json_add_range_end(c, w->range_end);
    if (w->next_revision > 0)
        json_add_i64(c, "start_revision", w->next_revision);
    if (w->prev_kv)
        json_object_object_add(c, "prev_kv", json_object_new_boolean(1));
    json_object_object_add(req, "create_request", c);
    char *s = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    ASSERT(s != NULL);
    return s;
}

static void watch_set_created(spl_etcd_watch *w, int v)
{
    pthread_mutex_lock(&w->lock);
    if (w->created == 0)
        w->created = v;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int watch_deliver(spl_etcd_watch *w, json_object *events, int64_t revision)
{
    size_t n = json_object_array_length(events);
    struct spl_etcd_event *ev = calloc(n ? n : 1, sizeof *ev);
    if (!ev)
        return -ENOMEM;
    size_t ok = 0;
    int rc = 0;
    for (; ok < n && rc == 0; ok++) {
        json_object *o = json_object_array_get_idx(events, ok);
        json_object *t = json_get(o, "type");
        ev[ok].type = t && strcmp(json_object_get_string(t), "DELETE") == 0
                          ? SPL_ETCD_EVENT_DELETE
                          : SPL_ETCD_EVENT_PUT;
        rc = parse_kv(json_get(o, "kv"), &ev[ok].kv);
        if (rc == 0 && json_get(o, "prev_kv")) {
            ev[ok].has_prev = true;
            rc = parse_kv(json_get(o, "prev_kv"), &ev[ok].prev_kv);
        }
    }
    if (rc == 0)
        w->cb(w->arg, 0, ev, n, revision);
    for (size_t i = 0; i < n; i++) {
        spl_etcd_kv_free(&ev[i].kv);
        spl_etcd_kv_free(&ev[i].prev_kv);
    }
    free(ev);
    return rc;
}

static int watch_line(void *arg, json_object *o)
{
    spl_etcd_watch *w = arg;
    json_object *r = json_get(o, "result");
    if (!r) {
        LOG_WARN("etcd", "watch %s: %s", w->key, json_object_to_json_string(o));
        return -1; /* reconnect */
    }
    int64_t revision = json_i64(json_get(r, "header"), "revision");
    if (json_flag(r, "canceled") || json_i64(r, "compact_revision") > 0) {
        int64_t compact = json_i64(r, "compact_revision");
        LOG_WARN("etcd", "watch %s canceled (compact revision %lld)", w->key,
                 (long long)compact);
        watch_set_created(w, compact > 0 ? SPL_EETCD_COMPACTED : SPL_EETCD_REJECTED);
        if (compact > 0)
            w->cb(w->arg, SPL_EETCD_COMPACTED, NULL, 0, compact);
        w->bg.ended = true;
        return 1;
    }
    if (json_flag(r, "created"))
        watch_set_created(w, 1);
    json_object *events = json_get(r, "events");
    if (events && json_object_is_type(events, json_type_array) &&
        json_object_array_length(events) > 0) {
        if (watch_deliver(w, events, revision) < 0)
            return -1;
    }
    if (revision > 0 && revision + 1 > w->next_revision)
        w->next_revision = revision + 1;
    return 0;
}

int spl_etcd_watch_start(spl_etcd *e, const char *key, bool prefix, int64_t start_revision,
                         bool prev_kv, spl_etcd_watch_cb cb, void *arg, spl_etcd_watch **out)
{
    ASSERT(e && key && cb && out);
    spl_etcd_watch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->key = strdup(key);
    if (prefix) {
        char end[SPL_ETCD_KEY_MAX];
        if (spl_etcd_prefix_end(key, end, sizeof end) < 0) {
            free(w->key);
            free(w);
            return etcd_fail(SPL_ETOOBIG, "etcd: key too long");
        }
        w->range_end = strdup(end);
    }
    w->prev_kv = prev_kv;
    w->next_revision = start_revision;
    w->cb = cb;
    w->arg = arg;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->bg.s.line_cb = watch_line;
    w->bg.s.arg = w;
    w->bg.make_body = watch_body;
    w->bg.owner = w;
    int rc = bg_stream_start(&w->bg, e, "/v3/watch");
    if (rc < 0)
        goto out_free;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += e->timeout_ms / 1000;
    deadline.tv_nsec += (long)(e->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (w->created == 0 && pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == 0) {
    }
    rc = w->created == 1 ? 0 : w->created < 0 ? w->created : SPL_EETCD_UNAVAILABLE;
    pthread_mutex_unlock(&w->lock);
    if (rc < 0) {
        bg_stream_stop(&w->bg);
        etcd_fail(rc, "etcd: watch on '%s' was not established", key);
        goto out_free;
    }
    *out = w;
    return 0;
out_free:
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->key);
    free(w->range_end);
    free(w);
    return rc;
}

void spl_etcd_watch_stop(spl_etcd_watch *w)
{
    if (!w)
        return;
    bg_stream_stop(&w->bg);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->key);
    free(w->range_end);
    free(w);
}

/* ---- election ---- */

static int leader_key_parse(json_object *l, struct spl_etcd_leader_key *out)
{
    memset(out, 0, sizeof *out);
    json_object *n = json_get(l, "name"), *k = json_get(l, "key");
    if (!n || !k)
        return etcd_fail(SPL_EETCD_PROTO, "etcd campaign: no leader key in the answer");
    size_t nl, kl;
    char *name = b64_decode(json_object_get_string(n), &nl);
    char *key = b64_decode(json_object_get_string(k), &kl);
    int rc = 0;
    if (!name || !key || nl >= sizeof out->name || kl >= sizeof out->key)
        rc = etcd_fail(SPL_EETCD_PROTO, "etcd campaign: bad leader key");
    else {
        memcpy(out->name, name, nl + 1);
        memcpy(out->key, key, kl + 1);
        out->rev = json_i64(l, "rev");
        out->lease = json_i64(l, "lease");
    }
    free(name);
    free(key);
    return rc;
}

static json_object *leader_key_json(const struct spl_etcd_leader_key *lk)
{
    json_object *l = json_object_new_object();
    json_add_str(l, "name", lk->name);
    json_add_str(l, "key", lk->key);
    json_add_i64(l, "rev", lk->rev);
    json_add_i64(l, "lease", lk->lease);
    return l;
}

struct campaign_ctx {
    json_object *answer;
};

static int campaign_line(void *arg, json_object *o)
{
    struct campaign_ctx *c = arg;
    if (!c->answer)
        c->answer = json_object_get(o);
    return 0;
}

int spl_etcd_campaign(spl_etcd *e, const char *name, int64_t lease, const void *value,
                      size_t len, uint32_t timeout_ms, const atomic_bool *cancel,
                      struct spl_etcd_leader_key *out)
{
    ASSERT(e && name && lease && out);
    json_object *req = json_object_new_object();
    json_add_str(req, "name", name);
    json_add_i64(req, "lease", lease);
    json_add_bytes(req, "value", value ? value : "", len);
    char *body = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    struct campaign_ctx c = {0};
    struct stream s = {.e = e, .line_cb = campaign_line, .arg = &c, .cancel = cancel};
    s.h = curl_easy_init();
    if (!s.h || !body) {
        free(body);
        return -ENOMEM;
    }
    if (timeout_ms)
        s.deadline_ns = spl_mono_ns() + (uint64_t)timeout_ms * SPL_NS_PER_MS;
    int rc = SPL_EETCD_UNAVAILABLE;
    int start = atomic_load(&e->current);
    for (int attempt = 0; attempt < e->endpoint_count; attempt++) {
        int idx = (start + attempt) % e->endpoint_count;
        CURLcode cc = stream_run(&s, idx, "/v3/election/campaign", body);
        if (s.line.len > 0 && !c.answer) /* the answer is one object, maybe without "\n" */
            c.answer = json_tokener_parse(s.line.data);
        if (c.answer)
            break;
        if (cancel && atomic_load(cancel)) {
            rc = etcd_fail(-ECANCELED, "etcd campaign '%s': canceled", name);
            break;
        }
        if (s.deadline_ns && spl_mono_ns() >= s.deadline_ns) {
            rc = etcd_fail(-ETIMEDOUT, "etcd campaign '%s': not elected in %u ms", name,
                           timeout_ms);
            break;
        }
        rc = etcd_fail(SPL_EETCD_UNAVAILABLE, "etcd campaign on %s: %s", e->endpoints[idx],
                       curl_easy_strerror(cc));
        if (cc != CURLE_COULDNT_CONNECT)
            break;
        atomic_store(&e->current, (idx + 1) % e->endpoint_count);
    }
    if (c.answer) {
        json_object *l = json_get(c.answer, "leader");
        if (l)
            rc = leader_key_parse(l, out);
        else
            rc = map_gateway_error(c.answer, 0, "/v3/election/campaign");
        json_object_put(c.answer);
    }
    curl_easy_cleanup(s.h);
    free(s.line.data);
    free(body);
    return rc;
}

int spl_etcd_leader(spl_etcd *e, const char *name, struct spl_etcd_kv *out)
{
    json_object *req = json_object_new_object(), *resp;
    json_add_str(req, "name", name);
    int rc = etcd_call(e, "/v3/election/leader", req, true, &resp);
    json_object_put(req);
    if (rc < 0)
        return rc;
    json_object *kv = json_get(resp, "kv");
    rc = kv ? parse_kv(kv, out) : etcd_fail(SPL_EETCD_NOLEADER, "etcd: '%s' has no leader", name);
    json_object_put(resp);
    return rc;
}

int spl_etcd_proclaim(spl_etcd *e, const struct spl_etcd_leader_key *lk, const void *value,
                      size_t len)
{
    json_object *req = json_object_new_object(), *resp;
    json_object_object_add(req, "leader", leader_key_json(lk));
    json_add_bytes(req, "value", value ? value : "", len);
    int rc = etcd_call(e, "/v3/election/proclaim", req, false, &resp);
    json_object_put(req);
    if (rc == 0)
        json_object_put(resp);
    return rc;
}

int spl_etcd_resign(spl_etcd *e, const struct spl_etcd_leader_key *lk)
{
    json_object *req = json_object_new_object(), *resp;
    json_object_object_add(req, "leader", leader_key_json(lk));
    int rc = etcd_call(e, "/v3/election/resign", req, false, &resp);
    json_object_put(req);
    if (rc == 0)
        json_object_put(resp);
    return rc;
}

struct spl_etcd_observer {
    struct bg_stream bg;
    char *name;
    spl_etcd_observe_cb cb;
    void *arg;
};

static char *observe_body(void *owner)
{
    spl_etcd_observer *o = owner;
    json_object *req = json_object_new_object();
    json_add_str(req, "name", o->name);
    char *s = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    ASSERT(s != NULL);
    return s;
}

static int observe_line(void *arg, json_object *o)
{
    spl_etcd_observer *ob = arg;
    json_object *kv = json_get(json_get(o, "result"), "kv");
    if (!kv)
        return json_get(o, "error") ? -1 : 0;
    struct spl_etcd_kv leader;
    if (parse_kv(kv, &leader) < 0)
        return -1;
    ob->cb(ob->arg, &leader);
    spl_etcd_kv_free(&leader);
    return 0;
}

int spl_etcd_observe_start(spl_etcd *e, const char *name, spl_etcd_observe_cb cb, void *arg,
                           spl_etcd_observer **out)
{
    ASSERT(e && name && cb && out);
    spl_etcd_observer *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->name = strdup(name);
    o->cb = cb;
    o->arg = arg;
    o->bg.s.line_cb = observe_line;
    o->bg.s.arg = o;
    o->bg.make_body = observe_body;
    o->bg.owner = o;
    int rc = bg_stream_start(&o->bg, e, "/v3/election/observe");
    if (rc < 0) {
        free(o->name);
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void spl_etcd_observe_stop(spl_etcd_observer *o)
{
    if (!o)
        return;
    bg_stream_stop(&o->bg);
    free(o->name);
    free(o);
}
