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
#include "sgemm_blocking.h"

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

#define SG_ALIGN 64
#define SG_NAME_NT peqa_sgemm_nt_12x16__avx512
#define SG_NAME_NN peqa_sgemm_nn_12x16__avx512
#define SG_NAME_TN peqa_sgemm_tn_12x16__avx512
#include "sgemm_driver.h"

void peqa_init_sgemm__avx512(peqa_kernels *k, unsigned features)
{
    (void)features; /* AVX-512 F/BW/VL/DQ + FMA is all these kernels need; the caller checked it */
    k->sgemm_nt = peqa_sgemm_nt_12x16__avx512, k->sgemm_nt_name = "peqa_sgemm_nt_12x16__avx512";
    k->sgemm_nn = peqa_sgemm_nn_12x16__avx512, k->sgemm_nn_name = "peqa_sgemm_nn_12x16__avx512";
    k->sgemm_tn = peqa_sgemm_tn_12x16__avx512, k->sgemm_tn_name = "peqa_sgemm_tn_12x16__avx512";
}
