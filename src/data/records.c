/* Typed field access and bad-record handling shared by the JSONL readers. */
#include "data/records.h"

#include "rewardc/io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int record_parse_object(const char *line, size_t len, cJSON **object) {
    cJSON *parsed = NULL;
    size_t offset;
    if (rc_json_parse(line, len, &parsed, &offset) != RC_OK) {
        /* rc_json_parse's reason, with the column (the reader adds file and line) */
        char why[256];
        snprintf(why, sizeof why, "%s", rc_last_error());
        if (!strncmp(why, "invalid JSON", 12)) rc_fail(RC_ERR_FORMAT, "malformed JSON near column %zu", offset + 1);
        else rc_fail(RC_ERR_FORMAT, "%s at column %zu", why, offset + 1);
        return RC_DROP_BAD_JSON;
    }
    if (!cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        rc_fail(RC_ERR_FORMAT, "expected a JSON object");
        return RC_DROP_BAD_JSON;
    }
    *object = parsed;
    return RECORD_OK;
}

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsObject(item)) return "an object";
    return "an unknown value";
}

static int check_string_item(const cJSON *item, const char *field, const char **out) {
    if (!cJSON_IsString(item)) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" must be a string, got %s", field,
                json_type_name(item));
        return RC_DROP_WRONG_TYPE;
    }
    const char *text = cJSON_GetStringValue(item);
    if (!utf8_is_valid(text, strlen(text))) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" is not valid UTF-8", field);
        return RC_DROP_INVALID_VALUE;
    }
    *out = text;
    return RECORD_OK;
}

int record_string(const cJSON *object, const char *field, const char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, field);
    if (!item) {
        rc_fail(RC_ERR_FORMAT, "missing field \"%s\"", field);
        return RC_DROP_MISSING_FIELD;
    }
    return check_string_item(item, field, out);
}

int record_optional_string(const cJSON *object, const char *field, const char **out) {
    *out = NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, field);
    if (!item || cJSON_IsNull(item)) return RECORD_OK;
    return check_string_item(item, field, out);
}

int record_optional_number(const cJSON *object, const char *field, double *out, int *present) {
    *present = 0;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, field);
    if (!item || cJSON_IsNull(item)) return RECORD_OK;
    if (!cJSON_IsNumber(item)) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" must be a number, got %s", field,
                json_type_name(item));
        return RC_DROP_WRONG_TYPE;
    }
    double value = cJSON_GetNumberValue(item);
    if (!isfinite(value)) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" must be finite", field);
        return RC_DROP_INVALID_VALUE;
    }
    *out = value;
    *present = 1;
    return RECORD_OK;
}

int utf8_is_valid(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        unsigned code, min;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, code = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, code = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, code = c & 0x07, min = 0x10000;
        else return 0;
        if (len - i <= extra) return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            code = (code << 6) | (s[i + k] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
        i += extra + 1;
    }
    return 1;
}

rc_status record_reject(const rc_jsonl_input *input, int reason, const rc_read_options *options,
                        rc_prepare_report *report) {
    char message[600];
    snprintf(message, sizeof message, "%s:%zu: %s", input->path, input->line_number,
             rc_last_error());
    if (reason == RECORD_FATAL) return rc_fail(RC_ERR_OOM, "%s", message);
    if (options && options->skip_bad) {
        if (report) rc_prepare_report_skip(report, (rc_drop_reason)reason, message);
        return RC_OK;
    }
    return rc_fail(RC_ERR_FORMAT, "%s", message);
}

rc_status records_finish_pairs(rc_jsonl_input *input, rc_status st, rc_pair_list *pairs,
                               rc_pair_list *out, rc_prepare_report *report) {
    if (st != RC_OK) rc_jsonl_abort(input);
    else st = rc_jsonl_close(input);
    if (st != RC_OK) {
        rc_pair_list_free(pairs);
        return st;
    }
    if (report) report->pairs_written = pairs->n;
    *out = *pairs;
    return RC_OK;
}
