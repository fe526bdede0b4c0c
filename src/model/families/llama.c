/* Llama (LlamaForSequenceClassification: SmolLM2, TinyLlama, Llama-3.x):
 * RMSNorm before each block, rotary positions (with Llama-3 scaling),
 * grouped-query attention, a SwiGLU MLP (gate, up, down), no biases unless
 * attention_bias / mlp_bias say so, head_dim explicit or hidden/heads.
 * Qwen2 and Qwen3 reuse this block (qwen.c). */
#include "model/family.h"
#include "model/families/llama_block.h"

static void defaults(rc_model_config *c) { /* transformers.LlamaConfig */
    c->vocab_size = 32000;
    c->hidden_size = 4096;
    c->num_hidden_layers = 32;
    c->ffn_dim = 11008;
    c->num_attention_heads = 32;
    c->max_position_embeddings = 2048;
    c->norm = RC_NORM_RMS;
    c->norm_eps = 1e-6;
    c->positions = RC_POS_ROPE;
    c->gated_mlp = 1;
    c->activation = RC_ACT_SILU;
    c->pad_token_id = -1;
    c->bos_token_id = 1;
    c->eos_token_id = 2;
}

rc_status llama_block_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    const family_field ints[] = {
        {"vocab_size", &c->vocab_size},
        {"hidden_size", &c->hidden_size},
        {"num_hidden_layers", &c->num_hidden_layers},
        {"intermediate_size", &c->ffn_dim},
        {"num_attention_heads", &c->num_attention_heads},
        {"num_key_value_heads", &c->num_key_value_heads},
        {"head_dim", &c->head_dim},
        {"max_position_embeddings", &c->max_position_embeddings},
        {"pad_token_id", &c->pad_token_id},
        {"bos_token_id", &c->bos_token_id},
        {"eos_token_id", &c->eos_token_id},
    };
    const family_field bools[] = {
        {"tie_word_embeddings", &c->tie_word_embeddings},
        {"mlp_bias", &c->mlp_bias},
    };
    rc_status st = family_get_ints(json, where, ints, sizeof ints / sizeof ints[0]);
    if (st == RC_OK) st = family_get_bools(json, where, bools, sizeof bools / sizeof bools[0]);
    if (st == RC_OK) st = family_get_activation(json, where, "hidden_act", &c->activation);
    if (st == RC_OK) st = family_get_double(json, where, "rms_norm_eps", &c->norm_eps);
    if (st == RC_OK) st = family_get_double(json, where, "initializer_range", &c->init_std);
    if (st == RC_OK) st = family_get_rope(json, where, c);
    if (st != RC_OK) return st;
    int sliding = 0;
    if ((st = family_get_bool(json, where, "use_sliding_window", &sliding)) != RC_OK) return st;
    if (sliding)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: use_sliding_window is not supported", where);
    if (c->pad_token_id < 0)
        return rc_fail(RC_ERR_FORMAT,
                       "%s: pad_token_id is not set; a reward model reads its score at the last "
                       "token that is not padding, so it needs one (SmolLM2 uses its eos, 2)",
                       where);
    return RC_OK;
}

void llama_block_to_json(cJSON *j, const rc_model_config *c) {
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(j, "intermediate_size", c->ffn_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->num_key_value_heads);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddStringToObject(j, "hidden_act", family_activation_name(c->activation));
    cJSON_AddNumberToObject(j, "rms_norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(j, "initializer_range", c->init_std);
    family_put_rope(j, c);
    cJSON_AddBoolToObject(j, "mlp_bias", c->mlp_bias);
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
}

static rc_status config_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    rc_status st = llama_block_from_json(json, where, c);
    int attention_bias = 0;
    if (st == RC_OK) st = family_get_bool(json, where, "attention_bias", &attention_bias);
    c->qkv_bias = c->out_bias = attention_bias;
    return st;
}

static void config_to_json(cJSON *j, const rc_model_config *c) {
    llama_block_to_json(j, c);
    cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
}

static linear_ref projection(param_table_builder *tb, int l, const char *module, const char *name,
                             int out, int in, int bias) {
    int w = family_add_param(tb, out, in, 0, "model.layers.%d.%s.%s.weight", l, module, name);
    int b = bias ? family_add_param(tb, out, 0, 1, "model.layers.%d.%s.%s.bias", l, module, name)
                 : RC_NO_PARAM;
    return family_linear(w, b);
}

void llama_block_table(rc_model *m, param_table_builder *tb) {
    const rc_model_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->ffn_dim, D = c->head_dim;
    const int QW = c->num_attention_heads * D, KW = c->num_key_value_heads * D;
    model_params *p = &m->p;
    p->embed_tokens = family_add_param(tb, c->vocab_size, C, 0, "model.embed_tokens.weight");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        L->q = projection(tb, l, "self_attn", "q_proj", QW, C, c->qkv_bias);
        L->k = projection(tb, l, "self_attn", "k_proj", KW, C, c->qkv_bias);
        L->v = projection(tb, l, "self_attn", "v_proj", KW, C, c->qkv_bias);
        L->o = projection(tb, l, "self_attn", "o_proj", C, QW, c->out_bias);
        if (c->qk_norm) {
            L->q_norm = family_add_param(tb, D, 0, 1, "model.layers.%d.self_attn.q_norm.weight", l);
            L->k_norm = family_add_param(tb, D, 0, 1, "model.layers.%d.self_attn.k_norm.weight", l);
        }
        L->gate = projection(tb, l, "mlp", "gate_proj", F, C, c->mlp_bias);
        L->up = projection(tb, l, "mlp", "up_proj", F, C, c->mlp_bias);
        L->down = projection(tb, l, "mlp", "down_proj", C, F, c->mlp_bias);
        L->attn_norm_w = family_add_param(tb, C, 0, 1, "model.layers.%d.input_layernorm.weight", l);
        L->mlp_norm_w =
            family_add_param(tb, C, 0, 1, "model.layers.%d.post_attention_layernorm.weight", l);
    }
    p->final_norm_w = family_add_param(tb, C, 0, 1, "model.norm.weight");
}

const rc_family rc_family_llama = {
    .model_type = "llama",
    .architecture = "LlamaForSequenceClassification",
    .base_prefix = "model.",
    .embedding_padding_idx = 1,
    .defaults = defaults,
    .config_from_json = config_from_json,
    .config_to_json = config_to_json,
    .build_table = llama_block_table,
};
