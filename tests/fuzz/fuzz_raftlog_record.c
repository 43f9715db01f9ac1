/* fuzz_raftlog_record.c - arbitrary bytes through the raft log's decoders (src/raftlog
 * format.h) and through recovery itself.
 *
 * Input: [u8 mode][u64 nonce, little endian][payload]
 *   mode % 5 == 0  the payload as one record: header decode, then full verify with nonce;
 *                  mode bit 3 first sets the nonce tag and re-seals the CRC so the fuzzer
 *                  reaches the checks behind them (length, kind, index)
 *   mode % 5 == 1  the payload as a segment header region (both slots), slot pick
 *   mode % 5 == 2  the payload as a hard state file (both slots), slot pick
 *   mode % 5 == 3  the payload as snapshot metadata (bit 3: re-seal the CRC); a decoded
 *                  meta must re-encode to the same bytes
 *   mode % 5 == 4  the payload becomes the body (records area) of the only segment of a
 *                  group on the in-memory disk, behind a valid header with that nonce;
 *                  the log is opened (recovery: scan, cut, refuse) and, when that
 *                  succeeds, every entry is read back and must verify
 * Oracles beyond "no crash, no sanitizer report": every function returns only its
 * documented codes; round trips are exact; an opened log serves all its entries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "raftlog/format.h"
#include "raftlog/raftlog.h"
#include "raftlog/vfs_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG_SIZE (64u << 10)

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fuzz_record(const uint8_t *p, size_t n, uint64_t nonce, bool seal)
{
    uint8_t *buf = malloc(n ? n : 1);
    ASSERT(buf);
    memcpy(buf, p, n);
    struct spl_raftlog_rec_header h;
    int rc = spl_raftlog_rec_header_decode(buf, n, SEG_SIZE, &h);
    ASSERT(rc == 0 || rc == SPL_ECORRUPT);
    if (rc == 0 && seal && n - SPL_RAFTLOG_REC_HEADER_SIZE >= h.data_len) {
        buf[14] = (uint8_t)spl_raftlog_nonce_tag(nonce);
        buf[15] = (uint8_t)(spl_raftlog_nonce_tag(nonce) >> 8);
        uint32_t crc = spl_raftlog_rec_crc_head(nonce, buf);
        crc = spl_crc32c(crc, buf + SPL_RAFTLOG_REC_HEADER_SIZE, h.data_len);
        put32(buf + 4, crc);
    }
    rc = spl_raftlog_rec_verify(buf, n, nonce, SEG_SIZE, &h);
    ASSERT(rc == 0 || rc == SPL_ECORRUPT);
    if (rc == 0) {
        uint8_t again[SPL_RAFTLOG_REC_HEADER_SIZE];
        spl_raftlog_rec_header_encode(&h, again);
        ASSERT(memcmp(again, buf, sizeof(again)) == 0);
        ASSERT(h.data_len <= n - SPL_RAFTLOG_REC_HEADER_SIZE);
    }
    free(buf);
}

static void fuzz_seg_header(const uint8_t *p, size_t n)
{
    struct spl_raftlog_seg_header h;
    int slot = -1;
    bool zero;
    int rc = spl_raftlog_seg_header_pick(p, n, &h, &slot, &zero);
    ASSERT(rc == 0 || rc == SPL_ECORRUPT || rc == SPL_EVERSION);
    if (rc == 0) {
        uint8_t again[SPL_RAFTLOG_SEG_SLOT_SIZE];
        ASSERT(slot == 0 || slot == 1);
        ASSERT(h.gen % 2 == (uint64_t)slot);
        spl_raftlog_seg_header_encode(&h, again);
        ASSERT(memcmp(again, p + (size_t)slot * SPL_RAFTLOG_SEG_SLOT_STRIDE, sizeof(again)) == 0);
    }
}

static void fuzz_hardstate(const uint8_t *p, size_t n)
{
    struct spl_raftlog_hs_slot s;
    int slot = -1;
    int rc = spl_raftlog_hs_pick(p, n, &s, &slot);
    ASSERT(rc == 0 || rc == SPL_ECORRUPT || rc == SPL_EVERSION);
    if (rc == 0) {
        uint8_t again[SPL_RAFTLOG_HS_SLOT_SIZE];
        spl_raftlog_hs_encode(&s, again);
        ASSERT(memcmp(again, p + (size_t)slot * SPL_RAFTLOG_HS_SLOT_STRIDE, sizeof(again)) == 0);
    }
}

static void fuzz_snapmeta(const uint8_t *p, size_t n, bool seal)
{
    uint8_t *buf = malloc(n ? n : 1);
    ASSERT(buf);
    memcpy(buf, p, n);
    if (seal && n >= SPL_RAFTLOG_SNAP_HEADER_SIZE) {
        for (int i = 0; i < 8; i++) /* total_len = n */
            buf[16 + i] = (uint8_t)((uint64_t)n >> (8 * i));
        put32(buf + 4, spl_crc32c(0, buf + 8, n - 8));
    }
    struct spl_raftlog_snapmeta m;
    uint64_t gid = 0, size = 0;
    int rc = spl_raftlog_snapmeta_decode(buf, n, &gid, &m);
    ASSERT(rc == 0 || rc == SPL_ECORRUPT || rc == SPL_EVERSION || rc == SPL_ETOOBIG ||
           rc == -ENOMEM);
    if (rc == 0) {
        ASSERT(spl_raftlog_snapmeta_size(&m, &size) == 0);
        ASSERT(size == n);
        uint8_t *again = malloc(size);
        ASSERT(again);
        ASSERT(spl_raftlog_snapmeta_encode(&m, gid, again, size) == 0);
        ASSERT(memcmp(again, buf, n) == 0);
        free(again);
        spl_raftlog_snapmeta_free(&m);
    }
    free(buf);
}

/* The payload as the records of a group's only segment, then recovery. */
static void fuzz_recovery(const uint8_t *p, size_t n, uint64_t nonce)
{
    struct spl_vfs_mem *m;
    struct spl_raftlog_env *env = NULL;
    struct spl_raftlog *log = NULL;
    ASSERT(spl_vfs_mem_create(&m) == 0);
    const struct spl_vfs *vfs = spl_vfs_mem_vfs(m);
    ASSERT(spl_raftlog_pool_format(vfs, "/pool", SEG_SIZE, 1) == 0);
    struct spl_raftlog_env_config cfg = {.vfs = vfs, .pool_dir = "/pool",
                                         .segment_size = SEG_SIZE, .nonce_seed = 1};
    ASSERT(spl_raftlog_env_open(&cfg, &env) == 0);
    ASSERT(spl_raftlog_open(env, 1, "/g", SPL_RAFTLOG_CREATE, &log, NULL, 0) == 0);
    spl_raftlog_close(log);
    log = NULL;
    /* the segment: a valid header (first index 1, this nonce), then the payload */
    uint8_t *seg = calloc(1, SEG_SIZE);
    ASSERT(seg);
    struct spl_raftlog_seg_header h = {.group_id = 1, .seq = 1, .nonce = nonce,
                                       .first_index = 1, .segment_size = SEG_SIZE};
    spl_raftlog_seg_header_encode(&h, seg);
    size_t body = SEG_SIZE - SPL_RAFTLOG_SEGMENT_HEADER_SIZE;
    memcpy(seg + SPL_RAFTLOG_SEGMENT_HEADER_SIZE, p, n < body ? n : body);
    char name[48], path[64];
    int fd;
    spl_raftlog_seg_name(1, 1, name);
    snprintf(path, sizeof(path), "/g/%s", name);
    ASSERT(spl_vfs_open(vfs, path, SPL_VFS_RDWR | SPL_VFS_CREATE, &fd) == 0);
    ASSERT(spl_vfs_pwrite(vfs, fd, seg, SEG_SIZE, 0) == 0);
    spl_vfs_close(vfs, fd);
    free(seg);
    int rc = spl_raftlog_open(env, 1, "/g", 0, &log, NULL, 0);
    ASSERT(rc == 0 || rc == SPL_ELOG_CORRUPT);
    if (rc == 0) {
        uint64_t last = spl_raftlog_last_index(log);
        for (uint64_t i = 1; i <= last; i++) {
            struct spl_raftlog_entry e;
            uint32_t got = 0;
            spl_iobuf_init(&e.data);
            ASSERT(spl_raftlog_entries(log, i, i + 1, UINT64_MAX, &e, 1, &got) == 0);
            ASSERT(got == 1 && e.index == i);
            spl_iobuf_reset(&e.data);
        }
        spl_raftlog_close(log);
    }
    spl_raftlog_env_close(env);
    spl_vfs_mem_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        spl_log_set_level(SPL_LOG_FATAL);
        quiet = true;
    }
    if (size < 9)
        return 0;
    uint8_t mode = data[0];
    uint64_t nonce = get64(data + 1);
    const uint8_t *p = data + 9;
    size_t n = size - 9;
    switch (mode % 5) {
    case 0:
        fuzz_record(p, n, nonce, (mode & 8) != 0);
        break;
    case 1:
        fuzz_seg_header(p, n);
        break;
    case 2:
        fuzz_hardstate(p, n);
        break;
    case 3:
        fuzz_snapmeta(p, n, (mode & 8) != 0);
        break;
    default:
        fuzz_recovery(p, n, nonce);
        break;
    }
    return 0;
}
