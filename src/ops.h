/* peqa — fp32 operations of the LLaMA forward and backward (internal, not installed).
 *
 * RMSNorm, rotary position embedding (Hugging Face rotate-half layout), causal grouped-query
 * attention, SwiGLU, cross-entropy and the token embedding, each as plain scalar C with one
 * fixed sequence of binary32 operations (SPEC §6): every reduction is sequential in the index
 * order written above its function, fmaf is used where a fused multiply-add is meant, and exp /
 * log are peqa_expf / peqa_logf (src/mathf.h). Results therefore do not depend on the ISA or on
 * how a driver splits the work, as long as it splits along the independent outputs named in
 * "Threading" of each function.
 *
 * Conventions
 *  - All tensors are dense, row-major fp32, one row per token: T tokens × D features is T·D
 *    floats, token t at offset t·D. A multi-head tensor T × H × hd is the same thing with
 *    D = H·hd (head h of token t at offset (t·H + h)·hd), which is the output layout of the
 *    q/k/v projections (Y = X·Wᵀ, SPEC §2).
 *  - Every dimension must be >= 1 and every buffer size must fit in size_t, otherwise
 *    PEQA_ERR_SHAPE / PEQA_ERR_OVERFLOW. NULL required pointers give PEQA_ERR_NULL. On error
 *    nothing is written and peqa_last_error() says what is wrong.
 *  - Backward functions OVERWRITE input gradients (dx, dq, dg, dlogits, ...) and ACCUMULATE
 *    (+=) parameter gradients (dw of RMSNorm, dE of the embedding), which sum over tokens.
 *  - "Saved for backward" lists what each forward must keep; bytes are per token.
 */
#ifndef PEQA_OPS_H
#define PEQA_OPS_H

#include <stdint.h>
#include "peqa.h"
#include "../kernels/peqa_kernels.h"

/* ---- RMSNorm ---------------------------------------------------------------------------------
 *
 * y[t,i] = w[i] · (x[t,i] · r[t]),   r[t] = 1 / sqrt(mean_i x[t,i]² + eps)
 * (Hugging Face LlamaRMSNorm: normalise in fp32, then multiply by the weight; no bias.)
 *
 * Forward sequence per row t:
 *     ss = 0; for i = 0..D-1: ss = fmaf(x[i], x[i], ss)
 *     r = 1.0f / sqrtf(ss / (float)D + eps)
 *     y[i] = w[i] * (x[i] * r)
 * x, y: T × D (y may equal x: r is computed before any write). w: D. eps > 0, finite.
 * rstd: T floats (r per row), may be NULL when no backward follows.
 * Saved for backward: x (T × D, the caller keeps it) and rstd: 4 bytes per token.
 */
peqa_status peqa_rmsnorm_fwd(const float *x, const float *w, float eps, int64_t T, int64_t D, float *y,
                             float *rstd);

/* Backward. With g[i] = dy[i]·w[i] and n[i] = x[i]·r (the forward's normalised value):
 *     ∂y[i]/∂x[j] = w[i]·(r·δij − r³·x[i]·x[j]/D)
 *     dx[j] = r·g[j] − (r³/D)·x[j]·Σ_i g[i]·x[i]
 *     dw[i] += Σ_t dy[t,i]·n[t,i]
 * Sequence per row t (dx):
 *     dot = 0; for i = 0..D-1: { g = dy[i] * w[i]; dot = fmaf(g, x[i], dot) }
 *     c = ((r * r) * r) * dot / (float)D
 *     dx[j] = fmaf(-c, x[j], r * (dy[j] * w[j]))
 * Sequence per column i (dw), t ascending from the incoming value of dw[i]:
 *     dw[i] = fmaf(dy[t,i], x[t,i] * r[t], dw[i])
 * dx (T × D, overwritten) or dw (D, accumulated) may be NULL to skip it. dx may equal dy.
 * Threading: dx rows are independent (split over t); dw is a reduction over t — split it over
 * columns with peqa_rmsnorm_bwd_dw_cols, never over t.
 */
peqa_status peqa_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dy, int64_t T,
                             int64_t D, float *dx, float *dw);
/* The dw part alone for columns [c0, c1) (no validation; same sequence as above). */
void peqa_rmsnorm_bwd_dw_cols(const float *x, const float *rstd, const float *dy, int64_t T, int64_t D,
                              int64_t c0, int64_t c1, float *dw);

/* ---- Rotary position embedding (Hugging Face "rotate-half" layout, formats.md §2.6) ----------
 *
 * For a head vector x of head_dim = hd (even), half = hd/2, position p, j ∈ [0, half):
 *     a = p · inv_freq[j],    inv_freq[j] = theta^(−2j/hd)
 *     y[j]        = x[j]·cos a − x[j+half]·sin a
 *     y[j+half]   = x[j+half]·cos a + x[j]·sin a
 * (q·cos + rotate_half(q)·sin with rotate_half(x) = cat(−x[half:], x[:half]).)
 * It is a rotation of each pair (x[j], x[j+half]), so the backward is the rotation by −a:
 *     dx[j]       = dy[j]·cos a + dy[j+half]·sin a
 *     dx[j+half]  = dy[j+half]·cos a − dy[j]·sin a
 *
 * The table: like transformers and Meta's reference, inv_freq is held in fp32 and the angle is
 * the fp32 product fl(p · inv_freq[j]); cos and sin of that fp32 angle are computed once in
 * double precision with libm and rounded to fp32 (SPEC §6 rule 4: setup tables may use libm).
 * Applying it is pure fp32 arithmetic:
 *     y[j]      = fmaf(x[j], c, -(x[j+half] * s))
 *     y[j+half] = fmaf(x[j+half], c, x[j] * s)
 *     dx[j]      = fmaf(dy[j], c, dy[j+half] * s)
 *     dx[j+half] = fmaf(dy[j+half], c, -(dy[j] * s))
 * Nothing is saved for backward (it needs only the positions).
 */
typedef struct peqa_rope {
    int64_t head_dim; /* even, >= 2 */
    int64_t max_pos;  /* the table covers positions [0, max_pos) */
    float *cos, *sin; /* max_pos × head_dim/2 each: entry (p, j) at p·(head_dim/2) + j */
} peqa_rope;

/* inv_freq[j] = fl(1 / theta^(2j/hd)), j < hd/2, computed in double (theta > 1, finite). */
peqa_status peqa_rope_default_freqs(int64_t head_dim, double theta, float *inv_freq);
/* Builds the table from theta (default frequencies), or from given fp32 frequencies (the hook
 * for rope_scaling variants such as "linear" and "llama3", which only change inv_freq).
 * *r is zeroed on error. Free with peqa_rope_free (safe on a zeroed struct). */
peqa_status peqa_rope_init(peqa_rope *r, int64_t head_dim, int64_t max_pos, double theta);
peqa_status peqa_rope_init_freqs(peqa_rope *r, int64_t head_dim, int64_t max_pos, const float *inv_freq);
void peqa_rope_free(peqa_rope *r);

/* x, y: T × H × hd; token t has position pos0 + t; pos0 >= 0 and pos0 + T <= max_pos.
 * y may equal x (in place). Threading: every (t, h) is independent. */
peqa_status peqa_rope_fwd(const peqa_rope *r, const float *x, int64_t T, int64_t n_heads, int64_t pos0,
                          float *y);
/* dy, dx: T × H × hd; dx may equal dy. */
peqa_status peqa_rope_bwd(const peqa_rope *r, const float *dy, int64_t T, int64_t n_heads, int64_t pos0,
                          float *dx);

/* ---- Causal grouped-query attention ------------------------------------------------------------
 *
 * q: tq × Hq × hd, k and v: tk × Hkv × hd, out: tq × Hq × hd, with Hkv dividing Hq; query head h
 * reads kv head g = h / (Hq/Hkv) (transformers' repeat_kv: each kv head serves Hq/Hkv consecutive
 * query heads). tk >= tq: the queries are the LAST tq positions of the tk keys (tq = tk for
 * training; tq < tk when decoding with a KV cache), so query i attends keys j <= lim(i) = tk − tq + i.
 * scale = 1.0f / sqrtf((float)hd).
 *
 * Forward sequence per (i, h) (rows are independent):
 *     for j = 0..lim:  d = 0; for e = 0..hd-1: d = fmaf(q[i,h,e], k[j,g,e], d);  s[j] = d * scale
 *     m = max_j s[j] (j ascending)
 *     l = 0; for j = 0..lim: { p[j] = peqa_expf(s[j] - m); l = l + p[j] }
 *     for j: p[j] = p[j] / l
 *     out[i,h,e] = 0; for j = 0..lim: out[i,h,e] = fmaf(p[j], v[j,g,e], out[i,h,e])
 * stats (tq × Hq × 2 floats: m and l of each row) may be NULL when no backward follows.
 * Saved for backward: q, k, v (the caller keeps them: they are the rotated projections) and
 * stats: 8·Hq bytes per token. The T × T probabilities are NOT kept: the backward recomputes
 * them bit-identically from q, k and (m, l) — flash-attention style, O(T) memory instead of
 * O(T²) at the price of a second Q·Kᵀ.
 * Temporary: see below.
 */
typedef peqa_attn_dims peqa_attn_shape; /* {tq, tk, n_heads, n_kv_heads, head_dim} */

peqa_status peqa_attn_check(const peqa_attn_shape *sh);
peqa_status peqa_attn_fwd(peqa_ctx *ctx, const peqa_attn_shape *sh, const float *q, const float *k,
                          const float *v, float *out, float *stats);

/* Backward. With P the probabilities, dP[j] = dout·v[j], the softmax Jacobian gives
 *     dS[j] = P[j]·(dP[j] − Σ_j' P[j']·dP[j'])
 * and s[j] = scale·(q·k[j]) gives
 *     dq[i,h]  = scale · Σ_j dS[j]·k[j,g]
 *     dk[j,g] += scale·dS[j] · q[i,h]      (over every query row i and head h of group g)
 *     dv[j,g] += P[j] · dout[i,h]
 * Sequence per kv head g, then query head h = g·rep .. g·rep+rep−1 ascending, then query row i
 * ascending (dk, dv start at 0 and accumulate in exactly this order):
 *     recompute s[j] and P[j] = peqa_expf(s[j] − m) / l   (bits equal to the forward's)
 *     dP[j] = 0-start fmaf over e of dout[i,h,e]·v[j,g,e]
 *     D = 0; for j = 0..lim: D = fmaf(P[j], dP[j], D)
 *     for j: dS[j] = P[j] * (dP[j] - D)
 *     acc[e] = 0; for j = 0..lim: acc[e] = fmaf(dS[j], k[j,g,e], acc[e]);  dq[i,h,e] = acc[e] * scale
 *     for j = 0..lim: { a = dS[j] * scale; dk[j,g,e] = fmaf(a, q[i,h,e], dk[j,g,e]);
 *                       dv[j,g,e] = fmaf(P[j], dout[i,h,e], dv[j,g,e]) }
 * dq (tq × Hq × hd), dk, dv (tk × Hkv × hd) are overwritten.
 * Threading: split over kv heads g (peqa_attn_bwd_group): a group owns dq of its query heads
 * and dk, dv of its kv head. Temporary: see below.
 */
peqa_status peqa_attn_bwd(peqa_ctx *ctx, const peqa_attn_shape *sh, const float *q, const float *k,
                          const float *v, const float *stats, const float *dout, float *dq, float *dk,
                          float *dv);

/* Both functions run the kernel slots attn_fwd_head (one task per query head) and
 * attn_bwd_group (per kv head) of ctx's ISA level on ctx's threads, each thread with its own
 * scratch of PEQA_ATTN_*_SCRATCH floats (kernels/peqa_kernels.h): (1 + hd)·tk floats forward,
 * (2 + 2·hd)·tk backward. ctx = NULL runs the scalar reference (kernels/ref/attn_ref.c) on the
 * calling thread. The bits are the same either way. */

/* ---- SwiGLU -------------------------------------------------------------------------------------
 *
 * h = silu(gate) · up, elementwise over n values (n = T × intermediate):
 *     h[i] = peqa_siluf(g[i]) * u[i]
 * Backward, with σ = sigmoid(g) and silu'(g) = σ·(1 + g·(1 − σ)):
 *     dg[i] = (dh[i] * u[i]) * peqa_silu_gradf(g[i])
 *     du[i] = dh[i] * peqa_siluf(g[i])
 * Saved for backward: g and u (the gate and up projections), 8·intermediate bytes per token;
 * h can be recomputed from them. h may equal g or u; dg may equal g or dh and du may equal u or
 * dh (each element's inputs are read before its outputs are written). Inputs must be finite.
 * Threading: every element is independent.
 */
peqa_status peqa_swiglu_fwd(const float *g, const float *u, int64_t n, float *h);
peqa_status peqa_swiglu_bwd(const float *g, const float *u, const float *dh, int64_t n, float *dg, float *du);

/* ---- Cross-entropy over the vocabulary -----------------------------------------------------------
 *
 * logits: T × V, targets: T int32 in [0, V) or PEQA_TARGET_IGNORE (= −100, the transformers
 * ignore_index: the token contributes no loss and gets zero gradient). With N = number of
 * non-ignored tokens,
 *     loss[t] = logsumexp(z[t]) − z[t, y_t],    mean = (1/N)·Σ_t loss[t]
 * Forward sequence per row:
 *     m = max_v z[v] (v ascending);  l = 0; for v = 0..V-1: l = l + peqa_expf(z[v] - m)
 *     loss = (m - z[y]) + peqa_logf(l)
 * (two nonnegative terms; m − z[y] is exact when z[y] is near the max, so a confident prediction
 * keeps full relative precision instead of the absolute error ulp(m) of (m + log l) − z[y])
 * mean: acc = 0; for t ascending (non-ignored): acc = acc + loss[t];  mean = acc / (float)N
 * (N = 0 gives mean = 0). stats (T × 2: m and l; rows of ignored tokens are written too) and
 * losses (T floats, 0 for ignored tokens) and mean may each be NULL.
 * Saved for backward: stats, 8 bytes per token (the logits themselves are needed too, but the
 * backward may overwrite them in place).
 * Backward:  ∂mean/∂z[t,v] = (softmax(z[t])[v] − [v = y_t]) / N, so with c = dloss / (float)N:
 *     p = peqa_expf(z[v] - m) / l;   dz[v] = (p - [v == y]) * c       (0 for ignored rows)
 * dlogits may equal logits (in place: saves a T × V buffer).
 * Threading: rows are independent; the mean is a reduction over t in ascending order.
 */
#define PEQA_TARGET_IGNORE (-100)
peqa_status peqa_xent_fwd(const float *logits, const int32_t *targets, int64_t T, int64_t V, float *stats,
                          float *losses, float *mean);
peqa_status peqa_xent_bwd(const float *logits, const int32_t *targets, const float *stats, float dloss,
                          int64_t T, int64_t V, float *dlogits);

/* Softmax of one row (for sampling): p[v] = peqa_expf(z[v] − m) / l with m and l as in
 * peqa_xent_fwd. p may equal z. */
peqa_status peqa_softmax(const float *z, int64_t n, float *p);

/* ---- Token embedding -----------------------------------------------------------------------------
 *
 * E: V × D. Forward: out[t,:] = E[tok[t],:] (a copy). Backward: dE[tok[t],:] += dout[t,:] for
 * t ascending (a token appearing twice accumulates in order of appearance). Every token must be
 * in [0, V) (PEQA_ERR_RANGE otherwise, checked before anything is written).
 * Threading: forward rows are independent; the backward is a reduction over t — split it over
 * columns, never over t.
 */
peqa_status peqa_embed_fwd(const float *E, int64_t V, int64_t D, const int32_t *tok, int64_t T, float *out);
peqa_status peqa_embed_bwd(const float *dout, const int32_t *tok, int64_t T, int64_t V, int64_t D, float *dE);

#endif
