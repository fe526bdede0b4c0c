#!/usr/bin/env bash
# docs/cli.md must be what tools/gen_cli_docs.sh makes from this build's
# --help texts: a changed help text without a regenerated page fails here.
# Skipped (77) by a build that lacks a command (serve without libmicrohttpd),
# whose help texts cannot reproduce the page.
set -u
BIN=${REWARDC_BIN:?REWARDC_BIN must point at the rewardc CLI}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fresh=$(mktemp "${TMPDIR:-/tmp}/rewardc-cli-md.XXXXXX")
trap 'rm -f "$fresh"' EXIT
for cmd in $("$BIN" --help | sed -n '/^commands:/,/^$/{/^  [a-z]/s/^  \([a-z-]*\).*/\1/p}'); do
    if ! "$BIN" "$cmd" --help >/dev/null 2>&1; then
        echo "skipped: this build's 'rewardc $cmd --help' fails"
        exit 77
    fi
done
if ! bash "$ROOT/tools/gen_cli_docs.sh" "$BIN" "$fresh"; then
    echo "FAIL: tools/gen_cli_docs.sh failed" >&2
    exit 1
fi
if ! diff -u "$ROOT/docs/cli.md" "$fresh"; then
    echo "FAIL: docs/cli.md is stale: run tools/gen_cli_docs.sh build/rewardc and commit it" >&2
    exit 1
fi
echo "docs_cli: docs/cli.md matches the --help texts"
