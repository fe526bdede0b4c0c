/* The GGUF's tokenizer (tokenizer.ggml.*) as Hugging Face tokenizer files.
 * Only byte-level BPE (tokenizer.ggml.model "gpt2") is written: vocab and
 * merges as they are, control/unknown tokens (token_type 3/2) as special
 * added tokens and user-defined ones (4) as plain added tokens, and the
 * pre-tokenizer of the HF tokenizer llama.cpp's tokenizer.ggml.pre names. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf_hf_internal.h"
#include "rewardc/io.h"

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4 };

/* The split regexes of the HF tokenizers (facts of those tokenizer.json files). */
static const char LLAMA3_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static cJSON *byte_level(bool use_regex) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", false);
    cJSON_AddBoolToObject(b, "trim_offsets", true);
    cJSON_AddBoolToObject(b, "use_regex", use_regex);
    return b;
}

static cJSON *split(const char *regex) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "Split");
    cJSON *pattern = cJSON_AddObjectToObject(s, "pattern");
    cJSON_AddStringToObject(pattern, "Regex", regex);
    cJSON_AddStringToObject(s, "behavior", "Isolated");
    cJSON_AddBoolToObject(s, "invert", false);
    return s;
}

static cJSON *digits(bool individual) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "type", "Digits");
    cJSON_AddBoolToObject(d, "individual_digits", individual);
    return d;
}

static cJSON *sequence(cJSON *steps[], int n) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(s, "pretokenizers");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, steps[i]);
    return s;
}

/* The pre_tokenizer of the HF tokenizer.json that tokenizer.ggml.pre stands for. */
static rc_status pre_tokenizer(const rc_gguf *g, rc_gguf_string pre, cJSON **out, bool *ignore_merges) {
    *ignore_merges = false;
    if (rc_gguf_string_is(pre, "smollm")) { /* HuggingFaceTB/SmolLM2-* */
        cJSON *steps[] = {digits(true), byte_level(true)};
        *out = sequence(steps, 2);
    } else if (rc_gguf_string_is(pre, "gpt-2") || rc_gguf_string_is(pre, "default")) {
        *out = byte_level(true);
    } else if (rc_gguf_string_is(pre, "llama-bpe")) { /* Llama 3 */
        cJSON *steps[] = {split(LLAMA3_SPLIT), byte_level(false)};
        *out = sequence(steps, 2);
        *ignore_merges = true;
    } else if (rc_gguf_string_is(pre, "qwen2")) {
        cJSON *steps[] = {split(QWEN2_SPLIT), byte_level(false)};
        *out = sequence(steps, 2);
    } else if (rc_gguf_string_is(pre, "falcon")) { /* tiiuae/falcon-7b */
        cJSON *punct = cJSON_CreateObject();
        cJSON_AddStringToObject(punct, "type", "Punctuation");
        cJSON_AddStringToObject(punct, "behavior", "Contiguous");
        cJSON *three = cJSON_CreateObject();
        cJSON_AddStringToObject(three, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(three, "pattern"), "Regex", "[0-9][0-9][0-9]");
        cJSON_AddStringToObject(three, "behavior", "Isolated");
        cJSON_AddBoolToObject(three, "invert", false);
        cJSON *steps[] = {punct, byte_level(true), digits(false), three};
        *out = sequence(steps, 4);
    } else {
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.pre '%.*s' has no Hugging Face pre-tokenizer here (smollm, gpt-2, default, "
                       "llama-bpe, qwen2 and falcon do)",
                       rc_gguf_path(g), (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
    }
    return *out ? RC_OK : rc_fail(RC_ERR_OOM, "out of memory");
}

/* A GGUF string as a C string (tokens never hold NUL bytes in a valid vocabulary). */
static rc_status c_string(const rc_gguf *g, const char *key, uint64_t index, rc_gguf_string s, char **out) {
    if (memchr(s.ptr, '\0', (size_t)s.len))
        return rc_fail(RC_ERR_FORMAT, "%s: %s[%" PRIu64 "] contains a NUL byte", rc_gguf_path(g), key, index);
    char *c = malloc((size_t)s.len + 1);
    if (!c) return rc_fail(RC_ERR_OOM, "out of memory");
    memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = '\0';
    *out = c;
    return RC_OK;
}

static rc_status string_array(const rc_gguf *g, const char *key, const rc_gguf_kv **out) {
    const rc_gguf_kv *kv = rc_gguf_find(g, key);
    if (!kv) return rc_fail(RC_ERR_FORMAT, "%s: missing key '%s'", rc_gguf_path(g), key);
    if (kv->type != RC_GGUF_ARRAY || kv->elem_type != RC_GGUF_STRING)
        return rc_fail(RC_ERR_FORMAT, "%s: key '%s' must be an array of strings", rc_gguf_path(g), key);
    *out = kv;
    return RC_OK;
}

typedef struct {
    const rc_gguf_kv *tokens, *merges, *types;
    char **text; /* tokens as C strings */
    int64_t *type;
    size_t n;
} vocabulary;

static void vocabulary_free(vocabulary *v) {
    for (size_t i = 0; v->text && i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->type);
}

static rc_status vocabulary_read(const rc_gguf *g, vocabulary *v) {
    memset(v, 0, sizeof *v);
    rc_status st = string_array(g, "tokenizer.ggml.tokens", &v->tokens);
    if (st == RC_OK) st = string_array(g, "tokenizer.ggml.merges", &v->merges);
    if (st != RC_OK) return st;
    v->types = rc_gguf_find(g, "tokenizer.ggml.token_type");
    if (v->types && (v->types->type != RC_GGUF_ARRAY || v->types->count != v->tokens->count))
        return rc_fail(RC_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be an array of %" PRIu64 " integers",
                       rc_gguf_path(g), v->tokens->count);
    v->n = (size_t)v->tokens->count;
    v->text = calloc(v->n ? v->n : 1, sizeof *v->text);
    v->type = calloc(v->n ? v->n : 1, sizeof *v->type);
    if (!v->text || !v->type) return rc_fail(RC_ERR_OOM, "out of memory for %zu tokens", v->n);
    for (size_t i = 0; i < v->n && st == RC_OK; i++) {
        st = c_string(g, "tokenizer.ggml.tokens", i, v->tokens->strings[i], &v->text[i]);
        v->type[i] = TOKEN_NORMAL;
        if (st == RC_OK && v->types) st = rc_gguf_kv_int(v->types, i, &v->type[i]);
    }
    return st;
}

static bool is_added(int64_t type) {
    return type == TOKEN_CONTROL || type == TOKEN_UNKNOWN || type == TOKEN_USER_DEFINED;
}

static cJSON *added_token(const vocabulary *v, size_t id, bool with_id) {
    cJSON *t = cJSON_CreateObject();
    if (with_id) cJSON_AddNumberToObject(t, "id", (double)id);
    cJSON_AddStringToObject(t, "content", v->text[id]);
    cJSON_AddBoolToObject(t, "single_word", false);
    cJSON_AddBoolToObject(t, "lstrip", false);
    cJSON_AddBoolToObject(t, "rstrip", false);
    cJSON_AddBoolToObject(t, "normalized", false);
    cJSON_AddBoolToObject(t, "special", v->type[id] != TOKEN_USER_DEFINED);
    return t;
}

static const char *token_text(const vocabulary *v, int64_t id) {
    return id >= 0 && (size_t)id < v->n ? v->text[id] : NULL;
}

static bool flag(const rc_gguf *g, const char *key) {
    bool b = false;
    if (rc_gguf_find(g, key) && rc_gguf_get_bool(g, key, &b) != RC_OK) return false;
    return b;
}

/* BOS prepended by the post-processor when tokenizer.ggml.add_bos_token says so. */
static cJSON *post_processor(const vocabulary *v, const rc_gguf_hf_model *m, bool add_bos) {
    const char *bos = token_text(v, m->bos);
    if (!add_bos || !bos) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "ByteLevel");
        cJSON_AddBoolToObject(b, "add_prefix_space", true);
        cJSON_AddBoolToObject(b, "trim_offsets", false);
        cJSON_AddBoolToObject(b, "use_regex", true);
        return b;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    const char *seqs[2] = {"A", "B"};
    for (int pair = 0; pair < 2; pair++) {
        cJSON *list = cJSON_AddArrayToObject(p, pair ? "pair" : "single");
        for (int s = 0; s <= pair; s++) {
            cJSON *special = cJSON_CreateObject(), *inner = cJSON_AddObjectToObject(special, "SpecialToken");
            cJSON_AddStringToObject(inner, "id", bos);
            cJSON_AddNumberToObject(inner, "type_id", s);
            cJSON_AddItemToArray(list, special);
            cJSON *seq = cJSON_CreateObject(), *body = cJSON_AddObjectToObject(seq, "Sequence");
            cJSON_AddStringToObject(body, "id", seqs[s]);
            cJSON_AddNumberToObject(body, "type_id", s);
            cJSON_AddItemToArray(list, seq);
        }
    }
    cJSON *specials = cJSON_AddObjectToObject(p, "special_tokens");
    cJSON *entry = cJSON_AddObjectToObject(specials, bos);
    cJSON_AddStringToObject(entry, "id", bos);
    cJSON_AddItemToObject(entry, "ids", cJSON_CreateIntArray((const int[]){(int)m->bos}, 1));
    cJSON *tokens = cJSON_AddArrayToObject(entry, "tokens");
    cJSON_AddItemToArray(tokens, cJSON_CreateString(bos));
    return p;
}

static rc_status tokenizer_json(const rc_gguf *g, const rc_gguf_hf_model *m, const vocabulary *v, cJSON **out) {
    rc_gguf_string pre = {"default", 7};
    if (rc_gguf_find(g, "tokenizer.ggml.pre")) {
        rc_status st = rc_gguf_get_string(g, "tokenizer.ggml.pre", &pre);
        if (st != RC_OK) return st;
    }
    cJSON *pre_tok = NULL;
    bool ignore_merges;
    rc_status st = pre_tokenizer(g, pre, &pre_tok, &ignore_merges);
    if (st != RC_OK) return st;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (size_t i = 0; i < v->n; i++)
        if (is_added(v->type[i])) cJSON_AddItemToArray(added, added_token(v, i, true));
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_tok);
    cJSON_AddItemToObject(root, "post_processor", post_processor(v, m, flag(g, "tokenizer.ggml.add_bos_token")));
    cJSON *decoder = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(decoder, "type", "ByteLevel");
    cJSON_AddBoolToObject(decoder, "add_prefix_space", true);
    cJSON_AddBoolToObject(decoder, "trim_offsets", true);
    cJSON_AddBoolToObject(decoder, "use_regex", true);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", false);
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (size_t i = 0; i < v->n; i++) cJSON_AddNumberToObject(vocab, v->text[i], (double)i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (uint64_t i = 0; i < v->merges->count && st == RC_OK; i++) {
        char *text;
        st = c_string(g, "tokenizer.ggml.merges", i, v->merges->strings[i], &text);
        if (st == RC_OK) {
            if (!strchr(text, ' '))
                st = rc_fail(RC_ERR_FORMAT, "%s: tokenizer.ggml.merges[%" PRIu64 "] '%s' is not two tokens", rc_gguf_path(g),
                             i, text);
            cJSON_AddItemToArray(merges, cJSON_CreateString(text));
            free(text);
        }
    }
    if (st != RC_OK) {
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return RC_OK;
}

static void add_token_string(cJSON *obj, const char *name, const vocabulary *v, int64_t id) {
    const char *text = token_text(v, id);
    if (text) cJSON_AddStringToObject(obj, name, text);
    else cJSON_AddNullToObject(obj, name);
}

static rc_status tokenizer_config(const rc_gguf *g, const rc_gguf_hf_model *m, const vocabulary *v, cJSON **config,
                                  cJSON **special_map) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddBoolToObject(c, "add_bos_token", flag(g, "tokenizer.ggml.add_bos_token"));
    cJSON_AddBoolToObject(c, "add_eos_token", flag(g, "tokenizer.ggml.add_eos_token"));
    cJSON_AddBoolToObject(c, "add_prefix_space", false);
    cJSON *decoder = cJSON_AddObjectToObject(c, "added_tokens_decoder");
    for (size_t i = 0; i < v->n; i++) {
        if (!is_added(v->type[i])) continue;
        char id[32];
        snprintf(id, sizeof id, "%zu", i);
        cJSON_AddItemToObject(decoder, id, added_token(v, i, false));
    }
    add_token_string(c, "bos_token", v, m->bos);
    add_token_string(c, "eos_token", v, m->eos);
    add_token_string(c, "pad_token", v, m->pad);
    add_token_string(c, "unk_token", v, m->unk);
    if (rc_gguf_find(g, "tokenizer.chat_template")) {
        rc_gguf_string t;
        char *text = NULL;
        rc_status st = rc_gguf_get_string(g, "tokenizer.chat_template", &t);
        if (st == RC_OK) st = c_string(g, "tokenizer.chat_template", 0, t, &text);
        if (st != RC_OK) {
            cJSON_Delete(c);
            return st;
        }
        cJSON_AddStringToObject(c, "chat_template", text);
        free(text);
    }
    cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", false);
    cJSON_AddNumberToObject(c, "model_max_length", (double)m->context);
    cJSON_AddStringToObject(c, "tokenizer_class", "PreTrainedTokenizerFast");

    cJSON *s = cJSON_CreateObject();
    const char *names[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    const int64_t ids[] = {m->bos, m->eos, m->pad, m->unk};
    for (int i = 0; i < 4; i++)
        if (token_text(v, ids[i])) cJSON_AddStringToObject(s, names[i], token_text(v, ids[i]));
    *config = c;
    *special_map = s;
    return RC_OK;
}

static rc_status save_json(const char *dir, const char *name, cJSON *json) {
    char path[4096];
    rc_status st = rc_path_join(path, sizeof path, dir, name);
    if (st == RC_OK) st = rc_json_save_file(path, json);
    cJSON_Delete(json);
    return st;
}

rc_status rc_gguf_hf_tokenizer(const rc_gguf *g, const rc_gguf_hf_model *m, const char *dir,
                               rc_gguf_import_summary *summary) {
    rc_gguf_string model;
    rc_status st = rc_gguf_get_string(g, "tokenizer.ggml.model", &model);
    if (st != RC_OK) return st;
    if (!rc_gguf_string_is(model, "gpt2"))
        return rc_fail(RC_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model '%.*s' is not byte-level BPE ('gpt2'), the only kind imported",
                       rc_gguf_path(g), (int)(model.len > 64 ? 64 : model.len), model.ptr);
    vocabulary v;
    st = vocabulary_read(g, &v);
    if (st == RC_OK && (int64_t)v.n > m->vocab)
        st = rc_fail(RC_ERR_FORMAT, "%s: %zu tokens but the embedding has only %" PRId64 " rows", rc_gguf_path(g), v.n,
                     m->vocab);
    cJSON *tok = NULL, *config = NULL, *special = NULL;
    if (st == RC_OK) st = tokenizer_json(g, m, &v, &tok);
    if (st == RC_OK) st = tokenizer_config(g, m, &v, &config, &special);
    if (st == RC_OK) {
        summary->vocab_size = v.n;
        summary->n_merges = (size_t)v.merges->count;
        st = save_json(dir, "tokenizer.json", tok);
        tok = NULL;
    }
    if (st == RC_OK) {
        st = save_json(dir, "tokenizer_config.json", config);
        config = NULL;
    }
    if (st == RC_OK) {
        st = save_json(dir, "special_tokens_map.json", special);
        special = NULL;
    }
    cJSON_Delete(tok);
    cJSON_Delete(config);
    cJSON_Delete(special);
    vocabulary_free(&v);
    return st;
}
