/* rewardc import of the real SmolLM2-135M-Instruct GGUF (skipped when
 * ../shared/data lacks it): counts, shapes and a few dequantised values as
 * gguf-py + transformers' q/k un-permutation give them (recorded as float
 * bits; tools/check_gguf_import.py compares all tensors with transformers). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "rewardc/gguf_import.h"
#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static void check_values(const rc_safetensors *st, const char *name, size_t index, const uint32_t *bits, int n) {
    const rc_tensor_view *t = rc_st_find(st, name);
    CHECK(t != NULL, "%s present", name);
    if (!t) return;
    for (int i = 0; i < n; i++) {
        uint32_t got;
        memcpy(&got, t->data + 4 * (index + (size_t)i), 4);
        CHECK(got == bits[i], "%s[%zu]: bits %08x, expected %08x", name, index + (size_t)i, got, bits[i]);
    }
}

int main(void) {
    char gguf[4096], out[4096];
    snprintf(gguf, sizeof gguf, "%s/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", test_data_dir());
    if (!rc_path_is_file(gguf)) {
        printf("test_gguf_smollm2: %s absent, skipped\n", gguf);
        return TEST_SKIP;
    }
    snprintf(out, sizeof out, "%s/gguf_smollm2", test_tmp_dir());
    rc_gguf_import_options opt = {.seed = 42, .overwrite = true};
    rc_gguf_import_summary s;
    CHECK(rc_gguf_import(gguf, out, &opt, &s) == RC_OK, "import: %s", rc_last_error());
    CHECK(s.n_gguf_tensors == 272 && s.n_hf_tensors == 273 && s.n_skipped == 0, "tensors %zu -> %zu",
          s.n_gguf_tensors, s.n_hf_tensors);
    CHECK(s.type_counts[3] == 210 && s.type_counts[8] == 1 && s.type_counts[0] == 61, "210 Q4_1, 1 Q8_0, 61 F32");
    CHECK(s.n_parameters == 134515584ull, "parameters %llu", (unsigned long long)s.n_parameters);
    CHECK(s.tied && s.vocab_size == 49152 && s.n_merges == 48900, "tied, vocab, merges");

    rc_safetensors *st = NULL;
    CHECK(rc_st_open(out, &st) == RC_OK, "open output: %s", rc_last_error());
    if (st) {
        const rc_tensor_view *t;
        const int64_t q[2] = {576, 576}, k[2] = {192, 576}, e[2] = {49152, 576}, d[2] = {576, 1536},
                      score[2] = {1, 576};
        CHECK((t = rc_st_find(st, "model.layers.0.self_attn.q_proj.weight")) && rc_tensor_check_shape(t, 2, q) == RC_OK,
              "q_proj shape");
        CHECK((t = rc_st_find(st, "model.layers.3.self_attn.k_proj.weight")) && rc_tensor_check_shape(t, 2, k) == RC_OK,
              "k_proj shape");
        CHECK((t = rc_st_find(st, "model.embed_tokens.weight")) && rc_tensor_check_shape(t, 2, e) == RC_OK, "embedding");
        CHECK((t = rc_st_find(st, "model.layers.29.mlp.down_proj.weight")) && rc_tensor_check_shape(t, 2, d) == RC_OK,
              "down_proj shape");
        CHECK((t = rc_st_find(st, "score.weight")) && rc_tensor_check_shape(t, 2, score) == RC_OK, "score shape");
        CHECK(rc_st_find(st, "lm_head.weight") == NULL, "no LM head");
        /* q rows 1 and 32 are a rotate-half pair of head 0 (GGUF rows 2 and 1) */
        check_values(st, "model.layers.0.self_attn.q_proj.weight", 1 * 576,
                     (const uint32_t[]){3189964800u, 1053540352u, 3164798976u}, 3);
        check_values(st, "model.layers.0.self_attn.q_proj.weight", 32 * 576,
                     (const uint32_t[]){3186638848u, 3186638848u, 3192221696u}, 3);
        check_values(st, "model.layers.3.self_attn.k_proj.weight", 100 * 576 + 5,
                     (const uint32_t[]){3197091840u, 1050845184u, 1054191616u}, 3);
        check_values(st, "model.embed_tokens.weight", 576, (const uint32_t[]){3166896128u, 3162636288u, 3173154816u},
                     3);
        check_values(st, "model.layers.29.mlp.down_proj.weight", 575 * 1536 + 1533,
                     (const uint32_t[]){1045430272u, 3182952448u, 1030225920u}, 3);
        check_values(st, "model.norm.weight", 0, (const uint32_t[]){1071710208u, 1072234496u, 1071906816u}, 3);
        rc_st_close(st);
    }
    return test_finish("test_gguf_smollm2");
}
