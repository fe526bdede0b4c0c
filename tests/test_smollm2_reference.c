/* The real pretrained SmolLM2-135M-Instruct (the shared Q4_1 GGUF) in rewardc
 * against transformers on the same weights (golden/smollm2/, made by
 * tools/ref_smollm2.py; skipped when ../shared/data lacks the GGUF):
 *   - rewardc's tokenizer and chat template give the reference's ids for 104
 *     real texts (HH-RLHF harmless dev dialogues in ChatML, IMDB train reviews);
 *   - in the reference's batches, the pooled index exactly, the score head's
 *     input there (the final RMSNorm's output) and the reward;
 *   - one training step of 4 HH pairs: rewards, loss and the gradients of
 *     layers 28-29, the final norm and the score head.
 *
 * The bounds. Both sides compute in float32 from bit-identical weights, in
 * different orders (OpenBLAS's blocked kernels, rewardc's fused attention,
 * torch's eager attention), so neither is exact: each is the exact value plus
 * its own rounding. The golden holds the exact value too, up to ~1e-15: a
 * float64 rerun of transformers (RMSNorm, RoPE tables and softmax in float64
 * as well), stored rounded to float32 (a relative 3e-8, negligible here).
 *
 * What float32 accumulation over 30 layers should give: a dot product of
 * length n summed in float32 errs by about u*sqrt(n/2) relative (u = 2^-24,
 * rounding errors as a random walk over partial sums), 1.7e-6 for the longest
 * products here (down_proj, n = 1536; attention sums up to 512 keys). Each
 * layer adds two branch outputs (attention, MLP) to the residual stream, so
 * 30 layers add 60 such errors, as a random walk: A_PRIORI = 1.7e-6 *
 * sqrt(60) = 1.3e-5 relative per implementation, at most, as it ignores that
 * a branch output is only a fraction of the stream it joins. The final
 * RMSNorm rescales, so the relative error carries to the head's input.
 * Measured (the float64 rerun): transformers' float32 head input is off by a
 * relative norm of at most 2.5e-6 over the 104 texts (f32_error below,
 * computed from the golden and checked to be under A_PRIORI).
 * The bound: ||h_rc - h_ref|| <= ||h_rc - h_exact|| + ||h_ref - h_exact||.
 * Another correct float32 order of the same sums may be up to ~3x less
 * accurate (recursive vs blocked summation of n = 1536: sqrt(1536/256) =
 * 2.4), so rewardc's own error must stay under 3 * f32_error (checked
 * against float64 directly, on the maximum over the texts, as one text's
 * error is noisy), and per text ||h_rc - h_ref|| / ||h_ref|| <= 4 * f32_error
 * = 1e-5: the tiny goldens' 1e-5, now on 30 layers of a real model.
 * (Tried: rewardc's composed attention, another order, is 4.3e-6 off; a
 * layer-15 RMSNorm weight scaled by 1 + 1e-5, a bug, is 1.9e-5 off and fails.)
 * The reward r = w.h: by Cauchy-Schwarz |dr| <= ||w|| ||dh|| plus the dot's
 * own u*sqrt(576) rounding, i.e. (4 * f32_error + u*sqrt(576)) ||w|| ||h||.
 * Gradients the same way: transformers' float32 gradients of these tensors
 * are off float64 by NMSE <= 4.5e-11 (relative 6.7e-6: more than the hidden
 * states, as the pairwise loss's gradient is a difference of the chosen and
 * rejected rows' contributions, which cancel in part; 1.2e-10 for the row
 * sums of squares, whose relative error is twice their terms'), so per
 * tensor NMSE(rewardc, reference) <= (1 + 3)^2 * that worst NMSE, and
 * NMSE(rewardc, float64) <= 3^2 * it (elements and row sums apart). */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "rewardc/gguf_import.h"
#include "rewardc/io.h"
#include "rewardc/model.h"
#include "rewardc/safetensors.h"
#include "rewardc/tokenizer.h"
#include "rewardc/train.h"
#include "testlib.h"

static const double UNIT_ROUNDOFF = 5.96e-8; /* 2^-24 */
static const double A_PRIORI = 1.3e-5;       /* float32's error on the head's input, at most */
static const double OTHER_ORDER = 3.0;       /* how much less accurate another order may be */
/* (1 + OTHER_ORDER) times transformers' float32 error, measured from the golden */
static double f32_error; /* its worst relative error on the head's input */
static double hidden_rel_tol, grad_nmse_tol, rowsq_nmse_tol;
enum { PAD_ID = 2, MAX_ROWS = 8, MAX_T = 512, GRAD_LAYER0 = 28, GRAD_LAYERS = 2 };

static const char *const MATRICES[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                       "mlp.down_proj"};
static const char *const VECTORS[] = {"input_layernorm", "post_attention_layernorm"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A tensor of the reference file, malloc'd; NULL (and a failed check) when absent. */
static void *read_tensor(rc_safetensors *st, const char *name, int is_int, size_t *n_out) {
    const rc_tensor_view *t = rc_st_find(st, name);
    CHECK(t != NULL, "reference tensor %s missing", name);
    if (!t) return NULL;
    size_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= (size_t)t->shape[d];
    void *data = malloc(n * 4);
    rc_status s = !data      ? RC_ERR_OOM
                  : is_int ? rc_st_read_i32(st, name, data, n)
                           : rc_st_read_f32(st, name, data, n);
    CHECK(s == RC_OK, "reading %s: %s", name, rc_last_error());
    if (s != RC_OK) {
        free(data);
        return NULL;
    }
    if (n_out) *n_out = n;
    return data;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ||a - b|| / ||b|| */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0.0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(d / dot(b, b, n));
}

/* ---- tokens ---- */

/* rewardc's tokenizer on the texts gives the reference ids, and its chat
 * template renders each HH dialogue's messages to the reference text. */
static void check_tokens(const char *model_dir, const cJSON *texts, const int32_t *ids,
                         const int32_t *lengths, int n) {
    rc_tokenizer *tok = NULL;
    rc_chat_template *chat = NULL;
    CHECK(rc_tokenizer_load(model_dir, &tok) == RC_OK, "tokenizer: %s", rc_last_error());
    CHECK(rc_chat_template_load(model_dir, &chat) == RC_OK, "chat template: %s", rc_last_error());
    if (!tok || !chat) goto done;
    CHECK(rc_tokenizer_pad_id(tok) == PAD_ID, "pad id %d", rc_tokenizer_pad_id(tok));
    size_t offset = 0;
    int same = 0, rendered = 0;
    for (int i = 0; i < n; offset += (size_t)lengths[i], i++) {
        const cJSON *item = cJSON_GetArrayItem(texts, i);
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "text"));
        const char *source = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "source"));
        CHECK(text && source, "texts.json[%d]: text and source", i);
        if (!text || !source) continue;
        int32_t *got = NULL;
        size_t n_got = 0;
        CHECK(rc_tokenizer_encode(tok, text, strlen(text), 1, &got, &n_got) == RC_OK, "%s", rc_last_error());
        int equal = got && n_got == (size_t)lengths[i] && !memcmp(got, ids + offset, n_got * sizeof *got);
        CHECK(equal, "%s: rewardc's ids (%zu) differ from the reference's (%d)", source, n_got, lengths[i]);
        same += equal;
        free(got);
        const cJSON *messages = cJSON_GetObjectItemCaseSensitive(item, "messages");
        if (!cJSON_IsArray(messages)) continue;
        int n_msg = cJSON_GetArraySize(messages);
        rc_chat_message *msg = calloc((size_t)n_msg, sizeof *msg);
        for (int k = 0; msg && k < n_msg; k++) {
            const cJSON *m = cJSON_GetArrayItem(messages, k);
            msg[k].role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
            msg[k].content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content"));
        }
        char *out = NULL;
        CHECK(msg && rc_chat_template_render(chat, msg, (size_t)n_msg, 0, &out, NULL) == RC_OK, "%s: render: %s",
              source, rc_last_error());
        CHECK(out && !strcmp(out, text), "%s: rewardc's chat template renders a different text", source);
        rendered += out && !strcmp(out, text);
        free(out);
        free(msg);
    }
    printf("tokens: %d/%d texts give the reference ids; %d HH dialogues rendered as transformers renders them\n",
           same, n, rendered);
done:
    rc_chat_template_free(chat);
    rc_tokenizer_free(tok);
}

/* ---- the forward passes ---- */

typedef struct {
    int n, dim;
    int32_t *ids, *lengths, *batch, *pooled;
    size_t *offset;
    float *hidden, *rewards, *hidden64, *rewards64, *head;
} reference;

/* Right-pads the texts `rows` (indices) into ids/mask [count, T]. */
static int pad_rows(const reference *r, const int *rows, int count, int32_t *ids, int32_t *mask) {
    int T = 0;
    for (int k = 0; k < count; k++) T = r->lengths[rows[k]] > T ? r->lengths[rows[k]] : T;
    for (int k = 0; k < count; k++)
        for (int t = 0; t < T; t++) {
            int real = t < r->lengths[rows[k]];
            ids[(size_t)k * T + t] = real ? r->ids[r->offset[rows[k]] + t] : PAD_ID;
            mask[(size_t)k * T + t] = real;
        }
    return T;
}

typedef struct {
    double hidden_rel, hidden_abs, reward_abs, reward_rel; /* rewardc vs torch float32 */
    double rc64, t64, rc64_reward, t64_reward;             /* each vs float64 */
} errors;

static void worst(double *slot, double value) {
    if (value > *slot) *slot = value;
}

static void check_scores(rc_model *m, const reference *r) {
    int32_t ids[MAX_ROWS * MAX_T], mask[MAX_ROWS * MAX_T];
    float rewards[MAX_ROWS], *hidden = malloc((size_t)MAX_ROWS * r->dim * sizeof *hidden);
    int rows[MAX_ROWS];
    const double w_norm = sqrt(dot(r->head, r->head, (size_t)r->dim));
    errors e = {0};
    int n_batches = 0, done = 0;
    for (int b = 0; done < r->n; b++) {
        int count = 0;
        for (int i = 0; i < r->n; i++)
            if (r->batch[i] == b && count < MAX_ROWS) rows[count++] = i;
        if (count == 0) {
            CHECK(0, "reference batch %d is empty", b);
            break;
        }
        done += count, n_batches++;
        int T = pad_rows(r, rows, count, ids, mask);
        rc_status st = rc_model_forward(m, ids, mask, count, T, rewards);
        CHECK(st == RC_OK, "batch %d forward: %s", b, rc_last_error());
        if (st != RC_OK) continue;
        CHECK(rc_model_pooled_hidden(m, hidden, (size_t)count * r->dim) == RC_OK, "%s", rc_last_error());
        const int32_t *pooled = rc_model_pooled_index(m);
        for (int k = 0; k < count; k++) {
            const int i = rows[k];
            const float *h = hidden + (size_t)k * r->dim, *want = r->hidden + (size_t)i * r->dim,
                        *exact = r->hidden64 + (size_t)i * r->dim;
            CHECK(pooled[k] == r->pooled[i], "text %d: pooled index %d, reference %d", i, pooled[k], r->pooled[i]);
            const double rel = rel_err(h, want, (size_t)r->dim);
            CHECK(rel <= hidden_rel_tol, "text %d (%d tokens): hidden state off by %.2e relative (bound %.2e)", i,
                  r->lengths[i], rel, hidden_rel_tol);
            const double h_norm = sqrt(dot(want, want, (size_t)r->dim));
            const double reward_tol = (hidden_rel_tol + UNIT_ROUNDOFF * sqrt(r->dim)) * w_norm * h_norm;
            const double dr = fabs((double)rewards[k] - r->rewards[i]);
            CHECK(dr <= reward_tol, "text %d: reward %.7f, reference %.7f (bound %.2e)", i, rewards[k], r->rewards[i],
                  reward_tol);
            worst(&e.hidden_rel, rel);
            for (int j = 0; j < r->dim; j++) worst(&e.hidden_abs, fabs((double)h[j] - want[j]));
            worst(&e.reward_abs, dr);
            worst(&e.reward_rel, dr / (w_norm * h_norm));
            worst(&e.rc64, rel_err(h, exact, (size_t)r->dim));
            worst(&e.t64, rel_err(want, exact, (size_t)r->dim));
            worst(&e.rc64_reward, fabs((double)rewards[k] - r->rewards64[i]));
            worst(&e.t64_reward, fabs((double)r->rewards[i] - r->rewards64[i]));
        }
    }
    printf("scores: %d texts in %d batches; rewardc vs transformers float32: hidden state max rel %.2e "
           "(bound %.2e), max abs %.2e; reward max abs %.2e, max |dr|/(|w||h|) %.2e\n",
           done, n_batches, e.hidden_rel, hidden_rel_tol, e.hidden_abs, e.reward_abs, e.reward_rel);
    CHECK(e.rc64 <= OTHER_ORDER * f32_error, "rewardc's hidden states are off float64 by %.2e, more than %.0f x "
          "transformers' float32 (%.2e)", e.rc64, OTHER_ORDER, f32_error);
    printf("scores vs float64: hidden max rel rewardc %.2e, transformers float32 %.2e; reward max abs "
           "rewardc %.2e, transformers float32 %.2e\n",
           e.rc64, e.t64, e.rc64_reward, e.t64_reward);
    free(hidden);
}

/* ---- the training step ---- */

static double worst_grad_nmse, worst_rowsq_nmse; /* rewardc vs the reference */

/* NMSE of got vs the reference want within tol (tol / (1 + OTHER_ORDER)^2 is
 * the reference's own worst float32 NMSE), and of got vs float64 within
 * OTHER_ORDER^2 of that. */
static void compare_grad(const char *what, const float *want, const float *want64, const float *got, size_t n,
                         double tol, double *worst_nmse) {
    double max_abs, unused;
    const double nmse = test_nmse(want, got, n, &max_abs);
    const double own = test_nmse(want64, got, n, &unused), ref = test_nmse(want64, want, n, &unused);
    const double own_tol = tol * OTHER_ORDER * OTHER_ORDER / ((1 + OTHER_ORDER) * (1 + OTHER_ORDER));
    CHECK(nmse <= tol, "%s: NMSE %.2e > %.2e (max abs %.2e)", what, nmse, tol, max_abs);
    CHECK(own <= own_tol, "%s: NMSE vs float64 %.2e > %.2e", what, own, own_tol);
    if (nmse > *worst_nmse) *worst_nmse = nmse;
    printf("  %-52s NMSE %.2e (vs float64: rewardc %.2e, transformers %.2e)\n", what, nmse, own, ref);
}

/* The compared gradients: layers 28-29's matrices and norms, the final norm
 * and the score head, by index k. */
enum { N_MATRICES = sizeof MATRICES / sizeof *MATRICES, N_VECTORS = sizeof VECTORS / sizeof *VECTORS };
static int n_grad_names(void) { return GRAD_LAYERS * (N_MATRICES + N_VECTORS) + 2; }
static int is_matrix(int k) { return k < GRAD_LAYERS * (N_MATRICES + N_VECTORS) && k % (N_MATRICES + N_VECTORS) < N_MATRICES; }
static const char *grad_name(int k, char *buf, size_t size) {
    const int per_layer = N_MATRICES + N_VECTORS;
    if (k == GRAD_LAYERS * per_layer) return "model.norm.weight";
    if (k == GRAD_LAYERS * per_layer + 1) return "score.weight";
    const int j = k % per_layer;
    snprintf(buf, size, "model.layers.%d.%s.weight", GRAD_LAYER0 + k / per_layer,
             j < N_MATRICES ? MATRICES[j] : VECTORS[j - N_MATRICES]);
    return buf;
}

/* The worst NMSE of the reference's float32 array `key` against its float64
 * rerun key + "_f64", into *worst. */
static void reference_nmse(rc_safetensors *st, const char *key, double *worst) {
    char key64[200];
    snprintf(key64, sizeof key64, "%s_f64", key);
    float *a = read_tensor(st, key, 0, NULL), *b = read_tensor(st, key64, 0, NULL);
    const rc_tensor_view *t = rc_st_find(st, key);
    if (a && b && t) {
        double unused, nmse = test_nmse(b, a, (size_t)(t->n_dims == 2 ? t->shape[0] * t->shape[1] : t->shape[0]),
                                        &unused);
        if (nmse > *worst) *worst = nmse;
    }
    free(a);
    free(b);
}

/* The bounds from transformers' own float32 error (see the top). */
static void calibrate(const reference *r, rc_safetensors *st) {
    for (int i = 0; i < r->n; i++) {
        const double e = rel_err(r->hidden + (size_t)i * r->dim, r->hidden64 + (size_t)i * r->dim, (size_t)r->dim);
        if (e > f32_error) f32_error = e;
    }
    CHECK(f32_error > 0 && f32_error <= A_PRIORI, "reference float32 error %.2e outside (0, %.1e]", f32_error,
          A_PRIORI);
    hidden_rel_tol = (1 + OTHER_ORDER) * f32_error;
    double grad = 0.0, rows = 0.0;
    for (int k = 0; k < n_grad_names(); k++) {
        char buf[128], key[200];
        const char *name = grad_name(k, buf, sizeof buf);
        if (is_matrix(k)) {
            snprintf(key, sizeof key, "grad.%s.sample", name);
            reference_nmse(st, key, &grad);
            snprintf(key, sizeof key, "grad.%s.row_sumsq", name);
            reference_nmse(st, key, &rows);
        } else {
            snprintf(key, sizeof key, "grad.%s", name);
            reference_nmse(st, key, &grad);
        }
    }
    CHECK(grad > 0 && rows > 0, "reference gradients' float32 error is zero");
    grad_nmse_tol = (1 + OTHER_ORDER) * (1 + OTHER_ORDER) * grad;
    rowsq_nmse_tol = (1 + OTHER_ORDER) * (1 + OTHER_ORDER) * rows;
    printf("transformers float32 vs float64: hidden states max rel %.2e (a priori at most %.1e), gradients "
           "max NMSE %.2e, row sums of squares %.2e\n", f32_error, A_PRIORI, grad, rows);
}

static void check_param_grad(rc_model *m, rc_safetensors *st, const char *name, int matrix) {
    const int index = rc_model_find_param(m, name);
    CHECK(index != RC_NO_PARAM, "no parameter %s", name);
    if (index == RC_NO_PARAM) return;
    const rc_param_info *p = rc_model_param(m, index);
    float *g = malloc(p->size * sizeof *g);
    CHECK(rc_model_get_grad(m, index, g, p->size) == RC_OK, "%s: %s", name, rc_last_error());
    char key[160], key64[160], what[160];
    if (!matrix) {
        snprintf(key, sizeof key, "grad.%s", name);
        snprintf(key64, sizeof key64, "grad.%s_f64", name);
        size_t n = 0;
        float *want = read_tensor(st, key, 0, &n), *want64 = read_tensor(st, key64, 0, NULL);
        CHECK(n == p->size, "%s: %zu values, reference %zu", name, p->size, n);
        if (want && want64 && n == p->size) compare_grad(name, want, want64, g, n, grad_nmse_tol, &worst_grad_nmse);
        free(want);
        free(want64);
        free(g);
        return;
    }
    size_t n_index = 0, n_rows = 0;
    snprintf(key, sizeof key, "grad.%s.index", name);
    int32_t *at = read_tensor(st, key, 1, &n_index);
    snprintf(key, sizeof key, "grad.%s.sample", name);
    snprintf(key64, sizeof key64, "grad.%s.sample_f64", name);
    float *want = read_tensor(st, key, 0, NULL), *want64 = read_tensor(st, key64, 0, NULL);
    snprintf(key, sizeof key, "grad.%s.row_sumsq", name);
    snprintf(key64, sizeof key64, "grad.%s.row_sumsq_f64", name);
    float *rows = read_tensor(st, key, 0, &n_rows), *rows64 = read_tensor(st, key64, 0, NULL);
    if (at && want && want64 && rows && rows64 && n_rows == (size_t)p->shape[0]) {
        float *picked = malloc(n_index * sizeof *picked), *sumsq = calloc(n_rows, sizeof *sumsq);
        for (size_t k = 0; k < n_index; k++) picked[k] = at[k] >= 0 && (size_t)at[k] < p->size ? g[at[k]] : NAN;
        for (size_t r = 0; r < n_rows; r++) {
            double s = 0.0;
            for (int c = 0; c < p->shape[1]; c++) s += (double)g[r * p->shape[1] + c] * g[r * p->shape[1] + c];
            sumsq[r] = (float)s;
        }
        snprintf(what, sizeof what, "%s (sampled)", name);
        compare_grad(what, want, want64, picked, n_index, grad_nmse_tol, &worst_grad_nmse);
        snprintf(what, sizeof what, "%s (row sums of squares)", name);
        compare_grad(what, rows, rows64, sumsq, n_rows, rowsq_nmse_tol, &worst_rowsq_nmse);
        free(picked);
        free(sumsq);
    } else {
        CHECK(0, "%s: reference samples incomplete", name);
    }
    free(at);
    free(want);
    free(want64);
    free(rows);
    free(rows64);
    free(g);
}

static void check_training(rc_model *m, rc_safetensors *st, double head_norm) {
    size_t n_rows = 0;
    int32_t *lengths = read_tensor(st, "train.lengths", 1, &n_rows);
    int32_t *flat = read_tensor(st, "train.ids", 1, NULL);
    float *want = read_tensor(st, "train.rewards", 0, NULL), *want64 = read_tensor(st, "train.rewards_f64", 0, NULL);
    float want_loss = 0.0f;
    CHECK(rc_st_read_f32(st, "train.loss", &want_loss, 1) == RC_OK, "train.loss: %s", rc_last_error());
    if (!lengths || !flat || !want || !want64 || n_rows != MAX_ROWS) goto done;
    reference r = {.n = (int)n_rows, .ids = flat, .lengths = lengths};
    size_t offset[MAX_ROWS];
    for (int i = 0, o = 0; i < r.n; o += lengths[i], i++) offset[i] = (size_t)o;
    r.offset = offset;
    int rows[MAX_ROWS];
    for (int i = 0; i < r.n; i++) rows[i] = i;
    int32_t ids[MAX_ROWS * MAX_T], mask[MAX_ROWS * MAX_T];
    const int T = pad_rows(&r, rows, r.n, ids, mask);
    CHECK(rc_model_reserve(m, r.n, T, 1) == RC_OK, "reserve for training: %s", rc_last_error());
    rc_model_set_grad_enabled(m, 1);
    rc_model_zero_grad(m);
    float rewards[MAX_ROWS], d_rewards[MAX_ROWS];
    CHECK(rc_model_forward(m, ids, mask, r.n, T, rewards) == RC_OK, "train forward: %s", rc_last_error());
    rc_pair_stats stats;
    rc_pairwise_loss(rewards, NULL, NULL, r.n / 2, 0.0, 1.0, d_rewards, &stats);
    /* the rewards' bound of check_scores, from rewardc's own |h| here */
    float hidden[MAX_ROWS * 1024];
    const int dim = rc_model_get_config(m)->hidden_size;
    CHECK(dim <= 1024 && rc_model_pooled_hidden(m, hidden, (size_t)r.n * dim) == RC_OK, "%s", rc_last_error());
    double worst_reward = 0.0, loss_tol = 0.0;
    for (int i = 0; i < r.n; i++) {
        const double h_norm = sqrt(dot(hidden + (size_t)i * dim, hidden + (size_t)i * dim, (size_t)dim));
        const double tol = (hidden_rel_tol + UNIT_ROUNDOFF * sqrt(dim)) * head_norm * h_norm;
        const double dr = fabs((double)rewards[i] - want[i]);
        CHECK(dr <= tol, "training row %d: reward %.7f, reference %.7f (bound %.2e)", i, rewards[i], want[i], tol);
        worst(&worst_reward, dr);
        worst(&loss_tol, 2 * tol); /* |dL| <= mean sigmoid(-z) |dz|, |dz| <= |dr_c| + |dr_r| */
    }
    CHECK(fabs(stats.loss - want_loss) <= loss_tol, "loss %.7f, reference %.7f (bound %.2e)", stats.loss, want_loss,
          loss_tol);
    printf("training step: %d sequences of up to %d tokens, loss %.7f (reference %.7f), rewards max abs %.2e\n", r.n,
           T, stats.loss, want_loss, worst_reward);
    CHECK(rc_model_backward(m, d_rewards) == RC_OK, "backward: %s", rc_last_error());
    for (int k = 0; k < n_grad_names(); k++) {
        char name[128];
        check_param_grad(m, st, grad_name(k, name, sizeof name), is_matrix(k));
    }
    printf("gradients: worst NMSE %.2e (bound %.2e), row sums of squares %.2e (bound %.2e)\n", worst_grad_nmse,
           grad_nmse_tol, worst_rowsq_nmse, rowsq_nmse_tol);
done:
    free(lengths);
    free(flat);
    free(want);
    free(want64);
}

/* ---- main ---- */

static int load_reference(rc_safetensors *st, reference *r) {
    size_t n = 0, n_hidden = 0, n_ids = 0;
    r->lengths = read_tensor(st, "lengths", 1, &n);
    r->ids = read_tensor(st, "ids", 1, &n_ids);
    r->batch = read_tensor(st, "batch", 1, NULL);
    r->pooled = read_tensor(st, "pooled_index", 1, NULL);
    r->hidden = read_tensor(st, "hidden", 0, &n_hidden);
    r->rewards = read_tensor(st, "rewards", 0, NULL);
    r->hidden64 = read_tensor(st, "hidden_f64", 0, NULL);
    r->rewards64 = read_tensor(st, "rewards_f64", 0, NULL);
    r->n = (int)n;
    r->dim = n ? (int)(n_hidden / n) : 0;
    r->offset = malloc((n + 1) * sizeof *r->offset);
    if (!r->lengths || !r->ids || !r->batch || !r->pooled || !r->hidden || !r->rewards || !r->hidden64 ||
        !r->rewards64 || !r->offset)
        return 0;
    r->offset[0] = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(r->lengths[i] > 0 && r->lengths[i] <= MAX_T, "text %zu: %d tokens", i, r->lengths[i]);
        if (r->lengths[i] <= 0 || r->lengths[i] > MAX_T) return 0;
        r->offset[i + 1] = r->offset[i] + (size_t)r->lengths[i];
    }
    CHECK(r->offset[n] == n_ids, "ids hold %zu tokens, the lengths %zu", n_ids, r->offset[n]);
    return r->offset[n] == n_ids;
}

static void free_reference(reference *r) {
    free(r->ids);
    free(r->lengths);
    free(r->batch);
    free(r->pooled);
    free(r->offset);
    free(r->hidden);
    free(r->rewards);
    free(r->hidden64);
    free(r->rewards64);
    free(r->head);
}

int main(void) {
    char gguf[4096], dir[4096], path[4200];
    snprintf(gguf, sizeof gguf, "%s/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", test_data_dir());
    if (!rc_path_is_file(gguf)) {
        printf("test_smollm2_reference: %s absent, skipped\n", gguf);
        return TEST_SKIP;
    }
    const double t0 = now();
    snprintf(dir, sizeof dir, "%s/smollm2_reference", test_tmp_dir());
    rc_gguf_import_options opt = {.seed = 42, .overwrite = true}; /* rewardc import's default seed */
    CHECK(rc_gguf_import(gguf, dir, &opt, NULL) == RC_OK, "import: %s", rc_last_error());

    snprintf(path, sizeof path, "%s/smollm2/reference.safetensors", test_golden_dir());
    rc_safetensors *st = NULL;
    reference r = {0};
    cJSON *texts = NULL;
    rc_backend *be = NULL;
    rc_model *m = NULL;
    CHECK(rc_st_open(path, &st) == RC_OK, "%s: %s", path, rc_last_error());
    if (!st || !load_reference(st, &r)) goto done;
    snprintf(path, sizeof path, "%s/smollm2/texts.json", test_golden_dir());
    CHECK(rc_json_load_file(path, &texts) == RC_OK, "%s: %s", path, rc_last_error());
    CHECK(cJSON_GetArraySize(texts) == r.n, "texts.json holds %d texts, the reference %d", cJSON_GetArraySize(texts),
          r.n);
    if (!texts || cJSON_GetArraySize(texts) != r.n) goto done;
    check_tokens(dir, texts, r.ids, r.lengths, r.n);
    calibrate(&r, st);

    CHECK(rc_backend_create("cpu", 0, &be) == RC_OK, "cpu backend: %s", rc_last_error());
    CHECK(be && rc_model_load(dir, be, 0, &m, NULL) == RC_OK, "load %s: %s", dir, rc_last_error());
    if (!m) goto done;
    const int head = rc_model_find_param(m, "score.weight");
    r.head = malloc((size_t)r.dim * sizeof *r.head);
    CHECK(head != RC_NO_PARAM && rc_model_get_param(m, head, r.head, (size_t)r.dim) == RC_OK, "score.weight: %s",
          rc_last_error());
    CHECK(rc_model_reserve(m, MAX_ROWS, MAX_T, 0) == RC_OK, "reserve: %s", rc_last_error());
    const double t1 = now();
    check_scores(m, &r);
    const double t2 = now();
    check_training(m, st, sqrt(dot(r.head, r.head, (size_t)r.dim)));
    printf("time: import and load %.1f s, %d texts %.1f s, training step %.1f s\n", t1 - t0, r.n, t2 - t1,
           now() - t2);
done:
    rc_model_free(m);
    if (be) rc_backend_destroy(be);
    cJSON_Delete(texts);
    free_reference(&r);
    rc_st_close(st);
    return test_finish("test_smollm2_reference");
}
