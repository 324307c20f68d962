/* Golden vectors: (1) every ISA and thread count reproduces each stored output bit for bit
 * (the scalar reference on one thread first); (2) RTN reproduces the stored codes/s/z from the
 * stored weights; (3) the reference is within c*n*2^-24*sum|terms| of a float64 evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compare.h"
#include "golden_io.h"
#include "test.h"

#define F64_C 2.0 /* the documented constant c of the error bound */

static const garray *need(const gbundle *b, const char *name, uint32_t dt, uint64_t cnt)
{
    const garray *a = gbundle_get(b, name);
    return a && a->dtype == dt && a->d0 * a->d1 == cnt ? a : NULL;
}

/* Max of |ref - exact| / (c n u sum|terms|) over an output; > 1 fails. Also the max abs error. */
typedef struct { double worst, maxabs; } errstat;
static void upd(errstat *e, double ref, double exact, double n, double terms)
{
    double err = fabs(ref - exact), bound = F64_C * n * 0x1p-24 * terms;
    double q = err == 0 ? 0 : bound > 0 ? err / bound : INFINITY;
    if (q > e->worst) e->worst = q;
    if (err > e->maxabs) e->maxabs = err;
}

static void f64_audit(trun *r, const char *name, const tcase *c, const tout *o)
{
    int64_t m = c->m, n = c->n, k = c->k, g = c->g, ng = c->ng, nb = (k + 31) / 32;
    errstat e[6] = {{0, 0}};
    static const char *const what[6] = {"dequant", "fwd", "gscale", "gzero", "ginput", "fwd_i8"};
    for (int64_t row = 0; row < n; row++)
        for (int64_t col = 0; col < k; col++) {
            double s = c->s[row * ng + col / g], z = c->z[row * ng + col / g];
            double ex = s * ((double)c->codes[row * k + col] - z);
            upd(&e[0], o->deq[row * k + col], ex, 2, fabs(ex));
        }
    for (int64_t mi = 0; mi < m; mi++)
        for (int64_t row = 0; row < n; row++) {
            double y = 0, ty = 0, yi = 0, tyi = 0;
            for (int64_t j = 0; j < ng; j++) {
                double s = c->s[row * ng + j], z = c->z[row * ng + j], p = 0, tp = 0, a = 0, ta = 0;
                for (int64_t col = j * g; col < k && col < (j + 1) * g; col++) {
                    double d = (double)c->codes[row * k + col] - z;
                    p += c->x[mi * k + col] * d;
                    tp += fabs(c->x[mi * k + col] * d);
                }
                for (int64_t b0 = j * g; b0 < k && b0 < (j + 1) * g; b0 += 32) {
                    double t = 0, tt = 0;
                    for (int64_t col = b0; col < b0 + 32 && col < k && col < (j + 1) * g; col++) {
                        double d = (double)c->codes[row * k + col] - z;
                        t += o->xq[mi * k + col] * d;
                        tt += fabs(o->xq[mi * k + col] * d);
                    }
                    a += o->xs[mi * nb + b0 / 32] * t;
                    ta += fabs(o->xs[mi * nb + b0 / 32]) * tt;
                }
                y += s * p, ty += fabs(s) * tp;
                yi += s * a, tyi += fabs(s) * ta;
            }
            upd(&e[1], o->y[mi * n + row], y, (double)(g + ng + 1), ty);
            upd(&e[5], o->yi8[mi * n + row], yi, (double)(ng + nb + 2), tyi);
        }
    for (int64_t row = 0; row < n; row++)
        for (int64_t j = 0; j < ng; j++) {
            double s = c->s[row * ng + j], z = c->z[row * ng + j], ds = 0, tds = 0, dz = 0, tdz = 0;
            for (int64_t mi = 0; mi < m; mi++) {
                double p = 0, tp = 0, xs = 0, txs = 0, dy = c->dy[mi * n + row];
                for (int64_t col = j * g; col < k && col < (j + 1) * g; col++) {
                    double d = (double)c->codes[row * k + col] - z, xv = c->x[mi * k + col];
                    p += xv * d, tp += fabs(xv * d), xs += xv, txs += fabs(xv);
                }
                ds += dy * p, tds += fabs(dy) * tp;
                dz += dy * xs, tdz += fabs(dy) * txs;
            }
            upd(&e[2], o->ds[row * ng + j], ds, (double)(g + m + 1), tds);
            upd(&e[3], o->dz[row * ng + j], -s * dz, (double)(g + m + 2), fabs(s) * tdz);
        }
    for (int64_t mi = 0; mi < m; mi++)
        for (int64_t col = 0; col < k; col++) {
            double dx = 0, t = 0;
            for (int64_t row = 0; row < n; row++) {
                double wv = c->s[row * ng + col / g] * ((double)c->codes[row * k + col] - c->z[row * ng + col / g]);
                dx += c->dy[mi * n + row] * wv, t += fabs(c->dy[mi * n + row] * wv);
            }
            upd(&e[4], o->dx[mi * k + col], dx, (double)(n + 3), t);
        }
    for (int i = 0; i < 6; i++) {
        char nm[400];
        snprintf(nm, sizeof nm, "golden/%s/f64/%s", name, what[i]);
        t_result(r, e[i].worst <= 1.0, nm, "scalar", "max abs err %.3g, max err/bound %.3g (c=%g)",
                 e[i].maxabs, e[i].worst, F64_C);
    }
}

static int load_case(const gbundle *b, tcase *c, tout *o)
{
    int64_t m = b->m, n = b->n, k = b->k;
    if (b->bits != 2 && b->bits != 3 && b->bits != 4 && b->bits != 8) return 0;
    if (m < 1 || n < 1 || k < 1 || m > 1 << 16 || n > 1 << 16 || k > 1 << 16) return 0;
    if (!tcase_alloc(c, b->bits, b->group, m, n, k)) return 0;
    int64_t ng = c->ng, nb = (k + 31) / 32;
    const garray *a[13] = {
        need(b, "codes", GDT_U8, n * k), need(b, "s", GDT_F32, n * ng), need(b, "z", GDT_F32, n * ng),
        need(b, "x", GDT_F32, m * k),     need(b, "dy", GDT_F32, m * n), gbundle_get(b, "packed"),
        need(b, "deq", GDT_F32, n * k),   need(b, "y", GDT_F32, m * n),  need(b, "ds", GDT_F32, n * ng),
        need(b, "dz", GDT_F32, n * ng),   need(b, "dx", GDT_F32, m * k), need(b, "xq", GDT_I8, m * k),
        need(b, "xs", GDT_F32, m * nb)};
    const garray *yi8 = need(b, "yi8", GDT_F32, m * n);
    for (int i = 0; i < 13; i++)
        if (!a[i]) return tcase_free(c), 0;
    if (!yi8 || a[5]->dtype != GDT_U32) return tcase_free(c), 0;
    memcpy(c->codes, a[0]->data, (size_t)(n * k));
    memcpy(c->s, a[1]->data, (size_t)(n * ng) * 4), memcpy(c->z, a[2]->data, (size_t)(n * ng) * 4);
    memcpy(c->x, a[3]->data, (size_t)(m * k) * 4), memcpy(c->dy, a[4]->data, (size_t)(m * n) * 4);
    /* the expected outputs alias the bundle's arrays (not freed through o) */
    memset(o, 0, sizeof *o);
    o->packed = a[5]->data, o->packed_bytes = (size_t)a[5]->d0 * 4;
    o->codes_rt = a[0]->data;
    o->deq = a[6]->data, o->y = a[7]->data, o->ds = a[8]->data, o->dz = a[9]->data, o->dx = a[10]->data;
    o->xq = a[11]->data, o->xs = a[12]->data, o->yi8 = yi8->data;
    return 1;
}

void test_golden(trun *r)
{
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/MANIFEST", r->golden_dir);
    FILE *man = fopen(path, "r");
    if (!man) {
        t_result(r, 0, "golden/manifest", "-", "cannot open %s", path);
        return;
    }
    int ncases = 0;
    while (fgets(line, sizeof line, man)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[256], op[64], cls[64], tol[64];
        int bits;
        long long g, m, n, k;
        unsigned long long seed, fnv;
        if (sscanf(line, "%255s %63s %d %lld %lld %lld %lld %llx %63s %63s %llx", name, op, &bits, &g, &m,
                   &n, &k, &seed, cls, tol, &fnv) != 11) {
            t_result(r, 0, "golden/manifest", "-", "malformed line: %s", line);
            continue;
        }
        ncases++;
        gbundle b;
        uint64_t got_fnv;
        char err[512];
        snprintf(path, sizeof path, "%s/%s.bin", r->golden_dir, name);
        char nm[400];
        snprintf(nm, sizeof nm, "golden/%s", name);
        if (gbundle_read(&b, path, &got_fnv, err, sizeof err)) {
            t_result(r, 0, nm, "-", "%s", err);
            continue;
        }
        if (got_fnv != fnv || b.bits != bits || b.m != m || b.n != n || b.k != k || b.group != g) {
            t_result(r, 0, nm, "-", "file does not match MANIFEST (checksum %016llx, expected %016llx)",
                     (unsigned long long)got_fnv, fnv);
            gbundle_free(&b);
            continue;
        }
        tcase c;
        tout want;
        if (!load_case(&b, &c, &want)) {
            t_result(r, 0, nm, "-", "missing or mis-shaped arrays");
            gbundle_free(&b);
            continue;
        }
        /* RTN from the stored weights reproduces the stored codes, scales and zero points. */
        const garray *w = need(&b, "w", GDT_F32, (uint64_t)(n * k));
        if (w) {
            peqa_qtensor *t = NULL;
            peqa_ctx *ctx = t_ctx("scalar", 1);
            uint8_t *codes = malloc((size_t)(n * k));
            float *s = malloc((size_t)(n * c.ng) * 4), *z = malloc((size_t)(n * c.ng) * 4);
            int ok = ctx && codes && s && z && !peqa_qtensor_create(n, k, bits, g, &t) &&
                     !peqa_qtensor_quantize_rtn(t, w->data, k) && !peqa_qtensor_export(ctx, t, codes, k, s, z);
            /* zero_scale cases zero some scales after RTN; compare codes and z only there */
            int zs = !strcmp(cls, "zero_scale");
            ok = ok && !memcmp(codes, c.codes, (size_t)(n * k)) && !memcmp(z, c.z, (size_t)(n * c.ng) * 4) &&
                 (zs || !memcmp(s, c.s, (size_t)(n * c.ng) * 4));
            char nm2[420];
            snprintf(nm2, sizeof nm2, "%s/rtn", nm);
            t_result(r, ok, nm2, "scalar", ok ? "codes, s, z bit-identical" : "RTN output differs from golden");
            peqa_qtensor_free(t), peqa_ctx_free(ctx), free(codes), free(s), free(z);
        }
        for (int ii = 0; ii < t_nisas; ii++) {
            peqa_ctx *probe = t_ctx(t_isas[ii], 1);
            if (!probe) {
                t_skip(r, nm, t_isas[ii], "ISA not available on this CPU");
                continue;
            }
            peqa_ctx_free(probe);
            int ok = 1, thr = 0;
            char msg[512] = "";
            for (int ti = 0; ti < t_nthreads && ok; ti++) {
                peqa_ctx *ctx = t_ctx(t_isas[ii], t_threads[ti]);
                tout o;
                if (!ctx || case_run(ctx, &c, &o)) {
                    ok = 0, thr = t_threads[ti];
                    snprintf(msg, sizeof msg, "run failed: %s", peqa_last_error());
                } else {
                    if (!compare_outputs(&c, &want, &o, msg, sizeof msg)) ok = 0, thr = t_threads[ti];
                    if (ok && !strcmp(t_isas[ii], "scalar") && ti == 0) f64_audit(r, name, &c, &o);
                    tout_free(&o);
                }
                peqa_ctx_free(ctx);
            }
            if (ok)
                t_result(r, 1, nm, t_isas[ii], "all slots bit-identical to golden, threads %s", t_threads_text);
            else
                t_result(r, 0, nm, t_isas[ii], "threads=%d %s (seed 0x%llx; reproduce: peqa_tests --filter golden)",
                         thr, msg, seed);
        }
        tcase_free(&c);
        gbundle_free(&b);
    }
    fclose(man);
    t_result(r, ncases > 0, "golden/count", "-", "%d cases in MANIFEST", ncases);
}
