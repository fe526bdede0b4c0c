#!/usr/bin/env python3
"""Real HH-RLHF preference pairs: a training epoch and scoring, rewardc against PyTorch + transformers.

The issue's question: how long does reward-model work take on real data, end to end, when each
side does what it does by default? The same pairs, the same initial weights (`rewardc init`,
loaded by transformers), the same batch size, optimizer and thread count.

epoch (one training epoch)
  torch    the loop transformers' Trainer runs for a reward model: pairs in random order
           (RandomSampler), each batch padded to its longest sequence (DataCollatorWithPadding),
           chosen and rejected as one batch of 2B rows, loss -logsigmoid(r_c - r_r).mean(),
           clip_grad_norm_(1.0), AdamW with Trainer's no-decay groups, linear schedule.
  rewardc  `rewardc train` with --group_by_length (length-bucketed batches, as Trainer's
           group_by_length) and its default --share_prompt_prefix (a pair's shared dialogue
           computed once; the two responses attend to it). Its last layer runs past keys and
           values only where the score is read.
  For attribution rewardc also runs the torch loop's work (random order, one padded row per
  sequence) and bucketing alone (--ablations, on by default).
  Timed: the training loop only (model loading and tokenization excluded on both sides).

score (gating responses)
  The 2 x pairs dialogues as {"text": ...} lines, in file order (chosen, rejected, ...).
  torch    batches of --score-batch texts in input order, padded to the longest, under
           torch.inference_mode (what a pipeline over the file does); timed from after model
           loading, tokenization included.
  rewardc  `rewardc score --batch-size N`, whole process timed (loading and tokenization
           included), which batches each window of lines by length, and lets texts that begin
           alike (here each pair's dialogue) share a row that computes their beginning once.
           --ablations adds the same run with --share-prefix false.
  The rewards of both sides must agree to 1e-3, else the run fails.

Pairs: a seeded sample of --pairs pairs from harmless_base_dev.jsonl.gz whose sequences fit
--max-length with BOS and EOS (so no truncation rule can differ between the sides). Both
sides must see the same token count: rewardc's training_summary.json "tokens" is checked
against the peer's count of the same encoding (tokenizer(text) + EOS), else the run fails.
Peak RSS is the whole process (getrusage), each side in its own process.

Prints a table per part, "BENCH " lines, and writes OUT/hh-<shape>-<pairs>.json.

Usage:
  python3 tools/bench_hh.py [--parts epoch,score] [--shape opt-125m] [--pairs 64] [--batch 4]
                            [--score-batch 8] [--threads 2] [--max-length 512] [--no-ablations]
                            [--device cpu|cuda]
--device cuda runs both sides on the GPU: rewardc's cuda backend against torch on CUDA (fp32, no
TF32 on either side). Peak RSS then measures host memory only.
Needs torch, transformers (tools/requirements.txt).
"""

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (shared helpers: atomic JSON, RSS, machine info, decay groups)

REPO = bench.REPO


def encode(tokenizer, text, eos_id):
    """rewardc's default encode policy for a pair without a separate prompt: BOS + text + EOS."""
    return tokenizer(text)["input_ids"] + [eos_id]


def select_pairs(args, tokenizer):
    with gzip.open(args.input, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    order = list(range(len(records)))
    random.Random(args.seed).shuffle(order)
    chosen_pairs, skipped = [], 0
    for i in order:
        r = records[i]
        if r["chosen"] == r["rejected"]:
            skipped += 1  # prepare drops these
            continue
        lengths = [len(encode(tokenizer, r[k], 2)) for k in ("chosen", "rejected")]
        if max(lengths) > args.max_length:
            skipped += 1
            continue
        chosen_pairs.append(r)
        if len(chosen_pairs) == args.pairs:
            break
    return chosen_pairs, skipped


# ---------------------------------------------------------------- the PyTorch peer

def torch_epoch(args):
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model,
                                                               torch_dtype=torch.float32)
    model.to(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # on a GPU: fp32 products, as rewardc's cuBLAS
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    pad, eos = model.config.pad_token_id, model.config.eos_token_id
    with open(args.pairs_file) as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    encoded = [(encode(tokenizer, p.get("prompt", "") + p["chosen"], eos),
                encode(tokenizer, p.get("prompt", "") + p["rejected"], eos)) for p in pairs]
    tokens = sum(len(c) + len(r) for c, r in encoded)

    model.train()
    optimizer = torch.optim.AdamW(bench.decay_groups(model, torch, args.weight_decay),
                                  lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    steps = (len(encoded) + args.batch - 1) // args.batch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(args.seed))
    slots, losses = 0, []
    start = time.perf_counter()
    for step in range(steps):
        batch = [encoded[i] for i in order[step * args.batch:(step + 1) * args.batch].tolist()]
        rows = [c for c, _ in batch] + [r for _, r in batch]
        T = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows], device=args.device)
        mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows], device=args.device)
        slots += ids.numel()
        rewards = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        n = len(batch)
        loss = -torch.nn.functional.logsigmoid(rewards[:n] - rewards[n:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        print(f"torch epoch: step {step + 1}/{steps} T={T} loss {losses[-1]:.4f} "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    result = {"impl": "torch", "pairs": len(encoded), "steps": steps, "seconds": seconds,
              "tokens": tokens, "padded_slots": slots, "tokens_per_second": tokens / seconds,
              "mean_loss": sum(losses) / len(losses), "peak_rss_mib": bench.peak_rss_mib(),
              "environment": bench.torch_environment(torch, transformers, model)}
    print(json.dumps(result), flush=True)


def torch_score(args):
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(args.model,
                                                               torch_dtype=torch.float32)
    model.to(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # on a GPU: fp32 products, as rewardc's cuBLAS
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    pad, eos = model.config.pad_token_id, model.config.eos_token_id
    with open(args.texts_file) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    rewards, slots = [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(texts), args.score_batch):
            rows = [encode(tokenizer, t, eos) for t in texts[first:first + args.score_batch]]
            T = max(len(r) for r in rows)
            ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows], device=args.device)
            mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows],
                                device=args.device)
            slots += ids.numel()
            rewards += model(input_ids=ids, attention_mask=mask).logits.squeeze(-1).tolist()
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "torch", "texts": len(texts), "seconds": seconds,
                      "padded_slots": slots, "texts_per_second": len(texts) / seconds,
                      "rewards": rewards, "peak_rss_mib": bench.peak_rss_mib()}), flush=True)


# ---------------------------------------------------------------- rewardc runs

def run_rewardc(args, cmd, what):
    """Runs a rewardc command in a small wrapper process that reports its wall time and peak
    RSS (getrusage of its only child); fails on a non-zero exit."""
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, json, time; t = time.perf_counter(); "
               "rc = subprocess.call(sys.argv[1:]); t = time.perf_counter() - t; "
               "print(json.dumps({'rc': rc, 'seconds': t, 'peak_rss_mib': "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"] + cmd
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(wrapper, stdout=subprocess.PIPE, text=True, env=env)
    child = bench.last_json_line(proc.stdout, what)
    if child["rc"] != 0:
        raise RuntimeError(f"{what} failed with exit code {child['rc']}")
    return child


def rewardc_epoch(args, model, pairs_file, name, flags):
    out = os.path.join(args.out, f"hh-epoch-{name}")
    cmd = [args.rewardc, "train", "--model", model, "--train_file", pairs_file, "--output_dir", out,
           "--overwrite_output_dir", "--num_train_epochs", "1", "--per_device_train_batch_size",
           str(args.batch), "--learning_rate", str(args.learning_rate), "--weight_decay",
           str(args.weight_decay), "--save_steps", "0", "--logging_steps", "1", "--seed",
           str(args.seed), "--threads", str(args.threads), "--quiet", "--backend",
           args.device] + flags
    child = run_rewardc(args, cmd, f"rewardc train ({name})")
    with open(os.path.join(out, "training_summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "train_log.jsonl")) as f:
        losses = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    return {"impl": "rewardc", "run": name, "flags": flags, "seconds": summary["train_seconds"],
            "tokens": summary["tokens"], "shared_prefix_tokens": summary["shared_prefix_tokens"],
            "tokens_per_second": summary["tokens"] / summary["train_seconds"],
            "mean_loss": sum(losses) / len(losses) if losses else None,
            "peak_rss_mib": child["peak_rss_mib"]}


def prepare(args):
    """The pair sample, its prepared pairs file and the model folder (cached by shape)."""
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    pairs, skipped = select_pairs(args, tokenizer)
    raw = os.path.join(args.out, f"hh-raw-{args.pairs}.jsonl")
    with open(raw, "w") as f:
        for p in pairs:
            f.write(json.dumps({"chosen": p["chosen"], "rejected": p["rejected"]}) + "\n")
    pairs_file = os.path.join(args.out, f"hh-pairs-{args.pairs}.jsonl")
    subprocess.run([args.rewardc, "prepare", "--from", "preferences", "--input", raw,
                    "--output", pairs_file], check=True, stdout=sys.stderr)
    model = os.path.join(args.out, f"{args.shape}-seed{args.init_seed}-len{args.max_length}")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([args.rewardc, "init", "--preset", args.shape, "--tokenizer", args.tokenizer,
                        "--out", model, "--seed", str(args.init_seed), "--max-length",
                        str(args.max_length), "--force"], check=True, stdout=sys.stderr)
    return pairs, skipped, pairs_file, model


def peer_command(mode, model, extra, args, keys):
    return ([sys.executable, os.path.abspath(__file__), "torch-peer", mode, "--model", model] +
            extra + [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys])


def epoch_part(args, pairs, pairs_file, model):
    runs = [("default", ["--group_by_length"])]
    if args.ablations:
        runs += [("bucketing-only", ["--group_by_length", "--share_prompt_prefix=false"]),
                 ("torch-work", ["--share_prompt_prefix=false"])]
    results = [rewardc_epoch(args, model, pairs_file, name, flags) for name, flags in runs]
    peer = peer_command("epoch", model, ["--pairs-file", pairs_file], args,
                        ("threads", "batch", "seed", "learning_rate", "weight_decay", "device"))
    torch_result = bench.run_child(peer, "torch epoch", args.threads)

    failures = 0
    for r in results:
        if r["tokens"] != torch_result["tokens"]:
            print(f"rewardc ({r['run']}) trained on {r['tokens']} tokens, torch on "
                  f"{torch_result['tokens']}: not the same data", file=sys.stderr)
            failures += 1
    rows = [("torch (Trainer loop)", torch_result["seconds"], torch_result["peak_rss_mib"], 1.0)]
    for r in results:
        rows.append((f"rewardc {r['run']}", r["seconds"], r["peak_rss_mib"],
                     torch_result["seconds"] / r["seconds"]))
    print(f"\nepoch of {len(pairs)} HH-RLHF pairs, {args.shape}, batch {args.batch} pairs, "
          f"{args.threads} threads, {torch_result['tokens']} tokens; torch padded to "
          f"{torch_result['padded_slots']} slots")
    print(f"{'run':<28} {'seconds':>9} {'peak RSS MiB':>13} {'speed-up':>9}")
    for name, sec, rss, speed in rows:
        print(f"{name:<28} {sec:9.1f} {rss:13.0f} {speed:8.2f}x")
    default = results[0]
    print(f"rewardc default: {default['shared_prefix_tokens']} of {default['tokens']} tokens were "
          f"shared prompt prefixes computed once")
    record = {"torch": torch_result, "rewardc": results,
              "speedup": torch_result["seconds"] / default["seconds"],
              "rss_ratio": default["peak_rss_mib"] / torch_result["peak_rss_mib"]}
    bench.summary_line({"bench": "hh-epoch", "device": args.device, "shape": args.shape,
                        "pairs": len(pairs),
                        "rewardc_s": round(default["seconds"], 2),
                        "torch_s": round(torch_result["seconds"], 2),
                        "speedup": round(record["speedup"], 3),
                        "rss_ratio": round(record["rss_ratio"], 3)})
    return record, failures


def score_part(args, pairs, model):
    texts_file = os.path.join(args.out, f"hh-texts-{args.pairs}.jsonl")
    with open(texts_file, "w") as f:
        for p in pairs:
            for key in ("chosen", "rejected"):
                f.write(json.dumps({"text": p[key]}) + "\n")
    runs = [("rewardc score (whole run)", [])]
    if args.ablations:
        runs.append(("  no prefix sharing", ["--share-prefix", "false"]))
    results = []
    for name, flags in runs:
        scored = os.path.join(args.out, f"hh-scored-{args.pairs}.jsonl")
        cmd = [args.rewardc, "score", "--model", model, "--input", texts_file, "--output", scored,
               "--batch-size", str(args.score_batch), "--threads", str(args.threads),
               "--backend", args.device] + flags
        child = run_rewardc(args, cmd, "rewardc score")
        with open(scored) as f:
            child["rewards"] = [json.loads(line)["reward"] for line in f if line.strip()]
        results.append((name, flags, child))
    ours = results[0][2]["rewards"]
    peer = peer_command("score", model, ["--texts-file", texts_file], args,
                        ("threads", "score_batch", "device"))
    theirs = bench.run_child(peer, "torch score", args.threads)
    worst = max(abs(a - b) for _, _, child in results
                for a, b in zip(child["rewards"], theirs["rewards"]))
    agree = all(len(child["rewards"]) == len(theirs["rewards"]) for _, _, child in results) and \
        worst <= bench.AGREEMENT_TOLERANCE
    speedup = theirs["seconds"] / results[0][2]["seconds"]
    print(f"\nscoring {len(ours)} HH-RLHF dialogues, {args.shape}, batches of {args.score_batch}, "
          f"{args.threads} threads; torch padded to {theirs['padded_slots']} slots")
    print(f"{'run':<28} {'seconds':>9} {'peak RSS MiB':>13} {'speed-up':>9}")
    print(f"{'torch (inference_mode)':<28} {theirs['seconds']:9.1f} {theirs['peak_rss_mib']:13.0f}"
          f" {1.0:8.2f}x")
    for name, _, child in results:
        print(f"{name:<28} {child['seconds']:9.1f} {child['peak_rss_mib']:13.0f} "
              f"{theirs['seconds'] / child['seconds']:8.2f}x")
    print(f"rewards agree: worst |difference| {worst:.2g} "
          f"({'ok' if agree else 'NOT the same computation'})")
    del theirs["rewards"]
    record = {"torch": theirs,
              "rewardc": [{"run": name, "flags": flags, "seconds": child["seconds"],
                           "peak_rss_mib": child["peak_rss_mib"]}
                          for name, flags, child in results],
              "speedup": speedup, "worst_reward_difference": worst, "agree": agree}
    bench.summary_line({"bench": "hh-score", "device": args.device, "shape": args.shape,
                        "texts": len(ours),
                        "rewardc_s": round(results[0][2]["seconds"], 2),
                        "torch_s": round(theirs["seconds"], 2), "speedup": round(speedup, 3),
                        "agree": agree})
    return record, 0 if agree else 1


def orchestrate(args):
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for p in parts:
        if p not in ("epoch", "score"):
            raise SystemExit(f"unknown part '{p}' (choose from epoch, score)")
    os.makedirs(args.out, exist_ok=True)
    print(f"machine: {json.dumps(bench.machine_info())}", flush=True)
    pairs, skipped, pairs_file, model = prepare(args)
    print(f"{len(pairs)} pairs sampled ({skipped} skipped as too long or identical)", flush=True)
    record = {"machine": bench.machine_info(), "shape": args.shape, "pairs": len(pairs),
              "skipped": skipped, "batch": args.batch, "score_batch": args.score_batch,
              "threads": args.threads, "max_length": args.max_length}
    failures = 0
    if "epoch" in parts:
        record["epoch"], failed = epoch_part(args, pairs, pairs_file, model)
        failures += failed
    if "score" in parts:
        record["score"], failed = score_part(args, pairs, model)
        failures += failed
    bench.write_json_atomic(os.path.join(args.out, f"hh-{args.shape}-{len(pairs)}"
                                          f"{'' if args.device == 'cpu' else '-' + args.device}.json"), record)
    return 1 if failures else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    data = os.environ.get("REWARDC_DATA", os.path.join(REPO, "..", "shared", "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    peer = len(argv) > 0 and argv[0] == "torch-peer"
    if peer:
        parser.add_argument("role")
        parser.add_argument("mode", choices=("epoch", "score"))
        parser.add_argument("--model", required=True)
        parser.add_argument("--pairs-file")
        parser.add_argument("--texts-file")
    else:
        parser.add_argument("--parts", default="epoch,score", help="epoch, score or both")
        parser.add_argument("--shape", default="opt-125m", help="rewardc init preset (opt-125m)")
        parser.add_argument("--pairs", type=int, default=64, help="pairs in the epoch (64)")
        parser.add_argument("--max-length", type=int, default=512,
                            help="pairs longer than this are left out (512)")
        parser.add_argument("--input", default=os.path.join(data, "hh-rlhf",
                                                            "harmless_base_dev.jsonl.gz"))
        parser.add_argument("--tokenizer", default=os.path.join(data, "tokenizers", "opt"))
        parser.add_argument("--init-seed", type=int, default=42)
        parser.add_argument("--rewardc", default=os.environ.get(
            "REWARDC_BIN", os.path.join(REPO, "build", "rewardc")))
        parser.add_argument("--out", default=os.path.join(REPO, "runs", "bench"))
        parser.add_argument("--no-ablations", dest="ablations", action="store_false",
                            help="only rewardc's default run against torch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: rewardc's cuda backend against torch on the GPU")
    parser.add_argument("--batch", type=int, default=4, help="pairs per training batch (4)")
    parser.add_argument("--score-batch", type=int, default=8, help="texts per scoring batch (8)")
    parser.add_argument("--seed", type=int, default=1234, help="pair sample and data order")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    args = parser.parse_args(argv)
    if peer:
        torch_epoch(args) if args.mode == "epoch" else torch_score(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
