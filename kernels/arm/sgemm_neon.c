/* sgemm kernels, AArch64 NEON: dense fp32 products (full-precision mode, attention; SPEC §6).
 *
 *   sgemm_nt   C[m, n] = Σ_k A[m, k] · B[n, k]     output columns n in lanes, reduction k
 *   sgemm_nn   C[m, k] = Σ_n A[m, n] · B[n, k]     output columns k in lanes, reduction n
 *   sgemm_tn   C[n, k] = Σ_m A[m, n] · B[m, k]     output columns k in lanes, reduction m
 *
 * Every output element runs exactly the reference's sequence (kernels/ref/sgemm_ref.c):
 *     c = 0;  for p = 0 .. red-1 ascending:  c = fma(a_p, b_p, c)
 * one fused fmla lane (vfmaq_f32 / vfmaq_lane(q)_f32) per fmaf, lanes over independent outputs
 * (16 consecutive output columns = 4 quads), never over the reduction index. Blocking the
 * reduction into KC-long pieces only parks the running sum in C between pieces (a store and a
 * reload, which never change a bit) and resumes the same chain: the block sizes change speed,
 * never results.
 *
 * The design is the one of kernels/x86/sgemm_avx2.c (same loop nest, same packed B panels), with
 * micro-tiles of 5 x 16 (nt, nn) and 6 x 16 (tn) sized for 32 vector registers:
 *
 *   form  broadcast a(row i, step p)              B panel bp[p][l], l = 0..15 (output column j+l)
 *   nt    A[i, p]  in place: row i, step +1       B[j+l, p]  -- a transpose, 4 x 4 blocks (trn1/trn2)
 *   nn    A[i, p]  in place: row i, step +1       B[p, j+l]  -- a copy, 16 floats per row
 *   tn    A[p, i]  packed: ap[p][i], six          B[p, j+l]  -- a copy, 16 floats per row
 *                  consecutive floats per step
 *
 * tn copies an MC_TN x KC block of A (row runs of MC_TN floats) into a dense scratch because its
 * steps are lda apart in A: with the large power-of-two strides of real layers every step would
 * be a TLB miss and all steps would alias into one L1 set (measured on AVX2; see sgemm_avx2.c).
 *
 * Loop nest:
 *   for each reduction block p0 (KC steps):          C is reloaded when p0 > 0
 *     for each column block j0 (NC columns): pack B[p0.., j0..] once, as NC / 16 panels of KC x 16
 *       for each row block i0 (MC rows: the A block MC x KC stays in L2)   [tn: pack it]
 *         for each 16-column panel (KC x 16 floats = 16 KB, L1)
 *           for each 5- or 6-row strip: the micro-kernel over the kc steps
 * Packing is copying (bits unchanged). Panels are zero-padded past the last valid column; those
 * lanes are computed but never stored. No load reads past a row's end: column tails of C and of
 * B rows go through small zero-filled buffers, row tails use the one-row-at-a-time broadcast.
 * Stack use: nt / nn 64 KB (B block), tn 100 KB (B block 64 KB + A block 36 KB). Nothing is
 * allocated and nothing can fail.
 */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Micro-tiles: MR rows x 16 columns (4 quads per row); see the register plan of kern_x16.
 *   MR_ROW = 5 for nt / nn (one broadcast per row and step),
 *   MR_COL = 6 for tn (the six operands of a step are one quad and one pair, used by lane). */
#define MR_ROW 5
#define MR_COL 6
/* Blocking (cache sizes only; they change no bit), as on AVX2:
 *   nt / nn  KC = 256: a panel is KC x 16 floats = 16 KB (a quarter to half of L1D);
 *            NC = 64: the B block is KC x NC floats = 64 KB of stack;
 *            MC = 150: the A block touched by one panel sweep, 150 KB of L2 (a multiple of 5).
 *   tn       KC = 128 (8 KB panels), NC = 128 (64 KB B block), MC = 72 (36 KB A block). */
#ifndef SG_KC
#define SG_KC 256
#endif
#ifndef SG_NC
#define SG_NC 64
#endif
#ifndef SG_MC
#define SG_MC 150
#endif
#ifndef SG_KC_TN
#define SG_KC_TN 128
#endif
#ifndef SG_NC_TN
#define SG_NC_TN 128
#endif
#ifndef SG_MC_TN
#define SG_MC_TN 72
#endif
_Static_assert(SG_KC >= 4 && SG_NC % 16 == 0 && SG_MC % MR_ROW == 0, "block sizes");
_Static_assert(SG_KC_TN >= 4 && SG_NC_TN % 16 == 0 && SG_MC_TN % MR_COL == 0, "tn block sizes");

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* 16 consecutive floats as 4 quads; when valid < 16 only the first `valid` are read (through a
 * zero-filled buffer) or written. */
ALWAYS_INLINE void load16(const float *p, int64_t valid, float32x4_t v[4])
{
    if (valid >= 16) {
        v[0] = vld1q_f32(p), v[1] = vld1q_f32(p + 4), v[2] = vld1q_f32(p + 8), v[3] = vld1q_f32(p + 12);
    } else {
        float t[16] = {0};
        memcpy(t, p, (size_t)valid * sizeof(float));
        v[0] = vld1q_f32(t), v[1] = vld1q_f32(t + 4), v[2] = vld1q_f32(t + 8), v[3] = vld1q_f32(t + 12);
    }
}
ALWAYS_INLINE void store16(float *p, int64_t valid, const float32x4_t v[4])
{
    if (valid >= 16) {
        vst1q_f32(p, v[0]), vst1q_f32(p + 4, v[1]), vst1q_f32(p + 8, v[2]), vst1q_f32(p + 12, v[3]);
    } else {
        float t[16];
        vst1q_f32(t, v[0]), vst1q_f32(t + 4, v[1]), vst1q_f32(t + 8, v[2]), vst1q_f32(t + 12, v[3]);
        memcpy(p, t, (size_t)valid * sizeof(float));
    }
}

/* ---- the micro-kernel ----------------------------------------------------------------------
 * For rows i < mr and lanes l < 16 (quad v holds lanes 4 v .. 4 v + 3):
 *     acc = resume ? C[i][l] : 0
 *     for p = 0 .. kc-1 ascending:  acc = fma(a[i * ars + p * aks], bp[p * 16 + l], acc)
 *     C[i][l] = acc                                   (only lanes l < nv are loaded / stored)
 * Register plan. Broadcast mode (nt, nn; mr <= 5): 20 accumulators (5 rows x 4 quads) + 4 B
 * quads + 5 operands (GCC loads each with ldr s and uses fmla by element) = 29 of the 32 vector
 * registers. With six rows the 24 + 4 + 6 live values do not fit and GCC spills an accumulator
 * through the stack every step (checked in the disassembly), hence 5. Per step: 4 B loads (two
 * ldp q) and 5 operand loads feed 20 fmla; 20 independent chains cover the fmla latency
 * (4 cycles) times two to four FMA pipes.
 * Lane mode (tn, full strips only: lanes != 0, mr == 6, ars == 1): the six operands of one step
 * are six consecutive floats, loaded as one quad (rows 0..3) and one pair (rows 4, 5) and used
 * by lane: 24 accumulators + 4 B + 2 operands = 30 registers, 6 loads per 24 fmla, and exactly
 * the six floats of the strip are read.
 * The fma of lane mode is the same fused operation on the same operands: the bits do not depend
 * on the mode. mr, lanes and one of ars / aks are literals at every call. */
#define FMA_ROW(r, t)                                                                                   \
    do {                                                                                                \
        c##r##0 = vfmaq_f32(c##r##0, t, b0), c##r##1 = vfmaq_f32(c##r##1, t, b1);                       \
        c##r##2 = vfmaq_f32(c##r##2, t, b2), c##r##3 = vfmaq_f32(c##r##3, t, b3);                       \
    } while (0)
#define FMA_ROW_LANEQ(r, v, l)                                                                          \
    do {                                                                                                \
        c##r##0 = vfmaq_laneq_f32(c##r##0, b0, v, l), c##r##1 = vfmaq_laneq_f32(c##r##1, b1, v, l);     \
        c##r##2 = vfmaq_laneq_f32(c##r##2, b2, v, l), c##r##3 = vfmaq_laneq_f32(c##r##3, b3, v, l);     \
    } while (0)
#define FMA_ROW_LANE(r, v, l)                                                                           \
    do {                                                                                                \
        c##r##0 = vfmaq_lane_f32(c##r##0, b0, v, l), c##r##1 = vfmaq_lane_f32(c##r##1, b1, v, l);       \
        c##r##2 = vfmaq_lane_f32(c##r##2, b2, v, l), c##r##3 = vfmaq_lane_f32(c##r##3, b3, v, l);       \
    } while (0)
#define ROW_IO(r, F)                                                                                    \
    do {                                                                                                \
        float32x4_t v_[4] = {c##r##0, c##r##1, c##r##2, c##r##3};                                       \
        F(c + (r) * ldc, nv, v_);                                                                       \
        c##r##0 = v_[0], c##r##1 = v_[1], c##r##2 = v_[2], c##r##3 = v_[3];                             \
    } while (0)

ALWAYS_INLINE void kern_x16(const int mr, const int lanes, const float *a, const int64_t ars,
                            const int64_t aks, const float *bp, int64_t kc, float *c, int64_t ldc,
                            int64_t nv, int resume)
{
    const float *a0 = a, *a1 = a + (mr > 1 ? ars : 0), *a2 = a + (mr > 2 ? 2 * ars : 0),
                *a3 = a + (mr > 3 ? 3 * ars : 0), *a4 = a + (mr > 4 ? 4 * ars : 0),
                *a5 = a + (mr > 5 ? 5 * ars : 0);
    const float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    float32x4_t c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    float32x4_t c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
    if (resume) {
        ROW_IO(0, load16);
        if (mr > 1) ROW_IO(1, load16);
        if (mr > 2) ROW_IO(2, load16);
        if (mr > 3) ROW_IO(3, load16);
        if (mr > 4) ROW_IO(4, load16);
        if (mr > 5) ROW_IO(5, load16);
    }
    for (int64_t p = 0; p < kc; p++) {
        const int64_t o = p * aks;
        const float *bq = bp + 16 * p;
        const float32x4_t b0 = vld1q_f32(bq), b1 = vld1q_f32(bq + 4), b2 = vld1q_f32(bq + 8),
                          b3 = vld1q_f32(bq + 12);
        if (lanes && mr == 6) {
            const float32x4_t lo = vld1q_f32(a0 + o); /* rows 0..3 */
            const float32x2_t hi = vld1_f32(a0 + o + 4); /* rows 4, 5 */
            FMA_ROW_LANEQ(0, lo, 0);
            FMA_ROW_LANEQ(1, lo, 1);
            FMA_ROW_LANEQ(2, lo, 2);
            FMA_ROW_LANEQ(3, lo, 3);
            FMA_ROW_LANE(4, hi, 0);
            FMA_ROW_LANE(5, hi, 1);
        } else {
            float32x4_t t = vld1q_dup_f32(a0 + o);
            FMA_ROW(0, t);
            if (mr > 1) { t = vld1q_dup_f32(a1 + o); FMA_ROW(1, t); }
            if (mr > 2) { t = vld1q_dup_f32(a2 + o); FMA_ROW(2, t); }
            if (mr > 3) { t = vld1q_dup_f32(a3 + o); FMA_ROW(3, t); }
            if (mr > 4) { t = vld1q_dup_f32(a4 + o); FMA_ROW(4, t); }
            if (mr > 5) { t = vld1q_dup_f32(a5 + o); FMA_ROW(5, t); }
        }
    }
    ROW_IO(0, store16);
    if (mr > 1) ROW_IO(1, store16);
    if (mr > 2) ROW_IO(2, store16);
    if (mr > 3) ROW_IO(3, store16);
    if (mr > 4) ROW_IO(4, store16);
    if (mr > 5) ROW_IO(5, store16);
}
#undef FMA_ROW
#undef FMA_ROW_LANEQ
#undef FMA_ROW_LANE
#undef ROW_IO

/* Broadcast operand read in place from rows of A (nt, nn): row i at a + i * lda, step p at +p. */
static void kern_row(int mr, const float *a, int64_t lda, const float *bp, int64_t kc, float *c,
                     int64_t ldc, int64_t nv, int resume)
{
    switch (mr) {
    case 1: kern_x16(1, 0, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 2: kern_x16(2, 0, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 3: kern_x16(3, 0, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 4: kern_x16(4, 0, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    default: kern_x16(5, 0, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    }
}

/* Broadcast operand of tn from its packed block: row i at a + i, step p at a + p * lds. A full
 * strip uses lane mode. */
static void kern_col(int mr, const float *a, int64_t lds, const float *bp, int64_t kc, float *c,
                     int64_t ldc, int64_t nv, int resume)
{
    switch (mr) {
    case 1: kern_x16(1, 0, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 2: kern_x16(2, 0, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 3: kern_x16(3, 0, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 4: kern_x16(4, 0, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 5: kern_x16(5, 0, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    default: kern_x16(6, 1, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    }
}

/* ---- packing ------------------------------------------------------------------------------ */

/* nn / tn: the B block of nc columns as panels: bp[q * kc * 16 + p * 16 + l] = b[p * ldb + 16 q + l]
 * for 16 q + l < nc, 0 past nc;  p < kc. Rows of B are walked in order (streaming reads). */
static void pack_b_copy(const float *b, int64_t ldb, int64_t kc, int64_t nc, float *bp)
{
    const int64_t full = nc / 16, rest = nc % 16, ps = kc * 16;
    for (int64_t p = 0; p < kc; p++, b += ldb) {
        float *o = bp + p * 16;
        for (int64_t q = 0; q < full; q++) {
            vst1q_f32(o + q * ps, vld1q_f32(b + 16 * q)), vst1q_f32(o + q * ps + 4, vld1q_f32(b + 16 * q + 4));
            vst1q_f32(o + q * ps + 8, vld1q_f32(b + 16 * q + 8)), vst1q_f32(o + q * ps + 12, vld1q_f32(b + 16 * q + 12));
        }
        if (rest) {
            float *t = o + full * ps;
            memset(t, 0, 16 * sizeof(float));
            memcpy(t, b + 16 * full, (size_t)rest * sizeof(float));
        }
    }
}

/* nt: bp[p * 16 + l] = b[l * ldb + p] for l < nv, 0 for nv <= l < 16;  p < kc.
 * Whole 4 x 4 blocks (4 rows of B, 4 steps) are transposed in registers:
 *   trn1/trn2 on 32-bit lanes pair rows 0/1 and 2/3, trn1/trn2 on 64-bit lanes join the pairs,
 *   so out[j] = (r0[j], r1[j], r2[j], r3[j]) = step p + j of the 4 rows.
 * Row groups with fewer than 4 valid rows and the last kc % 4 steps are copied one float at a
 * time; rows past nv are zeros and their addresses are never formed. */
static void pack_b_transpose(const float *b, int64_t ldb, int64_t kc, int64_t nv, float *bp)
{
    for (int g = 0; g < 4; g++) {
        float *out = bp + 4 * g;
        const int64_t ng = nv - 4 * g < 0 ? 0 : nv - 4 * g > 4 ? 4 : nv - 4 * g;
        int64_t p = 0;
        if (ng == 4) {
            const float *r0 = b + (4 * g) * ldb, *r1 = r0 + ldb, *r2 = r1 + ldb, *r3 = r2 + ldb;
            for (; p + 4 <= kc; p += 4) {
                const float32x4_t x0 = vld1q_f32(r0 + p), x1 = vld1q_f32(r1 + p), x2 = vld1q_f32(r2 + p),
                                  x3 = vld1q_f32(r3 + p);
                const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(x0, x1)); /* x0[0] x1[0] x0[2] x1[2] */
                const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(x0, x1)); /* x0[1] x1[1] x0[3] x1[3] */
                const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(x2, x3));
                const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(x2, x3));
                vst1q_f32(out + 16 * (p + 0), vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
                vst1q_f32(out + 16 * (p + 1), vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
                vst1q_f32(out + 16 * (p + 2), vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
                vst1q_f32(out + 16 * (p + 3), vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
            }
        }
        for (; p < kc; p++)
            for (int64_t l = 0; l < 4; l++) out[16 * p + l] = l < ng ? b[(4 * g + l) * ldb + p] : 0.0f;
    }
}

/* tn: the A block of mc output rows, ap[p * SG_MC_TN + i] = a[p * lda + i] for p < kc, i < mc. */
static void pack_a_rows(const float *a, int64_t lda, int64_t kc, int64_t mc, float *ap)
{
    const int64_t full = mc / 4 * 4;
    for (int64_t p = 0; p < kc; p++, a += lda, ap += SG_MC_TN) {
        for (int64_t i = 0; i < full; i += 4) vst1q_f32(ap + i, vld1q_f32(a + i));
        for (int64_t i = full; i < mc; i++) ap[i] = a[i];
    }
}

/* ---- the driver ------------------------------------------------------------------------------ */
enum { FORM_NT, FORM_NN, FORM_TN };

/* Output rows [m0, m1), columns [c0, c1) of C; `red` reduction steps; bp: SG_KC x SG_NC floats. */
ALWAYS_INLINE void drive(const int form, int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                         float *bp, float *ap)
{
    if (m0 >= m1 || c0 >= c1) return;
    if (red <= 0) { /* the empty sum: c = 0, as the reference */
        for (int64_t i = m0; i < m1; i++) memset(c + i * ldc + c0, 0, (size_t)(c1 - c0) * sizeof(float));
        return;
    }
    const int64_t KC = form == FORM_TN ? SG_KC_TN : SG_KC, NC = form == FORM_TN ? SG_NC_TN : SG_NC;
    for (int64_t p0 = 0; p0 < red; p0 += KC) {
        const int64_t kc = min64(KC, red - p0);
        const int resume = p0 > 0;
        for (int64_t j0 = c0; j0 < c1; j0 += NC) {
            const int64_t nc = min64(NC, c1 - j0);
            if (form == FORM_NT)
                for (int64_t q = 0; 16 * q < nc; q++)
                    pack_b_transpose(b + (j0 + 16 * q) * ldb + p0, ldb, kc, min64(16, nc - 16 * q), bp + q * kc * 16);
            else
                pack_b_copy(b + p0 * ldb + j0, ldb, kc, nc, bp);
            if (form == FORM_TN) {
                for (int64_t i0 = m0; i0 < m1; i0 += SG_MC_TN) {
                    const int64_t mc = min64(SG_MC_TN, m1 - i0);
                    pack_a_rows(a + p0 * lda + i0, lda, kc, mc, ap);
                    for (int64_t q = 0; 16 * q < nc; q++) {
                        const int64_t j = j0 + 16 * q, nv = min64(16, nc - 16 * q);
                        for (int64_t i = 0; i < mc; i += MR_COL)
                            kern_col((int)min64(MR_COL, mc - i), ap + i, SG_MC_TN, bp + q * kc * 16, kc,
                                     c + (i0 + i) * ldc + j, ldc, nv, resume);
                    }
                }
                continue;
            }
            for (int64_t i0 = m0; i0 < m1; i0 += SG_MC) {
                const int64_t i1 = min64(i0 + SG_MC, m1);
                for (int64_t q = 0; 16 * q < nc; q++) {
                    const int64_t j = j0 + 16 * q, nv = min64(16, nc - 16 * q);
                    for (int64_t i = i0; i < i1; i += MR_ROW)
                        kern_row((int)min64(MR_ROW, i1 - i), a + i * lda + p0, lda, bp + q * kc * 16, kc,
                                 c + i * ldc + j, ldc, nv, resume);
                }
            }
        }
    }
}

#define SGEMM_ENTRY(NAME, FORM)                                                                           \
    static void NAME(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red, const float *a,         \
                     int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)                     \
    {                                                                                                     \
        _Alignas(16) float bp[SG_KC * SG_NC];                                                             \
        drive(FORM, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, NULL);                               \
    }
SGEMM_ENTRY(peqa_sgemm_nt_5x16__neon, FORM_NT)
SGEMM_ENTRY(peqa_sgemm_nn_5x16__neon, FORM_NN)
#undef SGEMM_ENTRY

static void peqa_sgemm_tn_6x16__neon(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                                     const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                                     int64_t ldc)
{
    _Alignas(16) float bp[SG_KC_TN * SG_NC_TN];
    _Alignas(16) float ap[SG_KC_TN * SG_MC_TN];
    drive(FORM_TN, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, ap);
}

void peqa_init_sgemm__neon(peqa_kernels *k, unsigned features)
{
    (void)features; /* baseline AArch64 Advanced SIMD is all these kernels need */
    k->sgemm_nt = peqa_sgemm_nt_5x16__neon, k->sgemm_nt_name = "peqa_sgemm_nt_5x16__neon";
    k->sgemm_nn = peqa_sgemm_nn_5x16__neon, k->sgemm_nn_name = "peqa_sgemm_nn_5x16__neon";
    k->sgemm_tn = peqa_sgemm_tn_6x16__neon, k->sgemm_tn_name = "peqa_sgemm_tn_6x16__neon";
}
