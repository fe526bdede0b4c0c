/* Matrix products through CLBlast (row-major SGEMM and its strided-batched
 * form), with BLAS semantics in the corner cases:
 *  - beta == 0 must not read C: fresh OpenCL buffers hold garbage, and
 *    0 * NaN = NaN. CLBlast's GEMM kernels (direct and indirect) already store
 *    alpha*AB without reading C when beta is zero; test_backend_ops checks it
 *    on NaN-filled outputs, so a CLBlast that changed this would be caught.
 *  - K == 0 or alpha == 0 leaves C = beta*C without touching A or B (CLBlast
 *    rejects K == 0 outright), done by rc_scale_matrices. */
#include <clblast_c.h>

#include "opencl_internal.h"

void rc_ocl_scale_matrices(rc_ocl_ctx *ctx, const char *op, rc_view C, int ldc, size_t stride_c,
                           int M, int N, int batch, float beta) {
    if (beta == 1.0f) return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_SCALE_MATRICES, op)) return;
    rc_ocl_arg_view(&l, C);
    rc_ocl_arg_int(&l, ldc);
    rc_ocl_arg_ulong(&l, stride_c);
    rc_ocl_arg_int(&l, M);
    rc_ocl_arg_int(&l, N);
    rc_ocl_arg_float(&l, beta);
    size_t tile = rc_ocl_group_size(ctx, K_SCALE_MATRICES, 64);
    size_t global[3] = {(size_t)N, (size_t)M, (size_t)batch};
    size_t local[3] = {tile, 1, 1};
    rc_ocl_enqueue(&l, 3, global, local);
}

static void gemm_strided(rc_backend *be, const char *op, int trans_a, int trans_b, int M, int N,
                         int K, float alpha, rc_view A, int lda, size_t stride_a, rc_view B,
                         int ldb, size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                         int batch) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    if (ctx->error_code != RC_OK) return;
    if (M < 0 || N < 0 || K < 0 || batch < 0) {
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG, "%s: negative size (M=%d N=%d K=%d batch=%d)", op,
                         M, N, K, batch);
        return;
    }
    if (M == 0 || N == 0 || batch == 0) return;
    /* op(A) is [M,K] and op(B) is [K,N]; as stored, A is [K,M] when transposed */
    int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
    int b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
    if (ldc < N || (K > 0 && (lda < a_cols || ldb < b_cols))) {
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG,
                         "%s: row stride too small (lda=%d for %d columns, ldb=%d for %d, ldc=%d "
                         "for %d)",
                         op, lda, a_cols, ldb, b_cols, ldc, N);
        return;
    }
    size_t nb = (size_t)batch;
    if (!rc_ocl_check_view(ctx, op, "C", C,
                           rc_ocl_matrix_extent((size_t)M, (size_t)N, (size_t)ldc, stride_c, nb), 0))
        return;
    if (K == 0 || alpha == 0.0f) {
        rc_ocl_scale_matrices(ctx, op, C, ldc, stride_c, M, N, batch, beta);
        return;
    }
    if (!rc_ocl_check_view(ctx, op, "A", A,
                           rc_ocl_matrix_extent((size_t)a_rows, (size_t)a_cols, (size_t)lda,
                                                stride_a, nb),
                           0) ||
        !rc_ocl_check_view(ctx, op, "B", B,
                           rc_ocl_matrix_extent((size_t)b_rows, (size_t)b_cols, (size_t)ldb,
                                                stride_b, nb),
                           0))
        return;
    ctx->last_op = op;

    CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode status;
    if (batch == 1)
        status = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, (size_t)M, (size_t)N, (size_t)K, alpha,
                              A.buf->mem, A.offset, (size_t)lda, B.buf->mem, B.offset, (size_t)ldb,
                              beta, C.buf->mem, C.offset, (size_t)ldc, &ctx->queue, NULL);
    else
        status = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, ta, tb, (size_t)M, (size_t)N, (size_t)K, alpha, A.buf->mem,
            A.offset, (size_t)lda, stride_a, B.buf->mem, B.offset, (size_t)ldb, stride_b, beta,
            C.buf->mem, C.offset, (size_t)ldc, stride_c, nb, &ctx->queue, NULL);
    if (status != CLBlastSuccess)
        rc_ocl_set_error(ctx,
                         status == CLBlastTempBufferAllocFailure ? RC_ERR_OOM : RC_ERR_BACKEND,
                         "%s: CLBlast failed with %s (%d) for M=%d N=%d K=%d batch=%d "
                         "trans_a=%d trans_b=%d",
                         op, rc_ocl_error_name((cl_int)status), (int)status, M, N, K, batch,
                         trans_a, trans_b);
}

static void ocl_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                     rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc) {
    gemm_strided(be, "gemm", trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc,
                 0, 1);
}

static void ocl_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                             float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                             size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                             int batch) {
    gemm_strided(be, "gemm_batched", trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
                 stride_b, beta, C, ldc, stride_c, batch);
}

void rc_ocl_install_gemm(rc_backend *be) {
    be->gemm = ocl_gemm;
    be->gemm_batched = ocl_gemm_batched;
}
