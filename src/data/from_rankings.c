/* Rankings JSONL -> chosen/rejected pairs. Each line is one prompt with K
 * responses and one ranking per labeler:
 *   {"prompt": "...", "responses": ["a", "b", "c"], "rankings": [[1, 3, 2], [2, 1, 3]]}
 * rankings[l][i] is the rank labeler l gave responses[i] (1 = best); every
 * ranking must be a permutation of 1..K. A prompt expands to its C(K,2) pairs. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl_input.h"
#include "data/records.h"
#include "rewardc/data.h"

static const rc_read_options default_read = {0, 0, 0};
static const rc_ranking_options default_ranking = {RC_RANK_MEAN, 0, 1.0, 0};

/* One validated record: K responses, L rankings stored row-major as ranks[l*K + i]. */
typedef struct {
    const char *prompt;
    const char **responses;
    int *ranks;
    int n_responses;
    int n_labelers;
} ranking_record;

static void free_record(ranking_record *record) {
    free(record->responses);
    free(record->ranks);
    memset(record, 0, sizeof *record);
}

static int parse_responses(const cJSON *object, ranking_record *record) {
    const cJSON *responses = cJSON_GetObjectItemCaseSensitive(object, "responses");
    if (!responses) {
        rc_fail(RC_ERR_FORMAT, "missing field \"responses\"");
        return RC_DROP_MISSING_FIELD;
    }
    if (!cJSON_IsArray(responses)) {
        rc_fail(RC_ERR_FORMAT, "field \"responses\" must be an array of strings");
        return RC_DROP_WRONG_TYPE;
    }
    int k = cJSON_GetArraySize(responses);
    if (k == 0) {
        rc_fail(RC_ERR_FORMAT, "field \"responses\" is empty");
        return RC_DROP_INVALID_VALUE;
    }
    record->responses = malloc((size_t)k * sizeof *record->responses);
    if (!record->responses) {
        rc_fail(RC_ERR_OOM, "cannot hold %d responses", k);
        return RECORD_FATAL;
    }
    record->n_responses = k;
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, responses) {
        if (!cJSON_IsString(item)) {
            rc_fail(RC_ERR_FORMAT, "responses[%d] must be a string", i);
            return RC_DROP_WRONG_TYPE;
        }
        const char *text = cJSON_GetStringValue(item);
        if (!text[0]) {
            rc_fail(RC_ERR_FORMAT, "responses[%d] is empty", i);
            return RC_DROP_INVALID_VALUE;
        }
        if (!utf8_is_valid(text, strlen(text))) {
            rc_fail(RC_ERR_FORMAT, "responses[%d] is not valid UTF-8", i);
            return RC_DROP_INVALID_VALUE;
        }
        record->responses[i++] = text;
    }
    return RECORD_OK;
}

/* Checks that ranking l is a permutation of 1..K and stores it. */
static int parse_one_ranking(const cJSON *ranking, int l, ranking_record *record, char *seen) {
    int k = record->n_responses;
    if (!cJSON_IsArray(ranking)) {
        rc_fail(RC_ERR_FORMAT, "rankings[%d] must be an array of ranks", l);
        return RC_DROP_WRONG_TYPE;
    }
    int size = cJSON_GetArraySize(ranking);
    if (size != k) {
        rc_fail(RC_ERR_FORMAT, "rankings[%d] has %d ranks but there are %d responses", l, size, k);
        return RC_DROP_INVALID_VALUE;
    }
    memset(seen, 0, (size_t)k + 1);
    int i = 0, duplicate = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, ranking) {
        if (!cJSON_IsNumber(item)) {
            rc_fail(RC_ERR_FORMAT, "rankings[%d][%d] must be an integer rank", l, i);
            return RC_DROP_WRONG_TYPE;
        }
        double value = cJSON_GetNumberValue(item);
        if (!(value >= 1 && value <= k) || value != (double)(int)value) {
            rc_fail(RC_ERR_FORMAT, "rankings[%d][%d] = %g is not a rank in 1..%d", l, i, value, k);
            return RC_DROP_INVALID_VALUE;
        }
        int rank = (int)value;
        if (seen[rank] && !duplicate) duplicate = rank;
        seen[rank] = 1;
        record->ranks[(size_t)l * (size_t)k + (size_t)i] = rank;
        i++;
    }
    if (duplicate) {
        /* K ranks in 1..K with one repeated: some rank is missing. */
        int missing = 1;
        while (missing <= k && seen[missing]) missing++;
        rc_fail(RC_ERR_FORMAT, "rankings[%d] gives rank %d twice and rank %d is missing", l,
                duplicate, missing);
        return RC_DROP_INVALID_VALUE;
    }
    return RECORD_OK;
}

static int parse_rankings(const cJSON *object, ranking_record *record) {
    const cJSON *rankings = cJSON_GetObjectItemCaseSensitive(object, "rankings");
    if (!rankings) {
        rc_fail(RC_ERR_FORMAT, "missing field \"rankings\"");
        return RC_DROP_MISSING_FIELD;
    }
    if (!cJSON_IsArray(rankings)) {
        rc_fail(RC_ERR_FORMAT, "field \"rankings\" must be an array of rankings (one per labeler)");
        return RC_DROP_WRONG_TYPE;
    }
    int n_labelers = cJSON_GetArraySize(rankings);
    if (n_labelers == 0) {
        rc_fail(RC_ERR_FORMAT, "field \"rankings\" is empty");
        return RC_DROP_INVALID_VALUE;
    }
    int k = record->n_responses;
    record->ranks = malloc((size_t)n_labelers * (size_t)k * sizeof *record->ranks);
    char *seen = malloc((size_t)k + 1);
    if (!record->ranks || !seen) {
        free(seen);
        rc_fail(RC_ERR_OOM, "cannot hold %d rankings of %d responses", n_labelers, k);
        return RECORD_FATAL;
    }
    record->n_labelers = n_labelers;
    int l = 0, result = RECORD_OK;
    const cJSON *ranking;
    cJSON_ArrayForEach(ranking, rankings) {
        result = parse_one_ranking(ranking, l++, record, seen);
        if (result != RECORD_OK) break;
    }
    free(seen);
    return result;
}

static int parse_record(const cJSON *object, ranking_record *record) {
    int result = record_string(object, "prompt", &record->prompt);
    if (result == RECORD_OK) result = parse_responses(object, record);
    if (result == RECORD_OK) result = parse_rankings(object, record);
    return result;
}

/* Appends one pair unless it is a duplicate text or over the cap. */
static rc_status emit_pair(const ranking_record *record, int chosen, int rejected, double margin,
                           double weight, const rc_read_options *options,
                           const rc_ranking_options *ranking, rc_pair_list *out,
                           rc_prepare_report *report) {
    if (strcmp(record->responses[chosen], record->responses[rejected]) == 0) {
        if (report) report->dropped[RC_DROP_IDENTICAL]++;
        return RC_OK;
    }
    if (options->max_pairs && out->n >= options->max_pairs) {
        if (report) report->dropped[RC_DROP_OVER_MAX_PAIRS]++;
        return RC_OK;
    }
    rc_status st = rc_pair_list_append(out, record->prompt, record->responses[chosen],
                                       record->responses[rejected]);
    if (st != RC_OK) return st;
    rc_pair *pair = &out->items[out->n - 1];
    if (ranking->margin_from_rank_gap) {
        pair->margin = ranking->margin_scale * margin;
        pair->has_margin = 1;
    }
    if (ranking->weight_per_prompt) {
        pair->weight = weight;
        pair->has_weight = 1;
    }
    return RC_OK;
}

static rc_status expand_record(const ranking_record *record, const rc_read_options *options,
                               const rc_ranking_options *ranking, rc_pair_list *out,
                               rc_prepare_report *report) {
    int k = record->n_responses, n_labelers = record->n_labelers;
    if (k < 2) {
        if (report) report->dropped[RC_DROP_SINGLE_RESPONSE]++;
        return RC_OK;
    }
    double n_combinations = (double)k * (double)(k - 1) / 2.0;
    rc_status st = RC_OK;
    if (ranking->aggregation == RC_RANK_PER_LABELER) {
        double weight = 1.0 / (n_combinations * n_labelers);
        for (int l = 0; l < n_labelers && st == RC_OK; l++) {
            const int *ranks = record->ranks + (size_t)l * (size_t)k;
            for (int i = 0; i < k && st == RC_OK; i++)
                for (int j = i + 1; j < k && st == RC_OK; j++) {
                    int better = ranks[i] < ranks[j] ? i : j, worse = better == i ? j : i;
                    st = emit_pair(record, better, worse, ranks[worse] - ranks[better], weight,
                                   options, ranking, out, report);
                }
        }
        return st;
    }
    /* Mean rank: compare rank sums (exact integers) so ties are exact. */
    double weight = 1.0 / n_combinations;
    for (int i = 0; i < k && st == RC_OK; i++)
        for (int j = i + 1; j < k && st == RC_OK; j++) {
            long sum_i = 0, sum_j = 0;
            for (int l = 0; l < n_labelers; l++) {
                sum_i += record->ranks[(size_t)l * (size_t)k + (size_t)i];
                sum_j += record->ranks[(size_t)l * (size_t)k + (size_t)j];
            }
            if (sum_i == sum_j) {
                if (report) report->dropped[RC_DROP_TIE]++;
                continue;
            }
            int better = sum_i < sum_j ? i : j, worse = better == i ? j : i;
            double gap = (double)labs(sum_i - sum_j) / n_labelers;
            st = emit_pair(record, better, worse, gap, weight, options, ranking, out, report);
        }
    return st;
}

rc_status rc_pairs_read_rankings(const char *path, const rc_read_options *options,
                                 const rc_ranking_options *ranking, rc_pair_list *out,
                                 rc_prepare_report *report) {
    if (!options) options = &default_read;
    if (!ranking) ranking = &default_ranking;
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
        ranking_record record = {0};
        int result = record_parse_object(line, len, &object);
        if (result == RECORD_OK) result = parse_record(object, &record);
        if (result == RECORD_OK) st = expand_record(&record, options, ranking, &pairs, report);
        else st = record_reject(&input, result, options, report);
        free_record(&record);
        cJSON_Delete(object);
        if (st != RC_OK) break;
    }
    return records_finish_pairs(&input, st, &pairs, out, report);
}
