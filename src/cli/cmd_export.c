/* rewardc export --merge: a LoRA run (base + adapter folder) as one plain
 * Hugging Face *ForSequenceClassification folder: every adapted weight
 * W + s B A, the trained score head included, with rewardc's settings and
 * the tokenizer, so transformers (or any tool) loads it without PEFT. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/model.h"
#include "rewardc/workflow.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rewardc export --merge --model RUN --out DIR\n\n"
            "Merges the LoRA adapters of RUN (an adapter folder written by rewardc train\n"
            "--lora_r, or one saved by PEFT) into its base model and writes DIR as a plain\n"
            "Hugging Face folder: config.json, model.safetensors (F32, the score head\n"
            "included), rewardc's settings and the tokenizer files. A RUN without adapters\n"
            "is copied as it is.\n");
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    int merge = 0;
    for (int i = 1; i < argc; i++) {
        const char *value;
        int r;
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (arg_is(argv[i], "--merge")) {
            merge = 1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--model", &value)) != 0) {
            if (r < 0) return 2;
            model = value;
        } else if ((r = arg_value(argc, argv, &i, "--out", &value)) != 0) {
            if (r < 0) return 2;
            out = value;
        } else {
            fprintf(stderr, "rewardc export: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !out || !merge) {
        fprintf(stderr, "rewardc export: --merge, --model and --out are required\n");
        usage(stderr);
        return 2;
    }
    rc_backend *be = NULL;
    rc_model *m = NULL;
    rc_reward_meta meta;
    rc_status st = rc_reward_meta_load(model, &meta);
    if (st == RC_OK) st = rc_backend_create("cpu", 0, &be);
    if (st == RC_OK) st = rc_model_load(model, be, 0, &m, NULL);
    const int had_adapters = st == RC_OK && rc_model_lora_scale(m) != 0.0;
    if (st == RC_OK) st = rc_model_merge_lora(m);
    if (st == RC_OK) st = rc_model_save(m, out);
    if (st == RC_OK) st = rc_reward_meta_save(out, &meta);
    if (st == RC_OK) st = rc_copy_tokenizer_files(model, out);
    rc_model_free(m);
    rc_backend_destroy(be);
    if (st != RC_OK) {
        fprintf(stderr, "rewardc export: %s\n", rc_last_error());
        return 1;
    }
    printf("%s %s into %s\n", had_adapters ? "merged the adapters of" : "copied", model, out);
    return 0;
}
