/* A reward model: a decoder-only transformer of one of the families below
 * with a scalar `score` head (transformers' *ForSequenceClassification with
 * num_labels = 1).
 *
 * Parameters, gradients, AdamW moments and activations each live in one
 * backend buffer; a table lists every parameter with its Hugging Face name,
 * shape and offset, so checkpoints load and save by walking the table. */
#ifndef REWARDC_MODEL_H
#define REWARDC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The families the decoder implements; each is a file in src/model/families/. */
typedef enum {
    RC_FAMILY_OPT = 0, /* OPTForSequenceClassification */
    RC_FAMILY_GPT2,    /* GPT2ForSequenceClassification */
    RC_FAMILY_LLAMA,   /* LlamaForSequenceClassification (SmolLM2, TinyLlama, Llama-3.x) */
    RC_FAMILY_QWEN2,   /* Qwen2ForSequenceClassification (Qwen2, Qwen2.5) */
    RC_FAMILY_QWEN3,   /* Qwen3ForSequenceClassification */
    RC_FAMILY_FALCON,  /* FalconForSequenceClassification (the 7b layout) */
    RC_FAMILY_COUNT
} rc_family_id;

typedef enum { RC_NORM_LAYER = 0, RC_NORM_RMS } rc_norm_kind;
typedef enum { RC_POS_LEARNED = 0, RC_POS_ROPE } rc_position_kind;
typedef enum { RC_ROPE_DEFAULT = 0, RC_ROPE_LINEAR, RC_ROPE_LLAMA3 } rc_rope_type;

/* Every config field that changes the math, in one family-neutral form: the
 * family file reads its config.json into this and writes it back. Field
 * names follow transformers where a name exists. */
typedef struct {
    rc_family_id family;
    int vocab_size;
    int hidden_size;             /* d_model */
    int num_hidden_layers;
    int ffn_dim;                 /* intermediate_size, ffn_dim, n_inner, ffn_hidden_size */
    int num_attention_heads;
    int num_key_value_heads;     /* == num_attention_heads without grouped-query attention */
    int head_dim;                /* usually hidden_size / num_attention_heads */
    int max_position_embeddings;
    int word_embed_proj_dim;     /* OPT: != hidden_size adds project_in / project_out */
    /* norms */
    rc_norm_kind norm;
    int do_layer_norm_before;    /* 1: pre-norm, 0: post-norm (OPT-350m) */
    int final_norm;              /* a norm after the last layer */
    int norm_affine;             /* norms have a weight */
    int norm_bias;               /* LayerNorms have a bias */
    double norm_eps;
    int qk_norm;                 /* Qwen3: RMSNorm over each head of q and k */
    /* positions */
    rc_position_kind positions;
    int position_offset;         /* learned: the table row of position 0 (OPT: 2) */
    double rope_theta;
    rc_rope_type rope_type;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_position;
    /* linear layers */
    int qkv_bias, out_bias, mlp_bias;
    int gated_mlp;               /* down(act(gate(x)) * up(x)) instead of fc2(act(fc1(x))) */
    rc_activation activation;
    int parallel_block;          /* Falcon: x + attn(norm(x)) + mlp(norm(x)) */
    int tie_word_embeddings;     /* only recorded: a reward model has no LM head */
    int pad_token_id, bos_token_id, eos_token_id;
    double init_std;             /* init_std / initializer_range */
} rc_model_config;

/* The family's HF defaults (its PretrainedConfig with no arguments). */
void rc_model_config_defaults(rc_family_id family, rc_model_config *cfg);
/* Parses config.json, the family chosen by "model_type"; `where` names the
 * file in errors. */
struct cJSON;
rc_status rc_model_config_from_json(const struct cJSON *json, const char *where,
                                    rc_model_config *cfg);
rc_status rc_model_config_validate(const rc_model_config *cfg);
/* Writes the config as transformers expects it for the family's
 * *ForSequenceClassification. */
struct cJSON *rc_model_config_to_json(const rc_model_config *cfg);
/* "opt", "llama", ... (config.json's model_type) and the HF class name. */
const char *rc_family_model_type(rc_family_id family);
const char *rc_family_architecture(rc_family_id family);

enum { RC_PARAM_NAME_MAX = 96, RC_NO_PARAM = -1 };

typedef struct {
    char name[RC_PARAM_NAME_MAX]; /* HF name, e.g. model.decoder.layers.0.fc1.weight */
    int ndim;
    int shape[2];
    size_t offset;                /* elements into the parameter buffer */
    size_t size;
    int no_weight_decay;          /* biases and LayerNorm weights, as transformers' Trainer */
    int trainable;                /* has a gradient and AdamW moments (rc_model_set_trainable) */
    size_t grad_offset;           /* elements into the gradient buffer, when trainable */
    int adapter;                  /* a LoRA matrix (in the adapter buffer, not the base's) */
} rc_param_info;

typedef struct rc_model rc_model;

/* Creates a model with every parameter initialised as the family's
 * PreTrainedModel._init_weights does (normal(0, init_std) for Linear and
 * Embedding weights, zero biases, norms 1/0, padding row zero), from `seed`.
 * Fails with a clear error when the backend lacks an op the family needs. */
rc_status rc_model_create(const rc_model_config *cfg, rc_backend *be, uint64_t seed,
                          rc_model **out);
void rc_model_free(rc_model *m);

const rc_model_config *rc_model_get_config(const rc_model *m);
int rc_model_pad_id(const rc_model *m);
int rc_model_vocab_size(const rc_model *m);
int rc_model_max_length(const rc_model *m); /* longest sequence its positions allow */
rc_backend *rc_model_backend(const rc_model *m);
int rc_model_param_count(const rc_model *m);
const rc_param_info *rc_model_param(const rc_model *m, int index);
int rc_model_find_param(const rc_model *m, const char *hf_name); /* RC_NO_PARAM if absent */
size_t rc_model_num_parameters(const rc_model *m);

/* ---- Trainable-parameter sets (src/model/trainable.c) ----
 * By default every parameter trains. The other sets freeze the rest: a frozen
 * parameter has no gradient buffer, no AdamW moments and no weight-gradient
 * product in backward, and backward stops below the lowest parameter that
 * trains. LoRA follows PEFT: on each targeted linear module W (a fused one,
 * GPT-2's c_attn or Falcon's query_key_value, as one module) y = x W^T + b +
 * s (x A^T) B^T with A [r, in] kaiming-uniform(a = sqrt(5)), B [out, r] zero
 * and s = alpha / r (rsLoRA: alpha / sqrt(r)); the score head trains fully
 * (PEFT's modules_to_save for SEQ_CLS). */
typedef enum {
    RC_TRAIN_ALL = 0,
    RC_TRAIN_HEAD,       /* the score head only */
    RC_TRAIN_TOP_LAYERS, /* the top N layers, the final norm, project_out and the head */
    RC_TRAIN_LORA        /* LoRA adapters and the head */
} rc_train_scope;

typedef struct {
    rc_train_scope scope;
    int top_layers;      /* RC_TRAIN_TOP_LAYERS: N >= 1 */
    int lora_r;          /* rank >= 1 */
    double lora_alpha;   /* scaling alpha / r */
    double lora_dropout; /* only 0 (no dropout stream is defined to match) */
    int use_rslora;      /* scaling alpha / sqrt(r) */
    /* comma-separated module names as PEFT matches them (the last component,
     * or a dotted suffix: "q_proj,v_proj", "self_attn.o_proj"), or
     * "all-linear" (every linear module but the head); NULL or "": the
     * family's PEFT default (q_proj,v_proj; c_attn; query_key_value) */
    const char *lora_target_modules;
} rc_trainable_config;

/* Sets what trains; before rc_model_reserve. LoRA adds the adapters (A from
 * `seed`). An error names a target module that matches nothing. */
rc_status rc_model_set_trainable(rc_model *m, const rc_trainable_config *t, uint64_t seed);
/* The set in force, with lora_target_modules as the matched names (owned by
 * the model). */
const rc_trainable_config *rc_model_trainable(const rc_model *m);
size_t rc_model_num_trainable(const rc_model *m);
/* The LoRA scaling s (0 without adapters). */
double rc_model_lora_scale(const rc_model *m);
/* W += s B A into every adapted weight, then drops the adapters: a plain
 * model that scores as the adapted one did (up to float rounding). */
rc_status rc_model_merge_lora(rc_model *m);

/* Activation checkpointing (TrainingArguments' gradient_checkpointing):
 * training keeps only each layer's input and recomputes the layer in
 * backward; the results are bit-identical. Before rc_model_reserve. */
void rc_model_set_gradient_checkpointing(rc_model *m, int enabled);

/* Host copies of one parameter / its gradient (n must equal the size). */
rc_status rc_model_get_param(rc_model *m, int index, float *dst, size_t n);
rc_status rc_model_set_param(rc_model *m, int index, const float *src, size_t n);
rc_status rc_model_get_grad(rc_model *m, int index, float *dst, size_t n);

/* Plans and allocates activation memory for batches of up to max_rows
 * sequences of up to max_seq_len tokens (training keeps what backward needs,
 * and allocates the gradients, zeroed, the first time: a scoring model has
 * none). Fails cleanly with the byte count when the backend cannot allocate it. */
rc_status rc_model_reserve(rc_model *m, int max_rows, int max_seq_len, int training);
/* Whether forward passes keep what backward needs, as torch's grad mode: on
 * for a model reserved for training. Evaluating such a model turns it off,
 * and the forward then walks the layers through one set of buffers as scoring
 * does (the same rewards, far less memory touched). */
void rc_model_set_grad_enabled(rc_model *m, int enabled);
/* Attention products run in blocks of this many queries and skip the keys
 * causality hides from a whole block; 0 (the default) picks by the batch's
 * length T: max(256, T/8), so one block up to 256 tokens. The results differ
 * only in float rounding; tests set small blocks to cover the tiling. */
void rc_model_set_attention_block(rc_model *m, int queries);
/* Whether attention may use the backend's fused kernel where it has one (on
 * by default; the CPU backend has one for heads of every width). Off, it is
 * composed from matrix products and the softmax ops, in the blocks above.
 * Either way the results differ only in float rounding. */
void rc_model_set_fused_attention(rc_model *m, int enabled);
/* Bytes of each region, for reporting the memory plan. */
typedef struct {
    size_t params, grads, optimizer, activations;
    size_t trainable_params, total_params; /* element counts */
} rc_memory_plan;
rc_memory_plan rc_model_memory_plan(const rc_model *m);
/* Whether a batch of rows x T slots with n_scores rewards fits the reservation. */
int rc_model_batch_fits(const rc_model *m, int rows, int T, int n_scores);

/* Forward pass on `rows` sequences of length T (right or left padded).
 * ids/mask are int32 [rows, T] on the host. The score is read at the rightmost
 * token that is not pad_token_id, as transformers does. rewards_out[rows]. */
rc_status rc_model_forward(rc_model *m, const int32_t *ids, const int32_t *mask, int rows, int T,
                           float *rewards_out);
/* Sequences packed into shared rows, for chosen/rejected pairs whose prompt
 * prefix is computed once: a row holds [prefix | chosen rest | rejected rest
 * | padding]. The mask marks padding 0, the shared prefix 1 and each branch
 * its own value >= 2; a token sees earlier tokens of the prefix and of its
 * own branch (see backend.h). The rewards equal those of rc_model_forward on
 * the sequences one per row, up to float rounding. */
typedef struct {
    const int32_t *ids;       /* [rows, T] */
    const int32_t *mask;      /* [rows, T] */
    const int32_t *positions; /* [rows, T]: index within its own sequence, -1 for padding */
    const int32_t *score_at;  /* [n_scores]: slot row * T + t where each score is read */
    int rows, T, n_scores;
} rc_packed_batch;
rc_status rc_model_forward_packed(rc_model *m, const rc_packed_batch *batch, float *rewards_out);

/* Matrix-product FLOPs of one forward pass over rows x T slots: of the dense
 * model (n_scores 0), or as rewardc runs it with n_scores score rows. */
double rc_model_forward_flops(const rc_model_config *cfg, int rows, int T, int n_scores);

/* The pooled index (position within its row) of each score of the last forward. */
const int32_t *rc_model_pooled_index(const rc_model *m);
/* The hidden state each score of the last forward was read from (after the
 * final norm and project_out: the score head's input), [n_scores, dim]
 * with dim the head's width (word_embed_proj_dim; hidden_size but for OPT's
 * projected models). For checking a model against a reference. */
rc_status rc_model_pooled_hidden(rc_model *m, float *out, size_t n);

/* Backward of the last forward given dLoss/dReward for each score;
 * accumulates into the gradient buffer. */
rc_status rc_model_backward(rc_model *m, const float *d_rewards);
void rc_model_zero_grad(rc_model *m);

/* Views of one parameter and its gradient (none when frozen), for the optimizer. */
rc_view rc_model_param_view(const rc_model *m, int index);
rc_view rc_model_grad_view(const rc_model *m, int index);
/* Elements of the gradient buffer (the trainable parameters'). */
size_t rc_model_grad_elements(const rc_model *m);
/* The whole parameter buffer (*n elements) and the whole gradient buffer
 * (rc_model_grad_elements), for collectives over ranks. When every parameter
 * trains, both have one layout: parameter i at rc_model_param(m, i)->offset. */
rc_view rc_model_params_all(const rc_model *m, size_t *n);
rc_view rc_model_grads_all(const rc_model *m);
/* Whether every parameter trains (no frozen part, no adapters). */
int rc_model_trains_everything(const rc_model *m);


/* ---- Hugging Face checkpoints (src/model/checkpoint.c) ---- */
typedef struct {
    int score_initialised; /* no score.weight in the checkpoint: created from the seed */
    int n_ignored;         /* tensors not used (lm_head.*, and anything unknown) */
    char first_ignored[RC_PARAM_NAME_MAX];
    char dtype[8];         /* storage dtype of the weights, e.g. "F16" */
} rc_load_report;

/* Loads config.json + safetensors (single or sharded, F32/F16/BF16) from a
 * *ForSequenceClassification, *ForCausalLM or base-model folder of any
 * family (the base model's keys lack the family's prefix, e.g. "model.").
 * A missing score head is initialised from `seed` as transformers would
 * (normal(0, init_std)); a weight that is not finite is an error naming it. */
rc_status rc_model_load(const char *dir, rc_backend *be, uint64_t seed, rc_model **out,
                        rc_load_report *report);
/* Writes config.json and model.safetensors (F32) as the family's
 * *ForSequenceClassification folder, which transformers loads as it is; each
 * file atomically. The folder is created if needed. */
rc_status rc_model_save(rc_model *m, const char *dir);
/* A folder with LoRA adapters (adapter_config.json + adapter_model.safetensors,
 * PEFT's format) holds no base weights: rc_model_load reads the base from
 * its base_model_name_or_path (relative paths from the adapter folder) and
 * attaches the adapters and the saved head, trainable as PEFT's were.
 * rc_model_save of a model with adapters writes that folder. */
int rc_model_is_adapter_dir(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
