/* The CPU backend's banded packed product (cpu_gemm_packed.c), called
 * directly: the fused attention of wide heads is its only user, and that
 * passes only some of what the contract allows (beta 1 under A_UPPER, for
 * one). Every band kind, both transposes of each operand, offsets either
 * side of the diagonal, beta 0 and not, on one thread and on two (a team of
 * its own either way), for
 * shapes past one block of the kernel's k and columns (256) and not whole
 * tiles (6 x 16), against sums in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "testlib.h"

static const double U = 0x1p-24; /* unit roundoff of float */

static float uniform(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) * 0x1p-24 * 2.0 - 1.0);
}

/* Is op(A)[i, k] inside the band's nonzero part (always, but for the A bands)? */
static int a_nonzero(cpu_band band, int i, int k) {
    if (band.kind == CPU_BAND_A_LOWER) return k <= i + band.offset;
    if (band.kind == CPU_BAND_A_UPPER) return k >= i + band.offset;
    return 1;
}

static void test_case(int ta, int tb, int M, int N, int K, cpu_band band, float beta,
                      int threads) {
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    const size_t a_size = (size_t)(ta ? K : M) * lda, b_size = (size_t)(tb ? N : K) * ldb;
    const size_t c_size = (size_t)M * ldc;
    float *A = malloc(a_size * sizeof *A), *B = malloc(b_size * sizeof *B);
    float *C = malloc(c_size * sizeof *C), *C0 = malloc(c_size * sizeof *C0);
    float *scratch = malloc(cpu_packed_gemm_scratch_floats(N, K, threads) * sizeof *scratch);
    unsigned state = (unsigned)(M * 131 + N * 7 + K + band.kind * 1000 + band.offset);
    for (size_t i = 0; i < a_size; i++) A[i] = uniform(&state);
    for (size_t i = 0; i < b_size; i++) B[i] = uniform(&state);
    for (size_t i = 0; i < c_size; i++) C0[i] = beta != 0.0f ? uniform(&state) : NAN;
    /* entries the band declares zero are zero, as the contract requires */
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
            if (!a_nonzero(band, i, k)) A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] = 0.0f;
    memcpy(C, C0, c_size * sizeof *C);
    const float alpha = 0.75f;
    cpu_packed_gemm_banded(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, band, scratch,
                           threads);
    int wrong = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            if (band.kind == CPU_BAND_C_LOWER && j > i + band.offset) continue; /* not wanted */
            double sum = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                const double a = A[ta ? (size_t)k * lda + i : (size_t)i * lda + k];
                const double b = B[tb ? (size_t)j * ldb + k : (size_t)k * ldb + j];
                sum += a * b, mag += fabs(a * b);
            }
            const double c0 = beta != 0.0f ? C0[(size_t)i * ldc + j] : 0.0;
            const double want = alpha * sum + beta * c0;
            const double tol = 2 * (K + 4) * U * (alpha * mag + fabs(beta * c0));
            const double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol)) wrong++;
        }
    /* the padding between rows of C is never written */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof *C)) wrong++;
    CHECK(wrong == 0, "banded gemm ta=%d tb=%d M=%d N=%d K=%d band=%d offset=%d beta=%g "
          "threads=%d: %d elements wrong", ta, tb, M, N, K, (int)band.kind, band.offset,
          (double)beta, threads, wrong);
    free(A), free(B), free(C), free(C0), free(scratch);
}

int main(void) {
    /* the last two put the band's edge past the first block of k (256) */
    static const int shapes[][3] = {{1, 1, 1},    {7, 13, 5},     {40, 37, 70},
                                    {97, 300, 64}, {300, 64, 97}, {61, 270, 300},
                                    {300, 24, 300}};
    static const int offsets[] = {-50, -7, 0, 5, 96, 300};
    static const float betas[] = {0.0f, -0.5f};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int kind = CPU_BAND_NONE; kind <= CPU_BAND_A_UPPER; kind++)
            for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
                if (kind == CPU_BAND_NONE && o > 0) continue;
                const cpu_band band = {(cpu_band_kind)kind, offsets[o]};
                for (int ta = 0; ta < 2; ta++)
                    for (int tb = 0; tb < 2; tb++)
                        for (size_t b = 0; b < 2; b++) /* each beta on 1 and 2 threads */
                            test_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], band,
                                      betas[b], 1 + (ta + tb + (int)b) % 2);
            }
    return test_finish("test_cpu_gemm_banded");
}
