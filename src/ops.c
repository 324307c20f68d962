/* peqa — fp32 operations of the LLaMA forward and backward: scalar reference (see ops.h for the
 * math, the operation sequences, the saved tensors and the threading rules of every function).
 * The code follows the sequences written in ops.h line by line; keep the two in step. */
#include <math.h> /* fmaf, sqrtf; cos, sin, pow in double for the RoPE table only */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "mathf.h"
#include "ops.h"

/* ---- argument checks ------------------------------------------------------------------------ */

/* d >= 1; *n = *n · d with overflow check, also of the byte count of *n floats. */
static peqa_status dim(const char *fn, const char *name, int64_t d, size_t *n)
{
    if (d < 1) return peqa__fail(PEQA_ERR_SHAPE, "%s: %s = %lld: expected >= 1", fn, name, (long long)d);
    size_t b;
    if ((uint64_t)d > SIZE_MAX || !peqa__mul(*n, (size_t)d, n) || !peqa__mul(*n, sizeof(float), &b))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: %s = %lld makes a buffer size overflow", fn, name,
                          (long long)d);
    return PEQA_OK;
}

static peqa_status need(const char *fn, const char *name, const void *p)
{
    if (!p) return peqa__fail(PEQA_ERR_NULL, "%s: %s is NULL", fn, name);
    return PEQA_OK;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        peqa_status st_ = (expr);                                                                  \
        if (st_ != PEQA_OK) return st_;                                                            \
    } while (0)

/* ---- RMSNorm -------------------------------------------------------------------------------- */

peqa_status peqa_rmsnorm_fwd(const float *x, const float *w, float eps, int64_t T, int64_t D, float *y,
                             float *rstd)
{
    static const char fn[] = "peqa_rmsnorm_fwd";
    size_t n = 1;
    TRY(dim(fn, "T", T, &n));
    TRY(dim(fn, "D", D, &n));
    TRY(need(fn, "x", x));
    TRY(need(fn, "w", w));
    TRY(need(fn, "y", y));
    if (!(eps > 0.0f) || !isfinite(eps))
        return peqa__fail(PEQA_ERR_ARG, "%s: eps = %g: expected a finite value > 0", fn, (double)eps);
    const size_t d = (size_t)D;
    const float fd = (float)D;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float *xr = x + t * d;
        float *yr = y + t * d;
        float ss = 0.0f;
        for (size_t i = 0; i < d; i++) ss = fmaf(xr[i], xr[i], ss);
        const float r = 1.0f / sqrtf(ss / fd + eps);
        for (size_t i = 0; i < d; i++) yr[i] = w[i] * (xr[i] * r);
        if (rstd) rstd[t] = r;
    }
    return PEQA_OK;
}

void peqa_rmsnorm_bwd_dw_cols(const float *x, const float *rstd, const float *dy, int64_t T, int64_t D,
                              int64_t c0, int64_t c1, float *dw)
{
    const size_t d = (size_t)D;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float r = rstd[t];
        const float *xr = x + t * d, *dyr = dy + t * d;
        for (size_t i = (size_t)c0; i < (size_t)c1; i++) dw[i] = fmaf(dyr[i], xr[i] * r, dw[i]);
    }
}

peqa_status peqa_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *dy, int64_t T,
                             int64_t D, float *dx, float *dw)
{
    static const char fn[] = "peqa_rmsnorm_bwd";
    size_t n = 1;
    TRY(dim(fn, "T", T, &n));
    TRY(dim(fn, "D", D, &n));
    TRY(need(fn, "x", x));
    TRY(need(fn, "rstd", rstd));
    TRY(need(fn, "dy", dy));
    if (dx) TRY(need(fn, "w", w));
    const size_t d = (size_t)D;
    const float fd = (float)D;
    /* dw first: dx may overwrite dy. */
    if (dw) peqa_rmsnorm_bwd_dw_cols(x, rstd, dy, T, D, 0, D, dw);
    if (dx) {
        for (size_t t = 0; t < (size_t)T; t++) {
            const float *xr = x + t * d, *dyr = dy + t * d;
            float *dxr = dx + t * d;
            const float r = rstd[t];
            float dot = 0.0f;
            for (size_t i = 0; i < d; i++) dot = fmaf(dyr[i] * w[i], xr[i], dot);
            const float c = ((r * r) * r) * dot / fd;
            for (size_t j = 0; j < d; j++) dxr[j] = fmaf(-c, xr[j], r * (dyr[j] * w[j]));
        }
    }
    return PEQA_OK;
}

/* ---- RoPE ----------------------------------------------------------------------------------- */

peqa_status peqa_rope_default_freqs(int64_t head_dim, double theta, float *inv_freq)
{
    static const char fn[] = "peqa_rope_default_freqs";
    TRY(need(fn, "inv_freq", inv_freq));
    if (head_dim < 2 || head_dim % 2 != 0)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: head_dim = %lld: expected an even number >= 2", fn,
                          (long long)head_dim);
    if (!(theta > 0.0) || !isfinite(theta))
        return peqa__fail(PEQA_ERR_ARG, "%s: theta = %g: expected a finite value > 0", fn, theta);
    for (int64_t j = 0; j < head_dim / 2; j++)
        inv_freq[j] = (float)(1.0 / pow(theta, (double)(2 * j) / (double)head_dim));
    return PEQA_OK;
}

peqa_status peqa_rope_init_freqs(peqa_rope *r, int64_t head_dim, int64_t max_pos, const float *inv_freq)
{
    static const char fn[] = "peqa_rope_init";
    TRY(need(fn, "rope", r));
    memset(r, 0, sizeof *r);
    TRY(need(fn, "inv_freq", inv_freq));
    if (head_dim < 2 || head_dim % 2 != 0)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: head_dim = %lld: expected an even number >= 2", fn,
                          (long long)head_dim);
    /* Positions are converted to float exactly: p < 2^24. */
    if (max_pos < 1 || max_pos > ((int64_t)1 << 24))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: max_pos = %lld: expected 1 <= max_pos <= 2^24", fn,
                          (long long)max_pos);
    const size_t half = (size_t)head_dim / 2;
    for (size_t j = 0; j < half; j++)
        if (!isfinite(inv_freq[j]))
            return peqa__fail(PEQA_ERR_NONFINITE, "%s: inv_freq[%zu] is not finite", fn, j);
    size_t n;
    if (!peqa__mul((size_t)max_pos, half, &n) || !peqa__mul(n, sizeof(float), &n))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: table size overflows", fn);
    float *c = malloc(n), *s = malloc(n);
    if (!c || !s) {
        free(c);
        free(s);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: cannot allocate 2 x %zu bytes", fn, n);
    }
    for (size_t p = 0; p < (size_t)max_pos; p++) {
        for (size_t j = 0; j < half; j++) {
            const float a = (float)p * inv_freq[j]; /* the fp32 angle, as transformers computes it */
            c[p * half + j] = (float)cos((double)a);
            s[p * half + j] = (float)sin((double)a);
        }
    }
    r->head_dim = head_dim;
    r->max_pos = max_pos;
    r->cos = c;
    r->sin = s;
    return PEQA_OK;
}

peqa_status peqa_rope_init(peqa_rope *r, int64_t head_dim, int64_t max_pos, double theta)
{
    static const char fn[] = "peqa_rope_init";
    TRY(need(fn, "rope", r));
    memset(r, 0, sizeof *r);
    if (head_dim < 2 || head_dim % 2 != 0 || head_dim > ((int64_t)1 << 20))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: head_dim = %lld: expected an even number in [2, 2^20]", fn,
                          (long long)head_dim);
    float *f = malloc((size_t)head_dim / 2 * sizeof *f);
    if (!f) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    peqa_status st = peqa_rope_default_freqs(head_dim, theta, f);
    if (st == PEQA_OK) st = peqa_rope_init_freqs(r, head_dim, max_pos, f);
    free(f);
    return st;
}

void peqa_rope_free(peqa_rope *r)
{
    if (!r) return;
    free(r->cos);
    free(r->sin);
    memset(r, 0, sizeof *r);
}

static peqa_status rope_check(const char *fn, const peqa_rope *r, const float *x, int64_t T, int64_t H,
                              int64_t pos0, const float *y)
{
    TRY(need(fn, "rope", r));
    if (!r->cos || !r->sin) return peqa__fail(PEQA_ERR_ARG, "%s: the rope table is not initialised", fn);
    TRY(need(fn, "input", x));
    TRY(need(fn, "output", y));
    size_t n = 1;
    TRY(dim(fn, "T", T, &n));
    TRY(dim(fn, "n_heads", H, &n));
    TRY(dim(fn, "head_dim", r->head_dim, &n));
    if (pos0 < 0 || pos0 > r->max_pos || T > r->max_pos - pos0)
        return peqa__fail(PEQA_ERR_RANGE, "%s: positions [%lld, %lld) outside the table's [0, %lld)", fn,
                          (long long)pos0, (long long)pos0 + (long long)T, (long long)r->max_pos);
    return PEQA_OK;
}

peqa_status peqa_rope_fwd(const peqa_rope *r, const float *x, int64_t T, int64_t n_heads, int64_t pos0,
                          float *y)
{
    TRY(rope_check("peqa_rope_fwd", r, x, T, n_heads, pos0, y));
    const size_t hd = (size_t)r->head_dim, half = hd / 2, H = (size_t)n_heads;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float *cs = r->cos + ((size_t)pos0 + t) * half, *sn = r->sin + ((size_t)pos0 + t) * half;
        for (size_t h = 0; h < H; h++) {
            const float *xh = x + (t * H + h) * hd;
            float *yh = y + (t * H + h) * hd;
            for (size_t j = 0; j < half; j++) {
                const float x0 = xh[j], x1 = xh[j + half], c = cs[j], s = sn[j];
                yh[j] = fmaf(x0, c, -(x1 * s));
                yh[j + half] = fmaf(x1, c, x0 * s);
            }
        }
    }
    return PEQA_OK;
}

peqa_status peqa_rope_bwd(const peqa_rope *r, const float *dy, int64_t T, int64_t n_heads, int64_t pos0,
                          float *dx)
{
    TRY(rope_check("peqa_rope_bwd", r, dy, T, n_heads, pos0, dx));
    const size_t hd = (size_t)r->head_dim, half = hd / 2, H = (size_t)n_heads;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float *cs = r->cos + ((size_t)pos0 + t) * half, *sn = r->sin + ((size_t)pos0 + t) * half;
        for (size_t h = 0; h < H; h++) {
            const float *gh = dy + (t * H + h) * hd;
            float *dh = dx + (t * H + h) * hd;
            for (size_t j = 0; j < half; j++) {
                const float g0 = gh[j], g1 = gh[j + half], c = cs[j], s = sn[j];
                dh[j] = fmaf(g0, c, g1 * s);
                dh[j + half] = fmaf(g1, c, -(g0 * s));
            }
        }
    }
    return PEQA_OK;
}

/* ---- attention ------------------------------------------------------------------------------ */

peqa_status peqa_attn_check(const peqa_attn_shape *sh)
{
    static const char fn[] = "peqa_attn";
    TRY(need(fn, "shape", sh));
    size_t nq = 1, nk = 1, sc = 1;
    TRY(dim(fn, "tq", sh->tq, &nq));
    TRY(dim(fn, "n_heads", sh->n_heads, &nq));
    TRY(dim(fn, "head_dim", sh->head_dim, &nq));
    TRY(dim(fn, "tk", sh->tk, &nk));
    TRY(dim(fn, "n_kv_heads", sh->n_kv_heads, &nk));
    TRY(dim(fn, "head_dim", sh->head_dim, &nk));
    TRY(dim(fn, "tk", sh->tk, &sc));
    TRY(dim(fn, "2", 2, &sc));
    if (sh->n_heads % sh->n_kv_heads != 0)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: n_heads = %lld is not a multiple of n_kv_heads = %lld", fn,
                          (long long)sh->n_heads, (long long)sh->n_kv_heads);
    if (sh->tq > sh->tk)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tq = %lld queries but only tk = %lld keys (need tq <= tk)", fn,
                          (long long)sh->tq, (long long)sh->tk);
    return PEQA_OK;
}

/* Threaded driver: the units (query heads forward, kv heads backward) are cut into at most
 * `threads` contiguous chunks; a chunk runs its units in order with its own scratch. */
typedef struct {
    const peqa_kernels *k;
    const peqa_attn_shape *sh;
    const float *q, *k_, *v, *stats, *dout;
    float *out, *st_out, *dq, *dk, *dv, *scratch;
    size_t scratch_floats;
    int64_t units, chunks;
    int bwd;
} attn_job;

static void attn_task(void *arg, int64_t c)
{
    const attn_job *j = arg;
    float *scr = j->scratch + (size_t)c * j->scratch_floats;
    for (int64_t u = c * j->units / j->chunks; u < (c + 1) * j->units / j->chunks; u++) {
        if (j->bwd)
            j->k->attn_bwd_group(j->sh, u, j->q, j->k_, j->v, j->stats, j->dout, j->dq, j->dk, j->dv, scr);
        else
            j->k->attn_fwd_head(j->sh, u, j->q, j->k_, j->v, j->out, j->st_out, scr);
    }
}

static peqa_status attn_run(const char *fn, peqa_ctx *ctx, attn_job *j)
{
    const peqa_kernels *ref = peqa__kernels(PEQA_ISA_SCALAR);
    j->k = ctx ? ctx->k : ref;
    j->units = j->bwd ? j->sh->n_kv_heads : j->sh->n_heads;
    j->chunks = ctx && ctx->threads > 1 ? (ctx->threads < j->units ? ctx->threads : j->units) : 1;
    j->scratch_floats = j->bwd ? PEQA_ATTN_BWD_SCRATCH(j->sh) : PEQA_ATTN_FWD_SCRATCH(j->sh);
    size_t n;
    if (!peqa__mul(j->scratch_floats, (size_t)j->chunks, &n) || !peqa__mul(n, sizeof(float), &n))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: scratch size overflows", fn);
    if (!(j->scratch = malloc(n)))
        return peqa__fail(PEQA_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch", fn, n);
    if (j->chunks > 1)
        peqa__pool_run(ctx->pool, j->chunks, attn_task, j);
    else
        attn_task(j, 0);
    free(j->scratch);
    return PEQA_OK;
}

peqa_status peqa_attn_fwd(peqa_ctx *ctx, const peqa_attn_shape *sh, const float *q, const float *k,
                          const float *v, float *out, float *stats)
{
    static const char fn[] = "peqa_attn_fwd";
    TRY(peqa_attn_check(sh));
    TRY(need(fn, "q", q));
    TRY(need(fn, "k", k));
    TRY(need(fn, "v", v));
    TRY(need(fn, "out", out));
    attn_job j = {.sh = sh, .q = q, .k_ = k, .v = v, .out = out, .st_out = stats, .bwd = 0};
    return attn_run(fn, ctx, &j);
}

peqa_status peqa_attn_bwd(peqa_ctx *ctx, const peqa_attn_shape *sh, const float *q, const float *k,
                          const float *v, const float *stats, const float *dout, float *dq, float *dk,
                          float *dv)
{
    static const char fn[] = "peqa_attn_bwd";
    TRY(peqa_attn_check(sh));
    TRY(need(fn, "q", q));
    TRY(need(fn, "k", k));
    TRY(need(fn, "v", v));
    TRY(need(fn, "stats", stats));
    TRY(need(fn, "dout", dout));
    TRY(need(fn, "dq", dq));
    TRY(need(fn, "dk", dk));
    TRY(need(fn, "dv", dv));
    attn_job j = {.sh = sh, .q = q, .k_ = k, .v = v, .stats = stats, .dout = dout, .dq = dq, .dk = dk, .dv = dv, .bwd = 1};
    return attn_run(fn, ctx, &j);
}

/* ---- SwiGLU --------------------------------------------------------------------------------- */

peqa_status peqa_swiglu_fwd(const float *g, const float *u, int64_t n, float *h)
{
    static const char fn[] = "peqa_swiglu_fwd";
    size_t c = 1;
    TRY(dim(fn, "n", n, &c));
    TRY(need(fn, "g", g));
    TRY(need(fn, "u", u));
    TRY(need(fn, "h", h));
    for (size_t i = 0; i < c; i++) {
        const float gi = g[i], ui = u[i];
        h[i] = peqa_siluf(gi) * ui;
    }
    return PEQA_OK;
}

peqa_status peqa_swiglu_bwd(const float *g, const float *u, const float *dh, int64_t n, float *dg, float *du)
{
    static const char fn[] = "peqa_swiglu_bwd";
    size_t c = 1;
    TRY(dim(fn, "n", n, &c));
    TRY(need(fn, "g", g));
    TRY(need(fn, "u", u));
    TRY(need(fn, "dh", dh));
    TRY(need(fn, "dg", dg));
    TRY(need(fn, "du", du));
    for (size_t i = 0; i < c; i++) {
        const float gi = g[i], ui = u[i], d = dh[i];
        const float a = d * ui, sl = peqa_siluf(gi), sd = peqa_silu_gradf(gi);
        dg[i] = a * sd;
        du[i] = d * sl;
    }
    return PEQA_OK;
}

/* ---- cross-entropy -------------------------------------------------------------------------- */

static peqa_status xent_check(const char *fn, const float *logits, const int32_t *targets, int64_t T,
                              int64_t V)
{
    size_t n = 1;
    TRY(dim(fn, "T", T, &n));
    TRY(dim(fn, "V", V, &n));
    TRY(need(fn, "logits", logits));
    TRY(need(fn, "targets", targets));
    if (V > INT32_MAX) return peqa__fail(PEQA_ERR_SHAPE, "%s: V = %lld exceeds the int32 token range", fn, (long long)V);
    for (int64_t t = 0; t < T; t++)
        if (targets[t] != PEQA_TARGET_IGNORE && (targets[t] < 0 || targets[t] >= V))
            return peqa__fail(PEQA_ERR_RANGE, "%s: targets[%lld] = %ld outside [0, %lld) (and not the ignore value %d)",
                              fn, (long long)t, (long)targets[t], (long long)V, PEQA_TARGET_IGNORE);
    return PEQA_OK;
}

/* m = max z, l = Σ exp(z − m), v ascending. */
static void row_max_sum(const float *z, size_t V, float *m_out, float *l_out)
{
    float m = z[0];
    for (size_t v = 1; v < V; v++) m = z[v] > m ? z[v] : m;
    float l = 0.0f;
    for (size_t v = 0; v < V; v++) l = l + peqa_expf(z[v] - m);
    *m_out = m;
    *l_out = l;
}

peqa_status peqa_xent_fwd(const float *logits, const int32_t *targets, int64_t T, int64_t V, float *stats,
                          float *losses, float *mean)
{
    TRY(xent_check("peqa_xent_fwd", logits, targets, T, V));
    const size_t nv = (size_t)V;
    float acc = 0.0f;
    int64_t cnt = 0;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float *z = logits + t * nv;
        float m, l;
        row_max_sum(z, nv, &m, &l);
        if (stats) {
            stats[2 * t] = m;
            stats[2 * t + 1] = l;
        }
        float loss = 0.0f;
        if (targets[t] != PEQA_TARGET_IGNORE) {
            /* (m − z[y]) >= 0 is exact when z[y] is near the max, and log l >= 0: two nonnegative
             * terms, so the sum keeps full relative precision. */
            loss = (m - z[targets[t]]) + peqa_logf(l);
            acc = acc + loss;
            cnt++;
        }
        if (losses) losses[t] = loss;
    }
    if (mean) *mean = cnt ? acc / (float)cnt : 0.0f;
    return PEQA_OK;
}

peqa_status peqa_xent_bwd(const float *logits, const int32_t *targets, const float *stats, float dloss,
                          int64_t T, int64_t V, float *dlogits)
{
    static const char fn[] = "peqa_xent_bwd";
    TRY(xent_check(fn, logits, targets, T, V));
    TRY(need(fn, "stats", stats));
    TRY(need(fn, "dlogits", dlogits));
    const size_t nv = (size_t)V;
    int64_t cnt = 0;
    for (int64_t t = 0; t < T; t++) cnt += targets[t] != PEQA_TARGET_IGNORE;
    const float c = cnt ? dloss / (float)cnt : 0.0f;
    for (size_t t = 0; t < (size_t)T; t++) {
        const float *z = logits + t * nv;
        float *dz = dlogits + t * nv;
        if (targets[t] == PEQA_TARGET_IGNORE) {
            for (size_t v = 0; v < nv; v++) dz[v] = 0.0f;
            continue;
        }
        const float m = stats[2 * t], l = stats[2 * t + 1];
        const size_t y = (size_t)targets[t];
        for (size_t v = 0; v < nv; v++) {
            const float p = peqa_expf(z[v] - m) / l;
            dz[v] = (v == y ? p - 1.0f : p) * c;
        }
    }
    return PEQA_OK;
}

peqa_status peqa_softmax(const float *z, int64_t n, float *p)
{
    static const char fn[] = "peqa_softmax";
    size_t c = 1;
    TRY(dim(fn, "n", n, &c));
    TRY(need(fn, "z", z));
    TRY(need(fn, "p", p));
    float m, l;
    row_max_sum(z, c, &m, &l);
    for (size_t v = 0; v < c; v++) p[v] = peqa_expf(z[v] - m) / l;
    return PEQA_OK;
}

/* ---- embedding ------------------------------------------------------------------------------ */

static peqa_status embed_check(const char *fn, int64_t V, int64_t D, const int32_t *tok, int64_t T)
{
    size_t n = 1, m = 1;
    TRY(dim(fn, "V", V, &n));
    TRY(dim(fn, "D", D, &n));
    TRY(dim(fn, "T", T, &m));
    TRY(dim(fn, "D", D, &m));
    TRY(need(fn, "tokens", tok));
    for (int64_t t = 0; t < T; t++)
        if (tok[t] < 0 || tok[t] >= V)
            return peqa__fail(PEQA_ERR_RANGE, "%s: tokens[%lld] = %ld outside [0, %lld)", fn, (long long)t,
                              (long)tok[t], (long long)V);
    return PEQA_OK;
}

peqa_status peqa_embed_fwd(const float *E, int64_t V, int64_t D, const int32_t *tok, int64_t T, float *out)
{
    static const char fn[] = "peqa_embed_fwd";
    TRY(embed_check(fn, V, D, tok, T));
    TRY(need(fn, "E", E));
    TRY(need(fn, "out", out));
    const size_t d = (size_t)D;
    for (size_t t = 0; t < (size_t)T; t++) memcpy(out + t * d, E + (size_t)tok[t] * d, d * sizeof *out);
    return PEQA_OK;
}

peqa_status peqa_embed_bwd(const float *dout, const int32_t *tok, int64_t T, int64_t V, int64_t D, float *dE)
{
    static const char fn[] = "peqa_embed_bwd";
    TRY(embed_check(fn, V, D, tok, T));
    TRY(need(fn, "dout", dout));
    TRY(need(fn, "dE", dE));
    const size_t d = (size_t)D;
    for (size_t t = 0; t < (size_t)T; t++) {
        float *row = dE + (size_t)tok[t] * d;
        const float *g = dout + t * d;
        for (size_t i = 0; i < d; i++) row[i] = row[i] + g[i];
    }
    return PEQA_OK;
}
