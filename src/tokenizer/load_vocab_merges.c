/* Loads a GPT2Tokenizer-style folder: vocab.json (token -> id) and merges.txt
 * (one "left right" merge per line, in rank order, after a "#version" line),
 * with the GPT-2 pre-tokenizer regex and no normalizer. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "tokenizer/tokenizer_internal.h"

static rc_status load_vocab(rc_tokenizer *tok, const char *path) {
    cJSON *vocab = NULL;
    rc_status st = rc_json_load_file(path, &vocab);
    if (st != RC_OK) return st;
    if (!cJSON_IsObject(vocab)) {
        cJSON_Delete(vocab);
        return rc_fail(RC_ERR_FORMAT, "%s: not a JSON object of token -> id", path);
    }
    st = rc_string_map_init(&tok->vocab, (size_t)cJSON_GetArraySize(vocab) + 64);
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        if (st != RC_OK) break;
        double id = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
        if (id < 0 || id >= INT32_MAX || id != (double)(int32_t)id) {
            st = rc_fail(RC_ERR_FORMAT, "%s: token '%s' has no valid integer id", path, item->string);
            break;
        }
        st = rc_tokenizer_set_token(tok, (int32_t)id, item->string, strlen(item->string));
    }
    cJSON_Delete(vocab);
    return st;
}

static rc_status load_merges(rc_tokenizer *tok, const char *path) {
    char *text;
    size_t len;
    rc_status st = rc_read_file(path, &text, &len);
    if (st != RC_OK) return st;
    st = rc_merge_table_init(&tok->merges, 65536);
    int32_t rank = 0;
    size_t line_no = 0;
    for (char *line = text; st == RC_OK && line < text + len;) {
        char *eol = memchr(line, '\n', (size_t)(text + len - line));
        size_t line_len = eol ? (size_t)(eol - line) : (size_t)(text + len - line);
        line_no++;
        if (line_len >= 8 && memcmp(line, "#version", 8) == 0) {
            /* header */
        } else {
            char *space = memchr(line, ' ', line_len);
            char *second_space = space ? memchr(space + 1, ' ', line_len - (size_t)(space + 1 - line)) : NULL;
            if (!space || second_space || space == line || space + 1 == line + line_len) {
                st = rc_fail(RC_ERR_FORMAT, "%s:%zu: expected two tokens separated by one space", path, line_no);
                break;
            }
            char where[4200];
            snprintf(where, sizeof where, "%s:%zu", path, line_no);
            st = rc_tokenizer_add_merge(tok, line, (size_t)(space - line), space + 1,
                                        line_len - (size_t)(space + 1 - line), rank++, where);
        }
        if (!eol) break;
        line = eol + 1;
    }
    free(text);
    return st;
}

rc_status rc_tokenizer_load_vocab_merges(rc_tokenizer *tok, const char *dir) {
    char vocab_path[4096], merges_path[4096];
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
    rc_status st = load_vocab(tok, vocab_path);
    if (st == RC_OK) st = load_merges(tok, merges_path);
    rc_tokenizer_config_flags flags = {0};
    if (st == RC_OK) st = rc_tokenizer_load_special_config(tok, dir, 1, &flags);
    tok->prefix_space_stage = flags.add_prefix_space ? 0 : -1;
    if (st == RC_OK)
        st = rc_split_stage_compile(&tok->stages[0], rc_gpt2_pattern, strlen(rc_gpt2_pattern),
                                    RC_SPLIT_ISOLATED, dir);
    if (st == RC_OK) tok->n_stages = 1;
    return st;
}
