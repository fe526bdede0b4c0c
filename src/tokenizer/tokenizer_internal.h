/* Internal structures of the byte-level BPE tokenizer, shared by the files of
 * src/tokenizer/. Nothing here is public API (see include/rewardc/tokenizer.h). */
#ifndef REWARDC_TOKENIZER_INTERNAL_H
#define REWARDC_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <threads.h>

#include "rewardc/tokenizer.h"

/* ---- UTF-8 (utf8.c) ---- */

/* Length of the longest valid UTF-8 prefix of s[0..len). */
size_t rc_utf8_valid_prefix(const unsigned char *s, size_t len);
/* Copies s into a malloc'd buffer where each maximal invalid subsequence is
 * replaced by U+FFFD (the rule of Python's errors="replace" and Rust's
 * from_utf8_lossy). *out_len gets the new length; NULL on allocation failure. */
char *rc_utf8_replace_invalid(const unsigned char *s, size_t len, size_t *out_len);
/* Decodes the code point at s (valid UTF-8, len > 0); returns its byte length. */
size_t rc_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* Start of the code point that ends right before s[end] (valid UTF-8). */
size_t rc_utf8_prev_start(const unsigned char *s, size_t end);
/* Unicode White_Space, the set Rust's char::is_whitespace and Oniguruma's \s use. */
int rc_unicode_is_white_space(uint32_t cp);
/* Appends the UTF-8 encoding of cp to buf; returns bytes written (1..4). */
size_t rc_utf8_encode(uint32_t cp, char *buf);

/* ---- byte <-> printable code point table of GPT-2 (byte_level.c) ---- */

/* Code point that stands for byte b in vocabulary strings ('Ġ' for ' '). */
uint32_t rc_byte_to_codepoint(unsigned char b);
/* Byte a code point stands for, or -1 when cp is not one of the 256. */
int rc_codepoint_to_byte(uint32_t cp);

/* ---- string -> int32 hash map (string_map.c) ---- */

typedef struct {
    uint64_t hash;
    uint32_t key_offset;
    uint32_t key_len;
    int32_t value;
    uint32_t used;
} rc_string_map_slot;

typedef struct {
    rc_string_map_slot *slots;
    size_t n_slots; /* power of two */
    size_t n_used;
    char *keys; /* key bytes, back to back */
    size_t keys_len, keys_cap;
} rc_string_map;

uint64_t rc_hash_bytes(const void *data, size_t len);
rc_status rc_string_map_init(rc_string_map *map, size_t expected);
void rc_string_map_free(rc_string_map *map);
/* Inserts or overwrites. */
rc_status rc_string_map_put(rc_string_map *map, const char *key, size_t len, int32_t value);
/* Value of key, or -1. */
int32_t rc_string_map_get(const rc_string_map *map, const char *key, size_t len);

/* ---- BPE merges keyed by the pair of ids (bpe.c) ---- */

typedef struct {
    uint64_t pair; /* left id << 32 | right id; UINT64_MAX marks an empty slot */
    int32_t rank;
    int32_t merged_id;
} rc_merge_slot;

typedef struct {
    rc_merge_slot *slots;
    size_t n_slots; /* power of two */
    size_t n_used;
} rc_merge_table;

rc_status rc_merge_table_init(rc_merge_table *table, size_t expected);
void rc_merge_table_free(rc_merge_table *table);
/* A later duplicate of a pair overwrites the earlier rank, as HF's dict/HashMap do. */
rc_status rc_merge_table_put(rc_merge_table *table, int32_t left, int32_t right, int32_t rank,
                             int32_t merged_id);

/* ---- per-thread scratch: regex match data, word cache, buffers ---- */

enum { RC_MAX_SPLIT_STAGES = 4 };

typedef struct rc_word_cache rc_word_cache;

typedef struct {
    int32_t *data;
    size_t len, cap;
} rc_id_vec;

rc_status rc_id_vec_reserve(rc_id_vec *vec, size_t extra);

typedef struct rc_tok_worker {
    pcre2_match_data *match_data[RC_MAX_SPLIT_STAGES];
    pcre2_match_context *match_context;
    pcre2_jit_stack *jit_stack;
    rc_word_cache *cache;
    /* BPE of long words (heap merge) */
    void *bpe_scratch;
    size_t bpe_scratch_cap;
    char *prefix_buffer; /* a piece with the prefix space prepended */
    size_t prefix_buffer_cap;
    struct rc_tok_worker *next_free;
} rc_tok_worker;

/* ---- word cache (word_cache.c) ---- */

rc_word_cache *rc_word_cache_create(void);
void rc_word_cache_free(rc_word_cache *cache);
/* Longest word the cache stores; longer words are merged every time. */
enum { RC_WORD_CACHE_MAX_KEY = 255 };
/* Returns the cached ids of word (and *n_ids) or NULL. */
const int32_t *rc_word_cache_get(const rc_word_cache *cache, const char *word, size_t len,
                                 uint64_t hash, size_t *n_ids);
/* Stores ids for word; silently does nothing when the word is too long, and
 * empties the cache when it is full (bounded memory). */
void rc_word_cache_put(rc_word_cache *cache, const char *word, size_t len, uint64_t hash,
                       const int32_t *ids, size_t n_ids);

/* ---- the tokenizer ---- */

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int special;
    int lstrip, rstrip;
    int single_word; /* only where no word character touches either end */
    int normalized;  /* matched in the second pass, as HF does */
} rc_added_token;

/* What HF's Split does with the matches of its pattern (SplitDelimiterBehavior):
 * Isolated keeps each match as a piece, Removed drops them, MergedWithPrevious
 * / MergedWithNext join a match to the piece before / after it, Contiguous
 * joins runs of matches (and runs of the rest). */
typedef enum {
    RC_SPLIT_ISOLATED = 0,
    RC_SPLIT_REMOVED,
    RC_SPLIT_MERGED_WITH_PREVIOUS,
    RC_SPLIT_MERGED_WITH_NEXT,
    RC_SPLIT_CONTIGUOUS
} rc_split_behavior;

typedef struct {
    pcre2_code *regex;
    int jit; /* 1 when pcre2_jit_compile succeeded */
    rc_split_behavior behavior;
    int invert; /* Split(invert=true): the text between matches is what the behavior acts on */
} rc_split_stage;

struct rc_tokenizer {
    /* ids */
    int32_t n_ids;
    int32_t cap_ids;             /* slots allocated in id_to_token (grows geometrically) */
    char **id_to_token;          /* vocabulary string per id (NULL for unused ids) */
    char **id_to_bytes;          /* what decoding an id produces */
    uint32_t *id_to_bytes_len;
    unsigned char *id_is_special;
    rc_string_map vocab;         /* token string -> id, added tokens included */
    struct rc_string_block *strings; /* backing store of id_to_token / id_to_bytes */

    /* model */
    rc_merge_table merges;
    int32_t byte_ids[256];       /* id of each single-byte token, -1 if absent */
    int ignore_merges;           /* a word found whole in the vocab skips BPE */
    int32_t model_unk_id;        /* BPE's unk for bytes missing from the vocab */

    /* added tokens matched in the text before pre-tokenization */
    rc_added_token *added;
    size_t n_added;
    int has_added[2];            /* pass 0: normalized == 0, pass 1: normalized == 1 */
    pcre2_code *word_char;       /* Rust's \w, compiled when a token is single_word */
    unsigned char added_first_byte[2][256];

    /* pre-tokenizer: a chain of regex splits (Split, Digits, then ByteLevel's
     * own regex when use_regex), each applied to the pieces of the one before */
    rc_split_stage stages[RC_MAX_SPLIT_STAGES];
    int n_stages;
    /* ByteLevel's add_prefix_space: a space is put before each piece that
     * reaches stage prefix_space_stage (n_stages: the BPE) and does not start
     * with one; -1 when off */
    int prefix_space_stage;

    /* post-processor */
    int32_t prefix_ids[8];
    int n_prefix;
    int32_t suffix_ids[8];
    int n_suffix;

    int32_t bos_id, eos_id, pad_id, unk_id;

    /* pool of per-thread scratch, reused across calls */
    mtx_t pool_lock;
    rc_tok_worker *free_workers;
};

/* Loaders (load_*.c). Both fill tok from a folder; tok comes zeroed with ids -1. */
rc_status rc_tokenizer_load_vocab_merges(rc_tokenizer *tok, const char *dir);
rc_status rc_tokenizer_load_tokenizer_json(rc_tokenizer *tok, const char *dir);

/* Shared loading helpers (load_common.c). */
/* Copies s (plus a NUL) into the tokenizer's string blocks, where it stays
 * put until rc_tokenizer_free; returns the copy or NULL (OOM). */
char *rc_tokenizer_intern(rc_tokenizer *tok, const char *s, size_t len);
void rc_tokenizer_free_strings(rc_tokenizer *tok);
/* Sets the string of id (growing the id tables) and maps string -> id. */
rc_status rc_tokenizer_set_token(rc_tokenizer *tok, int32_t id, const char *s, size_t len);
/* Registers an added token (already in the vocab or given a new id). */
rc_status rc_tokenizer_add_token(rc_tokenizer *tok, const char *content, size_t len, int32_t id,
                                 int special, int lstrip, int rstrip, int single_word,
                                 int normalized);
/* Builds the BPE merge table from merge pairs given as token strings. */
rc_status rc_tokenizer_add_merge(rc_tokenizer *tok, const char *left, size_t left_len,
                                 const char *right, size_t right_len, int32_t rank,
                                 const char *where);
/* What tokenizer_config.json says beyond the tokens (-1: not given). */
typedef struct {
    int add_prefix_space;
    int add_bos_token, add_eos_token;
    char tokenizer_class[64]; /* "" when not given */
} rc_tokenizer_config_flags;

/* Reads tokenizer_config.json / special_tokens_map.json / added_tokens.json in
 * dir: bos/eos/unk/pad (+additional) special tokens, added_tokens_decoder, and
 * the flags above (flags may be NULL). With use_add_bos_token, add_bos_token
 * true makes encode prepend BOS (the slow-tokenizer folders). */
rc_status rc_tokenizer_load_special_config(rc_tokenizer *tok, const char *dir,
                                           int use_add_bos_token,
                                           rc_tokenizer_config_flags *flags);
/* Compiles an HF (Oniguruma-syntax) regex into a split stage. */
rc_status rc_split_stage_compile(rc_split_stage *stage, const char *pattern, size_t len,
                                 rc_split_behavior behavior, const char *where);
/* Unicode word character as Rust's regex \w (alphabetic, marks, Nd, Pc,
 * joiners): what decides an added token's single_word. */
int rc_tokenizer_is_word_char(const rc_tokenizer *tok, uint32_t cp);
/* Compiles tok->word_char (done when an added token is single_word). */
rc_status rc_tokenizer_compile_word_char(rc_tokenizer *tok);
/* The GPT-2 pre-tokenizer pattern. */
extern const char rc_gpt2_pattern[];
/* After loading: the byte ids, decode strings and added-token tables. */
rc_status rc_tokenizer_finish_load(rc_tokenizer *tok);

/* Encoding (encode.c): appends the ids of text to out using worker w. */
rc_status rc_tokenizer_encode_with(const rc_tokenizer *tok, rc_tok_worker *w, const char *text,
                                   size_t len, int add_special_tokens, rc_id_vec *out);
rc_tok_worker *rc_tokenizer_acquire_worker(const rc_tokenizer *tok);
void rc_tokenizer_release_worker(const rc_tokenizer *tok, rc_tok_worker *w);
void rc_tokenizer_free_workers(rc_tokenizer *tok);

/* BPE of one pre-token (bpe.c): appends the ids of word[0..len) to out. */
rc_status rc_bpe_word(const rc_tokenizer *tok, rc_tok_worker *w, const unsigned char *word,
                      size_t len, rc_id_vec *out);

#endif
