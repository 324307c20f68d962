/* qgemm kernels, AVX2 + FMA: unpack, dequant and the fp32-activation forward (SPEC §4, §6).
 *
 *   unpack    codes[n, k] = q[n, k]                                     rows transposed out
 *   dequant   out[n, k]   = s[n, j] · ((float)q[n, k] − z[n, j])       rows transposed out
 *   fwd_gemv  Y[m, n]     = Σ_j s[n, j] · P[m, n, j]    (M = 1)         lanes over n
 *   fwd_gemm  the same, M > 1: the tile-pair P panel (avx2_panel.h), 3 x 32 register blocks
 *
 * Bits. Each output runs exactly the scalar reference's binary32 sequence (kernels/ref/):
 *     y = 0;  for j: { p = 0;  for k in group j ascending: p = fma(x[m,k], (float)q - z, p);
 *                      y = fma(s[n,j], p, y) }
 * with one vfmadd where the reference has fmaf, and d = (float)q − z as its own correctly
 * rounded operation before it (a vsubps, or an FMA whose product is exact: see the column
 * decoder). The forward kernels put the 16 rows n of a tile in two ymm (lanes 0..7 = rows
 * 16t .. 16t+7, lanes 8..15 = the next eight), which is the packed layout's natural shape (one
 * 32-byte load = the same word of 8 rows), and never split a reduction across lanes, so the
 * result does not depend on tiles, chunks, ranges or thread counts.
 *
 * Code extraction (the packed layout, kernels/peqa_kernels.h). Two primitives:
 *  - the column decoder col_sub_z(): (float)q − z of one column for 8 rows, straight from the
 *    word that holds it (b = 2, 4, 8: one mask, one conversion, one FMA);
 *  - quad(): for 8 rows and a 4-column group e (columns 4e .. 4e+3 of a 32-column k-block), a
 *    ymm whose 32-bit lane r holds the four codes of row r as four bytes, byte i = column
 *    4e + i. The layout was designed so that this is one shift and one mask:
 *        b = 8:  word e                                   (no arithmetic)
 *        b = 4:  (word e/2  >> 4 (e mod 2)) & 0x0F0F0F0F
 *        b = 2:  (word e/4  >> 2 (e mod 4)) & 0x03030303
 *        b = 3:  the 2-bit expression | ((word 2 >> e) & 0x01010101) << 2
 *    Eight quads transpose into row-major bytes (unpack, dequant); for b = 3 the column decoder
 *    takes its code from the quad (vpshufb picks the byte).
 *
 * Tails, in one place. K-blocks past K hold padding codes 0 and tiles past N hold rows of codes
 * 0 with s = z = 0, so a whole 16 x 32 cell can always be decoded: decoders always decode whole
 * cells, and tails only bound the loops that consume decoded values (columns < K of x are read,
 * rows < N of an output are written). fwd_gemv decodes full k-blocks in registers; its last
 * partial k-block goes through cell_sub_z (the same column decoder, stored) and a per-k loop
 * bounded by K; fwd_gemm decodes whole cells into its panel (avx2_panel.h) and bounds its loops
 * by the group ends. unpack and dequant copy out the valid rows and columns of a transposed cell.
 */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"
#include "avx2_panel.h"

#define INLINE static inline __attribute__((always_inline))
#define ALIGN32 __attribute__((aligned(32)))


/* ---- code extraction ------------------------------------------------------------------- */

/* The quad of columns 4e .. 4e+3 for rows 8h .. 8h+7 of one cell (see the file comment).
 * `bits`, `h` and `e` are compile-time constants at every call (the loops around the calls are
 * fully unrolled), so each shift is an immediate and the switch disappears. */
INLINE __m256i quad(const uint32_t *cell, int bits, int h, int e)
{
    const uint32_t *r = cell + 8 * h;
    switch (bits) {
    case 8:
        return _mm256_loadu_si256((const __m256i *)(r + e * PEQA_NR));
    case 4: {
        __m256i v = _mm256_loadu_si256((const __m256i *)(r + (e >> 1) * PEQA_NR));
        if (e & 1) v = _mm256_srli_epi32(v, 4);
        return _mm256_and_si256(v, _mm256_set1_epi32(0x0F0F0F0F));
    }
    case 2: {
        __m256i v = _mm256_loadu_si256((const __m256i *)(r + (e >> 2) * PEQA_NR));
        return _mm256_and_si256(_mm256_srli_epi32(v, 2 * (e & 3)), _mm256_set1_epi32(0x03030303));
    }
    default: { /* 3: low two bits from the 2-bit plane (words 0, 1), the high bit from word 2 */
        __m256i lo = _mm256_loadu_si256((const __m256i *)(r + (e >> 2) * PEQA_NR));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(r + 2 * PEQA_NR));
        lo = _mm256_and_si256(_mm256_srli_epi32(lo, 2 * (e & 3)), _mm256_set1_epi32(0x03030303));
        hi = _mm256_and_si256(_mm256_srli_epi32(hi, e), _mm256_set1_epi32(0x01010101));
        return _mm256_or_si256(lo, _mm256_slli_epi32(hi, 2));
    }
    }
}

/* vpshufb control moving byte i of every dword to its low byte and zeroing the other three:
 * the code of column 4e + i of a quad as an int32 per lane. Same pattern in both halves. */
INLINE __m256i byte_sel(int i)
{
    const int lo = i, z = -128; /* 0x80: zero the byte */
    return _mm256_setr_epi8(lo, z, z, z, lo + 4, z, z, z, lo + 8, z, z, z, lo + 12, z, z, z,
                            lo, z, z, z, lo + 4, z, z, z, lo + 8, z, z, z, lo + 12, z, z, z);
}

/* The column decoder: (float)q − z of column kk (0..31) for rows 8h .. 8h+7 of a cell, as the
 * reference rounds it, once. z = z of those rows, nz = −z (sign flipped, exact).
 *
 * b = 2, 4, 8 read the code straight from its word. The field of column kk sits at bit
 *     sh = 8 (c mod 4) + b (c div 4),   c = kk mod (32/b), word kk div (32/b),
 * and one vpand with ((2^b − 1) << sh) leaves q · 2^sh, an int32 of at most 8 significant bits,
 * which vcvtdq2ps converts exactly. Then
 *     d = fma(q · 2^sh, 2^−sh, −z)
 * The product is exactly q (a power-of-two scaling, no rounding), so the FMA rounds exactly
 * once, the exact q − z: d is bit for bit the reference's (float)q − z, which is a separate
 * rounded operation before the accumulating FMA, as in the reference. Why not vsubps: this
 * form needs no shift or vpshufb, and it moves one op from the FP add pipes to the FMA pipes,
 * which are half idle in fwd_gemv (measured ~10% faster there at b = 2 and 4 than
 * vpshufb + vcvtdq2ps + vsubps from quads; equal at b = 8).
 * The top field of a word (sh + b = 32) would be negative as an int32, so it is shifted down
 * instead (vpsrld leaves exactly q) and takes the same FMA with scale 1.
 * b = 3 assembles the code from two planes: the quad (one shift/mask/or per 4 columns), then
 * vpshufb picks the byte, vcvtdq2ps, vsubps. */
INLINE __m256 field_sub_z(__m256i word, int bits, int c, __m256 nz)
{
    const int sh = 8 * (c & 3) + bits * (c >> 2);
    if (sh + bits == 32) /* the top field: shifted down it is exactly q, scale 1 */
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(word, sh)), _mm256_set1_ps(1.0f), nz);
    __m256i qs = _mm256_and_si256(word, _mm256_set1_epi32(((1 << bits) - 1) << sh));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(qs), _mm256_set1_ps(1.0f / (float)(1u << sh)), nz);
}

INLINE __m256 col_sub_z(const uint32_t *cell, int bits, int h, int kk, __m256 z, __m256 nz)
{
    if (bits == 3)
        return _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(quad(cell, 3, h, kk >> 2), byte_sel(kk & 3))), z);
    const int per = 32 / bits;
    return field_sub_z(_mm256_loadu_si256((const __m256i *)(cell + 8 * h + kk / per * PEQA_NR)), bits, kk % per, nz);
}

static inline __m256 negate(__m256 v) { return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); }

/* ---- decoded cells: the one decoder of whole cells (fwd_gemm panels, fwd_gemv tails) -----
 * d[kk * 16 + r] = (float)q[16t + r, 32c + kk] − z[r] for a whole cell (kk < 32, r < 16): 2 KB,
 * row-of-the-tile fastest so that one k is two aligned ymm. zlo/zhi = z of rows 0..7 / 8..15.
 * (restrict: the stores to d do not alias the packed words, so the word loads are shared.) */
INLINE void cell_sub_z_bits(const uint32_t *restrict cell, int bits, __m256 zlo, __m256 zhi,
                            float *restrict d)
{
    const __m256 nzlo = negate(zlo), nzhi = negate(zhi);
#pragma GCC unroll 32
    for (int kk = 0; kk < PEQA_KB; kk++) {
        _mm256_store_ps(d + kk * PEQA_NR, col_sub_z(cell, bits, 0, kk, zlo, nzlo));
        _mm256_store_ps(d + kk * PEQA_NR + 8, col_sub_z(cell, bits, 1, kk, zhi, nzhi));
    }
}
static void cell_sub_z_b2(const uint32_t *c, __m256 a, __m256 b, float *d) { cell_sub_z_bits(c, 2, a, b, d); }
static void cell_sub_z_b3(const uint32_t *c, __m256 a, __m256 b, float *d) { cell_sub_z_bits(c, 3, a, b, d); }
static void cell_sub_z_b4(const uint32_t *c, __m256 a, __m256 b, float *d) { cell_sub_z_bits(c, 4, a, b, d); }
static void cell_sub_z_b8(const uint32_t *c, __m256 a, __m256 b, float *d) { cell_sub_z_bits(c, 8, a, b, d); }

static inline void cell_sub_z(const uint32_t *cell, int bits, __m256 zlo, __m256 zhi, float *d)
{
    switch (bits) {
    case 2: cell_sub_z_b2(cell, zlo, zhi, d); break;
    case 3: cell_sub_z_b3(cell, zlo, zhi, d); break;
    case 4: cell_sub_z_b4(cell, zlo, zhi, d); break;
    default: cell_sub_z_b8(cell, zlo, zhi, d); break;
    }
}

/* ---- cells to row-major bytes (unpack, dequant) -----------------------------------------
 * rows[r * 32 + kk] = q[16t + r, 32c + kk]. The eight quads of 8 rows form an 8 x 8 matrix of
 * dwords (quad e, row r); its transpose has, in dword e of row r, the codes of columns
 * 4e .. 4e+3 in byte order, i.e. the 32 bytes of row r in column order. */
INLINE void transpose8_store(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4,
                             __m256i a5, __m256i a6, __m256i a7, uint8_t *out /* 8 x 32 */)
{
    /* in: a_e[r]; after the 32-bit and 64-bit interleaves, b_r holds (a0..a3)[r] | (a4..a7)[r]
     * for r and r + 4 in its two 128-bit halves; the lane permutes put them together. */
    __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
    __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
    __m256i t4 = _mm256_unpacklo_epi32(a4, a5), t5 = _mm256_unpackhi_epi32(a4, a5);
    __m256i t6 = _mm256_unpacklo_epi32(a6, a7), t7 = _mm256_unpackhi_epi32(a6, a7);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    __m256i *o = (__m256i *)out;
    _mm256_store_si256(o + 0, _mm256_permute2x128_si256(u0, u4, 0x20));
    _mm256_store_si256(o + 1, _mm256_permute2x128_si256(u1, u5, 0x20));
    _mm256_store_si256(o + 2, _mm256_permute2x128_si256(u2, u6, 0x20));
    _mm256_store_si256(o + 3, _mm256_permute2x128_si256(u3, u7, 0x20));
    _mm256_store_si256(o + 4, _mm256_permute2x128_si256(u0, u4, 0x31));
    _mm256_store_si256(o + 5, _mm256_permute2x128_si256(u1, u5, 0x31));
    _mm256_store_si256(o + 6, _mm256_permute2x128_si256(u2, u6, 0x31));
    _mm256_store_si256(o + 7, _mm256_permute2x128_si256(u3, u7, 0x31));
}

INLINE void cell_rows_bits(const uint32_t *cell, int bits, uint8_t *rows /* 16 x 32, aligned */)
{
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
        transpose8_store(quad(cell, bits, h, 0), quad(cell, bits, h, 1), quad(cell, bits, h, 2),
                         quad(cell, bits, h, 3), quad(cell, bits, h, 4), quad(cell, bits, h, 5),
                         quad(cell, bits, h, 6), quad(cell, bits, h, 7), rows + h * 8 * PEQA_KB);
}
static void cell_rows_b2(const uint32_t *c, uint8_t *r) { cell_rows_bits(c, 2, r); }
static void cell_rows_b3(const uint32_t *c, uint8_t *r) { cell_rows_bits(c, 3, r); }
static void cell_rows_b4(const uint32_t *c, uint8_t *r) { cell_rows_bits(c, 4, r); }
static void cell_rows_b8(const uint32_t *c, uint8_t *r) { cell_rows_bits(c, 8, r); }

typedef void (*cell_rows_fn)(const uint32_t *, uint8_t *);
static cell_rows_fn cell_rows_for(int bits)
{
    return bits == 2 ? cell_rows_b2 : bits == 3 ? cell_rows_b3 : bits == 4 ? cell_rows_b4 : cell_rows_b8;
}

/* codes[(n - n0) * ldc + k] = q[n, k]: per cell, transpose to rows, copy the rows < n1 and the
 * columns < K (32 bytes, or K mod 32 in the last k-block). */
static void unpack_impl(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *codes, int64_t ldc)
{
    cell_rows_fn rows_of = cell_rows_for(w->bits);
    uint8_t rows[PEQA_NR * PEQA_KB] ALIGN32;
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int64_t nr = min64(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            int64_t kn = min64(PEQA_KB, w->k - c * PEQA_KB);
            rows_of(peqa_cell(w, t, c), rows);
            uint8_t *dst = codes + (t * PEQA_NR - n0) * ldc + c * PEQA_KB;
            if (kn == PEQA_KB)
                for (int64_t r = 0; r < nr; r++)
                    _mm256_storeu_si256((__m256i *)(dst + r * ldc), _mm256_load_si256((const __m256i *)(rows + r * PEQA_KB)));
            else
                for (int64_t r = 0; r < nr; r++) memcpy(dst + r * ldc, rows + r * PEQA_KB, (size_t)kn);
        }
    }
}

/* out[(n - n0) * ldo + k] = s · ((float)q − z): the row-major bytes of a cell, widened 8 at a
 * time (vpmovzxbd, exact vcvtdq2ps), then the reference's vsubps and vmulps with z and s of
 * the row broadcast (a k-block lies inside one group). Tails go through a 32-float row buffer. */
static void dequant_impl(const peqa_qw *w, int64_t n0, int64_t n1, float *out, int64_t ldo)
{
    cell_rows_fn rows_of = cell_rows_for(w->bits);
    uint8_t rows[PEQA_NR * PEQA_KB] ALIGN32;
    float buf[PEQA_KB] ALIGN32;
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int64_t nr = min64(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            int64_t kn = min64(PEQA_KB, w->k - c * PEQA_KB), j = c * PEQA_KB / w->g;
            const float *st = w->s + (t * w->ng + j) * PEQA_NR, *zt = w->z + (t * w->ng + j) * PEQA_NR;
            rows_of(peqa_cell(w, t, c), rows);
            for (int64_t r = 0; r < nr; r++) {
                __m256 s = _mm256_broadcast_ss(st + r), z = _mm256_broadcast_ss(zt + r);
                float *dst = out + (t * PEQA_NR + r - n0) * ldo + c * PEQA_KB;
                float *o = kn == PEQA_KB ? dst : buf;
                for (int q8 = 0; q8 < 4; q8++) {
                    __m128i b8 = _mm_loadl_epi64((const __m128i *)(rows + r * PEQA_KB + 8 * q8));
                    __m256 d = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)), z);
                    _mm256_storeu_ps(o + 8 * q8, _mm256_mul_ps(s, d));
                }
                if (o == buf) memcpy(dst, buf, (size_t)kn * sizeof(float));
            }
        }
    }
}

/* ---- fwd_gemv: M = 1, decoding in registers ---------------------------------------------
 * Every weight is used once, so nothing amortises its decode: per column and 8 lanes the work
 * is the column decoder (vpand, vcvtdq2ps, vfmadd; at b = 3 vpshufb, vcvtdq2ps, vsubps plus the
 * quad) and the accumulating vfmadd. Four vector ops per 8 outputs on Zen 3's four FP pipes is
 * >= 1 cycle, i.e. >= 2 cycles per column of a 16-row tile: this loop is bound by decode ops,
 * not by DRAM (at 4 bits a tile column is 8 bytes per ~2.5 cycles, ~10 GB/s). A lane's p is a
 * sequential fma chain and vfmadd has a 4-cycle latency, so one tile alone (2 chains) would
 * stall at 4 cycles per column; GT = 2 tiles run together (4 chains sharing each broadcast of
 * x[k]). Register plan: 4 p + 4 (−z) + 4 word vectors + the broadcast + temporaries; masks and
 * scales are constants the compiler keeps in registers or reads as memory operands. GT = 3
 * measured slower (spills), GT = 1 latency-bound. Each tile's cells are contiguous, so the
 * weights are GT sequential streams. */
#define GT 2
#ifndef GEMV_PF_BYTES
#define GEMV_PF_BYTES 2048
#endif

/* p[u] += the 32 columns of one full cell of each of the nt tiles (cell[v]), in ascending
 * column order per lane; unit u is half u & 1 of tile u >> 1, nz = −z. */
INLINE void gemv_cells(int nt, const uint32_t *const *cell, int bits, const float *xk,
                       const __m256 *z, __m256 *p)
{
    __m256 nz[2 * GT];
#pragma GCC unroll 8
    for (int u = 0; u < 2 * nt; u++) nz[u] = negate(z[u]);
    if (bits == 3) {
#pragma GCC unroll 32
        for (int kk = 0; kk < PEQA_KB; kk++) {
            __m256 xb = _mm256_broadcast_ss(xk + kk);
#pragma GCC unroll 8
            for (int u = 0; u < 2 * nt; u++)
                p[u] = _mm256_fmadd_ps(xb, col_sub_z(cell[u >> 1], 3, u & 1, kk, z[u], nz[u]), p[u]);
        }
        return;
    }
    /* one plane: word by word (32 / bits columns each), its 2 nt vectors loaded once */
    const int per = 32 / bits;
#pragma GCC unroll 8
    for (int wi = 0; wi < bits; wi++) {
        __m256i wv[2 * GT];
#pragma GCC unroll 8
        for (int u = 0; u < 2 * nt; u++)
            wv[u] = _mm256_loadu_si256((const __m256i *)(cell[u >> 1] + 8 * (u & 1) + wi * PEQA_NR));
#pragma GCC unroll 16
        for (int c = 0; c < per; c++) {
            __m256 xb = _mm256_broadcast_ss(xk + wi * per + c);
#pragma GCC unroll 8
            for (int u = 0; u < 2 * nt; u++)
                p[u] = _mm256_fmadd_ps(xb, field_sub_z(wv[u], bits, c, nz[u]), p[u]);
        }
    }
}

/* Store 16 lanes of a tile's outputs, only the first nr (rows < N). */
static inline void store_rows16(float *dst, int64_t nr, __m256 lo, __m256 hi)
{
    if (nr >= PEQA_NR) {
        _mm256_storeu_ps(dst, lo), _mm256_storeu_ps(dst + 8, hi);
    } else {
        float tmp[PEQA_NR] ALIGN32;
        _mm256_store_ps(tmp, lo), _mm256_store_ps(tmp + 8, hi);
        memcpy(dst, tmp, (size_t)nr * sizeof(float));
    }
}

/* Y[m, 16 t .. 16 (t + nt) - 1] for one row x of X (only rows < n1 stored). Lane u of the
 * arrays is half u & 1 of tile t + (u >> 1). */
INLINE void gemv_tiles(const peqa_qw *w, int bits, int nt, int64_t t, int64_t n1,
                       const float *xr, float *yr)
{
    const int64_t K = w->k, G = w->ng, g = w->g, cstride = (int64_t)bits * PEQA_NR;
    const uint32_t *tile[GT];
    const float *st[GT], *zt[GT];
    __m256 y[2 * GT];
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) {
        tile[v] = peqa_cell(w, t + v, 0);
        st[v] = w->s + (t + v) * G * PEQA_NR, zt[v] = w->z + (t + v) * G * PEQA_NR;
        y[2 * v] = y[2 * v + 1] = _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < G; j++) {
        const int64_t ka = j * g, kb = min64(ka + g, K);
        __m256 z[2 * GT], p[2 * GT];
#pragma GCC unroll 8
        for (int u = 0; u < 2 * nt; u++) {
            z[u] = _mm256_loadu_ps(zt[u >> 1] + j * PEQA_NR + 8 * (u & 1));
            p[u] = _mm256_setzero_ps();
        }
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) peqa_prefetch_sz(w, t + v, j);
        int64_t k = ka;
        for (; k + PEQA_KB <= kb; k += PEQA_KB) {
            const uint32_t *cell[GT];
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) {
                cell[v] = tile[v] + k / PEQA_KB * cstride;
                /* each tile's cells are one sequential stream read once: ask for it ahead of
                 * the hardware prefetcher (the 64 b bytes of the cell GEMV_PF_BYTES on) */
                peqa_prefetch_cell(cell[v], bits, GEMV_PF_BYTES);
            }
            gemv_cells(nt, cell, bits, xr + k, z, p);
        }
        if (k < kb) { /* the last k-block of the row, shorter than 32: decoded, then consumed */
            float d[PEQA_KB * PEQA_NR] ALIGN32;
            for (int v = 0; v < nt; v++) {
                cell_sub_z(tile[v] + k / PEQA_KB * cstride, bits, z[2 * v], z[2 * v + 1], d);
                for (int64_t kk = 0; kk < kb - k; kk++) {
                    __m256 xb = _mm256_broadcast_ss(xr + k + kk);
                    p[2 * v] = _mm256_fmadd_ps(xb, _mm256_load_ps(d + kk * PEQA_NR), p[2 * v]);
                    p[2 * v + 1] = _mm256_fmadd_ps(xb, _mm256_load_ps(d + kk * PEQA_NR + 8), p[2 * v + 1]);
                }
            }
        }
#pragma GCC unroll 8
        for (int u = 0; u < 2 * nt; u++)
            y[u] = _mm256_fmadd_ps(_mm256_loadu_ps(st[u >> 1] + j * PEQA_NR + 8 * (u & 1)), p[u], y[u]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++)
        store_rows16(yr + (t + v) * PEQA_NR, n1 - (t + v) * PEQA_NR, y[2 * v], y[2 * v + 1]);
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
 * epilogue y = fma(s, P, y), on this file's decode and 3 x 32 FMA engine (avx2_panel.h). The
 * 3 x 32 block needs one broadcast of x per 4 FMAs where the former 6 x 16 block of one tile
 * needed one per 2 (measured on Zen 5: 97 -> 104 GFLOP/s at 4096 x 4096 x 512, 4-bit,
 * g = 128). */

/* ---- the slots ------------------------------------------------------------------------- */

#define PEQA_QGEMM_AVX2_BITS(B)                                                                   \
    static void peqa_unpack_q##B##_16x32__avx2(const peqa_qw *w, int64_t n0, int64_t n1,         \
                                               uint8_t *codes, int64_t ldc)                      \
    {                                                                                             \
        unpack_impl(w, n0, n1, codes, ldc);                                                       \
    }                                                                                             \
    static void peqa_dequant_q##B##_16x32__avx2(const peqa_qw *w, int64_t n0, int64_t n1,        \
                                                float *out, int64_t ldo)                          \
    {                                                                                             \
        dequant_impl(w, n0, n1, out, ldo);                                                        \
    }                                                                                             \
    static void peqa_fwd_gemv_q##B##_1x16__avx2(const peqa_qw *w, int64_t m0, int64_t m1,        \
                                                int64_t n0, int64_t n1, const float *x,           \
                                                int64_t ldx, float *y, int64_t ldy)               \
    {                                                                                             \
        gemv_impl(w, B, m0, m1, n0, n1, x, ldx, y, ldy);                                          \
    }                                                                                             \
    static void peqa_fwd_gemm_q##B##_3x32__avx2(const peqa_qw *w, int64_t m0, int64_t m1,        \
                                                int64_t n0, int64_t n1, const float *x,           \
                                                int64_t ldx, float *y, int64_t ldy)               \
    {                                                                                             \
        panel_gemm(B, w, m0, m1, n0, n1, x, ldx, y, ldy);                                         \
    }

PEQA_QGEMM_AVX2_BITS(2)
PEQA_QGEMM_AVX2_BITS(3)
PEQA_QGEMM_AVX2_BITS(4)
PEQA_QGEMM_AVX2_BITS(8)

#define PEQA_QGEMM_AVX2_SET(k, B)                                                                 \
    do {                                                                                          \
        int b_ = peqa_bits_index(B);                                                              \
        (k)->unpack[b_] = peqa_unpack_q##B##_16x32__avx2;                                         \
        (k)->unpack_name[b_] = "peqa_unpack_q" #B "_16x32__avx2";                                 \
        (k)->dequant[b_] = peqa_dequant_q##B##_16x32__avx2;                                       \
        (k)->dequant_name[b_] = "peqa_dequant_q" #B "_16x32__avx2";                               \
        (k)->fwd_gemv[b_] = peqa_fwd_gemv_q##B##_1x16__avx2;                                      \
        (k)->fwd_gemv_name[b_] = "peqa_fwd_gemv_q" #B "_1x16__avx2";                              \
        (k)->fwd_gemm[b_] = peqa_fwd_gemm_q##B##_3x32__avx2;                                      \
        (k)->fwd_gemm_name[b_] = "peqa_fwd_gemm_q" #B "_3x32__avx2";                              \
    } while (0)

void peqa_init_qgemm__avx2(peqa_kernels *k, unsigned features)
{
    if (!(features & PEQA_CPU_AVX2)) return;
    PEQA_QGEMM_AVX2_SET(k, 2);
    PEQA_QGEMM_AVX2_SET(k, 3);
    PEQA_QGEMM_AVX2_SET(k, 4);
    PEQA_QGEMM_AVX2_SET(k, 8);
}
