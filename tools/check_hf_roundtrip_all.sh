#!/usr/bin/env bash
# Every family's golden model through rewardc (load, then save with `rewardc
# export`) and back into transformers (tools/check_hf_roundtrip.py): the saved
# folder must load as the family's *ForSequenceClassification and give the
# golden's rewards. Needs the Python packages of tools/requirements.txt.
# Usage: tools/check_hf_roundtrip_all.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
bin=${REWARDC_BUILD:-build}/rewardc
tok=${REWARDC_DATA:-../shared/data}/tokenizers/opt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for golden in golden/{opt,llama,qwen2,qwen3,gpt2,falcon}/*/golden.safetensors; do
    dir=$(dirname "$golden")
    grep -q '"train_config"' "$golden" || continue # the F16/BF16 copies and layouts
    [[ $dir == golden/falcon/40b_gqa ]] && continue # refused: the 40b layout is not implemented
    name=${dir#golden/}
    src=$work/src-${name//\//-} out=$work/${name//\//-}
    # export needs tokenizer files; the check compares the model alone
    cp -r "$dir" "$src" && cp "$tok"/vocab.json "$tok"/merges.txt "$src"/
    "$bin" export --merge --model "$src" --out "$out" >/dev/null
    rm -f "$out"/{vocab.json,merges.txt,tokenizer_config.json,special_tokens_map.json}
    if line=$("$python" tools/check_hf_roundtrip.py "$out" --golden "$golden" | grep 'max |diff|'); then
        echo "$name: $line"
    else
        echo "$name: FAILED"
        status=1
    fi
done
exit $status
