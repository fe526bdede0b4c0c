#!/usr/bin/env bash
# rewardc bench on a tiny model: each benchmark prints one JSON line and
# writes the same object, counts tokens and model FLOPs as documented (the
# expected FLOPs below are worked out by hand from the tiny shape), trains
# (the loss falls over the repeated batch), saves the batch for a peer, checks
# its GEMM, and rejects bad options with exit code 2.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_bench

has() { grep -Eq "\"$2\":[[:space:]]*$3([,}]|\$)" "$1"; } # has FILE KEY VALUE

"$BIN" init --preset tiny --tokenizer "$DATA/tokenizers/opt" --out model >/dev/null
check "init: exit 0" test $? -eq 0

# tiny: 2 layers, d_model 64, ffn 256. 2 pairs = 4 rows of 16 tokens, N = 64:
# per layer 4*2*N*64*64 + 2*2*N*64*256 + 2*(2*4*16*16*64) = 6553600; two layers
# plus the score head 2*4*64 = 13107712 forward; a step is 3x that.
"$BIN" bench train-step --model model --pairs 2 --seq_len 16 --steps 3 --warmup 1 --threads 1 \
    --learning_rate 1e-3 --save_batch batch.safetensors --json train.json >train.out 2>train.err
check "train-step: exit 0" test $? -eq 0
check "train-step: one stdout line" test "$(wc -l <train.out | tr -d ' ')" -eq 1
check "train-step: stdout is the result" grep -q '^{"bench":"train-step"' train.out
check "train-step: 64 tokens" has train.json tokens 64
check "train-step: model FLOPs" has train.json model_flops_per_step 39323136
check "train-step: peak RSS reported" grep -Eq '"peak_rss_mib":[[:space:]]*[1-9]' train.json
check "train-step: 3 timed steps" grep -q 'step 3/3' train.err
# 4 losses (1 warm-up + 3 steps); the last must be below the first
losses=$(tr -d ' \t\n' <train.json | grep -o '"losses":\[[^]]*\]' | tr -d '"losses:[]')
first=${losses%%,*}
last=${losses##*,}
check "train-step: 4 losses" test "$(echo "$losses" | tr ',' '\n' | wc -l)" -eq 4
check "train-step: loss falls ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'
check "train-step: batch saved [4,16]" \
    grep -aq '"input_ids":{"dtype":"I32","shape":\[4,16\]' batch.safetensors

"$BIN" bench score --model model --batch 8 --seq_len 16 --lengths varied --steps 2 --threads 1 \
    --json score.json >score.out 2>/dev/null
check "score: exit 0" test $? -eq 0
check "score: 8 rows" has score.json rows 8
check "score: varied lengths leave padding" \
    awk '/"tokens":/ { gsub(/[^0-9]/, ""); t = $0 } /"real_tokens":/ { gsub(/[^0-9]/, ""); r = $0 }
         END { exit !(r > 0 && r < t) }' score.json

"$BIN" bench sgemm --size 96 --steps 2 --threads 1 >sgemm.out 2>/dev/null
check "sgemm: exit 0" test $? -eq 0
check "sgemm: 2*96^3 FLOPs" grep -q '"flops":1769472,' sgemm.out
check "sgemm: spot check recorded" grep -q '"spot_check_relative_error"' sgemm.out
# A narrow product through the backend's gemm (on the cpu, the packed kernel)
"$BIN" bench sgemm --m 300 --n 64 --k 40 --steps 2 --threads 2 --backend cpu >narrow.out 2>/dev/null
check "sgemm --m --n --k: exit 0 (spot check within 1e-4)" test $? -eq 0
check "sgemm --m --n --k: 2*300*64*40 FLOPs" grep -q '"flops":1536000,' narrow.out
check "sgemm --m --n --k: the shape recorded" grep -q '"m":300,"n":64,"k":40' narrow.out

"$BIN" bench train-step --model model --pairs 0 >/dev/null 2>&1
check "usage: --pairs 0 is rejected" test $? -eq 2
"$BIN" bench train-step --model model --batch 4 >/dev/null 2>&1
check "usage: --batch is not a train-step option" test $? -eq 2
"$BIN" bench score --seq_len 8 >/dev/null 2>&1
check "usage: --model required" test $? -eq 2
"$BIN" bench nothing >/dev/null 2>&1
check "usage: unknown benchmark" test $? -eq 2
"$BIN" bench score --model model --lengths odd >/dev/null 2>&1
check "usage: bad --lengths" test $? -eq 2
"$BIN" bench score --model does-not-exist --steps 1 >/dev/null 2>&1
check "missing model: exit 1" test $? -eq 1

cli_finish cli_bench
