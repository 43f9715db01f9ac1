/* log.c - see log.h. One formatted buffer, one write(2) per line. */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"

#define SPL_LOG_LINE_MAX 4096

static _Atomic int spl_log_level_now = SPL_LOG_INFO;
static _Atomic int spl_log_fd = -1;
static _Atomic bool spl_log_stderr = true;

int spl_log_open(const char *path, bool to_stderr)
{
    int fd = -1;
    if (path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
    }
    int old = spl_log_fd;
    spl_log_fd = fd;
    spl_log_stderr = to_stderr || fd < 0;
    if (old >= 0)
        close(old);
    return 0;
}

void spl_log_close(void)
{
    int old = spl_log_fd;
    spl_log_fd = -1;
    spl_log_stderr = true;
    if (old >= 0)
        close(old);
}

void spl_log_set_level(enum spl_log_level level)
{
    ASSERT(level >= SPL_LOG_DEBUG && level <= SPL_LOG_FATAL);
    spl_log_level_now = (int)level;
}

enum spl_log_level spl_log_get_level(void) { return (enum spl_log_level)spl_log_level_now; }

int spl_log_parse_level(const char *name, enum spl_log_level *level_out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < SPL_ARRAY_SIZE(names); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *level_out = (enum spl_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void spl_log_emit(const char *line, size_t len)
{
    int fd = spl_log_fd;
    if (fd >= 0 && write(fd, line, len) < 0) {
        /* nowhere better to report a failing log file; fall through to stderr */
    }
    if (spl_log_stderr || fd < 0) {
        if (write(STDERR_FILENO, line, len) < 0) {
            /* stderr closed: drop the line */
        }
    }
}

void spl_log_write(enum spl_log_level level, const char *tag, const char *fmt, ...)
{
    static const char letters[] = "DIWEF";
    char line[SPL_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %c %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000, letters[level], tag);
    ASSERT(n > 0 && (size_t)n < sizeof(line));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    spl_log_emit(line, len);
}

_Noreturn void spl__assert_fail(const char *file, int line, const char *expr,
                                const char *fmt, ...)
{
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    spl_log_write(SPL_LOG_FATAL, "assert", "%s:%d: assertion failed: %s%s%s", file, line,
                  expr, fmt ? ": " : "", msg);
    abort();
}
