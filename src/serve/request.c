/* Request bodies to texts, and results to response bodies. Every parse error
 * names the field at fault (param, a JSON path such as "input[2].response"),
 * so a client can fix its request from the message alone. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"

static int fail(serve_input *in, int status, const char *param, const char *fmt, ...) {
    in->status = status;
    snprintf(in->param, sizeof in->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->message, sizeof in->message, fmt, ap);
    va_end(ap);
    return 1;
}

void serve_input_free(serve_input *in) {
    for (size_t i = 0; in->texts && i < in->n; i++) {
        free(in->texts[i].prompt);
        free(in->texts[i].response);
        free(in->texts[i].text);
        free(in->texts[i].messages);
        cJSON_Delete(in->texts[i].messages_json);
    }
    free(in->texts);
    free(in->model);
    in->texts = NULL;
    in->n = 0;
    in->model = NULL;
}

static int set_text(serve_input *in, serve_text *t, const char *prompt, const char *response,
                    const char *param) {
    t->prompt = strdup(prompt);
    t->response = strdup(response);
    if (!t->prompt || !t->response) return fail(in, 500, param, "out of memory");
    return 0;
}

static int set_literal(serve_input *in, serve_text *t, const char *text, const char *param) {
    t->text = strdup(text);
    return t->text ? 0 : fail(in, 500, param, "out of memory");
}

/* A conversation, checked here and rendered by the model (its chat
 * template, or the HH-RLHF transcript: rc_reward_model_encode_messages). */
static int parse_messages(serve_input *in, const cJSON *messages, serve_text *t, const char *at) {
    char param[96];
    snprintf(param, sizeof param, "%smessages", at);
    const int n = cJSON_GetArraySize(messages);
    if (!cJSON_IsArray(messages) || n == 0)
        return fail(in, 400, param, "must be a non-empty array of {\"role\", \"content\"}");
    t->messages_json = cJSON_Duplicate(messages, 1);
    t->messages = calloc((size_t)n, sizeof *t->messages);
    if (!t->messages_json || !t->messages) return fail(in, 500, param, "out of memory");
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, t->messages_json) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(param, sizeof param, "%smessages[%d].role", at, i);
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant") &&
             strcmp(role->valuestring, "system")))
            return fail(in, 400, param, "must be \"user\", \"assistant\" or \"system\"");
        snprintf(param, sizeof param, "%smessages[%d].content", at, i);
        if (!cJSON_IsString(content)) return fail(in, 400, param, "must be a string");
        if (i == n - 1 && strcmp(role->valuestring, "assistant")) {
            snprintf(param, sizeof param, "%smessages[%d].role", at, i);
            return fail(in, 400, param, "the last message is the response scored: it must be the assistant's");
        }
        t->messages[t->n_messages++] = (rc_chat_message){role->valuestring, content->valuestring};
        i++;
    }
    return 0;
}

/* One text: {"prompt"?, "response"} | {"text"} | {"messages"} (or, in a list,
 * a bare string). `at` is the JSON path of the object, "" or "input[3]." */
static int parse_text(serve_input *in, const cJSON *item, serve_text *t, const char *at,
                      int allow_string) {
    char param[96];
    if (allow_string && cJSON_IsString(item)) {
        snprintf(param, sizeof param, "%.*s", (int)(strlen(at) ? strlen(at) - 1 : 0), at);
        if (!item->valuestring[0]) return fail(in, 400, param, "must be a non-empty string");
        return set_literal(in, t, item->valuestring, param);
    }
    if (!cJSON_IsObject(item)) {
        snprintf(param, sizeof param, "%.*s", (int)(strlen(at) ? strlen(at) - 1 : 0), at);
        return fail(in, 400, param[0] ? param : "body",
                    "must be an object with \"response\" (and optional \"prompt\"), \"text\" or \"messages\"");
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(item, "prompt");
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(item, "response");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(item, "text");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(item, "messages");
    if ((response != NULL) + (text != NULL) + (messages != NULL) != 1) {
        snprintf(param, sizeof param, "%sresponse", at);
        return fail(in, 400, param, "give exactly one of \"response\" (with optional \"prompt\"), \"text\" or \"messages\"");
    }
    if (messages) return parse_messages(in, messages, t, at);
    const cJSON *body = response ? response : text;
    snprintf(param, sizeof param, "%s%s", at, response ? "response" : "text");
    if (!cJSON_IsString(body) || !body->valuestring[0])
        return fail(in, 400, param, "must be a non-empty string");
    if (prompt && !response) {
        snprintf(param, sizeof param, "%sprompt", at);
        return fail(in, 400, param, "goes with \"response\", not \"text\"");
    }
    if (prompt && !cJSON_IsString(prompt)) {
        snprintf(param, sizeof param, "%sprompt", at);
        return fail(in, 400, param, "must be a string");
    }
    if (text) return set_literal(in, t, body->valuestring, param);
    return set_text(in, t, prompt ? prompt->valuestring : "", body->valuestring, param);
}

static int parse_threshold(serve_input *in, const cJSON *root) {
    const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(root, "threshold");
    if (!threshold || cJSON_IsNull(threshold)) return 0;
    if (!cJSON_IsNumber(threshold) || !isfinite(threshold->valuedouble))
        return fail(in, 400, "threshold", "must be a number");
    in->has_threshold = 1;
    in->threshold = threshold->valuedouble;
    return 0;
}

static int parse_model(serve_input *in, const cJSON *root) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model || cJSON_IsNull(model)) return 0;
    if (!cJSON_IsString(model)) return fail(in, 400, "model", "must be a string");
    in->model = strdup(model->valuestring);
    return in->model ? 0 : fail(in, 500, "model", "out of memory");
}

/* "input" of /v1/score (objects or strings) or /classify (strings): a list,
 * or one item. */
static int parse_input_list(serve_input *in, const cJSON *input, int max_texts, int strings_only) {
    if (!input) return fail(in, 400, "input", "is required");
    const int is_list = cJSON_IsArray(input);
    const int n = is_list ? cJSON_GetArraySize(input) : 1;
    if (n == 0) return fail(in, 400, "input", "must not be empty");
    if (n > max_texts)
        return fail(in, 413, "input", "has %d texts; at most %d per request", n, max_texts);
    in->texts = calloc((size_t)n, sizeof *in->texts);
    if (!in->texts) return fail(in, 500, "input", "out of memory");
    const cJSON *item = is_list ? input->child : input;
    for (int i = 0; i < n; i++, item = item->next) {
        char at[32];
        if (is_list) snprintf(at, sizeof at, "input[%d].", i);
        else snprintf(at, sizeof at, "input.");
        in->n = (size_t)i + 1; /* so that free sees what was set */
        if (strings_only && !cJSON_IsString(item)) {
            at[strlen(at) - 1] = '\0';
            return fail(in, 400, at, "must be a string (token-id input is not supported)");
        }
        if (parse_text(in, item, &in->texts[i], at, 1)) return 1;
    }
    return 0;
}

int serve_parse_request(serve_endpoint ep, const char *body, size_t len, int max_texts,
                        serve_input *in) {
    memset(in, 0, sizeof *in);
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        return fail(in, 400, "body", "is not valid JSON (near byte %ld)",
                    where && where >= body ? (long)(where - body) : 0L);
    }
    int bad = 0;
    if (!cJSON_IsObject(root)) bad = fail(in, 400, "body", "must be a JSON object");
    if (!bad) bad = parse_model(in, root);
    if (!bad && ep != EP_CLASSIFY) bad = parse_threshold(in, root);
    if (!bad && ep == EP_SCORE)
        bad = parse_input_list(in, cJSON_GetObjectItemCaseSensitive(root, "input"), max_texts, 0);
    if (!bad && ep == EP_CLASSIFY)
        bad = parse_input_list(in, cJSON_GetObjectItemCaseSensitive(root, "input"), max_texts, 1);
    if (!bad && ep == EP_GATE) {
        in->texts = calloc(1, sizeof *in->texts);
        in->n = 1;
        bad = in->texts ? parse_text(in, root, &in->texts[0], "", 0) : fail(in, 500, "body", "out of memory");
    }
    cJSON_Delete(root);
    if (bad) serve_input_free(in);
    return bad;
}

/* %.9g round-trips a float: the same digits `rewardc score` prints */
static cJSON *float_raw(double value) {
    char text[32];
    snprintf(text, sizeof text, "%.9g", value);
    return cJSON_CreateRaw(text);
}

static char *print_and_free(cJSON *root) {
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

static void add_usage(cJSON *root, size_t tokens, int completion) {
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)tokens);
    if (completion) {
        cJSON_AddNumberToObject(usage, "completion_tokens", 0);
        cJSON_AddNullToObject(usage, "prompt_tokens_details");
    }
}

char *serve_render_result(serve_endpoint ep, const serve_input *in, const serve_job *job) {
    const rc_reward_meta *meta = &job->model->rm.meta;
    const int has_threshold = in->has_threshold || meta->has_threshold;
    const double threshold = in->has_threshold ? in->threshold : meta->threshold;
    cJSON *root = cJSON_CreateObject();
    if (ep == EP_GATE) {
        const float reward = job->rewards[0];
        cJSON_AddStringToObject(root, "decision", reward >= threshold ? "accept" : "block");
        cJSON_AddItemToObject(root, "reward", float_raw(reward));
        cJSON_AddItemToObject(root, "threshold", float_raw(threshold));
        cJSON_AddBoolToObject(root, "truncated", job->outcomes[0] != RC_ENCODED_WHOLE);
        cJSON_AddStringToObject(root, "model", job->model->name);
        cJSON_AddNumberToObject(root, "model_version", job->model->version);
        return print_and_free(root);
    }
    if (ep == EP_CLASSIFY) {
        char id[64];
        snprintf(id, sizeof id, "classify-%lx%06lx", (unsigned long)time(NULL),
                 (unsigned long)(serve_now() * 1e6) & 0xffffff);
        cJSON_AddStringToObject(root, "id", id);
        cJSON_AddStringToObject(root, "object", "list");
        cJSON_AddNumberToObject(root, "created", (double)time(NULL));
    }
    cJSON_AddStringToObject(root, "model", job->model->name);
    cJSON_AddNumberToObject(root, "model_version", job->model->version);
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < job->n; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "index", (double)i);
        const float reward = job->rewards[i];
        if (ep == EP_CLASSIFY) {
            /* vLLM's shape for a one-label classifier: the sigmoid of the logit */
            cJSON_AddStringToObject(item, "label", "LABEL_0");
            cJSON *probs = cJSON_AddArrayToObject(item, "probs");
            cJSON_AddItemToArray(probs, float_raw(1.0 / (1.0 + exp(-(double)reward))));
            cJSON_AddNumberToObject(item, "num_classes", 1);
            cJSON_AddStringToObject(item, "object", "classification");
        } else {
            cJSON_AddItemToObject(item, "reward", float_raw(reward));
            if (meta->has_reward_stats && meta->reward_std > 0)
                cJSON_AddItemToObject(item, "normalized",
                                      float_raw((reward - meta->reward_mean) / meta->reward_std));
            else
                cJSON_AddNullToObject(item, "normalized");
            if (has_threshold)
                cJSON_AddStringToObject(item, "decision", reward >= threshold ? "accept" : "block");
            cJSON_AddBoolToObject(item, "truncated", job->outcomes[i] != RC_ENCODED_WHOLE);
        }
        cJSON_AddItemToArray(data, item);
    }
    add_usage(root, job->tokens, ep == EP_CLASSIFY);
    return print_and_free(root);
}

char *serve_render_error(int status, const char *message, const char *param) {
    cJSON *root = cJSON_CreateObject();
    cJSON *error = cJSON_AddObjectToObject(root, "error");
    char text[400];
    if (param && param[0]) snprintf(text, sizeof text, "%s: %s", param, message);
    else snprintf(text, sizeof text, "%s", message);
    cJSON_AddStringToObject(error, "message", text);
    cJSON_AddStringToObject(error, "type",
                            status == 400 || status == 413 || status == 404 || status == 405 ||
                                    status == 415
                                ? "invalid_request_error"
                                : status == 503 ? "overloaded_error" : "server_error");
    if (param && param[0]) cJSON_AddStringToObject(error, "param", param);
    else cJSON_AddNullToObject(error, "param");
    cJSON_AddNumberToObject(error, "code", status);
    return print_and_free(root);
}

char *serve_render_models(const serve_model *m) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    if (m) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", m->name);
        cJSON_AddStringToObject(item, "object", "model");
        cJSON_AddNumberToObject(item, "created", 0);
        cJSON_AddStringToObject(item, "owned_by", "rewardc");
        cJSON_AddNumberToObject(item, "version", m->version);
        cJSON_AddNumberToObject(item, "max_model_len", (double)m->rm.meta.policy.max_length);
        if (m->rm.meta.has_threshold) cJSON_AddItemToObject(item, "threshold", float_raw(m->rm.meta.threshold));
        else cJSON_AddNullToObject(item, "threshold");
        cJSON_AddItemToArray(data, item);
    }
    return print_and_free(root);
}

char *serve_render_health(const serve_model *m, int draining) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", draining ? "draining" : m ? "ok" : "loading");
    if (m) {
        cJSON_AddStringToObject(root, "model", m->name);
        cJSON_AddNumberToObject(root, "model_version", m->version);
    }
    return print_and_free(root);
}
