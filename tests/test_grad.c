/* The reference gradients against central finite differences of the layer math evaluated in
 * float64. The loss is L = Σ_{m,n} R[m,n] · Y[m,n] with R random, so dY = R. Y is linear in s,
 * in z and in x, so the central difference in double is exact up to double rounding and any
 * disagreement beyond fp32 accumulation error is a wrong gradient formula or kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "case.h"
#include "test.h"

/* L in double for the case's codes, with s, z, x given in double. */
static double loss(const tcase *c, const double *s, const double *z, const double *x)
{
    double l = 0;
    for (int64_t m = 0; m < c->m; m++)
        for (int64_t n = 0; n < c->n; n++) {
            double y = 0;
            for (int64_t k = 0; k < c->k; k++) {
                int64_t j = k / c->g;
                y += x[m * c->k + k] * s[n * c->ng + j] * ((double)c->codes[n * c->k + k] - z[n * c->ng + j]);
            }
            l += c->dy[m * c->n + n] * y;
        }
    return l;
}

/* Central difference of L along one coordinate of v (a double copy of s, z or x). */
static double fd(const tcase *c, double *s, double *z, double *x, double *v, int64_t i)
{
    double h = 1e-3 * fmax(1.0, fabs(v[i])), keep = v[i];
    v[i] = keep + h;
    double lp = loss(c, s, z, x);
    v[i] = keep - h;
    double lm = loss(c, s, z, x);
    v[i] = keep;
    return (lp - lm) / (2 * h);
}

static double *to_double(const float *a, int64_t n)
{
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; d && i < n; i++) d[i] = a[i];
    return d;
}

void test_grad(trun *r)
{
    static const int bits_list[] = {2, 3, 4, 8};
    static const int64_t shapes[][4] = {{3, 5, 64, 32}, {2, 7, 40, 0}, {4, 3, 96, 64}};
    for (int bi = 0; bi < 4; bi++)
        for (int si = 0; si < 3; si++) {
            tcase c;
            tout o;
            const int64_t *sh = shapes[si];
            char name[128];
            snprintf(name, sizeof name, "grad/fd/b%d/m%lld_n%lld_k%lld_g%lld", bits_list[bi], (long long)sh[0],
                     (long long)sh[1], (long long)sh[2], (long long)sh[3]);
            peqa_ctx *ctx = t_ctx("scalar", 1);
            if (!ctx || !tcase_alloc(&c, bits_list[bi], sh[3], sh[0], sh[1], sh[2]) ||
                !tcase_fill(&c, "offgrid_z", r->seed + (uint64_t)(bi * 10 + si), NULL) || case_run(ctx, &c, &o)) {
                t_result(r, 0, name, "scalar", "setup failed: %s", peqa_last_error());
                peqa_ctx_free(ctx);
                continue;
            }
            double *s = to_double(c.s, c.n * c.ng), *z = to_double(c.z, c.n * c.ng), *x = to_double(c.x, c.m * c.k);
            /* tolerance: fp32 accumulation over at most K + M terms, relative to the gradient's scale */
            double worst[3] = {0, 0, 0}, scale[3] = {0, 0, 0};
            double g;
            for (int64_t i = 0; i < c.n * c.ng; i++) {
                g = fd(&c, s, z, x, s, i), scale[0] = fmax(scale[0], fabs(g)), worst[0] = fmax(worst[0], fabs(g - o.ds[i]));
                g = fd(&c, s, z, x, z, i), scale[1] = fmax(scale[1], fabs(g)), worst[1] = fmax(worst[1], fabs(g - o.dz[i]));
            }
            for (int64_t i = 0; i < c.m * c.k; i++)
                g = fd(&c, s, z, x, x, i), scale[2] = fmax(scale[2], fabs(g)), worst[2] = fmax(worst[2], fabs(g - o.dx[i]));
            static const char *const what[3] = {"dS", "dZ", "dX"};
            for (int q = 0; q < 3; q++) {
                char nm[160];
                snprintf(nm, sizeof nm, "%s/%s", name, what[q]);
                double rel = worst[q] / fmax(scale[q], 1e-30);
                t_result(r, rel <= 1e-4 && scale[q] > 0, nm, "scalar", "max |analytic - fd| = %.3g (%.2g of max |grad| %.3g; limit 1e-4)",
                         worst[q], rel, scale[q]);
            }
            free(s), free(z), free(x);
            tout_free(&o), tcase_free(&c);
            peqa_ctx_free(ctx);
        }
}
