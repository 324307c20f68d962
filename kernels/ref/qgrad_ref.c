/* Reference: PEQA backward — scale, zero-point and input gradients (SPEC §4, §6). */
#include <math.h>
#include "../peqa_kernels.h"

static int64_t group_end(const peqa_qw *w, int64_t j)
{
    int64_t e = (j + 1) * w->g;
    return e < w->k ? e : w->k;
}

/* dS[n, j] = Σ_m dY[m, n] · P[m, n, j] for n in [n0, n1), every group j; written to
 * ds[n * G + j]. Canonical sequence:
 *     ds = 0
 *     for m = 0 .. M-1:                           ascending
 *         p = 0;  for k in group j ascending: p = fmaf(x[m, k], (float)q[n, k] - z[n, j], p)
 *         ds = fmaf(dY[m, n], p, ds)
 * p is bit-identical to the forward's P. No N x K buffer is formed. */
void peqa_gscale__ref(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                      int64_t ldx, const float *dy, int64_t lddy, float *ds)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < w->ng; j++) {
            int64_t k0 = j * w->g, k1 = group_end(w, j);
            float z = peqa_z_at(w, n, j), acc = 0.0f;
            for (int64_t mi = 0; mi < m; mi++) {
                float p = 0.0f;
                for (int64_t k = k0; k < k1; k++)
                    p = fmaf(x[mi * ldx + k], (float)peqa_code_at(w, n, k) - z, p);
                acc = fmaf(dy[mi * lddy + n], p, acc);
            }
            ds[n * w->ng + j] = acc;
        }
}

/* dZ[n, j] = -s[n, j] · Σ_m dY[m, n] · XS[m, j],  XS[m, j] = Σ_{k in group j} x[m, k].
 * Canonical sequence:
 *     xs = 0;  for k in group j ascending: xs = xs + x[m, k]        (plain additions)
 *     t = 0;   for m ascending:            t = fmaf(dY[m, n], xs(m), t)
 *     dz = (-s[n, j]) * t                                           (one rounding) */
void peqa_gzero__ref(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1, const float *x,
                     int64_t ldx, const float *dy, int64_t lddy, float *dz)
{
    for (int64_t n = n0; n < n1; n++)
        for (int64_t j = 0; j < w->ng; j++) {
            int64_t k0 = j * w->g, k1 = group_end(w, j);
            float t = 0.0f;
            for (int64_t mi = 0; mi < m; mi++) {
                float xs = 0.0f;
                for (int64_t k = k0; k < k1; k++)
                    xs = xs + x[mi * ldx + k];
                t = fmaf(dy[mi * lddy + n], xs, t);
            }
            dz[n * w->ng + j] = -peqa_s_at(w, n, j) * t;
        }
}

/* dX[m, k] = Σ_n dY[m, n] · Ŵ[n, k] for m in [m0, m1), k in [k0, k1). Canonical sequence:
 *     dx = 0
 *     for n = 0 .. N-1:                           ascending
 *         wh = s[n, j] * ((float)q[n, k] - z[n, j])     (exactly the dequantized weight)
 *         dx = fmaf(dY[m, n], wh, dx) */
void peqa_ginput__ref(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                      const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    for (int64_t mi = m0; mi < m1; mi++)
        for (int64_t k = k0; k < k1; k++) {
            int64_t j = k / w->g;
            float acc = 0.0f;
            for (int64_t n = 0; n < w->n; n++) {
                float wh = peqa_s_at(w, n, j) * ((float)peqa_code_at(w, n, k) - peqa_z_at(w, n, j));
                acc = fmaf(dy[mi * lddy + n], wh, acc);
            }
            dx[mi * lddx + k] = acc;
        }
}
