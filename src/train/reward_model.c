/* A reward-model folder opened for scoring: model, tokenizer, settings, and
 * batched forward passes. */
#include <stdlib.h>
#include <string.h>

#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"

rc_status rc_reward_model_open(const char *dir, const char *backend, int device, int batch_rows,
                               rc_reward_model *rm) {
    memset(rm, 0, sizeof *rm);
    rm->batch_rows = batch_rows > 0 ? batch_rows : 16;
    rc_status st = rc_reward_meta_load(dir, &rm->meta);
    if (st == RC_OK) st = rc_tokenizer_load(dir, &rm->tokenizer);
    if (st == RC_OK) st = rc_encode_policy_check(&rm->meta.policy, rm->tokenizer);
    if (st == RC_OK) st = rc_backend_create(backend, device, &rm->backend);
    if (st == RC_OK) st = rc_model_load(dir, rm->backend, 0, &rm->model, NULL);
    const size_t T = rm->meta.policy.max_length;
    if (st == RC_OK) st = rc_model_reserve(rm->model, rm->batch_rows, (int)T, 0);
    if (st == RC_OK) {
        rm->ids = malloc((size_t)rm->batch_rows * T * sizeof *rm->ids);
        rm->mask = malloc((size_t)rm->batch_rows * T * sizeof *rm->mask);
        if (!rm->ids || !rm->mask) st = rc_fail(RC_ERR_OOM, "cannot allocate a scoring batch");
    }
    if (st != RC_OK) {
        rc_status keep = rc_fail_context(st, "opening reward model %s", dir);
        rc_reward_model_close(rm);
        return keep;
    }
    return RC_OK;
}

void rc_reward_model_close(rc_reward_model *rm) {
    rc_model_free(rm->model);
    rc_tokenizer_free(rm->tokenizer);
    rc_backend_destroy(rm->backend);
    free(rm->ids);
    free(rm->mask);
    memset(rm, 0, sizeof *rm);
}

typedef struct {
    size_t len, index;
} by_length;

static int compare_length(const void *a, const void *b) {
    const by_length *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Batches are cut from the sequences sorted by length, so a batch pads little
 * (scoring texts in arrival order pads each batch to its longest). */
rc_status rc_reward_model_score(rc_reward_model *rm, const int32_t *const *seqs, const size_t *lens,
                                size_t n, float *rewards) {
    int32_t pad = (int32_t)rc_model_config(rm->model)->pad_token_id;
    for (size_t i = 0; i < n; i++)
        if (lens[i] == 0 || lens[i] > rm->meta.policy.max_length)
            return rc_fail(RC_ERR_INVALID_ARG, "sequence %zu has %zu tokens (1..%zu allowed)", i,
                           lens[i], rm->meta.policy.max_length);
    const size_t rows_max = (size_t)rm->batch_rows;
    by_length *order = malloc((n ? n : 1) * sizeof *order);
    const int32_t **batch_seqs = malloc(rows_max * sizeof *batch_seqs);
    size_t *batch_lens = malloc(rows_max * sizeof *batch_lens);
    float *batch_rewards = malloc(rows_max * sizeof *batch_rewards);
    rc_status st = order && batch_seqs && batch_lens && batch_rewards
                       ? RC_OK
                       : rc_fail(RC_ERR_OOM, "cannot order %zu sequences", n);
    for (size_t i = 0; i < n && st == RC_OK; i++) order[i] = (by_length){lens[i], i};
    if (st == RC_OK) qsort(order, n, sizeof *order, compare_length);
    for (size_t start = 0; start < n && st == RC_OK; start += rows_max) {
        int rows = (int)(n - start < rows_max ? n - start : rows_max);
        for (int i = 0; i < rows; i++) {
            batch_seqs[i] = seqs[order[start + i].index];
            batch_lens[i] = order[start + i].len;
        }
        int T = rc_pad_batch(batch_seqs, batch_lens, rows, pad, rm->ids, rm->mask);
        st = rc_model_forward(rm->model, rm->ids, rm->mask, rows, T, batch_rewards);
        for (int i = 0; i < rows && st == RC_OK; i++) rewards[order[start + i].index] = batch_rewards[i];
    }
    free(order);
    free(batch_seqs);
    free(batch_lens);
    free(batch_rewards);
    return st;
}

rc_status rc_reward_model_score_texts(rc_reward_model *rm, const char *const *prompts,
                                      const char *const *responses, size_t n, float *rewards,
                                      rc_encode_counts *counts, rc_encode_outcome *outcomes) {
    int32_t **seqs = calloc(n ? n : 1, sizeof *seqs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    rc_status st = seqs && lens ? RC_OK : rc_fail(RC_ERR_OOM, "cannot allocate %zu sequences", n);
    if (counts) memset(counts, 0, sizeof *counts);
    for (size_t i = 0; i < n && st == RC_OK; i++) {
        rc_encode_outcome outcome;
        st = rc_encode_sequence(rm->tokenizer, &rm->meta.policy, prompts ? prompts[i] : "",
                                responses[i], &seqs[i], &lens[i], &outcome);
        if (st != RC_OK) break;
        if (outcome == RC_ENCODED_DROPPED) {
            /* scoring never drops: a too-long text is truncated instead */
            rc_encode_policy truncating = rm->meta.policy;
            truncating.overflow = RC_OVERFLOW_TRUNCATE;
            st = rc_encode_sequence(rm->tokenizer, &truncating, prompts ? prompts[i] : "",
                                    responses[i], &seqs[i], &lens[i], &outcome);
        }
        if (outcomes) outcomes[i] = outcome;
        if (counts) {
            counts->sequences++;
            counts->prompt_truncated += outcome == RC_ENCODED_PROMPT_TRUNCATED;
            counts->response_truncated += outcome == RC_ENCODED_RESPONSE_TRUNCATED;
        }
    }
    if (st == RC_OK) st = rc_reward_model_score(rm, (const int32_t *const *)seqs, lens, n, rewards);
    for (size_t i = 0; seqs && i < n; i++) free(seqs[i]);
    free(seqs);
    free(lens);
    return st;
}
