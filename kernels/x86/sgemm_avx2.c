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
#include "sgemm_blocking.h"

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

#define SG_ALIGN 32
#define SG_NAME_NT peqa_sgemm_nt_6x16__avx2
#define SG_NAME_NN peqa_sgemm_nn_6x16__avx2
#define SG_NAME_TN peqa_sgemm_tn_6x16__avx2
#include "sgemm_driver.h"

void peqa_init_sgemm__avx2(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX2 + FMA is all these kernels need; the caller checked it */
    k->sgemm_nt = peqa_sgemm_nt_6x16__avx2, k->sgemm_nt_name = "peqa_sgemm_nt_6x16__avx2";
    k->sgemm_nn = peqa_sgemm_nn_6x16__avx2, k->sgemm_nn_name = "peqa_sgemm_nn_6x16__avx2";
    k->sgemm_tn = peqa_sgemm_tn_6x16__avx2, k->sgemm_tn_name = "peqa_sgemm_tn_6x16__avx2";
}
