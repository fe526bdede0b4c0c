/* rc_gguf_import on golden/gguf/tiny_<arch>.gguf (random models that
 * tools/gen_gguf_test.py laid out as llama.cpp's converter does): every HF
 * tensor bit-identical to the one the generator derived with numpy (llama's
 * q/k unpermuted, falcon's qkv regrouped, gpt2's Conv1D transposed), the
 * config and tokenizer files, and the errors for an unmapped architecture and
 * an occupied output folder. */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/gguf_import.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static cJSON *load_json(const char *dir, const char *name) {
    char path[4096];
    cJSON *json = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(rc_json_load_file(path, &json) == RC_OK, "load %s: %s", path, rc_last_error());
    return json;
}

static void check_arch(const char *arch, const char *hf_class, int tied) {
    char gguf_path[4096], want_path[4096], out[4096];
    snprintf(gguf_path, sizeof gguf_path, "%s/gguf/tiny_%s.gguf", test_golden_dir(), arch);
    snprintf(want_path, sizeof want_path, "%s/gguf/tiny_%s_hf.safetensors", test_golden_dir(), arch);
    snprintf(out, sizeof out, "%s/gguf_import_%s", test_tmp_dir(), arch);
    rc_gguf_import_options opt = {.seed = 7, .overwrite = true};
    rc_gguf_import_summary s;
    rc_status st = rc_gguf_import(gguf_path, out, &opt, &s);
    CHECK(st == RC_OK, "%s: import: %s", arch, rc_last_error());
    if (st != RC_OK) return;
    CHECK(strcmp(s.hf_class, hf_class) == 0, "%s: class %s", arch, s.hf_class);
    CHECK(s.tied == (tied != 0), "%s: tied %d", arch, s.tied);

    rc_safetensors *want = NULL, *got = NULL;
    CHECK(rc_st_open(want_path, &want) == RC_OK, "open %s", want_path);
    CHECK(rc_st_open(out, &got) == RC_OK, "%s: open output: %s", arch, rc_last_error());
    if (want && got) {
        CHECK(rc_st_count(got) == rc_st_count(want) + 1, "%s: %zu tensors written, %zu expected + score", arch,
              rc_st_count(got), rc_st_count(want));
        for (size_t i = 0; i < rc_st_count(want); i++) {
            const rc_tensor_view *w = rc_st_tensor_at(want, i), *g = rc_st_find(got, w->name);
            CHECK(g != NULL, "%s: %s written", arch, w->name);
            if (!g) continue;
            CHECK(g->dtype == RC_DTYPE_F32 && rc_tensor_check_shape(g, w->n_dims, w->shape) == RC_OK,
                  "%s: %s shape: %s", arch, w->name, rc_last_error());
            CHECK(g->n_bytes == w->n_bytes && memcmp(g->data, w->data, w->n_bytes) == 0, "%s: %s values differ",
                  arch, w->name);
        }
        const rc_tensor_view *score = rc_st_find(got, "score.weight");
        const int64_t shape[2] = {1, 16};
        CHECK(score && rc_tensor_check_shape(score, 2, shape) == RC_OK, "%s: score.weight [1, 16]", arch);
    }
    rc_st_close(want);
    rc_st_close(got);

    cJSON *config = load_json(out, "config.json");
    if (config) {
        const cJSON *archs = cJSON_GetObjectItem(config, "architectures");
        CHECK(cJSON_IsArray(archs) && strcmp(cJSON_GetArrayItem(archs, 0)->valuestring, hf_class) == 0,
              "%s: architectures", arch);
        CHECK(strcmp(cJSON_GetObjectItem(config, "model_type")->valuestring, arch) == 0, "%s: model_type", arch);
        CHECK(cJSON_IsBool(cJSON_GetObjectItem(config, "tie_word_embeddings")) &&
                  cJSON_IsTrue(cJSON_GetObjectItem(config, "tie_word_embeddings")) == (tied != 0),
              "%s: tie_word_embeddings", arch);
        CHECK(cJSON_GetObjectItem(config, "pad_token_id")->valueint == 2, "%s: pad id", arch);
        CHECK(cJSON_GetObjectItem(config, "vocab_size")->valueint == 32, "%s: vocab", arch);
        if (!strcmp(arch, "llama")) {
            CHECK(cJSON_GetObjectItem(config, "num_key_value_heads")->valueint == 2, "llama: kv heads");
            CHECK(cJSON_GetObjectItem(config, "rms_norm_eps")->valuedouble == 1e-6, "llama: eps as 1e-06");
            const cJSON *rs = cJSON_GetObjectItem(config, "rope_scaling");
            CHECK(cJSON_IsObject(rs) && cJSON_GetObjectItem(rs, "factor")->valuedouble == 2.0 &&
                      !strcmp(cJSON_GetObjectItem(rs, "rope_type")->valuestring, "linear"),
                  "llama: rope_scaling linear 2");
        }
        if (!strcmp(arch, "falcon"))
            CHECK(cJSON_IsTrue(cJSON_GetObjectItem(config, "new_decoder_architecture")), "falcon: new arch");
        cJSON_Delete(config);
    }
    cJSON *tok = load_json(out, "tokenizer.json");
    if (tok) {
        const cJSON *model = cJSON_GetObjectItem(tok, "model");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(model, "vocab")) == 32, "%s: tokenizer vocab", arch);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(model, "merges")) == 5, "%s: merges", arch);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(tok, "added_tokens")) == 3, "%s: added tokens", arch);
        cJSON_Delete(tok);
    }
    cJSON *tc = load_json(out, "tokenizer_config.json");
    if (tc) {
        CHECK(!strcmp(cJSON_GetObjectItem(tc, "eos_token")->valuestring, "</s>"), "%s: eos token", arch);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(tc, "chat_template")), "%s: chat template", arch);
        cJSON_Delete(tc);
    }
}

int main(void) {
    check_arch("llama", "LlamaForSequenceClassification", 1);
    check_arch("qwen2", "Qwen2ForSequenceClassification", 0);
    check_arch("qwen3", "Qwen3ForSequenceClassification", 1);
    check_arch("gpt2", "GPT2ForSequenceClassification", 1);
    check_arch("falcon", "FalconForSequenceClassification", 0);

    char path[4096], out[4096];
    snprintf(path, sizeof path, "%s/gguf/types.gguf", test_golden_dir());
    snprintf(out, sizeof out, "%s/gguf_import_bad", test_tmp_dir());
    CHECK(rc_gguf_import(path, out, NULL, NULL) == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "'test'"),
          "unmapped architecture: %s", rc_last_error());
    CHECK(!rc_path_is_dir(out), "no folder left behind");
    /* an occupied folder is refused without overwrite, and kept */
    snprintf(path, sizeof path, "%s/gguf/tiny_llama.gguf", test_golden_dir());
    snprintf(out, sizeof out, "%s/gguf_import_llama", test_tmp_dir());
    CHECK(rc_gguf_import(path, out, NULL, NULL) == RC_ERR_IO && strstr(rc_last_error(), "--force"),
          "occupied folder: %s", rc_last_error());
    char config[4200];
    snprintf(config, sizeof config, "%s/config.json", out);
    CHECK(rc_path_is_file(config), "the earlier import is intact");
    return test_finish("test_gguf_import");
}
