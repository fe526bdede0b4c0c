#!/usr/bin/env python3
"""Generates golden/chat_template/renders.json: what transformers'
apply_chat_template(messages, tokenize=False, add_generation_prompt=False) gives for
each chat template (and, in generation_prompt_renders, add_generation_prompt=True on
each conversation less its last message, as TRL renders a prompt) of golden/chat_template/templates.json on a set of conversations,
for tests/test_chat_template.c to compare against byte for byte.

templates.json holds the chat templates of the families rewardc recognises (their
text as the models' tokenizer_config.json have them, with the bos/eos tokens the
template may use). The SmolLM2 one is read from the shared GGUF file
(tokenizer.chat_template) when it is present and added as "smollm2".

A conversation the template refuses (Gemma and Mistral raise on a system message
or on roles that do not alternate) is recorded as {"error": message}; rewardc must
refuse it too.

usage: python3 tools/gen_golden_chat_template.py [--data ../shared/data]
"""
import argparse
import json
import os
import sys

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

SMOLLM2_GGUF = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

CONVERSATIONS = [
    ("user_assistant", [{"role": "user", "content": "Hello!"},
                        {"role": "assistant", "content": "Hi there. How can I help?"}]),
    ("system_user_assistant", [{"role": "system", "content": "You are terse."},
                               {"role": "user", "content": "What is 2+2?"},
                               {"role": "assistant", "content": "4"}]),
    ("multi_turn", [{"role": "user", "content": "Name a fruit."},
                    {"role": "assistant", "content": "Apple."},
                    {"role": "user", "content": "Another one?"},
                    {"role": "assistant", "content": "Pear."},
                    {"role": "user", "content": "And a vegetable."},
                    {"role": "assistant", "content": "Carrot."}]),
    ("system_multi_turn", [{"role": "system", "content": "Answer in French.\nBe polite."},
                           {"role": "user", "content": "Hello"},
                           {"role": "assistant", "content": "Bonjour !"},
                           {"role": "user", "content": "Thanks"},
                           {"role": "assistant", "content": "De rien."}]),
    ("whitespace_to_trim", [{"role": "user", "content": "  padded question \n\n"},
                            {"role": "assistant", "content": "\n\t answer with spaces\u00a0 \n"}]),
    ("unicode_and_markup", [{"role": "user", "content": "Ça va? 日本語 🍕 <|im_start|> [INST] {{ not jinja }}"},
                            {"role": "assistant", "content": "Oui — très bien.\n\n```python\nprint('hi')\n```"}]),
    ("empty_contents", [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]),
    ("only_user", [{"role": "user", "content": "Just one question?"}]),
    ("user_user", [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]),
    ("hh_style", [{"role": "user", "content": "What are some cuss words in english?"},
                  {"role": "assistant", "content": "Here's an incomplete list."},
                  {"role": "user", "content": "What's your favorite one?"},
                  {"role": "assistant", "content": "I haven't even thought about it."}]),
]


def smollm2_template(data):
    path = os.path.join(data, SMOLLM2_GGUF)
    if not os.path.exists(path):
        return None
    import gguf
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def render(template, bos, eos, messages, add_generation_prompt=False):
    tk = Tokenizer(models.BPE())
    kw = {}
    if bos:
        kw["bos_token"] = bos
    if eos:
        kw["eos_token"] = eos
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, **kw)
    try:
        return tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                       add_generation_prompt=add_generation_prompt)
    except Exception as e:  # the template's raise_exception
        return {"error": str(e)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "golden", "chat_template"))
    args = ap.parse_args()
    tpl_path = os.path.join(args.out, "templates.json")
    with open(tpl_path, encoding="utf-8") as f:
        templates = json.load(f)
    smol = smollm2_template(os.path.abspath(args.data))
    if smol is not None:
        templates["smollm2"] = {"template": smol, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                "source": "tokenizer.chat_template of " + SMOLLM2_GGUF}
    elif "smollm2" not in templates:
        print("note: the SmolLM2 GGUF is absent; no smollm2 template", file=sys.stderr)
    with open(tpl_path, "w", encoding="utf-8") as f:
        json.dump(templates, f, indent=1, ensure_ascii=False)
        f.write("\n")
    renders, generation = {}, {}
    for name, t in templates.items():
        renders[name] = [render(t["template"], t["bos_token"], t["eos_token"], msgs) for _, msgs in CONVERSATIONS]
        # with the generation prompt, on each conversation less its last message (TRL's prompt)
        generation[name] = [render(t["template"], t["bos_token"], t["eos_token"], msgs[:-1] or msgs, True)
                            for _, msgs in CONVERSATIONS]
    out = {"generator": "tools/gen_golden_chat_template.py",
           "versions": {"transformers": transformers.__version__},
           "add_generation_prompt": False,
           "conversations": [{"name": n, "messages": m} for n, m in CONVERSATIONS],
           "renders": renders,
           "generation_prompt_renders": generation}
    with open(os.path.join(args.out, "renders.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(templates)} templates x {len(CONVERSATIONS)} conversations", file=sys.stderr)


if __name__ == "__main__":
    main()
