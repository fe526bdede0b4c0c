/* A 20-step training run on every device backend compiled in matches the CPU
 * run's losses step by step to 1e-4 relative (the contract: GEMMs on
 * devices may sum in another order, and 20 AdamW steps amplify that a little). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/rng.h"
#include "rewardc/model.h"
#include "rewardc/train.h"
#include "testlib.h"

enum { PAIRS = 4, T = 17, STEPS = 20 };
static const double LOSS_RTOL = 1e-4;

static const rc_model_config config = {
    .family = RC_FAMILY_OPT, .vocab_size = 211, .hidden_size = 48, .num_hidden_layers = 2,
    .ffn_dim = 100, .num_attention_heads = 3, .num_key_value_heads = 3, .head_dim = 16,
    .max_position_embeddings = 64, .word_embed_proj_dim = 32, .do_layer_norm_before = 1,
    .final_norm = 1, .norm_affine = 1, .norm_bias = 1, .norm_eps = 1e-5,
    .positions = RC_POS_LEARNED, .position_offset = 2, .qkv_bias = 1, .out_bias = 1,
    .mlp_bias = 1, .activation = RC_ACT_GELU, .pad_token_id = 1, .bos_token_id = 2,
    .eos_token_id = 2, .init_std = 0.1,
};

/* Right-padded random pairs of different lengths. */
static void make_batch(int32_t *ids, int32_t *mask, float *margins) {
    rc_rng rng;
    rc_rng_seed(&rng, 2024);
    for (int r = 0; r < 2 * PAIRS; r++) {
        int len = 3 + (int)rc_rng_below(&rng, T - 2);
        for (int t = 0; t < T; t++) {
            ids[r * T + t] = t < len ? 3 + (int32_t)rc_rng_below(&rng, config.vocab_size - 3) : 1;
            mask[r * T + t] = t < len;
        }
    }
    for (int i = 0; i < PAIRS; i++) margins[i] = (float)(rc_rng_uniform(&rng) - 0.5);
}

static int train(const char *backend_name, double *losses) {
    rc_backend *be = NULL;
    if (rc_backend_create(backend_name, 0, &be) != RC_OK) return 0;
    printf("%s: %s\n", backend_name, be->device);
    rc_model *m = NULL;
    rc_adamw *opt = NULL;
    rc_adamw_config opt_cfg = {2e-3, 0.9, 0.999, 1e-8, 0.01};
    int32_t ids[2 * PAIRS * T], mask[2 * PAIRS * T];
    float margins[PAIRS], rewards[2 * PAIRS], d_rewards[2 * PAIRS];
    make_batch(ids, mask, margins);
    int ok = rc_model_create(&config, be, 7, &m) == RC_OK &&
             rc_model_reserve(m, 2 * PAIRS, T, 1) == RC_OK && rc_adamw_create(m, &opt_cfg, &opt) == RC_OK;
    CHECK(ok, "%s: setup: %s", backend_name, rc_last_error());
    for (int step = 0; ok && step < STEPS; step++) {
        rc_model_zero_grad(m);
        ok = rc_model_forward(m, ids, mask, 2 * PAIRS, T, rewards) == RC_OK;
        rc_pair_stats stats;
        rc_pairwise_loss(rewards, margins, NULL, PAIRS, 0.01, 1.0, d_rewards, &stats);
        ok = ok && rc_model_backward(m, d_rewards) == RC_OK;
        double clip = rc_clip_factor(rc_grad_norm(m), 1.0);
        double lr = 2e-3 * rc_schedule_factor(RC_SCHED_LINEAR, step, 3, STEPS);
        ok = ok && rc_adamw_step(opt, lr, clip) == RC_OK;
        losses[step] = stats.loss;
        CHECK(ok, "%s step %d: %s", backend_name, step, rc_last_error());
    }
    rc_adamw_free(opt);
    rc_model_free(m);
    rc_backend_destroy(be);
    return ok;
}

int main(void) {
    double reference[STEPS];
    CHECK(train("cpu", reference), "cpu training failed");
    CHECK(reference[STEPS - 1] < 0.8 * reference[0], "cpu: the loss should fall (%.4f -> %.4f)",
          reference[0], reference[STEPS - 1]);
    const char *devices[] = {"opencl", "cuda"};
    int compared = 0;
    for (int d = 0; d < 2; d++) {
        double losses[STEPS];
        if (!train(devices[d], losses)) {
            printf("%s: not available (%s)\n", devices[d], rc_last_error());
            continue;
        }
        compared++;
        double worst = 0.0;
        for (int s = 0; s < STEPS; s++) {
            double rel = fabs(losses[s] - reference[s]) / fabs(reference[s]);
            worst = fmax(worst, rel);
            CHECK(rel <= LOSS_RTOL, "%s step %d: loss %.8f vs cpu %.8f (rel %.2e)", devices[d], s,
                  losses[s], reference[s], rel);
        }
        printf("%s: 20 steps, worst relative loss difference to cpu %.2e\n", devices[d], worst);
    }
    if (!compared) {
        printf("no device backend available: only the cpu run was checked\n");
        int failed = test_checks_failed;
        test_finish("test_train_backends");
        return failed ? 1 : TEST_SKIP;
    }
    return test_finish("test_train_backends");
}
