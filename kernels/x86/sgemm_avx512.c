/* sgemm kernels, AVX-512 (F, BW, VL, DQ) + FMA: dense fp32 products (full-precision mode,
 * attention; SPEC §6).
 *
 *   sgemm_nt   C[m, n] = Σ_k A[m, k] · B[n, k]     output columns n in lanes, reduction k
 *   sgemm_nn   C[m, k] = Σ_n A[m, n] · B[n, k]     output columns k in lanes, reduction n
 *   sgemm_tn   C[n, k] = Σ_m A[m, n] · B[m, k]     output columns k in lanes, reduction m
 *
 * Every output element runs exactly the reference's sequence (kernels/ref/sgemm_ref.c):
 *     c = 0;  for p = 0 .. red-1 ascending:  c = fma(a_p, b_p, c)
 * one vfmadd231ps lane per fmaf, lanes over 16 consecutive output columns, never over the
 * reduction index; reduction blocks only park the running sum in C (store and reload change no
 * bit). This is sgemm_avx2.c with its micro-kernel widened: the packing and the loop nest are
 * the same code (its 256-bit packing routines run unchanged here; see that file for the
 * reasons behind the three forms and the block sizes), and a 16-column panel row is one zmm.
 *
 * Micro-kernel: MR = 12 rows x 16 columns. Register plan: 12 accumulators (one zmm per row),
 * 1 B vector, the broadcasts (A operands, as {1to16} memory operands where the compiler folds
 * them): 12 independent chains cover the FMA latency (4) x two 512-bit FMA ports (Ice Lake /
 * Sapphire Rapids server parts); Zen 4 needs 4. Per step 1 aligned B load and 12 broadcasts
 * feed 12 FMAs. Column tails use zero-masked loads and masked stores (lanes >= nv are computed
 * on the zero padding of the panel and never stored); row tails use the instantiations for
 * 1 .. 11 rows. SG_MC (144) and SG_MC_TN (72) are multiples of 12.
 */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include <stdint.h>
#include "../peqa_kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Micro-tile: MR rows x 16 columns (one zmm per row). */
#define MR 12
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

/* 16 consecutive floats stored from two ymm, only the first `valid` (the empty-sum path). */
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
 * For rows i < mr and lanes l < 16:
 *     acc = resume ? C[i][l] : 0
 *     for p = 0 .. kc-1 ascending:  acc = fma(a[i * ars + p * aks], bp[p * 16 + l], acc)
 *     C[i][l] = acc                                   (only lanes l < nv are loaded / stored)
 * mr, and one of ars / aks, are literals at every call (kern_row / kern_packed). */
ALWAYS_INLINE void kern_z16(const int mr, const float *a, const int64_t ars, const int64_t aks, const float *bp,
                            int64_t kc, float *c, int64_t ldc, int64_t nv, int resume)
{
    const __mmask16 m = (__mmask16)(nv >= 16 ? 0xffffu : (1u << nv) - 1u);
    __m512 acc[MR];
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) acc[i] = resume ? _mm512_maskz_loadu_ps(m, c + i * ldc) : _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b = _mm512_load_ps(bp + 16 * p);
#pragma GCC unroll 12
        for (int i = 0; i < mr; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * ars + p * aks]), b, acc[i]);
    }
#pragma GCC unroll 12
    for (int i = 0; i < mr; i++) _mm512_mask_storeu_ps(c + i * ldc, m, acc[i]);
}

typedef void (*kern_fn)(const float *, int64_t, const float *, int64_t, float *, int64_t, int64_t, int);
/* Broadcast operand read in place from rows of A (nt, nn): row i at a + i * lda, step p at +p;
 * from the packed tn block: row i at a + i, step p at + p * lds. */
#define KERN_N(N)                                                                                          \
    static void kern_row_##N(const float *a, int64_t lda, const float *bp, int64_t kc, float *c, int64_t ldc, \
                             int64_t nv, int resume)                                                       \
    {                                                                                                      \
        kern_z16(N, a, lda, 1, bp, kc, c, ldc, nv, resume);                                                \
    }                                                                                                      \
    static void kern_packed_##N(const float *a, int64_t lds, const float *bp, int64_t kc, float *c,          \
                                int64_t ldc, int64_t nv, int resume)                                       \
    {                                                                                                      \
        kern_z16(N, a, 1, lds, bp, kc, c, ldc, nv, resume);                                                \
    }
KERN_N(1) KERN_N(2) KERN_N(3) KERN_N(4) KERN_N(5) KERN_N(6)
KERN_N(7) KERN_N(8) KERN_N(9) KERN_N(10) KERN_N(11) KERN_N(12)
#undef KERN_N
static const kern_fn kern_rows[MR] = {kern_row_1, kern_row_2, kern_row_3, kern_row_4,  kern_row_5,  kern_row_6,
                                      kern_row_7, kern_row_8, kern_row_9, kern_row_10, kern_row_11, kern_row_12};
static const kern_fn kern_packeds[MR] = {kern_packed_1, kern_packed_2, kern_packed_3,  kern_packed_4,
                                         kern_packed_5, kern_packed_6, kern_packed_7,  kern_packed_8,
                                         kern_packed_9, kern_packed_10, kern_packed_11, kern_packed_12};
static void kern_row(int mr, const float *a, int64_t lda, const float *bp, int64_t kc, float *c, int64_t ldc,
                     int64_t nv, int resume)
{
    kern_rows[mr - 1](a, lda, bp, kc, c, ldc, nv, resume);
}
static void kern_packed(int mr, const float *a, int64_t lds, const float *bp, int64_t kc, float *c, int64_t ldc,
                        int64_t nv, int resume)
{
    kern_packeds[mr - 1](a, lds, bp, kc, c, ldc, nv, resume);
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
 * 64-byte aligned. The B block of one (p0, j0) is packed once, as SG_NC / 16 panels of kc x 16,
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
        _Alignas(64) float bp[SG_KC * SG_NC];                                                             \
        drive(FORM, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, NULL);                               \
    }
SGEMM_ENTRY(peqa_sgemm_nt_12x16__avx512, FORM_NT)
SGEMM_ENTRY(peqa_sgemm_nn_12x16__avx512, FORM_NN)
#undef SGEMM_ENTRY

static void peqa_sgemm_tn_12x16__avx512(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                                     const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                                     int64_t ldc)
{
    _Alignas(64) float bp[SG_KC_TN * SG_NC_TN];
    _Alignas(64) float ap[SG_KC_TN * SG_MC_TN];
    drive(FORM_TN, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, ap);
}

void peqa_init_sgemm__avx512(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX-512 F/BW/VL/DQ + FMA is all these kernels need; the caller checked it */
    k->sgemm_nt = peqa_sgemm_nt_12x16__avx512, k->sgemm_nt_name = "peqa_sgemm_nt_12x16__avx512";
    k->sgemm_nn = peqa_sgemm_nn_12x16__avx512, k->sgemm_nn_name = "peqa_sgemm_nn_12x16__avx512";
    k->sgemm_tn = peqa_sgemm_tn_12x16__avx512, k->sgemm_tn_name = "peqa_sgemm_tn_12x16__avx512";
}
