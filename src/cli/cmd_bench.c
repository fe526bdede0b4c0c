/* rewardc bench: throughput of one training step, of reward scoring and of a
 * single large GEMM. Each subcommand measures one thing in its own process, so
 * the peak RSS it reports belongs to that benchmark alone. tools/bench.py runs
 * these next to a PyTorch peer fed the very same batch (--save_batch) and
 * prints the comparison.
 *
 * Every subcommand prints exactly one JSON line on standard output (progress
 * goes to standard error) and, with --json FILE, writes the same object
 * pretty-printed and atomically. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/rng.h"
#include "rewardc/io.h"
#include "rewardc/model.h"
#include "rewardc/safetensors.h"
#include "rewardc/threads.h"
#include "rewardc/train.h"

#ifdef RC_HAVE_BLAS
#include <cblas.h>
#endif

/* Which subcommands accept an option. */
enum { FOR_TRAIN = 1, FOR_SCORE = 2, FOR_SGEMM = 4, FOR_MODEL = FOR_TRAIN | FOR_SCORE, FOR_ALL = 7 };

typedef struct {
    const char *model, *backend, *json_path, *batch_path, *lengths;
    long rows, seq_len, steps, warmup, threads, seed, device, size, m, n, k;
    double learning_rate, weight_decay, max_grad_norm;
    int backend_given; /* sgemm: through the op table instead of cblas_sgemm */
} bench_options;

typedef enum { VALUE_STRING, VALUE_LONG, VALUE_DOUBLE } value_kind;

typedef struct {
    const char *flag;
    value_kind kind;
    void *target;
    long min, max;
    int for_commands;
    const char *help;
} bench_flag;

static int flag_table(bench_options *o, int command, bench_flag *out) {
    const bench_flag flags[] = {
        {"--model", VALUE_STRING, &o->model, 0, 0, FOR_MODEL, "model folder (rewardc init / HF OPT checkpoint)"},
        {"--pairs", VALUE_LONG, &o->rows, 1, 4096, FOR_TRAIN, "chosen/rejected pairs per step (4): 2*pairs sequences"},
        {"--batch", VALUE_LONG, &o->rows, 1, 8192, FOR_SCORE, "sequences per forward pass (8)"},
        {"--seq_len", VALUE_LONG, &o->seq_len, 1, 1 << 20, FOR_MODEL, "tokens per sequence (256)"},
        {"--lengths", VALUE_STRING, &o->lengths, 0, 0, FOR_MODEL,
         "full: every row T tokens; varied: lengths uniform in [T/2, T], right-padded (full)"},
        {"--size", VALUE_LONG, &o->size, 1, 1 << 16, FOR_SGEMM, "M = N = K of the product (2048)"},
        {"--m", VALUE_LONG, &o->m, 1, 1 << 20, FOR_SGEMM, "rows of A and C, instead of --size"},
        {"--n", VALUE_LONG, &o->n, 1, 1 << 20, FOR_SGEMM, "columns of B and C, instead of --size"},
        {"--k", VALUE_LONG, &o->k, 1, 1 << 20, FOR_SGEMM, "columns of A, rows of B, instead of --size"},
        {"--steps", VALUE_LONG, &o->steps, 1, 1 << 20, FOR_ALL, "timed repetitions; the median is reported (5)"},
        {"--warmup", VALUE_LONG, &o->warmup, 0, 1 << 20, FOR_ALL, "untimed repetitions first (1)"},
        {"--threads", VALUE_LONG, &o->threads, 0, 4096, FOR_ALL, "OpenMP and OpenBLAS threads (0: default)"},
        {"--seed", VALUE_LONG, &o->seed, 0, 2147483647L, FOR_ALL, "seed of the random token ids / matrices (1234)"},
        {"--learning_rate", VALUE_DOUBLE, &o->learning_rate, 0, 0, FOR_TRAIN, "AdamW rate (1e-5)"},
        {"--weight_decay", VALUE_DOUBLE, &o->weight_decay, 0, 0, FOR_TRAIN,
         "AdamW decoupled decay, not on biases/LayerNorm (0.01)"},
        {"--max_grad_norm", VALUE_DOUBLE, &o->max_grad_norm, 0, 0, FOR_TRAIN, "clip_grad_norm_ bound (1.0; 0: none)"},
        {"--save_batch", VALUE_STRING, &o->batch_path, 0, 0, FOR_MODEL,
         "write input_ids/attention_mask as safetensors, for a peer to run the same batch"},
        {"--backend", VALUE_STRING, &o->backend, 0, 0, FOR_ALL,
         "cpu | opencl | cuda (sgemm: measure the op table's gemm instead of cblas_sgemm)"},
        {"--device", VALUE_LONG, &o->device, 0, 1024, FOR_ALL, "device index for opencl/cuda (0)"},
        {"--json", VALUE_STRING, &o->json_path, 0, 0, FOR_ALL, "also write the result object to FILE"},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].for_commands & command) out[n++] = flags[i];
    return n;
}

static void usage(FILE *out) {
    bench_options o;
    bench_flag table[32];
    fprintf(out,
            "usage: rewardc bench train-step --model DIR [--pairs B] [--seq_len T] [options]\n"
            "       rewardc bench score --model DIR [--batch B] [--seq_len T] [options]\n"
            "       rewardc bench sgemm [--size N | --m M --n N --k K] [options]\n\n"
            "Measures, after --warmup untimed repetitions, the median wall time of --steps:\n"
            "  train-step  one optimizer step: zero_grad, forward and backward of B chosen and\n"
            "              B rejected sequences, pairwise loss, clip_grad_norm, AdamW\n"
            "  score       one forward pass (rewards) of B sequences\n"
            "  sgemm       one single-precision product C = A B, row-major (cblas_sgemm; with\n"
            "              --backend, the backend's gemm: on the cpu, rewardc's packed kernel\n"
            "              for a side of at most 256, as in training)\n"
            "Token ids are random in [3, vocab) from --seed. Prints one JSON line (median\n"
            "seconds, tokens/s, model FLOP/s, peak RSS); tools/bench.py compares with PyTorch.\n"
            "Model FLOPs count matrix products only, 2*M*N*K each: the q/k/v/out projections,\n"
            "fc1/fc2, the full T x T attention products QK^T and PV, project_in/out and the\n"
            "score head, for the dense model (every layer at every token, as transformers\n"
            "computes it); backward counts twice the forward. executed_flops counts what\n"
            "rewardc runs: its last layer goes past K and V only at the score rows.\n");
    const char *names[] = {"train-step", "score", "sgemm"};
    for (int c = 0; c < 3; c++) {
        fprintf(out, "\n%s options:\n", names[c]);
        int n = flag_table(&o, 1 << c, table);
        for (int i = 0; i < n; i++) fprintf(out, "  %-16s %s\n", table[i].flag, table[i].help);
    }
}

/* Parses argv (argv[0] is the benchmark name) into o; returns 0 to go on,
 * else the exit code. */
static int parse_options(int argc, char **argv, int command, bench_options *o) {
    bench_flag table[32];
    int n = flag_table(o, command, table);
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) {
            usage(stdout);
            return -1;
        }
        int matched = 0;
        for (int f = 0; f < n && !matched; f++) {
            const char *text = NULL;
            int r = arg_value(argc, argv, &i, table[f].flag, &text);
            if (r < 0) return 2;
            if (r == 0) continue;
            matched = 1;
            int ok = 1;
            if (table[f].kind == VALUE_STRING) {
                *(const char **)table[f].target = text;
            } else if (table[f].kind == VALUE_LONG) {
                ok = parse_long("bench", table[f].flag, text, table[f].min, table[f].max,
                                (long *)table[f].target);
            } else {
                double *target = table[f].target;
                ok = parse_double("bench", table[f].flag, text, target);
                if (ok && *target < 0) {
                    fprintf(stderr, "rewardc bench: %s must not be negative\n", table[f].flag);
                    ok = 0;
                }
            }
            if (!ok) return 2;
            if (!strcmp(table[f].flag, "--backend")) o->backend_given = 1;
        }
        if (!matched) {
            fprintf(stderr, "rewardc bench %s: unknown option '%s' (see rewardc bench --help)\n",
                    argv[0], argv[i]);
            return 2;
        }
    }
    if ((command & FOR_MODEL) && !o->model) {
        fprintf(stderr, "rewardc bench %s: --model is required\n", argv[0]);
        return 2;
    }
    if (strcmp(o->lengths, "full") && strcmp(o->lengths, "varied")) {
        fprintf(stderr, "rewardc bench: --lengths must be full or varied, not '%s'\n", o->lengths);
        return 2;
    }
    return 0;
}

/* ---- measurement helpers ---- */

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *values, long n) {
    double *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return values[0];
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
    double m = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    free(sorted);
    return m;
}

static double peak_rss_mib(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1.0;
#ifdef __APPLE__
    return (double)usage.ru_maxrss / (1024.0 * 1024.0); /* bytes there */
#else
    return (double)usage.ru_maxrss / 1024.0; /* KiB on Linux */
#endif
}

/* Wall and CPU seconds of each timed repetition. CPU time over wall time
 * shows how many cores the process really had: on a busy machine it drops
 * below the thread count. */
typedef struct {
    double *wall, *cpu;
    long n, timed;
    double wall_start, cpu_start;
} rep_timer;

static int timer_init(rep_timer *t, long n) {
    memset(t, 0, sizeof *t);
    t->wall = malloc((size_t)n * sizeof *t->wall);
    t->cpu = malloc((size_t)n * sizeof *t->cpu);
    t->n = n;
    return t->wall && t->cpu;
}

static void timer_start(rep_timer *t) {
    t->wall_start = clock_seconds(CLOCK_MONOTONIC);
    t->cpu_start = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

/* Returns the wall seconds of the repetition; records it when `timed`. */
static double timer_stop(rep_timer *t, int timed) {
    double wall = clock_seconds(CLOCK_MONOTONIC) - t->wall_start;
    double cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - t->cpu_start;
    if (timed && t->timed < t->n) {
        t->wall[t->timed] = wall;
        t->cpu[t->timed] = cpu;
        t->timed++;
    }
    return wall;
}

static void timer_free(rep_timer *t) {
    free(t->wall);
    free(t->cpu);
}

static cJSON *number_array(const double *values, long n) {
    cJSON *array = cJSON_CreateArray();
    for (long i = 0; i < n; i++) cJSON_AddItemToArray(array, cJSON_CreateNumber(values[i]));
    return array;
}

/* Fields every result carries: timings, threads, memory, versions. */
static void add_timing(cJSON *obj, const rep_timer *t) {
    double median = median_of(t->wall, t->timed);
    cJSON_AddNumberToObject(obj, "median_seconds", median);
    double lowest = t->wall[0];
    for (long i = 1; i < t->timed; i++)
        if (t->wall[i] < lowest) lowest = t->wall[i];
    cJSON_AddNumberToObject(obj, "min_seconds", lowest);
    cJSON_AddItemToObject(obj, "seconds", number_array(t->wall, t->timed));
    /* cores actually used: CPU seconds per wall second, median over repetitions */
    double *busy = malloc((size_t)t->timed * sizeof *busy);
    if (busy) {
        for (long i = 0; i < t->timed; i++) busy[i] = t->wall[i] > 0 ? t->cpu[i] / t->wall[i] : 0.0;
        cJSON_AddNumberToObject(obj, "cpu_per_wall", median_of(busy, t->timed));
        free(busy);
    }
}

static void add_common(cJSON *obj, const char *bench, const bench_options *o, int threads,
                       const rc_backend *be) {
    cJSON_AddStringToObject(obj, "bench", bench);
    cJSON_AddStringToObject(obj, "impl", "rewardc");
    cJSON_AddStringToObject(obj, "version", RC_VERSION);
    cJSON_AddNumberToObject(obj, "threads", threads);
    cJSON_AddNumberToObject(obj, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(obj, "steps", (double)o->steps);
    cJSON_AddNumberToObject(obj, "seed", (double)o->seed);
    if (be) {
        cJSON_AddStringToObject(obj, "backend", be->name);
        cJSON_AddStringToObject(obj, "device", be->device);
    }
}

/* Prints the one summary line and writes --json. */
static int emit(cJSON *obj, const bench_options *o) {
    cJSON_AddNumberToObject(obj, "peak_rss_mib", peak_rss_mib());
    char *line = cJSON_PrintUnformatted(obj);
    int rc = 0;
    if (!line) {
        fprintf(stderr, "rewardc bench: cannot format the result\n");
        rc = 1;
    } else {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }
    if (o->json_path && rc_json_save_file(o->json_path, obj) != RC_OK) {
        fprintf(stderr, "rewardc bench: %s\n", rc_last_error());
        rc = 1;
    }
    cJSON_Delete(obj);
    return rc;
}

static cJSON *model_summary(rc_model *m, const char *dir) {
    const rc_model_config *c = rc_model_get_config(m);
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "dir", dir);
    cJSON_AddStringToObject(obj, "model_type", rc_family_model_type(c->family));
    cJSON_AddNumberToObject(obj, "num_key_value_heads", c->num_key_value_heads);
    cJSON_AddNumberToObject(obj, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(obj, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(obj, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(obj, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(obj, "ffn_dim", c->ffn_dim);
    cJSON_AddNumberToObject(obj, "word_embed_proj_dim", c->word_embed_proj_dim);
    cJSON_AddNumberToObject(obj, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(obj, "parameters", (double)rc_model_num_parameters(m));
    rc_memory_plan plan = rc_model_memory_plan(m);
    cJSON *bytes = cJSON_AddObjectToObject(obj, "memory_plan_bytes");
    cJSON_AddNumberToObject(bytes, "params", (double)plan.params);
    cJSON_AddNumberToObject(bytes, "grads", (double)plan.grads);
    cJSON_AddNumberToObject(bytes, "optimizer", (double)plan.optimizer);
    cJSON_AddNumberToObject(bytes, "activations", (double)plan.activations);
    return obj;
}

/* ---- the batch ---- */

typedef struct {
    int rows, T;
    int32_t *ids, *mask;
    long real_tokens; /* positions with mask 1 */
} bench_batch;

/* Random ids in [3, vocab) other than the pad id (above OPT's <s>, <pad> and
 * </s>, SmolLM2's three specials), so the reward is read at a row's last
 * real token. With `varied`, each row's length is uniform in [ceil(T/2), T]
 * and the batch is right-padded to its longest row, as the trainer pads. */
static rc_status make_batch(const rc_model_config *c, int rows, int T, int varied, uint64_t seed,
                            bench_batch *b) {
    memset(b, 0, sizeof *b);
    if (c->vocab_size <= 3)
        return rc_fail(RC_ERR_INVALID_ARG, "vocab_size %d leaves no ordinary token ids", c->vocab_size);
    int *lengths = malloc((size_t)rows * sizeof *lengths);
    b->ids = malloc((size_t)rows * T * sizeof *b->ids);
    b->mask = malloc((size_t)rows * T * sizeof *b->mask);
    if (!lengths || !b->ids || !b->mask) {
        free(lengths);
        free(b->ids);
        free(b->mask);
        return rc_fail(RC_ERR_OOM, "cannot allocate a %d x %d batch", rows, T);
    }
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    int width = 0;
    for (int r = 0; r < rows; r++) {
        int shortest = (T + 1) / 2;
        lengths[r] = varied ? shortest + (int)rc_rng_below(&rng, (uint64_t)(T - shortest + 1)) : T;
        if (lengths[r] > width) width = lengths[r];
    }
    b->rows = rows;
    b->T = width;
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < width; t++) {
            size_t at = (size_t)r * width + t;
            int real = t < lengths[r];
            int32_t id = 3 + (int32_t)rc_rng_below(&rng, (uint64_t)(c->vocab_size - 3));
            if (id == c->pad_token_id) id = 3; /* a pad id would move the score (Qwen's is high) */
            b->ids[at] = real ? id : c->pad_token_id;
            b->mask[at] = real;
            b->real_tokens += real;
        }
    free(lengths);
    return RC_OK;
}

static void free_batch(bench_batch *b) {
    free(b->ids);
    free(b->mask);
}

static rc_status save_batch(const bench_batch *b, const char *path, const char *bench, long pairs) {
    rc_st_writer *w = NULL;
    int64_t shape[2] = {b->rows, b->T};
    char pairs_text[32];
    snprintf(pairs_text, sizeof pairs_text, "%ld", pairs);
    rc_status st = rc_st_writer_new(&w);
    if (st == RC_OK) st = rc_st_writer_add(w, "input_ids", RC_DTYPE_I32, 2, shape, b->ids);
    if (st == RC_OK) st = rc_st_writer_add(w, "attention_mask", RC_DTYPE_I32, 2, shape, b->mask);
    if (st == RC_OK) st = rc_st_writer_add_metadata(w, "bench", bench);
    /* rows 0..pairs-1 are chosen, pairs..2*pairs-1 rejected (train-step) */
    if (st == RC_OK && pairs > 0) st = rc_st_writer_add_metadata(w, "pairs", pairs_text);
    if (st == RC_OK) st = rc_st_writer_write(w, path);
    rc_st_writer_free(w);
    return st;
}

static void add_batch_fields(cJSON *obj, const bench_batch *b, const char *lengths) {
    cJSON_AddNumberToObject(obj, "rows", b->rows);
    cJSON_AddNumberToObject(obj, "seq_len", b->T);
    cJSON_AddStringToObject(obj, "lengths", lengths);
    cJSON_AddNumberToObject(obj, "tokens", (double)b->rows * b->T);
    cJSON_AddNumberToObject(obj, "real_tokens", (double)b->real_tokens);
}

/* Opens the backend and the model, reserves activations, builds the batch. */
static int open_model(const bench_options *o, int training, long rows, rc_backend **be,
                      rc_model **m, bench_batch *b) {
    *be = NULL;
    *m = NULL;
    memset(b, 0, sizeof *b);
    rc_status st = rc_backend_create(o->backend, (int)o->device, be);
    if (st == RC_OK) st = rc_model_load(o->model, *be, (uint64_t)o->seed, m, NULL);
    if (st == RC_OK)
        st = make_batch(rc_model_get_config(*m), (int)rows, (int)o->seq_len, !strcmp(o->lengths, "varied"),
                        (uint64_t)o->seed, b);
    if (st == RC_OK && o->seq_len > rc_model_get_config(*m)->max_position_embeddings)
        st = rc_fail(RC_ERR_INVALID_ARG, "--seq_len %ld exceeds the model's %d positions", o->seq_len,
                     rc_model_get_config(*m)->max_position_embeddings);
    if (st == RC_OK) st = rc_model_reserve(*m, b->rows, b->T, training);
    if (st == RC_OK && o->batch_path)
        st = save_batch(b, o->batch_path, training ? "train-step" : "score", training ? rows / 2 : 0);
    if (st != RC_OK) {
        fprintf(stderr, "rewardc bench: %s\n", rc_last_error());
        free_batch(b);
        rc_model_free(*m);
        rc_backend_destroy(*be);
        *m = NULL;
        *be = NULL;
        return 0;
    }
    return 1;
}

/* ---- train-step ---- */

static int bench_train_step(const bench_options *o, int threads) {
    const long pairs = o->rows, rows = 2 * pairs;
    rc_backend *be;
    rc_model *m;
    bench_batch b;
    if (!open_model(o, 1, rows, &be, &m, &b)) return 1;
    rc_adamw_config adamw = {.learning_rate = o->learning_rate, .beta1 = 0.9, .beta2 = 0.999,
                             .epsilon = 1e-8, .weight_decay = o->weight_decay};
    rc_adamw *opt = NULL;
    float *rewards = malloc((size_t)rows * sizeof *rewards);
    float *d_rewards = malloc((size_t)rows * sizeof *d_rewards);
    double *losses = malloc((size_t)(o->warmup + o->steps) * sizeof *losses);
    rep_timer timer;
    int ok = timer_init(&timer, o->steps) && rewards && d_rewards && losses;
    rc_status st = ok ? rc_adamw_create(m, &adamw, &opt) : rc_fail(RC_ERR_OOM, "out of memory");
    const long total = o->warmup + o->steps;
    for (long step = 0; step < total && st == RC_OK; step++) {
        rc_pair_stats stats;
        timer_start(&timer);
        rc_model_zero_grad(m);
        st = rc_model_forward(m, b.ids, b.mask, b.rows, b.T, rewards);
        if (st != RC_OK) break;
        rc_pairwise_loss(rewards, NULL, NULL, (int)pairs, 0.0, 1.0, d_rewards, &stats);
        st = rc_model_backward(m, d_rewards);
        if (st != RC_OK) break;
        double norm = rc_grad_norm(m);
        st = rc_adamw_step(opt, o->learning_rate, rc_clip_factor(norm, o->max_grad_norm));
        double seconds = timer_stop(&timer, step >= o->warmup);
        losses[step] = stats.loss;
        fprintf(stderr, "rewardc bench train-step: %s %ld/%ld %.3f s, loss %.6f, grad norm %.4f\n",
                step < o->warmup ? "warm-up" : "step", step < o->warmup ? step + 1 : step - o->warmup + 1,
                step < o->warmup ? o->warmup : o->steps, seconds, stats.loss, norm);
    }
    int rc = 1;
    if (st == RC_OK) {
        cJSON *obj = cJSON_CreateObject();
        add_common(obj, "train-step", o, threads, be);
        cJSON_AddItemToObject(obj, "model", model_summary(m, o->model));
        cJSON_AddNumberToObject(obj, "pairs", (double)pairs);
        add_batch_fields(obj, &b, o->lengths);
        cJSON_AddNumberToObject(obj, "learning_rate", o->learning_rate);
        cJSON_AddNumberToObject(obj, "weight_decay", o->weight_decay);
        cJSON_AddNumberToObject(obj, "max_grad_norm", o->max_grad_norm);
        add_timing(obj, &timer);
        double median = median_of(timer.wall, timer.timed);
        double flops = 3.0 * rc_model_forward_flops(rc_model_get_config(m), b.rows, b.T, 0);
        cJSON_AddNumberToObject(obj, "tokens_per_second", (double)b.rows * b.T / median);
        cJSON_AddNumberToObject(obj, "real_tokens_per_second", (double)b.real_tokens / median);
        cJSON_AddNumberToObject(obj, "model_flops_per_step", flops);
        cJSON_AddNumberToObject(obj, "executed_flops_per_step",
                                3.0 * rc_model_forward_flops(rc_model_get_config(m), b.rows, b.T, b.rows));
        cJSON_AddNumberToObject(obj, "model_flops_per_second", flops / median);
        cJSON_AddItemToObject(obj, "losses", number_array(losses, total));
        rc = emit(obj, o);
    } else {
        fprintf(stderr, "rewardc bench train-step: %s\n", rc_last_error());
    }
    timer_free(&timer);
    free(losses);
    free(rewards);
    free(d_rewards);
    rc_adamw_free(opt);
    free_batch(&b);
    rc_model_free(m);
    rc_backend_destroy(be);
    return rc;
}

/* ---- score ---- */

static int bench_score(const bench_options *o, int threads) {
    rc_backend *be;
    rc_model *m;
    bench_batch b;
    if (!open_model(o, 0, o->rows, &be, &m, &b)) return 1;
    float *rewards = malloc((size_t)b.rows * sizeof *rewards);
    rep_timer timer;
    rc_status st = timer_init(&timer, o->steps) && rewards ? RC_OK : rc_fail(RC_ERR_OOM, "out of memory");
    for (long rep = 0; rep < o->warmup + o->steps && st == RC_OK; rep++) {
        timer_start(&timer);
        st = rc_model_forward(m, b.ids, b.mask, b.rows, b.T, rewards);
        double seconds = timer_stop(&timer, rep >= o->warmup);
        fprintf(stderr, "rewardc bench score: %s %.3f s, reward[0] %.6f\n",
                rep < o->warmup ? "warm-up" : "pass", seconds, st == RC_OK ? rewards[0] : 0.0f);
    }
    int rc = 1;
    if (st == RC_OK) {
        cJSON *obj = cJSON_CreateObject();
        add_common(obj, "score", o, threads, be);
        cJSON_AddItemToObject(obj, "model", model_summary(m, o->model));
        add_batch_fields(obj, &b, o->lengths);
        add_timing(obj, &timer);
        double median = median_of(timer.wall, timer.timed);
        double flops = rc_model_forward_flops(rc_model_get_config(m), b.rows, b.T, 0);
        cJSON_AddNumberToObject(obj, "sequences_per_second", b.rows / median);
        cJSON_AddNumberToObject(obj, "tokens_per_second", (double)b.rows * b.T / median);
        cJSON_AddNumberToObject(obj, "model_flops_per_pass", flops);
        cJSON_AddNumberToObject(obj, "executed_flops_per_pass",
                                rc_model_forward_flops(rc_model_get_config(m), b.rows, b.T, b.rows));
        cJSON_AddNumberToObject(obj, "model_flops_per_second", flops / median);
        double first[8];
        int n_first = b.rows < 8 ? b.rows : 8;
        for (int i = 0; i < n_first; i++) first[i] = rewards[i];
        cJSON_AddItemToObject(obj, "rewards_head", number_array(first, n_first));
        rc = emit(obj, o);
    } else {
        fprintf(stderr, "rewardc bench score: %s\n", rc_last_error());
    }
    timer_free(&timer);
    free(rewards);
    free_batch(&b);
    rc_model_free(m);
    rc_backend_destroy(be);
    return rc;
}

/* ---- sgemm ---- */

/* Largest relative error of a few entries of C = A B ([M, K] x [K, N])
 * against double sums, so a broken or skipped product cannot pass for a fast
 * one. */
static double spot_check(const float *A, const float *B, const float *C, int M, int N, int K) {
    const int probes[4][2] = {{0, 0}, {M - 1, N - 1}, {M / 2, N / 3}, {M / 3, N - 1}};
    double worst = 0.0;
    for (int p = 0; p < 4; p++) {
        int i = probes[p][0], j = probes[p][1];
        double want = 0.0, magnitude = 0.0;
        for (int k = 0; k < K; k++) {
            want += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
            magnitude += fabs((double)A[(size_t)i * K + k] * B[(size_t)k * N + j]);
        }
        double err = fabs(want - C[(size_t)i * N + j]) / (magnitude > 0 ? magnitude : 1.0);
        if (err > worst) worst = err;
    }
    return worst;
}

static int bench_sgemm(const bench_options *o, int threads) {
    const int M = (int)(o->m ? o->m : o->size), N = (int)(o->n ? o->n : o->size);
    const int K = (int)(o->k ? o->k : o->size);
    const size_t a_count = (size_t)M * K, b_count = (size_t)K * N, c_count = (size_t)M * N;
    float *A = malloc(a_count * sizeof *A), *B = malloc(b_count * sizeof *B);
    float *C = malloc(c_count * sizeof *C);
    const double flops = 2.0 * M * N * (double)K;
    rep_timer timer;
    if (!A || !B || !C || !timer_init(&timer, o->steps)) {
        fprintf(stderr, "rewardc bench sgemm: cannot allocate the %d x %d x %d product's matrices\n",
                M, N, K);
        free(A);
        free(B);
        free(C);
        return 1;
    }
    rc_rng rng;
    rc_rng_seed(&rng, (uint64_t)o->seed);
    for (size_t i = 0; i < a_count; i++) A[i] = (float)(2.0 * rc_rng_uniform(&rng) - 1.0);
    for (size_t i = 0; i < b_count; i++) B[i] = (float)(2.0 * rc_rng_uniform(&rng) - 1.0);

    const char *impl = "cblas_sgemm";
    rc_backend *be = NULL;
    rc_buffer *buf = NULL;
    rc_status st = RC_OK;
#ifndef RC_HAVE_BLAS
    if (!o->backend_given) {
        impl = "cpu backend gemm (built without BLAS)";
    }
    const int use_backend = 1;
#else
    const int use_backend = o->backend_given;
#endif
    if (use_backend) {
        if (o->backend_given) impl = "backend gemm";
        st = rc_backend_create(o->backend, (int)o->device, &be);
        if (st == RC_OK) st = be->alloc(be, a_count + b_count + c_count, &buf);
        if (st == RC_OK) st = be->upload(be, (rc_view){buf, 0}, A, a_count);
        if (st == RC_OK) st = be->upload(be, (rc_view){buf, a_count}, B, b_count);
    }
    for (long rep = 0; rep < o->warmup + o->steps && st == RC_OK; rep++) {
        timer_start(&timer);
        if (use_backend) {
            be->gemm(be, 0, 0, M, N, K, 1.0f, (rc_view){buf, 0}, K, (rc_view){buf, a_count}, N,
                     0.0f, (rc_view){buf, a_count + b_count}, N);
            st = be->sync(be);
        } else {
#ifdef RC_HAVE_BLAS
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f,
                        C, N);
#endif
        }
        double seconds = timer_stop(&timer, rep >= o->warmup);
        fprintf(stderr, "rewardc bench sgemm: %s %.4f s, %.2f GFLOP/s\n",
                rep < o->warmup ? "warm-up" : "product", seconds, flops / seconds / 1e9);
    }
    if (st == RC_OK && use_backend)
        st = be->download(be, C, (rc_view){buf, a_count + b_count}, c_count);
    int rc = 1;
    if (st == RC_OK) {
        double err = spot_check(A, B, C, M, N, K);
        if (err > 1e-4) {
            fprintf(stderr, "rewardc bench sgemm: the product is wrong (relative error %.2e)\n", err);
        } else {
            cJSON *obj = cJSON_CreateObject();
            add_common(obj, "sgemm", o, threads, be);
            cJSON_AddStringToObject(obj, "gemm", impl);
            if (M == N && N == K) cJSON_AddNumberToObject(obj, "size", M);
            cJSON_AddNumberToObject(obj, "m", M);
            cJSON_AddNumberToObject(obj, "n", N);
            cJSON_AddNumberToObject(obj, "k", K);
            add_timing(obj, &timer);
            double median = median_of(timer.wall, timer.timed);
            cJSON_AddNumberToObject(obj, "flops", flops);
            cJSON_AddNumberToObject(obj, "flops_per_second", flops / median);
            cJSON_AddNumberToObject(obj, "spot_check_relative_error", err);
            rc = emit(obj, o);
        }
    } else {
        fprintf(stderr, "rewardc bench sgemm: %s\n", rc_last_error());
    }
    if (buf) be->free(be, buf);
    rc_backend_destroy(be);
    timer_free(&timer);
    free(A);
    free(B);
    free(C);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || arg_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int command = !strcmp(argv[1], "train-step") ? FOR_TRAIN
                  : !strcmp(argv[1], "score")    ? FOR_SCORE
                  : !strcmp(argv[1], "sgemm")    ? FOR_SGEMM
                                                 : 0;
    if (!command) {
        fprintf(stderr, "rewardc bench: unknown benchmark '%s' (train-step, score, sgemm)\n", argv[1]);
        return 2;
    }
    bench_options o = {.backend = "cpu", .lengths = "full", .rows = command == FOR_TRAIN ? 4 : 8,
                       .seq_len = 256, .steps = 5, .warmup = 1, .seed = 1234, .size = 2048,
                       .learning_rate = 1e-5, .weight_decay = 0.01, .max_grad_norm = 1.0};
    int rc = parse_options(argc - 1, argv + 1, command, &o);
    if (rc) return rc < 0 ? 0 : rc;
    int threads = rc_set_num_threads((int)o.threads);
    if (command == FOR_TRAIN) return bench_train_step(&o, threads);
    if (command == FOR_SCORE) return bench_score(&o, threads);
    return bench_sgemm(&o, threads);
}
