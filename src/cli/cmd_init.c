/* rewardc init: a randomly initialised reward model of any family from a
 * named shape. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"

static void usage(FILE *out) {
    int n;
    const rc_model_preset *presets = rc_model_presets(&n);
    fprintf(out,
            "usage: rewardc init --preset NAME --tokenizer DIR --out DIR [--seed N]\n"
            "                    [--max_length N] [--force]\n\n"
            "Creates a randomly initialised reward model (the family's\n"
            "*ForSequenceClassification, num_labels 1) as a Hugging Face folder: config.json,\n"
            "model.safetensors and the tokenizer files, with weights initialised as\n"
            "transformers does. To start from pretrained weights, use a model folder (or\n"
            "`rewardc import --gguf`) with train --model instead.\n\n"
            "  --preset NAME     model shape, one of:\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "                      %-13s %-7s %s\n", presets[i].name,
                rc_family_model_type(presets[i].config.family), presets[i].description);
    fprintf(out,
            "  --tokenizer DIR   a Hugging Face tokenizer folder (its pad/eos ids go to config)\n"
            "  --out DIR         output folder (refused if it already holds a model, unless --force)\n"
            "  --seed N          initialisation seed (default 42)\n"
            "  --max_length N    tokens per sequence for train/eval/score (default 512)\n");
}

int cmd_init(int argc, char **argv) {
    const char *preset_name = NULL, *tokenizer_dir = NULL, *out_dir = NULL;
    const char *seed_text = "42", *max_length_text = "512";
    int force = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (arg_is(argv[i], "--force")) {
            force = 1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--preset", &preset_name)) ||
            (r = arg_value(argc, argv, &i, "--tokenizer", &tokenizer_dir)) ||
            (r = arg_value(argc, argv, &i, "--out", &out_dir)) ||
            (r = arg_value(argc, argv, &i, "--seed", &seed_text)) ||
            (r = arg_value(argc, argv, &i, "--max_length", &max_length_text))) {
            if (r < 0) return 2;
            continue;
        }
        fprintf(stderr, "rewardc init: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!preset_name || !tokenizer_dir || !out_dir) {
        fprintf(stderr, "rewardc init: --preset, --tokenizer and --out are required\n");
        usage(stderr);
        return 2;
    }
    long seed, max_length;
    if (!parse_long("init", "--seed", seed_text, 0, 2147483647L, &seed) ||
        !parse_long("init", "--max_length", max_length_text, 2, 1 << 20, &max_length))
        return 2;
    const rc_model_preset *preset = rc_model_preset_find(preset_name);
    if (!preset) {
        fprintf(stderr, "rewardc init: unknown preset '%s' (see rewardc init --help)\n", preset_name);
        return 2;
    }
    char probe[4096];
    if (!force && rc_path_join(probe, sizeof probe, out_dir, "config.json") == RC_OK &&
        rc_path_is_file(probe)) {
        fprintf(stderr, "rewardc init: %s already holds a model (use --force to overwrite)\n", out_dir);
        return 1;
    }

    rc_tokenizer *tok = NULL;
    if (rc_tokenizer_load(tokenizer_dir, &tok) != RC_OK) {
        fprintf(stderr, "rewardc init: %s\n", rc_last_error());
        return 1;
    }
    rc_model_config cfg = preset->config;
    int vocab = rc_tokenizer_vocab_size(tok);
    int pad = rc_tokenizer_pad_id(tok), eos = rc_tokenizer_eos_id(tok), bos = rc_tokenizer_bos_id(tok);
    rc_reward_meta meta = {.policy = rc_encode_policy_for(tok)};
    meta.policy.max_length = (size_t)max_length;
    rc_tokenizer_free(tok);
    if (pad < 0) {
        fprintf(stderr, "rewardc init: the tokenizer in %s has no pad token; reward models pool at "
                        "the last non-pad token, so one is needed (the OPT tokenizer has <pad>)\n",
                tokenizer_dir);
        return 1;
    }
    if (vocab > cfg.vocab_size) cfg.vocab_size = vocab;
    cfg.pad_token_id = pad;
    if (eos >= 0) cfg.eos_token_id = eos;
    if (bos >= 0) cfg.bos_token_id = bos;
    if (max_length > cfg.max_position_embeddings) {
        fprintf(stderr, "rewardc init: --max_length %ld exceeds the preset's %d positions\n",
                max_length, cfg.max_position_embeddings);
        return 2;
    }

    rc_backend *be = NULL;
    rc_model *model = NULL;
    rc_status st = rc_backend_create("cpu", 0, &be);
    if (st == RC_OK) st = rc_model_create(&cfg, be, (uint64_t)seed, &model);
    if (st == RC_OK) st = rc_model_save(model, out_dir);
    if (st == RC_OK) st = rc_copy_tokenizer_files(tokenizer_dir, out_dir);
    if (st == RC_OK) st = rc_reward_meta_save(out_dir, &meta);
    if (st == RC_OK)
        printf("rewardc init: %s (%s), %.1fM parameters, seed %ld -> %s\n", preset->name,
               preset->description, rc_model_num_parameters(model) / 1e6, seed, out_dir);
    else
        fprintf(stderr, "rewardc init: %s\n", rc_last_error());
    rc_model_free(model);
    rc_backend_destroy(be);
    return st == RC_OK ? 0 : 1;
}
