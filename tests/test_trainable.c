/* Trainable-parameter sets, LoRA adapters and activation checkpointing on
 * every family's golden model (golden/<family>/<name>/ as the base):
 *   - top-N layers and head-only training give gradients bit-identical to
 *     full training for the parameters that train, none for the rest, less
 *     gradient and optimizer memory, and leave frozen parameters untouched;
 *   - fresh LoRA adapters (B = 0) leave every reward bit-identical, A lies in
 *     PEFT's kaiming-uniform bound, bad targets / dropout are refused;
 *   - --gradient_checkpointing: losses and final parameters memcmp-equal to
 *     training without it (full and LoRA);
 *   - an adapter saved and loaded again scores bit-identically; merged into
 *     the base (W + s B A) it scores the same within float rounding, fused
 *     modules (GPT-2 c_attn, Falcon query_key_value) included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rewardc/model.h"
#include "rewardc/safetensors.h"
#include "rewardc/train.h"
#include "testlib.h"

static rc_backend *backend;

static const char *const MODELS[] = {"opt/preln",          "opt/postln_proj",   "llama/gqa3_untied",
                                     "qwen3/gqa2_headdim", "gpt2/right_pad_eos", "falcon/7b_mqa"};
enum { N_MODELS = sizeof MODELS / sizeof MODELS[0], STEPS = 3 };

typedef struct {
    int32_t *ids, *mask;
    float *margin;
    int rows, T, pairs;
} batch;

static void golden_path(char *out, size_t size, const char *model, const char *file) {
    snprintf(out, size, "%s/%s%s%s", test_golden_dir(), model, file ? "/" : "", file ? file : "");
}

static int load_batch(const char *model, batch *b) {
    char path[1024];
    golden_path(path, sizeof path, model, "golden.safetensors");
    rc_safetensors *st = NULL;
    memset(b, 0, sizeof *b);
    if (rc_st_open(path, &st) != RC_OK) return 0;
    const rc_tensor_view *ids = rc_st_find(st, "input_ids");
    b->rows = (int)ids->shape[0];
    b->T = (int)ids->shape[1];
    b->pairs = b->rows / 2;
    const size_t n = (size_t)b->rows * b->T;
    b->ids = malloc(n * sizeof *b->ids);
    b->mask = malloc(n * sizeof *b->mask);
    b->margin = malloc((size_t)b->pairs * sizeof *b->margin);
    int ok = rc_st_read_i32(st, "input_ids", b->ids, n) == RC_OK &&
             rc_st_read_i32(st, "attention_mask", b->mask, n) == RC_OK &&
             rc_st_read_f32(st, "margin", b->margin, (size_t)b->pairs) == RC_OK;
    rc_st_close(st);
    return ok;
}

static void free_batch(batch *b) {
    free(b->ids);
    free(b->mask);
    free(b->margin);
}

static rc_model *load_model(const char *dir) {
    rc_model *m = NULL;
    if (rc_model_load(dir, backend, 7, &m, NULL) != RC_OK) {
        CHECK(0, "loading %s: %s", dir, rc_last_error());
        return NULL;
    }
    return m;
}

static rc_model *load_golden(const char *model) {
    char dir[1024];
    golden_path(dir, sizeof dir, model, NULL);
    return load_model(dir);
}

/* forward + backward of the batch (the model reserved for training) */
static double forward_backward(rc_model *m, const batch *b) {
    float rewards[64], d_rewards[64];
    rc_pair_stats s;
    if (rc_model_forward(m, b->ids, b->mask, b->rows, b->T, rewards) != RC_OK) {
        CHECK(0, "forward: %s", rc_last_error());
        return NAN;
    }
    rc_pairwise_loss(rewards, b->margin, NULL, b->pairs, 0.0, 1.0, d_rewards, &s);
    CHECK(rc_model_backward(m, d_rewards) == RC_OK, "backward: %s", rc_last_error());
    return s.loss;
}

/* STEPS AdamW steps (clipped, weight decay); the losses into `losses`. */
static void train(rc_model *m, const batch *b, double lr, double *losses) {
    rc_adamw_config cfg = {lr, 0.9, 0.999, 1e-8, 0.01};
    rc_adamw *opt = NULL;
    CHECK(rc_adamw_create(m, &cfg, &opt) == RC_OK, "%s", rc_last_error());
    for (int step = 0; step < STEPS && opt; step++) {
        rc_model_zero_grad(m);
        losses[step] = forward_backward(m, b);
        double norm = rc_grad_norm(m);
        CHECK(rc_adamw_step(opt, lr, rc_clip_factor(norm, 1.0)) == RC_OK, "%s", rc_last_error());
    }
    rc_adamw_free(opt);
}

static float *param_copy(rc_model *m, int i) {
    const rc_param_info *p = rc_model_param(m, i);
    float *v = malloc(p->size * sizeof *v);
    CHECK(v && rc_model_get_param(m, i, v, p->size) == RC_OK, "%s", rc_last_error());
    return v;
}

static int params_equal(rc_model *a, rc_model *b) {
    if (rc_model_param_count(a) != rc_model_param_count(b)) return 0;
    int same = 1;
    for (int i = 0; i < rc_model_param_count(a) && same; i++) {
        const rc_param_info *p = rc_model_param(a, i);
        float *x = param_copy(a, i), *y = param_copy(b, i);
        same = x && y && !memcmp(x, y, p->size * sizeof *x);
        if (!same) printf("  %s differs\n", p->name);
        free(x);
        free(y);
    }
    return same;
}

static int ends_with(const char *s, const char *tail) {
    return strlen(s) >= strlen(tail) && !strcmp(s + strlen(s) - strlen(tail), tail);
}

/* The last layer's parameters, the final norm and project_out (by HF name). */
static int in_top_layer(const char *name, int n_layers) {
    char top[32];
    snprintf(top, sizeof top, ".%d.", n_layers - 1);
    const char *after_stack[] = {"decoder.final_layer_norm.weight", "decoder.final_layer_norm.bias",
                                 "model.norm.weight", "ln_f.weight", "ln_f.bias",
                                 "project_out.weight"};
    for (size_t i = 0; i < sizeof after_stack / sizeof after_stack[0]; i++)
        if (ends_with(name, after_stack[i])) return 1;
    return strstr(name, top) != NULL;
}

/* Top-N / head-only gradients against full training's, bit for bit. */
static void check_frozen_sets(const char *model, const batch *b) {
    rc_model *full = load_golden(model);
    if (!full) return;
    const int n_layers = rc_model_get_config(full)->num_hidden_layers;
    CHECK(rc_model_reserve(full, b->rows, b->T, 1) == RC_OK, "%s", rc_last_error());
    forward_backward(full, b);
    const rc_memory_plan full_plan = rc_model_memory_plan(full);
    const rc_trainable_config sets[] = {{.scope = RC_TRAIN_TOP_LAYERS, .top_layers = 1},
                                        {.scope = RC_TRAIN_HEAD}};
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        rc_model *m = load_golden(model);
        if (!m) continue;
        CHECK(rc_model_set_trainable(m, &sets[k], 7) == RC_OK, "%s", rc_last_error());
        CHECK(rc_model_reserve(m, b->rows, b->T, 1) == RC_OK, "%s", rc_last_error());
        forward_backward(m, b);
        int trained = 0, same = 1;
        for (int i = 0; i < rc_model_param_count(m); i++) {
            const rc_param_info *p = rc_model_param(m, i);
            float *want = malloc(p->size * sizeof *want), *got = malloc(p->size * sizeof *got);
            CHECK(rc_model_get_grad(full, i, want, p->size) == RC_OK, "%s", rc_last_error());
            const int has = rc_model_get_grad(m, i, got, p->size) == RC_OK;
            CHECK(has == p->trainable, "%s %s: trainable %d but gradient %d", model, p->name,
                  p->trainable, has);
            const int expect = !strcmp(p->name, "score.weight") ||
                               (sets[k].scope == RC_TRAIN_TOP_LAYERS && in_top_layer(p->name, n_layers));
            CHECK(p->trainable == expect, "%s %s: trainable %d", model, p->name, p->trainable);
            if (has) {
                trained++;
                if (memcmp(want, got, p->size * sizeof *got)) {
                    same = 0;
                    printf("  %s: %s gradient differs from full training's\n", model, p->name);
                }
            }
            free(want);
            free(got);
        }
        CHECK(same && trained > 0, "%s set %zu: gradients of the trained parameters", model, k);
        const rc_memory_plan plan = rc_model_memory_plan(m);
        CHECK(plan.grads < full_plan.grads && plan.optimizer < full_plan.optimizer &&
                  plan.trainable_params < plan.total_params,
              "%s: memory plan grads %zu vs %zu", model, plan.grads, full_plan.grads);
        /* frozen parameters never move */
        double losses[STEPS];
        rc_model *before = load_golden(model);
        train(m, b, 1e-2, losses);
        for (int i = 0; before && i < rc_model_param_count(m); i++) {
            const rc_param_info *p = rc_model_param(m, i);
            float *x = param_copy(m, i), *y = param_copy(before, i);
            const int moved = memcmp(x, y, p->size * sizeof *x) != 0;
            CHECK(moved == p->trainable || (p->trainable && strstr(p->name, "bias")),
                  "%s %s: trainable %d, moved %d", model, p->name, p->trainable, moved);
            free(x);
            free(y);
        }
        rc_model_free(before);
        rc_model_free(m);
    }
    rc_model_free(full);
}

static void check_lora_basics(const char *model, const batch *b) {
    rc_model *base = load_golden(model), *m = load_golden(model);
    if (!base || !m) return;
    rc_trainable_config lora = {.scope = RC_TRAIN_LORA, .lora_r = 4, .lora_alpha = 8,
                                .lora_target_modules = "all-linear"};
    CHECK(rc_model_set_trainable(m, &lora, 11) == RC_OK, "%s: %s", model, rc_last_error());
    CHECK(fabs(rc_model_lora_scale(m) - 2.0) < 1e-15, "scale alpha / r");
    size_t adapters = 0;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const rc_param_info *p = rc_model_param(m, i);
        CHECK(p->trainable == (p->adapter || !strcmp(p->name, "score.weight")), "%s %s trainable",
              model, p->name);
        if (!p->adapter) continue;
        adapters++;
        float *v = param_copy(m, i);
        const int is_a = strstr(p->name, ".lora_A.") != NULL;
        const double bound = 1.0 / sqrt((double)p->shape[1]);
        double largest = 0.0;
        for (size_t j = 0; v && j < p->size; j++) largest = fmax(largest, fabs(v[j]));
        CHECK(is_a ? largest <= bound && largest > 0.5 * bound : largest == 0.0,
              "%s %s: max |value| %g (bound %g)", model, p->name, largest, bound);
        free(v);
    }
    CHECK(adapters >= 8, "%s: all-linear made %zu adapter matrices", model, adapters);
    float want[64], got[64];
    CHECK(rc_model_reserve(base, b->rows, b->T, 0) == RC_OK &&
              rc_model_reserve(m, b->rows, b->T, 0) == RC_OK, "%s", rc_last_error());
    CHECK(rc_model_forward(base, b->ids, b->mask, b->rows, b->T, want) == RC_OK &&
              rc_model_forward(m, b->ids, b->mask, b->rows, b->T, got) == RC_OK,
          "%s", rc_last_error());
    CHECK(!memcmp(want, got, (size_t)b->rows * sizeof *got),
          "%s: fresh adapters (B = 0) change the rewards", model);
    rc_model_free(m);
    rc_model_free(base);

    m = load_golden(model);
    rc_trainable_config bad = lora;
    bad.lora_target_modules = "no_such_module";
    CHECK(m && rc_model_set_trainable(m, &bad, 1) != RC_OK &&
              strstr(rc_last_error(), "no_such_module"), "an unknown target is refused");
    bad = lora;
    bad.lora_dropout = 0.1;
    CHECK(m && rc_model_set_trainable(m, &bad, 1) != RC_OK && strstr(rc_last_error(), "dropout"),
          "lora_dropout != 0 is refused");
    rc_model_free(m);
}

/* The same STEPS with and without gradient checkpointing: memcmp-equal. */
static void check_checkpointing(const char *model, const batch *b, int use_lora) {
    rc_model *m[2];
    double losses[2][STEPS];
    for (int k = 0; k < 2; k++) {
        m[k] = load_golden(model);
        if (!m[k]) return;
        if (use_lora) {
            rc_trainable_config lora = {.scope = RC_TRAIN_LORA, .lora_r = 2, .lora_alpha = 5,
                                        .lora_target_modules = "all-linear"};
            CHECK(rc_model_set_trainable(m[k], &lora, 3) == RC_OK, "%s", rc_last_error());
        }
        rc_model_set_gradient_checkpointing(m[k], k);
        CHECK(rc_model_reserve(m[k], b->rows, b->T, 1) == RC_OK, "%s", rc_last_error());
        train(m[k], b, 1e-2, losses[k]);
    }
    CHECK(!memcmp(losses[0], losses[1], sizeof losses[0]),
          "%s%s: losses differ with gradient checkpointing (%.9g vs %.9g)", model,
          use_lora ? " LoRA" : "", losses[0][STEPS - 1], losses[1][STEPS - 1]);
    CHECK(params_equal(m[0], m[1]), "%s%s: parameters differ with gradient checkpointing", model,
          use_lora ? " LoRA" : "");
    const rc_memory_plan with = rc_model_memory_plan(m[1]), without = rc_model_memory_plan(m[0]);
    CHECK(with.activations < without.activations, "%s: checkpointing keeps %zu bytes, not fewer "
          "than %zu", model, with.activations, without.activations);
    rc_model_free(m[0]);
    rc_model_free(m[1]);
}

static void score(rc_model *m, const batch *b, float *rewards) {
    CHECK(rc_model_reserve(m, b->rows, b->T, 0) == RC_OK &&
              rc_model_forward(m, b->ids, b->mask, b->rows, b->T, rewards) == RC_OK,
          "%s", rc_last_error());
}

/* The batch and rewardc's rewards next to a saved folder, for
 * tools/check_peft_roundtrip.py (PEFT / transformers must score the same). */
static void write_rewards(const char *dir, const batch *b, const float *rewards) {
    rc_st_writer *w = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/rewardc_rewards.safetensors", dir);
    int64_t shape[2] = {b->rows, b->T}, rows[1] = {b->rows};
    rc_status st = rc_st_writer_new(&w);
    if (st == RC_OK) st = rc_st_writer_add(w, "input_ids", RC_DTYPE_I32, 2, shape, b->ids);
    if (st == RC_OK) st = rc_st_writer_add(w, "attention_mask", RC_DTYPE_I32, 2, shape, b->mask);
    if (st == RC_OK) st = rc_st_writer_add(w, "rewards", RC_DTYPE_F32, 1, rows, rewards);
    if (st == RC_OK) st = rc_st_writer_write(w, path);
    rc_st_writer_free(w);
    CHECK(st == RC_OK, "%s: %s", path, rc_last_error());
}

/* Train adapters (B becomes non-zero), save, load, merge. */
static void check_adapter_files(const char *model, const batch *b, const char *targets) {
    rc_model *m = load_golden(model);
    if (!m) return;
    rc_trainable_config lora = {.scope = RC_TRAIN_LORA, .lora_r = 3, .lora_alpha = 6,
                                .use_rslora = 1, .lora_target_modules = targets};
    CHECK(rc_model_set_trainable(m, &lora, 5) == RC_OK, "%s: %s", model, rc_last_error());
    CHECK(rc_model_reserve(m, b->rows, b->T, 1) == RC_OK, "%s", rc_last_error());
    double losses[STEPS];
    train(m, b, 5e-2, losses);
    float trained[64], loaded[64], merged[64], reloaded[64];
    rc_model_set_grad_enabled(m, 0);
    CHECK(rc_model_forward(m, b->ids, b->mask, b->rows, b->T, trained) == RC_OK, "%s",
          rc_last_error());
    char dir[1024], merged_dir[1100];
    snprintf(dir, sizeof dir, "%s/adapter_%s", test_tmp_dir(), strchr(model, '/') + 1);
    snprintf(merged_dir, sizeof merged_dir, "%s_merged", dir);
    CHECK(rc_model_save(m, dir) == RC_OK, "%s: %s", model, rc_last_error());
    CHECK(rc_model_is_adapter_dir(dir), "%s: no adapter_config.json", dir);
    rc_model_free(m);

    m = load_model(dir);
    if (!m) return;
    CHECK(fabs(rc_model_lora_scale(m) - 6.0 / sqrt(3.0)) < 1e-12, "rsLoRA scale survives");
    CHECK(rc_model_trainable(m)->scope == RC_TRAIN_LORA, "a loaded adapter trains as LoRA");
    score(m, b, loaded);
    CHECK(!memcmp(trained, loaded, (size_t)b->rows * sizeof *loaded),
          "%s: the reloaded adapter scores differently", model);
    write_rewards(dir, b, loaded);
    double moved = 0.0;
    for (int i = 0; i < b->rows; i++) moved = fmax(moved, fabs(trained[i] - loaded[i]));
    rc_model *fresh = load_model(dir);
    CHECK(fresh && rc_model_merge_lora(fresh) == RC_OK, "%s", rc_last_error());
    if (fresh) {
        CHECK(rc_model_lora_scale(fresh) == 0.0, "merged: no adapters left");
        score(fresh, b, merged);
        double worst = 0.0;
        for (int i = 0; i < b->rows; i++)
            worst = fmax(worst, fabs(merged[i] - loaded[i]) / fmax(1.0, fabs(loaded[i])));
        CHECK(worst < 2e-5, "%s: merged rewards differ by %.2e", model, worst);
        CHECK(rc_model_save(fresh, merged_dir) == RC_OK && !rc_model_is_adapter_dir(merged_dir),
              "%s", rc_last_error());
        rc_model *plain = load_model(merged_dir);
        if (plain) {
            score(plain, b, reloaded);
            CHECK(!memcmp(merged, reloaded, (size_t)b->rows * sizeof *merged),
                  "%s: the merged folder scores differently", model);
            write_rewards(merged_dir, b, reloaded);
            rc_model_free(plain);
        }
        rc_model_free(fresh);
    }
    rc_model_free(m);
    /* the adapters did learn something */
    rc_model *base = load_golden(model);
    float base_rewards[64];
    if (base) {
        score(base, b, base_rewards);
        double diff = 0.0;
        for (int i = 0; i < b->rows; i++) diff = fmax(diff, fabs(base_rewards[i] - trained[i]));
        CHECK(diff > 1e-4, "%s: training the adapters changed no reward", model);
        rc_model_free(base);
    }
    (void)moved;
}

int main(void) {
    if (rc_backend_create("cpu", 0, &backend) != RC_OK) {
        fprintf(stderr, "%s\n", rc_last_error());
        return 1;
    }
    for (int k = 0; k < N_MODELS; k++) {
        batch b;
        if (!load_batch(MODELS[k], &b)) {
            CHECK(0, "%s: cannot read its golden batch", MODELS[k]);
            continue;
        }
        printf("%s\n", MODELS[k]);
        check_frozen_sets(MODELS[k], &b);
        check_lora_basics(MODELS[k], &b);
        check_checkpointing(MODELS[k], &b, 0);
        check_checkpointing(MODELS[k], &b, 1);
        check_adapter_files(MODELS[k], &b, k % 2 ? "all-linear" : NULL);
        free_batch(&b);
    }
    rc_backend_destroy(backend);
    return test_finish("test_trainable");
}
