/*
 * random.h - seeded pseudo-random numbers (xoshiro256**), never for cryptography.
 *
 * Every component that needs randomness (election timeouts, backoff jitter, placement)
 * takes a `struct spl_rand` so that the simulator can seed it. Not thread-safe: one
 * generator per owner. spl_rand_seed_from_os() gives a production seed.
 */
#ifndef SPL_BASE_RANDOM_H
#define SPL_BASE_RANDOM_H

#include <stdint.h>

struct spl_rand {
    uint64_t s[4];
};

void spl_rand_seed(struct spl_rand *r, uint64_t seed);
/* Seeds from getrandom(2); falls back to time and pid. */
void spl_rand_seed_from_os(struct spl_rand *r);
uint64_t spl_rand_u64(struct spl_rand *r);
/* Uniform in [0, bound); bound > 0. */
uint64_t spl_rand_below(struct spl_rand *r, uint64_t bound);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t spl_rand_range(struct spl_rand *r, uint64_t lo, uint64_t hi);
/* True with probability num/den. */
int spl_rand_chance(struct spl_rand *r, uint64_t num, uint64_t den);

#endif
