/* The OpenCL backend's ops other than the matrix products: each checks its
 * sizes and views against their buffers, then enqueues one or two kernels
 * from backends/opencl/kernels/. Semantics follow backends/backend.h and the
 * CPU reference (backends/cpu/). */
#include <math.h>
#include <stdlib.h>

#include "opencl_internal.h"

enum {
    ELEMENTWISE_GROUP = 256,
    /* grid-stride kernels never launch more than this many groups */
    ELEMENTWISE_MAX_GROUPS = 4096,
    TILE_COLUMNS = 64,
    ROWS_PER_CHUNK = 64,
    ROW_GROUP_MIN = 32,
    ROW_GROUP_MAX = 256,
    SUM_SQUARES_GROUP = 256,
    SUM_SQUARES_MAX_GROUPS = 256,
};

static size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

/* Launches a grid-stride kernel over n elements (arguments already set). */
static void enqueue_elementwise(rc_ocl_launch *l, size_t n) {
    size_t local = rc_ocl_group_size(l->ctx, l->id, ELEMENTWISE_GROUP);
    size_t groups = (n + local - 1) / local;
    if (groups > ELEMENTWISE_MAX_GROUPS) groups = ELEMENTWISE_MAX_GROUPS;
    size_t global = groups * local;
    rc_ocl_enqueue(l, 1, &global, &local);
}

/* A 2-D launch over (columns, rows) with column tiles of TILE_COLUMNS. */
static void enqueue_columns_by_rows(rc_ocl_launch *l, size_t cols, size_t rows) {
    size_t tile = rc_ocl_group_size(l->ctx, l->id, TILE_COLUMNS);
    size_t global[2] = {round_up(cols, tile), rows};
    size_t local[2] = {tile, 1};
    rc_ocl_enqueue(l, 2, global, local);
}

/* Work-group size for one-group-per-row kernels: enough work-items to cover a
 * short row, at most ROW_GROUP_MAX, a power of two for the reduction tree. */
static size_t row_group_size(rc_ocl_ctx *ctx, rc_ocl_kernel_id id, size_t row_length) {
    size_t want = ROW_GROUP_MIN;
    while (want < row_length && want < ROW_GROUP_MAX) want *= 2;
    return rc_ocl_group_size(ctx, id, want);
}

static void enqueue_rows(rc_ocl_launch *l, size_t n_rows, size_t local) {
    size_t global = n_rows * local;
    rc_ocl_enqueue(l, 1, &global, &local);
}

/* dst[c] += sum over chunks of the partial table [n_chunks, C] (accumulators)
 * that starts at element `table_offset` of `partial`. */
static void finish_columns(rc_ocl_ctx *ctx, const char *op, rc_view dst, cl_mem partial,
                           size_t table_offset, size_t n_chunks, int C) {
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_COLUMN_FINISH, op)) return;
    rc_ocl_arg_view(&l, dst);
    rc_ocl_arg_mem(&l, partial);
    rc_ocl_arg_ulong(&l, table_offset);
    rc_ocl_arg_int(&l, (int)n_chunks);
    rc_ocl_arg_int(&l, C);
    enqueue_columns_by_rows(&l, (size_t)C, 1);
}

/* ---- bias ---- */

static void ocl_bias_forward(rc_backend *be, rc_view out, rc_view bias, int N, int C) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "bias_forward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    if (!rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "bias", bias, n ? (size_t)C : 0, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_BIAS_FORWARD, op)) return;
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, bias);
    rc_ocl_arg_int(&l, N);
    rc_ocl_arg_int(&l, C);
    enqueue_columns_by_rows(&l, (size_t)C, (size_t)N);
}

static void ocl_bias_backward(rc_backend *be, rc_view dbias, rc_view dout, int N, int C) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "bias_backward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    if (!rc_ocl_check_view(ctx, op, "dbias", dbias, n ? (size_t)C : 0, 0) ||
        !rc_ocl_check_view(ctx, op, "dout", dout, n, 0) || n == 0)
        return;
    size_t n_chunks = ((size_t)N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
    cl_mem partial = rc_ocl_scratch(ctx, n_chunks * (size_t)C * ctx->acc_size, op);
    if (!partial) return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_COLUMN_PARTIAL_SUMS, op)) return;
    rc_ocl_arg_view(&l, dout);
    rc_ocl_arg_int(&l, N);
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_int(&l, ROWS_PER_CHUNK);
    rc_ocl_arg_mem(&l, partial);
    enqueue_columns_by_rows(&l, (size_t)C, n_chunks);
    finish_columns(ctx, op, dbias, partial, 0, n_chunks, C);
}

/* ---- embeddings and row gathers ---- */

/* Rows of `table` (from its offset to the end of its buffer): indices are
 * checked against this on the device, as the CPU backend checks them. */
static cl_ulong table_rows(rc_view table, int C) {
    return (cl_ulong)((table.buf->n_elements - table.offset) / (size_t)C);
}

static void gather(rc_ocl_ctx *ctx, const char *op, int op_code, rc_view out, rc_view rows,
                   rc_view table, int n_rows, int C, int accumulate) {
    if (!rc_ocl_sizes_ok(ctx, op, n_rows, C, 0)) return;
    size_t n = (size_t)n_rows * (size_t)C;
    if (!rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "row indices", rows, n ? (size_t)n_rows : 0, 0) ||
        !rc_ocl_check_view(ctx, op, "table", table, n ? (size_t)C : 0, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ROWS_GATHER, op)) return;
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, rows);
    rc_ocl_arg_view(&l, table);
    rc_ocl_arg_ulong(&l, table_rows(table, C));
    rc_ocl_arg_int(&l, n_rows);
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_int(&l, accumulate);
    rc_ocl_arg_mem(&l, ctx->index_error);
    rc_ocl_arg_int(&l, op_code);
    enqueue_columns_by_rows(&l, (size_t)C, (size_t)n_rows);
}

static void scatter_add(rc_ocl_ctx *ctx, const char *op, int op_code, rc_view dtable, rc_view src,
                        rc_view rows, int n_rows, int C) {
    if (!rc_ocl_sizes_ok(ctx, op, n_rows, C, 0)) return;
    size_t n = (size_t)n_rows * (size_t)C;
    if (!rc_ocl_check_view(ctx, op, "gradient table", dtable, n ? (size_t)C : 0, 0) ||
        !rc_ocl_check_view(ctx, op, "dout", src, n, 0) ||
        !rc_ocl_check_view(ctx, op, "row indices", rows, n ? (size_t)n_rows : 0, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ROWS_SCATTER_ADD, op)) return;
    rc_ocl_arg_view(&l, dtable);
    rc_ocl_arg_ulong(&l, table_rows(dtable, C));
    rc_ocl_arg_view(&l, src);
    rc_ocl_arg_view(&l, rows);
    rc_ocl_arg_int(&l, n_rows);
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_mem(&l, ctx->index_error);
    rc_ocl_arg_int(&l, op_code);
    enqueue_columns_by_rows(&l, (size_t)C, 1);
}

static void ocl_embedding_forward(rc_backend *be, rc_view out, rc_view ids, rc_view table, int N,
                                  int C, int accumulate) {
    gather(rc_ocl(be), "embedding_forward", RC_OCL_OP_EMBEDDING_FORWARD, out, ids, table, N, C,
           accumulate);
}

static void ocl_embedding_backward(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids, int N,
                                   int C) {
    scatter_add(rc_ocl(be), "embedding_backward", RC_OCL_OP_EMBEDDING_BACKWARD, dtable, dout, ids,
                N, C);
}

static void ocl_gather_rows(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows,
                            int C) {
    gather(rc_ocl(be), "gather_rows", RC_OCL_OP_GATHER_ROWS, out, rows, inp, n_rows, C, 0);
}

static void ocl_scatter_rows_add(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows,
                                 int n_rows, int C) {
    scatter_add(rc_ocl(be), "scatter_rows_add", RC_OCL_OP_SCATTER_ROWS_ADD, dinp, dout, rows,
                n_rows, C);
}

/* ---- layer norm ---- */

/* mean and rstd may be absent (inference), as may weight and bias. */
static void ocl_layernorm_forward(rc_backend *be, rc_view out, rc_view mean, rc_view rstd,
                                  rc_view inp, rc_view weight, rc_view bias, int N, int C,
                                  float eps) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "layernorm_forward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    size_t per_row = n ? (size_t)N : 0, per_column = n ? (size_t)C : 0;
    if (!rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) ||
        !rc_ocl_check_view(ctx, op, "mean", mean, per_row, 1) ||
        !rc_ocl_check_view(ctx, op, "rstd", rstd, per_row, 1) ||
        !rc_ocl_check_view(ctx, op, "weight", weight, per_column, 1) ||
        !rc_ocl_check_view(ctx, op, "bias", bias, per_column, 1) || n == 0)
        return;
    size_t local = row_group_size(ctx, K_LAYERNORM_FORWARD, (size_t)C);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_LAYERNORM_FORWARD, op)) return;
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, mean);
    rc_ocl_arg_view(&l, rstd);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_view(&l, weight);
    rc_ocl_arg_view(&l, bias);
    rc_ocl_arg_int(&l, rc_view_present(mean));
    rc_ocl_arg_int(&l, rc_view_present(rstd));
    rc_ocl_arg_int(&l, rc_view_present(weight));
    rc_ocl_arg_int(&l, rc_view_present(bias));
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_float(&l, eps);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, (size_t)N, local);
}

/* Accumulates into whichever of dinp, dweight, dbias are present. */
static void ocl_layernorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                                   rc_view dout, rc_view inp, rc_view weight, rc_view mean,
                                   rc_view rstd, int N, int C) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "layernorm_backward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    size_t per_row = n ? (size_t)N : 0, per_column = n ? (size_t)C : 0;
    if (!rc_ocl_check_view(ctx, op, "dinp", dinp, n, 1) ||
        !rc_ocl_check_view(ctx, op, "dout", dout, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) ||
        !rc_ocl_check_view(ctx, op, "mean", mean, per_row, 0) ||
        !rc_ocl_check_view(ctx, op, "rstd", rstd, per_row, 0) ||
        !rc_ocl_check_view(ctx, op, "weight", weight, per_column, 1) ||
        !rc_ocl_check_view(ctx, op, "dweight", dweight, per_column, 1) ||
        !rc_ocl_check_view(ctx, op, "dbias", dbias, per_column, 1) || n == 0)
        return;

    rc_ocl_launch l;
    if (rc_view_present(dweight) || rc_view_present(dbias)) {
        size_t n_chunks = ((size_t)N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
        size_t table = n_chunks * (size_t)C; /* accumulators in one partial table */
        cl_mem partial = rc_ocl_scratch(ctx, 2 * table * ctx->acc_size, op);
        if (!partial) return;
        if (!rc_ocl_begin(&l, ctx, K_LAYERNORM_PARAM_PARTIALS, op)) return;
        rc_ocl_arg_view(&l, dout);
        rc_ocl_arg_view(&l, inp);
        rc_ocl_arg_view(&l, mean);
        rc_ocl_arg_view(&l, rstd);
        rc_ocl_arg_int(&l, N);
        rc_ocl_arg_int(&l, C);
        rc_ocl_arg_int(&l, ROWS_PER_CHUNK);
        rc_ocl_arg_mem(&l, partial);
        rc_ocl_arg_ulong(&l, table); /* the dbias partials follow the dweight ones */
        enqueue_columns_by_rows(&l, (size_t)C, n_chunks);
        if (rc_view_present(dweight)) finish_columns(ctx, op, dweight, partial, 0, n_chunks, C);
        if (rc_view_present(dbias)) finish_columns(ctx, op, dbias, partial, table, n_chunks, C);
    }

    if (!rc_view_present(dinp)) return;
    size_t local = row_group_size(ctx, K_LAYERNORM_BACKWARD_INPUT, (size_t)C);
    if (!rc_ocl_begin(&l, ctx, K_LAYERNORM_BACKWARD_INPUT, op)) return;
    rc_ocl_arg_view(&l, dinp);
    rc_ocl_arg_view(&l, dout);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_view(&l, weight);
    rc_ocl_arg_view(&l, mean);
    rc_ocl_arg_view(&l, rstd);
    rc_ocl_arg_int(&l, rc_view_present(weight));
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, (size_t)N, local);
}

/* ---- RMS norm ---- */

/* rstd may be absent (inference), as may weight. */
static void ocl_rmsnorm_forward(rc_backend *be, rc_view out, rc_view rstd, rc_view inp,
                                rc_view weight, int N, int C, float eps) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "rmsnorm_forward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    size_t per_row = n ? (size_t)N : 0, per_column = n ? (size_t)C : 0;
    if (!rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) ||
        !rc_ocl_check_view(ctx, op, "rstd", rstd, per_row, 1) ||
        !rc_ocl_check_view(ctx, op, "weight", weight, per_column, 1) || n == 0)
        return;
    size_t local = row_group_size(ctx, K_RMSNORM_FORWARD, (size_t)C);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_RMSNORM_FORWARD, op)) return;
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, rstd);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_view(&l, weight);
    rc_ocl_arg_int(&l, rc_view_present(rstd));
    rc_ocl_arg_int(&l, rc_view_present(weight));
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_float(&l, eps);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, (size_t)N, local);
}

/* Accumulates into whichever of dinp and dweight are present (the CPU
 * reference, like layernorm_backward, accepts an absent dinp). */
static void ocl_rmsnorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                                 rc_view inp, rc_view weight, rc_view rstd, int N, int C) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "rmsnorm_backward";
    if (!rc_ocl_sizes_ok(ctx, op, N, C, 0)) return;
    size_t n = (size_t)N * (size_t)C;
    size_t per_row = n ? (size_t)N : 0, per_column = n ? (size_t)C : 0;
    if (!rc_ocl_check_view(ctx, op, "dinp", dinp, n, 1) ||
        !rc_ocl_check_view(ctx, op, "dout", dout, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) ||
        !rc_ocl_check_view(ctx, op, "rstd", rstd, per_row, 0) ||
        !rc_ocl_check_view(ctx, op, "weight", weight, per_column, 1) ||
        !rc_ocl_check_view(ctx, op, "dweight", dweight, per_column, 1) || n == 0)
        return;

    rc_ocl_launch l;
    if (rc_view_present(dweight)) {
        size_t n_chunks = ((size_t)N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
        cl_mem partial = rc_ocl_scratch(ctx, n_chunks * (size_t)C * ctx->acc_size, op);
        if (!partial) return;
        if (!rc_ocl_begin(&l, ctx, K_RMSNORM_WEIGHT_PARTIALS, op)) return;
        rc_ocl_arg_view(&l, dout);
        rc_ocl_arg_view(&l, inp);
        rc_ocl_arg_view(&l, rstd);
        rc_ocl_arg_int(&l, N);
        rc_ocl_arg_int(&l, C);
        rc_ocl_arg_int(&l, ROWS_PER_CHUNK);
        rc_ocl_arg_mem(&l, partial);
        enqueue_columns_by_rows(&l, (size_t)C, n_chunks);
        finish_columns(ctx, op, dweight, partial, 0, n_chunks, C);
    }

    if (!rc_view_present(dinp)) return;
    size_t local = row_group_size(ctx, K_RMSNORM_BACKWARD_INPUT, (size_t)C);
    if (!rc_ocl_begin(&l, ctx, K_RMSNORM_BACKWARD_INPUT, op)) return;
    rc_ocl_arg_view(&l, dinp);
    rc_ocl_arg_view(&l, dout);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_view(&l, weight);
    rc_ocl_arg_view(&l, rstd);
    rc_ocl_arg_int(&l, rc_view_present(weight));
    rc_ocl_arg_int(&l, C);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, (size_t)N, local);
}

/* ---- rotary position embedding ---- */

static void ocl_rope(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
                     rc_view sin_table, int N, int H, int D, int inverse) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "rope";
    if (!rc_ocl_sizes_ok(ctx, op, N, H, D)) return;
    if (D % 2 != 0 || (long long)ld < (long long)H * D) {
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG,
                         "%s: head width %d must be even and row stride %d at least %d heads x %d",
                         op, D, ld, H, D);
        return;
    }
    size_t row_width = (size_t)H * (size_t)D, half = (size_t)D / 2;
    size_t n = (size_t)N * row_width;
    if (!rc_ocl_check_view(ctx, op, "x", x, rc_ocl_matrix_extent(N, row_width, ld, 0, 1), 0) ||
        !rc_ocl_check_view(ctx, op, "positions", positions, n ? (size_t)N : 0, 0) ||
        !rc_ocl_check_view(ctx, op, "cos_table", cos_table, n ? half : 0, 0) ||
        !rc_ocl_check_view(ctx, op, "sin_table", sin_table, n ? half : 0, 0) || n == 0)
        return;
    /* positions are checked on the device against the rows both tables hold */
    cl_ulong cos_rows = table_rows(cos_table, (int)half), sin_rows = table_rows(sin_table, (int)half);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ROPE, op)) return;
    rc_ocl_arg_view(&l, x);
    rc_ocl_arg_int(&l, ld);
    rc_ocl_arg_view(&l, positions);
    rc_ocl_arg_view(&l, cos_table);
    rc_ocl_arg_view(&l, sin_table);
    rc_ocl_arg_ulong(&l, cos_rows < sin_rows ? cos_rows : sin_rows);
    rc_ocl_arg_int(&l, N);
    rc_ocl_arg_int(&l, H);
    rc_ocl_arg_int(&l, (int)half);
    rc_ocl_arg_int(&l, inverse != 0);
    rc_ocl_arg_mem(&l, ctx->index_error);
    rc_ocl_arg_int(&l, RC_OCL_OP_ROPE);
    enqueue_columns_by_rows(&l, (size_t)H * half, (size_t)N);
}

/* ---- element-wise ---- */

static int known_activation(rc_ocl_ctx *ctx, const char *op, rc_activation kind) {
    if (kind == RC_ACT_RELU || kind == RC_ACT_GELU || kind == RC_ACT_GELU_TANH ||
        kind == RC_ACT_SILU)
        return 1;
    rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG, "%s: unknown activation %d", op, (int)kind);
    return 0;
}

static void ocl_activation_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                                   size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "activation_forward";
    if (!known_activation(ctx, op, kind) || !rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ACTIVATION_FORWARD, op)) return;
    rc_ocl_arg_int(&l, (int)kind);
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

static void ocl_activation_backward(rc_backend *be, rc_activation kind, rc_view dinp, rc_view dout,
                                    rc_view inp, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "activation_backward";
    if (!known_activation(ctx, op, kind) || !rc_ocl_check_view(ctx, op, "dinp", dinp, n, 0) ||
        !rc_ocl_check_view(ctx, op, "dout", dout, n, 0) ||
        !rc_ocl_check_view(ctx, op, "inp", inp, n, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ACTIVATION_BACKWARD, op)) return;
    rc_ocl_arg_int(&l, (int)kind);
    rc_ocl_arg_view(&l, dinp);
    rc_ocl_arg_view(&l, dout);
    rc_ocl_arg_view(&l, inp);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

/* out = act(gate) * up; out may alias up */
static void ocl_gated_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view gate,
                              rc_view up, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "gated_forward";
    if (!known_activation(ctx, op, kind) || !rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "gate", gate, n, 0) ||
        !rc_ocl_check_view(ctx, op, "up", up, n, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_GATED_FORWARD, op)) return;
    rc_ocl_arg_int(&l, (int)kind);
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, gate);
    rc_ocl_arg_view(&l, up);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

static void ocl_gated_backward(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                               rc_view dout, rc_view gate, rc_view up, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "gated_backward";
    if (!known_activation(ctx, op, kind) || !rc_ocl_check_view(ctx, op, "dgate", dgate, n, 0) ||
        !rc_ocl_check_view(ctx, op, "dup", dup, n, 0) ||
        !rc_ocl_check_view(ctx, op, "dout", dout, n, 0) ||
        !rc_ocl_check_view(ctx, op, "gate", gate, n, 0) ||
        !rc_ocl_check_view(ctx, op, "up", up, n, 0) || n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_GATED_BACKWARD, op)) return;
    rc_ocl_arg_int(&l, (int)kind);
    rc_ocl_arg_view(&l, dgate);
    rc_ocl_arg_view(&l, dup);
    rc_ocl_arg_view(&l, dout);
    rc_ocl_arg_view(&l, gate);
    rc_ocl_arg_view(&l, up);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

static void ocl_add(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "add";
    if (!rc_ocl_check_view(ctx, op, "out", out, n, 0) ||
        !rc_ocl_check_view(ctx, op, "a", a, n, 0) || !rc_ocl_check_view(ctx, op, "b", b, n, 0) ||
        n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ADD, op)) return;
    rc_ocl_arg_view(&l, out);
    rc_ocl_arg_view(&l, a);
    rc_ocl_arg_view(&l, b);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

static void ocl_axpy(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "axpy";
    if (!rc_ocl_check_view(ctx, op, "y", y, n, 0) || !rc_ocl_check_view(ctx, op, "x", x, n, 0) ||
        n == 0)
        return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_AXPY, op)) return;
    rc_ocl_arg_view(&l, y);
    rc_ocl_arg_float(&l, alpha);
    rc_ocl_arg_view(&l, x);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

static void ocl_scale(rc_backend *be, rc_view x, float alpha, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "scale";
    if (!rc_ocl_check_view(ctx, op, "x", x, n, 0) || n == 0) return;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_SCALE, op)) return;
    rc_ocl_arg_view(&l, x);
    rc_ocl_arg_float(&l, alpha);
    rc_ocl_arg_ulong(&l, n);
    enqueue_elementwise(&l, n);
}

/* ---- attention softmax ---- */

/* Queries are the last Tq of Tk positions (see backend.h). */
static int queries_ok(rc_ocl_ctx *ctx, const char *op, int B, int H, int Tq, int Tk) {
    if (!rc_ocl_sizes_ok(ctx, op, B, H, Tq)) return 0;
    if (Tq <= Tk) return 1;
    rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG, "%s: %d queries over %d keys", op, Tq, Tk);
    return 0;
}

static void ocl_softmax_forward(rc_backend *be, rc_view probs, rc_view scores, rc_view key_mask,
                                int B, int H, int Tq, int Tk) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "attention_softmax_forward";
    if (!queries_ok(ctx, op, B, H, Tq, Tk)) return;
    size_t rows = (size_t)B * (size_t)H * (size_t)Tq;
    size_t n = rows * (size_t)Tk;
    if (!rc_ocl_check_view(ctx, op, "probs", probs, n, 0) ||
        !rc_ocl_check_view(ctx, op, "scores", scores, n, 0) ||
        !rc_ocl_check_view(ctx, op, "key_mask", key_mask, n ? (size_t)B * (size_t)Tk : 0, 0) ||
        n == 0)
        return;
    size_t local = row_group_size(ctx, K_SOFTMAX_FORWARD, (size_t)Tk);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_SOFTMAX_FORWARD, op)) return;
    rc_ocl_arg_view(&l, probs);
    rc_ocl_arg_view(&l, scores);
    rc_ocl_arg_view(&l, key_mask);
    rc_ocl_arg_int(&l, H);
    rc_ocl_arg_int(&l, Tq);
    rc_ocl_arg_int(&l, Tk);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, rows, local);
}

static void ocl_softmax_backward(rc_backend *be, rc_view dscores, rc_view dprobs, rc_view probs,
                                 int B, int H, int Tq, int Tk) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "attention_softmax_backward";
    if (!queries_ok(ctx, op, B, H, Tq, Tk)) return;
    size_t rows = (size_t)B * (size_t)H * (size_t)Tq;
    size_t n = rows * (size_t)Tk;
    if (!rc_ocl_check_view(ctx, op, "dscores", dscores, n, 0) ||
        !rc_ocl_check_view(ctx, op, "dprobs", dprobs, n, 0) ||
        !rc_ocl_check_view(ctx, op, "probs", probs, n, 0) || n == 0)
        return;
    size_t local = row_group_size(ctx, K_SOFTMAX_BACKWARD, (size_t)Tk);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_SOFTMAX_BACKWARD, op)) return;
    rc_ocl_arg_view(&l, dscores);
    rc_ocl_arg_view(&l, dprobs);
    rc_ocl_arg_view(&l, probs);
    rc_ocl_arg_int(&l, Tk);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    enqueue_rows(&l, rows, local);
}

/* ---- optimizer ---- */

/* Returns NaN on failure (the error waits for sync), so a caller that forgets
 * to check cannot clip with a made-up norm. */
static double ocl_sum_squares(rc_backend *be, rc_view x, size_t n) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "sum_squares";
    if (!rc_ocl_check_view(ctx, op, "x", x, n, 0)) return NAN;
    if (n == 0) return ctx->error_code == RC_OK ? 0.0 : NAN;
    size_t local = rc_ocl_group_size(ctx, K_SUM_SQUARES_PARTIALS, SUM_SQUARES_GROUP);
    size_t groups = (n + local - 1) / local;
    if (groups > SUM_SQUARES_MAX_GROUPS) groups = SUM_SQUARES_MAX_GROUPS;
    cl_mem partial = rc_ocl_scratch(ctx, groups * ctx->acc_size, op);
    if (!partial) return NAN;
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_SUM_SQUARES_PARTIALS, op)) return NAN;
    rc_ocl_arg_view(&l, x);
    rc_ocl_arg_ulong(&l, n);
    rc_ocl_arg_mem(&l, partial);
    rc_ocl_arg_local(&l, local * ctx->acc_size);
    size_t global = groups * local;
    rc_ocl_enqueue(&l, 1, &global, &local);
    if (ctx->error_code != RC_OK) return NAN;

    double as_double[SUM_SQUARES_MAX_GROUPS];
    float as_float[SUM_SQUARES_MAX_GROUPS];
    void *dst = ctx->has_fp64 ? (void *)as_double : (void *)as_float;
    cl_int err = clEnqueueReadBuffer(ctx->queue, partial, CL_TRUE, 0, groups * ctx->acc_size, dst,
                                     0, NULL, NULL);
    if (err != CL_SUCCESS) {
        rc_ocl_set_error(ctx, RC_ERR_BACKEND, "%s: reading the partial sums failed: %s", op,
                         rc_ocl_error_name(err));
        return NAN;
    }
    double total = 0.0;
    for (size_t g = 0; g < groups; g++) total += ctx->has_fp64 ? as_double[g] : as_float[g];
    return total;
}

static void ocl_adamw(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m,
                      rc_view v, size_t n, double lr, double beta1, double beta2, double eps,
                      double weight_decay, double bias_correction1, double bias_correction2) {
    rc_ocl_ctx *ctx = rc_ocl(be);
    const char *op = "adamw";
    if (!rc_ocl_check_view(ctx, op, "param", param, n, 0) ||
        !rc_ocl_check_view(ctx, op, "grad", grad, n, 0) ||
        !rc_ocl_check_view(ctx, op, "m", m, n, 0) || !rc_ocl_check_view(ctx, op, "v", v, n, 0) ||
        n == 0)
        return;
    if (!(bias_correction1 > 0.0f) || !(bias_correction2 > 0.0f)) {
        rc_ocl_set_error(ctx, RC_ERR_INVALID_ARG,
                         "%s: bias corrections must be positive (got %g, %g; was the step "
                         "counted?)",
                         op, (double)bias_correction1, (double)bias_correction2);
        return;
    }
    /* scalars in double, rounded to float once (see kernels/adamw.cl) */
    float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    float m_weight = (float)(1.0 - (double)beta1);
    float v_weight = (float)(1.0 - (double)beta2);
    float neg_step = (float)(-((double)lr / (double)bias_correction1));
    float bc2_sqrt = (float)sqrt((double)bias_correction2);
    rc_ocl_launch l;
    if (!rc_ocl_begin(&l, ctx, K_ADAMW, op)) return;
    rc_ocl_arg_view(&l, param);
    rc_ocl_arg_view(&l, grad);
    rc_ocl_arg_float(&l, grad_scale);
    rc_ocl_arg_view(&l, m);
    rc_ocl_arg_view(&l, v);
    rc_ocl_arg_ulong(&l, n);
    rc_ocl_arg_float(&l, decay);
    rc_ocl_arg_float(&l, m_weight);
    rc_ocl_arg_float(&l, beta2);
    rc_ocl_arg_float(&l, v_weight);
    rc_ocl_arg_float(&l, neg_step);
    rc_ocl_arg_float(&l, bc2_sqrt);
    rc_ocl_arg_float(&l, eps);
    enqueue_elementwise(&l, n);
}

void rc_ocl_install_ops(rc_backend *be) {
    be->bias_forward = ocl_bias_forward;
    be->bias_backward = ocl_bias_backward;
    be->embedding_forward = ocl_embedding_forward;
    be->embedding_backward = ocl_embedding_backward;
    be->layernorm_forward = ocl_layernorm_forward;
    be->layernorm_backward = ocl_layernorm_backward;
    be->rmsnorm_forward = ocl_rmsnorm_forward;
    be->rmsnorm_backward = ocl_rmsnorm_backward;
    be->rope = ocl_rope;
    be->gated_forward = ocl_gated_forward;
    be->gated_backward = ocl_gated_backward;
    be->activation_forward = ocl_activation_forward;
    be->activation_backward = ocl_activation_backward;
    be->add = ocl_add;
    be->axpy = ocl_axpy;
    be->scale = ocl_scale;
    be->attention_softmax_forward = ocl_softmax_forward;
    be->attention_softmax_backward = ocl_softmax_backward;
    be->gather_rows = ocl_gather_rows;
    be->scatter_rows_add = ocl_scatter_rows_add;
    be->sum_squares = ocl_sum_squares;
    be->adamw = ocl_adamw;
}
