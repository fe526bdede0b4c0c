/* The training loop: data order, micro-batches, the optimizer step, logging,
 * evaluation and checkpoints (see rewardc/trainer.h). */
#define _POSIX_C_SOURCE 200809L
#include "rewardc/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "dist/grad_sync.h"
#include "rewardc/io.h"
#include "train/checkpoint.h"

void rc_train_args_default(rc_train_args *a) {
    memset(a, 0, sizeof *a);
    /* transformers.TrainingArguments defaults */
    a->learning_rate = 5e-5;
    a->num_train_epochs = 3.0;
    a->per_device_train_batch_size = 8;
    a->per_device_eval_batch_size = 8;
    a->gradient_accumulation_steps = 1;
    a->lr_scheduler_type = RC_SCHED_LINEAR;
    a->max_grad_norm = 1.0;
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->logging_steps = 500;
    a->save_steps = 500;
    a->seed = 42;
    a->output_dir = "trainer_output";
    a->backend = "cpu";
    a->share_prompt_prefix = 1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t pair_length(const rc_encoded_pair *p) {
    return p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected;
}

/* ---- data order ---- */

typedef struct {
    const rc_encoded_pairs *pairs;
    size_t *order; /* pair indices of the current epoch */
    long epoch;
} data_order;

static int compare_by_length_desc(const void *a, const void *b, const rc_encoded_pairs *pairs) {
    size_t la = pair_length(&pairs->items[*(const size_t *)a]);
    size_t lb = pair_length(&pairs->items[*(const size_t *)b]);
    if (la != lb) return la < lb ? 1 : -1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Insertion sort keeps it stable and needs no comparator context (qsort has none). */
static void sort_chunk_by_length(size_t *idx, size_t n, const rc_encoded_pairs *pairs) {
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && compare_by_length_desc(&idx[j - 1], &v, pairs) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* The epoch's order depends only on (seed, epoch), so a resumed run replays it.
 * group_by_length sorts "megabatches" of 50 batches by length, as transformers'
 * LengthGroupedSampler does, so each batch holds similar lengths. */
static void make_order(data_order *o, const rc_train_args *args, long epoch) {
    size_t n = o->pairs->n;
    for (size_t i = 0; i < n; i++) o->order[i] = i;
    rc_shuffle_indices(o->order, n, args->seed + 0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
    if (args->group_by_length) {
        size_t mega = (size_t)args->per_device_train_batch_size * 50;
        for (size_t start = 0; start < n; start += mega)
            sort_chunk_by_length(o->order + start, n - start < mega ? n - start : mega, o->pairs);
    }
    o->epoch = epoch;
}

/* ---- one micro-batch ---- */

typedef struct {
    int32_t *ids, *mask, *pos, *score_at;
    float *rewards, *d_rewards, *margins, *weights;
    const int32_t **seqs;
    size_t *lens;
} batch_buffers;

/* What a micro-batch held: real tokens, prompt-prefix tokens computed once
 * rather than twice, and whether any pair carries a weight. */
typedef struct {
    size_t tokens, shared;
    int has_weights;
} batch_info;

/* Forward of the pairs indices[0..count): rewards chosen 0..count-1, rejected
 * count..2count-1. With share_prefix each pair shares one row and its prompt
 * prefix is computed once (rc_pack_pairs), when that costs fewer FLOPs than
 * one padded row per sequence and fits the reserved memory. */
static rc_status forward_pairs(rc_model *m, batch_buffers *bb, const rc_train_data *data,
                               const size_t *indices, int count, int share_prefix,
                               batch_info *info) {
    const rc_model_config *cfg = rc_model_get_config(m);
    const int32_t pad = (int32_t)cfg->pad_token_id;
    memset(info, 0, sizeof *info);
    int T_rows = 1, non_empty = 1;
    for (int i = 0; i < count; i++) {
        const rc_encoded_pair *p = &data->pairs->items[indices[i]];
        bb->seqs[i] = p->chosen;
        bb->lens[i] = p->n_chosen;
        bb->seqs[count + i] = p->rejected;
        bb->lens[count + i] = p->n_rejected;
        info->tokens += p->n_chosen + p->n_rejected;
        const rc_pair *src = &data->source->items[p->source];
        bb->margins[i] = src->has_margin ? (float)src->margin : 0.0f;
        bb->weights[i] = src->has_weight ? (float)src->weight : 1.0f;
        info->has_weights |= src->has_weight;
        if ((int)pair_length(p) > T_rows) T_rows = (int)pair_length(p);
        non_empty &= p->n_chosen > 0 && p->n_rejected > 0;
    }
    if (share_prefix && non_empty) {
        int T = rc_packed_pairs_length(bb->seqs, bb->lens, count);
        if (rc_model_forward_flops(cfg, count, T, 2 * count) <
                rc_model_forward_flops(cfg, 2 * count, T_rows, 2 * count) &&
            rc_model_batch_fits(m, count, T, 2 * count)) {
            rc_pack_pairs(bb->seqs, bb->lens, count, pad, bb->ids, bb->mask, bb->pos, bb->score_at,
                          &info->shared);
            rc_packed_batch packed = {bb->ids, bb->mask, bb->pos, bb->score_at, count, T, 2 * count};
            return rc_model_forward_packed(m, &packed, bb->rewards);
        }
    }
    int T = rc_pad_batch(bb->seqs, bb->lens, 2 * count, pad, bb->ids, bb->mask);
    return rc_model_forward(m, bb->ids, bb->mask, 2 * count, T, bb->rewards);
}

static rc_status alloc_batch(batch_buffers *bb, int max_pairs, size_t max_len) {
    size_t rows = 2 * (size_t)max_pairs;
    bb->ids = malloc(rows * max_len * sizeof *bb->ids);
    bb->mask = malloc(rows * max_len * sizeof *bb->mask);
    bb->pos = malloc(rows * max_len * sizeof *bb->pos); /* a packed pair fills <= 2 max_len */
    bb->score_at = malloc(rows * sizeof *bb->score_at);
    bb->rewards = malloc(rows * sizeof *bb->rewards);
    bb->d_rewards = malloc(rows * sizeof *bb->d_rewards);
    bb->margins = malloc(rows * sizeof *bb->margins);
    bb->weights = malloc(rows * sizeof *bb->weights);
    bb->seqs = malloc(rows * sizeof *bb->seqs);
    bb->lens = malloc(rows * sizeof *bb->lens);
    if (!bb->ids || !bb->mask || !bb->pos || !bb->score_at || !bb->rewards || !bb->d_rewards ||
        !bb->margins || !bb->weights || !bb->seqs || !bb->lens)
        return rc_fail(RC_ERR_OOM, "cannot allocate batch buffers");
    return RC_OK;
}

static void free_batch(batch_buffers *bb) {
    free(bb->ids);
    free(bb->mask);
    free(bb->pos);
    free(bb->score_at);
    free(bb->rewards);
    free(bb->d_rewards);
    free(bb->margins);
    free(bb->weights);
    free(bb->seqs);
    free(bb->lens);
}

static size_t max_encoded_length(const rc_encoded_pairs *pairs) {
    size_t longest = 1;
    for (size_t i = 0; i < pairs->n; i++)
        if (pair_length(&pairs->items[i]) > longest) longest = pair_length(&pairs->items[i]);
    return longest;
}

/* The pairs this rank of a data-parallel job evaluates: a contiguous block,
 * so that gathering the blocks in rank order keeps the input order. */
static rc_status eval_gather(const rc_train_data *data, double sums[4], float *rewards) {
    rc_status st = rc_dist_allreduce_sum_f64(sums, 4);
    if (st != RC_OK || !rewards || rc_dist_size() == 1) return st;
    int *counts = malloc((size_t)rc_dist_size() * sizeof *counts);
    if (!counts) return rc_fail(RC_ERR_OOM, "cannot allocate eval gather counts");
    for (int r = 0; r < rc_dist_size(); r++) {
        size_t lo, hi;
        rc_dist_shard(data->pairs->n, r, rc_dist_size(), &lo, &hi);
        counts[r] = (int)(2 * (hi - lo));
    }
    st = rc_dist_allgather_f32(rewards, counts);
    free(counts);
    return st;
}

rc_status rc_eval_pairs(rc_model *m, const rc_train_data *data, int batch_pairs, double centering,
                        int share_prefix, rc_pair_stats *stats, float *rewards) {
    memset(stats, 0, sizeof *stats);
    size_t n = data->pairs->n, first, end;
    if (n == 0) return RC_OK;
    rc_dist_shard(n, rc_dist_rank(), rc_dist_size(), &first, &end);
    batch_buffers bb = {0};
    size_t *indices = malloc(n * sizeof *indices);
    rc_status st = indices ? alloc_batch(&bb, batch_pairs, max_encoded_length(data->pairs))
                           : rc_fail(RC_ERR_OOM, "cannot allocate eval order");
    double loss_sum = 0.0, acc_sum = 0.0, tie_sum = 0.0, margin_sum = 0.0;
    for (size_t i = 0; i < n && indices; i++) indices[i] = i;
    rc_model_set_grad_enabled(m, 0); /* nothing kept for a backward */
    for (size_t start = first; start < end && st == RC_OK; start += (size_t)batch_pairs) {
        int count = (int)(end - start < (size_t)batch_pairs ? end - start : (size_t)batch_pairs);
        batch_info info;
        st = forward_pairs(m, &bb, data, indices + start, count, share_prefix, &info);
        if (st != RC_OK) break;
        rc_pair_stats s;
        rc_pairwise_loss(bb.rewards, bb.margins, NULL, count, centering, 1.0, NULL, &s);
        loss_sum += s.loss * count;
        acc_sum += s.accuracy * count;
        tie_sum += s.ties * count;
        margin_sum += s.mean_margin * count;
        if (rewards)
            for (int i = 0; i < count; i++) {
                rewards[2 * (start + i)] = bb.rewards[i];
                rewards[2 * (start + i) + 1] = bb.rewards[count + i];
            }
    }
    rc_model_set_grad_enabled(m, 1);
    double sums[4] = {loss_sum, acc_sum, tie_sum, margin_sum};
    if (st == RC_OK) st = eval_gather(data, sums, rewards);
    stats->loss = sums[0] / n;
    stats->accuracy = sums[1] / n;
    stats->ties = sums[2] / n;
    stats->mean_margin = sums[3] / n;
    stats->n_pairs = (int)n;
    free(indices);
    free_batch(&bb);
    return st;
}

/* ---- what trains ---- */

/* A model loaded from an adapter folder (a LoRA run being resumed or
 * continued) trains its adapters as they are; otherwise the set asked for. */
static rc_status choose_trainable(rc_model *m, const rc_train_args *a) {
    if (rc_model_lora_scale(m) != 0.0) {
        if (a->trainable.scope != RC_TRAIN_LORA && a->trainable.scope != RC_TRAIN_ALL)
            return rc_fail(RC_ERR_INVALID_ARG,
                           "the model folder holds LoRA adapters: they are what trains (merge "
                           "them first with rewardc export --merge to train otherwise)");
        const rc_trainable_config *have = rc_model_trainable(m);
        if (a->trainable.scope == RC_TRAIN_LORA &&
            (a->trainable.lora_r != have->lora_r || a->trainable.lora_alpha != have->lora_alpha ||
             a->trainable.use_rslora != have->use_rslora))
            return rc_fail(RC_ERR_INVALID_ARG,
                           "the model folder's adapters have r %d, alpha %g%s; the run asks for "
                           "r %d, alpha %g%s", have->lora_r, have->lora_alpha,
                           have->use_rslora ? " (rsLoRA)" : "", a->trainable.lora_r,
                           a->trainable.lora_alpha, a->trainable.use_rslora ? " (rsLoRA)" : "");
        return RC_OK;
    }
    if (a->trainable.scope == RC_TRAIN_ALL) return RC_OK;
    return rc_model_set_trainable(m, &a->trainable, a->seed);
}

static const char *trainable_description(const rc_model *m) {
    static char text[160];
    const rc_trainable_config *t = rc_model_trainable(m);
    switch (t->scope) {
    case RC_TRAIN_HEAD: return "the score head";
    case RC_TRAIN_TOP_LAYERS:
        snprintf(text, sizeof text, "the top %d layers and the head", t->top_layers);
        return text;
    case RC_TRAIN_LORA:
        snprintf(text, sizeof text, "LoRA r %d, alpha %g%s on %s, and the head", t->lora_r,
                 t->lora_alpha, t->use_rslora ? " (rsLoRA)" : "",
                 t->lora_target_modules ? t->lora_target_modules : "?");
        return text;
    default: return "all";
    }
}

/* ---- progress ---- */

static void format_duration(double seconds, char *out, size_t size) {
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(out, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
}

typedef struct {
    FILE *log;         /* train_log.jsonl */
    int lead;          /* rank 0 of a data-parallel job (or the only process): it reports */
    int tty;
    double start, window_start;
    double loss_sum, acc_sum;
    long window_steps;
    size_t window_tokens, total_tokens;
    size_t shared_tokens; /* prompt-prefix tokens computed once instead of twice */
} progress;

/* A number to the precision the log gives it (format: "%.6f", "%.6e"...):
 * printed, read back, and stored as that decimal, so the log shows the digits
 * that are meaningful and two runs compare line for line. */
static void log_number(cJSON *line, const char *key, const char *format, double value) {
    char text[64];
    snprintf(text, sizeof text, format, value);
    cJSON_AddNumberToObject(line, key, strtod(text, NULL));
}

/* A line of train_log.jsonl (rank 0 alone has the log): an object with the
 * step and epoch, to which the caller adds its numbers. NULL without a log. */
static cJSON *log_entry(const progress *pr, long step, double epoch) {
    cJSON *line = pr->log ? cJSON_CreateObject() : NULL;
    if (!line) return NULL;
    cJSON_AddNumberToObject(line, "step", (double)step);
    log_number(line, "epoch", "%.4f", epoch);
    return line;
}

/* Writes the line and frees it. Like a full disk, running out of memory
 * costs a log line, not the run. */
static void log_write(progress *pr, cJSON *line) {
    char *text = line ? cJSON_PrintUnformatted(line) : NULL;
    if (text) {
        fprintf(pr->log, "%s\n", text);
        fflush(pr->log);
    }
    cJSON_free(text);
    cJSON_Delete(line);
}

/* The numbers of an evaluation, for the log. */
static void log_eval_stats(cJSON *line, const rc_pair_stats *e) {
    if (!line) return;
    log_number(line, "eval_loss", "%.6f", e->loss);
    log_number(line, "eval_accuracy", "%.6f", e->accuracy);
    log_number(line, "eval_ties", "%.6f", e->ties);
    log_number(line, "eval_mean_margin", "%.6f", e->mean_margin);
    cJSON_AddNumberToObject(line, "eval_pairs", e->n_pairs);
}

/* ---- the loop ---- */

/* Micro-batches per optimizer step: gradient_accumulation_steps on each rank. */
static long micro_batches_per_step(const rc_train_args *a) {
    return (long)a->gradient_accumulation_steps * rc_dist_size();
}

static long total_steps_for(const rc_train_args *a, size_t n_pairs, long *steps_per_epoch) {
    long batches = (long)((n_pairs + (size_t)a->per_device_train_batch_size - 1) /
                          (size_t)a->per_device_train_batch_size);
    *steps_per_epoch = (batches + micro_batches_per_step(a) - 1) / micro_batches_per_step(a);
    if (a->max_steps > 0) return a->max_steps;
    return (long)ceil(a->num_train_epochs * (double)*steps_per_epoch);
}

static rc_status evaluate(rc_model *m, const rc_train_args *a, const rc_train_data *eval, long step,
                          double epoch, progress *pr, rc_pair_stats *stats) {
    rc_status st = rc_eval_pairs(m, eval, a->per_device_eval_batch_size, a->centering_coef,
                                 a->share_prompt_prefix, stats, NULL);
    if (st != RC_OK) return st;
    cJSON *line = log_entry(pr, step, epoch);
    log_eval_stats(line, stats);
    log_write(pr, line);
    if (pr->lead)
        fprintf(stderr, "%seval  step %ld | epoch %.2f | loss %.4f | accuracy %.4f (ties %.4f) | %d pairs\n",
            pr->tty ? "\r\033[K" : "", step, epoch, stats->loss, stats->accuracy, stats->ties,
            stats->n_pairs);
    return RC_OK;
}

/* A rank other than 0 at a checkpoint of a ZeRO-1 run: rank 0 saves the
 * whole optimizer state, and this rank sends its slice of it. */
static rc_status take_part_in_save(rc_adamw *opt) {
    long step;
    return rc_adamw_get_state(opt, NULL, NULL, rc_adamw_state_size(opt), &step);
}

/* ---- one run, in steps ---- */

/* Everything a run holds, so that each step below reads on its own. */
typedef struct {
    const rc_train_args *a;
    const rc_train_data *train, *eval; /* eval may be NULL or empty */
    const char *model_dir;
    /* in a data-parallel job rank 0 alone owns output_dir: it locks it,
     * writes the log, checkpoints and the final model; the others read */
    int lead;
    rc_dir_lock *lock;
    char resume_dir[4096]; /* the checkpoint this run continues, "" when fresh */
    rc_reward_meta meta;
    rc_backend *be;
    rc_model *m;
    rc_adamw *opt;
    rc_grad_sync *sync;
    batch_buffers bb;
    data_order order;
    progress pr;
    rc_train_state state;
    long total_steps, steps_per_epoch, batches_per_epoch, warmup, steps_this_run;
    int max_pairs;  /* pairs of the largest batch, training or evaluation */
    size_t max_len; /* tokens of the longest encoded sequence */
    rc_pair_stats last_eval;
    double last_loss;
} train_run;

/* What one optimizer step did. */
typedef struct {
    double loss, accuracy, grad_norm, lr;
    long group; /* micro-batches of the epoch it consumed */
} step_result;

static int has_eval(const train_run *r) { return r->eval && r->eval->pairs->n; }

static double epoch_progress(const train_run *r) {
    return (double)r->state.epoch + (double)r->state.batch_in_epoch / (double)r->batches_per_epoch;
}

static rc_status check_args(const rc_train_args *a, const rc_train_data *train) {
    if (train->pairs->n == 0) return rc_fail(RC_ERR_INVALID_ARG, "the training set has no pairs");
    if (a->per_device_train_batch_size <= 0 || a->gradient_accumulation_steps <= 0 ||
        a->per_device_eval_batch_size <= 0)
        return rc_fail(RC_ERR_INVALID_ARG, "batch sizes and gradient_accumulation_steps must be positive");
    return RC_OK;
}

/* The lock is held for the whole run, taken before anything in output_dir is
 * touched: a second run on the same folder must not delete this one's
 * half-written checkpoint or mix its log with ours. Every rank learns which
 * checkpoint (if any) the run resumes from. */
static rc_status open_output_dir(train_run *r, int resume) {
    const rc_train_args *a = r->a;
    if (r->lead) {
        rc_status st = rc_dir_lock_acquire(a->output_dir, &r->lock);
        if (st != RC_OK) return rc_fail_context(st, "output_dir");
        st = rc_checkpoint_prepare_output(a->output_dir, a->overwrite_output_dir, resume);
        /* resume from the newest complete checkpoint, else start from model_dir */
        if (st == RC_OK && resume)
            st = rc_checkpoint_latest(a->output_dir, r->resume_dir, sizeof r->resume_dir);
        if (st != RC_OK) return st;
    }
    return rc_dist_broadcast(r->resume_dir, sizeof r->resume_dir, 0);
}

static void report_memory(const train_run *r) {
    const rc_train_args *a = r->a;
    rc_memory_plan plan = rc_model_memory_plan(r->m);
    fprintf(stderr,
            "rewardc train: %.2fM parameters (%.3fM trainable: %s) on %s (%s); memory: "
            "weights %.1f MB, gradients %.1f MB, AdamW %.1f MB, activations %.1f MB (%d "
            "sequences x %zu tokens%s)\n",
            plan.total_params / 1e6, plan.trainable_params / 1e6, trainable_description(r->m),
            r->be->name, r->be->device, plan.params / 1e6, plan.grads / 1e6,
            plan.optimizer / 1e6 / (a->zero_stage ? rc_dist_size() : 1),
            plan.activations / 1e6, 2 * r->max_pairs, r->max_len,
            a->gradient_checkpointing ? ", gradient checkpointing" : "");
    if (rc_dist_size() > 1)
        fprintf(stderr, "rewardc train: data parallel over %d ranks (%s), ZeRO-%d\n",
                rc_dist_size(), rc_dist_library(), a->zero_stage);
}

/* The model (from the checkpoint resumed, else model_dir) on its backend,
 * with memory reserved for the largest batch, and the same parameters on
 * every rank. */
static rc_status load_model(train_run *r) {
    const rc_train_args *a = r->a;
    const char *load_from = r->resume_dir[0] ? r->resume_dir : r->model_dir;
    rc_status st = rc_reward_meta_load(load_from, &r->meta);
    if (st == RC_OK && a->policy) r->meta.policy = *a->policy;
    /* The folder's threshold and reward statistics belong to the weights
     * before this run: a new run's rewards are on another scale. Resumed
     * runs keep what their own checkpoint says. */
    if (st == RC_OK && !r->resume_dir[0] && (r->meta.has_threshold || r->meta.has_reward_stats)) {
        if (r->meta.has_threshold && rc_dist_rank() == 0)
            fprintf(stderr, "rewardc train: the starting model's threshold (%g) is for its own "
                    "rewards: not carried over; choose one again with rewardc eval "
                    "--target_precision\n", r->meta.threshold);
        r->meta.has_threshold = r->meta.has_reward_stats = 0;
    }
    /* a model trained on conversations scores them as it saw them: rendered */
    for (size_t i = 0; i < r->train->source->n && !r->meta.chat; i++)
        r->meta.chat = rc_pair_is_conversational(&r->train->source->items[i]);
    if (st == RC_OK) st = rc_backend_create(a->backend, a->device, &r->be);
    if (st == RC_OK) st = rc_model_load(load_from, r->be, a->seed, &r->m, NULL);
    if (st == RC_OK) st = choose_trainable(r->m, a);
    if (st == RC_OK) rc_model_set_gradient_checkpointing(r->m, a->gradient_checkpointing);
    r->max_pairs = a->per_device_train_batch_size;
    r->max_len = max_encoded_length(r->train->pairs);
    if (has_eval(r)) { /* evaluation batches must fit too */
        if (a->per_device_eval_batch_size > r->max_pairs) r->max_pairs = a->per_device_eval_batch_size;
        if (max_encoded_length(r->eval->pairs) > r->max_len) r->max_len = max_encoded_length(r->eval->pairs);
    }
    if (st == RC_OK) st = rc_model_reserve(r->m, 2 * r->max_pairs, (int)r->max_len, 1);
    if (st == RC_OK)
        st = rc_grad_sync_create(r->m, a->zero_stage, (size_t)a->allreduce_bucket_elements, &r->sync);
    if (st == RC_OK) st = rc_grad_sync_broadcast_params(r->sync);
    if (st == RC_OK && r->lead) report_memory(r);
    return st;
}

/* AdamW (sharded under ZeRO-1), the batch buffers, the optimizer state and
 * data position of a resumed run, and the log. */
static rc_status prepare_optimizer(train_run *r) {
    const rc_train_args *a = r->a;
    rc_adamw_config opt_cfg = {a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon,
                               a->weight_decay};
    rc_status st = a->zero_stage ? rc_adamw_create_sharded(r->m, &opt_cfg, &r->opt)
                                 : rc_adamw_create(r->m, &opt_cfg, &r->opt);
    if (st == RC_OK) st = alloc_batch(&r->bb, r->max_pairs, r->max_len);
    if (st == RC_OK && r->resume_dir[0]) {
        const rc_train_state limits = {
            .global_step = r->total_steps,
            .epoch = (r->total_steps + r->steps_per_epoch - 1) / r->steps_per_epoch,
            .batch_in_epoch = r->batches_per_epoch};
        st = rc_checkpoint_load_state(r->resume_dir, &limits, r->opt, &r->state);
        if (st == RC_OK && r->lead)
            fprintf(stderr, "rewardc train: resumed from %s at step %ld (epoch %ld, batch %ld)\n",
                    r->resume_dir, r->state.global_step, r->state.epoch, r->state.batch_in_epoch);
    }
    if (st == RC_OK && r->lead) st = rc_checkpoint_open_log(a->output_dir, r->resume_dir, &r->pr.log);
    return st;
}

/* One optimizer step: the next accumulation group of this epoch, forward,
 * loss and backward per micro-batch (rank r of a data-parallel job takes its
 * micro-batches r, r + N, ...), gradients summed over the ranks, clipped, and
 * AdamW at the schedule's rate. */
static rc_status optimizer_step(train_run *r, step_result *out) {
    const rc_train_args *a = r->a;
    const size_t n_pairs = r->train->pairs->n, bs = (size_t)a->per_device_train_batch_size;
    long group = r->batches_per_epoch - r->state.batch_in_epoch;
    if (group > micro_batches_per_step(a)) group = micro_batches_per_step(a);
    rc_model_zero_grad(r->m);
    double loss = 0.0, accuracy = 0.0;
    size_t tokens = 0, shared = 0;
    rc_status st = RC_OK;
    for (long g = rc_dist_rank(); g < group && st == RC_OK; g += rc_dist_size()) {
        size_t first = (size_t)(r->state.batch_in_epoch + g) * bs;
        int count = (int)(n_pairs - first < bs ? n_pairs - first : bs);
        batch_info info;
        st = forward_pairs(r->m, &r->bb, r->train, r->order.order + first, count,
                           a->share_prompt_prefix, &info);
        if (st != RC_OK) break;
        rc_pair_stats s;
        rc_pairwise_loss(r->bb.rewards, r->bb.margins, info.has_weights ? r->bb.weights : NULL,
                         count, a->centering_coef, 1.0 / (double)group, r->bb.d_rewards, &s);
        st = rc_model_backward(r->m, r->bb.d_rewards);
        loss += s.loss / (double)group;
        accuracy += s.accuracy / (double)group;
        tokens += info.tokens;
        shared += info.shared;
    }
    if (st != RC_OK) return st;
    if (rc_dist_size() > 1) { /* the step's numbers over all ranks */
        double sums[4] = {loss, accuracy, (double)tokens, (double)shared};
        if ((st = rc_dist_allreduce_sum_f64(sums, 4)) != RC_OK) return st;
        loss = sums[0], accuracy = sums[1];
        tokens = (size_t)sums[2], shared = (size_t)sums[3];
    }
    r->pr.window_tokens += tokens;
    r->pr.total_tokens += tokens;
    r->pr.shared_tokens += shared;
    if ((st = rc_grad_sync_reduce(r->sync)) != RC_OK) return st;
    if ((st = rc_grad_sync_norm(r->sync, &out->grad_norm)) != RC_OK) return st;
    out->lr = a->learning_rate * rc_schedule_factor(a->lr_scheduler_type, r->state.global_step,
                                                    r->warmup, r->total_steps);
    st = rc_adamw_step(r->opt, out->lr, rc_clip_factor(out->grad_norm, a->max_grad_norm));
    if (st == RC_OK) st = rc_grad_sync_gather_params(r->sync);
    if (st != RC_OK) return st;
    if (!isfinite(loss))
        return rc_fail(RC_ERR_BACKEND, "the loss became %g at step %ld (lower the learning rate)",
                       loss, r->state.global_step + 1);
    out->loss = loss;
    out->accuracy = accuracy;
    out->group = group;
    return RC_OK;
}

/* Counts the step, shows progress, and every logging_steps (and at the last
 * step) logs the mean of the steps since the last log line. */
static void record_step(train_run *r, const step_result *s) {
    const rc_train_args *a = r->a;
    progress *pr = &r->pr;
    r->state.global_step++;
    r->state.batch_in_epoch += s->group;
    r->steps_this_run++;
    pr->loss_sum += s->loss;
    pr->acc_sum += s->accuracy;
    pr->window_steps++;
    const long step = r->state.global_step, total = r->total_steps;
    double epoch_f = epoch_progress(r);
    double t = now_seconds();
    double eta = (t - pr->start) / (double)r->steps_this_run * (double)(total - step);
    char eta_text[32];
    format_duration(eta, eta_text, sizeof eta_text);
    double tok_s = pr->window_tokens / (t - pr->window_start > 1e-9 ? t - pr->window_start : 1e-9);
    if (pr->tty)
        fprintf(stderr, "\r\033[Kstep %ld/%ld | epoch %.2f | loss %.4f | acc %.3f | lr %.2e | %.0f tok/s | ETA %s",
                step, total, epoch_f, pr->loss_sum / pr->window_steps,
                pr->acc_sum / pr->window_steps, s->lr, tok_s, eta_text);
    if (!((a->logging_steps > 0 && step % a->logging_steps == 0) || step == total)) return;
    r->last_loss = pr->loss_sum / pr->window_steps;
    cJSON *line = log_entry(pr, step, epoch_f);
    if (line) {
        log_number(line, "loss", "%.9f", r->last_loss);
        log_number(line, "accuracy", "%.6f", pr->acc_sum / pr->window_steps);
        log_number(line, "learning_rate", "%.6e", s->lr);
        log_number(line, "grad_norm", "%.6f", s->grad_norm);
        /* the wall-clock numbers last, so that tests can cut them off */
        log_number(line, "tokens_per_second", "%.1f", tok_s);
        log_number(line, "elapsed_seconds", "%.2f", t - pr->start);
    }
    log_write(pr, line);
    if (r->lead && !pr->tty && !a->quiet)
        fprintf(stderr, "step %ld/%ld | epoch %.2f | loss %.4f | acc %.3f | lr %.2e | %.0f tok/s | ETA %s\n",
                step, total, epoch_f, r->last_loss, pr->acc_sum / pr->window_steps, s->lr, tok_s,
                eta_text);
    pr->loss_sum = pr->acc_sum = 0.0;
    pr->window_steps = 0;
    pr->window_tokens = 0;
    pr->window_start = t;
}

/* Every eval_steps and save_steps before the last step: an evaluation, a
 * checkpoint (the final ones come after the loop). */
static rc_status evaluate_and_save_on_schedule(train_run *r) {
    const rc_train_args *a = r->a;
    const long step = r->state.global_step;
    if (step == r->total_steps) return RC_OK;
    rc_status st = RC_OK;
    if (has_eval(r) && a->eval_steps > 0 && step % a->eval_steps == 0)
        if ((st = evaluate(r->m, a, r->eval, step, epoch_progress(r), &r->pr, &r->last_eval)) != RC_OK)
            return st;
    if (a->save_steps > 0 && step % a->save_steps == 0) {
        if (r->pr.tty) fprintf(stderr, "\r\033[K");
        r->state.window_loss_sum = r->pr.loss_sum;
        r->state.window_acc_sum = r->pr.acc_sum;
        r->state.window_steps = r->pr.window_steps;
        if (r->lead)
            st = rc_checkpoint_save(a->output_dir, r->model_dir, r->m, &r->meta, r->opt, &r->state,
                                    a->save_total_limit);
        else if (a->zero_stage) /* rank 0 gathers every rank's optimizer slice */
            st = take_part_in_save(r->opt);
    }
    return st;
}

/* The steps from where the run stands to total_steps, or to stop_after_steps. */
static rc_status train_steps(train_run *r) {
    const rc_train_args *a = r->a;
    if (r->lead)
        fprintf(stderr,
            "rewardc train: %zu pairs, %ld steps (%ld per epoch, batch %d pairs x %d accumulation), "
            "warmup %ld, %s schedule, lr %g\n",
            r->train->pairs->n, r->total_steps, r->steps_per_epoch, a->per_device_train_batch_size,
            a->gradient_accumulation_steps, r->warmup, rc_schedule_name(a->lr_scheduler_type),
            a->learning_rate);
    make_order(&r->order, a, r->state.epoch);
    r->pr.start = r->pr.window_start = now_seconds();
    r->pr.loss_sum = r->state.window_loss_sum;
    r->pr.acc_sum = r->state.window_acc_sum;
    r->pr.window_steps = r->state.window_steps;
    rc_status st = RC_OK;
    while (st == RC_OK && r->state.global_step < r->total_steps) {
        if (r->state.batch_in_epoch >= r->batches_per_epoch) {
            r->state.epoch++;
            r->state.batch_in_epoch = 0;
            make_order(&r->order, a, r->state.epoch);
        }
        step_result s;
        if ((st = optimizer_step(r, &s)) != RC_OK) break;
        record_step(r, &s);
        st = evaluate_and_save_on_schedule(r);
        if (a->stop_after_steps > 0 && r->steps_this_run >= a->stop_after_steps) break;
    }
    if (r->pr.tty) fprintf(stderr, "\n");
    return st;
}

/* The final evaluation: its rewards' mean and std go into the model's
 * config.json (for normalised scores), and a last log line. */
static rc_status final_evaluation(train_run *r, rc_train_summary *summary) {
    const rc_train_args *a = r->a;
    float *rewards = malloc(2 * r->eval->pairs->n * sizeof *rewards);
    if (!rewards) return rc_fail(RC_ERR_OOM, "cannot allocate eval rewards");
    rc_status st = rc_eval_pairs(r->m, r->eval, a->per_device_eval_batch_size, a->centering_coef,
                                 a->share_prompt_prefix, &r->last_eval, rewards);
    if (st == RC_OK) {
        const rc_pair_stats *e = &r->last_eval;
        double sum = 0.0, sq = 0.0;
        size_t n = 2 * r->eval->pairs->n;
        for (size_t i = 0; i < n; i++) sum += rewards[i];
        double mean = sum / n;
        for (size_t i = 0; i < n; i++) sq += (rewards[i] - mean) * (rewards[i] - mean);
        r->meta.has_reward_stats = 1;
        r->meta.reward_mean = mean;
        r->meta.reward_std = sqrt(sq / n);
        summary->reward_mean = r->meta.reward_mean;
        summary->reward_std = r->meta.reward_std;
        summary->eval_accuracy = e->accuracy;
        summary->eval_loss = e->loss;
        summary->eval_ties = e->ties;
        cJSON *line = log_entry(&r->pr, r->state.global_step, epoch_progress(r));
        log_eval_stats(line, e);
        if (line) {
            log_number(line, "reward_mean", "%.6f", r->meta.reward_mean);
            log_number(line, "reward_std", "%.6f", r->meta.reward_std);
        }
        log_write(&r->pr, line);
    }
    free(rewards);
    return st;
}

/* After the last step: the summary, the final evaluation, the final model. */
static rc_status finish(train_run *r, rc_train_summary *summary) {
    summary->steps = r->state.global_step;
    summary->final_loss = r->last_loss;
    summary->seconds = now_seconds() - r->pr.start;
    summary->tokens_per_second = r->pr.total_tokens / (summary->seconds > 0 ? summary->seconds : 1);
    summary->tokens = r->pr.total_tokens;
    summary->shared_prefix_tokens = r->pr.shared_tokens;
    rc_status st = has_eval(r) ? final_evaluation(r, summary) : RC_OK;
    if (st == RC_OK && r->lead)
        st = rc_checkpoint_save_final(r->a->output_dir, r->model_dir, r->m, &r->meta, summary);
    return st;
}

static void release_run(train_run *r) {
    if (r->pr.log) fclose(r->pr.log);
    free(r->order.order);
    free_batch(&r->bb);
    rc_grad_sync_free(r->sync);
    rc_adamw_free(r->opt);
    rc_model_free(r->m);
    rc_backend_destroy(r->be);
    rc_dir_lock_release(r->lock);
}

rc_status rc_train(const char *model_dir, const rc_train_args *a, const rc_train_data *train,
                   const rc_train_data *eval, int resume, rc_train_summary *summary) {
    memset(summary, 0, sizeof *summary);
    rc_status st = check_args(a, train);
    if (st != RC_OK) return st;
    train_run run;
    memset(&run, 0, sizeof run);
    train_run *r = &run;
    r->a = a;
    r->train = train;
    r->eval = eval;
    r->model_dir = model_dir;
    r->lead = rc_dist_rank() == 0;
    r->total_steps = total_steps_for(a, train->pairs->n, &r->steps_per_epoch);
    r->warmup = a->warmup_steps > 0 ? a->warmup_steps
                                    : (long)ceil(a->warmup_ratio * (double)r->total_steps);
    const size_t bs = (size_t)a->per_device_train_batch_size;
    r->batches_per_epoch = (long)((train->pairs->n + bs - 1) / bs);
    r->order.pairs = train->pairs;
    r->pr.lead = r->lead;
    r->pr.tty = r->lead && !a->quiet && isatty(STDERR_FILENO);

    st = open_output_dir(r, resume);
    if (st == RC_OK && !(r->order.order = malloc(train->pairs->n * sizeof(size_t))))
        st = rc_fail(RC_ERR_OOM, "cannot allocate the data order");
    if (st == RC_OK) st = load_model(r);
    if (st == RC_OK) st = prepare_optimizer(r);
    if (st == RC_OK) st = train_steps(r);
    /* a run stopped early (stop_after_steps) leaves its checkpoints only */
    if (st == RC_OK && r->state.global_step >= r->total_steps) st = finish(r, summary);
    release_run(r);
    return st;
}
