/* Chat templates without a Jinja engine: the template text of a model folder
 * is recognised as one of the families whose rendering is known (ChatML with
 * or without a default system message, Llama-3, Gemma, Mistral) and a message
 * list is rendered as transformers' apply_chat_template(tokenize=False)
 * renders it with that template. Anything else is refused, naming the start
 * of the template, rather than rendered approximately. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "tokenizer/tokenizer_internal.h"

typedef enum { FAMILY_CHATML, FAMILY_LLAMA3, FAMILY_GEMMA, FAMILY_MISTRAL } chat_family;

struct rc_chat_template {
    chat_family family;
    char *default_system; /* ChatML: the system message used when the first is not one */
    char *bos_token;      /* "" when the tokenizer has none */
    char *eos_token;
    int starts_with_bos;  /* the template writes bos_token first */
    int eos_then_space;   /* Mistral v0.1: assistant turns end with eos_token + ' ' */
};

static const char *const family_names[] = {"chatml", "llama3", "gemma", "mistral"};

static char *copy_string(const char *s, size_t len) {
    char *c = malloc(len + 1);
    if (!c) return NULL;
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

/* ---- a growing output string ---- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} text_buffer;

static void put_bytes(text_buffer *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(text_buffer *b, const char *s) { put_bytes(b, s, strlen(s)); }

/* Python's str.isspace, which Jinja's trim (str.strip) uses: categories Zs
 * and the bidi classes WS, B, S (so U+001C..U+001F count, unlike White_Space). */
static int python_is_space(uint32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
        cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return 1;
    return 0;
}

/* Jinja's `| trim` of content (valid UTF-8 or not: invalid bytes are kept). */
static void put_trimmed(text_buffer *b, const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), start = 0, end = len;
    uint32_t cp;
    while (start < end) {
        size_t valid = rc_utf8_valid_prefix(u + start, end - start);
        if (valid == 0) break;
        size_t n = rc_utf8_decode(u + start, end - start, &cp);
        if (!python_is_space(cp)) break;
        start += n;
    }
    while (end > start) {
        size_t p = end - 1;
        while (p > start && (u[p] & 0xc0) == 0x80) p--;
        if (rc_utf8_valid_prefix(u + p, end - p) != end - p) break;
        rc_utf8_decode(u + p, end - p, &cp);
        if (!python_is_space(cp)) break;
        end = p;
    }
    put_bytes(b, s + start, end - start);
}

/* ---- recognising a template ---- */

/* In the template source a newline inside a string literal is written either
 * as itself or as the escape \n; this matches `text` (with real newlines)
 * at t and returns the source length matched, or 0. */
static size_t match_source(const char *t, const char *text) {
    size_t i = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '\n' && t[i] == '\\' && t[i + 1] == 'n') i += 2;
        else if (t[i] == *c) i++;
        else return 0;
    }
    return i;
}

static const char *find_source(const char *t, const char *text) {
    for (; *t; t++)
        if (match_source(t, text)) return t;
    return NULL;
}

/* ChatML's default system message: a literal '<|im_start|>system\n...<|im_end|>'
 * with plain text in between (not an expression such as messages[0]['content']). */
static rc_status chatml_default_system(const char *t, char **out) {
    *out = NULL;
    const char *open = "<|im_start|>system\n";
    for (const char *at = find_source(t, open); at; at = find_source(at + 1, open)) {
        const char *body = at + match_source(at, open);
        const char *close = strstr(body, "<|im_end|>");
        if (!close || close == body) continue;
        size_t n = (size_t)(close - body);
        if (memchr(body, '\'', n) || memchr(body, '"', n) || memchr(body, '{', n) || memchr(body, '}', n)) continue;
        char *text = malloc(n + 1);
        if (!text) return rc_fail(RC_ERR_OOM, "chat template: cannot copy the default system message");
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (body[i] == '\\' && i + 1 < n) { /* the string literal's escapes */
                char e = body[++i];
                text[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            } else {
                text[o++] = body[i];
            }
        }
        text[o] = '\0';
        *out = text;
        return RC_OK;
    }
    return RC_OK;
}

static rc_status not_recognised(const char *t, const char *why) {
    char start[81];
    size_t n = 0;
    for (const char *c = t; *c && n < 80; c++) start[n++] = (*c == '\n') ? ' ' : *c;
    start[n] = '\0';
    return rc_fail(RC_ERR_UNSUPPORTED, "chat template not recognised (%s; rewardc renders ChatML, Llama-3, "
                   "Gemma and Mistral templates): \"%s%s\"", why, start, strlen(t) > 80 ? "..." : "");
}

static rc_status recognise(const char *t, rc_chat_template *ct) {
    if (strstr(t, "<|im_start|>") && strstr(t, "<|im_end|>")) {
        if (strstr(t, "<think>") || strstr(t, "reasoning_content"))
            return not_recognised(t, "a ChatML template with reasoning turns (Qwen3-style)");
        if (!strstr(t, "'<|im_start|>' + message"))
            return not_recognised(t, "ChatML markers, but not the '<|im_start|>' + message... turn");
        ct->family = FAMILY_CHATML;
        return chatml_default_system(t, &ct->default_system);
    }
    if (strstr(t, "<|start_header_id|>") && strstr(t, "<|eot_id|>")) {
        if (strstr(t, "Cutting Knowledge Date") || strstr(t, "strftime_now"))
            return not_recognised(t, "a Llama-3.1+ template (system header with dates and tools)");
        if (!strstr(t, "message['content'] | trim") || !strstr(t, "bos_token + content"))
            return not_recognised(t, "Llama-3 markers, but not Llama-3's turn");
        ct->family = FAMILY_LLAMA3;
        ct->starts_with_bos = 1;
        return RC_OK;
    }
    if (strstr(t, "<start_of_turn>")) {
        if (!strstr(t, "System role not supported") || !strstr(t, "message['content'] | trim"))
            return not_recognised(t, "Gemma markers, but not Gemma (1/2)'s template");
        ct->family = FAMILY_GEMMA;
        ct->starts_with_bos = strncmp(t, "{{ bos_token }}", 15) == 0;
        return RC_OK;
    }
    if (strstr(t, "'[INST] ' + message['content'] + ' [/INST]'")) {
        ct->family = FAMILY_MISTRAL;
        ct->starts_with_bos = strncmp(t, "{{ bos_token }}", 15) == 0;
        ct->eos_then_space = strstr(t, "message['content'] + eos_token + ' '") != NULL;
        if (!ct->eos_then_space && !strstr(t, "message['content'] + eos_token"))
            return not_recognised(t, "[INST] turns, but no assistant turn ending in eos_token");
        return RC_OK;
    }
    return not_recognised(t, "no known family's markers");
}

void rc_chat_template_free(rc_chat_template *t) {
    if (!t) return;
    free(t->default_system);
    free(t->bos_token);
    free(t->eos_token);
    free(t);
}

rc_status rc_chat_template_recognise(const char *template_text, const char *bos_token,
                                     const char *eos_token, rc_chat_template **out) {
    *out = NULL;
    if (!template_text) return rc_fail(RC_ERR_INVALID_ARG, "chat template: no template text");
    rc_chat_template *t = calloc(1, sizeof *t);
    if (!t) return rc_fail(RC_ERR_OOM, "chat template: cannot allocate");
    t->bos_token = copy_string(bos_token ? bos_token : "", bos_token ? strlen(bos_token) : 0);
    t->eos_token = copy_string(eos_token ? eos_token : "", eos_token ? strlen(eos_token) : 0);
    rc_status st = (!t->bos_token || !t->eos_token) ? rc_fail(RC_ERR_OOM, "chat template: cannot copy tokens")
                                                    : recognise(template_text, t);
    if (st != RC_OK) {
        rc_chat_template_free(t);
        return st;
    }
    *out = t;
    return RC_OK;
}

const char *rc_chat_template_family(const rc_chat_template *t) { return family_names[t->family]; }

/* ---- loading from a model folder ---- */

/* A token of tokenizer_config.json: "text" or {"content": "text", ...}. */
static const char *config_token(const cJSON *config, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, name);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

rc_status rc_chat_template_load(const char *dir, rc_chat_template **out) {
    *out = NULL;
    char config_path[4096], jinja_path[4096];
    snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", dir);
    snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", dir);
    cJSON *config = NULL;
    rc_status st = rc_path_is_file(config_path) ? rc_json_load_file(config_path, &config) : RC_OK;
    if (st != RC_OK) return st;
    char *jinja = NULL;
    size_t jinja_len;
    const char *text = NULL;
    /* transformers prefers chat_template.jinja over the config's entry */
    if (rc_path_is_file(jinja_path)) {
        st = rc_read_file(jinja_path, &jinja, &jinja_len);
        text = jinja;
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
        if (cJSON_IsArray(v)) { /* [{"name": "default", "template": ...}, ...] */
            const cJSON *named, *chosen = NULL;
            cJSON_ArrayForEach(named, v) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(named, "name");
                if (cJSON_IsString(name) && !strcmp(name->valuestring, "default")) chosen = named;
            }
            v = cJSON_GetObjectItemCaseSensitive(chosen, "template");
        }
        if (cJSON_IsString(v)) text = v->valuestring;
    }
    if (st == RC_OK && !text)
        st = rc_fail(RC_ERR_FORMAT, "%s: no chat template (neither chat_template.jinja nor "
                     "tokenizer_config.json's chat_template)", dir);
    if (st == RC_OK)
        st = rc_chat_template_recognise(text, config_token(config, "bos_token"), config_token(config, "eos_token"), out);
    if (st != RC_OK) rc_fail_context(st, "loading the chat template of %s", dir);
    free(jinja);
    cJSON_Delete(config);
    return st;
}

/* ---- rendering ---- */

static rc_status check_roles(const rc_chat_message *messages, size_t n) {
    if (n == 0) return rc_fail(RC_ERR_INVALID_ARG, "chat template: the message list is empty");
    for (size_t i = 0; i < n; i++) {
        const char *role = messages[i].role, *content = messages[i].content;
        if (!role || !content)
            return rc_fail(RC_ERR_INVALID_ARG, "chat template: message %zu lacks a role or content", i + 1);
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return rc_fail(RC_ERR_UNSUPPORTED, "chat template: message %zu has role '%s' (system, user "
                           "and assistant are supported)", i + 1, role);
    }
    return RC_OK;
}

/* Gemma and Mistral: user at even positions, assistant at odd, no system. */
static rc_status check_alternation(const rc_chat_message *messages, size_t n, const char *family) {
    if (!strcmp(messages[0].role, "system"))
        return rc_fail(RC_ERR_UNSUPPORTED, "chat template: %s's template raises on a system message", family);
    for (size_t i = 0; i < n; i++)
        if ((strcmp(messages[i].role, "user") == 0) != (i % 2 == 0))
            return rc_fail(RC_ERR_INVALID_ARG, "chat template: %s's template needs roles alternating "
                           "user/assistant/...; message %zu is '%s'", family, i + 1, messages[i].role);
    return RC_OK;
}

static void render_chatml(const rc_chat_template *t, const rc_chat_message *m, size_t n, text_buffer *b) {
    if (t->default_system && strcmp(m[0].role, "system") != 0) {
        put(b, "<|im_start|>system\n");
        put(b, t->default_system);
        put(b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        put(b, "<|im_start|>");
        put(b, m[i].role);
        put(b, "\n");
        put(b, m[i].content);
        put(b, "<|im_end|>\n");
    }
}

static void render_llama3(const rc_chat_template *t, const rc_chat_message *m, size_t n, text_buffer *b) {
    put(b, t->bos_token);
    for (size_t i = 0; i < n; i++) {
        put(b, "<|start_header_id|>");
        put(b, m[i].role);
        put(b, "<|end_header_id|>\n\n");
        put_trimmed(b, m[i].content);
        put(b, "<|eot_id|>");
    }
}

static void render_gemma(const rc_chat_template *t, const rc_chat_message *m, size_t n, text_buffer *b) {
    if (t->starts_with_bos) put(b, t->bos_token);
    for (size_t i = 0; i < n; i++) {
        put(b, "<start_of_turn>");
        put(b, strcmp(m[i].role, "assistant") == 0 ? "model" : m[i].role);
        put(b, "\n");
        put_trimmed(b, m[i].content);
        put(b, "<end_of_turn>\n");
    }
}

static void render_mistral(const rc_chat_template *t, const rc_chat_message *m, size_t n, text_buffer *b) {
    if (t->starts_with_bos) put(b, t->bos_token);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].role, "user") == 0) {
            put(b, "[INST] ");
            put(b, m[i].content);
            put(b, " [/INST]");
        } else {
            put(b, m[i].content);
            put(b, t->eos_token);
            if (t->eos_then_space) put(b, " ");
        }
    }
}

rc_status rc_chat_template_render(const rc_chat_template *t, const rc_chat_message *messages,
                                  size_t n_messages, int add_generation_prompt, char **text,
                                  size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    rc_status st = check_roles(messages, n_messages);
    if (st == RC_OK && (t->family == FAMILY_GEMMA || t->family == FAMILY_MISTRAL))
        st = check_alternation(messages, n_messages, family_names[t->family]);
    if (st != RC_OK) return st;
    text_buffer b = {0};
    put(&b, "");
    switch (t->family) {
    case FAMILY_CHATML:
        render_chatml(t, messages, n_messages, &b);
        if (add_generation_prompt) put(&b, "<|im_start|>assistant\n");
        break;
    case FAMILY_LLAMA3:
        render_llama3(t, messages, n_messages, &b);
        if (add_generation_prompt) put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case FAMILY_GEMMA:
        render_gemma(t, messages, n_messages, &b);
        if (add_generation_prompt) put(&b, "<start_of_turn>model\n");
        break;
    case FAMILY_MISTRAL: /* its template has no generation prompt */
        render_mistral(t, messages, n_messages, &b);
        break;
    }
    if (b.failed) {
        free(b.data);
        return rc_fail(RC_ERR_OOM, "chat template: cannot grow the rendered text");
    }
    *text = b.data;
    if (len) *len = b.len;
    return RC_OK;
}
