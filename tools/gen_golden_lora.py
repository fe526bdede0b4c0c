#!/usr/bin/env python3
"""Goldens for rewardc's trainable-parameter sets: LoRA adapters from PEFT and top-N-layer
training, on the committed model goldens (golden/<family>/<name>/) as bases.

For each spec below it loads the base folder with transformers (float32, eager attention),
then either wraps it with PEFT (LoraConfig(task_type=SEQ_CLS): the score head is PEFT's
modules_to_save copy and trains fully) with every lora_A / lora_B set to random non-zero
values (PEFT's own init has B = 0, under which A gets no gradient), or freezes everything but
the top N layers, the final norm (and OPT's project_out) and the score head. It then runs the
base golden's batch through the gen_golden.py protocol: rewards, loss, the first backward's
gradients of every trainable parameter, and 5 AdamW steps (Trainer's decay groups over the
trainable parameters, get_scheduler, clip_grad_norm_ over the trainable parameters).

golden/lora/<name>/ holds
  - LoRA: adapter_config.json + adapter_model.safetensors as PEFT's save_pretrained writes
    them (base_model_name_or_path relative to the folder: rewardc resolves it there), so the
    C test also proves that a PEFT-saved adapter loads in rewardc;
  - top-N: config.json + model.safetensors (the base's, copied);
  - golden.safetensors: the batch, rewards, loss, accuracy, grad.<name> / final.<name> of the
    trainable parameters under rewardc's table names (PEFT's base_model.model. prefix and
    adapter name dropped; the head as score.weight), step_loss / step_lr / step_grad_norm,
    and train_config (gen_golden.py's keys plus lora / train_layers).

Usage: python3 tools/gen_golden_lora.py [--out golden/]   (needs peft, tools/requirements.txt)
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import peft
import safetensors.numpy
import torch
import transformers
from peft import LoraConfig, TaskType, get_peft_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden as gg  # noqa: E402
from golden_configs import CONFIGS  # noqa: E402
from hf_compat import allow_affine_free_layernorm  # noqa: E402

PINNED_PEFT = "0.17.1"

# name, base golden, and either lora (LoraConfig kwargs) or train_layers
SPECS = [
    dict(name="opt_r4_qv", base="opt/preln", seed=41,
         lora=dict(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])),
    dict(name="opt_r8_all_rslora", base="opt/postln_proj", seed=42,
         lora=dict(r=8, lora_alpha=4, target_modules="all-linear", use_rslora=True)),
    dict(name="llama_r8_all", base="llama/gqa3_untied", seed=43,
         lora=dict(r=8, lora_alpha=32, target_modules="all-linear")),
    dict(name="llama_r4_rslora", base="llama/mqa_llama3_tied", seed=44,
         lora=dict(r=4, lora_alpha=6, use_rslora=True,
                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"])),
    dict(name="gpt2_fused_r4", base="gpt2/right_pad_eos", seed=45,
         lora=dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"])),
    dict(name="falcon_fused_r4", base="falcon/7b_mqa", seed=46,
         lora=dict(r=4, lora_alpha=12, target_modules=["query_key_value", "dense_4h_to_h"])),
    dict(name="opt_top1", base="opt/preln", seed=47, train_layers=1),
    dict(name="llama_top1", base="llama/gqa3_untied", seed=48, train_layers=1),
]


def base_spec(base):
    family, name = base.split("/")
    return next(s for s in CONFIGS if s["family"] == family and s["name"] == name)


def rewardc_name(peft_name):
    """PEFT's parameter name -> rewardc's table name."""
    name = peft_name
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    name = name.replace(".modules_to_save.default", "").replace(".default", "")
    return name


def read_batch(base_dir, spec):
    g = safetensors.numpy.load_file(os.path.join(base_dir, "golden.safetensors"))
    input_ids = torch.from_numpy(g["input_ids"].astype(np.int64))
    attention_mask = torch.from_numpy(g["attention_mask"].astype(np.int64))
    margin = torch.from_numpy(g["margin"])
    return gg.model_inputs(spec, input_ids, attention_mask), margin


def freeze_below(model, spec, top):
    """requires_grad only for the top `top` layers, the final norm, project_out and score."""
    n_layers = model.config.num_hidden_layers
    top_layers = {f".{l}." for l in range(n_layers - top, n_layers)}
    after = ("decoder.final_layer_norm.", "model.norm.", "transformer.ln_f.", "project_out.",
             "score.")
    for name, p in model.named_parameters():
        in_top = any(t in name for t in top_layers) and (".layers." in name or ".h." in name)
        p.requires_grad_(in_top or any(a in name for a in after))


def build(spec, golden_root, out_root):
    bspec = base_spec(spec["base"])
    base_dir = os.path.join(golden_root, spec["base"])
    folder = os.path.join(out_root, spec["name"])
    os.makedirs(folder, exist_ok=True)
    model = gg.family_of(bspec)["seq"].from_pretrained(base_dir, dtype=torch.float32,
                                                       attn_implementation="eager")
    model.train()
    if "lora" in spec:
        config = LoraConfig(task_type=TaskType.SEQ_CLS, lora_dropout=0.0, **spec["lora"])
        model = get_peft_model(model, config)
        gen = torch.Generator().manual_seed(spec["seed"])
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_A." in name or ".lora_B." in name:
                    # non-zero B so every adapter gradient is tested; small enough
                    # that scale * B A stays below the base weights (at 0.2 the
                    # r8/alpha 32 adapter outweighed them and the rewards carried
                    # float32 noise of 1e-5, the tolerance itself)
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        model.peft_config["default"].base_model_name_or_path = os.path.relpath(base_dir, folder)
        model.save_pretrained(folder)
        readme = os.path.join(folder, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    else:
        freeze_below(model, bspec, spec["train_layers"])
        for f in ("config.json", "model.safetensors"):
            shutil.copyfile(os.path.join(base_dir, f), os.path.join(folder, f))

    inputs, margin = read_batch(base_dir, bspec)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [rewardc_name(n) for n, _ in trainable]
    rewards = model(**inputs).logits[:, 0]
    loss, accuracy = gg.pairwise_loss(rewards, margin, bspec["centering_coef"])
    model.zero_grad(set_to_none=True)
    loss.backward()
    first_grads = {rewardc_name(n): p.grad.detach().clone() for n, p in trainable}
    model.zero_grad(set_to_none=True)

    decay_names = set(transformers.Trainer.get_decay_parameter_names(None, model))
    decay = [p for n, p in trainable if n in decay_names]
    no_decay = [p for n, p in trainable if n not in decay_names]
    no_decay_names = [rewardc_name(n) for n, _ in trainable if n not in decay_names]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": gg.OPTIMIZER["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=gg.OPTIMIZER["learning_rate"], betas=(gg.OPTIMIZER["adam_beta1"],
                                                 gg.OPTIMIZER["adam_beta2"]),
        eps=gg.OPTIMIZER["adam_epsilon"], foreach=False)
    scheduler = transformers.get_scheduler(bspec["lr_scheduler_type"], optimizer,
                                           num_warmup_steps=gg.WARMUP_STEPS,
                                           num_training_steps=gg.NUM_STEPS)
    params = [p for _, p in trainable]
    step_loss, step_lr, step_grad_norm = [], [], []
    for step in range(gg.NUM_STEPS):
        step_lr.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        step_rewards = model(**inputs).logits[:, 0]
        total, _ = gg.pairwise_loss(step_rewards, margin, bspec["centering_coef"])
        total.backward()
        if step == 0:
            assert torch.equal(total, loss)
        norm = torch.nn.utils.clip_grad_norm_(params, gg.MAX_GRAD_NORM)
        step_loss.append(total.item())
        step_grad_norm.append(norm.item())
        optimizer.step()
        scheduler.step()

    tensors = gg.batch_tensors(bspec, inputs, margin, rewards, loss, accuracy)
    tensors.update({
        "step_loss": np.array(step_loss, dtype=np.float32),
        "step_lr": np.array(step_lr, dtype=np.float32),
        "step_grad_norm": np.array(step_grad_norm, dtype=np.float32),
    })
    for (peft_name, p), name in zip(trainable, names):
        tensors[f"grad.{name}"] = gg.to_f32(first_grads[name])
        tensors[f"final.{name}"] = gg.to_f32(p)
    cfg = json.loads(gg.train_config_json(bspec, margin.shape[0], no_decay_names,
                                          gg.analytically_zero_ranges(bspec, first_grads,
                                                                      step_grad_norm[0])))
    cfg.update({"base": spec["base"], "trainable_params": names, "peft_version": peft.__version__,
                "lora_init": "every lora_A and lora_B = normal(0, 0.2) from "
                             "torch.Generator(seed) in named_parameters order"})
    cfg["seed"] = spec["seed"]
    if "lora" in spec:
        cfg["lora"] = spec["lora"]
    else:
        cfg["train_layers"] = spec["train_layers"]
    metadata = {"train_config": json.dumps(cfg, sort_keys=True),
                "torch_version": torch.__version__,
                "transformers_version": transformers.__version__,
                "peft_version": peft.__version__}
    gg.write_safetensors(os.path.join(folder, "golden.safetensors"), tensors, metadata)
    print(f"{spec['name']}: loss {loss.item():.6f}, {len(names)} trainable tensors, "
          f"grad norms {step_grad_norm[0]:.4f} .. {step_grad_norm[-1]:.4f}")


def main(argv=None):
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "golden")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=root, help="golden folder (writes OUT/lora/)")
    args = parser.parse_args(argv)
    if transformers.__version__ != gg.PINNED_TRANSFORMERS or peft.__version__ != PINNED_PEFT:
        print(f"error: transformers {transformers.__version__} / peft {peft.__version__}; the "
              f"goldens pin {gg.PINNED_TRANSFORMERS} / {PINNED_PEFT}", file=sys.stderr)
        return 2
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    allow_affine_free_layernorm()
    for spec in SPECS:
        build(spec, args.out, os.path.join(args.out, "lora"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
