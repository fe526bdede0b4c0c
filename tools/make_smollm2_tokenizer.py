#!/usr/bin/env python3
"""Writes the SmolLM2 tokenizer folder (tokenizer.json + tokenizer_config.json) built
from the shared GGUF file, as tools/gen_golden_tokenizer.py --families makes it, for
tests/test_tokenizer_families.c to load (REWARDC_SMOLLM2_TOKENIZER=DIR). The folder
comes from the model file: never commit it.

usage: python3 tools/make_smollm2_tokenizer.py DIR [--data ../shared/data]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_golden_tokenizer import smollm2_tokenizer_dir  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if smollm2_tokenizer_dir(os.path.abspath(args.data), args.dir) is None:
        sys.exit("the SmolLM2 GGUF file is not in " + args.data)
    print("wrote", args.dir, file=sys.stderr)


if __name__ == "__main__":
    main()
