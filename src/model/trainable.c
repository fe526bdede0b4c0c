/* Trainable-parameter sets: which parameters get gradients and AdamW
 * moments, where their gradients live, the lowest backward stage that needs
 * to run, and LoRA adapters (created, attached to the linear layers, merged). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/family.h"

/* Every linear layer of the model with the backward stage it belongs to. */
typedef struct {
    linear_ref *ref;
    int stage;
} linear_slot;

static int list_linears(rc_model *m, linear_slot *out) {
    int n = 0;
    model_params *p = &m->p;
#define ADD(r, s) do { if (out) out[n] = (linear_slot){(r), (s)}; n++; } while (0)
    ADD(&p->project_in_linear, STAGE_EMBEDDINGS);
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
        layer_params *L = &p->layers[l];
        linear_ref *refs[] = {&L->q, &L->k, &L->v, &L->o, &L->up, &L->gate, &L->down};
        for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) ADD(refs[i], stage_of_layer(l));
    }
    ADD(&p->project_out_linear, stage_project_out(&m->cfg));
#undef ADD
    return n;
}

static int max_linears(const rc_model *m) { return 2 + 7 * m->cfg.num_hidden_layers; }

/* The backward stage of every parameter (its index into stage[]). */
static void param_stages(rc_model *m, int *stage) {
    const rc_model_config *c = &m->cfg;
    for (int i = 0; i < m->n_params; i++) stage[i] = STAGE_EMBEDDINGS;
#define SET(idx, s) do { if ((idx) != RC_NO_PARAM) stage[(idx)] = (s); } while (0)
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const layer_params *L = &m->p.layers[l];
        const int s = stage_of_layer(l);
        SET(L->attn_norm_w, s); SET(L->attn_norm_b, s); SET(L->mlp_norm_w, s);
        SET(L->mlp_norm_b, s); SET(L->q_norm, s); SET(L->k_norm, s);
    }
    linear_slot *slots = malloc((size_t)max_linears(m) * sizeof *slots);
    const int n = slots ? list_linears(m, slots) : 0;
    for (int i = 0; i < n; i++) {
        const linear_ref *r = slots[i].ref;
        SET(r->weight, slots[i].stage); SET(r->bias, slots[i].stage);
        SET(r->lora_a, slots[i].stage); SET(r->lora_b, slots[i].stage);
    }
    free(slots);
    SET(m->p.final_norm_w, stage_final_norm(c)); SET(m->p.final_norm_b, stage_final_norm(c));
    SET(m->p.score, stage_score(c));
#undef SET
}

/* Gradient offsets of the trainable parameters, 16-element aligned, and
 * the lowest stage backward must run. */
static rc_status assign_gradients(rc_model *m) {
    size_t next = 0;
    for (int i = 0; i < m->n_params; i++) {
        rc_param_info *p = &m->table[i];
        p->grad_offset = 0;
        if (!p->trainable) continue;
        p->grad_offset = next;
        next += (p->size + 15) & ~(size_t)15;
    }
    m->n_grad_elements = next;
    int *stage = malloc((size_t)m->n_params * sizeof *stage);
    if (!stage) return rc_fail(RC_ERR_OOM, "cannot allocate the parameter stages");
    param_stages(m, stage);
    m->grad_floor = stage_score(&m->cfg) + 1;
    for (int i = 0; i < m->n_params; i++)
        if (m->table[i].trainable && stage[i] < m->grad_floor) m->grad_floor = stage[i];
    free(stage);
    return RC_OK;
}

void decoder_trainable_defaults(rc_model *m) {
    m->p.project_in_linear = family_linear(m->p.project_in, RC_NO_PARAM);
    m->p.project_out_linear = family_linear(m->p.project_out, RC_NO_PARAM);
    linear_slot *slots = malloc((size_t)max_linears(m) * sizeof *slots);
    const int n = slots ? list_linears(m, slots) : 0;
    for (int i = 0; i < n; i++) slots[i].ref->lora_a = slots[i].ref->lora_b = RC_NO_PARAM;
    free(slots);
    for (int i = 0; i < m->n_params; i++) m->table[i].trainable = 1;
    m->n_base_params = m->n_params;
    m->trainable = (rc_trainable_config){.scope = RC_TRAIN_ALL};
    assign_gradients(m); /* all trainable: gradient offsets equal the parameters' */
}

int decoder_param_trainable(const rc_model *m, int index) {
    return index != RC_NO_PARAM && m->table[index].trainable;
}

rc_view decoder_norm_grad(const rc_model *m, int index, int second) {
    if (index == RC_NO_PARAM) return (rc_view){NULL, 0};
    if (m->table[index].trainable) return dec_grad(m, index);
    return dec_act(m, m->plan.g_frozen + (second ? m->plan.g_frozen_width : 0));
}

void decoder_trainable_free(rc_model *m) {
    if (m->adapters) m->be->free(m->be, m->adapters);
    m->adapters = NULL;
    free(m->lora_targets);
    m->lora_targets = NULL;
}

/* ---- LoRA ---- */

/* The module's name: its weight's without ".weight". */
static void module_name(const rc_model *m, const linear_ref *r, char *out, size_t size) {
    snprintf(out, size, "%s", m->table[r->weight].name);
    size_t len = strlen(out), suffix = strlen(".weight");
    if (len > suffix && !strcmp(out + len - suffix, ".weight")) out[len - suffix] = '\0';
}

/* PEFT's rule for a list entry: the whole name, or its tail after a dot. */
static int target_matches(const char *module, const char *target, size_t target_len) {
    const size_t len = strlen(module);
    if (target_len == 0 || target_len > len) return 0;
    if (strncmp(module + len - target_len, target, target_len)) return 0;
    return len == target_len || module[len - target_len - 1] == '.';
}

/* Whether `module` is one of the comma-separated targets; counts each hit. */
static int module_targeted(const char *module, const char *targets, int *hits) {
    int found = 0, k = 0;
    for (const char *t = targets; *t; k++) {
        const char *end = strchr(t, ',');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        while (len && t[0] == ' ') t++, len--;
        while (len && t[len - 1] == ' ') len--;
        if (target_matches(module, t, len)) {
            found = 1;
            if (hits) hits[k]++;
        }
        if (!end) break;
        t = end + 1;
    }
    return found;
}

static int count_targets(const char *targets) {
    int n = 1;
    for (const char *t = targets; *t; t++) n += *t == ',';
    return n;
}

/* in/out of the whole module behind a (possibly block) linear_ref */
static void module_dims(const rc_model *m, const linear_ref *r, int *in, int *out) {
    const rc_param_info *w = &m->table[r->weight];
    *in = r->in_out ? w->shape[0] : w->shape[1];
    *out = r->in_out ? w->shape[1] : w->shape[0];
}

/* The first output feature of a block: a column of a Conv1D [in, out], a row of [out, in]. */
static size_t block_out_start(const rc_model *m, const linear_ref *r) {
    int in, out;
    module_dims(m, r, &in, &out);
    return r->in_out ? r->offset : r->offset / (size_t)in;
}

static rc_status add_adapter_param(rc_model *m, int rows, int cols, const char *module,
                                   const char *which, size_t *offset) {
    rc_param_info *grown = realloc(m->table, (size_t)(m->n_params + 1) * sizeof *grown);
    if (!grown) return rc_fail(RC_ERR_OOM, "cannot grow the parameter table");
    m->table = grown;
    rc_param_info *p = &m->table[m->n_params];
    memset(p, 0, sizeof *p);
    int len = snprintf(p->name, sizeof p->name, "%s.%s.weight", module, which);
    if (len < 0 || (size_t)len >= sizeof p->name)
        return rc_fail(RC_ERR_INVALID_ARG, "module name %s is too long", module);
    p->ndim = 2;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->size = (size_t)rows * cols;
    p->offset = *offset;
    p->adapter = 1;
    p->trainable = 1;
    *offset += (p->size + 15) & ~(size_t)15;
    m->n_params++;
    return RC_OK;
}

/* Attaches rank-r adapters to every linear module the targets name (or all
 * of them), A drawn from `seed` (kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in),
 * 1/sqrt(in))) and B zero. Names of targets that match nothing go in the error. */
static rc_status attach_lora(rc_model *m, const char *targets, int all_linear, int r,
                             uint64_t seed) {
    const int n_targets = all_linear ? 0 : count_targets(targets);
    int *hits = calloc((size_t)n_targets + 1, sizeof *hits);
    linear_slot *slots = malloc((size_t)max_linears(m) * sizeof *slots);
    if (!hits || !slots) {
        free(hits);
        free(slots);
        return rc_fail(RC_ERR_OOM, "cannot allocate the LoRA plan");
    }
    const int n = list_linears(m, slots);
    rc_status st = RC_OK;
    size_t offset = 0;
    char name[RC_PARAM_NAME_MAX];
    for (int i = 0; i < n && st == RC_OK; i++) {
        linear_ref *ref = slots[i].ref;
        if (ref->weight == RC_NO_PARAM) continue;
        module_name(m, ref, name, sizeof name);
        if (!all_linear && !module_targeted(name, targets, hits)) continue;
        int a = RC_NO_PARAM, b = RC_NO_PARAM;
        for (int j = 0; j < i; j++) /* a block of a fused module already adapted */
            if (slots[j].ref->weight == ref->weight) a = slots[j].ref->lora_a, b = slots[j].ref->lora_b;
        if (a == RC_NO_PARAM) {
            int in, out;
            module_dims(m, ref, &in, &out);
            a = m->n_params;
            st = add_adapter_param(m, r, in, name, "lora_A", &offset);
            b = m->n_params;
            if (st == RC_OK) st = add_adapter_param(m, out, r, name, "lora_B", &offset);
        }
        ref->lora_a = a;
        ref->lora_b = b;
        ref->lora_b_offset = block_out_start(m, ref) * (size_t)r;
    }
    for (int k = 0; k < n_targets && st == RC_OK; k++)
        if (!hits[k]) {
            const char *t = targets;
            for (int j = 0; j < k; j++) t = strchr(t, ',') + 1;
            const char *end = strchr(t, ',');
            st = rc_fail(RC_ERR_INVALID_ARG,
                         "lora_target_modules: \"%.*s\" names no linear module of this %s model",
                         end ? (int)(end - t) : (int)strlen(t), t, rc_family_model_type(m->cfg.family));
        }
    free(hits);
    free(slots);
    if (st == RC_OK && m->n_params == m->n_base_params)
        st = rc_fail(RC_ERR_INVALID_ARG, "lora_target_modules names no linear module");
    if (st == RC_OK) st = m->be->alloc(m->be, offset, &m->adapters);
    if (st != RC_OK) return st;
    m->n_adapter_elements = offset;
    m->lora_r = r;
    float *host = calloc(offset ? offset : 1, sizeof *host);
    if (!host) return rc_fail(RC_ERR_OOM, "cannot allocate %zu floats of adapters", offset);
    rc_rng rng;
    rc_rng_seed(&rng, seed ^ 0x6c6f7261ull); /* "lora" */
    for (int i = m->n_base_params; i < m->n_params; i += 2) {
        const rc_param_info *A = &m->table[i];
        const double bound = 1.0 / sqrt((double)A->shape[1]);
        for (size_t j = 0; j < A->size; j++)
            host[A->offset + j] = (float)((2.0 * rc_rng_uniform(&rng) - 1.0) * bound);
    }
    st = m->be->upload(m->be, (rc_view){m->adapters, 0}, host, offset);
    free(host);
    return st;
}

/* The matched modules' last name components, each once, for the config. */
static rc_status record_targets(rc_model *m, const char *given) {
    size_t cap = 1;
    for (int i = m->n_base_params; i < m->n_params; i++) cap += strlen(m->table[i].name) + 1;
    if (given && strlen(given) + 1 > cap) cap = strlen(given) + 1;
    char *list = calloc(cap, 1);
    if (!list) return rc_fail(RC_ERR_OOM, "cannot record the LoRA targets");
    if (given) {
        snprintf(list, cap, "%s", given);
    } else {
        for (int i = m->n_base_params; i < m->n_params; i += 2) {
            char module[RC_PARAM_NAME_MAX];
            snprintf(module, sizeof module, "%s", m->table[i].name);
            *strstr(module, ".lora_A.weight") = '\0';
            const char *last = strrchr(module, '.');
            last = last ? last + 1 : module;
            if (module_targeted(last, list, NULL)) continue;
            if (list[0]) strcat(list, ",");
            strcat(list, last);
        }
    }
    free(m->lora_targets);
    m->lora_targets = list;
    m->trainable.lora_target_modules = list;
    return RC_OK;
}

rc_status decoder_attach_lora(rc_model *m, const char *targets, int all_linear, int r,
                              double alpha, int use_rslora, uint64_t seed) {
    if (m->grads)
        return rc_fail(RC_ERR_INVALID_ARG, "LoRA must be attached before rc_model_reserve");
    if (m->lora_r) return rc_fail(RC_ERR_INVALID_ARG, "the model already has LoRA adapters");
    if (r < 1) return rc_fail(RC_ERR_INVALID_ARG, "lora_r %d: the rank must be at least 1", r);
    if (!(alpha > 0.0) || !isfinite(alpha))
        return rc_fail(RC_ERR_INVALID_ARG, "lora_alpha %g must be positive", alpha);
    rc_status st = attach_lora(m, targets, all_linear, r, seed);
    if (st != RC_OK) return st;
    m->lora_scale = use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
    for (int i = 0; i < m->n_params; i++) m->table[i].trainable = m->table[i].adapter;
    m->table[m->p.score].trainable = 1; /* modules_to_save */
    m->trainable = (rc_trainable_config){.scope = RC_TRAIN_LORA, .lora_r = r,
                                         .lora_alpha = alpha, .use_rslora = use_rslora};
    st = record_targets(m, all_linear ? "all-linear" : NULL);
    return st == RC_OK ? assign_gradients(m) : st;
}

static const char *default_targets(rc_family_id f) {
    /* PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING */
    switch (f) {
    case RC_FAMILY_GPT2: return "c_attn";
    case RC_FAMILY_FALCON: return "query_key_value";
    default: return "q_proj,v_proj";
    }
}

rc_status rc_model_set_trainable(rc_model *m, const rc_trainable_config *t, uint64_t seed) {
    const rc_model_config *c = &m->cfg;
    if (m->grads)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "the trainable set must be chosen before rc_model_reserve");
    if (m->lora_r)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "the model already has LoRA adapters (loaded from an adapter folder)");
    if (t->scope == RC_TRAIN_LORA) {
        if (t->lora_dropout != 0.0)
            return rc_fail(RC_ERR_UNSUPPORTED,
                           "lora_dropout %g: only 0 is supported (PEFT's dropout draws from "
                           "torch's random stream, which rewardc does not reproduce)",
                           t->lora_dropout);
        const char *targets = t->lora_target_modules && t->lora_target_modules[0]
                                  ? t->lora_target_modules
                                  : default_targets(c->family);
        const int all = !strcmp(targets, "all-linear");
        rc_status st = decoder_attach_lora(m, targets, all, t->lora_r, t->lora_alpha,
                                           t->use_rslora, seed);
        if (st == RC_OK && !all) st = record_targets(m, targets);
        return st;
    }
    if (t->scope == RC_TRAIN_TOP_LAYERS &&
        (t->top_layers < 1 || t->top_layers > c->num_hidden_layers))
        return rc_fail(RC_ERR_INVALID_ARG, "train_layers %d: the model has %d layers",
                       t->top_layers, c->num_hidden_layers);
    int *stage = malloc((size_t)m->n_params * sizeof *stage);
    if (!stage) return rc_fail(RC_ERR_OOM, "cannot allocate the parameter stages");
    param_stages(m, stage);
    const int lowest = t->scope == RC_TRAIN_ALL       ? STAGE_EMBEDDINGS
                       : t->scope == RC_TRAIN_HEAD    ? stage_score(c)
                                                      : stage_of_layer(c->num_hidden_layers - t->top_layers);
    for (int i = 0; i < m->n_params; i++) m->table[i].trainable = stage[i] >= lowest;
    free(stage);
    m->trainable = *t;
    m->trainable.lora_target_modules = NULL;
    return assign_gradients(m);
}

const rc_trainable_config *rc_model_trainable(const rc_model *m) { return &m->trainable; }
double rc_model_lora_scale(const rc_model *m) { return m->lora_r ? m->lora_scale : 0.0; }

size_t rc_model_num_trainable(const rc_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->table[i].trainable ? m->table[i].size : 0;
    return n;
}

/* W += s B A, in double, rounded once (PEFT merges in the weight's dtype). */
static rc_status merge_one(rc_model *m, const linear_ref *ref, float *w, float *a, float *b) {
    const rc_param_info *W = &m->table[ref->weight], *A = &m->table[ref->lora_a],
                        *B = &m->table[ref->lora_b];
    rc_status st = rc_model_get_param(m, ref->weight, w, W->size);
    if (st == RC_OK) st = rc_model_get_param(m, ref->lora_a, a, A->size);
    if (st == RC_OK) st = rc_model_get_param(m, ref->lora_b, b, B->size);
    if (st != RC_OK) return st;
    int in, out;
    module_dims(m, ref, &in, &out);
    const int r = m->lora_r;
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double delta = 0.0;
            for (int k = 0; k < r; k++) delta += (double)b[(size_t)o * r + k] * a[(size_t)k * in + i];
            float *at = ref->in_out ? &w[(size_t)i * out + o] : &w[(size_t)o * in + i];
            *at = (float)(*at + m->lora_scale * delta);
        }
    return rc_model_set_param(m, ref->weight, w, W->size);
}

rc_status rc_model_merge_lora(rc_model *m) {
    if (!m->lora_r) return RC_OK;
    if (m->grads) return rc_fail(RC_ERR_INVALID_ARG, "merge LoRA before reserving for training");
    linear_slot *slots = malloc((size_t)max_linears(m) * sizeof *slots);
    size_t largest = 1;
    for (int i = 0; i < m->n_params; i++)
        if (m->table[i].size > largest) largest = m->table[i].size;
    float *w = malloc(largest * sizeof *w), *a = malloc(largest * sizeof *a),
          *b = malloc(largest * sizeof *b);
    rc_status st = slots && w && a && b ? RC_OK : rc_fail(RC_ERR_OOM, "cannot allocate the merge");
    const int n = slots ? list_linears(m, slots) : 0;
    for (int i = 0; i < n && st == RC_OK; i++) {
        linear_ref *ref = slots[i].ref;
        if (ref->lora_a == RC_NO_PARAM) continue;
        int first = 1; /* a fused module merges once */
        for (int j = 0; j < i; j++) first &= slots[j].ref->weight != ref->weight;
        if (first) st = merge_one(m, ref, w, a, b);
    }
    for (int i = 0; i < n && st == RC_OK; i++) slots[i].ref->lora_a = slots[i].ref->lora_b = RC_NO_PARAM;
    free(slots);
    free(w);
    free(a);
    free(b);
    if (st != RC_OK) return st;
    m->n_params = m->n_base_params;
    m->be->free(m->be, m->adapters);
    m->adapters = NULL;
    m->n_adapter_elements = 0;
    m->lora_r = 0;
    m->lora_scale = 0.0;
    for (int i = 0; i < m->n_params; i++) m->table[i].trainable = 1;
    m->trainable = (rc_trainable_config){.scope = RC_TRAIN_ALL};
    return assign_gradients(m);
}

void rc_model_set_gradient_checkpointing(rc_model *m, int enabled) {
    m->gradient_checkpointing = enabled != 0;
}
