/* qgrad kernels, AVX2 + FMA: the PEQA backward pass (SPEC §4, §6).
 *
 *   gscale   dS[n, j] = Σ_m dY[m, n] · P[m, n, j]          lanes over n (two tiles: 32 rows)
 *   gzero    dZ[n, j] = -s[n, j] · Σ_m dY[m, n] · XS[m, j]  lanes over n (one tile: 16 rows)
 *   ginput   dX[m, k] = Σ_n dY[m, n] · Ŵ[n, k]              lanes over k (one k-block: 32 columns)
 *
 * Every output lane runs exactly the scalar reference's sequence (kernels/ref/qgrad_ref.c):
 * the same binary32 operations, one vfmadd where the reference has fmaf, reductions in the
 * reference's index order. Results are therefore bit-identical to the reference for every shape
 * and every range the driver passes (src/linear.c), whatever the thread count.
 *
 * The FMA engine (fma_rows_x32, avx2_panel.h) is shared by gscale, ginput and the forward GEMM:
 * all are "up to 3 rows of a broadcast operand A times a 32-lane operand B, accumulated over a
 * sequential index", with
 *     gscale:  A = X rows m (index k of a group),   B = (float)q - z    (32 rows n in lanes)
 *     ginput:  A = dY rows m (index n),             B = Ŵ = s (q - z)   (32 columns k in lanes)
 * B is decoded from the packed codes into a small L1 scratch once per panel of rows of A and
 * reused by all its register blocks, so the decode cost is divided by the panel height. No
 * N x K buffer is ever formed. Tails: rows past N / columns past K are computed in lanes that
 * are never stored (masked loads and stores at the edges; decoded padding codes are finite).
 */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include <immintrin.h>
#include <stdint.h>
#include "../peqa_kernels.h"
#include "avx2_panel.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Blocking (values measured on Zen 3; they change no bit, only speed); gscale's is panel_impl.h's.
 * ginput: panels of GI_MC rows of dY; one decoded chunk of Ŵ is GI_NC x 32 floats (16 KB, L1;
 *   GI_NC is a multiple of 16, so chunks are whole tiles). Stack per call 18 + 16 KB. */
#define GI_MC 144
#define GI_NC 128
/* gzero: XS table of GZ_MZ rows x GZ_JZ groups (16 KB). */
#define GZ_MZ 128
#define GZ_JZ 32

_Static_assert(GI_NC % PEQA_NR == 0 && GI_MC % PANEL_MR == 0, "chunk sizes");

/* Lanes l < n (n clamped to 0..8) all-ones: the mask for maskload/maskstore of a row tail. */
static inline __m256i lane_mask(int64_t n)
{
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 16 consecutive floats as two ymm; only the first `valid` (0..16) are read when valid < 16
 * (vmaskmovps never touches masked-off lanes, so a row end is never crossed). */
static inline void load16(const float *p, int64_t valid, __m256 *lo, __m256 *hi)
{
    if (valid >= 16) {
        *lo = _mm256_loadu_ps(p), *hi = _mm256_loadu_ps(p + 8);
    } else {
        *lo = _mm256_maskload_ps(p, lane_mask(valid));
        *hi = _mm256_maskload_ps(p + 8, lane_mask(valid - 8));
    }
}
static inline void store16(float *p, int64_t valid, __m256 lo, __m256 hi)
{
    if (valid >= 16) {
        _mm256_storeu_ps(p, lo), _mm256_storeu_ps(p + 8, hi);
    } else {
        _mm256_maskstore_ps(p, lane_mask(valid), lo);
        _mm256_maskstore_ps(p + 8, lane_mask(valid - 8), hi);
    }
}

/* ---- decoding the packed codes (layout: kernels/peqa_kernels.h) ---------------------------
 * Column form (gscale): decode_cols() of avx2_panel.h. */

/* Row form (ginput): the 32 columns of one row r of a cell in 4 octets of 8 lanes. Lane l of an
 * octet is byte l % 4, field l / 4 of its word, so its shift is 8 (l % 4) + p (l / 4) + off. */
static inline __m256i octet_shifts(int p, int off)
{
    return _mm256_setr_epi32(off, 8 + off, 16 + off, 24 + off, p + off, 8 + p + off, 16 + p + off,
                             24 + p + off);
}

/* Codes of columns 8 h .. 8 h + 7 of row r, as int32 lanes:
 *   b = 4: word h,               shifts octet_shifts(4, 0)
 *   b = 2: word h / 2,           shifts octet_shifts(2, 4 (h % 2))     (second half of the word)
 *   b = 3: low as b = 2; high bit from word 2, shifts octet_shifts(1, 2 h)
 *   b = 8: lanes 0-3 from word 2 h, lanes 4-7 from word 2 h + 1, shifts 8 (l % 4) */
ALWAYS_INLINE __m256i row_octet(const int bits, const uint32_t *cell, int r, int h)
{
    if (bits == 8) {
        __m256i v = _mm256_blend_epi32(_mm256_set1_epi32((int)cell[(2 * h) * 16 + r]),
                                       _mm256_set1_epi32((int)cell[(2 * h + 1) * 16 + r]), 0xF0);
        return _mm256_and_si256(_mm256_srlv_epi32(v, octet_shifts(0, 0)), _mm256_set1_epi32(255));
    }
    if (bits == 4)
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)cell[h * 16 + r]), octet_shifts(4, 0)),
                                _mm256_set1_epi32(15));
    __m256i lo = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32((int)cell[(h / 2) * 16 + r]), octet_shifts(2, 4 * (h % 2))),
        _mm256_set1_epi32(3));
    if (bits == 2) return lo;
    __m256i hi = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32((int)cell[2 * 16 + r]), octet_shifts(1, 2 * h)),
        _mm256_set1_epi32(1));
    return _mm256_or_si256(lo, _mm256_slli_epi32(hi, 2));
}

/* out[0..32) = s * ((float)q[row, 32 c + kk] - z): subtraction then product, each rounded once,
 * exactly the reference's Ŵ. */
ALWAYS_INLINE void decode_row(const int bits, const uint32_t *cell, int r, float s, float z, float *out)
{
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
        _mm256_store_ps(out + 8 * h,
                        _mm256_mul_ps(vs, _mm256_sub_ps(_mm256_cvtepi32_ps(row_octet(bits, cell, r, h)), vz)));
}

/* ---- scale gradient --------------------------------------------------------------------------
 * panel_gscale (panel_impl.h): panels of PANEL_MC rows m, tile pairs (32 rows n), groups; per
 * group P chunk by chunk (the forward's exact chains) and ds = fma(dY[m], P[m], ds) for m
 * ascending, carried across panels in ds itself. */

/* ---- zero-point gradient (format-independent: reads s, never q) ----------------------------
 *     xs(m, j) = 0; xs = xs + x[m, k] for k in group j ascending       (plain additions)
 *     t = 0; t = fma(dY[m, n], xs(m, j), t) for m ascending;  dz = (-s[n, j]) * t
 * xs(m, j) does not depend on n, so it is computed once per call into a table of GZ_MZ rows x
 * GZ_JZ groups and reused by every tile. The t chains (lanes over n) are carried across row
 * chunks in dz itself: stored raw after a chunk, reloaded before the next, finished with the
 * (-s) product after the last. Four groups run side by side: 8 independent fma chains. */
static void gzero_xs_table(const peqa_qw *w, const float *x, int64_t ldx, int64_t mc0, int64_t mc1,
                           int64_t jc0, int64_t jc1, float *tab)
{
    for (int64_t j = jc0; j < jc1; j++) {
        const int64_t k0 = j * w->g, k1 = min64(k0 + w->g, w->k);
        int64_t mi = mc0;
        for (; mi + 4 <= mc1; mi += 4) { /* four independent sequential sums */
            const float *x0 = x + mi * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (int64_t k = k0; k < k1; k++) s0 = s0 + x0[k], s1 = s1 + x1[k], s2 = s2 + x2[k], s3 = s3 + x3[k];
            tab[(mi - mc0) * GZ_JZ + (j - jc0)] = s0, tab[(mi + 1 - mc0) * GZ_JZ + (j - jc0)] = s1;
            tab[(mi + 2 - mc0) * GZ_JZ + (j - jc0)] = s2, tab[(mi + 3 - mc0) * GZ_JZ + (j - jc0)] = s3;
        }
        for (; mi < mc1; mi++) {
            float s0 = 0.0f;
            for (int64_t k = k0; k < k1; k++) s0 = s0 + x[mi * ldx + k];
            tab[(mi - mc0) * GZ_JZ + (j - jc0)] = s0;
        }
    }
}

/* The t chains of groups jj .. jj + nj - 1 (nj <= 4) of one tile over table rows [0, mlen). */
ALWAYS_INLINE void gzero_chains(const int nj, const float *dyp, int64_t lddy, int64_t rows,
                                const float *tab, int64_t mlen, __m256 *tc)
{
    __m256 t00 = tc[0], t01 = tc[1], t10 = tc[2], t11 = tc[3], t20 = tc[4], t21 = tc[5], t30 = tc[6], t31 = tc[7];
    for (int64_t mi = 0; mi < mlen; mi++) {
        __m256 d0, d1, xb;
        load16(dyp + mi * lddy, rows, &d0, &d1);
        xb = _mm256_broadcast_ss(tab + mi * GZ_JZ);
        t00 = _mm256_fmadd_ps(d0, xb, t00), t01 = _mm256_fmadd_ps(d1, xb, t01);
        if (nj > 1) {
            xb = _mm256_broadcast_ss(tab + mi * GZ_JZ + 1);
            t10 = _mm256_fmadd_ps(d0, xb, t10), t11 = _mm256_fmadd_ps(d1, xb, t11);
        }
        if (nj > 2) {
            xb = _mm256_broadcast_ss(tab + mi * GZ_JZ + 2);
            t20 = _mm256_fmadd_ps(d0, xb, t20), t21 = _mm256_fmadd_ps(d1, xb, t21);
        }
        if (nj > 3) {
            xb = _mm256_broadcast_ss(tab + mi * GZ_JZ + 3);
            t30 = _mm256_fmadd_ps(d0, xb, t30), t31 = _mm256_fmadd_ps(d1, xb, t31);
        }
    }
    tc[0] = t00, tc[1] = t01, tc[2] = t10, tc[3] = t11, tc[4] = t20, tc[5] = t21, tc[6] = t30, tc[7] = t31;
}

static void peqa_gzero_16__avx2(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                int64_t ldx, const float *dy, int64_t lddy, float *dz)
{
    _Alignas(32) float tab[GZ_MZ * GZ_JZ];
    _Alignas(32) float lanes[16];
    const int64_t G = w->ng;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t jc0 = 0; jc0 < G; jc0 += GZ_JZ) {
        const int64_t jc1 = min64(jc0 + GZ_JZ, G);
        for (int64_t mc0 = 0; mc0 < m; mc0 += GZ_MZ) {
            const int64_t mc1 = min64(mc0 + GZ_MZ, m);
            const int first = mc0 == 0, last = mc1 == m;
            gzero_xs_table(w, x, ldx, mc0, mc1, jc0, jc1, tab);
            for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
                const int64_t nt = t * PEQA_NR, rows = min64(n1 - nt, PEQA_NR);
                for (int64_t jj = jc0; jj < jc1; jj += 4) {
                    const int nj = (int)min64(4, jc1 - jj);
                    __m256 tc[8];
                    for (int q = 0; q < 8; q++) tc[q] = _mm256_setzero_ps();
                    if (!first)
                        for (int q = 0; q < nj; q++) {
                            for (int64_t r = 0; r < 16; r++) lanes[r] = r < rows ? dz[(nt + r) * G + jj + q] : 0.0f;
                            tc[2 * q] = _mm256_load_ps(lanes), tc[2 * q + 1] = _mm256_load_ps(lanes + 8);
                        }
                    const float *dyp = dy + mc0 * lddy + nt, *tb = tab + (jj - jc0);
                    switch (nj) {
                    case 1: gzero_chains(1, dyp, lddy, rows, tb, mc1 - mc0, tc); break;
                    case 2: gzero_chains(2, dyp, lddy, rows, tb, mc1 - mc0, tc); break;
                    case 3: gzero_chains(3, dyp, lddy, rows, tb, mc1 - mc0, tc); break;
                    default: gzero_chains(4, dyp, lddy, rows, tb, mc1 - mc0, tc); break;
                    }
                    for (int q = 0; q < nj; q++) {
                        __m256 r0 = tc[2 * q], r1 = tc[2 * q + 1];
                        if (last) { /* dz = (-s) * t: negation exact, one rounded product */
                            const float *st = w->s + (size_t)(t * G + jj + q) * PEQA_NR;
                            r0 = _mm256_mul_ps(_mm256_xor_ps(_mm256_loadu_ps(st), sign), r0);
                            r1 = _mm256_mul_ps(_mm256_xor_ps(_mm256_loadu_ps(st + 8), sign), r1);
                        }
                        _mm256_store_ps(lanes, r0), _mm256_store_ps(lanes + 8, r1);
                        for (int64_t r = 0; r < rows; r++) dz[(nt + r) * G + jj + q] = lanes[r];
                    }
                }
            }
        }
    }
}

/* ---- input gradient --------------------------------------------------------------------------
 * Loop nest for rows [m0, m1), columns [k0, k1) (whole 32-column blocks, the last possibly short):
 *   panel of GI_MC rows m, column block c (one group j = 32 c / g: blocks never straddle groups):
 *     chunk of GI_NC rows n (ascending, only n < N):
 *       decode Ŵ[n, 32 c .. 32 c + 31] of the chunk into wh[n][32] (row form, lanes over k)
 *       block of 3 rows m:
 *         dxb[m, 32 lanes] = fma(dY[m, n], Ŵ[n, 32 lanes], dxb) for n of the chunk ascending
 *     store dxb to dX (columns < k1 only)
 * The chains run over n = 0 .. N-1 in the reference's order; between row chunks they rest in
 * dxb (a store and reload keep the bits; the first chunk starts from 0). This is the forward's
 * blocking mirrored: a panel of dY read in place once per column block, one decode of Ŵ (16 KB,
 * L1) shared by GI_MC / 3 register blocks, the carried block (GI_MC x 32 floats) in L1. */
ALWAYS_INLINE void ginput_tmpl(const int bits, const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0,
                               int64_t k1, const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    _Alignas(32) float dxb[GI_MC * 32];
    _Alignas(32) float wh[GI_NC * 32];
    const int64_t G = w->ng, N = w->n;
    for (int64_t ms = m0; ms < m1; ms += GI_MC) {
        const int64_t me = min64(ms + GI_MC, m1);
        for (int64_t c = k0 / PEQA_KB; c * PEQA_KB < k1; c++) {
            const int64_t kb = c * PEQA_KB, vc = min64(PEQA_KB, k1 - kb), j = kb / w->g;
            for (int64_t nc0 = 0; nc0 < N; nc0 += GI_NC) {
                const int64_t nc1 = min64(nc0 + GI_NC, N);
                /* The cells of one column block are a row of tiles apart in the packed array (far
                 * apart, no hardware prefetch), so the next chunk's cells (of this column block, or
                 * the first chunk of the next one) are requested now, into L2. */
                {
                    const int64_t pc = nc1 < N ? c : c + 1, pn0 = nc1 < N ? nc1 : 0;
                    if (pc * PEQA_KB < k1)
                        for (int64_t t = pn0 / PEQA_NR; t * PEQA_NR < min64(pn0 + GI_NC, N); t++)
                            for (int q = 0; q < bits; q++)
                                _mm_prefetch((const char *)(peqa_cell(w, t, pc) + 16 * q), _MM_HINT_T1);
                }
                for (int64_t t = nc0 / PEQA_NR; t * PEQA_NR < nc1; t++) {
                    const uint32_t *cell = peqa_cell(w, t, c);
                    const float *st = w->s + (size_t)(t * G + j) * PEQA_NR, *zt = w->z + (size_t)(t * G + j) * PEQA_NR;
                    const int rows = (int)min64(PEQA_NR, nc1 - t * PEQA_NR);
                    for (int r = 0; r < rows; r++)
                        decode_row(bits, cell, r, st[r], zt[r], wh + (t * PEQA_NR + r - nc0) * 32);
                }
                for (int64_t mb = ms; mb < me; mb += PANEL_MR) {
                    float *xb = dxb + (mb - ms) * 32;
                    fma_rows32(FMA_PARK, (int)min64(PANEL_MR, me - mb), dy + mb * lddy + nc0, lddy, wh, nc1 - nc0,
                               nc0 > 0 ? xb : NULL, xb, NULL);
                }
            }
            for (int64_t i = 0; i < me - ms; i++) {
                store16(dx + (ms + i) * lddx + kb, vc, _mm256_load_ps(dxb + i * 32), _mm256_load_ps(dxb + i * 32 + 8));
                if (vc > 16)
                    store16(dx + (ms + i) * lddx + kb + 16, vc - 16, _mm256_load_ps(dxb + i * 32 + 16),
                            _mm256_load_ps(dxb + i * 32 + 24));
            }
        }
    }
}

/* ---- named entry points, one per bit width --------------------------------------------------- */
#define GRAD_ENTRY(B)                                                                                    \
    static void peqa_gscale_q##B##_16__avx2(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1,          \
                                            const float *x, int64_t ldx, const float *dy, int64_t lddy,   \
                                            float *ds)                                                    \
    {                                                                                                     \
        panel_gscale(B, w, m, n0, n1, x, ldx, dy, lddy, ds);                                               \
    }                                                                                                     \
    static void peqa_ginput_q##B##_3x32__avx2(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0,       \
                                              int64_t k1, const float *dy, int64_t lddy, float *dx,       \
                                              int64_t lddx)                                               \
    {                                                                                                     \
        ginput_tmpl(B, w, m0, m1, k0, k1, dy, lddy, dx, lddx);                                            \
    }
GRAD_ENTRY(2)
GRAD_ENTRY(3)
GRAD_ENTRY(4)
GRAD_ENTRY(8)
#undef GRAD_ENTRY

void peqa_init_qgrad__avx2(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX2 + FMA is all these kernels need; the caller checked it */
    static const peqa_gscale_fn gs[PEQA_NBITS] = {peqa_gscale_q2_16__avx2, peqa_gscale_q3_16__avx2,
                                                  peqa_gscale_q4_16__avx2, peqa_gscale_q8_16__avx2};
    static const peqa_ginput_fn gi[PEQA_NBITS] = {peqa_ginput_q2_3x32__avx2, peqa_ginput_q3_3x32__avx2,
                                                  peqa_ginput_q4_3x32__avx2, peqa_ginput_q8_3x32__avx2};
    static const char *const gs_name[PEQA_NBITS] = {"peqa_gscale_q2_16__avx2", "peqa_gscale_q3_16__avx2",
                                                    "peqa_gscale_q4_16__avx2", "peqa_gscale_q8_16__avx2"};
    static const char *const gi_name[PEQA_NBITS] = {"peqa_ginput_q2_3x32__avx2", "peqa_ginput_q3_3x32__avx2",
                                                    "peqa_ginput_q4_3x32__avx2", "peqa_ginput_q8_3x32__avx2"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->gscale[b] = gs[b], k->gscale_name[b] = gs_name[b];
        k->ginput[b] = gi[b], k->ginput_name[b] = gi_name[b];
        k->gzero[b] = peqa_gzero_16__avx2, k->gzero_name[b] = "peqa_gzero_16__avx2";
    }
}
