/* Row-major matrix products through cuBLAS, which is column-major.
 *
 * A row-major matrix with row stride ld is, read column-major with the same
 * ld, its own transpose. So C = op(A) op(B) (row-major) is computed as the
 * column-major product C^T = op(B)^T op(A)^T: swap the operands and M/N and
 * keep each transpose flag. The handle's math mode is CUBLAS_DEFAULT_MATH
 * (set in cuda_backend.c): true fp32, no TF32. */
#include <cublas_v2.h>

#include "cuda_internal.h"

/* Elements a stored rows x cols matrix with row stride ld spans. */
static size_t matrix_extent(int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return 0;
    return (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
}

static size_t batched_extent(size_t one, size_t stride, int batch) {
    if (one == 0 || batch == 0) return 0;
    return (size_t)(batch - 1) * stride + one;
}

/* Checks sizes, leading dimensions and view extents; 1 when all is well. */
static int gemm_args_ok(rc_backend *be, const char *op, int trans_a, int trans_b, int M, int N,
                        int K, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                        size_t stride_b, rc_view C, int ldc, size_t stride_c, int batch) {
    if (!cuda_sizes_ok(be, op, M, N, K) || !cuda_sizes_ok(be, op, batch, 0, 0)) return 0;
    const int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
    const int b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
    if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) ||
        ldc < (N > 1 ? N : 1)) {
        cuda_record_error(be, RC_ERR_INVALID_ARG,
                          "%s: leading dimension too small (trans_a=%d trans_b=%d M=%d N=%d K=%d "
                          "lda=%d ldb=%d ldc=%d)",
                          op, trans_a, trans_b, M, N, K, lda, ldb, ldc);
        return 0;
    }
    if (M == 0 || N == 0 || batch == 0) return 1;
    return cuda_view_fits(be, op, "A", A,
                          batched_extent(matrix_extent(a_rows, a_cols, lda), stride_a, batch)) &&
           cuda_view_fits(be, op, "B", B,
                          batched_extent(matrix_extent(b_rows, b_cols, ldb), stride_b, batch)) &&
           cuda_view_fits(be, op, "C", C,
                          batched_extent(matrix_extent(M, N, ldc), stride_c, batch));
}

static void record_blas_error(rc_backend *be, const char *op, const char *call,
                              cublasStatus_t status, int M, int N, int K, int lda, int ldb,
                              int ldc, int batch) {
    cuda_record_error(be, RC_ERR_BACKEND,
                      "%s: %s failed: %s (M=%d N=%d K=%d lda=%d ldb=%d ldc=%d batch=%d)", op, call,
                      cublasGetStatusString(status), M, N, K, lda, ldb, ldc, batch);
}

/* With K == 0 or alpha == 0, C = beta * C. Done by hand: BLAS semantics say
 * A and B are then not read (they may hold NaN), which cuBLAS does not
 * promise for alpha == 0, and not every version takes k = 0. */
static void scale_only(rc_backend *be, const char *op, int M, int N, float beta, rc_view C,
                       int ldc, size_t stride_c, int batch) {
    cuda_state *st = cuda_state_of(be);
    for (int i = 0; i < batch && st->pending == RC_OK; i++)
        cuda_after_launch(be, op,
                          cuda_launch_scale_matrix(st->stream, cuda_f32(C) + (size_t)i * stride_c,
                                                   M, N, ldc, beta));
}

void cuda_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
               rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc) {
    static const char op[] = "gemm";
    cuda_state *st = cuda_state_of(be);
    if (st->pending != RC_OK) return;
    if (!gemm_args_ok(be, op, trans_a, trans_b, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, 0, 1))
        return;
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        scale_only(be, op, M, N, beta, C, ldc, 0, 1);
        return;
    }
    const cublasStatus_t status =
        cublasSgemm((cublasHandle_t)st->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, cuda_f32(B), ldb,
                    cuda_f32(A), lda, &beta, cuda_f32(C), ldc);
    /* cuBLAS reports its own failures; drop any runtime error it left behind
     * so the next kernel's launch check is not blamed for it. */
    (void)cudaGetLastError();
    if (status != CUBLAS_STATUS_SUCCESS) {
        record_blas_error(be, op, "cublasSgemm", status, M, N, K, lda, ldb, ldc, 1);
        return;
    }
    cuda_after_launch(be, op, cudaSuccess);
}

void cuda_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                       float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                       size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                       int batch) {
    static const char op[] = "gemm_batched";
    cuda_state *st = cuda_state_of(be);
    if (st->pending != RC_OK) return;
    if (!gemm_args_ok(be, op, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C,
                      ldc, stride_c, batch))
        return;
    if (M == 0 || N == 0 || batch == 0) return;
    if (K == 0 || alpha == 0.0f) {
        scale_only(be, op, M, N, beta, C, ldc, stride_c, batch);
        return;
    }
    const cublasStatus_t status = cublasSgemmStridedBatched(
        (cublasHandle_t)st->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
        trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, cuda_f32(B), ldb,
        (long long)stride_b, cuda_f32(A), lda, (long long)stride_a, &beta, cuda_f32(C), ldc,
        (long long)stride_c, batch);
    (void)cudaGetLastError();
    if (status != CUBLAS_STATUS_SUCCESS) {
        record_blas_error(be, op, "cublasSgemmStridedBatched", status, M, N, K, lda, ldb, ldc,
                          batch);
        return;
    }
    cuda_after_launch(be, op, cudaSuccess);
}
