#!/usr/bin/env python3
"""Reference outputs of the real SmolLM2-135M-Instruct (the shared Q4_1 GGUF)
from transformers, for tests/test_smollm2_reference.c.

rewardc imports the GGUF (`rewardc import`); transformers loads the same GGUF
itself (LlamaForSequenceClassification.from_pretrained(dir, gguf_file=...),
float32, eager attention) and takes the imported folder's score.weight, so
both models hold the same weights. For 104 real texts (HH-RLHF harmless dev
dialogues in the model's ChatML template, IMDB train reviews; lengths from
~30 to ~500 tokens) it records the token ids (the imported tokenizer.json
through `tokenizers`, checked against transformers' GGUF tokenizer), the
batches they ran in, the pooled index, the score head's input there (the
final RMSNorm's output) and the reward. Then one training step: 4 HH
chosen/rejected pairs, loss mean(-logsigmoid(r_c - r_r)), backward, and the
gradients of layers 28 and 29, the final norm and the score head.

Everything is computed twice: in float32 (the reference rewardc must match)
and in float64 (RMSNorm, rotary tables and softmax too, which transformers
would otherwise run in float32), the exact value up to ~1e-16 that tells how
far float32 itself strays on this model; the test's bounds come from it.

Gradients of the 14 weight matrices are too large to commit (3.5M floats per
layer): each is kept as 2048 elements at seeded random positions and the sum
of squares of every row (which every element reaches); vectors in full.

Usage: /work/venv/bin/python tools/ref_smollm2.py [--rewardc build/rewardc]
       [--data ../shared/data] [--out golden/smollm2]
"""
import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors.numpy import save_file
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaForSequenceClassification
from transformers.models.llama import modeling_llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF_REL = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
PAD = 2  # <|im_end|>, also the EOS
SEED = 20261207
SAMPLES = 2048  # gradient elements kept per weight matrix
MAX_BATCH_TOKENS = 1024  # rows x T of a batch (the C test runs the same batches)
MAX_ROWS = 8
# Tokens per text: bins of (low, high, count), the same for HH and IMDB;
# mostly short so that the C test stays within a minute on 2 cores.
LENGTH_BINS = [(32, 64, 28), (64, 96, 12), (96, 192, 8), (192, 320, 2), (320, 512, 2)]
GRAD_LAYERS = (28, 29)
MATRICES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
VECTORS = ["input_layernorm", "post_attention_layernorm"]


# ---- data ----

def hh_messages(text):
    """HH "\\n\\nHuman: ... \\n\\nAssistant: ..." as rewardc prepare splits it
    (rc_dialogue_to_messages): each turn's text between markers, trimmed."""
    markers = {"\n\nHuman:": "user", "\n\nAssistant:": "assistant"}
    found = []
    for marker, role in markers.items():
        at = text.find(marker)
        while at >= 0:
            found.append((at, marker, role))
            at = text.find(marker, at + 1)
    found.sort()
    messages = []
    for i, (at, marker, role) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else len(text)
        messages.append({"role": role, "content": text[at + len(marker):end].strip(" \n\t\r")})
    return messages


def read_hh(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_imdb_train(path):
    reviews = []
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] == "train" and parts[2] in ("pos", "neg"):
                reviews.append((member.name, tar.extractfile(member).read().decode("utf-8")))
    reviews.sort()
    return reviews


def pick_by_length(candidates, rng):
    """candidates: (length, item) pairs; picks LENGTH_BINS' counts per bin."""
    chosen = []
    for low, high, count in LENGTH_BINS:
        pool = [c for c in candidates if low <= c[0] < high]
        if len(pool) < count:
            sys.exit(f"only {len(pool)} texts of {low}..{high} tokens")
        chosen += rng.sample(pool, count)
    return chosen


def make_batches(lengths):
    """Texts sorted by length, cut into batches of at most MAX_ROWS rows and
    MAX_BATCH_TOKENS padded slots: a list of index lists."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current = [], []
    for i in order:
        rows = len(current) + 1
        if current and (rows > MAX_ROWS or rows * lengths[i] > MAX_BATCH_TOKENS):
            batches.append(current)
            current = []
        current.append(i)
    batches.append(current)
    return batches


def pad_batch(id_lists):
    T = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), T), PAD, dtype=torch.long)
    mask = torch.zeros((len(id_lists), T), dtype=torch.long)
    for r, x in enumerate(id_lists):
        ids[r, :len(x)] = torch.tensor(x)
        mask[r, :len(x)] = 1
    return ids, mask


# ---- float64 everywhere ----

def rms_norm_f64(self, x):
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def rotary_f64(self, x, position_ids):
    dim = self.inv_freq.shape[0] * 2
    base = self.config.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = position_ids[:, :, None].to(torch.float64) * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def eager_attention_f64(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    key = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = torch.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def use_float64_ops():
    modeling_llama.LlamaRMSNorm.forward = rms_norm_f64
    modeling_llama.LlamaRotaryEmbedding.forward = rotary_f64
    modeling_llama.eager_attention_forward = eager_attention_f64


# ---- the model runs ----

def pooled_index(ids):
    """transformers' pooling: the rightmost token that is not the pad id."""
    positions = torch.arange(ids.shape[1])
    return (positions * (ids != PAD).to(torch.int32)).argmax(-1)


def score_batches(model, id_lists, batches):
    captured = {}
    hook = model.model.norm.register_forward_hook(lambda mod, inp, out: captured.__setitem__("h", out))
    n = len(id_lists)
    hidden = torch.zeros((n, model.config.hidden_size), dtype=torch.float64)
    rewards = torch.zeros(n, dtype=torch.float64)
    pooled = torch.zeros(n, dtype=torch.int32)
    with torch.no_grad():
        for batch in batches:
            ids, mask = pad_batch([id_lists[i] for i in batch])
            logits = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            where = pooled_index(ids)
            h = captured["h"][torch.arange(len(batch)), where]
            # the hook saw the head's input: the head applied to it is the logit
            check = h @ model.score.weight[0]
            assert torch.allclose(check, logits, rtol=1e-5, atol=1e-6), (check, logits)
            for r, i in enumerate(batch):
                hidden[i], rewards[i], pooled[i] = h[r].double(), logits[r].double(), int(where[r])
    hook.remove()
    return hidden, rewards, pooled


def grad_names():
    names = []
    for layer in GRAD_LAYERS:
        names += [f"model.layers.{layer}.{m}.weight" for m in MATRICES]
        names += [f"model.layers.{layer}.{v}.weight" for v in VECTORS]
    return names + ["model.norm.weight", "score.weight"]


def train_step(model, chosen, rejected):
    """One backward of the pairwise loss; returns loss, rewards, {name: grad}."""
    model.zero_grad(set_to_none=True)
    ids, mask = pad_batch(chosen + rejected)
    rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    P = len(chosen)
    loss = -torch.nn.functional.logsigmoid(rewards[:P] - rewards[P:]).mean()
    loss.backward()
    params = dict(model.named_parameters())
    return loss.item(), rewards.detach().double(), {n: params[n].grad.detach().double() for n in grad_names()}


def load_model(gguf_dir, gguf_file, score_weight, dtype):
    model = LlamaForSequenceClassification.from_pretrained(
        gguf_dir, gguf_file=gguf_file, torch_dtype=torch.float32, attn_implementation="eager",
        num_labels=1, pad_token_id=PAD)
    with torch.no_grad():
        model.score.weight.copy_(score_weight)
    return model.to(dtype).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rewardc", default=os.path.join(ROOT, "build", "rewardc"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "golden", "smollm2"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gguf = os.path.join(args.data, GGUF_REL)
    gguf_dir, gguf_file = os.path.split(os.path.abspath(gguf))
    rng = random.Random(SEED)
    tmp = tempfile.TemporaryDirectory()
    imported = os.path.join(tmp.name, "imported")
    subprocess.run([args.rewardc, "import", "--gguf", gguf, "--out", imported], check=True,
                   stdout=subprocess.DEVNULL)
    score_weight = load_file(os.path.join(imported, "model.safetensors"))["score.weight"]

    tok = tokenizers.Tokenizer.from_file(os.path.join(imported, "tokenizer.json"))
    hf_tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    encode = lambda text: tok.encode(text, add_special_tokens=True).ids  # noqa: E731

    def render(messages):
        return hf_tok.apply_chat_template(messages, tokenize=False)

    # texts: HH dialogues (chosen or rejected side at random) and IMDB reviews
    hh = read_hh(os.path.join(args.data, "hh-rlhf", "harmless_base_dev.jsonl.gz"))
    hh_candidates = []
    for index, pair in enumerate(hh):
        side = rng.choice(["chosen", "rejected"])
        messages = hh_messages(pair[side])
        text = render(messages)
        hh_candidates.append((len(encode(text)), {"source": f"hh-rlhf harmless_base_dev line {index + 1} {side}",
                                                   "messages": messages, "text": text}))
    imdb = read_imdb_train(os.path.join(args.data, "imdb", "aclImdb_subset.tar.gz"))
    imdb_candidates = [(len(encode(text)), {"source": name, "text": text}) for name, text in imdb]
    picked = pick_by_length(hh_candidates, rng) + pick_by_length(imdb_candidates, rng)
    texts = [item for _, item in picked]
    id_lists = [encode(t["text"]) for t in texts]

    # the GGUF's own tokenizer in transformers agrees (after the BOS it adds
    # against add_bos_token=false, see tools/check_gguf_import.py)
    for t, ids in zip(texts, id_lists):
        ref = hf_tok(t["text"])["input_ids"]
        if ref[:1] == [hf_tok.bos_token_id] and ref[1:] == ids:
            ref = ref[1:]
        assert ref == ids, t["source"]
        assert PAD != ids[-1], t["source"]  # the score is read at the text's own last token

    # the training batch: 4 pairs of short HH dialogues, not among the texts
    used = {t["source"].split(" ")[3] for t in texts if t["source"].startswith("hh")}
    pair_pool = []
    for index, pair in enumerate(hh):
        c, r = encode(render(hh_messages(pair["chosen"]))), encode(render(hh_messages(pair["rejected"])))
        if str(index + 1) not in used and 60 <= max(len(c), len(r)) < 100:
            pair_pool.append((index, c, r))
    train_pairs = rng.sample(pair_pool, 4)
    chosen, rejected = [p[1] for p in train_pairs], [p[2] for p in train_pairs]

    batches = make_batches([len(x) for x in id_lists])
    results = {}
    for label, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        if dtype == torch.float64:
            use_float64_ops()
        model = load_model(gguf_dir, gguf_file, score_weight, dtype)
        hidden, rewards, pooled = score_batches(model, id_lists, batches)
        loss, train_rewards, grads = train_step(model, chosen, rejected)
        results[label] = dict(hidden=hidden, rewards=rewards, pooled=pooled, loss=loss,
                              train_rewards=train_rewards, grads=grads)
        print(f"{label}: rewards {rewards[:4].tolist()}, train loss {loss:.8f}", flush=True)
        del model
    assert torch.equal(results["f32"]["pooled"], results["f64"]["pooled"])

    # the tensors
    flat = np.array([i for ids in id_lists for i in ids], dtype=np.int32)
    batch_of = np.zeros(len(texts), dtype=np.int32)
    for b, batch in enumerate(batches):
        batch_of[batch] = b
    f32, f64 = results["f32"], results["f64"]
    tensors = {
        "ids": flat,
        "lengths": np.array([len(x) for x in id_lists], dtype=np.int32),
        "batch": batch_of,
        "pooled_index": f32["pooled"].numpy().astype(np.int32),
        "hidden": f32["hidden"].float().numpy(),
        "rewards": f32["rewards"].float().numpy(),
        "hidden_f64": f64["hidden"].float().numpy(),
        "rewards_f64": f64["rewards"].float().numpy(),
        "train.ids": np.array([i for ids in chosen + rejected for i in ids], dtype=np.int32),
        "train.lengths": np.array([len(x) for x in chosen + rejected], dtype=np.int32),
        "train.rewards": f32["train_rewards"].float().numpy(),
        "train.rewards_f64": f64["train_rewards"].float().numpy(),
        "train.loss": np.array([f32["loss"]], dtype=np.float32),
        "train.loss_f64": np.array([f64["loss"]], dtype=np.float32),
    }
    sample_rng = np.random.default_rng(SEED)
    for name in grad_names():
        g32, g64 = f32["grads"][name], f64["grads"][name]
        if g32.dim() == 2 and g32.shape[0] > 1:  # a weight matrix: samples + row sums of squares
            index = np.sort(sample_rng.choice(g32.numel(), SAMPLES, replace=False)).astype(np.int32)
            tensors[f"grad.{name}.index"] = index
            for suffix, g in (("", g32), ("_f64", g64)):
                tensors[f"grad.{name}.sample{suffix}"] = g.flatten()[index].float().numpy()
                tensors[f"grad.{name}.row_sumsq{suffix}"] = (g * g).sum(1).float().numpy()
        else:
            tensors[f"grad.{name}"] = g32.flatten().float().numpy()
            tensors[f"grad.{name}_f64"] = g64.flatten().float().numpy()

    os.makedirs(args.out, exist_ok=True)
    metadata = {
        "gguf": GGUF_REL, "pad_token_id": str(PAD), "padding": "right, each batch to its longest text",
        "train_pairs": json.dumps([f"hh-rlhf harmless_base_dev line {p[0] + 1}" for p in train_pairs]),
        "grad_layers": json.dumps(list(GRAD_LAYERS)), "samples_per_matrix": str(SAMPLES),
    }
    save_file(tensors, os.path.join(args.out, "reference.safetensors"), metadata=metadata)
    with open(os.path.join(args.out, "texts.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
        f.write("\n")
    write_manifest(args.out, gguf, args.threads)

    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    print(f"{len(texts)} texts, {len(flat)} tokens in {len(batches)} batches; float32 vs float64: "
          f"hidden rel {max(rel(f32['hidden'][i], f64['hidden'][i]) for i in range(len(texts))):.2e}, "
          f"reward max abs {float((f32['rewards'] - f64['rewards']).abs().max()):.2e}")
    for name in grad_names():
        g32, g64 = f32["grads"][name], f64["grads"][name]
        print(f"  {name}: float32 NMSE vs float64 {float(((g32 - g64) ** 2).sum() / (g64 ** 2).sum()):.2e}")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(out, gguf, threads):
    entries = []
    for name in ("reference.safetensors", "texts.json"):
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        entries.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    manifest = {
        "description": "SmolLM2-135M-Instruct (the shared Q4_1 GGUF) in transformers, float32 and float64, "
                       "for tests/test_smollm2_reference.c",
        "command": "/work/venv/bin/python tools/ref_smollm2.py --out golden/smollm2",
        "generator": "tools/ref_smollm2.py",
        "model": {"path": "../shared/data/" + GGUF_REL, "sha256": sha256_of(gguf)},
        "reference": "LlamaForSequenceClassification.from_pretrained(gguf_dir, gguf_file=..., float32, eager "
                     "attention, num_labels=1, pad_token_id=2) with the score.weight of `rewardc import` "
                     "(seed 42); float64: the same model .double() with RMSNorm, RoPE and softmax in float64",
        "torch_threads": threads,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "files": entries,
    }
    with open(os.path.join(out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
