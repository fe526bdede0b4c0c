/* Loading helpers shared by the two folder formats: files, the id tables,
 * added tokens, merges, the special tokens of tokenizer_config.json /
 * special_tokens_map.json / added_tokens.json, and the tables derived once
 * everything is read. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "tokenizer/tokenizer_internal.h"

/* ---- string storage that never moves ---- */

struct rc_string_block {
    struct rc_string_block *next;
    size_t used, cap;
    char data[];
};

char *rc_tokenizer_intern(rc_tokenizer *tok, const char *s, size_t len) {
    struct rc_string_block *b = tok->strings;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > (1u << 20) ? len + 1 : (1u << 20);
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = tok->strings;
        b->used = 0;
        b->cap = cap;
        tok->strings = b;
    }
    char *copy = b->data + b->used;
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    b->used += len + 1;
    return copy;
}

void rc_tokenizer_free_strings(rc_tokenizer *tok) {
    while (tok->strings) {
        struct rc_string_block *b = tok->strings;
        tok->strings = b->next;
        free(b);
    }
}

/* ---- ids and tokens ---- */

/* Largest token id a file may use: real vocabularies stay below 2^20 ids,
 * and a bound keeps one absurd id in a tiny file from allocating gigabytes. */
enum { RC_TOKENIZER_MAX_ID = (1 << 22) - 1 };

static rc_status grow_ids(rc_tokenizer *tok, int32_t n_ids) {
    if (n_ids <= tok->n_ids) return RC_OK;
    if (n_ids > tok->cap_ids) { /* doubling: a vocabulary read id by id copies O(n) in all */
        int32_t cap = tok->cap_ids > 0 ? tok->cap_ids : 1024;
        while (cap < n_ids) cap = cap > RC_TOKENIZER_MAX_ID / 2 ? RC_TOKENIZER_MAX_ID + 1 : cap * 2;
        char **table = realloc(tok->id_to_token, (size_t)cap * sizeof *table);
        if (!table) return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate %d token slots", cap);
        tok->id_to_token = table;
        tok->cap_ids = cap;
    }
    for (int32_t i = tok->n_ids; i < n_ids; i++) tok->id_to_token[i] = NULL;
    tok->n_ids = n_ids;
    return RC_OK;
}

rc_status rc_tokenizer_set_token(rc_tokenizer *tok, int32_t id, const char *s, size_t len) {
    if (id < 0 || id > RC_TOKENIZER_MAX_ID)
        return rc_fail(RC_ERR_FORMAT, "tokenizer: token id %d is out of range [0, %d]", id,
                       RC_TOKENIZER_MAX_ID);
    rc_status st = grow_ids(tok, id + 1);
    if (st != RC_OK) return st;
    char *copy = rc_tokenizer_intern(tok, s, len);
    if (!copy) return rc_fail(RC_ERR_OOM, "tokenizer: cannot store a token of %zu bytes", len);
    tok->id_to_token[id] = copy;
    return rc_string_map_put(&tok->vocab, s, len, id);
}

rc_status rc_tokenizer_add_token(rc_tokenizer *tok, const char *content, size_t len, int32_t id,
                                 int special, int lstrip, int rstrip, int single_word,
                                 int normalized) {
    if (len == 0) return rc_fail(RC_ERR_FORMAT, "tokenizer: an added token is empty");
    for (size_t i = 0; i < tok->n_added; i++) {
        rc_added_token *t = &tok->added[i];
        if (t->len == len && memcmp(t->content, content, len) == 0) {
            /* already added (e.g. bos == eos): a special mention makes it special */
            t->special |= special;
            return RC_OK;
        }
    }
    if (id < 0) id = rc_string_map_get(&tok->vocab, content, len);
    if (id < 0) id = tok->n_ids; /* not in the vocabulary: appended, as HF does */
    if (id >= tok->n_ids || !tok->id_to_token[id] || strlen(tok->id_to_token[id]) != len ||
        memcmp(tok->id_to_token[id], content, len) != 0) {
        rc_status st = rc_tokenizer_set_token(tok, id, content, len);
        if (st != RC_OK) return st;
    }
    rc_added_token *added = realloc(tok->added, (tok->n_added + 1) * sizeof *added);
    if (!added) return rc_fail(RC_ERR_OOM, "tokenizer: cannot grow the added-token table");
    tok->added = added;
    char *copy = rc_tokenizer_intern(tok, content, len);
    if (!copy) return rc_fail(RC_ERR_OOM, "tokenizer: cannot store an added token");
    added[tok->n_added++] = (rc_added_token){copy, len, id, special != 0, lstrip != 0,
                                             rstrip != 0, single_word != 0, normalized != 0};
    return RC_OK;
}

rc_status rc_tokenizer_add_merge(rc_tokenizer *tok, const char *left, size_t left_len,
                                 const char *right, size_t right_len, int32_t rank,
                                 const char *where) {
    int32_t left_id = rc_string_map_get(&tok->vocab, left, left_len);
    int32_t right_id = rc_string_map_get(&tok->vocab, right, right_len);
    if (left_id < 0 || right_id < 0)
        return rc_fail(RC_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') uses a token missing from the vocabulary",
                       where, rank + 1, (int)left_len, left, (int)right_len, right);
    char stack_buf[256];
    char *joined = left_len + right_len <= sizeof stack_buf ? stack_buf : malloc(left_len + right_len);
    if (!joined) return rc_fail(RC_ERR_OOM, "%s: cannot join merge %d", where, rank + 1);
    memcpy(joined, left, left_len);
    memcpy(joined + left_len, right, right_len);
    int32_t merged_id = rc_string_map_get(&tok->vocab, joined, left_len + right_len);
    if (joined != stack_buf) free(joined);
    if (merged_id < 0)
        return rc_fail(RC_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') makes a token missing from the vocabulary",
                       where, rank + 1, (int)left_len, left, (int)right_len, right);
    return rc_merge_table_put(&tok->merges, left_id, right_id, rank, merged_id);
}

/* ---- tokenizer_config.json and friends ---- */

typedef struct {
    const char *content;
    int lstrip, rstrip, normalized, single_word, special;
} token_spec;

/* A boolean flag of a token or config object: absent or null gives fallback;
 * any other non-boolean is an error (returns 0), not a silent default. */
static int json_flag(const cJSON *obj, const char *name, int fallback, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = fallback;
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsBool(v)) return 0;
    *out = cJSON_IsTrue(v);
    return 1;
}

/* A token given as "text" or as {"content": "text", "lstrip": ..., ...}
 * with boolean flags; 0 when it is neither. */
static int read_token_spec(const cJSON *v, token_spec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->normalized = 1; /* transformers' default for special tokens of a slow tokenizer */
    spec->special = 1;
    if (cJSON_IsString(v)) {
        spec->content = v->valuestring;
        return 1;
    }
    if (!cJSON_IsObject(v)) return 0;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(content)) return 0;
    spec->content = content->valuestring;
    return json_flag(v, "lstrip", 0, &spec->lstrip) && json_flag(v, "rstrip", 0, &spec->rstrip) &&
           json_flag(v, "normalized", 1, &spec->normalized) &&
           json_flag(v, "single_word", 0, &spec->single_word) &&
           json_flag(v, "special", 1, &spec->special);
}

static rc_status add_spec(rc_tokenizer *tok, const token_spec *spec, int32_t id) {
    return rc_tokenizer_add_token(tok, spec->content, strlen(spec->content), id, spec->special,
                                  spec->lstrip, spec->rstrip, spec->single_word, spec->normalized);
}

/* An absent file is no error: *out stays NULL. */
static rc_status parse_json_file(const char *path, cJSON **out) {
    *out = NULL;
    if (!rc_path_is_file(path)) return RC_OK;
    return rc_json_load_file(path, out);
}

static const char *const special_names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                            "pad_token", "cls_token", "mask_token"};
enum { N_SPECIAL_NAMES = sizeof special_names / sizeof special_names[0] };

rc_status rc_tokenizer_load_special_config(rc_tokenizer *tok, const char *dir,
                                           int use_add_bos_token,
                                           rc_tokenizer_config_flags *flags) {
    char config_path[4096], map_path[4096], added_path[4096];
    snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", dir);
    snprintf(map_path, sizeof map_path, "%s/special_tokens_map.json", dir);
    snprintf(added_path, sizeof added_path, "%s/added_tokens.json", dir);
    cJSON *config = NULL, *map = NULL, *added = NULL;
    rc_status st = parse_json_file(config_path, &config);
    if (st == RC_OK) st = parse_json_file(map_path, &map);
    if (st == RC_OK) st = parse_json_file(added_path, &added);
    if (st != RC_OK) goto done;
    if ((config && !cJSON_IsObject(config)) || (map && !cJSON_IsObject(map)) ||
        (added && !cJSON_IsObject(added))) {
        st = rc_fail(RC_ERR_FORMAT, "%s: tokenizer_config.json, special_tokens_map.json and "
                     "added_tokens.json must hold JSON objects", dir);
        goto done;
    }

    /* 1. tokens with fixed ids: added_tokens_decoder, then added_tokens.json */
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(config, "added_tokens_decoder");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(map, "additional_special_tokens");
    if (!extra) extra = cJSON_GetObjectItemCaseSensitive(config, "additional_special_tokens");
    const cJSON *item;
    if (decoder && !cJSON_IsNull(decoder) && !cJSON_IsObject(decoder)) {
        st = rc_fail(RC_ERR_FORMAT, "%s: \"added_tokens_decoder\" must be an object {id: {\"content\": ...}}, got %s",
                     config_path, rc_json_type_name(decoder));
        goto done;
    }
    if (extra && !cJSON_IsNull(extra) && !cJSON_IsArray(extra)) {
        st = rc_fail(RC_ERR_FORMAT, "%s: \"additional_special_tokens\" must be an array, got %s", dir,
                     rc_json_type_name(extra));
        goto done;
    }
    cJSON_ArrayForEach(item, decoder) {
        char *end;
        long id = strtol(item->string, &end, 10);
        token_spec spec;
        if (end == item->string || *end || id < 0 || id >= INT32_MAX || !read_token_spec(item, &spec)) {
            st = rc_fail(RC_ERR_FORMAT, "%s: added_tokens_decoder entry '%s' is not {id: {\"content\": ...}} "
                         "with boolean flags",
                         config_path, item->string);
            goto done;
        }
        if ((st = add_spec(tok, &spec, (int32_t)id)) != RC_OK) goto done;
    }
    cJSON_ArrayForEach(item, added) {
        if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0 && item->valuedouble < INT32_MAX) ||
            item->valuedouble != (double)(int32_t)item->valuedouble) {
            st = rc_fail(RC_ERR_FORMAT, "%s: the id of '%s' is not a valid token id", added_path, item->string);
            goto done;
        }
        st = rc_tokenizer_add_token(tok, item->string, strlen(item->string), (int32_t)item->valuedouble,
                                    0, 0, 0, 0, 1);
        if (st != RC_OK) goto done;
    }

    /* 2. the named special tokens (special_tokens_map.json wins over the config) */
    int32_t *named_ids[N_SPECIAL_NAMES] = {&tok->bos_id, &tok->eos_id, &tok->unk_id, NULL,
                                           &tok->pad_id, NULL, NULL};
    for (int k = 0; k < N_SPECIAL_NAMES; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(map, special_names[k]);
        if (!v || cJSON_IsNull(v)) v = cJSON_GetObjectItemCaseSensitive(config, special_names[k]);
        if (!v || cJSON_IsNull(v)) continue;
        token_spec spec;
        if (!read_token_spec(v, &spec)) {
            st = rc_fail(RC_ERR_FORMAT, "%s: %s is neither a string nor {\"content\": ...}", dir, special_names[k]);
            goto done;
        }
        spec.special = 1;
        if ((st = add_spec(tok, &spec, -1)) != RC_OK) goto done;
        if (named_ids[k]) *named_ids[k] = rc_string_map_get(&tok->vocab, spec.content, strlen(spec.content));
    }
    cJSON_ArrayForEach(item, extra) {
        token_spec spec;
        if (!read_token_spec(item, &spec)) {
            st = rc_fail(RC_ERR_FORMAT, "%s: an additional_special_tokens entry is not a token", dir);
            goto done;
        }
        spec.special = 1;
        if ((st = add_spec(tok, &spec, -1)) != RC_OK) goto done;
    }

    /* 3. flags */
    int add_bos = 0, prefix_space = 0;
    if (!json_flag(config, "add_bos_token", 0, &add_bos) ||
        !json_flag(config, "add_prefix_space", 0, &prefix_space)) {
        st = rc_fail(RC_ERR_FORMAT, "%s: \"add_bos_token\" and \"add_prefix_space\" must be true or false",
                     config_path);
        goto done;
    }
    if (use_add_bos_token && add_bos) {
        if (tok->bos_id < 0) {
            st = rc_fail(RC_ERR_FORMAT, "%s: add_bos_token is true but there is no bos_token", config_path);
            goto done;
        }
        tok->prefix_ids[0] = tok->bos_id;
        tok->n_prefix = 1;
    }
    if (flags) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(config, "tokenizer_class");
        if (cls && !cJSON_IsNull(cls) && !cJSON_IsString(cls)) {
            st = rc_fail(RC_ERR_FORMAT, "%s: \"tokenizer_class\" must be a string, got %s", config_path,
                         rc_json_type_name(cls));
            goto done;
        }
        flags->add_prefix_space = prefix_space;
        /* -1: absent (the tokenizer class decides) */
        if (!json_flag(config, "add_bos_token", -1, &flags->add_bos_token) ||
            !json_flag(config, "add_eos_token", -1, &flags->add_eos_token)) {
            st = rc_fail(RC_ERR_FORMAT, "%s: \"add_bos_token\" and \"add_eos_token\" must be true or "
                         "false", config_path);
            goto done;
        }
        snprintf(flags->tokenizer_class, sizeof flags->tokenizer_class, "%s",
                 cJSON_IsString(cls) ? cls->valuestring : "");
    }
done:
    cJSON_Delete(config);
    cJSON_Delete(map);
    cJSON_Delete(added);
    return st;
}

/* ---- derived tables ---- */

/* The bytes decoding a token yields: HF's ByteLevel decoder maps each
 * character back to its byte when every character of the token is one of the
 * 256 byte characters, and otherwise keeps the token's own UTF-8. */
static rc_status set_decoded_bytes(rc_tokenizer *tok, int32_t id) {
    const char *s = tok->id_to_token[id];
    size_t len = strlen(s), n = 0;
    /* decoding never lengthens a token, so convert a copy in place */
    char *out = rc_tokenizer_intern(tok, s, len);
    if (!out) return rc_fail(RC_ERR_OOM, "tokenizer: cannot store token %d", id);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += rc_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        int b = rc_codepoint_to_byte(cp);
        if (b < 0) { /* not a byte-level token: keep its UTF-8 as is */
            n = len;
            memcpy(out, s, len);
            break;
        }
        out[n++] = (char)b;
    }
    tok->id_to_bytes[id] = out;
    tok->id_to_bytes_len[id] = (uint32_t)n;
    return RC_OK;
}

rc_status rc_tokenizer_finish_load(rc_tokenizer *tok) {
    if (tok->n_ids <= 0) return rc_fail(RC_ERR_FORMAT, "tokenizer: the vocabulary is empty");
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t n = rc_utf8_encode(rc_byte_to_codepoint((unsigned char)b), s);
        tok->byte_ids[b] = rc_string_map_get(&tok->vocab, s, n);
    }
    tok->id_to_bytes = calloc((size_t)tok->n_ids, sizeof *tok->id_to_bytes);
    tok->id_to_bytes_len = calloc((size_t)tok->n_ids, sizeof *tok->id_to_bytes_len);
    tok->id_is_special = calloc((size_t)tok->n_ids, 1);
    if (!tok->id_to_bytes || !tok->id_to_bytes_len || !tok->id_is_special)
        return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate tables for %d ids", tok->n_ids);
    for (int32_t id = 0; id < tok->n_ids; id++) {
        if (!tok->id_to_token[id]) continue;
        rc_status st = set_decoded_bytes(tok, id);
        if (st != RC_OK) return st;
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        const rc_added_token *t = &tok->added[i];
        if (t->special) tok->id_is_special[t->id] = 1;
        int pass = t->normalized ? 1 : 0;
        tok->has_added[pass] = 1;
        tok->added_first_byte[pass][(unsigned char)t->content[0]] = 1;
        if (t->single_word && !tok->word_char) {
            rc_status st = rc_tokenizer_compile_word_char(tok);
            if (st != RC_OK) return st;
        }
    }
    return RC_OK;
}
