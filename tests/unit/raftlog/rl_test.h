/*
 * rl_test.h - helpers shared by the raftlog unit tests: temporary directories under /tmp,
 * entries whose payload can be checked after a round trip through the log, and the
 * mkdir/format boilerplate. Header-only (static functions) so that every test binary
 * stays one .c file plus this.
 */
#ifndef SPL_TEST_RL_TEST_H
#define SPL_TEST_RL_TEST_H


#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/errors.h"
#include "base/iobuf.h"
#include "raftlog/raftlog.h"
#include "raftlog/vfs_mem.h"

/* ---- temporary directories ---- */

static inline int rl_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Create a fresh directory under /tmp; path receives its name. */
static inline void rl_tmpdir(char *path, size_t len, const char *tag)
{
    snprintf(path, len, "/tmp/spl-raftlog-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(path));
}

static inline void rl_rmtree(const char *path)
{
    nftw(path, rl_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- checkable entries ---- */

/* Payload: 24 bytes (index, term, salt) then a pattern seeded by them. */
static inline uint8_t rl_pattern(uint64_t index, uint64_t term, uint64_t salt, size_t i)
{
    uint64_t x = index * 0x9e3779b97f4a7c15ull ^ term * 0xbf58476d1ce4e5b9ull ^ salt ^ i;
    x ^= x >> 29;
    x *= 0x94d049bb133111ebull;
    return (uint8_t)(x >> 32);
}

static inline void rl_make_entry(struct spl_raftlog_entry *e, uint64_t index,
                                 uint64_t term, uint64_t salt, size_t len)
{
    uint8_t *buf = malloc(len + 24);
    assert_non_null(buf);
    if (len < 24)
        len = 24;
    memcpy(buf, &index, 8);
    memcpy(buf + 8, &term, 8);
    memcpy(buf + 16, &salt, 8);
    for (size_t i = 24; i < len; i++)
        buf[i] = rl_pattern(index, term, salt, i);
    spl_iobuf_init(&e->data);
    /* two appends: entries then have two slices, like real payloads */
    size_t half = len / 2;
    assert_int_equal(spl_iobuf_append(&e->data, buf, half), 0);
    struct spl_iobuf tmp;
    spl_iobuf_init(&tmp);
    assert_int_equal(spl_iobuf_append(&tmp, buf + half, len - half), 0);
    assert_int_equal(spl_iobuf_append_ref(&e->data, &tmp, 0, len - half), 0);
    spl_iobuf_reset(&tmp);
    free(buf);
    e->index = index;
    e->term = term;
    e->type = (uint8_t)(index % 3);
}

static inline void rl_init_entries(struct spl_raftlog_entry *e, uint32_t n)
{
    memset(e, 0, sizeof(*e) * n);
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_init(&e[i].data);
}

static inline void rl_free_entries(struct spl_raftlog_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_reset(&e[i].data);
}

/* True when e is an intact entry made by rl_make_entry(index, term, salt, len). */
static inline bool rl_entry_ok(const struct spl_raftlog_entry *e, uint64_t index,
                               uint64_t term, uint64_t salt, size_t len)
{
    if (len < 24)
        len = 24;
    if (e->index != index || e->term != term || spl_iobuf_len(&e->data) != len ||
        e->type != (uint8_t)(index % 3))
        return false;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    spl_iobuf_copy_out(&e->data, 0, buf, len);
    uint64_t h[3];
    memcpy(h, buf, sizeof(h));
    bool ok = h[0] == index && h[1] == term && h[2] == salt;
    for (size_t i = 24; ok && i < len; i++)
        ok = buf[i] == rl_pattern(index, term, salt, i);
    free(buf);
    return ok;
}

/* Append count entries [first, first + count) of `term` (len bytes each) and wait. */
static inline int rl_append(struct spl_raftlog *log, uint64_t first, uint32_t count,
                            uint64_t term, uint64_t salt, size_t len,
                            const struct spl_raftlog_hardstate *hs)
{
    struct spl_raftlog_entry *e = calloc(count ? count : 1, sizeof(*e));
    assert_non_null(e);
    for (uint32_t i = 0; i < count; i++)
        rl_make_entry(&e[i], first + i, term, salt, len);
    int rc = spl_raftlog_append_wait(log, e, count, hs);
    rl_free_entries(e, count);
    free(e);
    return rc;
}

/* Read [lo, hi) in one call and check each entry against (term, salt, len) given by fn. */
typedef void (*rl_expect_fn)(uint64_t index, uint64_t *term, uint64_t *salt, size_t *len,
                             void *arg);

static inline void rl_check_range(struct spl_raftlog *log, uint64_t lo, uint64_t hi,
                                  rl_expect_fn fn, void *arg)
{
    while (lo < hi) {
        struct spl_raftlog_entry out[64];
        uint32_t n = 0;
        memset(out, 0, sizeof(out));
        for (int i = 0; i < 64; i++)
            spl_iobuf_init(&out[i].data);
        assert_int_equal(spl_raftlog_entries(log, lo, hi, UINT64_MAX, out, 64, &n), 0);
        assert_true(n > 0);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t term, salt;
            size_t len;
            fn(lo + i, &term, &salt, &len, arg);
            if (!rl_entry_ok(&out[i], lo + i, term, salt, len))
                fail_msg("entry %" PRIu64 " differs (term %" PRIu64 " want %" PRIu64 ")",
                         lo + i, out[i].term, term);
        }
        rl_free_entries(out, n);
        lo += n;
    }
}

#endif
