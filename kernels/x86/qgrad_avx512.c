/* qgrad kernels, AVX-512 (F, BW, VL, DQ) + FMA: the PEQA backward pass (SPEC §4, §6).
 *
 *   gscale   dS[n, j] = Σ_m dY[m, n] · P[m, n, j]          lanes over n (two tiles: 32 rows, 2 zmm)
 *   gzero    dZ[n, j] = -s[n, j] · Σ_m dY[m, n] · XS[m, j]  lanes over n (one tile: 16 rows, 1 zmm)
 *   ginput   dX[m, k] = Σ_n dY[m, n] · Ŵ[n, k]              lanes over k (one k-block: 32 columns, 2 zmm)
 *
 * Every output lane runs exactly the scalar reference's sequence (kernels/ref/qgrad_ref.c): the
 * same binary32 operations, one vfmadd where the reference has fmaf, reductions in the
 * reference's index order, so results are bit-identical for every shape, range and thread count.
 * The design is qgrad_avx2.c's (read its comments for the loop nests) with 16-lane zmm where it
 * has 8-lane ymm and a taller register block, which the 32 zmm registers allow:
 *
 * FMA engine (fma_rows_x32, avx512_panel.h), shared with fwd_gemm: up to 6 rows of a broadcast
 * operand A times a 32-lane operand B, accumulated over a sequential index:
 *     gscale:  A = X rows m (index k of a group),   B = (float)q - z    (32 rows n in lanes)
 *     ginput:  A = dY rows m (index n),             B = Ŵ = s (q - z)   (32 columns k in lanes)
 * gscale is the forward's P panel (pair_group) with the epilogue ds = fma(dY[m], P, ds); see
 * avx512_panel.h for the register plan. B is decoded into an L1 scratch once per panel of A rows
 * and reused by all its register blocks. Tails: rows past N / columns past K are computed in
 * lanes that are never stored (zero-masked loads and masked stores at the edges; decoded padding
 * codes are finite).
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include <stdint.h>
#include "../peqa_kernels.h"
#include "avx512_codes.h"
#include "avx512_panel.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Blocking (cache sizes only; they change no bit). As in qgrad_avx2.c, with panel heights that
 * are multiples of the 6-row block; gscale's is panel_impl.h's. Stack of ginput 18 + 16 KB. */
#define MR PANEL_MR
#define GI_MC 144
#define GI_NC 128
/* gzero: XS table of GZ_MZ rows x GZ_JZ groups (16 KB); GZ_NJ groups side by side. */
#define GZ_MZ 128
#define GZ_JZ 32
#define GZ_NJ 8

_Static_assert(GI_NC % PEQA_NR == 0 && GI_MC % MR == 0 &&
                   GZ_JZ % GZ_NJ == 0,
               "chunk sizes");

/* Row form (ginput): row_half() of avx512_codes.h, the 32 columns of one row in two zmm. */
/* out[0..32) = s * ((float)q[row, 32 c + kk] - z): subtraction then product, each rounded once,
 * exactly the reference's Ŵ. */
ALWAYS_INLINE void decode_row(const int bits, const uint32_t *cell, int r, float s, float z, float *out)
{
    const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z);
    _mm512_store_ps(out, _mm512_mul_ps(vs, _mm512_sub_ps(_mm512_cvtepi32_ps(row_half(bits, cell, r, 0)), vz)));
    _mm512_store_ps(out + 16, _mm512_mul_ps(vs, _mm512_sub_ps(_mm512_cvtepi32_ps(row_half(bits, cell, r, 1)), vz)));
}

/* ---- scale gradient --------------------------------------------------------------------------
 * panel_gscale (panel_impl.h): panels of PANEL_MC rows m, tile pairs (32 rows n), groups; per
 * group P chunk by chunk (the forward's exact chains) and ds = fma(dY[m], P[m], ds) for m
 * ascending, carried across panels in ds itself. */

/* ---- zero-point gradient (format-independent: reads s, never q) ----------------------------
 *     xs(m, j) = 0; xs = xs + x[m, k] for k in group j ascending       (plain additions)
 *     t = 0; t = fma(dY[m, n], xs(m, j), t) for m ascending;  dz = (-s[n, j]) * t
 * As in qgrad_avx2.c: xs(m, j) (independent of n) in a table per row chunk and group chunk; the
 * t chains (lanes over the 16 rows n of a tile) carried across row chunks in dz itself. GZ_NJ = 8
 * groups run side by side: 8 independent chains, one dY load per row for all of them. */
static void gzero_xs_table(const peqa_qw *w, const float *x, int64_t ldx, int64_t mc0, int64_t mc1, int64_t jc0,
                           int64_t jc1, float *tab)
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

/* The t chains of groups jj .. jj + nj - 1 (nj <= GZ_NJ) of one tile over table rows [0, mlen). */
ALWAYS_INLINE void gzero_chains(const int nj, const float *dyp, int64_t lddy, __mmask16 rows, const float *tab,
                                int64_t mlen, __m512 *tc)
{
    __m512 t[GZ_NJ];
#pragma GCC unroll 8
    for (int q = 0; q < nj; q++) t[q] = tc[q];
    for (int64_t mi = 0; mi < mlen; mi++) {
        const __m512 d = _mm512_maskz_loadu_ps(rows, dyp + mi * lddy);
#pragma GCC unroll 8
        for (int q = 0; q < nj; q++) t[q] = _mm512_fmadd_ps(d, _mm512_set1_ps(tab[mi * GZ_JZ + q]), t[q]);
    }
#pragma GCC unroll 8
    for (int q = 0; q < nj; q++) tc[q] = t[q];
}

static void gzero_chains_n(int nj, const float *dyp, int64_t lddy, __mmask16 rows, const float *tab, int64_t mlen,
                           __m512 *tc)
{
    switch (nj) {
    case 1: gzero_chains(1, dyp, lddy, rows, tab, mlen, tc); break;
    case 2: gzero_chains(2, dyp, lddy, rows, tab, mlen, tc); break;
    case 3: gzero_chains(3, dyp, lddy, rows, tab, mlen, tc); break;
    case 4: gzero_chains(4, dyp, lddy, rows, tab, mlen, tc); break;
    case 5: gzero_chains(5, dyp, lddy, rows, tab, mlen, tc); break;
    case 6: gzero_chains(6, dyp, lddy, rows, tab, mlen, tc); break;
    case 7: gzero_chains(7, dyp, lddy, rows, tab, mlen, tc); break;
    default: gzero_chains(8, dyp, lddy, rows, tab, mlen, tc); break;
    }
}

static void peqa_gzero_16__avx512(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x, int64_t ldx,
                                  const float *dy, int64_t lddy, float *dz)
{
    _Alignas(64) float tab[GZ_MZ * GZ_JZ];
    _Alignas(64) float lane[16];
    const int64_t G = w->ng;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t jc0 = 0; jc0 < G; jc0 += GZ_JZ) {
        const int64_t jc1 = min64(jc0 + GZ_JZ, G);
        for (int64_t mc0 = 0; mc0 < m; mc0 += GZ_MZ) {
            const int64_t mc1 = min64(mc0 + GZ_MZ, m);
            const int first = mc0 == 0, last = mc1 == m;
            gzero_xs_table(w, x, ldx, mc0, mc1, jc0, jc1, tab);
            for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
                const int64_t nt = t * PEQA_NR, rows = min64(n1 - nt, PEQA_NR);
                for (int64_t jj = jc0; jj < jc1; jj += GZ_NJ) {
                    const int nj = (int)min64(GZ_NJ, jc1 - jj);
                    __m512 tc[GZ_NJ];
                    for (int q = 0; q < nj; q++) {
                        for (int64_t r = 0; r < 16; r++) lane[r] = !first && r < rows ? dz[(nt + r) * G + jj + q] : 0.0f;
                        tc[q] = _mm512_load_ps(lane);
                    }
                    gzero_chains_n(nj, dy + mc0 * lddy + nt, lddy, lanes(rows), tab + (jj - jc0), mc1 - mc0, tc);
                    for (int q = 0; q < nj; q++) {
                        __m512 v = tc[q];
                        if (last) /* dz = (-s) * t: negation exact, one rounded product */
                            v = _mm512_mul_ps(_mm512_xor_ps(_mm512_loadu_ps(w->s + (size_t)(t * G + jj + q) * PEQA_NR), sign), v);
                        _mm512_store_ps(lane, v);
                        for (int64_t r = 0; r < rows; r++) dz[(nt + r) * G + jj + q] = lane[r];
                    }
                }
            }
        }
    }
}

/* ---- input gradient --------------------------------------------------------------------------
 * Loop nest (qgrad_avx2.c's): panel of GI_MC rows m, column block c (one group j = 32 c / g):
 *   chunk of GI_NC rows n (ascending, only n < N): decode Ŵ[n, 32 c ..] into wh[n][32];
 *     block of 6 rows m: dxb[m, 32 lanes] = fma(dY[m, n], Ŵ[n, 32 lanes], dxb), n ascending
 *   store dxb (columns < k1 only)
 * The chains run over n = 0 .. N-1 in the reference's order, resting in dxb between chunks. */
ALWAYS_INLINE void ginput_tmpl(const int bits, const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                               const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    _Alignas(64) float dxb[GI_MC * 32];
    _Alignas(64) float wh[GI_NC * 32];
    const int64_t G = w->ng, N = w->n;
    for (int64_t ms = m0; ms < m1; ms += GI_MC) {
        const int64_t me = min64(ms + GI_MC, m1);
        for (int64_t c = k0 / PEQA_KB; c * PEQA_KB < k1; c++) {
            const int64_t kb = c * PEQA_KB, vc = min64(PEQA_KB, k1 - kb), j = kb / w->g;
            for (int64_t nc0 = 0; nc0 < N; nc0 += GI_NC) {
                const int64_t nc1 = min64(nc0 + GI_NC, N);
                /* the next chunk's cells are a row of tiles away (no hardware prefetch): into L2 */
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
                    for (int r = 0; r < rows; r++) decode_row(bits, cell, r, st[r], zt[r], wh + (t * PEQA_NR + r - nc0) * 32);
                }
                for (int64_t mb = ms; mb < me; mb += MR) {
                    float *xb = dxb + (mb - ms) * 32;
                    fma_rows32(FMA_PARK, (int)min64(MR, me - mb), dy + mb * lddy + nc0, lddy, wh, nc1 - nc0, nc0 > 0 ? xb : NULL, xb, NULL);
                }
            }
            for (int64_t i = 0; i < me - ms; i++) {
                float *o = dx + (ms + i) * lddx + kb;
                _mm512_mask_storeu_ps(o, lanes(vc), _mm512_load_ps(dxb + i * 32));
                _mm512_mask_storeu_ps(o + 16, lanes(vc - 16), _mm512_load_ps(dxb + i * 32 + 16));
            }
        }
    }
}

/* ---- named entry points, one per bit width --------------------------------------------------- */
#define GRAD_ENTRY(B)                                                                                       \
    static void peqa_gscale_q##B##_32__avx512(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1,           \
                                              const float *x, int64_t ldx, const float *dy, int64_t lddy,     \
                                              float *ds)                                                      \
    {                                                                                                        \
        panel_gscale(B, w, m, n0, n1, x, ldx, dy, lddy, ds);                                                  \
    }                                                                                                        \
    static void peqa_ginput_q##B##_6x32__avx512(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0,        \
                                                int64_t k1, const float *dy, int64_t lddy, float *dx,         \
                                                int64_t lddx)                                                 \
    {                                                                                                        \
        ginput_tmpl(B, w, m0, m1, k0, k1, dy, lddy, dx, lddx);                                               \
    }
GRAD_ENTRY(2)
GRAD_ENTRY(3)
GRAD_ENTRY(4)
GRAD_ENTRY(8)
#undef GRAD_ENTRY

void peqa_init_qgrad__avx512(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX-512 F/BW/VL/DQ + FMA is all these kernels need; the caller checked it */
    static const peqa_gscale_fn gs[PEQA_NBITS] = {peqa_gscale_q2_32__avx512, peqa_gscale_q3_32__avx512,
                                                  peqa_gscale_q4_32__avx512, peqa_gscale_q8_32__avx512};
    static const peqa_ginput_fn gi[PEQA_NBITS] = {peqa_ginput_q2_6x32__avx512, peqa_ginput_q3_6x32__avx512,
                                                  peqa_ginput_q4_6x32__avx512, peqa_ginput_q8_6x32__avx512};
    static const char *const gs_name[PEQA_NBITS] = {"peqa_gscale_q2_32__avx512", "peqa_gscale_q3_32__avx512",
                                                    "peqa_gscale_q4_32__avx512", "peqa_gscale_q8_32__avx512"};
    static const char *const gi_name[PEQA_NBITS] = {"peqa_ginput_q2_6x32__avx512", "peqa_ginput_q3_6x32__avx512",
                                                    "peqa_ginput_q4_6x32__avx512", "peqa_ginput_q8_6x32__avx512"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->gscale[b] = gs[b], k->gscale_name[b] = gs_name[b];
        k->ginput[b] = gi[b], k->ginput_name[b] = gi_name[b];
        k->gzero[b] = peqa_gzero_16__avx512, k->gzero_name[b] = "peqa_gzero_16__avx512";
    }
}
