#!/bin/sh
# CLI checks of `peqa quantize` and `peqa finetune`: the working paths (quantize, finetune with
# validation, log, checkpoint, resume, SIGINT) and every error path, which must give ONE line on
# stderr and a non-zero exit. Prints "PASS name" / "FAIL name" lines and, last,
# "N passed, N failed, 0 skipped"; exits 1 when anything failed.
#
# usage: sh tests/train_cli_test.sh [PEQA_BINARY]       (default build/native/peqa)
#
# The test model is made here with awk (no other tool needed): a full-precision Hugging Face
# checkpoint (config.json + model.safetensors) with hidden 32, intermediate 64, 2 layers, 4 heads
# of 8, 2 kv heads and the byte vocabulary (258), weights from a fixed LCG in ±[1/32, 1/16),
# norm weights 1. The training data is plain text (byte tokenizer).
PEQA=${1:-build/native/peqa}
case $PEQA in /*) ;; *) PEQA=$(pwd)/$PEQA ;; esac
[ -x "$PEQA" ] || { echo "FAIL setup: $PEQA is not an executable"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }

# mkmodel DIR: the test checkpoint described above.
mkmodel() {
    mkdir -p "$1"
    cat > "$1/config.json" <<EOF
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 258,
 "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": false}
EOF
    LC_ALL=C awk -v D=32 -v F=64 -v L=2 -v H=4 -v KV=2 -v V=258 '
    function add(name, r, c) { n++; nm[n] = name; rows[n] = r; cols[n] = c }
    function byte(b) { printf "%c", b }
    BEGIN {
        hd = D / H
        add("model.embed_tokens.weight", V, D)
        for (l = 0; l < L; l++) {
            p = "model.layers." l "."
            add(p "input_layernorm.weight", D, 0)
            add(p "self_attn.q_proj.weight", H * hd, D)
            add(p "self_attn.k_proj.weight", KV * hd, D)
            add(p "self_attn.v_proj.weight", KV * hd, D)
            add(p "self_attn.o_proj.weight", D, H * hd)
            add(p "post_attention_layernorm.weight", D, 0)
            add(p "mlp.gate_proj.weight", F, D)
            add(p "mlp.up_proj.weight", F, D)
            add(p "mlp.down_proj.weight", D, F)
        }
        add("model.norm.weight", D, 0)
        add("lm_head.weight", V, D)
        hdr = "{\"__metadata__\":{\"format\":\"pt\"}"
        off = 0
        for (i = 1; i <= n; i++) {
            cnt = cols[i] ? rows[i] * cols[i] : rows[i]
            shp = cols[i] ? "[" rows[i] "," cols[i] "]" : "[" rows[i] "]"
            hdr = hdr ",\"" nm[i] "\":{\"dtype\":\"F32\",\"shape\":" shp ",\"data_offsets\":[" off "," off + 4 * cnt "]}"
            off += 4 * cnt
        }
        hdr = hdr "}"
        while (length(hdr) % 8) hdr = hdr " "
        len = length(hdr)
        for (i = 0; i < 8; i++) { byte(len % 256); len = int(len / 256) }
        printf "%s", hdr
        s = 12345
        for (i = 1; i <= n; i++) {
            cnt = cols[i] ? rows[i] * cols[i] : rows[i]
            for (e = 0; e < cnt; e++) {
                if (!cols[i]) { byte(0); byte(0); byte(128); byte(63); continue }   # 1.0f
                s = (s * 1103515245 + 12345) % 2147483648; b0 = int(s / 65536) % 256
                s = (s * 1103515245 + 12345) % 2147483648; b1 = int(s / 65536) % 256
                s = (s * 1103515245 + 12345) % 2147483648; b2 = int(s / 65536) % 128
                byte(b0); byte(b1); byte(b2); byte(int(s / 8388608) % 2 ? 189 : 61)   # ±[2^-5, 2^-4)
            }
        }
    }' > "$1/model.safetensors"
}

# expect_error NAME EXPECTED_TEXT COMMAND...: non-zero exit, exactly one line on stderr that
# contains EXPECTED_TEXT, nothing on stdout.
expect_error() {
    name=$1 want=$2
    shift 2
    "$@" > "$T/out" 2> "$T/err"
    rc=$?
    lines=$(wc -l < "$T/err" | tr -d ' ')
    if [ $rc -eq 0 ]; then
        ko "$name" "exit 0"
    elif [ "$lines" != 1 ]; then
        ko "$name" "$lines lines on stderr: $(head -c 300 "$T/err" | tr '\n' '|')"
    elif ! grep -q -- "$want" "$T/err"; then
        ko "$name" "message lacks '$want': $(cat "$T/err")"
    elif [ -s "$T/out" ]; then
        ko "$name" "stdout not empty"
    else
        ok "$name"
    fi
}

# expect_runtime_error NAME EXPECTED_TEXT COMMAND...: an error found during training (after the
# header and progress lines): non-zero exit and a last stderr line "peqa: ..." containing the text.
expect_runtime_error() {
    name=$1 want=$2
    shift 2
    "$@" > "$T/out" 2> "$T/err"
    rc=$?
    last=$(tail -n 1 "$T/err")
    if [ $rc -eq 0 ]; then ko "$name" "exit 0"
    else
        case $last in
        "peqa: "*"$want"*) ok "$name" ;;
        *) ko "$name" "last line: $last" ;;
        esac
    fi
}

mkmodel "$T/fp"
awk 'BEGIN { for (i = 0; i < 400; i++) printf "the quick brown fox %d jumps over the lazy dog.\n", i % 17 }' > "$T/train.txt"
awk 'BEGIN { for (i = 0; i < 40; i++) printf "the quick brown fox %d jumps over the lazy dog.\n", (i * 5) % 17 }' > "$T/val.txt"
printf 'ab' > "$T/short.txt"
printf '\000\001' > "$T/bad.bin"

# ---- working paths -------------------------------------------------------------------------------
if "$PEQA" quantize --model "$T/fp" --bits 4 --group 32 -o "$T/q4.safetensors" > "$T/out" 2> "$T/err" &&
   grep -q "wrote" "$T/out" && [ -s "$T/q4.safetensors" ]; then ok quantize; else ko quantize "$(cat "$T/err")"; fi

"$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" --val "$T/val.txt" -o "$T/task.scales" \
    --steps 6 --batch 2 --seq 32 --lr 1e-3 --log "$T/log.jsonl" --threads 1 > "$T/out" 2> "$T/err"
rc=$?
if [ $rc -eq 0 ] && [ -s "$T/task.scales" ] && [ "$(grep -c '"event":"step"' "$T/log.jsonl")" = 6 ] &&
   grep -q "val @ step 6" "$T/err" && [ ! -e "$T/task.scales.ckpt" ]; then ok finetune_basic
else ko finetune_basic "exit $rc: $(tail -n 3 "$T/err" | tr '\n' '|')"; fi

# 3 + resume 3 == 6: identical scale files, bit for bit
"$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" -o "$T/a.scales" --steps 6 --batch 2 --seq 32 \
    --lr 1e-3 --threads 2 > /dev/null 2>&1
"$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" -o "$T/b.scales" --steps 6 --batch 2 --seq 32 \
    --lr 1e-3 --stop-after 3 --ckpt "$T/b.ckpt" > /dev/null 2>&1
rc1=$?
"$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" -o "$T/b.scales" --resume "$T/b.ckpt" \
    --threads 1 > /dev/null 2> "$T/err"
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s "$T/a.scales" "$T/b.scales"; then ok resume_cli_bit_identical
else ko resume_cli_bit_identical "exits $rc1/$rc2: $(tail -n 2 "$T/err" | tr '\n' '|')"; fi

# SIGINT: checkpoint and exit 130, then the checkpoint resumes
"$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" -o "$T/int.scales" --steps 1000000 --batch 1 \
    --seq 16 --log "$T/int.jsonl" --threads 1 > /dev/null 2> "$T/interr" &
pid=$!
i=0
while [ $i -lt 300 ] && ! grep -q '"step":2,' "$T/int.jsonl" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
at=$(sed -n 's/.*interrupted at step \([0-9]*\)\/.*/\1/p' "$T/interr")
if [ $rc -eq 130 ] && [ -n "$at" ] && [ -s "$T/int.scales.ckpt" ] && [ ! -e "$T/int.scales" ]; then
    # the checkpoint continues: two more steps, then a deliberate stop (exit 0)
    "$PEQA" finetune --model "$T/q4.safetensors" --data "$T/train.txt" -o "$T/int.scales" --resume "$T/int.scales.ckpt" \
        --stop-after $((at + 2)) --threads 1 > /dev/null 2> "$T/err"
    rc2=$?
    if [ $rc2 -eq 0 ] && grep -q "stopped as asked (--stop-after) at step $((at + 2))/" "$T/err"; then ok sigint_checkpoint_resume
    else ko sigint_checkpoint_resume "resume exit $rc2: $(tail -n 2 "$T/err" | tr '\n' '|')"; fi
else
    ko sigint_checkpoint_resume "exit $rc: $(tail -n 2 "$T/interr" | tr '\n' '|')"
fi

# ---- error paths: one line, non-zero exit ----------------------------------------------------------
Q=$T/q4.safetensors
expect_error q_no_model "--model" "$PEQA" quantize -o "$T/x"
expect_error q_no_out "-o" "$PEQA" quantize --model "$T/fp"
expect_error q_bits_5 "--bits" "$PEQA" quantize --model "$T/fp" --bits 5 -o "$T/x"
expect_error q_bits_text "--bits" "$PEQA" quantize --model "$T/fp" --bits four -o "$T/x"
expect_error q_group_48 "--group" "$PEQA" quantize --model "$T/fp" --group 48 -o "$T/x"
expect_error q_group_text "--group" "$PEQA" quantize --model "$T/fp" --group rows -o "$T/x"
expect_error q_unknown_option "unknown option" "$PEQA" quantize --model "$T/fp" -o "$T/x" --frobnicate
expect_error q_missing_model "cannot load" "$PEQA" quantize --model "$T/nope" -o "$T/x"
expect_error q_already_quantized "already quantized" "$PEQA" quantize --model "$Q" -o "$T/x"
expect_error q_scale_file_as_model "scale file" "$PEQA" quantize --model "$T/task.scales" -o "$T/x"
expect_error q_unwritable "cannot write" "$PEQA" quantize --model "$T/fp" -o "$T/no/such/dir/q"
expect_error q_bad_isa "ISA" "$PEQA" quantize --model "$T/fp" -o "$T/x" --isa vax
expect_error f_no_model "--model" "$PEQA" finetune --data "$T/train.txt" -o "$T/x"
expect_error f_no_data "--data" "$PEQA" finetune --model "$Q" -o "$T/x"
expect_error f_no_out "-o" "$PEQA" finetune --model "$Q" --data "$T/train.txt"
expect_error f_steps_and_epochs "not both" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --steps 2 --epochs 1
expect_error f_steps_text "--steps" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --steps many
expect_error f_steps_0 "--steps" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --steps 0
expect_error f_lr_negative "--lr" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --lr -1
expect_error f_schedule "--schedule" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --schedule step
expect_error f_format "--format" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --format csv
expect_error f_val_every_without_val "--val" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --val-every 2
expect_error f_missing_value "needs a value" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o
expect_error f_full_precision_model "full-precision" "$PEQA" finetune --model "$T/fp" --data "$T/train.txt" -o "$T/x"
expect_error f_full_on_quantized "--full" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --full
expect_error f_missing_data "cannot read the training data" "$PEQA" finetune --model "$Q" --data "$T/none.txt" -o "$T/x"
expect_error f_unknown_bin "bin" "$PEQA" finetune --model "$Q" --data "$T/bad.bin" -o "$T/x"
expect_error f_data_too_short "at least" "$PEQA" finetune --model "$Q" --data "$T/short.txt" -o "$T/x" --seq 16
expect_error f_seq_too_long "max_position" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --seq 65
expect_error f_val_missing "validation" "$PEQA" finetune --model "$Q" --data "$T/train.txt" --val "$T/none.txt" -o "$T/x"
expect_runtime_error f_huge_lr_nonfinite "training stopped: step 2: the training loss is NaN" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --steps 20 --lr 1e30 \
    --warmup 0 --clip 0 --seq 16
expect_error f_resume_missing "cannot resume" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --resume "$T/none.ckpt"
expect_error f_resume_other_lr "--lr" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --resume "$T/b.ckpt" --lr 0.5
expect_error f_resume_other_data "data" "$PEQA" finetune --model "$Q" --data "$T/val.txt" -o "$T/x" --resume "$T/b.ckpt"
"$PEQA" quantize --model "$T/fp" --bits 4 --group channel -o "$T/q4c.safetensors" > /dev/null 2>&1
expect_error f_resume_other_model "checkpoint" "$PEQA" finetune --model "$T/q4c.safetensors" --data "$T/train.txt" -o "$T/x" \
    --resume "$T/b.ckpt"
expect_error f_resume_not_ckpt "checkpoint" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --resume "$T/a.scales"
expect_error f_ckpt_as_model "checkpoint" "$PEQA" finetune --model "$T/b.ckpt" --data "$T/train.txt" -o "$T/x"
expect_error f_unwritable_log "log" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/x" --log "$T/no/dir/log"
expect_error f_unwritable_out "cannot write into" "$PEQA" finetune --model "$Q" --data "$T/train.txt" -o "$T/no/dir/x" --steps 1 --seq 16

# task switching: eval runs the shared integer model with a task's scales (src/cli_model.c)
if "$PEQA" eval --model "$Q" --data "$T/val.txt" --seq 32 --scales "$T/task.scales" > "$T/out" 2> "$T/err" &&
   grep -q "perplexity" "$T/out"; then ok eval_with_scales; else ko eval_with_scales "$(tail -n 1 "$T/err")"; fi
expect_error e_scales_other_model "group size" "$PEQA" eval --model "$T/q4c.safetensors" --data "$T/val.txt" --scales "$T/task.scales"
expect_error e_scales_not_scales "not a scale file" "$PEQA" eval --model "$Q" --data "$T/val.txt" --scales "$Q"
expect_error e_scales_on_fp32 "full precision" "$PEQA" eval --model "$T/fp" --data "$T/val.txt" --scales "$T/task.scales"

echo "$pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
