/* The decoder's forward pass with the scalar score head, composed from
 * backend ops and driven by rc_model_config. Per layer, with x its input:
 *   pre-norm : ln1 = N1(x); res1 = x + Attn(ln1); ln2 = N2(res1); res2 = res1 + MLP(ln2)
 *   post-norm: res1 = x + Attn(x); ln1 = N1(res1); res2 = ln1 + MLP(ln1); ln2 = N2(res2)
 *   parallel : ln1 = N1(x); res1 = x + Attn(ln1); res2 = res1 + MLP(ln1)   (Falcon)
 * Attn projects q, k, v (Qwen3 normalises each head of q and k), applies
 * rotary positions to q and k where the family uses them, and attends; MLP
 * is fc2(act(fc1)) or down(act(gate) * up). The score is read at one token
 * per sequence (two per packed pair), so past its keys and values the last
 * layer, then the final norm and project_out, run only on those rows. */
#include <stdlib.h>

#include "model/family.h"

void decoder_norm(rc_model *m, size_t out, size_t mean, size_t rstd, rc_view x, int w, int b,
                  int rows) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    if (c->norm == RC_NORM_RMS)
        be->rmsnorm_forward(be, dec_act(m, out), dec_act(m, rstd), x, dec_param(m, w), rows,
                            c->hidden_size, (float)c->norm_eps);
    else
        be->layernorm_forward(be, dec_act(m, out), dec_act(m, mean), dec_act(m, rstd), x,
                              dec_param(m, w), dec_param(m, b), rows, c->hidden_size,
                              (float)c->norm_eps);
}

/* q or k of `rows` rows: projected (into raw first where the heads are
 * normalised, Qwen3), then rotated at the positions of `pos`. */
static void project_heads(rc_model *m, const linear_ref *lin, int norm_w, size_t raw,
                          size_t rstd, size_t out, rc_view in, int heads, size_t pos, int rows) {
    const rc_model_config *c = &m->cfg;
    const int W = heads * c->head_dim;
    if (norm_w == RC_NO_PARAM) {
        decoder_linear_forward(m, lin, dec_act(m, out), in, rows, c->hidden_size, W);
    } else {
        decoder_linear_forward(m, lin, dec_act(m, raw), in, rows, c->hidden_size, W);
        m->be->rmsnorm_forward(m->be, dec_act(m, out), dec_act(m, rstd), dec_act(m, raw),
                               dec_param(m, norm_w), rows * heads, c->head_dim,
                               (float)c->norm_eps);
    }
    decoder_rope(m, dec_act(m, out), heads, pos, rows, 0);
}

/* The MLP on R rows of `in` into `out` (not yet the residual). */
static void mlp_forward(rc_model *m, const layer_params *W, const layer_acts *L, rc_view in,
                        rc_view out, int R) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const int C = c->hidden_size, F = c->ffn_dim;
    const size_t n = (size_t)R * F;
    if (c->gated_mlp) {
        decoder_linear_forward(m, &W->gate, dec_act(m, L->fc1), in, R, C, F);
        decoder_linear_forward(m, &W->up, dec_act(m, L->up), in, R, C, F);
        be->gated_forward(be, c->activation, dec_act(m, L->act), dec_act(m, L->fc1),
                          dec_act(m, L->up), n);
    } else {
        decoder_linear_forward(m, &W->up, dec_act(m, L->fc1), in, R, C, F);
        be->activation_forward(be, c->activation, dec_act(m, L->act), dec_act(m, L->fc1), n);
    }
    decoder_linear_forward(m, &W->down, out, dec_act(m, L->act), R, F, C);
}

/* Layer l. Past its keys and values the last layer runs only at the n_out
 * score rows (gathered into last_x / last_in): nothing else reaches a score. */
void decoder_layer_forward(rc_model *m, int l) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const layer_params *W = &m->p.layers[l];
    const layer_acts *L = &m->plan.layer[l];
    const decoder_acts *A = &m->plan;
    const int score_rows = l == c->num_hidden_layers - 1;
    const int N = A->rows * A->T, R = score_rows ? A->n_out : N;
    const int C = c->hidden_size, H = c->num_attention_heads, HKV = c->num_key_value_heads;
    const int pre = c->do_layer_norm_before;
    rc_view x = decoder_layer_input(m, l);
    rc_view ln1 = dec_act(m, L->ln1), res1 = dec_act(m, L->res1);
    rc_view ln2 = dec_act(m, L->ln2), res2 = dec_act(m, L->res2);

    rc_view attn_in = x;
    if (pre) {
        decoder_norm(m, L->ln1, L->ln1_mean, L->ln1_rstd, x, W->attn_norm_w, W->attn_norm_b, N);
        attn_in = ln1;
    }
    project_heads(m, &W->k, W->k_norm, L->k_raw, L->k_rstd, L->k, attn_in, HKV, A->pos_ids, N);
    decoder_linear_forward(m, &W->v, dec_act(m, L->v), attn_in, N, C, HKV * c->head_dim);
    rc_view x_rows = x, attn_in_rows = attn_in;
    if (score_rows) {
        rc_view slots = dec_act(m, A->score_slots);
        x_rows = dec_act(m, A->last_x);
        be->gather_rows(be, x_rows, x, slots, R, C);
        attn_in_rows = x_rows;
        if (pre) {
            attn_in_rows = dec_act(m, A->last_in);
            be->gather_rows(be, attn_in_rows, attn_in, slots, R, C);
        }
    }
    project_heads(m, &W->q, W->q_norm, L->q_raw, L->q_rstd, L->q, attn_in_rows, H,
                  score_rows ? A->score_pos : A->pos_ids, R);
    if (score_rows) decoder_score_attention_forward(m, L);
    else decoder_attention_forward(m, L);
    decoder_linear_forward(m, &W->o, res1, dec_act(m, L->attn), R, H * c->head_dim, C);
    be->add(be, res1, res1, x_rows, (size_t)R * C);

    rc_view h1 = res1, mlp_in = attn_in_rows; /* parallel: the MLP reads the attention's input */
    if (!c->parallel_block) {
        if (!pre) {
            decoder_norm(m, L->ln1, L->ln1_mean, L->ln1_rstd, res1, W->attn_norm_w,
                         W->attn_norm_b, R);
            h1 = ln1;
        }
        mlp_in = h1;
        if (pre) {
            decoder_norm(m, L->ln2, L->ln2_mean, L->ln2_rstd, h1, W->mlp_norm_w, W->mlp_norm_b, R);
            mlp_in = ln2;
        }
    }
    mlp_forward(m, W, L, mlp_in, res2, R);
    be->add(be, res2, res2, h1, (size_t)R * C);
    if (!pre)
        decoder_norm(m, L->ln2, L->ln2_mean, L->ln2_rstd, res2, W->mlp_norm_w, W->mlp_norm_b, R);
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
    /* positions are below T: rotary tables grow to cover a packed row longer
     * than the reservation's sequences */
    rc_status st = decoder_rope_tables(m, T);
    if (st != RC_OK) return st;
    decoder_acts plan = m->plan;
    size_t need = decoder_plan_batch(m, rows, T, n_out, &plan, plan.layer);
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

/* Uploads the batch: ids, mask, the positions (pos: each token's index within
 * its own sequence, -1 for padding) as the family reads them, and, for the
 * last layer's one query per score (at m->score_slots), its position and
 * the keys it may see under the backend.h rule. */
static rc_status upload_inputs(rc_model *m, const int32_t *ids, const int32_t *mask,
                               const int32_t *pos) {
    rc_backend *be = m->be;
    const decoder_acts *A = &m->plan;
    const int T = A->T, n_out = A->n_out;
    const size_t N = (size_t)A->rows * T;
    int32_t *score_mask = malloc((size_t)n_out * T * sizeof *score_mask);
    int32_t *rows = malloc((N + (size_t)n_out) * sizeof *rows);
    if (!score_mask || !rows) {
        free(score_mask);
        free(rows);
        return rc_fail(RC_ERR_OOM, "cannot allocate the batch's positions and score masks");
    }
    /* learned positions: a row of the table (padding takes the row before
     * position 0, as OPT's cumsum gives it); rotary: the angle's index */
    const int learned = m->cfg.positions == RC_POS_LEARNED;
    for (size_t i = 0; i < N; i++)
        rows[i] = learned ? pos[i] + m->cfg.position_offset : (pos[i] > 0 ? pos[i] : 0);
    if (learned && m->cfg.position_offset == 0) /* GPT-2: padding reads position 0 */
        for (size_t i = 0; i < N; i++) rows[i] = rows[i] > 0 ? rows[i] : 0;
    for (int o = 0; o < n_out; o++) {
        const int32_t *row = mask + (size_t)(m->score_slots[o] / T) * T;
        const int t = m->score_slots[o] % T;
        for (int j = 0; j < T; j++) score_mask[(size_t)o * T + j] = rc_key_visible(row, t, j);
        rows[N + o] = rows[m->score_slots[o]];
    }
    rc_status st = be->upload(be, dec_act(m, A->ids), ids, N);
    if (st == RC_OK) st = be->upload(be, dec_act(m, A->mask), mask, N);
    if (st == RC_OK) st = be->upload(be, dec_act(m, A->pos_ids), rows, N);
    if (st == RC_OK) st = be->upload(be, dec_act(m, A->score_pos), rows + N, (size_t)n_out);
    if (st == RC_OK)
        st = be->upload(be, dec_act(m, A->score_slots), m->score_slots, (size_t)n_out);
    if (st == RC_OK)
        st = be->upload(be, dec_act(m, A->score_mask), score_mask, (size_t)n_out * T);
    free(score_mask);
    free(rows);
    return st;
}

/* Embeddings, the layers, and the score head on the n_out score rows. */
static rc_status forward_planned(rc_model *m, float *rewards_out) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const decoder_acts *A = &m->plan;
    const int N = A->rows * A->T, C = c->hidden_size, P = c->word_embed_proj_dim;
    const int n_out = A->n_out;
    const linear_ref score = family_linear(m->p.score, RC_NO_PARAM);
    rc_view x0 = dec_act(m, A->x0);
    if (m->p.project_in != RC_NO_PARAM) {
        be->embedding_forward(be, dec_act(m, A->tok_embed), dec_act(m, A->ids),
                              dec_param(m, m->p.embed_tokens), N, P, 0);
        decoder_linear_forward(m, &m->p.project_in_linear, x0, dec_act(m, A->tok_embed), N, P, C);
    } else {
        be->embedding_forward(be, x0, dec_act(m, A->ids), dec_param(m, m->p.embed_tokens), N, C,
                              0);
    }
    if (m->p.embed_positions != RC_NO_PARAM)
        be->embedding_forward(be, x0, dec_act(m, A->pos_ids), dec_param(m, m->p.embed_positions),
                              N, C, 1);

    for (int l = 0; l < c->num_hidden_layers; l++) decoder_layer_forward(m, l);

    /* the last layer's output holds just the n_out score rows */
    rc_view gathered = decoder_layer_input(m, c->num_hidden_layers);
    rc_view head_in = gathered;
    if (c->final_norm) {
        decoder_norm(m, A->final_ln, A->final_mean, A->final_rstd, gathered, m->p.final_norm_w,
                     m->p.final_norm_b, n_out);
        head_in = dec_act(m, A->final_ln);
    }
    rc_view pooled = head_in;
    if (m->p.project_out != RC_NO_PARAM) {
        pooled = dec_act(m, A->pooled);
        decoder_linear_forward(m, &m->p.project_out_linear, pooled, head_in, n_out, C, P);
    }
    decoder_linear_forward(m, &score, dec_act(m, A->rewards), pooled, n_out, P, 1);
    rc_status st = be->download(be, rewards_out, dec_act(m, A->rewards), (size_t)n_out);
    if (st != RC_OK) return rc_fail_context(st, "forward pass on the %s backend", be->name);
    m->have_forward = 1;
    return RC_OK;
}

/* HF's bookkeeping of a padded batch: positions count the mask's ones (so
 * left padding works) and the score is read at the rightmost token that is
 * not pad. */
rc_status rc_model_forward(rc_model *m, const int32_t *ids, const int32_t *mask, int rows, int T,
                           float *rewards_out) {
    m->have_forward = 0;
    if (T > rc_model_max_length(m))
        return rc_fail(RC_ERR_INVALID_ARG,
                       "sequence length %d exceeds the model's max_position_embeddings %d", T,
                       rc_model_max_length(m));
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
            pos[(size_t)b * T + t] = on ? seen - 1 : -1;
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
    const int max_position = rc_model_max_length(m);
    for (size_t i = 0; i < N && st == RC_OK; i++)
        if (b->positions[i] < -1 || b->positions[i] >= max_position)
            st = rc_fail(RC_ERR_INVALID_ARG, "position %d at row %d, slot %d is outside -1..%d",
                         b->positions[i], (int)(i / b->T), (int)(i % b->T), max_position - 1);
    for (int i = 0; i < b->n_scores && st == RC_OK; i++) {
        if (b->score_at[i] < 0 || (size_t)b->score_at[i] >= N)
            st = rc_fail(RC_ERR_INVALID_ARG, "score %d is read at slot %d, outside the %d x %d "
                         "batch", i, b->score_at[i], b->rows, b->T);
        else {
            m->pooled_index[i] = b->score_at[i] % b->T;
            m->score_slots[i] = b->score_at[i];
        }
    }
    if (st == RC_OK) st = upload_inputs(m, b->ids, b->mask, b->positions);
    return st == RC_OK ? forward_planned(m, rewards_out) : st;
}

const int32_t *rc_model_pooled_index(const rc_model *m) { return m->pooled_index; }

/* The head's input as forward_planned left it: project_out's output, the
 * final norm's, or the last layer's rows. */
rc_status rc_model_pooled_hidden(rc_model *m, float *out, size_t n) {
    if (!m->have_forward) return rc_fail(RC_ERR_INVALID_ARG, "no forward pass to read from");
    const decoder_acts *A = &m->plan;
    const size_t want = (size_t)A->n_out * m->cfg.word_embed_proj_dim;
    if (n != want)
        return rc_fail(RC_ERR_INVALID_ARG, "pooled hidden states are %zu floats, not %zu", want, n);
    rc_view head_in = m->p.project_out != RC_NO_PARAM ? dec_act(m, A->pooled)
                      : m->cfg.final_norm             ? dec_act(m, A->final_ln)
                                                      : decoder_layer_input(m, m->cfg.num_hidden_layers);
    return m->be->download(m->be, out, head_in, n);
}
