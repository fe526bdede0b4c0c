# Shared set-up for the tests/cli_*.sh scripts (sourced, not run by ctest).
#   cli_setup NAME: needs REWARDC_BIN; skips (exit 77) without the OPT tokenizer;
#   sets BIN and TOKENIZER as absolute paths, DATA, ROOT (the repository), and
#   WORK, a fresh folder under REWARDC_TMP that becomes the working directory.
#   check "description" command...: counts a pass, or prints FAIL and counts it.
#   cli_finish NAME: prints "NAME: N passed, N failed"; the script's exit status.
set -u
passed=0
failed=0

cli_setup() {
    BIN=${REWARDC_BIN:?REWARDC_BIN must point at the rewardc CLI}
    DATA=${REWARDC_DATA:-../shared/data}
    TOKENIZER=$DATA/tokenizers/opt
    if [ ! -f "$TOKENIZER/vocab.json" ]; then
        echo "skipped: no OPT tokenizer in $TOKENIZER"
        exit 77
    fi
    # the tests run in their own folder: make relative paths absolute first
    TOKENIZER=$(cd "$TOKENIZER" && pwd)
    DATA=$(cd "$DATA" && pwd)
    case $BIN in */*) BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN") ;; esac
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    WORK=${REWARDC_TMP:-/tmp/rewardc-test}/$1
    rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
}

check() { # check "description" command...
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}

cli_finish() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
