/* Message lists of conversational records, and HH-RLHF dialogues turned into
 * them. */
#include "data/messages.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/records.h"
#include "rewardc/data.h"

int record_messages(const cJSON *object, const char *field, const cJSON **out) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(object, field);
    *out = NULL;
    if (!list) {
        rc_fail(RC_ERR_FORMAT, "missing field \"%s\"", field);
        return RC_DROP_MISSING_FIELD;
    }
    if (!cJSON_IsArray(list)) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" must be a message list like the other fields", field);
        return RC_DROP_WRONG_TYPE;
    }
    if (cJSON_GetArraySize(list) == 0) {
        rc_fail(RC_ERR_FORMAT, "field \"%s\" is an empty message list", field);
        return RC_DROP_INVALID_VALUE;
    }
    int index = 0;
    const cJSON *message;
    cJSON_ArrayForEach(message, list) {
        index++;
        const char *role = NULL, *content = NULL;
        if (!cJSON_IsObject(message)) {
            rc_fail(RC_ERR_FORMAT, "%s[%d] must be an object {\"role\", \"content\"}", field, index - 1);
            return RC_DROP_WRONG_TYPE;
        }
        int result = record_string(message, "role", &role);
        if (result == RECORD_OK) result = record_string(message, "content", &content);
        if (result != RECORD_OK) {
            rc_fail_context(RC_ERR_FORMAT, "in %s[%d]", field, index - 1);
            return result;
        }
        if (!role[0]) {
            rc_fail(RC_ERR_FORMAT, "%s[%d] has an empty role", field, index - 1);
            return RC_DROP_INVALID_VALUE;
        }
    }
    *out = list;
    return RECORD_OK;
}

static const char *field_text(const cJSON *message, const char *name) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(message, name));
}

size_t messages_shared_count(const cJSON *a, const cJSON *b) {
    size_t n = 0;
    const cJSON *x = a ? a->child : NULL, *y = b ? b->child : NULL;
    for (; x && y; x = x->next, y = y->next, n++)
        if (strcmp(field_text(x, "role"), field_text(y, "role")) ||
            strcmp(field_text(x, "content"), field_text(y, "content")))
            break;
    return n;
}

char *messages_slice_json(const cJSON *list, size_t from, size_t to) {
    cJSON *slice = cJSON_CreateArray();
    if (!slice) return NULL;
    size_t k = 0;
    const cJSON *message;
    cJSON_ArrayForEach(message, list) {
        if (k >= from && k < to) {
            /* only role and content travel on, in that order */
            cJSON *copy = cJSON_CreateObject();
            if (!copy || !cJSON_AddItemToArray(slice, copy) ||
                !cJSON_AddStringToObject(copy, "role", field_text(message, "role")) ||
                !cJSON_AddStringToObject(copy, "content", field_text(message, "content"))) {
                cJSON_Delete(slice);
                return NULL;
            }
        }
        k++;
    }
    char *json = cJSON_PrintUnformatted(slice);
    cJSON_Delete(slice);
    return json;
}

/* ---- HH-RLHF dialogues ---- */

static const char human_marker[] = "\n\nHuman:", assistant_marker[] = "\n\nAssistant:";

/* The next marker at or after p: its start, and which (1 human, 2 assistant). */
static const char *next_marker(const char *p, int *which) {
    const char *h = strstr(p, human_marker), *a = strstr(p, assistant_marker);
    if (h && (!a || h < a)) {
        *which = 1;
        return h;
    }
    *which = a ? 2 : 0;
    return a;
}

static int is_trim_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static int add_message(cJSON *list, const char *role, const char *start, const char *end) {
    while (start < end && is_trim_space(*start)) start++;
    while (end > start && is_trim_space(end[-1])) end--;
    size_t n = (size_t)(end - start);
    char *content = malloc(n + 1);
    if (!content) return 0;
    memcpy(content, start, n);
    content[n] = '\0';
    cJSON *message = cJSON_CreateObject();
    int ok = message && cJSON_AddItemToArray(list, message) && cJSON_AddStringToObject(message, "role", role) &&
             cJSON_AddStringToObject(message, "content", content);
    if (!ok && message && !message->prev) cJSON_Delete(message);
    free(content);
    return ok;
}

rc_status rc_dialogue_to_messages(const char *text, int as_prompt, char **json_out) {
    *json_out = NULL;
    cJSON *list = cJSON_CreateArray();
    if (!list) return rc_fail(RC_ERR_OOM, "cannot build a message list");
    int which, ok = 1;
    const char *at = next_marker(text, &which);
    const char *lead = text;
    while (*lead && is_trim_space(*lead)) lead++;
    if (!at || lead < at) { /* no leading marker: the whole text is one assistant turn */
        ok = add_message(list, "assistant", text, text + strlen(text));
    } else {
        while (at && ok) {
            int next_which;
            const char *body = at + (which == 1 ? sizeof human_marker : sizeof assistant_marker) - 1;
            const char *end = next_marker(body, &next_which);
            ok = add_message(list, which == 1 ? "user" : "assistant", body, end ? end : body + strlen(body));
            at = end;
            which = next_which;
        }
    }
    int n = cJSON_GetArraySize(list);
    if (ok && as_prompt && n > 1) { /* a prompt's closing "Assistant:" awaits the response */
        cJSON *last = cJSON_GetArrayItem(list, n - 1);
        if (!strcmp(field_text(last, "role"), "assistant") && !field_text(last, "content")[0])
            cJSON_DeleteItemFromArray(list, n - 1);
    }
    char *json = ok ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    if (!json) return rc_fail(RC_ERR_OOM, "cannot build a message list");
    *json_out = json;
    return RC_OK;
}
