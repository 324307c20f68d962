#ifndef PEQA_AVX2_PANEL_H
#define PEQA_AVX2_PANEL_H
/* The AVX2 pieces of the tile-pair P panel (panel_impl.h, which this header includes at its
 * end): the FMA engine with its three epilogues and the column decode, 32 lanes in four ymm and
 * 3-row register blocks. Users: fwd_gemm (qgemm_avx2.c), gscale and ginput (qgrad_avx2.c).
 * Included after <immintrin.h> and peqa_kernels.h by files built with -mavx2 -mfma. */

#define PANEL_INLINE static inline __attribute__((always_inline))

/* Register block height: MR rows of the broadcast operand x 32 lanes (four ymm). */
#define PANEL_MR 3
/* Columns of a group decoded at a time (a chunk): 128 x 32 floats = 16 KB of L1. */
#define PANEL_KC 128
_Static_assert(PANEL_KC % PEQA_KB == 0, "a chunk is whole k-blocks");

/* ---- the FMA engine ------------------------------------------------------------------------
 * For rows i < mr (mr <= 3), lanes l < 32 (b: kc rows of 32 floats, 32-byte aligned; cin and
 * cout rows of 32 floats, 32-byte aligned; cin may equal cout):
 *     c[i][l] = cin ? cin[32 i + l] : 0
 *     for kk = 0 .. kc-1 ascending:   c[i][l] = fma(a[i * lda + kk], b[32 kk + l], c[i][l])
 * then, by mode (a literal at every call):
 *     FMA_PARK    cout[32 i + l] = c[i][l]
 *     FMA_SCALE   cout[32 i + l] = fma(e[l], c[i][l], cout[32 i + l])   (forward: y = fma(s, P, y))
 *     FMA_DOT     cout[l] = fma(e[32 i + l], c[i][l], cout[l]) for i ascending
 *                                                                   (gscale: ds = fma(dY, P, ds))
 * Each lane is one sequential fma chain over kk, exactly the reference's inner loop.
 * Register plan (mr = 3): 12 accumulators + 3 broadcasts + 1 B vector = 16 ymm. Twelve
 * independent chains cover the FMA latency (4 cycles) times the two FMA pipes; per kk 4 aligned
 * B loads and 3 broadcast loads feed 12 FMAs, one broadcast per 4 FMAs (the forward's former
 * 6 x 16 block of one tile needed one per 2: 7 % slower on Zen 5, a few % on Zen 3). */
enum { FMA_PARK, FMA_SCALE, FMA_DOT };

PANEL_INLINE void fma_rows_x32(const int mode, const int mr, const float *a, int64_t lda, const float *b, int64_t kc,
                               const float *cin, float *cout, const float *e)
{
    const float *a0 = a, *a1 = a + (mr > 1 ? lda : 0), *a2 = a + (mr > 2 ? 2 * lda : 0);
    const __m256 zero = _mm256_setzero_ps();
#define PANEL_CIN(i, q) (mr > (i) && cin ? _mm256_load_ps(cin + 32 * (i) + 8 * (q)) : zero)
    __m256 c00 = PANEL_CIN(0, 0), c01 = PANEL_CIN(0, 1), c02 = PANEL_CIN(0, 2), c03 = PANEL_CIN(0, 3);
    __m256 c10 = PANEL_CIN(1, 0), c11 = PANEL_CIN(1, 1), c12 = PANEL_CIN(1, 2), c13 = PANEL_CIN(1, 3);
    __m256 c20 = PANEL_CIN(2, 0), c21 = PANEL_CIN(2, 1), c22 = PANEL_CIN(2, 2), c23 = PANEL_CIN(2, 3);
#undef PANEL_CIN
    for (int64_t kk = 0; kk < kc; kk++, b += 32) {
        const __m256 t0 = _mm256_broadcast_ss(a0 + kk);
        const __m256 t1 = mr > 1 ? _mm256_broadcast_ss(a1 + kk) : zero;
        const __m256 t2 = mr > 2 ? _mm256_broadcast_ss(a2 + kk) : zero;
        __m256 bb = _mm256_load_ps(b);
        c00 = _mm256_fmadd_ps(t0, bb, c00);
        if (mr > 1) c10 = _mm256_fmadd_ps(t1, bb, c10);
        if (mr > 2) c20 = _mm256_fmadd_ps(t2, bb, c20);
        bb = _mm256_load_ps(b + 8);
        c01 = _mm256_fmadd_ps(t0, bb, c01);
        if (mr > 1) c11 = _mm256_fmadd_ps(t1, bb, c11);
        if (mr > 2) c21 = _mm256_fmadd_ps(t2, bb, c21);
        bb = _mm256_load_ps(b + 16);
        c02 = _mm256_fmadd_ps(t0, bb, c02);
        if (mr > 1) c12 = _mm256_fmadd_ps(t1, bb, c12);
        if (mr > 2) c22 = _mm256_fmadd_ps(t2, bb, c22);
        bb = _mm256_load_ps(b + 24);
        c03 = _mm256_fmadd_ps(t0, bb, c03);
        if (mr > 1) c13 = _mm256_fmadd_ps(t1, bb, c13);
        if (mr > 2) c23 = _mm256_fmadd_ps(t2, bb, c23);
    }
    const __m256 c[12] = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23};
    if (mode == FMA_PARK) {
#pragma GCC unroll 12
        for (int q = 0; q < 4 * mr; q++) _mm256_store_ps(cout + 8 * q, c[q]);
    } else if (mode == FMA_SCALE) {
#pragma GCC unroll 12
        for (int q = 0; q < 4 * mr; q++)
            _mm256_store_ps(cout + 8 * q, _mm256_fmadd_ps(_mm256_load_ps(e + 8 * (q % 4)), c[q], _mm256_load_ps(cout + 8 * q)));
    } else {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m256 d = _mm256_load_ps(cout + 8 * q);
#pragma GCC unroll 3
            for (int i = 0; i < mr; i++) /* m ascending */
                d = _mm256_fmadd_ps(_mm256_load_ps(e + 32 * i + 8 * q), c[4 * i + q], d);
            _mm256_store_ps(cout + 8 * q, d);
        }
    }
}

/* mr (1 .. 3) as a literal: one instantiation per row count and mode. These are out-of-line
 * functions on purpose: inlined into the bigger loop nests, the 16 accumulators and operands no
 * longer fit the 16 ymm registers beside the callers' values, and the spills halved the speed. */
#define PANEL_ROWS_FN(NAME, MODE)                                                                             \
    static __attribute__((noinline)) void NAME(int mr, const float *a, int64_t lda, const float *b, int64_t kc, \
                                               const float *cin, float *cout, const float *e)                  \
    {                                                                                                          \
        switch (mr) {                                                                                          \
        case 1: fma_rows_x32(MODE, 1, a, lda, b, kc, cin, cout, e); break;                                     \
        case 2: fma_rows_x32(MODE, 2, a, lda, b, kc, cin, cout, e); break;                                     \
        default: fma_rows_x32(MODE, PANEL_MR, a, lda, b, kc, cin, cout, e); break;                             \
        }                                                                                                      \
    }
PANEL_ROWS_FN(fma_rows32_park, FMA_PARK)
PANEL_ROWS_FN(fma_rows32_scale, FMA_SCALE)
PANEL_ROWS_FN(fma_rows32_dot, FMA_DOT)
#undef PANEL_ROWS_FN
#define fma_rows32(mode, ...)                                                                              \
    ((mode) == FMA_PARK ? fma_rows32_park(__VA_ARGS__)                                                     \
                        : (mode) == FMA_SCALE ? fma_rows32_scale(__VA_ARGS__) : fma_rows32_dot(__VA_ARGS__))
_Static_assert(PANEL_MR == 3, "fma_rows32 lists the row counts 1 .. 3");

/* ---- column decode ---------------------------------------------------------------------------
 * The 16 rows of a tile in two ymm. A cell is b word vectors of 16 rows, so column kk of the
 * cell is, per row lane, a constant shift and mask of one word vector:
 *     p-bit plane, per = 32 / p columns per word:  word kk / per, t = kk % per,
 *                                                  shift 8 (t % 4) + p (t / 4)
 *     3-bit: low 2 bits from words 0/1 (as p = 2), high bit from word 2: shift 8 (kk % 4) + kk / 4
 * out[kk * ldo + r] = (float)q[16 t + r, 32 c + kk] - z[r]   (cvt exact, then one subtraction,
 * exactly the reference's `(float)q - z`). All 32 columns are written; columns past K hold the
 * padding codes and are never read. Fully unrolled: every shift is an immediate. */
PANEL_INLINE void decode_cols(const int bits, const uint32_t *cell, __m256 z0, __m256 z1, float *out, const int ldo)
{
    if (bits == 3) {
        /* q = low | high << 2; the high bit sits at bit sh of word 2 and is moved straight to
         * bit 2 by one shift (right by sh - 2, or left by 2 - sh for the two columns with sh < 2)
         * and isolated with the mask 4 */
        const __m256i m3 = _mm256_set1_epi32(3), m4 = _mm256_set1_epi32(4);
        const __m256i h0 = _mm256_loadu_si256((const __m256i *)(cell + 32)),
                      h1 = _mm256_loadu_si256((const __m256i *)(cell + 40));
#pragma GCC unroll 32
        for (int kk = 0; kk < 32; kk++) {
            const uint32_t *lw = cell + (kk / 16) * 16;
            const int t = kk % 16, sl = 8 * (t % 4) + 2 * (t / 4), sh = 8 * (kk % 4) + kk / 4;
            __m256i l0 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)lw), sl), m3);
            __m256i l1 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(lw + 8)), sl), m3);
            const __m256i e0 = sh >= 2 ? _mm256_srli_epi32(h0, sh - 2) : _mm256_slli_epi32(h0, 2 - sh);
            const __m256i e1 = sh >= 2 ? _mm256_srli_epi32(h1, sh - 2) : _mm256_slli_epi32(h1, 2 - sh);
            l0 = _mm256_or_si256(l0, _mm256_and_si256(e0, m4));
            l1 = _mm256_or_si256(l1, _mm256_and_si256(e1, m4));
            _mm256_store_ps(out + kk * ldo, _mm256_sub_ps(_mm256_cvtepi32_ps(l0), z0));
            _mm256_store_ps(out + kk * ldo + 8, _mm256_sub_ps(_mm256_cvtepi32_ps(l1), z1));
        }
    } else {
        const int per = 32 / bits;
        const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
#pragma GCC unroll 32
        for (int kk = 0; kk < 32; kk++) {
            const uint32_t *wp = cell + (kk / per) * 16;
            const int t = kk % per, sh = 8 * (t % 4) + bits * (t / 4);
            __m256i q0 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)wp), sh), mask);
            __m256i q1 = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(wp + 8)), sh), mask);
            _mm256_store_ps(out + kk * ldo, _mm256_sub_ps(_mm256_cvtepi32_ps(q0), z0));
            _mm256_store_ps(out + kk * ldo + 8, _mm256_sub_ps(_mm256_cvtepi32_ps(q1), z1));
        }
    }
}

/* The panel's decode (panel_impl.h): one cell of each tile of the pair, lanes 16..31 zero when
 * there is no second tile. */
PANEL_INLINE void panel_decode(const int bits, const uint32_t *c0, const uint32_t *c1, const float *z0,
                               const float *z1, float *out)
{
    decode_cols(bits, c0, _mm256_loadu_ps(z0), _mm256_loadu_ps(z0 + 8), out, 32);
    if (c1)
        decode_cols(bits, c1, _mm256_loadu_ps(z1), _mm256_loadu_ps(z1 + 8), out + 16, 32);
    else
        for (int kk = 0; kk < PEQA_KB; kk++)
            _mm256_store_ps(out + kk * 32 + 16, _mm256_setzero_ps()), _mm256_store_ps(out + kk * 32 + 24, _mm256_setzero_ps());
}

#include "panel_impl.h"

#endif
