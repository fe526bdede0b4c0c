#!/usr/bin/env python3
"""Writes the GGUF test files in golden/gguf/ with the PyPI `gguf` package
(pinned in tools/requirements.txt), for tests/test_gguf.c.

types.gguf: one tensor per ggml type rewardc dequantises, twice for the types
  gguf can quantise (`<type>.quant`: random normal floats through gguf's own
  quantize; `<type>.raw`: random bytes with finite f16 scales) and once for the
  others (`<type>.raw`), plus metadata of every value type (arrays of strings
  and nested arrays included), and general.alignment 64.
types_expected.safetensors: what gguf.quants.dequantize gives for each tensor
  (float32, the GGUF's numpy shape), the reference rewardc must match bit for bit.
tiny_<arch>.gguf (llama, qwen2, qwen3, gpt2, falcon): random float32 models as
  llama.cpp's converter lays them out (llama's q/k rows permuted, falcon's
  fused qkv regrouped, gpt2's Conv1D weights transposed), with a small
  byte-level BPE vocabulary; tiny_<arch>_hf.safetensors: the Hugging Face
  tensors they must import to, made here by the inverse numpy operations.

Usage: /work/venv/bin/python tools/gen_gguf_test.py [golden/gguf]
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "golden", "gguf")
rng = np.random.default_rng(20240611)

# byte offsets of the f16 scale fields in each block type (kept finite in raw blocks)
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def random_blocks(qtype, rows, row_len):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * row_len // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, row_len // block * size)


def write_types():
    w = gguf.GGUFWriter(os.path.join(OUT, "types.gguf"), arch="test")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.25)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo")
    w.add_uint64("test.u64", 2**40 + 3)
    w.add_int64("test.i64", -(2**40) - 3)
    w.add_float64("test.f64", 1e-300)
    w.add_array("test.strings", ["a", "", "ĠĠ xyz"])
    w.add_array("test.ints", [1, -2, 3])
    w.add_key_value("test.nested", [[1, 2], [3]], gguf.GGUFValueType.ARRAY)
    expected = {}

    def add(name, qtype, data):
        w.add_tensor(name, data, raw_dtype=None if qtype in (T.F32, T.F16) else qtype)
        expected[name] = np.ascontiguousarray(dequantize(data, qtype).astype(np.float32))

    rows, row32, row256 = 3, 64, 512
    x = (rng.standard_normal((rows, row32)) * 0.1).astype(np.float32)
    add("F32.raw", T.F32, x)
    add("F16.raw", T.F16, x.astype(np.float16))
    add("BF16.quant", T.BF16, quantize(x, T.BF16))
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        add(f"{qtype.name}.quant", qtype, quantize(x, qtype))
        add(f"{qtype.name}.raw", qtype, random_blocks(qtype, rows, row32))
    for qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        try:  # gguf 0.19 dequantises the K types but cannot quantise them
            add(f"{qtype.name}.quant", qtype, quantize(np.tile(x, (1, 8)), qtype))
        except NotImplementedError:
            pass
        add(f"{qtype.name}.raw", qtype, random_blocks(qtype, 2, row256))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, os.path.join(OUT, "types_expected.safetensors"))


# ---- tiny models ------------------------------------------------------------------

def tiny_vocab(w, pre):
    """A byte-level BPE vocabulary of 32 tokens: 3 specials, 24 single
    characters, 5 merges."""
    specials = ["<|endoftext|>", "<s>", "</s>"]
    chars = list("abcdehlnorstwĠ.,!?0123456")[:24]
    merged = ["he", "ll", "Ġw", "hell", "or"]
    tokens = specials + chars + merged
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["h e", "l l", "Ġ w", "he ll", "o r"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(pre == "llama-bpe")
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    return len(tokens)


def permute(wt, n_head):
    """llama.cpp's converter permutation of q/k rows (LlamaModel.permute)."""
    return wt.reshape(n_head, 2, wt.shape[0] // n_head // 2, *wt.shape[1:]).swapaxes(1, 2).reshape(wt.shape)


def write_tiny(arch):
    hidden, n_head, n_kv, ffn, layers, ctx = 16, 4, 2, 24, 2, 64
    hd = hidden // n_head
    w = gguf.GGUFWriter(os.path.join(OUT, f"tiny_{arch}.gguf"), arch=arch)
    vocab = tiny_vocab(w, {"llama": "smollm", "qwen2": "qwen2", "qwen3": "qwen2", "gpt2": "gpt-2",
                           "falcon": "falcon"}[arch])
    w.add_context_length(ctx)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_head_count(n_head)
    if arch == "gpt2":
        n_kv = n_head
    w.add_head_count_kv(n_kv)
    if arch in ("gpt2", "falcon"):
        w.add_layer_norm_eps(1e-5)
    else:
        w.add_feed_forward_length(ffn)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    if arch == "gpt2":
        w.add_feed_forward_length(4 * hidden)
    if arch == "qwen3":
        w.add_key_length(hd)
        w.add_value_length(hd)
    if arch == "llama":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(2.0)
    hf = {}

    def r(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    def put(name, value, hf_name=None, hf_value=None):
        w.add_tensor(name, value)
        if hf_name:
            hf[hf_name] = np.ascontiguousarray(value if hf_value is None else hf_value)

    if arch in ("llama", "qwen2", "qwen3"):
        put("token_embd.weight", r(vocab, hidden), "model.embed_tokens.weight")
        for i in range(layers):
            p, g = f"model.layers.{i}.", f"blk.{i}."
            q, k = r(n_head * hd, hidden), r(n_kv * hd, hidden)
            if arch == "llama":
                put(g + "attn_q.weight", permute(q, n_head), p + "self_attn.q_proj.weight", q)
                put(g + "attn_k.weight", permute(k, n_kv), p + "self_attn.k_proj.weight", k)
            else:
                put(g + "attn_q.weight", q, p + "self_attn.q_proj.weight")
                put(g + "attn_k.weight", k, p + "self_attn.k_proj.weight")
            put(g + "attn_v.weight", r(n_kv * hd, hidden), p + "self_attn.v_proj.weight")
            if arch == "qwen2":
                put(g + "attn_q.bias", r(n_head * hd), p + "self_attn.q_proj.bias")
                put(g + "attn_k.bias", r(n_kv * hd), p + "self_attn.k_proj.bias")
                put(g + "attn_v.bias", r(n_kv * hd), p + "self_attn.v_proj.bias")
            if arch == "qwen3":
                put(g + "attn_q_norm.weight", r(hd), p + "self_attn.q_norm.weight")
                put(g + "attn_k_norm.weight", r(hd), p + "self_attn.k_norm.weight")
            put(g + "attn_output.weight", r(hidden, n_head * hd), p + "self_attn.o_proj.weight")
            put(g + "attn_norm.weight", r(hidden), p + "input_layernorm.weight")
            put(g + "ffn_norm.weight", r(hidden), p + "post_attention_layernorm.weight")
            put(g + "ffn_gate.weight", r(ffn, hidden), p + "mlp.gate_proj.weight")
            put(g + "ffn_up.weight", r(ffn, hidden), p + "mlp.up_proj.weight")
            put(g + "ffn_down.weight", r(hidden, ffn), p + "mlp.down_proj.weight")
        put("output_norm.weight", r(hidden), "model.norm.weight")
        if arch == "qwen2":  # untied: the LM head is not part of a classifier
            put("output.weight", r(vocab, hidden))
    elif arch == "gpt2":
        put("token_embd.weight", r(vocab, hidden), "transformer.wte.weight")
        put("position_embd.weight", r(ctx, hidden), "transformer.wpe.weight")
        for i in range(layers):
            p, g = f"transformer.h.{i}.", f"blk.{i}."
            for gg, hh, out_dim, in_dim in (("attn_qkv", "attn.c_attn", 3 * hidden, hidden),
                                            ("attn_output", "attn.c_proj", hidden, hidden),
                                            ("ffn_up", "mlp.c_fc", 4 * hidden, hidden),
                                            ("ffn_down", "mlp.c_proj", hidden, 4 * hidden)):
                wt = r(out_dim, in_dim)  # GGUF [out, in]; HF Conv1D [in, out]
                put(g + gg + ".weight", wt, p + hh + ".weight", wt.T)
                put(g + gg + ".bias", r(out_dim), p + hh + ".bias")
            for gg, hh in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
                put(g + gg + ".weight", r(hidden), p + hh + ".weight")
                put(g + gg + ".bias", r(hidden), p + hh + ".bias")
        put("output_norm.weight", r(hidden), "transformer.ln_f.weight")
        put("output_norm.bias", r(hidden), "transformer.ln_f.bias")
    elif arch == "falcon":  # new decoder architecture: ln_attn and ln_mlp, grouped kv
        put("token_embd.weight", r(vocab, hidden), "transformer.word_embeddings.weight")
        for i in range(layers):
            p, g = f"transformer.h.{i}.", f"blk.{i}."
            hf_qkv = r((n_head + 2 * n_kv) * hd, hidden)  # HF: per kv group [q..., k, v]
            grouped = hf_qkv.reshape(n_kv, n_head // n_kv + 2, hd, hidden)
            q = grouped[:, :-2].reshape(n_head * hd, hidden)
            k = grouped[:, -2].reshape(n_kv * hd, hidden)
            v = grouped[:, -1].reshape(n_kv * hd, hidden)
            put(g + "attn_qkv.weight", np.concatenate([q, k, v]), p + "self_attention.query_key_value.weight",
                hf_qkv)
            put(g + "attn_output.weight", r(hidden, hidden), p + "self_attention.dense.weight")
            put(g + "attn_norm.weight", r(hidden), p + "ln_attn.weight")
            put(g + "attn_norm.bias", r(hidden), p + "ln_attn.bias")
            put(g + "attn_norm_2.weight", r(hidden), p + "ln_mlp.weight")
            put(g + "attn_norm_2.bias", r(hidden), p + "ln_mlp.bias")
            put(g + "ffn_up.weight", r(4 * hidden, hidden), p + "mlp.dense_h_to_4h.weight")
            put(g + "ffn_down.weight", r(hidden, 4 * hidden), p + "mlp.dense_4h_to_h.weight")
        put("output_norm.weight", r(hidden), "transformer.ln_f.weight")
        put("output_norm.bias", r(hidden), "transformer.ln_f.bias")
        put("output.weight", r(vocab, hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(hf, os.path.join(OUT, f"tiny_{arch}_hf.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_types()
    for arch in ("llama", "qwen2", "qwen3", "gpt2", "falcon"):
        write_tiny(arch)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes), gguf {gguf.__version__ if hasattr(gguf, '__version__') else '?'}")


if __name__ == "__main__":
    main()
