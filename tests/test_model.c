/* Tests of the LLaMA model (src/model.h).
 *
 * The tiny model: hidden 32, 2 layers, 4 heads of 8, 2 kv heads (GQA), intermediate 48 (not a
 * multiple of 32: with group 32 the down projection has a short last group of 16), vocab 40,
 * B = 2 sequences of T = 7 tokens; weights uniform with std 0.25, norm weights 1 ± 0.3.
 *
 *  (a) forward: logits of peqa_model_logits and the loss of peqa_model_forward against an
 *      independent float64 evaluation written here (plain double loops over the HF LLaMA math:
 *      embedding, RMSNorm, rotate-half RoPE with exact angles, GQA causal softmax attention,
 *      SwiGLU, head), full precision and quantized (the double model uses the dequantized
 *      weights s·(q − z) in double). Bound: |z − z64| <= 1e-5 · max(1, max|z64|) per logit
 *      and |loss − loss64| <= 1e-5 · max(1, loss64). (fp32 rounding through ~10 dependent
 *      reductions of length <= 48 gives a few 1e-7 relative; the bound leaves a ~20x margin and
 *      still rejects any wrong formula, which moves logits by 1e-2 or more.)
 *  (b) gradients: central finite differences in double (h = 1e-5) of the float64 loss against
 *      the analytic fp32 gradients, on a random sample of entries of every trainable tensor:
 *      scales (and zero points) of every quantized linear, every weight tensor in full
 *      precision, tied and untied. Pass when max|g − fd| <= 1e-3 · max|fd| over the sample of
 *      a tensor kind; mutation controls (gradients scaled by 1.01, gradients of the neighbouring
 *      entry) must be rejected by the same criterion.
 *  (c) loss, logits and every gradient bit-identical (memcmp) across ISA levels and 1/2/3/7
 *      threads, on a larger model (hidden 128, intermediate 344, vocab 301, B·T = 99) where the
 *      products are big enough to be split over threads.
 *  (d) KV-cache decoding: prompt at once then token by token; logits equal bit for bit the last
 *      row of peqa_model_logits over the same prefix. peqa_model_eval's mean equals the training
 *      forward's loss bit for bit.
 *  (e) save / load round trips (F32, BF16/F16 files, shards, tied with and without a head copy),
 *      config.json round trip, quantize = RTN per linear, gradient accumulation and dloss scaling.
 *  (f) bad configs, missing / mis-shaped / mistyped / non-finite tensors, misuse of the API: a
 *      status and a message naming the file and the key or tensor; no crash (run under ASan).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../src/model.h"
#include "../src/ops.h"
#include "../src/safetensors.h"
#include "prng.h"
#include "test.h"

#define FD_H 1e-5
#define GRAD_TOL 1e-3
#define FWD_TOL 1e-5

static int msg_has(const char *s) { return strstr(peqa_last_error(), s) != NULL; }

/* ---- model builders -------------------------------------------------------------------------- */

static peqa_model_config tiny_config(int tied)
{
    peqa_model_config c;
    peqa_model_config_init(&c, 32, 48, 2, 4, 2, 40, 64);
    c.tie_embeddings = tied;
    return c;
}

/* A full-precision model with the given config: weights of std `std`, norm weights 1 ± 0.3. */
static peqa_model *make_model(const peqa_model_config *c, uint64_t seed, float std)
{
    peqa_model *m = NULL;
    if (peqa_model_create(c, &m) || peqa_model_init_random(m, seed, std)) {
        peqa_model_free(m);
        return NULL;
    }
    prng g;
    prng_seed(&g, seed ^ 0x5eed);
    for (int64_t i = 0; i < peqa_model_tensor_count(m); i++) {
        peqa_model_tensor t;
        peqa_model_tensor_at(m, i, &t);
        if (t.ndim == 1)
            for (int64_t e = 0; e < t.numel; e++) t.f32[e] = 1.0f + prng_sym(&g, 0.3f);
    }
    return m;
}

static void rand_tokens(prng *g, int32_t *tok, int32_t *tgt, int64_t B, int64_t T, int64_t V)
{
    /* windows of T+1 tokens: targets are the next tokens */
    for (int64_t b = 0; b < B; b++) {
        int32_t w[1024];
        for (int64_t t = 0; t <= T; t++) w[t] = (int32_t)prng_below(g, (uint64_t)V);
        for (int64_t t = 0; t < T; t++) {
            tok[b * T + t] = w[t];
            if (tgt) tgt[b * T + t] = w[t + 1];
        }
    }
}

/* ---- the float64 reference model ---------------------------------------------------------------- */

typedef struct {
    double *an, *mn, *w[PEQA_LIN_COUNT];
    /* quantized linears: codes, scales, zeros and the group size (w is rebuilt from them) */
    uint8_t *q[PEQA_LIN_COUNT];
    double *s[PEQA_LIN_COUNT], *z[PEQA_LIN_COUNT];
    int64_t n[PEQA_LIN_COUNT], k[PEQA_LIN_COUNT], grp[PEQA_LIN_COUNT], ng[PEQA_LIN_COUNT];
} dlayer;

typedef struct {
    peqa_model_config c;
    int quant;
    double *E, *H, *norm; /* H == E when tied */
    dlayer *ly;
} dref;

static double *dcopy(const float *f, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

/* Ŵ[n,k] = s[n, k/g]·(q[n,k] − z[n, k/g]) in double. */
static void dref_rebuild(dref *d, int64_t l, int j)
{
    dlayer *y = &d->ly[l];
    for (int64_t n = 0; n < y->n[j]; n++)
        for (int64_t k = 0; k < y->k[j]; k++) {
            int64_t gi = n * y->ng[j] + k / y->grp[j];
            y->w[j][n * y->k[j] + k] = y->s[j][gi] * ((double)y->q[j][n * y->k[j] + k] - y->z[j][gi]);
        }
}

static dref *dref_from(peqa_ctx *ctx, const peqa_model *m)
{
    dref *d = calloc(1, sizeof *d);
    const peqa_model_config *c = &m->cfg;
    const size_t D = (size_t)c->dim, V = (size_t)c->vocab;
    d->c = *c;
    d->quant = m->quantized;
    d->E = dcopy(m->embed, V * D);
    d->H = c->tie_embeddings ? d->E : dcopy(m->lm_head, V * D);
    d->norm = dcopy(m->norm, D);
    d->ly = calloc((size_t)c->n_layers, sizeof *d->ly);
    for (int64_t l = 0; l < c->n_layers; l++) {
        dlayer *y = &d->ly[l];
        y->an = dcopy(m->layers[l].attn_norm, D);
        y->mn = dcopy(m->layers[l].mlp_norm, D);
        for (int j = 0; j < PEQA_LIN_COUNT; j++) {
            const peqa_model_linear *li = &m->layers[l].lin[j];
            y->n[j] = li->n, y->k[j] = li->k;
            size_t nk = (size_t)(li->n * li->k);
            if (!li->q) {
                y->w[j] = dcopy(li->w, nk);
                continue;
            }
            peqa_qtensor_info info;
            peqa_qtensor_get_info(li->q, &info);
            y->grp[j] = info.group, y->ng[j] = info.ngroups;
            size_t ns = (size_t)(info.n * info.ngroups);
            y->q[j] = malloc(nk);
            float *s = malloc(ns * sizeof *s), *z = malloc(ns * sizeof *z);
            peqa_qtensor_export(ctx, li->q, y->q[j], li->k, s, z);
            y->s[j] = dcopy(s, ns);
            y->z[j] = dcopy(z, ns);
            free(s);
            free(z);
            y->w[j] = malloc(nk * sizeof(double));
            dref_rebuild(d, l, j);
        }
    }
    return d;
}

static void dref_free(dref *d)
{
    if (!d) return;
    for (int64_t l = 0; l < d->c.n_layers; l++) {
        dlayer *y = &d->ly[l];
        free(y->an), free(y->mn);
        for (int j = 0; j < PEQA_LIN_COUNT; j++) free(y->w[j]), free(y->q[j]), free(y->s[j]), free(y->z[j]);
    }
    free(d->ly);
    if (d->H != d->E) free(d->H);
    free(d->E), free(d->norm), free(d);
}

/* y (T × N) = x (T × K) · Wᵀ */
static void dlin(const double *x, const double *w, int64_t T, int64_t N, int64_t K, double *y)
{
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            double a = 0;
            for (int64_t k = 0; k < K; k++) a += x[t * K + k] * w[n * K + k];
            y[t * N + n] = a;
        }
}

static void drms(const double *x, const double *w, double eps, int64_t T, int64_t D, double *y)
{
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t i = 0; i < D; i++) ss += x[t * D + i] * x[t * D + i];
        double r = 1.0 / sqrt(ss / (double)D + eps);
        for (int64_t i = 0; i < D; i++) y[t * D + i] = w[i] * x[t * D + i] * r;
    }
}

/* HF rotate-half with exact angles p·theta^(−2j/hd). */
static void drope(double *x, int64_t T, int64_t H, int64_t hd, double theta)
{
    int64_t half = hd / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            double *v = x + (t * H + h) * hd;
            for (int64_t j = 0; j < half; j++) {
                double a = (double)t * pow(theta, -2.0 * (double)j / (double)hd);
                double x0 = v[j], x1 = v[j + half];
                v[j] = x0 * cos(a) - x1 * sin(a);
                v[j + half] = x1 * cos(a) + x0 * sin(a);
            }
        }
}

/* logits (T × V) of one sequence. */
static void dref_seq(const dref *d, int64_t T, const int32_t *tok, double *logits)
{
    const peqa_model_config *c = &d->c;
    const int64_t D = c->dim, F = c->ffn, Hq = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, V = c->vocab;
    const double eps = (double)(float)c->norm_eps;
    double *x = malloc(sizeof(double) * (size_t)(T * D)), *xn = malloc(sizeof(double) * (size_t)(T * D));
    double *q = malloc(sizeof(double) * (size_t)(T * Hq * hd)), *k = malloc(sizeof(double) * (size_t)(T * Hkv * hd));
    double *v = malloc(sizeof(double) * (size_t)(T * Hkv * hd)), *a = malloc(sizeof(double) * (size_t)(T * Hq * hd));
    double *o = malloc(sizeof(double) * (size_t)(T * D)), *gt = malloc(sizeof(double) * (size_t)(T * F));
    double *up = malloc(sizeof(double) * (size_t)(T * F)), *p = malloc(sizeof(double) * (size_t)T);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < D; i++) x[t * D + i] = d->E[tok[t] * D + i];
    for (int64_t l = 0; l < c->n_layers; l++) {
        const dlayer *y = &d->ly[l];
        drms(x, y->an, eps, T, D, xn);
        dlin(xn, y->w[PEQA_LIN_Q], T, Hq * hd, D, q);
        dlin(xn, y->w[PEQA_LIN_K], T, Hkv * hd, D, k);
        dlin(xn, y->w[PEQA_LIN_V], T, Hkv * hd, D, v);
        drope(q, T, Hq, hd, c->rope_theta);
        drope(k, T, Hkv, hd, c->rope_theta);
        for (int64_t h = 0; h < Hq; h++) {
            int64_t g = h / (Hq / Hkv);
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= i; j++) {
                    double s = 0;
                    for (int64_t e = 0; e < hd; e++) s += q[(i * Hq + h) * hd + e] * k[(j * Hkv + g) * hd + e];
                    p[j] = s / sqrt((double)hd);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j <= i; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j <= i; j++) acc += p[j] / sum * v[(j * Hkv + g) * hd + e];
                    a[(i * Hq + h) * hd + e] = acc;
                }
            }
        }
        dlin(a, y->w[PEQA_LIN_O], T, D, Hq * hd, o);
        for (int64_t i = 0; i < T * D; i++) x[i] += o[i];
        drms(x, y->mn, eps, T, D, xn);
        dlin(xn, y->w[PEQA_LIN_GATE], T, F, D, gt);
        dlin(xn, y->w[PEQA_LIN_UP], T, F, D, up);
        for (int64_t i = 0; i < T * F; i++) gt[i] = gt[i] / (1.0 + exp(-gt[i])) * up[i];
        dlin(gt, y->w[PEQA_LIN_DOWN], T, D, F, o);
        for (int64_t i = 0; i < T * D; i++) x[i] += o[i];
    }
    drms(x, d->norm, eps, T, D, xn);
    dlin(xn, d->H, T, V, D, logits);
    free(x), free(xn), free(q), free(k), free(v), free(a), free(o), free(gt), free(up), free(p);
}

static void dref_logits(const dref *d, int64_t B, int64_t T, const int32_t *tok, double *logits)
{
    for (int64_t b = 0; b < B; b++) dref_seq(d, T, tok + b * T, logits + b * T * d->c.vocab);
}

static double dref_loss(const dref *d, int64_t B, int64_t T, const int32_t *tok, const int32_t *tgt)
{
    const int64_t V = d->c.vocab;
    double *z = malloc(sizeof(double) * (size_t)(B * T * V)), acc = 0;
    int64_t cnt = 0;
    dref_logits(d, B, T, tok, z);
    for (int64_t t = 0; t < B * T; t++) {
        if (tgt[t] == PEQA_TARGET_IGNORE) continue;
        double mx = -INFINITY, s = 0;
        for (int64_t v = 0; v < V; v++) mx = fmax(mx, z[t * V + v]);
        for (int64_t v = 0; v < V; v++) s += exp(z[t * V + v] - mx);
        acc += mx + log(s) - z[t * V + tgt[t]];
        cnt++;
    }
    free(z);
    return cnt ? acc / (double)cnt : 0;
}

/* The double counterpart of trainable tensor i (parameter order of model.h); *l, *j name the
 * linear to rebuild after a change (j = -1: nothing to rebuild). */
static double *dref_param(dref *d, const peqa_model *m, int train_zeros, int64_t i, int64_t *l, int *j)
{
    *l = 0, *j = -1;
    const int64_t L = d->c.n_layers;
    if (d->quant) {
        int64_t per = train_zeros ? 2 : 1, li = i / per;
        *l = li / PEQA_LIN_COUNT, *j = (int)(li % PEQA_LIN_COUNT);
        return i % per ? d->ly[*l].z[*j] : d->ly[*l].s[*j];
    }
    (void)m;
    if (i == 0) return d->E;
    if (i == 1 + 9 * L) return d->norm;
    if (i == 2 + 9 * L) return d->H;
    int64_t ll = (i - 1) / 9, slot = (i - 1) % 9;
    if (slot == 0) return d->ly[ll].an;
    if (slot == 5) return d->ly[ll].mn;
    return d->ly[ll].w[slot <= 4 ? slot - 1 : slot - 2];
}

/* ---- (a) forward against float64 ----------------------------------------------------------- */

static void check_forward(trun *r, peqa_ctx *ctx, peqa_model *m, const char *name)
{
    const int64_t B = 2, T = 7, V = m->cfg.vocab, M = B * T;
    int32_t tok[14], tgt[14];
    prng g;
    prng_seed(&g, 77);
    rand_tokens(&g, tok, tgt, B, T, V);
    tgt[3] = PEQA_TARGET_IGNORE;
    float *z = malloc(sizeof(float) * (size_t)(M * V));
    double *zd = malloc(sizeof(double) * (size_t)(M * V));
    dref *d = dref_from(ctx, m);
    peqa_status st = peqa_model_logits(ctx, m, B, T, tok, z);
    dref_logits(d, B, T, tok, zd);
    double zmax = 0, err = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < M * V; i++) zmax = fmax(zmax, fabs(zd[i]));
    for (int64_t i = 0; i < M * V; i++)
        if (fabs((double)z[i] - zd[i]) > err) err = fabs((double)z[i] - zd[i]), wi = i;
    double bound = FWD_TOL * fmax(1.0, zmax);
    char nm[96];
    snprintf(nm, sizeof nm, "model/fwd/logits_vs_f64/%s", name);
    t_result(r, st == PEQA_OK && err <= bound, nm, peqa_ctx_isa(ctx),
             "B=%lld T=%lld V=%lld: max|z-z64| = %.3g at %lld (%.9g vs %.9g), bound %.1e*max(1,max|z64|=%.3g) = %.3g",
             (long long)B, (long long)T, (long long)V, err, (long long)wi, (double)z[wi], zd[wi], FWD_TOL, zmax, bound);
    /* The training forward's loss against the float64 loss. */
    peqa_model_cache *c = NULL;
    float loss = -1;
    double ld = dref_loss(d, B, T, tok, tgt);
    st = peqa_model_cache_create(m, M, &c);
    if (!st) st = peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    snprintf(nm, sizeof nm, "model/fwd/loss_vs_f64/%s", name);
    t_result(r, st == PEQA_OK && fabs(loss - ld) <= FWD_TOL * fmax(1.0, ld), nm, peqa_ctx_isa(ctx),
             "loss %.9g vs %.12g (diff %.2e, bound %.1e*max(1,loss)); one target ignored", (double)loss, ld,
             fabs(loss - ld), FWD_TOL);
    peqa_model_cache_free(c);
    dref_free(d);
    free(z), free(zd);
}

/* ---- (b) finite differences ---------------------------------------------------------------- */

typedef struct {
    double gmax, fdmax, errmax, err_scaled, err_shift;
    int n;
    char worst[256];
} fdacc;

static void fd_add(fdacc *a, double g, double fd, double g_neighbour, const char *what)
{
    double e = fabs(g - fd);
    a->fdmax = fmax(a->fdmax, fabs(fd));
    a->gmax = fmax(a->gmax, fabs(g));
    if (e >= a->errmax) {
        a->errmax = e;
        snprintf(a->worst, sizeof a->worst, "%s: %.8g vs fd %.8g", what, g, fd);
    }
    a->err_scaled = fmax(a->err_scaled, fabs(1.01 * g - fd));
    a->err_shift = fmax(a->err_shift, fabs(g_neighbour - fd));
    a->n++;
}

/* Finite differences of the double loss w.r.t. a sample of `per_tensor` entries of every
 * trainable tensor whose kind matches (kind < 0: all), against grads. */
static void fd_check(trun *r, peqa_ctx *ctx, peqa_model *m, int train_zeros, const char *name, int per_tensor,
                     uint64_t seed)
{
    const int64_t B = 2, T = 7, V = m->cfg.vocab, M = B * T;
    int32_t tok[14], tgt[14];
    prng g;
    prng_seed(&g, seed);
    rand_tokens(&g, tok, tgt, B, T, V);
    tgt[5] = PEQA_TARGET_IGNORE;
    tgt[11] = PEQA_TARGET_IGNORE;
    peqa_model_cache *c = NULL;
    peqa_model_grads *gr = NULL;
    float loss;
    peqa_status st = peqa_model_cache_create(m, M, &c);
    if (!st) st = peqa_model_grads_create(m, train_zeros, &gr);
    if (!st) st = peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    if (!st) st = peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    char nm[96];
    if (st) {
        snprintf(nm, sizeof nm, "model/grad/fd/%s", name);
        t_result(r, 0, nm, peqa_ctx_isa(ctx), "forward/backward failed: %s", peqa_last_error());
        peqa_model_cache_free(c), peqa_model_grads_free(gr);
        return;
    }
    dref *d = dref_from(ctx, m);
    /* accumulators per kind: 0 fp32 / scales, 1 zeros */
    fdacc acc[2];
    memset(acc, 0, sizeof acc);
    const int64_t np = peqa_model_param_count(m, train_zeros);
    for (int64_t i = 0; i < np; i++) {
        peqa_model_param p;
        peqa_model_param_at(m, train_zeros, i, gr, &p);
        int64_t l;
        int j;
        double *dp = dref_param(d, m, train_zeros, i, &l, &j);
        for (int s = 0; s < per_tensor; s++) {
            int64_t e = (int64_t)prng_below(&g, (uint64_t)p.numel);
            if (!m->quantized && i == 0 && s == 0) /* an embedding row that is used */
                e = (int64_t)tok[prng_below(&g, (uint64_t)M)] * m->cfg.dim + (int64_t)prng_below(&g, (uint64_t)m->cfg.dim);
            double save = dp[e];
            dp[e] = save + FD_H;
            if (j >= 0) dref_rebuild(d, l, j);
            double lp = dref_loss(d, B, T, tok, tgt);
            dp[e] = save - FD_H;
            if (j >= 0) dref_rebuild(d, l, j);
            double lm = dref_loss(d, B, T, tok, tgt);
            dp[e] = save;
            if (j >= 0) dref_rebuild(d, l, j);
            double fd = (lp - lm) / (2 * FD_H);
            char what[140];
            snprintf(what, sizeof what, "%s[%lld]", p.name, (long long)e);
            fd_add(&acc[p.kind == PEQA_PARAM_ZEROS], p.grad[e], fd, p.grad[(e + 1) % p.numel], what);
        }
    }
    for (int k = 0; k < 2; k++) {
        fdacc *a = &acc[k];
        if (!a->n) continue;
        const char *kind = m->quantized ? (k ? "zeros" : "scales") : "weights";
        double tol = GRAD_TOL * a->fdmax;
        snprintf(nm, sizeof nm, "model/grad/fd/%s/%s", name, kind);
        t_result(r, a->fdmax > 0 && a->errmax <= tol, nm, peqa_ctx_isa(ctx),
                 "%d entries of %lld tensors: max|g-fd| = %.2e <= %.0e*max|fd| (max|fd| = %.3g); worst %s", a->n,
                 (long long)np, a->errmax, GRAD_TOL, a->fdmax, a->worst);
        snprintf(nm, sizeof nm, "model/grad/fd/%s/%s/controls", name, kind);
        t_result(r, a->err_scaled > tol && a->err_shift > tol, nm, peqa_ctx_isa(ctx),
                 "rejected: gradients x1.01 (err %.2e) and the neighbouring entry's gradient (err %.2e) vs tol %.2e",
                 a->err_scaled, a->err_shift, tol);
    }
    dref_free(d);
    peqa_model_cache_free(c);
    peqa_model_grads_free(gr);
}

/* ---- (c) bit identity across ISAs and threads ------------------------------------------------- */

typedef struct {
    float loss;
    float *logits, *grads;
    size_t nlogits, ngrads;
} run_out;

static peqa_status run_once(peqa_ctx *ctx, peqa_model *m, int train_zeros, int64_t B, int64_t T, const int32_t *tok,
                            const int32_t *tgt, run_out *o)
{
    peqa_model_cache *c = NULL;
    peqa_model_grads *g = NULL;
    const int64_t M = B * T;
    o->nlogits = (size_t)(M * m->cfg.vocab);
    o->logits = malloc(o->nlogits * sizeof(float));
    o->grads = NULL;
    peqa_status st = peqa_model_cache_create(m, M, &c);
    if (!st) st = peqa_model_grads_create(m, train_zeros, &g);
    if (!st) st = peqa_model_forward(ctx, m, c, B, T, tok, tgt, &o->loss);
    if (!st) st = peqa_model_backward(ctx, m, c, g, 1.0f, 0);
    if (!st) st = peqa_model_logits(ctx, m, B, T, tok, o->logits);
    if (!st) {
        o->ngrads = g->total;
        o->grads = malloc(g->total * sizeof(float));
        memcpy(o->grads, g->block, g->total * sizeof(float));
    }
    peqa_model_cache_free(c);
    peqa_model_grads_free(g);
    return st;
}

static void bit_identity(trun *r, peqa_model *m, int train_zeros, const char *name)
{
    const int64_t B = 3, T = 33;
    int32_t tok[99], tgt[99];
    prng g;
    prng_seed(&g, 4242);
    rand_tokens(&g, tok, tgt, B, T, m->cfg.vocab);
    tgt[10] = PEQA_TARGET_IGNORE;
    peqa_ctx *c0 = t_ctx("scalar", 1);
    run_out ref = {0};
    peqa_status st = c0 ? run_once(c0, m, train_zeros, B, T, tok, tgt, &ref) : PEQA_ERR_ISA;
    peqa_ctx_free(c0);
    char nm[96];
    snprintf(nm, sizeof nm, "model/bits/%s/reference", name);
    t_result(r, st == PEQA_OK && isfinite(ref.loss), nm, "scalar", "1 thread: loss %.9g, %zu gradient floats: %s",
             (double)ref.loss, ref.ngrads, st ? peqa_last_error() : "ok");
    if (st) {
        free(ref.logits), free(ref.grads);
        return;
    }
    static const int threads[] = {1, 2, 3, 7};
    for (int ii = 0; ii < t_nisas; ii++) {
        for (int ti = 0; ti < 4; ti++) {
            if (!strcmp(t_isas[ii], "scalar") && ti == 0) continue;
            snprintf(nm, sizeof nm, "model/bits/%s/threads=%d", name, threads[ti]);
            peqa_ctx *ctx = t_ctx(t_isas[ii], threads[ti]);
            if (!ctx) {
                if (ti == 0) t_skip(r, nm, t_isas[ii], "ISA not available on this CPU");
                continue;
            }
            run_out o = {0};
            st = run_once(ctx, m, train_zeros, B, T, tok, tgt, &o);
            int64_t dl = st ? -2 : t_first_diff(o.logits, ref.logits, 4, (int64_t)o.nlogits);
            int64_t dg = st ? -2 : t_first_diff(o.grads, ref.grads, 4, (int64_t)o.ngrads);
            int same_loss = !st && memcmp(&o.loss, &ref.loss, 4) == 0;
            t_result(r, !st && same_loss && dl < 0 && dg < 0, nm, t_isas[ii],
                     "vs scalar/1: loss %s, logits first diff %lld, gradients first diff %lld (of %zu)%s%s",
                     same_loss ? "same bits" : "DIFFERS", (long long)dl, (long long)dg, ref.ngrads,
                     st ? ": " : "", st ? peqa_last_error() : "");
            free(o.logits), free(o.grads);
            peqa_ctx_free(ctx);
        }
    }
    free(ref.logits), free(ref.grads);
}

/* ---- (d) KV-cache decoding ------------------------------------------------------------------- */

static void kv_check(trun *r, peqa_ctx *ctx, peqa_model *m, const char *name)
{
    const int64_t N = 11, P = 4, V = m->cfg.vocab;
    int32_t tok[11];
    prng g;
    prng_seed(&g, 99);
    rand_tokens(&g, tok, NULL, 1, N, V);
    float *full = malloc(sizeof(float) * (size_t)(N * V)), *step = malloc(sizeof(float) * (size_t)V);
    peqa_model_kv *kv = NULL, *kv1 = NULL;
    peqa_status st = peqa_model_kv_create(m, N, &kv);
    if (!st) st = peqa_model_kv_create(m, N, &kv1);
    int ok = st == PEQA_OK, steps = 0;
    int64_t bad_pos = -1, bad_idx = -1;
    /* kv: the prompt P tokens at once, then one at a time; kv1: one at a time from the start. */
    for (int64_t len = P; ok && len <= N; len++) {
        st = peqa_model_decode(ctx, m, kv, len == P ? P : 1, len == P ? tok : tok + len - 1, step);
        if (!st) st = peqa_model_logits(ctx, m, 1, len, tok, full);
        if (st) {
            ok = 0;
            break;
        }
        int64_t d = t_first_diff(step, full + (len - 1) * V, 4, V);
        if (d >= 0 && bad_pos < 0) bad_pos = len, bad_idx = d;
        steps++;
    }
    for (int64_t len = 1; ok && len <= N; len++) {
        st = peqa_model_decode(ctx, m, kv1, 1, tok + len - 1, step);
        if (!st) st = peqa_model_logits(ctx, m, 1, len, tok, full);
        if (st) {
            ok = 0;
            break;
        }
        int64_t d = t_first_diff(step, full + (len - 1) * V, 4, V);
        if (d >= 0 && bad_pos < 0) bad_pos = 100 + len, bad_idx = d;
        steps++;
    }
    char nm[96];
    snprintf(nm, sizeof nm, "model/kv/decode_equals_full/%s", name);
    t_result(r, ok && bad_pos < 0, nm, peqa_ctx_isa(ctx),
             "%d decode steps (prompt of %lld then singles; and singles from the start): %s (pos %lld, index %lld)%s%s",
             steps, (long long)P, bad_pos < 0 ? "every logit bit-identical" : "MISMATCH", (long long)bad_pos,
             (long long)bad_idx, st ? ": " : "", st ? peqa_last_error() : "");
    /* A full cache refuses more tokens. */
    st = peqa_model_decode(ctx, m, kv, 1, tok, step);
    snprintf(nm, sizeof nm, "model/kv/full_cache_refused/%s", name);
    t_result(r, st == PEQA_ERR_RANGE && msg_has("fit"), nm, peqa_ctx_isa(ctx), "status %d: %s", (int)st,
             peqa_last_error());
    peqa_model_kv_reset(kv);
    st = peqa_model_decode(ctx, m, kv, N, tok, step);
    if (!st) st = peqa_model_logits(ctx, m, 1, N, tok, full);
    snprintf(nm, sizeof nm, "model/kv/reset_and_whole_prompt/%s", name);
    t_result(r, !st && t_first_diff(step, full + (N - 1) * V, 4, V) < 0 && peqa_model_kv_len(kv) == N, nm,
             peqa_ctx_isa(ctx), "after reset, all %lld tokens at once: bit-identical last row", (long long)N);
    peqa_model_kv_free(kv);
    peqa_model_kv_free(kv1);
    free(full), free(step);

    /* eval's mean == training forward's loss (bits); per-token losses sum consistently. */
    const int64_t B = 2, T = 7;
    int32_t t2[14], y2[14];
    rand_tokens(&g, t2, y2, B, T, V);
    y2[0] = PEQA_TARGET_IGNORE;
    float mean_eval = -1, loss = -2, losses[14];
    peqa_model_cache *c = NULL;
    st = peqa_model_eval(ctx, m, B, T, t2, y2, losses, &mean_eval);
    if (!st) st = peqa_model_cache_create(m, 20, &c);
    if (!st) st = peqa_model_forward(ctx, m, c, B, T, t2, y2, &loss);
    snprintf(nm, sizeof nm, "model/eval_equals_forward/%s", name);
    t_result(r, !st && memcmp(&mean_eval, &loss, 4) == 0 && losses[0] == 0.0f, nm, peqa_ctx_isa(ctx),
             "eval mean %.9g, forward loss %.9g (cache of 20 tokens used for 14); ignored token's loss %g",
             (double)mean_eval, (double)loss, (double)losses[0]);
    peqa_model_cache_free(c);
}

/* ---- files ------------------------------------------------------------------------------------ */

typedef struct {
    char dir[64];
} tdir;

static void path_in(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Removes a directory tree of depth <= 2 made by these tests. */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes a checkpoint directory from a model's tensors with optional damage:
 * omit: a tensor left out; reshape: a tensor written with its last dimension one shorter;
 * dtype: PEQA_ST_F32, F16, BF16 (converted) or I32 (bytes reinterpreted, must be refused);
 * extra: an extra tensor name (a 1-element F32); nan_in: a tensor whose first element is NaN;
 * cfg_text: config.json (NULL: the model's). Returns 1 on success. */
typedef struct {
    const char *omit, *reshape, *extra, *nan_in, *cfg_text;
    int dtype;
    int keep_head; /* tied: also write lm_head.weight */
} damage;

static int write_ckpt(const char *dir, peqa_model *m, const damage *dm)
{
    mkdir(dir, 0777);
    char p[256];
    peqa_st_writer *w = NULL;
    if (peqa_st_writer_create(&w)) return 0;
    int ok = 1, n = (int)peqa_model_tensor_count(m);
    void **bufs = calloc((size_t)n + 2, sizeof *bufs);
    for (int i = 0; ok && i < n + 1; i++) {
        peqa_model_tensor t;
        if (i == n) { /* the tied head copy */
            if (!dm->keep_head || !m->cfg.tie_embeddings) break;
            peqa_model_tensor_at(m, 0, &t);
            snprintf(t.name, sizeof t.name, "lm_head.weight");
        } else {
            peqa_model_tensor_at(m, i, &t);
        }
        if (dm->omit && !strcmp(dm->omit, t.name)) continue;
        int64_t shape[2] = {t.shape[0], t.shape[1]};
        int64_t numel = t.numel;
        if (dm->reshape && !strcmp(dm->reshape, t.name)) {
            shape[t.ndim - 1] -= 1;
            numel = t.ndim == 2 ? shape[0] * shape[1] : shape[0];
        }
        int dt = dm->dtype;
        size_t es = dt == PEQA_ST_F16 || dt == PEQA_ST_BF16 ? 2 : 4;
        unsigned char *b = malloc((size_t)numel * es + 1);
        bufs[i] = b;
        for (int64_t e = 0; e < numel; e++) {
            float v = t.f32[e];
            if (dm->nan_in && !strcmp(dm->nan_in, t.name) && e == 0) v = NAN;
            if (dt == PEQA_ST_F16 || dt == PEQA_ST_BF16) {
                uint16_t h = dt == PEQA_ST_F16 ? peqa_st_f32_to_f16(v) : peqa_st_f32_to_bf16(v);
                memcpy(b + e * 2, &h, 2);
            } else {
                memcpy(b + e * 4, &v, 4);
            }
        }
        ok = peqa_st_writer_add(w, t.name, (peqa_st_dtype)dt, (size_t)t.ndim, shape, b, (size_t)numel * es) == PEQA_OK;
    }
    float one = 1.0f;
    if (ok && dm->extra) {
        int64_t s1 = 1;
        ok = peqa_st_writer_add(w, dm->extra, PEQA_ST_F32, 1, &s1, &one, 4) == PEQA_OK;
    }
    path_in(p, sizeof p, dir, "model.safetensors");
    if (ok) ok = peqa_st_writer_write(w, p) == PEQA_OK;
    for (int i = 0; i < n + 1; i++) free(bufs[i]);
    free(bufs);
    peqa_st_writer_free(w);
    char *json = NULL;
    if (ok && !dm->cfg_text) ok = peqa_model_config_json(&m->cfg, &json) == PEQA_OK;
    path_in(p, sizeof p, dir, "config.json");
    if (ok) ok = write_text(p, dm->cfg_text ? dm->cfg_text : json);
    free(json);
    return ok;
}

/* Every tensor of a and b bitwise equal (same order and names); returns the first differing
 * tensor index or -1. */
static int64_t model_diff(peqa_model *a, peqa_model *b)
{
    if (peqa_model_tensor_count(a) != peqa_model_tensor_count(b)) return 1000000;
    for (int64_t i = 0; i < peqa_model_tensor_count(a); i++) {
        peqa_model_tensor x, y;
        peqa_model_tensor_at(a, i, &x);
        peqa_model_tensor_at(b, i, &y);
        if (strcmp(x.name, y.name) || x.numel != y.numel || !x.f32 || !y.f32 ||
            memcmp(x.f32, y.f32, (size_t)x.numel * 4))
            return i;
    }
    return -1;
}

static int same_config(const peqa_model_config *a, const peqa_model_config *b)
{
    return a->dim == b->dim && a->ffn == b->ffn && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim && a->vocab == b->vocab &&
           a->max_pos == b->max_pos && a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta &&
           a->tie_embeddings == b->tie_embeddings && a->rope_kind == b->rope_kind &&
           a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
           a->rope_high_freq_factor == b->rope_high_freq_factor && a->rope_orig_max_pos == b->rope_orig_max_pos &&
           a->bos_token_id == b->bos_token_id && a->eos_token_id == b->eos_token_id;
}

static void files(trun *r, const char *root)
{
    char d1[160], d2[160], p[256];
    /* (e1) save / load, untied */
    peqa_model_config cu = tiny_config(0), ct = tiny_config(1);
    peqa_model *m = make_model(&cu, 11, 0.25f), *mt = make_model(&ct, 12, 0.25f), *l = NULL;
    snprintf(d1, sizeof d1, "%s/saved", root);
    peqa_status st = peqa_model_save(m, d1);
    if (!st) st = peqa_model_load(d1, &l);
    int64_t dif = st ? -2 : model_diff(m, l);
    t_result(r, !st && dif < 0 && same_config(&m->cfg, &l->cfg), "model/io/save_load_dir", "-",
             "%lld tensors bit-identical, config equal: %s", (long long)peqa_model_tensor_count(m),
             st ? peqa_last_error() : dif < 0 ? "yes" : "NO");
    peqa_model_free(l), l = NULL;
    path_in(p, sizeof p, d1, "model.safetensors");
    st = peqa_model_load(p, &l);
    t_result(r, !st && model_diff(m, l) < 0, "model/io/load_by_file_path", "-", "config.json found next to %s: %s", p,
             st ? peqa_last_error() : "ok");
    peqa_model_free(l), l = NULL;

    /* (e2) tied: the file has no lm_head; loading ties again; a file WITH a head copy loads too */
    snprintf(d1, sizeof d1, "%s/tied", root);
    st = peqa_model_save(mt, d1);
    peqa_st_file *f = NULL;
    path_in(p, sizeof p, d1, "model.safetensors");
    int has_head = 1;
    if (!st && !peqa_st_open(p, &f)) has_head = peqa_st_find(f, "lm_head.weight") != NULL;
    peqa_st_close(f);
    if (!st) st = peqa_model_load(d1, &l);
    t_result(r, !st && !has_head && l->lm_head == l->embed && model_diff(mt, l) < 0, "model/io/tied_no_head", "-",
             "saved without lm_head.weight (%s), loaded tied: %s", has_head ? "PRESENT" : "absent",
             st ? peqa_last_error() : "ok");
    peqa_model_free(l), l = NULL;
    snprintf(d2, sizeof d2, "%s/tied_copy", root);
    damage keep = {.keep_head = 1, .dtype = PEQA_ST_F32};
    st = write_ckpt(d2, mt, &keep) ? peqa_model_load(d2, &l) : PEQA_ERR_IO;
    t_result(r, !st && model_diff(mt, l) < 0, "model/io/tied_with_head_copy", "-", "%s",
             st ? peqa_last_error() : "accepted, head is the embedding");
    peqa_model_free(l), l = NULL;

    /* (e3) BF16 and F16 files convert exactly */
    for (int k = 0; k < 2; k++) {
        int dt = k ? PEQA_ST_F16 : PEQA_ST_BF16;
        snprintf(d2, sizeof d2, "%s/%s", root, k ? "f16" : "bf16");
        damage dd = {.dtype = dt};
        st = write_ckpt(d2, m, &dd) ? peqa_model_load(d2, &l) : PEQA_ERR_IO;
        int64_t bad = -1;
        for (int64_t i = 0; !st && bad < 0 && i < peqa_model_tensor_count(m); i++) {
            peqa_model_tensor a, b;
            peqa_model_tensor_at(m, i, &a);
            peqa_model_tensor_at(l, i, &b);
            for (int64_t e = 0; e < a.numel; e++) {
                float want = k ? peqa_st_f16_to_f32(peqa_st_f32_to_f16(a.f32[e]))
                               : peqa_st_bf16_to_f32(peqa_st_f32_to_bf16(a.f32[e]));
                if (memcmp(&want, &b.f32[e], 4)) {
                    bad = i;
                    break;
                }
            }
        }
        t_result(r, !st && bad < 0, k ? "model/io/load_f16" : "model/io/load_bf16", "-",
                 "every value equals its exact %s conversion: %s", k ? "F16" : "BF16",
                 st ? peqa_last_error() : bad < 0 ? "yes" : "NO");
        peqa_model_free(l), l = NULL;
    }

    /* (e4) shards: two files and an index */
    snprintf(d2, sizeof d2, "%s/sharded", root);
    mkdir(d2, 0777);
    {
        peqa_st_writer *w[2] = {NULL, NULL};
        peqa_st_writer_create(&w[0]);
        peqa_st_writer_create(&w[1]);
        char *idx = malloc(16384);
        size_t o = (size_t)snprintf(idx, 16384, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        int64_t n = peqa_model_tensor_count(m);
        for (int64_t i = 0; i < n; i++) {
            peqa_model_tensor t;
            peqa_model_tensor_at(m, i, &t);
            int s = i >= n / 2;
            peqa_st_writer_add(w[s], t.name, PEQA_ST_F32, (size_t)t.ndim, t.shape, t.f32, (size_t)t.numel * 4);
            o += (size_t)snprintf(idx + o, 16384 - o, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                                  t.name, s + 1);
        }
        snprintf(idx + o, 16384 - o, "}}");
        int ok = 1;
        for (int s = 0; s < 2; s++) {
            char nmf[64];
            snprintf(nmf, sizeof nmf, "model-0000%d-of-00002.safetensors", s + 1);
            path_in(p, sizeof p, d2, nmf);
            ok = ok && peqa_st_writer_write(w[s], p) == PEQA_OK;
            peqa_st_writer_free(w[s]);
        }
        char *json = NULL;
        peqa_model_config_json(&m->cfg, &json);
        path_in(p, sizeof p, d2, "model.safetensors.index.json");
        ok = ok && write_text(p, idx);
        path_in(p, sizeof p, d2, "config.json");
        ok = ok && json && write_text(p, json);
        free(json), free(idx);
        st = ok ? peqa_model_load(d2, &l) : PEQA_ERR_IO;
        t_result(r, !st && model_diff(m, l) < 0, "model/io/load_sharded", "-", "2 shards + index: %s",
                 st ? peqa_last_error() : "bit-identical");
        peqa_model_free(l), l = NULL;
        /* saving into a directory with an index is refused (the index would win on load) */
        st = peqa_model_save(m, d2);
        t_result(r, st == PEQA_ERR_IO && msg_has("index"), "model/io/save_refuses_index_dir", "-", "status %d: %s",
                 (int)st, peqa_last_error());
    }

    /* (e5) config.json round trip with every optional field in use */
    {
        peqa_model_config c = tiny_config(1), back;
        c.norm_eps = 1e-6, c.rope_theta = 500000.0, c.rope_kind = PEQA_ROPE_LLAMA3, c.rope_factor = 8.0;
        c.rope_low_freq_factor = 1.0, c.rope_high_freq_factor = 4.0, c.rope_orig_max_pos = 8192;
        c.bos_token_id = 1, c.eos_token_id = 2, c.head_dim = 16, c.max_pos = 131;
        char *json = NULL;
        st = peqa_model_config_json(&c, &json);
        if (!st) st = peqa_model_config_parse(json, strlen(json), "roundtrip.json", &back);
        t_result(r, !st && same_config(&c, &back), "model/config/json_round_trip", "-",
                 "llama3 rope, head_dim 16 (!= 32/4), eps 1e-6, tied, bos/eos: %s", st ? peqa_last_error() : "equal");
        free(json);
        static const char v5[] = "{\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 1,"
                                 "\"num_attention_heads\": 4, \"vocab_size\": 10, \"rms_norm_eps\": 1e-05,"
                                 "\"num_key_value_heads\": null, \"eos_token_id\": [7, 8, 9],"
                                 "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 500000.0}}";
        memset(&back, 0, sizeof back);
        st = peqa_model_config_parse(v5, strlen(v5), "v5.json", &back);
        t_result(r, !st && back.rope_theta == 500000.0 && back.n_kv_heads == 4 && back.head_dim == 16 &&
                        back.max_pos == 2048 && back.eos_token_id == 7 && back.rope_kind == PEQA_ROPE_DEFAULT &&
                        back.norm_eps == 1e-5 && !back.tie_embeddings,
                 "model/config/v5_rope_parameters", "-",
                 "rope_parameters.rope_theta, null kv heads -> heads, eos list -> first, defaults: %s",
                 st ? peqa_last_error() : "ok");
    }

    /* (f) damaged checkpoints */
    struct {
        const char *name;
        damage dm;
        peqa_status want;
        const char *needle1, *needle2;
    } bad[] = {
        {"missing_tensor", {.omit = "model.layers.1.mlp.up_proj.weight"}, PEQA_ERR_FORMAT, "missing tensor",
         "model.layers.1.mlp.up_proj.weight"},
        {"misshaped_tensor", {.reshape = "model.layers.0.mlp.down_proj.weight"}, PEQA_ERR_SHAPE, "[32, 47]",
         "model.layers.0.mlp.down_proj.weight"},
        {"misshaped_norm", {.reshape = "model.norm.weight"}, PEQA_ERR_SHAPE, "[31]", "model.norm.weight"},
        {"wrong_dtype", {.dtype = PEQA_ST_I32}, PEQA_ERR_FORMAT, "I32", "model.embed_tokens.weight"},
        {"untied_no_head", {.omit = "lm_head.weight"}, PEQA_ERR_FORMAT, "missing tensor", "lm_head.weight"},
        {"bias_tensor", {.extra = "model.layers.0.self_attn.q_proj.bias"}, PEQA_ERR_FORMAT, "bias", "q_proj.bias"},
        {"nan_weight", {.nan_in = "model.layers.1.self_attn.v_proj.weight"}, PEQA_ERR_NONFINITE, "NaN",
         "model.layers.1.self_attn.v_proj.weight"},
        {"bad_config", {.cfg_text = "{\"hidden_size\": 32, \"intermediate_size\": 48, \"num_hidden_layers\": 2,"
                                    " \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"vocab_size\": 40}"},
         PEQA_ERR_FORMAT, "config.json", "num_key_value_heads"},
        {"config_shapes_differ", {.cfg_text = "{\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
                                              " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 40}"},
         PEQA_ERR_SHAPE, "gate_proj", "[64, 32]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(d2, sizeof d2, "%s/bad_%zu", root, i);
        damage dm = bad[i].dm;
        if (!dm.dtype) dm.dtype = PEQA_ST_F32;
        char nm[96];
        snprintf(nm, sizeof nm, "model/io/bad/%s", bad[i].name);
        if (!write_ckpt(d2, m, &dm)) {
            t_result(r, 0, nm, "-", "could not write the damaged checkpoint");
            continue;
        }
        l = NULL;
        st = peqa_model_load(d2, &l);
        int named = msg_has(bad[i].needle1) && msg_has(bad[i].needle2) && msg_has(root);
        t_result(r, st == bad[i].want && !l && named, nm, "-", "status %d (want %d): %s", (int)st, (int)bad[i].want,
                 peqa_last_error());
        peqa_model_free(l), l = NULL;
    }
    /* no config.json; truncated weights file; nonexistent path */
    snprintf(d2, sizeof d2, "%s/bad_0", root);
    path_in(p, sizeof p, d2, "config.json");
    unlink(p);
    st = peqa_model_load(d2, &l);
    t_result(r, st == PEQA_ERR_IO && !l && msg_has("config.json"), "model/io/bad/no_config", "-", "status %d: %s",
             (int)st, peqa_last_error());
    snprintf(d2, sizeof d2, "%s/bad_1", root);
    path_in(p, sizeof p, d2, "model.safetensors");
    if (truncate(p, 1000) == 0) {
        st = peqa_model_load(d2, &l);
        t_result(r, st != PEQA_OK && !l && msg_has("model.safetensors"), "model/io/bad/truncated_file", "-",
                 "status %d: %s", (int)st, peqa_last_error());
    }
    st = peqa_model_load("/nonexistent/peqa/model", &l);
    t_result(r, st == PEQA_ERR_IO && !l && msg_has("/nonexistent/peqa/model"), "model/io/bad/no_such_path", "-",
             "status %d: %s", (int)st, peqa_last_error());
    peqa_model_free(m);
    peqa_model_free(mt);
}

/* ---- (f) configuration errors ------------------------------------------------------------------ */

static void bad_configs(trun *r)
{
#define BASE "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"vocab_size\": 40"
    static const struct {
        const char *name, *json, *needle;
    } cases[] = {
        {"zero_hidden", "{\"hidden_size\": 0, \"num_attention_heads\": 4, " BASE "}", "\"hidden_size\" = 0"},
        {"negative_hidden", "{\"hidden_size\": -32, \"num_attention_heads\": 4, " BASE "}", "hidden_size"},
        {"not_divisible", "{\"hidden_size\": 30, \"num_attention_heads\": 4, " BASE "}", "not divisible"},
        {"kv_not_dividing", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_key_value_heads\": 3, " BASE "}",
         "num_key_value_heads"},
        {"kv_zero", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_key_value_heads\": 0, " BASE "}",
         "num_key_value_heads"},
        {"zero_heads", "{\"hidden_size\": 32, \"num_attention_heads\": 0, " BASE "}", "num_attention_heads"},
        {"odd_head_dim", "{\"hidden_size\": 28, \"num_attention_heads\": 4, " BASE "}", "head_dim"},
        {"huge_vocab", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"intermediate_size\": 48,"
                       " \"num_hidden_layers\": 2, \"vocab_size\": 1000000000000}", "vocab_size"},
        {"huge_layers", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"intermediate_size\": 48,"
                        " \"num_hidden_layers\": 100000, \"vocab_size\": 40}", "num_hidden_layers"},
        {"huge_hidden", "{\"hidden_size\": 9223372036854775807, \"num_attention_heads\": 1, " BASE "}", "hidden_size"},
        {"missing_key", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 40}",
         "missing key \"intermediate_size\""},
        {"string_int", "{\"hidden_size\": \"32\", \"num_attention_heads\": 4, " BASE "}", "must be an integer"},
        {"fraction_int", "{\"hidden_size\": 32.5, \"num_attention_heads\": 4, " BASE "}", "must be an integer"},
        {"zero_eps", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rms_norm_eps\": 0, " BASE "}", "rms_norm_eps"},
        {"negative_eps", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rms_norm_eps\": -1e-5, " BASE "}",
         "rms_norm_eps"},
        {"tiny_eps", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rms_norm_eps\": 1e-60, " BASE "}",
         "rms_norm_eps"},
        {"bad_theta", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rope_theta\": 0.5, " BASE "}", "rope_theta"},
        {"theta_disagree", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rope_theta\": 10000,"
                           " \"rope_parameters\": {\"rope_theta\": 500000}, " BASE "}", "disagree"},
        {"zero_max_pos", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"max_position_embeddings\": 0, " BASE "}",
         "max_position_embeddings"},
        {"yarn", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"yarn\","
                 " \"factor\": 4}, " BASE "}", "yarn"},
        {"llama3_bad", "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"llama3\","
                       " \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1,"
                       " \"original_max_position_embeddings\": 8192}, " BASE "}", "high_freq_factor"},
        {"model_type", "{\"model_type\": \"qwen2\", \"hidden_size\": 32, \"num_attention_heads\": 4, " BASE "}",
         "qwen2"},
        {"attention_bias", "{\"attention_bias\": true, \"hidden_size\": 32, \"num_attention_heads\": 4, " BASE "}",
         "attention_bias"},
        {"hidden_act", "{\"hidden_act\": \"gelu\", \"hidden_size\": 32, \"num_attention_heads\": 4, " BASE "}",
         "hidden_act"},
        {"tie_not_bool", "{\"tie_word_embeddings\": 1, \"hidden_size\": 32, \"num_attention_heads\": 4, " BASE "}",
         "tie_word_embeddings"},
        {"invalid_json", "{\"hidden_size\": 32,}", "JSON error"},
        {"not_object", "[1, 2, 3]", "JSON object"},
        {"empty", "", "JSON error"},
    };
#undef BASE
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peqa_model_config c;
        memset(&c, 0x5a, sizeof c);
        peqa_model_config before = c;
        peqa_status st = peqa_model_config_parse(cases[i].json, strlen(cases[i].json), "cfgtest.json", &c);
        char nm[96];
        snprintf(nm, sizeof nm, "model/config/bad/%s", cases[i].name);
        t_result(r, st == PEQA_ERR_FORMAT && msg_has("cfgtest.json") && msg_has(cases[i].needle) &&
                        !memcmp(&c, &before, sizeof c),
                 nm, "-", "status %d: %s", (int)st, peqa_last_error());
    }
    /* programmatic constructor */
    peqa_model_config c;
    peqa_status st = peqa_model_config_init(&c, 30, 48, 2, 4, 2, 40, 64);
    t_result(r, st == PEQA_ERR_ARG && msg_has("not divisible"), "model/config/init_not_divisible", "-", "%s",
             peqa_last_error());
    st = peqa_model_config_init(&c, 32, 48, 2, 4, 2, 0, 64);
    t_result(r, st == PEQA_ERR_ARG && msg_has("vocab_size"), "model/config/init_zero_vocab", "-", "%s",
             peqa_last_error());
    st = peqa_model_config_load("/nonexistent/config.json", &c);
    t_result(r, st == PEQA_ERR_IO && msg_has("/nonexistent/config.json"), "model/config/missing_file", "-", "%s",
             peqa_last_error());
}

/* ---- API misuse, quantize, accumulation ------------------------------------------------------------ */

static void api_checks(trun *r, peqa_ctx *ctx)
{
    peqa_model_config cu = tiny_config(0);
    peqa_model *m = make_model(&cu, 21, 0.25f), *mq = make_model(&cu, 21, 0.25f);
    const int64_t B = 2, T = 7, M = B * T;
    int32_t tok[14], tgt[14], tok2[14], tgt2[14];
    prng g;
    prng_seed(&g, 5);
    rand_tokens(&g, tok, tgt, B, T, 40);
    rand_tokens(&g, tok2, tgt2, B, T, 40);
    peqa_model_cache *c = NULL;
    peqa_model_grads *gr = NULL, *gq = NULL;
    float loss;
    peqa_model_cache_create(m, M, &c);
    peqa_model_grads_create(m, 0, &gr);

    peqa_status st = peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    t_result(r, st == PEQA_ERR_ARG && msg_has("forward first"), "model/api/backward_without_forward", "-", "%s",
             peqa_last_error());
    peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    st = peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    peqa_status st2 = peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    t_result(r, !st && st2 == PEQA_ERR_ARG && msg_has("consumed"), "model/api/backward_twice", "-", "%s",
             peqa_last_error());
    int32_t badtok[14];
    memcpy(badtok, tok, sizeof badtok);
    badtok[9] = 40;
    st = peqa_model_forward(ctx, m, c, B, T, badtok, tgt, &loss);
    t_result(r, st == PEQA_ERR_RANGE && msg_has("tokens[9] = 40"), "model/api/token_out_of_range", "-", "%s",
             peqa_last_error());
    memcpy(badtok, tgt, sizeof badtok);
    badtok[2] = -1;
    st = peqa_model_forward(ctx, m, c, B, T, tok, badtok, &loss);
    t_result(r, st == PEQA_ERR_RANGE && msg_has("targets[2]"), "model/api/target_out_of_range", "-", "%s",
             peqa_last_error());
    {
        int32_t t16[16] = {0}, y16[16] = {0}; /* B·T = 16 tokens for a cache of 14 */
        st = peqa_model_forward(ctx, m, c, 2, 8, t16, y16, &loss);
    }
    t_result(r, st == PEQA_ERR_SHAPE && msg_has("exceed the cache"), "model/api/batch_exceeds_cache", "-", "%s",
             peqa_last_error());
    {
        int32_t *lt = calloc(65, sizeof *lt);
        float *lg = malloc(65 * 40 * sizeof *lg);
        st = peqa_model_logits(ctx, m, 1, 65, lt, lg);
        t_result(r, st == PEQA_ERR_RANGE && msg_has("max_position_embeddings"), "model/api/too_long", "-", "%s",
                 peqa_last_error());
        free(lt), free(lg);
    }

    /* accumulation: overwrite(A), overwrite(B), then overwrite(A) + accumulate(B) == fl(gA + gB) */
    peqa_model_grads *ga = NULL, *gb = NULL;
    peqa_model_grads_create(m, 0, &ga);
    peqa_model_grads_create(m, 0, &gb);
    peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    peqa_model_backward(ctx, m, c, ga, 1.0f, 0);
    peqa_model_forward(ctx, m, c, B, T, tok2, tgt2, &loss);
    peqa_model_backward(ctx, m, c, gb, 1.0f, 0);
    peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    peqa_model_forward(ctx, m, c, B, T, tok2, tgt2, &loss);
    st = peqa_model_backward(ctx, m, c, gr, 1.0f, 1);
    int64_t bad = -1;
    for (size_t i = 0; i < gr->total && bad < 0; i++) {
        float want = ga->block[i] + gb->block[i];
        if (memcmp(&want, &gr->block[i], 4)) bad = (int64_t)i;
    }
    t_result(r, !st && bad < 0, "model/api/accumulate", "-", "%zu floats: accumulated == fl(gA + gB): %s", gr->total,
             bad < 0 ? "all" : "MISMATCH");
    /* dloss = 2 doubles every gradient exactly (the backward is linear in dloss) */
    peqa_model_forward(ctx, m, c, B, T, tok, tgt, &loss);
    st = peqa_model_backward(ctx, m, c, gr, 2.0f, 0);
    bad = -1;
    for (size_t i = 0; i < gr->total && bad < 0; i++) {
        float want = 2.0f * ga->block[i];
        if (memcmp(&want, &gr->block[i], 4)) bad = (int64_t)i;
    }
    t_result(r, !st && bad < 0, "model/api/dloss_scales", "-", "dloss 2 gives exactly 2x every gradient: %s",
             bad < 0 ? "yes" : "NO");
    /* full precision: the tied/untied parameter lists and names */
    peqa_model_param p0, plast;
    peqa_model_param_at(m, 0, 0, gr, &p0);
    peqa_model_param_at(m, 0, peqa_model_param_count(m, 0) - 1, gr, &plast);
    t_result(r, peqa_model_param_count(m, 0) == 21 && !strcmp(p0.name, "model.embed_tokens.weight") &&
                    !strcmp(plast.name, "lm_head.weight") && p0.grad == gr->g[0],
             "model/api/param_list_fp32", "-", "%lld tensors, first %s, last %s", (long long)peqa_model_param_count(m, 0),
             p0.name, plast.name);

    /* quantize: equals RTN of each linear; refuses bad bits/group, a second time, and misuse */
    st = peqa_model_quantize(mq, 5, 32);
    t_result(r, st == PEQA_ERR_BITS && !mq->quantized && msg_has("q_proj"), "model/quantize/bad_bits", "-", "%s",
             peqa_last_error());
    st = peqa_model_quantize(mq, 4, 16);
    t_result(r, st == PEQA_ERR_GROUP && !mq->quantized, "model/quantize/bad_group", "-", "%s", peqa_last_error());
    st = peqa_model_quantize(mq, 4, 32);
    int64_t lbad = -1;
    for (int64_t i = 0; !st && lbad < 0 && i < peqa_model_linear_count(mq); i++) {
        peqa_model_linear *a = peqa_model_linear_at(m, i), *b = peqa_model_linear_at(mq, i);
        peqa_qtensor *t = NULL;
        peqa_qtensor_create(a->n, a->k, 4, 32, &t);
        peqa_qtensor_quantize_rtn(t, a->w, a->k);
        size_t nk = (size_t)(a->n * a->k), ns = (size_t)(a->n * ((a->k + 31) / 32));
        uint8_t *c1 = malloc(nk), *c2 = malloc(nk);
        float *s1 = malloc(ns * 4), *s2 = malloc(ns * 4), *z1 = malloc(ns * 4), *z2 = malloc(ns * 4);
        peqa_qtensor_export(ctx, t, c1, a->k, s1, z1);
        peqa_qtensor_export(ctx, b->q, c2, a->k, s2, z2);
        if (b->w || memcmp(c1, c2, nk) || memcmp(s1, s2, ns * 4) || memcmp(z1, z2, ns * 4)) lbad = i;
        free(c1), free(c2), free(s1), free(s2), free(z1), free(z2);
        peqa_qtensor_free(t);
    }
    t_result(r, !st && lbad < 0 && mq->quantized, "model/quantize/equals_rtn", "-",
             "%lld linears: codes, scales, zeros equal to peqa_qtensor_quantize_rtn: %s",
             (long long)peqa_model_linear_count(mq), st ? peqa_last_error() : lbad < 0 ? "yes" : "NO");
    char nm[64];
    peqa_model_linear_name(mq, 13, nm, sizeof nm);
    peqa_model_grads_create(mq, 1, &gq);
    peqa_model_param pq;
    peqa_model_param_at(mq, 1, 27, gq, &pq);
    t_result(r, !strcmp(nm, "model.layers.1.mlp.down_proj") && peqa_model_param_count(mq, 1) == 28 &&
                    !strcmp(pq.name, "model.layers.1.mlp.down_proj.qzeros") && pq.shape[0] == 32 && pq.shape[1] == 2,
             "model/quantize/names", "-", "linear 13 = %s; param 27 = %s [%lld, %lld]", nm, pq.name,
             (long long)pq.shape[0], (long long)pq.shape[1]);
    st = peqa_model_quantize(mq, 4, 32);
    t_result(r, st == PEQA_ERR_ARG && msg_has("already"), "model/quantize/twice", "-", "%s", peqa_last_error());
    st = peqa_model_save(mq, "/tmp");
    t_result(r, st == PEQA_ERR_ARG && msg_has("quantized"), "model/api/save_quantized_refused", "-", "%s",
             peqa_last_error());
    st = peqa_model_init_random(mq, 1, 0.02f);
    t_result(r, st == PEQA_ERR_ARG, "model/api/init_quantized_refused", "-", "%s", peqa_last_error());
    peqa_model_forward(ctx, mq, c, B, T, tok, tgt, &loss);
    st = peqa_model_backward(ctx, mq, c, gr, 1.0f, 0);
    t_result(r, st == PEQA_ERR_ARG && msg_has("gradients"), "model/api/grads_of_other_mode", "-", "%s",
             peqa_last_error());
    st = peqa_model_backward(ctx, m, c, gr, 1.0f, 0);
    t_result(r, st == PEQA_ERR_ARG, "model/api/backward_other_model", "-", "%s", peqa_last_error());
    /* random init is reproducible from its seed */
    peqa_model *r1 = make_model(&cu, 99, 0.1f), *r2 = make_model(&cu, 99, 0.1f);
    t_result(r, r1 && r2 && model_diff(r1, r2) < 0 && fabsf(r1->embed[0]) < 0.1f * 1.7321f, "model/api/init_seeded",
             "-", "same seed, same bits");
    peqa_model_free(r1), peqa_model_free(r2);
    /* activation bytes per token per layer, LLaMA-7B shapes */
    peqa_model_config c7;
    peqa_model_config_init(&c7, 4096, 11008, 32, 32, 32, 32000, 4096);
    t_result(r, peqa_model_act_bytes_per_token_layer(&c7) == 186632, "model/api/act_bytes_7b", "-",
             "%zu bytes per token per layer (+%zu per token once, +%zu work)", peqa_model_act_bytes_per_token_layer(&c7),
             peqa_model_act_bytes_per_token_once(&c7), peqa_model_act_bytes_per_token_work(&c7));
    peqa_model_grads_free(ga), peqa_model_grads_free(gb), peqa_model_grads_free(gr), peqa_model_grads_free(gq);
    peqa_model_cache_free(c);
    peqa_model_free(m), peqa_model_free(mq);
}

/* ---- entry ---------------------------------------------------------------------------------------- */

void test_model(trun *r)
{
    peqa_ctx *ctx = t_ctx("scalar", 1);
    if (!ctx) {
        t_result(r, 0, "model/ctx", "scalar", "cannot create a context: %s", peqa_last_error());
        return;
    }
    peqa_model_config cu = tiny_config(0), ct = tiny_config(1);
    /* (a) forward vs float64 */
    {
        peqa_model *m = make_model(&cu, 1, 0.25f), *mt = make_model(&ct, 2, 0.25f);
        check_forward(r, ctx, m, "fp32");
        check_forward(r, ctx, mt, "fp32_tied");
        peqa_model_quantize(m, 4, 32);
        check_forward(r, ctx, m, "q4_g32");
        peqa_model_quantize(mt, 3, 0);
        check_forward(r, ctx, mt, "q3_channel_tied");
        peqa_model_free(m), peqa_model_free(mt);
    }
    /* (b) finite differences */
    {
        peqa_model *m = make_model(&cu, 3, 0.25f), *mt = make_model(&ct, 4, 0.25f);
        fd_check(r, ctx, m, 0, "fp32", 3, 31);
        fd_check(r, ctx, mt, 0, "fp32_tied", 2, 32);
        peqa_model_quantize(m, 4, 32);
        fd_check(r, ctx, m, 1, "q4_g32_zeros", 3, 33);
        peqa_model_quantize(mt, 3, 0);
        fd_check(r, ctx, mt, 0, "q3_channel_tied", 3, 34);
        peqa_model_free(m), peqa_model_free(mt);
    }
    /* (c) bit identity on a larger model */
    {
        peqa_model_config cm;
        peqa_model_config_init(&cm, 128, 344, 2, 4, 2, 301, 64);
        peqa_model *m = make_model(&cm, 5, 0.1f);
        cm.tie_embeddings = 1;
        peqa_model *mt = make_model(&cm, 6, 0.1f);
        bit_identity(r, m, 0, "fp32");
        bit_identity(r, mt, 0, "fp32_tied");
        peqa_model_quantize(m, 4, 32);
        bit_identity(r, m, 1, "q4_g32_zeros");
        peqa_model_quantize(mt, 2, 0);
        bit_identity(r, mt, 0, "q2_channel_tied");
        peqa_model_free(m), peqa_model_free(mt);
    }
    /* (d) KV cache */
    {
        peqa_model *m = make_model(&cu, 7, 0.25f);
        kv_check(r, ctx, m, "fp32");
        peqa_model_quantize(m, 4, 32);
        kv_check(r, ctx, m, "q4_g32");
        peqa_ctx *c2 = t_ctx(NULL, 3);
        if (c2) kv_check(r, c2, m, "q4_g32_best_isa_3_threads");
        peqa_ctx_free(c2);
        peqa_model_free(m);
    }
    /* (e), (f) */
    char root[64];
    snprintf(root, sizeof root, "/tmp/peqa_model_XXXXXX");
    if (!mkdtemp(root)) {
        t_result(r, 0, "model/tmpdir", "-", "mkdtemp failed");
    } else {
        files(r, root);
        rm_tree(root);
    }
    bad_configs(r);
    api_checks(r, ctx);
    peqa_ctx_free(ctx);
}
