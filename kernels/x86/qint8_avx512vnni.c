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
 * Register plan (GEMM, MRB = 6 activation rows): 6 isum + 6 a + 6 y = 18 zmm, the code quad,
 * the broadcast, −z, s and the masks: about 25 of 32. The code extraction (one shift and one
 * mask per quad, plus a shift/and/or at b = 3) and the weight loads are shared by the 6 rows;
 * per cell and row 8 vpdpbusd. GEMV is one row (MRB = 1) and streams the weights.
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
#define MRB 6

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

/* isum[i] (16 row lanes) = Σ_{k in block} xq[row i, k] · q[n, k] for one cell, rows i < mr. */
ALWAYS_INLINE void cell_isum(const int bits, const int mr, const uint32_t *cell, const int8_t *const *xp, __m512i *isum)
{
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) isum[i] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int d = 0; d < 8; d++) {
        const __m512i c = quad(bits, cell, d);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) isum[i] = _mm512_dpbusd_epi32(isum[i], c, bcast4(xp[i] + 4 * d));
    }
}

/* Blocks [b0, b1) of tile t for mr activation rows, continuing the chains in a[] and yv[]:
 *   at a group start:  a = 0
 *   per block:         t = fma(-z[n, j], (float)xsum, (float)isum);  a = fma(xs[m, b], t, a)
 *   at a group end:    y = fma(s[n, j], a, y)
 * xrow[i]: row i of xq; xtail[i]: a zero-padded copy of its short last block; tab[i][b - tb0]:
 * (float)xsum; xsr[i]: row i of xs. */
ALWAYS_INLINE void i8_blocks(const int bits, const int mr, const peqa_qw *w, int64_t t, int64_t b0, int64_t b1,
                             const int8_t *const *xrow, const int8_t *const *xtail, const float *const *tab,
                             int64_t tb0, const float *const *xsr, __m512 *a, __m512 *yv)
{
    const int64_t g = w->g, K = w->k, G = w->ng;
    const uint32_t *cell = peqa_cell(w, t, b0);
    int64_t j = b0 * PEQA_KB / g, gs = j * g, ge = min64(gs + g, K);
    for (int64_t b = b0; b < b1; b++, cell += (size_t)bits * PEQA_NR) {
        if (mr == 1) /* GEMV: the weights stream once from DRAM; fetch the codes 8 KB ahead and, at
                      * each group start, z and s two groups ahead. Measured on Zen 5 (4096 x 4096
                      * 4-bit, A/B in one process): codes 2 KB ahead 0.49 ms, 8 KB 0.40-0.50 ms
                      * (16 and 32 KB alike), plus s and z 6-10 % less again */
#pragma GCC unroll 8
            for (int l = 0; l < bits; l++) _mm_prefetch((const char *)cell + 8192 + 64 * l, _MM_HINT_T0);
        const int64_t kb = b * PEQA_KB;
        if (kb >= ge) j++, gs = ge, ge = min64(gs + g, K);
        if (kb == gs) {
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) a[i] = _mm512_setzero_ps();
            if (mr == 1) peqa_prefetch_sz(w, t, j);
        }
        const int8_t *xp[MRB];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) xp[i] = kb + PEQA_KB <= K ? xrow[i] + kb : xtail[i];
        __m512i isum[MRB];
        cell_isum(bits, mr, cell, xp, isum);
        const __m512 nz = _mm512_xor_ps(_mm512_loadu_ps(w->z + (size_t)(t * G + j) * PEQA_NR), _mm512_set1_ps(-0.0f));
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512 xsum = _mm512_set1_ps(tab[i][b - tb0]), d = _mm512_set1_ps(xsr[i][b]);
            a[i] = _mm512_fmadd_ps(d, _mm512_fmadd_ps(nz, xsum, _mm512_cvtepi32_ps(isum[i])), a[i]);
        }
        if (kb + PEQA_KB >= ge) { /* last block of group j */
            const __m512 s = _mm512_loadu_ps(w->s + (size_t)(t * G + j) * PEQA_NR);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) yv[i] = _mm512_fmadd_ps(s, a[i], yv[i]);
        }
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

/* Rows mb .. mb + mr - 1 of tile t, start to end (so any split of the ranges gives the same
 * bits); table chunks of bc blocks (bc < nb only when K is huge: then prepared per chunk). */
ALWAYS_INLINE void i8_rows(const int bits, const int mr, const peqa_qw *w, int64_t t, int64_t mb, int64_t p0,
                           int64_t bc, int64_t n1, const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs,
                           float *tab, int8_t *xtail, float *y, int64_t ldy)
{
    const int64_t nb = w->kblk;
    __m512 a[MRB], yv[MRB];
    const int8_t *xrow[MRB], *xtl[MRB];
    const float *xsr[MRB], *tb[MRB];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        a[i] = yv[i] = _mm512_setzero_ps();
        xrow[i] = xq + (mb + i) * ldq;
        xtl[i] = xtail + (mb + i - p0) * PEQA_KB;
        xsr[i] = xs + (mb + i) * ldxs;
    }
    for (int64_t cb0 = 0; cb0 < nb; cb0 += bc) {
        const int64_t cb1 = min64(cb0 + bc, nb);
        if (bc < nb) i8_prepare(xq, ldq, w->k, mb, mb + mr, cb0, cb1, tab, xtail);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) tb[i] = tab + (mb + i - p0) * (cb1 - cb0);
        i8_blocks(bits, mr, w, t, cb0, cb1, xrow, xtl, tb, cb0, xsr, a, yv);
    }
    const __mmask16 rows = rows_mask(n1 - t * PEQA_NR);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) _mm512_mask_storeu_ps(y + (mb + i) * ldy + t * PEQA_NR, rows, yv[i]);
}

/* One function per (bit width, row count): the dispatcher of the row tails. */
#define ROWS_FN(B, R)                                                                                         \
    static void rows_q##B##_##R(const peqa_qw *w, int64_t t, int64_t mb, int64_t p0, int64_t bc, int64_t n1,  \
                                const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, float *tab,    \
                                int8_t *xtail, float *y, int64_t ldy)                                        \
    {                                                                                                         \
        i8_rows(B, R, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy);                           \
    }
#define ROWS_ALL(B) ROWS_FN(B, 1) ROWS_FN(B, 2) ROWS_FN(B, 3) ROWS_FN(B, 4) ROWS_FN(B, 5) ROWS_FN(B, 6)
ROWS_ALL(2)
ROWS_ALL(3)
ROWS_ALL(4)
ROWS_ALL(8)
#undef ROWS_ALL
#undef ROWS_FN
typedef void (*rows_fn)(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, int64_t, const int8_t *, int64_t,
                        const float *, int64_t, float *, int8_t *, float *, int64_t);
static const rows_fn rows_tab[PEQA_NBITS][MRB] = {
    {rows_q2_1, rows_q2_2, rows_q2_3, rows_q2_4, rows_q2_5, rows_q2_6},
    {rows_q3_1, rows_q3_2, rows_q3_3, rows_q3_4, rows_q3_5, rows_q3_6},
    {rows_q4_1, rows_q4_2, rows_q4_3, rows_q4_4, rows_q4_5, rows_q4_6},
    {rows_q8_1, rows_q8_2, rows_q8_3, rows_q8_4, rows_q8_5, rows_q8_6}};

/* Y[m, n] for m in [m0, m1), n in [n0, n1), mrb activation rows per register block. Loop nest:
 * panels of mp rows (xsum table once per panel) -> tiles -> row blocks -> blocks. */
static void fwd_i8_impl(const peqa_qw *w, int mrb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const int8_t *xq,
                        int64_t ldq, const float *xs, int64_t ldxs, float *y, int64_t ldy)
{
    float tab[I8_TAB];
    int8_t xtail[I8_MPMAX * PEQA_KB];
    const rows_fn *fns = rows_tab[peqa_bits_index(w->bits)];
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
            for (int64_t mb = p0; mb < p1; mb += mrb)
                fns[min64(mrb, p1 - mb) - 1](w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy);
    }
}

#define I8_ENTRY(B)                                                                                            \
    static void peqa_fwd_i8_gemv_q##B##_1x16__avx512vnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,             \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)  \
    {                                                                                                          \
        fwd_i8_impl(w, 1, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                          \
    }                                                                                                          \
    static void peqa_fwd_i8_gemm_q##B##_6x16__avx512vnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,             \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)  \
    {                                                                                                          \
        fwd_i8_impl(w, MRB, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                        \
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
        peqa_fwd_i8_gemv_q2_1x16__avx512vnni, peqa_fwd_i8_gemv_q3_1x16__avx512vnni,
        peqa_fwd_i8_gemv_q4_1x16__avx512vnni, peqa_fwd_i8_gemv_q8_1x16__avx512vnni};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_6x16__avx512vnni, peqa_fwd_i8_gemm_q3_6x16__avx512vnni,
        peqa_fwd_i8_gemm_q4_6x16__avx512vnni, peqa_fwd_i8_gemm_q8_6x16__avx512vnni};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x16__avx512vnni", "peqa_fwd_i8_gemv_q3_1x16__avx512vnni",
        "peqa_fwd_i8_gemv_q4_1x16__avx512vnni", "peqa_fwd_i8_gemv_q8_1x16__avx512vnni"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_6x16__avx512vnni", "peqa_fwd_i8_gemm_q3_6x16__avx512vnni",
        "peqa_fwd_i8_gemm_q4_6x16__avx512vnni", "peqa_fwd_i8_gemm_q8_6x16__avx512vnni"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_name[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_name[b];
    }
}
