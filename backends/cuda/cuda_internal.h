/* Private to the CUDA backend: the buffer and state layout, the sticky error
 * slot, and the kernel launchers that the .cu files export to the C side.
 *
 * The C files (cuda_backend.c, cuda_gemm.c, cuda_ops.c) check views and
 * sizes, then call a launcher; each launcher queues its kernels on the given
 * stream and returns cudaGetLastError() so the caller can name the op that
 * failed. Launchers never synchronise (sum_squares' host copy is done by the
 * C side). */
#ifndef REWARDC_CUDA_INTERNAL_H
#define REWARDC_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One cudaMalloc per buffer; elements are 4 bytes (float32 or int32). */
struct rc_buffer {
    float *data; /* device pointer */
    size_t n_elements;
};

/* Codes a kernel writes into the device flag when it meets an index outside
 * its table (ids and positions come from user data, so this must not corrupt
 * memory). Only
 * the first one is kept; sync() and download() turn it into an error. */
enum {
    CUDA_FLAG_NONE = 0,
    CUDA_FLAG_EMBEDDING_FORWARD = 1,
    CUDA_FLAG_EMBEDDING_BACKWARD = 2,
    CUDA_FLAG_GATHER_ROWS = 3,
    CUDA_FLAG_SCATTER_ROWS_ADD = 4,
    CUDA_FLAG_ROPE = 5 /* a position outside the cos/sin tables */
};

/* sum_squares reduces in two fixed-shape passes: at most this many blocks
 * write one double each, then one block sums them in a fixed order. */
enum { CUDA_REDUCE_BLOCKS = 1024, CUDA_REDUCE_THREADS = 256 };

/* Column sums (bias and LayerNorm parameter gradients) split the N rows into
 * chunks; each chunk writes partial sums that a second kernel adds in chunk
 * order. The split depends only on N, so results are bitwise reproducible. */
enum { CUDA_COLSUM_MIN_ROWS_PER_CHUNK = 64, CUDA_COLSUM_MAX_CHUNKS = 128 };
static inline int cuda_colsum_chunks(int N) {
    int chunks = (N + CUDA_COLSUM_MIN_ROWS_PER_CHUNK - 1) / CUDA_COLSUM_MIN_ROWS_PER_CHUNK;
    if (chunks > CUDA_COLSUM_MAX_CHUNKS) chunks = CUDA_COLSUM_MAX_CHUNKS;
    return chunks < 1 ? 1 : chunks;
}

typedef struct {
    int device;
    cudaStream_t stream;
    void *blas;            /* cublasHandle_t, kept opaque so .cu files need no cuBLAS */
    int *flag;             /* device int[4]: first CUDA_FLAG_* (0 = none), position, id, rows */
    double *reduce;        /* device: CUDA_REDUCE_BLOCKS partials + 1 result */
    void *scratch;         /* device: column-sum partials, grown on demand */
    size_t scratch_bytes;
    rc_status pending;     /* first recorded failure, RC_OK if none */
    char message[768];
    const char *last_op;   /* the most recently queued op, named in async errors */
    int sync_each;         /* REWARDC_CUDA_SYNC=1: synchronise after every op */
} cuda_state;

static inline cuda_state *cuda_state_of(rc_backend *be) { return (cuda_state *)be->ctx; }

/* ---- error state (cuda_backend.c) ---- */
void cuda_record_error(rc_backend *be, rc_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* After queuing `op`: records a launch error, and in REWARDC_CUDA_SYNC mode
 * waits and records an execution error, both naming `op`. */
void cuda_after_launch(rc_backend *be, const char *op, cudaError_t launch_status);
/* Returns 1 when `v` holds `extent` elements from its offset; otherwise
 * records an error naming op/arg and returns 0. A zero extent always fits. */
int cuda_view_fits(rc_backend *be, const char *op, const char *arg, rc_view v, size_t extent);
/* Returns 1 when no size is negative; otherwise records an error. */
int cuda_sizes_ok(rc_backend *be, const char *op, long long a, long long b, long long c);
/* Device scratch of at least `bytes`, or NULL (error recorded). */
void *cuda_scratch(rc_backend *be, size_t bytes, const char *op);
/* Rows of width C that fit in the buffer behind `v` from its offset. */
static inline long long cuda_rows_in(rc_view v, int C) {
    if (!v.buf || C <= 0 || v.offset > v.buf->n_elements) return 0;
    return (long long)((v.buf->n_elements - v.offset) / (size_t)C);
}
static inline float *cuda_f32(rc_view v) { return v.buf ? v.buf->data + v.offset : NULL; }
static inline int32_t *cuda_i32(rc_view v) {
    return v.buf ? (int32_t *)(void *)(v.buf->data + v.offset) : NULL;
}

/* ---- ops put into the table ---- */
void cuda_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
               rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc);
void cuda_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                       float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                       size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                       int batch);
void cuda_fill(rc_backend *be, rc_view x, float value, size_t n);
void cuda_bias_forward(rc_backend *be, rc_view out, rc_view bias, int N, int C);
void cuda_bias_backward(rc_backend *be, rc_view dbias, rc_view dout, int N, int C);
void cuda_embedding_forward(rc_backend *be, rc_view out, rc_view ids, rc_view table, int N,
                            int C, int accumulate);
void cuda_embedding_backward(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids, int N,
                             int C);
void cuda_gather_rows(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows,
                      int C);
void cuda_scatter_rows_add(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows,
                           int n_rows, int C);
void cuda_layernorm_forward(rc_backend *be, rc_view out, rc_view mean, rc_view rstd,
                            rc_view inp, rc_view weight, rc_view bias, int N, int C, float eps);
void cuda_layernorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                             rc_view dout, rc_view inp, rc_view weight, rc_view mean,
                             rc_view rstd, int N, int C);
void cuda_rmsnorm_forward(rc_backend *be, rc_view out, rc_view rstd, rc_view inp,
                          rc_view weight, int N, int C, float eps);
void cuda_rmsnorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                           rc_view inp, rc_view weight, rc_view rstd, int N, int C);
void cuda_rope(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
               rc_view sin_table, int N, int H, int D, int inverse);
void cuda_gated_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view gate,
                        rc_view up, size_t n);
void cuda_gated_backward(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                         rc_view dout, rc_view gate, rc_view up, size_t n);
void cuda_activation_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                             size_t n);
void cuda_activation_backward(rc_backend *be, rc_activation kind, rc_view dinp, rc_view dout,
                              rc_view inp, size_t n);
void cuda_add(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n);
void cuda_axpy(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n);
void cuda_scale(rc_backend *be, rc_view x, float alpha, size_t n);
void cuda_attention_softmax_forward(rc_backend *be, rc_view probs, rc_view scores,
                                    rc_view key_mask, int B, int H, int Tq, int Tk);
void cuda_attention_softmax_backward(rc_backend *be, rc_view dscores, rc_view dprobs,
                                     rc_view probs, int B, int H, int Tq, int Tk);
double cuda_sum_squares(rc_backend *be, rc_view x, size_t n);
void cuda_adamw(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m,
                rc_view v, size_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, double bias_correction1, double bias_correction2);

/* ---- kernel launchers (.cu files); sizes are already checked > 0 ---- */
/* kernels_elementwise.cu */
cudaError_t cuda_launch_fill(cudaStream_t s, float *x, float value, size_t n);
cudaError_t cuda_launch_scale_matrix(cudaStream_t s, float *c, int rows, int cols, int ld,
                                     float beta);
cudaError_t cuda_launch_bias_forward(cudaStream_t s, float *out, const float *bias, int N,
                                     int C);
cudaError_t cuda_launch_activation_forward(cudaStream_t s, int kind, float *out,
                                           const float *inp, size_t n);
cudaError_t cuda_launch_activation_backward(cudaStream_t s, int kind, float *dinp,
                                            const float *dout, const float *inp, size_t n);
/* out = act(gate) * up ; dgate += act'(gate) * up * dout, dup += act(gate) * dout */
cudaError_t cuda_launch_gated_forward(cudaStream_t s, int kind, float *out, const float *gate,
                                      const float *up, size_t n);
cudaError_t cuda_launch_gated_backward(cudaStream_t s, int kind, float *dgate, float *dup,
                                       const float *dout, const float *gate, const float *up,
                                       size_t n);
cudaError_t cuda_launch_add(cudaStream_t s, float *out, const float *a, const float *b,
                            size_t n);
cudaError_t cuda_launch_axpy(cudaStream_t s, float *y, float alpha, const float *x, size_t n);
cudaError_t cuda_launch_scale(cudaStream_t s, float *x, float alpha, size_t n);
cudaError_t cuda_launch_adamw(cudaStream_t s, float *param, const float *grad,
                              float grad_scale, float *m, float *v, size_t n, double lr,
                              double beta1, double beta2, double eps, double weight_decay,
                              double bias_correction1, double bias_correction2);
/* 0 when kernels in this build can run on the current device. */
cudaError_t cuda_probe_kernels(void);

/* kernels_rows.cu: out[n,:] (+)= table[ids[n],:]; ids outside [0, table_rows)
 * leave the row untouched and raise `flag_code`. */
cudaError_t cuda_launch_gather(cudaStream_t s, float *out, const int32_t *ids,
                               const float *table, long long table_rows, int N, int C,
                               int accumulate, int *flag, int flag_code);
/* table[ids[n],:] += src[n,:] for every n, deterministically (see the file). */
cudaError_t cuda_launch_scatter_add(cudaStream_t s, float *table, const float *src,
                                    const int32_t *ids, long long table_rows, int N, int C,
                                    int *flag, int flag_code);

/* kernels_layernorm.cu; mean/rstd/weight/bias/dinp/dweight/dbias may be NULL
 * where backend.h allows them to be absent. partials holds
 * 2 * cuda_colsum_chunks(N) * C floats. */
cudaError_t cuda_launch_layernorm_forward(cudaStream_t s, float *out, float *mean, float *rstd,
                                          const float *inp, const float *weight,
                                          const float *bias, int N, int C, float eps);
cudaError_t cuda_launch_layernorm_backward(cudaStream_t s, float *dinp, float *dweight,
                                           float *dbias, const float *dout, const float *inp,
                                           const float *weight, const float *mean,
                                           const float *rstd, int N, int C, float *partials);

/* kernels_rmsnorm.cu; rstd (forward), weight, dinp and dweight may be NULL.
 * partials holds 2 * cuda_colsum_chunks(N) * C floats. */
cudaError_t cuda_launch_rmsnorm_forward(cudaStream_t s, float *out, float *rstd,
                                        const float *inp, const float *weight, int N, int C,
                                        float eps);
cudaError_t cuda_launch_rmsnorm_backward(cudaStream_t s, float *dinp, float *dweight,
                                         const float *dout, const float *inp,
                                         const float *weight, const float *rstd, int N, int C,
                                         float *partials);

/* kernels_rope.cu: rotates x [N, H*D] (row stride ld) in place; a position
 * outside [0, table_rows) leaves its row untouched and raises `flag_code`. */
cudaError_t cuda_launch_rope(cudaStream_t s, float *x, int ld, const int32_t *positions,
                             const float *cos_table, const float *sin_table,
                             long long table_rows, int N, int H, int D, int inverse, int *flag,
                             int flag_code);

/* kernels_reduce.cu; partials holds 2 * cuda_colsum_chunks(N) * C floats. */
cudaError_t cuda_launch_bias_backward(cudaStream_t s, float *dbias, const float *dout, int N,
                                      int C, float *partials);
/* Writes sum(x^2) as a double to reduce[CUDA_REDUCE_BLOCKS]. */
cudaError_t cuda_launch_sum_squares(cudaStream_t s, const float *x, size_t n, double *reduce);

/* kernels_softmax.cu; key_mask may be NULL (causal mask only). */
cudaError_t cuda_launch_attention_softmax_forward(cudaStream_t s, float *probs,
                                                  const float *scores,
                                                  const int32_t *key_mask, int B, int H,
                                                  int Tq, int Tk);
cudaError_t cuda_launch_attention_softmax_backward(cudaStream_t s, float *dscores,
                                                   const float *dprobs, const float *probs,
                                                   int B, int H, int Tq, int Tk);

#ifdef __cplusplus
}
#endif
#endif
