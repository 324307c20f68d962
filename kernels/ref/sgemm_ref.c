/* Reference: dense fp32 products for the full-precision mode and attention (SPEC §6).
 * Output rows [m0, m1), output columns [c0, c1); `red` is the length of the reduction. */
#include <math.h>
#include "../peqa_kernels.h"

/* C[m, n] = Σ_k A[m, k] · B[n, k]:  c = 0;  for k = 0 .. red-1: c = fmaf(A[m, k], B[n, k], c) */
void peqa_sgemm_nt__ref(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = c0; n < c1; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < red; k++) acc = fmaf(a[m * lda + k], b[n * ldb + k], acc);
            c[m * ldc + n] = acc;
        }
}

/* C[m, k] = Σ_n A[m, n] · B[n, k]:  c = 0;  for n = 0 .. red-1: c = fmaf(A[m, n], B[n, k], c) */
void peqa_sgemm_nn__ref(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int64_t m = m0; m < m1; m++)
        for (int64_t k = c0; k < c1; k++) {
            float acc = 0.0f;
            for (int64_t n = 0; n < red; n++) acc = fmaf(a[m * lda + n], b[n * ldb + k], acc);
            c[m * ldc + k] = acc;
        }
}

/* C[n, k] = Σ_m A[m, n] · B[m, k]:  c = 0;  for m = 0 .. red-1: c = fmaf(A[m, n], B[m, k], c)
 * (here the output rows are n in [m0, m1) and columns k in [c0, c1)) */
void peqa_sgemm_tn__ref(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red, const float *a,
                        int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int64_t n = m0; n < m1; n++)
        for (int64_t k = c0; k < c1; k++) {
            float acc = 0.0f;
            for (int64_t m = 0; m < red; m++) acc = fmaf(a[m * lda + n], b[m * ldb + k], acc);
            c[n * ldc + k] = acc;
        }
}
