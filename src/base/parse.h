/*
 * parse.h - strict parsing of numbers given by people (command lines, tool arguments).
 *
 * Unlike atoi/strtoul used bare, these refuse empty strings, signs where none belong,
 * trailing garbage and overflow, so a mistyped argument is an error and never a silent
 * zero. Thread-safe (pure functions).
 */
#ifndef SPL_BASE_PARSE_H
#define SPL_BASE_PARSE_H

#include <stdint.h>

/* spl_parse_u64 - a decimal unsigned integer within [min, max] into *out.
 * 0; -EINVAL (not a plain decimal number); -ERANGE (outside [min, max] or overflow).
 * *out is untouched on error. */
int spl_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* spl_parse_double - a finite decimal number within [min, max] into *out.
 * 0; -EINVAL; -ERANGE. *out is untouched on error. */
int spl_parse_double(const char *text, double min, double max, double *out);

#endif
