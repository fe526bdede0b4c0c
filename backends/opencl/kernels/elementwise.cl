/* Element-wise ops over n elements. Each uses a grid-stride loop so that the
 * host can bound the launch size for any n. Outputs may alias inputs: every
 * element is read and written by the same work-item. */

__kernel void rc_add(__global float *out, ulong out_off, __global const float *a, ulong a_off,
                     __global const float *b, ulong b_off, ulong n) {
    out += out_off;
    a += a_off;
    b += b_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) out[i] = a[i] + b[i];
}

__kernel void rc_axpy(__global float *y, ulong y_off, float alpha, __global const float *x,
                      ulong x_off, ulong n) {
    y += y_off;
    x += x_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) y[i] += alpha * x[i];
}

__kernel void rc_scale(__global float *x, ulong x_off, float alpha, ulong n) {
    x += x_off;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) x[i] *= alpha;
}

/* C_b[r, c] = beta * C_b[r, c] for a batch of row-major matrices (the part of a
 * GEMM that CLBlast cannot do without reading C). beta == 0 writes zeros without
 * reading C, as BLAS does, so garbage or NaN in fresh buffers never leaks out. */
__kernel void rc_scale_matrices(__global float *c_mat, ulong c_off, int ldc, ulong stride,
                                int rows, int cols, float beta) {
    const size_t col = get_global_id(0), row = get_global_id(1), batch = get_global_id(2);
    if (col >= (size_t)cols || row >= (size_t)rows) return;
    __global float *element = c_mat + c_off + batch * stride + row * (size_t)ldc + col;
    *element = beta == 0.0f ? 0.0f : beta * *element;
}
