/* The x86 sgemm kernels' packing routines and loop nest (sgemm_avx2.c, sgemm_avx512.c; see
 * sgemm_avx2.c for the three forms and the block sizes). The including file defines, before
 * including this: MR, ALWAYS_INLINE, the micro-kernel dispatchers kern_row(mr, a, lda, bp, kc,
 * c, ldc, nv, resume) and kern_packed(mr, a, lds, ...), SG_ALIGN (the packed blocks' alignment,
 * its vector size in bytes) and SG_NAME_NT / _NN / _TN (the names of the three entry points it
 * then puts in the kernel table). Packing is 256-bit code whatever the micro-kernel's width:
 * it only copies, so it changes no bit. */
#ifndef PEQA_SGEMM_DRIVER_H
#define PEQA_SGEMM_DRIVER_H
#include "sgemm_blocking.h"
#if !defined(SG_ALIGN) || !defined(SG_NAME_NT) || !defined(SG_NAME_NN) || !defined(SG_NAME_TN)
#error "define SG_ALIGN and SG_NAME_NT / _NN / _TN before including sgemm_driver.h"
#endif

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
 * SG_ALIGN-byte aligned. The B block of one (p0, j0) is packed once, as SG_NC / 16 panels of kc x 16,
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
        _Alignas(SG_ALIGN) float bp[SG_KC * SG_NC];                                                             \
        drive(FORM, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, NULL);                               \
    }
SGEMM_ENTRY(SG_NAME_NT, FORM_NT)
SGEMM_ENTRY(SG_NAME_NN, FORM_NN)
#undef SGEMM_ENTRY

static void SG_NAME_TN(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float *c, int64_t ldc)
{
    _Alignas(SG_ALIGN) float bp[SG_KC_TN * SG_NC_TN];
    _Alignas(SG_ALIGN) float ap[SG_KC_TN * SG_MC_TN];
    drive(FORM_TN, m0, m1, c0, c1, red, a, lda, b, ldb, c, ldc, bp, ap);
}

#endif
