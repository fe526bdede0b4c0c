/* Masked causal softmax over attention scores for the CPU backend, forward
 * and backward. scores/probs are [B, H, Tq, Tk], the queries being the last Tq
 * of the Tk positions; visibility is the rule in backend.h (causal, key not
 * padding, key shared or on the query's branch). Each (b, h, i) row is
 * independent, so both directions are parallel over rows. */
#include <math.h>

#include "cpu_internal.h"

/* Rows with no visible key (padding queries under left padding) are all
 * zeros rather than NaN. Masked entries are exactly 0, which is what an
 * additive -inf/finfo.min mask gives after exp in PyTorch. probs may alias
 * scores: every score of a row is read before the same element is written. */
void cpu_attention_softmax_forward(rc_backend *be, rc_view probs, rc_view scores,
                                   rc_view key_mask, int B, int H, int Tq, int Tk) {
    static const char op[] = "attention_softmax_forward";
    if (!cpu_sizes_ok(be, op, B, H, Tq) || !cpu_queries_ok(be, op, Tq, Tk)) return;
    const size_t total = (size_t)B * (size_t)H * (size_t)Tq * (size_t)Tk;
    if (!cpu_view_fits(be, op, "probs", probs, total) ||
        !cpu_view_fits(be, op, "scores", scores, total) ||
        !cpu_view_fits(be, op, "key_mask", key_mask, total ? (size_t)B * (size_t)Tk : 0) ||
        total == 0)
        return;
    float *p = cpu_f32(probs);
    const float *s = cpu_f32(scores);
    const int32_t *mask = cpu_i32(key_mask);
    const ptrdiff_t n_rows = (ptrdiff_t)B * H * Tq;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const int i = Tk - Tq + (int)(r % Tq); /* the query's position among the keys */
        const int b = (int)(r / ((ptrdiff_t)H * Tq));
        const int32_t *row_mask = mask + (size_t)b * (size_t)Tk;
        const int32_t query = row_mask[i];
        const float *srow = s + (size_t)r * (size_t)Tk;
        float *prow = p + (size_t)r * (size_t)Tk;
        /* Keys j <= i (the loop bounds keep causality), each loop free of
         * branches so that it vectorises. */
        float max = -INFINITY;
        int any = 0;
        CPU_SIMD_WITH_FLOAT_MAX(reduction(max : max) reduction(| : any))
        for (int j = 0; j <= i; j++) {
            const int visible = rc_key_on_branch(row_mask[j], query);
            const float score = srow[j];
            const float candidate = visible ? score : -INFINITY;
            max = max > candidate ? max : candidate;
            any |= visible;
        }
        for (int j = i + 1; j < Tk; j++) prow[j] = 0.0f;
        if (!any) {
            for (int j = 0; j <= i; j++) prow[j] = 0.0f;
            continue;
        }
        CPU_SIMD
        for (int j = 0; j <= i; j++) {
            const float e = exp_nonpositive(srow[j] - max);
            prow[j] = rc_key_on_branch(row_mask[j], query) ? e : 0.0f;
        }
        double sum = 0.0;
        CPU_SIMD_WITH(reduction(+ : sum))
        for (int j = 0; j <= i; j++) sum += prow[j];
        /* sum >= 1 (the max contributes exp(0)). A product with the double
         * reciprocal is within 2^-52 of the quotient before its one rounding
         * to float, and costs far less than a division per element. */
        const double inverse = 1.0 / sum;
        CPU_SIMD
        for (int j = 0; j <= i; j++) prow[j] = (float)(prow[j] * inverse);
    }
}

/* dscores = probs * (dprobs - sum_j probs*dprobs), written (not
 * accumulated). dscores may alias dprobs: the dot product is taken over the
 * whole row before any element is overwritten. Masked entries have
 * probs == 0 and so get a zero gradient without consulting the mask. */
void cpu_attention_softmax_backward(rc_backend *be, rc_view dscores, rc_view dprobs,
                                    rc_view probs, int B, int H, int Tq, int Tk) {
    static const char op[] = "attention_softmax_backward";
    if (!cpu_sizes_ok(be, op, B, H, Tq) || !cpu_queries_ok(be, op, Tq, Tk)) return;
    const size_t total = (size_t)B * (size_t)H * (size_t)Tq * (size_t)Tk;
    if (!cpu_view_fits(be, op, "dscores", dscores, total) ||
        !cpu_view_fits(be, op, "dprobs", dprobs, total) ||
        !cpu_view_fits(be, op, "probs", probs, total) || total == 0)
        return;
    float *ds = cpu_f32(dscores);
    const float *dp = cpu_f32(dprobs);
    const float *p = cpu_f32(probs);
    const ptrdiff_t n_rows = (ptrdiff_t)B * H * Tq;
    CPU_PARALLEL_FOR_IF(total)
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const size_t base = (size_t)r * (size_t)Tk;
        double dot = 0.0;
        CPU_SIMD_WITH(reduction(+ : dot))
        for (int j = 0; j < Tk; j++) dot += (double)p[base + j] * dp[base + j];
        const float dotf = (float)dot;
        CPU_SIMD
        for (int j = 0; j < Tk; j++) ds[base + j] = p[base + j] * (dp[base + j] - dotf);
    }
}
