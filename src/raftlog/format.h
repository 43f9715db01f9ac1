/*
 * format.h - the raft log's on-disk formats: layouts, encoders and decoders (no I/O).
 *
 * Four formats, all little-endian, described for humans in docs/format-raftlog.md:
 *   segment header   two 80-byte slots at offsets 0 and 512 of a segment file; the valid
 *                    slot with the larger `gen` wins (rewritten in place to seal).
 *   record           32-byte header + data + zero padding to 8 bytes, from offset 4096;
 *                    CRC32C seeded with the segment's nonce, so bytes left over from an
 *                    earlier use of a pooled file never verify.
 *   hard state       two 64-byte slots at offsets 0 and 512 of a 4096-byte file; the valid
 *                    slot with the larger `seq` wins.
 *   snapshot meta    one variable-length file (80-byte header + body), replaced by rename.
 * The `struct spl__raftlog_*_disk` types exist to pin offsets with static assertions; the
 * encoders write each field at its offsetof(), so the layout does not depend on the
 * compiler's padding. Every decoder checks length, magic, version and checksum before it
 * trusts a field, and never reads outside the buffer it is given (fuzzed by
 * tests/fuzz/fuzz_raftlog_record.c).
 * Threads: pure functions; any thread.
 */
#ifndef SPL_RAFTLOG_FORMAT_H
#define SPL_RAFTLOG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"

#define SPL_RAFTLOG_SEG_MAGIC 0x474c5053u  /* "SPLG" */
#define SPL_RAFTLOG_REC_MAGIC 0x524c5053u  /* "SPLR" */
#define SPL_RAFTLOG_HS_MAGIC 0x484c5053u   /* "SPLH" */
#define SPL_RAFTLOG_SNAP_MAGIC 0x4d4c5053u /* "SPLM" */
#define SPL_RAFTLOG_FORMAT_VERSION 1

/* ---- segment header ---- */

#define SPL_RAFTLOG_SEG_SLOT_SIZE 80
#define SPL_RAFTLOG_SEG_SLOT_STRIDE 512 /* slot i at i * 512: one sector each */
#define SPL_RAFTLOG_SEG_SEALED 0x1u     /* flags: records after seal_last_index are void */

struct spl__raftlog_seg_disk {
    uint32_t magic;
    uint32_t crc; /* CRC32C of bytes [8, 80) */
    uint16_t version;
    uint16_t slot_size;
    uint32_t flags;
    uint64_t group_id;
    uint64_t seq;             /* orders the segments of one group */
    uint64_t nonce;           /* seeds every record CRC of this incarnation */
    uint64_t first_index;     /* index of the first record */
    uint64_t prev_term;       /* term of entry first_index - 1 (0 when none) */
    uint64_t seal_last_index; /* SEALED: the last valid index */
    uint64_t gen;             /* header generation: slot gen % 2 holds it */
    uint64_t segment_size;    /* the file's size in bytes */
};

struct spl_raftlog_seg_header {
    uint32_t flags;
    uint64_t group_id;
    uint64_t seq;
    uint64_t nonce;
    uint64_t first_index;
    uint64_t prev_term;
    uint64_t seal_last_index;
    uint64_t gen;
    uint64_t segment_size;
};

/* Encode h into out[0..SPL_RAFTLOG_SEG_SLOT_SIZE). */
void spl_raftlog_seg_header_encode(const struct spl_raftlog_seg_header *h, uint8_t *out);

/* Decode one slot from buf[0..len). 0; SPL_ECORRUPT (short, bad magic, size or CRC);
 * SPL_EVERSION. */
int spl_raftlog_seg_header_decode(const uint8_t *buf, size_t len,
                                  struct spl_raftlog_seg_header *out);

/* Pick the current header from the header region buf[0..len) (both slots): the valid
 * slot with the larger gen; *slot_out gets its slot (0 or 1; may be NULL). 0;
 * SPL_ECORRUPT when no slot is valid (*all_zero_out tells whether both slots are all
 * zero bytes: a freshly formatted pool file; may be NULL); SPL_EVERSION. */
int spl_raftlog_seg_header_pick(const uint8_t *buf, size_t len,
                                struct spl_raftlog_seg_header *out, int *slot_out,
                                bool *all_zero_out);

/* ---- record ---- */

#define SPL_RAFTLOG_REC_HEADER_SIZE 32
#define SPL_RAFTLOG_REC_ALIGN 8
#define SPL_RAFTLOG_REC_KIND_ENTRY 1

struct spl__raftlog_rec_disk {
    uint32_t magic;
    uint32_t crc;      /* CRC32C: seed = crc32c(nonce as 8 LE bytes), then bytes [8, 32),
                          then the data */
    uint32_t data_len; /* bytes of data (padding excluded) */
    uint8_t kind;      /* SPL_RAFTLOG_REC_KIND_ENTRY */
    uint8_t entry_type; /* the Raft entry type, opaque to the log */
    uint16_t nonce_tag; /* spl_raftlog_nonce_tag(segment nonce): tells a torn record of
                           this segment from bytes left by an earlier user of the file */
    uint64_t term;
    uint64_t index;
};

struct spl_raftlog_rec_header {
    uint32_t crc;
    uint32_t data_len;
    uint8_t kind;
    uint8_t entry_type;
    uint16_t nonce_tag;
    uint64_t term;
    uint64_t index;
};

/* The 16 bits of a segment nonce every record of that segment carries in clear. */
static inline uint16_t spl_raftlog_nonce_tag(uint64_t nonce)
{
    return (uint16_t)(nonce >> 48);
}

/* Bytes a record with data_len bytes takes in a segment (header, data, padding). */
static inline uint64_t spl_raftlog_rec_size(uint64_t data_len)
{
    return SPL_RAFTLOG_REC_HEADER_SIZE + ((data_len + SPL_RAFTLOG_REC_ALIGN - 1) &
                                          ~(uint64_t)(SPL_RAFTLOG_REC_ALIGN - 1));
}

/* Encode h (crc included) into out[0..32). */
void spl_raftlog_rec_header_encode(const struct spl_raftlog_rec_header *h, uint8_t *out);

/* The CRC of an encoded header's covered part (bytes [8, 32)) seeded with nonce; extend it
 * over the data with spl_crc32c() to get the record CRC. */
uint32_t spl_raftlog_rec_crc_head(uint64_t nonce, const uint8_t *hdr);

/* Decode a header from buf[0..len) without checking the CRC (that needs the data) or the
 * nonce tag. 0; SPL_ECORRUPT (short, bad magic or kind, data_len over data_len_max). */
int spl_raftlog_rec_header_decode(const uint8_t *buf, size_t len, uint64_t data_len_max,
                                  struct spl_raftlog_rec_header *out);

/* Decode and verify a whole record held in buf[0..len): header, data_len within both
 * data_len_max and the buffer, nonce tag, CRC over header and data with `nonce`.
 * 0 or SPL_ECORRUPT. */
int spl_raftlog_rec_verify(const uint8_t *buf, size_t len, uint64_t nonce,
                           uint64_t data_len_max, struct spl_raftlog_rec_header *out);

/* ---- hard state ---- */

#define SPL_RAFTLOG_HS_SLOT_SIZE 64
#define SPL_RAFTLOG_HS_SLOT_STRIDE 512
#define SPL_RAFTLOG_HS_FILE_SIZE 4096

struct spl__raftlog_hs_disk {
    uint32_t magic;
    uint32_t crc; /* CRC32C of bytes [8, 64) */
    uint16_t version;
    uint16_t slot_size;
    uint32_t reserved;
    uint64_t group_id;
    uint64_t seq; /* slot seq % 2 holds it; the larger valid seq wins */
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    uint64_t reserved2;
};

/* Raft's hard state: what must be durable before a message that depends on it leaves. */
struct spl_raftlog_hardstate {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

struct spl_raftlog_hs_slot {
    uint64_t group_id;
    uint64_t seq;
    struct spl_raftlog_hardstate hs;
};

void spl_raftlog_hs_encode(const struct spl_raftlog_hs_slot *s, uint8_t *out);
/* 0; SPL_ECORRUPT; SPL_EVERSION. */
int spl_raftlog_hs_decode(const uint8_t *buf, size_t len, struct spl_raftlog_hs_slot *out);
/* The valid slot with the larger seq from the file's first bytes buf[0..len). 0;
 * SPL_ECORRUPT (no valid slot); SPL_EVERSION. */
int spl_raftlog_hs_pick(const uint8_t *buf, size_t len, struct spl_raftlog_hs_slot *out,
                        int *slot_out);

/* ---- snapshot metadata ---- */

#define SPL_RAFTLOG_SNAP_HEADER_SIZE 80

struct spl__raftlog_snap_disk {
    uint32_t magic;
    uint32_t crc; /* CRC32C of bytes [8, total_len) */
    uint16_t version;
    uint16_t header_size;
    uint32_t reserved;
    uint64_t total_len;
    uint64_t group_id;
    uint64_t index;
    uint64_t term;
    uint64_t epoch;
    uint32_t voter_count;
    uint32_t learner_count;
    uint32_t file_count;
    uint32_t blob_len;
    uint64_t reserved2;
    /* then: voters u64[], learners u64[], files {u64 size, u16 name_len, name}[], blob */
};

/* A configuration: voters and learners (same shape as spl_raft_conf). */
struct spl_raftlog_membership {
    uint32_t voter_count;
    uint32_t learner_count;
    uint64_t voters[SPL_RAFT_PEERS_MAX];
    uint64_t learners[SPL_RAFT_PEERS_MAX];
};

/* A file the snapshot refers to (for a copyset: a chunk file and its size). */
struct spl_raftlog_snapfile {
    const char *name; /* NUL-terminated, 1..SPL_RAFTLOG_SNAP_NAME_MAX bytes, no '/' */
    uint64_t size;
};

/* What a snapshot is, as the log stores it. When filled by the caller, the pointers are
 * the caller's; when filled by a decoder, they point into priv_owned (free with
 * spl_raftlog_snapmeta_free()). */
struct spl_raftlog_snapmeta {
    uint64_t index;
    uint64_t term;
    uint64_t epoch;
    struct spl_raftlog_membership conf;
    uint32_t file_count;
    const struct spl_raftlog_snapfile *files;
    uint32_t blob_len; /* <= SPL_RAFTLOG_SNAP_BLOB_MAX */
    const void *blob;  /* opaque application bytes */
    void *priv_owned;
};

/* The encoded size of m: 0; SPL_ETOOBIG (a count, name or blob over its limit);
 * SPL_EINVAL_ARG (an empty name or one with '/' or NUL). */
int spl_raftlog_snapmeta_size(const struct spl_raftlog_snapmeta *m, uint64_t *size_out);

/* Encode m into out[0..len), len == spl_raftlog_snapmeta_size(m). 0 or as _size(). */
int spl_raftlog_snapmeta_encode(const struct spl_raftlog_snapmeta *m, uint64_t group_id,
                                uint8_t *out, size_t len);

/* Decode buf[0..len) into out (allocating priv_owned); *group_id_out gets the group.
 * 0; SPL_ECORRUPT; SPL_EVERSION; SPL_ETOOBIG; -ENOMEM. On error out owns nothing. */
int spl_raftlog_snapmeta_decode(const uint8_t *buf, size_t len, uint64_t *group_id_out,
                                struct spl_raftlog_snapmeta *out);

/* Free what a decoder allocated and zero m. */
void spl_raftlog_snapmeta_free(struct spl_raftlog_snapmeta *m);

/* ---- helpers ---- */

bool spl_raftlog_is_zero(const uint8_t *buf, size_t len);

/* Segment file names: "<seq as 16 hex>_<first index as 20 decimal>.seg". */
#define SPL_RAFTLOG_SEG_NAME_LEN 41
void spl_raftlog_seg_name(uint64_t seq, uint64_t first_index, char out[48]);
/* true when name is a segment name; fills seq and first index. */
bool spl_raftlog_seg_name_parse(const char *name, uint64_t *seq, uint64_t *first_index);

#endif
