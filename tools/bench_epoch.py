#!/usr/bin/env python3
"""One training epoch on real HH-RLHF preference pairs: rewardc against PyTorch + transformers.

The issue's question: how long does a reward-model epoch take on real data, end to end,
when each side does what it does by default? The same pairs, the same initial weights
(`rewardc init`, loaded by transformers), the same batch size, optimizer and thread count:

  torch    the loop transformers' Trainer runs for a reward model: pairs in random order
           (RandomSampler), each batch padded to its longest sequence (DataCollatorWithPadding),
           chosen and rejected as one batch of 2B rows, loss -logsigmoid(r_c - r_r).mean(),
           clip_grad_norm_(1.0), AdamW with Trainer's no-decay groups, linear schedule.
  rewardc  `rewardc train` with --group_by_length (length-bucketed batches, as Trainer's
           group_by_length) and its default --share_prompt_prefix (a pair's shared dialogue
           computed once; the two responses attend to it).

For attribution rewardc also runs the torch loop's work (random order, one padded row per
sequence) and bucketing alone (--ablations, on by default).

Pairs: a seeded sample of --pairs pairs from harmless_base_dev.jsonl.gz whose sequences fit
--max-length with BOS and EOS (so no truncation rule can differ between the sides). Both
sides must see the same token count: rewardc's training_summary.json "tokens" is checked
against the peer's count of the same encoding (tokenizer(text) + EOS), else the run fails.

Timed: the training loop only (model loading and tokenization excluded on both sides).
Peak RSS is the whole process (getrusage), each side in its own process.

Prints a table, a "BENCH " line, and writes OUT/epoch-<shape>-<pairs>.json.

Usage:
  python3 tools/bench_epoch.py [--shape opt-125m] [--pairs 64] [--batch 4] [--threads 2]
                               [--max-length 512] [--no-ablations] [--rewardc build/rewardc]
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
        ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
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


# ---------------------------------------------------------------- rewardc runs

def rewardc_epoch(args, model, pairs_file, name, flags):
    out = os.path.join(args.out, f"epoch-{name}")
    cmd = [args.rewardc, "train", "--model", model, "--train_file", pairs_file, "--output_dir", out,
           "--overwrite_output_dir", "--num_train_epochs", "1", "--per_device_train_batch_size",
           str(args.batch), "--learning_rate", str(args.learning_rate), "--weight_decay",
           str(args.weight_decay), "--save_steps", "0", "--logging_steps", "1", "--seed",
           str(args.seed), "--threads", str(args.threads), "--quiet"] + flags
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    wrapper = [sys.executable, "-c",
               "import resource, subprocess, sys, json; rc = subprocess.call(sys.argv[1:]); "
               "print(json.dumps({'rc': rc, 'peak_rss_kib': "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"] + cmd
    proc = subprocess.run(wrapper, stdout=subprocess.PIPE, text=True, env=env)
    child = bench.last_json_line(proc.stdout, "rewardc train")
    if child["rc"] != 0:
        raise RuntimeError(f"rewardc train ({name}) failed with exit code {child['rc']}")
    with open(os.path.join(out, "training_summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "train_log.jsonl")) as f:
        losses = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    return {"impl": "rewardc", "run": name, "flags": flags, "seconds": summary["train_seconds"],
            "tokens": summary["tokens"], "shared_prefix_tokens": summary["shared_prefix_tokens"],
            "tokens_per_second": summary["tokens"] / summary["train_seconds"],
            "mean_loss": sum(losses) / len(losses) if losses else None,
            "peak_rss_mib": child["peak_rss_kib"] / 1024.0}


def orchestrate(args):
    from transformers import AutoTokenizer
    os.makedirs(args.out, exist_ok=True)
    print(f"machine: {json.dumps(bench.machine_info())}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    pairs, skipped = select_pairs(args, tokenizer)
    raw = os.path.join(args.out, f"epoch-raw-{args.pairs}.jsonl")
    with open(raw, "w") as f:
        for p in pairs:
            f.write(json.dumps({"chosen": p["chosen"], "rejected": p["rejected"]}) + "\n")
    pairs_file = os.path.join(args.out, f"epoch-pairs-{args.pairs}.jsonl")
    subprocess.run([args.rewardc, "prepare", "--from", "preferences", "--input", raw,
                    "--output", pairs_file], check=True, stdout=sys.stderr)
    model = os.path.join(args.out, f"{args.shape}-seed{args.init_seed}-len{args.max_length}")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([args.rewardc, "init", "--preset", args.shape, "--tokenizer", args.tokenizer,
                        "--out", model, "--seed", str(args.init_seed), "--max-length",
                        str(args.max_length), "--force"], check=True, stdout=sys.stderr)

    runs = [("default", ["--group_by_length"])]
    if args.ablations:
        runs += [("bucketing-only", ["--group_by_length", "--share_prompt_prefix=false"]),
                 ("torch-work", ["--share_prompt_prefix=false"])]
    results = [rewardc_epoch(args, model, pairs_file, name, flags) for name, flags in runs]
    peer = [sys.executable, os.path.abspath(__file__), "torch-peer", "--model", model,
            "--pairs-file", pairs_file] + [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                                           ("threads", "batch", "seed", "learning_rate",
                                            "weight_decay")]
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
    print(f"\nepoch of {len(pairs)} HH-RLHF pairs ({skipped} skipped as too long or identical), "
          f"{args.shape}, batch {args.batch} pairs, {args.threads} threads, "
          f"{torch_result['tokens']} tokens; torch padded to {torch_result['padded_slots']} slots")
    print(f"{'run':<28} {'seconds':>9} {'peak RSS MiB':>13} {'speed-up':>9}")
    for name, sec, rss, speed in rows:
        print(f"{name:<28} {sec:9.1f} {rss:13.0f} {speed:8.2f}x")
    default = results[0]
    print(f"rewardc default: {default['shared_prefix_tokens']} of {default['tokens']} tokens were "
          f"shared prompt prefixes computed once")
    record = {"machine": bench.machine_info(), "shape": args.shape, "pairs": len(pairs),
              "skipped": skipped, "batch": args.batch, "threads": args.threads,
              "max_length": args.max_length, "torch": torch_result, "rewardc": results,
              "speedup": torch_result["seconds"] / default["seconds"],
              "rss_ratio": default["peak_rss_mib"] / torch_result["peak_rss_mib"]}
    bench.write_json_atomic(os.path.join(args.out, f"epoch-{args.shape}-{len(pairs)}.json"), record)
    bench.summary_line({"bench": "epoch", "shape": args.shape, "pairs": len(pairs),
                              "rewardc_s": round(default["seconds"], 2),
                              "torch_s": round(torch_result["seconds"], 2),
                              "speedup": round(record["speedup"], 3),
                              "rss_ratio": round(record["rss_ratio"], 3)})
    return 1 if failures else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    data = os.environ.get("REWARDC_DATA", os.path.join(REPO, "..", "shared", "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    peer = len(argv) > 0 and argv[0] == "torch-peer"
    if peer:
        parser.add_argument("mode")
        parser.add_argument("--model", required=True)
        parser.add_argument("--pairs-file", required=True)
    else:
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
    parser.add_argument("--batch", type=int, default=4, help="pairs per batch (4)")
    parser.add_argument("--seed", type=int, default=1234, help="pair sample and data order")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    args = parser.parse_args(argv)
    if peer:
        torch_epoch(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
