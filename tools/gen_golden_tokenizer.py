#!/usr/bin/env python3
"""Generates golden/tokenizer/: the token ids Hugging Face gives, for the C test
tests/test_tokenizer_golden.c to compare against bit for bit.

What it writes (all small text files; see MANIFEST.json for sizes and sums):
  edge_cases.json        hand-written edge cases: the UTF-8 bytes of each text (hex;
                         some are deliberately invalid UTF-8, which HF sees through
                         bytes.decode("utf-8", "replace")), the ids of every tokenizer
                         below, and what HF's decode() returns for them (hex; null
                         when equal to the text, resp. to decode() for skip_special)
  decode_prefixes.json   decode() of every prefix of a few multi-byte texts (partial
                         characters come out as U+FFFD)
  batch.json             padded batches (input_ids + attention_mask) for several
                         padding/truncation settings
  imdb_subset_train.tsv  the 5,000 train reviews of aclImdb_subset.tar.gz: per file the
                         id count and FNV-1a-64 hash of the ids, for GPT-2 and OPT
  imdb_ids_{gpt2,opt}.tsv full ids of the 300 shortest of those reviews
  unicode_sweep.tsv      count + hash of texts that put every code point (no
                         surrogates) between letters, digits, punctuation and spaces
  tiny_prefix_space/, tiny_split_regex/  two small byte-level BPE tokenizer.json
                         folders trained here with `tokenizers`, to cover the
                         tokenizer.json loader: ByteLevel(add_prefix_space) with
                         TemplateProcessing BOS+EOS and lstrip/rstrip added tokens; and
                         a Llama-3-style Split regex with ignore_merges
  MANIFEST.json          versions, inputs (sha256), outputs (sha256, bytes)

FNV-1a-64 of a list of ids: h = 0xcbf29ce484222325; for each id, for each of its 4
bytes as little-endian int32: h ^= byte; h *= 0x100000001b3 (mod 2^64).

The reference is what AutoTokenizer gives (GPT2TokenizerFast for the shared folders;
transformers==4.46.3, tokenizers==0.20.3, pinned in tools/requirements.txt).

With --families it writes golden/tokenizer/families/ instead (nothing else):
  tiny_*/                small tokenizer.json folders, one per pre-tokenizer kind of
                         the model families rewardc loads: smollm (Sequence[Digits
                         individual, ByteLevel]), llama-bpe (Llama-3: Split(regex,
                         Isolated) + ByteLevel(use_regex false), BOS by the
                         post-processor), qwen2 (Qwen2's Split regex + ByteLevel),
                         contiguous digits, and one exercising every Split behavior,
                         invert, ByteLevel add_prefix_space after splits and
                         single_word/lstrip/rstrip added tokens
  families.json          per case (edge cases above + digit, whitespace, newline,
                         special-token and single_word cases) the ids of each tiny
                         tokenizer and, when the model file is present, of SmolLM2
  samples.tsv            count + FNV-1a-64 of the ids of 200 IMDB reviews and 200
                         HH-RLHF dialogues for each tokenizer
  MANIFEST.json          versions, outputs
The SmolLM2 tokenizer is built from ../shared/data/models/smollm2-135m-instruct/*.gguf
into a temporary folder (see smollm2_tokenizer_dir; never committed): transformers
reads the vocabulary, merges and added tokens from the GGUF, and the pre-tokenizer,
post-processor and decoder are set to the published SmolLM2 tokenizer's (GGUF
tokenizer.ggml.pre "smollm": Digits(individual_digits) then ByteLevel; no BOS added),
which transformers' GGUF conversion does not reproduce. tools/make_smollm2_tokenizer.py
writes the same folder for the C test (REWARDC_SMOLLM2_TOKENIZER).

usage: python3 tools/gen_golden_tokenizer.py [--data ../shared/data] [--out golden/tokenizer]
       python3 tools/gen_golden_tokenizer.py --families [--data ../shared/data]
       python3 tools/gen_golden_tokenizer.py --show train/pos/1000_8.txt   (ids of one review)
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import tarfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1
N_FULL_IDS = 300
SWEEP_BLOCK = 1024  # HF slows down more than linearly on longer texts


def fnv1a_ids(ids):
    h = FNV_OFFSET
    for i in ids:
        for b in int(i & 0xFFFFFFFF).to_bytes(4, "little"):
            h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def edge_cases():
    """(name, raw bytes). Strings are UTF-8 encoded; a few are invalid UTF-8 on purpose."""
    cases = [
        ("empty", ""),
        ("hello", "Hello"),
        ("opt_reference", "Hello, I'm am conscious and"),
        ("contractions", "I'm don't you're we've he'll she'd it's they're"),
        ("contractions_upper", "I'M DON'T YOU'RE WE'VE HE'LL SHE'D IT'S 'S 'T 'Re"),
        ("contractions_edge", "''s 's's rock'n'roll ' s ''"),
        ("numbers", "1 12 123 1234 3.14159 -42 1,000,000 2024-01-01 0x1F 1e-9 ½ ² ٣ ३"),
        ("whitespace_runs", "a  b   c    d     e"),
        ("tabs_newlines", "a\tb\t\tc\nd\n\ne\r\nf\rg\x0bh\x0ci"),
        ("crlf_block", "line one\r\nline two\r\n\r\nline four\r\n"),
        ("trailing_spaces", "trailing   "),
        ("leading_spaces", "   leading"),
        ("only_spaces", "     "),
        ("only_newlines", "\n\n\n"),
        ("space_newline_mix", " \n \n  \n\t \t"),
        ("accents", "café naïve résumé Ångström São Paulo Zürich"),
        ("combining_marks", "cafe\u0301 n\u0303 a\u0300\u0301\u0302 e\u0308\u0304"),
        ("cjk", "你好，世界！日本語のテキスト。한국어 텍스트"),
        ("arabic", "مرحبا بالعالم، هذا نص عربي."),
        ("devanagari", "नमस्ते दुनिया, यह हिंदी पाठ है।"),
        ("emoji", "I love 🍕 and 🎉!"),
        ("emoji_zwj", "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 flag"),
        ("emoji_skin_tones", "👍🏻 👍🏽 👍🏿 👋🏼"),
        ("long_word", "a" * 800),
        ("long_mixed_word", "Supercalifragilisticexpialidocious" * 8),
        ("long_digits", "9" * 200),
        ("long_punct", "!?" * 100),
        ("long_spaces", " " * 200 + "x" + "\n" * 100 + "y\t \t"),
        ("long_cjk", "漢字" * 40),
        ("html", "Great movie.<br /><br />Loved it. <i>Really</i> &amp; <b>truly</b>."),
        ("special_eot", "a<|endoftext|>b <|endoftext|> c"),
        ("special_s", "x</s>y </s> z</s>"),
        ("special_pad", "x<pad>y <pad>"),
        ("special_bos_unk", "<s>hi<unk> </s><s>"),
        ("special_adjacent", "</s></s><pad><|endoftext|><|endoftext|>"),
        ("special_partial", "</s <pad <|endoftext| </ s>"),
        ("special_im_start_mask", "<|im_start|>user [MASK] x  [MASK]  y<|im_start|>"),
        ("added_nonascii", "price é€ 12 é€é€"),
        ("replacement_char", "bad \ufffd char \ufffd\ufffd"),
        ("nul_and_controls", "a\x00b\x01c\x1bd\x7fe"),
        ("unicode_spaces", "a\u00a0b\u2009c\u3000d\u0085e\u2028f\u200bg\u180eh\u1680i"),
        ("unicode_space_runs", "x\u00a0\u00a0y \u2003 z\u3000\u3000"),
        ("math_symbols", "∑∫√∞≠≤≥ ±×÷ → ⇒ ∀x∈ℝ"),
        ("mixed_scripts", "Hello世界مرحباनमस्ते123abc"),
        ("quotes", "\u201cSmart quotes\u201d and \u2018single\u2019 and \"dumb\" 'ones'"),
        ("apostrophe_unicode", "don\u2019t it\u2019s"),
        ("urls", "See https://example.com/path?q=1&x=%20y#frag or mail@example.org"),
        ("code", "def f(x):\n    return x**2  # square\n\tif a==b: pass"),
        ("repeated_punct", "Wow!!!!!! Really???? ....... ------"),
        ("single_chars", "a"),
        ("single_space", " "),
        ("surrogate_range_max", "\U0010FFFF\U0001F600\uFFFF\uFEFF"),
    ]
    out = [(name, text.encode("utf-8")) for name, text in cases]
    out += [
        ("invalid_lone_continuation", b"ab\x80cd"),
        ("invalid_truncated_3byte", b"x\xe2\x82 y"),
        ("invalid_overlong", b"\xc0\xaf and \xe0\x80\xaf"),
        ("invalid_surrogate_bytes", b"s\xed\xa0\x80t"),
        ("invalid_ff_fe", b"\xff\xfe text \xfe"),
        ("invalid_truncated_end", b"end \xf0\x9f\x98"),
        ("invalid_too_large", b"\xf4\x90\x80\x80 \xf5\x80"),
        ("invalid_mixed", b"caf\xe9 na\xefve \xc3\xa9t\xc3"),
    ]
    return out


def sweep_texts():
    """Every code point except surrogates, SWEEP_BLOCK per text, each in contexts
    that exercise the regex classes (letters, digits, punctuation, spaces)."""
    texts = []
    for start in range(0, 0x110000, SWEEP_BLOCK):
        parts = []
        for cp in range(start, start + SWEEP_BLOCK):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            parts.append(f"{c}x{c}{c} {c}1{c}! {c}\n")
        texts.append((start, "".join(parts)))
    return texts


def train_tiny(texts, folder, kind):
    """Trains a small byte-level BPE with `tokenizers` and saves it as a transformers folder."""
    if kind == "prefix_space":
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    else:
        tk = Tokenizer(models.BPE())
        llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(llama3), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<s>", "<pad>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(texts, trainer)
    bos, eos = tk.token_to_id("<s>"), tk.token_to_id("</s>")
    if kind == "prefix_space":
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
        tk.add_special_tokens([AddedToken("<|im_start|>", normalized=False)])
        tk.add_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True), AddedToken("é€", normalized=True)])
    else:
        tk.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                          special_tokens=[("<s>", bos)]),
        ])
        tk.add_special_tokens([AddedToken("<|im_start|>", normalized=False, lstrip=True)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(folder)
    path = os.path.join(folder, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    if kind == "prefix_space":
        # the legacy "left right" merge strings, so the loader sees both formats
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    else:
        j["model"]["ignore_merges"] = True
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    for name in os.listdir(folder):
        if name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            os.remove(os.path.join(folder, name))
    return AutoTokenizer.from_pretrained(folder)


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def family_pre_tokenizer(kind):
    """The pre-tokenizer (and BOS/EOS post-processing, added tokens) of each family kind."""
    P = pre_tokenizers
    if kind == "smollm":
        return P.Sequence([P.Digits(individual_digits=True),
                           P.ByteLevel(add_prefix_space=False, use_regex=True)])
    if kind == "llama_bpe":
        return P.Sequence([P.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
                           P.ByteLevel(add_prefix_space=False, use_regex=False)])
    if kind == "qwen2":
        return P.Sequence([P.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
                           P.ByteLevel(add_prefix_space=False, use_regex=False)])
    if kind == "digits_contiguous":
        return P.Sequence([P.Digits(individual_digits=False),
                           P.ByteLevel(add_prefix_space=True, use_regex=True)])
    if kind == "split_behaviors":
        return P.Sequence([
            P.Split(" ", behavior="merged_with_previous"),
            P.Sequence([P.Split(Regex(r"[.,!?]"), behavior="merged_with_next"),
                        P.Split(Regex(r"[aeiou]+"), behavior="contiguous", invert=True)]),
            P.ByteLevel(add_prefix_space=True, use_regex=False)])
    if kind == "split_removed_invert":
        return P.Sequence([
            P.Split(Regex(r"x*"), behavior="merged_with_previous"),  # empty matches everywhere
            P.Split(Regex(r"\p{L}+|\p{N}+"), behavior="removed", invert=True),
            P.Split(Regex(r"-"), behavior="removed"),
            P.ByteLevel(add_prefix_space=False, use_regex=True)])
    raise ValueError(kind)


FAMILY_KINDS = ["smollm", "llama_bpe", "qwen2", "digits_contiguous", "split_behaviors", "split_removed_invert"]


def train_family(texts, folder, kind):
    """A small byte-level BPE of one family kind, saved as a transformers folder."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = family_pre_tokenizer(kind)
    tk.decoder = decoders.ByteLevel()
    specials = {"llama_bpe": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                              "<|end_header_id|>"]}.get(kind, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer)
    if kind == "llama_bpe":
        bos = tk.token_to_id("<|begin_of_text|>")
        tk.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                          special_tokens=[("<|begin_of_text|>", bos)])])
        kw = dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    else:
        tk.post_processor = processors.ByteLevel(trim_offsets=False)
        kw = dict(bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    if kind in ("split_behaviors", "split_removed_invert", "qwen2"):
        tk.add_tokens([AddedToken("[W]", single_word=True), AddedToken("ab", single_word=True, normalized=False),
                       AddedToken("<sep>", lstrip=True, rstrip=True, normalized=False),
                       AddedToken("café", single_word=True)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, **kw)
    fast.save_pretrained(folder)
    for name in os.listdir(folder):
        if name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            os.remove(os.path.join(folder, name))
    return AutoTokenizer.from_pretrained(folder)


def smollm2_tokenizer_dir(data, folder):
    """Builds the SmolLM2 tokenizer folder from the GGUF (see the module doc); None without the file."""
    gguf_dir = os.path.join(data, "models", "smollm2-135m-instruct")
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not os.path.exists(os.path.join(gguf_dir, name)):
        return None
    import gguf
    reader = gguf.GGUFReader(os.path.join(gguf_dir, name))

    def field(key):
        f = reader.fields[key]
        v = f.parts[f.data[0]]
        return bytes(v).decode("utf-8") if f.types[0] == gguf.GGUFValueType.STRING else int(v[0])

    assert field("tokenizer.ggml.pre") == "smollm", field("tokenizer.ggml.pre")
    converted = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
    converted.save_pretrained(folder)
    path = os.path.join(folder, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    j["model"]["byte_fallback"] = False
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    ids = {k: field("tokenizer.ggml." + k + "_token_id") for k in ("bos", "eos", "unknown", "padding")}
    vocab = j["model"]["vocab"]
    by_id = {v: k for k, v in vocab.items()}
    for t in j["added_tokens"]:
        by_id[t["id"]] = t["content"]
    config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False,
              "bos_token": by_id[ids["bos"]], "eos_token": by_id[ids["eos"]],
              "unk_token": by_id[ids["unknown"]], "pad_token": by_id[ids["padding"]],
              "model_max_length": 8192, "clean_up_tokenization_spaces": False,
              "chat_template": field("tokenizer.chat_template")}
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    for extra in ("special_tokens_map.json",):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(tok).__name__ == "GPT2TokenizerFast", type(tok)
    return tok


def family_cases():
    """Edge cases of the pre-tokenizer kinds, on top of edge_cases()."""
    cases = [
        ("digit_runs", "1 22 333 4444 55555 666666 1234567890 3.14159 1,000,000 0x1F 2024-01-01"),
        ("digits_in_words", "abc123def 4x4 h2o R2D2 a1b2c3 ½ ² ³ ٣٤٥ ३४ Ⅻ ①②"),
        ("digits_and_spaces", "  12  34\n56\t78 9 "),
        ("whitespace_mix", "a \t b\n\n\nc   \r\n d\u00a0\u00a0e\u3000f"),
        ("newline_runs", "\n\n\nx\n \n  \n\n\ty\r\n\r\n"),
        ("punct_runs", "Wow!!! ...really?! (yes), [no]; {maybe}: 'quoted' \"dq\" --- ___"),
        ("contractions_mixed_case", "I'M you'Re they'LL it'S don'T 'S's"),
        ("chatml_text", "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"),
        ("llama3_text", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
        ("specials_adjacent", "<|im_end|><|im_start|><|endoftext|> <|im_end|>x<|im_start|>"),
        ("single_word_tokens", "[W] x[W] [W]x ([W]) ab abc cab ab_ ab. -ab- café cafés écafé café!"),
        ("single_word_unicode", "éab ab\u00e9 日ab ab日 ab\u0301 1ab ab2 _ab"),
        ("lstrip_rstrip_sep", "a <sep> b  <sep>  c<sep>d \n<sep>\n e"),
        ("behaviors_text", "Hello, world! This is a test. Aeiou queue... oh? x-y-z 12-34 xx xxx"),
        ("leading_space_variants", " leading one", ),
        ("hh_style", "\n\nHuman: What is 2+2?\n\nAssistant: It is 4.\n\nHuman: thanks\n\nAssistant:"),
    ]
    return [(name, text.encode("utf-8")) for name, text in cases]


def families_main(data, out):
    os.makedirs(out, exist_ok=True)
    imdb = read_imdb_train(os.path.join(data, "imdb", "aclImdb_subset.tar.gz"))
    import gzip
    with gzip.open(os.path.join(data, "hh-rlhf", "harmless_base_dev.jsonl.gz"), "rt", encoding="utf-8") as f:
        hh = [json.loads(line) for line in f]
    train_texts = list(imdb.values())[:300] + [r["chosen"] for r in hh[:100]]
    toks = {}
    for kind in FAMILY_KINDS:
        toks["tiny_" + kind] = train_family(train_texts, os.path.join(out, "tiny_" + kind), kind)
    import tempfile
    tmp = tempfile.mkdtemp(prefix="smollm2_tokenizer_")
    smol = smollm2_tokenizer_dir(data, tmp)
    if smol is not None:
        toks["smollm2"] = smol
    else:
        print("note: the SmolLM2 GGUF is absent; no smollm2 goldens", file=sys.stderr)
    cases = []
    for name, raw in edge_cases() + family_cases():
        text = raw.decode("utf-8", errors="replace")
        cases.append({"name": name, "hex": raw.hex(),
                      "ids": {tname: t(text)["input_ids"] for tname, t in toks.items()}})
    meta = {tname: {"vocab_size": len(t),
                    "bos_id": t.bos_token_id if t.bos_token_id is not None else -1,
                    "eos_id": t.eos_token_id if t.eos_token_id is not None else -1,
                    "pad_id": t.pad_token_id if t.pad_token_id is not None else -1} for tname, t in toks.items()}
    write_json(os.path.join(out, "families.json"), {"tokenizers": meta, "cases": cases})
    # samples: IMDB reviews past the training texts and HH-RLHF dialogues (chosen and rejected)
    imdb_names = list(imdb.keys())[1000:1100] + list(imdb.keys())[4000:4100]
    samples = [("imdb:" + n, imdb[n]) for n in imdb_names]
    samples += [(f"hh:{i}:{side}", hh[i][side]) for i in range(200, 300) for side in ("chosen", "rejected")][:200]
    names = list(toks)
    with open(os.path.join(out, "samples.tsv"), "w", encoding="utf-8") as f:
        f.write("# sample (imdb:file under aclImdb_subset/ | hh:line index in harmless_base_dev:side)")
        for tname in names:
            f.write(f"\t{tname}_count\t{tname}_fnv1a64")
        f.write("\n")
        encs = {tname: toks[tname]([t for _, t in samples])["input_ids"] for tname in names}
        for k, (sname, _) in enumerate(samples):
            f.write(sname)
            for tname in names:
                ids = encs[tname][k]
                f.write(f"\t{len(ids)}\t{fnv1a_ids(ids):016x}")
            f.write("\n")
    files = []
    for root, _, fnames in os.walk(out):
        for fname in sorted(fnames):
            path = os.path.join(root, fname)
            rel = os.path.relpath(path, out)
            if rel != "MANIFEST.json":
                files.append({"path": rel, "sha256": sha256_file(path), "bytes": os.path.getsize(path)})
    files.sort(key=lambda e: e["path"])
    manifest = {"description": "Token ids from Hugging Face for tests/test_tokenizer_families.c",
                "command": "python3 tools/gen_golden_tokenizer.py --families --data ../shared/data",
                "tokenizers": names,
                "versions": {"python": platform.python_version(), "transformers": transformers.__version__,
                             "tokenizers": tokenizers.__version__},
                "files": files}
    with open(os.path.join(out, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {len(files)} files to {out} for {names}", file=sys.stderr)


def read_imdb_train(archive):
    """{name relative to aclImdb_subset/: text} for train/pos and train/neg."""
    out = {}
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[1] == "train" and parts[2] in ("pos", "neg") \
                    and parts[3].endswith(".txt"):
                out["/".join(parts[1:])] = tar.extractfile(m).read().decode("utf-8")
    return dict(sorted(out.items()))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "golden", "tokenizer"))
    ap.add_argument("--families", action="store_true", help="write golden/tokenizer/families/ only")
    ap.add_argument("--show", help="print the GPT-2 and OPT ids of one review (e.g. train/pos/1000_8.txt) and exit")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    out = os.path.abspath(args.out)
    if args.families:
        families_main(data, os.path.join(out, "families"))
        return
    tok_dirs = {name: os.path.join(data, "tokenizers", name) for name in ("gpt2", "opt")}
    archive = os.path.join(data, "imdb", "aclImdb_subset.tar.gz")
    toks = {name: AutoTokenizer.from_pretrained(d) for name, d in tok_dirs.items()}
    for name, t in toks.items():
        assert type(t).__name__ == "GPT2TokenizerFast", (name, type(t))
    assert toks["opt"]("Hello, I'm am conscious and")["input_ids"] == [2, 31414, 6, 38, 437, 524, 13316, 8]
    assert toks["gpt2"]("Hello")["input_ids"] == [15496]

    imdb = read_imdb_train(archive)
    if args.show:
        text = imdb[args.show]
        print(json.dumps(text))
        for name, t in toks.items():
            print(name, t(text)["input_ids"])
        return
    assert len(imdb) == 5000, len(imdb)
    os.makedirs(out, exist_ok=True)

    # tiny tokenizer.json folders, trained on the first 300 reviews (train/neg in name order)
    train_texts = list(imdb.values())[:300]
    toks["tiny_prefix_space"] = train_tiny(train_texts, os.path.join(out, "tiny_prefix_space"), "prefix_space")
    toks["tiny_split_regex"] = train_tiny(train_texts, os.path.join(out, "tiny_split_regex"), "split_regex")

    # edge cases
    cases = []
    for name, raw in edge_cases():
        text = raw.decode("utf-8", errors="replace")
        # decode outputs are stored as hex, or as null when they equal the input text
        # (decode) or the plain decode (decode_skip_special), to keep the file small
        entry = {"name": name, "hex": raw.hex(), "ids": {}, "decode": {}, "decode_skip_special": {}}
        for tname, t in toks.items():
            ids = t(text)["input_ids"]
            entry["ids"][tname] = ids
            full = t.decode(ids).encode("utf-8").hex()
            skip = t.decode(ids, skip_special_tokens=True).encode("utf-8").hex()
            entry["decode"][tname] = None if full == raw.hex() else full
            entry["decode_skip_special"][tname] = None if skip == full else skip
        cases.append(entry)
    meta = {}
    for tname, t in toks.items():
        meta[tname] = {
            "vocab_size": len(t),
            "bos_id": t.bos_token_id if t.bos_token_id is not None else -1,
            "eos_id": t.eos_token_id if t.eos_token_id is not None else -1,
            "pad_id": t.pad_token_id if t.pad_token_id is not None else -1,
        }
    write_json(os.path.join(out, "edge_cases.json"), {"tokenizers": meta, "cases": cases})

    # decode of every prefix of multi-byte texts
    prefixes = []
    for tname in ("gpt2", "opt"):
        t = toks[tname]
        for text in ("é€😀👨‍👩‍👧", "नमस्ते", "日本語"):
            ids = t(text, add_special_tokens=False)["input_ids"]
            for k in range(len(ids) + 1):
                prefixes.append({"tokenizer": tname, "ids": ids[:k],
                                 "text_hex": t.decode(ids[:k]).encode("utf-8").hex()})
    write_json(os.path.join(out, "decode_prefixes.json"), prefixes)

    # padded batches
    batch_texts = ["Hello, I'm am conscious and", "", "a</s>b", "short",
                   "A somewhat longer sentence, with punctuation; and numbers 12345.",
                   "Great movie.<br /><br />Loved it."]
    settings = [
        {"padding": True},
        {"padding": True, "padding_side": "left"},
        {"padding": "max_length", "truncation": True, "max_length": 8},
        {"padding": True, "truncation": True, "max_length": 5, "truncation_side": "left", "padding_side": "left"},
        {"padding": True, "truncation": True, "max_length": 2},
        {"padding": True, "add_special_tokens": False},
    ]
    batches = []
    for tname in ("opt", "tiny_prefix_space"):
        t = toks[tname]
        for s in settings:
            kw = dict(s)
            t.padding_side = kw.pop("padding_side", "right")
            t.truncation_side = kw.pop("truncation_side", "right")
            enc = t(batch_texts, **kw)
            batches.append({"tokenizer": tname, "settings": s, "input_ids": enc["input_ids"],
                            "attention_mask": enc["attention_mask"]})
        t.padding_side = "right"
        t.truncation_side = "right"
    write_json(os.path.join(out, "batch.json"), {"texts": batch_texts, "batches": batches})

    # IMDB subset train: count + hash per review, full ids for the shortest
    ids_by_tok = {}
    for tname in ("gpt2", "opt"):
        enc = toks[tname](list(imdb.values()))["input_ids"]
        ids_by_tok[tname] = dict(zip(imdb.keys(), enc))
    with open(os.path.join(out, "imdb_subset_train.tsv"), "w", encoding="utf-8") as f:
        f.write("# file (under aclImdb_subset/)\tgpt2_count\tgpt2_fnv1a64\topt_count\topt_fnv1a64\n")
        for name in imdb:
            g, o = ids_by_tok["gpt2"][name], ids_by_tok["opt"][name]
            f.write(f"{name}\t{len(g)}\t{fnv1a_ids(g):016x}\t{len(o)}\t{fnv1a_ids(o):016x}\n")
    shortest = sorted(imdb, key=lambda n: (len(imdb[n].encode("utf-8")), n))[:N_FULL_IDS]
    for tname in ("gpt2", "opt"):
        with open(os.path.join(out, f"imdb_ids_{tname}.tsv"), "w", encoding="utf-8") as f:
            f.write("# file (under aclImdb_subset/)\tids separated by spaces\n")
            for name in sorted(shortest):
                f.write(name + "\t" + " ".join(map(str, ids_by_tok[tname][name])) + "\n")

    # Unicode sweep
    with open(os.path.join(out, "unicode_sweep.tsv"), "w", encoding="utf-8") as f:
        f.write(f"# first code point of a block of {SWEEP_BLOCK} (surrogates skipped), each cp c written as "
                "c x c c ' ' c 1 c ! ' ' c \\n\tgpt2_count\tgpt2_fnv1a64\topt_count\topt_fnv1a64\n")
        sweeps = sweep_texts()
        encs = {tname: toks[tname]([t for _, t in sweeps])["input_ids"] for tname in ("gpt2", "opt")}
        for k, (start, _) in enumerate(sweeps):
            g, o = encs["gpt2"][k], encs["opt"][k]
            f.write(f"{start}\t{len(g)}\t{fnv1a_ids(g):016x}\t{len(o)}\t{fnv1a_ids(o):016x}\n")

    # manifest
    files = []
    for root, _, names in os.walk(out):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, out)
            if rel == "MANIFEST.json":
                continue
            files.append({"path": rel, "sha256": sha256_file(path), "bytes": os.path.getsize(path)})
    files.sort(key=lambda e: e["path"])
    inputs = {os.path.relpath(p, data): sha256_file(p) for p in
              [archive] + [os.path.join(d, f) for d in tok_dirs.values() for f in sorted(os.listdir(d))]}
    manifest = {
        "description": "Token ids from Hugging Face for tests/test_tokenizer_golden.c; paths relative to this folder",
        "command": "python3 tools/gen_golden_tokenizer.py --data ../shared/data --out golden/tokenizer",
        "generator": "tools/gen_golden_tokenizer.py",
        "reference": "transformers AutoTokenizer (GPT2TokenizerFast for gpt2/opt; PreTrainedTokenizerFast for tiny_*)",
        "hash": "FNV-1a 64 over the ids as little-endian int32 bytes",
        "versions": {"python": platform.python_version(), "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "inputs_sha256": inputs,
        "files": files,
    }
    with open(os.path.join(out, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(e["bytes"] for e in files)
    print(f"wrote {len(files)} files, {total} bytes, to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
