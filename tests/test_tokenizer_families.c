/* The pre-tokenizers of the model families (smollm, llama-bpe, qwen2, and
 * every Split behavior) against Hugging Face `tokenizers`, id for id
 * (golden/tokenizer/families/, made by tools/gen_golden_tokenizer.py
 * --families): the tiny tokenizer.json folders committed there, and the real
 * SmolLM2 tokenizer when REWARDC_SMOLLM2_TOKENIZER names its folder (built
 * from the shared GGUF by tools/make_smollm2_tokenizer.py or `rewardc import
 * --gguf`; skipped otherwise). Edge cases compare every id; the IMDB and
 * HH-RLHF samples compare count and FNV-1a hash (they need the shared data). */
#define _POSIX_C_SOURCE 200809L /* popen */

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

enum { MAX_TOKENIZERS = 16 };
static char names[MAX_TOKENIZERS][64];
static rc_tokenizer *toks[MAX_TOKENIZERS];
static int n_toks;

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

static char *copy_text(const char *s) {
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (c) memcpy(c, s, n + 1);
    return c;
}

static uint64_t fnv1a_ids(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void load_tokenizers(const cJSON *meta) {
    const cJSON *m;
    cJSON_ArrayForEach(m, meta) {
        if (n_toks == MAX_TOKENIZERS) break;
        char dir[4096];
        if (!strcmp(m->string, "smollm2")) {
            const char *env = getenv("REWARDC_SMOLLM2_TOKENIZER");
            if (!env || !*env) {
                printf("test_tokenizer_families: SKIP smollm2: REWARDC_SMOLLM2_TOKENIZER is not set "
                       "(python3 tools/make_smollm2_tokenizer.py DIR makes the folder)\n");
                continue;
            }
            snprintf(dir, sizeof dir, "%s", env);
        } else {
            snprintf(dir, sizeof dir, "%s/tokenizer/families/%s", test_golden_dir(), m->string);
        }
        rc_tokenizer *tok = NULL;
        rc_status st = rc_tokenizer_load(dir, &tok);
        CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
        if (st != RC_OK) continue;
        int32_t vocab = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "vocab_size")->valuedouble;
        int32_t bos = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "bos_id")->valuedouble;
        int32_t eos = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "eos_id")->valuedouble;
        int32_t pad = (int32_t)cJSON_GetObjectItemCaseSensitive(m, "pad_id")->valuedouble;
        CHECK(rc_tokenizer_vocab_size(tok) == vocab, "%s: vocab %d, HF %d", m->string, rc_tokenizer_vocab_size(tok), vocab);
        CHECK(rc_tokenizer_bos_id(tok) == bos, "%s: bos %d, HF %d", m->string, rc_tokenizer_bos_id(tok), bos);
        CHECK(rc_tokenizer_eos_id(tok) == eos, "%s: eos %d, HF %d", m->string, rc_tokenizer_eos_id(tok), eos);
        CHECK(rc_tokenizer_pad_id(tok) == pad, "%s: pad %d, HF %d", m->string, rc_tokenizer_pad_id(tok), pad);
        snprintf(names[n_toks], sizeof names[n_toks], "%s", m->string);
        toks[n_toks++] = tok;
    }
}

static void check_case(const char *case_name, const char *tname, const rc_tokenizer *tok,
                       const unsigned char *text, size_t len, const cJSON *want) {
    int32_t *ids = NULL;
    size_t n = 0;
    rc_status st = rc_tokenizer_encode(tok, (const char *)text, len, 1, &ids, &n);
    CHECK(st == RC_OK, "%s/%s: encode failed: %s", tname, case_name, rc_last_error());
    size_t n_want = (size_t)cJSON_GetArraySize(want), i = 0;
    const cJSON *v = want ? want->child : NULL;
    while (i < n && v && ids[i] == (int32_t)v->valuedouble) {
        i++;
        v = v->next;
    }
    if (i == n && i == n_want) {
        CHECK(1, "ids match");
    } else {
        char buf[600];
        int o = snprintf(buf, sizeof buf, "first difference at %zu (HF %zu ids, rewardc %zu); HF:", i, n_want, n);
        for (size_t k = 0; v && k < 8; k++, v = v->next) o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", (int)v->valuedouble);
        o += snprintf(buf + o, sizeof buf - (size_t)o, " | rewardc:");
        for (size_t k = i; k < n && k < i + 8; k++) o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", ids[k]);
        CHECK(0, "%s/%s: %s", tname, case_name, buf);
    }
    free(ids);
}

static void check_cases(const cJSON *cases) {
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *case_name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        size_t len;
        unsigned char *text = from_hex(cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring, &len);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
        for (int t = 0; t < n_toks; t++) {
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(ids, names[t]);
            CHECK(want != NULL, "families.json: case %s has no ids for %s", case_name, names[t]);
            if (want) check_case(case_name, names[t], toks[t], text, len, want);
        }
        free(text);
    }
}

/* ---- samples: IMDB reviews and HH-RLHF dialogues ---- */

static char *read_imdb_review(const char *dir, const char *name) {
    char path[8300], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/aclImdb_subset/%s", dir, name);
    return rc_read_file(path, &text, &len) == RC_OK ? text : NULL;
}

/* The side ("chosen"/"rejected") of line `index` of the HH dev file. */
static char *read_hh(char **lines, size_t n_lines, size_t index, const char *side) {
    if (index >= n_lines) return NULL;
    cJSON *obj = cJSON_Parse(lines[index]);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, side);
    char *text = cJSON_IsString(v) ? copy_text(v->valuestring) : NULL;
    cJSON_Delete(obj);
    return text;
}

/* The lines of a gzip file (each NUL-terminated inside one buffer *store). */
static size_t read_lines(const char *gz, char ***out, char **store) {
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", gz);
    FILE *p = popen(cmd, "r");
    size_t len = 0, cap = 1 << 20;
    char *buf = malloc(cap + 1);
    size_t got;
    while (p && buf && (got = fread(buf + len, 1, cap - len, p)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    if (p) pclose(p);
    size_t n = 0, lines_cap = 1024;
    char **lines = malloc(lines_cap * sizeof *lines);
    for (size_t at = 0; buf && at < len;) {
        char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len;
        buf[end] = 0;
        if (n == lines_cap) lines = realloc(lines, (lines_cap *= 2) * sizeof *lines);
        lines[n++] = buf + at;
        at = end + 1;
    }
    *out = lines;
    *store = buf;
    return n;
}

/* One tab-separated line of f into buf (without the newline); 0 at the end. */
static int read_tsv_line(FILE *f, char *buf, size_t cap) {
    if (!fgets(buf, (int)cap, f)) return 0;
    buf[strcspn(buf, "\n")] = 0;
    return 1;
}

static void check_samples(void) {
    const char *data = test_data_dir();
    char archive[4096], hh_path[4096], golden[4096], out_dir[4096];
    snprintf(archive, sizeof archive, "%s/imdb/aclImdb_subset.tar.gz", data);
    snprintf(hh_path, sizeof hh_path, "%s/hh-rlhf/harmless_base_dev.jsonl.gz", data);
    snprintf(golden, sizeof golden, "%s/tokenizer/families/samples.tsv", test_golden_dir());
    if (!rc_path_is_file(archive) || !rc_path_is_file(hh_path)) {
        printf("test_tokenizer_families: SKIP samples: %s or %s is absent\n", archive, hh_path);
        return;
    }
    snprintf(out_dir, sizeof out_dir, "%s/tokenizer_families", test_tmp_dir());
    CHECK(rc_mkdir_p(out_dir) == RC_OK, "cannot create %s", out_dir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "tar -xzf '%s' -C '%s' aclImdb_subset/train", archive, out_dir);
    CHECK(system(cmd) == 0, "'%s' failed", cmd);
    char **hh = NULL, *hh_store = NULL;
    size_t n_hh = read_lines(hh_path, &hh, &hh_store);
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "cannot open %s", golden);
    if (!f) return;
    static char line[8192];
    int columns[MAX_TOKENIZERS]; /* golden column of each loaded tokenizer */
    int n_samples = 0;
    while (read_tsv_line(f, line, sizeof line)) {
        char *fields[2 * MAX_TOKENIZERS + 2];
        int nf = 0;
        for (char *s = line, *tab; nf < 2 * MAX_TOKENIZERS + 1; s = tab + 1) {
            fields[nf++] = s;
            if (!(tab = strchr(s, '\t'))) break;
            *tab = 0;
        }
        if (line[0] == '#') { /* header: "<name>_count" columns */
            for (int t = 0; t < n_toks; t++) {
                columns[t] = -1;
                for (int k = 1; k < nf; k++)
                    if (!strncmp(fields[k], names[t], strlen(names[t])) && !strcmp(fields[k] + strlen(names[t]), "_count"))
                        columns[t] = k;
                CHECK(columns[t] > 0, "samples.tsv has no column for %s", names[t]);
            }
            continue;
        }
        char *text = NULL;
        if (!strncmp(fields[0], "imdb:", 5)) {
            text = read_imdb_review(out_dir, fields[0] + 5);
        } else {
            size_t index = 0;
            char side[16] = "";
            if (sscanf(fields[0], "hh:%zu:%15s", &index, side) == 2) text = read_hh(hh, n_hh, index, side);
        }
        CHECK(text != NULL, "cannot read sample %s", fields[0]);
        if (!text) continue;
        n_samples++;
        for (int t = 0; t < n_toks; t++) {
            if (columns[t] < 0) continue;
            int32_t *ids = NULL;
            size_t n = 0;
            rc_status st = rc_tokenizer_encode(toks[t], text, strlen(text), 1, &ids, &n);
            size_t want_n = strtoull(fields[columns[t]], NULL, 10);
            unsigned long long want_h = strtoull(fields[columns[t] + 1], NULL, 16);
            CHECK(st == RC_OK && n == want_n && fnv1a_ids(ids, n) == want_h,
                  "%s on %s: rewardc %zu ids hash %016llx, HF %zu ids hash %016llx", names[t], fields[0], n,
                  (unsigned long long)fnv1a_ids(ids, n), want_n, want_h);
            free(ids);
        }
        free(text);
    }
    fclose(f);
    free(hh);
    free(hh_store);
    CHECK(n_samples == 400, "samples.tsv: %d samples read, expected 400", n_samples);
}

int main(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/families/families.json", test_golden_dir());
    cJSON *golden = NULL;
    rc_status st = rc_json_load_file(path, &golden);
    CHECK(st == RC_OK, "cannot load %s: %s", path, rc_last_error());
    if (st != RC_OK) return test_finish("test_tokenizer_families");
    load_tokenizers(cJSON_GetObjectItemCaseSensitive(golden, "tokenizers"));
    check_cases(cJSON_GetObjectItemCaseSensitive(golden, "cases"));
    cJSON_Delete(golden);
    check_samples();
    for (int t = 0; t < n_toks; t++) rc_tokenizer_free(toks[t]);
    return test_finish("test_tokenizer_families");
}
