/* Reference: causal grouped-query attention of one sequence (src/ops.h has the math and the
 * sequences; kernels/peqa_kernels.h the slot contract). Plain loops in the documented order:
 * each score is a dot product over the head dimension e ascending, each output and gradient an
 * accumulation over keys j (or query rows) ascending. The SIMD kernels (kernels/attn_impl.h)
 * reorder only loops over independent outputs. */
#include <math.h>
#include "../peqa_kernels.h"
#include "../../src/mathf.h"

/* s[j] = scale · (q · k[j]) for j = 0..lim, the fixed sequence of ops.h. */
static void attn_scores(const float *qi, const float *k, size_t kstride, size_t hd, size_t lim, float scale,
                        float *s)
{
    for (size_t j = 0; j <= lim; j++) {
        const float *kj = k + j * kstride;
        float d = 0.0f;
        for (size_t e = 0; e < hd; e++) d = fmaf(qi[e], kj[e], d);
        s[j] = d * scale;
    }
}

static float attn_scale(int64_t hd) { return 1.0f / sqrtf((float)hd); }

void peqa_attn_fwd_head__ref(const peqa_attn_dims *sh, int64_t h_, const float *q, const float *k, const float *v,
                        float *out, float *stats, float *p)
{
    const size_t Hq = (size_t)sh->n_heads, Hkv = (size_t)sh->n_kv_heads, hd = (size_t)sh->head_dim;
    const size_t tq = (size_t)sh->tq, off = (size_t)(sh->tk - sh->tq), h = (size_t)h_;
    const size_t g = h / (Hq / Hkv), kstride = Hkv * hd;
    const float scale = attn_scale(sh->head_dim);
    const float *kg = k + g * hd, *vg = v + g * hd;
    for (size_t i = 0; i < tq; i++) {
        const size_t lim = off + i;
        const float *qi = q + (i * Hq + h) * hd;
        float *oi = out + (i * Hq + h) * hd;
        attn_scores(qi, kg, kstride, hd, lim, scale, p);
        float m = p[0];
        for (size_t j = 1; j <= lim; j++) m = p[j] > m ? p[j] : m;
        float l = 0.0f;
        for (size_t j = 0; j <= lim; j++) {
            p[j] = peqa_expf(p[j] - m);
            l = l + p[j];
        }
        for (size_t j = 0; j <= lim; j++) p[j] = p[j] / l;
        for (size_t e = 0; e < hd; e++) oi[e] = 0.0f;
        for (size_t j = 0; j <= lim; j++) {
            const float *vj = vg + j * kstride;
            for (size_t e = 0; e < hd; e++) oi[e] = fmaf(p[j], vj[e], oi[e]);
        }
        if (stats) {
            stats[(i * Hq + h) * 2] = m;
            stats[(i * Hq + h) * 2 + 1] = l;
        }
    }
}

void peqa_attn_bwd_group__ref(const peqa_attn_dims *sh, int64_t g_, const float *q, const float *k,
                         const float *v, const float *stats, const float *dout, float *dq, float *dk,
                         float *dv, float *scratch)
{
    const size_t Hq = (size_t)sh->n_heads, Hkv = (size_t)sh->n_kv_heads, hd = (size_t)sh->head_dim;
    const size_t tq = (size_t)sh->tq, tk = (size_t)sh->tk, off = tk - tq, g = (size_t)g_;
    const size_t rep = Hq / Hkv, kstride = Hkv * hd;
    const float scale = attn_scale(sh->head_dim);
    const float *kg = k + g * hd, *vg = v + g * hd;
    float *dkg = dk + g * hd, *dvg = dv + g * hd;
    float *P = scratch, *dS = scratch + tk;
    for (size_t j = 0; j < tk; j++)
        for (size_t e = 0; e < hd; e++) dkg[j * kstride + e] = dvg[j * kstride + e] = 0.0f;
    for (size_t h = g * rep; h < (g + 1) * rep; h++) {
        for (size_t i = 0; i < tq; i++) {
            const size_t lim = off + i, row = i * Hq + h;
            const float *qi = q + row * hd, *doi = dout + row * hd;
            float *dqi = dq + row * hd;
            const float m = stats[row * 2], l = stats[row * 2 + 1];
            /* P, recomputed with the forward's exact sequence. */
            attn_scores(qi, kg, kstride, hd, lim, scale, P);
            for (size_t j = 0; j <= lim; j++) P[j] = peqa_expf(P[j] - m) / l;
            /* dP[j] = dout · v[j]; D = Σ_j P[j]·dP[j]. */
            float D = 0.0f;
            for (size_t j = 0; j <= lim; j++) {
                const float *vj = vg + j * kstride;
                float d = 0.0f;
                for (size_t e = 0; e < hd; e++) d = fmaf(doi[e], vj[e], d);
                dS[j] = d;
                D = fmaf(P[j], d, D);
            }
            for (size_t j = 0; j <= lim; j++) dS[j] = P[j] * (dS[j] - D);
            /* dq = scale · Σ_j dS[j]·k[j]. */
            for (size_t e = 0; e < hd; e++) dqi[e] = 0.0f;
            for (size_t j = 0; j <= lim; j++) {
                const float *kj = kg + j * kstride;
                for (size_t e = 0; e < hd; e++) dqi[e] = fmaf(dS[j], kj[e], dqi[e]);
            }
            for (size_t e = 0; e < hd; e++) dqi[e] = dqi[e] * scale;
            /* dk[j] += scale·dS[j]·q;  dv[j] += P[j]·dout. */
            for (size_t j = 0; j <= lim; j++) {
                const float a = dS[j] * scale;
                float *dkj = dkg + j * kstride, *dvj = dvg + j * kstride;
                for (size_t e = 0; e < hd; e++) {
                    dkj[e] = fmaf(a, qi[e], dkj[e]);
                    dvj[e] = fmaf(P[j], doi[e], dvj[e]);
                }
            }
        }
    }
}

