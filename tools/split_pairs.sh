#!/usr/bin/env bash
# A fixed, seeded split of a pairs file into train and eval parts (the eval
# part PERCENT of the lines), the same on every machine (awk's srand(7)).
# Usage: tools/split_pairs.sh PAIRS.jsonl PERCENT TRAIN_OUT EVAL_OUT
set -euo pipefail
in=$1 percent=$2 train=$3 eval=$4
total=$(wc -l < "$in")
eval_n=$(( total * percent / 100 ))
awk -v n="$eval_n" -v total="$total" -v train="$train" -v eval="$eval" 'BEGIN { srand(7) }
     { line[NR] = $0 } END { for (i = 1; i <= total; i++) idx[i] = i
       for (i = total; i > 1; i--) { j = int(rand() * i) + 1; t = idx[i]; idx[i] = idx[j]; idx[j] = t }
       for (i = 1; i <= total; i++) print line[idx[i]] > (i <= n ? eval : train) }' "$in"
