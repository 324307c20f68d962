/* qint8 kernels, AVX-512 VNNI: the integer-activation forward with vpdpbusd (SPEC §7; contract
 * and exact sequence in kernels/ref/qact_ref.c). Activation quantization (qact) stays with the
 * AVX2 kernel, which is bound by its divisions, not by vector width.
 *
 * Lane layout: one zmm = the 16 rows n of a packed tile, as int32 sums and then as fp32 chains.
 * The packed layout gives, for a word vector V (16 rows) of a p-bit plane,
 * (V >> p s) & MASK_p = four code BYTES of four consecutive columns per row lane, and a
 * broadcast dword of xq holds the four matching int8 activations: the operand shape of
 *     vpdpbusd acc, codes (u8), x (s8):   acc[r] += Σ_{i<4} codes[r].byte i · x.byte i
 * The four products and their sum are exact (|Σ| <= 4 · 255 · 128) and the accumulation wraps
 * only beyond 2^31, far away: |isum| <= 32 · 255 · 128 < 2^24 per block. Codes are unsigned
 * (0 .. 255, so 8-bit codes need no nibble split as in the vpmaddubsw kernel) and activations
 * signed, exactly the instruction's operand signedness; no saturation exists in vpdpbusd.
 * Quads of a 32-column block (d = 0 .. 7, columns 4 d .. 4 d + 3) per bit width:
 *   b = 8: word d                               b = 4: (word d/2 >> 4 (d mod 2)) & 0x0F0F0F0F
 *   b = 2: (word d/4 >> 2 (d mod 4)) & 0x03..   b = 3: the 2-bit quad | ((word 2 >> d) & 0x01..) << 2
 * Integer sums are exact, so their order is free; the float epilogue is the reference's, lane
 * by lane:  t = fma(−z, (float)xsum, (float)isum);  a = fma(xs, t, a) per block;
 *           y = fma(s, a, y) per group.
 *
 * Register blocks: MRG = 4 activation rows x NTG = 2 tiles (32 rows n) for the GEMM, 1 row x
 * NTV = 2 tiles for the GEMV (index v * mr + i: tile t + v, row i). GEMM plan: 8 isum + 8 a +
 * 8 y = 24 zmm, two code quads, the broadcast and −z / s: about 29 of 32. Each broadcast of four
 * activations feeds one vpdpbusd per tile, and each code quad (one shift and one mask, plus a
 * shift/and/or at b = 3) feeds one per row. Measured on Zen 5 (4096 x 4096 x 512, 4-bit):
 * 6 x 1 tiles 349 GOP/s, 6 x 2 379 (spills), 5 x 2 406, 3 x 2 436-480, 4 x 2 447-518; GEMV
 * 1 x 2 10-12 % faster than 1 x 1 (two independent chains and half the broadcasts while the
 * weights stream), 1 x 4 like 1 x 2.
 * Tails: a short last k-block of a row is read from a zero-padded copy (zero activations add
 * nothing and nothing past K is read); output rows past N are masked off at the store.
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512VNNI)
#error "kernels/x86/*_avx512vnni.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma"
#endif
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* xsum table (fp32, one per activation row and block), computed once per panel of rows and
 * shared by every tile (32 KB); at most I8_MPMAX rows per panel. As in qint8_avx2.c. */
#define I8_TAB 8192
#define I8_MPMAX 64
/* Register blocks: GEMM MRG rows x NTG tiles, GEMV 1 row x NTV tiles (see the file comment). */
#define MRG 4
#define NTG 2
#define NTV 2
#define MRMAX MRG
#define NTMAX 2

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline __mmask16 rows_mask(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

/* Four int8 activations (one dword) in every lane. */
static inline __m512i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Quad d (columns 4 d .. 4 d + 3) of a cell for its 16 rows, as four code bytes per lane. */
ALWAYS_INLINE __m512i quad(const int bits, const uint32_t *cell, int d)
{
    switch (bits) {
    case 8:
        return _mm512_loadu_si512(cell + d * PEQA_NR);
    case 4:
        return _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + (d >> 1) * PEQA_NR), 4u * (d & 1)),
                                _mm512_set1_epi32(0x0F0F0F0F));
    case 2:
        return _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + (d >> 2) * PEQA_NR), 2u * (d & 3)),
                                _mm512_set1_epi32(0x03030303));
    default: {
        const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + (d >> 2) * PEQA_NR), 2u * (d & 3)),
                                            _mm512_set1_epi32(0x03030303));
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(cell + 2 * PEQA_NR), (unsigned)d),
                                            _mm512_set1_epi32(0x01010101));
        return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 2));
    }
    }
}

/* isum[v * mr + i] (16 row lanes) = Σ_{k in block} xq[row i, k] · q[n, k] for the cells of nt
 * tiles (cell[v]) and rows i < mr: each broadcast of four activations feeds nt vpdpbusd. */
ALWAYS_INLINE void cell_isum(const int bits, const int mr, const int nt, const uint32_t *const *cell,
                             const int8_t *const *xp, __m512i *isum)
{
#pragma GCC unroll 8
    for (int u = 0; u < mr * nt; u++) isum[u] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int d = 0; d < 8; d++) {
        __m512i c[NTMAX];
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) c[v] = quad(bits, cell[v], d);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512i x4 = bcast4(xp[i] + 4 * d);
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) isum[v * mr + i] = _mm512_dpbusd_epi32(isum[v * mr + i], c[v], x4);
        }
    }
}

/* Blocks [b0, b1) of tiles t .. t + nt - 1 for mr activation rows, continuing the chains in
 * a[] and yv[] (index v * mr + i: tile t + v, row i):
 *   at a group start:  a = 0
 *   per block:         t = fma(-z[n, j], (float)xsum, (float)isum);  a = fma(xs[m, b], t, a)
 *   at a group end:    y = fma(s[n, j], a, y)
 * xrow[i]: row i of xq; xtail[i]: a zero-padded copy of its short last block; tab[i][b - tb0]:
 * (float)xsum; xsr[i]: row i of xs. */
ALWAYS_INLINE void i8_blocks(const int bits, const int mr, const int nt, const peqa_qw *w, int64_t t, int64_t b0,
                             int64_t b1, const int8_t *const *xrow, const int8_t *const *xtail,
                             const float *const *tab, int64_t tb0, const float *const *xsr, __m512 *a, __m512 *yv)
{
    const int64_t g = w->g, K = w->k, G = w->ng;
    const uint32_t *cell[NTMAX];
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) cell[v] = peqa_cell(w, t + v, b0);
    int64_t j = b0 * PEQA_KB / g, gs = j * g, ge = min64(gs + g, K);
    for (int64_t b = b0; b < b1; b++) {
        if (mr == 1) /* GEMV: the weights stream once from DRAM; fetch the codes 8 KB ahead and, at
                      * each group start, z and s two groups ahead. Measured on Zen 5 (4096 x 4096
                      * 4-bit, A/B in one process): codes 2 KB ahead 0.49 ms, 8 KB 0.40-0.50 ms
                      * (16 and 32 KB alike), plus s and z 6-10 % less again */
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) peqa_prefetch_cell(cell[v], bits, 8192);
        const int64_t kb = b * PEQA_KB;
        if (kb >= ge) j++, gs = ge, ge = min64(gs + g, K);
        if (kb == gs) {
#pragma GCC unroll 8
            for (int u = 0; u < mr * nt; u++) a[u] = _mm512_setzero_ps();
            if (mr == 1)
#pragma GCC unroll 4
                for (int v = 0; v < nt; v++) peqa_prefetch_sz(w, t + v, j);
        }
        const int8_t *xp[MRMAX];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) xp[i] = kb + PEQA_KB <= K ? xrow[i] + kb : xtail[i];
        __m512i isum[MRMAX * NTMAX];
        cell_isum(bits, mr, nt, cell, xp, isum);
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) {
            const __m512 nz = _mm512_xor_ps(_mm512_loadu_ps(w->z + (size_t)((t + v) * G + j) * PEQA_NR), _mm512_set1_ps(-0.0f));
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                const __m512 xsum = _mm512_set1_ps(tab[i][b - tb0]), d = _mm512_set1_ps(xsr[i][b]);
                a[v * mr + i] = _mm512_fmadd_ps(d, _mm512_fmadd_ps(nz, xsum, _mm512_cvtepi32_ps(isum[v * mr + i])), a[v * mr + i]);
            }
        }
        if (kb + PEQA_KB >= ge) /* last block of group j */
#pragma GCC unroll 4
            for (int v = 0; v < nt; v++) {
                const __m512 s = _mm512_loadu_ps(w->s + (size_t)((t + v) * G + j) * PEQA_NR);
#pragma GCC unroll 8
                for (int i = 0; i < mr; i++) yv[v * mr + i] = _mm512_fmadd_ps(s, a[v * mr + i], yv[v * mr + i]);
            }
#pragma GCC unroll 4
        for (int v = 0; v < nt; v++) cell[v] += (size_t)bits * PEQA_NR;
    }
}

/* Rows [r0, r1) of xq, blocks [cb0, cb1): tab[(r - r0) * (cb1 - cb0) + b - cb0] = (float) Σ xq
 * over the block (an exact integer sum, |Σ| <= 32 · 127), and the zero-padded copy of the short
 * last block of K in xtail[(r - r0) * 32 ..] when it is among them. */
static void i8_prepare(const int8_t *xq, int64_t ldq, int64_t K, int64_t r0, int64_t r1, int64_t cb0, int64_t cb1,
                       float *tab, int8_t *xtail)
{
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
            int32_t s = 0;
            for (int i = 0; i < PEQA_KB; i++) s += src[i];
            tab[(r - r0) * nbc + (b - cb0)] = (float)s;
        }
}

/* Rows mb .. mb + mr - 1 of tiles t .. t + nt - 1, start to end (so any split of the ranges
 * gives the same bits); table chunks of bc blocks (bc < nb only when K is huge: then prepared
 * per chunk). */
ALWAYS_INLINE void i8_rows(const int bits, const int mr, const int nt, const peqa_qw *w, int64_t t, int64_t mb,
                           int64_t p0, int64_t bc, int64_t n1, const int8_t *xq, int64_t ldq, const float *xs,
                           int64_t ldxs, float *tab, int8_t *xtail, float *y, int64_t ldy)
{
    const int64_t nb = w->kblk;
    __m512 a[MRMAX * NTMAX], yv[MRMAX * NTMAX];
    const int8_t *xrow[MRMAX], *xtl[MRMAX];
    const float *xsr[MRMAX], *tb[MRMAX];
#pragma GCC unroll 8
    for (int u = 0; u < mr * nt; u++) a[u] = yv[u] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        xrow[i] = xq + (mb + i) * ldq;
        xtl[i] = xtail + (mb + i - p0) * PEQA_KB;
        xsr[i] = xs + (mb + i) * ldxs;
    }
    for (int64_t cb0 = 0; cb0 < nb; cb0 += bc) {
        const int64_t cb1 = min64(cb0 + bc, nb);
        if (bc < nb) i8_prepare(xq, ldq, w->k, mb, mb + mr, cb0, cb1, tab, xtail);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) tb[i] = tab + (mb + i - p0) * (cb1 - cb0);
        i8_blocks(bits, mr, nt, w, t, cb0, cb1, xrow, xtl, tb, cb0, xsr, a, yv);
    }
#pragma GCC unroll 4
    for (int v = 0; v < nt; v++) {
        const __mmask16 rows = rows_mask(n1 - (t + v) * PEQA_NR);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) _mm512_mask_storeu_ps(y + (mb + i) * ldy + (t + v) * PEQA_NR, rows, yv[v * mr + i]);
    }
}

/* One function per (bit width, row count, tile count): the row and tile tails are dispatched
 * through rows_tab[bits][mr - 1][nt - 1] (NULL where no caller needs the pair). */
#define ROWS_FN_(B, R, T)                                                                                       \
    static void rows_q##B##_##R##x##T(const peqa_qw *w, int64_t t, int64_t mb, int64_t p0, int64_t bc,          \
                                      int64_t n1, const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, \
                                      float *tab, int8_t *xtail, float *y, int64_t ldy)                         \
    {                                                                                                           \
        i8_rows(B, R, T, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy);                          \
    }
#define ROWS_FN(B, R, T) ROWS_FN_(B, R, T)
#define ROWS_SET_(B, R, T) [R - 1][T - 1] = rows_q##B##_##R##x##T
#define ROWS_SET(B, R, T) ROWS_SET_(B, R, T)
/* the combinations used: blocks of 1 .. MRG rows on NTG tiles and on a last odd tile (the GEMV's
 * blocks are the 1-row ones) */
#define ROWS_COMBOS(X, B) \
    X(B, 1, 1) X(B, 2, 1) X(B, 3, 1) X(B, 4, 1) X(B, 1, 2) X(B, 2, 2) X(B, 3, 2) X(B, 4, 2)
_Static_assert(MRG == 4 && NTG == 2 && NTV == 2, "ROWS_COMBOS lists 1 .. 4 rows on 1 or 2 tiles");
#define ROWS_COMMA(B, R, T) ROWS_SET(B, R, T),
ROWS_COMBOS(ROWS_FN, 2)
ROWS_COMBOS(ROWS_FN, 3)
ROWS_COMBOS(ROWS_FN, 4)
ROWS_COMBOS(ROWS_FN, 8)
typedef void (*rows_fn)(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, int64_t, const int8_t *, int64_t,
                        const float *, int64_t, float *, int8_t *, float *, int64_t);
static const rows_fn rows_tab[PEQA_NBITS][MRMAX][NTMAX] = {
    {ROWS_COMBOS(ROWS_COMMA, 2)}, {ROWS_COMBOS(ROWS_COMMA, 3)}, {ROWS_COMBOS(ROWS_COMMA, 4)}, {ROWS_COMBOS(ROWS_COMMA, 8)}};
#undef ROWS_COMBOS
#undef ROWS_COMMA
#undef ROWS_SET
#undef ROWS_SET_
#undef ROWS_FN
#undef ROWS_FN_

/* Y[m, n] for m in [m0, m1), n in [n0, n1): register blocks of mrb activation rows x ntb tiles.
 * Loop nest: panels of mp rows (xsum table once per panel) -> groups of ntb tiles (the last
 * tiles one by one) -> row blocks -> blocks. */
static void fwd_i8_impl(const peqa_qw *w, int mrb, int ntb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                        const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, float *y, int64_t ldy)
{
    float tab[I8_TAB];
    int8_t xtail[I8_MPMAX * PEQA_KB];
    const rows_fn(*fns)[NTMAX] = rows_tab[peqa_bits_index(w->bits)];
    const int64_t nb = w->kblk, t1 = (n1 + PEQA_NR - 1) / PEQA_NR;
    int64_t bc = nb, mp = mrb;
    if (nb * mrb <= I8_TAB)
        mp = min64(I8_MPMAX, I8_TAB / nb) / mrb * mrb;
    else
        bc = I8_TAB / mrb;
    for (int64_t p0 = m0; p0 < m1; p0 += mp) {
        const int64_t p1 = min64(p0 + mp, m1);
        if (bc == nb) i8_prepare(xq, ldq, w->k, p0, p1, 0, nb, tab, xtail);
        for (int64_t t = n0 / PEQA_NR; t < t1;) {
            const int nt = t + ntb <= t1 ? ntb : 1;
            for (int64_t mb = p0; mb < p1; mb += mrb)
                fns[min64(mrb, p1 - mb) - 1][nt - 1](w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy);
            t += nt;
        }
    }
}

#define I8_ENTRY(B)                                                                                            \
    static void peqa_fwd_i8_gemv_q##B##_1x32__avx512vnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,             \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)  \
    {                                                                                                          \
        fwd_i8_impl(w, 1, NTV, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                          \
    }                                                                                                          \
    static void peqa_fwd_i8_gemm_q##B##_4x32__avx512vnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,             \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)  \
    {                                                                                                          \
        fwd_i8_impl(w, MRG, NTG, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                        \
    }
I8_ENTRY(2)
I8_ENTRY(3)
I8_ENTRY(4)
I8_ENTRY(8)
#undef I8_ENTRY

void peqa_init_qint8__avx512vnni(peqa_kernels *k, unsigned features)
{
    (void)features; /* the caller checked AVX-512 VNNI */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {
        peqa_fwd_i8_gemv_q2_1x32__avx512vnni, peqa_fwd_i8_gemv_q3_1x32__avx512vnni,
        peqa_fwd_i8_gemv_q4_1x32__avx512vnni, peqa_fwd_i8_gemv_q8_1x32__avx512vnni};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_4x32__avx512vnni, peqa_fwd_i8_gemm_q3_4x32__avx512vnni,
        peqa_fwd_i8_gemm_q4_4x32__avx512vnni, peqa_fwd_i8_gemm_q8_4x32__avx512vnni};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x32__avx512vnni", "peqa_fwd_i8_gemv_q3_1x32__avx512vnni",
        "peqa_fwd_i8_gemv_q4_1x32__avx512vnni", "peqa_fwd_i8_gemv_q8_1x32__avx512vnni"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_4x32__avx512vnni", "peqa_fwd_i8_gemm_q3_4x32__avx512vnni",
        "peqa_fwd_i8_gemm_q4_4x32__avx512vnni", "peqa_fwd_i8_gemm_q8_4x32__avx512vnni"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_name[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_name[b];
    }
}
