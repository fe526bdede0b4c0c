/* The parameter table (HF names, shapes, offsets) as the family lays it
 * out, creation with transformers' initialisation, and parameter accessors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/family.h"

int family_add_param(param_table_builder *tb, int rows, int cols, int no_decay, const char *fmt,
                     ...) {
    if (tb->failed) return RC_NO_PARAM;
    if (tb->count == tb->capacity) {
        int cap = tb->capacity ? tb->capacity * 2 : 64;
        rc_param_info *grown = realloc(tb->table, (size_t)cap * sizeof *grown);
        if (!grown) {
            tb->failed = 1;
            return RC_NO_PARAM;
        }
        tb->table = grown;
        tb->capacity = cap;
    }
    rc_param_info *p = &tb->table[tb->count];
    memset(p, 0, sizeof *p);
    va_list args;
    va_start(args, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, args);
    va_end(args);
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

linear_ref family_linear(int weight, int bias) {
    linear_ref l = {.weight = weight, .bias = bias, .lora_a = RC_NO_PARAM, .lora_b = RC_NO_PARAM};
    return l;
}

/* The family lays out the table; absent parameters stay RC_NO_PARAM. */
static rc_status build_table(rc_model *m) {
    param_table_builder tb = {0};
    model_params *p = &m->p;
    p->layers = calloc((size_t)m->cfg.num_hidden_layers, sizeof *p->layers);
    if (!p->layers) return rc_fail(RC_ERR_OOM, "cannot allocate the parameter table");
    const linear_ref none = family_linear(RC_NO_PARAM, RC_NO_PARAM);
    p->embed_tokens = p->embed_positions = p->project_in = p->project_out = RC_NO_PARAM;
    p->final_norm_w = p->final_norm_b = p->score = RC_NO_PARAM;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        L->attn_norm_w = L->attn_norm_b = L->mlp_norm_w = L->mlp_norm_b = RC_NO_PARAM;
        L->q_norm = L->k_norm = RC_NO_PARAM;
        L->q = L->k = L->v = L->o = L->up = L->gate = L->down = none;
    }
    m->family->build_table(m, &tb);
    p->score = family_add_param(&tb, 1, m->cfg.word_embed_proj_dim, 0, "score.weight");
    if (tb.failed) {
        free(tb.table);
        return rc_fail(RC_ERR_OOM, "cannot allocate the parameter table");
    }
    m->table = tb.table;
    m->n_params = tb.count;
    m->n_elements = tb.offset;
    decoder_trainable_defaults(m);
    return RC_OK;
}

/* transformers' _init_weights for one tensor: Linear and Embedding weights ~
 * normal(0, std), biases 0, norm weights 1 and biases 0 (the padding row of
 * embed_tokens is zeroed by the caller). 1-D tensors are biases and norms. */
static void init_tensor(const rc_model *m, const rc_param_info *p, float *w, rc_rng *rng) {
    if (p->ndim == 2) {
        const double std = m->family->init_std ? m->family->init_std(m, p) : m->cfg.init_std;
        for (size_t j = 0; j < p->size; j++) w[j] = (float)(rc_rng_normal(rng) * std);
    } else {
        const int norm_weight = p->no_weight_decay && !strstr(p->name, "bias") &&
                                strstr(p->name, ".weight");
        for (size_t j = 0; j < p->size; j++) w[j] = norm_weight ? 1.0f : 0.0f;
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
    if (m->family->embedding_padding_idx)
        memset(host + m->table[m->p.embed_tokens].offset + (size_t)pad * P, 0,
               (size_t)P * sizeof *host);
    rc_status st = m->be->upload(m->be, (rc_view){m->params, 0}, host, m->n_elements);
    free(host);
    return st;
}

rc_status decoder_init_param(rc_model *m, int index, uint64_t seed) {
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

/* The ops a family needs beyond those every backend has. */
static rc_status check_backend(const rc_model_config *c, const rc_backend *be) {
    const char *missing = NULL;
    if ((c->norm == RC_NORM_RMS || c->qk_norm) && (!be->rmsnorm_forward || !be->rmsnorm_backward))
        missing = "rmsnorm_forward/backward";
    else if (c->positions == RC_POS_ROPE && !be->rope)
        missing = "rope";
    else if (c->gated_mlp && (!be->gated_forward || !be->gated_backward))
        missing = "gated_forward/backward";
    if (!missing) return RC_OK;
    return rc_fail(RC_ERR_UNSUPPORTED, "the %s backend cannot run a %s model yet: it has no %s op",
                   be->name, rc_family_model_type(c->family), missing);
}

rc_status decoder_model_new(const rc_model_config *cfg, rc_backend *be, uint64_t seed,
                            int initialise, rc_model **out) {
    *out = NULL;
    rc_status st = rc_model_config_validate(cfg);
    if (st == RC_OK) st = check_backend(cfg, be);
    if (st != RC_OK) return st;
    rc_model *m = calloc(1, sizeof *m);
    if (!m) return rc_fail(RC_ERR_OOM, "cannot allocate the model");
    m->cfg = *cfg;
    m->family = rc_family_of(cfg->family);
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

rc_status rc_model_create(const rc_model_config *cfg, rc_backend *be, uint64_t seed,
                          rc_model **out) {
    return decoder_model_new(cfg, be, seed, 1, out);
}

void rc_model_free(rc_model *m) {
    if (!m) return;
    if (m->params) m->be->free(m->be, m->params);
    if (m->grads) m->be->free(m->be, m->grads);
    if (m->acts) m->be->free(m->be, m->acts);
    if (m->rope) m->be->free(m->be, m->rope);
    decoder_trainable_free(m);
    free(m->source_dir);
    free(m->plan.layer);
    free(m->pooled_index);
    free(m->score_slots);
    free(m->p.layers);
    free(m->table);
    free(m);
}

const rc_model_config *rc_model_get_config(const rc_model *m) { return &m->cfg; }
int rc_model_pad_id(const rc_model *m) { return m->cfg.pad_token_id; }
int rc_model_vocab_size(const rc_model *m) { return m->cfg.vocab_size; }
int rc_model_max_length(const rc_model *m) { return m->cfg.max_position_embeddings; }
rc_backend *rc_model_backend(const rc_model *m) { return m->be; }
int rc_model_param_count(const rc_model *m) { return m->n_params; }
const rc_param_info *rc_model_param(const rc_model *m, int index) { return &m->table[index]; }
rc_view rc_model_param_view(const rc_model *m, int index) { return dec_param(m, index); }
rc_view rc_model_grad_view(const rc_model *m, int index) { return dec_grad(m, index); }
size_t rc_model_grad_elements(const rc_model *m) { return m->n_grad_elements; }
rc_view rc_model_params_all(const rc_model *m, size_t *n) {
    *n = m->n_elements;
    return (rc_view){m->params, 0};
}
rc_view rc_model_grads_all(const rc_model *m) { return (rc_view){m->grads, 0}; }
int rc_model_trains_everything(const rc_model *m) {
    for (int i = 0; i < m->n_params; i++)
        if (!m->table[i].trainable || m->table[i].grad_offset != m->table[i].offset) return 0;
    return 1;
}

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

rc_view dec_param(const rc_model *m, int index) {
    if (index == RC_NO_PARAM) return (rc_view){NULL, 0};
    const rc_param_info *p = &m->table[index];
    return (rc_view){p->adapter ? m->adapters : m->params, p->offset};
}

rc_view dec_grad(const rc_model *m, int index) {
    if (index == RC_NO_PARAM || !m->table[index].trainable) return (rc_view){NULL, 0};
    return (rc_view){m->grads, m->table[index].grad_offset};
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
    return st != RC_OK ? st : m->be->download(m->be, dst, dec_param(m, index), n);
}

rc_status rc_model_set_param(rc_model *m, int index, const float *src, size_t n) {
    rc_status st = check_size(m, index, n);
    return st != RC_OK ? st : m->be->upload(m->be, dec_param(m, index), src, n);
}

rc_status rc_model_get_grad(rc_model *m, int index, float *dst, size_t n) {
    rc_status st = check_size(m, index, n);
    if (st == RC_OK && !m->grads)
        st = rc_fail(RC_ERR_INVALID_ARG, "no gradients: the model is not reserved for training");
    if (st == RC_OK && !m->table[index].trainable)
        st = rc_fail(RC_ERR_INVALID_ARG, "%s is frozen: it has no gradient", m->table[index].name);
    return st != RC_OK ? st : m->be->download(m->be, dst, dec_grad(m, index), n);
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
    for (int i = 0; i < m->n_params; i++) { /* gradient offsets ascend in table order */
        const rc_param_info *p = &m->table[i];
        const int table = i == m->p.embed_tokens || i == m->p.embed_positions;
        if (!p->trainable || !table || (size_t)p->shape[p->ndim - 1] < min_sparse_row) continue;
        m->be->fill(m->be, rc_view_at(grads, dense_from), 0.0f, p->grad_offset - dense_from);
        m->be->fill_zero_sparse(m->be, rc_view_at(grads, p->grad_offset), p->size);
        dense_from = p->grad_offset + p->size;
    }
    m->be->fill(m->be, rc_view_at(grads, dense_from), 0.0f, m->n_grad_elements - dense_from);
}
