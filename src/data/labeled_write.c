/* Writes labelled single texts as JSONL {"text": ..., "label": 0|1}, the
 * format `rewardc eval --labeled` reads. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "rewardc/data.h"
#include "rewardc/io.h"

rc_status rc_labeled_write_jsonl(const char *path, const rc_labeled_texts *texts) {
    rc_atomic_file *file = NULL;
    rc_status st = rc_atomic_open(path, &file);
    if (st != RC_OK) return st;
    FILE *out = rc_atomic_stream(file);
    for (size_t i = 0; i < texts->n && st == RC_OK; i++) {
        cJSON *line = cJSON_CreateObject();
        char *text = NULL;
        if (line && cJSON_AddStringToObject(line, "text", texts->texts[i]) &&
            cJSON_AddNumberToObject(line, "label", texts->labels[i]))
            text = cJSON_PrintUnformatted(line);
        if (text) fprintf(out, "%s\n", text);
        else st = rc_fail(RC_ERR_OOM, "cannot format labelled text %zu", i);
        free(text);
        cJSON_Delete(line);
    }
    if (st != RC_OK) {
        rc_atomic_abort(file);
        return st;
    }
    return rc_atomic_commit(file);
}
