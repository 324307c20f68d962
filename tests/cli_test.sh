#!/bin/sh
# Shell-level tests of the model commands of the peqa CLI (src/cli_model.c): init-model (hidden),
# tokenize, eval, generate, convert, info MODEL, and their error paths.
#
#   sh tests/cli_test.sh [path/to/peqa]        (default build/native/peqa)
#
# Everything is made here, from peqa itself and POSIX sh (no python): a random tiny model with
# 'peqa init-model', text written with printf, a tiny all-zero llama2.c checkpoint and a
# byte-fallback tokenizer.bin written byte by byte with printf. Determinism is checked by
# comparing outputs byte for byte (twice, every ISA the CPU has, 1/2/3 threads, --batch).
# One line per case, "PASS name" / "FAIL name: why"; last line "N passed, N failed, 0 skipped";
# exit 1 if anything failed. PEQA_CLI_TEST_KEEP=1 keeps the work directory. Error cases must exit 1 or 2 (never a signal) with exactly one line
# on stderr starting with "peqa".
PEQA=${1:-build/native/peqa}
case $PEQA in /*) ;; *) PEQA=$(pwd)/$PEQA ;; esac
if [ ! -x "$PEQA" ]; then
    echo "FAIL setup: $PEQA is not an executable (build it first)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
unset PEQA_ISA PEQA_THREADS
tmp=$(mktemp -d) || exit 1
if [ -n "$PEQA_CLI_TEST_KEEP" ]; then echo "# keeping the work directory $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
cd "$tmp" || exit 1

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
no() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# expect_ok NAME CMD...: exit 0; stdout in NAME.out, stderr in NAME.err.
expect_ok() {
    n=$1; shift
    "$@" >"$n.out" 2>"$n.err"
    rc=$?
    if [ $rc -eq 0 ]; then ok "$n"; return 0; fi
    no "$n" "exit $rc from: $* -- $(head -c 300 "$n.err")"
    return 1
}

# expect_err NAME CMD...: exit 1 or 2 and one line on stderr starting with "peqa".
expect_err() {
    n=$1; shift
    "$@" >"$n.out" 2>"$n.err"
    rc=$?
    lines=$(wc -l <"$n.err" | tr -d ' ')
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then
        no "$n" "exit $rc (expected 1 or 2) from: $* -- $(head -c 300 "$n.err")"
    elif [ "$lines" != 1 ] || ! head -n 1 "$n.err" | grep -q '^peqa'; then
        no "$n" "stderr is not one 'peqa...' line ($lines lines) from: $* -- $(head -c 300 "$n.err")"
    else
        ok "$n"
    fi
}

# same NAME FILE1 FILE2: identical bytes.
same() {
    if cmp -s "$2" "$3"; then ok "$1"; else no "$1" "$2 and $3 differ: $(diff "$2" "$3" | head -n 4 | tr '\n' '|')"; fi
}

# check NAME COND-COMMAND... : passes when the command succeeds.
check() {
    n=$1; shift
    if "$@"; then ok "$n"; else no "$n" "check failed: $*"; fi
}

# The value after "perplexity:" / "mean NLL  :" in an eval output.
ppl() { sed -n 's/^perplexity: *\([^ ]*\).*/\1/p' "$1"; }
nll() { sed -n 's/^mean NLL *: *\([^ ]*\).*/\1/p' "$1"; }
results() { grep -E '^(tokens|mean NLL|perplexity)' "$1"; } # the lines that must not depend on how
is_finite_pos() { echo "$1" | grep -Eq '^[0-9]+\.[0-9]+$' && awk -v x="$1" 'BEGIN { exit !(x > 0) }'; }

# Little-endian binary with printf octal escapes.
le32() {
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) \
        $((($1 >> 24) & 255)))"
}
zeros() { head -c "$1" /dev/zero; }

# ---- setup -----------------------------------------------------------------------------------

expect_ok init_model "$PEQA" init-model --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --vocab 258 \
    --seed 1 --std 0.5 -o tiny
expect_ok init_model_same_seed "$PEQA" init-model --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --vocab 258 \
    --seed 1 --std 0.5 -o tiny2
same init_model_deterministic tiny/model.safetensors tiny2/model.safetensors
expect_ok init_model_small_vocab "$PEQA" init-model --dim 16 --layers 1 --heads 2 --ffn 32 --vocab 100 -o small

i=0
: >text.txt
while [ $i -lt 24 ]; do
    printf 'line %d: the quick brown fox jumps over the lazy dog.\n' $i >>text.txt
    i=$((i + 1))
done
nbytes=$(wc -c <text.txt | tr -d ' ')

# ---- tokenize ---------------------------------------------------------------------------------

expect_ok tokenize "$PEQA" tokenize --input text.txt -o text.bin
check tokenize_size test "$(wc -c <text.bin | tr -d ' ')" -eq $((1024 + 2 * nbytes))
check tokenize_header test "$(od -An -tu4 -N12 text.bin | tr -s ' ' | sed 's/^ //')" = "20240520 1 $nbytes"
expect_ok tokenize_bos_eos "$PEQA" tokenize --input text.txt -o be.bin --bos --eos
check tokenize_bos_eos_ids test "$(od -An -tu2 -j1024 -N2 be.bin | tr -d ' ')/$(tail -c 2 be.bin | od -An -tu2 | tr -d ' ')" = "256/257"
printf 'hi' | "$PEQA" tokenize --input - -o stdin.bin >/dev/null 2>&1
check tokenize_stdin test "$(od -An -tu2 -j1024 stdin.bin | tr -s ' ' | sed 's/^ //')" = "104 105"

# ---- eval ---------------------------------------------------------------------------------------

expect_ok eval "$PEQA" eval --model tiny --data text.bin --seq 64
p=$(ppl eval.out)
check eval_perplexity_finite is_finite_pos "$p"
check eval_tokens_counted grep -q "^tokens    : $((nbytes - 1)) evaluated" eval.out
check eval_speed_on_stderr grep -q 'tokens/s' eval.err
check eval_nll_matches_ppl awk -v a="$(nll eval.out)" -v b="$p" 'BEGIN { d = exp(a) / b - 1; exit !(d < 1e-5 && d > -1e-5) }'
expect_ok eval_again "$PEQA" eval --model tiny --data text.bin --seq 64
same eval_repeatable eval.out eval_again.out
for isa in scalar avx2 avx512 neon; do
    "$PEQA" info --isa $isa >/dev/null 2>&1 || continue
    expect_ok eval_isa_$isa "$PEQA" eval --model tiny --data text.bin --seq 64 --isa $isa
    same eval_isa_${isa}_identical eval.out eval_isa_$isa.out
done
PEQA_ISA=scalar "$PEQA" eval --model tiny --data text.bin --seq 64 >eval_env_scalar.out 2>/dev/null
same eval_PEQA_ISA_scalar_identical eval.out eval_env_scalar.out
for t in 1 2 3; do
    expect_ok eval_threads_$t "$PEQA" eval --model tiny --data text.bin --seq 64 --threads $t
    same eval_threads_${t}_identical eval.out eval_threads_$t.out
done
expect_ok eval_batch4 "$PEQA" eval --model tiny --data text.bin --seq 64 --batch 4 --threads 2
same eval_batch_identical eval.out eval_batch4.out
expect_ok eval_text "$PEQA" eval --model tiny --data text.txt --seq 64
results eval.out >r1
results eval_text.out >r2
same eval_text_equals_shard r1 r2
tail -c +1025 text.bin >text.u16
expect_ok eval_raw16 "$PEQA" eval --model tiny --data text.u16 --seq 64 --format raw16
results eval_raw16.out >r3
same eval_raw16_equals_shard r1 r3
expect_ok eval_limit "$PEQA" eval --model tiny --data text.bin --seq 16 --limit-tokens 100
check eval_limit_count grep -q '^tokens    : 99 evaluated' eval_limit.out
expect_ok eval_short_file "$PEQA" eval --model tiny --data stdin.bin
check eval_short_file_count grep -q '^tokens    : 1 evaluated' eval_short_file.out

# ---- generate -----------------------------------------------------------------------------------

expect_ok gen_greedy "$PEQA" generate --model tiny --prompt 'the quick' --tokens 40 --temperature 0
check gen_echoes_prompt grep -q '^the quick' gen_greedy.out
check gen_speed_on_stderr grep -q 'tokens/s' gen_greedy.err
expect_ok gen_greedy_again "$PEQA" generate --model tiny --prompt 'the quick' --tokens 40 --temperature 0
same gen_greedy_repeatable gen_greedy.out gen_greedy_again.out
for isa in scalar avx2 avx512 neon; do
    "$PEQA" info --isa $isa >/dev/null 2>&1 || continue
    "$PEQA" generate --model tiny --prompt 'the quick' --tokens 40 --temperature 0 --isa $isa >gen_$isa.out 2>/dev/null
    same gen_greedy_isa_${isa}_identical gen_greedy.out gen_$isa.out
done
for t in 1 3; do
    "$PEQA" generate --model tiny --prompt 'the quick' --tokens 40 --temperature 0 --threads $t >gen_t$t.out 2>/dev/null
    same gen_greedy_threads_${t}_identical gen_greedy.out gen_t$t.out
done
expect_ok gen_seed7 "$PEQA" generate --model tiny --prompt 'the quick' --tokens 60 --temperature 1.2 --top-p 0.95 --seed 7
expect_ok gen_seed7_again "$PEQA" generate --model tiny --prompt 'the quick' --tokens 60 --temperature 1.2 --top-p 0.95 --seed 7 --threads 1 --isa scalar
same gen_same_seed_same_text gen_seed7.out gen_seed7_again.out
expect_ok gen_seed8 "$PEQA" generate --model tiny --prompt 'the quick' --tokens 60 --temperature 1.2 --top-p 0.95 --seed 8
check gen_other_seed_other_text sh -c '! cmp -s gen_seed7.out gen_seed8.out'
expect_ok gen_top_p_1 "$PEQA" generate --model tiny --prompt 'x' --tokens 20 --top-p 1 --seed 3
expect_ok gen_empty_prompt "$PEQA" generate --model tiny --prompt '' --tokens 10 --seed 3 --no-echo
expect_ok gen_no_echo "$PEQA" generate --model tiny --prompt 'the quick' --tokens 40 --temperature 0 --no-echo
check gen_no_echo_is_continuation test "$(cat gen_greedy.out)" = "the quick$(cat gen_no_echo.out)"
expect_ok gen_context_limit "$PEQA" generate --model tiny --prompt 'the quick' --tokens 1000 --temperature 0.01 --seed 2

# ---- info ---------------------------------------------------------------------------------------

expect_ok info_model "$PEQA" info tiny
check info_counts grep -Eq '^  total +32032 +128128$' info_model.out
check info_q_proj grep -Eq '^  q_proj \(x2\) +2048 +8192 +\[32, 32\] each$' info_model.out
check info_act_bytes grep -q '^training activations *: 1064 bytes per token per layer' info_model.out
expect_ok info_cpu_still_works "$PEQA" info

# ---- llama2.c: convert, tokenizer.bin, tokenize and generate with it ------------------------------
# A version-0 checkpoint, all weights zero: dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads,
# vocab 259 (shared classifier), seq_len 32. Zero weights give uniform logits: perplexity 259.

D=8 H=16 L=1 NH=2 NKV=2 V=259 S=32
HD=$((D / NH)) KV=$((D / NH * NKV))
NF=$((V * D + L * (D + D * D + 2 * KV * D + D * D + D + 3 * H * D) + D + S * HD))
{ le32 $D; le32 $H; le32 $L; le32 $NH; le32 $NKV; le32 $V; le32 $S; zeros $((4 * NF)); } >zero.ckpt
# tokenizer.bin: max_token_length 6; <unk>, <s>, </s>, then <0x00> .. <0xFF>; every score 0.
write_tok() { # N_BYTE_PIECES
    le32 6
    zeros 4; le32 5; printf '<unk>'
    zeros 4; le32 3; printf '<s>'
    zeros 4; le32 4; printf '</s>'
    b=0
    while [ $b -lt "$1" ]; do
        zeros 4; le32 6; printf '<0x%02X>' $b
        b=$((b + 1))
    done
}
write_tok 256 >tok.bin
write_tok 255 >tok255.bin
expect_ok convert "$PEQA" convert --llama2c zero.ckpt -o zmodel --tokenizer tok.bin
check convert_files test -f zmodel/model.safetensors -a -f zmodel/config.json -a -f zmodel/tokenizer.bin
same convert_tokenizer_copied tok.bin zmodel/tokenizer.bin
expect_ok convert_no_tokenizer "$PEQA" convert --llama2c zero.ckpt -o zmodel2
expect_ok info_converted "$PEQA" info zmodel
check info_converted_tied grep -q 'tie_word_embeddings *: true' info_converted.out
expect_ok tokenize_l2c "$PEQA" tokenize --input stdin.bin -o l2c.bin --tokenizer tok.bin
printf 'hi' >hi.txt
expect_ok tokenize_l2c_hi "$PEQA" tokenize --input hi.txt -o hi.bin --tokenizer tok.bin --bos
# " hi" (dummy prefix) by byte fallback: BOS, 3+0x20, 3+0x68, 3+0x69
check tokenize_l2c_ids test "$(od -An -tu2 -j1024 hi.bin | tr -s ' ' | sed 's/^ //')" = "1 35 107 108"
"$PEQA" tokenize --input text.txt -o text_l2c.bin --tokenizer tok.bin >/dev/null 2>&1
expect_ok eval_converted "$PEQA" eval --model zmodel --data text_l2c.bin --seq 32
check eval_uniform_perplexity awk -v p="$(ppl eval_converted.out)" 'BEGIN { exit !(p > 258.999 && p < 259.001) }'
expect_ok gen_converted "$PEQA" generate --model zmodel --prompt 'hi' --tokens 3 --temperature 0
check gen_converted_found_tokenizer grep -q 'using the tokenizer' gen_converted.err
# uniform logits: greedy takes id 0, "<unk>"; the prompt decodes back to "hi"
check gen_converted_text test "$(cat gen_converted.out)" = "hi<unk><unk><unk>"
expect_ok gen_converted_sampled "$PEQA" generate --model zmodel2 --prompt 'hi' --tokens 20 --tokenizer tok.bin --seed 4

# ---- errors -------------------------------------------------------------------------------------

printf 'not a shard at all, just bytes' >garbage.bin
head -c 1030 text.bin >truncated.bin
printf 'zzz zzz zzz' >z.txt
printf 'a\377b' >ff.txt
"$PEQA" tokenize --input ff.txt -o ff.bin --tokenizer tok.bin >/dev/null 2>&1 # contains id 3+255 = 258
mkdir -p badcfg && printf '{"hidden_size": ' >badcfg/config.json
mkdir -p badst && cp tiny/config.json badst/ && head -c 2000 tiny/model.safetensors >badst/model.safetensors
mkdir -p emptydir
: >empty.txt

expect_err err_eval_no_model "$PEQA" eval --data text.bin
expect_err err_eval_no_data "$PEQA" eval --model tiny
expect_err err_eval_missing_model "$PEQA" eval --model nonexistent --data text.bin
expect_err err_eval_missing_data "$PEQA" eval --model tiny --data nonexistent.bin
expect_err err_eval_seq_zero "$PEQA" eval --model tiny --data text.bin --seq 0
expect_err err_eval_seq_text "$PEQA" eval --model tiny --data text.bin --seq abc
expect_err err_eval_seq_too_long "$PEQA" eval --model tiny --data text.bin --seq 100000
expect_err err_eval_batch_zero "$PEQA" eval --model tiny --data text.bin --batch 0
expect_err err_eval_garbage_data "$PEQA" eval --model tiny --data garbage.bin
expect_err err_eval_truncated_shard "$PEQA" eval --model tiny --data truncated.bin
expect_err err_eval_token_over_vocab "$PEQA" eval --model small --data z.txt
expect_err err_eval_shard_over_vocab "$PEQA" eval --model tiny --data ff.bin
expect_err err_eval_empty_data "$PEQA" eval --model tiny --data empty.txt
expect_err err_eval_limit_one "$PEQA" eval --model tiny --data text.bin --limit-tokens 1
printf 'x' >one.txt
expect_err err_eval_one_token_file "$PEQA" eval --model tiny --data one.txt
expect_err err_eval_bad_format "$PEQA" eval --model tiny --data text.bin --format xml
expect_err err_eval_bad_config "$PEQA" eval --model badcfg --data text.bin
expect_err err_eval_truncated_weights "$PEQA" eval --model badst --data text.bin
expect_err err_eval_unknown_option "$PEQA" eval --model tiny --data text.bin --bogus
expect_err err_eval_bad_threads "$PEQA" eval --model tiny --data text.bin --threads 0
expect_err err_eval_bad_isa "$PEQA" eval --model tiny --data text.bin --isa vax
expect_err err_gen_no_prompt "$PEQA" generate --model tiny
expect_err err_gen_no_model "$PEQA" generate --prompt hi
expect_err err_gen_vocab_vs_byte "$PEQA" generate --model small --prompt hi
expect_err err_gen_byte_vs_l2c_model "$PEQA" generate --model zmodel --prompt hi --tokenizer byte
expect_err err_gen_tokenizer_mismatch "$PEQA" generate --model tiny --prompt hi --tokenizer tok.bin
expect_err err_gen_tokenizer_garbage "$PEQA" generate --model zmodel --prompt hi --tokenizer garbage.bin
expect_err err_gen_tokenizer_missing "$PEQA" generate --model zmodel --prompt hi --tokenizer nonexistent.bin
expect_err err_gen_top_p_zero "$PEQA" generate --model tiny --prompt hi --top-p 0
expect_err err_gen_negative_temperature "$PEQA" generate --model tiny --prompt hi --temperature -1
expect_err err_gen_bos_conflict "$PEQA" generate --model tiny --prompt hi --bos --no-bos
long=$(head -c 300 /dev/zero | tr '\0' 'a')
expect_err err_gen_prompt_too_long "$PEQA" generate --model tiny --prompt "$long"
expect_err err_tok_no_input "$PEQA" tokenize -o x.bin
expect_err err_tok_no_output "$PEQA" tokenize --input text.txt
expect_err err_tok_missing_input "$PEQA" tokenize --input nonexistent.txt -o x.bin
expect_err err_tok_input_dir "$PEQA" tokenize --input emptydir -o x.bin
expect_err err_tok_empty "$PEQA" tokenize --input empty.txt -o x.bin
expect_err err_tok_bad_dir "$PEQA" tokenize --input text.txt -o nonexistent/dir/x.bin
expect_err err_tok_bad_tokenizer "$PEQA" tokenize --input text.txt -o x.bin --tokenizer garbage.bin
expect_err err_convert_no_input "$PEQA" convert -o out
expect_err err_convert_no_output "$PEQA" convert --llama2c zero.ckpt
expect_err err_convert_garbage "$PEQA" convert --llama2c garbage.bin -o out
head -c 5000 zero.ckpt >trunc.ckpt
expect_err err_convert_truncated "$PEQA" convert --llama2c trunc.ckpt -o out
expect_err err_convert_tokenizer_mismatch "$PEQA" convert --llama2c zero.ckpt -o out --tokenizer tok255.bin
check err_convert_mismatch_wrote_nothing test ! -e out
expect_err err_info_missing "$PEQA" info nonexistent
expect_err err_info_empty_dir "$PEQA" info emptydir
expect_err err_info_bad_config "$PEQA" info badcfg
expect_err err_info_stray_arg "$PEQA" info tiny extra
expect_err err_init_bad_heads "$PEQA" init-model --dim 30 --layers 1 --heads 4 --ffn 8 --vocab 10 -o bad
expect_err err_init_no_out "$PEQA" init-model --dim 32 --layers 1 --heads 4 --ffn 8 --vocab 10

# ---- help ---------------------------------------------------------------------------------------

for c in eval generate tokenize convert init-model; do
    "$PEQA" $c --help >help.out 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^example' help.out && grep -q '^usage: peqa' help.out; then ok help_$c
    else no help_$c "exit $rc or no usage/example"; fi
done
"$PEQA" info tiny --help >help.out 2>&1 && grep -q '^usage: peqa info MODEL' help.out && ok help_info_model ||
    no help_info_model "no usage"

echo "$pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
