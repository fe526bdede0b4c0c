/* Matrix products for the CPU backend: gemm and gemm_batched with BLAS
 * semantics (row-major, transpose flags, leading dimensions, alpha/beta).
 * Products with a narrow side go to rewardc's packed kernel
 * (cpu_gemm_packed.c), the rest to OpenBLAS's cblas_sgemm; without BLAS the
 * packed kernel does all of them. OpenBLAS 0.3.21 (Debian 12) has no
 * cblas_sgemm_batch, so batches are a loop of products. */
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

#ifdef RC_HAVE_BLAS
static int blas_uses_openmp(void) {
#if defined(OPENBLAS_OPENMP) && defined(_OPENMP)
    return openblas_get_parallel() == OPENBLAS_OPENMP;
#else
    return 0;
#endif
}
#endif

/* Where the packed kernel beats OpenBLAS (measured; see docs/performance.md):
 * products with a side of at most 256, where OpenBLAS zeroes C in a pass of
 * its own and its threads wait on each other with sched_yield, and its
 * single-threaded attention products. Not under 16 rows, where packing op(B)
 * costs more than the rows use it, nor batches of K < 16, near outer
 * products. */
static int packed_suits(int M, int N, int K, int batch) {
#ifdef RC_HAVE_BLAS
    return (M <= 256 || N <= 256) && M >= 16 && (batch == 1 || K >= 16);
#else
    (void)M, (void)N, (void)K, (void)batch;
    return 1;
#endif
}

/* One product on all threads, or a batch with one product per thread, each
 * thread with its own slice of scratch. */
static void run_packed(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float *a, int lda, size_t stride_a, const float *b, int ldb,
                       size_t stride_b, float beta, float *c, int ldc, size_t stride_c,
                       int batch) {
    const size_t work = (size_t)M * (size_t)N * (size_t)K * (size_t)batch;
    const int threads = work >= CPU_PARALLEL_MIN_WORK ? cpu_thread_count() : 1;
    if (batch == 1) {
        float *scratch = cpu_scratch(be, "gemm", cpu_packed_gemm_scratch_floats(N, K, threads));
        if (scratch)
            cpu_packed_gemm(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc,
                            scratch, threads);
        return;
    }
    const size_t per_thread = cpu_packed_gemm_scratch_floats(N, K, 1);
    float *scratch = cpu_scratch(be, "gemm_batched", per_thread * (size_t)threads);
    if (!scratch) return;
    (void)work;
    CPU_PARALLEL_FOR_IF(work)
    for (ptrdiff_t p = 0; p < batch; p++)
        cpu_packed_gemm(trans_a, trans_b, M, N, K, alpha, a + (size_t)p * stride_a, lda,
                        b + (size_t)p * stride_b, ldb, beta, c + (size_t)p * stride_c, ldc,
                        scratch + per_thread * (size_t)cpu_thread_index(), 1);
}

static void run_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
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
    if (packed_suits(M, N, K, batch)) {
        run_packed(be, trans_a, trans_b, M, N, K, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                   c, ldc, stride_c, batch);
        return;
    }
#ifdef RC_HAVE_BLAS
    /* With OpenBLAS's OpenMP build, products run one per thread: OpenBLAS sees
     * it is inside a parallel region and stays single-threaded, so there is no
     * fork/join per product. The pthread build has its own pool, so there
     * products run one after another, each multithreaded. The products must
     * not overlap in C (the op's contract). */
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
#endif
}

void cpu_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
              rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc) {
    if (!gemm_args_ok(be, "gemm", trans_a, trans_b, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, 0, 1))
        return;
    run_gemm_batched(be, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void cpu_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                      float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                      size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                      int batch) {
    if (!gemm_args_ok(be, "gemm_batched", trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb,
                      stride_b, C, ldc, stride_c, batch))
        return;
    run_gemm_batched(be, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta,
                     C, ldc, stride_c, batch);
}
