/* test_etcd.c - the etcd client against a real etcd (etcd_harness.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/errors.h"
#include "etcd_harness.h"
#include "mds/etcd.h"

static struct spl_etcd_harness harness;

static int group_setup(void **state)
{
    spl_etcd_global_init();
    return spl_etcd_harness_start(&harness) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    spl_etcd_harness_stop(&harness);
    return 0;
}

static spl_etcd *client(uint32_t timeout_ms)
{
    struct spl_etcd_config cfg = {.endpoints = harness.endpoint, .timeout_ms = timeout_ms};
    spl_etcd *e = NULL;
    assert_int_equal(spl_etcd_open(&cfg, &e), 0);
    return e;
}

static void test_put_get_delete(void **state)
{
    spl_etcd *e = client(0);
    struct spl_etcd_kv kv;
    int64_t rev = 0, deleted = -1;
    assert_int_equal(spl_etcd_put(e, "/t/kv/a", "hello", 5, 0, &rev), 0);
    assert_true(rev > 0);
    assert_int_equal(spl_etcd_get(e, "/t/kv/a", &kv), 0);
    assert_string_equal(kv.key, "/t/kv/a");
    assert_int_equal(kv.value_len, 5);
    assert_memory_equal(kv.value, "hello", 5);
    assert_int_equal(kv.version, 1);
    assert_int_equal(kv.mod_revision, rev);
    spl_etcd_kv_free(&kv);
    /* binary values survive base64 */
    const char bin[4] = {0, (char)0xff, '\n', 0};
    assert_int_equal(spl_etcd_put(e, "/t/kv/b", bin, 4, 0, NULL), 0);
    assert_int_equal(spl_etcd_get(e, "/t/kv/b", &kv), 0);
    assert_int_equal(kv.value_len, 4);
    assert_memory_equal(kv.value, bin, 4);
    spl_etcd_kv_free(&kv);
    assert_int_equal(spl_etcd_get(e, "/t/kv/missing", &kv), -ENOENT);
    assert_int_equal(spl_etcd_delete(e, "/t/kv/a", false, &deleted), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(spl_etcd_get(e, "/t/kv/a", &kv), -ENOENT);
    assert_int_equal(spl_etcd_put(e, "/t/kv/c", "", 0, 0, NULL), 0);
    assert_int_equal(spl_etcd_delete(e, "/t/kv/", true, &deleted), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(spl_etcd_delete(e, "/t/kv/", true, &deleted), 0);
    assert_int_equal(deleted, 0);
    spl_etcd_close(e);
}

struct walk {
    int count;
    char last[64];
    bool ordered;
};

static int walk_cb(void *arg, const struct spl_etcd_kv *kv)
{
    struct walk *w = arg;
    if (w->count > 0 && strcmp(w->last, kv->key) >= 0)
        w->ordered = false;
    snprintf(w->last, sizeof w->last, "%s", kv->key);
    w->count++;
    return 0;
}

static int stop_at_10(void *arg, const struct spl_etcd_kv *kv)
{
    int *n = arg;
    return ++*n == 10 ? 42 : 0;
}

static void test_range_pagination(void **state)
{
    spl_etcd *e = client(0);
    struct spl_etcd_txn t;
    spl_etcd_txn_init(&t);
    for (int i = 0; i < 2500; i++) {
        char key[64], val[32];
        snprintf(key, sizeof key, "/t/page/%06d", i);
        snprintf(val, sizeof val, "v%d", i);
        spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, key, val, strlen(val), 0);
        if (spl_etcd_txn_ops_left(&t, SPL_ETCD_SUCCESS) == 0 || i == 2499) {
            assert_int_equal(spl_etcd_txn(e, &t, NULL), 0);
            spl_etcd_txn_reset(&t);
        }
    }
    spl_etcd_txn_free(&t);
    /* a key just past the prefix must not show up */
    assert_int_equal(spl_etcd_put(e, "/t/page0", "x", 1, 0, NULL), 0);
    struct spl_etcd_kvs r;
    char end[64];
    assert_int_equal(spl_etcd_prefix_end("/t/page/", end, sizeof end), 0);
    assert_int_equal(spl_etcd_range(e, "/t/page/", end, 10, 0, &r), 0);
    assert_int_equal(r.count, 10);
    assert_true(r.more);
    assert_int_equal(r.total, 2500);
    assert_string_equal(r.kvs[9].key, "/t/page/000009");
    spl_etcd_kvs_free(&r);
    struct walk w = {.ordered = true};
    int64_t rev = 0;
    assert_int_equal(spl_etcd_foreach(e, "/t/page/", 100, &rev, walk_cb, &w), 0);
    assert_int_equal(w.count, 2500);
    assert_true(w.ordered);
    assert_string_equal(w.last, "/t/page/002499");
    assert_true(rev > 0);
    w = (struct walk){.ordered = true};
    assert_int_equal(spl_etcd_foreach(e, "/t/page/", 7, NULL, walk_cb, &w), 0);
    assert_int_equal(w.count, 2500);
    int n = 0;
    assert_int_equal(spl_etcd_foreach(e, "/t/page/", 3, NULL, stop_at_10, &n), 42);
    assert_int_equal(n, 10);
    spl_etcd_close(e);
}

static void test_txn_cas(void **state)
{
    spl_etcd *e = client(0);
    struct spl_etcd_txn t;
    struct spl_etcd_txn_result res;
    spl_etcd_txn_init(&t);
    /* create-if-absent: first wins, second fails and reads the winner */
    for (int round = 0; round < 2; round++) {
        const char *mine = round == 0 ? "first" : "second";
        spl_etcd_txn_reset(&t);
        spl_etcd_txn_cmp(&t, "/t/cas/k", SPL_ETCD_CMP_VERSION, SPL_ETCD_EQ, 0);
        spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, "/t/cas/k", mine, strlen(mine), 0);
        spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, "/t/cas/index", "1", 1, 0);
        spl_etcd_txn_range(&t, SPL_ETCD_FAILURE, "/t/cas/k", NULL);
        int rc = spl_etcd_txn(e, &t, &res);
        if (round == 0) {
            assert_int_equal(rc, 0);
            assert_true(res.succeeded);
            assert_int_equal(res.op_count, 2);
        } else {
            assert_int_equal(rc, SPL_EETCD_TXNFAIL);
            assert_false(res.succeeded);
            assert_int_equal(res.op_count, 1);
            assert_int_equal(res.ranges[0].count, 1);
            assert_string_equal(res.ranges[0].kvs[0].value, "first");
        }
        spl_etcd_txn_result_free(&res);
    }
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(e, "/t/cas/k", &kv), 0);
    int64_t mod = kv.mod_revision, create = kv.create_revision;
    spl_etcd_kv_free(&kv);
    /* value, mod_revision and create_revision compares */
    spl_etcd_txn_reset(&t);
    spl_etcd_txn_cmp_value(&t, "/t/cas/k", SPL_ETCD_EQ, "first", 5);
    spl_etcd_txn_cmp(&t, "/t/cas/k", SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, mod);
    spl_etcd_txn_cmp(&t, "/t/cas/k", SPL_ETCD_CMP_CREATE, SPL_ETCD_EQ, create);
    spl_etcd_txn_put(&t, SPL_ETCD_SUCCESS, "/t/cas/k", "third", 5, 0);
    spl_etcd_txn_range(&t, SPL_ETCD_SUCCESS, "/t/cas/k", NULL);
    assert_int_equal(spl_etcd_txn(e, &t, &res), 0);
    assert_int_equal(res.ranges[1].count, 1);
    assert_string_equal(res.ranges[1].kvs[0].value, "third");
    spl_etcd_txn_result_free(&res);
    /* a stale mod_revision fails without changing anything */
    spl_etcd_txn_reset(&t);
    spl_etcd_txn_cmp(&t, "/t/cas/k", SPL_ETCD_CMP_MOD, SPL_ETCD_EQ, mod);
    spl_etcd_txn_delete(&t, SPL_ETCD_SUCCESS, "/t/cas/k", NULL);
    assert_int_equal(spl_etcd_txn(e, &t, NULL), SPL_EETCD_TXNFAIL);
    assert_int_equal(spl_etcd_get(e, "/t/cas/k", &kv), 0);
    assert_string_equal(kv.value, "third");
    spl_etcd_kv_free(&kv);
    /* range delete inside a txn, NE and GT compares */
    spl_etcd_txn_reset(&t);
    spl_etcd_txn_cmp_value(&t, "/t/cas/k", SPL_ETCD_NE, "first", 5);
    spl_etcd_txn_cmp(&t, "/t/cas/k", SPL_ETCD_CMP_VERSION, SPL_ETCD_GT, 1);
    spl_etcd_txn_delete(&t, SPL_ETCD_SUCCESS, "/t/cas/", "/t/cas0");
    assert_int_equal(spl_etcd_txn(e, &t, NULL), 0);
    assert_int_equal(spl_etcd_get(e, "/t/cas/index", &kv), -ENOENT);
    spl_etcd_txn_free(&t);
    spl_etcd_close(e);
}

static void test_lease_expiry_and_keepalive(void **state)
{
    spl_etcd *e = client(0);
    int64_t l1, l2, ttl;
    assert_int_equal(spl_etcd_lease_grant(e, 2, &l1, &ttl), 0);
    assert_int_equal(ttl, 2);
    assert_int_equal(spl_etcd_lease_grant(e, 2, &l2, NULL), 0);
    assert_int_equal(spl_etcd_put(e, "/t/lease/dies", "x", 1, l1, NULL), 0);
    assert_int_equal(spl_etcd_put(e, "/t/lease/lives", "y", 1, l2, NULL), 0);
    spl_etcd_keeper *k;
    assert_int_equal(spl_etcd_keeper_start(e, l2, 2, NULL, NULL, &k), 0);
    spl_sleep_ns(4500 * SPL_NS_PER_MS);
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(e, "/t/lease/dies", &kv), -ENOENT);
    assert_int_equal(spl_etcd_get(e, "/t/lease/lives", &kv), 0);
    assert_int_equal(kv.lease, l2);
    spl_etcd_kv_free(&kv);
    assert_true(spl_etcd_keeper_valid(k));
    assert_int_equal(spl_etcd_lease_ttl(e, l2, &ttl), 0);
    assert_true(ttl >= 1);
    assert_int_equal(spl_etcd_lease_keepalive(e, l1, NULL), SPL_EETCD_NOLEASE);
    assert_int_equal(spl_etcd_put(e, "/t/lease/x", "x", 1, l1, NULL), SPL_EETCD_NOLEASE);
    spl_etcd_keeper_stop(k);
    assert_int_equal(spl_etcd_lease_revoke(e, l2), 0);
    assert_int_equal(spl_etcd_get(e, "/t/lease/lives", &kv), -ENOENT);
    assert_int_equal(spl_etcd_lease_revoke(e, l2), SPL_EETCD_NOLEASE);
    spl_etcd_close(e);
}

struct lost {
    atomic_int calls;
    int reason;
};

static void lost_cb(void *arg, int64_t lease, int reason)
{
    struct lost *l = arg;
    l->reason = reason;
    atomic_fetch_add(&l->calls, 1);
}

static void test_keeper_reports_revoked_lease(void **state)
{
    spl_etcd *e = client(0);
    int64_t l;
    struct lost lost = {0};
    assert_int_equal(spl_etcd_lease_grant(e, 3, &l, NULL), 0);
    spl_etcd_keeper *k;
    assert_int_equal(spl_etcd_keeper_start(e, l, 3, lost_cb, &lost, &k), 0);
    assert_int_equal(spl_etcd_lease_revoke(e, l), 0);
    for (int i = 0; i < 60 && atomic_load(&lost.calls) == 0; i++)
        spl_sleep_ns(100 * SPL_NS_PER_MS);
    assert_int_equal(atomic_load(&lost.calls), 1);
    assert_int_equal(lost.reason, SPL_EETCD_NOLEASE);
    assert_false(spl_etcd_keeper_valid(k));
    spl_etcd_keeper_stop(k);
    spl_etcd_close(e);
}

struct seen {
    pthread_mutex_t lock;
    int count;
    enum spl_etcd_event_type type[16];
    char key[16][64];
    char value[16][16];
    bool prev[16];
};

static void watch_cb(void *arg, int status, const struct spl_etcd_event *ev, size_t n,
                     int64_t revision)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n && s->count < 16; i++, s->count++) {
        s->type[s->count] = ev[i].type;
        snprintf(s->key[s->count], 64, "%s", ev[i].kv.key);
        snprintf(s->value[s->count], 16, "%s", ev[i].kv.value);
        s->prev[s->count] = ev[i].has_prev;
    }
    pthread_mutex_unlock(&s->lock);
}

static int seen_count(struct seen *s, int want)
{
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&s->lock);
        int n = s->count;
        pthread_mutex_unlock(&s->lock);
        if (n >= want)
            return n;
        spl_sleep_ns(50 * SPL_NS_PER_MS);
    }
    return s->count;
}

static void test_watch(void **state)
{
    spl_etcd *e = client(0);
    struct seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    spl_etcd_watch *w;
    assert_int_equal(spl_etcd_put(e, "/t/watch/before", "0", 1, 0, NULL), 0);
    assert_int_equal(spl_etcd_watch_start(e, "/t/watch/", true, 0, true, watch_cb, &s, &w), 0);
    assert_int_equal(spl_etcd_put(e, "/t/watch/a", "1", 1, 0, NULL), 0);
    assert_int_equal(spl_etcd_put(e, "/t/other", "x", 1, 0, NULL), 0);
    assert_int_equal(spl_etcd_put(e, "/t/watch/a", "2", 1, 0, NULL), 0);
    assert_int_equal(spl_etcd_delete(e, "/t/watch/a", false, NULL), 0);
    assert_int_equal(seen_count(&s, 3), 3);
    spl_sleep_ns(200 * SPL_NS_PER_MS);
    pthread_mutex_lock(&s.lock);
    assert_int_equal(s.count, 3); /* nothing from /t/other, nothing from before */
    assert_int_equal(s.type[0], SPL_ETCD_EVENT_PUT);
    assert_string_equal(s.value[0], "1");
    assert_false(s.prev[0]);
    assert_int_equal(s.type[1], SPL_ETCD_EVENT_PUT);
    assert_string_equal(s.value[1], "2");
    assert_true(s.prev[1]);
    assert_int_equal(s.type[2], SPL_ETCD_EVENT_DELETE);
    assert_string_equal(s.key[2], "/t/watch/a");
    assert_true(s.prev[2]);
    pthread_mutex_unlock(&s.lock);
    spl_etcd_watch_stop(w);
    /* a watch from an old revision replays history */
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(e, "/t/watch/before", &kv), 0);
    struct seen s2 = {.lock = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(
        spl_etcd_watch_start(e, "/t/watch/", true, kv.mod_revision, false, watch_cb, &s2, &w), 0);
    spl_etcd_kv_free(&kv);
    assert_int_equal(seen_count(&s2, 4), 4);
    assert_string_equal(s2.key[0], "/t/watch/before");
    spl_etcd_watch_stop(w);
    spl_etcd_close(e);
}

struct campaigner {
    spl_etcd *e;
    int64_t lease;
    const char *value;
    int rc;
    atomic_bool done;
    struct spl_etcd_leader_key lk;
};

static void *campaign_main(void *arg)
{
    struct campaigner *c = arg;
    c->rc = spl_etcd_campaign(c->e, "/t/election", c->lease, c->value, strlen(c->value), 20000,
                              NULL, &c->lk);
    atomic_store(&c->done, true);
    return NULL;
}

struct observed {
    pthread_mutex_t lock;
    char values[8][16];
    int count;
};

static void observe_cb(void *arg, const struct spl_etcd_kv *leader)
{
    struct observed *o = arg;
    pthread_mutex_lock(&o->lock);
    if (o->count < 8 && (o->count == 0 || strcmp(o->values[o->count - 1], leader->value)))
        snprintf(o->values[o->count++], 16, "%s", leader->value);
    pthread_mutex_unlock(&o->lock);
}

static void test_election(void **state)
{
    spl_etcd *e = client(0);
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_leader(e, "/t/election", &kv), SPL_EETCD_NOLEADER);
    struct campaigner a = {.e = e, .value = "mds-a"}, b = {.e = e, .value = "mds-b"};
    assert_int_equal(spl_etcd_lease_grant(e, 10, &a.lease, NULL), 0);
    assert_int_equal(spl_etcd_lease_grant(e, 10, &b.lease, NULL), 0);
    campaign_main(&a);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.lk.lease, a.lease);
    assert_true(a.lk.rev > 0);
    struct observed obs = {.lock = PTHREAD_MUTEX_INITIALIZER};
    spl_etcd_observer *ob;
    assert_int_equal(spl_etcd_observe_start(e, "/t/election", observe_cb, &obs, &ob), 0);
    pthread_t tb;
    pthread_create(&tb, NULL, campaign_main, &b);
    spl_sleep_ns(700 * SPL_NS_PER_MS);
    assert_false(atomic_load(&b.done)); /* b waits while a leads */
    assert_int_equal(spl_etcd_leader(e, "/t/election", &kv), 0);
    assert_string_equal(kv.value, "mds-a");
    assert_string_equal(kv.key, a.lk.key);
    spl_etcd_kv_free(&kv);
    /* a third campaigner gives up at its deadline */
    struct spl_etcd_leader_key lk;
    int64_t lc;
    assert_int_equal(spl_etcd_lease_grant(e, 10, &lc, NULL), 0);
    assert_int_equal(spl_etcd_campaign(e, "/t/election", lc, "c", 1, 300, NULL, &lk),
                     -ETIMEDOUT);
    atomic_bool cancel = true; /* ... or when told to */
    assert_int_equal(spl_etcd_campaign(e, "/t/election", lc, "c", 1, 0, &cancel, &lk),
                     -ECANCELED);
    assert_int_equal(spl_etcd_proclaim(e, &a.lk, "mds-a2", 6), 0);
    assert_int_equal(spl_etcd_resign(e, &a.lk), 0);
    pthread_join(tb, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(spl_etcd_leader(e, "/t/election", &kv), 0);
    assert_string_equal(kv.value, "mds-b");
    spl_etcd_kv_free(&kv);
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&obs.lock);
        int n = obs.count;
        pthread_mutex_unlock(&obs.lock);
        if (n >= 3)
            break;
        spl_sleep_ns(100 * SPL_NS_PER_MS);
    }
    spl_etcd_observe_stop(ob);
    assert_int_equal(obs.count, 3);
    assert_string_equal(obs.values[0], "mds-a");
    assert_string_equal(obs.values[1], "mds-a2");
    assert_string_equal(obs.values[2], "mds-b");
    /* the leader's lease ending ends its leadership */
    assert_int_equal(spl_etcd_lease_revoke(e, b.lease), 0);
    assert_int_equal(spl_etcd_leader(e, "/t/election", &kv), SPL_EETCD_NOLEADER);
    spl_etcd_lease_revoke(e, a.lease);
    spl_etcd_lease_revoke(e, lc);
    spl_etcd_close(e);
}

static void test_unavailable_then_back(void **state)
{
    struct spl_etcd_harness h;
    assert_int_equal(spl_etcd_harness_start(&h), 0);
    /* a dead endpoint first: failover finds the live one */
    char endpoints[160];
    snprintf(endpoints, sizeof endpoints, "127.0.0.1:1,%s", h.endpoint);
    struct spl_etcd_config cfg = {.endpoints = endpoints, .timeout_ms = 1000};
    spl_etcd *e;
    assert_int_equal(spl_etcd_open(&cfg, &e), 0);
    assert_int_equal(spl_etcd_put(e, "/t/durable", "kept", 4, 0, NULL), 0);
    assert_string_equal(spl_etcd_endpoint(e), h.endpoint);
    struct seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    spl_etcd_watch *w;
    assert_int_equal(spl_etcd_watch_start(e, "/t/w/", true, 0, false, watch_cb, &s, &w), 0);
    int64_t lease;
    struct lost lost = {0};
    spl_etcd_keeper *k;
    assert_int_equal(spl_etcd_lease_grant(e, 2, &lease, NULL), 0);
    assert_int_equal(spl_etcd_keeper_start(e, lease, 2, lost_cb, &lost, &k), 0);
    spl_etcd_harness_kill(&h);
    struct spl_etcd_kv kv;
    uint64_t t0 = spl_mono_ns();
    assert_int_equal(spl_etcd_put(e, "/t/x", "x", 1, 0, NULL), SPL_EETCD_UNAVAILABLE);
    assert_int_equal(spl_etcd_get(e, "/t/durable", &kv), SPL_EETCD_UNAVAILABLE);
    assert_true(strlen(spl_etcd_errmsg()) > 0);
    assert_true(spl_mono_ns() - t0 < 10 * SPL_NS_PER_SEC);
    /* the keeper cannot renew: validity ends within the TTL, then loss is reported */
    for (int i = 0; i < 50 && atomic_load(&lost.calls) == 0; i++)
        spl_sleep_ns(100 * SPL_NS_PER_MS);
    assert_false(spl_etcd_keeper_valid(k));
    assert_int_equal(atomic_load(&lost.calls), 1);
    assert_int_equal(lost.reason, -ETIMEDOUT);
    spl_etcd_keeper_stop(k);
    assert_int_equal(spl_etcd_harness_restart(&h), 0);
    assert_int_equal(spl_etcd_get(e, "/t/durable", &kv), 0);
    assert_string_equal(kv.value, "kept");
    spl_etcd_kv_free(&kv);
    assert_int_equal(spl_etcd_put(e, "/t/w/after", "1", 1, 0, NULL), 0);
    /* the watch reconnected by itself */
    assert_int_equal(seen_count(&s, 1), 1);
    assert_string_equal(s.key[0], "/t/w/after");
    spl_etcd_watch_stop(w);
    spl_etcd_close(e);
    spl_etcd_harness_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_delete),
        cmocka_unit_test(test_range_pagination),
        cmocka_unit_test(test_txn_cas),
        cmocka_unit_test(test_lease_expiry_and_keepalive),
        cmocka_unit_test(test_keeper_reports_revoked_lease),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_election),
        cmocka_unit_test(test_unavailable_then_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
