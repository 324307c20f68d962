/* Tests of the fp32 model operations (src/ops.h) and the project's exp/log (src/mathf.h).
 *
 *  - peqa_expf / peqa_logf: ulp error against double-precision exp/log (libm is fine in tests) on
 *    a strided sweep of every binary32 bit pattern plus dense windows around the worst inputs of
 *    the exhaustive run quoted in mathf.h; asserted <= 1 ulp. Special values exactly.
 *  - Every forward against a float64 evaluation written here, elementwise within
 *    c · n · 2^-24 · Σ|terms| (c and the Σ|terms| of each operation are stated at its check).
 *  - Every backward against central finite differences of that float64 forward, on tiny shapes:
 *    L = Σ_o c[o]·y[o] with random c (the same c, exactly representable, is the fp32 dy), step
 *    h = 1e-5 in double, so the FD error (~h²·L''' ~ 1e-10, rounding ~1e-11) is far below fp32
 *    noise. Pass when max_i |g_fp32[i] − g_fd[i]| <= GRAD_TOL · max_i |g_fd[i]|.
 *    Mutation controls (a wrong-sign RoPE backward, an RMSNorm backward missing its projection
 *    term, SwiGLU with σ in place of silu', dv reported as dk) must be REJECTED by the same
 *    check, which shows the tolerance can fail on the bugs that matter.
 *  - Layout and consistency facts: HF rotate-half RoPE of permuted rows equals Meta's
 *    interleaved RoPE (formats.md §2.6); GQA equals MHA on explicitly repeated k/v (bitwise);
 *    KV-cache decoding equals the last rows of full attention (bitwise); in-place variants equal
 *    out-of-place ones (bitwise); ignored targets; argument validation writes nothing.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/mathf.h"
#include "../src/ops.h"
#include "prng.h"
#include "test.h"

#define ISA "scalar"
#define EPS24 (1.0 / 16777216.0) /* 2^-24 */
#define GRAD_TOL 1e-4
#define FD_H 1e-5

/* ---- small helpers ------------------------------------------------------------------------ */

static float *frand(prng *g, size_t n, float a)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = prng_sym(g, a);
    return p;
}

static double *dcopy(const float *f, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

static double *dalloc(size_t n) { return calloc(n, sizeof(double)); }
static float *falloc(size_t n) { return calloc(n, sizeof(float)); }

static double dot_d(const float *c, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)c[i] * y[i];
    return s;
}

/* Central differences of loss() with respect to every element of x (perturbed in place). */
typedef double (*lossfn)(void *ctx);
static void fd_grad(lossfn loss, void *ctx, double *x, size_t n, double *g)
{
    for (size_t i = 0; i < n; i++) {
        double xi = x[i];
        x[i] = xi + FD_H;
        double lp = loss(ctx);
        x[i] = xi - FD_H;
        double lm = loss(ctx);
        x[i] = xi;
        g[i] = (lp - lm) / (2 * FD_H);
    }
}

/* max |got − ref| / max |ref| (absolute when ref is all zero). */
static double grad_err(const float *got, const double *ref, size_t n, size_t *worst)
{
    double scale = 0, err = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (e > err) err = e, *worst = i;
    }
    return scale > 0 ? err / scale : err;
}

static void check_grad(trun *r, const char *name, const char *shape, const float *got, const double *ref,
                       size_t n)
{
    size_t w;
    double e = grad_err(got, ref, n, &w);
    t_result(r, e <= GRAD_TOL, name, ISA, "%s: max|g-fd|/max|fd| = %.2e (tol %.0e) at %zu: %.8g vs %.8g", shape,
             e, GRAD_TOL, w, (double)got[w], ref[w]);
}

/* A mutation control: the wrong gradient must be rejected by the same criterion. */
static void check_rejected(trun *r, const char *name, const float *wrong, const double *ref, size_t n)
{
    size_t w;
    double e = grad_err(wrong, ref, n, &w);
    t_result(r, e > GRAD_TOL, name, ISA, "a wrong gradient gives %.2e > tol %.0e: %s", e, GRAD_TOL,
             e > GRAD_TOL ? "rejected" : "NOT rejected: the check cannot fail");
}

/* Elementwise forward check: |y − ref| <= bound[i]; reports the worst ratio. */
static void check_fwd(trun *r, const char *name, const char *shape, const float *y, const double *ref,
                      const double *bound, size_t n, const char *bound_text)
{
    double worst = 0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)y[i] - ref[i]);
        double q = bound[i] > 0 ? e / bound[i] : (e > 0 ? INFINITY : 0);
        if (!(q <= 1.0)) ok = 0;
        if (!(q <= worst)) worst = q, wi = i;
    }
    t_result(r, ok, name, ISA, "%s: |y-ref| <= %s; worst at %zu uses %.3f of its bound (%.9g vs %.9g)", shape,
             bound_text, wi, worst, (double)y[wi], ref[wi]);
}

/* ---- exp / log --------------------------------------------------------------------------------- */

static double ulp_err(float got, double ex)
{
    if (isnan(ex)) return isnan(got) ? 0 : INFINITY;
    if (ex > (double)FLT_MAX) return isinf(got) && got > 0 ? 0 : fabs((double)got - ex) / ldexp(1.0, 104);
    if (ex == 0) return got == 0 ? 0 : INFINITY;
    int e;
    frexp(ex, &e); /* |ex| = f·2^e, f in [0.5, 1): binade 2^(e-1), float ulp 2^(e-24) */
    int ue = e - 24 < -149 ? -149 : e - 24;
    return fabs((double)got - ex) / ldexp(1.0, ue);
}

static float bits2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct {
    double exp_n, exp_s, log; /* max ulp: exp normal results, exp subnormal results, log */
    float exp_nx, exp_sx, logx;
    uint64_t count;
} ulp_stats;

static void ulp_one(ulp_stats *s, float x)
{
    if (isnan(x)) return;
    s->count++;
    if (x >= -110.0f && x <= 90.0f) {
        double ex = exp((double)x), e = ulp_err(peqa_expf(x), ex);
        if (ex < (double)FLT_MIN) {
            if (!(e <= s->exp_s)) s->exp_s = e, s->exp_sx = x;
        } else if (!(e <= s->exp_n)) s->exp_n = e, s->exp_nx = x;
    }
    if (x > 0 && !isinf(x)) {
        double e = ulp_err(peqa_logf(x), log((double)x));
        if (!(e <= s->log)) s->log = e, s->logx = x;
    }
}

static void test_explog(trun *r)
{
    ulp_stats s = {0};
    uint64_t step = r->quick ? 4093 : 251;
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += step) ulp_one(&s, bits2f((uint32_t)u));
    /* Dense windows around the worst inputs of the exhaustive run (mathf.h). */
    static const float worst[] = {0x1.ab05d2p+4f, -0x1.5eafeap+6f, 0x1.68fd1ep-1f, 1.0f, 88.72f, -87.33f, -103.9f};
    for (size_t k = 0; k < sizeof worst / sizeof worst[0]; k++) {
        uint32_t b;
        memcpy(&b, &worst[k], sizeof b);
        for (uint32_t d = 0; d < (r->quick ? 1024u : 65536u); d++) {
            ulp_one(&s, bits2f(b + d));
            ulp_one(&s, bits2f(b - d));
        }
    }
    t_result(r, s.exp_n <= 1.0, "ops.math.expf.ulp", ISA,
             "max %.3f ulp (bound 1) for normal results, worst x = %a; %llu inputs (stride %llu + windows)",
             s.exp_n, (double)s.exp_nx, (unsigned long long)s.count, (unsigned long long)step);
    t_result(r, s.exp_s <= 1.0, "ops.math.expf.ulp_subnormal", ISA,
             "max %.3f ulp of 2^-149 (bound 1) for subnormal results, worst x = %a", s.exp_s, (double)s.exp_sx);
    t_result(r, s.log <= 1.0, "ops.math.logf.ulp", ISA, "max %.3f ulp (bound 1) over positive finite x, worst x = %a",
             s.log, (double)s.logx);

    /* Special values and the saturation thresholds. */
    int ok = 1;
    char bad[128] = "";
#define SPEC(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond) && ok) ok = 0, snprintf(bad, sizeof bad, "%s", #cond);                          \
    } while (0)
    SPEC(peqa_expf(0.0f) == 1.0f);
    SPEC(peqa_expf(-0.0f) == 1.0f);
    SPEC(isnan(peqa_expf(NAN)));
    SPEC(peqa_expf(INFINITY) == INFINITY);
    SPEC(peqa_expf(-INFINITY) == 0.0f);
    SPEC(peqa_expf(89.0f) == INFINITY);
    SPEC(peqa_expf(88.8f) == INFINITY);
    SPEC(peqa_expf(88.72f) < INFINITY && peqa_expf(88.72f) > 3.3e38f);
    SPEC(peqa_expf(-104.0f) == 0.0f);
    SPEC(peqa_expf(-1000.0f) == 0.0f);
    SPEC(peqa_expf(-103.9f) == 0x1p-149f);
    SPEC(peqa_expf(1e-10f) == 1.0f);
    SPEC(peqa_expf(FLT_MAX) == INFINITY);
    SPEC(peqa_expf(-FLT_MAX) == 0.0f);
    SPEC(isnan(peqa_logf(NAN)));
    SPEC(isnan(peqa_logf(-1.0f)));
    SPEC(isnan(peqa_logf(-INFINITY)));
    SPEC(isnan(peqa_logf(-0x1p-149f)));
    SPEC(peqa_logf(0.0f) == -INFINITY);
    SPEC(peqa_logf(-0.0f) == -INFINITY);
    SPEC(peqa_logf(INFINITY) == INFINITY);
    SPEC(peqa_logf(1.0f) == 0.0f && !signbit(peqa_logf(1.0f)));
    SPEC(fabs(peqa_logf(0x1p-149f) - (float)(-149 * log(2.0))) <= 1e-5);
    SPEC(fabs(peqa_logf(FLT_MAX) - (float)log((double)FLT_MAX)) <= 1e-5);
    SPEC(peqa_rsqrtf(4.0f) == 0.5f);
    t_result(r, ok, "ops.math.special", ISA, "%s", ok ? "exp/log of 0, ±Inf, NaN, negatives, thresholds, tiny, huge" : bad);

    /* sigmoid, silu, silu': elementwise against double within c·2^-24·Σ|terms|. */
    double w_sg = 0, w_si = 0, w_sd = 0;
    for (int i = -200000; i <= 200000; i++) {
        float x = (float)i * 5e-4f; /* [-100, 100] */
        double xd = x, sg = 1.0 / (1.0 + exp(-xd)), si = xd * sg, sd = sg * (1.0 + xd * (1.0 - sg));
        /* sigmoid: exp (1 ulp), add, divide -> 4·2^-24·σ; silu likewise relative to |silu|;
         * silu' = σ + silu·(1 − σ): bound on the two terms' magnitudes. */
        /* + (1 + |x|)·2^-149: for x < -87.3, e = e^-|x| is subnormal (absolute spacing 2^-149)
         * and silu = (x·e)/d carries |x| times that absolute error (<= 1.5e-43 in all). */
        const double sub = (1 + fabs(xd)) * 0x1p-149;
        w_sg = fmax(w_sg, fabs(peqa_sigmoidf(x) - sg) / (4 * EPS24 * sg + sub));
        w_si = fmax(w_si, fabs(peqa_siluf(x) - si) / (4 * EPS24 * fabs(si) + sub));
        w_sd = fmax(w_sd, fabs(peqa_silu_gradf(x) - sd) / (8 * EPS24 * (sg + fabs(si * (1 - sg))) + sub));
    }
    t_result(r, w_sg <= 1 && w_si <= 1 && w_sd <= 1, "ops.math.activations", ISA,
             "x in [-100,100] step 5e-4: sigmoid uses %.3f of 4·2^-24·σ, silu %.3f of 4·2^-24·|silu|, "
             "silu' %.3f of 8·2^-24·(σ+|silu(1-σ)|) (each + (1+|x|)·2^-149)",
             w_sg, w_si, w_sd);
    t_result(r, peqa_siluf(-200.0f) == 0.0f && peqa_silu_gradf(-200.0f) == 0.0f && peqa_siluf(200.0f) == 200.0f &&
                    peqa_silu_gradf(200.0f) == 1.0f && peqa_sigmoidf(-200.0f) == 0.0f,
             "ops.math.activations.saturate", ISA, "silu(-200) = 0, silu'(-200) = 0, silu(200) = 200, silu'(200) = 1");
}

/* ---- RMSNorm ------------------------------------------------------------------------------------ */

static void ref_rmsnorm(const double *x, const double *w, double eps, int64_t T, int64_t D, double *y)
{
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t i = 0; i < D; i++) ss += x[t * D + i] * x[t * D + i];
        double rr = 1.0 / sqrt(ss / (double)D + eps);
        for (int64_t i = 0; i < D; i++) y[t * D + i] = w[i] * x[t * D + i] * rr;
    }
}

typedef struct {
    int64_t T, D;
    double eps, *x, *w, *y;
    const float *c;
} rms_ctx;

static double rms_loss(void *p)
{
    rms_ctx *k = p;
    ref_rmsnorm(k->x, k->w, k->eps, k->T, k->D, k->y);
    return dot_d(k->c, k->y, (size_t)(k->T * k->D));
}

static void test_rmsnorm(trun *r, prng *g, int64_t T, int64_t D, float eps)
{
    char shape[64];
    snprintf(shape, sizeof shape, "T=%lld D=%lld eps=%g", (long long)T, (long long)D, (double)eps);
    size_t n = (size_t)(T * D);
    float *x = frand(g, n, 2.0f), *w = frand(g, (size_t)D, 1.5f), *dy = frand(g, n, 1.0f);
    float *y = falloc(n), *rs = falloc((size_t)T), *dx = falloc(n), *dw = falloc((size_t)D);
    rms_ctx k = {T, D, (double)eps, dcopy(x, n), dcopy(w, (size_t)D), dalloc(n), dy};
    double *yref = dalloc(n), *bound = dalloc(n);
    ref_rmsnorm(k.x, k.w, k.eps, T, D, yref);
    /* Σ of D positive squares: relative error <= D·2^-24; mean, +eps, sqrt, ÷, two products add a
     * few more; c = 2: |y - ref| <= 2·(D+6)·2^-24·|ref|. */
    for (size_t i = 0; i < n; i++) bound[i] = 2 * (double)(D + 6) * EPS24 * fabs(yref[i]);
    peqa_status st = peqa_rmsnorm_fwd(x, w, eps, T, D, y, rs);
    t_result(r, st == PEQA_OK, "ops.rmsnorm.fwd.status", ISA, "%s", peqa_status_string(st));
    check_fwd(r, "ops.rmsnorm.fwd", shape, y, yref, bound, n, "2(D+6)2^-24|ref|");

    /* In place gives the same bits. */
    float *yi = malloc(n * sizeof *yi);
    memcpy(yi, x, n * sizeof *yi);
    peqa_rmsnorm_fwd(yi, w, eps, T, D, yi, NULL);
    t_result(r, t_first_diff(yi, y, 4, (int64_t)n) < 0, "ops.rmsnorm.fwd.inplace", ISA, "%s: bitwise", shape);

    /* dw accumulates onto its incoming value: start from 0.25. */
    for (int64_t i = 0; i < D; i++) dw[i] = 0.25f;
    st = peqa_rmsnorm_bwd(x, w, rs, dy, T, D, dx, dw);
    for (int64_t i = 0; i < D; i++) dw[i] -= 0.25f;
    double *gx = dalloc(n), *gw = dalloc((size_t)D);
    fd_grad(rms_loss, &k, k.x, n, gx);
    fd_grad(rms_loss, &k, k.w, (size_t)D, gw);
    t_result(r, st == PEQA_OK, "ops.rmsnorm.bwd.status", ISA, "%s", peqa_status_string(st));
    check_grad(r, "ops.rmsnorm.bwd.dx", shape, dx, gx, n);
    check_grad(r, "ops.rmsnorm.bwd.dw", shape, dw, gw, (size_t)D);

    /* dw by column ranges equals dw in one call (bitwise); dx in place over dy likewise. */
    float *dw2 = falloc((size_t)D), *dxi = malloc(n * sizeof *dxi);
    for (int64_t i = 0; i < D; i++) dw2[i] = 0.25f;
    for (int64_t c0 = 0; c0 < D; c0 += 3) peqa_rmsnorm_bwd_dw_cols(x, rs, dy, T, D, c0, c0 + 3 < D ? c0 + 3 : D, dw2);
    for (int64_t i = 0; i < D; i++) dw2[i] -= 0.25f;
    memcpy(dxi, dy, n * sizeof *dxi);
    peqa_rmsnorm_bwd(x, w, rs, dxi, T, D, dxi, NULL);
    t_result(r, t_first_diff(dw2, dw, 4, D) < 0 && t_first_diff(dxi, dx, 4, (int64_t)n) < 0,
             "ops.rmsnorm.bwd.split", ISA, "%s: dw by 3-column ranges and dx in place: bitwise", shape);

    /* Mutation control: dx = r·w·dy (the projection term dropped). Not for D = 1, where the
     * dropped term is x²/(x²+eps) of the result and vanishes for small |x|. */
    float *mut = falloc(n);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < D; i++) mut[t * D + i] = rs[t] * w[i] * dy[t * D + i];
    if (D > 1) check_rejected(r, "ops.rmsnorm.bwd.control", mut, gx, n);

    free(x), free(w), free(dy), free(y), free(rs), free(dx), free(dw), free(k.x), free(k.w), free(k.y);
    free(yref), free(bound), free(yi), free(gx), free(gw), free(dw2), free(dxi), free(mut);
}

/* ---- RoPE --------------------------------------------------------------------------------------- */

/* HF rotate-half RoPE in double, with the angle defined as in ops.h: fl(fl(p)·inv_freq[j]). */
static void ref_rope(const double *x, int64_t T, int64_t H, int64_t hd, int64_t pos0, const float *invf,
                     int inverse, double *y)
{
    int64_t half = hd / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < half; j++) {
                double a = (double)((float)(pos0 + t) * invf[j]);
                double c = cos(a), s = inverse ? -sin(a) : sin(a);
                const double *xh = x + (t * H + h) * hd;
                double *yh = y + (t * H + h) * hd;
                double x0 = xh[j], x1 = xh[j + half];
                yh[j] = x0 * c - x1 * s; /* cat(-x2, x1)·sin */
                yh[j + half] = x1 * c + x0 * s;
            }
}

typedef struct {
    int64_t T, H, hd, pos0;
    const float *invf;
    double *x, *y;
    const float *c;
} rope_ctx;

static double rope_loss(void *p)
{
    rope_ctx *k = p;
    ref_rope(k->x, k->T, k->H, k->hd, k->pos0, k->invf, 0, k->y);
    return dot_d(k->c, k->y, (size_t)(k->T * k->H * k->hd));
}

static void test_rope(trun *r, prng *g, int64_t T, int64_t H, int64_t hd, int64_t pos0, double theta)
{
    char shape[96];
    snprintf(shape, sizeof shape, "T=%lld H=%lld hd=%lld pos0=%lld theta=%g", (long long)T, (long long)H,
             (long long)hd, (long long)pos0, theta);
    size_t n = (size_t)(T * H * hd);
    peqa_rope rp;
    peqa_status st = peqa_rope_init(&rp, hd, pos0 + T + 3, theta);
    t_result(r, st == PEQA_OK, "ops.rope.init", ISA, "%s: %s", shape, peqa_status_string(st));
    if (st != PEQA_OK) return;
    /* The frequencies, independently: fl(theta^(-2j/hd)). */
    float *invf = falloc((size_t)hd / 2);
    int fok = 1;
    peqa_rope_default_freqs(hd, theta, invf);
    for (int64_t j = 0; j < hd / 2; j++)
        fok &= fabs(invf[j] - pow(theta, -2.0 * (double)j / (double)hd)) <= EPS24 * pow(theta, -2.0 * (double)j / (double)hd);
    t_result(r, fok, "ops.rope.freqs", ISA, "%s: inv_freq[j] within 2^-24 relative of theta^(-2j/hd)", shape);

    float *x = frand(g, n, 1.0f), *dy = frand(g, n, 1.0f), *y = falloc(n), *dx = falloc(n);
    rope_ctx k = {T, H, hd, pos0, invf, dcopy(x, n), dalloc(n), dy};
    double *yref = dalloc(n), *bound = dalloc(n);
    ref_rope(k.x, T, H, hd, pos0, invf, 0, yref);
    /* Each output is a two-term sum x0·c ∓ x1·s with c, s rounded to fp32 (1 ulp each), a
     * product and an fma: |y − ref| <= 4·2^-24·(|x0·c| + |x1·s|). */
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < hd / 2; j++) {
                double a = (double)((float)(pos0 + t) * invf[j]);
                size_t o = (size_t)((t * H + h) * hd + j);
                bound[o] = 4 * EPS24 * (fabs(x[o] * cos(a)) + fabs(x[o + hd / 2] * sin(a)));
                bound[o + hd / 2] = 4 * EPS24 * (fabs(x[o + hd / 2] * cos(a)) + fabs(x[o] * sin(a)));
            }
    st = peqa_rope_fwd(&rp, x, T, H, pos0, y);
    t_result(r, st == PEQA_OK, "ops.rope.fwd.status", ISA, "%s", peqa_status_string(st));
    check_fwd(r, "ops.rope.fwd", shape, y, yref, bound, n, "4·2^-24·Σ|x·cos|,|x·sin|");

    float *yi = malloc(n * sizeof *yi);
    memcpy(yi, x, n * sizeof *yi);
    peqa_rope_fwd(&rp, yi, T, H, pos0, yi);
    t_result(r, t_first_diff(yi, y, 4, (int64_t)n) < 0, "ops.rope.fwd.inplace", ISA, "%s: bitwise", shape);

    st = peqa_rope_bwd(&rp, dy, T, H, pos0, dx);
    double *gx = dalloc(n);
    fd_grad(rope_loss, &k, k.x, n, gx);
    t_result(r, st == PEQA_OK, "ops.rope.bwd.status", ISA, "%s", peqa_status_string(st));
    check_grad(r, "ops.rope.bwd", shape, dx, gx, n);

    /* The backward is the inverse rotation: bwd(fwd(x)) = x within 8·2^-24·|x|-ish. */
    float *back = falloc(n);
    peqa_rope_bwd(&rp, y, T, H, pos0, back);
    double rt = 0, xs = 0;
    for (size_t i = 0; i < n; i++) rt = fmax(rt, fabs((double)back[i] - x[i])), xs = fmax(xs, fabs(x[i]));
    t_result(r, rt <= 8 * EPS24 * xs, "ops.rope.roundtrip", ISA, "%s: max|bwd(fwd(x)) - x| = %.2e <= 8·2^-24·max|x| = %.2e",
             shape, rt, 8 * EPS24 * xs);

    /* Mutation control: the forward rotation used as the backward (angle sign wrong). */
    float *mut = falloc(n);
    peqa_rope_fwd(&rp, dy, T, H, pos0, mut);
    check_rejected(r, "ops.rope.bwd.control", mut, gx, n);

    free(x), free(dy), free(y), free(dx), free(k.x), free(k.y), free(yref), free(bound), free(yi), free(gx);
    free(back), free(mut), free(invf);
    peqa_rope_free(&rp);
}

/* formats.md §2.6: HF row h·hd + i·(hd/2) + j is Meta row h·hd + 2j + i, and
 * rope_hf(permuted q) == permuted rope_meta(q), Meta rotating adjacent pairs (2j, 2j+1) by the
 * same angle p·theta^(-2j/hd). Checked with our fp32 RoPE against a double Meta RoPE. */
static void test_rope_layout(trun *r, prng *g)
{
    const int64_t T = 5, H = 3, hd = 8, half = hd / 2;
    const double theta = 10000.0;
    size_t n = (size_t)(T * H * hd);
    float *meta = frand(g, n, 1.0f), *hf = falloc(n), *y = falloc(n);
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < 2; i++)
                for (int64_t j = 0; j < half; j++)
                    hf[(t * H + h) * hd + i * half + j] = meta[(t * H + h) * hd + 2 * j + i];
    peqa_rope rp;
    peqa_rope_init(&rp, hd, T, theta);
    peqa_rope_fwd(&rp, hf, T, H, 0, y);
    double err = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < half; j++) {
                double a = (double)t * pow(theta, -2.0 * (double)j / (double)hd);
                const float *m = meta + (t * H + h) * hd;
                double m0 = m[2 * j] * cos(a) - m[2 * j + 1] * sin(a); /* Meta: complex multiply */
                double m1 = m[2 * j] * sin(a) + m[2 * j + 1] * cos(a);
                err = fmax(err, fabs(y[(t * H + h) * hd + j] - m0));
                err = fmax(err, fabs(y[(t * H + h) * hd + half + j] - m1));
            }
    /* fp32 angle vs exact angle differs by <= p·2^-24 rad; plus fp32 rounding. */
    t_result(r, err <= 16 * T * EPS24, "ops.rope.hf_vs_meta", ISA,
             "rope_hf(permute(x)) == permute(rope_meta(x)): max err %.2e <= 16·T·2^-24 = %.2e", err, 16 * T * EPS24);
    peqa_rope_free(&rp);
    free(meta), free(hf), free(y);
}

/* ---- attention ------------------------------------------------------------------------------------ */

/* Double reference; also returns per output the bound c·2^-24·(hd·S + lim + 4)·Σ_j |p_j·v_j|
 * with S = max_j scale·Σ_e|q_e·k_je|: the score error (<= hd·2^-24·S) moves p_j by that much
 * relative, the softmax sum and division add (lim+1)·2^-24, the output sum (lim+1)·2^-24. */
static void ref_attn(const peqa_attn_shape *sh, const double *q, const double *k, const double *v, double *out,
                     double *bound)
{
    int64_t tq = sh->tq, tk = sh->tk, Hq = sh->n_heads, Hkv = sh->n_kv_heads, hd = sh->head_dim;
    double scale = 1.0 / sqrt((double)hd);
    double *s = malloc((size_t)tk * sizeof *s);
    for (int64_t i = 0; i < tq; i++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t g = h / (Hq / Hkv), lim = tk - tq + i;
            const double *qi = q + (i * Hq + h) * hd;
            double m = -INFINITY, S = 0, l = 0;
            for (int64_t j = 0; j <= lim; j++) {
                double d = 0, a = 0;
                for (int64_t e = 0; e < hd; e++) {
                    d += qi[e] * k[(j * Hkv + g) * hd + e];
                    a += fabs(qi[e] * k[(j * Hkv + g) * hd + e]);
                }
                s[j] = d * scale;
                m = fmax(m, s[j]);
                S = fmax(S, a * scale);
            }
            for (int64_t j = 0; j <= lim; j++) l += exp(s[j] - m);
            for (int64_t e = 0; e < hd; e++) {
                double o = 0, a = 0;
                for (int64_t j = 0; j <= lim; j++) {
                    double p = exp(s[j] - m) / l;
                    o += p * v[(j * Hkv + g) * hd + e];
                    a += fabs(p * v[(j * Hkv + g) * hd + e]);
                }
                out[(i * Hq + h) * hd + e] = o;
                if (bound) bound[(i * Hq + h) * hd + e] = 4 * EPS24 * ((double)hd * S + (double)lim + 4) * a;
            }
        }
    free(s);
}

typedef struct {
    peqa_attn_shape sh;
    double *q, *k, *v, *o;
    const float *c;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *a = p;
    ref_attn(&a->sh, a->q, a->k, a->v, a->o, NULL);
    return dot_d(a->c, a->o, (size_t)(a->sh.tq * a->sh.n_heads * a->sh.head_dim));
}

static void test_attn(trun *r, prng *g, int64_t tq, int64_t tk, int64_t Hq, int64_t Hkv, int64_t hd)
{
    peqa_attn_shape sh = {tq, tk, Hq, Hkv, hd};
    char shape[96];
    snprintf(shape, sizeof shape, "tq=%lld tk=%lld Hq=%lld Hkv=%lld hd=%lld", (long long)tq, (long long)tk,
             (long long)Hq, (long long)Hkv, (long long)hd);
    size_t nq = (size_t)(tq * Hq * hd), nk = (size_t)(tk * Hkv * hd);
    /* q, k in [-2, 2]: scores of a few units, a non-trivial softmax. */
    float *q = frand(g, nq, 2.0f), *k = frand(g, nk, 2.0f), *v = frand(g, nk, 1.0f), *dout = frand(g, nq, 1.0f);
    float *out = falloc(nq), *stats = falloc((size_t)(tq * Hq * 2));
    float *dq = falloc(nq), *dk = falloc(nk), *dv = falloc(nk);
    attn_ctx a = {sh, dcopy(q, nq), dcopy(k, nk), dcopy(v, nk), dalloc(nq), dout};
    double *oref = dalloc(nq), *bound = dalloc(nq);
    ref_attn(&sh, a.q, a.k, a.v, oref, bound);
    peqa_status st = peqa_attn_fwd(NULL, &sh, q, k, v, out, stats);
    t_result(r, st == PEQA_OK, "ops.attn.fwd.status", ISA, "%s", peqa_status_string(st));
    check_fwd(r, "ops.attn.fwd", shape, out, oref, bound, nq, "4·2^-24·(hd·S+lim+4)·Σ|p·v|");

    /* Poison the outputs: the backward must overwrite them. */
    for (size_t i = 0; i < nq; i++) dq[i] = NAN;
    for (size_t i = 0; i < nk; i++) dk[i] = dv[i] = NAN;
    st = peqa_attn_bwd(NULL, &sh, q, k, v, stats, dout, dq, dk, dv);
    t_result(r, st == PEQA_OK, "ops.attn.bwd.status", ISA, "%s", peqa_status_string(st));
    double *gq = dalloc(nq), *gk = dalloc(nk), *gv = dalloc(nk);
    fd_grad(attn_loss, &a, a.q, nq, gq);
    fd_grad(attn_loss, &a, a.k, nk, gk);
    fd_grad(attn_loss, &a, a.v, nk, gv);
    check_grad(r, "ops.attn.bwd.dq", shape, dq, gq, nq);
    check_grad(r, "ops.attn.bwd.dk", shape, dk, gk, nk);
    check_grad(r, "ops.attn.bwd.dv", shape, dv, gv, nk);
    check_rejected(r, "ops.attn.bwd.control", dv, gk, nk);

    free(q), free(k), free(v), free(dout), free(out), free(stats), free(dq), free(dk), free(dv);
    free(a.q), free(a.k), free(a.v), free(a.o), free(oref), free(bound), free(gq), free(gk), free(gv);
}

/* GQA equals MHA on repeated k/v, and KV-cache decoding equals the last rows of full attention:
 * both bitwise, since the operation sequence of each output row is the same. */
static void test_attn_equiv(trun *r, prng *g)
{
    const int64_t T = 7, Hq = 6, Hkv = 2, hd = 5, rep = Hq / Hkv;
    size_t nq = (size_t)(T * Hq * hd), nk = (size_t)(T * Hkv * hd);
    float *q = frand(g, nq, 2.0f), *k = frand(g, nk, 2.0f), *v = frand(g, nk, 1.0f);
    float *kr = falloc(nq), *vr = falloc(nq), *o1 = falloc(nq), *o2 = falloc(nq);
    float *s1 = falloc((size_t)(T * Hq * 2)), *s2 = falloc((size_t)(T * Hq * 2));
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t e = 0; e < hd; e++) {
                kr[(t * Hq + h) * hd + e] = k[(t * Hkv + h / rep) * hd + e];
                vr[(t * Hq + h) * hd + e] = v[(t * Hkv + h / rep) * hd + e];
            }
    peqa_attn_shape gqa = {T, T, Hq, Hkv, hd}, mha = {T, T, Hq, Hq, hd};
    peqa_attn_fwd(NULL, &gqa, q, k, v, o1, s1);
    peqa_attn_fwd(NULL, &mha, q, kr, vr, o2, s2);
    t_result(r, t_first_diff(o1, o2, 4, (int64_t)nq) < 0 && t_first_diff(s1, s2, 4, T * Hq * 2) < 0,
             "ops.attn.gqa_is_repeat_kv", ISA, "T=%lld Hq=%lld Hkv=%lld hd=%lld: output and stats bitwise",
             (long long)T, (long long)Hq, (long long)Hkv, (long long)hd);
    int ok = 1;
    for (int64_t tq = 1; tq <= T; tq++) {
        peqa_attn_shape dec = {tq, T, Hq, Hkv, hd};
        size_t off = (size_t)((T - tq) * Hq * hd);
        peqa_attn_fwd(NULL, &dec, q + off, k, v, o2, s2);
        ok &= t_first_diff(o2, o1 + off, 4, tq * Hq * hd) < 0;
        ok &= t_first_diff(s2, s1 + (size_t)((T - tq) * Hq * 2), 4, tq * Hq * 2) < 0;
    }
    t_result(r, ok, "ops.attn.kv_cache", ISA, "the last tq = 1..%lld rows against all %lld keys equal full attention bitwise",
             (long long)T, (long long)T);
    free(q), free(k), free(v), free(kr), free(vr), free(o1), free(o2), free(s1), free(s2);
}

/* Every ISA level's attention slots at 1, 2, 3 and 7 threads against the reference (ctx = NULL),
 * bitwise: output, stats, dq, dk, dv. Shapes: GQA with rep 1, 2, 4, decoding (tq < tk), head
 * dimensions that are not multiples of the vector width, and one long enough (tk = 67) for the
 * vector loops to run several blocks plus tails. */
static void test_attn_isa(trun *r, prng *g)
{
    static const int64_t shapes[][5] = {{67, 67, 4, 2, 20}, {9, 9, 3, 3, 7}, {1, 13, 8, 2, 16}, {5, 12, 4, 1, 33},
                                        {2, 2, 1, 1, 1}};
    static const int threads[] = {1, 2, 3, 7};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t *d = shapes[si];
        peqa_attn_shape sh = {d[0], d[1], d[2], d[3], d[4]};
        size_t nq = (size_t)(d[0] * d[2] * d[4]), nk = (size_t)(d[1] * d[3] * d[4]), ns = (size_t)(d[0] * d[2] * 2);
        float *q = frand(g, nq, 2.0f), *k = frand(g, nk, 2.0f), *v = frand(g, nk, 1.0f), *dout = frand(g, nq, 1.0f);
        float *ref = falloc(2 * nq + ns + 2 * nk), *got = falloc(2 * nq + ns + 2 * nk);
        /* layout of both buffers: out | stats | dq | dk | dv */
        peqa_status st = peqa_attn_fwd(NULL, &sh, q, k, v, ref, ref + nq);
        if (!st) st = peqa_attn_bwd(NULL, &sh, q, k, v, ref + nq, dout, ref + nq + ns, ref + 2 * nq + ns, ref + 2 * nq + ns + nk);
        for (int ii = 0; ii < t_nisas; ii++)
            for (int ti = 0; ti < 4; ti++) {
                char nm[128];
                snprintf(nm, sizeof nm, "ops.attn.isa/tq=%lld,tk=%lld,Hq=%lld,Hkv=%lld,hd=%lld/threads=%d", (long long)d[0],
                         (long long)d[1], (long long)d[2], (long long)d[3], (long long)d[4], threads[ti]);
                peqa_ctx *ctx = t_ctx(t_isas[ii], threads[ti]);
                if (!ctx) {
                    if (ti == 0) t_skip(r, nm, t_isas[ii], "ISA not available on this CPU");
                    continue;
                }
                for (size_t i = 0; i < 2 * nq + ns + 2 * nk; i++) got[i] = NAN;
                peqa_status s2 = peqa_attn_fwd(ctx, &sh, q, k, v, got, got + nq);
                if (!s2)
                    s2 = peqa_attn_bwd(ctx, &sh, q, k, v, got + nq, dout, got + nq + ns, got + 2 * nq + ns,
                                       got + 2 * nq + ns + nk);
                int64_t diff = st || s2 ? -2 : t_first_diff(got, ref, 4, (int64_t)(2 * nq + ns + 2 * nk));
                t_result(r, !st && !s2 && diff < 0, nm, t_isas[ii],
                         "out, stats, dq, dk, dv vs the reference: first differing float %lld of %zu", (long long)diff,
                         2 * nq + ns + 2 * nk);
                peqa_ctx_free(ctx);
            }
        free(q), free(k), free(v), free(dout), free(ref), free(got);
    }
}

/* ---- SwiGLU ------------------------------------------------------------------------------------------ */

typedef struct {
    size_t n;
    double *g, *u;
    const float *c;
} swi_ctx;

static double swi_loss(void *p)
{
    swi_ctx *k = p;
    double L = 0;
    for (size_t i = 0; i < k->n; i++) L += (double)k->c[i] * (k->g[i] / (1.0 + exp(-k->g[i]))) * k->u[i];
    return L;
}

static void test_swiglu(trun *r, prng *g, size_t n)
{
    char shape[32];
    snprintf(shape, sizeof shape, "n=%zu", n);
    float *gt = frand(g, n, 6.0f), *u = frand(g, n, 2.0f), *dh = frand(g, n, 1.0f);
    float *h = falloc(n), *dg = falloc(n), *du = falloc(n);
    swi_ctx k = {n, dcopy(gt, n), dcopy(u, n), dh};
    double *href = dalloc(n), *bound = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        href[i] = k.g[i] / (1.0 + exp(-k.g[i])) * k.u[i];
        bound[i] = 6 * EPS24 * fabs(href[i]); /* silu 4·2^-24 relative (see activations) + product */
    }
    peqa_status st = peqa_swiglu_fwd(gt, u, (int64_t)n, h);
    t_result(r, st == PEQA_OK, "ops.swiglu.fwd.status", ISA, "%s", peqa_status_string(st));
    check_fwd(r, "ops.swiglu.fwd", shape, h, href, bound, n, "6·2^-24·|ref|");
    st = peqa_swiglu_bwd(gt, u, dh, (int64_t)n, dg, du);
    t_result(r, st == PEQA_OK, "ops.swiglu.bwd.status", ISA, "%s", peqa_status_string(st));
    double *gg = dalloc(n), *gu = dalloc(n);
    fd_grad(swi_loss, &k, k.g, n, gg);
    fd_grad(swi_loss, &k, k.u, n, gu);
    check_grad(r, "ops.swiglu.bwd.dg", shape, dg, gg, n);
    check_grad(r, "ops.swiglu.bwd.du", shape, du, gu, n);
    /* In place: dg over g, du over u (the documented aliasing). */
    float *g2 = malloc(n * sizeof *g2), *u2 = malloc(n * sizeof *u2);
    memcpy(g2, gt, n * sizeof *g2);
    memcpy(u2, u, n * sizeof *u2);
    peqa_swiglu_bwd(g2, u2, dh, (int64_t)n, g2, u2);
    t_result(r, t_first_diff(g2, dg, 4, (int64_t)n) < 0 && t_first_diff(u2, du, 4, (int64_t)n) < 0,
             "ops.swiglu.bwd.inplace", ISA, "%s: dg over g and du over u, bitwise", shape);
    /* Mutation control: σ(g) in place of silu'(g). */
    float *mut = falloc(n);
    for (size_t i = 0; i < n; i++) mut[i] = dh[i] * u[i] * peqa_sigmoidf(gt[i]);
    check_rejected(r, "ops.swiglu.bwd.control", mut, gg, n);
    free(gt), free(u), free(dh), free(h), free(dg), free(du), free(k.g), free(k.u), free(href), free(bound);
    free(gg), free(gu), free(g2), free(u2), free(mut);
}

/* ---- cross-entropy --------------------------------------------------------------------------------- */

static double ref_xent(const double *z, const int32_t *tg, int64_t T, int64_t V, double *losses)
{
    double acc = 0;
    int64_t cnt = 0;
    for (int64_t t = 0; t < T; t++) {
        if (losses) losses[t] = 0;
        if (tg[t] == PEQA_TARGET_IGNORE) continue;
        double m = -INFINITY, l = 0;
        for (int64_t v = 0; v < V; v++) m = fmax(m, z[t * V + v]);
        for (int64_t v = 0; v < V; v++) l += exp(z[t * V + v] - m);
        double loss = m + log(l) - z[t * V + tg[t]];
        if (losses) losses[t] = loss;
        acc += loss;
        cnt++;
    }
    return cnt ? acc / (double)cnt : 0;
}

typedef struct {
    int64_t T, V;
    double *z;
    const int32_t *tg;
    double dloss;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *k = p;
    return k->dloss * ref_xent(k->z, k->tg, k->T, k->V, NULL);
}

static void test_xent(trun *r, prng *g, int64_t T, int64_t V, int with_ignore)
{
    char shape[64];
    snprintf(shape, sizeof shape, "T=%lld V=%lld%s", (long long)T, (long long)V, with_ignore ? " ignore" : "");
    size_t n = (size_t)(T * V);
    float *z = frand(g, n, 4.0f), *stats = falloc((size_t)T * 2), *losses = falloc((size_t)T), *dz = falloc(n);
    int32_t *tg = malloc((size_t)T * sizeof *tg);
    for (int64_t t = 0; t < T; t++) tg[t] = (int32_t)prng_below(g, (uint64_t)V);
    if (with_ignore) tg[0] = tg[T - 1] = PEQA_TARGET_IGNORE;
    xent_ctx k = {T, V, dcopy(z, n), tg, 0.75};
    double *lref = dalloc((size_t)T), *bound = dalloc((size_t)T);
    double mref = ref_xent(k.z, tg, T, V, lref);
    /* Per token: |m − z_y| rounds once, l is a sum of V positive terms each within 1 ulp (relative
     * error <= (V+1)·2^-24, so log l is off by as much absolutely), log adds 1 ulp, the final sum
     * 1 ulp: |loss − ref| <= 2·2^-24·(|m−z_y| + |log l| + V + 2). */
    double mb = 0, sum_abs = 0;
    int64_t cnt = 0;
    for (int64_t t = 0; t < T; t++) {
        if (tg[t] == PEQA_TARGET_IGNORE) {
            bound[t] = 0;
            continue;
        }
        double m = -INFINITY, l = 0;
        for (int64_t v = 0; v < V; v++) m = fmax(m, k.z[t * V + v]);
        for (int64_t v = 0; v < V; v++) l += exp(k.z[t * V + v] - m);
        bound[t] = 2 * EPS24 * (fabs(m - k.z[t * V + tg[t]]) + fabs(log(l)) + (double)V + 2);
        mb += bound[t];
        sum_abs += fabs(lref[t]);
        cnt++;
    }
    float mean = -1;
    peqa_status st = peqa_xent_fwd(z, tg, T, V, stats, losses, &mean);
    t_result(r, st == PEQA_OK, "ops.xent.fwd.status", ISA, "%s", peqa_status_string(st));
    check_fwd(r, "ops.xent.fwd.losses", shape, losses, lref, bound, (size_t)T, "2·2^-24·(|m-z_y|+|log l|+V+2)");
    /* mean: the per-token bounds plus the sequential sum (cnt·2^-24·Σ|loss|) and the division. */
    double mbound = cnt ? (mb + (double)(cnt + 1) * EPS24 * sum_abs) / (double)cnt : 0;
    t_result(r, fabs(mean - mref) <= mbound, "ops.xent.fwd.mean", ISA, "%s: |mean-ref| = %.2e <= %.2e (mean %.7f)", shape,
             fabs(mean - mref), mbound, (double)mean);

    st = peqa_xent_bwd(z, tg, stats, 0.75f, T, V, dz);
    t_result(r, st == PEQA_OK, "ops.xent.bwd.status", ISA, "%s", peqa_status_string(st));
    double *gz = dalloc(n);
    fd_grad(xent_loss, &k, k.z, n, gz);
    check_grad(r, "ops.xent.bwd", shape, dz, gz, n);
    /* In place over the logits: same bits. */
    float *zi = malloc(n * sizeof *zi);
    memcpy(zi, z, n * sizeof *zi);
    peqa_xent_bwd(zi, tg, stats, 0.75f, T, V, zi);
    t_result(r, t_first_diff(zi, dz, 4, (int64_t)n) < 0, "ops.xent.bwd.inplace", ISA, "%s: bitwise", shape);
    /* Mutation control: the one-hot term forgotten (softmax·c alone). */
    float *mut = malloc(n * sizeof *mut);
    memcpy(mut, dz, n * sizeof *mut);
    for (int64_t t = 0; t < T; t++)
        if (tg[t] != PEQA_TARGET_IGNORE) mut[t * V + tg[t]] += 0.75f / (float)cnt;
    check_rejected(r, "ops.xent.bwd.control", mut, gz, n);
    free(z), free(stats), free(losses), free(dz), free(tg), free(k.z), free(lref), free(bound), free(gz), free(zi);
    free(mut);
}

static void test_softmax(trun *r, prng *g)
{
    const int64_t n = 50;
    float *z = frand(g, (size_t)n, 30.0f), *p = falloc((size_t)n);
    peqa_softmax(z, n, p);
    double m = -INFINITY, l = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, z[i]);
    for (int64_t i = 0; i < n; i++) l += exp((double)z[i] - m);
    for (int64_t i = 0; i < n; i++) {
        double ref = exp((double)z[i] - m) / l;
        /* exp 1 ulp, the sum (n+1)·2^-24 relative, the division 1/2 ulp. */
        worst = fmax(worst, fabs(p[i] - ref) / (2 * EPS24 * ((double)n + 3) * ref + 1e-45));
    }
    t_result(r, worst <= 1, "ops.softmax", ISA, "n=%lld, |z| <= 30: worst uses %.3f of 2·(n+3)·2^-24·p", (long long)n, worst);
    free(z), free(p);
}

/* ---- embedding ----------------------------------------------------------------------------------------- */

static void test_embed(trun *r, prng *g)
{
    const int64_t V = 11, D = 7, T = 9;
    float *E = frand(g, (size_t)(V * D), 1.0f), *out = falloc((size_t)(T * D)), *dout = frand(g, (size_t)(T * D), 1.0f);
    float *dE = falloc((size_t)(V * D));
    int32_t tok[9] = {3, 0, 10, 3, 5, 3, 10, 1, 0};
    peqa_status st = peqa_embed_fwd(E, V, D, tok, T, out);
    int ok = st == PEQA_OK;
    for (int64_t t = 0; t < T; t++) ok &= !memcmp(out + t * D, E + tok[t] * D, (size_t)D * sizeof *out);
    t_result(r, ok, "ops.embed.fwd", ISA, "V=%lld D=%lld T=%lld: rows copied bitwise", (long long)V, (long long)D, (long long)T);
    /* Backward accumulates onto dE (start at 1) in token order: the float sequence is the
     * reference here, and the double sum bounds it. */
    for (int64_t i = 0; i < V * D; i++) dE[i] = 1.0f;
    st = peqa_embed_bwd(dout, tok, T, V, D, dE);
    ok = st == PEQA_OK;
    double worst = 0;
    for (int64_t v = 0; v < V; v++)
        for (int64_t i = 0; i < D; i++) {
            float f = 1.0f;
            double d = 1.0, a = 1.0;
            for (int64_t t = 0; t < T; t++)
                if (tok[t] == v) f = f + dout[t * D + i], d += dout[t * D + i], a += fabs(dout[t * D + i]);
            ok &= dE[v * D + i] == f;
            worst = fmax(worst, fabs(dE[v * D + i] - d) / (T * EPS24 * a));
        }
    t_result(r, ok && worst <= 1, "ops.embed.bwd", ISA,
             "dE += scatter in token order: bitwise vs the sequential float sum; vs double %.3f of T·2^-24·Σ|terms|", worst);
    free(E), free(out), free(dout), free(dE);
}

/* ---- argument validation --------------------------------------------------------------------------------- */

static void test_validation(trun *r)
{
    float buf[64], keep[64];
    for (int i = 0; i < 64; i++) buf[i] = keep[i] = (float)i;
    float w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, rs[8];
    int32_t tg[4] = {0, 1, 2, 3}, bad_tg[4] = {0, 1, 4, 3}, neg_tg[4] = {0, -1, 2, 3};
    peqa_rope rp;
    peqa_rope_init(&rp, 4, 4, 10000.0);
    peqa_rope z0;
    peqa_attn_shape s_badgqa = {2, 2, 3, 2, 4}, s_tq = {3, 2, 2, 2, 4}, s_zero = {2, 2, 2, 2, 0};
    struct {
        const char *what;
        peqa_status got, want;
    } c[] = {
        {"rmsnorm T=0", peqa_rmsnorm_fwd(buf, w, 1e-5f, 0, 4, buf, rs), PEQA_ERR_SHAPE},
        {"rmsnorm D=-1", peqa_rmsnorm_fwd(buf, w, 1e-5f, 2, -1, buf, rs), PEQA_ERR_SHAPE},
        {"rmsnorm eps=0", peqa_rmsnorm_fwd(buf, w, 0.0f, 2, 4, buf, rs), PEQA_ERR_ARG},
        {"rmsnorm eps=NaN", peqa_rmsnorm_fwd(buf, w, NAN, 2, 4, buf, rs), PEQA_ERR_ARG},
        {"rmsnorm w=NULL", peqa_rmsnorm_fwd(buf, NULL, 1e-5f, 2, 4, buf, rs), PEQA_ERR_NULL},
        {"rmsnorm bwd rstd=NULL", peqa_rmsnorm_bwd(buf, w, NULL, buf, 2, 4, buf, NULL), PEQA_ERR_NULL},
        {"rmsnorm huge D", peqa_rmsnorm_fwd(buf, w, 1e-5f, INT64_MAX / 2, INT64_MAX / 2, buf, rs), PEQA_ERR_OVERFLOW},
        {"rope odd head_dim", peqa_rope_init(&z0, 5, 4, 10000.0), PEQA_ERR_SHAPE},
        {"rope theta=0", peqa_rope_init(&z0, 4, 4, 0.0), PEQA_ERR_ARG},
        {"rope max_pos=0", peqa_rope_init(&z0, 4, 0, 10000.0), PEQA_ERR_SHAPE},
        {"rope past table", peqa_rope_fwd(&rp, buf, 2, 1, 3, buf), PEQA_ERR_RANGE},
        {"rope pos0<0", peqa_rope_bwd(&rp, buf, 2, 1, -1, buf), PEQA_ERR_RANGE},
        {"rope heads=0", peqa_rope_fwd(&rp, buf, 2, 0, 0, buf), PEQA_ERR_SHAPE},
        {"attn Hq % Hkv", peqa_attn_fwd(NULL, &s_badgqa, buf, buf, buf, buf, NULL), PEQA_ERR_SHAPE},
        {"attn tq > tk", peqa_attn_fwd(NULL, &s_tq, buf, buf, buf, buf, NULL), PEQA_ERR_SHAPE},
        {"attn head_dim=0", peqa_attn_fwd(NULL, &s_zero, buf, buf, buf, buf, NULL), PEQA_ERR_SHAPE},
        {"attn bwd stats=NULL", peqa_attn_bwd(NULL, &(peqa_attn_shape){2, 2, 2, 1, 4}, buf, buf, buf, NULL, buf, buf, buf, buf),
         PEQA_ERR_NULL},
        {"swiglu n=0", peqa_swiglu_fwd(buf, buf, 0, buf), PEQA_ERR_SHAPE},
        {"xent target = V", peqa_xent_fwd(buf, bad_tg, 4, 4, NULL, buf, NULL), PEQA_ERR_RANGE},
        {"xent target = -1", peqa_xent_bwd(buf, neg_tg, rs, 1.0f, 4, 4, buf), PEQA_ERR_RANGE},
        {"xent V=0", peqa_xent_fwd(buf, tg, 4, 0, NULL, buf, NULL), PEQA_ERR_SHAPE},
        {"embed token = V", peqa_embed_fwd(buf, 4, 4, bad_tg, 4, buf), PEQA_ERR_RANGE},
        {"embed bwd token < 0", peqa_embed_bwd(buf, neg_tg, 4, 4, 4, buf), PEQA_ERR_RANGE},
        {"softmax n=0", peqa_softmax(buf, 0, buf), PEQA_ERR_SHAPE},
    };
    int ok = 1;
    char bad[256] = "";
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (c[i].got != c[i].want && ok)
            ok = 0, snprintf(bad, sizeof bad, "%s: got \"%s\", want \"%s\"", c[i].what, peqa_status_string(c[i].got),
                             peqa_status_string(c[i].want));
    int untouched = !memcmp(buf, keep, sizeof buf);
    t_result(r, ok && untouched, "ops.validation", ISA, "%zu bad calls: %s; outputs %s", sizeof c / sizeof c[0],
             ok ? "each returns its status" : bad, untouched ? "untouched" : "WRITTEN on error");
    int msg = strstr(peqa_last_error(), "peqa_softmax") != NULL;
    t_result(r, msg, "ops.validation.message", ISA, "last error: \"%s\"", peqa_last_error());
    peqa_rope_free(&rp);
}

/* ---- driver ------------------------------------------------------------------------------------------------ */

void test_ops(trun *r)
{
    prng g;
    prng_seed(&g, r->seed ^ 0x6f7073ull);
    test_explog(r);
    test_rmsnorm(r, &g, 3, 8, 1e-5f);
    test_rmsnorm(r, &g, 2, 13, 1e-6f);
    /* D = 1 with a large eps: with eps << x², y = w·sign(x) and dx = w·eps/(x²+eps)^1.5 is a
     * cancellation of two O(1) terms, ill-conditioned in any precision. */
    test_rmsnorm(r, &g, 1, 1, 0.25f);
    test_rope(r, &g, 3, 2, 8, 0, 10000.0);
    test_rope(r, &g, 2, 3, 6, 37, 500000.0);
    test_rope(r, &g, 4, 1, 2, 5, 10000.0);
    test_rope_layout(r, &g);
    test_attn(r, &g, 5, 5, 4, 2, 6);
    test_attn(r, &g, 4, 4, 3, 1, 5);
    test_attn(r, &g, 3, 3, 2, 2, 4);
    test_attn(r, &g, 2, 5, 4, 2, 3);
    test_attn(r, &g, 1, 1, 1, 1, 1);
    test_attn_equiv(r, &g);
    test_attn_isa(r, &g);
    test_swiglu(r, &g, 40);
    test_xent(r, &g, 4, 7, 0);
    test_xent(r, &g, 5, 11, 1);
    test_xent(r, &g, 1, 1, 0);
    test_softmax(r, &g);
    test_embed(r, &g);
    test_validation(r);
}
