/* A packed register-tile sgemm for products with a narrow side: the linear
 * layers of small models (2048 x 64 x 64 in the tiny preset) and
 * single-threaded attention products. There OpenBLAS runs far below its
 * peak inside a training step (docs/performance.md): each call zeroes C in a
 * pass of its own (sgemm_beta), packs both operands, and its threads wait on
 * each other with sched_yield, for a product of a few hundred microseconds.
 *
 * C = alpha op(A) op(B) + beta C, row-major, op(X) = X or X^T. The work:
 *   for each block of KC values of k and NC columns of C:
 *     copy op(B)'s block into slivers of NR columns, k-major     (shared)
 *     for each MR x NR tile of C (the threads split these): sums in
 *       registers from op(A) read in place and the tile's B sliver, then
 *       written to C once (with alpha and beta; beta = 1 after the first
 *       block of k).
 * The tile is 6 x 16: twelve vectors of eight sums, two vectors of B and
 * one broadcast of A per step of k, which is what AVX2's sixteen registers
 * hold. Each element of C is summed over k in ascending order by one thread,
 * so results do not depend on the thread count. The banded variant is told
 * which part of C is unwanted or which part of op(A) is zero (a causal
 * mask's triangle) and skips whole tiles and each tile's k outside the band:
 * the fused attention of wide heads runs on it. The file is compiled with
 * FMA contraction allowed (CMakeLists.txt), so acc += a * b is one fused
 * multiply-add where the target has FMA. */
#include <string.h>

#include "cpu_internal.h"
#include "cpu_vec8.h"

enum { MR = 6, NR = 16, KC = 256, NC = 256 };

#ifdef _OPENMP
#define PARALLEL_TEAM(threads) CPU_PRAGMA(omp parallel num_threads(threads) if (threads > 1))
#define SHARE_LOOP CPU_PRAGMA(omp for schedule(static))
#else
#define PARALLEL_TEAM(threads)
#define SHARE_LOOP
#endif

static int min_int(int a, int b) { return a < b ? a : b; }
static int round_up(int n, int to) { return (n + to - 1) / to * to; }

size_t cpu_packed_gemm_scratch_floats(int N, int K, int threads) {
    const size_t kc = (size_t)min_int(K, KC);
    const size_t nc = (size_t)round_up(min_int(N, NC), NR);
    return kc * nc + (size_t)threads * kc * MR;
}

/* ap[k * MR + r] = op(A)[i0 + r, k0 + k]; rows past `rows` are zero (the
 * last sliver of rows, when M is not a multiple of MR). */
static void pack_a(int trans_a, const float *A, int lda, int i0, int rows, int k0, int kc,
                   float *ap) {
    if (!trans_a) {
        for (int r = 0; r < rows; r++) {
            const float *src = A + (size_t)(i0 + r) * (size_t)lda + k0;
            for (int k = 0; k < kc; k++) ap[k * MR + r] = src[k];
        }
    } else {
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)(k0 + k) * (size_t)lda + i0;
            for (int r = 0; r < rows; r++) ap[k * MR + r] = src[r];
        }
    }
    for (int r = rows; r < MR; r++)
        for (int k = 0; k < kc; k++) ap[k * MR + r] = 0.0f;
}

/* bp[k * NR + c] = op(B)[k0 + k, j0 + c]; columns past `cols` are zero. */
static void pack_b(int trans_b, const float *B, int ldb, int k0, int kc, int j0, int cols,
                   float *bp) {
    if (!trans_b) {
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(k0 + k) * (size_t)ldb + j0;
            float *dst = bp + (size_t)k * NR;
            for (int c = 0; c < cols; c++) dst[c] = src[c];
            for (int c = cols; c < NR; c++) dst[c] = 0.0f;
        }
    } else {
        for (int c = 0; c < cols; c++) {
            const float *src = B + (size_t)(j0 + c) * (size_t)ldb + k0;
            for (int k = 0; k < kc; k++) bp[(size_t)k * NR + c] = src[k];
        }
        for (int c = cols; c < NR; c++)
            for (int k = 0; k < kc; k++) bp[(size_t)k * NR + c] = 0.0f;
    }
}

/* C[r, c] = alpha sum_k a[r * row_step + k * k_step] bp[k, c] + beta C[r, c]
 * for r < rows, c < cols; beta == 0 does not read C (it may hold garbage).
 * `a` has MR readable rows. */
static inline __attribute__((always_inline)) void tile(int kc, const float *a, size_t row_step,
                                                       size_t k_step, const float *bp, float alpha,
                                                       float beta, float *C, int ldc, int rows,
                                                       int cols) {
    vec8 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = splat8(0.0f);
    for (int k = 0; k < kc; k++) {
        const vec8 b0 = load8(bp + (size_t)k * NR), b1 = load8(bp + (size_t)k * NR + LANES);
        for (int r = 0; r < MR; r++) {
            const vec8 a_rk = splat8(a[r * row_step + k * k_step]);
            acc[r][0] += a_rk * b0;
            acc[r][1] += a_rk * b1;
        }
    }
    if (rows == MR && cols == NR) {
        for (int r = 0; r < MR; r++) {
            float *row = C + (size_t)r * (size_t)ldc;
            for (int h = 0; h < 2; h++) {
                vec8 out = splat8(alpha) * acc[r][h];
                if (beta != 0.0f) out += splat8(beta) * load8(row + h * LANES);
                store8(row + h * LANES, out);
            }
        }
        return;
    }
    float sums[MR][NR];
    memcpy(sums, acc, sizeof sums);
    for (int r = 0; r < rows; r++) {
        float *row = C + (size_t)r * (size_t)ldc;
        for (int c = 0; c < cols; c++)
            row[c] = beta == 0.0f ? alpha * sums[r][c] : alpha * sums[r][c] + beta * row[c];
    }
}

/* x in [lo, hi], x wide enough that an offset far off the diagonal cannot overflow */
static int clamp_int(long long x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : (int)x; }

void cpu_packed_gemm_banded(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C,
                            int ldc, cpu_band band, float *scratch, int threads) {
    const int kc_max = min_int(K, KC);
    float *b_packed = scratch;
    float *a_packed = scratch + (size_t)kc_max * (size_t)round_up(min_int(N, NC), NR);
    const int row_slivers = (M + MR - 1) / MR;
    (void)threads;
    /* A team of its own even for one thread, so that the loops' `omp for`
     * never binds to a caller's parallel region (batched products). */
    PARALLEL_TEAM(threads)
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = min_int(KC, K - k0);
        for (int j0 = 0; j0 < N; j0 += NC) {
            const int nc = min_int(NC, N - j0);
            const int col_slivers = (nc + NR - 1) / NR;
            SHARE_LOOP
            for (int s = 0; s < col_slivers; s++)
                pack_b(trans_b, B, ldb, k0, kc, j0 + s * NR, min_int(NR, nc - s * NR),
                       b_packed + (size_t)s * kc * NR);
            /* Tiles in row-major order, split evenly between the threads
             * (whole rows of tiles can split unevenly: 64 rows are 11). */
            SHARE_LOOP
            for (ptrdiff_t t = 0; t < (ptrdiff_t)row_slivers * col_slivers; t++) {
                const int i0 = (int)(t / col_slivers) * MR, rows = min_int(MR, M - i0);
                const int s = (int)(t % col_slivers), j = j0 + s * NR;
                if (band.kind == CPU_BAND_C_LOWER && j > (long long)i0 + rows - 1 + band.offset)
                    continue;
                /* The tile's k range, [k_begin, k_end), and its part in this
                 * block, [lo, hi); the block holding k_begin applies beta. */
                const int k_begin =
                    band.kind == CPU_BAND_A_UPPER ? clamp_int((long long)i0 + band.offset, 0, K)
                                                  : 0;
                const int k_end = band.kind == CPU_BAND_A_LOWER
                                      ? clamp_int((long long)i0 + rows + band.offset, k_begin, K)
                                      : K;
                int lo = k0 > k_begin ? k0 : k_begin, hi = min_int(k0 + kc, k_end);
                float beta_k = lo == k_begin ? beta : 1.0f;
                if (lo >= hi) {
                    if (k_begin < k_end || k0 != 0) continue;
                    lo = hi = 0; /* nothing to sum: C = beta C, once (lo was k_begin) */
                }
                /* Whole slivers read op(A) where it lies; the last, short
                 * one is copied out with zero rows. */
                const float *a = trans_a ? A + (size_t)lo * lda + i0 : A + (size_t)i0 * lda + lo;
                size_t row_step = trans_a ? 1 : (size_t)lda, k_step = trans_a ? (size_t)lda : 1;
                if (rows < MR) {
                    float *ap = a_packed + (size_t)cpu_thread_index() * kc_max * MR;
                    pack_a(trans_a, A, lda, i0, rows, lo, hi - lo, ap);
                    a = ap, row_step = 1, k_step = MR;
                }
                tile(hi - lo, a, row_step, k_step, b_packed + ((size_t)s * kc + (lo - k0)) * NR,
                     alpha, beta_k, C + (size_t)i0 * (size_t)ldc + j, ldc, rows,
                     min_int(NR, nc - s * NR));
            }
        }
    }
}

void cpu_packed_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     float *scratch, int threads) {
    cpu_packed_gemm_banded(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                           (cpu_band){CPU_BAND_NONE, 0}, scratch, threads);
}
