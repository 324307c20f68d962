/* qgemm kernels, AVX-512 (F, BW, VL, DQ) + FMA: unpack, dequant and the fp32-activation forward
 * (SPEC §4, §6).
 *
 *   unpack    codes[n, k] = q[n, k]                                 row form (avx512_codes.h)
 *   dequant   out[n, k]   = s[n, j] · ((float)q[n, k] − z[n, j])   row form
 *   fwd_gemv  Y[m, n] = Σ_j s[n, j] · P[m, n, j]    (M = 1)     4 tiles in flight, decode in registers
 *   fwd_gemm  the same, M > 1: a decoded K-panel of one tile and a 12 x 16 register block
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
 * k-block through cell_sub_z (the same column decoder, stored), like every k-block of fwd_gemm.
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"
#include "avx512_codes.h"

#define INLINE static inline __attribute__((always_inline))
#define ALIGN64 __attribute__((aligned(64)))

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

/* Lanes l < n set (n clamped to 0 .. 16): the rows of a tile that exist, or a column tail. */
static inline __mmask16 rows_mask(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

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
        const int nr = (int)imin(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            const int64_t kn = imin(PEQA_KB, w->k - c * PEQA_KB);
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
        const int nr = (int)imin(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            const int64_t kn = imin(PEQA_KB, w->k - c * PEQA_KB), j = c * PEQA_KB / w->g;
            const float *st = w->s + (t * w->ng + j) * PEQA_NR, *zt = w->z + (t * w->ng + j) * PEQA_NR;
            const uint32_t *cell = peqa_cell(w, t, c);
            for (int r = 0; r < nr; r++) {
                const __m512 s = _mm512_set1_ps(st[r]), z = _mm512_set1_ps(zt[r]);
                float *dst = out + (t * PEQA_NR + r - n0) * ldo + c * PEQA_KB;
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m512 d = _mm512_sub_ps(_mm512_cvtepi32_ps(row_half(bits, cell, r, h)), z);
                    _mm512_mask_storeu_ps(dst + 16 * h, rows_mask(kn - 16 * h), _mm512_mul_ps(s, d));
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
        const int64_t ka = j * g, kb = imin(ka + g, K);
        __m512 z[GT], p[GT];
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) z[v] = _mm512_loadu_ps(zt[v] + j * PEQA_NR), p[v] = _mm512_setzero_ps();
        int64_t k = ka;
        for (; k + PEQA_KB <= kb; k += PEQA_KB) {
            const uint32_t *cell[GT];
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) cell[v] = tile[v] + k / PEQA_KB * cstride;
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
    for (int v = 0; v < nt; v++) _mm512_mask_storeu_ps(yr + (t + v) * PEQA_NR, rows_mask(n1 - (t + v) * PEQA_NR), y[v]);
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
 * Blocking as in qgemm_avx2.c (BLIS style), per thread task [m0, m1) x [n0, n1):
 *     for each row block of MC rows of X:
 *       for each tile t (16 rows n):
 *         yb = 0
 *         for each k-chunk of KC columns:
 *           decode the chunk to wb[kk][16] = (float)q − z  (KC x 16 floats, one zmm per column)
 *           for each micro-block of MR = 12 rows of X: the 12 x 16 kernel over the chunk, split
 *             at group boundaries: p continues in pb between chunks of one group, and at a
 *             group end yb = fma(s, p, yb)
 *         write yb (rows < N only)
 * Staging (float)q − z in wb changes no bit (one rounding however it is stored); the per-lane
 * FMA chains run over k in the reference's order and yb starts at +0 like the reference's y.
 * Stack: wb 16 KB + pb 6 KB + yb 6 KB. */
#define MR 12
#define MC 96
#define KC 256
_Static_assert(KC % PEQA_KB == 0 && MC % MR == 0, "chunk sizes");

/* The micro-kernel. Rows i < mr of X (x + i ldx), 16 lanes of wb, kn columns:
 *     p[i][l] = (first ? 0 : pb[i][l]);  for kk < kn: p[i][l] = fma(x[i][kk], wb[kk][l], p[i][l])
 *     last ? yb[i][l] = fma(s[l], p[i][l], yb[i][l]) : pb[i][l] = p[i][l]
 * Register plan (mr = 12): 12 accumulators (zmm0-11), 1 wb column, the x broadcasts (folded
 * into the FMA as {1to16} memory operands where the compiler can): 12 independent chains cover
 * the FMA latency (4) x two 512-bit FMA ports (Ice Lake / Sapphire Rapids server parts) with
 * room; Zen 4 issues one zmm FMA per cycle and needs only 4. Per kk: 1 aligned wb load and 12
 * broadcasts feed 12 FMAs. mr is a literal at every instantiation. */
INLINE void micro(int mr, const float *wb, int64_t kn, const float *x, int64_t ldx, float *pb, int first,
                  int last, const float *s, float *yb)
{
    __m512 a[MR];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) a[i] = first ? _mm512_setzero_ps() : _mm512_load_ps(pb + i * PEQA_NR);
#pragma GCC unroll 2
    for (int64_t kk = 0; kk < kn; kk++) {
        const __m512 wv = _mm512_load_ps(wb + kk * PEQA_NR);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) a[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i * ldx + kk]), wv, a[i]);
    }
    if (last) {
        const __m512 sv = _mm512_loadu_ps(s);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++)
            _mm512_store_ps(yb + i * PEQA_NR, _mm512_fmadd_ps(sv, a[i], _mm512_load_ps(yb + i * PEQA_NR)));
    } else {
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) _mm512_store_ps(pb + i * PEQA_NR, a[i]);
    }
}

typedef void (*micro_fn)(const float *, int64_t, const float *, int64_t, float *, int, int, const float *, float *);
#define MICRO_N(N)                                                                                        \
    static void micro_##N(const float *wb, int64_t kn, const float *x, int64_t ldx, float *pb, int first, \
                          int last, const float *s, float *yb)                                            \
    {                                                                                                     \
        micro(N, wb, kn, x, ldx, pb, first, last, s, yb);                                                 \
    }
MICRO_N(1) MICRO_N(2) MICRO_N(3) MICRO_N(4) MICRO_N(5) MICRO_N(6)
MICRO_N(7) MICRO_N(8) MICRO_N(9) MICRO_N(10) MICRO_N(11) MICRO_N(12)
#undef MICRO_N
/* micros[mr - 1]: the full block and the row tails of a row block, one instantiation each. */
static const micro_fn micros[MR] = {micro_1, micro_2, micro_3, micro_4,  micro_5,  micro_6,
                                    micro_7, micro_8, micro_9, micro_10, micro_11, micro_12};

static void gemm_impl(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const float *x,
                      int64_t ldx, float *y, int64_t ldy)
{
    const int64_t K = w->k, G = w->ng, g = w->g;
    const int bits = w->bits;
    float wb[KC * PEQA_NR] ALIGN64;
    float pb[MC * PEQA_NR] ALIGN64, yb[MC * PEQA_NR] ALIGN64;
    for (int64_t mb = m0; mb < m1; mb += MC) {
        const int64_t mc = imin(MC, m1 - mb);
        for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
            const float *st = w->s + t * G * PEQA_NR, *zt = w->z + t * G * PEQA_NR;
            memset(yb, 0, (size_t)mc * PEQA_NR * sizeof(float));
            for (int64_t kc = 0; kc < K; kc += KC) {
                const int64_t kn = imin(KC, K - kc);
                for (int64_t c = kc / PEQA_KB; c * PEQA_KB < kc + kn; c++)
                    cell_sub_z(peqa_cell(w, t, c), bits, _mm512_loadu_ps(zt + (c * PEQA_KB / g) * PEQA_NR),
                               wb + (c * PEQA_KB - kc) * PEQA_NR);
                for (int64_t mi = 0; mi < mc; mi += MR) {
                    const micro_fn f = micros[imin(MR, mc - mi) - 1];
                    const float *xm = x + (mb + mi) * ldx;
                    /* segments of the chunk inside one group each */
                    for (int64_t ka = kc, kb; ka < kc + kn; ka = kb) {
                        const int64_t j = ka / g, gend = imin((j + 1) * g, K);
                        kb = imin(gend, kc + kn);
                        f(wb + (ka - kc) * PEQA_NR, kb - ka, xm + ka, ldx, pb + mi * PEQA_NR, ka == j * g, kb == gend,
                          st + j * PEQA_NR, yb + mi * PEQA_NR);
                    }
                }
            }
            const __mmask16 rows = rows_mask(n1 - t * PEQA_NR);
            for (int64_t i = 0; i < mc; i++)
                _mm512_mask_storeu_ps(y + (mb + i) * ldy + t * PEQA_NR, rows, _mm512_load_ps(yb + i * PEQA_NR));
        }
    }
}

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
    static void peqa_fwd_gemm_q##B##_12x16__avx512(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,    \
                                                   int64_t n1, const float *x, int64_t ldx, float *y,        \
                                                   int64_t ldy)                                              \
    {                                                                                                        \
        gemm_impl(w, m0, m1, n0, n1, x, ldx, y, ldy);                                                        \
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
    static const peqa_fwd_fn gemm[PEQA_NBITS] = {peqa_fwd_gemm_q2_12x16__avx512, peqa_fwd_gemm_q3_12x16__avx512,
                                                 peqa_fwd_gemm_q4_12x16__avx512, peqa_fwd_gemm_q8_12x16__avx512};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_gemv_q2_1x16__avx512", "peqa_fwd_gemv_q3_1x16__avx512", "peqa_fwd_gemv_q4_1x16__avx512",
        "peqa_fwd_gemv_q8_1x16__avx512"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_gemm_q2_12x16__avx512", "peqa_fwd_gemm_q3_12x16__avx512", "peqa_fwd_gemm_q4_12x16__avx512",
        "peqa_fwd_gemm_q8_12x16__avx512"};
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
