/* The public tokenizer API: loading a folder (tokenizer.json first, as
 * AutoTokenizer does, else vocab.json + merges.txt), encode, decode, and the
 * id accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "tokenizer/tokenizer_internal.h"

void rc_tokenizer_free(rc_tokenizer *tok) {
    if (!tok) return;
    rc_tokenizer_free_workers(tok);
    mtx_destroy(&tok->pool_lock);
    for (int i = 0; i < tok->n_stages; i++) pcre2_code_free(tok->stages[i].regex);
    pcre2_code_free(tok->word_char);
    rc_merge_table_free(&tok->merges);
    rc_string_map_free(&tok->vocab);
    rc_tokenizer_free_strings(tok);
    free(tok->id_to_token);
    free(tok->id_to_bytes);
    free(tok->id_to_bytes_len);
    free(tok->id_is_special);
    free(tok->added);
    free(tok);
}

rc_status rc_tokenizer_load(const char *dir, rc_tokenizer **out) {
    *out = NULL;
    if (!dir) return rc_fail(RC_ERR_INVALID_ARG, "tokenizer: no folder given");
    rc_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate");
    tok->bos_id = tok->eos_id = tok->pad_id = tok->unk_id = tok->model_unk_id = -1;
    tok->prefix_space_stage = -1;
    if (mtx_init(&tok->pool_lock, mtx_plain) != thrd_success) {
        free(tok);
        return rc_fail(RC_ERR_OOM, "tokenizer: cannot create a mutex");
    }
    char json_path[4096], vocab_path[4096];
    snprintf(json_path, sizeof json_path, "%s/tokenizer.json", dir);
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    rc_status st;
    if (rc_path_is_file(json_path)) st = rc_tokenizer_load_tokenizer_json(tok, dir);
    else if (rc_path_is_file(vocab_path)) st = rc_tokenizer_load_vocab_merges(tok, dir);
    else st = rc_fail(RC_ERR_IO, "%s: neither tokenizer.json nor vocab.json + merges.txt found", dir);
    if (st == RC_OK) st = rc_tokenizer_finish_load(tok);
    if (st != RC_OK) {
        rc_fail_context(st, "loading tokenizer %s", dir);
        rc_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return RC_OK;
}

rc_status rc_tokenizer_encode(const rc_tokenizer *tok, const char *text, size_t len,
                              int add_special_tokens, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok || (!text && len))
        return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode: NULL tokenizer or text");
    rc_tok_worker *w = rc_tokenizer_acquire_worker(tok);
    if (!w) return RC_ERR_OOM;
    rc_id_vec vec = {0};
    rc_status st = rc_id_vec_reserve(&vec, 1);
    if (st == RC_OK) st = rc_tokenizer_encode_with(tok, w, text ? text : "", len, add_special_tokens, &vec);
    rc_tokenizer_release_worker(tok, w);
    if (st != RC_OK) {
        free(vec.data);
        return st;
    }
    *ids = vec.data;
    *n_ids = vec.len;
    return RC_OK;
}

rc_status rc_tokenizer_decode(const rc_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              int skip_special, char **text, size_t *len_out) {
    *text = NULL;
    if (len_out) *len_out = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids || !tok->id_to_bytes[id])
            return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_decode: ids[%zu] = %d is not in the vocabulary (0..%d)",
                           i, id, tok->n_ids - 1);
        if (!(skip_special && tok->id_is_special[id])) total += tok->id_to_bytes_len[id];
    }
    unsigned char *bytes = malloc(total + 1);
    if (!bytes) return rc_fail(RC_ERR_OOM, "rc_tokenizer_decode: cannot allocate %zu bytes", total + 1);
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (skip_special && tok->id_is_special[id]) continue;
        memcpy(bytes + n, tok->id_to_bytes[id], tok->id_to_bytes_len[id]);
        n += tok->id_to_bytes_len[id];
    }
    bytes[n] = '\0';
    if (rc_utf8_valid_prefix(bytes, n) != n) { /* partial characters: errors="replace" */
        size_t fixed_len;
        char *fixed = rc_utf8_replace_invalid(bytes, n, &fixed_len);
        free(bytes);
        if (!fixed) return rc_fail(RC_ERR_OOM, "rc_tokenizer_decode: cannot allocate %zu bytes", n * 3 + 1);
        bytes = (unsigned char *)fixed;
        n = fixed_len;
    }
    *text = (char *)bytes;
    if (len_out) *len_out = n;
    return RC_OK;
}

int32_t rc_tokenizer_token_to_id(const rc_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    return rc_string_map_get(&tok->vocab, token, strlen(token));
}

const char *rc_tokenizer_id_to_token(const rc_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids) return NULL;
    return tok->id_to_token[id];
}

int32_t rc_tokenizer_bos_id(const rc_tokenizer *tok) { return tok->bos_id; }
int32_t rc_tokenizer_eos_id(const rc_tokenizer *tok) { return tok->eos_id; }
int32_t rc_tokenizer_pad_id(const rc_tokenizer *tok) { return tok->pad_id; }
int32_t rc_tokenizer_unk_id(const rc_tokenizer *tok) { return tok->unk_id; }
int32_t rc_tokenizer_vocab_size(const rc_tokenizer *tok) { return tok->n_ids; }

int rc_tokenizer_adds_bos(const rc_tokenizer *tok) {
    return tok->bos_id >= 0 && tok->n_prefix > 0 && tok->prefix_ids[0] == tok->bos_id;
}
