/* parse.c - see parse.h. */
#include "base/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

int spl_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = (uint64_t)v;
    return 0;
}

int spl_parse_double(const char *text, double min, double max, double *out)
{
    if (!text || !(isdigit((unsigned char)text[0]) || text[0] == '.' || text[0] == '-'))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || !isfinite(v) || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}
