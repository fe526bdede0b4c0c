/* Training pieces: the pairwise (Bradley-Terry) loss, AdamW as
 * torch.optim.AdamW, global-norm clipping as clip_grad_norm_, and learning
 * rate schedules as transformers' get_scheduler. */
#ifndef REWARDC_TRAIN_H
#define REWARDC_TRAIN_H

#include <stddef.h>

#include "rewardc/model.h"
#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pairwise loss ----
 * rewards has 2*n_pairs entries: chosen rows 0..n-1, rejected rows n..2n-1.
 * loss = sum_i w_i * -logsigmoid(r_c - r_r - margin_i) / sum_i w_i
 *        + centering_coef * mean_i((r_c + r_r)^2)
 * margins and weights may be NULL (0 and 1). */
typedef struct {
    double loss;
    double accuracy;    /* fraction of pairs with r_c > r_r */
    double ties;        /* fraction with r_c == r_r */
    double mean_margin; /* mean(r_c - r_r) */
    int n_pairs;
} rc_pair_stats;

/* One pair's term, -logsigmoid(z) with z = r_c - r_r - margin, computed
 * without overflow for large |z|. Training's loss and evaluation's reported
 * loss (rc_pairwise_stats_compute) both sum it, so the two cannot drift. */
double rc_pair_loss_term(double z);

/* Computes the loss and, if d_rewards is not NULL, dLoss/dReward times
 * `grad_scale` (1/accumulation steps for gradient accumulation). */
void rc_pairwise_loss(const float *rewards, const float *margins, const float *weights,
                      int n_pairs, double centering_coef, double grad_scale, float *d_rewards,
                      rc_pair_stats *stats);

/* ---- learning-rate schedules (transformers.get_scheduler) ---- */
typedef enum {
    RC_SCHED_CONSTANT,
    RC_SCHED_CONSTANT_WITH_WARMUP,
    RC_SCHED_LINEAR,
    RC_SCHED_COSINE
} rc_schedule_kind;

rc_status rc_schedule_parse(const char *name, rc_schedule_kind *out);
const char *rc_schedule_name(rc_schedule_kind kind);
/* Multiplier of the base rate for the optimizer step that follows `step`
 * completed steps (LambdaLR's lr_lambda(step)). */
double rc_schedule_factor(rc_schedule_kind kind, long step, long warmup_steps, long total_steps);

/* ---- AdamW ---- */
typedef struct {
    double learning_rate, beta1, beta2, epsilon, weight_decay;
} rc_adamw_config;

typedef struct rc_adamw rc_adamw;

rc_status rc_adamw_create(rc_model *m, const rc_adamw_config *cfg, rc_adamw **out);
/* ZeRO-1 in a data-parallel job: keeps the moments of this rank's slice of
 * the flat parameter buffer only (rc_dist_shard) and steps only that slice.
 * Its get_state is collective: every rank calls it at once, and rank 0
 * receives the whole state (the others may pass NULL arrays); set_state
 * takes this rank's slice of the whole state. */
rc_status rc_adamw_create_sharded(rc_model *m, const rc_adamw_config *cfg, rc_adamw **out);
void rc_adamw_free(rc_adamw *opt);
/* One step over every parameter at learning rate `lr`, on the gradients times
 * grad_scale (rc_clip_factor's clipping factor, 1 for none: the gradients are
 * read scaled, not rewritten). Weight decay is skipped for biases and
 * LayerNorm weights, as transformers' Trainer groups them. */
rc_status rc_adamw_step(rc_adamw *opt, double lr, double grad_scale);
long rc_adamw_steps_taken(const rc_adamw *opt);
/* Optimizer state for checkpoints: the two moments, host copies of the
 * whole flat buffer (n elements). */
rc_status rc_adamw_get_state(rc_adamw *opt, float *m, float *v, size_t n, long *step);
rc_status rc_adamw_set_state(rc_adamw *opt, const float *m, const float *v, size_t n, long step);
size_t rc_adamw_state_size(const rc_adamw *opt);

/* clip_grad_norm_ in two halves: the total L2 norm of all gradients, and the
 * factor that scales them to max_norm, max_norm / (norm + 1e-6) when that is
 * below 1, else 1 (also when max_norm <= 0). rc_adamw_step applies it. */
double rc_grad_norm(rc_model *m);
double rc_clip_factor(double norm, double max_norm);

#ifdef __cplusplus
}
#endif
#endif
