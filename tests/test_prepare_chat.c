/* Conversational pairs through the encoding policy (rc_encode_pairs_chat)
 * with the committed tiny tokenizers of golden/tokenizer/families/ and the
 * chat templates of golden/chat_template/templates.json: the ids are those
 * of the rendered text (TRL's rendering: prompt with the generation prompt,
 * responses the rest), with one BOS where the template writes it and the
 * tokenizer adds it too; truncation cuts at the prompt/response boundary;
 * the errors. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/data.h"
#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

static rc_tokenizer *load_tiny(const char *name) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizer/families/%s", test_golden_dir(), name);
    rc_tokenizer *tok = NULL;
    CHECK(rc_tokenizer_load(dir, &tok) == RC_OK, "loading %s: %s", dir, rc_last_error());
    return tok;
}

static rc_chat_template *load_template(const char *name, const char *bos, const char *eos) {
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_template/templates.json", test_golden_dir());
    cJSON *all = NULL;
    rc_chat_template *t = NULL;
    CHECK(rc_json_load_file(path, &all) == RC_OK, "%s: %s", path, rc_last_error());
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(all, name);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "template"));
    CHECK(text && rc_chat_template_recognise(text, bos, eos, &t) == RC_OK, "template %s: %s", name, rc_last_error());
    cJSON_Delete(all);
    return t;
}

/* ids of text (with the tokenizer's specials) followed by EOS when asked. */
static int32_t *expected_ids(const rc_tokenizer *tok, const char *text, int eos, size_t *n) {
    int32_t *ids = NULL;
    CHECK(rc_tokenizer_encode(tok, text, strlen(text), 1, &ids, n) == RC_OK, "encode: %s", rc_last_error());
    if (eos) {
        ids = realloc(ids, (*n + 1) * sizeof *ids);
        ids[(*n)++] = rc_tokenizer_eos_id(tok);
    }
    return ids;
}

static void check_ids(const char *what, const int32_t *got, size_t n_got, const int32_t *want, size_t n_want) {
    CHECK(n_got == n_want && !memcmp(got, want, n_want * sizeof *want), "%s: %zu ids, want %zu", what, n_got, n_want);
}

static const char prompt_json[] = "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi?\"}]";
static const char chosen_json[] = "[{\"role\":\"assistant\",\"content\":\"Hello there.\"}]";
static const char rejected_json[] = "[{\"role\":\"assistant\",\"content\":\"Go away, 12345 times.\"}]";
static const char implicit_chosen[] = "[{\"role\":\"user\",\"content\":\"Hi?\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]";
static const char implicit_rejected[] = "[{\"role\":\"user\",\"content\":\"Hi?\"},{\"role\":\"assistant\",\"content\":\"No.\"}]";

static void test_llama3(void) {
    rc_tokenizer *tok = load_tiny("tiny_llama_bpe");
    rc_chat_template *chat = load_template("llama3", "<|begin_of_text|>", "<|eot_id|>");
    if (!tok || !chat) goto done;
    CHECK(rc_tokenizer_adds_bos(tok), "tiny_llama_bpe adds BOS (its TemplateProcessing)");
    int32_t bos = rc_tokenizer_bos_id(tok);
    rc_pair_list pairs = {0};
    rc_pair_list_append_messages(&pairs, prompt_json, chosen_json, rejected_json);
    rc_pair_list_append_messages(&pairs, NULL, implicit_chosen, implicit_rejected);
    rc_pair_list_append(&pairs, "plain ", "text", "pair");
    rc_encode_policy policy = {512, 1, RC_OVERFLOW_TRUNCATE};
    rc_encoded_pairs enc = {0};
    rc_encode_counts counts;
    rc_status st = rc_encode_pairs_chat(tok, chat, &policy, &pairs, &enc, &counts);
    CHECK(st == RC_OK && enc.n == 3, "encode: %s", rc_last_error());
    if (st != RC_OK || enc.n != 3) goto free_pairs;
    /* the template writes <|begin_of_text|> and the tokenizer adds it: one BOS */
    const char *explicit_text = "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                                "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\nHello there.<|eot_id|>";
    size_t n;
    int32_t *want = expected_ids(tok, explicit_text, 1, &n);
    check_ids("explicit prompt + chosen", enc.items[0].chosen, enc.items[0].n_chosen, want, n);
    CHECK(enc.items[0].chosen[0] == bos && enc.items[0].chosen[1] != bos, "one BOS at the start");
    free(want);
    want = expected_ids(tok, "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
                             "<|start_header_id|>assistant<|end_header_id|>\n\nNo.<|eot_id|>", 1, &n);
    check_ids("implicit rejected", enc.items[1].rejected, enc.items[1].n_rejected, want, n);
    free(want);
    want = expected_ids(tok, "plain text", 1, &n);
    check_ids("a plain pair beside them", enc.items[2].chosen, enc.items[2].n_chosen, want, n);
    free(want);
    rc_encoded_pairs_free(&enc);

    /* truncation keeps the response: the cut is after the generation prompt */
    int32_t *response = NULL;
    size_t n_response = 0;
    const char *response_text = "Hello there.<|eot_id|>";
    CHECK(rc_tokenizer_encode(tok, response_text, strlen(response_text), 0, &response, &n_response) == RC_OK, "encode");
    rc_encode_policy tight = {n_response + 4, 1, RC_OVERFLOW_TRUNCATE};
    rc_pair_list one = {0};
    rc_pair_list_append_messages(&one, prompt_json, chosen_json, rejected_json);
    st = rc_encode_pairs_chat(tok, chat, &tight, &one, &enc, &counts);
    CHECK(st == RC_OK && enc.n == 1 && counts.prompt_truncated >= 1, "tight: %s", rc_last_error());
    if (st == RC_OK && enc.n == 1) {
        const rc_encoded_pair *p = &enc.items[0];
        CHECK(p->n_chosen == tight.max_length && p->chosen[0] == bos &&
                  !memcmp(p->chosen + p->n_chosen - 1 - n_response, response, n_response * sizeof *response) &&
                  p->chosen[p->n_chosen - 1] == rc_tokenizer_eos_id(tok),
              "BOS + prompt tail + the whole response + EOS");
    }
    free(response);
    rc_encoded_pairs_free(&enc);

    /* errors */
    st = rc_encode_pairs(tok, &policy, &one, &enc, NULL);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "chat template"), "no template: %s", rc_last_error());
    rc_pair_list bad = {0};
    rc_pair_list_append_messages(&bad, implicit_chosen, chosen_json, rejected_json);
    st = rc_encode_pairs_chat(tok, chat, &policy, &bad, &enc, NULL);
    CHECK(st == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "must end with a user message"),
          "a prompt ending with an assistant turn: %s", rc_last_error());
    rc_pair_list_free(&bad);
    rc_pair_list_free(&one);
free_pairs:
    rc_pair_list_free(&pairs);
done:
    rc_chat_template_free(chat);
    rc_tokenizer_free(tok);
}

static void test_chatml(void) {
    rc_tokenizer *tok = load_tiny("tiny_smollm");
    rc_chat_template *chat = load_template("qwen2.5", NULL, "<|im_end|>");
    if (!tok || !chat) goto done;
    rc_pair_list pairs = {0};
    rc_pair_list_append_messages(&pairs, "[{\"role\":\"user\",\"content\":\"Hi?\"}]", chosen_json, rejected_json);
    rc_encode_policy policy = {512, 0, RC_OVERFLOW_TRUNCATE}; /* EOS is the pad token here */
    rc_encoded_pairs enc = {0};
    rc_status st = rc_encode_pairs_chat(tok, chat, &policy, &pairs, &enc, NULL);
    CHECK(st == RC_OK && enc.n == 1, "chatml: %s", rc_last_error());
    if (st == RC_OK && enc.n == 1) {
        size_t n;
        int32_t *want = expected_ids(tok, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
                                          "helpful assistant.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
                                          "<|im_start|>assistant\nGo away, 12345 times.<|im_end|>\n", 0, &n);
        check_ids("Qwen2.5's default system message and the rejected turn", enc.items[0].rejected,
                  enc.items[0].n_rejected, want, n);
        free(want);
    }
    rc_encoded_pairs_free(&enc);
    rc_pair_list_free(&pairs);
done:
    rc_chat_template_free(chat);
    rc_tokenizer_free(tok);
}

int main(void) {
    test_llama3();
    test_chatml();
    return test_finish("test_prepare_chat");
}
