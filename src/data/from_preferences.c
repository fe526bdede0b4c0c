/* Preference JSONL as TRL uses it, normalised to the pairs format:
 *   {"chosen": "...", "rejected": "..."}                 implicit prompt (HH-RLHF)
 *   {"prompt": "...", "chosen": "...", "rejected": "..."} explicit prompt
 * each with an optional numeric "margin" and "weight". The pairs JSONL that
 * rc_pairs_write_jsonl writes is this format too, so this also reads it back. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl_input.h"
#include "data/records.h"
#include "rewardc/data.h"

static const rc_read_options default_read = {0, 0, 0};
static const rc_preference_options default_preference = {0, NULL};

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

/* Parses and appends one record; returns RECORD_OK or a drop reason. */
static int parse_preference(const cJSON *object, const rc_preference_options *preference,
                            const rc_read_options *options, rc_pair_list *out,
                            rc_prepare_report *report, rc_status *fatal) {
    const char *prompt = NULL, *chosen = NULL, *rejected = NULL;
    double margin = 0.0, weight = 1.0;
    int has_margin = 0, has_weight = 0;
    int result = record_string(object, "chosen", &chosen);
    if (result == RECORD_OK) result = record_string(object, "rejected", &rejected);
    if (result == RECORD_OK) result = record_optional_string(object, "prompt", &prompt);
    if (result == RECORD_OK) result = record_optional_number(object, "margin", &margin, &has_margin);
    if (result == RECORD_OK) result = record_optional_number(object, "weight", &weight, &has_weight);
    if (result != RECORD_OK) return result;
    if (has_weight && weight < 0.0) {
        rc_fail(RC_ERR_FORMAT, "field \"weight\" must be >= 0, got %g", weight);
        return RC_DROP_INVALID_VALUE;
    }
    if (!chosen[0] || !rejected[0]) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" is empty", chosen[0] ? "rejected" : "chosen");
        return RC_DROP_INVALID_VALUE;
    }
    if (strcmp(chosen, rejected) == 0) {
        if (report) report->dropped[RC_DROP_IDENTICAL]++;
        return RECORD_OK;
    }
    if (options->max_pairs && out->n >= options->max_pairs) {
        if (report) report->dropped[RC_DROP_OVER_MAX_PAIRS]++;
        return RECORD_OK;
    }
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
    if (*fatal != RC_OK) return RECORD_OK;
    rc_pair *pair = &out->items[out->n - 1];
    pair->margin = margin;
    pair->has_margin = has_margin;
    pair->weight = weight;
    pair->has_weight = has_weight;
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
