/* Pairwise metrics on small cases whose expected values were worked out by
 * hand (the arithmetic is in the comments). */
#include <math.h>
#include <string.h>

#include "rewardc/eval.h"
#include "testlib.h"

static int near(double a, double b, double tolerance) { return fabs(a - b) <= tolerance; }

static void test_pairwise_stats(void) {
    /* differences r_c - r_r = 1, 0, -1, 3: one tie, one wrong, two right. */
    const float chosen[] = {2.0f, 1.0f, 0.5f, 3.0f};
    const float rejected[] = {1.0f, 1.0f, 1.5f, 0.0f};
    rc_pairwise_stats s;
    CHECK(rc_pairwise_stats_compute(chosen, rejected, NULL, 4, &s) == RC_OK, "%s", rc_last_error());
    CHECK(s.n_pairs == 4 && s.n_correct == 2 && s.n_ties == 1 && s.n_wrong == 1,
          "counts %zu %zu %zu %zu", s.n_pairs, s.n_correct, s.n_ties, s.n_wrong);
    CHECK(s.accuracy == 0.5, "accuracy %g (ties are not correct: 2/4)", s.accuracy);
    CHECK(s.tie_rate == 0.25, "tie rate %g", s.tie_rate);
    /* mean margin = (1 + 0 - 1 + 3) / 4 = 0.75 */
    CHECK(near(s.mean_margin, 0.75, 1e-12), "mean margin %g", s.mean_margin);
    /* loss = mean(log(1 + e^-d)):
     *   d=1: log(1+e^-1) = 0.313261687518223
     *   d=0: log 2       = 0.693147180559945
     *   d=-1: log(1+e)   = 1.313261687518223
     *   d=3: log(1+e^-3) = 0.048587351573742
     * sum 2.368257907170133, mean 0.592064476792533 */
    CHECK(near(s.loss, 0.592064476792533, 1e-12), "loss %.15f", s.loss);
    /* chosen: mean 6.5/4 = 1.625; squared deviations 0.140625 + 0.390625 +
     * 1.265625 + 1.890625 = 3.6875; /4 = 0.921875; sqrt = 0.960143218483576 */
    CHECK(near(s.chosen_mean, 1.625, 1e-12), "chosen mean %g", s.chosen_mean);
    CHECK(near(s.chosen_std, 0.960143218483576, 1e-12), "chosen std %.15f", s.chosen_std);
    /* rejected: mean 3.5/4 = 0.875; squared deviations 0.015625 + 0.015625 +
     * 0.390625 + 0.765625 = 1.1875; /4 = 0.296875; sqrt = 0.544862367942584 */
    CHECK(near(s.rejected_mean, 0.875, 1e-12), "rejected mean %g", s.rejected_mean);
    CHECK(near(s.rejected_std, 0.544862367942584, 1e-12), "rejected std %.15f", s.rejected_std);

    /* A margin of 0.5 on the first pair: its term becomes log(1 + e^-0.5) =
     * 0.474076984180107, so the mean rises by (0.474076984180107 -
     * 0.313261687518223)/4 = 0.040203824165471 to 0.632268300958004. */
    const float margin[] = {0.5f, 0.0f, 0.0f, 0.0f};
    CHECK(rc_pairwise_stats_compute(chosen, rejected, margin, 4, &s) == RC_OK, "%s", rc_last_error());
    CHECK(near(s.loss, 0.632268300958004, 1e-12), "loss with margin %.15f", s.loss);
    CHECK(s.accuracy == 0.5 && near(s.mean_margin, 0.75, 1e-12),
          "the margin changes only the loss");
}

static void test_extreme_rewards(void) {
    /* -logsigmoid(-1000) = 1000 (to double precision); -logsigmoid(1000) ~ 0.
     * A naive log(1 + exp(1000)) would be inf. */
    const float chosen[] = {0.0f, 1000.0f};
    const float rejected[] = {1000.0f, 0.0f};
    rc_pairwise_stats s;
    CHECK(rc_pairwise_stats_compute(chosen, rejected, NULL, 2, &s) == RC_OK, "%s", rc_last_error());
    CHECK(near(s.loss, 500.0, 1e-9), "loss %g (expected (1000 + 0)/2)", s.loss);
}

static void test_pairwise_errors(void) {
    rc_pairwise_stats s;
    const float one[] = {1.0f};
    CHECK(rc_pairwise_stats_compute(one, one, NULL, 0, &s) == RC_ERR_INVALID_ARG, "n = 0 must fail");
    const float bad[] = {NAN};
    CHECK(rc_pairwise_stats_compute(bad, one, NULL, 1, &s) == RC_ERR_INVALID_ARG, "NaN must fail");
    CHECK(strstr(rc_last_error(), "chosen reward[0]") != NULL, "message names the value: %s",
          rc_last_error());
}

static void test_length_buckets(void) {
    /* edges 10, 20 -> buckets (<10), [10,20), (>=20). Lengths 5 | 10, 15 | 25, 20. */
    const float chosen[] = {1, 1, 0, 2, 3};
    const float rejected[] = {0, 2, 0, 1, 0};
    const double length[] = {5, 10, 15, 25, 20};
    const double edges[] = {10, 20};
    rc_length_bucket b[3];
    CHECK(rc_accuracy_by_length(chosen, rejected, length, 5, edges, 2, b) == RC_OK, "%s",
          rc_last_error());
    /* bucket 0: pair 0 right -> 1/1 */
    CHECK(b[0].n_pairs == 1 && b[0].n_correct == 1 && b[0].accuracy == 1.0, "bucket 0");
    CHECK(isinf(b[0].lower) && b[0].lower < 0 && b[0].upper == 10, "bucket 0 bounds");
    /* bucket 1: pair 1 wrong, pair 2 tie -> 0/2, one tie (10 falls in [10,20)) */
    CHECK(b[1].n_pairs == 2 && b[1].n_correct == 0 && b[1].n_ties == 1 && b[1].accuracy == 0.0,
          "bucket 1: %zu pairs %zu correct %zu ties", b[1].n_pairs, b[1].n_correct, b[1].n_ties);
    /* bucket 2: pairs 3 and 4 right -> 2/2 (20 falls in [20, inf)) */
    CHECK(b[2].n_pairs == 2 && b[2].n_correct == 2 && b[2].accuracy == 1.0, "bucket 2");
    CHECK(b[2].lower == 20 && isinf(b[2].upper), "bucket 2 bounds");

    /* An empty bucket has NaN accuracy, not 0. */
    const double far_edges[] = {100, 200};
    CHECK(rc_accuracy_by_length(chosen, rejected, length, 5, far_edges, 2, b) == RC_OK, "%s",
          rc_last_error());
    CHECK(b[0].n_pairs == 5 && b[1].n_pairs == 0 && isnan(b[1].accuracy), "empty bucket");
    /* No edges: one bucket holding everything (3 of 5 right). */
    CHECK(rc_accuracy_by_length(chosen, rejected, length, 5, NULL, 0, b) == RC_OK, "%s",
          rc_last_error());
    CHECK(b[0].n_pairs == 5 && near(b[0].accuracy, 0.6, 1e-12), "single bucket %g", b[0].accuracy);
    const double unsorted[] = {20, 10};
    CHECK(rc_accuracy_by_length(chosen, rejected, length, 5, unsorted, 2, b) == RC_ERR_INVALID_ARG,
          "decreasing edges must fail");
    const double repeated[] = {10, 10};
    CHECK(rc_accuracy_by_length(chosen, rejected, length, 5, repeated, 2, b) == RC_ERR_INVALID_ARG,
          "repeated edges must fail");
}

static void test_correlation(void) {
    /* x = 1,2,3 (mean 2), y = 2,4,7 (mean 13/3). dx = -1,0,1; dy = -7/3,-1/3,8/3.
     * sxy = 7/3 + 8/3 = 5; sxx = 2; syy = (49 + 1 + 64)/9 = 114/9.
     * r = 5 / sqrt(2 * 114/9) = 5 / sqrt(25.333...) = 0.993399267798783 */
    const float reward[] = {1, 2, 3};
    const double length[] = {2, 4, 7};
    double r = 0;
    CHECK(rc_reward_length_correlation(reward, length, 3, &r) == RC_OK, "%s", rc_last_error());
    CHECK(near(r, 0.993399267798783, 1e-12), "r = %.15f", r);
    /* Reversing the lengths negates r. */
    const double reversed[] = {7, 4, 2};
    CHECK(rc_reward_length_correlation(reward, reversed, 3, &r) == RC_OK, "%s", rc_last_error());
    /* dy = 7-13/3 = 8/3, -1/3, -7/3: sxy = -8/3 - 7/3 = -5 -> r = -0.9933... */
    CHECK(near(r, -0.993399267798783, 1e-12), "r = %.15f", r);
    const double constant[] = {4, 4, 4};
    CHECK(rc_reward_length_correlation(reward, constant, 3, &r) == RC_ERR_INVALID_ARG,
          "constant length must fail");
    CHECK(strstr(rc_last_error(), "length is constant") != NULL, "message: %s", rc_last_error());
    CHECK(rc_reward_length_correlation(reward, length, 1, &r) == RC_ERR_INVALID_ARG, "n = 1 must fail");
}

int main(void) {
    test_pairwise_stats();
    test_extreme_rewards();
    test_pairwise_errors();
    test_length_buckets();
    test_correlation();
    return test_finish("test_metrics_pairwise");
}
