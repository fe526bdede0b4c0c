#!/usr/bin/env python3
"""Golden reference generator for the OPT reward model (rewardc's C side compares against these).

For each tiny OPT config it builds transformers' OPTForSequenceClassification (num_labels=1,
eager attention, no dropout) in float32 with fixed seeds, saves the checkpoint with
save_pretrained, and writes golden.safetensors holding one padded batch of chosen/rejected
pairs, the per-row rewards, the pairwise loss, every parameter gradient of the first backward,
and the losses / learning rates / gradient norms / parameters of 5 AdamW steps run the way
transformers' Trainer runs them (two weight-decay groups, get_scheduler, clip_grad_norm_).
It also writes float16/bfloat16 copies of the pre-LN checkpoint, the same decoder saved as
OPTForCausalLM and as a bare OPTModel, and golden/MANIFEST.json with a sha256 for every file.

Everything is deterministic: running it twice gives byte-identical files. The golden files are
written by write_safetensors() below instead of safetensors.save_file because the library
serialises the __metadata__ map in hash order, which changes from run to run.

Usage: python3 tools/gen_golden.py [--out golden/]
"""

import argparse
import copy
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import safetensors
import safetensors.numpy
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from transformers import (OPTConfig, OPTForCausalLM, OPTForSequenceClassification, OPTModel,
                          get_scheduler)
from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
from transformers.trainer_pt_utils import get_parameter_names

PAD_ID = 1
FIRST_CONTENT_ID = 3  # ids 0..2 are <s>, <pad>, </s>; content never contains the pad id
NUM_STEPS = 5
WARMUP_STEPS = 2
MAX_GRAD_NORM = 0.5

# Every setting shared by the trainable configs; recorded verbatim in each golden's train_config.
OPTIMIZER = {
    "learning_rate": 3e-3,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "weight_decay": 0.1,
}
NO_DECAY_RULE = ("weight_decay 0 for every parameter inside an nn.LayerNorm module (transformers "
                 "ALL_LAYERNORM_LAYERS via get_parameter_names) and every parameter whose name "
                 "contains 'bias'; all others (Linear weights, embed_tokens, embed_positions, "
                 "project_in/out, score) get weight_decay")
INIT_RULE = ("all parameters re-initialised after construction, in named_parameters order, from "
             "torch.Generator(seed): nn.LayerNorm weight = 1 + normal(0, 0.1); any bias = "
             "normal(0, 0.1); every other weight (incl. embed_tokens row 1 = pad) = normal(0, 0.2)")

# Batch layout: chosen lengths are rows 0..B-1, rejected lengths rows B..2B-1; chosen to cover
# the full sequence length, a 1- or 2-token sequence and differing lengths within each pair.
CONFIGS = [
    {
        "name": "preln",
        "seed": 1234,
        "opt": dict(vocab_size=101, hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
                    ffn_dim=64, max_position_embeddings=40, do_layer_norm_before=True,
                    word_embed_proj_dim=32, activation_function="relu", enable_bias=True,
                    layer_norm_elementwise_affine=True),
        "padding_side": "right",
        "seq_len": 12,
        "chosen_lengths": [12, 5, 9],
        "rejected_lengths": [2, 7, 12],
        "centering_coef": 0.0,
        "lr_scheduler_type": "linear",
    },
    {
        "name": "postln_proj",
        "seed": 2345,
        "opt": dict(vocab_size=67, hidden_size=24, num_attention_heads=2, num_hidden_layers=2,
                    ffn_dim=40, max_position_embeddings=32, do_layer_norm_before=False,
                    word_embed_proj_dim=16, activation_function="relu", enable_bias=True,
                    layer_norm_elementwise_affine=False),
        "padding_side": "left",
        "seq_len": 11,
        "chosen_lengths": [11, 1, 6],
        "rejected_lengths": [4, 9, 11],
        "centering_coef": 0.01,
        "lr_scheduler_type": "cosine",
    },
    {
        "name": "odd",
        "seed": 3456,
        "opt": dict(vocab_size=53, hidden_size=21, num_attention_heads=3, num_hidden_layers=3,
                    ffn_dim=37, max_position_embeddings=24, do_layer_norm_before=True,
                    word_embed_proj_dim=21, activation_function="gelu", enable_bias=False,
                    layer_norm_elementwise_affine=True),
        "padding_side": "right",
        "seq_len": 13,
        "chosen_lengths": [13, 2, 8, 5],
        "rejected_lengths": [10, 13, 1, 7],
        "centering_coef": 0.01,
        "lr_scheduler_type": "constant_with_warmup",
    },
    {
        # One 64-wide head, as OPT-125m's, over sequences longer than the CPU backend's query
        # blocks of 96 for wide heads (its banded products)
        "name": "wide",
        "seed": 4567,
        "opt": dict(vocab_size=50, hidden_size=64, num_attention_heads=1, num_hidden_layers=2,
                    ffn_dim=32, max_position_embeddings=104, do_layer_norm_before=True,
                    word_embed_proj_dim=64, activation_function="relu", enable_bias=True,
                    layer_norm_elementwise_affine=True),
        "padding_side": "right",
        "seq_len": 101,
        "chosen_lengths": [101, 2, 97],
        "rejected_lengths": [40, 101, 100],
        "centering_coef": 0.0,
        "lr_scheduler_type": "linear",
    },
]

# Settings that make HF's module deterministic and dropout-free; pad/bos/eos match real OPT.
COMMON_OPT = dict(pad_token_id=PAD_ID, bos_token_id=2, eos_token_id=2, dropout=0.0,
                  attention_dropout=0.0, layerdrop=0.0, use_cache=False)


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def make_config(spec, for_classification=True):
    kwargs = dict(COMMON_OPT)
    kwargs.update(spec["opt"])
    if for_classification:
        kwargs["num_labels"] = 1
    return OPTConfig(attn_implementation="eager", **kwargs)


def reinit_parameters(model, seed):
    """Overwrite HF's tiny default init so activations and gradients are well away from zero."""
    gen = torch.Generator().manual_seed(seed)
    layernorm_weights = {f"{mod_name}.weight" for mod_name, mod in model.named_modules()
                         if isinstance(mod, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in layernorm_weights:
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            elif name.endswith("bias"):
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.2 * torch.randn(param.shape, generator=gen))


def make_batch(spec, seed):
    """Padded batch of 2B rows (chosen then rejected) and B per-pair margins."""
    gen = torch.Generator().manual_seed(seed + 1)
    seq_len = spec["seq_len"]
    lengths = spec["chosen_lengths"] + spec["rejected_lengths"]
    assert len(spec["chosen_lengths"]) == len(spec["rejected_lengths"])
    assert max(lengths) == seq_len and min(lengths) <= 2
    input_ids = torch.full((len(lengths), seq_len), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), seq_len), dtype=torch.long)
    for row, length in enumerate(lengths):
        content = torch.randint(FIRST_CONTENT_ID, spec["opt"]["vocab_size"], (length,),
                                generator=gen)
        start = 0 if spec["padding_side"] == "right" else seq_len - length
        input_ids[row, start:start + length] = content
        attention_mask[row, start:start + length] = 1
    num_pairs = len(spec["chosen_lengths"])
    margin = torch.rand(num_pairs, generator=gen) - 0.5
    assert bool((margin.abs() > 1e-3).all())
    return input_ids, attention_mask, margin


def pooled_index_of(input_ids):
    """Rightmost non-pad position per row (the DESIGN.md rule), computed independently of HF."""
    seq_len = input_ids.shape[1]
    positions = torch.arange(seq_len).unsqueeze(0) * (input_ids != PAD_ID).long()
    return positions.argmax(dim=1)


def rewards_of(model, input_ids, attention_mask):
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]


def pairwise_loss(rewards, margin, centering_coef):
    num_pairs = margin.shape[0]
    chosen, rejected = rewards[:num_pairs], rewards[num_pairs:]
    loss = (-F.logsigmoid(chosen - rejected - margin)).mean()
    if centering_coef != 0.0:
        loss = loss + centering_coef * ((chosen + rejected) ** 2).mean()
    accuracy = (chosen > rejected).float().mean()
    return loss, accuracy


def check_pooling(model, input_ids, attention_mask, rewards):
    """HF 4.46 pools at (first pad - 1) mod T; check it picks the same rows as pooled_index_of."""
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask)[0]
        all_logits = model.score(hidden)[:, :, 0]
        pooled = pooled_index_of(input_ids)
        gathered = all_logits[torch.arange(input_ids.shape[0]), pooled]
    if not torch.equal(gathered, rewards.detach()):
        raise RuntimeError("HF pooling differs from the rightmost-non-pad rule")


def decay_groups(model):
    decay_names = [n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n]
    decay, no_decay, no_decay_names = [], [], []
    for name, param in model.named_parameters():
        if name in decay_names:
            decay.append(param)
        else:
            no_decay.append(param)
            no_decay_names.append(name)
    groups = [{"params": decay, "weight_decay": OPTIMIZER["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return groups, no_decay_names


def to_f32(t):
    return t.detach().to(torch.float32).contiguous().numpy()


def to_i32(t):
    return t.detach().to(torch.int32).contiguous().numpy()


def atomic_write_bytes(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_safetensors(path, tensors, metadata):
    """safetensors writer with a fixed header order: __metadata__ (sorted), then tensors by name."""
    dtype_names = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}
    header = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}}
    chunks, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype_names[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    data = len(header_bytes).to_bytes(8, "little") + header_bytes + b"".join(chunks)
    atomic_write_bytes(path, data)
    # Read back with the library so a format mistake here cannot go unnoticed.
    loaded = safetensors.numpy.load_file(path)
    assert sorted(loaded) == sorted(tensors)
    for name, arr in tensors.items():
        assert loaded[name].dtype == arr.dtype and np.array_equal(loaded[name], arr), name


def train_config_json(spec, num_pairs, no_decay_names):
    cfg = dict(OPTIMIZER)
    cfg.update({
        "no_decay_rule": NO_DECAY_RULE,
        "no_decay_params": no_decay_names,
        "lr_scheduler_type": spec["lr_scheduler_type"],
        "warmup_steps": WARMUP_STEPS,
        "num_training_steps": NUM_STEPS,
        "max_grad_norm": MAX_GRAD_NORM,
        "clip_rule": "torch.nn.utils.clip_grad_norm_: coef = min(1, max_grad_norm / "
                     "(total_norm + 1e-6)), total_norm = L2 norm over all gradients",
        "optimizer": "torch.optim.AdamW(foreach=False, amsgrad=False)",
        "centering_coef": spec["centering_coef"],
        "padding_side": spec["padding_side"],
        "num_pairs": num_pairs,
        "seed": spec["seed"],
        "init": INIT_RULE,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    })
    return json.dumps(cfg, sort_keys=True)


def build_trainable(spec, out_dir):
    """Save the checkpoint, run forward/backward + 5 AdamW steps, write golden.safetensors."""
    torch.manual_seed(spec["seed"])
    model = OPTForSequenceClassification(make_config(spec))
    reinit_parameters(model, spec["seed"])
    model.train()  # all dropout probabilities are 0, so train and eval give the same numbers
    folder = os.path.join(out_dir, spec["name"])
    model.save_pretrained(folder, safe_serialization=True)
    initial_state = copy.deepcopy(model.state_dict())

    input_ids, attention_mask, margin = make_batch(spec, spec["seed"])
    num_pairs = margin.shape[0]
    param_names = [n for n, _ in model.named_parameters()]
    assert param_names == list(model.state_dict().keys())

    # First forward/backward: rewards, loss and the unclipped gradients.
    rewards = rewards_of(model, input_ids, attention_mask)
    check_pooling(model, input_ids, attention_mask, rewards)
    loss, accuracy = pairwise_loss(rewards, margin, spec["centering_coef"])
    model.zero_grad(set_to_none=True)
    loss.backward()
    first_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    groups, no_decay_names = decay_groups(model)
    optimizer = torch.optim.AdamW(groups, lr=OPTIMIZER["learning_rate"],
                                  betas=(OPTIMIZER["adam_beta1"], OPTIMIZER["adam_beta2"]),
                                  eps=OPTIMIZER["adam_epsilon"], foreach=False)
    scheduler = get_scheduler(spec["lr_scheduler_type"], optimizer,
                              num_warmup_steps=WARMUP_STEPS, num_training_steps=NUM_STEPS)
    params = [p for _, p in model.named_parameters()]
    step_loss, step_lr, step_grad_norm = [], [], []
    for step in range(NUM_STEPS):
        lrs = {g["lr"] for g in optimizer.param_groups}
        assert len(lrs) == 1
        step_lr.append(lrs.pop())
        optimizer.zero_grad(set_to_none=True)
        step_rewards = rewards_of(model, input_ids, attention_mask)
        step_total, _ = pairwise_loss(step_rewards, margin, spec["centering_coef"])
        step_total.backward()
        if step == 0:  # the training loop must start from exactly the golden forward/backward
            assert torch.equal(step_total, loss)
            for n, p in model.named_parameters():
                assert torch.equal(p.grad, first_grads[n]), n
        norm = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        step_loss.append(step_total.item())
        step_grad_norm.append(norm.item())
        optimizer.step()
        scheduler.step()
    if not (step_grad_norm[0] > MAX_GRAD_NORM and step_grad_norm[1] > MAX_GRAD_NORM):
        raise RuntimeError(f"{spec['name']}: clipping inactive on the first steps: {step_grad_norm}")

    tensors = {
        "input_ids": to_i32(input_ids),
        "attention_mask": to_i32(attention_mask),
        "pooled_index": to_i32(pooled_index_of(input_ids)),
        "margin": to_f32(margin),
        "rewards": to_f32(rewards),
        "loss": to_f32(loss.reshape(1)),
        "accuracy": to_f32(accuracy.reshape(1)),
        "step_loss": np.array(step_loss, dtype=np.float32),
        "step_lr": np.array(step_lr, dtype=np.float32),
        "step_grad_norm": np.array(step_grad_norm, dtype=np.float32),
    }
    for name, param in model.named_parameters():
        tensors[f"grad.{name}"] = to_f32(first_grads[name])
        tensors[f"final.{name}"] = to_f32(param)
    metadata = {
        "train_config": train_config_json(spec, num_pairs, no_decay_names),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    write_safetensors(os.path.join(folder, "golden.safetensors"), tensors, metadata)
    model.load_state_dict(initial_state)
    summary = {"loss": loss.item(), "step_loss": step_loss, "step_lr": step_lr,
               "step_grad_norm": step_grad_norm, "rewards": rewards.tolist()}
    return model, (input_ids, attention_mask, margin), summary


def build_low_precision(spec, base_model, batch, out_dir, dtype, name):
    """Save the pre-LN weights rounded to dtype; golden = that folder evaluated in float32."""
    folder = os.path.join(out_dir, name)
    low = copy.deepcopy(base_model).to(dtype)
    low.save_pretrained(folder, safe_serialization=True)
    reloaded = load_aligned(OPTForSequenceClassification, folder)
    input_ids, attention_mask, margin = batch
    with torch.no_grad():
        rewards = rewards_of(reloaded, input_ids, attention_mask)
        loss, accuracy = pairwise_loss(rewards, margin, spec["centering_coef"])
    tensors = {
        "input_ids": to_i32(input_ids),
        "attention_mask": to_i32(attention_mask),
        "pooled_index": to_i32(pooled_index_of(input_ids)),
        "margin": to_f32(margin),
        "rewards": to_f32(rewards),
        "loss": to_f32(loss.reshape(1)),
        "accuracy": to_f32(accuracy.reshape(1)),
    }
    eval_config = {"source": f"{spec['name']} initial weights cast to {str(dtype)[6:]}, loaded "
                             "with from_pretrained(torch_dtype=torch.float32)",
                   "centering_coef": spec["centering_coef"],
                   "padding_side": spec["padding_side"], "num_pairs": int(margin.shape[0])}
    metadata = {"eval_config": json.dumps(eval_config, sort_keys=True),
                "torch_version": torch.__version__,
                "transformers_version": transformers.__version__}
    write_safetensors(os.path.join(folder, "golden.safetensors"), tensors, metadata)


def build_decoder_only(spec, base_model, out_dir):
    """Same decoder saved as OPTForCausalLM (tied lm_head) and as a bare OPTModel.

    Their configs carry no num_labels, like the published facebook/opt-* checkpoints."""
    decoder_state = {k: v for k, v in base_model.state_dict().items() if k.startswith("model.")}
    causal = OPTForCausalLM(make_config(spec, for_classification=False))
    missing, unexpected = causal.load_state_dict(decoder_state, strict=False)
    assert missing == ["lm_head.weight"] and not unexpected, (missing, unexpected)
    causal.tie_weights()
    assert causal.lm_head.weight.data_ptr() == causal.model.decoder.embed_tokens.weight.data_ptr()
    causal.save_pretrained(os.path.join(out_dir, f"{spec['name']}_causallm"),
                           safe_serialization=True)

    bare = OPTModel(make_config(spec, for_classification=False))
    bare.load_state_dict({k[len("model."):]: v for k, v in decoder_state.items()}, strict=True)
    bare.save_pretrained(os.path.join(out_dir, f"{spec['name']}_opt_model"),
                         safe_serialization=True)


def load_aligned(cls, folder, **kwargs):
    """from_pretrained, then copy every tensor into fresh memory.

    Tensors mapped straight from a .safetensors file can sit at addresses that are not 64-byte
    aligned, and the CPU BLAS then picks kernels that round differently (1 ulp in a reward).
    Fresh copies make the reload bit-comparable with the model the golden was computed from."""
    model = cls.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager",
                                **kwargs)
    with torch.no_grad():
        for param in model.parameters():
            param.data = param.data.clone()
    return model


def verify_tree(out_dir, specs, batches, base_models):
    """Reload every folder with from_pretrained and recompute what the goldens claim."""
    for spec in specs:
        name = spec["name"]
        input_ids, attention_mask, margin = batches[name]
        for folder_name in (name, f"{name}_f16", f"{name}_bf16"):
            folder = os.path.join(out_dir, folder_name)
            if not os.path.isdir(folder):
                continue
            golden = safetensors.numpy.load_file(os.path.join(folder, "golden.safetensors"))
            assert np.array_equal(golden["input_ids"], to_i32(input_ids))
            model = load_aligned(OPTForSequenceClassification, folder)
            with torch.no_grad():
                rewards = rewards_of(model, torch.from_numpy(golden["input_ids"]).long(),
                                     torch.from_numpy(golden["attention_mask"]).long())
                loss, _ = pairwise_loss(rewards, torch.from_numpy(golden["margin"]),
                                        spec["centering_coef"])
            diff = float(np.abs(to_f32(rewards) - golden["rewards"]).max())
            if diff != 0.0 or not np.array_equal(to_f32(loss.reshape(1)), golden["loss"]):
                raise RuntimeError(f"{folder_name}: reload changed rewards (max diff {diff})")
            print(f"verified {folder_name}: rewards identical after reload")

        base = base_models[name]
        golden = safetensors.numpy.load_file(os.path.join(out_dir, name, "golden.safetensors"))
        for suffix, cls, prefix in (("_causallm", OPTForCausalLM, "model."),
                                    ("_opt_model", OPTModel, "")):
            folder = os.path.join(out_dir, name + suffix)
            if not os.path.isdir(folder):
                continue
            loaded = load_aligned(cls, folder)
            state = loaded.state_dict()
            for key, value in base.state_dict().items():
                if key.startswith("model."):
                    assert torch.equal(state[prefix + key[len("model."):]], value), key
            if cls is OPTForCausalLM:
                assert torch.equal(loaded.lm_head.weight, loaded.model.decoder.embed_tokens.weight)
            # A reward model built on this folder, given preln's score head, must reproduce preln.
            seq = load_aligned(OPTForSequenceClassification, folder, num_labels=1)
            with torch.no_grad():
                seq.score.weight.copy_(base.score.weight)
                rewards = rewards_of(seq, input_ids, attention_mask)
            if not np.array_equal(to_f32(rewards), golden["rewards"]):
                raise RuntimeError(f"{name}{suffix}: decoder does not reproduce {name}")
            print(f"verified {name}{suffix}: decoder weights and rewards identical to {name}")


PINS = {
    "config.json": "model hyperparameters as written by transformers save_pretrained",
    "generation_config.json": "written by save_pretrained for generative classes; not used",
    "model.safetensors": "the initial weights the golden was computed from",
}
FOLDER_PINS = {
    "preln": "pre-LN, ReLU, biases, right padding, linear schedule, no centering",
    "postln_proj": "post-LN (350m style), project_in/project_out, LayerNorm without affine "
                   "params, left padding, cosine schedule, centering 0.01",
    "odd": "head_dim 7, 3 layers, exact-erf GELU, no biases, B=4, right padding, "
           "constant_with_warmup schedule, centering 0.01",
    "wide": "head_dim 64 (one head), T 101, pre-LN, ReLU, biases, right padding, linear "
            "schedule, no centering",
    "preln_f16": "preln weights stored as float16 (compute in float32)",
    "preln_bf16": "preln weights stored as bfloat16 (compute in float32)",
    "preln_causallm": "preln decoder saved as OPTForCausalLM (model.decoder.*, lm_head tied, "
                      "so not stored); no score head",
    "preln_opt_model": "preln decoder saved as a bare OPTModel (decoder.*); no score head",
}
GOLDEN_PINS = {
    True: "batch (input_ids, attention_mask, pooled_index, margin), rewards, loss, accuracy, "
          "grad.* of the first backward (pre-clip), step_loss/step_lr/step_grad_norm of 5 AdamW "
          "steps and final.* parameters; hyperparameters in __metadata__.train_config",
    False: "batch (input_ids, attention_mask, pooled_index, margin), rewards, loss, accuracy "
           "computed in float32 from the rounded weights",
}


def write_manifest(out_dir, opt_dir_name):
    entries = []
    opt_root = os.path.join(out_dir, opt_dir_name)
    for folder in sorted(os.listdir(opt_root)):
        for file_name in sorted(os.listdir(os.path.join(opt_root, folder))):
            path = os.path.join(opt_root, folder, file_name)
            with open(path, "rb") as f:
                data = f.read()
            if file_name == "golden.safetensors":
                pins = GOLDEN_PINS[folder in ("preln", "postln_proj", "odd", "wide")]
            else:
                pins = PINS[file_name]
            entries.append({"path": f"opt/{folder}/{file_name}",
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "bytes": len(data),
                            "pins": f"{FOLDER_PINS[folder]}: {pins}"})
    manifest = {
        "description": "Reference files for rewardc made by transformers; paths are relative "
                       "to this file's folder",
        "command": "python3 tools/gen_golden.py --out golden/",
        "generator": "tools/gen_golden.py",
        "deterministic": "re-running the command reproduces every file byte for byte",
        "versions": versions(),
        "files": entries,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write_bytes(os.path.join(out_dir, "MANIFEST.json"), text.encode("utf-8"))


def main(argv=None):
    default_out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "golden")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=default_out,
                        help="output folder; writes OUT/opt/<config>/ and OUT/MANIFEST.json "
                             "(default: golden/ at the repository root)")
    args = parser.parse_args(argv)

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    # The only warnings are the expected "score.weight newly initialized" on decoder-only folders.
    transformers.logging.set_verbosity_error()
    os.makedirs(args.out, exist_ok=True)
    # Build into a scratch folder next to the destination, verify, then swap it in, so a failed
    # run never leaves a half-written golden/opt behind.
    scratch = tempfile.mkdtemp(prefix=".opt-new-", dir=args.out)
    os.chmod(scratch, 0o755)  # mkdtemp makes it private; the result is a normal folder
    try:
        batches, base_models = {}, {}
        for spec in CONFIGS:
            model, batch, summary = build_trainable(spec, scratch)
            batches[spec["name"]], base_models[spec["name"]] = batch, model
            print(f"{spec['name']}: loss {summary['loss']:.6f} step_loss "
                  f"{[round(x, 6) for x in summary['step_loss']]} grad_norm "
                  f"{[round(x, 4) for x in summary['step_grad_norm']]} lr {summary['step_lr']}")
            if spec["name"] == "preln":
                build_low_precision(spec, model, batch, scratch, torch.float16, "preln_f16")
                build_low_precision(spec, model, batch, scratch, torch.bfloat16, "preln_bf16")
                build_decoder_only(spec, model, scratch)
        verify_tree(scratch, CONFIGS, batches, base_models)
        final = os.path.join(args.out, "opt")
        old = final + f".old-{os.getpid()}"
        if os.path.exists(final):
            os.rename(final, old)
        os.rename(scratch, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_manifest(args.out, "opt")
    print(f"wrote {os.path.join(args.out, 'opt')} and {os.path.join(args.out, 'MANIFEST.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
