#!/usr/bin/env python3
"""Clients for tests/cli_serve.sh (Python's standard library only).

  serve_client.py load PORT TEXTS OUT [--threads N] [--rounds R] [--per-request K]
                    [--until FILE]
      N threads, each on one keep-alive connection, post R requests of K texts
      (lines of TEXTS, cycled) to /v1/score; OUT gets one JSON line per text:
      {"text", "status", "reward", "model_version"}. With --until, each thread
      goes on until FILE exists or it is refused (the server stopping).
  serve_client.py check-classify PORT
      /classify's response has vLLM's shape and probs = sigmoid(/v1/score's reward).
  serve_client.py disconnect PORT
      clients that hang up mid-body, mid-request and before reading the answer.
"""
import http.client
import json
import math
import os
import socket
import sys
import threading


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


def load(port, texts_path, out_path, threads=8, rounds=10, per_request=1, until=None):
    texts = [line.rstrip("\n") for line in open(texts_path) if line.strip()]
    results, lock = [], threading.Lock()

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        r = 0
        while (r < rounds) if until is None else not os.path.exists(until):
            r += 1
            batch = [texts[(k * rounds + r + j) % len(texts)] for j in range(per_request)]
            try:
                status, body = post(conn, "/v1/score", {"input": [{"text": t} for t in batch]})
            except (OSError, http.client.HTTPException) as e:
                status, body = -1, {"error": str(e)}
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                for j, t in enumerate(batch):
                    ok = status == 200
                    results.append({"text": t, "status": status,
                                    "reward": body["data"][j]["reward"] if ok else None,
                                    "model_version": body["model_version"] if ok else None})
            if until is not None and status != 200:
                return

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    with open(out_path, "w") as out:
        for r in results:
            out.write(json.dumps(r) + "\n")


def check_classify(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    texts = ["a kind and helpful answer", "a rude answer"]
    status, body = post(conn, "/classify", {"model": "m", "input": texts})
    assert status == 200, (status, body)
    for key in ("id", "object", "created", "model", "data", "usage"):
        assert key in body, key
    assert body["object"] == "list" and body["id"].startswith("classify-")
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    status, scored = post(conn, "/v1/score", {"input": texts})
    assert status == 200
    for i, item in enumerate(body["data"]):
        assert item["index"] == i and item["num_classes"] == 1 and len(item["probs"]) == 1
        assert isinstance(item["label"], str)
        expected = 1 / (1 + math.exp(-scored["data"][i]["reward"]))
        assert abs(item["probs"][0] - expected) < 1e-6, (item, expected)
    status, one = post(conn, "/classify", {"input": texts[0]})  # a single string
    assert status == 200 and len(one["data"]) == 1
    status, bad = post(conn, "/classify", {"input": [[1, 2, 3]]})
    assert status == 400 and bad["error"]["param"] == "input[0]", bad
    print("classify: ok")


def disconnect(port):
    def raw(data, read=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(data)
        if read:
            s.recv(1)
        s.close()
    body = json.dumps({"input": [{"text": "hello there"}] * 4}).encode()
    head = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    for _ in range(20):
        # hangs up with half the body sent
        raw(head + b"Content-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
        # hangs up mid-headers
        raw(b"POST /v1/score HTTP/1.1\r\nHost")
        # sends a whole request and leaves before the answer
        raw(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    print("disconnect: ok")


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "load":
        opts = dict(zip(sys.argv[5::2], sys.argv[6::2]))
        load(port, sys.argv[3], sys.argv[4], int(opts.get("--threads", 8)),
             int(opts.get("--rounds", 10)), int(opts.get("--per-request", 1)), opts.get("--until"))
    elif cmd == "check-classify":
        check_classify(port)
    elif cmd == "disconnect":
        disconnect(port)
    else:
        sys.exit(f"unknown command {cmd}")
