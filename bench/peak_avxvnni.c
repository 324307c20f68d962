/* int8 dot-product limit for AVX-VNNI: VEX-encoded vpdpbusd ymm, the instruction of the AVX2-level
 * int8 kernels on CPUs that have it (kernels/x86/qint8_avxvnni.c). Built with -mavx2 -mavxvnni
 * (its name selects them); called only when the CPU detection reports AVX-VNNI. */
#if !defined(__AVX2__) || !defined(__AVXVNNI__)
#error "bench/peak_avxvnni.c must be built with -mavx2 -mavxvnni"
#endif
#include <immintrin.h>
#include "limits.h"

/* 12 independent chains acc = vpdpbusd(acc, u8 x 32, s8 x 32): 32 multiply-adds (64 ops) per
 * instruction; as in peak_avx512vnni.c with half the width. 14 ymm of the 16, no memory. */
int32_t bench_i8_loop__avxvnni(uint64_t iters)
{
    const __m256i u = _mm256_set1_epi8(3), v = _mm256_set1_epi8(-2);
    __m256i a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_dpbusd_avx_epi32(a[i], u, v);
    }
    __m256i s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_epi32(s, a[i]);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}
