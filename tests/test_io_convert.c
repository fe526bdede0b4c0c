/* End-to-end check of tools/convert_to_safetensors.py and of the safetensors
 * writer against transformers: tiny random OPT models are saved as PyTorch
 * .bin (one tied-weight causal LM, one sharded sequence classifier), converted,
 * read here, rewritten by rc_st_writer, and loaded back by transformers, whose
 * outputs must equal those of the original models exactly.
 * Needs python3 with torch, transformers and safetensors; skipped (77) without. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardc/io.h"
#include "rewardc/safetensors.h"
#include "testlib.h"

static const char *make_models_py =
    "import json, os, shutil, sys, torch\n"
    "from safetensors.torch import save_file\n"
    "from transformers import OPTConfig, OPTForCausalLM, OPTForSequenceClassification\n"
    "torch.set_num_threads(1)\n"
    "root = sys.argv[1]\n"
    "for sub in ('a', 'a_st', 'b', 'b_st', 'b_c', 'empty'):\n"
    "    shutil.rmtree(os.path.join(root, sub), ignore_errors=True)\n"
    "os.makedirs(os.path.join(root, 'empty'))\n"
    /* The .bin layout is written here rather than by save_pretrained, which
     * newer transformers no longer make as .bin: one pickled state dict, or
     * shards plus pytorch_model.bin.index.json mapping each name to its file. */
    "def save_bin(model, folder, shard_bytes=0):\n"
    "    folder = os.path.join(root, folder)\n"
    "    model.config.save_pretrained(folder)\n"
    "    state = model.state_dict()\n"
    "    if not shard_bytes:\n"
    "        torch.save(state, os.path.join(folder, 'pytorch_model.bin'))\n"
    "        return\n"
    "    shards, size = [{}], 0\n"
    "    for name, t in state.items():\n"
    "        n = t.numel() * t.element_size()\n"
    "        if shards[-1] and size + n > shard_bytes:\n"
    "            shards.append({})\n"
    "            size = 0\n"
    "        shards[-1][name] = t\n"
    "        size += n\n"
    "    weight_map = {}\n"
    "    for i, shard in enumerate(shards):\n"
    "        file = f'pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin'\n"
    "        torch.save(shard, os.path.join(folder, file))\n"
    "        weight_map.update({name: file for name in shard})\n"
    "    total = sum(t.numel() * t.element_size() for t in state.values())\n"
    "    with open(os.path.join(folder, 'pytorch_model.bin.index.json'), 'w') as f:\n"
    "        json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f)\n"
    "cfg = OPTConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, ffn_dim=32, num_attention_heads=2,\n"
    "                max_position_embeddings=32, word_embed_proj_dim=16, pad_token_id=1, num_labels=1)\n"
    "cfg._attn_implementation = 'eager'  # as check_models_py loads them: same kernels, equal logits\n"
    "torch.manual_seed(0)\n"
    "ids = torch.tensor([[2, 5, 9, 11, 1, 1], [2, 7, 3, 4, 8, 6]])\n"
    "mask = (ids != 1).long()\n"
    "a = OPTForCausalLM(cfg).eval()\n"
    "assert a.lm_head.weight.data_ptr() == a.model.decoder.embed_tokens.weight.data_ptr()\n"
    "save_bin(a, 'a')\n"
    "b = OPTForSequenceClassification(cfg).eval()\n"
    "torch.nn.init.normal_(b.score.weight)\n"
    "save_bin(b, 'b', shard_bytes=20000)\n"
    "with torch.no_grad():\n"
    "    expected = {'a': a(input_ids=ids, attention_mask=mask).logits.contiguous(),\n"
    "                'b': b(input_ids=ids, attention_mask=mask).logits.contiguous(),\n"
    "                'score': b.score.weight.detach().clone()}\n"
    "save_file(expected, os.path.join(root, 'expected.safetensors'))\n";

static const char *check_models_py =
    "import os, sys, torch\n"
    "from safetensors import safe_open\n"
    "from safetensors.torch import load_file\n"
    "from transformers import OPTForCausalLM, OPTForSequenceClassification\n"
    "torch.set_num_threads(1)\n"
    "root = sys.argv[1]\n"
    "expected = load_file(os.path.join(root, 'expected.safetensors'))\n"
    "ids = torch.tensor([[2, 5, 9, 11, 1, 1], [2, 7, 3, 4, 8, 6]])\n"
    "mask = (ids != 1).long()\n"
    "failures = []\n"
    "def check(cls, folder, key):\n"
    "    model, info = cls.from_pretrained(os.path.join(root, folder), output_loading_info=True,\n"
    "                                       attn_implementation='eager')\n"
    "    missing = [k for k in info['missing_keys'] if k != 'lm_head.weight']\n"
    "    if missing or info['unexpected_keys'] or info['mismatched_keys']:\n"
    "        failures.append(f'{folder}: loading info {info}')\n"
    "    with torch.no_grad():\n"
    "        got = model.eval()(input_ids=ids, attention_mask=mask).logits\n"
    "    if not torch.equal(got, expected[key]):\n"
    "        failures.append(f'{folder}: logits differ, max {(got - expected[key]).abs().max().item()}')\n"
    "check(OPTForCausalLM, 'a_st', 'a')\n"
    "check(OPTForSequenceClassification, 'b_st', 'b')\n"
    "check(OPTForSequenceClassification, 'b_c', 'b')\n"
    "with safe_open(os.path.join(root, 'b_c', 'model.safetensors'), framework='pt') as f:\n"
    "    if f.metadata() != {'format': 'pt', 'written_by': 'test_io_convert'}:\n"
    "        failures.append(f'b_c metadata {f.metadata()}')\n"
    "for f in failures:\n"
    "    print('FAIL', f)\n"
    "sys.exit(1 if failures else 0)\n";

static char root[1024];
static char tool[2048];

/* Path under the scratch root; the result lives until the fourth next call. */
static const char *in_root(const char *name) {
    static char buf[4][2048];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", root, name);
    return buf[slot];
}

static int run(const char *fmt, const char *a, const char *b) {
    char command[8192];
    snprintf(command, sizeof command, fmt, a, b);
    return system(command);
}

/* Parameters of the 2-layer OPT decoder: embed_tokens, embed_positions and the
 * final layer norm (weight, bias) = 4; per layer q/k/v/out projections with
 * biases (8), two layer norms (4), fc1 and fc2 with biases (4) = 16. */
enum { DECODER_TENSORS = 4 + 2 * 16 };

/* Reads every tensor of `folder` as float32 and writes them to `out` with
 * rc_st_writer, so transformers must accept the C writer's output. */
static void rewrite_with_c_writer(const rc_safetensors *st, const char *out) {
    rc_st_writer *w;
    CHECK(rc_st_writer_new(&w) == RC_OK, "writer");
    size_t n = rc_st_count(st);
    float **buffers = calloc(n, sizeof *buffers);
    for (size_t i = 0; i < n; i++) {
        const rc_tensor_view *t = rc_st_tensor_at(st, i);
        buffers[i] = malloc((t->n_elements ? t->n_elements : 1) * sizeof(float));
        CHECK(rc_tensor_to_f32(t, buffers[i], t->n_elements) == RC_OK, "read %s: %s", t->name, rc_last_error());
        CHECK(rc_st_writer_add(w, t->name, RC_DTYPE_F32, t->n_dims, t->shape, buffers[i]) == RC_OK, "add %s",
              t->name);
    }
    CHECK(rc_st_writer_add_metadata(w, "format", "pt") == RC_OK, "metadata");
    CHECK(rc_st_writer_add_metadata(w, "written_by", "test_io_convert") == RC_OK, "metadata");
    CHECK(rc_st_writer_write(w, out) == RC_OK, "write %s: %s", out, rc_last_error());
    rc_st_writer_free(w);
    for (size_t i = 0; i < n; i++) free(buffers[i]);
    free(buffers);
}

int main(void) {
    if (system("python3 -c 'import torch, transformers, safetensors' >/dev/null 2>&1") != 0) {
        printf("test_io_convert: python3 with torch, transformers and safetensors not found; skipped\n");
        return TEST_SKIP;
    }
    snprintf(root, sizeof root, "%s/io_convert", test_tmp_dir());
    snprintf(tool, sizeof tool, "%s/../tools/convert_to_safetensors.py", test_golden_dir());
    CHECK(rc_path_is_file(tool), "converter not found at %s", tool);
    CHECK(rc_mkdir_p(root) == RC_OK, "mkdir %s: %s", root, rc_last_error());

    char make_script[2048], check_script[2048];
    snprintf(make_script, sizeof make_script, "%s", in_root("make_models.py"));
    snprintf(check_script, sizeof check_script, "%s", in_root("check_models.py"));
    CHECK(rc_write_file_atomic(make_script, make_models_py, strlen(make_models_py)) == RC_OK, "write script");
    CHECK(rc_write_file_atomic(check_script, check_models_py, strlen(check_models_py)) == RC_OK, "write script");
    if (run("python3 '%s' '%s'", make_script, root) != 0) {
        CHECK(0, "making the PyTorch models failed (see above)");
        return test_finish("test_io_convert");
    }

    /* Before conversion, rewardc refuses the folder and names the converter. */
    rc_safetensors *st = NULL;
    CHECK(rc_st_open(in_root("a"), &st) == RC_ERR_UNSUPPORTED && strstr(rc_last_error(), "convert_to_safetensors.py"),
          "a .bin-only folder should point at the converter: %s", rc_last_error());

    char out_arg[2200];
    snprintf(out_arg, sizeof out_arg, "%s' --out '%s", in_root("a"), in_root("a_st"));
    CHECK(run("python3 '%s' '%s'", tool, out_arg) == 0, "converting the tied causal LM failed");
    CHECK(run("python3 '%s' '%s' 2>/dev/null", tool, out_arg) != 0, "converting again without --force must refuse");
    snprintf(out_arg, sizeof out_arg, "%s' --out '%s' --max-shard-size '20KB", in_root("b"), in_root("b_st"));
    CHECK(run("python3 '%s' '%s'", tool, out_arg) == 0, "converting the sharded classifier failed");
    CHECK(run("python3 '%s' '%s' 2>/dev/null", tool, in_root("empty")) != 0, "a folder without weights must fail");

    /* The tied causal LM: lm_head.weight shared embed_tokens' storage, so it is dropped. */
    CHECK(rc_st_open(in_root("a_st"), &st) == RC_OK, "open a_st: %s", rc_last_error());
    if (st) {
        CHECK(rc_st_count(st) == DECODER_TENSORS, "a_st has %zu tensors, expected %d", rc_st_count(st),
              DECODER_TENSORS);
        CHECK(rc_st_find(st, "lm_head.weight") == NULL, "the tied lm_head.weight should be dropped");
        const rc_tensor_view *embed = rc_st_find(st, "model.decoder.embed_tokens.weight");
        const int64_t embed_shape[2] = {50, 16}, positions_shape[2] = {32 + 2, 16};
        CHECK(embed && rc_tensor_check_shape(embed, 2, embed_shape) == RC_OK, "embed_tokens [50, 16]");
        const rc_tensor_view *positions = rc_st_find(st, "model.decoder.embed_positions.weight");
        CHECK(positions && rc_tensor_check_shape(positions, 2, positions_shape) == RC_OK,
              "OPT positions carry the offset of 2: %s", rc_last_error());
        CHECK(rc_st_metadata(st, "format") && strcmp(rc_st_metadata(st, "format"), "pt") == 0, "format metadata");
        CHECK(rc_path_is_file(in_root("a_st/config.json")), "config.json copied");
        rc_st_close(st);
    }

    /* The classifier, converted into several safetensors shards. */
    CHECK(rc_st_open(in_root("b_st"), &st) == RC_OK, "open b_st: %s", rc_last_error());
    if (st) {
        CHECK(rc_path_is_file(in_root("b_st/model.safetensors.index.json")), "b_st should be sharded");
        CHECK(rc_st_count(st) == DECODER_TENSORS + 1, "b_st has %zu tensors", rc_st_count(st));
        const rc_tensor_view *first = rc_st_tensor_at(st, 0);
        bool several_files = false;
        for (size_t i = 0; first && i < rc_st_count(st); i++)
            several_files |= strcmp(rc_st_tensor_at(st, i)->file, first->file) != 0;
        CHECK(several_files, "tensors should come from more than one shard");

        /* score.weight compared with the value transformers held in memory. */
        rc_safetensors *expected = NULL;
        CHECK(rc_st_open(in_root("expected.safetensors"), &expected) == RC_OK, "open expected: %s", rc_last_error());
        float score[16], want[16];
        CHECK(rc_st_read_f32(st, "score.weight", score, 16) == RC_OK, "read score: %s", rc_last_error());
        CHECK(expected && rc_st_read_f32(expected, "score", want, 16) == RC_OK, "read expected score");
        CHECK(memcmp(score, want, sizeof score) == 0, "score.weight differs from the PyTorch model");
        rc_st_close(expected);

        CHECK(rc_mkdir_p(in_root("b_c")) == RC_OK, "mkdir b_c");
        rewrite_with_c_writer(st, in_root("b_c/model.safetensors"));
        char *config;
        size_t len;
        CHECK(rc_read_file(in_root("b_st/config.json"), &config, &len) == RC_OK, "read config");
        CHECK(rc_write_file_atomic(in_root("b_c/config.json"), config, len) == RC_OK, "copy config");
        free(config);
        rc_st_close(st);
    }

    CHECK(run("python3 '%s' '%s'", check_script, root) == 0,
          "transformers outputs from the converted / C-written folders differ (see above)");
    return test_finish("test_io_convert");
}
