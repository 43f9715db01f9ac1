/*
 * frame.c - the RPC frame codec; see frame.h and docs/rpc-frame.md.
 *
 * Order of checks on input (cheapest and most damning first): magic as soon as 4 bytes
 * are there, then the header CRC over the whole header, then version, flags and the
 * length limits. Only a header that passed magic and CRC is "authentic": its request id
 * may be used to address an error reply. The payload is checked (optional CRC) only once
 * it is complete; meta is decoded by the caller with spl_rpc_frame_meta_unpack.
 */
#include "rpc/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/errors.h"

void spl_rpc_header_encode(const struct spl_rpc_header *h, uint8_t out[SPL_RPC_HEADER_SIZE])
{
    ASSERT(h->meta_len <= SPL_RPC_META_MAX);
    ASSERT(h->attach_len <= SPL_RPC_ATTACH_MAX);
    spl_rpc_put_le32(out + SPL__RPC_OFF_MAGIC, SPL_RPC_MAGIC);
    out[SPL__RPC_OFF_VERSION] = h->version;
    out[SPL__RPC_OFF_FLAGS] = h->flags;
    spl_rpc_put_le16(out + SPL__RPC_OFF_SERVICE, h->service_id);
    spl_rpc_put_le16(out + SPL__RPC_OFF_METHOD, h->method_index);
    spl_rpc_put_le16(out + SPL__RPC_OFF_RESERVED, 0);
    spl_rpc_put_le32(out + SPL__RPC_OFF_META_LEN, h->meta_len);
    spl_rpc_put_le64(out + SPL__RPC_OFF_REQUEST_ID, h->request_id);
    spl_rpc_put_le32(out + SPL__RPC_OFF_ATTACH_LEN, h->attach_len);
    spl_rpc_put_le32(out + SPL__RPC_OFF_HEADER_CRC, spl_crc32c(0, out, SPL__RPC_OFF_HEADER_CRC));
}

/* Decode; *authentic tells whether magic and CRC passed (then *h is filled). */
static int spl_rpc_header_check(const uint8_t in[SPL_RPC_HEADER_SIZE], uint32_t meta_max,
                                uint32_t attach_max, struct spl_rpc_header *h, bool *authentic)
{
    *authentic = false;
    if (spl_rpc_get_le32(in + SPL__RPC_OFF_MAGIC) != SPL_RPC_MAGIC)
        return SPL_ERPC_BADFRAME;
    uint32_t crc = spl_crc32c(0, in, SPL__RPC_OFF_HEADER_CRC);
    if (crc != spl_rpc_get_le32(in + SPL__RPC_OFF_HEADER_CRC))
        return SPL_ERPC_BADFRAME;
    *authentic = true;
    h->version = in[SPL__RPC_OFF_VERSION];
    h->flags = in[SPL__RPC_OFF_FLAGS];
    h->service_id = spl_rpc_get_le16(in + SPL__RPC_OFF_SERVICE);
    h->method_index = spl_rpc_get_le16(in + SPL__RPC_OFF_METHOD);
    h->meta_len = spl_rpc_get_le32(in + SPL__RPC_OFF_META_LEN);
    h->request_id = spl_rpc_get_le64(in + SPL__RPC_OFF_REQUEST_ID);
    h->attach_len = spl_rpc_get_le32(in + SPL__RPC_OFF_ATTACH_LEN);
    if (h->version != SPL_RPC_VERSION)
        return SPL_EVERSION;
    if ((h->flags & ~SPL_RPC_FLAGS_KNOWN) != 0 || spl_rpc_get_le16(in + SPL__RPC_OFF_RESERVED))
        return SPL_ERPC_BADFRAME;
    if ((h->flags & SPL_RPC_FLAG_ERROR) && !(h->flags & SPL_RPC_FLAG_RESPONSE))
        return SPL_ERPC_BADFRAME;
    if (h->meta_len > meta_max || h->attach_len > attach_max)
        return SPL_ETOOBIG;
    return 0;
}

int spl_rpc_header_decode(const uint8_t in[SPL_RPC_HEADER_SIZE], uint32_t meta_max,
                          uint32_t attach_max, struct spl_rpc_header *h)
{
    bool authentic;
    return spl_rpc_header_check(in, meta_max, attach_max, h, &authentic);
}

void spl_rpc_parser_init(struct spl_rpc_parser *p, uint32_t meta_max, uint32_t attach_max)
{
    p->meta_max = (meta_max == 0 || meta_max > SPL_RPC_META_MAX) ? SPL_RPC_META_MAX : meta_max;
    p->attach_max = (attach_max == 0 || attach_max > SPL_RPC_ATTACH_MAX) ? SPL_RPC_ATTACH_MAX
                                                                         : attach_max;
    p->have_header = false;
    p->flat_meta = false;
    p->error = 0;
}

void spl_rpc_frame_init(struct spl_rpc_frame *f)
{
    spl_iobuf_init(&f->meta);
    spl_iobuf_init(&f->attachment);
    f->meta_flat = false;
}

/* Reset only what holds something: most frames leave one of the two empty (moved out or
 * never filled), and a reset costs a call and a (debug) whole-buffer check. */
static inline void spl_rpc_iobuf_clear(struct spl_iobuf *b)
{
    if (b->slice_count != 0 || b->heap != NULL)
        spl_iobuf_reset(b);
}

void spl_rpc_frame_reset(struct spl_rpc_frame *f)
{
    spl_rpc_iobuf_clear(&f->meta);
    spl_rpc_iobuf_clear(&f->attachment);
    f->meta_flat = false;
}

static int spl_rpc_parser_fail(struct spl_rpc_parser *p, int err)
{
    p->error = err;
    return err;
}

/* Header phase: 0 when a header was taken (p->have_header), 1 when more bytes are
 * needed, or a fatal error. */
static int spl_rpc_parser_header(struct spl_rpc_parser *p, struct spl_iobuf *in)
{
    uint8_t scratch[SPL_RPC_HEADER_SIZE];
    uint64_t have = spl_iobuf_len(in);
    if (have >= 4 && have < SPL_RPC_HEADER_SIZE) { /* early verdict on a partial header */
        const uint8_t *m = spl_iobuf_peek(in, 0, 4, scratch);
        if (spl_rpc_get_le32(m) != SPL_RPC_MAGIC)
            return spl_rpc_parser_fail(p, SPL_ERPC_BADFRAME);
    }
    if (have < SPL_RPC_HEADER_SIZE)
        return 1;
    const uint8_t *raw = spl_iobuf_peek(in, 0, SPL_RPC_HEADER_SIZE, scratch);
    bool authentic;
    int rc = spl_rpc_header_check(raw, p->meta_max, p->attach_max, &p->hdr, &authentic);
    if (rc != 0) {
        p->have_header = authentic;
        return spl_rpc_parser_fail(p, rc);
    }
    spl_iobuf_consume(in, SPL_RPC_HEADER_SIZE);
    p->have_header = true;
    return 0;
}

int spl_rpc_parser_next(struct spl_rpc_parser *p, struct spl_iobuf *in,
                        struct spl_rpc_frame *out)
{
    ASSERT(spl_iobuf_len(&out->meta) == 0 && spl_iobuf_len(&out->attachment) == 0);
    out->meta_flat = false;
    if (p->error != 0)
        return p->error;
    if (!p->have_header) {
        int rc = spl_rpc_parser_header(p, in);
        if (rc != 0)
            return rc == 1 ? 0 : rc;
    }
    const struct spl_rpc_header *h = &p->hdr;
    bool has_crc = (h->flags & SPL_RPC_FLAG_PAYLOAD_CRC) != 0;
    uint64_t need = (uint64_t)h->meta_len + h->attach_len + (has_crc ? SPL_RPC_TRAILER_SIZE : 0);
    if (spl_iobuf_len(in) < need)
        return 0;
    if (p->flat_meta && h->meta_len <= SPL_RPC_META_FLAT_MAX) {
        if (h->meta_len > 0) {
            const uint8_t *m = spl_iobuf_peek(in, 0, h->meta_len, out->meta_buf);
            if (m != out->meta_buf)
                memcpy(out->meta_buf, m, h->meta_len);
            spl_iobuf_consume(in, h->meta_len);
        }
        out->meta_flat = true;
    } else if (spl_iobuf_cut(in, h->meta_len, &out->meta) != 0) {
        spl_rpc_frame_reset(out);
        return spl_rpc_parser_fail(p, -ENOMEM);
    }
    if (spl_iobuf_cut(in, h->attach_len, &out->attachment) != 0) {
        spl_rpc_frame_reset(out);
        return spl_rpc_parser_fail(p, -ENOMEM);
    }
    out->hdr = *h;
    p->have_header = false;
    if (!has_crc)
        return 1;
    uint8_t scratch[SPL_RPC_TRAILER_SIZE];
    uint32_t want = spl_rpc_get_le32(spl_iobuf_peek(in, 0, SPL_RPC_TRAILER_SIZE, scratch));
    spl_iobuf_consume(in, SPL_RPC_TRAILER_SIZE);
    uint32_t crc = out->meta_flat ? spl_crc32c(0, out->meta_buf, h->meta_len)
                                          : spl_iobuf_crc32c(&out->meta, 0, 0, h->meta_len);
    crc = spl_iobuf_crc32c(&out->attachment, crc, 0, h->attach_len);
    if (crc != want) {
        spl_rpc_frame_reset(out);
        return SPL_ECORRUPT;
    }
    return 1;
}

/* Metas up to this size are decoded from the stack when they straddle blocks. */
#define SPL_RPC_META_STACK 512

int spl_rpc_meta_unpack(const ProtobufCMessageDescriptor *desc, const struct spl_iobuf *meta,
                        ProtobufCAllocator *allocator, ProtobufCMessage **msg_out)
{
    static const uint8_t empty[1];
    uint8_t stack[SPL_RPC_META_STACK];
    uint8_t *heap = NULL;
    size_t len = (size_t)spl_iobuf_len(meta);
    const uint8_t *data = empty;
    *msg_out = NULL;
    if (len > 0) {
        uint8_t *scratch = stack;
        if (len > sizeof(stack)) {
            heap = malloc(len);
            if (heap == NULL)
                return -ENOMEM;
            scratch = heap;
        }
        data = spl_iobuf_peek(meta, 0, len, scratch);
        ASSERT(data != NULL);
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, allocator, len, data);
    free(heap);
    if (msg == NULL)
        return SPL_ERPC_BADMETA;
    *msg_out = msg;
    return 0;
}

int spl_rpc_frame_meta_unpack(const ProtobufCMessageDescriptor *desc,
                              const struct spl_rpc_frame *f, ProtobufCAllocator *allocator,
                              ProtobufCMessage **msg_out)
{
    if (!f->meta_flat)
        return spl_rpc_meta_unpack(desc, &f->meta, allocator, msg_out);
    static const uint8_t empty[1];
    ProtobufCMessage *msg = protobuf_c_message_unpack(
        desc, allocator, f->hdr.meta_len, f->hdr.meta_len > 0 ? f->meta_buf : empty);
    *msg_out = msg;
    return msg != NULL ? 0 : SPL_ERPC_BADMETA;
}

uint32_t spl_rpc_payload_crc(const void *meta, size_t meta_len,
                             const struct spl_iobuf *attachment)
{
    uint32_t crc = spl_crc32c(0, meta, meta_len);
    if (attachment != NULL)
        crc = spl_iobuf_crc32c(attachment, crc, 0, spl_iobuf_len(attachment));
    return crc;
}
