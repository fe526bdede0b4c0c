#!/usr/bin/env bash
# The main job on its built-in default: build rewardc, turn IMDB reviews into
# chosen/rejected pairs, train a reward model from scratch (the "tiny" preset),
# evaluate it on the IMDB dev slice, pick an accept/block threshold there, score
# a few example responses, and finally report pairwise accuracy on the
# held-out test reviews (never used for training, tuning or selection).
#
# Data: $REWARDC_DATA/imdb (default ../shared/data), else the official archive
# is downloaded. Everything goes to runs/demo/ (or $REWARDC_DEMO_DIR).
# Knobs (environment): DEMO_EPOCHS, DEMO_MAX_LENGTH, DEMO_PRESET, DEMO_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools/setup.sh
bin=$root/${REWARDC_BUILD:-build}/rewardc
data=${REWARDC_DATA:-$root/../shared/data}
out=${REWARDC_DEMO_DIR:-$root/runs/demo}
tok=$data/tokenizers/opt
mkdir -p "$out"
start=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$1" $(( $(date +%s) - start )); }

step "IMDB reviews"
archive=$data/imdb/aclImdb_labeled_full.tar.gz
if [[ ! -f $archive ]]; then
    archive=$out/aclImdb_v1.tar.gz
    if [[ ! -f $archive ]]; then
        echo "no $data/imdb: downloading the Large Movie Review Dataset (Maas et al., 2011)"
        curl -fL -o "$archive.part" https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz
        mv "$archive.part" "$archive"
    fi
fi
if [[ ! -f $tok/vocab.json ]]; then
    echo "demo: the OPT tokenizer folder $tok is missing (vocab.json, merges.txt, tokenizer_config.json" >&2
    echo "      as in facebook/opt-125m); set REWARDC_DATA to a folder holding tokenizers/opt" >&2
    exit 1
fi
if [[ ! -d $out/aclImdb/train/pos ]]; then
    tar -xzf "$archive" -C "$out" aclImdb/train/pos aclImdb/train/neg aclImdb/test/pos aclImdb/test/neg
fi
# dev = test reviews whose id is divisible by 10; held-out = every other test review
for split in dev heldout; do
    for label in pos neg; do
        rm -rf "$out/$split/$label" && mkdir -p "$out/$split/$label"
    done
done
for label in pos neg; do
    for f in "$out"/aclImdb/test/$label/*.txt; do
        name=${f##*/}
        id=${name%%_*}
        if (( id % 10 == 0 )); then ln -s "$f" "$out/dev/$label/$name"
        else ln -s "$f" "$out/heldout/$label/$name"; fi
    done
done

step "prepare pairs"
"$bin" prepare --from imdb --dir "$out/aclImdb/train" --output "$out/train_pairs.jsonl" --seed 1
"$bin" prepare --from imdb --dir "$out/dev" --output "$out/dev_pairs.jsonl" --seed 2 \
    --labeled_output "$out/dev_reviews.jsonl"
"$bin" prepare --from imdb --dir "$out/heldout" --output "$out/heldout_pairs.jsonl" --seed 3

step "initialise a ${DEMO_PRESET:-tiny} reward model"
"$bin" init --preset "${DEMO_PRESET:-tiny}" --tokenizer "$tok" --out "$out/init" \
    --max_length "${DEMO_MAX_LENGTH:-256}" --force

step "train"
"$bin" train --model "$out/init" --train_file "$out/train_pairs.jsonl" \
    --eval_file "$out/dev_pairs.jsonl" --output_dir "$out/model" --overwrite_output_dir \
    --learning_rate 2e-3 --num_train_epochs "${DEMO_EPOCHS:-1}" --per_device_train_batch_size 16 \
    --per_device_eval_batch_size 32 --warmup_ratio 0.05 --weight_decay 0.01 \
    --lr_scheduler_type linear --group_by_length --logging_steps 50 --eval_steps 400 \
    --save_steps 400 --save_total_limit 1 --threads "${DEMO_THREADS:-0}"

step "evaluate on the dev slice"
"$bin" eval --model "$out/model" --pairs "$out/dev_pairs.jsonl" --summary "$out/eval_dev.json" \
    --figure "$out/eval_dev.svg"

step "choose the accept/block threshold on single dev reviews (positive = acceptable) for 90% precision"
"$bin" eval --model "$out/model" --labeled "$out/dev_reviews.jsonl" --target_precision 0.9 \
    --summary "$out/threshold_dev.json"

step "score example responses"
cat > "$out/examples.jsonl" <<'JSONL'
{"id": 1, "text": "An absolute delight from start to finish. The cast is wonderful and the story moved me to tears."}
{"id": 2, "text": "Dull, predictable and far too long. I nearly walked out halfway through."}
{"id": 3, "text": "The acting was fine, but the plot made no sense and the ending was a mess."}
{"id": 4, "text": "One of the best films I have seen this year: smart, funny and beautifully shot."}
JSONL
"$bin" score --model "$out/model" --input "$out/examples.jsonl"

step "held-out test pairs (reported once, never tuned on)"
"$bin" eval --model "$out/model" --pairs "$out/heldout_pairs.jsonl" --summary "$out/eval_heldout.json"
step "done: model in $out/model"
