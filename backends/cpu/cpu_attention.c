/* Masked causal softmax over attention scores for the CPU backend, forward
 * and backward. scores/probs are [B, H, Tq, Tk], the queries being the last Tq
 * of the Tk positions; visibility is the rule in backend.h (causal, key not
 * padding, key shared or on the query's branch). Each (b, h, i) row is
 * independent, so both directions are parallel over rows. */
#include <math.h>

#include "cpu_internal.h"

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
