/* Reference: forward with fp32 activations, Y = X · Ŵᵀ (SPEC §4, §6). */
#include <math.h>
#include "../peqa_kernels.h"

/* Y[m, n] for m in [m0, m1), n in [n0, n1).
 *
 * Canonical sequence (binary32, FMA = fmaf, one rounding):
 *     y = 0
 *     for j = 0 .. G-1:                      groups in ascending order
 *         p = 0
 *         for k = j g .. min((j+1) g, K) - 1:  ascending
 *             p = fmaf(x[m, k], (float)q[n, k] - z[n, j], p)
 *         y = fmaf(s[n, j], p, y)
 *     Y[m, n] = y
 * p is P[m, n, j] of SPEC §4; the scale gradient recomputes it with the same sequence.
 * Both the GEMV slot (M = 1) and the GEMM slot use this one function. */
void peqa_fwd__ref(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   const float *x, int64_t ldx, float *y, int64_t ldy)
{
    for (int64_t m = m0; m < m1; m++) {
        const float *xr = x + m * ldx;
        for (int64_t n = n0; n < n1; n++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t k0 = j * w->g, k1 = k0 + w->g < w->k ? k0 + w->g : w->k;
                float z = peqa_z_at(w, n, j), p = 0.0f;
                for (int64_t k = k0; k < k1; k++)
                    p = fmaf(xr[k], (float)peqa_code_at(w, n, k) - z, p);
                acc = fmaf(peqa_s_at(w, n, j), p, acc);
            }
            y[m * ldy + n] = acc;
        }
    }
}
