/* The byte-level BPE tokenizer (GPT-2 / OPT, SmolLM2 / Llama-3 / Qwen2 families),
 * bit-exact with Hugging Face transformers' fast tokenizers (what AutoTokenizer
 * returns):
 *   - loads a Hugging Face folder: tokenizer.json (byte-level BPE) when present,
 *     else vocab.json + merges.txt, plus tokenizer_config.json /
 *     special_tokens_map.json for add_bos_token and the bos/eos/pad/unk tokens;
 *   - tokenizer.json's pre-tokenizers as HF `tokenizers` runs them: ByteLevel
 *     (use_regex, add_prefix_space), Digits (individual_digits), Split (Regex
 *     or String pattern; Isolated, Removed, MergedWithPrevious, MergedWithNext,
 *     Contiguous; invert) and Sequence, ByteLevel last; its post-processor
 *     (TemplateProcessing, Roberta/Bert, ByteLevel, Sequence) says whether BOS/EOS
 *     are added, except that LlamaTokenizerFast's add_bos_token/add_eos_token
 *     replace it as transformers does; added tokens with their special,
 *     normalized, lstrip, rstrip and single_word flags;
 *   - added/special tokens written in the text are matched as those tokens, as
 *     the fast tokenizer does by default: the special tokens the config names
 *     (bos/eos/unk/pad/additional) and tokenizer.json's added_tokens. So GPT-2
 *     matches "<|endoftext|>" only; OPT matches "</s>" and "<pad>", while "<s>"
 *     and "<unk>" (in OPT's vocab but not named by its config) and
 *     "<|endoftext|>" are ordinary text, exactly as HF encodes them;
 *   - input that is not valid UTF-8 is read as Python's
 *     bytes.decode("utf-8", errors="replace") would read it (each maximal invalid
 *     subsequence becomes U+FFFD), so encoding never fails on user text;
 *   - decoding re-assembles bytes and replaces invalid UTF-8 the same way, and
 *     performs no clean-up of tokenization spaces (transformers 4.46's default).
 * A loaded tokenizer is read-only and may be used from several threads at once. */
#ifndef REWARDC_TOKENIZER_H
#define REWARDC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "rewardc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_tokenizer rc_tokenizer;

/* Loads the tokenizer folder `dir`. On success *out owns the tokenizer. */
rc_status rc_tokenizer_load(const char *dir, rc_tokenizer **out);
void rc_tokenizer_free(rc_tokenizer *tok);

/* Encodes `len` bytes of `text` (need not be NUL-terminated). With
 * add_special_tokens != 0 the BOS/EOS that the tokenizer's post-processor (or
 * add_bos_token) asks for are added. *ids is malloc'd (free() it; non-NULL
 * even when *n_ids == 0). */
rc_status rc_tokenizer_encode(const rc_tokenizer *tok, const char *text, size_t len,
                              int add_special_tokens, int32_t **ids, size_t *n_ids);

/* Decodes ids to a malloc'd NUL-terminated UTF-8 string; *len_out (may be NULL)
 * receives its length. skip_special drops the special tokens (bos/eos/pad/unk
 * and any other added token marked special). An id outside the vocabulary is
 * an RC_ERR_INVALID_ARG. */
rc_status rc_tokenizer_decode(const rc_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              int skip_special, char **text, size_t *len_out);

/* Id of a token string as written in the vocabulary ("</s>", "Ġthe"), or -1. */
int32_t rc_tokenizer_token_to_id(const rc_tokenizer *tok, const char *token);
/* Vocabulary string of an id (byte-level form, e.g. "Ġthe"), or NULL. */
const char *rc_tokenizer_id_to_token(const rc_tokenizer *tok, int32_t id);

int32_t rc_tokenizer_bos_id(const rc_tokenizer *tok); /* -1 when none */
int32_t rc_tokenizer_eos_id(const rc_tokenizer *tok);
int32_t rc_tokenizer_pad_id(const rc_tokenizer *tok);
int32_t rc_tokenizer_unk_id(const rc_tokenizer *tok);
/* Number of ids (largest id + 1), counting added tokens, as len(tokenizer). */
int32_t rc_tokenizer_vocab_size(const rc_tokenizer *tok);
/* 1 when encoding with add_special_tokens prepends BOS (OPT), else 0. */
int rc_tokenizer_adds_bos(const rc_tokenizer *tok);

typedef enum { RC_SIDE_RIGHT = 0, RC_SIDE_LEFT = 1 } rc_side;

typedef struct {
    int add_special_tokens;  /* as in rc_tokenizer_encode */
    size_t max_length;       /* 0: no truncation; else each sequence, special
                                tokens included, is cut to at most this many ids */
    rc_side truncation_side; /* RIGHT drops the end of the text, LEFT its start;
                                special tokens are kept either way (as HF) */
    rc_side padding_side;    /* where pad ids go */
    int pad_to_max_length;   /* 0: T = longest sequence; 1: T = max_length */
    int n_threads;           /* 0: OpenMP default; 1: serial */
} rc_batch_options;

/* The options HF uses for tokenizer(texts, padding=True): specials added,
 * no truncation, right padding, all threads. */
rc_batch_options rc_batch_options_default(void);

/* A padded batch in the layout the model consumes: row-major [B, T]. */
typedef struct {
    size_t batch;       /* B */
    size_t seq_len;     /* T */
    int32_t *ids;       /* [B*T]; pad positions hold the pad id */
    int32_t *mask;      /* [B*T]; 1 for tokens, 0 for padding */
    size_t *lengths;    /* [B] tokens per row before padding */
    size_t n_truncated; /* rows that max_length shortened */
} rc_token_batch;

/* Encodes texts[i] (lens[i] bytes each; lens may be NULL for NUL-terminated
 * texts) into *out, in parallel when built with OpenMP. Padding needs a pad
 * token: a tokenizer without one (GPT-2) can only batch rows of equal length
 * (RC_ERR_INVALID_ARG otherwise, as HF raises). */
rc_status rc_tokenizer_encode_batch(const rc_tokenizer *tok, const char *const *texts,
                                    const size_t *lens, size_t n_texts,
                                    const rc_batch_options *opts, rc_token_batch *out);
void rc_token_batch_free(rc_token_batch *batch);

/* Unpadded results of many texts: text i has ids[offsets[i] .. offsets[i+1]). */
typedef struct {
    size_t count;
    int32_t *ids;
    size_t *offsets; /* [count + 1] */
} rc_token_lists;

/* Encodes texts in parallel (n_threads: 0 = OpenMP default, 1 = serial) with
 * no truncation or padding; each list is what rc_tokenizer_encode returns. */
rc_status rc_tokenizer_encode_lists(const rc_tokenizer *tok, const char *const *texts,
                                    const size_t *lens, size_t n_texts, int add_special_tokens,
                                    int n_threads, rc_token_lists *out);
void rc_token_lists_free(rc_token_lists *lists);

/* ---- chat templates (chat_template.c) ----
 * No Jinja engine: the template text is recognised as one of the families
 * whose rendering is known and rendered exactly as transformers'
 * apply_chat_template(messages, tokenize=False) renders it:
 *   chatml  <|im_start|>role\ncontent<|im_end|>\n per message, with the default
 *           system message the template writes when the first message is not
 *           a system one (SmolLM2, Qwen2 / Qwen2.5: "You are Qwen, ..."), or none;
 *   llama3  bos <|start_header_id|>role<|end_header_id|>\n\n content|trim <|eot_id|>
 *           (Llama-3.0; 3.1+ with its dated system header is refused);
 *   gemma   bos <start_of_turn>role\n content|trim <end_of_turn>\n, assistant
 *           written "model"; a system message or non-alternating roles refused
 *           as the template raises;
 *   mistral bos [INST] user [/INST]assistant eos (v0.1/v0.2), same refusals.
 * Roles are system, user and assistant; contents are plain strings. */
typedef struct rc_chat_message {
    const char *role;
    const char *content;
} rc_chat_message;

typedef struct rc_chat_template rc_chat_template;

/* Recognises template_text; bos/eos are the tokenizer's bos_token/eos_token
 * strings the template may write (NULL: none). A template of no known family
 * is RC_ERR_UNSUPPORTED with a message quoting its start. */
rc_status rc_chat_template_recognise(const char *template_text, const char *bos_token,
                                     const char *eos_token, rc_chat_template **out);
/* The template of a model folder: chat_template.jinja, else tokenizer_config.json's
 * chat_template (a string, or the entry named "default" of a list), with the
 * config's bos_token/eos_token. */
rc_status rc_chat_template_load(const char *dir, rc_chat_template **out);
void rc_chat_template_free(rc_chat_template *tmpl);
/* "chatml", "llama3", "gemma" or "mistral". */
const char *rc_chat_template_family(const rc_chat_template *tmpl);
/* Renders messages to a malloc'd NUL-terminated string (*len may be NULL).
 * add_generation_prompt appends the assistant turn's opening, as
 * apply_chat_template(add_generation_prompt=True) does. */
rc_status rc_chat_template_render(const rc_chat_template *tmpl, const rc_chat_message *messages,
                                  size_t n_messages, int add_generation_prompt, char **text,
                                  size_t *len);

#ifdef __cplusplus
}
#endif
#endif
