/* Bias add and deterministic column sums.
 *
 * A column sum over N rows runs in two launches: rc_column_partial_sums has one
 * work-item per (column, chunk of rows) adding its chunk in row order, and
 * rc_column_finish adds the chunk totals in chunk order. No atomics, so the
 * result is the same on every run, and there is parallelism even when the
 * number of columns is small. Partials are rc_acc (double where available). */

__kernel void rc_bias_forward(__global float *out, ulong out_off, __global const float *bias,
                              ulong bias_off, int rows, int cols) {
    const size_t col = get_global_id(0), row = get_global_id(1);
    if (col >= (size_t)cols || row >= (size_t)rows) return;
    out[out_off + row * (size_t)cols + col] += bias[bias_off + col];
}

/* partial[chunk * cols + col] = sum of src[row, col] over the chunk's rows */
__kernel void rc_column_partial_sums(__global const float *src, ulong src_off, int rows, int cols,
                                     int rows_per_chunk, __global rc_acc *partial) {
    const size_t col = get_global_id(0), chunk = get_global_id(1);
    if (col >= (size_t)cols) return;
    const size_t first = chunk * (size_t)rows_per_chunk;
    const size_t last = min(first + (size_t)rows_per_chunk, (size_t)rows);
    rc_acc sum = 0;
    for (size_t row = first; row < last; row++) sum += src[src_off + row * (size_t)cols + col];
    partial[chunk * (size_t)cols + col] = sum;
}

/* dst[col] += sum over chunks of partial[partial_off + chunk * cols + col] */
__kernel void rc_column_finish(__global float *dst, ulong dst_off, __global const rc_acc *partial,
                               ulong partial_off, int n_chunks, int cols) {
    const size_t col = get_global_id(0);
    if (col >= (size_t)cols) return;
    partial += partial_off;
    rc_acc sum = 0;
    for (int chunk = 0; chunk < n_chunks; chunk++) sum += partial[(size_t)chunk * cols + col];
    dst[dst_off + col] += (float)sum;
}
