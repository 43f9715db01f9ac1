/* test_lincheck.c - the WGL checker on hand-made histories and against brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/random.h"
#include "lincheck.h"

/* Appends a completed op [call, ret]. */
static void put(struct spl_lin_history *h, uint64_t key, uint64_t value, uint64_t call,
                uint64_t ret)
{
    size_t i = spl_lin_invoke(h, 0, SPL_LIN_PUT, key, value, call);
    spl_lin_complete(h, i, 0, ret);
}

static void get(struct spl_lin_history *h, uint64_t key, uint64_t value, uint64_t call,
                uint64_t ret)
{
    size_t i = spl_lin_invoke(h, 1, SPL_LIN_GET, key, 0, call);
    spl_lin_complete(h, i, value, ret);
}

static enum spl_lin_result check(struct spl_lin_history *h)
{
    return spl_lin_check(h->ops, h->count, 0, NULL);
}

static void test_empty_and_sequential(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    assert_int_equal(check(&h), SPL_LIN_OK);
    get(&h, 1, 0, 0, 1); /* an unwritten key reads as 0 */
    put(&h, 1, 10, 2, 3);
    get(&h, 1, 10, 4, 5);
    put(&h, 1, 11, 6, 7);
    get(&h, 1, 11, 8, 9);
    assert_int_equal(check(&h), SPL_LIN_OK);
    spl_lin_history_free(&h);
}

/* The classic stale read: a get that starts after a put returned sees the old value. */
static void test_stale_read(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    put(&h, 1, 10, 0, 1);
    put(&h, 1, 11, 2, 3);
    get(&h, 1, 10, 4, 5);
    struct spl_lin_report rep;
    assert_int_equal(spl_lin_check(h.ops, h.count, 0, &rep), SPL_LIN_VIOLATION);
    assert_int_equal(rep.key, 1);
    assert_int_equal(rep.key_ops, 3);
    spl_lin_history_free(&h);
}

/* The classic lost write: an acknowledged put is not visible to a later get. */
static void test_lost_write(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    put(&h, 7, 70, 0, 10);
    get(&h, 7, 0, 11, 12);
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);
}

/* A get concurrent with a put may see either value; equal times count as concurrent. */
static void test_concurrent_either(void **state)
{
    (void)state;
    for (uint64_t seen = 0; seen <= 1; seen++) {
        struct spl_lin_history h;
        spl_lin_history_init(&h);
        put(&h, 1, 1, 0, 10);
        get(&h, 1, seen, 5, 15);
        get(&h, 1, 1, 10, 20); /* invoked exactly when the put returned */
        assert_int_equal(check(&h), SPL_LIN_OK);
        spl_lin_history_free(&h);
    }
}

/* New-old inversion: two sequential reads during one write see new, then old. */
static void test_new_old_inversion(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    put(&h, 1, 5, 0, 100);
    get(&h, 1, 5, 10, 20);
    get(&h, 1, 0, 30, 40);
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);
}

/* A read of a value nobody wrote, or read before its write was invoked. */
static void test_value_from_nowhere(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    put(&h, 1, 5, 0, 1);
    get(&h, 1, 6, 2, 3);
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);

    spl_lin_history_init(&h);
    get(&h, 1, 9, 0, 1);
    spl_lin_invoke(&h, 2, SPL_LIN_PUT, 1, 9, 2); /* pending, invoked after the read */
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);
}

/* A pending (timed-out) put may take effect late, or never, but not un-happen. */
static void test_pending_put(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    spl_lin_invoke(&h, 2, SPL_LIN_PUT, 1, 9, 0);
    get(&h, 1, 0, 10, 11);   /* not yet */
    get(&h, 1, 9, 100, 101); /* took effect much later */
    assert_int_equal(check(&h), SPL_LIN_OK);
    get(&h, 1, 0, 200, 201); /* cannot be undone */
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);

    spl_lin_history_init(&h);
    spl_lin_invoke(&h, 2, SPL_LIN_PUT, 1, 9, 0); /* never takes effect */
    put(&h, 1, 3, 5, 6);
    get(&h, 1, 3, 7, 8);
    spl_lin_invoke(&h, 3, SPL_LIN_GET, 1, 0, 9); /* a pending get constrains nothing */
    assert_int_equal(check(&h), SPL_LIN_OK);
    /* ...or takes effect after the put of 3: 9 then visible, 3 no longer. */
    get(&h, 1, 9, 10, 11);
    assert_int_equal(check(&h), SPL_LIN_OK);
    get(&h, 1, 3, 12, 13);
    assert_int_equal(check(&h), SPL_LIN_VIOLATION);
    spl_lin_history_free(&h);
}

/* Keys are independent; the report names the failing key. */
static void test_per_key(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    put(&h, 1, 10, 0, 1);
    put(&h, 2, 20, 0, 1);
    get(&h, 1, 10, 2, 3);
    get(&h, 2, 10, 2, 3); /* key 2 never had 10 */
    struct spl_lin_report rep;
    assert_int_equal(spl_lin_check(h.ops, h.count, 0, &rep), SPL_LIN_VIOLATION);
    assert_int_equal(rep.key, 2);
    spl_lin_history_free(&h);
}

/* The step budget stops a search and says so. */
static void test_budget(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    for (uint64_t i = 1; i <= 30; i++)
        put(&h, 1, i, 0, 1000);
    get(&h, 1, 31, 2000, 2001);
    assert_int_equal(spl_lin_check(h.ops, h.count, 10, NULL), SPL_LIN_GAVE_UP);
    spl_lin_history_free(&h);
}

/* A long sequential history with much concurrency per window stays fast (memo works). */
static void test_long_concurrent(void **state)
{
    (void)state;
    struct spl_lin_history h;
    spl_lin_history_init(&h);
    struct spl_rand r;
    spl_rand_seed(&r, 42);
    /* 5 clients, overlapping ops, register semantics respected by construction. */
    uint64_t value = 0, t = 100;
    for (int i = 0; i < 4000; i++) {
        t += 10;
        uint64_t call = t - spl_rand_below(&r, 30), ret = t + spl_rand_below(&r, 30);
        if (spl_rand_chance(&r, 1, 2)) {
            value = (uint64_t)i + 1;
            put(&h, 1, value, call, ret);
        } else {
            get(&h, 1, value, call, ret);
        }
    }
    struct spl_lin_report rep;
    assert_int_equal(spl_lin_check(h.ops, h.count, 50000000, &rep), SPL_LIN_OK);
    spl_lin_history_free(&h);
}

/* ---- brute force: every subset of pending puts, every real-time-respecting order ---- */

#define BF_OPS_MAX 8
#define BF_KEYS 2

struct bf {
    const struct spl_lin_op *ops;
    size_t n;
    bool include[BF_OPS_MAX]; /* op takes part (completed, or pending put chosen) */
    bool placed[BF_OPS_MAX];
};

static bool bf_search(struct bf *b, uint64_t *regs, size_t left)
{
    if (left == 0)
        return true;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->include[i] || b->placed[i])
            continue;
        const struct spl_lin_op *o = &b->ops[i];
        bool minimal = true; /* no unplaced completed op returned before o was invoked */
        for (size_t j = 0; j < b->n && minimal; j++)
            if (b->include[j] && !b->placed[j] && !b->ops[j].pending &&
                b->ops[j].return_ns < o->call_ns)
                minimal = false;
        if (!minimal)
            continue;
        uint64_t saved = regs[o->key];
        if (o->kind == SPL_LIN_GET && o->value != saved)
            continue;
        if (o->kind == SPL_LIN_PUT)
            regs[o->key] = o->value;
        b->placed[i] = true;
        bool ok = bf_search(b, regs, left - 1);
        b->placed[i] = false;
        regs[o->key] = saved;
        if (ok)
            return true;
    }
    return false;
}

static bool bf_check(const struct spl_lin_op *ops, size_t n)
{
    size_t pend[BF_OPS_MAX], np = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].pending && ops[i].kind == SPL_LIN_PUT)
            pend[np++] = i;
    for (uint32_t mask = 0; mask < (1u << np); mask++) {
        struct bf b = {.ops = ops, .n = n};
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            b.include[i] = !ops[i].pending;
            left += b.include[i];
        }
        for (size_t p = 0; p < np; p++)
            if (mask & (1u << p)) {
                b.include[pend[p]] = true;
                left++;
            }
        uint64_t regs[BF_KEYS] = {0};
        if (bf_search(&b, regs, left))
            return true;
    }
    return false;
}

/* Random small histories: mostly from a real register with random linearization points,
 * then perturbed (wrong read values, lost ops) so both answers occur often. */
static void random_history(struct spl_rand *r, struct spl_lin_op *ops, size_t n)
{
    uint64_t lin_at[BF_OPS_MAX];
    for (size_t i = 0; i < n; i++) {
        struct spl_lin_op *o = &ops[i];
        memset(o, 0, sizeof(*o));
        o->key = spl_rand_below(r, BF_KEYS);
        o->kind = spl_rand_chance(r, 1, 2) ? SPL_LIN_PUT : SPL_LIN_GET;
        o->value = o->kind == SPL_LIN_PUT ? i + 1 : 0;
        o->call_ns = spl_rand_below(r, 20);
        lin_at[i] = o->call_ns + spl_rand_below(r, 6);
        o->return_ns = lin_at[i] + spl_rand_below(r, 6);
        o->client = (uint32_t)i;
    }
    /* Reads see the last put (by linearization point) before them on their key. */
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != SPL_LIN_GET)
            continue;
        uint64_t best = 0;
        size_t best_j = SIZE_MAX;
        for (size_t j = 0; j < n; j++) {
            if (ops[j].kind != SPL_LIN_PUT || ops[j].key != ops[i].key)
                continue;
            bool before = lin_at[j] < lin_at[i] || (lin_at[j] == lin_at[i] && j < i);
            bool later = best_j == SIZE_MAX || lin_at[j] > lin_at[best_j] ||
                         (lin_at[j] == lin_at[best_j] && j > best_j);
            if (before && later) {
                best = ops[j].value;
                best_j = j;
            }
        }
        ops[i].value = best;
        if (spl_rand_chance(r, 1, 4))
            ops[i].value = spl_rand_below(r, n + 1);
    }
    for (size_t i = 0; i < n; i++)
        if (spl_rand_chance(r, 1, 5))
            ops[i].pending = true;
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    struct spl_rand r;
    spl_rand_seed(&r, 20261122);
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct spl_lin_op ops[BF_OPS_MAX];
        size_t n = 1 + spl_rand_below(&r, BF_OPS_MAX);
        random_history(&r, ops, n);
        bool want = bf_check(ops, n);
        enum spl_lin_result got = spl_lin_check(ops, n, 0, NULL);
        if (got != (want ? SPL_LIN_OK : SPL_LIN_VIOLATION)) {
            for (size_t k = 0; k < BF_KEYS; k++)
                spl_lin_print_key(stderr, ops, n, k);
            fail_msg("iteration %d: brute force says %d, WGL says %d", iter, want, got);
        }
        want ? ok++ : bad++;
    }
    /* Both answers must be well represented, or the comparison proves little. */
    assert_true(ok > 4000);
    assert_true(bad > 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_sequential),
        cmocka_unit_test(test_stale_read),
        cmocka_unit_test(test_lost_write),
        cmocka_unit_test(test_concurrent_either),
        cmocka_unit_test(test_new_old_inversion),
        cmocka_unit_test(test_value_from_nowhere),
        cmocka_unit_test(test_pending_put),
        cmocka_unit_test(test_per_key),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_long_concurrent),
        cmocka_unit_test(test_random_vs_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
