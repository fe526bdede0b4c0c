/* A small, seedable, platform-independent random number generator
 * (splitmix64 seeding a xoshiro256** state) for weight init and shuffling. */
#ifndef REWARDC_RNG_H
#define REWARDC_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rc_rng;

void rc_rng_seed(rc_rng *rng, uint64_t seed);
uint64_t rc_rng_next(rc_rng *rng);
double rc_rng_uniform(rc_rng *rng);            /* [0, 1) with 53 random bits */
double rc_rng_normal(rc_rng *rng);             /* standard normal (Box-Muller) */
uint64_t rc_rng_below(rc_rng *rng, uint64_t n); /* uniform in [0, n), unbiased */

#endif
