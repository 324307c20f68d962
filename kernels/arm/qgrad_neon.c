/* qgrad kernels, AArch64 NEON: scale, zero-point and input gradients of the PEQA layer.
 * Contracts and operation sequences: kernels/ref/qgrad_ref.c. Lane layouts and the cell
 * decoding: kernels/arm/neon_common.h. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include "neon_common.h"

/* Stores lane r < nv of a tile's 4 registers to dst[r * stride] (ds and dz are [n][G]: the 16
 * rows of a tile are G floats apart). */
static void store_tile_strided(const float32x4_t v[4], int nv, float *dst, int64_t stride)
{
    float tmp[PEQA_NR];
    neon_acc_park(v, 4, tmp);
    for (int r = 0; r < nv; r++) dst[r * stride] = tmp[r];
}

/* ---- scale gradient: dS[n, j] = Σ_m dY[m, n] · P[m, n, j] ----------------------------------
 * Lanes = 16 rows n of a tile. For tile t and group j: ds = 0; for chunks of up to NEON_MC rows
 * m (ascending): P[m] is recomputed exactly as the forward computes it (same panel D = (float)q
 * - z, same neon_mk_4x16 sequence over the group's columns, parked between column chunks), then
 * ds = fma(dY[m, n], P[m, n, j], ds) for m ascending. When the group fits one column chunk (g <=
 * NEON_KC, the usual case) its panel is built once and serves every row chunk. */
PEQA_NEON_INLINE void gscale_rows(float32x4_t ds[4], const float32x4_t *p, int rows, const float *dy,
                                  int64_t lddy, int nv)
{
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++) { /* m ascending */
        float32x4_t d[4];
        neon_load_tile(dy + i * lddy, nv, d);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) ds[q] = vfmaq_f32(ds[q], d[q], p[4 * i + q]);
    }
}

PEQA_NEON_INLINE void gscale(const peqa_qw *w, int bits, int64_t m, int64_t n0, int64_t n1, const float *x,
                             int64_t ldx, const float *dy, int64_t lddy, float *dsout)
{
    _Alignas(16) float D[NEON_KC * PEQA_NR];
    _Alignas(16) float P[NEON_MC * PEQA_NR];
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
        const float *dyt = dy + t * PEQA_NR;
        for (int64_t j = 0; j < w->ng; j++) {
            int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
            const float *zt = w->z + (t * w->ng + j) * PEQA_NR;
            float32x4_t z[4], ds[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) z[q] = vld1q_f32(zt + 4 * q);
            neon_acc_init(ds, 4, NULL);
            int one_chunk = gk1 - gk0 <= NEON_KC;
            for (int64_t mc0 = 0; mc0 < m; mc0 += NEON_MC) {
                int mc = (int)neon_min(NEON_MC, m - mc0);
                for (int64_t kc0 = gk0; kc0 < gk1; kc0 += NEON_KC) {
                    int64_t kc1 = neon_min(kc0 + NEON_KC, gk1);
                    int first = kc0 == gk0, last = kc1 == gk1;
                    if (!(one_chunk && mc0 > 0)) neon_panel(w, bits, t, kc0, kc1, z, D);
                    int i = 0;
                    for (; i + 4 <= mc; i += 4) {
                        float32x4_t p[16];
                        neon_acc_init(p, 16, first ? NULL : P + i * PEQA_NR);
                        neon_mk_4x16(D, PEQA_NR, kc1 - kc0, x + (mc0 + i) * ldx + kc0, ldx, p);
                        if (last)
                            gscale_rows(ds, p, 4, dyt + (mc0 + i) * lddy, lddy, nv);
                        else
                            neon_acc_park(p, 16, P + i * PEQA_NR);
                    }
                    for (; i < mc; i++) {
                        float32x4_t p[4];
                        neon_acc_init(p, 4, first ? NULL : P + i * PEQA_NR);
                        neon_mk_1x16(D, PEQA_NR, kc1 - kc0, x + (mc0 + i) * ldx + kc0, p);
                        if (last)
                            gscale_rows(ds, p, 1, dyt + (mc0 + i) * lddy, lddy, nv);
                        else
                            neon_acc_park(p, 4, P + i * PEQA_NR);
                    }
                }
            }
            store_tile_strided(ds, nv, dsout + t * PEQA_NR * w->ng + j, w->ng);
        }
    }
}

/* ---- zero-point gradient: dZ[n, j] = -s[n, j] · Σ_m dY[m, n] · XS[m, j] ----------------------
 * XS[m, j] = x[m, k0] + x[m, k0 + 1] + ... (plain additions in k order) does not depend on n: it
 * is computed once per row chunk with rows m in lanes (4 rows at a time: a 4 x 4 transpose of x
 * turns 4 columns into 4 vectors, added in column order). Then per tile, lanes = rows n:
 * t = fma(dY[m, n], XS[m, j], t) for m ascending; dz = (-s) * t. Between row chunks t is parked in
 * dz itself (the task owns those entries). */
enum { GZ_MC = 256 };

static void group_sums(const float *x, int64_t ldx, int mc, int64_t k0, int64_t k1, float *xs)
{
    int i = 0;
    for (; i + 4 <= mc; i += 4) {
        const float *r0 = x + i * ldx, *r1 = r0 + ldx, *r2 = r1 + ldx, *r3 = r2 + ldx;
        float32x4_t acc = vdupq_n_f32(0.0f);
        int64_t k = k0;
        for (; k + 4 <= k1; k += 4) {
            float32x4_t a0 = vld1q_f32(r0 + k), a1 = vld1q_f32(r1 + k), a2 = vld1q_f32(r2 + k),
                        a3 = vld1q_f32(r3 + k);
            float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(a0, a1)),
                        t1 = vreinterpretq_f64_f32(vtrn2q_f32(a0, a1));
            float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(a2, a3)),
                        t3 = vreinterpretq_f64_f32(vtrn2q_f32(a2, a3));
            acc = vaddq_f32(acc, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2))); /* column k     of rows 0..3 */
            acc = vaddq_f32(acc, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3))); /* column k + 1 */
            acc = vaddq_f32(acc, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2))); /* column k + 2 */
            acc = vaddq_f32(acc, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3))); /* column k + 3 */
        }
        for (; k < k1; k++) {
            float col[4] = {r0[k], r1[k], r2[k], r3[k]};
            acc = vaddq_f32(acc, vld1q_f32(col));
        }
        vst1q_f32(xs + i, acc);
    }
    for (; i < mc; i++) {
        float s = 0.0f;
        for (int64_t k = k0; k < k1; k++) s = s + x[i * ldx + k];
        xs[i] = s;
    }
}

PEQA_NEON_INLINE void gzero(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x, int64_t ldx,
                            const float *dy, int64_t lddy, float *dz)
{
    _Alignas(16) float xs[GZ_MC];
    for (int64_t j = 0; j < w->ng; j++) {
        int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
        for (int64_t mc0 = 0; mc0 < m; mc0 += GZ_MC) {
            int mc = (int)neon_min(GZ_MC, m - mc0);
            int first = mc0 == 0, last = mc0 + mc == m;
            group_sums(x + mc0 * ldx, ldx, mc, gk0, gk1, xs);
            for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
                int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
                float *dzt = dz + t * PEQA_NR * w->ng + j;
                float32x4_t tv[4];
                if (first) {
                    neon_acc_init(tv, 4, NULL);
                } else {
                    float tmp[PEQA_NR] = {0};
                    for (int r = 0; r < nv; r++) tmp[r] = dzt[r * w->ng];
                    neon_acc_init(tv, 4, tmp);
                }
                for (int i = 0; i < mc; i++) { /* m ascending */
                    float32x4_t d[4], xv = vdupq_n_f32(xs[i]);
                    neon_load_tile(dy + (mc0 + i) * lddy + t * PEQA_NR, nv, d);
#pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) tv[q] = vfmaq_f32(tv[q], d[q], xv);
                }
                if (last) {
                    const float *st = w->s + (t * w->ng + j) * PEQA_NR;
#pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) tv[q] = vmulq_f32(vnegq_f32(vld1q_f32(st + 4 * q)), tv[q]);
                }
                store_tile_strided(tv, nv, dzt, w->ng);
            }
        }
    }
}

/* ---- input gradient: dX[m, k] = Σ_n dY[m, n] · Ŵ[n, k], n = 0 .. N-1 ascending ------------------
 * Lanes = columns k (outputs), the reduction over n is sequential. Per 32-column block c (one
 * group j) and chunk of up to NEON_MC rows m: for chunks of NEON_NC weight rows n (ascending),
 * WH = s * ((float)q - z) for those rows x 32 columns (exactly the reference's wh, row-major),
 * then 4 x 16 microkernels (m x k) run dx = fma(dY[m, n], WH[n, k], dx) over the chunk's rows;
 * dx is parked in a 32-wide buffer between row chunks and copied out (columns < K) at the end. */
PEQA_NEON_INLINE void ginput(const peqa_qw *w, int bits, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                             const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    _Alignas(16) uint8_t R[PEQA_NR][PEQA_KB];
    _Alignas(16) float WH[NEON_NC * PEQA_KB];
    _Alignas(16) float acc[NEON_MC * PEQA_KB];
    for (int64_t c = k0 / PEQA_KB; c * PEQA_KB < k1; c++) {
        int64_t nk = neon_min(PEQA_KB, w->k - c * PEQA_KB), j = c * PEQA_KB / w->g; /* one group per block */
        int halves = nk > 16 ? 2 : 1; /* 16-column halves that hold a column < K */
        for (int64_t mc0 = m0; mc0 < m1; mc0 += NEON_MC) {
            int mc = (int)neon_min(NEON_MC, m1 - mc0);
            for (int64_t nc0 = 0; nc0 < w->n; nc0 += NEON_NC) {
                int64_t nn = neon_min(NEON_NC, w->n - nc0);
                int first = nc0 == 0;
                for (int64_t r0 = 0; r0 < nn; r0 += PEQA_NR) { /* WH rows nc0 .. nc0 + nn - 1 */
                    int64_t t = (nc0 + r0) / PEQA_NR;
                    const float *st = w->s + (t * w->ng + j) * PEQA_NR,
                                *zt = w->z + (t * w->ng + j) * PEQA_NR;
                    neon_cell_rows(peqa_cell(w, t, c), bits, R);
                    for (int r = 0; r < PEQA_NR && r0 + r < nn; r++)
                        neon_deq_row32(R[r], st[r], zt[r], WH + (r0 + r) * PEQA_KB);
                }
                const float *dyc = dy + nc0;
                int i = 0;
                for (; i + 4 <= mc; i += 4)
                    for (int h = 0; h < halves; h++) {
                        float32x4_t a[16];
                        float *ap = acc + i * PEQA_KB + 16 * h;
                        for (int r = 0; r < 4; r++)
                            neon_acc_init(a + 4 * r, 4, first ? NULL : ap + r * PEQA_KB);
                        neon_mk_4x16(WH + 16 * h, PEQA_KB, nn, dyc + (mc0 + i) * lddy, lddy, a);
                        for (int r = 0; r < 4; r++) neon_acc_park(a + 4 * r, 4, ap + r * PEQA_KB);
                    }
                for (; i < mc; i++)
                    for (int h = 0; h < halves; h++) {
                        float32x4_t a[4];
                        float *ap = acc + i * PEQA_KB + 16 * h;
                        neon_acc_init(a, 4, first ? NULL : ap);
                        neon_mk_1x16(WH + 16 * h, PEQA_KB, nn, dyc + (mc0 + i) * lddy, a);
                        neon_acc_park(a, 4, ap);
                    }
            }
            for (int i = 0; i < mc; i++)
                memcpy(dx + (mc0 + i) * lddx + c * PEQA_KB, acc + i * PEQA_KB, sizeof(float) * (size_t)nk);
        }
    }
}

/* ---- the slots, one function per bit width ---- */

static void peqa_gscale_q2_4x16__neon(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                      int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    gscale(w, 2, m, n0, n1, x, ldx, dy, lddy, ds);
}
static void peqa_gscale_q3_4x16__neon(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                      int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    gscale(w, 3, m, n0, n1, x, ldx, dy, lddy, ds);
}
static void peqa_gscale_q4_4x16__neon(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                      int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    gscale(w, 4, m, n0, n1, x, ldx, dy, lddy, ds);
}
static void peqa_gscale_q8_4x16__neon(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                      int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    gscale(w, 8, m, n0, n1, x, ldx, dy, lddy, ds);
}

/* gzero never reads the codes: one function serves every bit width. */
static void peqa_gzero_16__neon(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                                int64_t ldx, const float *dy, int64_t lddy, float *dz)
{
    gzero(w, m, n0, n1, x, ldx, dy, lddy, dz);
}

static void peqa_ginput_q2_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                                      const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    ginput(w, 2, m0, m1, k0, k1, dy, lddy, dx, lddx);
}
static void peqa_ginput_q3_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                                      const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    ginput(w, 3, m0, m1, k0, k1, dy, lddy, dx, lddx);
}
static void peqa_ginput_q4_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                                      const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    ginput(w, 4, m0, m1, k0, k1, dy, lddy, dx, lddx);
}
static void peqa_ginput_q8_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                                      const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    ginput(w, 8, m0, m1, k0, k1, dy, lddy, dx, lddx);
}

void peqa_init_qgrad__neon(peqa_kernels *k, unsigned features)
{
    (void)features; /* baseline AArch64: nothing to choose */
    /* index order of every per-width slot: 2, 3, 4, 8 bits (peqa_bits_index) */
    static const peqa_gscale_fn gs[PEQA_NBITS] = {peqa_gscale_q2_4x16__neon, peqa_gscale_q3_4x16__neon,
                                                  peqa_gscale_q4_4x16__neon, peqa_gscale_q8_4x16__neon};
    static const peqa_ginput_fn gi[PEQA_NBITS] = {peqa_ginput_q2_4x16__neon, peqa_ginput_q3_4x16__neon,
                                                  peqa_ginput_q4_4x16__neon, peqa_ginput_q8_4x16__neon};
    static const char *const gs_n[PEQA_NBITS] = {"peqa_gscale_q2_4x16__neon", "peqa_gscale_q3_4x16__neon",
                                                 "peqa_gscale_q4_4x16__neon", "peqa_gscale_q8_4x16__neon"};
    static const char *const gi_n[PEQA_NBITS] = {"peqa_ginput_q2_4x16__neon", "peqa_ginput_q3_4x16__neon",
                                                 "peqa_ginput_q4_4x16__neon", "peqa_ginput_q8_4x16__neon"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->gscale[b] = gs[b], k->gscale_name[b] = gs_n[b];
        k->gzero[b] = peqa_gzero_16__neon, k->gzero_name[b] = "peqa_gzero_16__neon";
        k->ginput[b] = gi[b], k->ginput_name[b] = gi_n[b];
    }
}
