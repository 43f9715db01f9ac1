/* fuzz_config.c - arbitrary bytes as a config file (spl__config_parse_buffer, no I/O),
 * and as a literal value for every key (spl_config_set).
 *
 * Oracles beyond "no crash, no sanitizer report": a failed parse leaves the struct
 * byte-for-byte unchanged and names a reason; a successful one yields values whose text
 * form (spl_config_get) sets back to the identical field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/config_internal.h"
#include "base/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_cfg {
    bool flag;
    int64_t count;
    int64_t delta;
    uint64_t bytes;
    uint64_t wait_ms;
    char name[24];
    int level;
    char path[64];
};

static const char *const level_choices[] = {"low", "mid", "high", NULL};

static int path_check(const void *field, char *why, size_t why_len)
{
    if (((const char *)field)[0] == '!') {
        snprintf(why, why_len, "must not start with '!'");
        return -1;
    }
    return 0;
}

#define F(name) offsetof(struct fuzz_cfg, name)

static const struct spl_config_key fuzz_keys[] = {
    {.name = "flag", .type = SPL_CFG_BOOL, .default_value = "no", .offset = F(flag),
     .runtime = true, .doc = "a bool"},
    {.name = "a.count", .type = SPL_CFG_INT, .default_value = "3", .min = 0, .max = 1000,
     .offset = F(count), .doc = "an int"},
    {.name = "a.delta", .type = SPL_CFG_INT, .default_value = "-1", .min = INT64_MIN,
     .max = INT64_MAX, .offset = F(delta), .doc = "a full-range int"},
    {.name = "b.bytes", .type = SPL_CFG_SIZE, .default_value = "1M", .min = 0,
     .max = INT64_MAX, .offset = F(bytes), .doc = "a size"},
    {.name = "b.wait", .type = SPL_CFG_DURATION, .default_value = "5s", .min = 1,
     .max = 86400000, .offset = F(wait_ms), .doc = "a duration"},
    {.name = "name", .type = SPL_CFG_STRING, .default_value = "\"x y\"", .offset = F(name),
     .str_cap = 24, .doc = "a string"},
    {.name = "level", .type = SPL_CFG_ENUM, .default_value = "mid", .offset = F(level),
     .choices = level_choices, .doc = "an enum"},
    {.name = "path", .type = SPL_CFG_STRING, .default_value = "/p", .offset = F(path),
     .str_cap = 64, .doc = "a checked string", .validate = path_check},
};

static const struct spl_config_table fuzz_table = {
    .program = "fuzz",
    .keys = fuzz_keys,
    .key_count = sizeof(fuzz_keys) / sizeof(fuzz_keys[0]),
    .struct_size = sizeof(struct fuzz_cfg),
};

static void check_roundtrip(const struct fuzz_cfg *cfg)
{
    char text[128], again[128];
    for (size_t i = 0; i < fuzz_table.key_count; i++) {
        const char *key = fuzz_keys[i].name;
        struct fuzz_cfg copy = *cfg;
        if (spl_config_get(&fuzz_table, cfg, key, text, sizeof(text)) != 0)
            abort();
        if (spl_config_set(&fuzz_table, &copy, key, text, false, NULL) != 0)
            abort();
        if (spl_config_get(&fuzz_table, &copy, key, again, sizeof(again)) != 0 ||
            strcmp(text, again) != 0 || memcmp(&copy, cfg, sizeof(copy)) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_cfg cfg, before;
    struct spl_config_error err;
    char msg[1024];
    memset(&cfg, 0, sizeof(cfg));
    if (spl_config_defaults(&fuzz_table, &cfg, &err) != 0)
        abort();
    before = cfg;
    int rc = spl__config_parse_buffer(&fuzz_table, &cfg, (const char *)data, size, "fuzz",
                                      &err);
    if (rc == 0) {
        check_roundtrip(&cfg);
    } else {
        if (rc != SPL_ECONFIG || memcmp(&cfg, &before, sizeof(cfg)) != 0 || !err.reason[0])
            abort();
        spl_config_format_error(&err, msg, sizeof(msg));
    }

    /* the same bytes (up to a NUL) as a literal value for every key */
    char value[512];
    size_t n = strnlen((const char *)data, size < sizeof(value) - 1 ? size : sizeof(value) - 1);
    memcpy(value, data, n);
    value[n] = '\0';
    for (size_t i = 0; i < fuzz_table.key_count; i++) {
        before = cfg;
        rc = spl_config_set(&fuzz_table, &cfg, fuzz_keys[i].name, value, true, &err);
        if (rc != 0 && memcmp(&cfg, &before, sizeof(cfg)) != 0)
            abort();
    }
    check_roundtrip(&cfg);
    return 0;
}
