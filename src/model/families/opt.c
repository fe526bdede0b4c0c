/* OPT (transformers' OPTForSequenceClassification): learned positions at an
 * offset of 2, LayerNorm before each block (after it for opt-350m), ReLU MLP
 * fc1/fc2, biases everywhere, and project_in/project_out where
 * word_embed_proj_dim differs from hidden_size. */
#include "model/family.h"

static void defaults(rc_model_config *c) { /* transformers.OPTConfig */
    c->vocab_size = 50272;
    c->hidden_size = 768;
    c->num_hidden_layers = 12;
    c->ffn_dim = 3072;
    c->num_attention_heads = 12;
    c->max_position_embeddings = 2048;
    c->positions = RC_POS_LEARNED;
    c->position_offset = 2;
    c->norm_bias = 1;
    c->qkv_bias = c->out_bias = c->mlp_bias = 1;
    c->activation = RC_ACT_RELU;
    c->pad_token_id = 1;
    c->bos_token_id = c->eos_token_id = 2;
    c->tie_word_embeddings = 1;
}

static rc_status config_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    int remove_final = 0, bias = 1, affine = 1;
    const family_field ints[] = {
        {"vocab_size", &c->vocab_size},
        {"hidden_size", &c->hidden_size},
        {"num_hidden_layers", &c->num_hidden_layers},
        {"ffn_dim", &c->ffn_dim},
        {"num_attention_heads", &c->num_attention_heads},
        {"max_position_embeddings", &c->max_position_embeddings},
        {"word_embed_proj_dim", &c->word_embed_proj_dim},
        {"pad_token_id", &c->pad_token_id},
        {"bos_token_id", &c->bos_token_id},
        {"eos_token_id", &c->eos_token_id},
    };
    const family_field bools[] = {
        {"do_layer_norm_before", &c->do_layer_norm_before},
        {"_remove_final_layer_norm", &remove_final},
        {"enable_bias", &bias},
        {"layer_norm_elementwise_affine", &affine},
        {"tie_word_embeddings", &c->tie_word_embeddings},
    };
    rc_status st = family_get_ints(json, where, ints, sizeof ints / sizeof ints[0]);
    if (st == RC_OK) st = family_get_bools(json, where, bools, sizeof bools / sizeof bools[0]);
    if (st == RC_OK) st = family_get_activation(json, where, "activation_function", &c->activation);
    if (st == RC_OK) st = family_get_double(json, where, "init_std", &c->init_std);
    c->final_norm = c->do_layer_norm_before && !remove_final;
    c->qkv_bias = c->out_bias = c->mlp_bias = bias;
    c->norm_affine = c->norm_bias = affine;
    return st;
}

static void config_to_json(cJSON *j, const rc_model_config *c) {
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(j, "ffn_dim", c->ffn_dim);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(j, "word_embed_proj_dim", c->word_embed_proj_dim);
    cJSON_AddBoolToObject(j, "do_layer_norm_before", c->do_layer_norm_before);
    cJSON_AddBoolToObject(j, "_remove_final_layer_norm", c->do_layer_norm_before && !c->final_norm);
    cJSON_AddBoolToObject(j, "enable_bias", c->qkv_bias);
    cJSON_AddBoolToObject(j, "layer_norm_elementwise_affine", c->norm_affine);
    cJSON_AddStringToObject(j, "activation_function", family_activation_name(c->activation));
    cJSON_AddNumberToObject(j, "init_std", c->init_std);
    /* rewardc trains without dropout; saying so keeps transformers' forward equal */
    cJSON_AddNumberToObject(j, "dropout", 0.0);
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(j, "layerdrop", 0.0);
}

static void build_table(rc_model *m, param_table_builder *tb) {
    const rc_model_config *c = &m->cfg;
    const int C = c->hidden_size, P = c->word_embed_proj_dim, F = c->ffn_dim;
    const int bias = c->qkv_bias, affine = c->norm_affine;
    const char *d = "model.decoder";
    model_params *p = &m->p;
    p->embed_tokens = family_add_param(tb, c->vocab_size, P, 0, "%s.embed_tokens.weight", d);
    p->embed_positions = family_add_param(tb, c->max_position_embeddings + 2, C, 0,
                                          "%s.embed_positions.weight", d);
    if (P != C) {
        p->project_out = family_add_param(tb, P, C, 0, "%s.project_out.weight", d);
        p->project_in = family_add_param(tb, C, P, 0, "%s.project_in.weight", d);
    }
    if (c->final_norm && affine) {
        p->final_norm_w = family_add_param(tb, C, 0, 1, "%s.final_layer_norm.weight", d);
        p->final_norm_b = family_add_param(tb, C, 0, 1, "%s.final_layer_norm.bias", d);
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        const char *proj[4] = {"k_proj", "v_proj", "q_proj", "out_proj"};
        linear_ref *lin[4] = {&L->k, &L->v, &L->q, &L->o};
        for (int i = 0; i < 4; i++) {
            int w = family_add_param(tb, C, C, 0, "%s.layers.%d.self_attn.%s.weight", d, l, proj[i]);
            int b = bias ? family_add_param(tb, C, 0, 1, "%s.layers.%d.self_attn.%s.bias", d, l,
                                            proj[i])
                         : RC_NO_PARAM;
            *lin[i] = family_linear(w, b);
        }
        if (affine) {
            L->attn_norm_w = family_add_param(tb, C, 0, 1, "%s.layers.%d.self_attn_layer_norm.weight", d, l);
            L->attn_norm_b = family_add_param(tb, C, 0, 1, "%s.layers.%d.self_attn_layer_norm.bias", d, l);
        }
        int w = family_add_param(tb, F, C, 0, "%s.layers.%d.fc1.weight", d, l);
        int b = bias ? family_add_param(tb, F, 0, 1, "%s.layers.%d.fc1.bias", d, l) : RC_NO_PARAM;
        L->up = family_linear(w, b);
        w = family_add_param(tb, C, F, 0, "%s.layers.%d.fc2.weight", d, l);
        b = bias ? family_add_param(tb, C, 0, 1, "%s.layers.%d.fc2.bias", d, l) : RC_NO_PARAM;
        L->down = family_linear(w, b);
        if (affine) {
            L->mlp_norm_w = family_add_param(tb, C, 0, 1, "%s.layers.%d.final_layer_norm.weight", d, l);
            L->mlp_norm_b = family_add_param(tb, C, 0, 1, "%s.layers.%d.final_layer_norm.bias", d, l);
        }
    }
}

const rc_family rc_family_opt = {
    .model_type = "opt",
    .architecture = "OPTForSequenceClassification",
    .base_prefix = "model.",
    .embedding_padding_idx = 1,
    .defaults = defaults,
    .config_from_json = config_from_json,
    .config_to_json = config_to_json,
    .build_table = build_table,
};
