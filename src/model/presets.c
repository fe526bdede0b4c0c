/* Model shapes for `rewardc init`: tiny demo sizes and the published
 * configurations of each family (the config.json of the model named), with
 * OPT's vocabulary padded to 50272 as OPT pads it. The token ids are the
 * published ones; `init` takes the tokenizer's where they differ. */
#include <string.h>

#include "rewardc/workflow.h"

#define OPT_SHAPE(hidden, layers, heads, ffn, proj, pre)                                        \
    {.family = RC_FAMILY_OPT, .vocab_size = 50272, .hidden_size = hidden,                       \
     .num_hidden_layers = layers, .ffn_dim = ffn, .num_attention_heads = heads,                 \
     .num_key_value_heads = heads, .head_dim = (hidden) / (heads),                              \
     .max_position_embeddings = 2048, .word_embed_proj_dim = proj, .norm = RC_NORM_LAYER,       \
     .do_layer_norm_before = pre, .final_norm = pre, .norm_affine = 1, .norm_bias = 1,          \
     .norm_eps = 1e-5, .positions = RC_POS_LEARNED, .position_offset = 2, .qkv_bias = 1,        \
     .out_bias = 1, .mlp_bias = 1, .activation = RC_ACT_RELU, .tie_word_embeddings = 1,         \
     .pad_token_id = 1, .bos_token_id = 2, .eos_token_id = 2, .init_std = 0.02}

/* The Llama block (Llama, Qwen2, Qwen3): RMSNorm, RoPE, SwiGLU. */
#define LLAMA_SHAPE(fam, hidden, layers, heads, kv, dim, ffn, vocab, n_positions, theta, eps,     \
                    tied, pad, bos, eos, std, ...)                                              \
    {.family = fam, .vocab_size = vocab, .hidden_size = hidden, .num_hidden_layers = layers,    \
     .ffn_dim = ffn, .num_attention_heads = heads, .num_key_value_heads = kv, .head_dim = dim,  \
     .max_position_embeddings = n_positions, .word_embed_proj_dim = hidden, .norm = RC_NORM_RMS,\
     .do_layer_norm_before = 1, .final_norm = 1, .norm_affine = 1, .norm_eps = eps,             \
     .positions = RC_POS_ROPE, .rope_theta = theta, .gated_mlp = 1,                             \
     .activation = RC_ACT_SILU, .tie_word_embeddings = tied, .pad_token_id = pad,               \
     .bos_token_id = bos, .eos_token_id = eos, .init_std = std, __VA_ARGS__}

#define LLAMA3_ROPE(factor)                                                                     \
    .rope_type = RC_ROPE_LLAMA3, .rope_factor = factor, .rope_low_freq_factor = 1.0,            \
    .rope_high_freq_factor = 4.0, .rope_original_max_position = 8192

static const rc_model_preset presets[] = {
    {"tiny", "OPT, 2 layers, d_model 64: a demo that trains in minutes on a laptop",
     OPT_SHAPE(64, 2, 4, 256, 64, 1)},
    {"small", "OPT, 4 layers, d_model 128: a demo with more capacity",
     OPT_SHAPE(128, 4, 4, 512, 128, 1)},
    {"opt-125m", "facebook/opt-125m's shape (pre-LN)", OPT_SHAPE(768, 12, 12, 3072, 768, 1)},
    {"opt-350m", "facebook/opt-350m's shape (post-LN, project_in/out 512)",
     OPT_SHAPE(1024, 24, 16, 4096, 512, 0)},
    {"opt-1.3b", "facebook/opt-1.3b's shape", OPT_SHAPE(2048, 24, 32, 8192, 2048, 1)},
    {"opt-2.7b", "facebook/opt-2.7b's shape", OPT_SHAPE(2560, 32, 32, 10240, 2560, 1)},
    {"tiny-llama", "Llama block, 2 layers, d_model 64, 4 heads sharing 2 key/value heads",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 64, 2, 4, 2, 16, 172, 49152, 8192, 100000.0, 1e-5, 1, 2, 1, 2,
                 0.02, .qkv_bias = 0)},
    {"smollm2-135m", "HuggingFaceTB/SmolLM2-135M's shape (Llama, 9 heads, 3 kv heads)",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 576, 30, 9, 3, 64, 1536, 49152, 8192, 100000.0, 1e-5, 1, 2, 1,
                 2, 0.041666666666666664, .qkv_bias = 0)},
    {"smollm2-360m", "HuggingFaceTB/SmolLM2-360M's shape",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 960, 32, 15, 5, 64, 2560, 49152, 8192, 100000.0, 1e-5, 1, 2, 1,
                 2, 0.02, .qkv_bias = 0)},
    {"llama-3.2-1b", "meta-llama/Llama-3.2-1B's shape (llama3 RoPE scaling)",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0, 1e-5, 1,
                 128001, 128000, 128001, 0.02, LLAMA3_ROPE(32.0))},
    {"llama-3.2-3b", "meta-llama/Llama-3.2-3B's shape",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 3072, 28, 24, 8, 128, 8192, 128256, 131072, 500000.0, 1e-5, 1,
                 128001, 128000, 128001, 0.02, LLAMA3_ROPE(32.0))},
    {"llama-3.1-8b", "meta-llama/Llama-3.1-8B's shape",
     LLAMA_SHAPE(RC_FAMILY_LLAMA, 4096, 32, 32, 8, 128, 14336, 128256, 131072, 500000.0, 1e-5, 0,
                 128001, 128000, 128001, 0.02, LLAMA3_ROPE(8.0))},
    {"qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B's shape (q/k/v biases)",
     LLAMA_SHAPE(RC_FAMILY_QWEN2, 896, 24, 14, 2, 64, 4864, 151936, 32768, 1000000.0, 1e-6, 1,
                 151643, 151643, 151643, 0.02, .qkv_bias = 1)},
    {"qwen3-0.6b", "Qwen/Qwen3-0.6B's shape (per-head q/k norms, head_dim 128)",
     LLAMA_SHAPE(RC_FAMILY_QWEN3, 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1000000.0, 1e-6, 1,
                 151643, 151643, 151645, 0.02, .qk_norm = 1)},
    {"gpt2", "openai-community/gpt2's shape (124M)",
     {.family = RC_FAMILY_GPT2, .vocab_size = 50257, .hidden_size = 768, .num_hidden_layers = 12,
      .ffn_dim = 3072, .num_attention_heads = 12, .num_key_value_heads = 12, .head_dim = 64,
      .max_position_embeddings = 1024, .word_embed_proj_dim = 768, .norm = RC_NORM_LAYER,
      .do_layer_norm_before = 1, .final_norm = 1, .norm_affine = 1, .norm_bias = 1,
      .norm_eps = 1e-5, .positions = RC_POS_LEARNED, .qkv_bias = 1, .out_bias = 1,
      .mlp_bias = 1, .activation = RC_ACT_GELU_TANH, .tie_word_embeddings = 1,
      .pad_token_id = 50256, .bos_token_id = 50256, .eos_token_id = 50256, .init_std = 0.02}},
    {"falcon-7b", "tiiuae/falcon-7b's shape (parallel blocks, multi-query attention)",
     {.family = RC_FAMILY_FALCON, .vocab_size = 65024, .hidden_size = 4544,
      .num_hidden_layers = 32, .ffn_dim = 18176, .num_attention_heads = 71,
      .num_key_value_heads = 1, .head_dim = 64, .max_position_embeddings = 2048,
      .word_embed_proj_dim = 4544, .norm = RC_NORM_LAYER, .do_layer_norm_before = 1,
      .final_norm = 1, .norm_affine = 1, .norm_bias = 1, .norm_eps = 1e-5,
      .positions = RC_POS_ROPE, .rope_theta = 10000.0, .rope_factor = 1.0,
      .activation = RC_ACT_GELU, .parallel_block = 1, .tie_word_embeddings = 1,
      .pad_token_id = 11, .bos_token_id = 11, .eos_token_id = 11, .init_std = 0.02}},
};

const rc_model_preset *rc_model_presets(int *count) {
    *count = (int)(sizeof presets / sizeof presets[0]);
    return presets;
}

const rc_model_preset *rc_model_preset_find(const char *name) {
    int n;
    const rc_model_preset *all = rc_model_presets(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i].name, name)) return &all[i];
    return NULL;
}
