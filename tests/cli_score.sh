#!/usr/bin/env bash
# rewardc score end to end on a tiny randomly initialised model: output in
# input order with line numbers and ids, bad lines reported with their number
# while the rest is scored (exit 3), truncation counted, decisions that follow
# the threshold (given or stored in the model folder by rewardc eval), rewards
# equal to those rewardc eval computes, texts sharing a beginning (responses to
# one prompt) scoring as they do apart, atomic --output, clean failures.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_score
have_python() { command -v python3 >/dev/null 2>&1; }
# field FILE KEY: the values of "KEY": in a JSONL file, one per line ("-" where absent)
field() {
    sed -E "s/.*\"$2\": ?(\"[^\"]*\"|[^,}]*).*/\\1/; t; s/.*/-/" "$1"
}

"$BIN" init --preset tiny --tokenizer "$DATA/tokenizers/opt" --out m --max_length 64 >init.log 2>&1
check "init: exit 0" test $? -eq 0

long_text=$(for i in $(seq 1 60); do printf 'word%d and ' "$i"; done)
# line 3 is blank, 5 is not JSON, 6 has an empty response, 7 is too long
cat >in.jsonl <<JSON
{"id": "a", "prompt": "Review: ", "response": "a great film"}
{"id": 7, "text": "Review: a great film"}

{"id": "c", "text": "an awful film"}
this is not json
{"id": "d", "response": ""}
{"id": "e", "text": "$long_text"}
{"id": "f", "prompt": "Q: ", "response": "a kind and helpful answer"}
{"text": "a rude answer"}
JSON

# ---- order, line numbers, bad lines ------------------------------------------------
"$BIN" score --model m --input in.jsonl --batch_size 2 >out.jsonl 2>err.txt
code=$?
check "bad lines: exit 3" test $code -eq 3
check "one output line per non-blank input line" test "$(wc -l <out.jsonl | tr -d ' ')" -eq 8
check "line numbers in input order" test "$(field out.jsonl line | tr '\n' ' ')" = "1 2 4 5 6 7 8 9 "
check "ids kept in order" test "$(field out.jsonl id | tr '\n' ' ')" = '"a" 7 "c" - - "e" "f" - '
check "line 5 reported as an error" grep -q '^{"line":5,"error":"not a JSON object"}$' out.jsonl
check "line 6 reported as an error" grep -q '^{"line":6,"error":"\\"response\\" is empty"}$' out.jsonl
check "stderr names line 5" grep -q "in.jsonl line 5: not a JSON object" err.txt
check "stderr names line 6" grep -q "in.jsonl line 6:" err.txt
check "the other 6 lines scored" test "$(grep -c '"reward": ' out.jsonl)" -eq 6
check "stderr count: 6 scored, 2 bad, 1 truncated" \
    grep -q "6 lines scored, 2 bad, 1 truncated to max_length" err.txt
check "no decisions without a threshold" test "$(grep -c '"decision"' out.jsonl)" -eq 0
check "normalized is null without reward statistics" test "$(grep -c '"normalized": null' out.jsonl)" -eq 6
check "the truncated line says so" grep -q '"line": 7,.*"truncated": true' out.jsonl
check "only the truncated line says so" test "$(grep -c '"truncated": true' out.jsonl)" -eq 1

# prompt + response is scored as the concatenated text (the same ids). One
# sequence per batch: rows of one batch may differ in the last float bits.
head -2 in.jsonl >two.jsonl
"$BIN" score --model m --input two.jsonl --batch_size 1 >two_out.jsonl 2>/dev/null
r1=$(sed -n 1p two_out.jsonl | field /dev/stdin reward)
r2=$(sed -n 2p two_out.jsonl | field /dev/stdin reward)
check "prompt+response == text ($r1 vs $r2)" test "$r1" = "$r2"

# ---- batches by length: texts of mixed lengths, rewards back in input order ----------------
for i in $(seq 1 11); do
    printf '{"id": %d, "text": "%s"}\n' "$i" "$(printf 'word%.0s ' $(seq 1 $(( (i * 7) % 23 + 1 ))))"
done >mixed.jsonl
"$BIN" score --model m --input mixed.jsonl --batch_size 1 >alone.jsonl 2>/dev/null
check "mixed lengths, one per batch: exit 0" test $? -eq 0
"$BIN" score --model m --input mixed.jsonl --batch_size 4 >sorted.jsonl 2>/dev/null
check "mixed lengths, batches of 4: exit 0" test $? -eq 0
check "batches of 4: ids in input order" test "$(field sorted.jsonl id | tr '\n' ' ')" = "$(seq 1 11 | tr '\n' ' ')"
# padding and batch order change only float rounding
check "batches of 4: each reward as scored alone (1e-5)" awk 'NR == FNR { a[FNR] = $0; next }
    { d = a[FNR] - $0; if (d > 1e-5 || d < -1e-5) bad++ } END { exit bad > 0 || FNR != 11 }' \
    <(field alone.jsonl reward) <(field sorted.jsonl reward)

# ---- shared beginnings: responses to one prompt compute the prompt once ----------------
prompt="Question: which of these films would you recommend to a friend who likes quiet dramas?"
for r in "the first one" "neither, honestly" "the second, for its acting and its score" \
         "the first: slow but moving" "I would not recommend either of them"; do
    printf '{"prompt": "%s ", "response": "%s"}\n' "$prompt" "$r"
done >best_of.jsonl
cat mixed.jsonl >>best_of.jsonl
"$BIN" score --model m --input best_of.jsonl --batch_size 4 >shared.jsonl 2>shared_err.txt
check "shared beginnings: exit 0" test $? -eq 0
check "shared beginnings: counted on stderr" \
    grep -qE "^rewardc score: [1-9][0-9]* of [0-9]+ tokens were a beginning shared" shared_err.txt
"$BIN" score --model m --input best_of.jsonl --batch_size 4 --share_prefix false \
    >unshared.jsonl 2>unshared_err.txt
check "--share_prefix false: exit 0" test $? -eq 0
check "--share_prefix false: nothing shared" test "$(grep -c "shared" unshared_err.txt)" -eq 0
check "shared beginnings: the same lines" test "$(field shared.jsonl line)" = "$(field unshared.jsonl line)"
check "shared beginnings: each reward as without sharing (1e-5)" awk 'NR == FNR { a[FNR] = $0; next }
    { d = a[FNR] - $0; if (d > 1e-5 || d < -1e-5) bad++ } END { exit bad > 0 || FNR != 16 }' \
    <(field shared.jsonl reward) <(field unshared.jsonl reward)
"$BIN" score --model m --input best_of.jsonl --share_prefix maybe 2>bad_flag.txt
check "--share_prefix maybe: exit 2" test $? -eq 2
check "--share_prefix maybe: named" grep -q "share_prefix: 'maybe' is not true/false" bad_flag.txt

# ---- --output: atomic, the same content -------------------------------------------------
"$BIN" score --model m --input in.jsonl --batch_size 2 --output o.jsonl 2>/dev/null
check "--output with bad lines: exit 3" test $? -eq 3
check "--output holds what stdout had" cmp -s o.jsonl out.jsonl
echo old >kept.jsonl
"$BIN" score --model no-such-model --input in.jsonl --output kept.jsonl 2>fail.txt
check "missing model: exit 1" test $? -eq 1
check "missing model: message names it" grep -q "no-such-model" fail.txt
check "missing model: --output untouched" test "$(cat kept.jsonl)" = old
"$BIN" score --model no-such-model --input in.jsonl --output new.jsonl 2>/dev/null
check "missing model: no --output file" test ! -e new.jsonl
"$BIN" score --model m --input no-such-input.jsonl --output new.jsonl 2>fail.txt
check "missing input: exit 1" test $? -eq 1
check "missing input: no --output file" test ! -e new.jsonl
"$BIN" score --model m --input in.jsonl --output no-such-dir/o.jsonl 2>/dev/null
check "output in a missing folder: exit 1" test $? -eq 1
check "no temporary files left" test -z "$(ls -a | grep -E '^(o|kept|new)\.jsonl.+')"
"$BIN" score --model m --bogus 2>/dev/null
check "unknown option: exit 2" test $? -eq 2
"$BIN" score --input in.jsonl 2>/dev/null
check "no --model: exit 2" test $? -eq 2

# ---- --threshold: decisions follow reward >= threshold ------------------------------------
# A threshold halfway between two neighbouring printed rewards, so that the
# six-digit rounding of the printed values cannot blur the comparison.
threshold=$(field out.jsonl reward | grep -v '^-$' | sort -g | awk '{v[NR] = $1} END {printf "%.9g", (v[3] + v[4]) / 2}')
"$BIN" score --model m --input in.jsonl --batch_size 2 --threshold "$threshold" >t.jsonl 2>/dev/null
check "--threshold: exit 3 (bad lines)" test $? -eq 3
check "--threshold: the same rewards" test "$(field t.jsonl reward)" = "$(field out.jsonl reward)"
bad_decisions=$(paste -d' ' <(field t.jsonl reward) <(field t.jsonl decision) | awk -v t="$threshold" '
    $1 == "-" { if ($2 != "-") bad++; next }
    { want = ($1 + 0 >= t + 0) ? "\"accept\"" : "\"block\""; if ($2 != want) bad++ }
    END { print bad + 0 }')
check "--threshold $threshold: accept <=> reward >= threshold" test "$bad_decisions" -eq 0
check "--threshold: 3 accepted" test "$(grep -c '"decision": "accept"' t.jsonl)" -eq 3
check "--threshold: 3 blocked" test "$(grep -c '"decision": "block"' t.jsonl)" -eq 3

# ---- the folder's threshold (set by eval) and eval's rewards -------------------------
cat >labeled.jsonl <<'JSON'
{"text": "a great film, I loved it", "label": 1}
{"text": "an awful film, I hated it", "label": 0}
{"text": "wonderful acting", "label": 1}
{"text": "terrible acting", "label": 0}
{"text": "excellent", "label": 1}
{"text": "bad", "label": 0}
{"text": "a good and kind answer", "label": 1}
{"text": "a rude answer", "label": 0}
{"text": "nice enough", "label": 0}
{"text": "boring but fine", "label": 1}
{"text": "the best thing I have seen this year", "label": 1}
{"text": "the worst thing I have seen this year", "label": 0}
JSON
"$BIN" eval --model m --labeled labeled.jsonl --target_recall 0.6 --batch_size 4 \
    --summary eval.json --rewards eval_rewards.jsonl >eval.txt 2>&1
check "eval --target_recall: exit 0" test $? -eq 0
check "eval stored a threshold" grep -q '"threshold":' m/config.json
"$BIN" score --model m --input labeled.jsonl --batch_size 4 >gate.jsonl 2>gate.err
check "score with the folder's threshold: exit 0" test $? -eq 0
check "a decision on every line" test "$(grep -c '"decision"' gate.jsonl)" -eq 12
"$BIN" score --model m --input labeled.jsonl --batch_size 4 --threshold 1e9 >high.jsonl 2>/dev/null
check "--threshold overrides the folder's" test "$(grep -c '"decision": "block"' high.jsonl)" -eq 12

if have_python; then
    python3 - labeled.jsonl gate.jsonl eval_rewards.jsonl eval.json m/config.json <<'PY'
import json, struct, sys
f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
labeled, gate, rewards, summary, config = sys.argv[1:]
labels = [json.loads(l)["label"] for l in open(labeled) if l.strip()]
gate = [json.loads(l) for l in open(gate)]
ev = [json.loads(l) for l in open(rewards)]
summary = json.load(open(summary))
threshold = json.load(open(config))["rewardc"]["threshold"]
fails = []
if [g["line"] for g in gate] != list(range(1, 13)): fails.append("score lines out of order")
if summary["threshold"]["value"] != threshold: fails.append("summary threshold != config threshold")
# same batches in eval and score (batch size 4, same order): identical rewards,
# printed by score to 6 significant digits (half a unit in the 6th digit)
for g, e in zip(gate, ev):
    if abs(g["reward"] - e["reward"]) > 5e-6 * abs(e["reward"]) + 1e-12:
        fails.append("line %d: score %r, eval %r" % (g["line"], g["reward"], e["reward"]))
    # eval's 9 digits give back its float exactly: decide the way score must
    want = "accept" if f32(e["reward"]) >= f32(threshold) else "block"
    if g["decision"] != want: fails.append("line %d: %s, want %s" % (g["line"], g["decision"], want))
tp = sum(1 for g, y in zip(gate, labels) if g["decision"] == "accept" and y == 1)
fp = sum(1 for g, y in zip(gate, labels) if g["decision"] == "accept" and y == 0)
t = summary["threshold"]
if (tp, fp) != (t["tp"], t["fp"]): fails.append("score tp/fp %d/%d, eval %d/%d" % (tp, fp, t["tp"], t["fp"]))
if tp / 6 < 0.6: fails.append("recall %.3f below the 0.6 target" % (tp / 6))
for m in fails: print("  " + m)
sys.exit(1 if fails else 0)
PY
    check "score follows the folder's threshold and equals eval's rewards" test $? -eq 0
else
    echo "python3 not found: skipped the numeric comparison with eval"
fi

# ---- a model trained on conversations scores them rendered, as it trained ----------
# a tiny Llama with SmolLM2's ChatML template; its pairs are message lists
chat_tok=$ROOT/golden/tokenizer/families/tiny_smollm
"$BIN" init --preset tiny-llama --tokenizer "$chat_tok" --out chat0 --max_length 64 >chat_init.log 2>&1
check "chat model: init exit 0" test $? -eq 0
if have_python; then
    python3 - "$ROOT/golden/chat_template/templates.json" chat0/tokenizer_config.json <<'PY'
import json, sys
templates = json.load(open(sys.argv[1]))
config = json.load(open(sys.argv[2]))
config["chat_template"] = templates["smollm2"]["template"]
json.dump(config, open(sys.argv[2], "w"))
PY
    cat >chat_pairs.jsonl <<'JSON'
{"prompt": [{"role": "user", "content": "Say hi"}], "chosen": [{"role": "assistant", "content": "hi there"}], "rejected": [{"role": "assistant", "content": "go away"}]}
{"prompt": [{"role": "user", "content": "A fact?"}], "chosen": [{"role": "assistant", "content": "water is wet"}], "rejected": [{"role": "assistant", "content": "no"}]}
JSON
    "$BIN" train --model chat0 --train_file chat_pairs.jsonl --output_dir chatrun --num_train_epochs 1 \
        --per_device_train_batch_size 2 --save_steps 0 --quiet >chat_train.log 2>&1
    check "chat model: train exit 0" test $? -eq 0
    check "chat model: the folder says its texts are conversations" grep -Eq '"chat_template":[[:space:]]*true' chatrun/config.json
    # the same exchange three ways: prompt/response, messages, and the text the template renders
    python3 - chatrun <<'PY' >chat_in.jsonl
import json, sys
print(json.dumps({"prompt": "Say hi", "response": "hello friend"}))
print(json.dumps({"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hello friend"}]}))
PY
    "$BIN" score --model chatrun --input chat_in.jsonl >chat_out.jsonl 2>chat_err.txt
    check "chat model: score exit 0" test $? -eq 0
    check "chat model: prompt/response and messages give one reward" \
        test "$(field chat_out.jsonl reward | sort -u | wc -l | tr -d ' ')" -eq 1
    echo '{"messages": [{"role": "user", "content": "no reply"}]}' >chat_bad.jsonl
    "$BIN" score --model chatrun --input chat_bad.jsonl >chat_bad_out.jsonl 2>&1
    check "chat model: a conversation without the reply is a line error (exit 3)" test $? -eq 3
    check "chat model: the error says why" grep -q "must end with the assistant" chat_bad_out.jsonl
    # a model trained on plain text reads a conversation as the HH-RLHF transcript
    printf '%s\n' '{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}' \
        '{"prompt": "\n\nHuman: Hi?\n\nAssistant:", "response": " Hello."}' >plain_msgs.jsonl
    "$BIN" score --model m --input plain_msgs.jsonl >plain_msgs_out.jsonl 2>plain_msgs_err.txt
    check "plain model: messages score as their HH-RLHF transcript" \
        test "$(field plain_msgs_out.jsonl reward | sort -u | wc -l | tr -d ' ')" -eq 1
else
    echo "python3 not found: skipped the chat-model checks"
fi

cli_finish cli_score
