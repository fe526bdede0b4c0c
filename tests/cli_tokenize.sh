#!/usr/bin/env bash
# rewardc tokenize end to end: the reference ids of the OPT and GPT-2 folders,
# JSON Lines from a file and from stdin (order, blank lines, --field), and bad
# input (malformed JSON, missing field, non-string field) failing with the
# line number; usage errors. Skips (77) without the shared tokenizer folders.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_tokenize
OPT=$TOKENIZER
GPT2=$DATA/tokenizers/gpt2
if [ ! -f "$GPT2/vocab.json" ]; then
    echo "cli_tokenize: SKIP: no GPT-2 tokenizer folder under $DATA/tokenizers (set REWARDC_DATA)"
    exit 77
fi


# ---- reference ids -------------------------------------------------------------
out=$("$BIN" tokenize --tokenizer "$OPT" --text "Hello, I'm am conscious and")
check "OPT reference ids (got $out)" test "$out" = "[2, 31414, 6, 38, 437, 524, 13316, 8]"
out=$("$BIN" tokenize --tokenizer "$GPT2" --text "Hello")
check "GPT-2 Hello (got $out)" test "$out" = "[15496]"
out=$("$BIN" tokenize --tokenizer "$OPT" --text "Hello" --no_special)
check "--no_special drops the BOS (got $out)" test "$out" = "[31414]"
out=$("$BIN" tokenize --tokenizer="$GPT2" --text="<|endoftext|> world")
check "special token in text, --name=value form (got $out)" test "$out" = "[50256, 995]"
out=$("$BIN" tokenize --tokenizer "$GPT2" --text "")
check "empty text gives [] (got $out)" test "$out" = "[]"

# ---- JSON Lines ----------------------------------------------------------------
printf '%s\n' '{"text": "Hello"}' '' '{"text": " world", "other": 1}' '{"text": "Hello"}' >in.jsonl
"$BIN" tokenize --tokenizer "$GPT2" --input in.jsonl >out.txt 2>err.txt
check "file input: exit 0" test $? -eq 0
check "file input: one line per non-blank input line, in order" \
    test "$(cat out.txt)" = "$(printf '[15496]\n[995]\n[15496]')"
check "file input: nothing on stderr" test ! -s err.txt
"$BIN" tokenize --tokenizer "$GPT2" <in.jsonl >stdin.txt
check "stdin by default" cmp -s out.txt stdin.txt
"$BIN" tokenize --tokenizer "$GPT2" --input - <in.jsonl >dash.txt
check "--input - is stdin" cmp -s out.txt dash.txt
printf '%s\n' '{"review": "Hello", "text": 3}' | "$BIN" tokenize --tokenizer "$GPT2" --field review >field.txt
check "--field picks the field" test "$(cat field.txt)" = "[15496]"
printf '{"text": "no newline at the end"}' | "$BIN" tokenize --tokenizer "$GPT2" >last.txt
check "last line without a newline" test "$(wc -l <last.txt | tr -d ' ')" -eq 1
printf '{"text": "a\\u00e9\\ud83d\\ude00"}\r\n' | "$BIN" tokenize --tokenizer "$GPT2" --threads 1 >esc.txt
check "JSON escapes and CRLF (got $(cat esc.txt))" test "$(cat esc.txt)" = "[64, 2634, 47249, 222]"
# more lines than one block, encoded in parallel, come back in order
for i in $(seq 1 5000); do echo "{\"text\": \"line $i\"}"; done >many.jsonl
"$BIN" tokenize --tokenizer "$GPT2" --input many.jsonl --threads 2 --time >many.txt 2>time.txt
check "5000 lines: exit 0" test $? -eq 0
check "5000 lines: 5000 outputs" test "$(wc -l <many.txt | tr -d ' ')" -eq 5000
check "5000 lines: order kept (line 4321)" test "$(sed -n 4321p many.txt)" = \
    "$("$BIN" tokenize --tokenizer "$GPT2" --text "line 4321")"
check "--time reports on stderr" grep -q "5000 texts" time.txt

# ---- bad input -----------------------------------------------------------------
printf '%s\n' '{"text": "ok"}' '{"text": "broken' '{"text": "never"}' >bad.jsonl
"$BIN" tokenize --tokenizer "$GPT2" --input bad.jsonl >bad.out 2>bad.err
check "malformed line: exit 1" test $? -eq 1
check "malformed line: names line 2" grep -q "bad.jsonl:2:" bad.err
check "malformed line: nothing from after it" test "$(wc -l <bad.out | tr -d ' ')" -le 1
printf '%s\n' '{"text": "ok"}' '{"body": "x"}' | "$BIN" tokenize --tokenizer "$GPT2" >/dev/null 2>missing.err
check "missing field: exit 1" test $? -eq 1
check "missing field: line and field named" grep -q '<stdin>:2: no field "text"' missing.err
printf '%s\n' '{"text": 12}' | "$BIN" tokenize --tokenizer "$GPT2" >/dev/null 2>type.err
check "non-string field: exit 1" test $? -eq 1
check "non-string field: reported" grep -q ':1: field "text" is not a string' type.err
printf '%s\n' '["text"]' | "$BIN" tokenize --tokenizer "$GPT2" >/dev/null 2>array.err
check "non-object line: exit 1" test $? -eq 1
check "non-object line: reported" grep -q ':1: not a JSON object' array.err

# ---- usage ---------------------------------------------------------------------
"$BIN" tokenize --help >help.txt
check "--help: exit 0" test $? -eq 0
check "--help explains errors" grep -q "line number" help.txt
"$BIN" tokenize --text hi >/dev/null 2>&1
check "no --tokenizer: exit 2" test $? -eq 2
"$BIN" tokenize --tokenizer "$GPT2" --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? -eq 2
"$BIN" tokenize --tokenizer "$GPT2" --threads many --text hi >/dev/null 2>&1
check "bad --threads: exit 2" test $? -eq 2
"$BIN" tokenize --tokenizer "$WORK/no_such_folder" --text hi >/dev/null 2>nofolder.err
check "missing tokenizer folder: exit 1" test $? -eq 1
check "missing tokenizer folder: named" grep -q "no_such_folder" nofolder.err
"$BIN" tokenize --tokenizer "$GPT2" --input "$WORK/nope.jsonl" >/dev/null 2>noinput.err
check "missing input file: exit 1" test $? -eq 1

cli_finish cli_tokenize
