/* The backend op table: the only interface model code uses to compute.
 *
 * A backend owns its memory. Model code sees a buffer only as an opaque
 * rc_buffer handle plus an element offset (rc_view); every element is 4 bytes
 * (float32, or int32 for token ids, masks and row indices). The CPU backend is
 * the reference; device backends implement the same table and are checked op
 * by op against it (tests/test_backend_ops.c).
 *
 * Conventions (after llm.c):
 *  - Row-major everywhere. A Linear layer's weight is [out_features, in_features]
 *    as in Hugging Face, so y = x W^T is gemm(trans_b=1).
 *  - Backward ops ACCUMULATE into gradients (+=). Gradients are zeroed once per
 *    backward pass with fill() (fill_zero_sparse for embedding tables).
 *  - Ops are queued and may run asynchronously; they return nothing. A device
 *    failure is remembered by the backend and reported by sync() or download().
 *  - Shapes are ints; a wrong shape is a programming error, not user input.
 */
#ifndef REWARDC_BACKEND_H
#define REWARDC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_buffer rc_buffer; /* defined by each backend */

typedef struct {
    rc_buffer *buf; /* NULL means "absent" (e.g. a LayerNorm without affine) */
    size_t offset;  /* in 4-byte elements */
} rc_view;

static inline rc_view rc_view_at(rc_view v, size_t offset) {
    rc_view r = {v.buf, v.offset + offset};
    return r;
}
static inline int rc_view_present(rc_view v) { return v.buf != NULL; }

/* RELU: max(x, 0); GELU: the erf form; GELU_TANH: gelu_new / gelu_pytorch_tanh;
 * SILU: x * sigmoid(x) (Llama's "silu", torch.nn.functional.silu). */
typedef enum { RC_ACT_RELU = 0, RC_ACT_GELU, RC_ACT_GELU_TANH, RC_ACT_SILU } rc_activation;

/* The attention visibility rule of attention_softmax_forward (below), for C
 * code on the host: may the query at position i see key j of this mask row?
 * Causality aside, that is whether the key lies on the query's branch (mask
 * values key and query). */
static inline int rc_key_on_branch(int32_t key, int32_t query) {
    /* & and | rather than && and ||: no branches, so loops over keys vectorise */
    return (key != 0) & ((key == 1) | (key == query));
}
static inline int rc_key_visible(const int32_t *key_mask_row, int i, int j) {
    return j <= i && rc_key_on_branch(key_mask_row[j], key_mask_row[i]);
}

typedef struct rc_backend rc_backend;

struct rc_backend {
    const char *name;   /* "cpu", "opencl", "cuda" */
    char device[256];   /* human-readable device description */
    void *ctx;          /* backend-private state */

    /* ---- memory ---- */
    rc_status (*alloc)(rc_backend *be, size_t n_elements, rc_buffer **out);
    void (*free)(rc_backend *be, rc_buffer *buf);
    rc_status (*upload)(rc_backend *be, rc_view dst, const void *src, size_t n_elements);
    rc_status (*download)(rc_backend *be, void *dst, rc_view src, size_t n_elements);
    void (*fill)(rc_backend *be, rc_view x, float value, size_t n);
    /* fill(x, 0, n) for a tensor that is then written sparsely (an embedding
     * table's gradient: rows of the batch's tokens only). The backend may
     * release the memory until it is written again; the CPU backend does, page
     * by page on Linux, so untouched rows occupy no memory. */
    void (*fill_zero_sparse)(rc_backend *be, rc_view x, size_t n);
    rc_status (*sync)(rc_backend *be); /* waits for queued work, returns any device error */
    void (*destroy)(rc_backend *be);

    /* ---- matrix products (row-major, BLAS semantics) ----
     * C[M,N] = alpha * op(A) op(B) + beta * C, op(A) is [M,K], op(B) is [K,N];
     * lda/ldb/ldc are row strides of the matrices as stored. */
    void (*gemm)(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                 float alpha, rc_view A, int lda, rc_view B, int ldb,
                 float beta, rc_view C, int ldc);
    /* The same for `batch` independent products; matrix i starts at
     * A + i*stride_a, B + i*stride_b, C + i*stride_c (elements). */
    void (*gemm_batched)(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                         float alpha, rc_view A, int lda, size_t stride_a,
                         rc_view B, int ldb, size_t stride_b,
                         float beta, rc_view C, int ldc, size_t stride_c, int batch);

    /* out[n,c] += bias[c] */
    void (*bias_forward)(rc_backend *be, rc_view out, rc_view bias, int N, int C);
    /* dbias[c] += sum_n dout[n,c] */
    void (*bias_backward)(rc_backend *be, rc_view dbias, rc_view dout, int N, int C);

    /* ---- embeddings and row gathers (ids are int32) ----
     * out[n,:] = table[ids[n],:]  (accumulate != 0: out[n,:] += table[ids[n],:]) */
    void (*embedding_forward)(rc_backend *be, rc_view out, rc_view ids, rc_view table,
                              int N, int C, int accumulate);
    /* dtable[ids[n],:] += dout[n,:]  (rows may repeat) */
    void (*embedding_backward)(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids,
                               int N, int C);

    /* ---- layer norm over the last dim; weight/bias may be absent ----
     * mean/rstd [N] are saved for backward. */
    void (*layernorm_forward)(rc_backend *be, rc_view out, rc_view mean, rc_view rstd,
                              rc_view inp, rc_view weight, rc_view bias, int N, int C,
                              float eps);
    void (*layernorm_backward)(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                               rc_view dout, rc_view inp, rc_view weight,
                               rc_view mean, rc_view rstd, int N, int C);

    /* ---- RMS norm over the last dim (Llama's LlamaRMSNorm), weight may be absent ----
     * out = (inp * rstd) * weight with rstd = 1 / sqrt(mean(inp^2) + eps), rstd [N]
     * saved for backward. Run with N = rows * heads and C = head_dim it is
     * Qwen3's per-head q/k norm. Optional on device backends (NULL: the model
     * reports that the backend cannot run the family). */
    void (*rmsnorm_forward)(rc_backend *be, rc_view out, rc_view rstd, rc_view inp,
                            rc_view weight, int N, int C, float eps);
    /* dinp += d/dinp, dweight += d/dweight (dweight may be absent) */
    void (*rmsnorm_backward)(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                             rc_view inp, rc_view weight, rc_view rstd, int N, int C);

    /* ---- rotary position embedding (rotate-half, as HF Llama), in place ----
     * x is [N, H * D] with row stride ld (elements; ld >= H * D); row n sits at
     * position positions[n] (int32, 0 <= p < n_positions of the tables).
     * cos_table and sin_table are [n_positions, D/2]; for head h and i < D/2,
     * with c = cos_table[p, i], s = sin_table[p, i]:
     *   (x[i], x[i + D/2]) <- (x[i] c - x[i + D/2] s, x[i + D/2] c + x[i] s)
     * inverse != 0 rotates by the opposite angle (s -> -s): the backward of
     * the forward rotation, applied to the gradient in place. D is even. */
    void (*rope)(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
                 rc_view sin_table, int N, int H, int D, int inverse);

    /* ---- gated MLP activation (SwiGLU / GeGLU): out = act(gate) * up ----
     * gate, up and out are n elements each (out may alias up). */
    void (*gated_forward)(rc_backend *be, rc_activation kind, rc_view out, rc_view gate,
                          rc_view up, size_t n);
    /* dgate += act'(gate) * up * dout ; dup += act(gate) * dout */
    void (*gated_backward)(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                           rc_view dout, rc_view gate, rc_view up, size_t n);

    /* ---- element-wise ---- */
    /* out = act(inp) (out may alias inp) */
    void (*activation_forward)(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                               size_t n);
    /* dinp += act'(inp) * dout */
    void (*activation_backward)(rc_backend *be, rc_activation kind, rc_view dinp,
                                rc_view dout, rc_view inp, size_t n);
    /* out = a + b (out may alias a or b) */
    void (*add)(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n);
    /* y += alpha * x */
    void (*axpy)(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n);
    /* x *= alpha */
    void (*scale)(rc_backend *be, rc_view x, float alpha, size_t n);

    /* ---- attention ----
     * scores/probs are [B, H, Tq, Tk]: Tq queries that are the last Tq of Tk
     * positions (Tq == Tk for a whole sequence; 1 for the one position a score
     * is read at), query i sitting at position Tk - Tq + i. The query at
     * position i may see key j iff j <= i, key_mask[b, j] != 0, and
     * key_mask[b, j] == 1 or key_mask[b, j] == key_mask[b, i] (key_mask is
     * int32 [B, Tk]). Plain 0/1 masks are HF's attention_mask; values >= 2 mark
     * branches of a packed pair (a shared prompt prefix marked 1, then each
     * response on its own value), so a response sees the prefix and itself but
     * not the other. Masked entries get probability 0; a row with no visible
     * key (a padding query under left padding) is all zeros. probs may alias
     * scores. */
    void (*attention_softmax_forward)(rc_backend *be, rc_view probs, rc_view scores,
                                      rc_view key_mask, int B, int H, int Tq, int Tk);
    /* dscores = probs * (dprobs - sum_j probs*dprobs): written, not accumulated
     * (scores are an intermediate, not a parameter); dscores may alias dprobs. */
    void (*attention_softmax_backward)(rc_backend *be, rc_view dscores, rc_view dprobs,
                                       rc_view probs, int B, int H, int Tq, int Tk);

    /* ---- fused attention (optional) ----
     * A backend may leave these NULL; the model then composes attention from
     * gemm_batched and the two softmax ops above, with the same result. For B
     * sequences of T positions, H query heads and Hkv key/value heads of
     * width D (H a multiple of Hkv; query head h reads key/value head
     * h / (H / Hkv), grouped-query attention, without copying K or V):
     * q, out, dq are [B, T, H*D] (head h in columns h*D .. h*D+D-1), k, v, dk,
     * dv are [B, T, Hkv*D], key_mask [B, T] with the visibility rule above
     * (Tq == Tk == T). Per sequence and query head
     *   out = softmax(scale * Q K^T, masked) V
     * without ever storing the T x T probabilities. stats [B, H, T, 2]
     * receives each query's largest visible score and the reciprocal of its
     * softmax sum (0 for a query that sees no key, whose output row is 0);
     * attention_backward recomputes the probabilities from them. */
    void (*attention_forward)(rc_backend *be, rc_view out, rc_view stats, rc_view q, rc_view k,
                              rc_view v, rc_view key_mask, int B, int T, int H, int Hkv, int D,
                              float scale);
    /* dq, dk, dv (written, not accumulated; dk and dv summed over the query
     * heads that share them) from dout, given out and stats as
     * attention_forward left them. */
    void (*attention_backward)(rc_backend *be, rc_view dq, rc_view dk, rc_view dv, rc_view dout,
                               rc_view out, rc_view stats, rc_view q, rc_view k, rc_view v,
                               rc_view key_mask, int B, int T, int H, int Hkv, int D,
                               float scale);
    /* Heads wider than this take the composed way (where the backend's
     * products beat its fused kernel); 0 with no fused ops. */
    int fused_attention_max_head_dim;

    /* ---- row selection for the score head ----
     * out[i,:] = inp[rows[i],:] ; dinp[rows[i],:] += dout[i,:] */
    void (*gather_rows)(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows,
                        int C);
    void (*scatter_rows_add)(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows,
                             int n_rows, int C);

    /* ---- optimizer ---- */
    /* Sum of squares of x[0..n), accumulated in double, returned to the host
     * (synchronises). Used for global-norm gradient clipping. */
    double (*sum_squares)(rc_backend *be, rc_view x, size_t n);
    /* torch.optim.AdamW for one tensor, step already counted, on the gradient
     * g = grad * grad_scale (clip_grad_norm_'s factor, 1 when not clipping:
     * fused here so clipping never rewrites the gradients):
     *   p -= lr * weight_decay * p
     *   m = beta1 m + (1-beta1) g ; v = beta2 v + (1-beta2) g^2
     *   p -= lr * (m / bias_correction1) / (sqrt(v / bias_correction2) + eps)
     * with bias_correction_k = 1 - beta_k^step, computed by the caller. The
     * scalars are doubles, as torch's Python scalars are: 1 - beta1, 1 - beta2,
     * 1 - lr * weight_decay and lr / bias_correction1 are formed in double and
     * rounded to float once (1 - beta2 from a float beta2 is 1.3e-5 off). */
    void (*adamw)(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m,
                  rc_view v, size_t n, double lr, double beta1, double beta2, double eps,
                  double weight_decay, double bias_correction1, double bias_correction2);
};

/* Constructors. Each returns RC_ERR_UNSUPPORTED when the backend was not
 * compiled in, and RC_ERR_BACKEND (with the reason) when no device is usable. */
rc_status rc_backend_cpu_create(rc_backend **out);
rc_status rc_backend_opencl_create(int device_index, rc_backend **out);
rc_status rc_backend_cuda_create(int device_index, rc_backend **out);

/* By name: "cpu", "opencl", "cuda". */
rc_status rc_backend_create(const char *name, int device_index, rc_backend **out);
void rc_backend_destroy(rc_backend *be);

#ifdef __cplusplus
}
#endif
#endif
