/* Preference JSONL as TRL uses it, normalised to the pairs format:
 *   {"chosen": "...", "rejected": "..."}                 implicit prompt (HH-RLHF)
 *   {"prompt": "...", "chosen": "...", "rejected": "..."} explicit prompt
 * or conversational, each field a list of {"role", "content"} messages:
 *   {"chosen": [...], "rejected": [...]}  /  {"prompt": [...], "chosen": [...], ...}
 * each with an optional numeric "margin" and "weight". The pairs JSONL that
 * rc_pairs_write_jsonl writes is this format too, so this also reads it back. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl_input.h"
#include "data/messages.h"
#include "data/records.h"
#include "rewardc/data.h"

static const rc_read_options default_read = {0, 0, 0};
static const rc_preference_options default_preference = {0, NULL, 0};

size_t rc_shared_prompt_length(const char *chosen, const char *rejected, const char *marker) {
    size_t shared = 0;
    while (chosen[shared] && chosen[shared] == rejected[shared]) shared++;
    size_t cut = 0;
    if (marker && *marker) {
        /* After the last complete marker inside the shared text: for dialogues
         * that is the start of the final assistant turn. */
        size_t marker_len = strlen(marker);
        for (size_t at = 0; at + marker_len <= shared; at++)
            if (memcmp(chosen + at, marker, marker_len) == 0) cut = at + marker_len;
    } else {
        /* At the last whitespace inside the shared text: byte-level BPE joins a
         * space to the word after it, so the space goes with the response. */
        for (size_t at = 0; at < shared; at++)
            if (chosen[at] == ' ' || chosen[at] == '\n' || chosen[at] == '\t') cut = at;
    }
    /* Both responses must keep at least one byte. */
    if (chosen[cut] == '\0' || rejected[cut] == '\0') return 0;
    return cut;
}

typedef struct {
    double margin, weight;
    int has_margin, has_weight;
} pair_numbers;

static int parse_numbers(const cJSON *object, pair_numbers *numbers) {
    numbers->margin = 0.0;
    numbers->weight = 1.0;
    int result = record_optional_number(object, "margin", &numbers->margin, &numbers->has_margin);
    if (result == RECORD_OK) result = record_optional_number(object, "weight", &numbers->weight, &numbers->has_weight);
    if (result == RECORD_OK && numbers->has_weight && numbers->weight < 0.0) {
        rc_fail(RC_ERR_FORMAT, "field \"weight\" must be >= 0, got %g", numbers->weight);
        return RC_DROP_INVALID_VALUE;
    }
    return result;
}

static void set_numbers(rc_pair_list *out, const pair_numbers *numbers) {
    rc_pair *pair = &out->items[out->n - 1];
    pair->margin = numbers->margin;
    pair->has_margin = numbers->has_margin;
    pair->weight = numbers->weight;
    pair->has_weight = numbers->has_weight;
}

/* Whether the pair may be added (counts identical pairs and --max_pairs). */
static int room_for_pair(int identical, const rc_read_options *options, const rc_pair_list *out,
                         rc_prepare_report *report) {
    if (identical) {
        if (report) report->dropped[RC_DROP_IDENTICAL]++;
        return 0;
    }
    if (options->max_pairs && out->n >= options->max_pairs) {
        if (report) report->dropped[RC_DROP_OVER_MAX_PAIRS]++;
        return 0;
    }
    return 1;
}

/* A conversational record (message lists, borrowed; prompt NULL when implicit). */
static int add_conversational(const cJSON *prompt, const cJSON *chosen, const cJSON *rejected,
                              const pair_numbers *numbers, const rc_preference_options *preference,
                              const rc_read_options *options, rc_pair_list *out,
                              rc_prepare_report *report, rc_status *fatal) {
    size_t n_chosen = (size_t)cJSON_GetArraySize(chosen), n_rejected = (size_t)cJSON_GetArraySize(rejected);
    size_t shared = 0;
    if (!prompt && preference->extract_prompt) {
        /* the shared leading messages are the prompt; each side keeps one */
        shared = messages_shared_count(chosen, rejected);
        if (shared >= n_chosen) shared = n_chosen - 1;
        if (shared >= n_rejected) shared = n_rejected - 1;
    }
    char *prompt_json = prompt ? messages_slice_json(prompt, 0, (size_t)cJSON_GetArraySize(prompt))
                               : shared ? messages_slice_json(chosen, 0, shared) : NULL;
    char *chosen_json = messages_slice_json(chosen, shared, n_chosen);
    char *rejected_json = messages_slice_json(rejected, shared, n_rejected);
    if (!chosen_json || !rejected_json || ((prompt || shared) && !prompt_json)) {
        *fatal = rc_fail(RC_ERR_OOM, "cannot copy a message list");
    } else if (room_for_pair(strcmp(chosen_json, rejected_json) == 0, options, out, report)) {
        *fatal = rc_pair_list_append_messages(out, prompt_json, chosen_json, rejected_json);
        if (*fatal == RC_OK) set_numbers(out, numbers);
    }
    free(prompt_json);
    free(chosen_json);
    free(rejected_json);
    return RECORD_OK;
}

/* A conversational record as it stands in the file. */
static int parse_conversational(const cJSON *object, const pair_numbers *numbers,
                                const rc_preference_options *preference, const rc_read_options *options,
                                rc_pair_list *out, rc_prepare_report *report, rc_status *fatal) {
    const cJSON *prompt = NULL, *chosen = NULL, *rejected = NULL;
    int result = record_messages(object, "chosen", &chosen);
    if (result == RECORD_OK) result = record_messages(object, "rejected", &rejected);
    const cJSON *prompt_item = cJSON_GetObjectItemCaseSensitive(object, "prompt");
    if (result == RECORD_OK && prompt_item && !cJSON_IsNull(prompt_item))
        result = record_messages(object, "prompt", &prompt);
    if (result != RECORD_OK) return result;
    return add_conversational(prompt, chosen, rejected, numbers, preference, options, out, report, fatal);
}

/* A text record whose dialogues become message lists (--dialogue_messages). */
static int parse_dialogue(const char *prompt, const char *chosen, const char *rejected,
                          const pair_numbers *numbers, const rc_preference_options *preference,
                          const rc_read_options *options, rc_pair_list *out, rc_prepare_report *report,
                          rc_status *fatal) {
    char *json[3] = {NULL, NULL, NULL};
    cJSON *lists[3] = {NULL, NULL, NULL};
    const char *texts[3] = {prompt && prompt[0] ? prompt : NULL, chosen, rejected};
    for (int k = 0; k < 3 && *fatal == RC_OK; k++) {
        if (!texts[k]) continue;
        *fatal = rc_dialogue_to_messages(texts[k], k == 0, &json[k]);
        if (*fatal == RC_OK && !(lists[k] = cJSON_Parse(json[k]))) *fatal = rc_fail(RC_ERR_OOM, "cannot parse a message list");
    }
    if (*fatal == RC_OK)
        add_conversational(lists[0], lists[1], lists[2], numbers, preference, options, out, report, fatal);
    for (int k = 0; k < 3; k++) {
        free(json[k]);
        cJSON_Delete(lists[k]);
    }
    return RECORD_OK;
}

/* Parses and appends one record; returns RECORD_OK or a drop reason. */
static int parse_preference(const cJSON *object, const rc_preference_options *preference,
                            const rc_read_options *options, rc_pair_list *out,
                            rc_prepare_report *report, rc_status *fatal) {
    const char *prompt = NULL, *chosen = NULL, *rejected = NULL;
    pair_numbers numbers;
    int result = parse_numbers(object, &numbers);
    if (result != RECORD_OK) return result;
    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(object, "chosen")))
        return parse_conversational(object, &numbers, preference, options, out, report, fatal);
    result = record_string(object, "chosen", &chosen);
    if (result == RECORD_OK) result = record_string(object, "rejected", &rejected);
    if (result == RECORD_OK) result = record_optional_string(object, "prompt", &prompt);
    if (result != RECORD_OK) return result;
    if (!chosen[0] || !rejected[0]) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" is empty", chosen[0] ? "rejected" : "chosen");
        return RC_DROP_INVALID_VALUE;
    }
    if (preference->dialogue_messages)
        return parse_dialogue(prompt, chosen, rejected, &numbers, preference, options, out, report, fatal);
    if (!room_for_pair(strcmp(chosen, rejected) == 0, options, out, report)) return RECORD_OK;
    size_t cut = 0;
    if ((!prompt || !prompt[0]) && preference->extract_prompt)
        cut = rc_shared_prompt_length(chosen, rejected, preference->prompt_marker);
    if (cut > 0) {
        char *shared = malloc(cut + 1);
        if (!shared) {
            *fatal = rc_fail(RC_ERR_OOM, "cannot copy a prompt of %zu bytes", cut);
            return RECORD_OK;
        }
        memcpy(shared, chosen, cut);
        shared[cut] = '\0';
        *fatal = rc_pair_list_append(out, shared, chosen + cut, rejected + cut);
        free(shared);
    } else {
        *fatal = rc_pair_list_append(out, prompt ? prompt : "", chosen, rejected);
    }
    if (*fatal == RC_OK) set_numbers(out, &numbers);
    return RECORD_OK;
}

rc_status rc_pairs_read_preferences(const char *path, const rc_read_options *options,
                                    const rc_preference_options *preference,
                                    rc_pair_list *out, rc_prepare_report *report) {
    if (!options) options = &default_read;
    if (!preference) preference = &default_preference;
    rc_jsonl_input input;
    rc_status st = rc_jsonl_open(&input, path);
    if (st != RC_OK) return st;
    rc_pair_list pairs = {0};
    for (;;) {
        char *line;
        size_t len;
        st = rc_jsonl_next(&input, &line, &len);
        if (st != RC_OK || !line) break;
        if (report) report->records_read++;
        cJSON *object = NULL;
        rc_status fatal = RC_OK;
        int result = record_parse_object(line, len, &object);
        if (result == RECORD_OK)
            result = parse_preference(object, preference, options, &pairs, report, &fatal);
        cJSON_Delete(object);
        if (fatal != RC_OK) {
            st = fatal;
            break;
        }
        if (result != RECORD_OK) {
            st = record_reject(&input, result, options, report);
            if (st != RC_OK) break;
        }
    }
    return records_finish_pairs(&input, st, &pairs, out, report);
}
