/*
 * log.h - leveled, tagged logging for every daemon and library.
 *
 * A line looks like
 *   2026-11-22T03:49:02.123456Z W rpc conn 127.0.0.1:4000: frame too large (len=...)
 * (UTC wall time, level letter, module tag, message). Lines go to stderr and/or a file
 * chosen by spl_log_open(); each line is written with one write(2) so that lines from
 * different threads never interleave. The level is global and may change at runtime.
 * Daemons log through this; no bare printf. Thread-safe.
 */
#ifndef SPL_BASE_LOG_H
#define SPL_BASE_LOG_H

#include <stdbool.h>

enum spl_log_level {
    SPL_LOG_DEBUG = 0,
    SPL_LOG_INFO = 1,
    SPL_LOG_WARN = 2,
    SPL_LOG_ERROR = 3,
    SPL_LOG_FATAL = 4,
};

/* spl_log_open - send log lines to path (appended; created 0644) and, when to_stderr,
 * to stderr too. path NULL: stderr only. Returns 0 or -errno (the old target stays). */
int spl_log_open(const char *path, bool to_stderr);

/* spl_log_close - close the log file (stderr logging continues). */
void spl_log_close(void);

void spl_log_set_level(enum spl_log_level level);
enum spl_log_level spl_log_get_level(void);

/* spl_log_parse_level - "debug" | "info" | "warn" | "error" -> 0, else -EINVAL. */
int spl_log_parse_level(const char *name, enum spl_log_level *level_out);

void spl_log_write(enum spl_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SPL_LOG(level, tag, ...)                                                         \
    do {                                                                                 \
        if ((level) >= spl_log_get_level())                                              \
            spl_log_write((level), (tag), __VA_ARGS__);                                  \
    } while (0)

#define LOG_DEBUG(tag, ...) SPL_LOG(SPL_LOG_DEBUG, tag, __VA_ARGS__)
#define LOG_INFO(tag, ...) SPL_LOG(SPL_LOG_INFO, tag, __VA_ARGS__)
#define LOG_WARN(tag, ...) SPL_LOG(SPL_LOG_WARN, tag, __VA_ARGS__)
#define LOG_ERROR(tag, ...) SPL_LOG(SPL_LOG_ERROR, tag, __VA_ARGS__)

#endif
