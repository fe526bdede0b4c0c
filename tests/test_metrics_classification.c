/* ROC AUC, the precision-recall curve and threshold choice on labelled
 * single responses, against values worked out by hand in the comments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/eval.h"
#include "testlib.h"

/* Scores 0.9 0.8 0.7 0.7 0.3 with labels 1 0 1 0 0: positives {0.9, 0.7},
 * negatives {0.8, 0.7, 0.3}. */
static const float score[] = {0.9f, 0.8f, 0.7f, 0.7f, 0.3f};
static const int label[] = {1, 0, 1, 0, 0};

/* the chosen threshold: halfway between the lowest accepted score and the next */
static float between(float accepted, float below) { return (float)(((double)accepted + below) / 2.0); }

static void test_auc(void) {
    /* The 6 (positive, negative) pairs: 0.9 beats 0.8, 0.7, 0.3 (3); 0.7 loses
     * to 0.8 (0), ties 0.7 (1/2), beats 0.3 (1). AUC = 4.5 / 6 = 0.75. */
    double auc = -1;
    CHECK(rc_roc_auc(score, label, 5, &auc) == RC_OK, "%s", rc_last_error());
    CHECK(auc == 0.75, "auc %g", auc);

    /* Every score equal: every pair is a tie, AUC = 1/2. */
    const float flat[] = {1, 1, 1, 1};
    const int mixed[] = {1, 0, 0, 1};
    CHECK(rc_roc_auc(flat, mixed, 4, &auc) == RC_OK && auc == 0.5, "all ties: %g", auc);
    /* Perfect and inverted orderings. */
    const float ordered[] = {4, 3, 2, 1};
    const int top_two[] = {1, 1, 0, 0};
    const int bottom_two[] = {0, 0, 1, 1};
    CHECK(rc_roc_auc(ordered, top_two, 4, &auc) == RC_OK && auc == 1.0, "perfect: %g", auc);
    CHECK(rc_roc_auc(ordered, bottom_two, 4, &auc) == RC_OK && auc == 0.0, "inverted: %g", auc);
    /* The input order must not matter. */
    const float shuffled_score[] = {0.3f, 0.7f, 0.9f, 0.7f, 0.8f};
    const int shuffled_label[] = {0, 0, 1, 1, 0};
    CHECK(rc_roc_auc(shuffled_score, shuffled_label, 5, &auc) == RC_OK && auc == 0.75,
          "shuffled input: %g", auc);
}

static void test_degenerate(void) {
    double auc;
    const float s[] = {1, 2, 3};
    const int ones[] = {1, 1, 1};
    const int zeros[] = {0, 0, 0};
    CHECK(rc_roc_auc(s, ones, 3, &auc) == RC_ERR_INVALID_ARG, "all positive must fail");
    CHECK(strstr(rc_last_error(), "both classes") != NULL, "message: %s", rc_last_error());
    CHECK(rc_roc_auc(s, zeros, 3, &auc) == RC_ERR_INVALID_ARG, "all negative must fail");
    CHECK(rc_roc_auc(s, zeros, 0, &auc) == RC_ERR_INVALID_ARG, "no examples must fail");
    const int two[] = {0, 2, 1};
    CHECK(rc_roc_auc(s, two, 3, &auc) == RC_ERR_INVALID_ARG, "label 2 must fail");
    CHECK(strstr(rc_last_error(), "label[1]") != NULL, "message: %s", rc_last_error());
    const float nan_score[] = {1, NAN, 3};
    const int mixed[] = {0, 1, 1};
    CHECK(rc_roc_auc(nan_score, mixed, 3, &auc) == RC_ERR_INVALID_ARG, "NaN must fail");
    rc_pr_point *points = NULL;
    size_t n_points;
    CHECK(rc_precision_recall_curve(s, ones, 3, &points, &n_points) == RC_ERR_INVALID_ARG,
          "PR curve with one class must fail");
    rc_threshold_choice choice;
    CHECK(rc_threshold_for_recall(s, zeros, 3, 0.5, &choice) == RC_ERR_INVALID_ARG,
          "threshold with one class must fail");
}

static void test_pr_curve(void) {
    /* Thresholds (score >= t), from the top:
     *   0.9: tp 1 fp 0 -> P 1,   R 1/2
     *   0.8: tp 1 fp 1 -> P 1/2, R 1/2
     *   0.7: tp 2 fp 2 -> P 1/2, R 1     (the tied 0.7s enter together)
     *   0.3: tp 2 fp 3 -> P 2/5, R 1 */
    rc_pr_point *p = NULL;
    size_t n = 0;
    CHECK(rc_precision_recall_curve(score, label, 5, &p, &n) == RC_OK, "%s", rc_last_error());
    CHECK(n == 4, "%zu points (one per distinct score)", n);
    if (n == 4) {
        const float thresholds[] = {0.9f, 0.8f, 0.7f, 0.3f};
        const size_t tp[] = {1, 1, 2, 2}, fp[] = {0, 1, 2, 3};
        const double precision[] = {1.0, 0.5, 0.5, 0.4}, recall[] = {0.5, 0.5, 1.0, 1.0};
        for (int i = 0; i < 4; i++) {
            CHECK(p[i].threshold == thresholds[i], "point %d threshold %g", i, (double)p[i].threshold);
            CHECK(p[i].tp == tp[i] && p[i].fp == fp[i], "point %d tp %zu fp %zu", i, p[i].tp, p[i].fp);
            CHECK(fabs(p[i].precision - precision[i]) < 1e-15, "point %d precision %g", i, p[i].precision);
            CHECK(p[i].recall == recall[i], "point %d recall %g", i, p[i].recall);
        }
    }
    free(p);
}

static void test_threshold_for_precision(void) {
    rc_threshold_choice c;
    /* Precision >= 0.5 holds at 0.9, 0.8 and 0.7; the lowest is 0.7 (recall 1),
     * and the threshold sits halfway to the next score, 0.3. */
    CHECK(rc_threshold_for_precision(score, label, 5, 0.5, &c) == RC_OK, "%s", rc_last_error());
    CHECK(c.threshold == between(0.7f, 0.3f) && c.precision == 0.5 && c.recall == 1.0,
          "P>=0.5: t %g P %g R %g",
          (double)c.threshold, c.precision, c.recall);
    CHECK(c.tp == 2 && c.fp == 2 && c.fn == 0 && c.tn == 1, "confusion %zu %zu %zu %zu", c.tp, c.fp,
          c.fn, c.tn);
    /* Precision >= 0.6 holds only at 0.9. */
    CHECK(rc_threshold_for_precision(score, label, 5, 0.6, &c) == RC_OK, "%s", rc_last_error());
    CHECK(c.threshold == between(0.9f, 0.8f) && c.precision == 1.0 && c.recall == 0.5, "P>=0.6: t %g",
          (double)c.threshold);
    CHECK(c.tp == 1 && c.fp == 0 && c.fn == 1 && c.tn == 3, "confusion at 0.9");

    /* Precision that dips and recovers: scores 5..1, labels 1 0 1 1 0.
     *   t=5: 1/1 = 1; t=4: 1/2; t=3: 2/3; t=2: 3/4 (recall 1); t=1: 3/5.
     * For P >= 0.7 the lowest qualifying threshold is 2, past the dip at 4. */
    const float dip_score[] = {5, 4, 3, 2, 1};
    const int dip_label[] = {1, 0, 1, 1, 0};
    CHECK(rc_threshold_for_precision(dip_score, dip_label, 5, 0.7, &c) == RC_OK, "%s",
          rc_last_error());
    CHECK(c.threshold == 1.5f && c.precision == 0.75 && c.recall == 1.0, "dip: t %g P %g",
          (double)c.threshold, c.precision);

    /* Unreachable: the positive scores lowest, so the best precision is 1/2. */
    const float low_score[] = {1, 0};
    const int low_label[] = {0, 1};
    CHECK(rc_threshold_for_precision(low_score, low_label, 2, 0.9, &c) == RC_ERR_INVALID_ARG,
          "unreachable precision must fail");
    CHECK(strstr(rc_last_error(), "0.5000") != NULL, "message names the best precision: %s",
          rc_last_error());
    CHECK(rc_threshold_for_precision(score, label, 5, 0.0, &c) == RC_ERR_INVALID_ARG, "P = 0 must fail");
    CHECK(rc_threshold_for_precision(score, label, 5, 1.5, &c) == RC_ERR_INVALID_ARG, "P > 1 must fail");
}

static void test_threshold_for_recall(void) {
    rc_threshold_choice c;
    /* Recall >= 0.5 first holds at 0.9 (the highest threshold). */
    CHECK(rc_threshold_for_recall(score, label, 5, 0.5, &c) == RC_OK, "%s", rc_last_error());
    CHECK(c.threshold == between(0.9f, 0.8f) && c.recall == 0.5 && c.precision == 1.0, "R>=0.5: t %g",
          (double)c.threshold);
    /* Recall >= 0.75 first holds at 0.7 (recall 1, precision 1/2). */
    CHECK(rc_threshold_for_recall(score, label, 5, 0.75, &c) == RC_OK, "%s", rc_last_error());
    CHECK(c.threshold == between(0.7f, 0.3f) && c.recall == 1.0 && c.precision == 0.5, "R>=0.75: t %g",
          (double)c.threshold);
    CHECK(c.tp == 2 && c.fp == 2 && c.fn == 0 && c.tn == 1, "confusion at 0.7");
    CHECK(rc_threshold_for_recall(score, label, 5, 1.0, &c) == RC_OK && c.threshold == between(0.7f, 0.3f),
          "R>=1: t %g (above the lower 0.3)", (double)c.threshold);
    /* When the lowest score is accepted there is no next one: just below it. */
    const float lowest_positive[] = {3, 2, 1};
    const int neg_first[] = {0, 1, 1};
    CHECK(rc_threshold_for_recall(lowest_positive, neg_first, 3, 1.0, &c) == RC_OK &&
              c.threshold == 0.9995f && c.tp == 2 && c.fp == 1,
          "recall 1 at the lowest score: t %.7g", (double)c.threshold);
    /* Adjacent floats have no midpoint: the accepted score itself. */
    const float adjacent[] = {1.0f, nextafterf(1.0f, 0.0f)};
    const int upper_only[] = {1, 0};
    CHECK(rc_threshold_for_precision(adjacent, upper_only, 2, 1.0, &c) == RC_OK &&
              c.threshold == 1.0f && c.tp == 1 && c.fp == 0,
          "adjacent floats: t %.9g", (double)c.threshold);
    CHECK(rc_threshold_for_recall(score, label, 5, -0.1, &c) == RC_ERR_INVALID_ARG, "R < 0 must fail");
}

int main(void) {
    test_auc();
    test_degenerate();
    test_pr_curve();
    test_threshold_for_precision();
    test_threshold_for_recall();
    return test_finish("test_metrics_classification");
}
