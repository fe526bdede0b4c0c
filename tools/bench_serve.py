#!/usr/bin/env python3
"""Load benchmark of `rewardc serve` against its Python peer (tools/serve_peer_fastapi.py:
transformers behind FastAPI/uvicorn), on the same model folder and thread count.

Each request is one chatbot call: POST /v1/score with one real HH-RLHF response
({"prompt": dialogue up to the last "Assistant:", "response": the last turn}), taken in
turn from --pairs dialogues of harmless_base_dev.jsonl.gz (chosen and rejected). wrk
(Debian's package) drives each server through tools/bench_serve.lua at each of
--connections for --duration seconds after a short warm-up, and reports requests/s,
texts/s (--texts-per-request K puts K responses in each request), p50/p90/p99 latency,
non-2xx responses and socket errors; peak RSS is the server process's VmHWM at the end
of all levels. Before the load, the two servers'
rewards for the first 16 texts must agree to 1e-3, else the run stops.

Both servers get OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep rather than spin,
which on a small machine would take the HTTP threads' cores).

Usage:
  python tools/bench_serve.py --model DIR [--threads 2] [--connections 1,8,64,256]
      [--duration 10] [--texts-per-request 1] [--sides rewardc,peer]
      [--rewardc-args "..."] [--out FILE.json]
"""
import argparse
import gzip
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("REWARDC_DATA", os.path.join(ROOT, "..", "shared", "data"))


def split_dialogue(text):
    cut = text.rfind("\n\nAssistant:")
    return {"prompt": text[:cut + len("\n\nAssistant:")], "response": text[cut + len("\n\nAssistant:"):]}


def make_bodies(path, pairs, per_request=1, seed=0):
    lines = gzip.open(os.path.join(DATA, "hh-rlhf", "harmless_base_dev.jsonl.gz"), "rt").read().splitlines()
    random.Random(seed).shuffle(lines)
    texts = []
    for line in lines[:pairs]:
        pair = json.loads(line)
        for key in ("chosen", "rejected"):
            item = split_dialogue(pair[key])
            if item["response"].strip():
                texts.append(item)
    with open(path, "w") as out:
        for i in range(0, len(texts) - per_request + 1, per_request):
            out.write(json.dumps({"input": texts[i:i + per_request]}) + "\n")
    return texts


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_healthy(port, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before it was healthy")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("server not healthy in time")


def score(port, texts):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/v1/score", json.dumps({"input": texts}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    if resp.status != 200:
        sys.exit(f"score check: {resp.status} {body}")
    return [d["reward"] for d in body["data"]]


def parse_duration(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(port, bodies, connections, duration):
    threads = min(2, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
           "--timeout", "30s", "-s", os.path.join(ROOT, "tools", "bench_serve.lua"),
           f"http://127.0.0.1:{port}", "--", bodies]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result = {"connections": connections, "command": " ".join(cmd)}
    result["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = parse_duration(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m.group(1))
    return result


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def start(side, args, port):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if side == "rewardc":
        cmd = [args.rewardc, "serve", "--model", args.model, "--port", str(port),
               "--threads", str(args.threads)] + args.rewardc_args.split()
    else:
        cmd = [sys.executable, os.path.join(ROOT, "tools", "serve_peer_fastapi.py"), "--model",
               args.model, "--port", str(port), "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_healthy(port, proc)
    return proc, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rewardc", default=os.path.join(ROOT, "build", "rewardc"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", default="1,8,64,256")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--texts-per-request", type=int, default=1,
                    help="texts in each request's input (1: the chatbot's call)")
    ap.add_argument("--sides", default="rewardc,peer")
    ap.add_argument("--rewardc-args", default="", help="extra rewardc serve options")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk (apt-get install wrk)")
    os.makedirs("/tmp/rewardc-bench-serve", exist_ok=True)
    bodies = "/tmp/rewardc-bench-serve/bodies.jsonl"
    texts = make_bodies(bodies, args.pairs, args.texts_per_request)
    levels = [int(c) for c in args.connections.split(",")]
    report = {"model": args.model, "threads": args.threads, "texts": len(texts),
              "texts_per_request": args.texts_per_request, "sides": {}}
    rewards = {}
    for side in args.sides.split(","):
        port = free_port()
        proc, command = start(side, args, port)
        try:
            rewards[side] = score(port, texts[:16])
            runs = []
            for c in levels:
                run_wrk(port, bodies, c, args.warmup)
                r = run_wrk(port, bodies, c, args.duration)
                r["texts_per_s"] = r["requests_per_s"] * args.texts_per_request
                runs.append(r)
                print(f"{side:8s} c={c:<4d} {r['requests_per_s']:9.1f} req/s {r['texts_per_s']:9.1f} texts/s  p50 {r['p50_ms']:8.2f} ms"
                      f"  p90 {r['p90_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms  non-2xx {r['non_2xx']}"
                      f"  socket errors {r['socket_errors']}", flush=True)
            report["sides"][side] = {"command": command, "runs": runs, "peak_rss_mb": peak_rss_mb(proc.pid)}
            print(f"{side:8s} peak RSS {report['sides'][side]['peak_rss_mb']:.0f} MB", flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # still working through a backlog
                proc.kill()
                proc.wait()
    if len(rewards) == 2:
        a, b = rewards.values()
        worst = max(abs(x - y) for x, y in zip(a, b))
        report["max_reward_difference"] = worst
        print(f"rewards of the first 16 texts agree to {worst:.2e}")
        if worst > 1e-3:
            sys.exit("the two servers' rewards differ by more than 1e-3")
        for rc, peer in zip(report["sides"]["rewardc"]["runs"], report["sides"]["peer"]["runs"]):
            if not peer["requests_per_s"] or not peer["p99_ms"]:
                print(f"c={rc['connections']:<4d} the peer answered nothing within the run")
                continue
            print(f"c={rc['connections']:<4d} throughput {rc['requests_per_s'] / peer['requests_per_s']:.2f}x,"
                  f" p99 {rc['p99_ms'] / peer['p99_ms']:.2f}x of the peer's")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
