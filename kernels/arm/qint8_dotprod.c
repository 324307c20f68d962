/* qint8 forward kernels, AArch64 NEON with the ARMv8.2 dot-product extension (sdot).
 * Built with -march=armv8.2-a+dotprod (the Makefile picks the flags by the _dotprod suffix);
 * installed by peqa_init_qint8__dotprod only when the CPU reports PEQA_CPU_DOTPROD, so nothing in
 * this file runs on a CPU without sdot. Same float epilogue as the baseline kernels in
 * qint8_neon.c (neon_common.h), and integer sums are exact, so the bits are the same.
 *
 * sdot v.4s, codes.16b, x.4b[L]: lane r += Σ_{i<4} codes.b[4 r + i] * x.b[4 L + i], i.e. one
 * codes4(j, q) register (4 rows x 4 consecutive columns) against the 4 activation bytes of the
 * same columns: exactly the operand shape of the packed layout, no shuffles. Codes are signed
 * bytes (8-bit codes biased by -128, corrected in the epilogue; see neon_codes4_s8). */
#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD)
#error "kernels/arm/*_dotprod.c must be built for AArch64 with +dotprod"
#endif
#include "neon_common.h"

void peqa_init_qint8__dotprod(peqa_kernels *k, unsigned features);

/* One column group j for MR = 4 activation rows and the 4 quads of the tile:
 * is[4 i + q] += sdot(codes4(j, q), xb_i), xb_i = the row's 4 bytes of group j in every lane. */
PEQA_NEON_INLINE void dot_j(int32x4_t is[16], const int8_t *pj, int8x16_t xb0, int8x16_t xb1, int8x16_t xb2,
                            int8x16_t xb3)
{
    int8x16_t c0 = vld1q_s8(pj), c1 = vld1q_s8(pj + 16), c2 = vld1q_s8(pj + 32), c3 = vld1q_s8(pj + 48);
    is[0] = vdotq_s32(is[0], c0, xb0), is[1] = vdotq_s32(is[1], c1, xb0);
    is[2] = vdotq_s32(is[2], c2, xb0), is[3] = vdotq_s32(is[3], c3, xb0);
    is[4] = vdotq_s32(is[4], c0, xb1), is[5] = vdotq_s32(is[5], c1, xb1);
    is[6] = vdotq_s32(is[6], c2, xb1), is[7] = vdotq_s32(is[7], c3, xb1);
    is[8] = vdotq_s32(is[8], c0, xb2), is[9] = vdotq_s32(is[9], c1, xb2);
    is[10] = vdotq_s32(is[10], c2, xb2), is[11] = vdotq_s32(is[11], c3, xb2);
    is[12] = vdotq_s32(is[12], c0, xb3), is[13] = vdotq_s32(is[13], c1, xb3);
    is[14] = vdotq_s32(is[14], c2, xb3), is[15] = vdotq_s32(is[15], c3, xb3);
}

/* The GEMM microkernel, MR = 4 activation rows x 16 weight rows: 16 int32 accumulators, the
 * rows' 32 activation bytes in 8 registers, 4 code registers per column group. Fewer than 4
 * rows (the last rows of a chunk) repeat row 0 in the unused slots; those sums are discarded. */
enum { DP_MR = 4 };
static void mk_4x16(const int8_t *panel, const int8_t *x, int64_t ldx, int mr, int bits, int32x4_t *is)
{
    (void)bits;
    int8x16_t lo[DP_MR], hi[DP_MR];
    for (int i = 0; i < DP_MR; i++) {
        const int8_t *xr = x + (i < mr ? i : 0) * ldx;
        lo[i] = vld1q_s8(xr), hi[i] = vld1q_s8(xr + 16);
    }
    int32x4_t acc[16];
    for (int i = 0; i < 16; i++) acc[i] = vdupq_n_s32(0);
    dot_j(acc, panel + 0 * 64, NEON_XPAT(lo[0], 0), NEON_XPAT(lo[1], 0), NEON_XPAT(lo[2], 0), NEON_XPAT(lo[3], 0));
    dot_j(acc, panel + 1 * 64, NEON_XPAT(lo[0], 1), NEON_XPAT(lo[1], 1), NEON_XPAT(lo[2], 1), NEON_XPAT(lo[3], 1));
    dot_j(acc, panel + 2 * 64, NEON_XPAT(lo[0], 2), NEON_XPAT(lo[1], 2), NEON_XPAT(lo[2], 2), NEON_XPAT(lo[3], 2));
    dot_j(acc, panel + 3 * 64, NEON_XPAT(lo[0], 3), NEON_XPAT(lo[1], 3), NEON_XPAT(lo[2], 3), NEON_XPAT(lo[3], 3));
    dot_j(acc, panel + 4 * 64, NEON_XPAT(hi[0], 0), NEON_XPAT(hi[1], 0), NEON_XPAT(hi[2], 0), NEON_XPAT(hi[3], 0));
    dot_j(acc, panel + 5 * 64, NEON_XPAT(hi[0], 1), NEON_XPAT(hi[1], 1), NEON_XPAT(hi[2], 1), NEON_XPAT(hi[3], 1));
    dot_j(acc, panel + 6 * 64, NEON_XPAT(hi[0], 2), NEON_XPAT(hi[1], 2), NEON_XPAT(hi[2], 2), NEON_XPAT(hi[3], 2));
    dot_j(acc, panel + 7 * 64, NEON_XPAT(hi[0], 3), NEON_XPAT(hi[1], 3), NEON_XPAT(hi[2], 3), NEON_XPAT(hi[3], 3));
    for (int i = 0; i < 4 * mr; i++) is[i] = acc[i];
}

/* The GEMV quad: codes straight from the packed words, 8 sdots per quad and block. */
static int32x4_t quad_1x16(const uint32_t *cell, int bits, int q, int8x16_t xlo, int8x16_t xhi)
{
    int32x4_t a = vdupq_n_s32(0);
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 0, q), NEON_XPAT(xlo, 0));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 1, q), NEON_XPAT(xlo, 1));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 2, q), NEON_XPAT(xlo, 2));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 3, q), NEON_XPAT(xlo, 3));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 4, q), NEON_XPAT(xhi, 0));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 5, q), NEON_XPAT(xhi, 1));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 6, q), NEON_XPAT(xhi, 2));
    a = vdotq_s32(a, neon_codes4_s8(cell, bits, 7, q), NEON_XPAT(xhi, 3));
    return a;
}

/* ---- the slots, one function per bit width ---- */

#define I8_ARGS                                                                                              \
    const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const int8_t *xq, int64_t ldq,          \
        const float *xs, int64_t ldxs, float *y, int64_t ldy
#define I8_PASS m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy

static void peqa_fwd_i8_gemv_q2_1x16__dotprod(I8_ARGS) { neon_fwd_i8_gemv_driver(w, 2, quad_1x16, I8_PASS); }
static void peqa_fwd_i8_gemv_q3_1x16__dotprod(I8_ARGS) { neon_fwd_i8_gemv_driver(w, 3, quad_1x16, I8_PASS); }
static void peqa_fwd_i8_gemv_q4_1x16__dotprod(I8_ARGS) { neon_fwd_i8_gemv_driver(w, 4, quad_1x16, I8_PASS); }
static void peqa_fwd_i8_gemv_q8_1x16__dotprod(I8_ARGS) { neon_fwd_i8_gemv_driver(w, 8, quad_1x16, I8_PASS); }

static void peqa_fwd_i8_gemm_q2_4x16__dotprod(I8_ARGS) { neon_fwd_i8_driver(w, 2, DP_MR, mk_4x16, I8_PASS); }
static void peqa_fwd_i8_gemm_q3_4x16__dotprod(I8_ARGS) { neon_fwd_i8_driver(w, 3, DP_MR, mk_4x16, I8_PASS); }
static void peqa_fwd_i8_gemm_q4_4x16__dotprod(I8_ARGS) { neon_fwd_i8_driver(w, 4, DP_MR, mk_4x16, I8_PASS); }
static void peqa_fwd_i8_gemm_q8_4x16__dotprod(I8_ARGS) { neon_fwd_i8_driver(w, 8, DP_MR, mk_4x16, I8_PASS); }

void peqa_init_qint8__dotprod(peqa_kernels *k, unsigned features)
{
    if (!(features & PEQA_CPU_DOTPROD)) return;
    /* index order of every per-width slot: 2, 3, 4, 8 bits (peqa_bits_index) */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {
        peqa_fwd_i8_gemv_q2_1x16__dotprod, peqa_fwd_i8_gemv_q3_1x16__dotprod, peqa_fwd_i8_gemv_q4_1x16__dotprod,
        peqa_fwd_i8_gemv_q8_1x16__dotprod};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_4x16__dotprod, peqa_fwd_i8_gemm_q3_4x16__dotprod, peqa_fwd_i8_gemm_q4_4x16__dotprod,
        peqa_fwd_i8_gemm_q8_4x16__dotprod};
    static const char *const gemv_n[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x16__dotprod", "peqa_fwd_i8_gemv_q3_1x16__dotprod",
        "peqa_fwd_i8_gemv_q4_1x16__dotprod", "peqa_fwd_i8_gemv_q8_1x16__dotprod"};
    static const char *const gemm_n[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_4x16__dotprod", "peqa_fwd_i8_gemm_q3_4x16__dotprod",
        "peqa_fwd_i8_gemm_q4_4x16__dotprod", "peqa_fwd_i8_gemm_q8_4x16__dotprod"};
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_n[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_n[b];
    }
}
