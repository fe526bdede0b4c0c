#!/usr/bin/env python3
"""The peer of `rewardc serve` for tools/bench_serve.py: what a Python team writes to
serve a reward model, transformers behind FastAPI on uvicorn.

The same model folder (AutoModelForSequenceClassification, float32, eval mode), the same
encoding as rewardc's policy (tokenizer(prompt + response) + EOS when the folder says
append_eos, cut to max_length keeping the end), torch.set_num_threads(--threads), and the
same /v1/score request and response shape. Each request is one padded batch under
torch.inference_mode, run in FastAPI's thread pool (a plain `def` endpoint): no batching
across requests, which is what such a service does unless someone writes it.

  python tools/serve_peer_fastapi.py --model DIR --port 8081 --threads 2
"""
import argparse
import json
import os

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer


class Text(BaseModel):
    prompt: str = ""
    response: str | None = None
    text: str | None = None


class ScoreRequest(BaseModel):
    input: list[Text]


def build_app(model_dir, threads):
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
    config = json.load(open(os.path.join(model_dir, "config.json")))
    policy = config.get("rewardc", {}).get("encode_policy", {})
    max_length = policy.get("max_length", 512)
    append_eos = policy.get("append_eos", True)
    pad = model.config.pad_token_id
    app = FastAPI()

    def encode(item):
        whole = item.prompt + (item.response if item.response is not None else item.text or "")
        ids = tokenizer(whole)["input_ids"] + ([tokenizer.eos_token_id] if append_eos else [])
        return ids[-max_length:]

    @app.post("/v1/score")
    def score(request: ScoreRequest):
        if not request.input:
            raise HTTPException(status_code=400, detail="input: must not be empty")
        seqs = [encode(item) for item in request.input]
        T = max(len(s) for s in seqs)
        ids = torch.tensor([s + [pad] * (T - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s in seqs])
        with torch.inference_mode():
            rewards = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
        return {"model": os.path.basename(model_dir.rstrip("/")),
                "data": [{"index": i, "reward": r} for i, r in enumerate(rewards)],
                "usage": {"prompt_tokens": sum(map(len, seqs)), "total_tokens": sum(map(len, seqs))}}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    uvicorn.run(build_app(args.model, args.threads), host=args.host, port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
