/* LayerNorm over the last dimension, forward and backward (PyTorch semantics:
 * biased variance, rstd = 1/sqrt(var + eps)).
 *
 * One work-group per row for the row-wise work. Row statistics are two passes
 * (mean, then squared deviations) accumulated in rc_acc, and the saved mean
 * and rstd are rounded to float once and used as such everywhere, as the CPU
 * backend does. The weight and bias gradients are column sums over rows and
 * use the two-launch scheme of bias.cl (partials here, rc_column_finish there). */

__kernel void rc_layernorm_forward(__global float *out, ulong out_off,
                                   __global float *mean, ulong mean_off,
                                   __global float *rstd, ulong rstd_off,
                                   __global const float *inp, ulong inp_off,
                                   __global const float *weight, ulong weight_off,
                                   __global const float *bias, ulong bias_off,
                                   int has_mean, int has_rstd, int has_weight, int has_bias,
                                   int cols, float eps, __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    __global const float *x = inp + inp_off + row * (size_t)cols;
    __global float *y = out + out_off + row * (size_t)cols;

    rc_acc sum = 0;
    for (size_t c = lid; c < (size_t)cols; c += step) sum += x[c];
    const rc_acc mu = rc_group_sum(sum, scratch) / cols;

    rc_acc sq = 0;
    for (size_t c = lid; c < (size_t)cols; c += step) {
        const rc_acc d = x[c] - mu;
        sq += d * d;
    }
    const rc_acc var = rc_group_sum(sq, scratch) / cols;
    const float m = (float)mu;
    const float s = (float)(1 / sqrt(var + (rc_acc)eps));

    /* the same work-item reads x[c] and writes y[c], so out may alias inp */
    for (size_t c = lid; c < (size_t)cols; c += step) {
        float v = (x[c] - m) * s;
        if (has_weight) v *= weight[weight_off + c];
        if (has_bias) v += bias[bias_off + c];
        y[c] = v;
    }
    if (lid == 0 && has_mean) mean[mean_off + row] = m;
    if (lid == 0 && has_rstd) rstd[rstd_off + row] = s;
}

/* dinp += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = weight * dout */
__kernel void rc_layernorm_backward_input(__global float *dinp, ulong dinp_off,
                                          __global const float *dout, ulong dout_off,
                                          __global const float *inp, ulong inp_off,
                                          __global const float *weight, ulong weight_off,
                                          __global const float *mean, ulong mean_off,
                                          __global const float *rstd, ulong rstd_off,
                                          int has_weight, int cols, __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    const size_t base = row * (size_t)cols;
    const float m = mean[mean_off + row], s = rstd[rstd_off + row];
    __global const float *x = inp + inp_off + base;
    __global const float *dy = dout + dout_off + base;

    rc_acc sum_g = 0, sum_g_xhat = 0;
    for (size_t c = lid; c < (size_t)cols; c += step) {
        const float g = has_weight ? dy[c] * weight[weight_off + c] : dy[c];
        const float xhat = (x[c] - m) * s;
        sum_g += g;
        sum_g_xhat += (rc_acc)g * xhat;
    }
    const float mean_g = (float)(rc_group_sum(sum_g, scratch) / cols);
    const float mean_g_xhat = (float)(rc_group_sum(sum_g_xhat, scratch) / cols);

    __global float *dx = dinp + dinp_off + base;
    for (size_t c = lid; c < (size_t)cols; c += step) {
        const float g = has_weight ? dy[c] * weight[weight_off + c] : dy[c];
        const float xhat = (x[c] - m) * s;
        dx[c] += (g - mean_g - xhat * mean_g_xhat) * s;
    }
}

/* Per (column, chunk of rows): partial sums of dout * xhat (for dweight) and of
 * dout (for dbias), stored at partial[chunk * cols + col] and
 * partial[dbias_table + chunk * cols + col]. */
__kernel void rc_layernorm_param_partials(__global const float *dout, ulong dout_off,
                                          __global const float *inp, ulong inp_off,
                                          __global const float *mean, ulong mean_off,
                                          __global const float *rstd, ulong rstd_off,
                                          int rows, int cols, int rows_per_chunk,
                                          __global rc_acc *partial, ulong dbias_table) {
    const size_t col = get_global_id(0), chunk = get_global_id(1);
    if (col >= (size_t)cols) return;
    const size_t first = chunk * (size_t)rows_per_chunk;
    const size_t last = min(first + (size_t)rows_per_chunk, (size_t)rows);
    rc_acc dw = 0, db = 0;
    for (size_t row = first; row < last; row++) {
        const size_t at = row * (size_t)cols + col;
        const float dy = dout[dout_off + at];
        const float xhat = (inp[inp_off + at] - mean[mean_off + row]) * rstd[rstd_off + row];
        dw += (rc_acc)dy * xhat;
        db += dy;
    }
    partial[chunk * (size_t)cols + col] = dw;
    partial[dbias_table + chunk * (size_t)cols + col] = db;
}
