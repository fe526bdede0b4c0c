/* OPTConfig <-> config.json, with transformers' defaults for absent fields. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "rewardc/model.h"

/* Reads an integer field; absent or null keeps the default. */
static rc_status get_int(const cJSON *json, const char *where, const char *key, int *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!item || cJSON_IsNull(item)) return RC_OK;
    if (!cJSON_IsNumber(item) || item->valuedouble != (double)(int)item->valuedouble)
        return rc_fail(RC_ERR_FORMAT, "%s: field \"%s\" must be an integer", where, key);
    *value = (int)item->valuedouble;
    return RC_OK;
}

static rc_status get_bool(const cJSON *json, const char *where, const char *key, int *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!item || cJSON_IsNull(item)) return RC_OK;
    if (!cJSON_IsBool(item))
        return rc_fail(RC_ERR_FORMAT, "%s: field \"%s\" must be true or false", where, key);
    *value = cJSON_IsTrue(item);
    return RC_OK;
}

static const struct {
    const char *name;
    rc_activation kind;
} activations[] = {
    {"relu", RC_ACT_RELU},
    {"gelu", RC_ACT_GELU},
    {"gelu_new", RC_ACT_GELU_TANH},
    {"gelu_pytorch_tanh", RC_ACT_GELU_TANH},
};
enum { N_ACTIVATIONS = sizeof activations / sizeof activations[0] };

rc_status rc_opt_config_from_json(const cJSON *json, const char *where, rc_opt_config *cfg) {
    if (!cJSON_IsObject(json)) return rc_fail(RC_ERR_FORMAT, "%s: not a JSON object", where);
    const cJSON *model_type = cJSON_GetObjectItemCaseSensitive(json, "model_type");
    if (cJSON_IsString(model_type) && strcmp(model_type->valuestring, "opt") != 0)
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: model_type \"%s\" is not supported (rewardc implements OPT)", where,
                       model_type->valuestring);

    /* transformers.OPTConfig defaults */
    rc_opt_config c = {
        .vocab_size = 50272, .hidden_size = 768, .num_hidden_layers = 12, .ffn_dim = 3072,
        .num_attention_heads = 12, .max_position_embeddings = 2048, .word_embed_proj_dim = -1,
        .do_layer_norm_before = 1, .remove_final_layer_norm = 0, .enable_bias = 1,
        .layer_norm_elementwise_affine = 1, .activation = RC_ACT_RELU, .pad_token_id = 1,
        .bos_token_id = 2, .eos_token_id = 2, .init_std = 0.02,
    };
    rc_status st;
#define INT_FIELD(key, member) \
    if ((st = get_int(json, where, key, &c.member)) != RC_OK) return st
#define BOOL_FIELD(key, member) \
    if ((st = get_bool(json, where, key, &c.member)) != RC_OK) return st
    INT_FIELD("vocab_size", vocab_size);
    INT_FIELD("hidden_size", hidden_size);
    INT_FIELD("num_hidden_layers", num_hidden_layers);
    INT_FIELD("ffn_dim", ffn_dim);
    INT_FIELD("num_attention_heads", num_attention_heads);
    INT_FIELD("max_position_embeddings", max_position_embeddings);
    INT_FIELD("word_embed_proj_dim", word_embed_proj_dim);
    INT_FIELD("pad_token_id", pad_token_id);
    INT_FIELD("bos_token_id", bos_token_id);
    INT_FIELD("eos_token_id", eos_token_id);
    BOOL_FIELD("do_layer_norm_before", do_layer_norm_before);
    BOOL_FIELD("_remove_final_layer_norm", remove_final_layer_norm);
    BOOL_FIELD("enable_bias", enable_bias);
    BOOL_FIELD("layer_norm_elementwise_affine", layer_norm_elementwise_affine);
#undef INT_FIELD
#undef BOOL_FIELD
    if (c.word_embed_proj_dim < 0) c.word_embed_proj_dim = c.hidden_size;

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(json, "activation_function");
    if (act && !cJSON_IsNull(act)) {
        if (!cJSON_IsString(act))
            return rc_fail(RC_ERR_FORMAT, "%s: activation_function must be a string", where);
        int found = 0;
        for (int i = 0; i < N_ACTIVATIONS; i++)
            if (!strcmp(act->valuestring, activations[i].name)) {
                c.activation = activations[i].kind;
                found = 1;
            }
        if (!found)
            return rc_fail(RC_ERR_UNSUPPORTED,
                           "%s: activation_function \"%s\" is not supported (relu, gelu, "
                           "gelu_new, gelu_pytorch_tanh are)",
                           where, act->valuestring);
    }
    const cJSON *init_std = cJSON_GetObjectItemCaseSensitive(json, "init_std");
    if (cJSON_IsNumber(init_std)) c.init_std = init_std->valuedouble;

    if ((st = rc_opt_config_validate(&c)) != RC_OK)
        return rc_fail_context(st, "%s", where);
    *cfg = c;
    return RC_OK;
}

rc_status rc_opt_config_validate(const rc_opt_config *c) {
    if (c->vocab_size <= 0 || c->hidden_size <= 0 || c->num_hidden_layers <= 0 ||
        c->ffn_dim <= 0 || c->num_attention_heads <= 0 || c->max_position_embeddings <= 0 ||
        c->word_embed_proj_dim <= 0)
        return rc_fail(RC_ERR_FORMAT,
                       "sizes must be positive (vocab_size %d, hidden_size %d, "
                       "num_hidden_layers %d, ffn_dim %d, num_attention_heads %d, "
                       "max_position_embeddings %d, word_embed_proj_dim %d)",
                       c->vocab_size, c->hidden_size, c->num_hidden_layers, c->ffn_dim,
                       c->num_attention_heads, c->max_position_embeddings,
                       c->word_embed_proj_dim);
    if (c->hidden_size % c->num_attention_heads != 0)
        return rc_fail(RC_ERR_FORMAT, "hidden_size %d is not divisible by num_attention_heads %d",
                       c->hidden_size, c->num_attention_heads);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return rc_fail(RC_ERR_FORMAT, "pad_token_id %d is outside the vocabulary (size %d)",
                       c->pad_token_id, c->vocab_size);
    return RC_OK;
}

cJSON *rc_opt_config_to_json(const rc_opt_config *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("OPTForSequenceClassification"));
    cJSON_AddStringToObject(j, "model_type", "opt");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(j, "ffn_dim", c->ffn_dim);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(j, "word_embed_proj_dim", c->word_embed_proj_dim);
    cJSON_AddBoolToObject(j, "do_layer_norm_before", c->do_layer_norm_before);
    cJSON_AddBoolToObject(j, "_remove_final_layer_norm", c->remove_final_layer_norm);
    cJSON_AddBoolToObject(j, "enable_bias", c->enable_bias);
    cJSON_AddBoolToObject(j, "layer_norm_elementwise_affine", c->layer_norm_elementwise_affine);
    for (int i = 0; i < N_ACTIVATIONS; i++)
        if (activations[i].kind == c->activation) {
            cJSON_AddStringToObject(j, "activation_function", activations[i].name);
            break;
        }
    cJSON_AddNumberToObject(j, "pad_token_id", c->pad_token_id);
    cJSON_AddNumberToObject(j, "bos_token_id", c->bos_token_id);
    cJSON_AddNumberToObject(j, "eos_token_id", c->eos_token_id);
    cJSON_AddNumberToObject(j, "init_std", c->init_std);
    /* rewardc trains without dropout; saying so keeps transformers' forward equal. */
    cJSON_AddNumberToObject(j, "dropout", 0.0);
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(j, "layerdrop", 0.0);
    cJSON_AddNumberToObject(j, "num_labels", 1);
    cJSON *id2label = cJSON_AddObjectToObject(j, "id2label");
    cJSON_AddStringToObject(id2label, "0", "LABEL_0");
    cJSON *label2id = cJSON_AddObjectToObject(j, "label2id");
    cJSON_AddNumberToObject(label2id, "LABEL_0", 0);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    return j;
}

/* Matrix-product FLOPs (2*M*N*K each) of one forward pass of `rows`
 * sequences of T tokens: per layer the q, k, v and out projections, fc1 and
 * fc2, and the attention products QK^T and PV over the full T x T square (the
 * causal mask is applied after the product, as transformers does too); then
 * project_in on every token, project_out on the score rows when
 * word_embed_proj_dim differs from d_model, and the score head. Layer norms,
 * softmax, activations, embeddings and the optimizer are element-wise and not
 * counted. n_scores == 0 counts the dense model (every layer at every token,
 * what transformers computes); n_scores > 0 counts what rewardc executes:
 * the last layer past K and V only at the n_scores score rows. */
double rc_model_forward_flops(const rc_opt_config *c, int rows, int T, int n_scores) {
    const double N = (double)rows * T, C = c->hidden_size, F = c->ffn_dim;
    const double P = c->word_embed_proj_dim;
    const double O = n_scores > 0 ? n_scores : rows;
    const double layer = 4.0 * 2.0 * N * C * C + 2.0 * 2.0 * N * C * F +
                         2.0 * (2.0 * rows * (double)T * T * C); /* attention, all heads */
    /* the last layer: K, V at every token; the rest at R rows, each query
     * against T keys */
    const double R = n_scores > 0 ? n_scores : N;
    const double last = 2.0 * 2.0 * N * C * C + 2.0 * 2.0 * R * C * C + 2.0 * 2.0 * R * C * F +
                        2.0 * (2.0 * R * T * C);
    double flops = (c->num_hidden_layers - 1) * layer + last;
    if (c->word_embed_proj_dim != c->hidden_size) flops += 2.0 * N * P * C + 2.0 * O * C * P;
    return flops + 2.0 * O * P;
}
