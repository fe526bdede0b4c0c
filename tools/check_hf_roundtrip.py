#!/usr/bin/env python3
"""Check that a model folder (e.g. one written by rewardc) loads in transformers and scores
a golden batch the same way.

Loads MODEL_DIR with its family's *ForSequenceClassification (OPT, GPT-2, Llama, Qwen2, Qwen3,
Falcon, picked by config.json's model_type; float32, eager attention), and AutoTokenizer when
tokenizer files are present; runs the golden's input_ids / attention_mask (and position_ids,
when the golden was computed with explicit ones) through it; prints the rewards and the largest
difference to the golden rewards. The golden's train_config/eval_config names its family and
pad id: a folder of another family or pad id is refused rather than compared.

Exit status: 0 when that difference is at most --tolerance (default 1e-5), 1 when it is
larger, 2 when the folder or golden cannot be used (missing weights, shape mismatch, another
family, a transformers without the family's class, ...). Goldens with the pad id inside a text
need a transformers that pools at the rightmost non-pad token (tools/requirements.txt).

Usage: python3 tools/check_hf_roundtrip.py MODEL_DIR [--golden GOLDEN]
  e.g. MODEL_DIR = a folder rewardc saved from golden/llama/gqa3_untied, with
  --golden golden/llama/gqa3_untied/golden.safetensors
Without --golden, MODEL_DIR/golden.safetensors is used.
"""

import argparse
import os
import sys

import json

import numpy as np
import safetensors
import safetensors.numpy
import torch
import transformers
from transformers import AutoConfig, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_compat import allow_affine_free_layernorm  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
# config.json model_type -> the class a reward model of that family is (by name: an older
# transformers may lack some, e.g. Qwen3 before 4.51)
SEQUENCE_CLASSIFIERS = {
    "opt": "OPTForSequenceClassification",
    "gpt2": "GPT2ForSequenceClassification",
    "llama": "LlamaForSequenceClassification",
    "qwen2": "Qwen2ForSequenceClassification",
    "qwen3": "Qwen3ForSequenceClassification",
    "falcon": "FalconForSequenceClassification",
}
# transformers 4.56 renamed from_pretrained's torch_dtype to dtype (the old name still works,
# with a warning); the goldens pin 4.57.6, older installs may still run this check.
_VERSION = tuple(int(x) for x in transformers.__version__.split(".")[:2])
FLOAT32 = {"dtype": torch.float32} if _VERSION >= (4, 56) else {"torch_dtype": torch.float32}


def load_model(model_dir):
    """Load the reward model; a folder without a score head would silently get a random one."""
    model_type = AutoConfig.from_pretrained(model_dir).model_type
    if model_type not in SEQUENCE_CLASSIFIERS:
        raise ValueError(f"{model_dir}/config.json: model_type {model_type!r} is not one of "
                         f"{', '.join(SEQUENCE_CLASSIFIERS)}")
    cls = getattr(transformers, SEQUENCE_CLASSIFIERS[model_type], None)
    if cls is None:
        raise ValueError(f"transformers {transformers.__version__} has no "
                         f"{SEQUENCE_CLASSIFIERS[model_type]} (tools/requirements.txt pins the "
                         "release the goldens use)")
    model, info = cls.from_pretrained(
        model_dir, attn_implementation="eager", output_loading_info=True, **FLOAT32)
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


def golden_metadata(golden_path):
    with safetensors.safe_open(golden_path, "np") as f:
        return f.metadata() or {}


def golden_config(golden_path):
    """The golden's train_config or eval_config (older goldens: without family / pad id)."""
    metadata = golden_metadata(golden_path)
    text = metadata.get("train_config") or metadata.get("eval_config") or "{}"
    return json.loads(text)


def check_golden_matches(golden_path, model):
    """A golden of one family or pad id says nothing about a model of another."""
    cfg = golden_config(golden_path)
    family = cfg.get("family")
    if family is not None and family != model.config.model_type:
        raise ValueError(f"{golden_path} is a {family} golden, the model is "
                         f"{model.config.model_type}")
    pad_id = cfg.get("pad_token_id")
    if pad_id is not None and pad_id != model.config.pad_token_id:
        raise ValueError(f"{golden_path} pools at the rightmost token that is not {pad_id}, the "
                         f"model's config.json has pad_token_id {model.config.pad_token_id}")


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
    allow_affine_free_layernorm()
    try:
        golden = safetensors.numpy.load_file(golden_path)
        for key in ("input_ids", "attention_mask", "rewards"):
            if key not in golden:
                raise ValueError(f"{golden_path}: no tensor '{key}'")
        inputs = {"input_ids": torch.from_numpy(golden["input_ids"]).long(),
                  "attention_mask": torch.from_numpy(golden["attention_mask"]).long()}
        if "position_ids" in golden:  # the golden passed positions within the text explicitly
            inputs["position_ids"] = torch.from_numpy(golden["position_ids"]).long()
        model = load_model(args.model_dir)
        check_golden_matches(golden_path, model)
        input_ids = inputs["input_ids"]
        if int(input_ids.max()) >= model.config.vocab_size:
            raise ValueError(f"{golden_path}: token id {int(input_ids.max())} is outside the "
                             f"model's vocab_size {model.config.vocab_size}")
        check_tokenizer(args.model_dir, model, input_ids)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    print(f"{type(model).__name__} (transformers {transformers.__version__}), inputs "
          f"{', '.join(inputs)}")
    with torch.no_grad():
        rewards = model(**inputs).logits[:, 0]
    rewards = rewards.numpy()
    expected = golden["rewards"]
    max_diff = float(np.abs(rewards.astype(np.float64) - expected.astype(np.float64)).max())
    np.set_printoptions(precision=7, suppress=True)
    print(f"rewards        {rewards}")
    print(f"golden rewards {expected}")
    print(f"max |diff| = {max_diff:.3e} (tolerance {args.tolerance:.1e})")
    if not max_diff <= args.tolerance:  # written so that NaN fails too
        print("FAIL: rewards differ from the golden", file=sys.stderr)
        made_with = golden_metadata(golden_path).get("transformers_version")
        attended_pad = bool(((inputs["input_ids"] == model.config.pad_token_id) &
                             (inputs["attention_mask"] == 1)).any())
        if attended_pad and made_with and made_with != transformers.__version__:
            print(f"note: the golden was made with transformers {made_with}, this is "
                  f"{transformers.__version__}; 4.46 pooled at the token before the first pad, "
                  "newer releases at the rightmost non-pad token (they differ where the pad id "
                  "occurs inside a text)", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
