/* Fused causal attention for the CPU backend (semantics in backend.h):
 * softmax(scale Q K^T) V per (sequence, head), four queries at a time, so
 * the scores in hand are four rows of T floats instead of a T x T matrix.
 * For narrow heads this beats the composed way, whose products have K = D
 * (16 in the tiny preset): OpenBLAS zeroes and packs every [T, T] operand
 * there, and the backward had to recompute all of it.
 *
 * Grouped-query attention (Hkv < H key/value heads) reads each query head's
 * key/value head in place, through its own row stride (Hkv * D where q has
 * H * D). The forward runs a task per (sequence, query head). The backward
 * runs a task per (sequence, key/value head), which takes the query heads of
 * its group in turn and sums their dk and dv in its own scratch (or rows):
 * no two tasks write the same gradient, and the keys and values are
 * transposed once per group. With Hkv == H each group is one head and the
 * floats are those of plain multi-head attention.
 *
 * Per (sequence, head) task, in the thread's own scratch slice:
 *   forward   s_j = scale q_i.k_j for keys j <= i (keys transposed, so that
 *             consecutive j are one vector operation), masked numerators
 *             e_j = e^(s_j - max), out_i = (sum_j e_j v_j) / sum_j e_j
 *   backward  p_j = e_j / sum recomputed from the stats; dp_j = dout_i.v_j;
 *             ds_j = p_j (dp_j - dout_i.out_i)  (= p_j (dp_j - sum_k p_k dp_k));
 *             dq_i = scale sum_j ds_j k_j; dk_j += scale ds_j q_i; dv_j += p_j dout_i
 * Keys after the query are never touched.
 *
 * Heads wider than 16 (OPT-125m's 64) take the same steps a block of query
 * rows at a time through the packed kernel's banded products
 * (cpu_gemm_packed.c), which skip the tiles that causality makes zero: per
 * block of queries i0..i0+n-1 against keys 0..i0+n-1,
 *   forward   S = scale Q K^T, numerators in place, out = S V / sum
 *   backward  P from the stats and dP = dout V^T, ds as above, then
 *             dq = scale dS K, dk += scale dS^T Q, dv += P^T dout. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_vec8.h"

#ifdef _OPENMP
#define PARALLEL_IF(cond) CPU_PRAGMA(omp parallel if (cond))
#define FOR_EACH_TASK CPU_PRAGMA(omp for schedule(dynamic))
#else
#define PARALLEL_IF(cond)
#define FOR_EACH_TASK
#endif

/* Work goes in tiles of QUERY_BLOCK queries by KEY_BLOCK keys (or 16
 * columns of a head): each key or value loaded serves four queries, and the
 * tile's partial sums (4 x 2 vectors of 8) stay in registers. Transposed
 * keys and values are padded with zeros to a whole number of key blocks; a
 * block of queries is filled up with zero rows whose results are discarded.
 * Scores that a tile computes past a query's position are never read. */
enum { QUERY_BLOCK = 4, KEY_BLOCK = 16 };

/* The loops below take the head width D as a parameter; the tasks call them
 * with a literal D for common widths, so that, inlined, the loops over d
 * have a known length. */
#define INLINE static inline __attribute__((always_inline))

/* One (sequence, query head): the head's D columns at the start of each row
 * pointer; rows of q (and of out, dout, dq) are ldq floats apart, rows of k
 * (and v, dk, dv) ldkv apart, less under grouped-query attention. */
typedef struct {
    const float *q, *k, *v;
    const int32_t *mask; /* the sequence's key_mask row */
    int T, Tp;           /* Tp: T rounded up to KEY_BLOCK */
    int ldq, ldkv;
    int plain_until;     /* the first position whose mask is not 1 (or T) */
    float scale;
} head;

static int padded(int T) { return (T + KEY_BLOCK - 1) / KEY_BLOCK * KEY_BLOCK; }

/* xt[d * Tp + j] = x[j, d], zero for T <= j < Tp: a head's keys (or values)
 * with d along rows. */
INLINE void transpose_head(float *xt, const float *x, int T, int Tp, int D, int ld) {
    for (int j = 0; j < T; j++)
        for (int d = 0; d < D; d++) xt[(size_t)d * Tp + j] = x[(size_t)j * ld + d];
    for (int d = 0; d < D; d++)
        for (int j = T; j < Tp; j++) xt[(size_t)d * Tp + j] = 0.0f;
}

/* Rows i0 .. i0 + QUERY_BLOCK - 1 of x (ld apart), with `zeros` standing in
 * for rows at or past T. */
static void block_rows(const float **rows, const float *x, int i0, int T, int ld,
                       const float *zeros) {
    for (int r = 0; r < QUERY_BLOCK; r++)
        rows[r] = i0 + r < T ? x + (size_t)(i0 + r) * ld : zeros;
}

/* s[r * Tp + j] = scale * (a_r . x_j) for the block's queries r and keys
 * j = 0..last (on to the end of last's key block), from xt = transposed x.
 * Each sums over d in order. */
INLINE void dots(float *s, const float *const *a, const float *xt, int last, int Tp, int D,
                 float scale) {
    for (int j0 = 0; j0 <= last; j0 += KEY_BLOCK) {
        vec8 acc[QUERY_BLOCK][2] = {{{0}}};
        for (int d = 0; d < D; d++) {
            const vec8 lo = load8(xt + (size_t)d * Tp + j0);
            const vec8 hi = load8(xt + (size_t)d * Tp + j0 + LANES);
            for (int r = 0; r < QUERY_BLOCK; r++) {
                const vec8 ad = splat8(a[r][d]);
                acc[r][0] += ad * lo;
                acc[r][1] += ad * hi;
            }
        }
        for (int r = 0; r < QUERY_BLOCK; r++) {
            store8(s + (size_t)r * Tp + j0, acc[r][0] * scale);
            store8(s + (size_t)r * Tp + j0 + LANES, acc[r][1] * scale);
        }
    }
}

/* out_r[0..D) = sum_{j<=last} w[r * Tp + j] x_j for the block's queries r, x
 * rows ld apart; each sum in order of j. Columns go 16 at a time, then any
 * that remain one by one. */
INLINE void weighted_rows(float *const *out, const float *w, const float *x, int last, int Tp,
                          int D, int ld) {
    int d0 = 0;
    for (; d0 + 2 * LANES <= D; d0 += 2 * LANES) {
        vec8 acc[QUERY_BLOCK][2] = {{{0}}};
        for (int j = 0; j <= last; j++) {
            const vec8 lo = load8(x + (size_t)j * ld + d0);
            const vec8 hi = load8(x + (size_t)j * ld + d0 + LANES);
            for (int r = 0; r < QUERY_BLOCK; r++) {
                const vec8 wj = splat8(w[(size_t)r * Tp + j]);
                acc[r][0] += wj * lo;
                acc[r][1] += wj * hi;
            }
        }
        for (int r = 0; r < QUERY_BLOCK; r++) {
            store8(out[r] + d0, acc[r][0]);
            store8(out[r] + d0 + LANES, acc[r][1]);
        }
    }
    for (; d0 < D; d0++)
        for (int r = 0; r < QUERY_BLOCK; r++) {
            float sum = 0.0f;
            for (int j = 0; j <= last; j++) sum += w[(size_t)r * Tp + j] * x[(size_t)j * ld + d0];
            out[r][d0] = sum;
        }
}

/* y_j[0..D) += sum_r c[r * Tp + j] x_r[0..D) for keys j <= last (rows of y
 * D apart), queries in order. Columns go 16 at a time with the block's x
 * rows held in registers, then any that remain one by one. */
INLINE void add_outer(float *y, const float *c, const float *const *x, int last, int Tp, int D) {
    int d0 = 0;
    for (; d0 + 2 * LANES <= D; d0 += 2 * LANES) {
        vec8 xr[QUERY_BLOCK][2];
        for (int r = 0; r < QUERY_BLOCK; r++) {
            xr[r][0] = load8(x[r] + d0);
            xr[r][1] = load8(x[r] + d0 + LANES);
        }
        for (int j = 0; j <= last; j++) {
            float *yj = y + (size_t)j * D + d0;
            vec8 lo = load8(yj), hi = load8(yj + LANES);
            for (int r = 0; r < QUERY_BLOCK; r++) {
                const vec8 cj = splat8(c[(size_t)r * Tp + j]);
                lo += cj * xr[r][0];
                hi += cj * xr[r][1];
            }
            store8(yj, lo);
            store8(yj + LANES, hi);
        }
    }
    for (; d0 < D; d0++)
        for (int j = 0; j <= last; j++)
            for (int r = 0; r < QUERY_BLOCK; r++)
                y[(size_t)j * D + d0] += c[(size_t)r * Tp + j] * x[r][d0];
}

/* May query i see key j <= i? `plain`: every key up to the query has mask
 * 1, so yes without reading the mask (the callers pass a literal, so the
 * inlined loops carry no mask at all then). */
INLINE int sees(const int32_t *mask, int j, int32_t query, int plain) {
    return plain || rc_key_on_branch(mask[j], query);
}

/* Query i's softmax numerators e_j = e^(s_j - max) over the keys it sees,
 * in place of its scores (0 for the others and past i up to `last`);
 * returns its stats (max, 1/sum), both 0 when it sees no key. */
INLINE void numerators(float *s, const int32_t *mask, int i, int last, float *stats, int plain) {
    const int32_t query = mask[i];
    float max = -INFINITY;
    CPU_SIMD_WITH_FLOAT_MAX(reduction(max : max))
    for (int j = 0; j <= i; j++) {
        const float candidate = sees(mask, j, query, plain) ? s[j] : -INFINITY;
        max = max > candidate ? max : candidate;
    }
    for (int j = i + 1; j <= last; j++) s[j] = 0.0f;
    if (max == -INFINITY) { /* a query that sees no key (scores are finite) */
        for (int j = 0; j <= i; j++) s[j] = 0.0f;
        stats[0] = stats[1] = 0.0f;
        return;
    }
    double sum = 0.0;
    CPU_SIMD_WITH(reduction(+ : sum))
    for (int j = 0; j <= i; j++) {
        const float e = exp_nonpositive(s[j] - max);
        s[j] = sees(mask, j, query, plain) ? e : 0.0f;
        sum += s[j];
    }
    stats[0] = max;
    stats[1] = (float)(1.0 / sum); /* the sum is >= 1: the maximum contributes e^0 */
}

/* Backward, one query i: its probabilities p_j by the forward's float
 * operations (numerator times the stored inverse), and in place of dp_j,
 * ds_j = p_j (dp_j - delta); both 0 past key i up to `last`. */
INLINE void probabilities_and_ds(float *p, float *ds, const int32_t *mask, int i, int last,
                                 const float *stats, float delta, int plain) {
    const int32_t query = mask[i];
    const float max = stats[0], inverse = stats[1];
    CPU_SIMD
    for (int j = 0; j <= i; j++) {
        const float e = exp_nonpositive(p[j] - max);
        const float pj = (sees(mask, j, query, plain) ? e : 0.0f) * inverse;
        p[j] = pj;
        ds[j] = pj * (ds[j] - delta);
    }
    for (int j = i + 1; j <= last; j++) p[j] = ds[j] = 0.0f;
}

/* The two steps above for query i of a head, the mask read only past the
 * head's plain prefix (a literal for each case, as `sees` wants). Backward:
 * delta = dout_i . out_i; `stats` NULL for a filler query, which like a
 * query that saw no key gets zeros up to `last`. */
INLINE void query_numerators(const head *x, float *s, int i, int last, float *stats) {
    if (i < x->plain_until) numerators(s, x->mask, i, last, stats, 1);
    else numerators(s, x->mask, i, last, stats, 0);
}

INLINE void query_p_and_ds(const head *x, float *p, float *ds, int i, int last,
                           const float *stats, const float *dout_i, const float *out_i, int D) {
    if (!stats || stats[1] == 0.0f) {
        for (int j = 0; j <= last; j++) p[j] = ds[j] = 0.0f;
        return;
    }
    double delta = 0.0; /* sum_j p_j dp_j, as dout_i . out_i */
    CPU_SIMD_WITH(reduction(+ : delta))
    for (int d = 0; d < D; d++) delta += (double)dout_i[d] * out_i[d];
    if (i < x->plain_until) probabilities_and_ds(p, ds, x->mask, i, last, stats, (float)delta, 1);
    else probabilities_and_ds(p, ds, x->mask, i, last, stats, (float)delta, 0);
}

INLINE void scale_row(float *row, float factor, int D) {
    CPU_SIMD
    for (int d = 0; d < D; d++) row[d] *= factor;
}

INLINE void forward_head(const head *x, float *out, float *stats, float *work, int D) {
    const int T = x->T, Tp = x->Tp, ldq = x->ldq;
    float *kt = work, *s = kt + (size_t)D * Tp, *zeros = s + (size_t)QUERY_BLOCK * Tp;
    float *discard = zeros + D; /* output rows of the filler queries */
    for (int d = 0; d < D; d++) zeros[d] = 0.0f;
    transpose_head(kt, x->k, T, Tp, D, x->ldkv);
    for (int i0 = 0; i0 < T; i0 += QUERY_BLOCK) {
        const int last = i0 + QUERY_BLOCK - 1 < T - 1 ? i0 + QUERY_BLOCK - 1 : T - 1;
        const float *q[QUERY_BLOCK];
        float *o[QUERY_BLOCK];
        block_rows(q, x->q, i0, T, ldq, zeros);
        for (int r = 0; r < QUERY_BLOCK; r++)
            o[r] = i0 + r < T ? out + (size_t)(i0 + r) * ldq : discard;
        dots(s, q, kt, last, Tp, D, x->scale);
        for (int r = 0; r < QUERY_BLOCK; r++) {
            const int i = i0 + r;
            float *row = s + (size_t)r * Tp;
            if (i >= T)
                for (int j = 0; j <= last; j++) row[j] = 0.0f;
            else
                query_numerators(x, row, i, last, stats + 2 * (size_t)i);
        }
        /* out_i = (sum_j e_j v_j) / sum_j e_j */
        weighted_rows(o, s, x->v, last, Tp, D, x->ldkv);
        for (int r = 0; r < QUERY_BLOCK && i0 + r < T; r++)
            scale_row(o[r], stats[2 * (size_t)(i0 + r) + 1], D);
    }
}

/* One query head's share of its group's backward: dq, and its terms of the
 * group's dk_sum and dv_sum ([T, D] each), with the group's keys and values
 * transposed in kt and vt. */
INLINE void backward_head(const head *x, const float *dout, const float *out, const float *stats,
                          float *dq, const float *kt, const float *vt, float *dk_sum,
                          float *dv_sum, float *p, float *zeros, int D) {
    const int T = x->T, Tp = x->Tp, ldq = x->ldq;
    float *ds = p + (size_t)QUERY_BLOCK * Tp, *discard = zeros + D;
    for (int i0 = 0; i0 < T; i0 += QUERY_BLOCK) {
        const int last = i0 + QUERY_BLOCK - 1 < T - 1 ? i0 + QUERY_BLOCK - 1 : T - 1;
        const float *q[QUERY_BLOCK], *g[QUERY_BLOCK]; /* g: dout rows */
        float *dq_rows[QUERY_BLOCK];
        block_rows(q, x->q, i0, T, ldq, zeros);
        block_rows(g, dout, i0, T, ldq, zeros);
        for (int r = 0; r < QUERY_BLOCK; r++)
            dq_rows[r] = i0 + r < T ? dq + (size_t)(i0 + r) * ldq : discard;
        dots(p, q, kt, last, Tp, D, x->scale);
        dots(ds, g, vt, last, Tp, D, 1.0f); /* dp_j = dout_i . v_j */
        for (int r = 0; r < QUERY_BLOCK; r++) {
            const int i = i0 + r;
            const int filler = i >= T;
            query_p_and_ds(x, p + (size_t)r * Tp, ds + (size_t)r * Tp, i, last,
                           filler ? NULL : stats + 2 * (size_t)i, g[r],
                           filler ? NULL : out + (size_t)i * ldq, D);
        }
        weighted_rows(dq_rows, ds, x->k, last, Tp, D, x->ldkv);
        for (int r = 0; r < QUERY_BLOCK; r++) scale_row(dq_rows[r], x->scale, D);
        /* dv_j += sum_r p_rj dout_r and dk_j += sum_r ds_rj q_r */
        add_outer(dv_sum, p, g, last, Tp, D);
        add_outer(dk_sum, ds, q, last, Tp, D);
    }
}

/* A group of `group` query heads sharing one key/value head: x is the first
 * query head; the others follow D columns apart in q, out, dout and dq, and
 * T * 2 apart in stats. dk and dv are written once, from the group's sums. */
INLINE void backward_group(const head *x, const float *dout, const float *out,
                           const float *stats, float *dq, float *dk, float *dv, float *work,
                           int D, int group) {
    const int T = x->T, Tp = x->Tp, ldkv = x->ldkv;
    const size_t TD = (size_t)Tp * D;
    float *kt = work, *vt = kt + TD, *dk_sum = vt + TD, *dv_sum = dk_sum + TD;
    float *p = dv_sum + TD, *zeros = p + 2 * (size_t)QUERY_BLOCK * Tp;
    for (int d = 0; d < D; d++) zeros[d] = 0.0f;
    transpose_head(kt, x->k, T, Tp, D, ldkv);
    transpose_head(vt, x->v, T, Tp, D, ldkv);
    memset(dk_sum, 0, 2 * TD * sizeof(float)); /* and dv_sum */
    for (int m = 0; m < group; m++) {
        head xm = *x;
        const size_t col = (size_t)m * D;
        xm.q += col;
        backward_head(&xm, dout + col, out + col, stats + (size_t)m * T * 2, dq + col, kt, vt,
                      dk_sum, dv_sum, p, zeros, D);
    }
    for (int j = 0; j < T; j++)
        for (int d = 0; d < D; d++) {
            dk[(size_t)j * ldkv + d] = x->scale * dk_sum[(size_t)j * D + d];
            dv[(size_t)j * ldkv + d] = dv_sum[(size_t)j * D + d];
        }
}

/* Heads wider than this go through banded products. The register tiles
 * above keep a head's rows in registers, which pays while a head is narrow;
 * from 32 wide the banded products were as fast or faster, and at 64 (OPT-125m)
 * the register tiles no longer beat composed products while the banded ones
 * did. The measurements are in docs/performance.md. */
enum { WIDE_HEAD_DIM = 16, WIDE_QUERY_BLOCK = 96 /* 16 rows of the kernel's 6 */ };

/* Floats of a wide task's scratch: two blocks of scores (the backward's p
 * and ds; the forward uses one) and the products' own. */
static size_t wide_work_floats(int T, int D) {
    const int widest = T > D ? T : D;
    return 2 * (size_t)WIDE_QUERY_BLOCK * T + cpu_packed_gemm_scratch_floats(widest, widest, 1);
}

static void banded(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc,
                   cpu_band_kind kind, int offset, float *work) {
    cpu_packed_gemm_banded(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                           (cpu_band){kind, offset}, work, 1);
}

static void wide_forward(const head *x, float *out, float *stats, float *work, int D) {
    const int T = x->T, ldq = x->ldq, ldkv = x->ldkv;
    float *s = work, *gemm_work = work + 2 * (size_t)WIDE_QUERY_BLOCK * T;
    for (int i0 = 0; i0 < T; i0 += WIDE_QUERY_BLOCK) {
        const int n = T - i0 < WIDE_QUERY_BLOCK ? T - i0 : WIDE_QUERY_BLOCK, keys = i0 + n;
        banded(0, 1, n, keys, D, x->scale, x->q + (size_t)i0 * ldq, ldq, x->k, ldkv, 0.0f, s, T,
               CPU_BAND_C_LOWER, i0, gemm_work);
        for (int r = 0; r < n; r++)
            query_numerators(x, s + (size_t)r * T, i0 + r, keys - 1, stats + 2 * (size_t)(i0 + r));
        float *o = out + (size_t)i0 * ldq;
        banded(0, 0, n, D, keys, 1.0f, s, T, x->v, ldkv, 0.0f, o, ldq, CPU_BAND_A_LOWER, i0,
               gemm_work);
        for (int r = 0; r < n; r++)
            scale_row(o + (size_t)r * ldq, stats[2 * (size_t)(i0 + r) + 1], D);
    }
}

/* One query head's dq, and its terms added into dk and dv (rows ldkv apart). */
static void wide_backward_head(const head *x, const float *dout, const float *out,
                               const float *stats, float *dq, float *dk, float *dv, float *work,
                               int D) {
    const int T = x->T, ldq = x->ldq, ldkv = x->ldkv;
    float *p = work, *ds = p + (size_t)WIDE_QUERY_BLOCK * T;
    float *gemm_work = ds + (size_t)WIDE_QUERY_BLOCK * T;
    for (int i0 = 0; i0 < T; i0 += WIDE_QUERY_BLOCK) {
        const int n = T - i0 < WIDE_QUERY_BLOCK ? T - i0 : WIDE_QUERY_BLOCK, keys = i0 + n;
        const float *q = x->q + (size_t)i0 * ldq, *g = dout + (size_t)i0 * ldq;
        banded(0, 1, n, keys, D, x->scale, q, ldq, x->k, ldkv, 0.0f, p, T, CPU_BAND_C_LOWER, i0,
               gemm_work);
        banded(0, 1, n, keys, D, 1.0f, g, ldq, x->v, ldkv, 0.0f, ds, T, CPU_BAND_C_LOWER, i0,
               gemm_work); /* dp_j = dout_i . v_j */
        for (int r = 0; r < n; r++) {
            const int i = i0 + r;
            query_p_and_ds(x, p + (size_t)r * T, ds + (size_t)r * T, i, keys - 1,
                           stats + 2 * (size_t)i, g + (size_t)r * ldq, out + (size_t)i * ldq, D);
        }
        /* dS and P are zero past each query's key, hence the bands */
        banded(0, 0, n, D, keys, x->scale, ds, T, x->k, ldkv, 0.0f, dq + (size_t)i0 * ldq, ldq,
               CPU_BAND_A_LOWER, i0, gemm_work);
        banded(1, 0, keys, D, n, x->scale, ds, T, q, ldq, 1.0f, dk, ldkv, CPU_BAND_A_UPPER, -i0,
               gemm_work);
        banded(1, 0, keys, D, n, 1.0f, p, T, g, ldq, 1.0f, dv, ldkv, CPU_BAND_A_UPPER, -i0,
               gemm_work);
    }
}

/* backward_group's wide counterpart: dk and dv zeroed, then each query head
 * of the group adds its terms in turn. */
static void wide_backward_group(const head *x, const float *dout, const float *out,
                                const float *stats, float *dq, float *dk, float *dv, float *work,
                                int D, int group) {
    const int T = x->T, ldkv = x->ldkv;
    for (int j = 0; j < T; j++) {
        memset(dk + (size_t)j * ldkv, 0, (size_t)D * sizeof(float));
        memset(dv + (size_t)j * ldkv, 0, (size_t)D * sizeof(float));
    }
    for (int m = 0; m < group; m++) {
        head xm = *x;
        const size_t col = (size_t)m * D;
        xm.q += col;
        wide_backward_head(&xm, dout + col, out + col, stats + (size_t)m * T * 2, dq + col, dk,
                           dv, work, D);
    }
}

/* Wide heads take banded products; 16, the tiny preset's width, a literal
 * for the inlined loops; others the general code. */
static void forward_task(const head *x, float *out, float *stats, float *work, int D) {
    if (D > WIDE_HEAD_DIM) {
        wide_forward(x, out, stats, work, D);
        return;
    }
    if (D == 16) forward_head(x, out, stats, work, 16);
    else forward_head(x, out, stats, work, D);
}

static void backward_task(const head *x, const float *dout, const float *out, const float *stats,
                          float *dq, float *dk, float *dv, float *work, int D, int group) {
    if (D > WIDE_HEAD_DIM) {
        wide_backward_group(x, dout, out, stats, dq, dk, dv, work, D, group);
        return;
    }
    if (D == 16) backward_group(x, dout, out, stats, dq, dk, dv, work, 16, group);
    else backward_group(x, dout, out, stats, dq, dk, dv, work, D, group);
}

/* Query head h of sequence b, which reads key/value head h / group; its
 * element offsets in the query-side and key/value-side tensors. */
static head head_at(const float *q, const float *k, const float *v, const int32_t *mask, int b,
                    int h, int group, int T, int H, int Hkv, int D, float scale, size_t *q_offset,
                    size_t *kv_offset) {
    const int ldq = H * D, ldkv = Hkv * D;
    *q_offset = (size_t)b * T * ldq + (size_t)h * D;
    *kv_offset = (size_t)b * T * ldkv + (size_t)(h / group) * D;
    const int32_t *row = mask + (size_t)b * T;
    int plain_until = 0;
    while (plain_until < T && row[plain_until] == 1) plain_until++;
    return (head){q + *q_offset, k + *kv_offset, v + *kv_offset, row, T, padded(T), ldq, ldkv,
                  plain_until, scale};
}

/* Checks shared by both directions; returns 0 (an error recorded) or 1. */
static int shapes_ok(rc_backend *be, const char *op, rc_view stats, rc_view key_mask, int B,
                     int T, int H, int Hkv, int D) {
    if (!cpu_sizes_ok(be, op, B, T, H) || !cpu_sizes_ok(be, op, D, 0, 0)) return 0;
    if (Hkv <= 0 || H % Hkv != 0) {
        cpu_record_error(be, RC_ERR_INVALID_ARG,
                         "cpu %s: %d query heads are not a multiple of %d key/value heads", op, H,
                         Hkv);
        return 0;
    }
    const size_t rows = (size_t)B * T;
    return cpu_view_fits(be, op, "stats", stats, rows * H * 2) &&
           cpu_view_fits(be, op, "key_mask", key_mask, rows);
}

/* Both ops' tensors (the backward's gradients NULL in the forward). */
typedef struct {
    const float *q, *k, *v;
    const int32_t *key_mask;
    float *out, *stats;          /* written by the forward, read by the backward */
    const float *dout;
    float *dq, *dk, *dv;
    int B, T, H, Hkv, D;
    float scale;
} attention_tensors;

/* Runs every task of one direction, each thread in its own per_thread
 * floats of the backend's scratch: the forward's per (sequence, query
 * head), the backward's per (sequence, key/value head), which owns that
 * head's dk and dv. */
static void run_tasks(rc_backend *be, const char *op, const attention_tensors *a,
                      size_t per_thread) {
    float *scratch = cpu_scratch(be, op, per_thread * (size_t)cpu_thread_count());
    if (!scratch) return;
    const int group = a->H / a->Hkv, heads_per_task = a->dq ? group : 1;
    const int tasks = a->B * (a->H / heads_per_task);
    PARALLEL_IF(tasks > 1) {
        float *work = scratch + per_thread * (size_t)cpu_thread_index();
        FOR_EACH_TASK
        for (int t = 0; t < tasks; t++) {
            const int b = t / (a->H / heads_per_task);
            const int h = t % (a->H / heads_per_task) * heads_per_task; /* the first query head */
            size_t at, kv_at;
            const head x = head_at(a->q, a->k, a->v, a->key_mask, b, h, group, a->T, a->H, a->Hkv,
                                   a->D, a->scale, &at, &kv_at);
            float *stats = a->stats + ((size_t)b * a->H + h) * a->T * 2;
            if (a->dq)
                backward_task(&x, a->dout + at, a->out + at, stats, a->dq + at, a->dk + kv_at,
                              a->dv + kv_at, work, a->D, group);
            else
                forward_task(&x, a->out + at, stats, work, a->D);
        }
    }
}

void cpu_attention_forward(rc_backend *be, rc_view out, rc_view stats, rc_view q, rc_view k,
                           rc_view v, rc_view key_mask, int B, int T, int H, int Hkv, int D,
                           float scale) {
    static const char op[] = "attention_forward";
    if (!shapes_ok(be, op, stats, key_mask, B, T, H, Hkv, D)) return;
    const size_t n = (size_t)B * T * H * D, n_kv = (size_t)B * T * Hkv * D;
    if (!cpu_view_fits(be, op, "out", out, n) || !cpu_view_fits(be, op, "q", q, n) ||
        !cpu_view_fits(be, op, "k", k, n_kv) || !cpu_view_fits(be, op, "v", v, n_kv) || n == 0)
        return;
    const attention_tensors a = {cpu_f32(q), cpu_f32(k), cpu_f32(v), cpu_i32(key_mask),
                                 cpu_f32(out), cpu_f32(stats), NULL, NULL, NULL, NULL,
                                 B, T, H, Hkv, D, scale};
    /* transposed keys, the block's scores, a zero row and a discarded one */
    run_tasks(be, op, &a,
              D > WIDE_HEAD_DIM ? wide_work_floats(T, D)
                                : ((size_t)D + QUERY_BLOCK) * padded(T) + 2 * (size_t)D);
}

void cpu_attention_backward(rc_backend *be, rc_view dq, rc_view dk, rc_view dv, rc_view dout,
                            rc_view out, rc_view stats, rc_view q, rc_view k, rc_view v,
                            rc_view key_mask, int B, int T, int H, int Hkv, int D,
                            float scale) {
    static const char op[] = "attention_backward";
    if (!shapes_ok(be, op, stats, key_mask, B, T, H, Hkv, D)) return;
    const size_t n = (size_t)B * T * H * D, n_kv = (size_t)B * T * Hkv * D;
    if (!cpu_view_fits(be, op, "dq", dq, n) || !cpu_view_fits(be, op, "dk", dk, n_kv) ||
        !cpu_view_fits(be, op, "dv", dv, n_kv) || !cpu_view_fits(be, op, "dout", dout, n) ||
        !cpu_view_fits(be, op, "out", out, n) || !cpu_view_fits(be, op, "q", q, n) ||
        !cpu_view_fits(be, op, "k", k, n_kv) || !cpu_view_fits(be, op, "v", v, n_kv) || n == 0)
        return;
    const attention_tensors a = {cpu_f32(q), cpu_f32(k), cpu_f32(v), cpu_i32(key_mask),
                                 cpu_f32(out), cpu_f32(stats), cpu_f32(dout), cpu_f32(dq),
                                 cpu_f32(dk), cpu_f32(dv), B, T, H, Hkv, D, scale};
    /* transposed keys and values, dk and dv sums, the block's p and ds, a
     * zero row and a discarded one */
    run_tasks(be, op, &a,
              D > WIDE_HEAD_DIM ? wide_work_floats(T, D)
                                : (4 * (size_t)D + 2 * QUERY_BLOCK) * padded(T) + 2 * (size_t)D);
}
