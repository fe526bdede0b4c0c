/* Row lookups for the CPU backend: embedding forward/backward and the
 * gather/scatter of rows that the score head uses. Both pairs are the same
 * computation (rows of a table selected by int32 indices), so they share one
 * implementation and differ only in the names used in error messages. */
#include "cpu_internal.h"

/* Scattering splits the table's rows into this many sets (row r in set
 * r % ROW_SETS), one task each: rows may repeat, so each row must have one
 * owner, which adds its contributions in index order. Narrow tables (64
 * columns in the tiny preset) keep both threads busy this way, where
 * splitting columns gave one task. */
enum { ROW_SETS = 64 };

/* Checks the views and that every index names a row inside the table's
 * buffer (an index past it would read or write foreign memory). The op does
 * not know the vocabulary size, so an index that is too large but still
 * inside the buffer is the caller's to catch. */
static int lookup_args_ok(rc_backend *be, const char *op, const char *rows_name,
                          const char *table_name, const char *dense_name, rc_view rows,
                          rc_view table, rc_view dense, int n_rows, int C) {
    const size_t total = (size_t)n_rows * (size_t)C;
    if (!cpu_sizes_ok(be, op, n_rows, C, 0) ||
        !cpu_view_fits(be, op, rows_name, rows, total ? (size_t)n_rows : 0) ||
        !cpu_view_fits(be, op, dense_name, dense, total))
        return 0;
    if (total == 0) return 1;
    if (!cpu_view_fits(be, op, table_name, table, (size_t)C)) return 0;
    const size_t table_rows = (table.buf->n_elements - table.offset) / (size_t)C;
    const int32_t *idx = cpu_i32(rows);
    for (int n = 0; n < n_rows; n++) {
        if (idx[n] < 0 || (size_t)idx[n] >= table_rows) {
            cpu_record_error(be, RC_ERR_INVALID_ARG,
                             "cpu %s: %s[%d] = %d is outside %s (%zu rows of %d)", op, rows_name,
                             n, (int)idx[n], table_name, table_rows, C);
            return 0;
        }
    }
    return 1;
}

/* out[n,:] (+)= table[rows[n],:], parallel over n (each output row is
 * written by one thread). */
static void gather(float *out, const int32_t *rows, const float *table, int n_rows, int C,
                   int accumulate) {
    const size_t total = (size_t)n_rows * (size_t)C;
    (void)total;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t n = 0; n < n_rows; n++) {
        float *dst = out + (size_t)n * (size_t)C;
        const float *src = table + (size_t)rows[n] * (size_t)C;
        if (accumulate)
            for (int c = 0; c < C; c++) dst[c] += src[c];
        else
            for (int c = 0; c < C; c++) dst[c] = src[c];
    }
}

/* table[rows[n],:] += dense[n,:], each row's additions in index order, so
 * the rounding is the same for any thread count. */
static void scatter_add(float *table, const float *dense, const int32_t *rows, int n_rows,
                        int C) {
    const size_t total = (size_t)n_rows * (size_t)C;
    (void)total;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t set = 0; set < ROW_SETS; set++)
        for (int n = 0; n < n_rows; n++) {
            if (rows[n] % ROW_SETS != set) continue;
            float *dst = table + (size_t)rows[n] * (size_t)C;
            const float *src = dense + (size_t)n * (size_t)C;
            for (int c = 0; c < C; c++) dst[c] += src[c];
        }
}

void cpu_embedding_forward(rc_backend *be, rc_view out, rc_view ids, rc_view table, int N, int C,
                           int accumulate) {
    if (!lookup_args_ok(be, "embedding_forward", "ids", "table", "out", ids, table, out, N, C))
        return;
    if (N == 0 || C == 0) return;
    gather(cpu_f32(out), cpu_i32(ids), cpu_f32(table), N, C, accumulate);
}

void cpu_embedding_backward(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids, int N,
                            int C) {
    if (!lookup_args_ok(be, "embedding_backward", "ids", "dtable", "dout", ids, dtable, dout, N,
                        C))
        return;
    if (N == 0 || C == 0) return;
    scatter_add(cpu_f32(dtable), cpu_f32(dout), cpu_i32(ids), N, C);
}

void cpu_gather_rows(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows, int C) {
    if (!lookup_args_ok(be, "gather_rows", "rows", "inp", "out", rows, inp, out, n_rows, C))
        return;
    if (n_rows == 0 || C == 0) return;
    gather(cpu_f32(out), cpu_i32(rows), cpu_f32(inp), n_rows, C, 0);
}

void cpu_scatter_rows_add(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows, int n_rows,
                          int C) {
    if (!lookup_args_ok(be, "scatter_rows_add", "rows", "dinp", "dout", rows, dinp, dout, n_rows,
                        C))
        return;
    if (n_rows == 0 || C == 0) return;
    scatter_add(cpu_f32(dinp), cpu_f32(dout), cpu_i32(rows), n_rows, C);
}
