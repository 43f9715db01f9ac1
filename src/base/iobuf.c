/*
 * iobuf.c - reference-counted buffer chains; see iobuf.h.
 *
 * A block is a header plus its bytes: internal blocks carry SPL_IOBUF_BLOCK_SIZE bytes in
 * the same allocation and are recycled through a bounded per-thread cache; external
 * blocks wrap caller memory and call the caller's free callback when the last slice
 * goes. Each slice holds one reference on its block.
 *
 * Writing into a block that is shared would change bytes another holder sees, so bytes
 * are only ever written past the end of the tail slice of an internal block whose count
 * is exactly 1: that slice is then the only reference anywhere, no other thread can gain
 * a new one (sharing needs a slice to share from), and the acquire load of the count
 * orders our writes after every former holder's reads (they dropped with release).
 *
 * Invariants (spl_iobuf_check): the slice lengths add up to len; only the last slice may
 * be empty (a block held by spl_iobuf_reserve until commit); every slice lies inside its
 * block; inline_slices is in use exactly when slice_cap <= SPL_IOBUF_INLINE_SLICES.
 */
#include "base/iobuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/limits.h"

struct spl_iobuf_block {
    _Atomic uint32_t refs;
    uint32_t cap;        /* bytes at data */
    bool external;       /* data is caller memory; never written, never cached */
    uint8_t *data;
    void (*free_cb)(void *ctx, void *data); /* external only; may be NULL */
    void *ctx;
    _Alignas(16) uint8_t bytes[]; /* internal blocks: the data itself */
};

SPL_STATIC_ASSERT(SPL_IOBUF_BLOCK_SIZE <= UINT32_MAX, "block offsets fit a slice");
SPL_STATIC_ASSERT(SPL_IOBUF_CACHE_BLOCKS_MAX > 0, "the cache holds something");

/* ---- per-thread block cache and statistics ---- */

struct spl_iobuf_cache {
    struct spl_iobuf_block *blocks[SPL_IOBUF_CACHE_BLOCKS_MAX];
    uint32_t count;
    bool registered; /* the exit destructor is armed for this thread */
    bool dead;       /* the thread is exiting: free blocks instead of caching them */
    uint64_t blocks_alloc;
    uint64_t blocks_cached;
};

static __thread struct spl_iobuf_cache spl_iobuf_tls;
static _Atomic uint64_t spl_iobuf_live;
static pthread_key_t spl_iobuf_key;
static pthread_once_t spl_iobuf_key_once = PTHREAD_ONCE_INIT;

static void spl_iobuf_cache_drain(struct spl_iobuf_cache *c)
{
    while (c->count > 0)
        free(c->blocks[--c->count]);
}

static void spl_iobuf_thread_exit(void *arg)
{
    struct spl_iobuf_cache *c = arg;
    c->dead = true;
    spl_iobuf_cache_drain(c);
}

static void spl_iobuf_key_create(void)
{
    int rc = pthread_key_create(&spl_iobuf_key, spl_iobuf_thread_exit);
    ASSERTF(rc == 0, "pthread_key_create: %d", rc);
}

static void spl_iobuf_cache_register(struct spl_iobuf_cache *c)
{
    pthread_once(&spl_iobuf_key_once, spl_iobuf_key_create);
    if (pthread_setspecific(spl_iobuf_key, c) == 0)
        c->registered = true;
}

static struct spl_iobuf_block *spl_iobuf_block_new(void)
{
    struct spl_iobuf_cache *c = &spl_iobuf_tls;
    struct spl_iobuf_block *blk;
    if (c->count > 0) {
        blk = c->blocks[--c->count];
        c->blocks_cached++;
    } else {
        blk = malloc(sizeof(*blk) + SPL_IOBUF_BLOCK_SIZE);
        if (!blk)
            return NULL;
        c->blocks_alloc++;
    }
    atomic_init(&blk->refs, 1);
    blk->cap = SPL_IOBUF_BLOCK_SIZE;
    blk->external = false;
    blk->data = blk->bytes;
    blk->free_cb = NULL;
    blk->ctx = NULL;
    spl_iobuf_live++;
    return blk;
}

static void spl_iobuf_block_free(struct spl_iobuf_block *blk)
{
    spl_iobuf_live--;
    if (blk->external) {
        if (blk->free_cb)
            blk->free_cb(blk->ctx, blk->data);
        free(blk);
        return;
    }
    struct spl_iobuf_cache *c = &spl_iobuf_tls;
    if (!c->dead && !c->registered)
        spl_iobuf_cache_register(c);
    if (c->dead || !c->registered || c->count >= SPL_IOBUF_CACHE_BLOCKS_MAX) {
        free(blk);
        return;
    }
    c->blocks[c->count++] = blk;
}

static void spl_iobuf_block_ref(struct spl_iobuf_block *blk)
{
    uint32_t old = atomic_fetch_add_explicit(&blk->refs, 1, memory_order_relaxed);
    ASSERT_CMP(old, >, 0);
}

static void spl_iobuf_block_unref(struct spl_iobuf_block *blk)
{
    uint32_t old = atomic_fetch_sub_explicit(&blk->refs, 1, memory_order_acq_rel);
    ASSERT_CMP(old, >, 0);
    if (old == 1)
        spl_iobuf_block_free(blk);
}

static bool spl_iobuf_block_exclusive(struct spl_iobuf_block *blk)
{
    return !blk->external && atomic_load_explicit(&blk->refs, memory_order_acquire) == 1;
}

void spl_iobuf_stats(struct spl_iobuf_stats *out)
{
    out->blocks_alloc = spl_iobuf_tls.blocks_alloc;
    out->blocks_cached = spl_iobuf_tls.blocks_cached;
    out->blocks_live = spl_iobuf_live;
}

/* ---- slice array ---- */

static struct spl_iobuf_slice *spl_iobuf_arr(struct spl_iobuf *b)
{
    return b->slice_cap > SPL_IOBUF_INLINE_SLICES ? b->heap : b->inline_slices;
}

const struct spl_iobuf_slice *spl_iobuf_slices(const struct spl_iobuf *b)
{
    return b->slice_cap > SPL_IOBUF_INLINE_SLICES ? b->heap : b->inline_slices;
}

void *spl_iobuf_slice_data(const struct spl_iobuf_slice *s)
{
    return s->block->data + s->offset;
}

/* Asserts the invariants listed at the top; returns true so DASSERT can wrap it. */
__attribute__((unused)) static bool spl_iobuf_check(const struct spl_iobuf *b)
{
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    uint64_t sum = 0;
    ASSERT_CMP(b->slice_count, <=, b->slice_cap);
    ASSERT(b->slice_cap >= SPL_IOBUF_INLINE_SLICES);
    ASSERT((b->slice_cap > SPL_IOBUF_INLINE_SLICES) == (b->heap != NULL));
    for (uint32_t i = 0; i < b->slice_count; i++) {
        ASSERT(s[i].len > 0 || i + 1 == b->slice_count);
        ASSERT_CMP((uint64_t)s[i].offset + s[i].len, <=, s[i].block->cap);
        sum += s[i].len;
    }
    ASSERT_CMP(sum, ==, b->len);
    return true;
}

/* Make room for extra more slices. -ENOMEM leaves b unchanged. */
static int spl_iobuf_reserve_slots(struct spl_iobuf *b, uint32_t extra)
{
    ASSERT_CMP(extra, <=, UINT32_MAX / 2 - b->slice_count);
    uint32_t need = b->slice_count + extra;
    if (need <= b->slice_cap)
        return 0;
    uint32_t cap = b->slice_cap * 2;
    if (cap < need)
        cap = need;
    struct spl_iobuf_slice *heap;
    if (b->heap) {
        heap = realloc(b->heap, (size_t)cap * sizeof(*heap));
        if (!heap)
            return -ENOMEM;
    } else {
        heap = malloc((size_t)cap * sizeof(*heap));
        if (!heap)
            return -ENOMEM;
        memcpy(heap, b->inline_slices, b->slice_count * sizeof(*heap));
    }
    b->heap = heap;
    b->slice_cap = cap;
    return 0;
}

/* Append a slice whose reference the caller hands over; a slot must be free. A slice
 * that continues the tail slice in the same block is merged and its reference dropped. */
static void spl_iobuf_push(struct spl_iobuf *b, struct spl_iobuf_block *blk, uint32_t offset,
                           uint32_t len)
{
    struct spl_iobuf_slice *s = spl_iobuf_arr(b);
    b->len += len;
    if (b->slice_count > 0) {
        struct spl_iobuf_slice *tail = &s[b->slice_count - 1];
        if (tail->block == blk && tail->offset + tail->len == offset) {
            tail->len += len;
            spl_iobuf_block_unref(blk);
            return;
        }
        if (tail->len == 0) { /* an uncommitted reserve: give it up */
            spl_iobuf_block_unref(tail->block);
            b->slice_count--;
        }
    }
    ASSERT_CMP(b->slice_count, <, b->slice_cap);
    s[b->slice_count++] = (struct spl_iobuf_slice){.block = blk, .offset = offset, .len = len};
}

/* Drop the first n slices of b (their references already dealt with). */
static void spl_iobuf_shift(struct spl_iobuf *b, uint32_t n)
{
    struct spl_iobuf_slice *s = spl_iobuf_arr(b);
    ASSERT_CMP(n, <=, b->slice_count);
    memmove(s, s + n, (b->slice_count - n) * sizeof(*s));
    b->slice_count -= n;
}

/* Bytes writable after the tail slice without touching anything another holder sees. */
static size_t spl_iobuf_tail_room(struct spl_iobuf *b)
{
    if (b->slice_count == 0)
        return 0;
    struct spl_iobuf_slice *tail = &spl_iobuf_arr(b)[b->slice_count - 1];
    if (!spl_iobuf_block_exclusive(tail->block))
        return 0;
    return tail->block->cap - tail->offset - tail->len;
}

/* Index of the slice holding byte offset (offset < b->len) and the offset inside it. */
static uint32_t spl_iobuf_find(const struct spl_iobuf *b, uint64_t offset, uint64_t *inner)
{
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    ASSERT_CMP(offset, <, b->len);
    uint32_t i = 0;
    while (offset >= s[i].len) {
        offset -= s[i].len;
        i++;
    }
    ASSERT_CMP(i, <, b->slice_count);
    *inner = offset;
    return i;
}

/* ---- public ---- */

void spl_iobuf_init(struct spl_iobuf *b)
{
    b->len = 0;
    b->slice_count = 0;
    b->slice_cap = SPL_IOBUF_INLINE_SLICES;
    b->heap = NULL;
}

void spl_iobuf_reset(struct spl_iobuf *b)
{
    struct spl_iobuf_slice *s = spl_iobuf_arr(b);
    DASSERT(spl_iobuf_check(b));
    for (uint32_t i = 0; i < b->slice_count; i++)
        spl_iobuf_block_unref(s[i].block);
    free(b->heap);
    spl_iobuf_init(b);
}

void spl_iobuf_move(struct spl_iobuf *dst, struct spl_iobuf *src)
{
    ASSERT(dst != src);
    ASSERT_CMP(dst->len, ==, 0);
    spl_iobuf_reset(dst);
    *dst = *src;
    spl_iobuf_init(src);
    DASSERT(spl_iobuf_check(dst));
}

int spl_iobuf_append(struct spl_iobuf *b, const void *data, size_t len)
{
    ASSERT(data != NULL || len == 0);
    size_t room = spl_iobuf_tail_room(b);
    size_t first = len < room ? len : room;
    size_t rest = len - first;
    size_t nblocks = (rest + SPL_IOBUF_BLOCK_SIZE - 1) / SPL_IOBUF_BLOCK_SIZE;
    ASSERT_CMP(nblocks, <, UINT32_MAX / 4);
    uint32_t old_count = b->slice_count;
    uint64_t old_len = b->len;
    int rc = spl_iobuf_reserve_slots(b, (uint32_t)nblocks);
    if (rc < 0)
        return rc;
    /* Fill the tail first: it may be an empty reserved slice, which must not be left
     * empty in the middle of the chain. */
    struct spl_iobuf_slice *tail = first > 0 ? &spl_iobuf_arr(b)[old_count - 1] : NULL;
    if (tail) {
        memcpy(tail->block->data + tail->offset + tail->len, data, first);
        tail->len += (uint32_t)first;
        b->len += first;
    }
    const uint8_t *p = (const uint8_t *)data + first;
    for (size_t i = 0; i < nblocks; i++) {
        struct spl_iobuf_block *blk = spl_iobuf_block_new();
        if (!blk)
            goto out_drop_new;
        uint32_t n = rest < SPL_IOBUF_BLOCK_SIZE ? (uint32_t)rest : SPL_IOBUF_BLOCK_SIZE;
        memcpy(blk->data, p, n);
        spl_iobuf_push(b, blk, 0, n);
        p += n;
        rest -= n;
    }
    DASSERT(spl_iobuf_check(b));
    return 0;

out_drop_new:
    for (uint32_t i = old_count; i < b->slice_count; i++)
        spl_iobuf_block_unref(spl_iobuf_arr(b)[i].block);
    b->slice_count = old_count;
    if (tail)
        tail->len -= (uint32_t)first;
    b->len = old_len;
    return -ENOMEM;
}

int spl_iobuf_append_ref(struct spl_iobuf *dst, const struct spl_iobuf *src, uint64_t offset,
                         uint64_t len)
{
    ASSERT(offset <= src->len && len <= src->len - offset);
    if (len == 0)
        return 0;
    uint64_t inner;
    uint32_t first = spl_iobuf_find(src, offset, &inner);
    uint64_t last_inner;
    uint32_t last = spl_iobuf_find(src, offset + len - 1, &last_inner);
    int rc = spl_iobuf_reserve_slots(dst, last - first + 1);
    if (rc < 0)
        return rc;
    /* dst may be src: re-read the array each time and stop at the precomputed last. */
    for (uint32_t i = first; i <= last; i++) {
        struct spl_iobuf_slice s = spl_iobuf_slices(src)[i];
        uint64_t from = i == first ? inner : 0;
        uint64_t to = i == last ? last_inner + 1 : s.len;
        spl_iobuf_block_ref(s.block);
        spl_iobuf_push(dst, s.block, s.offset + (uint32_t)from, (uint32_t)(to - from));
    }
    DASSERT(spl_iobuf_check(dst));
    return 0;
}

int spl_iobuf_append_external(struct spl_iobuf *b, void *data, size_t len,
                              void (*free_cb)(void *ctx, void *data), void *ctx)
{
    ASSERT(data != NULL);
    ASSERT_CMP(len, <=, UINT32_MAX);
    if (len == 0) {
        if (free_cb)
            free_cb(ctx, data);
        return 0;
    }
    int rc = spl_iobuf_reserve_slots(b, 1);
    if (rc < 0)
        return rc;
    struct spl_iobuf_block *blk = malloc(sizeof(*blk));
    if (!blk)
        return -ENOMEM;
    atomic_init(&blk->refs, 1);
    blk->cap = (uint32_t)len;
    blk->external = true;
    blk->data = data;
    blk->free_cb = free_cb;
    blk->ctx = ctx;
    spl_iobuf_live++;
    spl_iobuf_push(b, blk, 0, (uint32_t)len);
    DASSERT(spl_iobuf_check(b));
    return 0;
}

int spl_iobuf_reserve(struct spl_iobuf *b, size_t min_len, void **ptr, size_t *avail)
{
    ASSERT_CMP(min_len, <=, SPL_IOBUF_BLOCK_SIZE);
    size_t need = min_len > 0 ? min_len : 1;
    size_t room = spl_iobuf_tail_room(b);
    if (room < need) {
        int rc = spl_iobuf_reserve_slots(b, 1);
        if (rc < 0)
            return rc;
        struct spl_iobuf_block *blk = spl_iobuf_block_new();
        if (!blk)
            return -ENOMEM;
        spl_iobuf_push(b, blk, 0, 0);
        room = blk->cap;
    }
    struct spl_iobuf_slice *tail = &spl_iobuf_arr(b)[b->slice_count - 1];
    *ptr = tail->block->data + tail->offset + tail->len;
    *avail = room;
    DASSERT(spl_iobuf_check(b));
    return 0;
}

void spl_iobuf_commit(struct spl_iobuf *b, size_t n)
{
    if (n == 0)
        return;
    ASSERTF(b->slice_count > 0, "commit without reserve");
    struct spl_iobuf_slice *tail = &spl_iobuf_arr(b)[b->slice_count - 1];
    ASSERTF(spl_iobuf_block_exclusive(tail->block), "commit without reserve");
    ASSERT_CMP(n, <=, (size_t)(tail->block->cap - tail->offset - tail->len));
    tail->len += (uint32_t)n;
    b->len += n;
    DASSERT(spl_iobuf_check(b));
}

void spl_iobuf_consume(struct spl_iobuf *b, uint64_t n)
{
    ASSERTF(n <= b->len, "consume %llu of %llu bytes", (unsigned long long)n,
            (unsigned long long)b->len);
    struct spl_iobuf_slice *s = spl_iobuf_arr(b);
    uint32_t dropped = 0;
    b->len -= n;
    while (n > 0) {
        struct spl_iobuf_slice *head = &s[dropped];
        if (n < head->len) {
            head->offset += (uint32_t)n;
            head->len -= (uint32_t)n;
            break;
        }
        n -= head->len;
        spl_iobuf_block_unref(head->block);
        dropped++;
    }
    spl_iobuf_shift(b, dropped);
    DASSERT(spl_iobuf_check(b));
}

int spl_iobuf_cut(struct spl_iobuf *b, uint64_t n, struct spl_iobuf *out)
{
    ASSERT(b != out);
    ASSERTF(n <= b->len, "cut %llu of %llu bytes", (unsigned long long)n,
            (unsigned long long)b->len);
    if (n == 0)
        return 0;
    uint64_t inner;
    uint32_t last = spl_iobuf_find(b, n - 1, &inner);
    int rc = spl_iobuf_reserve_slots(out, last + 1);
    if (rc < 0)
        return rc;
    struct spl_iobuf_slice *s = spl_iobuf_arr(b);
    for (uint32_t i = 0; i < last; i++)
        spl_iobuf_push(out, s[i].block, s[i].offset, s[i].len); /* hands the ref over */
    struct spl_iobuf_slice *tail = &s[last];
    uint32_t part = (uint32_t)inner + 1;
    b->len -= n;
    if (part == tail->len) {
        spl_iobuf_push(out, tail->block, tail->offset, part);
        spl_iobuf_shift(b, last + 1);
    } else {
        spl_iobuf_block_ref(tail->block);
        spl_iobuf_push(out, tail->block, tail->offset, part);
        tail->offset += part;
        tail->len -= part;
        spl_iobuf_shift(b, last);
    }
    DASSERT(spl_iobuf_check(b));
    DASSERT(spl_iobuf_check(out));
    return 0;
}

size_t spl_iobuf_copy_out(const struct spl_iobuf *b, uint64_t offset, void *dst, size_t len)
{
    ASSERT(dst != NULL || len == 0);
    if (offset >= b->len || len == 0)
        return 0;
    if (len > b->len - offset)
        len = (size_t)(b->len - offset);
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    uint64_t inner;
    uint32_t i = spl_iobuf_find(b, offset, &inner);
    uint8_t *out = dst;
    size_t done = 0;
    while (done < len) {
        size_t n = s[i].len - (size_t)inner;
        if (n > len - done)
            n = len - done;
        memcpy(out + done, s[i].block->data + s[i].offset + inner, n);
        done += n;
        inner = 0;
        i++;
    }
    return done;
}

const void *spl_iobuf_peek(const struct spl_iobuf *b, uint64_t offset, size_t len,
                           void *scratch)
{
    static const uint8_t empty[1];
    if (offset > b->len || len > b->len - offset)
        return NULL;
    if (len == 0)
        return empty;
    uint64_t inner;
    uint32_t i = spl_iobuf_find(b, offset, &inner);
    const struct spl_iobuf_slice *s = &spl_iobuf_slices(b)[i];
    if (inner + len <= s->len)
        return s->block->data + s->offset + inner;
    ASSERTF(scratch != NULL, "peek across slices needs scratch");
    size_t n = spl_iobuf_copy_out(b, offset, scratch, len);
    ASSERT_CMP(n, ==, len);
    return scratch;
}

int spl_iobuf_to_iovec(const struct spl_iobuf *b, uint64_t offset, struct iovec *iov,
                       int iov_max, uint64_t *bytes)
{
    ASSERT(iov_max >= 0);
    ASSERT_CMP(offset, <=, b->len);
    *bytes = 0;
    if (offset == b->len || iov_max == 0)
        return 0;
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    uint64_t inner;
    uint32_t i = spl_iobuf_find(b, offset, &inner);
    int used = 0;
    for (; i < b->slice_count && used < iov_max; i++) {
        if (s[i].len == 0)
            continue;
        iov[used].iov_base = s[i].block->data + s[i].offset + inner;
        iov[used].iov_len = s[i].len - (size_t)inner;
        *bytes += iov[used].iov_len;
        used++;
        inner = 0;
    }
    return used;
}

uint32_t spl_iobuf_crc32c(const struct spl_iobuf *b, uint32_t crc, uint64_t offset,
                          uint64_t len)
{
    ASSERT(offset <= b->len && len <= b->len - offset);
    if (len == 0)
        return crc;
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    uint64_t inner;
    uint32_t i = spl_iobuf_find(b, offset, &inner);
    while (len > 0) {
        uint64_t n = s[i].len - inner;
        if (n > len)
            n = len;
        crc = spl_crc32c(crc, s[i].block->data + s[i].offset + inner, (size_t)n);
        len -= n;
        inner = 0;
        i++;
    }
    return crc;
}

bool spl_iobuf_equal(const struct spl_iobuf *a, const struct spl_iobuf *b)
{
    if (a->len != b->len)
        return false;
    const struct spl_iobuf_slice *sa = spl_iobuf_slices(a);
    const struct spl_iobuf_slice *sb = spl_iobuf_slices(b);
    uint32_t ia = 0, ib = 0;
    uint32_t oa = 0, ob = 0; /* offsets inside the current slices */
    uint64_t left = a->len;
    while (left > 0) {
        while (oa == sa[ia].len) {
            ia++;
            oa = 0;
        }
        while (ob == sb[ib].len) {
            ib++;
            ob = 0;
        }
        uint32_t n = sa[ia].len - oa;
        if (n > sb[ib].len - ob)
            n = sb[ib].len - ob;
        if (memcmp(sa[ia].block->data + sa[ia].offset + oa,
                   sb[ib].block->data + sb[ib].offset + ob, n) != 0)
            return false;
        oa += n;
        ob += n;
        left -= n;
    }
    return true;
}
