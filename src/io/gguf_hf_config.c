/* GGUF metadata -> the model's hyper-parameters -> Hugging Face config.json.
 * Keys are "<arch>.<name>" as llama.cpp's converter writes them; the HF
 * names are those of each family's transformers config class. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf_hf_internal.h"

static const rc_gguf_arch arches[] = {
    {"llama", "llama", "LlamaForSequenceClassification", "model.", GGUF_FAMILY_LLAMA, true},
    {"qwen2", "qwen2", "Qwen2ForSequenceClassification", "model.", GGUF_FAMILY_LLAMA, false},
    {"qwen3", "qwen3", "Qwen3ForSequenceClassification", "model.", GGUF_FAMILY_LLAMA, false},
    {"gpt2", "gpt2", "GPT2ForSequenceClassification", "transformer.", GGUF_FAMILY_GPT2, false},
    {"falcon", "falcon", "FalconForSequenceClassification", "transformer.", GGUF_FAMILY_FALCON, false},
};
enum { N_ARCHES = sizeof arches / sizeof arches[0] };

double rc_gguf_hf_float32_decimal(double value) {
    float f = (float)value;
    char text[40];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        double shortest = strtod(text, NULL);
        if ((float)shortest == f) return shortest;
    }
    return value;
}

/* "<arch>.<name>" */
static const char *arch_key(const rc_gguf_hf_model *m, const char *name) {
    static _Thread_local char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch->gguf_arch, name);
    return key;
}

static rc_status get_int(const rc_gguf *g, const rc_gguf_hf_model *m, const char *name, int64_t *out) {
    rc_status st = rc_gguf_get_i64(g, arch_key(m, name), out);
    if (st == RC_OK && *out <= 0)
        return rc_fail(RC_ERR_FORMAT, "%s: %s must be positive, not %" PRId64, rc_gguf_path(g), arch_key(m, name), *out);
    return st;
}

/* Optional integer: `fallback` when absent. */
static rc_status get_int_or(const rc_gguf *g, const rc_gguf_hf_model *m, const char *name, int64_t fallback,
                            int64_t *out) {
    if (!rc_gguf_find(g, arch_key(m, name))) {
        *out = fallback;
        return RC_OK;
    }
    return get_int(g, m, name, out);
}

static int64_t token_id(const rc_gguf *g, const char *key) {
    int64_t id;
    if (!rc_gguf_find(g, key) || rc_gguf_get_i64(g, key, &id) != RC_OK || id < 0) return -1;
    return id;
}

/* Rows of a 2-D tensor (its outer GGUF dim), or 0 when absent. */
static int64_t tensor_rows(const rc_gguf *g, const char *name) {
    const rc_gguf_tensor *t = rc_gguf_find_tensor(g, name);
    return t && t->n_dims == 2 ? (int64_t)t->dims[1] : 0;
}

/* An LM head stored apart from the embedding counts as tied when its bytes
 * are the embedding's (llama.cpp's GPT-2 converter writes such a copy). */
static bool head_is_tied(const rc_gguf *g) {
    const rc_gguf_tensor *out = rc_gguf_find_tensor(g, "output.weight");
    const rc_gguf_tensor *emb = rc_gguf_find_tensor(g, "token_embd.weight");
    if (!out) return true;
    return emb && emb->type == out->type && emb->n_bytes == out->n_bytes &&
           memcmp(emb->data, out->data, out->n_bytes) == 0;
}

rc_status rc_gguf_hf_describe(const rc_gguf *g, rc_gguf_hf_model *m) {
    memset(m, 0, sizeof *m);
    const char *path = rc_gguf_path(g);
    rc_gguf_string arch;
    rc_status st = rc_gguf_get_string(g, "general.architecture", &arch);
    if (st != RC_OK) return st;
    for (int i = 0; i < N_ARCHES; i++)
        if (rc_gguf_string_is(arch, arches[i].gguf_arch)) m->arch = &arches[i];
    if (!m->arch)
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: architecture '%.*s' is not mapped to Hugging Face (rewardc imports llama, qwen2, qwen3, "
                       "gpt2 and falcon)",
                       path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    st = get_int(g, m, "embedding_length", &m->hidden);
    if (st == RC_OK) st = get_int(g, m, "block_count", &m->layers);
    if (st == RC_OK) st = get_int(g, m, "attention.head_count", &m->heads);
    if (st == RC_OK) st = get_int_or(g, m, "attention.head_count_kv", m->heads, &m->kv_heads);
    if (st == RC_OK) st = get_int(g, m, "context_length", &m->context);
    if (st != RC_OK) return st;
    if (m->hidden % m->heads != 0 && !rc_gguf_find(g, arch_key(m, "attention.key_length")))
        return rc_fail(RC_ERR_FORMAT, "%s: %" PRId64 " heads do not divide the width %" PRId64, path, m->heads,
                       m->hidden);
    st = get_int_or(g, m, "attention.key_length", m->hidden / m->heads, &m->head_dim);
    if (st != RC_OK) return st;
    if (m->heads % m->kv_heads != 0)
        return rc_fail(RC_ERR_FORMAT, "%s: %" PRId64 " key/value heads do not divide the %" PRId64 " query heads", path,
                       m->kv_heads, m->heads);
    if (m->arch->permute_qk && m->head_dim % 2 != 0)
        return rc_fail(RC_ERR_FORMAT, "%s: head_dim %" PRId64 " is odd; rotary halves need it even", path, m->head_dim);

    /* the width of the feed-forward layer: metadata, else the up projection */
    int64_t ffn_rows = tensor_rows(g, "blk.0.ffn_up.weight");
    st = get_int_or(g, m, "feed_forward_length", ffn_rows, &m->ffn);
    if (st != RC_OK) return st;
    if (m->ffn <= 0) return rc_fail(RC_ERR_FORMAT, "%s: no feed_forward_length and no blk.0.ffn_up.weight", path);

    const char *eps_key = m->arch->family == GGUF_FAMILY_LLAMA ? "attention.layer_norm_rms_epsilon"
                                                                : "attention.layer_norm_epsilon";
    st = rc_gguf_get_f64(g, arch_key(m, eps_key), &m->norm_eps);
    if (st != RC_OK) return st;
    m->norm_eps = rc_gguf_hf_float32_decimal(m->norm_eps);
    if (rc_gguf_find(g, arch_key(m, "rope.freq_base"))) {
        st = rc_gguf_get_f64(g, arch_key(m, "rope.freq_base"), &m->rope_theta);
        if (st != RC_OK) return st;
        m->rope_theta = rc_gguf_hf_float32_decimal(m->rope_theta);
        m->has_rope_theta = true;
    }
    if (rc_gguf_find_tensor(g, "rope_freqs.weight"))
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: tensor 'rope_freqs.weight' (Llama 3.1-style rope scaling) has no Hugging Face mapping "
                       "here: its parameters are not stored in the GGUF",
                       path);

    /* vocabulary: the embedding's rows (the metadata key is optional) */
    m->vocab = tensor_rows(g, "token_embd.weight");
    if (m->vocab <= 0) return rc_fail(RC_ERR_FORMAT, "%s: no 2-D tensor 'token_embd.weight'", path);
    const rc_gguf_tensor *emb = rc_gguf_find_tensor(g, "token_embd.weight");
    if ((int64_t)emb->dims[0] != m->hidden)
        return rc_fail(RC_ERR_FORMAT, "%s: token_embd.weight rows are %" PRIu64 " wide, embedding_length is %" PRId64,
                       path, emb->dims[0], m->hidden);
    m->tied = head_is_tied(g);
    m->falcon_new_arch = rc_gguf_find_tensor(g, "blk.0.attn_norm_2.weight") != NULL;
    m->qkv_bias = rc_gguf_find_tensor(g, "blk.0.attn_q.bias") || rc_gguf_find_tensor(g, "blk.0.attn_qkv.bias");
    m->bos = token_id(g, "tokenizer.ggml.bos_token_id");
    m->eos = token_id(g, "tokenizer.ggml.eos_token_id");
    m->pad = token_id(g, "tokenizer.ggml.padding_token_id");
    m->unk = token_id(g, "tokenizer.ggml.unknown_token_id");
    return RC_OK;
}

static void add_id(cJSON *c, const char *name, int64_t id) {
    if (id >= 0) cJSON_AddNumberToObject(c, name, (double)id);
    else cJSON_AddNullToObject(c, name);
}

/* rope_scaling from <arch>.rope.scaling.{type,factor,original_context_length} */
static rc_status add_rope_scaling(const rc_gguf *g, const rc_gguf_hf_model *m, cJSON *c) {
    rc_gguf_string type;
    if (!rc_gguf_find(g, arch_key(m, "rope.scaling.type")) ||
        (rc_gguf_get_string(g, arch_key(m, "rope.scaling.type"), &type) == RC_OK && rc_gguf_string_is(type, "none"))) {
        cJSON_AddNullToObject(c, "rope_scaling");
        return RC_OK;
    }
    rc_status st = rc_gguf_get_string(g, arch_key(m, "rope.scaling.type"), &type);
    double factor;
    if (st == RC_OK) st = rc_gguf_get_f64(g, arch_key(m, "rope.scaling.factor"), &factor);
    if (st != RC_OK) return st;
    bool linear = rc_gguf_string_is(type, "linear"), yarn = rc_gguf_string_is(type, "yarn");
    if (!linear && !yarn)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: %s '%.*s' has no Hugging Face mapping here (linear and yarn do)",
                       rc_gguf_path(g), arch_key(m, "rope.scaling.type"), (int)(type.len > 32 ? 32 : type.len),
                       type.ptr);
    cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
    cJSON_AddStringToObject(rs, "rope_type", linear ? "linear" : "yarn");
    cJSON_AddNumberToObject(rs, "factor", rc_gguf_hf_float32_decimal(factor));
    int64_t original;
    if (yarn && rc_gguf_find(g, arch_key(m, "rope.scaling.original_context_length")) &&
        rc_gguf_get_i64(g, arch_key(m, "rope.scaling.original_context_length"), &original) == RC_OK)
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", (double)original);
    return RC_OK;
}

static void add_common_tail(cJSON *c, const rc_gguf_hf_model *m) {
    cJSON_AddNumberToObject(c, "vocab_size", (double)m->vocab);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", m->tied);
    add_id(c, "bos_token_id", m->bos);
    add_id(c, "eos_token_id", m->eos);
    add_id(c, "pad_token_id", m->pad);
    cJSON_AddNumberToObject(c, "initializer_range", GGUF_HF_INITIALIZER_RANGE);
    /* num_labels 1, as transformers writes it: one label in each map */
    cJSON *id2label = cJSON_AddObjectToObject(c, "id2label");
    cJSON_AddStringToObject(id2label, "0", "LABEL_0");
    cJSON *label2id = cJSON_AddObjectToObject(c, "label2id");
    cJSON_AddNumberToObject(label2id, "LABEL_0", 0);
    cJSON_AddStringToObject(c, "torch_dtype", "float32");
}

rc_status rc_gguf_hf_config(const rc_gguf *g, const rc_gguf_hf_model *m, cJSON **out) {
    cJSON *c = cJSON_CreateObject();
    if (!c) return rc_fail(RC_ERR_OOM, "out of memory building config.json");
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(m->arch->hf_class));
    cJSON_AddStringToObject(c, "model_type", m->arch->model_type);
    rc_status st = RC_OK;
    switch (m->arch->family) {
    case GGUF_FAMILY_LLAMA:
        cJSON_AddNumberToObject(c, "hidden_size", (double)m->hidden);
        cJSON_AddNumberToObject(c, "intermediate_size", (double)m->ffn);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)m->layers);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)m->heads);
        cJSON_AddNumberToObject(c, "num_key_value_heads", (double)m->kv_heads);
        cJSON_AddNumberToObject(c, "head_dim", (double)m->head_dim);
        cJSON_AddStringToObject(c, "hidden_act", "silu");
        cJSON_AddNumberToObject(c, "rms_norm_eps", m->norm_eps);
        cJSON_AddNumberToObject(c, "rope_theta", m->has_rope_theta ? m->rope_theta : 10000.0);
        st = add_rope_scaling(g, m, c);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)m->context);
        if (m->arch->permute_qk) { /* llama */
            cJSON_AddBoolToObject(c, "attention_bias", m->qkv_bias);
            cJSON_AddBoolToObject(c, "mlp_bias", false);
        } else if (strcmp(m->arch->model_type, "qwen3") == 0) {
            cJSON_AddBoolToObject(c, "attention_bias", m->qkv_bias);
        }
        if (!m->arch->permute_qk) cJSON_AddBoolToObject(c, "use_sliding_window", false);
        cJSON_AddNumberToObject(c, "attention_dropout", 0.0);
        break;
    case GGUF_FAMILY_GPT2:
        cJSON_AddNumberToObject(c, "n_embd", (double)m->hidden);
        cJSON_AddNumberToObject(c, "n_layer", (double)m->layers);
        cJSON_AddNumberToObject(c, "n_head", (double)m->heads);
        cJSON_AddNumberToObject(c, "n_inner", (double)m->ffn);
        cJSON_AddNumberToObject(c, "n_positions", (double)m->context);
        cJSON_AddNumberToObject(c, "n_ctx", (double)m->context);
        cJSON_AddNumberToObject(c, "layer_norm_epsilon", m->norm_eps);
        cJSON_AddStringToObject(c, "activation_function", "gelu_new");
        break;
    case GGUF_FAMILY_FALCON:
        cJSON_AddNumberToObject(c, "hidden_size", (double)m->hidden);
        cJSON_AddNumberToObject(c, "ffn_hidden_size", (double)m->ffn);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)m->layers);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)m->heads);
        cJSON_AddNumberToObject(c, "num_kv_heads", (double)m->kv_heads);
        cJSON_AddBoolToObject(c, "new_decoder_architecture", m->falcon_new_arch);
        cJSON_AddBoolToObject(c, "multi_query", !m->falcon_new_arch && m->kv_heads == 1);
        cJSON_AddBoolToObject(c, "parallel_attn", true);
        cJSON_AddBoolToObject(c, "bias", m->qkv_bias);
        cJSON_AddBoolToObject(c, "alibi", false);
        cJSON_AddNumberToObject(c, "layer_norm_epsilon", m->norm_eps);
        cJSON_AddNumberToObject(c, "rope_theta", m->has_rope_theta ? m->rope_theta : 10000.0);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)m->context);
        break;
    }
    if (m->arch->family != GGUF_FAMILY_LLAMA && m->head_dim * m->heads != m->hidden)
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: head_dim %" PRId64 " x %" PRId64 " heads != width %" PRId64
                     " (not expressible in a %s config)", rc_gguf_path(g), m->head_dim, m->heads, m->hidden,
                     m->arch->model_type);
    if (st != RC_OK) {
        cJSON_Delete(c);
        return st;
    }
    add_common_tail(c, m);
    *out = c;
    return RC_OK;
}
