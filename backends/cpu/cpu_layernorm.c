/* LayerNorm over the last dimension for the CPU backend, forward and
 * backward, with optional affine weight/bias (PyTorch semantics: biased
 * variance, rstd = 1/sqrt(var + eps)). Row statistics are accumulated in
 * double in two passes, so a large mean does not cost the variance its
 * precision; the saved mean/rstd are rounded to float once and both passes
 * use those rounded values, keeping forward and backward consistent. */
#include <math.h>

#include "cpu_internal.h"

enum { COLUMN_BLOCK = 64 };

/* mean and rstd may be absent when nothing will run backward (inference). */
void cpu_layernorm_forward(rc_backend *be, rc_view out, rc_view mean, rc_view rstd, rc_view inp,
                           rc_view weight, rc_view bias, int N, int C, float eps) {
    static const char op[] = "layernorm_forward";
    const size_t total = (size_t)N * (size_t)C;
    const size_t per_column = total ? (size_t)C : 0;
    const size_t per_row = total ? (size_t)N : 0;
    if (!cpu_sizes_ok(be, op, N, C, 0) || !cpu_view_fits(be, op, "out", out, total) ||
        !cpu_view_fits(be, op, "inp", inp, total) ||
        (mean.buf && !cpu_view_fits(be, op, "mean", mean, per_row)) ||
        (rstd.buf && !cpu_view_fits(be, op, "rstd", rstd, per_row)) ||
        (weight.buf && !cpu_view_fits(be, op, "weight", weight, per_column)) ||
        (bias.buf && !cpu_view_fits(be, op, "bias", bias, per_column)))
        return;
    if (total == 0) return;
    float *o = cpu_f32(out);
    const float *x = cpu_f32(inp);
    const float *w = cpu_f32_or_null(weight);
    const float *b = cpu_f32_or_null(bias);
    float *mean_out = cpu_f32_or_null(mean);
    float *rstd_out = cpu_f32_or_null(rstd);
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * (size_t)C;
        float *yr = o + (size_t)n * (size_t)C;
        double sum = 0.0;
        CPU_SIMD_WITH(reduction(+ : sum))
        for (int c = 0; c < C; c++) sum += xr[c];
        const double mu = sum / C;
        double sq = 0.0;
        CPU_SIMD_WITH(reduction(+ : sq))
        for (int c = 0; c < C; c++) {
            const double d = xr[c] - mu;
            sq += d * d;
        }
        const float m = (float)mu;
        const float s = (float)(1.0 / sqrt(sq / C + (double)eps));
        /* out may alias inp: each element is read before it is written. One
         * loop per case, without branches, so that each vectorises. */
        CPU_SIMD
        for (int c = 0; c < C; c++) yr[c] = (xr[c] - m) * s;
        if (w && b) {
            CPU_SIMD
            for (int c = 0; c < C; c++) yr[c] = yr[c] * w[c] + b[c];
        } else if (w) {
            CPU_SIMD
            for (int c = 0; c < C; c++) yr[c] *= w[c];
        } else if (b) {
            CPU_SIMD
            for (int c = 0; c < C; c++) yr[c] += b[c];
        }
        if (mean_out) mean_out[n] = m;
        if (rstd_out) rstd_out[n] = s;
    }
}

/* Gradients accumulate (+=) into whichever of dinp, dweight, dbias are
 * present. dweight/dbias sum over rows, so they get their own pass, parallel
 * over column blocks, each column summed in row order in double: no races and
 * the same rounding for any thread count. dinp is per row (parallel over
 * rows). */
void cpu_layernorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                            rc_view dout, rc_view inp, rc_view weight, rc_view mean, rc_view rstd,
                            int N, int C) {
    static const char op[] = "layernorm_backward";
    const size_t total = (size_t)N * (size_t)C;
    const size_t per_column = total ? (size_t)C : 0;
    const size_t per_row = total ? (size_t)N : 0;
    if (!cpu_sizes_ok(be, op, N, C, 0) || !cpu_view_fits(be, op, "dout", dout, total) ||
        !cpu_view_fits(be, op, "inp", inp, total) ||
        !cpu_view_fits(be, op, "mean", mean, per_row) ||
        !cpu_view_fits(be, op, "rstd", rstd, per_row) ||
        (dinp.buf && !cpu_view_fits(be, op, "dinp", dinp, total)) ||
        (weight.buf && !cpu_view_fits(be, op, "weight", weight, per_column)) ||
        (dweight.buf && !cpu_view_fits(be, op, "dweight", dweight, per_column)) ||
        (dbias.buf && !cpu_view_fits(be, op, "dbias", dbias, per_column)))
        return;
    if (total == 0) return;
    const float *dy = cpu_f32(dout);
    const float *x = cpu_f32(inp);
    const float *w = cpu_f32_or_null(weight);
    const float *mu = cpu_f32(mean);
    const float *rs = cpu_f32(rstd);

    float *dw = cpu_f32_or_null(dweight);
    float *db = cpu_f32_or_null(dbias);
    const ptrdiff_t n_blocks = (dw || db) ? (C + COLUMN_BLOCK - 1) / COLUMN_BLOCK : 0;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t blk = 0; blk < n_blocks; blk++) {
        const int c0 = (int)blk * COLUMN_BLOCK;
        const int width = C - c0 < COLUMN_BLOCK ? C - c0 : COLUMN_BLOCK;
        double acc_w[COLUMN_BLOCK] = {0}, acc_b[COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const size_t base = (size_t)n * (size_t)C + (size_t)c0;
            const float m = mu[n], s = rs[n];
            CPU_SIMD
            for (int cc = 0; cc < width; cc++) {
                const float xhat = (x[base + cc] - m) * s;
                acc_w[cc] += (double)dy[base + cc] * xhat;
                acc_b[cc] += dy[base + cc];
            }
        }
        for (int cc = 0; cc < width; cc++) {
            if (dw) dw[c0 + cc] += (float)acc_w[cc];
            if (db) db[c0 + cc] += (float)acc_b[cc];
        }
    }

    float *dx = cpu_f32_or_null(dinp);
    if (dx) {
        CPU_PARALLEL_FOR_IF(total)
        for (ptrdiff_t n = 0; n < N; n++) {
            const size_t base = (size_t)n * (size_t)C;
            const float m = mu[n], s = rs[n];
            /* With xhat = (x-mean)*rstd and g = dout*w:
             * dx = rstd * (g - mean(g) - xhat * mean(g*xhat)). */
            double sum_g = 0.0, sum_g_xhat = 0.0;
            if (w) {
                CPU_SIMD_WITH(reduction(+ : sum_g, sum_g_xhat))
                for (int c = 0; c < C; c++) {
                    const float g = dy[base + c] * w[c];
                    sum_g += g;
                    sum_g_xhat += (double)g * ((x[base + c] - m) * s);
                }
            } else {
                CPU_SIMD_WITH(reduction(+ : sum_g, sum_g_xhat))
                for (int c = 0; c < C; c++) {
                    const float g = dy[base + c];
                    sum_g += g;
                    sum_g_xhat += (double)g * ((x[base + c] - m) * s);
                }
            }
            const float mean_g = (float)(sum_g / C);
            const float mean_g_xhat = (float)(sum_g_xhat / C);
            if (w) {
                CPU_SIMD
                for (int c = 0; c < C; c++) {
                    const float xhat = (x[base + c] - m) * s;
                    dx[base + c] += (dy[base + c] * w[c] - mean_g - xhat * mean_g_xhat) * s;
                }
            } else {
                CPU_SIMD
                for (int c = 0; c < C; c++) {
                    const float xhat = (x[base + c] - m) * s;
                    dx[base + c] += (dy[base + c] - mean_g - xhat * mean_g_xhat) * s;
                }
            }
        }
    }
}
