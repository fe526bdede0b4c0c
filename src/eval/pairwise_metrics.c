/* Metrics over chosen/rejected reward pairs: accuracy with ties apart, mean
 * margin, the pairwise loss, reward statistics, accuracy per length bucket
 * and the correlation of reward with length. */
#include <math.h>

#include "rewardc/eval.h"
#include "rewardc/train.h" /* rc_pair_loss_term: the loss training minimises */

static rc_status check_finite(const float *values, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return rc_fail(RC_ERR_INVALID_ARG, "%s[%zu] is not finite (%g)", what, i,
                           (double)values[i]);
    return RC_OK;
}

static void mean_and_std(const float *values, size_t n, double *mean, double *std) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += values[i];
    double m = sum / (double)n, squares = 0.0;
    for (size_t i = 0; i < n; i++) squares += ((double)values[i] - m) * ((double)values[i] - m);
    *mean = m;
    *std = sqrt(squares / (double)n);
}

rc_status rc_pairwise_stats_compute(const float *r_chosen, const float *r_rejected,
                                    const float *margin, size_t n, rc_pairwise_stats *out) {
    if (n == 0) return rc_fail(RC_ERR_INVALID_ARG, "pairwise metrics need at least one pair");
    rc_status st = check_finite(r_chosen, n, "chosen reward");
    if (st == RC_OK) st = check_finite(r_rejected, n, "rejected reward");
    if (st == RC_OK && margin) st = check_finite(margin, n, "margin");
    if (st != RC_OK) return st;
    rc_pairwise_stats stats = {0};
    stats.n_pairs = n;
    double margin_sum = 0.0, loss_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double difference = (double)r_chosen[i] - (double)r_rejected[i];
        if (r_chosen[i] > r_rejected[i]) stats.n_correct++;
        else if (r_chosen[i] == r_rejected[i]) stats.n_ties++;
        else stats.n_wrong++;
        margin_sum += difference;
        loss_sum += rc_pair_loss_term(difference - (margin ? (double)margin[i] : 0.0));
    }
    stats.accuracy = (double)stats.n_correct / (double)n;
    stats.tie_rate = (double)stats.n_ties / (double)n;
    stats.mean_margin = margin_sum / (double)n;
    stats.loss = loss_sum / (double)n;
    mean_and_std(r_chosen, n, &stats.chosen_mean, &stats.chosen_std);
    mean_and_std(r_rejected, n, &stats.rejected_mean, &stats.rejected_std);
    *out = stats;
    return RC_OK;
}

rc_status rc_accuracy_by_length(const float *r_chosen, const float *r_rejected,
                                const double *length, size_t n, const double *edges,
                                size_t n_edges, rc_length_bucket *buckets) {
    for (size_t e = 0; e < n_edges; e++) {
        if (!isfinite(edges[e]))
            return rc_fail(RC_ERR_INVALID_ARG, "length bucket edge %zu is not finite", e);
        if (e > 0 && !(edges[e] > edges[e - 1]))
            return rc_fail(RC_ERR_INVALID_ARG,
                           "length bucket edges must increase: edge %zu (%g) <= edge %zu (%g)", e,
                           edges[e], e - 1, edges[e - 1]);
    }
    for (size_t b = 0; b <= n_edges; b++) {
        buckets[b].lower = b == 0 ? -INFINITY : edges[b - 1];
        buckets[b].upper = b == n_edges ? INFINITY : edges[b];
        buckets[b].n_pairs = buckets[b].n_correct = buckets[b].n_ties = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(length[i]))
            return rc_fail(RC_ERR_INVALID_ARG, "length[%zu] is NaN", i);
        /* Binary search for the number of edges <= length: that is the bucket. */
        size_t lo = 0, hi = n_edges;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (edges[mid] <= length[i]) lo = mid + 1;
            else hi = mid;
        }
        rc_length_bucket *bucket = &buckets[lo];
        bucket->n_pairs++;
        if (r_chosen[i] > r_rejected[i]) bucket->n_correct++;
        else if (r_chosen[i] == r_rejected[i]) bucket->n_ties++;
    }
    for (size_t b = 0; b <= n_edges; b++)
        buckets[b].accuracy = buckets[b].n_pairs
                                  ? (double)buckets[b].n_correct / (double)buckets[b].n_pairs
                                  : NAN;
    return RC_OK;
}

rc_status rc_reward_length_correlation(const float *reward, const double *length, size_t n,
                                       double *r) {
    if (n < 2) return rc_fail(RC_ERR_INVALID_ARG, "a correlation needs at least 2 values, got %zu", n);
    double mean_x = 0.0, mean_y = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(reward[i]) || !isfinite(length[i]))
            return rc_fail(RC_ERR_INVALID_ARG, "reward or length %zu is not finite", i);
        mean_x += reward[i];
        mean_y += length[i];
    }
    mean_x /= (double)n;
    mean_y /= (double)n;
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = (double)reward[i] - mean_x, dy = length[i] - mean_y;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx == 0.0 || syy == 0.0)
        return rc_fail(RC_ERR_INVALID_ARG, "correlation undefined: the %s is constant",
                       sxx == 0.0 ? "reward" : "length");
    *r = sxy / sqrt(sxx * syy);
    return RC_OK;
}
