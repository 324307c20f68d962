/* Machine-limit loops for AVX-512 F (512-bit FMA and loads). The file name decides the flags
 * (-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma); bench/limits.c calls these only after the
 * library's CPU detection (CPUID + XGETBV with the ZMM and opmask state enabled) reports AVX-512.
 * The compute loop touches no memory, as in peak_avx2.c. */
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "bench/peak_avx512.c must be built with -mavx512f -mfma"
#endif
#include <immintrin.h>
#include "limits.h"

/* fp32 FMA peak: 16 independent chains of vfmadd231ps zmm. Cores with two 512-bit FMA pipes and
 * a latency of 4 cycles (Zen 5, Sapphire Rapids) need 8 chains in flight; 16 leave margin and
 * fit the 32 zmm registers with the two multiplicands. Distinct starting values keep the
 * compiler from merging chains; fma rounds once, so none can be folded or reassociated. */
float bench_fma_loop__avx512(uint64_t iters)
{
    const __m512 a = _mm512_set1_ps(1e-3f), b = _mm512_set1_ps(1e-3f);
    __m512 c[16];
    for (int i = 0; i < 16; i++) c[i] = _mm512_set1_ps((float)i);
    for (uint64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) c[i] = _mm512_fmadd_ps(a, b, c[i]);
    }
    __m512 s = c[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, c[i]);
    return _mm512_reduce_add_ps(s);
}

/* DRAM read with 64-byte loads: 256 bytes (4 zmm) per iteration into 4 independent sums, each
 * line prefetched BENCH_READ_PF bytes ahead as the GEMV kernels do (limits.h). */
uint64_t bench_read_loop__avx512(const uint64_t *buf, size_t words)
{
    const __m512i *p = (const __m512i *)buf;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < words / 8; i += 4) {
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(p + i + l) + BENCH_READ_PF, _MM_HINT_T0);
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(p + i));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(p + i + 1));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(p + i + 2));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(p + i + 3));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
}
