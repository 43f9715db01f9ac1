/* test_namespace.c - volumes, recycle bin and segment allocation against a real etcd. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/errors.h"
#include "etcd_harness.h"
#include "mds/cluster_file.h"
#include "mds/etcd.h"
#include "mds/namespace.h"
#include "mds/topology.h"

#define GiB (1ull << 30)

static struct spl_etcd_harness harness;
static spl_etcd *etcd;
static spl_topo *topo;
static uint32_t lpool_id;

/* a settable wall clock for the recycle bin */
static uint64_t fake_now_ns = 1000 * SPL_NS_PER_SEC;
static uint64_t fake_ns(void *ctx) { return fake_now_ns; }
static const struct spl_clock fake_clock = {.mono_ns = fake_ns, .wall_ns = fake_ns};

static const char cluster[] =
    "physical_pools:\n  - name: p\n    zones:\n"
    "      - {name: z1, servers: [{name: a, ip: 10.0.0.1, chunkservers: "
    "[{port: 1, disk: /d1}, {port: 2, disk: /d2}]}]}\n"
    "      - {name: z2, servers: [{name: b, ip: 10.0.0.2, chunkservers: "
    "[{port: 1, disk: /d1}, {port: 2, disk: /d2}]}]}\n"
    "      - {name: z3, servers: [{name: c, ip: 10.0.0.3, chunkservers: "
    "[{port: 1, disk: /d1}, {port: 2, disk: /d2}]}]}\n"
    "logical_pools:\n  - {name: lp, physical_pool: p, copysets: 12}\n";

static int group_setup(void **state)
{
    spl_etcd_global_init();
    if (spl_etcd_harness_start(&harness) != 0)
        return -1;
    struct spl_etcd_config cfg = {.endpoints = harness.endpoint};
    if (spl_etcd_open(&cfg, &etcd) != 0)
        return -1;
    struct spl_cluster_desc d;
    if (spl_cluster_parse(cluster, strlen(cluster), &d, NULL, 0) != 0)
        return -1;
    int rc = spl_topo_open(etcd, 1, &topo);
    if (rc == 0)
        rc = spl_topo_apply_cluster(topo, &d, NULL, NULL, 0);
    spl_cluster_desc_free(&d);
    struct spl_topo_lpool l;
    if (rc == 0)
        rc = spl_topo_find_lpool(topo, "lp", &l);
    lpool_id = l.id;
    return rc == 0 && l.state == SPL_LPOOL_READY ? 0 : -1;
}

static int group_teardown(void **state)
{
    spl_topo_close(topo);
    spl_etcd_close(etcd);
    spl_etcd_harness_stop(&harness);
    return 0;
}

/* Each test starts without volumes (topology stays). */
static int wipe_ns(void **state)
{
    return spl_etcd_delete(etcd, "/spline/ns/", true, NULL);
}

static spl_ns *ns_open(uint64_t ttl_ms, uint64_t batch)
{
    struct spl_ns_options o = {.clock = &fake_clock, .recycle_ttl_ms = ttl_ms,
                               .chunk_id_batch = batch};
    spl_ns *ns;
    assert_int_equal(spl_ns_open(etcd, topo, &o, &ns), 0);
    return ns;
}

static bool listed(struct spl_volume *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return true;
    return false;
}

static void test_names_and_sizes(void **state)
{
    spl_ns *ns = ns_open(0, 0);
    char long_name[SPL_VOLUME_NAME_MAX + 1];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *bad[] = {"", "-a", ".a", "a/b", "a b", "a\n", long_name, "ü"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(spl_ns_create(ns, bad[i], GiB, "o", NULL, NULL), SPL_EVOL_BADNAME);
    long_name[SPL_VOLUME_NAME_MAX - 1] = '\0'; /* exactly the longest allowed */
    assert_int_equal(spl_ns_create(ns, long_name, GiB, "o", NULL, NULL), 0);
    assert_int_equal(spl_ns_create(ns, "A-z_0.9", GiB, "o", NULL, NULL), 0);
    assert_int_equal(spl_ns_create(ns, "v", 0, "o", NULL, NULL), SPL_EVOL_BADSIZE);
    assert_int_equal(spl_ns_create(ns, "v", GiB + 4096, "o", NULL, NULL), SPL_EVOL_BADSIZE);
    assert_int_equal(spl_ns_create(ns, "v", SPL_VOLUME_SIZE_MAX + GiB, "o", NULL, NULL),
                     SPL_EVOL_BADSIZE);
    assert_int_equal(spl_ns_create(ns, "v", SPL_VOLUME_SIZE_MAX, "o", NULL, NULL), 0);
    assert_int_equal(spl_ns_create(ns, "w", GiB, "o", "nopool", NULL), SPL_ETOPO_NOTFOUND);
    spl_ns_close(ns);
}

static void test_volume_lifecycle(void **state)
{
    spl_ns *ns = ns_open(0, 0);
    struct spl_volume v, s;
    assert_int_equal(spl_ns_create(ns, "vol1", 10 * GiB, "alice", "lp", &v), 0);
    assert_true(v.id > 0);
    assert_int_equal(v.lpool_id, lpool_id);
    assert_int_equal(spl_ns_create(ns, "vol1", GiB, "bob", NULL, NULL), SPL_EVOL_EXISTS);
    assert_int_equal(spl_ns_stat(ns, "vol1", &s), 0);
    assert_int_equal(s.id, v.id);
    assert_int_equal(s.size_bytes, 10 * GiB);
    assert_string_equal(s.owner, "alice");
    assert_int_equal(s.status, SPL_VOLUME_ACTIVE);
    assert_int_equal(s.ctime_ms, fake_now_ns / SPL_NS_PER_MS);
    assert_int_equal(spl_ns_open_volume(ns, "vol1", &s), 0);
    assert_int_equal(spl_ns_stat(ns, "nope", &s), SPL_EVOL_NOTFOUND);
    /* extend: grow, same size is a no-op, shrink refused */
    assert_int_equal(spl_ns_extend(ns, "vol1", 20 * GiB, &s), 0);
    assert_int_equal(s.size_bytes, 20 * GiB);
    assert_int_equal(spl_ns_extend(ns, "vol1", 20 * GiB, NULL), 0);
    assert_int_equal(spl_ns_extend(ns, "vol1", 10 * GiB, NULL), SPL_EVOL_BADSIZE);
    assert_int_equal(spl_ns_extend(ns, "nope", 30 * GiB, NULL), SPL_EVOL_NOTFOUND);
    /* rename: free target, taken target, same name */
    assert_int_equal(spl_ns_create(ns, "vol3", GiB, "carol", NULL, NULL), 0);
    assert_int_equal(spl_ns_rename(ns, "vol1", "vol2"), 0);
    assert_int_equal(spl_ns_stat(ns, "vol1", &s), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_stat(ns, "vol2", &s), 0);
    assert_int_equal(s.id, v.id);
    assert_int_equal(s.size_bytes, 20 * GiB);
    assert_int_equal(spl_ns_rename(ns, "vol2", "vol3"), SPL_EVOL_EXISTS);
    assert_int_equal(spl_ns_stat(ns, "vol2", &s), 0); /* unchanged */
    assert_int_equal(spl_ns_rename(ns, "vol2", "vol2"), 0);
    assert_int_equal(spl_ns_rename(ns, "nope", "x"), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_rename(ns, "vol2", "bad/name"), SPL_EVOL_BADNAME);
    struct spl_volume *all;
    size_t n;
    assert_int_equal(spl_ns_list(ns, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_true(listed(all, n, "vol2") && listed(all, n, "vol3"));
    free(all);
    /* delete -> recycle bin; the name is free at once */
    uint64_t id;
    assert_int_equal(spl_ns_delete(ns, "vol2", &id), 0);
    assert_int_equal(id, v.id);
    assert_int_equal(spl_ns_stat(ns, "vol2", &s), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_delete(ns, "vol2", NULL), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_recycle_list(ns, &all, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(all[0].name, "vol2");
    assert_int_equal(all[0].status, SPL_VOLUME_RECYCLED);
    free(all);
    assert_int_equal(spl_ns_list(ns, &all, &n), 0);
    assert_int_equal(n, 1);
    free(all);
    struct spl_volume again;
    assert_int_equal(spl_ns_create(ns, "vol2", GiB, "dave", NULL, &again), 0);
    assert_true(again.id != v.id);
    /* restore: the old name is taken now, a new one works */
    assert_int_equal(spl_ns_restore(ns, v.id, NULL, NULL), SPL_EVOL_EXISTS);
    assert_int_equal(spl_ns_restore(ns, v.id, "vol2-old", &s), 0);
    assert_int_equal(s.id, v.id);
    assert_int_equal(s.size_bytes, 20 * GiB);
    assert_string_equal(s.owner, "alice");
    assert_int_equal(spl_ns_stat(ns, "vol2-old", &s), 0);
    assert_int_equal(spl_ns_restore(ns, v.id, NULL, NULL), SPL_ERECYCLE_NOTFOUND);
    assert_int_equal(spl_ns_purge(ns, v.id), SPL_ERECYCLE_NOTFOUND); /* active: no purge */
    /* purge: gone for good, queued for the chunk collector */
    assert_int_equal(spl_ns_delete(ns, "vol2-old", NULL), 0);
    assert_int_equal(spl_ns_purge(ns, v.id), 0);
    assert_int_equal(spl_ns_stat_id(ns, v.id, &s), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_restore(ns, v.id, NULL, NULL), SPL_ERECYCLE_NOTFOUND);
    assert_int_equal(spl_ns_recycle_list(ns, &all, &n), 0);
    assert_int_equal(n, 0);
    char gk[96];
    snprintf(gk, sizeof gk, "/spline/ns/gc/%020llu", (unsigned long long)v.id);
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(etcd, gk, &kv), 0);
    spl_etcd_kv_free(&kv);
    spl_ns_close(ns);
}

static void test_recycle_ttl(void **state)
{
    spl_ns *ns = ns_open(1000, 0);
    uint64_t a, b, c;
    assert_int_equal(spl_ns_create(ns, "a", GiB, "", NULL, NULL), 0);
    assert_int_equal(spl_ns_create(ns, "b", GiB, "", NULL, NULL), 0);
    assert_int_equal(spl_ns_create(ns, "c", GiB, "", NULL, NULL), 0);
    assert_int_equal(spl_ns_delete(ns, "a", &a), 0);
    assert_int_equal(spl_ns_delete(ns, "b", &b), 0);
    size_t purged = 99;
    fake_now_ns += 500 * SPL_NS_PER_MS;
    assert_int_equal(spl_ns_purge_expired(ns, &purged), 0);
    assert_int_equal(purged, 0);
    assert_int_equal(spl_ns_delete(ns, "c", &c), 0);
    fake_now_ns += 600 * SPL_NS_PER_MS; /* a, b: 1100 ms old; c: 600 ms */
    assert_int_equal(spl_ns_purge_expired(ns, &purged), 0);
    assert_int_equal(purged, 2);
    struct spl_volume s;
    assert_int_equal(spl_ns_stat_id(ns, a, &s), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_stat_id(ns, b, &s), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_stat_id(ns, c, &s), 0);
    assert_int_equal(s.status, SPL_VOLUME_RECYCLED);
    fake_now_ns += 500 * SPL_NS_PER_MS;
    assert_int_equal(spl_ns_purge_expired(ns, &purged), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(spl_ns_stat_id(ns, c, &s), SPL_EVOL_NOTFOUND);
    spl_ns_close(ns);
}

static void test_segment_allocation(void **state)
{
    spl_ns *ns = ns_open(0, 100);
    struct spl_volume v;
    assert_int_equal(spl_ns_create(ns, "segs", 4 * GiB, "", NULL, &v), 0);
    struct spl_segment s1, s2;
    bool allocated;
    assert_int_equal(spl_ns_get_segment(ns, v.id, 0, &s1), -ENOENT);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 0, &s1, &allocated), 0);
    assert_true(allocated);
    assert_int_equal(s1.volume_id, v.id);
    assert_int_equal(s1.index, 0);
    assert_int_equal(s1.lpool_id, lpool_id);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 0, &s2, &allocated), 0);
    assert_false(allocated);
    assert_memory_equal(&s1, &s2, sizeof s1);
    assert_int_equal(spl_ns_get_segment(ns, v.id, 0, &s2), 0);
    assert_memory_equal(&s1, &s2, sizeof s1);
    /* 64 chunks over all 12 copysets of the pool, each copyset real */
    bool used[13] = {false};
    for (size_t i = 0; i < SPL_CHUNKS_PER_SEGMENT; i++) {
        struct spl_topo_copyset cs;
        assert_int_equal(spl_topo_get_copyset(topo, lpool_id, s1.chunks[i].copyset_id, &cs), 0);
        used[s1.chunks[i].copyset_id] = true;
    }
    for (int i = 1; i <= 12; i++)
        assert_true(used[i]);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 4, &s2, NULL), SPL_ESEG_OUTOFRANGE);
    assert_int_equal(spl_ns_extend(ns, "segs", 5 * GiB, NULL), 0);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 4, &s2, &allocated), 0);
    assert_true(allocated);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, 999999, 0, &s2, NULL), SPL_EVOL_NOTFOUND);
    /* a deleted volume allocates nothing more, but keeps what it has */
    assert_int_equal(spl_ns_delete(ns, "segs", NULL), 0);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 1, &s2, NULL), SPL_EVOL_NOTFOUND);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 0, &s2, NULL), 0);
    assert_memory_equal(&s1, &s2, sizeof s1);
    spl_ns_close(ns);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_chunk_ids_unique_across_batches_and_restarts(void **state)
{
    enum { SEGS_PER_ROUND = 6, ROUNDS = 3 };
    uint64_t *ids = calloc(ROUNDS * SEGS_PER_ROUND * SPL_CHUNKS_PER_SEGMENT, sizeof *ids);
    size_t n = 0;
    spl_ns *first = ns_open(0, 100);
    struct spl_volume v;
    assert_int_equal(spl_ns_create(first, "ids", 64 * GiB, "", NULL, &v), 0);
    spl_ns_close(first);
    for (int round = 0; round < ROUNDS; round++) {
        /* batch 100 < 6 x 64: several batches per round, and each "restart" (a new
         * namespace object) drops the rest of its last batch */
        spl_ns *ns = ns_open(0, 100);
        for (int s = 0; s < SEGS_PER_ROUND; s++) {
            struct spl_segment seg;
            uint32_t index = (uint32_t)(round * SEGS_PER_ROUND + s);
            assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, index, &seg, NULL), 0);
            for (size_t i = 0; i < SPL_CHUNKS_PER_SEGMENT; i++)
                ids[n++] = seg.chunks[i].chunk_id;
        }
        spl_ns_close(ns);
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
    for (size_t i = 1; i < n; i++)
        assert_true(ids[i] != ids[i - 1]);
    assert_true(ids[0] >= 1);
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(etcd, "/spline/ids/chunk", &kv), 0);
    assert_true(strtoull(kv.value, NULL, 10) >= ids[n - 1]);
    spl_etcd_kv_free(&kv);
    free(ids);
}

enum { RACE_SEGMENTS = 12, RACE_THREADS = 4 };

struct racer {
    spl_ns *ns;
    uint64_t volume_id;
    struct spl_segment segs[RACE_SEGMENTS];
    bool allocated[RACE_SEGMENTS];
    int rc;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    for (uint32_t i = 0; i < RACE_SEGMENTS && r->rc == 0; i++)
        r->rc = spl_ns_get_or_alloc_segment(r->ns, r->volume_id, i, &r->segs[i],
                                            &r->allocated[i]);
    return NULL;
}

static void test_concurrent_allocation_two_mds(void **state)
{
    /* two namespace objects (two MDS processes' worth), two threads on each */
    spl_ns *a = ns_open(0, 64), *b = ns_open(0, 64);
    struct spl_volume v;
    assert_int_equal(spl_ns_create(a, "race", RACE_SEGMENTS * GiB, "", NULL, &v), 0);
    static struct racer r[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].ns = i % 2 ? b : a;
        r[i].volume_id = v.id;
        pthread_create(&th[i], NULL, race_main, &r[i]);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int s = 0; s < RACE_SEGMENTS; s++) {
        int winners = 0;
        for (int i = 0; i < RACE_THREADS; i++) {
            assert_int_equal(r[i].rc, 0);
            assert_memory_equal(&r[i].segs[s], &r[0].segs[s], sizeof r[0].segs[s]);
            winners += r[i].allocated[s];
        }
        assert_int_equal(winners, 1);
        struct spl_segment stored;
        assert_int_equal(spl_ns_get_segment(a, v.id, (uint32_t)s, &stored), 0);
        assert_memory_equal(&stored, &r[0].segs[s], sizeof stored);
    }
    spl_ns_close(a);
    spl_ns_close(b);
}

static void test_restart_sees_the_same(void **state)
{
    spl_ns *ns = ns_open(0, 0);
    struct spl_volume v, s;
    assert_int_equal(spl_ns_create(ns, "persist", 2 * GiB, "eve", NULL, &v), 0);
    struct spl_segment seg, seg2;
    assert_int_equal(spl_ns_get_or_alloc_segment(ns, v.id, 1, &seg, NULL), 0);
    assert_int_equal(spl_ns_delete(ns, "persist", NULL), 0);
    spl_ns_close(ns);
    /* a new MDS: fresh topology and namespace objects over the same etcd */
    spl_topo *t2;
    assert_int_equal(spl_topo_open(etcd, 5, &t2), 0);
    spl_ns *ns2;
    assert_int_equal(spl_ns_open(etcd, t2, NULL, &ns2), 0);
    assert_int_equal(spl_ns_stat_id(ns2, v.id, &s), 0);
    assert_int_equal(s.status, SPL_VOLUME_RECYCLED);
    assert_string_equal(s.name, "persist");
    assert_int_equal(spl_ns_restore(ns2, v.id, NULL, &s), 0);
    assert_int_equal(spl_ns_stat(ns2, "persist", &s), 0);
    assert_int_equal(s.size_bytes, 2 * GiB);
    assert_int_equal(spl_ns_get_or_alloc_segment(ns2, v.id, 1, &seg2, NULL), 0);
    assert_memory_equal(&seg, &seg2, sizeof seg);
    spl_ns_close(ns2);
    spl_topo_close(t2);
}

static void test_fenced_namespace(void **state)
{
    spl_ns *ns = ns_open(0, 0);
    int64_t lease;
    assert_int_equal(spl_etcd_lease_grant(etcd, 10, &lease, NULL), 0);
    struct spl_etcd_leader_key lk;
    assert_int_equal(spl_etcd_campaign(etcd, "/spline/election/ns", lease, "x", 1, 5000, NULL,
                                       &lk), 0);
    struct spl_mds_fence f;
    spl_mds_fence_from_leader(&f, &lk);
    spl_ns_set_fence(ns, &f);
    struct spl_volume v;
    assert_int_equal(spl_ns_create(ns, "fenced", GiB, "", NULL, &v), 0);
    assert_int_equal(spl_etcd_lease_revoke(etcd, lease), 0); /* leadership ends with it */
    assert_int_equal(spl_ns_create(ns, "fenced2", GiB, "", NULL, NULL), SPL_EMDS_NOTLEADER);
    assert_int_equal(spl_ns_extend(ns, "fenced", 2 * GiB, NULL), SPL_EMDS_NOTLEADER);
    struct spl_volume s;
    assert_int_equal(spl_ns_stat(ns, "fenced", &s), 0); /* reads still work */
    assert_int_equal(s.size_bytes, GiB);
    spl_ns_close(ns);
    /* a deposed leader with no ids reserved yet moves no id counter either */
    struct spl_etcd_kv before, after, chunk_before, chunk_after;
    assert_int_equal(spl_etcd_get(etcd, "/spline/ids/volume", &before), 0);
    int chunk_rc = spl_etcd_get(etcd, "/spline/ids/chunk", &chunk_before);
    assert_true(chunk_rc == 0 || chunk_rc == -ENOENT);
    spl_ns *ns3 = ns_open(0, 0);
    spl_ns_set_fence(ns3, &f);
    assert_int_equal(spl_ns_create(ns3, "fenced3", GiB, "", NULL, NULL), SPL_EMDS_NOTLEADER);
    struct spl_segment seg;
    assert_int_equal(spl_ns_get_or_alloc_segment(ns3, v.id, 0, &seg, NULL),
                     SPL_EMDS_NOTLEADER);
    assert_int_equal(spl_etcd_get(etcd, "/spline/ids/volume", &after), 0);
    assert_int_equal(after.mod_revision, before.mod_revision);
    spl_etcd_kv_free(&after);
    spl_etcd_kv_free(&before);
    assert_int_equal(spl_etcd_get(etcd, "/spline/ids/chunk", &chunk_after), chunk_rc);
    if (chunk_rc == 0) {
        assert_int_equal(chunk_after.mod_revision, chunk_before.mod_revision);
        spl_etcd_kv_free(&chunk_after);
        spl_etcd_kv_free(&chunk_before);
    }
    spl_ns_close(ns3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_names_and_sizes, wipe_ns),
        cmocka_unit_test_setup(test_volume_lifecycle, wipe_ns),
        cmocka_unit_test_setup(test_recycle_ttl, wipe_ns),
        cmocka_unit_test_setup(test_segment_allocation, wipe_ns),
        cmocka_unit_test_setup(test_chunk_ids_unique_across_batches_and_restarts, wipe_ns),
        cmocka_unit_test_setup(test_concurrent_allocation_two_mds, wipe_ns),
        cmocka_unit_test_setup(test_restart_sees_the_same, wipe_ns),
        cmocka_unit_test_setup(test_fenced_namespace, wipe_ns),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
