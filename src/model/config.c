/* The family-neutral config: defaults, config.json in and out (by
 * model_type, through the family files), validation, and FLOP counts; plus
 * the config.json helpers the family files share. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/family.h"

static const rc_family *const families[RC_FAMILY_COUNT] = {
    [RC_FAMILY_OPT] = &rc_family_opt,     [RC_FAMILY_GPT2] = &rc_family_gpt2,
    [RC_FAMILY_LLAMA] = &rc_family_llama, [RC_FAMILY_QWEN2] = &rc_family_qwen2,
    [RC_FAMILY_QWEN3] = &rc_family_qwen3, [RC_FAMILY_FALCON] = &rc_family_falcon,
};

const rc_family *rc_family_of(rc_family_id id) {
    return id >= 0 && id < RC_FAMILY_COUNT ? families[id] : families[RC_FAMILY_OPT];
}
const char *rc_family_model_type(rc_family_id id) { return rc_family_of(id)->model_type; }
const char *rc_family_architecture(rc_family_id id) { return rc_family_of(id)->architecture; }

void rc_model_config_defaults(rc_family_id family, rc_model_config *c) {
    memset(c, 0, sizeof *c);
    c->family = family;
    c->init_std = 0.02;
    c->norm_eps = 1e-5;
    c->norm_affine = 1;
    c->do_layer_norm_before = 1;
    c->final_norm = 1;
    c->rope_theta = 10000.0;
    c->rope_factor = 1.0;
    rc_family_of(family)->defaults(c);
}

/* Filled from others where config.json leaves them out. */
static void derive(rc_model_config *c) {
    if (c->num_key_value_heads <= 0) c->num_key_value_heads = c->num_attention_heads;
    if (c->head_dim <= 0 && c->num_attention_heads > 0)
        c->head_dim = c->hidden_size / c->num_attention_heads;
    if (c->word_embed_proj_dim <= 0) c->word_embed_proj_dim = c->hidden_size;
}

rc_status rc_model_config_from_json(const cJSON *json, const char *where, rc_model_config *cfg) {
    if (!cJSON_IsObject(json)) return rc_fail(RC_ERR_FORMAT, "%s: not a JSON object", where);
    const cJSON *model_type = cJSON_GetObjectItemCaseSensitive(json, "model_type");
    rc_family_id id = RC_FAMILY_OPT; /* rewardc's first checkpoints had no model_type */
    if (model_type && !cJSON_IsString(model_type))
        return rc_fail(RC_ERR_FORMAT, "%s: model_type must be a string", where);
    if (cJSON_IsString(model_type)) {
        int found = 0;
        for (int i = 0; i < RC_FAMILY_COUNT && !found; i++)
            if (!strcmp(model_type->valuestring, families[i]->model_type)) {
                id = (rc_family_id)i;
                found = 1;
            }
        if (!found) {
            char known[256] = "";
            for (int i = 0; i < RC_FAMILY_COUNT; i++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         i ? ", " : "", families[i]->model_type);
            return rc_fail(RC_ERR_UNSUPPORTED,
                           "%s: model_type \"%s\" is not supported (rewardc implements %s)",
                           where, model_type->valuestring, known);
        }
    }
    rc_model_config c;
    rc_model_config_defaults(id, &c);
    rc_status st = families[id]->config_from_json(json, where, &c);
    if (st != RC_OK) return st;
    derive(&c);
    if ((st = rc_model_config_validate(&c)) != RC_OK) return rc_fail_context(st, "%s", where);
    *cfg = c;
    return RC_OK;
}

rc_status rc_model_config_validate(const rc_model_config *c) {
    /* bounds far past any published model, so products of sizes fit size_t
     * and int tensor shapes */
    const struct {
        const char *name;
        int value, max;
    } sizes[] = {
        {"vocab_size", c->vocab_size, 1 << 24},
        {"hidden_size", c->hidden_size, 1 << 17},
        {"num_hidden_layers", c->num_hidden_layers, 1 << 12},
        {"intermediate size", c->ffn_dim, 1 << 19},
        {"num_attention_heads", c->num_attention_heads, 1 << 12},
        {"num_key_value_heads", c->num_key_value_heads, 1 << 12},
        {"head_dim", c->head_dim, 1 << 12},
        {"max_position_embeddings", c->max_position_embeddings, 1 << 22},
        {"word_embed_proj_dim", c->word_embed_proj_dim, 1 << 17},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value <= 0 || sizes[i].value > sizes[i].max)
            return rc_fail(RC_ERR_FORMAT, "%s is %d: it must be between 1 and %d", sizes[i].name,
                           sizes[i].value, sizes[i].max);
    if (c->family < 0 || c->family >= RC_FAMILY_COUNT)
        return rc_fail(RC_ERR_FORMAT, "unknown model family %d", (int)c->family);
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return rc_fail(RC_ERR_FORMAT,
                       "num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       c->num_attention_heads, c->num_key_value_heads);
    if (c->positions == RC_POS_LEARNED &&
        (c->family == RC_FAMILY_OPT || c->family == RC_FAMILY_GPT2) &&
        c->hidden_size != c->num_attention_heads * c->head_dim)
        return rc_fail(RC_ERR_FORMAT, "hidden_size %d is not divisible by num_attention_heads %d",
                       c->hidden_size, c->num_attention_heads);
    if (c->positions == RC_POS_ROPE && c->head_dim % 2 != 0)
        return rc_fail(RC_ERR_FORMAT, "head_dim %d must be even for rotary positions",
                       c->head_dim);
    if (c->positions == RC_POS_ROPE && !(c->rope_theta > 0 && isfinite(c->rope_theta)))
        return rc_fail(RC_ERR_FORMAT, "rope_theta %g must be a positive number", c->rope_theta);
    if (c->rope_type != RC_ROPE_DEFAULT && !(c->rope_factor > 0 && isfinite(c->rope_factor)))
        return rc_fail(RC_ERR_FORMAT, "rope_scaling factor %g must be positive", c->rope_factor);
    if (c->rope_type == RC_ROPE_LLAMA3 &&
        (c->rope_original_max_position <= 0 ||
         !(c->rope_high_freq_factor > c->rope_low_freq_factor) || !(c->rope_low_freq_factor > 0)))
        return rc_fail(RC_ERR_FORMAT,
                       "llama3 rope_scaling needs original_max_position_embeddings > 0 and "
                       "high_freq_factor > low_freq_factor > 0");
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return rc_fail(RC_ERR_FORMAT, "the norm epsilon %g must lie in (0, 1)", c->norm_eps);
    if (!(c->init_std >= 0 && isfinite(c->init_std)))
        return rc_fail(RC_ERR_FORMAT, "init_std %g must be a non-negative number", c->init_std);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return rc_fail(RC_ERR_FORMAT, "pad_token_id %d is outside the vocabulary (size %d)",
                       c->pad_token_id, c->vocab_size);
    return RC_OK;
}

cJSON *rc_model_config_to_json(const rc_model_config *c) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    family_put_common(j, c);
    rc_family_of(c->family)->config_to_json(j, c);
    return j;
}

/* Matrix-product FLOPs (2*M*N*K each) of one forward pass of `rows`
 * sequences of T tokens: per layer the q, k, v and out projections, the
 * MLP's two or three products, and the attention products QK^T and PV over
 * the full T x T square (the causal mask is applied after the product, as
 * transformers does too); then project_in on every token, project_out on the
 * score rows when word_embed_proj_dim differs from d_model, and the score
 * head. Norms, softmax, activations, rotations, embeddings and the optimizer
 * are element-wise and not counted. n_scores == 0 counts the dense model
 * (every layer at every token, what transformers computes); n_scores > 0
 * counts what rewardc executes: the last layer past K and V only at the
 * n_scores score rows. */
double rc_model_forward_flops(const rc_model_config *c, int rows, int T, int n_scores) {
    const double N = (double)rows * T, C = c->hidden_size, F = c->ffn_dim;
    const double QW = (double)c->num_attention_heads * c->head_dim;
    const double KW = (double)c->num_key_value_heads * c->head_dim;
    const double P = c->word_embed_proj_dim, mlp_products = c->gated_mlp ? 3.0 : 2.0;
    const double O = n_scores > 0 ? n_scores : rows;
    const double kv = 2.0 * 2.0 * N * C * KW;
    const double rest_per_row = 2.0 * 2.0 * C * QW + mlp_products * 2.0 * C * F;
    const double layer = kv + N * rest_per_row + 2.0 * (2.0 * rows * (double)T * T * QW);
    /* the last layer: K, V at every token; the rest at R rows, each query
     * against T keys */
    const double R = n_scores > 0 ? n_scores : N;
    const double last = kv + R * rest_per_row + 2.0 * (2.0 * R * T * QW);
    double flops = (c->num_hidden_layers - 1) * layer + last;
    if (c->word_embed_proj_dim != c->hidden_size) flops += 2.0 * N * P * C + 2.0 * O * C * P;
    return flops + 2.0 * O * P;
}

/* ---- config.json helpers for the family files ---- */

rc_status family_get_int(const cJSON *json, const char *where, const char *key, int *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!item || cJSON_IsNull(item)) return RC_OK;
    if (!cJSON_IsNumber(item) || !(fabs(item->valuedouble) <= 2147483647.0) ||
        item->valuedouble != floor(item->valuedouble))
        return rc_fail(RC_ERR_FORMAT, "%s: field \"%s\" must be an integer (of 32 bits)", where,
                       key);
    *value = (int)item->valuedouble;
    return RC_OK;
}

rc_status family_get_bool(const cJSON *json, const char *where, const char *key, int *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!item || cJSON_IsNull(item)) return RC_OK;
    if (!cJSON_IsBool(item))
        return rc_fail(RC_ERR_FORMAT, "%s: field \"%s\" must be true or false", where, key);
    *value = cJSON_IsTrue(item);
    return RC_OK;
}

rc_status family_get_double(const cJSON *json, const char *where, const char *key,
                            double *value) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!item || cJSON_IsNull(item)) return RC_OK;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return rc_fail(RC_ERR_FORMAT, "%s: field \"%s\" must be a number", where, key);
    *value = item->valuedouble;
    return RC_OK;
}

rc_status family_get_ints(const cJSON *json, const char *where, const family_field *fields,
                          size_t n) {
    rc_status st = RC_OK;
    for (size_t i = 0; i < n && st == RC_OK; i++)
        st = family_get_int(json, where, fields[i].key, fields[i].value);
    return st;
}

rc_status family_get_bools(const cJSON *json, const char *where, const family_field *fields,
                           size_t n) {
    rc_status st = RC_OK;
    for (size_t i = 0; i < n && st == RC_OK; i++)
        st = family_get_bool(json, where, fields[i].key, fields[i].value);
    return st;
}

static const struct {
    const char *name;
    rc_activation kind;
} activations[] = {
    {"relu", RC_ACT_RELU},          {"gelu", RC_ACT_GELU},
    {"gelu_new", RC_ACT_GELU_TANH}, {"gelu_pytorch_tanh", RC_ACT_GELU_TANH},
    {"silu", RC_ACT_SILU},          {"swish", RC_ACT_SILU},
};
enum { N_ACTIVATIONS = sizeof activations / sizeof activations[0] };

rc_status family_get_activation(const cJSON *json, const char *where, const char *key,
                                rc_activation *value) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(json, key);
    if (!act || cJSON_IsNull(act)) return RC_OK;
    if (!cJSON_IsString(act))
        return rc_fail(RC_ERR_FORMAT, "%s: %s must be a string", where, key);
    for (int i = 0; i < N_ACTIVATIONS; i++)
        if (!strcmp(act->valuestring, activations[i].name)) {
            *value = activations[i].kind;
            return RC_OK;
        }
    return rc_fail(RC_ERR_UNSUPPORTED,
                   "%s: %s \"%s\" is not supported (relu, gelu, gelu_new, gelu_pytorch_tanh, "
                   "silu are)", where, key, act->valuestring);
}

const char *family_activation_name(rc_activation kind) {
    for (int i = 0; i < N_ACTIVATIONS; i++)
        if (activations[i].kind == kind) return activations[i].name;
    return "relu";
}

/* The scaling object: rope_scaling (4.x, "type" in older files) or
 * rope_parameters (5.x, which also holds rope_theta). */
static rc_status get_rope_scaling(const cJSON *s, const char *where, rc_model_config *c) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(s, "type");
    const char *name = cJSON_IsString(type) ? type->valuestring : "default";
    if (!strcmp(name, "default")) c->rope_type = RC_ROPE_DEFAULT;
    else if (!strcmp(name, "linear")) c->rope_type = RC_ROPE_LINEAR;
    else if (!strcmp(name, "llama3")) c->rope_type = RC_ROPE_LLAMA3;
    else
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: rope type \"%s\" is not supported (default, linear, llama3 are)",
                       where, name);
    rc_status st = family_get_double(s, where, "rope_theta", &c->rope_theta);
    if (st == RC_OK) st = family_get_double(s, where, "factor", &c->rope_factor);
    if (st == RC_OK) st = family_get_double(s, where, "low_freq_factor", &c->rope_low_freq_factor);
    if (st == RC_OK)
        st = family_get_double(s, where, "high_freq_factor", &c->rope_high_freq_factor);
    if (st == RC_OK)
        st = family_get_int(s, where, "original_max_position_embeddings",
                            &c->rope_original_max_position);
    return st;
}

rc_status family_get_rope(const cJSON *json, const char *where, rc_model_config *c) {
    rc_status st = family_get_double(json, where, "rope_theta", &c->rope_theta);
    const char *keys[] = {"rope_scaling", "rope_parameters"};
    for (int i = 0; i < 2 && st == RC_OK; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, keys[i]);
        if (!s || cJSON_IsNull(s)) continue;
        if (!cJSON_IsObject(s))
            return rc_fail(RC_ERR_FORMAT, "%s: %s must be an object or null", where, keys[i]);
        st = get_rope_scaling(s, where, c);
    }
    return st;
}

void family_put_rope(cJSON *j, const rc_model_config *c) {
    cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
    if (c->rope_type == RC_ROPE_DEFAULT) {
        cJSON_AddNullToObject(j, "rope_scaling");
        return;
    }
    cJSON *s = cJSON_AddObjectToObject(j, "rope_scaling");
    cJSON_AddStringToObject(s, "rope_type", c->rope_type == RC_ROPE_LLAMA3 ? "llama3" : "linear");
    cJSON_AddNumberToObject(s, "factor", c->rope_factor);
    if (c->rope_type == RC_ROPE_LLAMA3) {
        cJSON_AddNumberToObject(s, "low_freq_factor", c->rope_low_freq_factor);
        cJSON_AddNumberToObject(s, "high_freq_factor", c->rope_high_freq_factor);
        cJSON_AddNumberToObject(s, "original_max_position_embeddings",
                                c->rope_original_max_position);
    }
}

void family_put_common(cJSON *j, const rc_model_config *c) {
    const rc_family *f = rc_family_of(c->family);
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(f->architecture));
    cJSON_AddStringToObject(j, "model_type", f->model_type);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "pad_token_id", c->pad_token_id);
    cJSON_AddNumberToObject(j, "bos_token_id", c->bos_token_id);
    cJSON_AddNumberToObject(j, "eos_token_id", c->eos_token_id);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddNumberToObject(j, "num_labels", 1);
    cJSON *id2label = cJSON_AddObjectToObject(j, "id2label");
    cJSON_AddStringToObject(id2label, "0", "LABEL_0");
    cJSON *label2id = cJSON_AddObjectToObject(j, "label2id");
    cJSON_AddNumberToObject(label2id, "LABEL_0", 0);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
}
