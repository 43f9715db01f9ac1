/*
 * config_internal.h - entry points of config.c for its tests and fuzz target only.
 *
 * spl__config_parse_buffer is spl_config_parse_file without the file: the fuzz target
 * feeds it arbitrary bytes with no I/O. Same threading rules as config.h.
 */
#ifndef SPL_BASE_CONFIG_INTERNAL_H
#define SPL_BASE_CONFIG_INTERNAL_H

#include "base/config.h"

/* spl__config_parse_buffer - apply len bytes of config file text (not NUL-terminated;
 * may contain anything) over cfg, naming source_name in errors ("path" -> "path:line").
 * 0, or SPL_ECONFIG with err filled (err may be NULL). On error cfg is unchanged. */
int spl__config_parse_buffer(const struct spl_config_table *t, void *cfg, const char *data,
                             size_t len, const char *source_name, struct spl_config_error *err);

#endif
