/* random.c - xoshiro256** seeded through splitmix64; see random.h. */
#include "base/random.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"

static uint64_t spl_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void spl_rand_seed(struct spl_rand *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = spl_splitmix64(&seed);
}

void spl_rand_seed_from_os(struct spl_rand *r)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    spl_rand_seed(r, seed);
}

static inline uint64_t spl_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t spl_rand_u64(struct spl_rand *r)
{
    uint64_t *s = r->s;
    uint64_t result = spl_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = spl_rotl(s[3], 45);
    return result;
}

uint64_t spl_rand_below(struct spl_rand *r, uint64_t bound)
{
    ASSERT(bound > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = spl_rand_u64(r);
    } while (x >= limit);
    return x % bound;
}

uint64_t spl_rand_range(struct spl_rand *r, uint64_t lo, uint64_t hi)
{
    ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX)
        return spl_rand_u64(r);
    return lo + spl_rand_below(r, hi - lo + 1);
}

int spl_rand_chance(struct spl_rand *r, uint64_t num, uint64_t den)
{
    ASSERT(den > 0);
    return spl_rand_below(r, den) < num;
}
