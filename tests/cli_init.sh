#!/usr/bin/env bash
# rewardc init: the presets in --help, a tiny model that loads and scores and
# is reproducible from its seed, the opt-125m shape with its exact parameter
# count, and the usage errors (unknown preset, missing tokenizer, an existing
# model without --force).
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_init
# json_has FILE KEY VALUE: config.json is pretty-printed as "key":<tab>value
json_has() { grep -Eq "\"$2\":[[:space:]]*$3,?\$" "$1"; }
# safetensors: 8-byte little-endian header length, the JSON header, then data
st_header_len() { od -An -tu8 -N8 "$1" | tr -d ' '; }
st_header() { head -c $(($(st_header_len "$1") + 8)) "$1" | tail -c "$(st_header_len "$1")"; }
# elements stored, from the file size: every tensor is F32 (4 bytes), no gaps
st_elements() {
    local size
    size=$(stat -c %s "$1")
    echo $(((size - 8 - $(st_header_len "$1")) / 4))
}

# ---- --help lists every preset ----------------------------------------------------
"$BIN" init --help >help.out 2>&1
check "--help: exit 0" test $? -eq 0
for preset in tiny small opt-125m opt-350m opt-1.3b opt-2.7b; do
    check "--help lists $preset" grep -Eq "^ +$preset +[^ ]" help.out
done

# ---- tiny: loads, scores, reproducible ------------------------------------------------
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out tiny --max_length 64 >tiny.out 2>tiny.err
check "init tiny: exit 0" test $? -eq 0
check "init tiny: reports the parameter count" grep -q "3.4M parameters" tiny.out
for f in config.json model.safetensors vocab.json merges.txt; do
    check "init tiny: wrote $f" test -s "tiny/$f"
done
check "tiny config: hidden_size 64" json_has tiny/config.json hidden_size 64
check "tiny config: pad_token_id 1 (OPT <pad>)" json_has tiny/config.json pad_token_id 1
check "tiny config: OPTForSequenceClassification" grep -q OPTForSequenceClassification tiny/config.json
check "tiny config: num_labels 1" json_has tiny/config.json num_labels 1
check "tiny config: max_length 64 kept" json_has tiny/config.json max_length 64
# tiny: 50272x64 + 2050x64 embeddings, 2 layers of 4(64*64+64) + 2*64 + 64*256+256
# + 256*64+64 + 2*64, a final LayerNorm 2*64 and the score head 64
tiny_expected=$((50272 * 64 + 2050 * 64 + 2 * (4 * (64 * 64 + 64) + 2 * 64 + 64 * 256 + 256 + 256 * 64 + 64 + 2 * 64) + 2 * 64 + 64))
check "tiny: $tiny_expected parameters stored" test "$(st_elements tiny/model.safetensors)" -eq "$tiny_expected"
echo '{"prompt": "Is this fine?", "response": " Yes."}' >one.jsonl
"$BIN" score --model tiny --input one.jsonl >score.out 2>score.err
check "tiny scores a line: exit 0" test $? -eq 0
check "tiny score output has a reward" grep -Eq '^\{"line": 1, "reward": -?[0-9]' score.out
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out tiny_again --max_length 64 >/dev/null 2>&1
check "same seed: byte-identical weights" cmp -s tiny/model.safetensors tiny_again/model.safetensors
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out tiny_seed7 --seed 7 --max_length 64 >/dev/null 2>&1
check "another seed: other weights" test "$(cmp -s tiny/model.safetensors tiny_seed7/model.safetensors; echo $?)" -eq 1

# ---- opt-125m: the published shape ------------------------------------------------------
# facebook/opt-125m: embed_tokens 50272x768, embed_positions 2050x768 (offset 2),
# 12 layers of q/k/v/out_proj 4(768*768+768), two LayerNorms 2*2*768,
# fc1 768*3072+3072, fc2 3072*768+768; final LayerNorm 2*768: 125,239,296.
# The reward head score.weight (1x768, no bias) adds 768.
layer=$((4 * (768 * 768 + 768) + 2 * 768 + 768 * 3072 + 3072 + 3072 * 768 + 768 + 2 * 768))
opt125m=$((50272 * 768 + 2050 * 768 + 12 * layer + 2 * 768))
check "opt-125m arithmetic: 125,239,296" test "$opt125m" -eq 125239296
start=$(date +%s)
"$BIN" init --preset opt-125m --tokenizer "$TOKENIZER" --out opt125m >opt125m.out 2>opt125m.err
code=$?
seconds=$(($(date +%s) - start))
echo "init --preset opt-125m took ${seconds}s"
check "init opt-125m: exit 0" test $code -eq 0
check "init opt-125m: within 180 s (took ${seconds}s)" test "$seconds" -le 180
check "init opt-125m: reports 125.2M" grep -q "125.2M parameters" opt125m.out
check "opt-125m: 125,240,064 parameters stored" test "$(st_elements opt125m/model.safetensors)" -eq $((opt125m + 768))
st_header opt125m/model.safetensors >opt125m.header
check "opt-125m: 197 tensors (4 + 12 x 16 + score)" test "$(grep -o '"dtype"' opt125m.header | wc -l)" -eq 197
check "opt-125m: embed_positions 2050x768" grep -q '"model.decoder.embed_positions.weight":{"dtype":"F32","shape":\[2050,768\]' opt125m.header
check "opt-125m: score.weight 1x768" grep -q '"score.weight":{"dtype":"F32","shape":\[1,768\]' opt125m.header
check "opt-125m: no lm_head" test "$(grep -c lm_head opt125m.header)" -eq 0
for kv in "hidden_size 768" "num_hidden_layers 12" "ffn_dim 3072" "num_attention_heads 12" \
    "max_position_embeddings 2048" "word_embed_proj_dim 768" "vocab_size 50272" "do_layer_norm_before true"; do
    # shellcheck disable=SC2086 # "key value" splits into two arguments
    check "opt-125m config: $kv" json_has opt125m/config.json $kv
done
rm -rf opt125m # 500 MB

# ---- errors ------------------------------------------------------------------------------
fails() { # fails NAME "expected message" init-args...
    local name=$1 message=$2
    shift 2
    "$BIN" init "$@" >"$name.out" 2>"$name.err"
    local code=$?
    check "$name: non-zero exit" test $code -ne 0
    check "$name: says '$message'" grep -qF -- "$message" "$name.err"
}
fails unknown_preset "unknown preset 'opt-7b'" --preset opt-7b --tokenizer "$TOKENIZER" --out bad1
check "unknown preset: nothing written" test ! -e bad1
fails no_tokenizer "nosuchdir" --preset tiny --tokenizer nosuchdir --out bad2
check "missing tokenizer: nothing written" test ! -e bad2
cp tiny/model.safetensors tiny.before
fails exists "already holds a model (use --force to overwrite)" --preset tiny --tokenizer "$TOKENIZER" \
    --out tiny --seed 7
check "existing model untouched" cmp -s tiny.before tiny/model.safetensors
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out tiny --seed 7 --max_length 64 --force >/dev/null 2>&1
check "--force: exit 0" test $? -eq 0
check "--force: replaced with seed 7's weights" cmp -s tiny_seed7/model.safetensors tiny/model.safetensors
fails too_long "exceeds the preset's 2048 positions" --preset tiny --tokenizer "$TOKENIZER" --out bad3 \
    --max_length 4096
check "too long: nothing written" test ! -e bad3
fails bad_seed "--seed" --preset tiny --tokenizer "$TOKENIZER" --out bad4 --seed -1
fails missing_out "--preset, --tokenizer and --out are required" --preset tiny --tokenizer "$TOKENIZER"
fails unknown_flag "unknown option '--layers'" --preset tiny --tokenizer "$TOKENIZER" --out bad5 --layers 3
check "usage errors: nothing written" test ! -e bad4 -a ! -e bad5

cli_finish cli_init
