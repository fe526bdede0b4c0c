#!/usr/bin/env python3
"""Check that a model folder (e.g. one written by rewardc) loads in transformers and scores
a golden batch the same way.

Loads MODEL_DIR with AutoModelForSequenceClassification.from_pretrained (float32, eager
attention), and AutoTokenizer when tokenizer files are present; runs the golden's input_ids /
attention_mask through it; prints the rewards and the largest difference to the golden
rewards. Exit status: 0 when that difference is at most --tolerance (default 1e-5), 1 when it
is larger, 2 when the folder or golden cannot be used (missing weights, shape mismatch, ...).

Usage: python3 tools/check_hf_roundtrip.py MODEL_DIR [--golden golden/opt/preln/golden.safetensors]
Without --golden, MODEL_DIR/golden.safetensors is used.
"""

import argparse
import os
import sys

import numpy as np
import safetensors.numpy
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


def load_model(model_dir):
    """Load the reward model; a folder without a score head would silently get a random one."""
    model, info = AutoModelForSequenceClassification.from_pretrained(
        model_dir, torch_dtype=torch.float32, attn_implementation="eager",
        output_loading_info=True)
    if info["missing_keys"] or info["mismatched_keys"]:
        raise ValueError(f"{model_dir}: weights missing {info['missing_keys']} or with the wrong "
                         f"shape {info['mismatched_keys']}")
    if info["unexpected_keys"]:
        print(f"warning: {model_dir}: unused weights {info['unexpected_keys']}")
    if model.config.num_labels != 1:
        raise ValueError(f"{model_dir}/config.json: num_labels is {model.config.num_labels}, "
                         "a reward model needs 1")
    model.eval()
    return model


def check_tokenizer(model_dir, model, input_ids):
    """Tokenizer files, when present, must agree with the model on the pad id."""
    if not any(os.path.exists(os.path.join(model_dir, f)) for f in TOKENIZER_FILES):
        return
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id != model.config.pad_token_id:
        raise ValueError(f"{model_dir}: tokenizer pad id {tokenizer.pad_token_id} differs from "
                         f"config.json pad_token_id {model.config.pad_token_id}")
    print(f"tokenizer: {type(tokenizer).__name__}, vocab {len(tokenizer)}, "
          f"pad id {tokenizer.pad_token_id}")
    if int(input_ids.max()) < len(tokenizer):
        print(f"row 0 decodes to {tokenizer.decode(input_ids[0], skip_special_tokens=True)!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder with config.json and "
                        "model.safetensors")
    parser.add_argument("--golden", help="golden .safetensors with input_ids, attention_mask, "
                        "rewards (default: MODEL_DIR/golden.safetensors)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted |reward - golden reward| (default 1e-5)")
    args = parser.parse_args(argv)
    golden_path = args.golden or os.path.join(args.model_dir, "golden.safetensors")

    transformers.logging.set_verbosity_error()  # problems are reported below, not as warnings
    torch.use_deterministic_algorithms(True)
    try:
        golden = safetensors.numpy.load_file(golden_path)
        for key in ("input_ids", "attention_mask", "rewards"):
            if key not in golden:
                raise ValueError(f"{golden_path}: no tensor '{key}'")
        input_ids = torch.from_numpy(golden["input_ids"]).long()
        attention_mask = torch.from_numpy(golden["attention_mask"]).long()
        model = load_model(args.model_dir)
        if int(input_ids.max()) >= model.config.vocab_size:
            raise ValueError(f"{golden_path}: token id {int(input_ids.max())} is outside the "
                             f"model's vocab_size {model.config.vocab_size}")
        check_tokenizer(args.model_dir, model, input_ids)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    with torch.no_grad():
        rewards = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]
    rewards = rewards.numpy()
    expected = golden["rewards"]
    max_diff = float(np.abs(rewards.astype(np.float64) - expected.astype(np.float64)).max())
    np.set_printoptions(precision=7, suppress=True)
    print(f"rewards        {rewards}")
    print(f"golden rewards {expected}")
    print(f"max |diff| = {max_diff:.3e} (tolerance {args.tolerance:.1e})")
    if not max_diff <= args.tolerance:  # written so that NaN fails too
        print("FAIL: rewards differ from the golden", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
