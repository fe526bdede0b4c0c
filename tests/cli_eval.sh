#!/usr/bin/env bash
# rewardc eval end to end on a tiny model trained a few steps on hand-made
# pairs. Pairs: the summary's counts and metrics agree with each other and
# with the per-pair rewards (recomputed here: accuracy, ties, margin, loss,
# length buckets, correlation), eval scores prompt+chosen / prompt+rejected
# exactly as `rewardc score` does, truncation is counted, the SVG is
# well-formed. Labelled texts: ROC AUC, average precision and the PR curve
# recomputed, --target_precision/--target_recall store the threshold in
# config.json keeping every other setting. Failures (missing model, a bad
# line, a bad label, two targets, an unreachable target) exit non-zero and
# write nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_eval
# json_has FILE KEY VALUE: the pretty-printed summary has "key":<tab>value
json_has() { grep -Eq "\"$2\":[[:space:]]*$3([,}]|\$)" "$1"; }
svg_ok() { # well-formed XML with an <svg> root
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys, xml.dom.minidom as m; sys.exit(m.parse(sys.argv[1]).documentElement.tagName != "svg")' "$1"
    else
        grep -q '<svg ' "$1" && tail -n 2 "$1" | grep -q '</svg>'
    fi
}
# py_checks ARGS... <<'PY' ... PY: runs the checks in the script (each calls
# check(condition, "what")), counting each one; skipped without python3.
PRELUDE='
import json, math, struct, sys
f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
def jsonl(path):
    return [json.loads(l) for l in open(path) if l.strip()]
def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
def pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)
def auc(score, label):
    pos = [s for s, y in zip(score, label) if y == 1]
    neg = [s for s, y in zip(score, label) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))
'
py_checks() {
    local body out
    body=$(cat)
    if ! command -v python3 >/dev/null 2>&1; then
        echo "python3 not found: skipped $(grep -c 'check(' <<<"$body") numeric checks"
        return
    fi
    out=$(python3 -c "$PRELUDE$body" "$@" 2>&1)
    local code=$?
    passed=$((passed + $(grep -c '^PASS ' <<<"$out")))
    failed=$((failed + $(grep -c '^FAIL ' <<<"$out")))
    grep '^FAIL ' <<<"$out" | sed 's/^/FAIL: /; s/FAIL: FAIL /FAIL: /' >&2
    if [ $code -ne 0 ]; then
        failed=$((failed + 1))
        echo "FAIL: python checks crashed:" >&2
        echo "$out" >&2
    fi
}

# ---- a tiny model, trained a few steps -----------------------------------------------
cat >train.jsonl <<'JSON'
{"prompt": "Review: ", "chosen": "a great film, I loved it", "rejected": "an awful film, I hated it"}
{"prompt": "Review: ", "chosen": "wonderful acting and a clever plot", "rejected": "terrible acting and a dull plot"}
{"prompt": "Q: how do I boil an egg?\nA: ", "chosen": "Put it in boiling water for eight minutes.", "rejected": "Go away."}
{"chosen": "Human: thanks!\n\nAssistant: You are welcome, glad to help.", "rejected": "Human: thanks!\n\nAssistant: Whatever."}
{"prompt": "Review: ", "chosen": "excellent", "rejected": "bad"}
{"prompt": "Review: ", "chosen": "the best thing I have seen this year", "rejected": "the worst thing I have seen this year"}
{"prompt": "Q: what is 2+2?\nA: ", "chosen": "4", "rejected": "5, obviously, and you should know that"}
{"chosen": "a kind and helpful answer", "rejected": "a rude answer"}
JSON
long_prompt=$(for i in $(seq 1 50); do printf 'this is sentence %d of a long story. ' "$i"; done)
long_response=$(for i in $(seq 1 50); do printf 'and then word %d ' "$i"; done)
cat >dev.jsonl <<JSON
{"prompt": "Review: ", "chosen": "a lovely film", "rejected": "a dreadful film"}
{"prompt": "Q: is the sky blue?\nA: ", "chosen": "Yes, on a clear day.", "rejected": "No.", "margin": 0.5}
{"chosen": "Human: hi\n\nAssistant: Hello! How can I help you today?", "rejected": "Human: hi\n\nAssistant: What."}
{"prompt": "$long_prompt Review: ", "chosen": "great", "rejected": "awful"}
{"prompt": "Review: ", "chosen": "fine", "rejected": "$long_response"}
{"prompt": "Review: ", "chosen": "brilliant and moving", "rejected": "boring"}
JSON

"$BIN" init --preset tiny --tokenizer "$DATA/tokenizers/opt" --out m --max_length 64 >init.log 2>&1
check "init: exit 0" test $? -eq 0
"$BIN" train --model m --train_file train.jsonl --eval_file dev.jsonl --output_dir t --max_steps 5 \
    --learning_rate 1e-3 --per_device_train_batch_size 4 --save_steps 0 --quiet >train.log 2>&1
check "train: exit 0" test $? -eq 0
check "train stored reward statistics" grep -q '"reward_mean"' t/config.json

# ---- pairs -----------------------------------------------------------------------------
"$BIN" eval --model t --pairs dev.jsonl --summary s.json --figure f.svg --rewards r.jsonl \
    --length_buckets 8,16 --batch_size 4 >out.txt 2>err.txt
check "pairs: exit 0" test $? -eq 0
check "pairs: stdout accuracy line" grep -q '^pairwise accuracy: ' out.txt
check "pairs: stdout reports truncation" grep -Eq '^truncation: [1-9][0-9]* of 12 sequences cut' out.txt
check "pairs: prompts computed once per pair, counted on stderr" \
    grep -qE '^rewardc eval: [1-9][0-9]* of [0-9]+ tokens were a beginning shared' err.txt
check "pairs: summary says 6 pairs" json_has s.json pairs 6
check "pairs: 6 reward lines" test "$(wc -l <r.jsonl | tr -d ' ')" -eq 6
check "pairs: figure is well-formed SVG" svg_ok f.svg
check "pairs: figure has both series" grep -q 'rejected' f.svg
check "pairs: no threshold line without a threshold" test "$(grep -c 'class="threshold"' f.svg)" -eq 0
py_checks s.json r.jsonl dev.jsonl <<'PY'
s = json.load(open(sys.argv[1]))
rows = jsonl(sys.argv[2])
pairs = jsonl(sys.argv[3])
n = s["pairs"]
check(n == len(pairs) == len(rows), "pairs count %d" % n)
check(s["correct"] + s["ties"] + s["wrong"] == n, "correct + ties + wrong == pairs")
check(s["accuracy"] + s["tie_rate"] <= 1.0, "accuracy + tie_rate <= 1")
check(close(s["accuracy"], s["correct"] / n), "accuracy == correct / pairs")
check([r["index"] for r in rows] == list(range(n)), "reward lines in input order")
c = [r["chosen_reward"] for r in rows]
j = [r["rejected_reward"] for r in rows]
check(s["correct"] == sum(a > b for a, b in zip(c, j)), "correct recomputed from the rewards")
check(s["ties"] == sum(a == b for a, b in zip(c, j)), "ties recomputed from the rewards")
check(close(s["mean_margin"], sum(a - b for a, b in zip(c, j)) / n), "mean margin recomputed")
margin = [p.get("margin", 0.0) for p in pairs]
loss = sum(math.log1p(math.exp(-(a - b - m))) for a, b, m in zip(c, j, margin)) / n
check(s["loss_uses_data_margins"] is True, "the loss uses the data's margins")
check(close(s["loss"], loss), "loss recomputed with margins (%g vs %g)" % (s["loss"], loss))
mean = sum(c) / n
std = math.sqrt(sum((x - mean) ** 2 for x in c) / n)
check(close(s["reward"]["chosen"]["mean"], mean) and close(s["reward"]["chosen"]["std"], std),
      "chosen reward mean/std recomputed")
t = s["truncation"]
check(t["sequences"] == 2 * n and t["max_length"] == 64, "truncation: 12 sequences, max_length 64")
check(t["prompt_truncated"] == 2, "truncation: the long prompt was cut twice")
check(t["response_truncated"] == 1, "truncation: the long response was cut once")
check(t["longest_tokens"] > 64, "truncation: the longest sequence before cutting is > 64")
tokens_c = [r["chosen_tokens"] for r in rows]
tokens_r = [r["rejected_tokens"] for r in rows]
check(max(tokens_c + tokens_r) == 64, "no scored sequence is longer than max_length")
b = s["length_bias"]
longer = [max(x, y) for x, y in zip(tokens_c, tokens_r)]
edges = [(None, 8), (8, 16), (16, None)]
buckets = b["accuracy_by_length"]
check(len(buckets) == 3, "3 length buckets for edges 8,16")
for k, (lo, hi) in zip(buckets, edges):
    inside = [i for i in range(n) if (lo is None or longer[i] >= lo) and (hi is None or longer[i] < hi)]
    right = sum(c[i] > j[i] for i in inside)
    check(k["min_tokens"] == lo and k["below_tokens"] == hi and k["pairs"] == len(inside)
          and k["correct"] == right, "bucket [%s, %s): %d pairs, %d correct" % (lo, hi, len(inside), right))
check(sum(k["pairs"] for k in buckets) == n, "buckets hold every pair")
r = pearson(c + j, tokens_c + tokens_r)
check(close(b["reward_length_correlation"], r, 1e-5), "reward-length correlation recomputed (%g)" % r)
differing = [i for i in range(n) if tokens_c[i] != tokens_r[i]]
prefers = sum((c[i] > j[i]) == (tokens_c[i] > tokens_r[i]) and c[i] != j[i] for i in differing)
check(b["chosen_longer"] + b["rejected_longer"] + b["same_length"] == n, "length comparison counts add up")
check(close(b["model_prefers_longer_rate"], prefers / len(differing)), "model_prefers_longer_rate recomputed")
check("threshold" not in s, "no threshold section without a threshold")
PY

# eval scores prompt+chosen and prompt+rejected as `rewardc score` does: the
# same sequences (a pair's two side by side, sharing their prompt's row) give
# the same rewards up to float rounding.
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
pairs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for p in pairs:
    for side in ("chosen", "rejected"):
        print(json.dumps({"prompt": p.get("prompt", ""), "response": p[side]}))' dev.jsonl >as_score.jsonl
    "$BIN" score --model t --input as_score.jsonl --batch_size 4 >scored.jsonl 2>/dev/null
    check "score of the same texts: exit 0" test $? -eq 0
    py_checks scored.jsonl r.jsonl <<'PY'
scored = [x["reward"] for x in jsonl(sys.argv[1])]
rows = jsonl(sys.argv[2])
ev = [r[k] for r in rows for k in ("chosen_reward", "rejected_reward")]
# 5e-6 relative: far above the float rounding that rows and batches change (~1e-7)
bad = [i for i, (a, b) in enumerate(zip(scored, ev)) if abs(a - b) > 5e-6 * abs(b) + 1e-12]
check(len(scored) == len(ev) and not bad, "score's rewards == eval's rewards (mismatch at %s)" % bad)
PY
fi

# rewards do not depend on the batch beyond float rounding
"$BIN" eval --model t --pairs dev.jsonl --rewards r1.jsonl --batch_size 1 >/dev/null 2>&1
check "batch size 1: exit 0" test $? -eq 0
py_checks r.jsonl r1.jsonl <<'PY'
a, b = jsonl(sys.argv[1]), jsonl(sys.argv[2])
worst = max(abs(x[k] - y[k]) / max(1.0, abs(x[k])) for x, y in zip(a, b) for k in ("chosen_reward", "rejected_reward"))
check(len(a) == len(b) and worst <= 1e-5, "batch size 1 vs 4: rewards agree to float rounding (%g)" % worst)
PY

"$BIN" eval --model t --pairs dev.jsonl --threshold 0 --figure ft.svg --summary st.json --max_pairs 4 >/dev/null 2>&1
check "pairs --threshold --max_pairs: exit 0" test $? -eq 0
check "--max_pairs 4: 4 pairs" json_has st.json pairs 4
check "--threshold: line in the figure" test "$(grep -c 'class="threshold"' ft.svg)" -eq 1
check "--threshold: figure well-formed" svg_ok ft.svg
check "--threshold: source in the summary" grep -q '"source":[[:space:]]*"--threshold"' st.json
"$BIN" eval --model t --pairs dev.jsonl --summary sd.json >/dev/null 2>&1
py_checks sd.json <<'PY'
s = json.load(open(sys.argv[1]))
edges = [(k["min_tokens"], k["below_tokens"]) for k in s["length_bias"]["accuracy_by_length"]]
check(edges == [(None, 8), (8, 16), (16, 32), (32, None)], "default buckets: max_length/8, /4, /2")
PY

# ---- pairs: failures write nothing -------------------------------------------------------
echo old >keep.json
"$BIN" eval --model no-such-model --pairs dev.jsonl --summary keep.json --figure nf.svg 2>fail.txt
check "missing model: exit 1" test $? -eq 1
check "missing model: message" grep -q "model folder 'no-such-model' does not exist" fail.txt
check "missing model: summary untouched" test "$(cat keep.json)" = old
check "missing model: no figure" test ! -e nf.svg
sed -n 1,2p dev.jsonl >bad.jsonl
echo '{"prompt": "Review: ", "chosen": "ok"}' >>bad.jsonl
sed -n 3p dev.jsonl >>bad.jsonl
"$BIN" eval --model t --pairs bad.jsonl --summary keep.json --figure nf.svg --rewards nr.jsonl 2>fail.txt
check "bad pair line: exit 1" test $? -eq 1
check "bad pair line: names line 3" grep -q 'bad.jsonl:3: missing field "rejected"' fail.txt
check "bad pair line: summary untouched" test "$(cat keep.json)" = old
check "bad pair line: no figure, no rewards" test ! -e nf.svg -a ! -e nr.jsonl
"$BIN" eval --model t --pairs no-such-file.jsonl 2>/dev/null
check "missing pairs file: exit 1" test $? -eq 1
usage_error() { # usage_error "what" ARGS...: exit 2
    local what=$1
    shift
    "$BIN" eval "$@" >/dev/null 2>&1
    check "usage: $what exits 2" test $? -eq 2
}
# ---- a threshold chosen on pairs: chosen responses acceptable, rejected not --------
cp -r t t_pairs_threshold
"$BIN" eval --model t_pairs_threshold --pairs dev.jsonl --target_precision 0.6 --summary spt.json >spt.txt 2>&1
check "pairs + --target_precision: exit 0" test $? -eq 0
check "pairs + --target_precision: threshold saved" grep -q "threshold saved" spt.txt
if command -v python3 >/dev/null 2>&1; then
    python3 - t_pairs_threshold/config.json spt.json <<'PY'
import json, sys
saved = json.load(open(sys.argv[1]))["rewardc"]["threshold"]
t = json.load(open(sys.argv[2]))["threshold"]
n = json.load(open(sys.argv[2]))["pairs"]
chosen, rejected = t["chosen_accepted_rate"] * n, t["rejected_accepted_rate"] * n
ok = abs(saved - t["value"]) < 1e-9 and t["source"] == "--target_precision"
ok = ok and (chosen + rejected == 0 or chosen / (chosen + rejected) >= 0.6 - 1e-9)
print("saved %g, summary %g, precision %s" % (saved, t["value"],
      "n/a" if chosen + rejected == 0 else "%.3f" % (chosen / (chosen + rejected))))
sys.exit(0 if ok else 1)
PY
    check "pairs + --target_precision: the saved threshold reaches the precision on the pairs" test $? -eq 0
fi

# a model trained on from a gated folder does not inherit the old weights' threshold
"$BIN" train --model t_pairs_threshold --train_file dev.jsonl --output_dir t_retrained \
    --num_train_epochs 1 --save_steps 0 --quiet >retrain.txt 2>&1
check "retrain from a gated folder: exit 0" test $? -eq 0
check "retrain: says the threshold is not carried over" grep -q "not carried over" retrain.txt
check "retrain: the new folder has no threshold" \
    bash -c '! grep -q "\"threshold\"" t_retrained/config.json'

usage_error "no --model" --pairs dev.jsonl
usage_error "no data" --model t
usage_error "--pairs and --labeled" --model t --pairs dev.jsonl --labeled dev.jsonl
usage_error "--target_precision 1.5" --model t --labeled dev.jsonl --target_precision 1.5
usage_error "decreasing buckets" --model t --pairs dev.jsonl --length_buckets 16,8
usage_error "--text_field with --pairs" --model t --pairs dev.jsonl --text_field body
usage_error "unknown option" --model t --pairs dev.jsonl --bogus
check "no temporary files left" test -z "$(ls -a | grep -E '^(keep\.json|nf\.svg|nr\.jsonl).+')"

# ---- labelled texts ----------------------------------------------------------------------
cat >labeled.jsonl <<'JSON'
{"text": "Review: a great film, I loved it", "label": 1}
{"text": "Review: an awful film, I hated it", "label": 0}
{"text": "Review: wonderful acting", "label": 1}
{"text": "Review: terrible acting", "label": 0}
{"text": "Review: excellent", "label": 1}
{"text": "Review: bad", "label": 0}
{"text": "a kind and helpful answer", "label": true}
{"text": "a rude answer", "label": false}
{"text": "Review: nice enough", "label": 0}
{"text": "Review: boring but fine", "label": 1}
{"text": "Review: the best thing I have seen this year", "label": 1}
{"text": "Review: the worst thing I have seen this year", "label": 0}
JSON
cp -r t g
cp g/config.json config.before
"$BIN" eval --model g --labeled labeled.jsonl --target_precision 0.75 --batch_size 4 \
    --summary ls.json --figure lf.svg --rewards lr.jsonl >lout.txt 2>lerr.txt
check "labeled --target_precision: exit 0" test $? -eq 0
check "labeled: stdout ROC AUC" grep -q '^ROC AUC: ' lout.txt
check "labeled: stdout says the threshold was saved" grep -q 'threshold saved to g/config.json' lout.txt
check "labeled: figure well-formed" svg_ok lf.svg
check "labeled: threshold line in the figure" test "$(grep -c 'class="threshold"' lf.svg)" -eq 1
py_checks ls.json lr.jsonl labeled.jsonl g/config.json config.before <<'PY'
s = json.load(open(sys.argv[1]))
rows = jsonl(sys.argv[2])
labels = [int(x["label"]) for x in jsonl(sys.argv[3])]
config, before = json.load(open(sys.argv[4])), json.load(open(sys.argv[5]))
score = [r["reward"] for r in rows]
check(s["texts"] == 12 and s["acceptable"] == 6 and s["not_acceptable"] == 6, "texts 12 = 6 + 6")
check([r["label"] for r in rows] == labels, "reward lines in input order with their labels")
check(close(s["roc_auc"], auc(score, labels)), "ROC AUC recomputed (%g)" % auc(score, labels))
tokens = [float(r["tokens"]) for r in rows]
check(close(s["length_bias"]["length_only_roc_auc"], auc(tokens, labels)), "length-only AUC recomputed")
check(close(s["length_bias"]["reward_length_correlation"], pearson(score, tokens), 1e-5),
      "reward-length correlation recomputed")
curve = s["precision_recall_curve"]
distinct = sorted(set(f32(x) for x in score), reverse=True)
check(len(curve) == len(distinct), "one curve point per distinct reward")
ok = True
ap, last_recall = 0.0, 0.0
for p, t in zip(curve, distinct):
    tp = sum(1 for x, y in zip(score, labels) if f32(x) >= t and y == 1)
    fp = sum(1 for x, y in zip(score, labels) if f32(x) >= t and y == 0)
    ok &= f32(p["threshold"]) == t and p["tp"] == tp and p["fp"] == fp
    ok &= close(p["precision"], tp / (tp + fp)) and close(p["recall"], tp / 6)
    ap += (tp / 6 - last_recall) * tp / (tp + fp)
    last_recall = tp / 6
check(ok, "every curve point recomputed from the rewards")
check(curve[-1]["recall"] == 1, "the curve ends at recall 1")
check(close(s["average_precision"], ap), "average precision recomputed")
th = s["threshold"]
t = f32(th["value"])
qualifying = [p for p in distinct if sum(1 for x, y in zip(score, labels) if f32(x) >= p and y == 1)
              >= 0.75 * sum(1 for x in score if f32(x) >= p)]
check(th["source"] == "--target_precision" and th["saved_to_model"] is True, "threshold source and saved flag")
rewards32 = set(f32(x) for x in score)
check(all((f32(x) >= t) == (f32(x) >= min(qualifying)) for x in score) and t not in rewards32,
      "accepts exactly the rewards >= the lowest point with precision >= 0.75, sitting on none")
lower = [x for x in distinct if x < min(qualifying)]
check(not lower or t == f32((min(qualifying) + max(lower)) / 2), "halfway to the next lower reward")
accepted = [y for x, y in zip(score, labels) if f32(x) >= t]
check(th["tp"] == sum(accepted) and th["fp"] == len(accepted) - sum(accepted), "tp/fp at the threshold")
check(th["precision"] >= 0.75, "precision at the threshold >= 0.75")
check(config["rewardc"]["threshold"] == th["value"], "config.json holds the summary's threshold")
del config["rewardc"]["threshold"]
before["rewardc"].pop("threshold", None)
check(config == before, "every other config.json setting kept (encode policy, reward mean/std, ...)")
PY

cp g/config.json config.gated
# the batches of the run that wrote lr.jsonl, so the rewards are the same floats
"$BIN" eval --model g --labeled labeled.jsonl --target_recall 1 --batch_size 4 --summary lr1.json >/dev/null 2>&1
check "--target_recall 1: exit 0" test $? -eq 0
check "--target_recall 1: no false negatives" json_has lr1.json fn 0
check "--target_recall 1: recall 1" json_has lr1.json recall 1
py_checks lr1.json lr.jsonl g/config.json <<'PY'
s = json.load(open(sys.argv[1]))
rows = jsonl(sys.argv[2])
lowest_positive = min(f32(r["reward"]) for r in rows if r["label"] == 1)
t = f32(s["threshold"]["value"])
below = [f32(r["reward"]) for r in rows if f32(r["reward"]) < lowest_positive]
check(t < lowest_positive and all(x < t for x in below),
      "recall 1: the threshold lies between the lowest positive reward and the rewards below it")
check(json.load(open(sys.argv[3]))["rewardc"]["threshold"] == s["threshold"]["value"], "recall threshold saved")
PY
cp g/config.json config.gated
"$BIN" eval --model g --labeled labeled.jsonl --summary lf.json >/dev/null 2>&1
check "labeled, folder threshold: exit 0" test $? -eq 0
check "labeled, folder threshold: source" grep -q '"source":[[:space:]]*"model folder"' lf.json
check "labeled, folder threshold: not saved" json_has lf.json saved_to_model false
"$BIN" eval --model g --labeled labeled.jsonl --threshold 0.25 --summary lt.json >/dev/null 2>&1
check "labeled --threshold: exit 0" test $? -eq 0
check "labeled --threshold: reported" json_has lt.json value 0.25
check "evaluating without a target leaves config.json alone" cmp -s g/config.json config.gated
sed 's/"text"/"body"/; s/"label"/"ok"/' labeled.jsonl >fields.jsonl
"$BIN" eval --model g --labeled fields.jsonl --text_field body --label_field ok --summary lfld.json >/dev/null 2>&1
check "--text_field/--label_field: exit 0" test $? -eq 0
check "--text_field/--label_field: 12 texts" json_has lfld.json texts 12

# ---- labelled texts: failures write nothing ---------------------------------------------------
sed -n 1,3p labeled.jsonl >badlabel.jsonl
echo '{"text": "meh", "label": 2}' >>badlabel.jsonl
"$BIN" eval --model g --labeled badlabel.jsonl --target_precision 0.5 --summary keep.json 2>fail.txt
check "label 2: exit 1" test $? -eq 1
check "label 2: names line 4" grep -q 'badlabel.jsonl:4: label field "label" must be 0/1' fail.txt
check "label 2: summary untouched" test "$(cat keep.json)" = old
check "label 2: config.json untouched" cmp -s g/config.json config.gated
"$BIN" eval --model g --labeled labeled.jsonl --target_precision 0.9 --target_recall 0.9 2>fail.txt
check "two targets: exit 2" test $? -eq 2
check "two targets: message" grep -q 'not both' fail.txt
# Every text twice, once acceptable and once not: one sequence per batch makes
# the twins' rewards identical, so precision is 0.5 at every threshold.
sed 's/"label": 1/"label": X/; s/"label": true/"label": X/; s/"label": 0/"label": 1/;
     s/"label": false/"label": 1/; s/"label": X/"label": 0/' labeled.jsonl >flipped.jsonl
cat labeled.jsonl flipped.jsonl >twins.jsonl
"$BIN" eval --model g --labeled twins.jsonl --target_precision 0.9 --batch_size 1 \
    --summary keep.json --figure nf.svg --rewards nr.jsonl 2>fail.txt
check "unreachable precision: exit 1" test $? -eq 1
check "unreachable precision: message" grep -q 'no threshold reaches precision 0.9: the best is 0.5000' fail.txt
check "unreachable precision: config.json untouched" cmp -s g/config.json config.gated
check "unreachable precision: summary untouched" test "$(cat keep.json)" = old
check "unreachable precision: no figure, no rewards" test ! -e nf.svg -a ! -e nr.jsonl
grep '"label": 1' labeled.jsonl >onlypos.jsonl
"$BIN" eval --model g --labeled onlypos.jsonl 2>fail.txt
check "one class only: exit 1" test $? -eq 1
check "no temporary files left (labelled)" test -z "$(ls -a | grep -E '^(keep\.json|nf\.svg|nr\.jsonl).+')"
check "no temporary files left in the model folder" test -z "$(ls -a g | grep -E '^config\.json.+')"

cli_finish cli_eval
