#!/usr/bin/env python3
"""rewardc against PyTorch + transformers on the CPU, side by side in one run.

For each model shape (rewardc presets, random weights from `rewardc init`, cached under the
output folder) and each benchmark:

  train-step  one optimizer step on B chosen + B rejected sequences of T tokens: zero_grad,
              forward, loss = -logsigmoid(r_c - r_r).mean(), backward, clip_grad_norm_(1.0),
              AdamW (lr 1e-5, weight decay 0.01 except biases and LayerNorm weights)
  score       one forward pass of B sequences (torch under inference_mode)
  sgemm       OpenBLAS cblas_sgemm at N^3 through `rewardc bench sgemm`: the machine's
              attainable FLOP rate, against which model FLOP rates give an MFU

Each measurement runs in its own process (rewardc's `bench` subcommand, then this script's
`torch-peer` mode) with the same thread count, on the very same batch (rewardc writes it with
--save-batch; the peer reads it), so peak RSS (getrusage ru_maxrss) belongs to one benchmark.
Medians of --steps repetitions after --warmup are compared. On a machine whose speed wanders
(a shared VM), --rounds N runs the two sides alternately N times and compares, for each side,
the round with the median time (the round ratios are printed too). Model FLOPs (matrix products only,
2*M*N*K each, backward = 2x forward; see `rewardc bench --help`) come from rewardc's count and
are applied to both sides. The first-step losses / rewards of both sides are compared too: the
same weights and batch must give the same numbers, else the timings compare different work.

Prints a table per benchmark, one line per benchmark starting with "BENCH " that a script can
read (key=value pairs), and writes OUT/<name>.json (raw results of both sides in OUT/raw/).

Usage:
  python3 tools/bench.py [--shapes tiny,opt-125m] [--benchmarks train-step,score,sgemm]
                         [--pairs 4] [--batch 8] [--seq-len 256] [--steps 5] [--warmup 1]
                         [--threads 2] [--lengths full|varied] [--rounds 1]
                         [--rewardc build/rewardc]
Needs torch and transformers (tools/requirements.txt) for the PyTorch side; --no-torch skips it.

--device cuda runs both sides on the GPU instead: rewardc's cuda backend (cuBLAS) against
PyTorch on CUDA, and sgemm through the backend (cuBLAS, full fp32 on both sides: no TF32).
Timings there end with torch.cuda.synchronize(); the peer also reports its peak GPU memory.
"""

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = ("train-step", "score", "sgemm")
# A loss or reward differing by more than this between the two sides means they did not
# compute the same thing (float32 summation order alone gives ~1e-6).
AGREEMENT_TOLERANCE = 1e-3


# ---------------------------------------------------------------- small helpers

def write_json_atomic(path, obj):
    """Temp file in the same folder, fsync, rename: readers never see half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def peak_rss_mib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mib():
    """VmRSS from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def last_json_line(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{what} printed no JSON result line")


def run_child(cmd, what, threads):
    """Runs one measurement process; its stderr (progress) streams through."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)  # both sides start from the same default
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed with exit code {proc.returncode}")
    return last_json_line(proc.stdout, what)


def machine_info():
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = os.getloadavg()
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE", "MKL_NUM_THREADS"):
        if key in os.environ:
            info.setdefault("environment", {})[key] = os.environ[key]
    return info


def median(values):
    return statistics.median(values)


# ---------------------------------------------------------------- the PyTorch peer

def torch_environment(torch, transformers, model):
    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "mkldnn": torch.backends.mkldnn.is_available(),
           "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    for line in torch.__config__.show().splitlines():
        line = line.strip()
        if line.startswith(("- BLAS_INFO", "BLAS_INFO", "- LAPACK_INFO")) or "BLAS_INFO=" in line:
            env.setdefault("build", []).append(line)
    try:
        import threadpoolctl  # optional: shows which BLAS/OpenMP runtimes are loaded
        env["threadpools"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version",
                                                      "filepath")}
                              for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    return env


NO_DECAY_NAMES = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")


def decay_groups(model, torch, weight_decay):
    """Trainer's grouping (get_decay_parameter_names): no decay for biases, LayerNorm
    modules and norm-named parameters (RMSNorm weights), as rewardc's table marks them."""
    no_decay = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if isinstance(module, torch.nn.LayerNorm) or NO_DECAY_NAMES.search(full.lower()):
                no_decay.add(full)
    decay = [p for n, p in model.named_parameters() if n not in no_decay]
    rest = [p for n, p in model.named_parameters() if n in no_decay]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


def torch_peer(args):
    rss_start = current_rss_mib()
    import numpy as np
    import safetensors.numpy
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 products, as rewardc's cuBLAS calls

    def wall_clock():
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    rss_imported = current_rss_mib()
    kwargs = {"torch_dtype": torch.float32}
    if args.attn_implementation != "default":
        kwargs["attn_implementation"] = args.attn_implementation
    model = AutoModelForSequenceClassification.from_pretrained(args.model, **kwargs).to(device)
    cfg = model.config
    dropouts = {k: getattr(cfg, k) for k in ("dropout", "attention_dropout", "layerdrop",
                                             "hidden_dropout", "resid_pdrop", "embd_pdrop",
                                             "attn_pdrop") if getattr(cfg, k, 0)}
    if dropouts:
        raise SystemExit(f"{args.model}: dropout must be 0 for a like-for-like step ({dropouts})")
    batch = safetensors.numpy.load_file(args.batch_file)
    ids = torch.from_numpy(batch["input_ids"].astype(np.int64)).to(device)
    mask = torch.from_numpy(batch["attention_mask"].astype(np.int64)).to(device)
    rows, T = ids.shape
    result = {"bench": args.peer, "impl": "torch", "model": {"dir": args.model,
              "parameters": sum(p.numel() for p in model.parameters())},
              "rows": rows, "seq_len": T, "tokens": rows * T, "real_tokens": int(mask.sum()),
              "warmup": args.warmup, "steps": args.steps,
              "environment": torch_environment(torch, transformers, model),
              "rss_at_start_mib": rss_start, "rss_after_import_mib": rss_imported}
    seconds, cpu_per_wall = [], []

    if args.peer == "train-step":
        pairs = rows // 2
        model.train()
        if args.torch_adamw == "fused":
            impl = {"fused": True}
        elif args.torch_adamw == "foreach":
            impl = {"foreach": True}
        else:
            impl = {}  # what transformers' Trainer (optim adamw_torch) gets: torch's default
        optimizer = torch.optim.AdamW(decay_groups(model, torch, args.weight_decay),
                                      lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8, **impl)
        result.update(pairs=pairs, learning_rate=args.learning_rate,
                      weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
                      adamw=args.torch_adamw)
        losses = []
        for step in range(args.warmup + args.steps):
            wall, cpu = wall_clock(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            rewards = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
            loss = -torch.nn.functional.logsigmoid(rewards[:pairs] - rewards[pairs:]).mean()
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            wall, cpu = wall_clock() - wall, time.process_time() - cpu
            losses.append(loss.item())
            phase = "warm-up" if step < args.warmup else "step"
            print(f"torch train-step: {phase} {wall:.3f} s, loss {losses[-1]:.6f}",
                  file=sys.stderr, flush=True)
            if step >= args.warmup:
                seconds.append(wall)
                cpu_per_wall.append(cpu / wall if wall > 0 else 0.0)
        result["losses"] = losses
    else:
        model.eval()
        with torch.inference_mode():
            for rep in range(args.warmup + args.steps):
                wall, cpu = wall_clock(), time.process_time()
                rewards = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
                wall, cpu = wall_clock() - wall, time.process_time() - cpu
                print(f"torch score: {'warm-up' if rep < args.warmup else 'pass'} {wall:.3f} s",
                      file=sys.stderr, flush=True)
                if rep >= args.warmup:
                    seconds.append(wall)
                    cpu_per_wall.append(cpu / wall if wall > 0 else 0.0)
        result["rewards_head"] = [float(r) for r in rewards[:8]]

    m = median(seconds)
    result.update(median_seconds=m, min_seconds=min(seconds), seconds=seconds,
                  cpu_per_wall=median(cpu_per_wall), tokens_per_second=rows * T / m)
    if args.peer == "score":
        result["sequences_per_second"] = rows / m
    result["peak_rss_mib"] = peak_rss_mib()
    if args.device == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["device"] = torch.cuda.get_device_name()
    if args.json:
        write_json_atomic(args.json, result)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the orchestrator

def tokenizer_for(args, shape):
    """SmolLM2 shapes take SmolLM2's own tokenizer (its vocabulary and pad id), from the
    GGUF on hand through `rewardc import`; the others the --tokenizer folder."""
    gguf = os.path.join(args.data, "models", "smollm2-135m-instruct",
                        "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not shape.startswith("smollm2") or not os.path.exists(gguf):
        return args.tokenizer
    folder = os.path.join(args.out, "smollm2-imported")
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        cmd = [args.rewardc, "import", "--gguf", gguf, "--out", folder, "--force"]
        print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    return folder


def ensure_model(args, shape):
    """rewardc init once per shape and seed; later runs reuse the folder."""
    folder = os.path.join(args.out, f"{shape}-seed{args.init_seed}")
    if not os.path.exists(os.path.join(folder, "config.json")):
        cmd = [args.rewardc, "init", "--preset", shape, "--tokenizer", tokenizer_for(args, shape),
               "--out", folder, "--seed", str(args.init_seed), "--force"]
        print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    return folder


def median_round(results):
    """The round whose median time is the median of the rounds' (the lower middle one for
    an even count), so that every figure reported comes from one consistent run."""
    ordered = sorted(results, key=lambda r: r["median_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def ratio(a, b):
    return a / b if a and b else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(title, rows):
    print(f"\n{title}")
    print(f"  {'':28s} {'rewardc':>14s} {'torch':>14s} {'rewardc/torch':>14s}")
    for label, ours, theirs, spec, show_ratio in rows:
        r = fmt(ratio(ours, theirs), ".3f") if show_ratio else ""
        print(f"  {label:28s} {fmt(ours, spec):>14s} {fmt(theirs, spec):>14s} {r:>14s}")


def summary_line(fields):
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        parts.append(f"{key}={'-' if value is None else value}")
    print("BENCH " + " ".join(parts), flush=True)


def run_sgemm(args):
    name = f"sgemm-{args.sgemm_size}-t{args.threads}{'' if args.device == 'cpu' else '-' + args.device}"
    raw = os.path.join(args.out, "raw", name + ".rewardc.json")
    cmd = [args.rewardc, "bench", "sgemm", "--size", str(args.sgemm_size), "--threads",
           str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--json", raw] + backend_flags(args)
    result = run_child(cmd, "rewardc bench sgemm", args.threads)
    record = {"name": name, "machine": machine_info(), "rewardc": result}
    write_json_atomic(os.path.join(args.out, name + ".json"), record)
    gflops = result["flops_per_second"] / 1e9
    print(f"\nsgemm {args.sgemm_size}^3 ({result['gemm']}), {result['threads']} threads: "
          f"{gflops:.2f} GFLOP/s (median of {result['steps']}, {result['median_seconds']:.4f} s; "
          f"cores used {result['cpu_per_wall']:.2f})")
    summary_line({"bench": "sgemm", "device": args.device, "size": args.sgemm_size,
                  "threads": result["threads"],
                  "gflops": gflops, "median_s": result["median_seconds"]})
    return result


def backend_flags(args):
    return [] if args.device == "cpu" else ["--backend", args.device]


def run_model_bench(args, bench, shape, sgemm):
    model_dir = ensure_model(args, shape)
    rows_flag, rows = ("--pairs", args.pairs) if bench == "train-step" else ("--batch", args.batch)
    name = f"{bench}-{shape}-{'B' if bench == 'score' else 'P'}{rows}-T{args.seq_len}-" \
           f"{args.lengths}-t{args.threads}{'' if args.device == 'cpu' else '-' + args.device}"
    raw = os.path.join(args.out, "raw")
    os.makedirs(raw, exist_ok=True)
    batch_file = os.path.join(raw, name + ".batch.safetensors")
    common = ["--seq-len", str(args.seq_len), "--steps", str(args.steps), "--warmup",
              str(args.warmup), "--threads", str(args.threads)]
    train_opts = ["--learning-rate", str(args.learning_rate), "--weight-decay",
                  str(args.weight_decay), "--max-grad-norm", str(args.max_grad_norm)]
    cmd = [args.rewardc, "bench", bench, "--model", model_dir, rows_flag, str(rows),
           "--lengths", args.lengths, "--seed", str(args.seed), "--save-batch", batch_file,
           "--json", os.path.join(raw, name + ".rewardc.json")] + common + backend_flags(args)
    if bench == "train-step":
        cmd += train_opts
    peer_cmd = None
    if not args.no_torch:
        peer_cmd = [sys.executable, os.path.abspath(__file__), "torch-peer", bench, "--model",
                    model_dir, "--batch-file", batch_file, "--attn-implementation",
                    args.attn_implementation, "--torch-adamw", args.torch_adamw, "--device",
                    args.device, "--json", os.path.join(raw, name + ".torch.json")] + common
        if bench == "train-step":
            peer_cmd += train_opts
    our_rounds, their_rounds = [], []
    for _ in range(args.rounds):
        our_rounds.append(run_child(cmd, f"rewardc bench {bench}", args.threads))
        if peer_cmd:
            their_rounds.append(run_child(peer_cmd, f"torch peer {bench}", args.threads))
    ours = median_round(our_rounds)
    theirs = median_round(their_rounds) if their_rounds else None

    flops = ours["model_flops_per_step" if bench == "train-step" else "model_flops_per_pass"]
    peak = sgemm["flops_per_second"] if sgemm else None

    def rate(result):
        return flops / result["median_seconds"] if result else None

    def mfu(result):
        return rate(result) / peak if result and peak else None

    checks = {}
    if theirs and bench == "train-step":
        checks["first_loss_abs_diff"] = abs(ours["losses"][0] - theirs["losses"][0])
        checks["last_loss_abs_diff"] = abs(ours["losses"][-1] - theirs["losses"][-1])
    if theirs and bench == "score":
        checks["rewards_max_abs_diff"] = max(abs(a - b) for a, b in
                                             zip(ours["rewards_head"], theirs["rewards_head"]))
    if theirs and theirs["model"]["parameters"] != ours["model"]["parameters"]:
        checks["parameter_count_mismatch"] = [ours["model"]["parameters"],
                                              theirs["model"]["parameters"]]
    agree = all(v <= AGREEMENT_TOLERANCE for k, v in checks.items() if k.endswith("diff")) \
        and "parameter_count_mismatch" not in checks

    speed_key = "tokens_per_second" if bench == "train-step" else "sequences_per_second"
    round_ratios = [ratio(a[speed_key], b[speed_key]) for a, b in zip(our_rounds, their_rounds)]
    record = {"name": name, "bench": bench, "shape": shape, "machine": machine_info(),
              "rewardc": ours, "torch": theirs, "rounds": args.rounds,
              "round_seconds": {"rewardc": [r["median_seconds"] for r in our_rounds],
                                "torch": [r["median_seconds"] for r in their_rounds]},
              "round_ratios": round_ratios,
              "ratio_rewardc_over_torch": ratio(ours[speed_key], theirs and theirs[speed_key]),
              "model_flops": flops, "sgemm_flops_per_second": peak,
              "mfu": {"rewardc": mfu(ours), "torch": mfu(theirs)},
              "checks": checks, "sides_agree": agree if theirs else None}
    write_json_atomic(os.path.join(args.out, name + ".json"), record)

    t = theirs or {}
    title = (f"{bench}  {shape} ({ours['model']['parameters'] / 1e6:.1f}M parameters)  "
             f"{ours['rows']} sequences x {ours['seq_len']} tokens ({args.lengths})"
             f"{' = ' + str(args.pairs) + ' pairs' if bench == 'train-step' else ''}, "
             f"{ours['threads']} threads")
    table = [("median seconds", ours["median_seconds"], t.get("median_seconds"), ".4f", True),
             ("tokens/s", ours["tokens_per_second"], t.get("tokens_per_second"), ".1f", True)]
    if bench == "score":
        table.append(("sequences/s", ours["sequences_per_second"],
                      t.get("sequences_per_second"), ".2f", True))
    table += [("model GFLOP/s", rate(ours) / 1e9, theirs and rate(theirs) / 1e9, ".2f", True),
              (f"MFU (sgemm {peak / 1e9:.1f} GFLOP/s)" if peak else "MFU (no sgemm run)",
               mfu(ours), mfu(theirs), ".3f", False),
              ("peak RSS MiB", ours["peak_rss_mib"], t.get("peak_rss_mib"), ".1f", True),
              ("cores used (cpu/wall)", ours["cpu_per_wall"], t.get("cpu_per_wall"), ".2f", False)]
    if t.get("peak_gpu_mib") is not None:
        table.append(("peak GPU MiB (torch allocator)", None, t["peak_gpu_mib"], ".1f", False))
    if bench == "train-step":
        table.append(("first-step loss", ours["losses"][0],
                      theirs and theirs["losses"][0], ".6f", False))
    if args.rounds > 1:
        title += f", the median of {args.rounds} alternating rounds"
    print_table(title, table)
    if args.rounds > 1 and round_ratios:
        print("  ratio in each round: " + ", ".join(f"{r:.2f}" for r in round_ratios))
    print(f"  model FLOPs per {'step' if bench == 'train-step' else 'pass'}: {flops / 1e9:.2f} G;"
          f" checks {json.dumps(checks)}")
    if theirs:
        print(f"  torch {t['environment']['torch']}, transformers "
              f"{t['environment']['transformers']}, attention "
              f"{t['environment']['attn_implementation']}, AdamW {args.torch_adamw}")
    if theirs and not agree:
        print(f"  WARNING: the two sides disagree beyond {AGREEMENT_TOLERANCE}: they did not "
              f"compute the same thing, so the timings are not comparable", flush=True)
    summary_line({"bench": bench, "device": args.device, "shape": shape, "rows": ours["rows"],
                  "seq_len": ours["seq_len"], "lengths": args.lengths,
                  "threads": ours["threads"],
                  "rewardc_" + speed_key: ours[speed_key],
                  "torch_" + speed_key: t.get(speed_key),
                  "ratio": record["ratio_rewardc_over_torch"],
                  "rewardc_peak_rss_mib": ours["peak_rss_mib"],
                  "torch_peak_rss_mib": t.get("peak_rss_mib"),
                  "rewardc_mfu": mfu(ours), "torch_mfu": mfu(theirs),
                  "rounds": args.rounds, "agree": record["sides_agree"]})
    return record


def orchestrate(args):
    if not os.path.isfile(args.rewardc) or not os.access(args.rewardc, os.X_OK):
        raise SystemExit(f"no rewardc executable at {args.rewardc}: build it (cmake --build build) "
                         f"or pass --rewardc / set REWARDC_BIN")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    for b in benchmarks:
        if b not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark '{b}' (choose from {', '.join(BENCHMARKS)})")
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    print(f"machine: {json.dumps(machine_info())}", flush=True)
    # the GEMM rate first: the MFU of every model benchmark divides by it
    sgemm = run_sgemm(args) if "sgemm" in benchmarks else None
    failures = 0
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        for bench in benchmarks:
            if bench == "sgemm":
                continue
            try:
                record = run_model_bench(args, bench, shape, sgemm)
                failures += record["sides_agree"] is False
            except (RuntimeError, subprocess.CalledProcessError) as e:
                print(f"{bench} {shape}: {e}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    default_data = os.environ.get("REWARDC_DATA", os.path.join(REPO, "..", "shared", "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    peer = len(argv) > 0 and argv[0] == "torch-peer"
    if peer:
        parser.add_argument("mode")
        parser.add_argument("peer", choices=("train-step", "score"))
        parser.add_argument("--model", required=True)
        parser.add_argument("--batch-file", required=True)
        parser.add_argument("--json")
    else:
        parser.add_argument("--shapes", default="tiny,opt-125m",
                            help="rewardc init presets, comma-separated (tiny,opt-125m; also "
                                 "smollm2-135m, the Llama family)")
        parser.add_argument("--benchmarks", default=",".join(BENCHMARKS),
                            help="comma-separated subset of train-step,score,sgemm (all)")
        parser.add_argument("--pairs", type=int, default=4, help="train-step pairs (4)")
        parser.add_argument("--batch", type=int, default=8, help="score sequences per pass (8)")
        parser.add_argument("--lengths", choices=("full", "varied"), default="full",
                            help="full: all rows T tokens; varied: uniform in [T/2, T], padded")
        parser.add_argument("--seed", type=int, default=1234, help="token-id seed (1234)")
        parser.add_argument("--init-seed", type=int, default=42, help="rewardc init seed (42)")
        parser.add_argument("--sgemm-size", type=int, default=2048, help="GEMM N (2048)")
        parser.add_argument("--rewardc", default=os.environ.get(
            "REWARDC_BIN", os.path.join(REPO, "build", "rewardc")), help="rewardc executable")
        parser.add_argument("--tokenizer", default=os.path.join(default_data, "tokenizers", "opt"),
                            help="tokenizer folder for rewardc init")
        parser.add_argument("--data", default=default_data,
                            help="the shared data folder (the SmolLM2 GGUF for smollm2 shapes)")
        parser.add_argument("--out", default=os.path.join(REPO, "runs", "bench"),
                            help="models, raw results and <name>.json (runs/bench)")
        parser.add_argument("--no-torch", action="store_true", help="rewardc side only")
        parser.add_argument("--rounds", type=int, default=1,
                            help="alternating runs of both sides; each reports its median (1)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (256)")
    parser.add_argument("--steps", type=int, default=5, help="timed repetitions (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions (1)")
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides (2)")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--attn-implementation", default="default",
                        help="transformers attention: default, eager or sdpa (default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu, or cuda: rewardc's cuda backend against torch on the GPU")
    parser.add_argument("--torch-adamw", choices=("default", "foreach", "fused"),
                        default="default", help="torch AdamW kernel (default: torch's choice, "
                        "as the Trainer gets)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.seq_len < 1:
        parser.error("--steps and --threads must be >= 1, --warmup >= 0")
    if peer:
        torch_peer(args)
        return 0
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
