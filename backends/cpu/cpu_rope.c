/* Rotary position embedding for the CPU backend, rotate-half as in Hugging
 * Face Llama (q * cos + rotate_half(q) * sin), in place, over cos/sin tables
 * the caller provides ([n_positions, D/2]: HF's tables hold each angle twice,
 * for both halves, so one half suffices). For head h, i < D/2 and the row's
 * position p, with c = cos[p, i] and s = sin[p, i]:
 *   (x[i], x[i + D/2]) <- (x[i] c - x[i + D/2] s, x[i + D/2] c + x[i] s),
 * the same two products and one sum per element as HF's float32 forward.
 * inverse rotates by -angle, the transpose of the rotation: the backward,
 * applied to a gradient in place. */
#include "cpu_internal.h"

/* The tables must cover the largest position; a negative one is an error. */
static int positions_ok(rc_backend *be, const char *op, const int32_t *pos, int N, int *max_out) {
    int max = -1;
    for (int n = 0; n < N; n++) {
        if (pos[n] < 0) {
            cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: positions[%d] = %d is negative", op,
                             n, (int)pos[n]);
            return 0;
        }
        if (pos[n] > max) max = pos[n];
    }
    *max_out = max;
    return 1;
}

void cpu_rope(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
              rc_view sin_table, int N, int H, int D, int inverse) {
    static const char op[] = "rope";
    if (!cpu_sizes_ok(be, op, N, H, D)) return;
    if (D % 2 != 0) {
        cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: head width D = %d is odd", op, D);
        return;
    }
    const size_t width = (size_t)H * (size_t)D;
    if ((size_t)ld < width) {
        cpu_record_error(be, RC_ERR_INVALID_ARG, "cpu %s: ld = %d is less than H * D = %zu", op,
                         ld, width);
        return;
    }
    const size_t extent = N && width ? (size_t)(N - 1) * (size_t)ld + width : 0;
    if (!cpu_view_fits(be, op, "x", x, extent) || extent == 0 ||
        !cpu_view_fits(be, op, "positions", positions, (size_t)N))
        return;
    const int32_t *pos = cpu_i32(positions);
    int max_pos = 0;
    if (!positions_ok(be, op, pos, N, &max_pos)) return;
    const int half = D / 2;
    const size_t table_extent = ((size_t)max_pos + 1) * (size_t)half;
    if (!cpu_view_fits(be, op, "cos_table", cos_table, table_extent) ||
        !cpu_view_fits(be, op, "sin_table", sin_table, table_extent))
        return;
    float *base = cpu_f32(x);
    const float *cos_t = cpu_f32(cos_table);
    const float *sin_t = cpu_f32(sin_table);
    /* Negating s is exact, so the inverse costs nothing in accuracy. */
    const float sign = inverse ? -1.0f : 1.0f;
    CPU_PARALLEL_FOR_IF(extent)
    for (ptrdiff_t n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * (size_t)half;
        const float *s = sin_t + (size_t)pos[n] * (size_t)half;
        for (int h = 0; h < H; h++) {
            float *lo = base + (size_t)n * (size_t)ld + (size_t)h * (size_t)D, *hi = lo + half;
            CPU_SIMD
            for (int i = 0; i < half; i++) {
                const float a = lo[i], b = hi[i], si = sign * s[i];
                lo[i] = a * c[i] - b * si;
                hi[i] = b * c[i] + a * si;
            }
        }
    }
}
