/* qint8 kernels, AVX-VNNI: the integer-activation forward with the VEX-encoded 256-bit vpdpbusd
 * (Alder Lake and later client CPUs, Sapphire Rapids; SPEC §7; contract and exact sequence in
 * kernels/ref/qact_ref.c). The same design as qint8_avx512vnni.c with the 16 rows of a tile in
 * two ymm (lanes 0..7 = rows 16 t .. 16 t + 7, then the next eight) instead of one zmm;
 * activation quantization stays with the AVX2 kernel.
 *
 * The packed layout gives, for a word vector V of a p-bit plane, (V >> p s) & MASK_p = four code
 * BYTES of four consecutive columns per row lane, and a broadcast dword of xq the four matching
 * int8 activations: the operand shape of
 *     vpdpbusd acc, codes (u8), x (s8):   acc[r] += Σ_{i<4} codes[r].byte i · x.byte i
 * four exact products summed exactly and added without saturation; |isum| <= 32 · 255 · 128
 * < 2^24 per block, so nothing wraps and (float)isum is exact. Against the AVX2 kernel
 * (vpmaddubsw + vpmaddwd) this drops the int16 stage, its saturation bound and the nibble split
 * of 8-bit codes. Quads of a block (d = 0 .. 7, columns 4 d .. 4 d + 3):
 *   b = 8: word d                               b = 4: (word d/2 >> 4 (d mod 2)) & 0x0F0F0F0F
 *   b = 2: (word d/4 >> 2 (d mod 4)) & 0x03..   b = 3: the 2-bit quad | ((word 2 >> d) & 0x01..) << 2
 * The float epilogue is the reference's, lane by lane:
 *     t = fma(−z, (float)xsum, (float)isum);  a = fma(xs, t, a) per block;  y = fma(s, a, y) per group.
 * Register plan (GEMM, MRB = 4 activation rows): 8 int32 accumulators, the two code vectors and
 * the broadcast during a cell (11 of 16 ymm); the a / y chains (16 ymm) live in L1 between
 * cells. Tails: the short last k-block of a row is read from a zero-padded copy, output rows past
 * N are masked off at the store (vmaskmovps).
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVXVNNI)
#error "kernels/x86/*_avxvnni.c must be built with -mavx2 -mfma -mavxvnni"
#endif
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* xsum table (fp32, one per activation row and block), computed once per panel of rows and
 * shared by every tile (32 KB); at most I8_MPMAX rows per panel. As in qint8_avx2.c. */
#define I8_TAB 8192
#define I8_MPMAX 64
#define MRB 4

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Lanes l < n (n clamped to 0..8) all-ones: the vmaskmovps mask of a row tail. */
static inline __m256i lane_mask(int64_t n)
{
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Four int8 activations (one dword) in every lane. */
static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Quad d (columns 4 d .. 4 d + 3) of rows 8 h .. 8 h + 7 of a cell, four code bytes per lane. */
ALWAYS_INLINE __m256i quad(const int bits, const uint32_t *cell, int h, int d)
{
    const uint32_t *r = cell + 8 * h;
    switch (bits) {
    case 8:
        return _mm256_loadu_si256((const __m256i *)(r + d * PEQA_NR));
    case 4:
        return _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(r + (d >> 1) * PEQA_NR)), 4 * (d & 1)),
                                _mm256_set1_epi32(0x0F0F0F0F));
    case 2:
        return _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(r + (d >> 2) * PEQA_NR)), 2 * (d & 3)),
                                _mm256_set1_epi32(0x03030303));
    default: {
        const __m256i lo = _mm256_and_si256(
            _mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(r + (d >> 2) * PEQA_NR)), 2 * (d & 3)),
            _mm256_set1_epi32(0x03030303));
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(r + 2 * PEQA_NR)), d),
                                            _mm256_set1_epi32(0x01010101));
        return _mm256_or_si256(lo, _mm256_slli_epi32(hi, 2));
    }
    }
}

/* isum[2 i + h] (rows 8 h .. 8 h + 7) = Σ_{k in block} xq[row i, k] · q[n, k], rows i < mr. */
ALWAYS_INLINE void cell_isum(const int bits, const int mr, const uint32_t *cell, const int8_t *const *xp, __m256i *isum)
{
#pragma GCC unroll 8
    for (int i = 0; i < 2 * mr; i++) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int d = 0; d < 8; d++) {
        const __m256i c0 = quad(bits, cell, 0, d), c1 = quad(bits, cell, 1, d);
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            const __m256i xv = bcast4(xp[i] + 4 * d);
            isum[2 * i] = _mm256_dpbusd_avx_epi32(isum[2 * i], c0, xv);
            isum[2 * i + 1] = _mm256_dpbusd_avx_epi32(isum[2 * i + 1], c1, xv);
        }
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
                             int64_t tb0, const float *const *xsr, __m256 *a, __m256 *yv)
{
    const int64_t g = w->g, K = w->k, G = w->ng;
    const uint32_t *cell = peqa_cell(w, t, b0);
    int64_t j = b0 * PEQA_KB / g, gs = j * g, ge = min64(gs + g, K);
    for (int64_t b = b0; b < b1; b++, cell += (size_t)bits * PEQA_NR) {
        if (mr == 1) /* GEMV: the weights stream once from DRAM; fetch them 8 KB ahead (on Zen 5
                      * 5-8 % faster than 2 KB; qint8_avx512vnni.c measured the same) */
            peqa_prefetch_cell(cell, bits, 8192);
        const int64_t kb = b * PEQA_KB;
        if (kb >= ge) j++, gs = ge, ge = min64(gs + g, K);
        if (kb == gs) {
#pragma GCC unroll 8
            for (int i = 0; i < 2 * mr; i++) a[i] = _mm256_setzero_ps();
            if (mr == 1) peqa_prefetch_sz(w, t, j);
        }
        const int8_t *xp[MRB];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) xp[i] = kb + PEQA_KB <= K ? xrow[i] + kb : xtail[i];
        __m256i isum[2 * MRB];
        cell_isum(bits, mr, cell, xp, isum);
        const float *zt = w->z + (size_t)(t * G + j) * PEQA_NR;
        const __m256 sign = _mm256_set1_ps(-0.0f);
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
    __m256 a[2 * MRB], yv[2 * MRB];
    const int8_t *xrow[MRB], *xtl[MRB];
    const float *xsr[MRB], *tb[MRB];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        a[2 * i] = a[2 * i + 1] = yv[2 * i] = yv[2 * i + 1] = _mm256_setzero_ps();
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
    const int64_t valid = n1 - t * PEQA_NR;
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        float *yp = y + (mb + i) * ldy + t * PEQA_NR;
        if (valid >= 16) {
            _mm256_storeu_ps(yp, yv[2 * i]), _mm256_storeu_ps(yp + 8, yv[2 * i + 1]);
        } else {
            _mm256_maskstore_ps(yp, lane_mask(valid), yv[2 * i]);
            _mm256_maskstore_ps(yp + 8, lane_mask(valid - 8), yv[2 * i + 1]);
        }
    }
}

/* One function per (bit width, row count): the dispatcher of the row tails. */
#define ROWS_FN(B, R)                                                                                         \
    static void rows_q##B##_##R(const peqa_qw *w, int64_t t, int64_t mb, int64_t p0, int64_t bc, int64_t n1,  \
                                const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, float *tab,    \
                                int8_t *xtail, float *y, int64_t ldy)                                        \
    {                                                                                                         \
        i8_rows(B, R, w, t, mb, p0, bc, n1, xq, ldq, xs, ldxs, tab, xtail, y, ldy);                           \
    }
#define ROWS_ALL(B) ROWS_FN(B, 1) ROWS_FN(B, 2) ROWS_FN(B, 3) ROWS_FN(B, 4)
ROWS_ALL(2)
ROWS_ALL(3)
ROWS_ALL(4)
ROWS_ALL(8)
#undef ROWS_ALL
#undef ROWS_FN
typedef void (*rows_fn)(const peqa_qw *, int64_t, int64_t, int64_t, int64_t, int64_t, const int8_t *, int64_t,
                        const float *, int64_t, float *, int8_t *, float *, int64_t);
static const rows_fn rows_tab[PEQA_NBITS][MRB] = {
    {rows_q2_1, rows_q2_2, rows_q2_3, rows_q2_4},
    {rows_q3_1, rows_q3_2, rows_q3_3, rows_q3_4},
    {rows_q4_1, rows_q4_2, rows_q4_3, rows_q4_4},
    {rows_q8_1, rows_q8_2, rows_q8_3, rows_q8_4}};

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
    static void peqa_fwd_i8_gemv_q##B##_1x16__avxvnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
                                                         int64_t n1, const int8_t *xq, int64_t ldq,             \
                                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)  \
    {                                                                                                          \
        fwd_i8_impl(w, 1, m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy);                                          \
    }                                                                                                          \
    static void peqa_fwd_i8_gemm_q##B##_4x16__avxvnni(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0,  \
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

void peqa_init_qint8__avxvnni(peqa_kernels *k, unsigned features)
{
    (void)features; /* the caller checked AVX-VNNI */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {
        peqa_fwd_i8_gemv_q2_1x16__avxvnni, peqa_fwd_i8_gemv_q3_1x16__avxvnni,
        peqa_fwd_i8_gemv_q4_1x16__avxvnni, peqa_fwd_i8_gemv_q8_1x16__avxvnni};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_4x16__avxvnni, peqa_fwd_i8_gemm_q3_4x16__avxvnni,
        peqa_fwd_i8_gemm_q4_4x16__avxvnni, peqa_fwd_i8_gemm_q8_4x16__avxvnni};
    static const char *const gemv_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x16__avxvnni", "peqa_fwd_i8_gemv_q3_1x16__avxvnni",
        "peqa_fwd_i8_gemv_q4_1x16__avxvnni", "peqa_fwd_i8_gemv_q8_1x16__avxvnni"};
    static const char *const gemm_name[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_4x16__avxvnni", "peqa_fwd_i8_gemm_q3_4x16__avxvnni",
        "peqa_fwd_i8_gemm_q4_4x16__avxvnni", "peqa_fwd_i8_gemm_q8_4x16__avxvnni"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_name[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_name[b];
    }
}
