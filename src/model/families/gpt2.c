/* GPT-2 (GPT2ForSequenceClassification): learned positions from 0,
 * LayerNorm before each block, gelu_new, biases everywhere, and Conv1D
 * weights stored [in, out], q, k and v fused in c_attn's columns. The
 * products read them in place (linear_ref.in_out, .offset). */
#include <math.h>
#include <string.h>

#include "model/family.h"

static void defaults(rc_model_config *c) { /* transformers.GPT2Config */
    c->vocab_size = 50257;
    c->hidden_size = 768;
    c->num_hidden_layers = 12;
    c->num_attention_heads = 12;
    c->max_position_embeddings = 1024;
    c->positions = RC_POS_LEARNED;
    c->norm_bias = 1;
    c->qkv_bias = c->out_bias = c->mlp_bias = 1;
    c->activation = RC_ACT_GELU_TANH;
    c->pad_token_id = -1;
    c->bos_token_id = c->eos_token_id = 50256;
    c->tie_word_embeddings = 1;
}

static rc_status config_from_json(const cJSON *json, const char *where, rc_model_config *c) {
    const family_field ints[] = {
        {"vocab_size", &c->vocab_size},
        {"n_embd", &c->hidden_size},
        {"n_layer", &c->num_hidden_layers},
        {"n_inner", &c->ffn_dim},
        {"n_head", &c->num_attention_heads},
        {"n_positions", &c->max_position_embeddings},
        {"pad_token_id", &c->pad_token_id},
        {"bos_token_id", &c->bos_token_id},
        {"eos_token_id", &c->eos_token_id},
    };
    rc_status st = family_get_ints(json, where, ints, sizeof ints / sizeof ints[0]);
    if (st == RC_OK) st = family_get_activation(json, where, "activation_function", &c->activation);
    if (st == RC_OK) st = family_get_double(json, where, "layer_norm_epsilon", &c->norm_eps);
    if (st == RC_OK) st = family_get_double(json, where, "initializer_range", &c->init_std);
    if (st == RC_OK) st = family_get_bool(json, where, "tie_word_embeddings", &c->tie_word_embeddings);
    int scale = 1, by_layer = 0;
    if (st == RC_OK) st = family_get_bool(json, where, "scale_attn_weights", &scale);
    if (st == RC_OK) st = family_get_bool(json, where, "scale_attn_by_inverse_layer_idx", &by_layer);
    if (st != RC_OK) return st;
    if (!scale || by_layer)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: only scale_attn_weights true and "
                       "scale_attn_by_inverse_layer_idx false are supported", where);
    if (c->ffn_dim <= 0) c->ffn_dim = 4 * c->hidden_size; /* n_inner null */
    if (c->pad_token_id < 0)
        return rc_fail(RC_ERR_FORMAT, "%s: pad_token_id is not set; a reward model reads its "
                       "score at the last token that is not padding, so it needs one (GPT-2 "
                       "reward models usually set it to eos, 50256)", where);
    return RC_OK;
}

static void config_to_json(cJSON *j, const rc_model_config *c) {
    cJSON_AddNumberToObject(j, "n_embd", c->hidden_size);
    cJSON_AddNumberToObject(j, "n_layer", c->num_hidden_layers);
    cJSON_AddNumberToObject(j, "n_head", c->num_attention_heads);
    cJSON_AddNumberToObject(j, "n_inner", c->ffn_dim);
    cJSON_AddNumberToObject(j, "n_positions", c->max_position_embeddings);
    cJSON_AddStringToObject(j, "activation_function", family_activation_name(c->activation));
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->norm_eps);
    cJSON_AddNumberToObject(j, "initializer_range", c->init_std);
    cJSON_AddNumberToObject(j, "resid_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "attn_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "summary_first_dropout", 0.0);
}

/* A Conv1D block: columns [offset, offset + out) of a [in, total] weight. */
static linear_ref conv1d(int w, int b, int column, int total) {
    linear_ref l = {.weight = w, .offset = (size_t)column, .ld = total, .in_out = 1,
                    .bias = b, .bias_offset = (size_t)column};
    return l;
}

static void build_table(rc_model *m, param_table_builder *tb) {
    const rc_model_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->ffn_dim;
    model_params *p = &m->p;
    p->embed_tokens = family_add_param(tb, c->vocab_size, C, 0, "transformer.wte.weight");
    p->embed_positions =
        family_add_param(tb, c->max_position_embeddings, C, 0, "transformer.wpe.weight");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        const char *h = "transformer.h";
        L->attn_norm_w = family_add_param(tb, C, 0, 1, "%s.%d.ln_1.weight", h, l);
        L->attn_norm_b = family_add_param(tb, C, 0, 1, "%s.%d.ln_1.bias", h, l);
        int w = family_add_param(tb, C, 3 * C, 0, "%s.%d.attn.c_attn.weight", h, l);
        int b = family_add_param(tb, 3 * C, 0, 1, "%s.%d.attn.c_attn.bias", h, l);
        L->q = conv1d(w, b, 0, 3 * C);
        L->k = conv1d(w, b, C, 3 * C);
        L->v = conv1d(w, b, 2 * C, 3 * C);
        w = family_add_param(tb, C, C, 0, "%s.%d.attn.c_proj.weight", h, l);
        b = family_add_param(tb, C, 0, 1, "%s.%d.attn.c_proj.bias", h, l);
        L->o = conv1d(w, b, 0, C);
        L->mlp_norm_w = family_add_param(tb, C, 0, 1, "%s.%d.ln_2.weight", h, l);
        L->mlp_norm_b = family_add_param(tb, C, 0, 1, "%s.%d.ln_2.bias", h, l);
        w = family_add_param(tb, C, F, 0, "%s.%d.mlp.c_fc.weight", h, l);
        b = family_add_param(tb, F, 0, 1, "%s.%d.mlp.c_fc.bias", h, l);
        L->up = conv1d(w, b, 0, F);
        w = family_add_param(tb, F, C, 0, "%s.%d.mlp.c_proj.weight", h, l);
        b = family_add_param(tb, C, 0, 1, "%s.%d.mlp.c_proj.bias", h, l);
        L->down = conv1d(w, b, 0, C);
    }
    p->final_norm_w = family_add_param(tb, C, 0, 1, "transformer.ln_f.weight");
    p->final_norm_b = family_add_param(tb, C, 0, 1, "transformer.ln_f.bias");
}

/* GPT2PreTrainedModel._init_weights: the projections into the residual
 * stream (c_proj) get initializer_range / sqrt(2 * n_layer). */
static double init_std(const rc_model *m, const rc_param_info *p) {
    const size_t len = sizeof "c_proj.weight" - 1, name_len = strlen(p->name);
    const int residual = name_len >= len && !strcmp(p->name + name_len - len, "c_proj.weight");
    return residual ? m->cfg.init_std / sqrt(2.0 * m->cfg.num_hidden_layers) : m->cfg.init_std;
}

const rc_family rc_family_gpt2 = {
    .model_type = "gpt2",
    .architecture = "GPT2ForSequenceClassification",
    .base_prefix = "transformer.",
    .embedding_padding_idx = 0,
    .defaults = defaults,
    .config_from_json = config_from_json,
    .config_to_json = config_to_json,
    .build_table = build_table,
    .init_std = init_std,
};
