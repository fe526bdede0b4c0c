/* A reward-model folder opened for scoring: model, tokenizer, settings, and
 * batched forward passes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"

rc_status rc_reward_model_open(const char *dir, const char *backend, int device, int batch_rows,
                               rc_reward_model *rm) {
    memset(rm, 0, sizeof *rm);
    rm->batch_rows = batch_rows > 0 ? batch_rows : 16;
    rm->share_prefix = 1;
    rc_status st = rc_reward_meta_load(dir, &rm->meta);
    if (st == RC_OK) st = rc_tokenizer_load(dir, &rm->tokenizer);
    if (st == RC_OK) st = rc_encode_policy_check(&rm->meta.policy, rm->tokenizer);
    if (st == RC_OK && rm->meta.chat) st = rc_chat_template_load(dir, &rm->chat);
    if (st == RC_OK) st = rc_backend_create(backend, device, &rm->backend);
    rc_load_report report;
    if (st == RC_OK) st = rc_model_load(dir, rm->backend, 0, &rm->model, &report);
    if (st == RC_OK && report.score_initialised)
        st = rc_fail(RC_ERR_FORMAT, "%s has no score.weight (the reward head): it is a base model, not a "
                     "reward model; train it first (rewardc train) or create one with rewardc init", dir);
    const size_t T = rm->meta.policy.max_length;
    if (st == RC_OK) st = rc_model_reserve(rm->model, rm->batch_rows, (int)T, 0);
    if (st == RC_OK) {
        rm->ids = malloc((size_t)rm->batch_rows * T * sizeof *rm->ids);
        rm->mask = malloc((size_t)rm->batch_rows * T * sizeof *rm->mask);
        rm->pos = malloc((size_t)rm->batch_rows * T * sizeof *rm->pos);
        rm->score_at = malloc((size_t)rm->batch_rows * sizeof *rm->score_at);
        if (!rm->ids || !rm->mask || !rm->pos || !rm->score_at)
            st = rc_fail(RC_ERR_OOM, "cannot allocate a scoring batch");
    }
    if (st != RC_OK) {
        rc_status keep = rc_fail_context(st, "opening reward model %s", dir);
        rc_reward_model_close(rm);
        return keep;
    }
    return RC_OK;
}

void rc_reward_model_close(rc_reward_model *rm) {
    rc_chat_template_free(rm->chat);
    rc_model_free(rm->model);
    rc_tokenizer_free(rm->tokenizer);
    rc_backend_destroy(rm->backend);
    free(rm->ids);
    free(rm->mask);
    free(rm->pos);
    free(rm->score_at);
    memset(rm, 0, sizeof *rm);
}

typedef struct {
    const int32_t *seq;
    size_t len, index;
} sequence_ref;

/* Token order (a prefix before its extensions), so that sequences sharing a
 * beginning end up next to each other. */
static int compare_tokens(const void *a, const void *b) {
    const sequence_ref *x = a, *y = b;
    const size_t common = x->len < y->len ? x->len : y->len;
    for (size_t t = 0; t < common; t++)
        if (x->seq[t] != y->seq[t]) return x->seq[t] < y->seq[t] ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* One row of a scoring batch: the sequences order[first .. first + count)
 * sharing their first `prefix` tokens, `length` slots in all. */
typedef struct {
    size_t first, prefix, length;
    int count;
} score_row;

static int compare_row_length(const void *a, const void *b) {
    const score_row *x = a, *y = b;
    if (x->length != y->length) return x->length < y->length ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Greedy over token order: a row takes the next sequence while the packed row
 * costs fewer FLOPs than that sequence in a row of its own (the prefix shared
 * by all shrinks as the row grows, and longer rows cost more attention), fits
 * the reservation (max_T slots) and keeps at most max_scores scores. */
static size_t group_rows(const rc_model_config *cfg, const sequence_ref *order, size_t n,
                         int share, int max_T, int max_scores, score_row *rows) {
    size_t n_rows = 0;
    for (size_t i = 0; i < n; i += (size_t)rows[n_rows - 1].count) {
        score_row row = {.first = i, .prefix = 0, .length = order[i].len, .count = 1};
        size_t total = order[i].len; /* tokens of the members */
        while (share && i + (size_t)row.count < n && row.count < max_scores) {
            const sequence_ref *last = &order[i + (size_t)row.count - 1];
            const sequence_ref *next = last + 1;
            size_t prefix = rc_shared_prefix(last->seq, last->len, next->seq, next->len);
            if (row.count > 1 && row.prefix < prefix) prefix = row.prefix;
            if (prefix == 0) break;
            const size_t length = total + next->len - (size_t)row.count * prefix;
            if (length > (size_t)max_T) break;
            const double packed = rc_model_forward_flops(cfg, 1, (int)length, row.count + 1);
            const double apart = rc_model_forward_flops(cfg, 1, (int)row.length, row.count) +
                                 rc_model_forward_flops(cfg, 1, (int)next->len, 1);
            if (packed >= apart) break;
            row.prefix = prefix;
            row.length = length;
            row.count++;
            total += next->len;
        }
        rows[n_rows++] = row;
    }
    return n_rows;
}

/* Rows are batched by packed length, so a batch pads little (scoring texts in
 * arrival order pads each batch to its longest). */
rc_status rc_reward_model_score(rc_reward_model *rm, const int32_t *const *seqs, const size_t *lens,
                                size_t n, float *rewards) {
    const rc_model_config *cfg = rc_model_get_config(rm->model);
    const int32_t pad = (int32_t)cfg->pad_token_id;
    const size_t max_len = rm->meta.policy.max_length;
    for (size_t i = 0; i < n; i++)
        if (lens[i] == 0 || lens[i] > max_len)
            return rc_fail(RC_ERR_INVALID_ARG, "sequence %zu has %zu tokens (1..%zu allowed)", i,
                           lens[i], max_len);
    const int max_rows = rm->batch_rows;
    sequence_ref *order = malloc((n ? n : 1) * sizeof *order);
    score_row *rows = malloc((n ? n : 1) * sizeof *rows);
    float *batch_rewards = malloc((size_t)max_rows * sizeof *batch_rewards);
    const int32_t **member_seqs = malloc((size_t)max_rows * sizeof *member_seqs);
    size_t *member_lens = malloc((size_t)max_rows * sizeof *member_lens);
    rc_status st = order && rows && batch_rewards && member_seqs && member_lens
                       ? RC_OK
                       : rc_fail(RC_ERR_OOM, "cannot order %zu sequences", n);
    size_t n_rows = 0;
    if (st == RC_OK) {
        for (size_t i = 0; i < n; i++) order[i] = (sequence_ref){seqs[i], lens[i], i};
        qsort(order, n, sizeof *order, compare_tokens);
        n_rows = group_rows(cfg, order, n, rm->share_prefix, (int)max_len, max_rows, rows);
        qsort(rows, n_rows, sizeof *rows, compare_row_length);
    }
    for (size_t start = 0; start < n_rows && st == RC_OK;) {
        int batch = 0, n_scores = 0;
        while (start + (size_t)batch < n_rows && batch < max_rows &&
               n_scores + rows[start + (size_t)batch].count <= max_rows)
            n_scores += rows[start + (size_t)batch++].count;
        const int T = (int)rows[start + (size_t)batch - 1].length; /* the longest: sorted */
        for (int r = 0, score = 0; r < batch; r++) {
            const score_row *row = &rows[start + (size_t)r];
            for (int j = 0; j < row->count; j++) {
                member_seqs[j] = order[row->first + (size_t)j].seq;
                member_lens[j] = order[row->first + (size_t)j].len;
                rm->tokens += member_lens[j];
                rm->shared_tokens += j > 0 ? row->prefix : 0;
            }
            rc_pack_row(member_seqs, member_lens, row->count, row->prefix, pad, T, r, rm->ids,
                        rm->mask, rm->pos, rm->score_at + score);
            score += row->count;
        }
        rc_packed_batch packed = {rm->ids, rm->mask, rm->pos, rm->score_at, batch, T, n_scores};
        st = rc_model_forward_packed(rm->model, &packed, batch_rewards);
        for (int r = 0, score = 0; r < batch && st == RC_OK; r++) {
            const score_row *row = &rows[start + (size_t)r];
            for (int j = 0; j < row->count; j++)
                rewards[order[row->first + (size_t)j].index] = batch_rewards[score++];
        }
        start += (size_t)batch;
    }
    /* a NaN or Inf reward is no score: never hand one on */
    for (size_t i = 0; i < n && st == RC_OK; i++)
        if (!isfinite(rewards[i]))
            st = rc_fail(RC_ERR_BACKEND, "the reward of sequence %zu is %g, not a finite number", i,
                         (double)rewards[i]);
    free(order);
    free(rows);
    free(batch_rewards);
    free(member_seqs);
    free(member_lens);
    return st;
}

/* Texts as rendered for the model: the prompt/response pair itself, or the
 * chat template's rendering of the conversation. */
static rc_status encode_text(const rc_reward_model *rm, const char *prompt, const char *response,
                             int32_t **ids, size_t *len, rc_encode_outcome *outcome);

/* Without a chat template a conversation becomes the HH-RLHF transcript that
 * rewardc prepare splits: "\n\nHuman: ..." / "\n\nAssistant: ..." turns and
 * "\n\nAssistant:" as the prompt, " " + the last (the assistant's) content as
 * the response. */
static rc_status transcript(const rc_chat_message *m, size_t n, char **prompt, char **response) {
    *prompt = *response = NULL;
    if (n == 0 || !m[n - 1].role || strcmp(m[n - 1].role, "assistant") != 0)
        return rc_fail(RC_ERR_INVALID_ARG, "a conversation to score must end with the assistant's "
                       "message (the response)");
    size_t size = 32;
    for (size_t i = 0; i < n; i++) size += strlen(m[i].content ? m[i].content : "") + 16;
    *prompt = malloc(size);
    *response = malloc(size);
    if (!*prompt || !*response) return rc_fail(RC_ERR_OOM, "cannot render a conversation");
    size_t len = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const char *speaker = !strcmp(m[i].role, "user")        ? "Human"
                              : !strcmp(m[i].role, "assistant") ? "Assistant"
                                                                : "System";
        len += (size_t)snprintf(*prompt + len, size - len, "\n\n%s: %s", speaker, m[i].content);
    }
    snprintf(*prompt + len, size - len, "\n\nAssistant:");
    snprintf(*response, size, " %s", m[n - 1].content);
    return RC_OK;
}

rc_status rc_reward_model_encode_messages(const rc_reward_model *rm,
                                         const rc_chat_message *messages, size_t n,
                                         int32_t **ids, size_t *len, rc_encode_outcome *outcome) {
    char *prompt = NULL, *response = NULL;
    rc_status st = rm->chat ? rc_render_conversation(rm->tokenizer, rm->chat, messages, n, &prompt,
                                                     &response)
                            : transcript(messages, n, &prompt, &response);
    if (st == RC_OK) st = encode_text(rm, prompt, response, ids, len, outcome);
    free(prompt);
    free(response);
    return st;
}

rc_status rc_reward_model_encode_text(const rc_reward_model *rm, const char *text, int32_t **ids,
                                      size_t *len, rc_encode_outcome *outcome) {
    return encode_text(rm, "", text, ids, len, outcome);
}

rc_status rc_reward_model_encode(const rc_reward_model *rm, const char *prompt, const char *response,
                                int32_t **ids, size_t *len, rc_encode_outcome *outcome) {
    if (!rm->chat) return encode_text(rm, prompt, response, ids, len, outcome);
    const rc_chat_message conversation[2] = {{"user", prompt}, {"assistant", response}};
    const int has_prompt = prompt && prompt[0];
    return rc_reward_model_encode_messages(rm, conversation + !has_prompt, has_prompt ? 2 : 1, ids,
                                           len, outcome);
}

static rc_status encode_text(const rc_reward_model *rm, const char *prompt, const char *response,
                             int32_t **ids, size_t *len, rc_encode_outcome *outcome) {
    rc_encode_outcome got;
    rc_status st = rc_encode_sequence(rm->tokenizer, &rm->meta.policy, prompt ? prompt : "",
                                      response, ids, len, &got);
    if (st == RC_OK && got == RC_ENCODED_DROPPED) {
        /* scoring never drops: a too-long text is truncated instead */
        rc_encode_policy truncating = rm->meta.policy;
        truncating.overflow = RC_OVERFLOW_TRUNCATE;
        st = rc_encode_sequence(rm->tokenizer, &truncating, prompt ? prompt : "", response, ids,
                                len, &got);
    }
    if (st == RC_OK && outcome) *outcome = got;
    return st;
}

