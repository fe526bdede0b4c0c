/* rewardc train: fine-tune a reward model on chosen/rejected pairs. Options
 * carry transformers' TrainingArguments names; a JSON config file may set the
 * same keys, and flags given on the command line win over it. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "rewardc/io.h"
#include "rewardc/threads.h"
#include "rewardc/tokenizer.h"
#include "rewardc/trainer.h"

typedef enum { OPT_DOUBLE, OPT_LONG, OPT_INT, OPT_BOOL, OPT_STRING, OPT_SCHEDULE } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    void *target;
    const char *help;
} train_option;

typedef struct {
    rc_train_args args;
    const char *model, *train_file, *eval_file, *config_file, *prompt_marker;
    long max_length, threads, seed;
    int resume, extract_prompt;
    /* what trains (rc_trainable_config) */
    int train_layers, train_head_only, lora_r, use_rslora;
    double lora_alpha, lora_dropout;
    const char *lora_target_modules;
} train_settings;

static int option_table(train_settings *s, train_option *t) {
    rc_train_args *a = &s->args;
    const train_option options[] = {
        {"model", OPT_STRING, &s->model, "model folder to start from (HF OPT checkpoint or rewardc init)"},
        {"train_file", OPT_STRING, &s->train_file, "pairs JSONL ({\"prompt\",\"chosen\",\"rejected\"[,\"margin\",\"weight\"]})"},
        {"eval_file", OPT_STRING, &s->eval_file, "pairs JSONL evaluated every eval_steps and at the end"},
        {"output_dir", OPT_STRING, &a->output_dir, "where checkpoints and the final model go"},
        {"overwrite_output_dir", OPT_BOOL, &a->overwrite_output_dir, "remove an earlier run's checkpoints, log and summary"},
        {"resume", OPT_BOOL, &s->resume, "continue from the latest checkpoint in output_dir"},
        {"learning_rate", OPT_DOUBLE, &a->learning_rate, "peak learning rate (5e-5)"},
        {"num_train_epochs", OPT_DOUBLE, &a->num_train_epochs, "epochs (3)"},
        {"max_steps", OPT_LONG, &a->max_steps, "optimizer steps; overrides epochs when > 0"},
        {"per_device_train_batch_size", OPT_INT, &a->per_device_train_batch_size, "pairs per micro-batch (8)"},
        {"per_device_eval_batch_size", OPT_INT, &a->per_device_eval_batch_size, "pairs per eval batch (8)"},
        {"gradient_accumulation_steps", OPT_INT, &a->gradient_accumulation_steps, "micro-batches per step (1)"},
        {"warmup_steps", OPT_LONG, &a->warmup_steps, "linear warmup steps (0)"},
        {"warmup_ratio", OPT_DOUBLE, &a->warmup_ratio, "warmup as a fraction of all steps, if warmup_steps is 0"},
        {"lr_scheduler_type", OPT_SCHEDULE, &a->lr_scheduler_type, "linear | cosine | constant | constant_with_warmup"},
        {"weight_decay", OPT_DOUBLE, &a->weight_decay, "AdamW decoupled weight decay (0); not on biases/LayerNorm"},
        {"max_grad_norm", OPT_DOUBLE, &a->max_grad_norm, "global gradient-norm clip (1.0; 0 disables)"},
        {"adam_beta1", OPT_DOUBLE, &a->adam_beta1, "(0.9)"},
        {"adam_beta2", OPT_DOUBLE, &a->adam_beta2, "(0.999)"},
        {"adam_epsilon", OPT_DOUBLE, &a->adam_epsilon, "(1e-8)"},
        {"logging_steps", OPT_LONG, &a->logging_steps, "log every N steps (500)"},
        {"eval_steps", OPT_LONG, &a->eval_steps, "evaluate every N steps (0: only at the end)"},
        {"save_steps", OPT_LONG, &a->save_steps, "checkpoint every N steps (500; 0: never)"},
        {"save_total_limit", OPT_INT, &a->save_total_limit, "keep only the newest N checkpoints (0: all)"},
        {"seed", OPT_LONG, &s->seed, "data order and new score head (42)"},
        {"max_length", OPT_LONG, &s->max_length, "tokens per sequence; longer pairs are truncated (the model folder's setting)"},
        {"centering_coef", OPT_DOUBLE, &a->centering_coef, "adds coef * mean((r_c + r_r)^2) (0)"},
        {"group_by_length", OPT_BOOL, &a->group_by_length, "batch similar lengths together to save padding"},
        {"share_prompt_prefix", OPT_BOOL, &a->share_prompt_prefix, "compute the prefix a chosen/rejected pair shares once (true)"},
        {"extract_prompt", OPT_BOOL, &s->extract_prompt, "split implicit-prompt pairs at their shared beginning"},
        {"prompt_marker", OPT_STRING, &s->prompt_marker, "with extract_prompt: cut after the last marker (e.g. \"\\n\\nAssistant:\")"},
        {"threads", OPT_LONG, &s->threads, "CPU threads (default: all)"},
        {"backend", OPT_STRING, &a->backend, "cpu | opencl | cuda"},
        {"device", OPT_INT, &a->device, "device index for opencl/cuda (0)"},
        {"quiet", OPT_BOOL, &a->quiet, "no progress display"},
        {"stop_after_steps", OPT_LONG, &a->stop_after_steps, "stop (as if killed) after N steps of this run: for tests"},
        {"train_layers", OPT_INT, &s->train_layers, "train only the top N layers, the final norm and the head (0: all)"},
        {"train_head_only", OPT_BOOL, &s->train_head_only, "train only the score head"},
        {"lora_r", OPT_INT, &s->lora_r, "LoRA rank: train adapters and the head on a frozen base (0: off)"},
        {"lora_alpha", OPT_DOUBLE, &s->lora_alpha, "LoRA scaling alpha / r (8, PEFT's default)"},
        {"lora_dropout", OPT_DOUBLE, &s->lora_dropout, "LoRA dropout (only 0 is supported)"},
        {"lora_target_modules", OPT_STRING, &s->lora_target_modules, "PEFT module names, comma-separated, or all-linear (the family's PEFT default)"},
        {"use_rslora", OPT_BOOL, &s->use_rslora, "rank-stabilised scaling alpha / sqrt(r)"},
        {"gradient_checkpointing", OPT_BOOL, &a->gradient_checkpointing, "keep only each layer's input, recompute the layer in backward (same results)"},
        {"zero", OPT_INT, &a->zero_stage, "under mpirun: 1 shards the AdamW state over the ranks (ZeRO-1) (0)"},
        {"allreduce_bucket_elements", OPT_LONG, &a->allreduce_bucket_elements, "under mpirun: floats per gradient collective (0: 4Mi)"},
    };
    int n = (int)(sizeof options / sizeof options[0]);
    if (t) memcpy(t, options, sizeof options);
    return n;
}

static void usage(FILE *out) {
    train_settings s;
    memset(&s, 0, sizeof s);
    train_option table[64];
    int n = option_table(&s, table);
    fprintf(out,
            "usage: rewardc train --model DIR --train_file PAIRS.jsonl --output_dir DIR [options]\n"
            "       rewardc train --config train.json [options]\n\n"
            "Fine-tunes an OPT reward model with the pairwise loss -logsigmoid(r_c - r_r - margin)\n"
            "and AdamW. Batches are padded to their longest sequence. Every save_steps a\n"
            "checkpoint-<step>/ folder (HF model + optimizer + data position) is written\n"
            "atomically; --resume continues the run exactly. The final model lands in output_dir\n"
            "(with --eval_file, the eval set's reward mean/std go into its config.json, for\n"
            "normalised scores); the log is output_dir/train_log.jsonl.\n\n"
            "  --config FILE   JSON object with any of the keys below (flags win)\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "  --%-28s %s\n", table[i].name, table[i].help);
}

static int set_option(const train_option *o, const char *text) {
    switch (o->type) {
    case OPT_DOUBLE: return parse_double("train", o->name, text, (double *)o->target);
    case OPT_LONG: return parse_long("train", o->name, text, 0, 1L << 40, (long *)o->target);
    case OPT_INT: {
        long v;
        if (!parse_long("train", o->name, text, 0, 1 << 30, &v)) return 0;
        *(int *)o->target = (int)v;
        return 1;
    }
    case OPT_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1")) *(int *)o->target = 1;
        else if (!strcmp(text, "false") || !strcmp(text, "0")) *(int *)o->target = 0;
        else {
            fprintf(stderr, "rewardc train: --%s: '%s' is not true/false\n", o->name, text);
            return 0;
        }
        return 1;
    case OPT_STRING: *(const char **)o->target = text; return 1;
    case OPT_SCHEDULE:
        if (rc_schedule_parse(text, (rc_schedule_kind *)o->target) != RC_OK) {
            fprintf(stderr, "rewardc train: %s\n", rc_last_error());
            return 0;
        }
        return 1;
    }
    return 0;
}

/* Applies a JSON config; strings stay owned by `json`, which outlives training. */
static int apply_config(const cJSON *json, const char *path, const train_option *table, int n) {
    if (!cJSON_IsObject(json)) {
        fprintf(stderr, "rewardc train: %s: not a JSON object\n", path);
        return 0;
    }
    for (const cJSON *item = json->child; item; item = item->next) {
        const train_option *o = NULL;
        for (int i = 0; i < n; i++)
            if (!strcmp(table[i].name, item->string)) o = &table[i];
        if (!o) {
            fprintf(stderr, "rewardc train: %s: unknown key \"%s\"\n", path, item->string);
            return 0;
        }
        char number[64];
        const char *text = NULL;
        if (cJSON_IsString(item)) text = item->valuestring;
        else if (cJSON_IsBool(item)) text = cJSON_IsTrue(item) ? "true" : "false";
        else if (cJSON_IsNumber(item)) {
            if (o->type == OPT_DOUBLE) snprintf(number, sizeof number, "%.17g", item->valuedouble);
            else if (item->valuedouble == floor(item->valuedouble) && fabs(item->valuedouble) < 1e15)
                snprintf(number, sizeof number, "%.0f", item->valuedouble);
            else { /* "%.0f" would round 2.5 to 2 without a word */
                fprintf(stderr, "rewardc train: %s: \"%s\" must be an integer, got %.17g\n", path,
                        item->string, item->valuedouble);
                return 0;
            }
            text = number;
        }
        if (!text) {
            fprintf(stderr, "rewardc train: %s: \"%s\" has the wrong type\n", path, item->string);
            return 0;
        }
        if (!set_option(o, text)) return 0;
    }
    return 1;
}

/* --train_layers, --train_head_only and --lora_r pick one trainable set. */
static int trainable_from_settings(train_settings *s) {
    rc_trainable_config *t = &s->args.trainable;
    const int chosen = (s->train_layers > 0) + (s->train_head_only != 0) + (s->lora_r > 0);
    if (chosen > 1) {
        fprintf(stderr, "rewardc train: --train_layers, --train_head_only and --lora_r exclude "
                "each other\n");
        return 0;
    }
    const int lora_only = s->lora_target_modules || s->use_rslora || s->lora_dropout != 0.0 ||
                          s->lora_alpha != 8.0;
    if (lora_only && s->lora_r <= 0) {
        fprintf(stderr, "rewardc train: the LoRA options need --lora_r\n");
        return 0;
    }
    *t = (rc_trainable_config){.scope = RC_TRAIN_ALL};
    if (s->train_head_only) t->scope = RC_TRAIN_HEAD;
    if (s->train_layers > 0) {
        t->scope = RC_TRAIN_TOP_LAYERS;
        t->top_layers = s->train_layers;
    }
    if (s->lora_r > 0)
        *t = (rc_trainable_config){.scope = RC_TRAIN_LORA, .lora_r = s->lora_r,
                                   .lora_alpha = s->lora_alpha, .lora_dropout = s->lora_dropout,
                                   .use_rslora = s->use_rslora,
                                   .lora_target_modules = s->lora_target_modules};
    return 1;
}

static int load_pairs(const char *path, const train_settings *s, rc_pair_list *pairs) {
    rc_read_options read = {0};
    rc_preference_options pref = {.extract_prompt = s->extract_prompt, .prompt_marker = s->prompt_marker};
    rc_prepare_report report;
    rc_prepare_report_init(&report, path);
    if (rc_pairs_read_preferences(path, &read, &pref, pairs, &report) != RC_OK) {
        fprintf(stderr, "rewardc train: %s\n", rc_last_error());
        return 0;
    }
    return 1;
}

static int encode(const char *what, rc_tokenizer *tok, const char *model_dir,
                  const rc_encode_policy *policy, const rc_pair_list *pairs, rc_encoded_pairs *out) {
    rc_encode_counts counts;
    if (rc_encode_pairs_for_model(tok, model_dir, policy, pairs, out, &counts) != RC_OK) {
        fprintf(stderr, "rewardc train: encoding %s: %s\n", what, rc_last_error());
        return 0;
    }
    fprintf(stderr,
            "rewardc train: %s: %zu pairs encoded (max_length %zu, longest %zu tokens); "
            "%zu sequences had the prompt truncated, %zu the response, %zu pairs dropped\n",
            what, out->n, policy->max_length, counts.longest, counts.prompt_truncated,
            counts.response_truncated, counts.pairs_dropped);
    return 1;
}

static int train_main(int argc, char **argv) {
    train_settings s;
    memset(&s, 0, sizeof s);
    rc_train_args_default(&s.args);
    s.seed = (long)s.args.seed;
    s.max_length = -1;
    s.lora_alpha = 8.0; /* PEFT's LoraConfig default */
    train_option table[64];
    int n = option_table(&s, table);

    /* the config file first, so that flags override it */
    cJSON *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        const char *value;
        int r = arg_value(argc, argv, &i, "--config", &value);
        if (r < 0) return 2;
        if (r > 0) s.config_file = value;
    }
    if (s.config_file) {
        if (rc_json_load_file(s.config_file, &config) != RC_OK) {
            fprintf(stderr, "rewardc train: %s\n", rc_last_error());
            return 2;
        }
        if (!apply_config(config, s.config_file, table, n)) {
            cJSON_Delete(config);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *value;
        if (arg_value(argc, argv, &i, "--config", &value) > 0) continue;
        const char *arg = argv[i];
        int matched = 0;
        for (int k = 0; k < n && !matched; k++) {
            char flag[80];
            snprintf(flag, sizeof flag, "--%s", table[k].name);
            if (table[k].type == OPT_BOOL && arg_is(arg, flag)) {
                *(int *)table[k].target = 1;
                matched = 1;
                break;
            }
            int r = arg_value(argc, argv, &i, flag, &value);
            if (r < 0) goto usage_error;
            if (r > 0) {
                if (!set_option(&table[k], value)) goto usage_error;
                matched = 1;
            }
        }
        if (!matched) {
            fprintf(stderr, "rewardc train: unknown option '%s' (see rewardc train --help)\n", arg);
            goto usage_error;
        }
    }
    if (!s.model || !s.train_file) {
        fprintf(stderr, "rewardc train: --model and --train_file are required\n");
        goto usage_error;
    }
    s.args.seed = (uint64_t)s.seed;
    rc_set_num_threads((int)s.threads);
    if (!trainable_from_settings(&s)) goto usage_error;

    int status = 1;
    rc_tokenizer *tok = NULL;
    rc_reward_meta meta;
    rc_pair_list train_pairs = {0}, eval_pairs = {0};
    rc_encoded_pairs train_enc = {0}, eval_enc = {0};
    if (rc_reward_meta_load(s.model, &meta) != RC_OK || rc_tokenizer_load(s.model, &tok) != RC_OK) {
        fprintf(stderr, "rewardc train: %s\n", rc_last_error());
        goto done;
    }
    if (s.max_length > 0) meta.policy.max_length = (size_t)s.max_length;
    if (rc_encode_policy_check(&meta.policy, tok) != RC_OK) {
        fprintf(stderr, "rewardc train: %s\n", rc_last_error());
        goto done;
    }
    s.args.policy = &meta.policy;
    if (!load_pairs(s.train_file, &s, &train_pairs) ||
        !encode("train", tok, s.model, &meta.policy, &train_pairs, &train_enc))
        goto done;
    if (s.eval_file && (!load_pairs(s.eval_file, &s, &eval_pairs) ||
                        !encode("eval", tok, s.model, &meta.policy, &eval_pairs, &eval_enc)))
        goto done;
    rc_train_data train = {&train_enc, &train_pairs}, eval = {&eval_enc, &eval_pairs};
    rc_train_summary summary;
    if (rc_train(s.model, &s.args, &train, s.eval_file ? &eval : NULL, s.resume, &summary) != RC_OK) {
        fprintf(stderr, "rewardc train: %s\n", rc_last_error());
        goto done;
    }
    if (rc_dist_rank() != 0) { /* rank 0 reports for the job */
        status = 0;
        goto done;
    }
    if (summary.steps == 0) {
        fprintf(stderr, "rewardc train: stopped early as asked (--stop_after_steps); resume with --resume\n");
        status = 0;
        goto done;
    }
    printf("trained %ld steps in %.1f s (%.0f tokens/s); final train loss %.4f\n", summary.steps,
           summary.seconds, summary.tokens_per_second, summary.final_loss);
    if (summary.shared_prefix_tokens)
        printf("shared prompt prefixes: %zu of %zu tokens (%.1f%%) were computed once for both "
               "responses\n", summary.shared_prefix_tokens, summary.tokens,
               100.0 * summary.shared_prefix_tokens / summary.tokens);
    if (s.eval_file)
        printf("eval: pairwise accuracy %.4f (ties %.4f), loss %.4f, reward mean %.4f std %.4f\n",
               summary.eval_accuracy, summary.eval_ties, summary.eval_loss, summary.reward_mean,
               summary.reward_std);
    printf("model saved to %s\n", s.args.output_dir);
    status = 0;
done:
    rc_encoded_pairs_free(&train_enc);
    rc_encoded_pairs_free(&eval_enc);
    rc_pair_list_free(&train_pairs);
    rc_pair_list_free(&eval_pairs);
    rc_tokenizer_free(tok);
    cJSON_Delete(config);
    return status;
usage_error:
    cJSON_Delete(config);
    return 2;
}

/* Under mpirun every rank runs this; a rank that fails ends the whole job,
 * since its peers would otherwise wait for it in their next collective. */
int cmd_train(int argc, char **argv) {
    if (rc_dist_init() != RC_OK) {
        fprintf(stderr, "rewardc train: %s\n", rc_last_error());
        return 1;
    }
    rc_clear_error();
    int status = train_main(argc, argv);
    if (status != 0 && rc_dist_size() > 1) {
        char message[1200];
        snprintf(message, sizeof message, "rewardc train failed, stopping every rank: %s", rc_last_error());
        rc_dist_abort(message);
    }
    rc_dist_finalize();
    return status;
}
