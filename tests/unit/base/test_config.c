/* test_config.c - the config table: every type, bounds, suffixes, file errors with line
 * numbers, flags over file over defaults, --help, runtime set, untouched output on error
 * and the example file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "base/config_internal.h"
#include "base/errors.h"
#include "base/limits.h"

struct demo_cfg {
    bool verbose;
    int64_t port;
    int64_t offset;
    uint64_t cache_size;
    uint64_t timeout_ms;
    char data_dir[32];
    int mode;
    char peer[16];
    bool trace;
};

static const char *const mode_choices[] = {"fast", "safe", "paranoid", NULL};

static int no_tmp_dir(const void *field, char *why, size_t why_len)
{
    if (strncmp(field, "/tmp/", 5) == 0) {
        snprintf(why, why_len, "must not be under /tmp");
        return -1;
    }
    return 0;
}

#define F(name) offsetof(struct demo_cfg, name)

static const struct spl_config_key demo_keys[] = {
    {.name = "log.verbose", .type = SPL_CFG_BOOL, .default_value = "false",
     .offset = F(verbose), .runtime = true, .doc = "log more"},
    {.name = "rpc.port", .type = SPL_CFG_INT, .default_value = "4000", .min = 1,
     .max = 65535, .offset = F(port), .doc = "port to listen on"},
    {.name = "offset", .type = SPL_CFG_INT, .default_value = "-5", .min = -100, .max = 100,
     .offset = F(offset), .runtime = true, .doc = "a signed value"},
    {.name = "cache.size", .type = SPL_CFG_SIZE, .default_value = "64M", .min = 4096,
     .max = 1ll << 40, .offset = F(cache_size), .runtime = true, .doc = "cache bytes"},
    {.name = "rpc.timeout", .type = SPL_CFG_DURATION, .default_value = "30s", .min = 1,
     .max = 3600000, .offset = F(timeout_ms), .doc = "call timeout"},
    {.name = "data_dir", .type = SPL_CFG_STRING, .default_value = "\"/var/lib/x # y\"",
     .offset = F(data_dir), .str_cap = 32, .doc = "where data lives",
     .validate = no_tmp_dir},
    {.name = "mode", .type = SPL_CFG_ENUM, .default_value = "safe", .offset = F(mode),
     .choices = mode_choices, .doc = "how careful to be"},
    {.name = "trace", .type = SPL_CFG_BOOL, .default_value = "off", .offset = F(trace),
     .doc = "trace everything"},
    {.name = "peer", .type = SPL_CFG_STRING, .default_value = NULL, .offset = F(peer),
     .str_cap = 16, .doc = "peer address (required)"},
};

static const struct spl_config_table demo = {
    .program = "spline-demo",
    .keys = demo_keys,
    .key_count = sizeof(demo_keys) / sizeof(demo_keys[0]),
    .struct_size = sizeof(struct demo_cfg),
};

/* The same table without the required key (the last one), for spl_config_defaults. */
static const struct spl_config_table demo_noreq = {
    .program = "spline-demo",
    .keys = demo_keys,
    .key_count = sizeof(demo_keys) / sizeof(demo_keys[0]) - 1,
    .struct_size = sizeof(struct demo_cfg),
};

static void fill_garbage(struct demo_cfg *c) { memset(c, 0xA5, sizeof(*c)); }

static int parse_text(const struct spl_config_table *t, struct demo_cfg *c, const char *text,
                      struct spl_config_error *err)
{
    return spl__config_parse_buffer(t, c, text, strlen(text), "test.conf", err);
}

static void defaults_of(struct demo_cfg *c)
{
    struct spl_config_error err;
    memset(c, 0, sizeof(*c));
    assert_int_equal(spl_config_defaults(&demo_noreq, c, &err), 0);
}

static void test_defaults(void **state)
{
    (void)state;
    struct demo_cfg c;
    defaults_of(&c);
    assert_false(c.verbose);
    assert_int_equal(c.port, 4000);
    assert_int_equal(c.offset, -5);
    assert_int_equal(c.cache_size, 64ull << 20);
    assert_int_equal(c.timeout_ms, 30000);
    assert_string_equal(c.data_dir, "/var/lib/x # y");
    assert_int_equal(c.mode, 1);
    assert_false(c.trace);

    /* a required key makes defaults alone insufficient, and cfg stays untouched */
    struct spl_config_error err;
    struct demo_cfg before;
    fill_garbage(&c);
    before = c;
    assert_int_equal(spl_config_defaults(&demo, &c, &err), SPL_ECONFIG);
    assert_string_equal(err.key, "peer");
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_every_type_from_file(void **state)
{
    (void)state;
    struct demo_cfg c;
    struct spl_config_error err;
    defaults_of(&c);
    const char *text = "# a comment\n"
                       "\n"
                       "   log.verbose = YES   # trailing comment\n"
                       "rpc.port=8080\n"
                       "offset = -100\n"
                       "cache.size = 2G\n"
                       "rpc.timeout = 1500ms\r\n"
                       "data_dir = \"/srv/a \\\"q\\\" \\\\ b\"  # quoted\n"
                       "mode = paranoid\n"
                       "peer = 10.0.0.1:80\n"
                       "\ttrace\t=\ton";
    assert_int_equal(parse_text(&demo, &c, text, &err), 0);
    assert_true(c.verbose);
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.offset, -100);
    assert_int_equal(c.cache_size, 2ull << 30);
    assert_int_equal(c.timeout_ms, 1500);
    assert_string_equal(c.data_dir, "/srv/a \"q\" \\ b");
    assert_int_equal(c.mode, 2);
    assert_string_equal(c.peer, "10.0.0.1:80");
    assert_true(c.trace);
}

/* Set one key through the file path and return the result code. */
static int file_set(struct demo_cfg *c, const char *line, struct spl_config_error *err)
{
    return parse_text(&demo, c, line, err);
}

static void test_suffixes(void **state)
{
    (void)state;
    struct demo_cfg c;
    struct spl_config_error err;
    defaults_of(&c);
    static const struct {
        const char *text;
        uint64_t value;
    } sizes[] = {{"4096", 4096},           {"4K", 4096},           {"4k", 4096},
                 {"3M", 3ull << 20},       {"5G", 5ull << 30},     {"1T", 1ull << 40},
                 {"1048576", 1ull << 20}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "cache.size = %s", sizes[i].text);
        assert_int_equal(file_set(&c, line, &err), 0);
        assert_int_equal(c.cache_size, sizes[i].value);
    }
    static const struct {
        const char *text;
        uint64_t ms;
    } durs[] = {{"250", 250}, {"250ms", 250}, {"2s", 2000}, {"3m", 180000}, {"1h", 3600000}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "rpc.timeout = %s", durs[i].text);
        assert_int_equal(file_set(&c, line, &err), 0);
        assert_int_equal(c.timeout_ms, durs[i].ms);
    }
    static const char *const bad[] = {
        "cache.size = 4X",   "cache.size = 4KB",  "cache.size = K",    "cache.size = -4K",
        "cache.size = 4 K",  "rpc.timeout = 5d",  "rpc.timeout = 5S",  "rpc.timeout = s",
        "rpc.timeout = 1.5s", "cache.size = 0x10", "rpc.timeout = 2hh",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(file_set(&c, bad[i], &err), SPL_ECONFIG);
}

static void test_bounds_and_overflow(void **state)
{
    (void)state;
    struct demo_cfg c;
    struct spl_config_error err;
    defaults_of(&c);
    assert_int_equal(file_set(&c, "rpc.port = 1", &err), 0);
    assert_int_equal(file_set(&c, "rpc.port = 65535", &err), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(file_set(&c, "rpc.port = 0", &err), SPL_ECONFIG);
    assert_non_null(strstr(err.reason, "out of bounds [1, 65535]"));
    assert_int_equal(file_set(&c, "rpc.port = 65536", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "offset = -101", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "offset = 101", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "offset = 99999999999999999999", &err), SPL_ECONFIG);
    assert_non_null(strstr(err.reason, "too large"));
    assert_int_equal(file_set(&c, "offset = -9223372036854775809", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "cache.size = 4095", &err), SPL_ECONFIG);
    assert_non_null(strstr(err.reason, "[4K, 1T]"));
    assert_int_equal(file_set(&c, "cache.size = 1025G", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "cache.size = 16777216T", &err), SPL_ECONFIG); /* 2^64 */
    assert_non_null(strstr(err.reason, "too large"));
    assert_int_equal(file_set(&c, "rpc.timeout = 0", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "rpc.timeout = 61m", &err), SPL_ECONFIG);
    assert_int_equal(file_set(&c, "rpc.timeout = 5124095576030431h", &err), SPL_ECONFIG);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.offset, -5);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct demo_cfg c;
    struct spl_config_error err;
    defaults_of(&c);
    static const char *const bad[] = {
        "log.verbose = maybe",
        "log.verbose = ",
        "rpc.port = 80 x",          /* trailing garbage */
        "rpc.port = 80abc",
        "rpc.port = +80",
        "rpc.port =",
        "mode = FAST",              /* enums are case-sensitive */
        "mode = ",
        "data_dir = \"unterminated",
        "data_dir = \"a\" b",       /* garbage after the closing quote */
        "data_dir = \"bad \\n escape\"",
        "data_dir = 0123456789012345678901234567890123", /* longer than 31 bytes */
        "data_dir = /tmp/x",        /* refused by the validator */
        "rpc.port 80",              /* no '=' */
        "= 80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct demo_cfg before = c;
        assert_int_equal(file_set(&c, bad[i], &err), SPL_ECONFIG);
        assert_memory_equal(&c, &before, sizeof(c));
        assert_string_equal(err.source, "test.conf:1");
        assert_true(err.reason[0] != '\0');
    }
    assert_int_equal(file_set(&c, "data_dir = /tmp/x", &err), SPL_ECONFIG);
    assert_string_equal(err.reason, "must not be under /tmp");
    assert_int_equal(file_set(&c, "mode = FAST", &err), SPL_ECONFIG);
    assert_string_equal(err.reason, "must be one of: fast safe paranoid");
    /* just fitting: 31 bytes */
    assert_int_equal(file_set(&c, "data_dir = 0123456789012345678901234567890", &err), 0);
    assert_string_equal(c.data_dir, "0123456789012345678901234567890");
    /* an unquoted value keeps inner spaces and loses the comment */
    assert_int_equal(file_set(&c, "data_dir = a b  c   # x", &err), 0);
    assert_string_equal(c.data_dir, "a b  c");
    assert_int_equal(file_set(&c, "data_dir =", &err), 0);
    assert_string_equal(c.data_dir, "");
}

static void test_unknown_key_and_duplicates(void **state)
{
    (void)state;
    struct demo_cfg c, before;
    struct spl_config_error err;
    char msg[600];
    defaults_of(&c);
    before = c;
    const char *text = "rpc.port = 81\n# comment\n\nrpc.prot = 82\n";
    assert_int_equal(parse_text(&demo, &c, text, &err), SPL_ECONFIG);
    assert_string_equal(err.key, "rpc.prot");
    assert_string_equal(err.source, "test.conf:4");
    assert_string_equal(err.reason, "unknown key");
    assert_memory_equal(&c, &before, sizeof(c)); /* line 1 was not applied either */
    spl_config_format_error(&err, msg, sizeof(msg));
    assert_string_equal(msg, "spline-demo: config: key 'rpc.prot' at test.conf:4: unknown key");

    text = "mode = fast\nrpc.port = 81\ntrace = on\nrpc.port = 82\n";
    assert_int_equal(parse_text(&demo, &c, text, &err), SPL_ECONFIG);
    assert_string_equal(err.key, "rpc.port");
    assert_string_equal(err.source, "test.conf:4");
    assert_non_null(strstr(err.reason, "duplicate"));
    assert_non_null(strstr(err.reason, "line 2"));
    assert_memory_equal(&c, &before, sizeof(c));

    /* keys are exact: no prefix or case matches */
    assert_int_equal(parse_text(&demo, &c, "rpc = 1", &err), SPL_ECONFIG);
    assert_int_equal(parse_text(&demo, &c, "RPC.PORT = 1", &err), SPL_ECONFIG);
    assert_int_equal(parse_text(&demo, &c, "rpc.port.x = 1", &err), SPL_ECONFIG);
    /* a truncated buffer: the prefix is a different, unknown key */
    assert_int_equal(spl__config_parse_buffer(&demo, &c, "rpc.port = 1", 3, "t", &err),
                     SPL_ECONFIG);
    assert_string_equal(err.reason, "expected 'key = value'");
    /* the same key in a second file is fine: duplicates are per file */
    assert_int_equal(parse_text(&demo, &c, "rpc.port = 81\n", &err), 0);
    assert_int_equal(parse_text(&demo, &c, "rpc.port = 82\n", &err), 0);
    assert_int_equal(c.port, 82);
}

static void test_line_limits(void **state)
{
    (void)state;
    struct demo_cfg c, before;
    struct spl_config_error err;
    defaults_of(&c);
    size_t n = SPL_CONFIG_LINE_MAX + 64;
    char *text = malloc(n + 1);
    assert_non_null(text);
    /* exactly SPL_CONFIG_LINE_MAX bytes: accepted (a long comment line) */
    memset(text, ' ', SPL_CONFIG_LINE_MAX);
    text[0] = '#';
    memcpy(text + SPL_CONFIG_LINE_MAX, "\nrpc.port = 99\n", 16);
    assert_int_equal(parse_text(&demo, &c, text, &err), 0);
    assert_int_equal(c.port, 99);
    /* one byte more: rejected with its line number */
    before = c;
    memset(text, ' ', SPL_CONFIG_LINE_MAX + 1);
    text[0] = '#';
    memcpy(text + SPL_CONFIG_LINE_MAX + 1, "\nrpc.port = 98\n", 16);
    char *two = malloc(n + 32);
    assert_non_null(two);
    snprintf(two, n + 32, "mode = fast\n%s", text);
    assert_int_equal(parse_text(&demo, &c, two, &err), SPL_ECONFIG);
    assert_string_equal(err.source, "test.conf:2");
    assert_non_null(strstr(err.reason, "line longer than"));
    assert_memory_equal(&c, &before, sizeof(c));
    /* a NUL byte inside a line */
    assert_int_equal(spl__config_parse_buffer(&demo, &c, "rpc.port = 9\0 9\n", 16, "t", &err),
                     SPL_ECONFIG);
    assert_non_null(strstr(err.reason, "NUL"));
    assert_memory_equal(&c, &before, sizeof(c));
    free(text);
    free(two);
}

static char tmp_dir[64];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/spl_test_config.XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_parse_file(void **state)
{
    (void)state;
    char path[128];
    struct demo_cfg c, before;
    struct spl_config_error err;
    defaults_of(&c);
    snprintf(path, sizeof(path), "%s/a.conf", tmp_dir);
    write_file(path, "rpc.port = 5000\ncache.size = 1G\n");
    assert_int_equal(spl_config_parse_file(&demo, &c, path, &err), 0);
    assert_int_equal(c.port, 5000);
    assert_int_equal(c.cache_size, 1ull << 30);
    before = c;
    write_file(path, "rpc.port = 5001\n\nbogus = 1\n");
    assert_int_equal(spl_config_parse_file(&demo, &c, path, &err), SPL_ECONFIG);
    char where[160];
    snprintf(where, sizeof(where), "%s:3", path);
    assert_string_equal(err.source, where);
    assert_memory_equal(&c, &before, sizeof(c));
    snprintf(path, sizeof(path), "%s/missing.conf", tmp_dir);
    assert_int_equal(spl_config_parse_file(&demo, &c, path, &err), -ENOENT);
    assert_non_null(strstr(err.source, "missing.conf"));
    assert_memory_equal(&c, &before, sizeof(c));
}

/* Run load_args on a NULL-terminated argument list. */
static int load(struct demo_cfg *c, const char *const *args, const char **pos, int pos_max,
                int *pos_count, struct spl_config_error *err)
{
    int argc = 0;
    while (args[argc])
        argc++;
    return spl_config_load_args(&demo, c, argc, (char **)args, pos, pos_max, pos_count, err);
}

static void test_load_args_precedence(void **state)
{
    (void)state;
    char path[128], arg[160];
    struct demo_cfg c;
    struct spl_config_error err;
    const char *pos[2];
    int npos = -1;
    snprintf(path, sizeof(path), "%s/b.conf", tmp_dir);
    write_file(path, "rpc.port = 5000\nmode = fast\npeer = file-peer\n");
    snprintf(arg, sizeof(arg), "--config=%s", path);
    fill_garbage(&c);
    const char *args[] = {"prog", "vol1", arg, "--rpc.port=6000", "--log.verbose", "--",
                          "--not-a-flag", NULL};
    assert_int_equal(load(&c, args, pos, 2, &npos, &err), 0);
    assert_int_equal(c.port, 6000);            /* flag over file */
    assert_int_equal(c.mode, 0);               /* file over default */
    assert_int_equal(c.timeout_ms, 30000);     /* default */
    assert_string_equal(c.peer, "file-peer");
    assert_true(c.verbose);                    /* bare bool flag */
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "vol1");
    assert_string_equal(pos[1], "--not-a-flag");

    /* flags alone, with the required key as a flag */
    const char *args2[] = {"prog", "--peer=p", "--trace=false", "--data_dir=/srv/d", NULL};
    assert_int_equal(load(&c, args2, NULL, 0, NULL, &err), 0);
    assert_int_equal(c.port, 4000);
    assert_string_equal(c.peer, "p");
    assert_string_equal(c.data_dir, "/srv/d");
}

static void test_load_args_errors(void **state)
{
    (void)state;
    char path[128], arg[160];
    struct demo_cfg c, before;
    struct spl_config_error err;
    const char *pos[1];
    int npos = 0;
    fill_garbage(&c);
    before = c;
    snprintf(path, sizeof(path), "%s/c.conf", tmp_dir);
    write_file(path, "rpc.port = 5000\n");
    snprintf(arg, sizeof(arg), "--config=%s", path);

    static const struct {
        const char *args[6];
        const char *key;
        const char *source;
    } cases[] = {
        {{"prog", "--rpc.port=7", NULL}, "peer", ""},              /* required key missing */
        {{"prog", "--peer=x", "--nope=1", NULL}, "nope", "--nope"},
        {{"prog", "--peer=x", "--rpc.port", NULL}, "rpc.port", "--rpc.port"},
        {{"prog", "--peer=x", "--rpc.port=0", NULL}, "rpc.port", "--rpc.port"},
        {{"prog", "--peer=x", "--rpc.port=1", "--rpc.port=2", NULL}, "rpc.port", "--rpc.port"},
        {{"prog", "--peer=x", "-v", NULL}, "", "-v"},
        {{"prog", "--peer=x", "a", "b", NULL}, "", "b"},            /* one positional max */
        {{"prog", "--peer=x", "--config", NULL}, "", "--config"},
        {{"prog", "--peer=x", "--data_dir=/tmp/no", NULL}, "data_dir", "--data_dir"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load(&c, cases[i].args, pos, 1, &npos, &err), SPL_ECONFIG);
        assert_string_equal(err.key, cases[i].key);
        assert_string_equal(err.source, cases[i].source);
        assert_memory_equal(&c, &before, sizeof(c));
    }
    /* a bad file line is reported with its line, after defaults but before flags */
    write_file(path, "rpc.port = 5000\nmode = slow\n");
    const char *bad_file[] = {"prog", arg, "--mode=fast", "--peer=x", NULL};
    assert_int_equal(load(&c, bad_file, pos, 1, &npos, &err), SPL_ECONFIG);
    char where[200];
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(err.source, where);
    assert_string_equal(err.key, "mode");
    assert_memory_equal(&c, &before, sizeof(c));
    /* an unreadable config file */
    const char *missing[] = {"prog", "--config=/nonexistent/spl.conf", "--peer=x", NULL};
    assert_int_equal(load(&c, missing, pos, 1, &npos, &err), -ENOENT);
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_help(void **state)
{
    (void)state;
    struct demo_cfg c, before;
    struct spl_config_error err;
    fill_garbage(&c);
    before = c;
    /* --help wins even over bad flags, prints to stdout and leaves cfg alone */
    char out_path[128];
    snprintf(out_path, sizeof(out_path), "%s/help.txt", tmp_dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *capture = fopen(out_path, "w+");
    assert_true(saved >= 0 && capture != NULL);
    assert_true(dup2(fileno(capture), STDOUT_FILENO) >= 0);
    const char *args[] = {"prog", "--nope=1", "--help", NULL};
    int rc_help = load(&c, args, NULL, 0, NULL, &err);
    const char *args_h[] = {"prog", "-h", NULL};
    int rc_h = load(&c, args_h, NULL, 0, NULL, &err);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    assert_int_equal(rc_help, 1);
    assert_int_equal(rc_h, 1);
    assert_memory_equal(&c, &before, sizeof(c));
    char printed[256] = "";
    rewind(capture);
    assert_true(fread(printed, 1, sizeof(printed) - 1, capture) > 0);
    fclose(capture);
    assert_non_null(strstr(printed, "Usage: spline-demo [--config=FILE]"));
    /* after "--" it is a positional argument, not a request for help */
    const char *args2[] = {"prog", "--peer=x", "--", "--help", NULL};
    const char *pos[1];
    int npos;
    assert_int_equal(load(&c, args2, pos, 1, &npos, &err), 0);
    assert_string_equal(pos[0], "--help");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    spl_config_print_help(&demo, f);
    fclose(f);
    assert_non_null(strstr(text, "Usage: spline-demo"));
    assert_non_null(strstr(text, "--rpc.port=<int>"));
    assert_non_null(strstr(text, "port to listen on"));
    assert_non_null(strstr(text, "default: 64M; range [4K, 1T]; changeable at runtime"));
    assert_non_null(strstr(text, "one of: fast, safe, paranoid"));
    assert_non_null(strstr(text, "--peer=<string>"));
    assert_non_null(strstr(text, "required"));
    free(text);
}

static void test_runtime_set_get(void **state)
{
    (void)state;
    struct demo_cfg c;
    struct spl_config_error err;
    char buf[64];
    defaults_of(&c);
    assert_int_equal(spl_config_set(&demo, &c, "cache.size", "128M", true, &err), 0);
    assert_int_equal(c.cache_size, 128ull << 20);
    assert_int_equal(spl_config_set(&demo, &c, "log.verbose", "on", true, &err), 0);
    assert_true(c.verbose);
    /* not runtime-changeable: refused while running, allowed before start */
    assert_int_equal(spl_config_set(&demo, &c, "rpc.port", "5000", true, &err), SPL_ECONFIG);
    assert_string_equal(err.key, "rpc.port");
    assert_non_null(strstr(err.reason, "while running"));
    assert_int_equal(c.port, 4000);
    assert_int_equal(spl_config_set(&demo, &c, "rpc.port", "5000", false, &err), 0);
    assert_int_equal(c.port, 5000);
    /* invalid and unknown */
    assert_int_equal(spl_config_set(&demo, &c, "cache.size", "1K", true, &err), SPL_ECONFIG);
    assert_int_equal(c.cache_size, 128ull << 20);
    assert_int_equal(spl_config_set(&demo, &c, "nope", "1", false, &err), SPL_ECONFIG);
    assert_string_equal(err.reason, "unknown key");
    /* set values are literal: quotes are part of the string */
    assert_int_equal(spl_config_set(&demo, &c, "data_dir", "\"q\" # x", false, &err), 0);
    assert_string_equal(c.data_dir, "\"q\" # x");

    /* get gives the canonical text, which set accepts back */
    static const struct {
        const char *key, *text;
    } want[] = {{"log.verbose", "true"}, {"rpc.port", "5000"},   {"offset", "-5"},
                {"cache.size", "128M"},  {"rpc.timeout", "30s"}, {"mode", "safe"},
                {"trace", "false"},      {"data_dir", "\"q\" # x"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(spl_config_get(&demo, &c, want[i].key, buf, sizeof(buf)), 0);
        assert_string_equal(buf, want[i].text);
        struct demo_cfg copy = c;
        assert_int_equal(spl_config_set(&demo, &copy, want[i].key, buf, false, &err), 0);
        assert_memory_equal(&copy, &c, sizeof(c));
    }
    c.timeout_ms = 1500;
    assert_int_equal(spl_config_get(&demo, &c, "rpc.timeout", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1500ms");
    c.timeout_ms = 120000;
    assert_int_equal(spl_config_get(&demo, &c, "rpc.timeout", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2m");
    c.cache_size = 4097;
    assert_int_equal(spl_config_get(&demo, &c, "cache.size", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "4097");
    assert_int_equal(spl_config_get(&demo, &c, "nope", buf, sizeof(buf)), SPL_ECONFIG);
    assert_int_equal(spl_config_get(&demo, &c, "mode", buf, 4), -ENOSPC);
    assert_int_equal(spl_config_get(&demo, &c, "mode", buf, 5), 0);
    assert_string_equal(buf, "safe");
}

static void test_example_reparses_to_defaults(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    spl_config_write_example(&demo, f);
    fclose(f);
    assert_non_null(strstr(text, "# port to listen on\n"));
    assert_non_null(strstr(text, "rpc.port = 4000\n"));
    assert_non_null(strstr(text, "# peer =\n")); /* required: commented out */

    struct demo_cfg want, got;
    struct spl_config_error err;
    defaults_of(&want);
    fill_garbage(&got);
    assert_int_equal(spl__config_parse_buffer(&demo, &got, text, len, "example", &err), 0);
    char a[64], b[64];
    for (size_t i = 0; i < demo_noreq.key_count; i++) {
        const char *key = demo_keys[i].name;
        assert_int_equal(spl_config_get(&demo, &want, key, a, sizeof(a)), 0);
        assert_int_equal(spl_config_get(&demo, &got, key, b, sizeof(b)), 0);
        assert_string_equal(a, b);
    }
    /* the required key stayed as it was: the example did not set it */
    struct demo_cfg garbage;
    fill_garbage(&garbage);
    assert_memory_equal(got.peer, garbage.peer, sizeof(got.peer));
    free(text);
}

static void test_format_error(void **state)
{
    (void)state;
    struct spl_config_error err;
    char msg[600];
    memset(&err, 0, sizeof(err));
    snprintf(err.program, sizeof(err.program), "spline-mds");
    snprintf(err.key, sizeof(err.key), "x");
    snprintf(err.source, sizeof(err.source), "a.conf:3");
    snprintf(err.reason, sizeof(err.reason), "reason");
    spl_config_format_error(&err, msg, sizeof(msg));
    assert_string_equal(msg, "spline-mds: config: key 'x' at a.conf:3: reason");
    err.key[0] = '\0';
    spl_config_format_error(&err, msg, sizeof(msg));
    assert_string_equal(msg, "spline-mds: config: at a.conf:3: reason");
    spl_config_format_error(&err, msg, 12);
    assert_string_equal(msg, "spline-mds:");
    /* unprintable bytes of an unknown key from a file come out as '?' */
    struct demo_cfg c;
    defaults_of(&c);
    assert_int_equal(parse_text(&demo, &c, "k\x01\x7f = 1", &err), SPL_ECONFIG);
    assert_string_equal(err.key, "k??");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_type_from_file),
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_bounds_and_overflow),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_unknown_key_and_duplicates),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_load_args_precedence),
        cmocka_unit_test(test_load_args_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_runtime_set_get),
        cmocka_unit_test(test_example_reparses_to_defaults),
        cmocka_unit_test(test_format_error),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
