/* The pairwise reward-model loss and its gradient with respect to rewards. */
#include <math.h>

#include "rewardc/train.h"

/* -logsigmoid(z) = softplus(-z) = log(1 + exp(-z)); each branch exponentiates
 * a non-positive number, so neither overflows. */
double rc_pair_loss_term(double z) { return z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z)); }

static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void rc_pairwise_loss(const float *rewards, const float *margins, const float *weights,
                      int n_pairs, double centering_coef, double grad_scale, float *d_rewards,
                      rc_pair_stats *stats) {
    const float *chosen = rewards, *rejected = rewards + n_pairs;
    double weight_sum = 0.0, loss = 0.0, centering = 0.0, margin_sum = 0.0;
    int wins = 0, ties = 0;
    for (int i = 0; i < n_pairs; i++) weight_sum += weights ? weights[i] : 1.0;
    for (int i = 0; i < n_pairs; i++) {
        double w = weights ? weights[i] : 1.0;
        double diff = (double)chosen[i] - (double)rejected[i];
        double z = diff - (margins ? margins[i] : 0.0);
        double sum = (double)chosen[i] + (double)rejected[i];
        loss += w * rc_pair_loss_term(z);
        centering += sum * sum;
        margin_sum += diff;
        wins += chosen[i] > rejected[i];
        ties += chosen[i] == rejected[i];
        if (d_rewards) {
            /* d/dz -logsigmoid(z) = -sigmoid(-z); centering: 2 c (r_c + r_r) / n */
            double dz = -sigmoid(-z) * w / weight_sum;
            double dc = 2.0 * centering_coef * sum / n_pairs;
            d_rewards[i] = (float)((dz + dc) * grad_scale);
            d_rewards[n_pairs + i] = (float)((-dz + dc) * grad_scale);
        }
    }
    if (stats) {
        stats->loss = loss / weight_sum + centering_coef * centering / n_pairs;
        stats->accuracy = (double)wins / n_pairs;
        stats->ties = (double)ties / n_pairs;
        stats->mean_margin = margin_sum / n_pairs;
        stats->n_pairs = n_pairs;
    }
}
