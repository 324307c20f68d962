/* Reference: int8 activation quantization and the integer-activation forward (SPEC §7). */
#include <math.h>
#include "../peqa_kernels.h"

/* Rows [m0, m1) of X (finite values only; the framework checks). Per row m and block b
 * (columns 32 b .. min(32 b + 32, K) - 1):
 *     amax = max |x|          (exact: max and fabs do not round)
 *     d    = amax / 127       (one rounding; d = 0 when amax = 0)
 *     xq   = clamp(rint(x / d), -127, 127)    (round-half-to-even; 0 when d = 0)
 *     xs[m, b] = d
 * Division, not multiplication by 127/amax, so that d is the scale the caller sees and every
 * ISA rounds the same single operation. */
void peqa_qact__ref(int64_t m0, int64_t m1, int64_t k, const float *x, int64_t ldx, int8_t *xq,
                    int64_t ldq, float *xs, int64_t ldxs)
{
    int64_t nb = (k + PEQA_KB - 1) / PEQA_KB;
    for (int64_t m = m0; m < m1; m++)
        for (int64_t b = 0; b < nb; b++) {
            int64_t k0 = b * PEQA_KB, k1 = k0 + PEQA_KB < k ? k0 + PEQA_KB : k;
            float amax = 0.0f;
            for (int64_t i = k0; i < k1; i++) {
                float a = fabsf(x[m * ldx + i]);
                amax = a > amax ? a : amax;
            }
            float d = amax / 127.0f;
            for (int64_t i = k0; i < k1; i++) {
                float v = d > 0.0f ? rintf(x[m * ldx + i] / d) : 0.0f;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                xq[m * ldq + i] = (int8_t)v;
            }
            xs[m * ldxs + b] = d;
        }
}

/* Y[m, n] from int8 activations. Integer sums are exact (|isum| <= 32 * 127 * 255 < 2^24, so
 * the int32 -> float conversions below are exact too); only the float epilogue rounds:
 *     y = 0
 *     for j = 0 .. G-1:
 *         a = 0
 *         for each block b inside group j, ascending:
 *             isum = Σ_{k in b} xq[m, k] · q[n, k]        (int32, exact)
 *             xsum = Σ_{k in b} xq[m, k]                  (int32, exact)
 *             t = fmaf(-z[n, j], (float)xsum, (float)isum)   = Σ xq · (q - z), one rounding
 *             a = fmaf(xs[m, b], t, a)
 *         y = fmaf(s[n, j], a, y)
 *     Y[m, n] = y */
void peqa_fwd_i8__ref(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                      const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs, float *y,
                      int64_t ldy)
{
    for (int64_t m = m0; m < m1; m++)
        for (int64_t n = n0; n < n1; n++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < w->ng; j++) {
                int64_t k0 = j * w->g, k1 = k0 + w->g < w->k ? k0 + w->g : w->k;
                float z = peqa_z_at(w, n, j), a = 0.0f;
                for (int64_t b0 = k0; b0 < k1; b0 += PEQA_KB) {
                    int64_t b1 = b0 + PEQA_KB < k1 ? b0 + PEQA_KB : k1;
                    int32_t isum = 0, xsum = 0;
                    for (int64_t k = b0; k < b1; k++) {
                        isum += (int32_t)xq[m * ldq + k] * (int32_t)peqa_code_at(w, n, k);
                        xsum += xq[m * ldq + k];
                    }
                    float t = fmaf(-z, (float)xsum, (float)isum);
                    a = fmaf(xs[m * ldxs + b0 / PEQA_KB], t, a);
                }
                acc = fmaf(peqa_s_at(w, n, j), a, acc);
            }
            y[m * ldy + n] = acc;
        }
}
