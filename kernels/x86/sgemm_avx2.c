/* sgemm kernels, AVX2 + FMA: dense fp32 products (full-precision mode, attention; SPEC §6).
 *
 *   sgemm_nt   C[m, n] = Σ_k A[m, k] · B[n, k]     output columns n in lanes, reduction k
 *   sgemm_nn   C[m, k] = Σ_n A[m, n] · B[n, k]     output columns k in lanes, reduction n
 *   sgemm_tn   C[n, k] = Σ_m A[m, n] · B[m, k]     output columns k in lanes, reduction m
 *
 * Every output element runs exactly the reference's sequence (kernels/ref/sgemm_ref.c):
 *     c = 0;  for p = 0 .. red-1 ascending:  c = fma(a_p, b_p, c)
 * one vfmadd231ps lane per fmaf, lanes over independent outputs (16 consecutive output columns),
 * never over the reduction index. Blocking the reduction into KC-long pieces only parks the
 * running sum in C between pieces (a store and a reload, which never change a bit) and resumes
 * the same chain, so the block sizes below change speed, never results.
 *
 * All three forms are one engine: "MR rows of a broadcast operand times a 16-lane row of a
 * packed B panel, accumulated over the reduction index" (the same engine as qgrad_avx2.c).
 * What differs is where the broadcast operand comes from and how B is packed:
 *
 *   form  broadcast a(row i, step p)             B panel bp[p][l], l = 0..15 (output column j+l)
 *   nt    A[i, p]  in place: row i, step +1      B[j+l, p]  -- a transpose, 8 x 8 blocks in registers
 *   nn    A[i, p]  in place: row i, step +1      B[p, j+l]  -- a copy, 16 floats per row
 *   tn    A[p, i]  packed: ap[p][i], six         B[p, j+l]  -- a copy, 16 floats per row
 *                  consecutive floats per step
 * In nt / nn the six broadcast streams of A are sequential, so A is read in place. In tn the six
 * operands of one step are neighbours in one row of A, but consecutive steps are lda apart: with
 * the large power-of-two strides of real layers (lda = 4096: one page per step) every step costs
 * a TLB miss and all steps alias into one L1 set. So tn copies an MC_TN x KC block of A, row
 * runs of MC_TN floats, into a dense scratch with a short stride (measured on Zen 3, M = 256,
 * N = 4096, K = 512: ~45 GFLOP/s in place, ~65 packed). Packing is only copying: bits are
 * unchanged. B panels are zero-padded past the last valid column (lanes >= nv); those lanes are
 * computed but never stored, and no load ever reads past a row's end (vmaskmovps for every tail).
 *
 * Loop nest (BLIS order, with blocks small enough for the stack):
 *   for each reduction block p0 (KC steps):          C is reloaded when p0 > 0
 *     for each column block j0 (NC columns): pack B[p0.., j0..] once, as NC / 16 panels of KC x 16
 *       for each row block i0 (MC rows: the A block MC x KC stays in L2)   [tn: pack it]
 *         for each 16-column panel (KC x 16 floats, stays in L1)
 *           for each MR-row strip: the 6 x 16 micro-kernel over the kc steps
 * Every B element is packed once per call; tn's A elements once per column block.
 * Stack use: nt / nn 64 KB (B block), tn 100 KB (B block 64 KB + A block 36 KB).
 * Nothing is allocated and nothing can fail.
 */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include <immintrin.h>
#include <stdint.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Micro-tile: MR rows x 16 columns (2 ymm per row). */
#define MR 6
/* Blocking (cache sizes only; they change no bit). Measured on Zen 3 at M = N = K = 512 (and
 * 256 x 4096 x 512): for nt / nn, KC in 128..384, NC in 32..128 and MC in 72..240 are all within
 * the machine's noise of each other; tn gains from a wider NC (fewer copies of its A block),
 * bought with a shorter KC to keep the stack small.
 *   nt / nn  KC = 256: a panel is KC x 16 floats = 16 KB, half of L1D;
 *            NC = 64: the B block is KC x NC floats = 64 KB of stack;
 *            MC = 144: the A block touched by one panel sweep, MC x KC floats = 144 KB of L2.
 *   tn       KC = 128 (8 KB panels), NC = 128 (64 KB B block), MC = 72 (36 KB A block). */
#ifndef SG_KC
#define SG_KC 256
#endif
#ifndef SG_NC
#define SG_NC 64
#endif
#ifndef SG_MC
#define SG_MC 144
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
_Static_assert(SG_KC >= 8 && SG_NC % 16 == 0 && SG_MC % MR == 0, "block sizes");
_Static_assert(SG_KC_TN >= 8 && SG_NC_TN % 16 == 0 && SG_MC_TN % MR == 0, "tn block sizes");

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Lanes l < n (n clamped to 0..8) all-ones: the mask for maskload/maskstore of a row tail. */
static inline __m256i lane_mask(int64_t n)
{
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 16 consecutive floats as two ymm; when valid < 16 only the first `valid` are read and the
 * rest of the lanes are 0 (vmaskmovps never touches masked-off lanes). */
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

/* ---- the micro-kernel ----------------------------------------------------------------------
 * For rows i < mr and lanes l < 16 (c[i][0] = lanes 0..7, c[i][1] = lanes 8..15):
 *     acc = resume ? C[i][l] : 0
 *     for p = 0 .. kc-1 ascending:  acc = fma(a[i * ars + p * aks], bp[p * 16 + l], acc)
 *     C[i][l] = acc                                   (only lanes l < nv are loaded / stored)
 * Register plan (mr = 6): 12 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm. Twelve
 * independent chains cover the FMA latency (4 cycles) times Zen 3's two FMA pipes; each step
 * issues 2 aligned B loads and 6 broadcast loads for 12 FMAs, well inside three load ports.
 * mr, and one of ars / aks, are literals at every call (kern_row / kern_packed), so the row tests
 * fold away and the broadcast addresses are base + small constant offsets. */
ALWAYS_INLINE void kern_x16(const int mr, const float *a, const int64_t ars, const int64_t aks,
                            const float *bp, int64_t kc, float *c, int64_t ldc, int64_t nv, int resume)
{
    const float *a0 = a, *a1 = a + (mr > 1 ? ars : 0), *a2 = a + (mr > 2 ? 2 * ars : 0),
                *a3 = a + (mr > 3 ? 3 * ars : 0), *a4 = a + (mr > 4 ? 4 * ars : 0),
                *a5 = a + (mr > 5 ? 5 * ars : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (resume) {
        load16(c, nv, &c00, &c01);
        if (mr > 1) load16(c + ldc, nv, &c10, &c11);
        if (mr > 2) load16(c + 2 * ldc, nv, &c20, &c21);
        if (mr > 3) load16(c + 3 * ldc, nv, &c30, &c31);
        if (mr > 4) load16(c + 4 * ldc, nv, &c40, &c41);
        if (mr > 5) load16(c + 5 * ldc, nv, &c50, &c51);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; p++) {
        const int64_t o = p * aks;
        const __m256 b0 = _mm256_load_ps(bp + 16 * p), b1 = _mm256_load_ps(bp + 16 * p + 8);
        __m256 t = _mm256_broadcast_ss(a0 + o);
        c00 = _mm256_fmadd_ps(t, b0, c00), c01 = _mm256_fmadd_ps(t, b1, c01);
        if (mr > 1) {
            t = _mm256_broadcast_ss(a1 + o);
            c10 = _mm256_fmadd_ps(t, b0, c10), c11 = _mm256_fmadd_ps(t, b1, c11);
        }
        if (mr > 2) {
            t = _mm256_broadcast_ss(a2 + o);
            c20 = _mm256_fmadd_ps(t, b0, c20), c21 = _mm256_fmadd_ps(t, b1, c21);
        }
        if (mr > 3) {
            t = _mm256_broadcast_ss(a3 + o);
            c30 = _mm256_fmadd_ps(t, b0, c30), c31 = _mm256_fmadd_ps(t, b1, c31);
        }
        if (mr > 4) {
            t = _mm256_broadcast_ss(a4 + o);
            c40 = _mm256_fmadd_ps(t, b0, c40), c41 = _mm256_fmadd_ps(t, b1, c41);
        }
        if (mr > 5) {
            t = _mm256_broadcast_ss(a5 + o);
            c50 = _mm256_fmadd_ps(t, b0, c50), c51 = _mm256_fmadd_ps(t, b1, c51);
        }
    }
    store16(c, nv, c00, c01);
    if (mr > 1) store16(c + ldc, nv, c10, c11);
    if (mr > 2) store16(c + 2 * ldc, nv, c20, c21);
    if (mr > 3) store16(c + 3 * ldc, nv, c30, c31);
    if (mr > 4) store16(c + 4 * ldc, nv, c40, c41);
    if (mr > 5) store16(c + 5 * ldc, nv, c50, c51);
}

/* Broadcast operand read in place from rows of A (nt, nn): row i at a + i * lda, step p at +p. */
static void kern_row(int mr, const float *a, int64_t lda, const float *bp, int64_t kc, float *c,
                     int64_t ldc, int64_t nv, int resume)
{
    switch (mr) {
    case 1: kern_x16(1, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 2: kern_x16(2, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 3: kern_x16(3, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 4: kern_x16(4, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    case 5: kern_x16(5, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    default: kern_x16(6, a, lda, 1, bp, kc, c, ldc, nv, resume); break;
    }
}

/* Broadcast operand from the packed tn block: row i at a + i, step p at + p * lds. */
static void kern_packed(int mr, const float *a, int64_t lds, const float *bp, int64_t kc, float *c,
                        int64_t ldc, int64_t nv, int resume)
{
    switch (mr) {
    case 1: kern_x16(1, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 2: kern_x16(2, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 3: kern_x16(3, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 4: kern_x16(4, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    case 5: kern_x16(5, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    default: kern_x16(6, a, 1, lds, bp, kc, c, ldc, nv, resume); break;
    }
}

/* ---- packing ------------------------------------------------------------------------------ */

/* nn / tn: the B block of nc columns as panels: bp[q * kc * 16 + p * 16 + l] = b[p * ldb + 16 q + l]
 * for 16 q + l < nc, 0 past nc (the last panel's padding lanes);  p < kc.
 * Rows of B are walked in order, each one contiguous run of nc floats, so the reads stream
 * (one stride, whole cache lines) instead of hopping a 64-byte piece per row and panel. */
static void pack_b_copy(const float *b, int64_t ldb, int64_t kc, int64_t nc, float *bp)
{
    const int64_t full = nc / 16, rest = nc % 16, ps = kc * 16;
    const __m256i m0 = lane_mask(rest), m1 = lane_mask(rest - 8);
    for (int64_t p = 0; p < kc; p++, b += ldb) {
        float *o = bp + p * 16;
        for (int64_t q = 0; q < full; q++) {
            _mm256_store_ps(o + q * ps, _mm256_loadu_ps(b + 16 * q));
            _mm256_store_ps(o + q * ps + 8, _mm256_loadu_ps(b + 16 * q + 8));
        }
        if (rest) {
            _mm256_store_ps(o + full * ps, _mm256_maskload_ps(b + 16 * full, m0));
            _mm256_store_ps(o + full * ps + 8, _mm256_maskload_ps(b + 16 * full + 8, m1));
        }
    }
}

/* In-register 8 x 8 transpose: on return r[j] lane i = (old) r[i] lane j.
 * unpack pairs rows, shuffle builds 4-row columns per 128-bit half, permute2f128 joins halves. */
ALWAYS_INLINE void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* nt: bp[p * 16 + l] = b[l * ldb + p] for l < nv, 0 for nv <= l < 16;  p < kc.
 * Each half h of the panel (lanes 8h .. 8h+7) is built from 8 x 8 blocks: 8 rows of B, 8 steps
 * each, transposed in registers. Rows l >= nv are zero vectors (their pointers are never formed);
 * the last block of a row reads only its kc % 8 remaining floats (vmaskmovps). */
static void pack_b_transpose(const float *b, int64_t ldb, int64_t kc, int64_t nv, float *bp)
{
    for (int h = 0; h < 2; h++) {
        const int nh = (int)(nv - 8 * h < 0 ? 0 : nv - 8 * h > 8 ? 8 : nv - 8 * h);
        const float *rows[8];
        for (int i = 0; i < 8; i++) rows[i] = i < nh ? b + (8 * h + i) * ldb : NULL;
        float *out = bp + 8 * h;
        if (nh == 0) {
            for (int64_t p = 0; p < kc; p++) _mm256_store_ps(out + 16 * p, _mm256_setzero_ps());
            continue;
        }
        int64_t p0 = 0;
        __m256 r[8];
        if (nh == 8) {
            for (; p0 + 8 <= kc; p0 += 8) {
                for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(rows[i] + p0);
                transpose8(r);
                for (int j = 0; j < 8; j++) _mm256_store_ps(out + 16 * (p0 + j), r[j]);
            }
        }
        for (; p0 < kc; p0 += 8) {
            const int64_t kr = min64(8, kc - p0);
            const __m256i m = lane_mask(kr);
            for (int i = 0; i < 8; i++) r[i] = i < nh ? _mm256_maskload_ps(rows[i] + p0, m) : _mm256_setzero_ps();
            transpose8(r);
            for (int j = 0; j < kr; j++) _mm256_store_ps(out + 16 * (p0 + j), r[j]);
        }
    }
}

/* tn: the A block of mc output rows, ap[p * SG_MC_TN + i] = a[p * lda + i] for p < kc, i < mc.
 * Each row of A contributes one contiguous run of mc floats (masked at its end). */
static void pack_a_rows(const float *a, int64_t lda, int64_t kc, int64_t mc, float *ap)
{
    const int64_t full = mc / 8 * 8;
    const __m256i m = lane_mask(mc - full);
    for (int64_t p = 0; p < kc; p++, a += lda, ap += SG_MC_TN) {
        for (int64_t i = 0; i < full; i += 8) _mm256_storeu_ps(ap + i, _mm256_loadu_ps(a + i));
        if (full < mc) _mm256_maskstore_ps(ap + full, m, _mm256_maskload_ps(a + full, m));
    }
}

/* ---- the driver ------------------------------------------------------------------------------ */
enum { FORM_NT, FORM_NN, FORM_TN };

/* Output rows [m0, m1), columns [c0, c1) of C; `red` reduction steps; bp: SG_KC x SG_NC floats,
 * 32-byte aligned. The B block of one (p0, j0) is packed once, as SG_NC / 16 panels of kc x 16,
 * and then serves every row of the range. */
ALWAYS_INLINE void drive(const int form, int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                         float *bp, float *ap)
{
    if (m0 >= m1 || c0 >= c1) return;
    if (red <= 0) { /* the empty sum: c = 0, as the reference */
        for (int64_t i = m0; i < m1; i++)
            for (int64_t j = c0; j < c1; j += 16) store16(c + i * ldc + j, c1 - j, _mm256_setzero_ps(), _mm256_setzero_ps());
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
                        for (int64_t i = 0; i < mc; i += MR)
                            kern_packed((int)min64(MR, mc - i), ap + i, SG_MC_TN, bp + q * kc * 16, kc,
                                        c + (i0 + i) * ldc + j, ldc, nv, resume);
                    }
                }
                continue;
            }
            for (int64_t i0 = m0; i0 < m1; i0 += SG_MC) {
                const int64_t i1 = min64(i0 + SG_MC, m1);
                for (int64_t q = 0; 16 * q < nc; q++) {
                    const int64_t j = j0 + 16 * q, nv = min64(16, nc - 16 * q);
                    for (int64_t i = i0; i < i1; i += MR)
                        kern_row((int)min64(MR, i1 - i), a + i * lda + p0, lda, bp + q * kc * 16, kc,
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
        _Alignas(32) float bp[SG_KC * SG_NC];                                                             \
        drive(FORM, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, NULL);                               \
    }
SGEMM_ENTRY(peqa_sgemm_nt_6x16__avx2, FORM_NT)
SGEMM_ENTRY(peqa_sgemm_nn_6x16__avx2, FORM_NN)
#undef SGEMM_ENTRY

static void peqa_sgemm_tn_6x16__avx2(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                                     const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                                     int64_t ldc)
{
    _Alignas(32) float bp[SG_KC_TN * SG_NC_TN];
    _Alignas(32) float ap[SG_KC_TN * SG_MC_TN];
    drive(FORM_TN, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, ap);
}

void peqa_init_sgemm__avx2(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX2 + FMA is all these kernels need; the caller checked it */
    k->sgemm_nt = peqa_sgemm_nt_6x16__avx2, k->sgemm_nt_name = "peqa_sgemm_nt_6x16__avx2";
    k->sgemm_nn = peqa_sgemm_nn_6x16__avx2, k->sgemm_nn_name = "peqa_sgemm_nn_6x16__avx2";
    k->sgemm_tn = peqa_sgemm_tn_6x16__avx2, k->sgemm_tn_name = "peqa_sgemm_tn_6x16__avx2";
}
