/* In-repo PRNG for tests, goldens and benchmarks: splitmix64 seeding xoshiro256**. Never rand():
 * its sequence differs between C libraries, and goldens must be reproducible everywhere. */
#ifndef PEQA_PRNG_H
#define PEQA_PRNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } prng;

static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void prng_seed(prng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t prng_next(prng *r)
{
    uint64_t *s = r->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl64(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 24 random bits: exactly representable in binary32. */
static inline float prng_unit(prng *r) { return (float)(prng_next(r) >> 40) * (1.0f / 16777216.0f); }
/* Uniform in [-a, a). */
static inline float prng_sym(prng *r, float a) { return (2.0f * prng_unit(r) - 1.0f) * a; }
/* Uniform integer in [0, n). */
static inline uint64_t prng_below(prng *r, uint64_t n) { return prng_next(r) % n; }

#endif
