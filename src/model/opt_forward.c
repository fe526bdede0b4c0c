/* The OPT forward pass with the scalar score head, composed from backend ops.
 *
 * Per layer (HF OPTDecoderLayer), with x the layer input:
 *   pre-LN : ln1 = LN1(x); res1 = x + Attn(ln1); ln2 = LN2(res1); res2 = res1 + FC(ln2); out = res2
 *   post-LN: res1 = x + Attn(x); ln1 = LN1(res1); res2 = ln1 + FC(ln1); ln2 = LN2(res2); out = ln2
 * The score is read at one token per sequence (two per packed pair), so past
 * its keys and values the last layer, then the final layer norm and
 * project_out, run only on those rows. */
#include <math.h>
#include <stdlib.h>

#include "model/opt_internal.h"

static const float LAYER_NORM_EPS = 1e-5f; /* torch.nn.LayerNorm default, as OPT uses */

void opt_layernorm(rc_model *m, size_t out, size_t mean, size_t rstd, rc_view x, int w, int b,
                   int rows) {
    m->be->layernorm_forward(m->be, opt_act(m, out), opt_act(m, mean), opt_act(m, rstd), x,
                             opt_param(m, w), opt_param(m, b), rows, m->cfg.hidden_size,
                             LAYER_NORM_EPS);
}

/* attn = softmax(scale * Q K^T) V for a chunk of sequences, the
 * probabilities in L->probs ([count, H, T, T]); per sequence, H strided
 * products. Head h of row t lives at columns h*D..h*D+D-1 of q/k/v/attn. */
void opt_attention_chunk(rc_model *m, const opt_layer_acts *L, int first, int count) {
    rc_backend *be = m->be;
    const int T = m->plan.T, C = m->cfg.hidden_size;
    const int H = m->cfg.num_attention_heads, D = C / H, block = opt_causal_block(m);
    const float scale = 1.0f / sqrtf((float)D); /* HF scales q by head_dim^-0.5 */
    const size_t TT = (size_t)T * T;
    if (opt_fused_attention(m)) {
        const size_t rows = (size_t)first * T * C;
        be->attention_forward(be, opt_act(m, L->attn + rows),
                              opt_act(m, L->stats + (size_t)first * H * T * 2),
                              opt_act(m, L->q + rows), opt_act(m, L->k + rows),
                              opt_act(m, L->v + rows),
                              opt_act(m, m->plan.mask + (size_t)first * T), count, T, H, H, D,
                              scale);
        return;
    }
    /* queries q0 .. q0 + rows - 1 against keys 0 .. q0 + rows - 1 */
    for (int i = 0; i < count; i++) {
        const size_t seq = (size_t)(first + i) * T * C, heads = (size_t)i * H * TT;
        for (int q0 = 0; q0 < T; q0 += block) {
            const int rows = T - q0 < block ? T - q0 : block;
            be->gemm_batched(be, 0, 1, rows, q0 + rows, D, scale,
                             opt_act(m, L->q + seq + (size_t)q0 * C), C, D, opt_act(m, L->k + seq),
                             C, D, 0.0f, opt_act(m, L->probs + heads + (size_t)q0 * T), T, TT, H);
        }
    }
    rc_view probs = opt_act(m, L->probs);
    be->attention_softmax_forward(be, probs, probs, opt_act(m, m->plan.mask + (size_t)first * T),
                                  count, H, T, T);
    for (int i = 0; i < count; i++) {
        const size_t seq = (size_t)(first + i) * T * C, heads = (size_t)i * H * TT;
        for (int q0 = 0; q0 < T; q0 += block) {
            const int rows = T - q0 < block ? T - q0 : block;
            be->gemm_batched(be, 0, 0, rows, D, q0 + rows, 1.0f,
                             opt_act(m, L->probs + heads + (size_t)q0 * T), T, TT,
                             opt_act(m, L->v + seq), C, D, 0.0f,
                             opt_act(m, L->attn + seq + (size_t)q0 * C), C, D, H);
        }
    }
}

int opt_causal_block(const rc_model *m) {
    const int T = m->plan.T;
    if (m->causal_block > 0) return m->causal_block < T ? m->causal_block : T;
    /* Measured with OpenBLAS on 2 cores: blocks of 64 gained nothing at
     * T = 256 (OPT-125m step) and lost at T = 512 (tiny step, 16-wide heads:
     * the extra calls cost more than they skip); at T = 2048, blocks of 256
     * made OPT-125m scoring 12% faster. */
    return (T + 7) / 8 > 256 ? (T + 7) / 8 : 256;
}

int opt_attention_chunk_size(const rc_model *m, int first) {
    const int rows = m->plan.rows, chunk = m->plan.attention_chunk;
    return rows - first < chunk ? rows - first : chunk;
}

/* Composed, a chunk of sequences at a time: the probabilities of one chunk
 * are all that is ever held (backward recomputes them). Fused, every
 * sequence at once: there are no probabilities to hold. */
static void attention_forward(rc_model *m, const opt_layer_acts *L) {
    if (opt_fused_attention(m)) {
        opt_attention_chunk(m, L, 0, m->plan.rows);
        return;
    }
    for (int first = 0; first < m->plan.rows; first += m->plan.attention_chunk)
        opt_attention_chunk(m, L, first, opt_attention_chunk_size(m, first));
}

/* The last layer's attention, only for the query at each score slot: one
 * query row per score against all T keys of its sequence (score_mask holds
 * what that query may see). */
static void score_attention_forward(rc_model *m, const opt_layer_acts *L) {
    rc_backend *be = m->be;
    const opt_acts *A = &m->plan;
    const int T = A->T, C = m->cfg.hidden_size;
    const int H = m->cfg.num_attention_heads, D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
    for (int o = 0; o < A->n_out; o++) {
        size_t seq = (size_t)(m->score_slots[o] / T) * T * C, row = (size_t)o * C;
        be->gemm_batched(be, 0, 1, 1, T, D, scale, opt_act(m, L->q + row), C, D,
                         opt_act(m, L->k + seq), C, D, 0.0f,
                         opt_act(m, L->probs + (size_t)o * H * T), T, T, H);
    }
    be->attention_softmax_forward(be, opt_act(m, L->probs), opt_act(m, L->probs),
                                  opt_act(m, A->score_mask), A->n_out, H, 1, T);
    for (int o = 0; o < A->n_out; o++) {
        size_t seq = (size_t)(m->score_slots[o] / T) * T * C, row = (size_t)o * C;
        be->gemm_batched(be, 0, 0, 1, D, T, 1.0f, opt_act(m, L->probs + (size_t)o * H * T), T, T,
                         opt_act(m, L->v + seq), C, D, 0.0f, opt_act(m, L->attn + row), C, D, H);
    }
}

/* Layer l. Past its keys and values the last layer runs only at the n_out
 * score rows (gathered into last_x / last_in): nothing else reaches a score. */
static void layer_forward(rc_model *m, int l) {
    rc_backend *be = m->be;
    const rc_opt_config *c = &m->cfg;
    const opt_layer_params *W = &m->p.layers[l];
    const opt_layer_acts *L = &m->plan.layer[l];
    const opt_acts *A = &m->plan;
    const int score_rows = l == c->num_hidden_layers - 1;
    const int N = A->rows * A->T, R = score_rows ? A->n_out : N;
    const int C = c->hidden_size, F = c->ffn_dim;
    const int pre = c->do_layer_norm_before;
    rc_view x = opt_layer_input(m, l);
    rc_view ln1 = opt_act(m, L->ln1), res1 = opt_act(m, L->res1);
    rc_view ln2 = opt_act(m, L->ln2), res2 = opt_act(m, L->res2);

    rc_view attn_in = x;
    if (pre) {
        opt_layernorm(m, L->ln1, L->ln1_mean, L->ln1_rstd, x, W->attn_ln_w, W->attn_ln_b, N);
        attn_in = ln1;
    }
    opt_linear_forward(be, opt_act(m, L->k), attn_in, opt_param(m, W->k_w), opt_param(m, W->k_b), N, C, C);
    opt_linear_forward(be, opt_act(m, L->v), attn_in, opt_param(m, W->v_w), opt_param(m, W->v_b), N, C, C);
    rc_view x_rows = x, attn_in_rows = attn_in;
    if (score_rows) {
        rc_view slots = opt_act(m, A->score_slots);
        x_rows = opt_act(m, A->last_x);
        be->gather_rows(be, x_rows, x, slots, R, C);
        attn_in_rows = x_rows;
        if (pre) {
            attn_in_rows = opt_act(m, A->last_in);
            be->gather_rows(be, attn_in_rows, attn_in, slots, R, C);
        }
    }
    opt_linear_forward(be, opt_act(m, L->q), attn_in_rows, opt_param(m, W->q_w), opt_param(m, W->q_b),
                       R, C, C);
    if (score_rows) score_attention_forward(m, L);
    else attention_forward(m, L);
    opt_linear_forward(be, res1, opt_act(m, L->attn), opt_param(m, W->out_w), opt_param(m, W->out_b),
                       R, C, C);
    be->add(be, res1, res1, x_rows, (size_t)R * C);

    rc_view h1 = res1;
    if (!pre) {
        opt_layernorm(m, L->ln1, L->ln1_mean, L->ln1_rstd, res1, W->attn_ln_w, W->attn_ln_b, R);
        h1 = ln1;
    }
    rc_view mlp_in = h1;
    if (pre) {
        opt_layernorm(m, L->ln2, L->ln2_mean, L->ln2_rstd, h1, W->mlp_ln_w, W->mlp_ln_b, R);
        mlp_in = ln2;
    }
    opt_linear_forward(be, opt_act(m, L->fc1), mlp_in, opt_param(m, W->fc1_w), opt_param(m, W->fc1_b),
                       R, C, F);
    be->activation_forward(be, c->activation, opt_act(m, L->act), opt_act(m, L->fc1), (size_t)R * F);
    opt_linear_forward(be, res2, opt_act(m, L->act), opt_param(m, W->fc2_w), opt_param(m, W->fc2_b),
                       R, F, C);
    be->add(be, res2, res2, h1, (size_t)R * C);
    if (!pre)
        opt_layernorm(m, L->ln2, L->ln2_mean, L->ln2_rstd, res2, W->mlp_ln_w, W->mlp_ln_b, R);
}

/* Plans the activations of a batch after checking that it fits the memory
 * rc_model_reserve set aside. */
static rc_status plan_batch(rc_model *m, int rows, int T, int n_out) {
    if (!m->acts)
        return rc_fail(RC_ERR_INVALID_ARG, "rc_model_reserve must be called before forward");
    if (rows <= 0 || T <= 0 || n_out <= 0 || n_out > m->max_rows)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "batch of %d x %d with %d scores does not fit the reserved %d x %d", rows,
                       T, n_out, m->max_rows, m->max_seq_len);
    opt_acts plan = m->plan;
    size_t need = opt_plan_batch(m, rows, T, n_out, &plan, plan.layer);
    if (need > m->acts_capacity)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "batch of %d x %d needs %.1f MB of activations; %.1f MB were reserved "
                       "for %d x %d", rows, T, need * 4.0 / 1e6, m->acts_capacity * 4.0 / 1e6,
                       m->max_rows, m->max_seq_len);
    m->plan = plan;
    return RC_OK;
}

static rc_status check_ids(const rc_model *m, const int32_t *ids, int rows, int T) {
    for (size_t i = 0; i < (size_t)rows * T; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return rc_fail(RC_ERR_INVALID_ARG, "token id %d at row %d, position %d is outside "
                           "the vocabulary (size %d)", ids[i], (int)(i / T), (int)(i % T),
                           m->cfg.vocab_size);
    return RC_OK;
}

/* Uploads the batch and, for the last layer's one query per score (at
 * m->score_slots), the keys that query may see under the backend.h rule. */
static rc_status upload_inputs(rc_model *m, const int32_t *ids, const int32_t *mask,
                               const int32_t *pos) {
    rc_backend *be = m->be;
    const opt_acts *A = &m->plan;
    const int T = A->T;
    const size_t N = (size_t)A->rows * T;
    int32_t *score_mask = malloc((size_t)A->n_out * T * sizeof *score_mask);
    if (!score_mask) return rc_fail(RC_ERR_OOM, "cannot allocate the score masks");
    for (int o = 0; o < A->n_out; o++) {
        const int32_t *row = mask + (size_t)(m->score_slots[o] / T) * T;
        const int t = m->score_slots[o] % T;
        for (int j = 0; j < T; j++) score_mask[(size_t)o * T + j] = rc_key_visible(row, t, j);
    }
    rc_status st = be->upload(be, opt_act(m, A->ids), ids, N);
    if (st == RC_OK) st = be->upload(be, opt_act(m, A->mask), mask, N);
    if (st == RC_OK) st = be->upload(be, opt_act(m, A->pos_ids), pos, N);
    if (st == RC_OK)
        st = be->upload(be, opt_act(m, A->score_slots), m->score_slots, (size_t)A->n_out);
    if (st == RC_OK)
        st = be->upload(be, opt_act(m, A->score_mask), score_mask, (size_t)A->n_out * T);
    free(score_mask);
    return st;
}

/* Embeddings, the layers, and the score head on the n_out score rows. */
static rc_status forward_planned(rc_model *m, float *rewards_out) {
    rc_backend *be = m->be;
    const rc_opt_config *c = &m->cfg;
    const opt_acts *A = &m->plan;
    const int N = A->rows * A->T, C = c->hidden_size, P = c->word_embed_proj_dim;
    const int n_out = A->n_out;
    rc_view x0 = opt_act(m, A->x0);
    if (m->p.project_in != RC_NO_PARAM) {
        be->embedding_forward(be, opt_act(m, A->tok_embed), opt_act(m, A->ids),
                              opt_param(m, m->p.embed_tokens), N, P, 0);
        opt_linear_forward(be, x0, opt_act(m, A->tok_embed), opt_param(m, m->p.project_in),
                           (rc_view){0}, N, P, C);
    } else {
        be->embedding_forward(be, x0, opt_act(m, A->ids), opt_param(m, m->p.embed_tokens), N, C, 0);
    }
    be->embedding_forward(be, x0, opt_act(m, A->pos_ids), opt_param(m, m->p.embed_positions), N, C, 1);

    for (int l = 0; l < c->num_hidden_layers; l++) layer_forward(m, l);

    /* the last layer's output holds just the n_out score rows */
    rc_view gathered = opt_layer_input(m, c->num_hidden_layers);
    rc_view head_in = gathered;
    if (c->do_layer_norm_before && !c->remove_final_layer_norm) {
        opt_layernorm(m, A->final_ln, A->final_mean, A->final_rstd, gathered, m->p.final_ln_w,
                      m->p.final_ln_b, n_out);
        head_in = opt_act(m, A->final_ln);
    }
    rc_view pooled = head_in;
    if (m->p.project_out != RC_NO_PARAM) {
        pooled = opt_act(m, A->pooled);
        opt_linear_forward(be, pooled, head_in, opt_param(m, m->p.project_out), (rc_view){0}, n_out,
                           C, P);
    }
    opt_linear_forward(be, opt_act(m, A->rewards), pooled, opt_param(m, m->p.score), (rc_view){0},
                       n_out, P, 1);
    rc_status st = be->download(be, rewards_out, opt_act(m, A->rewards), (size_t)n_out);
    if (st != RC_OK) return rc_fail_context(st, "forward pass on the %s backend", be->name);
    m->have_forward = 1;
    return RC_OK;
}

/* HF's bookkeeping of a padded batch: position ids are the cumsum of the mask
 * (offset 2) and the score is read at the rightmost token that is not pad. */
rc_status rc_model_forward(rc_model *m, const int32_t *ids, const int32_t *mask, int rows, int T,
                           float *rewards_out) {
    m->have_forward = 0;
    if (T > m->cfg.max_position_embeddings)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "sequence length %d exceeds the model's max_position_embeddings %d", T,
                       m->cfg.max_position_embeddings);
    rc_status st = plan_batch(m, rows, T, rows);
    if (st == RC_OK) st = check_ids(m, ids, rows, T);
    if (st != RC_OK) return st;
    const size_t N = (size_t)rows * T;
    int32_t *pos = malloc(N * sizeof *pos);
    if (!pos) return rc_fail(RC_ERR_OOM, "cannot allocate position ids");
    for (int b = 0; b < rows; b++) {
        int seen = 0, last = 0;
        for (int t = 0; t < T; t++) {
            int on = mask[(size_t)b * T + t] != 0;
            seen += on;
            /* (cumsum(mask) * mask - 1) + offset 2: padding gets position 1 */
            pos[(size_t)b * T + t] = (on ? seen - 1 : -1) + 2;
            if (ids[(size_t)b * T + t] != m->cfg.pad_token_id) last = t;
        }
        m->pooled_index[b] = last;
        m->score_slots[b] = b * T + last;
    }
    st = upload_inputs(m, ids, mask, pos);
    free(pos);
    return st == RC_OK ? forward_planned(m, rewards_out) : st;
}

rc_status rc_model_forward_packed(rc_model *m, const rc_packed_batch *b, float *rewards_out) {
    m->have_forward = 0;
    rc_status st = plan_batch(m, b->rows, b->T, b->n_scores);
    if (st == RC_OK) st = check_ids(m, b->ids, b->rows, b->T);
    if (st != RC_OK) return st;
    const size_t N = (size_t)b->rows * b->T;
    int32_t *pos = malloc(N * sizeof *pos);
    if (!pos) return rc_fail(RC_ERR_OOM, "cannot allocate position ids");
    for (size_t i = 0; i < N && st == RC_OK; i++) {
        if (b->positions[i] < -1 || b->positions[i] >= m->cfg.max_position_embeddings)
            st = rc_fail(RC_ERR_INVALID_ARG, "position %d at row %d, slot %d is outside -1..%d",
                         b->positions[i], (int)(i / b->T), (int)(i % b->T),
                         m->cfg.max_position_embeddings - 1);
        pos[i] = b->positions[i] + 2; /* OPT's learned positions start at offset 2 */
    }
    for (int i = 0; i < b->n_scores && st == RC_OK; i++) {
        if (b->score_at[i] < 0 || (size_t)b->score_at[i] >= N)
            st = rc_fail(RC_ERR_INVALID_ARG, "score %d is read at slot %d, outside the %d x %d "
                         "batch", i, b->score_at[i], b->rows, b->T);
        else {
            m->pooled_index[i] = b->score_at[i] % b->T;
            m->score_slots[i] = b->score_at[i];
        }
    }
    if (st == RC_OK) st = upload_inputs(m, b->ids, b->mask, pos);
    free(pos);
    return st == RC_OK ? forward_planned(m, rewards_out) : st;
}

const int32_t *rc_model_pooled_index(const rc_model *m) { return m->pooled_index; }
