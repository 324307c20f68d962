/* qgemm kernels, AArch64 NEON: unpack, dequant, and the fp32-activation forward (GEMV, GEMM).
 * Contracts and operation sequences: kernels/ref/unpack_ref.c and kernels/ref/qgemm_ref.c.
 * Lane layouts and the cell decoding: kernels/arm/neon_common.h. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include "neon_common.h"

/* ---- unpack and dequant: lanes = columns, one cell at a time -------------------------------
 * Each cell is transposed into 16 rows of 32 bytes (neon_cell_rows); rows past n1 and columns
 * past K are simply not copied out. Neither is a hot path (export, dequantize), so the one
 * row buffer also serves every edge. */

PEQA_NEON_INLINE void unpack(const peqa_qw *w, int bits, int64_t n0, int64_t n1, uint8_t *codes, int64_t ldc)
{
    _Alignas(16) uint8_t R[PEQA_NR][PEQA_KB];
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int nr = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            int64_t nk = neon_min(PEQA_KB, w->k - c * PEQA_KB);
            neon_cell_rows(peqa_cell(w, t, c), bits, R);
            for (int r = 0; r < nr; r++)
                memcpy(codes + (t * PEQA_NR + r - n0) * ldc + c * PEQA_KB, R[r], (size_t)nk);
        }
    }
}

/* out[n, k] = s[n, j] * ((float)q[n, k] - z[n, j]): a subtraction, then a product (two roundings). */
PEQA_NEON_INLINE void dequant(const peqa_qw *w, int bits, int64_t n0, int64_t n1, float *out, int64_t ldo)
{
    _Alignas(16) uint8_t R[PEQA_NR][PEQA_KB];
    _Alignas(16) float row[PEQA_KB];
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int nr = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t c = 0; c < w->kblk; c++) {
            int64_t nk = neon_min(PEQA_KB, w->k - c * PEQA_KB),
                    j = c * PEQA_KB / w->g; /* one group per cell */
            const float *st = w->s + (t * w->ng + j) * PEQA_NR, *zt = w->z + (t * w->ng + j) * PEQA_NR;
            neon_cell_rows(peqa_cell(w, t, c), bits, R);
            for (int r = 0; r < nr; r++) {
                float *dst = out + (t * PEQA_NR + r - n0) * ldo + c * PEQA_KB;
                neon_deq_row32(R[r], st[r], zt[r], nk == PEQA_KB ? dst : row);
                if (nk < PEQA_KB) memcpy(dst, row, sizeof(float) * (size_t)nk);
            }
        }
    }
}

/* ---- forward, one activation row at a time (the M = 1 slot), 1 x 16 ------------------------
 * Lanes = the 16 rows of a tile (4 registers). The cell is decoded on the fly, column by column:
 * for column k of group j, d = (float)q - z (one rounding) and p = fma(x[k], d, p), k ascending;
 * at the end of the group y = fma(s, p, y). No panel: each weight is used once per row. */
PEQA_NEON_INLINE void fwd_col(float32x4_t p[4], const uint32x4_t c4[4], uint8x16_t idx,
                              const float32x4_t z[4], float32x4_t xb)
{
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) p[q] = vfmaq_f32(p[q], vsubq_f32(neon_col_f32(c4[q], idx), z[q]), xb);
}

PEQA_NEON_INLINE void fwd_gemv(const peqa_qw *w, int bits, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                               const float *x, int64_t ldx, float *y, int64_t ldy)
{
    uint8x16_t idx[4];
    neon_col_idx_load(idx);
    for (int64_t m = m0; m < m1; m++) {
        const float *xr = x + m * ldx;
        for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
            int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
            float32x4_t acc[4];
            neon_acc_init(acc, 4, NULL);
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
                const float *zt = w->z + (t * w->ng + j) * PEQA_NR, *st = w->s + (t * w->ng + j) * PEQA_NR;
                float32x4_t z[4], p[4];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) z[q] = vld1q_f32(zt + 4 * q);
                neon_acc_init(p, 4, NULL);
                for (int64_t c = gk0 / PEQA_KB; c * PEQA_KB < gk1; c++) {
                    const uint32_t *cell = peqa_cell(w, t, c);
                    const float *xc = xr + c * PEQA_KB;
                    int nk = (int)neon_min(PEQA_KB, w->k - c * PEQA_KB);
                    for (int j4 = 0; 4 * j4 < nk; j4++) { /* columns 4 j4 .. 4 j4 + 3 */
                        uint32x4_t c4[4];
#pragma GCC unroll 4
                        for (int q = 0; q < 4; q++) c4[q] = neon_codes4(cell, bits, j4, q);
                        if (4 * j4 + 4 <= nk) {
                            float32x4_t xv = vld1q_f32(xc + 4 * j4);
                            fwd_col(p, c4, idx[0], z, vdupq_laneq_f32(xv, 0));
                            fwd_col(p, c4, idx[1], z, vdupq_laneq_f32(xv, 1));
                            fwd_col(p, c4, idx[2], z, vdupq_laneq_f32(xv, 2));
                            fwd_col(p, c4, idx[3], z, vdupq_laneq_f32(xv, 3));
                        } else { /* last columns of K: x is read only up to column K - 1 */
                            for (int i = 0; 4 * j4 + i < nk; i++)
                                fwd_col(p, c4, idx[i], z, vld1q_dup_f32(xc + 4 * j4 + i));
                        }
                    }
                }
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) acc[q] = vfmaq_f32(acc[q], vld1q_f32(st + 4 * q), p[q]);
            }
            float out[PEQA_NR];
            neon_acc_park(acc, 4, out);
            memcpy(y + m * ldy + t * PEQA_NR, out, sizeof(float) * (size_t)nv);
        }
    }
}

/* ---- forward, GEMM: 4 x 16 microkernel over dequantized panels -----------------------------
 * Per tile and chunk of up to NEON_MC activation rows:
 *   acc[m][16] = 0
 *   for each group j:
 *     for each chunk of <= NEON_KC columns of j:
 *       D = (float)q - z for the chunk (16 rows in lanes), built once, used by every row m;
 *       for every 4 rows m (then single rows): p (4 x 16 in 16 registers) continues from the
 *       previous chunk (parked in P) and runs the chunk's columns in order (neon_mk_4x16);
 *       after the group's last chunk: acc[m] = fma(s, p, acc[m]).
 * So every Y[m, n] sees exactly the reference's fmaf sequence. */
PEQA_NEON_INLINE void fwd_group_end(float32x4_t *p, int rows, const float32x4_t s[4], float *acc)
{
#pragma GCC unroll 4
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            float *ap = acc + i * PEQA_NR + 4 * q;
            vst1q_f32(ap, vfmaq_f32(vld1q_f32(ap), s[q], p[4 * i + q]));
        }
}

PEQA_NEON_INLINE void fwd_gemm(const peqa_qw *w, int bits, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                               const float *x, int64_t ldx, float *y, int64_t ldy)
{
    _Alignas(16) float D[NEON_KC * PEQA_NR];
    _Alignas(16) float acc[NEON_MC * PEQA_NR], P[NEON_MC * PEQA_NR];
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t mc0 = m0; mc0 < m1; mc0 += NEON_MC) {
            int mc = (int)neon_min(NEON_MC, m1 - mc0);
            memset(acc, 0, sizeof(float) * PEQA_NR * (size_t)mc);
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
                const float *zt = w->z + (t * w->ng + j) * PEQA_NR, *st = w->s + (t * w->ng + j) * PEQA_NR;
                float32x4_t z[4], s[4];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) z[q] = vld1q_f32(zt + 4 * q), s[q] = vld1q_f32(st + 4 * q);
                for (int64_t kc0 = gk0; kc0 < gk1; kc0 += NEON_KC) {
                    int64_t kc1 = neon_min(kc0 + NEON_KC, gk1);
                    int first = kc0 == gk0, last = kc1 == gk1;
                    neon_panel(w, bits, t, kc0, kc1, z, D);
                    int m = 0;
                    for (; m + 4 <= mc; m += 4) {
                        float32x4_t p[16];
                        neon_acc_init(p, 16, first ? NULL : P + m * PEQA_NR);
                        neon_mk_4x16(D, PEQA_NR, kc1 - kc0, x + (mc0 + m) * ldx + kc0, ldx, p);
                        if (last)
                            fwd_group_end(p, 4, s, acc + m * PEQA_NR);
                        else
                            neon_acc_park(p, 16, P + m * PEQA_NR);
                    }
                    for (; m < mc; m++) {
                        float32x4_t p[4];
                        neon_acc_init(p, 4, first ? NULL : P + m * PEQA_NR);
                        neon_mk_1x16(D, PEQA_NR, kc1 - kc0, x + (mc0 + m) * ldx + kc0, p);
                        if (last)
                            fwd_group_end(p, 1, s, acc + m * PEQA_NR);
                        else
                            neon_acc_park(p, 4, P + m * PEQA_NR);
                    }
                }
            }
            for (int m = 0; m < mc; m++)
                memcpy(y + (mc0 + m) * ldy + t * PEQA_NR, acc + m * PEQA_NR, sizeof(float) * (size_t)nv);
        }
    }
}

/* ---- the slots, one function per bit width ---- */

static void peqa_unpack_q2__neon(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *c, int64_t ldc)
{
    unpack(w, 2, n0, n1, c, ldc);
}
static void peqa_unpack_q3__neon(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *c, int64_t ldc)
{
    unpack(w, 3, n0, n1, c, ldc);
}
static void peqa_unpack_q4__neon(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *c, int64_t ldc)
{
    unpack(w, 4, n0, n1, c, ldc);
}
static void peqa_unpack_q8__neon(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *c, int64_t ldc)
{
    unpack(w, 8, n0, n1, c, ldc);
}

static void peqa_dequant_q2__neon(const peqa_qw *w, int64_t n0, int64_t n1, float *o, int64_t ldo)
{
    dequant(w, 2, n0, n1, o, ldo);
}
static void peqa_dequant_q3__neon(const peqa_qw *w, int64_t n0, int64_t n1, float *o, int64_t ldo)
{
    dequant(w, 3, n0, n1, o, ldo);
}
static void peqa_dequant_q4__neon(const peqa_qw *w, int64_t n0, int64_t n1, float *o, int64_t ldo)
{
    dequant(w, 4, n0, n1, o, ldo);
}
static void peqa_dequant_q8__neon(const peqa_qw *w, int64_t n0, int64_t n1, float *o, int64_t ldo)
{
    dequant(w, 8, n0, n1, o, ldo);
}

static void peqa_fwd_gemv_q2_1x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemv(w, 2, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemv_q3_1x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemv(w, 3, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemv_q4_1x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemv(w, 4, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemv_q8_1x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemv(w, 8, m0, m1, n0, n1, x, ldx, y, ldy);
}

static void peqa_fwd_gemm_q2_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemm(w, 2, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemm_q3_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemm(w, 3, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemm_q4_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemm(w, 4, m0, m1, n0, n1, x, ldx, y, ldy);
}
static void peqa_fwd_gemm_q8_4x16__neon(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                                        const float *x, int64_t ldx, float *y, int64_t ldy)
{
    fwd_gemm(w, 8, m0, m1, n0, n1, x, ldx, y, ldy);
}

void peqa_init_qgemm__neon(peqa_kernels *k, unsigned features)
{
    (void)features; /* baseline AArch64: nothing to choose */
    /* index order of every per-width slot: 2, 3, 4, 8 bits (peqa_bits_index) */
    static const peqa_unpack_fn unp[PEQA_NBITS] = {peqa_unpack_q2__neon, peqa_unpack_q3__neon,
                                                   peqa_unpack_q4__neon, peqa_unpack_q8__neon};
    static const peqa_dequant_fn deq[PEQA_NBITS] = {peqa_dequant_q2__neon, peqa_dequant_q3__neon,
                                                    peqa_dequant_q4__neon, peqa_dequant_q8__neon};
    static const peqa_fwd_fn gemv[PEQA_NBITS] = {peqa_fwd_gemv_q2_1x16__neon, peqa_fwd_gemv_q3_1x16__neon,
                                                 peqa_fwd_gemv_q4_1x16__neon, peqa_fwd_gemv_q8_1x16__neon};
    static const peqa_fwd_fn gemm[PEQA_NBITS] = {peqa_fwd_gemm_q2_4x16__neon, peqa_fwd_gemm_q3_4x16__neon,
                                                 peqa_fwd_gemm_q4_4x16__neon, peqa_fwd_gemm_q8_4x16__neon};
    static const char *const unp_n[PEQA_NBITS] = {"peqa_unpack_q2__neon", "peqa_unpack_q3__neon",
                                                  "peqa_unpack_q4__neon", "peqa_unpack_q8__neon"};
    static const char *const deq_n[PEQA_NBITS] = {"peqa_dequant_q2__neon", "peqa_dequant_q3__neon",
                                                  "peqa_dequant_q4__neon", "peqa_dequant_q8__neon"};
    static const char *const gemv_n[PEQA_NBITS] = {
        "peqa_fwd_gemv_q2_1x16__neon", "peqa_fwd_gemv_q3_1x16__neon", "peqa_fwd_gemv_q4_1x16__neon",
        "peqa_fwd_gemv_q8_1x16__neon"};
    static const char *const gemm_n[PEQA_NBITS] = {
        "peqa_fwd_gemm_q2_4x16__neon", "peqa_fwd_gemm_q3_4x16__neon", "peqa_fwd_gemm_q4_4x16__neon",
        "peqa_fwd_gemm_q8_4x16__neon"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->unpack[b] = unp[b], k->unpack_name[b] = unp_n[b];
        k->dequant[b] = deq[b], k->dequant_name[b] = deq_n[b];
        k->fwd_gemv[b] = gemv[b], k->fwd_gemv_name[b] = gemv_n[b];
        k->fwd_gemm[b] = gemm[b], k->fwd_gemm_name[b] = gemm_n[b];
    }
}
