/* GGUF tensors -> Hugging Face tensors: names, and the layout changes
 * llama.cpp's converter made and this undoes.
 *
 * A GGUF matrix with dims [ne0, ne1] (innermost first) is row-major
 * [ne1][ne0], which is already HF's nn.Linear [out, in]. Three families were
 * rearranged on the way to GGUF:
 *  - llama: the rows of q and k were permuted per head from HF's rotate-half
 *    order (row h*D + i*D/2 + j, i in {0, 1}) to interleaved pairs (row
 *    h*D + 2j + i), with the kv head count for k (LlamaModel.permute);
 *  - falcon: the fused query_key_value rows were regrouped from HF's per
 *    kv-group [q_0..q_{r-1}, k, v] blocks to all q, then all k, then all v;
 *  - gpt2: Conv1D weights ([in, out] in HF) were transposed to [out, in]. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "io/gguf_hf_internal.h"

typedef enum { LAYOUT_AS_IS, LAYOUT_UNPERMUTE_Q, LAYOUT_UNPERMUTE_K, LAYOUT_TRANSPOSE, LAYOUT_FALCON_QKV } layout;

typedef struct {
    const char *gguf; /* suffix after "blk.N." (or the whole name for globals) */
    const char *hf;   /* HF name after the prefix (and "layers.N." / "h.N.") */
    layout how;
} name_rule;

/* Llama, Qwen2, Qwen3. Q/K layouts are undone only where permute_qk. */
static const name_rule llama_globals[] = {
    {"token_embd.weight", "embed_tokens.weight", LAYOUT_AS_IS},
    {"output_norm.weight", "norm.weight", LAYOUT_AS_IS},
};
static const name_rule llama_block[] = {
    {"attn_norm.weight", "input_layernorm.weight", LAYOUT_AS_IS},
    {"attn_q.weight", "self_attn.q_proj.weight", LAYOUT_UNPERMUTE_Q},
    {"attn_q.bias", "self_attn.q_proj.bias", LAYOUT_UNPERMUTE_Q},
    {"attn_k.weight", "self_attn.k_proj.weight", LAYOUT_UNPERMUTE_K},
    {"attn_k.bias", "self_attn.k_proj.bias", LAYOUT_UNPERMUTE_K},
    {"attn_v.weight", "self_attn.v_proj.weight", LAYOUT_AS_IS},
    {"attn_v.bias", "self_attn.v_proj.bias", LAYOUT_AS_IS},
    {"attn_output.weight", "self_attn.o_proj.weight", LAYOUT_AS_IS},
    {"attn_output.bias", "self_attn.o_proj.bias", LAYOUT_AS_IS},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", LAYOUT_AS_IS},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", LAYOUT_AS_IS},
    {"ffn_norm.weight", "post_attention_layernorm.weight", LAYOUT_AS_IS},
    {"ffn_gate.weight", "mlp.gate_proj.weight", LAYOUT_AS_IS},
    {"ffn_up.weight", "mlp.up_proj.weight", LAYOUT_AS_IS},
    {"ffn_down.weight", "mlp.down_proj.weight", LAYOUT_AS_IS},
};
static const name_rule gpt2_globals[] = {
    {"token_embd.weight", "wte.weight", LAYOUT_AS_IS},
    {"position_embd.weight", "wpe.weight", LAYOUT_AS_IS},
    {"output_norm.weight", "ln_f.weight", LAYOUT_AS_IS},
    {"output_norm.bias", "ln_f.bias", LAYOUT_AS_IS},
};
static const name_rule gpt2_block[] = {
    {"attn_norm.weight", "ln_1.weight", LAYOUT_AS_IS},
    {"attn_norm.bias", "ln_1.bias", LAYOUT_AS_IS},
    {"attn_qkv.weight", "attn.c_attn.weight", LAYOUT_TRANSPOSE},
    {"attn_qkv.bias", "attn.c_attn.bias", LAYOUT_AS_IS},
    {"attn_output.weight", "attn.c_proj.weight", LAYOUT_TRANSPOSE},
    {"attn_output.bias", "attn.c_proj.bias", LAYOUT_AS_IS},
    {"ffn_norm.weight", "ln_2.weight", LAYOUT_AS_IS},
    {"ffn_norm.bias", "ln_2.bias", LAYOUT_AS_IS},
    {"ffn_up.weight", "mlp.c_fc.weight", LAYOUT_TRANSPOSE},
    {"ffn_up.bias", "mlp.c_fc.bias", LAYOUT_AS_IS},
    {"ffn_down.weight", "mlp.c_proj.weight", LAYOUT_TRANSPOSE},
    {"ffn_down.bias", "mlp.c_proj.bias", LAYOUT_AS_IS},
};
static const name_rule falcon_globals[] = {
    {"token_embd.weight", "word_embeddings.weight", LAYOUT_AS_IS},
    {"output_norm.weight", "ln_f.weight", LAYOUT_AS_IS},
    {"output_norm.bias", "ln_f.bias", LAYOUT_AS_IS},
};
static const name_rule falcon_block[] = {
    {"attn_norm_2.weight", "ln_mlp.weight", LAYOUT_AS_IS},
    {"attn_norm_2.bias", "ln_mlp.bias", LAYOUT_AS_IS},
    {"attn_qkv.weight", "self_attention.query_key_value.weight", LAYOUT_FALCON_QKV},
    {"attn_qkv.bias", "self_attention.query_key_value.bias", LAYOUT_FALCON_QKV},
    {"attn_output.weight", "self_attention.dense.weight", LAYOUT_AS_IS},
    {"attn_output.bias", "self_attention.dense.bias", LAYOUT_AS_IS},
    {"ffn_up.weight", "mlp.dense_h_to_4h.weight", LAYOUT_AS_IS},
    {"ffn_up.bias", "mlp.dense_h_to_4h.bias", LAYOUT_AS_IS},
    {"ffn_down.weight", "mlp.dense_4h_to_h.weight", LAYOUT_AS_IS},
    {"ffn_down.bias", "mlp.dense_4h_to_h.bias", LAYOUT_AS_IS},
};


static const name_rule *find_rule(const name_rule *rules, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(rules[i].gguf, name) == 0) return &rules[i];
    return NULL;
}

/* Maps a GGUF name to the HF name and layout; *skip for the LM head. */
static rc_status map_name(const rc_gguf *g, const rc_gguf_hf_model *m, const char *name, char *hf, size_t hf_size,
                          layout *how, bool *skip) {
    *skip = false;
    *how = LAYOUT_AS_IS;
    if (strcmp(name, "output.weight") == 0) { /* a classifier has no LM head */
        *skip = true;
        return RC_OK;
    }
    const name_rule *globals, *block;
    size_t n_globals, n_block;
    const char *layers_word;
    switch (m->arch->family) {
    case GGUF_FAMILY_LLAMA:
        globals = llama_globals, n_globals = sizeof llama_globals / sizeof *llama_globals;
        block = llama_block, n_block = sizeof llama_block / sizeof *llama_block;
        layers_word = "layers";
        break;
    case GGUF_FAMILY_GPT2:
        globals = gpt2_globals, n_globals = sizeof gpt2_globals / sizeof *gpt2_globals;
        block = gpt2_block, n_block = sizeof gpt2_block / sizeof *gpt2_block;
        layers_word = "h";
        break;
    default:
        globals = falcon_globals, n_globals = sizeof falcon_globals / sizeof *falcon_globals;
        block = falcon_block, n_block = sizeof falcon_block / sizeof *falcon_block;
        layers_word = "h";
        break;
    }
    const name_rule *rule = find_rule(globals, n_globals, name);
    if (rule) {
        snprintf(hf, hf_size, "%s%s", m->arch->prefix, rule->hf);
        *how = rule->how;
        return RC_OK;
    }
    unsigned layer;
    int used = 0;
    if (sscanf(name, "blk.%u.%n", &layer, &used) == 1 && used > 0 && (int64_t)layer < m->layers) {
        const char *suffix = name + used;
        rule = find_rule(block, n_block, suffix);
        /* Falcon's first norm is ln_attn beside ln_mlp, else input_layernorm */
        const char *falcon_norm = m->falcon_new_arch ? "ln_attn" : "input_layernorm";
        if (!rule && m->arch->family == GGUF_FAMILY_FALCON && strncmp(suffix, "attn_norm.", 10) == 0 &&
            (strcmp(suffix + 10, "weight") == 0 || strcmp(suffix + 10, "bias") == 0)) {
            snprintf(hf, hf_size, "%sh.%u.%s.%s", m->arch->prefix, layer, falcon_norm, suffix + 10);
            return RC_OK;
        }
        if (rule) {
            snprintf(hf, hf_size, "%s%s.%u.%s", m->arch->prefix, layers_word, layer, rule->hf);
            *how = rule->how;
            if (!m->arch->permute_qk && (*how == LAYOUT_UNPERMUTE_Q || *how == LAYOUT_UNPERMUTE_K)) *how = LAYOUT_AS_IS;
            return RC_OK;
        }
    }
    return rc_fail(RC_ERR_UNSUPPORTED, "%s: tensor '%s' has no Hugging Face name for architecture %s", rc_gguf_path(g),
                   name, m->arch->gguf_arch);
}

/* HF row h*D + i*D/2 + j comes from GGUF row h*D + 2j + i (see the top). */
static void unpermute_rows(const float *src, float *dst, int64_t n_heads, int64_t rows, int64_t cols) {
    int64_t d = rows / n_heads, half = d / 2;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < half; j++)
                memcpy(dst + (h * d + i * half + j) * cols, src + (h * d + 2 * j + i) * cols,
                       (size_t)cols * sizeof *src);
}

/* GGUF [all q | all k | all v] rows -> HF per kv group [q.. (r heads), k, v]. */
static void falcon_regroup(const float *src, float *dst, const rc_gguf_hf_model *m, int64_t cols) {
    int64_t d = m->head_dim, r = m->heads / m->kv_heads;
    size_t head = (size_t)(d * cols);
    const float *q = src, *k = src + m->heads * head, *v = k + m->kv_heads * head;
    for (int64_t gr = 0; gr < m->kv_heads; gr++) {
        float *out = dst + gr * (r + 2) * head;
        memcpy(out, q + gr * r * head, r * head * sizeof *src);
        memcpy(out + r * head, k + gr * head, head * sizeof *src);
        memcpy(out + (r + 1) * head, v + gr * head, head * sizeof *src);
    }
}

static void transpose(const float *src, float *dst, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}

static rc_status keep_buffer(rc_gguf_hf_tensor_set *set, float *buffer) {
    if (set->n_buffers == set->cap_buffers) {
        size_t cap = set->cap_buffers ? 2 * set->cap_buffers : 64;
        float **grown = realloc(set->buffers, cap * sizeof *grown);
        if (!grown) return rc_fail(RC_ERR_OOM, "out of memory");
        set->buffers = grown;
        set->cap_buffers = cap;
    }
    set->buffers[set->n_buffers++] = buffer;
    return RC_OK;
}

void rc_gguf_hf_tensor_set_free(rc_gguf_hf_tensor_set *set) {
    for (size_t i = 0; i < set->n_buffers; i++) free(set->buffers[i]);
    free(set->buffers);
    memset(set, 0, sizeof *set);
}

/* Checks that a rearranged tensor has the rows its layout needs. */
static rc_status check_rows(const rc_gguf *g, const rc_gguf_tensor *t, int64_t rows, int64_t want) {
    if (rows == want) return RC_OK;
    return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' has %" PRId64 " rows, the head counts need %" PRId64,
                   rc_gguf_path(g), t->name, rows, want);
}

static rc_status convert_one(const rc_gguf *g, const rc_gguf_hf_model *m, const rc_gguf_tensor *t, layout how,
                             const char *hf_name, rc_st_writer *writer, rc_gguf_hf_tensor_set *set) {
    size_t count = (size_t)t->n_elements;
    if (t->n_elements > SIZE_MAX / sizeof(float))
        return rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' is too large", rc_gguf_path(g), t->name);
    float *raw = malloc((count ? count : 1) * sizeof *raw);
    if (!raw) return rc_fail(RC_ERR_OOM, "out of memory for tensor '%s' (%zu floats)", t->name, count);
    rc_status st = rc_gguf_tensor_to_f32(g, t, raw, count);
    int64_t cols = t->n_dims >= 2 ? (int64_t)t->dims[0] : 1;
    int64_t rows = (int64_t)(count / (size_t)(cols ? cols : 1));
    if (t->n_dims > 2 && st == RC_OK)
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions", rc_gguf_path(g), t->name, t->n_dims);
    float *out = raw;
    if (st == RC_OK && how != LAYOUT_AS_IS) {
        out = malloc((count ? count : 1) * sizeof *out);
        if (!out) st = rc_fail(RC_ERR_OOM, "out of memory for tensor '%s'", t->name);
    }
    if (st == RC_OK) {
        switch (how) {
        case LAYOUT_UNPERMUTE_Q:
            st = check_rows(g, t, rows, m->heads * m->head_dim);
            if (st == RC_OK) unpermute_rows(raw, out, m->heads, rows, cols);
            break;
        case LAYOUT_UNPERMUTE_K:
            st = check_rows(g, t, rows, m->kv_heads * m->head_dim);
            if (st == RC_OK) unpermute_rows(raw, out, m->kv_heads, rows, cols);
            break;
        case LAYOUT_FALCON_QKV:
            st = check_rows(g, t, rows, (m->heads + 2 * m->kv_heads) * m->head_dim);
            if (st == RC_OK) falcon_regroup(raw, out, m, cols);
            break;
        case LAYOUT_TRANSPOSE:
            if (t->n_dims != 2)
                st = rc_fail(RC_ERR_FORMAT, "%s: tensor '%s' should be a matrix", rc_gguf_path(g), t->name);
            else transpose(raw, out, rows, cols);
            break;
        case LAYOUT_AS_IS:
            break;
        }
    }
    if (out != raw) free(raw);
    if (st != RC_OK) {
        free(out);
        return st;
    }
    st = keep_buffer(set, out);
    if (st != RC_OK) {
        free(out);
        return st;
    }
    int64_t shape[2];
    int n_dims = t->n_dims;
    if (n_dims == 1) shape[0] = (int64_t)t->dims[0];
    else if (how == LAYOUT_TRANSPOSE) shape[0] = cols, shape[1] = rows;
    else shape[0] = rows, shape[1] = cols;
    return rc_st_writer_add(writer, hf_name, RC_DTYPE_F32, n_dims, shape, out);
}

/* score.weight [1, hidden] ~ normal(0, initializer_range), as transformers
 * initialises a new head (rewardc's generator, so not torch's numbers). */
static rc_status add_score(const rc_gguf_hf_model *m, uint64_t seed, rc_st_writer *writer,
                           rc_gguf_hf_tensor_set *set) {
    float *w = malloc((size_t)m->hidden * sizeof *w);
    if (!w) return rc_fail(RC_ERR_OOM, "out of memory for score.weight");
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    for (int64_t i = 0; i < m->hidden; i++) w[i] = (float)(rc_rng_normal(&rng) * GGUF_HF_INITIALIZER_RANGE);
    rc_status st = keep_buffer(set, w);
    if (st != RC_OK) {
        free(w);
        return st;
    }
    int64_t shape[2] = {1, m->hidden};
    return rc_st_writer_add(writer, "score.weight", RC_DTYPE_F32, 2, shape, w);
}

rc_status rc_gguf_hf_tensors(const rc_gguf *g, const rc_gguf_hf_model *m, uint64_t seed, FILE *progress,
                             rc_st_writer *writer, rc_gguf_hf_tensor_set *set, rc_gguf_import_summary *summary) {
    size_t n = rc_gguf_tensor_count(g);
    summary->n_gguf_tensors = n;
    for (size_t i = 0; i < n; i++) {
        const rc_gguf_tensor *t = rc_gguf_tensor_at(g, i);
        char hf_name[256];
        layout how;
        bool skip;
        rc_status st = map_name(g, m, t->name, hf_name, sizeof hf_name, &how, &skip);
        if (st != RC_OK) return st;
        summary->type_counts[t->type]++;
        if (skip) {
            summary->n_skipped++;
            continue;
        }
        st = convert_one(g, m, t, how, hf_name, writer, set);
        if (st != RC_OK) return st;
        summary->n_hf_tensors++;
        summary->n_parameters += t->n_elements;
        if (progress && ((i + 1) % (n / 10 ? n / 10 : 1) == 0 || i + 1 == n)) {
            fprintf(progress, "rewardc import: dequantised %zu/%zu tensors\n", i + 1, n);
            fflush(progress);
        }
    }
    rc_status st = add_score(m, seed, writer, set);
    if (st == RC_OK) {
        summary->n_hf_tensors++;
        summary->n_parameters += (uint64_t)m->hidden;
    }
    return st;
}
