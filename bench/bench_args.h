/*
 * bench_args.h - argument helpers shared by the benchmark programs: a bad number is an
 * error with the option's name, never a silent zero.
 */
#ifndef SPL_BENCH_ARGS_H
#define SPL_BENCH_ARGS_H

#include <stdio.h>
#include <stdlib.h>

#include "base/errors.h"
#include "base/parse.h"

static inline uint64_t bench_arg_u64(const char *option, const char *value, uint64_t min,
                                     uint64_t max)
{
    uint64_t v = 0;
    int rc = spl_parse_u64(value, min, max, &v);
    if (rc != 0) {
        fprintf(stderr, "%s: '%s' is not a whole number in [%llu, %llu] (%s)\n", option,
                value, (unsigned long long)min, (unsigned long long)max, spl_strerror(rc));
        exit(2);
    }
    return v;
}

static inline double bench_arg_double(const char *option, const char *value, double min,
                                      double max)
{
    double v = 0;
    int rc = spl_parse_double(value, min, max, &v);
    if (rc != 0) {
        fprintf(stderr, "%s: '%s' is not a number in [%g, %g] (%s)\n", option, value, min,
                max, spl_strerror(rc));
        exit(2);
    }
    return v;
}

#endif
