/* peqa — optimiser and learning-rate schedule (internal). Deterministic: fixed operation
 * sequences in IEEE binary32/binary64 with no libm transcendental, so a training run gives the
 * same bits on every ISA, thread count and machine. */
#ifndef PEQA_OPTIM_H
#define PEQA_OPTIM_H
#include <stdint.h>
#include "peqa.h"

typedef struct peqa_adamw {
    float lr_unused; /* the learning rate is passed per step */
    float beta1, beta2, eps, weight_decay;
    int64_t step;     /* steps taken */
    float b1t, b2t;   /* beta1^step, beta2^step, by repeated multiplication (no powf) */
} peqa_adamw;

/* beta1 0.9, beta2 0.999, eps 1e-8 by default; validates ranges. */
peqa_status peqa_adamw_init(peqa_adamw *o, float beta1, float beta2, float eps, float weight_decay);

/* One AdamW step over n parameters (fp32 master values p, moments m, v), gradient g scaled by
 * gscale (global-norm clipping). Per element, in this order:
 *     gs = g * gscale
 *     m  = fmaf(beta1, m, (1 - beta1) * gs)
 *     v  = fmaf(beta2, v, (1 - beta2) * (gs * gs))
 *     mh = m / (1 - beta1^t),  vh = v / (1 - beta2^t)
 *     p  = p - lr * (mh / (sqrtf(vh) + eps) + wd * p)          (decoupled weight decay)
 * Call peqa_adamw_begin once per step before the per-tensor updates. */
void peqa_adamw_begin(peqa_adamw *o);
void peqa_adamw_update(const peqa_adamw *o, float lr, float gscale, float *p, const float *g, float *m,
                       float *v, int64_t n);

/* Sum of squares of g in double, index order (callers add tensors in a fixed order). */
double peqa_sumsq(const float *g, int64_t n);
/* The clipping factor for a global norm: clip / norm when norm > clip > 0, else 1. */
float peqa_clip_scale(double sumsq, float clip);

typedef enum { PEQA_SCHED_COSINE = 0, PEQA_SCHED_LINEAR = 1, PEQA_SCHED_CONSTANT = 2 } peqa_sched_kind;
/* Learning rate for step (0-based) of total: linear warm-up over `warmup` steps from lr/warmup
 * to lr, then cosine or linear decay to lr * min_ratio at the last step. */
float peqa_lr_at(peqa_sched_kind kind, float lr, float min_ratio, int64_t warmup, int64_t total, int64_t step);
/* cos(x) for x in [0, pi], in double with + and * only (Taylor polynomial on [0, pi/2] and
 * the reflection cos(x) = -cos(pi - x)); |error| < 1e-16. */
double peqa_cos_sched(double x);

#endif
