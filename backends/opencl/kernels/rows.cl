/* Row gathers and scatter-adds by int32 row index: the embedding lookup and
 * its gradient, and the score head's pick of one row per sequence.
 *
 * The scatter-add gives each column to one work-item, which walks the indices
 * in order: repeated rows (a token seen twice) are then added without atomics
 * and in a fixed order, so the result is deterministic and matches a
 * sequential loop. An index outside [0, table_rows) is skipped and reported
 * (rc_report_bad_index in common.cl). */

__kernel void rc_rows_gather(__global float *out, ulong out_off, __global const int *rows,
                             ulong rows_off, __global const float *table, ulong table_off,
                             ulong table_rows, int n_rows, int cols, int accumulate,
                             __global int *index_error, int op_code) {
    const size_t col = get_global_id(0), i = get_global_id(1);
    if (col >= (size_t)cols || i >= (size_t)n_rows) return;
    const int src_row = rows[rows_off + i];
    if (src_row < 0 || (ulong)src_row >= table_rows) {
        if (col == 0) rc_report_bad_index(index_error, op_code, i, src_row, table_rows);
        return;
    }
    const float value = table[table_off + (size_t)src_row * (size_t)cols + col];
    __global float *dst = out + out_off + i * (size_t)cols + col;
    *dst = accumulate ? *dst + value : value;
}

__kernel void rc_rows_scatter_add(__global float *dtable, ulong dtable_off, ulong table_rows,
                                  __global const float *src, ulong src_off,
                                  __global const int *rows, ulong rows_off, int n_rows, int cols,
                                  __global int *index_error, int op_code) {
    const size_t col = get_global_id(0);
    if (col >= (size_t)cols) return;
    for (int i = 0; i < n_rows; i++) {
        const int dst_row = rows[rows_off + i];
        if (dst_row < 0 || (ulong)dst_row >= table_rows) {
            if (col == 0) rc_report_bad_index(index_error, op_code, (size_t)i, dst_row, table_rows);
            continue;
        }
        dtable[dtable_off + (size_t)dst_row * (size_t)cols + col] +=
            src[src_off + (size_t)i * cols + col];
    }
}
