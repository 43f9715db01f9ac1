/* clock.c - the real clock; see clock.h. */
#include "base/clock.h"

#include <errno.h>
#include <time.h>

#include "base/assert.h"

static uint64_t spl_ts_ns(clockid_t id)
{
    struct timespec ts;
    int rc = clock_gettime(id, &ts);
    ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * SPL_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t spl_mono_ns(void) { return spl_ts_ns(CLOCK_MONOTONIC); }
uint64_t spl_wall_ns(void) { return spl_ts_ns(CLOCK_REALTIME); }

static uint64_t spl_real_mono(void *ctx) { (void)ctx; return spl_mono_ns(); }
static uint64_t spl_real_wall(void *ctx) { (void)ctx; return spl_wall_ns(); }

static const struct spl_clock spl_clock_real_table = {
    .mono_ns = spl_real_mono,
    .wall_ns = spl_real_wall,
    .ctx = NULL,
};

const struct spl_clock *spl_clock_real(void) { return &spl_clock_real_table; }

void spl_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / SPL_NS_PER_SEC),
                          .tv_nsec = (long)(ns % SPL_NS_PER_SEC)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
