/* The tile-pair P panel and the two loop nests built on it, the fp32-activation forward GEMM and
 * the scale gradient (SPEC §4, §6), written once for every x86 level. Plain C: the including
 * header (avx2_panel.h, avx512_panel.h) first defines the ISA's pieces,
 *     PANEL_MR, PANEL_KC      register block height, columns decoded per chunk
 *     panel_decode(bits, c0, c1, z0, z1, out)
 *                             out[kk][32] = (float)q − z of column kk of cell c0 (lanes 0..15)
 *                             and of cell c1 (lanes 16..31; zeros when c1 is NULL), z0 / z1 the
 *                             16 zero points of each tile
 *     fma_rows32(mode, mr, a, lda, b, kc, cin, cout, e)
 *                             the FMA engine and its FMA_PARK / FMA_SCALE / FMA_DOT epilogues
 * and then includes this file.
 *
 * Both products are built on the same partial sums
 *     P[m, n, j] = Σ_{k in group j, ascending} x[m, k] · ((float)q[n, k] − z[n, j])
 * computed as the reference's chain p = fma(x, (float)q − z, p) from p = 0; they differ only in
 * what consumes P: the forward y = fma(s[n, j], P, y) over j ascending, the scale gradient
 * ds = fma(dY[m, n], P, ds) over m ascending. Lanes are the 32 rows n of a tile pair, so every
 * lane is one output's own chain and no reduction crosses lanes: tiles, chunks, ranges and
 * thread counts change no bit. Staging (float)q − z or P in memory changes no bit either (each
 * is one rounded value however it is stored). */
#ifndef PEQA_X86_PANEL_IMPL_H
#define PEQA_X86_PANEL_IMPL_H
#include <string.h>

/* Rows of X (or dY) per panel: the panel's P (and dY) blocks are PANEL_MC x 32 floats, 18 KB. */
#define PANEL_MC 144
_Static_assert(PANEL_MC % PANEL_MR == 0, "a panel is whole register blocks");

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- P of one group for a tile pair ----------------------------------------------------------
 * Tiles t and t + 1 (pair = 0: t alone, lanes 16..31 compute zeros that are never stored), group
 * j, rows [ms, me) of X:
 *   for each chunk of <= PANEL_KC columns of the group:
 *     decode both tiles' cells into wf[kk][32] (PANEL_KC x 32 floats, L1)
 *     for each block of PANEL_MR rows: the chains over the chunk, parked in pbuf[(m - ms)][32]
 *       between chunks; after the group's last chunk the mode's epilogue with
 *         FMA_SCALE  e = the pair's s[., j] (32 floats), out = yb, row m at out + 32 (m - ms)
 *         FMA_DOT    e = dY of the pair, row m at e + 32 (m - ms), out = ds (32 floats) */
PANEL_INLINE void pair_group(const int mode, const int bits, const peqa_qw *w, int64_t t, int pair, int64_t j,
                             int64_t ms, int64_t me, const float *x, int64_t ldx, float *wf, float *pbuf,
                             const float *e, float *out)
{
    const int64_t G = w->ng, kj0 = j * w->g, kj1 = min64(kj0 + w->g, w->k);
    const int64_t nchunk = (kj1 - kj0 + PANEL_KC - 1) / PANEL_KC;
    const float *za = w->z + (size_t)(t * G + j) * PEQA_NR, *zb = za + G * PEQA_NR;
    for (int64_t ci = 0; ci < nchunk; ci++) {
        const int64_t kc0 = kj0 + ci * PANEL_KC, kc1 = min64(kc0 + PANEL_KC, kj1);
        for (int64_t c = kc0 / PEQA_KB; c * PEQA_KB < kc1; c++)
            panel_decode(bits, peqa_cell(w, t, c), pair ? peqa_cell(w, t + 1, c) : NULL, za, zb,
                         wf + (c * PEQA_KB - kc0) * 32);
        const int last = ci + 1 == nchunk;
        for (int64_t mb = ms; mb < me; mb += PANEL_MR) {
            const int mr = (int)min64(PANEL_MR, me - mb);
            float *pb = pbuf + (mb - ms) * 32;
            const float *a = x + mb * ldx + kc0, *cin = ci ? pb : NULL;
            if (!last)
                fma_rows32(FMA_PARK, mr, a, ldx, wf, kc1 - kc0, cin, pb, NULL);
            else if (mode == FMA_SCALE)
                fma_rows32(FMA_SCALE, mr, a, ldx, wf, kc1 - kc0, cin, out + (mb - ms) * 32, e);
            else
                fma_rows32(FMA_DOT, mr, a, ldx, wf, kc1 - kc0, cin, out, e + (mb - ms) * 32);
        }
    }
}

/* ---- fwd_gemm ----------------------------------------------------------------------------------
 * Y[m, n] for m in [m0, m1), n in [n0, n1):
 *     for each panel of PANEL_MC rows of X:
 *       for each tile pair t, t + 1 (the last tile of an odd range alone):
 *         yb[m][32] = 0;  for each group j ascending: yb = fma(s[., j], P, yb)  (pair_group)
 *         write yb (rows < N only)
 * yb starts at +0 like the reference's y, so the first group's fma(s, p, 0) is the same
 * operation. Stack: wf 16 KB + pbuf 18 KB + yb 18 KB. */
PANEL_INLINE void panel_gemm(const int bits, const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                             const float *x, int64_t ldx, float *y, int64_t ldy)
{
    _Alignas(64) float wf[PANEL_KC * 32];
    _Alignas(64) float pbuf[PANEL_MC * 32];
    _Alignas(64) float yb[PANEL_MC * 32];
    _Alignas(64) float s32[32];
    const int64_t G = w->ng, tend = (n1 + PEQA_NR - 1) / PEQA_NR;
    for (int64_t ms = m0; ms < m1; ms += PANEL_MC) {
        const int64_t me = min64(ms + PANEL_MC, m1);
        for (int64_t t = n0 / PEQA_NR; t < tend; t += 2) {
            const int pair = t + 1 < tend;
            const int64_t nt = t * PEQA_NR;
            memset(yb, 0, (size_t)(me - ms) * 32 * sizeof(float));
            for (int64_t j = 0; j < G; j++) {
                const float *st = w->s + (size_t)(t * G + j) * PEQA_NR;
                memcpy(s32, st, 16 * sizeof(float));
                if (pair)
                    memcpy(s32 + 16, st + G * PEQA_NR, 16 * sizeof(float));
                else
                    memset(s32 + 16, 0, 16 * sizeof(float));
                pair_group(FMA_SCALE, bits, w, t, pair, j, ms, me, x, ldx, wf, pbuf, s32, yb);
            }
            for (int64_t i = 0; i < me - ms; i++)
                memcpy(y + (ms + i) * ldy + nt, yb + 32 * i, (size_t)min64(n1 - nt, 32) * sizeof(float));
        }
    }
}

/* ---- gscale ------------------------------------------------------------------------------------
 * dS[n, j] for n in [n0, n1), all j, summed over all m rows:
 *     for each panel of PANEL_MC rows m (ascending):
 *       for each tile pair t, t + 1:
 *         copy dY[panel, 32 rows] to dyt[m][32] (zeros past N)
 *         for each group j:  ds (32 lanes) = 0 for the first panel, else the partial ds of the
 *           previous panel (carried in ds[n * G + j] itself); ds = fma(dY[m], P[m], ds) for m
 *           ascending (pair_group); store ds (valid rows only)
 * dyt exists because dY[m, tile] would otherwise be read once per group from rows that are
 * often a multiple of 4 KB apart (all in one cache set). Stack: dyt 18 KB + wf 16 KB + pbuf 18 KB. */
PANEL_INLINE void panel_gscale(const int bits, const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                               int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    _Alignas(64) float dyt[PANEL_MC * 32];
    _Alignas(64) float wf[PANEL_KC * 32];
    _Alignas(64) float pbuf[PANEL_MC * 32];
    _Alignas(64) float dsl[32];
    const int64_t G = w->ng, tend = (n1 + PEQA_NR - 1) / PEQA_NR;
    for (int64_t ms = 0; ms < m; ms += PANEL_MC) {
        const int64_t me = min64(ms + PANEL_MC, m);
        for (int64_t t = n0 / PEQA_NR; t < tend; t += 2) {
            const int pair = t + 1 < tend;
            const int64_t nt = t * PEQA_NR, rows = min64(n1 - nt, 2 * PEQA_NR);
            for (int64_t i = 0; i < me - ms; i++) {
                memcpy(dyt + 32 * i, dy + (ms + i) * lddy + nt, (size_t)rows * sizeof(float));
                memset(dyt + 32 * i + rows, 0, (size_t)(32 - rows) * sizeof(float));
            }
            for (int64_t j = 0; j < G; j++) {
                for (int64_t r = 0; r < 32; r++) dsl[r] = ms > 0 && r < rows ? ds[(nt + r) * G + j] : 0.0f;
                pair_group(FMA_DOT, bits, w, t, pair, j, ms, me, x, ldx, wf, pbuf, dyt, dsl);
                for (int64_t r = 0; r < rows; r++) ds[(nt + r) * G + j] = dsl[r];
            }
        }
    }
}

#endif
