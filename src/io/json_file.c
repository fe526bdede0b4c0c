/* JSON files through cJSON: loading with errors that point at the line and
 * column of a syntax error, and atomic pretty-printed saving. */
#include "rewardc/io.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1-based line and column of byte `offset` in `text`. */
static void line_column(const char *text, size_t offset, size_t *line, size_t *column) {
    size_t l = 1, c = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *column = c;
}

rc_status rc_json_load_file(const char *path, cJSON **out) {
    *out = NULL;
    char *text;
    size_t len;
    rc_status st = rc_read_file(path, &text, &len);
    if (st != RC_OK) return st;
    size_t offset;
    st = rc_json_parse(text, len, out, &offset);
    if (st != RC_OK) {
        size_t line, column;
        line_column(text, offset, &line, &column);
        /* Show a short excerpt so the message is useful without opening the file. */
        char near[24];
        size_t n = 0;
        for (size_t i = offset; i < len && n + 1 < sizeof near && text[i] != '\n' && text[i]; i++)
            near[n++] = text[i];
        near[n] = '\0';
        free(text);
        char why[256];
        snprintf(why, sizeof why, "%s", rc_last_error());
        if (offset >= len) return rc_fail(st, "%s:%zu:%zu: invalid JSON: unexpected end of file", path, line, column);
        if (!near[0]) return rc_fail(st, "%s:%zu:%zu: %s", path, line, column, why);
        return rc_fail(st, "%s:%zu:%zu: %s near '%s'", path, line, column, why, near);
    }
    free(text);
    return RC_OK;
}

rc_status rc_json_save_file(const char *path, const cJSON *json) {
    if (!json) return rc_fail(RC_ERR_INVALID_ARG, "saving %s: no JSON value", path);
    char *text = cJSON_Print(json);
    if (!text) return rc_fail(RC_ERR_OOM, "saving %s: cannot format JSON", path);
    size_t len = strlen(text);
    char *with_newline = malloc(len + 2);
    if (!with_newline) {
        cJSON_free(text);
        return rc_fail(RC_ERR_OOM, "saving %s: cannot allocate %zu bytes", path, len + 2);
    }
    memcpy(with_newline, text, len);
    with_newline[len] = '\n';
    with_newline[len + 1] = '\0';
    cJSON_free(text);
    rc_status st = rc_write_file_atomic(path, with_newline, len + 1);
    free(with_newline);
    return st;
}
