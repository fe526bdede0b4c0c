/* Writes the normalised pairs JSONL that train, eval and score read:
 * {"prompt","chosen","rejected"} plus "margin"/"weight" when present. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "rewardc/data.h"
#include "rewardc/io.h"

/* One pair as a single-line JSON object (caller frees). */
/* Adds a field holding the parsed JSON array `messages`. */
static int add_messages(cJSON *object, const char *name, const char *messages) {
    cJSON *array = cJSON_Parse(messages);
    if (!cJSON_IsArray(array)) {
        cJSON_Delete(array);
        return 0;
    }
    return cJSON_AddItemToObject(object, name, array);
}

static char *pair_to_json_line(const rc_pair *pair) {
    cJSON *object = cJSON_CreateObject();
    if (!object) return NULL;
    int ok;
    if (rc_pair_is_conversational(pair))
        ok = (!pair->prompt_messages || add_messages(object, "prompt", pair->prompt_messages)) &&
             add_messages(object, "chosen", pair->chosen_messages) &&
             add_messages(object, "rejected", pair->rejected_messages);
    else
        ok = cJSON_AddStringToObject(object, "prompt", pair->prompt) &&
             cJSON_AddStringToObject(object, "chosen", pair->chosen) &&
             cJSON_AddStringToObject(object, "rejected", pair->rejected);
    if (ok && pair->has_margin) ok = cJSON_AddNumberToObject(object, "margin", pair->margin) != NULL;
    if (ok && pair->has_weight) ok = cJSON_AddNumberToObject(object, "weight", pair->weight) != NULL;
    char *line = ok ? cJSON_PrintUnformatted(object) : NULL;
    cJSON_Delete(object);
    return line;
}

rc_status rc_pairs_write_jsonl(const char *path, const rc_pair_list *pairs) {
    rc_atomic_file *file = NULL;
    rc_status st = rc_atomic_open(path, &file);
    if (st != RC_OK) return st;
    FILE *stream = rc_atomic_stream(file);
    for (size_t i = 0; i < pairs->n; i++) {
        char *line = pair_to_json_line(&pairs->items[i]);
        if (!line) {
            rc_atomic_abort(file);
            return rc_fail(RC_ERR_OOM, "%s: cannot render pair %zu as JSON (out of memory or "
                           "message lists that are not JSON arrays)", path, i + 1);
        }
        int failed = fputs(line, stream) == EOF || fputc('\n', stream) == EOF;
        free(line);
        if (failed) {
            rc_atomic_abort(file);
            return rc_fail(RC_ERR_IO, "%s: write failed at pair %zu", path, i + 1);
        }
    }
    return rc_atomic_commit(file);
}
