/*
 * iobuf.h - reference-counted buffer chains: how I/O payloads move without copies.
 *
 * A `struct spl_iobuf` is a list of (block, offset, length) slices. Blocks are
 * reference-counted (atomically) and immutable once shared, so a 4 KiB write read from a
 * socket into a block can be handed to the Raft log, to followers' send queues and to
 * the chunk file's pwritev without copying the bytes again: each holder keeps a slice.
 *
 * Ownership: the caller owns the `struct spl_iobuf` itself (stack, embedded, pooled).
 * One iobuf is used by one thread at a time; slices of the same block may live in
 * iobufs on different threads. spl_iobuf_reset() drops the references.
 * Memory: blocks of SPL_IOBUF_BLOCK_SIZE come from a per-thread cache of freed blocks
 * (bounded), so steady-state I/O does not call malloc.
 * Errors: functions that can allocate return 0 or -ENOMEM; on -ENOMEM the iobuf is
 * unchanged. Ranges beyond len (consume, cut, append_ref, crc32c, to_iovec) and a commit
 * without a reserve are programmer errors and ASSERT.
 */
#ifndef SPL_BASE_IOBUF_H
#define SPL_BASE_IOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct spl_iobuf_block; /* opaque: refcount, capacity, data, optional free callback */

struct spl_iobuf_slice {
    struct spl_iobuf_block *block;
    uint32_t offset;
    uint32_t len;
};

#define SPL_IOBUF_INLINE_SLICES 4

struct spl_iobuf {
    uint64_t len;            /* total bytes */
    uint32_t slice_count;
    uint32_t slice_cap;      /* <= SPL_IOBUF_INLINE_SLICES: inline[] is in use */
    struct spl_iobuf_slice *heap; /* used when slice_cap > SPL_IOBUF_INLINE_SLICES */
    struct spl_iobuf_slice inline_slices[SPL_IOBUF_INLINE_SLICES];
};

void spl_iobuf_init(struct spl_iobuf *b);
/* Drop every reference; b is empty and reusable afterwards. */
void spl_iobuf_reset(struct spl_iobuf *b);
/* Move src's contents to dst (dst must be empty); src becomes empty. No allocation. */
void spl_iobuf_move(struct spl_iobuf *dst, struct spl_iobuf *src);

static inline uint64_t spl_iobuf_len(const struct spl_iobuf *b) { return b->len; }
/* The slices, in order (slice_count of them). */
const struct spl_iobuf_slice *spl_iobuf_slices(const struct spl_iobuf *b);
/* Pointer to a slice's first byte. */
void *spl_iobuf_slice_data(const struct spl_iobuf_slice *s);

/* Copy len bytes in (into the tail block when it is exclusively ours and has room). */
int spl_iobuf_append(struct spl_iobuf *b, const void *data, size_t len);
/* Share [offset, offset+len) of src at the end of dst: no byte copied. */
int spl_iobuf_append_ref(struct spl_iobuf *dst, const struct spl_iobuf *src, uint64_t offset,
                         uint64_t len);
/* Wrap caller memory as a block; free_cb(ctx, data) runs when the last slice goes (on
 * whichever thread drops it; free_cb may be NULL). The bytes are never written. len == 0:
 * free_cb runs at once. On -ENOMEM free_cb is not called and the caller keeps data. */
int spl_iobuf_append_external(struct spl_iobuf *b, void *data, size_t len,
                              void (*free_cb)(void *ctx, void *data), void *ctx);

/* Writable tail space for a read(2): *ptr and *avail get at least min_len bytes (min_len <=
 * SPL_IOBUF_BLOCK_SIZE) after the current end. Nothing is added until commit. */
int spl_iobuf_reserve(struct spl_iobuf *b, size_t min_len, void **ptr, size_t *avail);
/* Make n bytes of the last reserve part of the buffer (n <= avail). Commit before any
 * other change to b: a later append writes into the reserved space, and append_ref,
 * append_external or reset give the reservation up. */
void spl_iobuf_commit(struct spl_iobuf *b, size_t n);

/* Drop n bytes from the front (n <= len). */
void spl_iobuf_consume(struct spl_iobuf *b, uint64_t n);
/* Move the first n bytes of b (n <= len) to the end of out, sharing blocks. */
int spl_iobuf_cut(struct spl_iobuf *b, uint64_t n, struct spl_iobuf *out);

/* Copy [offset, offset+len) out to dst; returns bytes copied (less at the end). */
size_t spl_iobuf_copy_out(const struct spl_iobuf *b, uint64_t offset, void *dst, size_t len);
/* Pointer to [offset, offset+len): into the buffer when contiguous, else copied into
 * scratch (len bytes). NULL when the range exceeds the buffer. */
const void *spl_iobuf_peek(const struct spl_iobuf *b, uint64_t offset, size_t len,
                           void *scratch);
/* Fill up to iov_max iovecs for writev/pwritev from offset; returns the count used and
 * sets *bytes to the bytes they cover. */
int spl_iobuf_to_iovec(const struct spl_iobuf *b, uint64_t offset, struct iovec *iov,
                       int iov_max, uint64_t *bytes);
/* CRC32C of [offset, offset+len), extending crc. */
uint32_t spl_iobuf_crc32c(const struct spl_iobuf *b, uint32_t crc, uint64_t offset,
                          uint64_t len);
/* Byte equality of two chains (for tests and checkers). */
bool spl_iobuf_equal(const struct spl_iobuf *a, const struct spl_iobuf *b);

/* Per-thread block cache statistics (for tests and metrics). */
struct spl_iobuf_stats {
    uint64_t blocks_alloc;  /* blocks obtained from malloc */
    uint64_t blocks_cached; /* blocks reused from the cache */
    uint64_t blocks_live;   /* process-wide blocks held by slices (internal and external;
                             * blocks resting in a cache are not live) */
};
void spl_iobuf_stats(struct spl_iobuf_stats *out);

#endif
