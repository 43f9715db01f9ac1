/*
 * config.h - declarative configuration for every daemon (STYLE 16).
 *
 * A daemon declares its keys once, in a table of `struct spl_config_key` (name, type,
 * default, bounds, whether it may change at runtime, doc string, and the offset of the
 * field in the daemon's own config struct). From that table come: the file parser, the
 * `--key=value` flag parser, `--help`, runtime get/set, and the commented example file
 * under conf/.
 *
 * File format: one `key = value` per line; `#` starts a comment; blank lines ignored;
 * values may be "double-quoted" (with \" and \\ escapes). Sizes accept K/M/G/T suffixes
 * (powers of 1024), durations accept ms/s/m/h suffixes (the field holds milliseconds).
 * Precedence: defaults < file < flags. Unknown keys, duplicate keys in one file, values
 * of the wrong type or out of bounds are rejected with the key, the file line (or the
 * flag) and the reason, and the output struct is left untouched.
 *
 * Details: keys are case-sensitive; an unquoted file value ends at `#` and is trimmed; a
 * line may hold at most SPL_CONFIG_LINE_MAX bytes and a file SPL_CONFIG_FILE_MAX. Table
 * defaults are parsed like file values, while flag and spl_config_set values are taken
 * literally (the shell or the caller has already done the quoting). A bare number is
 * bytes for a size and milliseconds for a duration. Bool values are case-insensitive.
 * A bad table (bad name, duplicate, missing bounds, unparsable default) is a programmer
 * error and ASSERTs. Validators run on file and flag values as they are read and on the
 * defaults that nothing overrode, so a default that only fails in this environment is
 * reported only when it is actually used.
 *
 * Threads: loading happens before threads start. spl_config_set on a runtime key is the
 * caller's to serialize against readers (daemons do it on their main loop).
 */
#ifndef SPL_BASE_CONFIG_H
#define SPL_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum spl_config_type {
    SPL_CFG_BOOL,     /* bool; true/false/yes/no/on/off/1/0 */
    SPL_CFG_INT,      /* int64_t within [min, max] */
    SPL_CFG_SIZE,     /* uint64_t bytes within [min, max]; K/M/G/T suffixes */
    SPL_CFG_DURATION, /* uint64_t milliseconds within [min, max]; ms/s/m/h suffixes */
    SPL_CFG_STRING,   /* char[str_cap] inside the struct, NUL-terminated */
    SPL_CFG_ENUM,     /* int index into choices[] (NULL-terminated list of names) */
};

struct spl_config_key {
    const char *name;             /* "rpc.listen_port": [a-z0-9_.]+ */
    enum spl_config_type type;
    const char *default_value;    /* parsed like a file value; NULL: required key */
    int64_t min, max;             /* bounds for INT/SIZE/DURATION (inclusive) */
    size_t offset;                /* offsetof(daemon_struct, field) */
    size_t str_cap;               /* STRING: size of the char array */
    const char *const *choices;   /* ENUM */
    bool runtime;                 /* may change with spl_config_set while running */
    const char *doc;              /* one line for --help and the example file */
    /* optional extra check on the parsed value (e.g. "must be a directory");
     * returns 0 or a negative code and fills why. */
    int (*validate)(const void *field, char *why, size_t why_len);
};

struct spl_config_table {
    const char *program;          /* "spline-mds", for --help */
    const struct spl_config_key *keys;
    size_t key_count;
    size_t struct_size;           /* sizeof the daemon's config struct */
};

/* Where and why loading failed; filled by the functions below on error (every err
 * parameter may be NULL). Empty strings mean "not applicable". */
struct spl_config_error {
    char key[64];
    char source[256];             /* "path:line", "--flag", "default" or "set" */
    char reason[256];
    char program[64];             /* the table's program, for spl_config_format_error */
};

/* spl_config_defaults - fill cfg (struct_size bytes) with every default.
 * Returns 0, or SPL_ECONFIG when a key without a default exists (err says which). */
int spl_config_defaults(const struct spl_config_table *t, void *cfg,
                        struct spl_config_error *err);

/* spl_config_parse_file - apply a config file over cfg. 0, -errno if unreadable, or
 * SPL_ECONFIG with err filled. On error cfg is unchanged. */
int spl_config_parse_file(const struct spl_config_table *t, void *cfg, const char *path,
                          struct spl_config_error *err);

/* spl_config_load_args - the whole daemon start-up sequence: defaults, then the file
 * named by --config=FILE (if any), then every --key=value flag. Arguments that are not
 * flags are returned in positional[] (up to positional_max; more is an error).
 * Returns 0; 1 when --help was given (help printed to stdout, caller exits 0);
 * SPL_ECONFIG / -errno with err filled. Required keys missing after all sources are an
 * error. argv[0] is the program and is skipped; `--` ends the flags; a bool key may be
 * given bare (`--verbose` means true); a key given twice as a flag is an error; `-h` is
 * --help. positional_count may be NULL; positional[] entries point into argv. */
int spl_config_load_args(const struct spl_config_table *t, void *cfg, int argc,
                         char **argv, const char **positional, int positional_max,
                         int *positional_count, struct spl_config_error *err);

/* spl_config_set - set one key from its text form. SPL_ECONFIG when unknown, invalid or
 * (when running is true) not runtime-changeable; err says why. */
int spl_config_set(const struct spl_config_table *t, void *cfg, const char *key,
                   const char *value, bool running, struct spl_config_error *err);

/* spl_config_get - the text form of one key's current value into buf. 0, SPL_ECONFIG if
 * unknown, -ENOSPC if buf is too small. */
int spl_config_get(const struct spl_config_table *t, const void *cfg, const char *key,
                   char *buf, size_t buf_len);

/* spl_config_print_help - the usage text: every key, its type, default, bounds, doc. */
void spl_config_print_help(const struct spl_config_table *t, FILE *out);

/* spl_config_write_example - a commented example file with every key at its default. */
void spl_config_write_example(const struct spl_config_table *t, FILE *out);

/* spl_config_format_error - "spline-mds: config: key 'x' at a.conf:3: reason". */
void spl_config_format_error(const struct spl_config_error *err, char *buf, size_t len);

#endif
