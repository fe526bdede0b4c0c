/* Gradient accumulation and padding invariance of the training step.
 *
 * 1. Accumulation: the pairwise loss is a mean over pairs, so the gradient of
 *    one batch of 4 pairs must equal the sum of the gradients of two
 *    micro-batches of 2 pairs, each taken with rc_pairwise_loss grad_scale 0.5
 *    (what the trainer does with gradient_accumulation_steps 2). The pairs
 *    have differing lengths and are right-padded, so each micro-batch has its
 *    own padded length T, different from the full batch's.
 * 2. Padding: a sequence padded with pad tokens (mask 0) up to T = 12 must get
 *    the same reward and contribute the same gradient as at its natural
 *    length: with right padding and a causal mask no real token attends to a
 *    pad, and the reward is read at the last real token.
 * 3. Packing: pairs packed one per row with their shared prompt prefix laid
 *    out once (rc_pack_pairs, rc_model_forward_packed) must give the rewards
 *    and gradients of the same pairs one sequence per padded row. The prefix
 *    gets the gradient of both responses through the attention of each.
 *    A row of three sequences sharing a prefix scores each as alone.
 * 4. Grad mode: a forward with gradients off gives the same rewards, and no
 *    backward. Attention chunks: long left-padded rows, several sequences per
 *    attention chunk, against the same rows one per batch.
 *
 * Tolerance. Both sides compute the same sums in float; only the summation
 * order differs (BLAS blocks a 8-row batch differently from a 4-row one, and
 * accumulation adds two partial gradients in float). Each gradient element is
 * a sum of at most a few hundred products, so its relative error is at most
 * ~sqrt(300) * 2^-24 ~ 1e-6 of the element's magnitude, an NMSE around 1e-12;
 * 1e-10 leaves 100x headroom. A real bug (a wrong grad_scale, a pad leaking
 * into attention or pooling) gives an NMSE of 1e-3 or more; the test checks
 * that a deliberately wrong scale is caught. Rewards here are below 2.5 in
 * magnitude, where a float's spacing is at most 2.4e-7; the padded, natural
 * and packed forwards differ only in summation order (a few ulps: 4.8e-7 at
 * worst observed for padding, 9.5e-7 for packing), so they must agree within
 * 1e-6 absolute. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rewardc/model.h"
#include "rewardc/train.h"
#include "rewardc/workflow.h"
#include "testlib.h"

enum { PAD = 1, BOS = 2, VOCAB = 53, N_PAIRS = 4, PADDED_T = 12 };

static const double GRAD_NMSE_LIMIT = 1e-10;
static const double REWARD_ABS_LIMIT = 1e-6;

/* A small OPT; proj != hidden adds project_in/project_out. init_std is larger
 * than OPT's 0.02 so that rewards and gradients are far from zero. */
static rc_model_config small_config(int hidden, int proj, int pre_ln) {
    rc_model_config c;
    rc_model_config_defaults(RC_FAMILY_OPT, &c);
    c.vocab_size = VOCAB;
    c.hidden_size = hidden;
    c.num_hidden_layers = 2;
    c.ffn_dim = 40;
    c.num_attention_heads = 4;
    c.max_position_embeddings = 32;
    c.head_dim = hidden / c.num_attention_heads;
    c.num_key_value_heads = c.num_attention_heads;
    c.word_embed_proj_dim = proj;
    c.do_layer_norm_before = c.final_norm = pre_ln;
    c.pad_token_id = PAD;
    c.bos_token_id = BOS;
    c.eos_token_id = BOS;
    c.init_std = 0.3f;
    return c;
}

/* Deterministic token ids in [3, VOCAB): never pad or BOS inside a sequence. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static int32_t random_token(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)(3 + (rng_state >> 33) % (VOCAB - 3));
}

typedef struct {
    int32_t tokens[2][PADDED_T]; /* chosen, rejected */
    size_t len[2];
} pair;

static void make_pairs(pair *pairs) {
    /* differing lengths, chosen and rejected unequal, between 2 and 11 */
    static const size_t lens[N_PAIRS][2] = {{5, 9}, {11, 3}, {2, 7}, {8, 8}};
    for (int p = 0; p < N_PAIRS; p++)
        for (int s = 0; s < 2; s++) {
            pairs[p].len[s] = lens[p][s];
            pairs[p].tokens[s][0] = BOS;
            for (size_t t = 1; t < lens[p][s]; t++) pairs[p].tokens[s][t] = random_token();
        }
}

typedef struct {
    rc_model *model;
    size_t n_params;
    float *grad;  /* all gradients, concatenated in table order */
} harness;

static void gather_grads(harness *h) {
    size_t off = 0;
    for (int i = 0; i < rc_model_param_count(h->model); i++) {
        const rc_param_info *p = rc_model_param(h->model, i);
        rc_status st = rc_model_get_grad(h->model, i, h->grad + off, p->size);
        CHECK(st == RC_OK, "get_grad %s: %s", p->name, st == RC_OK ? "" : rc_last_error());
        off += p->size;
    }
}

/* The sequences of pairs [first, first+count) as the trainer lays out rows:
 * chosen 0..count-1, rejected count..2count-1. */
static void pair_rows(const pair *pairs, int first, int count, const int32_t **seqs, size_t *lens) {
    for (int i = 0; i < count; i++) {
        seqs[i] = pairs[first + i].tokens[0];
        lens[i] = pairs[first + i].len[0];
        seqs[count + i] = pairs[first + i].tokens[1];
        lens[count + i] = pairs[first + i].len[1];
    }
}

/* Forward + pairwise loss + backward on pairs [first, first+count), rows laid
 * out by pair_rows. Accumulates into the gradients; returns the padded length
 * used. */
static int accumulate_batch(harness *h, const pair *pairs, int first, int count, const float *margins,
                            double grad_scale, float *rewards_out) {
    const int32_t *seqs[2 * N_PAIRS];
    size_t lens[2 * N_PAIRS];
    pair_rows(pairs, first, count, seqs, lens);
    int32_t ids[2 * N_PAIRS * PADDED_T], mask[2 * N_PAIRS * PADDED_T];
    int T = rc_pad_batch(seqs, lens, 2 * count, PAD, ids, mask);
    float rewards[2 * N_PAIRS], d_rewards[2 * N_PAIRS];
    rc_status st = rc_model_forward(h->model, ids, mask, 2 * count, T, rewards);
    CHECK(st == RC_OK, "forward: %s", st == RC_OK ? "" : rc_last_error());
    rc_pairwise_loss(rewards, margins + first, NULL, count, 0.05, grad_scale, d_rewards, NULL);
    st = rc_model_backward(h->model, d_rewards);
    CHECK(st == RC_OK, "backward: %s", st == RC_OK ? "" : rc_last_error());
    if (rewards_out) memcpy(rewards_out, rewards, 2 * (size_t)count * sizeof *rewards);
    return T;
}

static void check_accumulation(harness *h, const char *label) {
    pair pairs[N_PAIRS];
    make_pairs(pairs);
    const float margins[N_PAIRS] = {0.0f, 0.5f, -0.25f, 1.0f};
    float *full = malloc(h->n_params * sizeof *full);
    float *micro_wrong = malloc(h->n_params * sizeof *micro_wrong);

    rc_model_zero_grad(h->model);
    int T_full = accumulate_batch(h, pairs, 0, N_PAIRS, margins, 1.0, NULL);
    gather_grads(h);
    memcpy(full, h->grad, h->n_params * sizeof *full);

    rc_model_zero_grad(h->model);
    int T_a = accumulate_batch(h, pairs, 0, 2, margins, 0.5, NULL);
    int T_b = accumulate_batch(h, pairs, 2, 2, margins, 0.5, NULL);
    gather_grads(h);
    CHECK(T_full == 11 && T_a == 11 && T_b == 8, "%s: padded lengths %d, %d, %d (expected 11, 11, 8)",
          label, T_full, T_a, T_b);

    double norm = 0.0;
    for (size_t i = 0; i < h->n_params; i++) norm += (double)full[i] * full[i];
    CHECK(norm > 1e-6, "%s: the full-batch gradient is (nearly) zero: %g", label, norm);

    double total = test_nmse(full, h->grad, h->n_params, NULL);
    CHECK(total <= GRAD_NMSE_LIMIT, "%s: accumulated gradient NMSE %.3g > %g", label, total, GRAD_NMSE_LIMIT);
    size_t off = 0;
    double worst = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < rc_model_param_count(h->model); i++) {
        const rc_param_info *p = rc_model_param(h->model, i);
        double tensor_norm = 0.0;
        for (size_t k = 0; k < p->size; k++) tensor_norm += (double)full[off + k] * full[off + k];
        /* Without rotary positions k_proj.bias has an exactly zero gradient
         * (softmax ignores a shift shared by all keys; rotated, the shift
         * differs per position), so it holds only rounding noise: skip
         * tensors that carry a negligible share of the gradient */
        double e = tensor_norm > 1e-12 * norm ? test_nmse(full + off, h->grad + off, p->size, NULL) : 0.0;
        if (e > worst) worst = e, worst_name = p->name;
        if (strstr(p->name, "k_proj.bias") &&
            rc_model_get_config(h->model)->positions == RC_POS_LEARNED)
            CHECK(tensor_norm <= 1e-12 * norm, "%s: %s gradient should vanish, norm^2 %.3g of %.3g",
                  label, p->name, tensor_norm, norm);
        off += p->size;
    }
    CHECK(worst <= GRAD_NMSE_LIMIT, "%s: accumulation NMSE %.3g in %s", label, worst, worst_name);
    printf("%s: accumulation NMSE %.3g overall, worst tensor %.3g (%s)\n", label, total, worst, worst_name);

    /* the same comparison must catch a wrong scale (1.0 instead of 0.5) */
    rc_model_zero_grad(h->model);
    accumulate_batch(h, pairs, 0, 2, margins, 1.0, NULL);
    accumulate_batch(h, pairs, 2, 2, margins, 1.0, NULL);
    gather_grads(h);
    memcpy(micro_wrong, h->grad, h->n_params * sizeof *micro_wrong);
    double wrong = test_nmse(full, micro_wrong, h->n_params, NULL);
    CHECK(wrong > 0.5, "%s: unscaled micro-batches should differ (NMSE 1), got %.3g", label, wrong);
    free(full);
    free(micro_wrong);
}

/* Evaluation turns gradients off (rc_model_set_grad_enabled): the forward then
 * keeps nothing for backward, must give bit-identical rewards, and a backward
 * after it is refused. */
static void check_grad_mode(harness *h, const char *label) {
    pair pairs[N_PAIRS];
    make_pairs(pairs);
    const float margins[N_PAIRS] = {0};
    float kept[2 * N_PAIRS], not_kept[2 * N_PAIRS];
    rc_model_zero_grad(h->model);
    accumulate_batch(h, pairs, 0, N_PAIRS, margins, 1.0, kept);
    const int32_t *seqs[2 * N_PAIRS];
    size_t lens[2 * N_PAIRS];
    pair_rows(pairs, 0, N_PAIRS, seqs, lens);
    int32_t ids[2 * N_PAIRS * PADDED_T], mask[2 * N_PAIRS * PADDED_T];
    int T = rc_pad_batch(seqs, lens, 2 * N_PAIRS, PAD, ids, mask);
    rc_model_set_grad_enabled(h->model, 0);
    rc_status st = rc_model_forward(h->model, ids, mask, 2 * N_PAIRS, T, not_kept);
    CHECK(st == RC_OK, "%s: forward without gradients: %s", label,
          st == RC_OK ? "" : rc_last_error());
    CHECK(!memcmp(kept, not_kept, sizeof kept), "%s: rewards differ with gradients off", label);
    float d_rewards[2 * N_PAIRS] = {0};
    st = rc_model_backward(h->model, d_rewards);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "gradients enabled"),
          "%s: backward after a forward without gradients gave %s", label, rc_status_name(st));
    rc_model_set_grad_enabled(h->model, 1);
}

/* Forward/backward of rows at length T (>= every length), pads after each. */
static void run_rows(harness *h, const int32_t *const *seqs, const size_t *lens, int rows, int T,
                     const float *d_rewards, float *rewards) {
    int32_t ids[2 * PADDED_T], mask[2 * PADDED_T];
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < T; t++) {
            int real = (size_t)t < lens[r];
            ids[r * T + t] = real ? seqs[r][t] : PAD;
            mask[r * T + t] = real;
        }
    rc_model_zero_grad(h->model);
    rc_status st = rc_model_forward(h->model, ids, mask, rows, T, rewards);
    CHECK(st == RC_OK, "forward T=%d: %s", T, st == RC_OK ? "" : rc_last_error());
    const int32_t *pooled = rc_model_pooled_index(h->model);
    for (int r = 0; r < rows; r++)
        CHECK(pooled[r] == (int32_t)lens[r] - 1, "T=%d row %d pooled at %d, expected %zu", T, r,
              pooled[r], lens[r] - 1);
    st = rc_model_backward(h->model, d_rewards);
    CHECK(st == RC_OK, "backward T=%d: %s", T, st == RC_OK ? "" : rc_last_error());
    gather_grads(h);
}

static void check_padding(harness *h, const char *label) {
    pair pairs[N_PAIRS];
    make_pairs(pairs);
    /* two rows, 5 and 9 tokens: natural T is 9, then padded to 12 */
    const int32_t *seqs[2] = {pairs[0].tokens[0], pairs[0].tokens[1]};
    const size_t lens[2] = {pairs[0].len[0], pairs[0].len[1]};
    const float d_rewards[2] = {0.75f, -1.25f};
    float r_natural[2], r_padded[2];
    float *g_natural = malloc(h->n_params * sizeof *g_natural);
    run_rows(h, seqs, lens, 2, 9, d_rewards, r_natural);
    memcpy(g_natural, h->grad, h->n_params * sizeof *g_natural);
    run_rows(h, seqs, lens, 2, PADDED_T, d_rewards, r_padded);
    for (int r = 0; r < 2; r++)
        CHECK(fabs((double)r_natural[r] - r_padded[r]) <= REWARD_ABS_LIMIT,
              "%s: row %d reward %.9g at natural length, %.9g padded to %d", label, r, r_natural[r],
              r_padded[r], PADDED_T);
    CHECK(fabs(r_natural[0] - r_natural[1]) > 1e-3, "%s: rewards should differ between rows (%g, %g)",
          label, r_natural[0], r_natural[1]);
    double e = test_nmse(g_natural, h->grad, h->n_params, NULL);
    CHECK(e <= GRAD_NMSE_LIMIT, "%s: padded gradient NMSE %.3g > %g", label, e, GRAD_NMSE_LIMIT);

    /* one row alone, padded: compare with the same row at its natural length */
    const int32_t *one[1] = {pairs[1].tokens[1]};
    const size_t one_len[1] = {pairs[1].len[1]};
    const float d_one[1] = {1.0f};
    float r1, r2;
    run_rows(h, one, one_len, 1, (int)one_len[0], d_one, &r1);
    memcpy(g_natural, h->grad, h->n_params * sizeof *g_natural);
    run_rows(h, one, one_len, 1, PADDED_T, d_one, &r2);
    CHECK(fabs((double)r1 - r2) <= REWARD_ABS_LIMIT, "%s: 3-token row reward %.9g vs %.9g padded", label, r1, r2);
    double e1 = test_nmse(g_natural, h->grad, h->n_params, NULL);
    CHECK(e1 <= GRAD_NMSE_LIMIT, "%s: 3-token row padded gradient NMSE %.3g", label, e1);
    printf("%s: rewards %.6g %.6g %.6g; padding reward diffs %.2g %.2g %.2g, gradient NMSE %.3g %.3g\n", label, r_natural[0], r_natural[1], r1,
           fabs((double)r_natural[0] - r_padded[0]), fabs((double)r_natural[1] - r_padded[1]),
           fabs((double)r1 - r2), e, e1);
    free(g_natural);
}

/* Pairs sharing prefixes of several kinds, each sequence at most PADDED_T. */
static void make_prefix_pairs(pair *pairs) {
    const uint64_t saved = rng_state; /* leave the other checks' tokens as they were */
    static const struct {
        size_t chosen, rejected, common;
    } shape[N_PAIRS] = {
        {10, 12, 7}, /* a long shared prompt */
        {4, 7, 4},   /* chosen is a prefix of rejected: the prefix stops at 3 */
        {5, 5, 5},   /* identical: the prefix stops at 4, the rewards tie */
        {6, 9, 1},   /* only BOS shared */
    };
    for (int p = 0; p < N_PAIRS; p++) {
        for (int s = 0; s < 2; s++) {
            pairs[p].len[s] = s ? shape[p].rejected : shape[p].chosen;
            pairs[p].tokens[s][0] = BOS;
            for (size_t t = 1; t < pairs[p].len[s]; t++)
                pairs[p].tokens[s][t] = s && t < shape[p].common ? pairs[p].tokens[0][t] : random_token();
        }
        /* make sure the responses differ right after the common part */
        if (shape[p].common < shape[p].chosen && shape[p].common < shape[p].rejected &&
            pairs[p].tokens[0][shape[p].common] == pairs[p].tokens[1][shape[p].common])
            pairs[p].tokens[1][shape[p].common] = 3 + (pairs[p].tokens[1][shape[p].common] - 2) % (VOCAB - 3);
    }
    rng_state = saved;
}

static void check_packing(harness *h, const char *label) {
    pair pairs[N_PAIRS];
    make_prefix_pairs(pairs);
    const float margins[N_PAIRS] = {0.0f, 0.5f, -0.25f, 1.0f};
    const int32_t *seqs[2 * N_PAIRS];
    size_t lens[2 * N_PAIRS];
    pair_rows(pairs, 0, N_PAIRS, seqs, lens);
    float *unpacked = malloc(h->n_params * sizeof *unpacked);
    float r_rows[2 * N_PAIRS], r_packed[2 * N_PAIRS], r_leaky[2 * N_PAIRS], d[2 * N_PAIRS];
    rc_model_zero_grad(h->model);
    accumulate_batch(h, pairs, 0, N_PAIRS, margins, 1.0, r_rows);
    gather_grads(h);
    memcpy(unpacked, h->grad, h->n_params * sizeof *unpacked);

    enum { MAX_PACKED = 2 * PADDED_T };
    int32_t ids[N_PAIRS * MAX_PACKED], mask[N_PAIRS * MAX_PACKED], pos[N_PAIRS * MAX_PACKED];
    int32_t score_at[2 * N_PAIRS];
    size_t shared = 0;
    int T = rc_pack_pairs(seqs, lens, N_PAIRS, PAD, ids, mask, pos, score_at, &shared);
    /* rows: 10+12-7, 4+7-3, 5+5-4, 6+9-1 */
    CHECK(T == 15 && shared == 7 + 3 + 4 + 1, "%s: packed T %d (15), shared %zu (15)", label, T, shared);
    const int32_t expect_at[2 * N_PAIRS] = {9, 15 + 3, 30 + 4, 45 + 5, 14, 15 + 7, 30 + 5, 45 + 13};
    for (int i = 0; i < 2 * N_PAIRS; i++)
        CHECK(score_at[i] == expect_at[i], "%s: score %d read at slot %d, expected %d", label, i,
              score_at[i], expect_at[i]);
    CHECK(mask[0] == 1 && mask[7] == 2 && mask[10] == 3 && pos[10] == 7 && pos[14] == 11,
          "%s: row 0 mask %d %d %d, positions %d %d", label, mask[0], mask[7], mask[10], pos[10], pos[14]);

    rc_model_zero_grad(h->model);
    rc_packed_batch batch = {ids, mask, pos, score_at, N_PAIRS, T, 2 * N_PAIRS};
    rc_status st = rc_model_forward_packed(h->model, &batch, r_packed);
    CHECK(st == RC_OK, "%s: packed forward: %s", label, st == RC_OK ? "" : rc_last_error());
    rc_pairwise_loss(r_packed, margins, NULL, N_PAIRS, 0.05, 1.0, d, NULL);
    st = rc_model_backward(h->model, d);
    CHECK(st == RC_OK, "%s: packed backward: %s", label, st == RC_OK ? "" : rc_last_error());
    gather_grads(h);
    double worst_reward = 0.0;
    for (int i = 0; i < 2 * N_PAIRS; i++) {
        double diff = fabs((double)r_rows[i] - r_packed[i]);
        if (diff > worst_reward) worst_reward = diff;
        CHECK(diff <= REWARD_ABS_LIMIT, "%s: reward %d is %.9g packed, %.9g one per row", label, i,
              r_packed[i], r_rows[i]);
    }
    CHECK(fabs((double)r_packed[2] - r_packed[N_PAIRS + 2]) <= REWARD_ABS_LIMIT,
          "%s: identical responses score %.9g and %.9g", label, r_packed[2], r_packed[N_PAIRS + 2]);
    double e = test_nmse(unpacked, h->grad, h->n_params, NULL);
    CHECK(e <= GRAD_NMSE_LIMIT, "%s: packed gradient NMSE %.3g > %g", label, e, GRAD_NMSE_LIMIT);
    printf("%s: packed pairs: rewards %.4g .. %.4g, worst reward diff %.2g, gradient NMSE %.3g\n", label,
           r_rows[0], r_rows[2 * N_PAIRS - 1], worst_reward, e);

    /* the same comparison catches a rejected branch that sees the chosen one */
    for (int i = 0; i < N_PAIRS * T; i++) mask[i] = mask[i] == 3 ? 2 : mask[i];
    st = rc_model_forward_packed(h->model, &batch, r_leaky);
    CHECK(st == RC_OK && fabs((double)r_leaky[N_PAIRS] - r_rows[N_PAIRS]) > 1e-3,
          "%s: a leaking mask should change the rejected reward (%.9g vs %.9g)", label,
          r_leaky[N_PAIRS], r_rows[N_PAIRS]);

    /* bad slots and positions are refused by name */
    score_at[3] = N_PAIRS * T;
    st = rc_model_forward_packed(h->model, &batch, r_leaky);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "score 3"),
          "%s: score slot outside the batch: %s", label, rc_last_error());
    score_at[3] = 0;
    pos[5] = rc_model_get_config(h->model)->max_position_embeddings;
    st = rc_model_forward_packed(h->model, &batch, r_leaky);
    CHECK(st == RC_ERR_INVALID_ARG && strstr(rc_last_error(), "position"),
          "%s: position past max_position_embeddings: %s", label, rc_last_error());
    CHECK(rc_model_backward(h->model, d) == RC_ERR_INVALID_ARG,
          "%s: backward after a refused forward must fail", label);
    free(unpacked);
}

/* A row of three sequences (rc_pack_row, as scoring packs the responses to
 * one prompt): pair 0's chosen (10 tokens) and rejected (12) and a third of 9
 * tokens, all sharing the first 7, must each score as in a row of its own. */
static void check_three_branches(harness *h, const char *label) {
    pair pairs[N_PAIRS];
    make_prefix_pairs(pairs);
    int32_t third[9];
    memcpy(third, pairs[0].tokens[0], 7 * sizeof *third);
    third[7] = 5;
    third[8] = 6;
    const int32_t *seqs[3] = {pairs[0].tokens[0], pairs[0].tokens[1], third};
    const size_t lens[3] = {pairs[0].len[0], pairs[0].len[1], 9};
    int32_t ids[3 * PADDED_T], mask[3 * PADDED_T];
    float alone[3], together[3];
    int T = rc_pad_batch(seqs, lens, 3, PAD, ids, mask);
    rc_status st = rc_model_forward(h->model, ids, mask, 3, T, alone);
    CHECK(st == RC_OK, "%s: three rows: %s", label, st == RC_OK ? "" : rc_last_error());

    enum { LENGTH = 7 + 3 + 5 + 2 };
    CHECK(rc_packed_row_length(lens, 3, 7) == LENGTH, "%s: row length %zu (%d)", label,
          rc_packed_row_length(lens, 3, 7), LENGTH);
    int32_t row_ids[LENGTH], row_mask[LENGTH], row_pos[LENGTH], score_at[3];
    rc_pack_row(seqs, lens, 3, 7, PAD, LENGTH, 0, row_ids, row_mask, row_pos, score_at);
    CHECK(score_at[0] == 9 && score_at[1] == 14 && score_at[2] == 16,
          "%s: three branches read at %d %d %d (9 14 16)", label, score_at[0], score_at[1],
          score_at[2]);
    CHECK(row_mask[6] == 1 && row_mask[7] == 2 && row_mask[10] == 3 && row_mask[15] == 4 &&
              row_pos[15] == 7 && row_ids[16] == 6,
          "%s: three branches: masks %d %d %d %d, position %d, id %d", label, row_mask[6],
          row_mask[7], row_mask[10], row_mask[15], row_pos[15], row_ids[16]);
    rc_packed_batch batch = {row_ids, row_mask, row_pos, score_at, 1, LENGTH, 3};
    st = rc_model_forward_packed(h->model, &batch, together);
    CHECK(st == RC_OK, "%s: three branches: %s", label, st == RC_OK ? "" : rc_last_error());
    for (int i = 0; i < 3 && st == RC_OK; i++)
        CHECK(fabs((double)alone[i] - together[i]) <= REWARD_ABS_LIMIT,
              "%s: branch %d scores %.9g in one row, %.9g alone", label, i, together[i], alone[i]);
}

/* Attention runs a chunk of sequences at a time, as many as fit 2 Mi floats of
 * probabilities: at 4 heads and T = 500 that is 2 sequences, so 5 rows run as
 * chunks of 2, 2 and 1. Their rewards and gradients must match the same rows
 * (each with its own padding) run one per batch. The model is reserved for
 * T = 520, where a chunk is 1 sequence: the shorter batch's chunk of 2 must
 * still fit the reservation. */
static void check_attention_chunks(rc_backend *be) {
    enum { ROWS = 5, LONG_T = 500, RESERVED_T = 520 };
    rc_model_config cfg = small_config(24, 24, 1);
    cfg.max_position_embeddings = 1024;
    harness h = {0};
    rc_status st = rc_model_create(&cfg, be, 99, &h.model);
    if (st == RC_OK) st = rc_model_reserve(h.model, ROWS, RESERVED_T, 1);
    CHECK(st == RC_OK, "chunks: setup: %s", st == RC_OK ? "" : rc_last_error());
    if (st != RC_OK) {
        rc_model_free(h.model);
        return;
    }
    h.n_params = rc_model_num_parameters(h.model);
    h.grad = malloc(h.n_params * sizeof *h.grad);
    float *chunked = malloc(h.n_params * sizeof *chunked);
    int32_t *ids = malloc((size_t)ROWS * LONG_T * sizeof *ids);
    int32_t *mask = malloc((size_t)ROWS * LONG_T * sizeof *mask);
    float d_rewards[ROWS], together[ROWS], alone[ROWS];
    for (int i = 0; i < ROWS * LONG_T; i++) { /* row r starts with 53 r pads (left padding) */
        const int real = i % LONG_T >= 53 * (i / LONG_T);
        ids[i] = real ? random_token() : PAD;
        mask[i] = real;
    }
    for (int r = 0; r < ROWS; r++) d_rewards[r] = 0.1f * (float)(r + 1) * (r % 2 ? -1.0f : 1.0f);

    rc_model_zero_grad(h.model);
    st = rc_model_forward(h.model, ids, mask, ROWS, LONG_T, together);
    if (st == RC_OK) st = rc_model_backward(h.model, d_rewards);
    gather_grads(&h);
    memcpy(chunked, h.grad, h.n_params * sizeof *chunked);
    rc_model_zero_grad(h.model);
    for (int r = 0; r < ROWS && st == RC_OK; r++) {
        st = rc_model_forward(h.model, ids + (size_t)r * LONG_T, mask + (size_t)r * LONG_T, 1,
                              LONG_T, &alone[r]);
        if (st == RC_OK) st = rc_model_backward(h.model, &d_rewards[r]);
    }
    CHECK(st == RC_OK, "chunks: %s", st == RC_OK ? "" : rc_last_error());
    gather_grads(&h);
    /* sums over 500 positions, not 12: rewards are held to the NMSE bound
     * (summation order only) rather than to the short checks' absolute one */
    double rewards_nmse = test_nmse(alone, together, ROWS, NULL);
    double nmse = test_nmse(h.grad, chunked, h.n_params, NULL);
    CHECK(rewards_nmse <= GRAD_NMSE_LIMIT, "chunks: reward NMSE %.3g > %g", rewards_nmse,
          GRAD_NMSE_LIMIT);
    CHECK(nmse <= GRAD_NMSE_LIMIT, "chunks: gradient NMSE %.3g > %g", nmse, GRAD_NMSE_LIMIT);
    printf("attention in chunks (5 rows x 500): reward NMSE %.3g, gradient NMSE %.3g\n",
           rewards_nmse, nmse);
    free(ids);
    free(mask);
    free(chunked);
    free(h.grad);
    rc_model_free(h.model);
}

static void run_config(rc_backend *be, const rc_model_config *cfg, const char *label,
                       int accumulation_only) {
    harness h = {0};
    rc_status st = rc_model_create(cfg, be, 1234, &h.model);
    CHECK(st == RC_OK, "%s: create: %s", label, st == RC_OK ? "" : rc_last_error());
    if (st != RC_OK) return;
    st = rc_model_reserve(h.model, 2 * N_PAIRS, PADDED_T, 1);
    CHECK(st == RC_OK, "%s: reserve: %s", label, st == RC_OK ? "" : rc_last_error());
    if (st == RC_OK) {
        h.n_params = rc_model_num_parameters(h.model);
        h.grad = malloc(h.n_params * sizeof *h.grad);
        check_accumulation(&h, label);
        check_grad_mode(&h, label);
        if (!accumulation_only) {
            check_padding(&h, label);
            check_packing(&h, label);
            check_three_branches(&h, label);
        }
        free(h.grad);
    }
    rc_model_free(h.model);
}

/* A small model of another family, from its HF defaults: the shortcuts
 * (packing, score rows, padding, accumulation) are shared code, so each
 * family's blocks (rotary positions, grouped-query heads, gated MLPs, head
 * norms, fused and Conv1D weights, parallel blocks) must pass them too. */
static rc_model_config family_config(rc_family_id family, int heads, int kv_heads,
                                     int head_dim) {
    rc_model_config c;
    rc_model_config_defaults(family, &c);
    c.vocab_size = VOCAB;
    c.hidden_size = 24;
    c.num_hidden_layers = 2;
    c.ffn_dim = 40;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.head_dim = head_dim;
    c.word_embed_proj_dim = c.hidden_size;
    c.max_position_embeddings = 32;
    c.pad_token_id = PAD;
    c.bos_token_id = c.eos_token_id = BOS;
    c.init_std = 0.3f;
    return c;
}

int main(void) {
    rc_backend *be = NULL;
    if (rc_backend_create("cpu", 0, &be) != RC_OK) {
        printf("cpu backend: %s\n", rc_last_error());
        return 1;
    }
    rc_model_config pre_ln = small_config(24, 24, 1);
    rc_model_config post_ln_proj = small_config(24, 16, 0);
    /* embedding rows of 1 KiB: rc_model_zero_grad releases the tables' pages
     * (fill_zero_sparse), so accumulation checks that they come back zeroed
     * (rewards are larger here than the padding bound assumes) */
    rc_model_config wide_rows = small_config(256, 256, 1);
    wide_rows.init_std = 0.05f;
    run_config(be, &pre_ln, "pre-LN", 0);
    run_config(be, &post_ln_proj, "post-LN project_in/out", 0);
    run_config(be, &wide_rows, "pre-LN, 1 KiB embedding rows", 1);
    rc_model_config llama = family_config(RC_FAMILY_LLAMA, 6, 2, 4);
    rc_model_config qwen2 = family_config(RC_FAMILY_QWEN2, 4, 4, 6);
    rc_model_config qwen3 = family_config(RC_FAMILY_QWEN3, 3, 1, 10);
    rc_model_config gpt2 = family_config(RC_FAMILY_GPT2, 4, 4, 6);
    rc_model_config falcon = family_config(RC_FAMILY_FALCON, 4, 1, 6);
    run_config(be, &llama, "llama, 6 heads on 2 kv heads", 0);
    run_config(be, &qwen2, "qwen2", 0);
    run_config(be, &qwen3, "qwen3, head_dim 10, multi-query", 0);
    run_config(be, &gpt2, "gpt2", 0);
    run_config(be, &falcon, "falcon, parallel blocks", 0);
    check_attention_chunks(be);
    rc_backend_destroy(be);
    return test_finish("test_train_accum");
}
