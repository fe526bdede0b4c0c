/* Chat templates vs transformers' apply_chat_template (golden/chat_template/,
 * made by tools/gen_golden_chat_template.py): every template of
 * templates.json on every conversation, with and without the generation
 * prompt, byte for byte; a conversation the template raises on must be
 * refused. Also: an unknown template is refused naming its start, and a
 * model folder's tokenizer_config.json is read. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

static const char *string_or_null(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static size_t to_messages(const cJSON *list, rc_chat_message *out, size_t cap) {
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        if (n == cap) break;
        out[n].role = string_or_null(m, "role");
        out[n].content = string_or_null(m, "content");
        n++;
    }
    return n;
}

static void check_render(const char *what, const rc_chat_template *t, const rc_chat_message *m, size_t n,
                         int generation, const cJSON *want) {
    char *text = NULL;
    size_t len = 0;
    rc_status st = rc_chat_template_render(t, m, n, generation, &text, &len);
    if (cJSON_IsObject(want)) { /* the template raises */
        CHECK(st != RC_OK, "%s: transformers raises (%s) but rewardc rendered \"%.200s\"", what,
              string_or_null(want, "error"), text ? text : "");
    } else {
        CHECK(st == RC_OK, "%s: %s", what, rc_last_error());
        if (st == RC_OK)
            CHECK(len == strlen(want->valuestring) && !strcmp(text, want->valuestring),
                  "%s:\n  transformers: \"%s\"\n  rewardc:      \"%s\"", what, want->valuestring, text);
    }
    free(text);
}

static void check_goldens(void) {
    char path[4096];
    cJSON *templates = NULL, *renders = NULL;
    snprintf(path, sizeof path, "%s/chat_template/templates.json", test_golden_dir());
    CHECK(rc_json_load_file(path, &templates) == RC_OK, "cannot load %s: %s", path, rc_last_error());
    snprintf(path, sizeof path, "%s/chat_template/renders.json", test_golden_dir());
    CHECK(rc_json_load_file(path, &renders) == RC_OK, "cannot load %s: %s", path, rc_last_error());
    if (!templates || !renders) goto done;
    const cJSON *conversations = cJSON_GetObjectItemCaseSensitive(renders, "conversations");
    const cJSON *plain = cJSON_GetObjectItemCaseSensitive(renders, "renders");
    const cJSON *generation = cJSON_GetObjectItemCaseSensitive(renders, "generation_prompt_renders");
    const cJSON *tpl;
    int n_templates = 0;
    cJSON_ArrayForEach(tpl, templates) {
        n_templates++;
        rc_chat_template *t = NULL;
        rc_status st = rc_chat_template_recognise(string_or_null(tpl, "template"), string_or_null(tpl, "bos_token"),
                                                  string_or_null(tpl, "eos_token"), &t);
        CHECK(st == RC_OK, "template %s not recognised: %s", tpl->string, rc_last_error());
        if (st != RC_OK) continue;
        const cJSON *want_plain = cJSON_GetObjectItemCaseSensitive(plain, tpl->string);
        const cJSON *want_gen = cJSON_GetObjectItemCaseSensitive(generation, tpl->string);
        CHECK(cJSON_GetArraySize(want_plain) == cJSON_GetArraySize(conversations) &&
                  cJSON_GetArraySize(want_gen) == cJSON_GetArraySize(conversations),
              "renders.json lacks renders of %s", tpl->string);
        int k = 0;
        const cJSON *conv;
        cJSON_ArrayForEach(conv, conversations) {
            rc_chat_message m[16];
            size_t n = to_messages(cJSON_GetObjectItemCaseSensitive(conv, "messages"), m, 16);
            char what[256];
            snprintf(what, sizeof what, "%s (%s) on %s", tpl->string, rc_chat_template_family(t),
                     string_or_null(conv, "name"));
            check_render(what, t, m, n, 0, cJSON_GetArrayItem(want_plain, k));
            snprintf(what, sizeof what, "%s (%s) on %s less its last message, with the generation prompt",
                     tpl->string, rc_chat_template_family(t), string_or_null(conv, "name"));
            check_render(what, t, m, n > 1 ? n - 1 : n, 1, cJSON_GetArrayItem(want_gen, k));
            k++;
        }
        rc_chat_template_free(t);
    }
    CHECK(n_templates >= 5, "templates.json has %d templates", n_templates);
done:
    cJSON_Delete(templates);
    cJSON_Delete(renders);
}

static void check_refusals(void) {
    rc_chat_template *t = NULL;
    const char *unknown = "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}{% endfor %}";
    rc_status st = rc_chat_template_recognise(unknown, NULL, NULL, &t);
    CHECK(st == RC_ERR_UNSUPPORTED && t == NULL, "an unknown template is refused");
    CHECK(strstr(rc_last_error(), "{% for m in messages %}<<") != NULL,
          "the error names the template's start: %s", rc_last_error());
    const char *llama31 = "{{- bos_token }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}<|start_header_id|><|eot_id|>";
    CHECK(rc_chat_template_recognise(llama31, "<s>", NULL, &t) == RC_ERR_UNSUPPORTED, "Llama-3.1 templates are refused");

    st = rc_chat_template_recognise("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                                    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", NULL, NULL, &t);
    CHECK(st == RC_OK, "plain ChatML: %s", rc_last_error());
    if (st != RC_OK) return;
    rc_chat_message tool[2] = {{"user", "hi"}, {"tool", "{}"}};
    char *text = NULL;
    CHECK(rc_chat_template_render(t, tool, 2, 0, &text, NULL) == RC_ERR_UNSUPPORTED && !text,
          "a tool message is refused");
    CHECK(rc_chat_template_render(t, tool, 0, 0, &text, NULL) != RC_OK, "an empty list is refused");
    rc_chat_message no_content[1] = {{"user", NULL}};
    CHECK(rc_chat_template_render(t, no_content, 1, 0, &text, NULL) != RC_OK, "a message without content is refused");
    rc_chat_template_free(t);
}

static void check_folder(void) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/chat_template_folder", test_tmp_dir());
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs("{\"bos_token\": {\"content\": \"<|begin_of_text|>\", \"special\": true}, \"eos_token\": \"<|eot_id|>\",\n"
          " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": "
          "\"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}\"}]}\n", f);
    fclose(f);
    rc_chat_template *t = NULL;
    rc_status st = rc_chat_template_load(dir, &t);
    CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
    if (st != RC_OK) return;
    CHECK(!strcmp(rc_chat_template_family(t), "llama3"), "family %s", rc_chat_template_family(t));
    rc_chat_message m[1] = {{"user", " Hi \n"}};
    char *text = NULL;
    st = rc_chat_template_render(t, m, 1, 0, &text, NULL);
    CHECK(st == RC_OK && !strcmp(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
          "the folder's bos_token object is used: \"%s\"", text ? text : rc_last_error());
    free(text);
    rc_chat_template_free(t);
    snprintf(dir, sizeof dir, "%s/chat_template_none", test_tmp_dir());
    CHECK(rc_mkdir_p(dir) == RC_OK, "mkdir %s", dir);
    CHECK(rc_chat_template_load(dir, &t) == RC_ERR_FORMAT && strstr(rc_last_error(), "no chat template"),
          "a folder without a template: %s", rc_last_error());
}

/* The real SmolLM2 folder (REWARDC_SMOLLM2_TOKENIZER, see test_tokenizer_families):
 * its tokenizer_config.json's template renders as the GGUF's template did. */
static void check_smollm2_folder(void) {
    const char *dir = getenv("REWARDC_SMOLLM2_TOKENIZER");
    if (!dir || !*dir) {
        printf("test_chat_template: SKIP smollm2 folder: REWARDC_SMOLLM2_TOKENIZER is not set\n");
        return;
    }
    char path[4096];
    cJSON *renders = NULL;
    snprintf(path, sizeof path, "%s/chat_template/renders.json", test_golden_dir());
    if (rc_json_load_file(path, &renders) != RC_OK) return;
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(renders, "renders"), "smollm2");
    const cJSON *conv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(renders, "conversations"), 2);
    rc_chat_template *t = NULL;
    rc_status st = rc_chat_template_load(dir, &t);
    CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
    if (st == RC_OK && want && conv) {
        CHECK(!strcmp(rc_chat_template_family(t), "chatml"), "SmolLM2 is ChatML");
        rc_chat_message m[16];
        size_t n = to_messages(cJSON_GetObjectItemCaseSensitive(conv, "messages"), m, 16);
        check_render("the SmolLM2 folder's template", t, m, n, 0, cJSON_GetArrayItem(want, 2));
    }
    rc_chat_template_free(t);
    cJSON_Delete(renders);
}

int main(void) {
    check_goldens();
    check_smollm2_folder();
    check_refusals();
    check_folder();
    return test_finish("test_chat_template");
}
