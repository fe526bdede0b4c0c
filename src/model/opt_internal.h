/* Private layout of the OPT model: parameter indices per layer and the
 * activation plan shared by forward and backward. */
#ifndef REWARDC_OPT_INTERNAL_H
#define REWARDC_OPT_INTERNAL_H

#include "rewardc/model.h"

/* Indices into the parameter table; RC_NO_PARAM when the config omits it. */
typedef struct {
    int k_w, k_b, v_w, v_b, q_w, q_b, out_w, out_b;
    int attn_ln_w, attn_ln_b; /* self_attn_layer_norm */
    int fc1_w, fc1_b, fc2_w, fc2_b;
    int mlp_ln_w, mlp_ln_b;   /* the layer's final_layer_norm */
} opt_layer_params;

typedef struct {
    int embed_tokens, embed_positions, project_in, project_out;
    int final_ln_w, final_ln_b;
    int score;
    opt_layer_params *layers;
} opt_params;

/* Element offsets into the activation buffer of one layer's saved tensors.
 * How they are used depends on pre-LN vs post-LN (see opt_forward.c). The last
 * layer runs past its keys and values only at the n_out rows where scores are
 * read: there q..res2 hold n_out rows. In training, ln1, a pre-LN ln2, probs
 * and attn (with stats) are buffers shared by all layers, recomputed in
 * backward, except where a small model keeps attn and stats per layer
 * (opt_acts.keeps_attention). */
typedef struct {
    size_t ln1, ln1_mean, ln1_rstd; /* self_attn_layer_norm output and stats */
    size_t q, k, v;                 /* projections, [N, C] */
    size_t probs;                   /* a chunk of sequences' attention,
                                       [attention_chunk, H, T, T], or the last
                                       layer's [n_out, H, 1, T] */
    size_t attn;                    /* heads merged, before out_proj, [N, C] */
    size_t stats;                   /* the fused attention's per-query max and
                                       1/sum, [rows, H, T, 2] */
    size_t res1;                    /* layer input + attention output */
    size_t ln2, ln2_mean, ln2_rstd; /* final_layer_norm output and stats */
    size_t fc1, act;                /* [N, F]; the same tensor for ReLU */
    size_t res2;                    /* FC block input + fc2 output */
} opt_layer_acts;

typedef struct {
    int rows, T;  /* the batch this plan was made for */
    int training; /* it keeps every layer's activations for backward */
    int n_out;   /* rewards read from it: rows, or 2 per row for packed pairs */
    int attention_chunk; /* sequences whose attention probabilities are held at once */
    int keeps_attention; /* training keeps each layer's attn and stats (fused
                            attention of a small model): backward reads them */
    size_t ids, mask, pos_ids;              /* int32 inputs, [N] */
    size_t score_slots;                     /* int32 row * T + t of each score, [n_out] */
    size_t tok_embed;                       /* [N, P] when project_in exists */
    size_t x0;                              /* embeddings, input of layer 0, [N, C] */
    opt_layer_acts *layer;                  /* one per layer (shared when not training) */
    /* the last layer at the score rows: each one's key mask as a single
     * query ([n_out, T] int32), its input rows and attention-input rows */
    size_t score_mask, last_x, last_in;
    size_t final_ln, final_mean, final_rstd, pooled, rewards;
    /* backward scratch */
    size_t g_stream, g_tmp, g_ln, g_attn, g_q, g_k, g_v; /* [N, C] */
    size_t g_act, g_fc1; /* [N, F], sharing memory with g_attn..g_v */
    size_t g_probs;                                      /* as probs */
    size_t g_tok;                                        /* [N, P] */
    size_t g_gathered, g_final, g_pooled, g_rewards, g_rows;
    size_t total;
} opt_acts;

struct rc_model {
    rc_opt_config cfg;
    rc_backend *be;
    rc_param_info *table;
    int n_params;
    size_t n_elements;
    opt_params p;
    rc_buffer *params, *grads;
    /* activations */
    rc_buffer *acts;
    size_t acts_capacity;
    int max_rows, max_seq_len, training;
    int grad_enabled; /* forward keeps activations for backward (when training) */
    int causal_block; /* queries per attention block; 0: by T (opt_causal_block) */
    int composed_attention; /* never the backend's fused attention ops */
    int keep_attention;     /* set by rc_model_reserve: plans keep attn (opt_acts) */
    int recompute_attention; /* tests: recompute even a small model's (never keep) */
    opt_acts plan;
    int32_t *pooled_index; /* host copies, [max_rows]: position within the row */
    int32_t *score_slots;  /* and slot row * T + t */
    int have_forward;
};

/* Lays out the activations for a batch; returns the total element count.
 * layers may be NULL when only the total is wanted. */
size_t opt_plan_activations(const rc_opt_config *cfg, int rows, int T, int n_out, int training,
                            int keep_attention, opt_acts *plan, opt_layer_acts *layers);

/* rc_model_create, optionally leaving the weights unset (for a checkpoint
 * that will set them all); opt_init_param initialises one tensor as
 * rc_model_create would, from its own stream of the seed. */
rc_status opt_model_new(const rc_opt_config *cfg, rc_backend *be, uint64_t seed, int initialise,
                        rc_model **out);
rc_status opt_init_param(rc_model *m, int index, uint64_t seed);

/* Whether the next forward keeps what backward needs (training, grad enabled). */
int opt_keeps_activations(const rc_model *m);
/* The plan of a batch of rows x T with n_out scores, as the next forward makes it. */
size_t opt_plan_batch(const rc_model *m, int rows, int T, int n_out, opt_acts *plan,
                      opt_layer_acts *layers);

/* A parameter's view (buf NULL when the index is RC_NO_PARAM). */
rc_view opt_param(const rc_model *m, int index);
rc_view opt_grad(const rc_model *m, int index);
rc_view opt_act(const rc_model *m, size_t offset);
/* The input of layer l: the embeddings, or the previous layer's output
 * (res2 for pre-LN, ln2 for post-LN); l == n_layers gives the stack's output. */
rc_view opt_layer_input(const rc_model *m, int l);

/* LayerNorm (OPT's eps) of rows x [rows, C] into the activation at out, with
 * its statistics; backward reruns it to recompute what training did not keep. */
void opt_layernorm(rc_model *m, size_t out, size_t mean, size_t rstd, rc_view x, int w, int b,
                   int rows);
/* attn = softmax(scale * Q K^T) V of sequences first..first+count-1 of layer
 * L, with what attention backward reads: the probabilities in L->probs
 * (composed) or the per-query stats in L->stats (fused). Run by the forward
 * pass and, unless the plan keeps attention, again by backward. Composed
 * chunks are plan.attention_chunk sequences (opt_attention_chunk_size gives
 * the one starting at `first`; the last may be shorter); fused, one chunk
 * holds every sequence. */
void opt_attention_chunk(rc_model *m, const opt_layer_acts *L, int first, int count);
int opt_attention_chunk_size(const rc_model *m, int first);
/* Attention is causal: query i sees no key past i. The products over the
 * [T, T] scores therefore run in blocks of this many queries (or keys), each
 * skipping what lies past its block: scores never read, probabilities and
 * their gradients exactly 0. n blocks skip (n - 1) / 2n of those products. */
int opt_causal_block(const rc_model *m);
/* Whether attention runs as the backend's fused ops (attention_forward and
 * attention_backward) rather than composed from products and softmax. */
int opt_fused_attention(const rc_model *m);

/* y[N,out] = x[N,in] W^T (+ b) */
void opt_linear_forward(rc_backend *be, rc_view y, rc_view x, rc_view w, rc_view b, int N,
                        int in, int out);
/* dx (+)= dy W (accumulate_dx), dW += dy^T x, db += colsum(dy); dx, dW and db
 * may be absent. */
void opt_linear_backward(rc_backend *be, rc_view dx, int accumulate_dx, rc_view dw, rc_view db,
                         rc_view dy, rc_view x, rc_view w, int N, int in, int out);

#endif
