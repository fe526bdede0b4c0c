/* The tokenization policy with the real OPT and GPT-2 tokenizers: whole
 * texts, truncation that keeps the prompt's end and the response, overflow
 * drop, the counts, policy checks and the policy's JSON form.
 * Reference ids: the data README gives OPT's encoding of
 * "Hello, I'm am conscious and" as [2, 31414, 6, 38, 437, 524, 13316, 8]
 * (</s>, Hello, ",", " I", "'m", " am", " conscious", " and") as
 * facebook/opt-350m produces, and GPT-2's "Hello" 15496, " world" 995,
 * <|endoftext|> 50256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rewardc/data.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

static int same_ids(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want) {
    return n_got == n_want && (n_want == 0 || memcmp(got, want, n_want * sizeof *want) == 0);
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "%s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fputc('\n', stderr);
}

static void expect_sequence(const rc_tokenizer *tok, rc_encode_policy policy, const char *prompt,
                            const char *response, const int32_t *want, size_t n_want,
                            rc_encode_outcome want_outcome, const char *what) {
    int32_t *ids = NULL;
    size_t n = 0;
    rc_encode_outcome outcome = (rc_encode_outcome)-1;
    rc_status st = rc_encode_sequence(tok, &policy, prompt, response, &ids, &n, &outcome);
    CHECK(st == RC_OK, "%s: %s", what, rc_last_error());
    CHECK(outcome == want_outcome, "%s: outcome %d, want %d", what, (int)outcome, (int)want_outcome);
    if (want_outcome == RC_ENCODED_DROPPED) {
        CHECK(ids == NULL && n == 0, "%s: a dropped sequence has no ids", what);
    } else {
        int ok = ids && same_ids(ids, n, want, n_want);
        CHECK(ok, "%s: ids differ", what);
        if (!ok && ids) print_ids(what, ids, n);
        CHECK(n <= policy.max_length, "%s: %zu ids over max_length %zu", what, n, policy.max_length);
    }
    free(ids);
}

static void test_opt_sequences(const rc_tokenizer *tok) {
    const char *prompt = "Hello, I'm am", *response = " conscious and";
    rc_encode_policy policy = {512, 1, RC_OVERFLOW_TRUNCATE};
    /* Fits: the whole text as HF encodes it, then EOS (</s> = 2). */
    const int32_t whole[] = {2, 31414, 6, 38, 437, 524, 13316, 8, 2};
    expect_sequence(tok, policy, prompt, response, whole, 9, RC_ENCODED_WHOLE, "whole");
    policy.max_length = 9; /* exactly full */
    expect_sequence(tok, policy, prompt, response, whole, 9, RC_ENCODED_WHOLE, "exactly max_length");
    /* Implicit prompt: the same ids. */
    expect_sequence(tok, policy, "", "Hello, I'm am conscious and", whole, 9, RC_ENCODED_WHOLE,
                    "implicit prompt");
    policy.append_eos = 0;
    expect_sequence(tok, policy, prompt, response, whole, 8, RC_ENCODED_WHOLE, "no EOS");

    /* max_length 5: BOS + EOS leave 3; the response (2 ids) stays whole and
     * the prompt keeps its last id, " am". */
    policy.append_eos = 1;
    policy.max_length = 5;
    const int32_t prompt_tail[] = {2, 524, 13316, 8, 2};
    expect_sequence(tok, policy, prompt, response, prompt_tail, 5, RC_ENCODED_PROMPT_TRUNCATED,
                    "prompt truncated");
    /* max_length 4: room for the response only. */
    policy.max_length = 4;
    const int32_t response_only[] = {2, 13316, 8, 2};
    expect_sequence(tok, policy, prompt, response, response_only, 4, RC_ENCODED_PROMPT_TRUNCATED,
                    "prompt dropped entirely");
    /* max_length 3: the response alone is too long; keep its start. */
    policy.max_length = 3;
    const int32_t response_head[] = {2, 13316, 2};
    expect_sequence(tok, policy, prompt, response, response_head, 3,
                    RC_ENCODED_RESPONSE_TRUNCATED, "response truncated");
    /* Same without EOS: one more response id fits. */
    policy.append_eos = 0;
    const int32_t response_head_no_eos[] = {2, 13316, 8};
    expect_sequence(tok, policy, prompt, response, response_head_no_eos, 3, RC_ENCODED_PROMPT_TRUNCATED,
                    "no EOS, max 3");
    /* Drop instead of truncating. */
    policy.append_eos = 1;
    policy.max_length = 8;
    policy.overflow = RC_OVERFLOW_DROP;
    expect_sequence(tok, policy, prompt, response, NULL, 0, RC_ENCODED_DROPPED, "dropped");
}

static void test_policy_checks(const rc_tokenizer *tok) {
    int32_t *ids = NULL;
    size_t n = 0;
    rc_encode_outcome outcome;
    rc_encode_policy policy = {2, 1, RC_OVERFLOW_TRUNCATE};
    /* OPT adds BOS and the policy EOS: max_length 2 leaves no room for text. */
    CHECK(rc_encode_policy_check(&policy, tok) == RC_ERR_INVALID_ARG, "max_length 2 must fail");
    CHECK(rc_encode_sequence(tok, &policy, "", "x", &ids, &n, &outcome) == RC_ERR_INVALID_ARG,
          "encoding under a bad policy fails");
    policy.max_length = 3;
    CHECK(rc_encode_policy_check(&policy, tok) == RC_OK, "max_length 3 is enough: %s", rc_last_error());
    policy.max_length = 0;
    CHECK(rc_encode_policy_check(&policy, tok) == RC_ERR_INVALID_ARG, "max_length 0 must fail");
    policy.max_length = 10;
    policy.overflow = (rc_overflow)7;
    CHECK(rc_encode_policy_check(&policy, tok) == RC_ERR_INVALID_ARG, "unknown overflow must fail");
}

static void test_encode_pairs(const rc_tokenizer *tok) {
    rc_pair_list pairs = {0};
    rc_pair_list_append(&pairs, "Hello,", " I'm am", " conscious");
    rc_pair_list_append(&pairs, "", "Hello", "Hello, I'm am conscious and more words here");
    rc_pair_list_append(&pairs, "Hello,", " and", " am");
    /* Pair 1's rejected is the only sequence over 8 ids. */
    rc_encode_policy drop = {8, 1, RC_OVERFLOW_DROP};
    rc_encoded_pairs encoded = {0};
    rc_encode_counts counts;
    CHECK(rc_encode_pairs(tok, &drop, &pairs, &encoded, &counts) == RC_OK, "%s", rc_last_error());
    CHECK(encoded.n == 2 && counts.pairs_dropped == 1 && counts.sequences == 6,
          "drop: %zu kept, %zu dropped, %zu sequences", encoded.n, counts.pairs_dropped,
          counts.sequences);
    if (encoded.n == 2) {
        CHECK(encoded.items[0].source == 0 && encoded.items[1].source == 2, "sources %zu %zu",
              encoded.items[0].source, encoded.items[1].source);
        /* "Hello," + " I'm am" -> </s> Hello , I 'm am </s> */
        const int32_t chosen0[] = {2, 31414, 6, 38, 437, 524, 2};
        CHECK(same_ids(encoded.items[0].chosen, encoded.items[0].n_chosen, chosen0, 7), "pair 0 chosen");
        const int32_t rejected0[] = {2, 31414, 6, 13316, 2};
        CHECK(same_ids(encoded.items[0].rejected, encoded.items[0].n_rejected, rejected0, 5),
              "pair 0 rejected");
    }
    CHECK(counts.longest > 8, "longest before truncation %zu", counts.longest);
    rc_encoded_pairs_free(&encoded);

    rc_encode_policy truncate = {8, 1, RC_OVERFLOW_TRUNCATE};
    CHECK(rc_encode_pairs(tok, &truncate, &pairs, &encoded, &counts) == RC_OK, "%s", rc_last_error());
    /* Pair 1's rejected has no prompt, so its response is cut: one response
     * truncation, nothing else. */
    CHECK(encoded.n == 3 && counts.pairs_dropped == 0 && counts.response_truncated == 1 &&
              counts.prompt_truncated == 0,
          "truncate: %zu pairs, %zu response / %zu prompt truncations", encoded.n,
          counts.response_truncated, counts.prompt_truncated);
    if (encoded.n == 3)
        CHECK(encoded.items[1].n_rejected == 8 && encoded.items[1].rejected[0] == 2 &&
                  encoded.items[1].rejected[1] == 31414 && encoded.items[1].rejected[7] == 2,
              "cut response keeps its start and ends with EOS");
    rc_encoded_pairs_free(&encoded);
    rc_pair_list_free(&pairs);
}

static void test_gpt2(const rc_tokenizer *tok) {
    /* GPT-2 adds no BOS: "Hello" + " world" + <|endoftext|>. */
    rc_encode_policy policy = {16, 1, RC_OVERFLOW_TRUNCATE};
    const int32_t want[] = {15496, 995, 50256};
    expect_sequence(tok, policy, "Hello", " world", want, 3, RC_ENCODED_WHOLE, "gpt2 whole");
    policy.max_length = 2;
    const int32_t cut[] = {995, 50256};
    expect_sequence(tok, policy, "Hello", " world", cut, 2, RC_ENCODED_PROMPT_TRUNCATED, "gpt2 cut");
}

static void test_policy_json(void) {
    rc_encode_policy policy = {384, 0, RC_OVERFLOW_DROP}, back = {0};
    char *json = NULL;
    CHECK(rc_encode_policy_to_json(&policy, &json) == RC_OK, "%s", rc_last_error());
    CHECK(json && strstr(json, "\"overflow\":\t\"drop\"") != NULL, "json: %s", json ? json : "");
    CHECK(json && rc_encode_policy_from_json(json, &back) == RC_OK, "%s", rc_last_error());
    CHECK(back.max_length == 384 && back.append_eos == 0 && back.overflow == RC_OVERFLOW_DROP,
          "round trip");
    free(json);
    rc_encode_policy d = rc_encode_policy_default();
    CHECK(d.max_length == 512 && d.append_eos == 1 && d.overflow == RC_OVERFLOW_TRUNCATE, "default");

    const char *bad[][2] = {
        {"{\"append_eos\": true, \"overflow\": \"truncate\"}", "missing field \"max_length\""},
        {"{\"max_length\": 8, \"overflow\": \"truncate\"}", "missing field \"append_eos\""},
        {"{\"max_length\": 8, \"append_eos\": true}", "missing field \"overflow\""},
        {"{\"max_length\": 8, \"append_eos\": true, \"overflow\": \"cut\"}", "\"truncate\" or \"drop\""},
        {"{\"max_length\": 8.5, \"append_eos\": true, \"overflow\": \"drop\"}", "positive integer"},
        {"{\"max_length\": 0, \"append_eos\": true, \"overflow\": \"drop\"}", "positive integer"},
        {"{\"max_length\": 8, \"append_eos\": \"yes\", \"overflow\": \"drop\"}", "true or false"},
        {"{\"max_length\": 8, \"append_eos\": true, \"overflow\": \"drop\", \"pad\": 1}",
         "unknown field \"pad\""},
        {"[1]", "expected a JSON object"},
        {"{", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(rc_encode_policy_from_json(bad[i][0], &back) == RC_ERR_FORMAT &&
                  strstr(rc_last_error(), bad[i][1]) != NULL,
              "'%s': %s", bad[i][0], rc_last_error());
    }
}

static rc_tokenizer *load(const char *name) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizers/%s", test_data_dir(), name);
    struct stat info;
    if (stat(dir, &info) != 0) return NULL;
    rc_tokenizer *tok = NULL;
    rc_status st = rc_tokenizer_load(dir, &tok);
    CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
    return st == RC_OK ? tok : NULL;
}

int main(void) {
    test_policy_json();
    rc_tokenizer *opt = load("opt");
    rc_tokenizer *gpt2 = load("gpt2");
    if (!opt && !gpt2 && test_checks_failed == 0) {
        fprintf(stderr, "tokenizer folders not found under %s: skipping\n", test_data_dir());
        return TEST_SKIP;
    }
    if (opt) {
        test_opt_sequences(opt);
        test_policy_checks(opt);
        test_encode_pairs(opt);
    }
    if (gpt2) test_gpt2(gpt2);
    rc_tokenizer_free(opt);
    rc_tokenizer_free(gpt2);
    return test_finish("test_prepare_encode");
}
