/* Definitions shared by every kernel file; the build puts this file first.
 *
 * The CPU backend is the reference, so kernels follow its arithmetic: no
 * contraction of a*b+c into fma (gcc does not contract for baseline x86-64
 * either), and sums over rows or columns accumulate in double where the device
 * has cl_khr_fp64 (the host then passes -DRC_ACC_DOUBLE=1), as the CPU does.
 *
 * Work-group reductions use a fixed tree over a power-of-two local size chosen
 * by the host, so a result depends only on the data and the shape: the same
 * inputs give the same bits on every run. Every kernel takes each buffer as a
 * (pointer, element offset) pair because rc_view offsets are in elements. */
#pragma OPENCL FP_CONTRACT OFF

#if RC_ACC_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double rc_acc;
#else
typedef float rc_acc;
#endif

/* Sum of `value` over the work-group; every work-item gets the result.
 * `scratch` holds get_local_size(0) accumulators. */
rc_acc rc_group_sum(rc_acc value, __local rc_acc *scratch) {
    const size_t lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t span = get_local_size(0) / 2; span > 0; span /= 2) {
        if (lid < span) scratch[lid] += scratch[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const rc_acc total = scratch[0];
    /* the scratch is reused by the caller's next reduction */
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

rc_acc rc_group_max(rc_acc value, __local rc_acc *scratch) {
    const size_t lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t span = get_local_size(0) / 2; span > 0; span /= 2) {
        if (lid < span) scratch[lid] = fmax(scratch[lid], scratch[lid + span]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const rc_acc best = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return best;
}

/* Row indices (token ids, pooled rows) are checked on the device: a bad one
 * is skipped, and the first kernel to meet one records
 * {op code, position, value, table rows} in `index_error`, which the host
 * reads at sync() and download(). */
void rc_report_bad_index(__global int *index_error, int op_code, size_t position, int value,
                         ulong table_rows) {
    if (atomic_cmpxchg(index_error, 0, op_code) == 0) {
        index_error[1] = (int)position;
        index_error[2] = value;
        index_error[3] = (int)min(table_rows, (ulong)INT_MAX);
    }
}
