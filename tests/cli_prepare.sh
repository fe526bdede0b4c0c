#!/usr/bin/env bash
# rewardc prepare end to end: small files made here (rankings, preferences,
# labelled JSONL, gzip), bad input failing with its line number and writing
# nothing, usage errors, and, when the shared data is present, the IMDB
# subset recipe and the HH-RLHF dev pairs.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
BIN=${REWARDC_BIN:?REWARDC_BIN must point at the rewardc CLI}
DATA=${REWARDC_DATA:-../shared/data}
WORK=${REWARDC_TMP:-/tmp/rewardc-test}/cli_prepare
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

lines() { wc -l <"$1" | tr -d ' '; }
# json_count FILE KEY VALUE: the pretty-printed report has "key":<tab>value
json_count() { grep -Eq "\"$2\":[[:space:]]*$3([,}]|\$)" "$1"; }

# ---- rankings ----------------------------------------------------------------
cat >rankings.jsonl <<'JSON'
{"prompt": "Q1", "responses": ["a", "b", "c"], "rankings": [[1, 3, 2], [2, 1, 3]]}
{"prompt": "Q2", "responses": ["x", "y"], "rankings": [[1, 2], [2, 1]]}

{"prompt": "Q3", "responses": ["only"], "rankings": [[1]]}
JSON
# Q1 mean ranks a 1.5, b 2, c 2.5 -> 3 pairs; Q2 is a tie; Q3 has one response.
"$BIN" prepare --from rankings --input rankings.jsonl --output r.jsonl --report r.json \
    --margin_from_rank_gap --weight_per_prompt 2>r.err
check "rankings: exit 0" test $? -eq 0
check "rankings: 3 pairs" test "$(lines r.jsonl)" -eq 3
check "rankings: report records_read 3" json_count r.json records_read 3
check "rankings: report tie 1" json_count r.json tie 1
check "rankings: report single_response 1" json_count r.json single_response 1
check "rankings: stderr report" grep -q "read 3 records, wrote 3 pairs" r.err
check "rankings: a>b margin 0.5 weight 1/3" \
    grep -q '{"prompt":"Q1","chosen":"a","rejected":"b","margin":0.5,"weight":0.33333333333333' r.jsonl
"$BIN" prepare --from rankings --input rankings.jsonl --output rp.jsonl --aggregate per-labeler --quiet
check "rankings per labeler: 6 + 2 pairs" test "$(lines rp.jsonl)" -eq 8

# Bad rankings: each fails with its line number and leaves the old output alone.
bad_ranking() { # bad_ranking LINE_CONTENT EXPECTED_MESSAGE
    printf '%s\n\n%s\n' '{"prompt": "ok", "responses": ["a", "b"], "rankings": [[1, 2]]}' "$1" >bad.jsonl
    echo old >out.jsonl
    "$BIN" prepare --from rankings --input bad.jsonl --output out.jsonl 2>bad.err
    local code=$?
    check "bad ranking '$1': exit 1" test $code -eq 1
    check "bad ranking '$1': names line 3" grep -q "bad.jsonl:3:" bad.err
    check "bad ranking '$1': says '$2'" grep -qF "$2" bad.err
    check "bad ranking '$1': output untouched" test "$(cat out.jsonl)" = old
}
bad_ranking '{"prompt": "q", "responses": ["a", "b", "c"], "rankings": [[1, 1, 3]]}' "gives rank 1 twice and rank 2 is missing"
bad_ranking '{"prompt": "q", "responses": ["a", "b", "c"], "rankings": [[2, 1]]}' "has 2 ranks but there are 3 responses"
bad_ranking '{"prompt": "q", "responses": [], "rankings": []}' '"responses" is empty'
bad_ranking '{"prompt": "q", "responses": ["a", "b"], "rankings": [[1, 2]' "malformed JSON"
bad_ranking '{"prompt": "q", "responses": ["a", "b"]}' 'missing field "rankings"'
ls out.jsonl.* >/dev/null 2>&1
check "no temporary files left behind" test $? -ne 0

# --skip_bad keeps going and counts.
cat >mixed.jsonl <<'JSON'
{"prompt": "q", "responses": ["a", "b"], "rankings": [[2, 1]]}
{"prompt": "q", "responses": ["a", "b", "c"], "rankings": [[1, 1, 3]]}
not json
{"prompt": "q", "responses": ["a", "b"]}
JSON
"$BIN" prepare --from rankings --input mixed.jsonl --output m.jsonl --skip_bad --report m.json 2>m.err
check "skip-bad: exit 0" test $? -eq 0
check "skip-bad: 1 pair" test "$(lines m.jsonl)" -eq 1
check "skip-bad: b chosen" grep -q '"chosen":"b","rejected":"a"' m.jsonl
check "skip-bad: invalid_value 1" json_count m.json invalid_value 1
check "skip-bad: bad_json 1" json_count m.json bad_json 1
check "skip-bad: missing_field 1" json_count m.json missing_field 1
check "skip-bad: first skipped record on stderr" grep -q "mixed.jsonl:2:" m.err

# ---- preferences --------------------------------------------------------------
cat >prefs.jsonl <<'JSON'
{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
{"prompt": "P", "chosen": " yes", "rejected": " no", "margin": 2}
{"chosen": "same", "rejected": "same"}
JSON
"$BIN" prepare --from preferences --input prefs.jsonl --output p.jsonl --report p.json 2>/dev/null
check "preferences: 2 pairs" test "$(lines p.jsonl)" -eq 2
check "preferences: identical 1" json_count p.json identical 1
check "preferences: implicit prompt is empty" grep -q '^{"prompt":"","chosen":"\\n\\nHuman: hi' p.jsonl
check "preferences: margin kept" grep -q '"prompt":"P","chosen":" yes","rejected":" no","margin":2}' p.jsonl
"$BIN" prepare --from preferences --input prefs.jsonl --output pe.jsonl --extract_prompt --quiet
check "extract-prompt: prompt up to the last Assistant:" \
    grep -q '^{"prompt":"\\n\\nHuman: hi\\n\\nAssistant:","chosen":" hello","rejected":" go away"}' pe.jsonl
gzip -c prefs.jsonl >prefs.jsonl.gz
"$BIN" prepare --from preferences --input prefs.jsonl.gz --output pg.jsonl --quiet
check "gzip input reads the same" cmp -s p.jsonl pg.jsonl
# The output reads back as input unchanged.
"$BIN" prepare --from preferences --input p.jsonl --output p2.jsonl --quiet
check "pairs output reads back unchanged" cmp -s p.jsonl p2.jsonl
printf '{"chosen": "a", "rejected": "b"}\n{"chosen": 1, "rejected": "b"}\n' >pbad.jsonl
"$BIN" prepare --from preferences --input pbad.jsonl --output pb.jsonl 2>pb.err
check "preferences wrong type: exit 1 at line 2" test $? -eq 1 -a ! -e pb.jsonl
check "preferences wrong type: message" grep -q 'pbad.jsonl:2: field "chosen" must be a string' pb.err

# ---- labelled texts -------------------------------------------------------------
cat >labeled.jsonl <<'JSON'
{"body": "good one", "ok": true}
{"body": "bad one", "ok": 0}
{"body": "good two", "ok": 1}
JSON
"$BIN" prepare --from labeled --input labeled.jsonl --text_field body --label_field ok \
    --output l.jsonl --report l.json 2>/dev/null
check "labeled: 1 pair" test "$(lines l.jsonl)" -eq 1
check "labeled: rejected is the negative" grep -q '"rejected":"bad one"' l.jsonl
check "labeled: 1 unpaired" json_count l.json unpaired 1
printf '{"text": "x", "label": 1}\n{"text": "y", "label": "yes"}\n' >lbad.jsonl
"$BIN" prepare --from labeled --input lbad.jsonl --output lb.jsonl 2>lb.err
check "labeled bad label: exit 1" test $? -eq 1
check "labeled bad label: line 2" grep -q "lbad.jsonl:2: label field \"label\" must be 0/1 or true/false" lb.err

# ---- conversational preferences ----------------------------------------------------
cat >conv.jsonl <<'JSON'
{"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "No."}]}
{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A1"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A2"}], "weight": 0.5}
JSON
"$BIN" prepare --from preferences --input conv.jsonl --output conv_out.jsonl --extract_prompt --quiet
check "conversational: exit 0" test $? -eq 0
check "conversational: explicit prompt kept as messages" \
    grep -qF '{"prompt":[{"role":"user","content":"Hi?"}],"chosen":[{"role":"assistant","content":"Hello."}],"rejected":[{"role":"assistant","content":"No."}]}' conv_out.jsonl
check "conversational: shared leading messages extracted" \
    grep -qF '{"prompt":[{"role":"user","content":"Q"}],"chosen":[{"role":"assistant","content":"A1"}],"rejected":[{"role":"assistant","content":"A2"}],"weight":0.5}' conv_out.jsonl
"$BIN" prepare --from preferences --input conv_out.jsonl --output conv_again.jsonl --quiet
check "conversational: prepared pairs read back unchanged" cmp -s conv_out.jsonl conv_again.jsonl
printf '%s\n' '{"chosen": [{"role": "user", "content": "Q"}], "rejected": "text"}' >conv_bad.jsonl
"$BIN" prepare --from preferences --input conv_bad.jsonl --output conv_bad_out.jsonl 2>conv_bad.err
check "conversational mixed with text: exit 1" test $? -eq 1
check "conversational mixed with text: says which field" grep -q 'conv_bad.jsonl:1: field "rejected" must be a message list' conv_bad.err
printf '%s\n' '{"chosen": "\n\nHuman: Q\n\nAssistant: yes", "rejected": "\n\nHuman: Q\n\nAssistant: no"}' >dialogue.jsonl
"$BIN" prepare --from preferences --input dialogue.jsonl --output dialogue_out.jsonl --dialogue_messages --extract_prompt --quiet
check "--dialogue_messages: HH turns become messages" \
    grep -qF '{"prompt":[{"role":"user","content":"Q"}],"chosen":[{"role":"assistant","content":"yes"}],"rejected":[{"role":"assistant","content":"no"}]}' dialogue_out.jsonl
"$BIN" prepare --from rankings --input rankings.jsonl --output y --dialogue_messages 2>/dev/null
check "--dialogue_messages with rankings: exit 2" test $? -eq 2

# ---- usage errors ---------------------------------------------------------------
"$BIN" prepare --from rankings --input rankings.jsonl 2>/dev/null
check "missing --output: exit 2" test $? -eq 2
"$BIN" prepare --from nowhere --input x --output y 2>/dev/null
check "unknown source: exit 2" test $? -eq 2
"$BIN" prepare --from labeled --dir x --output y 2>/dev/null
check "--dir with labeled: exit 2" test $? -eq 2
"$BIN" prepare --from preferences --input prefs.jsonl --output y --aggregate mean 2>/dev/null
check "ranking flag with preferences: exit 2" test $? -eq 2
"$BIN" prepare --from rankings --input rankings.jsonl --output y --max_pairs 0 2>/dev/null
check "--max_pairs 0: exit 2" test $? -eq 2
"$BIN" prepare --help | grep -q '"rankings": \[\[1, 3, 2\], \[2, 1, 3\]\]'
check "--help documents the rankings format" test $? -eq 0
"$BIN" prepare --from preferences --input missing.jsonl --output y 2>/dev/null
check "missing input: exit 1" test $? -eq 1

# ---- real data, when present -------------------------------------------------------
IMDB=$DATA/imdb/aclImdb_subset.tar.gz
if [ -f "$IMDB" ]; then
    tar -xzf "$IMDB" -C "$WORK" aclImdb_subset/train
    TRAIN=$WORK/aclImdb_subset/train
    "$BIN" prepare --from imdb --dir "$TRAIN" --output imdb.jsonl --report imdb.json 2>/dev/null
    check "imdb: exit 0" test $? -eq 0
    # The subset's train part has 2,500 positive and 2,500 negative reviews.
    check "imdb: 2500 pairs" test "$(lines imdb.jsonl)" -eq 2500
    check "imdb: 5000 reviews read" json_count imdb.json records_read 5000
    check "imdb: none unpaired" json_count imdb.json unpaired 0
    # Rejected texts are the negatives in id order: the first pair's rejected
    # is the lowest-id negative review.
    first_neg=$(ls "$TRAIN/neg" | sort -t_ -k1,1n | head -1)
    first_neg_start=$(head -c 40 "$TRAIN/neg/$first_neg" | sed 's/["\\]/./g')
    check "imdb: first rejected is the lowest-id negative ($first_neg)" \
        grep -q "\"rejected\":\"${first_neg_start}" <(head -1 imdb.jsonl | sed 's/\\"/./g; s/\\\\/./g')
    "$BIN" prepare --from imdb --dir "$TRAIN" --output imdb_again.jsonl --quiet
    check "imdb: same seed, same file" cmp -s imdb.jsonl imdb_again.jsonl
    "$BIN" prepare --from imdb --dir "$TRAIN" --output imdb_seed7.jsonl --seed 7 --quiet
    check "imdb: another seed, another pairing" test -n "$(cmp imdb.jsonl imdb_seed7.jsonl 2>&1)"
    "$BIN" prepare --from imdb --dir "$TRAIN" --output imdb_100.jsonl --max_pairs 100 --report imdb_100.json --quiet
    check "imdb: --max_pairs 100" test "$(lines imdb_100.jsonl)" -eq 100
    check "imdb: 2400 over max" json_count imdb_100.json over_max_pairs 2400
else
    echo "note: $IMDB not found; IMDB checks skipped" >&2
fi

HH=$DATA/hh-rlhf/harmless_base_dev.jsonl.gz
if [ -f "$HH" ]; then
    "$BIN" prepare --from preferences --input "$HH" --output hh.jsonl --extract_prompt --report hh.json 2>/dev/null
    check "hh-rlhf dev: exit 0" test $? -eq 0
    check "hh-rlhf dev: 1812 records" json_count hh.json records_read 1812
    written=$(lines hh.jsonl)
    identical=$(grep -Eo '"identical":[[:space:]]*[0-9]+' hh.json | grep -Eo '[0-9]+$')
    check "hh-rlhf dev: written + identical = 1812" test $((written + identical)) -eq 1812
    check "hh-rlhf dev: every prompt extracted" test "$(grep -c '^{"prompt":"",' hh.jsonl)" -eq 0
    check "hh-rlhf dev: prompts end at the last Assistant turn" \
        test "$(grep -c '\\n\\nAssistant:","chosen":' hh.jsonl)" -eq "$written"
    "$BIN" prepare --from preferences --input "$HH" --output hh_msgs.jsonl --extract_prompt \
        --dialogue_messages --report hh_msgs.json 2>/dev/null
    check "hh-rlhf dev as messages: exit 0" test $? -eq 0
    written=$(lines hh_msgs.jsonl)
    identical=$(grep -Eo '"identical":[[:space:]]*[0-9]+' hh_msgs.json | grep -Eo '[0-9]+$')
    check "hh-rlhf dev as messages: written + identical = 1812" test $((written + identical)) -eq 1812
    check "hh-rlhf dev as messages: every pair's prompt starts with the user's turn" \
        test "$(grep -c '^{"prompt":\[{"role":"user","content":' hh_msgs.jsonl)" -eq "$written"
else
    echo "note: $HH not found; HH-RLHF checks skipped" >&2
fi

cli_finish cli_prepare
