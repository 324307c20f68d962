/* AdamW, global-norm clipping and the learning-rate schedule (see optim.h for the sequences). */
#include <math.h>
#include "internal.h"
#include "optim.h"

peqa_status peqa_adamw_init(peqa_adamw *o, float beta1, float beta2, float eps, float weight_decay)
{
    if (!o) return peqa__fail(PEQA_ERR_NULL, "adamw: state is NULL");
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f) || !(eps > 0.0f) ||
        !(weight_decay >= 0.0f) || !isfinite(eps) || !isfinite(weight_decay))
        return peqa__fail(PEQA_ERR_ARG, "adamw: need 0 <= beta1, beta2 < 1, eps > 0, weight decay >= 0");
    *o = (peqa_adamw){.beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay,
                      .step = 0, .b1t = 1.0f, .b2t = 1.0f};
    return PEQA_OK;
}

void peqa_adamw_begin(peqa_adamw *o)
{
    o->step++;
    o->b1t = o->b1t * o->beta1;
    o->b2t = o->b2t * o->beta2;
}

void peqa_adamw_update(const peqa_adamw *o, float lr, float gscale, float *p, const float *g, float *m,
                       float *v, int64_t n)
{
    const float omb1 = 1.0f - o->beta1, omb2 = 1.0f - o->beta2;
    const float c1 = 1.0f - o->b1t, c2 = 1.0f - o->b2t;
    for (int64_t i = 0; i < n; i++) {
        float gs = g[i] * gscale;
        m[i] = fmaf(o->beta1, m[i], omb1 * gs);
        v[i] = fmaf(o->beta2, v[i], omb2 * (gs * gs));
        float mh = m[i] / c1, vh = v[i] / c2;
        p[i] = p[i] - lr * (mh / (sqrtf(vh) + o->eps) + o->weight_decay * p[i]);
    }
}

double peqa_sumsq(const float *g, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

float peqa_clip_scale(double sumsq, float clip)
{
    double norm = sqrt(sumsq);
    if (clip > 0.0f && norm > (double)clip) return (float)((double)clip / norm);
    return 1.0f;
}

double peqa_cos_sched(double x)
{
    const double pi = 3.14159265358979323846;
    double sign = 1.0;
    if (x > pi / 2) x = pi - x, sign = -1.0;
    /* cos x = Σ (-1)^i x^(2i) / (2i)!, i = 0..11, Horner in x² from the highest term */
    double x2 = x * x, acc;
    /* Written out: c = 1 - x²/2 (1 - x²/12 (1 - x²/30 (...))) — the nested Horner form of the
     * Taylor series, each factor 1/((2i)(2i-1)) exact enough in double. */
    acc = 1.0;
    for (int i = 11; i >= 1; i--) acc = 1.0 - x2 / ((double)(2 * i) * (double)(2 * i - 1)) * acc;
    return sign * acc;
}

float peqa_lr_at(peqa_sched_kind kind, float lr, float min_ratio, int64_t warmup, int64_t total, int64_t step)
{
    if (warmup > 0 && step < warmup) return (float)((double)lr * (double)(step + 1) / (double)warmup);
    if (kind == PEQA_SCHED_CONSTANT || total <= warmup + 1) return lr;
    double p = (double)(step - warmup) / (double)(total - warmup - 1); /* 0 .. 1 */
    if (p > 1.0) p = 1.0;
    double lo = (double)lr * (double)min_ratio, f;
    if (kind == PEQA_SCHED_LINEAR) f = 1.0 - p;
    else f = 0.5 * (1.0 + peqa_cos_sched(3.14159265358979323846 * p));
    return (float)(lo + ((double)lr - lo) * f);
}
