/* Quantized tensor: creation, RTN quantization (SPEC §3), packing to the documented layout,
 * canonical import/export. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Validates a shape and fills info; the single place that decides what a legal tensor is. */
static peqa_status shape_info(const char *fn, int64_t n, int64_t k, int bits, int64_t group,
                              peqa_qtensor_info *info, size_t *qp_words, size_t *sz_count)
{
    if (n < 1 || k < 1)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: shape %lld x %lld: both dimensions must be >= 1", fn,
                          (long long)n, (long long)k);
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        return peqa__fail(PEQA_ERR_BITS, "%s: bits = %d: expected 2, 3, 4 or 8", fn, bits);
    if (group < 0)
        return peqa__fail(PEQA_ERR_GROUP, "%s: group = %lld: must be >= 0 (0 = per-channel)", fn,
                          (long long)group);
    if (group == 0 || group >= k) group = k;
    if (group != k && group % PEQA_KB != 0)
        return peqa__fail(PEQA_ERR_GROUP,
                          "%s: group = %lld: must be a multiple of %d or per-channel (0 or >= K = %lld)",
                          fn, (long long)group, PEQA_KB, (long long)k);
    /* Bound the dimensions so that every int64 index product below stays far from overflow. */
    const int64_t lim = (int64_t)1 << 40;
    if (n > lim || k > lim)
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: shape %lld x %lld is too large", fn, (long long)n,
                          (long long)k);
    int64_t ng = (k + group - 1) / group, ntiles = (n + PEQA_NR - 1) / PEQA_NR,
            kblk = (k + PEQA_KB - 1) / PEQA_KB;
    size_t words, szc, codes, scales, tmp;
    if (!peqa__mul((size_t)ntiles * PEQA_NR, (size_t)kblk * (size_t)bits, &words) ||
        !peqa__mul((size_t)ntiles * PEQA_NR, (size_t)ng, &szc) ||
        !peqa__mul((size_t)n, (size_t)k, &codes) || !peqa__mul((size_t)n, (size_t)ng, &scales) ||
        !peqa__mul(words, 4, &tmp) || !peqa__mul(szc, 4, &tmp) || !peqa__mul(codes, 4, &tmp))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: shape %lld x %lld overflows size_t", fn,
                          (long long)n, (long long)k);
    if (info) {
        info->n = n, info->k = k, info->bits = bits, info->group = group, info->ngroups = ng;
        info->packed_bytes = words * 4;
        info->scale_bytes = scales * 4;
        info->code_bytes = codes;
    }
    if (qp_words) *qp_words = words;
    if (sz_count) *sz_count = szc;
    return PEQA_OK;
}

peqa_status peqa_qtensor_sizes(int64_t n, int64_t k, int bits, int64_t group, peqa_qtensor_info *info)
{
    if (!info) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_sizes: info is NULL");
    return shape_info("peqa_qtensor_sizes", n, k, bits, group, info, NULL, NULL);
}

peqa_status peqa_qtensor_create(int64_t n, int64_t k, int bits, int64_t group, peqa_qtensor **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_create: out is NULL");
    *out = NULL;
    peqa_qtensor_info info;
    size_t words, szc;
    peqa_status st = shape_info("peqa_qtensor_create", n, k, bits, group, &info, &words, &szc);
    if (st) return st;
    peqa_qtensor *t = calloc(1, sizeof *t);
    uint32_t *qp = calloc(words, sizeof *qp);
    float *s = calloc(szc, sizeof *s), *z = calloc(szc, sizeof *z);
    if (!t || !qp || !s || !z) {
        free(t), free(qp), free(s), free(z);
        return peqa__fail(PEQA_ERR_NOMEM, "peqa_qtensor_create: out of memory for %lld x %lld",
                          (long long)n, (long long)k);
    }
    t->qp = qp, t->s = s, t->z = z, t->qp_words = words, t->sz_count = szc;
    t->w = (peqa_qw){.bits = bits, .n = n, .k = k, .g = info.group, .ng = info.ngroups,
                     .ntiles = (n + PEQA_NR - 1) / PEQA_NR, .kblk = (k + PEQA_KB - 1) / PEQA_KB,
                     .qp = qp, .s = s, .z = z};
    *out = t;
    return PEQA_OK;
}

void peqa_qtensor_free(peqa_qtensor *t)
{
    if (!t) return;
    free(t->qp), free(t->s), free(t->z), free(t);
}

peqa_status peqa_qtensor_get_info(const peqa_qtensor *t, peqa_qtensor_info *info)
{
    if (!t || !info) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_get_info: NULL argument");
    return shape_info("peqa_qtensor_get_info", t->w.n, t->w.k, t->w.bits, t->w.g, info, NULL, NULL);
}

/* Writes code q of row n, column k into the packed words (the inverse of peqa_code_at). The
 * destination bits must be zero beforehand. */
static void put_code(const peqa_qw *w, uint32_t *qp, int64_t n, int64_t k, unsigned q)
{
    uint32_t *cell = qp + ((size_t)((n / PEQA_NR) * w->kblk + k / PEQA_KB) * (size_t)w->bits) * PEQA_NR;
    unsigned r = (unsigned)(n % PEQA_NR), kk = (unsigned)(k % PEQA_KB);
    if (w->bits == 3) {
        unsigned t2 = kk % 16, w2 = kk / 16;
        cell[w2 * PEQA_NR + r] |= (uint32_t)(q & 3u) << (8 * (t2 % 4) + 2 * (t2 / 4));
        cell[2 * PEQA_NR + r] |= (uint32_t)(q >> 2) << (8 * (kk % 4) + kk / 4);
        return;
    }
    unsigned p = (unsigned)w->bits, per = 32 / p, wi = kk / per, t = kk % per;
    cell[wi * PEQA_NR + r] |= (uint32_t)q << (8 * (t % 4) + p * (t / 4));
}

static size_t sz_index(const peqa_qw *w, int64_t n, int64_t j)
{
    return ((size_t)(n / PEQA_NR) * (size_t)w->ng + (size_t)j) * PEQA_NR + (size_t)(n % PEQA_NR);
}

static peqa_status check_ld(const char *fn, const char *what, int64_t ld, int64_t cols)
{
    if (ld < cols)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: %s = %lld is smaller than the row length %lld", fn,
                          what, (long long)ld, (long long)cols);
    return PEQA_OK;
}

/* RTN per (row, group), SPEC §3, GPTQ convention:
 *   lo = min(min w, 0), hi = max(max w, 0); if lo == hi == 0: lo = -1, hi = 1
 *   s = (hi - lo) / (2^b - 1);  z = rint(-lo / s);  q = clamp(rint(w / s) + z, 0, 2^b - 1)
 * All in binary32; rint is round-half-to-even. z is clamped to [0, 2^b - 1] as well: in exact
 * arithmetic it never leaves that range, and the clamp keeps a rounding artefact from making an
 * unrepresentable zero point. Everything is computed into new buffers and swapped in at the
 * end, so on error the tensor is unchanged. */
peqa_status peqa_qtensor_quantize_rtn(peqa_qtensor *t, const float *w, int64_t ldw)
{
    const char *fn = "peqa_qtensor_quantize_rtn";
    if (!t || !w) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    const peqa_qw *v = &t->w;
    peqa_status st = check_ld(fn, "ldw", ldw, v->k);
    if (st) return st;
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t k = 0; k < v->k; k++)
            if (!isfinite(w[n * ldw + k]))
                return peqa__fail(PEQA_ERR_NONFINITE, "%s: weight [%lld, %lld] is %s", fn,
                                  (long long)n, (long long)k, isnan(w[n * ldw + k]) ? "NaN" : "infinite");
    uint32_t *qp = calloc(t->qp_words, sizeof *qp);
    float *s = calloc(t->sz_count, sizeof *s), *z = calloc(t->sz_count, sizeof *z);
    if (!qp || !s || !z) {
        free(qp), free(s), free(z);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    }
    const float maxq = (float)((1 << v->bits) - 1);
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t j = 0; j < v->ng; j++) {
            int64_t k0 = j * v->g, k1 = k0 + v->g < v->k ? k0 + v->g : v->k;
            float lo = 0.0f, hi = 0.0f;
            for (int64_t k = k0; k < k1; k++) {
                float x = w[n * ldw + k];
                lo = x < lo ? x : lo;
                hi = x > hi ? x : hi;
            }
            if (lo == 0.0f && hi == 0.0f) lo = -1.0f, hi = 1.0f;
            float sc = (hi - lo) / maxq;
            if (!(sc > 0.0f) || !isfinite(sc)) {
                /* hi - lo overflowed, or a range of a few subnormals underflowed to 0: no scale
                 * represents the group, so refuse instead of storing Inf or 0/0. */
                free(qp), free(s), free(z);
                return peqa__fail(PEQA_ERR_RANGE,
                                  "%s: row %lld group %lld: range [%g, %g] has no finite nonzero %d-bit scale",
                                  fn, (long long)n, (long long)j, (double)lo, (double)hi, v->bits);
            }
            float zp = rintf(-lo / sc);
            zp = zp < 0.0f ? 0.0f : zp > maxq ? maxq : zp;
            for (int64_t k = k0; k < k1; k++) {
                float q = rintf(w[n * ldw + k] / sc) + zp;
                q = q < 0.0f ? 0.0f : q > maxq ? maxq : q;
                put_code(v, qp, n, k, (unsigned)q);
            }
            s[sz_index(v, n, j)] = sc;
            z[sz_index(v, n, j)] = zp;
        }
    free(t->qp), free(t->s), free(t->z);
    t->qp = qp, t->s = s, t->z = z;
    t->w.qp = qp, t->w.s = s, t->w.z = z;
    return PEQA_OK;
}

static peqa_status check_finite(const char *fn, const char *what, const float *a, int64_t n, int64_t ng)
{
    for (int64_t i = 0; i < n * ng; i++)
        if (!isfinite(a[i]))
            return peqa__fail(PEQA_ERR_NONFINITE, "%s: %s[%lld, %lld] is not finite", fn, what,
                              (long long)(i / ng), (long long)(i % ng));
    return PEQA_OK;
}

static void tile_in(const peqa_qw *v, float *dst, const float *src)
{
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t j = 0; j < v->ng; j++) dst[sz_index(v, n, j)] = src[n * v->ng + j];
}

static void tile_out(const peqa_qw *v, float *dst, const float *src)
{
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t j = 0; j < v->ng; j++) dst[n * v->ng + j] = src[sz_index(v, n, j)];
}

peqa_status peqa_qtensor_import(peqa_qtensor *t, const uint8_t *codes, int64_t ldc, const float *s,
                                const float *z)
{
    const char *fn = "peqa_qtensor_import";
    if (!t || !codes || !s || !z) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    const peqa_qw *v = &t->w;
    peqa_status st = check_ld(fn, "ldc", ldc, v->k);
    if (st) return st;
    unsigned maxq = (1u << v->bits) - 1u;
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t k = 0; k < v->k; k++)
            if (codes[n * ldc + k] > maxq)
                return peqa__fail(PEQA_ERR_RANGE, "%s: code [%lld, %lld] = %u exceeds %u for %d bits",
                                  fn, (long long)n, (long long)k, codes[n * ldc + k], maxq, v->bits);
    if ((st = check_finite(fn, "s", s, v->n, v->ng)) || (st = check_finite(fn, "z", z, v->n, v->ng)))
        return st;
    memset(t->qp, 0, t->qp_words * sizeof *t->qp);
    for (int64_t n = 0; n < v->n; n++)
        for (int64_t k = 0; k < v->k; k++) put_code(v, t->qp, n, k, codes[n * ldc + k]);
    tile_in(v, t->s, s);
    tile_in(v, t->z, z);
    return PEQA_OK;
}

peqa_status peqa_qtensor_export(const peqa_ctx *ctx, const peqa_qtensor *t, uint8_t *codes,
                                int64_t ldc, float *s, float *z)
{
    const char *fn = "peqa_qtensor_export";
    if (!ctx || !t) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    const peqa_qw *v = &t->w;
    if (codes) {
        peqa_status st = check_ld(fn, "ldc", ldc, v->k);
        if (st) return st;
        ctx->k->unpack[peqa_bits_index(v->bits)](v, 0, v->n, codes, ldc);
    }
    if (s) tile_out(v, s, t->s);
    if (z) tile_out(v, z, t->z);
    return PEQA_OK;
}

peqa_status peqa_qtensor_set_scales(peqa_qtensor *t, const float *s)
{
    if (!t || !s) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_set_scales: NULL argument");
    peqa_status st = check_finite("peqa_qtensor_set_scales", "s", s, t->w.n, t->w.ng);
    if (st) return st;
    tile_in(&t->w, t->s, s);
    return PEQA_OK;
}

peqa_status peqa_qtensor_get_scales(const peqa_qtensor *t, float *s)
{
    if (!t || !s) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_get_scales: NULL argument");
    tile_out(&t->w, s, t->s);
    return PEQA_OK;
}

peqa_status peqa_qtensor_set_zeros(peqa_qtensor *t, const float *z)
{
    if (!t || !z) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_set_zeros: NULL argument");
    peqa_status st = check_finite("peqa_qtensor_set_zeros", "z", z, t->w.n, t->w.ng);
    if (st) return st;
    tile_in(&t->w, t->z, z);
    return PEQA_OK;
}

peqa_status peqa_qtensor_get_zeros(const peqa_qtensor *t, float *z)
{
    if (!t || !z) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_get_zeros: NULL argument");
    tile_out(&t->w, z, t->z);
    return PEQA_OK;
}

peqa_status peqa_qtensor_packed(const peqa_qtensor *t, const void **data, size_t *bytes)
{
    if (!t || !data || !bytes) return peqa__fail(PEQA_ERR_NULL, "peqa_qtensor_packed: NULL argument");
    *data = t->qp;
    *bytes = t->qp_words * sizeof *t->qp;
    return PEQA_OK;
}

/* Accepts a packed image only if its padding is zero, so that every accepted image is the one
 * canonical encoding of its codes (two files with equal codes have equal bytes). */
peqa_status peqa_qtensor_load_packed(peqa_qtensor *t, const void *data, size_t bytes)
{
    const char *fn = "peqa_qtensor_load_packed";
    if (!t || !data) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (bytes != t->qp_words * sizeof *t->qp)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: %zu bytes, expected %zu for this shape", fn, bytes,
                          t->qp_words * sizeof *t->qp);
    uint32_t *tmp = malloc(bytes);
    if (!tmp) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    const unsigned char *b = data;
    for (size_t i = 0; i < t->qp_words; i++) /* little-endian on disk, whatever the host */
        tmp[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                 (uint32_t)b[4 * i + 3] << 24;
    /* Re-pack the codes the image holds for valid (n, k) and compare: any bit set in padding
     * makes the two differ. */
    peqa_qw v = t->w;
    v.qp = tmp;
    uint32_t *check = calloc(t->qp_words, sizeof *check);
    if (!check) {
        free(tmp);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (int64_t n = 0; n < v.n; n++)
        for (int64_t k = 0; k < v.k; k++) put_code(&v, check, n, k, peqa_code_at(&v, n, k));
    int same = memcmp(check, tmp, bytes) == 0;
    free(check);
    if (!same) {
        free(tmp);
        return peqa__fail(PEQA_ERR_FORMAT, "%s: padding bits are not zero (corrupt or foreign image)", fn);
    }
    free(t->qp);
    t->qp = tmp;
    t->w.qp = tmp;
    return PEQA_OK;
}

peqa_status peqa_qtensor_dequantize(const peqa_ctx *ctx, const peqa_qtensor *t, float *w, int64_t ldw)
{
    const char *fn = "peqa_qtensor_dequantize";
    if (!ctx || !t || !w) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    peqa_status st = check_ld(fn, "ldw", ldw, t->w.k);
    if (st) return st;
    ctx->k->dequant[peqa_bits_index(t->w.bits)](&t->w, 0, t->w.n, w, ldw);
    return PEQA_OK;
}
