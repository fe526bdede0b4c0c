/* The CUDA backend's non-GEMM ops: each checks its sizes and views on the
 * host (a misuse becomes the sticky error, see cuda_backend.c), skips empty
 * work, and queues the kernel from one of the .cu files. Semantics are those
 * of backends/backend.h. */
#include <math.h>

#include "cuda_internal.h"

/* 1 when the op should run: no earlier failure recorded. */
static int ready(rc_backend *be) { return cuda_state_of(be)->pending == RC_OK; }

static cudaStream_t stream_of(rc_backend *be) { return cuda_state_of(be)->stream; }

static size_t area(int rows, int cols) { return (size_t)rows * (size_t)cols; }

void cuda_fill(rc_backend *be, rc_view x, float value, size_t n) {
    if (!ready(be) || n == 0 || !cuda_view_fits(be, "fill", "x", x, n)) return;
    cuda_after_launch(be, "fill", cuda_launch_fill(stream_of(be), cuda_f32(x), value, n));
}

void cuda_bias_forward(rc_backend *be, rc_view out, rc_view bias, int N, int C) {
    static const char op[] = "bias_forward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "out", out, area(N, C)) ||
        !cuda_view_fits(be, op, "bias", bias, (size_t)C))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_bias_forward(stream_of(be), cuda_f32(out), cuda_f32(bias), N, C));
}

void cuda_bias_backward(rc_backend *be, rc_view dbias, rc_view dout, int N, int C) {
    static const char op[] = "bias_backward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "dbias", dbias, (size_t)C) ||
        !cuda_view_fits(be, op, "dout", dout, area(N, C)))
        return;
    float *partials = cuda_scratch(be, 2 * sizeof(float) * area(cuda_colsum_chunks(N), C), op);
    if (!partials) return;
    cuda_after_launch(be, op,
                      cuda_launch_bias_backward(stream_of(be), cuda_f32(dbias), cuda_f32(dout), N,
                                                C, partials));
}

/* Shared checks of the two gather-style ops; table_rows from the buffer. */
static void gather(rc_backend *be, const char *op, int flag_code, rc_view out, rc_view ids,
                   rc_view table, int N, int C, int accumulate) {
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "out", out, area(N, C)) ||
        !cuda_view_fits(be, op, "ids", ids, (size_t)N) ||
        !cuda_view_fits(be, op, "table", table, (size_t)C))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_gather(stream_of(be), cuda_f32(out), cuda_i32(ids),
                                         cuda_f32(table), cuda_rows_in(table, C), N, C,
                                         accumulate, cuda_state_of(be)->flag, flag_code));
}

static void scatter_add(rc_backend *be, const char *op, int flag_code, rc_view table,
                        rc_view src, rc_view ids, int N, int C) {
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "table", table, (size_t)C) ||
        !cuda_view_fits(be, op, "src", src, area(N, C)) ||
        !cuda_view_fits(be, op, "ids", ids, (size_t)N))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_scatter_add(stream_of(be), cuda_f32(table), cuda_f32(src),
                                              cuda_i32(ids), cuda_rows_in(table, C), N, C,
                                              cuda_state_of(be)->flag, flag_code));
}

void cuda_embedding_forward(rc_backend *be, rc_view out, rc_view ids, rc_view table, int N,
                            int C, int accumulate) {
    gather(be, "embedding_forward", CUDA_FLAG_EMBEDDING_FORWARD, out, ids, table, N, C,
           accumulate);
}

void cuda_embedding_backward(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids, int N,
                             int C) {
    scatter_add(be, "embedding_backward", CUDA_FLAG_EMBEDDING_BACKWARD, dtable, dout, ids, N, C);
}

void cuda_gather_rows(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows,
                      int C) {
    gather(be, "gather_rows", CUDA_FLAG_GATHER_ROWS, out, rows, inp, n_rows, C, 0);
}

void cuda_scatter_rows_add(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows,
                           int n_rows, int C) {
    scatter_add(be, "scatter_rows_add", CUDA_FLAG_SCATTER_ROWS_ADD, dinp, dout, rows, n_rows, C);
}

void cuda_layernorm_forward(rc_backend *be, rc_view out, rc_view mean, rc_view rstd,
                            rc_view inp, rc_view weight, rc_view bias, int N, int C, float eps) {
    static const char op[] = "layernorm_forward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    /* mean/rstd/weight/bias are optional: checked only when present. */
    if (!cuda_view_fits(be, op, "out", out, area(N, C)) ||
        !cuda_view_fits(be, op, "inp", inp, area(N, C)) ||
        (mean.buf && !cuda_view_fits(be, op, "mean", mean, (size_t)N)) ||
        (rstd.buf && !cuda_view_fits(be, op, "rstd", rstd, (size_t)N)) ||
        (weight.buf && !cuda_view_fits(be, op, "weight", weight, (size_t)C)) ||
        (bias.buf && !cuda_view_fits(be, op, "bias", bias, (size_t)C)))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_layernorm_forward(stream_of(be), cuda_f32(out), cuda_f32(mean),
                                                    cuda_f32(rstd), cuda_f32(inp),
                                                    cuda_f32(weight), cuda_f32(bias), N, C, eps));
}

void cuda_layernorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                             rc_view dout, rc_view inp, rc_view weight, rc_view mean,
                             rc_view rstd, int N, int C) {
    static const char op[] = "layernorm_backward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "dout", dout, area(N, C)) ||
        !cuda_view_fits(be, op, "inp", inp, area(N, C)) ||
        !cuda_view_fits(be, op, "mean", mean, (size_t)N) ||
        !cuda_view_fits(be, op, "rstd", rstd, (size_t)N) ||
        (dinp.buf && !cuda_view_fits(be, op, "dinp", dinp, area(N, C))) ||
        (weight.buf && !cuda_view_fits(be, op, "weight", weight, (size_t)C)) ||
        (dweight.buf && !cuda_view_fits(be, op, "dweight", dweight, (size_t)C)) ||
        (dbias.buf && !cuda_view_fits(be, op, "dbias", dbias, (size_t)C)))
        return;
    float *partials = NULL;
    if (dweight.buf || dbias.buf) {
        partials = cuda_scratch(be, 2 * sizeof(float) * area(cuda_colsum_chunks(N), C), op);
        if (!partials) return;
    }
    cuda_after_launch(be, op,
                      cuda_launch_layernorm_backward(
                          stream_of(be), cuda_f32(dinp), cuda_f32(dweight), cuda_f32(dbias),
                          cuda_f32(dout), cuda_f32(inp), cuda_f32(weight), cuda_f32(mean),
                          cuda_f32(rstd), N, C, partials));
}

/* rstd and weight are optional: checked only when present. */
void cuda_rmsnorm_forward(rc_backend *be, rc_view out, rc_view rstd, rc_view inp,
                          rc_view weight, int N, int C, float eps) {
    static const char op[] = "rmsnorm_forward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    if (!cuda_view_fits(be, op, "out", out, area(N, C)) ||
        !cuda_view_fits(be, op, "inp", inp, area(N, C)) ||
        (rstd.buf && !cuda_view_fits(be, op, "rstd", rstd, (size_t)N)) ||
        (weight.buf && !cuda_view_fits(be, op, "weight", weight, (size_t)C)))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_rmsnorm_forward(stream_of(be), cuda_f32(out), cuda_f32(rstd),
                                                  cuda_f32(inp), cuda_f32(weight), N, C, eps));
}

void cuda_rmsnorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                           rc_view inp, rc_view weight, rc_view rstd, int N, int C) {
    static const char op[] = "rmsnorm_backward";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, C, 0) || N == 0 || C == 0) return;
    /* dinp, weight and dweight are optional, as in the CPU reference */
    if ((dinp.buf && !cuda_view_fits(be, op, "dinp", dinp, area(N, C))) ||
        !cuda_view_fits(be, op, "dout", dout, area(N, C)) ||
        !cuda_view_fits(be, op, "inp", inp, area(N, C)) ||
        !cuda_view_fits(be, op, "rstd", rstd, (size_t)N) ||
        (weight.buf && !cuda_view_fits(be, op, "weight", weight, (size_t)C)) ||
        (dweight.buf && !cuda_view_fits(be, op, "dweight", dweight, (size_t)C)))
        return;
    float *partials = NULL;
    if (dweight.buf) {
        partials = cuda_scratch(be, 2 * sizeof(float) * area(cuda_colsum_chunks(N), C), op);
        if (!partials) return;
    }
    cuda_after_launch(be, op,
                      cuda_launch_rmsnorm_backward(stream_of(be), cuda_f32(dinp),
                                                   cuda_f32(dweight), cuda_f32(dout),
                                                   cuda_f32(inp), cuda_f32(weight),
                                                   cuda_f32(rstd), N, C, partials));
}

void cuda_rope(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
               rc_view sin_table, int N, int H, int D, int inverse) {
    static const char op[] = "rope";
    if (!ready(be) || !cuda_sizes_ok(be, op, N, H, D)) return;
    if (D % 2 != 0 || (long long)ld < (long long)H * D) {
        cuda_record_error(be, RC_ERR_INVALID_ARG,
                          "%s: head width %d must be even and row stride %d at least %d heads x %d",
                          op, D, ld, H, D);
        return;
    }
    if (N == 0 || H == 0 || D == 0) return;
    const int pairs = D / 2;
    const size_t extent = (size_t)(N - 1) * (size_t)ld + (size_t)H * (size_t)D;
    if (!cuda_view_fits(be, op, "x", x, extent) ||
        !cuda_view_fits(be, op, "positions", positions, (size_t)N) ||
        !cuda_view_fits(be, op, "cos_table", cos_table, (size_t)pairs) ||
        !cuda_view_fits(be, op, "sin_table", sin_table, (size_t)pairs))
        return;
    /* positions are checked on the device against the rows both tables hold */
    long long cos_rows = cuda_rows_in(cos_table, pairs), sin_rows = cuda_rows_in(sin_table, pairs);
    cuda_after_launch(be, op,
                      cuda_launch_rope(stream_of(be), cuda_f32(x), ld, cuda_i32(positions),
                                       cuda_f32(cos_table), cuda_f32(sin_table),
                                       cos_rows < sin_rows ? cos_rows : sin_rows, N, H, D,
                                       inverse, cuda_state_of(be)->flag, CUDA_FLAG_ROPE));
}

static int activation_kind_ok(rc_backend *be, const char *op, rc_activation kind) {
    if (kind == RC_ACT_RELU || kind == RC_ACT_GELU || kind == RC_ACT_GELU_TANH ||
        kind == RC_ACT_SILU)
        return 1;
    cuda_record_error(be, RC_ERR_INVALID_ARG, "%s: unknown activation kind %d", op, (int)kind);
    return 0;
}

void cuda_activation_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                             size_t n) {
    static const char op[] = "activation_forward";
    if (!ready(be) || !activation_kind_ok(be, op, kind) || n == 0) return;
    if (!cuda_view_fits(be, op, "out", out, n) || !cuda_view_fits(be, op, "inp", inp, n)) return;
    cuda_after_launch(be, op,
                      cuda_launch_activation_forward(stream_of(be), (int)kind, cuda_f32(out),
                                                     cuda_f32(inp), n));
}

void cuda_activation_backward(rc_backend *be, rc_activation kind, rc_view dinp, rc_view dout,
                              rc_view inp, size_t n) {
    static const char op[] = "activation_backward";
    if (!ready(be) || !activation_kind_ok(be, op, kind) || n == 0) return;
    if (!cuda_view_fits(be, op, "dinp", dinp, n) || !cuda_view_fits(be, op, "dout", dout, n) ||
        !cuda_view_fits(be, op, "inp", inp, n))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_activation_backward(stream_of(be), (int)kind, cuda_f32(dinp),
                                                      cuda_f32(dout), cuda_f32(inp), n));
}

/* out = act(gate) * up; out may alias up */
void cuda_gated_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view gate,
                        rc_view up, size_t n) {
    static const char op[] = "gated_forward";
    if (!ready(be) || !activation_kind_ok(be, op, kind) || n == 0) return;
    if (!cuda_view_fits(be, op, "out", out, n) || !cuda_view_fits(be, op, "gate", gate, n) ||
        !cuda_view_fits(be, op, "up", up, n))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_gated_forward(stream_of(be), (int)kind, cuda_f32(out),
                                                cuda_f32(gate), cuda_f32(up), n));
}

void cuda_gated_backward(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                         rc_view dout, rc_view gate, rc_view up, size_t n) {
    static const char op[] = "gated_backward";
    if (!ready(be) || !activation_kind_ok(be, op, kind) || n == 0) return;
    if (!cuda_view_fits(be, op, "dgate", dgate, n) || !cuda_view_fits(be, op, "dup", dup, n) ||
        !cuda_view_fits(be, op, "dout", dout, n) || !cuda_view_fits(be, op, "gate", gate, n) ||
        !cuda_view_fits(be, op, "up", up, n))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_gated_backward(stream_of(be), (int)kind, cuda_f32(dgate),
                                                 cuda_f32(dup), cuda_f32(dout), cuda_f32(gate),
                                                 cuda_f32(up), n));
}

void cuda_add(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n) {
    static const char op[] = "add";
    if (!ready(be) || n == 0) return;
    if (!cuda_view_fits(be, op, "out", out, n) || !cuda_view_fits(be, op, "a", a, n) ||
        !cuda_view_fits(be, op, "b", b, n))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_add(stream_of(be), cuda_f32(out), cuda_f32(a), cuda_f32(b), n));
}

void cuda_axpy(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n) {
    static const char op[] = "axpy";
    if (!ready(be) || n == 0) return;
    if (!cuda_view_fits(be, op, "y", y, n) || !cuda_view_fits(be, op, "x", x, n)) return;
    cuda_after_launch(be, op, cuda_launch_axpy(stream_of(be), cuda_f32(y), alpha, cuda_f32(x), n));
}

void cuda_scale(rc_backend *be, rc_view x, float alpha, size_t n) {
    static const char op[] = "scale";
    if (!ready(be) || n == 0 || !cuda_view_fits(be, op, "x", x, n)) return;
    cuda_after_launch(be, op, cuda_launch_scale(stream_of(be), cuda_f32(x), alpha, n));
}

/* Queries are the last Tq of Tk positions (see backend.h). */
static int queries_ok(rc_backend *be, const char *op, int B, int H, int Tq, int Tk) {
    if (!cuda_sizes_ok(be, op, B, H, Tq)) return 0;
    if (Tq <= Tk) return 1;
    cuda_record_error(be, RC_ERR_INVALID_ARG, "%s: %d queries over %d keys", op, Tq, Tk);
    return 0;
}

void cuda_attention_softmax_forward(rc_backend *be, rc_view probs, rc_view scores,
                                    rc_view key_mask, int B, int H, int Tq, int Tk) {
    static const char op[] = "attention_softmax_forward";
    if (!ready(be) || !queries_ok(be, op, B, H, Tq, Tk) || B == 0 || H == 0 || Tq == 0) return;
    const size_t n = (size_t)B * (size_t)H * (size_t)Tq * (size_t)Tk;
    if (!cuda_view_fits(be, op, "probs", probs, n) || !cuda_view_fits(be, op, "scores", scores, n) ||
        (key_mask.buf && !cuda_view_fits(be, op, "key_mask", key_mask, area(B, Tk))))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_attention_softmax_forward(stream_of(be), cuda_f32(probs),
                                                            cuda_f32(scores), cuda_i32(key_mask),
                                                            B, H, Tq, Tk));
}

void cuda_attention_softmax_backward(rc_backend *be, rc_view dscores, rc_view dprobs,
                                     rc_view probs, int B, int H, int Tq, int Tk) {
    static const char op[] = "attention_softmax_backward";
    if (!ready(be) || !queries_ok(be, op, B, H, Tq, Tk) || B == 0 || H == 0 || Tq == 0) return;
    const size_t n = (size_t)B * (size_t)H * (size_t)Tq * (size_t)Tk;
    if (!cuda_view_fits(be, op, "dscores", dscores, n) ||
        !cuda_view_fits(be, op, "dprobs", dprobs, n) || !cuda_view_fits(be, op, "probs", probs, n))
        return;
    cuda_after_launch(be, op,
                      cuda_launch_attention_softmax_backward(stream_of(be), cuda_f32(dscores),
                                                             cuda_f32(dprobs), cuda_f32(probs), B,
                                                             H, Tq, Tk));
}

double cuda_sum_squares(rc_backend *be, rc_view x, size_t n) {
    static const char op[] = "sum_squares";
    if (!ready(be)) return NAN;
    if (n == 0) return 0.0;
    if (!cuda_view_fits(be, op, "x", x, n)) return NAN;
    cuda_state *st = cuda_state_of(be);
    cuda_after_launch(be, op, cuda_launch_sum_squares(st->stream, cuda_f32(x), n, st->reduce));
    if (!ready(be)) return NAN;
    double result = NAN;
    cudaError_t e = cudaMemcpyAsync(&result, st->reduce + CUDA_REDUCE_BLOCKS, sizeof result,
                                    cudaMemcpyDeviceToHost, st->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_record_error(be, RC_ERR_BACKEND,
                          "%s: %s (an op queued since the last sync may have caused it; last: %s)",
                          op, cudaGetErrorString(e), st->last_op ? st->last_op : "none");
        return NAN;
    }
    return result;
}

void cuda_adamw(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m,
                rc_view v, size_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, double bias_correction1, double bias_correction2) {
    static const char op[] = "adamw";
    if (!ready(be) || n == 0) return;
    if (!cuda_view_fits(be, op, "param", param, n) || !cuda_view_fits(be, op, "grad", grad, n) ||
        !cuda_view_fits(be, op, "m", m, n) || !cuda_view_fits(be, op, "v", v, n))
        return;
    if (!(bias_correction1 > 0.0f) || !(bias_correction2 > 0.0f)) {
        cuda_record_error(be, RC_ERR_INVALID_ARG,
                          "adamw: bias corrections must be positive (got %g, %g; was the step "
                          "counted?)",
                          (double)bias_correction1, (double)bias_correction2);
        return;
    }
    cuda_after_launch(be, op,
                      cuda_launch_adamw(stream_of(be), cuda_f32(param), cuda_f32(grad),
                                        grad_scale, cuda_f32(m), cuda_f32(v), n, lr, beta1,
                                        beta2, eps, weight_decay, bias_correction1,
                                        bias_correction2));
}
