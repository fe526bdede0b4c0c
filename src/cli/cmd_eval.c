/* rewardc eval: how good is a reward model, and where should its gate sit?
 * On chosen/rejected pairs: pairwise accuracy with ties apart, margin, loss,
 * reward statistics and the length-bias checks (accuracy per length bucket,
 * correlation of reward with length). On labelled single responses: ROC AUC,
 * the precision-recall curve and a threshold chosen for a target precision or
 * recall, stored in the model folder for `rewardc score`. Every output (JSON
 * summary, SVG figure, per-item rewards, the model's threshold) is written
 * only once everything has been computed, so a failure leaves no trace. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "rewardc/eval.h"
#include "rewardc/io.h"
#include "rewardc/threads.h"
#include "rewardc/workflow.h"

#define MAX_LENGTH_EDGES 32

static void usage(FILE *out) {
    fprintf(out,
            "usage: rewardc eval --model DIR (--pairs FILE | --labeled FILE) [options]\n\n"
            "Scores a data set with a reward model and reports how well it ranks or separates it.\n"
            "  --pairs FILE      preference JSONL, {\"chosen\",\"rejected\"} or {\"prompt\",\"chosen\",\n"
            "                    \"rejected\"} (+ optional \"margin\"): pairwise accuracy (ties apart),\n"
            "                    mean margin, loss, reward statistics, accuracy per length bucket and\n"
            "                    the correlation of reward with length (tokens of prompt+response)\n"
            "  --labeled FILE    JSONL of single responses with a 0/1 label (1 = acceptable): ROC AUC,\n"
            "                    average precision, the precision-recall curve\n"
            "  --text_field F    field holding the text with --labeled (text)\n"
            "  --label_field F   field holding the label with --labeled (label)\n"
            "  --target_precision P  choose the lowest threshold whose precision is >= P and store\n"
            "                    it in the model folder (config.json \"rewardc\"); on --pairs the\n"
            "                    chosen responses count as acceptable and the rejected as not\n"
            "  --target_recall R the highest threshold whose recall is >= R, stored likewise\n"
            "  --threshold T     report acceptance at T and draw it (default: the folder's threshold)\n"
            "  --summary FILE    JSON summary\n"
            "  --figure FILE     SVG: the two reward distributions, with the threshold\n"
            "  --rewards FILE    JSONL, one line per pair or text: rewards and token counts\n"
            "  --length_buckets E1,E2,...  token-count bucket edges (max_length/8,/4,/2)\n"
            "  --extract_prompt  with --pairs: move the shared beginning of implicit-prompt pairs into\n"
            "                    the prompt, so truncation cuts the prompt, not the responses' ends\n"
            "  --prompt_marker M with --extract_prompt: cut after the last M (e.g. \"\\n\\nAssistant:\")\n"
            "  --max_pairs N     evaluate only the first N pairs (or labelled texts)\n"
            "  --batch_size N    sequences per forward pass (16)\n"
            "  --backend NAME    cpu | opencl | cuda (cpu);  --device N (0);  --threads N (all)\n\n"
            "Sequences longer than the model's max_length are truncated as in training and counted.\n"
            "Exit codes: 0 done, 1 failure (nothing written), 2 usage error.\n");
}

/* ---- options ----------------------------------------------------------------- */

typedef struct {
    const char *model, *pairs, *labeled, *text_field, *label_field;
    const char *summary, *figure, *rewards, *prompt_marker, *backend;
    int has_threshold;
    double threshold;
    int has_target_precision, has_target_recall;
    double target;
    int has_edges;
    double edges[MAX_LENGTH_EDGES];
    size_t n_edges;
    int extract_prompt;
    long batch, device, threads, max_items;
} eval_options;

/* "64,128,256": strictly increasing positive whole token counts. */
static int parse_edges(const char *text, eval_options *o) {
    const char *p = text;
    int ok = *p != '\0';
    o->n_edges = 0;
    while (ok) {
        char *end = NULL;
        double v = strtod(p, &end);
        ok = end != p && isfinite(v) && v >= 1 && v == floor(v) && (*end == ',' || *end == '\0') &&
             o->n_edges < MAX_LENGTH_EDGES && (o->n_edges == 0 || v > o->edges[o->n_edges - 1]);
        if (ok) o->edges[o->n_edges++] = v;
        if (!ok || *end == '\0') break;
        p = end + 1; /* past the comma; a trailing comma fails on the next round */
    }
    if (!ok) {
        fprintf(stderr,
                "rewardc eval: --length_buckets: '%s' is not a list of at most %d increasing "
                "whole token counts (>= 1) separated by commas\n",
                text, MAX_LENGTH_EDGES);
        return 0;
    }
    o->has_edges = 1;
    return 1;
}

static int parse_fraction(const char *name, const char *text, double *out) {
    if (!parse_double("eval", name, text, out)) return 0;
    if (!(*out > 0.0 && *out <= 1.0)) {
        fprintf(stderr, "rewardc eval: %s: %s is not in (0, 1]\n", name, text);
        return 0;
    }
    return 1;
}

/* Returns 1 to go on, 0 after --help, -1 on a usage error (already printed). */
static int parse_options(int argc, char **argv, eval_options *o) {
    const char *threshold = NULL, *precision = NULL, *recall = NULL, *edges = NULL;
    const char *batch = "16", *device = "0", *threads = "0", *max_items = "0";
    memset(o, 0, sizeof *o);
    o->text_field = "text";
    o->label_field = "label";
    o->backend = "cpu";
    int text_field_given = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (arg_is(argv[i], "--extract_prompt")) {
            o->extract_prompt = 1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--model", &o->model)) ||
            (r = arg_value(argc, argv, &i, "--pairs", &o->pairs)) ||
            (r = arg_value(argc, argv, &i, "--labeled", &o->labeled)) ||
            (r = arg_value(argc, argv, &i, "--summary", &o->summary)) ||
            (r = arg_value(argc, argv, &i, "--figure", &o->figure)) ||
            (r = arg_value(argc, argv, &i, "--rewards", &o->rewards)) ||
            (r = arg_value(argc, argv, &i, "--prompt_marker", &o->prompt_marker)) ||
            (r = arg_value(argc, argv, &i, "--backend", &o->backend)) ||
            (r = arg_value(argc, argv, &i, "--threshold", &threshold)) ||
            (r = arg_value(argc, argv, &i, "--target_precision", &precision)) ||
            (r = arg_value(argc, argv, &i, "--target_recall", &recall)) ||
            (r = arg_value(argc, argv, &i, "--length_buckets", &edges)) ||
            (r = arg_value(argc, argv, &i, "--batch_size", &batch)) ||
            (r = arg_value(argc, argv, &i, "--device", &device)) ||
            (r = arg_value(argc, argv, &i, "--threads", &threads)) ||
            (r = arg_value(argc, argv, &i, "--max_pairs", &max_items))) {
            if (r < 0) return -1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--text_field", &o->text_field)) ||
            (r = arg_value(argc, argv, &i, "--label_field", &o->label_field))) {
            if (r < 0) return -1;
            text_field_given = 1;
            continue;
        }
        fprintf(stderr, "rewardc eval: unknown option '%s' (see rewardc eval --help)\n", argv[i]);
        return -1;
    }
    const char *problem = NULL;
    if (!o->model) problem = "--model is required";
    else if (!o->pairs == !o->labeled) problem = "give exactly one of --pairs and --labeled";
    else if (precision && recall) problem = "give --target_precision or --target_recall, not both";
    else if ((precision || recall) && threshold)
        problem = "--threshold and a target both set the threshold: give one";
    else if (text_field_given && !o->labeled) problem = "--text_field and --label_field go with --labeled";
    else if ((o->extract_prompt || o->prompt_marker) && !o->pairs)
        problem = "--extract_prompt and --prompt_marker go with --pairs";
    else if (o->prompt_marker && !o->extract_prompt) problem = "--prompt_marker needs --extract_prompt";
    if (problem) {
        fprintf(stderr, "rewardc eval: %s\n", problem);
        return -1;
    }
    if (!parse_long("eval", "--batch_size", batch, 1, 1024, &o->batch) ||
        !parse_long("eval", "--device", device, 0, 1024, &o->device) ||
        !parse_long("eval", "--threads", threads, 0, 4096, &o->threads) ||
        !parse_long("eval", "--max_pairs", max_items, 0, 1L << 40, &o->max_items) ||
        (threshold && !parse_double("eval", "--threshold", threshold, &o->threshold)) ||
        (precision && !parse_fraction("--target_precision", precision, &o->target)) ||
        (recall && !parse_fraction("--target_recall", recall, &o->target)) ||
        (edges && !parse_edges(edges, o)))
        return -1;
    o->has_threshold = threshold != NULL;
    o->has_target_precision = precision != NULL;
    o->has_target_recall = recall != NULL;
    return 1;
}

/* ---- scoring ------------------------------------------------------------------- */

/* The sequences [*lo, *hi) of n that `rank` scores in a data-parallel job:
 * whole neighbour pairs (a pair's chosen and rejected can share a row). */
static void rank_block(size_t n, int rank, size_t *lo, size_t *hi) {
    size_t units_lo, units_hi;
    rc_dist_shard((n + 1) / 2, rank, rc_dist_size(), &units_lo, &units_hi);
    *lo = 2 * units_lo < n ? 2 * units_lo : n;
    *hi = 2 * units_hi < n ? 2 * units_hi : n;
}

/* Every rank's rewards to every rank, in input order. */
static rc_status gather_rewards(size_t n, float *rewards) {
    if (rc_dist_size() == 1) return RC_OK;
    int *counts = malloc((size_t)rc_dist_size() * sizeof *counts);
    if (!counts) return rc_fail(RC_ERR_OOM, "cannot allocate gather counts");
    for (int r = 0; r < rc_dist_size(); r++) {
        size_t lo, hi;
        rank_block(n, r, &lo, &hi);
        counts[r] = (int)(hi - lo);
    }
    rc_status st = rc_dist_allgather_f32(rewards, counts);
    free(counts);
    return st;
}

/* Scores n sequences, in slices so that a long run shows progress on a
 * terminal; under mpirun each rank scores its block and all gather them. */
static rc_status score_sequences(rc_reward_model *rm, int32_t *const *seqs, const size_t *lens,
                                 size_t n, float *rewards) {
    int show = isatty(STDERR_FILENO) && rc_dist_rank() == 0;
    size_t slice = (size_t)rm->batch_rows * 8, first, end;
    rank_block(n, rc_dist_rank(), &first, &end);
    for (size_t start = first; start < end; start += slice) {
        size_t count = end - start < slice ? end - start : slice;
        rc_status st = rc_reward_model_score(rm, (const int32_t *const *)(seqs + start),
                                             lens + start, count, rewards + start);
        if (st != RC_OK) return st;
        if (show) fprintf(stderr, "\rrewardc eval: scored %zu/%zu sequences", start + count, end);
    }
    if (show && n) fprintf(stderr, "\n");
    return gather_rewards(n, rewards);
}

static cJSON *number_or_null(int defined, double value) {
    return defined && isfinite(value) ? cJSON_CreateNumber(value) : cJSON_CreateNull();
}

static void add_mean_std(cJSON *parent, const char *name, double mean, double std) {
    cJSON *obj = cJSON_AddObjectToObject(parent, name);
    cJSON_AddNumberToObject(obj, "mean", mean);
    cJSON_AddNumberToObject(obj, "std", std);
}

static void add_truncation(cJSON *summary, const rc_encode_counts *c, size_t max_length) {
    cJSON *t = cJSON_AddObjectToObject(summary, "truncation");
    cJSON_AddNumberToObject(t, "max_length", (double)max_length);
    cJSON_AddNumberToObject(t, "sequences", (double)c->sequences);
    cJSON_AddNumberToObject(t, "prompt_truncated", (double)c->prompt_truncated);
    cJSON_AddNumberToObject(t, "response_truncated", (double)c->response_truncated);
    cJSON_AddNumberToObject(t, "pairs_dropped", (double)c->pairs_dropped);
    /* known before truncation only for pairs (rc_encode_pairs measures it) */
    if (c->longest) cJSON_AddNumberToObject(t, "longest_tokens", (double)c->longest);
}

static void print_truncation(const rc_encode_counts *c, size_t max_length) {
    size_t cut = c->prompt_truncated + c->response_truncated;
    printf("truncation: %zu of %zu sequences cut to max_length %zu (%zu prompt, %zu response)",
           cut, c->sequences, max_length, c->prompt_truncated, c->response_truncated);
    if (c->longest) printf("; longest %zu tokens", c->longest);
    if (c->pairs_dropped) printf("; %zu pairs dropped (overflow: drop)", c->pairs_dropped);
    printf("\n");
}

/* mean and population std of a float array (n > 0) */
static void mean_std(const float *v, size_t n, double *mean, double *std) {
    double sum = 0.0, squares = 0.0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    *mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) squares += (v[i] - *mean) * (v[i] - *mean);
    *std = sqrt(squares / (double)n);
}

/* ---- outputs --------------------------------------------------------------------- */

/* The files an evaluation writes, staged as temporary files until commit. */
typedef struct {
    rc_atomic_file *files[3];
    int n;
} staged_outputs;

static rc_status stage_text(staged_outputs *out, const char *path, const char *text, size_t len) {
    rc_atomic_file *file = NULL;
    rc_status st = rc_atomic_open(path, &file);
    if (st != RC_OK) return st;
    out->files[out->n++] = file;
    if (fwrite(text, 1, len, rc_atomic_stream(file)) != len)
        return rc_fail(RC_ERR_IO, "cannot write %s", rc_atomic_temp_path(file));
    return RC_OK;
}

static rc_status stage_json(staged_outputs *out, const char *path, const cJSON *json) {
    char *text = cJSON_Print(json);
    if (!text) return rc_fail(RC_ERR_OOM, "cannot render the JSON summary");
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (!with_newline) {
        free(text);
        return rc_fail(RC_ERR_OOM, "cannot render the JSON summary");
    }
    memcpy(with_newline + len, "\n", 2);
    rc_status st = stage_text(out, path, with_newline, len + 1);
    free(with_newline);
    return st;
}

static rc_status stage_figure(staged_outputs *out, const char *path, const rc_histogram_figure *fig) {
    char *svg = NULL;
    size_t len = 0;
    rc_status st = rc_svg_histograms_render(fig, &svg, &len);
    if (st == RC_OK) st = stage_text(out, path, svg, len);
    free(svg);
    return st;
}

static rc_status commit_outputs(staged_outputs *out) {
    rc_status st = RC_OK;
    for (int i = 0; i < out->n; i++) {
        if (st == RC_OK) st = rc_atomic_commit(out->files[i]);
        else rc_atomic_abort(out->files[i]);
    }
    out->n = 0;
    return st;
}

static void abort_outputs(staged_outputs *out) {
    for (int i = 0; i < out->n; i++) rc_atomic_abort(out->files[i]);
    out->n = 0;
}

/* Where the reported threshold comes from: the command line, or the folder. */
static int pick_threshold(const eval_options *o, const rc_reward_meta *meta, double *value,
                          const char **source) {
    if (o->has_threshold) {
        *value = o->threshold;
        *source = "--threshold";
        return 1;
    }
    if (meta->has_threshold) {
        *value = meta->threshold;
        *source = "model folder";
        return 1;
    }
    return 0;
}

/* Reloads rather than reuses the open model's settings, so only the threshold changes. */
static rc_status save_threshold(const char *model_dir, double threshold) {
    if (rc_dist_rank() != 0) return RC_OK; /* one writer under mpirun */
    rc_reward_meta meta;
    rc_status st = rc_reward_meta_load(model_dir, &meta);
    if (st != RC_OK) return st;
    meta.has_threshold = 1;
    meta.threshold = threshold;
    return rc_reward_meta_save(model_dir, &meta);
}

/* ---- pairs ----------------------------------------------------------------------- */

typedef struct {
    rc_encode_counts counts;
    size_t n;
    float *chosen, *rejected, *margin; /* margin NULL when no pair gives one */
    double *pair_tokens;               /* the longer sequence of each pair */
    rc_pairwise_stats stats;
    rc_length_bucket buckets[MAX_LENGTH_EDGES + 1];
    size_t n_buckets;
    double reward_length_r, margin_length_r;
    int has_reward_length_r, has_margin_length_r;
    size_t chosen_longer, rejected_longer, same_length, model_prefers_longer;
    int has_threshold;
    double threshold;
    size_t chosen_accepted, rejected_accepted;
} pair_results;

static void pair_results_free(pair_results *r) {
    free(r->chosen);
    free(r->rejected);
    free(r->margin);
    free(r->pair_tokens);
}

static void default_edges(eval_options *o, size_t max_length) {
    o->n_edges = 0;
    for (int shift = 3; shift >= 1; shift--) {
        double edge = (double)(max_length >> shift);
        if (edge >= 1 && (o->n_edges == 0 || edge > o->edges[o->n_edges - 1]))
            o->edges[o->n_edges++] = edge;
    }
}

/* Reads, encodes and scores the pairs and computes every pairwise metric. */
static rc_status evaluate_pairs(const eval_options *o, rc_reward_model *rm, rc_pair_list *pairs,
                                rc_encoded_pairs *enc, pair_results *r) {
    rc_read_options read = {0};
    read.max_pairs = (size_t)o->max_items;
    rc_preference_options pref = {o->extract_prompt, o->prompt_marker, 0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "preferences");
    rc_status st = rc_pairs_read_preferences(o->pairs, &read, &pref, pairs, &report);
    if (st != RC_OK) return st;
    st = rc_encode_pairs_for_model(rm->tokenizer, o->model, &rm->meta.policy, pairs, enc, &r->counts);
    if (st != RC_OK) return st;
    if (enc->n == 0)
        return rc_fail(RC_ERR_FORMAT, "%s: no pairs to evaluate (%zu read, %zu dropped as too long)",
                       o->pairs, pairs->n, r->counts.pairs_dropped);
    size_t n = r->n = enc->n;
    /* one scoring pass over the 2n sequences, chosen and rejected side by side */
    int32_t **seqs = malloc(2 * n * sizeof *seqs);
    size_t *lens = malloc(2 * n * sizeof *lens);
    float *rewards = malloc(2 * n * sizeof *rewards);
    r->chosen = malloc(n * sizeof *r->chosen);
    r->rejected = malloc(n * sizeof *r->rejected);
    r->pair_tokens = malloc(n * sizeof *r->pair_tokens);
    double *all_tokens = malloc(2 * n * sizeof *all_tokens);
    double *token_difference = malloc(n * sizeof *token_difference);
    float *reward_difference = malloc(n * sizeof *reward_difference);
    if (!seqs || !lens || !rewards || !r->chosen || !r->rejected || !r->pair_tokens ||
        !all_tokens || !token_difference || !reward_difference)
        st = rc_fail(RC_ERR_OOM, "cannot hold rewards for %zu pairs", n);
    int any_margin = 0;
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        /* adjacent, so that both land in one scoring slice and can share a row */
        seqs[2 * i] = enc->items[i].chosen;
        lens[2 * i] = enc->items[i].n_chosen;
        seqs[2 * i + 1] = enc->items[i].rejected;
        lens[2 * i + 1] = enc->items[i].n_rejected;
        any_margin |= pairs->items[enc->items[i].source].has_margin;
    }
    if (st == RC_OK) st = score_sequences(rm, seqs, lens, 2 * n, rewards);
    if (st == RC_OK && any_margin) {
        r->margin = malloc(n * sizeof *r->margin);
        if (!r->margin) st = rc_fail(RC_ERR_OOM, "cannot hold %zu margins", n);
        for (size_t i = 0; st == RC_OK && i < n; i++)
            r->margin[i] = (float)pairs->items[enc->items[i].source].margin;
    }
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        size_t lc = lens[2 * i], lr = lens[2 * i + 1];
        r->chosen[i] = rewards[2 * i];
        r->rejected[i] = rewards[2 * i + 1];
        r->pair_tokens[i] = (double)(lc > lr ? lc : lr);
        all_tokens[2 * i] = (double)lc;
        all_tokens[2 * i + 1] = (double)lr;
        token_difference[i] = (double)lc - (double)lr;
        reward_difference[i] = r->chosen[i] - r->rejected[i];
        if (lc == lr) {
            r->same_length++;
            continue;
        }
        if (lc > lr) r->chosen_longer++;
        else r->rejected_longer++;
        float longer = lc > lr ? r->chosen[i] : r->rejected[i];
        float shorter = lc > lr ? r->rejected[i] : r->chosen[i];
        r->model_prefers_longer += longer > shorter;
    }
    if (st == RC_OK) st = rc_pairwise_stats_compute(r->chosen, r->rejected, r->margin, n, &r->stats);
    if (st == RC_OK) {
        r->n_buckets = o->n_edges + 1;
        st = rc_accuracy_by_length(r->chosen, r->rejected, r->pair_tokens, n, o->edges, o->n_edges,
                                   r->buckets);
    }
    if (st == RC_OK) {
        r->has_reward_length_r =
            rc_reward_length_correlation(rewards, all_tokens, 2 * n, &r->reward_length_r) == RC_OK;
        r->has_margin_length_r = rc_reward_length_correlation(reward_difference, token_difference, n,
                                                              &r->margin_length_r) == RC_OK;
        rc_clear_error();
    }
    if (st == RC_OK && (o->has_target_precision || o->has_target_recall)) {
        /* the gate's threshold from the pairs: chosen acceptable, rejected not */
        int *labels = malloc(2 * n * sizeof *labels);
        if (!labels) st = rc_fail(RC_ERR_OOM, "cannot label %zu responses", 2 * n);
        for (size_t i = 0; labels && i < 2 * n; i++) labels[i] = i % 2 == 0; /* chosen at 2i */
        rc_threshold_choice at;
        if (st == RC_OK)
            st = o->has_target_precision
                     ? rc_threshold_for_precision(rewards, labels, 2 * n, o->target, &at)
                     : rc_threshold_for_recall(rewards, labels, 2 * n, o->target, &at);
        if (st == RC_OK) {
            r->has_threshold = 1;
            r->threshold = at.threshold;
        }
        free(labels);
    }
    if (st == RC_OK && r->has_threshold)
        for (size_t i = 0; i < n; i++) {
            r->chosen_accepted += r->chosen[i] >= r->threshold;
            r->rejected_accepted += r->rejected[i] >= r->threshold;
        }
    free(seqs);
    free(lens);
    free(rewards);
    free(all_tokens);
    free(token_difference);
    free(reward_difference);
    return st;
}

static double ratio(size_t a, size_t b) { return b ? (double)a / (double)b : NAN; }

static cJSON *pairs_summary(const eval_options *o, const rc_reward_model *rm, const pair_results *r,
                            const char *threshold_source) {
    const rc_pairwise_stats *s = &r->stats;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", "pairs");
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "data", o->pairs);
    cJSON_AddNumberToObject(j, "pairs", (double)s->n_pairs);
    cJSON_AddNumberToObject(j, "correct", (double)s->n_correct);
    cJSON_AddNumberToObject(j, "ties", (double)s->n_ties);
    cJSON_AddNumberToObject(j, "wrong", (double)s->n_wrong);
    cJSON_AddNumberToObject(j, "accuracy", s->accuracy);
    cJSON_AddNumberToObject(j, "tie_rate", s->tie_rate);
    cJSON_AddNumberToObject(j, "mean_margin", s->mean_margin);
    cJSON_AddNumberToObject(j, "loss", s->loss);
    cJSON_AddBoolToObject(j, "loss_uses_data_margins", r->margin != NULL);
    cJSON *rewards = cJSON_AddObjectToObject(j, "reward");
    add_mean_std(rewards, "chosen", s->chosen_mean, s->chosen_std);
    add_mean_std(rewards, "rejected", s->rejected_mean, s->rejected_std);
    add_truncation(j, &r->counts, rm->meta.policy.max_length);

    cJSON *bias = cJSON_AddObjectToObject(j, "length_bias");
    cJSON_AddStringToObject(bias, "length_unit", "tokens of prompt+response as scored");
    cJSON_AddItemToObject(bias, "reward_length_correlation",
                          number_or_null(r->has_reward_length_r, r->reward_length_r));
    cJSON_AddItemToObject(bias, "margin_length_difference_correlation",
                          number_or_null(r->has_margin_length_r, r->margin_length_r));
    cJSON_AddNumberToObject(bias, "chosen_longer", (double)r->chosen_longer);
    cJSON_AddNumberToObject(bias, "rejected_longer", (double)r->rejected_longer);
    cJSON_AddNumberToObject(bias, "same_length", (double)r->same_length);
    size_t differing = r->chosen_longer + r->rejected_longer;
    cJSON_AddItemToObject(bias, "model_prefers_longer_rate",
                          number_or_null(differing > 0, ratio(r->model_prefers_longer, differing)));
    cJSON_AddItemToObject(bias, "data_prefers_longer_rate",
                          number_or_null(differing > 0, ratio(r->chosen_longer, differing)));
    cJSON_AddStringToObject(bias, "bucket_length", "the longer sequence of each pair");
    cJSON *buckets = cJSON_AddArrayToObject(bias, "accuracy_by_length");
    for (size_t b = 0; b < r->n_buckets; b++) {
        const rc_length_bucket *k = &r->buckets[b];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToObject(item, "min_tokens", number_or_null(1, k->lower));
        cJSON_AddItemToObject(item, "below_tokens", number_or_null(1, k->upper));
        cJSON_AddNumberToObject(item, "pairs", (double)k->n_pairs);
        cJSON_AddNumberToObject(item, "correct", (double)k->n_correct);
        cJSON_AddNumberToObject(item, "ties", (double)k->n_ties);
        cJSON_AddItemToObject(item, "accuracy", number_or_null(k->n_pairs > 0, k->accuracy));
        cJSON_AddItemToArray(buckets, item);
    }
    if (r->has_threshold) {
        cJSON *t = cJSON_AddObjectToObject(j, "threshold");
        cJSON_AddNumberToObject(t, "value", r->threshold);
        cJSON_AddStringToObject(t, "source", threshold_source);
        cJSON_AddNumberToObject(t, "chosen_accepted_rate", ratio(r->chosen_accepted, r->n));
        cJSON_AddNumberToObject(t, "rejected_accepted_rate", ratio(r->rejected_accepted, r->n));
    }
    return j;
}

static void print_pairs(const rc_reward_model *rm, const pair_results *r) {
    const rc_pairwise_stats *s = &r->stats;
    printf("pairs: %zu\n", s->n_pairs);
    printf("pairwise accuracy: %.4f (%zu correct, %zu ties, %zu wrong)\n", s->accuracy,
           s->n_correct, s->n_ties, s->n_wrong);
    printf("mean margin: %.4f   loss: %.4f\n", s->mean_margin, s->loss);
    printf("reward: chosen %.4f +- %.4f, rejected %.4f +- %.4f\n", s->chosen_mean, s->chosen_std,
           s->rejected_mean, s->rejected_std);
    print_truncation(&r->counts, rm->meta.policy.max_length);
    if (r->has_reward_length_r) printf("correlation of reward with length: %.4f\n", r->reward_length_r);
    else printf("correlation of reward with length: undefined (constant reward or length)\n");
    size_t differing = r->chosen_longer + r->rejected_longer;
    if (differing)
        printf("pairs of unequal length: %zu; the model prefers the longer in %.1f%%, the data in "
               "%.1f%%\n",
               differing, 100.0 * ratio(r->model_prefers_longer, differing),
               100.0 * ratio(r->chosen_longer, differing));
    printf("accuracy by length (tokens of the longer sequence):\n");
    for (size_t b = 0; b < r->n_buckets; b++) {
        const rc_length_bucket *k = &r->buckets[b];
        char range[64];
        if (b == 0) snprintf(range, sizeof range, "< %g", k->upper);
        else if (b + 1 == r->n_buckets) snprintf(range, sizeof range, ">= %g", k->lower);
        else snprintf(range, sizeof range, "%g - %g", k->lower, k->upper - 1);
        if (k->n_pairs)
            printf("  %-14s %6zu pairs  accuracy %.4f\n", range, k->n_pairs, k->accuracy);
        else printf("  %-14s %6zu pairs\n", range, k->n_pairs);
    }
    if (r->has_threshold)
        printf("at threshold %g: %.1f%% of chosen and %.1f%% of rejected accepted\n", r->threshold,
               100.0 * ratio(r->chosen_accepted, r->n), 100.0 * ratio(r->rejected_accepted, r->n));
}

static rc_status stage_pair_rewards(staged_outputs *out, const char *path,
                                    const rc_encoded_pairs *enc, const pair_results *r) {
    rc_status st = stage_text(out, path, "", 0);
    if (st != RC_OK) return st;
    FILE *f = rc_atomic_stream(out->files[out->n - 1]);
    for (size_t i = 0; i < r->n; i++)
        fprintf(f,
                "{\"index\": %zu, \"chosen_reward\": %.9g, \"rejected_reward\": %.9g, "
                "\"chosen_tokens\": %zu, \"rejected_tokens\": %zu}\n",
                enc->items[i].source, (double)r->chosen[i], (double)r->rejected[i],
                enc->items[i].n_chosen, enc->items[i].n_rejected);
    return ferror(f) ? rc_fail(RC_ERR_IO, "cannot write %s", path) : RC_OK;
}

/* Implicit-prompt pairs (HH-RLHF dialogues) share everything but their last
 * turn; cutting the response's end may cut exactly that, leaving ties. */
static void hint_extract_prompt(const eval_options *o, const rc_pair_list *pairs,
                                const rc_encode_counts *counts) {
    if (o->extract_prompt || counts->response_truncated == 0) return;
    /* a prompt to extract exists when most pairs share their beginning (dialogues);
     * independent texts (IMDB reviews) share one only by chance */
    size_t sharing = 0;
    for (size_t i = 0; i < pairs->n; i++)
        sharing += !pairs->items[i].prompt[0] &&
                   rc_shared_prompt_length(pairs->items[i].chosen, pairs->items[i].rejected, NULL) > 0;
    if (2 * sharing > pairs->n)
        fprintf(stderr,
                "rewardc eval: hint: %zu responses lost their end to max_length and %zu pairs "
                "share a beginning but have no \"prompt\"; --extract_prompt keeps the differing "
                "ends\n",
                counts->response_truncated, sharing);
}

static int run_pairs(eval_options *o, rc_reward_model *rm) {
    if (!o->has_edges) default_edges(o, rm->meta.policy.max_length);
    pair_results r;
    memset(&r, 0, sizeof r);
    const char *threshold_source = NULL;
    const int save = o->has_target_precision || o->has_target_recall;
    if (save) threshold_source = o->has_target_precision ? "--target_precision" : "--target_recall";
    else r.has_threshold = pick_threshold(o, &rm->meta, &r.threshold, &threshold_source);
    rc_pair_list pairs = {0};
    rc_encoded_pairs enc = {0};
    staged_outputs out = {0};
    cJSON *summary = NULL;
    rc_status st = evaluate_pairs(o, rm, &pairs, &enc, &r);
    if (st == RC_OK && o->summary) {
        summary = pairs_summary(o, rm, &r, threshold_source);
        st = stage_json(&out, o->summary, summary);
    }
    if (st == RC_OK && o->figure) {
        char title[128];
        snprintf(title, sizeof title, "Rewards of chosen and rejected responses (%zu pairs)", r.n);
        rc_histogram_figure fig = {0};
        fig.title = title;
        fig.x_label = "reward";
        fig.first = (rc_histogram_series){r.chosen, r.n, "chosen"};
        fig.second = (rc_histogram_series){r.rejected, r.n, "rejected"};
        fig.has_threshold = r.has_threshold;
        fig.threshold = r.threshold;
        st = stage_figure(&out, o->figure, &fig);
    }
    if (st == RC_OK && o->rewards) st = stage_pair_rewards(&out, o->rewards, &enc, &r);
    if (st == RC_OK && save) st = save_threshold(o->model, r.threshold);
    if (st == RC_OK) st = commit_outputs(&out);
    else abort_outputs(&out);
    if (st == RC_OK) {
        print_pairs(rm, &r);
        if (save) printf("threshold saved to %s/config.json\n", o->model);
        hint_extract_prompt(o, &pairs, &r.counts);
    } else {
        fprintf(stderr, "rewardc eval: %s\n", rc_last_error());
    }
    cJSON_Delete(summary);
    pair_results_free(&r);
    rc_encoded_pairs_free(&enc);
    rc_pair_list_free(&pairs);
    return st == RC_OK ? 0 : 1;
}

/* ---- labelled single responses ------------------------------------------------------ */

typedef struct {
    rc_encode_counts counts;
    size_t n, n_pos, n_neg;
    float *reward;
    int *label;
    size_t *tokens;
    double auc, average_precision, length_auc, reward_length_r;
    int has_length_auc, has_reward_length_r;
    double pos_mean, pos_std, neg_mean, neg_std;
    rc_pr_point *curve;
    size_t n_points;
    /* the threshold reported: chosen by a target, given, or the folder's */
    int has_threshold;
    double threshold;
    const char *threshold_source;
    rc_threshold_choice at; /* the confusion counts at that threshold */
} labeled_results;

static void labeled_results_free(labeled_results *r) {
    free(r->reward);
    free(r->label);
    free(r->tokens);
    free(r->curve);
}

/* Encodes a text as `rewardc score` does, so both give the same reward: a
 * sequence the policy would drop is truncated instead (a gate must decide on
 * every response). */
static rc_status encode_single(const rc_reward_model *rm, const char *text, int32_t **ids,
                               size_t *n_ids, rc_encode_counts *counts) {
    rc_encode_outcome outcome;
    rc_status st = rc_reward_model_encode_text(rm, text, ids, n_ids, &outcome);
    if (st != RC_OK) return st;
    counts->sequences++;
    counts->prompt_truncated += outcome == RC_ENCODED_PROMPT_TRUNCATED;
    counts->response_truncated += outcome == RC_ENCODED_RESPONSE_TRUNCATED;
    return RC_OK;
}

/* Counts at an arbitrary threshold (accept when reward >= threshold). */
static rc_threshold_choice confusion_at(const labeled_results *r, double threshold) {
    rc_threshold_choice c;
    memset(&c, 0, sizeof c);
    c.threshold = (float)threshold;
    for (size_t i = 0; i < r->n; i++) {
        int accept = r->reward[i] >= threshold;
        if (r->label[i] && accept) c.tp++;
        else if (r->label[i]) c.fn++;
        else if (accept) c.fp++;
        else c.tn++;
    }
    c.precision = ratio(c.tp, c.tp + c.fp);
    c.recall = ratio(c.tp, c.tp + c.fn);
    return c;
}

static rc_status evaluate_labeled(const eval_options *o, rc_reward_model *rm, labeled_results *r) {
    rc_read_options read = {0};
    rc_prepare_report report;
    rc_prepare_report_init(&report, "labeled");
    rc_labeled_texts texts = {0};
    rc_status st = rc_labeled_read_jsonl(o->labeled, o->text_field, o->label_field, &read, &texts,
                                         &report);
    if (st != RC_OK) {
        rc_labeled_texts_free(&texts);
        return st;
    }
    size_t n = texts.n;
    if (o->max_items && n > (size_t)o->max_items) n = (size_t)o->max_items;
    if (n == 0) st = rc_fail(RC_ERR_FORMAT, "%s: no labelled texts", o->labeled);
    r->n = n;
    int32_t **seqs = calloc(n ? n : 1, sizeof *seqs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    float *token_scores = malloc((n ? n : 1) * sizeof *token_scores);
    double *token_counts = malloc((n ? n : 1) * sizeof *token_counts);
    r->reward = malloc((n ? n : 1) * sizeof *r->reward);
    r->label = malloc((n ? n : 1) * sizeof *r->label);
    r->tokens = malloc((n ? n : 1) * sizeof *r->tokens);
    if (st == RC_OK && (!seqs || !lens || !token_scores || !token_counts || !r->reward ||
                        !r->label || !r->tokens))
        st = rc_fail(RC_ERR_OOM, "cannot hold %zu labelled texts", n);
    for (size_t i = 0; st == RC_OK && i < n; i++) {
        st = encode_single(rm, texts.texts[i], &seqs[i], &lens[i], &r->counts);
        if (st != RC_OK) st = rc_fail_context(st, "%s: text %zu", o->labeled, i + 1);
        r->label[i] = texts.labels[i];
        r->tokens[i] = lens[i];
        token_scores[i] = (float)lens[i];
        token_counts[i] = (double)lens[i];
        r->n_pos += texts.labels[i] == 1;
    }
    r->n_neg = n - r->n_pos;
    if (st == RC_OK) st = score_sequences(rm, seqs, lens, n, r->reward);
    if (st == RC_OK) st = rc_roc_auc(r->reward, r->label, n, &r->auc);
    if (st == RC_OK) st = rc_precision_recall_curve(r->reward, r->label, n, &r->curve, &r->n_points);
    if (st == RC_OK) {
        /* average precision: precision at each point weighted by the recall it adds */
        double previous_recall = 0.0;
        for (size_t p = 0; p < r->n_points; p++) {
            r->average_precision += (r->curve[p].recall - previous_recall) * r->curve[p].precision;
            previous_recall = r->curve[p].recall;
        }
        /* How well length alone separates the classes: a model that does no
         * better than this is a length detector. */
        r->has_length_auc = rc_roc_auc(token_scores, r->label, n, &r->length_auc) == RC_OK;
        r->has_reward_length_r =
            rc_reward_length_correlation(r->reward, token_counts, n, &r->reward_length_r) == RC_OK;
        rc_clear_error();
        float *pos = token_scores, *neg = token_scores + r->n_pos; /* reuse as scratch */
        size_t ip = 0, in = 0;
        for (size_t i = 0; i < n; i++) {
            if (r->label[i]) pos[ip++] = r->reward[i];
            else neg[in++] = r->reward[i];
        }
        mean_std(pos, r->n_pos, &r->pos_mean, &r->pos_std);
        mean_std(neg, r->n_neg, &r->neg_mean, &r->neg_std);
    }
    if (st == RC_OK && (o->has_target_precision || o->has_target_recall)) {
        st = o->has_target_precision
                 ? rc_threshold_for_precision(r->reward, r->label, n, o->target, &r->at)
                 : rc_threshold_for_recall(r->reward, r->label, n, o->target, &r->at);
        if (st == RC_OK) {
            r->has_threshold = 1;
            r->threshold = r->at.threshold;
            r->threshold_source = o->has_target_precision ? "--target_precision" : "--target_recall";
        }
    } else if (st == RC_OK) {
        r->has_threshold = pick_threshold(o, &rm->meta, &r->threshold, &r->threshold_source);
        if (r->has_threshold) r->at = confusion_at(r, r->threshold);
    }
    for (size_t i = 0; seqs && i < n; i++) free(seqs[i]);
    free(seqs);
    free(lens);
    free(token_scores);
    free(token_counts);
    rc_labeled_texts_free(&texts);
    return st;
}

static cJSON *labeled_summary(const eval_options *o, const rc_reward_model *rm,
                              const labeled_results *r, int saved) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", "labeled");
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "data", o->labeled);
    cJSON_AddNumberToObject(j, "texts", (double)r->n);
    cJSON_AddNumberToObject(j, "acceptable", (double)r->n_pos);
    cJSON_AddNumberToObject(j, "not_acceptable", (double)r->n_neg);
    cJSON_AddNumberToObject(j, "roc_auc", r->auc);
    cJSON_AddNumberToObject(j, "average_precision", r->average_precision);
    cJSON *rewards = cJSON_AddObjectToObject(j, "reward");
    add_mean_std(rewards, "acceptable", r->pos_mean, r->pos_std);
    add_mean_std(rewards, "not_acceptable", r->neg_mean, r->neg_std);
    add_truncation(j, &r->counts, rm->meta.policy.max_length);
    cJSON *bias = cJSON_AddObjectToObject(j, "length_bias");
    cJSON_AddStringToObject(bias, "length_unit", "tokens of the text as scored");
    cJSON_AddItemToObject(bias, "reward_length_correlation",
                          number_or_null(r->has_reward_length_r, r->reward_length_r));
    cJSON_AddItemToObject(bias, "length_only_roc_auc", number_or_null(r->has_length_auc, r->length_auc));
    if (r->has_threshold) {
        cJSON *t = cJSON_AddObjectToObject(j, "threshold");
        cJSON_AddNumberToObject(t, "value", r->threshold);
        cJSON_AddStringToObject(t, "source", r->threshold_source);
        if (o->has_target_precision) cJSON_AddNumberToObject(t, "target_precision", o->target);
        if (o->has_target_recall) cJSON_AddNumberToObject(t, "target_recall", o->target);
        cJSON_AddBoolToObject(t, "saved_to_model", saved);
        cJSON_AddNumberToObject(t, "tp", (double)r->at.tp);
        cJSON_AddNumberToObject(t, "fp", (double)r->at.fp);
        cJSON_AddNumberToObject(t, "fn", (double)r->at.fn);
        cJSON_AddNumberToObject(t, "tn", (double)r->at.tn);
        cJSON_AddItemToObject(t, "precision", number_or_null(1, r->at.precision));
        cJSON_AddItemToObject(t, "recall", number_or_null(1, r->at.recall));
    }
    cJSON *curve = cJSON_AddArrayToObject(j, "precision_recall_curve");
    for (size_t p = 0; p < r->n_points; p++) {
        cJSON *point = cJSON_CreateObject();
        cJSON_AddNumberToObject(point, "threshold", r->curve[p].threshold);
        cJSON_AddNumberToObject(point, "precision", r->curve[p].precision);
        cJSON_AddNumberToObject(point, "recall", r->curve[p].recall);
        cJSON_AddNumberToObject(point, "tp", (double)r->curve[p].tp);
        cJSON_AddNumberToObject(point, "fp", (double)r->curve[p].fp);
        cJSON_AddItemToArray(curve, point);
    }
    return j;
}

static void print_labeled(const rc_reward_model *rm, const labeled_results *r, int saved,
                          const char *model_dir) {
    printf("texts: %zu (%zu acceptable, %zu not)\n", r->n, r->n_pos, r->n_neg);
    printf("ROC AUC: %.4f   average precision: %.4f\n", r->auc, r->average_precision);
    printf("reward: acceptable %.4f +- %.4f, not acceptable %.4f +- %.4f\n", r->pos_mean,
           r->pos_std, r->neg_mean, r->neg_std);
    print_truncation(&r->counts, rm->meta.policy.max_length);
    if (r->has_length_auc) printf("ROC AUC of length alone: %.4f", r->length_auc);
    if (r->has_reward_length_r) printf("   correlation of reward with length: %.4f", r->reward_length_r);
    printf("\n");
    if (r->has_threshold) {
        printf("threshold %.9g (%s): precision ", r->threshold, r->threshold_source);
        if (isfinite(r->at.precision)) printf("%.4f", r->at.precision);
        else printf("undefined (nothing accepted)");
        printf(", recall %.4f (tp %zu, fp %zu, fn %zu, tn %zu)\n", r->at.recall, r->at.tp,
               r->at.fp, r->at.fn, r->at.tn);
        if (saved) printf("threshold saved to %s/config.json\n", model_dir);
    }
}

static rc_status stage_labeled_rewards(staged_outputs *out, const char *path,
                                       const labeled_results *r) {
    rc_status st = stage_text(out, path, "", 0);
    if (st != RC_OK) return st;
    FILE *f = rc_atomic_stream(out->files[out->n - 1]);
    for (size_t i = 0; i < r->n; i++)
        fprintf(f, "{\"index\": %zu, \"label\": %d, \"reward\": %.9g, \"tokens\": %zu}\n", i,
                r->label[i], (double)r->reward[i], r->tokens[i]);
    return ferror(f) ? rc_fail(RC_ERR_IO, "cannot write %s", path) : RC_OK;
}

static int run_labeled(const eval_options *o, rc_reward_model *rm) {
    labeled_results r;
    memset(&r, 0, sizeof r);
    staged_outputs out = {0};
    cJSON *summary = NULL;
    int save = o->has_target_precision || o->has_target_recall;
    rc_status st = evaluate_labeled(o, rm, &r);
    if (st == RC_OK && o->summary) {
        summary = labeled_summary(o, rm, &r, save);
        st = stage_json(&out, o->summary, summary);
    }
    if (st == RC_OK && o->figure) {
        /* split the rewards by class for the two histograms */
        float *split = malloc(r.n * sizeof *split);
        if (!split) st = rc_fail(RC_ERR_OOM, "cannot hold %zu rewards", r.n);
        size_t ip = 0, in = r.n_pos;
        for (size_t i = 0; split && i < r.n; i++) split[r.label[i] ? ip++ : in++] = r.reward[i];
        char title[128];
        snprintf(title, sizeof title, "Rewards of labelled responses (%zu texts)", r.n);
        rc_histogram_figure fig = {0};
        fig.title = title;
        fig.x_label = "reward";
        fig.first = (rc_histogram_series){split, r.n_pos, "acceptable (label 1)"};
        fig.second = (rc_histogram_series){split + r.n_pos, r.n_neg, "not acceptable (label 0)"};
        fig.has_threshold = r.has_threshold;
        fig.threshold = r.threshold;
        if (st == RC_OK) st = stage_figure(&out, o->figure, &fig);
        free(split);
    }
    if (st == RC_OK && o->rewards) st = stage_labeled_rewards(&out, o->rewards, &r);
    if (st == RC_OK && save) st = save_threshold(o->model, r.threshold);
    if (st == RC_OK) st = commit_outputs(&out);
    else abort_outputs(&out);
    if (st == RC_OK) print_labeled(rm, &r, save, o->model);
    else fprintf(stderr, "rewardc eval: %s\n", rc_last_error());
    cJSON_Delete(summary);
    labeled_results_free(&r);
    return st == RC_OK ? 0 : 1;
}

static int eval_main(int argc, char **argv) {
    eval_options o;
    int parsed = parse_options(argc, argv, &o);
    if (parsed <= 0) return parsed == 0 ? 0 : 2;
    if (rc_dist_rank() != 0) { /* under mpirun rank 0 writes and reports for all */
        o.summary = o.figure = o.rewards = NULL;
        if (!freopen("/dev/null", "w", stdout)) return 1;
    }
    if (!rc_path_is_dir(o.model)) {
        fprintf(stderr, "rewardc eval: model folder '%s' does not exist\n", o.model);
        return 1;
    }
    const char *data = o.pairs ? o.pairs : o.labeled;
    if (!rc_path_is_file(data)) {
        fprintf(stderr, "rewardc eval: data file '%s' does not exist\n", data);
        return 1;
    }
    rc_set_num_threads((int)o.threads);
    rc_reward_model rm;
    if (rc_reward_model_open(o.model, o.backend, (int)o.device, (int)o.batch, &rm) != RC_OK) {
        fprintf(stderr, "rewardc eval: %s\n", rc_last_error());
        return 1;
    }
    int status = o.pairs ? run_pairs(&o, &rm) : run_labeled(&o, &rm);
    double tokens[2] = {(double)rm.shared_tokens, (double)rm.tokens};
    if (status == 0 && rc_dist_allreduce_sum_f64(tokens, 2) != RC_OK) status = 1;
    rm.shared_tokens = (size_t)tokens[0], rm.tokens = (size_t)tokens[1];
    if (status == 0 && rm.shared_tokens && rc_dist_rank() == 0)
        fprintf(stderr, "rewardc eval: %zu of %zu tokens were a beginning shared with another "
                "sequence (a pair's prompt), computed once (%.1f%%)\n", rm.shared_tokens,
                rm.tokens, 100.0 * rm.shared_tokens / rm.tokens);
    rc_reward_model_close(&rm);
    return status;
}

/* Under mpirun every rank runs this; a rank that fails ends the whole job. */
int cmd_eval(int argc, char **argv) {
    if (rc_dist_init() != RC_OK) {
        fprintf(stderr, "rewardc eval: %s\n", rc_last_error());
        return 1;
    }
    rc_clear_error();
    int status = eval_main(argc, argv);
    if (status != 0 && rc_dist_size() > 1) {
        char message[1200];
        snprintf(message, sizeof message, "rewardc eval failed, stopping every rank: %s", rc_last_error());
        rc_dist_abort(message);
    }
    rc_dist_finalize();
    return status;
}
