#!/usr/bin/env python3
"""Golden reference generator for rewardc's reward models (the C side compares against these).

For each tiny config in tools/golden_configs.py it builds transformers'
<Family>ForSequenceClassification (num_labels=1, eager attention, no dropout) in float32 with
fixed seeds, re-initialises every parameter with non-zero random values, saves the checkpoint
with save_pretrained, and writes golden.safetensors holding one padded batch of chosen/rejected
pairs, the per-row rewards, the pairwise loss, every parameter gradient of the first backward
(under its HF name), and the losses / learning rates / gradient norms / parameters of 5 AdamW
steps run the way transformers' Trainer runs them (its own get_decay_parameter_names for the two
weight-decay groups, get_scheduler, clip_grad_norm_). It also writes float16/bfloat16 copies and
the CausalLM / bare base-model key layouts for the configs that ask for them, and
golden/MANIFEST.json with a sha256 for every file.

Folders (golden/<family>/<name>/) and what each pins:

  opt/preln               pre-LN, ReLU, biases, right padding, linear schedule, no centering
  opt/postln_proj         post-LN (350m), project_in/out, LayerNorm without affine params,
                          left padding, cosine, centering 0.01
  opt/odd                 head_dim 7, 3 layers, exact GELU, no biases, B=4, constant_with_warmup
  opt/wide                one 64-wide head, T 101 (past one 96-query CPU attention block)
  opt/preln_f16, _bf16    preln weights stored as float16 / bfloat16 (evaluated in float32)
  opt/preln_causallm      preln decoder as OPTForCausalLM (model.decoder.*, lm_head tied)
  opt/preln_opt_model     preln decoder as a bare OPTModel (decoder.*)
  opt/pad_in_text         pad id 1 inside texts and last in texts, left padding: pooling skips
                          the trailing pad; embed_tokens row 1 gets no gradient (padding_idx)
  llama/gqa3_untied       GQA 6 heads / 2 kv, untied, rope_theta 1e4, right padding, pad id 0
                          inside texts (no gradient on its row) and last in a text
  llama/gqa3_untied_f16, _bf16, _causallm (lm_head.weight stored, untied), _llama_model
  llama/mqa_llama3_tied   1 kv head, tied, llama3 rope_scaling (original_max 64 < T 101, all
                          three frequency bands), head_dim 10 != 24/4, left padding,
                          pad = eos = 2 (SmolLM2) inside and last in texts, centering 0.01
  llama/mqa_llama3_tied_causallm (tied: no lm_head stored), _llama_model
  qwen2/gqa2_bias         random q/k/v biases, GQA 4/2, right padding, pad inside texts
  qwen2/gqa3_left         q/k/v biases, GQA 6/2, 3 layers, left padding, pad = eos, centering
  qwen3/gqa2_headdim      random q_norm/k_norm, head_dim 8 with hidden 20, no bias, GQA 4/2,
                          right padding, pad inside texts
  qwen3/mqa_left          q_norm/k_norm, head_dim 12 with hidden 26, 3 heads / 1 kv, left
                          padding, pad = eos last in texts, centering, constant_with_warmup
  gpt2/right_pad_eos      36 = 4 heads of 9, gelu_new, n_inner 50, pad = eos = 58 inside a text:
                          wte has no padding_idx, so the pad row does get a gradient
  gpt2/left_positions     30 = 3 heads of 10, 3 layers, left padding, explicit position_ids
  falcon/7b_mqa           falcon-7b: multi_query, parallel attn + MLP off one input_layernorm,
                          no biases, rotary, right padding
  falcon/40b_gqa          new_decoder_architecture, 2 kv heads of 6 (grouped fused qkv),
                          ln_attn + ln_mlp, biases, left padding, centering

What golden.safetensors holds (trainable configs): input_ids, attention_mask (I32 [2B, T]),
pooled_index (I32 [2B]), margin (F32 [B]), rewards (F32 [2B]), loss, accuracy (F32 [1]),
grad.<hf name> and final.<hf name> for every parameter, step_loss / step_lr / step_grad_norm
(F32 [5]), and position_ids (I32 [2B, T]) where they were passed to forward explicitly.
__metadata__ has train_config (JSON: optimiser, schedule, clipping, centering, padding side,
pad_token_id, pooling rule, position rule, no_decay_rule, no_decay_params,
analytically_zero_grads, init rule, seed, versions), torch_version and transformers_version. The f16/bf16 goldens hold only the batch,
rewards, loss and accuracy, with eval_config in __metadata__.

Pooling is the rule of the pinned release (score at the rightmost token that is not
pad_token_id); every golden is checked against pooled_index_of() below, computed
independently. OPT computes its own positions from the attention mask. Llama, Qwen2, Qwen3 and
GPT-2 are given position_ids = clamp(cumsum(attention_mask) - 1, min=0) (positions within the
text, as rewardc counts them; HF's default would be slot positions, which changes GPT-2's learned
positions under left padding). FalconForSequenceClassification takes no position_ids, so Falcon
runs on slot positions: its rotary scores depend only on position differences, so left padding
changes them by rounding only. train_config.positions says which, per golden.

The OPT folders made with transformers 4.46.3 (golden_configs.KEPT_FOLDERS) are rebuilt with
the pinned release and compared tensor by tensor with the committed files, which are kept when
they agree within KEEP_VALUE_TOL / KEEP_NMSE.

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
import safetensors.torch
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from transformers import (FalconConfig, FalconForCausalLM, FalconForSequenceClassification,
                          FalconModel, GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel,
                          GPT2Model, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification,
                          LlamaModel, OPTConfig, OPTForCausalLM, OPTForSequenceClassification,
                          OPTModel, Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification,
                          Qwen2Model, Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification,
                          Qwen3Model, Trainer, get_scheduler)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_configs import CONFIGS, KEPT_FOLDERS  # noqa: E402
from hf_compat import allow_affine_free_layernorm  # noqa: E402

PINNED_TRANSFORMERS = "4.57.6"
NUM_STEPS = 5
WARMUP_STEPS = 2
MAX_GRAD_NORM = 0.5
# A kept golden must agree with its rebuild within these (a few float32 ulps: rewards, losses
# and step values relative above 1; gradients and final parameters by NMSE, 100x below the C
# test's 1e-8); anything larger is a real difference and stops the run. Gradients whose golden
# norm is below ZERO_GRAD_RATIO of the total are analytically zero (as in the C test).
KEEP_VALUE_TOL = 2e-6
KEEP_NMSE = 1e-10
ZERO_GRAD_RATIO = 1e-6

# Every setting shared by the trainable configs; recorded verbatim in each golden's train_config.
OPTIMIZER = {
    "learning_rate": 3e-3,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "weight_decay": 0.1,
}
NO_DECAY_RULE = ("transformers Trainer.get_decay_parameter_names of the pinned release: "
                 "weight_decay 0 for every parameter inside an nn.LayerNorm module and every "
                 "parameter whose lower-cased name matches one of the regexes 'bias', "
                 "'layernorm', 'rmsnorm', '(?:^|\\.)norm(?:$|\\.)', '_norm(?:$|\\.)'; all others "
                 "get weight_decay. The names are listed in no_decay_params")
INIT_RULE = ("all parameters re-initialised after construction, in named_parameters order, from "
             "torch.Generator(seed): weights of nn.LayerNorm and *RMSNorm modules = 1 + "
             "normal(0, 0.1); any bias = normal(0, 0.1); every other weight (incl. the pad row "
             "of the embedding) = normal(0, 0.2)")
POOLING_RULE = ("score read at the rightmost token that is not pad_token_id: "
                "(arange(T) * (input_ids != pad_token_id)).argmax(-1), as "
                "transformers' *ForSequenceClassification does; stored as pooled_index")
POSITIONS_OPT = ("computed by OPT itself from attention_mask: cumsum(mask) * mask - 1, "
                 "embedding row = position + 2; no position_ids passed")
POSITIONS_EXPLICIT = ("position_ids = clamp(cumsum(attention_mask, dim=1) - 1, min=0) passed "
                      "to forward (positions within the text, also under left padding); stored "
                      "as position_ids")
POSITIONS_SLOT = ("no position_ids (FalconForSequenceClassification.forward takes none): HF "
                  "uses slot positions arange(T); rotary scores depend only on position "
                  "differences, so under left padding this equals positions within the text "
                  "up to float rounding")
POSITIONS = {"mask": POSITIONS_OPT, "explicit": POSITIONS_EXPLICIT, "slot": POSITIONS_SLOT}

# Per family: config class, the three model classes, and where positions come from: OPT
# derives them from the mask itself, Falcon's sequence classifier cannot be given any, every
# other family is passed position_ids explicitly.
FAMILIES = {
    "opt": dict(config=OPTConfig, seq=OPTForSequenceClassification, causal=OPTForCausalLM,
                base=OPTModel, positions="mask"),
    "llama": dict(config=LlamaConfig, seq=LlamaForSequenceClassification,
                  causal=LlamaForCausalLM, base=LlamaModel, positions="explicit"),
    "qwen2": dict(config=Qwen2Config, seq=Qwen2ForSequenceClassification,
                  causal=Qwen2ForCausalLM, base=Qwen2Model, positions="explicit"),
    "qwen3": dict(config=Qwen3Config, seq=Qwen3ForSequenceClassification,
                  causal=Qwen3ForCausalLM, base=Qwen3Model, positions="explicit"),
    "gpt2": dict(config=GPT2Config, seq=GPT2ForSequenceClassification, causal=GPT2LMHeadModel,
                 base=GPT2Model, positions="explicit"),
    "falcon": dict(config=FalconConfig, seq=FalconForSequenceClassification,
                   causal=FalconForCausalLM, base=FalconModel, positions="slot"),
}


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def family_of(spec):
    return FAMILIES[spec["family"]]


def make_config(spec, for_classification=True):
    kwargs = dict(spec["hf"])
    if for_classification:
        kwargs["num_labels"] = 1
    return family_of(spec)["config"](attn_implementation="eager", **kwargs)


def build_model(cls, config):
    model = cls._from_config(config, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config._attn_implementation == "eager"
    return model


def is_norm_module(module):
    return isinstance(module, torch.nn.LayerNorm) or "RMSNorm" in type(module).__name__


def reinit_parameters(model, seed):
    """Overwrite HF's tiny default init so activations and gradients are well away from zero."""
    gen = torch.Generator().manual_seed(seed)
    norm_weights = {f"{mod_name}.weight" for mod_name, mod in model.named_modules()
                    if is_norm_module(mod)}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in norm_weights:
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            elif name.endswith("bias"):
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.2 * torch.randn(param.shape, generator=gen))


def pad_id_of(spec):
    return spec["hf"]["pad_token_id"]


def make_batch(spec, seed):
    """Padded batch of 2B rows (chosen then rejected) and B per-pair margins."""
    gen = torch.Generator().manual_seed(seed + 1)
    seq_len, pad_id = spec["seq_len"], pad_id_of(spec)
    lo, hi = spec.get("content_ids", [3, spec["hf"]["vocab_size"]])
    assert not lo <= pad_id < hi, "content ids must exclude the pad id"
    lengths = spec["chosen_lengths"] + spec["rejected_lengths"]
    assert len(spec["chosen_lengths"]) == len(spec["rejected_lengths"])
    assert max(lengths) == seq_len and min(lengths) <= 2
    texts = [torch.randint(lo, hi, (length,), generator=gen) for length in lengths]
    for row, index in spec.get("pad_inside", []):
        assert 0 < index < lengths[row] - 1, (row, index)
        texts[row][index] = pad_id
    for row in spec.get("pad_last", []):
        texts[row][-1] = pad_id
    input_ids = torch.full((len(lengths), seq_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), seq_len), dtype=torch.long)
    for row, text in enumerate(texts):
        assert bool((text != pad_id).any()), f"row {row} has no token to pool"
        start = 0 if spec["padding_side"] == "right" else seq_len - len(text)
        input_ids[row, start:start + len(text)] = text
        attention_mask[row, start:start + len(text)] = 1
    num_pairs = len(spec["chosen_lengths"])
    margin = torch.rand(num_pairs, generator=gen) - 0.5
    assert bool((margin.abs() > 1e-3).all())
    return input_ids, attention_mask, margin


def position_ids_of(attention_mask):
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def pooled_index_of(input_ids, pad_id):
    """Rightmost non-pad position per row (the DESIGN.md rule), computed independently of HF."""
    seq_len = input_ids.shape[1]
    positions = torch.arange(seq_len).unsqueeze(0) * (input_ids != pad_id).long()
    return positions.argmax(dim=1)


def model_inputs(spec, input_ids, attention_mask):
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if family_of(spec)["positions"] == "explicit":
        inputs["position_ids"] = position_ids_of(attention_mask)
    return inputs


def rewards_of(model, inputs):
    return model(**inputs).logits[:, 0]


def pairwise_loss(rewards, margin, centering_coef):
    num_pairs = margin.shape[0]
    chosen, rejected = rewards[:num_pairs], rewards[num_pairs:]
    loss = (-F.logsigmoid(chosen - rejected - margin)).mean()
    if centering_coef != 0.0:
        loss = loss + centering_coef * ((chosen + rejected) ** 2).mean()
    accuracy = (chosen > rejected).float().mean()
    return loss, accuracy


def check_pooling(spec, model, inputs, rewards):
    """HF's pooling must pick the rows pooled_index_of picks, bit for bit."""
    with torch.no_grad():
        hidden = getattr(model, model.base_model_prefix)(**inputs)[0]
        all_logits = model.score(hidden)[:, :, 0]
        pooled = pooled_index_of(inputs["input_ids"], pad_id_of(spec))
        gathered = all_logits[torch.arange(inputs["input_ids"].shape[0]), pooled]
    if not torch.equal(gathered, rewards.detach()):
        raise RuntimeError(f"{spec['name']}: HF pooling differs from the rightmost-non-pad rule")


def decay_groups(model):
    """The two parameter groups of Trainer.create_optimizer, by the pinned release's own rule."""
    decay_names = set(Trainer.get_decay_parameter_names(None, model))
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


def batch_tensors(spec, inputs, margin, rewards, loss, accuracy):
    tensors = {
        "input_ids": to_i32(inputs["input_ids"]),
        "attention_mask": to_i32(inputs["attention_mask"]),
        "pooled_index": to_i32(pooled_index_of(inputs["input_ids"], pad_id_of(spec))),
        "margin": to_f32(margin),
        "rewards": to_f32(rewards),
        "loss": to_f32(loss.reshape(1)),
        "accuracy": to_f32(accuracy.reshape(1)),
    }
    if "position_ids" in inputs:
        tensors["position_ids"] = to_i32(inputs["position_ids"])
    return tensors


def batch_description(spec, num_pairs):
    """The keys every golden's config JSON shares: how the batch was padded and pooled."""
    return {
        "family": spec["family"],
        "centering_coef": spec["centering_coef"],
        "padding_side": spec["padding_side"],
        "num_pairs": num_pairs,
        "pad_token_id": pad_id_of(spec),
        "pad_inside": spec.get("pad_inside", []),
        "pad_last": spec.get("pad_last", []),
        "pooling": POOLING_RULE,
        "positions": POSITIONS[family_of(spec)["positions"]],
        "explicit_position_ids": family_of(spec)["positions"] == "explicit",
    }


def train_config_json(spec, num_pairs, no_decay_names, zero_ranges):
    cfg = dict(OPTIMIZER)
    cfg.update(batch_description(spec, num_pairs))
    cfg.update({
        "analytically_zero_grads": zero_ranges,
        "analytically_zero_rule": "flat element ranges [start, stop) of grad.<param> whose "
                                  f"norm is below {ZERO_GRAD_RATIO} of step_grad_norm[0]: zero in "
                                  "exact arithmetic, rounding noise on both sides; their final.* "
                                  "values move by noise-driven AdamW steps (up to ~3.2 * lr each)",
        "no_decay_rule": NO_DECAY_RULE,
        "no_decay_params": no_decay_names,
        "lr_scheduler_type": spec["lr_scheduler_type"],
        "warmup_steps": WARMUP_STEPS,
        "num_training_steps": NUM_STEPS,
        "max_grad_norm": MAX_GRAD_NORM,
        "clip_rule": "torch.nn.utils.clip_grad_norm_: coef = min(1, max_grad_norm / "
                     "(total_norm + 1e-6)), total_norm = L2 norm over all gradients",
        "optimizer": "torch.optim.AdamW(foreach=False, amsgrad=False)",
        "seed": spec["seed"],
        "init": INIT_RULE,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    })
    return json.dumps(cfg, sort_keys=True)


def build_trainable(spec, out_dir):
    """Save the checkpoint, run forward/backward + 5 AdamW steps, write golden.safetensors."""
    torch.manual_seed(spec["seed"])
    model = build_model(family_of(spec)["seq"], make_config(spec))
    reinit_parameters(model, spec["seed"])
    model.train()  # all dropout probabilities are 0, so train and eval give the same numbers
    folder = os.path.join(out_dir, spec["name"])
    model.save_pretrained(folder, safe_serialization=True)
    initial_state = copy.deepcopy(model.state_dict())

    input_ids, attention_mask, margin = make_batch(spec, spec["seed"])
    inputs = model_inputs(spec, input_ids, attention_mask)
    num_pairs = margin.shape[0]
    param_names = [n for n, _ in model.named_parameters()]
    assert param_names == list(model.state_dict().keys())

    # First forward/backward: rewards, loss and the unclipped gradients.
    rewards = rewards_of(model, inputs)
    check_pooling(spec, model, inputs, rewards)
    loss, accuracy = pairwise_loss(rewards, margin, spec["centering_coef"])
    model.zero_grad(set_to_none=True)
    loss.backward()
    first_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    check_pad_row_gradient(spec, model, input_ids, attention_mask, first_grads)

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
        step_rewards = rewards_of(model, inputs)
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

    tensors = batch_tensors(spec, inputs, margin, rewards, loss, accuracy)
    tensors.update({
        "step_loss": np.array(step_loss, dtype=np.float32),
        "step_lr": np.array(step_lr, dtype=np.float32),
        "step_grad_norm": np.array(step_grad_norm, dtype=np.float32),
    })
    for name, param in model.named_parameters():
        tensors[f"grad.{name}"] = to_f32(first_grads[name])
        tensors[f"final.{name}"] = to_f32(param)
    metadata = {
        "train_config": train_config_json(spec, num_pairs, no_decay_names,
                                          analytically_zero_ranges(spec, first_grads,
                                                                   step_grad_norm[0])),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    write_safetensors(os.path.join(folder, "golden.safetensors"), tensors, metadata)
    model.load_state_dict(initial_state)
    summary = {"loss": loss.item(), "step_loss": step_loss, "step_lr": step_lr,
               "step_grad_norm": step_grad_norm, "rewards": rewards.tolist()}
    return model, (input_ids, attention_mask, margin), summary


def analytically_zero_ranges(spec, grads, total_norm):
    """Element ranges of gradients that are zero in exact arithmetic, so both sides hold only
    rounding noise there (and AdamW turns that noise into full-size, unreproducible steps).

    Found by the C test's rule (norm below ZERO_GRAD_RATIO of the first total gradient norm)
    over each whole tensor and, for GPT-2's fused c_attn.bias, over its q / k / v thirds: the
    key bias adds the same amount to every score of a query, so softmax cancels it (as OPT's
    k_proj.bias; the rotary families rotate it by position, so theirs is not zero). Without
    centering, the final norm's bias is zero too: it reaches every reward as score.w . b, and
    the pairwise loss's reward gradients sum to zero."""
    ranges = []
    for name, grad in grads.items():
        flat = grad.reshape(-1)
        parts = [(0, flat.numel())]
        if spec["family"] == "gpt2" and name.endswith("attn.c_attn.bias"):
            third = flat.numel() // 3
            parts = [(0, third), (third, 2 * third), (2 * third, flat.numel())]
        for start, stop in parts:
            if float(flat[start:stop].norm()) < ZERO_GRAD_RATIO * total_norm:
                ranges.append({"param": name, "start": start, "stop": stop})
    return ranges


def check_pad_row_gradient(spec, model, input_ids, attention_mask, grads):
    """Where the pad id is attended inside a text, its embedding row gets a gradient exactly
    when the embedding has no padding_idx; make sure the golden shows which case it pins."""
    pad_id = pad_id_of(spec)
    attended_pad = bool(((input_ids == pad_id) & (attention_mask == 1)).any())
    if not attended_pad:
        return
    embedding = model.get_input_embeddings()
    name = next(n for n, p in model.named_parameters() if p is embedding.weight)
    row_norm = float(grads[name][pad_id].norm())
    if embedding.padding_idx == pad_id:
        assert row_norm == 0.0, f"{spec['name']}: pad row of {name} has gradient {row_norm}"
    else:
        assert embedding.padding_idx is None and row_norm > 0.0, (spec["name"], row_norm)


def build_low_precision(spec, base_model, batch, out_dir, dtype, name):
    """Save the weights rounded to dtype; golden = that folder evaluated in float32."""
    folder = os.path.join(out_dir, name)
    low = copy.deepcopy(base_model).to(dtype)
    low.save_pretrained(folder, safe_serialization=True)
    reloaded = load_aligned(family_of(spec)["seq"], folder)
    input_ids, attention_mask, margin = batch
    inputs = model_inputs(spec, input_ids, attention_mask)
    with torch.no_grad():
        rewards = rewards_of(reloaded, inputs)
        loss, accuracy = pairwise_loss(rewards, margin, spec["centering_coef"])
    tensors = batch_tensors(spec, inputs, margin, rewards, loss, accuracy)
    eval_config = batch_description(spec, int(margin.shape[0]))
    eval_config["source"] = (f"{spec['name']} initial weights cast to {str(dtype)[6:]}, loaded "
                             "with from_pretrained(dtype=torch.float32)")
    metadata = {"eval_config": json.dumps(eval_config, sort_keys=True),
                "torch_version": torch.__version__,
                "transformers_version": transformers.__version__}
    write_safetensors(os.path.join(folder, "golden.safetensors"), tensors, metadata)


def decoder_state_of(base_model):
    prefix = base_model.base_model_prefix + "."
    return {k: v for k, v in base_model.state_dict().items() if k.startswith(prefix)}


def build_decoder_only(spec, base_model, out_dir):
    """Same decoder saved as <Family>ForCausalLM and as the bare base model.

    Their configs carry no num_labels, like published checkpoints. An untied lm_head gets
    its own random values (they must be ignored by a reward-model loader)."""
    family = family_of(spec)
    prefix = base_model.base_model_prefix + "."
    decoder_state = decoder_state_of(base_model)
    causal = build_model(family["causal"], make_config(spec, for_classification=False))
    missing, unexpected = causal.load_state_dict(decoder_state, strict=False)
    assert missing == ["lm_head.weight"] and not unexpected, (missing, unexpected)
    causal.tie_weights()
    tied = causal.lm_head.weight.data_ptr() == causal.get_input_embeddings().weight.data_ptr()
    assert tied == bool(causal.config.tie_word_embeddings), spec["name"]
    if not tied:
        gen = torch.Generator().manual_seed(spec["seed"] + 2)
        with torch.no_grad():
            causal.lm_head.weight.copy_(0.2 * torch.randn(causal.lm_head.weight.shape,
                                                          generator=gen))
    causal.save_pretrained(os.path.join(out_dir, f"{spec['name']}_causallm"),
                           safe_serialization=True)

    bare = build_model(family["base"], make_config(spec, for_classification=False))
    bare.load_state_dict({k[len(prefix):]: v for k, v in decoder_state.items()}, strict=True)
    bare.save_pretrained(os.path.join(out_dir, f"{spec['name']}_{spec['family']}_model"),
                         safe_serialization=True)


def load_aligned(cls, folder, **kwargs):
    """from_pretrained, then copy every tensor into fresh memory.

    Tensors mapped straight from a .safetensors file can sit at addresses that are not 64-byte
    aligned, and the CPU BLAS then picks kernels that round differently (1 ulp in a reward).
    Fresh copies make the reload bit-comparable with the model the golden was computed from."""
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                **kwargs)
    with torch.no_grad():
        for param in model.parameters():
            param.data = param.data.clone()
    return model


def verify_tree(out_dir, specs, batches, base_models):
    """Reload every folder with from_pretrained and recompute what the goldens claim."""
    for spec in specs:
        name = spec["name"]
        family = family_of(spec)
        input_ids, attention_mask, margin = batches[name]
        inputs = model_inputs(spec, input_ids, attention_mask)
        for folder_name in (name, f"{name}_f16", f"{name}_bf16"):
            folder = os.path.join(out_dir, folder_name)
            if not os.path.isdir(folder):
                continue
            golden = safetensors.numpy.load_file(os.path.join(folder, "golden.safetensors"))
            assert np.array_equal(golden["input_ids"], to_i32(input_ids))
            model = load_aligned(family["seq"], folder)
            with torch.no_grad():
                rewards = rewards_of(model, inputs)
                loss, _ = pairwise_loss(rewards, torch.from_numpy(golden["margin"]),
                                        spec["centering_coef"])
            diff = float(np.abs(to_f32(rewards) - golden["rewards"]).max())
            if diff != 0.0 or not np.array_equal(to_f32(loss.reshape(1)), golden["loss"]):
                raise RuntimeError(f"{folder_name}: reload changed rewards (max diff {diff})")
            print(f"verified {spec['family']}/{folder_name}: rewards identical after reload")

        base = base_models[name]
        golden = safetensors.numpy.load_file(os.path.join(out_dir, name, "golden.safetensors"))
        prefix = base.base_model_prefix + "."
        for suffix, cls, key_prefix in (("_causallm", family["causal"], prefix),
                                        (f"_{spec['family']}_model", family["base"], "")):
            folder = os.path.join(out_dir, name + suffix)
            if not os.path.isdir(folder):
                continue
            loaded = load_aligned(cls, folder)
            state = loaded.state_dict()
            for key, value in decoder_state_of(base).items():
                assert torch.equal(state[key_prefix + key[len(prefix):]], value), key
            # A reward model built on this folder, given the score head, must reproduce it.
            seq = load_aligned(family["seq"], folder, num_labels=1)
            with torch.no_grad():
                seq.score.weight.copy_(base.score.weight)
                rewards = rewards_of(seq, inputs)
            if not np.array_equal(to_f32(rewards), golden["rewards"]):
                raise RuntimeError(f"{name}{suffix}: decoder does not reproduce {name}")
            print(f"verified {spec['family']}/{name}{suffix}: decoder weights and rewards "
                  f"identical to {name}")


def nmse(want, got):
    want, got = want.double(), got.double()
    return float(((want - got) ** 2).sum() / max(float((want ** 2).sum()), 1e-300))


def compare_kept(family, folder_name, rebuilt, committed):
    """Every tensor of a committed folder against its rebuild, as tests/test_model_golden.c
    compares, with far tighter bounds: weights bit for bit, scalars within KEEP_VALUE_TOL,
    grad.* and final.* by NMSE within KEEP_NMSE, except the analytically zero gradients (and
    the noise-driven final values they lead to), which hold only rounding noise on both sides.
    Returns a one-line summary of the differences; raises on a real difference."""
    rebuilt_files = sorted(f for f in os.listdir(rebuilt) if f.endswith(".safetensors"))
    committed_files = sorted(f for f in os.listdir(committed) if f.endswith(".safetensors"))
    where = f"{family}/{folder_name}"
    if rebuilt_files != committed_files:
        raise RuntimeError(f"{where}: files {committed_files} != {rebuilt_files}")
    worst_value = worst_grad = worst_final = 0.0
    zero_grads = []
    for file_name in rebuilt_files:
        a = safetensors.torch.load_file(os.path.join(rebuilt, file_name))
        b = safetensors.torch.load_file(os.path.join(committed, file_name))
        if sorted(a) != sorted(b):
            raise RuntimeError(f"{where}/{file_name}: tensor names differ")
        for key in sorted(a):
            x, y = a[key], b[key]
            if x.dtype != y.dtype or x.shape != y.shape:
                raise RuntimeError(f"{where}/{file_name}: {key} dtype or shape differs")
            if file_name == "model.safetensors" or not x.is_floating_point():
                if not torch.equal(x, y):
                    raise RuntimeError(f"{where}/{file_name}: {key} differs")
        if file_name != "golden.safetensors":
            continue
        configs = []
        for folder in (rebuilt, committed):
            with safetensors.safe_open(os.path.join(folder, file_name), "pt") as f:
                configs.append(json.loads((f.metadata() or {}).get("train_config", "{}")))
        if configs[0].get("no_decay_params") != configs[1].get("no_decay_params"):
            raise RuntimeError(f"{where}: the pinned release's no-decay set differs from the "
                               f"committed one: {configs[0].get('no_decay_params')}")
        total_norm = float(b["step_grad_norm"][0]) if "step_grad_norm" in b else 0.0
        for key in sorted(a):
            x, y = a[key].double(), b[key].double()
            if not a[key].is_floating_point():
                continue
            if key.startswith(("grad.", "final.")):
                param = key.split(".", 1)[1]
                if float(b["grad." + param].norm()) < ZERO_GRAD_RATIO * total_norm:
                    if key.startswith("grad."):
                        zero_grads.append(param)
                    continue
                err = nmse(y, x)
                if key.startswith("grad."):
                    worst_grad = max(worst_grad, err)
                else:
                    worst_final = max(worst_final, err)
            else:
                diff = float(((x - y).abs() / y.abs().clamp(min=1.0)).max())
                worst_value = max(worst_value, diff)
    if worst_value > KEEP_VALUE_TOL or max(worst_grad, worst_final) > KEEP_NMSE:
        raise RuntimeError(f"{where}: rebuild differs from the committed golden: rewards/loss/"
                           f"steps {worst_value:.3g}, grad NMSE {worst_grad:.3g}, final NMSE "
                           f"{worst_final:.3g}")
    summary = (f"rebuilt with transformers {transformers.__version__}: weights identical; "
               f"rewards/loss/step values within {worst_value:.2g} (relative above 1); grad.* "
               f"NMSE <= {worst_grad:.2g}, final.* NMSE <= {worst_final:.2g}")
    if zero_grads:
        summary += (f"; analytically zero gradients (noise on both sides, not compared): "
                    f"{', '.join(zero_grads)}")
    return summary


FILE_PINS = {
    "config.json": "model hyperparameters as written by transformers save_pretrained",
    "generation_config.json": "written by save_pretrained for generative classes; not used",
    "model.safetensors": "the initial weights the golden was computed from",
}
GOLDEN_PINS = {
    True: "batch (input_ids, attention_mask, pooled_index, margin[, position_ids]), rewards, "
          "loss, accuracy, grad.* of the first backward (pre-clip), step_loss/step_lr/"
          "step_grad_norm of 5 AdamW steps and final.* parameters; hyperparameters, pooling, "
          "positions and no-decay names in __metadata__.train_config",
    False: "batch (input_ids, attention_mask, pooled_index, margin[, position_ids]), rewards, "
           "loss, accuracy computed in float32 from the rounded weights; eval_config in "
           "__metadata__",
}


KEPT_METADATA_NOTE = (" (as 4.46.3 wrote it: train_config/eval_config without family, "
                      "pad_token_id, pad_inside/pad_last, pooling, positions, "
                      "explicit_position_ids, analytically_zero_grads)")


def folder_pins():
    """One line per folder for MANIFEST.json, from the configs' own descriptions."""
    pins = {}
    for spec in CONFIGS:
        key, name, family = f"{spec['family']}/{spec['name']}", spec["name"], family_of(spec)
        prefix = family["seq"].base_model_prefix
        lm_head = ("lm_head tied, so not stored" if spec["hf"].get("tie_word_embeddings", True)
                   else "lm_head.weight stored (untied, random)")
        pins[key] = spec["pins"]
        pins[key + "_f16"] = f"{name} weights stored as float16 (compute in float32)"
        pins[key + "_bf16"] = f"{name} weights stored as bfloat16 (compute in float32)"
        pins[key + "_causallm"] = (f"{name} decoder saved as {family['causal'].__name__} "
                                   f"({prefix}.* keys, {lm_head}); no score head")
        pins[f"{key}_{spec['family']}_model"] = (f"{name} decoder saved as a bare "
                                                 f"{family['base'].__name__} (keys without "
                                                 f"'{prefix}.'); no score head")
    return pins


def made_with(folder):
    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f).get("transformers_version")


def write_manifest(out_dir, kept_report):
    entries = []
    pins = folder_pins()
    trainable = {f"{s['family']}/{s['name']}" for s in CONFIGS}
    for family in sorted(FAMILIES):
        family_root = os.path.join(out_dir, family)
        for folder in sorted(os.listdir(family_root)):
            key = f"{family}/{folder}"
            for file_name in sorted(os.listdir(os.path.join(family_root, folder))):
                path = os.path.join(family_root, folder, file_name)
                with open(path, "rb") as f:
                    data = f.read()
                what = (GOLDEN_PINS[key in trainable] if file_name == "golden.safetensors"
                        else FILE_PINS[file_name])
                entry = {"path": f"{key}/{file_name}",
                         "sha256": hashlib.sha256(data).hexdigest(),
                         "bytes": len(data),
                         "transformers": made_with(os.path.join(family_root, folder)),
                         "pins": f"{pins[key]}: {what}"}
                if key in kept_report:
                    entry["reverified"] = kept_report[key]
                    if file_name == "golden.safetensors":
                        entry["pins"] += KEPT_METADATA_NOTE
                entries.append(entry)
    manifest = {
        "description": "Reference files for rewardc made by transformers; paths are relative "
                       "to this file's folder",
        "command": "python3 tools/gen_golden.py --out golden/",
        "generator": "tools/gen_golden.py (configs in tools/golden_configs.py)",
        "deterministic": "re-running the command reproduces every file byte for byte",
        "versions": versions(),
        "kept_folders": "folders made with an older transformers (see each file's "
                        "'transformers') are kept as committed after the generator rebuilt "
                        "them with the pinned release and compared every tensor ('reverified')",
        "files": entries,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write_bytes(os.path.join(out_dir, "MANIFEST.json"), text.encode("utf-8"))


def build_family(family, specs, scratch):
    batches, base_models = {}, {}
    for spec in specs:
        model, batch, summary = build_trainable(spec, scratch)
        batches[spec["name"]], base_models[spec["name"]] = batch, model
        print(f"{family}/{spec['name']}: loss {summary['loss']:.6f} step_loss "
              f"{[round(x, 6) for x in summary['step_loss']]} grad_norm "
              f"{[round(x, 4) for x in summary['step_grad_norm']]} lr {summary['step_lr']}")
        if spec.get("low_precision"):
            build_low_precision(spec, model, batch, scratch, torch.float16, f"{spec['name']}_f16")
            build_low_precision(spec, model, batch, scratch, torch.bfloat16,
                                f"{spec['name']}_bf16")
        if spec.get("decoder_only"):
            build_decoder_only(spec, model, scratch)
    verify_tree(scratch, specs, batches, base_models)


def keep_committed(family, scratch, final, kept_report):
    """Put the committed copies of kept folders back in place of their rebuilds."""
    for folder_name in KEPT_FOLDERS.get(family, []):
        committed = os.path.join(final, folder_name)
        rebuilt = os.path.join(scratch, folder_name)
        if not os.path.isdir(committed):
            continue  # first run: the rebuild is the golden
        if made_with(committed) == transformers.__version__:
            continue  # made by this very release: the rebuild is the golden
        kept_report[f"{family}/{folder_name}"] = compare_kept(family, folder_name, rebuilt,
                                                               committed)
        print(f"kept {family}/{folder_name}: {kept_report[f'{family}/{folder_name}']}")
        shutil.rmtree(rebuilt)
        shutil.copytree(committed, rebuilt)


def main(argv=None):
    default_out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "golden")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=default_out,
                        help="output folder; writes OUT/<family>/<config>/ and OUT/MANIFEST.json "
                             "(default: golden/ at the repository root)")
    args = parser.parse_args(argv)
    if transformers.__version__ != PINNED_TRANSFORMERS:
        print(f"error: transformers {transformers.__version__} found, the goldens pin "
              f"{PINNED_TRANSFORMERS} (tools/requirements.txt)", file=sys.stderr)
        return 2

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    # The only warnings are the expected "score.weight newly initialized" on decoder-only folders.
    transformers.logging.set_verbosity_error()
    allow_affine_free_layernorm()
    os.makedirs(args.out, exist_ok=True)
    kept_report = {}
    for family in FAMILIES:
        specs = [s for s in CONFIGS if s["family"] == family]
        # Build into a scratch folder next to the destination, verify, then swap it in, so a
        # failed run never leaves a half-written family folder behind.
        scratch = tempfile.mkdtemp(prefix=f".{family}-new-", dir=args.out)
        os.chmod(scratch, 0o755)  # mkdtemp makes it private; the result is a normal folder
        try:
            build_family(family, specs, scratch)
            final = os.path.join(args.out, family)
            keep_committed(family, scratch, final, kept_report)
            old = final + f".old-{os.getpid()}"
            if os.path.exists(final):
                os.rename(final, old)
            os.rename(scratch, final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    write_manifest(args.out, kept_report)
    print(f"wrote {', '.join(FAMILIES)} under {args.out} and MANIFEST.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
