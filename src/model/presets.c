/* Model shapes for `rewardc init`: tiny demo sizes and the published OPT
 * configurations (the config.json of facebook/opt-125m and its siblings), with
 * the vocabulary padded to 50272 as OPT pads it. */
#include <string.h>

#include "rewardc/workflow.h"

#define OPT_SHAPE(hidden, layers, heads, ffn, proj, pre)                                        \
    {.vocab_size = 50272, .hidden_size = hidden, .num_hidden_layers = layers, .ffn_dim = ffn,   \
     .num_attention_heads = heads, .max_position_embeddings = 2048, .word_embed_proj_dim = proj, \
     .do_layer_norm_before = pre, .enable_bias = 1, .layer_norm_elementwise_affine = 1,         \
     .activation = RC_ACT_RELU, .pad_token_id = 1, .bos_token_id = 2, .eos_token_id = 2,        \
     .init_std = 0.02}

static const rc_model_preset presets[] = {
    {"tiny", "2 layers, d_model 64: a demo that trains in minutes on a laptop",
     OPT_SHAPE(64, 2, 4, 256, 64, 1)},
    {"small", "4 layers, d_model 128: a demo with more capacity",
     OPT_SHAPE(128, 4, 4, 512, 128, 1)},
    {"opt-125m", "facebook/opt-125m's shape (pre-LN)", OPT_SHAPE(768, 12, 12, 3072, 768, 1)},
    {"opt-350m", "facebook/opt-350m's shape (post-LN, project_in/out 512)",
     OPT_SHAPE(1024, 24, 16, 4096, 512, 0)},
    {"opt-1.3b", "facebook/opt-1.3b's shape", OPT_SHAPE(2048, 24, 32, 8192, 2048, 1)},
    {"opt-2.7b", "facebook/opt-2.7b's shape", OPT_SHAPE(2560, 32, 32, 10240, 2560, 1)},
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
