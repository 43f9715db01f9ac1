/*
 * frame.h - the RPC frame codec: header encoding, an incremental frame parser and the
 * meta (protobuf-c) decoder. Pure functions over bytes: no sockets, no clock, no
 * threads, so the fuzzer (tests/fuzz/fuzz_rpc_frame.c) drives exactly what the
 * connections run. docs/rpc-frame.md is the one-page description of the wire layout.
 *
 * A frame is a 32-byte little-endian header, `meta_len` bytes of meta (a protobuf-c
 * message), `attach_len` bytes of raw attachment and, when SPL_RPC_FLAG_PAYLOAD_CRC is
 * set, a 4-byte CRC32C of meta||attachment. The header ends with the CRC32C of its first
 * 28 bytes.
 *
 * Thread-safety: a parser is used by one thread at a time; everything else is pure.
 */
#ifndef SPL_RPC_FRAME_H
#define SPL_RPC_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"
#include "base/iobuf.h"
#include "base/limits.h"

#define SPL_RPC_MAGIC 0x524C5053u /* "SPLR" as bytes on the wire */
#define SPL_RPC_VERSION 1u
#define SPL_RPC_HEADER_SIZE 32u
#define SPL_RPC_TRAILER_SIZE 4u /* payload CRC, present with SPL_RPC_FLAG_PAYLOAD_CRC */

/* Header flags. Bits not listed must be zero (else the frame is malformed). */
#define SPL_RPC_FLAG_RESPONSE 0x01u    /* a response; clear: a request */
#define SPL_RPC_FLAG_ERROR 0x02u       /* with RESPONSE: the meta is an RpcErrorMeta */
#define SPL_RPC_FLAG_PAYLOAD_CRC 0x04u /* a CRC32C trailer covers meta and attachment */
#define SPL_RPC_FLAGS_KNOWN 0x07u

/* The wire layout, pinned: this struct is never sent as is (encoding is byte by byte,
 * little-endian), it exists so that the offsets below are checked by the compiler. */
struct spl__rpc_wire_header {
    uint32_t magic;
    uint8_t version;
    uint8_t flags;
    uint16_t service_id;
    uint16_t method_index;
    uint16_t reserved; /* zero */
    uint32_t meta_len;
    uint64_t request_id;
    uint32_t attach_len;
    uint32_t header_crc; /* CRC32C of bytes [0, 28) */
};

#define SPL__RPC_OFF_MAGIC 0
#define SPL__RPC_OFF_VERSION 4
#define SPL__RPC_OFF_FLAGS 5
#define SPL__RPC_OFF_SERVICE 6
#define SPL__RPC_OFF_METHOD 8
#define SPL__RPC_OFF_RESERVED 10
#define SPL__RPC_OFF_META_LEN 12
#define SPL__RPC_OFF_REQUEST_ID 16
#define SPL__RPC_OFF_ATTACH_LEN 24
#define SPL__RPC_OFF_HEADER_CRC 28

#define SPL__RPC_PIN(field, off)                                                         \
    SPL_STATIC_ASSERT(__builtin_offsetof(struct spl__rpc_wire_header, field) == (off),     \
                      "rpc header: " #field " moved")
SPL__RPC_PIN(magic, SPL__RPC_OFF_MAGIC);
SPL__RPC_PIN(version, SPL__RPC_OFF_VERSION);
SPL__RPC_PIN(flags, SPL__RPC_OFF_FLAGS);
SPL__RPC_PIN(service_id, SPL__RPC_OFF_SERVICE);
SPL__RPC_PIN(method_index, SPL__RPC_OFF_METHOD);
SPL__RPC_PIN(reserved, SPL__RPC_OFF_RESERVED);
SPL__RPC_PIN(meta_len, SPL__RPC_OFF_META_LEN);
SPL__RPC_PIN(request_id, SPL__RPC_OFF_REQUEST_ID);
SPL__RPC_PIN(attach_len, SPL__RPC_OFF_ATTACH_LEN);
SPL__RPC_PIN(header_crc, SPL__RPC_OFF_HEADER_CRC);
SPL_STATIC_ASSERT(sizeof(struct spl__rpc_wire_header) == SPL_RPC_HEADER_SIZE,
                  "rpc header is 32 bytes");
SPL_STATIC_ASSERT(SPL_RPC_META_MAX <= UINT32_MAX && SPL_RPC_ATTACH_MAX <= UINT32_MAX,
                  "lengths fit their u32 fields");
SPL_STATIC_ASSERT((uint64_t)SPL_RPC_META_MAX + SPL_RPC_ATTACH_MAX < (1ull << 32),
                  "a whole frame's payload fits u32 arithmetic");

/* The decoded header (host order). */
struct spl_rpc_header {
    uint8_t version;
    uint8_t flags;
    uint16_t service_id;
    uint16_t method_index;
    uint32_t meta_len;
    uint64_t request_id;
    uint32_t attach_len;
};

/* spl_rpc_header_encode - write h as given (callers set version = SPL_RPC_VERSION; tests
 * may not) and its CRC into out. */
void spl_rpc_header_encode(const struct spl_rpc_header *h, uint8_t out[SPL_RPC_HEADER_SIZE]);

/* spl_rpc_header_decode - check and decode 32 header bytes. Returns
 *   0                  a valid header within the limits;
 *   SPL_ERPC_BADFRAME  wrong magic or header CRC mismatch: nothing in it can be trusted
 *                      (*h is not filled);
 * and, for an authentic header (magic and CRC good, *h filled so that an error reply
 * can name the request):
 *   SPL_EVERSION       version is not SPL_RPC_VERSION;
 *   SPL_ERPC_BADFRAME  unknown flag bits, ERROR without RESPONSE, reserved bits set;
 *   SPL_ETOOBIG        meta_len > meta_max or attach_len > attach_max. */
int spl_rpc_header_decode(const uint8_t in[SPL_RPC_HEADER_SIZE], uint32_t meta_max,
                          uint32_t attach_max, struct spl_rpc_header *h);

/* Incremental parser over a receive buffer. Bytes arrive in any pieces; frames come out
 * whole, their meta and attachment cut from the buffer (sharing its blocks: no copy). */
struct spl_rpc_parser {
    uint32_t meta_max;   /* limits this side enforces (<= the SPL_RPC_*_MAX) */
    uint32_t attach_max;
    bool flat_meta;      /* copy metas up to SPL_RPC_META_FLAT_MAX into the frame instead
                          * of cutting them out of the buffer (off after init) */
    bool have_header;    /* header of the frame in progress decoded into hdr */
    int error;           /* 0, or the fatal error returned: the stream is unusable */
    struct spl_rpc_header hdr;
};

/* Metas up to this size are copied flat when the parser has flat_meta set: a copy of a
 * few dozen bytes costs less than cutting a slice out of the receive buffer, releasing
 * it later and gathering it again for protobuf-c. */
#define SPL_RPC_META_FLAT_MAX 256

/* One parsed frame; the caller owns the iobufs (spl_rpc_frame_reset drops them). The meta
 * is either in `meta` (meta_flat false) or, with a flat_meta parser and a small meta, in
 * meta_buf (meta_flat true, `meta` stays empty); read it through
 * spl_rpc_frame_meta_unpack, which handles both. */
struct spl_rpc_frame {
    struct spl_rpc_header hdr;
    struct spl_iobuf meta;
    struct spl_iobuf attachment;
    bool meta_flat;
    uint8_t meta_buf[SPL_RPC_META_FLAT_MAX];
};

/* spl_rpc_parser_init - a parser enforcing meta_max / attach_max (0: the SPL_RPC_ maxima;
 * larger values are clamped to them). */
void spl_rpc_parser_init(struct spl_rpc_parser *p, uint32_t meta_max, uint32_t attach_max);

void spl_rpc_frame_init(struct spl_rpc_frame *f);
void spl_rpc_frame_reset(struct spl_rpc_frame *f);

/* spl_rpc_parser_next - take at most one frame from the front of `in`.
 * `out` must be empty (init or reset). Returns
 *   1                   a frame: out->hdr, out->meta, out->attachment are filled and its
 *                       bytes are gone from `in`;
 *   0                   more bytes needed (what is there stays in `in`);
 *   SPL_ECORRUPT        a whole frame whose payload CRC does not match: it is consumed,
 *                       out->hdr is filled (meta and attachment are not); the stream is
 *                       still in sync and parsing may go on;
 *   SPL_ERPC_BADFRAME   wrong magic (checked as soon as 4 bytes are there) or header CRC
 *                       mismatch: close the connection;
 *   SPL_EVERSION, SPL_ETOOBIG, SPL_ERPC_BADFRAME with p->have_header set: an authentic
 *                       header that cannot be served (see spl_rpc_header_decode); p->hdr
 *                       names the request; answer with an error, then close;
 *   -ENOMEM             out of memory; the stream position is lost: close.
 * After a fatal (non-ECORRUPT) error every later call returns it again. */
int spl_rpc_parser_next(struct spl_rpc_parser *p, struct spl_iobuf *in,
                        struct spl_rpc_frame *out);

/* spl_rpc_meta_unpack - decode a frame's meta as a `desc` message with `allocator` (NULL:
 * malloc). An empty meta is a message with every field at its default. Returns 0 and
 * *msg_out (free with protobuf_c_message_free_unpacked(*msg_out, allocator)), or
 * SPL_ERPC_BADMETA when the bytes are not a valid `desc` message, or -ENOMEM. */
int spl_rpc_meta_unpack(const ProtobufCMessageDescriptor *desc, const struct spl_iobuf *meta,
                        ProtobufCAllocator *allocator, ProtobufCMessage **msg_out);

/* spl_rpc_frame_meta_unpack - spl_rpc_meta_unpack of f's meta, flat or not. */
int spl_rpc_frame_meta_unpack(const ProtobufCMessageDescriptor *desc,
                              const struct spl_rpc_frame *f, ProtobufCAllocator *allocator,
                              ProtobufCMessage **msg_out);

/* spl_rpc_payload_crc - the trailer value: CRC32C over meta then attachment. */
uint32_t spl_rpc_payload_crc(const void *meta, size_t meta_len,
                             const struct spl_iobuf *attachment);

/* Little-endian helpers (also used by tests building frames by hand). */
static inline void spl_rpc_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void spl_rpc_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void spl_rpc_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t spl_rpc_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t spl_rpc_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t spl_rpc_get_le64(const uint8_t *p)
{
    return (uint64_t)spl_rpc_get_le32(p) | ((uint64_t)spl_rpc_get_le32(p + 4) << 32);
}

#endif
