/*
 * confchange.c - configurations: validity, one-member changes and their wire form.
 *
 * A configuration is two sorted, disjoint id lists (voters, learners). A change moves
 * exactly one member (add voter, add learner, promote learner, remove), so the quorums
 * of consecutive configurations overlap (RAFT-INVARIANTS 11). The payload of a conf
 * entry is: u8 version, u8 op, varint node, then the resulting configuration (varint
 * voter count, voters, varint learner count, learners). Pure functions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft_int.h"

#define SPL__CONF_CHANGE_VERSION 1

void *spl__raft_xrealloc(void *p, size_t n, size_t size)
{
    ASSERT(size == 0 || n <= SIZE_MAX / size);
    void *q = realloc(p, n * size == 0 ? 1 : n * size);
    ASSERTF(q != NULL, "raft: out of memory (%zu x %zu bytes)", n, size);
    return q;
}

size_t spl__varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

bool spl__varint_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = *pos;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (i >= len)
            return false;
        uint8_t b = p[i++];
        if (shift == 63 && b > 1)
            return false; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            *pos = i;
            return true;
        }
    }
    return false;
}

static bool spl__ids_sorted(const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == SPL_RAFT_NONE || (i > 0 && ids[i - 1] >= ids[i]))
            return false;
    }
    return true;
}

static bool spl__ids_has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

bool spl_raft_conf_is_valid(const struct spl_raft_conf *conf)
{
    if (conf->voter_count > SPL_RAFT_PEERS_MAX || conf->learner_count > SPL_RAFT_PEERS_MAX)
        return false;
    if (conf->voter_count + conf->learner_count > SPL_RAFT_PEERS_MAX)
        return false;
    if (!spl__ids_sorted(conf->voters, conf->voter_count) ||
        !spl__ids_sorted(conf->learners, conf->learner_count))
        return false;
    for (uint32_t i = 0; i < conf->learner_count; i++)
        if (spl__ids_has(conf->voters, conf->voter_count, conf->learners[i]))
            return false;
    return true;
}

bool spl_raft_conf_is_voter(const struct spl_raft_conf *conf, uint64_t id)
{
    return spl__ids_has(conf->voters, conf->voter_count, id);
}

bool spl_raft_conf_is_learner(const struct spl_raft_conf *conf, uint64_t id)
{
    return spl__ids_has(conf->learners, conf->learner_count, id);
}

bool spl__conf_equal(const struct spl_raft_conf *a, const struct spl_raft_conf *b)
{
    return a->voter_count == b->voter_count && a->learner_count == b->learner_count &&
           memcmp(a->voters, b->voters, a->voter_count * sizeof(uint64_t)) == 0 &&
           memcmp(a->learners, b->learners, a->learner_count * sizeof(uint64_t)) == 0;
}

/* Insert id into the sorted list ids[0..*n). */
static void spl__ids_insert(uint64_t *ids, uint32_t *n, uint64_t id)
{
    uint32_t i = *n;
    while (i > 0 && ids[i - 1] > id) {
        ids[i] = ids[i - 1];
        i--;
    }
    ids[i] = id;
    (*n)++;
}

static void spl__ids_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            memmove(&ids[i], &ids[i + 1], (*n - i - 1) * sizeof(uint64_t));
            (*n)--;
            return;
        }
    }
}

int spl__conf_apply_op(const struct spl_raft_conf *cur, enum spl_raft_conf_op op, uint64_t node,
                       struct spl_raft_conf *out)
{
    ASSERT(spl_raft_conf_is_valid(cur));
    bool voter = spl_raft_conf_is_voter(cur, node);
    bool learner = spl_raft_conf_is_learner(cur, node);
    *out = *cur;
    if (op == SPL_RAFT_CONF_RESTATE)
        return 0;
    if (node == SPL_RAFT_NONE)
        return SPL_EINVAL_ARG;
    bool adding = op == SPL_RAFT_CONF_ADD_VOTER || op == SPL_RAFT_CONF_ADD_LEARNER;
    if (adding && cur->voter_count + cur->learner_count >= SPL_RAFT_PEERS_MAX && !voter &&
        !learner)
        return SPL_ETOOBIG;
    switch (op) {
    case SPL_RAFT_CONF_ADD_VOTER:
    case SPL_RAFT_CONF_ADD_LEARNER:
        if (voter || learner)
            return SPL_EINVAL_ARG;
        if (op == SPL_RAFT_CONF_ADD_VOTER)
            spl__ids_insert(out->voters, &out->voter_count, node);
        else
            spl__ids_insert(out->learners, &out->learner_count, node);
        break;
    case SPL_RAFT_CONF_PROMOTE:
        if (!learner)
            return SPL_EINVAL_ARG;
        spl__ids_remove(out->learners, &out->learner_count, node);
        spl__ids_insert(out->voters, &out->voter_count, node);
        break;
    case SPL_RAFT_CONF_REMOVE:
        if (!voter && !learner)
            return SPL_EINVAL_ARG;
        if (voter && cur->voter_count == 1)
            return SPL_EINVAL_ARG; /* never leave a group without voters */
        spl__ids_remove(out->voters, &out->voter_count, node);
        spl__ids_remove(out->learners, &out->learner_count, node);
        break;
    default:
        return SPL_EINVAL_ARG;
    }
    ASSERT(spl_raft_conf_is_valid(out));
    return 0;
}

size_t spl__conf_put(uint8_t *p, const struct spl_raft_conf *conf)
{
    size_t n = spl__varint_put(p, conf->voter_count);
    for (uint32_t i = 0; i < conf->voter_count; i++)
        n += spl__varint_put(p + n, conf->voters[i]);
    n += spl__varint_put(p + n, conf->learner_count);
    for (uint32_t i = 0; i < conf->learner_count; i++)
        n += spl__varint_put(p + n, conf->learners[i]);
    ASSERT_CMP(n, <=, SPL__CONF_WIRE_MAX);
    return n;
}

static bool spl__ids_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *ids,
                         uint32_t *count)
{
    uint64_t n;
    if (!spl__varint_get(p, len, pos, &n) || n > SPL_RAFT_PEERS_MAX)
        return false;
    for (uint64_t i = 0; i < n; i++)
        if (!spl__varint_get(p, len, pos, &ids[i]))
            return false;
    *count = (uint32_t)n;
    return true;
}

bool spl__conf_get(const uint8_t *p, size_t len, size_t *pos, struct spl_raft_conf *out)
{
    memset(out, 0, sizeof(*out));
    if (!spl__ids_get(p, len, pos, out->voters, &out->voter_count) ||
        !spl__ids_get(p, len, pos, out->learners, &out->learner_count))
        return false;
    return spl_raft_conf_is_valid(out);
}

int spl_raft_conf_change_encode(const struct spl_raft_conf_change *cc, struct spl_iobuf *out)
{
    ASSERT(spl_raft_conf_is_valid(&cc->conf));
    uint8_t buf[2 + SPL__VARINT_MAX + SPL__CONF_WIRE_MAX];
    size_t n = 0;
    buf[n++] = SPL__CONF_CHANGE_VERSION;
    buf[n++] = cc->op;
    n += spl__varint_put(buf + n, cc->node_id);
    n += spl__conf_put(buf + n, &cc->conf);
    return spl_iobuf_append(out, buf, n);
}

static bool spl__conf_op_known(uint8_t op)
{
    switch (op) {
#define XX(name, code, str) case code:
        SPL_RAFT_CONF_OPS(XX)
#undef XX
        return true;
    default:
        return false;
    }
}

int spl_raft_conf_change_decode(const struct spl_iobuf *data, struct spl_raft_conf_change *out)
{
    uint8_t buf[2 + SPL__VARINT_MAX + SPL__CONF_WIRE_MAX];
    uint64_t len = spl_iobuf_len(data);
    if (len < 2 || len > sizeof(buf))
        return SPL_ECORRUPT;
    spl_iobuf_copy_out(data, 0, buf, (size_t)len);
    if (buf[0] != SPL__CONF_CHANGE_VERSION)
        return SPL_EVERSION;
    memset(out, 0, sizeof(*out));
    out->op = buf[1];
    size_t pos = 2;
    if (!spl__conf_op_known(out->op) || !spl__varint_get(buf, len, &pos, &out->node_id) ||
        !spl__conf_get(buf, len, &pos, &out->conf) || pos != len)
        return SPL_ECORRUPT;
    if ((out->op == SPL_RAFT_CONF_RESTATE) != (out->node_id == SPL_RAFT_NONE))
        return SPL_ECORRUPT;
    if (out->conf.voter_count == 0)
        return SPL_ECORRUPT;
    return 0;
}

const char *spl_raft_conf_op_name(int op)
{
    switch (op) {
#define XX(name, code, str)                                                              \
    case code:                                                                           \
        return str;
        SPL_RAFT_CONF_OPS(XX)
#undef XX
    default:
        return "?";
    }
}
