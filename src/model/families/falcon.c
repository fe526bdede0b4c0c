/* Falcon (FalconForSequenceClassification) in the 7b layout: one LayerNorm
 * feeding attention and the MLP side by side (parallel_attn), multi-query
 * attention (one key/value head) with rotary positions, q, k and v fused in
 * query_key_value's rows [q heads | k | v], a GELU MLP of 4h, no linear
 * biases (config "bias"). Sequential blocks (parallel_attn false) have a
 * post_attention_layernorm. The 40b/180b layout (new_decoder_architecture,
 * grouped kv heads interleaved with their queries) and ALiBi are refused. */
#include "model/family.h"

static void defaults(rc_model_config *c) { /* transformers.FalconConfig */
    c->vocab_size = 65024;
    c->hidden_size = 4544;
    c->num_hidden_layers = 32;
    c->num_attention_heads = 71;
    c->max_position_embeddings = 2048;
    c->positions = RC_POS_ROPE;
    c->norm_bias = 1;
    c->activation = RC_ACT_GELU;
    c->parallel_block = 1;
    c->pad_token_id = -1;
    c->bos_token_id = c->eos_token_id = 11;
    c->tie_word_embeddings = 1;
}

static rc_status config_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    int multi_query = 1, new_arch = 0, alibi = 0, bias = 0;
    const family_field ints[] = {
        {"vocab_size", &c->vocab_size},
        {"hidden_size", &c->hidden_size},
        {"num_hidden_layers", &c->num_hidden_layers},
        {"num_attention_heads", &c->num_attention_heads},
        {"ffn_hidden_size", &c->ffn_dim},
        {"max_position_embeddings", &c->max_position_embeddings},
        {"pad_token_id", &c->pad_token_id},
        {"bos_token_id", &c->bos_token_id},
        {"eos_token_id", &c->eos_token_id},
    };
    const family_field bools[] = {
        {"multi_query", &multi_query},
        {"new_decoder_architecture", &new_arch},
        {"alibi", &alibi},
        {"bias", &bias},
        {"parallel_attn", &c->parallel_block},
        {"tie_word_embeddings", &c->tie_word_embeddings},
    };
    rc_status st = family_get_ints(json, where, ints, sizeof ints / sizeof ints[0]);
    if (st == RC_OK) st = family_get_bools(json, where, bools, sizeof bools / sizeof bools[0]);
    if (st == RC_OK) st = family_get_activation(json, where, "activation", &c->activation);
    if (st == RC_OK) st = family_get_double(json, where, "layer_norm_epsilon", &c->norm_eps);
    if (st == RC_OK) st = family_get_double(json, where, "initializer_range", &c->init_std);
    if (st == RC_OK) st = family_get_rope(json, where, c);
    if (st != RC_OK) return st;
    if (new_arch || alibi || !multi_query)
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: Falcon is supported in the 7b layout (multi_query true, "
                       "new_decoder_architecture false, alibi false)", where);
    if (c->pad_token_id < 0)
        return rc_fail(RC_ERR_FORMAT, "%s: pad_token_id is not set; a reward model reads its "
                       "score at the last token that is not padding, so it needs one", where);
    if (c->ffn_dim <= 0) c->ffn_dim = 4 * c->hidden_size;
    c->num_key_value_heads = 1;
    c->qkv_bias = c->out_bias = c->mlp_bias = bias;
    return RC_OK;
}

static void config_to_json(cJSON *j, const rc_model_config *c) {
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(j, "ffn_hidden_size", c->ffn_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddBoolToObject(j, "multi_query", 1);
    cJSON_AddBoolToObject(j, "new_decoder_architecture", 0);
    cJSON_AddBoolToObject(j, "alibi", 0);
    cJSON_AddBoolToObject(j, "bias", c->qkv_bias);
    cJSON_AddBoolToObject(j, "parallel_attn", c->parallel_block);
    cJSON_AddStringToObject(j, "activation", family_activation_name(c->activation));
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->norm_eps);
    cJSON_AddNumberToObject(j, "initializer_range", c->init_std);
    family_put_rope(j, c);
    cJSON_AddNumberToObject(j, "hidden_dropout", 0.0);
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
}

/* Rows [row, row + out) of a fused [total, in] weight. */
static linear_ref rows_of(int w, int b, int row, int in) {
    linear_ref l = {.weight = w, .offset = (size_t)row * in, .bias = b,
                    .bias_offset = (size_t)row};
    return l;
}

static void build_table(rc_model *m, param_table_builder *tb) {
    const rc_model_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->ffn_dim, D = c->head_dim;
    const int QW = c->num_attention_heads * D, fused = QW + 2 * D, bias = c->qkv_bias;
    const char *h = "transformer.h";
    model_params *p = &m->p;
    p->embed_tokens = family_add_param(tb, c->vocab_size, C, 0, "transformer.word_embeddings.weight");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        int w = family_add_param(tb, fused, C, 0, "%s.%d.self_attention.query_key_value.weight", h, l);
        int b = bias ? family_add_param(tb, fused, 0, 1, "%s.%d.self_attention.query_key_value.bias",
                                        h, l)
                     : RC_NO_PARAM;
        L->q = rows_of(w, b, 0, C);
        L->k = rows_of(w, b, QW, C);
        L->v = rows_of(w, b, QW + D, C);
        w = family_add_param(tb, C, QW, 0, "%s.%d.self_attention.dense.weight", h, l);
        b = bias ? family_add_param(tb, C, 0, 1, "%s.%d.self_attention.dense.bias", h, l) : RC_NO_PARAM;
        L->o = family_linear(w, b);
        w = family_add_param(tb, F, C, 0, "%s.%d.mlp.dense_h_to_4h.weight", h, l);
        b = bias ? family_add_param(tb, F, 0, 1, "%s.%d.mlp.dense_h_to_4h.bias", h, l) : RC_NO_PARAM;
        L->up = family_linear(w, b);
        w = family_add_param(tb, C, F, 0, "%s.%d.mlp.dense_4h_to_h.weight", h, l);
        b = bias ? family_add_param(tb, C, 0, 1, "%s.%d.mlp.dense_4h_to_h.bias", h, l) : RC_NO_PARAM;
        L->down = family_linear(w, b);
        L->attn_norm_w = family_add_param(tb, C, 0, 1, "%s.%d.input_layernorm.weight", h, l);
        L->attn_norm_b = family_add_param(tb, C, 0, 1, "%s.%d.input_layernorm.bias", h, l);
        if (!c->parallel_block) {
            L->mlp_norm_w = family_add_param(tb, C, 0, 1, "%s.%d.post_attention_layernorm.weight", h, l);
            L->mlp_norm_b = family_add_param(tb, C, 0, 1, "%s.%d.post_attention_layernorm.bias", h, l);
        }
    }
    p->final_norm_w = family_add_param(tb, C, 0, 1, "transformer.ln_f.weight");
    p->final_norm_b = family_add_param(tb, C, 0, 1, "transformer.ln_f.bias");
}

const rc_family rc_family_falcon = {
    .model_type = "falcon",
    .architecture = "FalconForSequenceClassification",
    .base_prefix = "transformer.",
    .embedding_padding_idx = 0,
    .defaults = defaults,
    .config_from_json = config_from_json,
    .config_to_json = config_to_json,
    .build_table = build_table,
};
