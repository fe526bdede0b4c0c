/* Eight floats as one value (GNU C vector extension, which GCC and clang
 * have), for the CPU backend's own kernels (cpu_gemm_packed.c,
 * cpu_attention_fused.c): arithmetic on it is element-wise, one AVX
 * instruction where the target has AVX, two SSE or NEON ones elsewhere. The
 * compiler keeps such sums in registers, where plain float arrays were
 * spilled to the stack. */
#ifndef REWARDC_CPU_VEC8_H
#define REWARDC_CPU_VEC8_H

#include <string.h>

enum { LANES = 8 };

typedef float vec8 __attribute__((vector_size(LANES * sizeof(float))));
static inline vec8 load8(const float *p) {
    vec8 v;
    memcpy(&v, p, sizeof v); /* any alignment */
    return v;
}
static inline void store8(float *p, vec8 v) { memcpy(p, &v, sizeof v); }
static inline vec8 splat8(float x) { return (vec8){x, x, x, x, x, x, x, x}; }

#endif
