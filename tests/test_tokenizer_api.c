/* Tokenizer API behaviour that needs no Hugging Face reference: BPE on small
 * hand-made vocabularies (expected ids derived by hand from the merge ranks),
 * long words (the heap merge must be exact and must not be quadratic), error
 * reporting for malformed folders and bad arguments, batch padding rules,
 * thread safety. Uses the shared GPT-2/OPT folders where present. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rewardc/io.h"
#include "rewardc/tokenizer.h"
#include "testlib.h"

/* CPU time of this process: wall time is meaningless on a loaded machine */
static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* Writes the files of a tokenizer folder under REWARDC_TMP; returns its path. */
static const char *make_folder(const char *name, const char *const *files, const char *const *contents, int n) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizer_api_%s", test_tmp_dir(), name);
    rc_mkdir_p(dir);
    const char *all[] = {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 5; i++) { /* start from an empty folder */
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, all[i]);
        remove(path);
    }
    for (int i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(rc_write_file_atomic(path, contents[i], strlen(contents[i])) == RC_OK, "cannot write %s", path);
    }
    return dir;
}

static int ids_equal(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want) {
    return n_got == n_want && (n_got == 0 || memcmp(got, want, n_got * sizeof *got) == 0);
}

/* Byte-level strings: 'Ġ' (U+0120) stands for a space. */
static const char hello_vocab[] =
    "{\"h\": 0, \"e\": 1, \"l\": 2, \"o\": 3, \"he\": 4, \"ll\": 5, \"hell\": 6, \"\\u0120\": 7,"
    " \"\\u0120he\": 8, \"llll\": 9, \"<pad>\": 10, \"</s>\": 11}";
/* ranks: 0 "h e", 1 "l l", 2 "he ll", 3 "Ġ he", 4 "ll ll" */
static const char hello_merges[] = "#version: 0.2\nh e\nl l\nhe ll\n\xc4\xa0 he\nll ll\n";

static void check_hand_made_bpe(void) {
    const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    const char *contents[] = {hello_vocab, hello_merges,
                              "{\"add_bos_token\": true, \"bos_token\": \"</s>\", \"eos_token\": \"</s>\", \"pad_token\": \"<pad>\"}"};
    const char *dir = make_folder("hello", files, contents, 3);
    rc_tokenizer *tok;
    rc_status st = rc_tokenizer_load(dir, &tok);
    CHECK(st == RC_OK, "loading %s: %s", dir, rc_last_error());
    if (st != RC_OK) return;
    CHECK(rc_tokenizer_bos_id(tok) == 11 && rc_tokenizer_pad_id(tok) == 1 + 9 && rc_tokenizer_adds_bos(tok),
          "special ids: bos %d pad %d", rc_tokenizer_bos_id(tok), rc_tokenizer_pad_id(tok));
    CHECK(rc_tokenizer_vocab_size(tok) == 12, "vocab size %d", rc_tokenizer_vocab_size(tok));
    CHECK(rc_tokenizer_token_to_id(tok, "hell") == 6 && rc_tokenizer_token_to_id(tok, "nope") == -1,
          "token_to_id");
    CHECK(rc_tokenizer_id_to_token(tok, 8) && !strcmp(rc_tokenizer_id_to_token(tok, 8), "\xc4\xa0he"),
          "id_to_token(8)");
    struct {
        const char *text;
        int32_t ids[40];
        size_t n;
    } cases[] = {
        /* h e l l o: (h,e) rank 0, then (l,l) 1, then (he,ll) 2 -> hell o */
        {"hello", {11, 6, 3}, 3},
        /* " hello": (h,e) 0 -> Ġ he l l o; (l,l) 1; then (he,ll) rank 2 beats (Ġ,he) rank 3 */
        {"hello hello", {11, 6, 3, 7, 6, 3}, 6},
        /* " he": Ġ h e -> Ġ he -> Ġhe */
        {" he", {11, 8}, 2},
        /* l x 5: (l,l) leftmost first -> ll ll l -> (ll,ll) -> llll l */
        {"lllll", {11, 9, 2}, 3},
        /* the added tokens split the text; </s> in text is the token */
        {"he</s>he<pad>", {11, 4, 11, 4, 10}, 5},
        {"", {11}, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t *ids;
        size_t n;
        st = rc_tokenizer_encode(tok, cases[c].text, strlen(cases[c].text), 1, &ids, &n);
        CHECK(st == RC_OK && ids_equal(ids, n, cases[c].ids, cases[c].n), "hand-made BPE of '%s': got %zu ids", cases[c].text, n);
        if (st == RC_OK) free(ids);
    }

    /* long runs of 'l' go through the heap merge (over 64 symbols): n l's make
     * n/4 "llll", then "ll" if n%4 >= 2, then "l" if n is odd */
    size_t lengths[] = {63, 64, 65, 66, 67, 100, 101, 1001, 4099};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        size_t len = lengths[k];
        char *text = malloc(len);
        memset(text, 'l', len);
        int32_t *ids;
        size_t n;
        st = rc_tokenizer_encode(tok, text, len, 0, &ids, &n);
        size_t want_n = len / 4 + (len % 4 >= 2) + (len % 2);
        int ok = st == RC_OK && n == want_n;
        for (size_t i = 0; ok && i < len / 4; i++) ok = ids[i] == 9;
        if (ok && len % 4 >= 2) ok = ids[len / 4] == 5;
        if (ok && len % 2) ok = ids[n - 1] == 2;
        CHECK(ok, "%zu x 'l': got %zu ids, want %zu", len, n, want_n);
        if (st == RC_OK) free(ids);
        free(text);
    }
    rc_tokenizer_free(tok);
}

static void check_load_errors(void) {
    rc_tokenizer *tok = NULL;
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no_such_tokenizer_folder", test_tmp_dir());
    rc_status st = rc_tokenizer_load(missing, &tok);
    CHECK(st == RC_ERR_IO && tok == NULL && strstr(rc_last_error(), "no_such_tokenizer_folder"),
          "missing folder: status %d, message '%s'", st, rc_last_error());

    const char *vm[] = {"vocab.json", "merges.txt"};
    const char *bad_json[] = {"{\"a\": 0, ", "#version: 0.2\n"};
    st = rc_tokenizer_load(make_folder("bad_json", vm, bad_json, 2), &tok);
    CHECK(st == RC_ERR_FORMAT && strstr(rc_last_error(), "vocab.json"), "truncated vocab.json: %d '%s'", st, rc_last_error());

    const char *bad_id[] = {"{\"a\": \"zero\"}", "#version: 0.2\n"};
    st = rc_tokenizer_load(make_folder("bad_id", vm, bad_id, 2), &tok);
    CHECK(st == RC_ERR_FORMAT && strstr(rc_last_error(), "'a'"), "string id: %d '%s'", st, rc_last_error());

    const char *unknown_merge[] = {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na b\nb c\n"};
    st = rc_tokenizer_load(make_folder("unknown_merge", vm, unknown_merge, 2), &tok);
    CHECK(st == RC_ERR_FORMAT && strstr(rc_last_error(), "merges.txt:3"), "merge with unknown token: %d '%s'", st,
          rc_last_error());

    const char *bad_merge_line[] = {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na b c\n"};
    st = rc_tokenizer_load(make_folder("bad_merge_line", vm, bad_merge_line, 2), &tok);
    CHECK(st == RC_ERR_FORMAT && strstr(rc_last_error(), "merges.txt:2"), "three-token merge line: %d '%s'", st,
          rc_last_error());

    const char *tj[] = {"tokenizer.json"};
    const char *normalizer[] = {"{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
                                " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"};
    st = rc_tokenizer_load(make_folder("normalizer", tj, normalizer, 1), &tok);
    CHECK(st == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "normalizer"), "NFC normalizer: %d '%s'", st, rc_last_error());

    const char *wordpiece[] = {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}"};
    st = rc_tokenizer_load(make_folder("wordpiece", tj, wordpiece, 1), &tok);
    CHECK(st == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "WordPiece"), "WordPiece: %d '%s'", st, rc_last_error());

    const char *bad_regex[] = {"{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
                               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"},"
                               "{\"type\": \"ByteLevel\", \"use_regex\": false}]},"
                               " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"};
    st = rc_tokenizer_load(make_folder("bad_regex", tj, bad_regex, 1), &tok);
    CHECK(st == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "(unclosed"), "bad regex: %d '%s'", st, rc_last_error());

    /* merges given as pairs, a literal Split, no post-processor: loads and splits */
    const char *pairs[] = {"{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
                           "{\"type\": \"Split\", \"pattern\": {\"String\": \"+\"}, \"behavior\": \"Removed\"},"
                           "{\"type\": \"ByteLevel\", \"use_regex\": false}]},"
                           " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"+\": 3},"
                           " \"merges\": [[\"a\", \"b\"]]}}"};
    st = rc_tokenizer_load(make_folder("pairs", tj, pairs, 1), &tok);
    CHECK(st == RC_OK, "pair merges: %s", rc_last_error());
    if (st == RC_OK) {
        int32_t *ids;
        size_t n;
        /* "+" is removed by the split, so "a+b" does not merge; "ab" does */
        const int32_t want[] = {0, 1, 2};
        st = rc_tokenizer_encode(tok, "a+bab", 5, 1, &ids, &n);
        CHECK(st == RC_OK && ids_equal(ids, n, want, 3), "literal Split(Removed): got %zu ids", n);
        if (st == RC_OK) free(ids);
        rc_tokenizer_free(tok);
    }
}

static void check_with_opt(const char *data) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizers/opt", data);
    rc_tokenizer *opt, *gpt2;
    if (rc_tokenizer_load(dir, &opt) != RC_OK) return;
    snprintf(dir, sizeof dir, "%s/tokenizers/gpt2", data);
    if (rc_tokenizer_load(dir, &gpt2) != RC_OK) {
        rc_tokenizer_free(opt);
        return;
    }
    CHECK(rc_tokenizer_token_to_id(opt, "</s>") == 2 && rc_tokenizer_token_to_id(opt, "<pad>") == 1 &&
              rc_tokenizer_token_to_id(opt, "<nope>") == -1,
          "OPT token_to_id");
    CHECK(rc_tokenizer_pad_id(gpt2) == -1 && rc_tokenizer_eos_id(gpt2) == 50256 && !rc_tokenizer_adds_bos(gpt2),
          "GPT-2 special ids");

    /* decode rejects ids outside the vocabulary */
    const int32_t bad[] = {5, -1};
    char *text = NULL;
    rc_status st = rc_tokenizer_decode(opt, bad, 2, 0, &text, NULL);
    CHECK(st == RC_ERR_INVALID_ARG && text == NULL && strstr(rc_last_error(), "ids[1]"), "decode of -1: %d", st);
    const int32_t big[] = {rc_tokenizer_vocab_size(opt)};
    st = rc_tokenizer_decode(opt, big, 1, 0, &text, NULL);
    CHECK(st == RC_ERR_INVALID_ARG, "decode of vocab_size: %d", st);

    /* NULL text with length 0 is the empty string */
    int32_t *ids;
    size_t n;
    st = rc_tokenizer_encode(opt, NULL, 0, 1, &ids, &n);
    CHECK(st == RC_OK && ids && n == 1 && ids[0] == 2, "empty OPT text gives [BOS]");
    if (st == RC_OK) free(ids);
    st = rc_tokenizer_encode(gpt2, "", 0, 1, &ids, &n);
    CHECK(st == RC_OK && ids != NULL && n == 0, "empty GPT-2 text gives [] with a non-NULL buffer");
    if (st == RC_OK) free(ids);

    /* invalid UTF-8 reads as U+FFFD, byte for byte what the replaced text gives */
    int32_t *a, *b;
    size_t na, nb;
    rc_tokenizer_encode(gpt2, "x\xff\xfey\xe2\x82", 6, 1, &a, &na);
    rc_tokenizer_encode(gpt2, "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd", 11, 1, &b, &nb);
    CHECK(ids_equal(a, na, b, nb), "invalid UTF-8 is not read as U+FFFD");
    free(a);
    free(b);

    /* batch rules */
    const char *texts[] = {"Hello world", "Hi", "Hello big world"}; /* 2, 1, 3 ids + BOS */
    rc_batch_options opts = rc_batch_options_default();
    rc_token_batch batch;
    st = rc_tokenizer_encode_batch(gpt2, texts, NULL, 2, &opts, &batch);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "pad"), "GPT-2 batch of unequal rows needs a pad token");
    const char *same[] = {"Hello world", "Hello world"};
    st = rc_tokenizer_encode_batch(gpt2, same, NULL, 2, &opts, &batch);
    CHECK(st == RC_OK && batch.batch == 2 && batch.seq_len == 2 && batch.mask[0] == 1 && batch.mask[3] == 1,
          "GPT-2 batch of equal rows needs no padding");
    if (st == RC_OK) rc_token_batch_free(&batch);
    opts.max_length = 0;
    opts.pad_to_max_length = 1;
    st = rc_tokenizer_encode_batch(opt, texts, NULL, 3, &opts, &batch);
    CHECK(st == RC_ERR_INVALID_ARG, "pad_to_max_length without max_length is refused");
    opts = rc_batch_options_default();
    opts.max_length = 3;
    st = rc_tokenizer_encode_batch(opt, texts, NULL, 3, &opts, &batch);
    CHECK(st == RC_OK && batch.seq_len == 3 && batch.n_truncated == 1 && batch.lengths[1] == 2 && batch.ids[0] == 2 &&
              batch.ids[5] == 1 && batch.mask[5] == 0,
          "OPT batch truncated to 3: T %zu, truncated %zu", batch.seq_len, batch.n_truncated);
    if (st == RC_OK) rc_token_batch_free(&batch);
    st = rc_tokenizer_encode_batch(opt, texts, NULL, 0, &opts, &batch);
    CHECK(st == RC_OK && batch.batch == 0, "empty batch");
    rc_token_batch_free(&batch);

    /* a megabyte-long word: the heap merge keeps this near-linear */
    size_t len = 1 << 20;
    char *word = malloc(len);
    memset(word, 'a', len);
    double start = cpu_seconds();
    st = rc_tokenizer_encode(gpt2, word, len, 0, &ids, &n);
    double seconds = cpu_seconds() - start;
    CHECK(st == RC_OK && n > 0 && n < len / 2, "1 MiB of 'a': %zu ids", n);
    CHECK(seconds < 10.0, "1 MiB of 'a' took %.2f s (quadratic merging?)", seconds);
    printf("1 MiB single-letter word: %zu ids in %.3f s of CPU time\n", n, seconds);
    if (st == RC_OK) {
        char *back;
        size_t n_back;
        st = rc_tokenizer_decode(gpt2, ids, n, 0, &back, &n_back);
        CHECK(st == RC_OK && n_back == len && memcmp(back, word, len) == 0, "1 MiB word does not decode back");
        if (st == RC_OK) free(back);
        free(ids);
    }
    free(word);

    /* many threads calling rc_tokenizer_encode on one tokenizer at once */
    enum { N_TEXTS = 400 };
    static char buffers[N_TEXTS][96];
    const char *many[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++) {
        snprintf(buffers[i], sizeof buffers[i], "Text number %d says: isn't it %d%% héllo</s> \xf0\x9f\x98\x80 %x", i, i * 7, i * 31);
        many[i] = buffers[i];
    }
    rc_token_lists serial;
    st = rc_tokenizer_encode_lists(opt, many, NULL, N_TEXTS, 1, 1, &serial);
    CHECK(st == RC_OK, "serial encode_lists: %s", rc_last_error());
    int mismatches = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(4) reduction(+ : mismatches) schedule(dynamic, 1)
#endif
    for (int i = 0; i < N_TEXTS; i++) {
        int32_t *mine;
        size_t n_mine;
        if (rc_tokenizer_encode(opt, many[i], strlen(many[i]), 1, &mine, &n_mine) != RC_OK) {
            mismatches++;
            continue;
        }
        size_t n_ser = serial.offsets[i + 1] - serial.offsets[i];
        if (!ids_equal(mine, n_mine, serial.ids + serial.offsets[i], n_ser)) mismatches++;
        free(mine);
    }
    CHECK(mismatches == 0, "%d texts encode differently from concurrent threads", mismatches);
    rc_token_lists_free(&serial);

    rc_tokenizer_free(opt);
    rc_tokenizer_free(gpt2);
}

int main(void) {
    check_hand_made_bpe();
    check_load_errors();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizers/opt", test_data_dir());
    if (rc_path_is_dir(dir)) check_with_opt(test_data_dir());
    else printf("test_tokenizer_api: shared data absent, GPT-2/OPT checks not run\n");
    return test_finish("test_tokenizer_api");
}
