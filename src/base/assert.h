/*
 * assert.h - always-on assertions for programmer errors.
 *
 * ASSERT(cond) is on in every build: a storage server that keeps running on corrupt
 * state is worse than one that restarts and is repaired by its Raft group. It prints
 * file, line, the expression and (for ASSERT_CMP) both values, then aborts.
 * DASSERT(cond) is for expensive whole-object checks; on unless NDEBUG_SPL is defined.
 * Expected failures (bad input, I/O errors) are never ASSERTs: they return error codes.
 * Any thread may use these.
 */
#ifndef SPL_BASE_ASSERT_H
#define SPL_BASE_ASSERT_H

#include <stdint.h>

_Noreturn void spl__assert_fail(const char *file, int line, const char *expr,
                                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define ASSERT(cond)                                                                     \
    do {                                                                                 \
        if (__builtin_expect(!(cond), 0))                                                \
            spl__assert_fail(__FILE__, __LINE__, #cond, NULL);                           \
    } while (0)

/* ASSERTF(cond, fmt, ...): like ASSERT, with a printf-style explanation. */
#define ASSERTF(cond, ...)                                                               \
    do {                                                                                 \
        if (__builtin_expect(!(cond), 0))                                                \
            spl__assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
    } while (0)

/* ASSERT_CMP(a, op, b): integer comparison that prints both values on failure. */
#define ASSERT_CMP(a, op, b)                                                             \
    do {                                                                                 \
        long long spl__a = (long long)(a), spl__b = (long long)(b);                      \
        if (__builtin_expect(!(spl__a op spl__b), 0))                                    \
            spl__assert_fail(__FILE__, __LINE__, #a " " #op " " #b, "%lld vs %lld",      \
                             spl__a, spl__b);                                            \
    } while (0)

/* PANIC(fmt, ...): a point the program can never reach (crashes with file and line).
 * Unlike ASSERTF(false, ...), the compiler knows control does not continue. */
#define PANIC(...) spl__assert_fail(__FILE__, __LINE__, "unreachable", __VA_ARGS__)

#ifndef NDEBUG_SPL
#define DASSERT(cond) ASSERT(cond)
#else
#define DASSERT(cond) ((void)0)
#endif

#define SPL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define SPL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
