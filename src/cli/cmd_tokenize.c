/* rewardc tokenize: encodes text with a Hugging Face byte-level BPE tokenizer
 * folder and prints the ids, one JSON array per input line. Lines are read in
 * blocks and each block is encoded in parallel, so output order is input order. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/tokenizer.h"

static const char usage_text[] =
    "usage: rewardc tokenize --tokenizer DIR [--input FILE] [--field NAME] [options]\n"
    "       rewardc tokenize --tokenizer DIR --text STRING [options]\n"
    "\n"
    "Encodes text exactly as Hugging Face's GPT2TokenizerFast does and prints the\n"
    "ids as one JSON array per text, e.g. [2, 31414, 6, 38].\n"
    "\n"
    "DIR is a tokenizer folder: tokenizer.json, or vocab.json + merges.txt, with\n"
    "tokenizer_config.json / special_tokens_map.json for the special tokens (so OPT\n"
    "gets its </s> BOS). Special-token strings in the text (\"</s>\", \"<pad>\",\n"
    "\"<|endoftext|>\") are encoded as those tokens, as Hugging Face does.\n"
    "\n"
    "input:\n"
    "  --input FILE     JSON Lines, one object per line (default, or '-': stdin);\n"
    "                   one output line per input line, in order; blank lines are\n"
    "                   skipped\n"
    "  --field NAME     the string field to encode (default: text)\n"
    "  --text STRING    encode STRING instead of reading JSON Lines\n"
    "\n"
    "options:\n"
    "  --no_special     do not add the special tokens (BOS) the tokenizer adds\n"
    "  --threads N      encoding threads (default: all; 1 = serial)\n"
    "  --time           print texts, tokens and encoding time (without reading,\n"
    "                   JSON parsing and printing) to stderr at the end\n"
    "  --help           this text\n"
    "\n"
    "errors: a line that is not a JSON object, or lacks the field as a string,\n"
    "is reported on stderr with its line number; output stops before that line\n"
    "and the exit status is 1. Exit status 2 is a usage error, 0 success.\n";

enum { BLOCK_LINES = 4096 };

typedef struct {
    const char *tokenizer_dir, *input, *field, *text;
    int add_special, threads, report_time;
} tokenize_options;

typedef struct {
    size_t texts, tokens;
    double seconds;
} encode_totals;

static double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints one list as "[a, b, c]\n" with a hand-rolled integer formatter:
 * printf per id would dominate the run time for large inputs. */
static void print_ids(FILE *out, const int32_t *ids, size_t n, char *buf, size_t buf_cap) {
    size_t o = 0;
    buf[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (o + 16 > buf_cap) {
            fwrite(buf, 1, o, out);
            o = 0;
        }
        if (i) {
            buf[o++] = ',';
            buf[o++] = ' ';
        }
        int64_t v = ids[i];
        if (v < 0) {
            buf[o++] = '-';
            v = -v;
        }
        char digits[12];
        int k = 0;
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k) buf[o++] = digits[--k];
    }
    buf[o++] = ']';
    buf[o++] = '\n';
    fwrite(buf, 1, o, out);
}

static int encode_and_print(const rc_tokenizer *tok, const tokenize_options *opt,
                            const char *const *texts, const size_t *lens, size_t n,
                            encode_totals *totals) {
    rc_token_lists lists;
    double start = now_seconds();
    rc_status st = rc_tokenizer_encode_lists(tok, texts, lens, n, opt->add_special, opt->threads, &lists);
    totals->seconds += now_seconds() - start;
    if (st != RC_OK) {
        fprintf(stderr, "rewardc tokenize: %s\n", rc_last_error());
        return 1;
    }
    char buf[1 << 14];
    for (size_t i = 0; i < n; i++)
        print_ids(stdout, lists.ids + lists.offsets[i], lists.offsets[i + 1] - lists.offsets[i], buf, sizeof buf);
    totals->texts += n;
    totals->tokens += lists.offsets[n];
    rc_token_lists_free(&lists);
    return 0;
}

/* Reads one line of any length (fgets in pieces: a getc loop is slow);
 * returns 0 at end of input, -1 on error. */
static int read_line(FILE *in, char **line, size_t *cap, size_t *len) {
    size_t n = 0;
    for (;;) {
        if (*cap - n < 2) {
            size_t new_cap = *cap ? *cap * 2 : 1 << 16;
            char *grown = realloc(*line, new_cap);
            if (!grown) return -1;
            *line = grown;
            *cap = new_cap;
        }
        if (!fgets(*line + n, (int)(*cap - n > INT_MAX ? INT_MAX : *cap - n), in)) break;
        n += strlen(*line + n);
        if (n && (*line)[n - 1] == '\n') break;
    }
    if (n == 0) return ferror(in) ? -1 : 0;
    if ((*line)[n - 1] == '\n') n--;
    if (n && (*line)[n - 1] == '\r') n--; /* CRLF files */
    (*line)[n] = '\0';
    *len = n;
    return 1;
}

static int is_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

typedef struct {
    cJSON *docs[BLOCK_LINES];
    const char *texts[BLOCK_LINES];
    size_t lens[BLOCK_LINES];
    size_t n;
} line_block;

static void clear_block(line_block *block) {
    for (size_t i = 0; i < block->n; i++) cJSON_Delete(block->docs[i]);
    block->n = 0;
}

static int run_jsonl(const rc_tokenizer *tok, const tokenize_options *opt, encode_totals *totals) {
    const char *name = opt->input && strcmp(opt->input, "-") ? opt->input : "<stdin>";
    FILE *in = opt->input && strcmp(opt->input, "-") ? fopen(opt->input, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "rewardc tokenize: cannot open %s: %s\n", opt->input, strerror(errno));
        return 1;
    }
    line_block *block = calloc(1, sizeof *block);
    char *line = NULL;
    size_t cap = 0, len = 0, line_no = 0;
    int rc = block ? 0 : 1, got;
    while (rc == 0 && (got = read_line(in, &line, &cap, &len)) != 0) {
        if (got < 0) {
            fprintf(stderr, "rewardc tokenize: %s: read error after line %zu\n", name, line_no);
            rc = 1;
            break;
        }
        line_no++;
        if (is_blank(line, len)) continue;
        cJSON *doc = cJSON_ParseWithLength(line, len);
        const cJSON *value = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, opt->field) : NULL;
        if (!cJSON_IsString(value)) {
            if (!doc) fprintf(stderr, "rewardc tokenize: %s:%zu: not valid JSON\n", name, line_no);
            else if (!cJSON_IsObject(doc)) fprintf(stderr, "rewardc tokenize: %s:%zu: not a JSON object\n", name, line_no);
            else if (!value) fprintf(stderr, "rewardc tokenize: %s:%zu: no field \"%s\"\n", name, line_no, opt->field);
            else fprintf(stderr, "rewardc tokenize: %s:%zu: field \"%s\" is not a string\n", name, line_no, opt->field);
            cJSON_Delete(doc);
            rc = 1;
            break;
        }
        block->docs[block->n] = doc;
        block->texts[block->n] = value->valuestring;
        block->lens[block->n] = strlen(value->valuestring);
        if (++block->n == BLOCK_LINES) {
            rc = encode_and_print(tok, opt, block->texts, block->lens, block->n, totals);
            clear_block(block);
        }
    }
    if (rc == 0 && block->n) rc = encode_and_print(tok, opt, block->texts, block->lens, block->n, totals);
    if (block) clear_block(block);
    free(block);
    free(line);
    if (in != stdin) fclose(in);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tokenize_options opt = {NULL, NULL, "text", NULL, 1, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int got;
        if (arg_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (arg_is(argv[i], "--no_special")) opt.add_special = 0;
        else if (arg_is(argv[i], "--time")) opt.report_time = 1;
        else if ((got = arg_value(argc, argv, &i, "--tokenizer", &value)) != 0) {
            if (got < 0) return 2;
            opt.tokenizer_dir = value;
        } else if ((got = arg_value(argc, argv, &i, "--input", &value)) != 0) {
            if (got < 0) return 2;
            opt.input = value;
        } else if ((got = arg_value(argc, argv, &i, "--field", &value)) != 0) {
            if (got < 0) return 2;
            opt.field = value;
        } else if ((got = arg_value(argc, argv, &i, "--text", &value)) != 0) {
            if (got < 0) return 2;
            opt.text = value;
        } else if ((got = arg_value(argc, argv, &i, "--threads", &value)) != 0) {
            long threads;
            if (got < 0 || !parse_long("tokenize", "--threads", value, 0, 1024, &threads)) return 2;
            opt.threads = (int)threads;
        } else {
            fprintf(stderr, "rewardc tokenize: unknown option '%s'\n\n%s", argv[i], usage_text);
            return 2;
        }
    }
    if (!opt.tokenizer_dir) {
        fprintf(stderr, "rewardc tokenize: --tokenizer DIR is required\n\n%s", usage_text);
        return 2;
    }
    if (opt.text && opt.input) {
        fprintf(stderr, "rewardc tokenize: give --text or --input, not both\n");
        return 2;
    }
    rc_tokenizer *tok;
    if (rc_tokenizer_load(opt.tokenizer_dir, &tok) != RC_OK) {
        fprintf(stderr, "rewardc tokenize: %s\n", rc_last_error());
        return 1;
    }
    encode_totals totals = {0, 0, 0.0};
    int rc;
    if (opt.text) {
        const char *texts[1] = {opt.text};
        size_t lens[1] = {strlen(opt.text)};
        rc = encode_and_print(tok, &opt, texts, lens, 1, &totals);
    } else {
        rc = run_jsonl(tok, &opt, &totals);
    }
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "rewardc tokenize: cannot write the output: %s\n", strerror(errno));
        rc = 1;
    }
    if (opt.report_time)
        fprintf(stderr, "rewardc tokenize: %zu texts, %zu tokens, %.6f s encoding, %.0f tokens/s\n",
                totals.texts, totals.tokens, totals.seconds,
                totals.seconds > 0 ? (double)totals.tokens / totals.seconds : 0.0);
    rc_tokenizer_free(tok);
    return rc;
}
