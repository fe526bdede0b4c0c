/* Training checkpoints: output_dir/checkpoint-<step>/ holds an HF model folder
 * plus optimizer.safetensors (AdamW moments) and trainer_state.json (step and
 * data position) and the log so far. Each is assembled in a temporary folder
 * and renamed into place, so a crash never leaves a partial checkpoint-<step>. */
#ifndef REWARDC_TRAIN_CHECKPOINT_H
#define REWARDC_TRAIN_CHECKPOINT_H

#include <stdio.h>

#include "rewardc/trainer.h"

typedef struct {
    long global_step;    /* optimizer steps taken */
    long epoch;          /* current epoch (0-based) */
    long batch_in_epoch; /* micro-batches of this epoch already consumed */
    /* the logging window in progress, so a resumed run logs the same averages */
    double window_loss_sum, window_acc_sum;
    long window_steps;
} rc_train_state;

/* Refuses to overwrite an earlier run's checkpoints, log or summary unless
 * overwrite (which removes them) or resume is set; removes stale temp folders.
 * output_dir itself is created later, when the log opens. */
rc_status rc_checkpoint_prepare_output(const char *output_dir, int overwrite, int resume);
/* The newest complete checkpoint folder; an error when there is none. */
rc_status rc_checkpoint_latest(const char *output_dir, char *path, size_t size);
/* Reads trainer_state.json and optimizer.safetensors; every field must lie
 * in [0, limits->field] (this run's total steps, epochs and batches per
 * epoch), else an error naming the field, the range and the file. */
rc_status rc_checkpoint_load_state(const char *checkpoint_dir, const rc_train_state *limits,
                                   rc_adamw *opt, rc_train_state *state);
/* Opens output_dir/train_log.jsonl for appending, first restoring the
 * checkpoint's copy of it when resuming (so the log matches the replay). */
rc_status rc_checkpoint_open_log(const char *output_dir, const char *resume_dir, FILE **log);
rc_status rc_checkpoint_save(const char *output_dir, const char *tokenizer_dir, rc_model *m,
                             const rc_reward_meta *meta, rc_adamw *opt, const rc_train_state *state,
                             int save_total_limit);
/* The final model in output_dir itself, with training_summary.json. */
rc_status rc_checkpoint_save_final(const char *output_dir, const char *tokenizer_dir, rc_model *m,
                                   const rc_reward_meta *meta, const rc_train_summary *summary);

#endif
