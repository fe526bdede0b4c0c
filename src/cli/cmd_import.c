/* rewardc import: a GGUF model (llama.cpp's format) as a Hugging Face
 * sequence-classification folder, ready for train / eval / score. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"
#include "rewardc/gguf.h"
#include "rewardc/gguf_import.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rewardc import --gguf FILE --out DIR [--seed N] [--force]\n\n"
            "Turns a GGUF model into a Hugging Face reward-model folder: config.json (the\n"
            "*ForSequenceClassification class, num_labels 1, float32), model.safetensors\n"
            "(every tensor dequantised to F32 in HF's names and layout, and a new score.weight\n"
            "head ~ normal(0, 0.02)), tokenizer.json, tokenizer_config.json (with the chat\n"
            "template) and special_tokens_map.json. The folder is assembled beside DIR and\n"
            "renamed into place.\n\n"
            "Architectures: llama, qwen2, qwen3, gpt2, falcon. Types: F32, F16, BF16, Q8_0,\n"
            "Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Tokenizer: byte-level BPE.\n\n"
            "  --gguf FILE   the .gguf model\n"
            "  --out DIR     output folder (refused if it holds files, unless --force)\n"
            "  --seed N      seed of the score head's initialisation (default 42)\n"
            "  --force       replace an existing folder\n");
}

/* The encode policy train, eval and score will share (rc_encode_policy_for). */
static rc_status write_policy(const char *dir) {
    rc_tokenizer *tok = NULL;
    rc_status st = rc_tokenizer_load(dir, &tok);
    if (st != RC_OK) return st;
    rc_reward_meta meta = {.policy = rc_encode_policy_for(tok)};
    rc_tokenizer_free(tok);
    return rc_reward_meta_save(dir, &meta);
}

static void print_summary(const rc_gguf_import_summary *s, const char *out_dir, long seed) {
    printf("rewardc import: %s -> %s (%s)\n", s->architecture, s->hf_class, out_dir);
    printf("  tensors: %zu in the GGUF, %zu written (score.weight included), %zu skipped (LM head)\n",
           s->n_gguf_tensors, s->n_hf_tensors, s->n_skipped);
    printf("  dequantised:");
    const char *sep = " ";
    for (uint32_t t = 0; t < RC_GGML_TYPE_LIMIT; t++) {
        if (!s->type_counts[t]) continue;
        printf("%s%zu %s", sep, s->type_counts[t], rc_ggml_type_name(t));
        sep = ", ";
    }
    printf("\n  parameters: %llu (%.1fM), tie_word_embeddings %s, score head seed %ld\n",
           (unsigned long long)s->n_parameters, s->n_parameters / 1e6, s->tied ? "true" : "false", seed);
    printf("  tokenizer: %zu tokens, %zu merges\n", s->vocab_size, s->n_merges);
}

int cmd_import(int argc, char **argv) {
    const char *gguf_path = NULL, *out_dir = NULL, *seed_text = "42";
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
        if ((r = arg_value(argc, argv, &i, "--gguf", &gguf_path)) ||
            (r = arg_value(argc, argv, &i, "--out", &out_dir)) ||
            (r = arg_value(argc, argv, &i, "--seed", &seed_text))) {
            if (r < 0) return 2;
            continue;
        }
        fprintf(stderr, "rewardc import: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!gguf_path || !out_dir) {
        fprintf(stderr, "rewardc import: --gguf and --out are required\n");
        usage(stderr);
        return 2;
    }
    long seed;
    if (!parse_long("import", "--seed", seed_text, 0, 2147483647L, &seed)) return 2;
    rc_gguf_import_options opt = {.seed = (uint64_t)seed, .overwrite = force != 0, .progress = stderr};
    rc_gguf_import_summary summary;
    fprintf(stderr, "rewardc import: reading %s\n", gguf_path);
    if (rc_gguf_import(gguf_path, out_dir, &opt, &summary) != RC_OK) {
        fprintf(stderr, "rewardc import: %s\n", rc_last_error());
        return 1;
    }
    if (write_policy(out_dir) != RC_OK) {
        fprintf(stderr, "rewardc import: %s\n", rc_last_error());
        return 1;
    }
    print_summary(&summary, out_dir, seed);
    return 0;
}
