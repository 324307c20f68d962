/* Dense fp32 products: every ISA and thread count bit-identical to the scalar reference on one
 * thread, the reference within c*n*2^-24*sum|terms| of float64, and bad arguments refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prng.h"
#include "test.h"

typedef peqa_status (*sg_api)(peqa_ctx *, int64_t, int64_t, int64_t, const float *, int64_t,
                              const float *, int64_t, float *, int64_t);

/* Element (i, j) of the exact result and its sum of |terms|, for the three forms. */
static void exact(int form, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                  int64_t ldb, int64_t i, int64_t j, double *v, double *t)
{
    *v = 0, *t = 0;
    if (form == 0) /* C[i = m, j = n] = Σ_k A[m,k] B[n,k] */
        for (int64_t q = 0; q < k; q++) *v += (double)a[i * lda + q] * b[j * ldb + q], *t += fabs((double)a[i * lda + q] * b[j * ldb + q]);
    else if (form == 1) /* C[i = m, j = k] = Σ_n A[m,n] B[n,k] */
        for (int64_t q = 0; q < n; q++) *v += (double)a[i * lda + q] * b[q * ldb + j], *t += fabs((double)a[i * lda + q] * b[q * ldb + j]);
    else /* C[i = n, j = k] = Σ_m A[m,n] B[m,k] */
        for (int64_t q = 0; q < m; q++) *v += (double)a[q * lda + i] * b[q * ldb + j], *t += fabs((double)a[q * lda + i] * b[q * ldb + j]);
}

void test_dense(trun *r)
{
    static const char *const names[3] = {"nt", "nn", "tn"};
    static const sg_api fns[3] = {peqa_sgemm_nt, peqa_sgemm_nn, peqa_sgemm_tn};
    /* {m, n, k, pad}: pad > 0 widens every leading dimension by pad (the padding must stay
     * untouched). The larger shapes cross the SIMD kernels' blocks: reduction blocks of 256, row
     * blocks of 144, column blocks of 64, every column tail 1..15 of a 16-lane panel, row tails
     * 1..5 of a 6-row (AVX2) strip, reduction lengths that are not multiples of 8. */
    static const int64_t shapes[][4] = {{1, 1, 1, 0},     {1, 33, 70, 0},    {5, 17, 31, 0},    {16, 64, 128, 0},
                                        {37, 50, 300, 0}, {64, 96, 64, 0},   {3, 200, 513, 0},  {130, 20, 9, 0},
                                        {150, 71, 260, 3}, {260, 151, 79, 5}, {7, 8, 257, 1},   {2, 300, 12, 0},
                                        {145, 2, 3, 0},   {11, 15, 147, 2}, {290, 45, 150, 0}};
    prng pr;
    prng_seed(&pr, r->seed ^ 0xd5);
    for (int f = 0; f < 3; f++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2], pad = shapes[si][3];
            /* A is m x (k or n), B is (n or m) x (k), C is rows x cols; each with its ld */
            int64_t lda = (f == 0 ? k : n) + pad, ldb = k + pad;
            int64_t brows = f == 2 ? m : n, rows = f == 2 ? n : m, cols = f == 0 ? n : k, ldc = cols + pad;
            int64_t asz = m * lda, bsz = brows * ldb, csz = rows * ldc;
            float *a = malloc((size_t)asz * 4), *b = malloc((size_t)bsz * 4);
            float *c0 = malloc((size_t)csz * 4), *c1 = malloc((size_t)csz * 4);
            for (int64_t i = 0; i < asz; i++) a[i] = prng_sym(&pr, 1.0f);
            for (int64_t i = 0; i < bsz; i++) b[i] = prng_sym(&pr, 1.0f);
            char name[128];
            snprintf(name, sizeof name, "dense/%s/m%lld_n%lld_k%lld%s", names[f], (long long)m, (long long)n,
                     (long long)k, pad ? "_ld+pad" : "");
            peqa_ctx *ref = t_ctx("scalar", 1);
            memset(c0, 0xff, (size_t)csz * 4);
            if (!ref || fns[f](ref, m, n, k, a, lda, b, ldb, c0, ldc)) {
                t_result(r, 0, name, "scalar", "reference failed: %s", peqa_last_error());
            } else {
                double worst = 0;
                int64_t red = f == 0 ? k : f == 1 ? n : m;
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = 0; j < cols; j++) {
                        double v, t;
                        exact(f, m, n, k, a, lda, b, ldb, i, j, &v, &t);
                        double bound = 2.0 * (double)red * 0x1p-24 * t, err = fabs(c0[i * ldc + j] - v);
                        double q = err == 0 ? 0 : bound > 0 ? err / bound : INFINITY;
                        worst = q > worst ? q : worst;
                    }
                char nm[160];
                snprintf(nm, sizeof nm, "%s/f64", name);
                t_result(r, worst <= 1, nm, "scalar", "max err/bound %.3g (c=2)", worst);
                for (int ii = 0; ii < t_nisas; ii++) {
                    peqa_ctx *probe = t_ctx(t_isas[ii], 1);
                    if (!probe) {
                        t_skip(r, name, t_isas[ii], "ISA not available on this CPU");
                        continue;
                    }
                    peqa_ctx_free(probe);
                    int ok = 1, thr = 0;
                    int64_t d = -1;
                    for (int ti = 0; ti < t_nthreads && ok; ti++) {
                        peqa_ctx *ctx = t_ctx(t_isas[ii], t_threads[ti]);
                        memset(c1, 0xff, (size_t)csz * 4); /* padding compared too: it must stay 0xff */
                        if (!ctx || fns[f](ctx, m, n, k, a, lda, b, ldb, c1, ldc)) ok = 0, thr = t_threads[ti];
                        else if ((d = t_first_diff(c0, c1, 4, csz)) >= 0) ok = 0, thr = t_threads[ti];
                        peqa_ctx_free(ctx);
                    }
                    if (ok) t_result(r, 1, name, t_isas[ii], "bit-identical to scalar, threads %s", t_threads_text);
                    else t_result(r, 0, name, t_isas[ii], "threads=%d first difference at [%lld, %lld]: %a vs %a",
                                  thr, d < 0 ? -1LL : (long long)(d / ldc), d < 0 ? -1LL : (long long)(d % ldc),
                                  d < 0 ? 0.0 : (double)c0[d], d < 0 ? 0.0 : (double)c1[d]);
                }
            }
            peqa_ctx_free(ref);
            free(a), free(b), free(c0), free(c1);
        }
    /* argument validation */
    peqa_ctx *ctx = t_ctx("scalar", 1);
    float a[4] = {1, 2, 3, 4}, c[4] = {7, 7, 7, 7};
    int ok = peqa_sgemm_nt(NULL, 1, 1, 1, a, 1, a, 1, c, 1) == PEQA_ERR_NULL &&
             peqa_sgemm_nt(ctx, 0, 1, 1, a, 1, a, 1, c, 1) == PEQA_ERR_SHAPE &&
             peqa_sgemm_nn(ctx, 1, 2, 2, a, 1, a, 2, c, 2) == PEQA_ERR_SHAPE &&
             peqa_sgemm_tn(ctx, 2, 2, 2, a, 2, NULL, 2, c, 2) == PEQA_ERR_NULL &&
             peqa_sgemm_tn(ctx, 2, 2, 2, a, 2, a, 2, c, 1) == PEQA_ERR_SHAPE && c[0] == 7 && c[3] == 7;
    t_result(r, ok, "dense/bad_arguments", "-", "NULL, zero dimension and short leading dimensions refused, output untouched");
    peqa_ctx_free(ctx);
}
