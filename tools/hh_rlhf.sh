#!/usr/bin/env bash
# The reward-model flow on Anthropic HH-RLHF harmless-base: prepare pairs from
# the dev file (prompt = the shared dialogue up to the last "Assistant:"),
# split them 85/15 into train/eval with a fixed seed, train a reward model
# from scratch, evaluate. The held-out file is scored once at the end and
# never used for tuning. The data is red-teaming text: nothing is printed.
# Knobs (environment): HH_PRESET (tiny), HH_EPOCHS (2), HH_MAX_LENGTH (256).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools/setup.sh
bin=$root/${REWARDC_BUILD:-build}/rewardc
data=${REWARDC_DATA:-$root/../shared/data}
out=${REWARDC_HH_DIR:-$root/runs/hh-rlhf}
mkdir -p "$out"

"$bin" prepare --from preferences --input "$data/hh-rlhf/harmless_base_dev.jsonl.gz" \
    --extract_prompt --output "$out/dev_pairs.jsonl"
"$bin" prepare --from preferences --input "$data/hh-rlhf/harmless_base_holdout.jsonl.gz" \
    --extract_prompt --output "$out/holdout_pairs.jsonl"
# a fixed 85/15 split of the dev pairs (line order from prepare is the file's order)
tools/split_pairs.sh "$out/dev_pairs.jsonl" 15 "$out/train_pairs.jsonl" "$out/eval_pairs.jsonl"
echo "hh-rlhf: $(wc -l < "$out/train_pairs.jsonl") train pairs, $(wc -l < "$out/eval_pairs.jsonl") eval pairs"

"$bin" init --preset "${HH_PRESET:-tiny}" --tokenizer "$data/tokenizers/opt" --out "$out/init" \
    --max_length "${HH_MAX_LENGTH:-256}" --force
"$bin" train --model "$out/init" --train_file "$out/train_pairs.jsonl" \
    --eval_file "$out/eval_pairs.jsonl" --output_dir "$out/model" --overwrite_output_dir \
    --learning_rate 1e-3 --num_train_epochs "${HH_EPOCHS:-2}" --per_device_train_batch_size 16 \
    --warmup_ratio 0.05 --weight_decay 0.01 --group_by_length --logging_steps 20 --save_steps 0
"$bin" eval --model "$out/model" --pairs "$out/eval_pairs.jsonl" --summary "$out/eval.json" \
    --figure "$out/eval.svg"
echo "== held-out pairs (reported once, never tuned on)"
"$bin" eval --model "$out/model" --pairs "$out/holdout_pairs.jsonl" --summary "$out/holdout.json"
