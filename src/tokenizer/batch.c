/* Batch encoding: texts are encoded in parallel (OpenMP, one worker per
 * thread), truncated to max_length the way HF does (special tokens kept, the
 * text cut from the chosen side), and padded into the [B, T] id and mask
 * arrays the model consumes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tokenizer/tokenizer_internal.h"

rc_batch_options rc_batch_options_default(void) {
    rc_batch_options opts;
    memset(&opts, 0, sizeof opts);
    opts.add_special_tokens = 1;
    opts.truncation_side = RC_SIDE_RIGHT;
    opts.padding_side = RC_SIDE_RIGHT;
    return opts;
}

void rc_token_batch_free(rc_token_batch *batch) {
    if (!batch) return;
    free(batch->ids);
    free(batch->mask);
    free(batch->lengths);
    memset(batch, 0, sizeof *batch);
}

typedef struct {
    rc_status status;
    char message[1024];
} first_error;

static void record_error(first_error *err, rc_status st, size_t text_index) {
#ifdef _OPENMP
#pragma omp critical(rc_tokenizer_batch_error)
#endif
    if (err->status == RC_OK) {
        err->status = st;
        if (text_index == SIZE_MAX) snprintf(err->message, sizeof err->message, "%s", rc_last_error());
        else snprintf(err->message, sizeof err->message, "text %zu: %s", text_index, rc_last_error());
    }
}

static void encode_row(const rc_tokenizer *tok, const char *const *texts, const size_t *lens,
                       size_t i, int add_special_tokens, rc_id_vec *rows, rc_tok_worker *w,
                       first_error *err) {
    size_t len = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
    rc_status st = RC_OK;
    if (!texts[i] && len) st = rc_fail(RC_ERR_INVALID_ARG, "texts[%zu] is NULL", i);
    if (st == RC_OK) st = rc_id_vec_reserve(&rows[i], 1);
    if (st == RC_OK)
        st = rc_tokenizer_encode_with(tok, w, texts[i] ? texts[i] : "", len, add_special_tokens, &rows[i]);
    if (st != RC_OK) record_error(err, st, i);
}

/* Encodes every text into rows[i]; on failure returns the first error (with
 * the message moved to the calling thread's error slot). */
static rc_status encode_rows(const rc_tokenizer *tok, const char *const *texts, const size_t *lens,
                             size_t n_texts, int add_special_tokens, int n_threads, rc_id_vec *rows,
                             const char *caller) {
    first_error err = {RC_OK, {0}};
#ifdef _OPENMP
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if ((size_t)n_threads > n_texts) n_threads = n_texts ? (int)n_texts : 1;
#pragma omp parallel num_threads(n_threads)
    {
        rc_tok_worker *w = rc_tokenizer_acquire_worker(tok);
        if (!w) record_error(&err, RC_ERR_OOM, SIZE_MAX);
        /* texts differ a lot in length: hand them out in small chunks */
#pragma omp for schedule(dynamic, 8)
        for (size_t i = 0; i < n_texts; i++)
            if (w) encode_row(tok, texts, lens, i, add_special_tokens, rows, w, &err);
        rc_tokenizer_release_worker(tok, w);
    }
#else
    (void)n_threads;
    rc_tok_worker *w = rc_tokenizer_acquire_worker(tok);
    if (!w) record_error(&err, RC_ERR_OOM, SIZE_MAX);
    for (size_t i = 0; w && i < n_texts && err.status == RC_OK; i++)
        encode_row(tok, texts, lens, i, add_special_tokens, rows, w, &err);
    rc_tokenizer_release_worker(tok, w);
#endif
    if (err.status != RC_OK) return rc_fail(err.status, "%s: %s", caller, err.message);
    return RC_OK;
}

void rc_token_lists_free(rc_token_lists *lists) {
    if (!lists) return;
    free(lists->ids);
    free(lists->offsets);
    memset(lists, 0, sizeof *lists);
}

rc_status rc_tokenizer_encode_lists(const rc_tokenizer *tok, const char *const *texts,
                                    const size_t *lens, size_t n_texts, int add_special_tokens,
                                    int n_threads, rc_token_lists *out) {
    memset(out, 0, sizeof *out);
    if (!tok || (!texts && n_texts))
        return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode_lists: NULL tokenizer or texts");
    rc_id_vec *rows = calloc(n_texts ? n_texts : 1, sizeof *rows);
    out->offsets = malloc((n_texts + 1) * sizeof *out->offsets);
    rc_status st = RC_OK;
    if (!rows || !out->offsets) {
        st = rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_lists: cannot allocate %zu rows", n_texts);
        goto done;
    }
    st = encode_rows(tok, texts, lens, n_texts, add_special_tokens, n_threads, rows,
                     "rc_tokenizer_encode_lists");
    if (st != RC_OK) goto done;
    size_t total = 0;
    for (size_t i = 0; i < n_texts; i++) {
        out->offsets[i] = total;
        total += rows[i].len;
    }
    out->offsets[n_texts] = total;
    out->ids = malloc((total ? total : 1) * sizeof *out->ids);
    if (!out->ids) {
        st = rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_lists: cannot allocate %zu ids", total);
        goto done;
    }
    for (size_t i = 0; i < n_texts; i++)
        memcpy(out->ids + out->offsets[i], rows[i].data, rows[i].len * sizeof *out->ids);
    out->count = n_texts;
done:
    if (rows)
        for (size_t i = 0; i < n_texts; i++) free(rows[i].data);
    free(rows);
    if (st != RC_OK) rc_token_lists_free(out);
    return st;
}

rc_status rc_tokenizer_encode_batch(const rc_tokenizer *tok, const char *const *texts,
                                    const size_t *lens, size_t n_texts,
                                    const rc_batch_options *opts, rc_token_batch *out) {
    memset(out, 0, sizeof *out);
    rc_batch_options o = opts ? *opts : rc_batch_options_default();
    if (!tok || (!texts && n_texts))
        return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode_batch: NULL tokenizer or texts");
    size_t n_special = o.add_special_tokens ? (size_t)(tok->n_prefix + tok->n_suffix) : 0;
    if (o.max_length && o.max_length < n_special)
        return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode_batch: max_length %zu leaves no room "
                       "for the %zu special tokens", o.max_length, n_special);
    if (o.pad_to_max_length && !o.max_length)
        return rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode_batch: pad_to_max_length needs max_length");

    rc_id_vec *rows = calloc(n_texts ? n_texts : 1, sizeof *rows);
    if (!rows) return rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_batch: cannot allocate %zu rows", n_texts);
    rc_status st = encode_rows(tok, texts, lens, n_texts, 0, o.n_threads, rows,
                               "rc_tokenizer_encode_batch");
    if (st != RC_OK) goto done;

    /* truncation: HF keeps the special tokens and cuts the text */
    size_t longest = 0;
    out->lengths = malloc((n_texts ? n_texts : 1) * sizeof *out->lengths);
    if (!out->lengths) {
        st = rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_batch: cannot allocate lengths");
        goto done;
    }
    for (size_t i = 0; i < n_texts; i++) {
        if (o.max_length && rows[i].len + n_special > o.max_length) {
            size_t keep = o.max_length - n_special;
            if (o.truncation_side == RC_SIDE_LEFT)
                memmove(rows[i].data, rows[i].data + rows[i].len - keep, keep * sizeof *rows[i].data);
            rows[i].len = keep;
            out->n_truncated++;
        }
        out->lengths[i] = rows[i].len + n_special;
        if (out->lengths[i] > longest) longest = out->lengths[i];
    }
    size_t T = o.pad_to_max_length ? o.max_length : longest;
    int32_t pad = tok->pad_id;
    for (size_t i = 0; i < n_texts; i++) {
        if (out->lengths[i] < T && pad < 0) {
            st = rc_fail(RC_ERR_INVALID_ARG, "rc_tokenizer_encode_batch: text %zu needs padding (%zu < %zu ids) "
                         "but the tokenizer has no pad token", i, out->lengths[i], T);
            goto done;
        }
    }
    if (n_texts && T > SIZE_MAX / sizeof(int32_t) / n_texts) {
        st = rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_batch: %zu x %zu ids do not fit in memory", n_texts, T);
        goto done;
    }
    size_t cells = n_texts * T > 0 ? n_texts * T : 1;
    out->ids = malloc(cells * sizeof *out->ids);
    out->mask = malloc(cells * sizeof *out->mask);
    if (!out->ids || !out->mask) {
        st = rc_fail(RC_ERR_OOM, "rc_tokenizer_encode_batch: cannot allocate %zu x %zu ids", n_texts, T);
        goto done;
    }
    for (size_t i = 0; i < n_texts; i++) {
        int32_t *row = out->ids + i * T, *mask = out->mask + i * T;
        size_t n = out->lengths[i], start = o.padding_side == RC_SIDE_LEFT ? T - n : 0;
        for (size_t t = 0; t < T; t++) {
            row[t] = pad;
            mask[t] = t >= start && t < start + n;
        }
        int32_t *dst = row + start;
        if (o.add_special_tokens)
            for (int k = 0; k < tok->n_prefix; k++) *dst++ = tok->prefix_ids[k];
        memcpy(dst, rows[i].data, rows[i].len * sizeof *dst);
        dst += rows[i].len;
        if (o.add_special_tokens)
            for (int k = 0; k < tok->n_suffix; k++) *dst++ = tok->suffix_ids[k];
    }
    out->batch = n_texts;
    out->seq_len = T;
done:
    for (size_t i = 0; i < n_texts; i++) free(rows[i].data);
    free(rows);
    if (st != RC_OK) rc_token_batch_free(out);
    return st;
}
