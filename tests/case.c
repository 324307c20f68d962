#include <stdlib.h>
#include <string.h>
#include "case.h"
#include "prng.h"

int tcase_alloc(tcase *c, int bits, int64_t g, int64_t m, int64_t n, int64_t k)
{
    memset(c, 0, sizeof *c);
    if (g <= 0 || g >= k) g = k;
    c->bits = bits, c->g = g, c->m = m, c->n = n, c->k = k, c->ng = (k + g - 1) / g;
    c->codes = calloc((size_t)(n * k), 1);
    c->s = calloc((size_t)(n * c->ng), sizeof(float));
    c->z = calloc((size_t)(n * c->ng), sizeof(float));
    c->x = calloc((size_t)(m * k), sizeof(float));
    c->dy = calloc((size_t)(m * n), sizeof(float));
    if (!c->codes || !c->s || !c->z || !c->x || !c->dy) return tcase_free(c), 0;
    return 1;
}

void tcase_free(tcase *c)
{
    free(c->codes), free(c->s), free(c->z), free(c->x), free(c->dy);
    memset(c, 0, sizeof *c);
}

void tout_free(tout *o)
{
    free(o->packed), free(o->deq), free(o->y), free(o->ds), free(o->dz), free(o->dx);
    free(o->xs), free(o->yi8), free(o->codes_rt), free(o->xq);
    memset(o, 0, sizeof *o);
}

int tcase_fill(tcase *c, const char *cls, uint64_t seed, float **w)
{
    prng r;
    prng_seed(&r, seed);
    int64_t n = c->n, k = c->k, ng = c->ng;
    unsigned maxq = (1u << c->bits) - 1u;
    if (w) *w = NULL;
    for (int64_t i = 0; i < c->m * k; i++) c->x[i] = prng_sym(&r, 1.0f);
    for (int64_t i = 0; i < c->m * n; i++) c->dy[i] = prng_sym(&r, 1.0f);
    if (!strcmp(cls, "rtn") || !strcmp(cls, "zero_group") || !strcmp(cls, "zero_scale")) {
        float *wt = malloc((size_t)(n * k) * sizeof *wt);
        if (!wt) return 0;
        for (int64_t row = 0; row < n; row++) {
            float amp = 0.02f + prng_unit(&r); /* rows of different magnitude */
            float shift = prng_sym(&r, 0.5f) * amp;
            for (int64_t col = 0; col < k; col++) wt[row * k + col] = prng_sym(&r, amp) + shift;
        }
        if (!strcmp(cls, "zero_group")) /* every third (row, group) all zero */
            for (int64_t row = 0; row < n; row++)
                for (int64_t j = 0; j < ng; j++)
                    if ((row + j) % 3 == 0)
                        for (int64_t col = j * c->g; col < k && col < (j + 1) * c->g; col++) wt[row * k + col] = 0.0f;
        peqa_qtensor *t;
        peqa_ctx *ctx;
        peqa_ctx_options o = {.threads = 1, .isa = "scalar"};
        if (peqa_qtensor_create(n, k, c->bits, c->g, &t)) return free(wt), 0;
        if (peqa_ctx_create(&o, &ctx)) return peqa_qtensor_free(t), free(wt), 0;
        int ok = !peqa_qtensor_quantize_rtn(t, wt, k) && !peqa_qtensor_export(ctx, t, c->codes, k, c->s, c->z);
        peqa_qtensor_free(t), peqa_ctx_free(ctx);
        if (!ok) return free(wt), 0;
        if (!strcmp(cls, "zero_scale"))
            for (int64_t i = 0; i < n * ng; i++)
                if (i % 4 == 1) c->s[i] = 0.0f;
        if (w) *w = wt;
        else free(wt);
        return 1;
    }
    int cmax = !strcmp(cls, "codes_max"), cmin = !strcmp(cls, "codes_min"), off = !strcmp(cls, "offgrid_z");
    if (!cmax && !cmin && !off) return 0;
    for (int64_t i = 0; i < n * k; i++)
        c->codes[i] = (uint8_t)(cmax ? maxq : cmin ? 0 : prng_below(&r, maxq + 1));
    for (int64_t i = 0; i < n * ng; i++) {
        c->s[i] = 0.001f + prng_unit(&r) * 0.1f;
        c->z[i] = off ? prng_sym(&r, (float)maxq) : (float)prng_below(&r, maxq + 1);
    }
    return 1;
}

peqa_status case_run(peqa_ctx *ctx, const tcase *c, tout *o)
{
    memset(o, 0, sizeof *o);
    int64_t m = c->m, n = c->n, k = c->k, ng = c->ng, nb = (k + PEQA_ACT_BLOCK - 1) / PEQA_ACT_BLOCK;
    peqa_qtensor *t = NULL;
    peqa_status st = peqa_qtensor_create(n, k, c->bits, c->g, &t);
    if (st) return st;
    o->deq = malloc((size_t)(n * k) * sizeof(float));
    o->y = malloc((size_t)(m * n) * sizeof(float));
    o->ds = malloc((size_t)(n * ng) * sizeof(float));
    o->dz = malloc((size_t)(n * ng) * sizeof(float));
    o->dx = malloc((size_t)(m * k) * sizeof(float));
    o->xs = malloc((size_t)(m * nb) * sizeof(float));
    o->yi8 = malloc((size_t)(m * n) * sizeof(float));
    o->codes_rt = malloc((size_t)(n * k));
    o->xq = malloc((size_t)(m * k));
    if (!o->deq || !o->y || !o->ds || !o->dz || !o->dx || !o->xs || !o->yi8 || !o->codes_rt || !o->xq) {
        st = PEQA_ERR_NOMEM;
        goto done;
    }
    const void *pk;
    if ((st = peqa_qtensor_import(t, c->codes, k, c->s, c->z)) ||
        (st = peqa_qtensor_packed(t, &pk, &o->packed_bytes)))
        goto done;
    o->packed = malloc(o->packed_bytes);
    if (!o->packed) {
        st = PEQA_ERR_NOMEM;
        goto done;
    }
    memcpy(o->packed, pk, o->packed_bytes);
    if ((st = peqa_qtensor_export(ctx, t, o->codes_rt, k, NULL, NULL)) ||
        (st = peqa_qtensor_dequantize(ctx, t, o->deq, k)) ||
        (st = peqa_linear_forward(ctx, t, m, c->x, k, o->y, n)) ||
        (st = peqa_linear_grad_scale(ctx, t, m, c->x, k, c->dy, n, o->ds)) ||
        (st = peqa_linear_grad_zero(ctx, t, m, c->x, k, c->dy, n, o->dz)) ||
        (st = peqa_linear_grad_input(ctx, t, m, c->dy, n, o->dx, k)) ||
        (st = peqa_act_quantize(ctx, m, k, c->x, k, o->xq, k, o->xs, nb)) ||
        (st = peqa_linear_forward_i8(ctx, t, m, o->xq, k, o->xs, nb, o->yi8, n)))
        goto done;
done:
    peqa_qtensor_free(t);
    if (st) tout_free(o);
    return st;
}
