/* peqa — AArch64 NEON helpers shared by the kernel files in kernels/arm/ (static inline only).
 *
 * Vocabulary of every NEON kernel (layout in kernels/peqa_kernels.h):
 *
 *   tile   16 output rows n = 16 t .. 16 t + 15, held as 4 QUADS of 4 rows: one 128-bit register
 *          per quad, lane r of quad q is row 16 t + 4 q + r. A 16-row tile is 4 registers.
 *   cell   the packed codes of one tile x one 32-column k-block c.
 *   codes4(j, q)   (j = 0 .. 7) the uint32x4 whose lane r holds, one per byte, the codes of
 *          columns 32 c + 4 j .. 32 c + 4 j + 3 of row 16 t + 4 q + r (byte i = column 4 j + i).
 *          This is the "(word >> (p s)) & MASK_p" operand of the layout; for 3 bits the low
 *          two-bit field and the high bit are or-ed together.
 *
 * From codes4 the kernels take three views:
 *   - one column over rows (lanes = rows): byte i of every lane, via one vqtbl1q_u8 (fp32 paths,
 *     where outputs n sit in lanes and k is the sequential reduction index);
 *   - rows of 32 bytes (lanes = columns): a 4 x 4 transpose of 32-bit lanes (unpack, dequant,
 *     and the input gradient, whose outputs are columns k);
 *   - the 4-byte groups themselves: the operand of sdot / smull (int8 path).
 *
 * Floating-point rules (SPEC §6): every fp32 kernel keeps the reference's operation sequence
 * per output element. Reductions run in the reference's index order with one vfmaq_f32 (fused)
 * per fmaf; (float)q - z is its own rounded subtraction; values parked in memory between passes
 * are stored and reloaded unchanged, which never alters a bit. Tails are handled by limiting
 * loop counts and by copying partial rows through small zero-filled buffers, never by computing
 * extra terms into an output.
 *
 * Built as part of *_neon.c (baseline AArch64) and *_dotprod.c (armv8.2-a+dotprod). This header
 * is not in the Makefile's HDRS list: after editing it, rebuild the kernels/arm objects.
 */
#ifndef PEQA_NEON_COMMON_H
#define PEQA_NEON_COMMON_H

#include <arm_neon.h>
#include <string.h>
#include "../peqa_kernels.h"

/* The per-bit-width wrappers pass `bits` as a literal; forcing the drivers inline lets the
 * compiler fold every `switch (bits)` out of the inner loops. Small fixed loops over quads,
 * lanes and column groups carry `#pragma GCC unroll` so that the little arrays of registers
 * they index (accumulators, codes) are scalarised into registers instead of living on the stack. */
#define PEQA_NEON_INLINE static inline __attribute__((always_inline))

/* Blocking of the fp32 kernels (cache sizes only: they never change a result, because every
 * output keeps its own sequential reduction whatever the block boundaries).
 *   MC rows of activations share one dequantized weight panel; KC columns form one panel
 *   (KC x 16 floats = 16 KiB, L1-sized); NC weight rows form one input-gradient panel. */
enum { NEON_MC = 64, NEON_KC = 256, NEON_NC = 64 };
_Static_assert(NEON_KC % PEQA_KB == 0 && NEON_NC % PEQA_NR == 0, "panels hold whole cells");

static inline int64_t neon_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- decoding a cell ------------------------------------------------------------------------ */

/* codes4(j, q) of the cell, as described at the top. Word w of row quad q is at cell + 16 w + 4 q. */
PEQA_NEON_INLINE uint32x4_t neon_codes4(const uint32_t *cell, int bits, int j, int q)
{
    const uint32_t *c = cell + 4 * q;
    switch (bits) {
    case 8: /* word j: byte i = column 4 j + i */
        return vld1q_u32(c + 16 * j);
    case 4: /* word j/2, nibble field s = j%2 */
        return vandq_u32(vshlq_u32(vld1q_u32(c + 16 * (j >> 1)), vdupq_n_s32(-4 * (j & 1))),
                         vdupq_n_u32(0x0F0F0F0Fu));
    case 2: /* word j/4, two-bit field s = j%4 */
        return vandq_u32(vshlq_u32(vld1q_u32(c + 16 * (j >> 2)), vdupq_n_s32(-2 * (j & 3))),
                         vdupq_n_u32(0x03030303u));
    default: { /* 3: low two bits as for 2 bits (words 0, 1), high bit from word 2, field j */
        uint32x4_t lo = vandq_u32(vshlq_u32(vld1q_u32(c + 16 * (j >> 2)), vdupq_n_s32(-2 * (j & 3))),
                                  vdupq_n_u32(0x03030303u));
        uint32x4_t hi = vandq_u32(vshlq_u32(vld1q_u32(c + 32), vdupq_n_s32(-j)), vdupq_n_u32(0x01010101u));
        return vorrq_u32(lo, vshlq_n_u32(hi, 2));
    }
    }
}

/* vqtbl1q_u8 index vectors: neon_col_idx[i] keeps byte i of every 32-bit lane, moved to byte 0,
 * and zeroes the other bytes (index 0xFF is out of range, which tbl turns into 0). */
static const uint8_t neon_col_idx[4][16] = {
    {0, 255, 255, 255, 4, 255, 255, 255, 8, 255, 255, 255, 12, 255, 255, 255},
    {1, 255, 255, 255, 5, 255, 255, 255, 9, 255, 255, 255, 13, 255, 255, 255},
    {2, 255, 255, 255, 6, 255, 255, 255, 10, 255, 255, 255, 14, 255, 255, 255},
    {3, 255, 255, 255, 7, 255, 255, 255, 11, 255, 255, 255, 15, 255, 255, 255},
};

PEQA_NEON_INLINE void neon_col_idx_load(uint8x16_t idx[4])
{
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) idx[i] = vld1q_u8(neon_col_idx[i]);
}

/* (float)q of column 4 j + i for the 4 rows of a quad: byte i of each lane of codes4, exact. */
PEQA_NEON_INLINE float32x4_t neon_col_f32(uint32x4_t c4, uint8x16_t idx)
{
    return vcvtq_f32_u32(vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(c4), idx)));
}

/* R[r][kk] = q[16 t + r, 32 c + kk] (row-major bytes). Row r = 4 q + l is lane l of codes4(0..7, q)
 * laid end to end, so each quad is a 4 x 4 transpose of 32-bit lanes, twice (j = 0..3, 4..7). */
PEQA_NEON_INLINE void neon_cell_rows(const uint32_t *cell, int bits, uint8_t R[16][32])
{
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            uint32x4_t m0 = neon_codes4(cell, bits, 4 * h + 0, q), m1 = neon_codes4(cell, bits, 4 * h + 1, q);
            uint32x4_t m2 = neon_codes4(cell, bits, 4 * h + 2, q), m3 = neon_codes4(cell, bits, 4 * h + 3, q);
            uint64x2_t t0 = vreinterpretq_u64_u32(vtrn1q_u32(m0, m1)); /* m0[0] m1[0] m0[2] m1[2] */
            uint64x2_t t1 = vreinterpretq_u64_u32(vtrn2q_u32(m0, m1)); /* m0[1] m1[1] m0[3] m1[3] */
            uint64x2_t t2 = vreinterpretq_u64_u32(vtrn1q_u32(m2, m3));
            uint64x2_t t3 = vreinterpretq_u64_u32(vtrn2q_u32(m2, m3));
            vst1q_u8(R[4 * q + 0] + 16 * h, vreinterpretq_u8_u64(vtrn1q_u64(t0, t2)));
            vst1q_u8(R[4 * q + 1] + 16 * h, vreinterpretq_u8_u64(vtrn1q_u64(t1, t3)));
            vst1q_u8(R[4 * q + 2] + 16 * h, vreinterpretq_u8_u64(vtrn2q_u64(t0, t2)));
            vst1q_u8(R[4 * q + 3] + 16 * h, vreinterpretq_u8_u64(vtrn2q_u64(t1, t3)));
        }
}

/* out[kk] = s * ((float)codes[kk] - z) for kk = 0 .. 31: the reference's two roundings, a
 * subtraction then a product (lanes = columns). */
PEQA_NEON_INLINE void neon_deq_row32(const uint8_t *codes, float s, float z, float *out)
{
    float32x4_t sv = vdupq_n_f32(s), zv = vdupq_n_f32(z);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        uint8x16_t b = vld1q_u8(codes + 16 * h);
        uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_high_u8(b);
        uint32x4_t u[4] = {vmovl_u16(vget_low_u16(lo)), vmovl_high_u16(lo), vmovl_u16(vget_low_u16(hi)),
                           vmovl_high_u16(hi)};
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            vst1q_f32(out + 16 * h + 4 * v, vmulq_f32(sv, vsubq_f32(vcvtq_f32_u32(u[v]), zv)));
    }
}

/* ---- the fp32 weight panel (lanes = rows) ---------------------------------------------------- */

/* D[kk * 16 + 4 q + r] = (float)q[16 t + 4 q + r, 32 c + kk] - z[4 q + r] for kk = 0 .. 31: one
 * cell, rounded exactly as the reference's (float)q - z. Columns past K hold padding codes 0,
 * so their entries are -z, finite and never used. */
PEQA_NEON_INLINE void neon_panel_cell(const uint32_t *cell, int bits, const float32x4_t z[4], float *D)
{
    uint8x16_t idx[4];
    neon_col_idx_load(idx);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            uint32x4_t c4 = neon_codes4(cell, bits, j, q);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                vst1q_f32(D + (4 * j + i) * 16 + 4 * q, vsubq_f32(neon_col_f32(c4, idx[i]), z[q]));
        }
}

/* Panel of tile t for columns [k0, k1), k0 a multiple of 32, k1 - k0 <= NEON_KC:
 * D[(k - k0) * 16 + lane] = (float)q[16 t + lane, k] - z[lane]. */
PEQA_NEON_INLINE void neon_panel(const peqa_qw *w, int bits, int64_t t, int64_t k0, int64_t k1,
                                 const float32x4_t z[4], float *D)
{
    for (int64_t c = k0 / PEQA_KB; c * PEQA_KB < k1; c++)
        neon_panel_cell(peqa_cell(w, t, c), bits, z, D + (c * PEQA_KB - k0) * PEQA_NR);
}

/* ---- fp32 microkernels: C += A . B with the reduction index k sequential --------------------
 * C is MR x 16 (MR = 4 or 1) in registers, c[4 i + v] = C[i][4 v .. 4 v + 3]; A is MR rows with
 * leading dimension lda (only columns 0 .. nk-1 are read); B is nk rows of 16 floats with
 * leading dimension ldb. For each element: c = fma(A[i][k], B[k][e], c) for k = 0, 1, .., nk-1,
 * exactly the reference's "p = fmaf(x, d, p)" (forward, scale gradient: A = x, B = the panel
 * D) and "dx = fmaf(dy, wh, dx)" (input gradient: A = dY, B = rows of the dequantized W).
 * Four k at a time A is loaded as one vector per row and broadcast by lane (fmla by element);
 * the remaining k use a broadcast load. The order of the fmas per element is the same. */

/* One k step of the 4 x 16 tile: c[4 i + v] = fma(a_i, b[4 v..], c[4 i + v]); a_i broadcast. */
PEQA_NEON_INLINE void neon_fma_4x16(float32x4_t c[16], const float *b, float32x4_t a0, float32x4_t a1,
                                    float32x4_t a2, float32x4_t a3)
{
    float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
    c[0] = vfmaq_f32(c[0], b0, a0), c[1] = vfmaq_f32(c[1], b1, a0);
    c[2] = vfmaq_f32(c[2], b2, a0), c[3] = vfmaq_f32(c[3], b3, a0);
    c[4] = vfmaq_f32(c[4], b0, a1), c[5] = vfmaq_f32(c[5], b1, a1);
    c[6] = vfmaq_f32(c[6], b2, a1), c[7] = vfmaq_f32(c[7], b3, a1);
    c[8] = vfmaq_f32(c[8], b0, a2), c[9] = vfmaq_f32(c[9], b1, a2);
    c[10] = vfmaq_f32(c[10], b2, a2), c[11] = vfmaq_f32(c[11], b3, a2);
    c[12] = vfmaq_f32(c[12], b0, a3), c[13] = vfmaq_f32(c[13], b1, a3);
    c[14] = vfmaq_f32(c[14], b2, a3), c[15] = vfmaq_f32(c[15], b3, a3);
}

PEQA_NEON_INLINE void neon_mk_4x16(const float *B, int64_t ldb, int64_t nk, const float *A, int64_t lda,
                                   float32x4_t c[16])
{
    const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
    float32x4_t r[16]; /* a private copy the compiler keeps in registers across the loop */
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = c[i];
    int64_t k = 0;
    for (; k + 4 <= nk; k += 4) {
        float32x4_t x0 = vld1q_f32(a0 + k), x1 = vld1q_f32(a1 + k), x2 = vld1q_f32(a2 + k),
                    x3 = vld1q_f32(a3 + k);
        neon_fma_4x16(r, B + (k + 0) * ldb, vdupq_laneq_f32(x0, 0), vdupq_laneq_f32(x1, 0),
                      vdupq_laneq_f32(x2, 0), vdupq_laneq_f32(x3, 0));
        neon_fma_4x16(r, B + (k + 1) * ldb, vdupq_laneq_f32(x0, 1), vdupq_laneq_f32(x1, 1),
                      vdupq_laneq_f32(x2, 1), vdupq_laneq_f32(x3, 1));
        neon_fma_4x16(r, B + (k + 2) * ldb, vdupq_laneq_f32(x0, 2), vdupq_laneq_f32(x1, 2),
                      vdupq_laneq_f32(x2, 2), vdupq_laneq_f32(x3, 2));
        neon_fma_4x16(r, B + (k + 3) * ldb, vdupq_laneq_f32(x0, 3), vdupq_laneq_f32(x1, 3),
                      vdupq_laneq_f32(x2, 3), vdupq_laneq_f32(x3, 3));
    }
    for (; k < nk; k++)
        neon_fma_4x16(r, B + k * ldb, vld1q_dup_f32(a0 + k), vld1q_dup_f32(a1 + k), vld1q_dup_f32(a2 + k),
                      vld1q_dup_f32(a3 + k));
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) c[i] = r[i];
}

PEQA_NEON_INLINE void neon_fma_1x16(float32x4_t c[4], const float *b, float32x4_t a)
{
    c[0] = vfmaq_f32(c[0], vld1q_f32(b), a), c[1] = vfmaq_f32(c[1], vld1q_f32(b + 4), a);
    c[2] = vfmaq_f32(c[2], vld1q_f32(b + 8), a), c[3] = vfmaq_f32(c[3], vld1q_f32(b + 12), a);
}

PEQA_NEON_INLINE void neon_mk_1x16(const float *B, int64_t ldb, int64_t nk, const float *A, float32x4_t c[4])
{
    int64_t k = 0;
    for (; k + 4 <= nk; k += 4) {
        float32x4_t x = vld1q_f32(A + k);
        neon_fma_1x16(c, B + (k + 0) * ldb, vdupq_laneq_f32(x, 0));
        neon_fma_1x16(c, B + (k + 1) * ldb, vdupq_laneq_f32(x, 1));
        neon_fma_1x16(c, B + (k + 2) * ldb, vdupq_laneq_f32(x, 2));
        neon_fma_1x16(c, B + (k + 3) * ldb, vdupq_laneq_f32(x, 3));
    }
    for (; k < nk; k++) neon_fma_1x16(c, B + k * ldb, vld1q_dup_f32(A + k));
}

/* c[i] = 0 (first pass) or the n values parked at p (later passes). */
PEQA_NEON_INLINE void neon_acc_init(float32x4_t *c, int n, const float *p)
{
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) c[i] = p ? vld1q_f32(p + 4 * i) : vdupq_n_f32(0.0f);
}
PEQA_NEON_INLINE void neon_acc_park(const float32x4_t *c, int n, float *p)
{
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) vst1q_f32(p + 4 * i, c[i]);
}

/* ---- partial tiles -------------------------------------------------------------------------- */

/* The 16 lanes of a tile from a row segment of which only nv (1 .. 16) entries exist; the
 * missing lanes read as 0 and are never stored anywhere. */
PEQA_NEON_INLINE void neon_load_tile(const float *p, int nv, float32x4_t v[4])
{
    if (nv == PEQA_NR) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) v[q] = vld1q_f32(p + 4 * q);
        return;
    }
    float tmp[PEQA_NR] = {0};
    memcpy(tmp, p, (size_t)nv * sizeof(float));
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) v[q] = vld1q_f32(tmp + 4 * q);
}

/* ---- int8 path (SPEC §7): shared by qint8_neon.c and qint8_dotprod.c ------------------------- */

/* Codes as signed bytes for the signed dot products: b <= 4 codes (<= 15) are already valid int8;
 * 8-bit codes are biased q' = q - 128 (xor 0x80) and the driver adds 128 * Σ xq back, exactly. */
PEQA_NEON_INLINE int8x16_t neon_codes4_s8(const uint32_t *cell, int bits, int j, int q)
{
    uint32x4_t c4 = neon_codes4(cell, bits, j, q);
    if (bits == 8) c4 = veorq_u32(c4, vdupq_n_u32(0x80808080u));
    return vreinterpretq_s8_u32(c4);
}

/* panel[(4 j + q) * 16 ..] = codes4_s8(j, q): the whole cell, 512 bytes. */
PEQA_NEON_INLINE void neon_i8_panel(const uint32_t *cell, int bits, int8_t *panel)
{
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) vst1q_s8(panel + (4 * j + q) * 16, neon_codes4_s8(cell, bits, j, q));
}

/* The 4 bytes xq[4 j .. 4 j + 3] (lane L = j % 4 of xlo / xhi) repeated in all four 32-bit lanes:
 * the activation operand facing codes4(j, .). L must be a literal at every call site. */
#define NEON_XPAT(xv, L) vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(xv), L))

/* Σ of 32 int8 values (exact: |sum| <= 32 * 127). */
PEQA_NEON_INLINE int32_t neon_sum32_s8(const int8_t *x)
{
    return (int32_t)vaddlvq_s8(vld1q_s8(x)) + (int32_t)vaddlvq_s8(vld1q_s8(x + 16));
}

/* The float epilogue of one block for one activation row and the 16 rows of a tile, the
 * reference's sequence per lane:
 *     t = fmaf(-z, (float)xsum, (float)isum);   a = fmaf(xs, t, a)
 * isum arrives as Σ xq * q' (biased codes when bits == 8) and is corrected first (exact). */
PEQA_NEON_INLINE void neon_i8_block_update(const int32x4_t is[4], int32_t xsum, int bits, float xsb,
                                           const float32x4_t negz[4], float32x4_t a[4])
{
    float32x4_t xsv = vdupq_n_f32((float)xsum), xbv = vdupq_n_f32(xsb);
    int32x4_t corr = vdupq_n_s32(bits == 8 ? 128 * xsum : 0);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        float32x4_t t = vfmaq_f32(vcvtq_f32_s32(vaddq_s32(is[q], corr)), negz[q], xsv);
        a[q] = vfmaq_f32(a[q], xbv, t);
    }
}

/* The 32 bytes of block c of row xr, or a zero-padded copy in buf when the block is the short
 * last one (bytes past K are never read; zeros add nothing to an integer sum). */
PEQA_NEON_INLINE const int8_t *neon_xblock(const int8_t *xr, int64_t nk, int8_t buf[PEQA_KB])
{
    if (nk == PEQA_KB) return xr;
    memset(buf, 0, PEQA_KB);
    memcpy(buf, xr, (size_t)nk);
    return buf;
}

/* Integer dot products of one cell with MR activation rows: is[4 i + q] = Σ_k x_i[k] * q'[row, k]
 * for the 4 quads q of the tile, given the cell's panel (neon_i8_panel) and rows x_i = x + i * ldx
 * of 32 readable bytes each. mr = 1 .. the kernel's MR. */
typedef void (*neon_i8_mk_fn)(const int8_t *panel, const int8_t *x, int64_t ldx, int mr, int bits,
                              int32x4_t *is);

/* The int8 forward (reference: peqa_fwd_i8__ref). Per tile and chunk of up to NEON_MC rows:
 *   for each group j: A = 0; for each block c of j: decode the cell once into the int8 panel,
 *   then for every MR rows: integer sums by mk, float epilogue into A;  ACC = fma(s, A, ACC).
 * ACC and A are per (row, lane) and live in small stack arrays between blocks and groups. */
PEQA_NEON_INLINE void neon_fwd_i8_driver(const peqa_qw *w, int bits, int mrmax, neon_i8_mk_fn mk, int64_t m0,
                                         int64_t m1, int64_t n0, int64_t n1, const int8_t *xq, int64_t ldq,
                                         const float *xs, int64_t ldxs, float *y, int64_t ldy)
{
    _Alignas(16) int8_t panel[PEQA_KB * PEQA_NR];
    _Alignas(16) int8_t xt[4 * PEQA_KB];
    _Alignas(16) float acc[NEON_MC * PEQA_NR], a[NEON_MC * PEQA_NR];
    for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
        int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
        for (int64_t mc0 = m0; mc0 < m1; mc0 += NEON_MC) {
            int mc = (int)neon_min(NEON_MC, m1 - mc0);
            memset(acc, 0, sizeof(float) * PEQA_NR * (size_t)mc);
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
                const float *zt = w->z + (t * w->ng + j) * PEQA_NR, *st = w->s + (t * w->ng + j) * PEQA_NR;
                float32x4_t negz[4];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) negz[q] = vnegq_f32(vld1q_f32(zt + 4 * q));
                memset(a, 0, sizeof(float) * PEQA_NR * (size_t)mc);
                for (int64_t c = gk0 / PEQA_KB; c * PEQA_KB < gk1; c++) {
                    int64_t nk = neon_min(PEQA_KB, w->k - c * PEQA_KB);
                    neon_i8_panel(peqa_cell(w, t, c), bits, panel);
                    for (int m = 0; m < mc; m += mrmax) {
                        int mr = (int)neon_min(mrmax, mc - m);
                        const int8_t *xp = xq + (mc0 + m) * ldq + c * PEQA_KB;
                        int64_t lp = ldq;
                        if (nk < PEQA_KB) {
                            for (int i = 0; i < mr; i++) neon_xblock(xp + i * ldq, nk, xt + i * PEQA_KB);
                            xp = xt, lp = PEQA_KB;
                        }
                        int32x4_t is[16];
                        mk(panel, xp, lp, mr, bits, is);
                        for (int i = 0; i < mr; i++) {
                            float32x4_t av[4];
                            float *ar = a + (m + i) * PEQA_NR;
                            neon_acc_init(av, 4, ar);
                            neon_i8_block_update(is + 4 * i, neon_sum32_s8(xp + i * lp), bits,
                                                 xs[(mc0 + m + i) * ldxs + c], negz, av);
                            neon_acc_park(av, 4, ar);
                        }
                    }
                }
                for (int m = 0; m < mc; m++)
#pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) { /* acc = fmaf(s, a, acc) */
                        float *ap = acc + m * PEQA_NR + 4 * q;
                        vst1q_f32(ap, vfmaq_f32(vld1q_f32(ap), vld1q_f32(st + 4 * q),
                                                vld1q_f32(a + m * PEQA_NR + 4 * q)));
                    }
            }
            for (int m = 0; m < mc; m++)
                memcpy(y + (mc0 + m) * ldy + t * PEQA_NR, acc + m * PEQA_NR, sizeof(float) * (size_t)nv);
        }
    }
}

/* Integer dot products of one cell with ONE activation row, decoding codes4 on the fly (GEMV):
 * returns Σ_k x[k] * q'[row, k] for the 4 rows of quad q; xlo / xhi are the block's 32 bytes. */
typedef int32x4_t (*neon_i8_quad_fn)(const uint32_t *cell, int bits, int q, int8x16_t xlo, int8x16_t xhi);

/* The int8 forward for few activation rows (the M = 1 slot): like the driver above, without a
 * panel: every cell is decoded straight into the dot products, a and acc stay in registers. */
PEQA_NEON_INLINE void neon_fwd_i8_gemv_driver(const peqa_qw *w, int bits, neon_i8_quad_fn quad, int64_t m0,
                                              int64_t m1, int64_t n0, int64_t n1, const int8_t *xq,
                                              int64_t ldq, const float *xs, int64_t ldxs, float *y,
                                              int64_t ldy)
{
    _Alignas(16) int8_t xt[PEQA_KB];
    for (int64_t m = m0; m < m1; m++)
        for (int64_t t = n0 / PEQA_NR; t * PEQA_NR < n1; t++) {
            int nv = (int)neon_min(PEQA_NR, n1 - t * PEQA_NR);
            float32x4_t acc[4];
            neon_acc_init(acc, 4, NULL);
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t gk0 = j * w->g, gk1 = neon_min(gk0 + w->g, w->k);
                const float *zt = w->z + (t * w->ng + j) * PEQA_NR, *st = w->s + (t * w->ng + j) * PEQA_NR;
                float32x4_t negz[4], a[4];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) negz[q] = vnegq_f32(vld1q_f32(zt + 4 * q));
                neon_acc_init(a, 4, NULL);
                for (int64_t c = gk0 / PEQA_KB; c * PEQA_KB < gk1; c++) {
                    const int8_t *xp =
                        neon_xblock(xq + m * ldq + c * PEQA_KB, neon_min(PEQA_KB, w->k - c * PEQA_KB), xt);
                    int8x16_t xlo = vld1q_s8(xp), xhi = vld1q_s8(xp + 16);
                    const uint32_t *cell = peqa_cell(w, t, c);
                    int32x4_t is[4];
#pragma GCC unroll 4
                    for (int q = 0; q < 4; q++) is[q] = quad(cell, bits, q, xlo, xhi);
                    neon_i8_block_update(is, neon_sum32_s8(xp), bits, xs[m * ldxs + c], negz, a);
                }
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) acc[q] = vfmaq_f32(acc[q], vld1q_f32(st + 4 * q), a[q]);
            }
            float out[PEQA_NR];
            neon_acc_park(acc, 4, out);
            memcpy(y + m * ldy + t * PEQA_NR, out, sizeof(float) * (size_t)nv);
        }
}

#endif
