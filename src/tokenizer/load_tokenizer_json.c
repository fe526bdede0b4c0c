/* Loads a Hugging Face tokenizer.json whose model is byte-level BPE: the BPE
 * vocab and merges (as "a b" strings or ["a", "b"] pairs), added_tokens, a
 * pre-tokenizer made of ByteLevel and regex Split steps, and the special
 * tokens a TemplateProcessing / RobertaProcessing post-processor adds.
 * Anything that would change the ids and that rewardc does not implement
 * (normalizers, dropout, byte fallback, other models) is refused with
 * RC_ERR_UNSUPPORTED rather than silently encoded differently. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "tokenizer/tokenizer_internal.h"

static const char *json_type(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static int json_bool(const cJSON *obj, const char *name, int fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

/* A whole number in [0, INT32_MAX): converting anything else to int32_t
 * would be undefined. */
static int is_token_id(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < INT32_MAX &&
           v->valuedouble == (double)(int32_t)v->valuedouble;
}

static int is_array_or_absent(const cJSON *v) { return !v || cJSON_IsNull(v) || cJSON_IsArray(v); }

static int is_null_or_empty_string(const cJSON *v) {
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0');
}

static rc_status load_model(rc_tokenizer *tok, const cJSON *model, const char *path) {
    const char *type = json_type(model);
    if (!cJSON_IsObject(model) || (type[0] && strcmp(type, "BPE") != 0))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: model type '%s' is not BPE", path, type);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    if (!is_null_or_empty_string(cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix")) ||
        !is_null_or_empty_string(cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix")))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: BPE subword prefixes/suffixes are not supported", path);
    if (json_bool(model, "byte_fallback", 0))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", path);
    tok->ignore_merges = json_bool(model, "ignore_merges", 0);

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return rc_fail(RC_ERR_FORMAT, "%s: model.vocab must be an object and model.merges an array", path);
    rc_status st = rc_string_map_init(&tok->vocab, (size_t)cJSON_GetArraySize(vocab) + 64);
    if (st != RC_OK) return st;
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        double id = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
        if (id < 0 || id >= INT32_MAX || id != (double)(int32_t)id)
            return rc_fail(RC_ERR_FORMAT, "%s: model.vocab['%s'] is not a valid id", path, item->string);
        if ((st = rc_tokenizer_set_token(tok, (int32_t)id, item->string, strlen(item->string))) != RC_OK)
            return st;
    }
    if ((st = rc_merge_table_init(&tok->merges, (size_t)cJSON_GetArraySize(merges))) != RC_OK) return st;
    int32_t rank = 0;
    cJSON_ArrayForEach(item, merges) {
        const char *left = NULL, *right = NULL;
        size_t left_len = 0, right_len = 0;
        if (cJSON_IsString(item)) { /* "left right" */
            const char *space = strchr(item->valuestring, ' ');
            if (space && !strchr(space + 1, ' ')) {
                left = item->valuestring;
                left_len = (size_t)(space - left);
                right = space + 1;
                right_len = strlen(right);
            }
        } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(item, 0)) && cJSON_IsString(cJSON_GetArrayItem(item, 1))) {
            left = cJSON_GetArrayItem(item, 0)->valuestring;
            right = cJSON_GetArrayItem(item, 1)->valuestring;
            left_len = strlen(left);
            right_len = strlen(right);
        }
        if (!left) return rc_fail(RC_ERR_FORMAT, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
        char where[4200];
        snprintf(where, sizeof where, "%s: model.merges", path);
        if ((st = rc_tokenizer_add_merge(tok, left, left_len, right, right_len, rank++, where)) != RC_OK)
            return st;
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) tok->model_unk_id = rc_string_map_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
    return RC_OK;
}

static int is_noop_normalizer(const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return 1;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
    return strcmp(json_type(n), "Sequence") == 0 && cJSON_IsArray(list) && cJSON_GetArraySize(list) == 0;
}

/* Regex-escapes a literal Split pattern (only ASCII punctuation needs it). */
static char *escape_literal(const char *s, size_t *out_len) {
    size_t len = strlen(s), o = 0;
    char *out = malloc(2 * len + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    *out_len = o;
    return out;
}

static rc_status next_stage(rc_tokenizer *tok, const char *path, rc_split_stage **stage) {
    if (tok->n_stages == RC_MAX_SPLIT_STAGES)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer splits", path, RC_MAX_SPLIT_STAGES);
    *stage = &tok->stages[tok->n_stages];
    return RC_OK;
}

static int parse_behavior(const cJSON *behavior, rc_split_behavior *how) {
    static const struct { const char *name; rc_split_behavior how; } names[] = {
        {"Isolated", RC_SPLIT_ISOLATED},
        {"Removed", RC_SPLIT_REMOVED},
        {"MergedWithPrevious", RC_SPLIT_MERGED_WITH_PREVIOUS},
        {"MergedWithNext", RC_SPLIT_MERGED_WITH_NEXT},
        {"Contiguous", RC_SPLIT_CONTIGUOUS},
    };
    if (!cJSON_IsString(behavior)) return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(behavior->valuestring, names[i].name)) {
            *how = names[i].how;
            return 1;
        }
    return 0;
}

static rc_status add_split(rc_tokenizer *tok, const cJSON *split, const char *path) {
    rc_split_stage *stage = NULL;
    rc_status st = next_stage(tok, path, &stage);
    if (st != RC_OK) return st;
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(split, "pattern");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    const cJSON *literal = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    rc_split_behavior how;
    if (!parse_behavior(cJSON_GetObjectItemCaseSensitive(split, "behavior"), &how))
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: Split behavior must be Isolated, Removed, "
                       "MergedWithPrevious, MergedWithNext or Contiguous", path);
    char where[4200];
    snprintf(where, sizeof where, "%s: pre_tokenizer Split", path);
    if (cJSON_IsString(regex)) {
        st = rc_split_stage_compile(stage, regex->valuestring, strlen(regex->valuestring), how, where);
    } else if (cJSON_IsString(literal)) {
        size_t len;
        char *escaped = escape_literal(literal->valuestring, &len);
        if (!escaped) return rc_fail(RC_ERR_OOM, "%s: cannot copy a Split pattern", path);
        st = rc_split_stage_compile(stage, escaped, len, how, where);
        free(escaped);
    } else {
        return rc_fail(RC_ERR_FORMAT, "%s: Split pattern must be {\"Regex\": ...} or {\"String\": ...}", path);
    }
    if (st != RC_OK) return st;
    stage->invert = json_bool(split, "invert", 0);
    tok->n_stages++;
    return RC_OK;
}

/* Digits: every numeric character (Rust's char::is_numeric: Nd, Nl, No) its
 * own piece, or runs of them (individual_digits false, HF's Contiguous). */
static rc_status add_digits(rc_tokenizer *tok, const cJSON *digits, const char *path) {
    rc_split_stage *stage = NULL;
    rc_status st = next_stage(tok, path, &stage);
    if (st != RC_OK) return st;
    const char *pattern = json_bool(digits, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
    char where[4200];
    snprintf(where, sizeof where, "%s: pre_tokenizer Digits", path);
    st = rc_split_stage_compile(stage, pattern, strlen(pattern), RC_SPLIT_ISOLATED, where);
    if (st == RC_OK) tok->n_stages++;
    return st;
}

/* ByteLevel: the prefix space, then (use_regex) GPT-2's split, then the bytes
 * become the printable characters of the vocabulary, which rc_bpe_word does. */
static rc_status add_byte_level(rc_tokenizer *tok, const cJSON *step, const char *path) {
    if (json_bool(step, "add_prefix_space", 0)) tok->prefix_space_stage = tok->n_stages;
    if (!json_bool(step, "use_regex", 1)) return RC_OK;
    rc_split_stage *stage = NULL;
    rc_status st = next_stage(tok, path, &stage);
    if (st == RC_OK)
        st = rc_split_stage_compile(stage, rc_gpt2_pattern, strlen(rc_gpt2_pattern), RC_SPLIT_ISOLATED, path);
    if (st == RC_OK) tok->n_stages++;
    return st;
}

/* One pre-tokenizer (a Sequence recursively). ByteLevel must come last: the
 * ones after it would see the byte characters, which rewardc does not model. */
static rc_status add_pre_tokenizer(rc_tokenizer *tok, const cJSON *step, int *byte_level_seen,
                                   const char *path) {
    const char *type = json_type(step);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(step, "pretokenizers");
        if (!cJSON_IsArray(steps)) return rc_fail(RC_ERR_FORMAT, "%s: pre_tokenizer Sequence without a list", path);
        const cJSON *inner;
        cJSON_ArrayForEach(inner, steps) {
            rc_status st = add_pre_tokenizer(tok, inner, byte_level_seen, path);
            if (st != RC_OK) return st;
        }
        return RC_OK;
    }
    if (*byte_level_seen)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: pre-tokenizer '%s' after ByteLevel is not supported", path, type);
    if (strcmp(type, "ByteLevel") == 0) {
        *byte_level_seen = 1;
        return add_byte_level(tok, step, path);
    }
    if (strcmp(type, "Split") == 0) return add_split(tok, step, path);
    if (strcmp(type, "Digits") == 0) return add_digits(tok, step, path);
    return rc_fail(RC_ERR_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported (ByteLevel, Split, Digits "
                   "and Sequence are)", path, type);
}

static rc_status load_pre_tokenizer(rc_tokenizer *tok, const cJSON *pre, const char *path) {
    int byte_level_seen = 0;
    rc_status st = add_pre_tokenizer(tok, pre, &byte_level_seen, path);
    if (st == RC_OK && !byte_level_seen)
        return rc_fail(RC_ERR_UNSUPPORTED, "%s: no ByteLevel pre-tokenizer: not a byte-level BPE tokenizer", path);
    return st;
}

static rc_status add_special_ids(const cJSON *ids, int32_t *list, int *n, const char *path) {
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (!is_token_id(id) || *n == 8)
            return rc_fail(RC_ERR_FORMAT, "%s: post_processor special token ids are invalid", path);
        list[(*n)++] = (int32_t)id->valuedouble;
    }
    return RC_OK;
}

static rc_status load_post_processor(rc_tokenizer *tok, const cJSON *post, const char *path) {
    if (!post || cJSON_IsNull(post)) return RC_OK;
    const char *type = json_type(post);
    if (strcmp(type, "ByteLevel") == 0) return RC_OK; /* only touches offsets */
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *step, *steps = cJSON_GetObjectItemCaseSensitive(post, "processors");
        if (!cJSON_IsArray(steps))
            return rc_fail(RC_ERR_FORMAT, "%s: post_processor.processors must be an array, got %s", path,
                           rc_json_type_name(steps));
        cJSON_ArrayForEach(step, steps) {
            rc_status st = load_post_processor(tok, step, path);
            if (st != RC_OK) return st;
        }
        return RC_OK;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        /* single sequence: cls A sep, each given as [token, id] */
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(post, "cls");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(post, "sep");
        if (!is_token_id(cJSON_GetArrayItem(cls, 1)) || !is_token_id(cJSON_GetArrayItem(sep, 1)) ||
            tok->n_prefix == 8 || tok->n_suffix == 8)
            return rc_fail(RC_ERR_FORMAT, "%s: %s needs cls and sep as [token, id]", path, type);
        tok->prefix_ids[tok->n_prefix++] = (int32_t)cJSON_GetArrayItem(cls, 1)->valuedouble;
        tok->suffix_ids[tok->n_suffix++] = (int32_t)cJSON_GetArrayItem(sep, 1)->valuedouble;
        return RC_OK;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(post, "special_tokens");
        const cJSON *piece;
        int after_sequence = 0;
        if (!cJSON_IsArray(single))
            return rc_fail(RC_ERR_FORMAT, "%s: TemplateProcessing \"single\" must be an array, got %s", path,
                           rc_json_type_name(single));
        cJSON_ArrayForEach(piece, single) {
            const cJSON *special = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
            if (cJSON_GetObjectItemCaseSensitive(piece, "Sequence")) {
                after_sequence = 1;
                continue;
            }
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(special, "id");
            const cJSON *entry = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring) : NULL;
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
            if (!cJSON_IsArray(ids))
                return rc_fail(RC_ERR_FORMAT, "%s: TemplateProcessing special token without ids", path);
            rc_status st = after_sequence ? add_special_ids(ids, tok->suffix_ids, &tok->n_suffix, path)
                                          : add_special_ids(ids, tok->prefix_ids, &tok->n_prefix, path);
            if (st != RC_OK) return st;
        }
        return RC_OK;
    }
    return rc_fail(RC_ERR_UNSUPPORTED, "%s: post-processor '%s' is not supported", path, type);
}

static rc_status load_added_tokens(rc_tokenizer *tok, const cJSON *added, const char *path) {
    const cJSON *t;
    if (!is_array_or_absent(added))
        return rc_fail(RC_ERR_FORMAT, "%s: added_tokens must be an array, got %s", path, rc_json_type_name(added));
    cJSON_ArrayForEach(t, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(t, "content");
        if (!is_token_id(id) || !cJSON_IsString(content))
            return rc_fail(RC_ERR_FORMAT, "%s: an added_tokens entry lacks a valid id or content", path);
        rc_status st = rc_tokenizer_add_token(tok, content->valuestring, strlen(content->valuestring),
                                              (int32_t)id->valuedouble, json_bool(t, "special", 0),
                                              json_bool(t, "lstrip", 0), json_bool(t, "rstrip", 0),
                                              json_bool(t, "single_word", 0), json_bool(t, "normalized", 1));
        if (st != RC_OK) return st;
    }
    return RC_OK;
}

/* What the tokenizer class of transformers changes at load time. */
static void apply_tokenizer_class(rc_tokenizer *tok, const rc_tokenizer_config_flags *flags,
                                  int byte_level_only) {
    const char *cls = flags->tokenizer_class;
    /* GPT2TokenizerFast rebuilds a plain ByteLevel pre-tokenizer with the
     * config's add_prefix_space (default false), whatever tokenizer.json says */
    if ((!strcmp(cls, "GPT2Tokenizer") || !strcmp(cls, "GPT2TokenizerFast")) && byte_level_only)
        tok->prefix_space_stage = flags->add_prefix_space ? 0 : -1;
    /* LlamaTokenizerFast replaces the post-processor by BOS (add_bos_token,
     * default true) + text + EOS (add_eos_token, default false) */
    if (!strcmp(cls, "LlamaTokenizer") || !strcmp(cls, "LlamaTokenizerFast")) {
        tok->n_prefix = tok->n_suffix = 0;
        if (flags->add_bos_token != 0 && tok->bos_id >= 0) tok->prefix_ids[tok->n_prefix++] = tok->bos_id;
        if (flags->add_eos_token == 1 && tok->eos_id >= 0) tok->suffix_ids[tok->n_suffix++] = tok->eos_id;
    }
}

rc_status rc_tokenizer_load_tokenizer_json(rc_tokenizer *tok, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cJSON *root = NULL;
    rc_status st = rc_json_load_file(path, &root);
    if (st != RC_OK) return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rc_fail(RC_ERR_FORMAT, "%s: not a JSON object", path);
    }
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (!is_noop_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer")))
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: normalizers are not supported", path);
    else if (decoder && !cJSON_IsNull(decoder) && strcmp(json_type(decoder), "ByteLevel") != 0)
        st = rc_fail(RC_ERR_UNSUPPORTED, "%s: decoder '%s' is not ByteLevel", path, json_type(decoder));
    if (st == RC_OK) st = load_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"), path);
    if (st == RC_OK) st = load_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int byte_level_only = strcmp(json_type(pre), "ByteLevel") == 0;
    if (st == RC_OK) st = load_pre_tokenizer(tok, pre, path);
    if (st == RC_OK) st = load_post_processor(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), path);
    cJSON_Delete(root);
    /* transformers adds the special tokens named in tokenizer_config.json; the
     * post-processor, not add_bos_token, decides what encode adds */
    rc_tokenizer_config_flags flags = {0};
    if (st == RC_OK) st = rc_tokenizer_load_special_config(tok, dir, 0, &flags);
    if (st == RC_OK) apply_tokenizer_class(tok, &flags, byte_level_only);
    return st;
}
