/* Matrix products for the CPU backend: gemm and gemm_batched with BLAS
 * semantics (row-major, transpose flags, leading dimensions, alpha/beta).
 * With RC_HAVE_BLAS they call OpenBLAS's cblas_sgemm; otherwise a plain-loop
 * kernel, tiled over C and parallel over tiles, does the work.
 * OpenBLAS 0.3.21 (Debian 12) has no cblas_sgemm_batch, so batches are a loop
 * of cblas_sgemm calls. */
#include <stdint.h>

#include "cpu_internal.h"

#ifdef RC_HAVE_BLAS
#include <cblas.h>
#endif

/* Elements a stored matrix spans: op(X) is [rows_op, cols_op]; stored, X is
 * transposed when `trans`, with row stride ld. 0 when it is empty. */
static size_t stored_extent(int trans, int rows_op, int cols_op, int ld) {
    size_t rows = (size_t)(trans ? cols_op : rows_op);
    size_t cols = (size_t)(trans ? rows_op : cols_op);
    if (rows == 0 || cols == 0) return 0;
    return (rows - 1) * (size_t)ld + cols;
}

static int leading_dim_ok(rc_backend *be, const char *op, const char *name, int trans,
                          int rows_op, int cols_op, int ld) {
    int stored_cols = trans ? rows_op : cols_op;
    int needed = stored_cols > 1 ? stored_cols : 1;
    if (ld >= needed) return 1;
    cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: %s is %d but must be at least %d", op, name,
                     ld, needed);
    return 0;
}

/* Extent of `batch` matrices of `extent` elements spaced `stride` apart. */
static int batch_fits(rc_backend *be, const char *op, const char *arg, rc_view v, size_t extent,
                      size_t stride, int batch) {
    if (extent == 0 || batch == 0) return 1;
    size_t steps = (size_t)batch - 1;
    if (steps && stride > (SIZE_MAX - extent) / steps) {
        cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: %s batch extent overflows", op, arg);
        return 0;
    }
    return cpu_view_fits(be, op, arg, v, steps * stride + extent);
}

static int gemm_args_ok(rc_backend *be, const char *op, int trans_a, int trans_b, int M, int N,
                        int K, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                        size_t stride_b, rc_view C, int ldc, size_t stride_c, int batch) {
    if (!cpu_sizes_ok(be, op, M, N, K) || !cpu_sizes_ok(be, op, batch, 0, 0)) return 0;
    if (!leading_dim_ok(be, op, "lda", trans_a, M, K, lda) ||
        !leading_dim_ok(be, op, "ldb", trans_b, K, N, ldb) ||
        !leading_dim_ok(be, op, "ldc", 0, M, N, ldc))
        return 0;
    if (M == 0 || N == 0 || batch == 0) return 1; /* nothing is read or written */
    return batch_fits(be, op, "A", A, stored_extent(trans_a, M, K, lda), stride_a, batch) &&
           batch_fits(be, op, "B", B, stored_extent(trans_b, K, N, ldb), stride_b, batch) &&
           batch_fits(be, op, "C", C, stored_extent(0, M, N, ldc), stride_c, batch);
}

/* C = beta*C for the cases BLAS treats without reading A or B (alpha == 0 or
 * K == 0). beta == 0 overwrites, so garbage or NaN in C does not survive. */
static void scale_output(float *C, int M, int N, int ldc, float beta) {
    for (int i = 0; i < M; i++) {
        float *row = C + (size_t)i * (size_t)ldc;
        for (int j = 0; j < N; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
}

#ifndef RC_HAVE_BLAS
/* The plain-loop kernel computes C in tiles of TILE_ROWS x TILE_COLS. For each
 * block of PANEL_DEPTH values of k it copies op(B)'s block into a contiguous
 * panel (transposing when trans_b), then adds a * panel row into each
 * accumulator row: unit-stride inner loops the compiler vectorises, with the
 * 8 KB accumulator and 32 KB panel staying in L1/L2. Every element of C is
 * summed over k in ascending order by one thread, so the result does not
 * depend on the thread count. */
enum { TILE_ROWS = 32, TILE_COLS = 64, PANEL_DEPTH = 128 };

static void gemm_tile(int trans_a, int trans_b, int K, int i0, int rows, int j0, int width,
                      float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc) {
    float acc[TILE_ROWS][TILE_COLS];
    float panel[PANEL_DEPTH][TILE_COLS];
    for (int r = 0; r < rows; r++)
        for (int jj = 0; jj < width; jj++) acc[r][jj] = 0.0f;
    /* op(A)[i,k] sits at A[i*lda + k], or at A[k*lda + i] when transposed. */
    const size_t a_row_step = trans_a ? 1 : (size_t)lda;
    const size_t a_k_step = trans_a ? (size_t)lda : 1;
    for (int k0 = 0; k0 < K; k0 += PANEL_DEPTH) {
        const int depth = K - k0 < PANEL_DEPTH ? K - k0 : PANEL_DEPTH;
        if (!trans_b) {
            for (int kk = 0; kk < depth; kk++) {
                const float *src = B + (size_t)(k0 + kk) * (size_t)ldb + j0;
                for (int jj = 0; jj < width; jj++) panel[kk][jj] = src[jj];
            }
        } else {
            /* op(B)[k,j] = B[j*ldb + k]: read rows of B, write panel columns. */
            for (int jj = 0; jj < width; jj++) {
                const float *src = B + (size_t)(j0 + jj) * (size_t)ldb + k0;
                for (int kk = 0; kk < depth; kk++) panel[kk][jj] = src[kk];
            }
        }
        for (int r = 0; r < rows; r++) {
            const float *a = A + (size_t)(i0 + r) * a_row_step + (size_t)k0 * a_k_step;
            float *restrict acc_row = acc[r];
            for (int kk = 0; kk < depth; kk++) {
                const float a_ik = a[(size_t)kk * a_k_step];
                const float *restrict p = panel[kk];
                /* A constant trip count for full tiles lets -O2 vectorise
                 * without an epilogue; the order of additions per element is
                 * the same either way. */
                if (width == TILE_COLS) {
                    CPU_SIMD
                    for (int jj = 0; jj < TILE_COLS; jj++) acc_row[jj] += a_ik * p[jj];
                } else {
                    CPU_SIMD
                    for (int jj = 0; jj < width; jj++) acc_row[jj] += a_ik * p[jj];
                }
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        float *c_row = C + (size_t)(i0 + r) * (size_t)ldc + j0;
        for (int jj = 0; jj < width; jj++)
            c_row[jj] = beta == 0.0f ? alpha * acc[r][jj] : alpha * acc[r][jj] + beta * c_row[jj];
    }
}

/* All tiles of all products, flattened so that one parallel loop covers
 * both many small products (attention heads) and one large one. Tiles write
 * disjoint parts of C. */
static void plain_gemm_batched(int trans_a, int trans_b, int M, int N, int K, float alpha,
                               const float *A, int lda, size_t stride_a, const float *B, int ldb,
                               size_t stride_b, float beta, float *C, int ldc, size_t stride_c,
                               int batch) {
    const ptrdiff_t row_tiles = (M + TILE_ROWS - 1) / TILE_ROWS;
    const ptrdiff_t col_tiles = (N + TILE_COLS - 1) / TILE_COLS;
    const ptrdiff_t tiles_per_product = row_tiles * col_tiles;
    const ptrdiff_t n_tiles = tiles_per_product * batch;
    const size_t work = (size_t)M * (size_t)N * (size_t)K * (size_t)batch;
    (void)work;
    CPU_PARALLEL_FOR_IF(work)
    for (ptrdiff_t t = 0; t < n_tiles; t++) {
        const ptrdiff_t product = t / tiles_per_product;
        const ptrdiff_t within = t % tiles_per_product;
        const int i0 = (int)(within / col_tiles) * TILE_ROWS;
        const int j0 = (int)(within % col_tiles) * TILE_COLS;
        const int rows = M - i0 < TILE_ROWS ? M - i0 : TILE_ROWS;
        const int width = N - j0 < TILE_COLS ? N - j0 : TILE_COLS;
        gemm_tile(trans_a, trans_b, K, i0, rows, j0, width, alpha, A + (size_t)product * stride_a,
                  lda, B + (size_t)product * stride_b, ldb, beta, C + (size_t)product * stride_c,
                  ldc);
    }
}
#endif

#ifdef RC_HAVE_BLAS
static int blas_uses_openmp(void) {
#if defined(OPENBLAS_OPENMP) && defined(_OPENMP)
    return openblas_get_parallel() == OPENBLAS_OPENMP;
#else
    return 0;
#endif
}
#endif

static void run_gemm_batched(int trans_a, int trans_b, int M, int N, int K, float alpha,
                             rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                             size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                             int batch) {
    if (M == 0 || N == 0 || batch == 0) return;
    float *c = cpu_f32(C);
    if (K == 0 || alpha == 0.0f) {
        for (int p = 0; p < batch; p++) scale_output(c + (size_t)p * stride_c, M, N, ldc, beta);
        return;
    }
    const float *a = cpu_f32(A);
    const float *b = cpu_f32(B);
#ifdef RC_HAVE_BLAS
    /* With OpenBLAS's OpenMP build, products run one per thread: OpenBLAS sees
     * it is inside a parallel region and stays single-threaded, so there is no
     * fork/join per (often small) attention product. The pthread build has its
     * own pool, so there products run one after another, each multithreaded.
     * The products must not overlap in C (the op's contract). */
    const size_t work = blas_uses_openmp() && batch > 1
                            ? (size_t)M * (size_t)N * (size_t)K * (size_t)batch
                            : 0;
    (void)work;
    CPU_PARALLEL_FOR_IF(work)
    for (ptrdiff_t p = 0; p < batch; p++)
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                    a + (size_t)p * stride_a, lda, b + (size_t)p * stride_b, ldb, beta,
                    c + (size_t)p * stride_c, ldc);
#else
    plain_gemm_batched(trans_a, trans_b, M, N, K, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                       c, ldc, stride_c, batch);
#endif
}

void cpu_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
              rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc) {
    if (!gemm_args_ok(be, "gemm", trans_a, trans_b, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, 0, 1))
        return;
    run_gemm_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void cpu_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                      float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                      size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                      int batch) {
    if (!gemm_args_ok(be, "gemm_batched", trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb,
                      stride_b, C, ldc, stride_c, batch))
        return;
    run_gemm_batched(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta,
                     C, ldc, stride_c, batch);
}
