/* Private to the CPU backend: the buffer layout, view accessors, the sticky
 * error slot that ops report into, OpenMP helper macros, and the op
 * functions that cpu_backend.c puts into the table. */
#ifndef REWARDC_CPU_INTERNAL_H
#define REWARDC_CPU_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* One 64-byte-aligned host allocation per buffer. Elements are 4 bytes:
 * float32, or int32 for ids, masks and row indices. */
struct rc_buffer {
    float *data;
    size_t n_elements;
};

/* Ops return nothing (the table is shared with asynchronous device
 * backends), so a misuse they detect -- a view running past its buffer, a
 * negative size, an id outside its table -- is remembered here and returned
 * by the next sync() or download(). Only the first failure is kept: later
 * ones are usually its consequences. */
typedef struct {
    rc_status pending;
    char message[512];
    /* Working memory of ops that need more than a stack's worth (the fused
     * attention: a slice per thread), grown on first use and kept, so a
     * training step allocates nothing after its first. */
    float *scratch;
    size_t scratch_floats;
} cpu_state;

void cpu_record_error(rc_backend *be, rc_status code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Returns 1 when `v` can hold `extent` elements from its offset; otherwise
 * records an error naming `op` and `arg` and returns 0. A zero extent is
 * always fine (nothing is touched), even for an absent view. */
int cpu_view_fits(rc_backend *be, const char *op, const char *arg, rc_view v, size_t extent);

/* At least n floats of the backend's scratch (valid until the next call),
 * or NULL with an error recorded for `op`. */
float *cpu_scratch(rc_backend *be, const char *op, size_t n);
/* cpu_gemm_packed.c: C = alpha op(A) op(B) + beta C on `threads` threads
 * (1 inside a parallel region), with `scratch` of
 * cpu_packed_gemm_scratch_floats(N, K, threads) floats. */
size_t cpu_packed_gemm_scratch_floats(int N, int K, int threads);
void cpu_packed_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     float *scratch, int threads);
/* The same product when causality makes part of it zero or unwanted, so that
 * the kernel skips that part, tile by tile. For row i of C and offset d:
 *   CPU_BAND_C_LOWER  only C[i, j] for j <= i + d is wanted (the rest of C
 *                     may or may not be written);
 *   CPU_BAND_A_LOWER  op(A)[i, k] is zero for k > i + d;
 *   CPU_BAND_A_UPPER  op(A)[i, k] is zero for k < i + d.
 * The zeros of op(A) must be stored as exact zeros: a tile that straddles the
 * band still sums them in (times op(B), which must be finite). K >= 1 (the
 * callers treat K == 0 as C = beta C). */
typedef enum { CPU_BAND_NONE, CPU_BAND_C_LOWER, CPU_BAND_A_LOWER, CPU_BAND_A_UPPER } cpu_band_kind;
typedef struct {
    cpu_band_kind kind;
    int offset;
} cpu_band;
void cpu_packed_gemm_banded(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C,
                            int ldc, cpu_band band, float *scratch, int threads);
/* Returns 1 when every size is >= 0; otherwise records an error naming `op`. */
int cpu_sizes_ok(rc_backend *be, const char *op, int a, int b, int c);
/* Attention queries are the last Tq of Tk positions: 0 <= Tq <= Tk. */
int cpu_queries_ok(rc_backend *be, const char *op, int Tq, int Tk);

static inline float *cpu_f32(rc_view v) { return v.buf->data + v.offset; }
static inline int32_t *cpu_i32(rc_view v) { return (int32_t *)(void *)(v.buf->data + v.offset); }
/* Absent optional views (LayerNorm without affine) read as NULL. */
static inline float *cpu_f32_or_null(rc_view v) { return v.buf ? cpu_f32(v) : NULL; }

/* OpenMP: loops below this much work run on one thread, since waking the
 * team costs more than it saves. Without OpenMP the threading pragmas vanish
 * (and do not trigger -Wunknown-pragmas); the simd ones stay where the
 * compiler takes -fopenmp-simd (RC_OPENMP_SIMD), which needs no runtime. */
enum { CPU_PARALLEL_MIN_WORK = 16384 };
/* cpu_attention_fused.c takes heads of every width (register tiles up to 16
 * wide, banded products beyond): it never materialises the T x T scores of a
 * whole head, and it measured faster than the composed way at every width and
 * model tried (docs/performance.md). */
enum { CPU_FUSED_ATTENTION_MAX_HEAD_DIM = INT_MAX };
#define CPU_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) || defined(RC_OPENMP_SIMD)
/* Vectorise a unit-stride loop whose iterations are independent (each lane
 * keeps its own sequential sum, so results do not change). */
#define CPU_SIMD CPU_PRAGMA(omp simd)
/* Vectorise a loop with clauses, e.g. CPU_SIMD_WITH(reduction(+ : sum)): each
 * lane sums its share, then the lanes are added (an order fixed by the build). */
#define CPU_SIMD_WITH(clauses) CPU_PRAGMA(omp simd clauses)
/* CPU_SIMD_WITH for clauses with a float max reduction: GCC vectorises it;
 * clang cannot without -ffinite-math-only and warns (an error under
 * -Werror), so there the loop stays scalar. */
#if defined(__clang__)
#define CPU_SIMD_WITH_FLOAT_MAX(clauses)
#else
#define CPU_SIMD_WITH_FLOAT_MAX(clauses) CPU_SIMD_WITH(clauses)
#endif
#else
#define CPU_SIMD
#define CPU_SIMD_WITH(clauses)
#define CPU_SIMD_WITH_FLOAT_MAX(clauses)
#endif
#ifdef _OPENMP
#include <omp.h>
static inline int cpu_thread_count(void) { return omp_get_max_threads(); }
static inline int cpu_thread_index(void) { return omp_get_thread_num(); }
#define CPU_PARALLEL_FOR_IF(work) \
    CPU_PRAGMA(omp parallel for schedule(static) if ((work) >= CPU_PARALLEL_MIN_WORK))
/* The same for an element-wise loop, also vectorised: each element gets the
 * same float operations as in scalar code, so results do not change. (GCC's
 * -O2 does not vectorise these loops by itself.) */
#define CPU_PARALLEL_FOR_SIMD_IF(work) \
    CPU_PRAGMA(omp parallel for simd schedule(static) if ((work) >= CPU_PARALLEL_MIN_WORK))
#else
static inline int cpu_thread_count(void) { return 1; }
static inline int cpu_thread_index(void) { return 0; }
#define CPU_PARALLEL_FOR_IF(work)
#define CPU_PARALLEL_FOR_SIMD_IF(work) CPU_SIMD
#endif

/* e^x for x <= 0 (a score minus its row's maximum), in float operations that
 * vectorise, where glibc's expf is a call per element: x = n ln2 + r with
 * |r| <= ln2/2 (ln2 split in two, Cody and Waite, so r is nearly exact), e^r
 * by Cephes' expf polynomial (relative error about 1e-7), and 2^n written
 * into the exponent bits. Below ln(FLT_MIN) the result is 0 (float's
 * subnormals are lost, under 1.2e-38 each); NaN stays NaN. */
static inline float exp_nonpositive(float x) {
    const float lowest = -87.33654f; /* ln(FLT_MIN) */
    const float at_least_lowest = x > lowest ? x : lowest; /* NaN too: keeps the cast defined */
    const float xc = at_least_lowest < 0.0f ? at_least_lowest : 0.0f;
    const float round_shift = 12582912.0f;                   /* 1.5 * 2^23: adding it rounds */
    const float n = (xc * 1.44269504f + round_shift) - round_shift;
    const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e_r = p * r * r + r + 1.0f;
    union { int32_t bits; float value; } two_n = {.bits = ((int32_t)n + 127) << 23};
    const float y = e_r * two_n.value;
    const float out_of_range = x < lowest ? 0.0f : x; /* NaN stays NaN */
    return x >= lowest ? y : out_of_range;
}

/* ---- ops (semantics in backends/backend.h) ---- */
void cpu_fill(rc_backend *be, rc_view x, float value, size_t n);

void cpu_gemm(rc_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
              rc_view A, int lda, rc_view B, int ldb, float beta, rc_view C, int ldc);
void cpu_gemm_batched(rc_backend *be, int trans_a, int trans_b, int M, int N, int K,
                      float alpha, rc_view A, int lda, size_t stride_a, rc_view B, int ldb,
                      size_t stride_b, float beta, rc_view C, int ldc, size_t stride_c,
                      int batch);

void cpu_bias_forward(rc_backend *be, rc_view out, rc_view bias, int N, int C);
void cpu_bias_backward(rc_backend *be, rc_view dbias, rc_view dout, int N, int C);

void cpu_embedding_forward(rc_backend *be, rc_view out, rc_view ids, rc_view table, int N,
                           int C, int accumulate);
void cpu_embedding_backward(rc_backend *be, rc_view dtable, rc_view dout, rc_view ids, int N,
                            int C);
void cpu_gather_rows(rc_backend *be, rc_view out, rc_view inp, rc_view rows, int n_rows, int C);
void cpu_scatter_rows_add(rc_backend *be, rc_view dinp, rc_view dout, rc_view rows, int n_rows,
                          int C);

void cpu_layernorm_forward(rc_backend *be, rc_view out, rc_view mean, rc_view rstd, rc_view inp,
                           rc_view weight, rc_view bias, int N, int C, float eps);
void cpu_layernorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dbias,
                            rc_view dout, rc_view inp, rc_view weight, rc_view mean,
                            rc_view rstd, int N, int C);

void cpu_rmsnorm_forward(rc_backend *be, rc_view out, rc_view rstd, rc_view inp, rc_view weight,
                         int N, int C, float eps);
void cpu_rmsnorm_backward(rc_backend *be, rc_view dinp, rc_view dweight, rc_view dout,
                          rc_view inp, rc_view weight, rc_view rstd, int N, int C);
void cpu_rope(rc_backend *be, rc_view x, int ld, rc_view positions, rc_view cos_table,
              rc_view sin_table, int N, int H, int D, int inverse);

void cpu_gated_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view gate, rc_view up,
                       size_t n);
void cpu_gated_backward(rc_backend *be, rc_activation kind, rc_view dgate, rc_view dup,
                        rc_view dout, rc_view gate, rc_view up, size_t n);
void cpu_activation_forward(rc_backend *be, rc_activation kind, rc_view out, rc_view inp,
                            size_t n);
void cpu_activation_backward(rc_backend *be, rc_activation kind, rc_view dinp, rc_view dout,
                             rc_view inp, size_t n);
void cpu_add(rc_backend *be, rc_view out, rc_view a, rc_view b, size_t n);
void cpu_axpy(rc_backend *be, rc_view y, float alpha, rc_view x, size_t n);
void cpu_scale(rc_backend *be, rc_view x, float alpha, size_t n);

void cpu_attention_softmax_forward(rc_backend *be, rc_view probs, rc_view scores,
                                   rc_view key_mask, int B, int H, int Tq, int Tk);
void cpu_attention_softmax_backward(rc_backend *be, rc_view dscores, rc_view dprobs,
                                    rc_view probs, int B, int H, int Tq, int Tk);

void cpu_attention_forward(rc_backend *be, rc_view out, rc_view stats, rc_view q, rc_view k,
                           rc_view v, rc_view key_mask, int B, int T, int H, int Hkv, int D,
                           float scale);
void cpu_attention_backward(rc_backend *be, rc_view dq, rc_view dk, rc_view dv, rc_view dout,
                            rc_view out, rc_view stats, rc_view q, rc_view k, rc_view v,
                            rc_view key_mask, int B, int T, int H, int Hkv, int D,
                            float scale);
double cpu_sum_squares(rc_backend *be, rc_view x, size_t n);
void cpu_adamw(rc_backend *be, rc_view param, rc_view grad, float grad_scale, rc_view m, rc_view v,
               size_t n, double lr, double beta1, double beta2, double eps, double weight_decay,
               double bias_correction1, double bias_correction2);

#endif
