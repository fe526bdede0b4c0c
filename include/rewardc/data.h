/* Preference data: the chosen/rejected pair format every command shares, the
 * readers that turn labelled texts, rankings and preference JSONL into pairs,
 * the preparation report, and the tokenization policy that turns a
 * (prompt, response) pair into the token ids the model sees. */
#ifndef REWARDC_DATA_H
#define REWARDC_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pairs ------------------------------------------------------------- */

/* One preference: prompt + chosen is preferred over prompt + rejected. The
 * prompt is "" when it is implicit (the responses carry the whole text).
 * has_margin / has_weight say whether the source gave them; when it did not,
 * margin is 0 and weight 1, so a consumer may use them either way.
 *
 * A conversational pair (TRL's {"prompt": [...], "chosen": [...], "rejected":
 * [...]} of {"role", "content"} messages) keeps its messages instead, as
 * compact JSON arrays in *_messages (prompt_messages NULL when the prompt is
 * implicit), and its three texts are "". The text the model sees is rendered
 * with the model's chat template at encode time (rc_encode_pairs_chat). */
typedef struct {
    char *prompt;
    char *chosen;
    char *rejected;
    char *prompt_messages;   /* NULL for plain pairs and implicit prompts */
    char *chosen_messages;   /* NULL for plain pairs */
    char *rejected_messages; /* NULL for plain pairs */
    double margin;
    double weight;
    int has_margin;
    int has_weight;
} rc_pair;

typedef struct {
    rc_pair *items;
    size_t n;
    size_t capacity;
} rc_pair_list;

/* Appends copies of the three strings (NULL prompt means ""), margin 0,
 * weight 1, neither marked present. */
rc_status rc_pair_list_append(rc_pair_list *list, const char *prompt, const char *chosen,
                              const char *rejected);
/* Appends a conversational pair: copies of the JSON arrays (prompt_messages
 * may be NULL); the texts are "". The arrays are not checked here. */
rc_status rc_pair_list_append_messages(rc_pair_list *list, const char *prompt_messages,
                                       const char *chosen_messages, const char *rejected_messages);
/* 1 when the pair holds message lists rather than texts. */
int rc_pair_is_conversational(const rc_pair *pair);
/* Frees every string and the array; leaves an empty list. */
void rc_pair_list_free(rc_pair_list *list);

/* Writes one JSON object per line, {"prompt","chosen","rejected"} plus
 * "margin" and "weight" when present, atomically (temp file, fsync, rename).
 * Conversational pairs are written with their message arrays (no "prompt"
 * when it is implicit), as TRL's conversational format. */
rc_status rc_pairs_write_jsonl(const char *path, const rc_pair_list *pairs);

/* ---- the preparation report --------------------------------------------- */

/* Why input did not become an output pair. The unit of each count is given:
 * bad_* count input lines (or files) skipped under skip_bad. */
typedef enum {
    RC_DROP_BAD_JSON = 0,     /* line: not a JSON object */
    RC_DROP_MISSING_FIELD,    /* line: a required field is absent */
    RC_DROP_WRONG_TYPE,       /* line: a field has the wrong JSON type */
    RC_DROP_INVALID_VALUE,    /* line/file: bad label, rank, empty text, bad UTF-8 */
    RC_DROP_TIE,              /* pair: equal mean rank, no preference */
    RC_DROP_IDENTICAL,        /* pair: chosen text == rejected text */
    RC_DROP_SINGLE_RESPONSE,  /* record: a prompt with only one response */
    RC_DROP_UNPAIRED,         /* text: left over from the larger class */
    RC_DROP_OVER_MAX_PAIRS,   /* pair: beyond --max_pairs */
    RC_DROP_IGNORED_FILE,     /* file: not named ID_RATING.txt in an IMDB folder */
    RC_DROP_REASON_COUNT
} rc_drop_reason;

/* Stable snake_case name used in the JSON report ("bad_json", "tie", ...). */
const char *rc_drop_reason_name(rc_drop_reason reason);

typedef struct {
    char source[32];        /* "imdb", "labeled", "rankings", "preferences" */
    size_t records_read;    /* lines (JSONL) or review files (IMDB) read */
    size_t pairs_written;   /* pairs in the output */
    size_t dropped[RC_DROP_REASON_COUNT];
    char first_bad[512];    /* the message of the first skipped bad record */
} rc_prepare_report;

void rc_prepare_report_init(rc_prepare_report *report, const char *source);
/* Records that a bad record was skipped (keeps the first message). */
void rc_prepare_report_skip(rc_prepare_report *report, rc_drop_reason reason,
                            const char *message);
/* Renders the report as a JSON object (caller frees the string). */
rc_status rc_prepare_report_to_json(const rc_prepare_report *report, char **json_out);
/* Writes the JSON report atomically. */
rc_status rc_prepare_report_write(const char *path, const rc_prepare_report *report);

/* ---- readers ------------------------------------------------------------ */

/* Options shared by the readers. skip_bad: a malformed record is counted in
 * the report and skipped instead of aborting the whole read (the default,
 * which fails with the file and line number and returns no pairs).
 * max_pairs: 0 = no limit. seed: shuffles the positive texts (labelled input). */
typedef struct {
    int skip_bad;
    size_t max_pairs;
    uint64_t seed;
} rc_read_options;

/* Labelled single texts: texts[i] with labels[i] in {0, 1}. */
typedef struct {
    char **texts;
    int *labels;
    size_t n;
    size_t capacity;
} rc_labeled_texts;

rc_status rc_labeled_texts_append(rc_labeled_texts *set, const char *text, int label);
void rc_labeled_texts_free(rc_labeled_texts *set);

/* Writes {"text": ..., "label": 0|1} lines atomically (what --labeled reads). */
rc_status rc_labeled_write_jsonl(const char *path, const rc_labeled_texts *texts);

/* Reads JSONL with a string field text_field and a label field (0/1 or
 * false/true) label_field. ".gz" files are read through `gzip -dc`. */
rc_status rc_labeled_read_jsonl(const char *path, const char *text_field,
                                const char *label_field, const rc_read_options *options,
                                rc_labeled_texts *out, rc_prepare_report *report);

/* Reads an aclImdb split folder (DIR/pos and DIR/neg of ID_RATING.txt files)
 * in ascending id order; pos = 1, neg = 0. */
rc_status rc_imdb_read_dir(const char *dir, const rc_read_options *options,
                           rc_labeled_texts *out, rc_prepare_report *report);

/* The labelled-text recipe: negatives (label 0, input order) become rejected,
 * positives shuffled with options->seed become chosen, joined one to one; the
 * larger class's remainder is counted as unpaired. Prompts are "". */
rc_status rc_pairs_from_labeled(const rc_labeled_texts *texts, const rc_read_options *options,
                                rc_pair_list *out, rc_prepare_report *report);

/* Rankings JSONL, one prompt per line:
 *   {"prompt": "...", "responses": ["a", "b", "c"], "rankings": [[1, 3, 2], [2, 1, 3]]}
 * rankings[l][i] is the rank labeler l gave responses[i]; each ranking is a
 * permutation of 1..K (1 = best). */
typedef enum {
    RC_RANK_MEAN = 0,     /* one ranking per prompt: the mean rank over labelers */
    RC_RANK_PER_LABELER   /* every labeler's own C(K,2) pairs */
} rc_rank_aggregation;

typedef struct {
    rc_rank_aggregation aggregation;
    int margin_from_rank_gap; /* margin = margin_scale * (rank(rejected) - rank(chosen)) */
    double margin_scale;
    /* weight = 1 / C(K,2) (mean) or 1 / (L * C(K,2)) (per labeler), so every
     * prompt carries the same total weight, as in InstructGPT. */
    int weight_per_prompt;
} rc_ranking_options;

rc_status rc_pairs_read_rankings(const char *path, const rc_read_options *options,
                                 const rc_ranking_options *ranking, rc_pair_list *out,
                                 rc_prepare_report *report);

/* Preference JSONL as TRL uses it: {"chosen","rejected"} (implicit prompt,
 * e.g. HH-RLHF dialogues) or {"prompt","chosen","rejected"}, with an optional
 * numeric "margin" and "weight" — which is also the format
 * rc_pairs_write_jsonl writes, so this reads prepared pairs back.
 * extract_prompt: for implicit pairs, move the shared beginning of chosen and
 * rejected into the prompt, cut just after the last prompt_marker inside it
 * (e.g. "\n\nAssistant:") or, without one, at the end of the shared text;
 * prompt + response is unchanged. prompt_marker may be NULL. */
typedef struct {
    int extract_prompt;
    const char *prompt_marker;
    /* HH-RLHF dialogues to messages: a text that starts with "\n\nHuman:"
     * becomes user/assistant messages, one per "\n\nHuman:"/"\n\nAssistant:"
     * turn (content trimmed of surrounding whitespace, inner text kept whole);
     * a prompt's final empty "Assistant:" is dropped; a response without a
     * marker becomes one assistant message. The pair is then conversational. */
    int dialogue_messages;
} rc_preference_options;

rc_status rc_pairs_read_preferences(const char *path, const rc_read_options *options,
                                    const rc_preference_options *preference,
                                    rc_pair_list *out, rc_prepare_report *report);
/* Conversational records: "chosen" and "rejected" (and "prompt" when given)
 * are arrays of {"role": string, "content": string}. With extract_prompt an
 * implicit pair's shared leading messages become its prompt (each side keeps
 * at least one message). */

/* A "\n\nHuman: ... \n\nAssistant: ..." dialogue as a compact JSON array of
 * messages (caller frees); as_prompt drops a final empty assistant turn. A
 * text without a leading marker becomes one assistant message. */
rc_status rc_dialogue_to_messages(const char *text, int as_prompt, char **json_out);

/* Splits the shared beginning of two texts as extract_prompt does: returns the
 * prompt length (bytes); 0 when nothing sensible is shared. */
size_t rc_shared_prompt_length(const char *chosen, const char *rejected, const char *marker);

/* Deterministic Fisher-Yates shuffle of n indices with a 64-bit seed (the same
 * permutation on every platform). */
void rc_shuffle_indices(size_t *indices, size_t n, uint64_t seed);

/* ---- tokenization policy (shared by train, eval and score) -------------- */

struct cJSON;        /* from <cjson/cJSON.h> */
struct rc_tokenizer; /* from rewardc/tokenizer.h */

typedef enum {
    RC_OVERFLOW_TRUNCATE = 0, /* keep the prompt's end and the whole response; if
                                 the response alone is too long, keep its start */
    RC_OVERFLOW_DROP          /* drop the pair when either sequence is too long */
} rc_overflow;

/* How a (prompt, response) becomes the ids the model scores: the tokenizer's
 * BOS as it says (OPT prepends </s>, GPT-2 nothing), the text prompt+response,
 * then EOS when append_eos. max_length counts every id, specials included. */
typedef struct {
    size_t max_length;
    int append_eos;
    rc_overflow overflow;
} rc_encode_policy;

/* max_length 512, append_eos on, overflow truncate. */
rc_encode_policy rc_encode_policy_default(void);
/* The default for a model with this tokenizer: where the EOS is also the pad
 * token (SmolLM2, Qwen: <|im_end|>) transformers reads the score at the last
 * token that is not one, so an appended EOS would only be skipped: none is
 * appended, and a text is scored at its own last token. */
rc_encode_policy rc_encode_policy_for(const struct rc_tokenizer *tok);

/* Fails when the policy cannot work with this tokenizer: max_length leaves no
 * room for one text token beside the specials, append_eos without an EOS, or
 * an EOS equal to the pad id (pooling reads the last non-pad token, so the
 * appended EOS would be skipped). */
rc_status rc_encode_policy_check(const rc_encode_policy *policy, const struct rc_tokenizer *tok);

/* JSON form, stored with the model: {"max_length": 512, "append_eos": true,
 * "overflow": "truncate"}. Reading requires all three keys and rejects others. */
rc_status rc_encode_policy_to_cjson(const rc_encode_policy *policy, struct cJSON **out);
rc_status rc_encode_policy_from_cjson(const struct cJSON *object, rc_encode_policy *out);
rc_status rc_encode_policy_to_json(const rc_encode_policy *policy, char **json_out);
rc_status rc_encode_policy_from_json(const char *json, rc_encode_policy *out);

typedef enum {
    RC_ENCODED_WHOLE = 0,          /* fits: exactly tokenizer(prompt+response) (+EOS) */
    RC_ENCODED_PROMPT_TRUNCATED,   /* the prompt's beginning was cut */
    RC_ENCODED_RESPONSE_TRUNCATED, /* the prompt is gone and the response's end cut */
    RC_ENCODED_DROPPED             /* too long under RC_OVERFLOW_DROP; no ids */
} rc_encode_outcome;

/* Encodes one sequence. A text that fits is encoded as one string, exactly as
 * Hugging Face tokenizes prompt+response; one that does not is rebuilt from
 * the prompt's and the response's own encodings. *ids is malloc'd (NULL when
 * dropped). */
rc_status rc_encode_sequence(const struct rc_tokenizer *tok, const rc_encode_policy *policy,
                             const char *prompt, const char *response, int32_t **ids,
                             size_t *n_ids, rc_encode_outcome *outcome);

/* What the policy did to a data set, for the caller to report. */
typedef struct {
    size_t sequences;          /* sequences encoded (two per pair) */
    size_t prompt_truncated;
    size_t response_truncated;
    size_t pairs_dropped;      /* under RC_OVERFLOW_DROP */
    size_t longest;            /* longest sequence before truncation, in ids */
} rc_encode_counts;

typedef struct {
    int32_t *chosen;
    size_t n_chosen;
    int32_t *rejected;
    size_t n_rejected;
    size_t source; /* index of the pair in the input list */
} rc_encoded_pair;

typedef struct {
    rc_encoded_pair *items;
    size_t n;
} rc_encoded_pairs;

/* Encodes every pair (prompt+chosen, prompt+rejected); dropped pairs are left
 * out and counted. counts may be NULL; it is zeroed first. */
rc_status rc_encode_pairs(const struct rc_tokenizer *tok, const rc_encode_policy *policy,
                          const rc_pair_list *pairs, rc_encoded_pairs *out,
                          rc_encode_counts *counts);
void rc_encoded_pairs_free(rc_encoded_pairs *pairs);

struct rc_chat_template; /* from rewardc/tokenizer.h */

/* rc_encode_pairs for lists that may hold conversational pairs, whose texts
 * are rendered with chat (which may be NULL only when there are none) as TRL
 * does: with an explicit prompt, prompt = render(prompt, generation prompt)
 * cut to what it shares with render(prompt + chosen), and each response is
 * the rest of render(prompt + response); an implicit one renders each side
 * whole with prompt "". A rendered text that starts with the BOS token the
 * tokenizer adds anyway loses that copy, so BOS is not doubled. */
rc_status rc_encode_pairs_chat(const struct rc_tokenizer *tok, const struct rc_chat_template *chat,
                               const rc_encode_policy *policy, const rc_pair_list *pairs,
                               rc_encoded_pairs *out, rc_encode_counts *counts);
/* One conversation that ends with the response to be scored (n >= 1; the
 * last message the assistant's), rendered as one side of a pair is: *prompt
 * the conversation before it with the generation prompt ("" when the
 * response is the only message), *response the rest of the whole
 * rendering. Both malloc'd. */
struct rc_chat_message;
rc_status rc_render_conversation(const struct rc_tokenizer *tok, const struct rc_chat_template *chat,
                                 const struct rc_chat_message *messages, size_t n, char **prompt,
                                 char **response);
/* rc_encode_pairs_chat with the chat template of the model folder model_dir
 * (rc_chat_template_load), read only when some pair is conversational. */
rc_status rc_encode_pairs_for_model(const struct rc_tokenizer *tok, const char *model_dir,
                                    const rc_encode_policy *policy, const rc_pair_list *pairs,
                                    rc_encoded_pairs *out, rc_encode_counts *counts);

#ifdef __cplusplus
}
#endif
#endif
