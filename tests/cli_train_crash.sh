#!/usr/bin/env bash
# Crash safety of rewardc train's checkpoints: a run that saves every step
# (save_steps 1, save_total_limit 2, so old checkpoints are also being deleted)
# is killed with SIGKILL at random moments, mostly while it writes the ~40 MB
# of a tiny model's checkpoint. After every kill each checkpoint-<N> folder
# present must be complete (trainer_state.json for step N, model, optimizer)
# and load for scoring; then --resume goes on. The run that finally completes
# must match an uninterrupted run byte for byte (model) and number for number
# (log). Set CRASH_SEED to replay a particular sequence of kill delays.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_train_crash
numbers() { sed -e 's/,"tokens_per_second".*}$/}/' "$1"; }

"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out model --max_length 64 >init.out 2>&1
check "init tiny model" test $? -eq 0

words=(the cat dog sat ran on a mat big small red blue happy sad quick slow tree house river moon)
phrase() {
    local n=$((RANDOM % $1 + 1)) out="" i
    for ((i = 0; i < n; i++)); do out+="${out:+ }${words[RANDOM % ${#words[@]}]}"; done
    printf '%s' "$out"
}
RANDOM=7
for ((i = 0; i < 40; i++)); do
    printf '{"prompt": "Q%d: %s?", "chosen": " yes %s", "rejected": " no %s"}\n' \
        "$i" "$(phrase 8)" "$(phrase 12)" "$(phrase 12)"
done >train.jsonl
echo '{"prompt": "Q: a cat?", "response": " yes the cat"}' >one.jsonl

STEPS=30
ARGS=(--model model --train_file train.jsonl --max_steps "$STEPS" --per_device_train_batch_size 4
      --logging_steps 1 --learning_rate 1e-3)
"$BIN" train "${ARGS[@]}" --save_steps 0 --output_dir reference --quiet >ref.out 2>ref.err
check "reference run: exit 0" test $? -eq 0

# Every checkpoint-<N> folder must be whole: a kill may leave only
# checkpoint-<N>.tmp-<pid> folders half-written, never a checkpoint-<N>.
verify_checkpoints() { # verify_checkpoints LABEL
    local dir name step
    for dir in run/checkpoint-*; do
        [ -e "$dir" ] || continue
        name=${dir#run/}
        [[ $name =~ ^checkpoint-([0-9]+)$ ]] || continue
        step=${BASH_REMATCH[1]}
        check "$1: $name has trainer_state.json for step $step" \
            grep -Eq "\"global_step\":[[:space:]]*$step([,}]|\$)" "$dir/trainer_state.json"
        check "$1: $name has the optimizer state" test -s "$dir/optimizer.safetensors"
        check "$1: $name scores" sh -c "\"$BIN\" score --model \"$dir\" --input one.jsonl >score.out 2>score.err"
        checkpoints_seen=$((checkpoints_seen + 1))
    done
}
# a checkpoint-<step> folder (not a checkpoint-<step>.tmp-* one a kill left
# half-written: the glob alone matched those, and --resume then rightly refused)
complete_checkpoint_exists() {
    local state
    for state in run/checkpoint-*/trainer_state.json; do
        [[ $state =~ ^run/checkpoint-[0-9]+/trainer_state.json$ ]] && return 0
    done
    return 1
}

SEED=${CRASH_SEED:-$((RANDOM + $$))}
echo "kill delays from CRASH_SEED=$SEED"
RANDOM=$SEED
CRASH=(--save_steps 1 --save_total_limit 2 --output_dir run)
kills=0
checkpoints_seen=0
finished_early=0
interrupted_saves=0
for ((attempt = 1; attempt <= 10; attempt++)); do
    if complete_checkpoint_exists; then mode=--resume; else mode=--overwrite_output_dir; fi
    "$BIN" train "${ARGS[@]}" "${CRASH[@]}" $mode >"attempt$attempt.out" 2>"attempt$attempt.err" &
    pid=$!
    # Every 4th kill falls anywhere in the first half second (cleanup,
    # loading). The others wait for 1 to 3 step lines of this run on stderr,
    # then up to 0.3 s more: a save (~40 MB) follows every step, so the kill
    # lands in a save or in the next step, however fast the build is.
    if ((attempt % 4 != 0)); then
        wait_steps=$((RANDOM % 3 + 1))
        for ((poll = 0; poll < 2400; poll++)); do
            [ "$(grep -c '^step ' "attempt$attempt.err" 2>/dev/null)" -ge $wait_steps ] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        ms=$((RANDOM % 300))
    else
        ms=$((RANDOM % 500))
    fi
    pause=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    sleep "$pause"
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        kills=$((kills + 1))
    else
        wait "$pid"
        code=$?
        check "attempt $attempt ended by itself: exit 0" test $code -eq 0
        if grep -q "model saved" "attempt$attempt.out"; then
            finished_early=1
            break
        fi
    fi
    verify_checkpoints "after kill $kills"
    if compgen -G 'run/checkpoint-*.tmp-*' >/dev/null; then interrupted_saves=$((interrupted_saves + 1)); fi
done
echo "$kills kills ($interrupted_saves left a checkpoint-*.tmp-* folder), $checkpoints_seen checkpoint folders verified"
check "killed at least 5 times" test "$kills" -ge 5
check "some checkpoints were verified" test "$checkpoints_seen" -ge 3

if [ "$finished_early" -eq 0 ]; then
    if complete_checkpoint_exists; then mode=--resume; else mode=--overwrite_output_dir; fi
    "$BIN" train "${ARGS[@]}" "${CRASH[@]}" $mode >final.out 2>final.err
    check "final run ($mode): exit 0" test $? -eq 0
fi
check "final model byte-identical to the uninterrupted run" cmp -s reference/model.safetensors run/model.safetensors
check "log equals the uninterrupted run's (less timings)" \
    cmp -s <(numbers reference/train_log.jsonl) <(numbers run/train_log.jsonl)
check "each step logged once" test "$(grep -c '"loss"' run/train_log.jsonl)" -eq $STEPS
# two kept, or three when the last kill fell between a save and the pruning
check "the last save (step $((STEPS - 1))) is there" test -f run/checkpoint-$((STEPS - 1))/trainer_state.json
kept=(run/checkpoint-*)
check "save_total_limit pruned old checkpoints (${#kept[@]} kept)" test "${#kept[@]}" -le 3
no_temporaries() { ! compgen -G 'run/*.tmp*' >/dev/null; }
check "no temporary folders or files left" no_temporaries

cli_finish cli_train_crash
