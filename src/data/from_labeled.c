/* Labelled single texts: reading them from JSONL, and the recipe that pairs
 * them (negatives become rejected, seeded-shuffled positives become chosen). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl_input.h"
#include "data/records.h"
#include "rewardc/data.h"

static const rc_read_options default_options = {0, 0, 0};

/* Labels are 0/1 numbers or false/true; "1", 0.5 or 2 are errors. */
static int record_label(const cJSON *object, const char *field, int *label) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, field);
    if (!item) {
        rc_fail(RC_ERR_FORMAT, "missing field \"%s\"", field);
        return RC_DROP_MISSING_FIELD;
    }
    if (cJSON_IsBool(item)) {
        *label = cJSON_IsTrue(item) ? 1 : 0;
        return RECORD_OK;
    }
    if (!cJSON_IsNumber(item)) {
        rc_fail(RC_ERR_FORMAT, "label field \"%s\" must be 0/1 or true/false, got a %s", field,
                cJSON_IsString(item) ? "string" : "non-number");
        return RC_DROP_WRONG_TYPE;
    }
    double value = cJSON_GetNumberValue(item);
    if (value != 0.0 && value != 1.0) {
        rc_fail(RC_ERR_FORMAT, "label field \"%s\" must be 0/1 or true/false, got %g", field,
                value);
        return RC_DROP_INVALID_VALUE;
    }
    *label = value == 1.0;
    return RECORD_OK;
}

static int parse_labeled_line(const char *line, size_t len, const char *text_field,
                              const char *label_field, rc_labeled_texts *out, rc_status *fatal) {
    cJSON *object = NULL;
    int result = record_parse_object(line, len, &object);
    if (result != RECORD_OK) return result;
    const char *text = NULL;
    int label = 0;
    result = record_string(object, text_field, &text);
    if (result == RECORD_OK) result = record_label(object, label_field, &label);
    if (result == RECORD_OK && text[0] == '\0') {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" is empty", text_field);
        result = RC_DROP_INVALID_VALUE;
    }
    if (result == RECORD_OK) *fatal = rc_labeled_texts_append(out, text, label);
    cJSON_Delete(object);
    return result;
}

rc_status rc_labeled_read_jsonl(const char *path, const char *text_field,
                                const char *label_field, const rc_read_options *options,
                                rc_labeled_texts *out, rc_prepare_report *report) {
    if (!options) options = &default_options;
    if (!text_field || !*text_field || !label_field || !*label_field)
        return rc_fail(RC_ERR_INVALID_ARG, "the text and label field names must be non-empty");
    rc_jsonl_input input;
    rc_status st = rc_jsonl_open(&input, path);
    if (st != RC_OK) return st;
    rc_labeled_texts texts = {0};
    for (;;) {
        char *line;
        size_t len;
        st = rc_jsonl_next(&input, &line, &len);
        if (st != RC_OK || !line) break;
        if (report) report->records_read++;
        rc_status fatal = RC_OK;
        int result = parse_labeled_line(line, len, text_field, label_field, &texts, &fatal);
        if (fatal != RC_OK) {
            st = fatal;
            break;
        }
        if (result != RECORD_OK) {
            st = record_reject(&input, result, options, report);
            if (st != RC_OK) break;
        }
    }
    if (st != RC_OK) {
        rc_jsonl_abort(&input);
        rc_labeled_texts_free(&texts);
        return st;
    }
    st = rc_jsonl_close(&input);
    if (st != RC_OK) {
        rc_labeled_texts_free(&texts);
        return st;
    }
    *out = texts;
    return RC_OK;
}

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

rc_status rc_pairs_from_labeled(const rc_labeled_texts *texts, const rc_read_options *options,
                                rc_pair_list *out, rc_prepare_report *report) {
    if (!options) options = &default_options;
    size_t n_pos = 0, n_neg = 0;
    for (size_t i = 0; i < texts->n; i++) {
        if (texts->labels[i]) n_pos++;
        else n_neg++;
    }
    size_t *positives = malloc((n_pos + 1) * sizeof *positives);
    size_t *negatives = malloc((n_neg + 1) * sizeof *negatives);
    if (!positives || !negatives) {
        free(positives);
        free(negatives);
        return rc_fail(RC_ERR_OOM, "cannot index %zu labelled texts", texts->n);
    }
    n_pos = n_neg = 0;
    for (size_t i = 0; i < texts->n; i++) {
        if (texts->labels[i]) positives[n_pos++] = i;
        else negatives[n_neg++] = i;
    }
    rc_shuffle_indices(positives, n_pos, options->seed);

    size_t n_pairs = n_pos < n_neg ? n_pos : n_neg;
    size_t unpaired = (n_pos > n_neg ? n_pos - n_neg : n_neg - n_pos);
    size_t over_max = 0;
    if (options->max_pairs && n_pairs > options->max_pairs) {
        /* A seeded random subset of the negatives, kept in input order: the
         * first N by id would come from a few movies only. */
        over_max = n_pairs - options->max_pairs;
        n_pairs = options->max_pairs;
        if (n_neg > n_pairs) {
            rc_shuffle_indices(negatives, n_neg, options->seed ^ 0x6E656773ull);
            qsort(negatives, n_pairs, sizeof *negatives, compare_size);
        }
    }

    rc_pair_list pairs = {0};
    rc_status st = RC_OK;
    for (size_t k = 0; k < n_pairs && st == RC_OK; k++)
        st = rc_pair_list_append(&pairs, "", texts->texts[positives[k]],
                                 texts->texts[negatives[k]]);
    free(positives);
    free(negatives);
    if (st != RC_OK) {
        rc_pair_list_free(&pairs);
        return st;
    }
    if (report) {
        report->dropped[RC_DROP_UNPAIRED] += unpaired;
        report->dropped[RC_DROP_OVER_MAX_PAIRS] += over_max;
        report->pairs_written = pairs.n;
    }
    *out = pairs;
    return RC_OK;
}
