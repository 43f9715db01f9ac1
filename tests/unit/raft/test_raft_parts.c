/* test_raft_parts.c - the Raft core's parts in isolation: in-flight window, progress
 * states, quorum arithmetic, configuration changes and their payload, memstorage, the
 * unstable log, and a single-voter node through ready/advance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/errors.h"
#include "raft/memstorage.h"
#include "raft/raft.h"
#include "raft/raft_int.h"

/* ---- inflights ---- */

static void test_inflights_count(void **state)
{
    (void)state;
    struct spl__inflights f;
    spl__inflights_init(&f, 4, 0);
    for (uint64_t i = 1; i <= 4; i++) {
        assert_false(spl__inflights_full(&f));
        spl__inflights_add(&f, i * 10, 100);
    }
    assert_true(spl__inflights_full(&f));
    assert_int_equal(f.bytes, 400);
    spl__inflights_free_le(&f, 25); /* frees 10 and 20 */
    assert_int_equal(f.count, 2);
    assert_int_equal(f.bytes, 200);
    assert_false(spl__inflights_full(&f));
    /* wrap around the ring */
    spl__inflights_add(&f, 50, 1);
    spl__inflights_add(&f, 60, 1);
    assert_true(spl__inflights_full(&f));
    spl__inflights_free_le(&f, 5); /* nothing */
    assert_int_equal(f.count, 4);
    spl__inflights_free_le(&f, 60);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.bytes, 0);
    spl__inflights_free_le(&f, 1000); /* empty: no-op */
    assert_int_equal(f.count, 0);
}

static void test_inflights_bytes(void **state)
{
    (void)state;
    struct spl__inflights f;
    spl__inflights_init(&f, SPL_RAFT_INFLIGHT_MSGS_MAX, 1000);
    spl__inflights_add(&f, 1, 600);
    assert_false(spl__inflights_full(&f));
    spl__inflights_add(&f, 2, 500); /* over the byte budget: full now */
    assert_true(spl__inflights_full(&f));
    spl__inflights_free_le(&f, 1);
    assert_false(spl__inflights_full(&f));
    spl__inflights_reset(&f);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.bytes, 0);
}

/* ---- progress ---- */

static void test_progress_probe(void **state)
{
    (void)state;
    struct spl__progress pr;
    spl__progress_init(&pr, 2, 11, false, 4, 0);
    assert_int_equal(pr.state, SPL_RAFT_PROBE);
    assert_false(spl__progress_is_paused(&pr));
    spl__progress_sent(&pr, 10, 0); /* a probe went out */
    assert_true(spl__progress_is_paused(&pr));
    assert_int_equal(pr.next, 11); /* probing does not move next */
    /* stale rejection (not of the probe at 10) is ignored */
    assert_false(spl__progress_maybe_decr(&pr, 7, 3));
    /* rejection of the probe with hint 4: next = hint + 1 */
    assert_true(spl__progress_maybe_decr(&pr, 10, 4));
    assert_int_equal(pr.next, 5);
    assert_false(spl__progress_is_paused(&pr));
    /* a hint above the rejected index cannot raise next */
    spl__progress_sent(&pr, 4, 0);
    assert_true(spl__progress_maybe_decr(&pr, 4, 9));
    assert_int_equal(pr.next, 4);
    /* success moves match and next */
    assert_true(spl__progress_maybe_update(&pr, 8));
    assert_int_equal(pr.match, 8);
    assert_int_equal(pr.next, 9);
    assert_false(spl__progress_maybe_update(&pr, 6)); /* old ack */
    assert_int_equal(pr.match, 8);
}

static void test_progress_replicate(void **state)
{
    (void)state;
    struct spl__progress pr;
    spl__progress_init(&pr, 2, 1, false, 2, 0);
    spl__progress_maybe_update(&pr, 5);
    spl__progress_become_replicate(&pr);
    assert_int_equal(pr.next, 6);
    spl__progress_sent(&pr, 8, 30);
    spl__progress_sent(&pr, 10, 20);
    assert_int_equal(pr.next, 11);
    assert_true(spl__progress_is_paused(&pr)); /* window of 2 */
    assert_true(spl__progress_maybe_update(&pr, 8));
    spl__inflights_free_le(&pr.inflights, 8);
    assert_false(spl__progress_is_paused(&pr));
    /* a rejection at or below match is stale in replicate state */
    assert_false(spl__progress_maybe_decr(&pr, 8, 0));
    /* a real one sends next back to match + 1 */
    assert_true(spl__progress_maybe_decr(&pr, 10, 0));
    assert_int_equal(pr.next, 9);
    spl__progress_become_probe(&pr);
    assert_int_equal(pr.state, SPL_RAFT_PROBE);
    assert_int_equal(pr.inflights.count, 0);
}

static void test_progress_snapshot(void **state)
{
    (void)state;
    struct spl__progress pr;
    spl__progress_init(&pr, 3, 1, true, 4, 0);
    spl__progress_become_snapshot(&pr, 20);
    assert_true(spl__progress_is_paused(&pr));
    assert_int_equal(pr.pending_snapshot, 20);
    spl__progress_become_probe(&pr); /* snapshot done: continue after it */
    assert_int_equal(pr.next, 21);
    spl__progress_become_snapshot(&pr, 30);
    pr.pending_snapshot = 0; /* failed: probe from match */
    spl__progress_become_probe(&pr);
    assert_int_equal(pr.next, 1);
}

/* ---- quorum ---- */

static void test_quorum_index(void **state)
{
    (void)state;
    uint64_t one[] = {7};
    assert_int_equal(spl__quorum_index(one, 1), 7);
    uint64_t two[] = {3, 9};
    assert_int_equal(spl__quorum_index(two, 2), 3); /* both needed */
    uint64_t three[] = {5, 1, 9};
    assert_int_equal(spl__quorum_index(three, 3), 5);
    uint64_t four[] = {4, 8, 2, 6};
    assert_int_equal(spl__quorum_index(four, 4), 4); /* 3 of 4 have >= 4 */
    uint64_t five[] = {10, 0, 3, 7, 3};
    assert_int_equal(spl__quorum_index(five, 5), 3);
    assert_int_equal(spl__quorum_index(NULL, 0), UINT64_MAX);
}

static void test_quorum_vote(void **state)
{
    (void)state;
    assert_int_equal(spl__quorum_vote(1, 0, 1), SPL__VOTE_WON);
    assert_int_equal(spl__quorum_vote(1, 0, 3), SPL__VOTE_PENDING);
    assert_int_equal(spl__quorum_vote(2, 0, 3), SPL__VOTE_WON);
    assert_int_equal(spl__quorum_vote(1, 2, 3), SPL__VOTE_LOST);
    assert_int_equal(spl__quorum_vote(2, 2, 4), SPL__VOTE_LOST);
    assert_int_equal(spl__quorum_vote(2, 1, 4), SPL__VOTE_PENDING);
    assert_int_equal(spl__quorum_vote(3, 1, 5), SPL__VOTE_WON);
    assert_int_equal(spl__quorum_vote(2, 2, 5), SPL__VOTE_PENDING);
    assert_int_equal(spl__quorum_vote(2, 3, 5), SPL__VOTE_LOST);
}

/* ---- configuration ---- */

static struct spl_raft_conf conf_of(const uint64_t *voters, uint32_t nv, const uint64_t *learners,
                                    uint32_t nl)
{
    struct spl_raft_conf c;
    memset(&c, 0, sizeof(c));
    if (nv)
        memcpy(c.voters, voters, nv * sizeof(uint64_t));
    if (nl)
        memcpy(c.learners, learners, nl * sizeof(uint64_t));
    c.voter_count = nv;
    c.learner_count = nl;
    return c;
}

static void test_conf_ops(void **state)
{
    (void)state;
    uint64_t v[] = {1, 2, 3};
    struct spl_raft_conf c = conf_of(v, 3, NULL, 0), out;
    assert_true(spl_raft_conf_is_valid(&c));
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_ADD_LEARNER, 4, &out), 0);
    assert_true(spl_raft_conf_is_learner(&out, 4));
    c = out;
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_ADD_VOTER, 4, &out), SPL_EINVAL_ARG);
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_PROMOTE, 2, &out), SPL_EINVAL_ARG);
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_PROMOTE, 4, &out), 0);
    assert_true(spl_raft_conf_is_voter(&out, 4));
    assert_int_equal(out.learner_count, 0);
    assert_int_equal(out.voter_count, 4);
    c = out;
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_REMOVE, 1, &out), 0);
    assert_false(spl_raft_conf_is_voter(&out, 1));
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_REMOVE, 9, &out), SPL_EINVAL_ARG);
    assert_int_equal(spl__conf_apply_op(&c, SPL_RAFT_CONF_ADD_VOTER, 0, &out), SPL_EINVAL_ARG);
    /* never the last voter */
    uint64_t one[] = {5};
    struct spl_raft_conf single = conf_of(one, 1, NULL, 0);
    assert_int_equal(spl__conf_apply_op(&single, SPL_RAFT_CONF_REMOVE, 5, &out), SPL_EINVAL_ARG);
    /* full */
    uint64_t many[SPL_RAFT_PEERS_MAX];
    for (uint32_t i = 0; i < SPL_RAFT_PEERS_MAX; i++)
        many[i] = i + 1;
    struct spl_raft_conf full = conf_of(many, SPL_RAFT_PEERS_MAX, NULL, 0);
    assert_int_equal(spl__conf_apply_op(&full, SPL_RAFT_CONF_ADD_LEARNER, 99, &out), SPL_ETOOBIG);
    /* invalid shapes */
    uint64_t unsorted[] = {3, 1};
    struct spl_raft_conf bad = conf_of(unsorted, 2, NULL, 0);
    assert_false(spl_raft_conf_is_valid(&bad));
    uint64_t dup_v[] = {1, 2}, dup_l[] = {2};
    bad = conf_of(dup_v, 2, dup_l, 1);
    assert_false(spl_raft_conf_is_valid(&bad));
    uint64_t zero[] = {0, 1};
    bad = conf_of(zero, 2, NULL, 0);
    assert_false(spl_raft_conf_is_valid(&bad));
}

static void test_conf_change_codec(void **state)
{
    (void)state;
    uint64_t v[] = {1, 2, 300000}, l[] = {7};
    struct spl_raft_conf_change cc = {.op = SPL_RAFT_CONF_ADD_LEARNER, .node_id = 7,
                                      .conf = conf_of(v, 3, l, 1)}, back;
    struct spl_iobuf b;
    spl_iobuf_init(&b);
    assert_int_equal(spl_raft_conf_change_encode(&cc, &b), 0);
    assert_int_equal(spl_raft_conf_change_decode(&b, &back), 0);
    assert_int_equal(back.op, cc.op);
    assert_int_equal(back.node_id, 7);
    assert_true(spl__conf_equal(&back.conf, &cc.conf));
    /* every truncation and every single-byte change that decodes still yields a valid
     * configuration; none crashes */
    uint8_t raw[128];
    size_t len = spl_iobuf_copy_out(&b, 0, raw, sizeof(raw));
    for (size_t cut = 0; cut < len; cut++) {
        struct spl_iobuf t;
        spl_iobuf_init(&t);
        assert_int_equal(spl_iobuf_append(&t, raw, cut), 0);
        assert_int_not_equal(spl_raft_conf_change_decode(&t, &back), 0);
        spl_iobuf_reset(&t);
    }
    for (size_t i = 0; i < len; i++)
        for (int v2 = 0; v2 < 256; v2 += 17) {
            uint8_t copy[128];
            memcpy(copy, raw, len);
            copy[i] = (uint8_t)v2;
            struct spl_iobuf t;
            spl_iobuf_init(&t);
            assert_int_equal(spl_iobuf_append(&t, copy, len), 0);
            if (spl_raft_conf_change_decode(&t, &back) == 0)
                assert_true(spl_raft_conf_is_valid(&back.conf) && back.conf.voter_count > 0);
            spl_iobuf_reset(&t);
        }
    raw[0] = 9; /* version */
    struct spl_iobuf t;
    spl_iobuf_init(&t);
    assert_int_equal(spl_iobuf_append(&t, raw, len), 0);
    assert_int_equal(spl_raft_conf_change_decode(&t, &back), SPL_EVERSION);
    spl_iobuf_reset(&t);
    spl_iobuf_reset(&b);
}

/* ---- memstorage and the unstable log ---- */

static void append_entry(struct spl_raft_memstorage *ms, uint64_t term, uint64_t index,
                         const char *data)
{
    struct spl_raft_entry e = {.term = term, .index = index};
    spl_iobuf_init(&e.data);
    assert_int_equal(spl_iobuf_append(&e.data, data, strlen(data)), 0);
    assert_int_equal(spl_raft_memstorage_append(ms, &e, 1), 0);
    spl_iobuf_reset(&e.data);
}

static void test_memstorage(void **state)
{
    (void)state;
    struct spl_raft_memstorage ms;
    spl_raft_memstorage_init(&ms);
    const struct spl_raft_storage_ops *o = ms.storage.ops;
    uint64_t v = 0;
    for (uint64_t i = 1; i <= 5; i++)
        append_entry(&ms, i < 3 ? 1 : 2, i, "xxxx");
    assert_int_equal(o->last_index(&ms, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(o->term(&ms, 4, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(o->term(&ms, 6, &v), SPL_ERAFT_UNAVAILABLE);
    /* max_bytes: at least one entry, then stop before going over */
    struct spl_raft_entry out[8];
    uint32_t n = 0;
    assert_int_equal(o->entries(&ms, 1, 6, 9, out, 8, &n), 0);
    assert_int_equal(n, 2);
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_reset(&out[i].data);
    assert_int_equal(o->entries(&ms, 2, 6, 1, out, 8, &n), 0);
    assert_int_equal(n, 1);
    spl_iobuf_reset(&out[0].data);
    /* truncation by an append in the middle; a gap is refused */
    append_entry(&ms, 3, 4, "y");
    assert_int_equal(spl_raft_memstorage_last_index(&ms), 4);
    struct spl_raft_entry gap = {.term = 3, .index = 9};
    spl_iobuf_init(&gap.data);
    assert_int_equal(spl_raft_memstorage_append(&ms, &gap, 1), SPL_EINVAL_ARG);
    /* snapshot + compaction */
    struct spl_raft_conf c = {.voter_count = 1, .voters = {1}};
    struct spl_iobuf d;
    spl_iobuf_init(&d);
    assert_int_equal(spl_iobuf_append(&d, "state", 5), 0);
    assert_int_equal(spl_raft_memstorage_compact(&ms, 2), SPL_EINVAL_ARG); /* no snapshot */
    assert_int_equal(spl_raft_memstorage_create_snapshot(&ms, 3, &c, 4, &d), 0);
    assert_int_equal(spl_raft_memstorage_create_snapshot(&ms, 3, &c, 4, &d), SPL_ERAFT_STALE);
    assert_int_equal(spl_raft_memstorage_create_snapshot(&ms, 9, &c, 4, &d),
                     SPL_ERAFT_UNAVAILABLE);
    assert_int_equal(spl_raft_memstorage_compact(&ms, 3), 0);
    assert_int_equal(spl_raft_memstorage_compact(&ms, 2), SPL_ERAFT_COMPACTED);
    assert_int_equal(spl_raft_memstorage_first_index(&ms), 4);
    assert_int_equal(o->term(&ms, 3, &v), 0); /* the compaction point keeps its term */
    assert_int_equal(v, 2);
    assert_int_equal(o->term(&ms, 2, &v), SPL_ERAFT_COMPACTED);
    assert_int_equal(o->entries(&ms, 3, 5, 100, out, 8, &n), SPL_ERAFT_COMPACTED);
    struct spl_raft_snapshot_meta snap;
    assert_int_equal(o->snapshot(&ms, &snap), 0);
    assert_int_equal(snap.index, 3);
    assert_int_equal(snap.epoch, 4);
    assert_true(spl_iobuf_equal(&snap.data, &d));
    /* installing a received snapshot replaces the log */
    snap.index = 10;
    snap.term = 5;
    assert_int_equal(spl_raft_memstorage_apply_snapshot(&ms, &snap), 0);
    assert_int_equal(spl_raft_memstorage_first_index(&ms), 11);
    assert_int_equal(spl_raft_memstorage_last_index(&ms), 10);
    assert_int_equal(spl_raft_memstorage_apply_snapshot(&ms, &snap), SPL_ERAFT_STALE);
    spl_iobuf_reset(&snap.data);
    spl_iobuf_reset(&d);
    spl_raft_memstorage_destroy(&ms);
}

static void test_log_unstable(void **state)
{
    (void)state;
    struct spl_raft_memstorage ms;
    spl_raft_memstorage_init(&ms);
    append_entry(&ms, 1, 1, "a");
    append_entry(&ms, 1, 2, "b");
    struct spl__log l;
    spl__log_init(&l, &ms.storage, 1, 1);
    assert_int_equal(spl__log_last_index(&l), 2);
    struct spl_raft_entry e[3];
    for (int i = 0; i < 3; i++) {
        e[i] = (struct spl_raft_entry){.term = 2, .index = (uint64_t)i + 2};
        spl_iobuf_init(&e[i].data);
    }
    /* a conflicting append at 2 replaces part of the durable tail */
    assert_int_equal(spl__log_find_conflict(&l, e, 3), 2);
    spl__log_append(&l, e, 3);
    assert_int_equal(spl__log_last_index(&l), 4);
    assert_int_equal(spl__log_term_or0(&l, 2), 2);
    assert_int_equal(spl__log_term_or0(&l, 1), 1);
    assert_true(spl__log_up_to_date(&l, 4, 2));
    assert_false(spl__log_up_to_date(&l, 3, 2));
    assert_true(spl__log_up_to_date(&l, 1, 3));
    assert_int_equal(spl__log_find_conflict_by_term(&l, 4, 1), 1);
    assert_int_equal(spl__log_find_conflict_by_term(&l, 9, 2), 4);
    /* a slice spanning storage and unstable entries */
    struct spl_raft_entry out[4];
    uint32_t n = 0;
    assert_int_equal(spl__log_slice(&l, 1, 5, UINT64_MAX, out, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(out[0].term, 1);
    assert_int_equal(out[1].term, 2);
    for (uint32_t i = 0; i < n; i++)
        spl_iobuf_reset(&out[i].data);
    /* stable_to with a stale term is ignored; with the right one it moves offset */
    spl__log_stable_to(&l, 3, 1);
    assert_int_equal(l.offset, 2);
    assert_int_equal(spl_raft_memstorage_append(&ms, e, 2), 0);
    spl__log_stable_to(&l, 3, 2);
    assert_int_equal(l.offset, 4);
    assert_int_equal(l.count, 1);
    spl__log_check(&l);
    spl__log_destroy(&l);
    spl_raft_memstorage_destroy(&ms);
}

/* ---- a single-voter node ---- */

static void test_single_node(void **state)
{
    (void)state;
    struct spl_raft_memstorage ms;
    struct spl_rand rnd;
    spl_rand_seed(&rnd, 1);
    spl_raft_memstorage_init(&ms);
    struct spl_raft_conf c = {.voter_count = 1, .voters = {1}};
    assert_int_equal(spl_raft_memstorage_bootstrap(&ms, &c), 0);
    struct spl_raft_config cfg = {.id = 1, .group = 1, .election_tick = 10, .heartbeat_tick = 1,
                                  .max_inflight_msgs = 4, .rand = &rnd, .storage = &ms.storage};
    struct spl_raft *r = NULL;
    struct spl_raft_config bad = cfg;
    bad.heartbeat_tick = 10;
    assert_int_equal(spl_raft_init(&bad, &r), SPL_ECONFIG);
    bad = cfg;
    bad.lease = true; /* lease needs check_quorum */
    assert_int_equal(spl_raft_init(&bad, &r), SPL_ECONFIG);
    assert_int_equal(spl_raft_init(&cfg, &r), 0);
    struct spl_iobuf d;
    spl_iobuf_init(&d);
    assert_int_equal(spl_iobuf_append(&d, "hello", 5), 0);
    assert_int_equal(spl_raft_propose(r, &d, NULL, NULL), SPL_ENOTLEADER);
    assert_int_equal(spl_iobuf_len(&d), 5); /* untouched on failure */
    /* the election timeout fires within 2 * election_tick */
    for (int i = 0; i < 20; i++)
        spl_raft_tick(r);
    struct spl_raft_status st;
    spl_raft_get_status(r, &st);
    assert_int_equal(st.role, SPL_RAFT_LEADER);
    uint64_t index = 0, term = 0;
    assert_int_equal(spl_raft_propose(r, &d, &index, &term), 0);
    assert_int_equal(spl_iobuf_len(&d), 0); /* taken */
    assert_int_equal(index, 2);
    assert_int_equal(term, st.term);
    assert_int_equal(spl_raft_read_index(r, 42), 0);
    /* ready 1: entries to persist, nothing committed yet (not durable) */
    struct spl_raft_ready rd;
    assert_true(spl_raft_has_ready(r));
    spl_raft_ready(r, &rd);
    assert_true(rd.must_sync);
    assert_int_equal(rd.entry_count, 2);
    assert_int_equal(rd.committed_count, 0);
    assert_int_equal(rd.msg_count + rd.msg_early_count, 0);
    assert_false(spl_raft_has_ready(r)); /* a ready is out */
    assert_int_equal(spl_raft_memstorage_append(&ms, rd.entries, rd.entry_count), 0);
    spl_raft_memstorage_set_hard_state(&ms, &rd.hard_state);
    spl_raft_advance(r, &rd);
    /* ready 2: both commit once durable; the read waited for the commit in term */
    assert_true(spl_raft_has_ready(r));
    spl_raft_ready(r, &rd);
    assert_int_equal(rd.committed_count, 2);
    assert_int_equal(rd.committed[0].type, SPL_RAFT_ENTRY_CONF);
    assert_true(rd.conf_changed);
    assert_int_equal(rd.epoch, 1);
    assert_int_equal(rd.read_state_count, 1);
    assert_int_equal(rd.read_states[0].context, 42);
    assert_int_equal(rd.read_states[0].index, 2);
    spl_raft_memstorage_set_hard_state(&ms, &rd.hard_state);
    uint64_t term_saved = rd.hard_state.term;
    spl_raft_advance(r, &rd);
    assert_false(spl_raft_has_ready(r));
    spl_raft_get_status(r, &st);
    assert_int_equal(st.commit, 2);
    assert_int_equal(st.applied, 2);
    /* restart: applied 2 given, epoch and conf recomputed, nothing re-applied */
    spl_raft_destroy(r);
    cfg.applied = 2;
    assert_int_equal(spl_raft_init(&cfg, &r), 0);
    spl_raft_get_status(r, &st);
    assert_int_equal(st.epoch, 1);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.term, term_saved);
    assert_int_equal(st.vote, 1);
    spl_raft_destroy(r);
    spl_iobuf_reset(&d);
    spl_raft_memstorage_destroy(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflights_count),   cmocka_unit_test(test_inflights_bytes),
        cmocka_unit_test(test_progress_probe),    cmocka_unit_test(test_progress_replicate),
        cmocka_unit_test(test_progress_snapshot), cmocka_unit_test(test_quorum_index),
        cmocka_unit_test(test_quorum_vote),       cmocka_unit_test(test_conf_ops),
        cmocka_unit_test(test_conf_change_codec), cmocka_unit_test(test_memstorage),
        cmocka_unit_test(test_log_unstable),      cmocka_unit_test(test_single_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
