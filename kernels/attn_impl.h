/* Attention kernels for the SIMD levels, written once in C and compiled per ISA by
 * kernels/x86/attn_avx2.c and kernels/arm/attn_neon.c (which define ATTN_SUFFIX and build with
 * their ISA's flags, so fmaf is one inline fused multiply-add and the loops below vectorise).
 *
 * Same bits as kernels/ref/attn_ref.c. The reference walks every reduction in the order of
 * src/ops.h; this file keeps each output's sequence and changes only which outputs are computed
 * side by side:
 *  - scores and dP: s[j] = Σ_e q[e]·k[j, e] is a chain over e per key j. The kv head is first
 *    transposed into scratch (kt[e][j] = k[j, e]), so that for each e one pass over j updates
 *    every s[j] by the next term: the inner loop runs over independent j (vector lanes) and each
 *    s[j] still sees e = 0, 1, 2, ... in order. Four e per pass (nested fmaf, innermost first)
 *    save loads and stores of s without changing its sequence.
 *  - outputs and gradients (out, dq, dk, dv): accumulations over keys j (or rows) ascending of
 *    a scaled row; the inner loop runs over the head dimension e, independent lanes.
 * Softmax statistics, D and dS stay scalar loops in the reference's order.
 * restrict: every array written inside a loop is disjoint from the arrays it reads there. */
#include <math.h>
#include <stddef.h>
#include "peqa_kernels.h"
/* gcc's -O2 cost model ("very cheap") leaves these loops scalar; the dynamic model vectorises
 * them (clang does at -O2 already). Vectorising a loop of fmaf over independent lanes changes
 * no result: each lane is the same single-rounding FMA. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif
#include "../src/mathf.h"

#ifndef ATTN_SUFFIX
#error "define ATTN_SUFFIX (e.g. __avx2) before including attn_impl.h"
#endif
#define ATTN_CAT2(a, b) a##b
#define ATTN_CAT(a, b) ATTN_CAT2(a, b)
#define ATTN_FN(name) ATTN_CAT(name, ATTN_SUFFIX)

/* kt[e * ldt + j] = kv[j * kstride + e] for j < n, e < hd. */
static void attn_transpose(const float *restrict kv, size_t kstride, size_t n, size_t hd, float *restrict kt, size_t ldt)
{
    for (size_t j = 0; j < n; j++)
        for (size_t e = 0; e < hd; e++) kt[e * ldt + j] = kv[j * kstride + e];
}

/* s[j] = Σ_e a[e] · kt[e][j] for j < n, each a chain over e ascending from 0 (the reference's
 * d = 0; d = fmaf(a[e], k[j, e], d)). */
static void attn_dots(const float *restrict a, const float *restrict kt, size_t ldt, size_t hd, size_t n, float *restrict s)
{
    for (size_t j = 0; j < n; j++) s[j] = 0.0f;
    size_t e = 0;
    for (; e + 4 <= hd; e += 4) {
        const float a0 = a[e], a1 = a[e + 1], a2 = a[e + 2], a3 = a[e + 3];
        const float *restrict k0 = kt + e * ldt, *restrict k1 = k0 + ldt, *restrict k2 = k1 + ldt, *restrict k3 = k2 + ldt;
        for (size_t j = 0; j < n; j++) s[j] = fmaf(a3, k3[j], fmaf(a2, k2[j], fmaf(a1, k1[j], fmaf(a0, k0[j], s[j]))));
    }
    for (; e < hd; e++) {
        const float ae = a[e];
        const float *restrict ke = kt + e * ldt;
        for (size_t j = 0; j < n; j++) s[j] = fmaf(ae, ke[j], s[j]);
    }
}

/* o[e] = o[e] + c · r[e], as one fmaf per lane. */
static void attn_axpy(float c, const float *restrict r, size_t hd, float *restrict o)
{
    for (size_t e = 0; e < hd; e++) o[e] = fmaf(c, r[e], o[e]);
}

void ATTN_FN(peqa_attn_fwd_head)(const peqa_attn_dims *sh, int64_t h_, const float *q, const float *k,
                                 const float *v, float *out, float *stats, float *scratch)
{
    const size_t Hq = (size_t)sh->n_heads, Hkv = (size_t)sh->n_kv_heads, hd = (size_t)sh->head_dim;
    const size_t tq = (size_t)sh->tq, tk = (size_t)sh->tk, off = tk - tq, h = (size_t)h_;
    const size_t g = h / (Hq / Hkv), kstride = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kg = k + g * hd, *vg = v + g * hd;
    float *p = scratch, *kt = scratch + tk;
    attn_transpose(kg, kstride, tk, hd, kt, tk);
    for (size_t i = 0; i < tq; i++) {
        const size_t n = off + i + 1;
        const float *qi = q + (i * Hq + h) * hd;
        float *oi = out + (i * Hq + h) * hd;
        attn_dots(qi, kt, tk, hd, n, p);
        for (size_t j = 0; j < n; j++) p[j] = p[j] * scale;
        float m = p[0];
        for (size_t j = 1; j < n; j++) m = p[j] > m ? p[j] : m;
        float l = 0.0f;
        for (size_t j = 0; j < n; j++) {
            p[j] = peqa_expf(p[j] - m);
            l = l + p[j];
        }
        for (size_t j = 0; j < n; j++) p[j] = p[j] / l;
        for (size_t e = 0; e < hd; e++) oi[e] = 0.0f;
        for (size_t j = 0; j < n; j++) attn_axpy(p[j], vg + j * kstride, hd, oi);
        if (stats) {
            stats[(i * Hq + h) * 2] = m;
            stats[(i * Hq + h) * 2 + 1] = l;
        }
    }
}

void ATTN_FN(peqa_attn_bwd_group)(const peqa_attn_dims *sh, int64_t g_, const float *q, const float *k,
                                  const float *v, const float *stats, const float *dout, float *dq,
                                  float *dk, float *dv, float *scratch)
{
    const size_t Hq = (size_t)sh->n_heads, Hkv = (size_t)sh->n_kv_heads, hd = (size_t)sh->head_dim;
    const size_t tq = (size_t)sh->tq, tk = (size_t)sh->tk, off = tk - tq, g = (size_t)g_;
    const size_t rep = Hq / Hkv, kstride = Hkv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kg = k + g * hd, *vg = v + g * hd;
    float *dkg = dk + g * hd, *dvg = dv + g * hd;
    float *P = scratch, *dS = scratch + tk, *kt = scratch + 2 * tk, *vt = kt + hd * tk;
    attn_transpose(kg, kstride, tk, hd, kt, tk);
    attn_transpose(vg, kstride, tk, hd, vt, tk);
    for (size_t j = 0; j < tk; j++)
        for (size_t e = 0; e < hd; e++) dkg[j * kstride + e] = dvg[j * kstride + e] = 0.0f;
    for (size_t h = g * rep; h < (g + 1) * rep; h++) {
        for (size_t i = 0; i < tq; i++) {
            const size_t n = off + i + 1, row = i * Hq + h;
            const float *qi = q + row * hd, *doi = dout + row * hd;
            float *dqi = dq + row * hd;
            const float m = stats[row * 2], l = stats[row * 2 + 1];
            /* P, recomputed with the forward's sequence */
            attn_dots(qi, kt, tk, hd, n, P);
            for (size_t j = 0; j < n; j++) P[j] = peqa_expf(P[j] * scale - m) / l;
            /* dP[j] = dout · v[j]  (into dS), then D = Σ_j P[j]·dP[j] in j order */
            attn_dots(doi, vt, tk, hd, n, dS);
            float D = 0.0f;
            for (size_t j = 0; j < n; j++) D = fmaf(P[j], dS[j], D);
            for (size_t j = 0; j < n; j++) dS[j] = P[j] * (dS[j] - D);
            /* dq = scale · Σ_j dS[j]·k[j] */
            for (size_t e = 0; e < hd; e++) dqi[e] = 0.0f;
            for (size_t j = 0; j < n; j++) attn_axpy(dS[j], kg + j * kstride, hd, dqi);
            for (size_t e = 0; e < hd; e++) dqi[e] = dqi[e] * scale;
            /* dk[j] += scale·dS[j]·q;  dv[j] += P[j]·dout */
            for (size_t j = 0; j < n; j++) {
                attn_axpy(dS[j] * scale, qi, hd, dkg + j * kstride);
                attn_axpy(P[j], doi, hd, dvg + j * kstride);
            }
        }
    }
}

void ATTN_FN(peqa_init_attn)(peqa_kernels *kt)
{
    kt->attn_fwd_head = ATTN_FN(peqa_attn_fwd_head);
    kt->attn_bwd_group = ATTN_FN(peqa_attn_bwd_group);
    kt->attn_fwd_head_name = "peqa_attn_fwd_head" ATTN_SUFFIX_NAME;
    kt->attn_bwd_group_name = "peqa_attn_bwd_group" ATTN_SUFFIX_NAME;
}
