/* RMSNorm over the last dimension for the CPU backend, forward and backward,
 * with an optional weight: Hugging Face's LlamaRMSNorm in float32,
 *   out = weight * (x * rstd),  rstd = 1 / sqrt(mean(x^2) + eps).
 * The sum of squares is accumulated in double (per-lane partial sums, then
 * the lanes added); the saved rstd is rounded to float once, and forward and
 * backward both use that rounded value, so they stay consistent. Run with
 * N = rows * heads and C = head_dim it is Qwen3's per-head q/k norm. */
#include <math.h>

#include "cpu_internal.h"

enum { COLUMN_BLOCK = 64 };

/* rstd may be absent when nothing will run backward (inference). */
void cpu_rmsnorm_forward(rc_backend *be, rc_view out, rc_view rstd, rc_view inp, rc_view weight,
                         int N, int C, float eps) {
    static const char op[] = "rmsnorm_forward";
    const size_t total = (size_t)N * (size_t)C;
    const size_t per_column = total ? (size_t)C : 0;
    const size_t per_row = total ? (size_t)N : 0;
    if (!cpu_sizes_ok(be, op, N, C, 0) || !cpu_view_fits(be, op, "out", out, total) ||
        !cpu_view_fits(be, op, "inp", inp, total) ||
        (rstd.buf && !cpu_view_fits(be, op, "rstd", rstd, per_row)) ||
        (weight.buf && !cpu_view_fits(be, op, "weight", weight, per_column)))
        return;
    if (total == 0) return;
    float *o = cpu_f32(out);
    const float *x = cpu_f32(inp);
    const float *w = cpu_f32_or_null(weight);
    float *rstd_out = cpu_f32_or_null(rstd);
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * (size_t)C;
        float *yr = o + (size_t)n * (size_t)C;
        double sq = 0.0;
        CPU_SIMD_WITH(reduction(+ : sq))
        for (int c = 0; c < C; c++) sq += (double)xr[c] * xr[c];
        const float s = (float)(1.0 / sqrt(sq / C + (double)eps));
        /* out may alias inp: each element is read before it is written. */
        if (w) {
            CPU_SIMD
            for (int c = 0; c < C; c++) yr[c] = w[c] * (xr[c] * s);
        } else {
            CPU_SIMD
            for (int c = 0; c < C; c++) yr[c] = xr[c] * s;
        }
        if (rstd_out) rstd_out[n] = s;
    }
}

/* Gradients accumulate (+=) into dinp and dweight where present. With
 * xhat = x * rstd and g = dout * weight:
 *   dx = rstd * (g - xhat * mean(g * xhat)),  dweight = sum_n dout * xhat.
 * dweight sums over rows, so it gets its own pass, parallel over column
 * blocks, each column summed in row order in double: no races and the same
 * rounding for any thread count. dinp is per row (parallel over rows). */
void cpu_rmsnorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                          rc_view inp, rc_view weight, rc_view rstd, int N, int C) {
    static const char op[] = "rmsnorm_backward";
    const size_t total = (size_t)N * (size_t)C;
    const size_t per_column = total ? (size_t)C : 0;
    const size_t per_row = total ? (size_t)N : 0;
    if (!cpu_sizes_ok(be, op, N, C, 0) || !cpu_view_fits(be, op, "dout", dout, total) ||
        !cpu_view_fits(be, op, "inp", inp, total) ||
        !cpu_view_fits(be, op, "rstd", rstd, per_row) ||
        (dinp.buf && !cpu_view_fits(be, op, "dinp", dinp, total)) ||
        (weight.buf && !cpu_view_fits(be, op, "weight", weight, per_column)) ||
        (dweight.buf && !cpu_view_fits(be, op, "dweight", dweight, per_column)))
        return;
    if (total == 0) return;
    const float *dy = cpu_f32(dout);
    const float *x = cpu_f32(inp);
    const float *w = cpu_f32_or_null(weight);
    const float *rs = cpu_f32(rstd);

    float *dw = cpu_f32_or_null(dweight);
    const ptrdiff_t n_blocks = dw ? (C + COLUMN_BLOCK - 1) / COLUMN_BLOCK : 0;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t blk = 0; blk < n_blocks; blk++) {
        const int c0 = (int)blk * COLUMN_BLOCK;
        const int width = C - c0 < COLUMN_BLOCK ? C - c0 : COLUMN_BLOCK;
        double acc[COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const size_t base = (size_t)n * (size_t)C + (size_t)c0;
            const float s = rs[n];
            CPU_SIMD
            for (int cc = 0; cc < width; cc++) acc[cc] += (double)dy[base + cc] * (x[base + cc] * s);
        }
        for (int cc = 0; cc < width; cc++) dw[c0 + cc] += (float)acc[cc];
    }

    float *dx = cpu_f32_or_null(dinp);
    if (!dx) return;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t n = 0; n < N; n++) {
        const size_t base = (size_t)n * (size_t)C;
        const float s = rs[n];
        double sum_g_xhat = 0.0;
        if (w) {
            CPU_SIMD_WITH(reduction(+ : sum_g_xhat))
            for (int c = 0; c < C; c++)
                sum_g_xhat += (double)(dy[base + c] * w[c]) * (x[base + c] * s);
        } else {
            CPU_SIMD_WITH(reduction(+ : sum_g_xhat))
            for (int c = 0; c < C; c++) sum_g_xhat += (double)dy[base + c] * (x[base + c] * s);
        }
        const float mean_g_xhat = (float)(sum_g_xhat / C);
        if (w) {
            CPU_SIMD
            for (int c = 0; c < C; c++) {
                const float xhat = x[base + c] * s;
                dx[base + c] += (dy[base + c] * w[c] - xhat * mean_g_xhat) * s;
            }
        } else {
            CPU_SIMD
            for (int c = 0; c < C; c++) {
                const float xhat = x[base + c] * s;
                dx[base + c] += (dy[base + c] - xhat * mean_g_xhat) * s;
            }
        }
    }
}
