/* Masked causal softmax over attention scores [B, H, Tq, Tk] and its backward.
 *
 * One work-group per row (b, h, query i); the queries are the last Tq of the
 * Tk positions, so query i sits at position Tk - Tq + i. Key j is visible iff
 * j <= that position, key_mask[b, j] != 0, and key_mask[b, j] is 1 (shared)
 * or equals the query's own mask value (its branch, for packed pairs); hidden
 * keys get probability exactly 0, and a row with no visible key (a padding
 * query under left padding) is all zeros rather than NaN. Sums are rc_acc and
 * each probability is divided once, as on the CPU. Every element is read and
 * written by the same work-item, and all reads that feed a reduction finish
 * before the reduction's barrier, so probs may alias scores and dscores may
 * alias dprobs. */

__kernel void rc_softmax_forward(__global float *probs, ulong probs_off,
                                 __global const float *scores, ulong scores_off,
                                 __global const int *key_mask, ulong mask_off, int heads,
                                 int n_queries, int n_keys, __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    const size_t T = (size_t)n_keys;
    const size_t query = T - (size_t)n_queries + row % (size_t)n_queries;
    const size_t batch = row / ((size_t)n_queries * (size_t)heads);
    __global const int *mask = key_mask + mask_off + batch * T;
    __global const float *s = scores + scores_off + row * T;
    __global float *p = probs + probs_off + row * T;
    const int branch = mask[query];
#define RC_VISIBLE(j) ((j) <= query && mask[j] != 0 && (mask[j] == 1 || mask[j] == branch))

    rc_acc best = -INFINITY, n_visible = 0;
    for (size_t j = lid; j <= query; j += step) {
        if (RC_VISIBLE(j)) {
            best = fmax(best, (rc_acc)s[j]);
            n_visible += 1;
        }
    }
    const float max_score = (float)rc_group_max(best, scratch);
    n_visible = rc_group_sum(n_visible, scratch);

    rc_acc sum = 0;
    for (size_t j = lid; j < T; j += step) {
        float e = 0.0f;
        if (n_visible > 0 && RC_VISIBLE(j)) {
            e = exp(s[j] - max_score);
            sum += e;
        }
        p[j] = e;
    }
    sum = rc_group_sum(sum, scratch);
    if (n_visible == 0) return; /* every p[j] is already 0 */
    for (size_t j = lid; j <= query; j += step) p[j] = (float)(p[j] / sum);
#undef RC_VISIBLE
}

/* dscores = probs * (dprobs - sum_j probs * dprobs), over the whole row */
__kernel void rc_softmax_backward(__global float *dscores, ulong dscores_off,
                                  __global const float *dprobs, ulong dprobs_off,
                                  __global const float *probs, ulong probs_off, int seq_len,
                                  __local rc_acc *scratch) {
    const size_t row = get_group_id(0), lid = get_local_id(0), step = get_local_size(0);
    const size_t T = (size_t)seq_len;
    __global const float *p = probs + probs_off + row * T;
    __global const float *dp = dprobs + dprobs_off + row * T;
    __global float *ds = dscores + dscores_off + row * T;

    rc_acc dot = 0;
    for (size_t j = lid; j < T; j += step) dot += (rc_acc)p[j] * dp[j];
    const float dot_f = (float)rc_group_sum(dot, scratch);

    for (size_t j = lid; j < T; j += step) ds[j] = p[j] * (dp[j] - dot_f);
}
