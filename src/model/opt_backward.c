/* The OPT backward pass: the forward of opt_forward.c in reverse. Gradients of
 * parameters accumulate (+=) into the gradient buffer; activation gradients
 * use the scratch planned in opt_memory.c. g_stream carries dLoss/d(layer
 * output) down the stack and leaves each layer as dLoss/d(layer input). */
#include <math.h>

#include "model/opt_internal.h"

/* g_attn ([N,C]) -> g_q, g_k, g_v, through attn = softmax(scale * Q K^T) V
 * per head, and out_proj's weight gradient (g_res1^T attn). Fused, from attn
 * and the stats as the forward kept them, or else recomputed here. Composed,
 * from probabilities recomputed a chunk of sequences at a time, in products
 * that skip what causality makes zero (opt_causal_block). */
static void attention_backward(rc_model *m, const opt_layer_acts *L, rc_view g_res1,
                               rc_view g_out_w) {
    rc_backend *be = m->be;
    const opt_acts *A = &m->plan;
    const int T = A->T, C = m->cfg.hidden_size;
    const int H = m->cfg.num_attention_heads, D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t TT = (size_t)T * T;
    const int block = opt_causal_block(m);
    if (opt_fused_attention(m)) { /* every sequence at once, as the forward ran it */
        if (!A->keeps_attention) opt_attention_chunk(m, L, 0, A->rows); /* attn, stats again */
        be->gemm(be, 1, 0, C, C, A->rows * T, 1.0f, g_res1, C, opt_act(m, L->attn), C, 1.0f,
                 g_out_w, C);
        be->attention_backward(be, opt_act(m, A->g_q), opt_act(m, A->g_k), opt_act(m, A->g_v),
                               opt_act(m, A->g_attn), opt_act(m, L->attn), opt_act(m, L->stats),
                               opt_act(m, L->q), opt_act(m, L->k), opt_act(m, L->v),
                               opt_act(m, A->mask), A->rows, T, H, H, D, scale);
        return;
    }
    for (int first = 0; first < A->rows; first += A->attention_chunk) {
        const int count = opt_attention_chunk_size(m, first);
        opt_attention_chunk(m, L, first, count);
        const size_t chunk_rows = (size_t)first * T * C;
        be->gemm(be, 1, 0, C, C, count * T, 1.0f, rc_view_at(g_res1, chunk_rows), C,
                 opt_act(m, L->attn + chunk_rows), C, 1.0f, g_out_w, C);
        for (int i = 0; i < count; i++) {
            const size_t seq = (size_t)(first + i) * T * C, heads = (size_t)i * H * TT;
            /* dP = dAttn V^T, whole: the softmax backward reads all of it */
            be->gemm_batched(be, 0, 1, T, T, D, 1.0f, opt_act(m, A->g_attn + seq), C, D,
                             opt_act(m, L->v + seq), C, D, 0.0f, opt_act(m, A->g_probs + heads),
                             T, TT, H);
            /* dV = P^T dAttn: keys k0.. see queries k0..T-1 only */
            for (int k0 = 0; k0 < T; k0 += block) {
                const int keys = T - k0 < block ? T - k0 : block;
                const size_t diagonal = heads + (size_t)k0 * T + (size_t)k0;
                be->gemm_batched(be, 1, 0, keys, D, T - k0, 1.0f, opt_act(m, L->probs + diagonal),
                                 T, TT, opt_act(m, A->g_attn + seq + (size_t)k0 * C), C, D, 0.0f,
                                 opt_act(m, A->g_v + seq + (size_t)k0 * C), C, D, H);
            }
        }
        be->attention_softmax_backward(be, opt_act(m, A->g_probs), opt_act(m, A->g_probs),
                                       opt_act(m, L->probs), count, H, T, T);
        for (int i = 0; i < count; i++) {
            const size_t seq = (size_t)(first + i) * T * C, heads = (size_t)i * H * TT;
            for (int b0 = 0; b0 < T; b0 += block) {
                const int n = T - b0 < block ? T - b0 : block;
                const size_t diagonal = heads + (size_t)b0 * T + (size_t)b0;
                /* dQ = scale dS K, queries b0.. against keys 0..b0+n-1 */
                be->gemm_batched(be, 0, 0, n, D, b0 + n, scale,
                                 opt_act(m, A->g_probs + heads + (size_t)b0 * T), T, TT,
                                 opt_act(m, L->k + seq), C, D, 0.0f,
                                 opt_act(m, A->g_q + seq + (size_t)b0 * C), C, D, H);
                /* dK = scale dS^T Q, keys b0.. from queries b0..T-1 */
                be->gemm_batched(be, 1, 0, n, D, T - b0, scale, opt_act(m, A->g_probs + diagonal),
                                 T, TT, opt_act(m, L->q + seq + (size_t)b0 * C), C, D, 0.0f,
                                 opt_act(m, A->g_k + seq + (size_t)b0 * C), C, D, H);
            }
        }
    }
}

/* The last layer's attention at the score rows: g_attn ([n_out, C]) -> g_q
 * ([n_out, C]) and g_k, g_v ([N, C], zero except in sequences with a score;
 * a packed row's two scores both add to its keys and values). */
static void score_attention_backward(rc_model *m, const opt_layer_acts *L) {
    rc_backend *be = m->be;
    const opt_acts *A = &m->plan;
    const int T = A->T, C = m->cfg.hidden_size, N = A->rows * T;
    const int H = m->cfg.num_attention_heads, D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
    be->fill(be, opt_act(m, A->g_k), 0.0f, (size_t)N * C);
    be->fill(be, opt_act(m, A->g_v), 0.0f, (size_t)N * C);
    for (int o = 0; o < A->n_out; o++) {
        size_t seq = (size_t)(m->score_slots[o] / T) * T * C, row = (size_t)o * C;
        size_t heads = (size_t)o * H * T;
        /* dP = dAttn V^T ; dV += P^T dAttn */
        be->gemm_batched(be, 0, 1, 1, T, D, 1.0f, opt_act(m, A->g_attn + row), C, D,
                         opt_act(m, L->v + seq), C, D, 0.0f, opt_act(m, A->g_probs + heads), T, T, H);
        be->gemm_batched(be, 1, 0, T, D, 1, 1.0f, opt_act(m, L->probs + heads), T, T,
                         opt_act(m, A->g_attn + row), C, D, 1.0f, opt_act(m, A->g_v + seq), C, D, H);
    }
    be->attention_softmax_backward(be, opt_act(m, A->g_probs), opt_act(m, A->g_probs),
                                   opt_act(m, L->probs), A->n_out, H, 1, T);
    for (int o = 0; o < A->n_out; o++) {
        size_t seq = (size_t)(m->score_slots[o] / T) * T * C, row = (size_t)o * C;
        size_t heads = (size_t)o * H * T;
        /* dQ = scale dS K ; dK += scale dS^T Q */
        be->gemm_batched(be, 0, 0, 1, D, T, scale, opt_act(m, A->g_probs + heads), T, T,
                         opt_act(m, L->k + seq), C, D, 0.0f, opt_act(m, A->g_q + row), C, D, H);
        be->gemm_batched(be, 1, 0, T, D, 1, scale, opt_act(m, A->g_probs + heads), T, T,
                         opt_act(m, L->q + row), C, D, 1.0f, opt_act(m, A->g_k + seq), C, D, H);
    }
}

static void layernorm_backward(rc_model *m, rc_view dinp, rc_view dout, rc_view inp, int w, int b,
                               size_t mean, size_t rstd, int N) {
    m->be->layernorm_backward(m->be, dinp, opt_grad(m, w), opt_grad(m, b), dout, inp,
                              opt_param(m, w), opt_act(m, mean), opt_act(m, rstd), N,
                              m->cfg.hidden_size);
}

/* g_out: dLoss/d(layer output), [N, C] or, for the last layer, its n_out
 * score rows. Leaves dLoss/d(layer input) ([N, C]) in g_stream. */
static void layer_backward(rc_model *m, int l, rc_view g_out) {
    rc_backend *be = m->be;
    const rc_opt_config *c = &m->cfg;
    const opt_layer_params *W = &m->p.layers[l];
    const opt_layer_acts *L = &m->plan.layer[l];
    const opt_acts *A = &m->plan;
    const int score_rows = l == c->num_hidden_layers - 1;
    const int N = A->rows * A->T, R = score_rows ? A->n_out : N;
    const int C = c->hidden_size, F = c->ffn_dim;
    const size_t NC = (size_t)N * C, RC = (size_t)R * C;
    const int pre = c->do_layer_norm_before;
    rc_view x = opt_layer_input(m, l);
    rc_view g_stream = opt_act(m, A->g_stream), g_tmp = opt_act(m, A->g_tmp);
    rc_view g_ln = opt_act(m, A->g_ln);

    /* FC block: out = res2 (pre) or LN2(res2) (post); res2 = h1 + fc2(act(fc1(mlp_in))) */
    rc_view g_res2 = g_out;
    if (!pre) {
        be->fill(be, g_tmp, 0.0f, RC);
        layernorm_backward(m, g_tmp, g_out, opt_act(m, L->res2), W->mlp_ln_w, W->mlp_ln_b,
                           L->ln2_mean, L->ln2_rstd, R);
        g_res2 = g_tmp;
    }
    /* the FC block's input, a LayerNorm output, is recomputed (training keeps none) */
    rc_view res1 = opt_act(m, L->res1);
    if (pre)
        opt_layernorm(m, L->ln2, L->ln2_mean, L->ln2_rstd, res1, W->mlp_ln_w, W->mlp_ln_b, R);
    else
        opt_layernorm(m, L->ln1, L->ln1_mean, L->ln1_rstd, res1, W->attn_ln_w, W->attn_ln_b, R);
    rc_view h1 = pre ? res1 : opt_act(m, L->ln1);
    rc_view mlp_in = pre ? opt_act(m, L->ln2) : h1;
    rc_view g_act = opt_act(m, A->g_act), g_fc1 = opt_act(m, A->g_fc1);
    opt_linear_backward(be, g_act, 0, opt_grad(m, W->fc2_w), opt_grad(m, W->fc2_b), g_res2,
                        opt_act(m, L->act), opt_param(m, W->fc2_w), R, F, C);
    be->fill(be, g_fc1, 0.0f, (size_t)R * F);
    /* for ReLU, L->fc1 holds relu(fc1), which has the same positive entries */
    be->activation_backward(be, c->activation, g_fc1, g_act, opt_act(m, L->fc1), (size_t)R * F);
    opt_linear_backward(be, g_ln, 0, opt_grad(m, W->fc1_w), opt_grad(m, W->fc1_b), g_fc1, mlp_in,
                        opt_param(m, W->fc1_w), R, C, F);
    /* g_res2 now becomes dLoss/dh1: the residual path plus the FC path */
    if (pre)
        layernorm_backward(m, g_res2, g_ln, h1, W->mlp_ln_w, W->mlp_ln_b, L->ln2_mean, L->ln2_rstd, R);
    else
        be->axpy(be, g_res2, 1.0f, g_ln, RC);

    /* Attention block: h1 = res1 (pre) or LN1(res1) (post); res1 = x + out_proj(attn).
     * g_res1 must not be g_stream where dx (N rows) is assembled from R rows. */
    rc_view g_res1 = g_res2;
    if (!pre) {
        g_res1 = score_rows ? opt_act(m, A->g_rows) : g_stream;
        be->fill(be, g_res1, 0.0f, RC);
        layernorm_backward(m, g_res1, g_res2, res1, W->attn_ln_w, W->attn_ln_b, L->ln1_mean,
                           L->ln1_rstd, R);
    }
    /* out_proj; its weight gradient needs attn, which only the last layer
     * still holds: the others add it in attention_backward */
    rc_view g_out_w = opt_grad(m, W->out_w);
    opt_linear_backward(be, opt_act(m, A->g_attn), 0, score_rows ? g_out_w : (rc_view){0},
                        opt_grad(m, W->out_b), g_res1, opt_act(m, L->attn),
                        opt_param(m, W->out_w), R, C, C);
    if (pre) /* the attention input, recomputed into the buffer the FC input used */
        opt_layernorm(m, L->ln1, L->ln1_mean, L->ln1_rstd, x, W->attn_ln_w, W->attn_ln_b, N);
    rc_view attn_in = pre ? opt_act(m, L->ln1) : x;
    if (!score_rows) {
        attention_backward(m, L, g_res1, g_out_w);
        opt_linear_backward(be, g_ln, 0, opt_grad(m, W->q_w), opt_grad(m, W->q_b),
                            opt_act(m, A->g_q), attn_in, opt_param(m, W->q_w), N, C, C);
    } else {
        score_attention_backward(m, L);
        /* q saw only the score rows: their gradient lands at those rows of g_ln */
        rc_view attn_in_rows = opt_act(m, pre ? A->last_in : A->last_x);
        rc_view g_in_rows = g_tmp; /* free here: post-LN's g_res2 is spent */
        opt_linear_backward(be, g_in_rows, 0, opt_grad(m, W->q_w), opt_grad(m, W->q_b),
                            opt_act(m, A->g_q), attn_in_rows, opt_param(m, W->q_w), R, C, C);
        be->fill(be, g_ln, 0.0f, NC);
        be->scatter_rows_add(be, g_ln, g_in_rows, opt_act(m, A->score_slots), R, C);
    }
    opt_linear_backward(be, g_ln, 1, opt_grad(m, W->k_w), opt_grad(m, W->k_b), opt_act(m, A->g_k),
                        attn_in, opt_param(m, W->k_w), N, C, C);
    opt_linear_backward(be, g_ln, 1, opt_grad(m, W->v_w), opt_grad(m, W->v_b), opt_act(m, A->g_v),
                        attn_in, opt_param(m, W->v_w), N, C, C);
    /* dLoss/dx = residual (g_res1) + attention input path, landed in g_stream */
    if (score_rows) {
        be->fill(be, g_stream, 0.0f, NC);
        be->scatter_rows_add(be, g_stream, g_res1, opt_act(m, A->score_slots), R, C);
    } /* else g_res1 is g_stream already */
    if (pre)
        layernorm_backward(m, g_stream, g_ln, x, W->attn_ln_w, W->attn_ln_b, L->ln1_mean,
                           L->ln1_rstd, N);
    else
        be->axpy(be, g_stream, 1.0f, g_ln, NC);
}

rc_status rc_model_backward(rc_model *m, const float *d_rewards) {
    if (!m->have_forward || !m->plan.training)
        return rc_fail(RC_ERR_INVALID_ARG,
                       "backward needs a forward pass on a model reserved for training, with "
                       "gradients enabled");
    rc_backend *be = m->be;
    const rc_opt_config *c = &m->cfg;
    const opt_acts *A = &m->plan;
    const int rows = A->n_out, N = A->rows * A->T, C = c->hidden_size, P = c->word_embed_proj_dim;
    rc_status st = be->upload(be, opt_act(m, A->g_rewards), d_rewards, (size_t)rows);
    if (st != RC_OK) return st;

    /* score head: rewards[rows,1] = pooled[rows,P] score^T */
    int pre_final = c->do_layer_norm_before && !c->remove_final_layer_norm;
    rc_view gathered = opt_layer_input(m, c->num_hidden_layers); /* the score rows */
    rc_view head_in = pre_final ? opt_act(m, A->final_ln) : gathered;
    int has_proj = m->p.project_out != RC_NO_PARAM;
    rc_view pooled = has_proj ? opt_act(m, A->pooled) : head_in;
    rc_view g_pooled = opt_act(m, A->g_pooled);
    opt_linear_backward(be, g_pooled, 0, opt_grad(m, m->p.score), (rc_view){0},
                        opt_act(m, A->g_rewards), pooled, opt_param(m, m->p.score), rows, P, 1);
    rc_view g_head_in = g_pooled;
    if (has_proj) {
        g_head_in = opt_act(m, A->g_final);
        opt_linear_backward(be, g_head_in, 0, opt_grad(m, m->p.project_out), (rc_view){0}, g_pooled,
                            head_in, opt_param(m, m->p.project_out), rows, C, P);
    }
    rc_view g_gathered = g_head_in;
    if (pre_final) {
        g_gathered = opt_act(m, A->g_gathered);
        be->fill(be, g_gathered, 0.0f, (size_t)rows * C);
        layernorm_backward(m, g_gathered, g_head_in, gathered, m->p.final_ln_w, m->p.final_ln_b,
                           A->final_mean, A->final_rstd, rows);
    }
    rc_view g_stream = opt_act(m, A->g_stream);
    layer_backward(m, c->num_hidden_layers - 1, g_gathered);
    for (int l = c->num_hidden_layers - 2; l >= 0; l--) layer_backward(m, l, g_stream);

    /* embeddings: x0 = project_in(embed_tokens[ids]) + embed_positions[pos] */
    be->embedding_backward(be, opt_grad(m, m->p.embed_positions), g_stream,
                           opt_act(m, A->pos_ids), N, C);
    rc_view g_tok = g_stream;
    if (m->p.project_in != RC_NO_PARAM) {
        g_tok = opt_act(m, A->g_tok);
        opt_linear_backward(be, g_tok, 0, opt_grad(m, m->p.project_in), (rc_view){0}, g_stream,
                            opt_act(m, A->tok_embed), opt_param(m, m->p.project_in), N, P, C);
    }
    be->embedding_backward(be, opt_grad(m, m->p.embed_tokens), g_tok, opt_act(m, A->ids), N, P);
    st = be->sync(be);
    if (st != RC_OK) return rc_fail_context(st, "backward pass on the %s backend", be->name);
    return RC_OK;
}
