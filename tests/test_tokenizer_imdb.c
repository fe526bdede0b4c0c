/* Tokenizer vs Hugging Face on real text: all 5,000 train reviews of
 * aclImdb_subset.tar.gz (extracted with `tar` into REWARDC_TMP), with the
 * GPT-2 and OPT folders. Every review's ids are checked through their count
 * and FNV-1a-64 hash (golden/tokenizer/imdb_subset_train.tsv), the 300 shortest
 * id by id (imdb_ids_*.tsv); decode(encode(x)) must give x back, and the
 * parallel batch encoder must agree with one-at-a-time encoding.
 * Skips (exit 77) when the shared data is absent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

enum { N_REVIEWS = 5000 };

typedef struct {
    char name[64];
    size_t count[2];
    uint64_t hash[2];
    char *text;
    size_t len;
} review;

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

/* Single-quotes a path for /bin/sh. */
static void shell_quote(char *out, size_t cap, const char *s) {
    size_t o = 0;
    out[o++] = '\'';
    for (; *s && o + 5 < cap; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void print_mismatch(const char *tname, const review *r, const int32_t *ids, size_t n, int which) {
    fprintf(stderr, "  %s %s: rewardc gives %zu ids (HF %zu), hash %016llx (HF %016llx)\n  text: %.300s\n  ids:",
            tname, r->name, n, r->count[which], (unsigned long long)fnv1a_ids(ids, n),
            (unsigned long long)r->hash[which], r->text);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n  (python3 tools/gen_golden_tokenizer.py --show %s prints HF's ids)\n",
            n > 40 ? " ..." : "", r->name);
}

int main(void) {
    const char *data = test_data_dir();
    char archive[4096], dirs[2][4096];
    snprintf(archive, sizeof archive, "%s/imdb/aclImdb_subset.tar.gz", data);
    snprintf(dirs[0], sizeof dirs[0], "%s/tokenizers/gpt2", data);
    snprintf(dirs[1], sizeof dirs[1], "%s/tokenizers/opt", data);
    if (!rc_path_is_file(archive) || !rc_path_is_dir(dirs[0]) || !rc_path_is_dir(dirs[1])) {
        printf("test_tokenizer_imdb: SKIP: %s or the gpt2/opt tokenizer folders are absent (set REWARDC_DATA)\n",
               archive);
        return TEST_SKIP;
    }
    const char *names[2] = {"gpt2", "opt"};
    rc_tokenizer *toks[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        rc_status st = rc_tokenizer_load(dirs[t], &toks[t]);
        CHECK(st == RC_OK, "loading %s: %s", dirs[t], rc_last_error());
        if (st != RC_OK) return test_finish("test_tokenizer_imdb");
    }

    /* extract the train reviews */
    char out_dir[4096], cmd[16600], q_archive[8200], q_out[8200];
    snprintf(out_dir, sizeof out_dir, "%s/tokenizer_imdb", test_tmp_dir());
    CHECK(rc_mkdir_p(out_dir) == RC_OK, "cannot create %s: %s", out_dir, rc_last_error());
    shell_quote(q_archive, sizeof q_archive, archive);
    shell_quote(q_out, sizeof q_out, out_dir);
    snprintf(cmd, sizeof cmd, "tar -xzf %s -C %s aclImdb_subset/train/pos aclImdb_subset/train/neg", q_archive, q_out);
    int tar_rc = system(cmd);
    CHECK(tar_rc == 0, "'%s' failed (status %d)", cmd, tar_rc);
    if (tar_rc != 0) return test_finish("test_tokenizer_imdb");

    /* golden counts and hashes, then the texts */
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/imdb_subset_train.tsv", test_golden_dir());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return test_finish("test_tokenizer_imdb");
    review *reviews = calloc(N_REVIEWS + 1, sizeof *reviews);
    size_t n_reviews = 0;
    char line[512];
    while (fgets(line, sizeof line, f) && n_reviews <= N_REVIEWS) {
        if (line[0] == '#') continue;
        review *r = &reviews[n_reviews];
        unsigned long long h0, h1;
        if (sscanf(line, "%63s %zu %llx %zu %llx", r->name, &r->count[0], &h0, &r->count[1], &h1) != 5) {
            CHECK(0, "%s: bad line '%s'", path, line);
            continue;
        }
        r->hash[0] = h0;
        r->hash[1] = h1;
        char file[8192];
        snprintf(file, sizeof file, "%s/aclImdb_subset/%s", out_dir, r->name);
        rc_status st = rc_read_file(file, &r->text, &r->len);
        CHECK(st == RC_OK, "cannot read %s: %s", file, rc_last_error());
        if (st == RC_OK) n_reviews++;
    }
    fclose(f);
    CHECK(n_reviews == N_REVIEWS, "%zu reviews read, expected %d", n_reviews, N_REVIEWS);

    /* every review, one at a time, plus decode(encode(x)) == x */
    for (int t = 0; t < 2; t++) {
        size_t bad = 0, bad_roundtrip = 0;
        for (size_t i = 0; i < n_reviews; i++) {
            review *r = &reviews[i];
            int32_t *ids;
            size_t n;
            rc_status st = rc_tokenizer_encode(toks[t], r->text, r->len, 1, &ids, &n);
            int ok = st == RC_OK && n == r->count[t] && fnv1a_ids(ids, n) == r->hash[t];
            if (!ok && bad++ == 0) print_mismatch(names[t], r, st == RC_OK ? ids : NULL, st == RC_OK ? n : 0, t);
            if (st != RC_OK) continue;
            size_t bos = (size_t)rc_tokenizer_adds_bos(toks[t]);
            char *back;
            size_t n_back;
            st = rc_tokenizer_decode(toks[t], ids + bos, n - bos, 0, &back, &n_back);
            if (st != RC_OK || n_back != r->len || memcmp(back, r->text, r->len) != 0) {
                if (bad_roundtrip++ == 0) fprintf(stderr, "  %s %s: decode(encode(x)) != x\n", names[t], r->name);
            }
            if (st == RC_OK) free(back);
            free(ids);
        }
        CHECK(bad == 0, "%s: %zu of %zu reviews differ from HF (first one shown above)", names[t], bad, n_reviews);
        CHECK(bad_roundtrip == 0, "%s: %zu reviews do not decode back to their text", names[t], bad_roundtrip);
        printf("%s: %zu reviews match HF id for id (count + hash)\n", names[t], n_reviews - bad);
    }

    /* the full ids of the shortest reviews */
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/tokenizer/imdb_ids_%s.tsv", test_golden_dir(), names[t]);
        char *text;
        size_t len;
        rc_status st = rc_read_file(path, &text, &len);
        CHECK(st == RC_OK, "%s", rc_last_error());
        if (st != RC_OK) continue;
        size_t lines = 0;
        for (char *p = text, *eol; *p; p = eol + 1) {
            eol = strchr(p, '\n');
            if (!eol) break;
            *eol = '\0';
            if (*p == '#') continue;
            char *tab = strchr(p, '\t');
            if (!tab) continue;
            *tab = '\0';
            const review *r = NULL;
            for (size_t i = 0; i < n_reviews && !r; i++)
                if (!strcmp(reviews[i].name, p)) r = &reviews[i];
            CHECK(r != NULL, "%s: %s is not among the reviews", path, p);
            if (!r) continue;
            int32_t *ids;
            size_t n;
            st = rc_tokenizer_encode(toks[t], r->text, r->len, 1, &ids, &n);
            if (st != RC_OK) continue;
            size_t k = 0, first_diff = SIZE_MAX;
            for (char *q = tab + 1; *q;) {
                char *end;
                long v = strtol(q, &end, 10);
                if (end == q) break;
                if (first_diff == SIZE_MAX && (k >= n || ids[k] != v)) first_diff = k;
                k++;
                q = end;
            }
            if (first_diff == SIZE_MAX && k != n) first_diff = k < n ? k : n;
            CHECK(first_diff == SIZE_MAX, "%s %s: ids differ from HF at position %zu", names[t], r->name, first_diff);
            free(ids);
            lines++;
        }
        CHECK(lines >= 300, "%s: only %zu reviews with full ids", path, lines);
        free(text);
    }

    /* the parallel batch encoder gives the same lists as one-at-a-time */
    const char **texts = malloc(n_reviews * sizeof *texts);
    size_t *lens = malloc(n_reviews * sizeof *lens);
    for (size_t i = 0; i < n_reviews; i++) {
        texts[i] = reviews[i].text;
        lens[i] = reviews[i].len;
    }
    for (int t = 0; t < 2; t++) {
        rc_token_lists lists;
        rc_status st = rc_tokenizer_encode_lists(toks[t], texts, lens, n_reviews, 1, 2, &lists);
        CHECK(st == RC_OK, "encode_lists: %s", rc_last_error());
        if (st != RC_OK) continue;
        size_t bad = 0;
        for (size_t i = 0; i < n_reviews; i++) {
            size_t n = lists.offsets[i + 1] - lists.offsets[i];
            if (n != reviews[i].count[t] || fnv1a_ids(lists.ids + lists.offsets[i], n) != reviews[i].hash[t]) bad++;
        }
        CHECK(bad == 0, "%s: the 2-thread encoder differs from HF on %zu reviews", names[t], bad);
        rc_token_lists_free(&lists);
    }
    free((void *)texts);
    free(lens);

    for (size_t i = 0; i < n_reviews; i++) free(reviews[i].text);
    free(reviews);
    rc_tokenizer_free(toks[0]);
    rc_tokenizer_free(toks[1]);
    return test_finish("test_tokenizer_imdb");
}
