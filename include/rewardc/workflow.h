/* What a reward-model folder carries beyond the HF checkpoint, and the model
 * shapes `rewardc init` can build. The extra settings live under the key
 * "rewardc" of config.json, which transformers keeps as a plain attribute. */
#ifndef REWARDC_WORKFLOW_H
#define REWARDC_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "rewardc/data.h"
#include "rewardc/model.h"
#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    rc_encode_policy policy;   /* how texts become ids, the same for train/eval/score */
    int has_reward_stats;      /* reward mean/std over the eval set, for normalised scores */
    double reward_mean, reward_std;
    int has_threshold;         /* accept when the raw reward >= threshold */
    double threshold;
    int chat;                  /* trained on conversations: a prompt and response are
                                  rendered with the model's chat template to be scored */
} rc_reward_meta;

/* Defaults when the folder has no "rewardc" entry: rc_encode_policy_default(). */
rc_status rc_reward_meta_load(const char *model_dir, rc_reward_meta *meta);
/* Rewrites config.json's "rewardc" entry atomically, keeping every other key. */
rc_status rc_reward_meta_save(const char *model_dir, const rc_reward_meta *meta);

/* Copies the tokenizer files found in src_dir (vocab.json, merges.txt,
 * tokenizer.json, tokenizer_config.json, special_tokens_map.json) to dst_dir. */
rc_status rc_copy_tokenizer_files(const char *src_dir, const char *dst_dir);

/* Named model shapes: demo sizes and the published shapes of each family. */
typedef struct {
    const char *name;
    const char *description;
    rc_model_config config;
} rc_model_preset;

const rc_model_preset *rc_model_presets(int *count);
const rc_model_preset *rc_model_preset_find(const char *name);

/* ---- batching (src/train/batching.c) ----
 * Pads n token sequences to the longest (right padding) into ids/mask
 * [n, T]; returns T. ids/mask must hold n * max_len elements. */
int rc_pad_batch(const int32_t *const *seqs, const size_t *lens, int n, int32_t pad_id,
                 int32_t *ids, int32_t *mask);
/* Sequences that share a beginning can share a row of an rc_packed_batch:
 * [prefix | rest of seqs[0] | rest of seqs[1] | ... | padding]. The prefix
 * two sequences share, one token short of the shorter (each keeps a token of
 * its own, where its score may be read): */
size_t rc_shared_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb);
/* Slots such a row takes for k sequences sharing `prefix` tokens. */
size_t rc_packed_row_length(const size_t *lens, int k, size_t prefix);
/* Writes row `row` of ids/mask/pos [*, T] (T >= rc_packed_row_length; prefix
 * at most each length - 1): the prefix marked 1, sequence j's rest 2 + j,
 * positions within each sequence, padding pad_id/0/-1. score_at[j] gets the
 * slot of sequence j's score, the token rc_model_forward would read. */
void rc_pack_row(const int32_t *const *seqs, const size_t *lens, int k, size_t prefix,
                 int32_t pad_id, int T, int row, int32_t *ids, int32_t *mask, int32_t *pos,
                 int32_t *score_at);
/* Packs n pairs (seqs[i] chosen, seqs[n + i] rejected, each non-empty) one
 * per row as rc_packed_batch lays them out: [shared prefix | rest of chosen |
 * rest of rejected | padding], right padded to the longest row. score_at gets
 * chosen i at [i] and rejected i at [n + i], on the token rc_model_forward
 * would read. ids/mask/pos hold n * rc_packed_pairs_length() elements,
 * score_at 2n. Returns T; *shared gets the prefix tokens laid out once. */
int rc_packed_pairs_length(const int32_t *const *seqs, const size_t *lens, int n);
int rc_pack_pairs(const int32_t *const *seqs, const size_t *lens, int n, int32_t pad_id,
                  int32_t *ids, int32_t *mask, int32_t *pos, int32_t *score_at, size_t *shared);

/* ---- a reward model ready to score (src/train/reward_model.c) ---- */
struct rc_tokenizer;
typedef struct {
    rc_backend *backend;
    rc_model *model;
    struct rc_tokenizer *tokenizer;
    rc_reward_meta meta;
    int batch_rows;   /* sequences per forward pass */
    int share_prefix; /* sequences sharing a beginning compute it once (on by default) */
    size_t tokens, shared_tokens; /* scored so far, and of them computed once for several */
    int32_t *ids, *mask, *pos, *score_at;
    struct rc_chat_template *chat; /* meta.chat: conversations are rendered with it */
} rc_reward_model;

/* Opens a model folder (weights, tokenizer files, rewardc settings) on a
 * backend ("cpu", "opencl", "cuda") for batches of up to batch_rows sequences.
 * Refuses a folder without a trained head (no score.weight: scoring it would
 * use a random one) and weights that are not all finite. */
rc_status rc_reward_model_open(const char *dir, const char *backend, int device, int batch_rows,
                               rc_reward_model *out);
void rc_reward_model_close(rc_reward_model *rm);
/* Rewards of n token sequences (each at most meta.policy.max_length ids), in
 * input order, computed in batches of batch_rows sequences of similar length.
 * With share_prefix, sequences that begin alike (a chosen/rejected pair, the
 * responses to one prompt) share a row and its prefix is computed once,
 * where that costs fewer FLOPs than a row each. A reward can differ by float
 * rounding (~1e-7 relative) from the same sequence scored among others. */
rc_status rc_reward_model_score(rc_reward_model *rm, const int32_t *const *seqs, const size_t *lens,
                                size_t n, float *rewards);
/* Encodes prompt + response (prompt may be NULL: "") with the folder's
 * policy into *ids (malloc'd, *len ids) as scoring does: a text the policy
 * would drop is truncated instead. A model trained on conversations
 * (meta.chat) sees them as the user's message and the assistant's reply,
 * rendered with its chat template, as training did. Reads the model only,
 * so several threads may encode at once (the tokenizer is read-only).
 * outcome may be NULL. */
rc_status rc_reward_model_encode(const rc_reward_model *rm, const char *prompt, const char *response,
                                int32_t **ids, size_t *len, rc_encode_outcome *outcome);
/* A text already formatted as the model expects it, tokenized as it is
 * (never rendered with the chat template). */
rc_status rc_reward_model_encode_text(const rc_reward_model *rm, const char *text, int32_t **ids,
                                      size_t *len, rc_encode_outcome *outcome);
/* The same for a conversation ending with the response (the assistant's
 * last message): rendered with the chat template of a model trained on
 * conversations, else as the HH-RLHF transcript rewardc prepare splits
 * ("\n\nHuman: ..." turns, "\n\nAssistant:" before the response). */
struct rc_chat_message;
rc_status rc_reward_model_encode_messages(const rc_reward_model *rm,
                                         const struct rc_chat_message *messages, size_t n,
                                         int32_t **ids, size_t *len, rc_encode_outcome *outcome);
#ifdef __cplusplus
}
#endif
#endif
