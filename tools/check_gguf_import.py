#!/usr/bin/env python3
"""Checks `rewardc import` against transformers' own GGUF loading.

Imports the SmolLM2-135M-Instruct GGUF (../shared/data/models/...) with
rewardc, loads the folder with LlamaForSequenceClassification, loads the GGUF
with AutoModelForCausalLM.from_pretrained(dir, gguf_file=...), and compares
every base-model tensor (must be bit-identical) and the token ids that
AutoTokenizer gives for some texts on both. Prints a summary, exits 1 on any
difference. Needs torch, transformers and gguf (tools/requirements.txt).

Usage: /work/venv/bin/python tools/check_gguf_import.py [--rewardc build/rewardc] [--gguf FILE]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("REWARDC_DATA", os.path.join(ROOT, "..", "shared", "data"))
DEFAULT_GGUF = os.path.join(DATA, "models", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "In 2024, 12345 people wrote 3.14159 lines of code.",
    "<|im_start|>user\nWhat is a reward model?<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "Ünïcödé — naïve café, 日本語のテキスト, emoji 🙂",
    "def f(x):\n    return x ** 2  # square",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rewardc", default=os.path.join(ROOT, "build", "rewardc"))
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    args = ap.parse_args()
    gguf_dir, gguf_file = os.path.split(os.path.abspath(args.gguf))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "imported")
        subprocess.run([args.rewardc, "import", "--gguf", args.gguf, "--out", out], check=True)

        ours = LlamaForSequenceClassification.from_pretrained(out, torch_dtype=torch.float32)
        ref = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, torch_dtype=torch.float32)
        ours_sd = ours.state_dict()
        ref_sd = {k: v for k, v in ref.state_dict().items() if k.startswith("model.")}
        missing = sorted(set(ref_sd) - set(ours_sd))
        extra = sorted(set(ours_sd) - set(ref_sd) - {"score.weight"})
        if missing or extra:
            print(f"FAIL tensor names: missing {missing[:5]}, extra {extra[:5]}")
            failures += 1
        exact = 0
        for name, want in ref_sd.items():
            got = ours_sd.get(name)
            if got is None:
                continue
            if got.shape != want.shape or not torch.equal(got, want):
                diff = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
                print(f"FAIL {name}: shape {tuple(got.shape)} vs {tuple(want.shape)}, max |diff| {diff}")
                failures += 1
            else:
                exact += 1
        score = ours_sd["score.weight"]
        print(f"weights: {exact}/{len(ref_sd)} base-model tensors bit-identical to transformers' GGUF loading; "
              f"score.weight {tuple(score.shape)} std {score.std().item():.4f}")
        if ours.config.tie_word_embeddings is not True:
            print("FAIL config: tie_word_embeddings should be true")
            failures += 1

        tok_ours = AutoTokenizer.from_pretrained(out)
        tok_ref = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        # transformers' GGUF tokenizer (4.46) prepends BOS although the GGUF's
        # tokenizer.ggml.add_bos_token is false (as in HF's own SmolLM2
        # tokenizer); the import follows the GGUF, so that one BOS is set aside
        same, bos_only = 0, 0
        for text in TEXTS:
            a, b = tok_ours(text)["input_ids"], tok_ref(text)["input_ids"]
            if b == [tok_ref.bos_token_id] + a:
                b = b[1:]
                bos_only += 1
            if a == b:
                same += 1
            else:
                print(f"FAIL tokens of {text!r}:\n  ours {a}\n  ref  {b}")
                failures += 1
        print(f"tokenizer: {same}/{len(TEXTS)} texts give the same ids as transformers' GGUF tokenizer "
              f"({bos_only} after setting aside the BOS it adds against add_bos_token=false); "
              f"bos {tok_ours.bos_token!r} eos {tok_ours.eos_token!r} pad {tok_ours.pad_token!r}, "
              f"chat template {'present' if tok_ours.chat_template else 'MISSING'}")

        with torch.no_grad():  # the imported classifier runs: a finite reward per text
            batch = tok_ours(TEXTS[:2], return_tensors="pt", padding=True, return_token_type_ids=False)
            rewards = ours(**batch).logits.squeeze(-1)
        print(f"rewards of two texts (random head): {[round(r, 4) for r in rewards.tolist()]}")
        if not torch.isfinite(rewards).all():
            failures += 1
    print("OK" if failures == 0 else f"{failures} FAILURES")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
