#!/bin/sh
# make check: the native suite (the runner covers every ISA level this CPU has), then (x86-64,
# when a second directory is given) the emulated build's kernel tests, then the AArch64 build
# under qemu with and without dotprod. Prints every case line and, last, the sum of all runs as
# "N passed, N failed, N skipped". Exit 1 when anything failed.
#   usage: tests/check.sh BUILD [EMU_BUILD]
BUILD=${1:-build/native}
EMU_BUILD=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
run() { # label, command...
    label=$1; shift
    echo "## $label: $*"
    "$@" > "$tmp/out" 2>&1
    rc=$?
    cat "$tmp/out"
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$tmp/out" | tail -n 1)
    if [ -z "$last" ]; then
        echo "FAIL  $label: runner ended without a summary (exit $rc)"
        echo "0 passed, 1 failed, 0 skipped" >> "$tmp/sums"
        status=1
    else
        echo "$last" >> "$tmp/sums"
        [ $rc -eq 0 ] || status=1
    fi
}
run "native" "$BUILD/peqa_tests"
run "cli" sh tests/cli_test.sh "$BUILD/peqa"
run "train cli" sh tests/train_cli_test.sh "$BUILD/peqa"
run "demo" sh tests/demo_test.sh "$BUILD/peqa"
# The AVX-512 / AVX-512 VNNI / AVX-VNNI kernels on emulated intrinsics (Makefile `emu`), for
# the two levels that contain emulated kernels: the golden set, the random edge-shape matrix,
# the dense products, the thread-pool driver cases and the model's bit-identity checks, against
# the scalar reference (memcmp) at 1, 2, 3, 7 and 16 threads; plus the harness itself against
# the native AVX2 instructions (group emu). About 15 s on a 2-core Zen 3.
if [ -n "$EMU_BUILD" ]; then
    run "x86 avx512 + avx512-vnni + avx-vnni kernels on emulated intrinsics" \
        "$EMU_BUILD/peqa_tests" --filter golden,random,dense,pool,model,emu --isa avx2,avx512
fi
if [ -z "$PEQA_NO_CROSS" ]; then
    if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; then
        if make -s -j2 cross >"$tmp/cross.log" 2>&1; then
            run "aarch64 neon+dotprod (qemu -cpu max)" qemu-aarch64 -cpu max build/aarch64/peqa_tests --quick
            run "aarch64 neon without dotprod (qemu -cpu cortex-a53)" qemu-aarch64 -cpu cortex-a53 build/aarch64/peqa_tests --quick
        else
            cat "$tmp/cross.log"
            echo "FAIL  aarch64 cross build"
            echo "0 passed, 1 failed, 0 skipped" >> "$tmp/sums"
            status=1
        fi
    else
        echo "SKIP  aarch64 (install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
        echo "0 passed, 0 failed, 1 skipped" >> "$tmp/sums"
    fi
fi
awk '{p+=$1; f+=$3; s+=$5} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}' "$tmp/sums"
exit $status
