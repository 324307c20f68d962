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
 * is[4 i + q] += sdot(codes4(j, q), x_i.4b[L]) with x_i the row's 16 bytes holding group j at
 * 4-byte lane L = j % 4 (sdot by element: no broadcast register needed). A macro rather than a
 * function because the lane must reach the intrinsic as a literal at every optimisation level. */
#define DP_DOT_J(is, pj, x0, x1, x2, x3, L)                                                                  \
    do {                                                                                                     \
        int8x16_t c0_ = vld1q_s8(pj), c1_ = vld1q_s8((pj) + 16), c2_ = vld1q_s8((pj) + 32),                  \
                  c3_ = vld1q_s8((pj) + 48);                                                                 \
        is[0] = vdotq_laneq_s32(is[0], c0_, x0, L), is[1] = vdotq_laneq_s32(is[1], c1_, x0, L);              \
        is[2] = vdotq_laneq_s32(is[2], c2_, x0, L), is[3] = vdotq_laneq_s32(is[3], c3_, x0, L);              \
        is[4] = vdotq_laneq_s32(is[4], c0_, x1, L), is[5] = vdotq_laneq_s32(is[5], c1_, x1, L);              \
        is[6] = vdotq_laneq_s32(is[6], c2_, x1, L), is[7] = vdotq_laneq_s32(is[7], c3_, x1, L);              \
        is[8] = vdotq_laneq_s32(is[8], c0_, x2, L), is[9] = vdotq_laneq_s32(is[9], c1_, x2, L);              \
        is[10] = vdotq_laneq_s32(is[10], c2_, x2, L), is[11] = vdotq_laneq_s32(is[11], c3_, x2, L);          \
        is[12] = vdotq_laneq_s32(is[12], c0_, x3, L), is[13] = vdotq_laneq_s32(is[13], c1_, x3, L);          \
        is[14] = vdotq_laneq_s32(is[14], c2_, x3, L), is[15] = vdotq_laneq_s32(is[15], c3_, x3, L);          \
    } while (0)

/* The GEMM microkernel, MR = 4 activation rows x 16 weight rows: 16 int32 accumulators, the
 * rows' 32 activation bytes in 8 registers, 4 code registers per column group. Fewer than 4
 * rows (the last rows of a chunk) repeat row 0 in the unused slots; those sums are discarded. */
enum { DP_MR = 4 };
PEQA_NEON_INLINE void mk_4x16(const int8_t *panel, const int8_t *x, int64_t ldx, int mr, int bits,
                              int32x4_t *is)
{
    (void)bits;
    const int8_t *r0 = x, *r1 = x + (mr > 1 ? ldx : 0), *r2 = x + (mr > 2 ? 2 * ldx : 0),
                 *r3 = x + (mr > 3 ? 3 * ldx : 0);
    int8x16_t lo0 = vld1q_s8(r0), lo1 = vld1q_s8(r1), lo2 = vld1q_s8(r2), lo3 = vld1q_s8(r3);
    int8x16_t hi0 = vld1q_s8(r0 + 16), hi1 = vld1q_s8(r1 + 16), hi2 = vld1q_s8(r2 + 16),
              hi3 = vld1q_s8(r3 + 16);
    int32x4_t acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = vdupq_n_s32(0);
    DP_DOT_J(acc, panel + 0 * 64, lo0, lo1, lo2, lo3, 0); /* columns 0 .. 3   */
    DP_DOT_J(acc, panel + 1 * 64, lo0, lo1, lo2, lo3, 1);
    DP_DOT_J(acc, panel + 2 * 64, lo0, lo1, lo2, lo3, 2);
    DP_DOT_J(acc, panel + 3 * 64, lo0, lo1, lo2, lo3, 3);
    DP_DOT_J(acc, panel + 4 * 64, hi0, hi1, hi2, hi3, 0); /* columns 16 .. 19 */
    DP_DOT_J(acc, panel + 5 * 64, hi0, hi1, hi2, hi3, 1);
    DP_DOT_J(acc, panel + 6 * 64, hi0, hi1, hi2, hi3, 2);
    DP_DOT_J(acc, panel + 7 * 64, hi0, hi1, hi2, hi3, 3);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) is[i] = acc[i]; /* the driver's array always has 16 entries */
}

/* The GEMV quad: codes straight from the packed words, 8 sdots per quad and block. */
PEQA_NEON_INLINE int32x4_t quad_1x16(const uint32_t *cell, int bits, int q, int8x16_t xlo, int8x16_t xhi)
{
    int32x4_t a = vdupq_n_s32(0);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 0, q), xlo, 0);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 1, q), xlo, 1);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 2, q), xlo, 2);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 3, q), xlo, 3);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 4, q), xhi, 0);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 5, q), xhi, 1);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 6, q), xhi, 2);
    a = vdotq_laneq_s32(a, neon_codes4_s8(cell, bits, 7, q), xhi, 3);
    return a;
}

/* ---- the slots, one function per bit width ---- */

#define I8_ARGS                                                                                              \
    const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const int8_t *xq, int64_t ldq,         \
        const float *xs, int64_t ldxs, float *y, int64_t ldy
#define I8_PASS m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy

static void peqa_fwd_i8_gemv_q2_1x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 2, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q3_1x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 3, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q4_1x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 4, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q8_1x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 8, quad_1x16, I8_PASS);
}

static void peqa_fwd_i8_gemm_q2_4x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_driver(w, 2, DP_MR, mk_4x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q3_4x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_driver(w, 3, DP_MR, mk_4x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q4_4x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_driver(w, 4, DP_MR, mk_4x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q8_4x16__dotprod(I8_ARGS)
{
    neon_fwd_i8_driver(w, 8, DP_MR, mk_4x16, I8_PASS);
}

void peqa_init_qint8__dotprod(peqa_kernels *k, unsigned features)
{
    if (!(features & PEQA_CPU_DOTPROD)) return;
    /* index order of every per-width slot: 2, 3, 4, 8 bits (peqa_bits_index) */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {
        peqa_fwd_i8_gemv_q2_1x16__dotprod, peqa_fwd_i8_gemv_q3_1x16__dotprod,
        peqa_fwd_i8_gemv_q4_1x16__dotprod, peqa_fwd_i8_gemv_q8_1x16__dotprod};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_4x16__dotprod, peqa_fwd_i8_gemm_q3_4x16__dotprod,
        peqa_fwd_i8_gemm_q4_4x16__dotprod, peqa_fwd_i8_gemm_q8_4x16__dotprod};
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
