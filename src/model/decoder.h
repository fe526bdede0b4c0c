/* The shared decoder's private layout: the parameter indices of every
 * family (absent ones RC_NO_PARAM), the activation plan forward and backward
 * share, and the model struct. */
#ifndef REWARDC_DECODER_H
#define REWARDC_DECODER_H

#include "rewardc/model.h"

/* A linear layer y = x W^T + b as the checkpoint stores it: W may be a block
 * of a fused parameter (Falcon's query_key_value rows, GPT-2's c_attn
 * columns) and may be stored [in, out] (GPT-2's Conv1D). The products read
 * it in place, so checkpoints keep HF's tensors as they are. */
typedef struct {
    int weight;         /* parameter index; RC_NO_PARAM: the layer is absent */
    size_t offset;      /* first element of the block within the parameter */
    int ld;             /* row stride of the stored weight; 0: packed */
    int in_out;         /* stored [in, out] */
    int bias;           /* RC_NO_PARAM: no bias */
    size_t bias_offset;
    /* LoRA (RC_NO_PARAM: none): A [r, in] of the whole module, B [out, r]
     * of which this block's rows start at lora_b_offset */
    int lora_a, lora_b;
    size_t lora_b_offset;
} linear_ref;

typedef struct {
    int attn_norm_w, attn_norm_b; /* before attention (pre-norm) or after it (post-norm) */
    linear_ref q, k, v, o;
    int q_norm, k_norm;           /* Qwen3's per-head RMSNorm weights [head_dim] */
    int mlp_norm_w, mlp_norm_b;   /* absent in a parallel block */
    linear_ref up, gate, down;    /* up = fc1, down = fc2; gate only in a gated MLP */
} layer_params;

typedef struct {
    int embed_tokens, embed_positions, project_in, project_out;
    linear_ref project_in_linear, project_out_linear; /* as linear layers (LoRA targets) */
    int final_norm_w, final_norm_b;
    int score;
    layer_params *layers;
} model_params;

/* Element offsets into the activation buffer of one layer's saved tensors.
 * How they are used depends on pre- vs post-norm (see decoder_forward.c). The
 * last layer runs past its keys and values only at the n_out rows where
 * scores are read: there q..res2 hold n_out rows. In training, norm1, a
 * pre-norm's norm2, probs and attn (with stats) are buffers shared by all
 * layers, recomputed in backward, except where a small model keeps attn and
 * stats per layer (decoder_acts.keeps_attention). Widths: q and attn H*D,
 * k and v Hkv*D, the MLP's F. */
typedef struct {
    size_t ln1, ln1_mean, ln1_rstd; /* the first norm's output and stats */
    size_t q_raw, q_rstd, k_raw, k_rstd; /* Qwen3: q, k before their head norm */
    size_t q, k, v;                 /* projections, positions applied */
    size_t probs;                   /* a chunk of sequences' attention,
                                       [attention_chunk, H, T, T], or the last
                                       layer's [n_out, H, 1, T] */
    size_t attn;                    /* heads merged, before the out projection */
    size_t stats;                   /* the fused attention's per-query max and
                                       1/sum, [rows, H, T, 2] */
    size_t res1;                    /* layer input + attention output */
    size_t ln2, ln2_mean, ln2_rstd; /* the second norm's output and stats */
    size_t fc1, up, act;            /* [R, F]: fc1 (or gate), up (gated), the
                                       activation; act is fc1 for ReLU */
    size_t res2;                    /* MLP input + its output */
} layer_acts;

typedef struct {
    int rows, T;  /* the batch this plan was made for */
    int training; /* it keeps every layer's activations for backward */
    int n_out;    /* rewards read from it: rows, or 2 per row for packed pairs */
    int attention_chunk; /* sequences whose attention probabilities are held at once */
    int keeps_attention; /* training keeps each layer's attn and stats (fused
                            attention of a small model): backward reads them */
    size_t ids, mask, pos_ids;              /* int32 inputs, [N] */
    size_t score_slots, score_pos;          /* int32 row * T + t and position of each score */
    size_t tok_embed;                       /* [N, P] when project_in exists */
    size_t x0;                              /* embeddings, input of layer 0, [N, C] */
    layer_acts *layer;                      /* one per layer (shared when not training) */
    /* the last layer at the score rows: each one's key mask as a single
     * query ([n_out, T] int32), its input rows and attention-input rows */
    size_t score_mask, last_x, last_in;
    size_t final_ln, final_mean, final_rstd, pooled, rewards;
    /* backward scratch */
    size_t g_stream, g_tmp, g_ln, g_mlp_in;  /* [N, C] */
    size_t g_heads;                          /* Qwen3: q or k before the head norm */
    size_t g_attn, g_q, g_k, g_v;            /* [N, H*D], [N, Hkv*D] */
    size_t g_act, g_fc1, g_up;               /* [N, F], sharing memory with g_attn..g_v */
    size_t g_probs;                          /* as probs */
    size_t g_tok;                            /* [N, P] */
    size_t g_gathered, g_final, g_pooled, g_rewards, g_rows;
    size_t g_frozen, g_frozen_width;         /* [2, width]: where frozen norms' weight
                                                gradients go (width: the widest norm) */
    size_t lora_t, lora_u;                   /* [N, r]: x A^T and dy B of one LoRA product */
    int checkpointing;                       /* layers share one set of buffers but their outputs */
    size_t total;
} decoder_acts;

struct rc_family;
struct rc_model {
    rc_model_config cfg;
    const struct rc_family *family;
    rc_backend *be;
    rc_param_info *table;
    int n_params;
    size_t n_elements;
    model_params p;
    rc_buffer *params, *grads;
    /* trainable sets (trainable.c) */
    rc_trainable_config trainable;
    char *lora_targets;    /* the matched module names, comma-separated */
    int n_base_params;     /* table entries before the adapters */
    size_t n_grad_elements;
    size_t n_adapter_elements;
    rc_buffer *adapters;   /* LoRA A and B matrices */
    int lora_r;
    double lora_scale;
    int grad_floor;        /* the lowest backward stage with a trainable parameter */
    int gradient_checkpointing;
    char *source_dir;      /* the folder it was loaded from (an adapter's base), or NULL */
    /* activations */
    rc_buffer *acts;
    size_t acts_capacity;
    int max_rows, max_seq_len, training;
    int grad_enabled; /* forward keeps activations for backward (when training) */
    int causal_block; /* queries per attention block; 0: by T (decoder_causal_block) */
    int composed_attention; /* never the backend's fused attention ops */
    int keep_attention;     /* set by rc_model_reserve: plans keep attn (decoder_acts) */
    int recompute_attention; /* tests: recompute even a small model's (never keep) */
    decoder_acts plan;
    int32_t *pooled_index; /* host copies, [max_rows]: position within the row */
    int32_t *score_slots;  /* and slot row * T + t */
    rc_buffer *rope;       /* cos and sin tables [rope_positions, D/2] each */
    int rope_positions;
    int have_forward;
};

/* Model dimensions every pass uses. */
static inline int dec_q_width(const rc_model_config *c) { return c->num_attention_heads * c->head_dim; }
static inline int dec_kv_width(const rc_model_config *c) { return c->num_key_value_heads * c->head_dim; }

/* Lays out the activations for a batch; returns the total element count.
 * layers may be NULL when only the total is wanted. */
typedef struct {
    int training;       /* keep what backward needs */
    int keep_attention; /* see decoder_acts.keeps_attention */
    int lora_rank;      /* scratch for the LoRA products (0: none) */
    int checkpointing;  /* training keeps only each layer's input */
} decoder_plan_options;
size_t decoder_plan_activations(const rc_model_config *cfg, int rows, int T, int n_out,
                                const decoder_plan_options *options, decoder_acts *plan,
                                layer_acts *layers);

/* rc_model_create, optionally leaving the weights unset (for a checkpoint
 * that will set them all); decoder_init_param initialises one tensor as
 * rc_model_create would, from its own stream of the seed. */
rc_status decoder_model_new(const rc_model_config *cfg, rc_backend *be, uint64_t seed,
                            int initialise, rc_model **out);
rc_status decoder_init_param(rc_model *m, int index, uint64_t seed);

/* Whether the next forward keeps what backward needs (training, grad enabled). */
int decoder_keeps_activations(const rc_model *m);
/* The plan of a batch of rows x T with n_out scores, as the next forward makes it. */
size_t decoder_plan_batch(const rc_model *m, int rows, int T, int n_out, decoder_acts *plan,
                          layer_acts *layers);

/* A parameter's view (buf NULL when the index is RC_NO_PARAM). */
rc_view dec_param(const rc_model *m, int index);
rc_view dec_grad(const rc_model *m, int index);
rc_view dec_act(const rc_model *m, size_t offset);
/* The input of layer l: the embeddings, or the previous layer's output
 * (res2 for pre-norm, ln2 for post-norm); l == n_layers gives the stack's output. */
rc_view decoder_layer_input(const rc_model *m, int l);

/* PEFT adapter folders (adapter.c): rc_model_save / rc_model_load of a model with adapters. */
rc_status decoder_save_adapter(rc_model *m, const char *dir);
rc_status decoder_load_adapter(const char *dir, rc_backend *be, uint64_t seed, rc_model **out,
                               rc_load_report *report);

/* Layer l's forward pass (backward reruns it under activation checkpointing). */
void decoder_layer_forward(rc_model *m, int l);

/* The model's norm (LayerNorm or RMSNorm, its eps) of rows x [rows, C] into
 * the activation at out, with its statistics (mean unused by RMSNorm);
 * backward reruns it to recompute what training did not keep. */
void decoder_norm(rc_model *m, size_t out, size_t mean, size_t rstd, rc_view x, int w, int b,
                  int rows);
void decoder_norm_backward(rc_model *m, rc_view dinp, rc_view dout, rc_view inp, int w, int b,
                           size_t mean, size_t rstd, int rows);

/* Positions: q or k ([rows, heads * D]) rotated in place at the positions of
 * the int32 activation `pos` (RoPE families; nothing for learned positions). */
void decoder_rope(rc_model *m, rc_view x, int heads, size_t pos, int rows, int inverse);
/* Fills the cos/sin tables for positions 0..n-1 (at rc_model_reserve). */
rc_status decoder_rope_tables(rc_model *m, int n);

/* attn = softmax(scale * Q K^T) V of sequences first..first+count-1 of layer
 * L, with what attention backward reads: the probabilities in L->probs
 * (composed) or the per-query stats in L->stats (fused). Run by the forward
 * pass and, unless the plan keeps attention, again by backward. Composed
 * chunks are plan.attention_chunk sequences (decoder_attention_chunk_size
 * gives the one starting at `first`; the last may be shorter); fused, one
 * chunk holds every sequence. */
void decoder_attention_chunk(rc_model *m, const layer_acts *L, int first, int count);
int decoder_attention_chunk_size(const rc_model *m, int first);
void decoder_attention_forward(rc_model *m, const layer_acts *L);
/* from g_attn; also adds the out projection's weight gradient (g_res1^T
 * attn), since only here is attn at hand again */
void decoder_attention_backward(rc_model *m, const layer_acts *L, rc_view g_res1,
                                const linear_ref *o);
/* The last layer's attention at the score rows only. */
void decoder_score_attention_forward(rc_model *m, const layer_acts *L);
void decoder_score_attention_backward(rc_model *m, const layer_acts *L);
/* Attention is causal: query i sees no key past i. The products over the
 * [T, T] scores therefore run in blocks of this many queries (or keys), each
 * skipping what lies past its block: scores never read, probabilities and
 * their gradients exactly 0. n blocks skip (n - 1) / 2n of those products. */
int decoder_causal_block(const rc_model *m);
/* Whether attention runs as the backend's fused ops (attention_forward and
 * attention_backward) rather than composed from products and softmax. */
int decoder_fused_attention(const rc_model *m);
float decoder_attention_scale(const rc_model *m);

/* Backward stages, bottom up: the embeddings (and project_in), layer l at
 * 1 + l, the final norm, project_out, the score head. Backward runs a stage
 * only at or above m->grad_floor, and forms its input gradient only above it. */
enum { STAGE_EMBEDDINGS = 0 };
static inline int stage_of_layer(int l) { return 1 + l; }
static inline int stage_final_norm(const rc_model_config *c) { return 1 + c->num_hidden_layers; }
static inline int stage_project_out(const rc_model_config *c) { return 2 + c->num_hidden_layers; }
static inline int stage_score(const rc_model_config *c) { return 3 + c->num_hidden_layers; }
int decoder_param_trainable(const rc_model *m, int index);
/* The gradient of a norm weight, or the scratch frozen norms write to. */
rc_view decoder_norm_grad(const rc_model *m, int index, int second);
/* Sets the default trainable set (every parameter) after the table is built. */
void decoder_trainable_defaults(rc_model *m);
void decoder_trainable_free(rc_model *m);
/* Adapters of rank r on the modules `targets` names (comma-separated, PEFT's
 * suffix rule) or on every linear module; A from seed, B zero. */
rc_status decoder_attach_lora(rc_model *m, const char *targets, int all_linear, int r,
                              double alpha, int use_rslora, uint64_t seed);

/* y[N,out] = x[N,in] W^T (+ b) */
void decoder_linear_forward(rc_model *m, const linear_ref *l, rc_view y, rc_view x, int N,
                            int in, int out);
/* dx (+)= dy W (accumulate_dx) */
void decoder_linear_backward_input(rc_model *m, const linear_ref *l, rc_view dx,
                                   int accumulate_dx, rc_view dy, int N, int in, int out);
/* dW += dy^T x (LINEAR_DW) and db += colsum(dy) (LINEAR_DB), of those
 * present and trainable; LINEAR_DW includes the LoRA matrices' gradients */
enum { LINEAR_DW = 1, LINEAR_DB = 2 };
void decoder_linear_backward_weights(rc_model *m, const linear_ref *l, int which, rc_view dy,
                                     rc_view x, int N, int in, int out);
/* The input gradient, then the weight and bias gradients. */
void decoder_linear_backward(rc_model *m, const linear_ref *l, rc_view dx, int accumulate_dx,
                             rc_view dy, rc_view x, int N, int in, int out);

#endif
