/* RMSNorm over the last dimension, forward and backward (HF LlamaRMSNorm in
 * float32: out = weight * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps)).
 *
 * One work-group per row for the row-wise work. The mean of squares is
 * accumulated in rc_acc and rstd rounded to float once, then used as such in
 * forward and backward, as layernorm.cl does. The weight gradient is a column
 * sum over rows: partials here, rc_column_finish (bias.cl) adds them up. */

__kernel void rc_rmsnorm_forward(__global float *out, ulong out_off,
                                 __global float *rstd, ulong rstd_off,
                                 __global const float *inp, ulong inp_off,
                                 __global const float *weight, ulong weight_off,
                                 int has_rstd, int has_weight, int cols, float eps,
                                 __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    __global const float *x = inp + inp_off + row * (size_t)cols;
    __global float *y = out + out_off + row * (size_t)cols;

    rc_acc sq = 0;
    for (size_t c = lid; c < (size_t)cols; c += step) sq += (rc_acc)x[c] * x[c];
    const rc_acc mean_sq = rc_group_sum(sq, scratch) / cols;
    const float s = (float)(1 / sqrt(mean_sq + (rc_acc)eps));

    /* the same work-item reads x[c] and writes y[c], so out may alias inp */
    for (size_t c = lid; c < (size_t)cols; c += step) {
        float v = x[c] * s;
        if (has_weight) v *= weight[weight_off + c];
        y[c] = v;
    }
    if (lid == 0 && has_rstd) rstd[rstd_off + row] = s;
}

/* With xhat = x * rstd and g = weight * dout (dout without weight):
 * dinp += rstd * (g - xhat * mean(g * xhat)) */
__kernel void rc_rmsnorm_backward_input(__global float *dinp, ulong dinp_off,
                                        __global const float *dout, ulong dout_off,
                                        __global const float *inp, ulong inp_off,
                                        __global const float *weight, ulong weight_off,
                                        __global const float *rstd, ulong rstd_off,
                                        int has_weight, int cols, __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    const size_t base = row * (size_t)cols;
    const float s = rstd[rstd_off + row];
    __global const float *x = inp + inp_off + base;
    __global const float *dy = dout + dout_off + base;

    rc_acc sum_g_xhat = 0;
    for (size_t c = lid; c < (size_t)cols; c += step) {
        const float g = has_weight ? dy[c] * weight[weight_off + c] : dy[c];
        sum_g_xhat += (rc_acc)g * (x[c] * s);
    }
    const float mean_g_xhat = (float)(rc_group_sum(sum_g_xhat, scratch) / cols);

    __global float *dx = dinp + dinp_off + base;
    for (size_t c = lid; c < (size_t)cols; c += step) {
        const float g = has_weight ? dy[c] * weight[weight_off + c] : dy[c];
        const float xhat = x[c] * s;
        dx[c] += (g - xhat * mean_g_xhat) * s;
    }
}

/* Per (column, chunk of rows): the partial sum of dout * xhat over the
 * chunk's rows, in row order, at partial[chunk * cols + col]. */
__kernel void rc_rmsnorm_weight_partials(__global const float *dout, ulong dout_off,
                                         __global const float *inp, ulong inp_off,
                                         __global const float *rstd, ulong rstd_off,
                                         int rows, int cols, int rows_per_chunk,
                                         __global rc_acc *partial) {
    const size_t col = get_global_id(0), chunk = get_global_id(1);
    if (col >= (size_t)cols) return;
    const size_t first = chunk * (size_t)rows_per_chunk;
    const size_t last = min(first + (size_t)rows_per_chunk, (size_t)rows);
    rc_acc dw = 0;
    for (size_t row = first; row < last; row++) {
        const size_t at = row * (size_t)cols + col;
        dw += (rc_acc)dout[dout_off + at] * (inp[inp_off + at] * rstd[rstd_off + row]);
    }
    partial[chunk * (size_t)cols + col] = dw;
}
