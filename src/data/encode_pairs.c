/* The tokenization policy: (prompt, response) -> the ids the reward model
 * scores, with one overflow rule shared by train, eval and score so a model
 * is evaluated on sequences built the way it was trained on. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/data.h"
#include "rewardc/tokenizer.h"

rc_encode_policy rc_encode_policy_default(void) {
    rc_encode_policy policy = {512, 1, RC_OVERFLOW_TRUNCATE};
    return policy;
}

rc_encode_policy rc_encode_policy_for(const rc_tokenizer *tok) {
    rc_encode_policy policy = rc_encode_policy_default();
    const int eos = rc_tokenizer_eos_id(tok);
    policy.append_eos = eos >= 0 && eos != rc_tokenizer_pad_id(tok);
    return policy;
}

/* Ids the policy adds around the text: BOS before (as the tokenizer says), EOS after. */
static size_t n_special(const rc_encode_policy *policy, const rc_tokenizer *tok) {
    return (rc_tokenizer_adds_bos(tok) ? 1u : 0u) + (policy->append_eos ? 1u : 0u);
}

rc_status rc_encode_policy_check(const rc_encode_policy *policy, const rc_tokenizer *tok) {
    if (policy->overflow != RC_OVERFLOW_TRUNCATE && policy->overflow != RC_OVERFLOW_DROP)
        return rc_fail(RC_ERR_INVALID_ARG, "encode policy: unknown overflow rule %d",
                       (int)policy->overflow);
    if (policy->max_length == 0)
        return rc_fail(RC_ERR_INVALID_ARG, "encode policy: max_length must be positive");
    if (policy->max_length <= n_special(policy, tok))
        return rc_fail(RC_ERR_INVALID_ARG,
                       "encode policy: max_length %zu leaves no room for text beside %zu "
                       "special tokens",
                       policy->max_length, n_special(policy, tok));
    if (rc_tokenizer_adds_bos(tok) && rc_tokenizer_bos_id(tok) < 0)
        return rc_fail(RC_ERR_INVALID_ARG, "encode policy: the tokenizer adds BOS but has no BOS id");
    if (policy->append_eos) {
        int32_t eos = rc_tokenizer_eos_id(tok);
        if (eos < 0)
            return rc_fail(RC_ERR_INVALID_ARG,
                           "encode policy: append_eos is set but the tokenizer has no EOS token");
        if (eos == rc_tokenizer_pad_id(tok))
            return rc_fail(RC_ERR_INVALID_ARG,
                           "encode policy: EOS id %d is also the pad id, so the score would "
                           "be read before the appended EOS; turn append_eos off or use a "
                           "tokenizer with its own pad token",
                           (int)eos);
    }
    return RC_OK;
}

/* Concatenates prompt and response into one buffer for a whole-text encode. */
static rc_status encode_joined(const rc_tokenizer *tok, const char *prompt, const char *response,
                               int32_t **ids, size_t *n_ids) {
    size_t prompt_len = strlen(prompt), response_len = strlen(response);
    if (prompt_len == 0) return rc_tokenizer_encode(tok, response, response_len, 1, ids, n_ids);
    char *joined = malloc(prompt_len + response_len + 1);
    if (!joined) return rc_fail(RC_ERR_OOM, "cannot join a %zu-byte text", prompt_len + response_len);
    memcpy(joined, prompt, prompt_len);
    memcpy(joined + prompt_len, response, response_len + 1);
    rc_status st = rc_tokenizer_encode(tok, joined, prompt_len + response_len, 1, ids, n_ids);
    free(joined);
    return st;
}

/* Builds BOS + prompt tail + response head + EOS within max_length. The two
 * parts are encoded separately so the cut falls on the prompt/response
 * boundary; the response is kept whole whenever it fits. */
static rc_status encode_truncated(const rc_tokenizer *tok, const rc_encode_policy *policy,
                                  const char *prompt, const char *response, int32_t **ids,
                                  size_t *n_ids, rc_encode_outcome *outcome) {
    int32_t *prompt_ids = NULL, *response_ids = NULL;
    size_t n_prompt = 0, n_response = 0;
    rc_status st = rc_tokenizer_encode(tok, prompt, strlen(prompt), 0, &prompt_ids, &n_prompt);
    if (st == RC_OK)
        st = rc_tokenizer_encode(tok, response, strlen(response), 0, &response_ids, &n_response);
    if (st != RC_OK) {
        free(prompt_ids);
        free(response_ids);
        return st;
    }
    size_t budget = policy->max_length - n_special(policy, tok);
    size_t keep_response = n_response < budget ? n_response : budget;
    size_t keep_prompt = budget - keep_response;
    if (keep_prompt > n_prompt) keep_prompt = n_prompt;
    if (keep_response < n_response) *outcome = RC_ENCODED_RESPONSE_TRUNCATED;
    else if (keep_prompt < n_prompt) *outcome = RC_ENCODED_PROMPT_TRUNCATED;
    else *outcome = RC_ENCODED_WHOLE; /* the split encodings happen to fit */

    size_t total = n_special(policy, tok) + keep_prompt + keep_response;
    int32_t *out = malloc(total * sizeof *out);
    if (!out) {
        free(prompt_ids);
        free(response_ids);
        return rc_fail(RC_ERR_OOM, "cannot hold %zu token ids", total);
    }
    size_t at = 0;
    if (rc_tokenizer_adds_bos(tok)) out[at++] = rc_tokenizer_bos_id(tok);
    memcpy(out + at, prompt_ids + (n_prompt - keep_prompt), keep_prompt * sizeof *out);
    at += keep_prompt;
    memcpy(out + at, response_ids, keep_response * sizeof *out);
    at += keep_response;
    if (policy->append_eos) out[at++] = rc_tokenizer_eos_id(tok);
    free(prompt_ids);
    free(response_ids);
    *ids = out;
    *n_ids = at;
    return RC_OK;
}

/* Encodes one sequence and reports its length before any truncation. */
static rc_status encode_sequence_measured(const rc_tokenizer *tok, const rc_encode_policy *policy,
                                          const char *prompt, const char *response,
                                          int32_t **ids, size_t *n_ids,
                                          rc_encode_outcome *outcome, size_t *untruncated) {
    *ids = NULL;
    *n_ids = 0;
    rc_status st = rc_encode_policy_check(policy, tok);
    if (st != RC_OK) return st;
    int32_t *whole = NULL;
    size_t n_whole = 0;
    st = encode_joined(tok, prompt ? prompt : "", response, &whole, &n_whole);
    if (st != RC_OK) return st;
    size_t n_full = n_whole + (policy->append_eos ? 1 : 0);
    *untruncated = n_full;
    if (n_full <= policy->max_length) {
        if (policy->append_eos) {
            int32_t *grown = realloc(whole, n_full * sizeof *grown);
            if (!grown) {
                free(whole);
                return rc_fail(RC_ERR_OOM, "cannot hold %zu token ids", n_full);
            }
            whole = grown;
            whole[n_whole] = rc_tokenizer_eos_id(tok);
        }
        *ids = whole;
        *n_ids = n_full;
        *outcome = RC_ENCODED_WHOLE;
        return RC_OK;
    }
    free(whole);
    if (policy->overflow == RC_OVERFLOW_DROP) {
        *outcome = RC_ENCODED_DROPPED;
        return RC_OK;
    }
    return encode_truncated(tok, policy, prompt ? prompt : "", response, ids, n_ids, outcome);
}

rc_status rc_encode_sequence(const rc_tokenizer *tok, const rc_encode_policy *policy,
                             const char *prompt, const char *response, int32_t **ids,
                             size_t *n_ids, rc_encode_outcome *outcome) {
    size_t untruncated;
    return encode_sequence_measured(tok, policy, prompt, response, ids, n_ids, outcome,
                                    &untruncated);
}

static void count_outcome(rc_encode_counts *counts, rc_encode_outcome outcome, size_t length) {
    counts->sequences++;
    if (outcome == RC_ENCODED_PROMPT_TRUNCATED) counts->prompt_truncated++;
    if (outcome == RC_ENCODED_RESPONSE_TRUNCATED) counts->response_truncated++;
    if (length > counts->longest) counts->longest = length;
}

/* ---- conversational pairs: rendering with the chat template ---- */

/* The messages of a stored JSON array (the strings point into *list). */
static rc_status read_messages(const char *json, cJSON **list, rc_chat_message **messages, size_t *n) {
    *list = cJSON_Parse(json);
    *messages = NULL;
    *n = 0;
    if (!cJSON_IsArray(*list)) return rc_fail(RC_ERR_FORMAT, "a message list is not a JSON array");
    *messages = calloc((size_t)cJSON_GetArraySize(*list) + 1, sizeof **messages);
    if (!*messages) return rc_fail(RC_ERR_OOM, "cannot hold a message list");
    const cJSON *m;
    cJSON_ArrayForEach(m, *list) {
        (*messages)[*n].role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
        (*messages)[*n].content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content"));
        (*n)++;
    }
    return RC_OK;
}

/* Renders head followed by tail (tail may be empty). */
static rc_status render_joined(const rc_chat_template *chat, const rc_chat_message *head, size_t n_head,
                               const rc_chat_message *tail, size_t n_tail, int generation, char **text) {
    rc_chat_message *all = malloc((n_head + n_tail + 1) * sizeof *all);
    if (!all) return rc_fail(RC_ERR_OOM, "cannot join message lists");
    if (n_head) memcpy(all, head, n_head * sizeof *all);
    if (n_tail) memcpy(all + n_head, tail, n_tail * sizeof *all);
    rc_status st = rc_chat_template_render(chat, all, n_head + n_tail, generation, text, NULL);
    free(all);
    return st;
}

static size_t common_prefix(const char *a, const char *b) {
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

/* Drops a leading copy of the BOS the tokenizer adds itself. */
static void skip_added_bos(const rc_tokenizer *tok, char *text) {
    if (!rc_tokenizer_adds_bos(tok)) return;
    const char *bos = rc_tokenizer_id_to_token(tok, rc_tokenizer_bos_id(tok));
    size_t n = bos ? strlen(bos) : 0;
    if (n && strncmp(text, bos, n) == 0) memmove(text, text + n, strlen(text + n) + 1);
}

typedef struct {
    char *prompt, *chosen, *rejected;
} rendered_pair;

static void rendered_free(rendered_pair *r) {
    free(r->prompt);
    free(r->chosen);
    free(r->rejected);
}

/* The texts of a conversational pair, as TRL's apply_chat_template makes them. */
static rc_status render_pair(const rc_tokenizer *tok, const rc_chat_template *chat, const rc_pair *pair,
                             rendered_pair *r) {
    memset(r, 0, sizeof *r);
    cJSON *lists[3] = {NULL, NULL, NULL};
    rc_chat_message *m[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    const char *json[3] = {pair->prompt_messages, pair->chosen_messages, pair->rejected_messages};
    rc_status st = RC_OK;
    for (int k = 0; k < 3 && st == RC_OK; k++)
        if (json[k]) st = read_messages(json[k], &lists[k], &m[k], &n[k]);
    if (st == RC_OK && !pair->prompt_messages) { /* implicit: each side whole */
        st = render_joined(chat, m[1], n[1], NULL, 0, 0, &r->chosen);
        if (st == RC_OK) st = render_joined(chat, m[2], n[2], NULL, 0, 0, &r->rejected);
        if (st == RC_OK && !(r->prompt = calloc(1, 1))) st = rc_fail(RC_ERR_OOM, "cannot copy a prompt");
        if (st == RC_OK) {
            skip_added_bos(tok, r->chosen);
            skip_added_bos(tok, r->rejected);
        }
    } else if (st == RC_OK) {
        const char *last_role = n[0] ? m[0][n[0] - 1].role : NULL;
        if (!last_role || strcmp(last_role, "user") != 0)
            st = rc_fail(RC_ERR_UNSUPPORTED, "the prompt's last message is '%s'; a prompt must end with a "
                         "user message (as TRL requires, short of continuing an assistant message)",
                         last_role ? last_role : "(none)");
        char *prompt = NULL, *with_chosen = NULL, *with_rejected = NULL;
        if (st == RC_OK) st = render_joined(chat, m[0], n[0], NULL, 0, 1, &prompt);
        if (st == RC_OK) st = render_joined(chat, m[0], n[0], m[1], n[1], 0, &with_chosen);
        if (st == RC_OK) st = render_joined(chat, m[0], n[0], m[2], n[2], 0, &with_rejected);
        if (st == RC_OK) {
            /* the prompt is what the three renderings share (TRL takes the
             * prompt's common prefix with prompt + chosen) */
            size_t cut = common_prefix(prompt, with_chosen);
            size_t cut_rejected = common_prefix(prompt, with_rejected);
            if (cut_rejected < cut) cut = cut_rejected;
            prompt[cut] = '\0';
            memmove(with_chosen, with_chosen + cut, strlen(with_chosen + cut) + 1);
            memmove(with_rejected, with_rejected + cut, strlen(with_rejected + cut) + 1);
            skip_added_bos(tok, prompt);
            r->prompt = prompt;
            r->chosen = with_chosen;
            r->rejected = with_rejected;
        } else {
            free(prompt);
            free(with_chosen);
            free(with_rejected);
        }
    }
    for (int k = 0; k < 3; k++) {
        cJSON_Delete(lists[k]);
        free(m[k]);
    }
    if (st != RC_OK) {
        rendered_free(r);
        memset(r, 0, sizeof *r);
    }
    return st;
}

rc_status rc_render_conversation(const rc_tokenizer *tok, const rc_chat_template *chat,
                                 const rc_chat_message *messages, size_t n, char **prompt,
                                 char **response) {
    *prompt = *response = NULL;
    if (n == 0 || !messages[n - 1].role || strcmp(messages[n - 1].role, "assistant") != 0)
        return rc_fail(RC_ERR_INVALID_ARG, "a conversation to score must end with the assistant's "
                       "message (the response)");
    char *head = NULL, *whole = NULL;
    rc_status st = n > 1 ? render_joined(chat, messages, n - 1, NULL, 0, 1, &head) : RC_OK;
    if (st == RC_OK && n == 1 && !(head = calloc(1, 1))) st = rc_fail(RC_ERR_OOM, "cannot copy a prompt");
    if (st == RC_OK) st = render_joined(chat, messages, n, NULL, 0, 0, &whole);
    if (st != RC_OK) {
        free(head);
        free(whole);
        return st;
    }
    const size_t cut = common_prefix(head, whole);
    head[cut] = '\0';
    memmove(whole, whole + cut, strlen(whole + cut) + 1);
    skip_added_bos(tok, cut ? head : whole);
    *prompt = head;
    *response = whole;
    return RC_OK;
}

rc_status rc_encode_pairs_chat(const rc_tokenizer *tok, const rc_chat_template *chat,
                               const rc_encode_policy *policy, const rc_pair_list *pairs,
                               rc_encoded_pairs *out, rc_encode_counts *counts) {
    rc_encode_counts local = {0};
    rc_status st = rc_encode_policy_check(policy, tok);
    if (st != RC_OK) return st;
    rc_encoded_pairs encoded = {0};
    encoded.items = calloc(pairs->n ? pairs->n : 1, sizeof *encoded.items);
    if (!encoded.items) return rc_fail(RC_ERR_OOM, "cannot hold %zu encoded pairs", pairs->n);
    for (size_t i = 0; i < pairs->n && st == RC_OK; i++) {
        const rc_pair *pair = &pairs->items[i];
        int rendered = rc_pair_is_conversational(pair);
        rendered_pair texts = {pair->prompt, pair->chosen, pair->rejected};
        if (rendered) memset(&texts, 0, sizeof texts); /* owned by this loop from here */
        if (rendered && !chat)
            st = rc_fail(RC_ERR_INVALID_ARG, "the pair holds message lists, and rendering them needs the "
                         "model's chat template (none was given)");
        else if (rendered)
            st = render_pair(tok, chat, pair, &texts);
        rc_encoded_pair item = {0};
        rc_encode_outcome chosen_outcome = RC_ENCODED_WHOLE, rejected_outcome = RC_ENCODED_WHOLE;
        size_t chosen_length = 0, rejected_length = 0;
        if (st == RC_OK)
            st = encode_sequence_measured(tok, policy, texts.prompt, texts.chosen, &item.chosen,
                                          &item.n_chosen, &chosen_outcome, &chosen_length);
        if (st == RC_OK)
            st = encode_sequence_measured(tok, policy, texts.prompt, texts.rejected,
                                          &item.rejected, &item.n_rejected, &rejected_outcome,
                                          &rejected_length);
        if (rendered) rendered_free(&texts);
        if (st != RC_OK) {
            free(item.chosen);
            free(item.rejected);
            st = rc_fail_context(st, "encoding pair %zu", i + 1);
            break;
        }
        count_outcome(&local, chosen_outcome, chosen_length);
        count_outcome(&local, rejected_outcome, rejected_length);
        if (chosen_outcome == RC_ENCODED_DROPPED || rejected_outcome == RC_ENCODED_DROPPED) {
            free(item.chosen);
            free(item.rejected);
            local.pairs_dropped++;
            continue;
        }
        item.source = i;
        encoded.items[encoded.n++] = item;
    }
    if (st != RC_OK) {
        rc_encoded_pairs_free(&encoded);
        return st;
    }
    if (counts) *counts = local;
    *out = encoded;
    return RC_OK;
}

rc_status rc_encode_pairs(const rc_tokenizer *tok, const rc_encode_policy *policy,
                          const rc_pair_list *pairs, rc_encoded_pairs *out,
                          rc_encode_counts *counts) {
    return rc_encode_pairs_chat(tok, NULL, policy, pairs, out, counts);
}

rc_status rc_encode_pairs_for_model(const rc_tokenizer *tok, const char *model_dir,
                                    const rc_encode_policy *policy, const rc_pair_list *pairs,
                                    rc_encoded_pairs *out, rc_encode_counts *counts) {
    rc_chat_template *chat = NULL;
    for (size_t i = 0; i < pairs->n; i++) {
        if (!rc_pair_is_conversational(&pairs->items[i])) continue;
        rc_status st = rc_chat_template_load(model_dir, &chat);
        if (st != RC_OK) return rc_fail_context(st, "pair %zu holds message lists", i + 1);
        break;
    }
    rc_status st = rc_encode_pairs_chat(tok, chat, policy, pairs, out, counts);
    rc_chat_template_free(chat);
    return st;
}

void rc_encoded_pairs_free(rc_encoded_pairs *pairs) {
    for (size_t i = 0; i < pairs->n; i++) {
        free(pairs->items[i].chosen);
        free(pairs->items[i].rejected);
    }
    free(pairs->items);
    pairs->items = NULL;
    pairs->n = 0;
}
