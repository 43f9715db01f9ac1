/* fuzz_rpc_frame.c - arbitrary bytes through the RPC frame parser (src/rpc/frame.c) in
 * arbitrary pieces, then every parsed meta through protobuf-c decoding as each envelope
 * type, exactly as a server or channel would.
 *
 * Input: byte 0 selects the mode, the rest is the stream.
 *   bits 0-5  piece size - 1 (bytes fed to the parser at a time); an odd piece size
 *             also turns on flat metas (parser.flat_meta)
 *   bit 6     small limits (meta 64 B, attachment 256 B) instead of the SPL_RPC_ maxima
 *   bit 7     wrap: the stream is not raw wire bytes but becomes the meta (first half)
 *             and attachment (second half) of a frame with a valid header and payload
 *             CRC, so the protobuf decoders see arbitrary bytes behind a good header.
 *
 * Oracles beyond "no crash, no sanitizer report": a frame that comes out has exactly the
 * lengths its header names; every byte fed is either still buffered or accounted for by
 * a frame; after a fatal error the parser keeps returning the same error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "rpc.pb-c.h"
#include "rpc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const fuzz_descs[] = {
    &spline__rpc_error_meta__descriptor,
    &spline__rpc_echo_request__descriptor,
    &spline__rpc_echo_response__descriptor,
};

static void fuzz_decode_meta(const struct spl_rpc_frame *f)
{
    for (size_t i = 0; i < SPL_ARRAY_SIZE(fuzz_descs); i++) {
        ProtobufCMessage *msg = NULL;
        int rc = spl_rpc_frame_meta_unpack(fuzz_descs[i], f, NULL, &msg);
        ASSERT((rc == 0) == (msg != NULL));
        ASSERT(rc == 0 || rc == SPL_ERPC_BADMETA || rc == -ENOMEM);
        if (msg != NULL) {
            /* re-encoding what was decoded must work and fit the limit */
            size_t len = protobuf_c_message_get_packed_size(msg);
            uint8_t *buf = malloc(len ? len : 1);
            ASSERT(protobuf_c_message_pack(msg, buf) == len);
            free(buf);
            protobuf_c_message_free_unpacked(msg, NULL);
        }
    }
}

/* Feed `stream` to a parser piece by piece; decode what comes out. */
static void fuzz_parse(const uint8_t *stream, size_t size, size_t piece, bool small)
{
    struct spl_rpc_parser p;
    spl_rpc_parser_init(&p, small ? 64 : 0, small ? 256 : 0);
    p.flat_meta = (piece & 1) != 0; /* odd piece sizes: small metas copied flat */
    struct spl_iobuf in;
    spl_iobuf_init(&in);
    uint64_t fed = 0, framed = 0;
    int fatal = 0;
    for (size_t off = 0; off < size && fatal == 0; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (spl_iobuf_append(&in, stream + off, n) != 0)
            break;
        fed += n;
        for (;;) {
            struct spl_rpc_frame f;
            spl_rpc_frame_init(&f);
            int rc = spl_rpc_parser_next(&p, &in, &f);
            if (rc == 1 || rc == SPL_ECORRUPT) {
                bool crc = (f.hdr.flags & SPL_RPC_FLAG_PAYLOAD_CRC) != 0;
                framed += SPL_RPC_HEADER_SIZE + (uint64_t)f.hdr.meta_len + f.hdr.attach_len +
                          (crc ? SPL_RPC_TRAILER_SIZE : 0);
                ASSERT(f.hdr.meta_len <= p.meta_max && f.hdr.attach_len <= p.attach_max);
            }
            if (rc == 1) {
                ASSERT(spl_iobuf_len(&f.meta) == (f.meta_flat ? 0 : f.hdr.meta_len));
                ASSERT(!f.meta_flat || (p.flat_meta && f.hdr.meta_len <= SPL_RPC_META_FLAT_MAX));
                ASSERT(spl_iobuf_len(&f.attachment) == f.hdr.attach_len);
                fuzz_decode_meta(&f);
                spl_rpc_frame_reset(&f);
                continue;
            }
            if (rc == SPL_ECORRUPT)
                continue;
            if (rc != 0) {
                fatal = rc;
                ASSERT(spl_rpc_parser_next(&p, &in, &f) == rc); /* sticky */
            }
            break;
        }
    }
    /* Every byte fed belongs to a frame, to the header of the frame in progress, or is
     * still buffered: nothing lost, nothing counted twice. */
    if (fatal == 0) {
        uint64_t pending_header = p.have_header ? SPL_RPC_HEADER_SIZE : 0;
        ASSERT(framed + spl_iobuf_len(&in) + pending_header == fed);
    }
    spl_iobuf_reset(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    size_t piece = (size_t)(mode & 63) + 1;
    bool small = (mode & 64) != 0;

    if (size >= SPL_RPC_HEADER_SIZE) {
        struct spl_rpc_header h;
        (void)spl_rpc_header_decode(data, SPL_RPC_META_MAX, SPL_RPC_ATTACH_MAX, &h);
    }
    if (!(mode & 128)) {
        fuzz_parse(data, size, piece, small);
        return 0;
    }
    /* wrap the bytes into a well-formed frame (payload CRC included) */
    size_t meta_len = size / 2;
    if (meta_len > 64 && small)
        meta_len = 64;
    struct spl_rpc_header h = {.version = SPL_RPC_VERSION, .flags = SPL_RPC_FLAG_PAYLOAD_CRC,
                               .service_id = 1, .request_id = size,
                               .meta_len = (uint32_t)meta_len,
                               .attach_len = (uint32_t)(size - meta_len)};
    uint8_t *frame = malloc(SPL_RPC_HEADER_SIZE + size + SPL_RPC_TRAILER_SIZE);
    spl_rpc_header_encode(&h, frame);
    memcpy(frame + SPL_RPC_HEADER_SIZE, data, size);
    struct spl_iobuf att;
    spl_iobuf_init(&att);
    if (size > meta_len)
        spl_iobuf_append(&att, data + meta_len, size - meta_len);
    spl_rpc_put_le32(frame + SPL_RPC_HEADER_SIZE + size, spl_rpc_payload_crc(data, meta_len, &att));
    spl_iobuf_reset(&att);
    fuzz_parse(frame, SPL_RPC_HEADER_SIZE + size + SPL_RPC_TRAILER_SIZE, piece, small);
    free(frame);
    return 0;
}
