#!/bin/sh
# Runs the kernel benchmark N times and prints, per result row, the median over the runs (the
# machine this project is measured on is shared: single runs wander by 30 % and more).
#   usage: bench/median_runs.sh N [bench_kernels options...]     (BENCH=path overrides the binary)
# Columns: medians of time, GFLOP/s (GOP/s for fwd_i8), GB/s of weight bytes, %bw and %peak as each
# run computed them against its own measured limits; speedup = median 1-thread time / median time.
set -eu
n=${1:?usage: bench/median_runs.sh N [bench_kernels options]}
shift
bin=${BENCH:-build/native/bench_kernels}
[ -x "$bin" ] || { echo "median_runs: $bin not found (make bench)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
while [ "$i" -lt "$n" ]; do
    i=$((i + 1))
    echo "median_runs: run $i/$n" >&2
    "$bin" "$@" > "$tmp/run$i.txt" || { cat "$tmp/run$i.txt"; exit 1; }
done
head -n 3 "$tmp/run1.txt"
echo "medians of $n runs of: $bin $*"
cat "$tmp"/run*.txt | awk '
function med(s,   a, k, i, j, t) {
    k = split(s, a, " ")
    for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
/ thr: / { lk = $1 " " $2 " thr"; lim[lk] = lim[lk] " " $4; unit[lk] = $5; next }
$1 ~ /^(fwd|fwd_i8|gscale|ginput|bwd)$/ && $2 ~ /x/ {
    key = $1 "|" $2 "|" $3 "|" $5 "|" $6 "|" $7
    if (!(key in t)) order[++nk] = key
    t[key] = t[key] " " $9; gf[key] = gf[key] " " $10; gb[key] = gb[key] " " $11
    bw[key] = bw[key] " " $12; pk[key] = pk[key] " " $13
}
END {
    for (l in lim) printf "  %-22s %8.1f %s (median; runs:%s)\n", l ":", med(lim[l]), unit[l], lim[l]
    printf "\n%-7s %-11s %5s %4s %5s %3s %10s %9s %7s %4s %5s %7s\n", "kernel", "N x K", "M", "bits", "g", "thr", "time_ms", "GFLOP/s", "GB/s", "%bw", "%peak", "speedup"
    for (i = 1; i <= nk; i++) {
        key = order[i]; split(key, f, "|")
        one = f[1] "|" f[2] "|" f[3] "|" f[4] "|" f[5] "|1"
        sp = (f[6] != 1 && (one in t)) ? sprintf("%6.2fx", med(t[one]) / med(t[key])) : ""
        printf "%-7s %-11s %5s %4s %5s %3s %10.3f %9.1f %7.2f %4d %5d %7s\n", f[1], f[2], f[3], f[4], f[5], f[6],
               med(t[key]), med(gf[key]), med(gb[key]), med(bw[key]), med(pk[key]), sp
    }
}'
