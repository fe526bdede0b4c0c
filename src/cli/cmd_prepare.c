/* rewardc prepare: turns labelled texts, rankings or preference JSONL into
 * the normalised chosen/rejected pairs JSONL, with a report of what was read,
 * written and dropped (and why). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewardc/data.h"

static const char usage_text[] =
    "usage: rewardc prepare --from SOURCE [source options] --output FILE [options]\n"
    "\n"
    "Turns preference data into pairs JSONL, one object per line:\n"
    "  {\"prompt\": \"...\", \"chosen\": \"...\", \"rejected\": \"...\"}\n"
    "plus \"margin\" and \"weight\" when the source gives them (prompt is \"\" when the\n"
    "responses carry the whole text). train, eval and score read this format.\n"
    "\n"
    "sources:\n"
    "  --from imdb --dir DIR\n"
    "      an aclImdb split folder (DIR/pos, DIR/neg of ID_RATING.txt files). Negative\n"
    "      reviews become rejected; positive reviews, shuffled with --seed, become\n"
    "      chosen, joined one to one; the larger class's remainder is unpaired.\n"
    "  --from labeled --input FILE [--text_field text] [--label_field label]\n"
    "      JSONL of single texts, {\"text\": \"...\", \"label\": 1}; labels are 0/1 or\n"
    "      false/true (1 = good). Paired as for imdb.\n"
    "  --from rankings --input FILE [--aggregate mean|per-labeler]\n"
    "                  [--margin_from_rank_gap] [--margin_scale S] [--weight_per_prompt]\n"
    "      JSONL, one prompt per line with K responses and one ranking per labeler:\n"
    "        {\"prompt\": \"Q\", \"responses\": [\"a\", \"b\", \"c\"],\n"
    "         \"rankings\": [[1, 3, 2], [2, 1, 3]]}\n"
    "      rankings[l][i] is the rank labeler l gave responses[i], 1 = best; each\n"
    "      ranking is a permutation of 1..K. A prompt gives its C(K,2) pairs.\n"
    "      mean (default): rank responses by their mean rank over labelers; pairs\n"
    "      with equal mean rank are ties, dropped and counted. per-labeler: every\n"
    "      labeler's own pairs. --margin_from_rank_gap: margin = S * (rank of\n"
    "      rejected - rank of chosen), S = --margin_scale (default 1).\n"
    "      --weight_per_prompt: weight = 1/C(K,2) (per-labeler: 1/(L*C(K,2))) so each\n"
    "      prompt counts equally, as in InstructGPT. A prompt with one response is\n"
    "      dropped (single_response). Errors: empty responses, a ranking whose length\n"
    "      is not K, a duplicate, missing or out-of-range rank.\n"
    "  --from preferences --input FILE [--extract_prompt] [--prompt_marker S]\n"
    "                     [--dialogue_messages]\n"
    "      TRL-style preference JSONL: {\"chosen\", \"rejected\"} (implicit prompt, e.g.\n"
    "      HH-RLHF dialogues) or {\"prompt\", \"chosen\", \"rejected\"}, each with an\n"
    "      optional numeric \"margin\" and \"weight\" (so prepared pairs read back).\n"
    "      --extract_prompt moves the shared beginning of an implicit pair into\n"
    "      the prompt, cut just after the last S inside it (default S is\n"
    "      \"\\n\\nAssistant:\"; --prompt_marker '' cuts at the last shared space);\n"
    "      prompt + response stays the same text. Then truncation can keep the\n"
    "      final turn. S understands \\n, \\t and \\\\.\n"
    "      Conversational records, each field a list of {\"role\", \"content\"}\n"
    "      messages (TRL's format), stay message lists: the model's chat template\n"
    "      renders them when train/eval encode. --extract_prompt then moves their\n"
    "      shared leading messages into the prompt.\n"
    "      --dialogue_messages turns \"\\n\\nHuman: ... \\n\\nAssistant: ...\" dialogues\n"
    "      (HH-RLHF) into user/assistant message lists, one message per turn.\n"
    "\n"
    "Any input FILE ending in .gz is read through `gzip -dc`. Blank lines are skipped.\n"
    "\n"
    "options:\n"
    "  --output FILE     where the pairs go (written atomically; required)\n"
    "  --max_pairs N     keep at most N pairs (imdb/labeled: a --seed'ed random subset\n"
    "                    of the negatives; otherwise the first N); the rest are counted\n"
    "  --seed N          shuffle seed for imdb/labeled (default 42)\n"
    "  --skip_bad        skip and count malformed records instead of failing. By default\n"
    "                    the first bad record (malformed JSON, a missing field, a wrong\n"
    "                    type or value) stops the run with FILE:LINE and nothing is written\n"
    "  --report FILE     also write the report as JSON\n"
    "  --labeled_output FILE  imdb/labeled: also write every input text as a single\n"
    "                    {\"text\", \"label\"} line (what `rewardc eval --labeled` reads)\n"
    "  --quiet           no report on stderr\n"
    "\n"
    "The report (stderr, and --report) counts records read, pairs written and drops\n"
    "per reason: bad_json, missing_field, wrong_type, invalid_value (skipped lines or\n"
    "files), tie, identical (chosen == rejected), single_response, unpaired (texts),\n"
    "over_max_pairs, ignored_file (imdb: a file not named ID_RATING.txt).\n";

typedef struct {
    const char *from, *dir, *input, *output, *report_path, *labeled_output;
    const char *text_field, *label_field, *aggregate, *prompt_marker;
    rc_read_options read;
    rc_ranking_options ranking;
    int extract_prompt, dialogue_messages, quiet;
    int ranking_flags_used, preference_flags_used, labeled_flags_used;
} prepare_args;

/* Decodes \n, \t and \\ so a marker with newlines fits on a command line. */
static char *unescape(const char *text) {
    char *out = malloc(strlen(text) + 1);
    if (!out) return NULL;
    size_t at = 0;
    for (const char *p = text; *p; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == '\\')) {
            out[at++] = p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : '\\';
            p++;
        } else {
            out[at++] = *p;
        }
    }
    out[at] = '\0';
    return out;
}

/* Returns -1 to continue, otherwise the exit code (0 for --help, 2 for usage errors). */
static int parse_args(int argc, char **argv, prepare_args *args) {
    memset(args, 0, sizeof *args);
    args->text_field = "text";
    args->label_field = "label";
    args->prompt_marker = "\\n\\nAssistant:";
    args->read.seed = 42;
    args->ranking.aggregation = RC_RANK_MEAN;
    args->ranking.margin_scale = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int got;
        if (arg_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
#define VALUE_FLAG(name, target)                                   \
    if ((got = arg_value(argc, argv, &i, name, &value)) != 0) {    \
        if (got < 0) return 2;                                     \
        target = value;                                            \
        continue;                                                  \
    }
        VALUE_FLAG("--from", args->from)
        VALUE_FLAG("--dir", args->dir)
        VALUE_FLAG("--input", args->input)
        VALUE_FLAG("--output", args->output)
        VALUE_FLAG("--report", args->report_path)
        VALUE_FLAG("--labeled_output", args->labeled_output)
        if ((got = arg_value(argc, argv, &i, "--text_field", &value)) != 0) {
            if (got < 0) return 2;
            args->text_field = value;
            args->labeled_flags_used = 1;
            continue;
        }
        if ((got = arg_value(argc, argv, &i, "--label_field", &value)) != 0) {
            if (got < 0) return 2;
            args->label_field = value;
            args->labeled_flags_used = 1;
            continue;
        }
        if ((got = arg_value(argc, argv, &i, "--aggregate", &value)) != 0) {
            if (got < 0) return 2;
            args->aggregate = value;
            args->ranking_flags_used = 1;
            continue;
        }
        if ((got = arg_value(argc, argv, &i, "--prompt_marker", &value)) != 0) {
            if (got < 0) return 2;
            args->prompt_marker = value;
            args->preference_flags_used = 1;
            continue;
        }
#undef VALUE_FLAG
        if ((got = arg_value(argc, argv, &i, "--max_pairs", &value)) != 0) {
            long n;
            if (got < 0 || !parse_long("prepare", "--max_pairs", value, 1, 2000000000L, &n))
                return 2;
            args->read.max_pairs = (size_t)n;
            continue;
        }
        if ((got = arg_value(argc, argv, &i, "--seed", &value)) != 0) {
            long seed;
            if (got < 0 || !parse_long("prepare", "--seed", value, 0, 2147483647L, &seed)) return 2;
            args->read.seed = (uint64_t)seed;
            continue;
        }
        if ((got = arg_value(argc, argv, &i, "--margin_scale", &value)) != 0) {
            if (got < 0 || !parse_double("prepare", "--margin_scale", value,
                                         &args->ranking.margin_scale))
                return 2;
            args->ranking_flags_used = 1;
            continue;
        }
        if (arg_is(argv[i], "--skip_bad")) args->read.skip_bad = 1;
        else if (arg_is(argv[i], "--quiet")) args->quiet = 1;
        else if (arg_is(argv[i], "--margin_from_rank_gap"))
            args->ranking.margin_from_rank_gap = args->ranking_flags_used = 1;
        else if (arg_is(argv[i], "--weight_per_prompt"))
            args->ranking.weight_per_prompt = args->ranking_flags_used = 1;
        else if (arg_is(argv[i], "--extract_prompt"))
            args->extract_prompt = args->preference_flags_used = 1;
        else if (arg_is(argv[i], "--dialogue_messages"))
            args->dialogue_messages = args->preference_flags_used = 1;
        else {
            fprintf(stderr, "rewardc prepare: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    return -1;
}

static int usage_error(const char *message) {
    fprintf(stderr, "rewardc prepare: %s (see --help)\n", message);
    return 2;
}

/* Checks that the options fit the source; returns -1 if they do. */
static int check_args(prepare_args *args) {
    if (!args->from) return usage_error("--from is required (imdb, labeled, rankings, preferences)");
    if (!args->output) return usage_error("--output is required");
    int imdb = !strcmp(args->from, "imdb"), labeled = !strcmp(args->from, "labeled");
    int rankings = !strcmp(args->from, "rankings"), preferences = !strcmp(args->from, "preferences");
    if (!imdb && !labeled && !rankings && !preferences)
        return usage_error("--from must be imdb, labeled, rankings or preferences");
    if (imdb && !args->dir) return usage_error("--from imdb needs --dir");
    if (imdb && args->input) return usage_error("--from imdb reads --dir, not --input");
    if (!imdb && !args->input) return usage_error("this source needs --input");
    if (!imdb && args->dir) return usage_error("--dir is for --from imdb");
    if (args->labeled_output && !imdb && !labeled)
        return usage_error("--labeled_output is for --from imdb and --from labeled");
    if (args->labeled_flags_used && !labeled)
        return usage_error("--text_field/--label_field are for --from labeled");
    if (args->ranking_flags_used && !rankings)
        return usage_error("--aggregate, --margin_* and --weight_per_prompt are for --from rankings");
    if (args->preference_flags_used && !preferences)
        return usage_error("--extract_prompt/--prompt_marker/--dialogue_messages are for --from preferences");
    if (args->aggregate) {
        if (!strcmp(args->aggregate, "mean")) args->ranking.aggregation = RC_RANK_MEAN;
        else if (!strcmp(args->aggregate, "per-labeler"))
            args->ranking.aggregation = RC_RANK_PER_LABELER;
        else return usage_error("--aggregate must be mean or per-labeler");
    }
    return -1;
}

static rc_status read_pairs(const prepare_args *args, rc_pair_list *pairs,
                            rc_prepare_report *report) {
    if (!strcmp(args->from, "imdb") || !strcmp(args->from, "labeled")) {
        rc_labeled_texts texts = {0};
        rc_status st = !strcmp(args->from, "imdb")
                           ? rc_imdb_read_dir(args->dir, &args->read, &texts, report)
                           : rc_labeled_read_jsonl(args->input, args->text_field,
                                                   args->label_field, &args->read, &texts, report);
        if (st == RC_OK && args->labeled_output) st = rc_labeled_write_jsonl(args->labeled_output, &texts);
        if (st == RC_OK) st = rc_pairs_from_labeled(&texts, &args->read, pairs, report);
        rc_labeled_texts_free(&texts);
        return st;
    }
    if (!strcmp(args->from, "rankings"))
        return rc_pairs_read_rankings(args->input, &args->read, &args->ranking, pairs, report);
    char *marker = unescape(args->prompt_marker);
    if (!marker) return rc_fail(RC_ERR_OOM, "cannot copy --prompt_marker");
    rc_preference_options preference = {args->extract_prompt, marker, args->dialogue_messages};
    rc_status st = rc_pairs_read_preferences(args->input, &args->read, &preference, pairs, report);
    free(marker);
    return st;
}

static void print_drops(const rc_prepare_report *report) {
    int any = 0;
    for (int r = 0; r < RC_DROP_REASON_COUNT; r++) {
        if (!report->dropped[r]) continue;
        fprintf(stderr, "%s %s %zu", any ? "," : "  dropped:", rc_drop_reason_name((rc_drop_reason)r),
                report->dropped[r]);
        any = 1;
    }
    if (any) fputc('\n', stderr);
    if (report->first_bad[0]) fprintf(stderr, "  first skipped record: %s\n", report->first_bad);
}

static void print_report(const prepare_args *args, const rc_prepare_report *report) {
    fprintf(stderr, "prepare (%s): read %zu records, wrote %zu pairs to %s\n", report->source,
            report->records_read, report->pairs_written, args->output);
    print_drops(report);
}

int cmd_prepare(int argc, char **argv) {
    prepare_args args;
    int code = parse_args(argc, argv, &args);
    if (code >= 0) return code;
    code = check_args(&args);
    if (code >= 0) return code;

    rc_prepare_report report;
    rc_prepare_report_init(&report, args.from);
    rc_pair_list pairs = {0};
    rc_status st = read_pairs(&args, &pairs, &report);
    if (st == RC_OK && pairs.n == 0) {
        /* say why: the drop counts are the whole story of an empty result */
        if (args.report_path && rc_prepare_report_write(args.report_path, &report) != RC_OK)
            fprintf(stderr, "rewardc prepare: %s\n", rc_last_error());
        print_drops(&report);
        st = rc_fail(RC_ERR_FORMAT, "no pairs came out of the input (records read: %zu)",
                     report.records_read);
    }
    if (st == RC_OK) st = rc_pairs_write_jsonl(args.output, &pairs);
    if (st == RC_OK) report.pairs_written = pairs.n;
    if (st == RC_OK && args.report_path) st = rc_prepare_report_write(args.report_path, &report);
    rc_pair_list_free(&pairs);
    if (st != RC_OK) {
        fprintf(stderr, "rewardc prepare: %s\n", rc_last_error());
        return 1;
    }
    if (!args.quiet) print_report(&args, &report);
    return 0;
}
