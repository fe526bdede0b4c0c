#!/usr/bin/env bash
# rewardc train end to end on a tiny model and hand-made pairs: a run stopped
# after 5 steps and resumed must log the same numbers and write a
# byte-identical model as an uninterrupted run; --config with flags winning;
# save_total_limit; overwrite_output_dir; reward statistics in config.json;
# group_by_length; and bad input failing with a clear message before any
# output_dir is made.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_train
# step lines without the wall-clock fields, which differ between runs
numbers() { sed -e 's/,"tokens_per_second".*}$/}/' "$1"; }
step_lines() { grep -c '"loss"' "$1"; }

"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out model --max_length 64 >init.out 2>&1
check "init tiny model" test $? -eq 0

# ---- data: 40 training pairs (every 4th with a margin), 8 eval pairs -----------
words=(the cat dog sat ran on a mat big small red blue happy sad quick slow tree house river moon)
phrase() { # phrase MAX_WORDS: 1..MAX random words
    local n=$((RANDOM % $1 + 1)) out="" i
    for ((i = 0; i < n; i++)); do out+="${out:+ }${words[RANDOM % ${#words[@]}]}"; done
    printf '%s' "$out"
}
make_pairs() { # make_pairs COUNT SEED > file
    RANDOM=$2
    local i
    for ((i = 0; i < $1; i++)); do
        local margin=""
        if ((i % 4 == 0)); then margin=", \"margin\": 0.5"; fi
        printf '{"prompt": "Q%d: %s?", "chosen": " yes %s", "rejected": " no %s"%s}\n' \
            "$i" "$(phrase 8)" "$(phrase 12)" "$(phrase 12)" "$margin"
    done
}
make_pairs 40 7 >train.jsonl
make_pairs 8 99 >eval.jsonl

# ---- resume exactness ---------------------------------------------------------
# 2 pairs x 2 accumulation: 10 steps per epoch, so 12 steps cross an epoch boundary.
COMMON=(--model model --train_file train.jsonl --eval_file eval.jsonl --max_steps 12
        --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --save_steps 4
        --logging_steps 1 --eval_steps 6 --learning_rate 1e-3 --warmup_steps 2 --quiet)
"$BIN" train "${COMMON[@]}" --output_dir full >full.out 2>full.err
check "uninterrupted run: exit 0" test $? -eq 0
check "uninterrupted run: 12 step lines" test "$(step_lines full/train_log.jsonl)" -eq 12
check "uninterrupted run: checkpoints 4 and 8" test -f full/checkpoint-4/trainer_state.json -a \
    -f full/checkpoint-8/trainer_state.json
check "uninterrupted run: no checkpoint at the last step" test ! -e full/checkpoint-12

"$BIN" train "${COMMON[@]}" --output_dir resumed --stop_after_steps 5 >stop.out 2>stop.err
check "stopped run: exit 0" test $? -eq 0
check "stopped run: says it stopped" grep -q "stopped early" stop.err
check "stopped run: only checkpoint-4" test "$(echo resumed/checkpoint-*)" = "resumed/checkpoint-4"
check "stopped run: no final model" test ! -e resumed/model.safetensors
check "stopped run: logged step 5" test "$(step_lines resumed/train_log.jsonl)" -eq 5
"$BIN" train "${COMMON[@]}" --output_dir resumed --resume >resume.out 2>resume.err
check "resumed run: exit 0" test $? -eq 0
check "resumed run: from checkpoint-4" grep -q "resumed from resumed/checkpoint-4 at step 4" resume.err
check "resumed run: 12 step lines, step 5 once" test "$(step_lines resumed/train_log.jsonl)" -eq 12 -a \
    "$(grep -c '"step":5,' resumed/train_log.jsonl)" -eq 1
grep '"loss"' full/train_log.jsonl | sed -n '5,12p' | numbers /dev/stdin | grep -o '"loss":[^,]*' >full.losses
grep '"loss"' resumed/train_log.jsonl | sed -n '5,12p' | numbers /dev/stdin | grep -o '"loss":[^,]*' >resumed.losses
check "steps 5..12: 8 losses logged" test "$(wc -l <full.losses)" -eq 8
check "steps 5..12: losses string-equal" cmp -s full.losses resumed.losses
check "whole log (less timings, with evals) equal" cmp -s <(numbers full/train_log.jsonl) <(numbers resumed/train_log.jsonl)
check "final model.safetensors byte-identical" cmp -s full/model.safetensors resumed/model.safetensors
check "checkpoint-8 byte-identical" cmp -s full/checkpoint-8/model.safetensors resumed/checkpoint-8/model.safetensors
check "optimizer state at 8 byte-identical" cmp -s full/checkpoint-8/optimizer.safetensors \
    resumed/checkpoint-8/optimizer.safetensors
check "eval at step 6 logged" grep -q '"step":6,.*"eval_accuracy"' full/train_log.jsonl
check "config.json has rewardc reward_mean" grep -q '"reward_mean"' full/config.json
check "config.json has rewardc reward_std" grep -q '"reward_std"' full/config.json
check "stdout reports eval accuracy" grep -q "eval: pairwise accuracy" full.out
check "final folder scores" sh -c "echo '{\"prompt\": \"Q: a\", \"response\": \" yes cat\"}' | \"$BIN\" score --model full >score.out 2>score.err"
check "score output has normalized reward" grep -q '"normalized": -\?[0-9]' score.out

# ---- resume inside a logging window ---------------------------------------------
# logging every 3 steps, checkpoints every 4: the resumed run must carry the
# half-filled window over, so its averaged log lines equal the uninterrupted run's.
WINDOW=(--model model --train_file train.jsonl --max_steps 12 --per_device_train_batch_size 4
        --save_steps 4 --logging_steps 3 --learning_rate 1e-3 --quiet)
"$BIN" train "${WINDOW[@]}" --output_dir win_full >/dev/null 2>&1
"$BIN" train "${WINDOW[@]}" --output_dir win_resumed --stop_after_steps 6 >/dev/null 2>&1
"$BIN" train "${WINDOW[@]}" --output_dir win_resumed --resume >/dev/null 2>&1
check "window resume: same averaged log lines" \
    test "$(numbers win_full/train_log.jsonl)" = "$(numbers win_resumed/train_log.jsonl)"
check "window resume: same final model" cmp -s win_full/model.safetensors win_resumed/model.safetensors

# ---- overwrite_output_dir -------------------------------------------------------
cp full/model.safetensors before.safetensors
"$BIN" train "${COMMON[@]}" --output_dir full >again.out 2>again.err
check "second run into output_dir: fails" test $? -ne 0
check "second run: names --overwrite_output_dir and --resume" \
    grep -q "already holds an earlier run.*--resume.*--overwrite_output_dir" again.err
check "second run: model untouched" cmp -s before.safetensors full/model.safetensors
SHORT=(--model model --train_file train.jsonl --max_steps 2 --per_device_train_batch_size 4
       --logging_steps 1 --save_steps 0 --quiet)
"$BIN" train "${SHORT[@]}" --output_dir full --overwrite_output_dir >ow.out 2>ow.err
check "--overwrite_output_dir: exit 0" test $? -eq 0
check "--overwrite_output_dir: old checkpoints gone" test -z "$(ls -d full/checkpoint-* 2>/dev/null)"
check "--overwrite_output_dir: fresh log of 2 steps" test "$(step_lines full/train_log.jsonl)" -eq 2
check "--overwrite_output_dir: model replaced" test "$(cmp -s before.safetensors full/model.safetensors; echo $?)" -ne 0
# an earlier run that kept no checkpoints still counts
"$BIN" train "${SHORT[@]}" --output_dir full >ow2.out 2>ow2.err
check "run without checkpoints is protected too" test $? -ne 0
check "its log is untouched" test "$(step_lines full/train_log.jsonl)" -eq 2

# ---- --config, flags win ---------------------------------------------------------
cat >train.json <<'JSON'
{"model": "model", "train_file": "train.jsonl", "output_dir": "fromconfig", "max_steps": 3,
 "per_device_train_batch_size": 4, "learning_rate": 0.002, "lr_scheduler_type": "constant",
 "logging_steps": 1, "save_steps": 0, "quiet": true}
JSON
"$BIN" train --config train.json --learning_rate 0.001 >cfg.out 2>cfg.err
check "--config: exit 0" test $? -eq 0
check "--config: max_steps 3 from the file" test "$(step_lines fromconfig/train_log.jsonl)" -eq 3
check "--config: the flag's learning rate wins" \
    test "$(grep -c '"learning_rate":0.001,' fromconfig/train_log.jsonl)" -eq 3
check "--config: no checkpoints (save_steps 0)" test -z "$(ls -d fromconfig/checkpoint-* 2>/dev/null)"
echo '{"model": "model", "learning_rat": 0.1}' >typo.json
"$BIN" train --config typo.json --train_file train.jsonl --output_dir typo >typo.out 2>typo.err
check "--config unknown key: fails" test $? -ne 0
check "--config unknown key: named" grep -q 'unknown key "learning_rat"' typo.err
echo '{"max_steps": "many"}' >type.json
"$BIN" train --config type.json --model model --train_file train.jsonl --output_dir type >type.out 2>type.err
check "--config bad value: fails" test $? -ne 0
check "--config bad value: named" grep -q "max_steps" type.err
check "--config failures: no output_dir" test ! -e typo -a ! -e type

# ---- save_total_limit ---------------------------------------------------------------
"$BIN" train "${SHORT[@]}" --max_steps 5 --save_steps 1 --save_total_limit 2 --output_dir limited \
    >lim.out 2>lim.err
check "save_total_limit: exit 0" test $? -eq 0
check "save_total_limit 2: checkpoints 3 and 4 only" \
    test "$(cd limited && echo checkpoint-*)" = "checkpoint-3 checkpoint-4"

# ---- group_by_length ------------------------------------------------------------------
"$BIN" train "${SHORT[@]}" --max_steps 3 --group_by_length --output_dir grouped >grp.out 2>grp.err
check "group_by_length: exit 0" test $? -eq 0
check "group_by_length: 3 steps logged" test "$(step_lines grouped/train_log.jsonl)" -eq 3
check "group_by_length: final model" test -f grouped/model.safetensors

# ---- share_prompt_prefix: the pairs share "Qn: ...?", so packing pays off ---------------
summary_value() { grep -o "\"$2\":[[:space:]]*[0-9.eE+-]*" "$1" | awk '{print $NF}'; }
first_loss() { grep -m1 -o '"loss":[^,]*' "$1" | cut -d: -f2; }
"$BIN" train "${SHORT[@]}" --max_steps 3 --output_dir shared >shared.out 2>shared.err
check "share_prompt_prefix (default): exit 0" test $? -eq 0
check "share_prompt_prefix (default): prefix tokens counted" \
    test "$(summary_value shared/training_summary.json shared_prefix_tokens)" -gt 0
check "share_prompt_prefix (default): reported" grep -q "shared prompt prefixes" shared.out
"$BIN" train "${SHORT[@]}" --max_steps 3 --share_prompt_prefix=false --output_dir unshared \
    >unshared.out 2>unshared.err
check "share_prompt_prefix=false: exit 0" test $? -eq 0
check "share_prompt_prefix=false: nothing shared" \
    test "$(summary_value unshared/training_summary.json shared_prefix_tokens)" -eq 0
check "share_prompt_prefix: same tokens either way" test \
    "$(summary_value shared/training_summary.json tokens)" = "$(summary_value unshared/training_summary.json tokens)"
# the same step computed two ways: equal up to float rounding
check "share_prompt_prefix: same first loss to 1e-5" awk -v a="$(first_loss shared/train_log.jsonl)" \
    -v b="$(first_loss unshared/train_log.jsonl)" 'BEGIN { d = a - b; exit !(a != "" && d <= 1e-5 && -d <= 1e-5) }'

# ---- bad input: non-zero exit, a clear message, no output_dir --------------------------
fails_cleanly() { # fails_cleanly NAME "expected message" train-args...
    local name=$1 message=$2
    shift 2
    "$BIN" train "$@" --output_dir "bad_$name" >"bad_$name.out" 2>"bad_$name.err"
    local code=$?
    check "$name: non-zero exit" test $code -ne 0
    check "$name: says '$message'" grep -qF -- "$message" "bad_$name.err"
    check "$name: no output_dir" test ! -e "bad_$name"
}
BASE=(--max_steps 2 --per_device_train_batch_size 4 --quiet)
{ head -3 train.jsonl; echo '{"prompt": "x", "chosen": "a",'; head -2 train.jsonl; } >malformed.jsonl
echo '{"prompt": "x", "chosen": "a"}' >norejected.jsonl
echo '{"prompt": "x", "chosen": "", "rejected": "b"}' >empty.jsonl
fails_cleanly malformed "malformed.jsonl:4:" --model model --train_file malformed.jsonl "${BASE[@]}"
fails_cleanly malformed_eval "malformed.jsonl:4:" --model model --train_file train.jsonl \
    --eval_file malformed.jsonl "${BASE[@]}"
fails_cleanly missing_rejected 'norejected.jsonl:1: missing field "rejected"' --model model \
    --train_file norejected.jsonl "${BASE[@]}"
fails_cleanly empty_response 'empty.jsonl:1: field "chosen" is empty' --model model \
    --train_file empty.jsonl "${BASE[@]}"
fails_cleanly no_model "nosuchmodel/config.json" --model nosuchmodel --train_file train.jsonl "${BASE[@]}"
fails_cleanly no_train_file "nosuch.jsonl" --model model --train_file nosuch.jsonl "${BASE[@]}"
fails_cleanly unknown_flag "unknown option '--frobnicate'" --model model --train_file train.jsonl \
    --frobnicate 3 "${BASE[@]}"
fails_cleanly bad_number "'1e-3x' is not a number" --model model --train_file train.jsonl \
    --learning_rate 1e-3x "${BASE[@]}"
fails_cleanly negative_steps "'-3' is not an integer" --model model --train_file train.jsonl \
    "${BASE[@]}" --max_steps -3
fails_cleanly bad_bool "'maybe' is not true/false" --model model --train_file train.jsonl \
    --group_by_length=maybe "${BASE[@]}"
fails_cleanly zero_batch "must be positive" --model model --train_file train.jsonl \
    "${BASE[@]}" --per_device_train_batch_size 0
fails_cleanly bad_backend "unknown backend 'nosuch'" --model model --train_file train.jsonl \
    --backend nosuch "${BASE[@]}"
fails_cleanly bad_schedule "lr_scheduler_type" --model model --train_file train.jsonl \
    --lr_scheduler_type sideways "${BASE[@]}"
fails_cleanly no_checkpoint "no complete checkpoint" --model model --train_file train.jsonl \
    --resume "${BASE[@]}"
fails_cleanly missing_model_flag "--model and --train_file are required" --train_file train.jsonl "${BASE[@]}"

cli_finish cli_train
