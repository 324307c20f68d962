/* Machine limits for the kernel benchmark: what this CPU can do at best, measured here, so that
 * every kernel result can be reported as a fraction of a number from the same machine.
 *
 *   fp32 FMA peak      register-resident chains of independent fused multiply-adds
 *   int8 dot peak      register-resident vpmaddubsw + vpmaddwd + vpaddd chains (the AVX2 integer
 *                      dot-product idiom the int8 kernels use)
 *   DRAM read          a streaming sum over a buffer many times the last-level cache
 *
 * Each is measured on 1..T threads (one worker per thread, started together behind a barrier;
 * the time is the wall time until the slowest finishes). bench/limits.c runs at the baseline
 * target and calls the ISA loops of bench/peak_<isa>.c only after a runtime CPU check. */
#ifndef PEQA_BENCH_LIMITS_H
#define PEQA_BENCH_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Median, min and max of n repeated measurements (in the unit of the measurement). */
typedef struct {
    double median, min, max;
    int n;
} bench_stat;

/* Seconds from CLOCK_MONOTONIC. */
double bench_now(void);
/* Sorts v[0..n-1] (n >= 1) and summarises it. */
bench_stat bench_summarise(double *v, int n);

/* Chooses the loops the limits are measured with: the widest of the ISA level `isa` ("avx512",
 * "avx2"; anything else or a CPU without it: plain C) that this CPU has. Call before measuring. */
void bench_limits_use(const char *isa);
/* Which loops measure the limits, e.g. "avx512 (zmm FMA, vpdpbusd zmm)" or "baseline C". */
const char *bench_limits_method(void);

/* fp32 FMA peak in GFLOP/s (2 flops per lane per FMA) on `threads` threads; each repetition runs
 * for about `seconds`. */
bench_stat bench_limit_fma(int threads, int reps, double seconds);
/* int8 dot-product peak in GOP/s (2 ops per u8 x s8 multiply-add, the convention of 2*M*N*K). */
bench_stat bench_limit_i8(int threads, int reps, double seconds);

/* DRAM read bandwidth in GB/s (1e9 bytes/s): `threads` threads sum disjoint slices of buf. */
typedef struct bench_membuf bench_membuf;
/* Allocates and fills `bytes` (rounded down to 4 KiB pages) with a pattern that differs on every
 * page (so no page is the shared zero page or a deduplicated copy). NULL on failure. */
bench_membuf *bench_membuf_create(size_t bytes);
void bench_membuf_free(bench_membuf *m);
size_t bench_membuf_bytes(const bench_membuf *m);
/* Returns a stat with n = 0 if a checksum mismatch shows the read loop is wrong. */
bench_stat bench_limit_read(bench_membuf *m, int threads, int reps);

/* ---- ISA loops (bench/peak_avx2.c, built with -mavx2 -mfma; x86-64 only) ---- */
/* iters x 12 independent 8-lane FMAs; returns a value depending on every accumulator. */
float bench_fma_loop__avx2(uint64_t iters);
#define BENCH_FMA_FLOPS_PER_ITER__AVX2 (12.0 * 8.0 * 2.0)
/* iters x 8 independent (vpmaddubsw, vpmaddwd, vpaddd) triples of 32 u8 x s8 products each. */
int32_t bench_i8_loop__avx2(uint64_t iters);
#define BENCH_I8_OPS_PER_ITER__AVX2 (8.0 * 32.0 * 2.0)
/* The read loops prefetch each line this many bytes ahead: on Zen 5 a plain sequential read
 * reached 12-18 % less than one with an 8 KB software prefetch, measured alternately in one
 * process; the limit is the faster loop, the one the GEMV kernels are held to. (A prefetch past
 * the buffer's end is harmless: prefetches never fault.) */
#define BENCH_READ_PF 8192
/* Sum of the 64-bit words of buf[0 .. words) (words a multiple of 16, buf 32-byte aligned). */
uint64_t bench_read_loop__avx2(const uint64_t *buf, size_t words);
/* ---- bench/peak_avx512.c (AVX-512 F), peak_avx512vnni.c, peak_avxvnni.c ---- */
/* iters x 16 independent 16-lane FMAs. */
float bench_fma_loop__avx512(uint64_t iters);
#define BENCH_FMA_FLOPS_PER_ITER__AVX512 (16.0 * 16.0 * 2.0)
/* As bench_read_loop__avx2 with 64-byte loads (words a multiple of 32, buf 64-byte aligned). */
uint64_t bench_read_loop__avx512(const uint64_t *buf, size_t words);
/* iters x 12 independent vpdpbusd zmm (64 u8 x s8 multiply-adds each). */
int32_t bench_i8_loop__avx512vnni(uint64_t iters);
#define BENCH_I8_OPS_PER_ITER__AVX512VNNI (12.0 * 64.0 * 2.0)
/* iters x 12 independent vpdpbusd ymm (32 multiply-adds each). */
int32_t bench_i8_loop__avxvnni(uint64_t iters);
#define BENCH_I8_OPS_PER_ITER__AVXVNNI (12.0 * 32.0 * 2.0)

#endif
