/*
 * test_raft_stale_ack.c - FOUND-BUGS 10 as a deterministic test: a follower's append
 * answer that waits in the outbox for the next ready must not survive a conflicting
 * append (or a snapshot) that replaces the entries it acknowledges. Otherwise the next
 * ready persists the replacement and then sends "I hold your entries up to i" to the old
 * leader, which would count it for commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/random.h"
#include "raft/memstorage.h"
#include "raft/raft.h"

struct node {
    struct spl_raft_memstorage ms;
    struct spl_rand rand;
    struct spl_raft *r;
};

static void node_init(struct node *n)
{
    struct spl_raft_conf conf = {.voter_count = 3, .voters = {1, 2, 3}};
    spl_raft_memstorage_init(&n->ms);
    assert_int_equal(spl_raft_memstorage_bootstrap(&n->ms, &conf), 0);
    spl_rand_seed(&n->rand, 7);
    struct spl_raft_config cfg = {.id = 2, .group = 1, .election_tick = 10,
                                  .heartbeat_tick = 1, .max_inflight_msgs = 16,
                                  .rand = &n->rand, .storage = &n->ms.storage};
    assert_int_equal(spl_raft_init(&cfg, &n->r), 0);
}

static void node_destroy(struct node *n)
{
    spl_raft_destroy(n->r);
    spl_raft_memstorage_destroy(&n->ms);
}

/* An append from `from` in `term`: entries first..first+count-1 of entry term ent_term
 * after (prev, prev_term). */
static void step_append(struct node *n, uint64_t from, uint64_t term, uint64_t prev,
                        uint64_t prev_term, uint64_t first, uint32_t count, uint64_t ent_term)
{
    struct spl_raft_entry ents[8];
    struct spl_raft_msg m;
    assert_true(count <= 8);
    spl_raft_msg_init(&m);
    m.type = SPL_RAFT_MSG_APPEND;
    m.group = 1;
    m.from = from;
    m.to = 2;
    m.term = term;
    m.index = prev;
    m.log_term = prev_term;
    for (uint32_t i = 0; i < count; i++) {
        memset(&ents[i], 0, sizeof(ents[i]));
        ents[i].index = first + i;
        ents[i].term = ent_term;
        ents[i].type = SPL_RAFT_ENTRY_NORMAL;
        spl_iobuf_init(&ents[i].data);
        assert_int_equal(spl_iobuf_append(&ents[i].data, "x", 1), 0);
    }
    m.entries = ents;
    m.entry_count = count;
    assert_int_equal(spl_raft_step(n->r, &m), 0);
    for (uint32_t i = 0; i < count; i++)
        spl_iobuf_reset(&ents[i].data);
}

/* Persist rd into the storage (what a host does before sending rd.msgs). */
static void persist(struct node *n, const struct spl_raft_ready *rd)
{
    if (rd->snapshot)
        assert_int_equal(spl_raft_memstorage_apply_snapshot(&n->ms, rd->snapshot), 0);
    if (rd->entry_count)
        assert_int_equal(spl_raft_memstorage_append(&n->ms, rd->entries, rd->entry_count), 0);
    if (rd->has_hard_state)
        spl_raft_memstorage_set_hard_state(&n->ms, &rd->hard_state);
}

/* Every accepting answer to `to` in rd must name an index whose entry the durable log
 * (just persisted) holds in the answer's term. */
static void check_acks(const struct node *n, const struct spl_raft_ready *rd, uint32_t *acks)
{
    for (uint32_t i = 0; i < rd->msg_count; i++) {
        const struct spl_raft_msg *m = &rd->msgs[i];
        if (m->type != SPL_RAFT_MSG_APPEND_RESP || m->reject)
            continue;
        (*acks)++;
        uint64_t last = spl_raft_memstorage_last_index(&n->ms);
        assert_true(m->index <= last);
        /* an answer of term T claims entries written by T's leader up to index */
        if (m->index > 0) {
            const struct spl_raft_entry *e =
                &n->ms.entries[m->index - n->ms.base_index - 1];
            assert_true(e->term <= m->term);
            assert_true(m->term == 1 ? e->term == 1 : true);
        }
    }
}

static void test_conflicting_append_drops_waiting_ack(void **state)
{
    (void)state;
    struct node n;
    struct spl_raft_ready rd;
    uint32_t acks = 0;
    node_init(&n);
    /* leader 1, term 1: entries 1..3; the ready is handed out (syncing) */
    step_append(&n, 1, 1, 0, 0, 1, 3, 1);
    spl_raft_ready(n.r, &rd);
    assert_int_equal(rd.entry_count, 3);
    /* while it syncs: entries 4..5 from leader 1 -> an answer "up to 5" waits */
    step_append(&n, 1, 1, 3, 1, 4, 2, 1);
    /* leader 3 of term 2 replaces 4..5 with its own entry 4 */
    step_append(&n, 3, 2, 3, 1, 4, 1, 2);
    persist(&n, &rd);
    check_acks(&n, &rd, &acks);
    spl_raft_advance(n.r, &rd);
    /* the next ready persists the replacement, then sends what waited */
    spl_raft_ready(n.r, &rd);
    persist(&n, &rd);
    assert_int_equal(spl_raft_memstorage_last_index(&n.ms), 4);
    for (uint32_t i = 0; i < rd.msg_count; i++) {
        const struct spl_raft_msg *m = &rd.msgs[i];
        if (m->type == SPL_RAFT_MSG_APPEND_RESP && !m->reject && m->to == 1)
            fail_msg("stale answer to the old leader: index %llu in term %llu",
                     (unsigned long long)m->index, (unsigned long long)m->term);
    }
    check_acks(&n, &rd, &acks);
    spl_raft_advance(n.r, &rd);
    assert_true(acks >= 2); /* the first batch's answer and the new leader's */
    node_destroy(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conflicting_append_drops_waiting_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
