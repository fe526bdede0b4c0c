#!/usr/bin/env bash
# rewardc serve end to end on tiny randomly initialised models, with curl and
# Python's http.client as clients: /health once loaded, /v1/models, /v1/score
# rewards identical to rewardc score's for the same texts, /v1/gate decisions,
# /classify in vLLM's shape, JSON errors (bad JSON, missing and mistyped
# fields named, too many texts, too large a body, wrong method or path, an
# unknown model), concurrent requests batched together (the /metrics batch
# histogram), a full queue (503 + Retry-After), a request timeout (504),
# clients that hang up, reloads under load that lose and mix no request, and
# SIGTERM answering the requests taken before exiting 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
CLIENT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/serve_client.py # before cli_setup's cd
cli_setup cli_serve
if ! "$BIN" serve --help >/dev/null 2>&1; then
    echo "skipped: rewardc was built without serve (libmicrohttpd-dev)"
    exit 77
fi
for tool in curl python3; do
    command -v $tool >/dev/null || { echo "skipped: no $tool"; exit 77; }
done
export OMP_WAIT_POLICY=PASSIVE

# start_server LOG ARGS...: starts rewardc serve on a free port; sets PID,
# PORT, ADMIN (when --admin_port is given) once it says it is ready.
start_server() {
    local log=$1
    shift
    "$BIN" serve --model m --port 0 --threads 1 "$@" 2>"$log" &
    PID=$!
    for _ in $(seq 1 300); do
        grep -q "ready" "$log" 2>/dev/null && break
        kill -0 $PID 2>/dev/null || break
        sleep 0.1
    done
    PORT=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$log")
    ADMIN=$(sed -n 's/.*admin: http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$log")
}
# http METHOD PATH [BODY]: prints the status, then the body
http() {
    curl -s -o body.txt -w '%{http_code}' -X "$1" ${3+--data-binary "$3"} \
        -H 'Content-Type: application/json' "http://127.0.0.1:$PORT$2"
}
# json EXPR < body: evaluates a Python expression over the parsed body `b`
json() { python3 -c "import json, sys; b = json.load(sys.stdin); print($1)"; }
# scored_after N: waits (up to 60 s) until the server has scored N more texts
# than it had when called, so that a load is under way whatever the machine's speed
scored_total() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^rewardc_texts_scored_total/ {print $2}'; }
scored_after() {
    local target=$(($(scored_total) + $1))
    for _ in $(seq 1 600); do
        [ "$(scored_total)" -ge "$target" ] && return 0
        sleep 0.1
    done
    return 1
}
field() { sed -E "s/.*\"$2\": ?(\"[^\"]*\"|[^,}]*).*/\\1/; t; s/.*/-/" "$1"; }

"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out m --max_length 64 >init.log 2>&1
check "init m: exit 0" test $? -eq 0
"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out m2 --seed 7 --max_length 64 >init.log 2>&1
check "init m2: exit 0" test $? -eq 0

start_server serve.log --admin_port 0 --max_texts 16 --max_body_bytes 8192 --max_wait_ms 2
check "server ready on a free port" test -n "$PORT"
check "admin listener on a free port" test -n "$ADMIN"

# ---- health, models --------------------------------------------------------------
check "/health: 200" test "$(http GET /health)" = 200
check "/health: ok, version 1" test "$(json 'b["status"], b["model_version"]' <body.txt)" = "ok 1"
check "/v1/models: 200" test "$(http GET /v1/models)" = 200
check "/v1/models: the folder's name" test "$(json 'b["data"][0]["id"], b["data"][0]["max_model_len"]' <body.txt)" = "m 64"

# ---- /v1/score gives rewardc score's rewards -------------------------------------
prompt="Question: which of these films would you recommend to a friend who likes quiet dramas?"
long_text=$(for i in $(seq 1 60); do printf 'word%d and ' "$i"; done)
{
    for r in "the first one" "neither, honestly" "the second, for its acting and its score"; do
        printf '{"prompt": "%s ", "response": "%s"}\n' "$prompt" "$r"
    done
    printf '{"text": "a kind and helpful answer"}\n{"text": "a rude answer"}\n'
    printf '{"text": "%s"}\n' "$long_text"
    for i in 1 2 3 4 5; do printf '{"text": "%s"}\n' "$(printf 'word%.0s ' $(seq 1 $((i * 4))))"; done
} >in.jsonl
"$BIN" score --model m --input in.jsonl --threshold 0.1 >score_out.jsonl 2>/dev/null
check "rewardc score: exit 0" test $? -eq 0
request=$(python3 -c 'import json, sys; print(json.dumps({"input": [json.loads(l) for l in open("in.jsonl")], "threshold": 0.1}))')
check "/v1/score: 200" test "$(http POST /v1/score "$request")" = 200
python3 -c 'import json; [print(json.dumps(d)) for d in json.load(open("body.txt"))["data"]]' | sed 's/: /: /g' >serve_out.jsonl
check "/v1/score: one result per text" test "$(wc -l <serve_out.jsonl)" -eq "$(wc -l <in.jsonl)"
check "/v1/score: rewards identical to rewardc score's" \
    test "$(field score_out.jsonl reward)" = "$(json '"\n".join("%.9g" % d["reward"] for d in b["data"])' <body.txt)"
check "/v1/score: decisions identical to rewardc score's" \
    test "$(field score_out.jsonl decision)" = "$(field serve_out.jsonl decision)"
check "/v1/score: the long text says truncated" \
    test "$(json '[d["index"] for d in b["data"] if d["truncated"]]' <body.txt)" = "[5]"
check "/v1/score: model and version" test "$(json 'b["model"], b["model_version"]' <body.txt)" = "m 1"
check "/v1/score: usage counts tokens" test "$(json 'b["usage"]["prompt_tokens"] > 100' <body.txt)" = True
# one text alone (a one-line file for rewardc score, /v1/gate for the server)
sed -n 4p in.jsonl >one.jsonl
"$BIN" score --model m --input one.jsonl >one_out.jsonl 2>/dev/null
one_reward=$(field one_out.jsonl reward)
check "/v1/gate: 200" test "$(http POST /v1/gate '{"text": "a kind and helpful answer", "threshold": -100}')" = 200
check "/v1/gate: reward identical to rewardc score's ($one_reward)" \
    test "$(json '"%.9g" % b["reward"]' <body.txt)" = "$one_reward"
check "/v1/gate: accept under a low threshold" test "$(json 'b["decision"]' <body.txt)" = accept
http POST /v1/gate '{"text": "a kind and helpful answer", "threshold": 100}' >/dev/null
check "/v1/gate: block over a high threshold" test "$(json 'b["decision"], b["threshold"]' <body.txt)" = "block 100"
check "/v1/gate: a conversation" test "$(http POST /v1/gate '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "threshold": 0}')" = 200
# the conversation is the HH-RLHF transcript: prompt "\n\nHuman: hi\n\nAssistant:", response " hello"
http POST /v1/gate '{"prompt": "\n\nHuman: hi\n\nAssistant:", "response": " hello", "threshold": 0}' >/dev/null
r_pair=$(json 'b["reward"]' <body.txt)
http POST /v1/gate '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "threshold": 0}' >/dev/null
check "messages score as their HH transcript" test "$(json 'b["reward"]' <body.txt)" = "$r_pair"
check "/classify: vLLM's shape" python3 "$CLIENT" check-classify "$PORT"

# ---- errors ------------------------------------------------------------------------
check "bad JSON: 400" test "$(http POST /v1/score '{"input": [')" = 400
check "bad JSON: param body" test "$(json 'b["error"]["param"]' <body.txt)" = body
check "no input: 400" test "$(http POST /v1/score '{"inputs": []}')" = 400
check "no input: param input" test "$(json 'b["error"]["param"], b["error"]["code"]' <body.txt)" = "input 400"
check "mistyped response: 400" test "$(http POST /v1/score '{"input": [{"text": "ok"}, {"response": 3}]}')" = 400
check "mistyped response: names input[1].response" test "$(json 'b["error"]["param"]' <body.txt)" = "input[1].response"
check "mistyped threshold: 400" test "$(http POST /v1/score '{"input": ["ok"], "threshold": "high"}')" = 400
check "mistyped threshold: named" test "$(json 'b["error"]["param"]' <body.txt)" = threshold
check "gate without a threshold (the folder has none): 400" test "$(http POST /v1/gate '{"text": "ok"}')" = 400
check "a last message not the assistant's: 400" test "$(http POST /v1/gate '{"messages": [{"role": "user", "content": "hi"}], "threshold": 0}')" = 400
check "... names messages[0].role" test "$(json 'b["error"]["param"]' <body.txt)" = "messages[0].role"
many=$(python3 -c 'import json; print(json.dumps({"input": ["t"] * 17}))')
check "17 texts over --max_texts 16: 413" test "$(http POST /v1/score "$many")" = 413
big=$(python3 -c 'import json; print(json.dumps({"input": ["x" * 9000]}))')
check "a body over --max_body_bytes: 413" test "$(http POST /v1/score "$big")" = 413
check "... names the body" test "$(json 'b["error"]["param"]' <body.txt)" = body
check "GET /v1/score: 405" test "$(http GET /v1/score)" = 405
check "405 says Allow: POST" bash -c "curl -s -i http://127.0.0.1:$PORT/v1/score | grep -qi '^Allow: POST'"
check "POST /health: 405" test "$(http POST /health '{}')" = 405
check "unknown path: 404" test "$(http GET /v2/nothing)" = 404
check "another model named: 404" test "$(http POST /classify '{"model": "other", "input": "x"}')" = 404
check "admin path on the public port: 404" test "$(http POST /admin/reload '{}')" = 404
check "errors are JSON with a message" test "$(json '"message" in b["error"]' <body.txt)" = True

# ---- concurrency: requests batched together ---------------------------------------
for i in $(seq 1 24); do printf 'text number %d %s\n' "$i" "$(printf 'w%.0s ' $(seq 1 $((i % 9 + 1))))"; done >texts.txt
python3 -c 'import json; [print(json.dumps({"text": l.rstrip("\n")})) for l in open("texts.txt")]' >texts.jsonl
"$BIN" score --model m --input texts.jsonl --batch_size 1 >alone_m.jsonl 2>/dev/null
"$BIN" score --model m2 --input texts.jsonl --batch_size 1 >alone_m2.jsonl 2>/dev/null
curl -s "http://127.0.0.1:$PORT/metrics" >metrics_before.txt
python3 "$CLIENT" load "$PORT" texts.txt load.jsonl --threads 16 --rounds 10
check "16 concurrent clients: 160 answers" test "$(wc -l <load.jsonl)" -eq 160
check "16 concurrent clients: all 200" test "$(grep -c '"status": 200' load.jsonl)" -eq 160
curl -s "http://127.0.0.1:$PORT/metrics" >metrics.txt
# batches of more than one text: all batches minus those in the le="1" bucket
multi=$(awk '/^rewardc_batch_texts_bucket\{le="1"\}/ {one = $2} /^rewardc_batch_texts_count/ {n = $2} END {print n - one}' metrics.txt)
check "/metrics: batches of more than one text under concurrent load ($multi)" test "$multi" -gt 0
check "/metrics: requests by status" grep -q '^rewardc_requests_total{endpoint="/v1/score",code="200"}' metrics.txt
check "/metrics: latency histogram" grep -q '^rewardc_request_duration_seconds_bucket{le="+Inf"}' metrics.txt
check "/metrics: tokens/s" grep -q '^rewardc_tokens_per_second [1-9]' metrics.txt
check "/metrics: queue depth" grep -q '^rewardc_queue_texts 0' metrics.txt
# batched rewards: each text's reward as scored alone, up to float rounding
compare_load() { # compare_load LOAD: every answer matches its version's model (1e-5)
    python3 - "$1" <<'PY'
import json, sys
alone = {}
for version_file, name in ((1, "alone_m.jsonl"), (2, "alone_m2.jsonl")):
    texts = [json.loads(l)["text"] for l in open("texts.jsonl")]
    rewards = [json.loads(l)["reward"] for l in open(name)]
    alone[version_file] = dict(zip(texts, rewards))
bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    model = 1 if r["model_version"] in (1, 3) else 2  # versions 1 and 3 are m, 2 is m2
    if r["status"] != 200 or abs(r["reward"] - alone[model][r["text"]]) > 1e-5:
        bad += 1
sys.exit(1 if bad else 0)
PY
}
check "concurrent rewards equal scoring alone (1e-5)" compare_load load.jsonl

# ---- clients that hang up ------------------------------------------------------------
check "clients hanging up leave the server serving" python3 "$CLIENT" disconnect "$PORT"

# ---- reload under load: nothing lost, nothing mixed --------------------------------
rm -f stop
python3 "$CLIENT" load "$PORT" texts.txt reload_load.jsonl --threads 8 --per-request 2 --until stop &
load_pid=$!
check "the load is under way" scored_after 100
status=$(curl -s -o reload.txt -w '%{http_code}' -X POST -d '{"model": "m2"}' "http://127.0.0.1:$ADMIN/admin/reload")
check "admin reload to m2: 200" test "$status" = 200
check "admin reload: version 2" test "$(json 'b["model_version"]' <reload.txt)" = 2
status=$(curl -s -o reload.txt -w '%{http_code}' -X POST -d '{"model": "no-such-folder"}' "http://127.0.0.1:$ADMIN/admin/reload")
check "reload of a bad folder: 500" test "$status" = 500
check "reload of a bad folder: says why" grep -q "no-such-folder" reload.txt
check "m2 still serving after the failed reload" test "$(http GET /health; json 'b["model_version"]' <body.txt)" = "2002"
# back to m (version 3), still under load
curl -s -o /dev/null -X POST -d '{"model": "m"}' "http://127.0.0.1:$ADMIN/admin/reload"
check "version 3 scores" scored_after 100
touch stop
wait $load_pid
answers=$(wc -l <reload_load.jsonl)
check "reload under load: answers ($answers)" test "$answers" -gt 300
check "reload under load: all 200" test "$(grep -c '"status": 200' reload_load.jsonl)" -eq "$answers"
check "reload under load: answers from each version" \
    test "$(python3 -c 'import json; print(sorted({json.loads(l)["model_version"] for l in open("reload_load.jsonl")}))')" = "[1, 2, 3]"
check "reload under load: each reward from its version's model" compare_load reload_load.jsonl
# SIGHUP reloads the current model's folder (m) as version 4
kill -HUP $PID
for _ in $(seq 1 600); do grep -q "as model version 4" serve.log && break; sleep 0.1; done
check "SIGHUP reloads the folder: version 4" test "$(http GET /health; json 'b["model_version"]' <body.txt)" = "2004"

# ---- SIGTERM drains ------------------------------------------------------------------
python3 "$CLIENT" load "$PORT" texts.txt drain_load.jsonl --threads 8 --until never-made &
load_pid=$!
check "the load is under way" scored_after 20
kill -TERM $PID
wait $PID
check "SIGTERM: exit 0" test $? -eq 0
wait $load_pid
check "SIGTERM: says it stopped" grep -q "rewardc serve: stopped" serve.log
answered=$(grep -c '"status": 200' drain_load.jsonl)
refused=$(grep -vc '"status": 200' drain_load.jsonl)
check "SIGTERM: requests answered before it ($answered)" test "$answered" -gt 0
# requests after it were refused (503, or the connection closed) and none half-answered
check "SIGTERM: the rest refused, not scored wrong" \
    python3 -c 'import json, sys; sys.exit(any(json.loads(l)["status"] not in (200, 503, -1) for l in open("drain_load.jsonl")))'
echo "drain: $answered answered, $refused refused after SIGTERM"

# ---- a full queue (503 + Retry-After) and a request timeout (504) ------------------
# The first request waits --max_wait_ms for company with the queue then full;
# it waits past --timeout_ms, so it is answered 504 without being scored.
start_server serve2.log --max_texts 8 --queue_texts 8 --max_wait_ms 1500 --timeout_ms 300
eight=$(python3 -c 'import json; print(json.dumps({"input": ["t"] * 8}))')
curl -s -o first.txt -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$eight" \
    "http://127.0.0.1:$PORT/v1/score" >first_status.txt &
first_pid=$!
sleep 0.3
check "a full queue: 503" test "$(http POST /v1/score "$eight")" = 503
check "503 says Retry-After" bash -c "curl -s -i -H 'Content-Type: application/json' --data-binary '$eight' http://127.0.0.1:$PORT/v1/score | grep -qi '^Retry-After: 1'"
wait $first_pid
check "a request queued past --timeout_ms: 504" test "$(cat first_status.txt)" = 504
curl -s "http://127.0.0.1:$PORT/metrics" >metrics2.txt
check "/metrics counts the full queue" grep -q 'rewardc_rejected_total{reason="queue_full"} [1-9]' metrics2.txt
check "/metrics counts the timeout" grep -q 'rewardc_rejected_total{reason="timeout"} 1' metrics2.txt
kill -INT $PID
wait $PID
check "SIGINT: exit 0" test $? -eq 0

# ---- a model that does not load: exit 1 with the reason ---------------------------------
"$BIN" serve --model no-such-model --port 0 2>bad.log
check "a model that fails to load: exit 1" test $? -eq 1
check "... and says why" grep -q "no-such-model" bad.log

cli_finish cli_serve
