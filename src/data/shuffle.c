/* A seeded shuffle that gives the same permutation on every platform, so a
 * prepared data set is reproducible from its seed (rand() is not portable). */
#include <stdint.h>

#include "rewardc/data.h"

/* splitmix64: a small, well-mixed 64-bit generator (Steele et al. 2014). */
static uint64_t splitmix64_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, bound) without modulo bias: reject draws from the
 * incomplete top block of the 64-bit range. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t draw;
    do draw = splitmix64_next(state);
    while (draw >= limit);
    return draw % bound;
}

void rc_shuffle_indices(size_t *indices, size_t n, uint64_t seed) {
    uint64_t state = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)uniform_below(&state, (uint64_t)i);
        size_t tmp = indices[i - 1];
        indices[i - 1] = indices[j];
        indices[j] = tmp;
    }
}
