/* The tokenization policy's JSON form, stored with a trained model so that
 * eval and score rebuild sequences exactly as training did. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/data.h"

static const char *overflow_name(rc_overflow overflow) {
    return overflow == RC_OVERFLOW_DROP ? "drop" : "truncate";
}

rc_status rc_encode_policy_to_cjson(const rc_encode_policy *policy, cJSON **out) {
    cJSON *object = cJSON_CreateObject();
    int ok = object && cJSON_AddNumberToObject(object, "max_length", (double)policy->max_length) &&
             cJSON_AddBoolToObject(object, "append_eos", policy->append_eos != 0) &&
             cJSON_AddStringToObject(object, "overflow", overflow_name(policy->overflow));
    if (!ok) {
        cJSON_Delete(object);
        return rc_fail(RC_ERR_OOM, "cannot build the encode policy JSON");
    }
    *out = object;
    return RC_OK;
}

rc_status rc_encode_policy_to_json(const rc_encode_policy *policy, char **json_out) {
    cJSON *object = NULL;
    rc_status st = rc_encode_policy_to_cjson(policy, &object);
    if (st != RC_OK) return st;
    char *text = cJSON_Print(object);
    cJSON_Delete(object);
    if (!text) return rc_fail(RC_ERR_OOM, "cannot print the encode policy JSON");
    *json_out = text;
    return RC_OK;
}

rc_status rc_encode_policy_from_cjson(const cJSON *object, rc_encode_policy *out) {
    if (!cJSON_IsObject(object))
        return rc_fail(RC_ERR_FORMAT, "encode policy: expected a JSON object");
    const cJSON *item;
    cJSON_ArrayForEach(item, object) {
        if (strcmp(item->string, "max_length") != 0 && strcmp(item->string, "append_eos") != 0 &&
            strcmp(item->string, "overflow") != 0)
            return rc_fail(RC_ERR_FORMAT, "encode policy: unknown field \"%s\"", item->string);
    }
    rc_encode_policy policy;
    const cJSON *max_length = cJSON_GetObjectItemCaseSensitive(object, "max_length");
    if (!max_length) return rc_fail(RC_ERR_FORMAT, "encode policy: missing field \"max_length\"");
    double value = cJSON_GetNumberValue(max_length);
    if (!cJSON_IsNumber(max_length) || !(value >= 1 && value <= 1e9) || value != floor(value))
        return rc_fail(RC_ERR_FORMAT, "encode policy: \"max_length\" must be a positive integer");
    policy.max_length = (size_t)value;

    const cJSON *append_eos = cJSON_GetObjectItemCaseSensitive(object, "append_eos");
    if (!append_eos) return rc_fail(RC_ERR_FORMAT, "encode policy: missing field \"append_eos\"");
    if (!cJSON_IsBool(append_eos))
        return rc_fail(RC_ERR_FORMAT, "encode policy: \"append_eos\" must be true or false");
    policy.append_eos = cJSON_IsTrue(append_eos) ? 1 : 0;

    const cJSON *overflow = cJSON_GetObjectItemCaseSensitive(object, "overflow");
    if (!overflow) return rc_fail(RC_ERR_FORMAT, "encode policy: missing field \"overflow\"");
    const char *name = cJSON_GetStringValue(overflow);
    if (name && strcmp(name, "truncate") == 0) policy.overflow = RC_OVERFLOW_TRUNCATE;
    else if (name && strcmp(name, "drop") == 0) policy.overflow = RC_OVERFLOW_DROP;
    else return rc_fail(RC_ERR_FORMAT, "encode policy: \"overflow\" must be \"truncate\" or \"drop\"");
    *out = policy;
    return RC_OK;
}

rc_status rc_encode_policy_from_json(const char *json, rc_encode_policy *out) {
    cJSON *object = cJSON_Parse(json);
    if (!object) return rc_fail(RC_ERR_FORMAT, "encode policy: malformed JSON");
    rc_status st = rc_encode_policy_from_cjson(object, out);
    cJSON_Delete(object);
    return st;
}
