/* rewardc score: stream JSONL responses through a reward model and gate them. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "cli/signal_cleanup.h"
#include "rewardc/io.h"
#include "rewardc/threads.h"
#include "rewardc/tokenizer.h"
#include "rewardc/workflow.h"

enum { SCORE_WINDOW = 256 }; /* lines held at most before scoring */

static void usage(FILE *out) {
    fprintf(out,
            "usage: rewardc score --model DIR [--input FILE] [--output FILE] [--threshold T]\n"
            "                     [--batch_size N] [--backend cpu|opencl|cuda] [--device N]\n"
            "                     [--threads N] [--share_prefix true|false]\n\n"
            "Scores each JSONL line, {\"prompt\": \"...\", \"response\": \"...\"}, {\"messages\": [...]}\n"
            "(a conversation ending with the assistant's reply) or {\"text\": \"...\"} (tokenized as\n"
            "it is), in order; a model trained on conversations renders prompt/response and\n"
            "messages with its chat template, as training did. Writes one JSON object per line:\n"
            "  {\"line\": 3, \"reward\": 1.23, \"normalized\": 0.41, \"decision\": \"accept\"}\n"
            "plus \"id\" when the input line has one and \"truncated\": true when the text was cut\n"
            "to the model's max_length. normalized = (reward - mean) / std over the eval set\n"
            "the model was trained with (null when the folder has none). decision compares\n"
            "the raw reward with --threshold, else the model folder's threshold (set by\n"
            "rewardc eval --target_precision/--target_recall); without either it is omitted.\n"
            "A bad line gets {\"line\": N, \"error\": \"...\"} (also on stderr) and the rest is\n"
            "still scored; the exit code is then 3.\n\n"
            "  --model DIR    model folder (rewardc init/train, or an HF OPT folder with tokenizer files)\n"
            "  --input FILE   JSONL input (default or '-': standard input)\n"
            "  --output FILE  written atomically when complete (default: standard output, streamed);\n"
            "                 until then the scores go to FILE.tmp.XXXXXX, removed on an error or\n"
            "                 Ctrl-C/SIGTERM, and after kill -9 by the next score --output FILE\n"
            "  --threshold T  accept when reward >= T (default: the folder's, if eval set one)\n"
            "  --batch_size N sequences per forward pass (16); lines are read in windows of\n"
            "                 8 batches (at most %d lines) and each window is batched by length,\n"
            "                 so little compute goes to padding; output stays in input order\n"
            "  --share_prefix texts of a window that begin alike (the responses to one prompt,\n"
            "                 a chosen/rejected pair) share a row and compute their common\n"
            "                 beginning once, where that takes fewer FLOPs (true); the rewards\n"
            "                 are the same up to float rounding\n"
            "  --backend B    cpu (default), opencl or cuda, when compiled in; --device N picks\n"
            "                 the device (0)\n"
            "  --threads N    OpenMP and BLAS threads (0: the OpenMP default)\n",
            SCORE_WINDOW);
}

/* A line's text: prompt + response, a literal text, or a conversation
 * (messages, with the JSON that holds their strings); then its ids. */
typedef struct {
    long line;
    char *prompt, *response, *text, *id_json;
    cJSON *messages_json;
    rc_chat_message *messages;
    size_t n_messages;
    int32_t *ids;
    size_t n_ids;
    rc_encode_outcome outcome;
} pending_item;

static void free_texts(pending_item *item) {
    free(item->prompt);
    free(item->response);
    free(item->text);
    free(item->messages);
    cJSON_Delete(item->messages_json);
    item->prompt = item->response = item->text = NULL;
    item->messages = NULL;
    item->messages_json = NULL;
}

static void free_items(pending_item *items, int n) {
    for (int i = 0; i < n; i++) {
        free_texts(&items[i]);
        free(items[i].id_json);
        free(items[i].ids);
    }
}

/* The line's ids, as the model reads that kind of input; the texts go. */
static rc_status encode_item(const rc_reward_model *rm, pending_item *it) {
    rc_status st = it->messages ? rc_reward_model_encode_messages(rm, it->messages, it->n_messages,
                                                                  &it->ids, &it->n_ids, &it->outcome)
                   : it->text   ? rc_reward_model_encode_text(rm, it->text, &it->ids, &it->n_ids,
                                                              &it->outcome)
                                : rc_reward_model_encode(rm, it->prompt, it->response, &it->ids,
                                                         &it->n_ids, &it->outcome);
    free_texts(it);
    return st;
}

/* "messages": [{"role", "content"}, ...] ending with the assistant's reply. */
static int parse_messages(const cJSON *list, pending_item *item, char *error, size_t size) {
    const int n = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || n == 0) {
        snprintf(error, size, "\"messages\" must be a non-empty list");
        return 0;
    }
    item->messages_json = cJSON_Duplicate(list, 1);
    item->messages = calloc((size_t)n, sizeof *item->messages);
    if (!item->messages_json || !item->messages) {
        snprintf(error, size, "out of memory");
        return 0;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, item->messages_json) {
        const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content"));
        if (!role || !content) {
            snprintf(error, size, "messages[%zu] needs string \"role\" and \"content\"",
                     item->n_messages);
            return 0;
        }
        item->messages[item->n_messages++] = (rc_chat_message){role, content};
    }
    return 1;
}

/* Parses one input line; on error writes the message to `error`. */
static int parse_line(const char *text, size_t len, pending_item *item, char *error, size_t size) {
    cJSON *json = NULL;
    size_t offset;
    if (rc_json_parse(text, len, &json, &offset) != RC_OK) {
        /* one object per line: trailing bytes or a second object are errors,
         * not silently dropped */
        if (!strncmp(rc_last_error(), "invalid JSON", 12)) snprintf(error, size, "not a JSON object");
        else snprintf(error, size, "%s (column %zu)", rc_last_error(), offset + 1);
        return 0;
    }
    if (!cJSON_IsObject(json)) {
        snprintf(error, size, "not a JSON object");
        cJSON_Delete(json);
        return 0;
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(json, "prompt");
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(json, "response");
    const cJSON *whole = cJSON_GetObjectItemCaseSensitive(json, "text");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(json, "messages");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "id");
    int ok = 1;
    if (messages) {
        ok = parse_messages(messages, item, error, size);
    } else if (response) {
        if (!cJSON_IsString(response) || (prompt && !cJSON_IsString(prompt))) {
            snprintf(error, size, "\"prompt\" and \"response\" must be strings");
            ok = 0;
        } else if (!response->valuestring[0]) {
            snprintf(error, size, "\"response\" is empty");
            ok = 0;
        } else {
            item->prompt = strdup(prompt ? prompt->valuestring : "");
            item->response = strdup(response->valuestring);
        }
    } else if (whole) {
        if (!cJSON_IsString(whole) || !whole->valuestring[0]) {
            snprintf(error, size, "\"text\" must be a non-empty string");
            ok = 0;
        } else {
            item->text = strdup(whole->valuestring);
        }
    } else {
        snprintf(error, size, "needs \"response\" (with optional \"prompt\"), \"messages\" or \"text\"");
        ok = 0;
    }
    if (ok && id) item->id_json = cJSON_PrintUnformatted(id);
    cJSON_Delete(json);
    return ok;
}

static void write_error(FILE *out, long line, const char *message) {
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "line", (double)line);
    cJSON_AddStringToObject(obj, "error", message);
    char *text = cJSON_PrintUnformatted(obj);
    fprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(obj);
}

/* Every rank's block of the window to every rank, in input order; the
 * outcome codes travel as floats (small integers, exact in a float). */
/* Every rank encoded the whole window (each reads the input); the rewards
 * of the others' blocks are gathered. */
static rc_status gather_window(int n, float *rewards) {
    int size = rc_dist_size();
    int *per_rank = malloc((size_t)size * sizeof *per_rank);
    if (!per_rank) return rc_fail(RC_ERR_OOM, "cannot allocate gather counts");
    for (int r = 0; r < size; r++) {
        size_t lo, hi;
        rc_dist_shard((size_t)n, r, size, &lo, &hi);
        per_rank[r] = (int)(hi - lo);
    }
    rc_status st = rc_dist_allgather_f32(rewards, per_rank);
    free(per_rank);
    return st;
}

/* Scores the pending items (a window of lines) and writes their lines. */
static rc_status flush_window(rc_reward_model *rm, pending_item *items, int n, int has_threshold,
                             double threshold, FILE *out, size_t *truncated_total) {
    if (n == 0) return RC_OK;
    const int32_t *seqs[SCORE_WINDOW] = {0};
    size_t lens[SCORE_WINDOW] = {0};
    float rewards[SCORE_WINDOW];
    for (int i = 0; i < n; i++) {
        seqs[i] = items[i].ids;
        lens[i] = items[i].n_ids;
        *truncated_total += items[i].outcome != RC_ENCODED_WHOLE;
    }
    /* under mpirun each rank scores its block of the window */
    size_t lo, hi;
    rc_dist_shard((size_t)n, rc_dist_rank(), rc_dist_size(), &lo, &hi);
    rc_status st = hi > lo ? rc_reward_model_score(rm, seqs + lo, lens + lo, hi - lo, rewards + lo)
                           : RC_OK;
    if (st != RC_OK)
        return rc_fail_context(st, "scoring lines %ld to %ld", items[lo].line, items[hi - 1].line);
    if (rc_dist_size() > 1 && (st = gather_window(n, rewards)) != RC_OK) return st;
    for (int i = 0; i < n; i++) {
        fprintf(out, "{\"line\": %ld, ", items[i].line);
        if (items[i].id_json) fprintf(out, "\"id\": %s, ", items[i].id_json);
        /* %.9g round-trips a float, so a reward next to the threshold prints on its side */
        fprintf(out, "\"reward\": %.9g, ", rewards[i]);
        if (rm->meta.has_reward_stats && rm->meta.reward_std > 0)
            fprintf(out, "\"normalized\": %.9g", (rewards[i] - rm->meta.reward_mean) / rm->meta.reward_std);
        else
            fprintf(out, "\"normalized\": null");
        if (has_threshold)
            fprintf(out, ", \"decision\": \"%s\"", rewards[i] >= threshold ? "accept" : "block");
        if (items[i].outcome != RC_ENCODED_WHOLE) fprintf(out, ", \"truncated\": true");
        fprintf(out, "}\n");
    }
    /* a full disk stops the run here, not after scoring the whole input */
    if (fflush(out) != 0 || ferror(out))
        return rc_fail(RC_ERR_IO, "writing the scores failed after line %ld: %s", items[n - 1].line,
                       strerror(errno ? errno : EIO));
    return RC_OK;
}

static int score_main(int argc, char **argv) {
    const char *model = NULL, *input = "-", *output = NULL, *threshold_text = NULL;
    const char *batch_text = "16", *backend = "cpu", *device_text = "0", *threads_text = "0";
    const char *share_text = "true";
    for (int i = 1; i < argc; i++) {
        int r;
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if ((r = arg_value(argc, argv, &i, "--model", &model)) ||
            (r = arg_value(argc, argv, &i, "--input", &input)) ||
            (r = arg_value(argc, argv, &i, "--output", &output)) ||
            (r = arg_value(argc, argv, &i, "--threshold", &threshold_text)) ||
            (r = arg_value(argc, argv, &i, "--batch_size", &batch_text)) ||
            (r = arg_value(argc, argv, &i, "--backend", &backend)) ||
            (r = arg_value(argc, argv, &i, "--device", &device_text)) ||
            (r = arg_value(argc, argv, &i, "--threads", &threads_text)) ||
            (r = arg_value(argc, argv, &i, "--share_prefix", &share_text))) {
            if (r < 0) return 2;
            continue;
        }
        fprintf(stderr, "rewardc score: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!model) {
        fprintf(stderr, "rewardc score: --model is required\n");
        return 2;
    }
    long batch, device, threads;
    double threshold = 0.0;
    if (!parse_long("score", "--batch_size", batch_text, 1, SCORE_WINDOW, &batch) ||
        !parse_long("score", "--device", device_text, 0, 1024, &device) ||
        !parse_long("score", "--threads", threads_text, 0, 4096, &threads) ||
        (threshold_text && !parse_double("score", "--threshold", threshold_text, &threshold)))
        return 2;
    const int share_prefix = !strcmp(share_text, "true");
    if (!share_prefix && strcmp(share_text, "false")) {
        fprintf(stderr, "rewardc score: --share_prefix: '%s' is not true/false\n", share_text);
        return 2;
    }
    rc_set_num_threads((int)threads);

    if (rc_dist_size() > 1 && !strcmp(input, "-")) {
        fprintf(stderr, "rewardc score: under mpirun every rank reads the input: give --input FILE "
                "(standard input reaches rank 0 only)\n");
        return 2;
    }
    if (rc_dist_rank() != 0) output = NULL; /* rank 0 writes for all */
    FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "rewardc score: cannot open %s\n", input);
        return 1;
    }
    rc_reward_model rm;
    if (rc_reward_model_open(model, backend, (int)device, (int)batch, &rm) != RC_OK) {
        fprintf(stderr, "rewardc score: %s\n", rc_last_error());
        if (in != stdin) fclose(in);
        return 1;
    }
    rm.share_prefix = share_prefix;
    int has_threshold = threshold_text != NULL || rm.meta.has_threshold;
    if (!threshold_text) threshold = rm.meta.threshold;

    rc_atomic_file *atomic = NULL;
    FILE *out = rc_dist_rank() == 0 ? stdout : fopen("/dev/null", "w");
    rc_status st = out ? RC_OK : rc_fail(RC_ERR_IO, "cannot open /dev/null");
    if (output) {
        int stale;
        if (rc_path_is_dir(output))
            st = rc_fail(RC_ERR_INVALID_ARG, "--output %s is a folder; name a file", output);
        if (st == RC_OK) st = rc_atomic_remove_stale(output, &stale);
        if (st == RC_OK) st = rc_atomic_open(output, &atomic);
        if (st == RC_OK) {
            out = rc_atomic_stream(atomic);
            cli_remove_on_signal(rc_atomic_temp_path(atomic)); /* Ctrl-C leaves no temp file */
        }
    }
    pending_item items[SCORE_WINDOW];
    const int window = batch * 8 < SCORE_WINDOW ? (int)batch * 8 : SCORE_WINDOW;
    int n_pending = 0;
    long line_number = 0, bad = 0, scored = 0;
    size_t truncated = 0;
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    while (st == RC_OK && (len = getline(&line, &capacity, in)) >= 0) {
        line_number++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue; /* blank lines carry nothing */
        pending_item item = {.line = line_number};
        char error[256];
        int ok = parse_line(line, (size_t)len, &item, error, sizeof error);
        if (ok && encode_item(&rm, &item) != RC_OK) {
            snprintf(error, sizeof error, "%s", rc_last_error());
            ok = 0;
        }
        if (!ok) {
            /* earlier lines first, so the output stays in input order */
            st = flush_window(&rm, items, n_pending, has_threshold, threshold, out, &truncated);
            scored += n_pending;
            free_items(items, n_pending);
            n_pending = 0;
            if (rc_dist_rank() == 0)
                fprintf(stderr, "rewardc score: %s line %ld: %s\n", input, line_number, error);
            write_error(out, line_number, error);
            bad++;
            free_items(&item, 1);
            continue;
        }
        items[n_pending++] = item;
        if (n_pending == window) {
            st = flush_window(&rm, items, n_pending, has_threshold, threshold, out, &truncated);
            scored += n_pending;
            free_items(items, n_pending);
            n_pending = 0;
        }
    }
    if (st == RC_OK) {
        st = flush_window(&rm, items, n_pending, has_threshold, threshold, out, &truncated);
        scored += n_pending;
    }
    free_items(items, n_pending);
    free(line);
    if (in != stdin) fclose(in);
    if (atomic) {
        if (st == RC_OK) st = rc_atomic_commit(atomic);
        else rc_atomic_abort(atomic);
        cli_remove_on_signal_clear();
    }
    double token_counts[2] = {(double)rm.tokens, (double)rm.shared_tokens};
    if (st == RC_OK) st = rc_dist_allreduce_sum_f64(token_counts, 2);
    const size_t tokens = (size_t)token_counts[0], shared = (size_t)token_counts[1];
    rc_reward_model_close(&rm);
    if (out && out != stdout && !atomic) fclose(out);
    if (st != RC_OK) {
        fprintf(stderr, "rewardc score: %s\n", rc_last_error());
        return 1;
    }
    if (rc_dist_rank() != 0) return bad ? 3 : 0;
    fprintf(stderr, "rewardc score: %ld lines scored, %ld bad, %zu truncated to max_length%s\n",
            scored, bad, truncated, has_threshold ? "" : " (no threshold: no decisions)");
    if (shared)
        fprintf(stderr, "rewardc score: %zu of %zu tokens were a beginning shared with another "
                "text, computed once (%.1f%%)\n", shared, tokens, 100.0 * shared / tokens);
    return bad ? 3 : 0;
}

/* Under mpirun every rank runs this; a rank that fails ends the whole job
 * (a bad input line is not a failure: every rank sees the same lines). */
int cmd_score(int argc, char **argv) {
    if (rc_dist_init() != RC_OK) {
        fprintf(stderr, "rewardc score: %s\n", rc_last_error());
        return 1;
    }
    rc_clear_error();
    int status = score_main(argc, argv);
    if ((status == 1 || status == 2) && rc_dist_size() > 1) {
        char message[1200];
        snprintf(message, sizeof message, "rewardc score failed, stopping every rank: %s", rc_last_error());
        rc_dist_abort(message);
    }
    rc_dist_finalize();
    return status;
}
