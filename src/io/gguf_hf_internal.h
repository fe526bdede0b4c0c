/* Internals of rc_gguf_import (src/io/gguf_hf_*.c, gguf_import.c): what the
 * GGUF's metadata says about the model, and the three writers (config,
 * tensors, tokenizer) that turn it into a Hugging Face folder. */
#ifndef REWARDC_IO_GGUF_HF_INTERNAL_H
#define REWARDC_IO_GGUF_HF_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rewardc/gguf.h"
#include "rewardc/gguf_import.h"
#include "rewardc/safetensors.h"

struct cJSON;

/* Tensor naming families: Llama-like (llama, qwen2, qwen3: "model."), GPT-2
 * and Falcon ("transformer."). */
typedef enum { GGUF_FAMILY_LLAMA, GGUF_FAMILY_GPT2, GGUF_FAMILY_FALCON } rc_gguf_family;

typedef struct {
    const char *gguf_arch;  /* general.architecture */
    const char *model_type; /* HF config model_type */
    const char *hf_class;   /* HF architectures[0] */
    const char *prefix;     /* base model's tensor prefix */
    rc_gguf_family family;
    bool permute_qk;        /* llama.cpp's converter permuted q/k rows */
} rc_gguf_arch;

typedef struct {
    const rc_gguf_arch *arch;
    int64_t hidden, ffn, layers, heads, kv_heads, head_dim, context, vocab;
    double norm_eps, rope_theta;
    bool has_rope_theta;
    bool tied;            /* no separate LM head (or one equal to the embedding) */
    bool falcon_new_arch; /* Falcon with ln_attn / ln_mlp (attn_norm_2) */
    bool qkv_bias;        /* attention projections have biases */
    int64_t bos, eos, pad, unk; /* token ids; -1 when the GGUF has none */
} rc_gguf_hf_model;

enum { GGUF_HF_INIT_SEED_DEFAULT = 42 };
#define GGUF_HF_INITIALIZER_RANGE 0.02

/* Reads the architecture's metadata and checks it against the tensors. */
rc_status rc_gguf_hf_describe(const rc_gguf *g, rc_gguf_hf_model *m);
/* config.json for the HF sequence classifier (num_labels 1, float32). */
rc_status rc_gguf_hf_config(const rc_gguf *g, const rc_gguf_hf_model *m, struct cJSON **out);

/* Dequantised tensors in HF names and layout, plus score.weight; the float
 * buffers are owned by `set` until rc_gguf_hf_tensor_set_free. */
typedef struct {
    float **buffers;
    size_t n_buffers, cap_buffers;
} rc_gguf_hf_tensor_set;
rc_status rc_gguf_hf_tensors(const rc_gguf *g, const rc_gguf_hf_model *m, uint64_t seed, FILE *progress,
                             rc_st_writer *writer, rc_gguf_hf_tensor_set *set, rc_gguf_import_summary *summary);
void rc_gguf_hf_tensor_set_free(rc_gguf_hf_tensor_set *set);

/* tokenizer.json, tokenizer_config.json and special_tokens_map.json in dir. */
rc_status rc_gguf_hf_tokenizer(const rc_gguf *g, const rc_gguf_hf_model *m, const char *dir,
                               rc_gguf_import_summary *summary);

/* Shortest decimal that reads back as the same float32 (1e-05, not
 * 9.99999974737875e-06): GGUF stores these hyper-parameters as float32. */
double rc_gguf_hf_float32_decimal(double value);

#endif
