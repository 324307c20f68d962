/* int8 dot-product limit for AVX-512 VNNI: vpdpbusd zmm, the instruction of the AVX-512 int8
 * kernels (kernels/x86/qint8_avx512vnni.c). Built with the AVX-512 VNNI flags its name selects;
 * called only when the CPU detection reports AVX-512 VNNI. */
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "bench/peak_avx512vnni.c must be built with -mavx512f -mavx512vnni"
#endif
#include <immintrin.h>
#include "limits.h"

/* 12 independent accumulator chains acc = vpdpbusd(acc, u8 x 64, s8 x 64): 64 multiply-adds
 * (128 ops) per instruction. Each chain is loop-carried through its accumulator only, so the
 * compiler cannot hoist anything, and 12 chains cover a latency of 4-5 cycles x 2 issues per
 * cycle. Nothing touches memory. */
int32_t bench_i8_loop__avx512vnni(uint64_t iters)
{
    const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
    __m512i a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], u, v);
    }
    __m512i s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, a[i]);
    return _mm512_reduce_add_epi32(s);
}
