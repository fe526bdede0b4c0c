/* Evaluation metrics for reward models: pure functions over arrays of float
 * rewards (pairwise accuracy, margin, loss, per-length accuracy, correlation
 * with length; ROC AUC, precision-recall and threshold choice on labelled
 * single responses) and an SVG figure of two overlaid reward histograms. */
#ifndef REWARDC_EVAL_H
#define REWARDC_EVAL_H

#include <stddef.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pairs ----------------------------------------------------------------- */

typedef struct {
    size_t n_pairs;
    size_t n_correct;      /* r_chosen > r_rejected */
    size_t n_ties;         /* r_chosen == r_rejected, reported apart */
    size_t n_wrong;        /* r_chosen < r_rejected */
    double accuracy;       /* n_correct / n_pairs (a tie is not correct) */
    double tie_rate;       /* n_ties / n_pairs */
    double mean_margin;    /* mean(r_chosen - r_rejected) */
    double loss;           /* mean(-logsigmoid(r_chosen - r_rejected - margin)) */
    double chosen_mean, chosen_std;     /* population std (divides by n) */
    double rejected_mean, rejected_std;
} rc_pairwise_stats;

/* margin may be NULL (all zero). Fails on n == 0 or a non-finite reward. */
rc_status rc_pairwise_stats_compute(const float *r_chosen, const float *r_rejected,
                                    const float *margin, size_t n, rc_pairwise_stats *out);

/* Pairs bucketed by a length (tokens, characters: the caller's choice). With
 * edges e[0] < ... < e[m-1], bucket 0 is length < e[0], bucket b is
 * e[b-1] <= length < e[b], bucket m is length >= e[m-1]: m + 1 buckets. */
typedef struct {
    double lower, upper;   /* -inf / +inf at the ends */
    size_t n_pairs, n_correct, n_ties;
    double accuracy;       /* n_correct / n_pairs; NaN for an empty bucket */
} rc_length_bucket;

rc_status rc_accuracy_by_length(const float *r_chosen, const float *r_rejected,
                                const double *length, size_t n, const double *edges,
                                size_t n_edges, rc_length_bucket *buckets /* n_edges + 1 */);

/* Pearson correlation of reward with length. Fails for n < 2 or when either
 * side is constant (the correlation is undefined). */
rc_status rc_reward_length_correlation(const float *reward, const double *length, size_t n,
                                       double *r);

/* ---- labelled single responses (label 1 = acceptable) ----------------------- */

/* ROC AUC as the Mann-Whitney statistic: the chance that a random positive
 * scores above a random negative, a tie counting 1/2. Labels must be 0/1 and
 * both classes present. */
rc_status rc_roc_auc(const float *score, const int *label, size_t n, double *auc);

/* One point per distinct score t, predicting positive when score >= t;
 * points run from the highest threshold down (recall rising). */
typedef struct {
    float threshold;
    size_t tp, fp;
    double precision, recall;
} rc_pr_point;

/* *points is malloc'd (free() it). Both classes must be present. */
rc_status rc_precision_recall_curve(const float *score, const int *label, size_t n,
                                    rc_pr_point **points, size_t *n_points);

/* A chosen operating point. Its threshold lies halfway between the lowest
 * accepted score and the next lower one, never on an evaluated score, so a
 * rescored text whose reward moves by float rounding keeps its decision. */
typedef struct {
    float threshold;       /* accept when score >= threshold */
    size_t tp, fp, fn, tn;
    double precision, recall;
} rc_threshold_choice;

/* The lowest curve point whose precision is >= target (so recall is as high
 * as that precision allows). Fails, naming the best precision reached, when no
 * threshold gets there. */
rc_status rc_threshold_for_precision(const float *score, const int *label, size_t n,
                                     double target_precision, rc_threshold_choice *out);
/* The highest curve point whose recall is >= target (the fewest acceptances). */
rc_status rc_threshold_for_recall(const float *score, const int *label, size_t n,
                                  double target_recall, rc_threshold_choice *out);

/* ---- figure ------------------------------------------------------------------ */

typedef struct {
    const float *values;
    size_t n;
    const char *label;     /* legend text */
} rc_histogram_series;

typedef struct {
    const char *title;
    const char *x_label;   /* e.g. "reward" */
    rc_histogram_series first;   /* e.g. chosen / acceptable */
    rc_histogram_series second;  /* e.g. rejected / not acceptable */
    int n_bins;            /* 0: 30 */
    int has_threshold;
    double threshold;      /* drawn as a vertical line when has_threshold */
} rc_histogram_figure;

/* Both series on one set of bins spanning their range (and the threshold);
 * bar heights are fractions of each series so unequal sizes compare. */
rc_status rc_svg_histograms_render(const rc_histogram_figure *figure, char **svg, size_t *len);
/* Renders and writes atomically. */
rc_status rc_svg_histograms_write(const char *path, const rc_histogram_figure *figure);

/* Round tick positions (1, 2 or 5 times a power of ten apart) covering
 * [lo, hi]; at most max_ticks are written to ticks. */
rc_status rc_axis_ticks(double lo, double hi, int max_ticks, double *ticks, int *n_ticks);

#ifdef __cplusplus
}
#endif
#endif
