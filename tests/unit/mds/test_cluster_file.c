/* test_cluster_file.c - parsing and validating the cluster description (no etcd). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/errors.h"
#include "mds/cluster_file.h"

static int parse(const char *text, struct spl_cluster_desc *d, char *why)
{
    return spl_cluster_parse(text, strlen(text), d, why, 256);
}

static void check_example(const struct spl_cluster_desc *d, uint32_t declared)
{
    assert_int_equal(d->pool_count, 1);
    assert_string_equal(d->pools[0].name, "pool1");
    assert_int_equal(d->pools[0].zone_count, 3);
    for (int z = 0; z < 3; z++) {
        assert_int_equal(d->pools[0].zones[z].server_count, 2);
        for (int v = 0; v < 2; v++)
            assert_int_equal(d->pools[0].zones[z].servers[v].chunkserver_count,
                             z == 0 && v == 0 ? declared : 0);
    }
    assert_string_equal(d->pools[0].zones[0].servers[0].ip, "10.0.1.1");
    assert_int_equal(d->lpool_count, 1);
    assert_int_equal(d->lpools[0].replicas, 3);
    assert_int_equal(d->lpools[0].copysets, 400);
}

/* The example as shipped declares no chunkservers (they register themselves; the
 * playground relies on it); its commented-out chunkserver block parses when uncommented. */
static void test_example_file(void **state)
{
    struct spl_cluster_desc d;
    char why[256];
    const char *path = SPL_SOURCE_DIR "/conf/cluster.example.yaml";
    int rc = spl_cluster_parse_file(path, &d, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "%s\n", why);
    assert_int_equal(rc, 0);
    check_example(&d, 0);
    spl_cluster_desc_free(&d);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *text = calloc(1, cap), line[512];
    int uncommented = 0;
    while (fgets(line, sizeof line, f)) {
        char *hash = strstr(line, "# ");
        static const char *const keep[] = {"chunkservers:", "  - port:", "    disk:",
                                           "    capacity:"};
        for (size_t k = 0; hash && k < sizeof keep / sizeof keep[0]; k++)
            if (strspn(line, " ") == (size_t)(hash - line) &&
                strncmp(hash + 2, keep[k], strlen(keep[k])) == 0) {
                memmove(hash, hash + 2, strlen(hash + 2) + 1);
                uncommented++;
                break;
            }
        size_t len = strlen(line);
        assert_true(n + len < cap);
        memcpy(text + n, line, len);
        n += len;
    }
    fclose(f);
    assert_int_equal(uncommented, 7);
    rc = parse(text, &d, why);
    if (rc != 0)
        fprintf(stderr, "%s\n", why);
    assert_int_equal(rc, 0);
    check_example(&d, 2);
    assert_int_equal(d.pools[0].zones[0].servers[0].chunkservers[1].port, 8201);
    assert_int_equal(d.pools[0].zones[0].servers[0].chunkservers[1].capacity_bytes, 4ull << 40);
    spl_cluster_desc_free(&d);
    free(text);
}

static void test_defaults_and_sizes(void **state)
{
    struct spl_cluster_desc d;
    char why[256];
    assert_int_equal(parse("physical_pools:\n"
                           "  - name: p\n"
                           "    zones:\n"
                           "      - name: z\n"
                           "        servers:\n"
                           "          - {name: s, ip: 127.0.0.1, chunkservers: "
                           "[{port: 1, disk: /d, capacity: 512MiB}]}\n"
                           "logical_pools:\n"
                           "  - {name: l, physical_pool: p, copysets: 7}\n",
                           &d, why),
                     0);
    assert_int_equal(d.lpools[0].replicas, 3);
    assert_int_equal(d.pools[0].zones[0].servers[0].chunkservers[0].capacity_bytes, 512u << 20);
    spl_cluster_desc_free(&d);
}

struct bad_case {
    const char *text;
    const char *why_has;
};

static void test_invalid_files(void **state)
{
    static const struct bad_case cases[] = {
        {"", "empty"},
        {"physical_pools: [", "line"},
        {"pools: []\n", "unknown key 'pools'"},
        {"physical_pools:\n  - name: p\n    colour: red\n", "unknown key 'colour'"},
        {"physical_pools:\n  - zones: []\n", "needs a name"},
        {"physical_pools:\n  - name: 'bad name'\n", "not a valid name"},
        {"physical_pools:\n  - name: p\n  - name: p\n", "declared twice"},
        {"physical_pools:\n  - name: p\n    zones:\n      - name: z\n      - name: z\n",
         "zone 'z' is declared twice"},
        {"physical_pools:\n  - name: p\n    zones:\n      - name: z\n        servers:\n"
         "          - {name: s}\n", "needs name and ip"},
        {"physical_pools:\n  - name: p\n    zones:\n      - name: z\n        servers:\n"
         "          - {name: s, ip: 1.1.1.1, chunkservers: [{port: 70000, disk: /d}]}\n",
         "port must be in"},
        {"physical_pools:\n  - name: p\n    zones:\n      - name: z\n        servers:\n"
         "          - {name: s, ip: 1.1.1.1, chunkservers: [{port: 7, disk: /d}, "
         "{port: 7, disk: /d}]}\n", "declared twice"},
        {"logical_pools:\n  - {name: l, physical_pool: p, copysets: 0}\n", "copysets"},
        {"logical_pools:\n  - {name: l, physical_pool: p, copysets: 3, replicas: 9}\n",
         "replicas"},
        {"logical_pools:\n  - {name: l, physical_pool: p}\n", "needs name"},
        {"logical_pools:\n  - {name: l, physical_pool: p, copysets: 1}\n"
         "  - {name: l, physical_pool: p, copysets: 1}\n", "declared twice"},
        {"physical_pools: 3\n", "must be a list"},
        {"physical_pools: []\nphysical_pools: []\n", "appears twice"},
        {"physical_pools:\n  - name: p\n    zones: []\n    zones: [{name: z}]\n",
         "appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct spl_cluster_desc d;
        char why[256] = "";
        int rc = parse(cases[i].text, &d, why);
        if (rc != SPL_ETOPO_INVALID || !strstr(why, cases[i].why_has))
            fprintf(stderr, "case %zu: rc %d why '%s'\n", i, rc, why);
        assert_int_equal(rc, SPL_ETOPO_INVALID);
        assert_non_null(strstr(why, cases[i].why_has));
        spl_cluster_desc_free(&d);
    }
}

static void test_names(void **state)
{
    assert_true(spl_cluster_name_valid("zone-1.a_b"));
    assert_false(spl_cluster_name_valid(""));
    assert_false(spl_cluster_name_valid("-x"));
    assert_false(spl_cluster_name_valid("a/b"));
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_false(spl_cluster_name_valid(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_defaults_and_sizes),
        cmocka_unit_test(test_invalid_files),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
