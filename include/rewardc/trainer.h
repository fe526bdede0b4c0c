/* The training loop of `rewardc train`: batches of chosen/rejected pairs with
 * dynamic padding, gradient accumulation, clipping, AdamW with a schedule,
 * logging, periodic evaluation, crash-safe checkpoints and exact resume.
 * Option names follow transformers' TrainingArguments. */
#ifndef REWARDC_TRAINER_H
#define REWARDC_TRAINER_H

#include <stdint.h>

#include "rewardc/data.h"
#include "rewardc/train.h"
#include "rewardc/workflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double learning_rate;
    double num_train_epochs;
    long max_steps;                  /* > 0 overrides num_train_epochs */
    int per_device_train_batch_size; /* pairs per micro-batch */
    int per_device_eval_batch_size;
    int gradient_accumulation_steps;
    long warmup_steps;
    double warmup_ratio;             /* used when warmup_steps is 0 */
    rc_schedule_kind lr_scheduler_type;
    double weight_decay, max_grad_norm, adam_beta1, adam_beta2, adam_epsilon;
    long logging_steps, eval_steps, save_steps; /* 0: never (eval/save still at the end) */
    int save_total_limit;            /* 0: keep all checkpoints */
    uint64_t seed;
    const char *output_dir;
    int overwrite_output_dir;
    /* reward-model options */
    double centering_coef;           /* coef * mean((r_c + r_r)^2) */
    int group_by_length;             /* bucket batches by length to cut padding */
    int share_prompt_prefix;         /* a pair's shared prefix computed once (default on) */
    const char *backend;
    int device;
    int quiet;                       /* no progress display */
    long stop_after_steps;           /* testing aid: exit cleanly after this many steps (0: off) */
    const rc_encode_policy *policy;  /* stored with the model (NULL: keep the model folder's) */
    rc_trainable_config trainable;   /* what trains (default: every parameter) */
    int gradient_checkpointing;      /* recompute each layer in backward (same results) */
    /* data-parallel jobs (mpirun -np N): each rank takes every N-th
     * micro-batch of each optimizer step's N x gradient_accumulation_steps */
    int zero_stage;                  /* 1: optimizer state sharded over ranks (ZeRO-1) */
    long allreduce_bucket_elements;  /* floats per gradient collective (0: default) */
} rc_train_args;

void rc_train_args_default(rc_train_args *args);

typedef struct {
    const rc_encoded_pairs *pairs;
    const rc_pair_list *source; /* margins and weights, indexed by pairs->items[i].source */
} rc_train_data;

typedef struct {
    long steps;
    double final_loss;      /* mean over the last logging window */
    double eval_accuracy, eval_loss, eval_ties;
    double reward_mean, reward_std;
    double seconds, tokens_per_second;
    size_t tokens;               /* real tokens of the sequences trained on */
    size_t shared_prefix_tokens; /* of those, prompt-prefix tokens computed once for two */
} rc_train_summary;

/* Trains the model in `model_dir` on `train`, evaluating on `eval` (may have
 * n == 0), writing checkpoints and the final model to args->output_dir.
 * resume: continue from the latest complete checkpoint in output_dir. */
rc_status rc_train(const char *model_dir, const rc_train_args *args, const rc_train_data *train,
                   const rc_train_data *eval, int resume, rc_train_summary *summary);

/* Evaluates pairs with a training model (no gradients); rewards (2 per pair:
 * chosen then rejected, per pair) may be NULL. share_prefix: as in training. */
rc_status rc_eval_pairs(rc_model *m, const rc_train_data *data, int batch_pairs, double centering,
                        int share_prefix, rc_pair_stats *stats, float *rewards);

#ifdef __cplusplus
}
#endif
#endif
