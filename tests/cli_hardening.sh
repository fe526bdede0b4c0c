#!/usr/bin/env bash
# Hardening findings of issue 20, each on a tiny model: absurd trainer_state.json
# fields on --resume, a tokenizer_config.json of the wrong shape, two runs on one
# output_dir, --overwrite_output_dir leaving the old final model, score --output
# leftovers after SIGTERM/SIGINT/kill -9, NaN weights, a folder without
# score.weight, lines with trailing bytes or two objects or "\u0000", and a
# config.json whose duplicate key must resolve as in Python (the last).
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_hardening
have_python() { command -v python3 >/dev/null 2>&1; }

"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out model --max_length 64 >init.out 2>&1
check "init tiny model" test $? -eq 0
for i in $(seq 1 24); do
    printf '{"prompt": "Q%d: ", "chosen": " a good answer %d", "rejected": " bad %d"}\n' "$i" "$i" "$i"
done >train.jsonl
TRAIN=(--model model --train_file train.jsonl --per_device_train_batch_size 2 --max_steps 8
       --save_steps 2 --logging_steps 1 --learning_rate 1e-3 --quiet)

# ---- trainer_state.json range checks on --resume --------------------------------
"$BIN" train "${TRAIN[@]}" --output_dir run --stop_after_steps 3 >stop.out 2>&1
check "stopped run with checkpoint-2" test -f run/checkpoint-2/trainer_state.json
cp -r run pristine
try_state() { # try_state FIELD VALUE: resume with one field replaced; sets code and err
    rm -rf run && cp -r pristine run
    sed -i -E "s/\"$1\":[^,}]*/\"$1\": $2/" run/checkpoint-2/trainer_state.json
    "$BIN" train "${TRAIN[@]}" --output_dir run --resume >resume.out 2>resume.err
    code=$?
}
for case in "batch_in_epoch -3" "global_step -1000" "global_step 1e300" "epoch 99" "batch_in_epoch 1e9" \
            "global_step 2.5" 'epoch "0"'; do
    set -- $case
    try_state "$1" "$2"
    check "$1 = $2: refused (exit $code, not a crash)" test "$code" -eq 1
    check "$1 = $2: the message names the field and the file" \
        grep -q "checkpoint-2/trainer_state.json: \"$1\" must be an integer in \[0, " resume.err
done
try_state global_step 3
check "global_step not matching the optimizer's step: refused" grep -q 'metadata "step"' resume.err
try_state global_step 2
check "the untouched state still resumes" test "$code" -eq 0

# ---- tokenizer files of the wrong shape -----------------------------------------
cp -r model badtok
printf '{"added_tokens_decoder": [1, 2], "tokenizer_class": "GPT2Tokenizer"}\n' >badtok/tokenizer_config.json
echo '{"text": "hello"}' >one.jsonl
"$BIN" score --model badtok --input one.jsonl >/dev/null 2>tok.err
code=$?
check "added_tokens_decoder as an array: exit 1, no segfault (got $code)" test "$code" -eq 1
check "added_tokens_decoder: clear message" grep -q '"added_tokens_decoder" must be an object' tok.err
printf '{"add_bos_token": "yes"}\n' >badtok/tokenizer_config.json
"$BIN" score --model badtok --input one.jsonl >/dev/null 2>tok.err
check "add_bos_token as a string: refused" grep -q '"add_bos_token" and "add_prefix_space" must be true or false' tok.err
printf '{"added_tokens_decoder": {"2": {"content": "</s>", "lstrip": 1}}}\n' >badtok/tokenizer_config.json
"$BIN" score --model badtok --input one.jsonl >/dev/null 2>tok.err
check "a token flag that is not a boolean: refused" grep -q "entry '2' is not" tok.err
printf '{"<huge>": 2000000000}\n' >badtok/added_tokens.json
printf '{}\n' >badtok/tokenizer_config.json
"$BIN" score --model badtok --input one.jsonl >/dev/null 2>tok.err
check "token id 2e9: refused without allocating gigabytes" grep -q "token id 2000000000 is out of range" tok.err

# ---- one output_dir, one run ----------------------------------------------------
rm -rf run && cp -r pristine run
echo 4242 >run/.rewardc.lock
flock -o run/.rewardc.lock sleep 30 & # -o: only flock itself holds the lock
holder=$!
for _ in $(seq 50); do [ -n "$(pgrep -P $holder)" ] && break; sleep 0.1; done
for mode in "" --overwrite_output_dir --resume; do
    "$BIN" train "${TRAIN[@]}" --output_dir run $mode >lock.out 2>lock.err
    code=$?
    check "second run ${mode:-plain}: refused (exit $code)" test "$code" -eq 1
    check "second run ${mode:-plain}: names the other process" grep -q "run is in use by another rewardc process (pid 4242)" lock.err
done
check "the running run's checkpoint is untouched" diff -r pristine/checkpoint-2 run/checkpoint-2
check "the running run's log is untouched" cmp pristine/train_log.jsonl run/train_log.jsonl
sleeper=$(pgrep -P $holder)
kill $holder 2>/dev/null # as kill -9 would: the kernel drops its flock
wait $holder 2>/dev/null
[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
"$BIN" train "${TRAIN[@]}" --output_dir run --resume >lock.out 2>lock.err
check "after the holder is gone: resumes (its lock file taken over)" test $? -eq 0
check "the takeover is noted" grep -q "taking over the lock on run left by pid 4242" lock.err
check "no lock file after the run" test ! -e run/.rewardc.lock

# ---- --overwrite_output_dir and an interrupted new run --------------------------
check "the finished run has a final model" test -f run/model.safetensors
"$BIN" train "${TRAIN[@]}" --output_dir run --overwrite_output_dir --stop_after_steps 1 >ow.out 2>&1
check "interrupted overwrite: exit 0" test $? -eq 0
check "interrupted overwrite: the old final model is gone" test ! -e run/model.safetensors -a ! -e run/config.json
check "interrupted overwrite: the old summary is gone" test ! -e run/training_summary.json
check "interrupted overwrite: the new log has one step" test "$(grep -c '"loss"' run/train_log.jsonl)" -eq 1
mkdir -p notarun && cp model/config.json notarun/
"$BIN" train "${TRAIN[@]}" --output_dir notarun --overwrite_output_dir --max_steps 1 >ow2.out 2>&1
check "overwrite on a folder without a run: trains" test $? -eq 0

# ---- score --output: no temp file left ------------------------------------------
for i in $(seq 1 40); do echo "{\"text\": \"line $i of the input\"}"; done >many.jsonl
slow_score() { # slow_score SIGNAL: stops a score --output that is waiting for input
    rm -f scored.jsonl scored.jsonl.tmp.*
    (
        set -m # background jobs keep SIGINT (without job control bash ignores it for them)
        { cat many.jsonl; sleep 20; } | "$BIN" score --model model --output scored.jsonl 2>sig.err &
        pid=$!
        for _ in $(seq 100); do compgen -G 'scored.jsonl.tmp.*' >/dev/null && break; sleep 0.1; done
        sleep 0.3
        kill -s "$1" "$(pgrep -f -n "score --model model --output scored.jsonl")"
        wait $pid 2>/dev/null
        pkill -P $$ sleep 2>/dev/null
    )
}
for sig in TERM INT; do
    slow_score $sig
    check "SIG$sig: no temporary file left" test -z "$(compgen -G 'scored.jsonl.tmp.*')"
    check "SIG$sig: no output" test ! -e scored.jsonl
done
slow_score KILL
check "kill -9: the temporary file is left (it cannot be caught)" test -n "$(compgen -G 'scored.jsonl.tmp.*')"
"$BIN" score --model model --input one.jsonl --output scored.jsonl 2>next.err
check "the next run: exit 0" test $? -eq 0
check "the next run removes the leftover, with a note" grep -q "removed scored.jsonl.tmp.*interrupted" next.err
check "the next run: no temporary file" test -z "$(compgen -G 'scored.jsonl.tmp.*')"
mkdir -p outdir
"$BIN" score --model model --input many.jsonl --output outdir >/dev/null 2>dir.err
check "--output naming a folder: refused before scoring" grep -q "output outdir is a folder" dir.err
if [ -w /dev/full ]; then
    "$BIN" score --model model --input many.jsonl --batch_size 1 >/dev/full 2>full.err
    check "full disk: refused with the system's reason" grep -q "No space left on device" full.err
    check "full disk: stops at the first window" grep -q "after line 8:" full.err
fi

# ---- score: one object per line, no NUL -----------------------------------------
printf '%s\n' '{"text": "fine"}' '{"text": "a"} trailing' '{"text": "b"}{"text": "c"}' \
    '{"text": "cut\u0000here"}' '{"text": "also fine"}' >lines.jsonl
"$BIN" score --model model --input lines.jsonl >lines.out 2>lines.err
check "bad lines: exit 3" test $? -eq 3
check "trailing bytes: line 2 is an error" grep -q '^{"line":2,"error":"unexpected text after the JSON value' lines.out
check "two objects: line 3 is an error" grep -q '^{"line":3,"error":"unexpected text after' lines.out
check "\\u0000: line 4 is an error" grep -q '^{"line":4,"error":"a string holds \\\\u0000' lines.out
check "lines 1 and 5 scored" test "$(grep -c '"reward"' lines.out)" -eq 2

# ---- config.json: a duplicate key resolves as in Python (the last wins) ----------
cp -r model dup
sed -i '0,/{/s/{/{\n  "hidden_size": 4096,/' dup/config.json
"$BIN" score --model dup --input one.jsonl >dup.out 2>dup.err
check "hidden_size 4096 then the real one: loads with the real one" test $? -eq 0
"$BIN" score --model model --input one.jsonl >plain.out 2>/dev/null
check "and scores as the original" cmp dup.out plain.out

# ---- weights: NaN refused, a missing head refused -------------------------------
if have_python; then
    edit_weights() { # edit_weights DIR MODE: nan = a NaN into score.weight, drop = no score.weight
        python3 - "$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
path, mode = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop("__metadata__", None)
names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
out, blobs, at = {}, [], 0
for name in names:
    if mode == "drop" and name == "score.weight":
        continue
    b, e = header[name]["data_offsets"]
    blob = bytearray(data[b:e])
    if mode == "nan" and name == "score.weight": # the head: every reward reads it
        blob[0:4] = struct.pack("<f", float("nan"))
    out[name] = dict(header[name], data_offsets=[at, at + len(blob)])
    blobs.append(bytes(blob))
    at += len(blob)
if meta is not None:
    out["__metadata__"] = meta
text = json.dumps(out).encode()
open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
PY
    }
    cp -r model nan && edit_weights nan nan
    "$BIN" score --model nan --input one.jsonl >nan.out 2>nan.err
    check "NaN weight: score refuses (exit 1)" test $? -eq 1
    check "NaN weight: no nan printed" test -z "$(grep -i nan nan.out)"
    check "NaN weight: the tensor is named" grep -q "tensor score.weight holds a non-finite value (nan at index 0)" nan.err
    cp -r model nohead && edit_weights nohead drop
    "$BIN" score --model nohead --input one.jsonl >/dev/null 2>nohead.err
    check "no score.weight: score refuses" grep -q "has no score.weight" nohead.err
    printf '{"chosen": "a good one", "rejected": "bad"}\n' >pairs.jsonl
    "$BIN" eval --model nohead --pairs pairs.jsonl >/dev/null 2>nohead_eval.err
    check "no score.weight: eval refuses" grep -q "has no score.weight" nohead_eval.err
    "$BIN" train --model nohead --train_file train.jsonl --per_device_train_batch_size 2 --max_steps 1 \
        --output_dir nohead_run --quiet >/dev/null 2>&1
    check "no score.weight: train still creates the head" test -f nohead_run/model.safetensors
fi

# ---- prepare with nothing left: the drop counts say why ---------------------------
printf '%s\n' '{"chosen": "same", "rejected": "same"}' '{"chosen": "again", "rejected": "again"}' >ties.jsonl
"$BIN" prepare --from preferences --input ties.jsonl --output none.jsonl --report none.json >/dev/null 2>none.err
check "0 pairs: exit 1" test $? -eq 1
check "0 pairs: stderr gives the drop counts" grep -q "dropped: identical 2" none.err
check "0 pairs: the report is written" grep -q '"identical":.*2' none.json
check "0 pairs: no output file" test ! -e none.jsonl

cli_finish cli_hardening
