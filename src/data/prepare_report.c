/* The preparation report: how many records were read, how many pairs were
 * written, and how many were dropped for each reason. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/data.h"
#include "rewardc/io.h"

static const char *const reason_names[RC_DROP_REASON_COUNT] = {
    [RC_DROP_BAD_JSON] = "bad_json",
    [RC_DROP_MISSING_FIELD] = "missing_field",
    [RC_DROP_WRONG_TYPE] = "wrong_type",
    [RC_DROP_INVALID_VALUE] = "invalid_value",
    [RC_DROP_TIE] = "tie",
    [RC_DROP_IDENTICAL] = "identical",
    [RC_DROP_SINGLE_RESPONSE] = "single_response",
    [RC_DROP_UNPAIRED] = "unpaired",
    [RC_DROP_OVER_MAX_PAIRS] = "over_max_pairs",
    [RC_DROP_IGNORED_FILE] = "ignored_file",
};

const char *rc_drop_reason_name(rc_drop_reason reason) {
    if ((int)reason < 0 || reason >= RC_DROP_REASON_COUNT) return "unknown";
    return reason_names[reason];
}

void rc_prepare_report_init(rc_prepare_report *report, const char *source) {
    memset(report, 0, sizeof *report);
    snprintf(report->source, sizeof report->source, "%s", source ? source : "");
}

void rc_prepare_report_skip(rc_prepare_report *report, rc_drop_reason reason,
                            const char *message) {
    if ((int)reason < 0 || reason >= RC_DROP_REASON_COUNT) return;
    report->dropped[reason]++;
    if (!report->first_bad[0] && message)
        snprintf(report->first_bad, sizeof report->first_bad, "%s", message);
}

static cJSON *report_to_cjson(const rc_prepare_report *report) {
    cJSON *object = cJSON_CreateObject();
    if (!object) return NULL;
    int ok = cJSON_AddStringToObject(object, "source", report->source) &&
             cJSON_AddNumberToObject(object, "records_read", (double)report->records_read) &&
             cJSON_AddNumberToObject(object, "pairs_written", (double)report->pairs_written);
    cJSON *dropped = ok ? cJSON_AddObjectToObject(object, "dropped") : NULL;
    ok = dropped != NULL;
    for (int r = 0; ok && r < RC_DROP_REASON_COUNT; r++)
        ok = cJSON_AddNumberToObject(dropped, reason_names[r], (double)report->dropped[r]) != NULL;
    if (ok && report->first_bad[0])
        ok = cJSON_AddStringToObject(object, "first_bad", report->first_bad) != NULL;
    if (!ok) {
        cJSON_Delete(object);
        return NULL;
    }
    return object;
}

rc_status rc_prepare_report_to_json(const rc_prepare_report *report, char **json_out) {
    cJSON *object = report_to_cjson(report);
    char *text = object ? cJSON_Print(object) : NULL;
    cJSON_Delete(object);
    if (!text) return rc_fail(RC_ERR_OOM, "cannot render the preparation report as JSON");
    *json_out = text;
    return RC_OK;
}

rc_status rc_prepare_report_write(const char *path, const rc_prepare_report *report) {
    cJSON *object = report_to_cjson(report);
    if (!object) return rc_fail(RC_ERR_OOM, "cannot render the preparation report as JSON");
    rc_status st = rc_json_save_file(path, object);
    cJSON_Delete(object);
    return st;
}
