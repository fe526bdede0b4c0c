/* Metrics over labelled single responses (label 1 = acceptable): ROC AUC as
 * the Mann-Whitney statistic, the precision-recall curve, and choosing the
 * acceptance threshold for a target precision or recall. */
#include <math.h>
#include <stdlib.h>

#include "rewardc/eval.h"

typedef struct {
    float score;
    int label;
} scored;

static int by_score_descending(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x < y) - (x > y);
}

/* Validates the inputs, counts the classes and returns the examples sorted
 * by descending score (caller frees). */
static rc_status sort_labelled(const float *score, const int *label, size_t n, scored **sorted,
                               size_t *n_pos, size_t *n_neg) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (label[i] != 0 && label[i] != 1)
            return rc_fail(RC_ERR_INVALID_ARG, "label[%zu] = %d: labels must be 0 or 1", i, label[i]);
        if (!isfinite(score[i]))
            return rc_fail(RC_ERR_INVALID_ARG, "score[%zu] is not finite (%g)", i, (double)score[i]);
        pos += (size_t)label[i];
    }
    if (pos == 0 || pos == n)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "all %zu examples have label %d: this metric needs both classes", n,
                       pos ? 1 : 0);
    scored *items = malloc(n * sizeof *items);
    if (!items) return rc_fail(RC_ERR_OOM, "cannot sort %zu scores", n);
    for (size_t i = 0; i < n; i++) {
        items[i].score = score[i];
        items[i].label = label[i];
    }
    qsort(items, n, sizeof *items, by_score_descending);
    *sorted = items;
    *n_pos = pos;
    *n_neg = n - pos;
    return RC_OK;
}

rc_status rc_roc_auc(const float *score, const int *label, size_t n, double *auc) {
    scored *items;
    size_t n_pos, n_neg;
    rc_status st = sort_labelled(score, label, n, &items, &n_pos, &n_neg);
    if (st != RC_OK) return st;
    /* Walking down the scores: each positive beats every negative below it
     * and half-beats each negative tied with it. */
    double wins = 0.0;
    size_t negatives_below = n_neg;
    for (size_t start = 0; start < n;) {
        size_t end = start, group_pos = 0, group_neg = 0;
        while (end < n && items[end].score == items[start].score) {
            if (items[end].label) group_pos++;
            else group_neg++;
            end++;
        }
        negatives_below -= group_neg;
        wins += (double)group_pos * ((double)negatives_below + 0.5 * (double)group_neg);
        start = end;
    }
    free(items);
    *auc = wins / ((double)n_pos * (double)n_neg);
    return RC_OK;
}

rc_status rc_precision_recall_curve(const float *score, const int *label, size_t n,
                                    rc_pr_point **points, size_t *n_points) {
    scored *items;
    size_t n_pos, n_neg;
    rc_status st = sort_labelled(score, label, n, &items, &n_pos, &n_neg);
    if (st != RC_OK) return st;
    rc_pr_point *curve = malloc(n * sizeof *curve);
    if (!curve) {
        free(items);
        return rc_fail(RC_ERR_OOM, "cannot hold %zu curve points", n);
    }
    size_t count = 0, tp = 0, fp = 0;
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && items[end].score == items[start].score) {
            if (items[end].label) tp++;
            else fp++;
            end++;
        }
        rc_pr_point *point = &curve[count++];
        point->threshold = items[start].score;
        point->tp = tp;
        point->fp = fp;
        point->precision = (double)tp / (double)(tp + fp);
        point->recall = (double)tp / (double)n_pos;
        start = end;
    }
    free(items);
    *points = curve;
    *n_points = count;
    return RC_OK;
}

/* The threshold that accepts the scores of curve[chosen] and above: halfway
 * to the next lower score (half a permille of max(1, |score|) below when
 * there is none), so that no evaluated score sits on it. The same text scored
 * again in a batch of other lengths moves by float rounding (~1e-7) and must
 * not flip between accept and block. */
static float threshold_below(const rc_pr_point *curve, size_t n_points, size_t chosen) {
    const double lowest_accepted = curve[chosen].threshold;
    double below = lowest_accepted - 0.001 * fmax(1.0, fabs(lowest_accepted));
    if (chosen + 1 < n_points) below = curve[chosen + 1].threshold;
    float t = (float)((lowest_accepted + below) / 2.0);
    /* adjacent floats have no midpoint: then the accepted score itself */
    return t > (float)below && t <= (float)lowest_accepted ? t : (float)lowest_accepted;
}

static rc_threshold_choice choice_at(const rc_pr_point *curve, size_t n_points, size_t chosen,
                                     size_t n_pos, size_t n_neg) {
    const rc_pr_point *point = &curve[chosen];
    rc_threshold_choice choice;
    choice.threshold = threshold_below(curve, n_points, chosen);
    choice.tp = point->tp;
    choice.fp = point->fp;
    choice.fn = n_pos - point->tp;
    choice.tn = n_neg - point->fp;
    choice.precision = point->precision;
    choice.recall = point->recall;
    return choice;
}

static void class_counts(const int *label, size_t n, size_t *n_pos, size_t *n_neg) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += label[i] == 1;
    *n_pos = pos;
    *n_neg = n - pos;
}

rc_status rc_threshold_for_precision(const float *score, const int *label, size_t n,
                                     double target_precision, rc_threshold_choice *out) {
    if (!(target_precision > 0.0 && target_precision <= 1.0))
        return rc_fail(RC_ERR_INVALID_ARG, "target precision must be in (0, 1], got %g",
                       target_precision);
    rc_pr_point *curve;
    size_t n_points;
    rc_status st = rc_precision_recall_curve(score, label, n, &curve, &n_points);
    if (st != RC_OK) return st;
    size_t n_pos, n_neg;
    class_counts(label, n, &n_pos, &n_neg);
    /* Precision is not monotone in the threshold: scan every point and keep
     * the lowest threshold that qualifies (the one with the most recall). */
    size_t best = n_points, most_precise = 0;
    for (size_t p = 0; p < n_points; p++) {
        if (curve[p].precision >= target_precision) best = p;
        if (curve[p].precision > curve[most_precise].precision) most_precise = p;
    }
    if (best == n_points) {
        st = rc_fail(RC_ERR_INVALID_ARG,
                     "no threshold reaches precision %g: the best is %.4f (threshold %g, "
                     "recall %.4f)",
                     target_precision, curve[most_precise].precision,
                     (double)curve[most_precise].threshold, curve[most_precise].recall);
        free(curve);
        return st;
    }
    *out = choice_at(curve, n_points, best, n_pos, n_neg);
    free(curve);
    return RC_OK;
}

rc_status rc_threshold_for_recall(const float *score, const int *label, size_t n,
                                  double target_recall, rc_threshold_choice *out) {
    if (!(target_recall > 0.0 && target_recall <= 1.0))
        return rc_fail(RC_ERR_INVALID_ARG, "target recall must be in (0, 1], got %g",
                       target_recall);
    rc_pr_point *curve;
    size_t n_points;
    rc_status st = rc_precision_recall_curve(score, label, n, &curve, &n_points);
    if (st != RC_OK) return st;
    size_t n_pos, n_neg;
    class_counts(label, n, &n_pos, &n_neg);
    /* Recall rises as the threshold falls; the last point has recall 1. */
    size_t chosen = n_points - 1;
    for (size_t p = 0; p < n_points; p++)
        if (curve[p].recall >= target_recall) {
            chosen = p;
            break;
        }
    *out = choice_at(curve, n_points, chosen, n_pos, n_neg);
    free(curve);
    return RC_OK;
}
