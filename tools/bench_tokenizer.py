#!/usr/bin/env python3
"""Tokenizer throughput: rewardc vs Hugging Face `tokenizers` (Rust) on the 25,000
IMDB train reviews (train/pos + train/neg of aclImdb_labeled_full.tar.gz).

rewardc runs as `rewardc tokenize --input reviews.jsonl --threads N --time`, which
reports the time spent encoding (not reading, JSON parsing or printing); each
repetition is a fresh process, so its word cache starts cold. HF runs in a child
process with RAYON_NUM_THREADS=N and TOKENIZERS_PARALLELISM=true and times
Tokenizer.encode_batch (and encode_batch_fast, which skips offsets) on the same
texts; its repetitions share one process, so its cache is warm after the first.
The best of --repeat runs is reported for each. Both must produce the same ids
(checked through a hash of every review's ids), else the run fails.

usage: python3 tools/bench_tokenizer.py [--bin build/rewardc] [--tokenizer DIR]
           [--data ../shared/data] [--threads 1,2] [--repeat 3] [--json bench_tokenizer.json]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import time

HF_CHILD = r"""
import hashlib, json, os, sys, time
from transformers import AutoTokenizer
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
tok = AutoTokenizer.from_pretrained(sys.argv[2]).backend_tokenizer
repeat = int(sys.argv[3])
result = {}
for method in ("encode_batch", "encode_batch_fast"):
    fn = getattr(tok, method, None)
    if fn is None:
        continue
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        enc = fn(texts, add_special_tokens=True)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    ids = [e.ids for e in enc]
    h = hashlib.sha256()
    for row in ids:
        h.update((" ".join(map(str, row)) + "\n").encode())
    result[method] = {"seconds": best, "tokens": sum(len(r) for r in ids), "ids_sha256": h.hexdigest()}
print(json.dumps(result))
"""


def read_reviews(archive):
    texts = []
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[1] == "train" and parts[2] in ("pos", "neg"):
                texts.append((m.name, tar.extractfile(m).read().decode("utf-8")))
    texts.sort()
    return [t for _, t in texts]


def run_rewardc(binary, tokenizer, jsonl, threads, repeat):
    best = None
    for _ in range(repeat):
        proc = subprocess.run([binary, "tokenize", "--tokenizer", tokenizer, "--input", jsonl,
                               "--threads", str(threads), "--time"], capture_output=True, check=True)
        m = re.search(r"(\d+) texts, (\d+) tokens, ([0-9.]+) s encoding", proc.stderr.decode())
        if not m:
            sys.exit(f"unexpected rewardc --time output: {proc.stderr.decode()!r}")
        seconds = float(m.group(3))
        best = seconds if best is None else min(best, seconds)
        out = proc.stdout
    import hashlib
    h = hashlib.sha256()
    for line in out.decode().splitlines():
        h.update((" ".join(x.strip() for x in line.strip("[]").split(",") if x.strip()) + "\n").encode())
    return {"seconds": best, "tokens": int(m.group(2)), "ids_sha256": h.hexdigest()}


def run_hf(tokenizer, jsonl, threads, repeat):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    proc = subprocess.run([sys.executable, "-c", HF_CHILD, jsonl, tokenizer, str(repeat)],
                          capture_output=True, check=True, env=env)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "rewardc"))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--tokenizer", help="tokenizer folder (default: DATA/tokenizers/opt)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="bench_tokenizer.json", help="where the results go")
    args = ap.parse_args()
    tokenizer = args.tokenizer or os.path.join(args.data, "tokenizers", "opt")
    archive = os.path.join(args.data, "imdb", "aclImdb_labeled_full.tar.gz")
    texts = read_reviews(archive)
    assert len(texts) == 25000, len(texts)
    import tokenizers
    import transformers
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = os.path.join(tmp, "reviews.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        for threads in [int(x) for x in args.threads.split(",")]:
            rc = run_rewardc(args.bin, tokenizer, jsonl, threads, args.repeat)
            hf = run_hf(tokenizer, jsonl, threads, args.repeat)
            for method, r in hf.items():
                if r["ids_sha256"] != rc["ids_sha256"]:
                    sys.exit(f"ids differ between rewardc and HF {method} ({threads} threads)")
            row = {"threads": threads, "texts": len(texts), "tokens": rc["tokens"],
                   "rewardc_seconds": rc["seconds"], "rewardc_tokens_per_s": rc["tokens"] / rc["seconds"]}
            for method, r in hf.items():
                row[f"hf_{method}_seconds"] = r["seconds"]
                row[f"hf_{method}_tokens_per_s"] = r["tokens"] / r["seconds"]
            fastest_hf = min(r["seconds"] for r in hf.values())
            row["speedup_vs_fastest_hf"] = fastest_hf / rc["seconds"]
            rows.append(row)
            print(f"threads={threads}: {rc['tokens']} tokens; rewardc {row['rewardc_tokens_per_s'] / 1e6:.2f} M tok/s"
                  + "".join(f"; HF {m} {row[f'hf_{m}_tokens_per_s'] / 1e6:.2f} M tok/s" for m in hf)
                  + f"; rewardc / fastest HF = {row['speedup_vs_fastest_hf']:.2f}x")
    result = {
        "benchmark": "encode the 25,000 IMDB train reviews (aclImdb_labeled_full.tar.gz train/pos+neg), add_special_tokens",
        "tokenizer": os.path.abspath(tokenizer),
        "command": " ".join([os.path.basename(sys.executable), "tools/bench_tokenizer.py"] + sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": rows,
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    summary = ", ".join(f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}: {r['speedup_vs_fastest_hf']:.2f}x"
                        for r in rows)
    print(f"SUMMARY rewardc vs HF tokenizers (fastest of encode_batch/encode_batch_fast), same ids: {summary}; "
          f"details in {args.json}")


if __name__ == "__main__":
    main()
