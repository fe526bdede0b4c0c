#!/usr/bin/env bash
# One spelling per flag: every command documents --snake_case, and the
# --kebab-case spelling of the same flag (with a separate value or with =)
# still works and does exactly the same. Each pair of runs below differs only
# in the spelling; their outputs must be byte-identical. Misspellings that are
# not a '-'/'_' swap are still refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_flags
same() { cmp -s "$1" "$2"; }

# ---- --help names only snake_case flags ------------------------------------------
for cmd in bench eval export import init prepare score serve tokenize train version; do
    "$BIN" $cmd --help >help_$cmd.txt 2>&1
    check "$cmd --help: exit 0" test $? -eq 0
    check "$cmd --help: no --kebab-case flag" \
        test -z "$(grep -oE -- '--[a-z0-9]+-[a-z0-9-]*' help_$cmd.txt)"
done

# ---- init: --max_length / --max-length / --max-length=N ----------------------------
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out snake --max_length 48 >/dev/null 2>&1
check "init --max_length: exit 0" test $? -eq 0
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out kebab --max-length 48 >/dev/null 2>&1
check "init --max-length: exit 0" test $? -eq 0
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out equals --max-length=48 >/dev/null 2>&1
check "init --max-length=48: exit 0" test $? -eq 0
for f in config.json model.safetensors; do
    check "init: $f the same with --max-length" same snake/$f kebab/$f
    check "init: $f the same with --max-length=48" same snake/$f equals/$f
done
check "init: max_length 48 taken" grep -q '"max_length":[[:space:]]*48' snake/config.json

# ---- prepare: value flags and switches -----------------------------------------------
cat >rankings.jsonl <<'JSON'
{"prompt": "Q1", "responses": ["a", "b", "c"], "rankings": [[1, 3, 2], [2, 1, 3]]}
{"prompt": "Q2", "responses": ["x", "y", "z"], "rankings": [[1, 2, 3], [3, 1, 2]]}
JSON
"$BIN" prepare --from rankings --input rankings.jsonl --output p_snake.jsonl --quiet \
    --margin_from_rank_gap --margin_scale 0.5 --weight_per_prompt --max_pairs 4
check "prepare snake_case: exit 0" test $? -eq 0
"$BIN" prepare --from rankings --input rankings.jsonl --output p_kebab.jsonl --quiet \
    --margin-from-rank-gap --margin-scale=0.5 --weight-per-prompt --max-pairs 4
check "prepare kebab-case: exit 0" test $? -eq 0
check "prepare: the same pairs" same p_snake.jsonl p_kebab.jsonl
check "prepare: --max_pairs 4 kept 4" test "$(wc -l <p_snake.jsonl | tr -d ' ')" -eq 4
check "prepare: --margin_scale 0.5 used" grep -q '"margin":0.5' p_snake.jsonl

# ---- tokenize: a switch ------------------------------------------------------------------
a=$("$BIN" tokenize --tokenizer "$TOKENIZER" --text "Hello" --no_special)
b=$("$BIN" tokenize --tokenizer "$TOKENIZER" --text "Hello" --no-special)
check "tokenize --no_special drops the BOS (got $a)" test "$a" = "[31414]"
check "tokenize --no-special the same" test "$a" = "$b"

# ---- score: two value flags ------------------------------------------------------------------
cat >texts.jsonl <<'JSON'
{"prompt": "Q: ", "response": "a kind answer"}
{"prompt": "Q: ", "response": "a rude answer"}
{"text": "something else entirely"}
JSON
"$BIN" score --model snake --input texts.jsonl --batch_size 2 --share_prefix false >s_snake.jsonl 2>/dev/null
check "score snake_case: exit 0" test $? -eq 0
"$BIN" score --model snake --input texts.jsonl --batch-size=2 --share-prefix false >s_kebab.jsonl 2>/dev/null
check "score kebab-case: exit 0" test $? -eq 0
check "score: the same rewards" same s_snake.jsonl s_kebab.jsonl
"$BIN" score --model snake --input texts.jsonl --share-prefix maybe 2>bad.txt >/dev/null
check "score --share-prefix maybe: exit 2" test $? -eq 2
check "score: the error names the snake_case flag" grep -q -- "--share_prefix: 'maybe'" bad.txt

# ---- train: TrainingArguments names, and their kebab-case aliases -------------------
for i in 1 2 3 4 5 6; do
    printf '{"prompt": "Q%d", "chosen": " yes %d", "rejected": " no %d"}\n' "$i" "$i" "$i"
done >pairs.jsonl
train() { # train OUT FLAG-SPELLINGS...
    local out=$1
    shift
    "$BIN" train --model snake --train_file pairs.jsonl --output_dir "$out" --max_steps 2 \
        --save_steps 0 --threads 1 --quiet "$@" >"$out.log" 2>&1
}
train t_snake --learning_rate 1e-3 --per_device_train_batch_size 2 --weight_decay 0.01
check "train snake_case: exit 0" test $? -eq 0
train t_kebab --learning-rate 1e-3 --per-device-train-batch-size=2 --weight-decay 0.01
check "train kebab-case: exit 0" test $? -eq 0
check "train: the same model" same t_snake/model.safetensors t_kebab/model.safetensors
numbers() { sed -e 's/,"tokens_per_second".*}$/}/' "$1"; }
check "train: the same logged numbers" \
    test "$(numbers t_snake/train_log.jsonl)" = "$(numbers t_kebab/train_log.jsonl)"
train t_default
check "train: --learning_rate changed the model" \
    test "$(cmp -s t_snake/model.safetensors t_default/model.safetensors; echo $?)" -ne 0

# ---- eval: value flags with a summary ------------------------------------------------------------
"$BIN" eval --model snake --pairs pairs.jsonl --batch_size 3 --max_pairs 5 --summary e_snake.json >/dev/null 2>&1
check "eval snake_case: exit 0" test $? -eq 0
"$BIN" eval --model snake --pairs pairs.jsonl --batch-size 3 --max-pairs=5 --summary e_kebab.json >/dev/null 2>&1
check "eval kebab-case: exit 0" test $? -eq 0
check "eval: the same summary" same e_snake.json e_kebab.json
check "eval: --max_pairs 5 taken" grep -q '"pairs":[[:space:]]*5' e_snake.json

# ---- not every misspelling is an alias ----------------------------------------------------
"$BIN" score --model snake --input texts.jsonl --batch__size 2 >/dev/null 2>&1
check "score --batch__size: unknown (exit 2)" test $? -eq 2
"$BIN" score --model snake --input texts.jsonl --batchsize 2 >/dev/null 2>&1
check "score --batchsize: unknown (exit 2)" test $? -eq 2
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out x --max-length-x 8 >/dev/null 2>&1
check "init --max-length-x: unknown (exit 2)" test $? -eq 2
"$BIN" tokenize --tokenizer "$TOKENIZER" --text "Hello" --no-special-x >/dev/null 2>&1
check "tokenize --no-special-x: unknown (exit 2)" test $? -eq 2

cli_finish cli_flags
