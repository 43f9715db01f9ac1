/*
 * kvfsm.c - the test key-value FSM (kvfsm.h).
 *
 * Entry payload: u8 op, u8 0, u16 key_len, u32 value_len, key, value (little-endian).
 * Range record: u32 magic "SPKV", u32 CRC32C of bytes [8, 24 + key_len + value_len),
 * u64 index, u16 key_len, u8 op, u8 0, u32 value_len, key, value, zero padding to 8.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftnode/kvfsm.h"

#define KV_MAGIC 0x564b5053u /* "SPKV" */
#define KV_REC_HDR 24
#define KV_PAYLOAD_HDR 8
#define KV_VALUE_MAX (1u << 30)
#define KV_SCAN_BUF (1u << 20)

struct kv_item {
    struct kv_item *next;
    uint64_t hash;
    uint64_t value_off; /* in the range file */
    uint32_t value_len;
    uint16_t key_len;
    uint8_t key[];
};

struct kv_range {
    pthread_mutex_t mu;
    int fd;
    uint64_t size;
    struct kv_item **buckets;
    uint64_t bucket_count; /* power of two */
    uint64_t item_count;
};

struct spl_kvfsm {
    char dir[600];
    atomic_uint_fast64_t applied;
    struct kv_range ranges[SPL_KVFSM_RANGES];
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- payloads ---- */

int spl_kvfsm_encode(enum spl_kvfsm_op op, const void *key, size_t key_len,
                     struct spl_iobuf *value, struct spl_iobuf *out)
{
    uint64_t vlen = value ? spl_iobuf_len(value) : 0;
    if (key_len == 0 || key_len > SPL_KVFSM_KEY_MAX || vlen > KV_VALUE_MAX ||
        (op != SPL_KVFSM_PUT && op != SPL_KVFSM_DELETE) || (op == SPL_KVFSM_DELETE && vlen))
        return SPL_EINVAL_ARG;
    uint8_t hdr[KV_PAYLOAD_HDR + SPL_KVFSM_KEY_MAX];
    hdr[0] = (uint8_t)op;
    hdr[1] = 0;
    put16(hdr + 2, (uint16_t)key_len);
    put32(hdr + 4, (uint32_t)vlen);
    memcpy(hdr + KV_PAYLOAD_HDR, key, key_len);
    int rc = spl_iobuf_append(out, hdr, KV_PAYLOAD_HDR + key_len);
    if (rc == 0 && vlen) {
        rc = spl_iobuf_append_ref(out, value, 0, vlen);
        if (rc == 0)
            spl_iobuf_reset(value);
    }
    return rc;
}

/* Parse a payload's header and key into hdr (which has room for the longest key). */
static int payload_parse(const struct spl_iobuf *data, uint8_t *hdr, uint8_t *op,
                         uint16_t *key_len, uint32_t *value_len)
{
    uint64_t len = spl_iobuf_len(data);
    if (len < KV_PAYLOAD_HDR || spl_iobuf_copy_out(data, 0, hdr, KV_PAYLOAD_HDR) != KV_PAYLOAD_HDR)
        return SPL_ECORRUPT;
    *op = hdr[0];
    *key_len = get16(hdr + 2);
    *value_len = get32(hdr + 4);
    if ((*op != SPL_KVFSM_PUT && *op != SPL_KVFSM_DELETE) || *key_len == 0 ||
        *key_len > SPL_KVFSM_KEY_MAX || len != KV_PAYLOAD_HDR + (uint64_t)*key_len + *value_len)
        return SPL_ECORRUPT;
    spl_iobuf_copy_out(data, KV_PAYLOAD_HDR, hdr + KV_PAYLOAD_HDR, *key_len);
    return 0;
}

/* ---- the in-memory index (range lock held) ---- */

static struct kv_item **item_find(struct kv_range *r, const void *key, uint16_t key_len,
                                  uint64_t hash)
{
    struct kv_item **pp = &r->buckets[hash & (r->bucket_count - 1)];
    while (*pp && !((*pp)->hash == hash && (*pp)->key_len == key_len &&
                    memcmp((*pp)->key, key, key_len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void index_grow(struct kv_range *r)
{
    uint64_t n = r->bucket_count * 2;
    struct kv_item **b = calloc(n, sizeof(*b));
    ASSERT(b != NULL);
    for (uint64_t i = 0; i < r->bucket_count; i++)
        while (r->buckets[i]) {
            struct kv_item *it = r->buckets[i];
            r->buckets[i] = it->next;
            it->next = b[it->hash & (n - 1)];
            b[it->hash & (n - 1)] = it;
        }
    free(r->buckets);
    r->buckets = b;
    r->bucket_count = n;
}

static void index_apply(struct kv_range *r, uint8_t op, const uint8_t *key, uint16_t key_len,
                        uint64_t value_off, uint32_t value_len)
{
    uint64_t hash = hash_bytes(key, key_len);
    struct kv_item **pp = item_find(r, key, key_len, hash);
    if (op == SPL_KVFSM_DELETE) {
        if (*pp) {
            struct kv_item *it = *pp;
            *pp = it->next;
            free(it);
            r->item_count--;
        }
        return;
    }
    if (!*pp) {
        struct kv_item *it = calloc(1, sizeof(*it) + key_len);
        ASSERT(it != NULL);
        it->hash = hash;
        it->key_len = key_len;
        memcpy(it->key, key, key_len);
        *pp = it;
        r->item_count++;
    }
    (*pp)->value_off = value_off;
    (*pp)->value_len = value_len;
    if (r->item_count > r->bucket_count * 2)
        index_grow(r);
}

static void index_clear(struct kv_range *r)
{
    for (uint64_t i = 0; i < r->bucket_count; i++)
        while (r->buckets[i]) {
            struct kv_item *it = r->buckets[i];
            r->buckets[i] = it->next;
            free(it);
        }
    r->item_count = 0;
}

/* ---- apply ---- */

static uint64_t kv_apply_key(void *ctx, const struct spl_iobuf *data)
{
    uint8_t hdr[KV_PAYLOAD_HDR + SPL_KVFSM_KEY_MAX];
    uint8_t op;
    uint16_t klen;
    uint32_t vlen;
    (void)ctx;
    if (payload_parse(data, hdr, &op, &klen, &vlen) != 0)
        return 0;
    return hash_bytes(hdr + KV_PAYLOAD_HDR, klen);
}

static int kv_apply_one(struct spl_kvfsm *kv, const struct spl_fsm_entry *e)
{
    uint8_t hdr[KV_PAYLOAD_HDR + SPL_KVFSM_KEY_MAX];
    uint8_t op;
    uint16_t klen;
    uint32_t vlen;
    int rc = payload_parse(e->data, hdr, &op, &klen, &vlen);
    if (rc != 0)
        return rc;
    const uint8_t *key = hdr + KV_PAYLOAD_HDR;
    struct kv_range *r = &kv->ranges[hash_bytes(key, klen) % SPL_KVFSM_RANGES];
    uint8_t rh[KV_REC_HDR];
    put32(rh, KV_MAGIC);
    put64(rh + 8, e->index);
    put16(rh + 16, klen);
    rh[18] = op;
    rh[19] = 0;
    put32(rh + 20, vlen);
    uint64_t body = (uint64_t)KV_REC_HDR + klen + vlen;
    uint64_t padded = (body + 7) & ~7ull;
    static const uint8_t zeros[8];
    uint32_t crc = spl_crc32c(0, rh + 8, KV_REC_HDR - 8);
    crc = spl_crc32c(crc, key, klen);
    crc = spl_iobuf_crc32c(e->data, crc, KV_PAYLOAD_HDR + klen, vlen);
    put32(rh + 4, crc);

    struct iovec iov[64];
    int n = 0;
    iov[n++] = (struct iovec){rh, KV_REC_HDR};
    iov[n++] = (struct iovec){(void *)key, klen};
    uint64_t bytes, off = KV_PAYLOAD_HDR + klen, end = spl_iobuf_len(e->data);
    pthread_mutex_lock(&r->mu);
    uint64_t at = r->size, pos = at;
    for (;;) {
        if (off < end) {
            n += spl_iobuf_to_iovec(e->data, off, iov + n, 63 - n, &bytes);
            off += bytes;
        }
        bool last = off >= end;
        if (last && padded > body)
            iov[n++] = (struct iovec){(void *)zeros, padded - body};
        uint64_t want = 0;
        for (int i = 0; i < n; i++)
            want += iov[i].iov_len;
        ssize_t w = pwritev(r->fd, iov, n, (off_t)pos);
        ASSERTF(w == (ssize_t)want, "kvfsm: range write: %s",
                w < 0 ? spl_strerror(-errno) : "short");
        pos += want;
        n = 0;
        if (last)
            break;
    }
    ASSERTF(pos == at + padded, "kvfsm: short range write");
    r->size = at + padded;
    index_apply(r, op, key, klen, at + KV_REC_HDR + klen, vlen);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void kv_apply(void *ctx, struct spl_fsm_entry *entries, uint32_t count)
{
    struct spl_kvfsm *kv = ctx;
    for (uint32_t i = 0; i < count; i++) {
        entries[i].result = kv_apply_one(kv, &entries[i]);
        uint64_t cur = atomic_load(&kv->applied);
        while (entries[i].index > cur &&
               !atomic_compare_exchange_weak(&kv->applied, &cur, entries[i].index))
            ;
    }
}

/* ---- load ---- */

static void range_close(struct kv_range *r)
{
    index_clear(r);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->size = 0;
}

/* Scan a range file, building its index; cut it at the first invalid record. */
static int range_scan(struct kv_range *r, uint64_t *max_index)
{
    off_t end = lseek(r->fd, 0, SEEK_END);
    if (end < 0)
        return -errno;
    uint8_t *buf = malloc(KV_SCAN_BUF);
    if (!buf)
        return -ENOMEM;
    uint64_t pos = 0, size = (uint64_t)end;
    uint8_t *rec = NULL;
    size_t rec_cap = 0;
    while (pos + KV_REC_HDR <= size) {
        uint8_t rh[KV_REC_HDR];
        if (pread(r->fd, rh, KV_REC_HDR, (off_t)pos) != KV_REC_HDR || get32(rh) != KV_MAGIC)
            break;
        uint16_t klen = get16(rh + 16);
        uint32_t vlen = get32(rh + 20);
        uint8_t op = rh[18];
        uint64_t body = (uint64_t)KV_REC_HDR + klen + vlen, padded = (body + 7) & ~7ull;
        if (klen == 0 || klen > SPL_KVFSM_KEY_MAX || vlen > KV_VALUE_MAX || pos + padded > size ||
            (op != SPL_KVFSM_PUT && op != SPL_KVFSM_DELETE))
            break;
        if (body > rec_cap) {
            free(rec);
            rec_cap = body;
            rec = malloc(rec_cap);
            ASSERT(rec != NULL);
        }
        if (pread(r->fd, rec, body, (off_t)pos) != (ssize_t)body ||
            spl_crc32c(0, rec + 8, body - 8) != get32(rec + 4))
            break;
        uint64_t index = get64(rec + 8);
        if (index > *max_index)
            *max_index = index;
        index_apply(r, op, rec + KV_REC_HDR, klen, pos + KV_REC_HDR + klen, vlen);
        pos += padded;
    }
    free(rec);
    free(buf);
    if (pos < size) {
        LOG_INFO("kvfsm", "range file cut at %llu of %llu bytes", (unsigned long long)pos,
                 (unsigned long long)size);
        if (ftruncate(r->fd, (off_t)pos) != 0)
            return -errno;
    }
    r->size = pos;
    return 0;
}

static int kv_load(void *ctx, const char *dir, const struct spl_fsm_snapshot *snap)
{
    struct spl_kvfsm *kv = ctx;
    snprintf(kv->dir, sizeof(kv->dir), "%s", dir);
    uint64_t max_index = snap->index;
    for (int i = 0; i < SPL_KVFSM_RANGES; i++) {
        struct kv_range *r = &kv->ranges[i];
        pthread_mutex_lock(&r->mu);
        range_close(r);
        char path[700];
        snprintf(path, sizeof(path), "%s/r%02d.kv", dir, i);
        r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        int rc = r->fd < 0 ? -errno : range_scan(r, &max_index);
        pthread_mutex_unlock(&r->mu);
        if (rc != 0)
            return rc;
    }
    atomic_store(&kv->applied, snap->index);
    return 0;
}

/* ---- snapshots ---- */

static int kv_save_snapshot(void *ctx, uint64_t index, struct spl_fsm_snapshot *out)
{
    struct spl_kvfsm *kv = ctx;
    (void)index;
    for (int i = 0; i < SPL_KVFSM_RANGES; i++) {
        struct kv_range *r = &kv->ranges[i];
        pthread_mutex_lock(&r->mu);
        uint64_t size = r->size;
        pthread_mutex_unlock(&r->mu);
        if (fdatasync(r->fd) != 0)
            return -errno;
        char name[16];
        snprintf(name, sizeof(name), "r%02d.kv", i);
        int rc = spl_fsm_snapshot_add_file(out, name, size);
        if (rc != 0)
            return rc;
    }
    static const char blob[] = "kvfsm v1 ranges=16";
    return spl_iobuf_append(&out->blob, blob, sizeof(blob) - 1);
}

static void kv_close(void *ctx)
{
    struct spl_kvfsm *kv = ctx;
    for (int i = 0; i < SPL_KVFSM_RANGES; i++) {
        range_close(&kv->ranges[i]);
        free(kv->ranges[i].buckets);
        pthread_mutex_destroy(&kv->ranges[i].mu);
    }
    free(kv);
}

static const struct spl_fsm_ops kv_ops = {
    .load = kv_load,
    .apply_key = kv_apply_key,
    .apply = kv_apply,
    .save_snapshot = kv_save_snapshot,
    .close = kv_close,
};

int spl_kvfsm_create(struct spl_kvfsm **out)
{
    struct spl_kvfsm *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return -ENOMEM;
    for (int i = 0; i < SPL_KVFSM_RANGES; i++) {
        struct kv_range *r = &kv->ranges[i];
        pthread_mutex_init(&r->mu, NULL);
        r->fd = -1;
        r->bucket_count = 64;
        r->buckets = calloc(r->bucket_count, sizeof(*r->buckets));
        if (!r->buckets) {
            kv_close(kv);
            return -ENOMEM;
        }
    }
    *out = kv;
    return 0;
}

struct spl_fsm spl_kvfsm_fsm(struct spl_kvfsm *kv)
{
    return (struct spl_fsm){.ops = &kv_ops, .ctx = kv};
}

uint64_t spl_kvfsm_applied(struct spl_kvfsm *kv) { return atomic_load(&kv->applied); }

/* ---- reads ---- */

static void free_cb(void *ctx, void *data)
{
    (void)ctx;
    free(data);
}

static int read_value(struct kv_range *r, const struct kv_item *it, struct spl_iobuf *out)
{
    if (it->value_len == 0)
        return 0;
    void *buf = malloc(it->value_len);
    if (!buf)
        return -ENOMEM;
    ssize_t n = pread(r->fd, buf, it->value_len, (off_t)it->value_off);
    int rc = n == (ssize_t)it->value_len ? 0 : (n < 0 ? -errno : -EIO);
    if (rc == 0)
        rc = spl_iobuf_append_external(out, buf, it->value_len, free_cb, NULL);
    if (rc != 0)
        free(buf);
    return rc;
}

int spl_kvfsm_get(struct spl_kvfsm *kv, const void *key, size_t key_len,
                  struct spl_iobuf *value_out)
{
    if (key_len == 0 || key_len > SPL_KVFSM_KEY_MAX)
        return SPL_EINVAL_ARG;
    uint64_t hash = hash_bytes(key, key_len);
    struct kv_range *r = &kv->ranges[hash % SPL_KVFSM_RANGES];
    pthread_mutex_lock(&r->mu);
    struct kv_item **pp = item_find(r, key, (uint16_t)key_len, hash);
    int rc = -ENOENT;
    if (*pp && (*pp)->value_len == 0)
        rc = 0;
    else if (*pp) {
        void *buf = malloc((*pp)->value_len);
        ssize_t n = buf ? pread(r->fd, buf, (*pp)->value_len, (off_t)(*pp)->value_off) : -1;
        rc = n == (ssize_t)(*pp)->value_len ? 0 : -EIO;
        if (rc == 0)
            rc = spl_iobuf_append_external(value_out, buf, (*pp)->value_len, free_cb, NULL);
        if (rc != 0)
            free(buf);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

uint64_t spl_kvfsm_digest(struct spl_kvfsm *kv, uint64_t *key_count_out)
{
    uint64_t digest = 0, count = 0;
    for (int i = 0; i < SPL_KVFSM_RANGES; i++) {
        struct kv_range *r = &kv->ranges[i];
        pthread_mutex_lock(&r->mu);
        for (uint64_t b = 0; b < r->bucket_count; b++)
            for (struct kv_item *it = r->buckets[b]; it; it = it->next) {
                struct spl_iobuf v;
                spl_iobuf_init(&v);
                ASSERT(read_value(r, it, &v) == 0);
                uint32_t vcrc = spl_iobuf_crc32c(&v, 0, 0, spl_iobuf_len(&v));
                spl_iobuf_reset(&v);
                digest ^= hash_bytes(it->key, it->key_len) * 31 + vcrc * 0x9e3779b97f4a7c15ull +
                          it->value_len;
                count++;
            }
        pthread_mutex_unlock(&r->mu);
    }
    if (key_count_out)
        *key_count_out = count;
    return digest;
}
