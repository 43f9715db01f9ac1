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

/* Every copyset of a and b is the same (members, epoch, leader, revision; no revision for
 * copyset id moved, 0: none). */
static void check_same_copysets(spl_topo *a, spl_topo *b, uint32_t moved)
{
    struct spl_topo_copyset *x, *y;
    size_t nx, ny;
    assert_int_equal(spl_topo_list_copysets(a, 0, &x, &nx), 0);
    assert_int_equal(spl_topo_list_copysets(b, 0, &y, &ny), 0);
    assert_int_equal(nx, ny);
    for (size_t i = 0; i < nx; i++) {
        assert_int_equal(x[i].lpool_id, y[i].lpool_id);
        assert_int_equal(x[i].id, y[i].id);
        assert_int_equal(x[i].epoch, y[i].epoch);
        assert_int_equal(x[i].leader_hint, y[i].leader_hint);
        if (x[i].id != moved)
            assert_int_equal(x[i].mod_revision, y[i].mod_revision);
        assert_int_equal(x[i].member_count, y[i].member_count);
        assert_memory_equal(x[i].members, y[i].members,
                            x[i].member_count * sizeof x[i].members[0]);
    }
    free(x);
    free(y);
}

/* The update moving copyset c to epoch c.epoch + 1 with member 2 replaced by a chunkserver
 * of the zone c does not use (4 zones, 2 chunkservers each). */
static struct spl_topo_copyset_update next_config(spl_topo *t, const struct spl_topo_copyset *c,
                                                  const struct spl_topo_chunkserver *all,
                                                  size_t ncs)
{
    uint32_t zones[3];
    for (int r = 0; r < 3; r++) {
        struct spl_topo_chunkserver m;
        assert_int_equal(spl_topo_get_chunkserver(t, c->members[r], &m), 0);
        zones[r] = m.zone_id;
    }
    struct spl_topo_copyset_update u = {.rec = *c, .expect_epoch = c->epoch};
    u.rec.epoch = c->epoch + 1;
    u.rec.leader_hint = c->members[0];
    for (size_t i = 0; i < ncs; i++)
        if (all[i].zone_id != zones[0] && all[i].zone_id != zones[1] &&
            all[i].zone_id != zones[2])
            u.rec.members[2] = all[i].id;
    assert_true(u.rec.members[2] != c->members[2]);
    return u;
}

static void test_update_copysets_batch(void **state)
{
    char *yaml = cluster_yaml(4, 2, 1, 300, 0);
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 5, &t), 0);
    /* fenced, so a full transaction carries the fence's compare too */
    int64_t lease;
    assert_int_equal(spl_etcd_lease_grant(etcd, 30, &lease, NULL), 0);
    struct spl_etcd_leader_key lk;
    assert_int_equal(spl_etcd_campaign(etcd, "/spline/election/mds", lease, "me", 2, 5000, NULL,
                                       &lk), 0);
    struct spl_mds_fence f;
    spl_mds_fence_from_leader(&f, &lk);
    spl_topo_set_fence(t, &f);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    struct spl_topo_chunkserver *all;
    size_t ncs;
    assert_int_equal(spl_topo_list_chunkservers(t, &all, &ncs), 0);
    assert_int_equal(ncs, 8);
    struct spl_topo_copyset *sets;
    size_t n;
    assert_int_equal(spl_topo_list_copysets(t, 0, &sets, &n), 0);
    assert_int_equal(n, 300);

    /* 1: 300 updates, every 10th with a stale epoch; copyset 2 a second time (epoch 1 -> 2)
     * right after its first update (index 2, so in the same transaction's range: it must
     * be written after the first), the update of copyset 3 moved to the end, and an
     * unknown copyset */
    size_t nu = n + 2;
    struct spl_topo_copyset_update *ups = calloc(nu, sizeof *ups);
    int *res = calloc(nu, sizeof *res);
    for (size_t i = 0; i < n; i++) {
        ups[i] = next_config(t, &sets[i], all, ncs);
        if (i % 10 == 0)
            ups[i].expect_epoch = 7;
    }
    ups[n] = ups[2];
    ups[2] = ups[1];
    ups[2].expect_epoch = 1;
    ups[2].rec.epoch = 2;
    ups[2].rec.leader_hint = ups[1].rec.members[1];
    ups[n + 1] = ups[3];
    ups[n + 1].rec.id = 9999;
    int64_t rev0 = store_revision();
    assert_int_equal(spl_topo_update_copysets(t, ups, nu, res), SPL_EETCD_TXNFAIL);
    int64_t rev1 = store_revision();
    /* 270 updates in transactions of at most SPL_TOPO_TXN_UPDATES (plus one for the
     * repeated copyset) */
    int64_t txns = (int64_t)((n + SPL_TOPO_TXN_UPDATES - 1) / SPL_TOPO_TXN_UPDATES);
    assert_true(rev1 - rev0 <= txns + 1);
    assert_true(rev1 - rev0 >= 3);
    for (size_t i = 0; i < n; i++) {
        if (i != 2)
            assert_int_equal(res[i], i % 10 == 0 ? SPL_EETCD_TXNFAIL : 0);
        const struct spl_topo_copyset_update *u = i == 2 ? &ups[n] : &ups[i];
        struct spl_topo_copyset c;
        assert_int_equal(spl_topo_get_copyset(t, sets[i].lpool_id, sets[i].id, &c), 0);
        if (i % 10 == 0) {
            assert_int_equal(c.epoch, 0);
            assert_memory_equal(c.members, sets[i].members, sizeof c.members);
        } else {
            assert_int_equal(c.epoch, i == 1 ? 2 : 1);
            assert_int_equal(c.members[2], u->rec.members[2]);
        }
    }
    assert_int_equal(res[2], 0);
    assert_int_equal(res[n], 0);
    assert_int_equal(res[n + 1], SPL_ECOPYSET_NOTFOUND);
    struct spl_topo_copyset c2;
    assert_int_equal(spl_topo_get_copyset(t, sets[1].lpool_id, sets[1].id, &c2), 0);
    assert_int_equal(c2.leader_hint, ups[1].rec.members[1]);
    spl_topo *t2;
    assert_int_equal(spl_topo_open(etcd, 6, &t2), 0);
    check_same_copysets(t, t2, 0);

    /* 2: a record changed behind the model fails its transaction: the others of that
     * transaction are still written, one by one, and only it is refused */
    free(sets);
    assert_int_equal(spl_topo_list_copysets(t, 0, &sets, &n), 0);
    for (size_t i = 0; i < n; i++)
        ups[i] = next_config(t, &sets[i], all, ncs);
    char key[128];
    snprintf(key, sizeof key, "/spline/topology/copyset/%010u/%010u", sets[150].lpool_id,
             sets[150].id);
    struct spl_etcd_kv kv;
    assert_int_equal(spl_etcd_get(etcd, key, &kv), 0);
    assert_int_equal(spl_etcd_put(etcd, key, kv.value, kv.value_len, 0, NULL), 0);
    spl_etcd_kv_free(&kv);
    assert_int_equal(spl_topo_update_copysets(t, ups, n, res), SPL_EETCD_TXNFAIL);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(res[i], i == 150 ? SPL_EETCD_TXNFAIL : 0);
    /* memory matches etcd, but for the revision of the record written behind its back */
    assert_int_equal(spl_topo_reload(t2), 0);
    check_same_copysets(t, t2, sets[150].id);
    assert_int_equal(spl_topo_reload(t), 0);
    check_same_copysets(t, t2, 0);

    /* 3: lost leadership: nothing is written, every update says so */
    free(sets);
    assert_int_equal(spl_topo_list_copysets(t, 0, &sets, &n), 0);
    for (size_t i = 0; i < n; i++)
        ups[i] = next_config(t, &sets[i], all, ncs);
    assert_int_equal(spl_etcd_resign(etcd, &lk), 0);
    int64_t rev2 = store_revision();
    assert_int_equal(spl_topo_update_copysets(t, ups, n, res), SPL_EMDS_NOTLEADER);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(res[i], SPL_EMDS_NOTLEADER);
    assert_int_equal(store_revision(), rev2);
    assert_int_equal(spl_topo_reload(t2), 0);
    check_same_copysets(t, t2, 0);
    assert_int_equal(spl_topo_update_copysets(t, ups, 0, NULL), 0);

    spl_etcd_lease_revoke(etcd, lease);
    spl_topo_close(t2);
    spl_topo_close(t);
    free(ups);
    free(res);
    free(sets);
    free(all);
    spl_cluster_desc_free(&d);
    free(yaml);
}

static void test_list_pools_zones_servers(void **state)
{
    char *yaml = cluster_yaml(3, 2, 0, 10, 0);
    struct spl_cluster_desc d;
    parse(yaml, &d);
    spl_topo *t;
    assert_int_equal(spl_topo_open(etcd, 7, &t), 0);
    struct spl_topo_pool *p;
    struct spl_topo_zone *z;
    struct spl_topo_server *s;
    size_t np, nz, ns;
    assert_int_equal(spl_topo_list_pools(t, &p, &np), 0);
    assert_int_equal(np, 0);
    assert_null(p);
    assert_int_equal(spl_topo_apply_cluster(t, &d, NULL, NULL, 0), 0);
    assert_int_equal(spl_topo_list_pools(t, &p, &np), 0);
    assert_int_equal(spl_topo_list_zones(t, &z, &nz), 0);
    assert_int_equal(spl_topo_list_servers(t, &s, &ns), 0);
    assert_int_equal(np, 1);
    assert_string_equal(p[0].name, "pool1");
    assert_int_equal(nz, 3);
    assert_int_equal(ns, 6);
    for (size_t i = 0; i < nz; i++) {
        char name[32];
        snprintf(name, sizeof name, "zone%zu", i);
        assert_string_equal(z[i].name, name);
        assert_int_equal(z[i].pool_id, p[0].id);
        assert_true(i == 0 || z[i].id > z[i - 1].id);
    }
    for (size_t i = 0; i < ns; i++) {
        struct spl_topo_server g;
        assert_int_equal(spl_topo_get_server(t, s[i].id, &g), 0);
        assert_string_equal(g.name, s[i].name);
        assert_string_equal(g.ip, s[i].ip);
        assert_true(i == 0 || s[i].id > s[i - 1].id);
    }
    free(p);
    free(z);
    free(s);
    spl_topo_close(t);
    spl_cluster_desc_free(&d);
    free(yaml);
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
        cmocka_unit_test_setup(test_update_copysets_batch, wipe),
        cmocka_unit_test_setup(test_list_pools_zones_servers, wipe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
