#!/usr/bin/env bash
# Data-parallel training on MPI (mpirun -np N rewardc train) on this machine:
# N ranks with per-rank accumulation A give the run of one process with
# accumulation N x A (the same global batches in the same order), up to float
# summation order: losses within 1e-6 relative, final parameters NMSE <= 1e-10;
# two runs with the same N are bit-identical; ZeRO-1 equals ZeRO-0; a run
# checkpointed with N = 2 resumes with N = 3 on the same trajectory; a killed
# rank, or one that cannot read its data, ends the job within seconds with a
# message naming the rank. Distributed eval gives the one-process rewards.
# Skipped when the build has no MPI or mpirun is missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_mpi
COMPARE=${REWARDC_DIST_COMPARE:?REWARDC_DIST_COMPARE must point at rc_dist_compare}
if ! "$BIN" version | grep -q 'RC_MPI=on' || ! command -v mpirun >/dev/null; then
    echo "skipped: rewardc built without MPI, or no mpirun"
    exit 77
fi
# CI runs as root; one thread per rank on a small machine
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
# In an AddressSanitizer build the ranks run without the leak check: Open
# MPI's plugins keep allocations until exit and are unloaded by then, so
# LeakSanitizer reports them with no module to suppress them by. rewardc's own
# code keeps its leak check in the one-process runs (here and every other test).
MPI_ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi() { # mpi N args...: rewardc on N ranks of this host
    local n=$1
    shift
    ASAN_OPTIONS=$MPI_ASAN_OPTIONS timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$n" "$BIN" "$@"
}

# a model without biases: a key bias has an exactly zero gradient, so AdamW turns
# each summation order's rounding noise into full-size steps there, and the
# losses of two orders would then differ by that noise, not by the sums compared
"$BIN" init --preset tiny-llama --tokenizer "$TOKENIZER" --out model --max_length 48 >init.out 2>&1
check "init tiny model" test $? -eq 0
words=(the cat dog sat ran on a mat big small red blue happy sad quick slow tree house river moon)
phrase() {
    local n=$((RANDOM % $1 + 1)) out="" i
    for ((i = 0; i < n; i++)); do out+="${out:+ }${words[RANDOM % ${#words[@]}]}"; done
    printf '%s' "$out"
}
RANDOM=11
for ((i = 0; i < 30; i++)); do
    printf '{"prompt": "Q%d: %s?", "chosen": " yes %s", "rejected": " no %s"}\n' \
        "$i" "$(phrase 8)" "$(phrase 10)" "$(phrase 10)"
done >train.jsonl
head -n 7 train.jsonl >eval.jsonl

# 30 pairs in micro-batches of 2: 15 per epoch, 6 per step, so every third
# step is a short one (3 micro-batches, not all ranks get one)
BASE=(train --model model --train_file train.jsonl --eval_file eval.jsonl
      --per_device_train_batch_size 2 --per_device_eval_batch_size 2 --logging_steps 1
      --learning_rate 2e-3 --weight_decay 0.01 --max_grad_norm 0.5 --quiet --threads 1)
COMMON=("${BASE[@]}" --max_steps 6 --save_steps 0)
losses() { grep '"loss"' "$1/train_log.jsonl" | sed -e 's/.*"loss":\([^,]*\),.*/\1/'; }
numbers() { sed -e 's/,"tokens_per_second".*}$/}/' "$1/train_log.jsonl"; }
same_losses() { # same_losses A B: every step's loss within 1e-6 relative
    paste <(losses "$1") <(losses "$2") | awk 'BEGIN { n = 0; bad = 0 }
        { n++; d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1;
          if (!(d <= 1e-6 * a)) { bad++; print "step " n ": " $1 " vs " $2 > "/dev/stderr" } }
        END { exit !(n == 6 && bad == 0) }'
}
same_params() { "$COMPARE" "$1/model.safetensors" "$2/model.safetensors" 1e-10; }
eval_value() { grep '"reward_mean"' "$1/train_log.jsonl" | sed -e "s/.*\"$2\":\([^,}]*\).*/\1/"; }
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && d <= 1e-5 && -d <= 1e-5) }'; }

"$BIN" "${COMMON[@]}" --gradient_accumulation_steps 6 --output_dir one >one.out 2>one.err
check "one process, accumulation 6: exit 0" test $? -eq 0

mpi 2 "${COMMON[@]}" --gradient_accumulation_steps 3 --output_dir np2 >np2.out 2>np2.err
check "np 2, accumulation 3: exit 0" test $? -eq 0
check "np 2: reports 2 ranks" grep -q 'data parallel over 2 ranks' np2.err
check "np 2: losses of one process (1e-6 relative)" same_losses one np2
check "np 2: parameters of one process (NMSE <= 1e-10)" same_params one np2
check "np 2: eval reward mean of one process" close "$(eval_value one reward_mean)" "$(eval_value np2 reward_mean)"
check "np 2: eval loss of one process" close "$(eval_value one eval_loss)" "$(eval_value np2 eval_loss)"

mpi 3 "${COMMON[@]}" --gradient_accumulation_steps 2 --output_dir np3 >np3.out 2>np3.err
check "np 3, accumulation 2: exit 0" test $? -eq 0
check "np 3: losses of one process (1e-6 relative)" same_losses one np3
check "np 3: parameters of one process (NMSE <= 1e-10)" same_params one np3
check "np 3: eval reward mean of one process" close "$(eval_value one reward_mean)" "$(eval_value np3 reward_mean)"
check "np 3: rank 0 alone wrote the output (one log line per step)" \
    test "$(grep -c '"loss"' np3/train_log.jsonl)" -eq 6

mpi 3 "${COMMON[@]}" --gradient_accumulation_steps 2 --output_dir np3again >np3again.out 2>&1
check "np 3 twice: identical models (bitwise)" cmp -s np3/model.safetensors np3again/model.safetensors
check "np 3 twice: identical logs (less timings)" cmp -s <(numbers np3) <(numbers np3again)

# eval and score: each rank takes a block, rank 0 writes them in input order
rewards_close() { # rewards_close A B: the same lines, numbers within 1e-5
    paste -d'\n' "$1" "$2" | awk 'BEGIN { lines = 0; bad = 0 }
        { split($0, v, /[,:{}] */); if (NR % 2) { for (k in v) a[k] = v[k]; next }
          lines++; for (k in v) { d = a[k] - v[k]; if (v[k] ~ /^-?[0-9.]+(e-?[0-9]+)?$/ && (d > 1e-5 || -d > 1e-5)) bad++
                                  if (v[k] !~ /^-?[0-9.]+(e-?[0-9]+)?$/ && a[k] != v[k]) bad++ } }
        END { exit !(lines > 0 && bad == 0) }' &&
        test "$(wc -l <"$1")" -eq "$(wc -l <"$2")"
}
"$BIN" eval --model one --pairs train.jsonl --rewards eval1.jsonl >eval1.out 2>eval1.err
mpi 3 eval --model one --pairs train.jsonl --rewards eval3.jsonl >eval3.out 2>eval3.err
check "eval np 3: exit 0" test $? -eq 0
check "eval np 3: the rewards of one process, in order" rewards_close eval1.jsonl eval3.jsonl
check "eval np 3: rank 0 alone printed the report" test "$(grep -c '^pairs:' eval3.out)" -eq 1
{ sed -e 's/"chosen"/"response"/' train.jsonl | head -n 20; echo 'not json'; sed -e 's/"chosen"/"response"/' train.jsonl | tail -n 10; } >texts.jsonl
"$BIN" score --model one --input texts.jsonl --batch_size 2 >score1.jsonl 2>score1.err
mpi 3 score --model one --input texts.jsonl --batch_size 2 --output score3.jsonl >score3.out 2>score3.err
check "score np 3: exit 3 (one bad line), as one process" test $? -eq 3
check "score np 3: the scores of one process, in order" rewards_close score1.jsonl score3.jsonl
check "score np 3: reading standard input is refused" sh -c \
    "! ASAN_OPTIONS=$MPI_ASAN_OPTIONS timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \"$BIN\" score --model one <texts.jsonl >/dev/null 2>stdin.err"

# ZeRO-1, in buckets of 100k floats (the tiny model: 35 buckets)
mpi 3 "${COMMON[@]}" --gradient_accumulation_steps 2 --zero 1 --allreduce_bucket_elements 100000 \
    --output_dir zero1 >zero1.out 2>zero1.err
check "np 3 ZeRO-1: exit 0" test $? -eq 0
check "np 3 ZeRO-1: reports ZeRO-1" grep -q 'ZeRO-1' zero1.err
check "np 3 ZeRO-1: losses of ZeRO-0 (1e-6 relative)" same_losses np3 zero1
check "np 3 ZeRO-1: parameters of ZeRO-0 (NMSE <= 1e-10)" same_params np3 zero1
check "np 3 ZeRO-1: parameters of one process (NMSE <= 1e-10)" same_params one zero1
if cmp -s np3/model.safetensors zero1/model.safetensors; then
    echo "note: ZeRO-1 and ZeRO-0 gave bit-identical models"
fi

# checkpointed at step 2 by 2 ranks (ZeRO-1: rank 0 gathers the moments),
# stopped after step 3, resumed from checkpoint-2 by 3 ranks
mpi 2 "${BASE[@]}" --max_steps 6 --save_steps 2 --gradient_accumulation_steps 3 \
    --zero 1 --stop_after_steps 3 --output_dir resumed >stop.out 2>stop.err
check "np 2 ZeRO-1 stopped after 3 steps: exit 0" test $? -eq 0
check "np 2: checkpoint-2 written" test -s resumed/checkpoint-2/optimizer.safetensors
check "np 2 ZeRO-1 checkpoint: the whole optimizer state" \
    "$COMPARE" resumed/checkpoint-2/optimizer.safetensors resumed/checkpoint-2/optimizer.safetensors 0
mpi 3 "${BASE[@]}" --max_steps 6 --save_steps 2 --gradient_accumulation_steps 2 \
    --resume --output_dir resumed >resume.out 2>resume.err
check "np 3 resumed the np 2 run: exit 0" test $? -eq 0
check "resumed at step 2" grep -q 'resumed from .*checkpoint-2 at step 2' resume.err
check "resumed with another N: losses of one process" same_losses one resumed
check "resumed with another N: parameters of one process" same_params one resumed

# a killed rank ends the job, naming it, within seconds
mpi 3 "${BASE[@]}" --max_steps 100000 --save_steps 3 \
    --gradient_accumulation_steps 2 --output_dir killed >killed.out 2>killed.err &
job=$!
for ((poll = 0; poll < 600; poll++)); do
    [ -e killed/checkpoint-3/trainer_state.json ] && break
    sleep 0.1
done
rank_pid() { # rank_pid ROOT RANK: the process of that rank under ROOT (subshell, timeout, mpirun)
    local pid queue=("$1")
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$pid"
            return
        fi
        queue+=($(pgrep -P "$pid"))
    done
}
victim=$(rank_pid "$job" 1)
check "a rank to kill was found" test -n "$victim"
start=$(date +%s.%N)
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "killed rank: job ended in ${elapsed}s with status $rc"
check "killed rank: job fails" test "$rc" -ne 0 -a "$rc" -ne 124
check "killed rank: ended within 10 s" awk -v t="$elapsed" 'BEGIN { exit !(t < 10) }'
check "killed rank: the message names the rank" grep -Eq 'rank [0-9]+ .*(exited on signal|killed)' killed.err
for dir in killed/checkpoint-*; do
    case $dir in *.tmp-*) continue ;; esac
    check "killed rank: $dir complete" test -s "$dir/trainer_state.json" -a -s "$dir/optimizer.safetensors"
done
"$BIN" "${BASE[@]}" --max_steps 100000 --save_steps 3 --gradient_accumulation_steps 6 \
    --resume --stop_after_steps 1 --output_dir killed >after.out 2>after.err
check "killed rank: one process resumes from the last checkpoint" test $? -eq 0

# a rank that cannot read its data stops every rank, naming itself
start=$(date +%s.%N)
ASAN_OPTIONS=$MPI_ASAN_OPTIONS timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 3 sh -c \
    'f=train.jsonl; [ "$OMPI_COMM_WORLD_RANK" = 2 ] && f=missing.jsonl;
     exec "$0" train --model model --train_file "$f" --max_steps 2 --output_dir unread --quiet' \
    "$BIN" >unread.out 2>unread.err
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
check "unreadable data on rank 2: job fails" test "$rc" -ne 0 -a "$rc" -ne 124
check "unreadable data on rank 2: ended within 10 s" awk -v t="$elapsed" 'BEGIN { exit !(t < 10) }'
check "unreadable data on rank 2: the message names rank 2 and the file" \
    grep -q 'rank 2 of 3: .*missing.jsonl' unread.err

cli_finish cli_mpi
