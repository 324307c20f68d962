/* peqa — optimiser, gradient clipping and learning-rate schedule (internal).
 *
 * Deterministic by construction: every value is one fixed sequence of IEEE-754 binary32 (and,
 * for the schedule and the gradient norm, binary64) operations using only + − × ÷, sqrt and
 * fmaf, never a libm transcendental (SPEC §6). The same inputs give the same bits on every ISA,
 * thread count and machine, so a training run (src/train.c) is reproducible bit for bit and a
 * run split by a checkpoint equals the unsplit run.
 */
#ifndef PEQA_OPTIM_H
#define PEQA_OPTIM_H
#include <stdint.h>
#include "peqa.h"

/* AdamW (Loshchilov & Hutter) with decoupled weight decay. The state shared by all tensors:
 * the hyperparameters, the step count t and the bias-correction powers beta^t, kept by repeated
 * binary32 multiplication (b1t = b1t · beta1 once per step; no powf), so they are exact functions
 * of t and can be saved and restored bit for bit. */
typedef struct peqa_adamw {
    float beta1, beta2, eps;
    int64_t step;   /* steps taken (t) */
    float b1t, b2t; /* beta1^t, beta2^t (1 before the first step) */
} peqa_adamw;

/* Usual values: beta1 0.9, beta2 0.999, eps 1e-8. Needs 0 <= beta1, beta2 < 1 and eps finite
 * and > 0 (PEQA_ERR_ARG otherwise). */
peqa_status peqa_adamw_init(peqa_adamw *o, float beta1, float beta2, float eps);

/* Starts a step: t = t + 1, b1t = b1t · beta1, b2t = b2t · beta2. Call once per step, before the
 * per-tensor updates of that step. */
void peqa_adamw_begin(peqa_adamw *o);

/* One AdamW update of n parameters p (fp32 master values) with moments m, v and gradient g,
 * learning rate lr, weight decay wd (0 disables it for this tensor) and gradient factor gscale
 * (the clipping factor). With c1 = 1 − b1t and c2 = 1 − b2t (binary32), per element i ascending,
 * exactly these binary32 operations:
 *     gs   = g · gscale
 *     m    = fmaf(beta1, m, (1 − beta1) · gs)
 *     v    = fmaf(beta2, v, (1 − beta2) · (gs · gs))
 *     mh   = m / c1
 *     vh   = v / c2
 *     u    = mh / (sqrtf(vh) + eps)
 *     p    = p − lr · (u + wd · p)
 * (the decoupled decay p ← p − lr·wd·p of AdamW folded into the same subtraction). Elements are
 * independent, so the result does not depend on how a caller splits a tensor. Non-finite inputs
 * propagate; the caller checks the gradient before and the parameters after. */
void peqa_adamw_update(const peqa_adamw *o, float lr, float wd, float gscale, float *p, const float *g, float *m,
                       float *v, int64_t n);

/* Sum of squares of g[0, n) in binary64, acc = acc + g[i]·g[i] for i ascending (each product is
 * exact in binary64). A global norm adds the tensors' sums in a fixed order. */
double peqa_sumsq(const float *g, int64_t n);
/* The clipping factor for a global gradient norm √sumsq: (float)(clip / norm) when clip > 0 and
 * norm > clip, else 1. The caller must have checked that sumsq is finite: clip / ∞ = 0 would
 * silently zero a non-finite gradient instead of reporting it. */
float peqa_clip_scale(double sumsq, float clip);

typedef enum { PEQA_SCHED_COSINE = 0, PEQA_SCHED_LINEAR = 1, PEQA_SCHED_CONSTANT = 2 } peqa_sched_kind;

/* Learning rate of step `step` (0-based) of a run of `total` steps, in binary64, rounded to
 * binary32 once at the end:
 *  - warm-up, step < warmup:     lr · (step + 1) / warmup      (reaches lr at step warmup − 1)
 *  - then with lo = lr · min_ratio and p = (step − warmup) / (total − warmup), clamped to
 *    [0, 1] (p = 0 at the first step after the warm-up; p = 1 would be step `total`, one past
 *    the last, so the last step still has a small positive rate and no step is wasted at lo —
 *    the convention of transformers' get_cosine_schedule_with_warmup):
 *      cosine:   lo + (lr − lo) · ½(1 + cos(π·p))              (peqa_cos_sched, no libm)
 *      linear:   lo + (lr − lo) · (1 − p)
 *      constant: lr
 *    When total <= warmup there is nothing to decay over: lr.
 * Endpoints are exact: the first decay step gives lr, step `total` (and beyond) gives lo
 * (cos π = −1 exactly, see peqa_cos_sched). */
float peqa_lr_at(peqa_sched_kind kind, float lr, float min_ratio, int64_t warmup, int64_t total, int64_t step);

/* cos(x) for x in [0, π] in binary64 with + − × ÷ only: for x > π/2 the reflection
 * cos x = −cos(π − x), then the Taylor series to x^22 in nested (Horner) form
 *     cos x = 1 − x²/(1·2)·(1 − x²/(3·4)·(1 − … (1 − x²/(21·22))))
 * on [0, π/2], where the first omitted term x^24/24! < 1e-19. Measured |error| < 4e-16 against
 * libm's cos (tests/test_train.c). cos(0) = 1 and cos(π) = −1 exactly. */
double peqa_cos_sched(double x);

#endif
