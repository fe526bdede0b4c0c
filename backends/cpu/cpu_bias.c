/* Bias add and its gradient for the CPU backend (the bias half of a Linear
 * layer; the product half is gemm). */
#include "cpu_internal.h"

/* Columns per task in reductions over rows: wide enough to stream rows
 * contiguously, narrow enough to give every thread work when C ~ 1000. */
enum { COLUMN_BLOCK = 64 };

void cpu_bias_forward(rc_backend *be, rc_view out, rc_view bias, int N, int C) {
    const size_t total = (size_t)N * (size_t)C;
    if (!cpu_sizes_ok(be, "bias_forward", N, C, 0) ||
        !cpu_view_fits(be, "bias_forward", "out", out, total) ||
        !cpu_view_fits(be, "bias_forward", "bias", bias, total ? (size_t)C : 0))
        return;
    if (total == 0) return;
    float *o = cpu_f32(out);
    const float *b = cpu_f32(bias);
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t n = 0; n < N; n++) {
        float *row = o + (size_t)n * (size_t)C;
        CPU_SIMD
        for (int c = 0; c < C; c++) row[c] += b[c];
    }
}

/* dbias[c] += sum_n dout[n,c]. Parallel over blocks of columns, each summed
 * over rows in ascending order in double: no two threads share a column and
 * the rounding does not depend on the thread count. */
void cpu_bias_backward(rc_backend *be, rc_view dbias, rc_view dout, int N, int C) {
    const size_t total = (size_t)N * (size_t)C;
    if (!cpu_sizes_ok(be, "bias_backward", N, C, 0) ||
        !cpu_view_fits(be, "bias_backward", "dout", dout, total) ||
        !cpu_view_fits(be, "bias_backward", "dbias", dbias, total ? (size_t)C : 0))
        return;
    if (total == 0) return;
    float *db = cpu_f32(dbias);
    const float *d = cpu_f32(dout);
    const ptrdiff_t n_blocks = (C + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t blk = 0; blk < n_blocks; blk++) {
        const int c0 = (int)blk * COLUMN_BLOCK;
        const int width = C - c0 < COLUMN_BLOCK ? C - c0 : COLUMN_BLOCK;
        double acc[COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = d + (size_t)n * (size_t)C + c0;
            CPU_SIMD
            for (int cc = 0; cc < width; cc++) acc[cc] += row[cc];
        }
        for (int cc = 0; cc < width; cc++) db[c0 + cc] += (float)acc[cc];
    }
}
