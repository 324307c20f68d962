/* qint8 kernels, AVX2 + FMA: int8 activation quantization and the integer-activation forward
 * (SPEC §7; contracts and exact operation sequences in kernels/ref/qact_ref.c).
 *
 * Integer sums are exact, so inside a 32-column block the integer work may be done in any order;
 * only the float epilogue is a fixed sequence, and it is done lane by lane exactly as the
 * reference does it. Lanes are output rows n (16 rows of a packed tile = 2 ymm of 8 lanes).
 *
 * The integer dot product uses vpmaddubsw (u8 x s8 -> adjacent pairs summed into s16, with
 * saturation) and vpmaddwd (s16 x s16 -> adjacent pairs summed into s32). The packed layout
 * gives, for a word vector V of 16 rows, (V >> p s) & MASK_p = four code BYTES of four
 * consecutive columns per row lane, and a broadcast dword of xq holds the four matching
 * activations: exactly vpmaddubsw's operand shape. Saturation bounds:
 *   - codes <= 15 (2/3/4-bit codes, and the two nibbles of an 8-bit code), |x| <= 128:
 *     one pair sum <= 2 * 15 * 128 = 3840, so vpmaddubsw never saturates, and the 8 quads of a
 *     block summed in int16 stay <= 8 * 3840 = 30720 < 32767: exact.
 *   - 8-bit codes (up to 255) WOULD saturate (2 * 255 * 127 > 32767), so they are split into
 *     nibbles, q = 16 qh + ql, each nibble accumulated separately as above and combined in int32
 *     by vpmaddwd with 1 and with 16:  isum = Σ ql x + 16 Σ qh x, exact.
 * |isum| <= 32 * 255 * 128 < 2^24, so (float)isum is exact, as in the reference.
 *
 * Speed. On Zen 3 vpmaddubsw issues about once per cycle, so a 16 x 32 cell costs at least 16
 * cycles per activation row for 2/3/4-bit codes (32 for 8-bit: two nibbles). The GEMM register
 * block is 4 activation rows x 16 output rows (8 int16 accumulators + 2 code vectors + the
 * broadcast + the mask), so the code extraction (shift, mask) and the weight loads are shared by
 * 4 rows; with the epilogue it runs at about 19-22 cycles per (row, cell), near that bound. The
 * GEMV (one row) cannot share the extraction and is limited by memory for weights that are not
 * in cache. AVX-VNNI (vpdpbusd) would fuse maddubs + maddwd + add; there is no such variant here
 * because it could not be tested on the machine this was written on.
 */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* xsum table of the fp32 epilogue: (float) Σ xq over each (row, block), computed once per panel
 * of rows and shared by every tile (32 KB). */
#define I8_TAB 8192
/* At most this many activation rows per panel (the weights of the call's tiles are read once
 * per panel; the panel's activations, I8_MPMAX x K bytes, stay in L2 across tiles). */
#define I8_MPMAX 64

#ifndef I8_PF_BYTES
#define I8_PF_BYTES 2048
#endif
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline __m256i lane_mask(int64_t n)
{
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- activation quantization -----------------------------------------------------------------
 * Per row m and 32-column block (the last one possibly short), 32 floats in 4 ymm:
 *   amax = max |x|             vandnps of the sign bit, vmaxps, then a horizontal max; max of
 *                              non-negative finite floats is exact and order-free
 *   d    = amax / 127.0f       the same single scalar division as the reference
 *   xq   = clamp(rint(x / d))  vdivps (a real division, correctly rounded like the scalar one),
 *                              vroundps to nearest-even, clamp to [-127, 127], then cvt (exact
 *                              on integers) and two saturating packs (no saturation happens)
 * d = 0 (an all-zero block) gives xq = 0 without dividing. Short blocks are read with vmaskmovps
 * (masked lanes read as +0, which cannot raise amax) and written through a 32-byte buffer. */
static void peqa_qact_32__avx2(int64_t m0, int64_t m1, int64_t k, const float *x, int64_t ldx,
                               int8_t *xq, int64_t ldq, float *xs, int64_t ldxs)
{
    const int64_t nb = (k + PEQA_KB - 1) / PEQA_KB;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    /* packs interleave 128-bit halves; this dword permutation restores column order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t m = m0; m < m1; m++)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t k0 = b * PEQA_KB, n = min64(PEQA_KB, k - k0);
            const float *xp = x + m * ldx + k0;
            __m256 v[4];
            for (int i = 0; i < 4; i++)
                v[i] = n >= PEQA_KB ? _mm256_loadu_ps(xp + 8 * i) : _mm256_maskload_ps(xp + 8 * i, lane_mask(n - 8 * i));
            __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], absmask), _mm256_and_ps(v[1], absmask)),
                                      _mm256_max_ps(_mm256_and_ps(v[2], absmask), _mm256_and_ps(v[3], absmask)));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
            const float d = _mm_cvtss_f32(h) / 127.0f;
            __m256i packed = _mm256_setzero_si256();
            if (d > 0.0f) {
                const __m256 vd = _mm256_set1_ps(d);
                __m256i q[4];
                for (int i = 0; i < 4; i++) {
                    __m256 r = _mm256_round_ps(_mm256_div_ps(v[i], vd), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    q[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
                }
                packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
                packed = _mm256_permutevar8x32_epi32(packed, order);
            }
            if (n >= PEQA_KB) {
                _mm256_storeu_si256((__m256i *)(xq + m * ldq + k0), packed);
            } else {
                _Alignas(32) int8_t buf[PEQA_KB];
                _mm256_store_si256((__m256i *)buf, packed);
                memcpy(xq + m * ldq + k0, buf, (size_t)n);
            }
            xs[m * ldxs + b] = d;
        }
}

/* ---- integer-activation forward ------------------------------------------------------------ */

/* Four int8 activations (one dword) in every lane. */
static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* acc[2 i + h] (int16 pair sums, rows 8 h .. 8 h + 7 of the tile) += codes_h · x_i[off .. off+3]
 * for the mr activation rows i. c0 / c1: four code bytes per row lane (rows 0-7 / 8-15).
 * The accumulation uses the saturating vpaddsw although nothing saturates (sums <= 30720, see
 * the file comment), so it equals vpaddw here: being non-associative, it stops the compiler
 * from regrouping the 8 quad products of a block into a tree of temporaries, which spilled
 * every product to the stack. */
ALWAYS_INLINE void dot_quad(const int mr, __m256i c0, __m256i c1, const int8_t *const *xp, int off, __m256i *acc)
{
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        const __m256i xv = bcast4(xp[i] + off);
        acc[2 * i] = _mm256_adds_epi16(acc[2 * i], _mm256_maddubs_epi16(c0, xv));
        acc[2 * i + 1] = _mm256_adds_epi16(acc[2 * i + 1], _mm256_maddubs_epi16(c1, xv));
    }
}

/* isum[2 i + h] (int32, 16 row lanes) = Σ_{k in block} xq[row i, k] · q[n, k] for one cell.
 * Quads (4 consecutive columns) per bit width, from the cell's word vectors (16 rows each):
 *   b = 4: word w: V & 0x0f..     -> columns 8 w .. 8 w + 3,  (V >> 4) & 0x0f.. -> 8 w + 4 .. 8 w + 7
 *   b = 2: word w: (V >> 2 s) & 0x03.. -> columns 16 w + 4 s .. 16 w + 4 s + 3
 *   b = 3: quad d (columns 4 d ..): low = (L[d / 4] >> 2 (d % 4)) & 0x03..,
 *          high = bit d of each byte of H moved to bit 2 (one shift by d - 2) & 0x04..
 *   b = 8: word w (columns 4 w ..): low nibbles V & 0x0f.., high nibbles (V >> 4) & 0x0f..
 *          into separate int16 accumulators, combined as lo + 16 hi in int32 */
ALWAYS_INLINE void cell_isum(const int bits, const int mr, const uint32_t *cell, const int8_t *const *xp, __m256i *isum)
{
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc[8], acch[8];
#pragma GCC unroll 8
    for (int i = 0; i < 2 * mr; i++) acc[i] = acch[i] = _mm256_setzero_si256();
    const __m256i *cv = (const __m256i *)cell;
    if (bits == 4) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 4
        for (int wd = 0; wd < 4; wd++) {
            const __m256i v0 = _mm256_loadu_si256(cv + 2 * wd), v1 = _mm256_loadu_si256(cv + 2 * wd + 1);
            dot_quad(mr, _mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4), xp, 8 * wd, acc);
            dot_quad(mr, _mm256_and_si256(_mm256_srli_epi32(v0, 4), m4), _mm256_and_si256(_mm256_srli_epi32(v1, 4), m4),
                     xp, 8 * wd + 4, acc);
        }
    } else if (bits == 2) {
        const __m256i m2 = _mm256_set1_epi8(0x03);
#pragma GCC unroll 2
        for (int wd = 0; wd < 2; wd++) {
            const __m256i v0 = _mm256_loadu_si256(cv + 2 * wd), v1 = _mm256_loadu_si256(cv + 2 * wd + 1);
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++)
                dot_quad(mr, _mm256_and_si256(_mm256_srli_epi32(v0, 2 * s), m2),
                         _mm256_and_si256(_mm256_srli_epi32(v1, 2 * s), m2), xp, 16 * wd + 4 * s, acc);
        }
    } else if (bits == 3) {
        const __m256i m2 = _mm256_set1_epi8(0x03), b2 = _mm256_set1_epi8(0x04);
        const __m256i h0 = _mm256_loadu_si256(cv + 4), h1 = _mm256_loadu_si256(cv + 5);
#pragma GCC unroll 8
        for (int d = 0; d < 8; d++) {
            const __m256i l0 = _mm256_loadu_si256(cv + 2 * (d / 4)), l1 = _mm256_loadu_si256(cv + 2 * (d / 4) + 1);
            __m256i c0 = _mm256_and_si256(_mm256_srli_epi32(l0, 2 * (d % 4)), m2);
            __m256i c1 = _mm256_and_si256(_mm256_srli_epi32(l1, 2 * (d % 4)), m2);
            __m256i e0 = d >= 2 ? _mm256_srli_epi32(h0, d - 2) : _mm256_slli_epi32(h0, 2 - d);
            __m256i e1 = d >= 2 ? _mm256_srli_epi32(h1, d - 2) : _mm256_slli_epi32(h1, 2 - d);
            c0 = _mm256_or_si256(c0, _mm256_and_si256(e0, b2));
            c1 = _mm256_or_si256(c1, _mm256_and_si256(e1, b2));
            dot_quad(mr, c0, c1, xp, 4 * d, acc);
        }
    } else { /* bits == 8 */
        const __m256i m4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 8
        for (int wd = 0; wd < 8; wd++) {
            const __m256i v0 = _mm256_loadu_si256(cv + 2 * wd), v1 = _mm256_loadu_si256(cv + 2 * wd + 1);
            dot_quad(mr, _mm256_and_si256(v0, m4), _mm256_and_si256(v1, m4), xp, 4 * wd, acc);
            dot_quad(mr, _mm256_and_si256(_mm256_srli_epi32(v0, 4), m4), _mm256_and_si256(_mm256_srli_epi32(v1, 4), m4),
                     xp, 4 * wd, acch);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < 2 * mr; i++) {
        isum[i] = _mm256_madd_epi16(acc[i], ones16);
        if (bits == 8) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(acch[i], _mm256_set1_epi16(16)));
    }
}

/* Blocks [b0, b1) of tile t for mr activation rows, continuing the chains in a[] and yv[]
 * (lane = row n of the tile; a[2 i + h] / yv[2 i + h] for activation row i, rows 8 h ..):
 *   at a group start:  a = 0
 *   per block:         t = fma(-z[n, j], (float)xsum, (float)isum);  a = fma(xs[m, b], t, a)
 *   at a group end:    y = fma(s[n, j], a, y)
 * exactly the reference's sequence. xrow[i]: row i of xq; xtail[i]: a zero-padded copy of its
 * last, short block (read instead of the row so that nothing past K is touched; padded
 * activations are 0 and add nothing); tab[i][b - tb0] = (float)xsum; xsr[i]: row i of xs. */
ALWAYS_INLINE void i8_blocks(const int bits, const int mr, const peqa_qw *w, int64_t t, int64_t b0, int64_t b1,
                             const int8_t *const *xrow, const int8_t *const *xtail, const float *const *tab,
                             int64_t tb0, const float *const *xsr, __m256 *a, __m256 *yv)
{
    const int64_t g = w->g, K = w->k, G = w->ng;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const uint32_t *cell = peqa_cell(w, t, b0);
    /* group j of the current block and its column range [gs, ge); advanced without dividing */
    int64_t j = b0 * PEQA_KB / g, gs = j * g, ge = min64(gs + g, K);
    for (int64_t b = b0; b < b1; b++, cell += (size_t)bits * PEQA_NR) {
        const int64_t kb = b * PEQA_KB;
        if (kb >= ge) j++, gs = ge, ge = min64(gs + g, K);
        if (kb == gs) {
#pragma GCC unroll 8
            for (int i = 0; i < 2 * mr; i++) a[i] = _mm256_setzero_ps();
            if (mr == 1) peqa_prefetch_sz(w, t, j);
        }
        if (mr == 1) /* GEMV: weights stream once from DRAM; see I8_PF_BYTES */
            peqa_prefetch_cell(cell, bits, I8_PF_BYTES);
        const int8_t *xp[4];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) xp[i] = kb + PEQA_KB <= K ? xrow[i] + kb : xtail[i];
        __m256i isum[8];
        cell_isum(bits, mr, cell, xp, isum);
        const float *zt = w->z + (size_t)(t * G + j) * PEQA_NR;
        const __m256 nz0 = _mm256_xor_ps(_mm256_loadu_ps(zt), sign), nz1 = _mm256_xor_ps(_mm256_loadu_ps(zt + 8), sign);
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            const __m256 xsum = _mm256_broadcast_ss(tab[i] + (b - tb0)), d = _mm256_broadcast_ss(xsr[i] + b);
            a[2 * i] = _mm256_fmadd_ps(d, _mm256_fmadd_ps(nz0, xsum, _mm256_cvtepi32_ps(isum[2 * i])), a[2 * i]);
            a[2 * i + 1] = _mm256_fmadd_ps(d, _mm256_fmadd_ps(nz1, xsum, _mm256_cvtepi32_ps(isum[2 * i + 1])), a[2 * i + 1]);
        }
        if (kb + PEQA_KB >= ge) { /* last block of group j */
            const float *st = w->s + (size_t)(t * G + j) * PEQA_NR;
            const __m256 s0 = _mm256_loadu_ps(st), s1 = _mm256_loadu_ps(st + 8);
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++) {
                yv[2 * i] = _mm256_fmadd_ps(s0, a[2 * i], yv[2 * i]);
                yv[2 * i + 1] = _mm256_fmadd_ps(s1, a[2 * i + 1], yv[2 * i + 1]);
            }
        }
    }
}

/* Rows [r0, r1) of xq, blocks [cb0, cb1): tab[(r - r0) * (cb1 - cb0) + b - cb0] = (float) Σ xq over
 * the block; and if the short last block of K is among them, its zero-padded copy in
 * xtail[(r - r0) * 32 ..]. The sum: vpmaddubsw with ones (pairs, exact) and vpmaddwd with ones
 * (quads into int32), then a horizontal add; integers, so the order is free. */
static void i8_prepare(const int8_t *xq, int64_t ldq, int64_t K, int64_t r0, int64_t r1, int64_t cb0,
                       int64_t cb1, float *tab, int8_t *xtail)
{
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    const int64_t nbc = cb1 - cb0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = cb0; b < cb1; b++) {
            const int64_t kb = b * PEQA_KB;
            const int8_t *src = xq + r * ldq + kb;
            if (kb + PEQA_KB > K) {
                int8_t *tl = xtail + (r - r0) * PEQA_KB;
                memset(tl, 0, PEQA_KB);
                memcpy(tl, src, (size_t)(K - kb));
                src = tl;
            }
            __m256i v = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, _mm256_loadu_si256((const __m256i *)src)), one16);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
            tab[(r - r0) * nbc + (b - cb0)] = (float)_mm_cvtsi128_si32(h);
        }
}

/* One instantiation per (bit width, row count). Rows mb .. mb + mr - 1 of tile t: zero the
 * chains, run blocks [0, nb) in table chunks of bc blocks, store y (lanes n < n1 only). In the
 * normal case (bc == nb) the table of the whole panel was prepared by the caller; when K is so
 * large that even MRB rows of xsum do not fit the table, each chunk is prepared here (per tile:
 * more work, same bits). */
ALWAYS_INLINE void i8_rows(const int bits, const int mr, const peqa_qw *w, int64_t t, int64_t mb, int64_t p0,
                           int64_t bc, int64_t n1, const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs,
                           float *tab, int8_t *xtail, float *y, int64_t ldy)
{
    const int64_t nb = w->kblk;
    __m256 a[8], yv[8];
#pragma GCC unroll 8
    for (int i = 0; i < 2 * mr; i++) a[i] = yv[i] = _mm256_setzero_ps();
    const int8_t *xrow[4], *xtl[4];
    const float *xsr[4];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        xrow[i] = xq + (mb + i) * ldq;
        xtl[i] = xtail + (mb + i - p0) * PEQA_KB;
        xsr[i] = xs + (mb + i) * ldxs;
    }
    for (int64_t cb0 = 0; cb0 < nb; cb0 += bc) {
        const int64_t cb1 = min64(cb0 + bc, nb);
        if (bc < nb) i8_prepare(xq, ldq, w->k, mb, mb + mr, cb0, cb1, tab, xtail);
        const float *tb[4];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) tb[i] = tab + (mb + i - p0) * (cb1 - cb0);
        i8_blocks(bits, mr, w, t, cb0, cb1, xrow, xtl, tb, cb0, xsr, a, yv);
    }
    const int64_t nt = t * PEQA_NR, valid = n1 - nt;
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        float *yp = y + (mb + i) * ldy + nt;
        if (valid >= 16) {
            _mm256_storeu_ps(yp, yv[2 * i]), _mm256_storeu_ps(yp + 8, yv[2 * i + 1]);
        } else {
            _mm256_maskstore_ps(yp, lane_mask(valid), yv[2 * i]);
            _mm256_maskstore_ps(yp + 8, lane_mask(valid - 8), yv[2 * i + 1]);
        }
    }
}

/* Y[m, n] for m in [m0, m1), n in [n0, n1), mrb activation rows per register block.
 * Loop nest: panels of mp rows (xsum table once per panel) -> tiles -> row blocks -> blocks.
 * Each (row, tile) is computed start to end by one i8_rows call, so any split of the ranges
 * gives the same bits. */
ALWAYS_INLINE void fwd_i8_tmpl(const int bits, const int mrb, const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,
                               int64_t n1, const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, float *y,
                               int64_t ldy)
{
    _Alignas(32) float tab[I8_TAB];
    _Alignas(32) int8_t xtail[I8_MPMAX * PEQA_KB];
    const int64_t nb = w->kblk;
    int64_t bc = nb, mp = mrb;
    if (nb * mrb <= I8_TAB)
        mp = min64(I8_MPMAX, I8_TAB / nb) / mrb * mrb;
    else
        bc = I8_TAB / mrb;
    for (int64_t p0 = m0; p0 < m1; p0 += mp) {
        const int64_t p1 = min64(p0 + mp, m1);
        if (bc == nb) i8_prepare(xq, ldq, w->k, p0, p1, 0, nb, tab, xtail);
        for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++)
            for (int64_t mb = p0; mb < p1; mb += mrb) {
                /* in the chunked case a panel is one row block (mp == mrb), so tab rows start at mb */
                const int mr = (int)min64(mrb, p1 - mb);
                switch (mr) {
                case 1: i8_rows(bits, 1, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy); break;
                case 2: if (mrb >= 2) i8_rows(bits, 2, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy); break;
                case 3: if (mrb >= 3) i8_rows(bits, 3, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy); break;
                default: if (mrb >= 4) i8_rows(bits, 4, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy); break;
                }
            }
    }
}

/* Named entry points. GEMV: one activation row, 16 output rows per step. GEMM: 4 activation rows
 * per register block for 2/3/4-bit codes (8 int16 accumulators), 2 for 8-bit codes (whose two
 * nibble accumulators per row double the register need). */
#define I8_ENTRY(B, MRB)                                                                                    \
    static void peqa_fwd_i8_gemv_q##B##_1x16__avx2(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,    \
                                                   int64_t n1, const int8_t *xq, int64_t ldq, const float *xs, \
                                                   int64_t ldxs, float *y, int64_t ldy)                     \
    {                                                                                                       \
        fwd_i8_tmpl(B, 1, w, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                    \
    }                                                                                                       \
    static void peqa_fwd_i8_gemm_q##B##_##MRB##x16__avx2(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,         \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy) \
    {                                                                                                       \
        fwd_i8_tmpl(B, MRB, w, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                  \
    }
I8_ENTRY(2, 4)
I8_ENTRY(3, 4)
I8_ENTRY(4, 4)
I8_ENTRY(8, 2)
#undef I8_ENTRY

void peqa_init_qint8__avx2(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX2 + FMA is all these kernels need; the caller checked it */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {peqa_fwd_i8_gemv_q2_1x16__avx2, peqa_fwd_i8_gemv_q3_1x16__avx2,
                                                    peqa_fwd_i8_gemv_q4_1x16__avx2, peqa_fwd_i8_gemv_q8_1x16__avx2};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {peqa_fwd_i8_gemm_q2_4x16__avx2, peqa_fwd_i8_gemm_q3_4x16__avx2,
                                                    peqa_fwd_i8_gemm_q4_4x16__avx2, peqa_fwd_i8_gemm_q8_2x16__avx2};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x16__avx2", "peqa_fwd_i8_gemv_q3_1x16__avx2", "peqa_fwd_i8_gemv_q4_1x16__avx2",
        "peqa_fwd_i8_gemv_q8_1x16__avx2"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_4x16__avx2", "peqa_fwd_i8_gemm_q3_4x16__avx2", "peqa_fwd_i8_gemm_q4_4x16__avx2",
        "peqa_fwd_i8_gemm_q8_2x16__avx2"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_name[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_name[b];
    }
    k->qact = peqa_qact_32__avx2, k->qact_name = "peqa_qact_32__avx2";
}
