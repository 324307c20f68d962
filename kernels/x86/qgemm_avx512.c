/* qgemm kernels, AVX-512 (F, BW, VL, DQ) + FMA: unpack, dequant and the fp32-activation forward
 * (SPEC §4, §6).
 *
 *   unpack    codes[n, k] = q[n, k]                                 row form (avx512_codes.h)
 *   dequant   out[n, k]   = s[n, j] · ((float)q[n, k] − z[n, j])   row form
 *   fwd_gemv  Y[m, n] = Σ_j s[n, j] · P[m, n, j]    (M = 1)     4 tiles in flight, decode in registers
 *   fwd_gemm  the same, M > 1: the tile-pair P panel (avx512_panel.h), 6 x 32 register blocks
 *
 * Bits. Each output runs exactly the scalar reference's binary32 sequence (kernels/ref/):
 *     y = 0;  for j: { p = 0;  for k in group j ascending: p = fma(x[m,k], (float)q - z, p);
 *                      y = fma(s[n,j], p, y) }
 * with one vfmadd where the reference has fmaf and d = (float)q − z as its own correctly rounded
 * operation before it. Lane layout: one zmm = the 16 rows n of a packed tile (lane r = row
 * 16 t + r), which is exactly one 64-byte word vector of the packed layout, so a load needs no
 * shuffle, and a reduction never crosses lanes: results do not depend on tiles, chunks, ranges
 * or thread counts. This is the AVX2 file's design (qgemm_avx2.c) with one zmm where it has
 * two ymm, and more registers for more independent chains.
 *
 * Column decoder (field_sub_z, col_sub_z): (float)q − z of one column for the 16 rows.
 *   b = 2, 4, 8: the column's field sits at bit sh = 8 (c mod 4) + b (c div 4) of its word
 *     (c = kk mod 32/b); vpandd with ((2^b − 1) << sh) leaves q · 2^sh (<= 8 significant bits,
 *     converted exactly by vcvtdq2ps), and d = fma(q · 2^sh, 2^−sh, −z): the product is exactly
 *     q, so the FMA rounds once, to the reference's fl(q − z). The top field of a word
 *     (sh + b = 32) would be negative as an int32, so it is shifted down instead (scale 1).
 *   b = 3: q = ((L >> sl) & 3) | ((H >> sh) & 1) << 2 from the 2-bit plane word L and the 1-bit
 *     plane word H, converted, then vsubps z.
 *
 * Tails, in one place: decoders always decode whole cells (padding codes are 0, padded rows have
 * s = z = 0, all finite), loops that consume decoded values are bounded by K, and stores are
 * masked to rows < N. fwd_gemv decodes full k-blocks in registers and sends a last partial
 * k-block through cell_sub_z (the same column decoder, stored); fwd_gemm decodes whole cells into
 * its panel (avx512_panel.h: shift, mask, vcvtdq2ps, vsubps, the same bits).
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"
#include "avx512_codes.h"
#include "avx512_panel.h"

#define INLINE static inline __attribute__((always_inline))
#define ALIGN64 __attribute__((aligned(64)))

/* ---- the column decoder ----------------------------------------------------------------- */

INLINE __m512 field_sub_z(__m512i word, int bits, int c, __m512 nz)
{
    const int sh = 8 * (c & 3) + bits * (c >> 2);
    if (sh + bits == 32) /* the top field: shifted down it is exactly q, scale 1 */
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(word, sh)), _mm512_set1_ps(1.0f), nz);
    __m512i qs = _mm512_and_si512(word, _mm512_set1_epi32(((1 << bits) - 1) << sh));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(qs), _mm512_set1_ps(1.0f / (float)(1u << sh)), nz);
}

/* 3-bit column kk: low two bits from word kk / 16 (2-bit plane, field t = kk mod 16 at bit
 * 8 (t mod 4) + 2 (t div 4)), the high bit from word 2 (1-bit plane, bit 8 (kk mod 4) + kk div 4),
 * moved straight to bit 2 by one shift and isolated with the mask 4. */
INLINE __m512i code3(const uint32_t *cell, int kk)
{
    const int t = kk & 15, sl = 8 * (t & 3) + 2 * (t >> 2), sh = 8 * (kk & 3) + (kk >> 2);
    const __m512i lo = _mm512_loadu_si512(cell + (kk >> 4) * PEQA_NR);
    const __m512i hi = _mm512_loadu_si512(cell + 2 * PEQA_NR);
    const __m512i e = sh >= 2 ? _mm512_srli_epi32(hi, (unsigned)(sh - 2)) : _mm512_slli_epi32(hi, (unsigned)(2 - sh));
    return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(lo, (unsigned)sl), _mm512_set1_epi32(3)),
                           _mm512_and_si512(e, _mm512_set1_epi32(4)));
}

/* (float)q − z of column kk (0 .. 31) of a cell for its 16 rows; nz = −z. */
INLINE __m512 col_sub_z(const uint32_t *cell, int bits, int kk, __m512 z, __m512 nz)
{
    if (bits == 3) return _mm512_sub_ps(_mm512_cvtepi32_ps(code3(cell, kk)), z);
    const int per = 32 / bits;
    return field_sub_z(_mm512_loadu_si512(cell + kk / per * PEQA_NR), bits, kk % per, nz);
}

static inline __m512 negate(__m512 v) { return _mm512_xor_ps(v, _mm512_set1_ps(-0.0f)); }

/* ---- decoded cells (fwd_gemm panels, fwd_gemv tails) -------------------------------------
 * d[kk * 16 + r] = (float)q[16 t + r, 32 c + kk] − z[r] for a whole cell: 2 KB, one aligned
 * zmm per column. */
INLINE void cell_sub_z_bits(const uint32_t *restrict cell, int bits, __m512 z, float *restrict d)
{
    const __m512 nz = negate(z);
#pragma GCC unroll 32
    for (int kk = 0; kk < PEQA_KB; kk++) _mm512_store_ps(d + kk * PEQA_NR, col_sub_z(cell, bits, kk, z, nz));
}
static void cell_sub_z_b2(const uint32_t *c, __m512 z, float *d) { cell_sub_z_bits(c, 2, z, d); }
static void cell_sub_z_b3(const uint32_t *c, __m512 z, float *d) { cell_sub_z_bits(c, 3, z, d); }
static void cell_sub_z_b4(const uint32_t *c, __m512 z, float *d) { cell_sub_z_bits(c, 4, z, d); }
static void cell_sub_z_b8(const uint32_t *c, __m512 z, float *d) { cell_sub_z_bits(c, 8, z, d); }

static inline void cell_sub_z(const uint32_t *cell, int bits, __m512 z, float *d)
{
    switch (bits) {
    case 2: cell_sub_z_b2(cell, z, d); break;
    case 3: cell_sub_z_b3(cell, z, d); break;
    case 4: cell_sub_z_b4(cell, z, d); break;
    default: cell_sub_z_b8(cell, z, d); break;
    }
}

/* ---- unpack and dequant: row form ------------------------------------------------------
 * One row r of a cell is two zmm of 16 int32 codes (row_half: broadcast of the row's words,
 * variable shift, mask), so no transpose is needed: unpack narrows them to bytes (vpmovdb,
 * exact for codes <= 255), dequant converts (exact), subtracts z and multiplies by s of the row,
 * the reference's two rounded operations in its order (a k-block lies inside one group).
 * Rows past n1 are not touched; columns past K are cut by a byte copy (unpack) or a write mask
 * (dequant). Both are bound by the output stream (1 or 4 bytes per code), not by the decode. */
INLINE void unpack_impl(int bits, const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *codes, int64_t ldc)
{
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        const int nr = (int)min64(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            const int64_t kn = min64(PEQA_KB, w->k - c * PEQA_KB);
            const uint32_t *cell = peqa_cell(w, t, c);
            uint8_t *dst = codes + (t * PEQA_NR - n0) * ldc + c * PEQA_KB;
            for (int r = 0; r < nr; r++)
                for (int h = 0; h < 2 && 16 * h < kn; h++) {
                    const __m128i b = _mm512_cvtepi32_epi8(row_half(bits, cell, r, h));
                    if (kn >= 16 * h + 16) {
                        _mm_storeu_si128((__m128i *)(dst + r * ldc + 16 * h), b);
                    } else {
                        uint8_t tmp[16];
                        _mm_storeu_si128((__m128i *)tmp, b);
                        memcpy(dst + r * ldc + 16 * h, tmp, (size_t)(kn - 16 * h));
                    }
                }
        }
    }
}

INLINE void dequant_impl(int bits, const peqa_qw *w, int64_t n0, int64_t n1, float *out, int64_t ldo)
{
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        const int nr = (int)min64(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            const int64_t kn = min64(PEQA_KB, w->k - c * PEQA_KB), j = c * PEQA_KB / w->g;
            const float *st = w->s + (t * w->ng + j) * PEQA_NR, *zt = w->z + (t * w->ng + j) * PEQA_NR;
            const uint32_t *cell = peqa_cell(w, t, c);
            for (int r = 0; r < nr; r++) {
                const __m512 s = _mm512_set1_ps(st[r]), z = _mm512_set1_ps(zt[r]);
                float *dst = out + (t * PEQA_NR + r - n0) * ldo + c * PEQA_KB;
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m512 d = _mm512_sub_ps(_mm512_cvtepi32_ps(row_half(bits, cell, r, h)), z);
                    _mm512_mask_storeu_ps(dst + 16 * h, lanes(kn - 16 * h), _mm512_mul_ps(s, d));
                }
            }
        }
    }
}

/* ---- fwd_gemv: M = 1, decoding in registers ---------------------------------------------
 * Each weight is used once, so the decode is not amortised: per column and tile the column
 * decoder (vpandd, vcvtdq2ps, vfmadd; b = 3: shifts, ands, or, vcvtdq2ps, vsubps) plus the
 * accumulating vfmadd. A lane's p is one sequential FMA chain (latency 4), so GT = 4 tiles run
 * together: 4 chains share each broadcast of x[k] and hide the latency behind the decode work.
 * Register plan (b = 2, 4, 8): 4 p + 4 (−z) + 4 word vectors + the broadcast + decode
 * temporaries + the mask / scale constants: about 20 of the 32 zmm, no spills. */
#define GT 4
/* The weights stream from DRAM once. Each tile's code stream is prefetched PF_DIST bytes ahead,
 * and z and s a few groups ahead as each group starts (peqa_prefetch_sz): with GT tiles the
 * kernel reads 3 GT streams. Measured on Zen 5 (4096 x 4096, g = 128, A/B in one process):
 * no prefetch 0.85 ms, codes only 0.53 ms, codes + s/z 0.43-0.47 ms (4-bit); distances of 1-4 KB
 * and 2-4 groups measure alike. */
#define PF_DIST 2048

/* p[v] += the 32 columns of one full cell of each of the nt tiles (cell[v]), ascending. */
INLINE void gemv_cells(int nt, const uint32_t *const *cell, int bits, const float *xk, const __m512 *z, __m512 *p)
{
    __m512 nz[GT];
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) nz[v] = negate(z[v]);
    if (bits == 3) {
#pragma GCC unroll 32
        for (int kk = 0; kk < PEQA_KB; kk++) {
            const __m512 xb = _mm512_set1_ps(xk[kk]);
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) p[v] = _mm512_fmadd_ps(xb, col_sub_z(cell[v], 3, kk, z[v], nz[v]), p[v]);
        }
        return;
    }
    const int per = 32 / bits; /* columns per word */
#pragma GCC unroll 8
    for (int wi = 0; wi < bits; wi++) {
        __m512i wv[GT];
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) wv[v] = _mm512_loadu_si512(cell[v] + wi * PEQA_NR);
#pragma GCC unroll 16
        for (int c = 0; c < per; c++) {
            const __m512 xb = _mm512_set1_ps(xk[wi * per + c]);
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) p[v] = _mm512_fmadd_ps(xb, field_sub_z(wv[v], bits, c, nz[v]), p[v]);
        }
    }
}

/* Y[m, 16 t .. 16 (t + nt) - 1] for one row x of X (only rows < n1 stored). */
INLINE void gemv_tiles(const peqa_qw *w, int bits, int nt, int64_t t, int64_t n1, const float *xr, float *yr)
{
    const int64_t K = w->k, G = w->ng, g = w->g, cstride = (int64_t)bits * PEQA_NR;
    const uint32_t *tile[GT];
    const float *st[GT], *zt[GT];
    __m512 y[GT];
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) {
        tile[v] = peqa_cell(w, t + v, 0);
        st[v] = w->s + (t + v) * G * PEQA_NR, zt[v] = w->z + (t + v) * G * PEQA_NR;
        y[v] = _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < G; j++) {
        const int64_t ka = j * g, kb = min64(ka + g, K);
        __m512 z[GT], p[GT];
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) {
            z[v] = _mm512_loadu_ps(zt[v] + j * PEQA_NR), p[v] = _mm512_setzero_ps();
            peqa_prefetch_sz(w, t + v, j);
        }
        int64_t k = ka;
        for (; k + PEQA_KB <= kb; k += PEQA_KB) {
            const uint32_t *cell[GT];
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) {
                cell[v] = tile[v] + k / PEQA_KB * cstride;
                peqa_prefetch_cell(cell[v], bits, PF_DIST);
            }
            gemv_cells(nt, cell, bits, xr + k, z, p);
        }
        if (k < kb) { /* the last k-block of the row, shorter than 32: decoded, then consumed */
            float d[PEQA_KB * PEQA_NR] ALIGN64;
            for (int v = 0; v < nt; v++) {
                cell_sub_z(tile[v] + k / PEQA_KB * cstride, bits, z[v], d);
                for (int64_t kk = 0; kk < kb - k; kk++)
                    p[v] = _mm512_fmadd_ps(_mm512_set1_ps(xr[k + kk]), _mm512_load_ps(d + kk * PEQA_NR), p[v]);
            }
        }
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) y[v] = _mm512_fmadd_ps(_mm512_loadu_ps(st[v] + j * PEQA_NR), p[v], y[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) _mm512_mask_storeu_ps(yr + (t + v) * PEQA_NR, lanes(n1 - (t + v) * PEQA_NR), y[v]);
}

INLINE void gemv_impl(const peqa_qw *w, int bits, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                      const float *x, int64_t ldx, float *y, int64_t ldy)
{
    const int64_t t0 = n0 / PEQA_NR, t1 = (n1 + PEQA_NR - 1) / PEQA_NR;
    for (int64_t m = m0; m < m1; m++) {
        int64_t t = t0;
        for (; t + GT <= t1; t += GT) gemv_tiles(w, bits, GT, t, n1, x + m * ldx, y + m * ldy);
        for (; t < t1; t++) gemv_tiles(w, bits, 1, t, n1, x + m * ldx, y + m * ldy);
    }
}

/* ---- fwd_gemm: M > 1 ---------------------------------------------------------------------
 * panel_gemm (panel_impl.h): the scale gradient's loop nest over tile pairs with the forward's
 * epilogue y = fma(s, P, y), on this file's decode and 6 x 32 FMA engine (avx512_panel.h). Two
 * tiles side by side halve the broadcasts of x per FMA (6 for 12, against 12 for 12 in the
 * former 12 x 16 block of one tile), which is what limited the one-tile kernel: 133 -> 213
 * GFLOP/s at 4096 x 4096 x 512, 4-bit, g = 128, one Zen 5 core. */

/* ---- the slots ------------------------------------------------------------------------- */

#define QGEMM_ENTRY(B)                                                                                      \
    static void peqa_unpack_q##B##_16x32__avx512(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *codes,  \
                                                 int64_t ldc)                                               \
    {                                                                                                        \
        unpack_impl(B, w, n0, n1, codes, ldc);                                                               \
    }                                                                                                        \
    static void peqa_dequant_q##B##_16x32__avx512(const peqa_qw *w, int64_t n0, int64_t n1, float *out,     \
                                                  int64_t ldo)                                              \
    {                                                                                                        \
        dequant_impl(B, w, n0, n1, out, ldo);                                                                \
    }                                                                                                        \
    static void peqa_fwd_gemv_q##B##_1x16__avx512(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,     \
                                                  int64_t n1, const float *x, int64_t ldx, float *y,         \
                                                  int64_t ldy)                                               \
    {                                                                                                        \
        gemv_impl(w, B, m0, m1, n0, n1, x, ldx, y, ldy);                                                     \
    }                                                                                                        \
    static void peqa_fwd_gemm_q##B##_6x32__avx512(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,    \
                                                   int64_t n1, const float *x, int64_t ldx, float *y,        \
                                                   int64_t ldy)                                              \
    {                                                                                                        \
        panel_gemm(B, w, m0, m1, n0, n1, x, ldx, y, ldy);                                                    \
    }
QGEMM_ENTRY(2)
QGEMM_ENTRY(3)
QGEMM_ENTRY(4)
QGEMM_ENTRY(8)
#undef QGEMM_ENTRY

void peqa_init_qgemm__avx512(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX-512 F/BW/VL/DQ + FMA is all these kernels need; the caller checked it */
    static const peqa_fwd_fn gemv[PEQA_NBITS] = {peqa_fwd_gemv_q2_1x16__avx512, peqa_fwd_gemv_q3_1x16__avx512,
                                                 peqa_fwd_gemv_q4_1x16__avx512, peqa_fwd_gemv_q8_1x16__avx512};
    static const peqa_fwd_fn gemm[PEQA_NBITS] = {peqa_fwd_gemm_q2_6x32__avx512, peqa_fwd_gemm_q3_6x32__avx512,
                                                 peqa_fwd_gemm_q4_6x32__avx512, peqa_fwd_gemm_q8_6x32__avx512};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_gemv_q2_1x16__avx512", "peqa_fwd_gemv_q3_1x16__avx512", "peqa_fwd_gemv_q4_1x16__avx512",
        "peqa_fwd_gemv_q8_1x16__avx512"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_gemm_q2_6x32__avx512", "peqa_fwd_gemm_q3_6x32__avx512", "peqa_fwd_gemm_q4_6x32__avx512",
        "peqa_fwd_gemm_q8_6x32__avx512"};
    static const peqa_unpack_fn unpack[PEQA_NBITS] = {peqa_unpack_q2_16x32__avx512, peqa_unpack_q3_16x32__avx512,
                                                      peqa_unpack_q4_16x32__avx512, peqa_unpack_q8_16x32__avx512};
    static const peqa_dequant_fn dequant[PEQA_NBITS] = {
        peqa_dequant_q2_16x32__avx512, peqa_dequant_q3_16x32__avx512, peqa_dequant_q4_16x32__avx512,
        peqa_dequant_q8_16x32__avx512};
    static const char *const unpack_name[PEQA_NBITS] = {
        "peqa_unpack_q2_16x32__avx512", "peqa_unpack_q3_16x32__avx512", "peqa_unpack_q4_16x32__avx512",
        "peqa_unpack_q8_16x32__avx512"};
    static const char *const dequant_name[PEQA_NBITS] = {
        "peqa_dequant_q2_16x32__avx512", "peqa_dequant_q3_16x32__avx512", "peqa_dequant_q4_16x32__avx512",
        "peqa_dequant_q8_16x32__avx512"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->unpack[b] = unpack[b], k->unpack_name[b] = unpack_name[b];
        k->dequant[b] = dequant[b], k->dequant_name[b] = dequant_name[b];
        k->fwd_gemv[b] = gemv[b], k->fwd_gemv_name[b] = gemv_name[b];
        k->fwd_gemm[b] = gemm[b], k->fwd_gemm_name[b] = gemm_name[b];
    }
}
