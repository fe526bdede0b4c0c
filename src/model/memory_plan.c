/* Activation planning: every tensor the forward pass saves for backward, and
 * the backward scratch, as offsets into one buffer allocated up front. */
#include <stdlib.h>

#include "model/decoder.h"

/* Every layer's attention output kept for backward, at most (floats: 8 MiB). */
static const size_t ATTENTION_KEPT_MAX = (size_t)2 << 20;

typedef struct {
    size_t next;
} planner;

/* Reserves n elements, 16-element aligned so device kernels get aligned starts. */
static size_t take(planner *pl, size_t n) {
    size_t at = pl->next;
    pl->next += (n + 15) & ~(size_t)15;
    return at;
}

size_t decoder_plan_activations(const rc_model_config *c, int rows, int T, int n_out,
                                const decoder_plan_options *o, decoder_acts *plan,
                                layer_acts *layers) {
    const int training = o->training, keep_attention = o->keep_attention;
    const int checkpointing = training && o->checkpointing;
    const size_t N = (size_t)rows * T, C = (size_t)c->hidden_size, F = (size_t)c->ffn_dim;
    const size_t P = (size_t)c->word_embed_proj_dim, H = (size_t)c->num_attention_heads;
    const size_t QW = (size_t)dec_q_width(c), KW = (size_t)dec_kv_width(c);
    const size_t HKV = (size_t)c->num_key_value_heads;
    const size_t O = (size_t)n_out;
    planner pl = {0};
    decoder_acts a = {.rows = rows, .T = T, .training = training, .n_out = n_out, .layer = layers,
                  .keeps_attention = training && keep_attention, .checkpointing = checkpointing};
    a.ids = take(&pl, N);
    a.mask = take(&pl, N);
    a.pos_ids = take(&pl, N);
    a.score_slots = take(&pl, O);
    a.score_pos = take(&pl, O);
    a.tok_embed = P != C ? take(&pl, N * P) : 0;
    a.x0 = take(&pl, N * C);
    /* Inference walks the layers through one set of buffers: each layer's
     * input is dead by the time that layer writes its output (see decoder_forward.c).
     * Training keeps per layer what backward cannot cheaply redo: q, k, v, the
     * residual sums, fc1 and a post-LN layer's output. LayerNorm outputs and
     * the attention probabilities and output are recomputed in backward (the
     * same ops on the same inputs give the same floats), so they get one
     * buffer for all layers. Attention runs a chunk of sequences at a time
     * through a [chunk, H, T, T] scratch: as many as fit in 8 MiB, at least
     * one (with fused attention only the last layer's scores touch it). The
     * last layer keeps only its score rows past K and V; its backward comes
     * first, so its probs and attn are still intact. Where attention is fused
     * and a small model's attn fits ATTENTION_KEPT_MAX, each layer keeps its
     * attn and stats instead (keeps_attention). */
    const int n_layers = c->num_hidden_layers, pre = c->do_layer_norm_before;
    /* activation checkpointing: one layer's worth, shared, as in inference,
     * but each layer's output (the next one's input) kept */
    const int distinct_layers = training && !checkpointing ? n_layers : 1;
    const size_t shared_ln = training ? take(&pl, N * C) : 0;
    const size_t shared_attn = training && !a.keeps_attention ? take(&pl, N * QW) : 0;
    const size_t shared_stats = a.keeps_attention ? 0 : take(&pl, N * H * 2);
    /* The scratch grows only with T and n_out, never with the chunk, so every
     * batch within a reservation fits it. It also holds the last layer's
     * [n_out, H, 1, T] scores: that backward runs first, before any other
     * layer reuses the buffer. */
    const size_t per_sequence = H * T * T, budget = (size_t)2 << 20; /* floats */
    size_t attention_scratch = per_sequence > budget ? per_sequence : budget;
    if (O * H * T > attention_scratch) attention_scratch = O * H * T;
    const size_t chunk = attention_scratch / per_sequence;
    a.attention_chunk = chunk < (size_t)rows ? (int)chunk : rows;
    const size_t shared_probs = take(&pl, attention_scratch);
    layer_acts scratch; /* when only the total is wanted */
    for (int l = 0; l < distinct_layers; l++) {
        layer_acts *L = layers ? &layers[l] : &scratch;
        const int score_rows = training && l == n_layers - 1;
        const size_t R = score_rows ? O : N;
        L->ln1 = training ? shared_ln : take(&pl, N * C);
        L->ln1_mean = take(&pl, N);
        L->ln1_rstd = take(&pl, N);
        L->q_raw = L->q_rstd = L->k_raw = L->k_rstd = 0;
        if (c->qk_norm) { /* the head norms' inputs, for their backward */
            L->q_raw = take(&pl, R * QW);
            L->q_rstd = take(&pl, R * H);
            L->k_raw = take(&pl, N * KW);
            L->k_rstd = take(&pl, N * HKV);
        }
        L->q = take(&pl, R * QW);
        L->k = take(&pl, N * KW);
        L->v = take(&pl, N * KW);
        L->probs = shared_probs;
        L->attn = training && !a.keeps_attention ? shared_attn : take(&pl, R * QW);
        L->stats = a.keeps_attention ? take(&pl, R * H * 2) : shared_stats;
        L->res1 = take(&pl, R * C);
        L->ln2 = training && pre ? shared_ln : take(&pl, R * C);
        L->ln2_mean = take(&pl, R);
        L->ln2_rstd = take(&pl, R);
        L->fc1 = take(&pl, R * F);
        L->up = c->gated_mlp ? take(&pl, R * F) : 0;
        /* ReLU's derivative can be read off its output (relu(x) > 0 iff x > 0),
         * so a plain ReLU MLP applies it in place and keeps one [R, F] tensor */
        L->act = c->activation == RC_ACT_RELU && !c->gated_mlp ? L->fc1 : take(&pl, R * F);
        L->res2 = take(&pl, R * C);
    }
    for (int l = distinct_layers; l < n_layers && layers; l++) layers[l] = layers[0];
    for (int l = 1; l < n_layers && checkpointing; l++) {
        const size_t rows_out = l == n_layers - 1 ? O : N;
        const size_t out = take(&pl, rows_out * C);
        if (layers && pre) layers[l].res2 = out;
        else if (layers) layers[l].ln2 = out;
    }
    a.score_mask = take(&pl, O * T);
    a.last_x = take(&pl, O * C);
    a.last_in = take(&pl, O * C);
    a.final_ln = take(&pl, O * C);
    a.final_mean = take(&pl, O);
    a.final_rstd = take(&pl, O);
    a.pooled = take(&pl, O * P);
    a.rewards = take(&pl, O);
    if (training) {
        a.g_stream = take(&pl, N * C);
        a.g_tmp = take(&pl, N * C);
        a.g_ln = take(&pl, N * C);
        a.g_mlp_in = c->parallel_block ? take(&pl, N * C) : 0;
        a.g_heads = c->qk_norm ? take(&pl, N * (QW > KW ? QW : KW)) : 0;
        /* a layer's MLP gradients are dead before its attention block's are
         * born, so the two sets share memory */
        planner fc_block = pl, attention_block = pl;
        a.g_act = take(&fc_block, N * F);
        a.g_fc1 = take(&fc_block, N * F);
        a.g_up = c->gated_mlp ? take(&fc_block, N * F) : 0;
        a.g_attn = take(&attention_block, N * QW);
        a.g_q = take(&attention_block, N * QW);
        a.g_k = take(&attention_block, N * KW);
        a.g_v = take(&attention_block, N * KW);
        pl.next = fc_block.next > attention_block.next ? fc_block.next : attention_block.next;
        a.g_probs = take(&pl, attention_scratch);
        a.g_tok = P != C ? take(&pl, N * P) : 0;
        a.g_gathered = take(&pl, O * C);
        a.g_final = take(&pl, O * C);
        a.g_pooled = take(&pl, O * P);
        a.g_rewards = take(&pl, O);
        a.g_rows = take(&pl, O * C);
        a.g_frozen_width = C > (size_t)c->head_dim ? C : (size_t)c->head_dim;
        a.g_frozen = take(&pl, 2 * a.g_frozen_width);
    }
    if (o->lora_rank > 0) {
        a.lora_t = take(&pl, N * (size_t)o->lora_rank);
        a.lora_u = training ? take(&pl, N * (size_t)o->lora_rank) : a.lora_t;
    }
    a.total = pl.next;
    *plan = a;
    return pl.next;
}

rc_status rc_model_reserve(rc_model *m, int max_rows, int max_seq_len, int training) {
    if (max_rows <= 0 || max_seq_len <= 0)
        return rc_fail(RC_ERR_INVALID_ARG, "batch of %d rows x %d tokens is empty", max_rows,
                       max_seq_len);
    if (max_seq_len > m->cfg.max_position_embeddings)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "sequence length %d exceeds the model's max_position_embeddings %d",
                       max_seq_len, m->cfg.max_position_embeddings);
    rc_status rope = decoder_rope_tables(m, max_seq_len);
    if (rope != RC_OK) return rope;
    if (training && !m->grads) {
        rc_status st = m->be->alloc(m->be, m->n_grad_elements ? m->n_grad_elements : 1, &m->grads);
        if (st != RC_OK)
            return rc_fail_context(st, "allocating gradients (%.1f MB)",
                                   m->n_grad_elements * 4.0 / 1e6);
        rc_model_zero_grad(m);
    }
    layer_acts *layers = calloc((size_t)m->cfg.num_hidden_layers, sizeof *layers);
    int32_t *pooled = malloc((size_t)max_rows * sizeof *pooled);
    int32_t *slots = malloc((size_t)max_rows * sizeof *slots);
    if (!layers || !pooled || !slots) {
        free(layers);
        free(pooled);
        free(slots);
        return rc_fail(RC_ERR_OOM, "cannot allocate the activation plan");
    }
    /* Keeping every layer's attention output saves backward a fused forward
     * per layer; worth its memory for small models only. */
    const size_t kept = (size_t)m->cfg.num_hidden_layers * max_rows * max_seq_len *
                        (size_t)m->cfg.hidden_size;
    m->keep_attention = training && decoder_fused_attention(m) && !m->recompute_attention &&
                        kept <= ATTENTION_KEPT_MAX;
    decoder_acts plan;
    const decoder_plan_options options = {training, m->keep_attention, m->lora_r,
                                          m->gradient_checkpointing};
    size_t need = decoder_plan_activations(&m->cfg, max_rows, max_seq_len, max_rows, &options,
                                           &plan, layers);
    if (m->acts) m->be->free(m->be, m->acts);
    m->acts = NULL;
    rc_status st = m->be->alloc(m->be, need, &m->acts);
    if (st != RC_OK) {
        free(layers);
        free(pooled);
        free(slots);
        return rc_fail_context(st,
                               "activations for %d sequences x %d tokens need %.1f MB on the %s "
                               "backend (reduce the batch size or max_length)",
                               max_rows, max_seq_len, need * 4.0 / 1e6, m->be->name);
    }
    free(m->plan.layer);
    free(m->pooled_index);
    free(m->score_slots);
    m->plan = plan;
    m->pooled_index = pooled;
    m->score_slots = slots;
    m->acts_capacity = need;
    m->max_rows = max_rows;
    m->max_seq_len = max_seq_len;
    m->training = training;
    m->grad_enabled = 1;
    m->have_forward = 0;
    return RC_OK;
}

int rc_model_batch_fits(const rc_model *m, int rows, int T, int n_scores) {
    if (!m->acts || rows <= 0 || T <= 0 || n_scores <= 0 || n_scores > m->max_rows) return 0;
    decoder_acts plan;
    return decoder_plan_batch(m, rows, T, n_scores, &plan, NULL) <= m->acts_capacity;
}

size_t decoder_plan_batch(const rc_model *m, int rows, int T, int n_out, decoder_acts *plan,
                          layer_acts *layers) {
    const decoder_plan_options options = {decoder_keeps_activations(m), m->keep_attention,
                                          m->lora_r, m->gradient_checkpointing};
    return decoder_plan_activations(&m->cfg, rows, T, n_out, &options, plan, layers);
}

void rc_model_set_grad_enabled(rc_model *m, int enabled) { m->grad_enabled = enabled != 0; }

void rc_model_set_attention_block(rc_model *m, int queries) {
    m->causal_block = queries > 0 ? queries : 0;
}

void rc_model_set_fused_attention(rc_model *m, int enabled) { m->composed_attention = !enabled; }

int decoder_fused_attention(const rc_model *m) {
    const rc_backend *be = m->be;
    return !m->composed_attention && be->attention_forward && be->attention_backward &&
           m->cfg.head_dim <= be->fused_attention_max_head_dim;
}

int decoder_keeps_activations(const rc_model *m) { return m->training && m->grad_enabled; }

rc_memory_plan rc_model_memory_plan(const rc_model *m) {
    rc_memory_plan plan = {
        .params = (m->n_elements + m->n_adapter_elements) * 4,
        .grads = m->grads ? m->n_grad_elements * 4 : 0,
        .optimizer = 2 * m->n_grad_elements * 4,
        .activations = m->acts_capacity * 4,
        .trainable_params = rc_model_num_trainable(m),
        .total_params = rc_model_num_parameters(m),
    };
    return plan;
}

rc_view dec_act(const rc_model *m, size_t offset) { return (rc_view){m->acts, offset}; }

rc_view decoder_layer_input(const rc_model *m, int l) {
    if (l == 0) return dec_act(m, m->plan.x0);
    const layer_acts *prev = &m->plan.layer[l - 1];
    return dec_act(m, m->cfg.do_layer_norm_before ? prev->res2 : prev->ln2);
}
