/* Tokenizer vs Hugging Face goldens (golden/tokenizer/, made by
 * tools/gen_golden_tokenizer.py): hand-written edge cases for the GPT-2 and OPT
 * folders and two small tokenizer.json folders, decode of partial characters,
 * padded/truncated batches, and a sweep over every Unicode code point.
 * GPT-2/OPT need the shared data; without it only the tiny tokenizer.json
 * folders (committed in golden/) are checked and the test reports a skip. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

enum { N_TOKENIZERS = 4 };
static const char *const tokenizer_names[N_TOKENIZERS] = {"gpt2", "opt", "tiny_prefix_space",
                                                          "tiny_split_regex"};
static rc_tokenizer *tokenizers[N_TOKENIZERS];

static rc_tokenizer *tokenizer_named(const char *name) {
    for (int i = 0; i < N_TOKENIZERS; i++)
        if (!strcmp(name, tokenizer_names[i])) return tokenizers[i];
    return NULL;
}

static cJSON *load_golden_json(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/%s", test_golden_dir(), name);
    cJSON *json = NULL;
    rc_status st = rc_json_load_file(path, &json);
    CHECK(st == RC_OK, "cannot load %s: %s", path, rc_last_error());
    return st == RC_OK ? json : NULL;
}

/* Hex string -> malloc'd bytes (independent of the library's UTF-8 code). */
static unsigned char *from_hex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    unsigned char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    out[n] = 0;
    *len = n;
    return out;
}

static int32_t *json_ids(const cJSON *array, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(array);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, array) ids[k++] = (int32_t)v->valuedouble;
    return ids;
}

/* Compares id lists; on mismatch says where, with a little context. */
static void check_ids(const char *what, const int32_t *want, size_t n_want, const int32_t *got,
                      size_t n_got) {
    size_t i = 0;
    while (i < n_want && i < n_got && want[i] == got[i]) i++;
    if (i == n_want && i == n_got) {
        CHECK(1, "ids match");
        return;
    }
    char buf[512];
    int o = snprintf(buf, sizeof buf, "first difference at id %zu (lengths: HF %zu, rewardc %zu); HF:", i, n_want, n_got);
    for (size_t k = i; k < n_want && k < i + 6; k++) o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", want[k]);
    o += snprintf(buf + o, sizeof buf - (size_t)o, " | rewardc:");
    for (size_t k = i; k < n_got && k < i + 6; k++) o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", got[k]);
    CHECK(0, "%s: %s", what, buf);
}

static void check_bytes(const char *what, const unsigned char *want, size_t n_want, const char *got,
                        size_t n_got) {
    CHECK(n_want == n_got && memcmp(want, got, n_want) == 0,
          "%s: HF gives %zu bytes \"%.80s\", rewardc %zu bytes \"%.80s\"", what, n_want,
          (const char *)want, n_got, got);
}

static void check_metadata(const cJSON *meta) {
    for (int t = 0; t < N_TOKENIZERS; t++) {
        if (!tokenizers[t]) continue;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, tokenizer_names[t]);
        CHECK(m != NULL, "edge_cases.json lacks metadata for %s", tokenizer_names[t]);
        if (!m) continue;
        int32_t vocab = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "vocab_size")->valuedouble;
        int32_t bos = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "bos_id")->valuedouble;
        int32_t eos = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "eos_id")->valuedouble;
        int32_t pad = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "pad_id")->valuedouble;
        CHECK(rc_tokenizer_vocab_size(tokenizers[t]) == vocab, "%s: vocab size %d, HF len() %d",
              tokenizer_names[t], rc_tokenizer_vocab_size(tokenizers[t]), vocab);
        CHECK(rc_tokenizer_bos_id(tokenizers[t]) == bos, "%s: bos %d, HF %d", tokenizer_names[t],
              rc_tokenizer_bos_id(tokenizers[t]), bos);
        CHECK(rc_tokenizer_eos_id(tokenizers[t]) == eos, "%s: eos %d, HF %d", tokenizer_names[t],
              rc_tokenizer_eos_id(tokenizers[t]), eos);
        CHECK(rc_tokenizer_pad_id(tokenizers[t]) == pad, "%s: pad %d, HF %d", tokenizer_names[t],
              rc_tokenizer_pad_id(tokenizers[t]), pad);
    }
}

static void check_edge_cases(void) {
    cJSON *golden = load_golden_json("edge_cases.json");
    if (!golden) return;
    check_metadata(cJSON_GetObjectItemCaseSensitive(golden, "tokenizers"));
    const cJSON *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(golden, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        size_t len;
        unsigned char *text = from_hex(cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring, &len);
        n_cases++;
        for (int t = 0; t < N_TOKENIZERS; t++) {
            rc_tokenizer *tok = tokenizers[t];
            const char *tname = tokenizer_names[t];
            const cJSON *want_json = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "ids"), tname);
            if (!tok || !want_json) continue;
            char what[256];
            snprintf(what, sizeof what, "%s / case %s", tname, name);
            size_t n_want, n_got;
            int32_t *want = json_ids(want_json, &n_want), *got = NULL;
            rc_status st = rc_tokenizer_encode(tok, (const char *)text, len, 1, &got, &n_got);
            CHECK(st == RC_OK, "%s: encode failed: %s", what, rc_last_error());
            if (st == RC_OK) check_ids(what, want, n_want, got, n_got);

            /* decode as HF does, with and without the special tokens */
            /* (null in the golden: the same as the text, resp. as decode) */
            const char *want_hex = cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring;
            for (int skip = 0; skip < 2; skip++) {
                const char *key = skip ? "decode_skip_special" : "decode";
                const cJSON *hex = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, key), tname);
                if (cJSON_IsString(hex)) want_hex = hex->valuestring;
                size_t n_text;
                unsigned char *want_text = from_hex(want_hex, &n_text);
                char *decoded = NULL;
                size_t n_decoded = 0;
                st = rc_tokenizer_decode(tok, want, n_want, skip, &decoded, &n_decoded);
                CHECK(st == RC_OK, "%s: decode failed: %s", what, rc_last_error());
                char what2[300];
                snprintf(what2, sizeof what2, "%s %s", what, key);
                if (st == RC_OK) check_bytes(what2, want_text, n_text, decoded, n_decoded);
                free(decoded);
                free(want_text);
            }

            /* without special tokens: the same ids minus the BOS; and for the
             * plain GPT-2 style folders decode(encode(x)) gives x back */
            if (t < 2) {
                int32_t *plain = NULL;
                size_t n_plain = 0;
                st = rc_tokenizer_encode(tok, (const char *)text, len, 0, &plain, &n_plain);
                size_t bos = (size_t)rc_tokenizer_adds_bos(tok);
                CHECK(st == RC_OK && n_plain + bos == n_want &&
                          (n_plain == 0 || memcmp(plain, want + bos, n_plain * sizeof *plain) == 0),
                      "%s: encoding without special tokens is not the ids minus BOS", what);
                if (strncmp(name, "invalid_", 8) != 0) {
                    char *back = NULL;
                    size_t n_back = 0;
                    st = rc_tokenizer_decode(tok, plain, n_plain, 0, &back, &n_back);
                    char what2[300];
                    snprintf(what2, sizeof what2, "%s decode(encode(x)) == x", what);
                    if (st == RC_OK) check_bytes(what2, text, len, back, n_back);
                    free(back);
                }
                free(plain);
            }
            free(want);
            free(got);
        }
        free(text);
    }
    CHECK(n_cases >= 50, "only %d edge cases in edge_cases.json", n_cases);
    cJSON_Delete(golden);
}

static void check_decode_prefixes(void) {
    cJSON *golden = load_golden_json("decode_prefixes.json");
    if (!golden) return;
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, golden) {
        rc_tokenizer *tok = tokenizer_named(cJSON_GetObjectItemCaseSensitive(c, "tokenizer")->valuestring);
        k++;
        if (!tok) continue;
        size_t n_ids, n_want, n_got;
        int32_t *ids = json_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &n_ids);
        unsigned char *want = from_hex(cJSON_GetObjectItemCaseSensitive(c, "text_hex")->valuestring, &n_want);
        char *got = NULL;
        rc_status st = rc_tokenizer_decode(tok, ids, n_ids, 0, &got, &n_got);
        char what[128];
        snprintf(what, sizeof what, "decode_prefixes[%d] (%zu ids)", k - 1, n_ids);
        CHECK(st == RC_OK, "%s: %s", what, rc_last_error());
        if (st == RC_OK) check_bytes(what, want, n_want, got, n_got);
        free(got);
        free(want);
        free(ids);
    }
    cJSON_Delete(golden);
}

static void check_batches(void) {
    cJSON *golden = load_golden_json("batch.json");
    if (!golden) return;
    const cJSON *texts_json = cJSON_GetObjectItemCaseSensitive(golden, "texts");
    size_t n_texts = (size_t)cJSON_GetArraySize(texts_json);
    const char **texts = malloc(n_texts * sizeof *texts);
    for (size_t i = 0; i < n_texts; i++) texts[i] = cJSON_GetArrayItem(texts_json, (int)i)->valuestring;
    const cJSON *b;
    int k = 0;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(golden, "batches")) {
        k++;
        rc_tokenizer *tok = tokenizer_named(cJSON_GetObjectItemCaseSensitive(b, "tokenizer")->valuestring);
        if (!tok) continue;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(b, "settings");
        rc_batch_options opts = rc_batch_options_default();
        const cJSON *padding = cJSON_GetObjectItemCaseSensitive(s, "padding");
        const cJSON *max_length = cJSON_GetObjectItemCaseSensitive(s, "max_length");
        const cJSON *pside = cJSON_GetObjectItemCaseSensitive(s, "padding_side");
        const cJSON *tside = cJSON_GetObjectItemCaseSensitive(s, "truncation_side");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(s, "add_special_tokens");
        if (cJSON_IsString(padding) && !strcmp(padding->valuestring, "max_length")) opts.pad_to_max_length = 1;
        if (max_length) opts.max_length = (size_t)max_length->valuedouble;
        if (pside && !strcmp(pside->valuestring, "left")) opts.padding_side = RC_SIDE_LEFT;
        if (tside && !strcmp(tside->valuestring, "left")) opts.truncation_side = RC_SIDE_LEFT;
        if (special && cJSON_IsFalse(special)) opts.add_special_tokens = 0;
        opts.n_threads = 1 + k % 2;

        rc_token_batch batch;
        rc_status st = rc_tokenizer_encode_batch(tok, texts, NULL, n_texts, &opts, &batch);
        char *settings = cJSON_PrintUnformatted(s);
        CHECK(st == RC_OK, "batch %d %s: %s", k, settings, rc_last_error());
        if (st == RC_OK) {
            const cJSON *ids_rows = cJSON_GetObjectItemCaseSensitive(b, "input_ids");
            const cJSON *mask_rows = cJSON_GetObjectItemCaseSensitive(b, "attention_mask");
            size_t T = (size_t)cJSON_GetArraySize(cJSON_GetArrayItem(ids_rows, 0));
            CHECK(batch.batch == n_texts && batch.seq_len == T, "batch %d %s: shape [%zu, %zu], HF [%zu, %zu]",
                  k, settings, batch.batch, batch.seq_len, n_texts, T);
            size_t expect_truncated = 0;
            for (size_t i = 0; i < n_texts && batch.seq_len == T; i++) {
                size_t n_want, n_mask;
                int32_t *want = json_ids(cJSON_GetArrayItem(ids_rows, (int)i), &n_want);
                int32_t *mask = json_ids(cJSON_GetArrayItem(mask_rows, (int)i), &n_mask);
                char what[512];
                snprintf(what, sizeof what, "batch %d %s row %zu ids", k, settings, i);
                check_ids(what, want, n_want, batch.ids + i * T, T);
                snprintf(what, sizeof what, "batch %d %s row %zu mask", k, settings, i);
                check_ids(what, mask, n_mask, batch.mask + i * T, T);
                size_t ones = 0;
                for (size_t t = 0; t < T; t++) ones += (size_t)mask[t];
                CHECK(batch.lengths[i] == ones, "batch %d row %zu: length %zu, HF mask has %zu ones", k, i,
                      batch.lengths[i], ones);
                /* a row was truncated when encoding it alone gives more ids */
                int32_t *alone;
                size_t n_alone;
                if (rc_tokenizer_encode(tok, texts[i], strlen(texts[i]), opts.add_special_tokens, &alone, &n_alone) == RC_OK) {
                    if (opts.max_length && n_alone > opts.max_length) expect_truncated++;
                    free(alone);
                }
                free(want);
                free(mask);
            }
            CHECK(batch.n_truncated == expect_truncated, "batch %d %s: %zu rows truncated, expected %zu", k,
                  settings, batch.n_truncated, expect_truncated);
            rc_token_batch_free(&batch);
        }
        free(settings);
    }
    CHECK(k >= 12, "batch.json holds %d batches", k);
    free((void *)texts);
    cJSON_Delete(golden);
}

/* FNV-1a 64 over the ids as little-endian int32 bytes (see the generator). */
static uint64_t fnv1a_ids(const int32_t *ids, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xFF;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

static size_t put_utf8(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { out[0] = (unsigned char)(0xC0 | cp >> 6); out[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The sweep text of a block: each code point c as "c x c c ' ' c 1 c ! ' ' c \n". */
static size_t sweep_text(uint32_t start, uint32_t block, unsigned char *out) {
    size_t n = 0;
    for (uint32_t cp = start; cp < start + block; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        unsigned char c[4];
        size_t k = put_utf8(cp, c);
        const char *pattern = "cxcc c1c! c\n";
        for (const char *p = pattern; *p; p++) {
            if (*p == 'c') {
                memcpy(out + n, c, k);
                n += k;
            } else {
                out[n++] = (unsigned char)*p;
            }
        }
    }
    return n;
}

static void check_unicode_sweep(void) {
    if (!tokenizers[0] || !tokenizers[1]) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/unicode_sweep.tsv", test_golden_dir());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    enum { BLOCK = 1024 };
    unsigned char *text = malloc((size_t)BLOCK * 8 * 4 + 64);
    char line[512];
    int blocks = 0, mismatched = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned long start;
        size_t count[2];
        unsigned long long hash[2];
        if (sscanf(line, "%lu\t%zu\t%llx\t%zu\t%llx", &start, &count[0], &hash[0], &count[1], &hash[1]) != 5) {
            CHECK(0, "%s: bad line '%s'", path, line);
            continue;
        }
        size_t len = sweep_text((uint32_t)start, BLOCK, text);
        for (int t = 0; t < 2; t++) {
            int32_t *ids;
            size_t n;
            rc_status st = rc_tokenizer_encode(tokenizers[t], (const char *)text, len, 1, &ids, &n);
            int ok = st == RC_OK && n == count[t] && fnv1a_ids(ids, n) == (uint64_t)hash[t];
            if (!ok && mismatched++ < 5)
                CHECK(0, "%s: code points U+%04lX..U+%04lX: %zu ids (HF %zu) or hash differs", tokenizer_names[t],
                      start, start + BLOCK - 1, n, count[t]);
            else
                CHECK(ok, "%s: sweep block U+%04lX differs", tokenizer_names[t], start);
            if (st == RC_OK) free(ids);
        }
        blocks++;
    }
    fclose(f);
    free(text);
    CHECK(blocks == 0x110000 / BLOCK, "unicode_sweep.tsv has %d blocks, expected %d", blocks, 0x110000 / BLOCK);
}

int main(void) {
    char dir[4096];
    int have_data = 1;
    for (int t = 0; t < N_TOKENIZERS; t++) {
        if (t < 2) snprintf(dir, sizeof dir, "%s/tokenizers/%s", test_data_dir(), tokenizer_names[t]);
        else snprintf(dir, sizeof dir, "%s/tokenizer/%s", test_golden_dir(), tokenizer_names[t]);
        if (t < 2 && !rc_path_is_dir(dir)) {
            have_data = 0;
            continue;
        }
        rc_status st = rc_tokenizer_load(dir, &tokenizers[t]);
        CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
    }
    check_edge_cases();
    check_decode_prefixes();
    check_batches();
    check_unicode_sweep();
    for (int t = 0; t < N_TOKENIZERS; t++) rc_tokenizer_free(tokenizers[t]);
    int rc = test_finish("test_tokenizer_golden");
    if (rc == 0 && !have_data) {
        printf("test_tokenizer_golden: SKIP gpt2/opt: no tokenizers in %s (set REWARDC_DATA); "
               "only the tiny tokenizer.json folders were checked\n", test_data_dir());
        return TEST_SKIP;
    }
    return rc;
}
