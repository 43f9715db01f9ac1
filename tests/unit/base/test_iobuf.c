/* test_iobuf.c - buffer chains: block boundaries, sharing, external blocks, the block
 * cache, a randomized model test against a flat byte array, and two threads passing
 * slices to each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/iobuf.h"
#include "base/limits.h"
#include "base/random.h"

#define BS ((size_t)SPL_IOBUF_BLOCK_SIZE)

static uint8_t pattern_at(uint64_t pos) { return (uint8_t)(pos * 131u + (pos >> 9) + 7u); }

static void fill_pattern(uint8_t *p, uint64_t start, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_at(start + i);
}

/* The whole chain as a fresh malloc'd flat array (checked against len). */
static uint8_t *flatten(const struct spl_iobuf *b)
{
    size_t len = (size_t)spl_iobuf_len(b);
    uint8_t *flat = malloc(len ? len : 1);
    assert_non_null(flat);
    assert_int_equal(spl_iobuf_copy_out(b, 0, flat, len), len);
    return flat;
}

static void assert_chain_is(const struct spl_iobuf *b, const uint8_t *expect, size_t len)
{
    assert_int_equal(spl_iobuf_len(b), len);
    uint8_t *flat = flatten(b);
    assert_memory_equal(flat, expect, len);
    free(flat);
    /* the slice view agrees with copy_out */
    const struct spl_iobuf_slice *s = spl_iobuf_slices(b);
    size_t pos = 0;
    for (uint32_t i = 0; i < b->slice_count; i++) {
        assert_memory_equal(spl_iobuf_slice_data(&s[i]), expect + pos, s[i].len);
        pos += s[i].len;
    }
    assert_int_equal(pos, len);
}

static uint64_t live_blocks(void)
{
    struct spl_iobuf_stats st;
    spl_iobuf_stats(&st);
    return st.blocks_live;
}

static void test_append_small_in_place(void **state)
{
    (void)state;
    uint64_t live0 = live_blocks();
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    assert_int_equal(spl_iobuf_len(&b), 0);
    assert_int_equal(spl_iobuf_append(&b, "hello ", 6), 0);
    assert_int_equal(spl_iobuf_append(&b, "world", 5), 0);
    assert_int_equal(b.slice_count, 1); /* second append went into the same block */
    assert_chain_is(&b, (const uint8_t *)"hello world", 11);
    assert_int_equal(live_blocks(), live0 + 1);
    spl_iobuf_reset(&b);
    assert_int_equal(spl_iobuf_len(&b), 0);
    assert_int_equal(b.slice_count, 0);
    assert_int_equal(live_blocks(), live0);
}

static void test_append_across_blocks(void **state)
{
    (void)state;
    size_t len = 3 * BS + 100;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    fill_pattern(data, 0, len);
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    assert_int_equal(spl_iobuf_append(&b, data, 10), 0);
    assert_int_equal(spl_iobuf_append(&b, data + 10, len - 10), 0);
    assert_int_equal(b.slice_count, 4);
    assert_chain_is(&b, data, len);

    /* copy_out at a block boundary and past the end */
    uint8_t out[300];
    assert_int_equal(spl_iobuf_copy_out(&b, BS - 150, out, 300), 300);
    assert_memory_equal(out, data + BS - 150, 300);
    assert_int_equal(spl_iobuf_copy_out(&b, len - 50, out, 300), 50);
    assert_memory_equal(out, data + len - 50, 50);
    assert_int_equal(spl_iobuf_copy_out(&b, len, out, 300), 0);

    /* consume across a boundary: the first block goes, the second starts mid-way */
    spl_iobuf_consume(&b, BS + 7);
    assert_chain_is(&b, data + BS + 7, len - BS - 7);
    assert_int_equal(b.slice_count, 3);

    /* cut across a boundary */
    struct spl_iobuf out_buf;
    spl_iobuf_init(&out_buf);
    assert_int_equal(spl_iobuf_cut(&b, BS, &out_buf), 0);
    assert_chain_is(&out_buf, data + BS + 7, BS);
    assert_chain_is(&b, data + 2 * BS + 7, len - 2 * BS - 7);

    /* cut of everything that is left, appended after the earlier part */
    assert_int_equal(spl_iobuf_cut(&b, spl_iobuf_len(&b), &out_buf), 0);
    assert_int_equal(spl_iobuf_len(&b), 0);
    assert_chain_is(&out_buf, data + BS + 7, len - BS - 7);
    spl_iobuf_consume(&out_buf, spl_iobuf_len(&out_buf));
    assert_int_equal(out_buf.slice_count, 0);
    spl_iobuf_reset(&out_buf);
    spl_iobuf_reset(&b);
    free(data);
}

static void test_many_slices_grow_to_heap(void **state)
{
    (void)state;
    uint64_t live0 = live_blocks();
    struct spl_iobuf src, dst;
    spl_iobuf_init(&src);
    spl_iobuf_init(&dst);
    uint8_t expect[100];
    fill_pattern(expect, 0, sizeof(expect));
    assert_int_equal(spl_iobuf_append(&src, expect, sizeof(expect)), 0);
    /* Interleave: each ref of src is followed by a byte appended to dst, so no merge. */
    uint8_t flat[200];
    size_t flen = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(spl_iobuf_append_ref(&dst, &src, (uint64_t)i * 3, 3), 0);
        memcpy(flat + flen, expect + i * 3, 3);
        flen += 3;
        uint8_t x = (uint8_t)(0xA0 + i);
        assert_int_equal(spl_iobuf_append(&dst, &x, 1), 0);
        flat[flen++] = x;
    }
    assert_true(dst.slice_cap > SPL_IOBUF_INLINE_SLICES);
    assert_non_null(dst.heap);
    assert_int_equal(dst.slice_count, 40);
    assert_chain_is(&dst, flat, flen);
    struct spl_iobuf moved;
    spl_iobuf_init(&moved);
    spl_iobuf_move(&moved, &dst);
    assert_int_equal(spl_iobuf_len(&dst), 0);
    assert_null(dst.heap);
    assert_chain_is(&moved, flat, flen);
    spl_iobuf_reset(&moved);
    spl_iobuf_reset(&src);
    assert_int_equal(live_blocks(), live0);
}

static void test_shared_survives_reset(void **state)
{
    (void)state;
    uint8_t data[5000];
    fill_pattern(data, 42, sizeof(data));
    struct spl_iobuf a, b;
    spl_iobuf_init(&a);
    spl_iobuf_init(&b);
    assert_int_equal(spl_iobuf_append(&a, data, 3000), 0);
    assert_int_equal(spl_iobuf_append_ref(&b, &a, 1000, 2000), 0);
    /* a's tail block is now shared: appending to a must not write into it */
    assert_int_equal(spl_iobuf_append(&a, data + 3000, 2000), 0);
    assert_int_equal(a.slice_count, 2);
    assert_chain_is(&a, data, 5000);
    assert_chain_is(&b, data + 1000, 2000);
    spl_iobuf_reset(&a);
    assert_chain_is(&b, data + 1000, 2000);
    /* b is now the only holder: appending may go in place, right after its slice */
    assert_int_equal(spl_iobuf_append(&b, "xyz", 3), 0);
    assert_int_equal(b.slice_count, 1);
    uint8_t expect[2003];
    memcpy(expect, data + 1000, 2000);
    memcpy(expect + 2000, "xyz", 3);
    assert_chain_is(&b, expect, 2003);
    spl_iobuf_reset(&b);
}

static void test_append_ref_merges_and_self(void **state)
{
    (void)state;
    uint8_t data[200];
    fill_pattern(data, 9, sizeof(data));
    struct spl_iobuf a, b;
    spl_iobuf_init(&a);
    spl_iobuf_init(&b);
    assert_int_equal(spl_iobuf_append(&a, data, 200), 0);
    /* two adjacent refs of the same block become one slice */
    assert_int_equal(spl_iobuf_append_ref(&b, &a, 10, 50), 0);
    assert_int_equal(spl_iobuf_append_ref(&b, &a, 60, 40), 0);
    assert_int_equal(b.slice_count, 1);
    assert_chain_is(&b, data + 10, 90);
    /* referencing a chain into itself doubles it */
    assert_int_equal(spl_iobuf_append_ref(&b, &b, 0, 90), 0);
    uint8_t expect[180];
    memcpy(expect, data + 10, 90);
    memcpy(expect + 90, data + 10, 90);
    assert_chain_is(&b, expect, 180);
    assert_int_equal(spl_iobuf_append_ref(&b, &a, 0, 0), 0);
    assert_int_equal(spl_iobuf_len(&b), 180);
    spl_iobuf_reset(&a);
    spl_iobuf_reset(&b);
}

struct ext_state {
    int calls;
    void *data_seen;
};

static void ext_free(void *ctx, void *data)
{
    struct ext_state *st = ctx;
    st->calls++;
    st->data_seen = data;
}

static void test_external_free_once(void **state)
{
    (void)state;
    static char text[] = "external bytes owned by the caller";
    size_t len = strlen(text);
    struct ext_state st = {0};
    uint64_t live0 = live_blocks();
    struct spl_iobuf a, b, c;
    spl_iobuf_init(&a);
    spl_iobuf_init(&b);
    spl_iobuf_init(&c);
    assert_int_equal(spl_iobuf_append(&a, "<", 1), 0);
    assert_int_equal(spl_iobuf_append_external(&a, text, len, ext_free, &st), 0);
    assert_int_equal(spl_iobuf_append(&a, ">", 1), 0);
    assert_int_equal(a.slice_count, 3); /* never appended into the external block */
    assert_int_equal(spl_iobuf_append_ref(&b, &a, 5, 10), 0);
    assert_int_equal(spl_iobuf_cut(&a, 20, &c), 0);
    spl_iobuf_consume(&c, 3);
    spl_iobuf_reset(&a);
    assert_int_equal(st.calls, 0);
    spl_iobuf_reset(&c);
    assert_int_equal(st.calls, 0);
    assert_chain_is(&b, (const uint8_t *)text + 4, 10);
    spl_iobuf_reset(&b);
    assert_int_equal(st.calls, 1);
    assert_ptr_equal(st.data_seen, text);
    assert_int_equal(live_blocks(), live0);
    spl_iobuf_reset(&b);
    assert_int_equal(st.calls, 1);

    /* an empty external block is released at once */
    struct ext_state st0 = {0};
    assert_int_equal(spl_iobuf_append_external(&a, text, 0, ext_free, &st0), 0);
    assert_int_equal(st0.calls, 1);
    assert_int_equal(spl_iobuf_len(&a), 0);
}

static void test_to_iovec(void **state)
{
    (void)state;
    size_t len = 2 * BS + 500;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    fill_pattern(data, 3, len);
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    assert_int_equal(spl_iobuf_append(&b, data, len), 0);
    struct iovec iov[8];
    uint64_t bytes;
    assert_int_equal(spl_iobuf_to_iovec(&b, 0, iov, 8, &bytes), 3);
    assert_int_equal(bytes, len);
    assert_int_equal(iov[0].iov_len, BS);
    assert_int_equal(iov[2].iov_len, 500);
    assert_int_equal(spl_iobuf_to_iovec(&b, 100, iov, 2, &bytes), 2);
    assert_int_equal(bytes, 2 * BS - 100);
    assert_memory_equal(iov[0].iov_base, data + 100, BS - 100);
    assert_memory_equal(iov[1].iov_base, data + BS, BS);
    assert_int_equal(spl_iobuf_to_iovec(&b, BS + 1, iov, 8, &bytes), 2);
    assert_int_equal(bytes, len - BS - 1);
    assert_memory_equal(iov[1].iov_base, data + 2 * BS, 500);
    assert_int_equal(spl_iobuf_to_iovec(&b, len, iov, 8, &bytes), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(spl_iobuf_to_iovec(&b, 0, iov, 0, &bytes), 0);
    spl_iobuf_reset(&b);
    free(data);
}

static void test_crc_and_peek_and_equal(void **state)
{
    (void)state;
    size_t len = BS + 4000;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    fill_pattern(data, 77, len);
    struct spl_iobuf a, b;
    spl_iobuf_init(&a);
    spl_iobuf_init(&b);
    /* a in pieces of odd sizes, b in one go: different slice layouts, same bytes */
    for (size_t off = 0; off < len;) {
        size_t n = (off * 7 + 333) % 5000 + 1;
        if (n > len - off)
            n = len - off;
        struct spl_iobuf tmp;
        spl_iobuf_init(&tmp);
        assert_int_equal(spl_iobuf_append(&tmp, data + off, n), 0);
        assert_int_equal(spl_iobuf_append_ref(&a, &tmp, 0, n), 0);
        spl_iobuf_reset(&tmp);
        off += n;
    }
    assert_int_equal(spl_iobuf_append(&b, data, len), 0);
    assert_true(a.slice_count > b.slice_count);
    assert_true(spl_iobuf_equal(&a, &b));
    assert_int_equal(spl_iobuf_crc32c(&a, 0, 0, len), spl_crc32c(0, data, len));
    assert_int_equal(spl_iobuf_crc32c(&a, 0, 123, len - 1000),
                     spl_crc32c(0, data + 123, len - 1000));
    uint32_t head = spl_crc32c(0, data, 10);
    assert_int_equal(spl_iobuf_crc32c(&a, head, 10, 0), head);
    assert_int_equal(spl_iobuf_crc32c(&b, head, 10, len - 10), spl_crc32c(0, data, len));

    /* peek: inside one slice returns a pointer into the block; across uses scratch */
    uint8_t scratch[6000];
    const uint8_t *p = spl_iobuf_peek(&b, 10, 100, scratch);
    assert_ptr_not_equal(p, scratch);
    assert_memory_equal(p, data + 10, 100);
    p = spl_iobuf_peek(&b, BS - 50, 100, scratch);
    assert_ptr_equal(p, scratch);
    assert_memory_equal(p, data + BS - 50, 100);
    assert_null(spl_iobuf_peek(&b, len - 10, 11, scratch));
    assert_null(spl_iobuf_peek(&b, len + 1, 0, scratch));
    assert_non_null(spl_iobuf_peek(&b, len, 0, scratch));

    /* one differing byte, or a different length, makes them unequal */
    uint8_t x = (uint8_t)(data[len - 1] ^ 0x10);
    spl_iobuf_consume(&b, 0);
    struct spl_iobuf c;
    spl_iobuf_init(&c);
    assert_int_equal(spl_iobuf_append(&c, data, len - 1), 0);
    assert_false(spl_iobuf_equal(&a, &c));
    assert_int_equal(spl_iobuf_append(&c, &x, 1), 0);
    assert_false(spl_iobuf_equal(&a, &c));
    spl_iobuf_reset(&a);
    spl_iobuf_reset(&b);
    spl_iobuf_reset(&c);
    free(data);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    void *ptr;
    size_t avail;
    assert_int_equal(spl_iobuf_reserve(&b, 100, &ptr, &avail), 0);
    assert_int_equal(avail, BS);
    assert_int_equal(spl_iobuf_len(&b), 0); /* nothing added until commit */
    memcpy(ptr, "abcdef", 6);
    spl_iobuf_commit(&b, 6);
    assert_chain_is(&b, (const uint8_t *)"abcdef", 6);
    /* the next reserve continues in the same block */
    assert_int_equal(spl_iobuf_reserve(&b, 10, &ptr, &avail), 0);
    assert_int_equal(avail, BS - 6);
    memcpy(ptr, "gh", 2);
    spl_iobuf_commit(&b, 2);
    assert_int_equal(b.slice_count, 1);
    assert_chain_is(&b, (const uint8_t *)"abcdefgh", 8);
    /* a reserve bigger than the room left takes a fresh block */
    assert_int_equal(spl_iobuf_reserve(&b, BS - 4, &ptr, &avail), 0);
    assert_int_equal(avail, BS);
    memcpy(ptr, "IJ", 2);
    spl_iobuf_commit(&b, 2);
    assert_int_equal(b.slice_count, 2);
    assert_chain_is(&b, (const uint8_t *)"abcdefghIJ", 10);
    /* a shared tail forces a fresh block, so the sharer never sees the write */
    struct spl_iobuf other;
    spl_iobuf_init(&other);
    assert_int_equal(spl_iobuf_append_ref(&other, &b, 8, 2), 0);
    assert_int_equal(spl_iobuf_reserve(&b, 1, &ptr, &avail), 0);
    memset(ptr, 'Z', avail);
    spl_iobuf_commit(&b, 1);
    assert_chain_is(&other, (const uint8_t *)"IJ", 2);
    assert_chain_is(&b, (const uint8_t *)"abcdefghIJZ", 11);
    /* an uncommitted reserve followed by consume and commit of 0 leaves data intact */
    assert_int_equal(spl_iobuf_reserve(&b, 1, &ptr, &avail), 0);
    spl_iobuf_consume(&b, 11);
    spl_iobuf_commit(&b, 0);
    assert_int_equal(spl_iobuf_len(&b), 0);
    spl_iobuf_reset(&b);
    spl_iobuf_reset(&other);
}

static void test_block_cache(void **state)
{
    (void)state;
    enum { N = SPL_IOBUF_CACHE_BLOCKS_MAX + 20 };
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    uint8_t *data = calloc(N, BS);
    assert_non_null(data);
    struct spl_iobuf_stats s0, s1, s2;
    spl_iobuf_stats(&s0);
    assert_int_equal(spl_iobuf_append(&b, data, N * BS), 0);
    spl_iobuf_stats(&s1);
    assert_int_equal(s1.blocks_live, s0.blocks_live + N);
    assert_int_equal((s1.blocks_alloc - s0.blocks_alloc) + (s1.blocks_cached - s0.blocks_cached),
                     N);
    spl_iobuf_reset(&b); /* fills this thread's cache to its bound, frees the rest */
    assert_int_equal(spl_iobuf_append(&b, data, N * BS), 0);
    spl_iobuf_stats(&s2);
    assert_int_equal(s2.blocks_cached - s1.blocks_cached, SPL_IOBUF_CACHE_BLOCKS_MAX);
    assert_int_equal(s2.blocks_alloc - s1.blocks_alloc, N - SPL_IOBUF_CACHE_BLOCKS_MAX);
    spl_iobuf_reset(&b);
    spl_iobuf_stats(&s2);
    assert_int_equal(s2.blocks_live, s0.blocks_live);
    free(data);
}

static void test_consume_beyond_len_asserts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct spl_iobuf b;
        spl_iobuf_init(&b);
        if (spl_iobuf_append(&b, "abc", 3) == 0)
            spl_iobuf_consume(&b, 4);
        _exit(0); /* not reached when the ASSERT works */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---- randomized model test ---- */

struct model {
    uint8_t *bytes;
    size_t len, cap;
};

static void model_append(struct model *m, const uint8_t *p, size_t n)
{
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->bytes = realloc(m->bytes, m->cap);
        assert_non_null(m->bytes);
    }
    memcpy(m->bytes + m->len, p, n);
    m->len += n;
}

static void model_consume(struct model *m, size_t n)
{
    memmove(m->bytes, m->bytes + n, m->len - n);
    m->len -= n;
}

static struct ext_state model_ext;

static void check_model(const struct spl_iobuf *b, const struct model *m, struct spl_rand *r)
{
    assert_int_equal(spl_iobuf_len(b), m->len);
    uint8_t *flat = flatten(b);
    assert_memory_equal(flat, m->bytes, m->len);
    free(flat);
    if (m->len == 0)
        return;
    uint64_t off = spl_rand_below(r, m->len);
    uint64_t n = spl_rand_below(r, m->len - off + 1);
    assert_int_equal(spl_iobuf_crc32c(b, 0, off, n), spl_crc32c(0, m->bytes + off, n));
    static uint8_t scratch[4 * SPL_IOBUF_BLOCK_SIZE];
    size_t pn = n < sizeof(scratch) ? (size_t)n : sizeof(scratch);
    const uint8_t *p = spl_iobuf_peek(b, off, pn, scratch);
    assert_non_null(p);
    assert_memory_equal(p, m->bytes + off, pn);
    struct iovec iov[16];
    uint64_t bytes;
    int cnt = spl_iobuf_to_iovec(b, off, iov, 16, &bytes);
    uint64_t pos = off;
    for (int i = 0; i < cnt; i++) {
        assert_memory_equal(iov[i].iov_base, m->bytes + pos, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    assert_int_equal(pos - off, bytes);
    assert_true(cnt == 16 || pos == m->len);
}

static void model_run(uint64_t seed, int ops)
{
    struct spl_rand r;
    spl_rand_seed(&r, seed);
    uint64_t live0 = live_blocks();
    struct spl_iobuf b, side;
    spl_iobuf_init(&b);
    spl_iobuf_init(&side);
    struct model m = {0}, ms = {0};
    size_t src_len = 3 * BS + 1000;
    uint8_t *src = malloc(src_len);
    assert_non_null(src);
    for (size_t i = 0; i < src_len; i++)
        src[i] = (uint8_t)spl_rand_u64(&r);
    static char ext_bytes[4096];
    memset(ext_bytes, 'e', sizeof(ext_bytes));
    int ext_added = 0;
    model_ext.calls = 0;

    for (int op = 0; op < ops; op++) {
        unsigned kind = (unsigned)spl_rand_below(&r, 10);
        size_t n, off;
        void *ptr;
        size_t avail;
        switch (kind) {
        case 0: /* small append */
        case 1:
            n = (size_t)spl_rand_below(&r, 300);
            off = (size_t)spl_rand_below(&r, src_len - n);
            assert_int_equal(spl_iobuf_append(&b, src + off, n), 0);
            model_append(&m, src + off, n);
            break;
        case 2: /* large append */
            n = (size_t)spl_rand_below(&r, src_len);
            off = (size_t)spl_rand_below(&r, src_len - n + 1);
            assert_int_equal(spl_iobuf_append(&b, src + off, n), 0);
            model_append(&m, src + off, n);
            break;
        case 3: /* consume */
            n = m.len ? (size_t)spl_rand_below(&r, m.len + 1) : 0;
            if (spl_rand_chance(&r, 1, 2) && n > 200)
                n = (size_t)spl_rand_below(&r, 200);
            spl_iobuf_consume(&b, n);
            model_consume(&m, n);
            break;
        case 4: /* cut into side */
            n = m.len ? (size_t)spl_rand_below(&r, m.len + 1) : 0;
            assert_int_equal(spl_iobuf_cut(&b, n, &side), 0);
            model_append(&ms, m.bytes, n);
            model_consume(&m, n);
            break;
        case 5: /* share a range of side (or of b itself) at the end of b */
            if (spl_rand_chance(&r, 1, 2) && ms.len > 0) {
                off = (size_t)spl_rand_below(&r, ms.len);
                n = (size_t)spl_rand_below(&r, ms.len - off + 1);
                assert_int_equal(spl_iobuf_append_ref(&b, &side, off, n), 0);
                model_append(&m, ms.bytes + off, n);
            } else if (m.len > 0) {
                off = (size_t)spl_rand_below(&r, m.len);
                n = (size_t)spl_rand_below(&r, m.len - off + 1);
                uint8_t *copy = malloc(n ? n : 1);
                assert_non_null(copy);
                memcpy(copy, m.bytes + off, n);
                assert_int_equal(spl_iobuf_append_ref(&b, &b, off, n), 0);
                model_append(&m, copy, n);
                free(copy);
            }
            break;
        case 6: /* reserve + partial commit, like a read(2) */
            n = (size_t)spl_rand_below(&r, BS + 1);
            assert_int_equal(spl_iobuf_reserve(&b, n, &ptr, &avail), 0);
            assert_true(avail >= n && avail <= BS);
            n = (size_t)spl_rand_below(&r, avail + 1);
            off = (size_t)spl_rand_below(&r, src_len - n + 1);
            memcpy(ptr, src + off, n);
            spl_iobuf_commit(&b, n);
            model_append(&m, src + off, n);
            break;
        case 7: /* external block */
            n = (size_t)spl_rand_below(&r, sizeof(ext_bytes) + 1);
            assert_int_equal(spl_iobuf_append_external(&b, ext_bytes, n, ext_free, &model_ext),
                             0);
            ext_added++;
            model_append(&m, (const uint8_t *)ext_bytes, n);
            break;
        case 8: /* drop or swap the side buffer */
            if (spl_rand_chance(&r, 1, 3)) {
                spl_iobuf_reset(&side);
                ms.len = 0;
            } else if (spl_rand_chance(&r, 1, 4)) {
                struct spl_iobuf tmp;
                spl_iobuf_init(&tmp);
                spl_iobuf_move(&tmp, &b);
                spl_iobuf_move(&b, &tmp);
            }
            break;
        default: /* equality against a flat rebuild */
            if (m.len < 4 * BS) {
                struct spl_iobuf flat;
                spl_iobuf_init(&flat);
                assert_int_equal(spl_iobuf_append(&flat, m.bytes, m.len), 0);
                assert_true(spl_iobuf_equal(&flat, &b));
                spl_iobuf_reset(&flat);
            }
            break;
        }
        if (m.len > 3 * BS) { /* keep the model small (and the test fast) */
            spl_iobuf_consume(&b, m.len - BS);
            model_consume(&m, m.len - BS);
        }
        if (ms.len > 3 * BS) {
            spl_iobuf_consume(&side, ms.len - BS);
            model_consume(&ms, ms.len - BS);
        }
        check_model(&b, &m, &r);
        check_model(&side, &ms, &r);
    }
    spl_iobuf_reset(&b);
    spl_iobuf_reset(&side);
    assert_int_equal(model_ext.calls, ext_added);
    assert_int_equal(live_blocks(), live0);
    free(m.bytes);
    free(ms.bytes);
    free(src);
}

static void test_model_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++)
        model_run(seed, 1000);
}

/* ---- two threads ---- */

#define MSGS 4000
#define QCAP 16

struct msg {
    struct spl_iobuf buf;
    uint64_t stream_pos; /* position of buf's first byte in the producer's stream */
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct msg items[QCAP];
    int head, count;
    bool done;
};

static void queue_push(struct queue *q, struct msg *m)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP)
        pthread_cond_wait(&q->cv, &q->mu);
    struct msg *slot = &q->items[(q->head + q->count) % QCAP];
    spl_iobuf_init(&slot->buf);
    spl_iobuf_move(&slot->buf, &m->buf);
    slot->stream_pos = m->stream_pos;
    q->count++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static bool queue_try_push(struct queue *q, struct msg *m)
{
    pthread_mutex_lock(&q->mu);
    bool room = q->count < QCAP;
    pthread_mutex_unlock(&q->mu);
    if (room)
        queue_push(q, m); /* only this thread pushes, so the room is still there */
    return room;
}

static bool queue_pop(struct queue *q, struct msg *m)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->done)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    struct msg *slot = &q->items[q->head];
    spl_iobuf_move(&m->buf, &slot->buf);
    m->stream_pos = slot->stream_pos;
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

struct pair {
    struct queue to_consumer, to_producer;
    int bad;          /* consumer's mismatches */
    uint64_t checked; /* consumer's bytes checked */
};

static void *consumer_main(void *arg)
{
    struct pair *p = arg;
    struct msg m;
    spl_iobuf_init(&m.buf);
    uint8_t *flat = malloc(4 * BS);
    uint8_t *expect = malloc(4 * BS);
    if (!flat || !expect)
        abort();
    while (queue_pop(&p->to_consumer, &m)) {
        size_t len = (size_t)spl_iobuf_len(&m.buf);
        if (len > 4 * BS || spl_iobuf_copy_out(&m.buf, 0, flat, len) != len)
            p->bad++;
        fill_pattern(expect, m.stream_pos, len);
        if (memcmp(flat, expect, len) != 0 ||
            spl_iobuf_crc32c(&m.buf, 0, 0, len) != spl_crc32c(0, expect, len))
            p->bad++;
        p->checked += len;
        /* send every other message's front half back: the producer then drops the last
         * reference to blocks this thread touched */
        if (m.stream_pos % 2 == 0 && len > 1) {
            struct msg back;
            spl_iobuf_init(&back.buf);
            if (spl_iobuf_cut(&m.buf, len / 2, &back.buf) != 0)
                abort();
            back.stream_pos = m.stream_pos;
            queue_push(&p->to_producer, &back);
        }
        spl_iobuf_reset(&m.buf);
    }
    pthread_mutex_lock(&p->to_producer.mu);
    p->to_producer.done = true;
    pthread_cond_broadcast(&p->to_producer.cv);
    pthread_mutex_unlock(&p->to_producer.mu);
    free(flat);
    free(expect);
    return NULL;
}

static void drain_returns(struct queue *q, bool wait_all, int *returned)
{
    for (;;) {
        pthread_mutex_lock(&q->mu);
        bool have = q->count > 0;
        bool done = q->done;
        pthread_mutex_unlock(&q->mu);
        if (!have && (!wait_all || done))
            return;
        struct msg back;
        spl_iobuf_init(&back.buf);
        if (!queue_pop(q, &back))
            return;
        uint64_t len = spl_iobuf_len(&back.buf);
        uint8_t first;
        assert_int_equal(spl_iobuf_copy_out(&back.buf, 0, &first, 1), 1);
        assert_int_equal(first, pattern_at(back.stream_pos));
        assert_true(len > 0);
        spl_iobuf_reset(&back.buf);
        (*returned)++;
    }
}

static void test_two_threads(void **state)
{
    (void)state;
    uint64_t live0 = live_blocks();
    struct pair p;
    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.to_consumer.mu, NULL);
    pthread_cond_init(&p.to_consumer.cv, NULL);
    pthread_mutex_init(&p.to_producer.mu, NULL);
    pthread_cond_init(&p.to_producer.cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, consumer_main, &p), 0);

    struct spl_rand r;
    spl_rand_seed(&r, 7);
    struct spl_iobuf stream;
    spl_iobuf_init(&stream);
    uint64_t written = 0, sent = 0, sent_bytes = 0;
    uint8_t *chunk = malloc(2 * BS);
    assert_non_null(chunk);
    int returned = 0;
    while (sent < MSGS) {
        /* produce like a socket reader: reserve + commit into the (maybe shared) tail */
        size_t want = (size_t)spl_rand_range(&r, 1, 3000);
        void *ptr;
        size_t avail;
        assert_int_equal(spl_iobuf_reserve(&stream, 1, &ptr, &avail), 0);
        size_t n = want < avail ? want : avail;
        fill_pattern(ptr, written, n);
        spl_iobuf_commit(&stream, n);
        written += n;
        if (spl_rand_chance(&r, 1, 4)) {
            size_t big = (size_t)spl_rand_below(&r, 2 * BS);
            fill_pattern(chunk, written, big);
            assert_int_equal(spl_iobuf_append(&stream, chunk, big), 0);
            written += big;
        }
        /* cut messages off the front while the tail keeps growing */
        while (spl_iobuf_len(&stream) > 0 && sent < MSGS && spl_rand_chance(&r, 2, 3)) {
            uint64_t len = spl_rand_range(&r, 1, spl_iobuf_len(&stream));
            struct msg m;
            spl_iobuf_init(&m.buf);
            m.stream_pos = sent_bytes;
            assert_int_equal(spl_iobuf_cut(&stream, len, &m.buf), 0);
            /* never block on a full queue while the consumer may block on ours */
            while (!queue_try_push(&p.to_consumer, &m)) {
                drain_returns(&p.to_producer, false, &returned);
                sched_yield();
            }
            sent_bytes += len;
            sent++;
        }
        drain_returns(&p.to_producer, false, &returned);
    }
    pthread_mutex_lock(&p.to_consumer.mu);
    p.to_consumer.done = true;
    pthread_cond_broadcast(&p.to_consumer.cv);
    pthread_mutex_unlock(&p.to_consumer.mu);
    drain_returns(&p.to_producer, true, &returned);
    assert_int_equal(pthread_join(th, NULL), 0);
    drain_returns(&p.to_producer, true, &returned);

    assert_int_equal(p.bad, 0);
    assert_int_equal(p.checked, sent_bytes);
    assert_true(returned > 0);
    assert_int_equal(spl_iobuf_len(&stream), written - sent_bytes);
    spl_iobuf_reset(&stream);
    assert_int_equal(live_blocks(), live0);
    free(chunk);
    pthread_mutex_destroy(&p.to_consumer.mu);
    pthread_cond_destroy(&p.to_consumer.cv);
    pthread_mutex_destroy(&p.to_producer.mu);
    pthread_cond_destroy(&p.to_producer.cv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_small_in_place),
        cmocka_unit_test(test_append_across_blocks),
        cmocka_unit_test(test_many_slices_grow_to_heap),
        cmocka_unit_test(test_shared_survives_reset),
        cmocka_unit_test(test_append_ref_merges_and_self),
        cmocka_unit_test(test_external_free_once),
        cmocka_unit_test(test_to_iovec),
        cmocka_unit_test(test_crc_and_peek_and_equal),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_block_cache),
        cmocka_unit_test(test_consume_beyond_len_asserts),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
