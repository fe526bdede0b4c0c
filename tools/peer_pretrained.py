#!/usr/bin/env python3
"""The PyTorch + transformers peer of rewardc's pretrained reward-model recipe.

It does the work `rewardc train` + `rewardc eval` do on a model folder (e.g. SmolLM2-135M-Instruct
imported by `rewardc import --gguf FILE --out DIR`), the way people run it in PyTorch, TRL-style:

  model      AutoModelForSequenceClassification (LlamaForSequenceClassification for SmolLM2) from
             the folder, float32, sdpa attention (--attn eager optional); the folder's score head
             (rewardc import seeds it) is the start; batches are padded with config.pad_token_id.
  encoding   as rewardc's src/data/encode_pairs.c: a conversational pair is rendered with the
             tokenizer's chat template as TRL does (prompt with add_generation_prompt=True,
             prompt + response whole, the prompt cut to what the renderings share) and
             prompt + response is encoded as one text; a sequence longer than the folder's
             encode policy ("rewardc": {"encode_policy": {max_length, append_eos, overflow}} in
             config.json; --max_length overrides) is truncated by encoding prompt and response
             apart and keeping the response head and the prompt tail (or the pair is dropped).
  order      rewardc's per-epoch shuffle (splitmix64 + Fisher-Yates, src/data/shuffle.c) with the
             seed seed + 0x9E3779B97F4A7C15 * (epoch + 1), and --group_by_length's megabatches of
             50 batches sorted by length (src/train/trainer.c make_order).
  step       --batch pairs per micro-batch (chosen rows then rejected rows, padded right, one
             forward), --grad_accum micro-batches per step, loss mean(-logsigmoid(r_c - r_r));
             clip_grad_norm_; torch.optim.AdamW with transformers Trainer's decay groups;
             transformers.get_scheduler with warmup ceil(warmup_ratio * total_steps).
  trainable  all parameters, or --train_layers N (top N decoder layers + final norm + score
             head), or --train_head_only (the score head).
  eval       pairwise accuracy on --eval (and --holdout) pairs under torch.inference_mode, in
             file order, batches of --eval_batch (default --batch) pairs.

Writes one JSON object (stdout and --out): wall times (training, each eval, load, encode),
tokens, steps, first and final train loss, accuracies, peak RSS, versions.

--check_ids REWARDC tokenizes the first --check_pairs pairs' texts with `REWARDC tokenize` too
and stops with an error unless every id equals the peer's (the chat template renderings
themselves are checked by rewardc's goldens, golden/chat_template).

Usage:
  python3 tools/peer_pretrained.py --model DIR --train PAIRS --eval PAIRS [--holdout PAIRS]
      --epochs 1 --batch 8 --lr 2e-5 --warmup_ratio 0.05 --weight_decay 0.01 --max_grad_norm 1.0
      --seed 42 --train_layers 4 --threads 2 --out runs/peer.json
"""

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's increment, also the epoch seed step


# ---------------------------------------------------------------- rewardc's data order

def splitmix64_next(state):
    """One splitmix64 draw; returns (new_state, value), all arithmetic mod 2^64."""
    state = (state + GOLDEN_GAMMA) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def shuffle_indices(indices, seed):
    """rc_shuffle_indices: Fisher-Yates from the end, uniform draws by rejection."""
    state = seed & MASK64
    for i in range(len(indices), 1, -1):
        limit = MASK64 - MASK64 % i  # UINT64_MAX - UINT64_MAX % bound
        while True:
            state, draw = splitmix64_next(state)
            if draw < limit:
                break
        j = draw % i
        indices[i - 1], indices[j] = indices[j], indices[i - 1]


def epoch_order(lengths, seed, epoch, batch, group_by_length):
    """make_order of src/train/trainer.c: the pair indices of one epoch."""
    order = list(range(len(lengths)))
    shuffle_indices(order, (seed + GOLDEN_GAMMA * (epoch + 1)) & MASK64)
    if group_by_length:
        mega = batch * 50
        for start in range(0, len(order), mega):
            chunk = order[start:start + mega]
            # longest first; equal lengths by pair index (compare_by_length_desc)
            order[start:start + mega] = sorted(chunk, key=lambda i: (-lengths[i], i))
    return order


# ---------------------------------------------------------------- rewardc's encode policy

def load_encode_policy(model_dir, max_length_override):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    policy = {"max_length": 512, "append_eos": True, "overflow": "truncate"}  # rc_encode_policy_default
    policy.update(config.get("rewardc", {}).get("encode_policy", {}))
    if max_length_override:
        policy["max_length"] = max_length_override
    if policy["overflow"] not in ("truncate", "drop"):
        raise SystemExit(f"{model_dir}/config.json: unknown overflow rule {policy['overflow']!r}")
    return policy


class Encoder:
    """The ids of (prompt, response) under the encode policy, as rc_encode_sequence builds them.

    encode(text, special) is the tokenizer call; swapping it (for rewardc's tokenizer) lets the
    same policy code rebuild rewardc's ids for --check_ids."""

    def __init__(self, tokenizer, policy):
        self.tok = tokenizer
        self.policy = policy
        bos = tokenizer.bos_token_id
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        # rc_tokenizer_adds_bos: encoding with special tokens puts BOS first
        self.adds_bos = bos is not None and len(probe) > len(plain) and probe[0] == bos
        self.bos_id = bos
        self.eos_id = tokenizer.eos_token_id
        self.n_special = int(self.adds_bos) + int(bool(policy["append_eos"]))
        if policy["max_length"] <= self.n_special:
            raise SystemExit(f"encode policy: max_length {policy['max_length']} leaves no room for text")
        if policy["append_eos"] and (self.eos_id is None or self.eos_id == tokenizer.pad_token_id):
            raise SystemExit("encode policy: append_eos needs an EOS token distinct from the pad token")

    def encode(self, text, special):
        return self.tok(text, add_special_tokens=special)["input_ids"]

    def sequence(self, prompt, response, encode=None):
        """Returns (ids or None when dropped, outcome, untruncated length)."""
        encode = encode or self.encode
        p = self.policy
        whole = encode(prompt + response, True)
        n_full = len(whole) + (1 if p["append_eos"] else 0)
        if n_full <= p["max_length"]:
            return whole + ([self.eos_id] if p["append_eos"] else []), "whole", n_full
        if p["overflow"] == "drop":
            return None, "dropped", n_full
        prompt_ids = encode(prompt, False)
        response_ids = encode(response, False)
        budget = p["max_length"] - self.n_special
        keep_response = min(len(response_ids), budget)
        keep_prompt = min(budget - keep_response, len(prompt_ids))
        if keep_response < len(response_ids):
            outcome = "response_truncated"
        elif keep_prompt < len(prompt_ids):
            outcome = "prompt_truncated"
        else:
            outcome = "whole"
        ids = [self.bos_id] if self.adds_bos else []
        ids += prompt_ids[len(prompt_ids) - keep_prompt:] + response_ids[:keep_response]
        if p["append_eos"]:
            ids.append(self.eos_id)
        return ids, outcome, n_full


def common_prefix_bytes(a, b):
    n = 0
    limit = min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def render_pair(tokenizer, adds_bos, record):
    """The (prompt, chosen, rejected) texts of a pair, as encode_pairs.c render_pair makes them."""
    chosen, rejected, prompt = record["chosen"], record["rejected"], record.get("prompt")
    if not isinstance(chosen, list):  # a text pair: the texts as they stand
        return prompt or "", chosen, rejected
    bos = tokenizer.bos_token if adds_bos else None

    def strip_bos(text):  # the tokenizer adds its BOS itself
        return text[len(bos):] if bos and text.startswith(bos) else text

    def render(messages, generation):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)

    if prompt is None:  # implicit prompt: each side rendered whole
        return "", strip_bos(render(chosen, False)), strip_bos(render(rejected, False))
    if not prompt or prompt[-1].get("role") != "user":
        raise SystemExit("a prompt must end with a user message (as TRL requires)")
    p = render(prompt, True).encode()
    c = render(prompt + chosen, False).encode()
    r = render(prompt + rejected, False).encode()
    cut = min(common_prefix_bytes(p, c), common_prefix_bytes(p, r))  # rewardc cuts bytes
    try:
        texts = p[:cut].decode(), c[cut:].decode(), r[cut:].decode()
    except UnicodeDecodeError:
        raise SystemExit("the prompt/response cut falls inside a UTF-8 character; rewardc would "
                         "encode the broken halves, which this peer cannot reproduce")
    return strip_bos(texts[0]), texts[1], texts[2]


def read_pairs(path):
    """Pairs JSONL as rewardc reads it: identical chosen/rejected pairs are skipped."""
    records, identical = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["chosen"] == record["rejected"]:
                identical += 1
                continue
            records.append(record)
    return records, identical


def encode_pairs(path, tokenizer, encoder):
    """encoded pairs (chosen ids, rejected ids, margin, weight, source index) and the counts."""
    records, identical = read_pairs(path)
    counts = {"pairs_read": len(records), "identical_skipped": identical, "sequences": 0,
              "prompt_truncated": 0, "response_truncated": 0, "pairs_dropped": 0, "longest": 0}
    pairs, texts = [], []
    for index, record in enumerate(records):
        prompt, chosen, rejected = render_pair(tokenizer, encoder.adds_bos, record)
        sides = []
        for response in (chosen, rejected):
            ids, outcome, untruncated = encoder.sequence(prompt, response)
            counts["sequences"] += 1
            counts["longest"] = max(counts["longest"], untruncated)
            if outcome in ("prompt_truncated", "response_truncated"):
                counts[outcome] += 1
            sides.append(ids)
        texts.append((prompt, chosen, rejected))
        if sides[0] is None or sides[1] is None:
            counts["pairs_dropped"] += 1
            continue
        pairs.append({"chosen": sides[0], "rejected": sides[1],
                      "margin": float(record.get("margin", 0.0)),
                      "weight": float(record.get("weight", 1.0)), "has_weight": "weight" in record,
                      "source": index})
    counts["pairs_encoded"] = len(pairs)
    return pairs, texts, counts


# ---------------------------------------------------------------- the check against rewardc

def rewardc_tokenize(rewardc, model_dir, texts, special):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        path = f.name
    try:
        command = [rewardc, "tokenize", "--tokenizer", model_dir, "--input", path, "--threads", "1"]
        if not special:
            command.append("--no_special")
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(lines) != len(texts):
        raise SystemExit(f"rewardc tokenize gave {len(lines)} lines for {len(texts)} texts")
    return lines


def check_ids(rewardc, model_dir, encoder, texts, n_pairs):
    """Rebuilds the first n pairs' ids from rewardc's tokenizer under the same policy and
    compares them, id for id, with the peer's (transformers') ids."""
    sequences = [(t[0], response) for t in texts[:n_pairs] for response in (t[1], t[2])]
    whole = rewardc_tokenize(rewardc, model_dir, [p + r for p, r in sequences], True)
    pieces = rewardc_tokenize(rewardc, model_dir, [s for p, r in sequences for s in (p, r)], False)
    table = {}
    for k, (p, r) in enumerate(sequences):
        table[(p + r, True)] = whole[k]
        table[(p, False)] = pieces[2 * k]
        table[(r, False)] = pieces[2 * k + 1]
    mismatches, truncated, tokens = 0, 0, 0
    for p, r in sequences:
        ours, outcome, _ = encoder.sequence(p, r)
        theirs, _, _ = encoder.sequence(p, r, encode=lambda text, special: table[(text, special)])
        truncated += outcome != "whole"
        tokens += len(ours or [])
        if ours != theirs:
            mismatches += 1
    result = {"pairs": min(n_pairs, len(texts)), "sequences": len(sequences), "tokens": tokens,
              "truncated_sequences": truncated, "mismatched_sequences": mismatches}
    if mismatches:
        raise SystemExit(f"--check_ids: {mismatches} of {len(sequences)} sequences differ from rewardc's ids")
    return result


# ---------------------------------------------------------------- model, batches, steps

def set_trainable(model, train_layers, head_only):
    """requires_grad as asked; returns the number of trainable parameters."""
    if head_only or train_layers:  # 0 or None: all, as rewardc's --train_layers 0
        for p in model.parameters():
            p.requires_grad_(False)
        keep = [model.score]
        if not head_only:
            layers = model.model.layers
            if not 0 < train_layers <= len(layers):
                raise SystemExit(f"--train_layers {train_layers}: the model has {len(layers)} layers")
            keep += list(layers[len(layers) - train_layers:]) + [model.model.norm]
        for module in keep:
            for p in module.parameters():
                p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_batch(torch, pairs, indices, pad_id):
    """2B rows: chosen 0..B-1, rejected B..2B-1, padded right to the longest."""
    seqs = [pairs[i]["chosen"] for i in indices] + [pairs[i]["rejected"] for i in indices]
    T = max(1, max(len(s) for s in seqs))
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, :len(s)] = 1
    return ids, mask, sum(len(s) for s in seqs), len(seqs) * T


def pair_loss(torch, rewards, pairs, indices, use_weights=True):
    """rc_pairwise_loss without centering: weighted mean of -logsigmoid(r_c - r_r - margin)
    (evaluation, as rc_eval_pairs, leaves the weights out)."""
    n = len(indices)
    chosen, rejected = rewards[:n], rewards[n:]
    margin = torch.tensor([pairs[i]["margin"] for i in indices], dtype=rewards.dtype)
    losses = -torch.nn.functional.logsigmoid(chosen - rejected - margin)
    if use_weights and any(pairs[i]["has_weight"] for i in indices):
        weight = torch.tensor([pairs[i]["weight"] for i in indices], dtype=rewards.dtype)
        loss = (losses * weight).sum() / weight.sum()
    else:
        loss = losses.mean()
    accuracy = (chosen > rejected).float().mean().item()
    return loss, accuracy


def evaluate(torch, model, pairs, batch, pad_id):
    """rc_eval_pairs: file order, batches of `batch` pairs, no gradients."""
    model.eval()
    start = time.perf_counter()
    loss_sum = wins = ties = margin_sum = 0.0
    rewards_all = []
    tokens = 0
    with torch.inference_mode():
        for first in range(0, len(pairs), batch):
            indices = list(range(first, min(first + batch, len(pairs))))
            ids, mask, real, _ = make_batch(torch, pairs, indices, pad_id)
            rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()
            loss, _ = pair_loss(torch, rewards, pairs, indices, use_weights=False)
            n = len(indices)
            chosen, rejected = rewards[:n], rewards[n:]
            loss_sum += loss.item() * n
            wins += (chosen > rejected).sum().item()
            ties += (chosen == rejected).sum().item()
            margin_sum += (chosen - rejected).sum().item()
            rewards_all += rewards.tolist()
            tokens += real
    seconds = time.perf_counter() - start
    model.train()
    n = max(1, len(pairs))
    mean = sum(rewards_all) / max(1, len(rewards_all))
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards_all) / max(1, len(rewards_all)))
    return {"pairs": len(pairs), "accuracy": wins / n, "ties": ties / n, "loss": loss_sum / n,
            "mean_margin": margin_sum / n, "reward_mean": mean, "reward_std": std,
            "tokens": tokens, "seconds": seconds}


def train(torch, transformers, model, pairs, args, pad_id):
    """rc_train's loop: same steps, accumulation groups, schedule and clipping."""
    bs, accum = args.batch, args.grad_accum
    batches_per_epoch = (len(pairs) + bs - 1) // bs
    steps_per_epoch = (batches_per_epoch + accum - 1) // accum
    total_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.epochs * steps_per_epoch)
    warmup = args.warmup_steps if args.warmup_steps > 0 else math.ceil(args.warmup_ratio * total_steps)

    decay_names = set(transformers.Trainer.get_decay_parameter_names(None, model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n in decay_names], "weight_decay": args.weight_decay},
              {"params": [p for n, p in named if n not in decay_names], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = transformers.get_scheduler(args.lr_scheduler_type, optimizer,
                                           num_warmup_steps=warmup, num_training_steps=total_steps)
    trainable = [p for _, p in named]
    lengths = [max(len(p["chosen"]), len(p["rejected"])) for p in pairs]

    print(f"peer train: {len(pairs)} pairs, {total_steps} steps ({steps_per_epoch} per epoch, batch "
          f"{bs} pairs x {accum} accumulation), warmup {warmup}, {args.lr_scheduler_type} schedule, "
          f"lr {args.lr:g}", file=sys.stderr)
    model.train()
    epoch, batch_in_epoch, step = 0, 0, 0
    order = epoch_order(lengths, args.seed, epoch, bs, args.group_by_length)
    log, window = [], []
    tokens = padded = 0
    first_loss = None
    start = time.perf_counter()
    while step < total_steps:
        if batch_in_epoch >= batches_per_epoch:
            epoch += 1
            batch_in_epoch = 0
            order = epoch_order(lengths, args.seed, epoch, bs, args.group_by_length)
        group = min(batches_per_epoch - batch_in_epoch, accum)
        optimizer.zero_grad(set_to_none=True)
        step_loss = step_acc = 0.0
        for g in range(group):
            first = (batch_in_epoch + g) * bs
            indices = order[first:first + bs]
            ids, mask, real, total = make_batch(torch, pairs, indices, pad_id)
            rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            loss, acc = pair_loss(torch, rewards, pairs, indices)
            (loss / group).backward()
            step_loss += loss.item() / group
            step_acc += acc / group
            tokens += real
            padded += total
        if args.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm).item()
        else:
            grad_norm = torch.norm(torch.stack([p.grad.norm() for p in trainable if p.grad is not None])).item()
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        if not math.isfinite(step_loss):
            raise SystemExit(f"the loss became {step_loss} at step {step + 1}")
        step += 1
        batch_in_epoch += group
        if first_loss is None:
            first_loss = step_loss
        window.append((step_loss, step_acc))
        if (args.logging_steps > 0 and step % args.logging_steps == 0) or step == total_steps:
            elapsed = time.perf_counter() - start
            entry = {"step": step, "epoch": round(epoch + batch_in_epoch / batches_per_epoch, 4),
                     "loss": sum(w[0] for w in window) / len(window),
                     "accuracy": sum(w[1] for w in window) / len(window),
                     "learning_rate": lr, "grad_norm": grad_norm, "elapsed_seconds": round(elapsed, 2)}
            log.append(entry)
            window = []
            print(f"step {step}/{total_steps} | epoch {entry['epoch']:.2f} | loss {entry['loss']:.6f} | "
                  f"acc {entry['accuracy']:.3f} | lr {lr:.2e} | grad_norm {grad_norm:.4f} | "
                  f"{tokens / elapsed:.0f} tok/s", file=sys.stderr)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "steps": step, "total_steps": total_steps, "warmup_steps": warmup,
            "epochs": args.epochs, "tokens": tokens, "padded_tokens": padded,
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
            "first_step_loss": first_loss, "final_loss": log[-1]["loss"] if log else None, "log": log}


# ---------------------------------------------------------------- the run

def blas_info(torch):
    """The BLAS torch was built with (BLAS_INFO in its build configuration)."""
    for line in torch.__config__.show().split(","):
        if "BLAS_INFO=" in line:
            return line.split("=", 1)[1].strip()
    return None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder (rewardc import output)")
    ap.add_argument("--train", required=True, help="pairs JSONL to train on")
    ap.add_argument("--eval", help="pairs JSONL evaluated after training")
    ap.add_argument("--holdout", help="held-out pairs JSONL evaluated after training, reported apart")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max_steps", type=int, default=0, help="overrides --epochs when > 0")
    ap.add_argument("--batch", type=int, default=8, help="pairs per micro-batch")
    ap.add_argument("--eval_batch", type=int, default=0, help="pairs per eval batch (default --batch)")
    ap.add_argument("--grad_accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--lr_scheduler_type", default="linear", choices=["linear", "cosine", "constant",
                                                                      "constant_with_warmup"])
    ap.add_argument("--warmup_ratio", type=float, default=0.0)
    ap.add_argument("--warmup_steps", type=int, default=0, help="wins over --warmup_ratio when > 0")
    ap.add_argument("--weight_decay", type=float, default=0.0)
    ap.add_argument("--max_grad_norm", type=float, default=1.0, help="0 disables clipping")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max_length", type=int, default=0, help="overrides the folder's encode policy")
    ap.add_argument("--group_by_length", action="store_true")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--train_layers", type=int, default=0,
                       help="train only the top N decoder layers + norm + head (0: all, as rewardc)")
    group.add_argument("--train_head_only", action="store_true", help="train only the score head")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--logging_steps", type=int, default=10)
    ap.add_argument("--check_ids", metavar="REWARDC", help="rewardc binary: compare ids with its tokenizer")
    ap.add_argument("--check_pairs", type=int, default=50, help="pairs --check_ids compares (50)")
    ap.add_argument("--out", help="also write the JSON result here")
    return ap.parse_args()


def main():
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import tokenizers
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    policy = load_encode_policy(args.model, args.max_length)
    encoder = Encoder(tokenizer, policy)
    train_pairs, train_texts, train_counts = encode_pairs(args.train, tokenizer, encoder)
    evals = {}
    for name, path in (("eval", args.eval), ("holdout", args.holdout)):
        if path:
            evals[name] = (path,) + encode_pairs(path, tokenizer, encoder)
    encode_seconds = time.perf_counter() - t0
    for name, counts in [("train", train_counts)] + [(k, v[3]) for k, v in evals.items()]:
        print(f"peer {name}: {counts['pairs_encoded']} pairs encoded (max_length {policy['max_length']}, "
              f"longest {counts['longest']} tokens); {counts['prompt_truncated']} sequences had the "
              f"prompt truncated, {counts['response_truncated']} the response, "
              f"{counts['pairs_dropped']} pairs dropped", file=sys.stderr)
    id_check = check_ids(args.check_ids, args.model, encoder, train_texts, args.check_pairs) \
        if args.check_ids else None
    if id_check:
        print(f"peer: ids of {id_check['sequences']} sequences equal rewardc's", file=sys.stderr)

    t0 = time.perf_counter()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        args.model, dtype=torch.float32, attn_implementation=args.attn)  # dtype: torch_dtype's new name
    load_seconds = time.perf_counter() - t0
    pad_id = model.config.pad_token_id
    if pad_id is None:
        raise SystemExit(f"{args.model}/config.json has no pad_token_id")
    trainable = set_trainable(model, args.train_layers, args.train_head_only)
    total_params = sum(p.numel() for p in model.parameters())
    print(f"peer: {type(model).__name__}, {total_params / 1e6:.2f}M parameters, "
          f"{trainable:,} trainable, {args.attn} attention, {args.threads} threads",
          file=sys.stderr)

    training = train(torch, transformers, model, train_pairs, args, pad_id)
    print(f"peer: trained {training['steps']} steps in {training['seconds']:.1f} s "
          f"({training['tokens_per_second']:.0f} tokens/s); first step loss "
          f"{training['first_step_loss']:.6f}, final train loss {training['final_loss']:.4f}",
          file=sys.stderr)
    results = {}
    for name, (path, pairs, _, counts) in evals.items():
        results[name] = evaluate(torch, model, pairs, args.eval_batch or args.batch, pad_id)
        results[name].update({"file": path, "encode": counts})
        print(f"peer {name}: pairwise accuracy {results[name]['accuracy']:.4f} (ties "
              f"{results[name]['ties']:.4f}), loss {results[name]['loss']:.4f}, "
              f"{results[name]['seconds']:.1f} s", file=sys.stderr)

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = {
        "tool": "peer_pretrained.py",
        "model": os.path.abspath(args.model), "model_class": type(model).__name__,
        "parameters": total_params, "trainable_parameters": trainable,
        "trainable": ("head" if args.train_head_only else
                      f"top {args.train_layers} layers + norm + head" if args.train_layers
                      else "all"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "encode_policy": policy, "adds_bos": encoder.adds_bos, "pad_token_id": pad_id,
        "train_file": os.path.abspath(args.train), "train_encode": train_counts,
        "id_check": id_check,
        "seconds": {"load_tokenizer_and_encode": encode_seconds, "load_model": load_seconds,
                    "train": training["seconds"], **{k: v["seconds"] for k, v in results.items()}},
        "train": {k: v for k, v in training.items()},
        **{k: v for k, v in results.items()},
        "peak_rss_mib": peak_kib / 1024.0,
        "threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "blas": blas_info(torch), "platform": platform.platform(),
                     "machine": platform.machine()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
