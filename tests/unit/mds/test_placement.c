/* test_placement.c - properties of the copyset placement algorithm (pure, no etcd). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/errors.h"
#include "mds/placement.h"

/* zones x servers x chunkservers-per-server; ids 1.., zone ids 100.. */
static struct spl_place_cs *make_cluster(int zones, int servers, int per_server, size_t *n)
{
    *n = (size_t)zones * servers * per_server;
    struct spl_place_cs *cs = calloc(*n, sizeof *cs);
    size_t i = 0;
    for (int z = 0; z < zones; z++)
        for (int s = 0; s < servers * per_server; s++, i++)
            cs[i] = (struct spl_place_cs){.id = (uint32_t)i + 1, .zone_id = 100u + (uint32_t)z};
    return cs;
}

static void check(int zones, int servers, int per_server, uint32_t replicas, uint32_t per_cs,
                  double scatter_fraction_min, uint64_t seed)
{
    size_t n;
    struct spl_place_cs *cs = make_cluster(zones, servers, per_server, &n);
    uint32_t copysets = (uint32_t)(n * per_cs / replicas);
    uint32_t *members = calloc((size_t)copysets * replicas, sizeof *members);
    struct spl_rand rng;
    spl_rand_seed(&rng, seed);
    assert_int_equal(spl_placement_compute(cs, n, replicas, copysets, &rng, members), 0);
    struct spl_placement_stats st;
    assert_int_equal(spl_placement_stats(cs, n, replicas, copysets, members, &st), 0);
    /* the best scatter width possible: every chunkserver outside its own zone, bounded by
     * the peers its copysets can name */
    double others = (double)(n - n / (size_t)zones);
    double bound = st.mean * (replicas - 1) < others ? st.mean * (replicas - 1) : others;
    printf("  %dz x %ds x %dcs r=%u: %u copysets, per cs mean %.1f min %u max %u, "
           "scatter min %u mean %.1f (bound %.0f)\n",
           zones, servers, per_server, replicas, copysets, st.mean, st.min, st.max,
           st.scatter_min, st.scatter_mean, bound);
    assert_int_equal(st.zone_violations, 0);
    assert_true(st.min >= st.mean * 0.9);
    assert_true(st.max <= st.mean * 1.1 + 0.999); /* +-10%, whole copysets */
    assert_true(st.scatter_min >= bound * scatter_fraction_min);
    free(members);
    free(cs);
}

static void test_3_zones_4_servers_3_cs(void **state)
{
    check(3, 4, 3, 3, 100, 0.9, 1);
    check(3, 4, 3, 3, 10, 0.9, 2);
}

static void test_9_zones(void **state)
{
    check(9, 2, 2, 3, 50, 0.9, 3);
    check(9, 1, 1, 3, 30, 0.9, 4);
}

static void test_many_chunkservers(void **state)
{
    check(4, 10, 5, 3, 100, 0.8, 5);
}

static void test_five_replicas(void **state)
{
    check(5, 2, 2, 5, 40, 0.8, 6);
}

static void test_minimal_cluster(void **state)
{
    /* three chunkservers in three zones: every copyset is the same trio */
    check(3, 1, 1, 3, 7, 1.0, 7);
}

static void test_not_enough_zones(void **state)
{
    size_t n;
    struct spl_place_cs *cs = make_cluster(2, 3, 3, &n);
    uint32_t members[30];
    struct spl_rand rng;
    spl_rand_seed(&rng, 1);
    assert_int_equal(spl_placement_compute(cs, n, 3, 10, &rng, members), SPL_EPLACEMENT);
    assert_int_equal(spl_placement_compute(cs, n, 2, 10, &rng, members), 0);
    assert_int_equal(spl_placement_compute(cs, n, 0, 10, &rng, members), SPL_EINVAL_ARG);
    assert_int_equal(spl_placement_compute(cs, n, 2, 0, &rng, members), SPL_EINVAL_ARG);
    free(cs);
}

static void test_too_many_copysets_per_cs(void **state)
{
    size_t n;
    struct spl_place_cs *cs = make_cluster(3, 1, 1, &n);
    uint32_t *members = calloc(3 * 2000, sizeof *members);
    struct spl_rand rng;
    spl_rand_seed(&rng, 1);
    assert_int_equal(spl_placement_compute(cs, n, 3, 2000, &rng, members), SPL_EPLACEMENT);
    free(members);
    free(cs);
}

static void test_same_seed_same_placement(void **state)
{
    size_t n;
    struct spl_place_cs *cs = make_cluster(3, 2, 2, &n);
    uint32_t a[60 * 3], b[60 * 3];
    struct spl_rand r1, r2;
    spl_rand_seed(&r1, 42);
    spl_rand_seed(&r2, 42);
    assert_int_equal(spl_placement_compute(cs, n, 3, 60, &r1, a), 0);
    assert_int_equal(spl_placement_compute(cs, n, 3, 60, &r2, b), 0);
    assert_memory_equal(a, b, sizeof a);
    free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_3_zones_4_servers_3_cs),
        cmocka_unit_test(test_9_zones),
        cmocka_unit_test(test_many_chunkservers),
        cmocka_unit_test(test_five_replicas),
        cmocka_unit_test(test_minimal_cluster),
        cmocka_unit_test(test_not_enough_zones),
        cmocka_unit_test(test_too_many_copysets_per_cs),
        cmocka_unit_test(test_same_seed_same_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
