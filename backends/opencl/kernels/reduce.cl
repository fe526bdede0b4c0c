/* Sum of squares for global-norm gradient clipping. Each work-group writes one
 * rc_acc partial sum (double where the device has it, as the CPU backend
 * accumulates in double); the host adds the partials in order. */

__kernel void rc_sum_squares_partials(__global const float *x, ulong x_off, ulong n,
                                      __global rc_acc *partial, __local rc_acc *scratch) {
    x += x_off;
    rc_acc sum = 0;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {
        const rc_acc v = x[i];
        sum += v * v;
    }
    sum = rc_group_sum(sum, scratch);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = sum;
}
