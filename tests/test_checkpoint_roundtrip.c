/* Saving a model writes an OPTForSequenceClassification folder that loads
 * back bit-identically; loading handles every golden layout; bad folders give
 * clear errors. (That transformers loads the saved folder is checked by
 * tools/check_hf_roundtrip.py, which needs torch.) */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rewardc/io.h"
#include "rewardc/model.h"
#include "rewardc/workflow.h"
#include "testlib.h"

static int same_params(rc_model *a, rc_model *b) {
    if (rc_model_param_count(a) != rc_model_param_count(b)) return 0;
    int same = 1;
    for (int i = 0; i < rc_model_param_count(a) && same; i++) {
        const rc_param_info *p = rc_model_param(a, i);
        float *x = malloc(p->size * sizeof *x), *y = malloc(p->size * sizeof *y);
        same = strcmp(p->name, rc_model_param(b, i)->name) == 0 &&
               rc_model_get_param(a, i, x, p->size) == RC_OK &&
               rc_model_get_param(b, i, y, p->size) == RC_OK &&
               memcmp(x, y, p->size * sizeof *x) == 0;
        if (!same) fprintf(stderr, "  differs: %s\n", p->name);
        free(x);
        free(y);
    }
    return same;
}

static void roundtrip(rc_backend *be, const char *name) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/opt/%s", test_golden_dir(), name);
    snprintf(dst, sizeof dst, "%s/roundtrip_%s", test_tmp_dir(), name);
    rc_model *a = NULL, *b = NULL;
    CHECK(rc_model_load(src, be, 7, &a, NULL) == RC_OK, "load %s: %s", src, rc_last_error());
    if (!a) return;
    CHECK(rc_model_save(a, dst) == RC_OK, "save %s: %s", dst, rc_last_error());
    CHECK(rc_model_load(dst, be, 99, &b, NULL) == RC_OK, "reload %s: %s", dst, rc_last_error());
    if (b) {
        CHECK(same_params(a, b), "%s: parameters changed in a save/load round trip", name);
        CHECK(memcmp(rc_model_get_config(a), rc_model_get_config(b), sizeof(rc_model_config)) == 0,
              "%s: config changed in a save/load round trip", name);
    }
    /* what transformers needs to build the right class with one label */
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dst);
    cJSON *cfg = NULL;
    CHECK(rc_json_load_file(path, &cfg) == RC_OK, "%s", rc_last_error());
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    CHECK(cJSON_IsArray(arch) && cJSON_IsString(cJSON_GetArrayItem(arch, 0)) &&
              !strcmp(cJSON_GetArrayItem(arch, 0)->valuestring, "OPTForSequenceClassification"),
          "%s: architectures", name);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(cfg, "num_labels");
    CHECK(cJSON_IsNumber(labels) && labels->valuedouble == 1, "%s: num_labels 1", name);
    cJSON_Delete(cfg);
    rc_model_free(a);
    rc_model_free(b);
}

/* The "rewardc" entry survives a model save (trainer saves model then meta). */
static void meta_roundtrip(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/roundtrip_preln", test_tmp_dir());
    rc_reward_meta meta = {.policy = rc_encode_policy_default()};
    meta.policy.max_length = 33;
    meta.has_reward_stats = 1;
    meta.reward_mean = -0.25;
    meta.reward_std = 1.5;
    meta.has_threshold = 1;
    meta.threshold = 0.125;
    CHECK(rc_reward_meta_save(dir, &meta) == RC_OK, "%s", rc_last_error());
    rc_reward_meta back;
    CHECK(rc_reward_meta_load(dir, &back) == RC_OK, "%s", rc_last_error());
    CHECK(back.policy.max_length == 33 && back.has_reward_stats && back.reward_mean == -0.25 &&
              back.reward_std == 1.5 && back.has_threshold && back.threshold == 0.125,
          "rewardc settings did not survive config.json");
}

static void bad_folders(rc_backend *be) {
    rc_model *m = NULL;
    char dir[1024], path[1200];
    CHECK(rc_model_load("/nonexistent/model", be, 0, &m, NULL) != RC_OK &&
              strstr(rc_last_error(), "/nonexistent/model"),
          "missing folder: %s", rc_last_error());
    /* config.json of a family rewardc does not implement */
    snprintf(dir, sizeof dir, "%s/bad_family", test_tmp_dir());
    rc_mkdir_p(dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *mamba = "{\"model_type\": \"mamba\"}";
    rc_write_file_atomic(path, mamba, strlen(mamba));
    CHECK(rc_model_load(dir, be, 0, &m, NULL) == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "mamba"),
          "mamba config: %s", rc_last_error());
    /* a Llama config without a pad token: the score could not be pooled */
    const char *llama = "{\"model_type\": \"llama\"}";
    rc_write_file_atomic(path, llama, strlen(llama));
    CHECK(rc_model_load(dir, be, 0, &m, NULL) == RC_ERR_FORMAT &&
              strstr(rc_last_error(), "pad_token_id"),
          "llama config without pad: %s", rc_last_error());
    /* heads that do not divide the width */
    const char *odd = "{\"model_type\": \"opt\", \"hidden_size\": 10, \"num_attention_heads\": 3}";
    rc_write_file_atomic(path, odd, strlen(odd));
    CHECK(rc_model_load(dir, be, 0, &m, NULL) == RC_ERR_FORMAT && strstr(rc_last_error(), "divisible"),
          "bad heads: %s", rc_last_error());
    /* a valid config but weights of another shape: preln's weights, wider config */
    snprintf(dir, sizeof dir, "%s/bad_shape", test_tmp_dir());
    snprintf(path, sizeof path, "%s/opt/preln", test_golden_dir());
    rc_model *ref = NULL;
    if (rc_model_load(path, be, 0, &ref, NULL) == RC_OK) {
        rc_model_save(ref, dir);
        rc_model_free(ref);
        snprintf(path, sizeof path, "%s/config.json", dir);
        cJSON *cfg = NULL;
        rc_json_load_file(path, &cfg);
        cJSON_ReplaceItemInObject(cfg, "ffn_dim", cJSON_CreateNumber(65));
        rc_json_save_file(path, cfg);
        cJSON_Delete(cfg);
        CHECK(rc_model_load(dir, be, 0, &m, NULL) != RC_OK && strstr(rc_last_error(), "fc1"),
              "shape mismatch should name the tensor: %s", rc_last_error());
    }
    CHECK(m == NULL, "failed loads return no model");
}

int main(void) {
    rc_backend *be = NULL;
    if (rc_backend_create("cpu", 0, &be) != RC_OK) return test_finish("test_checkpoint_roundtrip");
    const char *names[] = {"preln", "postln_proj", "odd", "preln_f16", "preln_bf16"};
    for (int i = 0; i < 5; i++) roundtrip(be, names[i]);
    meta_roundtrip();
    bad_folders(be);
    rc_backend_destroy(be);
    return test_finish("test_checkpoint_roundtrip");
}
