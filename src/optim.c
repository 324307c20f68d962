/* AdamW, global-norm clipping and the learning-rate schedule (see optim.h for the exact
 * operation sequences). Only + − × ÷, sqrt and fmaf: no libm transcendental. */
#include <math.h>
#include "internal.h"
#include "optim.h"

peqa_status peqa_adamw_init(peqa_adamw *o, float beta1, float beta2, float eps)
{
    if (!o) return peqa__fail(PEQA_ERR_NULL, "adamw: state is NULL");
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return peqa__fail(PEQA_ERR_ARG, "adamw: beta1 = %g, beta2 = %g: both must be in [0, 1)", (double)beta1,
                          (double)beta2);
    if (!(eps > 0.0f) || !isfinite(eps))
        return peqa__fail(PEQA_ERR_ARG, "adamw: eps = %g: must be finite and > 0", (double)eps);
    *o = (peqa_adamw){.beta1 = beta1, .beta2 = beta2, .eps = eps, .step = 0, .b1t = 1.0f, .b2t = 1.0f};
    return PEQA_OK;
}

void peqa_adamw_begin(peqa_adamw *o)
{
    o->step++;
    o->b1t = o->b1t * o->beta1;
    o->b2t = o->b2t * o->beta2;
}

void peqa_adamw_update(const peqa_adamw *o, float lr, float wd, float gscale, float *p, const float *g, float *m,
                       float *v, int64_t n)
{
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
    const float c1 = 1.0f - o->b1t, c2 = 1.0f - o->b2t;
    for (int64_t i = 0; i < n; i++) {
        const float gs = g[i] * gscale;
        const float mi = fmaf(b1, m[i], omb1 * gs);
        const float vi = fmaf(b2, v[i], omb2 * (gs * gs));
        m[i] = mi, v[i] = vi;
        const float mh = mi / c1, vh = vi / c2;
        const float u = mh / (sqrtf(vh) + eps);
        p[i] = p[i] - lr * (u + wd * p[i]);
    }
}

double peqa_sumsq(const float *g, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s = s + (double)g[i] * (double)g[i];
    return s;
}

float peqa_clip_scale(double sumsq, float clip)
{
    const double norm = sqrt(sumsq); /* correctly rounded (IEEE-754 squareRoot) */
    if (clip > 0.0f && norm > (double)clip) return (float)((double)clip / norm);
    return 1.0f;
}

double peqa_cos_sched(double x)
{
    const double pi = 3.14159265358979323846;
    double sign = 1.0;
    if (x > pi / 2) x = pi - x, sign = -1.0;
    const double x2 = x * x;
    double acc = 1.0;
    /* innermost factor first: i = 11 is the x^22/22! term's ratio to the x^20 term */
    for (int i = 11; i >= 1; i--) acc = 1.0 - x2 / ((double)(2 * i) * (double)(2 * i - 1)) * acc;
    return sign * acc;
}

float peqa_lr_at(peqa_sched_kind kind, float lr, float min_ratio, int64_t warmup, int64_t total, int64_t step)
{
    if (step < 0) step = 0;
    if (warmup > 0 && step < warmup) return (float)((double)lr * (double)(step + 1) / (double)warmup);
    if (warmup < 0) warmup = 0;
    if (kind == PEQA_SCHED_CONSTANT || total <= warmup) return lr;
    double p = (double)(step - warmup) / (double)(total - warmup);
    if (p > 1.0) p = 1.0;
    const double lo = (double)lr * (double)min_ratio;
    const double f = kind == PEQA_SCHED_LINEAR ? 1.0 - p : 0.5 * (1.0 + peqa_cos_sched(3.14159265358979323846 * p));
    return (float)(lo + ((double)lr - lo) * f);
}
