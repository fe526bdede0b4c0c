#!/usr/bin/env bash
# Contract check of docs/openapi.yaml against a running rewardc serve: schemathesis
# (PyPI, in /work/venv or $PYTHON's environment) generates requests from the schema,
# valid and invalid, and checks that every answer's status, headers and body are
# ones the schema allows and that the server never answers 5xx.
# Usage: tools/check_openapi.sh [MAX_EXAMPLES]   (builds nothing: needs build/rewardc)
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-50}
python=${PYTHON:-/work/venv/bin/python}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
build/rewardc init --preset tiny --tokenizer "${REWARDC_DATA:-../shared/data}/tokenizers/opt" \
    --out "$work/m" --max-length 64 >/dev/null
OMP_WAIT_POLICY=PASSIVE build/rewardc serve --model "$work/m" --port 0 --threads 1 \
    --max-texts 16 --max-body-bytes 65536 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 300); do grep -q ready "$work/serve.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/serve.log")
# not_a_server_error: no 5xx for any input; the others: statuses, content types,
# headers and bodies as the schema says
"$python" -m schemathesis.cli run docs/openapi.yaml --base-url "http://127.0.0.1:$port" \
    --checks all --exclude-checks ignored_auth --hypothesis-max-examples "$examples" \
    --hypothesis-seed 1 --exclude-path /admin/reload --no-color
