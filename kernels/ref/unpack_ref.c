/* Reference: unpack packed codes and dequantize (SPEC §2, layout in kernels/peqa_kernels.h). */
#include "../peqa_kernels.h"

/* codes[(n - n0) * ldc + k] = q[n, k]; pure bit extraction, no arithmetic. */
void peqa_unpack__ref(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *codes, int64_t ldc)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t k = 0; k < w->k; k++)
            codes[(n - n0) * ldc + k] = (uint8_t)peqa_code_at(w, n, k);
}

/* out[n, k] = s[n, j] * ((float)q[n, k] - z[n, j]),  j = k / g.
 * Two binary32 operations, in this order: a subtraction (exact when z is an integer, as after
 * RTN) then a product rounded once. This is the same Ŵ that the input gradient uses. */
void peqa_dequant__ref(const peqa_qw *w, int64_t n0, int64_t n1, float *out, int64_t ldo)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t k = 0; k < w->k; k++) {
            int64_t j = k / w->g;
            float d = (float)peqa_code_at(w, n, k) - peqa_z_at(w, n, j);
            out[(n - n0) * ldo + k] = peqa_s_at(w, n, j) * d;
        }
}
