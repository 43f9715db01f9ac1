/* test_topology.c - the topology model against a real etcd. */
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
#include "mds/topology.h"

static struct spl_etcd_harness harness;
static spl_etcd *etcd;

static int group_setup(void **state)
{
    spl_etcd_global_init();
    if (spl_etcd_harness_start(&harness) != 0)
        return -1;
    struct spl_etcd_config cfg = {.endpoints = harness.endpoint};
    return spl_etcd_open(&cfg, &etcd);
}

static int group_teardown(void **state)
{
    spl_etcd_close(etcd);
    spl_etcd_harness_stop(&harness);
    return 0;
}

/* Every test starts from an empty /spline/. */
static int wipe(void **state)
{
    return spl_etcd_delete(etcd, "/spline/", true, NULL);
}

/* A cluster file: zones x servers x chunkservers, one logical pool. ip_shift changes
 * every server's ip (a conflicting file). */
static char *cluster_yaml(int zones, int servers, int per_server, uint32_t copysets,
                          int ip_shift)
{
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "physical_pools:\n  - name: pool1\n    zones:\n");
    for (int z = 0; z < zones; z++) {
        n += (size_t)snprintf(s + n, cap - n, "      - name: zone%d\n        servers:\n", z);
        for (int v = 0; v < servers; v++) {
            n += (size_t)snprintf(s + n, cap - n,
                                  "          - name: s%d-%d\n            ip: 10.0.%d.%d\n", z, v,
                                  z, v + 1 + ip_shift);
            if (per_server == 0)
                continue;
            n += (size_t)snprintf(s + n, cap - n, "            chunkservers:\n");
            for (int c = 0; c < per_server; c++)
                n += (size_t)snprintf(s + n, cap - n,
                                      "              - {port: %d, disk: /data/d%d, "
                                      "capacity: 1T}\n", 8200 + c, c);
        }
    }
    n += (size_t)snprintf(s + n, cap - n,
                          "logical_pools:\n  - {name: lpool1, physical_pool: pool1, "
                          "replicas: 3, copysets: %u}\n", copysets);
    assert_true(n < cap);
    return s;
}

static void parse(const char *yaml, struct spl_cluster_desc *d)
{
    char why[256];
    int rc = spl_cluster_parse(yaml, strlen(yaml), d, why, sizeof why);
    if (rc)
        fprintf(stderr, "parse: %s\n", why);
    assert_int_equal(rc, 0);
}

static int64_t store_revision(void)
{
    struct spl_etcd_kvs r;
    assert_int_equal(spl_etcd_range(etcd, "/none", NULL, 1, 0, &r), 0);
    int64_t rev = r.revision;
    spl_etcd_kvs_free(&r);
    return rev;
}

/* Zone rule and balance of every copyset of lpool in model t. */
static void check_placement(spl_topo *t, uint32_t lpool_id, uint32_t copysets, size_t css)
{
    struct spl_topo_copyset *sets;
    size_t n;
    assert_int_equal(spl_topo_list_copysets(t, lpool_id, &sets, &n), 0);
    assert_int_equal(n, copysets);
    uint32_t *count = calloc(65536, sizeof *count);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sets[i].member_count, 3);
        assert_int_equal(sets[i].id, i + 1);
        uint32_t zones[3];
        for (int r = 0; r < 3; r++) {
            struct spl_topo_chunkserver c;
            assert_int_equal(spl_topo_get_chunkserver(t, sets[i].members[r], &c), 0);
            zones[r] = c.zone_id;
            count[c.id]++;
        }
        assert_true(zones[0] != zones[1] && zones[1] != zones[2] && zones[0] != zones[2]);
    }
    double mean = (double)copysets * 3 / (double)css;
    struct spl_topo_chunkserver *all;
    size_t m;
    assert_int_equal(spl_topo_list_chunkservers(t, &all, &m), 0);
    assert_int_equal(m, css);
    for (size_t i = 0; i < m; i++) {
        assert_true(count[all[i].id] >= mean * 0.9);
        assert_true(count[all[i].id] <= mean * 1.1 + 0.999);
    }
    free(all);
    free(count);
    free(sets);
}

static void test_init_idempotent_and_reload(void **state)
{
    char *yaml = cluster_yaml(3, 4, 3, 360, 0);
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 1, &t), 0);
    struct spl_topo_init_report rep;
    char why[256];
    assert_int_equal(spl_topo_apply_cluster(t, &d, &rep, why, sizeof why), 0);
    assert_int_equal(rep.created.pools, 1);
    assert_int_equal(rep.created.zones, 3);
    assert_int_equal(rep.created.servers, 12);
    assert_int_equal(rep.created.chunkservers, 36);
    assert_int_equal(rep.created.lpools, 1);
    assert_int_equal(rep.lpools_placed, 1);
    struct spl_topo_lpool l;
    assert_int_equal(spl_topo_find_lpool(t, "lpool1", &l), 0);
    assert_int_equal(l.state, SPL_LPOOL_READY);
    check_placement(t, l.id, 360, 36);
    /* the same file again: nothing written at all */
    int64_t before = store_revision();
    assert_int_equal(spl_topo_apply_cluster(t, &d, &rep, why, sizeof why), 0);
    assert_int_equal(rep.created.pools + rep.created.zones + rep.created.servers +
                         rep.created.chunkservers + rep.created.lpools + rep.lpools_placed,
                     0);
    assert_int_equal(store_revision(), before);
    /* a second MDS (or a restart) loads the same model from etcd */
    spl_topo *t2;
    assert_int_equal(spl_topo_open(etcd, 2, &t2), 0);
    struct spl_topo_counts c1, c2;
    spl_topo_get_counts(t, &c1);
    spl_topo_get_counts(t2, &c2);
    assert_memory_equal(&c1, &c2, sizeof c1);
    assert_int_equal(c2.copysets, 360);
    for (uint32_t id = 1; id <= 360; id++) {
        struct spl_topo_copyset a, b;
        assert_int_equal(spl_topo_get_copyset(t, l.id, id, &a), 0);
        assert_int_equal(spl_topo_get_copyset(t2, l.id, id, &b), 0);
        assert_memory_equal(a.members, b.members, sizeof a.members);
    }
    /* and applying the file through it is also a no-op */
    assert_int_equal(spl_topo_apply_cluster(t2, &d, &rep, why, sizeof why), 0);
    assert_int_equal(store_revision(), before);
    spl_topo_close(t2);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
    free(yaml);
}

static void expect_refused(spl_topo *t, const char *yaml, int code, const char *names)
{
    struct spl_cluster_desc d;
    parse(yaml, &d);
    char why[256] = "";
    int64_t before = store_revision();
    int rc = spl_topo_apply_cluster(t, &d, NULL, why, sizeof why);
    if (rc != code || !strstr(why, names))
        fprintf(stderr, "rc %d why '%s'\n", rc, why);
    assert_int_equal(rc, code);
    assert_non_null(strstr(why, names));
    assert_int_equal(store_revision(), before); /* refused before writing anything */
    spl_cluster_desc_free(&d);
}

static void test_conflicting_init_refused(void **state)
{
    char *yaml = cluster_yaml(3, 1, 1, 30, 0);
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 1, &t), 0);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    spl_cluster_desc_free(&d);
    free(yaml);
    /* servers with other ips */
    yaml = cluster_yaml(3, 1, 1, 30, 5);
    expect_refused(t, yaml, SPL_ETOPO_EXISTS, "server 's0-0'");
    free(yaml);
    /* another copyset count */
    yaml = cluster_yaml(3, 1, 1, 31, 0);
    expect_refused(t, yaml, SPL_ETOPO_EXISTS, "logical pool 'lpool1'");
    free(yaml);
    /* a zone moved to another physical pool */
    expect_refused(t,
                   "physical_pools:\n  - name: pool2\n    zones:\n      - name: zone0\n",
                   SPL_ETOPO_EXISTS, "zone 'zone0'");
    /* a chunkserver moved to another server */
    expect_refused(t,
                   "physical_pools:\n  - name: pool1\n    zones:\n      - name: zone0\n"
                   "        servers:\n          - name: other\n            ip: 10.0.0.1\n"
                   "            chunkservers: [{port: 8200, disk: /data/d0}]\n",
                   SPL_ETOPO_EXISTS, "chunkserver");
    expect_refused(t, "logical_pools:\n  - {name: l2, physical_pool: nopool, copysets: 3}\n",
                   SPL_ETOPO_INVALID, "nopool");
    /* an added object is fine: the file grows with the cluster */
    struct spl_cluster_desc d2;
    parse("physical_pools:\n  - name: pool1\n    zones:\n      - name: zone3\n", &d2);
    struct spl_topo_init_report rep;
    assert_int_equal(spl_topo_apply_cluster(t, &d2, &rep, NULL, 0), 0);
    assert_int_equal(rep.created.zones, 1);
    assert_int_equal(rep.created.pools, 0);
    spl_cluster_desc_free(&d2);
    spl_topo_close(t);
}

static struct spl_topo_cs_registration reg_of(const char *server, const char *host, int port,
                                              const char *disk)
{
    struct spl_topo_cs_registration r = {.port = (uint16_t)port, .capacity_bytes = 1ull << 40};
    snprintf(r.server_name, sizeof r.server_name, "%s", server);
    snprintf(r.host, sizeof r.host, "%s", host);
    snprintf(r.disk, sizeof r.disk, "%s", disk);
    return r;
}

static void test_registration_then_placement(void **state)
{
    char *yaml = cluster_yaml(3, 3, 0, 27, 0); /* no chunkservers declared */
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 7, &t), 0);
    struct spl_topo_init_report rep;
    assert_int_equal(spl_topo_apply_cluster(t, &d, &rep, NULL, 0), 0);
    assert_int_equal(rep.lpools_pending, 1);
    struct spl_topo_lpool l;
    assert_int_equal(spl_topo_find_lpool(t, "lpool1", &l), 0);
    assert_int_equal(l.state, SPL_LPOOL_PENDING);
    assert_int_equal(spl_topo_place_lpool(t, l.id), SPL_EPLACEMENT);
    uint32_t ids[9];
    for (int z = 0; z < 3; z++)
        for (int v = 0; v < 3; v++) {
            char ip[32];
            snprintf(ip, sizeof ip, "10.0.%d.%d", z, v + 1);
            struct spl_topo_cs_registration r = reg_of("", ip, 8200, "/data/d0");
            assert_int_equal(spl_topo_register_chunkserver(t, &r, &ids[z * 3 + v]), 0);
        }
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < i; j++)
            assert_true(ids[i] != ids[j]);
    /* again: the same ids, a capacity change is recorded */
    struct spl_topo_cs_registration again = reg_of("", "10.0.1.2", 8200, "/data/d0");
    again.capacity_bytes = 2ull << 40;
    uint32_t id;
    assert_int_equal(spl_topo_register_chunkserver(t, &again, &id), 0);
    assert_int_equal(id, ids[4]);
    struct spl_topo_chunkserver c;
    assert_int_equal(spl_topo_get_chunkserver(t, id, &c), 0);
    assert_int_equal(c.capacity_bytes, 2ull << 40);
    assert_string_equal(c.host, "10.0.1.2");
    /* unknown ip, unknown server name, missing fields */
    struct spl_topo_cs_registration bad = reg_of("", "10.9.9.9", 8200, "/d");
    assert_int_equal(spl_topo_register_chunkserver(t, &bad, &id), SPL_ETOPO_NOTFOUND);
    bad = reg_of("nosuch", "10.0.0.1", 8200, "/d");
    assert_int_equal(spl_topo_register_chunkserver(t, &bad, &id), SPL_ETOPO_NOTFOUND);
    bad = reg_of("", "10.0.0.1", 0, "/d");
    assert_int_equal(spl_topo_register_chunkserver(t, &bad, &id), SPL_ETOPO_INVALID);
    /* place now: 27 copysets on 9 chunkservers */
    assert_int_equal(spl_topo_place_lpool(t, l.id), 0);
    assert_int_equal(spl_topo_get_lpool(t, l.id, &l), 0);
    assert_int_equal(l.state, SPL_LPOOL_READY);
    check_placement(t, l.id, 27, 9);
    assert_int_equal(spl_topo_place_lpool(t, l.id), 0); /* READY: left alone */
    size_t memberships = 0;
    for (int i = 0; i < 9; i++) {
        struct spl_topo_copyset *of;
        size_t n;
        assert_int_equal(spl_topo_list_copysets_of(t, ids[i], &of, &n), 0);
        assert_int_equal(n, 9); /* 27 x 3 / 9, exactly */
        for (size_t j = 0; j < n; j++)
            assert_true(of[j].members[0] == ids[i] || of[j].members[1] == ids[i] ||
                        of[j].members[2] == ids[i]);
        memberships += n;
        free(of);
    }
    assert_int_equal(memberships, 27 * 3);
    /* a restarted MDS registers nothing new and sees the placement */
    spl_topo *t2;
    assert_int_equal(spl_topo_open(etcd, 8, &t2), 0);
    struct spl_topo_cs_registration r = reg_of("", "10.0.2.3", 8200, "/data/d0");
    assert_int_equal(spl_topo_register_chunkserver(t2, &r, &id), 0);
    assert_int_equal(id, ids[8]);
    check_placement(t2, l.id, 27, 9);
    spl_topo_close(t2);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
    free(yaml);
}

static void test_shared_ip_needs_server_name(void **state)
{
    struct spl_cluster_desc d;
    parse("physical_pools:\n  - name: p\n    zones:\n"
          "      - {name: z1, servers: [{name: a, ip: 127.0.0.1}]}\n"
          "      - {name: z2, servers: [{name: b, ip: 127.0.0.1}]}\n",
          &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 1, &t), 0);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    uint32_t a, b, id;
    struct spl_topo_cs_registration r = reg_of("", "127.0.0.1", 9000, "/tmp/cs1");
    assert_int_equal(spl_topo_register_chunkserver(t, &r, &id), SPL_ETOPO_INVALID);
    r = reg_of("a", "127.0.0.1", 9000, "/tmp/cs1");
    assert_int_equal(spl_topo_register_chunkserver(t, &r, &a), 0);
    r = reg_of("b", "127.0.0.1", 9001, "/tmp/cs2");
    assert_int_equal(spl_topo_register_chunkserver(t, &r, &b), 0);
    assert_true(a != b);
    struct spl_topo_chunkserver ca, cb;
    assert_int_equal(spl_topo_get_chunkserver(t, a, &ca), 0);
    assert_int_equal(spl_topo_get_chunkserver(t, b, &cb), 0);
    assert_true(ca.zone_id != cb.zone_id);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
}

struct racer {
    spl_topo *t;
    const char *disk;
    uint32_t id;
    int rc;
};

static void *register_main(void *arg)
{
    struct racer *r = arg;
    struct spl_topo_cs_registration reg = reg_of("", "10.0.0.1", 7777, r->disk);
    r->rc = spl_topo_register_chunkserver(r->t, &reg, &r->id);
    return NULL;
}

static void test_concurrent_registration_two_mds(void **state)
{
    struct spl_cluster_desc d;
    parse("physical_pools:\n  - name: p\n    zones:\n"
          "      - {name: z, servers: [{name: s, ip: 10.0.0.1}]}\n",
          &d);
    spl_topo *t1, *t2;
    assert_int_equal(spl_topo_open(etcd, 1, &t1), 0);
    assert_int_equal(spl_topo_apply_cluster(t1, &d, NULL, NULL, 0), 0);
    assert_int_equal(spl_topo_open(etcd, 2, &t2), 0);
    for (int round = 0; round < 5; round++) {
        char disk[32];
        snprintf(disk, sizeof disk, "/race%d", round);
        struct racer a = {.t = t1, .disk = disk}, b = {.t = t2, .disk = disk};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, register_main, &a);
        pthread_create(&tb, NULL, register_main, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(a.rc, 0);
        assert_int_equal(b.rc, 0);
        assert_int_equal(a.id, b.id);
    }
    spl_topo_close(t1);
    spl_topo_close(t2);
    spl_cluster_desc_free(&d);
}

static void test_update_copyset_epoch_cas(void **state)
{
    char *yaml = cluster_yaml(4, 1, 1, 8, 0);
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 3, &t), 0);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    struct spl_topo_lpool l;
    assert_int_equal(spl_topo_find_lpool(t, "lpool1", &l), 0);
    struct spl_topo_copyset cs;
    assert_int_equal(spl_topo_get_copyset(t, l.id, 1, &cs), 0);
    assert_int_equal(cs.epoch, 0);
    /* replace one member by the chunkserver of the fourth zone */
    uint32_t unused = 0;
    for (uint32_t id = 1; id <= 4; id++)
        if (id != cs.members[0] && id != cs.members[1] && id != cs.members[2])
            unused = id;
    assert_true(unused != 0);
    struct spl_topo_copyset next = cs;
    next.members[2] = unused;
    next.epoch = 1;
    next.leader_hint = next.members[0];
    assert_int_equal(spl_topo_update_copyset(t, &next, 0), 0);
    assert_int_equal(spl_topo_update_copyset(t, &next, 0), SPL_EETCD_TXNFAIL);
    struct spl_topo_copyset bad = next;
    bad.members[1] = bad.members[0]; /* same chunkserver twice */
    assert_int_equal(spl_topo_update_copyset(t, &bad, 1), SPL_ETOPO_INVALID);
    bad = next;
    bad.id = 999;
    assert_int_equal(spl_topo_update_copyset(t, &bad, 1), SPL_ECOPYSET_NOTFOUND);
    spl_topo *t2;
    assert_int_equal(spl_topo_open(etcd, 4, &t2), 0);
    struct spl_topo_copyset seen;
    assert_int_equal(spl_topo_get_copyset(t2, l.id, 1, &seen), 0);
    assert_int_equal(seen.epoch, 1);
    assert_int_equal(seen.members[2], unused);
    assert_int_equal(seen.leader_hint, next.members[0]);
    /* administrative state */
    assert_int_equal(spl_topo_set_chunkserver_state(t, unused, SPL_CS_RETIRED), 0);
    assert_int_equal(spl_topo_reload(t2), 0);
    struct spl_topo_chunkserver c;
    assert_int_equal(spl_topo_get_chunkserver(t2, unused, &c), 0);
    assert_int_equal(c.state, SPL_CS_RETIRED);
    assert_int_equal(spl_topo_set_chunkserver_state(t, 4242, SPL_CS_RETIRED), SPL_ETOPO_NOTFOUND);
    spl_topo_close(t2);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
    free(yaml);
}

static void test_fenced_writes(void **state)
{
    struct spl_cluster_desc d;
    parse("physical_pools:\n  - name: p\n    zones:\n"
          "      - {name: z, servers: [{name: s, ip: 10.0.0.1}]}\n",
          &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 1, &t), 0);
    int64_t lease;
    assert_int_equal(spl_etcd_lease_grant(etcd, 10, &lease, NULL), 0);
    struct spl_etcd_leader_key lk;
    assert_int_equal(spl_etcd_campaign(etcd, "/spline/election/mds", lease, "me", 2, 5000, NULL,
                                       &lk), 0);
    struct spl_mds_fence f;
    spl_mds_fence_from_leader(&f, &lk);
    spl_topo_set_fence(t, &f);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    uint32_t id;
    struct spl_topo_cs_registration r = reg_of("", "10.0.0.1", 1, "/a");
    assert_int_equal(spl_topo_register_chunkserver(t, &r, &id), 0);
    assert_int_equal(spl_etcd_resign(etcd, &lk), 0);
    r = reg_of("", "10.0.0.1", 2, "/b");
    assert_int_equal(spl_topo_register_chunkserver(t, &r, &id), SPL_EMDS_NOTLEADER);
    struct spl_topo_counts c;
    spl_topo_get_counts(t, &c);
    assert_int_equal(c.chunkservers, 1); /* memory did not run ahead of etcd */
    spl_etcd_lease_revoke(etcd, lease);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_idempotent_and_reload, wipe),
        cmocka_unit_test_setup(test_conflicting_init_refused, wipe),
        cmocka_unit_test_setup(test_registration_then_placement, wipe),
        cmocka_unit_test_setup(test_shared_ip_needs_server_name, wipe),
        cmocka_unit_test_setup(test_concurrent_registration_two_mds, wipe),
        cmocka_unit_test_setup(test_update_copyset_epoch_cas, wipe),
        cmocka_unit_test_setup(test_fenced_writes, wipe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
