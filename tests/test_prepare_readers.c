/* The data-preparation readers on small files written here: rankings,
 * preference JSONL (plain and gzip), labelled JSONL, the aclImdb layout, the
 * pairing recipe, the seeded shuffle, the report, and the pairs writer. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rewardc/data.h"
#include "testlib.h"

static char tmp_path_buffer[8][4096];
static int tmp_path_next = 0;

/* A path under the test's temporary folder (a few live at once). */
static const char *tmp_path(const char *name) {
    char *buffer = tmp_path_buffer[tmp_path_next++ % 8];
    snprintf(buffer, 4096, "%s/prepare_%s", test_tmp_dir(), name);
    return buffer;
}

static const char *write_text(const char *name, const char *content) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
    return path;
}

static int contains(const char *text, const char *needle) { return strstr(text, needle) != NULL; }

static const rc_pair *find_pair(const rc_pair_list *pairs, const char *chosen, const char *rejected) {
    for (size_t i = 0; i < pairs->n; i++)
        if (!strcmp(pairs->items[i].chosen, chosen) && !strcmp(pairs->items[i].rejected, rejected))
            return &pairs->items[i];
    return NULL;
}

/* ---- rankings ---------------------------------------------------------------- */

static const char rankings_jsonl[] =
    "{\"prompt\": \"Q1\", \"responses\": [\"a\", \"b\", \"c\"], \"rankings\": [[1, 3, 2], [2, 1, 3]]}\n"
    "{\"prompt\": \"Q2\", \"responses\": [\"x\", \"y\"], \"rankings\": [[1, 2], [2, 1]]}\n"
    "   \n"
    "{\"prompt\": \"Q3\", \"responses\": [\"only\"], \"rankings\": [[1]]}\n";

static void test_rankings_mean(void) {
    const char *path = write_text("rankings.jsonl", rankings_jsonl);
    rc_read_options read = {0};
    rc_ranking_options ranking = {RC_RANK_MEAN, 1, 1.0, 1};
    rc_pair_list pairs = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "rankings");
    CHECK(rc_pairs_read_rankings(path, &read, &ranking, &pairs, &report) == RC_OK, "%s",
          rc_last_error());
    /* Q1 rank sums: a 1+2 = 3, b 3+1 = 4, c 2+3 = 5 -> mean ranks 1.5, 2, 2.5:
     * a>b (gap 0.5), a>c (gap 1), b>c (gap 0.5). Q2: x and y both sum to 3, a
     * tie. Q3 has one response. The blank line is not a record. */
    CHECK(pairs.n == 3, "%zu pairs", pairs.n);
    CHECK(report.records_read == 3, "records read %zu", report.records_read);
    CHECK(report.dropped[RC_DROP_TIE] == 1, "ties %zu", report.dropped[RC_DROP_TIE]);
    CHECK(report.dropped[RC_DROP_SINGLE_RESPONSE] == 1, "single %zu",
          report.dropped[RC_DROP_SINGLE_RESPONSE]);
    CHECK(report.pairs_written == 3, "pairs_written %zu", report.pairs_written);
    const rc_pair *ab = find_pair(&pairs, "a", "b"), *ac = find_pair(&pairs, "a", "c"),
                  *bc = find_pair(&pairs, "b", "c");
    CHECK(ab && ac && bc, "expected pairs a>b, a>c, b>c");
    if (ab && ac && bc) {
        CHECK(!strcmp(ab->prompt, "Q1"), "prompt kept");
        CHECK(ab->has_margin && ab->margin == 0.5 && ac->margin == 1.0 && bc->margin == 0.5,
              "margins %g %g %g", ab->margin, ac->margin, bc->margin);
        /* weight 1/C(3,2) = 1/3 for every Q1 pair */
        CHECK(ab->has_weight && fabs(ab->weight - 1.0 / 3.0) < 1e-15 && ac->weight == ab->weight,
              "weight %g", ab->weight);
    }
    rc_pair_list_free(&pairs);

    /* Scaled margins, no weights. */
    rc_ranking_options scaled = {RC_RANK_MEAN, 1, 2.0, 0};
    CHECK(rc_pairs_read_rankings(path, &read, &scaled, &pairs, NULL) == RC_OK, "%s", rc_last_error());
    ab = find_pair(&pairs, "a", "b");
    CHECK(ab && ab->margin == 1.0 && !ab->has_weight, "margin scale 2 -> 1.0");
    rc_pair_list_free(&pairs);
}

static void test_rankings_per_labeler(void) {
    const char *path = write_text("rankings_pl.jsonl", rankings_jsonl);
    rc_read_options read = {0};
    rc_ranking_options ranking = {RC_RANK_PER_LABELER, 1, 1.0, 1};
    rc_pair_list pairs = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "rankings");
    CHECK(rc_pairs_read_rankings(path, &read, &ranking, &pairs, &report) == RC_OK, "%s",
          rc_last_error());
    /* Q1 labeler 1 (a1 b3 c2): a>b gap 2, a>c gap 1, c>b gap 1.
     * Q1 labeler 2 (a2 b1 c3): b>a gap 1, a>c gap 1, b>c gap 2.
     * Q2: x>y and y>x. Per-labeler keeps no ties: 6 + 2 = 8 pairs. */
    CHECK(pairs.n == 8, "%zu pairs", pairs.n);
    CHECK(report.dropped[RC_DROP_TIE] == 0, "no ties per labeler");
    const rc_pair *c_b = find_pair(&pairs, "c", "b"), *b_c = find_pair(&pairs, "b", "c");
    const rc_pair *x_y = find_pair(&pairs, "x", "y"), *y_x = find_pair(&pairs, "y", "x");
    CHECK(c_b && b_c && x_y && y_x, "both directions present");
    if (c_b && b_c && x_y) {
        CHECK(c_b->margin == 1.0 && b_c->margin == 2.0, "per-labeler gaps %g %g", c_b->margin,
              b_c->margin);
        /* weights: Q1 1/(2 labelers * 3) = 1/6, Q2 1/(2 * 1) = 1/2 */
        CHECK(fabs(c_b->weight - 1.0 / 6.0) < 1e-15 && x_y->weight == 0.5, "weights %g %g",
              c_b->weight, x_y->weight);
    }
    rc_pair_list_free(&pairs);
}

/* A file whose line 2 is `bad_line` must fail naming line 2 and `expected`. */
static void expect_rankings_error(const char *bad_line, const char *expected, rc_drop_reason reason) {
    char content[1024];
    snprintf(content, sizeof content,
             "{\"prompt\": \"ok\", \"responses\": [\"a\", \"b\"], \"rankings\": [[1, 2]]}\n%s\n",
             bad_line);
    const char *path = write_text("rankings_bad.jsonl", content);
    rc_pair_list pairs = {0};
    rc_read_options read = {0};
    rc_status st = rc_pairs_read_rankings(path, &read, NULL, &pairs, NULL);
    CHECK(st == RC_ERR_FORMAT, "'%s' must fail", bad_line);
    CHECK(contains(rc_last_error(), "rankings_bad.jsonl:2:") && contains(rc_last_error(), expected),
          "message for '%s': %s", bad_line, rc_last_error());
    CHECK(pairs.n == 0 && pairs.items == NULL, "no pairs returned on failure");
    /* With skip_bad the same file gives the good line's pair and counts the bad one. */
    rc_prepare_report report;
    rc_prepare_report_init(&report, "rankings");
    read.skip_bad = 1;
    st = rc_pairs_read_rankings(path, &read, NULL, &pairs, &report);
    CHECK(st == RC_OK && pairs.n == 1, "skip_bad on '%s': %s", bad_line, rc_last_error());
    CHECK(report.dropped[reason] == 1, "'%s' counted as %s", bad_line, rc_drop_reason_name(reason));
    CHECK(contains(report.first_bad, ":2:"), "first_bad keeps the line: %s", report.first_bad);
    rc_pair_list_free(&pairs);
}

static void test_rankings_errors(void) {
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\", \"c\"], \"rankings\": [[1, 1, 3]]}",
                          "gives rank 1 twice and rank 2 is missing", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\", \"c\"], \"rankings\": [[1, 2]]}",
                          "has 2 ranks but there are 3 responses", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"], \"rankings\": [[1, 2], [2, 1, 3]]}",
                          "rankings[1] has 3 ranks", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [], \"rankings\": [[]]}",
                          "\"responses\" is empty", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"\"], \"rankings\": [[1, 2]]}",
                          "responses[1] is empty", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"], \"rankings\": [[0, 1]]}",
                          "is not a rank in 1..2", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"], \"rankings\": [[1.5, 2]]}",
                          "is not a rank in 1..2", RC_DROP_INVALID_VALUE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"]}",
                          "missing field \"rankings\"", RC_DROP_MISSING_FIELD);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", 7], \"rankings\": [[1, 2]]}",
                          "responses[1] must be a string", RC_DROP_WRONG_TYPE);
    expect_rankings_error("{\"prompt\": \"q\", \"responses\": [\"a\", \"b\"], \"rankings\": [[1, 2]",
                          "malformed JSON", RC_DROP_BAD_JSON);
    expect_rankings_error("{\"prompt\": 3, \"responses\": [\"a\", \"b\"], \"rankings\": [[1, 2]]}",
                          "field \"prompt\" must be a string, got a number", RC_DROP_WRONG_TYPE);
}

/* ---- preferences --------------------------------------------------------------- */

static const char preferences_jsonl[] =
    "{\"chosen\": \"\\n\\nHuman: hi\\n\\nAssistant: hello there\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: go away\"}\n"
    "{\"prompt\": \"P\", \"chosen\": \" yes\", \"rejected\": \" no\", \"margin\": 1.5}\n"
    "{\"chosen\": \"same\", \"rejected\": \"same\"}\n"
    "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\", \"weight\": 0.25}\n";

static void test_preferences(void) {
    const char *path = write_text("preferences.jsonl", preferences_jsonl);
    rc_pair_list pairs = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "preferences");
    CHECK(rc_pairs_read_preferences(path, NULL, NULL, &pairs, &report) == RC_OK, "%s",
          rc_last_error());
    CHECK(pairs.n == 3 && report.records_read == 4 && report.dropped[RC_DROP_IDENTICAL] == 1,
          "%zu pairs from %zu records", pairs.n, report.records_read);
    if (pairs.n == 3) {
        CHECK(!strcmp(pairs.items[0].prompt, "") &&
                  !strcmp(pairs.items[0].chosen, "\n\nHuman: hi\n\nAssistant: hello there"),
              "implicit prompt stays in the responses");
        CHECK(!strcmp(pairs.items[1].prompt, "P") && pairs.items[1].has_margin &&
                  pairs.items[1].margin == 1.5 && !pairs.items[1].has_weight,
              "explicit prompt with margin");
        CHECK(pairs.items[2].has_weight && pairs.items[2].weight == 0.25 && !pairs.items[2].has_margin,
              "weight read");
    }
    rc_pair_list_free(&pairs);

    rc_preference_options extract = {1, "\n\nAssistant:", 0};
    CHECK(rc_pairs_read_preferences(path, NULL, &extract, &pairs, NULL) == RC_OK, "%s",
          rc_last_error());
    if (pairs.n == 3) {
        CHECK(!strcmp(pairs.items[0].prompt, "\n\nHuman: hi\n\nAssistant:") &&
                  !strcmp(pairs.items[0].chosen, " hello there") &&
                  !strcmp(pairs.items[0].rejected, " go away"),
              "extracted prompt '%s' / '%s'", pairs.items[0].prompt, pairs.items[0].chosen);
        CHECK(!strcmp(pairs.items[1].prompt, "P") && !strcmp(pairs.items[1].chosen, " yes"),
              "an explicit prompt is left alone");
    }
    rc_pair_list_free(&pairs);

    rc_read_options capped = {0, 2, 0};
    rc_prepare_report_init(&report, "preferences");
    CHECK(rc_pairs_read_preferences(path, &capped, NULL, &pairs, &report) == RC_OK, "%s",
          rc_last_error());
    CHECK(pairs.n == 2 && report.dropped[RC_DROP_OVER_MAX_PAIRS] == 1, "max_pairs 2: %zu pairs", pairs.n);
    rc_pair_list_free(&pairs);
}

static void test_shared_prompt(void) {
    const char *marker = "\n\nAssistant:";
    /* Two turns shared: the cut follows the last marker inside the shared part. */
    const char *c = "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: yes";
    const char *r = "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: no";
    size_t cut = rc_shared_prompt_length(c, r, marker);
    CHECK(cut == strlen("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:"), "cut %zu", cut);
    /* The responses differ inside the last turn's text only after a marker. */
    CHECK(rc_shared_prompt_length("x\n\nAssistant:", "x\n\nAssistant: more", marker) == 0,
          "a cut leaving an empty response is refused");
    CHECK(rc_shared_prompt_length("no marker here", "no marker there", marker) == 0,
          "no marker, no cut");
    /* Without a marker: at the last shared whitespace, which goes with the response. */
    CHECK(rc_shared_prompt_length("the cat sat", "the cat ran", NULL) == 7, "word cut");
    CHECK(rc_shared_prompt_length("abc", "abc d", "") == 0, "no whitespace, no cut");
    CHECK(rc_shared_prompt_length("abc", "xyz", NULL) == 0, "nothing shared");
}

static void expect_preference_error(const char *bad_line, const char *expected, rc_drop_reason reason) {
    char content[1024];
    snprintf(content, sizeof content, "{\"chosen\": \"a\", \"rejected\": \"b\"}\n\n%s\n", bad_line);
    const char *path = write_text("preferences_bad.jsonl", content);
    rc_pair_list pairs = {0};
    rc_status st = rc_pairs_read_preferences(path, NULL, NULL, &pairs, NULL);
    /* The blank line 2 still counts for numbering: the bad record is line 3. */
    CHECK(st == RC_ERR_FORMAT && contains(rc_last_error(), "preferences_bad.jsonl:3:") &&
              contains(rc_last_error(), expected),
          "'%s': %s", bad_line, rc_last_error());
    rc_read_options skip = {1, 0, 0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "preferences");
    st = rc_pairs_read_preferences(path, &skip, NULL, &pairs, &report);
    CHECK(st == RC_OK && pairs.n == 1 && report.dropped[reason] == 1, "skip '%s' as %s", bad_line,
          rc_drop_reason_name(reason));
    rc_pair_list_free(&pairs);
}

static void test_preference_errors(void) {
    expect_preference_error("{\"chosen\": 5, \"rejected\": \"x\"}", "\"chosen\" must be a string",
                            RC_DROP_WRONG_TYPE);
    expect_preference_error("{\"chosen\": \"x\"}", "missing field \"rejected\"", RC_DROP_MISSING_FIELD);
    expect_preference_error("{\"chosen\": \"x\", \"rejected\": \"y\", \"margin\": \"big\"}",
                            "\"margin\" must be a number", RC_DROP_WRONG_TYPE);
    expect_preference_error("{\"chosen\": \"x\", \"rejected\": \"y\", \"weight\": -1}",
                            "\"weight\" must be >= 0", RC_DROP_INVALID_VALUE);
    expect_preference_error("{\"chosen\": \"x\", \"rejected\": \"\"}", "\"rejected\" is empty",
                            RC_DROP_INVALID_VALUE);
    expect_preference_error("{\"chosen\": \"a\", \"rejected\": \"b\"} trailing",
                            "unexpected text after the JSON value", RC_DROP_BAD_JSON);
    expect_preference_error("[\"chosen\", \"rejected\"]", "expected a JSON object", RC_DROP_BAD_JSON);
    expect_preference_error("{\"chosen\": \"\xff\", \"rejected\": \"b\"}", "not valid UTF-8",
                            RC_DROP_INVALID_VALUE);
    expect_preference_error("{\"chosen\": \"x\", \"rejected\": \"y\", \"prompt\": [1]}",
                            "\"prompt\" must be a string", RC_DROP_WRONG_TYPE);
}

/* ---- conversational records ----------------------------------------------------- */

static const char conversational_jsonl[] =
    "{\"prompt\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi?\"}],"
    " \"chosen\": [{\"role\": \"assistant\", \"content\": \"Hello.\"}],"
    " \"rejected\": [{\"role\": \"assistant\", \"content\": \"Go away.\"}], \"margin\": 2}\n"
    "{\"chosen\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"content\": \"A1\", \"role\": \"assistant\"}],"
    " \"rejected\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A2\"}]}\n"
    "{\"chosen\": [{\"role\": \"user\", \"content\": \"same\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"same\"}]}\n";

static void test_conversational(void) {
    const char *path = write_text("conversational.jsonl", conversational_jsonl);
    rc_pair_list pairs = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "preferences");
    rc_status st = rc_pairs_read_preferences(path, NULL, NULL, &pairs, &report);
    CHECK(st == RC_OK && pairs.n == 2 && report.dropped[RC_DROP_IDENTICAL] == 1, "conversational: %s, %zu pairs",
          rc_last_error(), pairs.n);
    if (pairs.n == 2) {
        const rc_pair *p = &pairs.items[0];
        CHECK(rc_pair_is_conversational(p) && !p->prompt[0] && !p->chosen[0] && !p->rejected[0],
              "a conversational pair keeps messages, not texts");
        CHECK(p->prompt_messages && !strcmp(p->prompt_messages, "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                                              "{\"role\":\"user\",\"content\":\"Hi?\"}]"),
              "prompt messages: %s", p->prompt_messages ? p->prompt_messages : "(null)");
        CHECK(!strcmp(p->chosen_messages, "[{\"role\":\"assistant\",\"content\":\"Hello.\"}]") &&
                  p->has_margin && p->margin == 2.0,
              "chosen messages and margin: %s", p->chosen_messages);
        const rc_pair *q = &pairs.items[1];
        CHECK(q->prompt_messages == NULL, "an implicit conversational pair has no prompt messages");
        CHECK(!strcmp(q->chosen_messages, "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A1\"}]"),
              "messages are stored as role then content: %s", q->chosen_messages);
    }
    rc_pair_list_free(&pairs);

    /* --extract_prompt: the shared leading messages become the prompt */
    rc_preference_options extract = {1, NULL, 0};
    st = rc_pairs_read_preferences(path, NULL, &extract, &pairs, NULL);
    CHECK(st == RC_OK && pairs.n == 2, "extract: %s", rc_last_error());
    if (pairs.n == 2) {
        const rc_pair *q = &pairs.items[1];
        CHECK(q->prompt_messages && !strcmp(q->prompt_messages, "[{\"role\":\"user\",\"content\":\"Q\"}]") &&
                  !strcmp(q->chosen_messages, "[{\"role\":\"assistant\",\"content\":\"A1\"}]") &&
                  !strcmp(q->rejected_messages, "[{\"role\":\"assistant\",\"content\":\"A2\"}]"),
              "extracted: %s | %s", q->prompt_messages ? q->prompt_messages : "(null)", q->chosen_messages);
    }

    /* written as TRL's format and read back the same */
    const char *out = tmp_path("conversational_out.jsonl");
    CHECK(rc_pairs_write_jsonl(out, &pairs) == RC_OK, "write: %s", rc_last_error());
    rc_pair_list back = {0};
    st = rc_pairs_read_preferences(out, NULL, NULL, &back, NULL);
    CHECK(st == RC_OK && back.n == pairs.n, "read back: %s", rc_last_error());
    for (size_t i = 0; st == RC_OK && i < back.n && i < pairs.n; i++) {
        const rc_pair *a = &pairs.items[i], *b = &back.items[i];
        CHECK(!strcmp(a->prompt_messages, b->prompt_messages) && !strcmp(a->chosen_messages, b->chosen_messages) &&
                  !strcmp(a->rejected_messages, b->rejected_messages) && a->has_margin == b->has_margin,
              "pair %zu reads back as written", i + 1);
    }
    rc_pair_list_free(&back);
    rc_pair_list_free(&pairs);
}

static void test_conversational_errors(void) {
    expect_preference_error("{\"chosen\": [{\"role\": \"user\", \"content\": \"x\"}], \"rejected\": \"y\"}",
                            "\"rejected\" must be a message list", RC_DROP_WRONG_TYPE);
    expect_preference_error("{\"chosen\": [{\"role\": \"user\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}]}",
                            "missing field \"content\"", RC_DROP_MISSING_FIELD);
    expect_preference_error("{\"chosen\": [], \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}]}",
                            "empty message list", RC_DROP_INVALID_VALUE);
    expect_preference_error("{\"chosen\": [\"hi\"], \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}]}",
                            "chosen[0] must be an object", RC_DROP_WRONG_TYPE);
    expect_preference_error("{\"prompt\": \"text\", \"chosen\": [{\"role\": \"user\", \"content\": \"x\"}],"
                            " \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}]}",
                            "\"prompt\" must be a message list", RC_DROP_WRONG_TYPE);
    expect_preference_error("{\"chosen\": [{\"role\": \"\", \"content\": \"x\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}]}",
                            "empty role", RC_DROP_INVALID_VALUE);
}

static void expect_dialogue(const char *text, int as_prompt, const char *want) {
    char *json = NULL;
    rc_status st = rc_dialogue_to_messages(text, as_prompt, &json);
    CHECK(st == RC_OK && json && !strcmp(json, want), "dialogue \"%s\":\n  got  %s\n  want %s", text,
          json ? json : rc_last_error(), want);
    free(json);
}

static void test_dialogues(void) {
    expect_dialogue("\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Two\n\nparagraphs.\n\nAssistant:  Ok. ", 0,
                    "[{\"role\":\"user\",\"content\":\"Hi there\"},{\"role\":\"assistant\",\"content\":\"Hello!\"},"
                    "{\"role\":\"user\",\"content\":\"Two\\n\\nparagraphs.\"},{\"role\":\"assistant\",\"content\":\"Ok.\"}]");
    /* a prompt's closing empty Assistant turn is the place of the response */
    expect_dialogue("\n\nHuman: Q?\n\nAssistant:", 1, "[{\"role\":\"user\",\"content\":\"Q?\"}]");
    expect_dialogue("\n\nHuman: Q?\n\nAssistant:", 0,
                    "[{\"role\":\"user\",\"content\":\"Q?\"},{\"role\":\"assistant\",\"content\":\"\"}]");
    expect_dialogue(" Just a response.", 0, "[{\"role\":\"assistant\",\"content\":\"Just a response.\"}]");

    const char *path = write_text("hh.jsonl",
        "{\"chosen\": \"\\n\\nHuman: Q\\n\\nAssistant: A\\n\\nHuman: more?\\n\\nAssistant: yes\","
        " \"rejected\": \"\\n\\nHuman: Q\\n\\nAssistant: A\\n\\nHuman: more?\\n\\nAssistant: no\"}\n"
        "{\"prompt\": \"\\n\\nHuman: Why?\\n\\nAssistant:\", \"chosen\": \" Because.\", \"rejected\": \" No idea.\"}\n");
    rc_preference_options dialogue = {1, NULL, 1};
    rc_pair_list pairs = {0};
    rc_status st = rc_pairs_read_preferences(path, NULL, &dialogue, &pairs, NULL);
    CHECK(st == RC_OK && pairs.n == 2, "HH dialogues: %s", rc_last_error());
    if (pairs.n == 2) {
        const rc_pair *p = &pairs.items[0], *q = &pairs.items[1];
        CHECK(p->prompt_messages && !strcmp(p->prompt_messages,
                  "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"},"
                  "{\"role\":\"user\",\"content\":\"more?\"}]") &&
                  !strcmp(p->chosen_messages, "[{\"role\":\"assistant\",\"content\":\"yes\"}]") &&
                  !strcmp(p->rejected_messages, "[{\"role\":\"assistant\",\"content\":\"no\"}]"),
              "an HH pair's shared turns are its prompt: %s", p->prompt_messages ? p->prompt_messages : "(null)");
        CHECK(q->prompt_messages && !strcmp(q->prompt_messages, "[{\"role\":\"user\",\"content\":\"Why?\"}]") &&
                  !strcmp(q->chosen_messages, "[{\"role\":\"assistant\",\"content\":\"Because.\"}]"),
              "an explicit HH prompt: %s | %s", q->prompt_messages ? q->prompt_messages : "(null)", q->chosen_messages);
    }
    rc_pair_list_free(&pairs);
}

/* ---- writer round trip and gzip ------------------------------------------------- */

static void test_write_and_read_back(void) {
    rc_pair_list pairs = {0};
    rc_pair_list_append(&pairs, "", "quote \" backslash \\ newline\n tab\t", "control \x01 end");
    rc_pair_list_append(&pairs, "Prompt: caf\xc3\xa9 ", "\xe2\x9c\x93 yes", "no \xf0\x9f\x98\x80");
    pairs.items[1].has_margin = 1;
    pairs.items[1].margin = 0.75;
    pairs.items[1].has_weight = 1;
    pairs.items[1].weight = 1.0 / 3.0;
    const char *path = tmp_path("roundtrip.jsonl");
    CHECK(rc_pairs_write_jsonl(path, &pairs) == RC_OK, "%s", rc_last_error());

    rc_pair_list back = {0};
    CHECK(rc_pairs_read_preferences(path, NULL, NULL, &back, NULL) == RC_OK, "%s", rc_last_error());
    CHECK(back.n == 2, "%zu pairs back", back.n);
    for (size_t i = 0; i < back.n && i < pairs.n; i++) {
        const rc_pair *a = &pairs.items[i], *b = &back.items[i];
        CHECK(!strcmp(a->prompt, b->prompt) && !strcmp(a->chosen, b->chosen) &&
                  !strcmp(a->rejected, b->rejected),
              "pair %zu texts survive the round trip", i);
        CHECK(a->has_margin == b->has_margin && a->margin == b->margin, "pair %zu margin", i);
        CHECK(a->has_weight == b->has_weight && a->weight == b->weight,
              "pair %zu weight %.17g vs %.17g", i, a->weight, b->weight);
    }
    rc_pair_list_free(&back);

    /* One object per line with the keys in the documented order. */
    FILE *f = fopen(path, "rb");
    char line[512] = {0};
    CHECK(f && fgets(line, sizeof line, f), "read first line");
    CHECK(!strncmp(line, "{\"prompt\":\"\",\"chosen\":", 22), "first line: %s", line);
    if (f) fclose(f);

    /* The same file through gzip reads the same. */
    char command[8300];
    snprintf(command, sizeof command, "gzip -c '%s' > '%s.gz'", path, path);
    if (system(command) == 0) {
        char gz_path[4200];
        snprintf(gz_path, sizeof gz_path, "%s.gz", path);
        CHECK(rc_pairs_read_preferences(gz_path, NULL, NULL, &back, NULL) == RC_OK, "%s",
              rc_last_error());
        CHECK(back.n == 2 && !strcmp(back.items[1].chosen, pairs.items[1].chosen), "gzip read");
        rc_pair_list_free(&back);
        /* A corrupt archive is an error, not a short read. */
        const char *corrupt = write_text("corrupt.jsonl.gz", "this is not gzip data\n");
        CHECK(rc_pairs_read_preferences(corrupt, NULL, NULL, &back, NULL) != RC_OK,
              "corrupt gzip must fail");
        CHECK(back.n == 0, "no pairs from a corrupt archive");
    } else {
        fprintf(stderr, "note: gzip not available, gzip checks skipped\n");
    }
    CHECK(rc_pairs_read_preferences(tmp_path("missing.jsonl.gz"), NULL, NULL, &back, NULL) ==
              RC_ERR_IO,
          "missing gzip file is an I/O error");
    CHECK(rc_pairs_read_preferences(tmp_path("missing.jsonl"), NULL, NULL, &back, NULL) == RC_ERR_IO,
          "missing file is an I/O error");
    rc_pair_list_free(&pairs);
}

/* ---- labelled texts, the pairing recipe and the shuffle ---------------------------- */

static void test_labeled(void) {
    const char *path = write_text("labeled.jsonl",
                                  "{\"review\": \"p0\", \"y\": 1}\n"
                                  "{\"review\": \"n0\", \"y\": 0}\n"
                                  "{\"review\": \"p1\", \"y\": true}\n"
                                  "{\"review\": \"n1\", \"y\": false}\n"
                                  "{\"review\": \"p2\", \"y\": 1.0}\n"
                                  "{\"review\": \"p3\", \"y\": 1}\n"
                                  "{\"review\": \"n2\", \"y\": 0}\n"
                                  "{\"review\": \"p4\", \"y\": 1}\n");
    rc_labeled_texts texts = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "labeled");
    CHECK(rc_labeled_read_jsonl(path, "review", "y", NULL, &texts, &report) == RC_OK, "%s",
          rc_last_error());
    CHECK(texts.n == 8 && report.records_read == 8, "%zu texts", texts.n);
    int positives = 0;
    for (size_t i = 0; i < texts.n; i++) positives += texts.labels[i];
    CHECK(positives == 5, "%d positives", positives);

    /* 5 positives, 3 negatives: 3 pairs, 2 positives unpaired. Rejected are
     * the negatives in input order; chosen are distinct positives. */
    rc_read_options options = {0, 0, 7};
    rc_pair_list pairs = {0};
    CHECK(rc_pairs_from_labeled(&texts, &options, &pairs, &report) == RC_OK, "%s", rc_last_error());
    CHECK(pairs.n == 3 && report.dropped[RC_DROP_UNPAIRED] == 2 && report.pairs_written == 3,
          "%zu pairs", pairs.n);
    for (size_t i = 0; i < pairs.n; i++) {
        char expected[24];
        snprintf(expected, sizeof expected, "n%zu", i);
        CHECK(!strcmp(pairs.items[i].rejected, expected), "rejected %zu is %s", i,
              pairs.items[i].rejected);
        CHECK(pairs.items[i].chosen[0] == 'p' && !strcmp(pairs.items[i].prompt, ""), "chosen %zu", i);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(pairs.items[i].chosen, pairs.items[j].chosen) != 0, "chosen distinct");
    }
    /* Same seed, same pairs; some other seed changes the order. */
    rc_pair_list again = {0};
    CHECK(rc_pairs_from_labeled(&texts, &options, &again, NULL) == RC_OK, "%s", rc_last_error());
    int same = again.n == pairs.n;
    for (size_t i = 0; same && i < pairs.n; i++)
        same = !strcmp(again.items[i].chosen, pairs.items[i].chosen);
    CHECK(same, "same seed gives the same pairing");
    rc_pair_list_free(&again);
    int differs = 0;
    for (uint64_t seed = 100; seed < 110 && !differs; seed++) {
        rc_read_options other = {0, 0, seed};
        rc_pair_list shuffled = {0};
        rc_pairs_from_labeled(&texts, &other, &shuffled, NULL);
        for (size_t i = 0; i < shuffled.n && i < pairs.n; i++)
            differs |= strcmp(shuffled.items[i].chosen, pairs.items[i].chosen) != 0;
        rc_pair_list_free(&shuffled);
    }
    CHECK(differs, "other seeds give other pairings");
    rc_pair_list_free(&pairs);

    /* max_pairs 2: a subset of the negatives, still in input order. */
    rc_read_options capped = {0, 2, 7};
    rc_prepare_report_init(&report, "labeled");
    CHECK(rc_pairs_from_labeled(&texts, &capped, &pairs, &report) == RC_OK, "%s", rc_last_error());
    CHECK(pairs.n == 2 && report.dropped[RC_DROP_OVER_MAX_PAIRS] == 1, "capped %zu", pairs.n);
    if (pairs.n == 2)
        CHECK(strcmp(pairs.items[0].rejected, pairs.items[1].rejected) < 0, "negatives in order");
    rc_pair_list_free(&pairs);
    rc_labeled_texts_free(&texts);

    /* Labels other than 0/1/true/false fail with the line. */
    const char *bad = write_text("labeled_bad.jsonl",
                                 "{\"text\": \"fine\", \"label\": 0}\n"
                                 "{\"text\": \"two\", \"label\": 2}\n"
                                 "{\"text\": \"string\", \"label\": \"1\"}\n"
                                 "{\"label\": 1}\n");
    CHECK(rc_labeled_read_jsonl(bad, "text", "label", NULL, &texts, NULL) == RC_ERR_FORMAT &&
              contains(rc_last_error(), "labeled_bad.jsonl:2:") &&
              contains(rc_last_error(), "must be 0/1 or true/false, got 2"),
          "label 2: %s", rc_last_error());
    rc_read_options skip = {1, 0, 0};
    rc_prepare_report_init(&report, "labeled");
    CHECK(rc_labeled_read_jsonl(bad, "text", "label", &skip, &texts, &report) == RC_OK, "%s",
          rc_last_error());
    CHECK(texts.n == 1 && report.dropped[RC_DROP_INVALID_VALUE] == 1 &&
              report.dropped[RC_DROP_WRONG_TYPE] == 1 && report.dropped[RC_DROP_MISSING_FIELD] == 1,
          "skip counts: %zu texts", texts.n);
    rc_labeled_texts_free(&texts);
}

static void test_shuffle(void) {
    enum { N = 1000 };
    static size_t a[N], b[N];
    static int seen[N];
    for (size_t i = 0; i < N; i++) a[i] = b[i] = i;
    rc_shuffle_indices(a, N, 123);
    rc_shuffle_indices(b, N, 123);
    int is_permutation = 1, moved = 0;
    for (size_t i = 0; i < N; i++) {
        if (a[i] >= N || seen[a[i]]++) is_permutation = 0;
        moved += a[i] != i;
    }
    CHECK(is_permutation, "shuffle gives a permutation");
    CHECK(!memcmp(a, b, sizeof a), "same seed, same permutation");
    CHECK(moved > N / 2, "shuffle moves most items (%d moved)", moved);
    for (size_t i = 0; i < N; i++) b[i] = i;
    rc_shuffle_indices(b, N, 124);
    CHECK(memcmp(a, b, sizeof a) != 0, "another seed, another permutation");
    rc_shuffle_indices(NULL, 0, 1); /* empty input is fine */
}

/* ---- aclImdb layout ------------------------------------------------------------------ */

static void make_review(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_imdb(void) {
    char root[4096], pos[4200], neg[4200];
    snprintf(root, sizeof root, "%s", tmp_path("imdb"));
    snprintf(pos, sizeof pos, "%s/pos", root);
    snprintf(neg, sizeof neg, "%s/neg", root);
    mkdir(root, 0755);
    mkdir(pos, 0755);
    mkdir(neg, 0755);
    char stale[4300];
    snprintf(stale, sizeof stale, "%s/5_2.txt", pos);
    remove(stale); /* left by an earlier run's misplaced-file check */
    make_review(pos, "3_8.txt", "pos three");
    make_review(pos, "10_7.txt", "pos ten");
    make_review(pos, "1_10.txt", "pos one");
    make_review(neg, "7_4.txt", "neg seven");
    make_review(neg, "2_1.txt", "neg two");
    make_review(neg, "README", "not a review");
    make_review(pos, "urls.txt", "not a review either");

    rc_labeled_texts texts = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "imdb");
    CHECK(rc_imdb_read_dir(root, NULL, &texts, &report) == RC_OK, "%s", rc_last_error());
    /* Negatives then positives, each in ascending id order (not name order:
     * 10 comes after 3). */
    const char *order[] = {"neg two", "neg seven", "pos one", "pos three", "pos ten"};
    CHECK(texts.n == 5 && report.records_read == 5, "%zu reviews", texts.n);
    for (size_t i = 0; i < texts.n && i < 5; i++)
        CHECK(!strcmp(texts.texts[i], order[i]) && texts.labels[i] == (i >= 2), "review %zu: %s", i,
              texts.texts[i]);
    CHECK(report.dropped[RC_DROP_IGNORED_FILE] == 2, "ignored %zu", report.dropped[RC_DROP_IGNORED_FILE]);
    rc_pair_list pairs = {0};
    CHECK(rc_pairs_from_labeled(&texts, NULL, &pairs, &report) == RC_OK, "%s", rc_last_error());
    CHECK(pairs.n == 2 && !strcmp(pairs.items[0].rejected, "neg two") &&
              report.dropped[RC_DROP_UNPAIRED] == 1,
          "imdb pairs %zu", pairs.n);
    rc_pair_list_free(&pairs);
    rc_labeled_texts_free(&texts);

    /* A rating that contradicts its folder is an error naming the file. */
    make_review(pos, "5_2.txt", "misplaced");
    CHECK(rc_imdb_read_dir(root, NULL, &texts, NULL) == RC_ERR_FORMAT &&
              contains(rc_last_error(), "5_2.txt") && contains(rc_last_error(), "rating 2"),
          "misplaced: %s", rc_last_error());
    rc_read_options skip = {1, 0, 0};
    rc_prepare_report_init(&report, "imdb");
    CHECK(rc_imdb_read_dir(root, &skip, &texts, &report) == RC_OK && texts.n == 5 &&
              report.dropped[RC_DROP_INVALID_VALUE] == 1,
          "skip misplaced: %s", rc_last_error());
    rc_labeled_texts_free(&texts);
    CHECK(rc_imdb_read_dir(tmp_path("no_such_dir"), NULL, &texts, NULL) == RC_ERR_IO,
          "missing folder is an I/O error");
}

/* ---- the report ------------------------------------------------------------------- */

static void test_report_json(void) {
    rc_prepare_report report;
    rc_prepare_report_init(&report, "rankings");
    report.records_read = 4;
    report.pairs_written = 3;
    report.dropped[RC_DROP_TIE] = 2;
    rc_prepare_report_skip(&report, RC_DROP_BAD_JSON, "f.jsonl:7: malformed JSON");
    rc_prepare_report_skip(&report, RC_DROP_BAD_JSON, "f.jsonl:9: later");
    char *json = NULL;
    CHECK(rc_prepare_report_to_json(&report, &json) == RC_OK, "%s", rc_last_error());
    cJSON *parsed = json ? cJSON_Parse(json) : NULL;
    CHECK(parsed != NULL, "report is JSON");
    if (parsed) {
        cJSON *dropped = cJSON_GetObjectItemCaseSensitive(parsed, "dropped");
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parsed, "source")), "rankings"),
              "source");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(parsed, "records_read")) == 4,
              "records_read");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(dropped, "tie")) == 2, "tie");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(dropped, "bad_json")) == 2,
              "bad_json");
        CHECK(cJSON_GetArraySize(dropped) == RC_DROP_REASON_COUNT, "every reason listed");
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parsed, "first_bad")),
                      "f.jsonl:7: malformed JSON"),
              "first_bad keeps the first message");
    }
    cJSON_Delete(parsed);
    free(json);
    const char *path = tmp_path("report.json");
    CHECK(rc_prepare_report_write(path, &report) == RC_OK, "%s", rc_last_error());
    struct stat info;
    CHECK(stat(path, &info) == 0 && info.st_size > 0, "report file written");
}

int main(void) {
    test_rankings_mean();
    test_rankings_per_labeler();
    test_rankings_errors();
    test_preferences();
    test_shared_prompt();
    test_preference_errors();
    test_conversational();
    test_conversational_errors();
    test_dialogues();
    test_write_and_read_back();
    test_labeled();
    test_shuffle();
    test_imdb();
    test_report_json();
    return test_finish("test_prepare_readers");
}
