/* qint8 kernels, AArch64 NEON (baseline, no dotprod): activation quantization and the
 * integer-activation forward (SPEC §7) with plain widening multiply-accumulates.
 * Contracts and operation sequences: kernels/ref/qact_ref.c. The dotprod forward lives in
 * qint8_dotprod.c and replaces the forward slots when the CPU has sdot. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include "neon_common.h"

void peqa_init_qint8__dotprod(peqa_kernels *k, unsigned features); /* qint8_dotprod.c */

/* ---- activation quantization: lanes = columns (every output independent) -------------------
 * Per row m and block b of 32 columns:
 *   amax = max |x|                       (vmaxvq: max is exact, so any order gives the same)
 *   d    = amax / 127                    (one division)
 *   xq   = clamp(rint(x / d), -127, 127) (vdivq_f32: a real division; vrndnq_f32: half to even)
 *   xq   = 0 where d == 0
 * A short last block is copied into a zero-filled buffer: zeros do not change the max, and only
 * the valid columns are stored. */
static void qact_block(const float *x, int64_t nk, int8_t *xq, float *d_out)
{
    _Alignas(16) float buf[PEQA_KB];
    const float *src = x;
    if (nk < PEQA_KB) {
        memset(buf, 0, sizeof buf);
        memcpy(buf, x, sizeof(float) * (size_t)nk);
        src = buf;
    }
    float32x4_t v[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) v[i] = vld1q_f32(src + 4 * i);
    float32x4_t mx = vabsq_f32(v[0]);
#pragma GCC unroll 8
    for (int i = 1; i < 8; i++) mx = vmaxq_f32(mx, vabsq_f32(v[i]));
    float d = vmaxvq_f32(mx) / 127.0f;
    _Alignas(16) int8_t out[PEQA_KB];
    if (d > 0.0f) {
        float32x4_t dv = vdupq_n_f32(d), lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
        int16x8_t h[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            int32x4_t a = vcvtq_s32_f32(vminq_f32(vmaxq_f32(vrndnq_f32(vdivq_f32(v[2 * i], dv)), lo), hi));
            int32x4_t b =
                vcvtq_s32_f32(vminq_f32(vmaxq_f32(vrndnq_f32(vdivq_f32(v[2 * i + 1], dv)), lo), hi));
            h[i] = vcombine_s16(vmovn_s32(a), vmovn_s32(b)); /* integers in [-127, 127]: exact */
        }
        vst1q_s8(out, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8(out + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    } else {
        memset(out, 0, sizeof out);
    }
    memcpy(xq, out, (size_t)nk);
    *d_out = d;
}

static void peqa_qact__neon(int64_t m0, int64_t m1, int64_t k, const float *x, int64_t ldx, int8_t *xq,
                            int64_t ldq, float *xs, int64_t ldxs)
{
    int64_t nb = (k + PEQA_KB - 1) / PEQA_KB;
    for (int64_t m = m0; m < m1; m++)
        for (int64_t b = 0; b < nb; b++)
            qact_block(x + m * ldx + b * PEQA_KB, neon_min(PEQA_KB, k - b * PEQA_KB),
                       xq + m * ldq + b * PEQA_KB, xs + m * ldxs + b);
}

/* ---- integer dot products without sdot ------------------------------------------------------
 * For one quad (4 rows x 4 columns per codes4 register) and one activation row: smull / smlal
 * multiply the 16 code bytes by the 4 activation bytes repeated 4 times into int16 lanes
 * [r0c0 r0c1 r0c2 r0c3 r1c0 ..] (low half: rows 0, 1; high half: rows 2, 3), summed over the
 * block's 8 column groups j. int16 is enough: for b <= 4, |Σ_j x q| <= 8 * 127 * 15 = 15240; for
 * b = 8 the biased codes give |x q'| <= 127 * 128 = 16256, so two terms (32512) are widened into
 * the int32 pairs (sadalp) at a time. Finally addp folds the pairs: [r0 r1 r2 r3]. */
PEQA_NEON_INLINE int32x4_t dot_quad(const int8x16_t c[8], const int8x16_t xp[8], int bits)
{
    int32x4_t lo32 = vdupq_n_s32(0), hi32 = vdupq_n_s32(0);
    int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        lo = vmlal_s8(lo, vget_low_s8(c[j]), vget_low_s8(xp[j]));
        hi = vmlal_high_s8(hi, c[j], xp[j]);
        if (bits == 8 && (j & 1)) {
            lo32 = vpadalq_s16(lo32, lo), hi32 = vpadalq_s16(hi32, hi);
            lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
        }
    }
    if (bits != 8) lo32 = vpaddlq_s16(lo), hi32 = vpaddlq_s16(hi);
    return vpaddq_s32(lo32, hi32);
}

/* xp[j] = the 4 bytes x[4 j .. 4 j + 3] in every 32-bit lane. */
PEQA_NEON_INLINE void x_patterns(const int8_t *x, int8x16_t xp[8])
{
    int8x16_t xlo = vld1q_s8(x), xhi = vld1q_s8(x + 16);
    xp[0] = NEON_XPAT(xlo, 0), xp[1] = NEON_XPAT(xlo, 1), xp[2] = NEON_XPAT(xlo, 2),
    xp[3] = NEON_XPAT(xlo, 3);
    xp[4] = NEON_XPAT(xhi, 0), xp[5] = NEON_XPAT(xhi, 1), xp[6] = NEON_XPAT(xhi, 2),
    xp[7] = NEON_XPAT(xhi, 3);
}

/* The GEMM microkernel, MR = 2 activation rows x 16 weight rows: the 8 code registers of a quad
 * are loaded once from the panel and serve both rows (16 activation patterns stay in registers).
 * With one row left (mr == 1) the second slot repeats row 0 and its sums are discarded. */
enum { I8_MR = 2 };
PEQA_NEON_INLINE void mk_2x16(const int8_t *panel, const int8_t *x, int64_t ldx, int mr, int bits,
                              int32x4_t *is)
{
    int8x16_t xp0[8], xp1[8];
    x_patterns(x, xp0);
    x_patterns(x + (mr > 1 ? ldx : 0), xp1);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        int8x16_t c[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) c[j] = vld1q_s8(panel + (4 * j + q) * 16);
        is[q] = dot_quad(c, xp0, bits);
        is[4 + q] = dot_quad(c, xp1, bits);
    }
}

/* The GEMV quad: the codes come straight from the packed words. */
PEQA_NEON_INLINE int32x4_t quad_1x16(const uint32_t *cell, int bits, int q, int8x16_t xlo, int8x16_t xhi)
{
    int8x16_t c[8], xp[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) c[j] = neon_codes4_s8(cell, bits, j, q);
    xp[0] = NEON_XPAT(xlo, 0), xp[1] = NEON_XPAT(xlo, 1), xp[2] = NEON_XPAT(xlo, 2),
    xp[3] = NEON_XPAT(xlo, 3);
    xp[4] = NEON_XPAT(xhi, 0), xp[5] = NEON_XPAT(xhi, 1), xp[6] = NEON_XPAT(xhi, 2),
    xp[7] = NEON_XPAT(xhi, 3);
    return dot_quad(c, xp, bits);
}

/* ---- the slots, one function per bit width ---- */

#define I8_ARGS                                                                                              \
    const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const int8_t *xq, int64_t ldq,         \
        const float *xs, int64_t ldxs, float *y, int64_t ldy
#define I8_PASS m0, m1, n0, n1, xq, ldq, xs, ldxs, y, ldy

static void peqa_fwd_i8_gemv_q2_1x16__neon(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 2, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q3_1x16__neon(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 3, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q4_1x16__neon(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 4, quad_1x16, I8_PASS);
}
static void peqa_fwd_i8_gemv_q8_1x16__neon(I8_ARGS)
{
    neon_fwd_i8_gemv_driver(w, 8, quad_1x16, I8_PASS);
}

static void peqa_fwd_i8_gemm_q2_2x16__neon(I8_ARGS)
{
    neon_fwd_i8_driver(w, 2, I8_MR, mk_2x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q3_2x16__neon(I8_ARGS)
{
    neon_fwd_i8_driver(w, 3, I8_MR, mk_2x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q4_2x16__neon(I8_ARGS)
{
    neon_fwd_i8_driver(w, 4, I8_MR, mk_2x16, I8_PASS);
}
static void peqa_fwd_i8_gemm_q8_2x16__neon(I8_ARGS)
{
    neon_fwd_i8_driver(w, 8, I8_MR, mk_2x16, I8_PASS);
}

void peqa_init_qint8__neon(peqa_kernels *k, unsigned features)
{
    /* index order of every per-width slot: 2, 3, 4, 8 bits (peqa_bits_index) */
    static const peqa_fwd_i8_fn gemv[PEQA_NBITS] = {
        peqa_fwd_i8_gemv_q2_1x16__neon, peqa_fwd_i8_gemv_q3_1x16__neon, peqa_fwd_i8_gemv_q4_1x16__neon,
        peqa_fwd_i8_gemv_q8_1x16__neon};
    static const peqa_fwd_i8_fn gemm[PEQA_NBITS] = {
        peqa_fwd_i8_gemm_q2_2x16__neon, peqa_fwd_i8_gemm_q3_2x16__neon, peqa_fwd_i8_gemm_q4_2x16__neon,
        peqa_fwd_i8_gemm_q8_2x16__neon};
    static const char *const gemv_n[PEQA_NBITS] = {
        "peqa_fwd_i8_gemv_q2_1x16__neon", "peqa_fwd_i8_gemv_q3_1x16__neon", "peqa_fwd_i8_gemv_q4_1x16__neon",
        "peqa_fwd_i8_gemv_q8_1x16__neon"};
    static const char *const gemm_n[PEQA_NBITS] = {
        "peqa_fwd_i8_gemm_q2_2x16__neon", "peqa_fwd_i8_gemm_q3_2x16__neon", "peqa_fwd_i8_gemm_q4_2x16__neon",
        "peqa_fwd_i8_gemm_q8_2x16__neon"};
    k->qact = peqa_qact__neon, k->qact_name = "peqa_qact__neon";
    for (int b = 0; b < PEQA_NBITS; b++) {
        k->fwd_i8_gemv[b] = gemv[b], k->fwd_i8_gemv_name[b] = gemv_n[b];
        k->fwd_i8_gemm[b] = gemm[b], k->fwd_i8_gemm_name[b] = gemm_n[b];
    }
    /* sdot/udot (ARMv8.2 dotprod): replaces the forward slots only when the CPU has it. */
    peqa_init_qint8__dotprod(k, features);
}
