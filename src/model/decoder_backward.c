/* The decoder's backward pass: decoder_forward.c in reverse. Gradients of
 * parameters accumulate (+=) into the gradient buffer; activation gradients
 * use the scratch planned in memory_plan.c. g_stream carries dLoss/d(layer
 * output) down the stack and leaves each layer as dLoss/d(layer input). */
#include "model/decoder.h"
#include "model/family.h"

static void embeddings_backward(rc_model *m);

void decoder_norm_backward(rc_model *m, rc_view dinp, rc_view dout, rc_view inp, int w, int b,
                           size_t mean, size_t rstd, int rows) {
    rc_backend *be = m->be;
    const int C = m->cfg.hidden_size;
    /* a frozen norm's weight gradient lands in scratch: the ops always form it */
    if (m->cfg.norm == RC_NORM_RMS)
        be->rmsnorm_backward(be, dinp, decoder_norm_grad(m, w, 0), dout, inp, dec_param(m, w),
                             dec_act(m, rstd), rows, C);
    else
        be->layernorm_backward(be, dinp, decoder_norm_grad(m, w, 0), decoder_norm_grad(m, b, 1),
                               dout, inp, dec_param(m, w), dec_act(m, mean), dec_act(m, rstd),
                               rows, C);
}

/* The gradient g ([rows, heads * D], as attention left it for q or k) back
 * through the rotation and, for Qwen3, the head norm: returns the view that
 * then holds dLoss/d(the projection's output). */
static rc_view heads_backward(rc_model *m, rc_view g, int norm_w, size_t raw, size_t rstd,
                              int heads, size_t pos, int rows) {
    const rc_model_config *c = &m->cfg;
    decoder_rope(m, g, heads, pos, rows, 1);
    if (norm_w == RC_NO_PARAM) return g;
    rc_view g_raw = dec_act(m, m->plan.g_heads);
    m->be->fill(m->be, g_raw, 0.0f, (size_t)rows * heads * c->head_dim);
    m->be->rmsnorm_backward(m->be, g_raw, decoder_norm_grad(m, norm_w, 0), g, dec_act(m, raw),
                            dec_param(m, norm_w), dec_act(m, rstd), rows * heads, c->head_dim);
    return g_raw;
}

/* The MLP of R rows: g_out (dLoss/d its output) -> dx written into g_in,
 * with the weight gradients; `in` is the MLP's input as the forward saw it. */
static void mlp_backward(rc_model *m, const layer_params *W, const layer_acts *L, rc_view g_out,
                         rc_view in, rc_view g_in, int R) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const decoder_acts *A = &m->plan;
    const int C = c->hidden_size, F = c->ffn_dim;
    const size_t n = (size_t)R * F;
    rc_view g_act = dec_act(m, A->g_act), g_fc1 = dec_act(m, A->g_fc1);
    decoder_linear_backward(m, &W->down, g_act, 0, g_out, dec_act(m, L->act), R, F, C);
    be->fill(be, g_fc1, 0.0f, n);
    if (c->gated_mlp) {
        rc_view g_up = dec_act(m, A->g_up);
        be->fill(be, g_up, 0.0f, n);
        be->gated_backward(be, c->activation, g_fc1, g_up, g_act, dec_act(m, L->fc1),
                           dec_act(m, L->up), n);
        decoder_linear_backward(m, &W->gate, g_in, 0, g_fc1, in, R, C, F);
        decoder_linear_backward(m, &W->up, g_in, 1, g_up, in, R, C, F);
    } else {
        /* for ReLU, L->fc1 holds relu(fc1), which has the same positive entries */
        be->activation_backward(be, c->activation, g_fc1, g_act, dec_act(m, L->fc1), n);
        decoder_linear_backward(m, &W->up, g_in, 0, g_fc1, in, R, C, F);
    }
}

/* g_out: dLoss/d(layer output), [N, C] or, for the last layer, its n_out
 * score rows. Leaves dLoss/d(layer input) ([N, C]) in g_stream, where
 * need_dx (something below trains). */
static void layer_backward(rc_model *m, int l, rc_view g_out, int need_dx) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const layer_params *W = &m->p.layers[l];
    const layer_acts *L = &m->plan.layer[l];
    const decoder_acts *A = &m->plan;
    const int score_rows = l == c->num_hidden_layers - 1;
    const int N = A->rows * A->T, R = score_rows ? A->n_out : N;
    const int C = c->hidden_size, H = c->num_attention_heads, HKV = c->num_key_value_heads;
    const int QW = dec_q_width(c), KW = dec_kv_width(c);
    const size_t NC = (size_t)N * C, RC = (size_t)R * C;
    const int pre = c->do_layer_norm_before, parallel = c->parallel_block;
    rc_view x = decoder_layer_input(m, l);
    rc_view g_stream = dec_act(m, A->g_stream), g_tmp = dec_act(m, A->g_tmp);
    rc_view g_ln = dec_act(m, A->g_ln), res1 = dec_act(m, L->res1);
    rc_view ln1 = dec_act(m, L->ln1);

    /* MLP: out = res2 (pre) or N2(res2) (post); res2 = h1 + MLP(mlp_in) */
    rc_view g_res2 = g_out;
    if (!pre) {
        be->fill(be, g_tmp, 0.0f, RC);
        decoder_norm_backward(m, g_tmp, g_out, dec_act(m, L->res2), W->mlp_norm_w, W->mlp_norm_b,
                              L->ln2_mean, L->ln2_rstd, R);
        g_res2 = g_tmp;
    }
    /* the MLP's input, a norm output, is recomputed (training keeps none);
     * a parallel block's is the attention's, N1(x) (its score rows in last_in) */
    rc_view h1 = res1, mlp_in;
    if (parallel) {
        decoder_norm(m, L->ln1, L->ln1_mean, L->ln1_rstd, x, W->attn_norm_w, W->attn_norm_b, N);
        mlp_in = score_rows ? dec_act(m, A->last_in) : ln1;
    } else if (pre) {
        decoder_norm(m, L->ln2, L->ln2_mean, L->ln2_rstd, res1, W->mlp_norm_w, W->mlp_norm_b, R);
        mlp_in = dec_act(m, L->ln2);
    } else {
        decoder_norm(m, L->ln1, L->ln1_mean, L->ln1_rstd, res1, W->attn_norm_w, W->attn_norm_b, R);
        h1 = mlp_in = ln1;
    }
    rc_view g_mlp_in = parallel ? dec_act(m, A->g_mlp_in) : g_ln;
    mlp_backward(m, W, L, g_res2, mlp_in, g_mlp_in, R);
    /* g_res2 now becomes dLoss/dh1: the residual path plus the MLP path
     * (a parallel block's MLP path joins at the attention's input instead) */
    if (parallel)
        ;
    else if (pre)
        decoder_norm_backward(m, g_res2, g_ln, h1, W->mlp_norm_w, W->mlp_norm_b, L->ln2_mean,
                              L->ln2_rstd, R);
    else
        be->axpy(be, g_res2, 1.0f, g_ln, RC);

    /* Attention: h1 = res1 (pre) or N1(res1) (post); res1 = x + o(attn).
     * g_res1 must not be g_stream where dx (N rows) is assembled from R rows. */
    rc_view g_res1 = g_res2;
    if (!pre) {
        g_res1 = score_rows ? dec_act(m, A->g_rows) : g_stream;
        be->fill(be, g_res1, 0.0f, RC);
        decoder_norm_backward(m, g_res1, g_res2, res1, W->attn_norm_w, W->attn_norm_b,
                              L->ln1_mean, L->ln1_rstd, R);
    }
    /* o's weight gradient needs attn, which only the last layer still
     * holds: the others add it in decoder_attention_backward */
    decoder_linear_backward_input(m, &W->o, dec_act(m, A->g_attn), 0, g_res1, R, QW, C);
    decoder_linear_backward_weights(m, &W->o, score_rows ? LINEAR_DW | LINEAR_DB : LINEAR_DB,
                                    g_res1, dec_act(m, L->attn), R, QW, C);
    if (pre && !parallel) /* the attention input, recomputed into the buffer the MLP input used */
        decoder_norm(m, L->ln1, L->ln1_mean, L->ln1_rstd, x, W->attn_norm_w, W->attn_norm_b, N);
    rc_view attn_in = pre ? ln1 : x;
    rc_view g_q = dec_act(m, A->g_q), g_k = dec_act(m, A->g_k), g_v = dec_act(m, A->g_v);
    /* the attention input's gradient feeds only dx and a pre-norm's attention
     * norm: without either, q, k and v form only their weights' gradients */
    const int attn_norm_trains = decoder_param_trainable(m, W->attn_norm_w) ||
                                 decoder_param_trainable(m, W->attn_norm_b);
    const int need_attn_in = need_dx || ((pre || parallel) && attn_norm_trains);
    const rc_view none = {NULL, 0};
    if (!score_rows) {
        decoder_attention_backward(m, L, g_res1, &W->o);
        g_q = heads_backward(m, g_q, W->q_norm, L->q_raw, L->q_rstd, H, A->pos_ids, N);
        decoder_linear_backward(m, &W->q, need_attn_in ? g_ln : none, 0, g_q, attn_in, N, C, QW);
    } else {
        decoder_score_attention_backward(m, L);
        g_q = heads_backward(m, g_q, W->q_norm, L->q_raw, L->q_rstd, H, A->score_pos, R);
        /* q saw only the score rows: their gradient lands at those rows of g_ln */
        rc_view attn_in_rows = dec_act(m, pre ? A->last_in : A->last_x);
        rc_view g_in_rows = g_tmp; /* free here: post-norm's g_res2 is spent */
        decoder_linear_backward(m, &W->q, need_attn_in ? g_in_rows : none, 0, g_q, attn_in_rows,
                                R, C, QW);
        if (need_attn_in) {
            be->fill(be, g_ln, 0.0f, NC);
            be->scatter_rows_add(be, g_ln, g_in_rows, dec_act(m, A->score_slots), R, C);
        }
    }
    g_k = heads_backward(m, g_k, W->k_norm, L->k_raw, L->k_rstd, HKV, A->pos_ids, N);
    decoder_linear_backward(m, &W->k, need_attn_in ? g_ln : none, 1, g_k, attn_in, N, C, KW);
    decoder_linear_backward(m, &W->v, need_attn_in ? g_ln : none, 1, g_v, attn_in, N, C, KW);
    if (!need_attn_in) return; /* nothing below trains: the stream stops here */
    if (parallel) { /* the MLP read the attention's input too */
        if (score_rows)
            be->scatter_rows_add(be, g_ln, g_mlp_in, dec_act(m, A->score_slots), R, C);
        else
            be->axpy(be, g_ln, 1.0f, g_mlp_in, NC);
    }
    /* dLoss/dx = residual (g_res1) + attention input path, landed in g_stream */
    if (score_rows) {
        be->fill(be, g_stream, 0.0f, NC);
        be->scatter_rows_add(be, g_stream, g_res1, dec_act(m, A->score_slots), R, C);
    } /* else g_res1 is g_stream already */
    if (pre)
        decoder_norm_backward(m, g_stream, g_ln, x, W->attn_norm_w, W->attn_norm_b, L->ln1_mean,
                              L->ln1_rstd, N);
    else
        be->axpy(be, g_stream, 1.0f, g_ln, NC);
}

/* The layers from the top down to the lowest that trains; with activation
 * checkpointing each but the last (whose activations the forward left in
 * the shared buffers) is first run forward again from its kept input. */
static void layers_backward(rc_model *m, rc_view g_top) {
    const int n = m->cfg.num_hidden_layers;
    for (int l = n - 1; l >= 0 && m->grad_floor <= stage_of_layer(l); l--) {
        if (m->plan.checkpointing && l < n - 1) decoder_layer_forward(m, l);
        layer_backward(m, l, l == n - 1 ? g_top : dec_act(m, m->plan.g_stream),
                       m->grad_floor < stage_of_layer(l));
    }
}

rc_status rc_model_backward(rc_model *m, const float *d_rewards) {
    if (!m->have_forward || !m->plan.training)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "backward needs a forward pass on a model reserved for training, with "
                       "gradients enabled");
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const decoder_acts *A = &m->plan;
    const int rows = A->n_out, C = c->hidden_size, P = c->word_embed_proj_dim;
    const linear_ref score = family_linear(m->p.score, RC_NO_PARAM);
    const int floor = m->grad_floor;
    const rc_view none = {NULL, 0};
    rc_status st = be->upload(be, dec_act(m, A->g_rewards), d_rewards, (size_t)rows);
    if (st != RC_OK) return st;
    be->fill(be, dec_act(m, A->g_frozen), 0.0f, 2 * A->g_frozen_width);

    /* score head: rewards[rows,1] = pooled[rows,P] score^T */
    rc_view gathered = decoder_layer_input(m, c->num_hidden_layers); /* the score rows */
    rc_view head_in = c->final_norm ? dec_act(m, A->final_ln) : gathered;
    int has_proj = m->p.project_out != RC_NO_PARAM;
    rc_view pooled = has_proj ? dec_act(m, A->pooled) : head_in;
    rc_view g_pooled = dec_act(m, A->g_pooled);
    decoder_linear_backward(m, &score, floor < stage_score(c) ? g_pooled : none, 0,
                            dec_act(m, A->g_rewards), pooled, rows, P, 1);
    rc_view g_head_in = g_pooled;
    if (has_proj && floor <= stage_project_out(c)) {
        g_head_in = dec_act(m, A->g_final);
        decoder_linear_backward(m, &m->p.project_out_linear,
                                floor < stage_project_out(c) ? g_head_in : none, 0, g_pooled,
                                head_in, rows, C, P);
    }
    rc_view g_gathered = g_head_in;
    if (c->final_norm && floor <= stage_final_norm(c)) {
        g_gathered = dec_act(m, A->g_gathered);
        be->fill(be, g_gathered, 0.0f, (size_t)rows * C);
        decoder_norm_backward(m, g_gathered, g_head_in, gathered, m->p.final_norm_w,
                              m->p.final_norm_b, A->final_mean, A->final_rstd, rows);
    }
    layers_backward(m, g_gathered);
    if (floor == STAGE_EMBEDDINGS) embeddings_backward(m);
    st = be->sync(be);
    if (st != RC_OK) return rc_fail_context(st, "backward pass on the %s backend", be->name);
    return RC_OK;
}

/* x0 = project_in(embed_tokens[ids]) (+ embed_positions[pos]), from g_stream */
static void embeddings_backward(rc_model *m) {
    rc_backend *be = m->be;
    const rc_model_config *c = &m->cfg;
    const decoder_acts *A = &m->plan;
    const int N = A->rows * A->T, C = c->hidden_size, P = c->word_embed_proj_dim;
    rc_view g_stream = dec_act(m, A->g_stream);
    if (decoder_param_trainable(m, m->p.embed_positions))
        be->embedding_backward(be, dec_grad(m, m->p.embed_positions), g_stream,
                               dec_act(m, A->pos_ids), N, C);
    rc_view g_tok = g_stream;
    const int tokens_train = decoder_param_trainable(m, m->p.embed_tokens);
    if (m->p.project_in != RC_NO_PARAM) {
        g_tok = dec_act(m, A->g_tok);
        decoder_linear_backward(m, &m->p.project_in_linear, tokens_train ? g_tok : (rc_view){0},
                                0, g_stream, dec_act(m, A->tok_embed), N, P, C);
    }
    if (!tokens_train) return;
    rc_view g_table = dec_grad(m, m->p.embed_tokens);
    be->embedding_backward(be, g_table, g_tok, dec_act(m, A->ids), N, P);
    /* nn.Embedding(padding_idx=pad): the pad row never learns, even where
     * the pad id occurs inside a text */
    if (m->family->embedding_padding_idx)
        be->fill(be, rc_view_at(g_table, (size_t)c->pad_token_id * P), 0.0f, (size_t)P);
}
