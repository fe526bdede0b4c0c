#!/usr/bin/env bash
# Trainable sets and LoRA through the CLI on a tiny model: --lora_r writes a
# PEFT adapter folder (adapter_config.json, adapter_model.safetensors with
# PEFT's keys) and the memory line shows the frozen base (no gradients or
# AdamW for it); a LoRA run stopped and resumed ends byte-identical to an
# uninterrupted one; --gradient_checkpointing gives the same adapter bytes;
# eval and score read the adapter folder (its base named inside) and give
# the merged export's numbers; --train_layers / --train_head_only and the
# same keys from --config; refused combinations.
source "$(dirname "${BASH_SOURCE[0]}")/lib_cli.sh"
cli_setup cli_lora

"$BIN" init --preset tiny --tokenizer "$TOKENIZER" --out model --max_length 64 >init.out 2>&1
check "init tiny model" test $? -eq 0
words=(the cat dog sat ran on a mat big small red blue happy sad quick slow tree house)
phrase() { local n=$((RANDOM % $1 + 1)) out="" i
    for ((i = 0; i < n; i++)); do out+="${out:+ }${words[RANDOM % ${#words[@]}]}"; done
    printf '%s' "$out"; }
RANDOM=11
for ((i = 0; i < 24; i++)); do
    printf '{"prompt": "Q%d: %s?", "chosen": " yes %s", "rejected": " no %s"}\n' \
        "$i" "$(phrase 6)" "$(phrase 8)" "$(phrase 8)"
done >train.jsonl
head -6 train.jsonl >eval.jsonl

COMMON=(--model model --train_file train.jsonl --max_steps 8 --per_device_train_batch_size 2
        --save_steps 3 --logging_steps 1 --learning_rate 5e-3 --quiet
        --lora_r 4 --lora_alpha 8 --lora_target_modules all-linear)
"$BIN" train "${COMMON[@]}" --output_dir lora >lora.out 2>lora.err
check "LoRA run: exit 0" test $? -eq 0
check "LoRA run: memory line names the trainable set" grep -q "trainable: LoRA r 4, alpha 8 on all-linear" lora.err
full_grads=$("$BIN" train --model model --train_file train.jsonl --max_steps 1 --quiet \
    --output_dir full 2>&1 | grep -o 'gradients [0-9.]* MB' | head -1)
lora_grads=$(grep -o 'gradients [0-9.]* MB' lora.err | head -1)
check "LoRA run: fewer gradient bytes ($lora_grads vs $full_grads)" \
    test "${lora_grads#gradients }" != "${full_grads#gradients }"
check "LoRA run: adapter folder" test -f lora/adapter_config.json -a -f lora/adapter_model.safetensors \
    -a ! -e lora/model.safetensors
check "LoRA run: PEFT keys" grep -q 'base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight' \
    lora/adapter_model.safetensors
check "LoRA run: head under PEFT's saved key" grep -q 'base_model.model.score.weight' lora/adapter_model.safetensors
check "LoRA run: base named" grep -Eq "\"base_model_name_or_path\":[[:space:]]*\"$PWD/model\"" lora/adapter_config.json
check "LoRA run: checkpoints are adapters" test -f lora/checkpoint-6/adapter_model.safetensors \
    -a -f lora/checkpoint-6/optimizer.safetensors

"$BIN" train "${COMMON[@]}" --output_dir resumed --stop_after_steps 4 >/dev/null 2>&1
"$BIN" train "${COMMON[@]}" --output_dir resumed --resume >resume.out 2>resume.err
check "LoRA resume: exit 0" test $? -eq 0
check "LoRA resume: from checkpoint-3" grep -q "resumed from resumed/checkpoint-3" resume.err
check "LoRA resume: adapter byte-identical" cmp -s lora/adapter_model.safetensors resumed/adapter_model.safetensors

"$BIN" train "${COMMON[@]}" --output_dir ckpt --gradient_checkpointing >ckpt.out 2>ckpt.err
check "gradient checkpointing: exit 0" test $? -eq 0
check "gradient checkpointing: said so" grep -q "gradient checkpointing" ckpt.err
check "gradient checkpointing: adapter byte-identical" cmp -s lora/adapter_model.safetensors ckpt/adapter_model.safetensors

"$BIN" export --merge --model lora --out merged >export.out 2>&1
check "export --merge: exit 0" test $? -eq 0
check "export --merge: plain folder with the head" test -f merged/model.safetensors -a ! -e merged/adapter_config.json
check "export --merge: head included" grep -q '"score.weight"' merged/model.safetensors
"$BIN" eval --model lora --pairs eval.jsonl >eval_lora.txt 2>&1
check "eval on the adapter folder: exit 0" test $? -eq 0
"$BIN" eval --model merged --pairs eval.jsonl >eval_merged.txt 2>&1
check "eval on the merged folder: exit 0" test $? -eq 0
acc() { grep -E "^(pairwise accuracy|mean margin)" "$1"; }
check "eval: adapter and merged agree ($(acc eval_lora.txt))" test "$(acc eval_lora.txt)" = "$(acc eval_merged.txt)"
printf '{"prompt": "Q: the cat?", "response": " yes the dog"}\n{"text": "no"}\n' >score.jsonl
"$BIN" score --model lora --input score.jsonl >score_lora.jsonl 2>/dev/null
"$BIN" score --model merged --input score.jsonl >score_merged.jsonl 2>/dev/null
r1=$(grep -o '"reward": [-0-9.e]*' score_lora.jsonl | head -1 | cut -c11-)
r2=$(grep -o '"reward": [-0-9.e]*' score_merged.jsonl | head -1 | cut -c11-)
check "score: adapter $r1 vs merged $r2 within 1e-4" \
    awk -v a="$r1" -v b="$r2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d < 1e-4) }'

"$BIN" train --model model --train_file train.jsonl --max_steps 2 --quiet --output_dir top \
    --train_layers 1 >top.out 2>top.err
check "train_layers: exit 0" test $? -eq 0
check "train_layers: memory line" grep -q "trainable: the top 1 layers and the head" top.err
printf '{"train_head_only": true, "max_steps": 2}\n' >head.json
"$BIN" train --config head.json --model model --train_file train.jsonl --quiet --output_dir head \
    >head.out 2>head.err
check "train_head_only from --config: exit 0" test $? -eq 0
check "train_head_only from --config: memory line" grep -q "trainable: the score head" head.err

"$BIN" train --model model --train_file train.jsonl --output_dir bad --lora_r 4 --train_layers 1 \
    >bad.out 2>bad.err
check "LoRA + train_layers refused" test $? -eq 2
check "LoRA + train_layers: says why" grep -q "exclude each other" bad.err
"$BIN" train --model model --train_file train.jsonl --output_dir bad --lora_r 4 --lora_dropout 0.1 \
    >bad.out 2>bad.err
check "lora_dropout refused" test $? -ne 0
check "lora_dropout: says why" grep -q "only 0 is supported" bad.err
"$BIN" train --model model --train_file train.jsonl --output_dir bad --lora_r 4 \
    --lora_target_modules nothing_here >bad.out 2>bad.err
check "unknown target refused" grep -q '"nothing_here" names no linear module' bad.err
cli_finish cli_lora
