/* Rotary position embedding, rotate-half form (HF Llama's apply_rotary_pos_emb),
 * in place on x [rows, heads * head_dim] with row stride ld.
 *
 * One work-item per (pair i of a head, row), with pairs = head_dim / 2
 * (`half` is a type in OpenCL C): it reads x[i] and x[i + pairs] of its
 * head, both before writing, so no two work-items touch the same element. With c = cos_table[p, i], s = sin_table[p, i] at the row's
 * position p (inverse: s negated, the rotation's transpose):
 *   x[i] <- x[i] c - x[i + pairs] s,  x[i + pairs] <- x[i + pairs] c + x[i] s
 * A position outside [0, positions_in_table) leaves the row as it is and is
 * reported through rc_report_bad_index. */

__kernel void rc_rope(__global float *x, ulong x_off, int ld,
                      __global const int *positions, ulong positions_off,
                      __global const float *cos_table, ulong cos_off,
                      __global const float *sin_table, ulong sin_off,
                      ulong positions_in_table, int rows, int heads, int pairs, int inverse,
                      __global int *index_error, int op_code) {
    const size_t pair = get_global_id(0), row = get_global_id(1);
    if (pair >= (size_t)heads * (size_t)pairs || row >= (size_t)rows) return;
    const int p = positions[positions_off + row];
    if (p < 0 || (ulong)p >= positions_in_table) {
        if (pair == 0) rc_report_bad_index(index_error, op_code, row, p, positions_in_table);
        return;
    }
    const size_t head = pair / (size_t)pairs, i = pair % (size_t)pairs;
    const size_t at = (size_t)p * (size_t)pairs + i;
    const float c = cos_table[cos_off + at];
    const float s = inverse ? -sin_table[sin_off + at] : sin_table[sin_off + at];
    __global float *first = x + x_off + row * (size_t)ld + head * 2 * (size_t)pairs + i;
    __global float *second = first + pairs;
    const float a = *first, b = *second;
    *first = a * c - b * s;
    *second = b * c + a * s;
}
