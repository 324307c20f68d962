#!/bin/sh
# Checks of `peqa demo --quick` (the built-in demo, small variant): the table has a row for every
# bit width and task with finite numbers, two runs print the same table apart from the timing
# (right of '|' and the "total wall time" line; the second run uses one thread, so this also
# checks that the thread count changes no number), PEQA beats RTN at 3 bits on both tasks, --out
# keeps the files and `peqa eval --scales` reproduces a table cell from them, and bad usage gives
# one line on stderr and a non-zero exit. Prints "PASS name" / "FAIL name" lines and, last,
# "N passed, N failed, 0 skipped"; exits 1 when anything failed.
#
# usage: sh tests/demo_test.sh [PEQA_BINARY]       (default build/native/peqa)
# Runs from the repository root (the demo loads golden/demo).
PEQA=${1:-build/native/peqa}
case $PEQA in /*) ;; *) PEQA=$(pwd)/$PEQA ;; esac
cd "$(dirname "$0")/.." || exit 1
[ -x "$PEQA" ] || { echo "FAIL setup: $PEQA is not an executable"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }

# deterministic part of a demo output: the table left of '|', without the wall-time line
strip_time() { sed -e 's/ *|.*$//' -e '/^total wall time/d' "$1"; }

# run 1
if "$PEQA" demo --quick > "$T/out1" 2> "$T/err1"; then ok "demo --quick runs"; else ko "demo --quick runs" "exit $?: $(tail -n 1 "$T/err1")"; fi

# The perplexity table: bits task fp32 RTN PEQA RTN/fp32 PEQA/fp32 recovered (8 fields); the size
# table: bits task fp32_bytes quant_bytes scale_bytes trainable optim_bytes | peqa_s tok/s.
PPL='$1 ~ /^[234]$/ && ($2 == "arith" || $2 == "lang") && NF == 8'
SZ='$1 ~ /^[234]$/ && ($2 == "arith" || $2 == "lang") && $8 == "|"'
for t in PPL SZ; do
    eval "sel=\$$t"
    rows=$(awk "$sel { print \$1 \$2 }" "$T/out1" | sort | tr '\n' ' ')
    if [ "$rows" = "2arith 2lang 3arith 3lang 4arith 4lang " ]; then ok "$t table has every bit width x task row"
    else ko "$t table has every bit width x task row" "rows: '$rows'"; fi
done
num='^[0-9]+(\.[0-9]+)?$'
bad=$(awk -v num="$num" "$PPL"' {
        for (i = 3; i <= 5; i++) if ($i !~ num) print $1 " " $2 " column " i ": " $i
        for (i = 6; i <= 7; i++) if ($i !~ /^[-+][0-9]+\.[0-9]+%$/) print $1 " " $2 " column " i ": " $i
        if ($8 !~ /^-?[0-9]+%$/ && $8 != "n/a") print $1 " " $2 " recovered: " $8
      }
      '"$SZ"' { for (i = 3; i <= 10; i++) if (i != 8 && $i !~ num) print $1 " " $2 " column " i ": " $i }' "$T/out1")
if [ -z "$bad" ]; then ok "every number is finite"; else ko "every number is finite" "$(echo "$bad" | head -n 1)"; fi
# perplexities above 1; sizes: scale file < quantized model < fp32 model; optimizer = 8 x trainable
bad=$(awk "$PPL"' { if (!($3 > 1 && $4 > 1 && $5 > 1)) print "perplexity <= 1 in " $1 " " $2 }
           '"$SZ"' { if (!($5 > 0 && $5 < $4 && $4 < $3)) print "sizes out of order in " $1 " " $2
                     if (!($7 == 8 * $6)) print "optimizer bytes != 8 x trainable in " $1 " " $2 }' "$T/out1")
if [ -z "$bad" ]; then ok "perplexities and sizes are plausible"; else ko "perplexities and sizes are plausible" "$(echo "$bad" | head -n 1)"; fi

# PEQA < RTN at 3 bits on both tasks
bad=$(awk "$PPL"' && $1 == "3" { n++; if (!($5 < $4)) print $2 ": PEQA " $5 " >= RTN " $4 }
           END { if (n != 2) print "3-bit rows: " n }' "$T/out1")
if [ -z "$bad" ]; then ok "PEQA perplexity below RTN at 3 bits (both tasks)"; else ko "PEQA perplexity below RTN at 3 bits (both tasks)" "$bad"; fi
grep -q '^At 3 bits PEQA recovers' "$T/out1" && ok "recovery line printed" || ko "recovery line printed"

# run 2: one thread, and keep the products; same deterministic output
if "$PEQA" demo --quick --threads 1 --out "$T/keep" > "$T/out2" 2> "$T/err2"; then
    strip_time "$T/out1" > "$T/det1"
    strip_time "$T/out2" > "$T/det2"
    if cmp -s "$T/det1" "$T/det2"; then ok "two runs (2 and 1 threads) print the same table"
    else ko "two runs (2 and 1 threads) print the same table" "$(diff "$T/det1" "$T/det2" | head -n 3 | tr '\n' ' ')"; fi
else
    ko "demo --quick --threads 1 --out runs" "exit $?: $(tail -n 1 "$T/err2")"
fi
if grep -q 'ppl_fp32' "$T/err1" || grep -q ': step ' "$T/out1"; then ko "table on stdout, progress on stderr"
else ok "table on stdout, progress on stderr"; fi

# --out keeps the corpus, quantized models and scale files; eval --scales reproduces the 3-bit lang cell
missing=
for f in arith.train.txt arith.val.txt lang.train.txt lang.val.txt demo.q4.safetensors demo.q3.safetensors \
         demo.q2.safetensors arith.q3.scales lang.q3.scales arith.q2.scales lang.q4.scales; do
    [ -s "$T/keep/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "--out keeps corpus, models and scale files"; else ko "--out keeps corpus, models and scale files" "missing:$missing"; fi
want=$(awk "$PPL"' && $1 == "3" && $2 == "lang" { print $5 }' "$T/out1")
got=$("$PEQA" eval --model "$T/keep/demo.q3.safetensors" --scales "$T/keep/lang.q3.scales" --data "$T/keep/lang.val.txt" \
      --seq 64 2> /dev/null | awk '/^perplexity:/ { print $2 }')
# the table has 4 decimals, eval 6: equal to within the table's rounding
if [ -n "$want" ] && [ -n "$got" ] && awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; exit !(d <= 0.00005001 && d >= -0.00005001) }'
then ok "peqa eval --scales reproduces the 3-bit lang PEQA perplexity ($got)"
else ko "peqa eval --scales reproduces the 3-bit lang PEQA perplexity" "table '$want', eval '$got'"; fi
scale_sz=$(awk "$SZ"' && $1 == "3" && $2 == "lang" { print $5 }' "$T/out1")
file_sz=$(wc -c < "$T/keep/lang.q3.scales" | tr -d ' ')
[ "$scale_sz" = "$file_sz" ] && ok "scale_bytes is the scale file's size" || ko "scale_bytes is the scale file's size" "$scale_sz vs $file_sz"

# errors: one line on stderr, non-zero exit
err_case() { # name, expected exit (any non-zero if empty), args...
    name=$1; want=$2; shift 2
    "$PEQA" "$@" > "$T/eo" 2> "$T/ee"
    rc=$?
    lines=$(wc -l < "$T/ee" | tr -d ' ')
    if [ $rc -ne 0 ] && { [ -z "$want" ] || [ $rc -eq "$want" ]; } && [ "$lines" = 1 ]; then ok "error: $name"
    else ko "error: $name" "exit $rc, $lines stderr lines: $(head -n 1 "$T/ee")"; fi
}
err_case "unknown option" 2 demo --bogus
err_case "bad --steps" 2 demo --steps 0
err_case "--pretrain without -o" 1 demo --pretrain
err_case "missing model" 1 demo --quick --model "$T/nonexistent"
err_case "-o and --out together" 1 demo -o "$T/a" --out "$T/b"

echo "$pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
