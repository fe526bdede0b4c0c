/* Qwen2 (Qwen2ForSequenceClassification: Qwen2, Qwen2.5) is the Llama block
 * with biases on q, k and v; Qwen3 (Qwen3ForSequenceClassification) drops
 * them (attention_bias) and normalises each head of q and k with an RMSNorm
 * before the rotation, with head_dim independent of hidden_size. */
#include "model/family.h"
#include "model/families/llama_block.h"

static void qwen_defaults(rc_model_config *c) { /* Qwen2Config, Qwen3Config */
    c->vocab_size = 151936;
    c->hidden_size = 4096;
    c->num_hidden_layers = 32;
    c->ffn_dim = 22016;
    c->num_attention_heads = 32;
    c->num_key_value_heads = 32;
    c->max_position_embeddings = 32768;
    c->norm = RC_NORM_RMS;
    c->norm_eps = 1e-6;
    c->positions = RC_POS_ROPE;
    c->gated_mlp = 1;
    c->activation = RC_ACT_SILU;
    c->pad_token_id = -1;
    c->bos_token_id = 151643;
    c->eos_token_id = 151643;
}

static void qwen2_defaults(rc_model_config *c) {
    qwen_defaults(c);
    c->qkv_bias = 1;
}

static void qwen3_defaults(rc_model_config *c) {
    qwen_defaults(c);
    c->head_dim = 128;
    c->qk_norm = 1;
}

static rc_status qwen3_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    rc_status st = llama_block_from_json(json, where, c);
    int attention_bias = 0;
    if (st == RC_OK) st = family_get_bool(json, where, "attention_bias", &attention_bias);
    c->qkv_bias = c->out_bias = attention_bias;
    return st;
}

static void qwen3_to_json(cJSON *j, const rc_model_config *c) {
    llama_block_to_json(j, c);
    cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
    cJSON_AddBoolToObject(j, "use_sliding_window", 0);
}

static void qwen2_to_json(cJSON *j, const rc_model_config *c) {
    llama_block_to_json(j, c);
    cJSON_AddBoolToObject(j, "use_sliding_window", 0);
}

const rc_family rc_family_qwen2 = {
    .model_type = "qwen2",
    .architecture = "Qwen2ForSequenceClassification",
    .base_prefix = "model.",
    .embedding_padding_idx = 1,
    .defaults = qwen2_defaults,
    .config_from_json = llama_block_from_json,
    .config_to_json = qwen2_to_json,
    .build_table = llama_block_table,
};

const rc_family rc_family_qwen3 = {
    .model_type = "qwen3",
    .architecture = "Qwen3ForSequenceClassification",
    .base_prefix = "model.",
    .embedding_padding_idx = 1,
    .defaults = qwen3_defaults,
    .config_from_json = qwen3_from_json,
    .config_to_json = qwen3_to_json,
    .build_table = llama_block_table,
};
