/* Machine-limit loops for AVX2 + FMA. The file name decides the flags (-mavx2 -mfma); the
 * functions are called only after bench/limits.c has checked at run time that the CPU and the OS
 * support AVX2 and FMA.
 *
 * The compute loops touch no memory: they measure what the execution ports can retire, which is
 * the ceiling a GEMM kernel can approach once its operands sit in registers and L1. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "bench/peak_avx2.c must be built with -mavx2 -mfma"
#endif
#include <immintrin.h>
#include "limits.h"

/* fp32 FMA peak: 12 independent accumulator chains of vfmadd231ps ymm. One FMA has a latency of
 * 4-5 cycles and current x86 cores issue up to 2 per cycle, so at least 8-10 chains must be in
 * flight to keep both pipes busy; 12 cover that with margin and still fit the 16 ymm registers
 * with the two multiplicands (no spills: check with objdump -d). fma(a, b, c) cannot be folded
 * or reassociated by the compiler (it rounds once), so every FMA written here is executed. */
float bench_fma_loop__avx2(uint64_t iters)
{
    const __m256 a = _mm256_set1_ps(1e-3f), b = _mm256_set1_ps(1e-3f);
    /* Distinct starting values: identical chains would be merged into one by the compiler. */
    __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(1.0f), c2 = _mm256_set1_ps(2.0f),
           c3 = _mm256_set1_ps(3.0f), c4 = _mm256_set1_ps(4.0f), c5 = _mm256_set1_ps(5.0f),
           c6 = _mm256_set1_ps(6.0f), c7 = _mm256_set1_ps(7.0f), c8 = _mm256_set1_ps(8.0f),
           c9 = _mm256_set1_ps(9.0f), c10 = _mm256_set1_ps(10.0f), c11 = _mm256_set1_ps(11.0f);
    for (uint64_t i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(a, b, c0);
        c1 = _mm256_fmadd_ps(a, b, c1);
        c2 = _mm256_fmadd_ps(a, b, c2);
        c3 = _mm256_fmadd_ps(a, b, c3);
        c4 = _mm256_fmadd_ps(a, b, c4);
        c5 = _mm256_fmadd_ps(a, b, c5);
        c6 = _mm256_fmadd_ps(a, b, c6);
        c7 = _mm256_fmadd_ps(a, b, c7);
        c8 = _mm256_fmadd_ps(a, b, c8);
        c9 = _mm256_fmadd_ps(a, b, c9);
        c10 = _mm256_fmadd_ps(a, b, c10);
        c11 = _mm256_fmadd_ps(a, b, c11);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* int8 dot-product peak: the AVX2 idiom for sums of u8 x s8 products into int32 lanes,
 *     t = vpmaddubsw(u8, s8)   32 products, adjacent pairs added into 16 int16
 *     t = vpmaddwd(t, 1)       adjacent int16 pairs added into 8 int32
 *     acc = vpaddd(acc, t)
 * i.e. 32 multiply-adds = 64 ops per triple; 8 triples per iteration into 8 accumulators.
 *
 * Written as inline assembly, not intrinsics: the products are loop-invariant, and the ways of
 * stopping a compiler from hoisting them (an empty asm "modifying" the operands) made gcc add
 * register copies that cost ~15 % and made the figure unstable. Here each vpmaddubsw is executed as
 * written. Only vpaddd is on a loop-carried path (latency 1), and the four temporaries are
 * rewritten from scratch (no false dependency), so the loop is bound by the throughput of the
 * integer multiply ports (two multiplies per triple). 15 ymm registers, nothing in memory. */
int32_t bench_i8_loop__avx2(uint64_t iters)
{
    __m256i a0 = _mm256_set1_epi32(0), a1 = _mm256_set1_epi32(1), a2 = _mm256_set1_epi32(2),
            a3 = _mm256_set1_epi32(3), a4 = _mm256_set1_epi32(4), a5 = _mm256_set1_epi32(5),
            a6 = _mm256_set1_epi32(6), a7 = _mm256_set1_epi32(7);
    const __m256i u = _mm256_set1_epi8(3), v = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    __m256i t0, t1, t2, t3;
    for (uint64_t i = 0; i < iters; i++) {
        __asm__ volatile(
            "vpmaddubsw %[v], %[u], %[t0]\n\t"
            "vpmaddubsw %[v], %[u], %[t1]\n\t"
            "vpmaddubsw %[v], %[u], %[t2]\n\t"
            "vpmaddubsw %[v], %[u], %[t3]\n\t"
            "vpmaddwd %[one], %[t0], %[t0]\n\t"
            "vpmaddwd %[one], %[t1], %[t1]\n\t"
            "vpmaddwd %[one], %[t2], %[t2]\n\t"
            "vpmaddwd %[one], %[t3], %[t3]\n\t"
            "vpaddd %[t0], %[a0], %[a0]\n\t"
            "vpaddd %[t1], %[a1], %[a1]\n\t"
            "vpaddd %[t2], %[a2], %[a2]\n\t"
            "vpaddd %[t3], %[a3], %[a3]\n\t"
            "vpmaddubsw %[v], %[u], %[t0]\n\t"
            "vpmaddubsw %[v], %[u], %[t1]\n\t"
            "vpmaddubsw %[v], %[u], %[t2]\n\t"
            "vpmaddubsw %[v], %[u], %[t3]\n\t"
            "vpmaddwd %[one], %[t0], %[t0]\n\t"
            "vpmaddwd %[one], %[t1], %[t1]\n\t"
            "vpmaddwd %[one], %[t2], %[t2]\n\t"
            "vpmaddwd %[one], %[t3], %[t3]\n\t"
            "vpaddd %[t0], %[a4], %[a4]\n\t"
            "vpaddd %[t1], %[a5], %[a5]\n\t"
            "vpaddd %[t2], %[a6], %[a6]\n\t"
            "vpaddd %[t3], %[a7], %[a7]\n\t"
            : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4),
              [a5] "+x"(a5), [a6] "+x"(a6), [a7] "+x"(a7), [t0] "=&x"(t0), [t1] "=&x"(t1),
              [t2] "=&x"(t2), [t3] "=&x"(t3)
            : [u] "x"(u), [v] "x"(v), [one] "x"(ones));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                 _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

/* DRAM read: 128 bytes (4 ymm loads) per iteration into 4 independent 64-bit-lane sums. The
 * adds are far cheaper than the loads, so the loop runs at the rate memory delivers lines. Plain
 * (temporal) loads, as the kernels use, and like the GEMV kernels a software prefetch of each
 * line BENCH_READ_PF bytes ahead (limits.h), on top of the hardware prefetchers. */
uint64_t bench_read_loop__avx2(const uint64_t *buf, size_t words)
{
    const __m256i *p = (const __m256i *)buf;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < words / 4; i += 4) {
        _mm_prefetch((const char *)(p + i) + BENCH_READ_PF, _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i + 2) + BENCH_READ_PF, _MM_HINT_T0);
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(p + i));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(p + i + 1));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256(p + i + 2));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256(p + i + 3));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi64(h, _mm_unpackhi_epi64(h, h));
    return (uint64_t)_mm_cvtsi128_si64(h);
}
