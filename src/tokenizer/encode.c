/* Encoding text to ids: added tokens are matched first (HF matches them
 * before pre-tokenization), each stretch of text between them is split by the
 * pre-tokenizer regexes, and each piece goes through BPE. Also the pool of
 * per-thread workers that hold the mutable scratch (regex match data, word
 * cache), so a const tokenizer can be used from many threads. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

rc_status rc_id_vec_reserve(rc_id_vec *vec, size_t extra) {
    if (vec->len + extra <= vec->cap && vec->data) return RC_OK;
    size_t cap = vec->cap ? vec->cap : 64;
    while (cap < vec->len + extra) cap *= 2;
    int32_t *data = realloc(vec->data, cap * sizeof *data);
    if (!data) return rc_fail(RC_ERR_OOM, "tokenizer: cannot grow an id buffer to %zu ids", cap);
    vec->data = data;
    vec->cap = cap;
    return RC_OK;
}

/* ---- workers ---- */

static void worker_free(rc_tok_worker *w) {
    if (!w) return;
    for (int i = 0; i < RC_MAX_SPLIT_STAGES; i++) pcre2_match_data_free(w->match_data[i]);
    pcre2_match_context_free(w->match_context);
    pcre2_jit_stack_free(w->jit_stack);
    rc_word_cache_free(w->cache);
    free(w->bpe_scratch);
    free(w->prefix_buffer);
    free(w);
}

static rc_tok_worker *worker_create(const rc_tokenizer *tok) {
    rc_tok_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cache = rc_word_cache_create();
    w->match_context = pcre2_match_context_create(NULL);
    /* a bigger JIT stack than the 32 KiB default, for user regexes that
     * backtrack deeply on long inputs */
    w->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!w->cache || !w->match_context || !w->jit_stack) goto fail;
    pcre2_jit_stack_assign(w->match_context, NULL, w->jit_stack);
    for (int i = 0; i < tok->n_stages; i++) {
        w->match_data[i] = pcre2_match_data_create_from_pattern(tok->stages[i].regex, NULL);
        if (!w->match_data[i]) goto fail;
    }
    return w;
fail:
    worker_free(w);
    return NULL;
}

rc_tok_worker *rc_tokenizer_acquire_worker(const rc_tokenizer *tok) {
    /* the pool is the one mutable part of a loaded tokenizer */
    rc_tokenizer *pool = (rc_tokenizer *)tok;
    rc_tok_worker *w = NULL;
    if (mtx_lock(&pool->pool_lock) == thrd_success) {
        w = pool->free_workers;
        if (w) pool->free_workers = w->next_free;
        mtx_unlock(&pool->pool_lock);
    }
    if (!w) w = worker_create(tok);
    if (!w) rc_fail(RC_ERR_OOM, "tokenizer: cannot allocate per-thread scratch");
    return w;
}

void rc_tokenizer_release_worker(const rc_tokenizer *tok, rc_tok_worker *w) {
    rc_tokenizer *pool = (rc_tokenizer *)tok;
    if (!w) return;
    if (mtx_lock(&pool->pool_lock) == thrd_success) {
        w->next_free = pool->free_workers;
        pool->free_workers = w;
        mtx_unlock(&pool->pool_lock);
    } else {
        worker_free(w);
    }
}

void rc_tokenizer_free_workers(rc_tokenizer *tok) {
    while (tok->free_workers) {
        rc_tok_worker *w = tok->free_workers;
        tok->free_workers = w->next_free;
        worker_free(w);
    }
}

/* ---- pre-tokenization ---- */

static rc_status split_piece(const rc_tokenizer *tok, rc_tok_worker *w, int stage,
                             const unsigned char *piece, size_t len, rc_id_vec *out);

/* Where a Split's pieces are gathered: HF's behaviors only ever join a span
 * to the one right before or after it, so one pending piece is enough to
 * apply them while the matches stream by. */
typedef struct {
    const rc_tokenizer *tok;
    rc_tok_worker *w;
    int next_stage;
    rc_id_vec *out;
    const unsigned char *text;
    rc_split_behavior behavior;
    int have_pending, pending_is_match;
    size_t pending_start, pending_end;
} split_sink;

static rc_status emit(split_sink *k, size_t start, size_t end) {
    if (end == start) return RC_OK; /* HF drops empty pieces */
    return split_piece(k->tok, k->w, k->next_stage, k->text + start, end - start, k->out);
}

static rc_status flush_pending(split_sink *k) {
    if (!k->have_pending) return RC_OK;
    k->have_pending = 0;
    return emit(k, k->pending_start, k->pending_end);
}

static void hold(split_sink *k, size_t start, size_t end, int is_match) {
    k->have_pending = 1;
    k->pending_start = start;
    k->pending_end = end;
    k->pending_is_match = is_match;
}

/* One span of the text, in order: a match of the pattern or the text between. */
static rc_status take_span(split_sink *k, size_t start, size_t end, int is_match) {
    rc_status st;
    switch (k->behavior) {
    case RC_SPLIT_ISOLATED:
        return emit(k, start, end);
    case RC_SPLIT_REMOVED:
        return is_match ? RC_OK : emit(k, start, end);
    case RC_SPLIT_MERGED_WITH_PREVIOUS: /* a match after a non-match joins it */
        if (k->have_pending && is_match && !k->pending_is_match) {
            k->pending_end = end;
            k->pending_is_match = 1;
            return RC_OK;
        }
        break;
    case RC_SPLIT_MERGED_WITH_NEXT: /* a match joins the non-match after it */
        if (k->have_pending && k->pending_is_match && !is_match) {
            k->have_pending = 0;
            return emit(k, k->pending_start, end);
        }
        break;
    case RC_SPLIT_CONTIGUOUS: /* runs of matches, and of non-matches, join */
        if (k->have_pending && k->pending_is_match == is_match) {
            k->pending_end = end;
            return RC_OK;
        }
        break;
    }
    if ((st = flush_pending(k)) != RC_OK) return st;
    hold(k, start, end, is_match);
    return RC_OK;
}

static rc_status regex_failed(int rc, size_t at) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    return rc_fail(RC_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer regex failed at byte %zu: %s", at,
                   (const char *)message);
}

/* Splits piece by one stage's pattern. The matches are found as Oniguruma's
 * find_iter finds them (which HF uses): an empty match is a match, except
 * right where the previous match ended, where the search steps one character. */
static rc_status split_by_stage(const rc_tokenizer *tok, rc_tok_worker *w, int stage,
                                const unsigned char *piece, size_t len, rc_id_vec *out) {
    const rc_split_stage *split = &tok->stages[stage];
    pcre2_match_data *md = w->match_data[stage];
    const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(md);
    split_sink sink = {tok, w, stage + 1, out, piece, split->behavior, 0, 0, 0, 0};
    size_t prev_end = 0, search_from = 0;
    int have_last_match = 0;
    rc_status st;
    while (search_from <= len) {
        int rc = split->jit ? pcre2_jit_match(split->regex, piece, len, search_from, 0, md, w->match_context)
                            : pcre2_match(split->regex, piece, len, search_from, PCRE2_NO_UTF_CHECK, md,
                                          w->match_context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return regex_failed(rc, search_from);
        size_t start = ovector[0], end = ovector[1];
        if (end == start && have_last_match && end == prev_end) {
            uint32_t cp;
            search_from += search_from < len ? rc_utf8_decode(piece + search_from, len - search_from, &cp) : 1;
            continue;
        }
        if (start > prev_end && (st = take_span(&sink, prev_end, start, split->invert)) != RC_OK) return st;
        if ((st = take_span(&sink, start, end, !split->invert)) != RC_OK) return st;
        prev_end = search_from = end;
        have_last_match = 1;
    }
    if (prev_end < len && (st = take_span(&sink, prev_end, len, split->invert)) != RC_OK) return st;
    return flush_pending(&sink);
}

/* A piece with the ByteLevel prefix space put in front (in w's buffer). */
static rc_status with_prefix_space(rc_tok_worker *w, const unsigned char **piece, size_t *len) {
    if (*len + 1 > w->prefix_buffer_cap) {
        char *buf = realloc(w->prefix_buffer, *len + 1);
        if (!buf) return rc_fail(RC_ERR_OOM, "tokenizer: cannot copy %zu bytes of text", *len + 1);
        w->prefix_buffer = buf;
        w->prefix_buffer_cap = *len + 1;
    }
    w->prefix_buffer[0] = ' ';
    memcpy(w->prefix_buffer + 1, *piece, *len);
    *piece = (const unsigned char *)w->prefix_buffer;
    (*len)++;
    return RC_OK;
}

/* Runs piece through the stages from `stage` on, then BPE, appending to out. */
static rc_status split_piece(const rc_tokenizer *tok, rc_tok_worker *w, int stage,
                             const unsigned char *piece, size_t len, rc_id_vec *out) {
    if (stage == tok->prefix_space_stage && len > 0 && piece[0] != ' ') {
        /* the buffer is reused piece after piece: only one stage adds the
         * space, and everything after it is done before the next piece */
        rc_status st = with_prefix_space(w, &piece, &len);
        if (st != RC_OK) return st;
    }
    if (stage == tok->n_stages) return rc_bpe_word(tok, w, piece, len, out);
    return split_by_stage(tok, w, stage, piece, len, out);
}

static rc_status encode_plain_text(const rc_tokenizer *tok, rc_tok_worker *w,
                                   const unsigned char *text, size_t len, rc_id_vec *out) {
    if (len == 0) return RC_OK;
    return split_piece(tok, w, 0, text, len, out);
}

/* ---- added tokens ---- */

/* Whether the character right before text[at] (after: right at it) is a word
 * character, within [lo, hi): what single_word looks at. */
static int word_char_before(const rc_tokenizer *tok, const unsigned char *text, size_t lo, size_t at) {
    if (at <= lo) return 0;
    size_t p = rc_utf8_prev_start(text, at);
    uint32_t cp;
    rc_utf8_decode(text + p, at - p, &cp);
    return rc_tokenizer_is_word_char(tok, cp);
}

static int word_char_at(const rc_tokenizer *tok, const unsigned char *text, size_t at, size_t hi) {
    if (at >= hi) return 0;
    uint32_t cp;
    rc_utf8_decode(text + at, hi - at, &cp);
    return rc_tokenizer_is_word_char(tok, cp);
}

/* Leftmost-longest match of an added token of this pass in text[from..to), as
 * HF's Aho-Corasick search finds them in the pass's text [lo, to) (from is
 * where the previous match ended): sets [*start, *end) (lstrip/rstrip
 * whitespace included) and *id. A single_word token with a word character
 * touching it is no match, and the search goes on after it, as HF's does. */
static int find_added_token(const rc_tokenizer *tok, int pass, const unsigned char *text, size_t lo,
                            size_t from, size_t to, size_t *start, size_t *end, int32_t *id) {
    const unsigned char *first = tok->added_first_byte[pass];
    for (size_t i = from; i < to; i++) {
        if (!first[text[i]]) continue;
        const rc_added_token *best = NULL;
        for (size_t k = 0; k < tok->n_added; k++) {
            const rc_added_token *t = &tok->added[k];
            if (t->normalized != pass || t->len > to - i || (best && t->len <= best->len)) continue;
            if (memcmp(text + i, t->content, t->len) == 0) best = t;
        }
        if (!best) continue;
        size_t s = i, e = i + best->len;
        if (best->single_word && (word_char_before(tok, text, lo, s) || word_char_at(tok, text, e, to))) {
            i = e - 1; /* matches do not overlap: the next one starts after this */
            continue;
        }
        uint32_t cp;
        if (best->lstrip) {
            while (s > from) {
                size_t p = rc_utf8_prev_start(text, s);
                rc_utf8_decode(text + p, s - p, &cp);
                if (!rc_unicode_is_white_space(cp)) break;
                s = p;
            }
        }
        if (best->rstrip) {
            while (e < to) {
                size_t n = rc_utf8_decode(text + e, to - e, &cp);
                if (!rc_unicode_is_white_space(cp)) break;
                e += n;
            }
        }
        *start = s;
        *end = e;
        *id = best->id;
        return 1;
    }
    return 0;
}

/* Text between first-pass tokens: match the second pass (normalized tokens). */
static rc_status encode_between(const rc_tokenizer *tok, rc_tok_worker *w,
                                const unsigned char *text, size_t from, size_t to,
                                rc_id_vec *out) {
    size_t pos = from, s, e;
    int32_t id;
    rc_status st;
    while (tok->has_added[1] && pos < to && find_added_token(tok, 1, text, from, pos, to, &s, &e, &id)) {
        if ((st = encode_plain_text(tok, w, text + pos, s - pos, out)) != RC_OK) return st;
        if ((st = rc_id_vec_reserve(out, 1)) != RC_OK) return st;
        out->data[out->len++] = id;
        pos = e;
    }
    return encode_plain_text(tok, w, text + pos, to - pos, out);
}

rc_status rc_tokenizer_encode_with(const rc_tokenizer *tok, rc_tok_worker *w, const char *text,
                                   size_t len, int add_special_tokens, rc_id_vec *out) {
    char *sanitized = NULL;
    const unsigned char *bytes = (const unsigned char *)text;
    if (rc_utf8_valid_prefix(bytes, len) != len) {
        sanitized = rc_utf8_replace_invalid(bytes, len, &len);
        if (!sanitized) return rc_fail(RC_ERR_OOM, "tokenizer: cannot copy %zu bytes of text", len);
        bytes = (const unsigned char *)sanitized;
    }
    rc_status st = rc_id_vec_reserve(out, (size_t)tok->n_prefix + (size_t)tok->n_suffix + 1);
    if (st != RC_OK) goto done;
    if (add_special_tokens)
        for (int i = 0; i < tok->n_prefix; i++) out->data[out->len++] = tok->prefix_ids[i];

    size_t pos = 0, s, e;
    int32_t id;
    while (tok->has_added[0] && pos < len && find_added_token(tok, 0, bytes, 0, pos, len, &s, &e, &id)) {
        if ((st = encode_between(tok, w, bytes, pos, s, out)) != RC_OK) goto done;
        if ((st = rc_id_vec_reserve(out, 1)) != RC_OK) goto done;
        out->data[out->len++] = id;
        pos = e;
    }
    if ((st = encode_between(tok, w, bytes, pos, len, out)) != RC_OK) goto done;

    if (add_special_tokens) {
        if ((st = rc_id_vec_reserve(out, (size_t)tok->n_suffix)) != RC_OK) goto done;
        for (int i = 0; i < tok->n_suffix; i++) out->data[out->len++] = tok->suffix_ids[i];
    }
done:
    free(sanitized);
    return st;
}
