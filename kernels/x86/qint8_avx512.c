/* qint8 kernels, AVX-512 (F, BW, VL, DQ): int8 activation quantization (SPEC §7; contract and
 * exact sequence in kernels/ref/qact_ref.c). The integer-activation forward is in
 * qint8_avx512vnni.c (it needs VNNI; without it the AVX2 / AVX-VNNI kernels stay).
 *
 * Per row m and 32-column block (the last one possibly short), the 32 floats in two zmm:
 *   amax = max |x|             vandps of the sign bit, vmaxps, then a horizontal max (stored,
 *                              finished with AVX2): the max of non-negative finite floats is
 *                              exact and does not depend on the order
 *   d    = amax / 127.0f       the reference's single scalar division
 *   xq   = clamp(rint(x / d))  vdivps (correctly rounded like the scalar one), vrndscaleps to
 *                              nearest even, clamp to [-127, 127] (so the conversions below are
 *                              exact and never saturate), vcvtps2dq, vpmovsdb
 * d = 0 (an all-zero block) gives xq = 0 without dividing. A short block is read with a
 * zero-masked load (masked lanes are +0, which cannot raise amax) and written through a
 * 32-byte buffer, so nothing past K is read or written. Bound by the divisions, which cost about
 * the same per element at either vector width: the gain over AVX2 is in the surrounding ops.
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"

static inline __mmask16 lanes(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

static void peqa_qact_32__avx512(int64_t m0, int64_t m1, int64_t k, const float *x, int64_t ldx, int8_t *xq,
                                 int64_t ldq, float *xs, int64_t ldxs)
{
    const int64_t nb = (k + PEQA_KB - 1) / PEQA_KB;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    _Alignas(64) float mx[16];
    for (int64_t m = m0; m < m1; m++)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t k0 = b * PEQA_KB, n = k - k0 < PEQA_KB ? k - k0 : PEQA_KB;
            const float *xp = x + m * ldx + k0;
            const __m512 v0 = _mm512_maskz_loadu_ps(lanes(n), xp), v1 = _mm512_maskz_loadu_ps(lanes(n - 16), xp + 16);
            _mm512_store_ps(mx, _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
            __m256 h8 = _mm256_max_ps(_mm256_load_ps(mx), _mm256_load_ps(mx + 8));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
            const float d = _mm_cvtss_f32(h) / 127.0f;
            _Alignas(32) int8_t out[PEQA_KB] = {0};
            if (d > 0.0f) {
                const __m512 vd = _mm512_set1_ps(d);
                const __m512 r0 = _mm512_roundscale_ps(_mm512_div_ps(v0, vd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                const __m512 r1 = _mm512_roundscale_ps(_mm512_div_ps(v1, vd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                _mm_store_si128((__m128i *)out, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r0, lo), hi))));
                _mm_store_si128((__m128i *)(out + 16),
                                _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r1, lo), hi))));
            }
            memcpy(xq + m * ldq + k0, out, (size_t)n);
            xs[m * ldxs + b] = d;
        }
}

void peqa_init_qint8__avx512(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX-512 F/BW/VL/DQ is all this kernel needs; the caller checked it */
    k->qact = peqa_qact_32__avx512, k->qact_name = "peqa_qact_32__avx512";
}
