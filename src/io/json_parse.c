/* One strict way to turn text into cJSON, shared by every reader: exactly one
 * value (only whitespace after it), no "\u0000" escape (a C string would end
 * there and silently lose the rest of the text), and of an object's duplicate
 * keys the last one wins, as in Python's json module (and so transformers and
 * tokenizers): cJSON alone would answer lookups with the first. */
#include "rewardc/io.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Offset of the first "\u0000" escape, or len. Backslashes occur
 * only inside strings in valid JSON, and each escape is skipped whole, so
 * "\\u0000" (an escaped backslash, then text) is not taken for one. */
static size_t find_nul_escape(const char *text, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] != '\\') continue;
        if (text[i + 1] == 'u' && i + 6 <= len && !memcmp(text + i + 2, "0000", 4)) return i;
        i++; /* the escaped character */
    }
    return len;
}

typedef struct {
    cJSON *item;
    size_t index;
} keyed_child;

static int compare_keyed(const void *a, const void *b) {
    const keyed_child *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);
    if (c) return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Removes, in every object of the tree, each member that a later member of
 * the same name overrides. Sorting the members by (name, position) finds them
 * in n log n, which matters for a 50,000-entry vocabulary. */
static rc_status drop_overridden_keys(cJSON *node) {
    for (; node; node = node->next) {
        if (cJSON_IsObject(node) && node->child && node->child->next) {
            size_t n = 0;
            for (cJSON *c = node->child; c; c = c->next) n++;
            keyed_child *members = malloc(n * sizeof *members);
            if (!members) return rc_fail(RC_ERR_OOM, "cannot sort %zu JSON keys", n);
            size_t i = 0;
            for (cJSON *c = node->child; c; c = c->next, i++) members[i] = (keyed_child){c, i};
            qsort(members, n, sizeof *members, compare_keyed);
            for (i = 0; i + 1 < n; i++)
                if (!strcmp(members[i].item->string, members[i + 1].item->string))
                    cJSON_Delete(cJSON_DetachItemViaPointer(node, members[i].item));
            free(members);
        }
        if (node->child) {
            rc_status st = drop_overridden_keys(node->child);
            if (st != RC_OK) return st;
        }
    }
    return RC_OK;
}

rc_status rc_json_parse(const char *text, size_t len, cJSON **out, size_t *error_offset) {
    *out = NULL;
    *error_offset = 0;
    const char *nul_byte = memchr(text, '\0', len);
    if (nul_byte) {
        *error_offset = (size_t)(nul_byte - text);
        return rc_fail(RC_ERR_FORMAT, "invalid JSON: a NUL byte");
    }
    /* parsed as a C string (text[len] is its NUL), so a value cut short is
     * told apart from an error at its last byte */
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts(text, &end, 0);
    if (!json) {
        *error_offset = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        if (*error_offset >= len) return rc_fail(RC_ERR_FORMAT, "invalid JSON: unexpected end of %s",
                                                 len ? "input" : "input (it is empty)");
        return rc_fail(RC_ERR_FORMAT, "invalid JSON");
    }
    for (const char *p = end; p < text + len; p++) {
        if (!is_json_space(*p)) {
            cJSON_Delete(json);
            *error_offset = (size_t)(p - text);
            return rc_fail(RC_ERR_FORMAT, "unexpected text after the JSON value (one value expected)");
        }
    }
    size_t nul = find_nul_escape(text, (size_t)(end - text));
    if (nul < (size_t)(end - text)) {
        cJSON_Delete(json);
        *error_offset = nul;
        return rc_fail(RC_ERR_FORMAT, "a string holds \\u0000 (a NUL character), which would cut it short");
    }
    rc_status st = drop_overridden_keys(json);
    if (st != RC_OK) {
        cJSON_Delete(json);
        return st;
    }
    *out = json;
    return RC_OK;
}
