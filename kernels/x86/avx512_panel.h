#ifndef PEQA_AVX512_PANEL_H
#define PEQA_AVX512_PANEL_H
/* The AVX-512 pieces of the tile-pair P panel (panel_impl.h, which this header includes at its
 * end): the FMA engine with its three epilogues and the column decode. Users: fwd_gemm
 * (qgemm_avx512.c), gscale and ginput (qgrad_avx512.c). Included after x86_isa.h and
 * peqa_kernels.h.
 *
 * Lane layout: 32 lanes in two zmm = the 32 rows n of a tile pair t, t + 1 (gscale, fwd_gemm) or
 * 32 columns k of a k-block (ginput). Every lane is one output's own chain; no reduction ever
 * crosses lanes, so tiles, chunks, ranges and thread counts change no bit. */

#define PANEL_INLINE static inline __attribute__((always_inline))

/* Register block height of the engine: MR rows of the broadcast operand x 32 lanes. */
#define PANEL_MR 6
/* Columns of a group decoded at a time (a chunk): 128 x 32 floats = 16 KB of L1. */
#define PANEL_KC 128
_Static_assert(PANEL_KC % PEQA_KB == 0, "a chunk is whole k-blocks");

/* Lanes l < n set (n clamped to 0 .. 16): the rows of a tile that exist, or a column tail. */
static inline __mmask16 lanes(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

/* ---- the FMA engine ------------------------------------------------------------------------
 * For rows i < mr, lanes l < 32 (b: kc rows of 32 floats, 64-byte aligned):
 *     c[i][l] = cin ? cin[32 i + l] : 0
 *     for kk = 0 .. kc-1 ascending:   c[i][l] = fma(a[i * lda + kk], b[32 kk + l], c[i][l])
 * then, by mode (a literal at every call):
 *     FMA_PARK    cout[32 i + l] = c[i][l]                         (P parked between chunks;
 *                                                                    ginput's dX chains)
 *     FMA_SCALE   cout[32 i + l] = fma(e[l], c[i][l], cout[32 i + l])   (forward: y = fma(s, P, y))
 *     FMA_DOT     cout[l] = fma(e[32 i + l], c[i][l], cout[l]) for i ascending
 *                                                                   (gscale: ds = fma(dY, P, ds))
 * Each lane's chain over kk is exactly the reference's inner loop, and the epilogues are the
 * reference's next operation on P. Register plan (mr = 6): 12 accumulators, 2 B vectors, the
 * broadcasts: 12 independent chains cover the FMA latency (4) x two 512-bit FMA pipes; per step
 * 2 aligned B loads and 6 broadcasts feed 12 FMAs. */
enum { FMA_PARK, FMA_SCALE, FMA_DOT };

PANEL_INLINE void fma_rows_x32(const int mode, const int mr, const float *a, int64_t lda, const float *b, int64_t kc,
                               const float *cin, float *cout, const float *e)
{
    __m512 c[2 * PANEL_MR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        c[2 * i] = cin ? _mm512_load_ps(cin + 32 * i) : _mm512_setzero_ps();
        c[2 * i + 1] = cin ? _mm512_load_ps(cin + 32 * i + 16) : _mm512_setzero_ps();
    }
    for (int64_t kk = 0; kk < kc; kk++, b += 32) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512 t = _mm512_set1_ps(a[i * lda + kk]);
            c[2 * i] = _mm512_fmadd_ps(t, b0, c[2 * i]);
            c[2 * i + 1] = _mm512_fmadd_ps(t, b1, c[2 * i + 1]);
        }
    }
    if (mode == FMA_PARK) {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            _mm512_store_ps(cout + 32 * i, c[2 * i]);
            _mm512_store_ps(cout + 32 * i + 16, c[2 * i + 1]);
        }
    } else if (mode == FMA_SCALE) {
        const __m512 s0 = _mm512_load_ps(e), s1 = _mm512_load_ps(e + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            _mm512_store_ps(cout + 32 * i, _mm512_fmadd_ps(s0, c[2 * i], _mm512_load_ps(cout + 32 * i)));
            _mm512_store_ps(cout + 32 * i + 16, _mm512_fmadd_ps(s1, c[2 * i + 1], _mm512_load_ps(cout + 32 * i + 16)));
        }
    } else {
        __m512 d0 = _mm512_load_ps(cout), d1 = _mm512_load_ps(cout + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) { /* m ascending */
            d0 = _mm512_fmadd_ps(_mm512_load_ps(e + 32 * i), c[2 * i], d0);
            d1 = _mm512_fmadd_ps(_mm512_load_ps(e + 32 * i + 16), c[2 * i + 1], d1);
        }
        _mm512_store_ps(cout, d0), _mm512_store_ps(cout + 16, d1);
    }
}

/* mr (1 .. PANEL_MR) as a literal: one instantiation per row count, chosen by a switch. */
PANEL_INLINE void fma_rows32(const int mode, int mr, const float *a, int64_t lda, const float *b, int64_t kc,
                             const float *cin, float *cout, const float *e)
{
    switch (mr) {
    case 1: fma_rows_x32(mode, 1, a, lda, b, kc, cin, cout, e); break;
    case 2: fma_rows_x32(mode, 2, a, lda, b, kc, cin, cout, e); break;
    case 3: fma_rows_x32(mode, 3, a, lda, b, kc, cin, cout, e); break;
    case 4: fma_rows_x32(mode, 4, a, lda, b, kc, cin, cout, e); break;
    case 5: fma_rows_x32(mode, 5, a, lda, b, kc, cin, cout, e); break;
    default: fma_rows_x32(mode, PANEL_MR, a, lda, b, kc, cin, cout, e); break;
    }
}
_Static_assert(PANEL_MR == 6, "fma_rows32 lists the row counts 1 .. 6");

/* ---- column decode ---------------------------------------------------------------------------
 * The 16 rows of a tile in one zmm. Column kk of a cell is, per row lane, a constant shift and
 * mask of one word vector (layout: kernels/peqa_kernels.h):
 *     p-bit plane, per = 32 / p:  word kk / per, t = kk % per, shift 8 (t % 4) + p (t / 4)
 *     3-bit: low 2 bits from words 0/1 (as p = 2), the high bit from word 2 at bit
 *            8 (kk % 4) + kk / 4, moved straight to bit 2 by one shift and masked with 4
 * out[kk * ldo + r] = (float)q[16 t + r, 32 c + kk] − z[r]: vcvtdq2ps (exact) then one vsubps,
 * exactly the reference's (float)q − z. All 32 columns are written (padding codes are 0). */
PANEL_INLINE void decode_cols(const int bits, const uint32_t *cell, __m512 z, float *out, const int ldo)
{
    if (bits == 3) {
        const __m512i m3 = _mm512_set1_epi32(3), m4 = _mm512_set1_epi32(4);
        const __m512i h = _mm512_loadu_si512(cell + 32);
#pragma GCC unroll 32
        for (int kk = 0; kk < 32; kk++) {
            const int t = kk % 16, sl = 8 * (t % 4) + 2 * (t / 4), sh = 8 * (kk % 4) + kk / 4;
            const __m512i l = _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + (kk / 16) * 16), (unsigned)sl), m3);
            const __m512i e = sh >= 2 ? _mm512_srli_epi32(h, (unsigned)(sh - 2)) : _mm512_slli_epi32(h, (unsigned)(2 - sh));
            _mm512_store_ps(out + kk * ldo, _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_or_si512(l, _mm512_and_si512(e, m4))), z));
        }
    } else {
        const int per = 32 / bits;
        const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
#pragma GCC unroll 32
        for (int kk = 0; kk < 32; kk++) {
            const int t = kk % per, sh = 8 * (t % 4) + bits * (t / 4);
            const __m512i q = _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + (kk / per) * 16), (unsigned)sh), mask);
            _mm512_store_ps(out + kk * ldo, _mm512_sub_ps(_mm512_cvtepi32_ps(q), z));
        }
    }
}

/* The panel's decode (panel_impl.h): one cell of each tile of the pair, lanes 16..31 zero when
 * there is no second tile. */
PANEL_INLINE void panel_decode(const int bits, const uint32_t *c0, const uint32_t *c1, const float *z0,
                               const float *z1, float *out)
{
    decode_cols(bits, c0, _mm512_loadu_ps(z0), out, 32);
    if (c1)
        decode_cols(bits, c1, _mm512_loadu_ps(z1), out + 16, 32);
    else
        for (int kk = 0; kk < PEQA_KB; kk++) _mm512_store_ps(out + kk * 32 + 16, _mm512_setzero_ps());
}

#include "panel_impl.h"

#endif
