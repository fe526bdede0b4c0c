/* Typed, range-checked JSON fields (see rewardc/io.h): every number read from
 * a file goes through one check, so a wrong type, a fraction or an absurd
 * value is an error naming the file and the field, and a double is converted
 * to an integer only once it is known to fit. */
#include <cjson/cJSON.h>
#include <math.h>

#include "rewardc/io.h"

const char *rc_json_type_name(const cJSON *item) {
    if (!item) return "nothing";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsObject(item)) return "an object";
    return "an unknown value";
}

bool rc_json_has(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return item && !cJSON_IsNull(item);
}

static rc_status get_item(const cJSON *obj, const char *where, const char *key, const cJSON **item) {
    if (!cJSON_IsObject(obj))
        return rc_fail(RC_ERR_FORMAT, "%s: expected a JSON object holding \"%s\", got %s", where, key,
                       rc_json_type_name(obj));
    *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!*item) return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" is missing", where, key);
    return RC_OK;
}

/* A whole number within [min, max] (both exactly representable as doubles
 * or rounded inward by the caller). */
static rc_status get_whole(const cJSON *obj, const char *where, const char *key, double min,
                           double max, double *value) {
    const cJSON *item;
    rc_status st = get_item(obj, where, key, &item);
    if (st != RC_OK) return st;
    if (!cJSON_IsNumber(item))
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be an integer in [%.0f, %.0f], got %s", where,
                       key, min, max, rc_json_type_name(item));
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < min || v > max)
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be an integer in [%.0f, %.0f], got %.17g", where,
                       key, min, max, v);
    *value = v;
    return RC_OK;
}

rc_status rc_json_get_int(const cJSON *obj, const char *where, const char *key, int min, int max,
                          int *value) {
    double v;
    rc_status st = get_whole(obj, where, key, (double)min, (double)max, &v);
    if (st == RC_OK) *value = (int)v;
    return st;
}

rc_status rc_json_get_long(const cJSON *obj, const char *where, const char *key, long min, long max,
                           long *value) {
    /* (double)LONG_MAX rounds up to 2^63, which does not fit a long: keep the
     * bounds strictly inside the range doubles and longs share */
    double lo = (double)min, hi = (double)max;
    if (lo < -0x1p62) lo = -0x1p62;
    if (hi > 0x1p62) hi = 0x1p62;
    double v;
    rc_status st = get_whole(obj, where, key, lo, hi, &v);
    if (st == RC_OK) *value = (long)v;
    return st;
}

rc_status rc_json_get_double(const cJSON *obj, const char *where, const char *key, double min,
                             double max, double *value) {
    const cJSON *item;
    rc_status st = get_item(obj, where, key, &item);
    if (st != RC_OK) return st;
    if (!cJSON_IsNumber(item))
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be a number in [%g, %g], got %s", where, key,
                       min, max, rc_json_type_name(item));
    double v = item->valuedouble;
    if (!isfinite(v) || v < min || v > max)
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be a number in [%g, %g], got %.17g", where, key,
                       min, max, v);
    *value = v;
    return RC_OK;
}

rc_status rc_json_get_bool(const cJSON *obj, const char *where, const char *key, bool *value) {
    const cJSON *item;
    rc_status st = get_item(obj, where, key, &item);
    if (st != RC_OK) return st;
    if (!cJSON_IsBool(item))
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be true or false, got %s", where, key,
                       rc_json_type_name(item));
    *value = cJSON_IsTrue(item);
    return RC_OK;
}

rc_status rc_json_get_string(const cJSON *obj, const char *where, const char *key, const char **value) {
    const cJSON *item;
    rc_status st = get_item(obj, where, key, &item);
    if (st != RC_OK) return st;
    if (!cJSON_IsString(item))
        return rc_fail(RC_ERR_FORMAT, "%s: \"%s\" must be a string, got %s", where, key,
                       rc_json_type_name(item));
    *value = item->valuestring;
    return RC_OK;
}

rc_status rc_check_finite(const char *name, const float *data, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(data[i]))
            return rc_fail(RC_ERR_FORMAT, "tensor %s holds a non-finite value (%g at index %zu)", name,
                           (double)data[i], i);
    return RC_OK;
}
