#!/usr/bin/env python3
"""Check that folders rewardc wrote for a LoRA run load in PEFT / transformers and score the same.

  ADAPTER_DIR  an adapter folder rewardc saved (adapter_config.json + adapter_model.safetensors):
               loaded with PeftModel.from_pretrained on its base (base_model_name_or_path, a
               local folder) as *ForSequenceClassification, float32, eager attention;
  --merged DIR a folder `rewardc export --merge` (or rc_model_merge_lora + rc_model_save) wrote:
               loaded with plain transformers, no PEFT.
Each folder must hold rewardc_rewards.safetensors (input_ids, attention_mask and rewardc's
rewards for them; tests/test_trainable.c writes it next to every folder it saves, under
build/tests/tmp/adapter_<name>[_merged]). Position ids follow gen_golden.py's rule per family.

Exit status 0 when every reward is within --tolerance (default 1e-5, relative above 1) of
rewardc's, 1 otherwise, 2 when a folder cannot be used.

Usage: python3 tools/check_peft_roundtrip.py build/tests/tmp/adapter_gqa3_untied \\
           --merged build/tests/tmp/adapter_gqa3_untied_merged
"""

import argparse
import json
import os
import sys

import numpy as np
import safetensors.numpy
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden as gg  # noqa: E402
from hf_compat import allow_affine_free_layernorm  # noqa: E402


def inputs_of(folder, model_type):
    data = safetensors.numpy.load_file(os.path.join(folder, "rewardc_rewards.safetensors"))
    ids = torch.from_numpy(data["input_ids"].astype(np.int64))
    mask = torch.from_numpy(data["attention_mask"].astype(np.int64))
    inputs = {"input_ids": ids, "attention_mask": mask}
    if gg.FAMILIES[model_type]["positions"] == "explicit":
        inputs["position_ids"] = gg.position_ids_of(mask)
    return inputs, data["rewards"]


def compare(what, model, folder, model_type, tolerance):
    inputs, want = inputs_of(folder, model_type)
    with torch.no_grad():
        got = model(**inputs).logits[:, 0].numpy()
    worst = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    print(f"{what}: {len(want)} rewards, largest difference {worst:.2e}")
    return worst <= tolerance


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapter")
    parser.add_argument("--merged")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    import peft
    transformers.logging.set_verbosity_error()
    allow_affine_free_layernorm()
    with open(os.path.join(args.adapter, "adapter_config.json")) as f:
        base = json.load(f)["base_model_name_or_path"]
    if not os.path.isabs(base):
        base = os.path.join(args.adapter, base)
    if not os.path.isdir(base):
        print(f"error: base {base} is not a folder", file=sys.stderr)
        return 2
    with open(os.path.join(base, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    cls = gg.FAMILIES[model_type]["seq"]
    ok = True
    base_model = cls.from_pretrained(base, dtype=torch.float32, attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(base_model, args.adapter).eval()
    ok &= compare(f"PEFT {peft.__version__} on {args.adapter}", model, args.adapter, model_type,
                  args.tolerance)
    if args.merged:
        merged = cls.from_pretrained(args.merged, dtype=torch.float32,
                                     attn_implementation="eager").eval()
        ok &= compare(f"transformers {transformers.__version__} on {args.merged}", merged,
                      args.merged, model_type, args.tolerance)
        # PEFT's own merge of rewardc's adapter must agree with rewardc's export
        peft_merged = model.merge_and_unload()
        ok &= compare("PEFT merge_and_unload", peft_merged, args.merged, model_type,
                      args.tolerance)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
