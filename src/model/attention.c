/* Causal self-attention of the decoder, forward and backward, either as the
 * backend's fused ops or composed from batched products and the softmax ops.
 * q, attn are [rows, H*D] and k, v [rows, Hkv*D]: query head h reads
 * key/value head h / G with G = H / Hkv (grouped-query attention; G = 1 is
 * plain multi-head attention). Composed, the query heads h = j*G + g of one
 * g form a batch over j whose keys are the Hkv heads in order, so each
 * product reads K and V in place, with no copy per query head. */
#include <math.h>

#include "model/decoder.h"

typedef struct {
    int T, H, Hkv, G, D, QW, KW; /* G = H / Hkv; QW = H*D and KW = Hkv*D: row widths */
    float scale;
} heads;

static heads heads_of(const rc_model *m) {
    const rc_model_config *c = &m->cfg;
    heads h = {m->plan.T, c->num_attention_heads, c->num_key_value_heads, 0, c->head_dim,
               dec_q_width(c), dec_kv_width(c), decoder_attention_scale(m)};
    h.G = h.H / h.Hkv;
    return h;
}

float decoder_attention_scale(const rc_model *m) {
    return 1.0f / sqrtf((float)m->cfg.head_dim); /* HF: head_dim^-0.5 */
}

int decoder_causal_block(const rc_model *m) {
    const int T = m->plan.T;
    if (m->causal_block > 0) return m->causal_block < T ? m->causal_block : T;
    /* Measured with OpenBLAS on 2 cores: blocks of 64 gained nothing at
     * T = 256 and lost at T = 512; at T = 2048 blocks of 256 made OPT-125m
     * scoring faster (docs/performance.md). */
    return (T + 7) / 8 > 256 ? (T + 7) / 8 : 256;
}

int decoder_attention_chunk_size(const rc_model *m, int first) {
    const int rows = m->plan.rows, chunk = m->plan.attention_chunk;
    return rows - first < chunk ? rows - first : chunk;
}

/* Probabilities of a chunk: [count, H, T, T], head h at h * T * T. */
void decoder_attention_chunk(rc_model *m, const layer_acts *L, int first, int count) {
    rc_backend *be = m->be;
    const heads a = heads_of(m);
    const int T = a.T, block = decoder_causal_block(m);
    const size_t TT = (size_t)T * T;
    if (decoder_fused_attention(m)) {
        const size_t rows = (size_t)first * T;
        be->attention_forward(be, dec_act(m, L->attn + rows * a.QW),
                              dec_act(m, L->stats + rows * a.H * 2), dec_act(m, L->q + rows * a.QW),
                              dec_act(m, L->k + rows * a.KW), dec_act(m, L->v + rows * a.KW),
                              dec_act(m, m->plan.mask + rows), count, T, a.H, a.Hkv, a.D, a.scale);
        return;
    }
    /* queries q0 .. q0 + n - 1 against keys 0 .. q0 + n - 1 */
    for (int i = 0; i < count; i++) {
        const size_t q_seq = (size_t)(first + i) * T * a.QW, kv_seq = (size_t)(first + i) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t probs = (size_t)i * a.H * TT + (size_t)g * TT;
            for (int q0 = 0; q0 < T; q0 += block) {
                const int n = T - q0 < block ? T - q0 : block;
                be->gemm_batched(be, 0, 1, n, q0 + n, a.D, a.scale,
                                 dec_act(m, L->q + q_seq + (size_t)q0 * a.QW + (size_t)g * a.D),
                                 a.QW, (size_t)a.G * a.D, dec_act(m, L->k + kv_seq), a.KW, a.D,
                                 0.0f, dec_act(m, L->probs + probs + (size_t)q0 * T), T,
                                 a.G * TT, a.Hkv);
            }
        }
    }
    rc_view probs = dec_act(m, L->probs);
    be->attention_softmax_forward(be, probs, probs, dec_act(m, m->plan.mask + (size_t)first * T),
                                  count, a.H, T, T);
    for (int i = 0; i < count; i++) {
        const size_t q_seq = (size_t)(first + i) * T * a.QW, kv_seq = (size_t)(first + i) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t probs_at = (size_t)i * a.H * TT + (size_t)g * TT;
            for (int q0 = 0; q0 < T; q0 += block) {
                const int n = T - q0 < block ? T - q0 : block;
                be->gemm_batched(be, 0, 0, n, a.D, q0 + n, 1.0f,
                                 dec_act(m, L->probs + probs_at + (size_t)q0 * T), T, a.G * TT,
                                 dec_act(m, L->v + kv_seq), a.KW, a.D, 0.0f,
                                 dec_act(m, L->attn + q_seq + (size_t)q0 * a.QW + (size_t)g * a.D),
                                 a.QW, (size_t)a.G * a.D, a.Hkv);
            }
        }
    }
}

/* Composed, a chunk of sequences at a time: the probabilities of one chunk
 * are all that is ever held (backward recomputes them). Fused, every
 * sequence at once: there are no probabilities to hold. */
void decoder_attention_forward(rc_model *m, const layer_acts *L) {
    if (decoder_fused_attention(m)) {
        decoder_attention_chunk(m, L, 0, m->plan.rows);
        return;
    }
    for (int first = 0; first < m->plan.rows; first += m->plan.attention_chunk)
        decoder_attention_chunk(m, L, first, decoder_attention_chunk_size(m, first));
}

/* g_attn -> g_q, g_k, g_v. Fused, from attn and the stats as the forward
 * kept them, or else recomputed here. Composed, from probabilities
 * recomputed a chunk of sequences at a time, in products that skip what
 * causality makes zero (decoder_causal_block). g_k and g_v sum the G query
 * heads of their group: the first g writes, the others add. */
void decoder_attention_backward(rc_model *m, const layer_acts *L, rc_view g_res1,
                                const linear_ref *o) {
    rc_backend *be = m->be;
    const decoder_acts *A = &m->plan;
    const heads a = heads_of(m);
    const int T = a.T, C = m->cfg.hidden_size, block = decoder_causal_block(m);
    const size_t TT = (size_t)T * T;
    if (decoder_fused_attention(m)) { /* every sequence at once, as the forward ran it */
        if (!A->keeps_attention) decoder_attention_chunk(m, L, 0, A->rows); /* attn, stats again */
        decoder_linear_backward_weights(m, o, LINEAR_DW, g_res1, dec_act(m, L->attn), A->rows * T,
                                        a.QW, C);
        be->attention_backward(be, dec_act(m, A->g_q), dec_act(m, A->g_k), dec_act(m, A->g_v),
                               dec_act(m, A->g_attn), dec_act(m, L->attn), dec_act(m, L->stats),
                               dec_act(m, L->q), dec_act(m, L->k), dec_act(m, L->v),
                               dec_act(m, A->mask), A->rows, T, a.H, a.Hkv, a.D, a.scale);
        return;
    }
    for (int first = 0; first < A->rows; first += A->attention_chunk) {
        const int count = decoder_attention_chunk_size(m, first);
        decoder_attention_chunk(m, L, first, count);
        const size_t chunk_rows = (size_t)first * T;
        decoder_linear_backward_weights(m, o, LINEAR_DW, rc_view_at(g_res1, chunk_rows * C),
                                        dec_act(m, L->attn + chunk_rows * a.QW), count * T, a.QW, C);
        for (int i = 0; i < count; i++) {
            const size_t q_seq = (size_t)(first + i) * T * a.QW;
            const size_t kv_seq = (size_t)(first + i) * T * a.KW;
            for (int g = 0; g < a.G; g++) {
                const size_t heads_at = (size_t)i * a.H * TT + (size_t)g * TT;
                const size_t q_at = q_seq + (size_t)g * a.D;
                /* dP = dAttn V^T, whole: the softmax backward reads all of it */
                be->gemm_batched(be, 0, 1, T, T, a.D, 1.0f, dec_act(m, A->g_attn + q_at), a.QW,
                                 (size_t)a.G * a.D, dec_act(m, L->v + kv_seq), a.KW, a.D, 0.0f,
                                 dec_act(m, A->g_probs + heads_at), T, a.G * TT, a.Hkv);
                /* dV (+)= P^T dAttn: keys k0.. see queries k0..T-1 only */
                for (int k0 = 0; k0 < T; k0 += block) {
                    const int keys = T - k0 < block ? T - k0 : block;
                    const size_t diagonal = heads_at + (size_t)k0 * T + (size_t)k0;
                    be->gemm_batched(be, 1, 0, keys, a.D, T - k0, 1.0f,
                                     dec_act(m, L->probs + diagonal), T, a.G * TT,
                                     dec_act(m, A->g_attn + q_at + (size_t)k0 * a.QW), a.QW,
                                     (size_t)a.G * a.D, g ? 1.0f : 0.0f,
                                     dec_act(m, A->g_v + kv_seq + (size_t)k0 * a.KW), a.KW, a.D,
                                     a.Hkv);
                }
            }
        }
        be->attention_softmax_backward(be, dec_act(m, A->g_probs), dec_act(m, A->g_probs),
                                       dec_act(m, L->probs), count, a.H, T, T);
        for (int i = 0; i < count; i++) {
            const size_t q_seq = (size_t)(first + i) * T * a.QW;
            const size_t kv_seq = (size_t)(first + i) * T * a.KW;
            for (int g = 0; g < a.G; g++) {
                const size_t heads_at = (size_t)i * a.H * TT + (size_t)g * TT;
                const size_t q_at = q_seq + (size_t)g * a.D;
                for (int b0 = 0; b0 < T; b0 += block) {
                    const int n = T - b0 < block ? T - b0 : block;
                    const size_t diagonal = heads_at + (size_t)b0 * T + (size_t)b0;
                    /* dQ = scale dS K, queries b0.. against keys 0..b0+n-1 */
                    be->gemm_batched(be, 0, 0, n, a.D, b0 + n, a.scale,
                                     dec_act(m, A->g_probs + heads_at + (size_t)b0 * T), T,
                                     a.G * TT, dec_act(m, L->k + kv_seq), a.KW, a.D, 0.0f,
                                     dec_act(m, A->g_q + q_at + (size_t)b0 * a.QW), a.QW,
                                     (size_t)a.G * a.D, a.Hkv);
                    /* dK (+)= scale dS^T Q, keys b0.. from queries b0..T-1 */
                    be->gemm_batched(be, 1, 0, n, a.D, T - b0, a.scale,
                                     dec_act(m, A->g_probs + diagonal), T, a.G * TT,
                                     dec_act(m, L->q + q_at + (size_t)b0 * a.QW), a.QW,
                                     (size_t)a.G * a.D, g ? 1.0f : 0.0f,
                                     dec_act(m, A->g_k + kv_seq + (size_t)b0 * a.KW), a.KW, a.D,
                                     a.Hkv);
                }
            }
        }
    }
}

/* The last layer's attention, only for the query at each score slot: one
 * query row per score against all T keys of its sequence (score_mask holds
 * what that query may see). */
void decoder_score_attention_forward(rc_model *m, const layer_acts *L) {
    rc_backend *be = m->be;
    const decoder_acts *A = &m->plan;
    const heads a = heads_of(m);
    const int T = a.T;
    for (int o = 0; o < A->n_out; o++) {
        const size_t kv_seq = (size_t)(m->score_slots[o] / T) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t row = (size_t)o * a.QW + (size_t)g * a.D;
            be->gemm_batched(be, 0, 1, 1, T, a.D, a.scale, dec_act(m, L->q + row), a.QW,
                             (size_t)a.G * a.D, dec_act(m, L->k + kv_seq), a.KW, a.D, 0.0f,
                             dec_act(m, L->probs + ((size_t)o * a.H + g) * T), T,
                             (size_t)a.G * T, a.Hkv);
        }
    }
    be->attention_softmax_forward(be, dec_act(m, L->probs), dec_act(m, L->probs),
                                  dec_act(m, A->score_mask), A->n_out, a.H, 1, T);
    for (int o = 0; o < A->n_out; o++) {
        const size_t kv_seq = (size_t)(m->score_slots[o] / T) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t row = (size_t)o * a.QW + (size_t)g * a.D;
            be->gemm_batched(be, 0, 0, 1, a.D, T, 1.0f,
                             dec_act(m, L->probs + ((size_t)o * a.H + g) * T), T,
                             (size_t)a.G * T, dec_act(m, L->v + kv_seq), a.KW, a.D, 0.0f,
                             dec_act(m, L->attn + row), a.QW, (size_t)a.G * a.D, a.Hkv);
        }
    }
}

/* The last layer's attention at the score rows: g_attn ([n_out, H*D]) ->
 * g_q ([n_out, H*D]) and g_k, g_v ([N, Hkv*D], zero except in sequences with
 * a score; a packed row's two scores both add to its keys and values). */
void decoder_score_attention_backward(rc_model *m, const layer_acts *L) {
    rc_backend *be = m->be;
    const decoder_acts *A = &m->plan;
    const heads a = heads_of(m);
    const int T = a.T, N = A->rows * T;
    be->fill(be, dec_act(m, A->g_k), 0.0f, (size_t)N * a.KW);
    be->fill(be, dec_act(m, A->g_v), 0.0f, (size_t)N * a.KW);
    for (int o = 0; o < A->n_out; o++) {
        const size_t kv_seq = (size_t)(m->score_slots[o] / T) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t row = (size_t)o * a.QW + (size_t)g * a.D;
            const size_t probs = ((size_t)o * a.H + g) * T;
            /* dP = dAttn V^T ; dV += P^T dAttn */
            be->gemm_batched(be, 0, 1, 1, T, a.D, 1.0f, dec_act(m, A->g_attn + row), a.QW,
                             (size_t)a.G * a.D, dec_act(m, L->v + kv_seq), a.KW, a.D, 0.0f,
                             dec_act(m, A->g_probs + probs), T, (size_t)a.G * T, a.Hkv);
            be->gemm_batched(be, 1, 0, T, a.D, 1, 1.0f, dec_act(m, L->probs + probs), T,
                             (size_t)a.G * T, dec_act(m, A->g_attn + row), a.QW,
                             (size_t)a.G * a.D, 1.0f, dec_act(m, A->g_v + kv_seq), a.KW, a.D,
                             a.Hkv);
        }
    }
    be->attention_softmax_backward(be, dec_act(m, A->g_probs), dec_act(m, A->g_probs),
                                   dec_act(m, L->probs), A->n_out, a.H, 1, T);
    for (int o = 0; o < A->n_out; o++) {
        const size_t kv_seq = (size_t)(m->score_slots[o] / T) * T * a.KW;
        for (int g = 0; g < a.G; g++) {
            const size_t row = (size_t)o * a.QW + (size_t)g * a.D;
            const size_t probs = ((size_t)o * a.H + g) * T;
            /* dQ = scale dS K ; dK += scale dS^T Q */
            be->gemm_batched(be, 0, 0, 1, a.D, T, a.scale, dec_act(m, A->g_probs + probs), T,
                             (size_t)a.G * T, dec_act(m, L->k + kv_seq), a.KW, a.D, 0.0f,
                             dec_act(m, A->g_q + row), a.QW, (size_t)a.G * a.D, a.Hkv);
            be->gemm_batched(be, 1, 0, T, a.D, 1, a.scale, dec_act(m, A->g_probs + probs), T,
                             (size_t)a.G * T, dec_act(m, L->q + row), a.QW, (size_t)a.G * a.D,
                             1.0f, dec_act(m, A->g_k + kv_seq), a.KW, a.D, a.Hkv);
        }
    }
}
