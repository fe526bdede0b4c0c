/* rewardc import: a GGUF model (llama.cpp's format) becomes a Hugging Face
 * sequence-classification folder that transformers and rewardc load:
 * config.json, model.safetensors (every tensor dequantised to F32 in HF's
 * names and layout, plus a fresh `score.weight` head), and the tokenizer as
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json.
 *
 * Architectures: llama (llama.cpp's q/k row permutation undone), qwen2,
 * qwen3, gpt2 (Conv1D weights back to [in, out]) and falcon (fused qkv back
 * to HF's per-group order). Tokenizers: byte-level BPE (tokenizer.ggml.model
 * "gpt2") with the pre-tokenizers smollm, gpt-2/default, llama-bpe, qwen2
 * and falcon. Anything else is an RC_ERR_UNSUPPORTED naming it. */
#ifndef REWARDC_GGUF_IMPORT_H
#define REWARDC_GGUF_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rewardc/gguf.h"
#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;   /* for score.weight ~ normal(0, 0.02) */
    bool overwrite;  /* replace an existing folder that holds files */
    FILE *progress;  /* one line per layer or so; NULL for none */
} rc_gguf_import_options;

typedef struct {
    char architecture[32];     /* the GGUF's general.architecture */
    char hf_class[64];         /* e.g. LlamaForSequenceClassification */
    size_t n_gguf_tensors;     /* tensors in the file */
    size_t n_hf_tensors;       /* tensors written, score.weight included */
    size_t n_skipped;          /* GGUF tensors not written (an LM head) */
    uint64_t n_parameters;     /* elements written, score.weight included */
    size_t type_counts[RC_GGML_TYPE_LIMIT]; /* GGUF tensors by ggml type */
    bool tied;                 /* tie_word_embeddings */
    size_t vocab_size, n_merges;
} rc_gguf_import_summary;

rc_status rc_gguf_import(const char *gguf_path, const char *out_dir, const rc_gguf_import_options *options,
                         rc_gguf_import_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
