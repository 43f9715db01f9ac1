/* fuzz_raft_msg.c - arbitrary bytes through the Raft message decoder, and every message
 * that decodes into a live 3-node group (src/raft), exactly as a transport would.
 *
 * Input: a sequence of records [u8 mode][u16 len, little endian][len bytes].
 *   mode bit 0  seal: append the CRC32C the wire form ends with, so the fuzzer reaches
 *               the field checks behind the checksum
 *   mode bit 1  address: force group and `to` to a member (which one: bits 2-3), so the
 *               message reaches the protocol instead of the addressing checks
 *   mode bit 4  tick the target node once after the step
 *   mode bit 5  pump: run readies and deliver the group's own messages (bounded)
 * Each run starts from the same freshly elected group (1 leads term 1 with two entries
 * committed), so a crash input replays exactly.
 *
 * Oracles beyond "no crash, no sanitizer report": the core asserts its own invariants at
 * every transition (spl__raft_check_invariants); a decoded message re-encodes and decodes
 * to the same fields; the decoder returns only its documented codes; step returns only
 * its documented codes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/random.h"
#include "raft/memstorage.h"
#include "raft/raft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NODES 3
#define FUZZ_QUEUE_MAX 256
#define FUZZ_PUMP_ROUNDS 16

struct fuzz_node {
    struct spl_raft *r;
    struct spl_raft_memstorage ms;
    struct spl_rand rand;
};

struct fuzz_queued {
    struct spl_raft_msg m;
    struct spl_raft_entry *ents;
};

static struct fuzz_node fz[FUZZ_NODES];
static struct fuzz_queued queue[FUZZ_QUEUE_MAX];
static uint32_t queue_len;
static struct spl_raft_entry dec_ents[SPL_RAFT_BATCH_ENTRIES_MAX];

static void quiet_log(void *ctx, enum spl_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
}

/* Copy m into the queue through its wire form (the ready's memory goes at advance). */
static void enqueue(const struct spl_raft_msg *m)
{
    if (queue_len == FUZZ_QUEUE_MAX)
        return; /* dropped, as a real network may */
    struct fuzz_queued *q = &queue[queue_len];
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    ASSERT(spl_raft_msg_encode(m, &wire) == 0);
    uint32_t cap = m->entry_count ? m->entry_count : 1;
    q->ents = calloc(cap, sizeof(*q->ents));
    ASSERT(q->ents != NULL);
    ASSERT(spl_raft_msg_decode(&wire, &q->m, q->ents, cap) == 0);
    spl_iobuf_reset(&wire);
    queue_len++;
}

static void handle_ready(struct fuzz_node *n)
{
    struct spl_raft_ready rd;
    spl_raft_ready(n->r, &rd);
    if (rd.snapshot)
        (void)spl_raft_memstorage_apply_snapshot(&n->ms, rd.snapshot);
    ASSERT(spl_raft_memstorage_append(&n->ms, rd.entries, rd.entry_count) == 0);
    if (rd.has_hard_state)
        spl_raft_memstorage_set_hard_state(&n->ms, &rd.hard_state);
    for (uint32_t i = 0; i < rd.msg_early_count; i++)
        enqueue(&rd.msgs_early[i]);
    for (uint32_t i = 0; i < rd.msg_count; i++)
        enqueue(&rd.msgs[i]);
    spl_raft_advance(n->r, &rd);
}

static void check_step_rc(int rc)
{
    ASSERTF(rc == 0 || rc == SPL_ERAFT_NOGROUP || rc == SPL_EINVAL_ARG || rc == SPL_ETOOBIG ||
                rc == SPL_ERAFT_STALE,
            "step returned %d", rc);
}

/* Readies and deliveries until quiet or FUZZ_PUMP_ROUNDS. */
static void pump(void)
{
    for (int round = 0; round < FUZZ_PUMP_ROUNDS; round++) {
        bool busy = false;
        for (int i = 0; i < FUZZ_NODES; i++)
            if (spl_raft_has_ready(fz[i].r)) {
                handle_ready(&fz[i]);
                busy = true;
            }
        uint32_t n = queue_len;
        for (uint32_t i = 0; i < n; i++) {
            struct spl_raft_msg *m = &queue[i].m;
            if (m->to >= 1 && m->to <= FUZZ_NODES)
                check_step_rc(spl_raft_step(fz[m->to - 1].r, m));
            spl_raft_msg_release(m);
            free(queue[i].ents);
        }
        memmove(queue, queue + n, (queue_len - n) * sizeof(queue[0]));
        queue_len -= n;
        busy = busy || n > 0;
        if (!busy)
            return;
    }
}

static void cluster_start(void)
{
    struct spl_raft_conf conf = {.voter_count = FUZZ_NODES, .voters = {1, 2, 3}};
    for (int i = 0; i < FUZZ_NODES; i++) {
        struct fuzz_node *n = &fz[i];
        spl_raft_memstorage_init(&n->ms);
        ASSERT(spl_raft_memstorage_bootstrap(&n->ms, &conf) == 0);
        spl_rand_seed(&n->rand, (uint64_t)i + 1);
        struct spl_raft_config cfg = {
            .id = (uint64_t)i + 1, .group = 1, .election_tick = 10, .heartbeat_tick = 1,
            .pre_vote = true, .check_quorum = true, .lease = true, .max_inflight_msgs = 8,
            .rand = &n->rand, .storage = &n->ms.storage, .log_fn = quiet_log};
        ASSERT(spl_raft_init(&cfg, &n->r) == 0);
    }
    ASSERT(spl_raft_campaign(fz[0].r) == 0);
    pump();
    for (int i = 0; i < 2; i++) {
        struct spl_iobuf b;
        spl_iobuf_init(&b);
        ASSERT(spl_iobuf_append(&b, "seed", 4) == 0);
        ASSERT(spl_raft_propose(fz[0].r, &b, NULL, NULL) == 0);
        spl_iobuf_reset(&b);
    }
    pump();
}

static void cluster_stop(void)
{
    for (uint32_t i = 0; i < queue_len; i++) {
        spl_raft_msg_release(&queue[i].m);
        free(queue[i].ents);
    }
    queue_len = 0;
    for (int i = 0; i < FUZZ_NODES; i++) {
        spl_raft_destroy(fz[i].r);
        spl_raft_memstorage_destroy(&fz[i].ms);
    }
}

/* Decode one record's bytes; re-encode what decodes (oracle); step it if asked. */
static void one_record(uint8_t mode, const uint8_t *p, size_t len)
{
    uint8_t *buf = malloc(len + 4);
    ASSERT(buf != NULL);
    memcpy(buf, p, len);
    if (mode & 1) {
        uint32_t crc = spl_crc32c(0, p, len);
        for (int i = 0; i < 4; i++)
            buf[len + (size_t)i] = (uint8_t)(crc >> (8 * i));
        len += 4;
    }
    struct spl_raft_msg m;
    int rc = spl_raft_msg_decode_bytes(buf, len, &m, dec_ents, SPL_ARRAY_SIZE(dec_ents));
    free(buf);
    ASSERTF(rc == 0 || rc == SPL_ECORRUPT || rc == SPL_EVERSION || rc == SPL_ETOOBIG ||
                rc == -ENOMEM,
            "decode returned %d", rc);
    if (rc != 0)
        return;
    struct spl_iobuf wire;
    spl_iobuf_init(&wire);
    ASSERT(spl_raft_msg_encode(&m, &wire) == 0);
    static struct spl_raft_entry again_ents[SPL_RAFT_BATCH_ENTRIES_MAX];
    struct spl_raft_msg again;
    ASSERT(spl_raft_msg_decode(&wire, &again, again_ents, SPL_ARRAY_SIZE(again_ents)) == 0);
    ASSERT(again.type == m.type && again.term == m.term && again.index == m.index &&
           again.entry_count == m.entry_count && again.commit == m.commit);
    spl_raft_msg_release(&again);
    spl_iobuf_reset(&wire);
    struct fuzz_node *target = &fz[((mode >> 2) & 3) % FUZZ_NODES];
    if (mode & 2) {
        m.group = 1;
        m.to = (uint64_t)(target - fz) + 1;
    } else if (m.to >= 1 && m.to <= FUZZ_NODES) {
        target = &fz[m.to - 1];
    }
    check_step_rc(spl_raft_step(target->r, &m));
    spl_raft_msg_release(&m);
    if (mode & 16)
        spl_raft_tick(target->r);
    if (mode & 32)
        pump();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cluster_start();
    size_t off = 0;
    for (int records = 0; records < 64 && off + 3 <= size; records++) {
        uint8_t mode = data[off];
        size_t len = (size_t)data[off + 1] | ((size_t)data[off + 2] << 8);
        off += 3;
        if (len > size - off)
            len = size - off;
        one_record(mode, data + off, len);
        off += len;
    }
    pump();
    cluster_stop();
    return 0;
}
