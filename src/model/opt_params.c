/* The OPT parameter table (HF names, shapes, offsets), creation with
 * transformers' initialisation, and parameter accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/opt_internal.h"

typedef struct {
    rc_param_info *table;
    int count, capacity;
    size_t offset;
} table_builder;

/* Appends a parameter and returns its index (RC_NO_PARAM if allocation failed:
 * the builder remembers nothing more and the caller checks `table`). */
static int add_param(table_builder *tb, const char *name, int rows, int cols, int no_decay) {
    if (!tb->table) return RC_NO_PARAM;
    if (tb->count == tb->capacity) {
        int cap = tb->capacity ? tb->capacity * 2 : 64;
        rc_param_info *grown = realloc(tb->table, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(tb->table);
            tb->table = NULL;
            return RC_NO_PARAM;
        }
        tb->table = grown;
        tb->capacity = cap;
    }
    rc_param_info *p = &tb->table[tb->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols > 0 ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols > 0 ? cols : 0;
    p->size = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    p->offset = tb->offset;
    /* keep every tensor 16-element aligned so device kernels see aligned starts */
    tb->offset += (p->size + 15) & ~(size_t)15;
    p->no_weight_decay = no_decay;
    return tb->count++;
}

static int add_layer_param(table_builder *tb, int layer, const char *leaf, int rows, int cols,
                           int no_decay) {
    char name[RC_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "model.decoder.layers.%d.%s", layer, leaf);
    return add_param(tb, name, rows, cols, no_decay);
}

/* Builds the table in transformers' module order. */
static rc_status build_table(rc_model *m) {
    const rc_opt_config *c = &m->cfg;
    const int C = c->hidden_size, P = c->word_embed_proj_dim, F = c->ffn_dim;
    const int bias = c->enable_bias, affine = c->layer_norm_elementwise_affine;
    table_builder tb = {.table = malloc(64 * sizeof(rc_param_info)), .capacity = 64};
    opt_params *p = &m->p;
    p->layers = calloc((size_t)c->num_hidden_layers, sizeof *p->layers);
    if (!tb.table || !p->layers) {
        free(tb.table);
        return rc_fail(RC_ERR_OOM, "cannot allocate the parameter table");
    }
    p->embed_tokens = add_param(&tb, "model.decoder.embed_tokens.weight", c->vocab_size, P, 0);
    p->embed_positions = add_param(&tb, "model.decoder.embed_positions.weight",
                                   c->max_position_embeddings + 2, C, 0);
    p->project_out = p->project_in = p->final_ln_w = p->final_ln_b = RC_NO_PARAM;
    if (P != C) {
        p->project_out = add_param(&tb, "model.decoder.project_out.weight", P, C, 0);
        p->project_in = add_param(&tb, "model.decoder.project_in.weight", C, P, 0);
    }
    if (c->do_layer_norm_before && !c->remove_final_layer_norm && affine) {
        p->final_ln_w = add_param(&tb, "model.decoder.final_layer_norm.weight", C, 0, 1);
        p->final_ln_b = add_param(&tb, "model.decoder.final_layer_norm.bias", C, 0, 1);
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        opt_layer_params *L = &p->layers[l];
        const char *proj[4] = {"k_proj", "v_proj", "q_proj", "out_proj"};
        int *weights[4] = {&L->k_w, &L->v_w, &L->q_w, &L->out_w};
        int *biases[4] = {&L->k_b, &L->v_b, &L->q_b, &L->out_b};
        for (int i = 0; i < 4; i++) {
            char leaf[64];
            snprintf(leaf, sizeof leaf, "self_attn.%s.weight", proj[i]);
            *weights[i] = add_layer_param(&tb, l, leaf, C, C, 0);
            *biases[i] = RC_NO_PARAM;
            if (bias) {
                snprintf(leaf, sizeof leaf, "self_attn.%s.bias", proj[i]);
                *biases[i] = add_layer_param(&tb, l, leaf, C, 0, 1);
            }
        }
        L->attn_ln_w = L->attn_ln_b = L->mlp_ln_w = L->mlp_ln_b = RC_NO_PARAM;
        if (affine) {
            L->attn_ln_w = add_layer_param(&tb, l, "self_attn_layer_norm.weight", C, 0, 1);
            L->attn_ln_b = add_layer_param(&tb, l, "self_attn_layer_norm.bias", C, 0, 1);
        }
        L->fc1_w = add_layer_param(&tb, l, "fc1.weight", F, C, 0);
        L->fc1_b = bias ? add_layer_param(&tb, l, "fc1.bias", F, 0, 1) : RC_NO_PARAM;
        L->fc2_w = add_layer_param(&tb, l, "fc2.weight", C, F, 0);
        L->fc2_b = bias ? add_layer_param(&tb, l, "fc2.bias", C, 0, 1) : RC_NO_PARAM;
        if (affine) {
            L->mlp_ln_w = add_layer_param(&tb, l, "final_layer_norm.weight", C, 0, 1);
            L->mlp_ln_b = add_layer_param(&tb, l, "final_layer_norm.bias", C, 0, 1);
        }
    }
    p->score = add_param(&tb, "score.weight", 1, P, 0);
    if (!tb.table) return rc_fail(RC_ERR_OOM, "cannot allocate the parameter table");
    m->table = tb.table;
    m->n_params = tb.count;
    m->n_elements = tb.offset;
    return RC_OK;
}

/* transformers' OPTPreTrainedModel._init_weights for one tensor: Linear and
 * Embedding weights ~ normal(0, init_std), biases 0, LayerNorm weight 1 and
 * bias 0 (the padding row of embed_tokens is zeroed by the caller). */
static void init_tensor(const rc_model *m, const rc_param_info *p, float *w, rc_rng *rng) {
    if (strstr(p->name, "layer_norm")) {
        float v = strstr(p->name, ".weight") ? 1.0f : 0.0f;
        for (size_t j = 0; j < p->size; j++) w[j] = v;
    } else if (p->ndim == 2) {
        for (size_t j = 0; j < p->size; j++) w[j] = (float)(rc_rng_normal(rng) * m->cfg.init_std);
    } else {
        memset(w, 0, p->size * sizeof *w);
    }
}

static rc_status init_weights(rc_model *m, uint64_t seed) {
    float *host = malloc(m->n_elements * sizeof *host);
    if (!host) return rc_fail(RC_ERR_OOM, "cannot allocate %zu bytes to initialise weights",
                              m->n_elements * sizeof *host);
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_params; i++) init_tensor(m, &m->table[i], host + m->table[i].offset, &rng);
    int pad = m->cfg.pad_token_id, P = m->cfg.word_embed_proj_dim;
    memset(host + m->table[m->p.embed_tokens].offset + (size_t)pad * P, 0, (size_t)P * sizeof *host);
    rc_status st = m->be->upload(m->be, (rc_view){m->params, 0}, host, m->n_elements);
    free(host);
    return st;
}

rc_status opt_init_param(rc_model *m, int index, uint64_t seed) {
    const rc_param_info *p = &m->table[index];
    float *host = malloc(p->size * sizeof *host);
    if (!host) return rc_fail(RC_ERR_OOM, "cannot allocate %zu floats for %s", p->size, p->name);
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    init_tensor(m, p, host, &rng);
    rc_status st = rc_model_set_param(m, index, host, p->size);
    free(host);
    return st;
}

rc_status opt_model_new(const rc_opt_config *cfg, rc_backend *be, uint64_t seed, int initialise,
                        rc_model **out) {
    *out = NULL;
    rc_status st = rc_opt_config_validate(cfg);
    if (st != RC_OK) return st;
    rc_model *m = calloc(1, sizeof *m);
    if (!m) return rc_fail(RC_ERR_OOM, "cannot allocate the model");
    m->cfg = *cfg;
    m->be = be;
    if ((st = build_table(m)) != RC_OK) {
        rc_model_free(m);
        return st;
    }
    /* gradients are allocated when the model is reserved for training */
    if ((st = be->alloc(be, m->n_elements, &m->params)) != RC_OK) {
        rc_model_free(m);
        return rc_fail_context(st, "allocating %zu parameters (%.1f MB)", m->n_elements,
                               m->n_elements * 4.0 / 1e6);
    }
    if (initialise && (st = init_weights(m, seed)) != RC_OK) {
        rc_model_free(m);
        return st;
    }
    *out = m;
    return RC_OK;
}

rc_status rc_model_create(const rc_opt_config *cfg, rc_backend *be, uint64_t seed, rc_model **out) {
    return opt_model_new(cfg, be, seed, 1, out);
}

void rc_model_free(rc_model *m) {
    if (!m) return;
    if (m->params) m->be->free(m->be, m->params);
    if (m->grads) m->be->free(m->be, m->grads);
    if (m->acts) m->be->free(m->be, m->acts);
    free(m->plan.layer);
    free(m->pooled_index);
    free(m->score_slots);
    free(m->p.layers);
    free(m->table);
    free(m);
}

const rc_opt_config *rc_model_config(const rc_model *m) { return &m->cfg; }
rc_backend *rc_model_backend(const rc_model *m) { return m->be; }
int rc_model_param_count(const rc_model *m) { return m->n_params; }
const rc_param_info *rc_model_param(const rc_model *m, int index) { return &m->table[index]; }
rc_view rc_model_params_view(const rc_model *m) { return (rc_view){m->params, 0}; }
rc_view rc_model_grads_view(const rc_model *m) { return (rc_view){m->grads, 0}; }

size_t rc_model_num_parameters(const rc_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->table[i].size;
    return n;
}

int rc_model_find_param(const rc_model *m, const char *hf_name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->table[i].name, hf_name)) return i;
    return RC_NO_PARAM;
}

rc_view opt_param(const rc_model *m, int index) {
    if (index == RC_NO_PARAM) return (rc_view){NULL, 0};
    return (rc_view){m->params, m->table[index].offset};
}

rc_view opt_grad(const rc_model *m, int index) {
    if (index == RC_NO_PARAM) return (rc_view){NULL, 0};
    return (rc_view){m->grads, m->table[index].offset};
}

static rc_status check_size(const rc_model *m, int index, size_t n) {
    if (index < 0 || index >= m->n_params)
        return rc_fail(RC_ERR_INVALID_ARG, "parameter index %d out of range", index);
    if (n != m->table[index].size)
        return rc_fail(RC_ERR_INVALID_ARG, "%s has %zu elements, not %zu", m->table[index].name,
                       m->table[index].size, n);
    return RC_OK;
}

rc_status rc_model_get_param(rc_model *m, int index, float *dst, size_t n) {
    rc_status st = check_size(m, index, n);
    return st != RC_OK ? st : m->be->download(m->be, dst, opt_param(m, index), n);
}

rc_status rc_model_set_param(rc_model *m, int index, const float *src, size_t n) {
    rc_status st = check_size(m, index, n);
    return st != RC_OK ? st : m->be->upload(m->be, opt_param(m, index), src, n);
}

rc_status rc_model_get_grad(rc_model *m, int index, float *dst, size_t n) {
    rc_status st = check_size(m, index, n);
    if (st == RC_OK && !m->grads)
        st = rc_fail(RC_ERR_INVALID_ARG, "no gradients: the model is not reserved for training");
    return st != RC_OK ? st : m->be->download(m->be, dst, opt_grad(m, index), n);
}

/* Backward writes only the embedding rows of a batch's tokens and positions,
 * so those gradients are zeroed in a way that lets the backend release the
 * rows no batch touches (at OPT-125m, most of the 154 MB token table). That
 * pays only for rows of a quarter page (1 KiB) or more: narrower rows share
 * pages with many neighbours, which a batch's tokens touch anyway, and the
 * released pages cost a fault each when written again. The dense runs
 * between tables (offsets ascend in table order) are filled. */
void rc_model_zero_grad(rc_model *m) {
    if (!m->grads) return;
    rc_view grads = {m->grads, 0};
    const size_t min_sparse_row = 256; /* floats: 1 KiB */
    size_t dense_from = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rc_param_info *p = &m->table[i];
        const int table = i == m->p.embed_tokens || i == m->p.embed_positions;
        if (!table || (size_t)p->shape[p->ndim - 1] < min_sparse_row) continue;
        m->be->fill(m->be, rc_view_at(grads, dense_from), 0.0f, p->offset - dense_from);
        m->be->fill_zero_sparse(m->be, rc_view_at(grads, p->offset), p->size);
        dense_from = p->offset + p->size;
    }
    m->be->fill(m->be, rc_view_at(grads, dense_from), 0.0f, m->n_elements - dense_from);
}
