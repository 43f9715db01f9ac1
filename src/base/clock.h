/*
 * clock.h - time for every component, through a small method table.
 *
 * Production code reads time through a `struct spl_clock` so that the deterministic
 * simulator can hand the same code a simulated clock (STYLE 11). spl_clock_real() is the
 * process-wide real clock: CLOCK_MONOTONIC for durations and deadlines, CLOCK_REALTIME
 * only for display and for timestamps stored for humans. The helpers at the bottom read
 * the real clock directly, for code that is never simulated (benchmarks, main.c).
 * Thread-safe.
 */
#ifndef SPL_BASE_CLOCK_H
#define SPL_BASE_CLOCK_H

#include <stdint.h>

struct spl_clock {
    uint64_t (*mono_ns)(void *ctx); /* monotonic, never goes back */
    uint64_t (*wall_ns)(void *ctx); /* wall clock (Unix epoch ns); may jump */
    void *ctx;
};

/* The real clock (static; never freed). */
const struct spl_clock *spl_clock_real(void);

static inline uint64_t spl_clock_mono_ns(const struct spl_clock *c) { return c->mono_ns(c->ctx); }
static inline uint64_t spl_clock_wall_ns(const struct spl_clock *c) { return c->wall_ns(c->ctx); }

/* Direct reads of the real clocks. */
uint64_t spl_mono_ns(void);
uint64_t spl_wall_ns(void);
static inline uint64_t spl_mono_us(void) { return spl_mono_ns() / 1000u; }
static inline uint64_t spl_mono_ms(void) { return spl_mono_ns() / 1000000u; }

/* spl_sleep_ns - sleep for at least ns (restarts on EINTR). */
void spl_sleep_ns(uint64_t ns);

#define SPL_NS_PER_US 1000ull
#define SPL_NS_PER_MS 1000000ull
#define SPL_NS_PER_SEC 1000000000ull

#endif
