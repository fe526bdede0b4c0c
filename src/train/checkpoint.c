/* Crash-safe training checkpoints and exact resume (see checkpoint.h). */
#define _XOPEN_SOURCE 700
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rewardc/io.h"
#include "rewardc/safetensors.h"

static const char *PREFIX = "checkpoint-";
#define LOG_NAME "train_log.jsonl"
#define SUMMARY_NAME "training_summary.json"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static rc_status remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return RC_OK; /* already gone */
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return rc_fail(RC_ERR_IO, "cannot remove %s", path);
    return RC_OK;
}

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Step number of a complete "checkpoint-<N>" entry, or -1. */
static long checkpoint_step(const char *output_dir, const char *name) {
    size_t plen = strlen(PREFIX);
    if (strncmp(name, PREFIX, plen) != 0) return -1;
    char *end;
    long step = strtol(name + plen, &end, 10);
    if (end == name + plen || *end) return -1;
    char folder[4096], state[4096];
    if (rc_path_join(folder, sizeof folder, output_dir, name) != RC_OK ||
        rc_path_join(state, sizeof state, folder, "trainer_state.json") != RC_OK)
        return -1;
    return rc_path_is_file(state) ? step : -1;
}

/* Lists complete checkpoints' steps, ascending. */
static rc_status list_checkpoints(const char *output_dir, long **steps, int *count) {
    *steps = NULL;
    *count = 0;
    DIR *dir = opendir(output_dir);
    if (!dir) return RC_OK;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        long step = checkpoint_step(output_dir, e->d_name);
        if (step < 0) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            long *grown = realloc(*steps, (size_t)cap * sizeof *grown);
            if (!grown) {
                closedir(dir);
                return rc_fail(RC_ERR_OOM, "listing checkpoints");
            }
            *steps = grown;
        }
        (*steps)[(*count)++] = step;
    }
    closedir(dir);
    for (int i = 1; i < *count; i++)
        for (int j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
            long t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return RC_OK;
}

/* A folder is removed by first renaming it to a ".tmp-" name, which no reader
 * takes for a checkpoint and the next run's prepare_output deletes: a crash
 * while its files are being unlinked then never leaves a partial
 * checkpoint-<step>. */
static rc_status retire_tree(const char *path) {
    char retired[4096];
    int len = snprintf(retired, sizeof retired, "%s.tmp-%ld-removed", path, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof retired) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", path);
    if (rename(path, retired) != 0) return rc_fail(RC_ERR_IO, "cannot rename %s to %s", path, retired);
    return remove_tree(retired);
}

/* Leftovers of an atomic write interrupted by a crash: "<name>.tmp.XXXXXX". */
static int is_atomic_write_temp(const char *name) {
    const char *tmp = strstr(name, ".tmp.");
    return tmp && tmp != name && strlen(tmp + 5) == 6;
}

/* Files an earlier training run leaves in output_dir besides checkpoints. */
static int is_run_record(const char *name) {
    return !strcmp(name, LOG_NAME) || !strcmp(name, SUMMARY_NAME);
}

rc_status rc_checkpoint_prepare_output(const char *output_dir, int overwrite, int resume) {
    /* nothing is created here: a run that fails before training leaves no
     * output_dir behind (rc_checkpoint_open_log creates it) */
    if (!rc_path_is_dir(output_dir)) return RC_OK;
    DIR *dir = opendir(output_dir);
    if (!dir) return rc_fail(RC_ERR_IO, "cannot open output_dir %s", output_dir);
    /* names are collected first: removing entries while readdir walks the
     * folder may or may not show them again */
    char (*doomed)[256] = NULL;
    size_t n_doomed = 0, cap = 0;
    int has_checkpoints = 0, has_records = 0, held_run = 0;
    rc_status st = RC_OK;
    struct dirent *e;
    while (st == RC_OK && (e = readdir(dir))) {
        int is_checkpoint = !strncmp(e->d_name, PREFIX, strlen(PREFIX));
        held_run |= (is_checkpoint && !strstr(e->d_name, ".tmp-")) || is_run_record(e->d_name);
        /* temp folders of an interrupted save are never valid checkpoints */
        int remove_it = (is_checkpoint && strstr(e->d_name, ".tmp-")) ||
                        is_atomic_write_temp(e->d_name) || (is_checkpoint && overwrite && !resume);
        if (!remove_it) {
            has_checkpoints |= is_checkpoint;
            has_records |= is_run_record(e->d_name);
            continue;
        }
        if (strlen(e->d_name) >= sizeof *doomed) continue; /* not a name rewardc writes */
        if (n_doomed == cap) {
            cap = cap ? 2 * cap : 16;
            char (*grown)[256] = realloc(doomed, cap * sizeof *doomed);
            if (!grown) {
                st = rc_fail(RC_ERR_OOM, "listing %s", output_dir);
                break;
            }
            doomed = grown;
        }
        strcpy(doomed[n_doomed++], e->d_name);
    }
    closedir(dir);
    for (size_t i = 0; i < n_doomed && st == RC_OK; i++) {
        char path[4096];
        if (rc_path_join(path, sizeof path, output_dir, doomed[i]) != RC_OK)
            st = rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", output_dir);
        else if (strncmp(doomed[i], PREFIX, strlen(PREFIX)) && !rc_path_is_file(path))
            continue; /* a folder that merely looks like an atomic-write temp */
        else if (strstr(doomed[i], ".tmp")) st = remove_tree(path);
        else st = retire_tree(path);
    }
    free(doomed);
    if (st != RC_OK) return st;
    if ((has_checkpoints || has_records) && !resume && !overwrite)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "output_dir %s already holds an earlier run (%s): pass --resume to continue "
                       "that run or --overwrite_output_dir to start over",
                       output_dir, has_checkpoints ? "checkpoints" : LOG_NAME " or " SUMMARY_NAME);
    if (overwrite && !resume) {
        /* the earlier run's final model goes too, so an interrupted new run
         * never leaves it next to the new log; only in a folder that holds a
         * run (it could be a model folder given as output_dir by mistake) */
        const char *records[] = {LOG_NAME, SUMMARY_NAME, "model.safetensors", "config.json"};
        const int n_records = held_run ? 4 : 2;
        for (int i = 0; i < n_records; i++) {
            char path[4096];
            if (rc_path_join(path, sizeof path, output_dir, records[i]) != RC_OK)
                return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", output_dir);
            remove(path);
        }
    }
    return RC_OK;
}

rc_status rc_checkpoint_latest(const char *output_dir, char *path, size_t size) {
    long *steps;
    int count;
    rc_status st = list_checkpoints(output_dir, &steps, &count);
    if (st != RC_OK) return st;
    if (count == 0) {
        free(steps);
        return rc_fail(RC_ERR_IO, "--resume: no complete checkpoint-<step> folder in %s", output_dir);
    }
    snprintf(path, size, "%s/%s%ld", output_dir, PREFIX, steps[count - 1]);
    free(steps);
    return RC_OK;
}

rc_status rc_checkpoint_load_state(const char *dir, const rc_train_state *limits, rc_adamw *opt,
                                   rc_train_state *state) {
    char path[4096];
    if (rc_path_join(path, sizeof path, dir, "trainer_state.json") != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", dir);
    cJSON *json = NULL;
    rc_status st = rc_json_load_file(path, &json);
    if (st != RC_OK) return st;
    /* every position must lie inside this run: a negative batch index reads
     * before the data order, a negative step multiplies the learning rate */
    st = rc_json_get_long(json, path, "global_step", 0, limits->global_step, &state->global_step);
    if (st == RC_OK) st = rc_json_get_long(json, path, "epoch", 0, limits->epoch, &state->epoch);
    if (st == RC_OK)
        st = rc_json_get_long(json, path, "batch_in_epoch", 0, limits->batch_in_epoch, &state->batch_in_epoch);
    /* optional: absent in a checkpoint saved at a logging step */
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(json, "log_window");
    if (st == RC_OK && window) {
        char where[4200];
        snprintf(where, sizeof where, "%s, \"log_window\"", path);
        st = rc_json_get_long(window, where, "steps", 0, state->global_step, &state->window_steps);
        if (st == RC_OK)
            st = rc_json_get_double(window, where, "loss_sum", 0.0, HUGE_VAL, &state->window_loss_sum);
        if (st == RC_OK)
            st = rc_json_get_double(window, where, "accuracy_sum", 0.0, (double)state->window_steps,
                                    &state->window_acc_sum);
    }
    cJSON_Delete(json);
    if (st != RC_OK) return rc_fail_context(st, "--resume");

    if (rc_path_join(path, sizeof path, dir, "optimizer.safetensors") != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", dir);
    rc_safetensors *file = NULL;
    if ((st = rc_st_open(path, &file)) != RC_OK) return st;
    size_t n = rc_adamw_state_size(opt);
    float *m = malloc(n * sizeof *m), *v = malloc(n * sizeof *v);
    const char *step_text = rc_st_metadata(file, "step");
    char *step_end = NULL;
    long step = step_text ? strtol(step_text, &step_end, 10) : -1;
    if (!m || !v) st = rc_fail(RC_ERR_OOM, "cannot allocate optimizer state");
    if (st == RC_OK) st = rc_st_read_f32(file, "exp_avg", m, n);
    if (st == RC_OK) st = rc_st_read_f32(file, "exp_avg_sq", v, n);
    if (st == RC_OK) st = rc_check_finite("exp_avg", m, n);
    if (st == RC_OK) st = rc_check_finite("exp_avg_sq", v, n);
    if (st == RC_OK && !step_text) st = rc_fail(RC_ERR_FORMAT, "%s: metadata \"step\" missing", path);
    /* AdamW steps once per optimizer step: its bias correction follows global_step */
    if (st == RC_OK && (step_end == step_text || *step_end || step != state->global_step))
        st = rc_fail(RC_ERR_FORMAT, "%s: metadata \"step\" is '%s', expected %ld (global_step)", path,
                     step_text, state->global_step);
    if (st == RC_OK) st = rc_adamw_set_state(opt, m, v, n, step);
    if (st != RC_OK) rc_fail_context(st, "--resume");
    free(m);
    free(v);
    rc_st_close(file);
    return st;
}

static rc_status copy_file(const char *src, const char *dst) {
    char *data = NULL;
    size_t len = 0;
    rc_status st = rc_read_file(src, &data, &len);
    if (st == RC_OK) st = rc_write_file_atomic(dst, data, len);
    free(data);
    return st;
}

rc_status rc_checkpoint_open_log(const char *output_dir, const char *resume_dir, FILE **log) {
    char path[4096];
    if (rc_path_join(path, sizeof path, output_dir, LOG_NAME) != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", output_dir);
    rc_status made = rc_mkdir_p(output_dir);
    if (made != RC_OK) return made;
    if (resume_dir && resume_dir[0]) {
        char saved[4096];
        if (rc_path_join(saved, sizeof saved, resume_dir, LOG_NAME) != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", resume_dir);
        rc_status st = rc_path_is_file(saved) ? copy_file(saved, path) : RC_OK;
        if (st != RC_OK) return st;
    }
    *log = fopen(path, "a");
    if (!*log) return rc_fail(RC_ERR_IO, "cannot open %s for appending", path);
    return RC_OK;
}

/* The HF folder + rewardc settings + tokenizer files into `dir`. */
static rc_status save_model_folder(const char *dir, const char *tokenizer_dir, rc_model *m,
                                   const rc_reward_meta *meta) {
    rc_status st = rc_model_save(m, dir);
    if (st == RC_OK) st = rc_reward_meta_save(dir, meta);
    if (st == RC_OK) st = rc_copy_tokenizer_files(tokenizer_dir, dir);
    return st;
}

static rc_status save_optimizer(const char *dir, rc_adamw *opt) {
    size_t n = rc_adamw_state_size(opt);
    float *m = malloc(n * sizeof *m), *v = malloc(n * sizeof *v);
    rc_st_writer *w = NULL;
    long step = 0;
    rc_status st = m && v ? RC_OK : rc_fail(RC_ERR_OOM, "cannot allocate optimizer state");
    if (st == RC_OK) st = rc_adamw_get_state(opt, m, v, n, &step);
    if (st == RC_OK) st = rc_st_writer_new(&w);
    int64_t shape[1] = {(int64_t)n};
    if (st == RC_OK) st = rc_st_writer_add(w, "exp_avg", RC_DTYPE_F32, 1, shape, m);
    if (st == RC_OK) st = rc_st_writer_add(w, "exp_avg_sq", RC_DTYPE_F32, 1, shape, v);
    char text[32], path[4096];
    snprintf(text, sizeof text, "%ld", step);
    if (st == RC_OK) st = rc_st_writer_add_metadata(w, "step", text);
    if (rc_path_join(path, sizeof path, dir, "optimizer.safetensors") != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", dir);
    if (st == RC_OK) st = rc_st_writer_write(w, path);
    rc_st_writer_free(w);
    free(m);
    free(v);
    return st;
}

static rc_status save_state(const char *dir, const rc_train_state *state) {
    cJSON *json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "global_step", (double)state->global_step);
    cJSON_AddNumberToObject(json, "epoch", (double)state->epoch);
    cJSON_AddNumberToObject(json, "batch_in_epoch", (double)state->batch_in_epoch);
    if (state->window_steps > 0) {
        /* %.17g in cJSON keeps the doubles exact, so resumed averages are identical */
        cJSON *window = cJSON_AddObjectToObject(json, "log_window");
        cJSON_AddNumberToObject(window, "steps", (double)state->window_steps);
        cJSON_AddNumberToObject(window, "loss_sum", state->window_loss_sum);
        cJSON_AddNumberToObject(window, "accuracy_sum", state->window_acc_sum);
    }
    char path[4096];
    if (rc_path_join(path, sizeof path, dir, "trainer_state.json") != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", dir);
    rc_status st = rc_json_save_file(path, json);
    cJSON_Delete(json);
    return st;
}

rc_status rc_checkpoint_save(const char *output_dir, const char *tokenizer_dir, rc_model *m,
                             const rc_reward_meta *meta, rc_adamw *opt, const rc_train_state *state,
                             int save_total_limit) {
    char tmp[4096], final[4096], log_src[4096], log_dst[4096];
    snprintf(tmp, sizeof tmp, "%s/%s%ld.tmp-%ld", output_dir, PREFIX, state->global_step, (long)getpid());
    snprintf(final, sizeof final, "%s/%s%ld", output_dir, PREFIX, state->global_step);
    if (rc_path_join(log_src, sizeof log_src, output_dir, LOG_NAME) != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", output_dir);
    if (rc_path_join(log_dst, sizeof log_dst, tmp, LOG_NAME) != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", tmp);
    rc_status st = save_model_folder(tmp, tokenizer_dir, m, meta);
    if (st == RC_OK) st = save_optimizer(tmp, opt);
    if (st == RC_OK && rc_path_is_file(log_src)) st = copy_file(log_src, log_dst);
    /* trainer_state.json last: its presence marks the checkpoint complete */
    if (st == RC_OK) st = save_state(tmp, state);
    if (st == RC_OK && rc_path_is_dir(final)) st = retire_tree(final);
    if (st == RC_OK && rename(tmp, final) != 0)
        st = rc_fail(RC_ERR_IO, "cannot rename %s to %s", tmp, final);
    if (st != RC_OK) {
        remove_tree(tmp);
        return rc_fail_context(st, "saving checkpoint at step %ld", state->global_step);
    }
    fsync_dir(output_dir);
    if (save_total_limit > 0) {
        long *steps;
        int count;
        if ((st = list_checkpoints(output_dir, &steps, &count)) != RC_OK) return st;
        for (int i = 0; i + save_total_limit < count && st == RC_OK; i++) {
            char old[4096];
            snprintf(old, sizeof old, "%s/%s%ld", output_dir, PREFIX, steps[i]);
            st = retire_tree(old);
        }
        free(steps);
    }
    return st;
}

rc_status rc_checkpoint_save_final(const char *output_dir, const char *tokenizer_dir, rc_model *m,
                                   const rc_reward_meta *meta, const rc_train_summary *s) {
    rc_status st = save_model_folder(output_dir, tokenizer_dir, m, meta);
    if (st != RC_OK) return st;
    cJSON *json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "steps", (double)s->steps);
    cJSON_AddNumberToObject(json, "final_train_loss", s->final_loss);
    cJSON_AddNumberToObject(json, "train_seconds", s->seconds);
    cJSON_AddNumberToObject(json, "tokens_per_second", s->tokens_per_second);
    cJSON_AddNumberToObject(json, "tokens", (double)s->tokens);
    cJSON_AddNumberToObject(json, "shared_prefix_tokens", (double)s->shared_prefix_tokens);
    if (meta->has_reward_stats) {
        cJSON_AddNumberToObject(json, "eval_accuracy", s->eval_accuracy);
        cJSON_AddNumberToObject(json, "eval_ties", s->eval_ties);
        cJSON_AddNumberToObject(json, "eval_loss", s->eval_loss);
        cJSON_AddNumberToObject(json, "reward_mean", s->reward_mean);
        cJSON_AddNumberToObject(json, "reward_std", s->reward_std);
    }
    char path[4096];
    if (rc_path_join(path, sizeof path, output_dir, SUMMARY_NAME) != RC_OK) return rc_fail(RC_ERR_INVALID_ARG, "path too long: %s", output_dir);
    st = rc_json_save_file(path, json);
    cJSON_Delete(json);
    return st;
}
